//! The sweep spec (TOML): which template, which parameter axes, which workload, which boards,
//! which objectives and constraints. See `docs/sweeps.md` for the format.

use std::path::{Path, PathBuf};

use accelforge_boards::{Board, BoardDb, DspType};
use accelforge_reports::schema::{BoardInfo, Goal, Objective, WorkloadLayer, metric};
use std::sync::Arc;

use accelforge_templates::moe::space::MoeLayerShape;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::template::axis::OneOrMany;
use accelforge_templates::template::{self, DynTemplate, SweepSpace};
use accelforge_templates::workload::AttentionShape;
use accelforge_templates::workload::{
    GemmShape, Layer, LayerOp, Workload, WorkloadError, parse_layer_tables, parse_workload,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, SweepError, io_err};

/// One objective as written: `{ minimize = "latency_s" }` or `{ maximize = "throughput" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ObjectiveSpec {
    /// Smaller is better.
    #[serde(alias = "min")]
    Minimize(String),
    /// Larger is better.
    #[serde(alias = "max")]
    Maximize(String),
}

/// `[constraints]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintsSpec {
    /// Boards every feasible point must fit (one name or a list).
    #[serde(default)]
    pub fits: OneOrMany<String>,
    /// Bounds on metrics: `"dsp <= 220"`, `"pe_utilization >= 0.5"`.
    #[serde(default)]
    pub limits: Vec<String>,
}

/// `[workload]`: inline layers, a workload file of `[[layer]]` tables (relative to the spec), or
/// a built-in workload by name. Layers are written as in `map --workload` files
/// (`kind = "gemm"`, `"dense"`, `"conv2d"` or `"moe"`; see `accelforge_templates::workload`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// A TOML file with `[[layer]]` tables.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A built-in workload of the mapper (`mlp`, `resnet18`, `mobilenet`, `vit-tiny`,
    /// `moe-tiny`).
    #[serde(default)]
    pub builtin: Option<String>,
    /// Inline layers: tables with the keys of a workload file's `[[layer]]`.
    #[serde(default)]
    pub layers: Vec<toml::Table>,
}

/// The spec file as written, besides the template's own `[NAME]` table of axes (which
/// [`Spec::parse`] takes out and hands to the template).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    /// Template to sweep (a name in `accelforge_templates::template::registry`).
    pub template: String,
    /// Name (default: the file stem).
    #[serde(default)]
    pub name: Option<String>,
    /// PL clock for seconds-based metrics (default: the first board's default clock, or 100).
    #[serde(default)]
    pub clock_mhz: Option<f64>,
    /// Boards to check every point against (the first is the primary board).
    #[serde(default)]
    pub boards: Vec<String>,
    /// Pareto objectives (at least one).
    pub objectives: Vec<ObjectiveSpec>,
    /// Constraints on feasible points.
    #[serde(default)]
    pub constraints: ConstraintsSpec,
    /// The workload.
    pub workload: WorkloadSpec,
}

/// A comparison in a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `==`
    Eq,
}

/// A parsed limit `metric op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Metric name.
    pub metric: String,
    /// Comparison.
    pub cmp: Cmp,
    /// Bound.
    pub value: f64,
    /// As written.
    pub text: String,
}

impl Limit {
    /// Whether `v` satisfies the limit.
    pub fn holds(&self, v: f64) -> bool {
        match self.cmp {
            Cmp::Le => v <= self.value,
            Cmp::Lt => v < self.value,
            Cmp::Ge => v >= self.value,
            Cmp::Gt => v > self.value,
            Cmp::Eq => v == self.value,
        }
    }
}

/// What a workload layer asks of the hardware.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkOp {
    /// A GEMM-like layer (GEMM or conv2d lowered by im2col), for the systolic array.
    Gemm {
        /// Its GEMM (a convolution's im2col GEMM).
        gemm: Gemm,
    },
    /// A Mixture-of-Experts layer, for the MoE core.
    Moe(MoeLayerShape),
    /// Multi-head attention, for the attention kernel.
    Attention(AttentionShape),
}

/// A workload layer as the sweep evaluates it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkLayer {
    /// Name.
    pub name: String,
    /// `gemm`, `conv2d` or `moe`.
    pub kind: &'static str,
    /// The layer.
    pub op: WorkOp,
    /// Runs per inference.
    pub repeat: u64,
    /// One run of the layer as the template prices it (a depthwise convolution's per-group
    /// GEMM; its groups are in `repeat`).
    pub unit: Layer,
}

impl WorkLayer {
    /// The GEMM of a GEMM-like layer.
    pub fn gemm(&self) -> Option<&Gemm> {
        match &self.op {
            WorkOp::Gemm { gemm, .. } => Some(gemm),
            WorkOp::Moe(_) | WorkOp::Attention(_) => None,
        }
    }
}

/// A board resolved from the database.
#[derive(Debug, Clone)]
pub struct SweepBoard {
    /// The board.
    pub board: Board,
    /// Must every feasible point fit it?
    pub must_fit: bool,
}

/// A validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where it was read from.
    pub file: PathBuf,
    /// Name.
    pub name: String,
    /// Template.
    pub template: &'static dyn DynTemplate,
    /// The space: the template's axes, expanded.
    pub space: Arc<dyn SweepSpace>,
    /// Workload.
    pub layers: Vec<WorkLayer>,
    /// Boards (spec order, then boards only named in `fits`).
    pub boards: Vec<SweepBoard>,
    /// Clock for seconds-based metrics, MHz.
    pub clock_mhz: f64,
    /// Objectives.
    pub objectives: Vec<Objective>,
    /// Metric limits.
    pub limits: Vec<Limit>,
}

/// Metrics every template reports (a template may add its own).
pub const METRICS: [&str; 15] = [
    metric::LATENCY_CYCLES,
    metric::LATENCY_S,
    metric::THROUGHPUT,
    metric::GMACS,
    metric::MACS,
    metric::PE_UTILIZATION,
    metric::DDR_BYTES,
    metric::ARITHMETIC_INTENSITY,
    metric::LUT,
    metric::FF,
    metric::DSP,
    metric::BRAM,
    metric::URAM,
    metric::UTILIZATION,
    "pes",
];

/// Default PL clock when neither the spec nor a board gives one (the Zynq-7000 convention).
pub const DEFAULT_CLOCK_MHZ: f64 = 100.0;

fn canonical_metric(name: &str) -> String {
    match name.trim() {
        "bram" => metric::BRAM.to_string(),
        "latency" => metric::LATENCY_S.to_string(),
        other => other.to_string(),
    }
}

impl Spec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(io_err("reading sweep spec", path))?;
        Spec::parse(&text, path)
    }

    /// Parses and validates spec text; `path` names the file in errors and anchors relative
    /// workload paths.
    pub fn parse(text: &str, path: &Path) -> Result<Spec> {
        let spec_err = |key: &str, problem: String| SweepError::Spec {
            file: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        // The template's own table goes to the template; the rest is the spec's.
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            let problem = e.message().trim().to_string();
            spec_err("(top level)", problem)
        })?;
        let chosen = match table.get("template") {
            Some(toml::Value::String(name)) => {
                Some(template::find(name).map_err(|e| spec_err("template", e.to_string()))?)
            }
            _ => None,
        };
        let mut axes = None;
        // Reported after the chosen template's own checks (which name the workload first).
        let mut stray: Option<&str> = None;
        for t in template::registry() {
            let Some(v) = table.remove(t.name()) else {
                continue;
            };
            match chosen {
                Some(c) if c.name() == t.name() => axes = Some(v),
                Some(_) => stray = stray.or(Some(t.name())),
                None => {}
            }
        }
        let raw: SpecFile =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let key = if key == "." {
                    "(top level)".to_string()
                } else {
                    key
                };
                spec_err(&key, e.into_inner().message().trim().to_string())
            })?;
        let template = match chosen {
            Some(t) => t,
            None => {
                template::find(&raw.template).map_err(|e| spec_err("template", e.to_string()))?
            }
        };
        let name = raw.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".into())
        });

        let layers = load_workload(&raw.workload, path)?;

        // Template axes: exactly the table of the chosen template, which must run every layer.
        let axes = axes.ok_or_else(|| {
            spec_err(
                template.name(),
                format!(
                    "template = \"{0}\" needs a [{0}] table of parameter axes ({1})",
                    template.name(),
                    template.sweep_axes_hint()
                ),
            )
        })?;
        let units: Vec<Layer> = layers.iter().map(|l| l.unit.clone()).collect();
        let space: Arc<dyn SweepSpace> = template
            .sweep_space(&axes, &units)
            .map_err(|e| spec_err(&e.key, e.problem))?
            .into();
        if let Some(t) = stray {
            return Err(spec_err(
                t,
                format!(
                    "a [{t}] table does nothing in a sweep of template = \"{}\"; remove it",
                    template.name()
                ),
            ));
        }

        // Boards.
        let db = BoardDb::load(None)?;
        let mut boards: Vec<SweepBoard> = Vec::new();
        for (i, b) in raw.boards.iter().enumerate() {
            let board = db
                .get(b)
                .map_err(|e| spec_err(&format!("boards[{i}]"), e.to_string()))?
                .clone();
            if boards.iter().any(|x| x.board.name == board.name) {
                return Err(spec_err(
                    &format!("boards[{i}]"),
                    format!("board `{b}` is listed twice"),
                ));
            }
            boards.push(SweepBoard {
                board,
                must_fit: false,
            });
        }
        for (i, b) in raw.constraints.fits.0.iter().enumerate() {
            let board = db
                .get(b)
                .map_err(|e| spec_err(&format!("constraints.fits[{i}]"), e.to_string()))?
                .clone();
            match boards.iter_mut().find(|x| x.board.name == board.name) {
                Some(x) => x.must_fit = true,
                None => boards.push(SweepBoard {
                    board,
                    must_fit: true,
                }),
            }
        }

        let clock_mhz = match raw.clock_mhz {
            Some(c) if !(c > 0.0 && c <= 1000.0) => {
                return Err(spec_err(
                    "clock_mhz",
                    format!("{c} is outside (0, 1000] MHz"),
                ));
            }
            Some(c) => c,
            None => boards
                .first()
                .map(|b| b.board.default_clock_mhz())
                .unwrap_or(DEFAULT_CLOCK_MHZ),
        };

        let known = |m: &str| METRICS.contains(&m);
        let known_list = METRICS.join(", ");
        if raw.objectives.is_empty() {
            return Err(spec_err(
                "objectives",
                "give at least one, e.g. objectives = [{ minimize = \"latency_s\" }, { minimize = \"dsp\" }]".into(),
            ));
        }
        let mut objectives = Vec::new();
        for (i, o) in raw.objectives.iter().enumerate() {
            let (m, goal) = match o {
                ObjectiveSpec::Minimize(m) => (canonical_metric(m), Goal::Minimize),
                ObjectiveSpec::Maximize(m) => (canonical_metric(m), Goal::Maximize),
            };
            if !known(&m) {
                return Err(spec_err(
                    &format!("objectives[{i}]"),
                    format!("unknown metric `{m}`; known: {known_list}"),
                ));
            }
            if objectives.iter().any(|x: &Objective| x.metric == m) {
                return Err(spec_err(
                    &format!("objectives[{i}]"),
                    format!("metric `{m}` appears twice"),
                ));
            }
            objectives.push(Objective { metric: m, goal });
        }
        let mut limits = Vec::new();
        for (i, text) in raw.constraints.limits.iter().enumerate() {
            let l =
                parse_limit(text).map_err(|p| spec_err(&format!("constraints.limits[{i}]"), p))?;
            if !known(&l.metric) {
                return Err(spec_err(
                    &format!("constraints.limits[{i}]"),
                    format!("unknown metric `{}`; known: {known_list}", l.metric),
                ));
            }
            limits.push(l);
        }
        Ok(Spec {
            file: path.to_path_buf(),
            name,
            template,
            space,
            layers,
            boards,
            clock_mhz,
            objectives,
            limits,
        })
    }

    /// Points in the whole space.
    pub fn total_points(&self) -> u64 {
        self.space.len()
    }

    /// Constraints as written, for the report.
    pub fn constraint_texts(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .boards
            .iter()
            .filter(|b| b.must_fit)
            .map(|b| format!("fits {}", b.board.name))
            .collect();
        v.extend(self.limits.iter().map(|l| l.text.clone()));
        v
    }

    /// Board facts for the report.
    pub fn board_infos(&self) -> Vec<BoardInfo> {
        self.boards
            .iter()
            .map(|b| {
                let bd = &b.board;
                BoardInfo {
                    name: bd.name.clone(),
                    display_name: bd.display_name.clone(),
                    clock_mhz: self.clock_mhz,
                    ddr_gbps: bd.ddr.peak_gbps.value,
                    lut: bd.resources.lut.value,
                    ff: bd.resources.ff.value,
                    dsp: bd.resources.dsp.value,
                    bram18: bd.bram18(),
                    uram: bd.resources.uram.value,
                    // `dsp-packed` PEs put two int8 products on one DSP of either kind
                    // (their packed operand is 25 bits, the DSP48E1's port).
                    macs_per_dsp: match bd.resources.dsp.dsp_type {
                        DspType::Dsp48e1 | DspType::Dsp48e2 => 2.0,
                    },
                }
            })
            .collect()
    }

    /// The workload as recorded in `sweep.json`.
    pub fn workload_layers(&self) -> Vec<WorkloadLayer> {
        self.layers
            .iter()
            .map(|l| match &l.op {
                WorkOp::Gemm { gemm, .. } => WorkloadLayer {
                    name: l.name.clone(),
                    kind: l.kind.to_string(),
                    m: u64::from(gemm.m),
                    k: u64::from(gemm.k),
                    n: u64::from(gemm.n),
                    repeat: l.repeat,
                },
                // The report's table has GEMM columns: M = tokens, K = d_model, N = d_ff, and
                // the kind names the experts.
                WorkOp::Moe(s) => WorkloadLayer {
                    name: l.name.clone(),
                    kind: format!("moe (E={}, top-{})", s.experts, s.top_k),
                    m: u64::from(s.tokens),
                    k: u64::from(s.d_model),
                    n: u64::from(s.d_ff),
                    repeat: l.repeat,
                },
                // Q·Kᵀ per head: M = tokens, K = head_dim, N = tokens.
                WorkOp::Attention(a) => WorkloadLayer {
                    name: l.name.clone(),
                    kind: format!("attention ({} heads)", a.heads),
                    m: a.tokens,
                    k: a.head_dim,
                    n: a.tokens,
                    repeat: l.repeat,
                },
            })
            .collect()
    }

    /// Hash of everything besides a point's parameters that decides its record: template,
    /// workload, boards, clock, constraints. Resuming or merging requires equal fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.template.name());
        h.update(format!("{:?}", self.workload_layers()));
        for b in self.board_infos() {
            h.update(format!("{b:?}"));
        }
        h.update(self.clock_mhz.to_bits().to_le_bytes());
        h.update(format!("{:?}", self.constraint_texts()));
        hex::encode(&h.finalize()[..8])
    }
}

fn parse_limit(text: &str) -> std::result::Result<Limit, String> {
    let ops: [(&str, Cmp); 6] = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
        ("=", Cmp::Eq),
    ];
    for (op, cmp) in ops {
        if let Some((lhs, rhs)) = text.split_once(op) {
            let metric = canonical_metric(lhs);
            let rhs = rhs.trim();
            let value: f64 = rhs.replace('_', "").parse().map_err(|_| {
                format!("`{text}`: `{rhs}` is not a number (write e.g. \"dsp <= 220\")")
            })?;
            if metric.is_empty() || !value.is_finite() {
                return Err(format!(
                    "`{text}`: write `metric <= number`, e.g. \"dsp <= 220\""
                ));
            }
            return Ok(Limit {
                metric,
                cmp,
                value,
                text: text.trim().to_string(),
            });
        }
    }
    Err(format!(
        "`{text}` has no comparison; write `metric <= number` (also <, >=, >, ==), e.g. \"dsp <= 220\""
    ))
}

fn load_workload(w: &WorkloadSpec, spec_path: &Path) -> Result<Vec<WorkLayer>> {
    let spec_err = |file: &Path, key: String, problem: String| SweepError::Spec {
        file: file.to_path_buf(),
        key,
        problem,
    };
    let given = [w.file.is_some(), !w.layers.is_empty(), w.builtin.is_some()];
    if given.iter().filter(|&&g| g).count() > 1 {
        return Err(spec_err(
            spec_path,
            "workload".into(),
            "give one of `file`, `layers` or `builtin`".into(),
        ));
    }
    let (layers, file, prefix) = match (&w.file, &w.builtin) {
        (None, Some(name)) => {
            let wl = Workload::builtin(name)
                .map_err(|e| spec_err(spec_path, "workload.builtin".into(), e.to_string()))?;
            (wl.layers, spec_path.to_path_buf(), "workload.builtin")
        }
        (None, None) if w.layers.is_empty() => {
            return Err(spec_err(
                spec_path,
                "workload".into(),
                "no layers: add `layers = [{ kind = \"gemm\", m = 64, k = 64, n = 64 }]`, \
                 `file = \"layers.toml\"` or `builtin = \"mlp\"`"
                    .into(),
            ));
        }
        (None, _) => {
            let layers = parse_layer_tables(&w.layers, &spec_path.display().to_string())
                .map_err(|e| located(spec_path, "workload.layers", e))?;
            (layers, spec_path.to_path_buf(), "workload.layers")
        }
        (Some(f), _) => {
            let full = spec_path.parent().unwrap_or(Path::new(".")).join(f);
            let text =
                std::fs::read_to_string(&full).map_err(io_err("reading workload file", &full))?;
            let stem = full
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workload".into());
            let wl = parse_workload(&text, &full.display().to_string(), &stem)
                .map_err(|e| located(&full, "layer", e))?;
            (wl.layers, full, "layer")
        }
    };
    work_layers(&layers, &file, prefix)
}

/// A workload error as a spec error whose key is the layer's path in the spec (or file).
fn located(file: &Path, prefix: &str, e: WorkloadError) -> SweepError {
    let (key, problem) = match e {
        WorkloadError::Invalid {
            layer,
            key,
            message,
            ..
        } => {
            let mut path = prefix.to_string();
            if let Some(i) = layer {
                path = format!("{path}[{i}]");
            }
            if let Some(k) = key {
                path = format!("{path}.{k}");
            }
            (path, message)
        }
        other => (prefix.to_string(), other.to_string()),
    };
    SweepError::Spec {
        file: file.to_path_buf(),
        key,
        problem,
    }
}

/// Workload layers as the sweep evaluates them: GEMM-like layers lowered as the mapper lowers
/// them (a depthwise convolution's groups become `repeat`), `moe` layers as they are. The
/// layers' QFX type strings do not apply: a sweep's types are its axes.
fn work_layers(layers: &[Layer], file: &Path, prefix: &str) -> Result<Vec<WorkLayer>> {
    let mut out: Vec<WorkLayer> = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let fail = |problem: String| SweepError::Spec {
            file: file.to_path_buf(),
            key: format!("{prefix}[{i}]"),
            problem,
        };
        let dim = |what: &str, v: u64| {
            u32::try_from(v).map_err(|_| fail(format!("{what} = {v} does not fit 32 bits")))
        };
        if out.iter().any(|x| x.name == l.name) {
            return Err(fail(format!("layer name `{}` is used twice", l.name)));
        }
        let (kind, op, groups) = match &l.op {
            LayerOp::Moe(m) => (
                "moe",
                WorkOp::Moe(MoeLayerShape {
                    tokens: dim("tokens", m.tokens)?,
                    d_model: dim("d_model", m.d_model)?,
                    d_ff: dim("d_ff", m.d_ff)?,
                    experts: dim("experts", m.experts)?,
                    top_k: dim("top_k", m.top_k)?,
                }),
                1,
            ),
            LayerOp::Attention(a) => ("attention", WorkOp::Attention(*a), 1),
            LayerOp::Conv2d(c) if !c.depthwise => {
                let gemm = c.gemm().map_err(|e| fail(e.to_string()))?;
                ("conv2d", WorkOp::Gemm { gemm }, 1)
            }
            op => {
                let lowered = l.lower();
                let gemm = Gemm {
                    m: dim("M", lowered.gemm.m)?,
                    k: dim("K", lowered.gemm.k)?,
                    n: dim("N", lowered.gemm.n)?,
                };
                let kind = match op {
                    LayerOp::Conv2d(_) => "depthwise",
                    LayerOp::Dense { .. } => "dense",
                    _ => "gemm",
                };
                (kind, WorkOp::Gemm { gemm }, lowered.groups)
            }
        };
        let unit = match (&l.op, &op) {
            (LayerOp::Conv2d(c), WorkOp::Gemm { gemm }) if c.depthwise => Layer {
                op: LayerOp::Gemm(GemmShape {
                    m: u64::from(gemm.m),
                    k: u64::from(gemm.k),
                    n: u64::from(gemm.n),
                }),
                ..l.clone()
            },
            _ => l.clone(),
        };
        out.push(WorkLayer {
            name: l.name.clone(),
            kind,
            op,
            repeat: l.repeat.saturating_mul(groups),
            unit,
        });
    }
    Ok(out)
}
