//! `mac`: multiply-accumulate with an explicit full-width product wire (the shape Yosys and
//! Vivado map to one DSP slice) and an accumulator that either cannot overflow (sized by
//! [`crate::qfx::acc_type_for_dot`]) or saturates.

use accelforge_hdl::{Design, Expr, ModuleBuilder, Sig, Stmt};
use serde::{Deserialize, Serialize};

use super::{Result, UnitError};
use crate::qfx::{Fx, Overflow, QType, Quant, acc_type_for_dot};

/// Parameters of a MAC unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacParams {
    /// Left operand type (e.g. activations).
    pub a: QType,
    /// Right operand type (e.g. weights).
    pub b: QType,
    /// Accumulator type: must have exactly F_a + F_b fractional bits (the product's scale).
    pub acc: QType,
    /// Clamp to the accumulator's range instead of wrapping.
    pub saturate: bool,
}

impl MacParams {
    /// The exact accumulator for a reduction of length `k` (never overflows, so never saturates).
    pub fn for_dot(a: QType, b: QType, k: u64) -> Result<MacParams> {
        let acc = acc_type_for_dot(&a, &b, k)?;
        Ok(MacParams {
            a,
            b,
            acc,
            saturate: false,
        })
    }

    /// Checks that the accumulator can hold one product at the product's scale.
    pub fn validate(&self) -> Result<()> {
        let f = self.a.frac_bits() + self.b.frac_bits();
        if self.acc.frac_bits() != f {
            return Err(UnitError::Unsupported(format!(
                "mac: accumulator {} has {} fractional bits; {} x {} products have {f}",
                self.acc,
                self.acc.frac_bits(),
                self.a,
                self.b
            )));
        }
        let pw = self.a.width() + self.b.width();
        if self.acc.width() < pw {
            return Err(UnitError::Unsupported(format!(
                "mac: accumulator {} is narrower than the {pw}-bit product",
                self.acc
            )));
        }
        if self.acc.width() > 128 {
            return Err(UnitError::Unsupported(format!(
                "mac: accumulator {} is wider than 128 bits",
                self.acc
            )));
        }
        if !self.acc.is_signed() && (self.a.is_signed() || self.b.is_signed()) {
            return Err(UnitError::Unsupported(
                "mac: a signed product needs a signed accumulator".into(),
            ));
        }
        Ok(())
    }

    /// The accumulator type with the overflow mode the hardware applies on each addition.
    fn acc_with_mode(&self) -> Result<QType> {
        let o = if self.saturate {
            Overflow::Sat
        } else {
            Overflow::Wrap
        };
        Ok(self.acc.with_modes(Quant::Trn, o, 0)?)
    }
}

/// Signed view of an operand: unsigned operands get one zero bit on top so both sides of the
/// product are signed (the product stays exact).
fn signed_operand(m: &mut ModuleBuilder, name: &str, x: &Sig, signed: bool) -> Result<Expr> {
    Ok(if x.signed() || !signed {
        x.e()
    } else {
        m.wire_from(name, x.e().zext(x.width() + 1)?.as_signed())?
            .e()
    })
}

/// Adds `prefix_prod`, the full-width product `a × b` (width W_a + W_b, signed when either is).
pub fn emit_product(m: &mut ModuleBuilder, prefix: &str, a: &Sig, b: &Sig) -> Result<Sig> {
    let signed = a.signed() || b.signed();
    let ea = signed_operand(m, &format!("{prefix}_a_s"), a, signed)?;
    let eb = signed_operand(m, &format!("{prefix}_b_s"), b, signed)?;
    let p = m.product(&format!("{prefix}_full"), &ea, &eb)?;
    let w = a.width() + b.width();
    if p.width() == w {
        return Ok(p);
    }
    // A mixed-sign product carries one redundant bit: the exact value fits in W_a + W_b bits.
    m.allow_unused(p.name())?;
    Ok(m.wire_from(&format!("{prefix}_prod"), p.slice(w - 1, 0)?.as_signed())?)
}

/// A MAC module. Ports: `clk`, `rst`, `en` (accumulate this cycle), `clear` (with `en`: start
/// a new sum with this product), `a`, `b`, `acc` (registered).
pub fn mac_module(name: &str, p: &MacParams) -> Result<Design> {
    p.validate()?;
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "MAC: {} x {} into {}{}",
        p.a,
        p.b,
        p.acc,
        if p.saturate { ", saturating" } else { "" }
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let en = m.input("en", 1)?;
    let clear = m.input("clear", 1)?;
    let a = if p.a.is_signed() {
        m.input_signed("a", p.a.width())?
    } else {
        m.input("a", p.a.width())?
    };
    let b = if p.b.is_signed() {
        m.input_signed("b", p.b.width())?
    } else {
        m.input("b", p.b.width())?
    };
    let wa = p.acc.width();
    let signed = p.acc.is_signed();
    let acc = if signed {
        m.output_reg_signed("acc", wa)?
    } else {
        m.output_reg("acc", wa)?
    };
    let prod = emit_product(&mut m, "mul", &a, &b)?;
    let prod_ext = if signed {
        prod.extend(wa)?
    } else {
        prod.e().zext(wa)?
    };
    let base = Expr::mux(
        &clear.e(),
        &if signed {
            Expr::slit(0, wa)?
        } else {
            Expr::zero(wa)
        },
        &acc.e(),
    )?;
    let base = m.wire_from("acc_base", base)?;
    let next = if p.saturate {
        // One extra bit holds the exact sum; clamp it back into the accumulator's range.
        let sum = if signed {
            m.wire_from("acc_sum", base.extend(wa + 1)?.add(&prod.extend(wa + 1)?)?)?
        } else {
            m.wire_from(
                "acc_sum",
                base.e().zext(wa + 1)?.add(&prod.e().zext(wa + 1)?)?,
            )?
        };
        let acc_t = p.acc_with_mode()?;
        let (lo, hi) = (acc_t.min_raw(), acc_t.max_raw());
        let c = |v: i128| {
            if signed {
                Expr::slit(v, wa + 1)
            } else {
                Expr::lit(v as u128, wa + 1)
            }
        };
        let fit = |v: i128| {
            if signed {
                Expr::slit(v, wa)
            } else {
                Expr::lit(v as u128, wa)
            }
        };
        let low = if signed {
            sum.slice(wa - 1, 0)?.as_signed()
        } else {
            sum.slice(wa - 1, 0)?
        };
        // Unsigned sums of unsigned products only grow, so only signed ones need a lower clamp.
        let clamped_low = if signed {
            Expr::mux(&sum.e().lt(&c(lo)?)?, &fit(lo)?, &low)?
        } else {
            low
        };
        Expr::mux(&sum.e().gt(&c(hi)?)?, &fit(hi)?, &clamped_low)?
    } else {
        base.e().add(&prod_ext)?
    };
    let zero = if signed {
        Expr::slit(0, wa)?
    } else {
        Expr::zero(wa)
    };
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![Stmt::set(&acc, zero)?],
            vec![Stmt::if_(en.e(), vec![Stmt::set(&acc, next)?])?],
        )?],
    )?;
    Ok(Design::new(m.finish(), p))
}

/// Golden model of [`mac_module`], in qfx arithmetic.
#[derive(Debug, Clone)]
pub struct MacModel {
    params: MacParams,
    acc_t: QType,
    acc: Fx,
}

impl MacModel {
    /// A cleared accumulator.
    pub fn new(p: &MacParams) -> Result<MacModel> {
        p.validate()?;
        let acc_t = p.acc_with_mode()?;
        Ok(MacModel {
            params: p.clone(),
            acc: Fx::zero(&acc_t),
            acc_t,
        })
    }
    /// The accumulator's raw value (what the `acc` port shows).
    pub fn acc_raw(&self) -> i128 {
        self.acc.raw()
    }
    /// One rising edge.
    pub fn tick(
        &mut self,
        rst: bool,
        en: bool,
        clear: bool,
        a_raw: i128,
        b_raw: i128,
    ) -> Result<()> {
        if rst {
            self.acc = Fx::zero(&self.acc_t);
            return Ok(());
        }
        if !en {
            return Ok(());
        }
        let prod =
            Fx::from_raw(a_raw, &self.params.a)?.mul(&Fx::from_raw(b_raw, &self.params.b)?)?;
        let base = if clear {
            Fx::zero(&self.acc_t)
        } else {
            self.acc
        };
        self.acc = base.add(&prod)?.convert(&self.acc_t);
        Ok(())
    }
}
