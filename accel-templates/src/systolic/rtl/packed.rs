//! `pe = dsp-packed`: groups of adjacent columns share one DSP multiply (see
//! [`crate::systolic::packing`] for the arithmetic).
//!
//! A group of `n` columns starting at column `c0` is one module per array row. Its weight
//! lanes are packed at the top of the array into one operand and skewed by `c0` (not by each
//! column's index), so the group multiplies the activation that column `c0` would see by all
//! `n` weights at once. Everything else keeps the one-PE-per-column timing exactly, so the
//! controllers, the drain and the cycle model are those of `dsp` PEs:
//! * the activation and the tile flag leave the group `n` cycles after they entered it, as
//!   they would have left its last column;
//! * output-stationary: column `c0 + k` finishes its sums `k` cycles early, and its output
//!   chain is delayed by `k` registers at the top of the array;
//! * weight-stationary: column `c0 + k`'s product waits `k` registers for the partial sum
//!   coming down that column.

use accelforge_hdl::helpers::{delay, sext};
use accelforge_hdl::{Expr, Module, ModuleBuilder, Result as HResult, Sig, Stmt};

use super::feed::{b_column_value, pe_instance};
use super::shell::Top;
use crate::systolic::packing::{groups, packed_bits};
use crate::systolic::params::Resolved;
use crate::systolic::pe::acc_term;

/// The PE modules of a design: one PE, or one module per packing-group size in use.
pub(super) enum Pes {
    /// One PE per position (`dsp`, `shift-add`).
    One(Module),
    /// `(columns, module)` for each group size (`dsp-packed`).
    Packed(Vec<(u32, Module)>),
}

impl Pes {
    /// The modules, for the design's file list.
    pub(super) fn modules(&self) -> Vec<&Module> {
        match self {
            Pes::One(m) => vec![m],
            Pes::Packed(v) => v.iter().map(|(_, m)| m).collect(),
        }
    }

    fn group(&self, n: u32) -> &Module {
        match self {
            Pes::One(m) => m,
            // `modules` built one module per group size, so the lookup always finds one.
            Pes::Packed(v) => v.iter().find(|(k, _)| *k == n).map_or(&v[0].1, |(_, m)| m),
        }
    }
}

/// Width of the packed operand of an `n`-column group.
pub(crate) fn packed_width(r: &Resolved, n: u32) -> u32 {
    packed_bits(n, r.product_bits, r.wb)
}

/// The group modules a design needs (names `{prefix}_pk{n}`).
pub(super) fn modules(r: &Resolved, prefix: &str, ws: bool) -> HResult<Vec<(u32, Module)>> {
    let mut sizes: Vec<u32> = groups(r.c, r.pack).iter().map(|g| g.1).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
        .into_iter()
        .rev()
        .map(|n| {
            let name = format!("{prefix}_pk{n}");
            let m = if ws {
                ws_group_module(r, &name, n)?
            } else {
                os_group_module(r, &name, n)?
            };
            Ok((n, m))
        })
        .collect()
}

/// `a × w` (the packed weights) as one product wire, then the `n` products separated, lowest
/// first: `prod_k = sext(rest_k[s−1:0])`, `rest_{k+1} = (rest_k >>> s) + rest_k[s−1]`. Each
/// `rest_k` is the exact packed sum of the products above `k`, so it fits its narrower wire.
fn separated(m: &mut ModuleBuilder, r: &Resolved, a: &Expr, w: &Expr, n: u32) -> HResult<Vec<Sig>> {
    let s = r.product_bits;
    let mut rest = m.product("prod", a, &w.as_signed())?;
    let mut out = Vec::new();
    for k in 0..n {
        if k + 1 == n {
            // The top product is exact in `s` bits; its remainder wire has one bit to spare.
            let top = if rest.width() > s {
                m.allow_unused(rest.name())?;
                rest.slice(s - 1, 0)?.as_signed()
            } else {
                rest.e()
            };
            out.push(m.wire_from(&format!("prod{k}"), top)?);
            break;
        }
        out.push(m.wire_from(&format!("prod{k}"), rest.slice(s - 1, 0)?.as_signed())?);
        let upper = rest.slice(rest.width() - 1, s)?.as_signed();
        let borrow = Expr::concat(&[Expr::zero(upper.width() - 1), rest.bit(s - 1)?])?.as_signed();
        rest = m.wire_from(&format!("rest{}", k + 1), upper.add(&borrow)?)?;
    }
    Ok(out)
}

/// Registers a chain of `n` stages from `input` to the output register `last` (the last stage),
/// cleared by `rst` when given (then a 1-bit flag); the inner stages are `{name}_q{k}`.
fn chain(
    m: &mut ModuleBuilder,
    (clk, rst): (&Sig, Option<&Sig>),
    (name, input, last): (&str, &Sig, &Sig),
    n: u32,
) -> HResult<()> {
    let inner = delay(m, clk, rst, &format!("{name}_q"), &input.e(), n - 1)?;
    let body = match rst {
        Some(rst) => vec![Stmt::if_else(
            rst.e(),
            vec![Stmt::set(last, Expr::bool(false))?],
            vec![Stmt::set(last, inner)?],
        )?],
        None => vec![Stmt::set(last, inner)?],
    };
    m.clocked(clk, body)
}

/// The output-stationary group of `n` columns: one multiply, `n` accumulators and output-chain
/// stages; the activation and flag pass on after `n` cycles.
fn os_group_module(r: &Resolved, name: &str, n: u32) -> HResult<Module> {
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "Output-stationary DSP-packed PE group: {n} columns of {} x {} -> {}-bit accumulators, \
         one multiply.",
        r.ta, r.tb, r.wacc
    ));
    let pw = packed_width(r, n);
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let a_in = m.input_signed("a_in", r.wa)?;
    let b_in = m.input("b_in", pw)?;
    let f_in = m.input("f_in", 1)?;
    let out_in = (0..n)
        .map(|k| m.input_signed(&format!("out_in{k}"), r.wacc))
        .collect::<HResult<Vec<_>>>()?;
    let a_out = m.output_reg_signed("a_out", r.wa)?;
    let b_out = m.output_reg("b_out", pw)?;
    let f_out = m.output_reg("f_out", 1)?;
    let out_out = (0..n)
        .map(|k| m.output_reg_signed(&format!("out_out{k}"), r.wacc))
        .collect::<HResult<Vec<_>>>()?;
    let prods = separated(&mut m, r, &a_in.e(), &b_in.e(), n)?;
    let zero_acc = Expr::zero(r.wacc).as_signed();
    let mut body = vec![Stmt::set(&b_out, b_in.e())?];
    for (k, prod) in prods.iter().enumerate() {
        let acc = m.reg_signed(&format!("acc{k}"), r.wacc)?;
        let term = acc_term(
            &mut m,
            &format!("prod{k}_w"),
            &prod.e(),
            r.wacc,
            r.acc_shift,
        )?;
        body.push(Stmt::set(
            &acc,
            Expr::mux(&f_in.e(), &zero_acc, &acc.e())?.add(&term)?,
        )?);
        body.push(Stmt::set(
            &out_out[k],
            Expr::mux(&f_in.e(), &acc.e(), &out_in[k].e())?,
        )?);
    }
    m.clocked(&clk, body)?;
    chain(&mut m, (&clk, None), ("a", &a_in, &a_out), n)?;
    chain(&mut m, (&clk, Some(&rst)), ("f", &f_in, &f_out), n)?;
    Ok(m.finish())
}

/// The weight-stationary group of `n` columns: the packed weight in a shadow stage and an
/// active register, one multiply, column `k`'s product delayed `k` cycles into its partial sum.
fn ws_group_module(r: &Resolved, name: &str, n: u32) -> HResult<Module> {
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "Weight-stationary DSP-packed PE group: {n} columns of {} x {} -> {}-bit partial sums, \
         one multiply.",
        r.ta, r.tb, r.wacc
    ));
    let pw = packed_width(r, n);
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let a_in = m.input_signed("a_in", r.wa)?;
    let f_in = m.input("f_in", 1)?;
    let w_in = m.input("w_in", pw)?;
    let wsh = m.input("wsh", 1)?;
    let p_in = (0..n)
        .map(|k| m.input_signed(&format!("p_in{k}"), r.wacc))
        .collect::<HResult<Vec<_>>>()?;
    let a_out = m.output_reg_signed("a_out", r.wa)?;
    let f_out = m.output_reg("f_out", 1)?;
    let w_sh = m.output_reg("w_out", pw)?;
    let p_out = (0..n)
        .map(|k| m.output_reg_signed(&format!("p_out{k}"), r.wacc))
        .collect::<HResult<Vec<_>>>()?;
    let w_act = m.reg("w_act", pw)?;
    let w_eff = m.wire_from("w_eff", Expr::mux(&f_in.e(), &w_sh.e(), &w_act.e())?)?;
    let prods = separated(&mut m, r, &a_in.e(), &w_eff.e(), n)?;
    let mut body = vec![
        Stmt::if_(wsh.e(), vec![Stmt::set(&w_sh, w_in.e())?])?,
        Stmt::set(&w_act, w_eff.e())?,
    ];
    for (k, prod) in prods.iter().enumerate() {
        let late = delay(
            &mut m,
            &clk,
            None,
            &format!("prod{k}_q"),
            &prod.e(),
            k as u32,
        )?;
        let term = acc_term(&mut m, &format!("prod{k}_w"), &late, r.wacc, r.acc_shift)?;
        body.push(Stmt::set(&p_out[k], p_in[k].e().add(&term)?)?);
    }
    m.clocked(&clk, body)?;
    chain(&mut m, (&clk, None), ("a", &a_in, &a_out), n)?;
    chain(&mut m, (&clk, Some(&rst)), ("f", &f_in, &f_out), n)?;
    Ok(m.finish())
}

/// The packed weight lane of every group: the columns' lanes (`{name}_lane{j}`, zero unless
/// `keep`) packed into `{name}_pk{q}` and skewed by the group's first column.
pub(super) fn packed_lanes(
    m: &mut ModuleBuilder,
    r: &Resolved,
    clk: &Sig,
    (name, all): (&str, &Sig),
    keep: &Expr,
) -> HResult<Vec<Expr>> {
    let s = r.product_bits;
    let mut lanes = Vec::new();
    for (q, (first, n)) in groups(r.c, r.pack).into_iter().enumerate() {
        let pw = packed_width(r, n);
        let mut sum: Option<Expr> = None;
        for k in 0..n {
            let lane = b_column_value(m, r, (name, all, first + k), keep)?;
            let wide = sext(
                m,
                &format!("{name}_lane{}_x", first + k),
                &lane.e().as_signed(),
                pw,
            )?;
            let term = wide.shl(k * s);
            sum = Some(match sum {
                Some(acc) => acc.add(&term)?,
                None => term,
            });
        }
        // An unsigned wire like the other lanes (the group reads it as signed).
        let sum = sum.expect("a group has at least one column").as_unsigned();
        let packed = m.wire_from(&format!("{name}_pk{q}"), sum)?;
        lanes.push(delay(
            m,
            clk,
            None,
            &format!("{name}_pksk{q}"),
            &packed.e(),
            first,
        )?);
    }
    Ok(lanes)
}

/// Port connections with owned names (the instance API takes `&str`).
fn instance(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    pe: &Module,
    at: (u32, u32),
    ports: Vec<(String, Expr)>,
) -> HResult<()> {
    let refs: Vec<(&str, Expr)> = ports.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
    pe_instance(m, t, pe, at, &refs)
}

/// The wires group `q` of row `i` drives towards its neighbours: the activation and flag to
/// the right (unused after the last group), the packed weight lane `{lane}` down (unused below
/// the last row).
fn group_outputs(
    m: &mut ModuleBuilder,
    r: &Resolved,
    (lane, i, q): (&str, u32, u32),
    n: u32,
    groups: usize,
) -> HResult<[Sig; 3]> {
    let a_o = m.wire_signed(&format!("a_{i}_{q}"), r.wa)?;
    let f_o = m.wire(&format!("f_{i}_{q}"), 1)?;
    let l_o = m.wire(&format!("{lane}_{i}_{q}"), packed_width(r, n))?;
    if q as usize + 1 == groups {
        m.allow_unused(a_o.name())?;
        m.allow_unused(f_o.name())?;
    }
    if i + 1 == r.r {
        m.allow_unused(l_o.name())?;
    }
    Ok([a_o, f_o, l_o])
}

/// The output-stationary grid of R rows × groups: A and the flag move right (a group passes
/// them on after its width in cycles), packed weights down, results up each column's output
/// chain. Returns each column's chain top, delayed to the one-PE-per-column timing.
pub(super) fn os_grid(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    pes: &Pes,
    (mut a_h, mut f_h, mut b_v): (Vec<Expr>, Vec<Expr>, Vec<Expr>),
) -> HResult<Vec<Sig>> {
    let r = t.r;
    let gs = groups(r.c, r.pack);
    let mut out: Vec<Vec<Sig>> = Vec::new();
    for i in 0..r.r {
        out.push(
            (0..r.c)
                .map(|j| m.wire_signed(&format!("o_{i}_{j}"), r.wacc))
                .collect::<HResult<_>>()?,
        );
    }
    for i in 0..r.r {
        let iu = i as usize;
        for (q, &(first, n)) in gs.iter().enumerate() {
            let [a_o, f_o, b_o] = group_outputs(m, r, ("b", i, q as u32), n, gs.len())?;
            let mut ports = vec![
                ("a_in".to_string(), a_h[iu].clone()),
                ("b_in".to_string(), b_v[q].clone()),
                ("f_in".to_string(), f_h[iu].clone()),
                ("a_out".to_string(), a_o.e()),
                ("b_out".to_string(), b_o.e()),
                ("f_out".to_string(), f_o.e()),
            ];
            for k in 0..n {
                let j = (first + k) as usize;
                let below = if i + 1 < r.r {
                    out[iu + 1][j].e()
                } else {
                    Expr::zero(r.wacc).as_signed()
                };
                ports.push((format!("out_in{k}"), below));
                ports.push((format!("out_out{k}"), out[iu][j].e()));
            }
            instance(m, t, pes.group(n), (i, q as u32), ports)?;
            a_h[iu] = a_o.e();
            f_h[iu] = f_o.e();
            b_v[q] = b_o.e();
        }
    }
    let clk = &t.ports.clk;
    let mut tops = Vec::new();
    for &(first, n) in &gs {
        for k in 0..n {
            let j = first + k;
            let late = delay(
                m,
                clk,
                None,
                &format!("o_top{j}"),
                &out[0][j as usize].e(),
                k,
            )?;
            tops.push(m.wire_from(&format!("o_col{j}"), late)?);
        }
    }
    Ok(tops)
}

/// The weight-stationary grid of R rows × groups: A and the flag move right, packed weights
/// (and the shadow strobe, one per group) down the shadow chains, partial sums down each
/// column. Returns the column bottoms.
pub(super) fn ws_grid(
    m: &mut ModuleBuilder,
    t: &Top<'_>,
    pes: &Pes,
    (mut a_h, mut f_h, mut w_v, wsh): (Vec<Expr>, Vec<Expr>, Vec<Expr>, Vec<Expr>),
) -> HResult<Vec<Expr>> {
    let r = t.r;
    let gs = groups(r.c, r.pack);
    let mut p_v: Vec<Expr> = (0..r.c).map(|_| Expr::zero(r.wacc).as_signed()).collect();
    for i in 0..r.r {
        let iu = i as usize;
        for (q, &(first, n)) in gs.iter().enumerate() {
            let [a_o, f_o, w_o] = group_outputs(m, r, ("w", i, q as u32), n, gs.len())?;
            let mut ports = vec![
                ("a_in".to_string(), a_h[iu].clone()),
                ("f_in".to_string(), f_h[iu].clone()),
                ("w_in".to_string(), w_v[q].clone()),
                ("wsh".to_string(), wsh[q].clone()),
                ("a_out".to_string(), a_o.e()),
                ("f_out".to_string(), f_o.e()),
                ("w_out".to_string(), w_o.e()),
            ];
            for k in 0..n {
                let j = (first + k) as usize;
                let p_o = m.wire_signed(&format!("p_{i}_{j}"), r.wacc)?;
                ports.push((format!("p_in{k}"), p_v[j].clone()));
                ports.push((format!("p_out{k}"), p_o.e()));
                p_v[j] = p_o.e();
            }
            instance(m, t, pes.group(n), (i, q as u32), ports)?;
            a_h[iu] = a_o.e();
            f_h[iu] = f_o.e();
            w_v[q] = w_o.e();
        }
    }
    Ok(p_v)
}
