//! `accelforge import`: read a QONNX / QCDQ ONNX model, lower it to the integer network, and
//! show what every layer became — and write a workload the mapper reads.
//!
//! Shared with `run`: loading a model file with an optional input type (`load_model`), the
//! integer-type names, and the JSON form of a layer table.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use accelforge_models::{InputType, IntNetwork, LayerInfo};
use accelforge_templates::qfx::{Overflow, QType, Quant};
use anyhow::Context;
use clap::Args;
use serde::Serialize;

/// Read an ONNX model (QONNX or QCDQ), print its per-layer integer table and write a workload.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The model file (.onnx), as exported (QONNX `Quant` nodes or QuantizeLinear /
    /// DequantizeLinear pairs).
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    /// Write `layers.json`, `layers.txt` and `workload.toml` (for `map --workload`) here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace DIR if it is an earlier accelforge output.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// How to quantize a float network input (a graph that feeds its input to a layer without
    /// a quantizer): `ap_fixed<W,I>` or `ap_ufixed<W,I>`, rounding half to even and saturating
    /// as a QONNX `Quant` does. Ignored when the graph quantizes its input itself.
    #[arg(long, value_name = "TYPE")]
    pub input_type: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Where the network input's quantization comes from, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct InputQuantReport {
    /// `graph` (the model's own quantizer), `given` (--input-type) or `calibrated` (from data).
    pub source: &'static str,
    /// The fixed-point type when accelforge chose or was given one.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
}

impl InputQuantReport {
    pub fn describe(&self) -> String {
        match (self.source, &self.ty) {
            ("graph", _) => "quantized by the graph's own input quantizer".into(),
            ("given", Some(t)) => format!("float, quantized as {t} (--input-type)"),
            (_, Some(t)) => format!("float, quantized as {t} (calibrated from the input data)"),
            _ => "float".into(),
        }
    }
}

/// A loaded model and how its input is quantized.
#[derive(Debug)]
pub struct LoadedModel {
    pub net: IntNetwork,
    pub input: InputQuantReport,
}

/// The fixed-point spelling of an [`InputType`].
pub fn input_type_name(t: &InputType) -> String {
    let int_bits = t.bits as i32 - t.frac;
    if t.signed {
        format!("ap_fixed<{},{int_bits}>", t.bits)
    } else {
        format!("ap_ufixed<{},{int_bits}>", t.bits)
    }
}

/// Parses `--input-type`: a signed or unsigned fixed-point type of 2 to 16 bits. Only the
/// default modes or round-half-even with saturation are accepted, since that is what the
/// input quantizer does; other modes would promise a behaviour it does not have.
pub fn parse_input_type(text: &str) -> anyhow::Result<InputType> {
    let q: QType = text
        .parse()
        .with_context(|| format!("--input-type `{text}`"))?;
    if !(2..=16).contains(&q.width()) {
        anyhow::bail!(
            "--input-type `{text}`: the input quantizer takes 2 to 16 bits, this type has {}",
            q.width()
        );
    }
    let default_modes = q.quant() == Quant::Trn && q.overflow() == Overflow::Wrap;
    let quantizer_modes = q.quant() == Quant::RndConv && q.overflow() == Overflow::Sat;
    if !(default_modes || quantizer_modes) {
        anyhow::bail!(
            "--input-type `{text}`: the network input is quantized rounding half to even and \
             saturating (as a QONNX Quant), not with {} and {}; write the type without modes, \
             e.g. {}<{},{}>",
            q.quant().hls_name(),
            q.overflow().hls_name(),
            if q.is_signed() {
                "ap_fixed"
            } else {
                "ap_ufixed"
            },
            q.width(),
            q.int_bits()
        );
    }
    Ok(InputType {
        bits: q.width(),
        frac: q.frac_bits(),
        signed: q.is_signed(),
    })
}

/// Reads and lowers a model. `input_type` is used only when the graph leaves its input float;
/// `calibration` supplies data to choose one from when the user gave none.
pub fn load_model(
    path: &Path,
    input_type: Option<&str>,
    calibration: Option<&[f32]>,
) -> anyhow::Result<LoadedModel> {
    load_model_with(path, input_type, calibration, &[])
}

/// [`load_model`] with some QONNX quantizers set to other widths first (`(name, bits)`, as
/// `map MODEL.onnx --mixed-out` reports them; see `accelforge_models::sensitivity::with_bits`).
pub fn load_model_with(
    path: &Path,
    input_type: Option<&str>,
    calibration: Option<&[f32]>,
    widths: &[(String, u32)],
) -> anyhow::Result<LoadedModel> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let given = input_type.map(parse_input_type).transpose()?;
    let context = || format!("importing {}", path.display());
    let mut graph = accelforge_models::onnx::parse(&bytes).with_context(context)?;
    if !widths.is_empty() {
        let sites = accelforge_models::sensitivity::sites(&graph);
        for (name, bits) in widths {
            let site = sites.iter().find(|s| &s.name == name).with_context(|| {
                format!(
                    "{}: no QONNX quantizer named `{name}` with a constant width (the mixed \
                     report is for another model?)",
                    path.display()
                )
            })?;
            if *bits != site.bits {
                graph = accelforge_models::sensitivity::with_bits(&graph, site, *bits)
                    .with_context(|| {
                        format!("{}: setting {name} to {bits} bits", path.display())
                    })?;
            }
        }
    }
    let lower = |t| accelforge_models::lower::lower(&graph, t);
    let net = match lower(given) {
        Err(e @ accelforge_models::ModelError::FloatInput { .. }) if given.is_none() => {
            let Some(data) = calibration else {
                return Err(e).with_context(|| {
                    format!("{}: pass --input-type (e.g. ap_ufixed<8,4>)", context())
                });
            };
            let t = InputType::calibrate(data, 8).with_context(|| {
                format!(
                    "{}: cannot calibrate an input type from the data (empty or not finite)",
                    context()
                )
            })?;
            lower(Some(t)).with_context(context)?
        }
        other => other.with_context(context)?,
    };
    let input = match net.input_type {
        None => InputQuantReport {
            source: "graph",
            ty: None,
        },
        Some(t) => InputQuantReport {
            source: if given.is_some() {
                "given"
            } else {
                "calibrated"
            },
            ty: Some(input_type_name(&t)),
        },
    };
    Ok(LoadedModel { net, input })
}

/// The integer type of a range: `uint4` for 0..=15, `int8` for -128..=127 (or -127..=127).
pub fn int_type_name((lo, hi): (i64, i64)) -> String {
    let bits_for = |v: i64| 64 - v.leading_zeros();
    if lo >= 0 {
        format!("uint{}", bits_for(hi).max(1))
    } else {
        // Signed: the widest of what the negative and the positive end need, plus the sign.
        let neg = bits_for(-(lo + 1));
        format!("int{}", neg.max(bits_for(hi)) + 1)
    }
}

/// The same range as a QFX integer type (`ap_ufixed<W,W>` / `ap_fixed<W,W>`), for workloads.
fn int_qfx_type(range: (i64, i64)) -> String {
    let name = int_type_name(range);
    match name.strip_prefix("uint") {
        Some(w) => format!("ap_ufixed<{w},{w}>"),
        None => {
            let w = &name["int".len()..];
            format!("ap_fixed<{w},{w}>")
        }
    }
}

/// One row of the JSON layer table.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    pub index: usize,
    pub name: String,
    pub op: &'static str,
    pub in_shape: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub in_type: Option<String>,
    pub weight_type: Option<String>,
    pub out_type: String,
    /// Real value of one output step, where the layer quantizes.
    pub out_scale: Option<f64>,
    pub macs: u64,
    /// The GEMM an array layer runs as, `[M, K, N]`.
    pub gemm: Option<[u64; 3]>,
    pub runs_on: &'static str,
}

/// The layer table with names (`conv1`, `dense2`...) counted per op.
pub fn layer_rows(net: &IntNetwork) -> Vec<LayerRow> {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    net.layers()
        .into_iter()
        .enumerate()
        .map(|(index, l): (usize, LayerInfo)| {
            let n = counts.entry(l.op).or_default();
            *n += 1;
            let gemm = l.gemm().map(|(m, k, n)| [m, k, n]);
            LayerRow {
                index,
                name: format!("{}{n}", l.op.replace('-', "_")),
                op: l.op,
                in_type: l.in_range.map(int_type_name),
                weight_type: l.weight_range.map(int_type_name),
                out_type: int_type_name(l.out_range),
                out_scale: l.out_scale,
                macs: l.macs,
                gemm,
                runs_on: l.runs_on,
                in_shape: l.in_shape,
                out_shape: l.out_shape,
            }
        })
        .collect()
}

/// The network's array layers as mapper workload TOML (`dense` and `conv2d` layers; a
/// convolution whose strides or paddings differ per direction becomes its im2col `gemm`).
pub fn workload_toml(net: &IntNetwork, name: &str, source: &str) -> String {
    let mut t = format!(
        "# Written by `accelforge import {source}`: the array layers of the model, batch 1.\n\
         name = {}\ndescription = {}\n",
        toml_str(name),
        toml_str(&format!("imported from {source}"))
    );
    for (row, info) in layer_rows(net).iter().zip(net.layers()) {
        let (Some(w), Some(i)) = (info.weight_range, info.in_range) else {
            continue;
        };
        t += &format!("\n[[layer]]\nname = {}\n", toml_str(&row.name));
        match (info.op, info.geom) {
            ("conv", Some(g)) if g.sh == g.sw && g.pt == g.pl && conv_fits(&g) => {
                t += &format!(
                    "kind = \"conv2d\"\nh = {}\nw = {}\nc_in = {}\nc_out = {}\nkernel_h = {}\n\
                     kernel_w = {}\nstride = {}\npad = {}\n",
                    g.h, g.w, g.c, g.o, g.kh, g.kw, g.sh, g.pt
                );
            }
            _ => {
                let (m, k, n) = info.gemm().unwrap_or((1, 1, 1));
                if info.op == "dense" {
                    t += &format!(
                        "kind = \"dense\"\nbatch = {m}\nin_features = {k}\nout_features = {n}\n"
                    );
                } else {
                    t += &format!("kind = \"gemm\"\nm = {m}\nk = {k}\nn = {n}\n");
                }
            }
        }
        t += &format!(
            "in = {}\nweight = {}\nout = {}\n",
            toml_str(&int_qfx_type(i)),
            toml_str(&int_qfx_type(w)),
            toml_str(&int_qfx_type(info.out_range))
        );
    }
    t
}

/// Whether the mapper's symmetric-padding convolution has the same output size as the model's
/// (the model may pad asymmetrically: `pads` begin/end differ).
fn conv_fits(g: &accelforge_models::net::ConvGeom) -> bool {
    let out = |x: usize, k: usize| (x + 2 * g.pt).checked_sub(k).map(|v| v / g.sh + 1);
    out(g.h, g.kh) == Some(g.oh) && out(g.w, g.kw) == Some(g.ow)
}

fn toml_str(s: &str) -> String {
    // TOML basic strings take JSON's escapes for the characters that need one.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The layer table as text.
pub fn layer_table(rows: &[LayerRow]) -> String {
    let shape = |s: &[usize]| {
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("x")
    };
    let mut lines = vec![[
        "#".to_string(),
        "layer".into(),
        "op".into(),
        "in shape".into(),
        "out shape".into(),
        "in".into(),
        "weights".into(),
        "out".into(),
        "out scale".into(),
        "MACs".into(),
        "GEMM MxKxN".into(),
        "runs on".into(),
    ]];
    for r in rows {
        lines.push([
            r.index.to_string(),
            r.name.clone(),
            r.op.to_string(),
            shape(&r.in_shape),
            shape(&r.out_shape),
            r.in_type.clone().unwrap_or_else(|| "float".into()),
            r.weight_type.clone().unwrap_or_else(|| "-".into()),
            r.out_type.clone(),
            r.out_scale.map_or("-".into(), scale_text),
            r.macs.to_string(),
            r.gemm
                .map_or("-".into(), |[m, k, n]| format!("{m}x{k}x{n}")),
            r.runs_on.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|l| {
            l.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A scale as `2^-5` when it is a power of two (an ap_fixed binary point), else its value.
fn scale_text(s: f64) -> String {
    let e = s.log2().round();
    if s > 0.0 && 2f64.powf(e) == s {
        format!("2^{e}")
    } else {
        format!("{s:.6e}")
    }
}

#[derive(Debug, Serialize)]
struct ImportReport<'a> {
    model: String,
    input_shape: &'a [usize],
    input: &'a InputQuantReport,
    macs: u64,
    layers: &'a [LayerRow],
    files: Vec<String>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let loaded = load_model(&args.model, args.input_type.as_deref(), None)?;
    let rows = layer_rows(&loaded.net);
    let source = args
        .model
        .file_name()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let stem = args
        .model
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let table = layer_table(&rows);
    let mut files = Vec::new();
    if let Some(out) = &args.out {
        let toml = workload_toml(&loaded.net, &stem, &source);
        // The workload must load in the mapper as written: check it before anything is written.
        accelforge_mapper::workload::parse_workload(&toml, "workload.toml", &stem)
            .context("the workload written for the mapper does not parse (a bug)")?;
        let staged = accelforge_hdl::output::StagedDir::new(out, args.force)?;
        let json = serde_json::to_string_pretty(&rows).context("serializing the layer table")?;
        for (name, text) in [
            ("layers.json", json),
            ("layers.txt", table.clone() + "\n"),
            ("workload.toml", toml),
        ] {
            accelforge_hdl::output::write_atomic(&staged.path().join(name), text.as_bytes())?;
            files.push(out.join(name).display().to_string());
        }
        staged.commit("import")?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let report = ImportReport {
            model: args.model.display().to_string(),
            input_shape: &loaded.net.input_shape,
            input: &loaded.input,
            macs: loaded.net.macs(),
            layers: &rows,
            files,
        };
        let text = serde_json::to_string_pretty(&report).context("serializing the report")?;
        writeln!(stdout, "{text}").context("writing to stdout")?;
    } else {
        writeln!(
            stdout,
            "{}: input {:?}, {}; {} MACs per inference\n\n{table}",
            args.model.display(),
            loaded.net.input_shape,
            loaded.input.describe(),
            loaded.net.macs()
        )
        .context("writing to stdout")?;
        for f in &files {
            writeln!(stdout, "wrote {f}").context("writing to stdout")?;
        }
    }
    Ok(())
}
