//! A grid of signed 8-bit MAC processing elements with skewed operand feeds: the simulator's
//! speed benchmark (16×16 is the reference size) and a small example of a generated array.
//!
//! `a_in` carries one value per row and `b_in` one per column; row `r` (column `c`) is delayed by
//! `r` (`c`) cycles so the wavefronts meet along the diagonals. `a` moves right and `b` down one
//! PE per cycle; each PE forms an explicit full-width product and accumulates it into 32 bits.
//! `acc_out` shows the accumulator selected by `sel`, which keeps every PE observable.

use serde::{Deserialize, Serialize};

use super::check_range;
use crate::design::Design;
use crate::error::Result;
use crate::expr::{Expr, Sig, clog2};
use crate::module::{Module, ModuleBuilder, Stmt};

/// Parameters of [`design`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacGridParams {
    /// PE rows (1..=64).
    pub rows: u32,
    /// PE columns (1..=64).
    pub cols: u32,
}

fn pe() -> Result<Module> {
    let mut m = ModuleBuilder::new("af_mac_pe_s8")?;
    m.doc("Signed 8x8 MAC PE: passes a right and b down, accumulates a*b into 32 bits.");
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let a_in = m.input_signed("a_in", 8)?;
    let b_in = m.input_signed("b_in", 8)?;
    let a_out = m.output_reg_signed("a_out", 8)?;
    let b_out = m.output_reg_signed("b_out", 8)?;
    let acc = m.output_reg_signed("acc", 32)?;
    let prod = m.product("prod", &a_in.e(), &b_in.e())?;
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&a_out, Expr::slit(0, 8)?)?,
                Stmt::set(&b_out, Expr::slit(0, 8)?)?,
                Stmt::set(&acc, Expr::slit(0, 32)?)?,
            ],
            vec![
                Stmt::set(&a_out, a_in.e())?,
                Stmt::set(&b_out, b_in.e())?,
                Stmt::set(&acc, acc.e().add(&prod.extend(32)?)?)?,
            ],
        )?],
    )?;
    Ok(m.finish())
}

/// The grid, top module `af_mac_grid_<rows>x<cols>`, with ports `clk`, `rst`, `a_in[rows*8]`,
/// `b_in[cols*8]`, `sel`, `acc_out[32]`.
pub fn design(p: &MacGridParams) -> Result<Design> {
    check_range("mac grid", "rows", p.rows, 1, 64)?;
    check_range("mac grid", "cols", p.cols, 1, 64)?;
    let (rows, cols) = (p.rows, p.cols);
    let pe = pe()?;
    let mut m = ModuleBuilder::new(&format!("af_mac_grid_{rows}x{cols}"))?;
    m.doc(format!(
        "{rows}x{cols} grid of signed 8-bit MAC PEs with skewed feeds."
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let a_in = m.input("a_in", rows * 8)?;
    let b_in = m.input("b_in", cols * 8)?;
    let sel_w = clog2(u64::from(rows * cols)).max(1);
    let sel = m.input("sel", sel_w)?;
    let acc_out = m.output_reg("acc_out", 32)?;

    // Skew: lane k passes through k registers; each link is its own net, which also keeps
    // Verilator from copying a wide packed bus on every PE update.
    let skew = |prefix: &str, input: &Sig, lanes: u32, m: &mut ModuleBuilder| -> Result<Vec<Sig>> {
        let mut heads = Vec::new();
        let mut body = Vec::new();
        for k in 0..lanes {
            let mut prev = m.wire_from(
                &format!("{prefix}_lane{k}"),
                input.slice(k * 8 + 7, k * 8)?.as_signed(),
            )?;
            for d in 1..=k {
                let r = m.reg_signed(&format!("{prefix}_lane{k}_d{d}"), 8)?;
                body.push(Stmt::set(
                    &r,
                    Expr::mux(&rst.e(), &Expr::slit(0, 8)?, &prev.e())?,
                )?);
                prev = r;
            }
            heads.push(prev);
        }
        if !body.is_empty() {
            m.clocked(&clk, body)?;
        }
        Ok(heads)
    };
    let a_heads = skew("a", &a_in, rows, &mut m)?;
    let b_heads = skew("b", &b_in, cols, &mut m)?;

    let mut accs = Vec::new();
    let mut b_row: Vec<Sig> = b_heads;
    for r in 0..rows {
        let mut a_link = a_heads[r as usize].clone();
        let mut next_b = Vec::new();
        for c in 0..cols {
            let a_out = m.wire_signed(&format!("a_r{r}_c{c}"), 8)?;
            let b_out = m.wire_signed(&format!("b_r{r}_c{c}"), 8)?;
            let acc = m.wire_signed(&format!("acc_r{r}_c{c}"), 32)?;
            if c + 1 == cols {
                m.allow_unused(a_out.name())?;
            }
            if r + 1 == rows {
                m.allow_unused(b_out.name())?;
            }
            m.instance(
                &pe,
                &format!("pe_r{r}_c{c}"),
                &[],
                &[
                    ("clk", clk.e()),
                    ("rst", rst.e()),
                    ("a_in", a_link.e()),
                    ("b_in", b_row[c as usize].e()),
                    ("a_out", a_out.e()),
                    ("b_out", b_out.e()),
                    ("acc", acc.e()),
                ],
            )?;
            a_link = a_out;
            next_b.push(b_out);
            accs.push(acc);
        }
        b_row = next_b;
    }
    let arms = accs
        .iter()
        .enumerate()
        .map(|(i, acc)| {
            Ok((
                vec![Expr::lit(i as u128, sel_w)?],
                vec![Stmt::set(&acc_out, acc.e().as_unsigned())?],
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    m.comb(vec![Stmt::case(
        sel.e(),
        arms,
        vec![Stmt::set(&acc_out, Expr::zero(32))?],
    )?])?;
    let mut d = Design::new(m.finish(), p);
    d.add(pe)?;
    Ok(d)
}
