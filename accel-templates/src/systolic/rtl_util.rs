//! Small expression helpers shared by the systolic generators.

use accelforge_hdl::{Expr, ModuleBuilder, Result, Sig, Stmt};

/// An unsigned constant.
pub(crate) fn lit(v: u64, w: u32) -> Result<Expr> {
    Expr::lit(u128::from(v), w)
}

/// `x + 1` at x's width.
pub(crate) fn inc(x: &Sig) -> Result<Expr> {
    x.e().add(&lit(1, x.width())?)
}

/// `x + c` at x's width.
pub(crate) fn add_c(x: &Expr, c: u64) -> Result<Expr> {
    x.add(&lit(c, x.width())?)
}

/// `x - c` at x's width.
pub(crate) fn sub_c(x: &Expr, c: u64) -> Result<Expr> {
    x.sub(&lit(c, x.width())?)
}

/// `min(x, c)` for an unsigned x.
pub(crate) fn min_c(x: &Expr, c: u64) -> Result<Expr> {
    let cc = lit(c, x.width())?;
    Expr::mux(&x.lt(&cc)?, x, &cc)
}

/// `x > c` for an unsigned x.
pub(crate) fn gt_c(x: &Expr, c: u64) -> Result<Expr> {
    x.gt(&lit(c, x.width())?)
}

/// `x == c`.
pub(crate) fn eq_c(x: &Expr, c: u64) -> Result<Expr> {
    x.eq(&lit(c, x.width())?)
}

/// Resizes an unsigned expression to `w` bits (zero-extends, or keeps the low bits).
pub(crate) fn fit(m: &mut ModuleBuilder, name: &str, x: &Expr, w: u32) -> Result<Expr> {
    if x.width() == w {
        return Ok(x.clone());
    }
    if x.width() < w {
        return x.zext(w);
    }
    let s = m.wire_from(name, x.clone())?;
    m.allow_unused(name)?;
    s.slice(w - 1, 0)
}

/// Sign-extends a signed expression to `w` bits through a named wire.
pub(crate) fn sext(m: &mut ModuleBuilder, name: &str, x: &Expr, w: u32) -> Result<Expr> {
    if x.width() == w {
        return Ok(x.clone());
    }
    let s = m.wire_from(name, x.clone())?;
    s.extend(w)
}

/// `if (rst) sig <= rv; else sig <= v;` helpers are spelled inline; this one builds a plain
/// nonblocking assignment to a reg.
pub(crate) fn set(s: &Sig, e: Expr) -> Result<Stmt> {
    Stmt::set(s, e)
}

/// A signed product as an accumulator term: sign-extended to `wacc` bits and shifted left by
/// `shift` (the accumulator's extra fractional bits), spelled as a concatenation with zeros so
/// no bit is computed and lost. Validation guarantees the shifted product fits in `wacc` bits,
/// so dropping high product bits (when the product wire is wider than needed) is exact.
pub(crate) fn acc_term(
    m: &mut ModuleBuilder,
    name: &str,
    prod: &Expr,
    wacc: u32,
    shift: u32,
) -> Result<Expr> {
    if shift == 0 {
        return sext(m, name, prod, wacc);
    }
    let hi = wacc - shift;
    let base = if prod.width() <= hi {
        sext(m, name, prod, hi)?
    } else {
        let s = m.wire_from(name, prod.clone())?;
        m.allow_unused(name)?;
        s.slice(hi - 1, 0)?
    };
    Ok(Expr::concat(&[base, Expr::zero(shift)])?.as_signed())
}
