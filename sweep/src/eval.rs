//! Turning one point's raw model figures into a [`PointRecord`]: derived metrics, board fit,
//! constraints. Template-independent: a template only fills [`Raw`].

use std::collections::BTreeMap;

use std::sync::Arc;

use accelforge_boards::check_budget;
use accelforge_reports::schema::{BoardFit, LayerRecord, PointRecord, Status, metric};
use accelforge_templates::template::{PointEvaluation, SweepSpace};
use accelforge_templates::workload::Layer;
use sha2::{Digest, Sha256};

use crate::spec::{Limit, Spec, SweepBoard, WorkLayer};

/// What evaluation needs from the spec, shared by all workers.
#[derive(Debug, Clone)]
pub struct EvalCtx {
    /// Workload.
    pub layers: Vec<WorkLayer>,
    /// Boards.
    pub boards: Vec<SweepBoard>,
    /// Clock, MHz.
    pub clock_mhz: f64,
    /// Limits.
    pub limits: Vec<Limit>,
    /// One run of each layer, as the template prices it.
    units: Vec<Layer>,
    space: Arc<dyn SweepSpace>,
    template: &'static str,
}

impl EvalCtx {
    /// From a validated spec.
    pub fn new(spec: &Spec) -> EvalCtx {
        EvalCtx {
            layers: spec.layers.clone(),
            boards: spec.boards.clone(),
            clock_mhz: spec.clock_mhz,
            limits: spec.limits.clone(),
            units: spec.layers.iter().map(|l| l.unit.clone()).collect(),
            space: spec.space.clone(),
            template: spec.template.name(),
        }
    }

    /// Evaluates point `index` of the space.
    pub fn evaluate(&self, index: u64) -> PointRecord {
        let (params, eval) = self.space.evaluate(index, &self.units);
        self.record(index, params, eval)
    }

    /// The id of point `index` without evaluating it (for resume).
    pub fn point_id(&self, index: u64) -> String {
        point_id(self.template, &self.space.params(index))
    }

    fn record(
        &self,
        index: u64,
        params: serde_json::Value,
        raw: Result<PointEvaluation, String>,
    ) -> PointRecord {
        let id = point_id(self.template, &params);
        let raw = match raw {
            Ok(r) => r,
            Err(error) => {
                return PointRecord {
                    id,
                    index,
                    template: self.template.to_string(),
                    status: Status::Invalid,
                    error: Some(error),
                    violations: Vec::new(),
                    params,
                    metrics: BTreeMap::new(),
                    layers: Vec::new(),
                    boards: Vec::new(),
                };
            }
        };
        let mut cycles = 0u64;
        let mut macs = 0u64;
        let mut bytes = 0u64;
        let mut layers = Vec::with_capacity(raw.layers.len());
        for (l, r) in self.layers.iter().zip(&raw.layers) {
            cycles = cycles.saturating_add(r.cycles.saturating_mul(l.repeat));
            macs = macs.saturating_add(r.macs.saturating_mul(l.repeat));
            bytes = bytes.saturating_add(r.ddr_bytes.saturating_mul(l.repeat));
            layers.push(LayerRecord {
                name: l.name.clone(),
                cycles: r.cycles,
                macs: r.macs,
                utilization: ratio(r.macs as f64, r.cycles as f64 * raw.pes as f64),
                ddr_bytes: r.ddr_bytes,
            });
        }
        let seconds = cycles as f64 / (self.clock_mhz * 1e6);
        let est = raw.resources;
        let mut boards = Vec::with_capacity(self.boards.len());
        let mut violations = Vec::new();
        let mut utilization = 0.0;
        for (i, b) in self.boards.iter().enumerate() {
            let rep = check_budget(&b.board, &est);
            if i == 0 {
                // A resource the device lacks but the design uses counts as 1e9 (full beyond
                // any real fraction) so the metric stays a finite number.
                utilization = rep
                    .lines
                    .iter()
                    .map(|l| match l.fraction {
                        Some(f) => f,
                        None if l.used > 0 => 1e9,
                        None => 0.0,
                    })
                    .fold(0.0, f64::max);
            }
            let fractions: BTreeMap<String, f64> = rep
                .lines
                .iter()
                .filter_map(|l| l.fraction.map(|f| (l.resource.clone(), f)))
                .collect();
            let fits = rep.fits();
            if b.must_fit && !fits {
                let over: Vec<String> = rep
                    .exceeding()
                    .iter()
                    .map(|l| format!("{} {}/{}", l.resource, l.used, l.available))
                    .collect();
                violations.push(format!(
                    "does not fit {} ({})",
                    b.board.name,
                    over.join(", ")
                ));
            }
            boards.push(BoardFit {
                board: b.board.name.clone(),
                fits,
                fractions,
            });
        }
        let mut m = BTreeMap::new();
        m.insert(metric::LATENCY_CYCLES.into(), cycles as f64);
        m.insert(metric::LATENCY_S.into(), seconds);
        m.insert(metric::THROUGHPUT.into(), ratio(1.0, seconds));
        m.insert(metric::GMACS.into(), ratio(macs as f64, seconds) / 1e9);
        m.insert(metric::MACS.into(), macs as f64);
        m.insert(
            metric::PE_UTILIZATION.into(),
            ratio(macs as f64, cycles as f64 * raw.pes as f64),
        );
        m.insert(metric::DDR_BYTES.into(), bytes as f64);
        m.insert(
            metric::ARITHMETIC_INTENSITY.into(),
            ratio(macs as f64, bytes as f64),
        );
        m.insert(metric::LUT.into(), est.lut as f64);
        m.insert(metric::FF.into(), est.ff as f64);
        m.insert(metric::DSP.into(), est.dsp as f64);
        m.insert(metric::BRAM.into(), est.bram18 as f64);
        m.insert(metric::URAM.into(), est.uram as f64);
        m.insert(metric::UTILIZATION.into(), utilization);
        m.insert("pes".into(), raw.pes as f64);
        for l in &self.limits {
            let v = m.get(&l.metric).copied().unwrap_or(f64::NAN);
            if !l.holds(v) {
                violations.push(format!("{} (is {})", l.text, trim_num(v)));
            }
        }
        PointRecord {
            id,
            index,
            template: self.template.to_string(),
            status: if violations.is_empty() {
                Status::Ok
            } else {
                Status::Infeasible
            },
            error: None,
            violations,
            params,
            metrics: m,
            layers,
            boards,
        }
    }
}

/// `a / b`, or 0 when `b` is 0 (metrics must stay finite for JSON).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 && a.is_finite() { a / b } else { 0.0 }
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

/// Stable id of a parameter set: 16 hex digits of SHA-256 over the template name and the
/// parameters' JSON (field order is the struct's, so equal params give equal text).
pub fn point_id(template: &str, params: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(template.as_bytes());
    h.update(b"\n");
    h.update(params.to_string().as_bytes());
    hex::encode(&h.finalize()[..8])
}
