//! The sweep driver: evaluates a (shard of a) space in parallel and streams every result to
//! `results.jsonl` as it completes.
//!
//! Memory stays flat as the space grows: points are generated from their index on the fly,
//! results go through a bounded channel to one writer, and nothing keeps them afterwards (the
//! derived files are computed by a streaming pass). The one thing that grows is the set of
//! already-done ids when resuming: 8 bytes (plus hash-set overhead) per done point.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use accelforge_reports::fsio::{for_each_line, write_json};
use accelforge_reports::schema::{FORMAT, Shard, SweepMeta, files};
use rayon::prelude::*;

use crate::error::{Result, SweepError, io_err};
use crate::eval::EvalCtx;
use crate::spec::{METRICS, Spec};

/// Progress reporting (the CLI draws a bar; tests and `--json` use [`NoProgress`]).
pub trait Progress: Sync {
    /// The number of points this run will go through.
    fn start(&self, total: u64);
    /// `n` more points done (evaluated or skipped).
    fn inc(&self, n: u64);
    /// The run ended.
    fn finish(&self);
}

/// No progress output.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Worker threads.
    pub jobs: usize,
    /// Skip points already in `results.jsonl`.
    pub resume: bool,
    /// Evaluate only points with `index % count == index_1based - 1`.
    pub shard: Option<Shard>,
    /// Stop after evaluating this many new points (a test hook that imitates a killed run).
    pub max_points: Option<u64>,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOutcome {
    /// Points in this shard of the space.
    pub shard_points: u64,
    /// Newly evaluated.
    pub evaluated: u64,
    /// Skipped as already done.
    pub resumed: u64,
    /// Wall time of the evaluation.
    pub seconds: f64,
    /// Stopped by `max_points` before the end.
    pub stopped_early: bool,
}

enum Msg {
    Line(String),
    Skipped,
    Failed(String),
}

/// Number of points of `total` in shard `s`.
pub fn shard_len(total: u64, s: Option<Shard>) -> u64 {
    match s {
        None => total,
        Some(Shard { index, count }) => total / count + u64::from(index - 1 < total % count),
    }
}

/// The metadata written to `sweep.json`.
pub fn meta(spec: &Spec, shard: Option<Shard>) -> SweepMeta {
    let param_names = spec
        .space
        .param_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    SweepMeta {
        format: FORMAT,
        template: spec.template.name().to_string(),
        name: spec.name.clone(),
        fingerprint: spec.fingerprint(),
        objectives: spec.objectives.clone(),
        constraints: spec.constraint_texts(),
        boards: spec.board_infos(),
        clock_mhz: spec.clock_mhz,
        param_names,
        metric_names: METRICS.iter().map(|s| s.to_string()).collect(),
        total_points: spec.total_points(),
        shard,
        workload: spec.workload_layers(),
    }
}

/// Drops a final line without its newline (what a killed writer leaves), so appending
/// continues on a line boundary.
fn trim_partial_line(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    let len = f.metadata().map_err(io_err("reading", path))?.len();
    if len == 0 {
        return Ok(());
    }
    // Scan back in blocks for the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))
            .map_err(io_err("reading", path))?;
        f.read_exact(&mut buf[..n])
            .map_err(io_err("reading", path))?;
        if let Some(pos) = buf[..n].iter().rposition(|&b| b == b'\n') {
            let keep = start + pos as u64 + 1;
            if keep != len {
                f.set_len(keep)
                    .map_err(io_err("truncating a partial line of", path))?;
            }
            return Ok(());
        }
        if start == 0 {
            f.set_len(0)
                .map_err(io_err("truncating a partial line of", path))?;
            return Ok(());
        }
        end = start;
    }
}

fn id_key(id: &str) -> Option<u64> {
    u64::from_str_radix(id, 16).ok()
}

/// Evaluates the points of `spec` (or of one shard) not yet in `out/results.jsonl`.
pub fn run(spec: &Spec, opts: &RunOptions, progress: &dyn Progress) -> Result<RunOutcome> {
    if let Some(s) = opts.shard
        && (s.count == 0 || s.index == 0 || s.index > s.count)
    {
        return Err(SweepError::Output(format!(
            "--shard {}/{}: write I/N with 1 <= I <= N",
            s.index, s.count
        )));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(io_err("creating output directory", out))?;
    let results = out.join(files::RESULTS);
    let has_results = std::fs::metadata(&results)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let meta = meta(spec, opts.shard);
    let mut done: HashSet<u64> = HashSet::new();
    if has_results {
        if !opts.resume {
            return Err(SweepError::Output(format!(
                "`{}` already holds results; pass --resume to continue that sweep or choose a new --out",
                out.display()
            )));
        }
        let old = accelforge_reports::read_meta(out).map_err(|e| {
            SweepError::Output(format!(
                "cannot resume in `{}`: {e} (results.jsonl without a valid sweep.json)",
                out.display()
            ))
        })?;
        if old.template != meta.template || old.fingerprint != meta.fingerprint {
            return Err(SweepError::Output(format!(
                "cannot resume in `{}`: its results were computed for a different template, \
                 workload, board list, clock or constraints; use a new --out",
                out.display()
            )));
        }
        trim_partial_line(&results)?;
        for_each_line(&results, |line_no, line| {
            #[derive(serde::Deserialize)]
            struct IdOnly {
                id: String,
            }
            let rec: IdOnly =
                serde_json::from_str(line).map_err(|e| accelforge_reports::ReportError::Parse {
                    path: results.clone(),
                    line: Some(line_no),
                    reason: e.to_string(),
                })?;
            if let Some(k) = id_key(&rec.id) {
                done.insert(k);
            }
            Ok(())
        })?;
    }
    write_json(&out.join(files::META), &meta)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results)
        .map_err(io_err("opening", &results))?;

    let total = spec.total_points();
    let shard_points = shard_len(total, opts.shard);
    let (stride, offset) = match opts.shard {
        Some(s) => (s.count, s.index - 1),
        None => (1, 0),
    };
    let ctx = EvalCtx::new(spec);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| {
            SweepError::Output(format!("cannot start {} worker threads: {e}", opts.jobs))
        })?;
    let stop = AtomicBool::new(false);
    // Bounded: workers wait for the writer rather than piling results up in memory.
    let (tx, rx) = mpsc::sync_channel::<Msg>(4096);
    progress.start(shard_points);
    let started = Instant::now();
    let (mut evaluated, mut resumed, mut stopped_early) = (0u64, 0u64, false);
    let mut failure: Option<SweepError> = None;
    std::thread::scope(|scope| {
        let (ctx, done, stop) = (&ctx, &done, &stop);
        scope.spawn(move || {
            pool.install(|| {
                let _ = (0..shard_points)
                    .into_par_iter()
                    .try_for_each_with(tx, |tx, j| {
                        if stop.load(Ordering::Relaxed) {
                            return Err(());
                        }
                        let index = j * stride + offset;
                        if !done.is_empty()
                            && id_key(&ctx.point_id(index)).is_some_and(|k| done.contains(&k))
                        {
                            return tx.send(Msg::Skipped).map_err(|_| ());
                        }
                        let rec = ctx.evaluate(index);
                        let msg = match serde_json::to_string(&rec) {
                            Ok(mut line) => {
                                line.push('\n');
                                Msg::Line(line)
                            }
                            Err(e) => Msg::Failed(format!("serialising point {}: {e}", rec.id)),
                        };
                        tx.send(msg).map_err(|_| ())
                    });
            });
        });
        for msg in rx.iter() {
            match msg {
                Msg::Line(line) => {
                    // One write per line on an O_APPEND file: a killed run leaves whole lines
                    // (and at most one partial last line, which resume trims).
                    if let Err(e) = file.write_all(line.as_bytes()) {
                        failure = Some(io_err("appending to", &results)(e));
                        break;
                    }
                    evaluated += 1;
                    progress.inc(1);
                    if opts.max_points.is_some_and(|k| evaluated >= k) {
                        stopped_early = evaluated < shard_points;
                        break;
                    }
                }
                Msg::Skipped => {
                    resumed += 1;
                    progress.inc(1);
                }
                Msg::Failed(reason) => {
                    failure = Some(SweepError::Output(reason));
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        // Dropping the receiver makes every pending send fail, so the workers wind down.
        drop(rx);
    });
    progress.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    file.flush().map_err(io_err("writing", &results))?;
    Ok(RunOutcome {
        shard_points,
        evaluated,
        resumed,
        seconds: started.elapsed().as_secs_f64(),
        stopped_early,
    })
}
