//! Solve time as the workload grows (layers × candidate options): MILP (CBC) against the
//! exhaustive search, in the same run. Short by default (10 samples, ~1 s per point); the
//! exhaustive search is skipped where its space exceeds 10^7 points.

use std::hint::black_box;
use std::time::Duration;

use accelforge_boards::BoardDb;
use accelforge_mapper::{
    Dataflow, Formulation, GemmShape, Layer, LayerOp, Method, ProvisionalSystolicModel, QfxTypes,
    SearchSpace, Solver, SystolicTemplateModel, Workload, build_instance, ilp, prune, solve_pruned,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// `n` GEMM layers of assorted shapes (transformer- and CNN-like).
fn workload(n: usize) -> Workload {
    let shapes = [
        (197, 192, 576),
        (3136, 576, 64),
        (32, 784, 512),
        (197, 64, 197),
        (784, 1152, 128),
        (197, 768, 192),
        (49, 4608, 512),
        (196, 256, 256),
    ];
    Workload {
        name: format!("bench{n}"),
        description: None,
        layers: (0..n)
            .map(|i| {
                let (m, k, nn) = shapes[i % shapes.len()];
                Layer {
                    name: format!("g{i}"),
                    op: LayerOp::Gemm(GemmShape { m, k, n: nn }),
                    repeat: 1,
                    types: QfxTypes::default(),
                }
            })
            .collect(),
    }
}

fn spaces() -> Vec<(&'static str, SearchSpace)> {
    vec![
        (
            "8cfg",
            SearchSpace {
                rows: vec![4, 16],
                cols: vec![4, 16],
                dataflows: vec![Dataflow::WeightStationary, Dataflow::OutputStationary],
                buffer_depths: vec![512],
                stream_bits: vec![64],
                pes: vec![accelforge_templates::systolic::PeKind::Dsp],
                buffer_rams: SearchSpace::default_buffer_rams(),
            },
        ),
        ("144cfg", SearchSpace::small()),
    ]
}

fn bench(c: &mut Criterion) {
    let db = BoardDb::builtin().expect("built-in boards");
    let board = db.get("zcu104").expect("zcu104");
    for f in [
        Formulation::Overlay,
        Formulation::Dataflow,
        Formulation::Heterogeneous { engines: 2 },
    ] {
        let mut g = c.benchmark_group(format!("solve/{}", f.name()));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        for layers in [2usize, 4, 8] {
            for (sname, space) in spaces() {
                let w = workload(layers);
                let inst = build_instance(&ProvisionalSystolicModel, &w, board, &space, None)
                    .expect("instance");
                let pruned = prune(&inst.problem, f, true);
                let options: usize = pruned.problem.options.iter().flatten().map(Vec::len).sum();
                let points = pruned.problem.space_size(f);
                let id = format!("{layers}L_{sname}_{options}opt_{points:.0e}pts");
                g.bench_with_input(BenchmarkId::new("milp_cbc", &id), &pruned, |b, p| {
                    b.iter(|| {
                        black_box(
                            solve_pruned(
                                p,
                                f,
                                Method::Ilp {
                                    solver: Solver::Cbc,
                                    time_limit: None,
                                },
                            )
                            .expect("solve"),
                        )
                    })
                });
                if points <= 1e7 {
                    g.bench_with_input(BenchmarkId::new("exhaustive", &id), &pruned, |b, p| {
                        b.iter(|| {
                            black_box(
                                solve_pruned(p, f, Method::Exhaustive { limit: 1e7 })
                                    .expect("exhaustive"),
                            )
                        })
                    });
                }
            }
        }
        g.finish();
    }
}

/// Heterogeneous (two engines) mapping of the built-in workloads on ZCU102 with the template's
/// exact model: the MILP as `map` runs it (two-engine bound reduction first) against the plain
/// MILP (before the reduction, issue 18). The plain MILP of `mobilenet` takes about a minute, so
/// only `mlp` and `resnet18` run it.
fn builtins(c: &mut Criterion) {
    let db = BoardDb::builtin().expect("built-in boards");
    let board = db.get("zcu102").expect("zcu102");
    let f = Formulation::Heterogeneous { engines: 2 };
    let mut g = c.benchmark_group("heterogeneous/zcu102");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for name in ["mlp", "resnet18", "mobilenet", "vit-tiny"] {
        let w = Workload::builtin(name).expect("built-in workload");
        let model = SystolicTemplateModel::for_workload(&w);
        let inst = build_instance(&model, &w, board, &SearchSpace::for_board(board), None)
            .expect("instance");
        let pruned = prune(&inst.problem, f, true);
        g.bench_with_input(BenchmarkId::new("milp_reduced", name), &pruned, |b, p| {
            b.iter(|| black_box(ilp::solve(&p.problem, f, Solver::Cbc, None).expect("solve")))
        });
        if matches!(name, "mlp" | "resnet18") {
            g.bench_with_input(BenchmarkId::new("milp_plain", name), &pruned, |b, p| {
                b.iter(|| {
                    black_box(
                        ilp::solve_unreduced(&p.problem, f, Solver::Cbc, None).expect("solve"),
                    )
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, builtins);
criterion_main!(benches);
