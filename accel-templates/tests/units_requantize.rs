//! The `requantize` RTL against the qfx golden model in Verilator: exhaustively over every source
//! value for small types and every mode pair (N = 0, 1, 2; signed and unsigned destinations), and
//! over seeded random values for wide ones. Zero mismatches.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::{Design, ModuleBuilder};
use accelforge_sim::{BuildOptions, DesignSpec, build};
use accelforge_templates::qfx::{Converter, Overflow, QType, Quant};
use accelforge_templates::units::requantize::{emit_requantize, requantize_module};
use rand::{Rng, SeedableRng};

const QUANTS: [Quant; 7] = [
    Quant::Trn,
    Quant::TrnZero,
    Quant::Rnd,
    Quant::RndZero,
    Quant::RndMinInf,
    Quant::RndInf,
    Quant::RndConv,
];
const OVERFLOWS: [Overflow; 5] = [
    Overflow::Sat,
    Overflow::SatZero,
    Overflow::SatSym,
    Overflow::Wrap,
    Overflow::WrapSm,
];

fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        ..BuildOptions::default()
    }
}

/// Every mode combination for destinations shaped like `shapes`.
fn all_modes(shapes: &[(u32, i32, bool)]) -> Vec<QType> {
    let mut v = Vec::new();
    for &(w, i, signed) in shapes {
        for q in QUANTS {
            for o in OVERFLOWS {
                for n in 0..=2u32.min(w) {
                    if o == Overflow::WrapSm && !signed {
                        continue;
                    }
                    if let Ok(t) = QType::new(w, i, signed).and_then(|t| t.with_modes(q, o, n)) {
                        v.push(t);
                    }
                }
            }
        }
    }
    v
}

/// One module with an input `x` and an output `y<i>` per destination type.
fn bank(name: &str, src: &QType, dsts: &[QType]) -> Design {
    let mut m = ModuleBuilder::new(name).unwrap();
    let x = if src.is_signed() {
        m.input_signed("x", src.width()).unwrap()
    } else {
        m.input("x", src.width()).unwrap()
    };
    for (i, d) in dsts.iter().enumerate() {
        let y = m.output(&format!("y{i}"), d.width()).unwrap();
        let r = emit_requantize(&mut m, &format!("rq{i}"), &x, src, d).unwrap();
        m.assign_sig(&y, r.e().as_unsigned()).unwrap();
    }
    Design::new(m.finish(), &name)
}

fn to_bits(raw: i128, w: u32) -> u64 {
    (raw as u64) & if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

fn check_bank(
    name: &str,
    src: QType,
    dsts: Vec<QType>,
    inputs: &mut dyn Iterator<Item = i128>,
) -> usize {
    let design = bank(name, &src, &dsts);
    let files = accelforge_hdl::tools::DesignFiles::new(&design).unwrap();
    let lint = accelforge_hdl::tools::lint(&files.paths, Some(name)).unwrap();
    assert!(
        lint.is_clean(),
        "{name}: {:#?}",
        lint.diagnostics
            .iter()
            .take(8)
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
    let compiled = build(&DesignSpec::from_hdl(&design).clock(None), &opts()).unwrap();
    let mut sim = compiled.sim().unwrap();
    let x = sim.port("x").unwrap();
    let ys: Vec<_> = (0..dsts.len())
        .map(|i| sim.port(&format!("y{i}")).unwrap())
        .collect();
    let convs: Vec<Converter> = dsts.iter().map(|d| Converter::new(&src, d)).collect();
    let mut checked = 0;
    for raw in inputs {
        sim.poke(x, to_bits(raw, src.width())).unwrap();
        sim.eval().unwrap();
        for (i, c) in convs.iter().enumerate() {
            let want = to_bits(c.convert_raw(raw).unwrap(), dsts[i].width());
            let got = sim.peek(ys[i]).unwrap();
            assert_eq!(got, want, "{src} -> {} at raw {raw}", dsts[i]);
            checked += 1;
        }
    }
    checked
}

fn have_verilator() -> bool {
    accelforge_test_support::tool_available("verilator")
}

#[test]
fn exhaustive_signed_source_every_mode() {
    if !have_verilator() {
        return;
    }
    let src: QType = "ap_fixed<8,4>".parse().unwrap();
    // Fewer fractional bits (rounding), more (exact shift), negative I, I > W, W = 1.
    let dsts = all_modes(&[
        (4, 2, true),
        (4, 2, false),
        (6, 1, true),
        (4, -1, true),
        (3, 6, true),
        (1, 1, true),
        (5, 3, false),
    ]);
    let n = check_bank(
        "rq_bank_s8",
        src,
        dsts,
        &mut (src.min_raw()..=src.max_raw()),
    );
    assert!(n > 100_000, "{n}");
}

#[test]
fn exhaustive_unsigned_source_every_mode() {
    if !have_verilator() {
        return;
    }
    let src: QType = "ap_ufixed<8,3>".parse().unwrap();
    let dsts = all_modes(&[(4, 2, true), (4, 1, false), (9, 4, true), (2, 0, false)]);
    check_bank(
        "rq_bank_u8",
        src,
        dsts,
        &mut (src.min_raw()..=src.max_raw()),
    );
}

#[test]
fn random_wide_sources() {
    if !have_verilator() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let src: QType = "ap_fixed<32,16>".parse().unwrap();
    let dsts = all_modes(&[(10, 5, true), (8, 8, false)]);
    let mut inputs = (0..3000).map(|i| match i % 4 {
        0 => rng.random_range(src.min_raw()..=src.max_raw()),
        1 => rng.random_range(-5000..5000),
        2 => [src.min_raw(), src.max_raw(), 0, -1][i / 4 % 4],
        _ => rng.random_range(-600_000..600_000),
    });
    check_bank("rq_bank_w32", src, dsts, &mut inputs);
    // A 48-bit accumulator to an 8-bit output, the systolic array's usual case.
    let src: QType = "ap_fixed<48,24>".parse().unwrap();
    let dsts = all_modes(&[(8, 4, true)]);
    let mut inputs = (0..3000).map(|_| rng.random_range(-(1i128 << 30)..(1i128 << 30)));
    check_bank("rq_bank_w48", src, dsts, &mut inputs);
}

#[test]
fn standalone_module_lints_and_synthesises() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let src: QType = "ap_fixed<32,16>".parse().unwrap();
    let dst: QType = "ap_fixed<8,4,AP_RND_CONV,AP_SAT>".parse().unwrap();
    for registered in [false, true] {
        let d = requantize_module("rq_unit", &src, &dst, registered).unwrap();
        let files = accelforge_hdl::tools::DesignFiles::new(&d).unwrap();
        assert!(
            accelforge_hdl::tools::lint(&files.paths, None)
                .unwrap()
                .is_clean()
        );
        let r = accelforge_hdl::tools::synth(
            &files.paths,
            "rq_unit",
            accelforge_hdl::tools::Family::Xc7,
        )
        .unwrap();
        assert_eq!(r.dsp, 0);
        assert!(r.lut > 0);
        assert_eq!(r.ff, if registered { 8 } else { 0 });
    }
}
