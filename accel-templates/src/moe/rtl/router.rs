//! The router: per token, scan its logits for the top-k experts, compute their score
//! numerators (softmax table or sigmoid) and divide them into gate weights, then dispatch each
//! (token, expert) pair to the expert's queue in the token list (or drop it when the queue is
//! full); planning then turns the queues (or, without reordering, the runs of equal experts in
//! arrival order) into the expert-load list.

use accelforge_hdl::{Expr, ModuleBuilder, Sig, Stmt};

use super::super::Result;
use super::super::model::exp_table;
use super::super::params::GateMode;
use super::buffers::Banks;
use super::loader::{self, LoadList};
use super::util::{and, eqc, fits, if_, if_else, inc, ltc, mux, ram, sdp, set, ul, z, zx};
use super::{Control, Core, Dims, EXPERT, PLAN, Ports, ROUTE};
use crate::units::activation::emit_activation;

// Routing states of one token.
pub(super) const R_SCAN: u64 = 0;
const R_NUM: u64 = 1;
const R_DIV: u64 = 2;
const R_DISP: u64 = 3;

/// The routing registers: the scan's best two (value, expert), the dividers, the experts'
/// queue fill counts, the arrival-order run being collected and the planner's expert.
pub(super) struct Registers {
    pub(super) r_state: Sig,
    rsel: Option<Sig>,
    lval: Sig,
    bv1: Sig,
    bi1: Sig,
    bv2: Sig,
    bi2: Sig,
    have2: Sig,
    rr0: Sig,
    rr1: Sig,
    den: Sig,
    q0: Sig,
    q1: Sig,
    r_cnt: Sig,
    r_slot: Sig,
    pub(super) cnts: Vec<Sig>,
    pub(super) flat: Sig,
    pub(super) run_open: Sig,
    run_exp: Sig,
    run_base: Sig,
    run_n: Sig,
    pub(super) dropped: Sig,
    pub(super) p_e: Sig,
    pe_qbase: Sig,
    n1w: Sig,
    n2w: Sig,
    den_next: Expr,
}

pub(super) fn registers(
    m: &mut ModuleBuilder,
    p: &super::MoeParams,
    d: &Dims,
    io: &Ports,
    bufs: &Banks,
) -> Result<Registers> {
    let Dims {
        lg_nb,
        nb,
        w_l,
        ew,
        fe,
        fw,
        ne,
        cw,
        law,
        nw,
        ebw,
        k,
        ..
    } = *d;
    let r_state = m.reg("r_state", 2)?;
    let rsel = if lg_nb > 0 {
        Some(m.reg("rsel", lg_nb)?)
    } else {
        None
    };
    let mut lsel = bufs.lq[0].e();
    if let Some(rs) = &rsel {
        for b in 1..nb {
            lsel = mux(
                &eqc(&rs.e(), u64::from(b))?,
                &bufs.lq[b as usize].e(),
                &lsel,
            )?;
        }
    }
    let lval = m.wire_from("lval", lsel)?;
    let bv1 = m.reg_signed("bv1", w_l)?;
    let bi1 = m.reg("bi1", ew)?;
    let bv2 = m.reg_signed("bv2", w_l)?;
    let bi2 = m.reg("bi2", ew)?;
    let have2 = m.reg("have2", 1)?;
    let sw = fe + 3;
    let rr0 = m.reg("rr0", sw)?;
    let rr1 = m.reg("rr1", sw)?;
    let den = m.reg("den", sw)?;
    let q0 = m.reg("q0", fw + 1)?;
    let q1 = m.reg("q1", fw + 1)?;
    let r_cnt = m.reg("r_cnt", super::bits_for(u64::from(fw) + 1))?;
    let r_slot = m.reg("r_slot", 1)?;
    let mut cnts = Vec::new();
    for e in 0..ne {
        cnts.push(m.reg(&format!("cnt{e}"), cw)?);
    }
    let flat = m.reg("flat", law)?;
    let run_open = m.reg("run_open", 1)?;
    let run_exp = m.reg("run_exp", ew)?;
    let run_base = m.reg("run_base", law)?;
    let run_n = m.reg("run_n", nw)?;
    let dropped = m.reg("dropped", 16)?;
    m.assign_sig(&io.stat_dropped, dropped.e())?;
    let p_e = m.reg("p_e", ebw)?;
    // Start of queue p_e in the list (p_e·min(tokens, queue_depth)), advanced as p_e counts.
    let pe_qbase = m.reg("pe_qbase", law)?;

    let (n1, n2) = numerators(m, p, d, &bv1, &bv2)?;
    let n1w = m.wire_from("num1", zx(&n1, sw)?)?;
    let n2w = m.wire_from("num2", zx(&n2, sw)?)?;
    let den_next = if k == 2 {
        n1w.e().add(&n2w.e())?
    } else {
        n1w.e()
    };
    Ok(Registers {
        r_state,
        rsel,
        lval,
        bv1,
        bi1,
        bv2,
        bi2,
        have2,
        rr0,
        rr1,
        den,
        q0,
        q1,
        r_cnt,
        r_slot,
        cnts,
        flat,
        run_open,
        run_exp,
        run_base,
        run_n,
        dropped,
        p_e,
        pe_qbase,
        n1w,
        n2w,
        den_next,
    })
}

/// The score numerators of the best (`bv1`) and second (`bv2`) logits: softmax takes
/// `exp(l2 - l1)` from a table (the best one's is exactly 1.0), renorm the sigmoid of each,
/// floored at one LSB so the divisor is never zero.
fn numerators(
    m: &mut ModuleBuilder,
    p: &super::MoeParams,
    d: &Dims,
    bv1: &Sig,
    bv2: &Sig,
) -> Result<(Expr, Expr)> {
    let (w_l, fe) = (d.w_l, d.fe);
    let fe1 = fe + 1;
    Ok(match p.gate_mode {
        GateMode::Softmax => {
            let diff = m.wire_from(
                "lgdiff",
                bv1.extend(w_l + 1)?
                    .sub(&bv2.extend(w_l + 1)?)?
                    .as_unsigned(),
            )?;
            let sh = p.exp_shift();
            let tbits = p.score_table_bits;
            // Index = min(diff >> shift, 2^tb - 1): any bit above the index range saturates it.
            let idx_reg = m.reg("exp_idx", tbits)?;
            let avail = (w_l + 1).saturating_sub(sh);
            let body = if avail == 0 {
                set(&idx_reg, ul(0, tbits)?)?
            } else if avail <= tbits {
                set(&idx_reg, zx(&diff.slice(w_l, sh)?, tbits)?)?
            } else {
                let hi = diff.slice(w_l, sh + tbits)?.red_or();
                if_else(
                    hi,
                    vec![set(&idx_reg, Expr::ones(tbits))?],
                    vec![set(&idx_reg, diff.slice(sh + tbits - 1, sh)?)?],
                )?
            };
            if sh > 0 {
                m.allow_unused(diff.name())?;
            }
            m.comb(vec![body])?;
            let table = exp_table(p)?;
            let e2 = m.reg("exp_n2", fe1)?;
            let arms = table
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    Ok((
                        vec![ul(i as u64, tbits)?],
                        vec![set(&e2, ul(*v as u64, fe1)?)?],
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            m.comb(vec![Stmt::case(
                idx_reg.e(),
                arms,
                vec![set(&e2, ul(0, fe1)?)?],
            )?])?;
            (ul(1u64 << fe, fe1)?, e2.e())
        }
        GateMode::Renorm => {
            let sp = p.sigmoid_params()?;
            let s1 = emit_activation(m, "sig1", bv1, &sp)?;
            let s2 = emit_activation(m, "sig2", bv2, &sp)?;
            let floor1 = |s: &Sig| -> Result<Expr> { mux(&eqc(&s.e(), 0)?, &ul(1, fe1)?, &s.e()) };
            (floor1(&s1)?, floor1(&s2)?)
        }
    })
}

/// The dispatch decision for slot `r_slot` of token `r_t` (its expert, gate weight, whether
/// the expert's queue has room and where the queue starts) and the gate-weight memories the
/// combine stage reads.
pub(super) struct Dispatch {
    gw_we: Sig,
    d_exp: Sig,
    cnt_sel: Sig,
    qb_sel: Sig,
    d_kept: Sig,
    /// Per gate slot, the registered gate weight of output token `o_t`.
    pub(super) gwq: Vec<Sig>,
}

pub(super) fn dispatch(
    m: &mut ModuleBuilder,
    p: &super::MoeParams,
    d: &Dims,
    io: &Ports,
    ctl: &Control,
    rt: &Registers,
    bufs: &Banks,
) -> Result<Dispatch> {
    let Dims {
        cw,
        law,
        ne,
        ew,
        mlt,
        k,
        fw,
        ..
    } = *d;
    let mut gwq = Vec::new();
    let gw_we = m.wire_from(
        "gw_we",
        and(&ctl.ph(ROUTE)?, &eqc(&rt.r_state.e(), R_DISP)?)?,
    )?;
    let d_exp = m.wire_from(
        "d_exp",
        mux(&eqc(&rt.r_slot.e(), 0)?, &rt.bi1.e(), &rt.bi2.e())?,
    )?;
    let d_q = m.wire_from(
        "d_q",
        mux(&eqc(&rt.r_slot.e(), 0)?, &rt.q0.e(), &rt.q1.e())?,
    )?;
    // The chosen expert's fill count and the start of its queue in the list (a constant per
    // expert, e·min(tokens, queue_depth), selected by the same case: no multiplier).
    let cnt_sel = m.reg("cnt_sel", cw)?;
    let qb_sel = m.reg("qb_sel", law)?;
    let cnt_arms = (0..ne)
        .map(|e| {
            Ok((
                vec![ul(u64::from(e), ew)?],
                vec![
                    set(&cnt_sel, rt.cnts[e as usize].e())?,
                    set(&qb_sel, ul(u64::from(e) * u64::from(mlt), law)?)?,
                ],
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    m.comb(vec![Stmt::case(
        d_exp.e(),
        cnt_arms,
        vec![set(&cnt_sel, ul(0, cw)?)?, set(&qb_sel, ul(0, law)?)?],
    )?])?;
    let d_kept = m.wire_from("d_kept", ltc(&cnt_sel.e(), u64::from(p.queue_depth))?)?;
    for s in 0..k {
        let gr = ram(m, d.plan.memory(&format!("gw{s}"))?, false)?;
        let hit = and(&gw_we.e(), &eqc(&rt.r_slot.e(), u64::from(s))?)?;
        gwq.push(sdp(
            m,
            &io.clk,
            &gr,
            (
                hit,
                bufs.r_t.e(),
                mux(&d_kept.e(), &d_q.e(), &ul(0, fw + 1)?)?,
            ),
            bufs.o_t.e(),
            &format!("gwq{s}"),
        )?);
    }
    Ok(Dispatch {
        gw_we,
        d_exp,
        cnt_sel,
        qb_sel,
        d_kept,
        gwq,
    })
}

/// The router's clocked statements: scan, numerators, division, dispatch, then planning.
pub(super) fn seq(m: &mut ModuleBuilder, c: &Core) -> Result<Vec<Stmt>> {
    let mut body = scan_and_divide(m, c)?;
    body.push(dispatch_seq(m, c)?);
    body.push(plan_seq(m, c)?);
    Ok(body)
}

/// Scan (top-2 of the token's logits), numerators, and the bit-serial divisions.
fn scan_and_divide(m: &mut ModuleBuilder, c: &Core) -> Result<Vec<Stmt>> {
    let (d, ctl, bufs, rt) = (&c.d, &c.ctl, &c.bufs, &c.rt);
    let Dims {
        ebw,
        ew,
        lg_nb,
        ne,
        fw,
        ..
    } = *d;
    let (r_i, lval) = (&bufs.r_i, &rt.lval);
    let (bv1, bi1, bv2, bi2, have2) = (&rt.bv1, &rt.bi1, &rt.bv2, &rt.bi2, &rt.have2);
    let mut body = Vec::new();
    let r_scan = and(&ctl.ph(ROUTE)?, &eqc(&rt.r_state.e(), R_SCAN)?)?;
    let e_idx = m.wire_from("e_idx", r_i.e().sub(&ul(1, ebw)?)?)?;
    m.allow_unused(e_idx.name())?;
    let e_idx_e = if ebw > ew {
        e_idx.slice(ew - 1, 0)?
    } else {
        e_idx.e()
    };
    let mut scan = vec![set(r_i, inc(r_i)?)?];
    if let Some(rs) = &rt.rsel {
        scan.push(set(rs, r_i.slice(lg_nb - 1, 0)?)?);
    }
    scan.push(if_(
        r_i.e().ne(&ul(0, ebw)?)?,
        vec![if_else(
            eqc(&r_i.e(), 1)?,
            vec![set(bv1, lval.e())?, set(bi1, ul(0, ew)?)?, z(have2)?],
            vec![if_else(
                lval.e().gt(&bv1.e())?,
                vec![
                    set(bv2, bv1.e())?,
                    set(bi2, bi1.e())?,
                    set(have2, ul(1, 1)?)?,
                    set(bv1, lval.e())?,
                    set(bi1, e_idx_e.clone())?,
                ],
                vec![if_(
                    have2.e().logic_not().logic_or(&lval.e().gt(&bv2.e())?)?,
                    vec![
                        set(bv2, lval.e())?,
                        set(bi2, e_idx_e.clone())?,
                        set(have2, ul(1, 1)?)?,
                    ],
                )?],
            )?],
        )?],
    )?);
    scan.push(if_(
        eqc(&r_i.e(), u64::from(ne))?,
        vec![set(&rt.r_state, ul(R_NUM, 2)?)?],
    )?);
    body.push(if_(r_scan, scan)?);
    body.push(if_(
        and(&ctl.ph(ROUTE)?, &eqc(&rt.r_state.e(), R_NUM)?)?,
        vec![
            set(&rt.rr0, rt.n1w.e())?,
            set(&rt.rr1, rt.n2w.e())?,
            set(&rt.den, rt.den_next.clone())?,
            z(&rt.q0)?,
            z(&rt.q1)?,
            z(&rt.r_cnt)?,
            set(&rt.r_state, ul(R_DIV, 2)?)?,
        ],
    )?);
    let div_step = |rr: &Sig, q: &Sig| -> Result<Vec<Stmt>> {
        let ge = rr.e().ge(&rt.den.e())?;
        let rem = mux(&ge, &rr.e().sub(&rt.den.e())?, &rr.e())?;
        let qn = if fw >= 1 {
            Expr::concat(&[q.slice(fw - 1, 0)?, ge.clone()])?
        } else {
            ge.clone()
        };
        Ok(vec![set(q, qn)?, set(rr, rem.shl(1))?])
    };
    let mut div = div_step(&rt.rr0, &rt.q0)?;
    div.extend(div_step(&rt.rr1, &rt.q1)?);
    div.push(set(&rt.r_cnt, inc(&rt.r_cnt)?)?);
    div.push(if_(
        eqc(&rt.r_cnt.e(), u64::from(fw))?,
        vec![set(&rt.r_state, ul(R_DISP, 2)?)?, z(&rt.r_slot)?],
    )?);
    body.push(if_(
        and(&ctl.ph(ROUTE)?, &eqc(&rt.r_state.e(), R_DIV)?)?,
        div,
    )?);
    Ok(body)
}

/// Appends load (`exp`, list `base`, `n` tokens) to the expert-load list.
fn write_load(
    ld: &loader::Registers,
    ll: &LoadList,
    ldaw: u32,
    (exp, base, n): (Expr, Expr, Expr),
) -> Result<Vec<Stmt>> {
    Ok(vec![
        set(&ll.ld_we, ul(1, 1)?)?,
        set(&ll.ld_wa, ld.nloads.slice(ldaw - 1, 0)?)?,
        set(&ll.ld_wexp, exp)?,
        set(&ll.ld_wbase, base)?,
        set(&ll.ld_wn, n)?,
        set(&ld.nloads, inc(&ld.nloads)?)?,
    ])
}

/// Writes the load being collected (`run_*`) as the next load of the list.
fn close_run(
    ld: &loader::Registers,
    ll: &LoadList,
    rt: &Registers,
    ldaw: u32,
) -> Result<Vec<Stmt>> {
    write_load(
        ld,
        ll,
        ldaw,
        (rt.run_exp.e(), rt.run_base.e(), rt.run_n.e()),
    )
}

/// Dispatch: a kept pair goes into the list (its expert's queue, or arrival order) and counts
/// in its expert's queue; a dropped one is counted. Then the next slot or token, or planning.
fn dispatch_seq(m: &mut ModuleBuilder, c: &Core) -> Result<Stmt> {
    let (d, ctl, ld, ll, cs, bufs, rt, disp) =
        (&c.d, &c.ctl, &c.ld, &c.ll, &c.cs, &c.bufs, &c.rt, &c.disp);
    let Dims {
        law,
        ne,
        ew,
        nw,
        k,
        t_n,
        laww,
        xaw,
        ldaw,
        ..
    } = *d;
    // A kept pair's position in its queue is below min(tokens, queue_depth), so it fits `law`.
    let qaddr = disp.qb_sel.e().add(&fits(m, &disp.cnt_sel, 0, law)?)?;
    let mut cnt_inc_arms = Vec::new();
    for e in 0..ne {
        cnt_inc_arms.push((
            vec![ul(u64::from(e), ew)?],
            vec![set(&rt.cnts[e as usize], inc(&rt.cnts[e as usize])?)?],
        ));
    }
    let mut open_run = vec![if_(rt.run_open.e(), close_run(ld, ll, rt, ldaw)?)?];
    open_run.extend([
        set(&rt.run_open, ul(1, 1)?)?,
        set(&rt.run_exp, disp.d_exp.e())?,
        set(&rt.run_base, rt.flat.e())?,
        set(&rt.run_n, ul(1, nw)?)?,
    ]);
    let token_entry = Expr::concat(&[bufs.r_xbase.e(), rt.r_slot.e()])?;
    let (r_t, r_slot) = (&bufs.r_t, &rt.r_slot);
    let disp_body = vec![
        if_else(
            disp.d_kept.e(),
            vec![
                Stmt::case(disp.d_exp.e(), cnt_inc_arms, vec![])?,
                set(&cs.list_we, ul(1, 1)?)?,
                set(&cs.list_wa, mux(&ctl.reorder.e(), &qaddr, &rt.flat.e())?)?,
                set(&cs.list_wd, token_entry)?,
                set(&rt.flat, inc(&rt.flat)?)?,
                if_(
                    ctl.reorder.e().logic_not(),
                    vec![if_else(
                        and(&rt.run_open.e(), &rt.run_exp.e().eq(&disp.d_exp.e())?)?,
                        vec![set(&rt.run_n, inc(&rt.run_n)?)?],
                        open_run,
                    )?],
                )?,
            ],
            vec![set(&rt.dropped, inc(&rt.dropped)?)?],
        )?,
        if_else(
            eqc(&r_slot.e(), u64::from(k - 1))?,
            vec![if_else(
                eqc(&r_t.e(), t_n - 1)?,
                vec![
                    set(&ctl.phase, ul(PLAN, 3)?)?,
                    z(&rt.p_e)?,
                    z(&rt.pe_qbase)?,
                ],
                vec![
                    set(r_t, inc(r_t)?)?,
                    set(
                        &bufs.r_lbase,
                        bufs.r_lbase.e().add(&ul(d.plan.buffers.l_stride, laww)?)?,
                    )?,
                    set(
                        &bufs.r_xbase,
                        bufs.r_xbase.e().add(&ul(d.plan.buffers.x_stride, xaw)?)?,
                    )?,
                    z(&bufs.r_i)?,
                    set(&rt.r_state, ul(R_SCAN, 2)?)?,
                ],
            )?],
            vec![set(r_slot, inc(r_slot)?)?],
        )?,
    ];
    if_(disp.gw_we.e(), disp_body)
}

/// Planning: one expert per cycle (reordered), or the last open run (in order); one more
/// cycle lets the load memories' registered reads settle before the expert phase.
fn plan_seq(m: &mut ModuleBuilder, c: &Core) -> Result<Stmt> {
    let (d, ctl, ld, ll, rt) = (&c.d, &c.ctl, &c.ld, &c.ll, &c.rt);
    let Dims {
        cw,
        ne,
        ebw,
        ew,
        nw,
        mlt,
        law,
        ldaw,
        ..
    } = *d;
    let p_e = &rt.p_e;
    let pe_cnt = m.reg("pe_cnt", cw)?;
    let pe_arms = (0..ne)
        .map(|e| {
            Ok((
                vec![ul(u64::from(e), ebw)?],
                vec![set(&pe_cnt, rt.cnts[e as usize].e())?],
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    m.comb(vec![Stmt::case(
        p_e.e(),
        pe_arms,
        vec![set(&pe_cnt, ul(0, cw)?)?],
    )?])?;
    let pe_e = if ebw > ew {
        p_e.slice(ew - 1, 0)?
    } else {
        p_e.e()
    };
    let pe_base = rt.pe_qbase.e();
    let pe_n = if cw >= nw {
        m.wire_from("pe_n", pe_cnt.slice(nw - 1, 0)?)?.e()
    } else {
        zx(&pe_cnt.e(), nw)?
    };
    let plan = vec![
        set(p_e, inc(p_e)?)?,
        set(
            &rt.pe_qbase,
            rt.pe_qbase.e().add(&ul(u64::from(mlt), law)?)?,
        )?,
        if_else(
            ctl.reorder.e(),
            vec![if_(
                and(&ltc(&p_e.e(), u64::from(ne))?, &pe_cnt.e().ne(&ul(0, cw)?)?)?,
                write_load(ld, ll, ldaw, (pe_e, pe_base, pe_n))?,
            )?],
            vec![if_(
                and(&eqc(&p_e.e(), 0)?, &rt.run_open.e())?,
                close_run(ld, ll, rt, ldaw)?,
            )?],
        )?,
        if_(
            eqc(&p_e.e(), u64::from(ne))?,
            vec![set(&ctl.phase, ul(EXPERT, 3)?)?],
        )?,
    ];
    if_(ctl.ph(PLAN)?, plan)
}
