//! The add & norm unit as RTL: one module, `layernorm_core`.
//!
//! One command: `d / lanes` beats of γ and β (kept in a small memory for the whole command),
//! then for every token `d / lanes` beats of `x` (and `r`). Per token:
//! - **LOAD**: each beat's `s = sat(x + r)` (or `x`) is written to a row buffer while `S1 += Σ s`
//!   and `S2 += Σ s²` accumulate one beat behind;
//! - **NORM**, four cycles: the last beat's sums land; `U = d·S2 − S1² + E`; the even
//!   normalisation `U = m·2^e` (a priority encoder over bit pairs), the table index and the
//!   rsqrt table (a case statement in LUTs); one more cycle to start the output;
//! - **OUT**: the row is read back, `lanes` elements per cycle, through a three-stage pipeline
//!   (`a = d·s − S1`; `z = a·rsqrt >>> e/2`; `y = sat(round(z·γ) + β)`) that stalls as a whole
//!   under output back-pressure. The next token's LOAD starts after the row's last beat left.
//!
//! The arithmetic is the golden model's ([`super::golden`]), bit for bit; the widths come from
//! [`Resolved`]'s bounds, so nothing wraps. The cycle count is [`super::cost::cycles`].

use accelforge_hdl::helpers::{
    clear as z, elem_signed as elem, eq_c, goto as to_st, if_, if_else, inc, lit,
    pack_lsb_first as pack, set, state_is as st_is,
};
use accelforge_hdl::{Design, Expr, LValue, ModuleBuilder, Sig, Stmt};

use super::{Resolved, Result};
use crate::attention::params::{bits_for, slot_bytes};

/// Name of the top module.
pub const TOP: &str = "layernorm_core";

const IDLE: u64 = 0;
const PARAM: u64 = 1;
const LOAD: u64 = 2;
const NORM: u64 = 3;
const OUT: u64 = 4;
const ST_BITS: u32 = 3;

/// Cycles in NORM (sums land, `U`, normalisation, table).
pub const NORM_CYCLES: u64 = 4;
/// Cycles from issuing a row word's read to its output beat being valid.
pub const OUT_LATENCY: u64 = 4;

/// Bits of one input slot (x, r, γ or β).
pub fn in_slot_bits(r: &Resolved) -> u32 {
    let w = r.tin.width().max(r.tgamma.width()).max(r.tbeta.width());
    slot_bytes(w) * 8
}

/// Bits of one output slot (y or s).
pub fn out_slot_bits(r: &Resolved) -> u32 {
    slot_bytes(r.tout.width().max(r.tin.width())) * 8
}

/// Input beat width: `lanes` slots of x (or γ), then `lanes` slots of r (or β).
pub fn in_bits(r: &Resolved) -> u32 {
    2 * r.p.lanes * in_slot_bits(r)
}

/// Output beat width: `lanes` slots of y, then (with a residual) `lanes` slots of s.
pub fn out_bits(r: &Resolved) -> u32 {
    let halves = if r.p.residual { 2 } else { 1 };
    halves * r.p.lanes * out_slot_bits(r)
}

/// The multipliers that take DSPs, `(a bits, b bits, count)`: per lane `s²`, `a·rsqrt`,
/// `z·γ` and `d·s`; once `S1²` and `d·S2`. A product by `d` is a shift when `d` is a power of
/// two (Yosys maps no DSP to it).
pub fn multipliers(r: &Resolved) -> Vec<(u32, u32, u64)> {
    let (l, win) = (u64::from(r.p.lanes), r.tin.width());
    let dl = bits_for(u64::from(r.p.d) + 1) + 1;
    let mut v = vec![
        (win, win, l),
        (r.a_bits(), r.p.rsqrt_frac_bits + 2, l),
        (r.z_bits(), r.tgamma.width(), l),
        (r.s1_bits(), r.s1_bits(), 1),
    ];
    if !r.p.d.is_power_of_two() {
        v.push((win, dl, l));
        v.push((r.s2_bits(), dl, 1));
    }
    v
}

/// The memories, `(name, width, words)`: the γ/β store and the row buffer.
pub fn memories(r: &Resolved) -> Vec<(&'static str, u32, u32)> {
    let l = r.p.lanes;
    vec![
        (
            "gb_mem",
            l * (r.tgamma.width() + r.tbeta.width()),
            r.words(),
        ),
        ("row_mem", l * r.tin.width(), r.words()),
    ]
}

/// The RAM style of a memory of the unit (the attention kernel's rule).
pub fn ram_style(width: u32, words: u32) -> &'static str {
    crate::attention::rtl::ram_style(width, words)
}

/// Signed saturation of `x` (a signed wire) to a `w`-bit two's complement value.
fn saturate(x: &Sig, w: u32) -> Result<Expr> {
    let xw = x.width();
    let (max, min) = ((1i128 << (w - 1)) - 1, -(1i128 << (w - 1)));
    let narrow = x.slice(w - 1, 0)?.as_signed();
    Ok(Expr::mux(
        &x.e().gt(&Expr::slit(max, xw)?)?,
        &Expr::slit(max, w)?,
        &Expr::mux(
            &x.e().lt(&Expr::slit(min, xw)?)?,
            &Expr::slit(min, w)?,
            &narrow,
        )?,
    )?)
}

/// The unit's design.
pub fn design(r: &Resolved) -> Result<Design> {
    let d = Design::new(core(r)?, &r.p);
    d.check_complete()?;
    Ok(d)
}

#[allow(clippy::too_many_lines)]
fn core(r: &Resolved) -> Result<accelforge_hdl::Module> {
    let p = &r.p;
    let (l, words) = (p.lanes, r.words());
    let (win, wg, wb, wo) = (
        r.tin.width(),
        r.tgamma.width(),
        r.tbeta.width(),
        r.tout.width(),
    );
    let (ws1, ws2, wu, wa, wz) = (r.s1_bits(), r.s2_bits(), r.u_bits(), r.a_bits(), r.z_bits());
    let fr = p.rsqrt_frac_bits;
    let tb = p.rsqrt_table_bits;
    let (slot_in, slot_out) = (in_slot_bits(r), out_slot_bits(r));
    let wword = bits_for(u64::from(words));
    let wtok = 32;
    let dd = u64::from(p.d);

    let mut m = ModuleBuilder::new(TOP)?;
    m.doc(format!(
        "Add & norm: {} features, {} per beat{}; input {}, gamma {}, beta {}, output {}.",
        p.d,
        l,
        if p.residual { ", residual add" } else { "" },
        r.tin,
        r.tgamma,
        r.tbeta,
        r.tout
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let cmd_valid = m.input("cmd_valid", 1)?;
    let cmd_tokens = m.input("cmd_tokens", wtok)?;
    let cmd_ready = m.output("cmd_ready", 1)?;
    let done = m.output_reg("done", 1)?;
    let s_tdata = m.input("s_axis_tdata", in_bits(r))?;
    let s_tvalid = m.input("s_axis_tvalid", 1)?;
    let s_tready = m.output("s_axis_tready", 1)?;
    let m_tdata = m.output("m_axis_tdata", out_bits(r))?;
    let m_tvalid = m.output("m_axis_tvalid", 1)?;
    let m_tready = m.input("m_axis_tready", 1)?;
    let m_tlast = m.output("m_axis_tlast", 1)?;
    let narrowest = win.min(wg).min(wb);
    if slot_in > narrowest || !p.residual {
        m.allow_unused("s_axis_tdata")?;
    }

    let st = m.reg("st", ST_BITS)?;
    let tokens = m.reg("tokens", wtok)?;
    let tok = m.reg("tok", wtok)?;
    let iw = m.reg("iw", wword)?;
    let rw = m.reg("rw", wword)?;
    let ow = m.reg("ow", wword)?;
    let nc = m.reg("nc", 2)?;
    let issuing = m.reg("issuing", 1)?;

    m.assign_sig(&cmd_ready, st_is(&st, IDLE)?)?;
    let in_ready = st_is(&st, PARAM)?.logic_or(&st_is(&st, LOAD)?)?;
    m.assign_sig(&s_tready, in_ready.clone())?;
    let in_fire = m.wire_from("in_fire", s_tvalid.e().logic_and(&in_ready)?)?;
    let ov = m.reg("ov", 1)?;
    m.assign_sig(&m_tvalid, ov.e())?;
    let adv = m.wire_from("adv", ov.e().logic_not().logic_or(&m_tready.e())?)?;
    let out_fire = m.wire_from("out_fire", ov.e().logic_and(&m_tready.e())?)?;
    let word_last = |c: &Sig| eq_c(&c.e(), u64::from(words - 1));

    // The beat's halves: x or γ (low), r or β (high).
    let lo_half = |i: u32, w: u32| s_tdata.slice(i * slot_in + w - 1, i * slot_in);
    let hi_half = |i: u32, w: u32| s_tdata.slice((l + i) * slot_in + w - 1, (l + i) * slot_in);

    // γ/β store, written in PARAM.
    let wgb = l * (wg + wb);
    let gb_mem = m.memory("gb_mem", wgb, words, false, Some(ram_style(wgb, words)))?;
    let mut gb_parts = Vec::new();
    for i in 0..l {
        gb_parts.push(lo_half(i, wg)?);
    }
    for i in 0..l {
        gb_parts.push(hi_half(i, wb)?);
    }
    let gb_word = m.wire_from("gb_word", pack(&gb_parts)?)?;

    // LOAD: s = sat(x + r), registered with its word index.
    let mut s_parts = Vec::new();
    for i in 0..l {
        let x = m.wire_from(&format!("x{i}"), lo_half(i, win)?.as_signed())?;
        let v = if p.residual {
            let rr = m.wire_from(&format!("r{i}"), hi_half(i, win)?.as_signed())?;
            let sum = m.wire_from(
                &format!("xr{i}"),
                x.extend(win + 1)?.add(&rr.extend(win + 1)?)?,
            )?;
            saturate(&sum, win)?
        } else {
            x.e()
        };
        s_parts.push(v);
    }
    let s_word = m.wire_from("s_word", pack(&s_parts)?)?;
    let sv = m.reg("sv", l * win)?;
    let sv_valid = m.reg("sv_valid", 1)?;
    let sv_word = m.reg("sv_word", wword)?;
    let row_mem = m.memory(
        "row_mem",
        l * win,
        words,
        false,
        Some(ram_style(l * win, words)),
    )?;

    // Sums, one beat behind.
    let s1 = m.reg_signed("s1", ws1)?;
    let s2 = m.reg_signed("s2", ws2)?;
    let mut sum1: Option<Expr> = None;
    let mut sum2: Option<Expr> = None;
    for i in 0..l {
        let e = m.wire_from(&format!("se{i}"), elem(&sv, i, win)?)?;
        let sq = m.product(&format!("sq{i}"), &e.e(), &e.e())?;
        let t1 = e.extend(ws1)?;
        let t2 = sq.extend(ws2)?;
        sum1 = Some(match sum1 {
            None => t1,
            Some(s) => s.add(&t1)?,
        });
        sum2 = Some(match sum2 {
            None => t2,
            Some(s) => s.add(&t2)?,
        });
    }
    let beat_s1 = m.wire_from("beat_s1", sum1.expect("lanes >= 1"))?;
    let beat_s2 = m.wire_from("beat_s2", sum2.expect("lanes >= 1"))?;

    // NORM: U = d·S2 − S1² + E, in a signed width that holds every term.
    // `d` as a signed literal.
    let d_lit = Expr::slit(i128::from(p.d), bits_for(dd + 1) + 1)?;
    let s1sq = m.product("s1sq", &s1.e(), &s1.e())?;
    let ds2 = m.product("ds2", &s2.e(), &d_lit)?;
    let wc = ds2.width().max(s1sq.width()).max(wu) + 1;
    let u_next = m.wire_from(
        "u_next",
        ds2.extend(wc)?
            .sub(&s1sq.extend(wc)?)?
            .add(&Expr::slit(r.eps_int, wc)?)?,
    )?;
    let u = m.reg("u", wu)?;
    m.allow_unused(u_next.name())?;
    m.allow_unused(ds2.name())?;
    m.allow_unused(s1sq.name())?;
    // The even exponent: e = 2j for the highest bit pair j of U holding a one.
    let pairs = wu.div_ceil(2);
    let wj = bits_for(u64::from(pairs));
    let mut j_expr = lit(0, wj)?;
    for j in 0..pairs {
        let hi = (2 * j + 1).min(wu - 1);
        let any = u.slice(hi, 2 * j)?.red_or();
        j_expr = Expr::mux(&any, &lit(u64::from(j), wj)?, &j_expr)?;
    }
    let j_next = m.wire_from("j_next", j_expr)?;
    // t = ((U << TB) >> (2j + 2))[TB-1:0].
    let wut = wu + tb;
    let ushift = m.wire_from(
        "ushift",
        u.e().zext(wut)?.shl(tb).shr_by(
            &Expr::concat(&[j_next.e(), lit(0, 1)?])?
                .zext(wj + 2)?
                .add(&lit(2, wj + 2)?)?,
        )?,
    )?;
    m.allow_unused(ushift.name())?;
    let hs = m.reg("hs", wj)?;
    let rs = m.reg("rs", fr + 1)?;
    let tab = m.reg("tab", fr + 1)?;
    let quarter = 1usize << (tb - 2);
    let arms = r
        .table
        .iter()
        .enumerate()
        .skip(quarter)
        .map(|(t, &v)| {
            Ok((
                vec![lit(t as u64, tb)?],
                vec![set(&tab, lit(v as u64, fr + 1)?)?],
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // Indexed through logic (the shifter), so Yosys keeps the table in LUTs as the attention
    // kernel's exp2 tables, never in a block-RAM ROM.
    m.comb(vec![Stmt::case(
        ushift.slice(tb - 1, 0)?,
        arms,
        vec![z(&tab)?],
    )?])?;

    // OUT: the read pipeline; every stage moves only when `adv`.
    let rd_row = m.reg("rd_row", l * win)?;
    let rd_gb = m.reg("rd_gb", wgb)?;
    let vr = m.reg("vr", 1)?;
    let v1 = m.reg("v1", 1)?;
    let v2 = m.reg("v2", 1)?;
    let issue = m.wire_from("issue", st_is(&st, OUT)?.logic_and(&issuing.e())?)?;
    let rs_s = m.wire_from("rs_s", rs.e().zext(fr + 2)?.as_signed())?;
    let mut stage1 = Vec::new();
    let mut stage2 = Vec::new();
    let mut stage3 = Vec::new();
    let mut y_out = Vec::new();
    let mut s_out = Vec::new();
    let (fg, fb, fo) = (
        r.tgamma.frac_bits(),
        r.tbeta.frac_bits(),
        r.tout.frac_bits(),
    );
    let sh = fr as i32 + fg - fo;
    let wy = wz + wg + u32::try_from((-sh).max(0)).unwrap_or(0) + 2;
    for i in 0..l {
        // Stage 1: a = d·s − S1.
        let sval = elem(&rd_row, i, win)?;
        let ds = m.product(&format!("dsx{i}"), &sval, &d_lit)?;
        let a1 = m.reg_signed(&format!("a1_{i}"), wa)?;
        stage1.push(set(&a1, ds.extend(wa)?.sub(&s1.extend(wa)?)?)?);
        let sk1 = m.reg_signed(&format!("sk1_{i}"), win)?;
        stage1.push(set(&sk1, sval)?);
        let g1 = m.reg_signed(&format!("g1_{i}"), wg)?;
        stage1.push(set(&g1, elem(&rd_gb, i, wg)?)?);
        let b1 = m.reg_signed(&format!("b1_{i}"), wb)?;
        let b_at = l * wg + i * wb;
        stage1.push(set(&b1, rd_gb.slice(b_at + wb - 1, b_at)?.as_signed())?);
        // Stage 2: z = a·rsqrt >>> e/2, kept at its bound's width (the bits above are copies
        // of the sign).
        let za = m.product(&format!("za{i}"), &a1.e(), &rs_s.e())?;
        let zs = m.wire_from(&format!("zs{i}"), za.e().shr_by(&hs.e())?)?;
        m.allow_unused(zs.name())?;
        let z2 = m.reg_signed(&format!("z2_{i}"), wz)?;
        stage2.push(set(&z2, zs.slice(wz - 1, 0)?.as_signed())?);
        let sk2 = m.reg_signed(&format!("sk2_{i}"), win)?;
        stage2.push(set(&sk2, sk1.e())?);
        let g2 = m.reg_signed(&format!("g2_{i}"), wg)?;
        stage2.push(set(&g2, g1.e())?);
        let b2 = m.reg_signed(&format!("b2_{i}"), wb)?;
        stage2.push(set(&b2, b1.e())?);
        // Stage 3: y = sat(round_half_up(z·γ / 2^sh) + β·2^(FO − FB)).
        let zg = m.product(&format!("zg{i}"), &z2.e(), &g2.e())?;
        let wide = zg.extend(wy)?;
        let scaled = if sh > 0 {
            wide.add(&Expr::slit(1i128 << (sh - 1), wy)?)?
                .shr(sh as u32)
        } else {
            wide.shl((-sh) as u32)
        };
        let beta = b2.extend(wy)?.shl((fo - fb) as u32);
        let ysum = m.wire_from(&format!("ysum{i}"), scaled.add(&beta)?)?;
        if sh > 0 {
            m.allow_unused(ysum.name())?;
        }
        let y3 = m.reg_signed(&format!("y3_{i}"), wo)?;
        stage3.push(set(&y3, saturate(&ysum, wo)?)?);
        let sk3 = m.reg_signed(&format!("sk3_{i}"), win)?;
        stage3.push(set(&sk3, sk2.e())?);
        y_out.push(y3.extend(slot_out)?.as_unsigned());
        s_out.push(sk3.extend(slot_out)?.as_unsigned());
    }
    if !p.residual {
        for i in 0..l {
            m.allow_unused(&format!("sk3_{i}"))?;
        }
    }
    let out_parts = if p.residual {
        [y_out, s_out].concat()
    } else {
        y_out
    };
    m.assign_sig(&m_tdata, pack(&out_parts)?)?;
    let last_tok = m.wire_from("last_tok", tok.e().add(&lit(1, wtok)?)?.eq(&tokens.e())?)?;
    m.assign_sig(&m_tlast, word_last(&ow)?.logic_and(&last_tok.e())?)?;

    // Memories: writes in PARAM / LOAD (one beat behind), reads in OUT.
    m.clocked(
        &clk,
        vec![
            if_(
                st_is(&st, PARAM)?.logic_and(&in_fire.e())?,
                vec![Stmt::assign(LValue::word(&gb_mem, &iw.e())?, gb_word.e())?],
            )?,
            if_(
                sv_valid.e(),
                vec![Stmt::assign(LValue::word(&row_mem, &sv_word.e())?, sv.e())?],
            )?,
            if_(
                adv.e(),
                vec![
                    set(&rd_row, row_mem.read(&rw.e())?)?,
                    set(&rd_gb, gb_mem.read(&rw.e())?)?,
                ],
            )?,
        ],
    )?;
    let mut pipe = vec![
        set(&vr, issue.e())?,
        set(&v1, vr.e())?,
        set(&v2, v1.e())?,
        set(&ov, v2.e())?,
    ];
    pipe.extend(stage1);
    pipe.extend(stage2);
    pipe.extend(stage3);

    // The state machine.
    let idle = if_(
        cmd_valid.e(),
        vec![
            set(&tokens, cmd_tokens.e())?,
            z(&tok)?,
            z(&iw)?,
            to_st(&st, PARAM)?,
        ],
    )?;
    let param = if_(
        in_fire.e(),
        vec![if_else(
            word_last(&iw)?,
            vec![z(&iw)?, z(&s1)?, z(&s2)?, to_st(&st, LOAD)?],
            vec![set(&iw, inc(&iw)?)?],
        )?],
    )?;
    let load = if_(
        in_fire.e(),
        vec![
            set(&sv, s_word.e())?,
            set(&sv_valid, Expr::bool(true))?,
            set(&sv_word, iw.e())?,
            if_else(
                word_last(&iw)?,
                vec![z(&iw)?, z(&nc)?, to_st(&st, NORM)?],
                vec![set(&iw, inc(&iw)?)?],
            )?,
        ],
    )?;
    let norm = vec![
        set(&nc, inc(&nc)?)?,
        if_(eq_c(&nc.e(), 1)?, vec![set(&u, u_next.slice(wu - 1, 0)?)?])?,
        if_(
            eq_c(&nc.e(), 2)?,
            vec![set(&hs, j_next.e())?, set(&rs, tab.e())?],
        )?,
        if_(
            eq_c(&nc.e(), 3)?,
            vec![
                z(&rw)?,
                z(&ow)?,
                set(&issuing, Expr::bool(true))?,
                to_st(&st, OUT)?,
            ],
        )?,
    ];
    let out = vec![
        if_(
            issue.e().logic_and(&adv.e())?,
            vec![if_else(
                word_last(&rw)?,
                vec![z(&issuing)?],
                vec![set(&rw, inc(&rw)?)?],
            )?],
        )?,
        if_(
            out_fire.e(),
            vec![if_else(
                word_last(&ow)?,
                vec![
                    z(&ow)?,
                    if_else(
                        last_tok.e(),
                        vec![set(&done, Expr::bool(true))?, to_st(&st, IDLE)?],
                        vec![set(&tok, inc(&tok)?)?, z(&s1)?, z(&s2)?, to_st(&st, LOAD)?],
                    )?,
                ],
                vec![set(&ow, inc(&ow)?)?],
            )?],
        )?,
    ];
    let arms = vec![
        (vec![lit(IDLE, ST_BITS)?], vec![idle]),
        (vec![lit(PARAM, ST_BITS)?], vec![param]),
        (vec![lit(LOAD, ST_BITS)?], vec![load]),
        (vec![lit(NORM, ST_BITS)?], norm),
        (vec![lit(OUT, ST_BITS)?], out),
    ];
    let body = vec![
        z(&done)?,
        z(&sv_valid)?,
        if_(
            sv_valid.e(),
            vec![
                set(&s1, s1.e().add(&beat_s1.e())?)?,
                set(&s2, s2.e().add(&beat_s2.e())?)?,
            ],
        )?,
        if_(adv.e(), pipe)?,
        Stmt::case(st.e(), arms, vec![to_st(&st, IDLE)?])?,
    ];
    m.clocked(
        &clk,
        vec![if_else(
            rst.e(),
            vec![
                to_st(&st, IDLE)?,
                z(&done)?,
                z(&sv_valid)?,
                z(&issuing)?,
                z(&vr)?,
                z(&v1)?,
                z(&v2)?,
                z(&ov)?,
            ],
            body,
        )?],
    )?;
    Ok(m.finish())
}
