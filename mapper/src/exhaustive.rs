//! Exhaustive search for each formulation, used to verify the MILPs on small spaces.
//!
//! Every complete assignment is covered; branches are cut only when a lower bound proves they
//! cannot beat (or tie) the best found so far, or when a partial choice already exceeds the
//! budget, so the result is the exact optimum. Ties on the objective go to the smaller design
//! (the same tie-break the MILP uses), then to the first found.

use std::time::Instant;

use crate::error::{MapperError, Result};
use crate::ilp::{SolveStatus, Solved};
use crate::problem::{Assignment, Formulation, Problem, Res, res_add, res_fits};

/// Refuse spaces larger than this (complete assignments).
pub const DEFAULT_POINT_LIMIT: f64 = 1e7;

/// Solves `f` on `p` by enumeration. Errors with [`MapperError::TooLarge`] when the space has
/// more than `limit` points.
pub fn solve(p: &Problem, f: Formulation, limit: f64) -> Result<Solved> {
    p.validate()?;
    let points = p.space_size(f);
    if points > limit {
        return Err(MapperError::TooLarge {
            formulation: f.name().into(),
            points,
            limit,
        });
    }
    let start = Instant::now();
    let best = match f {
        Formulation::Overlay => overlay(p),
        Formulation::Dataflow => dataflow(p),
        Formulation::Heterogeneous { engines } => heterogeneous(p, engines, f),
        Formulation::Sequential { engines } => heterogeneous(p, engines, f),
    };
    let assignment = best.ok_or_else(|| MapperError::Infeasible {
        board: String::new(),
        reason: "no combination of choices meets every budget line at once".into(),
    })?;
    let objective = p.evaluate_in(&assignment, f)?;
    Ok(Solved {
        assignment,
        objective,
        status: SolveStatus::Exhaustive { points },
        solve_seconds: start.elapsed().as_secs_f64(),
        variables: 0,
        constraints: 0,
    })
}

/// Keeps the better of two (objective, score) pairs; the objective is compared exactly, as
/// both sides compute it with the same arithmetic.
fn better(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

fn overlay(p: &Problem) -> Option<Assignment> {
    if !p.memory_in_latency() {
        // The shared-DDR bound may decide: enumerate option combinations per configuration
        // (a single engine that must take every layer).
        return heterogeneous(p, 1, Formulation::Heterogeneous { engines: 1 });
    }
    let layers = p.layers();
    let mut best: Option<((f64, f64), Assignment)> = None;
    for c in 0..p.configs() {
        if !res_fits(&p.resources[c], &p.budget) {
            continue;
        }
        // Given the configuration the layers' choices are independent and (memory time being
        // inside every latency) the objective is their sum, so enumerating each layer's
        // options separately covers every combination.
        let mut options = Vec::with_capacity(layers);
        let mut ok = true;
        for l in 0..layers {
            let o = p.options[l][c]
                .iter()
                .enumerate()
                .min_by_key(|(i, o)| (o.latency, *i))
                .map(|(i, _)| i);
            match o {
                Some(o) => options.push(o),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let a = Assignment {
            engines: vec![c],
            layer_engine: vec![0; layers],
            layer_option: options,
        };
        let Ok(obj) = p.evaluate(&a) else { continue };
        let key = (obj, p.score(c));
        if best.as_ref().is_none_or(|(k, _)| better(key, *k)) {
            best = Some((key, a));
        }
    }
    best.map(|(_, a)| a)
}

struct Search<'a> {
    p: &'a Problem,
    /// Layers in search order (largest minimum latency first: tightens bounds early).
    order: Vec<usize>,
    /// Per remaining position: minimum bytes of the layers still to place.
    rest_bytes: Vec<u64>,
    /// Per remaining position and line: minimum resources still needed (dataflow only).
    rest_res: Vec<Res>,
    best: Option<((f64, f64), Assignment)>,
    /// The formulation whose objective is minimised.
    f: Formulation,
}

impl Search<'_> {
    fn bound(&self, max_load: u64, bytes: u64, pos: usize) -> f64 {
        let b = bytes.saturating_add(self.rest_bytes[pos]) as f64 / self.p.ddr_bytes_per_cycle;
        (max_load as f64).max(b)
    }

    fn prune(&self, lb: f64) -> bool {
        self.best.as_ref().is_some_and(|((obj, _), _)| lb > *obj)
    }

    fn offer(&mut self, a: Assignment) {
        if let Ok(obj) = self.p.evaluate_in(&a, self.f) {
            let key = (obj, self.p.assignment_score(&a));
            if self.best.as_ref().is_none_or(|(k, _)| better(key, *k)) {
                self.best = Some((key, a));
            }
        }
    }
}

fn search_order(p: &Problem) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.layers()).collect();
    let min_lat = |l: usize| {
        p.options[l]
            .iter()
            .flatten()
            .map(|o| o.latency)
            .min()
            .unwrap_or(u64::MAX)
    };
    order.sort_by_key(|&l| (std::cmp::Reverse(min_lat(l)), l));
    order
}

fn suffix_mins(p: &Problem, order: &[usize]) -> (Vec<u64>, Vec<Res>) {
    let n = order.len();
    let mut bytes = vec![0u64; n + 1];
    let mut res = vec![[0u64; 5]; n + 1];
    for i in (0..n).rev() {
        let l = order[i];
        let mb = p.options[l]
            .iter()
            .flatten()
            .map(|o| o.bytes)
            .min()
            .unwrap_or(0);
        bytes[i] = bytes[i + 1].saturating_add(mb);
        let mr: Res = std::array::from_fn(|k| {
            (0..p.configs())
                .filter(|&c| !p.options[l][c].is_empty())
                .map(|c| p.resources[c][k])
                .min()
                .unwrap_or(0)
        });
        res[i] = res_add(&res[i + 1], &mr);
    }
    (bytes, res)
}

fn dataflow(p: &Problem) -> Option<Assignment> {
    let order = search_order(p);
    let (rest_bytes, rest_res) = suffix_mins(p, &order);
    let mut s = Search {
        p,
        order,
        rest_bytes,
        rest_res,
        best: None,
        f: Formulation::Dataflow,
    };
    let layers = p.layers();
    let mut engines = vec![0usize; layers];
    let mut options = vec![0usize; layers];
    dataflow_rec(&mut s, 0, [0; 5], 0, 0, &mut engines, &mut options);
    s.best.map(|(_, a)| a)
}

fn dataflow_rec(
    s: &mut Search<'_>,
    pos: usize,
    used: Res,
    max_load: u64,
    bytes: u64,
    engines: &mut Vec<usize>,
    options: &mut Vec<usize>,
) {
    if s.prune(s.bound(max_load, bytes, pos)) {
        return;
    }
    if pos == s.order.len() {
        let layers = engines.len();
        s.offer(Assignment {
            engines: engines.clone(),
            layer_engine: (0..layers).collect(),
            layer_option: options.clone(),
        });
        return;
    }
    let l = s.order[pos];
    let p = s.p;
    for c in 0..p.configs() {
        if p.options[l][c].is_empty() {
            continue;
        }
        let now = res_add(&used, &p.resources[c]);
        if !res_fits(&res_add(&now, &s.rest_res[pos + 1]), &p.budget) {
            continue;
        }
        for (o, cost) in p.options[l][c].iter().enumerate() {
            engines[l] = c;
            options[l] = o;
            dataflow_rec(
                s,
                pos + 1,
                now,
                max_load.max(cost.latency),
                bytes.saturating_add(cost.bytes),
                engines,
                options,
            );
        }
    }
}

/// Heterogeneous (the busiest engine) or sequential (the engines' loads added) search: every
/// non-decreasing configuration tuple within budget, every layer on every engine with every
/// option, cut by the load so far (a lower bound under both objectives).
fn heterogeneous(p: &Problem, engines: usize, f: Formulation) -> Option<Assignment> {
    if engines == 0 {
        return None;
    }
    let order = search_order(p);
    let (rest_bytes, _) = suffix_mins(p, &order);
    let mut s = Search {
        p,
        order,
        rest_bytes,
        rest_res: Vec::new(),
        best: None,
        f,
    };
    // Non-decreasing configuration tuples (engine symmetry, as in the MILP).
    let mut tuple = vec![0usize; engines];
    loop {
        let used = tuple
            .iter()
            .fold([0u64; 5], |acc, &c| res_add(&acc, &p.resources[c]));
        if res_fits(&used, &p.budget) {
            let layers = p.layers();
            let mut le = vec![0usize; layers];
            let mut lo = vec![0usize; layers];
            let mut loads = vec![0u64; engines];
            hetero_rec(&mut s, &tuple, 0, &mut loads, 0, &mut le, &mut lo);
        }
        // Next non-decreasing tuple.
        let mut i = engines;
        loop {
            if i == 0 {
                return s.best.map(|(_, a)| a);
            }
            i -= 1;
            if tuple[i] + 1 < p.configs() {
                let v = tuple[i] + 1;
                for t in tuple.iter_mut().skip(i) {
                    *t = v;
                }
                break;
            }
        }
    }
}

fn hetero_rec(
    s: &mut Search<'_>,
    tuple: &[usize],
    pos: usize,
    loads: &mut Vec<u64>,
    bytes: u64,
    le: &mut Vec<usize>,
    lo: &mut Vec<usize>,
) {
    let load = match s.f {
        Formulation::Sequential { .. } => loads.iter().copied().fold(0u64, u64::saturating_add),
        _ => loads.iter().copied().max().unwrap_or(0),
    };
    if s.prune(s.bound(load, bytes, pos)) {
        return;
    }
    if pos == s.order.len() {
        s.offer(Assignment {
            engines: tuple.to_vec(),
            layer_engine: le.clone(),
            layer_option: lo.clone(),
        });
        return;
    }
    let l = s.order[pos];
    let p = s.p;
    for (e, &c) in tuple.iter().enumerate() {
        for (o, cost) in p.options[l][c].iter().enumerate() {
            le[l] = e;
            lo[l] = o;
            loads[e] += cost.latency;
            hetero_rec(
                s,
                tuple,
                pos + 1,
                loads,
                bytes.saturating_add(cost.bytes),
                le,
                lo,
            );
            loads[e] -= cost.latency;
        }
    }
}
