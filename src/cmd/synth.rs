//! `accelforge synth FILE.v --top NAME --family xc7|xcup`: Yosys resource statistics.

use std::path::PathBuf;

use accelforge_hdl::tools::{self, Family};
use anyhow::Context;

/// FPGA family for `synth_xilinx`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FamilyArg {
    /// 7-series / Zynq-7000 (DSP48E1, RAMB18E1/36E1).
    Xc7,
    /// UltraScale+ / Zynq UltraScale+ (DSP48E2, URAM).
    Xcup,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Family {
        match f {
            FamilyArg::Xc7 => Family::Xc7,
            FamilyArg::Xcup => Family::Xcup,
        }
    }
}

/// Synthesise Verilog with Yosys `synth_xilinx` and report LUT/FF/CARRY/DSP/BRAM/URAM and logic depth.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Verilog files of the design.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Top module.
    #[arg(long)]
    pub top: String,
    /// Target family.
    #[arg(long, value_enum)]
    pub family: FamilyArg,
    /// Print JSON (keys lut, ff, carry, dsp, bram18, bram36, uram, logic_depth, cells).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let family: Family = args.family.into();
    let r = tools::synth(&args.files, &args.top, family)
        .with_context(|| format!("synthesising `{}` for {family}", args.top))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("yosys synth_xilinx -family {family}, top `{}`", args.top);
    for (name, value) in [
        ("LUT", r.lut),
        ("FF", r.ff),
        ("CARRY", r.carry),
        ("DSP", r.dsp),
        ("BRAM18", r.bram18),
        ("BRAM36", r.bram36),
        ("URAM", r.uram),
        ("logic depth", r.logic_depth),
    ] {
        println!("  {name:<12} {value:>8}");
    }
    Ok(())
}
