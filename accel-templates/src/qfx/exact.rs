//! Exact helpers on dyadic rationals `m × 2^−f`: decomposing an `f64`, rounding one to `f64`, and
//! printing one as an exact decimal.

/// Splits a finite `f64` into `(m, f)` with `x == m × 2^−f` exactly; `None` for NaN and ±∞.
/// Uses the bit pattern, so no float arithmetic can round anything.
pub(crate) fn decompose_f64(x: f64) -> Option<(i128, i64)> {
    if !x.is_finite() {
        return None;
    }
    let bits = x.to_bits();
    let negative = bits >> 63 == 1;
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, frac) = if biased == 0 {
        // Subnormal (or zero): no hidden bit, fixed exponent −1074.
        (fraction, 1074)
    } else {
        (fraction | (1u64 << 52), 1075 - biased)
    };
    let m = i128::from(mantissa);
    Some((if negative { -m } else { m }, frac))
}

/// 2^k as an `f64` for k in the normal range, built from the bit pattern so it is exact.
fn pow2(k: i64) -> f64 {
    debug_assert!((-1022..=1023).contains(&k));
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `m × 2^−f` rounded to `f64`: `m` is rounded once (to nearest, ties even) and the power of two is
/// applied in steps that are exact unless the result leaves the normal `f64` range.
pub(crate) fn dyadic_to_f64(m: i128, f: i64) -> f64 {
    let mut x = m as f64;
    let mut e = -f;
    while e > 1023 {
        // Anything still needing scaling up here is beyond f64::MAX: ∞ is the right answer.
        x *= pow2(1023);
        e -= 1023;
    }
    while e < -1022 {
        // |x| >= 1 here, so the first step is exact; a second step only happens for results far
        // below the smallest subnormal, which round to zero either way.
        x *= pow2(-1022);
        e += 1022;
    }
    x * pow2(e)
}

/// Little-endian base-10^9 natural number, enough for exact decimal printing.
struct BigDec(Vec<u32>);

const BASE: u64 = 1_000_000_000;

impl BigDec {
    fn from_u128(mut v: u128) -> BigDec {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push((v % u128::from(BASE)) as u32);
            v /= u128::from(BASE);
        }
        BigDec(limbs)
    }

    fn mul_small(&mut self, k: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let t = u64::from(*limb) * u64::from(k) + carry;
            *limb = (t % BASE) as u32;
            carry = t / BASE;
        }
        while carry > 0 {
            self.0.push((carry % BASE) as u32);
            carry /= BASE;
        }
    }

    /// Multiplies by `base^exp` for a small base, in chunks that keep each factor in `u32`.
    fn mul_pow(&mut self, base: u32, mut exp: u64, chunk_exp: u32) {
        let chunk = base.pow(chunk_exp);
        while exp >= u64::from(chunk_exp) {
            self.mul_small(chunk);
            exp -= u64::from(chunk_exp);
        }
        for _ in 0..exp {
            self.mul_small(base);
        }
    }

    fn to_digits(&self) -> String {
        let mut s = String::new();
        for (i, limb) in self.0.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&limb.to_string());
            } else {
                s.push_str(&format!("{limb:09}"));
            }
        }
        if s.is_empty() {
            s.push('0');
        }
        s
    }
}

/// `m × 2^−f` as an exact decimal string (no exponent, no trailing zeros after the point).
pub(crate) fn dyadic_to_decimal(m: i128, f: i64) -> String {
    let negative = m < 0;
    let mut n = BigDec::from_u128(m.unsigned_abs());
    let digits = if f <= 0 {
        n.mul_pow(2, f.unsigned_abs(), 31);
        n.to_digits()
    } else {
        // m / 2^f = m × 5^f / 10^f: print m × 5^f and put the point f digits from the right.
        n.mul_pow(5, f.unsigned_abs(), 13);
        let raw = n.to_digits();
        let f = f as usize;
        let padded = if raw.len() <= f {
            format!("{}{raw}", "0".repeat(f + 1 - raw.len()))
        } else {
            raw
        };
        let (int_part, frac_part) = padded.split_at(padded.len() - f);
        let frac_part = frac_part.trim_end_matches('0');
        if frac_part.is_empty() {
            int_part.to_string()
        } else {
            format!("{int_part}.{frac_part}")
        }
    };
    if negative && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_are_exact() {
        assert_eq!(dyadic_to_decimal(0, 5), "0");
        assert_eq!(dyadic_to_decimal(-512, 5), "-16");
        assert_eq!(dyadic_to_decimal(511, 5), "15.96875");
        assert_eq!(dyadic_to_decimal(1, 3), "0.125");
        assert_eq!(dyadic_to_decimal(-3, -4), "-48");
        assert_eq!(
            dyadic_to_decimal(1, 40),
            "0.0000000000009094947017729282379150390625"
        );
        assert_eq!(
            dyadic_to_decimal(i128::MIN, 0),
            "-170141183460469231731687303715884105728"
        );
    }

    #[test]
    fn f64_round_trips_through_decompose() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.5,
            1e-310,
            f64::MIN_POSITIVE,
            f64::MAX,
            -f64::MAX,
            5e-324,
            0.1,
            123456.789,
        ] {
            let (m, f) = decompose_f64(x).unwrap();
            assert_eq!(dyadic_to_f64(m, f), x, "{x}");
        }
        assert!(decompose_f64(f64::NAN).is_none());
        assert!(decompose_f64(f64::INFINITY).is_none());
    }
}
