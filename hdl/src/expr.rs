//! Expressions whose width and signedness are known when they are built.
//!
//! Invariant: the width and signedness stored in every [`Expr`] equal the *self-determined*
//! width and signedness that Verilog gives the printed text. Binary operators demand equal widths
//! and equal signedness, and assignments demand equal widths, so Verilog's context-dependent
//! extension rules never change what an expression computes. Multiplication is deliberately not
//! an expression: it goes through [`crate::ModuleBuilder::product`], a full-width product wire,
//! which is also what DSP inference needs.

use crate::error::{HdlError, Result};

/// A reference to a declared signal (port, wire or reg), as returned by the builder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sig {
    pub(crate) name: String,
    pub(crate) width: u32,
    pub(crate) signed: bool,
    pub(crate) kind: crate::module::NetKind,
}

impl Sig {
    /// The signal's identifier.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Width in bits.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Whether it was declared `signed`.
    pub fn signed(&self) -> bool {
        self.signed
    }
    /// The signal as an expression.
    pub fn e(&self) -> Expr {
        Expr {
            kind: ExprKind::Ref(self.name.clone()),
            width: self.width,
            signed: self.signed,
        }
    }
    /// Part select `name[msb:lsb]` (unsigned, as in Verilog).
    pub fn slice(&self, msb: u32, lsb: u32) -> Result<Expr> {
        self.check_select(msb, lsb)?;
        if self.width == 1 {
            // A scalar has no bit range in Verilog: `x[0]` is illegal, `x` is the bit. A part
            // select is unsigned, so a signed scalar is wrapped to keep that meaning.
            let bit = Expr {
                kind: ExprKind::Ref(self.name.clone()),
                width: 1,
                signed: self.signed,
            };
            return Ok(if self.signed { bit.as_unsigned() } else { bit });
        }
        Ok(Expr {
            kind: ExprKind::Slice {
                name: self.name.clone(),
                msb,
                lsb,
            },
            width: msb - lsb + 1,
            signed: false,
        })
    }
    /// Single bit select `name[i]`.
    pub fn bit(&self, i: u32) -> Result<Expr> {
        self.slice(i, i)
    }
    /// Bit select by a run-time index `name[index]`.
    pub fn bit_at(&self, index: &Expr) -> Result<Expr> {
        Ok(Expr {
            kind: ExprKind::BitDyn {
                name: self.name.clone(),
                index: Box::new(index.clone()),
            },
            width: 1,
            signed: false,
        })
    }
    /// Sign-extends (when signed) or zero-extends the signal to `width` bits, keeping its
    /// signedness: `{{k{x[msb]}}, x}` wrapped in `$signed` for signed signals.
    pub fn extend(&self, width: u32) -> Result<Expr> {
        if width < self.width {
            return Err(HdlError::BadWidth {
                what: format!("extension of `{}`", self.name),
                width,
            });
        }
        if width == self.width {
            return Ok(self.e());
        }
        let pad = width - self.width;
        let fill = if self.signed {
            self.bit(self.width - 1)?
        } else {
            Expr::zero(1)
        };
        let cat = Expr::concat(&[Expr::repeat(pad, &fill)?, self.e()])?;
        Ok(if self.signed { cat.as_signed() } else { cat })
    }
    pub(crate) fn check_select(&self, msb: u32, lsb: u32) -> Result<()> {
        if msb < lsb || msb >= self.width {
            return Err(HdlError::BadSelect {
                name: self.name.clone(),
                msb,
                lsb,
                width: self.width,
            });
        }
        Ok(())
    }
}

/// A memory (array of regs) declared in a module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mem {
    pub(crate) name: String,
    pub(crate) width: u32,
    pub(crate) depth: u32,
    pub(crate) signed: bool,
}

impl Mem {
    /// The memory's identifier.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Word width.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Number of words.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// Address width needed to index every word (at least 1).
    pub fn addr_width(&self) -> u32 {
        clog2(self.depth as u64).max(1)
    }
    /// Reads word `addr` (combinationally, or inside a clocked block for a registered read).
    pub fn read(&self, addr: &Expr) -> Result<Expr> {
        self.check_addr(addr)?;
        Ok(Expr {
            kind: ExprKind::MemRead {
                name: self.name.clone(),
                addr: Box::new(addr.clone()),
            },
            width: self.width,
            signed: self.signed,
        })
    }
    pub(crate) fn check_addr(&self, addr: &Expr) -> Result<()> {
        if addr.width != self.addr_width() {
            return Err(HdlError::WidthMismatch {
                context: format!("address of memory `{}` (depth {})", self.name, self.depth),
                left: self.addr_width(),
                right: addr.width,
            });
        }
        Ok(())
    }
}

/// Ceiling of log2, with `clog2(0) = clog2(1) = 0`.
pub fn clog2(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `~x`
    Not,
    /// `-x`
    Neg,
    /// `!x` (1 bit)
    LogicNot,
    /// `&x` (1 bit)
    RedAnd,
    /// `|x` (1 bit)
    RedOr,
    /// `^x` (1 bit)
    RedXor,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+` (wraps at the operand width; extend first for a carry)
    Add,
    /// `-`
    Sub,
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    LogicAnd,
    /// `||`
    LogicOr,
    /// `<<` (by a constant or an unsigned amount)
    Shl,
    /// `>>` logical, or `>>>` arithmetic when the left operand is signed
    Shr,
}

impl BinaryOp {
    pub(crate) fn symbol(self, signed_left: bool) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::And => "&",
            BinaryOp::Or => "|",
            BinaryOp::Xor => "^",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::LogicAnd => "&&",
            BinaryOp::LogicOr => "||",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => {
                if signed_left {
                    ">>>"
                } else {
                    ">>"
                }
            }
        }
    }
}

/// The shape of an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExprKind {
    /// A whole signal.
    Ref(String),
    /// A constant bit pattern (two's complement, `width` bits, held sign-extended in an i128 or,
    /// for patterns wider than 128 bits, sign-extended from it).
    Const(i128),
    /// `name[msb:lsb]`
    Slice {
        /// Signal name.
        name: String,
        /// High bit.
        msb: u32,
        /// Low bit.
        lsb: u32,
    },
    /// `name[index]`
    BitDyn {
        /// Signal name.
        name: String,
        /// Run-time bit index.
        index: Box<Expr>,
    },
    /// `mem[addr]`
    MemRead {
        /// Memory name.
        name: String,
        /// Word address.
        addr: Box<Expr>,
    },
    /// A unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`
    Mux(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `{a, b, ...}`, most significant first.
    Concat(Vec<Expr>),
    /// `{n{a}}`
    Repeat(u32, Box<Expr>),
    /// `$signed(x)`
    AsSigned(Box<Expr>),
    /// `a * b`; only made by [`crate::ModuleBuilder::product`] as the whole right-hand side of
    /// a full-width product wire, where Verilog's context sizing makes it exact.
    Mul(Box<Expr>, Box<Expr>),
    /// `$unsigned(x)`
    AsUnsigned(Box<Expr>),
}

/// An expression with its width and signedness.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) width: u32,
    pub(crate) signed: bool,
}

fn same_shape(ctx: &str, a: &Expr, b: &Expr) -> Result<()> {
    if a.width != b.width {
        return Err(HdlError::WidthMismatch {
            context: ctx.to_string(),
            left: a.width,
            right: b.width,
        });
    }
    if a.signed != b.signed {
        return Err(HdlError::SignMismatch {
            context: ctx.to_string(),
        });
    }
    Ok(())
}

fn one_bit(ctx: &str, a: &Expr) -> Result<()> {
    if a.width != 1 {
        return Err(HdlError::WidthMismatch {
            context: ctx.to_string(),
            left: 1,
            right: a.width,
        });
    }
    Ok(())
}

impl Expr {
    /// Width in bits.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Whether Verilog treats it as signed.
    pub fn signed(&self) -> bool {
        self.signed
    }
    /// The expression's shape.
    pub fn kind(&self) -> &ExprKind {
        &self.kind
    }

    /// An unsigned constant of `width` bits.
    pub fn lit(value: u128, width: u32) -> Result<Expr> {
        if width == 0 || width > 4096 {
            return Err(HdlError::BadWidth {
                what: "constant".into(),
                width,
            });
        }
        if width < 128 && value >> width != 0 {
            let shown = i128::try_from(value).unwrap_or(i128::MAX);
            return Err(HdlError::ConstantTooWide {
                value: shown,
                width,
                signedness: "unsigned",
            });
        }
        // Values with bit 127 set are kept as their two's-complement pattern; only widths of
        // 128 or more can hold them, and the printer masks to the width.
        Ok(Expr {
            kind: ExprKind::Const(value as i128),
            width,
            signed: false,
        })
    }
    /// A signed constant of `width` bits.
    pub fn slit(value: i128, width: u32) -> Result<Expr> {
        if width == 0 || width > 4096 {
            return Err(HdlError::BadWidth {
                what: "constant".into(),
                width,
            });
        }
        if width < 128 {
            let min = -(1i128 << (width - 1));
            let max = (1i128 << (width - 1)) - 1;
            if value < min || value > max {
                return Err(HdlError::ConstantTooWide {
                    value,
                    width,
                    signedness: "signed",
                });
            }
        }
        Ok(Expr {
            kind: ExprKind::Const(value),
            width,
            signed: true,
        })
    }
    /// An all-zero unsigned constant of any width.
    pub fn zero(width: u32) -> Expr {
        Expr {
            kind: ExprKind::Const(0),
            width: width.max(1),
            signed: false,
        }
    }
    /// An all-ones unsigned constant of any width.
    pub fn ones(width: u32) -> Expr {
        Expr {
            kind: ExprKind::Const(-1),
            width: width.max(1),
            signed: false,
        }
    }
    /// A one-bit constant.
    pub fn bool(value: bool) -> Expr {
        Expr {
            kind: ExprKind::Const(i128::from(value)),
            width: 1,
            signed: false,
        }
    }

    fn unary(op: UnaryOp, a: &Expr) -> Expr {
        let (width, signed) = match op {
            UnaryOp::Not | UnaryOp::Neg => (a.width, a.signed),
            _ => (1, false),
        };
        Expr {
            kind: ExprKind::Unary(op, Box::new(a.clone())),
            width,
            signed,
        }
    }
    fn binary(op: BinaryOp, a: &Expr, b: &Expr) -> Result<Expr> {
        let ctx = format!("operator `{}`", op.symbol(a.signed));
        let (width, signed) = match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
                same_shape(&ctx, a, b)?;
                (a.width, a.signed)
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => {
                same_shape(&ctx, a, b)?;
                (1, false)
            }
            BinaryOp::LogicAnd | BinaryOp::LogicOr => {
                one_bit(&ctx, a)?;
                one_bit(&ctx, b)?;
                (1, false)
            }
            BinaryOp::Shl | BinaryOp::Shr => {
                if b.signed {
                    return Err(HdlError::SignMismatch {
                        context: format!("{ctx}: shift amount must be unsigned"),
                    });
                }
                (a.width, a.signed)
            }
        };
        Ok(Expr {
            kind: ExprKind::Binary(op, Box::new(a.clone()), Box::new(b.clone())),
            width,
            signed,
        })
    }

    /// `~self`
    pub fn not(&self) -> Expr {
        Expr::unary(UnaryOp::Not, self)
    }
    /// `-self` (wraps at the width)
    pub fn neg(&self) -> Expr {
        Expr::unary(UnaryOp::Neg, self)
    }
    /// `!self` (1 bit)
    pub fn logic_not(&self) -> Expr {
        Expr::unary(UnaryOp::LogicNot, self)
    }
    /// `&self` (1 bit)
    pub fn red_and(&self) -> Expr {
        Expr::unary(UnaryOp::RedAnd, self)
    }
    /// `|self` (1 bit)
    pub fn red_or(&self) -> Expr {
        Expr::unary(UnaryOp::RedOr, self)
    }
    /// `^self` (1 bit)
    pub fn red_xor(&self) -> Expr {
        Expr::unary(UnaryOp::RedXor, self)
    }
    /// `self + rhs`, same width and signedness, wrapping.
    pub fn add(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Add, self, rhs)
    }
    /// `self - rhs`, same width and signedness, wrapping.
    pub fn sub(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Sub, self, rhs)
    }
    /// `self & rhs`
    pub fn and(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::And, self, rhs)
    }
    /// `self | rhs`
    pub fn or(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Or, self, rhs)
    }
    /// `self ^ rhs`
    pub fn xor(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Xor, self, rhs)
    }
    /// `self == rhs`
    pub fn eq(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Eq, self, rhs)
    }
    /// `self != rhs`
    pub fn ne(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Ne, self, rhs)
    }
    /// `self < rhs` (signed compare when both are signed)
    pub fn lt(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Lt, self, rhs)
    }
    /// `self <= rhs`
    pub fn le(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Le, self, rhs)
    }
    /// `self > rhs`
    pub fn gt(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Gt, self, rhs)
    }
    /// `self >= rhs`
    pub fn ge(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Ge, self, rhs)
    }
    /// `self && rhs` (both 1 bit)
    pub fn logic_and(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::LogicAnd, self, rhs)
    }
    /// `self || rhs` (both 1 bit)
    pub fn logic_or(&self, rhs: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::LogicOr, self, rhs)
    }
    /// `self << amount` (keeps the width)
    pub fn shl(&self, amount: u32) -> Expr {
        let amt = Expr {
            kind: ExprKind::Const(i128::from(amount)),
            width: 32,
            signed: false,
        };
        Expr {
            kind: ExprKind::Binary(BinaryOp::Shl, Box::new(self.clone()), Box::new(amt)),
            width: self.width,
            signed: self.signed,
        }
    }
    /// `self >> amount`, arithmetic (`>>>`) when signed (keeps the width)
    pub fn shr(&self, amount: u32) -> Expr {
        let amt = Expr {
            kind: ExprKind::Const(i128::from(amount)),
            width: 32,
            signed: false,
        };
        Expr {
            kind: ExprKind::Binary(BinaryOp::Shr, Box::new(self.clone()), Box::new(amt)),
            width: self.width,
            signed: self.signed,
        }
    }
    /// `self << amount` by a run-time unsigned amount.
    pub fn shl_by(&self, amount: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Shl, self, amount)
    }
    /// `self >> amount` (or `>>>` when signed) by a run-time unsigned amount.
    pub fn shr_by(&self, amount: &Expr) -> Result<Expr> {
        Expr::binary(BinaryOp::Shr, self, amount)
    }
    /// `cond ? a : b`; `cond` is 1 bit, `a` and `b` agree in width and signedness.
    pub fn mux(cond: &Expr, a: &Expr, b: &Expr) -> Result<Expr> {
        one_bit("condition of `?:`", cond)?;
        same_shape("arms of `?:`", a, b)?;
        Ok(Expr {
            kind: ExprKind::Mux(
                Box::new(cond.clone()),
                Box::new(a.clone()),
                Box::new(b.clone()),
            ),
            width: a.width,
            signed: a.signed,
        })
    }
    /// `{parts[0], parts[1], ...}` (most significant first; unsigned).
    pub fn concat(parts: &[Expr]) -> Result<Expr> {
        if parts.is_empty() {
            return Err(HdlError::Misuse("concatenation of nothing".into()));
        }
        let width = parts.iter().map(|p| p.width).sum();
        Ok(Expr {
            kind: ExprKind::Concat(parts.to_vec()),
            width,
            signed: false,
        })
    }
    /// `{n{self}}` (unsigned).
    pub fn repeat(n: u32, part: &Expr) -> Result<Expr> {
        if n == 0 {
            return Err(HdlError::BadWidth {
                what: "replication count".into(),
                width: 0,
            });
        }
        Ok(Expr {
            kind: ExprKind::Repeat(n, Box::new(part.clone())),
            width: n * part.width,
            signed: false,
        })
    }
    /// `$signed(self)`
    pub fn as_signed(&self) -> Expr {
        Expr {
            kind: ExprKind::AsSigned(Box::new(self.clone())),
            width: self.width,
            signed: true,
        }
    }
    /// `$unsigned(self)`
    pub fn as_unsigned(&self) -> Expr {
        Expr {
            kind: ExprKind::AsUnsigned(Box::new(self.clone())),
            width: self.width,
            signed: false,
        }
    }
    /// Zero-extends to `width` bits (result unsigned).
    pub fn zext(&self, width: u32) -> Result<Expr> {
        if width < self.width {
            return Err(HdlError::BadWidth {
                what: "zero extension".into(),
                width,
            });
        }
        let base = if self.signed {
            self.as_unsigned()
        } else {
            self.clone()
        };
        if width == self.width {
            return Ok(base);
        }
        Expr::concat(&[Expr::zero(width - self.width), base])
    }
}
