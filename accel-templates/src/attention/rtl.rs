//! The streaming attention kernel as RTL: one module, `attention_core`.
//!
//! `query_lanes` queries are processed side by side. Each lane keeps its Q rows in a small
//! memory, its running maximum `m`, sum `l` and `head_dim` accumulators (a memory of
//! `head_dim / simd` words of `simd` accumulators). Per key, the K row streams in `simd`
//! elements per beat (every lane multiplies them with its Q word: `lanes × simd` products),
//! then a three-cycle score pipeline (scale and round, running maximum, the two exp2 table
//! lookups, then the sum's rescale) and the V row (every lane rescales `simd` accumulators by
//! `α` and adds `p·v`: `2 × lanes × simd` products). After a block's last key it is handed to
//! a second state machine: `simd` restoring dividers turn each lane's accumulators into
//! outputs, one beat per `WO + 3` cycles, while the main machine goes on with the next block
//! (the accumulators have two banks; the sums are held at the hand-over).
//!
//! The arithmetic is the golden model's (`golden.rs`), bit for bit: every register is as wide
//! as the value it can hold (`Resolved::{dot_bits, sum_bits, acc_bits}`), so nothing wraps.
//! The cycle counts are those of `cost.rs`.

use accelforge_hdl::helpers::{
    clear as z, elem_signed as elem, eq_c, goto as to_st, if_, if_else, inc, lit,
    pack_lsb_first as pack, set, state_is as st_is,
};
use accelforge_hdl::{Design, Expr, LValue, Mem, ModuleBuilder, Sig, Stmt};

use super::Result;
use super::params::{Resolved, bits_for, slot_bytes};

/// Name of the top module.
pub const TOP: &str = "attention_core";

// The main state machine (Q rows, keys).
const IDLE: u64 = 0;
const QLOAD: u64 = 1;
const KEY: u64 = 2;
const SCORE: u64 = 3;
const VAL: u64 = 4;
/// Last accumulator write lands; hand the block to the output machine once it is idle.
const DRAIN: u64 = 5;
/// Every block handed over; wait for the last output beat.
const FINISH: u64 = 6;
const ST_BITS: u32 = 3;
// The output state machine (dividers), one block behind the main one.
const OIDLE: u64 = 0;
const FRD: u64 = 1;
const FLOAD: u64 = 2;
const FDIV: u64 = 3;
const FOUT: u64 = 4;

/// Memories of at most this many bits stay in LUT RAM; larger ones go to block RAM.
pub const DISTRIBUTED_MAX_BITS: u64 = 4096;

/// The RAM style of a `width × words` memory of the kernel.
pub fn ram_style(width: u32, words: u32) -> &'static str {
    if u64::from(width) * u64::from(words) <= DISTRIBUTED_MAX_BITS || words < 64 {
        "distributed"
    } else {
        "block"
    }
}

/// The kernel's memories, `(width, words, read ports)` each: per lane its Q rows and its
/// accumulators (two banks: one block's being divided while the next block's accumulate; read
/// by the V stage and by the dividers).
pub fn memories(r: &Resolved) -> Vec<(u32, u32, u32)> {
    let (w, p, words) = (r.tqkv.width(), r.p.simd, r.words());
    let mut v = Vec::new();
    for _ in 0..r.p.query_lanes {
        v.push((p * w, words, 1));
        v.push((p * r.acc_bits(), 2 * words, 2));
    }
    v
}

/// A registered-read memory: write `(we, waddr, wdata)`, read `raddr` into `rname`.
fn sdp(
    m: &mut ModuleBuilder,
    clk: &Sig,
    mem: &Mem,
    (we, waddr, wdata): (Expr, Expr, Expr),
    raddr: Expr,
    rname: &str,
) -> Result<Sig> {
    let q = m.reg(rname, mem.width())?;
    m.clocked(
        clk,
        vec![
            if_(we, vec![Stmt::assign(LValue::word(mem, &waddr)?, wdata)?])?,
            set(&q, mem.read(&raddr)?)?,
        ],
    )?;
    Ok(q)
}

/// The kernel design.
pub fn design(r: &Resolved) -> Result<Design> {
    let d = Design::new(core(r)?, &r.p);
    d.check_complete()?;
    Ok(d)
}

#[allow(clippy::too_many_lines)]
fn core(r: &Resolved) -> Result<accelforge_hdl::Module> {
    let p = &r.p;
    let (lanes, simd, words) = (p.query_lanes, p.simd, r.words());
    let w = r.tqkv.width();
    let wo = r.tout.width();
    let fe = p.exp_frac_bits;
    let fs = p.score_frac_bits;
    let ws = p.score_bits;
    let tb = p.exp_table_bits;
    let (wdot, wl, wa) = (r.dot_bits(), r.sum_bits(), r.acc_bits());
    let cw = r.scale_bits() + 1;
    let wpc = wdot + cw;
    let (f, fo) = (r.tqkv.frac_bits(), r.tout.frac_bits());
    let sh_n = u32::try_from((fo - f).max(0)).unwrap_or(0);
    let sh_d = u32::try_from((f - fo).max(0)).unwrap_or(0);
    let wr = (wa + sh_n).max(wl + sh_d + wo - 1) + 1;
    let slot_in = slot_bytes(w) * 8;
    let slot_out = slot_bytes(wo) * 8;
    let (wt, wh) = (
        bits_for(u64::from(p.tokens) + u64::from(lanes)),
        bits_for(u64::from(p.heads)),
    );
    let (wlane, wword, wkey, wdc) = (
        bits_for(u64::from(lanes)),
        bits_for(u64::from(words)),
        bits_for(u64::from(p.tokens)),
        bits_for(u64::from(wo)),
    );

    let mut m = ModuleBuilder::new(TOP)?;
    m.doc(format!(
        "Streaming attention: {} heads of {} tokens x {}, {} query lanes x {} elements per cycle; \
         Q/K/V {}, output {}.",
        p.heads, p.tokens, p.head_dim, lanes, simd, r.tqkv, r.tout
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let cmd_valid = m.input("cmd_valid", 1)?;
    let cmd_ready = m.output("cmd_ready", 1)?;
    let done = m.output_reg("done", 1)?;
    let s_tdata = m.input("s_axis_tdata", r.in_bits())?;
    let s_tvalid = m.input("s_axis_tvalid", 1)?;
    let s_tready = m.output("s_axis_tready", 1)?;
    let m_tdata = m.output("m_axis_tdata", r.out_bits())?;
    let m_tvalid = m.output("m_axis_tvalid", 1)?;
    let m_tready = m.input("m_axis_tready", 1)?;
    let m_tlast = m.output("m_axis_tlast", 1)?;
    if slot_in > w {
        m.allow_unused("s_axis_tdata")?;
    }

    // Control registers.
    let st = m.reg("st", ST_BITS)?;
    let ost = m.reg("ost", 3)?;
    // The accumulator bank the main machine writes, and the one the dividers read.
    let bank = m.reg("bank", 1)?;
    let obank = m.reg("obank", 1)?;
    // The block being output: its query count and whether it ends the command.
    let o_nq = m.reg("o_nq", wt)?;
    let o_last = m.reg("o_last", 1)?;
    let head = m.reg("head", wh)?;
    let qbase = m.reg("qbase", wt)?;
    let q_lane = m.reg("q_lane", wlane)?;
    let q_word = m.reg("q_word", wword)?;
    let kw = m.reg("kw", wword)?;
    let key = m.reg("key", wkey)?;
    let sc = m.reg("sc", 2)?;
    let fl = m.reg("fl", wlane)?;
    let fw = m.reg("fw", wword)?;
    let dc = m.reg("dc", wdc)?;
    let kf = m.reg("kf", 1)?;

    // Queries in this block: min(lanes, tokens - qbase).
    let left = m.wire_from("left", lit(u64::from(p.tokens), wt)?.sub(&qbase.e())?)?;
    let lanes_c = lit(u64::from(lanes), wt)?;
    let nq = m.wire_from(
        "nq",
        Expr::mux(&left.e().lt(&lanes_c)?, &left.e(), &lanes_c)?,
    )?;
    // Lane index compared with a query count minus one, at the counter's width.
    let last_of = |lane: &Sig, n: &Sig| -> Result<Expr> {
        Ok(lane.e().zext(wt)?.add(&lit(1, wt)?)?.eq(&n.e())?)
    };
    let last_lane = |lane: &Sig| last_of(lane, &nq);
    let block_last = m.wire_from(
        "block_last",
        qbase
            .e()
            .add(&lanes_c)?
            .ge(&lit(u64::from(p.tokens), wt)?)?,
    )?;

    m.assign_sig(&cmd_ready, st_is(&st, IDLE)?)?;
    let in_ready = st_is(&st, QLOAD)?
        .logic_or(&st_is(&st, KEY)?)?
        .logic_or(&st_is(&st, VAL)?)?;
    m.assign_sig(&s_tready, in_ready.clone())?;
    let in_fire = m.wire_from("in_fire", s_tvalid.e().logic_and(&in_ready)?)?;
    m.assign_sig(&m_tvalid, st_is(&ost, FOUT)?)?;
    let out_fire = m.wire_from("out_fire", st_is(&ost, FOUT)?.logic_and(&m_tready.e())?)?;

    // The beat's elements, packed at their own width.
    let in_elems = (0..simd)
        .map(|e| Ok(s_tdata.slice(e * slot_in + w - 1, e * slot_in)?))
        .collect::<Result<Vec<_>>>()?;
    let in_word = m.wire_from("in_word", pack(&in_elems)?)?;

    // Stage 1: the accepted K or V beat, with its word index.
    let x1 = m.reg("x1", simd * w)?;
    let k_v1 = m.reg("k_v1", 1)?;
    let v_v1 = m.reg("v_v1", 1)?;
    let first1 = m.reg("first1", 1)?;
    let last1 = m.reg("last1", 1)?;
    let word1 = m.reg("word1", wword)?;

    // Per-lane memories: Q rows (read at the K word being accepted) and accumulators, word
    // `bank·words + w`: read at the V word being accepted (main bank) and at the output word
    // (the dividers' bank).
    let waw = bits_for(2 * u64::from(words));
    let in_bank = |b: &Sig, w: Expr| -> Result<Expr> {
        let w = w.zext(waw)?;
        Ok(Expr::mux(
            &b.e(),
            &w.add(&lit(u64::from(words), waw)?)?,
            &w,
        )?)
    };
    let acc_vaddr = m.wire_from("acc_vaddr", in_bank(&bank, kw.e())?)?;
    let acc_oaddr = m.wire_from("acc_oaddr", in_bank(&obank, fw.e())?)?;
    let mut q_rd = Vec::new();
    let mut acc_rd = Vec::new();
    let mut acc_mem = Vec::new();
    for i in 0..lanes {
        let qm = m.memory(
            &format!("q_mem{i}"),
            simd * w,
            words,
            false,
            Some(ram_style(simd * w, words)),
        )?;
        let we = st_is(&st, QLOAD)?
            .logic_and(&in_fire.e())?
            .logic_and(&eq_c(&q_lane.e(), u64::from(i))?)?;
        q_rd.push(sdp(
            &mut m,
            &clk,
            &qm,
            (we, q_word.e(), in_word.e()),
            kw.e(),
            &format!("q_rd{i}"),
        )?);
        let am = m.memory(
            &format!("acc_mem{i}"),
            simd * wa,
            2 * words,
            false,
            Some(ram_style(simd * wa, 2 * words)),
        )?;
        acc_mem.push(am);
    }

    // Stage 2 of K: the dot products.
    let mut dots = Vec::new();
    for (i, qr) in q_rd.iter().enumerate() {
        let mut sum: Option<Expr> = None;
        for e in 0..simd {
            let prod = m.product(&format!("qk{i}_{e}"), &elem(qr, e, w)?, &elem(&x1, e, w)?)?;
            let term = prod.extend(wdot)?;
            sum = Some(match sum {
                None => term,
                Some(s) => s.add(&term)?,
            });
        }
        let sum = m.wire_from(&format!("dsum{i}"), sum.expect("simd >= 1"))?;
        let dot = m.reg_signed(&format!("dot{i}"), wdot)?;
        m.clocked(
            &clk,
            vec![if_(
                k_v1.e(),
                vec![set(
                    &dot,
                    Expr::mux(&first1.e(), &sum.e(), &dot.e().add(&sum.e())?)?,
                )?],
            )?],
        )?;
        dots.push(dot);
    }

    // Score pipeline valid bits.
    let s3 = m.reg("s3", 1)?;
    let s4 = m.reg("s4", 1)?;
    let s5 = m.reg("s5", 1)?;
    let s6 = m.reg("s6", 1)?;
    m.clocked(
        &clk,
        vec![if_else(
            rst.e(),
            vec![z(&s3)?, z(&s4)?, z(&s5)?, z(&s6)?],
            vec![
                set(&s3, k_v1.e().logic_and(&last1.e())?)?,
                set(&s4, s3.e())?,
                set(&s5, s4.e())?,
                set(&s6, s5.e())?,
            ],
        )?],
    )?;

    let table = &r.exp_table;
    let shift = r.score_shift();
    let wrnd = (wpc + 1).max(ws + 1);
    let smax = (1i128 << (ws - 1)) - 1;
    let smin = -(1i128 << (ws - 1));
    let mut alphas = Vec::new();
    let mut ps = Vec::new();
    let mut ls = Vec::new();
    for (i, dot) in dots.iter().enumerate() {
        // s3: dot · C.
        let pc = m.product(
            &format!("pc{i}"),
            &dot.e(),
            &Expr::slit(i128::from(r.scale), cw)?,
        )?;
        let prodc = m.reg_signed(&format!("prodc{i}"), wpc)?;
        m.clocked(&clk, vec![if_(s3.e(), vec![set(&prodc, pc.e())?])?])?;
        // s4: round half up, shift, saturate.
        let rnd = m.wire_from(
            &format!("rnd{i}"),
            prodc
                .extend(wrnd)?
                .add(&Expr::slit(1i128 << (shift - 1), wrnd)?)?
                .shr(shift),
        )?;
        let sat = Expr::mux(
            &rnd.e().gt(&Expr::slit(smax, wrnd)?)?,
            &Expr::slit(smax, ws)?,
            &Expr::mux(
                &rnd.e().lt(&Expr::slit(smin, wrnd)?)?,
                &Expr::slit(smin, ws)?,
                &rnd.slice(ws - 1, 0)?.as_signed(),
            )?,
        )?;
        let score = m.reg_signed(&format!("score{i}"), ws)?;
        m.clocked(&clk, vec![if_(s4.e(), vec![set(&score, sat)?])?])?;
        // s5: running maximum, the two exponent arguments (non-negative), table lookups.
        let mx = m.reg_signed(&format!("mx{i}"), ws)?;
        let mnew = m.wire_from(
            &format!("mnew{i}"),
            Expr::mux(
                &kf.e().logic_or(&score.e().gt(&mx.e())?)?,
                &score.e(),
                &mx.e(),
            )?,
        )?;
        let ua = m.wire_from(
            &format!("ua{i}"),
            mnew.extend(ws + 1)?.sub(&mx.extend(ws + 1)?)?.as_unsigned(),
        )?;
        let up = m.wire_from(
            &format!("up{i}"),
            mnew.extend(ws + 1)?
                .sub(&score.extend(ws + 1)?)?
                .as_unsigned(),
        )?;
        let mut exp2 = |name: &str, u: &Sig| -> Result<Expr> {
            let idx = u.slice(fs - 1, fs - tb)?;
            if fs > tb {
                m.allow_unused(u.name())?;
            }
            let tab = m.reg(&format!("{name}_tab{i}"), fe + 1)?;
            let arms = table
                .iter()
                .enumerate()
                .map(|(t, &v)| {
                    Ok((
                        vec![lit(t as u64, tb)?],
                        vec![set(&tab, lit(v as u64, fe + 1)?)?],
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            m.comb(vec![Stmt::case(idx, arms, vec![z(&tab)?])?])?;
            Ok(tab.e().shr_by(&u.slice(ws, fs)?)?)
        };
        let ea = exp2("ea", &ua)?;
        let ep = exp2("ep", &up)?;
        let alpha = m.reg(&format!("alpha{i}"), fe + 1)?;
        let pw = m.reg(&format!("pw{i}"), fe + 1)?;
        m.clocked(
            &clk,
            vec![if_(
                s5.e(),
                vec![set(&alpha, ea)?, set(&pw, ep)?, set(&mx, mnew.e())?],
            )?],
        )?;
        // s6: l = floor(l·α / 2^FE) + p (or p for the first key).
        let l = m.reg(&format!("l{i}"), wl)?;
        let la = m.product(&format!("la{i}"), &l.e(), &alpha.e())?;
        m.allow_unused(la.name())?;
        let scaled = la.slice(wl + fe - 1, fe)?;
        let pz = pw.e().zext(wl)?;
        let l_next = m.wire_from(
            &format!("l_next{i}"),
            Expr::mux(&kf.e(), &pz, &scaled.add(&pz)?)?,
        )?;
        m.clocked(&clk, vec![if_(s6.e(), vec![set(&l, l_next.e())?])?])?;
        // What a hand-over in this cycle takes: with one word per row the last key's sum
        // lands in the hand-over cycle itself.
        let l_final = m.wire_from(
            &format!("l_final{i}"),
            Expr::mux(&s6.e(), &l_next.e(), &l.e())?,
        )?;
        alphas.push(alpha);
        ps.push(pw);
        ls.push(l_final);
    }

    // Stage 2 of V: acc = floor(acc·α / 2^FE) + p·v (or p·v for the first key), written back.
    let acc_we = m.wire_from("acc_we", v_v1.e())?;
    let acc_waddr = m.wire_from("acc_waddr", in_bank(&bank, word1.e())?)?;
    let mut acc_ord = Vec::new();
    for i in 0..lanes as usize {
        let alpha_s = m.wire_from(
            &format!("alpha_s{i}"),
            alphas[i].e().zext(fe + 2)?.as_signed(),
        )?;
        let p_s = m.wire_from(&format!("p_s{i}"), ps[i].e().zext(fe + 2)?.as_signed())?;
        // The registered read is declared before its users.
        let ard = m.reg(&format!("acc_rd{i}"), simd * wa)?;
        let ord = m.reg(&format!("acc_ord{i}"), simd * wa)?;
        let mut news = Vec::new();
        for e in 0..simd {
            let a = elem(&ard, e, wa)?;
            let aa = m.product(&format!("aa{i}_{e}"), &a, &alpha_s.e())?;
            m.allow_unused(aa.name())?;
            let resc = aa.slice(wa + fe - 1, fe)?.as_signed();
            let pv = m.product(&format!("pv{i}_{e}"), &p_s.e(), &elem(&x1, e, w)?)?;
            let pv = pv.extend(wa)?;
            let old = Expr::mux(&kf.e(), &Expr::zero(wa).as_signed(), &resc)?;
            news.push(m.wire_from(&format!("anew{i}_{e}"), old.add(&pv)?)?.e());
        }
        let wdata = m.wire_from(&format!("acc_wdata{i}"), pack(&news)?)?;
        m.clocked(
            &clk,
            vec![
                if_(
                    acc_we.e(),
                    vec![Stmt::assign(
                        LValue::word(&acc_mem[i], &acc_waddr.e())?,
                        wdata.e(),
                    )?],
                )?,
                set(&ard, acc_mem[i].read(&acc_vaddr.e())?)?,
                set(&ord, acc_mem[i].read(&acc_oaddr.e())?)?,
            ],
        )?;
        acc_rd.push(ard);
        acc_ord.push(ord);
    }
    // Each lane's sum, held for the dividers while the next block accumulates.
    let l_hold = (0..lanes as usize)
        .map(|i| m.reg(&format!("l_hold{i}"), wl))
        .collect::<std::result::Result<Vec<_>, _>>()?;

    // Output: the selected lane's accumulators and sum, `simd` restoring dividers.
    let mut acc_sel = acc_ord[0].e();
    let mut l_sel = l_hold[0].e();
    for i in 1..lanes as usize {
        let hit = eq_c(&fl.e(), i as u64)?;
        acc_sel = Expr::mux(&hit, &acc_ord[i].e(), &acc_sel)?;
        l_sel = Expr::mux(&hit, &l_hold[i].e(), &l_sel)?;
    }
    let acc_sel = m.wire_from("acc_sel", acc_sel)?;
    let dsh = m.reg("dsh", wr)?;
    let dsh_init = l_sel.zext(wr)?.shl(sh_d + wo - 1);
    let mut div_load = vec![set(&dsh, dsh_init)?];
    let mut div_step = vec![set(&dsh, dsh.e().shr(1))?];
    let qmax = (1i128 << (wo - 1)) - 1;
    let qmin = -(1i128 << (wo - 1));
    let mut outs = Vec::new();
    for e in 0..simd {
        let a = elem(&acc_sel, e, wa)?;
        let neg = m.reg(&format!("neg{e}"), 1)?;
        let rem = m.reg(&format!("rem{e}"), wr)?;
        let q = m.reg(&format!("quo{e}"), wo)?;
        let a_w = m.wire_from(&format!("a_sel{e}"), a)?;
        let mag = Expr::mux(
            &a_w.e().lt(&Expr::zero(wa).as_signed())?,
            &a_w.e().neg(),
            &a_w.e(),
        )?
        .as_unsigned();
        div_load.push(set(&neg, a_w.e().lt(&Expr::zero(wa).as_signed())?)?);
        div_load.push(set(&rem, mag.zext(wr)?.shl(sh_n))?);
        div_load.push(z(&q)?);
        let ge = m.wire_from(&format!("ge{e}"), rem.e().ge(&dsh.e())?)?;
        div_step.push(if_(ge.e(), vec![set(&rem, rem.e().sub(&dsh.e())?)?])?);
        let shifted = if wo >= 2 {
            Expr::concat(&[q.slice(wo - 2, 0)?, ge.e()])?
        } else {
            ge.e()
        };
        div_step.push(set(&q, shifted)?);
        // Saturate on the overflow bit, else apply the sign.
        let qs = q.e().as_signed();
        let value = Expr::mux(
            &q.bit(wo - 1)?,
            &Expr::mux(&neg.e(), &Expr::slit(qmin, wo)?, &Expr::slit(qmax, wo)?)?,
            &Expr::mux(&neg.e(), &qs.neg(), &qs)?,
        )?;
        let v = m.wire_from(&format!("oval{e}"), value)?;
        outs.push(v.extend(slot_out)?.as_unsigned());
    }
    m.assign_sig(&m_tdata, pack(&outs)?)?;
    let fin_last_beat = m.wire_from(
        "fin_last_beat",
        eq_c(&fw.e(), u64::from(words - 1))?.logic_and(&last_of(&fl, &o_nq)?)?,
    )?;
    m.assign_sig(&m_tlast, fin_last_beat.e().logic_and(&o_last.e())?)?;

    // The main state machine: Q rows and keys of one block after another.
    let word_last = |c: &Sig| eq_c(&c.e(), u64::from(words - 1));
    let restart_block = |v: &mut Vec<Stmt>| -> Result<()> {
        for s in [&q_lane, &q_word, &kw, &key] {
            v.push(z(s)?);
        }
        v.push(to_st(&st, QLOAD)?);
        Ok(())
    };
    let mut on_cmd = vec![z(&head)?, z(&qbase)?];
    restart_block(&mut on_cmd)?;
    let idle = if_(cmd_valid.e(), on_cmd)?;
    let qload = if_(
        in_fire.e(),
        vec![if_else(
            word_last(&q_word)?,
            vec![
                z(&q_word)?,
                if_else(
                    last_lane(&q_lane)?,
                    vec![z(&q_lane)?, to_st(&st, KEY)?],
                    vec![set(&q_lane, inc(&q_lane)?)?],
                )?,
            ],
            vec![set(&q_word, inc(&q_word)?)?],
        )?],
    )?;
    let beat_in = |v: &mut Vec<Stmt>, valid: &Sig| -> Result<()> {
        v.push(set(&x1, in_word.e())?);
        v.push(set(valid, Expr::bool(true))?);
        v.push(set(&first1, eq_c(&kw.e(), 0)?)?);
        v.push(set(&last1, word_last(&kw)?)?);
        v.push(set(&word1, kw.e())?);
        Ok(())
    };
    let mut key_beat = Vec::new();
    beat_in(&mut key_beat, &k_v1)?;
    key_beat.push(if_else(
        word_last(&kw)?,
        vec![
            z(&kw)?,
            z(&sc)?,
            set(&kf, eq_c(&key.e(), 0)?)?,
            to_st(&st, SCORE)?,
        ],
        vec![set(&kw, inc(&kw)?)?],
    )?);
    let key_st = if_(in_fire.e(), key_beat)?;
    let score_st = vec![
        set(&sc, inc(&sc)?)?,
        if_(
            eq_c(&sc.e(), super::cost::SCORE_CYCLES - 1)?,
            vec![to_st(&st, VAL)?],
        )?,
    ];
    let mut val_beat = Vec::new();
    beat_in(&mut val_beat, &v_v1)?;
    val_beat.push(if_else(
        word_last(&kw)?,
        vec![
            z(&kw)?,
            if_else(
                eq_c(&key.e(), u64::from(p.tokens - 1))?,
                vec![z(&key)?, to_st(&st, DRAIN)?],
                vec![set(&key, inc(&key)?)?, to_st(&st, KEY)?],
            )?,
        ],
        vec![set(&kw, inc(&kw)?)?],
    )?);
    let val_st = if_(in_fire.e(), val_beat)?;
    // Hand the finished block to the dividers (once they are idle) and go on with the next.
    let cmd_last = block_last
        .e()
        .logic_and(&eq_c(&head.e(), u64::from(p.heads - 1))?)?;
    let mut handover = vec![
        set(&obank, bank.e())?,
        set(&bank, bank.e().not())?,
        set(&o_nq, nq.e())?,
        set(&o_last, cmd_last.clone())?,
        z(&fl)?,
        z(&fw)?,
        to_st(&ost, FRD)?,
    ];
    for (h, l) in l_hold.iter().zip(&ls) {
        handover.push(set(h, l.e())?);
    }
    let mut next_block = Vec::new();
    restart_block(&mut next_block)?;
    handover.push(if_else(
        block_last.e(),
        vec![
            z(&qbase)?,
            if_else(
                eq_c(&head.e(), u64::from(p.heads - 1))?,
                vec![to_st(&st, FINISH)?],
                [vec![set(&head, inc(&head)?)?], next_block.clone()].concat(),
            )?,
        ],
        [vec![set(&qbase, qbase.e().add(&lanes_c)?)?], next_block].concat(),
    )?);
    let drain = if_(st_is(&ost, OIDLE)?, handover)?;
    let finish = if_(done.e(), vec![to_st(&st, IDLE)?])?;
    let arms = vec![
        (vec![lit(IDLE, ST_BITS)?], vec![idle]),
        (vec![lit(QLOAD, ST_BITS)?], vec![qload]),
        (vec![lit(KEY, ST_BITS)?], vec![key_st]),
        (vec![lit(SCORE, ST_BITS)?], score_st),
        (vec![lit(VAL, ST_BITS)?], vec![val_st]),
        (vec![lit(DRAIN, ST_BITS)?], vec![drain]),
        (vec![lit(FINISH, ST_BITS)?], vec![finish]),
    ];

    // The output state machine: one block's beats, lane by lane, word by word.
    let fdiv = vec![
        if_(eq_c(&dc.e(), u64::from(wo - 1))?, vec![to_st(&ost, FOUT)?])?,
        set(&dc, inc(&dc)?)?,
    ];
    let fout = if_(
        out_fire.e(),
        vec![if_else(
            word_last(&fw)?,
            vec![
                z(&fw)?,
                if_else(
                    last_of(&fl, &o_nq)?,
                    vec![
                        z(&fl)?,
                        to_st(&ost, OIDLE)?,
                        if_(o_last.e(), vec![set(&done, Expr::bool(true))?])?,
                    ],
                    vec![set(&fl, inc(&fl)?)?, to_st(&ost, FRD)?],
                )?,
            ],
            vec![set(&fw, inc(&fw)?)?, to_st(&ost, FRD)?],
        )?],
    )?;
    let oarms = vec![
        (vec![lit(FRD, 3)?], vec![to_st(&ost, FLOAD)?]),
        (
            vec![lit(FLOAD, 3)?],
            [div_load, vec![z(&dc)?, to_st(&ost, FDIV)?]].concat(),
        ),
        (vec![lit(FDIV, 3)?], [div_step, fdiv].concat()),
        (vec![lit(FOUT, 3)?], vec![fout]),
    ];
    let body = vec![
        z(&done)?,
        z(&k_v1)?,
        z(&v_v1)?,
        // The output machine first: the hand-over in DRAIN (below) restarts it.
        Stmt::case(ost.e(), oarms, vec![])?,
        Stmt::case(st.e(), arms, vec![to_st(&st, IDLE)?])?,
    ];
    m.clocked(
        &clk,
        vec![if_else(
            rst.e(),
            vec![
                to_st(&st, IDLE)?,
                to_st(&ost, OIDLE)?,
                z(&bank)?,
                z(&done)?,
                z(&k_v1)?,
                z(&v_v1)?,
            ],
            body,
        )?],
    )?;
    Ok(m.finish())
}
