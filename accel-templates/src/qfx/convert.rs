//! The one definition of ap_fixed conversion: quantization with the destination's Q, then
//! overflow handling with the destination's O and N.
//!
//! The source is any exact dyadic value `raw × 2^−f_src` (a fixed-point raw value, or an `f64`
//! decomposed from its bit pattern), so there is a single code path for casts, float input and
//! calibration.

use super::error::{QfxError, Result};
use super::types::{Overflow, QType, Quant};

/// Bit `idx` of `v` in infinite two's complement (bits past 127 repeat the sign).
#[inline]
fn bit(v: i128, idx: i64) -> bool {
    if idx < 0 {
        false
    } else if idx >= 127 {
        v < 0
    } else {
        (v >> idx) & 1 == 1
    }
}

/// A mask of the low `n` bits.
#[inline]
fn low_mask(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// The quantized integer `Q = T + inc` in units of the destination's LSB, before overflow.
struct Quantized {
    /// `Q` itself when it fits an `i128`; `None` means it certainly overflows any destination.
    exact: Option<i128>,
    /// `Q mod 2^128`: the wrap modes keep its low W bits.
    low: u128,
    /// `Q < 0`.
    negative: bool,
    /// Bit W of `T` (the truncated source, before the rounding increment): AP_WRAP_SM with N = 0
    /// compares the wrapped sign bit against it.
    bit_above: bool,
}

/// Quantizes `raw × 2^−f_src` into units of 2^−f_dst, where `shift = f_dst − f_src`.
#[inline]
fn quantize(raw: i128, shift: i64, width: u32, quant: Quant) -> Quantized {
    if shift >= 0 {
        // The destination has at least as many fractional bits: exact, no rounding.
        let (exact, low) = if raw == 0 {
            (Some(0), 0)
        } else if shift < 128 {
            let t = raw.wrapping_shl(shift as u32);
            // Shifting back detects lost bits (including a flipped sign).
            let exact = (t >> shift == raw).then_some(t);
            (exact, t as u128)
        } else {
            // |T| >= 2^128: out of range for every destination, and its low 128 bits are zero.
            (None, 0)
        };
        return Quantized {
            exact,
            low,
            negative: raw < 0,
            bit_above: bit(raw, i64::from(width) - shift),
        };
    }
    let s = -shift;
    let t = if s >= 128 { raw >> 127 } else { raw >> s };
    let negative_src = raw < 0;
    let inc = if quant == Quant::Trn {
        false
    } else {
        let qb = bit(raw, s - 1);
        let below = if s > 128 {
            u128::MAX
        } else {
            low_mask((s - 1) as u32)
        };
        let r = (raw as u128) & below != 0;
        match quant {
            Quant::Trn => false,
            Quant::TrnZero => negative_src && (qb || r),
            Quant::Rnd => qb,
            Quant::RndZero => qb && (negative_src || r),
            Quant::RndMinInf => qb && r,
            Quant::RndInf => qb && (!negative_src || r),
            Quant::RndConv => qb && (t & 1 == 1 || r),
        }
    };
    // |t| < 2^126 after a right shift of at least one bit, so the increment cannot overflow.
    let q = t + i128::from(inc);
    Quantized {
        exact: Some(q),
        low: q as u128,
        negative: q < 0,
        bit_above: bit(t, i64::from(width)),
    }
}

/// Applies the destination's overflow mode to a quantized integer; returns the raw result.
#[inline]
fn saturate(qz: &Quantized, dst: &QType) -> i128 {
    let (min, max) = (dst.min_raw(), dst.max_raw());
    let w = dst.width();
    if let Some(q) = qz.exact {
        let sym_min = dst.overflow() == Overflow::SatSym && dst.is_signed() && q == min;
        if q >= min && q <= max && !sym_min {
            return q;
        }
    }
    let mask = low_mask(w);
    let msb = 1u128 << (w - 1);
    let sign = qz.negative;
    // Forces the top N bits the way the N-bit wrap modes do: MSB = sign, N−1 bits below = !sign.
    let force_top = |v: u128, n: u32| -> u128 {
        let top = low_mask(n) << (w - n);
        if sign {
            (v & !top) | msb
        } else {
            (v | top) & !msb
        }
    };
    let bits = match dst.overflow() {
        Overflow::Sat => return if sign { min } else { max },
        Overflow::SatSym => {
            return match (sign, dst.is_signed()) {
                (false, _) => max,
                (true, false) => min,
                // ap_fixed sets `min | 1`; for W = 1 that is the min code itself.
                (true, true) => {
                    if w == 1 {
                        min
                    } else {
                        -max
                    }
                }
            };
        }
        Overflow::SatZero => return 0,
        Overflow::Wrap => {
            let v = qz.low & mask;
            match (dst.sat_bits(), dst.is_signed()) {
                (0, _) => v,
                (n, true) => force_top(v, n),
                (n, false) => v | (low_mask(n) << (w - n)),
            }
        }
        Overflow::WrapSm => {
            let v = qz.low & mask;
            let ro = v & msb != 0;
            match dst.sat_bits() {
                0 => {
                    if qz.bit_above != ro {
                        !v & mask
                    } else {
                        v
                    }
                }
                1 => {
                    if sign != ro {
                        !v & mask
                    } else {
                        v
                    }
                }
                n => {
                    let lno = v & (1u128 << (w - n)) != 0;
                    let v = if lno == sign { !v & mask } else { v };
                    force_top(v, n)
                }
            }
        }
    };
    from_bits(bits, w, dst.is_signed())
}

/// Reads the low `w` bits of `v` as a raw value of the given signedness.
#[inline]
fn from_bits(v: u128, w: u32, signed: bool) -> i128 {
    if signed {
        ((v << (128 - w)) as i128) >> (128 - w)
    } else {
        v as i128
    }
}

/// Converts the exact value `raw × 2^−f_src` into `dst` with its quantization and overflow modes.
#[inline]
pub(crate) fn requantize(raw: i128, f_src: i64, dst: &QType) -> i128 {
    let shift = i64::from(dst.frac_bits()) - f_src;
    let qz = quantize(raw, shift, dst.width(), dst.quant());
    saturate(&qz, dst)
}

/// Whether the exact value `raw × 2^−f_src` lies within `dst`'s range. For an integer bound b,
/// x ≥ b ⇔ floor(x) ≥ b, and x ≤ b ⇔ floor(−x) ≥ −b, so two truncations decide it exactly.
pub(crate) fn fits(raw: i128, f_src: i64, dst: &QType) -> bool {
    let shift = i64::from(dst.frac_bits()) - f_src;
    let floor_at_least = |v: i128, bound: i128| {
        quantize(v, shift, dst.width(), Quant::Trn)
            .exact
            .map_or(v > 0, |t| t >= bound)
    };
    // −raw only overflows for i128::MIN, which is negative and so below any max (max >= 0).
    let below_max = raw
        .checked_neg()
        .is_none_or(|neg| floor_at_least(neg, -dst.max_raw()));
    below_max && floor_at_least(raw, dst.min_raw())
}

/// A conversion plan between two fixed-point types (precomputes the alignment), for converting
/// many raw values: `ap_fixed<...> dst = src;` for each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Converter {
    src: QType,
    dst: QType,
    shift: i64,
}

impl Converter {
    /// A plan converting raw values of `src` into `dst` (with `dst`'s modes).
    pub fn new(src: &QType, dst: &QType) -> Converter {
        Converter {
            src: *src,
            dst: *dst,
            shift: i64::from(dst.frac_bits()) - i64::from(src.frac_bits()),
        }
    }

    /// The source type.
    pub fn src(&self) -> &QType {
        &self.src
    }

    /// The destination type.
    pub fn dst(&self) -> &QType {
        &self.dst
    }

    /// Converts one raw source value; errors if `raw` is not a raw value of the source type.
    #[inline]
    pub fn convert_raw(&self, raw: i128) -> Result<i128> {
        if !self.src.contains_raw(raw) {
            return Err(QfxError::RawOutOfRange {
                raw,
                ty: self.src.to_string(),
                min: self.src.min_raw(),
                max: self.src.max_raw(),
            });
        }
        Ok(self.convert_raw_in_range(raw))
    }

    /// Converts a raw value already known to be in the source range (garbage in, garbage out
    /// otherwise, but never a panic).
    #[inline]
    pub fn convert_raw_in_range(&self, raw: i128) -> i128 {
        let qz = quantize(raw, self.shift, self.dst.width(), self.dst.quant());
        saturate(&qz, &self.dst)
    }
}

/// Converts a raw value of `src` into `dst` (with `dst`'s modes).
pub fn convert_raw(raw: i128, src: &QType, dst: &QType) -> Result<i128> {
    Converter::new(src, dst).convert_raw(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> QType {
        s.parse().unwrap()
    }

    #[test]
    fn hls_user_guide_examples() {
        // ap_fixed<3,2,AP_RND>: 1.25 -> 1.5, -1.25 -> -1.0 (source with 2 fractional bits).
        let src = ty("ap_fixed<8,4>");
        let dst = ty("ap_fixed<3,2,AP_RND>");
        assert_eq!(convert_raw(20, &src, &dst).unwrap(), 3);
        assert_eq!(convert_raw(-20, &src, &dst).unwrap(), -2);
        // ap_fixed<4,4,AP_RND,AP_SAT>: 19 -> 7, -19 -> -8; AP_SAT_SYM: -19 -> -7.
        let src = ty("ap_fixed<8,8>");
        assert_eq!(
            convert_raw(19, &src, &ty("ap_fixed<4,4,AP_RND,AP_SAT>")).unwrap(),
            7
        );
        assert_eq!(
            convert_raw(-19, &src, &ty("ap_fixed<4,4,AP_RND,AP_SAT>")).unwrap(),
            -8
        );
        assert_eq!(
            convert_raw(-19, &src, &ty("ap_fixed<4,4,AP_RND,AP_SAT_SYM>")).unwrap(),
            -7
        );
    }

    #[test]
    fn out_of_range_source_is_an_error() {
        let err = convert_raw(128, &ty("ap_fixed<8,4>"), &ty("ap_fixed<4,2>")).unwrap_err();
        assert!(matches!(err, QfxError::RawOutOfRange { raw: 128, .. }));
    }

    #[test]
    fn extreme_shifts_do_not_panic() {
        let wide = QType::new_wide(128, 0, true).unwrap();
        let tiny = ty("ap_fixed<4,-2000,AP_RND,AP_SAT>");
        let huge = ty("ap_fixed<4,2000,AP_RND,AP_SAT>");
        for raw in [i128::MIN, -1, 0, 1, i128::MAX] {
            let _ = convert_raw(raw, &wide, &tiny).unwrap();
            let _ = convert_raw(raw, &wide, &huge).unwrap();
            let _ = convert_raw(
                raw,
                &tiny.with_modes(Quant::Rnd, Overflow::WrapSm, 2).unwrap(),
                &wide,
            );
        }
        assert_eq!(convert_raw(1, &wide, &tiny).unwrap(), 7);
        assert_eq!(convert_raw(-1, &wide, &tiny).unwrap(), -8);
        assert_eq!(convert_raw(i128::MAX, &wide, &huge).unwrap(), 0);
    }
}
