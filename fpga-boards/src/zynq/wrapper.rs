//! The Zynq wrapper: puts any accelerator core behind the interfaces Vivado's block design and
//! PYNQ expect — `ap_clk`/`ap_rst_n`, AXI4-Stream `s_axis_in_*`/`m_axis_out_*`, and an AXI4-Lite
//! slave `s_axi_control_*` with the Vitis-HLS register map — as plain Verilog, so Vivado can use
//! it as a module reference.
//!
//! # The core contract
//! A core is any module with these ports (every template follows it):
//! `clk`, `rst` (synchronous, active high), `s_axis_tdata/tvalid/tready` (and optionally
//! `s_axis_tlast`), `m_axis_tdata/tvalid/tready/tlast`, `cmd_valid`/`cmd_ready` (a command is
//! taken on the cycle both are high), one input `cmd_<arg>` per [`AccelInterface`] argument (at
//! most 32 bits, the argument's width), and `done`, which rises when the command has finished
//! (after its last output beat was accepted); a one-cycle pulse or a level held until the next
//! command both work, because the wrapper takes `done` only while a command runs (from the cycle
//! after the accept). A rejected command must raise `done` too. An optional `error` output, read
//! when `done` ends the command, is latched into the command status register; `busy` is accepted
//! and left unconnected.
//! Outputs `stat_<name>` (at most 32 bits) become read-only status registers.
//!
//! A core may also fetch its own weights: it asks for a *segment* with `wreq_valid`/`wreq_ready`
//! and `wreq_id`, and takes the segment's beats on `s_axis_w_tdata/tvalid/tready/tlast`. The
//! interface's [`super::accel::WeightFetch`] maps each id to a byte range of a packed image in
//! DDR; the wrapper turns every request into an AXI DataMover MM2S command at
//! `weights_base + offset` (module [`super::fetch`]) and exposes the DataMover's command, status
//! and data streams as `m_axis_mm2s_cmd_*`, `s_axis_mm2s_sts_*` and `s_axis_w_*`.
//!
//! # Register behaviour (as Vitis HLS documents for `ap_ctrl_hs`)
//! - 0x00 `ap_ctrl`: writing bit0 = 1 sets `ap_start`; it stays set until the core accepts the
//!   command. bit1 `ap_done` is set by the core's `done` and cleared by a read of 0x00. bit2
//!   `ap_idle` is high while no command runs. bit3 `ap_ready` is set when the command is accepted
//!   and cleared by a read of 0x00 (as HLS does). bit7 `auto_restart` re-arms `ap_start` on each
//!   `done`.
//! - 0x04 GIE (bit0), 0x08 IER (bit0 done, bit1 ready), 0x0C ISR (same bits, set by the events
//!   enabled in IER, each bit toggled by writing 1). `interrupt = GIE & (ISR != 0)`.
//! - Arguments from 0x10, 4 bytes apart, honouring `wstrb`; then status registers (read-only,
//!   writes ignored); then, with weight fetch, `weights_base` (and its high word for 64-bit
//!   addresses) and the read-only fetch status; last, the read-only command status
//!   ([`super::accel::CMD_ERROR_BIT`]: the core rejected the last command). Reads of unmapped
//!   addresses return 0 with an
//!   OKAY response; every response is OKAY.

use accelforge_hdl::{Design, Dir, Expr, HdlError, Module, ModuleBuilder, Sig, Stmt};

use super::accel::{
    AP_AUTO_RESTART_BIT, AP_CTRL_OFFSET, ARG_STRIDE, AccelInterface, FIRST_ARG_OFFSET, GIE_OFFSET,
    IER_OFFSET, ISR_OFFSET, StatusReg,
};

type R<T> = Result<T, HdlError>;

/// Vivado's interface attributes (UG994, "Inferring Interfaces"; UG1118) on the clock, reset and
/// interrupt, so a module reference in a block design associates every AXI bus with `ap_clk`,
/// knows the reset is active low and the interrupt level-sensitive, instead of guessing (and
/// warning) at connection time.
fn interface_attributes(m: &mut ModuleBuilder, weight_fetch: bool) -> R<()> {
    let mut busses = vec!["s_axi_control", "s_axis_in", "m_axis_out"];
    if weight_fetch {
        busses.extend(["m_axis_mm2s_cmd", "s_axis_mm2s_sts", "s_axis_w"]);
    }
    let info = "X_INTERFACE_INFO";
    let param = "X_INTERFACE_PARAMETER";
    m.port_attribute("ap_clk", info, "xilinx.com:signal:clock:1.0 ap_clk CLK")?;
    m.port_attribute(
        "ap_clk",
        param,
        &format!(
            "ASSOCIATED_BUSIF {}, ASSOCIATED_RESET ap_rst_n",
            busses.join(":")
        ),
    )?;
    m.port_attribute("ap_rst_n", info, "xilinx.com:signal:reset:1.0 ap_rst_n RST")?;
    m.port_attribute("ap_rst_n", param, "POLARITY ACTIVE_LOW")?;
    m.port_attribute(
        "interrupt",
        info,
        "xilinx.com:signal:interrupt:1.0 interrupt INTERRUPT",
    )?;
    m.port_attribute("interrupt", param, "SENSITIVITY LEVEL_HIGH")
}

/// What the wrapper found on the core besides the contract's required ports.
struct CoreShape {
    has_tlast: bool,
}

fn check_core(core: &Module, accel: &AccelInterface) -> R<CoreShape> {
    let need = |name: &str, dir: Dir, width: u32| -> R<()> {
        match core.port(name) {
            Some(p) if p.dir == dir && p.width == width => Ok(()),
            Some(p) => Err(HdlError::Misuse(format!(
                "core `{}`: port `{name}` is {:?} {} bits, the wrapper needs {:?} {width} bits",
                core.name(),
                p.dir,
                p.width,
                dir
            ))),
            None => Err(HdlError::Misuse(format!(
                "core `{}` has no port `{name}` (see the core contract in zynq::wrapper)",
                core.name()
            ))),
        }
    };
    let mut known: Vec<String> = Vec::new();
    let mut need_k = |name: &str, dir: Dir, width: u32| -> R<()> {
        need(name, dir, width)?;
        known.push(name.to_string());
        Ok(())
    };
    need_k("clk", Dir::Input, 1)?;
    need_k("rst", Dir::Input, 1)?;
    need_k("s_axis_tdata", Dir::Input, accel.in_stream_bits)?;
    need_k("s_axis_tvalid", Dir::Input, 1)?;
    need_k("s_axis_tready", Dir::Output, 1)?;
    need_k("m_axis_tdata", Dir::Output, accel.out_stream_bits)?;
    need_k("m_axis_tvalid", Dir::Output, 1)?;
    need_k("m_axis_tready", Dir::Input, 1)?;
    need_k("m_axis_tlast", Dir::Output, 1)?;
    need_k("cmd_valid", Dir::Input, 1)?;
    need_k("cmd_ready", Dir::Output, 1)?;
    need_k("done", Dir::Output, 1)?;
    for a in &accel.args {
        need_k(&format!("cmd_{}", a.name), Dir::Input, a.bits)?;
    }
    for st in &accel.status {
        need_k(&format!("stat_{}", st.name), Dir::Output, st.bits)?;
    }
    let has_tlast = core.port("s_axis_tlast").is_some();
    if has_tlast {
        need_k("s_axis_tlast", Dir::Input, 1)?;
    }
    for status in ["busy", "error"] {
        if core.port(status).is_some() {
            need_k(status, Dir::Output, 1)?;
        }
    }
    let requests_weights = core.port("wreq_valid").is_some();
    match (&accel.weight_fetch, requests_weights) {
        (Some(f), true) => {
            need_k("s_axis_w_tdata", Dir::Input, f.stream_bits)?;
            need_k("s_axis_w_tvalid", Dir::Input, 1)?;
            need_k("s_axis_w_tready", Dir::Output, 1)?;
            need_k("s_axis_w_tlast", Dir::Input, 1)?;
            need_k("wreq_valid", Dir::Output, 1)?;
            need_k("wreq_ready", Dir::Input, 1)?;
            need_k("wreq_id", Dir::Output, f.id_bits)?;
        }
        (None, true) => {
            return Err(HdlError::Misuse(format!(
                "core `{}` requests weights on `wreq_*`; give the interface a weight fetch (AccelInterface::with_weight_fetch) with the segment table",
                core.name()
            )));
        }
        (Some(_), false) => {
            return Err(HdlError::Misuse(format!(
                "the interface has a weight fetch but core `{}` has no `wreq_valid` port",
                core.name()
            )));
        }
        (None, false) => {}
    }
    let unknown: Vec<&str> = core
        .ports()
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !known.iter().any(|k| k == n))
        .collect();
    if !unknown.is_empty() {
        return Err(HdlError::Misuse(format!(
            "core `{}` has ports the wrapper does not know how to drive: {} (status outputs must be listed in the interface's `status`)",
            core.name(),
            unknown.join(", ")
        )));
    }
    Ok(CoreShape { has_tlast })
}

/// The wrapped top's DataMover-facing ports.
struct FetchPorts {
    cmd_tdata: Sig,
    cmd_tvalid: Sig,
    cmd_tready: Sig,
    sts_tdata: Sig,
    sts_tvalid: Sig,
    sts_tready: Sig,
    w_tdata: Sig,
    w_tvalid: Sig,
    w_tready: Sig,
    w_tlast: Sig,
}

fn lit(v: u64, w: u32) -> R<Expr> {
    Expr::lit(u128::from(v), w)
}

/// Wraps `core` as `accel.name` with the ports of [`AccelInterface::expected_ports`] and the
/// register map of [`AccelInterface::register_map`]. The result holds the wrapper and every
/// module of the core's design.
pub fn wrap(core_design: &Design, accel: &AccelInterface) -> R<Design> {
    let core = core_design.top();
    let shape = check_core(core, accel)?;
    let core_has_tlast = shape.has_tlast;
    let aw = accel.ctrl_addr_bits();
    let mut m = ModuleBuilder::new(&accel.name)?;
    m.doc(format!(
        "Zynq wrapper around `{}`: AXI4-Stream in/out, AXI4-Lite control (Vitis HLS register map).",
        core.name()
    ));
    let ap_clk = m.input("ap_clk", 1)?;
    let ap_rst_n = m.input("ap_rst_n", 1)?;
    let in_tdata = m.input("s_axis_in_tdata", accel.in_stream_bits)?;
    let in_tvalid = m.input("s_axis_in_tvalid", 1)?;
    let in_tready = m.output("s_axis_in_tready", 1)?;
    let in_tlast = m.input("s_axis_in_tlast", 1)?;
    let out_tdata = m.output("m_axis_out_tdata", accel.out_stream_bits)?;
    let out_tvalid = m.output("m_axis_out_tvalid", 1)?;
    let out_tready = m.input("m_axis_out_tready", 1)?;
    let out_tlast = m.output("m_axis_out_tlast", 1)?;
    let out_tkeep = m.output("m_axis_out_tkeep", accel.out_stream_bits / 8)?;
    // Weight fetch through an AXI DataMover: command and status streams, and the weight data
    // passed straight to the core.
    let fetch_ports = match &accel.weight_fetch {
        Some(f) => Some(FetchPorts {
            cmd_tdata: m.output("m_axis_mm2s_cmd_tdata", f.cmd_bits())?,
            cmd_tvalid: m.output("m_axis_mm2s_cmd_tvalid", 1)?,
            cmd_tready: m.input("m_axis_mm2s_cmd_tready", 1)?,
            sts_tdata: m.input("s_axis_mm2s_sts_tdata", 8)?,
            sts_tvalid: m.input("s_axis_mm2s_sts_tvalid", 1)?,
            sts_tready: m.output("s_axis_mm2s_sts_tready", 1)?,
            w_tdata: m.input("s_axis_w_tdata", f.stream_bits)?,
            w_tvalid: m.input("s_axis_w_tvalid", 1)?,
            w_tready: m.output("s_axis_w_tready", 1)?,
            w_tlast: m.input("s_axis_w_tlast", 1)?,
        }),
        None => None,
    };
    let awaddr = m.input("s_axi_control_awaddr", aw)?;
    let awvalid = m.input("s_axi_control_awvalid", 1)?;
    let awready = m.output("s_axi_control_awready", 1)?;
    let wdata = m.input("s_axi_control_wdata", 32)?;
    let wstrb = m.input("s_axi_control_wstrb", 4)?;
    let wvalid = m.input("s_axi_control_wvalid", 1)?;
    let wready = m.output("s_axi_control_wready", 1)?;
    let bresp = m.output("s_axi_control_bresp", 2)?;
    let bvalid = m.output("s_axi_control_bvalid", 1)?;
    let bready = m.input("s_axi_control_bready", 1)?;
    let araddr = m.input("s_axi_control_araddr", aw)?;
    let arvalid = m.input("s_axi_control_arvalid", 1)?;
    let arready = m.output("s_axi_control_arready", 1)?;
    let rdata = m.output("s_axi_control_rdata", 32)?;
    let rresp = m.output("s_axi_control_rresp", 2)?;
    let rvalid = m.output("s_axi_control_rvalid", 1)?;
    let rready = m.input("s_axi_control_rready", 1)?;
    let interrupt = m.output("interrupt", 1)?;
    // Vivado's convention names this port `interrupt`, which Verilator flags as a C++ word.
    m.waive_lint("interrupt", "SYMRSVDWORD")?;
    interface_attributes(&mut m, accel.weight_fetch.is_some())?;
    // Registers are word-aligned: the two low address bits never select anything.
    m.allow_unused("s_axi_control_awaddr")?;
    m.allow_unused("s_axi_control_araddr")?;
    m.allow_unused("s_axi_control_wstrb")?;
    m.allow_unused("s_axi_control_wdata")?;
    if !core_has_tlast {
        m.comment(
            "The core frames its input by the command's shape, so input TLAST is not needed.",
        );
        m.allow_unused("s_axis_in_tlast")?;
    }

    let rst = m.wire_from("rst", ap_rst_n.e().logic_not())?;
    // Every output beat is whole: the AXI DMA's S2MM channel takes TKEEP (PG021), and without
    // the port Vivado ties it off only if it infers that right.
    m.assign_sig(&out_tkeep, Expr::ones(accel.out_stream_bits / 8))?;

    // --- the core ---
    let core_cmd_valid = m.wire("core_cmd_valid", 1)?;
    let core_cmd_ready = m.wire("core_cmd_ready", 1)?;
    let core_done_level = m.wire("core_done_level", 1)?;
    let mut arg_regs: Vec<Sig> = Vec::new();
    for a in &accel.args {
        arg_regs.push(m.reg(&format!("arg_{}", a.name), a.bits)?);
    }
    let mut conns: Vec<(String, Expr)> = vec![
        ("clk".into(), ap_clk.e()),
        ("rst".into(), rst.e()),
        ("s_axis_tdata".into(), in_tdata.e()),
        ("s_axis_tvalid".into(), in_tvalid.e()),
        ("s_axis_tready".into(), in_tready.e()),
        ("m_axis_tdata".into(), out_tdata.e()),
        ("m_axis_tvalid".into(), out_tvalid.e()),
        ("m_axis_tready".into(), out_tready.e()),
        ("m_axis_tlast".into(), out_tlast.e()),
        ("cmd_valid".into(), core_cmd_valid.e()),
        ("cmd_ready".into(), core_cmd_ready.e()),
        ("done".into(), core_done_level.e()),
    ];
    let mut core_error = None;
    for status in ["busy", "error"] {
        if core.port(status).is_some() {
            let w = m.wire(&format!("core_{status}"), 1)?;
            if status == "busy" {
                m.allow_unused(w.name())?;
            } else {
                core_error = Some(w.clone());
            }
            conns.push((status.into(), w.e()));
        }
    }
    if core_has_tlast {
        conns.push(("s_axis_tlast".into(), in_tlast.e()));
    }
    let mut stat_wires: Vec<Sig> = Vec::new();
    for st in &accel.status {
        let w = m.wire(&format!("core_stat_{}", st.name), st.bits)?;
        conns.push((format!("stat_{}", st.name), w.e()));
        stat_wires.push(w);
    }
    let fetch_wires = match (&accel.weight_fetch, &fetch_ports) {
        (Some(f), Some(fp)) => {
            let wreq_valid = m.wire("core_wreq_valid", 1)?;
            let wreq_ready = m.wire("core_wreq_ready", 1)?;
            let wreq_id = m.wire("core_wreq_id", f.id_bits)?;
            conns.push(("s_axis_w_tdata".into(), fp.w_tdata.e()));
            conns.push(("s_axis_w_tvalid".into(), fp.w_tvalid.e()));
            conns.push(("s_axis_w_tready".into(), fp.w_tready.e()));
            conns.push(("s_axis_w_tlast".into(), fp.w_tlast.e()));
            conns.push(("wreq_valid".into(), wreq_valid.e()));
            conns.push(("wreq_ready".into(), wreq_ready.e()));
            conns.push(("wreq_id".into(), wreq_id.e()));
            let base_lo = m.reg("weights_base_lo", 32)?;
            let base_hi = if f.addr_bits > 32 {
                Some(m.reg("weights_base_hi", f.addr_bits - 32)?)
            } else {
                None
            };
            let status = m.wire("fetch_status", 32)?;
            Some((wreq_valid, wreq_ready, wreq_id, base_lo, base_hi, status))
        }
        _ => None,
    };
    for (a, r) in accel.args.iter().zip(&arg_regs) {
        conns.push((format!("cmd_{}", a.name), r.e()));
    }
    let conn_refs: Vec<(&str, Expr)> = conns.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
    m.instance(core, "core", &[], &conn_refs)?;
    // The command's completion is `done` while a command runs. Not its rising edge: a core that
    // holds `done` until the next command and rejects that command at once (it raises `done`
    // again in the cycle after the accept) shows no edge, and the top would never finish.
    // `busy` is set by the accept, so a `done` still held from the previous command is ignored.
    let busy = m.reg("busy", 1)?;
    let core_done = m.wire_from("core_done", busy.e().logic_and(&core_done_level.e())?)?;

    // --- control state ---
    let ap_start = m.reg("ap_start", 1)?;
    let ap_done = m.reg("ap_done", 1)?;
    // ap_ready latched until ap_ctrl is read, as Vitis HLS does.
    let ap_ready = m.reg("ap_ready", 1)?;
    // The core's `error` at the end of the last command (cleared when a command starts).
    let cmd_error = m.reg("cmd_error", 1)?;
    let auto_restart = m.reg("auto_restart", 1)?;
    let gie = m.reg("gie", 1)?;
    let ier = m.reg("ier", 2)?;
    let isr = m.reg("isr", 2)?;
    let accepted = m.wire_from(
        "cmd_accepted",
        core_cmd_valid.e().logic_and(&core_cmd_ready.e())?,
    )?;
    m.assign_sig(
        &core_cmd_valid,
        ap_start.e().logic_and(&busy.e().logic_not())?,
    )?;
    m.assign_sig(&interrupt, gie.e().logic_and(&isr.e().red_or())?)?;
    let mut extra_modules = Vec::new();
    if let (Some(f), Some(fp), Some((wv, wr, wid, lo, hi, status))) =
        (&accel.weight_fetch, &fetch_ports, &fetch_wires)
    {
        let fetch_mod = super::fetch::module(&format!("{}_weight_fetch", accel.name), f)?;
        let base = match hi {
            Some(hi) => Expr::concat(&[hi.e(), lo.e()])?,
            None => lo.e(),
        };
        m.comment("Weight requests become DataMover commands; its status errors are latched.");
        m.instance(
            &fetch_mod,
            "weight_fetch",
            &[],
            &[
                ("clk", ap_clk.e()),
                ("rst", rst.e()),
                ("weights_base", base),
                // Each command starts with fresh error flags and count.
                ("clear", accepted.e()),
                ("wreq_valid", wv.e()),
                ("wreq_ready", wr.e()),
                ("wreq_id", wid.e()),
                ("m_axis_mm2s_cmd_tdata", fp.cmd_tdata.e()),
                ("m_axis_mm2s_cmd_tvalid", fp.cmd_tvalid.e()),
                ("m_axis_mm2s_cmd_tready", fp.cmd_tready.e()),
                ("s_axis_mm2s_sts_tdata", fp.sts_tdata.e()),
                ("s_axis_mm2s_sts_tvalid", fp.sts_tvalid.e()),
                ("s_axis_mm2s_sts_tready", fp.sts_tready.e()),
                ("status", status.e()),
            ],
        )?;
        extra_modules.push(fetch_mod);
    }

    // --- AXI4-Lite write channel: address, then data, then response ---
    let wstate = m.reg("wstate", 2)?;
    let waddr_q = m.reg("waddr_word_q", aw - 2)?;
    let (w_idle, w_data, w_resp) = (lit(0, 2)?, lit(1, 2)?, lit(2, 2)?);
    m.assign_sig(&awready, wstate.e().eq(&w_idle)?)?;
    m.assign_sig(&wready, wstate.e().eq(&w_data)?)?;
    m.assign_sig(&bvalid, wstate.e().eq(&w_resp)?)?;
    m.assign_sig(&bresp, Expr::zero(2))?;
    let write_fire = m.wire_from(
        "write_fire",
        wstate.e().eq(&w_data)?.logic_and(&wvalid.e())?,
    )?;
    let waddr_is = |off: u32| -> R<Expr> {
        write_fire
            .e()
            .logic_and(&waddr_q.e().eq(&lit(u64::from(off >> 2), aw - 2)?)?)
    };

    // --- AXI4-Lite read channel: address, then data ---
    let rstate = m.reg("rstate", 1)?;
    let rdata_q = m.reg("rdata_q", 32)?;
    m.assign_sig(&arready, rstate.e().logic_not())?;
    m.assign_sig(&rvalid, rstate.e())?;
    m.assign_sig(&rdata, rdata_q.e())?;
    m.assign_sig(&rresp, Expr::zero(2))?;
    let read_fire = m.wire_from("read_fire", rstate.e().logic_not().logic_and(&arvalid.e())?)?;
    let raddr_word = m.wire_from("raddr_word", araddr.slice(aw - 1, 2)?)?;
    let ctrl_word = Expr::concat(&[
        Expr::zero(24),
        auto_restart.e(),
        Expr::zero(3),
        ap_ready.e(),
        busy.e().logic_not(),
        ap_done.e(),
        ap_start.e(),
    ])?;
    let mut read_arms = vec![
        (
            vec![lit(u64::from(AP_CTRL_OFFSET >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, ctrl_word)?],
        ),
        (
            vec![lit(u64::from(GIE_OFFSET >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, gie.e().zext(32)?)?],
        ),
        (
            vec![lit(u64::from(IER_OFFSET >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, ier.e().zext(32)?)?],
        ),
        (
            vec![lit(u64::from(ISR_OFFSET >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, isr.e().zext(32)?)?],
        ),
    ];
    for (a, r) in accel.args.iter().zip(&arg_regs) {
        read_arms.push((
            vec![lit(u64::from(a.offset >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, r.e().zext(32)?)?],
        ));
    }
    for (st, w) in accel.status.iter().zip(&stat_wires) {
        read_arms.push((
            vec![lit(u64::from(st.offset >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, w.e().zext(32)?)?],
        ));
    }
    read_arms.push((
        vec![lit(u64::from(accel.cmd_status_offset() >> 2), aw - 2)?],
        vec![Stmt::set(&rdata_q, cmd_error.e().zext(32)?)?],
    ));
    // Writable registers besides ap_ctrl/GIE/IER/ISR: (offset, register).
    let mut writable: Vec<(u32, Sig)> = accel
        .args
        .iter()
        .zip(&arg_regs)
        .map(|(a, r)| (a.offset, r.clone()))
        .collect();
    if let (Some(f), Some((_, _, _, lo, hi, status))) = (&accel.weight_fetch, &fetch_wires) {
        writable.push((f.base_offset, lo.clone()));
        read_arms.push((
            vec![lit(u64::from(f.base_offset >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, lo.e())?],
        ));
        if let Some(hi) = hi {
            writable.push((f.base_offset + 4, hi.clone()));
            read_arms.push((
                vec![lit(u64::from((f.base_offset + 4) >> 2), aw - 2)?],
                vec![Stmt::set(&rdata_q, hi.e().zext(32)?)?],
            ));
        }
        read_arms.push((
            vec![lit(u64::from(f.status_offset >> 2), aw - 2)?],
            vec![Stmt::set(&rdata_q, status.e())?],
        ));
    }
    let read_ctrl = m.wire_from(
        "read_ctrl",
        read_fire.e().logic_and(
            &raddr_word
                .e()
                .eq(&lit(u64::from(AP_CTRL_OFFSET >> 2), aw - 2)?)?,
        )?,
    )?;

    // Argument writes honour the byte strobes.
    let mut arg_writes = Vec::new();
    for (offset, r) in &writable {
        let bits = r.width();
        let mut bytes = Vec::new();
        for byte in (0..bits.div_ceil(8)).rev() {
            let hi = ((byte + 1) * 8).min(bits) - 1;
            let lo = byte * 8;
            bytes.push(Expr::mux(
                &wstrb.bit(byte)?,
                &wdata.slice(hi, lo)?,
                &r.slice(hi, lo)?,
            )?);
        }
        arg_writes.push(Stmt::if_(
            waddr_is(*offset)?,
            vec![Stmt::set(r, Expr::concat(&bytes)?)?],
        )?);
    }

    let restart = auto_restart.e().logic_and(&core_done.e())?;
    let write_start = waddr_is(AP_CTRL_OFFSET)?
        .logic_and(&wstrb.bit(0)?)?
        .logic_and(&wdata.bit(0)?)?;
    let mut body = vec![
        // write channel
        Stmt::case(
            wstate.e(),
            vec![
                (
                    vec![w_idle.clone()],
                    vec![Stmt::if_(
                        awvalid.e(),
                        vec![
                            Stmt::set(&waddr_q, awaddr.slice(aw - 1, 2)?)?,
                            Stmt::set(&wstate, w_data.clone())?,
                        ],
                    )?],
                ),
                (
                    vec![w_data.clone()],
                    vec![Stmt::if_(
                        wvalid.e(),
                        vec![Stmt::set(&wstate, w_resp.clone())?],
                    )?],
                ),
                (
                    vec![w_resp.clone()],
                    vec![Stmt::if_(
                        bready.e(),
                        vec![Stmt::set(&wstate, w_idle.clone())?],
                    )?],
                ),
            ],
            vec![Stmt::set(&wstate, w_idle)?],
        )?,
        // read channel
        Stmt::if_else(
            read_fire.e(),
            vec![
                Stmt::set(&rstate, Expr::bool(true))?,
                Stmt::case(
                    raddr_word.e(),
                    read_arms,
                    vec![Stmt::set(&rdata_q, Expr::zero(32))?],
                )?,
            ],
            vec![Stmt::if_(
                rstate.e().logic_and(&rready.e())?,
                vec![Stmt::set(&rstate, Expr::bool(false))?],
            )?],
        )?,
        // ap_start: set by software (or auto-restart), cleared when the core takes the command
        Stmt::if_else(
            write_start.logic_or(&restart)?,
            vec![Stmt::set(&ap_start, Expr::bool(true))?],
            vec![Stmt::if_(
                accepted.e(),
                vec![Stmt::set(&ap_start, Expr::bool(false))?],
            )?],
        )?,
        Stmt::if_else(
            accepted.e(),
            vec![Stmt::set(&busy, Expr::bool(true))?],
            vec![Stmt::if_(
                core_done.e(),
                vec![Stmt::set(&busy, Expr::bool(false))?],
            )?],
        )?,
        // ap_ready: set when the core takes the command, cleared by reading ap_ctrl
        Stmt::if_else(
            accepted.e(),
            vec![Stmt::set(&ap_ready, Expr::bool(true))?],
            vec![Stmt::if_(
                read_ctrl.e(),
                vec![Stmt::set(&ap_ready, Expr::bool(false))?],
            )?],
        )?,
        Stmt::if_else(
            accepted.e(),
            vec![Stmt::set(&cmd_error, Expr::bool(false))?],
            vec![Stmt::if_(
                core_done.e(),
                vec![Stmt::set(
                    &cmd_error,
                    core_error.as_ref().map_or(Expr::bool(false), Sig::e),
                )?],
            )?],
        )?,
        // ap_done: set by the core, cleared by reading ap_ctrl (set wins a tie)
        Stmt::if_else(
            core_done.e(),
            vec![Stmt::set(&ap_done, Expr::bool(true))?],
            vec![Stmt::if_(
                read_ctrl.e(),
                vec![Stmt::set(&ap_done, Expr::bool(false))?],
            )?],
        )?,
        Stmt::if_(
            waddr_is(AP_CTRL_OFFSET)?.logic_and(&wstrb.bit(0)?)?,
            vec![Stmt::set(&auto_restart, wdata.bit(AP_AUTO_RESTART_BIT)?)?],
        )?,
        Stmt::if_(
            waddr_is(GIE_OFFSET)?.logic_and(&wstrb.bit(0)?)?,
            vec![Stmt::set(&gie, wdata.bit(0)?)?],
        )?,
        Stmt::if_(
            waddr_is(IER_OFFSET)?.logic_and(&wstrb.bit(0)?)?,
            vec![Stmt::set(&ier, wdata.slice(1, 0)?)?],
        )?,
        // ISR: events set their bit when enabled; software toggles bits by writing ones.
        Stmt::set(
            &isr,
            isr.e()
                .xor(&Expr::mux(
                    &waddr_is(ISR_OFFSET)?.logic_and(&wstrb.bit(0)?)?,
                    &wdata.slice(1, 0)?,
                    &Expr::zero(2),
                )?)?
                .or(&Expr::concat(&[
                    accepted.e().logic_and(&ier.bit(1)?)?,
                    core_done.e().logic_and(&ier.bit(0)?)?,
                ])?)?,
        )?,
    ];
    body.extend(arg_writes);
    let mut on_reset = vec![
        Stmt::set(&wstate, Expr::zero(2))?,
        Stmt::set(&rstate, Expr::bool(false))?,
        Stmt::set(&ap_start, Expr::bool(false))?,
        Stmt::set(&ap_done, Expr::bool(false))?,
        Stmt::set(&busy, Expr::bool(false))?,
        Stmt::set(&auto_restart, Expr::bool(false))?,
        Stmt::set(&gie, Expr::bool(false))?,
        Stmt::set(&ier, Expr::zero(2))?,
        Stmt::set(&isr, Expr::zero(2))?,
        Stmt::set(&waddr_q, Expr::zero(aw - 2))?,
        Stmt::set(&rdata_q, Expr::zero(32))?,
        Stmt::set(&ap_ready, Expr::bool(false))?,
        Stmt::set(&cmd_error, Expr::bool(false))?,
    ];
    for (_, r) in &writable {
        on_reset.push(Stmt::set(r, Expr::zero(r.width()))?);
    }
    m.clocked(&ap_clk, vec![Stmt::if_else(rst.e(), on_reset, body)?])?;
    let key = (
        core.name(),
        accel.name.as_str(),
        accel
            .args
            .iter()
            .map(|a| (&a.name, a.offset, a.bits))
            .collect::<Vec<_>>(),
    );
    // The plain key keeps the headers of wrappers without status or fetch as they were.
    let mut design = if accel.status.is_empty() && accel.weight_fetch.is_none() {
        Design::new(m.finish(), &key)
    } else {
        Design::new(m.finish(), &(key, &accel.status, &accel.weight_fetch))
    };
    for extra in extra_modules {
        design.add(extra)?;
    }
    design.absorb(core_design.clone())?;
    design.check_complete()?;
    Ok(design)
}

/// The interface of the wrapped top for a core that follows the contract: one 32-bit register
/// per `cmd_<arg>` input, in the core's port order from 0x10, and the core's stream widths.
/// `max_transfer_bytes` sizes the DMA's length register.
pub fn interface_for_core(
    core: &Module,
    name: &str,
    clock_mhz: f64,
    max_transfer_bytes: u64,
) -> R<AccelInterface> {
    let width = |port: &str| {
        core.port(port).map(|p| p.width).ok_or_else(|| {
            HdlError::Misuse(format!(
                "core `{}` has no port `{port}` (see the core contract in zynq::wrapper)",
                core.name()
            ))
        })
    };
    let args: Vec<(String, u32)> = core
        .ports()
        .iter()
        .filter(|p| p.dir == Dir::Input && p.name.starts_with("cmd_") && p.name != "cmd_valid")
        .map(|p| (p.name["cmd_".len()..].to_string(), p.width))
        .collect();
    if let Some((a, w)) = args.iter().find(|(_, w)| *w > 32) {
        return Err(HdlError::Misuse(format!(
            "core `{}`: argument `cmd_{a}` is {w} bits; registers hold at most 32",
            core.name()
        )));
    }
    let docs: Vec<String> = args
        .iter()
        .map(|(a, w)| format!("command argument `{a}` ({w} bits)"))
        .collect();
    let arg_refs: Vec<(&str, u32, &str)> = args
        .iter()
        .zip(&docs)
        .map(|((a, w), d)| (a.as_str(), *w, d.as_str()))
        .collect();
    let mut accel = AccelInterface::with_sequential_args(
        &accelforge_hdl::ident::sanitize(name),
        width("s_axis_tdata")?,
        width("m_axis_tdata")?,
        &arg_refs,
        clock_mhz,
        max_transfer_bytes,
    );
    // Status outputs follow the arguments, in port order.
    let mut next = FIRST_ARG_OFFSET + ARG_STRIDE * accel.args.len() as u32;
    for p in core
        .ports()
        .iter()
        .filter(|p| p.dir == Dir::Output && p.name.starts_with("stat_"))
    {
        let st = &p.name["stat_".len()..];
        if p.width > 32 {
            return Err(HdlError::Misuse(format!(
                "core `{}`: status `{}` is {} bits; registers hold at most 32",
                core.name(),
                p.name,
                p.width
            )));
        }
        accel.status.push(StatusReg {
            name: st.to_string(),
            offset: next,
            bits: p.width,
            doc: format!("core status `{st}` ({} bits, read-only)", p.width),
        });
        next += ARG_STRIDE;
    }
    Ok(accel)
}
