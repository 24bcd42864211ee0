//! The front end: model + workload + board → problem → solve → report.

use std::time::Instant;

use accelforge_boards::{Board, BudgetReport, ResourceEstimate, check_budget};
use serde::{Deserialize, Serialize};

use crate::error::{MapperError, Result};
use crate::exhaustive;
use crate::ilp::{self, SolveStatus, Solved, Solver};
use crate::model::{EngineModel, ModelErrors, SearchSpace};
use crate::problem::{Formulation, OptionCost, Problem, Pruned, diagnose, filter_only, prune};
use crate::workload::{GemmShape, Workload};

/// How to solve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// A MILP back end, optionally time-limited (seconds).
    Ilp {
        /// Back end.
        solver: Solver,
        /// Time limit in seconds.
        time_limit: Option<f64>,
    },
    /// Exhaustive enumeration, refused above `limit` points.
    Exhaustive {
        /// Largest space (complete assignments) to enumerate.
        limit: f64,
    },
}

/// What to map and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapOptions {
    /// Formulation.
    pub formulation: Formulation,
    /// Method.
    pub method: Method,
    /// Knobs to sweep.
    pub space: SearchSpace,
    /// PL clock in MHz (default: the board's default PL clock).
    pub clock_mhz: Option<f64>,
    /// Remove dominated options and configurations before solving (exact; much faster).
    /// Without it only over-budget configurations are dropped and every tiling is offered.
    pub prune: bool,
}

impl MapOptions {
    /// Overlay, CBC, the board's default space, pruning on.
    pub fn new(board: &Board) -> MapOptions {
        MapOptions {
            formulation: Formulation::Overlay,
            method: Method::Ilp {
                solver: Solver::Cbc,
                time_limit: None,
            },
            space: SearchSpace::for_board(board),
            clock_mhz: None,
            prune: true,
        }
    }
}

/// The costs of every (layer, configuration, tiling) a model offers for a workload on a board.
#[derive(Debug, Clone)]
pub struct Instance<M: EngineModel> {
    /// The model's configurations.
    pub candidates: Vec<M::Config>,
    /// `tilings[l][c]`: the runnable tilings, aligned with `problem.options[l][c]`.
    pub tilings: Vec<Vec<Vec<M::Tiling>>>,
    /// The model-independent instance.
    pub problem: Problem,
    /// PL clock (MHz) the cycle counts are converted with.
    pub clock_mhz: f64,
}

/// Evaluates the model on every (layer, configuration, tiling).
pub fn build_instance<M: EngineModel>(
    model: &M,
    workload: &Workload,
    board: &Board,
    space: &SearchSpace,
    clock_mhz: Option<f64>,
) -> Result<Instance<M>> {
    build_instance_until(model, workload, board, space, clock_mhz, None, &|_| {})
}

/// A time limit as an instant plus the limit the user gave (for messages).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    limit: f64,
}

impl Deadline {
    fn check(d: Option<Deadline>, phase: impl FnOnce() -> String) -> Result<()> {
        match d {
            Some(d) if Instant::now() >= d.at => Err(MapperError::TimeLimit {
                limit: d.limit,
                phase: phase(),
            }),
            _ => Ok(()),
        }
    }
}

/// [`build_instance`] that stops at `deadline` and tells `progress` which layer it prices.
/// Pricing is where the time goes with an exact cycle model (measured: resnet18 on the
/// default space spends minutes here before the solver starts), so the limit is checked
/// before every (layer, configuration) pair, not only in the solver.
fn build_instance_until<M: EngineModel>(
    model: &M,
    workload: &Workload,
    board: &Board,
    space: &SearchSpace,
    clock_mhz: Option<f64>,
    deadline: Option<Deadline>,
    progress: &dyn Fn(&str),
) -> Result<Instance<M>> {
    space
        .validate()
        .map_err(crate::error::MapperError::SearchSpace)?;
    let clock = clock_mhz.unwrap_or_else(|| board.default_clock_mhz());
    if !(clock > 0.0 && clock <= board.max_pl_clock_mhz()) {
        return Err(MapperError::SearchSpace(format!(
            "clock {clock} MHz is outside (0, {}] for {}",
            board.max_pl_clock_mhz(),
            board.display_name
        )));
    }
    let rate = board.ddr_bytes_per_pl_cycle(clock);
    let candidates = model.candidates(space);
    if candidates.is_empty() {
        return Err(MapperError::SearchSpace(
            "the model offers no configuration in this space".into(),
        ));
    }
    let resources = candidates
        .iter()
        .map(|c| {
            let r = model.resources(c);
            [r.lut, r.ff, r.dsp, r.bram18, r.uram]
        })
        .collect();
    let mut tilings = Vec::with_capacity(workload.layers.len());
    let mut options = Vec::with_capacity(workload.layers.len());
    let n_layers = workload.layers.len();
    for (li, layer) in workload.layers.iter().enumerate() {
        progress(&format!(
            "pricing layer {}/{n_layers} `{}` on {} configurations",
            li + 1,
            layer.name,
            candidates.len()
        ));
        let mut tl = Vec::with_capacity(candidates.len());
        let mut ol = Vec::with_capacity(candidates.len());
        for (ci, cfg) in candidates.iter().enumerate() {
            Deadline::check(deadline, || {
                format!(
                    "pricing the candidates with the {} model (layer {}/{n_layers} `{}`, configuration {ci}/{})",
                    model.name(),
                    li + 1,
                    layer.name,
                    candidates.len()
                )
            })?;
            let mut ts = Vec::new();
            let mut os = Vec::new();
            for t in model.tilings(cfg, layer) {
                let (Some(lat), Some(compute)) = (
                    model.layer_latency(cfg, layer, &t, rate),
                    model.layer_cycles(cfg, layer, &t),
                ) else {
                    continue;
                };
                os.push(OptionCost {
                    latency: lat.saturating_mul(layer.repeat),
                    compute: compute.saturating_mul(layer.repeat),
                    bytes: model.ddr_bytes(cfg, layer, &t).saturating_mul(layer.repeat),
                });
                ts.push(t);
            }
            tl.push(ts);
            ol.push(os);
        }
        tilings.push(tl);
        options.push(ol);
    }
    let b = &board.resources;
    Ok(Instance {
        candidates,
        tilings,
        problem: Problem {
            budget: [
                b.lut.value,
                b.ff.value,
                b.dsp.value,
                board.bram18(),
                b.uram.value,
            ],
            ddr_bytes_per_cycle: rate,
            resources,
            layer_names: workload.layers.iter().map(|l| l.name.clone()).collect(),
            options,
        },
        clock_mhz: clock,
    })
}

/// One layer of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Runs per inference.
    pub repeat: u64,
    /// Engine index that runs it.
    pub engine: usize,
    /// Lowered GEMM shape.
    pub gemm: GemmShape,
    /// Independent GEMMs (depthwise groups).
    pub groups: u64,
    /// MACs, repeats included.
    pub macs: u64,
    /// The tiling chosen.
    pub tiling: serde_json::Value,
    /// Compute cycles, repeats included.
    pub compute_cycles: u64,
    /// DDR bytes, repeats included.
    pub ddr_bytes: u64,
    /// Cycles including memory, repeats included.
    pub cycles: u64,
    /// `cycles` at the clock, in seconds.
    pub seconds: f64,
    /// `compute` or `memory`: which side sets the layer's time.
    pub bound: String,
}

/// One engine of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineReport {
    /// Its configuration.
    pub params: serde_json::Value,
    /// Its resources.
    pub resources: ResourceEstimate,
    /// The layers it runs.
    pub layers: Vec<String>,
    /// Sum of its layers' cycles.
    pub busy_cycles: u64,
}

/// Search statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchStats {
    /// Configurations the model offered.
    pub candidates: usize,
    /// Configurations left after budget filtering and pruning.
    pub configurations_solved: usize,
    /// (layer, configuration, tiling) options left.
    pub options_solved: usize,
    /// Complete assignments in the solved space (an upper bound for heterogeneous).
    pub space_points: f64,
    /// MILP variables (0 for exhaustive).
    pub variables: usize,
    /// MILP constraints (0 for exhaustive).
    pub constraints: usize,
}

/// The result of mapping a workload onto a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapReport {
    /// Workload name.
    pub workload: String,
    /// Board name.
    pub board: String,
    /// Cost model name.
    pub model: String,
    /// A caveat about the model, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_note: Option<String>,
    /// Formulation name.
    pub formulation: String,
    /// `cbc`, `microlp` or `exhaustive`.
    pub method: String,
    /// Objective in cycles (overlay: latency of one inference; dataflow: initiation interval
    /// of the pipeline; heterogeneous: makespan of one inference).
    pub objective: f64,
    /// The objective at the clock, in seconds.
    pub objective_seconds: f64,
    /// What the objective measures.
    pub objective_meaning: String,
    /// PL clock in MHz.
    pub clock_mhz: f64,
    /// Board DDR bytes per PL cycle.
    pub ddr_bytes_per_cycle: f64,
    /// The chosen configuration: overlay → the one engine's params; dataflow →
    /// `{"stages": [{"layer", "params"}]}`; heterogeneous → `{"engines": [params]}`.
    pub params: serde_json::Value,
    /// Every engine.
    pub engines: Vec<EngineReport>,
    /// Total resources.
    pub resources: ResourceEstimate,
    /// Board totals.
    pub budget: ResourceEstimate,
    /// Per-line utilisation.
    pub utilisation: BudgetReport,
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// Solver status.
    pub status: SolveStatus,
    /// Solve wall time in seconds.
    pub solve_seconds: f64,
    /// Search statistics.
    pub search: SearchStats,
    /// Cycle-/resource-model failures while pricing (candidates skipped because of them).
    #[serde(default)]
    pub model_errors: ModelErrors,
}

/// Maps `workload` onto `board` with `model`.
pub fn map<M: EngineModel>(
    model: &M,
    workload: &Workload,
    board: &Board,
    opts: &MapOptions,
) -> Result<MapReport> {
    map_with_progress(model, workload, board, opts, &|_| {})
}

/// [`map`], telling `progress` each phase as it starts (for a spinner). An ILP time limit
/// covers the whole call — pricing, pruning and the solve — not only the solver: the solver
/// gets what is left.
pub fn map_with_progress<M: EngineModel>(
    model: &M,
    workload: &Workload,
    board: &Board,
    opts: &MapOptions,
    progress: &dyn Fn(&str),
) -> Result<MapReport> {
    let start = Instant::now();
    let deadline = match opts.method {
        Method::Ilp {
            time_limit: Some(t),
            ..
        } if t > 0.0 && t.is_finite() => Some(Deadline {
            at: start + std::time::Duration::from_secs_f64(t),
            limit: t,
        }),
        _ => None,
    };
    let with_model_errors = |e: MapperError| match e {
        MapperError::Infeasible { board, reason } if model.model_errors().count > 0 => {
            let me = model.model_errors();
            MapperError::Infeasible {
                board,
                reason: format!(
                    "{reason} ({} cost-model errors skipped candidates, e.g. {})",
                    me.count,
                    me.examples.first().map(String::as_str).unwrap_or("?")
                ),
            }
        }
        other => other,
    };
    let inst = build_instance_until(
        model,
        workload,
        board,
        &opts.space,
        opts.clock_mhz,
        deadline,
        progress,
    )
    .map_err(with_model_errors)?;
    let f = opts.formulation;
    if f.engines() == Some(0) {
        return Err(MapperError::SearchSpace(format!(
            "{} needs at least one engine",
            f.name()
        )));
    }
    let infeasible = |reason: String| MapperError::Infeasible {
        board: board.display_name.clone(),
        reason,
    };
    if let Some(reason) = diagnose(&inst.problem, f, &board.display_name) {
        return Err(with_model_errors(infeasible(reason)));
    }
    progress("pruning dominated configurations");
    let pruned = if opts.prune {
        prune(&inst.problem, f, true)
    } else {
        filter_only(&inst.problem, f)
    };
    if pruned.problem.configs() == 0 {
        return Err(infeasible(
            "no configuration meets every budget line at once".into(),
        ));
    }
    let method = match (opts.method, deadline) {
        (Method::Ilp { solver, .. }, Some(d)) => {
            Deadline::check(deadline, || "pruning the candidates".into())?;
            Method::Ilp {
                solver,
                time_limit: Some(
                    d.at.saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .max(0.01),
                ),
            }
        }
        (m, _) => m,
    };
    progress(&format!(
        "solving the {} formulation ({} configurations)",
        f.name(),
        pruned.problem.configs()
    ));
    let solved = solve_pruned(&pruned, f, method).map_err(|e| match e {
        MapperError::Infeasible { reason, .. } => with_model_errors(infeasible(reason)),
        // The solver saw only what was left; name the user's limit.
        MapperError::TimeLimit { phase, .. } => MapperError::TimeLimit {
            limit: deadline.map_or(0.0, |d| d.limit),
            phase,
        },
        other => other,
    })?;
    report(
        model,
        workload,
        board,
        &inst,
        &pruned,
        f,
        opts.method,
        solved,
    )
}

/// Solves an already pruned problem with `method`.
pub fn solve_pruned(pruned: &Pruned, f: Formulation, method: Method) -> Result<Solved> {
    match method {
        Method::Ilp { solver, time_limit } => ilp::solve(&pruned.problem, f, solver, time_limit),
        Method::Exhaustive { limit } => exhaustive::solve(&pruned.problem, f, limit),
    }
}

#[allow(clippy::too_many_arguments)]
fn report<M: EngineModel>(
    model: &M,
    workload: &Workload,
    board: &Board,
    inst: &Instance<M>,
    pruned: &Pruned,
    f: Formulation,
    method: Method,
    solved: Solved,
) -> Result<MapReport> {
    let json = |v: &dyn erased::Ser| v.to_value();
    let a = pruned.unmap(&solved.assignment);
    let p = &inst.problem;
    let clock_hz = inst.clock_mhz * 1e6;
    let mut layers = Vec::with_capacity(workload.layers.len());
    for (l, layer) in workload.layers.iter().enumerate() {
        let e = a.layer_engine[l];
        let c = a.engines[e];
        let o = a.layer_option[l];
        let cost = p.options[l][c][o];
        let low = layer.lower();
        let transfer_bound = cost.latency > cost.compute;
        layers.push(LayerReport {
            name: layer.name.clone(),
            repeat: layer.repeat,
            engine: e,
            gemm: low.gemm,
            groups: low.groups,
            macs: layer.macs().saturating_mul(layer.repeat),
            tiling: json(&inst.tilings[l][c][o])?,
            compute_cycles: cost.compute,
            ddr_bytes: cost.bytes,
            cycles: cost.latency,
            seconds: cost.latency as f64 / clock_hz,
            bound: if transfer_bound { "memory" } else { "compute" }.into(),
        });
    }
    let mut engines = Vec::with_capacity(a.engines.len());
    for (e, &c) in a.engines.iter().enumerate() {
        let on: Vec<usize> = (0..layers.len())
            .filter(|&l| a.layer_engine[l] == e)
            .collect();
        engines.push(EngineReport {
            params: json(&inst.candidates[c])?,
            resources: model.resources(&inst.candidates[c]),
            layers: on.iter().map(|&l| layers[l].name.clone()).collect(),
            busy_cycles: on.iter().map(|&l| layers[l].cycles).sum(),
        });
    }
    let total = engines
        .iter()
        .fold(ResourceEstimate::default(), |acc, e| ResourceEstimate {
            lut: acc.lut + e.resources.lut,
            ff: acc.ff + e.resources.ff,
            dsp: acc.dsp + e.resources.dsp,
            bram18: acc.bram18 + e.resources.bram18,
            uram: acc.uram + e.resources.uram,
        });
    let params = match f {
        Formulation::Overlay => engines
            .first()
            .map(|e| e.params.clone())
            .unwrap_or_default(),
        Formulation::Dataflow => serde_json::json!({
            "stages": engines.iter().zip(&layers).map(|(e, l)| serde_json::json!({
                "layer": l.name, "params": e.params
            })).collect::<Vec<_>>()
        }),
        Formulation::Heterogeneous { .. } | Formulation::Sequential { .. } => serde_json::json!({
            "engines": engines.iter().map(|e| e.params.clone()).collect::<Vec<_>>(),
            "assignment": engines.iter().map(|e| e.layers.clone()).collect::<Vec<_>>(),
        }),
    };
    let meaning = match f {
        Formulation::Overlay => "latency of one inference on one time-shared engine (cycles)",
        Formulation::Dataflow => {
            "initiation interval of the layer pipeline: the slowest stage, or the shared DDR time if larger (cycles)"
        }
        Formulation::Heterogeneous { .. } => {
            "makespan of one inference: the busiest engine, or the shared DDR time if larger (cycles)"
        }
        Formulation::Sequential { .. } => {
            "latency of one inference with the engines running in turn: every layer's latency added, or the shared DDR time if larger (cycles)"
        }
    };
    let r = &board.resources;
    let budget = ResourceEstimate {
        lut: r.lut.value,
        ff: r.ff.value,
        dsp: r.dsp.value,
        bram18: board.bram18(),
        uram: r.uram.value,
    };
    let options_solved = pruned.problem.options.iter().flatten().map(Vec::len).sum();
    Ok(MapReport {
        workload: workload.name.clone(),
        board: board.name.clone(),
        model: model.name().to_string(),
        model_note: model.note().map(str::to_string),
        formulation: f.name().into(),
        method: match method {
            Method::Ilp { solver, .. } => solver.name().into(),
            Method::Exhaustive { .. } => "exhaustive".into(),
        },
        objective: solved.objective,
        objective_seconds: solved.objective / clock_hz,
        objective_meaning: meaning.into(),
        clock_mhz: inst.clock_mhz,
        ddr_bytes_per_cycle: p.ddr_bytes_per_cycle,
        params,
        utilisation: check_budget(board, &total),
        resources: total,
        budget,
        engines,
        layers,
        status: solved.status,
        solve_seconds: solved.solve_seconds,
        search: SearchStats {
            candidates: inst.candidates.len(),
            configurations_solved: pruned.problem.configs(),
            options_solved,
            space_points: pruned.problem.space_size(f),
            variables: solved.variables,
            constraints: solved.constraints,
        },
        model_errors: model.model_errors(),
    })
}

/// Serialising through a trait object keeps `report` free of extra generic bounds.
mod erased {
    use crate::error::{MapperError, Result};

    pub trait Ser {
        fn to_value(&self) -> Result<serde_json::Value>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_value(&self) -> Result<serde_json::Value> {
            serde_json::to_value(self)
                .map_err(|e| MapperError::SearchSpace(format!("cannot serialise: {e}")))
        }
    }
}
