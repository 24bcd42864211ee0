//! accelforge-sweep: design-space sweeps over a template's parameters, evaluated with the
//! template's exact cycle model and its resource model, checked against board budgets.
//!
//! A spec (TOML) names the template, its parameter axes, the workload, the boards, the
//! objectives and the constraints. [`sweep`] evaluates every point (or one shard) in parallel,
//! appends each result to `results.jsonl` as it completes, then derives `results.csv`,
//! `pareto.csv` and `summary.json` with one streaming pass (see `accelforge-reports`).
//!
//! ```
//! use accelforge_sweep::{Spec, RunOptions, NoProgress, sweep};
//!
//! let text = r#"
//! template = "systolic"
//! boards = ["pynq-z2"]
//! objectives = [{ minimize = "latency_s" }, { minimize = "dsp" }]
//! [constraints]
//! fits = "pynq-z2"
//! [systolic]
//! rows = { start = 2, end = 8, factor = 2 }
//! cols = [2, 4, 8]
//! [workload]
//! layers = [{ kind = "gemm", m = 32, k = 64, n = 32 }]
//! "#;
//! let spec = Spec::parse(text, "demo.toml".as_ref())?;
//! let dir = tempfile::tempdir()?;
//! let opts = RunOptions { out: dir.path().join("s"), jobs: 2, resume: false, shard: None, max_points: None };
//! let done = sweep(&spec, &opts, 0, &NoProgress)?;
//! let summary = done.summary.expect("a complete run is finalised");
//! assert_eq!(summary.counts.points, 9);
//! assert!(summary.pareto_points >= 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod eval;
pub mod run;
pub mod spec;
pub mod verify;

/// Axis values as written in a spec (the templates' own module, re-exported).
pub use accelforge_templates::template::axis;

pub use error::{Result, SweepError};
pub use run::{NoProgress, Progress, RunOptions, RunOutcome, run, shard_len};
pub use spec::Spec;

use accelforge_reports::schema::{RunStats, Summary};

/// A run and, when it went to the end, its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOutcome {
    /// The evaluation.
    pub run: RunOutcome,
    /// `None` when the run stopped early (`max_points`): the directory then holds only
    /// `sweep.json` and a partial `results.jsonl`, ready for `--resume`.
    pub summary: Option<Summary>,
}

/// Runs the sweep, derives the CSV files and the summary, and (with `verify > 0`) simulates
/// the best `verify` Pareto points in Verilator. A failed verification is recorded in the
/// summary; [`verification_failures`] lists it.
pub fn sweep(
    spec: &Spec,
    opts: &RunOptions,
    verify: usize,
    progress: &dyn Progress,
) -> Result<SweepOutcome> {
    let run = run::run(spec, opts, progress)?;
    if run.stopped_early {
        return Ok(SweepOutcome { run, summary: None });
    }
    let stats = RunStats {
        evaluated: run.evaluated,
        resumed: run.resumed,
        seconds: run.seconds,
        points_per_second: if run.seconds > 0.0 {
            run.evaluated as f64 / run.seconds
        } else {
            0.0
        },
        jobs: opts.jobs,
    };
    let mut summary = accelforge_reports::finalize(&opts.out, &[], Some(stats.clone()))?;
    if verify > 0 {
        let front = accelforge_reports::pareto_front(&opts.out)?;
        let records = verify::verify(spec, &front, verify)?;
        summary = accelforge_reports::finalize(&opts.out, &records, Some(stats))?;
    }
    Ok(SweepOutcome {
        run,
        summary: Some(summary),
    })
}

/// Verification lines whose measured cycles differ from the model or that saw mismatches.
pub fn verification_failures(summary: &Summary) -> Vec<String> {
    summary
        .verify
        .iter()
        .filter(|v| !v.passed())
        .map(|v| {
            format!(
                "point {} layer {}: model {} cycles, Verilator {} cycles, {} mismatches",
                v.id, v.layer, v.model_cycles, v.measured_cycles, v.mismatches
            )
        })
        .collect()
}
