//! The combine and output stages: per output element, the k expert outputs weighted by their
//! gate weights, summed and requantized, then queued in the output FIFO for `m_axis` (issue
//! only with room in the FIFO, so `m_axis_tready` may stall at any time).

use accelforge_hdl::blocks::fifo::{self, FifoParams};
use accelforge_hdl::{Expr, ModuleBuilder, Sig, Stmt};

use super::super::Result;
use super::super::params::OUT_FIFO_DEPTH;
use super::buffers::{Banks, bank_last};
use super::router::Dispatch;
use super::util::{and, eqc, if_, if_else, inc, ltc, mux, set, ul, z, zx};
use super::{Control, Core, Dims, IDLE, OUT, Ports};
use crate::units::requantize::emit_requantize;

/// The output walker's issue logic and the FIFO's interface.
pub(super) struct Issue {
    pub(super) o_issued_all: Sig,
    pub(super) fifo_p: FifoParams,
    f_push: Sig,
    f_data: Sig,
    f_full: Sig,
    f_pop_data: Sig,
    f_empty: Sig,
    f_count: Sig,
    pub(super) o_v1: Sig,
    o_last1: Sig,
    o_sel1: Option<Sig>,
    o_issue: Sig,
    o_last_d: Sig,
    o_final: Sig,
}

pub(super) fn issue(m: &mut ModuleBuilder, d: &Dims, ctl: &Control, bufs: &Banks) -> Result<Issue> {
    let Dims {
        ob, lg_nb, dm, t_n, ..
    } = *d;
    let o_issued_all = m.reg("o_done_issue", 1)?;
    let fifo_p = FifoParams {
        width: ob + 1,
        depth: OUT_FIFO_DEPTH,
    };
    let fcw = fifo_p.count_width();
    let f_push = m.wire("f_push", 1)?;
    let f_data = m.wire("f_data", ob + 1)?;
    let f_full = m.wire("f_full", 1)?;
    let f_pop_data = m.wire("f_pop_data", ob + 1)?;
    let f_empty = m.wire("f_empty", 1)?;
    let f_count = m.wire("f_count", fcw)?;
    m.allow_unused(f_full.name())?;
    let o_v1 = m.reg("o_v1", 1)?;
    let o_last1 = m.reg("o_last1", 1)?;
    let o_sel1 = if lg_nb > 0 {
        Some(m.reg("o_sel1", lg_nb)?)
    } else {
        None
    };
    let credit = zx(&f_count.e(), fcw + 1)?.add(&zx(&o_v1.e(), fcw + 1)?)?;
    let o_issue = m.wire_from(
        "o_issue",
        and(
            &and(&ctl.ph(OUT)?, &o_issued_all.e().logic_not())?,
            &ltc(&credit, u64::from(OUT_FIFO_DEPTH))?,
        )?,
    )?;
    let o_last_d = m.wire_from("o_last_d", eqc(&bufs.o_d.e(), u64::from(dm - 1))?)?;
    let o_final = m.wire_from(
        "o_final",
        and(&o_last_d.e(), &eqc(&bufs.o_t.e(), t_n - 1)?)?,
    )?;
    Ok(Issue {
        o_issued_all,
        fifo_p,
        f_push,
        f_data,
        f_full,
        f_pop_data,
        f_empty,
        f_count,
        o_v1,
        o_last1,
        o_sel1,
        o_issue,
        o_last_d,
        o_final,
    })
}

/// The combine datapath and the output FIFO; returns `out_done` (the last element leaves).
pub(super) fn combine(
    m: &mut ModuleBuilder,
    p: &super::MoeParams,
    d: &Dims,
    io: &Ports,
    bufs: &Banks,
    out: &Issue,
    disp: &Dispatch,
) -> Result<Sig> {
    let Dims { k, nb, fw, ob, .. } = *d;
    let ct = super::super::model::combine_type(p)?;
    let wc = ct.width();
    let mut csum = Expr::slit(0, wc)?;
    for s in 0..k as usize {
        let mut ysel = bufs.yq[s][0].e();
        if let Some(os) = &out.o_sel1 {
            for b in 1..nb {
                ysel = mux(
                    &eqc(&os.e(), u64::from(b))?,
                    &bufs.yq[s][b as usize].e(),
                    &ysel,
                )?;
            }
        }
        let ysig = m.wire_from(&format!("cy{s}"), ysel)?;
        let wsig = m.wire_from(&format!("cw{s}"), zx(&disp.gwq[s].e(), fw + 2)?.as_signed())?;
        let prod = m.product(&format!("cprod{s}"), &wsig.e(), &ysig.e())?;
        csum = csum.add(&prod.extend(wc)?)?;
    }
    let csum = m.wire_from("csum", csum)?;
    let out_v = emit_requantize(m, "rqo", &csum, &ct, &p.types.output)?;
    m.assign_sig(
        &out.f_data,
        Expr::concat(&[out.o_last1.e(), out_v.extend(ob)?.as_unsigned()])?,
    )?;
    m.assign_sig(&out.f_push, out.o_v1.e())?;
    m.instance(
        &fifo::module(&out.fifo_p)?,
        "out_fifo",
        &[],
        &[
            ("clk", io.clk.e()),
            ("rst", io.rst.e()),
            ("push", out.f_push.e()),
            ("push_data", out.f_data.e()),
            ("full", out.f_full.e()),
            ("pop", io.m_tready.e()),
            ("pop_data", out.f_pop_data.e()),
            ("empty", out.f_empty.e()),
            ("count", out.f_count.e()),
        ],
    )?;
    m.assign_sig(&io.m_tvalid, out.f_empty.e().logic_not())?;
    m.assign_sig(&io.m_tdata, out.f_pop_data.slice(ob - 1, 0)?)?;
    m.assign_sig(&io.m_tlast, out.f_pop_data.bit(ob)?)?;
    Ok(m.wire_from(
        "out_done",
        and(
            &and(&out.f_empty.e().logic_not(), &io.m_tready.e())?,
            &out.f_pop_data.bit(ob)?,
        )?,
    )?)
}

/// The output stage's clocked statements: walk the y rows, feed the FIFO, finish the batch
/// when the last element leaves.
pub(super) fn seq(c: &Core) -> Result<Vec<Stmt>> {
    let (d, io, ctl, bufs, out) = (&c.d, &c.io, &c.ctl, &c.bufs, &c.out);
    let out_done = &c.out_done;
    let (o_t, o_d, o_row) = (&bufs.o_t, &bufs.o_d, &bufs.o_row);
    let mut out_issue = vec![
        if_else(
            out.o_last_d.e(),
            vec![z(o_d)?, set(o_t, inc(o_t)?)?],
            vec![set(o_d, inc(o_d)?)?],
        )?,
        if_(out.o_final.e(), vec![set(&out.o_issued_all, ul(1, 1)?)?])?,
        if_(bank_last(d, o_d)?, vec![set(o_row, inc(o_row)?)?])?,
    ];
    if let Some(os) = &out.o_sel1 {
        out_issue.push(set(os, o_d.slice(d.lg_nb - 1, 0)?)?);
    }
    Ok(vec![
        set(&out.o_v1, out.o_issue.e())?,
        set(&out.o_last1, out.o_final.e())?,
        if_(out.o_issue.e(), out_issue)?,
        if_(
            and(&ctl.ph(OUT)?, &out_done.e())?,
            vec![set(&io.done, ul(1, 1)?)?, set(&ctl.phase, ul(IDLE, 3)?)?],
        )?,
    ])
}
