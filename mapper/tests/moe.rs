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
    let (mut lut, mut ff, mut dsp, mut bram) = (0, 0, 0, 0);
    for e in &r.engines {
        let p: accelforge_templates::moe::MoeParams =
            serde_json::from_value(e.params.clone()).unwrap();
        p.validate().unwrap();
        assert!(f64::from(p.ddr_bytes_per_cycle) <= r.ddr_bytes_per_cycle);
        let res = model.resources(&p);
        assert_eq!(res, e.resources);
        // LUT and FF come from the calibrated template model, not a placeholder.
        let t = accelforge_templates::moe::cost::resources(&p).unwrap();
        assert_eq!(
            (res.lut, res.ff, res.dsp, res.bram18),
            (t.lut, t.ff, t.dsp, t.bram18)
        );
        lut += res.lut;
        ff += res.ff;
        dsp += res.dsp;
        bram += res.bram18;
    }
    assert!(lut <= board.resources.lut.value && lut > 0);
    assert!(ff <= board.resources.ff.value && ff > 0);
    assert!(dsp <= board.resources.dsp.value && dsp > 0);
    assert!(bram <= board.bram18());
}

fn overlay_ilp(w: &Workload, board: &Board) -> MapReport {
    run(
        w,
        board,
        Formulation::Overlay,
        &SearchSpace::for_board(board),
        Method::Ilp {
            solver: Solver::Cbc,
            time_limit: None,
        },
    )
}

fn params_of(r: &MapReport) -> accelforge_templates::moe::MoeParams {
    serde_json::from_value(r.params.clone()).unwrap()
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
        eprintln!(
            "{name}: lanes {} simd {} ddr {} B/cycle, {} cycles, {:?}",
            p.lanes, p.simd, p.ddr_bytes_per_cycle, c.cycles, r.resources
        );
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

/// A LUT budget one short of the unconstrained choice: the LUT line binds (it used to be 0),
/// the mapper picks a smaller core, and the MILP still equals the exhaustive optimum.
#[test]
fn a_tight_lut_budget_is_respected() {
    let db = BoardDb::builtin().unwrap();
    let w = Workload::builtin("moe-tiny").unwrap();
    for name in ["zcu102", "kv260"] {
        let mut board = db.get(name).unwrap().clone();
        let roomy = overlay_ilp(&w, &board);
        assert!(roomy.resources.lut > 0 && roomy.resources.ff > 0);
        board.resources.lut.value = roomy.resources.lut - 1;
        // Overlay only: two engines of even the smallest core no longer fit this budget.
        let tight = overlay_ilp(&w, &board);
        let ex = run(
            &w,
            &board,
            Formulation::Overlay,
            &SearchSpace::for_board(&board),
            Method::Exhaustive {
                limit: DEFAULT_POINT_LIMIT,
            },
        );
        assert_within_budget(&tight, &board, &w);
        assert!(same(tight.objective, ex.objective));
        assert!(tight.resources.lut < roomy.resources.lut);
        assert!(tight.objective >= roomy.objective);
    }
}

const TINY16: &str = "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=8\ntop_k=2\n\
                      weight='ap_fixed<16,2,AP_RND,AP_SAT>'\n";

/// The layer's weight type reaches the core: a 16-bit-weight layer is mapped with 16-bit
/// weights, streams twice the weight bytes and needs more LUT, FF and weight-buffer BRAM than the
/// same core with 8-bit weights; on both boards the MILP equals the exhaustive optimum.
#[test]
fn sixteen_bit_weights_are_priced_with_their_real_cost() {
    let db = BoardDb::builtin().unwrap();
    let w8 = Workload::builtin("moe-tiny").unwrap();
    let w16 = parse_workload(TINY16, "w16.toml", "w16").unwrap();
    for name in ["zcu102", "kv260"] {
        let board = db.get(name).unwrap();
        check(&w16, board);
        let r8 = overlay_ilp(&w8, board);
        let r16 = overlay_ilp(&w16, board);
        let (p8, p16) = (params_of(&r8), params_of(&r16));
        assert_eq!(p8.types.weight.width(), 8);
        assert_eq!(p16.types.weight.width(), 16);
        assert!(r16.objective >= r8.objective);
        eprintln!(
            "{name}: 16-bit weights {}x{} {} B/cycle obj {} {:?}; 8-bit obj {} {:?}",
            p16.lanes,
            p16.simd,
            p16.ddr_bytes_per_cycle,
            r16.objective,
            r16.resources,
            r8.objective,
            r8.resources
        );
        // The same core with each weight width.
        let m8 = MoeTemplateModel::for_board(&w8, board, None);
        let m16 = MoeTemplateModel::for_board(&w16, board, None);
        let same = accelforge_templates::moe::MoeParams {
            types: p16.types,
            ddr_bytes_per_cycle: 8,
            lanes: 4,
            simd: 4,
            ..p8.clone()
        };
        let narrow = accelforge_templates::moe::MoeParams {
            types: p8.types,
            ..same.clone()
        };
        let (l8, l16) = (&w8.layers[0], &w16.layers[0]);
        assert_eq!(m16.ddr_bytes(&same, l16, &()), {
            let b8 = m8.ddr_bytes(&narrow, l8, &());
            // Weights double; tokens in and results out are unchanged.
            let tokens = 16 * 16 * (1 + 2);
            2 * (b8 - tokens) + tokens
        });
        assert!(
            m16.tilings(&narrow, l16).is_empty(),
            "types are part of the core"
        );
        let (r_narrow, r_wide) = (m8.resources(&narrow), m16.resources(&same));
        assert_eq!(
            r_wide.dsp, r_narrow.dsp,
            "one DSP48 per multiply at either width"
        );
        assert!(
            r_wide.bram18 > r_narrow.bram18,
            "{r_wide:?} vs {r_narrow:?}"
        );
        assert!(r_wide.lut > r_narrow.lut && r_wide.ff > r_narrow.ff);
    }
}

/// `queue_depth` on the layer reaches the core, and a queue shallower than an expert's share
/// drops pairs: the priced loads never exceed it.
#[test]
fn a_layer_queue_depth_is_applied() {
    let db = BoardDb::builtin().unwrap();
    let board = db.get("zcu102").unwrap();
    let w = parse_workload(
        "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=4\ntop_k=2\nqueue_depth=6\n",
        "q.toml",
        "q",
    )
    .unwrap();
    check(&w, board);
    let r = overlay_ilp(&w, board);
    let p = params_of(&r);
    assert_eq!(p.queue_depth, 6);
    let loads = MoeTemplateModel::balanced_loads(&p);
    // 32 pairs over 4 experts is 8 each; 6 are kept.
    assert_eq!(loads, vec![(0, 6), (1, 6), (2, 6), (3, 6)]);
    let deep = accelforge_templates::moe::MoeParams {
        queue_depth: 16,
        ..p.clone()
    };
    let c = |p: &accelforge_templates::moe::MoeParams| {
        accelforge_templates::moe::cost::cycles(p, &MoeTemplateModel::balanced_loads(p))
            .unwrap()
            .cycles
    };
    assert!(c(&p) < c(&deep));
}
