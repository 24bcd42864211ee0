//! The MILPs against exhaustive search: built-in workloads × boards, and random instances.
#![allow(clippy::unwrap_used)]

use accelforge_boards::BoardDb;
use accelforge_mapper::problem::{Res, res_fits};
use accelforge_mapper::{
    Formulation, MapOptions, MapperError, Method, OptionCost, Problem, ProvisionalSystolicModel,
    SearchSpace, Solver, Workload, build_instance, builtin_names, filter_only, map, prune,
    solve_pruned,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const LIMIT: f64 = 1e5;

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

fn ilp(solver: Solver) -> Method {
    Method::Ilp {
        solver,
        time_limit: Some(60.0),
    }
}

const FORMULATIONS: [Formulation; 4] = [
    Formulation::Overlay,
    Formulation::Dataflow,
    Formulation::Heterogeneous { engines: 2 },
    Formulation::Sequential { engines: 2 },
];

/// Eight configurations (four shapes, both DSP PE kinds): small enough that multi-engine
/// spaces of the larger networks can be enumerated.
fn tiny() -> SearchSpace {
    SearchSpace {
        rows: vec![4, 16],
        cols: vec![4, 16],
        dataflows: vec![accelforge_mapper::Dataflow::WeightStationary],
        buffer_depths: vec![512],
        stream_bits: vec![64],
        pes: SearchSpace::default_pes(),
        buffer_rams: SearchSpace::default_buffer_rams(),
    }
}

/// Every built-in workload × board × formulation whose (pruned) space has at most 10^5 points:
/// CBC, microlp and the exhaustive search reach the same objective, and the choice fits.
fn ilp_equals_exhaustive_on(w: &str, min_compared: usize) {
    ilp_equals_exhaustive_with(&ProvisionalSystolicModel, w, min_compared, true);
}

/// [`ilp_equals_exhaustive_on`] for any engine model; `full_overlay` also tries the board's
/// whole default space for the overlay formulation.
fn ilp_equals_exhaustive_with<M: accelforge_mapper::EngineModel>(
    model: &M,
    w: &str,
    min_compared: usize,
    full_overlay: bool,
) {
    let db = BoardDb::builtin().unwrap();
    let mut compared = 0;
    let mut skipped = Vec::new();
    {
        let workload = Workload::builtin(w).unwrap();
        for board in db.boards() {
            // The overlay space is small enough with the full default space; the others use
            // the small space so that some instances stay enumerable.
            for f in FORMULATIONS {
                // microlp is pure Rust and slow in unoptimised test builds, so it is compared on
                // the small spaces only.
                let spaces = if f == Formulation::Overlay && !full_overlay {
                    vec![(SearchSpace::small(), &[Solver::Cbc, Solver::Microlp][..])]
                } else if f == Formulation::Overlay {
                    vec![
                        (SearchSpace::for_board(board), &[Solver::Cbc][..]),
                        (SearchSpace::small(), &[Solver::Cbc, Solver::Microlp][..]),
                    ]
                } else {
                    vec![
                        (SearchSpace::small(), &[Solver::Cbc, Solver::Microlp][..]),
                        (tiny(), &[Solver::Cbc, Solver::Microlp][..]),
                    ]
                };
                for (space, solvers) in spaces {
                    let inst = match build_instance(model, &workload, board, &space, None) {
                        Ok(inst) => inst,
                        // A model may offer nothing in a space (e.g. a dataflow it lacks).
                        Err(MapperError::SearchSpace(why)) => {
                            skipped.push(format!("{w}/{}: {why}", board.name));
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    };
                    let pruned = prune(&inst.problem, f, true);
                    if pruned.problem.configs() == 0 {
                        skipped.push(format!("{w}/{}/{}: nothing fits", board.name, f.name()));
                        continue;
                    }
                    let points = pruned.problem.space_size(f);
                    if points > LIMIT {
                        skipped.push(format!("{w}/{}/{}: {points:.1e}", board.name, f.name()));
                        continue;
                    }
                    let ex = match solve_pruned(&pruned, f, Method::Exhaustive { limit: LIMIT }) {
                        Ok(ex) => ex,
                        Err(MapperError::Infeasible { .. }) => {
                            // Jointly infeasible: the MILPs must agree.
                            for &solver in solvers {
                                let r = solve_pruned(&pruned, f, ilp(solver));
                                assert!(
                                    matches!(r, Err(MapperError::Infeasible { .. })),
                                    "{w} on {} ({}): {} found {:?}",
                                    board.name,
                                    f.name(),
                                    solver.name(),
                                    r.map(|s| s.objective)
                                );
                            }
                            compared += 1;
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    };
                    for &solver in solvers {
                        let s = solve_pruned(&pruned, f, ilp(solver)).unwrap();
                        if std::env::var_os("MAPPER_VERIFY_TIMES").is_some() {
                            eprintln!(
                                "{w} {} {} points {points:.1e}: exhaustive {:.3} s, {} {:.3} s",
                                board.name,
                                f.name(),
                                ex.solve_seconds,
                                solver.name(),
                                s.solve_seconds
                            );
                        }
                        assert!(
                            same(s.objective, ex.objective),
                            "{w} on {} ({}): {} {} vs exhaustive {}",
                            board.name,
                            f.name(),
                            solver.name(),
                            s.objective,
                            ex.objective
                        );
                        let used = pruned.problem.assignment_resources(&s.assignment);
                        assert!(res_fits(&used, &pruned.problem.budget));
                    }
                    compared += 1;
                }
            }
        }
    }
    eprintln!(
        "{w}: compared {compared} instances; skipped {}: {skipped:?}",
        skipped.len()
    );
    assert!(
        compared >= min_compared,
        "{w}: only {compared} instances were small enough"
    );
}

/// The same verification with the systolic template's exact models (the mapper's default).
#[test]
fn ilp_equals_exhaustive_with_the_template_model() {
    for w in ["mlp", "vit-tiny"] {
        let workload = Workload::builtin(w).unwrap();
        let model = accelforge_mapper::SystolicTemplateModel::for_workload(&workload);
        ilp_equals_exhaustive_with(&model, w, 10, false);
    }
}

#[test]
fn ilp_equals_exhaustive_mlp() {
    ilp_equals_exhaustive_on("mlp", 40);
}
#[test]
fn ilp_equals_exhaustive_resnet18() {
    ilp_equals_exhaustive_on("resnet18", 30);
}
#[test]
fn ilp_equals_exhaustive_mobilenet() {
    ilp_equals_exhaustive_on("mobilenet", 20);
}
#[test]
fn ilp_equals_exhaustive_vit_tiny() {
    ilp_equals_exhaustive_on("vit-tiny", 30);
}

#[test]
fn every_builtin_workload_is_covered() {
    assert_eq!(
        builtin_names(),
        [
            "mlp",
            "resnet18",
            "mobilenet",
            "vit-tiny",
            "moe-tiny",
            "vit-tiny-block",
            "m3vit-block"
        ]
    );
}

/// Without pruning the solver itself chooses among every tiling; still the same optimum.
#[test]
fn unpruned_tilings_give_the_same_optimum() {
    let db = BoardDb::builtin().unwrap();
    let workload = Workload::builtin("mlp").unwrap();
    for name in ["pynq-z2", "ultra96-v2", "zcu104"] {
        let board = db.get(name).unwrap();
        let inst = build_instance(
            &ProvisionalSystolicModel,
            &workload,
            board,
            &SearchSpace::small(),
            None,
        )
        .unwrap();
        let full = filter_only(&inst.problem, Formulation::Overlay);
        let small = prune(&inst.problem, Formulation::Overlay, true);
        assert!(full.problem.space_size(Formulation::Overlay) <= LIMIT);
        let ex = solve_pruned(
            &full,
            Formulation::Overlay,
            Method::Exhaustive { limit: LIMIT },
        )
        .unwrap();
        let a = solve_pruned(&full, Formulation::Overlay, ilp(Solver::Cbc)).unwrap();
        let b = solve_pruned(&small, Formulation::Overlay, ilp(Solver::Cbc)).unwrap();
        assert!(same(a.objective, ex.objective) && same(b.objective, ex.objective));
        // More variables without pruning: the MILP really did choose the tilings.
        assert!(a.variables > b.variables);
    }
}

/// Reports never exceed any budget line, for every formulation on every board.
#[test]
fn chosen_configuration_fits_every_budget_line() {
    let db = BoardDb::builtin().unwrap();
    let workload = Workload::builtin("mlp").unwrap();
    for board in db.boards() {
        for f in FORMULATIONS {
            let mut opts = MapOptions::new(board);
            opts.formulation = f;
            opts.space = SearchSpace::small();
            let r = map(&ProvisionalSystolicModel, &workload, board, &opts).unwrap();
            assert!(
                r.utilisation.fits(),
                "{} {}: {:?}",
                board.name,
                f.name(),
                r.utilisation
            );
            for line in &r.utilisation.lines {
                assert!(line.used <= line.available);
            }
        }
    }
}

#[test]
fn infeasible_names_the_binding_resource() {
    let db = BoardDb::builtin().unwrap();
    let board = db.get("pynq-z2").unwrap();
    let workload = Workload::builtin("mlp").unwrap();
    let mut opts = MapOptions::new(board);
    opts.space = SearchSpace {
        rows: vec![64],
        cols: vec![64],
        ..SearchSpace::small()
    };
    let err = map(&ProvisionalSystolicModel, &workload, board, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MapperError::Infeasible { .. }));
    assert!(
        msg.contains("even the smallest configuration needs 4096 DSP; PYNQ-Z2 has 220"),
        "{msg}"
    );
    // Dataflow on a small board: one engine per layer cannot fit.
    let cora = db.get("cora-z7-07s").unwrap();
    let resnet = Workload::builtin("resnet18").unwrap();
    let mut opts = MapOptions::new(cora);
    opts.formulation = Formulation::Dataflow;
    opts.space = SearchSpace {
        rows: vec![4, 8],
        cols: vec![4, 8],
        ..SearchSpace::small()
    };
    let msg = map(&ProvisionalSystolicModel, &resnet, cora, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("one engine per layer") && msg.contains("Cora Z7-07S has"),
        "{msg}"
    );
}

// ---- random small instances ----

fn option_cost() -> impl Strategy<Value = OptionCost> {
    (1u64..1000, 0u64..500, 0u64..4000).prop_map(|(compute, stall, bytes)| OptionCost {
        latency: compute + stall,
        compute,
        bytes,
    })
}

/// Random instances: `layers` × `configs` in the given ranges, up to `max_options` tiling
/// options per (layer, configuration), resources below `max_res` per line, budgets in `budget`.
fn problems(
    layers: std::ops::RangeInclusive<usize>,
    configs: std::ops::RangeInclusive<usize>,
    max_options: usize,
    max_res: u64,
    budget: std::ops::Range<u64>,
) -> impl Strategy<Value = Problem> {
    (layers, configs).prop_flat_map(move |(layers, configs)| {
        let res = prop::collection::vec(
            prop::array::uniform5(0u64..max_res).prop_map(|r: Res| r),
            configs,
        );
        let opts = prop::collection::vec(
            prop::collection::vec(
                prop::collection::vec(option_cost(), 0..=max_options),
                configs,
            ),
            layers,
        );
        (res, opts, prop::array::uniform5(budget.clone()), 1u32..16).prop_map(
            move |(resources, options, budget, rate)| Problem {
                budget,
                ddr_bytes_per_cycle: f64::from(rate),
                resources,
                layer_names: (0..layers).map(|l| format!("l{l}")).collect(),
                options,
            },
        )
    })
}

fn problem() -> impl Strategy<Value = Problem> {
    problems(1..=4, 1..=5, 3, 40, 20..120)
}

fn outcome(p: &Problem, f: Formulation, m: Method) -> Option<f64> {
    let pruned = filter_only(p, f);
    if pruned.problem.configs() == 0 {
        return None;
    }
    match solve_pruned(&pruned, f, m) {
        Ok(s) => Some(s.objective),
        Err(MapperError::Infeasible { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 96,
        rng_seed: RngSeed::Fixed(0x6d61_7070_6572),
        failure_persistence: None,
        ..Config::default()
    })]

    /// MILP optimum = brute force, for every formulation, on both back ends, with and
    /// without pruning.
    #[test]
    fn milp_optimum_equals_brute_force(p in problem()) {
        for f in [
            Formulation::Overlay,
            Formulation::Dataflow,
            Formulation::Heterogeneous { engines: 1 },
            Formulation::Heterogeneous { engines: 2 },
            Formulation::Heterogeneous { engines: 3 },
        ] {
            let ex = outcome(&p, f, Method::Exhaustive { limit: 1e9 });
            for solver in [Solver::Cbc, Solver::Microlp] {
                let got = outcome(&p, f, ilp(solver));
                match (ex, got) {
                    (None, None) => {}
                    (Some(a), Some(b)) => prop_assert!(same(a, b), "{} {}: {a} vs {b}", f.name(), solver.name()),
                    other => prop_assert!(false, "{} {}: {other:?}", f.name(), solver.name()),
                }
            }
            // Pruning is exact.
            let pruned = prune(&p, f, true);
            if pruned.problem.configs() > 0 {
                let s = solve_pruned(&pruned, f, Method::Exhaustive { limit: 1e9 });
                match (ex, s) {
                    (Some(a), Ok(s)) => prop_assert!(same(a, s.objective)),
                    (None, Err(_)) => {}
                    (a, b) => prop_assert!(false, "pruned {}: {a:?} vs {:?}", f.name(), b.map(|s| s.objective)),
                }
            } else {
                prop_assert!(ex.is_none());
            }
        }
    }
}

/// Larger two-engine instances than `problem()`: enough configurations that the pair bounds of
/// the two-engine reduction (issue 18) actually drop some before the MILP.
fn two_engine_problem() -> impl Strategy<Value = Problem> {
    problems(2..=6, 6..=14, 2, 60, 40..120)
}

proptest! {
    #![proptest_config(Config {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x626f_756e_6473),
        failure_persistence: None,
        ..Config::default()
    })]

    /// The two-engine bound pruning inside the MILP path keeps the optimum: MILP = brute force.
    #[test]
    fn two_engine_bound_pruning_keeps_the_optimum(p in two_engine_problem()) {
        let f = Formulation::Heterogeneous { engines: 2 };
        let ex = outcome(&p, f, Method::Exhaustive { limit: 1e9 });
        let got = outcome(&p, f, ilp(Solver::Cbc));
        match (ex, got) {
            (None, None) => {}
            (Some(a), Some(b)) => prop_assert!(same(a, b), "{a} vs {b}"),
            other => prop_assert!(false, "{other:?}"),
        }
    }
}

/// A cycle-model failure is counted and reported, not silently dropped (issue 13).
#[test]
fn template_model_counts_cycle_model_errors() {
    use accelforge_mapper::EngineModel;
    let w = Workload::builtin("mlp").unwrap();
    let model = accelforge_mapper::SystolicTemplateModel::for_workload(&w);
    assert_eq!(model.model_errors().count, 0);
    // A configuration whose max_k is below the layer's K: the cycle model refuses it.
    let cfg = accelforge_templates::systolic::SystolicParams {
        rows: 4,
        cols: 4,
        max_k: 8,
        max_n_chunk: 16,
        ..Default::default()
    };
    assert!(model.tilings(&cfg, &w.layers[0]).is_empty());
    let e = model.model_errors();
    assert_eq!(e.count, 1, "{e:?}");
    assert!(e.examples[0].contains("max_k"), "{e:?}");
}

/// The template engine offers both dataflows (issue 14) and both DSP PE kinds (issue 16): with
/// the board's default space the optimum for `mlp` on a ZCU104 is a weight-stationary array of
/// packed PEs, and the MILP agrees with the exhaustive search on it. Before, only
/// output-stationary configurations were candidates.
#[test]
fn template_model_offers_and_chooses_weight_stationary() {
    use accelforge_mapper::EngineModel;
    let db = BoardDb::builtin().unwrap();
    let board = db.get("zcu104").unwrap();
    let workload = Workload::builtin("mlp").unwrap();
    let model = accelforge_mapper::SystolicTemplateModel::for_workload(&workload);
    let space = SearchSpace::for_board(board);
    let cands = model.candidates(&space);
    let ws = cands
        .iter()
        .filter(|p| p.dataflow == accelforge_templates::systolic::Dataflow::Ws)
        .count();
    assert!(ws > 0 && ws < cands.len(), "{ws} of {}", cands.len());
    let opts = MapOptions::new(board);
    let r = map(&model, &workload, board, &opts).unwrap();
    assert_eq!(r.params["dataflow"], "ws", "{}", r.params);
    assert_eq!(r.params["pe"], "dsp-packed", "{}", r.params);
    assert_eq!(model.model_errors().count, 0);
    let mut ex_opts = MapOptions::new(board);
    ex_opts.method = Method::Exhaustive { limit: 1e7 };
    let ex = map(&model, &workload, board, &ex_opts).unwrap();
    assert!(
        same(ex.objective, r.objective),
        "{} vs {}",
        ex.objective,
        r.objective
    );
}
