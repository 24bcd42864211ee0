//! MAC, shift-add and activation units against their qfx golden models in Verilator (zero
//! mismatches; exhaustive where the input space is at most 2^16), and their Yosys footprints:
//! an ≤18-bit MAC is exactly one DSP48E1, the multiplier-free forms use none.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::tools::{self, DesignFiles, Family};
use accelforge_hdl::{Design, ModuleBuilder};
use accelforge_sim::{BuildOptions, DesignSpec, build};
use accelforge_templates::qfx::{Fx, QType, nearest_csd2_fx, nearest_pow2_fx};
use accelforge_templates::units::activation::{
    ActivationKind, ActivationParams, activation_module, emit_activation,
};
use accelforge_templates::units::mac::{MacModel, MacParams, mac_module};
use accelforge_templates::units::shiftadd::{ShiftAddCode, emit_shift_add_product};
use rand::{Rng, SeedableRng};

fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        ..BuildOptions::default()
    }
}
fn t(s: &str) -> QType {
    s.parse().unwrap()
}
fn bits(raw: i128, w: u32) -> u64 {
    (raw as u64) & if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}
fn lint_clean(d: &Design) {
    let files = DesignFiles::new(d).unwrap();
    let r = tools::lint(&files.paths, Some(d.top_name())).unwrap();
    assert!(
        r.is_clean(),
        "{}: {:?}",
        d.top_name(),
        r.diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn mac_matches_golden_model() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let cases = [
        MacParams::for_dot(t("ap_fixed<8,8>"), t("ap_fixed<8,8>"), 256).unwrap(),
        MacParams {
            a: t("ap_fixed<12,4>"),
            b: t("ap_ufixed<10,2>"),
            acc: t("ap_fixed<24,8>"),
            saturate: true,
        },
        MacParams {
            a: t("ap_ufixed<6,6>"),
            b: t("ap_ufixed<5,1>"),
            acc: t("ap_ufixed<12,8>"),
            saturate: true,
        },
        MacParams {
            a: t("ap_fixed<18,2>"),
            b: t("ap_fixed<18,2>"),
            acc: t("ap_fixed<40,8>"),
            saturate: false,
        },
    ];
    for (i, p) in cases.iter().enumerate() {
        let d = mac_module(&format!("mac_t{i}"), p).unwrap();
        lint_clean(&d);
        let compiled = build(&DesignSpec::from_hdl(&d), &opts()).unwrap();
        let mut sim = compiled.sim().unwrap();
        sim.reset(1).unwrap();
        let mut model = MacModel::new(p).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
        let (en, clear, a, b, acc) = (
            sim.port("en").unwrap(),
            sim.port("clear").unwrap(),
            sim.port("a").unwrap(),
            sim.port("b").unwrap(),
            sim.port("acc").unwrap(),
        );
        for cycle in 0..5000 {
            let (e, c) = (rng.random_bool(0.8), rng.random_bool(0.05));
            // Extreme operands often, to reach saturation and the most negative values.
            let pick = |rng: &mut rand_chacha::ChaCha8Rng, ty: &QType| match rng.random_range(0..4)
            {
                0 => ty.min_raw(),
                1 => ty.max_raw(),
                _ => rng.random_range(ty.min_raw()..=ty.max_raw()),
            };
            let (x, y) = (pick(&mut rng, &p.a), pick(&mut rng, &p.b));
            sim.poke(en, u64::from(e)).unwrap();
            sim.poke(clear, u64::from(c)).unwrap();
            sim.poke(a, bits(x, p.a.width())).unwrap();
            sim.poke(b, bits(y, p.b.width())).unwrap();
            assert_eq!(
                sim.peek(acc).unwrap(),
                bits(model.acc_raw(), p.acc.width()),
                "case {i} cycle {cycle}"
            );
            sim.step().unwrap();
            model.tick(false, e, c, x, y).unwrap();
        }
    }
}

#[test]
fn shift_add_products_are_exact_for_every_weight() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    for (xt, wt, terms) in [
        (t("ap_fixed<8,4>"), t("ap_fixed<8,2>"), 2),
        (t("ap_ufixed<8,8>"), t("ap_fixed<6,1>"), 1),
        (t("ap_fixed<8,8>"), t("ap_ufixed<7,3>"), 2),
    ] {
        let layout = ShiftAddCode::new(&wt, terms).unwrap();
        // Every weight the quantizer can produce: quantize every raw value of the weight type.
        let mut codes = std::collections::BTreeMap::new();
        for raw in wt.min_raw()..=wt.max_raw() {
            let v = Fx::from_raw(raw, &wt).unwrap();
            let q = if terms == 1 {
                nearest_pow2_fx(&v, &wt)
            } else {
                nearest_csd2_fx(&v, &wt)
            }
            .unwrap();
            let code = layout.encode(&q).unwrap();
            assert_eq!(layout.decode_raw(code), q.raw());
            codes.insert(code, q.raw());
        }
        let mut m = ModuleBuilder::new("sa_prod_bank").unwrap();
        let x = if xt.is_signed() {
            m.input_signed("x", xt.width()).unwrap()
        } else {
            m.input("x", xt.width()).unwrap()
        };
        let code = m.input("code", layout.width()).unwrap();
        let p = emit_shift_add_product(&mut m, "sa", &x, &code, &layout).unwrap();
        let y = m.output("y", p.width()).unwrap();
        m.assign_sig(&y, p.e().as_unsigned()).unwrap();
        let d = Design::new(m.finish(), &(xt.to_string(), wt.to_string(), terms));
        lint_clean(&d);
        let compiled = build(&DesignSpec::from_hdl(&d).clock(None), &opts()).unwrap();
        let mut sim = compiled.sim().unwrap();
        let w = p.width();
        for (&c, &wraw) in &codes {
            sim.poke("code", c).unwrap();
            for xr in xt.min_raw()..=xt.max_raw() {
                sim.poke("x", bits(xr, xt.width())).unwrap();
                assert_eq!(
                    sim.peek("y").unwrap(),
                    bits(xr * wraw, w),
                    "{xt} x {wt}: {xr} * {wraw}"
                );
            }
        }
        assert!(codes.len() > 8);
    }
}

fn activations() -> Vec<ActivationParams> {
    let p = |kind, i: &str, o: &str, tb| ActivationParams {
        kind,
        input: t(i),
        output: t(o),
        table_bits: tb,
    };
    vec![
        p(
            ActivationKind::Relu,
            "ap_fixed<8,4>",
            "ap_ufixed<6,3,AP_RND,AP_SAT>",
            0,
        ),
        p(
            ActivationKind::Clip { max: 6.0 },
            "ap_fixed<12,5>",
            "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>",
            0,
        ),
        p(
            ActivationKind::LeakyRelu { shift: 3 },
            "ap_fixed<10,4>",
            "ap_fixed<8,4,AP_RND,AP_SAT>",
            0,
        ),
        p(
            ActivationKind::Sigmoid,
            "ap_fixed<12,4>",
            "ap_ufixed<8,0,AP_RND,AP_SAT>",
            10,
        ),
        p(
            ActivationKind::Tanh,
            "ap_fixed<10,3>",
            "ap_fixed<8,1,AP_RND,AP_SAT>",
            10,
        ),
        p(
            ActivationKind::Gelu,
            "ap_fixed<12,4>",
            "ap_fixed<10,4,AP_RND,AP_SAT>",
            8,
        ),
    ]
}

#[test]
fn activations_match_golden_model_exhaustively() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    for (i, p) in activations().iter().enumerate() {
        let d = activation_module(&format!("act_t{i}"), p).unwrap();
        lint_clean(&d);
        let compiled = build(&DesignSpec::from_hdl(&d).clock(None), &opts()).unwrap();
        let mut sim = compiled.sim().unwrap();
        let table = p.table().ok();
        for x in p.input.min_raw()..=p.input.max_raw() {
            sim.poke("x", bits(x, p.input.width())).unwrap();
            let want = p.apply_raw(x, table.as_deref()).unwrap();
            assert_eq!(
                sim.peek("y").unwrap(),
                bits(want, p.output.width()),
                "{:?} at {x}",
                p.kind
            );
        }
    }
}

#[test]
fn activation_errors_are_bounded() {
    // Documented maxima against the exact f64 functions for the presets above (also printed by
    // the test so the figures in the docs can be regenerated).
    for p in activations() {
        let e = p.max_abs_error().unwrap();
        let lsb = p.output.resolution();
        println!(
            "{:?} {} -> {}: max |error| = {e:.5} ({:.2} output LSB)",
            p.kind,
            p.input,
            p.output,
            e / lsb
        );
        let bound = match p.kind {
            // Piecewise-linear functions are exact up to the output rounding (half an LSB, or
            // one when the output has fewer fractional bits than needed) and the clipping.
            ActivationKind::Relu
            | ActivationKind::Clip { .. }
            | ActivationKind::LeakyRelu { .. } => lsb,
            // Tables add the slope across one index interval.
            _ => 0.1,
        };
        assert!(e <= bound, "{:?}: {e} > {bound}", p.kind);
    }
}

#[test]
fn dsp_use_in_yosys() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let synth = |d: &Design| {
        let files = DesignFiles::new(d).unwrap();
        tools::synth(&files.paths, d.top_name(), Family::Xc7).unwrap()
    };
    let mac = mac_module(
        "mac18",
        &MacParams {
            a: t("ap_fixed<18,2>"),
            b: t("ap_fixed<18,2>"),
            acc: t("ap_fixed<44,12>"),
            saturate: false,
        },
    )
    .unwrap();
    assert_eq!(synth(&mac).dsp, 1, "an 18x18 MAC is one DSP48E1");
    let mac8 = mac_module(
        "mac8",
        &MacParams::for_dot(t("ap_fixed<8,8>"), t("ap_fixed<8,8>"), 1024).unwrap(),
    )
    .unwrap();
    assert_eq!(synth(&mac8).dsp, 1);

    let wt = t("ap_fixed<8,2>");
    let layout = ShiftAddCode::new(&wt, 2).unwrap();
    let mut m = ModuleBuilder::new("sa8").unwrap();
    let x = m.input_signed("x", 8).unwrap();
    let code = m.input("code", layout.width()).unwrap();
    let p = emit_shift_add_product(&mut m, "sa", &x, &code, &layout).unwrap();
    let y = m.output_signed("y", p.width()).unwrap();
    m.assign_sig(&y, p.e()).unwrap();
    let r = synth(&Design::new(m.finish(), &"sa8"));
    assert_eq!(r.dsp, 0, "{r:?}");
    assert!(r.lut > 10);
    for (i, a) in activations().iter().enumerate() {
        let r = synth(&activation_module(&format!("act_s{i}"), a).unwrap());
        assert_eq!(r.dsp, 0);
    }
    let _ = emit_activation;
}
