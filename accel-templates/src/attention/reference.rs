//! The float64 reference of one head, `softmax(Q·Kᵀ/√d)·V` on the dequantized operands, and
//! the error of the fixed-point kernel against it.

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use super::Result;
use super::golden;
use super::params::Resolved;
use super::stream::AttentionData;

/// `softmax(Q·Kᵀ/√d)·V` in f64 (max-subtracted, two passes).
pub fn head_f64(q: ArrayView2<f64>, k: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
    let (t, d) = q.dim();
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = Array2::zeros((t, v.ncols()));
    for i in 0..t {
        let s: Vec<f64> = (0..k.nrows())
            .map(|j| q.row(i).dot(&k.row(j)) * scale)
            .collect();
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let l: f64 = e.iter().sum();
        for (j, w) in e.iter().enumerate() {
            let row = v.row(j);
            for c in 0..v.ncols() {
                out[(i, c)] += w / l * row[c];
            }
        }
    }
    out
}

/// Error of the fixed-point kernel against the f64 reference, in output units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorStats {
    /// Largest absolute error.
    pub max_abs: f64,
    /// Mean absolute error.
    pub mean_abs: f64,
    /// Largest magnitude of the reference outputs (for scale).
    pub max_ref: f64,
    /// One least-significant bit of the output type.
    pub out_lsb: f64,
}

/// Runs one head on seeded random operands (uniform over the Q/K/V type, scaled by `spread`
/// in (0, 1] so scores stay in the range real attention sees) through the golden model and
/// the f64 reference, and returns the error.
pub fn random_head_error(r: &Resolved, seed: u64, spread: f64) -> Result<ErrorStats> {
    let data = AttentionData::random(r, seed, spread);
    let [q, k, v] = &data.heads[0];
    let out = golden::head(r, q.view(), k.view(), v.view())?;
    let unit = |x: &Array2<i64>, f: i32| x.mapv(|v| v as f64 * (-f as f64).exp2());
    let f = r.tqkv.frac_bits();
    let want = head_f64(unit(q, f).view(), unit(k, f).view(), unit(v, f).view());
    let got = unit(&out, r.tout.frac_bits());
    let err = (&got - &want).mapv(f64::abs);
    Ok(ErrorStats {
        max_abs: err.iter().copied().fold(0.0, f64::max),
        mean_abs: err.mean().unwrap_or(0.0),
        max_ref: want.iter().map(|x| x.abs()).fold(0.0, f64::max),
        out_lsb: (-r.tout.frac_bits() as f64).exp2(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::AttentionParams;

    /// The default types against float64 on random heads of ViT-like shapes (measured: max
    /// 0.0045 and mean 0.0006 on outputs up to 4.0, i.e. about 2 LSB of ap_fixed<16,4> on
    /// average); one token is exact (its weight is exactly one).
    #[test]
    fn default_types_stay_close_to_float() {
        for (d, t) in [(16u32, 1u32), (16, 7), (64, 64), (64, 197), (32, 197)] {
            for spread in [0.25, 0.5, 1.0] {
                let r = AttentionParams {
                    head_dim: d,
                    tokens: t,
                    ..AttentionParams::default()
                }
                .resolve()
                .unwrap();
                let e = random_head_error(&r, 1, spread).unwrap();
                if t == 1 {
                    assert_eq!(e.max_abs, 0.0, "d {d}: {e:?}");
                }
                assert!(e.max_abs <= 0.01, "d {d} t {t} spread {spread}: {e:?}");
                assert!(
                    e.mean_abs <= 4.0 * e.out_lsb,
                    "d {d} t {t} spread {spread}: {e:?}"
                );
            }
        }
    }

    /// A coarser exp2 table is measurably worse: the error bound above is not vacuous.
    #[test]
    fn a_coarse_exp_table_shows_in_the_error() {
        let fine = AttentionParams::default().resolve().unwrap();
        let coarse = AttentionParams {
            exp_table_bits: 2,
            ..AttentionParams::default()
        }
        .resolve()
        .unwrap();
        let (a, b) = (
            random_head_error(&fine, 3, 1.0).unwrap(),
            random_head_error(&coarse, 3, 1.0).unwrap(),
        );
        assert!(b.mean_abs > 4.0 * a.mean_abs, "{a:?} vs {b:?}");
    }
}
