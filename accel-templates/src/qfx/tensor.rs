//! Whole-tensor quantize / dequantize with `ndarray`.

use ndarray::{Array, ArrayBase, Data, Dimension};

use super::error::{QfxError, Result};
use super::types::QType;
use super::value::Fx;

/// A float element type whose conversion to `f64` is exact (`f32`, `f64`).
pub trait Sample: Copy {
    /// The element as `f64` (exact).
    fn to_f64(self) -> f64;
}

impl Sample for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

impl Sample for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// Fails on the first NaN/∞ (row-major order), naming its flat index.
fn check_finite<A, S, D>(data: &ArrayBase<S, D>, ty: &QType) -> Result<()>
where
    A: Sample,
    S: Data<Elem = A>,
    D: Dimension,
{
    match data.iter().position(|x| !x.to_f64().is_finite()) {
        None => Ok(()),
        Some(index) => Err(QfxError::NonFiniteElement {
            index,
            value: data.iter().nth(index).map_or(f64::NAN, |x| x.to_f64()),
            ty: ty.to_string(),
        }),
    }
}

/// Quantizes every element into `ty` (with its modes), returning raw integers of the same shape.
pub fn quantize_array<A, S, D>(data: &ArrayBase<S, D>, ty: &QType) -> Result<Array<i128, D>>
where
    A: Sample,
    S: Data<Elem = A>,
    D: Dimension,
{
    check_finite(data, ty)?;
    // Finite values always convert, so the fallback is never taken.
    Ok(data.map(|x| Fx::from_f64(x.to_f64(), ty).map_or(0, |v| v.raw())))
}

/// The values of raw integers of `ty`, as `f64`; errors on a raw value outside `ty`'s range.
pub fn dequantize_array<S, D>(raw: &ArrayBase<S, D>, ty: &QType) -> Result<Array<f64, D>>
where
    S: Data<Elem = i128>,
    D: Dimension,
{
    if let Some(&bad) = raw.iter().find(|r| !ty.contains_raw(**r)) {
        return Err(QfxError::RawOutOfRange {
            raw: bad,
            ty: ty.to_string(),
            min: ty.min_raw(),
            max: ty.max_raw(),
        });
    }
    let f = i64::from(ty.frac_bits());
    Ok(raw.map(|&r| super::exact::dyadic_to_f64(r, f)))
}

/// Quantize then dequantize ("fake quantization"): what the hardware would compute, as floats.
pub fn fake_quantize_array<A, S, D>(data: &ArrayBase<S, D>, ty: &QType) -> Result<Array<f64, D>>
where
    A: Sample,
    S: Data<Elem = A>,
    D: Dimension,
{
    check_finite(data, ty)?;
    Ok(data.map(|x| Fx::from_f64(x.to_f64(), ty).map_or(0.0, |v| v.to_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn round_trip_keeps_shape_and_values() {
        let ty: QType = "ap_fixed<8,3,AP_RND,AP_SAT>".parse().unwrap();
        let x = array![[0.5f32, -1.25], [100.0, -100.0], [0.01, 3.96875]];
        let q = quantize_array(&x, &ty).unwrap();
        assert_eq!(q, array![[16i128, -40], [127, -128], [0, 127]]);
        let back = dequantize_array(&q, &ty).unwrap();
        assert_eq!(back, array![[0.5, -1.25], [3.96875, -4.0], [0.0, 3.96875]]);
        assert_eq!(fake_quantize_array(&x, &ty).unwrap(), back);
    }

    #[test]
    fn non_finite_elements_are_named() {
        let ty: QType = "ap_fixed<8,3>".parse().unwrap();
        let x = array![1.0, 2.0, f64::NAN];
        let err = quantize_array(&x, &ty).unwrap_err();
        assert!(matches!(err, QfxError::NonFiniteElement { index: 2, .. }));
        assert!(dequantize_array(&array![1000i128], &ty).is_err());
    }
}
