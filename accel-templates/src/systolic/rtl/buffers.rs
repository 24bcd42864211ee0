//! The operand side both dataflows share: the loader's stream handshake into two
//! double-banked buffers (A, and B or W), the block RAMs of those buffers, and the sticky
//! bank-full flags between the loader and whatever reads the banks.

use accelforge_hdl::helpers::{BramWrite, eq_c, inc, lit, styled_ram};
use accelforge_hdl::{Expr, ModuleBuilder, Result as HResult, Sig, Stmt};

use super::shell::{LANE_W, Top};

/// The loader's handshake: `s_axis_tready` while the target bank is not full, and the state
/// shared by both loaders (which operand is loading, which beat of its row, which lane).
pub(super) struct LoadPort {
    /// Loading the A buffer (else the B/W buffer).
    pub isa: Sig,
    /// Beat within the current row.
    pub beat: Sig,
    /// First lane of the current beat.
    pub lane: Sig,
    /// Bank-full flags of the A buffer.
    pub afull: [Sig; 2],
    /// Bank-full flags of the B (or W) buffer.
    pub bfull: [Sig; 2],
    /// A beat is taken.
    pub fire: Sig,
    /// Elements per beat of the operand being loaded.
    pub e_cur: Expr,
}

impl LoadPort {
    /// Declares the bank-full flags `a_full0/1` and `{b}_full0/1`, drives `s_axis_tready`
    /// (`act` and the target bank, chosen by `a_bank` / `b_bank`, not full) and the `ld_fire`
    /// wire.
    pub fn declare(
        m: &mut ModuleBuilder,
        t: &Top<'_>,
        [act, isa, beat, lane]: [&Sig; 4],
        (a_bank, b_bank, b): (&Sig, &Sig, &str),
        tl_act: Option<&Sig>,
    ) -> HResult<Self> {
        let Top { r, ports, .. } = t;
        let afull = [m.reg("a_full0", 1)?, m.reg("a_full1", 1)?];
        let bfull = [
            m.reg(&format!("{b}_full0"), 1)?,
            m.reg(&format!("{b}_full1"), 1)?,
        ];
        let a_tgt_full = bank_flag(&afull, a_bank)?;
        let b_tgt_full = bank_flag(&bfull, b_bank)?;
        let tgt_full = Expr::mux(&isa.e(), &a_tgt_full, &b_tgt_full)?;
        let s = &ports.s;
        let fire = if let Some(tl) = tl_act {
            // A table load takes the stream too; the loader's own beats exclude its cycles.
            let ld_rdy = m.wire_from("ld_ready", act.e().and(&tgt_full.not())?)?;
            m.assign_sig(&s.tready, ld_rdy.e().or(&tl.e())?)?;
            m.wire_from("ld_fire", s.tvalid.e().and(&ld_rdy.e())?)?
        } else {
            m.assign_sig(&s.tready, act.e().and(&tgt_full.not())?)?;
            m.wire_from("ld_fire", s.tvalid.e().and(&s.tready.e())?)?
        };
        let e_cur = Expr::mux(
            &isa.e(),
            &lit(u64::from(r.ea), LANE_W)?,
            &lit(u64::from(r.eb), LANE_W)?,
        )?;
        Ok(LoadPort {
            isa: isa.clone(),
            beat: beat.clone(),
            lane: lane.clone(),
            afull,
            bfull,
            fire,
            e_cur,
        })
    }

    /// The `ld_row_end` wire: this beat holds the row's last valid element.
    pub fn row_end(&self, m: &mut ModuleBuilder, valid: &Expr) -> HResult<Sig> {
        m.wire_from("ld_row_end", self.lane.e().add(&self.e_cur)?.ge(valid)?)
    }

    /// On a taken beat: `row_done` at the row's end, else step to the next beat.
    pub fn beat_step(&self, row_end: &Sig, row_done: Vec<Stmt>) -> HResult<Stmt> {
        Stmt::if_(
            self.fire.e(),
            vec![Stmt::if_else(
                row_end.e(),
                row_done,
                vec![
                    Stmt::set(&self.beat, inc(&self.beat)?)?,
                    Stmt::set(&self.lane, self.lane.e().add(&self.e_cur)?)?,
                ],
            )?],
        )
    }

    /// Statements that restart the beat and lane counters for a new row.
    pub fn row_restart(&self) -> HResult<Vec<Stmt>> {
        Ok(vec![
            Stmt::set(&self.beat, Expr::zero(self.beat.width()))?,
            Stmt::set(&self.lane, Expr::zero(LANE_W))?,
        ])
    }

    /// One operand buffer: `count` block RAMs `{name}{q}` (one per beat of a row), each of
    /// `depth` words, written from `wdata` at `waddr` on beat `q` of the A (`for_a`) or the
    /// other operand, read at `raddr`. Returns the read-data registers.
    pub fn buffer(
        &self,
        m: &mut ModuleBuilder,
        t: &Top<'_>,
        (name, count, depth, for_a): (&str, u32, u32, bool),
        (waddr, wdata): (&Expr, &Expr),
        raddr: &Expr,
    ) -> HResult<Vec<Sig>> {
        let sel = if for_a {
            self.isa.e()
        } else {
            self.isa.e().not()
        };
        (0..count)
            .map(|q| {
                let we = self
                    .fire
                    .e()
                    .and(&sel)?
                    .and(&eq_c(&self.beat.e(), u64::from(q))?)?;
                styled_ram(
                    m,
                    &t.ports.clk,
                    (
                        &format!("{name}{q}"),
                        wdata.width(),
                        depth,
                        t.r.p.buffer_ram.style(),
                    ),
                    &BramWrite {
                        we: &we,
                        addr: waddr,
                        data: wdata,
                    },
                    raddr,
                )
            })
            .collect()
    }
}

/// `f <= (f | set) & ~clr`: a flag that `set` raises and `clr` lowers.
pub(super) fn sticky(f: &Sig, set: &Expr, clr: &Expr) -> HResult<Stmt> {
    Stmt::set(f, f.e().or(set)?.and(&clr.not())?)
}

/// One always block for a set of flags: all cleared by reset and by a new command, else
/// `updates`.
pub(super) fn flag_block<'a>(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    flags: impl Iterator<Item = &'a Sig>,
    updates: Vec<Stmt>,
) -> HResult<()> {
    let clear = t.ports.rst.e().or(&t.cmd.start_cmd.e())?;
    let clear_all: Vec<Stmt> = flags
        .map(|f| Stmt::set(f, Expr::bool(false)))
        .collect::<HResult<_>>()?;
    m.clocked(
        &t.ports.clk,
        vec![Stmt::if_else(clear, clear_all, updates)?],
    )
}

/// The flag of the bank `bank` selects (`flags[bank]`).
pub(super) fn bank_flag(flags: &[Sig], bank: &Sig) -> HResult<Expr> {
    Expr::mux(&bank.e(), &flags[1].e(), &flags[0].e())
}

/// Selects bank `i` (0 or 1) of a one-bit bank pointer.
pub(super) fn bank_is(i: usize, bank: &Expr) -> Expr {
    if i == 0 { bank.not() } else { bank.clone() }
}

/// A buffer's two bank-full flags: bank `i` is set by `set` while the loader targets it
/// (`bank_ld`) and cleared by `clr` while the reader does (`bank_rd`). The two never target the
/// same bank in one cycle (set needs it empty, clear needs it full).
pub(super) struct BankFlags<'a> {
    pub full: &'a [Sig; 2],
    pub set: Expr,
    pub clr: Expr,
    pub bank_ld: Expr,
    pub bank_rd: Expr,
}

/// The always block of the bank-full flags of both buffers, cleared by reset and by a new
/// command.
pub(super) fn bank_flags(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    groups: [BankFlags<'_>; 2],
) -> HResult<()> {
    let mut flags = vec![];
    for g in &groups {
        for (i, f) in g.full.iter().enumerate() {
            let s = g.set.and(&bank_is(i, &g.bank_ld))?;
            let c = g.clr.and(&bank_is(i, &g.bank_rd))?;
            flags.push(sticky(f, &s, &c)?);
        }
    }
    flag_block(m, t, groups.iter().flat_map(|g| g.full.iter()), flags)
}
