//! Per-quantizer sensitivity on the digits MLP: the machinery is exact at the exported width
//! (same outputs), narrows the integer range as asked, and measures an effect below it.

use std::path::PathBuf;

use accelforge_models::lower;
use accelforge_models::onnx::parse;
use accelforge_models::sensitivity::{measure, sites, with_bits};
use ndarray::{Array1, Array4};
use ndarray_npy::read_npy;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn graph(name: &str) -> accelforge_models::onnx::Graph {
    parse(&std::fs::read(fixtures().join(format!("{name}.onnx"))).expect("fixture")).expect("parse")
}

#[test]
fn sites_of_the_mlp() {
    let g = graph("mlp_w8a8_pow2");
    let s = sites(&g);
    let kinds: Vec<_> = s.iter().map(|s| (s.kind, s.bits)).collect();
    assert_eq!(
        kinds,
        [
            ("activation", 8),
            ("weight", 8),
            ("activation", 8),
            ("weight", 8),
            ("activation", 8)
        ]
    );
}

#[test]
fn narrower_quantizers_narrow_the_integer_ranges() {
    let g = graph("mlp_w8a8_pow2");
    let s = sites(&g);
    // The hidden activation (third site) at 4 bits: the first dense layer's outputs are 0..=15.
    let net = lower(&with_bits(&g, &s[2], 4).expect("4 bits"), None).expect("lower");
    let dense: Vec<_> = net
        .layers()
        .into_iter()
        .filter(|l| l.op == "dense")
        .collect();
    assert_eq!(dense[0].out_range, (0, 15));
    // The second weight at 2 bits: weights in -1..=1 (narrow signed 2 bit).
    let net = lower(&with_bits(&g, &s[3], 2).expect("2 bits"), None).expect("lower");
    let dense: Vec<_> = net
        .layers()
        .into_iter()
        .filter(|l| l.op == "dense")
        .collect();
    let (lo, hi) = dense[1].weight_range.expect("weights");
    assert!(lo >= -1 && hi <= 1, "{lo}..{hi}");
    // Wider than exported is refused.
    assert!(with_bits(&g, &s[0], 9).is_err());
}

#[test]
fn effects_on_the_held_out_digits() {
    let g = graph("mlp_w8a8_pow2");
    let x: Array4<f32> = read_npy(fixtures().join("digits_x.npy")).expect("x");
    let y: Array1<i64> = read_npy(fixtures().join("digits_y.npy")).expect("y");
    let (x, y) = (
        &x.as_slice().expect("contiguous")[1200 * 64..],
        &y.as_slice().expect("contiguous")[1200..],
    );
    let (sites, effects) = measure(&g, x, Some(y), &[8, 4, 2]).expect("measure");
    assert_eq!(effects.len(), sites.len() * 3);
    for e in &effects {
        if e.bits == 8 {
            // The exported width: the same network, the same outputs.
            assert_eq!((e.agreement, e.mean_abs_error), (1.0, 0.0), "{e:?}");
            assert!((e.accuracy.expect("labels") - 0.9631490787269682).abs() < 1e-12);
        }
    }
    // Two-bit weights in the first layer change the answers.
    let w1_2b = effects
        .iter()
        .find(|e| e.site == 1 && e.bits == 2)
        .expect("w1 at 2 bits");
    assert!(
        w1_2b.agreement < 1.0 && w1_2b.mean_abs_error > 0.0,
        "{w1_2b:?}"
    );
}
