//! Verilog generation for the output-stationary systolic array accelerator.
//!
//! Block diagram (one clock `clk`, synchronous active-high `rst`):
//!
//! ```text
//!  s_axis ─► loader ─► B buffer (2 banks, block RAM) ─┐            ┌► requantize ─► de-skew ─┐
//!                  └─► A buffer (2 banks, block RAM) ─┤ issuer ─► R×C PE array (output chain │
//!  cmd ─► command regs ───────────────────────────────┘   skew      runs up each column) ───┘
//!                                      row sequencer ─► output FIFO (LUT RAM) ─► m_axis
//! ```
//!
//! The loader fills buffer banks in stream order (see [`super::model::stream_order`]); the issuer
//! runs one tile of K cycles whenever its A and B banks are full, the output FIFO has room for
//! the rows the tile's start will retire, and at least `max(K, 2R−1)` cycles have passed since
//! the previous tile started. The PE array itself never stalls: idle cycles feed zeros.

use accelforge_hdl::{
    Design, Expr, HdlError, LValue, Mem, Module, ModuleBuilder, Result as HResult, Sig, Stmt, clog2,
};

use super::error::{HdlContext, Result};
use super::params::{Dataflow, PeKind, Resolved, SystolicParams};
use super::pe::{b_lane_width, pe_module, shift_bits};
use super::rtl_util::*;
use crate::units::requantize::emit_requantize;

/// Width of the command dimension ports.
pub const DIM_BITS: u32 = 16;

/// Generates the whole design: top module plus the PE module.
pub fn design(p: &SystolicParams) -> Result<Design> {
    let r = p.resolve()?;
    if p.dataflow == Dataflow::Ws {
        return super::rtl_ws::design(&r);
    }
    let prefix = p.module_prefix();
    let pe_name = format!("{prefix}_pe");
    let pe = pe_module(&r, &pe_name).ctx(&pe_name)?;
    let top = top_module(&r, &prefix, &pe).ctx(&prefix)?;
    let mut d = Design::new(top, p);
    d.add(pe).ctx(&pe_name)?;
    d.check_complete().ctx(&prefix)?;
    Ok(d)
}

/// A register bank of `stages` stages (each `w` bits) delaying `input`; returns the last stage
/// (or the input itself for zero stages).
pub(super) fn delay(
    m: &mut ModuleBuilder,
    clk: &Sig,
    rst: Option<&Sig>,
    name: &str,
    input: &Expr,
    stages: u32,
) -> HResult<Expr> {
    let mut cur = input.clone();
    for s in 0..stages {
        let reg = if input.signed() {
            m.reg_signed(&format!("{name}_d{s}"), input.width())?
        } else {
            m.reg(&format!("{name}_d{s}"), input.width())?
        };
        let body = match rst {
            Some(rst) => vec![Stmt::if_else(
                rst.e(),
                vec![Stmt::set(&reg, zero_like(input))?],
                vec![Stmt::set(&reg, cur.clone())?],
            )?],
            None => vec![Stmt::set(&reg, cur.clone())?],
        };
        m.clocked(clk, body)?;
        cur = reg.e();
    }
    Ok(cur)
}

/// The A side of the operand feed, the same for both dataflows: the A buffers' words joined,
/// split into one lane per row (unsigned types get a zero sign bit), zeroed on idle cycles, and
/// skewed by the row index; the tile flag is skewed alongside. Returns `(a lanes, flag lanes)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn a_row_feed(
    m: &mut ModuleBuilder,
    r: &Resolved,
    clk: &Sig,
    rst: &Sig,
    a_rdata: &[Sig],
    a_vd: &Sig,
    flag_d: &Sig,
) -> HResult<(Vec<Expr>, Vec<Expr>)> {
    let rr = r.r;
    let a_words: Vec<Expr> = a_rdata.iter().rev().map(|s| s.e()).collect();
    let a_all = m.wire_from("a_word", Expr::concat(&a_words)?)?;
    if r.qa * r.ea > rr {
        m.allow_unused(a_all.name())?;
    }
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

/// The ports every systolic top shares: the Zynq core contract with an `M x K x N` command.
pub(super) struct GemmPorts {
    pub clk: Sig,
    pub rst: Sig,
    pub cmd_valid: Sig,
    pub cmd_ready: Sig,
    pub cmd_m: Sig,
    pub cmd_k: Sig,
    pub cmd_n: Sig,
    pub busy: Sig,
    pub done: Sig,
    pub error: Sig,
    pub s_tdata: Sig,
    pub s_tvalid: Sig,
    pub s_tready: Sig,
    pub m_tdata: Sig,
    pub m_tvalid: Sig,
    pub m_tready: Sig,
    pub m_tlast: Sig,
}

/// Declares [`GemmPorts`] (command dimensions `db` bits, streams `sb` bits) in port order.
pub(super) fn gemm_ports(m: &mut ModuleBuilder, db: u32, sb: u32) -> HResult<GemmPorts> {
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let cmd_valid = m.input("cmd_valid", 1)?;
    let cmd_ready = m.output("cmd_ready", 1)?;
    let cmd_m = m.input("cmd_m", db)?;
    let cmd_k = m.input("cmd_k", db)?;
    let cmd_n = m.input("cmd_n", db)?;
    let busy = m.output_reg("busy", 1)?;
    let done = m.output_reg("done", 1)?;
    let error = m.output_reg("error", 1)?;
    let s_tdata = m.input("s_axis_tdata", sb)?;
    let s_tvalid = m.input("s_axis_tvalid", 1)?;
    let s_tready = m.output("s_axis_tready", 1)?;
    let s_tlast = m.input("s_axis_tlast", 1)?;
    let m_tdata = m.output_reg("m_axis_tdata", sb)?;
    let m_tvalid = m.output("m_axis_tvalid", 1)?;
    let m_tready = m.input("m_axis_tready", 1)?;
    let m_tlast = m.output("m_axis_tlast", 1)?;
    // TLAST on the input carries no information: the command fixes how many beats follow.
    let unused_tlast = m.wire_from("s_axis_tlast_unused", s_tlast.e())?;
    m.allow_unused(unused_tlast.name())?;
    Ok(GemmPorts {
        clk,
        rst,
        cmd_valid,
        cmd_ready,
        cmd_m,
        cmd_k,
        cmd_n,
        busy,
        done,
        error,
        s_tdata,
        s_tvalid,
        s_tready,
        m_tdata,
        m_tvalid,
        m_tready,
        m_tlast,
    })
}

/// The command handshake: ready while idle; a command with a zero dimension or `K > max_k` is
/// accepted but rejected (it raises `done` and `error` without running). Returns the wires
/// `(accept, reject, start_cmd)`.
pub(super) fn command_accept(
    m: &mut ModuleBuilder,
    (cmd_valid, cmd_ready, busy): (&Sig, &Sig, &Sig),
    [cmd_m, cmd_k, cmd_n]: [&Sig; 3],
    max_k: u32,
) -> HResult<(Sig, Sig, Sig)> {
    m.assign_sig(cmd_ready, busy.e().not())?;
    let accept = m.wire_from("accept", cmd_valid.e().and(&busy.e().not())?)?;
    let bad_k = gt_c(&cmd_k.e(), u64::from(max_k))?;
    let empty = eq_c(&cmd_m.e(), 0)?
        .or(&eq_c(&cmd_k.e(), 0)?)?
        .or(&eq_c(&cmd_n.e(), 0)?)?;
    let reject = m.wire_from("reject", bad_k.or(&empty)?)?;
    let start_cmd = m.wire_from("start_cmd", accept.e().and(&reject.e().not())?)?;
    Ok((accept, reject, start_cmd))
}

/// The result path's streaming ports.
pub(super) struct OutputPorts<'a> {
    pub clk: &'a Sig,
    pub rst: &'a Expr,
    pub tdata: &'a Sig,
    pub tvalid: &'a Sig,
    pub tready: &'a Sig,
    pub tlast: &'a Sig,
}

/// One requantized result row entering the output FIFO, and the wire that reports a row leaving.
pub(super) struct FifoRow<'a> {
    pub push: &'a Sig,
    pub last: &'a Sig,
    pub cv: &'a Sig,
    pub data: Expr,
    /// Driven here: high in the cycle the head row's last beat is taken.
    pub pop: &'a Sig,
}

/// The output FIFO (LUT RAM, asynchronous read) and the serializer that sends each row as
/// ⌈valid columns / Eo⌉ beats, TLAST on the result's last beat — shared by both dataflows.
/// Returns the condition "the result's last beat is transferred".
pub(super) fn output_fifo(
    m: &mut ModuleBuilder,
    r: &Resolved,
    port: &OutputPorts<'_>,
    row: &FifoRow<'_>,
    fifo_aw: u32,
    credit_w: u32,
) -> HResult<Expr> {
    let (cc, wo, sb, lane_w) = (r.c, r.tout.width(), r.p.stream_bits, row.cv.width());
    let fifo_w = 1 + lane_w + cc * wo;
    let fifo = m.memory(
        "out_fifo",
        fifo_w,
        r.out_fifo_depth,
        false,
        Some("distributed"),
    )?;
    let wr_ptr = m.reg("fifo_wr", fifo_aw)?;
    let rd_ptr = m.reg("fifo_rd", fifo_aw)?;
    let count = m.reg("fifo_count", credit_w)?;
    m.clocked(
        port.clk,
        vec![Stmt::if_(
            row.push.e(),
            vec![Stmt::assign(
                LValue::word(&fifo, &wr_ptr.e())?,
                Expr::concat(&[row.last.e(), row.cv.e(), row.data.clone()])?,
            )?],
        )?],
    )?;
    // An empty FIFO's head is a never-written LUT-RAM word, X in a 4-state simulator: read
    // zeros then, so TDATA/TLAST are defined whenever TVALID is low (one AND per bit).
    let not_empty = count.e().ne(&Expr::zero(credit_w))?;
    let head = m.wire_from(
        "fifo_head",
        Expr::mux(&not_empty, &fifo.read(&rd_ptr.e())?, &Expr::zero(fifo_w))?,
    )?;
    let head_last = head.bit(fifo_w - 1)?;
    let head_cv = head.slice(fifo_w - 2, cc * wo)?;
    let ob = m.reg("ob_beat", clog2(u64::from(r.qo)).max(1))?;
    let ob_lane = m.reg("ob_lane", lane_w)?;
    m.assign_sig(port.tvalid, count.e().ne(&Expr::zero(credit_w))?)?;
    let row_last_beat = m.wire_from(
        "ob_row_end",
        add_c(&ob_lane.e(), u64::from(r.eo))?.ge(&head_cv)?,
    )?;
    m.assign_sig(port.tlast, head_last.and(&row_last_beat.e())?)?;
    let xfer = m.wire_from("ob_xfer", port.tvalid.e().and(&port.tready.e())?)?;
    m.assign_sig(row.pop, xfer.e().and(&row_last_beat.e())?)?;
    // Beat mux: beat b carries lanes b·Eo .. b·Eo+Eo−1 of the head row (zeros past C).
    let mut arms = Vec::new();
    let data_w = cc * wo;
    // A beat holds Eo = floor(B/Wo) whole lanes; bits above Eo·Wo are zero.
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
            vec![set(port.tdata, part)?],
        ));
    }
    m.comb(vec![
        set(port.tdata, Expr::zero(sb))?,
        Stmt::case(ob.e(), arms, vec![])?,
    ])?;
    let one = |e: Expr| Expr::concat(&[Expr::zero(credit_w - 1), e]);
    let last_xfer = xfer.e().and(&port.tlast.e())?;
    m.clocked(
        port.clk,
        vec![Stmt::if_else(
            port.rst.clone(),
            vec![
                set(&wr_ptr, Expr::zero(fifo_aw))?,
                set(&rd_ptr, Expr::zero(fifo_aw))?,
                set(&count, Expr::zero(credit_w))?,
                set(&ob, Expr::zero(ob.width()))?,
                set(&ob_lane, Expr::zero(lane_w))?,
            ],
            vec![
                Stmt::if_(row.push.e(), vec![set(&wr_ptr, inc(&wr_ptr)?)?])?,
                set(
                    &count,
                    count
                        .e()
                        .add(&one(row.push.e())?)?
                        .sub(&one(row.pop.e())?)?,
                )?,
                Stmt::if_(
                    xfer.e(),
                    vec![Stmt::if_else(
                        row_last_beat.e(),
                        vec![
                            set(&ob, Expr::zero(ob.width()))?,
                            set(&ob_lane, Expr::zero(lane_w))?,
                            set(&rd_ptr, inc(&rd_ptr)?)?,
                        ],
                        vec![
                            set(&ob, inc(&ob)?)?,
                            set(&ob_lane, add_c(&ob_lane.e(), u64::from(r.eo))?)?,
                        ],
                    )?],
                )?,
            ],
        )?],
    )?;
    Ok(last_xfer)
}

/// The packed lanes of an input beat for the A and the B buffers: the low Ea·Wa (Eb·Wb) bits,
/// since a beat carries floor(B/W) whole elements and its high bits are ignored. Storing only
/// those bits also keeps the buffers no wider than their contents.
pub(super) fn packed_inputs(
    m: &mut ModuleBuilder,
    r: &Resolved,
    s_tdata: &Sig,
) -> HResult<(Expr, Expr)> {
    let sb = r.p.stream_bits;
    let a_bits = r.ea * r.ta.width();
    let b_bits = r.eb * r.tb.width();
    if a_bits.max(b_bits) < sb {
        m.allow_unused(s_tdata.name())?;
    }
    let low = |bits: u32| -> HResult<Expr> {
        if bits == sb {
            Ok(s_tdata.e())
        } else {
            s_tdata.slice(bits - 1, 0)
        }
    };
    Ok((low(a_bits)?, low(b_bits)?))
}

pub(super) fn zero_like(e: &Expr) -> Expr {
    if e.signed() {
        Expr::zero(e.width()).as_signed()
    } else {
        Expr::zero(e.width())
    }
}

/// A simple dual-port block RAM with a registered read; returns the read-data register.
#[allow(clippy::too_many_arguments)]
pub(super) fn bram(
    m: &mut ModuleBuilder,
    clk: &Sig,
    name: &str,
    width: u32,
    depth: u32,
    we: &Expr,
    waddr: &Expr,
    wdata: &Expr,
    raddr: &Expr,
) -> HResult<Sig> {
    let mem: Mem = m.memory(name, width, depth, false, Some("block"))?;
    let rdata = m.reg(&format!("{name}_rdata"), width)?;
    m.clocked(
        clk,
        vec![
            Stmt::if_(
                we.clone(),
                vec![Stmt::assign(LValue::word(&mem, waddr)?, wdata.clone())?],
            )?,
            // Read-first registered read: the shape Yosys maps to RAMB18/RAMB36.
            Stmt::set(&rdata, mem.read(raddr)?)?,
        ],
    )?;
    Ok(rdata)
}

fn top_module(r: &Resolved, name: &str, pe: &Module) -> HResult<Module> {
    let p = &r.p;
    let (rr, cc) = (r.r, r.c);
    let sb = p.stream_bits;
    let db = DIM_BITS;
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "Output-stationary systolic array {}x{}: A {} x B {} -> acc {} -> out {}{}, PE {:?}.",
        rr,
        cc,
        r.ta,
        r.tb,
        r.tacc,
        r.tout,
        if p.relu { " (ReLU)" } else { "" },
        p.pe
    ));
    m.doc(format!(
        "Buffers: max K {}, B chunk {} columns, {}-bit AXI4-Stream in/out.",
        p.max_k, p.max_n_chunk, sb
    ));
    m.doc("Stream order and cycle model: see accelforge_templates::systolic docs.");

    // ---- ports ----
    let GemmPorts {
        clk,
        rst,
        cmd_valid,
        cmd_ready,
        cmd_m,
        cmd_k,
        cmd_n,
        busy,
        done,
        error,
        s_tdata,
        s_tvalid,
        s_tready,
        m_tdata,
        m_tvalid,
        m_tready,
        m_tlast,
    } = gemm_ports(&mut m, db, sb)?;

    let lane_w = 16u32; // lane counters and valid-lane counts (≤ 64 lanes)
    let a_off_w = clog2(u64::from(r.a_bank_depth)).max(1);
    let b_off_w = clog2(u64::from(r.b_bank_depth)).max(1);
    let nc = u64::from(p.max_n_chunk);
    let (r64, c64) = (u64::from(rr), u64::from(cc));
    let fifo_aw = clog2(u64::from(r.out_fifo_depth)).max(1);
    let credit_w = fifo_aw + 1;

    // ---- command ----
    let kk = m.reg("k_len", db)?;
    let m_len = m.reg("m_len", db)?;
    let per_eff = m.reg("period", db)?;
    let (accept, reject, start_cmd) = command_accept(
        &mut m,
        (&cmd_valid, &cmd_ready, &busy),
        [&cmd_m, &cmd_k, &cmd_n],
        p.max_k,
    )?;
    let min_period = lit(u64::from(r.min_period), db)?;
    let cmd_period = Expr::mux(&cmd_k.e().gt(&min_period)?, &cmd_k.e(), &min_period)?;

    // ---- loader ----
    let ld_act = m.reg("ld_act", 1)?;
    let ld_isa = m.reg("ld_isa", 1)?;
    let ld_nrem = m.reg("ld_nrem", db)?;
    let ld_crem = m.reg("ld_crem", db)?;
    let ld_mrem = m.reg("ld_mrem", db)?;
    let ld_k = m.reg("ld_k", db)?;
    let beat_w = clog2(u64::from(r.qa.max(r.qb))).max(1);
    let ld_beat = m.reg("ld_beat", beat_w)?;
    let ld_lane = m.reg("ld_lane", lane_w)?;
    let ld_valid = m.reg("ld_valid", lane_w)?;
    let ld_boff = m.reg("ld_boff", b_off_w)?;
    let ld_ab = m.reg("ld_ab", 1)?;
    let ld_bb = m.reg("ld_bb", 1)?;
    let afull = [m.reg("a_full0", 1)?, m.reg("a_full1", 1)?];
    let bfull = [m.reg("b_full0", 1)?, m.reg("b_full1", 1)?];
    let a_tgt_full = Expr::mux(&ld_ab.e(), &afull[1].e(), &afull[0].e())?;
    let b_tgt_full = Expr::mux(&ld_bb.e(), &bfull[1].e(), &bfull[0].e())?;
    let tgt_full = Expr::mux(&ld_isa.e(), &a_tgt_full, &b_tgt_full)?;
    m.assign_sig(&s_tready, ld_act.e().and(&tgt_full.not())?)?;
    let fire = m.wire_from("ld_fire", s_tvalid.e().and(&s_tready.e())?)?;
    let e_cur = Expr::mux(
        &ld_isa.e(),
        &lit(u64::from(r.ea), lane_w)?,
        &lit(u64::from(r.eb), lane_w)?,
    )?;
    let row_end = m.wire_from("ld_row_end", ld_lane.e().add(&e_cur)?.ge(&ld_valid.e())?)?;
    let k_end = m.wire_from("ld_k_end", inc(&ld_k)?.eq(&kk.e())?)?;
    let ld_blk_end = m.wire_from("ld_blk_end", fire.e().and(&row_end.e())?.and(&k_end.e())?)?;
    // Bank-full set (loader) and clear (issuer) strobes.
    let set_a = m.wire_from("set_a", ld_blk_end.e().and(&ld_isa.e())?)?;
    let set_b_chunk = ld_blk_end
        .e()
        .and(&ld_isa.e().not())?
        .and(&ld_crem.e().gt(&lit(c64, db)?)?.not())?;
    let set_b = m.wire_from("set_b", set_b_chunk)?;

    // Memory write ports.
    let mut a_rdata = Vec::new();
    let mut b_rdata = Vec::new();
    let a_waddr = Expr::concat(&[ld_ab.e(), fit(&mut m, "ld_k_lo", &ld_k.e(), a_off_w)?])?;
    let b_waddr = Expr::concat(&[ld_bb.e(), ld_boff.e()])?;

    // ---- issuer ----
    let is_act = m.reg("is_act", 1)?;
    let is_k = m.reg("is_k", db)?;
    let is_nrem = m.reg("is_nrem", db)?;
    let is_crem = m.reg("is_crem", db)?;
    let is_mrem = m.reg("is_mrem", db)?;
    let is_boff = m.reg("is_boff", b_off_w)?;
    let is_ab = m.reg("is_ab", 1)?;
    let is_bb = m.reg("is_bb", 1)?;
    let is_left = m.reg("is_left", 1)?;
    let is_fl = m.reg("is_flushed", 1)?;
    let per = m.reg("since_start", db)?;
    let cap_v = m.reg("cap_v", 1)?;
    let cap_rv = m.reg("cap_rv", lane_w)?;
    let cap_cv = m.reg("cap_cv", lane_w)?;
    let credits = m.reg("credits", credit_w)?;
    let a_ok = Expr::mux(&is_ab.e(), &afull[1].e(), &afull[0].e())?;
    let b_ok = Expr::mux(&is_bb.e(), &bfull[1].e(), &bfull[0].e())?;
    let per_ok = per.e().ge(&per_eff.e())?;
    let cap_rv_c = fit(&mut m, "cap_rv_c", &cap_rv.e(), credit_w)?;
    let cred_ok = cap_v.e().not().or(&credits.e().ge(&cap_rv_c)?)?;
    let idle_ok = busy
        .e()
        .and(&is_act.e().not())?
        .and(&per_ok)?
        .and(&cred_ok)?;
    let start = m.wire_from(
        "is_start",
        idle_ok.and(&is_left.e())?.and(&a_ok)?.and(&b_ok)?,
    )?;
    let flush = m.wire_from(
        "is_flush",
        idle_ok
            .and(&is_left.e().not())?
            .and(&is_fl.e().not())?
            .and(&cap_v.e())?,
    )?;
    let flag = m.wire_from("is_flag", start.e().or(&flush.e())?)?;
    let rd = m.wire_from("is_rd", start.e().or(&is_act.e())?)?;
    let rd_k = Expr::mux(&is_act.e(), &is_k.e(), &Expr::zero(db))?;
    let rd_k = m.wire_from("is_rd_k", rd_k)?;
    let tile_end = m.wire_from(
        "is_tile_end",
        start
            .e()
            .and(&eq_c(&kk.e(), 1)?)?
            .or(&is_act.e().and(&inc(&is_k)?.eq(&kk.e())?)?)?,
    )?;
    let chunk_tile_last = is_crem.e().gt(&lit(c64, db)?)?.not();
    let blk_end = m.wire_from("is_blk_end", tile_end.e().and(&chunk_tile_last)?)?;
    let chunk_end = m.wire_from(
        "is_chunk_end",
        blk_end.e().and(&is_mrem.e().gt(&lit(r64, db)?)?.not())?,
    )?;
    let a_raddr = Expr::concat(&[is_ab.e(), fit(&mut m, "rd_k_lo", &rd_k.e(), a_off_w)?])?;
    let b_raddr = Expr::concat(&[
        is_bb.e(),
        is_boff
            .e()
            .add(&fit(&mut m, "rd_k_lo_b", &rd_k.e(), b_off_w)?)?,
    ])?;

    let (a_in, b_in) = packed_inputs(&mut m, r, &s_tdata)?;
    for q in 0..r.qa {
        let we = fire
            .e()
            .and(&ld_isa.e())?
            .and(&eq_c(&ld_beat.e(), u64::from(q))?)?;
        a_rdata.push(bram(
            &mut m,
            &clk,
            &format!("a_buf{q}"),
            a_in.width(),
            2 * r.a_bank_depth,
            &we,
            &a_waddr,
            &a_in,
            &a_raddr,
        )?);
    }
    for q in 0..r.qb {
        let we = fire
            .e()
            .and(&ld_isa.e().not())?
            .and(&eq_c(&ld_beat.e(), u64::from(q))?)?;
        b_rdata.push(bram(
            &mut m,
            &clk,
            &format!("b_buf{q}"),
            b_in.width(),
            2 * r.b_bank_depth,
            &we,
            &b_waddr,
            &b_in,
            &b_raddr,
        )?);
    }

    // Loader state machine.
    let mut ld_next = vec![];
    {
        let phase_e_row = vec![
            set(&ld_beat, Expr::zero(beat_w))?,
            set(&ld_lane, Expr::zero(lane_w))?,
        ];
        // End of a B row of the last tile of the chunk / of an A block.
        let b_chunk_done = vec![
            set(&ld_bb, ld_bb.e().not())?,
            set(&ld_isa, Expr::bool(true))?,
            set(&ld_mrem, m_len.e())?,
            set(&ld_valid, min_c(&m_len.e(), r64)?)?,
            set(&ld_boff, Expr::zero(b_off_w))?,
        ];
        let crem_next = sub_c(&ld_crem.e(), c64)?;
        let b_tile_done = vec![
            set(&ld_crem, crem_next.clone())?,
            set(&ld_valid, min_c(&crem_next, c64)?)?,
            set(&ld_boff, inc(&ld_boff)?)?,
        ];
        let mrem_next = sub_c(&ld_mrem.e(), r64)?;
        let nrem_next = sub_c(&ld_nrem.e(), nc)?;
        let a_pass_done = vec![Stmt::if_else(
            gt_c(&ld_nrem.e(), nc)?,
            vec![
                set(&ld_nrem, nrem_next.clone())?,
                set(&ld_isa, Expr::bool(false))?,
                set(&ld_boff, Expr::zero(b_off_w))?,
                set(&ld_crem, min_c(&nrem_next, nc)?)?,
                set(&ld_valid, min_c(&nrem_next, c64)?)?,
            ],
            vec![set(&ld_act, Expr::bool(false))?],
        )?];
        let a_blk_done = vec![
            set(&ld_ab, ld_ab.e().not())?,
            Stmt::if_else(
                gt_c(&ld_mrem.e(), r64)?,
                vec![
                    set(&ld_mrem, mrem_next.clone())?,
                    set(&ld_valid, min_c(&mrem_next, r64)?)?,
                ],
                a_pass_done,
            )?,
        ];
        let k_done = vec![
            set(&ld_k, Expr::zero(db))?,
            Stmt::if_else(
                ld_isa.e(),
                a_blk_done,
                vec![Stmt::if_else(
                    gt_c(&ld_crem.e(), c64)?,
                    b_tile_done,
                    b_chunk_done,
                )?],
            )?,
        ];
        let row_done = {
            let mut v = phase_e_row;
            v.push(Stmt::if_else(
                k_end.e(),
                k_done,
                vec![set(&ld_k, inc(&ld_k)?)?, set(&ld_boff, inc(&ld_boff)?)?],
            )?);
            v
        };
        ld_next.push(Stmt::if_(
            fire.e(),
            vec![Stmt::if_else(
                row_end.e(),
                row_done,
                vec![
                    set(&ld_beat, inc(&ld_beat)?)?,
                    set(&ld_lane, ld_lane.e().add(&e_cur)?)?,
                ],
            )?],
        )?);
    }
    let ld_init = vec![
        set(&ld_act, Expr::bool(true))?,
        set(&ld_isa, Expr::bool(false))?,
        set(&ld_nrem, cmd_n.e())?,
        set(&ld_crem, min_c(&cmd_n.e(), nc)?)?,
        set(&ld_valid, min_c(&cmd_n.e(), c64)?)?,
        set(&ld_mrem, cmd_m.e())?,
        set(&ld_k, Expr::zero(db))?,
        set(&ld_beat, Expr::zero(beat_w))?,
        set(&ld_lane, Expr::zero(lane_w))?,
        set(&ld_boff, Expr::zero(b_off_w))?,
        set(&ld_ab, Expr::bool(false))?,
        set(&ld_bb, Expr::bool(false))?,
    ];
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![set(&ld_act, Expr::bool(false))?],
            vec![Stmt::if_else(start_cmd.e(), ld_init, ld_next)?],
        )?],
    )?;

    // Issuer state machine.
    let pop_w = m.wire("out_pop", 1)?;
    let clr_a = m.wire_from("clr_a", blk_end.e())?;
    let clr_b = m.wire_from("clr_b", chunk_end.e())?;
    {
        let is_crem_next = sub_c(&is_crem.e(), c64)?;
        let is_mrem_next = sub_c(&is_mrem.e(), r64)?;
        let is_nrem_next = sub_c(&is_nrem.e(), nc)?;
        let kk_off = fit(&mut m, "k_len_off", &kk.e(), b_off_w)?;
        let chunk_done = vec![
            set(&is_bb, is_bb.e().not())?,
            set(&is_mrem, m_len.e())?,
            Stmt::if_else(
                gt_c(&is_nrem.e(), nc)?,
                vec![
                    set(&is_nrem, is_nrem_next.clone())?,
                    set(&is_crem, min_c(&is_nrem_next, nc)?)?,
                ],
                vec![set(&is_left, Expr::bool(false))?],
            )?,
        ];
        let blk_done = vec![
            set(&is_ab, is_ab.e().not())?,
            set(&is_boff, Expr::zero(b_off_w))?,
            Stmt::if_else(
                gt_c(&is_mrem.e(), r64)?,
                vec![
                    set(&is_mrem, is_mrem_next)?,
                    set(&is_crem, min_c(&is_nrem.e(), nc)?)?,
                ],
                chunk_done,
            )?,
        ];
        let tile_done = vec![
            set(&is_act, Expr::bool(false))?,
            set(&is_k, Expr::zero(db))?,
            Stmt::if_else(
                gt_c(&is_crem.e(), c64)?,
                vec![
                    set(&is_crem, is_crem_next)?,
                    set(&is_boff, is_boff.e().add(&kk_off)?)?,
                ],
                blk_done,
            )?,
        ];
        let credit_take = Expr::mux(&flag.e().and(&cap_v.e())?, &cap_rv_c, &Expr::zero(credit_w))?;
        let credit_back = Expr::concat(&[Expr::zero(credit_w - 1), pop_w.e()])?;
        let per_sat = eq_c(&per.e(), (1u64 << db) - 1)?;
        let run = vec![
            set(&credits, credits.e().sub(&credit_take)?.add(&credit_back)?)?,
            set(
                &per,
                Expr::mux(
                    &flag.e(),
                    &lit(1, db)?,
                    &Expr::mux(&per_sat, &per.e(), &inc(&per)?)?,
                )?,
            )?,
            Stmt::if_(
                start.e(),
                vec![
                    set(&cap_v, Expr::bool(true))?,
                    set(&cap_rv, min_c(&is_mrem.e(), r64)?)?,
                    set(&cap_cv, min_c(&is_crem.e(), c64)?)?,
                    set(&is_act, Expr::bool(true))?,
                    set(&is_k, lit(1, db)?)?,
                ],
            )?,
            Stmt::if_(
                is_act.e().and(&tile_end.e().not())?,
                vec![set(&is_k, inc(&is_k)?)?],
            )?,
            Stmt::if_(tile_end.e(), tile_done)?,
            Stmt::if_(
                flush.e(),
                vec![
                    set(&is_fl, Expr::bool(true))?,
                    set(&cap_v, Expr::bool(false))?,
                ],
            )?,
        ];
        let is_init = vec![
            set(&is_act, Expr::bool(false))?,
            set(&is_k, Expr::zero(db))?,
            set(&is_nrem, cmd_n.e())?,
            set(&is_crem, min_c(&cmd_n.e(), nc)?)?,
            set(&is_mrem, cmd_m.e())?,
            set(&is_boff, Expr::zero(b_off_w))?,
            set(&is_ab, Expr::bool(false))?,
            set(&is_bb, Expr::bool(false))?,
            set(&is_left, Expr::bool(true))?,
            set(&is_fl, Expr::bool(false))?,
            set(&per, Expr::ones(db))?,
            set(&cap_v, Expr::bool(false))?,
            set(&credits, lit(u64::from(r.out_fifo_depth), credit_w)?)?,
        ];
        m.clocked(
            &clk,
            vec![Stmt::if_else(
                rst.e(),
                vec![
                    set(&is_act, Expr::bool(false))?,
                    set(&is_left, Expr::bool(false))?,
                    set(&cap_v, Expr::bool(false))?,
                    set(&credits, lit(u64::from(r.out_fifo_depth), credit_w)?)?,
                ],
                vec![Stmt::if_else(start_cmd.e(), is_init, run)?],
            )?],
        )?;
        // Bank flags: set by the loader when a bank is complete, cleared by the issuer after its
        // last read. The two never target the same bank in one cycle (set needs it empty,
        // clear needs it full).
        let mut flags = vec![];
        for (full, set_s, clr_s, bank_ld, bank_is) in [
            (&afull, &set_a, &clr_a, &ld_ab, &is_ab),
            (&bfull, &set_b, &clr_b, &ld_bb, &is_bb),
        ] {
            for (i, f) in full.iter().enumerate() {
                let sel_ld = if i == 0 {
                    bank_ld.e().not()
                } else {
                    bank_ld.e()
                };
                let sel_is = if i == 0 {
                    bank_is.e().not()
                } else {
                    bank_is.e()
                };
                let s = set_s.e().and(&sel_ld)?;
                let c = clr_s.e().and(&sel_is)?;
                flags.push(set(f, f.e().or(&s)?.and(&c.not())?)?);
            }
        }
        let clear_all: Vec<Stmt> = afull
            .iter()
            .chain(bfull.iter())
            .map(|f| set(f, Expr::bool(false)))
            .collect::<HResult<_>>()?;
        m.clocked(
            &clk,
            vec![Stmt::if_else(
                rst.e().or(&start_cmd.e())?,
                clear_all,
                flags,
            )?],
        )?;
    }

    // ---- operand feed: BRAM outputs, zeroing of idle cycles, skew ----
    let a_vd = m.reg("a_vd", 1)?;
    let flag_d = m.reg("flag_d", 1)?;
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                set(&a_vd, Expr::bool(false))?,
                set(&flag_d, Expr::bool(false))?,
            ],
            vec![set(&a_vd, rd.e())?, set(&flag_d, flag.e())?],
        )?],
    )?;
    let b_words: Vec<Expr> = b_rdata.iter().rev().map(|s| s.e()).collect();
    let b_all = m.wire_from("b_word", Expr::concat(&b_words)?)?;
    if r.qb * r.eb > cc {
        m.allow_unused(b_all.name())?;
    }
    let wb_t = r.tb.width();
    let (a_row_in, f_row_in) = a_row_feed(&mut m, r, &clk, &rst, &a_rdata, &a_vd, &flag_d)?;
    let bw = b_lane_width(r);
    let mut b_col_in = Vec::new();
    for j in 0..cc {
        let raw = b_all.slice(j * wb_t + wb_t - 1, j * wb_t)?;
        let val = if r.tb.is_signed() {
            raw
        } else {
            Expr::concat(&[Expr::zero(1), raw])?
        };
        // Zero on idle cycles like the A lane: then the B word read while idle (a bank word
        // that may never have been written when K is small) cannot turn 0*X into X in 4-state
        // simulators. Costs one AND per bit; cycles are unchanged.
        let val = Expr::mux(&a_vd.e(), &val, &Expr::zero(val.width()))?;
        let enc = match p.pe {
            PeKind::Dsp => val,
            PeKind::ShiftAdd => csd_encode(&mut m, r, j, &val.as_signed())?,
        };
        let lane = m.wire_from(&format!("b_lane{j}"), enc)?;
        debug_assert_eq!(lane.width(), bw);
        b_col_in.push(delay(
            &mut m,
            &clk,
            None,
            &format!("b_sk{j}"),
            &lane.e(),
            j,
        )?);
    }

    // ---- PE grid ----
    let mut out_top = Vec::new();
    let mut a_h: Vec<Expr> = a_row_in;
    let mut f_h: Vec<Expr> = f_row_in;
    let mut b_v: Vec<Expr> = b_col_in;
    // out_v[i][j] is PE(i,j)'s output-chain register; PE(i,j) reads PE(i+1,j)'s.
    let mut out_wires: Vec<Vec<Sig>> = Vec::new();
    for i in 0..rr {
        let mut row = Vec::new();
        for j in 0..cc {
            row.push(m.wire_signed(&format!("o_{i}_{j}"), r.wacc)?);
        }
        out_wires.push(row);
    }
    for i in 0..rr {
        let mut next_b = Vec::new();
        for j in 0..cc {
            let a_o = m.wire_signed(&format!("a_{i}_{j}"), r.wa)?;
            let f_o = m.wire(&format!("f_{i}_{j}"), 1)?;
            let b_o = m.wire(&format!("b_{i}_{j}"), bw)?;
            if j + 1 == cc {
                m.allow_unused(a_o.name())?;
                m.allow_unused(f_o.name())?;
            }
            if i + 1 == rr {
                m.allow_unused(b_o.name())?;
            }
            let out_in = if i + 1 < rr {
                out_wires[(i + 1) as usize][j as usize].e()
            } else {
                Expr::zero(r.wacc).as_signed()
            };
            m.instance(
                pe,
                &format!("pe_{i}_{j}"),
                &[],
                &[
                    ("clk", clk.e()),
                    ("rst", rst.e()),
                    ("a_in", a_h[i as usize].clone()),
                    ("b_in", b_v[j as usize].clone()),
                    ("f_in", f_h[i as usize].clone()),
                    ("out_in", out_in),
                    ("a_out", a_o.e()),
                    ("b_out", b_o.e()),
                    ("f_out", f_o.e()),
                    ("out_out", out_wires[i as usize][j as usize].e()),
                ],
            )?;
            a_h[i as usize] = a_o.e();
            f_h[i as usize] = f_o.e();
            next_b.push(b_o.e());
        }
        b_v = next_b;
        let _ = &f_h;
    }
    for j in 0..cc {
        out_top.push(out_wires[0][j as usize].clone());
    }

    // ---- requantize each column's results, then de-skew into rows ----
    let wo = r.tout.width();
    let mut row_lanes = Vec::new();
    for (j, top) in out_top.iter().enumerate() {
        let j = j as u32;
        let x = if p.relu {
            let neg = top.bit(r.wacc - 1)?;
            m.wire_from(
                &format!("relu{j}"),
                Expr::mux(&neg, &Expr::zero(r.wacc).as_signed(), &top.e())?,
            )?
            .e()
        } else {
            top.e()
        };
        let xs = m.wire_from(&format!("rq{j}_in"), x)?;
        // The project's one RTL image of the qfx conversion (every rounding/overflow mode).
        let q = emit_requantize(&mut m, &format!("rq{j}"), &xs, &r.tacc, &r.tout)
            .map_err(|e| HdlError::Misuse(e.to_string()))?
            .e()
            .as_unsigned();
        let rq = m.reg(&format!("rq{j}_r"), wo)?;
        m.clocked(&clk, vec![set(&rq, q)?])?;
        row_lanes.push(delay(
            &mut m,
            &clk,
            None,
            &format!("dsk{j}"),
            &rq.e(),
            cc - 1 - j,
        )?);
    }

    // ---- row sequencer: a retiring tile's rows arrive every other cycle ----
    let ev_delay = cc + 2;
    let ev_w = 1 + 1 + 2 * lane_w; // valid, last, rv, cv
    let ev_in = Expr::concat(&[flag.e().and(&cap_v.e())?, flush.e(), cap_rv.e(), cap_cv.e()])?;
    let ev = delay(&mut m, &clk, Some(&rst), "ev", &ev_in, ev_delay)?;
    let ev = m.wire_from("ev_out", ev)?;
    let ev_v = ev.bit(ev_w - 1)?;
    let ev_last = ev.bit(ev_w - 2)?;
    let ev_rv = ev.slice(2 * lane_w - 1, lane_w)?;
    let ev_cv = ev.slice(lane_w - 1, 0)?;
    let seq_left = m.reg("seq_left", lane_w)?;
    let seq_ph = m.reg("seq_ph", 1)?;
    let seq_cv = m.reg("seq_cv", lane_w)?;
    let seq_last = m.reg("seq_last", 1)?;
    let seq_busy = seq_left.e().ne(&Expr::zero(lane_w))?;
    let push = m.wire_from("row_push", ev_v.or(&seq_busy.and(&seq_ph.e())?)?)?;
    let row_cv = m.wire_from("row_cv", Expr::mux(&ev_v, &ev_cv, &seq_cv.e())?)?;
    let row_last = m.wire_from(
        "row_last",
        Expr::mux(
            &ev_v,
            &ev_last.and(&eq_c(&ev_rv, 1)?)?,
            &seq_last.e().and(&eq_c(&seq_left.e(), 1)?)?,
        )?,
    )?;
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                set(&seq_left, Expr::zero(lane_w))?,
                set(&seq_ph, Expr::bool(false))?,
            ],
            vec![Stmt::if_else(
                ev_v.clone(),
                vec![
                    set(&seq_left, sub_c(&ev_rv, 1)?)?,
                    set(&seq_ph, Expr::bool(false))?,
                    set(&seq_cv, ev_cv.clone())?,
                    set(&seq_last, ev_last.clone())?,
                ],
                vec![Stmt::if_(
                    seq_busy.clone(),
                    vec![
                        set(&seq_ph, seq_ph.e().not())?,
                        Stmt::if_(seq_ph.e(), vec![set(&seq_left, sub_c(&seq_left.e(), 1)?)?])?,
                    ],
                )?],
            )?],
        )?],
    )?;
    // Columns beyond the tile's width carry padding results: zero them.
    let mut masked = Vec::new();
    for (j, lane) in row_lanes.iter().enumerate() {
        let keep = gt_c(&row_cv.e(), j as u64)?;
        masked.push(Expr::mux(&keep, lane, &Expr::zero(wo))?);
    }
    masked.reverse();
    let row_data = Expr::concat(&masked)?;

    // ---- output FIFO (LUT RAM, asynchronous read) and serializer ----
    let last_xfer = output_fifo(
        &mut m,
        r,
        &OutputPorts {
            clk: &clk,
            rst: &rst.e(),
            tdata: &m_tdata,
            tvalid: &m_tvalid,
            tready: &m_tready,
            tlast: &m_tlast,
        },
        &FifoRow {
            push: &push,
            last: &row_last,
            cv: &row_cv,
            data: row_data,
            pop: &pop_w,
        },
        fifo_aw,
        credit_w,
    )?;

    // ---- command / status ----
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                set(&busy, Expr::bool(false))?,
                set(&done, Expr::bool(false))?,
                set(&error, Expr::bool(false))?,
            ],
            vec![
                Stmt::if_(
                    accept.e(),
                    vec![
                        set(&busy, reject.e().not())?,
                        set(&done, reject.e())?,
                        set(&error, reject.e())?,
                        set(&kk, cmd_k.e())?,
                        set(&m_len, cmd_m.e())?,
                        set(&per_eff, cmd_period)?,
                    ],
                )?,
                Stmt::if_(
                    last_xfer,
                    vec![
                        set(&busy, Expr::bool(false))?,
                        set(&done, Expr::bool(true))?,
                    ],
                )?,
            ],
        )?],
    )?;
    Ok(m.finish())
}

/// Shift-add weight decoder for column `j`: NAF digits from `h = 3x`, then the lowest two
/// non-zero digits as `{z1, n1, s1, z2, n2, s2}`.
pub(super) fn csd_encode(m: &mut ModuleBuilder, r: &Resolved, j: u32, val: &Expr) -> HResult<Expr> {
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
    let _ = &pos;
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
