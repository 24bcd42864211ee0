//! Conversions per second through the one `qfx` conversion path (raw → raw and f64 → raw).
#![allow(missing_docs)]

use std::hint::black_box;

use accelforge_templates::qfx::{Converter, Fx, QType};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn conversions(c: &mut Criterion) {
    let src: QType = "ap_fixed<32,16>".parse().unwrap_or_else(|e| panic!("{e}"));
    let raws: Vec<i128> = (0..4096i128)
        .map(|i| (i * 1_048_573) % (1 << 31) - (1 << 30))
        .collect();
    let mut group = c.benchmark_group("qfx_convert");
    group.throughput(Throughput::Elements(raws.len() as u64));
    for dst in [
        "ap_fixed<10,5>",
        "ap_fixed<10,5,AP_RND,AP_SAT>",
        "ap_fixed<10,5,AP_RND_CONV,AP_WRAP_SM,2>",
    ] {
        let dst: QType = dst.parse().unwrap_or_else(|e| panic!("{e}"));
        let conv = Converter::new(&src, &dst);
        group.bench_function(format!("raw {src} -> {dst}"), |b| {
            b.iter(|| {
                raws.iter()
                    .map(|&r| conv.convert_raw_in_range(black_box(r)))
                    .fold(0i128, i128::wrapping_add)
            })
        });
    }
    let xs: Vec<f64> = raws.iter().map(|&r| r as f64 / 65536.0).collect();
    let dst: QType = "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    group.bench_function(format!("f64 -> {dst}"), |b| {
        b.iter(|| {
            xs.iter()
                .map(|&x| Fx::from_f64(black_box(x), &dst).map_or(0, |v| v.raw()))
                .fold(0i128, i128::wrapping_add)
        })
    });
    group.finish();
}

criterion_group!(benches, conversions);
criterion_main!(benches);
