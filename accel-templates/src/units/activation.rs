//! Activation functions as RTL, each with a golden model in qfx arithmetic.
//!
//! - `relu`, `relu6`/`clip` (upper bound given as a value), `leaky_relu` with slope 2^−k
//!   (an arithmetic shift, i.e. rounding toward −∞): computed exactly in the input type, then
//!   converted to the output type with the output type's modes (the [`super::requantize`] unit).
//! - `sigmoid`, `tanh`, `gelu`: a table indexed by the input's top `table_bits` bits. Each entry
//!   is the function at the centre of its input interval, converted to the output type from f64
//!   with the output type's modes. Golden model and RTL use the same table, so they agree bit
//!   for bit; the error against the exact f64 function is measured over every input value by
//!   [`ActivationParams::max_abs_error`] (GELU is the erf form, with a 1.5e-7-accurate erf).

use accelforge_hdl::{Design, Expr, ModuleBuilder, Sig, Stmt};
use serde::{Deserialize, Serialize};

use super::requantize::emit_requantize;
use super::{Result, UnitError};
use crate::qfx::{Fx, QType};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ActivationKind {
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), max) — `max = 6` is ReLU6.
    Clip {
        /// Upper bound (converted into the input type with its modes).
        max: f64,
    },
    /// x for x ≥ 0, x · 2^−shift (floor) for x < 0.
    LeakyRelu {
        /// Slope exponent: slope = 2^−shift.
        shift: u32,
    },
    /// 1 / (1 + e^−x), table-based.
    Sigmoid,
    /// tanh(x), table-based.
    Tanh,
    /// x · Φ(x), table-based.
    Gelu,
}

/// Parameters of an activation unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationParams {
    /// The function.
    pub kind: ActivationKind,
    /// Input type.
    pub input: QType,
    /// Output type (its rounding and overflow modes apply).
    pub output: QType,
    /// Index bits of the table for sigmoid/tanh/GELU (at most the input width, at most 12).
    pub table_bits: u32,
}

fn erf(x: f64) -> f64 {
    // Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), ample against 16-bit outputs.
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

impl ActivationParams {
    fn is_table(&self) -> bool {
        matches!(
            self.kind,
            ActivationKind::Sigmoid | ActivationKind::Tanh | ActivationKind::Gelu
        )
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.is_table() {
            if self.input.width() > 16 {
                return Err(UnitError::Unsupported(format!(
                    "activation: table functions take inputs of at most 16 bits, not {}",
                    self.input
                )));
            }
            if self.table_bits == 0 || self.table_bits > self.input.width().min(12) {
                return Err(UnitError::Unsupported(format!(
                    "activation: table_bits {} must be 1..={}",
                    self.table_bits,
                    self.input.width().min(12)
                )));
            }
        }
        if let ActivationKind::LeakyRelu { shift } = self.kind
            && (shift == 0 || shift >= self.input.width())
        {
            return Err(UnitError::Unsupported(format!(
                "activation: leaky ReLU shift {shift} must be 1..{}",
                self.input.width()
            )));
        }
        if let ActivationKind::Clip { max } = self.kind
            && !(max > 0.0 && max.is_finite())
        {
            return Err(UnitError::Unsupported(format!(
                "activation: clip bound {max} must be positive"
            )));
        }
        Ok(())
    }

    /// The exact function in f64.
    pub fn reference(&self, x: f64) -> f64 {
        match self.kind {
            ActivationKind::Relu => x.max(0.0),
            ActivationKind::Clip { max } => x.clamp(0.0, max),
            ActivationKind::LeakyRelu { shift } => {
                if x >= 0.0 {
                    x
                } else {
                    x / f64::from(1u32 << shift)
                }
            }
            ActivationKind::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            ActivationKind::Tanh => x.tanh(),
            ActivationKind::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        }
    }

    /// Input bits below the table index.
    fn dropped_bits(&self) -> u32 {
        self.input.width() - self.table_bits
    }

    /// The table (raw output values), entry `i` for index `i` read as a signed/unsigned number
    /// like the input, stored at position `i mod 2^table_bits`.
    pub fn table(&self) -> Result<Vec<i128>> {
        self.validate()?;
        let d = self.dropped_bits();
        let n = 1usize << self.table_bits;
        let scale = (-f64::from(self.input.frac_bits())).exp2();
        (0..n)
            .map(|pos| {
                let idx = if self.input.is_signed() && pos >= n / 2 {
                    pos as i128 - n as i128
                } else {
                    pos as i128
                };
                let lo = idx << d;
                let centre = lo as f64
                    + if d > 0 {
                        f64::from(1u32 << (d - 1)) - 0.5
                    } else {
                        0.0
                    };
                let y = self.reference(centre * scale);
                Ok(Fx::from_f64(y, &self.output)?.raw())
            })
            .collect()
    }

    /// Golden model: the output raw value for an input raw value.
    pub fn apply_raw(&self, x: i128, table: Option<&[i128]>) -> Result<i128> {
        let xin = Fx::from_raw(x, &self.input)?;
        let zero = Fx::zero(&self.input);
        let y = match self.kind {
            ActivationKind::Relu => {
                if x < 0 {
                    zero
                } else {
                    xin
                }
            }
            ActivationKind::Clip { max } => {
                let hi = Fx::from_f64(max, &self.input)?;
                if x < 0 {
                    zero
                } else if x > hi.raw() {
                    hi
                } else {
                    xin
                }
            }
            ActivationKind::LeakyRelu { shift } => {
                if x < 0 {
                    Fx::from_raw(x >> shift, &self.input)?
                } else {
                    xin
                }
            }
            _ => {
                let owned;
                let t = match table {
                    Some(t) => t,
                    None => {
                        owned = self.table()?;
                        &owned
                    }
                };
                let pos = ((x >> self.dropped_bits()) as usize) & ((1 << self.table_bits) - 1);
                return Ok(t[pos]);
            }
        };
        Ok(y.convert(&self.output).raw())
    }

    /// Largest |unit(x) − f(x)| over every input value (inputs of at most 16 bits).
    pub fn max_abs_error(&self) -> Result<f64> {
        if self.input.width() > 16 {
            return Err(UnitError::Unsupported(
                "activation: error is measured exhaustively, inputs of at most 16 bits".into(),
            ));
        }
        let table = if self.is_table() {
            Some(self.table()?)
        } else {
            None
        };
        let mut worst = 0.0f64;
        for x in self.input.min_raw()..=self.input.max_raw() {
            let y = Fx::from_raw(self.apply_raw(x, table.as_deref())?, &self.output)?.to_f64();
            let want = self.reference(Fx::from_raw(x, &self.input)?.to_f64());
            worst = worst.max((y - want).abs());
        }
        Ok(worst)
    }
}

fn port(m: &mut ModuleBuilder, name: &str, t: &QType, output: bool) -> Result<Sig> {
    Ok(match (output, t.is_signed()) {
        (false, true) => m.input_signed(name, t.width())?,
        (false, false) => m.input(name, t.width())?,
        (true, true) => m.output_signed(name, t.width())?,
        (true, false) => m.output(name, t.width())?,
    })
}

/// Adds the activation of `x` and returns its output-type wire.
pub fn emit_activation(
    m: &mut ModuleBuilder,
    prefix: &str,
    x: &Sig,
    p: &ActivationParams,
) -> Result<Sig> {
    p.validate()?;
    let w = p.input.width();
    let signed = p.input.is_signed();
    let lit = |v: i128| -> Result<Expr> {
        Ok(if signed {
            Expr::slit(v, w)?
        } else {
            Expr::lit(v as u128, w)?
        })
    };
    let negative = if signed {
        x.bit(w - 1)?
    } else {
        Expr::bool(false)
    };
    let pre = match p.kind {
        ActivationKind::Relu => Some(Expr::mux(&negative, &lit(0)?, &x.e())?),
        ActivationKind::Clip { max } => {
            let hi = Fx::from_f64(max, &p.input)?.raw();
            Some(Expr::mux(
                &negative,
                &lit(0)?,
                &Expr::mux(&x.e().gt(&lit(hi)?)?, &lit(hi)?, &x.e())?,
            )?)
        }
        ActivationKind::LeakyRelu { shift } => {
            Some(Expr::mux(&negative, &x.e().shr(shift), &x.e())?)
        }
        _ => None,
    };
    if let Some(pre) = pre {
        let pre = m.wire_from(&format!("{prefix}_pre"), pre)?;
        return emit_requantize(m, &format!("{prefix}_rq"), &pre, &p.input, &p.output);
    }
    // Table: a case statement over the top bits, which synthesis turns into LUTs or a ROM.
    let table = p.table()?;
    let tb = p.table_bits;
    let ow = p.output.width();
    let index = m.wire_from(&format!("{prefix}_index"), x.slice(w - 1, w - tb)?)?;
    if tb < w {
        m.allow_unused(x.name())?;
    }
    let y = if p.output.is_signed() {
        m.reg_signed(&format!("{prefix}_y"), ow)?
    } else {
        m.reg(&format!("{prefix}_y"), ow)?
    };
    let olit = |v: i128| -> Result<Expr> {
        Ok(if p.output.is_signed() {
            Expr::slit(v, ow)?
        } else {
            Expr::lit(v as u128, ow)?
        })
    };
    let mut arms = Vec::with_capacity(table.len());
    for (pos, v) in table.iter().enumerate() {
        arms.push((
            vec![Expr::lit(pos as u128, tb)?],
            vec![Stmt::set(&y, olit(*v)?)?],
        ));
    }
    // Every index is listed; the default only keeps lint and synthesis free of latches.
    m.comb(vec![Stmt::case(
        index.e(),
        arms,
        vec![Stmt::set(&y, olit(0)?)?],
    )?])?;
    Ok(y)
}

/// A standalone combinational activation unit: input `x`, output `y`.
pub fn activation_module(name: &str, p: &ActivationParams) -> Result<Design> {
    let mut m = ModuleBuilder::new(name)?;
    m.doc(format!(
        "activation {:?}: {} -> {}",
        p.kind, p.input, p.output
    ));
    let x = port(&mut m, "x", &p.input, false)?;
    let y = port(&mut m, "y", &p.output, true)?;
    let r = emit_activation(&mut m, "act", &x, p)?;
    m.assign_sig(&y, r.e())?;
    Ok(Design::new(m.finish(), p))
}
