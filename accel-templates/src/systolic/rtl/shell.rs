//! The part of a systolic top that does not depend on the dataflow: its ports (the Zynq core
//! contract with an `M x K x N` command), the command handshake, the busy/done/error status,
//! and the operand bits of an input beat.

use accelforge_hdl::helpers::{AxisIn, AxisOut, eq_c, gt_c, rst_or};
use accelforge_hdl::{Expr, ModuleBuilder, Result as HResult, Sig, Stmt};

use crate::systolic::params::Resolved;
use crate::systolic::requant::{CLAMP_BITS, SHIFT_BITS, per_channel};

/// Width of the command dimension ports.
pub const DIM_BITS: u32 = 16;

/// Lane counters and valid-lane counts (at most 64 lanes, kept at 16 bits).
pub(super) const LANE_W: u32 = 16;

/// The comment block above a top: what it computes, its buffers, where the protocol is told.
fn header_doc(m: &mut ModuleBuilder, r: &Resolved, dataflow: &str, buffers: &str) {
    let p = &r.p;
    m.doc(format!(
        "{dataflow} systolic array {}x{}: A {} x B {} -> acc {} -> out {}{}, PE {:?}.",
        r.r,
        r.c,
        r.ta,
        r.tb,
        r.tacc,
        r.tout,
        if p.relu { " (ReLU)" } else { "" },
        p.pe
    ));
    m.doc(format!(
        "Buffers: max K {}, {buffers}B chunk {} columns, {}-bit AXI4-Stream in/out.",
        p.max_k, p.max_n_chunk, p.stream_bits
    ));
    m.doc("Stream order and cycle model: see accelforge_templates::systolic docs.");
}

/// The ports every systolic top shares, in port order.
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
    /// Operands in (TLAST ignored: the command fixes how many beats follow).
    pub s: AxisIn,
    /// Results out, TLAST on the result's last beat.
    pub m: AxisOut,
    /// The per-channel requantizer's command ports (`requant = per_channel` only).
    pub rq: Option<RqPorts>,
}

/// The per-channel requantizer's command ports: `cmd_op` (0 = GEMM, 1 = load `cmd_n` table
/// entries from `s_axis`), and the GEMM's `cmd_shift`, `cmd_round`, `cmd_lo`, `cmd_hi`.
pub(super) struct RqPorts {
    pub op: Sig,
    pub shift: Sig,
    pub round: Sig,
    pub lo: Sig,
    pub hi: Sig,
}

impl GemmPorts {
    /// Declares the ports (command dimensions [`DIM_BITS`], streams `sb` bits) in port order.
    fn declare(m: &mut ModuleBuilder, sb: u32, per_channel: bool) -> HResult<Self> {
        let db = DIM_BITS;
        let clk = m.input("clk", 1)?;
        let rst = m.input("rst", 1)?;
        let cmd_valid = m.input("cmd_valid", 1)?;
        let cmd_ready = m.output("cmd_ready", 1)?;
        let cmd_m = m.input("cmd_m", db)?;
        let cmd_k = m.input("cmd_k", db)?;
        let cmd_n = m.input("cmd_n", db)?;
        let rq = if per_channel {
            Some(RqPorts {
                op: m.input("cmd_op", 1)?,
                shift: m.input("cmd_shift", SHIFT_BITS)?,
                round: m.input("cmd_round", 1)?,
                lo: m.input_signed("cmd_lo", CLAMP_BITS)?,
                hi: m.input_signed("cmd_hi", CLAMP_BITS)?,
            })
        } else {
            None
        };
        let busy = m.output_reg("busy", 1)?;
        let done = m.output_reg("done", 1)?;
        let error = m.output_reg("error", 1)?;
        let s = AxisIn::declare(m, "s_axis", sb)?;
        let out = AxisOut::declare(m, "m_axis", sb)?;
        // TLAST on the input carries no information: the command fixes how many beats follow.
        let unused_tlast = m.wire_from("s_axis_tlast_unused", s.tlast.e())?;
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
            s,
            m: out,
            rq,
        })
    }
}

/// The accepted command: its registered dimensions and the handshake wires.
pub(super) struct Command {
    /// K of the running command.
    pub kk: Sig,
    /// M of the running command.
    pub m_len: Sig,
    /// A command is taken this cycle (valid while idle).
    pub accept: Sig,
    /// The taken command has a zero dimension or `K > max_k`: it completes at once with error.
    pub reject: Sig,
    /// The taken command runs: every state machine initializes.
    pub start_cmd: Sig,
    /// Per-channel mode: the taken command is a table load (`start_cmd` stays low).
    pub tl_start: Option<Sig>,
}

impl Command {
    /// Declares the command registers (`k_len`, `m_len`, then `extra` more of [`DIM_BITS`]
    /// bits, returned in order) and the handshake: ready while idle; a command with a zero
    /// dimension or `K > max_k` is accepted but rejected.
    fn declare(
        m: &mut ModuleBuilder,
        ports: &GemmPorts,
        max_k: u32,
        extra: &[&str],
        max_channels: Option<u32>,
    ) -> HResult<(Self, Vec<Sig>)> {
        let kk = m.reg("k_len", DIM_BITS)?;
        let m_len = m.reg("m_len", DIM_BITS)?;
        let extra = extra
            .iter()
            .map(|n| m.reg(n, DIM_BITS))
            .collect::<HResult<Vec<_>>>()?;
        let (busy, cmd_k) = (&ports.busy, &ports.cmd_k);
        m.assign_sig(&ports.cmd_ready, busy.e().not())?;
        let accept = m.wire_from("accept", ports.cmd_valid.e().and(&busy.e().not())?)?;
        let bad_k = gt_c(&cmd_k.e(), u64::from(max_k))?;
        let empty = eq_c(&ports.cmd_m.e(), 0)?
            .or(&eq_c(&cmd_k.e(), 0)?)?
            .or(&eq_c(&ports.cmd_n.e(), 0)?)?;
        let (reject, start_cmd, tl_start) = match (max_channels, &ports.rq) {
            (Some(max_ch), Some(rq)) => {
                // A GEMM needs every column's table entry; a table load needs 1..=max entries.
                let too_many = gt_c(&ports.cmd_n.e(), u64::from(max_ch))?;
                let gemm_bad = bad_k.or(&empty)?.or(&too_many)?;
                let load_bad = eq_c(&ports.cmd_n.e(), 0)?.or(&too_many)?;
                let reject = m.wire_from("reject", Expr::mux(&rq.op.e(), &load_bad, &gemm_bad)?)?;
                let ok = accept.e().and(&reject.e().not())?;
                let start_cmd = m.wire_from("start_cmd", ok.and(&rq.op.e().not())?)?;
                let tl_start = m.wire_from("tl_start", ok.and(&rq.op.e())?)?;
                (reject, start_cmd, Some(tl_start))
            }
            _ => {
                let reject = m.wire_from("reject", bad_k.or(&empty)?)?;
                let start_cmd = m.wire_from("start_cmd", accept.e().and(&reject.e().not())?)?;
                (reject, start_cmd, None)
            }
        };
        Ok((
            Command {
                kk,
                m_len,
                accept,
                reject,
                start_cmd,
                tl_start,
            },
            extra,
        ))
    }

    /// The status registers: `busy` from a running command's acceptance until `last_xfer` (its
    /// last output beat), `done` sticky from then, `done` and `error` at once for a rejected
    /// command. `on_accept` adds more registers latched from the command.
    fn status(
        &self,
        m: &mut ModuleBuilder,
        ports: &GemmPorts,
        last_xfer: Expr,
        on_accept: Vec<Stmt>,
    ) -> HResult<()> {
        let (busy, done, error) = (&ports.busy, &ports.done, &ports.error);
        let mut latch = vec![
            Stmt::set(busy, self.reject.e().not())?,
            Stmt::set(done, self.reject.e())?,
            Stmt::set(error, self.reject.e())?,
            Stmt::set(&self.kk, ports.cmd_k.e())?,
            Stmt::set(&self.m_len, ports.cmd_m.e())?,
        ];
        latch.extend(on_accept);
        m.clocked(
            &ports.clk,
            vec![rst_or(
                &ports.rst.e(),
                vec![
                    Stmt::set(busy, Expr::bool(false))?,
                    Stmt::set(done, Expr::bool(false))?,
                    Stmt::set(error, Expr::bool(false))?,
                ],
                vec![
                    Stmt::if_(self.accept.e(), latch)?,
                    Stmt::if_(
                        last_xfer,
                        vec![
                            Stmt::set(busy, Expr::bool(false))?,
                            Stmt::set(done, Expr::bool(true))?,
                        ],
                    )?,
                ],
            )?],
        )
    }
}

/// What every part of a top builds on: the parameters, the ports and the accepted command.
pub(super) struct Top<'a> {
    pub r: &'a Resolved,
    pub ports: GemmPorts,
    pub cmd: Command,
}

impl<'a> Top<'a> {
    /// Writes the header (`dataflow`, `buffers` as in [`header_doc`]), declares the ports and
    /// the command (with `extra` command registers, returned in order).
    pub fn declare(
        m: &mut ModuleBuilder,
        r: &'a Resolved,
        (dataflow, buffers): (&str, &str),
        extra: &[&str],
    ) -> HResult<(Self, Vec<Sig>)> {
        header_doc(m, r, dataflow, buffers);
        let pc = per_channel(r);
        let ports = GemmPorts::declare(m, r.p.stream_bits, pc.is_some())?;
        let (cmd, extra) =
            Command::declare(m, &ports, r.p.max_k, extra, pc.map(|pc| pc.max_channels))?;
        Ok((Top { r, ports, cmd }, extra))
    }

    /// A state machine's always block: `on_rst` under reset, else `init` when a command
    /// starts, else `run`.
    pub fn fsm(
        &self,
        m: &mut ModuleBuilder,
        on_rst: Vec<Stmt>,
        init: Vec<Stmt>,
        run: Vec<Stmt>,
    ) -> HResult<()> {
        m.clocked(
            &self.ports.clk,
            vec![rst_or(
                &self.ports.rst.e(),
                on_rst,
                vec![Stmt::if_else(self.cmd.start_cmd.e(), init, run)?],
            )?],
        )
    }

    /// See [`Command::status`].
    pub fn status(
        &self,
        m: &mut ModuleBuilder,
        last_xfer: Expr,
        on_accept: Vec<Stmt>,
    ) -> HResult<()> {
        self.cmd.status(m, &self.ports, last_xfer, on_accept)
    }
}

/// The packed lanes of an input beat for the A and the B buffers: the low Ea·Wa (Eb·Wb) bits,
/// since a beat carries floor(B/W) whole elements and its high bits are ignored. Storing only
/// those bits also keeps the buffers no wider than their contents.
pub(super) fn packed_inputs(m: &mut ModuleBuilder, t: &Top<'_>) -> HResult<(Expr, Expr)> {
    let (r, s_tdata) = (t.r, &t.ports.s.tdata);
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
