//! Post-training calibration: choosing the integer bits I of a W-bit type from data.
//!
//! Calibration quantizes with `AP_RND` + `AP_SAT` (round to nearest, clamp): that is what a
//! deployment would configure for activations and weights, and it makes "quantization error"
//! mean distance to the nearest representable value rather than wrap-around garbage.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayBase, Data, Dimension};

use super::convert::fits;
use super::error::{QfxError, Result};
use super::exact::decompose_f64;
use super::tensor::Sample;
use super::types::{MAX_INT_BITS, MIN_INT_BITS, Overflow, QType, Quant};
use super::value::Fx;

/// How to choose I.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMethod {
    /// The smallest I whose range holds every data value (no clipping).
    Range,
    /// The I minimising the mean squared quantization error (trades clipping for resolution).
    Mse,
}

impl fmt::Display for CalibrationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CalibrationMethod::Range => "range",
            CalibrationMethod::Mse => "mse",
        })
    }
}

impl FromStr for CalibrationMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "range" => Ok(CalibrationMethod::Range),
            "mse" => Ok(CalibrationMethod::Mse),
            other => Err(format!(
                "unknown calibration method `{other}`: expected `range` or `mse`"
            )),
        }
    }
}

/// The outcome of a calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// The method used.
    pub method: CalibrationMethod,
    /// The chosen integer bits I.
    pub int_bits: i32,
    /// The chosen type: `ap_(u)fixed<W, I, AP_RND, AP_SAT>`.
    pub ty: QType,
    /// Mean squared error of the data quantized into `ty`.
    pub mse: f64,
}

/// The type calibration quantizes with: W, I, signedness, `AP_RND`, `AP_SAT`.
pub fn calibration_type(width: u32, int_bits: i32, signed: bool) -> Result<QType> {
    QType::new(width, int_bits, signed)?.with_modes(Quant::Rnd, Overflow::Sat, 0)
}

fn to_f64_checked<A: Sample>(data: impl Iterator<Item = A>) -> Result<Vec<f64>> {
    data.enumerate()
        .map(|(index, x)| {
            let v = x.to_f64();
            if v.is_finite() {
                Ok(v)
            } else {
                Err(QfxError::NonFiniteData { index, value: v })
            }
        })
        .collect()
}

/// Mean squared error of `data` quantized into `ty` (with `ty`'s modes). `data` must be finite
/// and non-empty for the result to mean anything (NaN otherwise).
pub fn quantization_mse(data: &[f64], ty: &QType) -> f64 {
    let sum: f64 = data
        .iter()
        .map(|&x| {
            let q = Fx::from_f64(x, ty).map_or(f64::NAN, |v| v.to_f64());
            (x - q) * (x - q)
        })
        .sum();
    sum / data.len() as f64
}

/// The smallest I such that every value of `data` lies within the range of a W-bit type of the
/// given signedness. For an unsigned type only the positive values constrain I (negative ones
/// saturate to 0 whatever I is); data that is all zero (or, unsigned, all non-positive) gives
/// I = 0, since any I represents zero exactly.
pub fn range_int_bits(data: &[f64], width: u32, signed: bool) -> Result<i32> {
    let hi = data.iter().copied().fold(0.0f64, f64::max);
    let lo = if signed {
        data.iter().copied().fold(0.0f64, f64::min)
    } else {
        0.0
    };
    let max_abs = hi.max(-lo);
    let Some((m, f)) = decompose_f64(max_abs) else {
        return Err(QfxError::CalibrationOutOfRange {
            max_abs,
            min: MIN_INT_BITS,
            max: MAX_INT_BITS,
        });
    };
    if m == 0 {
        return Ok(0);
    }
    let holds = |i: i32| -> Result<bool> {
        let ty = QType::new(width, i, signed)?;
        let (hm, hf) = decompose_f64(hi).unwrap_or((0, 0));
        let (lm, lf) = decompose_f64(lo).unwrap_or((0, 0));
        Ok(fits(hm, hf, &ty) && fits(lm, lf, &ty))
    };
    // floor(log2 max_abs); no type with I <= that exponent holds max_abs, so start just above.
    let exponent = i64::from(127 - m.unsigned_abs().leading_zeros()) - f;
    let start = (exponent + 1).clamp(i64::from(MIN_INT_BITS), i64::from(MAX_INT_BITS)) as i32;
    let mut i = start;
    while i > MIN_INT_BITS && holds(i - 1)? {
        i -= 1;
    }
    while !holds(i)? {
        if i >= MAX_INT_BITS {
            return Err(QfxError::CalibrationOutOfRange {
                max_abs,
                min: MIN_INT_BITS,
                max: MAX_INT_BITS,
            });
        }
        i += 1;
    }
    Ok(i)
}

/// Calibrates I for a W-bit type from a slice of samples.
///
/// * `Range`: [`range_int_bits`], reporting the MSE achieved with it.
/// * `Mse`: searches I from `I_range − W` to `I_range` and keeps the smallest MSE (ties go to the
///   larger I, which clips less on unseen data). Larger I than `I_range` never helps: with no
///   clipping a coarser grid cannot be closer. Because `I_range` is itself a candidate, `Mse`
///   never reports a worse error than `Range` on the same data.
pub fn calibrate<A: Sample>(
    data: &[A],
    width: u32,
    signed: bool,
    method: CalibrationMethod,
) -> Result<Calibration> {
    calibrate_values(to_f64_checked(data.iter().copied())?, width, signed, method)
}

/// [`calibrate`] for an `ndarray` of any shape (elements in logical row-major order).
pub fn calibrate_array<A, S, D>(
    data: &ArrayBase<S, D>,
    width: u32,
    signed: bool,
    method: CalibrationMethod,
) -> Result<Calibration>
where
    A: Sample,
    S: Data<Elem = A>,
    D: Dimension,
{
    calibrate_values(to_f64_checked(data.iter().copied())?, width, signed, method)
}

fn calibrate_values(
    data: Vec<f64>,
    width: u32,
    signed: bool,
    method: CalibrationMethod,
) -> Result<Calibration> {
    // Validate W (and signedness) before looking at the data, for a clear error.
    calibration_type(width, 0, signed)?;
    if data.is_empty() {
        return Err(QfxError::EmptyData {
            what: format!("a {width}-bit type"),
        });
    }
    let i_range = range_int_bits(&data, width, signed)?;
    let range_ty = calibration_type(width, i_range, signed)?;
    let mut best = Calibration {
        method,
        int_bits: i_range,
        ty: range_ty,
        mse: quantization_mse(&data, &range_ty),
    };
    if method == CalibrationMethod::Mse {
        let lowest = (i64::from(i_range) - i64::from(width)).max(i64::from(MIN_INT_BITS)) as i32;
        for i in (lowest..i_range).rev() {
            let ty = calibration_type(width, i, signed)?;
            let mse = quantization_mse(&data, &ty);
            if mse < best.mse {
                best = Calibration {
                    method,
                    int_bits: i,
                    ty,
                    mse,
                };
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_picks_the_smallest_holding_type() {
        // ap_fixed<8,1> holds [-1, 0.9921875]: -1 fits, +1 does not.
        assert_eq!(range_int_bits(&[-1.0, 0.5], 8, true).unwrap(), 1);
        assert_eq!(range_int_bits(&[1.0, 0.5], 8, true).unwrap(), 2);
        assert_eq!(range_int_bits(&[0.99], 8, true).unwrap(), 1);
        assert_eq!(range_int_bits(&[0.9921875], 8, true).unwrap(), 1);
        assert_eq!(range_int_bits(&[0.99219], 8, true).unwrap(), 2);
        assert_eq!(range_int_bits(&[1.0], 8, false).unwrap(), 1);
        assert_eq!(range_int_bits(&[0.2], 8, false).unwrap(), -2);
        assert_eq!(range_int_bits(&[-3.0, 0.0], 8, false).unwrap(), 0);
        assert_eq!(range_int_bits(&[0.0, -0.0], 8, true).unwrap(), 0);
        assert_eq!(range_int_bits(&[1e300], 16, true).unwrap(), 998);
    }

    #[test]
    fn mse_clips_outliers_when_it_pays() {
        let mut data: Vec<f64> = (0..20000).map(|i| f64::from(i % 17) / 17.0 - 0.5).collect();
        data.push(6.0);
        let r = calibrate(&data, 6, true, CalibrationMethod::Range).unwrap();
        let m = calibrate(&data, 6, true, CalibrationMethod::Mse).unwrap();
        assert_eq!(r.int_bits, 4);
        assert!(m.int_bits < r.int_bits);
        assert!(m.mse < r.mse);
        assert_eq!(
            m.ty.to_string(),
            format!("ap_fixed<6,{},AP_RND,AP_SAT>", m.int_bits)
        );
    }

    #[test]
    fn bad_data_is_rejected() {
        assert!(matches!(
            calibrate::<f64>(&[], 8, true, CalibrationMethod::Range),
            Err(QfxError::EmptyData { .. })
        ));
        assert!(matches!(
            calibrate(&[1.0f32, f32::INFINITY], 8, true, CalibrationMethod::Mse),
            Err(QfxError::NonFiniteData { index: 1, .. })
        ));
        assert!(calibrate(&[1.0], 0, true, CalibrationMethod::Mse).is_err());
        assert!(calibrate(&[1.0], 65, true, CalibrationMethod::Mse).is_err());
    }
}
