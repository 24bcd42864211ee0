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
use accelforge_hdl::{Design, Expr, ModuleBuilder, Sig, Stmt};

use super::Result;
use super::params::{MoeLayout, MoeParams, bits_for, log2, memory_addr_bits};

mod buffers;
mod loader;
mod mac;
mod output;
mod router;
mod util;

use util::{and, eqc, if_, if_else, set, ul, z};

/// Name of the top module.
pub const TOP: &str = "moe_core";

/// The core design: `moe_core` and its FIFO.
pub fn design(p: &MoeParams) -> Result<Design> {
    p.validate()?;
    let (core, fifo_p) = core_module(p)?;
    let mut d = Design::new(core, p);
    d.add(fifo::module(&fifo_p)?)?;
    d.check_complete()?;
    Ok(d)
}

/// The stages in the order they declare their signals (the printer keeps declaration order,
/// so this order is the file's), then the one clocked process built stage by stage.
fn core_module(p: &MoeParams) -> Result<(accelforge_hdl::Module, FifoParams)> {
    let d = Dims::of(p);
    let mut m = ModuleBuilder::new(TOP)?;
    let io = ports(&mut m, p, &d)?;
    let ctl = Control::new(&mut m, &io)?;
    let inp = buffers::input(&mut m, &d, &io, &ctl)?;
    let ld = loader::registers(&mut m, &d, &io)?;
    let cr = mac::registers(&mut m, &d)?;
    let ll = loader::load_list(&mut m, &d, &io, &ld, &cr)?;
    let wp = loader::datapath(&mut m, p, &d, &io, &ctl, &ld, &cr, &ll)?;
    let cs = mac::issue(&mut m, &d, &io, &ctl, &ld, &cr, &ll)?;
    let bufs = buffers::banks(&mut m, p, &d, &io, &inp, &cr, &cs)?;
    let array = mac::array(&mut m, &d, &cs, &wp.wq, &bufs)?;
    let rt = router::registers(&mut m, p, &d, &io, &bufs)?;
    let out = output::issue(&mut m, &d, &ctl, &bufs)?;
    let disp = router::dispatch(&mut m, p, &d, &io, &ctl, &rt, &bufs)?;
    let out_done = output::combine(&mut m, p, &d, &io, &bufs, &out, &disp)?;

    let c = Core {
        d,
        io,
        ctl,
        inp,
        ld,
        cr,
        ll,
        wp,
        cs,
        bufs,
        array,
        rt,
        out,
        disp,
        out_done,
    };

    // One clocked process, each stage adding its statements in turn.
    let mut body = vec![
        z(&c.io.done)?,
        z(&c.ll.ld_we)?,
        z(&c.cs.list_we)?,
        if_(c.ctl.start.e(), on_start(&c)?)?,
    ];
    body.extend(buffers::input_seq(&c)?);
    body.extend(loader::seq(&c)?);
    body.extend(mac::seq(&c)?);
    body.extend(router::seq(&mut m, &c)?);
    body.extend(output::seq(&c)?);
    let (io, ctl, ld, cr, cs, ll, out) = (&c.io, &c.ctl, &c.ld, &c.cr, &c.cs, &c.ll, &c.out);
    let resets = [
        &ctl.phase,
        &io.done,
        &ld.rq_gate,
        &ld.rq_load,
        &ld.l_gate,
        &ld.l_load,
        &ld.full0,
        &ld.full1,
        &cr.c_state,
        &cs.v1,
        &cs.v2,
        &cs.v3,
        &out.o_v1,
        &ll.ld_we,
        &cs.list_we,
    ]
    .into_iter()
    .map(z)
    .collect::<Result<Vec<_>>>()?;
    m.clocked(&io.clk, vec![if_else(io.rst.e(), resets, body)?])?;
    Ok((m.finish(), c.out.fifo_p))
}

/// Every stage's signals, once all are declared: what the clocked statements are built from.
struct Core {
    d: Dims,
    io: Ports,
    ctl: Control,
    inp: buffers::Input,
    ld: loader::Registers,
    cr: mac::Registers,
    ll: loader::LoadList,
    wp: loader::WeightPath,
    cs: mac::Issue,
    bufs: buffers::Banks,
    array: mac::Array,
    rt: router::Registers,
    out: output::Issue,
    disp: router::Dispatch,
    out_done: Sig,
}

/// On command acceptance: every counter of the batch starts over.
fn on_start(c: &Core) -> Result<Vec<Stmt>> {
    let (io, ctl, inp, ld, cr, bufs, rt, out) =
        (&c.io, &c.ctl, &c.inp, &c.ld, &c.cr, &c.bufs, &c.rt, &c.out);
    let zeros = |v: &mut Vec<Stmt>, sigs: &[&Sig]| -> Result<()> {
        for s in sigs {
            v.push(z(s)?);
        }
        Ok(())
    };
    let one = |s: &Sig| set(s, ul(1, 1)?);
    let mut on_start = vec![
        set(&ctl.phase, ul(LOAD, 3)?)?,
        set(&ctl.reorder, io.cmd_reorder.e())?,
    ];
    zeros(&mut on_start, &[&inp.in_t, &inp.in_d])?;
    on_start.push(one(&ld.rq_gate)?);
    on_start.push(z(&ld.rq_load)?);
    on_start.push(one(&ld.l_gate)?);
    #[rustfmt::skip]
    zeros(&mut on_start, &[
        &ld.l_load, &ld.l_layer2, &ld.l_tile, &ld.l_word, &ld.l_beat, &ld.l_slot, &ld.full0,
        &ld.full1, &ld.nloads,
    ])?;
    on_start.push(set(&cr.c_state, ul(mac::C_WAIT, 2)?)?);
    on_start.push(one(&cr.c_gate)?);
    zeros(
        &mut on_start,
        &[
            &cr.c_load,
            &cr.c_layer2,
            &cr.c_tile,
            &cr.c_slot,
            &bufs.r_t,
            &bufs.r_i,
        ],
    )?;
    on_start.push(set(&rt.r_state, ul(router::R_SCAN, 2)?)?);
    #[rustfmt::skip]
    zeros(&mut on_start, &[
        &rt.flat, &rt.run_open, &rt.dropped, &rt.p_e, &bufs.o_t, &bufs.o_d, &out.o_issued_all,
        &bufs.in_row, &bufs.r_lbase, &bufs.r_xbase, &bufs.o_row,
    ])?;
    for c in &rt.cnts {
        on_start.push(z(c)?);
    }
    Ok(on_start)
}

/// Every size, row stride and register width the stages share, derived once from the params
/// and their buffer layout.
#[derive(Debug, Clone)]
struct Dims {
    t_n: u64,
    dm: u32,
    dff: u32,
    ne: u32,
    k: u32,
    nl: u32,
    ns: u32,
    nb: u32,
    w_in: u32,
    w_w: u32,
    w_l: u32,
    wa: u32,
    wacc: u32,
    fw: u32,
    fe: u32,
    ib: u32,
    ob: u32,
    wb: u32,
    per_beat: u32,
    bpw: u32,
    mlt: u32,
    t1: u32,
    t2: u32,
    gt: u32,
    /// The memory plan (buffer rows and every memory's shape and style).
    plan: MoeLayout,
    xaw: u32,
    haw: u32,
    laww: u32,
    lg_nb: u32,
    lg_nbs: u32,
    lg_nbl: u32,
    kmax_words: u32,
    law: u32,
    wbaw: u32,
    tw: u32,
    jw: u32,
    kkw: u32,
    ew: u32,
    idw: u32,
    cw: u32,
    nw: u32,
    ldw: u32,
    ldaw: u32,
    tilew: u32,
    dw: u32,
    ebw: u32,
    rbw: u32,
    wbw: u32,
}

impl Dims {
    fn of(p: &MoeParams) -> Dims {
        let ty = &p.types;
        let t_n = u64::from(p.tokens);
        let (nl, ns, nb) = (p.lanes, p.simd, p.banks());
        let mlt = p.max_load_tokens();
        let max_loads = p.max_loads();
        let (t1, t2) = p.expert_tiles();
        let gt = p.gate_tiles();
        // Buffer rows. Every activation buffer holds one row per `nb` elements of a token (or
        // of a load position), rows of one token consecutive: row = base(token) + element /
        // nb. The bases are multiples of a constant stride, kept in registers that an adder
        // advances as tokens are walked in order (or, for expert jobs, carried in the token
        // list), so no dimension needs to be a power of two and no multiplier is spent on
        // addressing.
        let plan = MoeLayout::of(p);
        let lay = plan.buffers;
        let xaw = memory_addr_bits(lay.x_rows); // x and y buffers (token-major, d_model wide)
        let haw = memory_addr_bits(lay.h_rows);
        let laww = memory_addr_bits(lay.l_rows);
        let kmax_words = p.max_k() / ns;
        let ne = p.experts;
        Dims {
            t_n,
            dm: p.d_model,
            dff: p.d_ff,
            ne,
            k: p.top_k,
            nl,
            ns,
            nb,
            w_in: ty.input.width(),
            w_w: ty.weight.width(),
            w_l: ty.logit.width(),
            wa: p.operand_width(),
            wacc: p.acc_width(),
            fw: p.gate_frac_bits,
            fe: p.score_frac_bits,
            ib: p.input_bytes() * 8,
            ob: p.output_bytes() * 8,
            wb: p.ddr_bytes_per_cycle * 8,
            per_beat: p.weights_per_beat(),
            bpw: p.beats_per_word(),
            mlt,
            t1,
            t2,
            gt,
            plan,
            xaw,
            haw,
            laww,
            lg_nb: log2(nb),
            lg_nbs: log2(nb / ns),
            lg_nbl: log2(nb / nl),
            kmax_words,
            // Expert queue e starts at list entry e·min(tokens, queue_depth); without
            // reordering the list is filled in arrival order. Either way it holds at most
            // this many entries.
            law: memory_addr_bits(lay.list_rows),
            wbaw: memory_addr_bits(2 * u64::from(kmax_words)),
            tw: bits_for(t_n),
            jw: bits_for(u64::from(mlt.max(p.tokens))),
            kkw: bits_for(u64::from(kmax_words)),
            ew: bits_for(u64::from(ne)),
            idw: bits_for(u64::from(ne) + 1),
            cw: bits_for(u64::from(p.queue_depth) + 1),
            nw: bits_for(u64::from(mlt) + 1),
            ldw: bits_for(u64::from(max_loads) + 1),
            ldaw: bits_for(u64::from(max_loads)),
            tilew: bits_for(u64::from(gt.max(t1).max(t2))),
            dw: bits_for(u64::from(p.d_model)),
            ebw: bits_for(u64::from(ne) + 1),
            // Compute-side read base (x rows in gate jobs, h rows in layer 2) and write base
            // (l rows in gate jobs, h rows in layer 1).
            rbw: xaw.max(haw),
            wbw: laww.max(haw),
        }
    }
}

/// The core's ports.
struct Ports {
    clk: Sig,
    rst: Sig,
    s_tdata: Sig,
    s_tvalid: Sig,
    s_tready: Sig,
    m_tdata: Sig,
    m_tvalid: Sig,
    m_tready: Sig,
    m_tlast: Sig,
    cmd_valid: Sig,
    cmd_ready: Sig,
    cmd_reorder: Sig,
    done: Sig,
    w_tdata: Sig,
    w_tvalid: Sig,
    w_tready: Sig,
    w_tlast: Sig,
    wreq_valid: Sig,
    wreq_ready: Sig,
    wreq_id: Sig,
    stat_loads: Sig,
    stat_dropped: Sig,
}

fn ports(m: &mut ModuleBuilder, p: &MoeParams, d: &Dims) -> Result<Ports> {
    let Dims {
        dm,
        dff,
        ne,
        k,
        nl,
        ns,
        w_in,
        w_w,
        ib,
        ob,
        wb,
        per_beat,
        idw,
        ldw,
        ..
    } = *d;
    m.doc(format!(
        "MoE layer: {} tokens, d_model {dm}, d_ff {dff}, {ne} experts, top-{k}, {nl} lanes x {ns} simd, {} B/cycle weights.",
        p.tokens, p.ddr_bytes_per_cycle
    ));
    m.doc("Protocol: see accelforge_templates::moe (stream order and packing).");
    let io = Ports {
        clk: m.input("clk", 1)?,
        rst: m.input("rst", 1)?,
        s_tdata: m.input("s_axis_tdata", ib)?,
        s_tvalid: m.input("s_axis_tvalid", 1)?,
        s_tready: m.output("s_axis_tready", 1)?,
        m_tdata: m.output("m_axis_tdata", ob)?,
        m_tvalid: m.output("m_axis_tvalid", 1)?,
        m_tready: m.input("m_axis_tready", 1)?,
        m_tlast: m.output("m_axis_tlast", 1)?,
        cmd_valid: m.input("cmd_valid", 1)?,
        cmd_ready: m.output("cmd_ready", 1)?,
        cmd_reorder: m.input("cmd_reorder", 1)?,
        done: m.output_reg("done", 1)?,
        w_tdata: m.input("s_axis_w_tdata", wb)?,
        w_tvalid: m.input("s_axis_w_tvalid", 1)?,
        w_tready: m.output("s_axis_w_tready", 1)?,
        w_tlast: m.input("s_axis_w_tlast", 1)?,
        wreq_valid: m.output("wreq_valid", 1)?,
        wreq_ready: m.input("wreq_ready", 1)?,
        wreq_id: m.output("wreq_id", idw)?,
        stat_loads: m.output("stat_loads", ldw)?,
        stat_dropped: m.output("stat_dropped", 16)?,
    };
    // Segment boundaries are implied by the request; tlast is for DMA engines, not the core.
    m.allow_unused(io.w_tlast.name())?;
    if ib > w_in {
        m.allow_unused(io.s_tdata.name())?;
    }
    if per_beat * p.weight_bytes() * 8 != per_beat * w_w {
        m.allow_unused(io.w_tdata.name())?;
    }
    Ok(io)
}

// Phases of a batch.
const IDLE: u64 = 0;
const LOAD: u64 = 1;
const GATE: u64 = 2;
const ROUTE: u64 = 3;
const PLAN: u64 = 4;
const EXPERT: u64 = 5;
const OUT: u64 = 6;

/// The batch's phase: IDLE → LOAD → GATE → ROUTE → PLAN → EXPERT → OUT → IDLE.
struct Control {
    phase: Sig,
    reorder: Sig,
    start: Sig,
}

impl Control {
    fn new(m: &mut ModuleBuilder, io: &Ports) -> Result<Control> {
        let phase = m.reg("phase", 3)?;
        let reorder = m.reg("reorder", 1)?;
        let idle = eqc(&phase.e(), IDLE)?;
        let start = m.wire_from("start", and(&idle, &io.cmd_valid.e())?)?;
        m.assign_sig(&io.cmd_ready, idle)?;
        Ok(Control {
            phase,
            reorder,
            start,
        })
    }

    /// Whether the batch is in phase `v`.
    fn ph(&self, v: u64) -> Result<Expr> {
        eqc(&self.phase.e(), v)
    }
}

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
