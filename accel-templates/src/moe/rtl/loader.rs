//! The weight loader, DDR side: segment requests on `wreq` (the gate segment, then the expert
//! segments of the load list with prefetch), and the loader that takes the requested segments'
//! beats from `s_axis_w` (the DataMover stream), packs them into weight-buffer words and fills
//! the double-buffered weight buffer one tile per slot.

use accelforge_hdl::{Expr, LValue, ModuleBuilder, Sig, Stmt};

use super::super::Result;
use super::util::{and, eqc, fits, if_, if_else, inc, mux, ram, sdp, set, ul, z, zx};
use super::{Control, Core, Dims, EXPERT, Ports, mac};

/// The request and loader registers. The request side runs ahead of the loader: `rq_gate` =
/// the gate segment is still to be requested, `rq_load` = expert segments requested; the
/// loader is in the gate segment (`l_gate`) or in expert segment `l_load` (= expert segments
/// fully received).
pub(super) struct Registers {
    pub(super) rq_gate: Sig,
    pub(super) rq_load: Sig,
    pub(super) l_gate: Sig,
    pub(super) l_load: Sig,
    pub(super) l_layer2: Sig,
    pub(super) l_tile: Sig,
    pub(super) l_word: Sig,
    pub(super) l_beat: Sig,
    pub(super) l_slot: Sig,
    pub(super) full0: Sig,
    pub(super) full1: Sig,
    pub(super) nloads: Sig,
}

pub(super) fn registers(m: &mut ModuleBuilder, d: &Dims, io: &Ports) -> Result<Registers> {
    let (ldw, tilew, kkw) = (d.ldw, d.tilew, d.kkw);
    let r = Registers {
        rq_gate: m.reg("rq_gate", 1)?,
        rq_load: m.reg("rq_load", ldw)?,
        l_gate: m.reg("l_gate", 1)?,
        l_load: m.reg("l_load", ldw)?,
        l_layer2: m.reg("l_layer2", 1)?,
        l_tile: m.reg("l_tile", tilew)?,
        l_word: m.reg("l_word", kkw)?,
        l_beat: m.reg("l_beat", super::bits_for(u64::from(d.bpw)))?,
        l_slot: m.reg("l_slot", 1)?,
        full0: m.reg("full0", 1)?,
        full1: m.reg("full1", 1)?,
        nloads: m.reg("nloads", ldw)?,
    };
    m.assign_sig(&io.stat_loads, r.nloads.e())?;
    Ok(r)
}

/// The expert-load list: (expert, list base, token count) per load, written by routing (runs,
/// without reordering) and by planning; read by the request side and the compute side.
pub(super) struct LoadList {
    pub(super) ld_we: Sig,
    pub(super) ld_wa: Sig,
    pub(super) ld_wexp: Sig,
    pub(super) ld_wbase: Sig,
    pub(super) ld_wn: Sig,
    pub(super) rq_exp: Sig,
    pub(super) ld_base_q: Sig,
    pub(super) ld_n_q: Sig,
}

pub(super) fn load_list(
    m: &mut ModuleBuilder,
    d: &Dims,
    io: &Ports,
    ld: &Registers,
    cr: &mac::Registers,
) -> Result<LoadList> {
    let (ew, law, nw, ldaw) = (d.ew, d.law, d.nw, d.ldaw);
    let ld_exp = ram(m, d.plan.memory("ld_exp")?, false)?;
    let ld_base = ram(m, d.plan.memory("ld_base")?, false)?;
    let ld_n = ram(m, d.plan.memory("ld_n")?, false)?;
    let ld_we = m.reg("ld_we", 1)?;
    let ld_wa = m.reg("ld_wa", ldaw)?;
    let ld_wexp = m.reg("ld_wexp", ew)?;
    let ld_wbase = m.reg("ld_wbase", law)?;
    let ld_wn = m.reg("ld_wn", nw)?;
    // The request's expert is read combinationally (a LUT RAM's asynchronous port): the id is
    // right on the cycle `rq_load` advances, so requests go out back to back, and a load that
    // planning writes in its last cycle is already visible on the expert phase's first cycle.
    m.clocked(
        &io.clk,
        vec![if_(
            ld_we.e(),
            vec![Stmt::assign(
                LValue::word(&ld_exp.mem, &zx(&ld_wa.e(), ld_exp.aw)?)?,
                ld_wexp.e(),
            )?],
        )?],
    )?;
    let rq_addr = fits(m, &ld.rq_load, 0, ld_exp.aw)?;
    let rq_exp = m.wire_from("rq_exp", ld_exp.mem.read(&rq_addr)?)?;
    let ld_base_q = sdp(
        m,
        &io.clk,
        &ld_base,
        (ld_we.e(), ld_wa.e(), ld_wbase.e()),
        cr.c_load.slice(ldaw - 1, 0)?,
        "ld_base_q",
    )?;
    let ld_n_q = sdp(
        m,
        &io.clk,
        &ld_n,
        (ld_we.e(), ld_wa.e(), ld_wn.e()),
        cr.c_load.slice(ldaw - 1, 0)?,
        "ld_n_q",
    )?;
    Ok(LoadList {
        ld_we,
        ld_wa,
        ld_wexp,
        ld_wbase,
        ld_wn,
        rq_exp,
        ld_base_q,
        ld_n_q,
    })
}

/// The loader's datapath: what it accepts, the word it assembles, and the weight buffer.
pub(super) struct WeightPath {
    l_k_words: Expr,
    l_take: Sig,
    req_v: Sig,
    beat_w: Sig,
    word_last_beat: Expr,
    staging: Option<Sig>,
    /// The weight-buffer word the compute side reads (registered).
    pub(super) wq: Sig,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn datapath(
    m: &mut ModuleBuilder,
    p: &super::MoeParams,
    d: &Dims,
    io: &Ports,
    ctl: &Control,
    ld: &Registers,
    cr: &mac::Registers,
    ll: &LoadList,
) -> Result<WeightPath> {
    let Dims {
        dff,
        dm,
        ns,
        ne,
        kkw,
        ldw,
        idw,
        per_beat,
        w_w,
        bpw,
        kmax_words,
        wbaw,
        ..
    } = *d;
    let l_k_words = mux(
        &and(&ld.l_layer2.e(), &ld.l_gate.e().logic_not())?,
        &ul(u64::from(dff / ns - 1), kkw)?,
        &ul(u64::from(dm / ns - 1), kkw)?,
    )?;
    let l_full = m.wire_from("l_full", mux(&ld.l_slot.e(), &ld.full1.e(), &ld.full0.e())?)?;
    // Beats are taken only for a segment already requested (the gate segment once its request
    // is out, expert segment `l_load` once `rq_load` passed it).
    let l_requested = m.wire_from(
        "l_requested",
        mux(
            &ld.l_gate.e(),
            &ld.rq_gate.e().logic_not(),
            &ld.l_load.e().lt(&ld.rq_load.e())?,
        )?,
    )?;
    let l_ready = m.wire_from("l_ready", and(&l_requested.e(), &l_full.e().logic_not())?)?;
    m.assign_sig(&io.w_tready, l_ready.e())?;
    let l_take = m.wire_from("l_take", and(&l_ready.e(), &io.w_tvalid.e())?)?;
    // The next expert segment may be requested in the expert phase while fewer than
    // MAX_OUTSTANDING_REQUESTS requested segments are still incomplete (rq_load - l_load).
    let most = u64::from(super::super::MAX_OUTSTANDING_REQUESTS);
    let ow = ldw + super::bits_for(most) + 1;
    let window = zx(&ld.rq_load.e(), ow)?.lt(&zx(&ld.l_load.e(), ow)?.add(&ul(most, ow)?)?)?;
    let rq_expert = m.wire_from(
        "rq_expert",
        and(
            &and(&ctl.ph(EXPERT)?, &ld.rq_load.e().lt(&ld.nloads.e())?)?,
            &window,
        )?,
    )?;
    let req_v = m.wire_from("req_v", ld.rq_gate.e().logic_or(&rq_expert.e())?)?;
    m.assign_sig(&io.wreq_valid, req_v.e())?;
    m.assign_sig(
        &io.wreq_id,
        mux(
            &ld.rq_gate.e(),
            &ul(u64::from(ne), idw)?,
            &zx(&ll.rq_exp.e(), idw)?,
        )?,
    )?;
    // The beat's weights, packed densely (element i from byte i·bytes_per_weight).
    let mut elems = Vec::new();
    for i in (0..per_beat).rev() {
        let lo = i * p.weight_bytes() * 8;
        elems.push(io.w_tdata.slice(lo + w_w - 1, lo)?);
    }
    let beat_w = m.wire_from("beat_w", Expr::concat(&elems)?)?;
    let word_last_beat = eqc(&ld.l_beat.e(), u64::from(bpw - 1))?;
    let (wword, staging) = if bpw > 1 {
        let sw = (bpw - 1) * per_beat * w_w;
        let st = m.reg("staging", sw)?;
        let word = Expr::concat(&[beat_w.e(), st.e()])?;
        (m.wire_from("wword", word)?, Some(st))
    } else {
        (beat_w.clone(), None)
    };
    // Slot 1 starts at word K_max/simd: an adder with a constant, so K_max need not be a
    // power of two (for one it is the old `{slot, word}` concatenation).
    let wbuf = ram(m, d.plan.memory("weight_buffer")?, false)?;
    let l_wr = m.wire_from("l_wr", and(&l_take.e(), &word_last_beat)?)?;
    let slot_off = |slot: &Sig| -> Result<Expr> {
        mux(&slot.e(), &ul(u64::from(kmax_words), wbaw)?, &ul(0, wbaw)?)
    };
    let l_waddr = slot_off(&ld.l_slot)?.add(&zx(&ld.l_word.e(), wbaw)?)?;
    let c_raddr = slot_off(&cr.c_slot)?.add(&zx(&cr.c_kk.e(), wbaw)?)?;
    let wq = sdp(
        m,
        &io.clk,
        &wbuf,
        (l_wr.e(), l_waddr, wword.e()),
        c_raddr,
        "wq",
    )?;
    Ok(WeightPath {
        l_k_words,
        l_take,
        req_v,
        beat_w,
        word_last_beat,
        staging,
        wq,
    })
}

/// The loader's and the request side's clocked statements.
pub(super) fn seq(c: &Core) -> Result<Vec<Stmt>> {
    let (d, io, ld, wp) = (&c.d, &c.io, &c.ld, &c.wp);
    let Dims {
        gt,
        t1,
        t2,
        per_beat,
        w_w,
        ..
    } = *d;
    let seg_last_tile = mux(
        &ld.l_gate.e(),
        &eqc(&ld.l_tile.e(), u64::from(gt - 1))?,
        &and(&ld.l_layer2.e(), &eqc(&ld.l_tile.e(), u64::from(t2 - 1))?)?,
    )?;
    let tile_done = vec![
        if_else(
            ld.l_slot.e(),
            vec![set(&ld.full1, ul(1, 1)?)?],
            vec![set(&ld.full0, ul(1, 1)?)?],
        )?,
        set(&ld.l_slot, ld.l_slot.e().not())?,
        z(&ld.l_word)?,
        if_else(
            seg_last_tile,
            vec![
                z(&ld.l_tile)?,
                z(&ld.l_layer2)?,
                if_else(
                    ld.l_gate.e(),
                    vec![z(&ld.l_gate)?],
                    vec![set(&ld.l_load, inc(&ld.l_load)?)?],
                )?,
            ],
            vec![if_else(
                and(
                    &and(&ld.l_gate.e().logic_not(), &ld.l_layer2.e().logic_not())?,
                    &eqc(&ld.l_tile.e(), u64::from(t1 - 1))?,
                )?,
                vec![set(&ld.l_layer2, ul(1, 1)?)?, z(&ld.l_tile)?],
                vec![set(&ld.l_tile, inc(&ld.l_tile)?)?],
            )?],
        )?,
    ];
    let mut on_take = Vec::new();
    if let Some(st) = &wp.staging {
        let sw_ = st.width();
        let pw = per_beat * w_w;
        let shifted = if sw_ > pw {
            Expr::concat(&[wp.beat_w.e(), st.slice(sw_ - 1, pw)?])?
        } else {
            wp.beat_w.e()
        };
        on_take.push(set(st, shifted)?);
    }
    on_take.push(if_else(
        wp.word_last_beat.clone(),
        vec![
            z(&ld.l_beat)?,
            if_else(
                ld.l_word.e().eq(&wp.l_k_words)?,
                tile_done,
                vec![set(&ld.l_word, inc(&ld.l_word)?)?],
            )?,
        ],
        vec![set(&ld.l_beat, inc(&ld.l_beat)?)?],
    )?);
    Ok(vec![
        if_(wp.l_take.e(), on_take)?,
        if_(
            and(&wp.req_v.e(), &io.wreq_ready.e())?,
            vec![if_else(
                ld.rq_gate.e(),
                vec![z(&ld.rq_gate)?],
                vec![set(&ld.rq_load, inc(&ld.rq_load)?)?],
            )?],
        )?,
    ])
}
