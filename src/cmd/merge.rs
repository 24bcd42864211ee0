//! `accelforge merge`: join the output directories of sweep shards.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Join sweep output directories (e.g. shards): deduplicate points by id and recompute
/// results.csv, pareto.csv and summary.json.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Sweep output directories.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output directory (must not be one of the inputs).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `accelforge merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let m = accelforge_reports::merge(&args.dirs, &args.out)
        .with_context(|| format!("merging into `{}`", args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&m.summary)?);
        return Ok(());
    }
    let s = &m.summary;
    println!(
        "merged {} records ({} duplicates dropped): {} of {} points, Pareto front {} points -> {}",
        m.read,
        m.duplicates,
        s.counts.points,
        s.total_points,
        s.pareto_points,
        args.out.display()
    );
    if s.counts.points < s.total_points {
        eprintln!(
            "note: {} points of the space are missing (a shard not merged or not finished?)",
            s.total_points - s.counts.points
        );
    }
    Ok(())
}
