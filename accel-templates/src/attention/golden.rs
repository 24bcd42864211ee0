//! The bit-exact golden model of the streaming attention kernel (see the module docs of
//! [`super`] for the arithmetic, which this file follows line by line).

use ndarray::{Array2, ArrayView2};

use super::params::Resolved;
use super::{AttentionError, Result};

/// A score: `dot · C`, rounded half up to FS fractional bits, saturated to WS bits.
pub fn score(r: &Resolved, dot: i128) -> i64 {
    let sh = r.score_shift();
    let v = (dot * i128::from(r.scale) + (1i128 << (sh - 1))) >> sh;
    let max = (1i128 << (r.p.score_bits - 1)) - 1;
    v.clamp(-max - 1, max) as i64
}

/// `2^x` for a score difference `x ≤ 0` (FS fractional bits), with FE fractional bits.
pub fn exp2(r: &Resolved, x: i64) -> i64 {
    debug_assert!(x <= 0);
    let fs = r.p.score_frac_bits;
    let u = -x;
    let n = u >> fs;
    let idx = (u & ((1 << fs) - 1)) >> (fs - r.p.exp_table_bits);
    if n > i64::from(r.p.exp_frac_bits) {
        return 0;
    }
    r.exp_table[idx as usize] >> n
}

/// The running state of one query: maximum, sum and the `d` accumulators.
#[derive(Debug, Clone)]
struct Query {
    max: Option<i64>,
    sum: i128,
    acc: Vec<i128>,
}

impl Query {
    fn new(d: usize) -> Query {
        Query {
            max: None,
            sum: 0,
            acc: vec![0; d],
        }
    }

    /// One key with its score and value row.
    fn step(&mut self, r: &Resolved, s: i64, v: &[i64]) {
        let fe = r.p.exp_frac_bits;
        let m_new = self.max.map_or(s, |m| m.max(s));
        // With no key seen yet, l and acc are 0: the factor does not matter.
        let alpha = i128::from(self.max.map_or(0, |m| exp2(r, m - m_new)));
        let p = i128::from(exp2(r, s - m_new));
        self.sum = ((self.sum * alpha) >> fe) + p;
        for (a, &x) in self.acc.iter_mut().zip(v) {
            *a = ((*a * alpha) >> fe) + p * i128::from(x);
        }
        self.max = Some(m_new);
    }

    /// The outputs: `acc · 2^FO / (l · 2^F)`, truncated toward zero, saturated.
    fn finish(&self, r: &Resolved) -> Vec<i64> {
        let (f, fo) = (r.tqkv.frac_bits(), r.tout.frac_bits());
        let (lo, hi) = (r.tout.min_raw(), r.tout.max_raw());
        self.acc
            .iter()
            .map(|&a| {
                let (num, den) = if fo >= f {
                    (a << (fo - f), self.sum)
                } else {
                    (a, self.sum << (f - fo))
                };
                (num / den).clamp(lo, hi) as i64
            })
            .collect()
    }
}

fn check(r: &Resolved, name: &str, x: &ArrayView2<i64>) -> Result<()> {
    let (t, d) = (r.p.tokens as usize, r.p.head_dim as usize);
    if x.dim() != (t, d) {
        return Err(AttentionError::Data(format!(
            "{name} is {:?}, expected {t} x {d} (tokens x head_dim)",
            x.dim()
        )));
    }
    let (lo, hi) = (r.tqkv.min_raw(), r.tqkv.max_raw());
    if let Some(v) = x.iter().find(|&&v| !(lo..=hi).contains(&i128::from(v))) {
        return Err(AttentionError::Data(format!(
            "{name} holds {v}, outside {} ({lo}..={hi})",
            r.tqkv
        )));
    }
    Ok(())
}

/// One head: raw Q, K, V (`tokens × head_dim`, raw integers of the Q/K/V type) to raw outputs
/// of the output type, keys in order.
pub fn head(
    r: &Resolved,
    q: ArrayView2<i64>,
    k: ArrayView2<i64>,
    v: ArrayView2<i64>,
) -> Result<Array2<i64>> {
    check(r, "Q", &q)?;
    check(r, "K", &k)?;
    check(r, "V", &v)?;
    let (t, d) = (r.p.tokens as usize, r.p.head_dim as usize);
    let mut out = Array2::zeros((t, d));
    let v_rows: Vec<Vec<i64>> = v.rows().into_iter().map(|row| row.to_vec()).collect();
    for i in 0..t {
        let mut state = Query::new(d);
        for (j, v_row) in v_rows.iter().enumerate() {
            let dot: i128 = (0..d)
                .map(|c| i128::from(q[(i, c)]) * i128::from(k[(j, c)]))
                .sum();
            state.step(r, score(r, dot), v_row);
        }
        for (c, x) in state.finish(r).into_iter().enumerate() {
            out[(i, c)] = x;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::AttentionParams;

    fn small() -> Resolved {
        AttentionParams {
            head_dim: 4,
            heads: 1,
            tokens: 3,
            simd: 4,
            ..AttentionParams::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn exp2_is_exact_at_zero_and_halves_per_unit() {
        let r = small();
        let one = 1i64 << r.p.exp_frac_bits;
        assert_eq!(exp2(&r, 0), one);
        let unit = 1i64 << r.p.score_frac_bits;
        assert_eq!(exp2(&r, -unit), one / 2);
        assert_eq!(exp2(&r, -3 * unit), one / 8);
        assert_eq!(exp2(&r, -(i64::from(r.p.exp_frac_bits) + 1) * unit), 0);
    }

    #[test]
    fn equal_scores_average_the_values_exactly() {
        let r = small();
        let f = r.tqkv.frac_bits();
        let q = Array2::from_elem((3, 4), 1i64 << f);
        let k = Array2::from_elem((3, 4), 1i64 << f);
        // Equal scores: the output is the mean of the value rows, exactly representable here.
        let v = Array2::from_shape_fn((3, 4), |(j, c)| (j as i64 + c as i64 - 2) << (f - 1));
        let out = head(&r, q.view(), k.view(), v.view()).unwrap();
        // Every p is exactly 2^FE, so the mean (c - 1) / 2 comes out exactly.
        let fo = r.tout.frac_bits();
        for i in 0..3 {
            for c in 0..4 {
                assert_eq!(out[(i, c)], (c as i64 - 1) << (fo - 1), "({i}, {c})");
            }
        }
    }

    #[test]
    fn operands_out_of_their_type_are_refused() {
        let r = small();
        let z = Array2::<i64>::zeros((3, 4));
        let mut big = z.clone();
        big[(1, 2)] = 1 << 20;
        let e = head(&r, z.view(), big.view(), z.view()).unwrap_err();
        assert!(e.to_string().contains("K holds"), "{e}");
        let e = head(&r, z.view(), Array2::zeros((2, 4)).view(), z.view()).unwrap_err();
        assert!(e.to_string().contains("expected 3 x 4"), "{e}");
    }
}
