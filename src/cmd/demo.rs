//! `accelforge demo`: the README's main job on built-in defaults. It grows with the project;
//! each stage prints where its output went.

use std::path::PathBuf;

use accelforge_hdl::Design;
use accelforge_hdl::blocks::{fifo, pipeline, ram, skid};
use accelforge_hdl::tools::{self, Family};
use anyhow::{Context, ensure};

/// Run the built-in demonstration flow.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let blocks_dir = args.out.join("blocks");
    println!(
        "[1/2] generating building blocks into {}",
        blocks_dir.display()
    );
    let designs: Vec<Design> = vec![
        pipeline::design(&pipeline::PipelineParams {
            width: 16,
            depth: 3,
        })?,
        fifo::design(&fifo::FifoParams {
            width: 32,
            depth: 16,
        })?,
        ram::design(&ram::RamParams {
            width: 32,
            depth: 1024,
            kind: ram::RamKind::DualPort,
            style: ram::RamStyle::Block,
        })?,
        skid::design(&skid::SkidParams {
            width: 64,
            tlast: true,
        })?,
    ];
    for d in &designs {
        let paths = d
            .write_to(&blocks_dir)
            .with_context(|| format!("writing {}", d.top_name()))?;
        let report = tools::lint(&paths, Some(d.top_name()))?;
        ensure!(
            report.is_clean(),
            "{} does not lint clean: {:?}",
            d.top_name(),
            report.diagnostics
        );
        tools::parse_check(&paths, Some(d.top_name()))?;
        println!(
            "      {:<28} verilator -Wall clean, iverilog ok",
            d.top_name()
        );
    }
    println!("[2/2] synthesising the 32x1024 dual-port RAM with yosys (xc7)");
    let ram = &designs[2];
    let files: Vec<PathBuf> = ram
        .files()
        .iter()
        .map(|(n, _)| blocks_dir.join(n))
        .collect();
    let r = tools::synth(&files, ram.top_name(), Family::Xc7)?;
    println!(
        "      LUT {} FF {} BRAM18 {} BRAM36 {} (block RAM inferred: {})",
        r.lut,
        r.ff,
        r.bram18,
        r.bram36,
        r.bram18_equivalent() > 0
    );
    println!("done: Verilog in {}", blocks_dir.display());
    Ok(())
}
