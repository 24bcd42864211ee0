//! The processing element of the output-stationary array, and the shift-add weight encoding.

use accelforge_hdl::helpers::sext;
use accelforge_hdl::{Expr, Module, ModuleBuilder, Result, Stmt, clog2};

use super::params::{PeKind, Resolved};

/// Bits of one shift amount in a shift-add weight (positions `0..wb`).
pub(crate) fn shift_bits(r: &Resolved) -> u32 {
    clog2(u64::from(r.wb)).max(1)
}

/// Width of the operand travelling down a column: the weight itself for DSP PEs, or its
/// decomposition `{z1, n1, s1, z2, n2, s2}` for shift-add PEs.
pub(crate) fn b_lane_width(r: &Resolved) -> u32 {
    match r.p.pe {
        PeKind::Dsp | PeKind::DspPacked => r.wb,
        PeKind::ShiftAdd => 2 * (2 + shift_bits(r)),
    }
}

/// Non-adjacent-form digits of `x` (a `wb`-bit signed value): `(positive, negative)` masks of
/// `wb` bits each, computed exactly as the RTL decoder does (from `h = 3x` in `wb + 2` bits).
pub fn naf_digits(x: i128, wb: u32) -> (u64, u64) {
    let m = wb + 2;
    let mask = (1u128 << m) - 1;
    let xu = (x as u128) & mask;
    let h = (xu + (xu << 1)) & mask;
    let (mut pos, mut neg) = (0u64, 0u64);
    for i in 0..wb {
        let hb = (h >> (i + 1)) & 1 == 1;
        let xb = (xu >> (i + 1)) & 1 == 1;
        if hb && !xb {
            pos |= 1 << i;
        }
        if !hb && xb {
            neg |= 1 << i;
        }
    }
    (pos, neg)
}

/// Whether a raw weight is usable by shift-add PEs (at most two non-zero CSD digits).
pub fn is_shift_add_weight(raw: i128, wb: u32) -> bool {
    let (p, n) = naf_digits(raw, wb);
    (p | n).count_ones() <= 2
}

/// The PE: registers its operands and flag towards its right/lower neighbours, multiplies (or
/// shifts and adds), accumulates, and on the flag hands the finished sum to the output chain
/// that runs upwards through the column (against the diagonal wavefront, so a finished value
/// never collides with a neighbour's capture when tiles start at least 2R−1 cycles apart).
pub(crate) fn pe_module(r: &Resolved, name: &str) -> Result<Module> {
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "Output-stationary PE: {} x {} -> {}-bit accumulator ({}).",
        r.ta,
        r.tb,
        r.wacc,
        match r.p.pe {
            PeKind::Dsp | PeKind::DspPacked => "DSP multiply",
            PeKind::ShiftAdd => "shift-add, no DSP",
        }
    ));
    let bw = b_lane_width(r);
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let a_in = m.input_signed("a_in", r.wa)?;
    let b_in = m.input("b_in", bw)?;
    let f_in = m.input("f_in", 1)?;
    let out_in = m.input_signed("out_in", r.wacc)?;
    let a_out = m.output_reg_signed("a_out", r.wa)?;
    let b_out = m.output_reg("b_out", bw)?;
    let f_out = m.output_reg("f_out", 1)?;
    let out_out = m.output_reg_signed("out_out", r.wacc)?;
    let acc = m.reg_signed("acc", r.wacc)?;
    let prod = product(&mut m, r, &a_in.e(), &b_in.e())?;
    let p_ext = acc_term(&mut m, "prod_w", &prod, r.wacc, r.acc_shift)?;
    let zero_acc = Expr::zero(r.wacc).as_signed();
    m.clocked(
        &clk,
        vec![
            Stmt::set(&a_out, a_in.e())?,
            Stmt::set(&b_out, b_in.e())?,
            Stmt::if_else(
                rst.e(),
                vec![Stmt::set(&f_out, Expr::bool(false))?],
                vec![Stmt::set(&f_out, f_in.e())?],
            )?,
            // The flag starts a new tile: the finished sum leaves through the output chain.
            Stmt::set(
                &acc,
                Expr::mux(&f_in.e(), &zero_acc, &acc.e())?.add(&p_ext)?,
            )?,
            Stmt::set(&out_out, Expr::mux(&f_in.e(), &acc.e(), &out_in.e())?)?,
        ],
    )?;
    Ok(m.finish())
}

/// A signed product as an accumulator term: sign-extended to `wacc` bits and shifted left by
/// `shift` (the accumulator's extra fractional bits), spelled as a concatenation with zeros so
/// no bit is computed and lost. Validation guarantees the shifted product fits in `wacc` bits,
/// so dropping high product bits (when the product wire is wider than needed) is exact.
pub(crate) fn acc_term(
    m: &mut ModuleBuilder,
    name: &str,
    prod: &Expr,
    wacc: u32,
    shift: u32,
) -> Result<Expr> {
    if shift == 0 {
        return sext(m, name, prod, wacc);
    }
    let hi = wacc - shift;
    let base = if prod.width() <= hi {
        sext(m, name, prod, hi)?
    } else {
        let s = m.wire_from(name, prod.clone())?;
        m.allow_unused(name)?;
        s.slice(hi - 1, 0)?
    };
    Ok(Expr::concat(&[base, Expr::zero(shift)])?.as_signed())
}

/// The PE's multiply: `a × b` at full width (`wa + wb` bits, signed), as one DSP product wire
/// or as two shifted terms selected by the weight's CSD fields.
fn product(m: &mut ModuleBuilder, r: &Resolved, a: &Expr, b: &Expr) -> Result<Expr> {
    let wp = r.wa + r.wb;
    match r.p.pe {
        PeKind::Dsp | PeKind::DspPacked => {
            let p = m.product("prod", a, &b.as_signed())?;
            Ok(p.e())
        }
        PeKind::ShiftAdd => {
            let sb = shift_bits(r);
            let b_sig = m.wire_from("w_fields", b.clone())?;
            // Field layout, most significant first: z1 n1 s1 z2 n2 s2.
            let term = |m: &mut ModuleBuilder, k: u32| -> Result<Expr> {
                let base = if k == 0 { 2 + sb } else { 0 };
                let s = b_sig.slice(base + sb - 1, base)?;
                let n = b_sig.bit(base + sb)?;
                let z = b_sig.bit(base + sb + 1)?;
                let a_ext = sext(m, &format!("a_ext{k}"), a, wp)?;
                let sh = m.wire_from(&format!("sh{k}"), a_ext.shl_by(&s)?)?;
                let signed_term = Expr::mux(&n, &sh.e().neg(), &sh.e())?;
                Expr::mux(&z, &signed_term, &Expr::zero(wp).as_signed())
            };
            let t1 = term(m, 0)?;
            let t2 = term(m, 1)?;
            let p = m.wire_from("prod", t1.add(&t2)?)?;
            Ok(p.e())
        }
    }
}

/// The weight-stationary PE. Two weight registers: `w_sh` is a stage of the column's shadow
/// chain (shifted in from above while `wsh` is high, so the next tile's weights load while the
/// current tile computes) and `w_act` the weight in use. The tile-start flag travels with the
/// first A row of a tile; the PE switches to the shadow weight exactly in that cycle, so a
/// column can hold two tiles' worth of A rows at once without a bubble. The partial sum
/// `p_out = p_in + a_in·w` moves one row down per cycle.
pub(crate) fn pe_ws_module(r: &Resolved, name: &str) -> Result<Module> {
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "Weight-stationary PE: {} x {} -> {}-bit partial sums ({}).",
        r.ta,
        r.tb,
        r.wacc,
        match r.p.pe {
            PeKind::Dsp | PeKind::DspPacked => "DSP multiply",
            PeKind::ShiftAdd => "shift-add, no DSP",
        }
    ));
    let bw = b_lane_width(r);
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let a_in = m.input_signed("a_in", r.wa)?;
    let f_in = m.input("f_in", 1)?;
    let w_in = m.input("w_in", bw)?;
    let wsh = m.input("wsh", 1)?;
    let p_in = m.input_signed("p_in", r.wacc)?;
    let a_out = m.output_reg_signed("a_out", r.wa)?;
    let f_out = m.output_reg("f_out", 1)?;
    let w_sh = m.output_reg("w_out", bw)?;
    let p_out = m.output_reg_signed("p_out", r.wacc)?;
    let w_act = m.reg("w_act", bw)?;
    let w_eff = m.wire_from("w_eff", Expr::mux(&f_in.e(), &w_sh.e(), &w_act.e())?)?;
    let prod = product(&mut m, r, &a_in.e(), &w_eff.e())?;
    let p_ext = acc_term(&mut m, "prod_w", &prod, r.wacc, r.acc_shift)?;
    m.clocked(
        &clk,
        vec![
            Stmt::set(&a_out, a_in.e())?,
            Stmt::if_else(
                rst.e(),
                vec![Stmt::set(&f_out, Expr::bool(false))?],
                vec![Stmt::set(&f_out, f_in.e())?],
            )?,
            Stmt::if_(wsh.e(), vec![Stmt::set(&w_sh, w_in.e())?])?,
            Stmt::set(&w_act, w_eff.e())?,
            Stmt::set(&p_out, p_in.e().add(&p_ext)?)?,
        ],
    )?;
    Ok(m.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naf_reconstructs_every_8_bit_value() {
        for x in -128i128..=127 {
            let (p, n) = naf_digits(x, 8);
            assert_eq!(p & n, 0);
            assert_eq!(p & (p >> 1), 0, "non-adjacent");
            assert_eq!(i128::from(p) - i128::from(n), x, "x = {x}");
        }
        // Unsigned 8-bit weights travel as 9-bit signed values.
        for x in 0i128..=255 {
            let (p, n) = naf_digits(x, 9);
            assert_eq!(i128::from(p) - i128::from(n), x);
        }
        assert!(is_shift_add_weight(-128, 8));
        assert!(is_shift_add_weight(127, 8)); // 128 - 1
        assert!(!is_shift_add_weight(0b1010101, 8));
    }
}
