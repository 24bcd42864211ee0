//! Requantization logic (accumulator → output type), emitting the same function as
//! [`crate::qfx::Converter`]: quantization with the output type's mode, then its overflow mode.

use accelforge_hdl::{Expr, ModuleBuilder, Result};

use super::rtl_util::sext;
use crate::qfx::{Overflow, QType, Quant};

/// Emits combinational logic converting the signed `x` (raw value with `src_frac` fractional
/// bits) into `dst`; returns the `dst.width()`-bit raw pattern (unsigned expression). Wires are
/// named `{p}_*`.
pub(crate) fn requantize(
    m: &mut ModuleBuilder,
    p: &str,
    x: &Expr,
    src_frac: i32,
    dst: &QType,
) -> Result<Expr> {
    let wx = x.width();
    let d = src_frac - dst.frac_bits();
    // q: the quantized value as a signed expression of width wq.
    let q = if d > 0 {
        let d = d as u32;
        // Wide enough that the first dropped bit and the sign both exist, plus one bit of
        // headroom for the rounding increment.
        let ww = wx.max(d + 1) + 1;
        let xe = sext(m, &format!("{p}_xs"), x, ww)?;
        let xs = m.wire_from(&format!("{p}_x"), xe)?;
        m.allow_unused(xs.name())?;
        let t = xs.e().shr(d);
        let qb = xs.bit(d - 1)?;
        let rbits = if d >= 2 {
            xs.slice(d - 2, 0)?.red_or()
        } else {
            Expr::bool(false)
        };
        let s = xs.bit(ww - 1)?;
        let t_odd = xs.bit(d)?;
        let inc = match dst.quant() {
            Quant::Trn => Expr::bool(false),
            Quant::TrnZero => s.and(&qb.or(&rbits)?)?,
            Quant::Rnd => qb,
            Quant::RndZero => qb.and(&s.or(&rbits)?)?,
            Quant::RndMinInf => qb.and(&rbits)?,
            Quant::RndInf => qb.and(&s.not().or(&rbits)?)?,
            Quant::RndConv => qb.and(&t_odd.or(&rbits)?)?,
        };
        let inc_w = Expr::concat(&[Expr::zero(ww - 1), inc])?.as_signed();
        m.wire_from(&format!("{p}_q"), t.add(&inc_w)?)?
    } else {
        let up = (-d) as u32;
        let ww = wx + up;
        let xs = sext(m, &format!("{p}_xs"), x, ww)?;
        m.wire_from(&format!("{p}_q"), xs.shl(up))?
    };
    let wq = q.width();
    let wo = dst.width();
    // Signed constants of q's width, clamped where q cannot reach them.
    let qmax = (1i128 << (wq - 1)) - 1;
    let qmin = -(1i128 << (wq - 1));
    let (omin, omax) = (dst.min_raw(), dst.max_raw());
    let can_high = qmax > omax;
    let can_low = qmin < omin;
    let sym = dst.overflow() == Overflow::SatSym && dst.is_signed();
    // AP_SAT_SYM also rewrites the most negative output code, when q can reach it.
    let sym_low = sym && qmin <= omin;
    let low_bits = if wq >= wo {
        if wq > wo {
            m.allow_unused(q.name())?;
        }
        q.slice(wo - 1, 0)?
    } else {
        q.extend(wo)?.as_unsigned()
    };
    let wraps = matches!(dst.overflow(), Overflow::Wrap | Overflow::WrapSm);
    if wraps || (!can_high && !can_low && !sym_low) {
        return Ok(low_bits);
    }
    let c = |v: i128| Expr::slit(v, wq);
    let hi = if can_high {
        q.e().gt(&c(omax)?)?
    } else {
        Expr::bool(false)
    };
    let lo = if can_low {
        q.e().lt(&c(omin)?)?
    } else {
        Expr::bool(false)
    };
    let pat = |v: i128| Expr::lit((v as u128) & ((1u128 << wo) - 1), wo);
    let out = match dst.overflow() {
        Overflow::Wrap | Overflow::WrapSm => low_bits,
        Overflow::Sat => Expr::mux(&hi, &pat(omax)?, &Expr::mux(&lo, &pat(omin)?, &low_bits)?)?,
        Overflow::SatZero => Expr::mux(&hi.or(&lo)?, &Expr::zero(wo), &low_bits)?,
        Overflow::SatSym if sym => {
            let lo_sym = q.e().le(&c(omin)?)?;
            Expr::mux(
                &hi,
                &pat(omax)?,
                &Expr::mux(&lo_sym, &pat(-omax)?, &low_bits)?,
            )?
        }
        Overflow::SatSym => Expr::mux(&hi, &pat(omax)?, &Expr::mux(&lo, &pat(omin)?, &low_bits)?)?,
    };
    Ok(out)
}
