//! Verilog generation for the weight-stationary systolic array.
//!
//! ```text
//!  s_axis ─► loader ─► W buffer (2 banks) ─► weight feeder ─► shadow-weight chains (down columns)
//!                  └─► A buffer (2 banks) ─► issuer ─► skew ─► R×C PE array ─► column bottoms
//!  column bottoms + accumulator buffer (2 banks × C columns, block RAM, read-modify-write)
//!  accumulator bank of a finished block ─► drain ─► requantize ─► output FIFO ─► m_axis
//! ```
//!
//! The loop nest (stream order in [`super::model`]): for each B chunk, each M block of `Mb`
//! rows, each K-slice of R rows of K, each column tile of the chunk: the tile's R×C weights sit
//! in the PEs while the block's `mv` A rows (that K-slice) pass through, one row per cycle.
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

use accelforge_hdl::{
    Design, Expr, HdlError, Module, ModuleBuilder, Result as HResult, Sig, Stmt, clog2,
};

use super::error::{HdlContext, Result};
use super::params::{PeKind, Resolved};
use super::pe::{b_lane_width, pe_ws_module};
use super::rtl::{
    DIM_BITS, FifoRow, GemmPorts, OutputPorts, a_row_feed, bram, command_accept, csd_encode, delay,
    gemm_ports, output_fifo, packed_inputs,
};
use super::rtl_util::*;
use crate::units::requantize::emit_requantize;

/// Generates the weight-stationary design: top module plus the PE module.
pub(super) fn design(r: &Resolved) -> Result<Design> {
    let p = &r.p;
    let prefix = p.module_prefix();
    let pe_name = format!("{prefix}_pe");
    let pe = pe_ws_module(r, &pe_name).ctx(&pe_name)?;
    let top = top_module(r, &prefix, &pe).ctx(&prefix)?;
    let mut d = Design::new(top, p);
    d.add(pe).ctx(&pe_name)?;
    d.check_complete().ctx(&prefix)?;
    Ok(d)
}

/// `x + c` modulo 2^width(x): a base address stepping past the last tile never gets used, and
/// with a single tile the step itself may not fit the address width.
fn add_wrap(x: &Expr, c: u64) -> HResult<Expr> {
    let w = x.width();
    let mask = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
    x.add(&lit(c & mask, w)?)
}

/// `if (rst) a else b` as one statement.
fn rst_or(rst: &Expr, on_rst: Vec<Stmt>, run: Vec<Stmt>) -> HResult<Stmt> {
    Stmt::if_else(rst.clone(), on_rst, run)
}

/// The counters of the WS loop nest (B chunks, M blocks, K-slices, column tiles) that the issuer
/// and the weight feeder each step through on their own.
struct LoopNest<'a> {
    nrem: &'a Sig,
    crem: &'a Sig,
    mrem: &'a Sig,
    krem: &'a Sig,
    /// Cleared after the last chunk.
    left: &'a Sig,
    /// Buffer offset of the current tile, advanced by `base_step` per tile.
    base: &'a Sig,
    base_step: u64,
    /// Buffer bank, toggled per K-slice.
    bank: &'a Sig,
}

/// The loop bounds both walkers share.
struct NestDims<'a> {
    chunk: u64,
    block: u64,
    rows: u64,
    cols: u64,
    k_len: &'a Sig,
    m_len: &'a Sig,
}

/// The updates when a tile ends: next tile, else next K-slice, else (after `on_block_done`) next
/// M block, else next chunk, else done.
fn ws_tile_done(
    n: &LoopNest<'_>,
    d: &NestDims<'_>,
    on_block_done: Vec<Stmt>,
) -> HResult<Vec<Stmt>> {
    let nrem_next = sub_c(&n.nrem.e(), d.chunk)?;
    let chunk_done = vec![Stmt::if_else(
        gt_c(&n.nrem.e(), d.chunk)?,
        vec![
            set(n.nrem, nrem_next.clone())?,
            set(n.crem, min_c(&nrem_next, d.chunk)?)?,
        ],
        vec![set(n.left, Expr::bool(false))?],
    )?];
    let mut block_done = on_block_done;
    block_done.push(Stmt::if_else(
        gt_c(&n.mrem.e(), d.block)?,
        vec![set(n.mrem, sub_c(&n.mrem.e(), d.block)?)?],
        {
            let mut v = vec![set(n.mrem, d.m_len.e())?];
            v.extend(chunk_done);
            v
        },
    )?);
    let base_w = n.base.width();
    Ok(vec![Stmt::if_else(
        gt_c(&n.crem.e(), d.cols)?,
        vec![
            set(n.crem, sub_c(&n.crem.e(), d.cols)?)?,
            set(n.base, add_wrap(&n.base.e(), n.base_step)?)?,
        ],
        vec![
            set(n.base, Expr::zero(base_w))?,
            set(n.bank, n.bank.e().not())?,
            set(n.crem, min_c(&n.nrem.e(), d.chunk)?)?,
            Stmt::if_else(
                gt_c(&n.krem.e(), d.rows)?,
                vec![set(n.krem, sub_c(&n.krem.e(), d.rows)?)?],
                {
                    let mut v = vec![set(n.krem, d.k_len.e())?];
                    v.extend(block_done);
                    v
                },
            )?,
        ],
    )?])
}

fn top_module(r: &Resolved, name: &str, pe: &Module) -> HResult<Module> {
    let p = &r.p;
    let (rr, cc) = (r.r, r.c);
    let sb = p.stream_bits;
    let db = DIM_BITS;
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "Weight-stationary systolic array {}x{}: A {} x B {} -> acc {} -> out {}{}, PE {:?}.",
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
        "Buffers: max K {}, M block {}, B chunk {} columns, {}-bit AXI4-Stream in/out.",
        p.max_k, r.ws_m_block, p.max_n_chunk, sb
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

    let lane_w = 16u32;
    let nc = u64::from(p.max_n_chunk);
    let mb = u64::from(r.ws_m_block);
    let (r64, c64) = (u64::from(rr), u64::from(cc));
    let a_off_w = clog2(u64::from(r.ws_a_depth));
    let w_off_w = clog2(u64::from(r.ws_w_depth));
    let acc_aw = clog2(u64::from(r.ws_acc_depth)).max(1);
    let fifo_aw = clog2(u64::from(r.out_fifo_depth)).max(1);
    let credit_w = fifo_aw + 1;
    let rst_e = rst.e();

    // ---- command ----
    let kk = m.reg("k_len", db)?;
    let m_len = m.reg("m_len", db)?;
    let (accept, reject, start_cmd) = command_accept(
        &mut m,
        (&cmd_valid, &cmd_ready, &busy),
        [&cmd_m, &cmd_k, &cmd_n],
        p.max_k,
    )?;
    let nest_dims = NestDims {
        chunk: nc,
        block: mb,
        rows: r64,
        cols: c64,
        k_len: &kk,
        m_len: &m_len,
    };

    // ---- loader: per K-slice, the weight rows of every tile of the chunk, then the A rows ----
    let ld_act = m.reg("ld_act", 1)?;
    let ld_isa = m.reg("ld_isa", 1)?;
    let ld_nrem = m.reg("ld_nrem", db)?;
    let ld_crem = m.reg("ld_crem", db)?;
    let ld_mrem = m.reg("ld_mrem", db)?;
    let ld_krem = m.reg("ld_krem", db)?;
    let ld_i = m.reg("ld_i", db)?;
    let beat_w = clog2(u64::from(r.qa.max(r.qb))).max(1);
    let ld_beat = m.reg("ld_beat", beat_w)?;
    let ld_lane = m.reg("ld_lane", lane_w)?;
    let ld_wbase = m.reg("ld_wbase", w_off_w)?;
    let ld_wb = m.reg("ld_wb", 1)?;
    let ld_ab = m.reg("ld_ab", 1)?;
    let afull = [m.reg("a_full0", 1)?, m.reg("a_full1", 1)?];
    let wfull = [m.reg("w_full0", 1)?, m.reg("w_full1", 1)?];
    let a_tgt_full = Expr::mux(&ld_ab.e(), &afull[1].e(), &afull[0].e())?;
    let w_tgt_full = Expr::mux(&ld_wb.e(), &wfull[1].e(), &wfull[0].e())?;
    let tgt_full = Expr::mux(&ld_isa.e(), &a_tgt_full, &w_tgt_full)?;
    m.assign_sig(&s_tready, ld_act.e().and(&tgt_full.not())?)?;
    let fire = m.wire_from("ld_fire", s_tvalid.e().and(&s_tready.e())?)?;
    let ld_kv = m.wire_from("ld_kv", min_c(&ld_krem.e(), r64)?)?;
    let ld_cv = m.wire_from("ld_cv", min_c(&ld_crem.e(), c64)?)?;
    let ld_mv = m.wire_from("ld_mv", min_c(&ld_mrem.e(), mb)?)?;
    let ld_valid = Expr::mux(&ld_isa.e(), &ld_kv.e(), &ld_cv.e())?;
    let e_cur = Expr::mux(
        &ld_isa.e(),
        &lit(u64::from(r.ea), lane_w)?,
        &lit(u64::from(r.eb), lane_w)?,
    )?;
    let row_end = m.wire_from("ld_row_end", ld_lane.e().add(&e_cur)?.ge(&ld_valid)?)?;
    let ld_rows = Expr::mux(&ld_isa.e(), &ld_mv.e(), &ld_kv.e())?;
    let i_end = m.wire_from("ld_i_end", inc(&ld_i)?.eq(&ld_rows)?)?;
    let ld_set_end = m.wire_from("ld_set_end", fire.e().and(&row_end.e())?.and(&i_end.e())?)?;
    let set_a = m.wire_from("set_a", ld_set_end.e().and(&ld_isa.e())?)?;
    let set_w = m.wire_from(
        "set_w",
        ld_set_end
            .e()
            .and(&ld_isa.e().not())?
            .and(&gt_c(&ld_crem.e(), c64)?.not())?,
    )?;
    {
        let crem_next = sub_c(&ld_crem.e(), c64)?;
        let nrem_next = sub_c(&ld_nrem.e(), nc)?;
        let w_tile_done = vec![Stmt::if_else(
            gt_c(&ld_crem.e(), c64)?,
            vec![
                set(&ld_crem, crem_next)?,
                set(&ld_wbase, add_wrap(&ld_wbase.e(), r64)?)?,
            ],
            vec![
                set(&ld_wb, ld_wb.e().not())?,
                set(&ld_isa, Expr::bool(true))?,
                set(&ld_wbase, Expr::zero(w_off_w))?,
                set(&ld_crem, min_c(&ld_nrem.e(), nc)?)?,
            ],
        )?];
        let chunk_done = vec![Stmt::if_else(
            gt_c(&ld_nrem.e(), nc)?,
            vec![
                set(&ld_nrem, nrem_next.clone())?,
                set(&ld_crem, min_c(&nrem_next, nc)?)?,
            ],
            vec![set(&ld_act, Expr::bool(false))?],
        )?];
        let block_done = vec![Stmt::if_else(
            gt_c(&ld_mrem.e(), mb)?,
            vec![set(&ld_mrem, sub_c(&ld_mrem.e(), mb)?)?],
            {
                let mut v = vec![set(&ld_mrem, m_len.e())?];
                v.extend(chunk_done);
                v
            },
        )?];
        let a_done = vec![
            set(&ld_ab, ld_ab.e().not())?,
            set(&ld_isa, Expr::bool(false))?,
            Stmt::if_else(
                gt_c(&ld_krem.e(), r64)?,
                vec![set(&ld_krem, sub_c(&ld_krem.e(), r64)?)?],
                {
                    let mut v = vec![set(&ld_krem, kk.e())?];
                    v.extend(block_done);
                    v
                },
            )?,
        ];
        let row_done = vec![
            set(&ld_beat, Expr::zero(beat_w))?,
            set(&ld_lane, Expr::zero(lane_w))?,
            Stmt::if_else(
                i_end.e(),
                vec![
                    set(&ld_i, Expr::zero(db))?,
                    Stmt::if_else(ld_isa.e(), a_done, w_tile_done)?,
                ],
                vec![set(&ld_i, inc(&ld_i)?)?],
            )?,
        ];
        let ld_next = vec![Stmt::if_(
            fire.e(),
            vec![Stmt::if_else(
                row_end.e(),
                row_done,
                vec![
                    set(&ld_beat, inc(&ld_beat)?)?,
                    set(&ld_lane, ld_lane.e().add(&e_cur)?)?,
                ],
            )?],
        )?];
        let ld_init = vec![
            set(&ld_act, Expr::bool(true))?,
            set(&ld_isa, Expr::bool(false))?,
            set(&ld_nrem, cmd_n.e())?,
            set(&ld_crem, min_c(&cmd_n.e(), nc)?)?,
            set(&ld_mrem, cmd_m.e())?,
            set(&ld_krem, cmd_k.e())?,
            set(&ld_i, Expr::zero(db))?,
            set(&ld_beat, Expr::zero(beat_w))?,
            set(&ld_lane, Expr::zero(lane_w))?,
            set(&ld_wbase, Expr::zero(w_off_w))?,
            set(&ld_ab, Expr::bool(false))?,
            set(&ld_wb, Expr::bool(false))?,
        ];
        m.clocked(
            &clk,
            vec![rst_or(
                &rst_e,
                vec![set(&ld_act, Expr::bool(false))?],
                vec![Stmt::if_else(start_cmd.e(), ld_init, ld_next)?],
            )?],
        )?;
    }

    // ---- issuer: one A row per cycle; a tile starts when its weights are in the chains ----
    let is_act = m.reg("is_act", 1)?;
    let is_m = m.reg("is_m", db)?;
    let is_left = m.reg("is_left", 1)?;
    let is_ab = m.reg("is_ab", 1)?;
    let is_acb = m.reg("is_acb", 1)?;
    let is_abase = m.reg("is_abase", acc_aw)?;
    let is_nrem = m.reg("is_nrem", db)?;
    let is_crem = m.reg("is_crem", db)?;
    let is_mrem = m.reg("is_mrem", db)?;
    let is_krem = m.reg("is_krem", db)?;
    let wf_full = m.reg("wf_full", 1)?;
    let acc_busy = [m.reg("acc_busy0", 1)?, m.reg("acc_busy1", 1)?];
    let acc_ready = [m.reg("acc_ready0", 1)?, m.reg("acc_ready1", 1)?];
    let first_slice = m.wire_from("is_first_slice", is_krem.e().eq(&kk.e())?)?;
    let blk_first = first_slice.e().and(&eq_c(&is_abase.e(), 0)?)?;
    let acc_free = Expr::mux(&is_acb.e(), &acc_busy[1].e(), &acc_busy[0].e())?.not();
    let a_ok = Expr::mux(&is_ab.e(), &afull[1].e(), &afull[0].e())?;
    let start = m.wire_from(
        "is_start",
        busy.e()
            .and(&is_act.e().not())?
            .and(&is_left.e())?
            .and(&a_ok)?
            .and(&wf_full.e())?
            .and(&blk_first.not().or(&acc_free)?)?,
    )?;
    let claim = m.wire_from("acc_claim", start.e().and(&blk_first)?)?;
    let rd = m.wire_from("is_rd", start.e().or(&is_act.e())?)?;
    let m_cur = m.wire_from(
        "is_m_cur",
        Expr::mux(&is_act.e(), &is_m.e(), &Expr::zero(db))?,
    )?;
    let is_mv = min_c(&is_mrem.e(), mb)?;
    let row_last = m.wire_from("is_row_last", inc(&m_cur)?.eq(&is_mv)?)?;
    let tile_end = m.wire_from("is_tile_end", rd.e().and(&row_last.e())?)?;
    let slice_end = m.wire_from(
        "is_slice_end",
        tile_end.e().and(&gt_c(&is_crem.e(), c64)?.not())?,
    )?;
    let blk_last = m.wire_from(
        "is_blk_last",
        slice_end.e().and(&gt_c(&is_krem.e(), r64)?.not())?,
    )?;
    let a_raddr = Expr::concat(&[is_ab.e(), fit(&mut m, "is_m_lo", &m_cur.e(), a_off_w)?])?;
    let m_acc = fit(&mut m, "is_m_acc", &m_cur.e(), acc_aw)?;
    let acc_addr = m.wire_from("is_acc_addr", is_abase.e().add(&m_acc)?)?;
    {
        let tile_done = ws_tile_done(
            &LoopNest {
                nrem: &is_nrem,
                crem: &is_crem,
                mrem: &is_mrem,
                krem: &is_krem,
                left: &is_left,
                base: &is_abase,
                base_step: mb,
                bank: &is_ab,
            },
            &nest_dims,
            vec![set(&is_acb, is_acb.e().not())?],
        )?;
        let run = vec![Stmt::if_(
            rd.e(),
            vec![Stmt::if_else(
                row_last.e(),
                {
                    let mut v = vec![
                        set(&is_act, Expr::bool(false))?,
                        set(&is_m, Expr::zero(db))?,
                    ];
                    v.extend(tile_done);
                    v
                },
                vec![set(&is_act, Expr::bool(true))?, set(&is_m, inc(&m_cur)?)?],
            )?],
        )?];
        let init = vec![
            set(&is_act, Expr::bool(false))?,
            set(&is_m, Expr::zero(db))?,
            set(&is_left, Expr::bool(true))?,
            set(&is_ab, Expr::bool(false))?,
            set(&is_acb, Expr::bool(false))?,
            set(&is_abase, Expr::zero(acc_aw))?,
            set(&is_nrem, cmd_n.e())?,
            set(&is_crem, min_c(&cmd_n.e(), nc)?)?,
            set(&is_mrem, cmd_m.e())?,
            set(&is_krem, cmd_k.e())?,
        ];
        m.clocked(
            &clk,
            vec![rst_or(
                &rst_e,
                vec![
                    set(&is_act, Expr::bool(false))?,
                    set(&is_left, Expr::bool(false))?,
                ],
                vec![Stmt::if_else(start_cmd.e(), init, run)?],
            )?],
        )?;
    }

    // ---- weight feeder: R weight rows per tile into the shadow chains, last row first ----
    let wf_ld = m.reg("wf_ld", 1)?;
    let wf_cnt = m.reg("wf_cnt", db)?;
    let wf_hold = m.reg("wf_hold", db)?;
    let wf_left = m.reg("wf_left", 1)?;
    let wf_wb = m.reg("wf_wb", 1)?;
    let wf_tbase = m.reg("wf_tbase", w_off_w)?;
    let wf_nrem = m.reg("wf_nrem", db)?;
    let wf_crem = m.reg("wf_crem", db)?;
    let wf_mrem = m.reg("wf_mrem", db)?;
    let wf_krem = m.reg("wf_krem", db)?;
    let w_ok = Expr::mux(&wf_wb.e(), &wfull[1].e(), &wfull[0].e())?;
    let wf_go = m.wire_from(
        "wf_go",
        busy.e()
            .and(&wf_left.e())?
            .and(&wf_ld.e().not())?
            .and(&wf_full.e().not())?
            .and(&eq_c(&wf_hold.e(), 0)?)?
            .and(&w_ok)?,
    )?;
    let wf_rd = m.wire_from("wf_rd", wf_go.e().or(&wf_ld.e())?)?;
    let wf_c = m.wire_from("wf_c", Expr::mux(&wf_ld.e(), &wf_cnt.e(), &Expr::zero(db))?)?;
    let ridx = m.wire_from("wf_row", lit(r64 - 1, db)?.sub(&wf_c.e())?)?;
    let wf_keep = ridx.e().lt(&min_c(&wf_krem.e(), r64)?)?;
    let wf_last = m.wire_from("wf_last", wf_rd.e().and(&eq_c(&wf_c.e(), r64 - 1)?)?)?;
    let clr_w = m.wire_from("clr_w", wf_last.e().and(&gt_c(&wf_crem.e(), c64)?.not())?)?;
    let w_raddr = Expr::concat(&[
        wf_wb.e(),
        wf_tbase
            .e()
            .add(&fit(&mut m, "wf_row_lo", &ridx.e(), w_off_w)?)?,
    ])?;
    let hold_after = u64::from(rr.saturating_sub(2));
    {
        let tile_done = ws_tile_done(
            &LoopNest {
                nrem: &wf_nrem,
                crem: &wf_crem,
                mrem: &wf_mrem,
                krem: &wf_krem,
                left: &wf_left,
                base: &wf_tbase,
                base_step: r64,
                bank: &wf_wb,
            },
            &nest_dims,
            Vec::new(),
        )?;
        let run = vec![
            Stmt::if_else(
                start.e(),
                vec![
                    set(&wf_full, Expr::bool(false))?,
                    set(&wf_hold, lit(hold_after, db)?)?,
                ],
                vec![Stmt::if_(
                    eq_c(&wf_hold.e(), 0)?.not(),
                    vec![set(&wf_hold, sub_c(&wf_hold.e(), 1)?)?],
                )?],
            )?,
            Stmt::if_(
                wf_rd.e(),
                vec![Stmt::if_else(
                    wf_last.e(),
                    {
                        let mut v = vec![
                            set(&wf_ld, Expr::bool(false))?,
                            set(&wf_cnt, Expr::zero(db))?,
                            set(&wf_full, Expr::bool(true))?,
                        ];
                        v.extend(tile_done);
                        v
                    },
                    vec![set(&wf_ld, Expr::bool(true))?, set(&wf_cnt, inc(&wf_c)?)?],
                )?],
            )?,
        ];
        let init = vec![
            set(&wf_ld, Expr::bool(false))?,
            set(&wf_cnt, Expr::zero(db))?,
            set(&wf_full, Expr::bool(false))?,
            set(&wf_hold, Expr::zero(db))?,
            set(&wf_left, Expr::bool(true))?,
            set(&wf_wb, Expr::bool(false))?,
            set(&wf_tbase, Expr::zero(w_off_w))?,
            set(&wf_nrem, cmd_n.e())?,
            set(&wf_crem, min_c(&cmd_n.e(), nc)?)?,
            set(&wf_mrem, cmd_m.e())?,
            set(&wf_krem, cmd_k.e())?,
        ];
        m.clocked(
            &clk,
            vec![rst_or(
                &rst_e,
                vec![
                    set(&wf_ld, Expr::bool(false))?,
                    set(&wf_full, Expr::bool(false))?,
                    set(&wf_left, Expr::bool(false))?,
                ],
                vec![Stmt::if_else(start_cmd.e(), init, run)?],
            )?],
        )?;
    }

    // ---- operand buffers ----
    let a_waddr = Expr::concat(&[ld_ab.e(), fit(&mut m, "ld_i_a", &ld_i.e(), a_off_w)?])?;
    let w_waddr = Expr::concat(&[
        ld_wb.e(),
        ld_wbase
            .e()
            .add(&fit(&mut m, "ld_i_w", &ld_i.e(), w_off_w)?)?,
    ])?;
    let mut a_rdata = Vec::new();
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
            2 * r.ws_a_depth,
            &we,
            &a_waddr,
            &a_in,
            &a_raddr,
        )?);
    }
    let mut w_rdata = Vec::new();
    for q in 0..r.qb {
        let we = fire
            .e()
            .and(&ld_isa.e().not())?
            .and(&eq_c(&ld_beat.e(), u64::from(q))?)?;
        w_rdata.push(bram(
            &mut m,
            &clk,
            &format!("w_buf{q}"),
            b_in.width(),
            2 * r.ws_w_depth,
            &we,
            &w_waddr,
            &b_in,
            &w_raddr,
        )?);
    }

    // Bank flags: set by the loader when a bank is complete, cleared after its last read.
    {
        let clr_a = slice_end.e();
        let mut flags = vec![];
        for (full, set_s, clr_s, bank_ld, bank_rd) in [
            (&afull, set_a.e(), clr_a, ld_ab.e(), is_ab.e()),
            (&wfull, set_w.e(), clr_w.e(), ld_wb.e(), wf_wb.e()),
        ] {
            for (i, f) in full.iter().enumerate() {
                let sel = |b: &Expr| if i == 0 { b.not() } else { b.clone() };
                let s = set_s.and(&sel(&bank_ld))?;
                let c = clr_s.and(&sel(&bank_rd))?;
                flags.push(set(f, f.e().or(&s)?.and(&c.not())?)?);
            }
        }
        let clear_all: Vec<Stmt> = afull
            .iter()
            .chain(wfull.iter())
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

    // ---- A feed: zero idle cycles, skew row i by i; the tile flag travels with row 0 ----
    let a_vd = m.reg("a_vd", 1)?;
    let flag_d = m.reg("flag_d", 1)?;
    let w_keep_d = m.reg("w_keep_d", 1)?;
    let wsh_d = m.reg("wsh_d", 1)?;
    m.clocked(
        &clk,
        vec![rst_or(
            &rst_e,
            vec![
                set(&a_vd, Expr::bool(false))?,
                set(&flag_d, Expr::bool(false))?,
                set(&wsh_d, Expr::bool(false))?,
            ],
            vec![
                set(&a_vd, rd.e())?,
                set(&flag_d, start.e())?,
                set(&wsh_d, wf_rd.e())?,
            ],
        )?],
    )?;
    m.clocked(&clk, vec![set(&w_keep_d, wf_keep)?])?;
    let w_words: Vec<Expr> = w_rdata.iter().rev().map(|s| s.e()).collect();
    let w_all = m.wire_from("w_word", Expr::concat(&w_words)?)?;
    if r.qb * r.eb > cc {
        m.allow_unused(w_all.name())?;
    }
    let wb_t = r.tb.width();
    let (a_row_in, f_row_in) = a_row_feed(&mut m, r, &clk, &rst, &a_rdata, &a_vd, &flag_d)?;
    // Weight rows past K (the last K-slice) load as zeros, so the stale A lanes they meet add
    // nothing; columns past N only reach results that are never sent.
    let bw = b_lane_width(r);
    let mut w_col_in = Vec::new();
    let mut wsh_col = Vec::new();
    for j in 0..cc {
        let raw = w_all.slice(j * wb_t + wb_t - 1, j * wb_t)?;
        let val = if r.tb.is_signed() {
            raw
        } else {
            Expr::concat(&[Expr::zero(1), raw])?
        };
        let val = Expr::mux(&w_keep_d.e(), &val, &Expr::zero(r.wb))?;
        let enc = match p.pe {
            PeKind::Dsp => val,
            PeKind::ShiftAdd => csd_encode(&mut m, r, j, &val.as_signed())?,
        };
        let lane = m.wire_from(&format!("w_lane{j}"), enc)?;
        w_col_in.push(delay(
            &mut m,
            &clk,
            None,
            &format!("w_sk{j}"),
            &lane.e(),
            j,
        )?);
        wsh_col.push(delay(
            &mut m,
            &clk,
            Some(&rst),
            &format!("wsh_sk{j}"),
            &wsh_d.e(),
            j,
        )?);
    }

    // ---- PE grid ----
    let mut a_h = a_row_in;
    let mut f_h = f_row_in;
    let mut w_v = w_col_in;
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
            m.instance(
                pe,
                &format!("pe_{i}_{j}"),
                &[],
                &[
                    ("clk", clk.e()),
                    ("rst", rst.e()),
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

    // ---- accumulator buffer: stage s of the control chain reads column s, writes s−1 ----
    // Control word per issued A row: {valid, first K-slice, block's last row, bank, address}.
    let ctl_w = 4 + acc_aw;
    let ctl_in = Expr::concat(&[
        rd.e(),
        first_slice.e(),
        blk_last.e(),
        is_acb.e(),
        acc_addr.e(),
    ])?;
    let mut stages = Vec::new();
    let s0 = delay(&mut m, &clk, Some(&rst), "ctl", &ctl_in, rr)?;
    stages.push(m.wire_from("ctl_s0", s0)?);
    for s in 1..=cc {
        let prev = stages[(s - 1) as usize].e();
        let d = delay(&mut m, &clk, Some(&rst), &format!("ctl_c{s}"), &prev, 1)?;
        stages.push(m.wire_from(&format!("ctl_s{s}"), d)?);
    }
    let f_v = |s: &accelforge_hdl::Sig| s.bit(ctl_w - 1);
    let f_first = |s: &accelforge_hdl::Sig| s.bit(ctl_w - 2);
    let f_last = |s: &accelforge_hdl::Sig| s.bit(ctl_w - 3);
    let f_bank = |s: &accelforge_hdl::Sig| s.bit(ctl_w - 4);
    let f_addr = |s: &accelforge_hdl::Sig| s.slice(acc_aw - 1, 0);
    // The last stage only carries the write of column C−1 and the block-complete strobe.
    let last_stage = &stages[cc as usize];
    let s0_first = f_first(&stages[0])?;
    let s0_last = f_last(&stages[0])?;
    let s0_bank = f_bank(&stages[0])?;
    let s0_v = f_v(&stages[0])?;
    let ctl_unused = m.wire_from(
        "ctl_s0_unused",
        Expr::concat(&[s0_v, s0_first, s0_last, s0_bank])?,
    )?;
    m.allow_unused(ctl_unused.name())?;
    for s in 1..cc {
        let u = m.wire_from(&format!("ctl_s{s}_unused"), f_last(&stages[s as usize])?)?;
        m.allow_unused(u.name())?;
    }

    // ---- drain: one accumulator row per cycle, output-stationary order ----
    let dr_left = m.reg("dr_left", 1)?;
    let dr_bank = m.reg("dr_bank", 1)?;
    let dr_r = m.reg("dr_r", db)?;
    let dr_gbase = m.reg("dr_gbase", acc_aw)?;
    let dr_tbase = m.reg("dr_tbase", acc_aw)?;
    let dr_grem = m.reg("dr_grem", db)?;
    let dr_crem = m.reg("dr_crem", db)?;
    let dr_mrem = m.reg("dr_mrem", db)?;
    let dr_nrem = m.reg("dr_nrem", db)?;
    let credits = m.reg("credits", credit_w)?;
    let ready_ok = Expr::mux(&dr_bank.e(), &acc_ready[1].e(), &acc_ready[0].e())?;
    let dr_go = m.wire_from(
        "dr_go",
        dr_left
            .e()
            .and(&ready_ok)?
            .and(&credits.e().ne(&Expr::zero(credit_w))?)?,
    )?;
    let dr_rv = min_c(&dr_grem.e(), r64)?;
    let dr_cv = m.wire_from("dr_cv", min_c(&dr_crem.e(), c64)?)?;
    let dr_r_end = m.wire_from("dr_r_end", inc(&dr_r)?.eq(&dr_rv)?)?;
    let dr_t_last = gt_c(&dr_crem.e(), c64)?.not();
    let dr_g_last = gt_c(&dr_grem.e(), r64)?.not();
    let dr_g_end = m.wire_from("dr_g_end", dr_r_end.e().and(&dr_t_last)?.and(&dr_g_last)?)?;
    let dr_blk_done = m.wire_from("dr_blk_done", dr_go.e().and(&dr_g_end.e())?)?;
    let dr_final = m.wire_from(
        "dr_final",
        dr_g_end
            .e()
            .and(&gt_c(&dr_mrem.e(), mb)?.not())?
            .and(&gt_c(&dr_nrem.e(), nc)?.not())?,
    )?;
    let dr_r_lo = fit(&mut m, "dr_r_lo", &dr_r.e(), acc_aw)?;
    let dr_addr = m.wire_from("dr_addr", dr_tbase.e().add(&dr_gbase.e())?.add(&dr_r_lo)?)?;
    {
        let nrem_next = sub_c(&dr_nrem.e(), nc)?;
        let mrem_next = sub_c(&dr_mrem.e(), mb)?;
        let block_done = vec![
            set(&dr_gbase, Expr::zero(acc_aw))?,
            set(&dr_bank, dr_bank.e().not())?,
            Stmt::if_else(
                gt_c(&dr_mrem.e(), mb)?,
                vec![
                    set(&dr_mrem, mrem_next.clone())?,
                    set(&dr_grem, min_c(&mrem_next, mb)?)?,
                ],
                vec![
                    set(&dr_mrem, m_len.e())?,
                    Stmt::if_else(
                        gt_c(&dr_nrem.e(), nc)?,
                        vec![
                            set(&dr_nrem, nrem_next.clone())?,
                            set(&dr_crem, min_c(&nrem_next, nc)?)?,
                            set(&dr_grem, min_c(&m_len.e(), mb)?)?,
                        ],
                        vec![set(&dr_left, Expr::bool(false))?],
                    )?,
                ],
            )?,
        ];
        let tile_done = vec![Stmt::if_else(
            gt_c(&dr_crem.e(), c64)?,
            vec![
                set(&dr_crem, sub_c(&dr_crem.e(), c64)?)?,
                set(&dr_tbase, add_wrap(&dr_tbase.e(), mb)?)?,
            ],
            vec![
                set(&dr_tbase, Expr::zero(acc_aw))?,
                set(&dr_crem, min_c(&dr_nrem.e(), nc)?)?,
                Stmt::if_else(
                    gt_c(&dr_grem.e(), r64)?,
                    vec![
                        set(&dr_grem, sub_c(&dr_grem.e(), r64)?)?,
                        set(&dr_gbase, add_wrap(&dr_gbase.e(), r64)?)?,
                    ],
                    block_done,
                )?,
            ],
        )?];
        let run = vec![Stmt::if_(
            dr_go.e(),
            vec![Stmt::if_else(
                dr_r_end.e(),
                {
                    let mut v = vec![set(&dr_r, Expr::zero(db))?];
                    v.extend(tile_done);
                    v
                },
                vec![set(&dr_r, inc(&dr_r)?)?],
            )?],
        )?];
        let init = vec![
            set(&dr_left, Expr::bool(true))?,
            set(&dr_bank, Expr::bool(false))?,
            set(&dr_r, Expr::zero(db))?,
            set(&dr_gbase, Expr::zero(acc_aw))?,
            set(&dr_tbase, Expr::zero(acc_aw))?,
            set(&dr_grem, min_c(&cmd_m.e(), mb)?)?,
            set(&dr_crem, min_c(&cmd_n.e(), nc)?)?,
            set(&dr_mrem, cmd_m.e())?,
            set(&dr_nrem, cmd_n.e())?,
        ];
        m.clocked(
            &clk,
            vec![rst_or(
                &rst_e,
                vec![set(&dr_left, Expr::bool(false))?],
                vec![Stmt::if_else(start_cmd.e(), init, run)?],
            )?],
        )?;
    }
    // Accumulator bank state: busy from the block's first tile start until its drain's last
    // read; ready from the block's last write until then.
    {
        let mut flags = vec![];
        for b in 0..2usize {
            let sel = |x: &Expr| if b == 0 { x.not() } else { x.clone() };
            let busy_set = claim.e().and(&sel(&is_acb.e()))?;
            let rdy_set = f_v(last_stage)?
                .and(&f_last(last_stage)?)?
                .and(&sel(&f_bank(last_stage)?))?;
            let clr = dr_blk_done.e().and(&sel(&dr_bank.e()))?;
            flags.push(set(
                &acc_busy[b],
                acc_busy[b].e().or(&busy_set)?.and(&clr.not())?,
            )?);
            flags.push(set(
                &acc_ready[b],
                acc_ready[b].e().or(&rdy_set)?.and(&clr.not())?,
            )?);
        }
        let clear_all: Vec<Stmt> = acc_busy
            .iter()
            .chain(acc_ready.iter())
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

    // Per column: two banks, each one simple-dual-port block RAM. The drain has the read port
    // of the bank it drains; the other bank's read port serves the read-modify-write.
    let dr_bank_d = m.reg("dr_bank_d", 1)?;
    m.clocked(&clk, vec![set(&dr_bank_d, dr_bank.e())?])?;
    let wo = r.tout.width();
    let mut rq_lanes = Vec::new();
    for j in 0..cc {
        let rs = &stages[j as usize];
        let ws = &stages[(j + 1) as usize];
        let mut rdata = Vec::new();
        let w_first = f_first(ws)?;
        let w_bank = f_bank(ws)?;
        // rdata of the bank being written (registered read one period earlier).
        let sum_name = format!("acc{j}_sum");
        let mut banks = Vec::new();
        for b in 0..2u32 {
            let bsel = |x: &Expr| if b == 0 { x.not() } else { x.clone() };
            let dr_here = dr_go.e().and(&bsel(&dr_bank.e()))?;
            let raddr = Expr::mux(&dr_here, &dr_addr.e(), &f_addr(rs)?)?;
            let we = f_v(ws)?.and(&bsel(&w_bank))?;
            banks.push((raddr, we));
        }
        // The write data needs both banks' read data, so declare it first.
        let sum = m.wire(&sum_name, r.wacc)?;
        for (b, (raddr, we)) in banks.into_iter().enumerate() {
            rdata.push(bram(
                &mut m,
                &clk,
                &format!("acc{j}_b{b}"),
                r.wacc,
                r.ws_acc_depth,
                &we,
                &f_addr(ws)?,
                &sum.e(),
                &raddr,
            )?);
        }
        let prev = Expr::mux(&w_bank, &rdata[1].e(), &rdata[0].e())?;
        let prev = Expr::mux(&w_first, &Expr::zero(r.wacc), &prev)?;
        m.assign_sig(&sum, prev.add(&p_v[j as usize].as_unsigned())?)?;
        // Drain path: the drained bank's read data, ReLU, requantize, register.
        let dsel = Expr::mux(&dr_bank_d.e(), &rdata[1].e(), &rdata[0].e())?.as_signed();
        let x = if p.relu {
            let neg = m.wire_from(&format!("dr{j}_raw"), dsel.clone())?;
            Expr::mux(
                &neg.bit(r.wacc - 1)?,
                &Expr::zero(r.wacc).as_signed(),
                &neg.e(),
            )?
        } else {
            dsel
        };
        let xs = m.wire_from(&format!("rq{j}_in"), x)?;
        let q = emit_requantize(&mut m, &format!("rq{j}"), &xs, &r.tacc, &r.tout)
            .map_err(|e| HdlError::Misuse(e.to_string()))?
            .e()
            .as_unsigned();
        let rq = m.reg(&format!("rq{j}_r"), wo)?;
        m.clocked(&clk, vec![set(&rq, q)?])?;
        rq_lanes.push(rq);
    }

    // ---- drain tags reach the FIFO with the requantized row, two periods after the read ----
    let tag_in = Expr::concat(&[dr_go.e(), dr_final.e(), dr_cv.e()])?;
    let tag = delay(&mut m, &clk, Some(&rst), "dr_tag", &tag_in, 2)?;
    let tag = m.wire_from("dr_tag_out", tag)?;
    let push = m.wire_from("row_push", tag.bit(lane_w + 1)?)?;
    let row_last = m.wire_from("row_last", tag.bit(lane_w)?)?;
    let row_cv = m.wire_from("row_cv", tag.slice(lane_w - 1, 0)?)?;
    let mut masked = Vec::new();
    for (j, lane) in rq_lanes.iter().enumerate() {
        let keep = gt_c(&row_cv.e(), j as u64)?;
        masked.push(Expr::mux(&keep, &lane.e(), &Expr::zero(wo))?);
    }
    masked.reverse();
    let row_data = Expr::concat(&masked)?;

    // ---- output FIFO (LUT RAM, asynchronous read) and serializer ----
    let pop = m.wire("out_pop", 1)?;
    let last_xfer = output_fifo(
        &mut m,
        r,
        &OutputPorts {
            clk: &clk,
            rst: &rst_e,
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
            pop: &pop,
        },
        fifo_aw,
        credit_w,
    )?;
    // Output credits: taken when a drain starts, returned when its row leaves the FIFO.
    let one = |e: Expr| Expr::concat(&[Expr::zero(credit_w - 1), e]);
    m.clocked(
        &clk,
        vec![rst_or(
            &rst_e,
            vec![set(&credits, lit(u64::from(r.out_fifo_depth), credit_w)?)?],
            vec![set(
                &credits,
                credits.e().sub(&one(dr_go.e())?)?.add(&one(pop.e())?)?,
            )?],
        )?],
    )?;

    // ---- command / status ----
    m.clocked(
        &clk,
        vec![rst_or(
            &rst_e,
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
