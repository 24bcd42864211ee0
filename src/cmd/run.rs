//! `accelforge run`: a model's whole network on a batch of inputs, with the golden engine (the
//! integer network in Rust, bit-exact with the model's reference executor).

use std::io::Write as _;
use std::path::PathBuf;

use accelforge_models::IntNetwork;
use anyhow::Context;
use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde::Serialize;

use super::import::{InputQuantReport, LayerRow, layer_rows, load_model_with};

/// Run a model (QONNX or QCDQ ONNX) on a batch of inputs and write its outputs.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model file (.onnx).
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    /// Inputs: float32 .npy with the batch as its first axis and the model's input shape after
    /// it (e.g. (N, 1, 8, 8) for a model whose input is [1, 1, 8, 8]).
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// Outputs: float32 .npy, one row per input, the values the ONNX graph computes.
    #[arg(long, value_name = "Y.npy")]
    pub out: PathBuf,
    /// Which engine computes the layers.
    #[arg(long, value_enum, default_value_t = Engine::Golden)]
    pub engine: Engine,
    /// Run only the first N inputs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Class labels (int64 or int32 .npy, one per input): report top-1 accuracy.
    #[arg(long, value_name = "L.npy")]
    pub labels: Option<PathBuf>,
    /// The board whose mapped configuration runs the array layers (--engine rtl).
    #[arg(long, value_name = "BOARD", conflicts_with = "params")]
    pub board: Option<String>,
    /// A systolic params.json to run the array layers on (--engine rtl).
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
    /// A mixed-precision choice (`map MODEL.onnx --mixed-out FILE`): its quantizer widths are
    /// applied before lowering, and with --engine rtl each array layer runs on its engine.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["board", "params"])]
    pub mixed: Option<PathBuf>,
    /// How to quantize a float network input: `ap_fixed<W,I>` / `ap_ufixed<W,I>` (rounding half
    /// to even, saturating). Without it, an 8-bit type is calibrated from the inputs.
    #[arg(long, value_name = "TYPE")]
    pub input_type: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The integer network in Rust (exact; the reference for the RTL).
    Golden,
    /// Every array layer in Verilator on the systolic template.
    Rtl,
}

/// Per layer of the JSON report: the table row, and the hardware figures where an engine
/// measured them (`null` for the golden engine and for host layers).
#[derive(Debug, Serialize)]
struct LayerReport {
    #[serde(flatten)]
    row: LayerRow,
    cycles: Option<u64>,
    model_cycles: Option<u64>,
    mismatches: Option<u64>,
}

#[derive(Debug, Serialize)]
struct RunReport {
    model: String,
    inputs: usize,
    engine: Engine,
    input: InputQuantReport,
    layers: Vec<LayerReport>,
    total_cycles: Option<u64>,
    latency_ms: Option<f64>,
    mismatches: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    /// The array the RTL engine ran (params, where they came from, clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    hardware: Option<super::run_rtl::RtlSetup>,
    out: String,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.engine == Engine::Golden && (args.board.is_some() || args.params.is_some()) {
        anyhow::bail!(
            "--board and --params choose the hardware for --engine rtl; the golden engine does \
             not use them"
        );
    }
    let x = super::npy::read_f32(&args.input, "the input")?;
    let labels = args
        .labels
        .as_deref()
        .map(super::npy::read_labels)
        .transpose()?;
    let flat = x
        .as_slice()
        .context("the input array is not contiguous (C order)")?;
    let mixed = args
        .mixed
        .as_deref()
        .map(super::run_rtl::read_mixed)
        .transpose()?;
    let loaded = load_model_with(
        &args.model,
        args.input_type.as_deref(),
        Some(flat),
        mixed.as_ref().map_or(&[][..], |m| &m.widths),
    )?;
    let net = &loaded.net;
    let per = net.input_len();
    let want: Vec<usize> = net.input_shape[1..].to_vec();
    if x.ndim() < 1 || x.shape()[1..] != want[..] {
        anyhow::bail!(
            "{}: shape {:?}, but the model takes a batch of {want:?} ((N, {}) with N inputs); \
             put the batch on the first axis",
            args.input.display(),
            x.shape(),
            want.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let available = x.shape()[0];
    let n = args.limit.map_or(available, |l| {
        available.min(usize::try_from(l).unwrap_or(usize::MAX))
    });
    if n == 0 {
        anyhow::bail!(
            "{}: holds no inputs (batch axis is 0)",
            args.input.display()
        );
    }
    if let Some(l) = &labels
        && l.len() < n
    {
        anyhow::bail!(
            "--labels holds {} labels for {n} inputs; give one label per input",
            l.len()
        );
    }
    let x = &flat[..n * per];
    let golden_out = golden(net, x, per)?;
    let mut layers: Vec<LayerReport> = layer_rows(net)
        .into_iter()
        .map(|row| LayerReport {
            row,
            cycles: None,
            model_cycles: None,
            mismatches: None,
        })
        .collect();
    let mut hardware = None;
    let (outputs, mismatches, total_cycles, latency_ms) = match args.engine {
        Engine::Golden => (golden_out, None, None, None),
        Engine::Rtl => {
            let toml =
                super::import::workload_toml(net, "model", &args.model.display().to_string());
            let setup = match &mixed {
                Some(m) => m.setup(net)?,
                None => super::run_rtl::setup(
                    net,
                    &toml,
                    (args.board.as_deref(), None),
                    args.params.as_deref(),
                    n as u64,
                )?,
            };
            let progress = Progress::new(
                net.stages.iter().filter(|s| s.is_array()).count(),
                "array layers in Verilator",
            );
            let super::run_rtl::RtlRun {
                outputs: out,
                layers: runs,
            } = super::run_rtl::run(net, &setup, x, per, |_| progress.inc())?;
            drop(progress);
            let mut total = 0u64;
            let mut layer_mismatches = 0u64;
            for (si, r) in &runs {
                let l = &mut layers[*si];
                l.cycles = Some(r.cycles);
                l.model_cycles = Some(r.model_cycles);
                l.mismatches = Some(r.mismatches);
                total += r.cycles;
                layer_mismatches += r.mismatches;
            }
            // The network's outputs against the golden engine's, value by value.
            let output_mismatches =
                out.iter().zip(&golden_out).filter(|(a, b)| a != b).count() as u64;
            let ms = total as f64 / (setup.clock_mhz * 1e3);
            hardware = Some(setup);
            (
                out,
                Some(layer_mismatches + output_mismatches),
                Some(total),
                Some(ms),
            )
        }
    };
    let accuracy = labels.map(|l| accelforge_models::top1_accuracy(&outputs, net.out_len, &l[..n]));
    let mut bytes = Vec::new();
    {
        use ndarray_npy::WriteNpyExt as _;
        ndarray::Array2::from_shape_vec((n, net.out_len), outputs)
            .context("output shape")?
            .write_npy(&mut bytes)
            .context("encoding the outputs as .npy")?;
    }
    accelforge_hdl::output::write_atomic(&args.out, &bytes)?;
    let report = RunReport {
        model: args.model.display().to_string(),
        inputs: n,
        engine: args.engine,
        input: loaded.input,
        layers,
        total_cycles,
        latency_ms,
        mismatches,
        accuracy,
        hardware,
        out: args.out.display().to_string(),
    };
    print_report(&report, args.json)
}

/// Every input through the integer network, in parallel; the first failing input is named.
fn golden(net: &IntNetwork, x: &[f32], per: usize) -> anyhow::Result<Vec<f32>> {
    let progress = Progress::new(x.len() / per, "inputs");
    let rows: Vec<Vec<f32>> = x
        .par_chunks(per)
        .enumerate()
        .map(|(i, xi)| {
            let y = net.run(xi).with_context(|| format!("input {i}"));
            progress.inc();
            y
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(rows.concat())
}

fn print_report(r: &RunReport, json: bool) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(r).context("serializing the report")?
    } else {
        let mut t = format!(
            "{}: {} inputs, engine {}\ninput: {}\n",
            r.model,
            r.inputs,
            match r.engine {
                Engine::Golden => "golden (integer network, bit-exact with the model)",
                Engine::Rtl => "rtl (Verilator)",
            },
            r.input.describe()
        );
        if let Some(h) = &r.hardware {
            t += &format!(
                "array: {}x{} {:?}, {} x {} -> {} ({}), {} MHz\n",
                h.params.rows,
                h.params.cols,
                h.params.dataflow,
                h.params.input_type,
                h.params.weight_type,
                h.params.acc_type,
                h.source,
                h.clock_mhz
            );
            for l in r.layers.iter().filter(|l| l.cycles.is_some()) {
                t += &format!(
                    "  {:<10} {:>10} cycles (model {:>10}), {} mismatches\n",
                    l.row.name,
                    l.cycles.unwrap_or(0),
                    l.model_cycles.unwrap_or(0),
                    l.mismatches.unwrap_or(0)
                );
            }
            t += &format!(
                "total: {} cycles = {:.3} ms; {} mismatches against the golden engine\n",
                r.total_cycles.unwrap_or(0),
                r.latency_ms.unwrap_or(0.0),
                r.mismatches.unwrap_or(0)
            );
        }
        if let Some(a) = r.accuracy {
            t += &format!("accuracy: {:.2}% top-1\n", 100.0 * a);
        }
        t += &format!("wrote {}", r.out);
        t
    };
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

/// A bar on a terminal for long runs; nothing otherwise (logs, CI, --json pipelines).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(total: usize, what: &str) -> Progress {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let template = format!("{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {what}");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            pb.set_style(style.progress_chars("=> "));
        }
        Progress(Some(pb))
    }

    fn inc(&self) {
        if let Some(pb) = &self.0 {
            pb.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
