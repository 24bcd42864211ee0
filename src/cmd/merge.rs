//! `accelforge merge`: join the output directories of sweep shards.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// Join sweep output directories (e.g. shards): deduplicate points by id and recompute
/// results.csv, pareto.csv and summary.json.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Sweep output directories.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output directory: new, empty, or an earlier merge of the same spec (replaced); never one
    /// of the inputs or a sweep of another spec.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The (template, fingerprint) of a sweep directory, when it has a readable sweep.json.
fn spec_of(dir: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(dir.join("sweep.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let field = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map_or(x.to_string(), str::to_string))
    };
    Some((field("template")?, field("fingerprint")?))
}

/// `--out` may be new, empty, an earlier merge/sweep of the same spec, or another accelforge
/// output; never an input, and never a sweep of another spec (silently replacing it would lose
/// that sweep).
fn check_out(args: &MergeArgs) -> anyhow::Result<()> {
    let Ok(out_abs) = std::fs::canonicalize(&args.out) else {
        return Ok(());
    };
    for dir in &args.dirs {
        if std::fs::canonicalize(dir).ok().as_ref() == Some(&out_abs) {
            anyhow::bail!(
                "--out `{}` is also an input; merge into a new directory",
                args.out.display()
            );
        }
    }
    if let (Some(out_spec), Some(first)) = (spec_of(&args.out), args.dirs.first())
        && let Some(in_spec) = spec_of(first)
        && in_spec != out_spec
    {
        anyhow::bail!(
            "--out `{}` holds a sweep of another spec (template {}, fingerprint {}) than the \
             inputs (`{}`: template {}, fingerprint {}); merge into a new directory or remove \
             `{}` first",
            args.out.display(),
            out_spec.0,
            out_spec.1,
            first.display(),
            in_spec.0,
            in_spec.1,
            args.out.display()
        );
    }
    accelforge_hdl::output::check_replaceable(&args.out)
        .with_context(|| format!("merging into `{}`", args.out.display()))?;
    Ok(())
}

/// Runs `accelforge merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    check_out(&args)?;
    // Built beside --out and swapped in when complete: a failed merge leaves --out as it was
    // (or absent), never empty or half-written.
    let staged = accelforge_hdl::output::StagedDir::new(&args.out, true)
        .with_context(|| format!("merging into `{}`", args.out.display()))?;
    let m = accelforge_reports::merge(&args.dirs, staged.path())
        .with_context(|| format!("merging into `{}`", args.out.display()))?;
    staged
        .commit("merge")
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
