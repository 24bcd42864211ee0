//! Fixed-point LayerNorm with an optional residual add (issue 17, item 2): `s = x + r` (the
//! residual stream, saturated to the input type) and `y = (s − mean)/sqrt(var + eps)·γ + β`
//! over one token's `d` features. This module holds the parameters, the integer golden model
//! and a float64 reference with the error between the two; [`rtl`] implements the arithmetic
//! bit for bit ([`sim`] runs it in Verilator, [`cost`] counts its cycles exactly).
//!
//! A pre-LN transformer is a chain of these "add & norm" units: the block's first LayerNorm
//! (no residual), then after attention `s1 = x + attn`, `LN2(s1)`, then after the MLP
//! `s2 = s1 + mlp` with the next block's `LN1(s2)`.
//!
//! # Arithmetic (integers; `F` = fractional bits of the input type)
//! ```text
//! S1 = Σ x_i,  S2 = Σ x_i²                       exact (one pass)
//! U  = d·S2 − S1² + E                            = d²·(var + eps)·2^(2F), E = round(eps·d²·2^(2F))
//! e  = the even number with 2^e ≤ U < 2^(e+2)    U = m·2^e, m in [1, 4)
//! t  = ⌊m·2^(TB−2)⌋                              table index in [2^(TB−2), 2^TB)
//! r  = table[t] = round(2^FR / sqrt((t + ½)/2^(TB−2)))     rsqrt(m), FR fractional bits
//! z_i = ⌊(d·x_i − S1)·r / 2^(e/2)⌋               (x_i − mean)/σ with FR fractional bits
//! y_i = sat_out( round_half_up(z_i·γ_i / 2^(FR + FG − FO)) + β_i·2^(FO − FB) )
//! ```
//! `(d·x_i − S1)/sqrt(d·S2 − S1²)` is exactly `(x_i − mean)/σ` (the `d` and `2^F` cancel), so the
//! only approximations are the rsqrt table (one entry per `2^−(TB−2)` of `m`, at the interval's
//! midpoint), the floor to FR bits and the output rounding. No divider: one table, shifts and
//! two multipliers per element.

use serde::{Deserialize, Serialize};

use crate::qfx::QType;

pub mod cost;
pub mod rtl;
pub mod sim;

/// Errors of the LayerNorm unit.
#[derive(Debug, thiserror::Error)]
pub enum LayerNormError {
    /// A parameter out of range; the message names it.
    #[error("invalid layernorm parameters: {0}")]
    Params(String),
    /// Operands of the wrong length or out of their type's range.
    #[error("layernorm data: {0}")]
    Data(String),
    /// A QFX type string.
    #[error(transparent)]
    Qfx(#[from] crate::qfx::QfxError),
    /// Building the RTL.
    #[error(transparent)]
    Hdl(#[from] accelforge_hdl::HdlError),
    /// Building or running the Verilator simulation.
    #[error("layernorm simulation: {0}")]
    Sim(String),
}

/// Result of the LayerNorm unit.
pub type Result<T> = std::result::Result<T, LayerNormError>;

/// A LayerNorm over `d` features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNormParams {
    /// Features per token.
    pub d: u32,
    /// Elements per stream beat (a divisor of `d`).
    pub lanes: u32,
    /// Whether a residual `r` is added first (`s = x + r`, also output).
    pub residual: bool,
    /// Input type (signed).
    pub input_type: String,
    /// Type of the scale γ (signed).
    pub gamma_type: String,
    /// Type of the shift β (signed).
    pub beta_type: String,
    /// Output type (signed; saturates).
    pub output_type: String,
    /// `eps` added to the variance.
    pub eps: f64,
    /// Fractional bits `FR` of the reciprocal square root and the normalized value.
    pub rsqrt_frac_bits: u32,
    /// Index bits `TB` of the rsqrt table.
    pub rsqrt_table_bits: u32,
}

impl Default for LayerNormParams {
    /// ViT-Tiny's width (192) on a 16-bit residual stream, 8-bit outputs for the next GEMM.
    fn default() -> Self {
        LayerNormParams {
            d: 192,
            lanes: 4,
            residual: false,
            input_type: "ap_fixed<16,6>".into(),
            gamma_type: "ap_fixed<8,2>".into(),
            beta_type: "ap_fixed<8,3>".into(),
            output_type: "ap_fixed<8,3>".into(),
            eps: 1e-5,
            rsqrt_frac_bits: 16,
            rsqrt_table_bits: 8,
        }
    }
}

/// Checked parameters with parsed types and the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The parameters.
    pub p: LayerNormParams,
    /// Input type.
    pub tin: QType,
    /// γ type.
    pub tgamma: QType,
    /// β type.
    pub tbeta: QType,
    /// Output type.
    pub tout: QType,
    /// `E = round(eps·d²·2^(2F))`.
    pub eps_int: i128,
    /// The rsqrt table, `2^TB` entries (the lower quarter is never indexed).
    pub table: Vec<i64>,
}

impl LayerNormParams {
    /// Checks every field; the message names the field and its bound.
    pub fn resolve(&self) -> Result<Resolved> {
        let bad = |m: String| LayerNormError::Params(m);
        if !(1..=8192).contains(&self.d) {
            return Err(bad(format!("d = {} is outside 1..=8192", self.d)));
        }
        if !(1..=64).contains(&self.lanes) || !self.d.is_multiple_of(self.lanes) {
            return Err(bad(format!(
                "lanes = {} must be in 1..=64 and divide d = {}",
                self.lanes, self.d
            )));
        }
        if !(self.eps > 0.0 && self.eps < 1.0) {
            return Err(bad(format!("eps = {} must be in (0, 1)", self.eps)));
        }
        if !(8..=24).contains(&self.rsqrt_frac_bits) {
            return Err(bad(format!(
                "rsqrt_frac_bits = {} is outside 8..=24",
                self.rsqrt_frac_bits
            )));
        }
        // Up to 256 entries the table stays in LUTs; Yosys puts larger ones in a block-RAM ROM,
        // and past 8 bits the output rounding dominates the error anyway (0.73 LSB at 8).
        if !(3..=8).contains(&self.rsqrt_table_bits) {
            return Err(bad(format!(
                "rsqrt_table_bits = {} is outside 3..=8",
                self.rsqrt_table_bits
            )));
        }
        let mut types = Vec::new();
        for (name, text) in [
            ("input_type", &self.input_type),
            ("gamma_type", &self.gamma_type),
            ("beta_type", &self.beta_type),
            ("output_type", &self.output_type),
        ] {
            let t: QType = text.parse()?;
            if !t.is_signed() || t.width() > 24 || t.frac_bits() < 0 {
                return Err(bad(format!(
                    "{name} = {t} must be a signed ap_fixed of at most 24 bits with no negative \
                     fractional bits"
                )));
            }
            types.push(t);
        }
        let (tin, tgamma, tbeta, tout) = (types[0], types[1], types[2], types[3]);
        if tbeta.frac_bits() > tout.frac_bits() {
            return Err(bad(format!(
                "beta_type {tbeta} has more fractional bits than output_type {tout}"
            )));
        }
        let f = tin.frac_bits();
        let d = f64::from(self.d);
        let eps_int = (self.eps * d * d * (2.0 * f64::from(f)).exp2()).round() as i128;
        if eps_int < 1 {
            return Err(bad(format!(
                "eps = {} is below the input's resolution (eps·d²·2^(2F) rounds to 0)",
                self.eps
            )));
        }
        let tb = self.rsqrt_table_bits;
        let quarter = f64::from(1u32 << (tb - 2));
        let one = f64::from(1u32 << self.rsqrt_frac_bits);
        let table = (0..1u32 << tb)
            .map(|t| {
                let m = (f64::from(t) + 0.5) / quarter;
                (one / m.sqrt()).round() as i64
            })
            .collect();
        Ok(Resolved {
            p: self.clone(),
            tin,
            tgamma,
            tbeta,
            tout,
            eps_int,
            table,
        })
    }
}

impl Resolved {
    /// Beats per token row.
    pub fn words(&self) -> u32 {
        self.p.d / self.p.lanes
    }
    /// `⌈log2 d⌉` (at least 1).
    pub fn log_d(&self) -> u32 {
        accelforge_hdl::clog2(u64::from(self.p.d)).max(1)
    }
    /// Width of `S1 = Σ s` (signed).
    pub fn s1_bits(&self) -> u32 {
        self.tin.width() + self.log_d() + 1
    }
    /// Width of `S2 = Σ s²` (signed, non-negative).
    pub fn s2_bits(&self) -> u32 {
        2 * self.tin.width() + self.log_d()
    }
    /// Width of `U = d·S2 − S1² + E` (unsigned, `U ≥ 1`).
    pub fn u_bits(&self) -> u32 {
        let e_bits = 128 - self.eps_int.leading_zeros();
        (2 * self.tin.width() - 2 + 2 * self.log_d()).max(e_bits) + 1
    }
    /// Width of `d·s − S1` (signed).
    pub fn a_bits(&self) -> u32 {
        self.tin.width() + self.log_d() + 2
    }
    /// Width of `z = ⌊(d·s − S1)·rsqrt / 2^(e/2)⌋` (signed), from its bound: `|d·s − S1| /
    /// √U ≤ |s − mean|/σ ≤ √(d−1)` (no element deviates more than `√(d−1)` standard
    /// deviations), and the table's `rsqrt·√m ≤ 2^FR·√(1 + 2^−(TB−1)) + 1` (an entry is the
    /// rsqrt at its interval's midpoint, rounded; `m < 4`), plus one for the floor. Narrower
    /// than the product it comes from, so `z·γ` stays one DSP wide.
    pub fn z_bits(&self) -> u32 {
        let d = f64::from(self.p.d);
        let fr = f64::from(self.p.rsqrt_frac_bits).exp2();
        let tb = f64::from(self.p.rsqrt_table_bits);
        let bound = (d - 1.0).max(0.0).sqrt() * (fr * (1.0 + (1.0 - tb).exp2()).sqrt() + 1.0) + 1.0;
        accelforge_hdl::clog2(bound.ceil() as u64 + 1) + 1
    }
}

/// `s = x + r` saturated to the input type (raw codes of the input type).
pub fn residual_add(r: &Resolved, x: &[i64], res: &[i64]) -> Vec<i64> {
    let (lo, hi) = (r.tin.min_raw() as i64, r.tin.max_raw() as i64);
    x.iter()
        .zip(res)
        .map(|(a, b)| (a + b).clamp(lo, hi))
        .collect()
}

/// `(e, r)` for `U ≥ 1`: `U = m·2^e` with `e` even and `m` in [1, 4), and `r` = the table's
/// `rsqrt(m)` with FR fractional bits.
pub fn rsqrt(r: &Resolved, u: i128) -> (u32, i64) {
    debug_assert!(u >= 1);
    let k = 127 - u.leading_zeros();
    let e = k & !1;
    let tb = r.p.rsqrt_table_bits;
    // t = ⌊U / 2^e · 2^(TB−2)⌋.
    let t = if e + 2 >= tb {
        u >> (e + 2 - tb)
    } else {
        u << (tb - 2 - e)
    };
    (e, r.table[t as usize])
}

/// One token: raw inputs, γ and β (each `d` long, raw integers of their types) to raw outputs.
pub fn golden(r: &Resolved, x: &[i64], gamma: &[i64], beta: &[i64]) -> Result<Vec<i64>> {
    let d = r.p.d as usize;
    for (name, v, t) in [
        ("x", x, &r.tin),
        ("gamma", gamma, &r.tgamma),
        ("beta", beta, &r.tbeta),
    ] {
        if v.len() != d {
            return Err(LayerNormError::Data(format!(
                "{name} has {} elements, expected d = {d}",
                v.len()
            )));
        }
        if let Some(bad) = v
            .iter()
            .find(|&&e| !(t.min_raw()..=t.max_raw()).contains(&i128::from(e)))
        {
            return Err(LayerNormError::Data(format!(
                "{name} holds {bad}, outside {t}"
            )));
        }
    }
    let s1: i128 = x.iter().map(|&v| i128::from(v)).sum();
    let s2: i128 = x.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
    let dd = i128::from(r.p.d);
    let u = dd * s2 - s1 * s1 + r.eps_int;
    let (e, rs) = rsqrt(r, u);
    let fr = r.p.rsqrt_frac_bits as i32;
    let (fg, fb, fo) = (
        r.tgamma.frac_bits(),
        r.tbeta.frac_bits(),
        r.tout.frac_bits(),
    );
    let sh = fr + fg - fo;
    Ok(x.iter()
        .zip(gamma)
        .zip(beta)
        .map(|((&xi, &g), &b)| {
            let z = ((dd * i128::from(xi) - s1) * i128::from(rs)) >> (e / 2);
            let prod = z * i128::from(g);
            let scaled = if sh > 0 {
                (prod + (1i128 << (sh - 1))) >> sh
            } else {
                prod << (-sh)
            };
            let y = scaled + (i128::from(b) << (fo - fb));
            y.clamp(r.tout.min_raw(), r.tout.max_raw()) as i64
        })
        .collect())
}

/// The float64 LayerNorm of the dequantized operands.
pub fn reference(x: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    x.iter()
        .zip(gamma)
        .zip(beta)
        .map(|((v, g), b)| (v - mean) * inv * g + b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random tokens (values spread over a fraction of the input range, plus an offset, as a
    /// residual stream has), γ around 1 and β small: (max error, mean error) in output LSBs,
    /// counted only where the float result is inside the output range.
    fn error_lsb(r: &Resolved, seed: u64, tokens: usize) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = r.p.d as usize;
        let unit = |t: &QType| (-f64::from(t.frac_bits())).exp2();
        let (ui, ug, ub, uo) = (unit(&r.tin), unit(&r.tgamma), unit(&r.tbeta), unit(&r.tout));
        let (mut max, mut sum, mut n) = (0.0f64, 0.0f64, 0usize);
        for _ in 0..tokens {
            let spread = rng.random_range(0.05..0.5) * r.tin.max_raw() as f64;
            let offset = rng.random_range(-0.3..0.3) * r.tin.max_raw() as f64;
            let x: Vec<i64> = (0..d)
                .map(|_| (offset + rng.random_range(-spread..spread)).round() as i64)
                .collect();
            let g: Vec<i64> = (0..d)
                .map(|_| (rng.random_range(0.5..1.5) / ug).round() as i64)
                .collect();
            let b: Vec<i64> = (0..d)
                .map(|_| (rng.random_range(-0.5..0.5) / ub).round() as i64)
                .collect();
            let y = golden(r, &x, &g, &b).unwrap();
            let f = |v: &[i64], u: f64| v.iter().map(|&e| e as f64 * u).collect::<Vec<_>>();
            let want = reference(&f(&x, ui), &f(&g, ug), &f(&b, ub), r.p.eps);
            let (lo, hi) = (r.tout.min_raw() as f64 * uo, r.tout.max_raw() as f64 * uo);
            for (yi, wi) in y.iter().zip(&want) {
                if (lo..=hi).contains(wi) {
                    let err = (*yi as f64 * uo - wi).abs() / uo;
                    max = max.max(err);
                    sum += err;
                    n += 1;
                }
            }
        }
        (max, sum / n.max(1) as f64)
    }

    #[test]
    fn rsqrt_table_is_within_its_step() {
        let r = LayerNormParams::default().resolve().unwrap();
        for u in [1i128, 2, 3, 4, 5, 1000, 123_456_789, 1 << 40, (1 << 41) - 1] {
            let (e, rs) = rsqrt(&r, u);
            assert_eq!(e % 2, 0);
            let got = rs as f64 / 65536.0 / (e as f64 / 2.0).exp2();
            let want = 1.0 / (u as f64).sqrt();
            // A table step of 1/64 in m changes rsqrt(m) by at most 1/128 relative.
            assert!(
                (got / want - 1.0).abs() < 1.0 / 128.0,
                "u {u}: {got} vs {want}"
            );
        }
    }

    /// The default types against float64 on 200 random tokens of 192 features: within one
    /// output LSB everywhere, a quarter of an LSB on average (measured: max 0.73, mean 0.25;
    /// rounding alone gives up to 0.5).
    #[test]
    fn default_types_stay_within_an_lsb_of_float() {
        let r = LayerNormParams::default().resolve().unwrap();
        let (max, mean) = error_lsb(&r, 1, 200);
        eprintln!("layernorm vs float: max {max:.3} LSB, mean {mean:.3} LSB");
        assert!(max <= 1.0 + 1e-9, "max {max} LSB");
        assert!(mean <= 0.3, "mean {mean} LSB");
    }

    /// A coarse rsqrt table is measurably worse: the bound above is not vacuous.
    #[test]
    fn a_coarse_table_shows_in_the_error() {
        let fine = LayerNormParams::default().resolve().unwrap();
        let coarse = LayerNormParams {
            rsqrt_table_bits: 3,
            ..LayerNormParams::default()
        }
        .resolve()
        .unwrap();
        let (_, a) = error_lsb(&fine, 2, 100);
        let (_, b) = error_lsb(&coarse, 2, 100);
        eprintln!("mean error: fine table {a:.3} LSB, 3-bit table {b:.3} LSB");
        assert!(b > 2.0 * a, "fine {a}, coarse {b}");
    }

    #[test]
    fn constant_rows_give_beta_and_bad_input_is_named() {
        let r = LayerNormParams {
            d: 4,
            ..LayerNormParams::default()
        }
        .resolve()
        .unwrap();
        // var = 0: every (x − mean) is 0, so y = β exactly (eps keeps U ≥ 1).
        let y = golden(&r, &[100; 4], &[64; 4], &[-3, 0, 5, 7]).unwrap();
        let fo_fb = r.tout.frac_bits() - r.tbeta.frac_bits();
        assert_eq!(y, vec![-3 << fo_fb, 0, 5 << fo_fb, 7 << fo_fb]);
        let e = golden(&r, &[0; 3], &[0; 4], &[0; 4]).unwrap_err();
        assert!(e.to_string().contains("expected d = 4"), "{e}");
        let e = golden(&r, &[1 << 20, 0, 0, 0], &[0; 4], &[0; 4]).unwrap_err();
        assert!(e.to_string().contains("x holds"), "{e}");
        let e = LayerNormParams {
            eps: 0.0,
            ..LayerNormParams::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("eps"), "{e}");
    }
}
