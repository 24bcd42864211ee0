//! The expert MAC array and its job control: one `lanes x simd` array runs the gate GEMV and
//! both expert layers, a job being one weight tile applied to a list of tokens (per tile one
//! set-up cycle, `n·K/simd` issue cycles, then the drain of the three-stage pipeline). Stage 3
//! requantizes the accumulators to logits, activated hidden values or expert outputs.

use accelforge_hdl::{Expr, ModuleBuilder, Sig, Stmt};

use super::super::Result;
use super::buffers::Banks;
use super::loader::{self, LoadList};
use super::util::{and, eqc, fits, if_, if_else, inc, mux, ram, sdp, set, ul, z, zx};
use super::{Control, Core, Dims, EXPERT, GATE, OUT, Ports, ROUTE};
use crate::units::activation::emit_activation;
use crate::units::requantize::emit_requantize;

// Compute states.
pub(super) const C_WAIT: u64 = 0;
const C_RUN: u64 = 1;
const C_DRAIN: u64 = 2;
/// The drain counter's last value (`DRAIN` cycles: 0, 1, 2).
const DRAIN_LAST: u64 = super::super::params::DRAIN - 1;

/// The compute side's job registers.
pub(super) struct Registers {
    pub(super) c_state: Sig,
    pub(super) c_gate: Sig,
    pub(super) c_load: Sig,
    pub(super) c_layer2: Sig,
    pub(super) c_tile: Sig,
    c_j: Sig,
    pub(super) c_kk: Sig,
    pub(super) c_slot: Sig,
    c_drain: Sig,
}

pub(super) fn registers(m: &mut ModuleBuilder, d: &Dims) -> Result<Registers> {
    Ok(Registers {
        c_state: m.reg("c_state", 2)?,
        c_gate: m.reg("c_gate", 1)?,
        c_load: m.reg("c_load", d.ldw)?,
        c_layer2: m.reg("c_layer2", 1)?,
        c_tile: m.reg("c_tile", d.tilew)?,
        c_j: m.reg("c_j", d.jw)?,
        c_kk: m.reg("c_kk", d.kkw)?,
        c_slot: m.reg("c_slot", 1)?,
        c_drain: m.reg("c_drain", 2)?,
    })
}

/// The token list, the issue logic and the pipeline's control registers.
pub(super) struct Issue {
    pub(super) list_we: Sig,
    pub(super) list_wa: Sig,
    pub(super) list_wd: Sig,
    cur_entry: Sig,
    kk0: Sig,
    entry: Sig,
    pub(super) c_l2: Sig,
    c_rbase: Sig,
    c_xbase: Sig,
    c_eslot: Sig,
    c_run: Sig,
    c_go: Sig,
    kk_end: Sig,
    j_end: Sig,
    c_last_tile: Sig,
    /// Activation-buffer read rows of this issue: x (gate and layer-1 jobs) and h (layer 2).
    pub(super) x_row: Expr,
    pub(super) h_row: Expr,
    grp: Option<Sig>,
    pub(super) v1: Sig,
    first1: Sig,
    last1: Sig,
    yb1: Sig,
    es1: Sig,
    /// The bank group of the words stage 1 holds (`None` when one group covers every bank).
    pub(super) grp1: Option<Sig>,
    pub(super) v2: Sig,
    first2: Sig,
    last2: Sig,
    yb2: Sig,
    es2: Sig,
    pub(super) v3: Sig,
    pub(super) yb3: Sig,
    pub(super) es3: Sig,
    pub(super) w_base: Sig,
}

/// Declares the token list, the issue logic (which job runs, which rows it reads) and the
/// pipeline's registers.
pub(super) fn issue(
    m: &mut ModuleBuilder,
    d: &Dims,
    io: &Ports,
    ctl: &Control,
    ld: &loader::Registers,
    cr: &Registers,
    ll: &LoadList,
) -> Result<Issue> {
    let Dims {
        xaw,
        haw,
        law,
        t_n,
        nw,
        tw,
        dff,
        dm,
        ns,
        kkw,
        jw,
        gt,
        t2,
        lg_nbs,
        rbw,
        wbw,
        k,
        ..
    } = *d;
    // An entry is (the token's x/y row base = token·d_model/nb, gate slot): the row base is
    // computed while routing walks the tokens in order, so expert jobs need no multiplier.
    let list_spec = d.plan.memory("list")?;
    let list_w = list_spec.width;
    let list = ram(m, list_spec, false)?;
    let list_we = m.reg("list_we", 1)?;
    let list_wa = m.reg("list_wa", law)?;
    let list_wd = m.reg("list_wd", list_w)?;
    let c_base = ll.ld_base_q.clone();
    let c_n = m.wire_from(
        "c_n",
        mux(
            &cr.c_gate.e(),
            &ul(t_n, nw.max(tw + 1))?,
            &zx(&ll.ld_n_q.e(), nw.max(tw + 1))?,
        )?,
    )?;
    let list_raddr = m.wire_from(
        "list_raddr",
        mux(
            &eqc(&cr.c_state.e(), C_RUN)?,
            &c_base.e().add(&zx(&cr.c_j.e(), law)?)?.add(&ul(1, law)?)?,
            &c_base.e(),
        )?,
    )?;
    let list_q = sdp(
        m,
        &io.clk,
        &list,
        (list_we.e(), list_wa.e(), list_wd.e()),
        list_raddr.e(),
        "list_q",
    )?;
    let cur_entry = m.reg("cur_entry", list_w)?;
    let kk0 = m.wire_from("kk0", eqc(&cr.c_kk.e(), 0)?)?;
    let entry = m.wire_from("entry", mux(&kk0.e(), &list_q.e(), &cur_entry.e())?)?;
    let c_l2 = m.wire_from("c_l2", and(&cr.c_layer2.e(), &cr.c_gate.e().logic_not())?)?;
    // Row base of the current position: gate jobs walk the tokens in order (the base
    // register advances by d_model/nb per token), layer-2 jobs walk the load's hidden rows in
    // order (by d_ff/nb per position); layer-1 jobs take the token's base from the list.
    let c_rbase = m.reg("c_rbase", rbw)?;
    let g_xbase = fits(m, &c_rbase, 0, xaw)?;
    let c_xbase = m.wire_from(
        "c_xbase",
        mux(&cr.c_gate.e(), &g_xbase, &entry.slice(xaw, 1)?)?,
    )?;
    let c_eslot = m.wire_from("c_eslot", entry.bit(0)?)?;

    let c_kk_last = m.wire_from(
        "c_kk_last",
        mux(
            &c_l2.e(),
            &ul(u64::from(dff / ns - 1), kkw)?,
            &ul(u64::from(dm / ns - 1), kkw)?,
        )?,
    )?;
    let c_run = m.wire_from("c_run", eqc(&cr.c_state.e(), C_RUN)?)?;
    let c_full = m.wire_from("c_full", mux(&cr.c_slot.e(), &ld.full1.e(), &ld.full0.e())?)?;
    let c_go = m.wire_from(
        "c_go",
        and(
            &and(&eqc(&cr.c_state.e(), C_WAIT)?, &c_full.e())?,
            &mux(
                &cr.c_gate.e(),
                &ctl.ph(GATE)?,
                &and(&ctl.ph(EXPERT)?, &cr.c_load.e().lt(&ld.nloads.e())?)?,
            )?,
        )?,
    )?;
    let kk_end = m.wire_from("kk_end", cr.c_kk.e().eq(&c_kk_last.e())?)?;
    let j_end = m.wire_from(
        "j_end",
        zx(&cr.c_j.e(), c_n.width().max(jw))?.eq(&zx(
            &c_n.e().sub(&ul(1, c_n.width())?)?,
            c_n.width().max(jw),
        )?)?,
    )?;
    let c_last_tile = m.wire_from(
        "c_last_tile",
        mux(
            &cr.c_gate.e(),
            &eqc(&cr.c_tile.e(), u64::from(gt - 1))?,
            &and(&cr.c_layer2.e(), &eqc(&cr.c_tile.e(), u64::from(t2 - 1))?)?,
        )?,
    )?;
    // Activation buffer read rows for this issue.
    // Row = position base + word / (nb/simd); the word's bank group is its low bits (`grp`).
    // Address bits above a buffer's depth are never set in the jobs that read it (x in gate
    // and layer-1 jobs, h in layer-2 jobs), so the sums are taken at the memory's width.
    let x_row = c_xbase.e().add(&fits(m, &cr.c_kk, lg_nbs, xaw)?)?;
    let h_row = fits(m, &c_rbase, 0, haw)?.add(&fits(m, &cr.c_kk, lg_nbs, haw)?)?;
    let grp = if lg_nbs > 0 {
        Some(m.wire_from("grp", cr.c_kk.slice(lg_nbs - 1, 0)?)?)
    } else {
        None
    };

    // Pipeline control: stage 1 (memory data), stage 2 (partial sums), stage 3 (results).
    let v1 = m.reg("v1", 1)?;
    let first1 = m.reg("first1", 1)?;
    let last1 = m.reg("last1", 1)?;
    let yb1 = m.reg("yb1", xaw)?;
    let es1 = m.reg("es1", 1)?;
    let grp1 = match &grp {
        Some(g) => Some(m.reg("grp1", g.width())?),
        None => None,
    };
    let v2 = m.reg("v2", 1)?;
    let first2 = m.reg("first2", 1)?;
    let last2 = m.reg("last2", 1)?;
    let yb2 = m.reg("yb2", xaw)?;
    let es2 = m.reg("es2", 1)?;
    let v3 = m.reg("v3", 1)?;
    let yb3 = m.reg("yb3", xaw)?;
    let es3 = m.reg("es3", 1)?;
    if k == 1 {
        m.allow_unused(es3.name())?;
    }
    // Stage-3 write row base for gate jobs (l rows, ceil(E/nb) per token) and layer-1 jobs
    // (h rows, d_ff/nb per load position): results leave stage 3 once per position, in order.
    let w_base = m.reg("w_base", wbw)?;
    Ok(Issue {
        list_we,
        list_wa,
        list_wd,
        cur_entry,
        kk0,
        entry,
        c_l2,
        c_rbase,
        c_xbase,
        c_eslot,
        c_run,
        c_go,
        kk_end,
        j_end,
        c_last_tile,
        x_row,
        h_row,
        grp,
        v1,
        first1,
        last1,
        yb1,
        es1,
        grp1,
        v2,
        first2,
        last2,
        yb2,
        es2,
        v3,
        yb3,
        es3,
        w_base,
    })
}

/// Stage 3's accumulator registers and the values the buffers store from them: logits (gate
/// jobs), activated hidden values (layer 1) and expert outputs (layer 2), one per lane.
pub(super) struct Results {
    pub(super) outs: Vec<Sig>,
    pub(super) logit: Vec<Sig>,
    pub(super) hidden: Vec<Sig>,
    pub(super) y: Vec<Sig>,
}

pub(super) fn results(m: &mut ModuleBuilder, p: &super::MoeParams, d: &Dims) -> Result<Results> {
    let ty = &p.types;
    let mut r = Results {
        outs: Vec::new(),
        logit: Vec::new(),
        hidden: Vec::new(),
        y: Vec::new(),
    };
    for l in 0..d.nl {
        r.outs.push(m.reg_signed(&format!("acc_out{l}"), d.wacc)?);
    }
    let acc_in = p.acc_type(ty.input.frac_bits())?;
    let acc_hid = p.acc_type(ty.hidden.frac_bits())?;
    let act = p.activation_params();
    for (l, o) in r.outs.iter().enumerate() {
        r.logit.push(emit_requantize(
            m,
            &format!("rql{l}"),
            o,
            &acc_in,
            &ty.logit,
        )?);
        let pre = emit_requantize(m, &format!("rqh{l}"), o, &acc_in, &ty.hidden)?;
        r.hidden
            .push(emit_activation(m, &format!("act{l}"), &pre, &act)?);
        r.y.push(emit_requantize(
            m,
            &format!("rqy{l}"),
            o,
            &acc_hid,
            &ty.expert_out,
        )?);
    }
    Ok(r)
}

/// The MAC array: per lane, `simd` products of the selected operands and the weight word, summed
/// into a stage-2 partial sum, then accumulated. Returns the (partial sum, its next value)
/// pairs and the accumulators.
pub(super) type Array = (Vec<(Sig, Expr)>, Vec<Sig>);

pub(super) fn array(
    m: &mut ModuleBuilder,
    d: &Dims,
    cs: &Issue,
    wq: &Sig,
    bufs: &Banks,
) -> Result<Array> {
    let Dims {
        nb,
        ns,
        nl,
        wa,
        wacc,
        w_w,
        ..
    } = *d;
    let select = |m: &mut ModuleBuilder, name: &str, banks: &[Sig], s: u32| -> Result<Sig> {
        let mut e = banks[s as usize].e();
        if let Some(g) = &cs.grp1 {
            for grp_v in 1..(nb / ns) {
                e = mux(
                    &eqc(&g.e(), u64::from(grp_v))?,
                    &banks[(grp_v * ns + s) as usize].e(),
                    &e,
                )?;
            }
        }
        Ok(m.wire_from(name, e)?)
    };
    let mut psums = Vec::new();
    let mut operands = Vec::new();
    for s in 0..ns {
        let xs = select(m, &format!("xs{s}"), &bufs.xq, s)?;
        let hs = select(m, &format!("hs{s}"), &bufs.hq, s)?;
        let a = mux(&cs.c_l2.e(), &hs.extend(wa)?, &xs.extend(wa)?)?;
        operands.push(m.wire_from(&format!("opnd{s}"), a)?);
    }
    for l in 0..nl {
        let mut sum = Expr::slit(0, wacc)?;
        for s in 0..ns {
            let idx = l * ns + s;
            let wv = m.wire_from(
                &format!("w{l}_{s}"),
                wq.slice(idx * w_w + w_w - 1, idx * w_w)?.as_signed(),
            )?;
            let prod = m.product(&format!("prod{l}_{s}"), &operands[s as usize].e(), &wv.e())?;
            sum = sum.add(&prod.extend(wacc)?)?;
        }
        let ps = m.reg_signed(&format!("psum{l}"), wacc)?;
        psums.push((ps, sum));
    }
    let mut accs = Vec::new();
    for l in 0..nl {
        accs.push(m.reg_signed(&format!("acc{l}"), wacc)?);
    }
    Ok((psums, accs))
}

/// The compute side's clocked statements: job start, issue, drain, and the MAC pipeline.
pub(super) fn seq(c: &Core) -> Result<Vec<Stmt>> {
    let (d, ctl, ld, cr, cs, bufs) = (&c.d, &c.ctl, &c.ld, &c.cr, &c.cs, &c.bufs);
    let (psums, accs) = &c.array;
    let Dims {
        rbw,
        wbw,
        t1,
        nl,
        wacc,
        ..
    } = *d;
    let (xs_stride, hs_stride, ls_stride) = (
        d.plan.buffers.x_stride,
        d.plan.buffers.h_stride,
        d.plan.buffers.l_stride,
    );
    let (c_gate, c_layer2, c_tile, c_slot) = (&cr.c_gate, &cr.c_layer2, &cr.c_tile, &cr.c_slot);
    let mut body = vec![if_(
        cs.c_go.e(),
        vec![
            set(&cr.c_state, ul(C_RUN, 2)?)?,
            z(&cr.c_j)?,
            z(&cr.c_kk)?,
            z(&cs.c_rbase)?,
            z(&cs.w_base)?,
        ],
    )?];
    let r_stride = mux(&c_gate.e(), &ul(xs_stride, rbw)?, &ul(hs_stride, rbw)?)?;
    let w_stride = mux(&c_gate.e(), &ul(ls_stride, wbw)?, &ul(hs_stride, wbw)?)?;
    body.push(if_(
        cs.v3.e(),
        vec![set(&cs.w_base, cs.w_base.e().add(&w_stride)?)?],
    )?);
    body.push(if_(
        cs.c_run.e(),
        vec![
            set(&cs.cur_entry, cs.entry.e())?,
            if_else(
                cs.kk_end.e(),
                vec![
                    z(&cr.c_kk)?,
                    if_else(
                        cs.j_end.e(),
                        vec![
                            set(&cr.c_state, ul(C_DRAIN, 2)?)?,
                            z(&cr.c_drain)?,
                            if_else(c_slot.e(), vec![z(&ld.full1)?], vec![z(&ld.full0)?])?,
                            set(c_slot, c_slot.e().not())?,
                            if_(
                                and(&c_gate.e().logic_not(), &cs.c_last_tile.e())?,
                                vec![set(&cr.c_load, inc(&cr.c_load)?)?],
                            )?,
                        ],
                        vec![
                            set(&cr.c_j, inc(&cr.c_j)?)?,
                            set(&cs.c_rbase, cs.c_rbase.e().add(&r_stride)?)?,
                        ],
                    )?,
                ],
                vec![set(&cr.c_kk, inc(&cr.c_kk)?)?],
            )?,
        ],
    )?);
    body.push(if_(
        eqc(&cr.c_state.e(), C_DRAIN)?,
        vec![if_else(
            eqc(&cr.c_drain.e(), DRAIN_LAST)?,
            vec![
                set(&cr.c_state, ul(C_WAIT, 2)?)?,
                if_else(
                    cs.c_last_tile.e(),
                    vec![
                        z(c_tile)?,
                        z(c_layer2)?,
                        if_else(
                            c_gate.e(),
                            vec![z(c_gate)?, set(&ctl.phase, ul(ROUTE, 3)?)?],
                            vec![if_(
                                cr.c_load.e().eq(&ld.nloads.e())?,
                                vec![set(&ctl.phase, ul(OUT, 3)?)?],
                            )?],
                        )?,
                    ],
                    vec![if_else(
                        and(
                            &and(&c_gate.e().logic_not(), &c_layer2.e().logic_not())?,
                            &eqc(&c_tile.e(), u64::from(t1 - 1))?,
                        )?,
                        vec![set(c_layer2, ul(1, 1)?)?, z(c_tile)?],
                        vec![set(c_tile, inc(c_tile)?)?],
                    )?],
                )?,
            ],
            vec![set(&cr.c_drain, inc(&cr.c_drain)?)?],
        )?],
    )?);
    // MAC pipeline.
    let mut st1 = vec![
        set(&cs.v1, cs.c_run.e())?,
        set(&cs.first1, cs.kk0.e())?,
        set(&cs.last1, cs.kk_end.e())?,
        set(&cs.yb1, cs.c_xbase.e())?,
        set(&cs.es1, cs.c_eslot.e())?,
        set(&cs.v2, cs.v1.e())?,
        set(&cs.first2, cs.first1.e())?,
        set(&cs.last2, cs.last1.e())?,
        set(&cs.yb2, cs.yb1.e())?,
        set(&cs.es2, cs.es1.e())?,
        set(&cs.v3, and(&cs.v2.e(), &cs.last2.e())?)?,
    ];
    if let (Some(g), Some(g1)) = (&cs.grp, &cs.grp1) {
        st1.push(set(g1, g.e())?);
    }
    for (ps, sum) in psums {
        st1.push(set(ps, sum.clone())?);
    }
    let mut capture = vec![set(&cs.yb3, cs.yb2.e())?, set(&cs.es3, cs.es2.e())?];
    for l in 0..nl as usize {
        let base = mux(&cs.first2.e(), &Expr::slit(0, wacc)?, &accs[l].e())?;
        let next = base.add(&psums[l].0.e())?;
        st1.push(if_(cs.v2.e(), vec![set(&accs[l], next.clone())?])?);
        capture.push(set(&bufs.res.outs[l], next)?);
    }
    st1.push(if_(and(&cs.v2.e(), &cs.last2.e())?, capture)?);
    body.extend(st1);
    Ok(body)
}
