//! Multiplier-free weight formats: weights restricted to ±2^k (or zero), or to canonical signed
//! digit sums of at most two powers of two, so a multiply becomes one shift or a shift-add.
//!
//! The quantizers return the nearest such weight that the target type can represent, together
//! with its decomposition, from which the RTL emits the shifts and the adder/subtractor.
//! "Nearest" is exact (no float rounding is involved in the comparison); a tie between two
//! candidates goes to the one of smaller magnitude (then to the one with fewer terms), and
//! values beyond the type's range go to the largest candidate of their sign. On an unsigned type
//! every negative input maps to zero, the nearest representable weight.

use super::error::{QfxError, Result};
use super::exact::decompose_f64;
use super::types::QType;
use super::value::Fx;

/// One signed power-of-two term of a shift-add weight: contributes `±2^exponent` to the value,
/// i.e. `±(1 << bit)` to the raw integer of the weight's type (`exponent = bit − F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pow2Term {
    /// Whether the term is subtracted.
    pub negative: bool,
    /// Bit position in the raw integer (`0 ..= W−1`).
    pub bit: u32,
    /// Power of two in value units: the multiplier becomes `x << exponent` (a right shift when
    /// negative).
    pub exponent: i32,
}

/// A multiplier-free weight: its value in the target type and the terms that sum to it (no term
/// for zero, one for ±2^k, two for a CSD pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftAddWeight {
    /// The weight as a fixed-point value of the target type.
    pub value: Fx,
    /// Terms whose sum is exactly `value` (at most two).
    pub terms: Vec<Pow2Term>,
}

impl ShiftAddWeight {
    /// The weight's raw integer in the target type.
    pub fn raw(&self) -> i128 {
        self.value.raw()
    }
}

/// Nearest weight of the form ±2^k (or zero) representable in `ty` (W ≤ 64).
pub fn nearest_pow2(x: f64, ty: &QType) -> Result<ShiftAddWeight> {
    let (m, f) = finite(x, ty)?;
    nearest(m, f, ty, 1)
}

/// [`nearest_pow2`] for a fixed-point input of any type.
pub fn nearest_pow2_fx(x: &Fx, ty: &QType) -> Result<ShiftAddWeight> {
    nearest(x.raw(), x.ty().frac_bits().into(), ty, 1)
}

/// Nearest weight of the form ±2^a ± 2^b, ±2^a or zero representable in `ty` (W ≤ 64).
pub fn nearest_csd2(x: f64, ty: &QType) -> Result<ShiftAddWeight> {
    let (m, f) = finite(x, ty)?;
    nearest(m, f, ty, 2)
}

/// [`nearest_csd2`] for a fixed-point input of any type.
pub fn nearest_csd2_fx(x: &Fx, ty: &QType) -> Result<ShiftAddWeight> {
    nearest(x.raw(), x.ty().frac_bits().into(), ty, 2)
}

fn finite(x: f64, ty: &QType) -> Result<(i128, i64)> {
    decompose_f64(x).ok_or_else(|| QfxError::NonFinite {
        value: x,
        ty: ty.to_string(),
    })
}

/// Larger than four times any candidate magnitude (candidates are at most 2^64 for W ≤ 64).
const CAP: u128 = 1 << 100;

/// `(floor(4t), sticky)` for `t = |m| × 2^(f_dst − f_src)`, the target magnitude in raw units:
/// two guard bits and a sticky bit decide every comparison against a midpoint between two
/// integers exactly, since such midpoints are multiples of 1/2.
fn scaled_magnitude(m: i128, f_src: i64, f_dst: i64) -> (u128, bool) {
    let mag = m.unsigned_abs();
    if mag == 0 {
        return (0, false);
    }
    let shift = f_dst + 2 - f_src;
    if shift >= 0 {
        if shift >= 100 || i64::from(mag.leading_zeros()) <= shift + 28 {
            (CAP, false)
        } else {
            (mag << shift, false)
        }
    } else {
        let s = -shift;
        if s >= 128 {
            (0, true)
        } else {
            (mag >> s, mag & ((1u128 << s) - 1) != 0)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    mag: u128,
    /// (bit, subtracted) of the second term, if any; the first term is always `+2^a`.
    a: Option<u32>,
    b: Option<(u32, bool)>,
}

impl Candidate {
    fn terms(&self) -> usize {
        usize::from(self.a.is_some()) + usize::from(self.b.is_some())
    }
}

/// Whether `c` is strictly better than `best` for the target `(u, sticky)`.
fn better(u: u128, sticky: bool, c: &Candidate, best: &Candidate) -> bool {
    use std::cmp::Ordering;
    let order = if c.mag == best.mag {
        Ordering::Equal
    } else {
        let (lo, hi) = if c.mag < best.mag {
            (c.mag, best.mag)
        } else {
            (best.mag, c.mag)
        };
        // t is closer to lo iff 4t < 2(lo + hi); equal distance iff 4t == 2(lo + hi) exactly.
        let mid4 = 2 * (lo + hi);
        let closer_to_lo = if u < mid4 {
            Ordering::Less
        } else if u == mid4 && !sticky {
            Ordering::Equal
        } else {
            Ordering::Greater
        };
        match (closer_to_lo, c.mag < best.mag) {
            (Ordering::Equal, _) => Ordering::Equal,
            (Ordering::Less, true) | (Ordering::Greater, false) => Ordering::Less,
            _ => Ordering::Greater,
        }
    };
    match order {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => (c.mag, c.terms()) < (best.mag, best.terms()),
    }
}

fn nearest(m: i128, f_src: i64, ty: &QType, max_terms: usize) -> Result<ShiftAddWeight> {
    if !ty.is_value_type() {
        return Err(QfxError::NeedsValueType {
            operation: if max_terms == 1 {
                "power-of-two weight quantization"
            } else {
                "CSD weight quantization"
            },
            ty: ty.to_string(),
        });
    }
    let negative = m < 0;
    let limit: u128 = if negative {
        ty.min_raw().unsigned_abs()
    } else {
        ty.max_raw().unsigned_abs()
    };
    let (u, sticky) = scaled_magnitude(m, f_src, ty.frac_bits().into());
    let t_floor = u >> 2;
    // Once t >= 1 the nearest candidate lies in [2^a0, 3·2^a0) with a0 = floor(log2 t), so its
    // leading power is 2^a0 .. 2^(a0+2); beyond the limit, search everything below it.
    let (lo, hi) = if t_floor >= limit {
        (0, 65)
    } else if t_floor == 0 {
        (0, 2)
    } else {
        let a0 = 127 - t_floor.leading_zeros();
        (a0, a0 + 2)
    };
    let mut best = Candidate {
        mag: 0,
        a: None,
        b: None,
    };
    let mut consider = |c: Candidate| {
        if c.mag <= limit && better(u, sticky, &c, &best) {
            best = c;
        }
    };
    for a in lo..=hi.min(65) {
        let pa = 1u128 << a;
        consider(Candidate {
            mag: pa,
            a: Some(a),
            b: None,
        });
        if max_terms >= 2 {
            for b in 0..a {
                let pb = 1u128 << b;
                consider(Candidate {
                    mag: pa + pb,
                    a: Some(a),
                    b: Some((b, false)),
                });
                consider(Candidate {
                    mag: pa - pb,
                    a: Some(a),
                    b: Some((b, true)),
                });
            }
        }
    }
    let f = ty.frac_bits();
    let term = |bit: u32, subtract: bool| Pow2Term {
        negative: negative != subtract,
        bit,
        exponent: bit as i32 - f,
    };
    let mut terms = Vec::with_capacity(best.terms());
    if let Some(a) = best.a {
        terms.push(term(a, false));
    }
    if let Some((b, sub)) = best.b {
        terms.push(term(b, sub));
    }
    // mag <= limit <= 2^64, so it fits an i128.
    let raw = if negative {
        -(best.mag as i128)
    } else {
        best.mag as i128
    };
    Ok(ShiftAddWeight {
        value: Fx::from_raw(raw, ty)?,
        terms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> QType {
        s.parse().unwrap()
    }

    fn term_sum(w: &ShiftAddWeight) -> i128 {
        w.terms
            .iter()
            .map(|t| {
                if t.negative {
                    -(1i128 << t.bit)
                } else {
                    1i128 << t.bit
                }
            })
            .sum()
    }

    #[test]
    fn pow2_examples() {
        let t = ty("ap_fixed<8,4>"); // F = 4
        let w = nearest_pow2(0.3, &t).unwrap();
        assert_eq!(w.value.to_f64(), 0.25);
        assert_eq!(
            w.terms,
            vec![Pow2Term {
                negative: false,
                bit: 2,
                exponent: -2
            }]
        );
        assert_eq!(nearest_pow2(-5.0, &t).unwrap().value.to_f64(), -4.0);
        // 6 is exactly between 4 and 8: the smaller magnitude wins.
        assert_eq!(nearest_pow2(6.0, &t).unwrap().value.to_f64(), 4.0);
        assert_eq!(nearest_pow2(6.01, &t).unwrap().value.to_f64(), 4.0);
        // 8 does not fit ap_fixed<8,4> (max 7.9375) but -8 does.
        assert_eq!(nearest_pow2(100.0, &t).unwrap().value.to_f64(), 4.0);
        assert_eq!(nearest_pow2(-100.0, &t).unwrap().value.to_f64(), -8.0);
        // Below half an LSB: zero, with no terms.
        let z = nearest_pow2(0.03125, &t).unwrap();
        assert_eq!((z.raw(), z.terms.len()), (0, 0));
        assert_eq!(nearest_pow2(0.0313, &t).unwrap().raw(), 1);
        assert_eq!(nearest_pow2(-3.0, &ty("ap_ufixed<8,4>")).unwrap().raw(), 0);
    }

    #[test]
    fn csd_examples() {
        let t = ty("ap_fixed<8,4>");
        let w = nearest_csd2(-1.75, &t).unwrap(); // -(2 - 0.25)
        assert_eq!(w.value.to_f64(), -1.75);
        assert_eq!(term_sum(&w), w.raw());
        assert_eq!(w.terms.len(), 2);
        // 5.25 and 5.5 need three signed digits; the CSD2 neighbours of 5.3 are 5 and 6.
        assert_eq!(nearest_csd2(5.3, &t).unwrap().value.to_f64(), 5.0);
        assert_eq!(nearest_csd2(100.0, &t).unwrap().value.to_f64(), 7.9375); // 8 − 1/16
        assert_eq!(nearest_csd2(-100.0, &t).unwrap().value.to_f64(), -8.0);
    }

    #[test]
    fn csd_is_nearest_by_brute_force() {
        let t = ty("ap_fixed<7,3>");
        let reps: Vec<i128> = (t.min_raw()..=t.max_raw())
            .filter(|&r| {
                // At most two nonzero digits in the non-adjacent form of r.
                let (mut v, mut digits) = (r, 0);
                while v != 0 {
                    if v & 1 == 1 {
                        digits += 1;
                        v -= 2 - v.rem_euclid(4);
                    }
                    v >>= 1;
                }
                digits <= 2
            })
            .collect();
        for i in -2000..=2000 {
            let x = f64::from(i) / 137.0;
            let w = nearest_csd2(x, &t).unwrap();
            assert_eq!(term_sum(&w), w.raw());
            let scaled = x * 16.0;
            let best = reps
                .iter()
                .map(|&r| (scaled - r as f64).abs())
                .fold(f64::INFINITY, f64::min);
            assert!(((scaled - w.raw() as f64).abs() - best).abs() < 1e-9, "{x}");
        }
    }
}
