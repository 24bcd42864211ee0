//! Streaming attention (issue 17): for each head, `softmax(Q·Kᵀ/√d)·V` computed one key at a
//! time with a running maximum and a rescaled running sum, so K and V stream through once per
//! block of queries and the T×T score matrix is never stored.
//!
//! The template `attention` (registered; [`Attention`]): the parameters ([`AttentionParams`],
//! resolved into [`Resolved`]), the integer golden model ([`golden`]), a float64 reference with
//! the error between the two ([`reference`](mod@reference)), the stream formats ([`stream`]), the RTL
//! ([`rtl`]), which implements the arithmetic below bit for bit, its exact cycle and resource
//! models ([`cost`]), the Verilator harness ([`sim`]) and the sweep axes ([`space`]).
//!
//! # Arithmetic (all integers; `F` = fractional bits of the Q/K/V type)
//! For query `i` and key `j`:
//! ```text
//! dot   = Σ_c q[i][c]·k[j][c]                                 exact, 2F fractional bits
//! s     = sat_WS( round_half_up(dot · C / 2^(2F + CF − FS)) ) score in log2 units, FS bits
//!         with C = round(2^CF · log2(e) / √d), CF = 16       (e^(x/√d) = 2^(s))
//! m'    = max(m, s)                                           running maximum (m₀ = −∞)
//! α     = exp2(m − m')      p = exp2(s − m')                  FE fractional bits, ≤ 1
//! l     = floor(l·α / 2^FE) + p                               FE fractional bits
//! acc_c = floor(acc_c·α / 2^FE) + p·v[j][c]                   FE + F fractional bits
//! ```
//! `exp2(x)` for `x ≤ 0` (FS fractional bits): `n = ⌊−x⌋`, `f` = the fraction of `−x`;
//! `table[f >> (FS − TB)] >> n` with `table[t] = round(2^FE · 2^(−t / 2^TB))` (so
//! `exp2(0) = 2^FE` exactly, and the key with the largest score adds exactly one to `l`).
//! After the last key, `out_c = acc_c · 2^FO / (l · 2^F)` truncated toward zero (a divider
//! per lane) and saturated to the output type (`FO` its fractional bits). `l ≥ 2^FE > 0`
//! always: the current maximum's `p` is `2^FE`.

pub mod cost;
pub mod golden;
pub mod params;
pub mod reference;
pub mod rtl;
pub mod sim;
pub mod space;
pub mod stream;
pub mod template;

pub use params::{AttentionParams, Resolved};
pub use template::Attention;

/// Errors of the attention template.
#[derive(Debug, thiserror::Error)]
pub enum AttentionError {
    /// A parameter is out of range; the message names it and the bound.
    #[error("invalid attention parameters: {0}")]
    Params(String),
    /// Operands of the wrong shape or out of their type's range.
    #[error("attention data: {0}")]
    Data(String),
    /// Building the RTL.
    #[error(transparent)]
    Hdl(#[from] accelforge_hdl::HdlError),
    /// Building or running the Verilator simulation.
    #[error("attention simulation: {0}")]
    Sim(String),
    /// A QFX type string.
    #[error(transparent)]
    Qfx(#[from] crate::qfx::QfxError),
}

/// Result of the attention template.
pub type Result<T> = std::result::Result<T, AttentionError>;
