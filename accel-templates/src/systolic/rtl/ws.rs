//! Verilog generation for the weight-stationary systolic array.
//!
//! ```text
//!  s_axis ─► loader ─► W buffer (2 banks) ─► weight feeder ─► shadow-weight chains (down columns)
//!                  └─► A buffer (2 banks) ─► issuer ─► skew ─► R×C PE array ─► column bottoms
//!  column bottoms + accumulator buffer (2 banks × C columns, block RAM, read-modify-write)
//!  accumulator bank of a finished block ─► drain ─► requantize ─► output FIFO ─► m_axis
//! ```
//!
//! The loop nest (stream order in [`crate::systolic::model`]): for each B chunk, each M block of
//! `Mb` rows, each K-slice of R rows of K, each column tile of the chunk: the tile's R×C weights
//! sit in the PEs while the block's `mv` A rows (that K-slice) pass through, one row per cycle.
//! Column j's bottom partial sum for A row m is added to accumulator `(tile, m)` of column j
//! (the first K-slice writes it). When a block's last K-slice is written its accumulator bank
//! is drained in the output-stationary output order (R-row groups, tiles, rows) while the next
//! block accumulates into the other bank.
//!
//! Timing (period x issues A row m of a tile; all fixed): PE(i,j) sees it in period x+1+i+j,
//! column j's bottom holds the sum in x+R+1+j, the accumulator of column j is read in x+R+j and
//! written in x+R+1+j. The weight feeder reads a tile's R weight rows (last row first) in
//! periods y..y+R−1 and the shadow chains are complete for the tile's flag from y+R; it loads
//! the next tile's weights from `max(R−1, 1)` periods after the current tile started, when its
//! last row has copied the shadow. A drain read in period d reaches the FIFO in d+2.

mod accumulate;
mod control;

use accelforge_hdl::helpers::{bit_to, delay, fit, lit, rst_or};
use accelforge_hdl::{Expr, Module, ModuleBuilder, Result as HResult, Sig, Stmt};

use self::accumulate::{Drain, acc_flags, accumulator_banks, control_chain};
use self::control::{Feeder, Issuer, Loader};
use super::buffers::{BankFlags, bank_flags};
use super::drain::{RowTags, fifo_widths, output_fifo};
use super::feed::{a_row_feed, b_column_lane, b_word, pe_instance};
use super::packed::{Pes, packed_lanes, ws_grid};
use super::shell::{LANE_W, Top, packed_inputs};
use crate::systolic::packing::groups;
use crate::systolic::params::{PeKind, Resolved};
use crate::systolic::pe::b_lane_width;

/// The weight-stationary top: ports and command, the three walkers of the loop nest (loader,
/// issuer, weight feeder), operand buffers, operand feed, PE grid, accumulator buffer and its
/// drain, output FIFO, credits, status.
pub(super) fn top_module(r: &Resolved, name: &str, pe: &Pes) -> HResult<Module> {
    let mut m = ModuleBuilder::new(name)?;
    let buffers = format!("M block {}, ", r.ws_m_block);
    let (t, _) = Top::declare(&mut m, r, ("Weight-stationary", &buffers), &[])?;
    let ld = Loader::declare(&mut m, &t)?;
    ld.state_machine(&mut m, &t)?;
    let is = Issuer::declare(&mut m, &t, &ld)?;
    is.state_machine(&mut m, &t)?;
    let wf = Feeder::declare(&mut m, &t, &ld, &is)?;
    wf.state_machine(&mut m, &t, &is)?;
    let (a_rdata, w_rdata) = operand_buffers(&mut m, &t, (&ld, &is, &wf))?;
    bank_flags(
        &mut m,
        &t,
        [
            BankFlags {
                full: &ld.port.afull,
                set: ld.set_a.e(),
                clr: is.slice_end.e(),
                bank_ld: ld.ab.e(),
                bank_rd: is.nest.bank.e(),
            },
            BankFlags {
                full: &ld.port.bfull,
                set: ld.set_w.e(),
                clr: wf.clr_w.e(),
                bank_ld: ld.wb.e(),
                bank_rd: wf.nest.bank.e(),
            },
        ],
    )?;
    let lanes = operand_feed(&mut m, &t, (&is, &wf), (&a_rdata, &w_rdata))?;
    let bottoms = match pe {
        Pes::One(pe) => pe_grid(&mut m, &t, pe, lanes)?,
        Pes::Packed(_) => {
            let Lanes { a, f, w, wsh } = lanes;
            ws_grid(&mut m, &t, pe, (a, f, w, wsh))?
        }
    };
    let (ctl, stages) = control_chain(&mut m, &t, &is)?;
    let dr = Drain::declare(&mut m, r, &is)?;
    dr.state_machine(&mut m, &t)?;
    acc_flags(&mut m, &t, (&is, &dr), (&ctl, &stages[r.c as usize]))?;
    let rq_lanes = accumulator_banks(&mut m, &t, &dr, (&ctl, &stages), &bottoms)?;
    let last_xfer = drain_output(&mut m, &t, &dr, &rq_lanes)?;
    t.status(&mut m, last_xfer, Vec::new())?;
    Ok(m.finish())
}

/// The A and W buffers (double-banked block RAM, written by the loader, read by the issuer and
/// the weight feeder). Returns their read-data registers.
fn operand_buffers(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    (ld, is, wf): (&Loader, &Issuer, &Feeder),
) -> HResult<(Vec<Sig>, Vec<Sig>)> {
    let r = t.r;
    let a_waddr = Expr::concat(&[ld.ab.e(), fit(m, "ld_i_a", &ld.i.e(), is.a_off_w)?])?;
    let w_waddr = Expr::concat(&[
        ld.wb.e(),
        ld.wbase
            .e()
            .add(&fit(m, "ld_i_w", &ld.i.e(), wf.nest.base.width())?)?,
    ])?;
    let (a_in, b_in) = packed_inputs(m, t)?;
    let a_rdata = ld.port.buffer(
        m,
        t,
        ("a_buf", r.qa, 2 * r.ws_a_depth, true),
        (&a_waddr, &a_in),
        &is.a_raddr,
    )?;
    let w_rdata = ld.port.buffer(
        m,
        t,
        ("w_buf", r.qb, 2 * r.ws_w_depth, false),
        (&w_waddr, &b_in),
        &wf.raddr,
    )?;
    Ok((a_rdata, w_rdata))
}

/// The lanes entering the PE array: A rows with the tile flag, weight columns with the
/// shadow-load strobe.
struct Lanes {
    a: Vec<Expr>,
    f: Vec<Expr>,
    w: Vec<Expr>,
    wsh: Vec<Expr>,
}

/// A rows (zeroed on idle cycles, skewed by row; the tile flag travels with them) and weight
/// columns (rows past K load as zero weights, so the stale A lanes they meet add nothing;
/// columns past N only reach results that are never sent), skewed by column with their
/// shadow-load strobe.
fn operand_feed(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    (is, wf): (&Issuer, &Feeder),
    (a_rdata, w_rdata): (&[Sig], &[Sig]),
) -> HResult<Lanes> {
    let Top { r, ports, .. } = t;
    let (clk, rst) = (&ports.clk, &ports.rst);
    let a_vd = m.reg("a_vd", 1)?;
    let flag_d = m.reg("flag_d", 1)?;
    let w_keep_d = m.reg("w_keep_d", 1)?;
    let wsh_d = m.reg("wsh_d", 1)?;
    m.clocked(
        clk,
        vec![rst_or(
            &rst.e(),
            vec![
                Stmt::set(&a_vd, Expr::bool(false))?,
                Stmt::set(&flag_d, Expr::bool(false))?,
                Stmt::set(&wsh_d, Expr::bool(false))?,
            ],
            vec![
                Stmt::set(&a_vd, is.rd.e())?,
                Stmt::set(&flag_d, is.start.e())?,
                Stmt::set(&wsh_d, wf.rd.e())?,
            ],
        )?],
    )?;
    m.clocked(clk, vec![Stmt::set(&w_keep_d, wf.keep.clone())?])?;
    let w_all = b_word(m, r, "w", w_rdata)?;
    let (a, f) = a_row_feed(m, r, (clk, rst), a_rdata, &a_vd, &flag_d)?;
    let mut w = Vec::new();
    let mut wsh = Vec::new();
    if r.p.pe == PeKind::DspPacked {
        // One shadow chain per packing group, skewed by the group's first column.
        w = packed_lanes(m, r, clk, ("w", &w_all), &w_keep_d.e())?;
        for (q, (first, _)) in groups(r.c, r.pack).into_iter().enumerate() {
            wsh.push(delay(
                m,
                clk,
                Some(rst),
                &format!("wsh_pk{q}"),
                &wsh_d.e(),
                first,
            )?);
        }
        return Ok(Lanes { a, f, w, wsh });
    }
    for j in 0..r.c {
        w.push(b_column_lane(m, r, clk, ("w", &w_all, j), &w_keep_d.e())?);
        wsh.push(delay(
            m,
            clk,
            Some(rst),
            &format!("wsh_sk{j}"),
            &wsh_d.e(),
            j,
        )?);
    }
    Ok(Lanes { a, f, w, wsh })
}

/// The R×C PEs: A and the flag move right, weights (and the shadow strobe) down the shadow
/// chains, partial sums down the columns. Returns the column bottoms.
fn pe_grid(m: &mut ModuleBuilder, t: &Top<'_>, pe: &Module, lanes: Lanes) -> HResult<Vec<Expr>> {
    let r = t.r;
    let (rr, cc) = (r.r, r.c);
    let bw = b_lane_width(r);
    let Lanes {
        a: mut a_h,
        f: mut f_h,
        w: mut w_v,
        wsh: wsh_col,
    } = lanes;
    let mut p_v: Vec<Expr> = (0..cc).map(|_| Expr::zero(r.wacc).as_signed()).collect();
    for i in 0..rr {
        for j in 0..cc {
            let a_o = m.wire_signed(&format!("a_{i}_{j}"), r.wa)?;
            let f_o = m.wire(&format!("f_{i}_{j}"), 1)?;
            let w_o = m.wire(&format!("w_{i}_{j}"), bw)?;
            let p_o = m.wire_signed(&format!("p_{i}_{j}"), r.wacc)?;
            if j + 1 == cc {
                m.allow_unused(a_o.name())?;
                m.allow_unused(f_o.name())?;
            }
            if i + 1 == rr {
                m.allow_unused(w_o.name())?;
            }
            let (iu, ju) = (i as usize, j as usize);
            pe_instance(
                m,
                t,
                pe,
                (i, j),
                &[
                    ("a_in", a_h[iu].clone()),
                    ("f_in", f_h[iu].clone()),
                    ("w_in", w_v[ju].clone()),
                    ("wsh", wsh_col[ju].clone()),
                    ("p_in", p_v[ju].clone()),
                    ("a_out", a_o.e()),
                    ("f_out", f_o.e()),
                    ("w_out", w_o.e()),
                    ("p_out", p_o.e()),
                ],
            )?;
            a_h[iu] = a_o.e();
            f_h[iu] = f_o.e();
            w_v[ju] = w_o.e();
            p_v[ju] = p_o.e();
        }
    }
    Ok(p_v)
}

/// The drained rows into the output FIFO (their tags reach it with the requantized row, two
/// periods after the read), and the output credits: taken when a drain read starts, returned
/// when its row leaves the FIFO. Returns the "last beat transferred" condition.
fn drain_output(m: &mut ModuleBuilder, t: &Top<'_>, dr: &Drain, rq_lanes: &[Sig]) -> HResult<Expr> {
    let Top { r, ports, .. } = t;
    let lane_w = LANE_W;
    let tag_in = Expr::concat(&[dr.go.e(), dr.fin.e(), dr.cv.e()])?;
    let tag = delay(m, &ports.clk, Some(&ports.rst), "dr_tag", &tag_in, 2)?;
    let tag = m.wire_from("dr_tag_out", tag)?;
    let row = RowTags {
        push: m.wire_from("row_push", tag.bit(lane_w + 1)?)?,
        last: m.wire_from("row_last", tag.bit(lane_w)?)?,
        cv: m.wire_from("row_cv", tag.slice(lane_w - 1, 0)?)?,
        blk: None,
    };
    let lanes: Vec<Expr> = rq_lanes.iter().map(Sig::e).collect();
    let pop = m.wire("out_pop", 1)?;
    let last_xfer = output_fifo(m, t, &row, &lanes, &pop)?;
    let credits = &dr.credits;
    let (_, credit_w) = fifo_widths(r);
    m.clocked(
        &ports.clk,
        vec![rst_or(
            &ports.rst.e(),
            vec![Stmt::set(
                credits,
                lit(u64::from(r.out_fifo_depth), credit_w)?,
            )?],
            vec![Stmt::set(
                credits,
                credits
                    .e()
                    .sub(&bit_to(dr.go.e(), credit_w)?)?
                    .add(&bit_to(pop.e(), credit_w)?)?,
            )?],
        )?],
    )?;
    Ok(last_xfer)
}
