//! Small builders the stages share: literals and comparisons at a signal's width, statements,
//! and the simple-dual-port memories every buffer is made of.

use accelforge_hdl::{Expr, LValue, Mem, ModuleBuilder, Sig, Stmt};

use super::super::params::MemorySpec;
use super::super::{MoeError, Result};

pub(super) fn ul(v: u64, w: u32) -> Result<Expr> {
    Ok(Expr::lit(u128::from(v), w)?)
}
pub(super) fn eqc(e: &Expr, v: u64) -> Result<Expr> {
    Ok(e.eq(&ul(v, e.width())?)?)
}
pub(super) fn ltc(e: &Expr, v: u64) -> Result<Expr> {
    Ok(e.lt(&ul(v, e.width())?)?)
}
pub(super) fn inc(s: &Sig) -> Result<Expr> {
    Ok(s.e().add(&ul(1, s.width())?)?)
}
/// Zero-extends (never truncates) to `w`.
pub(super) fn zx(e: &Expr, w: u32) -> Result<Expr> {
    Ok(e.zext(w)?)
}
pub(super) fn set(s: &Sig, e: Expr) -> Result<Stmt> {
    Ok(Stmt::set(s, e)?)
}
/// `s <= 0`.
pub(super) fn z(s: &Sig) -> Result<Stmt> {
    set(s, Expr::zero(s.width()))
}
pub(super) fn if_(c: Expr, t: Vec<Stmt>) -> Result<Stmt> {
    Ok(Stmt::if_(c, t)?)
}
pub(super) fn if_else(c: Expr, t: Vec<Stmt>, e: Vec<Stmt>) -> Result<Stmt> {
    Ok(Stmt::if_else(c, t, e)?)
}
pub(super) fn and(a: &Expr, b: &Expr) -> Result<Expr> {
    Ok(a.logic_and(b)?)
}
pub(super) fn mux(c: &Expr, a: &Expr, b: &Expr) -> Result<Expr> {
    Ok(Expr::mux(c, a, b)?)
}

/// `w` bits of `s` from bit `lo`, zero-extended when `s` has fewer (a zero when it has none).
/// Dropped bits are waived for lint: an address slice keeps only the bits its memory needs.
pub(super) fn fits(m: &mut ModuleBuilder, s: &Sig, lo: u32, w: u32) -> Result<Expr> {
    let avail = s.width().saturating_sub(lo);
    let n = avail.min(w);
    if n < s.width() {
        m.allow_unused(s.name())?;
    }
    if n == 0 {
        return Ok(Expr::zero(w));
    }
    zx(&s.slice(lo + n - 1, lo)?, w)
}

/// A memory of the plan, with its address width and signedness (for its read register).
pub(super) struct Ram {
    pub(super) mem: Mem,
    pub(super) aw: u32,
    signed: bool,
}

/// Declares the plan's memory `spec` (its name, width, words and RAM style).
pub(super) fn ram(m: &mut ModuleBuilder, spec: &MemorySpec, signed: bool) -> Result<Ram> {
    let depth = u32::try_from(spec.words).map_err(|_| {
        MoeError::Params(format!(
            "memory {} would need {} words (too deep)",
            spec.name, spec.words
        ))
    })?;
    let mem = m.memory(
        &spec.name,
        spec.width,
        depth,
        signed,
        Some(spec.style.attr()),
    )?;
    let aw = mem.addr_width();
    Ok(Ram { mem, aw, signed })
}

/// Emits a simple-dual-port memory: write `(we, waddr, wdata)`, registered read of `raddr`
/// into a new reg.
pub(super) fn sdp(
    m: &mut ModuleBuilder,
    clk: &Sig,
    r: &Ram,
    (we, waddr, wdata): (Expr, Expr, Expr),
    raddr: Expr,
    rname: &str,
) -> Result<Sig> {
    let q = if r.signed {
        m.reg_signed(rname, r.mem.width())?
    } else {
        m.reg(rname, r.mem.width())?
    };
    let waddr = zx(&waddr, r.aw)?;
    let raddr = zx(&raddr, r.aw)?;
    m.clocked(
        clk,
        vec![
            if_(
                we,
                vec![Stmt::assign(LValue::word(&r.mem, &waddr)?, wdata)?],
            )?,
            set(&q, r.mem.read(&raddr)?)?,
        ],
    )?;
    Ok(q)
}
