//! `accelforge sensitivity`: how much each quantizer of a QONNX model matters — every `Quant`
//! node run at fewer bits on its own, the network re-lowered and run on calibration data by the
//! golden engine.

use std::io::Write as _;
use std::path::PathBuf;

use accelforge_models::sensitivity::{Effect, Site, measure};
use anyhow::Context;
use clap::Args;
use serde::Serialize;

/// Per-quantizer precision sensitivity of a QONNX model on calibration data.
#[derive(Debug, Args)]
pub struct SensitivityArgs {
    /// The model (.onnx, QONNX: its `Quant` nodes are what is varied).
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    /// Calibration inputs: float32 .npy, batch first, the model's input shape after it.
    #[arg(long, value_name = "X.npy")]
    pub calib: PathBuf,
    /// Class labels (int64/int32 .npy): also report top-1 accuracy.
    #[arg(long, value_name = "L.npy")]
    pub labels: Option<PathBuf>,
    /// Bit widths to try (each at most the quantizer's exported width).
    #[arg(long, value_delimiter = ',', default_value = "8,6,4,2",
          value_parser = clap::value_parser!(u32).range(2..=24))]
    pub bits: Vec<u32>,
    /// Use only the first N calibration inputs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct SiteReport {
    index: usize,
    name: String,
    kind: &'static str,
    exported_bits: u32,
    effects: Vec<EffectReport>,
}

#[derive(Debug, Serialize)]
struct EffectReport {
    bits: u32,
    agreement: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    mean_abs_error: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    inputs: usize,
    sites: Vec<SiteReport>,
}

pub fn run(args: SensitivityArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let graph = accelforge_models::onnx::parse(&bytes)
        .with_context(|| format!("importing {}", args.model.display()))?;
    let x = super::npy::read_f32(&args.calib, "the calibration input")?;
    let flat = x
        .as_slice()
        .context("the calibration array is not contiguous")?;
    let per: usize = graph.input.shape[1..].iter().product();
    anyhow::ensure!(
        x.ndim() >= 1 && x.shape()[1..] == graph.input.shape[1..],
        "{}: shape {:?}, but the model takes a batch of {:?}",
        args.calib.display(),
        x.shape(),
        &graph.input.shape[1..]
    );
    let n = args.limit.map_or(x.shape()[0], |l| {
        x.shape()[0].min(usize::try_from(l).unwrap_or(usize::MAX))
    });
    anyhow::ensure!(n > 0, "{}: holds no inputs", args.calib.display());
    let labels = args
        .labels
        .as_deref()
        .map(super::npy::read_labels)
        .transpose()?;
    if let Some(l) = &labels {
        anyhow::ensure!(
            l.len() >= n,
            "--labels holds {} labels for {n} inputs",
            l.len()
        );
    }
    let (sites, effects) = measure(
        &graph,
        &flat[..n * per],
        labels.as_deref().map(|l| &l[..n]),
        &args.bits,
    )
    .with_context(|| format!("measuring {}", args.model.display()))?;
    anyhow::ensure!(
        !sites.is_empty(),
        "{} has no QONNX `Quant` node with a constant bit width to vary (QCDQ models are \
         8-bit by format)",
        args.model.display()
    );
    let report = Report {
        model: args.model.display().to_string(),
        inputs: n,
        sites: site_reports(&sites, &effects),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("serializing the report")?
    } else {
        table(&report, &args.bits)
    };
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

fn site_reports(sites: &[Site], effects: &[Effect]) -> Vec<SiteReport> {
    sites
        .iter()
        .enumerate()
        .map(|(i, s)| SiteReport {
            index: i,
            name: s.name.clone(),
            kind: s.kind,
            exported_bits: s.bits,
            effects: effects
                .iter()
                .filter(|e| e.site == i)
                .map(|e| EffectReport {
                    bits: e.bits,
                    agreement: e.agreement,
                    accuracy: e.accuracy,
                    mean_abs_error: e.mean_abs_error,
                })
                .collect(),
        })
        .collect()
}

/// One row per quantizer; per width, `agreement% (accuracy%)`.
fn table(r: &Report, widths: &[u32]) -> String {
    let mut t = format!(
        "{}: {} inputs; per quantizer run alone at fewer bits: top-1 agreement with the exported \
         model (and accuracy with --labels)\n\n{:<3} {:<24} {:<10} {:>4}",
        r.model, r.inputs, "#", "quantizer", "kind", "bits"
    );
    for b in widths {
        t += &format!(" {:>16}", format!("{b} bit"));
    }
    for s in &r.sites {
        t += &format!(
            "\n{:<3} {:<24} {:<10} {:>4}",
            s.index, s.name, s.kind, s.exported_bits
        );
        for b in widths {
            let cell = s.effects.iter().find(|e| e.bits == *b).map_or_else(
                || "-".to_string(),
                |e| match e.accuracy {
                    Some(a) => format!("{:.1}% ({:.1}%)", 100.0 * e.agreement, 100.0 * a),
                    None => format!("{:.1}%", 100.0 * e.agreement),
                },
            );
            t += &format!(" {cell:>16}");
        }
    }
    t
}
