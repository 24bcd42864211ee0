//! A board bring-up core: it adds a constant to each word of a stream. Small enough to build in
//! minutes, it proves the whole path — AXI4-Lite arguments, start/done, DMA in and out, TLAST —
//! before a real accelerator is put on the board; the test suite also uses it to check the
//! wrapper's protocol in Verilator.

use accelforge_hdl::{Design, Expr, HdlError, ModuleBuilder, Stmt};

use super::accel::{AccelInterface, RegArg};

/// The core: command arguments `count` (16 bits, words to process) and `addend` (stream width,
/// at most 32 bits). Output word i is `input word i + addend` (wrapping), TLAST on the last.
pub fn core(stream_bits: u32) -> Result<Design, HdlError> {
    if !(8..=32).contains(&stream_bits) {
        return Err(HdlError::Misuse(format!(
            "loopback: stream width {stream_bits} must be 8..=32 bits"
        )));
    }
    let w = stream_bits;
    let mut m = ModuleBuilder::new(&format!("af_loopback_w{w}"))?;
    m.doc("Bring-up core: out[i] = in[i] + addend for `count` words.");
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let s_tdata = m.input("s_axis_tdata", w)?;
    let s_tvalid = m.input("s_axis_tvalid", 1)?;
    let s_tready = m.output("s_axis_tready", 1)?;
    let m_tdata = m.output("m_axis_tdata", w)?;
    let m_tvalid = m.output("m_axis_tvalid", 1)?;
    let m_tready = m.input("m_axis_tready", 1)?;
    let m_tlast = m.output("m_axis_tlast", 1)?;
    let cmd_valid = m.input("cmd_valid", 1)?;
    let cmd_ready = m.output("cmd_ready", 1)?;
    let done = m.output("done", 1)?;
    let cmd_count = m.input("cmd_count", 16)?;
    let cmd_addend = m.input("cmd_addend", w)?;

    let running = m.reg("running", 1)?;
    let left = m.reg("words_left", 16)?;
    let addend = m.reg("addend", w)?;
    let out_data = m.reg("out_data", w)?;
    let out_valid = m.reg("out_valid", 1)?;
    let out_last = m.reg("out_last", 1)?;
    let done_q = m.reg("done_q", 1)?;

    m.assign_sig(&cmd_ready, running.e().logic_not())?;
    let out_free = m.wire_from(
        "out_free",
        out_valid.e().logic_not().logic_or(&m_tready.e())?,
    )?;
    let take = m.wire_from(
        "take_input",
        running
            .e()
            .logic_and(&left.e().ne(&Expr::zero(16))?)?
            .logic_and(&out_free.e())?,
    )?;
    m.assign_sig(&s_tready, take.e())?;
    let in_fire = m.wire_from("in_fire", take.e().logic_and(&s_tvalid.e())?)?;
    let out_fire = m.wire_from("out_fire", out_valid.e().logic_and(&m_tready.e())?)?;
    m.assign_sig(&m_tdata, out_data.e())?;
    m.assign_sig(&m_tvalid, out_valid.e())?;
    m.assign_sig(&m_tlast, out_last.e())?;
    m.assign_sig(&done, done_q.e())?;
    let one = Expr::lit(1, 16)?;
    let finishing = out_fire.e().logic_and(&out_last.e())?;
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&running, Expr::bool(false))?,
                Stmt::set(&left, Expr::zero(16))?,
                Stmt::set(&out_valid, Expr::bool(false))?,
                Stmt::set(&out_last, Expr::bool(false))?,
                Stmt::set(&done_q, Expr::bool(false))?,
            ],
            vec![
                Stmt::set(&done_q, finishing.clone())?,
                // A zero-length command finishes at once, with no output.
                Stmt::if_else(
                    cmd_valid.e().logic_and(&running.e().logic_not())?,
                    vec![
                        Stmt::set(&running, cmd_count.e().ne(&Expr::zero(16))?)?,
                        Stmt::set(&done_q, cmd_count.e().eq(&Expr::zero(16))?)?,
                        Stmt::set(&left, cmd_count.e())?,
                        Stmt::set(&addend, cmd_addend.e())?,
                    ],
                    vec![Stmt::if_(
                        finishing,
                        vec![Stmt::set(&running, Expr::bool(false))?],
                    )?],
                )?,
                Stmt::if_else(
                    in_fire.e(),
                    vec![
                        Stmt::set(&out_data, s_tdata.e().add(&addend.e())?)?,
                        Stmt::set(&out_valid, Expr::bool(true))?,
                        Stmt::set(&out_last, left.e().eq(&one)?)?,
                        Stmt::set(&left, left.e().sub(&one)?)?,
                    ],
                    vec![Stmt::if_(
                        out_fire.e(),
                        vec![Stmt::set(&out_valid, Expr::bool(false))?],
                    )?],
                )?,
            ],
        )?],
    )?;
    Ok(Design::new(m.finish(), &("loopback", w)))
}

/// The matching AXI interface: arguments `count` at 0x10 and `addend` at 0x14.
pub fn interface(name: &str, stream_bits: u32, clock_mhz: f64) -> AccelInterface {
    AccelInterface {
        name: name.to_string(),
        in_stream_bits: stream_bits,
        out_stream_bits: stream_bits,
        args: vec![
            RegArg {
                name: "count".into(),
                offset: 0x10,
                bits: 16,
                doc: "words to process".into(),
                range: None,
            },
            RegArg {
                name: "addend".into(),
                offset: 0x14,
                bits: stream_bits,
                doc: "added to every word".into(),
                range: None,
            },
        ],
        clock_mhz,
        max_transfer_bytes: 65_535 * u64::from(stream_bits / 8),
        status: Vec::new(),
        weight_fetch: None,
        fixed_batch: None,
    }
}
