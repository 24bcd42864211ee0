//! Exhaustive conversion tests at small widths against an independent reference.
//!
//! The reference below is written from the spec's *meaning* column (nearest / toward zero / ties
//! to even ...) with exact rational arithmetic (numerator over a power-of-two denominator, floor
//! division), and does the wrap modes on explicit bit vectors, so it shares no code or shape with
//! the library's bit-twiddling implementation.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_templates::qfx::{Converter, Overflow, QType, Quant};

/// Exact quantization of `raw × 2^−f_src` to units of 2^−f_dst: returns (T, Q).
fn reference_quantize(raw: i128, f_src: i32, f_dst: i32, q: Quant) -> (i128, i128) {
    let (num, den) = if f_dst >= f_src {
        (raw * (1i128 << (f_dst - f_src)), 1i128)
    } else {
        (raw, 1i128 << (f_src - f_dst))
    };
    let t = num.div_euclid(den);
    let rem = num.rem_euclid(den); // X = t + rem/den, 0 <= rem < den
    let negative = raw < 0;
    let exact = rem == 0;
    let tie = 2 * rem == den;
    let above_half = 2 * rem > den;
    let up = match q {
        Quant::Trn => false,
        Quant::TrnZero => negative && !exact,
        Quant::Rnd => above_half || tie,
        Quant::RndZero => above_half || (tie && negative),
        Quant::RndMinInf => above_half,
        Quant::RndInf => above_half || (tie && !negative),
        Quant::RndConv => above_half || (tie && t.rem_euclid(2) == 1),
    };
    (t, t + i128::from(up))
}

fn to_bits(v: i128, w: u32) -> Vec<bool> {
    let m = v.rem_euclid(1i128 << w);
    (0..w).map(|i| (m >> i) & 1 == 1).collect()
}

fn from_bits(bits: &[bool], signed: bool) -> i128 {
    let w = bits.len();
    let mut v: i128 = 0;
    for (i, b) in bits.iter().enumerate() {
        if *b {
            v += 1i128 << i;
        }
    }
    if signed && bits[w - 1] {
        v -= 1i128 << w;
    }
    v
}

fn reference_convert(raw: i128, src: &QType, dst: &QType) -> i128 {
    let (t, q) = reference_quantize(raw, src.frac_bits(), dst.frac_bits(), dst.quant());
    let w = dst.width();
    let signed = dst.is_signed();
    let (min, max) = if signed {
        (-(1i128 << (w - 1)), (1i128 << (w - 1)) - 1)
    } else {
        (0, (1i128 << w) - 1)
    };
    let sym_hit = dst.overflow() == Overflow::SatSym && signed && q == min;
    if (min..=max).contains(&q) && !sym_hit {
        return q;
    }
    let negative = q < 0;
    let n = dst.sat_bits() as usize;
    let wu = w as usize;
    match dst.overflow() {
        Overflow::Sat => {
            if negative {
                min
            } else {
                max
            }
        }
        Overflow::SatSym => {
            if !negative {
                max
            } else if signed && w > 1 {
                -max
            } else {
                min
            }
        }
        Overflow::SatZero => 0,
        Overflow::Wrap => {
            let mut bits = to_bits(q, w);
            if n > 0 {
                if signed {
                    bits[wu - 1] = negative;
                    for b in &mut bits[wu - n..wu - 1] {
                        *b = !negative;
                    }
                } else {
                    for b in &mut bits[wu - n..] {
                        *b = true;
                    }
                }
            }
            from_bits(&bits, signed)
        }
        Overflow::WrapSm => {
            let mut bits = to_bits(q, w);
            let sign_bit = bits[wu - 1];
            let invert = match n {
                0 => {
                    t.div_euclid(1i128 << w).rem_euclid(2) == 1 && !sign_bit
                        || t.div_euclid(1i128 << w).rem_euclid(2) == 0 && sign_bit
                }
                1 => negative != sign_bit,
                _ => bits[wu - n] == negative,
            };
            if invert {
                bits.iter_mut().for_each(|b| *b = !*b);
            }
            if n >= 1 {
                bits[wu - 1] = negative;
                for b in &mut bits[wu - n..wu - 1] {
                    *b = !negative;
                }
            }
            from_bits(&bits, true)
        }
    }
}

/// (source, destination shape (W, I)) pairs covering narrowing, widening, more fractional bits,
/// negative I, I > W, W = 1, windows entirely above or below the source's bits.
const CASES: &[(&str, u32, i32)] = &[
    ("ap_fixed<8,4>", 4, 2),
    ("ap_ufixed<8,4>", 4, 2),
    ("ap_fixed<8,4>", 8, 4),
    ("ap_fixed<4,2>", 8, 4),
    ("ap_fixed<6,3>", 8, 2),
    ("ap_fixed<6,3>", 5, -1),
    ("ap_fixed<6,3>", 3, 5),
    ("ap_fixed<5,7>", 4, 3),
    ("ap_ufixed<5,7>", 4, 3),
    ("ap_fixed<6,-1>", 4, 0),
    ("ap_fixed<8,4>", 1, 1),
    ("ap_fixed<8,4>", 1, 0),
    ("ap_fixed<8,4>", 2, 1),
    ("ap_fixed<4,8>", 3, 1),
    ("ap_fixed<6,-4>", 3, 3),
    ("ap_ufixed<6,-4>", 3, 3),
    ("ap_fixed<10,5>", 6, 3),
    ("ap_ufixed<9,5>", 5, 4),
];

#[test]
fn every_mode_every_raw_matches_the_reference() {
    let mut checked = 0u64;
    let mut failures = Vec::new();
    for &(src_text, w, i) in CASES {
        let src: QType = src_text.parse().expect("source type");
        for signed in [true, false] {
            for q in Quant::ALL {
                for o in Overflow::ALL {
                    if o == Overflow::WrapSm && !signed {
                        continue;
                    }
                    for n in 0..=2u32.min(w) {
                        let dst = QType::new(w, i, signed)
                            .and_then(|t| t.with_modes(q, o, n))
                            .expect("destination type");
                        let conv = Converter::new(&src, &dst);
                        for raw in src.min_raw()..=src.max_raw() {
                            let got = conv.convert_raw(raw).expect("in range");
                            let want = reference_convert(raw, &src, &dst);
                            checked += 1;
                            if got != want && failures.len() < 30 {
                                failures.push(format!(
                                    "{src} -> {dst}: raw {raw} want {want} got {got}"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    println!("{checked} exhaustive conversions checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100_000);
}

#[test]
fn reference_agrees_with_the_sample_vectors() {
    // Guards the reference itself: it must reproduce the real ap_fixed headers too.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/apfixed_samples.txt"
    );
    let text = std::fs::read_to_string(path).expect("sample vectors");
    let mut types: Option<(QType, QType)> = None;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(h) = line.strip_prefix('#') {
            let (a, b) = h.split_once("->").expect("header");
            types = Some((
                a.trim().parse().expect("src"),
                b.trim().parse().expect("dst"),
            ));
            continue;
        }
        let (src, dst) = types.as_ref().expect("header first");
        let v: Vec<i128> = line
            .split_whitespace()
            .map(|t| t.parse().expect("int"))
            .collect();
        assert_eq!(
            reference_convert(v[0], src, dst),
            v[1],
            "{src} -> {dst}: {line}"
        );
        n += 1;
    }
    assert!(n > 3000);
}
