//! Fitting helpers shared by the templates' LUT/FF calibrations against Yosys
//! (`systolic::calibration`, `moe::calibration`): linear least squares and the error figures
//! the reports and tests quote.
//!
//! ```
//! use accelforge_templates::calibrate::{least_squares, mape};
//!
//! // y = 1 + 2·x exactly.
//! let rows = [vec![1.0], vec![2.0], vec![3.0]];
//! let c = least_squares(&rows, &[3.0, 5.0, 7.0]).unwrap();
//! assert!((c[0] - 1.0).abs() < 1e-9 && (c[1] - 2.0).abs() < 1e-9);
//! assert_eq!(mape(&[(110, 100), (90, 100)]), 0.1);
//! ```

/// Least-squares fit of `y ≈ c0 + Σ c_i·x_i` over `rows` (one row of features per sample):
/// returns `[c0, c1, …]`. SVD, so collinear or under-determined grids still give the
/// minimum-norm answer; `None` when the rows are ragged or empty.
pub fn least_squares(rows: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let n = rows.first()?.len();
    if rows.len() != y.len() || rows.iter().any(|r| r.len() != n) {
        return None;
    }
    let a =
        nalgebra::DMatrix::from_fn(
            rows.len(),
            n + 1,
            |i, j| {
                if j == 0 { 1.0 } else { rows[i][j - 1] }
            },
        );
    let b = nalgebra::DVector::from_column_slice(y);
    let x = a.svd(true, true).solve(&b, 1e-9).ok()?;
    Some(x.iter().copied().collect())
}

/// `c0 + Σ c_i·x_i`, rounded and clamped at 0 (a resource count is never negative).
pub fn apply(c: &[f64], x: &[f64]) -> u64 {
    let v = c.first().copied().unwrap_or(0.0)
        + c.iter().skip(1).zip(x).map(|(ci, xi)| ci * xi).sum::<f64>();
    v.round().max(0.0) as u64
}

/// Mean absolute percentage error of `(predicted, measured)` pairs, as a fraction.
pub fn mape(pairs: &[(u64, u64)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs
        .iter()
        .map(|&(p, m)| (p as f64 - m as f64).abs() / (m.max(1) as f64))
        .sum::<f64>()
        / pairs.len() as f64
}

/// Signed error of a prediction in percent of the measurement.
pub fn error_pct(predicted: u64, measured: u64) -> f64 {
    (predicted as f64 - measured as f64) / measured.max(1) as f64 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_an_exact_plane_and_rejects_ragged_rows() {
        let rows: Vec<Vec<f64>> = (0..6)
            .map(|i| vec![f64::from(i), f64::from(i * i % 5)])
            .collect();
        let y: Vec<f64> = rows.iter().map(|r| 3.0 - 2.0 * r[0] + 0.5 * r[1]).collect();
        let c = least_squares(&rows, &y).unwrap();
        for (got, want) in c.iter().zip([3.0, -2.0, 0.5]) {
            assert!((got - want).abs() < 1e-9, "{c:?}");
        }
        assert_eq!(apply(&c, &[4.0, 1.0]), 0); // -4.5 clamps to 0
        assert_eq!(apply(&c, &[0.0, 2.0]), 4);
        assert!(least_squares(&[vec![1.0], vec![1.0, 2.0]], &[1.0, 2.0]).is_none());
        assert!(least_squares(&[], &[]).is_none());
    }

    #[test]
    fn mape_and_error_pct() {
        assert_eq!(mape(&[]), 0.0);
        assert!((mape(&[(120, 100), (100, 100)]) - 0.1).abs() < 1e-12);
        assert!((error_pct(80, 100) + 20.0).abs() < 1e-12);
    }
}
