//! `accelforge sweep`: evaluate a design space from a spec file, streaming results to disk.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use accelforge_reports::schema::{Shard, Summary};
use accelforge_sweep::{Progress, RunOptions, Spec, sweep, verification_failures};
use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Evaluate every point of a design space (or one shard of it) with the template's analytic
/// cycle and resource models; write results.jsonl, results.csv, pareto.csv and summary.json.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep spec (TOML; see docs/sweeps.md).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Output directory (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Worker threads, 1..=1024 (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS))]
    pub jobs: Option<u16>,
    /// Simulate the best N Pareto points in Verilator and compare with the estimates.
    #[arg(long, value_name = "TOP_N", default_value_t = 0)]
    pub verify: usize,
    /// Continue a sweep in DIR: skip points already in results.jsonl.
    #[arg(long)]
    pub resume: bool,
    /// Evaluate shard I of N (points whose index mod N = I-1), e.g. `--shard 2/8`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Print the summary as JSON on stdout (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Stop after evaluating K new points, as if killed (for testing --resume).
    #[arg(long, value_name = "K", hide = true)]
    pub max_points: Option<u64>,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: write I/N, e.g. 2/8"))?;
    let index: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: I is not a number"))?;
    let count: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: N is not a number"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("`{s}`: need 1 <= I <= N"));
    }
    Ok(Shard { index, count })
}

/// Largest `--jobs` (the bound and its reason live in `accelforge_templates::limits`).
const MAX_JOBS: i64 = accelforge_templates::limits::MAX_JOBS as i64;

/// A progress bar on stderr when it is a terminal, otherwise nothing.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
        self.0.enable_steady_tick(Duration::from_millis(200));
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn bar(visible: bool) -> Bar {
    if !visible {
        return Bar(ProgressBar::hidden());
    }
    let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} points  {per_sec}  ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    Bar(pb)
}

/// Runs `accelforge sweep`.
pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let spec = Spec::load(&args.spec)?;
    let jobs = match args.jobs {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let opts = RunOptions {
        out: args.out.clone(),
        jobs,
        resume: args.resume,
        shard: args.shard,
        max_points: args.max_points,
    };
    let progress = bar(!args.json && std::io::stderr().is_terminal());
    let done = sweep(&spec, &opts, args.verify, &progress)
        .with_context(|| format!("sweep `{}`", args.spec.display()))?;
    let Some(summary) = done.summary else {
        eprintln!(
            "stopped after {} new points (--max-points); re-run with --resume to finish",
            done.run.evaluated
        );
        return Ok(());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, &args.out);
    }
    let failures = verification_failures(&summary);
    if !failures.is_empty() {
        bail!(
            "Verilator disagrees with the cycle model (recorded in summary.json):\n  {}",
            failures.join("\n  ")
        );
    }
    Ok(())
}

fn print_summary(s: &Summary, out: &std::path::Path) {
    let c = s.counts;
    if let Some(r) = &s.run {
        println!(
            "evaluated {} points ({} resumed) in {:.2} s: {:.0} points/s on {} threads",
            r.evaluated, r.resumed, r.seconds, r.points_per_second, r.jobs
        );
    }
    println!(
        "{} of {} points in {}: {} feasible, {} violate a constraint, {} invalid",
        c.points,
        s.total_points,
        out.display(),
        c.ok,
        c.infeasible,
        c.invalid
    );
    for b in &s.best {
        println!("best {}: {} (point {})", b.objective, b.value, b.id);
    }
    println!(
        "Pareto front: {} points -> {}",
        s.pareto_points,
        out.join("pareto.csv").display()
    );
    for v in &s.verify {
        println!(
            "verified {} on {}: model {} cycles, Verilator {} cycles, {} mismatches of {} outputs",
            v.id, v.layer, v.model_cycles, v.measured_cycles, v.mismatches, v.outputs_checked
        );
    }
}
