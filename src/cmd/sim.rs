//! `accelforge sim gemm|conv2d ...`: builds (cached) and simulates the systolic array in
//! Verilator with seeded random data, checking every output against the golden model.

use std::ffi::OsString;
use std::path::PathBuf;

use accelforge_templates::systolic::layer::{Conv2d, Gemm};
use accelforge_templates::systolic::sim::{self, SimOptions, random_gemm_operands};
use accelforge_templates::workload::{self, Layer, LayerOp};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::generate::ArrayArgs;

/// Cycle-accurate simulation against the golden model.
#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub layer: SimLayer,
}

#[derive(Debug, Subcommand)]
pub enum SimLayer {
    /// A GEMM / fully connected layer.
    Gemm {
        #[command(flatten)]
        shape: GemmArgs,
        #[command(flatten)]
        array: ArrayArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// A conv2d layer (host im2col, then GEMM).
    Conv2d {
        #[command(flatten)]
        shape: Conv2dArgs,
        #[command(flatten)]
        array: ArrayArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// A Mixture-of-Experts layer on the MoE streaming core.
    Moe(super::moe::SimMoeArgs),
    /// A whole pre-LN encoder block (MLP or MoE FFN): every kernel in Verilator against its
    /// golden model, per-stage cycles and error against the float64 block.
    Block(super::block::BlockArgs),
    /// `sim NAME --params FILE [--layer FILE] [--seed N]`: any registered template
    /// (`accelforge templates`) in Verilator against its golden model.
    #[command(external_subcommand)]
    Template(Vec<OsString>),
}

/// GEMM shape: `--m --k --n`, or `--layer FILE` (TOML, `kind = "gemm"` or `"dense"`).
#[derive(Debug, Args, Clone)]
pub struct GemmArgs {
    /// Rows of A and C.
    #[arg(long)]
    pub m: Option<u32>,
    /// Reduction length.
    #[arg(long)]
    pub k: Option<u32>,
    /// Columns of B and C.
    #[arg(long)]
    pub n: Option<u32>,
    /// Layer description (TOML) instead of the shape options.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["m", "k", "n"])]
    pub layer: Option<PathBuf>,
}

/// conv2d shape, or `--layer FILE` (TOML, `kind = "conv2d"`). The flags are named as the
/// workload keys (`--c-in`, `--c-out`, `--kernel-h`, `--kernel-w`); the short forms `--c`,
/// `--k`, `--r`, `--s` remain as aliases.
#[derive(Debug, Args, Clone)]
pub struct Conv2dArgs {
    /// Input height.
    #[arg(long)]
    pub h: Option<u32>,
    /// Input width.
    #[arg(long)]
    pub w: Option<u32>,
    /// Input channels.
    #[arg(long, visible_alias = "c")]
    pub c_in: Option<u32>,
    /// Output channels.
    #[arg(long, visible_alias = "k")]
    pub c_out: Option<u32>,
    /// Kernel height.
    #[arg(long, visible_alias = "r")]
    pub kernel_h: Option<u32>,
    /// Kernel width.
    #[arg(long, visible_alias = "s")]
    pub kernel_w: Option<u32>,
    /// Stride.
    #[arg(long, default_value_t = 1)]
    pub stride: u32,
    /// Zero padding.
    #[arg(long, default_value_t = 0)]
    pub pad: u32,
    /// Layer description (TOML) instead of the shape options.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["h", "w", "c_in", "c_out", "kernel_h", "kernel_w", "stride", "pad"]
    )]
    pub layer: Option<PathBuf>,
}

/// Simulation options.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Seed of the random operands and back-pressure.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Probability (0..1) of an idle input cycle and of output tready low.
    #[arg(long, default_value_t = 0.0)]
    pub backpressure: f64,
    /// Write a VCD waveform.
    #[arg(long, value_name = "FILE.vcd")]
    pub trace: Option<PathBuf>,
    /// Print JSON (keys `cycles`, `macs`, `utilization`, `outputs_checked`, `mismatches`,
    /// `sim_cycles_per_second`, ...).
    #[arg(long)]
    pub json: bool,
}

fn read_layer(path: &PathBuf) -> anyhow::Result<Layer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading layer file `{}`", path.display()))?;
    Ok(workload::parse_layer(&text, &path.display().to_string())?)
}

fn need(v: Option<u32>, flag: &str) -> anyhow::Result<u32> {
    v.with_context(|| format!("missing `--{flag}` (or give the shape with `--layer FILE`)"))
}

/// A shape read from a layer file, narrowed to the array's 32-bit GEMM dimensions.
fn dim(v: u64, key: &str, path: &std::path::Path) -> anyhow::Result<u32> {
    u32::try_from(v)
        .with_context(|| format!("`{}`: {key} = {v} does not fit 32 bits", path.display()))
}

impl GemmArgs {
    /// The GEMM shape.
    pub fn gemm(&self) -> anyhow::Result<Gemm> {
        if let Some(path) = &self.layer {
            let (m, k, n) = match read_layer(path)?.op {
                LayerOp::Gemm(g) => (g.m, g.k, g.n),
                LayerOp::Dense {
                    batch,
                    in_features,
                    out_features,
                } => (batch, in_features, out_features),
                LayerOp::Conv2d(_) => bail!(
                    "`{}` describes a conv2d layer; use the `conv2d` subcommand",
                    path.display()
                ),
                LayerOp::Moe(_) | LayerOp::Attention(_) => {
                    let kind = read_layer(path)?.op.kind();
                    bail!(
                        "`{}` describes a {kind} layer; use the `{kind}` subcommand",
                        path.display()
                    )
                }
            };
            return Ok(Gemm {
                m: dim(m, "m", path)?,
                k: dim(k, "k", path)?,
                n: dim(n, "n", path)?,
            });
        }
        Ok(Gemm {
            m: need(self.m, "m")?,
            k: need(self.k, "k")?,
            n: need(self.n, "n")?,
        })
    }
}

impl Conv2dArgs {
    /// The convolution.
    pub fn conv(&self) -> anyhow::Result<Conv2d> {
        if let Some(path) = &self.layer {
            return match read_layer(path)?.op {
                LayerOp::Conv2d(c) => Ok(c),
                other => bail!(
                    "`{}` describes a {} layer; use the `{}` subcommand",
                    path.display(),
                    other.kind(),
                    match other {
                        LayerOp::Moe(_) | LayerOp::Attention(_) => other.kind(),
                        _ => "gemm",
                    }
                ),
            };
        }
        Ok(Conv2d {
            h: need(self.h, "h")?.into(),
            w: need(self.w, "w")?.into(),
            c_in: need(self.c_in, "c-in")?.into(),
            c_out: need(self.c_out, "c-out")?.into(),
            kernel_h: need(self.kernel_h, "kernel-h")?.into(),
            kernel_w: need(self.kernel_w, "kernel-w")?.into(),
            stride: self.stride.into(),
            pad: self.pad.into(),
            depthwise: false,
        })
    }
    /// The GEMM it lowers to.
    pub fn gemm(&self) -> anyhow::Result<Gemm> {
        Ok(self.conv()?.gemm()?)
    }
}

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let (report, run) = match args.layer {
        SimLayer::Moe(a) => return super::moe::sim_moe(a),
        SimLayer::Block(a) => return super::block::sim(a),
        SimLayer::Template(argv) => return super::template::sim(argv),
        SimLayer::Gemm { shape, array, run } => {
            let p = array.params()?;
            let g = shape.gemm()?;
            g.check(&p)?;
            check_sim_size(&g)?;
            let r = p.resolve()?;
            let (a, b) = random_gemm_operands(&r, &g, run.seed);
            let rep = sim::run_gemm(&p, &g, &a, &b, &options(&run)?)
                .with_context(|| format!("simulating {g}"))?;
            (rep, run)
        }
        SimLayer::Conv2d { shape, array, run } => {
            let p = array.params()?;
            let conv = shape.conv()?;
            let g = conv.gemm()?;
            g.check(&p)?;
            check_sim_size(&g)?;
            let rep = sim::run_conv2d(&p, &conv, &options(&run)?)
                .context("simulating the conv2d layer")?;
            (rep, run)
        }
    };
    if run.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} cycles (model {}), utilization {:.4}, {} outputs checked, {} mismatches, \
             {:.0} simulated cycles/s ({:.3} s{})",
            report.cycles,
            report.model_cycles,
            report.utilization,
            report.outputs_checked,
            report.mismatches,
            report.sim_cycles_per_second,
            report.sim_seconds,
            if report.build_cached {
                ", cached build"
            } else {
                ""
            }
        );
    }
    if report.mismatches != 0 {
        bail!("{} outputs differ from the golden model", report.mismatches);
    }
    Ok(())
}

/// Refuses a layer whose operands (A, B and C together) exceed the simulation's memory bound
/// before anything is allocated: a 65535x256x65535 GEMM needs ~4.3 G elements and used to abort
/// in the allocator.
fn check_sim_size(g: &Gemm) -> anyhow::Result<()> {
    accelforge_templates::systolic::sim::check_sim_size(g).map_err(anyhow::Error::msg)
}

fn options(run: &RunArgs) -> anyhow::Result<SimOptions> {
    if !(0.0..1.0).contains(&run.backpressure) {
        bail!("--backpressure must be in [0, 1), got {}", run.backpressure);
    }
    Ok(SimOptions {
        seed: run.seed,
        backpressure: run.backpressure,
        trace: run.trace.clone(),
    })
}
