//! Streaming passes over `results.jsonl`: derived files (CSV, Pareto front, summary), merging
//! shard directories, and the statistics the plots need. Memory stays proportional to the
//! Pareto front and a fixed-size sample, never to the number of points.

use std::collections::{BinaryHeap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{ReportError, Result};
use crate::fsio::{AtomicFile, for_each_line, read_json, write_json};
use crate::pareto::ParetoFront;
use crate::schema::{
    Best, Counts, FORMAT, Goal, PointRecord, RunStats, Status, Summary, SweepMeta, VerifyRecord,
    files, metric,
};

/// Points kept for scatter plots (a deterministic sample: the smallest id hashes).
pub const SAMPLE_SIZE: usize = 3000;

/// What a plot needs of one point.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotPoint {
    /// Point id.
    pub id: String,
    /// Seconds for the workload.
    pub latency_s: f64,
    /// DSP slices.
    pub dsp: f64,
    /// LUTs.
    pub lut: f64,
    /// MACs per stream byte.
    pub intensity: f64,
    /// Achieved MAC/s.
    pub macs_per_s: f64,
    /// Feasible (status ok).
    pub feasible: bool,
}

impl PlotPoint {
    fn from_record(r: &PointRecord) -> Option<PlotPoint> {
        let lat = r.metric(metric::LATENCY_S)?;
        let macs = r.metric(metric::MACS)?;
        Some(PlotPoint {
            id: r.id.clone(),
            latency_s: lat,
            dsp: r.metric(metric::DSP)?,
            lut: r.metric(metric::LUT)?,
            intensity: r.metric(metric::ARITHMETIC_INTENSITY).unwrap_or(0.0),
            macs_per_s: if lat > 0.0 { macs / lat } else { 0.0 },
            feasible: r.status == Status::Ok,
        })
    }
}

/// Result of one pass.
#[derive(Debug)]
pub struct Scan {
    /// Counts by status.
    pub counts: Counts,
    /// Front over the sweep's objectives (feasible points only), best first.
    pub front: Vec<PointRecord>,
    /// Best feasible value per objective.
    pub best: Vec<Best>,
    /// Latency–DSP front of feasible points.
    pub front_dsp: Vec<PlotPoint>,
    /// Latency–LUT front of feasible points.
    pub front_lut: Vec<PlotPoint>,
    /// A deterministic sample of valid points for scatter plots.
    pub sample: Vec<PlotPoint>,
}

struct Sampled(u64, PlotPoint);
impl PartialEq for Sampled {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Sampled {}
impl PartialOrd for Sampled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sampled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

/// A well-mixed 64-bit value of an id (ids are already hashes, but stay correct for any text).
fn id_hash(id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// Reads `dir/sweep.json`.
pub fn read_meta(dir: &Path) -> Result<SweepMeta> {
    let meta: SweepMeta = read_json(&dir.join(files::META))?;
    if meta.format != FORMAT {
        return Err(ReportError::Parse {
            path: dir.join(files::META),
            line: None,
            reason: format!(
                "format {} is not the supported format {FORMAT}; re-run the sweep with this version",
                meta.format
            ),
        });
    }
    Ok(meta)
}

/// One pass over `results.jsonl`, calling `each` with every record and its raw line.
pub fn scan(
    dir: &Path,
    meta: &SweepMeta,
    mut each: impl FnMut(&PointRecord, &str) -> Result<()>,
) -> Result<Scan> {
    let path = dir.join(files::RESULTS);
    let goals: Vec<Goal> = meta.objectives.iter().map(|o| o.goal).collect();
    let mut front: ParetoFront<PointRecord> = ParetoFront::new(goals);
    let mut front_dsp: ParetoFront<PlotPoint> =
        ParetoFront::new(vec![Goal::Minimize, Goal::Minimize]);
    let mut front_lut: ParetoFront<PlotPoint> =
        ParetoFront::new(vec![Goal::Minimize, Goal::Minimize]);
    let mut best: Vec<Option<Best>> = vec![None; meta.objectives.len()];
    let mut sample: BinaryHeap<Sampled> = BinaryHeap::with_capacity(SAMPLE_SIZE + 1);
    let mut counts = Counts::default();
    for_each_line(&path, |line_no, line| {
        let rec: PointRecord = serde_json::from_str(line).map_err(|e| ReportError::Parse {
            path: path.clone(),
            line: Some(line_no),
            reason: e.to_string(),
        })?;
        each(&rec, line)?;
        counts.points += 1;
        match rec.status {
            Status::Ok => counts.ok += 1,
            Status::Infeasible => counts.infeasible += 1,
            Status::Invalid => counts.invalid += 1,
        }
        let pp = PlotPoint::from_record(&rec);
        if let Some(pp) = &pp {
            let h = id_hash(&rec.id);
            if sample.len() < SAMPLE_SIZE {
                sample.push(Sampled(h, pp.clone()));
            } else if sample.peek().is_some_and(|top| h < top.0) {
                sample.pop();
                sample.push(Sampled(h, pp.clone()));
            }
        }
        if rec.status != Status::Ok {
            return Ok(());
        }
        if let Some(pp) = pp {
            front_dsp.offer(vec![pp.latency_s, pp.dsp], rec.id.clone(), pp.clone());
            front_lut.offer(vec![pp.latency_s, pp.lut], rec.id.clone(), pp);
        }
        let mut values = Vec::with_capacity(meta.objectives.len());
        for (o, slot) in meta.objectives.iter().zip(best.iter_mut()) {
            let Some(v) = rec.metric(&o.metric) else {
                continue;
            };
            values.push(v);
            let better = match slot {
                None => true,
                Some(b) => {
                    let (x, y) = (o.goal.orient(v), o.goal.orient(b.value));
                    x < y || (x == y && rec.id < b.id)
                }
            };
            if better {
                *slot = Some(Best {
                    objective: o.clone(),
                    value: v,
                    id: rec.id.clone(),
                });
            }
        }
        front.offer(values, rec.id.clone(), rec);
        Ok(())
    })?;
    let mut sample: Vec<PlotPoint> = sample.into_iter().map(|s| s.1).collect();
    sample.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Scan {
        counts,
        front: front.into_sorted().into_iter().map(|m| m.item).collect(),
        best: best.into_iter().flatten().collect(),
        front_dsp: front_dsp
            .into_sorted()
            .into_iter()
            .map(|m| m.item)
            .collect(),
        front_lut: front_lut
            .into_sorted()
            .into_iter()
            .map(|m| m.item)
            .collect(),
        sample,
    })
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn json_cell(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => csv_field(s),
        Some(other) => csv_field(&other.to_string()),
    }
}

fn num_cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn csv_header(meta: &SweepMeta, extra: &[&str]) -> String {
    let mut cols: Vec<String> = vec!["id".into(), "index".into(), "status".into()];
    cols.extend(meta.param_names.iter().cloned());
    cols.extend(meta.metric_names.iter().cloned());
    cols.extend(meta.boards.iter().map(|b| format!("fits_{}", b.name)));
    cols.push("violations".into());
    cols.push("error".into());
    cols.extend(extra.iter().map(|s| s.to_string()));
    let cols: Vec<String> = cols.iter().map(|c| csv_field(c)).collect();
    cols.join(",") + "\n"
}

fn csv_row(meta: &SweepMeta, r: &PointRecord, extra: &[String]) -> String {
    let mut cells: Vec<String> = vec![
        csv_field(&r.id),
        r.index.to_string(),
        r.status.as_str().into(),
    ];
    for p in &meta.param_names {
        cells.push(json_cell(r.params.get(p)));
    }
    for m in &meta.metric_names {
        cells.push(num_cell(r.metric(m)));
    }
    for b in &meta.boards {
        cells.push(
            r.boards
                .iter()
                .find(|f| f.board == b.name)
                .map(|f| f.fits.to_string())
                .unwrap_or_default(),
        );
    }
    cells.push(csv_field(&r.violations.join("; ")));
    cells.push(csv_field(r.error.as_deref().unwrap_or("")));
    cells.extend(extra.iter().cloned());
    cells.join(",") + "\n"
}

/// Writes `results.csv`, `pareto.csv` and `summary.json` from `sweep.json` and
/// `results.jsonl` in one streaming pass. `verify` (simulated Pareto points) is recorded in
/// the summary and beside each verified Pareto row.
pub fn finalize(dir: &Path, verify: &[VerifyRecord], run: Option<RunStats>) -> Result<Summary> {
    let meta = read_meta(dir)?;
    let mut csv = AtomicFile::create(&dir.join(files::RESULTS_CSV))?;
    csv.write(csv_header(&meta, &[]).as_bytes())?;
    let scan = scan(dir, &meta, |rec, _| {
        csv.write(csv_row(&meta, rec, &[]).as_bytes())
    })?;
    let mut pareto = AtomicFile::create(&dir.join(files::PARETO_CSV))?;
    pareto.write(
        csv_header(
            &meta,
            &[
                "verified_layer",
                "verified_model_cycles",
                "verified_measured_cycles",
                "verified_mismatches",
            ],
        )
        .as_bytes(),
    )?;
    for rec in &scan.front {
        let extra = match verify.iter().find(|v| v.id == rec.id) {
            Some(v) => vec![
                csv_field(&v.layer),
                v.model_cycles.to_string(),
                v.measured_cycles.to_string(),
                v.mismatches.to_string(),
            ],
            None => vec![String::new(); 4],
        };
        pareto.write(csv_row(&meta, rec, &extra).as_bytes())?;
    }
    let summary = Summary {
        format: FORMAT,
        template: meta.template.clone(),
        name: meta.name.clone(),
        total_points: meta.total_points,
        shard: meta.shard,
        counts: scan.counts,
        objectives: meta.objectives.clone(),
        pareto_points: scan.front.len() as u64,
        best: scan.best,
        verify: verify.to_vec(),
        run,
    };
    csv.commit()?;
    pareto.commit()?;
    write_json(&dir.join(files::SUMMARY), &summary)?;
    Ok(summary)
}

/// The Pareto front of a finalised directory, best first (for `--verify`).
pub fn pareto_front(dir: &Path) -> Result<Vec<PointRecord>> {
    let meta = read_meta(dir)?;
    Ok(scan(dir, &meta, |_, _| Ok(()))?.front)
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    /// The merged summary.
    pub summary: Summary,
    /// Records read from all inputs.
    pub read: u64,
    /// Records dropped as duplicates.
    pub duplicates: u64,
}

/// Joins sweep directories (typically shards of one spec) into `out`: records are deduplicated
/// by id, then the CSV files and the summary are recomputed. Every input must come from the
/// same spec (equal template, fingerprint, objectives and space size).
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<MergeOutcome> {
    let Some(first) = inputs.first() else {
        return Err(ReportError::Incompatible(
            "merge needs at least one sweep directory".into(),
        ));
    };
    let mut meta = read_meta(first)?;
    for dir in &inputs[1..] {
        let m = read_meta(dir)?;
        let same = m.template == meta.template
            && m.fingerprint == meta.fingerprint
            && m.objectives == meta.objectives
            && m.total_points == meta.total_points
            && m.param_names == meta.param_names;
        if !same {
            return Err(ReportError::Incompatible(format!(
                "`{}` and `{}` come from different sweep specs (template, workload, boards, \
                 constraints, objectives or space differ); merge only shards of one spec",
                first.display(),
                dir.display()
            )));
        }
    }
    let out_abs = std::fs::canonicalize(out).ok();
    for dir in inputs {
        if out_abs.is_some() && std::fs::canonicalize(dir).ok() == out_abs {
            return Err(ReportError::Incompatible(format!(
                "--out `{}` is also an input; merge into a new directory",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(crate::error::io_err("creating", out))?;
    meta.shard = None;
    let mut jsonl = AtomicFile::create(&out.join(files::RESULTS))?;
    let mut seen: HashSet<String> = HashSet::new();
    let (mut read, mut duplicates) = (0u64, 0u64);
    for dir in inputs {
        let path = dir.join(files::RESULTS);
        for_each_line(&path, |line_no, line| {
            #[derive(serde::Deserialize)]
            struct IdOnly {
                id: String,
            }
            let rec: IdOnly = serde_json::from_str(line).map_err(|e| ReportError::Parse {
                path: path.clone(),
                line: Some(line_no),
                reason: e.to_string(),
            })?;
            read += 1;
            if seen.insert(rec.id) {
                jsonl.write(line.as_bytes())?;
                jsonl.write(b"\n")?;
            } else {
                duplicates += 1;
            }
            Ok(())
        })?;
    }
    write_json(&out.join(files::META), &meta)?;
    jsonl.commit()?;
    let summary = finalize(out, &[], None)?;
    Ok(MergeOutcome {
        summary,
        read,
        duplicates,
    })
}
