//! The three walkers of the weight-stationary loop nest: the loader (per K-slice, the weight
//! rows of every tile of the chunk, then the A rows), the issuer (one A row per cycle; a tile
//! starts when its weights are in the chains) and the weight feeder (R weight rows per tile
//! into the shadow chains, last row first).

use accelforge_hdl::helpers::{add_wrap, eq_c, fit, gt_c, inc, lit, min_c, sub_c};
use accelforge_hdl::{Expr, ModuleBuilder, Result as HResult, Sig, Stmt, clog2};

use crate::systolic::params::Resolved;
use crate::systolic::rtl::buffers::{LoadPort, bank_flag};
use crate::systolic::rtl::shell::{Command, DIM_BITS, LANE_W, Top};

/// The loader's registers and strobes.
pub(super) struct Loader {
    act: Sig,
    nrem: Sig,
    crem: Sig,
    mrem: Sig,
    krem: Sig,
    /// Row within the current set (weight rows of a tile, or A rows of a block).
    pub i: Sig,
    /// Weight-buffer offset of the tile being loaded.
    pub wbase: Sig,
    /// Weight-buffer bank being loaded.
    pub wb: Sig,
    /// A-buffer bank being loaded.
    pub ab: Sig,
    pub port: LoadPort,
    row_end: Sig,
    i_end: Sig,
    /// An A bank is complete.
    pub set_a: Sig,
    /// A weight bank (the K-slice's tiles of the chunk) is complete.
    pub set_w: Sig,
}

impl Loader {
    pub fn declare(m: &mut ModuleBuilder, t: &Top<'_>) -> HResult<Self> {
        let r = t.r;
        let db = DIM_BITS;
        let (r64, c64, mb) = (u64::from(r.r), u64::from(r.c), u64::from(r.ws_m_block));
        let (_, w_off_w, _) = address_widths(r);
        let act = m.reg("ld_act", 1)?;
        let isa = m.reg("ld_isa", 1)?;
        let [nrem, crem, mrem, krem] = nest_regs(m, "ld")?;
        let i = m.reg("ld_i", db)?;
        let beat = m.reg("ld_beat", clog2(u64::from(r.qa.max(r.qb))).max(1))?;
        let lane = m.reg("ld_lane", LANE_W)?;
        let wbase = m.reg("ld_wbase", w_off_w)?;
        let wb = m.reg("ld_wb", 1)?;
        let ab = m.reg("ld_ab", 1)?;
        let port = LoadPort::declare(m, t, [&act, &isa, &beat, &lane], (&ab, &wb, "w"), None)?;
        let ld_kv = m.wire_from("ld_kv", min_c(&krem.e(), r64)?)?;
        let ld_cv = m.wire_from("ld_cv", min_c(&crem.e(), c64)?)?;
        let ld_mv = m.wire_from("ld_mv", min_c(&mrem.e(), mb)?)?;
        let row_end = port.row_end(m, &Expr::mux(&isa.e(), &ld_kv.e(), &ld_cv.e())?)?;
        let ld_rows = Expr::mux(&isa.e(), &ld_mv.e(), &ld_kv.e())?;
        let i_end = m.wire_from("ld_i_end", inc(&i)?.eq(&ld_rows)?)?;
        let set_end = m.wire_from(
            "ld_set_end",
            port.fire.e().and(&row_end.e())?.and(&i_end.e())?,
        )?;
        let set_a = m.wire_from("set_a", set_end.e().and(&isa.e())?)?;
        let set_w = m.wire_from(
            "set_w",
            set_end
                .e()
                .and(&isa.e().not())?
                .and(&gt_c(&crem.e(), c64)?.not())?,
        )?;
        Ok(Loader {
            act,
            nrem,
            crem,
            mrem,
            krem,
            i,
            wbase,
            wb,
            ab,
            port,
            row_end,
            i_end,
            set_a,
            set_w,
        })
    }

    /// The end of a set of rows: after a tile's weight rows the next tile (or the A rows),
    /// after the A rows the next K-slice, M block or chunk.
    fn set_done(&self, r: &Resolved, cmd: &Command) -> HResult<(Vec<Stmt>, Vec<Stmt>)> {
        let (r64, c64) = (u64::from(r.r), u64::from(r.c));
        let (nc, mb) = (u64::from(r.p.max_n_chunk), u64::from(r.ws_m_block));
        let isa = &self.port.isa;
        let crem_next = sub_c(&self.crem.e(), c64)?;
        let nrem_next = sub_c(&self.nrem.e(), nc)?;
        let w_tile_done = vec![Stmt::if_else(
            gt_c(&self.crem.e(), c64)?,
            vec![
                Stmt::set(&self.crem, crem_next)?,
                Stmt::set(&self.wbase, add_wrap(&self.wbase.e(), r64)?)?,
            ],
            vec![
                Stmt::set(&self.wb, self.wb.e().not())?,
                Stmt::set(isa, Expr::bool(true))?,
                Stmt::set(&self.wbase, Expr::zero(self.wbase.width()))?,
                Stmt::set(&self.crem, min_c(&self.nrem.e(), nc)?)?,
            ],
        )?];
        let chunk_done = vec![Stmt::if_else(
            gt_c(&self.nrem.e(), nc)?,
            vec![
                Stmt::set(&self.nrem, nrem_next.clone())?,
                Stmt::set(&self.crem, min_c(&nrem_next, nc)?)?,
            ],
            vec![Stmt::set(&self.act, Expr::bool(false))?],
        )?];
        let block_done = vec![Stmt::if_else(
            gt_c(&self.mrem.e(), mb)?,
            vec![Stmt::set(&self.mrem, sub_c(&self.mrem.e(), mb)?)?],
            [vec![Stmt::set(&self.mrem, cmd.m_len.e())?], chunk_done].concat(),
        )?];
        let a_done = vec![
            Stmt::set(&self.ab, self.ab.e().not())?,
            Stmt::set(isa, Expr::bool(false))?,
            Stmt::if_else(
                gt_c(&self.krem.e(), r64)?,
                vec![Stmt::set(&self.krem, sub_c(&self.krem.e(), r64)?)?],
                [vec![Stmt::set(&self.krem, cmd.kk.e())?], block_done].concat(),
            )?,
        ];
        Ok((w_tile_done, a_done))
    }

    pub fn state_machine(&self, m: &mut ModuleBuilder, t: &Top<'_>) -> HResult<()> {
        let Top { r, cmd, .. } = t;
        let db = DIM_BITS;
        let (w_tile_done, a_done) = self.set_done(r, cmd)?;
        let mut row_done = self.port.row_restart()?;
        row_done.push(Stmt::if_else(
            self.i_end.e(),
            vec![
                Stmt::set(&self.i, Expr::zero(db))?,
                Stmt::if_else(self.port.isa.e(), a_done, w_tile_done)?,
            ],
            vec![Stmt::set(&self.i, inc(&self.i)?)?],
        )?);
        let ld_next = vec![self.port.beat_step(&self.row_end, row_done)?];
        let mut ld_init = vec![
            Stmt::set(&self.act, Expr::bool(true))?,
            Stmt::set(&self.port.isa, Expr::bool(false))?,
        ];
        ld_init.extend(nest_init(
            t,
            [&self.nrem, &self.crem, &self.mrem, &self.krem],
        )?);
        ld_init.push(Stmt::set(&self.i, Expr::zero(db))?);
        ld_init.extend(self.port.row_restart()?);
        ld_init.extend([
            Stmt::set(&self.wbase, Expr::zero(self.wbase.width()))?,
            Stmt::set(&self.ab, Expr::bool(false))?,
            Stmt::set(&self.wb, Expr::bool(false))?,
        ]);
        t.fsm(
            m,
            vec![Stmt::set(&self.act, Expr::bool(false))?],
            ld_init,
            ld_next,
        )
    }
}

/// The issuer's registers and strobes; it also owns the weight-chain and accumulator-bank
/// handshake flags it waits on.
pub(super) struct Issuer {
    act: Sig,
    m: Sig,
    /// The loop nest; its bank is the A-buffer bank being read, its base the accumulator
    /// offset of the tile.
    pub nest: LoopNest,
    /// Accumulator bank being written.
    pub acb: Sig,
    /// The shadow chains hold the next tile's weights.
    pub wf_full: Sig,
    /// Accumulator bank b is claimed by a block (until its drain ends).
    pub acc_busy: [Sig; 2],
    /// Accumulator bank b holds a finished block (until its drain ends).
    pub acc_ready: [Sig; 2],
    /// The current row belongs to the block's first K-slice (write, don't add).
    pub first_slice: Sig,
    /// A tile starts this cycle.
    pub start: Sig,
    /// A block's first tile starts: claims its accumulator bank.
    pub claim: Sig,
    /// An A row is read this cycle.
    pub rd: Sig,
    row_last: Sig,
    /// The K-slice's last tile ends (the A bank is free).
    pub slice_end: Sig,
    /// The block's last row is issued.
    pub blk_last: Sig,
    /// Accumulator address of the issued row.
    pub acc_addr: Sig,
    m_cur: Sig,
    /// Read address of the A buffer.
    pub a_raddr: Expr,
    /// Address bits of the A buffer.
    pub a_off_w: u32,
}

impl Issuer {
    pub fn declare(m: &mut ModuleBuilder, t: &Top<'_>, ld: &Loader) -> HResult<Self> {
        let Top { r, ports, cmd } = t;
        let db = DIM_BITS;
        let (r64, c64, mb) = (u64::from(r.r), u64::from(r.c), u64::from(r.ws_m_block));
        let (a_off_w, _, acc_aw) = address_widths(r);
        let act = m.reg("is_act", 1)?;
        let is_m = m.reg("is_m", db)?;
        let left = m.reg("is_left", 1)?;
        let ab = m.reg("is_ab", 1)?;
        let acb = m.reg("is_acb", 1)?;
        let abase = m.reg("is_abase", acc_aw)?;
        let [nrem, crem, mrem, krem] = nest_regs(m, "is")?;
        let wf_full = m.reg("wf_full", 1)?;
        let acc_busy = [m.reg("acc_busy0", 1)?, m.reg("acc_busy1", 1)?];
        let acc_ready = [m.reg("acc_ready0", 1)?, m.reg("acc_ready1", 1)?];
        let first_slice = m.wire_from("is_first_slice", krem.e().eq(&cmd.kk.e())?)?;
        let blk_first = first_slice.e().and(&eq_c(&abase.e(), 0)?)?;
        let acc_free = bank_flag(&acc_busy, &acb)?.not();
        let afull = &ld.port.afull;
        let a_ok = bank_flag(afull, &ab)?;
        let start = m.wire_from(
            "is_start",
            ports
                .busy
                .e()
                .and(&act.e().not())?
                .and(&left.e())?
                .and(&a_ok)?
                .and(&wf_full.e())?
                .and(&blk_first.not().or(&acc_free)?)?,
        )?;
        let claim = m.wire_from("acc_claim", start.e().and(&blk_first)?)?;
        let rd = m.wire_from("is_rd", start.e().or(&act.e())?)?;
        let m_cur = m.wire_from("is_m_cur", Expr::mux(&act.e(), &is_m.e(), &Expr::zero(db))?)?;
        let is_mv = min_c(&mrem.e(), mb)?;
        let row_last = m.wire_from("is_row_last", inc(&m_cur)?.eq(&is_mv)?)?;
        let tile_end = m.wire_from("is_tile_end", rd.e().and(&row_last.e())?)?;
        let slice_end = m.wire_from(
            "is_slice_end",
            tile_end.e().and(&gt_c(&crem.e(), c64)?.not())?,
        )?;
        let blk_last = m.wire_from(
            "is_blk_last",
            slice_end.e().and(&gt_c(&krem.e(), r64)?.not())?,
        )?;
        let a_raddr = Expr::concat(&[ab.e(), fit(m, "is_m_lo", &m_cur.e(), a_off_w)?])?;
        let m_acc = fit(m, "is_m_acc", &m_cur.e(), acc_aw)?;
        let acc_addr = m.wire_from("is_acc_addr", abase.e().add(&m_acc)?)?;
        Ok(Issuer {
            act,
            m: is_m,
            nest: LoopNest {
                nrem,
                crem,
                mrem,
                krem,
                left,
                base: abase,
                base_step: u64::from(r.ws_m_block),
                bank: ab,
            },
            acb,
            wf_full,
            acc_busy,
            acc_ready,
            first_slice,
            start,
            claim,
            rd,
            row_last,
            slice_end,
            blk_last,
            acc_addr,
            m_cur,
            a_raddr,
            a_off_w,
        })
    }

    pub fn state_machine(&self, m: &mut ModuleBuilder, t: &Top<'_>) -> HResult<()> {
        let db = DIM_BITS;
        let n = &self.nest;
        let tile_done = n.tile_done(t, vec![Stmt::set(&self.acb, self.acb.e().not())?])?;
        let run = vec![row_step(
            (&self.rd, &self.row_last),
            (&self.act, &self.m, &self.m_cur),
            tile_done,
        )?];
        let init = vec![
            Stmt::set(&self.act, Expr::bool(false))?,
            Stmt::set(&self.m, Expr::zero(db))?,
            Stmt::set(&n.left, Expr::bool(true))?,
            Stmt::set(&n.bank, Expr::bool(false))?,
            Stmt::set(&self.acb, Expr::bool(false))?,
            Stmt::set(&n.base, Expr::zero(n.base.width()))?,
        ];
        t.fsm(
            m,
            vec![
                Stmt::set(&self.act, Expr::bool(false))?,
                Stmt::set(&n.left, Expr::bool(false))?,
            ],
            [init, n.init(t)?].concat(),
            run,
        )
    }
}

/// The weight feeder's registers and strobes.
pub(super) struct Feeder {
    ld: Sig,
    cnt: Sig,
    hold: Sig,
    /// The loop nest; its bank is the weight-buffer bank being read, its base the offset of
    /// the tile being read.
    pub nest: LoopNest,
    /// A weight row is read this cycle.
    pub rd: Sig,
    c: Sig,
    last: Sig,
    /// The row read is inside K (else it loads as zeros).
    pub keep: Expr,
    /// The weight bank's last row is read.
    pub clr_w: Sig,
    /// Read address of the weight buffer.
    pub raddr: Expr,
}

impl Feeder {
    pub fn declare(m: &mut ModuleBuilder, t: &Top<'_>, ld: &Loader, is: &Issuer) -> HResult<Self> {
        let Top { r, ports, .. } = t;
        let db = DIM_BITS;
        let (r64, c64) = (u64::from(r.r), u64::from(r.c));
        let (_, w_off_w, _) = address_widths(r);
        let wf_ld = m.reg("wf_ld", 1)?;
        let cnt = m.reg("wf_cnt", db)?;
        let hold = m.reg("wf_hold", db)?;
        let left = m.reg("wf_left", 1)?;
        let wb = m.reg("wf_wb", 1)?;
        let tbase = m.reg("wf_tbase", w_off_w)?;
        let [nrem, crem, mrem, krem] = nest_regs(m, "wf")?;
        let wfull = &ld.port.bfull;
        let w_ok = bank_flag(wfull, &wb)?;
        let go = m.wire_from(
            "wf_go",
            ports
                .busy
                .e()
                .and(&left.e())?
                .and(&wf_ld.e().not())?
                .and(&is.wf_full.e().not())?
                .and(&eq_c(&hold.e(), 0)?)?
                .and(&w_ok)?,
        )?;
        let rd = m.wire_from("wf_rd", go.e().or(&wf_ld.e())?)?;
        let c = m.wire_from("wf_c", Expr::mux(&wf_ld.e(), &cnt.e(), &Expr::zero(db))?)?;
        let ridx = m.wire_from("wf_row", lit(r64 - 1, db)?.sub(&c.e())?)?;
        let keep = ridx.e().lt(&min_c(&krem.e(), r64)?)?;
        let last = m.wire_from("wf_last", rd.e().and(&eq_c(&c.e(), r64 - 1)?)?)?;
        let clr_w = m.wire_from("clr_w", last.e().and(&gt_c(&crem.e(), c64)?.not())?)?;
        let raddr = Expr::concat(&[
            wb.e(),
            tbase.e().add(&fit(m, "wf_row_lo", &ridx.e(), w_off_w)?)?,
        ])?;
        Ok(Feeder {
            ld: wf_ld,
            cnt,
            hold,
            nest: LoopNest {
                nrem,
                crem,
                mrem,
                krem,
                left,
                base: tbase,
                base_step: r64,
                bank: wb,
            },
            rd,
            c,
            last,
            keep,
            clr_w,
            raddr,
        })
    }

    pub fn state_machine(&self, m: &mut ModuleBuilder, t: &Top<'_>, is: &Issuer) -> HResult<()> {
        let r = t.r;
        let db = DIM_BITS;
        // The next tile's weights load from `max(R−1, 1)` periods after a tile started.
        let hold_after = u64::from(r.r.saturating_sub(2));
        let n = &self.nest;
        let tile_done = n.tile_done(t, Vec::new())?;
        let wf_full = &is.wf_full;
        let run = vec![
            Stmt::if_else(
                is.start.e(),
                vec![
                    Stmt::set(wf_full, Expr::bool(false))?,
                    Stmt::set(&self.hold, lit(hold_after, db)?)?,
                ],
                vec![Stmt::if_(
                    eq_c(&self.hold.e(), 0)?.not(),
                    vec![Stmt::set(&self.hold, sub_c(&self.hold.e(), 1)?)?],
                )?],
            )?,
            row_step(
                (&self.rd, &self.last),
                (&self.ld, &self.cnt, &self.c),
                [vec![Stmt::set(wf_full, Expr::bool(true))?], tile_done].concat(),
            )?,
        ];
        let init = vec![
            Stmt::set(&self.ld, Expr::bool(false))?,
            Stmt::set(&self.cnt, Expr::zero(db))?,
            Stmt::set(wf_full, Expr::bool(false))?,
            Stmt::set(&self.hold, Expr::zero(db))?,
            Stmt::set(&n.left, Expr::bool(true))?,
            Stmt::set(&n.bank, Expr::bool(false))?,
            Stmt::set(&n.base, Expr::zero(n.base.width()))?,
        ];
        let init = [init, n.init(t)?].concat();
        t.fsm(
            m,
            vec![
                Stmt::set(&self.ld, Expr::bool(false))?,
                Stmt::set(wf_full, Expr::bool(false))?,
                Stmt::set(&n.left, Expr::bool(false))?,
            ],
            init,
            run,
        )
    }
}

/// A walker's step through the rows of a tile: on a read (`rd`), the last row (`last`) ends the
/// tile (`active` and the counter cleared, then `on_last`), any other advances the counter
/// from `cur` (the row read) and keeps the walker active.
fn row_step(
    (rd, last): (&Sig, &Sig),
    (active, cnt, cur): (&Sig, &Sig, &Sig),
    on_last: Vec<Stmt>,
) -> HResult<Stmt> {
    let done = vec![
        Stmt::set(active, Expr::bool(false))?,
        Stmt::set(cnt, Expr::zero(cnt.width()))?,
    ];
    Stmt::if_(
        rd.e(),
        vec![Stmt::if_else(
            last.e(),
            [done, on_last].concat(),
            vec![
                Stmt::set(active, Expr::bool(true))?,
                Stmt::set(cnt, inc(cur)?)?,
            ],
        )?],
    )
}

/// A walker's loop-nest counters `{prefix}_nrem` (columns N left), `_crem` (columns left in
/// the chunk), `_mrem` (rows M left), `_krem` (K left).
fn nest_regs(m: &mut ModuleBuilder, prefix: &str) -> HResult<[Sig; 4]> {
    Ok([
        m.reg(&format!("{prefix}_nrem"), DIM_BITS)?,
        m.reg(&format!("{prefix}_crem"), DIM_BITS)?,
        m.reg(&format!("{prefix}_mrem"), DIM_BITS)?,
        m.reg(&format!("{prefix}_krem"), DIM_BITS)?,
    ])
}

/// A new command's loop-nest counters: remaining columns N, columns of the first chunk, rows M,
/// K.
fn nest_init(t: &Top<'_>, [nrem, crem, mrem, krem]: [&Sig; 4]) -> HResult<Vec<Stmt>> {
    let cmd_n = t.ports.cmd_n.e();
    Ok(vec![
        Stmt::set(nrem, cmd_n.clone())?,
        Stmt::set(crem, min_c(&cmd_n, u64::from(t.r.p.max_n_chunk))?)?,
        Stmt::set(mrem, t.ports.cmd_m.e())?,
        Stmt::set(krem, t.ports.cmd_k.e())?,
    ])
}

/// The counters of the WS loop nest (B chunks, M blocks, K-slices, column tiles) that the
/// issuer and the weight feeder each step through on their own.
pub(super) struct LoopNest {
    nrem: Sig,
    crem: Sig,
    mrem: Sig,
    krem: Sig,
    /// Cleared after the last chunk.
    left: Sig,
    /// Buffer offset of the current tile, advanced by `base_step` per tile.
    pub base: Sig,
    base_step: u64,
    /// Buffer bank, toggled per K-slice.
    pub bank: Sig,
}

impl LoopNest {
    /// The counters' values when a command starts.
    fn init(&self, t: &Top<'_>) -> HResult<Vec<Stmt>> {
        nest_init(t, [&self.nrem, &self.crem, &self.mrem, &self.krem])
    }

    /// The updates when a tile ends: next tile, else next K-slice, else (after
    /// `on_block_done`) next M block, else next chunk, else done.
    fn tile_done(&self, t: &Top<'_>, on_block_done: Vec<Stmt>) -> HResult<Vec<Stmt>> {
        let Top { r, cmd, .. } = t;
        let chunk = u64::from(r.p.max_n_chunk);
        let block = u64::from(r.ws_m_block);
        let (rows, cols) = (u64::from(r.r), u64::from(r.c));
        let (nrem, crem, mrem, krem) = (&self.nrem, &self.crem, &self.mrem, &self.krem);
        let nrem_next = sub_c(&nrem.e(), chunk)?;
        let chunk_done = vec![Stmt::if_else(
            gt_c(&nrem.e(), chunk)?,
            vec![
                Stmt::set(nrem, nrem_next.clone())?,
                Stmt::set(crem, min_c(&nrem_next, chunk)?)?,
            ],
            vec![Stmt::set(&self.left, Expr::bool(false))?],
        )?];
        let mut block_done = on_block_done;
        block_done.push(Stmt::if_else(
            gt_c(&mrem.e(), block)?,
            vec![Stmt::set(mrem, sub_c(&mrem.e(), block)?)?],
            [vec![Stmt::set(mrem, cmd.m_len.e())?], chunk_done].concat(),
        )?);
        let base = &self.base;
        Ok(vec![Stmt::if_else(
            gt_c(&crem.e(), cols)?,
            vec![
                Stmt::set(crem, sub_c(&crem.e(), cols)?)?,
                Stmt::set(base, add_wrap(&base.e(), self.base_step)?)?,
            ],
            vec![
                Stmt::set(base, Expr::zero(base.width()))?,
                Stmt::set(&self.bank, self.bank.e().not())?,
                Stmt::set(crem, min_c(&nrem.e(), chunk)?)?,
                Stmt::if_else(
                    gt_c(&krem.e(), rows)?,
                    vec![Stmt::set(krem, sub_c(&krem.e(), rows)?)?],
                    [vec![Stmt::set(krem, cmd.kk.e())?], block_done].concat(),
                )?,
            ],
        )?])
    }
}

/// Address bits of the A buffer, the W buffer and the accumulator buffer.
pub(super) fn address_widths(r: &Resolved) -> (u32, u32, u32) {
    (
        clog2(u64::from(r.ws_a_depth)),
        clog2(u64::from(r.ws_w_depth)),
        clog2(u64::from(r.ws_acc_depth)).max(1),
    )
}
