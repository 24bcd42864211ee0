//! `accelforge estimate gemm|conv2d ...`: the analytic cycle model and the resource model.

use std::ffi::OsString;

use accelforge_templates::systolic::cost;
use clap::{Args, Subcommand};

use super::generate::ArrayArgs;
use super::sim::{Conv2dArgs, GemmArgs};

/// Cycle and resource estimates without simulating.
#[derive(Debug, Args)]
pub struct EstimateArgs {
    #[command(subcommand)]
    pub layer: EstimateLayer,
}

#[derive(Debug, Subcommand)]
pub enum EstimateLayer {
    /// A Mixture-of-Experts layer on the MoE streaming core.
    Moe(super::moe::EstimateMoeArgs),
    /// A whole pre-LN encoder block from the kernels' cycle models, with the error of every
    /// stage against the float64 block.
    Block(super::block::BlockArgs),
    /// A GEMM / fully connected layer.
    Gemm {
        #[command(flatten)]
        shape: GemmArgs,
        #[command(flatten)]
        array: ArrayArgs,
        /// Print JSON (keys `cycles`, `utilization`, `resources`, `macs`, ...).
        #[arg(long)]
        json: bool,
    },
    /// A conv2d layer (lowered to GEMM by im2col).
    Conv2d {
        #[command(flatten)]
        shape: Conv2dArgs,
        #[command(flatten)]
        array: ArrayArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// `estimate NAME --params FILE [--layer FILE]`: any registered template (`accelforge
    /// templates`), priced with its exact models.
    #[command(external_subcommand)]
    Template(Vec<OsString>),
}

pub fn run(args: EstimateArgs) -> anyhow::Result<()> {
    let (g, array, json) = match args.layer {
        EstimateLayer::Moe(a) => return super::moe::estimate_moe(a),
        EstimateLayer::Block(a) => return super::block::estimate(a),
        EstimateLayer::Template(argv) => return super::template::estimate(argv),
        EstimateLayer::Gemm { shape, array, json } => (shape.gemm()?, array, json),
        EstimateLayer::Conv2d { shape, array, json } => (shape.gemm()?, array, json),
    };
    let p = array.params()?;
    g.check(&p)?;
    let e = cost::cycles(&p, &g)?;
    let res = cost::resources(&p)?;
    if json {
        let v = serde_json::json!({
            "cycles": e.cycles,
            "utilization": e.utilization,
            "macs": e.macs,
            "input_beats": e.input_beats,
            "output_beats": e.output_beats,
            "gemm": g,
            "resources": res,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{g} on {}x{}: {} cycles, utilization {:.4} ({} input beats, {} output beats)",
            p.rows, p.cols, e.cycles, e.utilization, e.input_beats, e.output_beats
        );
        println!(
            "resources: {} LUT (rough), {} FF (rough), {} DSP, {} BRAM18, {} BRAM36, {} URAM",
            res.lut, res.ff, res.dsp, res.bram18, res.bram36, res.uram
        );
    }
    Ok(())
}
