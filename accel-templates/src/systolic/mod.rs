//! The systolic-array accelerator template (output-stationary or weight-stationary), with its
//! bit-exact golden model, exact analytic cycle model and resource model.
//!
//! # Interface (top module `af_systolic_<os|ws>_<R>x<C>_<hash>`, the same for both dataflows)
//! * `clk` (rising edge), `rst` (synchronous, active high).
//! * Command: `cmd_m`, `cmd_k`, `cmd_n` (16 bits each) are taken when `cmd_valid && cmd_ready`;
//!   `cmd_ready = !busy`. `busy` rises at acceptance and falls after the last output beat;
//!   `done` is sticky from then until the next command. A command with `K > max_k` or any
//!   zero dimension is rejected: it completes at once with `done` and `error` (held until the
//!   next command) without touching the streams.
//! * `s_axis_tdata/tvalid/tready/tlast`: operands in the order of [`model`] (TLAST ignored;
//!   the weight-stationary order differs, see there).
//! * `m_axis_tdata/tvalid/tready/tlast`: results in the order of [`model`], TLAST on the
//!   result's last beat.
//!
//! # Architecture (output-stationary, `dataflow = os`)
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
//! # Architecture (weight-stationary, `dataflow = ws`)
//! Each PE holds one weight of an R×C tile of B (R rows of K, C columns of N) while the M
//! block's A rows for that K-slice pass through, one row per cycle; partial sums run down the
//! columns. Weights are double-buffered in the PEs: a shadow chain per column loads the next
//! tile (R cycles, fed from a double-banked weight buffer) while the current tile computes, and
//! a flag travelling with the tile's first A row switches each PE to it, so consecutive tiles
//! follow without a bubble (a tile takes `max(mv, 2R−1)` cycles). The A K-slice of a block
//! (double-banked block RAM, `Mb` rows) is reused by every column tile of the B chunk.
//! Column bottoms are added into an accumulator buffer (block RAM, one memory per column and
//! bank, `tiles × Mb` accumulators each); K > R accumulates over K-slices there. A block's
//! finished bank is drained in the output-stationary output order (requantize with ReLU, LUT-RAM
//! FIFO, serializer) while the next block accumulates into the other bank. `Mb` is the largest
//! multiple of R not above `max_k` (which still bounds K, since it sizes the accumulator type).
//! K rows past K load as zero weights; columns past N only reach results that are never sent.
//! Measured (Verilator = model): GEMM 256³ on 16×16 int8, 64-bit streams, `max_k` 256,
//! `max_n_chunk` 64: 68,259 cycles, utilisation 0.960 (output-stationary: 71,219, 0.920).
//! Yosys xc7, default 8×8 `dsp`: 64 DSP48E1 and block RAM as [`cost::resources`] says.
//!
//! # Cycle model
//! [`cost::cycles`] mirrors the controller of either dataflow and equals the Verilator cycle count exactly without
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

pub mod calibration;
pub mod cost;
mod cost_ws;
pub mod error;
pub mod layer;
pub mod model;
pub mod packing;
pub mod params;
pub mod pe;
pub mod requant;
pub mod rtl;
pub mod sim;
pub mod space;
pub mod template;

pub use error::{Result, SystolicError};
pub use params::{BufferRam, Dataflow, PeKind, RequantMode, Resolved, SystolicParams};
pub use template::Systolic;
