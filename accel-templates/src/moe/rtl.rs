//! The MoE core as RTL: one module (`moe_core`) plus the output FIFO.
//!
//! Datapath: a `lanes x simd` MAC array fed from a double-buffered weight buffer (one word =
//! `lanes x simd` weights) and from banked activation buffers (`max(lanes, simd)` one-element
//! banks, so `lanes` results are written and `simd` inputs read per cycle). The same array runs
//! the gate GEMV and both expert layers; a job is one weight tile (`lanes` output neurons) applied
//! to a list of tokens.
//!
//! Addressing: element `i` of a token's vector sits in bank `i mod nb`, row
//! `base(token) + i / nb` (see `params::BufferLayout`). Streams walked in order (input, output,
//! gate jobs, hidden rows, routing) keep the base in a register advanced by a constant stride;
//! expert jobs walk their tokens in queue order, so each list entry carries the token's row base,
//! computed when routing dispatched it. Adders only, no multipliers, any dimension.
//!
//! State machines (cycle counts are those of `cost.rs`):
//! - phase: IDLE → LOAD (tokens in) → GATE (gate tiles) → ROUTE (per token: scan, scores,
//!   divide, dispatch) → PLAN (expert-load list) → EXPERT (expert tiles) → OUT (combine, stream
//!   out) → IDLE with a one-cycle `done`;
//! - requests: the gate segment on the first cycle of LOAD; in EXPERT, expert segments back to
//!   back, each as soon as its predecessor's request was accepted, with at most
//!   [`super::MAX_OUTSTANDING_REQUESTS`] requested segments not yet fully received (prefetch:
//!   the DDR latency of a segment overlaps the streaming of the ones before it);
//! - loader: takes the requested segments' weight beats in order into the free buffer slot,
//!   going from one segment's last beat straight to the next's first;
//! - compute: per tile, one set-up cycle, `n·K/simd` issue cycles, 3 drain cycles.

use accelforge_hdl::blocks::fifo::{self, FifoParams};
use accelforge_hdl::{Design, Expr, LValue, Mem, ModuleBuilder, Sig, Stmt};

use super::Result;
use super::model::exp_table;
use super::params::{GateMode, MoeParams, bits_for, log2};
use crate::units::activation::emit_activation;
use crate::units::requantize::emit_requantize;

/// Name of the top module.
pub const TOP: &str = "moe_core";
/// Depth of the output FIFO (covers the two-cycle read latency at full rate).
const OUT_FIFO_DEPTH: u32 = 4;

fn ul(v: u64, w: u32) -> Result<Expr> {
    Ok(Expr::lit(u128::from(v), w)?)
}
fn eqc(e: &Expr, v: u64) -> Result<Expr> {
    Ok(e.eq(&ul(v, e.width())?)?)
}
fn ltc(e: &Expr, v: u64) -> Result<Expr> {
    Ok(e.lt(&ul(v, e.width())?)?)
}
fn inc(s: &Sig) -> Result<Expr> {
    Ok(s.e().add(&ul(1, s.width())?)?)
}
/// Zero-extends (never truncates) to `w`.
fn zx(e: &Expr, w: u32) -> Result<Expr> {
    Ok(e.zext(w)?)
}
fn set(s: &Sig, e: Expr) -> Result<Stmt> {
    Ok(Stmt::set(s, e)?)
}
fn if_(c: Expr, t: Vec<Stmt>) -> Result<Stmt> {
    Ok(Stmt::if_(c, t)?)
}
fn if_else(c: Expr, t: Vec<Stmt>, e: Vec<Stmt>) -> Result<Stmt> {
    Ok(Stmt::if_else(c, t, e)?)
}
fn and(a: &Expr, b: &Expr) -> Result<Expr> {
    Ok(a.logic_and(b)?)
}
fn mux(c: &Expr, a: &Expr, b: &Expr) -> Result<Expr> {
    Ok(Expr::mux(c, a, b)?)
}

/// `w` bits of `s` from bit `lo`, zero-extended when `s` has fewer (a zero when it has none).
/// Dropped bits are waived for lint: an address slice keeps only the bits its memory needs.
fn fits(m: &mut ModuleBuilder, s: &Sig, lo: u32, w: u32) -> Result<Expr> {
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

/// A memory of `depth` words (at least 2; any depth, not only powers of two), with its read
/// register.
struct Ram {
    mem: Mem,
    aw: u32,
    signed: bool,
}

/// Words a memory of `rows` rows is declared with (at least 2, as [`super::cost::memories`]).
fn mem_depth(rows: u64) -> u64 {
    rows.max(2)
}

/// Address bits of a memory of `rows` rows.
fn mem_aw(rows: u64) -> u32 {
    accelforge_hdl::clog2(mem_depth(rows)).max(1)
}

fn ram(
    m: &mut ModuleBuilder,
    name: &str,
    width: u32,
    rows: u64,
    signed: bool,
    style: &str,
) -> Result<Ram> {
    let depth = u32::try_from(mem_depth(rows)).map_err(|_| {
        super::MoeError::Params(format!("memory {name} would need {rows} words (too deep)"))
    })?;
    let mem = m.memory(name, width, depth, signed, Some(style))?;
    let aw = mem.addr_width();
    Ok(Ram { mem, aw, signed })
}

fn style(name: &str, rows: u64) -> &'static str {
    if super::cost::is_block(name, mem_depth(rows)) {
        "block"
    } else {
        "distributed"
    }
}

/// Emits a simple-dual-port memory: write `(we, waddr, wdata)`, registered read of `raddr`
/// into a new reg.
fn sdp(
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

/// The core design: `moe_core` and its FIFO.
pub fn design(p: &MoeParams) -> Result<Design> {
    p.validate()?;
    let (core, fifo_p) = core_module(p)?;
    let mut d = Design::new(core, p);
    d.add(fifo::module(&fifo_p)?)?;
    d.check_complete()?;
    Ok(d)
}

#[allow(clippy::too_many_lines)]
fn core_module(p: &MoeParams) -> Result<(accelforge_hdl::Module, FifoParams)> {
    let ty = &p.types;
    let t_n = u64::from(p.tokens);
    let (dm, dff, ne, k) = (p.d_model, p.d_ff, p.experts, p.top_k);
    let (nl, ns, nb) = (p.lanes, p.simd, p.banks());
    let (w_in, w_w, w_h, w_l, w_y) = (
        ty.input.width(),
        ty.weight.width(),
        ty.hidden.width(),
        ty.logit.width(),
        ty.expert_out.width(),
    );
    let wa = p.operand_width();
    let wacc = p.acc_width();
    let fw = p.gate_frac_bits;
    let fe = p.score_frac_bits;
    let ib = p.input_bytes() * 8;
    let ob = p.output_bytes() * 8;
    let wb = p.ddr_bytes_per_cycle * 8;
    let per_beat = p.weights_per_beat();
    let bpw = p.beats_per_word();
    let word_w = nl * ns * w_w;
    let mlt = p.max_load_tokens();
    let max_loads = p.max_loads();
    let (t1, t2) = p.expert_tiles();
    let gt = p.gate_tiles();

    // Buffer rows. Every activation buffer holds one row per `nb` elements of a token (or of a
    // load position), rows of one token consecutive: row = base(token) + element / nb. The
    // bases are multiples of a constant stride, kept in registers that an adder advances as
    // tokens are walked in order (or, for expert jobs, carried in the token list), so no
    // dimension needs to be a power of two and no multiplier is spent on addressing.
    let lay = super::params::BufferLayout::of(p);
    let (xs, hs, ls) = (lay.x_stride, lay.h_stride, lay.l_stride);
    let xaw = mem_aw(lay.x_rows); // x and y buffers (token-major, d_model wide)
    let haw = mem_aw(lay.h_rows);
    let laww = mem_aw(lay.l_rows);
    let lg_nb = log2(nb);
    let lg_nbs = log2(nb / ns);
    let lg_nbl = log2(nb / nl);
    let kmax_words = p.max_k() / ns;
    // Expert queue e starts at list entry e·min(tokens, queue_depth); without reordering the
    // list is filled in arrival order. Either way it holds at most this many entries.
    let law = mem_aw(lay.list_rows);
    let wbaw = mem_aw(2 * u64::from(kmax_words));

    // Register widths.
    let tw = bits_for(t_n);
    let jw = bits_for(u64::from(mlt.max(p.tokens)));
    let kkw = bits_for(u64::from(kmax_words));
    let ew = bits_for(u64::from(ne));
    let idw = bits_for(u64::from(ne) + 1);
    let cw = bits_for(u64::from(p.queue_depth) + 1);
    let nw = bits_for(u64::from(mlt) + 1);
    let ldw = bits_for(u64::from(max_loads) + 1);
    let ldaw = bits_for(u64::from(max_loads));
    let tilew = bits_for(u64::from(gt.max(t1).max(t2)));
    let dw = bits_for(u64::from(dm));
    let ebw = bits_for(u64::from(ne) + 1);
    let rbw = xaw.max(haw); // compute-side read base (x rows in gate jobs, h rows in layer 2)
    let wbw = laww.max(haw); // compute-side write base (l rows in gate jobs, h rows in layer 1)

    let mut m = ModuleBuilder::new(TOP)?;
    m.doc(format!(
        "MoE layer: {} tokens, d_model {dm}, d_ff {dff}, {ne} experts, top-{k}, {nl} lanes x {ns} simd, {} B/cycle weights.",
        p.tokens, p.ddr_bytes_per_cycle
    ));
    m.doc("Protocol: see accelforge_templates::moe (stream order and packing).");
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let s_tdata = m.input("s_axis_tdata", ib)?;
    let s_tvalid = m.input("s_axis_tvalid", 1)?;
    let s_tready = m.output("s_axis_tready", 1)?;
    let m_tdata = m.output("m_axis_tdata", ob)?;
    let m_tvalid = m.output("m_axis_tvalid", 1)?;
    let m_tready = m.input("m_axis_tready", 1)?;
    let m_tlast = m.output("m_axis_tlast", 1)?;
    let cmd_valid = m.input("cmd_valid", 1)?;
    let cmd_ready = m.output("cmd_ready", 1)?;
    let cmd_reorder = m.input("cmd_reorder", 1)?;
    let done = m.output_reg("done", 1)?;
    let w_tdata = m.input("s_axis_w_tdata", wb)?;
    let w_tvalid = m.input("s_axis_w_tvalid", 1)?;
    let w_tready = m.output("s_axis_w_tready", 1)?;
    let w_tlast = m.input("s_axis_w_tlast", 1)?;
    let wreq_valid = m.output("wreq_valid", 1)?;
    let wreq_ready = m.input("wreq_ready", 1)?;
    let wreq_id = m.output("wreq_id", idw)?;
    let stat_loads = m.output("stat_loads", ldw)?;
    let stat_dropped = m.output("stat_dropped", 16)?;
    // Segment boundaries are implied by the request; tlast is for DMA engines, not the core.
    m.allow_unused(w_tlast.name())?;
    if ib > w_in {
        m.allow_unused(s_tdata.name())?;
    }
    if per_beat * p.weight_bytes() * 8 != per_beat * w_w {
        m.allow_unused(w_tdata.name())?;
    }

    // ---------------------------------------------------------------- phase
    const IDLE: u64 = 0;
    const LOAD: u64 = 1;
    const GATE: u64 = 2;
    const ROUTE: u64 = 3;
    const PLAN: u64 = 4;
    const EXPERT: u64 = 5;
    const OUT: u64 = 6;
    let phase = m.reg("phase", 3)?;
    let ph = |v: u64| eqc(&phase.e(), v);
    let reorder = m.reg("reorder", 1)?;
    let start = m.wire_from("start", and(&ph(IDLE)?, &cmd_valid.e())?)?;
    m.assign_sig(&cmd_ready, ph(IDLE)?)?;

    // ---------------------------------------------------------------- input load
    let in_t = m.reg("in_t", tw)?;
    let in_d = m.reg("in_d", dw)?;
    let in_beat = m.wire_from("in_beat", and(&ph(LOAD)?, &s_tvalid.e())?)?;
    m.assign_sig(&s_tready, ph(LOAD)?)?;
    let in_last_d = m.wire_from("in_last_d", eqc(&in_d.e(), u64::from(dm - 1))?)?;
    let in_last = m.wire_from("in_last", and(&in_last_d.e(), &eqc(&in_t.e(), t_n - 1)?)?)?;
    let in_elem = m.wire_from("in_elem", s_tdata.slice(w_in - 1, 0)?.as_signed())?;

    // ---------------------------------------------------------------- request and loader regs
    // The request side runs ahead of the loader: `rq_gate` = the gate segment is still to be
    // requested, `rq_load` = expert segments requested; the loader is in the gate segment
    // (`l_gate`) or in expert segment `l_load` (= expert segments fully received).
    let rq_gate = m.reg("rq_gate", 1)?;
    let rq_load = m.reg("rq_load", ldw)?;
    let l_gate = m.reg("l_gate", 1)?;
    let l_load = m.reg("l_load", ldw)?;
    let l_layer2 = m.reg("l_layer2", 1)?;
    let l_tile = m.reg("l_tile", tilew)?;
    let l_word = m.reg("l_word", kkw)?;
    let l_beat = m.reg("l_beat", bits_for(u64::from(bpw)))?;
    let l_slot = m.reg("l_slot", 1)?;
    let full0 = m.reg("full0", 1)?;
    let full1 = m.reg("full1", 1)?;
    let nloads = m.reg("nloads", ldw)?;
    m.assign_sig(&stat_loads, nloads.e())?;

    // ---------------------------------------------------------------- compute regs
    const C_WAIT: u64 = 0;
    const C_RUN: u64 = 1;
    const C_DRAIN: u64 = 2;
    let c_state = m.reg("c_state", 2)?;
    let c_gate = m.reg("c_gate", 1)?;
    let c_load = m.reg("c_load", ldw)?;
    let c_layer2 = m.reg("c_layer2", 1)?;
    let c_tile = m.reg("c_tile", tilew)?;
    let c_j = m.reg("c_j", jw)?;
    let c_kk = m.reg("c_kk", kkw)?;
    let c_slot = m.reg("c_slot", 1)?;
    let c_drain = m.reg("c_drain", 2)?;

    // ---------------------------------------------------------------- load-list memories
    let ml = u64::from(max_loads);
    let ld_exp = ram(&mut m, "ld_exp", ew, ml, false, "distributed")?;
    let ld_base = ram(&mut m, "ld_base", law, ml, false, "distributed")?;
    let ld_n = ram(&mut m, "ld_n", nw, ml, false, "distributed")?;
    // Written by routing (runs, without reordering) and by planning.
    let ld_we = m.reg("ld_we", 1)?;
    let ld_wa = m.reg("ld_wa", ldaw)?;
    let ld_wexp = m.reg("ld_wexp", ew)?;
    let ld_wbase = m.reg("ld_wbase", law)?;
    let ld_wn = m.reg("ld_wn", nw)?;
    // The request's expert is read combinationally (a LUT RAM's asynchronous port): the id is
    // right on the cycle `rq_load` advances, so requests go out back to back, and a load that
    // planning writes in its last cycle is already visible on the expert phase's first cycle.
    m.clocked(
        &clk,
        vec![if_(
            ld_we.e(),
            vec![Stmt::assign(
                LValue::word(&ld_exp.mem, &zx(&ld_wa.e(), ld_exp.aw)?)?,
                ld_wexp.e(),
            )?],
        )?],
    )?;
    let rq_addr = fits(&mut m, &rq_load, 0, ld_exp.aw)?;
    let rq_exp = m.wire_from("rq_exp", ld_exp.mem.read(&rq_addr)?)?;
    let ld_base_q = sdp(
        &mut m,
        &clk,
        &ld_base,
        (ld_we.e(), ld_wa.e(), ld_wbase.e()),
        c_load.slice(ldaw - 1, 0)?,
        "ld_base_q",
    )?;
    let ld_n_q = sdp(
        &mut m,
        &clk,
        &ld_n,
        (ld_we.e(), ld_wa.e(), ld_wn.e()),
        c_load.slice(ldaw - 1, 0)?,
        "ld_n_q",
    )?;

    // ---------------------------------------------------------------- loader datapath
    let l_k_words = mux(
        &and(&l_layer2.e(), &l_gate.e().logic_not())?,
        &ul(u64::from(dff / ns - 1), kkw)?,
        &ul(u64::from(dm / ns - 1), kkw)?,
    )?;
    let l_full = m.wire_from("l_full", mux(&l_slot.e(), &full1.e(), &full0.e())?)?;
    // Beats are taken only for a segment already requested (the gate segment once its request
    // is out, expert segment `l_load` once `rq_load` passed it).
    let l_requested = m.wire_from(
        "l_requested",
        mux(
            &l_gate.e(),
            &rq_gate.e().logic_not(),
            &l_load.e().lt(&rq_load.e())?,
        )?,
    )?;
    let l_ready = m.wire_from("l_ready", and(&l_requested.e(), &l_full.e().logic_not())?)?;
    m.assign_sig(&w_tready, l_ready.e())?;
    let l_take = m.wire_from("l_take", and(&l_ready.e(), &w_tvalid.e())?)?;
    // The next expert segment may be requested in the expert phase while fewer than
    // MAX_OUTSTANDING_REQUESTS requested segments are still incomplete (rq_load - l_load).
    let ow = ldw + bits_for(u64::from(super::MAX_OUTSTANDING_REQUESTS)) + 1;
    let window = zx(&rq_load.e(), ow)?
        .lt(&zx(&l_load.e(), ow)?.add(&ul(u64::from(super::MAX_OUTSTANDING_REQUESTS), ow)?)?)?;
    let rq_expert = m.wire_from(
        "rq_expert",
        and(&and(&ph(EXPERT)?, &rq_load.e().lt(&nloads.e())?)?, &window)?,
    )?;
    let req_v = m.wire_from("req_v", rq_gate.e().logic_or(&rq_expert.e())?)?;
    m.assign_sig(&wreq_valid, req_v.e())?;
    m.assign_sig(
        &wreq_id,
        mux(
            &rq_gate.e(),
            &ul(u64::from(ne), idw)?,
            &zx(&rq_exp.e(), idw)?,
        )?,
    )?;
    // The beat's weights, packed densely (element i from byte i·bytes_per_weight).
    let mut elems = Vec::new();
    for i in (0..per_beat).rev() {
        let lo = i * p.weight_bytes() * 8;
        elems.push(w_tdata.slice(lo + w_w - 1, lo)?);
    }
    let beat_w = m.wire_from("beat_w", Expr::concat(&elems)?)?;
    let word_last_beat = eqc(&l_beat.e(), u64::from(bpw - 1))?;
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
    let wbuf = ram(
        &mut m,
        "weight_buffer",
        word_w,
        2 * u64::from(kmax_words),
        false,
        "block",
    )?;
    let l_wr = m.wire_from("l_wr", and(&l_take.e(), &word_last_beat)?)?;
    let slot_off = |slot: &Sig| -> Result<Expr> {
        mux(&slot.e(), &ul(u64::from(kmax_words), wbaw)?, &ul(0, wbaw)?)
    };
    let l_waddr = slot_off(&l_slot)?.add(&zx(&l_word.e(), wbaw)?)?;
    let c_raddr = slot_off(&c_slot)?.add(&zx(&c_kk.e(), wbaw)?)?;
    let wq = sdp(
        &mut m,
        &clk,
        &wbuf,
        (l_wr.e(), l_waddr, wword.e()),
        c_raddr,
        "wq",
    )?;

    // ---------------------------------------------------------------- list memory
    // An entry is (the token's x/y row base = token·d_model/nb, gate slot): the row base is
    // computed while routing walks the tokens in order, so expert jobs need no multiplier.
    let list_w = xaw + 1;
    let list = ram(&mut m, "list", list_w, lay.list_rows, false, "distributed")?;
    let list_we = m.reg("list_we", 1)?;
    let list_wa = m.reg("list_wa", law)?;
    let list_wd = m.reg("list_wd", list_w)?;
    let c_base = ld_base_q.clone();
    let c_n = m.wire_from(
        "c_n",
        mux(
            &c_gate.e(),
            &ul(t_n, nw.max(tw + 1))?,
            &zx(&ld_n_q.e(), nw.max(tw + 1))?,
        )?,
    )?;
    let list_raddr = m.wire_from(
        "list_raddr",
        mux(
            &eqc(&c_state.e(), C_RUN)?,
            &c_base.e().add(&zx(&c_j.e(), law)?)?.add(&ul(1, law)?)?,
            &c_base.e(),
        )?,
    )?;
    let list_q = sdp(
        &mut m,
        &clk,
        &list,
        (list_we.e(), list_wa.e(), list_wd.e()),
        list_raddr.e(),
        "list_q",
    )?;
    let cur_entry = m.reg("cur_entry", list_w)?;
    let kk0 = m.wire_from("kk0", eqc(&c_kk.e(), 0)?)?;
    let entry = m.wire_from("entry", mux(&kk0.e(), &list_q.e(), &cur_entry.e())?)?;
    let c_l2 = m.wire_from("c_l2", and(&c_layer2.e(), &c_gate.e().logic_not())?)?;
    // Row base of the current position: gate jobs walk the tokens in order (the base
    // register advances by d_model/nb per token), layer-2 jobs walk the load's hidden rows in
    // order (by d_ff/nb per position); layer-1 jobs take the token's base from the list.
    let c_rbase = m.reg("c_rbase", rbw)?;
    let g_xbase = fits(&mut m, &c_rbase, 0, xaw)?;
    let c_xbase = m.wire_from(
        "c_xbase",
        mux(&c_gate.e(), &g_xbase, &entry.slice(xaw, 1)?)?,
    )?;
    let c_eslot = m.wire_from("c_eslot", entry.bit(0)?)?;

    // ---------------------------------------------------------------- compute issue
    let c_kk_last = m.wire_from(
        "c_kk_last",
        mux(
            &c_l2.e(),
            &ul(u64::from(dff / ns - 1), kkw)?,
            &ul(u64::from(dm / ns - 1), kkw)?,
        )?,
    )?;
    let c_run = m.wire_from("c_run", eqc(&c_state.e(), C_RUN)?)?;
    let c_full = m.wire_from("c_full", mux(&c_slot.e(), &full1.e(), &full0.e())?)?;
    let c_go = m.wire_from(
        "c_go",
        and(
            &and(&eqc(&c_state.e(), C_WAIT)?, &c_full.e())?,
            &mux(
                &c_gate.e(),
                &ph(GATE)?,
                &and(&ph(EXPERT)?, &c_load.e().lt(&nloads.e())?)?,
            )?,
        )?,
    )?;
    let kk_end = m.wire_from("kk_end", c_kk.e().eq(&c_kk_last.e())?)?;
    let j_end = m.wire_from(
        "j_end",
        zx(&c_j.e(), c_n.width().max(jw))?.eq(&zx(
            &c_n.e().sub(&ul(1, c_n.width())?)?,
            c_n.width().max(jw),
        )?)?,
    )?;
    let c_last_tile = m.wire_from(
        "c_last_tile",
        mux(
            &c_gate.e(),
            &eqc(&c_tile.e(), u64::from(gt - 1))?,
            &and(&c_layer2.e(), &eqc(&c_tile.e(), u64::from(t2 - 1))?)?,
        )?,
    )?;
    // Activation buffer read rows for this issue.
    // Row = position base + word / (nb/simd); the word's bank group is its low bits (`grp`).
    // Address bits above a buffer's depth are never set in the jobs that read it (x in gate
    // and layer-1 jobs, h in layer-2 jobs), so the sums are taken at the memory's width.
    let x_row = c_xbase.e().add(&fits(&mut m, &c_kk, lg_nbs, xaw)?)?;
    let h_row = fits(&mut m, &c_rbase, 0, haw)?.add(&fits(&mut m, &c_kk, lg_nbs, haw)?)?;
    let grp = if lg_nbs > 0 {
        Some(m.wire_from("grp", c_kk.slice(lg_nbs - 1, 0)?)?)
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

    // ---------------------------------------------------------------- activation buffers
    // Output-stage fields (the tile is stable until the drain ends).
    let out_grp = if lg_nbl > 0 {
        Some(m.wire_from("out_grp", c_tile.slice(lg_nbl - 1, 0)?)?)
    } else {
        None
    };
    // Row offset of the tile's outputs in a position's rows: tile · lanes / nb.
    let tile_row = |m: &mut ModuleBuilder, w: u32| -> Result<Expr> { fits(m, &c_tile, lg_nbl, w) };
    let bank_we = |b: u32, base: &Expr| -> Result<Expr> {
        match &out_grp {
            Some(g) => and(base, &eqc(&g.e(), u64::from(b / nl))?),
            None => Ok(base.clone()),
        }
    };
    let v3_gate = m.wire_from("v3_gate", and(&v3.e(), &c_gate.e())?)?;
    let v3_l1 = m.wire_from(
        "v3_l1",
        and(
            &v3.e(),
            &and(&c_gate.e().logic_not(), &c_layer2.e().logic_not())?,
        )?,
    )?;
    let v3_l2 = m.wire_from("v3_l2", and(&v3.e(), &c_l2.e())?)?;

    // Input rows written by the load phase: tokens arrive in order, so the row simply counts
    // every nb-th beat (d_model is a multiple of nb, so a token's rows follow its predecessor's).
    let in_row = m.reg("in_row", xaw)?;

    // Results of stage 3 (declared now, driven after the MAC array).
    let mut logit_out = Vec::new();
    let mut hidden_out = Vec::new();
    let mut y_out = Vec::new();
    let mut outs = Vec::new();
    for l in 0..nl {
        outs.push(m.reg_signed(&format!("acc_out{l}"), wacc)?);
    }
    let acc_in = p.acc_type(ty.input.frac_bits())?;
    let acc_hid = p.acc_type(ty.hidden.frac_bits())?;
    let act = p.activation_params();
    for (l, o) in outs.iter().enumerate() {
        logit_out.push(emit_requantize(
            &mut m,
            &format!("rql{l}"),
            o,
            &acc_in,
            &ty.logit,
        )?);
        let pre = emit_requantize(&mut m, &format!("rqh{l}"), o, &acc_in, &ty.hidden)?;
        hidden_out.push(emit_activation(&mut m, &format!("act{l}"), &pre, &act)?);
        y_out.push(emit_requantize(
            &mut m,
            &format!("rqy{l}"),
            o,
            &acc_hid,
            &ty.expert_out,
        )?);
    }

    let x_grp_sel = grp1.clone();
    let mut xq = Vec::new();
    let mut hq = Vec::new();
    let mut lq = Vec::new();
    let mut yq: Vec<Vec<Sig>> = vec![Vec::new(); k as usize];
    // Routing and output read addresses (declared here, driven below).
    let r_t = m.reg("r_t", tw)?;
    let r_i = m.reg("r_i", ebw)?;
    let o_t = m.reg("o_t", tw)?;
    let o_d = m.reg("o_d", dw)?;
    // Routing reads token r_t's logits from its row base (advanced by ceil(E/nb) per token)
    // and records the token's x row base (advanced by d_model/nb) in the list.
    let r_lbase = m.reg("r_lbase", laww)?;
    let r_xbase = m.reg("r_xbase", xaw)?;
    let l_raddr = r_lbase.e().add(&fits(&mut m, &r_i, lg_nb, laww)?)?;
    // The output walks the y rows in order, like the input.
    let o_row = m.reg("o_row", xaw)?;
    let o_raddr = o_row.e();
    // Stage-3 write rows (the tile's row offset plus the position's base).
    let tr = tile_row(&mut m, haw)?;
    let h_wrow = fits(&mut m, &w_base, 0, haw)?.add(&tr)?;
    let tr = tile_row(&mut m, laww)?;
    let l_wrow = fits(&mut m, &w_base, 0, laww)?.add(&tr)?;
    let tr = tile_row(&mut m, xaw)?;
    let y_wrow = yb3.e().add(&tr)?;
    let (xr_n, hr_n, lr_n) = (lay.x_rows, lay.h_rows, lay.l_rows);
    for b in 0..nb {
        let xr = ram(
            &mut m,
            &format!("xbuf_{b}"),
            w_in,
            xr_n,
            true,
            style("xbuf", xr_n),
        )?;
        let bank_hit = if lg_nb > 0 {
            eqc(&in_d.slice(lg_nb - 1, 0)?, u64::from(b))?
        } else {
            Expr::bool(true)
        };
        xq.push(sdp(
            &mut m,
            &clk,
            &xr,
            (and(&in_beat.e(), &bank_hit)?, in_row.e(), in_elem.e()),
            x_row.clone(),
            &format!("xq{b}"),
        )?);
        let hr = ram(
            &mut m,
            &format!("hbuf_{b}"),
            w_h,
            hr_n,
            true,
            style("hbuf", hr_n),
        )?;
        hq.push(sdp(
            &mut m,
            &clk,
            &hr,
            (
                bank_we(b, &v3_l1.e())?,
                h_wrow.clone(),
                hidden_out[(b % nl) as usize].e(),
            ),
            h_row.clone(),
            &format!("hq{b}"),
        )?);
        let lr = ram(
            &mut m,
            &format!("lbuf_{b}"),
            w_l,
            lr_n,
            true,
            style("lbuf", lr_n),
        )?;
        lq.push(sdp(
            &mut m,
            &clk,
            &lr,
            (
                bank_we(b, &v3_gate.e())?,
                l_wrow.clone(),
                logit_out[(b % nl) as usize].e(),
            ),
            l_raddr.clone(),
            &format!("lq{b}"),
        )?);
        for s in 0..k {
            let yr = ram(
                &mut m,
                &format!("ybuf{s}_{b}"),
                w_y,
                xr_n,
                true,
                style("ybuf", xr_n),
            )?;
            let slot_hit = if k == 1 {
                Expr::bool(true)
            } else {
                eqc(&es3.e(), u64::from(s))?
            };
            yq[s as usize].push(sdp(
                &mut m,
                &clk,
                &yr,
                (
                    bank_we(b, &and(&v3_l2.e(), &slot_hit)?)?,
                    y_wrow.clone(),
                    y_out[(b % nl) as usize].e(),
                ),
                o_raddr.clone(),
                &format!("yq{s}_{b}"),
            )?);
        }
    }

    // ---------------------------------------------------------------- MAC array
    let select = |m: &mut ModuleBuilder, name: &str, banks: &[Sig], s: u32| -> Result<Sig> {
        let mut e = banks[s as usize].e();
        if let Some(g) = &x_grp_sel {
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
        let xs = select(&mut m, &format!("xs{s}"), &xq, s)?;
        let hs = select(&mut m, &format!("hs{s}"), &hq, s)?;
        let a = mux(&c_l2.e(), &hs.extend(wa)?, &xs.extend(wa)?)?;
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

    // ---------------------------------------------------------------- routing regs
    const R_SCAN: u64 = 0;
    const R_NUM: u64 = 1;
    const R_DIV: u64 = 2;
    const R_DISP: u64 = 3;
    let r_state = m.reg("r_state", 2)?;
    let rsel = if lg_nb > 0 {
        Some(m.reg("rsel", lg_nb)?)
    } else {
        None
    };
    let mut lsel = lq[0].e();
    if let Some(rs) = &rsel {
        for b in 1..nb {
            lsel = mux(&eqc(&rs.e(), u64::from(b))?, &lq[b as usize].e(), &lsel)?;
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
    let r_cnt = m.reg("r_cnt", bits_for(u64::from(fw) + 1))?;
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
    m.assign_sig(&stat_dropped, dropped.e())?;
    let p_e = m.reg("p_e", ebw)?;
    // Start of queue p_e in the list (p_e·min(tokens, queue_depth)), advanced as p_e counts.
    let pe_qbase = m.reg("pe_qbase", law)?;

    // Score numerators.
    let fe1 = fe + 1;
    let (n1, n2) = match p.gate_mode {
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
            let s1 = emit_activation(&mut m, "sig1", &bv1, &sp)?;
            let s2 = emit_activation(&mut m, "sig2", &bv2, &sp)?;
            let floor1 = |s: &Sig| -> Result<Expr> { mux(&eqc(&s.e(), 0)?, &ul(1, fe1)?, &s.e()) };
            (floor1(&s1)?, floor1(&s2)?)
        }
    };
    let n1w = m.wire_from("num1", zx(&n1, sw)?)?;
    let n2w = m.wire_from("num2", zx(&n2, sw)?)?;
    let den_next = if k == 2 {
        n1w.e().add(&n2w.e())?
    } else {
        n1w.e()
    };

    // ---------------------------------------------------------------- output stage
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
            &and(&ph(OUT)?, &o_issued_all.e().logic_not())?,
            &ltc(&credit, u64::from(OUT_FIFO_DEPTH))?,
        )?,
    )?;
    let o_last_d = m.wire_from("o_last_d", eqc(&o_d.e(), u64::from(dm - 1))?)?;
    let o_final = m.wire_from("o_final", and(&o_last_d.e(), &eqc(&o_t.e(), t_n - 1)?)?)?;
    let mut gwq = Vec::new();
    let gw_we = m.wire_from("gw_we", and(&ph(ROUTE)?, &eqc(&r_state.e(), R_DISP)?)?)?;
    // Dispatch decision (slot r_slot of token r_t).
    let d_exp = m.wire_from("d_exp", mux(&eqc(&r_slot.e(), 0)?, &bi1.e(), &bi2.e())?)?;
    let d_q = m.wire_from("d_q", mux(&eqc(&r_slot.e(), 0)?, &q0.e(), &q1.e())?)?;
    // The chosen expert's fill count and the start of its queue in the list (a constant per
    // expert, e·min(tokens, queue_depth), selected by the same case: no multiplier).
    let cnt_sel = m.reg("cnt_sel", cw)?;
    let qb_sel = m.reg("qb_sel", law)?;
    let cnt_arms = (0..ne)
        .map(|e| {
            Ok((
                vec![ul(u64::from(e), ew)?],
                vec![
                    set(&cnt_sel, cnts[e as usize].e())?,
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
        let gr = ram(&mut m, &format!("gw{s}"), fw + 1, t_n, false, "distributed")?;
        let hit = and(&gw_we.e(), &eqc(&r_slot.e(), u64::from(s))?)?;
        gwq.push(sdp(
            &mut m,
            &clk,
            &gr,
            (hit, r_t.e(), mux(&d_kept.e(), &d_q.e(), &ul(0, fw + 1)?)?),
            o_t.e(),
            &format!("gwq{s}"),
        )?);
    }
    let ct = super::model::combine_type(p)?;
    let wc = ct.width();
    let mut csum = Expr::slit(0, wc)?;
    for s in 0..k as usize {
        let mut ysel = yq[s][0].e();
        if let Some(os) = &o_sel1 {
            for b in 1..nb {
                ysel = mux(&eqc(&os.e(), u64::from(b))?, &yq[s][b as usize].e(), &ysel)?;
            }
        }
        let ysig = m.wire_from(&format!("cy{s}"), ysel)?;
        let wsig = m.wire_from(&format!("cw{s}"), zx(&gwq[s].e(), fw + 2)?.as_signed())?;
        let prod = m.product(&format!("cprod{s}"), &wsig.e(), &ysig.e())?;
        csum = csum.add(&prod.extend(wc)?)?;
    }
    let csum = m.wire_from("csum", csum)?;
    let out_v = emit_requantize(&mut m, "rqo", &csum, &ct, &ty.output)?;
    m.assign_sig(
        &f_data,
        Expr::concat(&[o_last1.e(), out_v.extend(ob)?.as_unsigned()])?,
    )?;
    m.assign_sig(&f_push, o_v1.e())?;
    m.instance(
        &fifo::module(&fifo_p)?,
        "out_fifo",
        &[],
        &[
            ("clk", clk.e()),
            ("rst", rst.e()),
            ("push", f_push.e()),
            ("push_data", f_data.e()),
            ("full", f_full.e()),
            ("pop", m_tready.e()),
            ("pop_data", f_pop_data.e()),
            ("empty", f_empty.e()),
            ("count", f_count.e()),
        ],
    )?;
    m.assign_sig(&m_tvalid, f_empty.e().logic_not())?;
    m.assign_sig(&m_tdata, f_pop_data.slice(ob - 1, 0)?)?;
    m.assign_sig(&m_tlast, f_pop_data.bit(ob)?)?;
    let out_done = m.wire_from(
        "out_done",
        and(
            &and(&f_empty.e().logic_not(), &m_tready.e())?,
            &f_pop_data.bit(ob)?,
        )?,
    )?;

    // ================================================================ sequential logic
    let z = |s: &Sig| -> Result<Stmt> { set(s, Expr::zero(s.width())) };
    let mut resets = Vec::new();
    for s in [
        &phase, &done, &rq_gate, &rq_load, &l_gate, &l_load, &full0, &full1, &c_state, &v1, &v2,
        &v3, &o_v1, &ld_we, &list_we,
    ] {
        resets.push(z(s)?);
    }
    // On command acceptance: every counter of the batch starts over.
    let mut on_start = vec![
        set(&phase, ul(LOAD, 3)?)?,
        set(&reorder, cmd_reorder.e())?,
        z(&in_t)?,
        z(&in_d)?,
        set(&rq_gate, ul(1, 1)?)?,
        z(&rq_load)?,
        set(&l_gate, ul(1, 1)?)?,
        z(&l_load)?,
        z(&l_layer2)?,
        z(&l_tile)?,
        z(&l_word)?,
        z(&l_beat)?,
        z(&l_slot)?,
        z(&full0)?,
        z(&full1)?,
        z(&nloads)?,
        set(&c_state, ul(C_WAIT, 2)?)?,
        set(&c_gate, ul(1, 1)?)?,
        z(&c_load)?,
        z(&c_layer2)?,
        z(&c_tile)?,
        z(&c_slot)?,
        z(&r_t)?,
        z(&r_i)?,
        set(&r_state, ul(R_SCAN, 2)?)?,
        z(&flat)?,
        z(&run_open)?,
        z(&dropped)?,
        z(&p_e)?,
        z(&o_t)?,
        z(&o_d)?,
        z(&o_issued_all)?,
        z(&in_row)?,
        z(&r_lbase)?,
        z(&r_xbase)?,
        z(&o_row)?,
    ];
    for c in &cnts {
        on_start.push(z(c)?);
    }

    let mut body = vec![
        z(&done)?,
        z(&ld_we)?,
        z(&list_we)?,
        if_(start.e(), on_start)?,
    ];

    // Input load.
    // Whether element `d` is in the last bank of its row (every element when nb = 1).
    let bank_last = |d: &Sig| -> Result<Expr> {
        if lg_nb == 0 {
            Ok(Expr::bool(true))
        } else {
            eqc(&d.slice(lg_nb - 1, 0)?, u64::from(nb - 1))
        }
    };
    body.push(if_(
        in_beat.e(),
        vec![
            if_else(
                in_last_d.e(),
                vec![z(&in_d)?, set(&in_t, inc(&in_t)?)?],
                vec![set(&in_d, inc(&in_d)?)?],
            )?,
            if_(bank_last(&in_d)?, vec![set(&in_row, inc(&in_row)?)?])?,
            if_(in_last.e(), vec![set(&phase, ul(GATE, 3)?)?])?,
        ],
    )?);

    // Loader.
    let seg_last_tile = mux(
        &l_gate.e(),
        &eqc(&l_tile.e(), u64::from(gt - 1))?,
        &and(&l_layer2.e(), &eqc(&l_tile.e(), u64::from(t2 - 1))?)?,
    )?;
    let tile_done = vec![
        if_else(
            l_slot.e(),
            vec![set(&full1, ul(1, 1)?)?],
            vec![set(&full0, ul(1, 1)?)?],
        )?,
        set(&l_slot, l_slot.e().not())?,
        z(&l_word)?,
        if_else(
            seg_last_tile,
            vec![
                z(&l_tile)?,
                z(&l_layer2)?,
                if_else(
                    l_gate.e(),
                    vec![z(&l_gate)?],
                    vec![set(&l_load, inc(&l_load)?)?],
                )?,
            ],
            vec![if_else(
                and(
                    &and(&l_gate.e().logic_not(), &l_layer2.e().logic_not())?,
                    &eqc(&l_tile.e(), u64::from(t1 - 1))?,
                )?,
                vec![set(&l_layer2, ul(1, 1)?)?, z(&l_tile)?],
                vec![set(&l_tile, inc(&l_tile)?)?],
            )?],
        )?,
    ];
    let mut on_take = Vec::new();
    if let Some(st) = &staging {
        let sw_ = st.width();
        let pw = per_beat * w_w;
        let shifted = if sw_ > pw {
            Expr::concat(&[beat_w.e(), st.slice(sw_ - 1, pw)?])?
        } else {
            beat_w.e()
        };
        on_take.push(set(st, shifted)?);
    }
    on_take.push(if_else(
        word_last_beat,
        vec![
            z(&l_beat)?,
            if_else(
                l_word.e().eq(&l_k_words)?,
                tile_done,
                vec![set(&l_word, inc(&l_word)?)?],
            )?,
        ],
        vec![set(&l_beat, inc(&l_beat)?)?],
    )?);
    body.push(if_(l_take.e(), on_take)?);
    body.push(if_(
        and(&req_v.e(), &wreq_ready.e())?,
        vec![if_else(
            rq_gate.e(),
            vec![z(&rq_gate)?],
            vec![set(&rq_load, inc(&rq_load)?)?],
        )?],
    )?);

    // Compute.
    body.push(if_(
        c_go.e(),
        vec![
            set(&c_state, ul(C_RUN, 2)?)?,
            z(&c_j)?,
            z(&c_kk)?,
            z(&c_rbase)?,
            z(&w_base)?,
        ],
    )?);
    let r_stride = mux(&c_gate.e(), &ul(xs, rbw)?, &ul(hs, rbw)?)?;
    let w_stride = mux(&c_gate.e(), &ul(ls, wbw)?, &ul(hs, wbw)?)?;
    body.push(if_(
        v3.e(),
        vec![set(&w_base, w_base.e().add(&w_stride)?)?],
    )?);
    body.push(if_(
        c_run.e(),
        vec![
            set(&cur_entry, entry.e())?,
            if_else(
                kk_end.e(),
                vec![
                    z(&c_kk)?,
                    if_else(
                        j_end.e(),
                        vec![
                            set(&c_state, ul(C_DRAIN, 2)?)?,
                            z(&c_drain)?,
                            if_else(c_slot.e(), vec![z(&full1)?], vec![z(&full0)?])?,
                            set(&c_slot, c_slot.e().not())?,
                            if_(
                                and(&c_gate.e().logic_not(), &c_last_tile.e())?,
                                vec![set(&c_load, inc(&c_load)?)?],
                            )?,
                        ],
                        vec![
                            set(&c_j, inc(&c_j)?)?,
                            set(&c_rbase, c_rbase.e().add(&r_stride)?)?,
                        ],
                    )?,
                ],
                vec![set(&c_kk, inc(&c_kk)?)?],
            )?,
        ],
    )?);
    body.push(if_(
        eqc(&c_state.e(), C_DRAIN)?,
        vec![if_else(
            eqc(&c_drain.e(), DRAIN_LAST)?,
            vec![
                set(&c_state, ul(C_WAIT, 2)?)?,
                if_else(
                    c_last_tile.e(),
                    vec![
                        z(&c_tile)?,
                        z(&c_layer2)?,
                        if_else(
                            c_gate.e(),
                            vec![z(&c_gate)?, set(&phase, ul(ROUTE, 3)?)?],
                            vec![if_(
                                c_load.e().eq(&nloads.e())?,
                                vec![set(&phase, ul(OUT, 3)?)?],
                            )?],
                        )?,
                    ],
                    vec![if_else(
                        and(
                            &and(&c_gate.e().logic_not(), &c_layer2.e().logic_not())?,
                            &eqc(&c_tile.e(), u64::from(t1 - 1))?,
                        )?,
                        vec![set(&c_layer2, ul(1, 1)?)?, z(&c_tile)?],
                        vec![set(&c_tile, inc(&c_tile)?)?],
                    )?],
                )?,
            ],
            vec![set(&c_drain, inc(&c_drain)?)?],
        )?],
    )?);
    // MAC pipeline.
    let mut st1 = vec![
        set(&v1, c_run.e())?,
        set(&first1, kk0.e())?,
        set(&last1, kk_end.e())?,
        set(&yb1, c_xbase.e())?,
        set(&es1, c_eslot.e())?,
        set(&v2, v1.e())?,
        set(&first2, first1.e())?,
        set(&last2, last1.e())?,
        set(&yb2, yb1.e())?,
        set(&es2, es1.e())?,
        set(&v3, and(&v2.e(), &last2.e())?)?,
    ];
    if let (Some(g), Some(g1)) = (&grp, &grp1) {
        st1.push(set(g1, g.e())?);
    }
    for (ps, sum) in &psums {
        st1.push(set(ps, sum.clone())?);
    }
    let mut capture = vec![set(&yb3, yb2.e())?, set(&es3, es2.e())?];
    for l in 0..nl as usize {
        let base = mux(&first2.e(), &Expr::slit(0, wacc)?, &accs[l].e())?;
        let next = base.add(&psums[l].0.e())?;
        st1.push(if_(v2.e(), vec![set(&accs[l], next.clone())?])?);
        capture.push(set(&outs[l], next)?);
    }
    st1.push(if_(and(&v2.e(), &last2.e())?, capture)?);
    body.extend(st1);

    // Routing.
    let r_scan = and(&ph(ROUTE)?, &eqc(&r_state.e(), R_SCAN)?)?;
    let e_idx = m.wire_from("e_idx", r_i.e().sub(&ul(1, ebw)?)?)?;
    m.allow_unused(e_idx.name())?;
    let e_idx_e = if ebw > ew {
        e_idx.slice(ew - 1, 0)?
    } else {
        e_idx.e()
    };
    let mut scan = vec![set(&r_i, inc(&r_i)?)?];
    if let Some(rs) = &rsel {
        scan.push(set(rs, r_i.slice(lg_nb - 1, 0)?)?);
    }
    scan.push(if_(
        r_i.e().ne(&ul(0, ebw)?)?,
        vec![if_else(
            eqc(&r_i.e(), 1)?,
            vec![set(&bv1, lval.e())?, set(&bi1, ul(0, ew)?)?, z(&have2)?],
            vec![if_else(
                lval.e().gt(&bv1.e())?,
                vec![
                    set(&bv2, bv1.e())?,
                    set(&bi2, bi1.e())?,
                    set(&have2, ul(1, 1)?)?,
                    set(&bv1, lval.e())?,
                    set(&bi1, e_idx_e.clone())?,
                ],
                vec![if_(
                    have2.e().logic_not().logic_or(&lval.e().gt(&bv2.e())?)?,
                    vec![
                        set(&bv2, lval.e())?,
                        set(&bi2, e_idx_e.clone())?,
                        set(&have2, ul(1, 1)?)?,
                    ],
                )?],
            )?],
        )?],
    )?);
    scan.push(if_(
        eqc(&r_i.e(), u64::from(ne))?,
        vec![set(&r_state, ul(R_NUM, 2)?)?],
    )?);
    body.push(if_(r_scan, scan)?);
    body.push(if_(
        and(&ph(ROUTE)?, &eqc(&r_state.e(), R_NUM)?)?,
        vec![
            set(&rr0, n1w.e())?,
            set(&rr1, n2w.e())?,
            set(&den, den_next)?,
            z(&q0)?,
            z(&q1)?,
            z(&r_cnt)?,
            set(&r_state, ul(R_DIV, 2)?)?,
        ],
    )?);
    let div_step = |rr: &Sig, q: &Sig| -> Result<Vec<Stmt>> {
        let ge = rr.e().ge(&den.e())?;
        let rem = mux(&ge, &rr.e().sub(&den.e())?, &rr.e())?;
        let qn = if fw >= 1 {
            Expr::concat(&[q.slice(fw - 1, 0)?, ge.clone()])?
        } else {
            ge.clone()
        };
        Ok(vec![set(q, qn)?, set(rr, rem.shl(1))?])
    };
    let mut div = div_step(&rr0, &q0)?;
    div.extend(div_step(&rr1, &q1)?);
    div.push(set(&r_cnt, inc(&r_cnt)?)?);
    div.push(if_(
        eqc(&r_cnt.e(), u64::from(fw))?,
        vec![set(&r_state, ul(R_DISP, 2)?)?, z(&r_slot)?],
    )?);
    body.push(if_(and(&ph(ROUTE)?, &eqc(&r_state.e(), R_DIV)?)?, div)?);
    // Dispatch.
    // A kept pair's position in its queue is below min(tokens, queue_depth), so it fits `law`.
    let qaddr = qb_sel.e().add(&fits(&mut m, &cnt_sel, 0, law)?)?;
    let mut cnt_inc_arms = Vec::new();
    for e in 0..ne {
        cnt_inc_arms.push((
            vec![ul(u64::from(e), ew)?],
            vec![set(&cnts[e as usize], inc(&cnts[e as usize])?)?],
        ));
    }
    let close_run = vec![
        set(&ld_we, ul(1, 1)?)?,
        set(&ld_wa, nloads.slice(ldaw - 1, 0)?)?,
        set(&ld_wexp, run_exp.e())?,
        set(&ld_wbase, run_base.e())?,
        set(&ld_wn, run_n.e())?,
        set(&nloads, inc(&nloads)?)?,
    ];
    let mut open_run = close_run.clone();
    open_run = vec![if_(run_open.e(), open_run)?];
    open_run.extend([
        set(&run_open, ul(1, 1)?)?,
        set(&run_exp, d_exp.e())?,
        set(&run_base, flat.e())?,
        set(&run_n, ul(1, nw)?)?,
    ]);
    let token_entry = Expr::concat(&[r_xbase.e(), r_slot.e()])?;
    let disp = vec![
        if_else(
            d_kept.e(),
            vec![
                Stmt::case(d_exp.e(), cnt_inc_arms, vec![])?,
                set(&list_we, ul(1, 1)?)?,
                set(&list_wa, mux(&reorder.e(), &qaddr, &flat.e())?)?,
                set(&list_wd, token_entry)?,
                set(&flat, inc(&flat)?)?,
                if_(
                    reorder.e().logic_not(),
                    vec![if_else(
                        and(&run_open.e(), &run_exp.e().eq(&d_exp.e())?)?,
                        vec![set(&run_n, inc(&run_n)?)?],
                        open_run,
                    )?],
                )?,
            ],
            vec![set(&dropped, inc(&dropped)?)?],
        )?,
        if_else(
            eqc(&r_slot.e(), u64::from(k - 1))?,
            vec![if_else(
                eqc(&r_t.e(), t_n - 1)?,
                vec![set(&phase, ul(PLAN, 3)?)?, z(&p_e)?, z(&pe_qbase)?],
                vec![
                    set(&r_t, inc(&r_t)?)?,
                    set(&r_lbase, r_lbase.e().add(&ul(ls, laww)?)?)?,
                    set(&r_xbase, r_xbase.e().add(&ul(xs, xaw)?)?)?,
                    z(&r_i)?,
                    set(&r_state, ul(R_SCAN, 2)?)?,
                ],
            )?],
            vec![set(&r_slot, inc(&r_slot)?)?],
        )?,
    ];
    body.push(if_(gw_we.e(), disp)?);

    // Planning: one expert per cycle (reordered), or the last open run (in order); one more
    // cycle lets the load memories' registered reads settle before the expert phase.
    let pe_cnt = m.reg("pe_cnt", cw)?;
    let pe_arms = (0..ne)
        .map(|e| {
            Ok((
                vec![ul(u64::from(e), ebw)?],
                vec![set(&pe_cnt, cnts[e as usize].e())?],
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
    let pe_base = pe_qbase.e();
    let pe_n = if cw >= nw {
        m.wire_from("pe_n", pe_cnt.slice(nw - 1, 0)?)?.e()
    } else {
        zx(&pe_cnt.e(), nw)?
    };
    let plan = vec![
        set(&p_e, inc(&p_e)?)?,
        set(&pe_qbase, pe_qbase.e().add(&ul(u64::from(mlt), law)?)?)?,
        if_else(
            reorder.e(),
            vec![if_(
                and(&ltc(&p_e.e(), u64::from(ne))?, &pe_cnt.e().ne(&ul(0, cw)?)?)?,
                vec![
                    set(&ld_we, ul(1, 1)?)?,
                    set(&ld_wa, nloads.slice(ldaw - 1, 0)?)?,
                    set(&ld_wexp, pe_e)?,
                    set(&ld_wbase, pe_base)?,
                    set(&ld_wn, pe_n)?,
                    set(&nloads, inc(&nloads)?)?,
                ],
            )?],
            vec![if_(and(&eqc(&p_e.e(), 0)?, &run_open.e())?, close_run)?],
        )?,
        if_(
            eqc(&p_e.e(), u64::from(ne))?,
            vec![set(&phase, ul(EXPERT, 3)?)?],
        )?,
    ];
    body.push(if_(ph(PLAN)?, plan)?);

    // Output.
    let mut out_issue = vec![
        if_else(
            o_last_d.e(),
            vec![z(&o_d)?, set(&o_t, inc(&o_t)?)?],
            vec![set(&o_d, inc(&o_d)?)?],
        )?,
        if_(o_final.e(), vec![set(&o_issued_all, ul(1, 1)?)?])?,
        if_(bank_last(&o_d)?, vec![set(&o_row, inc(&o_row)?)?])?,
    ];
    if let Some(os) = &o_sel1 {
        out_issue.push(set(os, o_d.slice(lg_nb - 1, 0)?)?);
    }
    body.push(set(&o_v1, o_issue.e())?);
    body.push(set(&o_last1, o_final.e())?);
    body.push(if_(o_issue.e(), out_issue)?);
    body.push(if_(
        and(&ph(OUT)?, &out_done.e())?,
        vec![set(&done, ul(1, 1)?)?, set(&phase, ul(IDLE, 3)?)?],
    )?);

    m.clocked(&clk, vec![if_else(rst.e(), resets, body)?])?;
    Ok((m.finish(), fifo_p))
}

/// The drain counter's last value (`DRAIN` cycles: 0, 1, 2).
const DRAIN_LAST: u64 = super::cost::DRAIN - 1;

/// Names of the core's ports beyond the Zynq core contract.
pub const EXTRA_PORTS: [&str; 9] = [
    "s_axis_w_tdata",
    "s_axis_w_tvalid",
    "s_axis_w_tready",
    "s_axis_w_tlast",
    "wreq_valid",
    "wreq_ready",
    "wreq_id",
    "stat_loads",
    "stat_dropped",
];
