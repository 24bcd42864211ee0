//! `accelforge calibrate`: synthesises a grid of systolic-array configurations with Yosys (in
//! parallel), fits the LUT/FF model by least squares, and writes the data file the resource
//! model loads plus a Markdown report of predicted against synthesised resources.

use std::path::PathBuf;

use accelforge_hdl::tools::{self, DesignFiles, Family};
use accelforge_templates::systolic::calibration::{self, Point};
use accelforge_templates::systolic::{cost, rtl};
use anyhow::{Context, ensure};
use rayon::prelude::*;

/// Regenerate the resource-model calibration against Yosys.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Data file to write (the one the resource model embeds).
    #[arg(long, default_value = "accel-templates/data/systolic_calibration.json")]
    pub data: PathBuf,
    /// Report to write.
    #[arg(long, default_value = "docs/calibration.md")]
    pub report: PathBuf,
    /// Parallel Yosys runs [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let grid = calibration::grid();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ensure!(jobs > 0, "--jobs must be at least 1");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    eprintln!(
        "synthesising {} configurations with yosys ({jobs} at a time)",
        grid.len()
    );
    let points: Vec<Point> = pool.install(|| {
        grid.par_iter()
            .map(|p| -> anyhow::Result<Point> {
                let design = rtl::design(p)?;
                let files = DesignFiles::new(&design)?;
                let r = tools::synth(&files.paths, design.top_name(), Family::Xc7)
                    .with_context(|| format!("synthesising {}", design.top_name()))?;
                let features = cost::features(p)?;
                eprintln!(
                    "  {}x{} {:?} {:?}: {} LUT, {} FF, {} DSP, {} BRAM18",
                    p.rows,
                    p.cols,
                    p.dataflow,
                    p.pe,
                    r.lut,
                    r.ff,
                    r.dsp,
                    r.bram18_equivalent()
                );
                Ok(Point {
                    params: p.clone(),
                    features,
                    lut: r.lut,
                    ff: r.ff,
                    dsp: r.dsp,
                    bram18: r.bram18_equivalent(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let reference = format!(
        "{} synth_xilinx -family xc7 -flatten",
        tools::doctor()
            .into_iter()
            .find(|(t, _)| *t == "yosys")
            .and_then(|(_, v)| v.ok())
            .unwrap_or_else(|| "yosys".into())
    );
    let cal = calibration::fit(&reference, points)
        .context("fitting the resource model (degenerate calibration grid)")?;
    accelforge_hdl::write_atomic(
        &args.data,
        (serde_json::to_string_pretty(&cal)? + "\n").as_bytes(),
    )?;
    let report = calibration::report(&cal);
    accelforge_hdl::write_atomic(&args.report, report.as_bytes())?;
    print!("{report}");
    println!(
        "\nwrote {} and {}; rebuild so the resource model embeds the new data",
        args.data.display(),
        args.report.display()
    );
    Ok(())
}
