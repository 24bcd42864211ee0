//! `requantize`: the RTL image of [`crate::qfx::Converter`] — quantization with the
//! destination's mode, then overflow handling with its mode and saturation bits, exactly as
//! `qfx::convert` defines them (see the comments there for the reasoning on each mode).

use accelforge_hdl::{Design, Expr, ModuleBuilder, Sig, Stmt};

use super::{Result, UnitError};
use crate::qfx::{Overflow, QType, Quant};

/// A fresh name for an internal wire of one requantizer instance.
fn n(prefix: &str, what: &str) -> String {
    format!("{prefix}_{what}")
}

/// Sign-extends (`signed`) or zero-extends an expression held in `sig` to `width`, as signed.
fn to_signed(m: &mut ModuleBuilder, name: &str, sig: &Sig, width: u32) -> Result<Sig> {
    let e = if sig.signed() {
        sig.extend(width)?
    } else {
        sig.e().zext(width)?.as_signed()
    };
    Ok(m.wire_from(name, e)?)
}

/// Adds the logic converting `x` (raw bits of type `src`) to `dst` and returns the result wire
/// (`dst.width()` bits, signed when `dst` is). Internal wires are named `<prefix>_*`.
pub fn emit_requantize(
    m: &mut ModuleBuilder,
    prefix: &str,
    x: &Sig,
    src: &QType,
    dst: &QType,
) -> Result<Sig> {
    if x.width() != src.width() {
        return Err(UnitError::Unsupported(format!(
            "requantize: input is {} bits but {src} has {}",
            x.width(),
            src.width()
        )));
    }
    let wd = dst.width();
    let shift = i64::from(dst.frac_bits()) - i64::from(src.frac_bits());
    if shift.unsigned_abs() > 256 {
        return Err(UnitError::Unsupported(format!(
            "requantize: {src} -> {dst} shifts by {shift} bits; at most 256 are supported"
        )));
    }
    // Everything below works on a signed copy one bit wider than the source, so unsigned and
    // signed sources share one path.
    let wx = src.width() + 1;
    let xs = to_signed(m, &n(prefix, "src"), x, wx)?;
    // Which bits of the source matter depends on the mode (truncation ignores the dropped ones).
    m.allow_unused(xs.name())?;
    let sign = xs.bit(wx - 1)?;

    // q = T + inc: the quantized value in units of the destination's LSB, and `bit_above`
    // (bit W of T) that AP_WRAP_SM with N = 0 compares against.
    let (q, bit_above) = if shift >= 0 {
        let s = shift as u32;
        let t = if s == 0 {
            xs.e()
        } else {
            Expr::concat(&[xs.e(), Expr::zero(s)])?.as_signed()
        };
        let q = m.wire_from(&n(prefix, "q"), t)?;
        // bit(raw, Wd - shift): below the source's LSB it is 0, above its MSB the sign.
        let idx = i64::from(wd) - shift;
        let above = if idx < 0 {
            Expr::bool(false)
        } else if idx >= i64::from(wx) {
            sign.clone()
        } else {
            xs.bit(idx as u32)?
        };
        (q, above)
    } else {
        let s = (-shift) as u32;
        // T = floor(x / 2^s): the bits from s up, or just the sign when s reaches past the MSB.
        let lo = s.min(wx - 1);
        let wt = wx - lo;
        let t = m.wire_from(&n(prefix, "trunc"), xs.slice(wx - 1, lo)?.as_signed())?;
        let bit_of =
            |i: u32| -> Result<Expr> { Ok(if i >= wx { sign.clone() } else { xs.bit(i)? }) };
        let qb = bit_of(s - 1)?;
        let r = if s >= 2 {
            xs.slice((s - 2).min(wx - 1), 0)?.red_or()
        } else {
            Expr::bool(false)
        };
        let t_odd = t.bit(0)?;
        let inc = match dst.quant() {
            Quant::Trn => Expr::bool(false),
            Quant::TrnZero => sign.logic_and(&qb.logic_or(&r)?)?,
            Quant::Rnd => qb,
            Quant::RndZero => qb.logic_and(&sign.logic_or(&r)?)?,
            Quant::RndMinInf => qb.logic_and(&r)?,
            Quant::RndInf => qb.logic_and(&sign.logic_not().logic_or(&r)?)?,
            Quant::RndConv => qb.logic_and(&t_odd.logic_or(&r)?)?,
        };
        let inc = m.wire_from(&n(prefix, "inc"), inc)?;
        let q = m.wire_from(
            &n(prefix, "q"),
            t.extend(wt + 1)?.add(&inc.e().zext(wt + 1)?.as_signed())?,
        )?;
        let above = if wd >= wt { t.bit(wt - 1)? } else { t.bit(wd)? };
        (q, above)
    };
    let wq = q.width();
    let negative = q.bit(wq - 1)?;

    // Range check against the destination's raw limits, in a width that holds both sides.
    let wc = wq.max(wd + 1) + 1;
    let qc = q.extend(wc)?;
    let (min, max) = (dst.min_raw(), dst.max_raw());
    let c = |v: i128| Expr::slit(v, wc);
    let sym_min = dst.overflow() == Overflow::SatSym && dst.is_signed();
    let mut in_range = qc.ge(&c(min)?)?.logic_and(&qc.le(&c(max)?)?)?;
    if sym_min {
        in_range = in_range.logic_and(&qc.ne(&c(min)?)?)?;
    }
    let in_range = m.wire_from(&n(prefix, "in_range"), in_range)?;
    // The low W bits (q is sign-extended first when it is narrower than the destination).
    let low = if wq >= wd {
        q.slice(wd - 1, 0)?
    } else {
        q.extend(wd)?.as_unsigned()
    };
    let low = m.wire_from(&n(prefix, "low"), low)?;

    let lit = |v: i128| -> Result<Expr> { Ok(Expr::lit((v as u128) & mask(wd), wd)?) };
    let force_top = |v: &Sig, nbits: u32| -> Result<Expr> {
        // MSB takes the sign, the N-1 bits below take its complement, the rest are kept.
        let keep = wd - nbits;
        let mut parts = vec![negative.clone()];
        if nbits > 1 {
            parts.push(Expr::repeat(nbits - 1, &negative.logic_not())?);
        }
        if keep > 0 {
            parts.push(v.slice(keep - 1, 0)?);
        }
        Ok(Expr::concat(&parts)?)
    };
    let nsat = dst.sat_bits();
    let overflowed = match dst.overflow() {
        Overflow::Sat => Expr::mux(&negative, &lit(min)?, &lit(max)?)?,
        Overflow::SatZero => Expr::zero(wd),
        Overflow::SatSym => {
            // Unsigned: like AP_SAT. Signed: −max, except W = 1 where ap_fixed gives the min code.
            let neg_value = if dst.is_signed() && wd > 1 { -max } else { min };
            Expr::mux(&negative, &lit(neg_value)?, &lit(max)?)?
        }
        Overflow::Wrap => match (nsat, dst.is_signed()) {
            (0, _) => low.e(),
            (k, true) => force_top(&low, k)?,
            (k, false) => low.e().or(&lit(((1i128 << k) - 1) << (wd - k))?)?,
        },
        Overflow::WrapSm => {
            let ro = low.bit(wd - 1)?;
            let flip =
                |cond: Expr| -> Result<Expr> { Ok(Expr::mux(&cond, &low.e().not(), &low.e())?) };
            match nsat {
                0 => flip(bit_above.xor(&ro)?)?,
                1 => flip(negative.xor(&ro)?)?,
                k => {
                    let lno = low.bit(wd - k)?;
                    let v =
                        m.wire_from(&n(prefix, "sm"), flip(lno.xor(&negative)?.logic_not())?)?;
                    // Its top N bits are replaced by the forced sign pattern.
                    m.allow_unused(v.name())?;
                    force_top(&v, k)?
                }
            }
        }
    };
    let out = Expr::mux(&in_range.e(), &low.e(), &overflowed)?;
    let out = if dst.is_signed() {
        out.as_signed()
    } else {
        out
    };
    Ok(m.wire_from(&n(prefix, "out"), out)?)
}

fn mask(w: u32) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// A standalone requantizer: input `x` (source raw bits), output `y` (destination raw bits);
/// with `registered`, `y` is registered on `clk`.
pub fn requantize_module(name: &str, src: &QType, dst: &QType, registered: bool) -> Result<Design> {
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!("requantize {src} -> {dst}"));
    let clk = if registered {
        Some(m.input("clk", 1)?)
    } else {
        None
    };
    let x = if src.is_signed() {
        m.input_signed("x", src.width())?
    } else {
        m.input("x", src.width())?
    };
    let y = match (registered, dst.is_signed()) {
        (false, true) => m.output_signed("y", dst.width())?,
        (false, false) => m.output("y", dst.width())?,
        (true, true) => m.output_reg_signed("y", dst.width())?,
        (true, false) => m.output_reg("y", dst.width())?,
    };
    let r = emit_requantize(&mut m, "rq", &x, src, dst)?;
    match clk {
        Some(clk) => m.clocked(&clk, vec![Stmt::set(&y, r.e())?])?,
        None => m.assign_sig(&y, r.e())?,
    }
    Ok(Design::new(
        m.finish(),
        &(src.to_string(), dst.to_string(), registered),
    ))
}
