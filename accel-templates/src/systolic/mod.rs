//! The systolic-array accelerator template (output-stationary), with its bit-exact golden model,
//! exact analytic cycle model and resource model.
//!
//! # Interface (top module `af_systolic_os_<R>x<C>_<hash>`)
//! * `clk` (rising edge), `rst` (synchronous, active high).
//! * Command: `cmd_m`, `cmd_k`, `cmd_n` (16 bits each) are taken when `cmd_valid && cmd_ready`;
//!   `cmd_ready = !busy`. `busy` rises at acceptance and falls after the last output beat;
//!   `done` is sticky from then until the next command. A command with `K > max_k` (also
//!   setting `error`) or any zero dimension completes at once without touching the streams.
//! * `s_axis_tdata/tvalid/tready/tlast`: operands in the order of [`model`] (TLAST ignored).
//! * `m_axis_tdata/tvalid/tready/tlast`: results in the order of [`model`], TLAST on the
//!   result's last beat.
//!
//! # Architecture
//! A and B tiles live in double-banked block RAM (A: one R-row block × K, B: one chunk of
//! `max_n_chunk` columns × K), so the next block/chunk loads while the current one computes. A
//! tile (R rows × C columns of the result) takes K cycles; tiles follow back to back (no fill or
//! drain between them): a flag travelling with the skewed A operands makes each PE hand its sum
//! to an output chain running up its column while it starts the next sum. Results are
//! requantized at the top of each column (ReLU first when enabled), de-skewed into rows,
//! buffered in a LUT-RAM FIFO that the issuer reserves space in (credits), and serialized.
//! Edge tiles are not padded in the stream: lanes past the valid rows/columns hold stale data
//! that only reaches results that are never sent (masked to zero in partial output beats).
//!
//! # Cycle model
//! [`cost::cycles`] mirrors the controller and equals the Verilator cycle count exactly without
//! back-pressure (definition in [`cost`]); `shift-add` PEs take weights that are ±2^a or
//! ±2^a ± 2^b (checked by [`pe::is_shift_add_weight`]).
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
mod cost_ws;
pub mod error;
pub mod layer;
pub mod model;
pub mod params;
pub mod pe;
pub mod rtl;
mod rtl_util;
mod rtl_ws;
pub mod sim;

pub use error::{Result, SystolicError};
pub use params::{Dataflow, PeKind, Resolved, SystolicParams};
