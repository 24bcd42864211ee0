//! Golden engine throughput on the digits fixtures (inferences/s) and model import time
//! (parse + lower).

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array4;
use ndarray_npy::read_npy;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn bench(c: &mut Criterion) {
    let x: Array4<f32> = read_npy(fixtures().join("digits_x.npy")).expect("digits");
    let n = x.shape()[0];
    let samples: Vec<Vec<f32>> = (0..n)
        .map(|i| x.index_axis(ndarray::Axis(0), i).iter().copied().collect())
        .collect();
    for name in ["mlp_w8a8_pow2", "cnn_w8a8_pow2", "cnn_w2a2_pow2"] {
        let bytes = std::fs::read(fixtures().join(format!("{name}.onnx"))).expect("fixture");
        c.bench_function(&format!("import/{name}"), |b| {
            b.iter(|| accelforge_models::load(&bytes, None).expect("load"))
        });
        let net = accelforge_models::load(&bytes, None).expect("load");
        let mut g = c.benchmark_group(format!("golden/{name}"));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("digits", |b| {
            b.iter(|| {
                for s in &samples {
                    std::hint::black_box(net.run(s).expect("run"));
                }
            })
        });
        g.finish();
    }
}

/// Import time of a larger model given by path (e.g. a ~1 MB file), when
/// `ACCELFORGE_BENCH_MODEL` is set; the committed fixtures are all small.
fn bench_import_file(c: &mut Criterion) {
    let Ok(path) = std::env::var("ACCELFORGE_BENCH_MODEL") else {
        return;
    };
    let bytes = std::fs::read(&path).expect("ACCELFORGE_BENCH_MODEL");
    c.bench_function(&format!("import/{} bytes", bytes.len()), |b| {
        b.iter(|| accelforge_models::load(&bytes, None).expect("load"))
    });
}

criterion_group!(benches, bench, bench_import_file);
criterion_main!(benches);
