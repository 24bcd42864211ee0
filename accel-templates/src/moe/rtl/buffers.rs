//! The activation buffers and the token stream in: `max(lanes, simd)` one-element banks each of
//! tokens (x, written by the input load), hidden values (h), logits (l) and, per gate slot,
//! expert outputs (y). Element `i` of a vector sits in bank `i mod nb`, row `base + i / nb`
//! (`params::BufferLayout`); stage 3 of the MAC array writes `lanes` banks at once.

use accelforge_hdl::{Expr, ModuleBuilder, Sig, Stmt};

use super::super::Result;
use super::mac::{self, Issue, Results};
use super::util::{and, eqc, fits, if_, if_else, inc, ram, sdp, set, ul, z};
use super::{Control, Core, Dims, GATE, LOAD, Ports};

/// The input load's counters: token `in_t`, element `in_d`.
pub(super) struct Input {
    pub(super) in_t: Sig,
    pub(super) in_d: Sig,
    in_beat: Sig,
    in_last_d: Sig,
    in_last: Sig,
    in_elem: Sig,
}

pub(super) fn input(m: &mut ModuleBuilder, d: &Dims, io: &Ports, ctl: &Control) -> Result<Input> {
    let in_t = m.reg("in_t", d.tw)?;
    let in_d = m.reg("in_d", d.dw)?;
    let in_beat = m.wire_from("in_beat", and(&ctl.ph(LOAD)?, &io.s_tvalid.e())?)?;
    m.assign_sig(&io.s_tready, ctl.ph(LOAD)?)?;
    let in_last_d = m.wire_from("in_last_d", eqc(&in_d.e(), u64::from(d.dm - 1))?)?;
    let in_last = m.wire_from("in_last", and(&in_last_d.e(), &eqc(&in_t.e(), d.t_n - 1)?)?)?;
    let in_elem = m.wire_from("in_elem", io.s_tdata.slice(d.w_in - 1, 0)?.as_signed())?;
    Ok(Input {
        in_t,
        in_d,
        in_beat,
        in_last_d,
        in_last,
        in_elem,
    })
}

/// The banks' registered read data and the walkers that address them: routing reads token
/// `r_t`'s logits from row base `r_lbase`, the output walks token `o_t`, element `o_d` of the
/// y buffers, row `o_row`.
pub(super) struct Banks {
    pub(super) in_row: Sig,
    pub(super) res: Results,
    pub(super) r_t: Sig,
    pub(super) r_i: Sig,
    pub(super) o_t: Sig,
    pub(super) o_d: Sig,
    pub(super) r_lbase: Sig,
    pub(super) r_xbase: Sig,
    pub(super) o_row: Sig,
    pub(super) xq: Vec<Sig>,
    pub(super) hq: Vec<Sig>,
    pub(super) lq: Vec<Sig>,
    pub(super) yq: Vec<Vec<Sig>>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn banks(
    m: &mut ModuleBuilder,
    p: &super::MoeParams,
    d: &Dims,
    io: &Ports,
    inp: &Input,
    cr: &mac::Registers,
    cs: &Issue,
) -> Result<Banks> {
    let Dims {
        lg_nbl,
        lg_nb,
        nl,
        nb,
        k,
        xaw,
        haw,
        laww,
        tw,
        ebw,
        dw,
        ..
    } = *d;
    // Output-stage fields (the tile is stable until the drain ends).
    let out_grp = if lg_nbl > 0 {
        Some(m.wire_from("out_grp", cr.c_tile.slice(lg_nbl - 1, 0)?)?)
    } else {
        None
    };
    // Row offset of the tile's outputs in a position's rows: tile · lanes / nb.
    let tile_row =
        |m: &mut ModuleBuilder, w: u32| -> Result<Expr> { fits(m, &cr.c_tile, lg_nbl, w) };
    let bank_we = |b: u32, base: &Expr| -> Result<Expr> {
        match &out_grp {
            Some(g) => and(base, &eqc(&g.e(), u64::from(b / nl))?),
            None => Ok(base.clone()),
        }
    };
    let v3_gate = m.wire_from("v3_gate", and(&cs.v3.e(), &cr.c_gate.e())?)?;
    let v3_l1 = m.wire_from(
        "v3_l1",
        and(
            &cs.v3.e(),
            &and(&cr.c_gate.e().logic_not(), &cr.c_layer2.e().logic_not())?,
        )?,
    )?;
    let v3_l2 = m.wire_from("v3_l2", and(&cs.v3.e(), &cs.c_l2.e())?)?;

    // Input rows written by the load phase: tokens arrive in order, so the row simply counts
    // every nb-th beat (d_model is a multiple of nb, so a token's rows follow its predecessor's).
    let in_row = m.reg("in_row", xaw)?;

    // Results of stage 3 (declared now, driven after the MAC array).
    let res = mac::results(m, p, d)?;

    // Routing and output read addresses (declared here, driven by their stages).
    let r_t = m.reg("r_t", tw)?;
    let r_i = m.reg("r_i", ebw)?;
    let o_t = m.reg("o_t", tw)?;
    let o_d = m.reg("o_d", dw)?;
    // Routing reads token r_t's logits from its row base (advanced by ceil(E/nb) per token)
    // and records the token's x row base (advanced by d_model/nb) in the list.
    let r_lbase = m.reg("r_lbase", laww)?;
    let r_xbase = m.reg("r_xbase", xaw)?;
    let l_raddr = r_lbase.e().add(&fits(m, &r_i, lg_nb, laww)?)?;
    // The output walks the y rows in order, like the input.
    let o_row = m.reg("o_row", xaw)?;
    let o_raddr = o_row.e();
    // Stage-3 write rows (the tile's row offset plus the position's base).
    let tr = tile_row(m, haw)?;
    let h_wrow = fits(m, &cs.w_base, 0, haw)?.add(&tr)?;
    let tr = tile_row(m, laww)?;
    let l_wrow = fits(m, &cs.w_base, 0, laww)?.add(&tr)?;
    let tr = tile_row(m, xaw)?;
    let y_wrow = cs.yb3.e().add(&tr)?;
    let mut bufs = Banks {
        in_row,
        res,
        r_t,
        r_i,
        o_t,
        o_d,
        r_lbase,
        r_xbase,
        o_row,
        xq: Vec::new(),
        hq: Vec::new(),
        lq: Vec::new(),
        yq: vec![Vec::new(); k as usize],
    };
    for b in 0..nb {
        let xr = ram(m, d.plan.memory(&format!("xbuf_{b}"))?, true)?;
        let bank_hit = if lg_nb > 0 {
            eqc(&inp.in_d.slice(lg_nb - 1, 0)?, u64::from(b))?
        } else {
            Expr::bool(true)
        };
        bufs.xq.push(sdp(
            m,
            &io.clk,
            &xr,
            (
                and(&inp.in_beat.e(), &bank_hit)?,
                bufs.in_row.e(),
                inp.in_elem.e(),
            ),
            cs.x_row.clone(),
            &format!("xq{b}"),
        )?);
        let hr = ram(m, d.plan.memory(&format!("hbuf_{b}"))?, true)?;
        bufs.hq.push(sdp(
            m,
            &io.clk,
            &hr,
            (
                bank_we(b, &v3_l1.e())?,
                h_wrow.clone(),
                bufs.res.hidden[(b % nl) as usize].e(),
            ),
            cs.h_row.clone(),
            &format!("hq{b}"),
        )?);
        let lr = ram(m, d.plan.memory(&format!("lbuf_{b}"))?, true)?;
        bufs.lq.push(sdp(
            m,
            &io.clk,
            &lr,
            (
                bank_we(b, &v3_gate.e())?,
                l_wrow.clone(),
                bufs.res.logit[(b % nl) as usize].e(),
            ),
            l_raddr.clone(),
            &format!("lq{b}"),
        )?);
        for s in 0..k {
            let yr = ram(m, d.plan.memory(&format!("ybuf{s}_{b}"))?, true)?;
            let slot_hit = if k == 1 {
                Expr::bool(true)
            } else {
                eqc(&cs.es3.e(), u64::from(s))?
            };
            bufs.yq[s as usize].push(sdp(
                m,
                &io.clk,
                &yr,
                (
                    bank_we(b, &and(&v3_l2.e(), &slot_hit)?)?,
                    y_wrow.clone(),
                    bufs.res.y[(b % nl) as usize].e(),
                ),
                o_raddr.clone(),
                &format!("yq{s}_{b}"),
            )?);
        }
    }
    Ok(bufs)
}

/// Whether element `d` is in the last bank of its row (every element when nb = 1).
pub(super) fn bank_last(dims: &Dims, d: &Sig) -> Result<Expr> {
    if dims.lg_nb == 0 {
        Ok(Expr::bool(true))
    } else {
        eqc(&d.slice(dims.lg_nb - 1, 0)?, u64::from(dims.nb - 1))
    }
}

/// The input load's clocked statements: count elements and tokens, advance the x row once per
/// `nb` elements, go to the gate phase after the last element.
pub(super) fn input_seq(c: &Core) -> Result<Vec<Stmt>> {
    let (d, ctl, inp, bufs) = (&c.d, &c.ctl, &c.inp, &c.bufs);
    Ok(vec![if_(
        inp.in_beat.e(),
        vec![
            if_else(
                inp.in_last_d.e(),
                vec![z(&inp.in_d)?, set(&inp.in_t, inc(&inp.in_t)?)?],
                vec![set(&inp.in_d, inc(&inp.in_d)?)?],
            )?,
            if_(
                bank_last(d, &inp.in_d)?,
                vec![set(&bufs.in_row, inc(&bufs.in_row)?)?],
            )?,
            if_(inp.in_last.e(), vec![set(&ctl.phase, ul(GATE, 3)?)?])?,
        ],
    )?])
}
