//! The systolic-array accelerator template (output-stationary), with its bit-exact golden model,
//! exact analytic cycle model and resource model.
//!
//! ```
//! use accelforge_templates::systolic::{SystolicParams, rtl, cost, layer::Gemm};
//!
//! # fn main() -> Result<(), accelforge_templates::systolic::SystolicError> {
//! let p = SystolicParams { rows: 4, cols: 4, ..Default::default() };
//! let design = rtl::design(&p)?;
//! assert!(design.files().len() == 2); // top + PE
//! let est = cost::cycles(&p, &Gemm { m: 10, k: 7, n: 9 })?;
//! assert!(est.cycles > 0);
//! # Ok(()) }
//! ```
#![allow(clippy::too_many_lines)]

pub mod cost;
pub mod error;
pub mod layer;
pub mod model;
pub mod params;
pub mod pe;
mod requant;
pub mod rtl;
mod rtl_util;
pub mod sim;

pub use error::{Result, SystolicError};
pub use params::{Dataflow, PeKind, Resolved, SystolicParams};
