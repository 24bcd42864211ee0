//! Mixture-of-Experts layer core: gating GEMV, top-k, gate weights, dispatch with M3ViT-style
//! expert reordering, expert FFNs on a `lanes x simd` linear kernel with double-buffered
//! streamed weights, and combine — as RTL ([`rtl`]), a bit-exact golden model ([`model`]), an
//! exact cycle model and a resource model ([`cost`]), and a testbench ([`tb`]).
//!
//! ```
//! use accelforge_templates::moe::{MoeParams, WeightSource, model, cost};
//!
//! let p = MoeParams::default();
//! let data = model::MoeData::random(&p, 7, 0.0)?;
//! let golden = model::golden(&p, &data, true)?;
//! // With reordering every active expert streams its weights once per batch.
//! assert_eq!(golden.routing.loads.len(), golden.routing.active_experts());
//! let c = cost::cycles(&p, &golden.routing.load_shape())?;
//! assert!(c.cycles > 0);
//! // A DDR 100 cycles away: prefetch pays the latency about once per batch, not per load.
//! let ddr = WeightSource::with_latency(100);
//! let slow = cost::cycles_with(&p, &golden.routing.load_shape(), ddr)?;
//! assert!(slow.cycles > c.cycles && slow.cycles - c.cycles <= 2 * 100);
//! # Ok::<(), accelforge_templates::moe::MoeError>(())
//! ```
//!
//! # Shapes
//! `d_model` (≤ 4096) and `d_ff` (≤ 16384) may be any multiple of `max(lanes, simd)`, `experts`
//! (2..=256) any multiple of `lanes`, `tokens` and `queue_depth` up to 1024: real layers such
//! as ViT-S/M3ViT (384 / 1536, 16 experts) fit. Only `lanes` and `simd` are powers of two (an
//! element's buffer bank is its index's low bits). Buffers are exactly as deep as their rows
//! ([`params::BufferLayout`]): a row address is a per-token base plus an offset, and bases
//! advance by a constant stride with an adder (or travel in the token list), so no multiplier
//! is spent on addressing and the cycle behaviour does not depend on the shape's factors.
//!
//! # Protocol
//! Ports: the Zynq core contract (`clk`, `rst`, `s_axis_*`, `m_axis_*` with `tlast`,
//! `cmd_valid`/`cmd_ready`, `cmd_reorder`, one-cycle `done`) plus the weight stream
//! `s_axis_w_tdata/tvalid/tready/tlast`, the weight request `wreq_valid/wreq_ready/wreq_id`, and
//! status outputs `stat_loads`, `stat_dropped` ([`rtl::EXTRA_PORTS`]).
//!
//! 1. A command (`cmd_valid` while `cmd_ready`) starts a batch; `cmd_reorder` = 1 groups tokens
//!    by expert, 0 processes them in token order.
//! 2. `s_axis`: `tokens x d_model` beats, token-major, one element per beat in the low bits of a
//!    byte-aligned word.
//! 3. The core requests weight *segments* on `wreq` (`wreq_id` = `experts` for the gate matrix,
//!    else the expert index); the source answers with the segment on `s_axis_w` (`tlast` on its
//!    last beat, ignored by the core). Segment = tiles of `lanes` matrix rows; in a tile, words
//!    `kk = 0..K/simd`; in a word, lane-major `W[row][kk·simd + s]`; `ddr_bytes_per_cycle / b`
//!    weights per beat, element i in bytes `i·b..` (b = bytes per weight), see
//!    [`model::segment_beats`]. An expert segment is its first layer (`d_ff x d_model`) then its
//!    second (`d_model x d_ff`). The gate segment is requested on the first cycle after the
//!    command; expert segments once routing and planning are done, one per expert load, in
//!    processing order, **ahead of need** (prefetch): the next request goes out as soon as the
//!    previous one was accepted, as long as fewer than [`MAX_OUTSTANDING_REQUESTS`] (4)
//!    requested segments are not yet fully received. The source therefore must accept several
//!    outstanding requests (it may hold `wreq_ready` low to refuse more: an AXI DataMover's
//!    command FIFO does exactly this) and must answer them **in request order**, each segment
//!    complete, one after the other; a segment may start any time after its request (DDR
//!    latency), and its beats may come with gaps. The core takes a segment's beats only once
//!    its request was accepted, and goes from one segment's last beat straight to the next's
//!    first. [`WeightSource`] is the testbench's and cycle model's picture of the source: a
//!    fixed latency, then one beat per cycle.
//! 4. `m_axis`: `tokens x d_model` beats in the original token order, sign-extended to a
//!    byte-aligned word, `tlast` on the last; `done` pulses the cycle after it is accepted.
//!
//! # Numerics
//! - Gate logits: exact dot products requantized to `types.logit`.
//! - Top-k: experts scanned in index order with strict comparisons: ties go to the lower index.
//! - Gate weights: numerators from a table (softmax: `exp(l - l_max)`, index
//!   `min((l_max - l) >> exp_shift, 2^bits - 1)`; renorm: sigmoid table, floored at 1 LSB),
//!   `w_i = floor(n_i · 2^Fw / sum n)` by restoring division ([`model::restoring_divide`]).
//! - Admission: per-expert queues of `queue_depth`; a pair arriving at a full queue is dropped
//!   and counted (its weight becomes 0); the same pairs are dropped in both orders.
//! - Expert: `y = rq_out(W2 · act(rq_hidden(W1 · x)))`; combine: `rq_output(sum w_i · y_i)`.

pub mod calibration;
pub mod cost;
pub mod model;
pub mod params;
pub mod rtl;
pub mod sim;
pub mod space;
pub mod tb;
pub mod template;
pub mod weights;

pub use params::{FfnActivation, GateMode, MoeParams, MoeTypes};
pub use template::Moe;

/// Most weight segments the core has requested on `wreq` but not yet fully received: the
/// prefetch depth. 4 is the AXI DataMover's default command FIFO depth
/// (`C_MM2S_STSCMD_FIFO_DEPTH`, PG022), so a default DataMover queues every request the core
/// makes and never back-pressures `wreq`; more would only hide latencies longer than three
/// segments' streaming, which a bandwidth-bound segment of real size never is.
pub const MAX_OUTSTANDING_REQUESTS: u32 = 4;

/// The DDR weight source the core is attached to: part of the environment, not of the
/// hardware, so it is not a field of [`MoeParams`] and does not change the RTL or its hash.
/// The testbench ([`tb::run_batch`]) plays it and the cycle model ([`cost::cycles_with`]) takes
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightSource {
    /// Extra cycles between a request handshake on `wreq` and the first beat of its segment:
    /// a request accepted on cycle `c` is answered from cycle `c + 1 + latency` on (0 = the
    /// ideal source that answers on the next cycle). Beats then follow one per cycle; a
    /// segment never starts before the previous one's last beat was taken.
    pub latency: u32,
}

impl WeightSource {
    /// A source answering every request `latency` cycles late.
    pub fn with_latency(latency: u32) -> WeightSource {
        WeightSource { latency }
    }
}

/// Errors from the MoE template.
#[derive(Debug, thiserror::Error)]
pub enum MoeError {
    /// The parameters are impossible; the message names the parameter and the fix.
    #[error("moe parameters: {0}")]
    Params(String),
    /// Input data do not fit the parameters.
    #[error("moe data: {0}")]
    Data(String),
    /// Building the Verilog failed.
    #[error("moe RTL: {0}")]
    Hdl(#[from] accelforge_hdl::HdlError),
    /// A unit (requantizer, activation) refused its parameters.
    #[error("moe RTL unit: {0}")]
    Unit(#[from] crate::units::UnitError),
    /// A fixed-point type was unusable.
    #[error(transparent)]
    Qfx(#[from] crate::qfx::QfxError),
    /// The simulation failed or timed out.
    #[error("moe simulation: {0}")]
    Sim(String),
}

/// Result alias.
pub type Result<T, E = MoeError> = std::result::Result<T, E>;
