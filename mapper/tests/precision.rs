//! The mixed-precision MILP against the exhaustive search over every site choice, on random
//! instances, for both goals and every formulation.

use accelforge_mapper::precision::{self, Goal, Need, Precision};
use accelforge_mapper::problem::Res;
use accelforge_mapper::{Formulation, MapperError, Method, OptionCost, Problem, Solver};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const WIDTHS: [u32; 3] = [2, 4, 8];

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

/// A random instance: a problem whose configurations carry random operand widths, sites with
/// one option per width (costs falling with width), layers whose operands depend on a site or
/// are fixed.
fn instance() -> impl Strategy<Value = (Problem, Precision)> {
    (1usize..=3, 2usize..=6, 1usize..=3).prop_flat_map(|(layers, configs, sites)| {
        let res = prop::collection::vec(
            prop::array::uniform5(0u64..40).prop_map(|r: Res| r),
            configs,
        );
        let opts = prop::collection::vec(
            prop::collection::vec(
                prop::collection::vec(
                    (1u64..1000, 0u64..2000).prop_map(|(latency, bytes)| OptionCost {
                        latency,
                        compute: latency,
                        bytes,
                    }),
                    0..=2,
                ),
                configs,
            ),
            layers,
        );
        let widths = prop::collection::vec((0usize..3, 0usize..3), configs);
        // Per site: a cost per width option, the widest cheapest.
        let costs = prop::collection::vec(
            (0.0f64..0.2, 0.0f64..0.2).prop_map(|(a, b)| vec![a + b, b, 0.0]),
            sites,
        );
        // Per layer and operand: 0..sites = that site, sites = fixed at a random width.
        let needs = prop::collection::vec((0..=sites, 0..=sites, 0usize..3), layers);
        (
            res,
            opts,
            widths,
            costs,
            needs,
            prop::array::uniform5(20u64..120),
            1u32..16,
        )
            .prop_map(
                move |(resources, options, widths, site_costs, needs, budget, rate)| {
                    let need = |s: usize, w: usize| {
                        if s < site_costs.len() {
                            Need::Site {
                                site: s,
                                widths: WIDTHS.to_vec(),
                            }
                        } else {
                            Need::Fixed(WIDTHS[w])
                        }
                    };
                    (
                        Problem {
                            budget,
                            ddr_bytes_per_cycle: f64::from(rate),
                            resources,
                            layer_names: (0..layers).map(|l| format!("l{l}")).collect(),
                            options,
                        },
                        Precision {
                            needs: needs
                                .iter()
                                .map(|&(a, w, f)| vec![need(a, f), need(w, f)])
                                .collect(),
                            widths: widths
                                .iter()
                                .map(|&(a, w)| vec![WIDTHS[a], WIDTHS[w]])
                                .collect(),
                            site_bits: vec![WIDTHS.to_vec(); site_costs.len()],
                            site_costs: site_costs.clone(),
                            cuts: Vec::new(),
                        },
                    )
                },
            )
    })
}

fn result(r: Result<precision::MixedSolved, MapperError>) -> Option<(f64, f64)> {
    match r {
        Ok(s) => Some((s.solved.objective, s.cost)),
        Err(MapperError::Infeasible { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x006d_6978_6564),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Latency under a cost budget, and cost under a latency bound: MILP = brute force.
    #[test]
    fn mixed_milp_equals_brute_force((p, prec) in instance(), budget in 0.0f64..0.3, bound in 200.0f64..3000.0) {
        for f in [
            Formulation::Overlay,
            Formulation::Dataflow,
            Formulation::Heterogeneous { engines: 2 },
            Formulation::Sequential { engines: 2 },
        ] {
            for goal in [Goal::MinLatency { max_cost: budget }, Goal::MinCost { max_cycles: bound }] {
                let ex = result(precision::exhaustive(&p, f, &prec, goal, 1e9));
                let got = result(precision::solve(&p, f, &prec, goal, Solver::Cbc, None));
                match (ex, got) {
                    (None, None) => {}
                    (Some(a), Some(b)) => {
                        match goal {
                            Goal::MinLatency { max_cost } => {
                                prop_assert!(same(a.0, b.0), "{} {goal:?}: latency {a:?} vs {b:?}", f.name());
                                prop_assert!(b.1 <= max_cost + 1e-6);
                            }
                            Goal::MinCost { max_cycles } => {
                                prop_assert!(same(a.1, b.1), "{} {goal:?}: cost {a:?} vs {b:?}", f.name());
                                prop_assert!(same(a.0, b.0), "{} {goal:?}: latency at that cost {a:?} vs {b:?}", f.name());
                                prop_assert!(b.0 <= max_cycles);
                            }
                        }
                    }
                    other => prop_assert!(false, "{} {goal:?}: {other:?}", f.name()),
                }
            }
        }
    }
}

/// A "measured" loss that grows faster than the predicted sum when several sites are narrow
/// (as interactions do), and is monotone: narrowing a site never lowers it.
fn measured(prec: &Precision, choice: &[usize]) -> f64 {
    let narrow = choice.iter().filter(|&&o| o == 0).count() as f64;
    1.3 * prec.cost(choice) + 0.02 * narrow * narrow
}

/// Every choice (odometer order).
fn choices(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for &n in sizes {
        all = all
            .into_iter()
            .flat_map(|c| {
                (0..n).map(move |o| {
                    let mut c = c.clone();
                    c.push(o);
                    c
                })
            })
            .collect();
    }
    all
}

proptest! {
    #![proptest_config(Config {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x6375_7473),
        failure_persistence: None,
        ..Config::default()
    })]

    /// The measure-and-cut loop reaches the fastest choice whose measured loss is within the
    /// budget: brute force over every choice that passes the measurement.
    #[test]
    fn measured_cuts_reach_the_checked_optimum((p, prec) in instance(), budget in 0.0f64..0.4) {
        let f = Formulation::Sequential { engines: 2 };
        let goal = Goal::MinLatency { max_cost: budget };
        let accept = |c: &[usize]| measured(&prec, c) <= budget + 1e-12;
        let got = precision::solve_checked(&p, f, &prec, goal, Method::Ilp { solver: Solver::Cbc, time_limit: None }, 200, accept);
        // Brute force: every rejected choice excluded.
        let sizes: Vec<usize> = prec.site_costs.iter().map(Vec::len).collect();
        let mut only_passing = prec.clone();
        only_passing.cuts = choices(&sizes).into_iter().filter(|c| !accept(c)).collect();
        let ex = result(precision::exhaustive(&p, f, &only_passing, goal, 1e9));
        match (ex, got) {
            (None, Err(MapperError::Infeasible { .. })) => {}
            (Some(a), Ok((s, _))) => {
                prop_assert!(same(a.0, s.solved.objective), "{a:?} vs {}", s.solved.objective);
                prop_assert!(accept(&s.choice));
            }
            (a, b) => prop_assert!(false, "{a:?} vs {:?}", b.map(|(s, _)| s.solved.objective)),
        }
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x646f_6d73),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Dropping dominated configurations across width classes keeps the optimum.
    #[test]
    fn cross_class_pruning_keeps_the_optimum((p, prec) in instance(), budget in 0.0f64..0.3) {
        let (small, small_prec, kept) = precision::prune_dominated(&p, &prec);
        prop_assert!(kept.len() <= p.configs());
        for f in [Formulation::Overlay, Formulation::Sequential { engines: 2 }] {
            let goal = Goal::MinLatency { max_cost: budget };
            let a = result(precision::exhaustive(&p, f, &prec, goal, 1e9));
            let b = result(precision::exhaustive(&small, f, &small_prec, goal, 1e9));
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) => prop_assert!(same(a.0, b.0), "{} {a:?} vs {b:?}", f.name()),
                other => prop_assert!(false, "{}: {other:?}", f.name()),
            }
        }
    }
}
