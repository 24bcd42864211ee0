//! Exact bound pruning for the two-engine heterogeneous formulation, and the heuristic
//! solution that supplies its upper bound.
//!
//! Why: the MILP's LP relaxation is weak for heterogeneous mappings. It can give both engines
//! half of a board-sized configuration (each at `y = 1/2`, together within the budget) and
//! time-share the layers between them, so its bound sits far below the optimum and CBC spends
//! seconds branching (ResNet-18 on ZCU102: 565 configurations, 14,691 variables, 12 s).
//!
//! What: for every pair of configurations `(i, j)` that fits the budget together, a lower bound
//! on the makespan of any solution whose engines are `i` and `j`:
//! - every layer runs somewhere: `max_l min(lat_i(l), lat_j(l))`;
//! - the fractional split, the LP of "each layer split between the two engines":
//!   `T* = max_{λ∈[0,1]} Σ_l min(λ·lat_i(l), (1−λ)·lat_j(l))` (Lagrangian duality; the function
//!   is concave and piecewise linear, so its maximum is at a breakpoint `λ = b/(a+b)` or an end);
//! - the shared DDR: `Σ_l min(bytes_i(l), bytes_j(l)) / rate`.
//!
//! `lat` and `bytes` are each the minimum over the layer's options, so the bound holds for any
//! option choice. A heuristic solution (best of the lowest-bound pairs, layers placed
//! longest-first and then moved one at a time while that helps) gives an upper bound `U`. Every
//! pair whose bound exceeds `U` cannot hold a solution better than `U`, and a configuration
//! that is in no surviving pair cannot be in one either; it is dropped. Ties are kept, so every
//! solution with the optimal makespan survives and the solver's tie-break (the smaller design)
//! is unchanged, except between twins: configurations with identical costs (a `dsp` array and
//! its `dsp-packed` twin) where one fits wherever the other does keep only that one. The exhaustive search does not use this module, so `mapper/tests/verify.rs`
//! checks the pruning against an independent optimum.

use crate::problem::{Assignment, Problem, res_add, res_fits};

/// A heterogeneous two-engine problem restricted to the configurations that can matter.
#[derive(Debug, Clone)]
pub(crate) struct Reduced {
    /// The smaller problem (every option of a kept configuration is kept).
    pub problem: Problem,
    /// Original index of each kept configuration (increasing).
    pub config_map: Vec<usize>,
    /// The heuristic solution, in the reduced problem's indices (its value is the bound the
    /// pruning used; kept for tests and reports).
    #[cfg_attr(not(test), allow(dead_code))]
    pub incumbent: Assignment,
}

impl Reduced {
    /// Maps an assignment of the reduced problem back to the original indices.
    pub fn unmap(&self, a: &Assignment) -> Assignment {
        Assignment {
            engines: a.engines.iter().map(|&c| self.config_map[c]).collect(),
            layer_engine: a.layer_engine.clone(),
            layer_option: a.layer_option.clone(),
        }
    }
}

/// Per (layer, configuration): the fastest option's index, its latency, and the fewest bytes
/// of any option (`None` when the configuration cannot run the layer).
struct Fastest {
    option: Vec<Vec<Option<usize>>>,
    latency: Vec<Vec<f64>>,
    bytes: Vec<Vec<f64>>,
}

impl Fastest {
    fn of(p: &Problem) -> Fastest {
        let (mut option, mut latency, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
        for row in &p.options {
            let (mut o, mut l, mut b) = (Vec::new(), Vec::new(), Vec::new());
            for opts in row {
                let best = (0..opts.len()).min_by_key(|&i| (opts[i].latency, opts[i].bytes));
                o.push(best);
                l.push(best.map_or(f64::INFINITY, |i| opts[i].latency as f64));
                b.push(
                    opts.iter()
                        .map(|x| x.bytes as f64)
                        .fold(f64::INFINITY, f64::min),
                );
            }
            option.push(o);
            latency.push(l);
            bytes.push(b);
        }
        Fastest {
            option,
            latency,
            bytes,
        }
    }
}

/// The lower bound on the makespan of any solution with engines configured `i` and `j`
/// (see the module docs); infinite when some layer can run on neither.
fn pair_bound(p: &Problem, f: &Fastest, i: usize, j: usize) -> f64 {
    let layers = p.layers();
    let mut single: f64 = 0.0;
    let mut ddr = 0.0;
    let mut breaks = vec![0.0, 1.0];
    for l in 0..layers {
        let (a, b) = (f.latency[l][i], f.latency[l][j]);
        let m = a.min(b);
        if !m.is_finite() {
            return f64::INFINITY;
        }
        single = single.max(m);
        ddr += f.bytes[l][i].min(f.bytes[l][j]);
        if a.is_finite() && b.is_finite() && a + b > 0.0 {
            breaks.push(b / (a + b));
        }
    }
    // min(λ·a, (1−λ)·b) with an infinite side is the other side: the layer must go there.
    let split_at = |lambda: f64| -> f64 {
        (0..layers)
            .map(|l| {
                let (a, b) = (f.latency[l][i], f.latency[l][j]);
                match (a.is_finite(), b.is_finite()) {
                    (true, true) => (lambda * a).min((1.0 - lambda) * b),
                    (true, false) => lambda * a,
                    _ => (1.0 - lambda) * b,
                }
            })
            .sum()
    };
    let split = breaks.into_iter().map(split_at).fold(0.0, f64::max);
    single.max(split).max(ddr / p.ddr_bytes_per_cycle)
}

/// Places the layers on engines `i` and `j` (fastest options): longest first onto the engine
/// that finishes it earlier, then single-layer moves while the makespan drops.
fn place(p: &Problem, f: &Fastest, i: usize, j: usize) -> Option<Assignment> {
    let layers = p.layers();
    let cfg = [i, j];
    let lat = |l: usize, e: usize| f.latency[l][cfg[e]];
    let mut order: Vec<usize> = (0..layers).collect();
    order.sort_by(|&x, &y| {
        let key = |l: usize| lat(l, 0).min(lat(l, 1));
        key(y).total_cmp(&key(x))
    });
    let mut load = [0.0f64; 2];
    let mut on = vec![0usize; layers];
    for l in order {
        let e = if load[0] + lat(l, 0) <= load[1] + lat(l, 1) {
            0
        } else {
            1
        };
        if !lat(l, e).is_finite() {
            return None;
        }
        load[e] += lat(l, e);
        on[l] = e;
    }
    loop {
        let span = load[0].max(load[1]);
        let mut best: Option<(usize, [f64; 2])> = None;
        for (l, &e) in on.iter().enumerate() {
            let o = 1 - e;
            if !lat(l, o).is_finite() {
                continue;
            }
            let mut next = load;
            next[e] -= lat(l, e);
            next[o] += lat(l, o);
            let better = best.map_or(span, |(_, b)| b[0].max(b[1]));
            if next[0].max(next[1]) < better {
                best = Some((l, next));
            }
        }
        match best {
            Some((l, next)) => {
                on[l] = 1 - on[l];
                load = next;
            }
            None => break,
        }
    }
    let layer_option = (0..layers)
        .map(|l| f.option[l][cfg[on[l]]])
        .collect::<Option<Vec<usize>>>()?;
    Some(Assignment {
        engines: vec![i, j],
        layer_engine: on,
        layer_option,
    })
}

/// Largest pair-bound workload (pairs × layer terms) the reduction takes on.
const MAX_PAIR_WORK: f64 = 3e8;

/// Configurations whose every option costs exactly what another's does (a `dsp` array and its
/// `dsp-packed` twin: same cycles and bytes, different DSP and LUT/FF) are interchangeable in
/// any solution as far as the makespan goes. Twin `c` is dropped when a kept twin `d` fits
/// wherever `c` fits: on every resource line `d` uses no more than `c`, or so little that it
/// fits next to the largest configuration of the space. Replacing `c` by `d` then keeps every
/// solution feasible at the same makespan, so the optimum is unchanged (the dropping is
/// transitive and never removes a whole twin class). Returns which configurations stay.
fn undominated_twins(p: &Problem) -> Vec<bool> {
    let n = p.configs();
    let largest: [u64; 5] =
        std::array::from_fn(|k| p.resources.iter().map(|r| r[k]).max().unwrap_or(0));
    // Every option of every layer: (latency, compute, bytes).
    type Column = Vec<Vec<(u64, u64, u64)>>;
    let column = |c: usize| -> Column {
        p.options
            .iter()
            .map(|row| {
                row[c]
                    .iter()
                    .map(|o| (o.latency, o.compute, o.bytes))
                    .collect()
            })
            .collect()
    };
    let mut classes: std::collections::HashMap<Column, Vec<usize>> =
        std::collections::HashMap::new();
    for c in 0..n {
        classes.entry(column(c)).or_default().push(c);
    }
    let mut keep = vec![true; n];
    let fits_instead = |d: usize, c: usize| {
        (0..5).all(|k| {
            let (dk, ck) = (p.resources[d][k], p.resources[c][k]);
            dk <= ck || dk.saturating_add(largest[k]) <= p.budget[k]
        })
    };
    let mut members: Vec<&Vec<usize>> = classes.values().collect();
    members.sort();
    for class in members {
        for &c in class {
            if class
                .iter()
                .any(|&d| d != c && keep[d] && fits_instead(d, c))
            {
                keep[c] = false;
            }
        }
    }
    keep
}

/// How many of the lowest-bound pairs the heuristic tries.
const HEURISTIC_PAIRS: usize = 64;

/// The two-engine problem restricted by the pair bounds; `None` when no pair fits (the caller
/// then solves the problem as it is and reports what the solver finds).
pub(crate) fn reduce_two_engines(p: &Problem) -> Option<Reduced> {
    let n = p.configs();
    let twins = undominated_twins(p);
    let live: Vec<usize> = (0..n).filter(|&c| twins[c]).collect();
    // Each pair costs O(layers²); beyond this the pass itself would eat into `--time-limit`
    // (about a second here), and the plain MILP runs instead.
    let m = live.len();
    let work = (m * (m + 1) / 2) as f64 * (p.layers() * (p.layers() + 2)) as f64;
    if work > MAX_PAIR_WORK {
        return None;
    }
    let f = Fastest::of(p);
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (a, &i) in live.iter().enumerate() {
        for &j in &live[a..] {
            if !res_fits(&res_add(&p.resources[i], &p.resources[j]), &p.budget) {
                continue;
            }
            let lb = pair_bound(p, &f, i, j);
            if lb.is_finite() {
                pairs.push((lb, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (upper, incumbent) = pairs
        .iter()
        .take(HEURISTIC_PAIRS)
        .filter_map(|&(_, i, j)| place(p, &f, i, j))
        .filter_map(|a| p.evaluate(&a).ok().map(|v| (v, a)))
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    let mut keep = vec![false; n];
    // The heuristic's own configurations hold a solution worth `upper`; its pair's bound is at
    // most that, so the loop below keeps them anyway (said here so the index map cannot fail).
    for &c in &incumbent.engines {
        keep[c] = true;
    }
    for &(lb, i, j) in &pairs {
        if lb > upper {
            break;
        }
        keep[i] = true;
        keep[j] = true;
    }
    let config_map: Vec<usize> = (0..n).filter(|&c| keep[c]).collect();
    let index_of = |c: usize| config_map.binary_search(&c).ok();
    let incumbent = Assignment {
        engines: incumbent
            .engines
            .iter()
            .map(|&c| index_of(c))
            .collect::<Option<Vec<usize>>>()?,
        ..incumbent
    };
    let problem = Problem {
        budget: p.budget,
        ddr_bytes_per_cycle: p.ddr_bytes_per_cycle,
        resources: config_map.iter().map(|&c| p.resources[c]).collect(),
        layer_names: p.layer_names.clone(),
        options: p
            .options
            .iter()
            .map(|row| config_map.iter().map(|&c| row[c].clone()).collect())
            .collect(),
    };
    Some(Reduced {
        problem,
        config_map,
        incumbent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::OptionCost;

    fn opt(latency: u64) -> Vec<OptionCost> {
        vec![OptionCost {
            latency,
            compute: latency,
            bytes: 0,
        }]
    }

    /// Two layers; configuration 0 is small and slow, 1 big and fast, 2 medium. Two big
    /// engines do not fit; the best pair is (1, 0) or (2, 2).
    fn problem() -> Problem {
        Problem {
            budget: [0, 0, 10, 0, 0],
            ddr_bytes_per_cycle: 1.0,
            resources: vec![[0, 0, 2, 0, 0], [0, 0, 8, 0, 0], [0, 0, 5, 0, 0]],
            layer_names: vec!["a".into(), "b".into()],
            options: vec![
                vec![opt(400), opt(100), opt(160)],
                vec![opt(400), opt(100), opt(160)],
            ],
        }
    }

    #[test]
    fn the_pair_bound_is_the_fractional_split() {
        let p = problem();
        let f = Fastest::of(&p);
        // (1, 1) does not fit, but its bound is still defined: 200 / 2.
        assert_eq!(pair_bound(&p, &f, 1, 1), 100.0);
        // (0, 1): λ·400·2 = (1−λ)·100·2 at λ = 0.2 → 160.
        assert!((pair_bound(&p, &f, 0, 1) - 160.0).abs() < 1e-9);
        assert_eq!(pair_bound(&p, &f, 2, 2), 160.0);
    }

    #[test]
    fn reduction_keeps_every_optimal_pair_and_a_solution_as_good_as_the_best() {
        let p = problem();
        let r = reduce_two_engines(&p).expect("a pair fits");
        // Optimum: (2, 2) with one layer each = 160; (0, 1) both on 1 = 200, split 400.
        let v = p.evaluate(&r.unmap(&r.incumbent)).unwrap();
        assert_eq!(v, 160.0);
        assert!(r.config_map.contains(&2));
    }

    /// A `dsp` configuration and its `dsp-packed` twin (same costs, half the DSPs, more LUTs):
    /// with LUTs to spare the packed twin fits wherever the other does and alone survives;
    /// with LUTs tight both stay; configurations of other costs are never touched.
    #[test]
    fn twins_keep_the_one_that_fits_wherever_the_other_does() {
        let mut p = problem();
        p.budget = [100, 0, 10, 0, 0];
        p.resources = vec![[10, 0, 2, 0, 0], [10, 0, 8, 0, 0], [30, 0, 4, 0, 0]];
        p.options = vec![
            vec![opt(400), opt(160), opt(160)],
            vec![opt(400), opt(160), opt(160)],
        ];
        assert_eq!(undominated_twins(&p), [true, false, true]);
        let r = reduce_two_engines(&p).expect("a pair fits");
        assert_eq!(p.evaluate(&r.unmap(&r.incumbent)).unwrap(), 160.0);
        // 30 LUTs next to the largest (30) fit 60; with a budget of 50 they may not.
        p.budget = [50, 0, 10, 0, 0];
        assert_eq!(undominated_twins(&p), [true, true, true]);
    }
}
