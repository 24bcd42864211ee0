//! The JSON written by `accelforge sweep` (and read back by `merge` and `report`). This crate
//! owns the format so that the report side never needs the template crates: a sweep engine
//! fills these records, everything else reads them.
//!
//! A sweep directory holds:
//! - `sweep.json` ([`SweepMeta`]): what was swept, against which boards, for which objectives;
//! - `results.jsonl`: one [`PointRecord`] per line, appended as points complete;
//! - `results.csv`, `pareto.csv`, `summary.json` ([`Summary`]): derived by [`crate::finalize`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// File names inside a sweep directory.
pub mod files {
    /// What was swept.
    pub const META: &str = "sweep.json";
    /// One JSON record per evaluated point.
    pub const RESULTS: &str = "results.jsonl";
    /// All points as CSV.
    pub const RESULTS_CSV: &str = "results.csv";
    /// Non-dominated feasible points as CSV.
    pub const PARETO_CSV: &str = "pareto.csv";
    /// Counts, best points, verification.
    pub const SUMMARY: &str = "summary.json";
    /// Output of `accelforge map --json`.
    pub const MAP: &str = "map.json";
    /// Output of `accelforge sim --json`.
    pub const SIM: &str = "sim.json";
}

/// Version of the sweep file format; bumped when a reader could misread older files.
pub const FORMAT: u32 = 1;

/// Well-known metric names (a template may add others; every metric is a finite `f64`).
pub mod metric {
    /// Cycles of the whole workload at the array (exact cycle model, streams never stall).
    pub const LATENCY_CYCLES: &str = "latency_cycles";
    /// `latency_cycles` at the sweep clock, seconds.
    pub const LATENCY_S: &str = "latency_s";
    /// Workload inferences per second (`1 / latency_s`).
    pub const THROUGHPUT: &str = "throughput";
    /// Achieved multiply-accumulates per second / 1e9.
    pub const GMACS: &str = "gmacs_per_s";
    /// Multiply-accumulates of the workload.
    pub const MACS: &str = "macs";
    /// MAC-weighted PE utilisation: `macs / (latency_cycles · PEs)`.
    pub const PE_UTILIZATION: &str = "pe_utilization";
    /// Bytes moved over the streams (both directions) for the workload.
    pub const DDR_BYTES: &str = "ddr_bytes";
    /// `macs / ddr_bytes`.
    pub const ARITHMETIC_INTENSITY: &str = "arithmetic_intensity";
    /// LUTs.
    pub const LUT: &str = "lut";
    /// Flip-flops.
    pub const FF: &str = "ff";
    /// DSP slices.
    pub const DSP: &str = "dsp";
    /// 18 Kb block RAMs (a RAMB36 counts as two).
    pub const BRAM: &str = "bram18";
    /// UltraRAMs.
    pub const URAM: &str = "uram";
    /// Largest resource fraction on the first listed board (0 when no board is listed).
    pub const UTILIZATION: &str = "utilization";
}

/// Minimise or maximise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

impl Goal {
    /// The value oriented so that smaller is always better.
    pub fn orient(self, v: f64) -> f64 {
        match self {
            Goal::Minimize => v,
            Goal::Maximize => -v,
        }
    }
}

/// One objective of the Pareto front.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// A metric name (see [`metric`]).
    pub metric: String,
    /// Direction.
    pub goal: Goal,
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = match self.goal {
            Goal::Minimize => "min",
            Goal::Maximize => "max",
        };
        write!(f, "{g} {}", self.metric)
    }
}

/// Outcome of one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Valid and meets every constraint: a Pareto candidate.
    Ok,
    /// Valid but violates a constraint (see `violations`).
    Infeasible,
    /// The parameter combination is impossible or cannot run the workload (see `error`).
    Invalid,
}

impl Status {
    /// Lowercase name as written in the files.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Infeasible => "infeasible",
            Status::Invalid => "invalid",
        }
    }
}

/// One layer of the workload on one design point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRecord {
    /// Layer name.
    pub name: String,
    /// Cycles of one run of the layer.
    pub cycles: u64,
    /// Multiply-accumulates of one run.
    pub macs: u64,
    /// PE utilisation of the layer: `macs / (cycles · PEs)`.
    pub utilization: f64,
    /// Stream bytes of one run (inputs in, outputs out).
    pub ddr_bytes: u64,
}

/// How a point sits on one board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardFit {
    /// Board name.
    pub board: String,
    /// Nothing exceeds the device.
    pub fits: bool,
    /// used / available per resource the device has (`lut`, `ff`, `dsp`, `bram18`, `uram`).
    pub fractions: BTreeMap<String, f64>,
}

/// One evaluated design point (one line of `results.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointRecord {
    /// Stable id: a hash of the template and its parameters (16 hex digits).
    pub id: String,
    /// Index in the spec's cartesian product (informative; `id` identifies the point).
    pub index: u64,
    /// Template name.
    pub template: String,
    /// Outcome.
    pub status: Status,
    /// Why the point is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which constraints an infeasible point violates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
    /// The template's parameters as it serialises them.
    pub params: serde_json::Value,
    /// Metrics by name (empty for invalid points).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Per-layer figures (in workload order).
    #[serde(default)]
    pub layers: Vec<LayerRecord>,
    /// Per-board fit (in the spec's board order).
    #[serde(default)]
    pub boards: Vec<BoardFit>,
}

impl PointRecord {
    /// A metric by name.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
}

/// What the report needs to know about a board (copied from the board database by the sweep,
/// so reports never read the database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    /// Canonical board name.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// PL clock used for this board's peak figures, MHz.
    pub clock_mhz: f64,
    /// Peak DDR bandwidth, GB/s.
    pub ddr_gbps: f64,
    /// LUTs.
    pub lut: u64,
    /// Flip-flops.
    pub ff: u64,
    /// DSP slices.
    pub dsp: u64,
    /// 18 Kb block RAMs.
    pub bram18: u64,
    /// UltraRAMs.
    pub uram: u64,
    /// MACs one DSP slice can do per cycle at 8-bit operands: 2 on DSP48E1 and DSP48E2 alike
    /// with shared-operand packing (the systolic array's `dsp-packed` PEs; AMD WP486 describes
    /// it for the DSP48E2's 27-bit port, and separating the products every cycle lets a 25-bit
    /// operand suffice).
    pub macs_per_dsp: f64,
}

impl BoardInfo {
    /// Peak MAC rate, MAC/s: DSPs × MACs per DSP × clock.
    pub fn peak_macs_per_s(&self) -> f64 {
        self.dsp as f64 * self.macs_per_dsp * self.clock_mhz * 1e6
    }
    /// Available amount of a resource by name.
    pub fn budget(&self, resource: &str) -> Option<u64> {
        match resource {
            "lut" => Some(self.lut),
            "ff" => Some(self.ff),
            "dsp" => Some(self.dsp),
            "bram18" => Some(self.bram18),
            "uram" => Some(self.uram),
            _ => None,
        }
    }
}

/// One workload layer as the sweep lowered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadLayer {
    /// Name.
    pub name: String,
    /// `gemm` or `conv2d`.
    pub kind: String,
    /// GEMM rows.
    pub m: u64,
    /// GEMM reduction length.
    pub k: u64,
    /// GEMM columns.
    pub n: u64,
    /// Runs per inference.
    pub repeat: u64,
}

/// Which part of a space a run covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// 1-based shard number.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

/// `sweep.json`: what a sweep directory holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepMeta {
    /// [`FORMAT`].
    pub format: u32,
    /// Template name.
    pub template: String,
    /// Spec name.
    pub name: String,
    /// Hash of everything that decides a point's result besides its parameters (workload,
    /// boards, clock, constraints): results with equal ids and fingerprints are identical.
    pub fingerprint: String,
    /// Pareto objectives.
    pub objectives: Vec<Objective>,
    /// Constraints as written (`dsp <= 220`, `fits pynq-z2`).
    pub constraints: Vec<String>,
    /// Boards checked, in spec order (the first is the primary board).
    pub boards: Vec<BoardInfo>,
    /// Clock for seconds-based metrics, MHz.
    pub clock_mhz: f64,
    /// Parameter names (CSV columns), in order.
    pub param_names: Vec<String>,
    /// Metric names (CSV columns), in order.
    pub metric_names: Vec<String>,
    /// Points in the whole space.
    pub total_points: u64,
    /// The shard this directory covers; `None` for the whole space.
    pub shard: Option<Shard>,
    /// The workload.
    pub workload: Vec<WorkloadLayer>,
}

/// Measured simulation of one Pareto point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRecord {
    /// Point id.
    pub id: String,
    /// Layer simulated.
    pub layer: String,
    /// Analytic cycle estimate for that layer.
    pub model_cycles: u64,
    /// Cycles Verilator measured.
    pub measured_cycles: u64,
    /// Output elements compared with the golden model.
    pub outputs_checked: u64,
    /// Elements that differed (and protocol errors).
    pub mismatches: u64,
    /// Wall time of the simulation loop.
    pub sim_seconds: f64,
}

impl VerifyRecord {
    /// Cycles equal and no mismatch.
    pub fn passed(&self) -> bool {
        self.model_cycles == self.measured_cycles && self.mismatches == 0
    }
}

/// Point counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// All records.
    pub points: u64,
    /// Feasible.
    pub ok: u64,
    /// Valid but violating a constraint.
    pub infeasible: u64,
    /// Impossible parameters.
    pub invalid: u64,
}

/// Best value of one objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Best {
    /// The objective.
    pub objective: Objective,
    /// Best value among feasible points.
    pub value: f64,
    /// The point that has it (smallest id among ties).
    pub id: String,
}

/// How the last sweep run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStats {
    /// Points evaluated by this run.
    pub evaluated: u64,
    /// Points skipped because results.jsonl already had them.
    pub resumed: u64,
    /// Wall time of the evaluation, seconds.
    pub seconds: f64,
    /// `evaluated / seconds`.
    pub points_per_second: f64,
    /// Worker threads.
    pub jobs: usize,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// [`FORMAT`].
    pub format: u32,
    /// Template name.
    pub template: String,
    /// Spec name.
    pub name: String,
    /// Points in the whole space.
    pub total_points: u64,
    /// Shard covered (`None`: the whole space or a merge).
    pub shard: Option<Shard>,
    /// Counts by status.
    pub counts: Counts,
    /// Objectives.
    pub objectives: Vec<Objective>,
    /// Points on the Pareto front.
    pub pareto_points: u64,
    /// Best feasible value per objective.
    pub best: Vec<Best>,
    /// Simulation of Pareto points (`--verify`).
    #[serde(default)]
    pub verify: Vec<VerifyRecord>,
    /// The run that produced the directory (`None` after a merge).
    pub run: Option<RunStats>,
}
