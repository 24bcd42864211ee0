//! Multiplier-free products: a weight restricted to ±2^k (one term) or to a canonical-signed-digit
//! pair ±2^a ± 2^b (two terms) is stored as its terms — enable, sign and shift per term — and the
//! product becomes shifts and one adder, spending no DSP. The weight quantizers that produce such
//! weights are [`crate::qfx::nearest_pow2`] and [`crate::qfx::nearest_csd2`].
//!
//! The product is exact and has the same type as the ordinary product (W_x + W_w bits), so a
//! shift-add processing element and a DSP one compute the same numbers for the same weights.

use accelforge_hdl::{Expr, ModuleBuilder, Sig, clog2};

use super::{Result, UnitError};
use crate::qfx::{QType, ShiftAddWeight};

/// The bit layout of a stored weight: `terms` × {enable, negative, shift}, term 0 in the low bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftAddCode {
    /// Terms per weight (1 for ±2^k, 2 for CSD pairs).
    pub terms: u32,
    /// Width of the weight type (shifts run 0..W−1).
    pub weight_width: u32,
}

impl ShiftAddCode {
    /// Code layout for weights of `ty` with up to `terms` terms (1 or 2).
    pub fn new(ty: &QType, terms: u32) -> Result<ShiftAddCode> {
        if !(1..=2).contains(&terms) {
            return Err(UnitError::Unsupported(format!(
                "shift-add: {terms} terms; 1 (power of two) or 2 (CSD) are supported"
            )));
        }
        Ok(ShiftAddCode {
            terms,
            weight_width: ty.width(),
        })
    }
    /// Bits of the shift field.
    pub fn shift_bits(&self) -> u32 {
        clog2(u64::from(self.weight_width)).max(1)
    }
    /// Bits per term.
    pub fn term_bits(&self) -> u32 {
        2 + self.shift_bits()
    }
    /// Bits of a whole code.
    pub fn width(&self) -> u32 {
        self.terms * self.term_bits()
    }
    /// Encodes a quantized weight (its terms' raw bit positions).
    pub fn encode(&self, w: &ShiftAddWeight) -> Result<u64> {
        if w.terms.len() > self.terms as usize {
            return Err(UnitError::Unsupported(format!(
                "shift-add: weight has {} terms, the code holds {}",
                w.terms.len(),
                self.terms
            )));
        }
        let mut code = 0u64;
        for (i, t) in w.terms.iter().enumerate() {
            let field = 1 | (u64::from(t.negative) << 1) | (u64::from(t.bit) << 2);
            code |= field << (i as u32 * self.term_bits());
        }
        Ok(code)
    }
    /// The raw weight a code stands for: Σ ±2^shift over enabled terms.
    pub fn decode_raw(&self, code: u64) -> i128 {
        (0..self.terms)
            .map(|i| {
                let f = code >> (i * self.term_bits());
                if f & 1 == 0 {
                    return 0;
                }
                let v = 1i128 << ((f >> 2) & ((1 << self.shift_bits()) - 1));
                if f & 2 != 0 { -v } else { v }
            })
            .sum()
    }
}

/// Adds the shift-add product of `x` (signed or unsigned) and the weight `code`; returns a signed
/// wire of `x.width() + weight_width` bits (+1 when `x` is unsigned, so the sign fits).
pub fn emit_shift_add_product(
    m: &mut ModuleBuilder,
    prefix: &str,
    x: &Sig,
    code: &Sig,
    layout: &ShiftAddCode,
) -> Result<Sig> {
    if code.width() != layout.width() {
        return Err(UnitError::Unsupported(format!(
            "shift-add: code is {} bits, layout needs {}",
            code.width(),
            layout.width()
        )));
    }
    let pw = x.width() + layout.weight_width + u32::from(!x.signed());
    let xe = if x.signed() {
        x.extend(pw)?
    } else {
        x.e().zext(pw)?.as_signed()
    };
    let xe = m.wire_from(&format!("{prefix}_x"), xe)?;
    let sb = layout.shift_bits();
    let mut sum: Option<Expr> = None;
    for t in 0..layout.terms {
        let base = t * layout.term_bits();
        let en = code.bit(base)?;
        let neg = code.bit(base + 1)?;
        let shift = code.slice(base + 1 + sb, base + 2)?;
        let shifted = m.wire_from(&format!("{prefix}_t{t}"), xe.e().shl_by(&shift)?)?;
        let signed_term = Expr::mux(&neg, &shifted.e().neg(), &shifted.e())?;
        let term = m.wire_from(
            &format!("{prefix}_term{t}"),
            Expr::mux(&en, &signed_term, &Expr::slit(0, pw)?)?,
        )?;
        sum = Some(match sum {
            None => term.e(),
            Some(s) => s.add(&term.e())?,
        });
    }
    let sum = sum.ok_or_else(|| UnitError::Unsupported("shift-add: no terms".into()))?;
    Ok(m.wire_from(&format!("{prefix}_prod"), sum)?)
}
