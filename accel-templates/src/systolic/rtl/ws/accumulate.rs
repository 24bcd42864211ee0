//! The weight-stationary accumulator buffer: the control chain that carries each issued A row's
//! accumulator address along the columns, the drain that reads a finished bank in the
//! output-stationary order, the banks' busy/ready flags, and per column the two block-RAM banks
//! with their read-modify-write adder and the drain's requantizer.

use accelforge_hdl::helpers::{BramWrite, add_wrap, bram, delay, fit, gt_c, inc, min_c, sub_c};
use accelforge_hdl::{Expr, ModuleBuilder, Result as HResult, Sig, Stmt};

use super::control::{Issuer, address_widths};
use crate::systolic::params::Resolved;
use crate::systolic::rtl::buffers::{bank_flag, bank_is, flag_block, sticky};
use crate::systolic::rtl::drain::{fifo_widths, requantize};
use crate::systolic::rtl::shell::{DIM_BITS, Top};

/// The control word per issued A row: `{valid, first K-slice, block's last row, bank,
/// address}`; stage s of the chain reads column s and writes column s−1.
pub(super) struct Ctl {
    w: u32,
    aw: u32,
}

impl Ctl {
    fn v(&self, s: &Sig) -> HResult<Expr> {
        s.bit(self.w - 1)
    }
    fn first(&self, s: &Sig) -> HResult<Expr> {
        s.bit(self.w - 2)
    }
    fn last(&self, s: &Sig) -> HResult<Expr> {
        s.bit(self.w - 3)
    }
    fn bank(&self, s: &Sig) -> HResult<Expr> {
        s.bit(self.w - 4)
    }
    fn addr(&self, s: &Sig) -> HResult<Expr> {
        s.slice(self.aw - 1, 0)
    }
}

/// The control chain: the word reaches column 0's bottom after R cycles, then steps one column
/// per cycle. Returns the field layout and the C+1 stages (`ctl_s0..ctl_sC`).
pub(super) fn control_chain(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    is: &Issuer,
) -> HResult<(Ctl, Vec<Sig>)> {
    let Top { r, ports, .. } = t;
    let (clk, rst, cc) = (&ports.clk, &ports.rst, r.c);
    let (_, _, acc_aw) = address_widths(r);
    let ctl = Ctl {
        w: 4 + acc_aw,
        aw: acc_aw,
    };
    let ctl_in = Expr::concat(&[
        is.rd.e(),
        is.first_slice.e(),
        is.blk_last.e(),
        is.acb.e(),
        is.acc_addr.e(),
    ])?;
    let mut stages = Vec::new();
    let s0 = delay(m, clk, Some(rst), "ctl", &ctl_in, r.r)?;
    stages.push(m.wire_from("ctl_s0", s0)?);
    for s in 1..=cc {
        let prev = stages[(s - 1) as usize].e();
        let d = delay(m, clk, Some(rst), &format!("ctl_c{s}"), &prev, 1)?;
        stages.push(m.wire_from(&format!("ctl_s{s}"), d)?);
    }
    // Stage 0 only carries the read address of column 0; the last stage only the write of
    // column C−1 and the block-complete strobe.
    let s0 = &stages[0];
    let ctl_unused = m.wire_from(
        "ctl_s0_unused",
        Expr::concat(&[ctl.v(s0)?, ctl.first(s0)?, ctl.last(s0)?, ctl.bank(s0)?])?,
    )?;
    m.allow_unused(ctl_unused.name())?;
    for s in 1..cc {
        let u = m.wire_from(&format!("ctl_s{s}_unused"), ctl.last(&stages[s as usize])?)?;
        m.allow_unused(u.name())?;
    }
    Ok((ctl, stages))
}

/// The drain: one accumulator row per cycle, in the output-stationary order (R-row groups of
/// the block, tiles, rows), while the output FIFO has a free credit.
pub(super) struct Drain {
    left: Sig,
    /// Accumulator bank being drained.
    pub bank: Sig,
    r: Sig,
    gbase: Sig,
    tbase: Sig,
    grem: Sig,
    crem: Sig,
    mrem: Sig,
    nrem: Sig,
    /// Output credits (free FIFO rows not yet promised to a drain read).
    pub credits: Sig,
    /// A row is read this cycle.
    pub go: Sig,
    /// Valid columns of the row read.
    pub cv: Sig,
    r_end: Sig,
    /// The block's last row is read (its bank is free after this cycle).
    pub blk_done: Sig,
    /// The command's last row is read.
    pub fin: Sig,
    /// Accumulator address of the row read.
    pub addr: Sig,
}

impl Drain {
    pub fn declare(m: &mut ModuleBuilder, r: &Resolved, is: &Issuer) -> HResult<Self> {
        let db = DIM_BITS;
        let (r64, c64) = (u64::from(r.r), u64::from(r.c));
        let (nc, mb) = (u64::from(r.p.max_n_chunk), u64::from(r.ws_m_block));
        let (_, _, acc_aw) = address_widths(r);
        let (_, credit_w) = fifo_widths(r);
        let left = m.reg("dr_left", 1)?;
        let bank = m.reg("dr_bank", 1)?;
        let dr_r = m.reg("dr_r", db)?;
        let gbase = m.reg("dr_gbase", acc_aw)?;
        let tbase = m.reg("dr_tbase", acc_aw)?;
        let grem = m.reg("dr_grem", db)?;
        let crem = m.reg("dr_crem", db)?;
        let mrem = m.reg("dr_mrem", db)?;
        let nrem = m.reg("dr_nrem", db)?;
        let credits = m.reg("credits", credit_w)?;
        let ready = &is.acc_ready;
        let ready_ok = bank_flag(ready, &bank)?;
        let go = m.wire_from(
            "dr_go",
            left.e()
                .and(&ready_ok)?
                .and(&credits.e().ne(&Expr::zero(credit_w))?)?,
        )?;
        let rv = min_c(&grem.e(), r64)?;
        let cv = m.wire_from("dr_cv", min_c(&crem.e(), c64)?)?;
        let r_end = m.wire_from("dr_r_end", inc(&dr_r)?.eq(&rv)?)?;
        let t_last = gt_c(&crem.e(), c64)?.not();
        let g_last = gt_c(&grem.e(), r64)?.not();
        let g_end = m.wire_from("dr_g_end", r_end.e().and(&t_last)?.and(&g_last)?)?;
        let blk_done = m.wire_from("dr_blk_done", go.e().and(&g_end.e())?)?;
        let fin = m.wire_from(
            "dr_final",
            g_end
                .e()
                .and(&gt_c(&mrem.e(), mb)?.not())?
                .and(&gt_c(&nrem.e(), nc)?.not())?,
        )?;
        let r_lo = fit(m, "dr_r_lo", &dr_r.e(), acc_aw)?;
        let addr = m.wire_from("dr_addr", tbase.e().add(&gbase.e())?.add(&r_lo)?)?;
        Ok(Drain {
            left,
            bank,
            r: dr_r,
            gbase,
            tbase,
            grem,
            crem,
            mrem,
            nrem,
            credits,
            go,
            cv,
            r_end,
            blk_done,
            fin,
            addr,
        })
    }

    /// The updates after a row group's last tile: next group, else next block (other bank),
    /// else next chunk, else done.
    fn tile_done(&self, r: &Resolved, m_len: &Sig) -> HResult<Vec<Stmt>> {
        let (r64, c64) = (u64::from(r.r), u64::from(r.c));
        let (nc, mb) = (u64::from(r.p.max_n_chunk), u64::from(r.ws_m_block));
        let aw = self.gbase.width();
        let nrem_next = sub_c(&self.nrem.e(), nc)?;
        let mrem_next = sub_c(&self.mrem.e(), mb)?;
        let block_done = vec![
            Stmt::set(&self.gbase, Expr::zero(aw))?,
            Stmt::set(&self.bank, self.bank.e().not())?,
            Stmt::if_else(
                gt_c(&self.mrem.e(), mb)?,
                vec![
                    Stmt::set(&self.mrem, mrem_next.clone())?,
                    Stmt::set(&self.grem, min_c(&mrem_next, mb)?)?,
                ],
                vec![
                    Stmt::set(&self.mrem, m_len.e())?,
                    Stmt::if_else(
                        gt_c(&self.nrem.e(), nc)?,
                        vec![
                            Stmt::set(&self.nrem, nrem_next.clone())?,
                            Stmt::set(&self.crem, min_c(&nrem_next, nc)?)?,
                            Stmt::set(&self.grem, min_c(&m_len.e(), mb)?)?,
                        ],
                        vec![Stmt::set(&self.left, Expr::bool(false))?],
                    )?,
                ],
            )?,
        ];
        Ok(vec![Stmt::if_else(
            gt_c(&self.crem.e(), c64)?,
            vec![
                Stmt::set(&self.crem, sub_c(&self.crem.e(), c64)?)?,
                Stmt::set(&self.tbase, add_wrap(&self.tbase.e(), mb)?)?,
            ],
            vec![
                Stmt::set(&self.tbase, Expr::zero(aw))?,
                Stmt::set(&self.crem, min_c(&self.nrem.e(), nc)?)?,
                Stmt::if_else(
                    gt_c(&self.grem.e(), r64)?,
                    vec![
                        Stmt::set(&self.grem, sub_c(&self.grem.e(), r64)?)?,
                        Stmt::set(&self.gbase, add_wrap(&self.gbase.e(), r64)?)?,
                    ],
                    block_done,
                )?,
            ],
        )?])
    }

    pub fn state_machine(&self, m: &mut ModuleBuilder, t: &Top<'_>) -> HResult<()> {
        let Top { r, ports, cmd } = t;
        let db = DIM_BITS;
        let (nc, mb) = (u64::from(r.p.max_n_chunk), u64::from(r.ws_m_block));
        let aw = self.gbase.width();
        let run = vec![Stmt::if_(
            self.go.e(),
            vec![Stmt::if_else(
                self.r_end.e(),
                [
                    vec![Stmt::set(&self.r, Expr::zero(db))?],
                    self.tile_done(r, &cmd.m_len)?,
                ]
                .concat(),
                vec![Stmt::set(&self.r, inc(&self.r)?)?],
            )?],
        )?];
        let (cmd_m, cmd_n) = (ports.cmd_m.e(), ports.cmd_n.e());
        let init = vec![
            Stmt::set(&self.left, Expr::bool(true))?,
            Stmt::set(&self.bank, Expr::bool(false))?,
            Stmt::set(&self.r, Expr::zero(db))?,
            Stmt::set(&self.gbase, Expr::zero(aw))?,
            Stmt::set(&self.tbase, Expr::zero(aw))?,
            Stmt::set(&self.grem, min_c(&cmd_m, mb)?)?,
            Stmt::set(&self.crem, min_c(&cmd_n, nc)?)?,
            Stmt::set(&self.mrem, cmd_m)?,
            Stmt::set(&self.nrem, cmd_n)?,
        ];
        t.fsm(
            m,
            vec![Stmt::set(&self.left, Expr::bool(false))?],
            init,
            run,
        )
    }
}

/// Accumulator bank state: busy from the block's first tile start until its drain's last
/// read; ready from the block's last write (at the chain's `last` stage) until then.
pub(super) fn acc_flags(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    (is, dr): (&Issuer, &Drain),
    (ctl, last): (&Ctl, &Sig),
) -> HResult<()> {
    let mut flags = vec![];
    for b in 0..2usize {
        let busy_set = is.claim.e().and(&bank_is(b, &is.acb.e()))?;
        let rdy_set = ctl
            .v(last)?
            .and(&ctl.last(last)?)?
            .and(&bank_is(b, &ctl.bank(last)?))?;
        let clr = dr.blk_done.e().and(&bank_is(b, &dr.bank.e()))?;
        flags.push(sticky(&is.acc_busy[b], &busy_set, &clr)?);
        flags.push(sticky(&is.acc_ready[b], &rdy_set, &clr)?);
    }
    flag_block(m, t, is.acc_busy.iter().chain(is.acc_ready.iter()), flags)
}

/// Per column: two banks, each one simple-dual-port block RAM. The drain has the read port of
/// the bank it drains; the other bank's read port serves the read-modify-write, which adds the
/// column bottom to the accumulator (the first K-slice writes it). The drained bank's read
/// data passes ReLU and the requantizer. Returns the requantized lanes.
pub(super) fn accumulator_banks(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    dr: &Drain,
    (ctl, stages): (&Ctl, &[Sig]),
    bottoms: &[Expr],
) -> HResult<Vec<Sig>> {
    let Top { r, ports, .. } = t;
    let clk = &ports.clk;
    let dr_bank_d = m.reg("dr_bank_d", 1)?;
    m.clocked(clk, vec![Stmt::set(&dr_bank_d, dr.bank.e())?])?;
    let mut rq_lanes = Vec::new();
    for j in 0..r.c {
        let rs = &stages[j as usize];
        let ws = &stages[(j + 1) as usize];
        let w_first = ctl.first(ws)?;
        let w_bank = ctl.bank(ws)?;
        let mut banks = Vec::new();
        for b in 0..2usize {
            let dr_here = dr.go.e().and(&bank_is(b, &dr.bank.e()))?;
            let raddr = Expr::mux(&dr_here, &dr.addr.e(), &ctl.addr(rs)?)?;
            let we = ctl.v(ws)?.and(&bank_is(b, &w_bank))?;
            banks.push((raddr, we));
        }
        // The write data needs both banks' read data, so declare it first.
        let sum = m.wire(&format!("acc{j}_sum"), r.wacc)?;
        let mut rdata = Vec::new();
        for (b, (raddr, we)) in banks.into_iter().enumerate() {
            rdata.push(bram(
                m,
                clk,
                (&format!("acc{j}_b{b}"), r.wacc, r.ws_acc_depth),
                &BramWrite {
                    we: &we,
                    addr: &ctl.addr(ws)?,
                    data: &sum.e(),
                },
                &raddr,
            )?);
        }
        let prev = Expr::mux(&w_bank, &rdata[1].e(), &rdata[0].e())?;
        let prev = Expr::mux(&w_first, &Expr::zero(r.wacc), &prev)?;
        m.assign_sig(&sum, prev.add(&bottoms[j as usize].as_unsigned())?)?;
        let dsel = bank_flag(&rdata, &dr_bank_d)?.as_signed();
        let x = if r.p.relu {
            let neg = m.wire_from(&format!("dr{j}_raw"), dsel.clone())?;
            Expr::mux(
                &neg.bit(r.wacc - 1)?,
                &Expr::zero(r.wacc).as_signed(),
                &neg.e(),
            )?
        } else {
            dsel
        };
        rq_lanes.push(requantize(m, t, j, x)?);
    }
    Ok(rq_lanes)
}
