//! Fixed-point values (`Fx`) and exact arithmetic with the HLS result types.

use std::fmt;

use super::convert::{Converter, requantize};
use super::error::{QfxError, Result};
use super::exact::{decompose_f64, dyadic_to_decimal, dyadic_to_f64};
use super::types::{MAX_INT_BITS, MAX_WIDE_UNSIGNED_WIDTH, MAX_WIDE_WIDTH, MIN_INT_BITS, QType};

/// A fixed-point value: a raw integer of a [`QType`] (value = raw × 2^−F). The raw value is
/// always within the type's raw range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fx {
    raw: i128,
    ty: QType,
}

impl Fx {
    /// A value from its raw integer; errors if `raw` is outside the type's raw range.
    pub fn from_raw(raw: i128, ty: &QType) -> Result<Fx> {
        if !ty.contains_raw(raw) {
            return Err(QfxError::RawOutOfRange {
                raw,
                ty: ty.to_string(),
                min: ty.min_raw(),
                max: ty.max_raw(),
            });
        }
        Ok(Fx { raw, ty: *ty })
    }

    /// Zero of the given type.
    pub fn zero(ty: &QType) -> Fx {
        Fx { raw: 0, ty: *ty }
    }

    /// The exact value of `x` converted with the type's quantization and overflow modes, as
    /// `ap_fixed<...> v = x;` does. Exact: the `f64` is decomposed from its bit pattern, no float
    /// arithmetic is involved. NaN and ±∞ are errors (the headers give no meaningful value).
    pub fn from_f64(x: f64, ty: &QType) -> Result<Fx> {
        let (m, f) = decompose_f64(x).ok_or_else(|| QfxError::NonFinite {
            value: x,
            ty: ty.to_string(),
        })?;
        Ok(Fx {
            raw: requantize(m, f, ty),
            ty: *ty,
        })
    }

    /// [`Fx::from_f64`] for an `f32` (widening to `f64` is exact).
    pub fn from_f32(x: f32, ty: &QType) -> Result<Fx> {
        Fx::from_f64(f64::from(x), ty)
    }

    /// The raw integer.
    pub fn raw(&self) -> i128 {
        self.raw
    }

    /// The type.
    pub fn ty(&self) -> &QType {
        &self.ty
    }

    /// The value as `f64` (exact when the raw value has at most 53 significant bits and the
    /// result is within the `f64` range; otherwise rounded to nearest).
    pub fn to_f64(&self) -> f64 {
        dyadic_to_f64(self.raw, self.ty.frac_bits().into())
    }

    /// Conversion to an integer, truncating toward zero as `ap_fixed::to_int` does (saturating
    /// at the `i128` limits for types whose integer part does not fit).
    pub fn to_int(&self) -> i128 {
        let f = self.ty.frac_bits();
        if f <= 0 {
            let s = f.unsigned_abs();
            let saturated = if self.raw < 0 { i128::MIN } else { i128::MAX };
            if self.raw == 0 {
                return 0;
            }
            if s >= 128 {
                return saturated;
            }
            let v = self.raw << s;
            return if v >> s == self.raw { v } else { saturated };
        }
        // Shift the magnitude so the result truncates toward zero, not toward −∞.
        let m = self.raw.unsigned_abs() >> f.unsigned_abs().min(127);
        if self.raw < 0 {
            -(m as i128)
        } else {
            m as i128
        }
    }

    /// Converts into `dst` with `dst`'s quantization and overflow modes (assignment / cast).
    pub fn convert(&self, dst: &QType) -> Fx {
        Fx {
            raw: Converter::new(&self.ty, dst).convert_raw_in_range(self.raw),
            ty: *dst,
        }
    }

    /// The exact product, of type [`product_type`]; errors only if that type would exceed the
    /// 128-bit limit of exact intermediates.
    pub fn mul(&self, rhs: &Fx) -> Result<Fx> {
        let ty = product_type(&self.ty, &rhs.ty)?;
        // Cannot overflow: the product type was sized to hold every product exactly.
        let raw = self.raw.wrapping_mul(rhs.raw);
        Ok(Fx { raw, ty })
    }

    /// The exact sum, of type [`sum_type`].
    pub fn add(&self, rhs: &Fx) -> Result<Fx> {
        let ty = sum_type(&self.ty, &rhs.ty)?;
        let (a, b) = self.aligned(rhs, &ty);
        Ok(Fx {
            raw: a.wrapping_add(b),
            ty,
        })
    }

    /// The exact difference, of type [`difference_type`].
    pub fn sub(&self, rhs: &Fx) -> Result<Fx> {
        let ty = difference_type(&self.ty, &rhs.ty)?;
        let (a, b) = self.aligned(rhs, &ty);
        Ok(Fx {
            raw: a.wrapping_sub(b),
            ty,
        })
    }

    /// Both raw values scaled to the result type's LSB. The result type holds both operands, so
    /// the shifts lose nothing.
    fn aligned(&self, rhs: &Fx, ty: &QType) -> (i128, i128) {
        let f = ty.frac_bits();
        let a = self.raw << (f - self.ty.frac_bits()) as u32;
        let b = rhs.raw << (f - rhs.ty.frac_bits()) as u32;
        (a, b)
    }
}

impl fmt::Display for Fx {
    /// The exact decimal value (no rounding, no exponent).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&dyadic_to_decimal(self.raw, self.ty.frac_bits().into()))
    }
}

fn result_type(
    operation: &'static str,
    a: &QType,
    b: &QType,
    width: i64,
    int_bits: i64,
    signed: bool,
) -> Result<QType> {
    let max = if signed {
        MAX_WIDE_WIDTH
    } else {
        MAX_WIDE_UNSIGNED_WIDTH
    };
    if width > i64::from(max) {
        return Err(QfxError::ResultTooWide {
            operation,
            lhs: a.to_string(),
            rhs: b.to_string(),
            width: width.unsigned_abs(),
            max,
        });
    }
    if int_bits < i64::from(MIN_INT_BITS) || int_bits > i64::from(MAX_INT_BITS) {
        return Err(QfxError::ResultIntBitsOutOfRange {
            operation,
            lhs: a.to_string(),
            rhs: b.to_string(),
            int_bits,
        });
    }
    // Widths of results are at least 2 and at most 128 here, and I is in range, so this
    // cannot fail; map any failure to the same error rather than panicking.
    QType::new_wide(width as u32, int_bits as i32, signed).map_err(|_| QfxError::ResultTooWide {
        operation,
        lhs: a.to_string(),
        rhs: b.to_string(),
        width: width.unsigned_abs(),
        max,
    })
}

/// HLS product type: W1+W2 bits, I1+I2 integer bits, signed if either operand is; default modes.
pub fn product_type(a: &QType, b: &QType) -> Result<QType> {
    result_type(
        "product",
        a,
        b,
        i64::from(a.width()) + i64::from(b.width()),
        i64::from(a.int_bits()) + i64::from(b.int_bits()),
        a.is_signed() || b.is_signed(),
    )
}

/// Integer and fractional bits of the HLS sum/difference type.
fn additive_bits(a: &QType, b: &QType) -> (i64, i64) {
    let ia = i64::from(a.int_bits()) + i64::from(b.is_signed() && !a.is_signed());
    let ib = i64::from(b.int_bits()) + i64::from(a.is_signed() && !b.is_signed());
    let f = i64::from(a.frac_bits()).max(i64::from(b.frac_bits()));
    (ia.max(ib) + 1, f)
}

/// HLS sum type: max(I)+1 integer bits, max(F) fractional bits, signed if either operand is;
/// default modes.
///
/// Mixed signedness: as in Vitis HLS, the extra bit goes to the *unsigned* operand's integer part
/// before taking the maximum (it needs one more bit to be held in a signed type), so the result
/// has max(I_u + 1, I_s) + 1 integer bits — the spec's "one more bit" whenever the unsigned
/// operand has at least as many integer bits, and no wasted bit when the signed one dominates.
/// Either way every sum is exact.
pub fn sum_type(a: &QType, b: &QType) -> Result<QType> {
    let (i, f) = additive_bits(a, b);
    result_type("sum", a, b, i + f, i, a.is_signed() || b.is_signed())
}

/// HLS difference type: like [`sum_type`] but always signed.
pub fn difference_type(a: &QType, b: &QType) -> Result<QType> {
    let (i, f) = additive_bits(a, b);
    result_type("difference", a, b, i + f, i, true)
}

/// The exact accumulator for a dot product of `k` terms of `a × b`: W1+W2+⌈log2 K⌉ bits and
/// I1+I2+⌈log2 K⌉ integer bits, signed if either operand is. No sum of `k` such products can
/// overflow it.
pub fn acc_type_for_dot(a: &QType, b: &QType, k: u64) -> Result<QType> {
    if k == 0 {
        return Err(QfxError::EmptyDot {
            lhs: a.to_string(),
            rhs: b.to_string(),
        });
    }
    let growth = i64::from(u64::BITS - (k - 1).leading_zeros());
    result_type(
        "dot-product accumulator",
        a,
        b,
        i64::from(a.width()) + i64::from(b.width()) + growth,
        i64::from(a.int_bits()) + i64::from(b.int_bits()) + growth,
        a.is_signed() || b.is_signed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> QType {
        s.parse().unwrap()
    }

    #[test]
    fn result_types_follow_hls() {
        let a = ty("ap_fixed<16,6>");
        let b = ty("ap_ufixed<8,2>");
        assert_eq!(
            product_type(&a, &b).unwrap(),
            QType::new_wide(24, 8, true).unwrap()
        );
        // I = max(6, 2 + 1) + 1, F = max(10, 6).
        assert_eq!(
            sum_type(&a, &b).unwrap(),
            QType::new_wide(17, 7, true).unwrap()
        );
        let c = ty("ap_ufixed<8,8>");
        let d = ty("ap_fixed<4,4>");
        assert_eq!(
            sum_type(&c, &d).unwrap(),
            QType::new_wide(10, 10, true).unwrap()
        );
        assert_eq!(
            difference_type(&c, &c).unwrap(),
            QType::new_wide(9, 9, true).unwrap()
        );
        assert_eq!(
            acc_type_for_dot(&a, &a, 1).unwrap(),
            QType::new_wide(32, 12, true).unwrap()
        );
        assert_eq!(
            acc_type_for_dot(&a, &a, 1000).unwrap(),
            QType::new_wide(42, 22, true).unwrap()
        );
        assert_eq!(
            acc_type_for_dot(&a, &a, 1024).unwrap(),
            QType::new_wide(42, 22, true).unwrap()
        );
        assert!(acc_type_for_dot(&a, &a, 0).is_err());
        let u64t = ty("ap_ufixed<64,64>");
        assert!(matches!(
            product_type(&u64t, &u64t),
            Err(QfxError::ResultTooWide {
                width: 128,
                max: 127,
                ..
            })
        ));
    }

    #[test]
    fn extreme_products_are_exact() {
        let s = ty("ap_fixed<64,64>");
        let min = Fx::from_raw(s.min_raw(), &s).unwrap();
        let p = min.mul(&min).unwrap();
        assert_eq!(p.raw(), 1i128 << 126);
        assert_eq!(p.ty().width(), 128);
        let sum = min.add(&min).unwrap();
        assert_eq!(sum.raw(), -(1i128 << 64));
        let u = ty("ap_ufixed<63,63>");
        let umax = Fx::from_raw(u.max_raw(), &u).unwrap();
        assert_eq!(umax.mul(&umax).unwrap().raw(), u.max_raw() * u.max_raw());
        assert_eq!(min.sub(&umax).unwrap().raw(), s.min_raw() - u.max_raw());
    }

    #[test]
    fn to_int_truncates_toward_zero() {
        let t = ty("ap_fixed<8,4>");
        assert_eq!(Fx::from_f64(-2.75, &t).unwrap().to_int(), -2);
        assert_eq!(Fx::from_f64(2.75, &t).unwrap().to_int(), 2);
        let big = ty("ap_fixed<4,8>");
        assert_eq!(Fx::from_f64(-32.0, &big).unwrap().to_int(), -32);
    }

    #[test]
    fn from_f64_uses_destination_modes() {
        let t = ty("ap_fixed<3,2,AP_RND>");
        assert_eq!(Fx::from_f64(1.25, &t).unwrap().to_f64(), 1.5);
        assert_eq!(Fx::from_f64(-1.25, &t).unwrap().to_f64(), -1.0);
        let sat = ty("ap_fixed<4,4,AP_RND,AP_SAT_SYM>");
        assert_eq!(Fx::from_f64(-19.0, &sat).unwrap().to_f64(), -7.0);
        assert_eq!(Fx::from_f64(-0.0, &sat).unwrap().raw(), 0);
        assert!(Fx::from_f64(f64::NAN, &sat).is_err());
        // 0.1 × 256 = 25.6 (the f64 is slightly above 0.1): nearest is 26.
        let t = ty("ap_ufixed<8,0,AP_RND_CONV>");
        assert_eq!(Fx::from_f64(0.1, &t).unwrap().raw(), 26);
    }
}
