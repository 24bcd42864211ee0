//! The MILP formulations, built with good_lp and solved by CBC or microlp.
//!
//! All three formulations are one model with different engine structures (see
//! `docs/mapper.md` for the algebra):
//!
//! - `y[e][c]` ∈ {0,1}: engine `e` has configuration `c`; `Σ_c y[e][c] = 1`.
//! - `x[l][e][c][o]` ∈ {0,1}: layer `l` runs on engine `e`, configured `c`, with option `o`;
//!   `Σ_{e,c,o} x = 1` per layer and `Σ_o x[l][e][c][o] ≤ y[e][c]` (linking: a layer can use
//!   only its engine's chosen configuration, which keeps every product of a configuration
//!   choice and a per-layer cost linear).
//! - resources: `Σ_{e,c} r_c · y[e][c] ≤ budget`, one row per line.
//! - `T ≥ Σ_{l on e} latency · x` per engine (sequential: one row, `T ≥ Σ_l latency · x`, the
//!   engines running in turn) and `T ≥ Σ bytes · x / DDR rate`; minimise `T`
//!   (plus a tie-breaking term below a thousandth of a cycle that prefers smaller designs).
//!
//! Overlay: one engine, every layer on it. Dataflow: engine `l` is layer `l`'s. Heterogeneous
//! and sequential: `E` engines, any layer on any engine, `idx(e) ≤ idx(e+1)` to break engine
//! symmetry.

use std::time::Instant;

use good_lp::{
    Constraint, Expression, ProblemVariables, Solution, SolverModel, Variable, WithTimeLimit,
    variable,
};
use serde::{Deserialize, Serialize};

use crate::error::{MapperError, Result};
use crate::precision::{Goal, Need, Precision};
use crate::problem::{Assignment, Formulation, Problem, res_fits};

/// MILP back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// COIN-OR CBC (system library; the default).
    Cbc,
    /// microlp (pure Rust).
    Microlp,
}

impl Solver {
    /// Name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Cbc => "cbc",
            Solver::Microlp => "microlp",
        }
    }
    /// True when this build contains the back end.
    pub fn available(&self) -> bool {
        match self {
            Solver::Cbc => cfg!(feature = "cbc"),
            Solver::Microlp => cfg!(feature = "microlp"),
        }
    }
}

/// How a solution was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SolveStatus {
    /// The solver proved optimality.
    Optimal,
    /// The time limit stopped the solver; the best solution found so far. `gap` is the
    /// relative gap to the solver's bound when the back end reports one.
    TimeLimited {
        /// (objective − bound) / objective.
        gap: Option<f64>,
    },
    /// Exhaustive enumeration (optimal by construction).
    Exhaustive {
        /// Complete assignments in the space (an upper bound for heterogeneous).
        points: f64,
    },
}

/// A solved formulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solved {
    /// The choice, in the solved problem's indices.
    pub assignment: Assignment,
    /// Objective in cycles, recomputed exactly from the assignment.
    pub objective: f64,
    /// Status.
    pub status: SolveStatus,
    /// Wall time of the solve (model building included).
    pub solve_seconds: f64,
    /// Number of MILP variables (0 for exhaustive).
    pub variables: usize,
    /// Number of MILP constraints (0 for exhaustive).
    pub constraints: usize,
}

/// Total tie-breaking weight per engine, in cycles: below the smallest difference the primary
/// objective can show (latencies are whole cycles; a byte of DDR traffic is at least 1/2000
/// cycle on any board we know), so it never overrides the primary objective.
const TIE_BREAK_CYCLES: f64 = 1e-4;

struct Built {
    vars: ProblemVariables,
    objective: Expression,
    constraints: Vec<Constraint>,
    y: Vec<Vec<(usize, Variable)>>,
    x: Vec<Vec<(usize, usize, usize, Variable)>>,
    /// Mixed precision: `z[s][o]`, site `s` takes option `o`.
    z: Vec<Vec<Variable>>,
    n_vars: usize,
}

fn build(p: &Problem, f: Formulation, mixed: Option<(&Precision, Goal)>) -> Result<Built> {
    let layers = p.layers();
    let engines = match f {
        Formulation::Overlay => 1,
        Formulation::Dataflow => layers,
        Formulation::Heterogeneous { engines } | Formulation::Sequential { engines } => engines,
    };
    if engines == 0 {
        return Err(MapperError::SearchSpace("need at least one engine".into()));
    }
    let engine_of = |l: usize| -> Vec<usize> {
        match f {
            Formulation::Overlay => vec![0],
            Formulation::Dataflow => vec![l],
            Formulation::Heterogeneous { .. } | Formulation::Sequential { .. } => {
                (0..engines).collect()
            }
        }
    };
    let mut vars = ProblemVariables::new();
    let mut n_vars = 0usize;
    // Configurations each engine may take.
    let usable = |e: usize, c: usize| -> bool {
        if !res_fits(&p.resources[c], &p.budget) {
            return false;
        }
        match f {
            Formulation::Overlay => (0..layers).all(|l| !p.options[l][c].is_empty()),
            Formulation::Dataflow => !p.options[e][c].is_empty(),
            Formulation::Heterogeneous { .. } | Formulation::Sequential { .. } => true,
        }
    };
    let y: Vec<Vec<(usize, Variable)>> = (0..engines)
        .map(|e| {
            (0..p.configs())
                .filter(|&c| usable(e, c))
                .map(|c| {
                    n_vars += 1;
                    (c, vars.add(variable().binary()))
                })
                .collect()
        })
        .collect();
    let mut x: Vec<Vec<(usize, usize, usize, Variable)>> = vec![Vec::new(); layers];
    for (l, xl) in x.iter_mut().enumerate() {
        for e in engine_of(l) {
            for &(c, _) in &y[e] {
                for o in 0..p.options[l][c].len() {
                    n_vars += 1;
                    xl.push((e, c, o, vars.add(variable().binary())));
                }
            }
        }
    }
    let t = vars.add(variable().min(0.0));
    n_vars += 1;

    let mut constraints = Vec::new();
    for ye in &y {
        let s: Expression = ye.iter().map(|&(_, v)| v).sum();
        constraints.push(s.eq(1.0));
    }
    for xl in &x {
        let s: Expression = xl.iter().map(|&(_, _, _, v)| v).sum();
        constraints.push(s.eq(1.0));
    }
    // Linking rows: Σ_o x[l][e][c][o] ≤ y[e][c].
    for xl in &x {
        let mut i = 0;
        while i < xl.len() {
            let (e, c, _, _) = xl[i];
            let mut j = i;
            let mut s = Expression::from(0.0);
            while j < xl.len() && xl[j].0 == e && xl[j].1 == c {
                s += xl[j].3;
                j += 1;
            }
            let yv = y[e]
                .iter()
                .find(|(cc, _)| *cc == c)
                .map(|&(_, v)| v)
                .ok_or_else(|| MapperError::SearchSpace("internal: missing y".into()))?;
            constraints.push(s.leq(yv));
            i = j;
        }
    }
    // Budget rows.
    for k in 0..5 {
        let s: Expression = y
            .iter()
            .flatten()
            .map(|&(c, v)| p.resources[c][k] as f64 * v)
            .sum();
        constraints.push(s.leq(p.budget[k] as f64));
    }
    // Engine loads.
    let mut loads: Vec<Expression> = vec![Expression::from(0.0); engines];
    for (l, xl) in x.iter().enumerate() {
        for &(e, c, o, v) in xl {
            loads[e] += p.options[l][c][o].latency as f64 * v;
        }
    }
    if matches!(f, Formulation::Sequential { .. }) {
        // The engines run in turn: the loads add up.
        let total: Expression = loads.into_iter().sum();
        constraints.push(total.leq(t));
    } else {
        for load in loads {
            constraints.push(load.leq(t));
        }
    }
    // Shared DDR: all traffic has to pass the board's memory interface. With a model whose
    // latencies already include memory time this row is implied for a single engine, but it
    // is cheap and keeps the MILP equal to `Problem::evaluate` for any cost table.
    {
        let bytes: Expression = x
            .iter()
            .enumerate()
            .flat_map(|(l, xl)| {
                xl.iter().map(move |&(_, c, o, v)| {
                    p.options[l][c][o].bytes as f64 / p.ddr_bytes_per_cycle * v
                })
            })
            .sum();
        constraints.push(bytes.leq(t));
    }
    // Engine symmetry (heterogeneous): configuration indices non-decreasing.
    if f.engines().is_some() {
        for e in 1..engines {
            let a: Expression = y[e - 1].iter().map(|&(c, v)| c as f64 * v).sum();
            let b: Expression = y[e].iter().map(|&(c, v)| c as f64 * v).sum();
            constraints.push(a.leq(b));
        }
    }
    let eps = TIE_BREAK_CYCLES / (5.0 * engines as f64);
    let tie: Expression = y.iter().flatten().map(|&(c, v)| eps * p.score(c) * v).sum();
    let mut objective = tie + t;
    let mut z = Vec::new();
    if let Some((prec, goal)) = mixed {
        z = prec
            .site_costs
            .iter()
            .map(|costs| {
                costs
                    .iter()
                    .map(|_| {
                        n_vars += 1;
                        vars.add(variable().binary())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for zs in &z {
            let s: Expression = zs.iter().copied().sum();
            constraints.push(s.eq(1.0));
        }
        // A placement on `c` only with a precision `c` carries (fixed needs were applied to
        // `p` by the caller), one row per layer, operand and needed width `w`: if the site's
        // option needs at least `w`, no placement on a configuration narrower than `w`.
        // (Aggregated over configurations: a row per configuration is as exact but makes the
        // LP tens of times larger.)
        for (l, xl) in x.iter().enumerate() {
            for (k, need) in prec.needs[l].iter().enumerate() {
                let Need::Site { site, widths } = need else {
                    continue;
                };
                let mut thresholds: Vec<u32> = widths.clone();
                thresholds.sort_unstable();
                thresholds.dedup();
                for w in thresholds {
                    let narrow: Expression = xl
                        .iter()
                        .filter(|&&(_, c, _, _)| prec.widths[c][k] < w)
                        .map(|&(_, _, _, v)| v)
                        .sum();
                    let needs_w: Expression = widths
                        .iter()
                        .zip(&z[*site])
                        .filter(|&(&n, _)| n >= w)
                        .map(|(_, &v)| v)
                        .sum();
                    constraints.push((narrow + needs_w).leq(1.0));
                }
            }
        }
        // Cuts: some site wider than the measured-and-rejected choice.
        for cut in &prec.cuts {
            let wider: Expression = cut
                .iter()
                .enumerate()
                .flat_map(|(s, &c)| {
                    let bits = &prec.site_bits[s];
                    z[s].iter()
                        .enumerate()
                        .filter(move |&(o, _)| bits[o] > bits[c])
                        .map(|(_, &v)| v)
                })
                .sum();
            constraints.push(wider.geq(1.0));
        }
        let cost: Expression = prec
            .site_costs
            .iter()
            .zip(&z)
            .flat_map(|(costs, zs)| costs.iter().zip(zs).map(|(&c, &v)| c * v))
            .sum();
        match goal {
            Goal::MinLatency { max_cost } => {
                // (Among equally fast choices the cheaper precision is the second solve's
                // job, `precision::solve`.)
                constraints.push(cost.leq(max_cost + 1e-9));
            }
            Goal::MinCost { max_cycles } => {
                constraints.push(Expression::from(t).leq(max_cycles));
                // Cost first; latency (scaled to at most a millionth, below any cost
                // difference a measurement can show) and design size break ties.
                objective = cost + (1e-6 / max_cycles.max(1.0)) * objective;
            }
        }
    }
    Ok(Built {
        vars,
        objective,
        constraints,
        y,
        x,
        z,
        n_vars,
    })
}

struct Raw {
    values: Vec<f64>,
    status: good_lp::solvers::SolutionStatus,
    bound: Option<f64>,
}

fn run(
    b: Built,
    watch: &[Variable],
    solver: Solver,
    time_limit: Option<f64>,
) -> std::result::Result<Raw, good_lp::ResolutionError> {
    let Built {
        vars,
        objective,
        constraints,
        ..
    } = b;
    match solver {
        #[cfg(feature = "cbc")]
        Solver::Cbc => {
            let mut m = vars
                .minimise(objective)
                .using(good_lp::solvers::coin_cbc::coin_cbc);
            if let Some(t) = time_limit {
                m = m.with_time_limit(t);
            }
            // One thread: the machine is shared and CBC's threads buy little on models this size.
            m.set_parameter("threads", "1");
            for c in constraints {
                m.add_constraint(c);
            }
            let sol = m.solve()?;
            let bound = sol.model().best_possible_value();
            Ok(Raw {
                values: watch.iter().map(|&v| sol.value(v)).collect(),
                status: sol.status(),
                bound: bound.is_finite().then_some(bound),
            })
        }
        #[cfg(feature = "microlp")]
        Solver::Microlp => {
            let mut m = vars
                .minimise(objective)
                .using(good_lp::solvers::microlp::microlp);
            if let Some(t) = time_limit {
                m = m.with_time_limit(t);
            }
            for c in constraints {
                m.add_constraint(c);
            }
            let sol = m.solve()?;
            Ok(Raw {
                values: watch.iter().map(|&v| sol.value(v)).collect(),
                status: sol.status(),
                bound: None,
            })
        }
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (vars, objective, constraints, watch, time_limit);
            Err(good_lp::ResolutionError::Str(format!(
                "solver {} not compiled in",
                solver.name()
            )))
        }
    }
}

/// Solves formulation `f` on `p` with a MILP back end.
///
/// Two-engine heterogeneous problems are first restricted to the configurations the pair bounds
/// of [`crate::bound`] cannot exclude; the answer is the same optimum, in the original indices.
pub fn solve(
    p: &Problem,
    f: Formulation,
    solver: Solver,
    time_limit: Option<f64>,
) -> Result<Solved> {
    p.validate()?;
    let clock = Instant::now();
    if f == (Formulation::Heterogeneous { engines: 2 })
        && let Some(r) = crate::bound::reduce_two_engines(p)
    {
        let (mut s, _) = solve_from(&r.problem, f, None, solver, time_limit)?;
        s.assignment = r.unmap(&s.assignment);
        // The bound pass is part of the solve.
        s.solve_seconds = clock.elapsed().as_secs_f64();
        s.objective = p.evaluate(&s.assignment).map_err(|e| MapperError::Solver {
            solver: solver.name().into(),
            formulation: f.name().into(),
            message: format!("solution does not check out: {e}"),
        })?;
        return Ok(s);
    }
    Ok(solve_from(p, f, None, solver, time_limit)?.0)
}

/// The mixed-precision MILP ([`crate::precision`]) on `p`, whose fixed needs the caller has
/// already applied; returns the solution and each site's option.
pub(crate) fn solve_mixed(
    p: &Problem,
    f: Formulation,
    prec: &Precision,
    goal: Goal,
    solver: Solver,
    time_limit: Option<f64>,
) -> Result<(Solved, Vec<usize>)> {
    p.validate()?;
    solve_from(p, f, Some((prec, goal)), solver, time_limit)
}

/// The plain MILP on all of `p`, without the two-engine bound reduction: what [`solve`] did
/// before it, kept for the benchmark that measures the reduction and for cross-checks.
pub fn solve_unreduced(
    p: &Problem,
    f: Formulation,
    solver: Solver,
    time_limit: Option<f64>,
) -> Result<Solved> {
    p.validate()?;
    Ok(solve_from(p, f, None, solver, time_limit)?.0)
}

fn solve_from(
    p: &Problem,
    f: Formulation,
    mixed: Option<(&Precision, Goal)>,
    solver: Solver,
    time_limit: Option<f64>,
) -> Result<(Solved, Vec<usize>)> {
    if !solver.available() {
        return Err(MapperError::SolverUnavailable(solver.name().into()));
    }
    if let Some(t) = time_limit
        && !(t > 0.0 && t.is_finite())
    {
        return Err(MapperError::SearchSpace(format!(
            "time limit must be a positive number of seconds, not {t}"
        )));
    }
    let start = Instant::now();
    let b = build(p, f, mixed)?;
    let n_vars = b.n_vars;
    let n_cons = b.constraints.len();
    let fail = |message: String| MapperError::Solver {
        solver: solver.name().into(),
        formulation: f.name().into(),
        message,
    };
    if b.y.iter().any(Vec::is_empty) {
        return Err(MapperError::Infeasible {
            board: String::new(),
            reason: "no configuration is usable for some engine".into(),
        });
    }
    // A stop with no incumbent: with a time limit that is the limit's doing.
    let no_solution = || match time_limit {
        Some(limit) => MapperError::TimeLimit {
            limit,
            phase: format!("{} was solving the MILP", solver.name()),
        },
        None => fail("the solver stopped before finding a feasible choice".into()),
    };
    let y_index: Vec<Vec<(usize, Variable)>> = b.y.clone();
    let x_index = b.x.clone();
    let z_index = b.z.clone();
    let mut watch: Vec<Variable> = y_index.iter().flatten().map(|&(_, v)| v).collect();
    watch.extend(x_index.iter().flatten().map(|&(_, _, _, v)| v));
    watch.extend(z_index.iter().flatten().copied());
    let raw = run(b, &watch, solver, time_limit).map_err(|e| match e {
        good_lp::ResolutionError::Infeasible => MapperError::Infeasible {
            board: String::new(),
            reason: "no combination of choices meets every budget line at once (each line on its own admits some choice)".into(),
        },
        other => fail(other.to_string()),
    })?;
    // Read the choice back: the largest value per group is the chosen one (values are 0/1 up
    // to the solver's integrality tolerance).
    let mut it = raw.values.iter().copied();
    let mut engines = Vec::with_capacity(y_index.len());
    for ye in &y_index {
        let vals: Vec<f64> = it.by_ref().take(ye.len()).collect();
        let (i, v) = argmax(&vals).ok_or_else(|| fail("an engine has no configuration".into()))?;
        if v < 0.5 {
            return Err(no_solution());
        }
        engines.push(ye[i].0);
    }
    let mut layer_engine = Vec::with_capacity(x_index.len());
    let mut layer_option = Vec::with_capacity(x_index.len());
    for xl in &x_index {
        let vals: Vec<f64> = it.by_ref().take(xl.len()).collect();
        let (i, v) = argmax(&vals).ok_or_else(|| fail("a layer has no option".into()))?;
        if v < 0.5 {
            return Err(no_solution());
        }
        let (e, c, o, _) = xl[i];
        if engines[e] != c {
            return Err(fail("solution violates a linking constraint".into()));
        }
        layer_engine.push(e);
        layer_option.push(o);
    }
    let mut choice = Vec::with_capacity(z_index.len());
    for zs in &z_index {
        let vals: Vec<f64> = it.by_ref().take(zs.len()).collect();
        let (i, v) = argmax(&vals).ok_or_else(|| fail("a site has no option".into()))?;
        if v < 0.5 {
            return Err(no_solution());
        }
        choice.push(i);
    }
    let assignment = Assignment {
        engines,
        layer_engine,
        layer_option,
    };
    let objective = p
        .evaluate_in(&assignment, f)
        .map_err(|e| fail(format!("solution does not check out: {e}")))?;
    let status = match raw.status {
        good_lp::solvers::SolutionStatus::Optimal => SolveStatus::Optimal,
        _ => SolveStatus::TimeLimited {
            gap: raw
                .bound
                .map(|b| ((objective - b) / objective.max(1e-9)).max(0.0)),
        },
    };
    Ok((
        Solved {
            assignment,
            objective,
            status,
            solve_seconds: start.elapsed().as_secs_f64(),
            variables: n_vars,
            constraints: n_cons,
        },
        choice,
    ))
}

fn argmax(v: &[f64]) -> Option<(usize, f64)> {
    v.iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}
