//! Evaluations per second of the systolic cycle model (`cost::cycles`, closed form) for both
//! dataflows, next to the register-level stepping mirror it replaced (`cost::reference`), on
//! GEMM 256×256×256 and ResNet-18's stage-1 3×3 conv lowered by im2col (56×56 pixels,
//! 64→64 channels: M = 3136, K = 576, N = 64). Array 16×16, int8, 64-bit streams, 64-column
//! chunks.
#![allow(missing_docs)]

use std::hint::black_box;

use accelforge_templates::systolic::cost;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::{Dataflow, SystolicParams};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn cycle_model(c: &mut Criterion) {
    let layers = [
        (
            "gemm256",
            Gemm {
                m: 256,
                k: 256,
                n: 256,
            },
        ),
        (
            "resnet18_conv3x3",
            Gemm {
                m: 3136,
                k: 576,
                n: 64,
            },
        ),
    ];
    let mut group = c.benchmark_group("cycle_model");
    group.throughput(Throughput::Elements(1));
    for (name, g) in layers {
        for dataflow in [Dataflow::Os, Dataflow::Ws] {
            let p = SystolicParams {
                rows: 16,
                cols: 16,
                dataflow,
                max_k: g.k,
                max_n_chunk: 64,
                ..SystolicParams::default()
            };
            let fast = cost::cycles(&p, &g).unwrap_or_else(|e| panic!("{e}"));
            let slow = cost::reference::cycles(&p, &g).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(fast, slow, "{p:?} {g:?}");
            let df = format!("{dataflow:?}").to_lowercase();
            group.bench_function(format!("closed_form/{df}/{name}"), |b| {
                b.iter(|| cost::cycles(black_box(&p), black_box(&g)).map(|e| e.cycles))
            });
            // The mapper's and the sweep's path: the parameters resolved once per
            // configuration, then one evaluation per layer.
            let model = cost::Model::new(&p).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(model.cycles(&g).unwrap_or_else(|e| panic!("{e}")), fast);
            group.bench_function(format!("prepared/{df}/{name}"), |b| {
                b.iter(|| black_box(&model).cycles(black_box(&g)).map(|e| e.cycles))
            });
            group.bench_function(format!("resolve_only/{df}/{name}"), |b| {
                b.iter(|| black_box(&p).resolve().map(|r| r.ea))
            });
            group.bench_function(format!("stepping/{df}/{name}"), |b| {
                b.iter(|| cost::reference::cycles(black_box(&p), black_box(&g)).map(|e| e.cycles))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = cycle_model
}
criterion_main!(benches);
