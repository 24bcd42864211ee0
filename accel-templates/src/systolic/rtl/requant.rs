//! The per-channel requantizer (`requant = per_channel`, output-stationary): the table-load
//! command that fills one LUT-RAM table per lane from `s_axis`, the per-command settings, and
//! the arithmetic applied to a de-skewed row as it enters the output FIFO (so the GEMM's
//! register stages, hence its cycles, are those of the single-type requantizer). The
//! arithmetic is [`crate::systolic::requant`]'s.

use accelforge_hdl::helpers::{eq_c, inc, lit, rst_or, sext, sub_c};
use accelforge_hdl::{Expr, LValue, Mem, ModuleBuilder, Result as HResult, Sig, Stmt, clog2};

use super::shell::{DIM_BITS, RqPorts, Top};
use crate::systolic::requant::{CLAMP_BITS, PerChannel, SHIFT_BITS};

/// Address bits of a lane table (the tile's column block).
pub(super) fn blk_bits(pc: &PerChannel) -> u32 {
    clog2(u64::from(pc.depth)).max(1)
}

/// The table-load state and the latched per-command settings.
pub(super) struct TableLoad {
    pub act: Sig,
    left: Sig,
    beat: Sig,
    lane: Sig,
    addr: Sig,
    shift: Sig,
    round: Sig,
    lo: Sig,
    hi: Sig,
}

impl TableLoad {
    /// Declares the table-load registers (`tl_act` first: the loader's handshake needs it) and
    /// the settings registers.
    pub fn declare(m: &mut ModuleBuilder, t: &Top<'_>, pc: &PerChannel) -> HResult<Self> {
        let lane_w = clog2(u64::from(t.r.c)).max(1);
        Ok(TableLoad {
            act: m.reg("tl_act", 1)?,
            left: m.reg("tl_left", DIM_BITS)?,
            beat: m.reg("tl_beat", clog2(u64::from(pc.beats_per_entry)).max(1))?,
            lane: m.reg("tl_lane", lane_w)?,
            addr: m.reg("tl_addr", blk_bits(pc))?,
            shift: m.reg("rq_shift", SHIFT_BITS)?,
            round: m.reg("rq_round", 1)?,
            lo: m.reg_signed("rq_lo", CLAMP_BITS)?,
            hi: m.reg_signed("rq_hi", CLAMP_BITS)?,
        })
    }

    /// The statements latching the settings when a command is accepted: the clamp bounds are
    /// narrowed to the output type's range, so an out-of-range bound can never wrap.
    pub fn on_accept(&self, t: &Top<'_>, rq: &RqPorts) -> HResult<Vec<Stmt>> {
        let tout = &t.r.tout;
        let cw = CLAMP_BITS;
        let min = Expr::slit(tout.min_raw(), cw)?;
        let max = Expr::slit(tout.max_raw(), cw)?;
        let lo = Expr::mux(&rq.lo.e().lt(&min)?, &min, &rq.lo.e())?;
        let hi = Expr::mux(&rq.hi.e().gt(&max)?, &max, &rq.hi.e())?;
        Ok(vec![
            Stmt::set(&self.shift, rq.shift.e())?,
            Stmt::set(&self.round, rq.round.e())?,
            Stmt::set(&self.lo, lo)?,
            Stmt::set(&self.hi, hi)?,
        ])
    }

    /// The lane tables and the table-load state machine: entry `c` (one word of
    /// `mul_bits + add_bits` bits over `beats_per_entry` beats, low beat first) goes to lane
    /// `c mod C`, address `c / C`. Returns the tables and the "last entry written" condition.
    pub fn logic(
        &self,
        m: &mut ModuleBuilder,
        t: &Top<'_>,
        pc: &PerChannel,
    ) -> HResult<(Vec<Mem>, Expr)> {
        let Top { r, ports, cmd } = t;
        let sb = r.p.stream_bits;
        let ew = pc.mul_bits + pc.add_bits;
        let bpe = pc.beats_per_entry;
        let tdata = &ports.s.tdata;
        let fire = m.wire_from("tl_fire", ports.s.tvalid.e().and(&self.act.e())?)?;
        let entry_end = if bpe == 1 {
            Expr::bool(true)
        } else {
            eq_c(&self.beat.e(), u64::from(bpe - 1))?
        };
        let wr = m.wire_from("tl_wr", fire.e().and(&entry_end)?)?;
        let mut shift_in = Vec::new();
        let word = if bpe == 1 {
            if ew == sb {
                tdata.e()
            } else {
                tdata.slice(ew - 1, 0)?
            }
        } else {
            // Earlier beats of the entry, the latest on top.
            let acc = m.reg("tl_acc", (bpe - 1) * sb)?;
            let next = if bpe == 2 {
                tdata.e()
            } else {
                Expr::concat(&[tdata.e(), acc.slice((bpe - 1) * sb - 1, sb)?])?
            };
            shift_in.push(Stmt::set(&acc, next)?);
            let all = m.wire_from("tl_word_all", Expr::concat(&[tdata.e(), acc.e()])?)?;
            if ew < bpe * sb {
                m.allow_unused(all.name())?;
            }
            all.slice(ew - 1, 0)?
        };
        let word = m.wire_from("tl_word", word)?;
        let mut tables = Vec::new();
        let mut writes = Vec::new();
        for j in 0..r.c {
            let mem = m.memory(&format!("rqt{j}"), ew, pc.depth, false, Some("distributed"))?;
            writes.push(Stmt::if_(
                wr.e().and(&eq_c(&self.lane.e(), u64::from(j))?)?,
                vec![Stmt::assign(LValue::word(&mem, &self.addr.e())?, word.e())?],
            )?);
            tables.push(mem);
        }
        m.clocked(&ports.clk, writes)?;
        let lw = self.lane.width();
        let last_lane = eq_c(&self.lane.e(), u64::from(r.c - 1))?;
        let entry_done = vec![
            Stmt::set(&self.beat, Expr::zero(self.beat.width()))?,
            Stmt::set(&self.left, sub_c(&self.left.e(), 1)?)?,
            Stmt::if_(
                eq_c(&self.left.e(), 1)?,
                vec![Stmt::set(&self.act, Expr::bool(false))?],
            )?,
            Stmt::if_else(
                last_lane,
                vec![
                    Stmt::set(&self.lane, Expr::zero(lw))?,
                    Stmt::set(&self.addr, inc(&self.addr)?)?,
                ],
                vec![Stmt::set(&self.lane, inc(&self.lane)?)?],
            )?,
        ];
        let mut step = shift_in;
        step.push(Stmt::if_else(
            entry_end,
            entry_done,
            vec![Stmt::set(&self.beat, inc(&self.beat)?)?],
        )?);
        let tl_start = cmd.tl_start.as_ref().ok_or_else(|| {
            accelforge_hdl::HdlError::Misuse("per-channel without tl_start".into())
        })?;
        m.clocked(
            &ports.clk,
            vec![rst_or(
                &ports.rst.e(),
                vec![Stmt::set(&self.act, Expr::bool(false))?],
                vec![Stmt::if_else(
                    tl_start.e(),
                    vec![
                        Stmt::set(&self.act, Expr::bool(true))?,
                        Stmt::set(&self.left, ports.cmd_n.e())?,
                        Stmt::set(&self.beat, Expr::zero(self.beat.width()))?,
                        Stmt::set(&self.lane, Expr::zero(lw))?,
                        Stmt::set(&self.addr, Expr::zero(self.addr.width()))?,
                    ],
                    vec![Stmt::if_(fire.e(), step)?],
                )?],
            )?],
        )?;
        let done = wr.e().and(&eq_c(&self.left.e(), 1)?)?;
        Ok((tables, done))
    }

    /// Lane `j`'s result from its raw accumulator `acc` (signed) and the entry of column block
    /// `blk`: `clamp(round((acc·mul + add) >> shift), lo, hi)` in the output type's width.
    pub fn lane(
        &self,
        m: &mut ModuleBuilder,
        t: &Top<'_>,
        pc: &PerChannel,
        (j, acc, table, blk): (u32, &Expr, &Mem, &Expr),
    ) -> HResult<Expr> {
        let r = t.r;
        let (mb, ab, vw) = (pc.mul_bits, pc.add_bits, pc.v_bits);
        let entry = m.wire_from(&format!("rqe{j}"), table.read(blk)?)?;
        let mul = entry.slice(mb - 1, 0)?.as_signed();
        let add = entry.slice(mb + ab - 1, mb)?.as_signed();
        let prod = m.product(&format!("rqp{j}"), acc, &mul)?;
        let v = sext(m, &format!("rqpx{j}"), &prod.e(), vw)?.add(&sext(
            m,
            &format!("rqax{j}"),
            &add,
            vw,
        )?)?;
        let v = m.wire_from(&format!("rqv{j}"), v)?;
        let sh = self.shift.e();
        let q = m.wire_from(&format!("rqq{j}"), v.e().shr_by(&sh)?)?;
        let mask = Expr::ones(vw).shl_by(&sh)?.not();
        let rem = v.e().as_unsigned().and(&mask)?;
        let half = lit(1, vw)?.shl_by(&sh)?.shr(1);
        let up = self
            .round
            .e()
            .and(&sh.ne(&Expr::zero(SHIFT_BITS))?)?
            .and(&rem.gt(&half)?.or(&rem.eq(&half)?.and(&q.bit(0)?)?)?)?;
        let up = Expr::concat(&[Expr::zero(vw - 1), up])?.as_signed();
        let q2 = m.wire_from(&format!("rqr{j}"), q.e().add(&up)?)?;
        let lo = sext(m, &format!("rqlo{j}"), &self.lo.e(), vw)?;
        let hi = sext(m, &format!("rqhi{j}"), &self.hi.e(), vw)?;
        let y = Expr::mux(
            &q2.e().lt(&lo)?,
            &lo,
            &Expr::mux(&q2.e().gt(&hi)?, &hi, &q2.e())?,
        )?;
        let y = m.wire_from(&format!("rqy{j}"), y)?;
        m.allow_unused(y.name())?;
        y.slice(r.tout.width() - 1, 0)
    }
}
