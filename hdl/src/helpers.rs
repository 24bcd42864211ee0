//! Small generic building helpers on top of [`Expr`] and [`ModuleBuilder`]: unsigned constants
//! and constant arithmetic at an operand's width, resizing through named wires, register delay
//! chains, a block-RAM simple dual port, and typed AXI4-Stream port bundles. Generators use them
//! so the same few lines of tree building are not spelled once per template.
//!
//! Everything here only combines the checked builder calls, so the widths are still checked
//! when the tree is built.

use crate::error::Result;
use crate::expr::{Expr, Mem, Sig};
use crate::module::{LValue, ModuleBuilder, Stmt};

/// An unsigned constant `v` of `w` bits (an error if it does not fit).
pub fn lit(v: u64, w: u32) -> Result<Expr> {
    Expr::lit(u128::from(v), w)
}

/// `x + 1` at x's width.
pub fn inc(x: &Sig) -> Result<Expr> {
    x.e().add(&lit(1, x.width())?)
}

/// `x + c` at x's width (`c` must fit that width).
pub fn add_c(x: &Expr, c: u64) -> Result<Expr> {
    x.add(&lit(c, x.width())?)
}

/// `x + c` modulo 2^width(x): `c` is reduced to x's width first, so a step wider than the
/// operand (an address base stepping past its last use) is not an error.
pub fn add_wrap(x: &Expr, c: u64) -> Result<Expr> {
    let w = x.width();
    let mask = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
    x.add(&lit(c & mask, w)?)
}

/// `x - c` at x's width.
pub fn sub_c(x: &Expr, c: u64) -> Result<Expr> {
    x.sub(&lit(c, x.width())?)
}

/// `min(x, c)` for an unsigned x, as `x < c ? x : c`.
pub fn min_c(x: &Expr, c: u64) -> Result<Expr> {
    let cc = lit(c, x.width())?;
    Expr::mux(&x.lt(&cc)?, x, &cc)
}

/// `x > c` for an unsigned x.
pub fn gt_c(x: &Expr, c: u64) -> Result<Expr> {
    x.gt(&lit(c, x.width())?)
}

/// `x == c`.
pub fn eq_c(x: &Expr, c: u64) -> Result<Expr> {
    x.eq(&lit(c, x.width())?)
}

/// `s <= e;` (or `s = e;` in a combinational block).
pub fn set(s: &Sig, e: Expr) -> Result<Stmt> {
    Stmt::set(s, e)
}

/// `if (c) begin t end`.
pub fn if_(c: Expr, t: Vec<Stmt>) -> Result<Stmt> {
    Stmt::if_(c, t)
}

/// `if (c) begin t end else begin e end`.
pub fn if_else(c: Expr, t: Vec<Stmt>, e: Vec<Stmt>) -> Result<Stmt> {
    Stmt::if_else(c, t, e)
}

/// `s <= 0;`
pub fn clear(s: &Sig) -> Result<Stmt> {
    Stmt::set(s, Expr::zero(s.width()))
}

/// `st == v`: a state register in state `v`.
pub fn state_is(st: &Sig, v: u64) -> Result<Expr> {
    eq_c(&st.e(), v)
}

/// `st <= v;`: go to state `v`.
pub fn goto(st: &Sig, v: u64) -> Result<Stmt> {
    Stmt::set(st, lit(v, st.width())?)
}

/// Element `i` (`w` bits) of a packed word, as a signed expression.
pub fn elem_signed(word: &Sig, i: u32, w: u32) -> Result<Expr> {
    Ok(word.slice(i * w + w - 1, i * w)?.as_signed())
}

/// `{parts[n-1], …, parts[0]}`: element 0 in the low bits.
pub fn pack_lsb_first(parts: &[Expr]) -> Result<Expr> {
    let rev: Vec<Expr> = parts.iter().rev().cloned().collect();
    Expr::concat(&rev)
}

/// A one-bit `e` zero-extended to `w` bits as `{(w-1)'b0, e}`: the ±1 step of a counter.
pub fn bit_to(e: Expr, w: u32) -> Result<Expr> {
    Expr::concat(&[Expr::zero(w - 1), e])
}

/// A zero of `e`'s width and signedness (the reset value of a register holding `e`).
pub fn zero_like(e: &Expr) -> Expr {
    if e.signed() {
        Expr::zero(e.width()).as_signed()
    } else {
        Expr::zero(e.width())
    }
}

/// Resizes an unsigned expression to `w` bits: zero-extends, or keeps the low bits through a
/// wire `name` (marked as allowed to be partly unused).
pub fn fit(m: &mut ModuleBuilder, name: &str, x: &Expr, w: u32) -> Result<Expr> {
    if x.width() == w {
        return Ok(x.clone());
    }
    if x.width() < w {
        return x.zext(w);
    }
    let s = m.wire_from(name, x.clone())?;
    m.allow_unused(name)?;
    s.slice(w - 1, 0)
}

/// Sign-extends a signed expression to `w` bits through a wire `name`.
pub fn sext(m: &mut ModuleBuilder, name: &str, x: &Expr, w: u32) -> Result<Expr> {
    if x.width() == w {
        return Ok(x.clone());
    }
    let s = m.wire_from(name, x.clone())?;
    s.extend(w)
}

/// `if (rst) on_rst else run` as one statement.
pub fn rst_or(rst: &Expr, on_rst: Vec<Stmt>, run: Vec<Stmt>) -> Result<Stmt> {
    Stmt::if_else(rst.clone(), on_rst, run)
}

/// A chain of `stages` registers `{name}_d0..` (each as wide and as signed as `input`) delaying
/// `input`, cleared by `rst` when given; returns the last stage, or `input` for zero stages.
pub fn delay(
    m: &mut ModuleBuilder,
    clk: &Sig,
    rst: Option<&Sig>,
    name: &str,
    input: &Expr,
    stages: u32,
) -> Result<Expr> {
    let mut cur = input.clone();
    for s in 0..stages {
        let reg = if input.signed() {
            m.reg_signed(&format!("{name}_d{s}"), input.width())?
        } else {
            m.reg(&format!("{name}_d{s}"), input.width())?
        };
        let body = match rst {
            Some(rst) => vec![Stmt::if_else(
                rst.e(),
                vec![Stmt::set(&reg, zero_like(input))?],
                vec![Stmt::set(&reg, cur.clone())?],
            )?],
            None => vec![Stmt::set(&reg, cur.clone())?],
        };
        m.clocked(clk, body)?;
        cur = reg.e();
    }
    Ok(cur)
}

/// The write port of a [`bram`]: written with `wdata` at `waddr` when `we`.
#[derive(Debug, Clone, Copy)]
pub struct BramWrite<'a> {
    /// Write enable (1 bit).
    pub we: &'a Expr,
    /// Write address.
    pub addr: &'a Expr,
    /// Write data (the memory's width).
    pub data: &'a Expr,
}

/// A simple dual-port block RAM `name` (`depth` words of `width` bits) with a registered,
/// read-first read at `raddr`; returns the read-data register `{name}_rdata`.
pub fn bram(
    m: &mut ModuleBuilder,
    clk: &Sig,
    (name, width, depth): (&str, u32, u32),
    w: &BramWrite<'_>,
    raddr: &Expr,
) -> Result<Sig> {
    styled_ram(m, clk, (name, width, depth, "block"), w, raddr)
}

/// [`bram`] with the memory's `ram_style`: `block` (RAMB18/RAMB36) or `ultra` (URAM288 on
/// UltraScale+; Yosys maps it with `synth_xilinx -uram`, which [`crate::tools::synth`] adds
/// for designs that ask for it).
pub fn styled_ram(
    m: &mut ModuleBuilder,
    clk: &Sig,
    (name, width, depth, style): (&str, u32, u32, &str),
    w: &BramWrite<'_>,
    raddr: &Expr,
) -> Result<Sig> {
    let mem: Mem = m.memory(name, width, depth, false, Some(style))?;
    let rdata = m.reg(&format!("{name}_rdata"), width)?;
    m.clocked(
        clk,
        vec![
            Stmt::if_(
                w.we.clone(),
                vec![Stmt::assign(LValue::word(&mem, w.addr)?, w.data.clone())?],
            )?,
            // Read-first registered read: the shape Yosys maps to RAMB18/RAMB36.
            Stmt::set(&rdata, mem.read(raddr)?)?,
        ],
    )?;
    Ok(rdata)
}

/// An AXI4-Stream input (the module is the subordinate): ports `{prefix}_tdata`, `_tvalid`,
/// `_tready` (an output wire), `_tlast`, in that order.
#[derive(Debug, Clone)]
pub struct AxisIn {
    /// `{prefix}_tdata`.
    pub tdata: Sig,
    /// `{prefix}_tvalid`.
    pub tvalid: Sig,
    /// `{prefix}_tready` (output wire, to be assigned).
    pub tready: Sig,
    /// `{prefix}_tlast`.
    pub tlast: Sig,
}

impl AxisIn {
    /// Declares the four ports, `bits` of data.
    pub fn declare(m: &mut ModuleBuilder, prefix: &str, bits: u32) -> Result<Self> {
        Ok(AxisIn {
            tdata: m.input(&format!("{prefix}_tdata"), bits)?,
            tvalid: m.input(&format!("{prefix}_tvalid"), 1)?,
            tready: m.output(&format!("{prefix}_tready"), 1)?,
            tlast: m.input(&format!("{prefix}_tlast"), 1)?,
        })
    }
}

/// An AXI4-Stream output (the module is the manager): ports `{prefix}_tdata` (an output reg),
/// `_tvalid` and `_tlast` (output wires), `_tready`, in the order data, valid, ready, last.
#[derive(Debug, Clone)]
pub struct AxisOut {
    /// `{prefix}_tdata` (output reg).
    pub tdata: Sig,
    /// `{prefix}_tvalid` (output wire).
    pub tvalid: Sig,
    /// `{prefix}_tready`.
    pub tready: Sig,
    /// `{prefix}_tlast` (output wire).
    pub tlast: Sig,
}

impl AxisOut {
    /// Declares the four ports, `bits` of data.
    pub fn declare(m: &mut ModuleBuilder, prefix: &str, bits: u32) -> Result<Self> {
        Ok(AxisOut {
            tdata: m.output_reg(&format!("{prefix}_tdata"), bits)?,
            tvalid: m.output(&format!("{prefix}_tvalid"), 1)?,
            tready: m.input(&format!("{prefix}_tready"), 1)?,
            tlast: m.output(&format!("{prefix}_tlast"), 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::Design;

    #[test]
    fn constant_helpers_check_widths() {
        let x = Expr::zero(4);
        assert!(lit(16, 4).is_err(), "16 does not fit 4 bits");
        assert!(add_c(&x, 16).is_err());
        // add_wrap reduces the step to the operand's width instead.
        assert!(add_wrap(&x, 16).is_ok());
        assert_eq!(min_c(&x, 3).unwrap().width(), 4);
        assert_eq!(gt_c(&x, 3).unwrap().width(), 1);
        assert_eq!(bit_to(Expr::bool(true), 5).unwrap().width(), 5);
        assert!(zero_like(&Expr::zero(3).as_signed()).signed());
    }

    #[test]
    fn delay_bram_and_axis_print_as_expected() {
        let mut m = ModuleBuilder::new("h").unwrap();
        let clk = m.input("clk", 1).unwrap();
        let rst = m.input("rst", 1).unwrap();
        let s = AxisIn::declare(&mut m, "s_axis", 16).unwrap();
        let o = AxisOut::declare(&mut m, "m_axis", 8).unwrap();
        m.assign_sig(&s.tready, o.tready.e()).unwrap();
        m.allow_unused(s.tlast.name()).unwrap();
        let d = delay(&mut m, &clk, Some(&rst), "v", &s.tvalid.e(), 2).unwrap();
        let lo = fit(&mut m, "lo", &s.tdata.e(), 3).unwrap();
        let rd = bram(
            &mut m,
            &clk,
            ("ram", 8, 8),
            &BramWrite {
                we: &d,
                addr: &lo,
                data: &s.tdata.slice(15, 8).unwrap(),
            },
            &lo,
        )
        .unwrap();
        m.clocked(&clk, vec![Stmt::set(&o.tdata, rd.e()).unwrap()])
            .unwrap();
        m.assign_sig(&o.tvalid, d.clone()).unwrap();
        m.assign_sig(&o.tlast, Expr::bool(false)).unwrap();
        let text = Design::new(m.finish(), &"t").files()[0].1.clone();
        for want in [
            "input  wire [15:0] s_axis_tdata,\n    input  wire s_axis_tvalid,\n    output wire s_axis_tready,",
            "output wire s_axis_tready",
            "output reg  [7:0] m_axis_tdata,\n    output wire m_axis_tvalid,\n    input  wire m_axis_tready,\n    output wire m_axis_tlast",
            "v_d1 <= v_d0;",
            "(* ram_style = \"block\" *)",
            "ram_rdata <= ram[lo[2:0]];",
        ] {
            assert!(text.contains(want), "missing `{want}` in\n{text}");
        }
    }
}
