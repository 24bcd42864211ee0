//! `accelforge report`: charts and an HTML page for a sweep, map or sim result directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Draw charts (PNG and SVG) and write one self-contained HTML page for the results in DIR:
/// a sweep (results.jsonl), a mapping (map.json) or a simulation (sim.json).
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the report (default: DIR/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `accelforge report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args.out.unwrap_or_else(|| args.dir.join("report"));
    let r = accelforge_reports::render(&args.dir, &out)
        .with_context(|| format!("report on `{}`", args.dir.display()))?;
    println!(
        "{} report: {} charts (PNG + SVG), {}",
        r.kind.name(),
        r.charts.len(),
        r.html.display()
    );
    Ok(())
}
