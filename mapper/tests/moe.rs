//! The MoE template model in the mapper: MoE workloads map onto real boards within every budget
//! line, and the MILPs reach the exhaustive optimum.
#![allow(clippy::unwrap_used)]

use accelforge_boards::{Board, BoardDb};
use accelforge_mapper::{
    EngineModel, Formulation, MapOptions, MapReport, MapperError, Method, MoeTemplateModel,
    SearchSpace, Solver, Workload, exhaustive::DEFAULT_POINT_LIMIT, map, parse_workload,
};

const FORMULATIONS: [Formulation; 3] = [
    Formulation::Overlay,
    Formulation::Dataflow,
    Formulation::Heterogeneous { engines: 2 },
];

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

fn run(w: &Workload, board: &Board, f: Formulation, space: &SearchSpace, m: Method) -> MapReport {
    let model = MoeTemplateModel::for_board(w, board, None);
    let opts = MapOptions {
        formulation: f,
        method: m,
        space: space.clone(),
        clock_mhz: None,
        prune: true,
    };
    map(&model, w, board, &opts).unwrap()
}

/// Every budget line of the report, and of the chosen engines recomputed from the model.
fn assert_within_budget(r: &MapReport, board: &Board, w: &Workload) {
    assert!(r.utilisation.fits(), "{:?}", r.utilisation);
    assert_eq!(r.utilisation.lines.len(), 5);
    for line in &r.utilisation.lines {
        assert!(line.used <= line.available, "{line:?}");
    }
    let model = MoeTemplateModel::for_board(w, board, None);
    let mut dsp = 0;
    let mut bram = 0;
    for e in &r.engines {
        let p: accelforge_templates::moe::MoeParams =
            serde_json::from_value(e.params.clone()).unwrap();
        p.validate().unwrap();
        assert!(f64::from(p.ddr_bytes_per_cycle) <= r.ddr_bytes_per_cycle);
        let res = model.resources(&p);
        assert_eq!(res, e.resources);
        dsp += res.dsp;
        bram += res.bram18;
    }
    assert!(dsp <= board.resources.dsp.value && dsp > 0);
    assert!(bram <= board.bram18());
}

/// ILP (CBC, microlp) == exhaustive, within budget, for every formulation and two spaces.
fn check(w: &Workload, board: &Board) {
    for f in FORMULATIONS {
        for space in [SearchSpace::for_board(board), SearchSpace::small()] {
            let ex = run(
                w,
                board,
                f,
                &space,
                Method::Exhaustive {
                    limit: DEFAULT_POINT_LIMIT,
                },
            );
            assert_within_budget(&ex, board, w);
            for solver in [Solver::Cbc, Solver::Microlp] {
                let ilp = run(
                    w,
                    board,
                    f,
                    &space,
                    Method::Ilp {
                        solver,
                        time_limit: Some(60.0),
                    },
                );
                assert_within_budget(&ilp, board, w);
                assert!(
                    same(ilp.objective, ex.objective),
                    "{} {} {solver:?}: ILP {} vs exhaustive {}",
                    board.name,
                    f.name(),
                    ilp.objective,
                    ex.objective
                );
            }
        }
    }
}

#[test]
fn moe_tiny_maps_on_zcu102_and_kv260_and_ilp_equals_exhaustive() {
    let db = BoardDb::builtin().unwrap();
    let w = Workload::builtin("moe-tiny").unwrap();
    for name in ["zcu102", "kv260"] {
        let board = db.get(name).unwrap();
        check(&w, board);
        let r = run(
            &w,
            board,
            Formulation::Overlay,
            &SearchSpace::for_board(board),
            Method::Ilp {
                solver: Solver::Cbc,
                time_limit: None,
            },
        );
        assert_eq!(r.model, "moe-template");
        assert_eq!(r.layers.len(), 1);
        // The objective is the template's own cycle count for the chosen parameters.
        let p: accelforge_templates::moe::MoeParams =
            serde_json::from_value(r.params.clone()).unwrap();
        let c = accelforge_templates::moe::cost::cycles(&p, &MoeTemplateModel::balanced_loads(&p))
            .unwrap();
        assert!(
            r.objective >= c.cycles as f64,
            "{} < {}",
            r.objective,
            c.cycles
        );
        assert_eq!(r.layers[0].compute_cycles, c.cycles);
    }
}

/// With a DSP budget that rules out the fastest cores the mapper must pick a smaller one, and
/// the MILP still finds the exhaustive optimum.
#[test]
fn a_tight_dsp_budget_is_respected() {
    let db = BoardDb::builtin().unwrap();
    let w = Workload::builtin("moe-tiny").unwrap();
    for name in ["zcu102", "kv260"] {
        let mut board = db.get(name).unwrap().clone();
        let roomy = run(
            &w,
            &board,
            Formulation::Overlay,
            &SearchSpace::for_board(&board),
            Method::Ilp {
                solver: Solver::Cbc,
                time_limit: None,
            },
        );
        // One DSP short of the unconstrained choice.
        board.resources.dsp.value = roomy.resources.dsp - 1;
        check(&w, &board);
        let tight = run(
            &w,
            &board,
            Formulation::Overlay,
            &SearchSpace::for_board(&board),
            Method::Ilp {
                solver: Solver::Cbc,
                time_limit: None,
            },
        );
        assert!(tight.resources.dsp < roomy.resources.dsp);
        assert!(tight.objective >= roomy.objective);
    }
}

/// Two MoE shapes: one engine cannot run both (the shape is built into the core), two can.
#[test]
fn two_moe_shapes_need_two_engines() {
    let db = BoardDb::builtin().unwrap();
    let board = db.get("zcu102").unwrap();
    let w = parse_workload(
        "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=8\ntop_k=2\n\
         [[layer]]\nkind='moe'\ntokens=32\nd_model=32\nd_ff=64\nexperts=16\ntop_k=1\n",
        "two.toml",
        "two",
    )
    .unwrap();
    let model = MoeTemplateModel::for_board(&w, board, None);
    let mut opts = MapOptions::new(board);
    opts.space = SearchSpace::small();
    assert!(matches!(
        map(&model, &w, board, &opts),
        Err(MapperError::Infeasible { .. })
    ));
    for f in [
        Formulation::Dataflow,
        Formulation::Heterogeneous { engines: 2 },
    ] {
        let ex = run(
            &w,
            board,
            f,
            &SearchSpace::small(),
            Method::Exhaustive {
                limit: DEFAULT_POINT_LIMIT,
            },
        );
        let ilp = run(
            &w,
            board,
            f,
            &SearchSpace::small(),
            Method::Ilp {
                solver: Solver::Cbc,
                time_limit: Some(60.0),
            },
        );
        assert_within_budget(&ilp, board, &w);
        assert!(same(ilp.objective, ex.objective));
    }
}

/// A GEMM layer is not runnable on the MoE model, and an MoE layer not on the systolic ones.
#[test]
fn layer_kinds_and_engines_do_not_mix() {
    let db = BoardDb::builtin().unwrap();
    let board = db.get("zcu102").unwrap();
    let moe = Workload::builtin("moe-tiny").unwrap();
    let mut opts = MapOptions::new(board);
    opts.space = SearchSpace::small();
    for r in [
        map(
            &accelforge_mapper::SystolicTemplateModel::for_workload(&moe),
            &moe,
            board,
            &opts,
        )
        .map(|_| ()),
        map(
            &accelforge_mapper::ProvisionalSystolicModel,
            &moe,
            board,
            &opts,
        )
        .map(|_| ()),
    ] {
        assert!(matches!(r, Err(MapperError::Infeasible { .. })), "{r:?}");
    }
    let mlp = Workload::builtin("mlp").unwrap();
    let r = map(
        &MoeTemplateModel::for_board(&mlp, board, None),
        &mlp,
        board,
        &opts,
    );
    // No MoE layer: no configuration at all.
    assert!(matches!(r, Err(MapperError::SearchSpace(_))), "{r:?}");
}
