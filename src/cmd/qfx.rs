//! `accelforge qfx`: bit-exact ap_fixed numerics from the command line (convert raw values,
//! describe a type, calibrate integer bits from data).

use std::io::{self, Read, Write};
use std::path::PathBuf;

use accelforge_templates::qfx::{self, CalibrationMethod, Converter, QType};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// Fixed-point numerics with exact Vitis HLS ap_fixed semantics.
#[derive(Debug, Args)]
pub struct QfxArgs {
    #[command(subcommand)]
    pub command: QfxCommand,
}

#[derive(Debug, Subcommand)]
pub enum QfxCommand {
    /// Convert raw integers (decimal, one per line on stdin) from one type to another, exactly as
    /// an ap_fixed assignment does; writes destination raw integers to stdout.
    Convert(ConvertArgs),
    /// Describe a type: widths, range, resolution and modes.
    Info(InfoArgs),
    /// Choose the integer bits I of a W-bit type from data in a .npy file (f32 or f64, any shape),
    /// quantizing with AP_RND + AP_SAT.
    Calibrate(CalibrateArgs),
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Source type, e.g. 'ap_fixed<32,16>'.
    #[arg(long, value_name = "TYPE")]
    pub from: QType,
    /// Destination type, e.g. 'ap_fixed<10,5,AP_RND,AP_SAT>'.
    #[arg(long, value_name = "TYPE")]
    pub to: QType,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The type, e.g. 'ap_ufixed<8,0,AP_RND,AP_SAT>'.
    #[arg(value_name = "TYPE")]
    pub ty: QType,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The data: a .npy file of f32 or f64, any shape.
    #[arg(long, value_name = "FILE.npy")]
    pub input: PathBuf,
    /// Total bits W of the type to calibrate (1..=64).
    #[arg(long, value_name = "W")]
    pub width: u32,
    /// Calibrate a signed type, ap_fixed (the default).
    #[arg(long, conflicts_with = "unsigned")]
    pub signed: bool,
    /// Calibrate an unsigned type, ap_ufixed.
    #[arg(long)]
    pub unsigned: bool,
    /// `range`: smallest I holding every value; `mse`: I minimising mean squared error.
    #[arg(long, default_value = "mse", value_name = "range|mse")]
    pub method: CalibrationMethod,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: QfxArgs) -> anyhow::Result<()> {
    match args.command {
        QfxCommand::Convert(a) => convert(&a),
        QfxCommand::Info(a) => info(&a),
        QfxCommand::Calibrate(a) => calibrate(&a),
    }
}

/// Largest accepted input line; anything longer cannot be a raw value of a ≤64-bit type.
const MAX_LINE: usize = 4096;

fn convert(args: &ConvertArgs) -> anyhow::Result<()> {
    let converter = Converter::new(&args.from, &args.to);
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut input = stdin.lock();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match convert_stream(&converter, &mut input, &mut out) {
        // A closed pipe (`| head`) is the reader saying it has seen enough, not a failure.
        Err(StreamError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(StreamError::Write(e)) => Err(e).context("writing converted values to stdout"),
        Err(StreamError::Read(e)) => Err(e).context("reading raw values from stdin"),
        Err(StreamError::Line(e)) => Err(e).context(format!(
            "converting {} -> {} (stdin holds one decimal raw integer per line)",
            args.from, args.to
        )),
        Ok(()) => match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("writing converted values to stdout"),
        },
    }
}

enum StreamError {
    Read(io::Error),
    Write(io::Error),
    Line(anyhow::Error),
}

/// Streams lines through the converter with one fixed input buffer and no per-line allocation.
fn convert_stream(
    converter: &Converter,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<(), StreamError> {
    let mut buf = vec![0u8; 1 << 16];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line_no = 0u64;
    let mut digits = [0u8; 48];
    let mut emit = |line: &[u8], line_no: u64| -> Result<(), StreamError> {
        let raw = parse_raw(line, line_no, converter.src()).map_err(StreamError::Line)?;
        let dst = converter.convert_raw_in_range(raw);
        out.write_all(format_raw(dst, &mut digits))
            .map_err(StreamError::Write)
    };
    loop {
        if end == buf.len() {
            if start == 0 {
                return Err(StreamError::Line(anyhow::anyhow!(
                    "line {}: longer than {MAX_LINE} bytes, not a raw integer",
                    line_no + 1
                )));
            }
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match input.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(e)),
        };
        if n == 0 {
            // A last line without a trailing newline still counts.
            if start < end {
                line_no += 1;
                emit(&buf[start..end], line_no)?;
            }
            return Ok(());
        }
        end += n;
        while let Some(pos) = buf[start..end].iter().position(|&b| b == b'\n') {
            line_no += 1;
            emit(&buf[start..start + pos], line_no)?;
            start += pos + 1;
        }
        if end - start > MAX_LINE {
            return Err(StreamError::Line(anyhow::anyhow!(
                "line {}: longer than {MAX_LINE} bytes, not a raw integer",
                line_no + 1
            )));
        }
    }
}

/// Parses one decimal raw integer (surrounding whitespace allowed) and checks it against the
/// source type's raw range.
fn parse_raw(line: &[u8], line_no: u64, src: &QType) -> anyhow::Result<i128> {
    let text = line.trim_ascii();
    let shown = || String::from_utf8_lossy(&text[..text.len().min(60)]).into_owned();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if text.is_empty() {
        bail!("line {line_no}: empty line, expected a decimal raw integer");
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        bail!("line {line_no}: `{}` is not a decimal integer", shown());
    }
    let mut magnitude: u128 = 0;
    for &d in digits {
        magnitude = match magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(d - b'0')))
        {
            Some(m) => m,
            None => bail!(
                "line {line_no}: `{}` is out of range for {src} (raw values {}..={})",
                shown(),
                src.min_raw(),
                src.max_raw()
            ),
        };
    }
    // Magnitudes beyond i128 are out of every source range; map them to a value that fails below.
    let raw = i128::try_from(magnitude).map_or(i128::MAX, |m| if negative { -m } else { m });
    if magnitude > i128::MAX as u128 || !src.contains_raw(raw) {
        bail!(
            "line {line_no}: raw value {} is out of range for {src} (raw values {}..={})",
            shown(),
            src.min_raw(),
            src.max_raw()
        );
    }
    Ok(raw)
}

/// Formats `v` and a newline into `buf` (right-aligned) and returns the used part.
fn format_raw(v: i128, buf: &mut [u8; 48]) -> &[u8] {
    let mut i = buf.len() - 1;
    buf[i] = b'\n';
    let mut m = v.unsigned_abs();
    // u64 division is much cheaper than u128 division: use it once the value fits.
    while m > u128::from(u64::MAX) {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
    }
    let mut m = m as u64;
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[derive(serde::Serialize)]
struct TypeInfo {
    #[serde(rename = "type")]
    ty: String,
    width: u32,
    int_bits: i32,
    frac_bits: i32,
    signed: bool,
    min: String,
    max: String,
    resolution: String,
    min_raw: i128,
    max_raw: i128,
    quantization: &'static str,
    overflow: &'static str,
    sat_bits: u32,
}

fn info(args: &InfoArgs) -> anyhow::Result<()> {
    let t = &args.ty;
    let (min, max) = t.range_decimal();
    let info = TypeInfo {
        ty: t.to_string(),
        width: t.width(),
        int_bits: t.int_bits(),
        frac_bits: t.frac_bits(),
        signed: t.is_signed(),
        min,
        max,
        resolution: t.resolution_decimal(),
        min_raw: t.min_raw(),
        max_raw: t.max_raw(),
        quantization: t.quant().hls_name(),
        overflow: t.overflow().hls_name(),
        sat_bits: t.sat_bits(),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&info).context("serializing type info")?
    } else {
        format!(
            "type:         {}\nsigned:       {}\nwidth:        {}\nint bits:     {}\nfrac bits:    {}\n\
             range:        {} .. {}\nresolution:   {}\nraw range:    {} .. {}\n\
             quantization: {}\noverflow:     {}\nsat bits:     {}",
            info.ty,
            info.signed,
            info.width,
            info.int_bits,
            info.frac_bits,
            info.min,
            info.max,
            info.resolution,
            info.min_raw,
            info.max_raw,
            info.quantization,
            info.overflow,
            info.sat_bits
        )
    };
    writeln!(io::stdout().lock(), "{text}").context("writing to stdout")
}

#[derive(serde::Serialize)]
struct CalibrationReport {
    method: CalibrationMethod,
    int_bits: i32,
    #[serde(rename = "type")]
    ty: String,
    mse: f64,
    width: u32,
    signed: bool,
    elements: usize,
    dtype: &'static str,
}

fn calibrate(args: &CalibrateArgs) -> anyhow::Result<()> {
    let path = &args.input;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let signed = !args.unsigned;
    super::npy::check_magic(&bytes).with_context(|| format!("reading {}", path.display()))?;
    super::npy::check_size_matches_header(&bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    let (result, elements, dtype) = match super::npy::read::<f64>(&bytes) {
        Ok(a) => {
            if !signed {
                no_negatives(a.iter().copied(), path)?;
            }
            (
                qfx::calibrate_array(&a, args.width, signed, args.method),
                a.len(),
                "f64",
            )
        }
        Err(ndarray_npy::ReadNpyError::WrongDescriptor(_)) => {
            let a = super::npy::read::<f32>(&bytes).with_context(|| {
                format!(
                    "reading {} as .npy: calibration needs float32 or float64 data",
                    path.display()
                )
            })?;
            if !signed {
                no_negatives(a.iter().map(|&v| f64::from(v)), path)?;
            }
            (
                qfx::calibrate_array(&a, args.width, signed, args.method),
                a.len(),
                "f32",
            )
        }
        Err(e) => {
            // The error's own text already includes its source; chaining both printed the
            // same I/O message twice.
            anyhow::bail!("reading {} as .npy: {e}", path.display());
        }
    };
    let cal = result.with_context(|| format!("calibrating on {}", path.display()))?;
    let report = CalibrationReport {
        method: cal.method,
        int_bits: cal.int_bits,
        ty: cal.ty.to_string(),
        mse: cal.mse,
        width: args.width,
        signed,
        elements,
        dtype,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("serializing calibration result")?
    } else {
        format!(
            "method:   {}\nint bits: {}\ntype:     {}\nmse:      {:e}\nelements: {} ({})",
            report.method, report.int_bits, report.ty, report.mse, report.elements, report.dtype
        )
    };
    writeln!(io::stdout().lock(), "{text}").context("writing to stdout")
}

/// `--unsigned` on data with negative values would clip them all to 0 without a word: refuse,
/// naming the most negative value.
fn no_negatives(values: impl Iterator<Item = f64>, path: &std::path::Path) -> anyhow::Result<()> {
    let worst = values
        .enumerate()
        .filter(|(_, v)| *v < 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((i, v)) = worst {
        anyhow::bail!(
            "--unsigned, but {} holds negative values (most negative {v} at flat index {i}); an \
             unsigned type would clip them to 0. Drop --unsigned to calibrate a signed type",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_extremes() {
        let mut b = [0u8; 48];
        assert_eq!(format_raw(0, &mut b), b"0\n");
        assert_eq!(format_raw(-42, &mut b), b"-42\n");
        assert_eq!(
            format_raw(i128::MIN, &mut b),
            b"-170141183460469231731687303715884105728\n"
        );
        assert_eq!(
            format_raw(u64::MAX as i128 + 1, &mut b),
            b"18446744073709551616\n"
        );
    }

    #[test]
    fn stream_converts_and_reports_bad_lines() {
        let from: QType = "ap_fixed<8,4>".parse().unwrap_or_else(|e| panic!("{e}"));
        let to: QType = "ap_fixed<4,2,AP_RND,AP_SAT>"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let conv = Converter::new(&from, &to);
        let mut out = Vec::new();
        let ok = convert_stream(&conv, &mut &b"20\n-20\r\n 127 \n-128"[..], &mut out);
        assert!(ok.is_ok());
        assert_eq!(out, b"5\n-5\n7\n-8\n");
        for (input, needle) in [
            (&b"1\n2\nx\n"[..], "line 3"),
            (&b"1\n\n"[..], "line 2: empty"),
            (&b"128\n"[..], "out of range"),
            (
                &b"99999999999999999999999999999999999999999999\n"[..],
                "out of range",
            ),
            (&b"--1\n"[..], "not a decimal"),
        ] {
            match convert_stream(&conv, &mut &input[..], &mut Vec::new()) {
                Err(StreamError::Line(e)) => assert!(e.to_string().contains(needle), "{e}"),
                _ => panic!("expected a line error for {input:?}"),
            }
        }
    }
}
