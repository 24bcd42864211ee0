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
//! The loader fills buffer banks in stream order (see [`crate::systolic::model`]);
//! the issuer runs one tile of K cycles whenever its A and B banks are full, the output FIFO has
//! room for the rows the tile's start will retire, and at least `max(K, 2R−1)` cycles have
//! passed since the previous tile started. The PE array itself never stalls: idle cycles feed
//! zeros.

use accelforge_hdl::helpers::{bit_to, delay, eq_c, fit, gt_c, inc, lit, min_c, sub_c};
use accelforge_hdl::{Expr, Module, ModuleBuilder, Result as HResult, Sig, Stmt, clog2};

use super::buffers::{BankFlags, LoadPort, bank_flag, bank_flags};
use super::drain::{RowTags, fifo_widths, output_fifo, requantize};
use super::feed::{a_row_feed, b_column_lane, b_word, pe_instance};
use super::packed::{Pes, os_grid, packed_lanes};
use super::requant::{TableLoad, blk_bits};
use super::shell::{Command, DIM_BITS, LANE_W, Top, packed_inputs};
use crate::systolic::params::{PeKind, Resolved};
use crate::systolic::pe::b_lane_width;
use crate::systolic::requant::{PerChannel, per_channel};

/// The output-stationary top: ports and command, loader, issuer, operand buffers, the two
/// state machines, operand feed, PE grid, requantizers, row sequencer, output FIFO, status.
pub(super) fn top_module(r: &Resolved, name: &str, pe: &Pes) -> HResult<Module> {
    let mut m = ModuleBuilder::new(name)?;
    let (t, extra) = Top::declare(&mut m, r, ("Output-stationary", ""), &["period"])?;
    let per_eff = &extra[0];
    let min_period = lit(u64::from(r.min_period), DIM_BITS)?;
    let cmd_k = t.ports.cmd_k.e();
    let cmd_period = Expr::mux(&cmd_k.gt(&min_period)?, &cmd_k, &min_period)?;
    let pc = per_channel(r);
    let tl = match &pc {
        Some(pc) => Some(TableLoad::declare(&mut m, &t, pc)?),
        None => None,
    };
    let ld = Loader::declare(&mut m, &t, tl.as_ref().map(|tl| &tl.act))?;
    let is = Issuer::declare(&mut m, &t, (&ld, per_eff), pc.as_ref())?;
    let (a_in, b_in) = packed_inputs(&mut m, &t)?;
    let a_rdata = ld.port.buffer(
        &mut m,
        &t,
        ("a_buf", r.qa, 2 * r.a_bank_depth, true),
        (&ld.a_waddr, &a_in),
        &is.a_raddr,
    )?;
    let b_rdata = ld.port.buffer(
        &mut m,
        &t,
        ("b_buf", r.qb, 2 * r.b_bank_depth, false),
        (&ld.b_waddr, &b_in),
        &is.b_raddr,
    )?;
    ld.state_machine(&mut m, &t)?;
    let pop = is.state_machine(&mut m, &t, &ld)?;
    let lanes = operand_feed(&mut m, &t, &is, (&a_rdata, &b_rdata))?;
    let out_top = match pe {
        Pes::One(pe) => pe_grid(&mut m, &t, pe, lanes)?,
        Pes::Packed(_) => os_grid(&mut m, &t, pe, lanes)?,
    };
    let row_lanes = requantize_columns(&mut m, &t, &out_top)?;
    let row = row_sequencer(&mut m, &t, &is)?;
    let mut on_accept = vec![Stmt::set(per_eff, cmd_period)?];
    let (row_lanes, tl_done) = match (&pc, &tl, &t.ports.rq, &row.blk) {
        (Some(pc), Some(tl), Some(rq), Some(blk)) => {
            on_accept.extend(tl.on_accept(&t, rq)?);
            let (tables, done) = tl.logic(&mut m, &t, pc)?;
            let lanes = row_lanes
                .iter()
                .zip(&tables)
                .enumerate()
                .map(|(j, (acc, tbl))| tl.lane(&mut m, &t, pc, (j as u32, acc, tbl, &blk.e())))
                .collect::<HResult<Vec<_>>>()?;
            (lanes, Some(done))
        }
        _ => (row_lanes, None),
    };
    let last_xfer = output_fifo(&mut m, &t, &row, &row_lanes, &pop)?;
    let last_xfer = match tl_done {
        Some(d) => last_xfer.or(&d)?,
        None => last_xfer,
    };
    t.status(&mut m, last_xfer, on_accept)?;
    Ok(m.finish())
}

/// The loader: walks the stream order (per B chunk: its B rows, tile by tile; then per R-row
/// block of A: its K rows), filling one bank of the A or B buffer at a time.
struct Loader {
    act: Sig,
    nrem: Sig,
    crem: Sig,
    mrem: Sig,
    k: Sig,
    valid: Sig,
    boff: Sig,
    ab: Sig,
    bb: Sig,
    port: LoadPort,
    row_end: Sig,
    k_end: Sig,
    set_a: Sig,
    set_b: Sig,
    a_waddr: Expr,
    b_waddr: Expr,
}

impl Loader {
    fn declare(m: &mut ModuleBuilder, t: &Top<'_>, tl_act: Option<&Sig>) -> HResult<Self> {
        let Top { r, cmd, .. } = t;
        let db = DIM_BITS;
        let b_off_w = clog2(u64::from(r.b_bank_depth)).max(1);
        let a_off_w = clog2(u64::from(r.a_bank_depth)).max(1);
        let act = m.reg("ld_act", 1)?;
        let isa = m.reg("ld_isa", 1)?;
        let nrem = m.reg("ld_nrem", db)?;
        let crem = m.reg("ld_crem", db)?;
        let mrem = m.reg("ld_mrem", db)?;
        let k = m.reg("ld_k", db)?;
        let beat = m.reg("ld_beat", clog2(u64::from(r.qa.max(r.qb))).max(1))?;
        let lane = m.reg("ld_lane", LANE_W)?;
        let valid = m.reg("ld_valid", LANE_W)?;
        let boff = m.reg("ld_boff", b_off_w)?;
        let ab = m.reg("ld_ab", 1)?;
        let bb = m.reg("ld_bb", 1)?;
        let port = LoadPort::declare(m, t, [&act, &isa, &beat, &lane], (&ab, &bb, "b"), tl_act)?;
        let row_end = port.row_end(m, &valid.e())?;
        let k_end = m.wire_from("ld_k_end", inc(&k)?.eq(&cmd.kk.e())?)?;
        let blk_end = m.wire_from(
            "ld_blk_end",
            port.fire.e().and(&row_end.e())?.and(&k_end.e())?,
        )?;
        // Bank-full set strobes (the issuer clears them).
        let set_a = m.wire_from("set_a", blk_end.e().and(&isa.e())?)?;
        let set_b_chunk = blk_end
            .e()
            .and(&isa.e().not())?
            .and(&crem.e().gt(&lit(u64::from(r.c), db)?)?.not())?;
        let set_b = m.wire_from("set_b", set_b_chunk)?;
        let a_waddr = Expr::concat(&[ab.e(), fit(m, "ld_k_lo", &k.e(), a_off_w)?])?;
        let b_waddr = Expr::concat(&[bb.e(), boff.e()])?;
        Ok(Loader {
            act,
            nrem,
            crem,
            mrem,
            k,
            valid,
            boff,
            ab,
            bb,
            port,
            row_end,
            k_end,
            set_a,
            set_b,
            a_waddr,
            b_waddr,
        })
    }

    /// The statements at the end of a row of K: next A block / B tile / B chunk.
    fn k_done(&self, r: &Resolved, m_len: &Sig) -> HResult<Vec<Stmt>> {
        let (r64, c64, nc) = (u64::from(r.r), u64::from(r.c), u64::from(r.p.max_n_chunk));
        let b_off_w = self.boff.width();
        let isa = &self.port.isa;
        // End of a B row of the last tile of the chunk / of an A block.
        let b_chunk_done = vec![
            Stmt::set(&self.bb, self.bb.e().not())?,
            Stmt::set(isa, Expr::bool(true))?,
            Stmt::set(&self.mrem, m_len.e())?,
            Stmt::set(&self.valid, min_c(&m_len.e(), r64)?)?,
            Stmt::set(&self.boff, Expr::zero(b_off_w))?,
        ];
        let crem_next = sub_c(&self.crem.e(), c64)?;
        let b_tile_done = vec![
            Stmt::set(&self.crem, crem_next.clone())?,
            Stmt::set(&self.valid, min_c(&crem_next, c64)?)?,
            Stmt::set(&self.boff, inc(&self.boff)?)?,
        ];
        let mrem_next = sub_c(&self.mrem.e(), r64)?;
        let nrem_next = sub_c(&self.nrem.e(), nc)?;
        let a_pass_done = vec![Stmt::if_else(
            gt_c(&self.nrem.e(), nc)?,
            vec![
                Stmt::set(&self.nrem, nrem_next.clone())?,
                Stmt::set(isa, Expr::bool(false))?,
                Stmt::set(&self.boff, Expr::zero(b_off_w))?,
                Stmt::set(&self.crem, min_c(&nrem_next, nc)?)?,
                Stmt::set(&self.valid, min_c(&nrem_next, c64)?)?,
            ],
            vec![Stmt::set(&self.act, Expr::bool(false))?],
        )?];
        let a_blk_done = vec![
            Stmt::set(&self.ab, self.ab.e().not())?,
            Stmt::if_else(
                gt_c(&self.mrem.e(), r64)?,
                vec![
                    Stmt::set(&self.mrem, mrem_next.clone())?,
                    Stmt::set(&self.valid, min_c(&mrem_next, r64)?)?,
                ],
                a_pass_done,
            )?,
        ];
        Ok(vec![
            Stmt::set(&self.k, Expr::zero(DIM_BITS))?,
            Stmt::if_else(
                isa.e(),
                a_blk_done,
                vec![Stmt::if_else(
                    gt_c(&self.crem.e(), c64)?,
                    b_tile_done,
                    b_chunk_done,
                )?],
            )?,
        ])
    }

    fn state_machine(&self, m: &mut ModuleBuilder, t: &Top<'_>) -> HResult<()> {
        let Top { r, ports, cmd } = t;
        let (c64, nc) = (u64::from(r.c), u64::from(r.p.max_n_chunk));
        let mut row_done = self.port.row_restart()?;
        row_done.push(Stmt::if_else(
            self.k_end.e(),
            self.k_done(r, &cmd.m_len)?,
            vec![
                Stmt::set(&self.k, inc(&self.k)?)?,
                Stmt::set(&self.boff, inc(&self.boff)?)?,
            ],
        )?);
        let ld_next = vec![self.port.beat_step(&self.row_end, row_done)?];
        let (cmd_n, cmd_m) = (ports.cmd_n.e(), ports.cmd_m.e());
        let mut ld_init = vec![
            Stmt::set(&self.act, Expr::bool(true))?,
            Stmt::set(&self.port.isa, Expr::bool(false))?,
            Stmt::set(&self.nrem, cmd_n.clone())?,
            Stmt::set(&self.crem, min_c(&cmd_n, nc)?)?,
            Stmt::set(&self.valid, min_c(&cmd_n, c64)?)?,
            Stmt::set(&self.mrem, cmd_m)?,
            Stmt::set(&self.k, Expr::zero(DIM_BITS))?,
        ];
        ld_init.extend(self.port.row_restart()?);
        ld_init.extend([
            Stmt::set(&self.boff, Expr::zero(self.boff.width()))?,
            Stmt::set(&self.ab, Expr::bool(false))?,
            Stmt::set(&self.bb, Expr::bool(false))?,
        ]);
        t.fsm(
            m,
            vec![Stmt::set(&self.act, Expr::bool(false))?],
            ld_init,
            ld_next,
        )
    }
}

/// The issuer: starts a tile of K cycles when its A and B banks are full, the output FIFO has
/// room for the rows the tile's start retires and the period has passed; after the last tile a
/// flush pushes the last results out of the array.
struct Issuer {
    act: Sig,
    k: Sig,
    nrem: Sig,
    crem: Sig,
    mrem: Sig,
    boff: Sig,
    ab: Sig,
    bb: Sig,
    left: Sig,
    flushed: Sig,
    per: Sig,
    cap_v: Sig,
    cap_rv: Sig,
    cap_cv: Sig,
    credits: Sig,
    cap_rv_c: Expr,
    start: Sig,
    flush: Sig,
    flag: Sig,
    rd: Sig,
    tile_end: Sig,
    blk_end: Sig,
    chunk_end: Sig,
    a_raddr: Expr,
    b_raddr: Expr,
    /// Per-channel mode: the running tile's column block, the chunk's first column block,
    /// and the captured block of the tile whose results retire next.
    blk: Option<[Sig; 3]>,
}

impl Issuer {
    fn declare(
        m: &mut ModuleBuilder,
        t: &Top<'_>,
        (ld, per_eff): (&Loader, &Sig),
        pc: Option<&PerChannel>,
    ) -> HResult<Self> {
        let Top { r, ports, cmd } = t;
        let db = DIM_BITS;
        let (_, credit_w) = fifo_widths(r);
        let b_off_w = ld.boff.width();
        let act = m.reg("is_act", 1)?;
        let k = m.reg("is_k", db)?;
        let nrem = m.reg("is_nrem", db)?;
        let crem = m.reg("is_crem", db)?;
        let mrem = m.reg("is_mrem", db)?;
        let boff = m.reg("is_boff", b_off_w)?;
        let ab = m.reg("is_ab", 1)?;
        let bb = m.reg("is_bb", 1)?;
        let left = m.reg("is_left", 1)?;
        let flushed = m.reg("is_flushed", 1)?;
        let per = m.reg("since_start", db)?;
        let cap_v = m.reg("cap_v", 1)?;
        let cap_rv = m.reg("cap_rv", LANE_W)?;
        let cap_cv = m.reg("cap_cv", LANE_W)?;
        let credits = m.reg("credits", credit_w)?;
        let (afull, bfull) = (&ld.port.afull, &ld.port.bfull);
        let a_ok = bank_flag(afull, &ab)?;
        let b_ok = bank_flag(bfull, &bb)?;
        let per_ok = per.e().ge(&per_eff.e())?;
        let cap_rv_c = fit(m, "cap_rv_c", &cap_rv.e(), credit_w)?;
        let cred_ok = cap_v.e().not().or(&credits.e().ge(&cap_rv_c)?)?;
        let idle_ok = ports
            .busy
            .e()
            .and(&act.e().not())?
            .and(&per_ok)?
            .and(&cred_ok)?;
        let start = m.wire_from("is_start", idle_ok.and(&left.e())?.and(&a_ok)?.and(&b_ok)?)?;
        let flush = m.wire_from(
            "is_flush",
            idle_ok
                .and(&left.e().not())?
                .and(&flushed.e().not())?
                .and(&cap_v.e())?,
        )?;
        let flag = m.wire_from("is_flag", start.e().or(&flush.e())?)?;
        let rd = m.wire_from("is_rd", start.e().or(&act.e())?)?;
        let rd_k = m.wire_from("is_rd_k", Expr::mux(&act.e(), &k.e(), &Expr::zero(db))?)?;
        let kk = &cmd.kk;
        let tile_end = m.wire_from(
            "is_tile_end",
            start
                .e()
                .and(&eq_c(&kk.e(), 1)?)?
                .or(&act.e().and(&inc(&k)?.eq(&kk.e())?)?)?,
        )?;
        let chunk_tile_last = crem.e().gt(&lit(u64::from(r.c), db)?)?.not();
        let blk_end = m.wire_from("is_blk_end", tile_end.e().and(&chunk_tile_last)?)?;
        let chunk_end = m.wire_from(
            "is_chunk_end",
            blk_end
                .e()
                .and(&mrem.e().gt(&lit(u64::from(r.r), db)?)?.not())?,
        )?;
        let a_off_w = clog2(u64::from(r.a_bank_depth)).max(1);
        let a_raddr = Expr::concat(&[ab.e(), fit(m, "rd_k_lo", &rd_k.e(), a_off_w)?])?;
        let b_raddr = Expr::concat(&[
            bb.e(),
            boff.e().add(&fit(m, "rd_k_lo_b", &rd_k.e(), b_off_w)?)?,
        ])?;
        let blk = match pc {
            Some(pc) => {
                let w = blk_bits(pc);
                Some([
                    m.reg("is_cblk", w)?,
                    m.reg("is_cbase", w)?,
                    m.reg("cap_blk", w)?,
                ])
            }
            None => None,
        };
        Ok(Issuer {
            blk,
            act,
            k,
            nrem,
            crem,
            mrem,
            boff,
            ab,
            bb,
            left,
            flushed,
            per,
            cap_v,
            cap_rv,
            cap_cv,
            credits,
            cap_rv_c,
            start,
            flush,
            flag,
            rd,
            tile_end,
            blk_end,
            chunk_end,
            a_raddr,
            b_raddr,
        })
    }

    /// The updates when a tile ends: next tile of the chunk, else next A block, else next
    /// chunk, else done.
    fn tile_done(&self, m: &mut ModuleBuilder, r: &Resolved, cmd: &Command) -> HResult<Vec<Stmt>> {
        let (r64, c64, nc) = (u64::from(r.r), u64::from(r.c), u64::from(r.p.max_n_chunk));
        let b_off_w = self.boff.width();
        let crem_next = sub_c(&self.crem.e(), c64)?;
        let mrem_next = sub_c(&self.mrem.e(), r64)?;
        let nrem_next = sub_c(&self.nrem.e(), nc)?;
        let kk_off = fit(m, "k_len_off", &cmd.kk.e(), b_off_w)?;
        let mut chunk_done = vec![
            Stmt::set(&self.bb, self.bb.e().not())?,
            Stmt::set(&self.mrem, cmd.m_len.e())?,
            Stmt::if_else(
                gt_c(&self.nrem.e(), nc)?,
                vec![
                    Stmt::set(&self.nrem, nrem_next.clone())?,
                    Stmt::set(&self.crem, min_c(&nrem_next, nc)?)?,
                ],
                vec![Stmt::set(&self.left, Expr::bool(false))?],
            )?,
        ];
        let mut blk_pre = Vec::new();
        let mut tile_next = Vec::new();
        if let Some([cblk, cbase, _]) = &self.blk {
            // Next tile: next block; next A block: back to the chunk's first block; next
            // chunk: the block after the chunk.
            let next_base = cbase
                .e()
                // Modulo the register width: the sum only overflows after the last chunk,
                // whose next base is never used (e.g. 2 blocks of 2 tiles in a 1-bit block).
                .add(&lit(
                    u64::from(r.tiles_per_chunk) & ((1u64 << cbase.width()) - 1),
                    cbase.width(),
                )?)?;
            tile_next.push(Stmt::set(cblk, inc(cblk)?)?);
            blk_pre.push(Stmt::set(cblk, cbase.e())?);
            chunk_done.push(Stmt::set(cbase, next_base.clone())?);
            chunk_done.push(Stmt::set(cblk, next_base)?);
        }
        let mut blk_done = blk_pre;
        blk_done.extend([
            Stmt::set(&self.ab, self.ab.e().not())?,
            Stmt::set(&self.boff, Expr::zero(b_off_w))?,
            Stmt::if_else(
                gt_c(&self.mrem.e(), r64)?,
                vec![
                    Stmt::set(&self.mrem, mrem_next)?,
                    Stmt::set(&self.crem, min_c(&self.nrem.e(), nc)?)?,
                ],
                chunk_done,
            )?,
        ]);
        let mut tile_more = vec![
            Stmt::set(&self.crem, crem_next)?,
            Stmt::set(&self.boff, self.boff.e().add(&kk_off)?)?,
        ];
        tile_more.extend(tile_next);
        Ok(vec![
            Stmt::set(&self.act, Expr::bool(false))?,
            Stmt::set(&self.k, Expr::zero(DIM_BITS))?,
            Stmt::if_else(gt_c(&self.crem.e(), c64)?, tile_more, blk_done)?,
        ])
    }

    /// One cycle of a running command: credits, period counter, tile start, K step, tile end,
    /// flush.
    fn run(&self, r: &Resolved, pop: &Sig, tile_done: Vec<Stmt>) -> HResult<Vec<Stmt>> {
        let db = DIM_BITS;
        let (r64, c64) = (u64::from(r.r), u64::from(r.c));
        let credit_w = self.credits.width();
        let credit_take = Expr::mux(
            &self.flag.e().and(&self.cap_v.e())?,
            &self.cap_rv_c,
            &Expr::zero(credit_w),
        )?;
        let per = &self.per;
        let per_sat = eq_c(&per.e(), (1u64 << db) - 1)?;
        let mut on_start = vec![
            Stmt::set(&self.cap_v, Expr::bool(true))?,
            Stmt::set(&self.cap_rv, min_c(&self.mrem.e(), r64)?)?,
            Stmt::set(&self.cap_cv, min_c(&self.crem.e(), c64)?)?,
            Stmt::set(&self.act, Expr::bool(true))?,
            Stmt::set(&self.k, lit(1, db)?)?,
        ];
        if let Some([cblk, _, cap_blk]) = &self.blk {
            on_start.push(Stmt::set(cap_blk, cblk.e())?);
        }
        Ok(vec![
            Stmt::set(
                &self.credits,
                self.credits
                    .e()
                    .sub(&credit_take)?
                    .add(&bit_to(pop.e(), credit_w)?)?,
            )?,
            Stmt::set(
                per,
                Expr::mux(
                    &self.flag.e(),
                    &lit(1, db)?,
                    &Expr::mux(&per_sat, &per.e(), &inc(per)?)?,
                )?,
            )?,
            Stmt::if_(self.start.e(), on_start)?,
            Stmt::if_(
                self.act.e().and(&self.tile_end.e().not())?,
                vec![Stmt::set(&self.k, inc(&self.k)?)?],
            )?,
            Stmt::if_(self.tile_end.e(), tile_done)?,
            Stmt::if_(
                self.flush.e(),
                vec![
                    Stmt::set(&self.flushed, Expr::bool(true))?,
                    Stmt::set(&self.cap_v, Expr::bool(false))?,
                ],
            )?,
        ])
    }

    /// The issuer's state machine and the bank-full flags it clears; returns the `out_pop`
    /// wire (a row left the output FIFO: one credit back).
    fn state_machine(&self, m: &mut ModuleBuilder, t: &Top<'_>, ld: &Loader) -> HResult<Sig> {
        let Top { r, ports, cmd } = t;
        let db = DIM_BITS;
        let nc = u64::from(r.p.max_n_chunk);
        let pop = m.wire("out_pop", 1)?;
        let clr_a = m.wire_from("clr_a", self.blk_end.e())?;
        let clr_b = m.wire_from("clr_b", self.chunk_end.e())?;
        let tile_done = self.tile_done(m, r, cmd)?;
        let run = self.run(r, &pop, tile_done)?;
        let credits_full = lit(u64::from(r.out_fifo_depth), self.credits.width())?;
        let (cmd_n, cmd_m) = (ports.cmd_n.e(), ports.cmd_m.e());
        let mut is_init = vec![
            Stmt::set(&self.act, Expr::bool(false))?,
            Stmt::set(&self.k, Expr::zero(db))?,
            Stmt::set(&self.nrem, cmd_n.clone())?,
            Stmt::set(&self.crem, min_c(&cmd_n, nc)?)?,
            Stmt::set(&self.mrem, cmd_m)?,
            Stmt::set(&self.boff, Expr::zero(self.boff.width()))?,
            Stmt::set(&self.ab, Expr::bool(false))?,
            Stmt::set(&self.bb, Expr::bool(false))?,
            Stmt::set(&self.left, Expr::bool(true))?,
            Stmt::set(&self.flushed, Expr::bool(false))?,
            Stmt::set(&self.per, Expr::ones(db))?,
            Stmt::set(&self.cap_v, Expr::bool(false))?,
            Stmt::set(&self.credits, credits_full.clone())?,
        ];
        if let Some([cblk, cbase, _]) = &self.blk {
            is_init.push(Stmt::set(cblk, Expr::zero(cblk.width()))?);
            is_init.push(Stmt::set(cbase, Expr::zero(cbase.width()))?);
        }
        t.fsm(
            m,
            vec![
                Stmt::set(&self.act, Expr::bool(false))?,
                Stmt::set(&self.left, Expr::bool(false))?,
                Stmt::set(&self.cap_v, Expr::bool(false))?,
                Stmt::set(&self.credits, credits_full)?,
            ],
            is_init,
            run,
        )?;
        bank_flags(
            m,
            t,
            [
                BankFlags {
                    full: &ld.port.afull,
                    set: ld.set_a.e(),
                    clr: clr_a.e(),
                    bank_ld: ld.ab.e(),
                    bank_rd: self.ab.e(),
                },
                BankFlags {
                    full: &ld.port.bfull,
                    set: ld.set_b.e(),
                    clr: clr_b.e(),
                    bank_ld: ld.bb.e(),
                    bank_rd: self.bb.e(),
                },
            ],
        )?;
        Ok(pop)
    }
}

/// BRAM outputs into the array: A lanes (and the tile flag) skewed by row, B lanes by column,
/// both zeroed on idle cycles. Returns `(a lanes, flag lanes, b lanes)`.
fn operand_feed(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    is: &Issuer,
    (a_rdata, b_rdata): (&[Sig], &[Sig]),
) -> HResult<(Vec<Expr>, Vec<Expr>, Vec<Expr>)> {
    let Top { r, ports, .. } = t;
    let (clk, rst) = (&ports.clk, &ports.rst);
    let a_vd = m.reg("a_vd", 1)?;
    let flag_d = m.reg("flag_d", 1)?;
    m.clocked(
        clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&a_vd, Expr::bool(false))?,
                Stmt::set(&flag_d, Expr::bool(false))?,
            ],
            vec![
                Stmt::set(&a_vd, is.rd.e())?,
                Stmt::set(&flag_d, is.flag.e())?,
            ],
        )?],
    )?;
    let b_all = b_word(m, r, "b", b_rdata)?;
    let (a_row_in, f_row_in) = a_row_feed(m, r, (clk, rst), a_rdata, &a_vd, &flag_d)?;
    // B lanes are zeroed on idle cycles like the A lanes: then the B word read while idle (a
    // bank word that may never have been written when K is small) cannot turn 0*X into X in
    // 4-state simulators. Costs one AND per bit; cycles are unchanged.
    let b_col_in = if r.p.pe == PeKind::DspPacked {
        packed_lanes(m, r, clk, ("b", &b_all), &a_vd.e())?
    } else {
        (0..r.c)
            .map(|j| b_column_lane(m, r, clk, ("b", &b_all, j), &a_vd.e()))
            .collect::<HResult<Vec<_>>>()?
    };
    Ok((a_row_in, f_row_in, b_col_in))
}

/// The R×C PEs: A and the flag move right, B down, results up the output chain; returns the
/// top row's output-chain wires (one per column).
fn pe_grid(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    pe: &Module,
    (mut a_h, mut f_h, mut b_v): (Vec<Expr>, Vec<Expr>, Vec<Expr>),
) -> HResult<Vec<Sig>> {
    let r = t.r;
    let (rr, cc) = (r.r, r.c);
    let bw = b_lane_width(r);
    // out_wires[i][j] is PE(i,j)'s output-chain register; PE(i,j) reads PE(i+1,j)'s.
    let mut out_wires: Vec<Vec<Sig>> = Vec::new();
    for i in 0..rr {
        out_wires.push(
            (0..cc)
                .map(|j| m.wire_signed(&format!("o_{i}_{j}"), r.wacc))
                .collect::<HResult<_>>()?,
        );
    }
    for i in 0..rr {
        let (iu, mut next_b) = (i as usize, Vec::new());
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
                out_wires[iu + 1][j as usize].e()
            } else {
                Expr::zero(r.wacc).as_signed()
            };
            pe_instance(
                m,
                t,
                pe,
                (i, j),
                &[
                    ("a_in", a_h[iu].clone()),
                    ("b_in", b_v[j as usize].clone()),
                    ("f_in", f_h[iu].clone()),
                    ("out_in", out_in),
                    ("a_out", a_o.e()),
                    ("b_out", b_o.e()),
                    ("f_out", f_o.e()),
                    ("out_out", out_wires[iu][j as usize].e()),
                ],
            )?;
            a_h[iu] = a_o.e();
            f_h[iu] = f_o.e();
            next_b.push(b_o.e());
        }
        b_v = next_b;
    }
    Ok(out_wires.swap_remove(0))
}

/// Each column's result (ReLU first when enabled) requantized at the top of the column, then
/// de-skewed so a row's lanes line up.
fn requantize_columns(m: &mut ModuleBuilder, t: &Top<'_>, out_top: &[Sig]) -> HResult<Vec<Expr>> {
    let Top { r, ports, .. } = t;
    let clk = &ports.clk;
    let mut row_lanes = Vec::new();
    for (j, top) in out_top.iter().enumerate() {
        let j = j as u32;
        let x = if r.p.relu {
            let neg = top.bit(r.wacc - 1)?;
            m.wire_from(
                &format!("relu{j}"),
                Expr::mux(&neg, &Expr::zero(r.wacc).as_signed(), &top.e())?,
            )?
            .e()
        } else {
            top.e()
        };
        let rq = if r.p.requant.is_single() {
            requantize(m, t, j, x)?
        } else {
            // Per-channel: the raw accumulator takes the requantizer register's place; the
            // arithmetic happens at the FIFO push, where the row's column block is known.
            let acc = m.reg_signed(&format!("rq{j}_r"), r.wacc)?;
            m.clocked(clk, vec![Stmt::set(&acc, x)?])?;
            acc
        };
        row_lanes.push(delay(
            m,
            clk,
            None,
            &format!("dsk{j}"),
            &rq.e(),
            r.c - 1 - j,
        )?);
    }
    Ok(row_lanes)
}

/// A retiring tile's rows arrive every other cycle: an event (valid, last, rows, columns)
/// delayed with the results starts a sequencer that pushes one row per two cycles. Returns
/// the FIFO row's tags.
fn row_sequencer(m: &mut ModuleBuilder, t: &Top<'_>, is: &Issuer) -> HResult<RowTags> {
    let Top { r, ports, .. } = t;
    let (clk, rst, lane_w) = (&ports.clk, &ports.rst, LANE_W);
    // Per-channel: the captured column block rides below the other tags.
    let bw = is.blk.as_ref().map_or(0, |b| b[2].width());
    let ev_w = 1 + 1 + 2 * lane_w + bw; // valid, last, rv, cv[, blk]
    let mut ev_parts = vec![
        is.flag.e().and(&is.cap_v.e())?,
        is.flush.e(),
        is.cap_rv.e(),
        is.cap_cv.e(),
    ];
    if let Some([_, _, cap_blk]) = &is.blk {
        ev_parts.push(cap_blk.e());
    }
    let ev_in = Expr::concat(&ev_parts)?;
    let ev = delay(m, clk, Some(rst), "ev", &ev_in, r.c + 2)?;
    let ev = m.wire_from("ev_out", ev)?;
    let ev_v = ev.bit(ev_w - 1)?;
    let ev_last = ev.bit(ev_w - 2)?;
    let ev_rv = ev.slice(2 * lane_w + bw - 1, lane_w + bw)?;
    let ev_cv = ev.slice(lane_w + bw - 1, bw)?;
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
        clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&seq_left, Expr::zero(lane_w))?,
                Stmt::set(&seq_ph, Expr::bool(false))?,
            ],
            vec![Stmt::if_else(
                ev_v.clone(),
                vec![
                    Stmt::set(&seq_left, sub_c(&ev_rv, 1)?)?,
                    Stmt::set(&seq_ph, Expr::bool(false))?,
                    Stmt::set(&seq_cv, ev_cv.clone())?,
                    Stmt::set(&seq_last, ev_last.clone())?,
                ],
                vec![Stmt::if_(
                    seq_busy.clone(),
                    vec![
                        Stmt::set(&seq_ph, seq_ph.e().not())?,
                        Stmt::if_(
                            seq_ph.e(),
                            vec![Stmt::set(&seq_left, sub_c(&seq_left.e(), 1)?)?],
                        )?,
                    ],
                )?],
            )?],
        )?],
    )?;
    let blk = if bw > 0 {
        let ev_blk = ev.slice(bw - 1, 0)?;
        let seq_blk = m.reg("seq_blk", bw)?;
        m.clocked(
            clk,
            vec![Stmt::if_(
                ev_v.clone(),
                vec![Stmt::set(&seq_blk, ev_blk.clone())?],
            )?],
        )?;
        Some(m.wire_from("row_blk", Expr::mux(&ev_v, &ev_blk, &seq_blk.e())?)?)
    } else {
        None
    };
    Ok(RowTags {
        push,
        last: row_last,
        cv: row_cv,
        blk,
    })
}
