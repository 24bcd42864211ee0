//! Several kernels sized together under one budget: the systolic array, the attention kernel
//! and the MoE core as one [`Joint`] engine model. On the encoder-block workloads, the MILP
//! (CBC) reaches the exhaustive search's objective for the dataflow, heterogeneous and
//! sequential formulations, every layer runs on a kernel of its kind, and the choice fits the
//! board; the sequential objective is the sum of the layers' latencies.

use accelforge_boards::BoardDb;
use accelforge_mapper::{
    AttentionTemplateModel, Formulation, Joint, MapOptions, Method, MoeTemplateModel, SearchSpace,
    Solver, SystolicTemplateModel, Workload, map,
};

fn space() -> SearchSpace {
    SearchSpace {
        rows: vec![4, 16],
        cols: vec![4, 16],
        dataflows: vec![accelforge_mapper::Dataflow::OutputStationary],
        buffer_depths: vec![1024],
        stream_bits: vec![128],
        pes: SearchSpace::default_pes(),
        buffer_rams: SearchSpace::default_buffer_rams(),
    }
}

#[test]
fn joint_kernels_milp_equals_exhaustive() {
    let db = BoardDb::builtin().unwrap();
    let mut compared = 0;
    for (w, kinds) in [("vit-tiny-block", 2usize), ("m3vit-block", 3)] {
        let workload = Workload::builtin(w).unwrap();
        for b in ["zcu102", "kv260", "zcu104"] {
            let board = db.get(b).unwrap();
            let model = Joint::new(
                Joint::new(
                    SystolicTemplateModel::for_workload(&workload),
                    AttentionTemplateModel::for_board(&workload, board, None),
                ),
                MoeTemplateModel::for_board(&workload, board, None),
            );
            for f in [
                Formulation::Dataflow,
                Formulation::Heterogeneous { engines: kinds },
                Formulation::Sequential { engines: kinds },
            ] {
                let mut opts = MapOptions::new(board);
                opts.space = space();
                opts.formulation = f;
                opts.method = Method::Ilp {
                    solver: Solver::Cbc,
                    time_limit: None,
                };
                let ilp = map(&model, &workload, board, &opts).unwrap();
                opts.method = Method::Exhaustive { limit: 1e7 };
                let ex = map(&model, &workload, board, &opts).unwrap();
                let ctx = format!("{w} on {b}, {f:?}");
                assert!(
                    (ilp.objective - ex.objective).abs() <= 1e-6 * ex.objective,
                    "{ctx}: MILP {} vs exhaustive {}",
                    ilp.objective,
                    ex.objective
                );
                assert!(ilp.utilisation.fits(), "{ctx}");
                if let Formulation::Sequential { .. } = f {
                    let sum: u64 = ilp.layers.iter().map(|l| l.cycles).sum();
                    assert!(ilp.objective >= sum as f64, "{ctx}");
                    assert!(
                        ilp.objective < sum as f64 + 1.0,
                        "{ctx}: {} vs {sum}",
                        ilp.objective
                    );
                }
                for l in &ilp.layers {
                    let params = &ilp.engines[l.engine].params;
                    let kind = if params.get("query_lanes").is_some() {
                        "attention"
                    } else if params.get("experts").is_some() {
                        "moe"
                    } else {
                        "gemm"
                    };
                    let want = match l.name.as_str() {
                        "attn" => "attention",
                        "moe" => "moe",
                        _ => "gemm",
                    };
                    assert_eq!(kind, want, "{ctx}: layer {}", l.name);
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 18);
}
