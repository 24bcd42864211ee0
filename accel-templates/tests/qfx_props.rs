//! Property tests (seeded, so every run checks the same cases).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_templates::qfx::{
    CalibrationMethod, Fx, Overflow, QType, Quant, calibrate, calibration_type, nearest_csd2,
    nearest_pow2, product_type, quantization_mse, range_int_bits, sum_type,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A fixed seed derived from a readable constant.
const fn seed() -> u64 {
    0x5eed_0fa9_f10e_d5ed
}

fn any_qtype() -> impl Strategy<Value = QType> {
    (
        1u32..=64,
        -80i32..=80,
        any::<bool>(),
        0usize..7,
        0usize..5,
        0u32..=3,
    )
        .prop_filter_map("valid type", |(w, i, s, q, o, n)| {
            let o = Overflow::ALL[o];
            let o = if !s && o == Overflow::WrapSm {
                Overflow::Wrap
            } else {
                o
            };
            QType::new(w, i, s)
                .and_then(|t| t.with_modes(Quant::ALL[q], o, n.min(w)))
                .ok()
        })
}

/// A type and a raw value in its range.
fn typed_raw(max_width: u32) -> impl Strategy<Value = Fx> {
    (1u32..=max_width, -20i32..=20, any::<bool>())
        .prop_filter_map("type", |(w, i, s)| QType::new(w, i, s).ok())
        .prop_flat_map(|t| {
            (t.min_raw()..=t.max_raw()).prop_map(move |r| Fx::from_raw(r, &t).expect("in range"))
        })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn display_parse_round_trip(t in any_qtype()) {
        let text = t.to_string();
        prop_assert_eq!(text.parse::<QType>().expect("parses"), t);
        // Sloppy but valid spellings parse to the same type.
        let sloppy = format!(
            " {} < {} , {} , {} , {} , {} > ",
            if t.is_signed() { "ap_fixed" } else { "ap_ufixed" },
            t.width(),
            t.int_bits(),
            t.quant().hls_name().trim_start_matches("AP_").to_ascii_lowercase(),
            t.overflow().hls_name(),
            t.sat_bits()
        );
        prop_assert_eq!(sloppy.parse::<QType>().expect("parses"), t);
    }

    #[test]
    fn serde_round_trip(t in any_qtype(), wide in 65u32..=128) {
        let json = serde_json::to_string(&t).expect("serializes");
        prop_assert_eq!(&json, &format!("\"{t}\""));
        prop_assert_eq!(serde_json::from_str::<QType>(&json).expect("deserializes"), t);
        let w = QType::new_wide(wide, 3, true).expect("wide type");
        let json = serde_json::to_string(&w).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<QType>(&json).expect("deserializes"), w);
    }

    #[test]
    fn products_and_sums_are_exact(a in typed_raw(26), b in typed_raw(26)) {
        let p = a.mul(&b).expect("product fits");
        prop_assert_eq!(p.ty(), &product_type(a.ty(), b.ty()).expect("type"));
        prop_assert!(p.ty().width() <= 52);
        prop_assert_eq!(p.to_f64(), a.to_f64() * b.to_f64());
        let s = a.add(&b).expect("sum fits");
        prop_assert_eq!(s.ty(), &sum_type(a.ty(), b.ty()).expect("type"));
        if s.ty().width() <= 53 {
            prop_assert_eq!(s.to_f64(), a.to_f64() + b.to_f64());
            prop_assert_eq!(a.sub(&b).expect("difference").to_f64(), a.to_f64() - b.to_f64());
        }
    }

    #[test]
    fn wide_products_are_exact_integers(a in typed_raw(64), b in typed_raw(63)) {
        let p = a.mul(&b).expect("product fits 127 bits");
        prop_assert_eq!(p.raw(), a.raw() * b.raw());
        prop_assert!(p.ty().contains_raw(p.raw()));
        let s = a.add(&b).expect("sum");
        prop_assert!(s.ty().contains_raw(s.raw()));
    }

    #[test]
    fn f64_round_trips_and_agrees_with_raw_conversion(a in typed_raw(53), dst in any_qtype()) {
        // A value of a <=53-bit type is an exact f64 ...
        let x = a.to_f64();
        prop_assert_eq!(Fx::from_f64(x, a.ty()).expect("finite"), a);
        // ... so converting it from f64 and from raw must agree bit for bit.
        prop_assert_eq!(Fx::from_f64(x, &dst).expect("finite"), a.convert(&dst));
    }

    #[test]
    fn shift_add_weights_decompose_exactly(x in -300.0f64..300.0, t in any_qtype()) {
        let p = nearest_pow2(x, &t).expect("pow2");
        let c = nearest_csd2(x, &t).expect("csd");
        prop_assert!(p.terms.len() <= 1 && c.terms.len() <= 2);
        for w in [&p, &c] {
            let sum: i128 = w.terms.iter().map(|t| if t.negative { -(1i128 << t.bit) } else { 1i128 << t.bit }).sum();
            prop_assert_eq!(sum, w.raw());
        }
        // Every ±2^k is also a CSD2 weight, so CSD2 is never farther from x.
        prop_assert!((c.value.to_f64() - x).abs() <= (p.value.to_f64() - x).abs());
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn mse_calibration_never_loses_to_range(
        data in prop::collection::vec(
            prop_oneof![-1.0f64..1.0, -100.0f64..100.0, -1e-3f64..1e-3, Just(0.0)],
            1..200,
        ),
        width in 2u32..=16,
        signed in any::<bool>(),
    ) {
        let r = calibrate(&data, width, signed, CalibrationMethod::Range).expect("range");
        let m = calibrate(&data, width, signed, CalibrationMethod::Mse).expect("mse");
        prop_assert!(m.mse <= r.mse, "mse {} > range {}", m.mse, r.mse);
        prop_assert!(m.int_bits <= r.int_bits);
        prop_assert_eq!(r.int_bits, range_int_bits(&data, width, signed).expect("range"));
        // Range's I is the smallest that holds the data: no overflow with it, some with I − 1.
        let holds = |i: i32| {
            let t = calibration_type(width, i, signed).expect("type");
            let (lo, hi) = t.range();
            data.iter().all(|&x| x <= hi && (x >= lo || !signed))
        };
        let any_nonzero = data.iter().any(|&x| if signed { x != 0.0 } else { x > 0.0 });
        prop_assert!(holds(r.int_bits));
        if any_nonzero {
            prop_assert!(!holds(r.int_bits - 1));
        }
        prop_assert_eq!(m.mse, quantization_mse(&data, &m.ty));
    }
}
