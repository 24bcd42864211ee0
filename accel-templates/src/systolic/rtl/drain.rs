//! The result path both dataflows share: requantizing a column's accumulator, the result row
//! with lanes past the tile's width zeroed, and the output FIFO with the serializer that sends
//! each row as ⌈valid columns / Eo⌉ beats.

use accelforge_hdl::helpers::{add_c, bit_to, gt_c, inc, lit};
use accelforge_hdl::{Expr, HdlError, LValue, ModuleBuilder, Result as HResult, Sig, Stmt, clog2};

use super::shell::Top;
use crate::systolic::params::Resolved;
use crate::units::requantize::emit_requantize;

/// Address bits of the output FIFO and bits of its occupancy / credit counters.
pub(super) fn fifo_widths(r: &Resolved) -> (u32, u32) {
    let fifo_aw = clog2(u64::from(r.out_fifo_depth)).max(1);
    (fifo_aw, fifo_aw + 1)
}

/// Column `j`'s result `x` (ReLU already applied) through the wire `rq{j}_in`, requantized to
/// the output type and registered in `rq{j}_r`.
pub(super) fn requantize(m: &mut ModuleBuilder, t: &Top<'_>, j: u32, x: Expr) -> HResult<Sig> {
    let r = t.r;
    let xs = m.wire_from(&format!("rq{j}_in"), x)?;
    // The project's one RTL image of the qfx conversion (every rounding/overflow mode).
    let q = emit_requantize(m, &format!("rq{j}"), &xs, &r.tacc, &r.tout)
        .map_err(|e| HdlError::Misuse(e.to_string()))?
        .e()
        .as_unsigned();
    let rq = m.reg(&format!("rq{j}_r"), r.tout.width())?;
    m.clocked(&t.ports.clk, vec![Stmt::set(&rq, q)?])?;
    Ok(rq)
}

/// A result row from its lanes (column 0 first): lanes at or past `row_cv` (the tile's valid
/// columns) carry padding results and are zeroed.
fn masked_row(r: &Resolved, row_cv: &Sig, lanes: &[Expr]) -> HResult<Expr> {
    let wo = r.tout.width();
    let mut masked = Vec::new();
    for (j, lane) in lanes.iter().enumerate() {
        let keep = gt_c(&row_cv.e(), j as u64)?;
        masked.push(Expr::mux(&keep, lane, &Expr::zero(wo))?);
    }
    masked.reverse();
    Expr::concat(&masked)
}

/// The tags of a result row entering the output FIFO.
pub(super) struct RowTags {
    /// The row enters the FIFO this cycle.
    pub push: Sig,
    /// It is the result's last row (its last beat carries TLAST).
    pub last: Sig,
    /// Its valid columns.
    pub cv: Sig,
    /// Per-channel mode: its tile's column block (the lane tables' address).
    pub blk: Option<Sig>,
}

/// The output FIFO's registers, shared by its write side and its serializer.
struct Fifo {
    wr: Sig,
    rd: Sig,
    count: Sig,
    beat: Sig,
    lane: Sig,
}

/// The output FIFO (LUT RAM, asynchronous read) and the serializer that sends each row as
/// ⌈valid columns / Eo⌉ beats on `m_axis`, TLAST on the result's last beat. A row is its
/// `lanes` (column 0 first, lanes past its valid columns zeroed) under the tags `row`; `pop`
/// is driven here, high in the cycle the head row's last beat is taken. Returns the condition
/// "the result's last beat is transferred".
pub(super) fn output_fifo(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    row: &RowTags,
    lanes: &[Expr],
    pop: &Sig,
) -> HResult<Expr> {
    let Top { r, ports, .. } = t;
    let data = masked_row(r, &row.cv, lanes)?;
    let (fifo_aw, credit_w) = fifo_widths(r);
    let (cc, wo, lane_w) = (r.c, r.tout.width(), row.cv.width());
    let fifo_w = 1 + lane_w + cc * wo;
    let mem = m.memory(
        "out_fifo",
        fifo_w,
        r.out_fifo_depth,
        false,
        Some("distributed"),
    )?;
    let wr = m.reg("fifo_wr", fifo_aw)?;
    let rd = m.reg("fifo_rd", fifo_aw)?;
    let count = m.reg("fifo_count", credit_w)?;
    m.clocked(
        &ports.clk,
        vec![Stmt::if_(
            row.push.e(),
            vec![Stmt::assign(
                LValue::word(&mem, &wr.e())?,
                Expr::concat(&[row.last.e(), row.cv.e(), data])?,
            )?],
        )?],
    )?;
    // An empty FIFO's head is a never-written LUT-RAM word, X in a 4-state simulator: read
    // zeros then, so TDATA/TLAST are defined whenever TVALID is low (one AND per bit).
    let not_empty = count.e().ne(&Expr::zero(credit_w))?;
    let head = m.wire_from(
        "fifo_head",
        Expr::mux(&not_empty, &mem.read(&rd.e())?, &Expr::zero(fifo_w))?,
    )?;
    let f = Fifo {
        wr,
        rd,
        count,
        beat: m.reg("ob_beat", clog2(u64::from(r.qo)).max(1))?,
        lane: m.reg("ob_lane", lane_w)?,
    };
    let out = &ports.m;
    m.assign_sig(&out.tvalid, f.count.e().ne(&Expr::zero(credit_w))?)?;
    let row_last_beat = m.wire_from(
        "ob_row_end",
        add_c(&f.lane.e(), u64::from(r.eo))?.ge(&head.slice(fifo_w - 2, cc * wo)?)?,
    )?;
    m.assign_sig(&out.tlast, head.bit(fifo_w - 1)?.and(&row_last_beat.e())?)?;
    let xfer = m.wire_from("ob_xfer", out.tvalid.e().and(&out.tready.e())?)?;
    m.assign_sig(pop, xfer.e().and(&row_last_beat.e())?)?;
    beat_mux(m, t, &head, &f.beat)?;
    let last_xfer = xfer.e().and(&out.tlast.e())?;
    fifo_pointers(m, t, (&row.push, pop), &f, (&xfer, &row_last_beat))?;
    Ok(last_xfer)
}

/// TDATA: beat b carries lanes b·Eo .. b·Eo+Eo−1 of the head row (zeros past C); a beat holds
/// Eo = floor(B/Wo) whole lanes and bits above Eo·Wo are zero.
fn beat_mux(m: &mut ModuleBuilder, t: &Top<'_>, head: &Sig, ob: &Sig) -> HResult<()> {
    let Top { r, ports, .. } = t;
    let (sb, wo) = (r.p.stream_bits, r.tout.width());
    let tdata = &ports.m.tdata;
    let mut arms = Vec::new();
    let data_w = r.c * wo;
    let beat_w = r.eo * wo;
    for b in 0..r.qo {
        let lo = b * beat_w;
        let hi = (lo + beat_w).min(data_w);
        let part = head.slice(hi - 1, lo)?;
        let part = if hi - lo < sb {
            Expr::concat(&[Expr::zero(sb - (hi - lo)), part])?
        } else {
            part
        };
        arms.push((
            vec![lit(u64::from(b), ob.width())?],
            vec![Stmt::set(tdata, part)?],
        ));
    }
    m.comb(vec![
        Stmt::set(tdata, Expr::zero(sb))?,
        Stmt::case(ob.e(), arms, vec![])?,
    ])
}

/// The FIFO's pointers and count, and the serializer's beat and lane counters.
fn fifo_pointers(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    (push, pop): (&Sig, &Sig),
    f: &Fifo,
    (xfer, row_last_beat): (&Sig, &Sig),
) -> HResult<()> {
    let Top { r, ports, .. } = t;
    let (aw, cw, lw) = (f.wr.width(), f.count.width(), f.lane.width());
    let bw = f.beat.width();
    m.clocked(
        &ports.clk,
        vec![Stmt::if_else(
            ports.rst.e(),
            vec![
                Stmt::set(&f.wr, Expr::zero(aw))?,
                Stmt::set(&f.rd, Expr::zero(aw))?,
                Stmt::set(&f.count, Expr::zero(cw))?,
                Stmt::set(&f.beat, Expr::zero(bw))?,
                Stmt::set(&f.lane, Expr::zero(lw))?,
            ],
            vec![
                Stmt::if_(push.e(), vec![Stmt::set(&f.wr, inc(&f.wr)?)?])?,
                Stmt::set(
                    &f.count,
                    f.count
                        .e()
                        .add(&bit_to(push.e(), cw)?)?
                        .sub(&bit_to(pop.e(), cw)?)?,
                )?,
                Stmt::if_(
                    xfer.e(),
                    vec![Stmt::if_else(
                        row_last_beat.e(),
                        vec![
                            Stmt::set(&f.beat, Expr::zero(bw))?,
                            Stmt::set(&f.lane, Expr::zero(lw))?,
                            Stmt::set(&f.rd, inc(&f.rd)?)?,
                        ],
                        vec![
                            Stmt::set(&f.beat, inc(&f.beat)?)?,
                            Stmt::set(&f.lane, add_c(&f.lane.e(), u64::from(r.eo))?)?,
                        ],
                    )?],
                )?,
            ],
        )?],
    )
}
