//! accelforge-hdl: a typed Verilog syntax tree with a checked builder and one deterministic
//! printer, plus wrappers that run Verilator (lint), Icarus (parse check) and Yosys (synthesis
//! statistics) on what it emits.
//!
//! Widths are checked when the tree is built, so a width mismatch is a Rust error at generation
//! time rather than a lint warning later:
//!
//! ```
//! use accelforge_hdl::{Design, Expr, ModuleBuilder, Stmt};
//!
//! # fn main() -> Result<(), accelforge_hdl::HdlError> {
//! let mut m = ModuleBuilder::new("mac8")?;
//! let clk = m.input("clk", 1)?;
//! let a = m.input_signed("a", 8)?;
//! let b = m.input_signed("b", 8)?;
//! let acc = m.output_reg_signed("acc", 24)?;
//! let p = m.product("prod", &a.e(), &b.e())?; // 16-bit explicit product: a DSP48
//! m.clocked(&clk, vec![Stmt::set(&acc, acc.e().add(&p.extend(24)?)?)?])?;
//! // Adding an 8-bit value to a 24-bit one is caught here, not by a linter:
//! assert!(acc.e().add(&a.e()).is_err());
//! let design = Design::new(m.finish(), &"example");
//! let files = design.files();
//! assert!(files[0].1.contains("assign prod = a * b;"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod blocks;
pub mod design;
pub mod error;
pub mod expr;
pub mod helpers;
pub mod ident;
pub mod module;
pub mod output;
pub mod printer;
pub mod tools;

pub use design::{Design, params_hash, write_atomic};
pub use error::{HdlError, Result};
pub use expr::{BinaryOp, Expr, ExprKind, Mem, Sig, UnaryOp, clog2};
pub use module::{Dir, LValue, Module, ModuleBuilder, NetKind, Port, Stmt};
