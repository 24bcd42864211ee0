//! The weight fetcher the wrapper puts between a core's weight request port and an AXI
//! DataMover (PG022): each `wreq` handshake becomes one MM2S command for the whole segment, and
//! the DataMover's status stream is watched for errors. The data itself flows from the
//! DataMover's `M_AXIS_MM2S` straight into the core's `s_axis_w`; the fetcher never touches it.
//!
//! Command word (PG022, "Command Interface"), most significant first: 4 reserved bits, a 4-bit
//! TAG (the low bits of the segment id, echoed in the status), the start address (32 or 64
//! bits), DRR = 0, EOF = 1 (TLAST on the segment's last beat), DSA = 0, TYPE = 1 (INCR), and a
//! 23-bit BTT. Status word: bits 3:0 TAG, 4 INTERR, 5 DECERR, 6 SLVERR, 7 OKAY.
//!
//! One command is held at a time: the core asks for the next segment only after taking every
//! beat of the previous one, so a deeper queue would never fill.

use accelforge_hdl::{Expr, HdlError, Module, ModuleBuilder, Stmt};

use super::accel::{
    FETCH_BAD_ID_BIT, FETCH_CMD_PENDING_BIT, FETCH_COUNT_LSB, FETCH_DECERR_BIT, FETCH_ERROR_BIT,
    FETCH_INTERR_BIT, FETCH_LAST_TAG_LSB, FETCH_SLVERR_BIT, WeightFetch,
};

type R<T> = Result<T, HdlError>;

fn lit(v: u64, w: u32) -> R<Expr> {
    Expr::lit(u128::from(v), w)
}

/// Width of the BTT field in the command word (fixed by PG022 whatever `c_mm2s_btt_used` is).
const BTT_FIELD_BITS: u32 = 23;

/// The fetcher module `<name>` for `fetch`. Ports: `clk`, `rst`, `weights_base`, `clear`
/// (a pulse when the core starts a command: resets the error flags and the count),
/// `wreq_valid/wreq_ready/wreq_id`, `m_axis_mm2s_cmd_*`, `s_axis_mm2s_sts_*`, and `status`
/// (the fetch status register's value, bit layout in [`super::accel`]).
pub fn module(name: &str, fetch: &WeightFetch) -> R<Module> {
    let aw = fetch.addr_bits;
    let idw = fetch.id_bits;
    let mut m = ModuleBuilder::new(name)?;
    m.doc(
        "Weight fetch: one AXI DataMover MM2S command per weight request; status errors latched.",
    );
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let base = m.input("weights_base", aw)?;
    let clear = m.input("clear", 1)?;
    let wreq_valid = m.input("wreq_valid", 1)?;
    let wreq_ready = m.output("wreq_ready", 1)?;
    let wreq_id = m.input("wreq_id", idw)?;
    let cmd_tdata = m.output("m_axis_mm2s_cmd_tdata", fetch.cmd_bits())?;
    let cmd_tvalid = m.output("m_axis_mm2s_cmd_tvalid", 1)?;
    let cmd_tready = m.input("m_axis_mm2s_cmd_tready", 1)?;
    let sts_tdata = m.input("s_axis_mm2s_sts_tdata", 8)?;
    let sts_tvalid = m.input("s_axis_mm2s_sts_tvalid", 1)?;
    let sts_tready = m.output("s_axis_mm2s_sts_tready", 1)?;
    let status = m.output("status", 32)?;
    // OKAY (bit 7) is the complement of the error bits; it carries nothing new.
    m.allow_unused(sts_tdata.name())?;

    // Segment table: the id selects the image offset and the byte count. An id the table does
    // not know sends no command (BTT = 0 would put the DataMover in INTERR until reset); the
    // request is consumed and flagged in the status instead.
    let seg_off = m.reg("seg_offset", aw)?;
    let seg_btt = m.reg("seg_btt", BTT_FIELD_BITS)?;
    let seg_known = m.reg("seg_known", 1)?;
    let arms = fetch
        .segments
        .iter()
        .map(|s| {
            Ok((
                vec![lit(u64::from(s.id), idw)?],
                vec![
                    Stmt::set(&seg_off, lit(s.offset, aw)?)?,
                    Stmt::set(&seg_btt, lit(s.bytes, BTT_FIELD_BITS)?)?,
                    Stmt::set(&seg_known, Expr::bool(true))?,
                ],
            ))
        })
        .collect::<R<Vec<_>>>()?;
    m.comb(vec![
        Stmt::set(&seg_off, Expr::zero(aw))?,
        Stmt::set(&seg_btt, Expr::zero(BTT_FIELD_BITS))?,
        Stmt::set(&seg_known, Expr::bool(false))?,
        Stmt::case(wreq_id.e(), arms, vec![])?,
    ])?;
    let tag = if idw >= 4 {
        wreq_id.slice(3, 0)?
    } else {
        wreq_id.e().zext(4)?
    };
    let addr = m.wire_from("seg_addr", base.e().add(&seg_off.e())?)?;
    let word = Expr::concat(&[
        Expr::zero(4), // reserved
        tag,
        addr.e(),
        Expr::bool(false), // DRR: no realignment request
        Expr::bool(true),  // EOF: TLAST on the segment's last beat
        Expr::zero(6),     // DSA: no stream alignment (no DRE)
        Expr::bool(true),  // TYPE: INCR
        seg_btt.e(),
    ])?;

    let cmd_valid_q = m.reg("cmd_valid_q", 1)?;
    let cmd_q = m.reg("cmd_q", fetch.cmd_bits())?;
    m.assign_sig(&cmd_tvalid, cmd_valid_q.e())?;
    m.assign_sig(&cmd_tdata, cmd_q.e())?;
    m.assign_sig(&wreq_ready, cmd_valid_q.e().logic_not())?;
    m.assign_sig(&sts_tready, Expr::bool(true))?;
    let take = m.wire_from(
        "take_request",
        wreq_valid.e().logic_and(&cmd_valid_q.e().logic_not())?,
    )?;

    let interr = m.reg("interr_q", 1)?;
    let decerr = m.reg("decerr_q", 1)?;
    let slverr = m.reg("slverr_q", 1)?;
    let bad_id = m.reg("bad_id_q", 1)?;
    let last_tag = m.reg("last_tag_q", 4)?;
    let count = m.reg("done_count_q", 16)?;
    let any_err = interr
        .e()
        .logic_or(&decerr.e())?
        .logic_or(&slverr.e())?
        .logic_or(&bad_id.e())?;
    // Assembled from the bit constants so the register documentation cannot drift.
    let mut bits: Vec<(u32, Expr)> = vec![
        (FETCH_ERROR_BIT, any_err),
        (FETCH_INTERR_BIT, interr.e()),
        (FETCH_DECERR_BIT, decerr.e()),
        (FETCH_SLVERR_BIT, slverr.e()),
        (FETCH_CMD_PENDING_BIT, cmd_valid_q.e()),
        (FETCH_BAD_ID_BIT, bad_id.e()),
    ];
    for i in 0..4 {
        bits.push((FETCH_LAST_TAG_LSB + i, last_tag.bit(i)?));
    }
    for i in 0..16 {
        bits.push((FETCH_COUNT_LSB + i, count.bit(i)?));
    }
    let mut parts = Vec::new();
    for b in (0..32).rev() {
        parts.push(match bits.iter().find(|(k, _)| *k == b) {
            Some((_, e)) => e.clone(),
            None => Expr::bool(false),
        });
    }
    m.assign_sig(&status, Expr::concat(&parts)?)?;

    let sticky = |r: &accelforge_hdl::Sig, bit: u32| -> R<Stmt> {
        Stmt::set(r, r.e().logic_or(&sts_tdata.bit(bit)?)?)
    };
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&cmd_valid_q, Expr::bool(false))?,
                Stmt::set(&cmd_q, Expr::zero(fetch.cmd_bits()))?,
                Stmt::set(&interr, Expr::bool(false))?,
                Stmt::set(&decerr, Expr::bool(false))?,
                Stmt::set(&slverr, Expr::bool(false))?,
                Stmt::set(&bad_id, Expr::bool(false))?,
                Stmt::set(&last_tag, Expr::zero(4))?,
                Stmt::set(&count, Expr::zero(16))?,
            ],
            vec![
                Stmt::if_else(
                    take.e(),
                    vec![
                        Stmt::set(&cmd_valid_q, seg_known.e())?,
                        Stmt::set(&cmd_q, word)?,
                    ],
                    vec![Stmt::if_(
                        cmd_tready.e(),
                        vec![Stmt::set(&cmd_valid_q, Expr::bool(false))?],
                    )?],
                )?,
                Stmt::if_else(
                    clear.e(),
                    vec![
                        Stmt::set(&interr, Expr::bool(false))?,
                        Stmt::set(&decerr, Expr::bool(false))?,
                        Stmt::set(&slverr, Expr::bool(false))?,
                        Stmt::set(&bad_id, Expr::bool(false))?,
                        Stmt::set(&last_tag, Expr::zero(4))?,
                        Stmt::set(&count, Expr::zero(16))?,
                    ],
                    vec![
                        Stmt::if_(
                            take.e().logic_and(&seg_known.e().logic_not())?,
                            vec![Stmt::set(&bad_id, Expr::bool(true))?],
                        )?,
                        Stmt::if_(
                            sts_tvalid.e(),
                            vec![
                                sticky(&interr, 4)?,
                                sticky(&decerr, 5)?,
                                sticky(&slverr, 6)?,
                                Stmt::set(&last_tag, sts_tdata.slice(3, 0)?)?,
                                Stmt::set(&count, count.e().add(&lit(1, 16)?)?)?,
                            ],
                        )?,
                    ],
                )?,
            ],
        )?],
    )?;
    Ok(m.finish())
}
