//! Operand lanes into the PE array, the same for both dataflows: buffer words joined and split
//! into one lane per row (A) or column (B/W), zeroed on idle cycles, skewed by the lane index;
//! shift-add weights pass through a canonical-signed-digit encoder on the way.

use accelforge_hdl::helpers::{delay, lit};
use accelforge_hdl::{Expr, Module, ModuleBuilder, Result as HResult, Sig};

use super::shell::Top;
use crate::systolic::params::{PeKind, Resolved};
use crate::systolic::pe::{b_lane_width, shift_bits};

/// The words of a buffer's memories joined into one wire `name` (first memory lowest); marked
/// partly unused when it holds more elements than there are lanes.
fn joined(m: &mut ModuleBuilder, name: &str, rdata: &[Sig], spare: bool) -> HResult<Sig> {
    let words: Vec<Expr> = rdata.iter().rev().map(|s| s.e()).collect();
    let all = m.wire_from(name, Expr::concat(&words)?)?;
    if spare {
        m.allow_unused(all.name())?;
    }
    Ok(all)
}

/// The A side of the operand feed: the A buffers' words joined, split into one lane per row
/// (unsigned types get a zero sign bit), zeroed unless `a_vd`, and skewed by the row index;
/// the tile flag `flag_d` is skewed alongside. Returns `(a lanes, flag lanes)`.
pub(super) fn a_row_feed(
    m: &mut ModuleBuilder,
    r: &Resolved,
    (clk, rst): (&Sig, &Sig),
    a_rdata: &[Sig],
    a_vd: &Sig,
    flag_d: &Sig,
) -> HResult<(Vec<Expr>, Vec<Expr>)> {
    let rr = r.r;
    let a_all = joined(m, "a_word", a_rdata, r.qa * r.ea > rr)?;
    let wa_t = r.ta.width();
    let mut a_row_in = Vec::new();
    let mut f_row_in = Vec::new();
    for i in 0..rr {
        let raw = a_all.slice(i * wa_t + wa_t - 1, i * wa_t)?;
        let val = if r.ta.is_signed() {
            raw.as_signed()
        } else {
            Expr::concat(&[Expr::zero(1), raw])?.as_signed()
        };
        let gated = Expr::mux(&a_vd.e(), &val, &Expr::zero(r.wa).as_signed())?;
        let lane = m.wire_from(&format!("a_lane{i}"), gated)?;
        a_row_in.push(delay(m, clk, None, &format!("a_sk{i}"), &lane.e(), i)?);
        f_row_in.push(delay(
            m,
            clk,
            Some(rst),
            &format!("f_sk{i}"),
            &flag_d.e(),
            i,
        )?);
    }
    Ok((a_row_in, f_row_in))
}

/// The B (or W) buffers' words joined into the wire `{name}_word`.
pub(super) fn b_word(
    m: &mut ModuleBuilder,
    r: &Resolved,
    name: &str,
    rdata: &[Sig],
) -> HResult<Sig> {
    joined(m, &format!("{name}_word"), rdata, r.qb * r.eb > r.c)
}

/// Column `j`'s weight lane out of the joined word `all`: the element (unsigned types get a
/// zero sign bit), zero unless `keep`, CSD-encoded for shift-add PEs, as the wire
/// `{name}_lane{j}` skewed by `j` cycles (registers `{name}_sk{j}_d*`).
pub(super) fn b_column_lane(
    m: &mut ModuleBuilder,
    r: &Resolved,
    clk: &Sig,
    (name, all, j): (&str, &Sig, u32),
    keep: &Expr,
) -> HResult<Expr> {
    let lane = b_column_value(m, r, (name, all, j), keep)?;
    delay(m, clk, None, &format!("{name}_sk{j}"), &lane.e(), j)
}

/// Column `j`'s weight lane before the skew: the wire `{name}_lane{j}`.
pub(super) fn b_column_value(
    m: &mut ModuleBuilder,
    r: &Resolved,
    (name, all, j): (&str, &Sig, u32),
    keep: &Expr,
) -> HResult<Sig> {
    let wb_t = r.tb.width();
    let raw = all.slice(j * wb_t + wb_t - 1, j * wb_t)?;
    let val = if r.tb.is_signed() {
        raw
    } else {
        Expr::concat(&[Expr::zero(1), raw])?
    };
    let val = Expr::mux(keep, &val, &Expr::zero(val.width()))?;
    let enc = match r.p.pe {
        PeKind::Dsp | PeKind::DspPacked => val,
        PeKind::ShiftAdd => csd_encode(m, r, j, &val.as_signed())?,
    };
    let lane = m.wire_from(&format!("{name}_lane{j}"), enc)?;
    debug_assert_eq!(lane.width(), b_lane_width(r));
    Ok(lane)
}

/// Shift-add weight decoder for column `j`: NAF digits from `h = 3x`, then the lowest two
/// non-zero digits as `{z1, n1, s1, z2, n2, s2}`.
fn csd_encode(m: &mut ModuleBuilder, r: &Resolved, j: u32, val: &Expr) -> HResult<Expr> {
    let wb = r.wb;
    let mw = wb + 2;
    let sbits = shift_bits(r);
    let x = m.wire_from(&format!("csd{j}_x"), val.clone())?;
    let xs = m.wire_from(&format!("csd{j}_xs"), x.extend(mw)?.as_unsigned())?;
    let h = m.wire_from(&format!("csd{j}_h"), xs.e().add(&xs.e().shl(1))?)?;
    m.allow_unused(h.name())?;
    m.allow_unused(xs.name())?;
    let hh = h.slice(wb, 1)?;
    let xx = xs.slice(wb, 1)?;
    let pos = m.wire_from(&format!("csd{j}_pos"), hh.and(&xx.not())?)?;
    let neg = m.wire_from(&format!("csd{j}_neg"), hh.not().and(&xx)?)?;
    let nz = m.wire_from(&format!("csd{j}_nz"), pos.e().or(&neg.e())?)?;
    // Lowest set bit: a priority chain from the top down so bit 0 wins.
    let lowest = |m: &mut ModuleBuilder, v: &Sig, tag: &str| -> HResult<(Expr, Expr)> {
        let mut idx = lit(0, sbits)?;
        for b in (0..wb).rev() {
            idx = Expr::mux(&v.bit(b)?, &lit(u64::from(b), sbits)?, &idx)?;
        }
        let idx = m.wire_from(&format!("csd{j}_{tag}_idx"), idx)?;
        Ok((idx.e(), v.e().red_or()))
    };
    let (s1, z1) = lowest(m, &nz, "s1")?;
    let n1 = neg.bit_at(&s1)?;
    let nz_minus = nz.e().sub(&lit(1, wb)?)?;
    let nz2 = m.wire_from(&format!("csd{j}_nz2"), nz.e().and(&nz_minus)?)?;
    let (s2, z2) = lowest(m, &nz2, "s2")?;
    let n2 = neg.bit_at(&s2)?;
    Expr::concat(&[z1, n1, s1, z2, n2, s2])
}

/// PE `(i, j)` of the grid (instance `pe_{i}_{j}`), clocked by the top's clock and reset, with
/// its other ports connected as `ports` says.
pub(super) fn pe_instance(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    pe: &Module,
    (i, j): (u32, u32),
    ports: &[(&str, Expr)],
) -> HResult<()> {
    let mut conns = vec![("clk", t.ports.clk.e()), ("rst", t.ports.rst.e())];
    conns.extend(ports.iter().cloned());
    m.instance(pe, &format!("pe_{i}_{j}"), &[], &conns)
}
