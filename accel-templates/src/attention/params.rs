//! Parameters of the streaming attention kernel and their checked, resolved form.

use serde::{Deserialize, Serialize};

use super::{AttentionError, Result};
use crate::qfx::QType;

/// Fractional bits of the score scale constant `C = round(2^CF · log2(e) / √d)`.
pub const SCALE_FRAC_BITS: u32 = 16;

/// A streaming attention kernel (one head at a time; every head has the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionParams {
    /// Head dimension `d`.
    pub head_dim: u32,
    /// Heads.
    pub heads: u32,
    /// Tokens `T` (queries and keys), any count (e.g. 197).
    pub tokens: u32,
    /// Queries processed side by side while K and V stream through once.
    pub query_lanes: u32,
    /// Elements per stream beat and per lane per cycle (a power of two dividing `head_dim`).
    pub simd: u32,
    /// Type of Q, K and V (signed `ap_fixed`).
    pub qkv_type: String,
    /// Fractional bits `FS` of a score (log2 units).
    pub score_frac_bits: u32,
    /// Total bits `WS` of a score (signed, saturating).
    pub score_bits: u32,
    /// Fractional bits `FE` of exponentials, the running sum and the rescale factor.
    pub exp_frac_bits: u32,
    /// Index bits `TB` of the exp2 table (at most `FS`).
    pub exp_table_bits: u32,
    /// Output type (signed `ap_fixed`; saturates).
    pub output_type: String,
}

impl Default for AttentionParams {
    /// A ViT-Tiny head (d = 64, 197 tokens) with 8-bit Q/K/V and 16-bit outputs.
    fn default() -> Self {
        AttentionParams {
            head_dim: 64,
            heads: 3,
            tokens: 197,
            query_lanes: 4,
            simd: 8,
            qkv_type: "ap_fixed<8,3>".into(),
            score_frac_bits: 10,
            score_bits: 18,
            exp_frac_bits: 15,
            exp_table_bits: 8,
            output_type: "ap_fixed<16,4>".into(),
        }
    }
}

/// Checked parameters with their types parsed and derived constants.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The parameters.
    pub p: AttentionParams,
    /// Q/K/V type.
    pub tqkv: QType,
    /// Output type.
    pub tout: QType,
    /// The score scale `C = round(2^CF · log2(e) / √d)`.
    pub scale: i64,
    /// The exp2 table: `round(2^FE · 2^(−t / 2^TB))` for `t = 0 .. 2^TB`.
    pub exp_table: Vec<i64>,
}

impl AttentionParams {
    /// Checks every field; the message names the field and its bound.
    pub fn resolve(&self) -> Result<Resolved> {
        let bad = |m: String| AttentionError::Params(m);
        let range = |name: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(format!("{name} = {v} is outside {lo}..={hi}")))
            }
        };
        range("head_dim", self.head_dim, 1, 1024)?;
        range("heads", self.heads, 1, 64)?;
        range("tokens", self.tokens, 1, 4096)?;
        range("query_lanes", self.query_lanes, 1, 64)?;
        range("simd", self.simd, 1, 64)?;
        if !self.simd.is_power_of_two() || !self.head_dim.is_multiple_of(self.simd) {
            return Err(bad(format!(
                "simd = {} must be a power of two dividing head_dim = {}",
                self.simd, self.head_dim
            )));
        }
        range("score_frac_bits", self.score_frac_bits, 1, 16)?;
        range("exp_frac_bits", self.exp_frac_bits, 4, 24)?;
        range(
            "exp_table_bits",
            self.exp_table_bits,
            1,
            self.score_frac_bits.min(12),
        )?;
        // The integer part of a score must reach the exp2 cut-off (FE + 1) or the table's
        // shift never empties a small weight; 8 integer bits cover any FE here.
        range(
            "score_bits",
            self.score_bits,
            self.score_frac_bits + 6,
            self.score_frac_bits + 16,
        )?;
        let tqkv: QType = self.qkv_type.parse()?;
        let tout: QType = self.output_type.parse()?;
        for (name, t) in [("qkv_type", &tqkv), ("output_type", &tout)] {
            if !t.is_signed() || t.width() > 24 || t.frac_bits() < 0 {
                return Err(bad(format!(
                    "{name} = {t} must be a signed ap_fixed of at most 24 bits with no negative \
                     fractional bits"
                )));
            }
        }
        let shift = 2 * tqkv.frac_bits() + SCALE_FRAC_BITS as i32 - self.score_frac_bits as i32;
        if shift < 1 {
            return Err(bad(format!(
                "score_frac_bits = {} exceeds the product's fractional bits; at most {}",
                self.score_frac_bits,
                2 * tqkv.frac_bits() + SCALE_FRAC_BITS as i32 - 1
            )));
        }
        for (name, t) in [("qkv_type", &tqkv), ("output_type", &tout)] {
            let bits = self.simd * slot_bytes(t.width()) * 8;
            if bits > 1024 {
                return Err(bad(format!(
                    "simd = {} elements of {t} make a {bits}-bit stream beat for {name}; an AXI \
                     stream carries at most 1024 bits",
                    self.simd
                )));
            }
        }
        let d = f64::from(self.head_dim);
        let scale =
            (std::f64::consts::LOG2_E / d.sqrt() * f64::from(1u32 << SCALE_FRAC_BITS)).round();
        let fe = f64::from(1u32 << self.exp_frac_bits);
        let entries = 1u32 << self.exp_table_bits;
        let exp_table = (0..entries)
            .map(|t| (fe * (-f64::from(t) / f64::from(entries)).exp2()).round() as i64)
            .collect();
        Ok(Resolved {
            p: self.clone(),
            tqkv,
            tout,
            scale: scale as i64,
            exp_table,
        })
    }
}

/// Bytes one element of `bits` bits occupies on a stream: a power of two.
pub fn slot_bytes(bits: u32) -> u32 {
    bits.div_ceil(8).next_power_of_two()
}

/// `clog2(n)`, at least 1 (a counter or index of at least one bit).
pub fn bits_for(n: u64) -> u32 {
    accelforge_hdl::clog2(n).max(1)
}

impl Resolved {
    /// Words of `simd` elements per head row.
    pub fn words(&self) -> u32 {
        self.p.head_dim / self.p.simd
    }

    /// Bits of `s_axis_tdata`: `simd` Q/K/V slots.
    pub fn in_bits(&self) -> u32 {
        self.p.simd * slot_bytes(self.tqkv.width()) * 8
    }

    /// Bits of `m_axis_tdata`: `simd` output slots.
    pub fn out_bits(&self) -> u32 {
        self.p.simd * slot_bytes(self.tout.width()) * 8
    }

    /// Bits of a dot product `Σ q·k` over the head (exact).
    pub fn dot_bits(&self) -> u32 {
        2 * self.tqkv.width() + accelforge_hdl::clog2(u64::from(self.p.head_dim))
    }

    /// Bits of the unsigned score constant `C`.
    pub fn scale_bits(&self) -> u32 {
        64 - (self.scale as u64).leading_zeros()
    }

    /// Bits of the running sum `l ≤ tokens · 2^FE` (unsigned).
    pub fn sum_bits(&self) -> u32 {
        self.p.exp_frac_bits + accelforge_hdl::clog2(u64::from(self.p.tokens)) + 1
    }

    /// Bits of an accumulator: `|acc| ≤ l · 2^(w−1)` plus one LSB per floor shift (signed).
    pub fn acc_bits(&self) -> u32 {
        self.p.exp_frac_bits
            + accelforge_hdl::clog2(u64::from(self.p.tokens))
            + self.tqkv.width()
            + 2
    }

    /// Right shift that takes `dot · C` (2F + CF fractional bits) to a score (FS bits).
    pub fn score_shift(&self) -> u32 {
        (2 * self.tqkv.frac_bits() + SCALE_FRAC_BITS as i32 - self.p.score_frac_bits as i32) as u32
    }
}
