//! The add & norm unit's exact cycle count (equal to Verilator's when the streams never
//! stall).
//!
//! From command acceptance: one cycle into PARAM, `W = d / lanes` γ/β beats, then per token
//! `W` input beats, [`NORM_CYCLES`](super::rtl::NORM_CYCLES) cycles and `W` output beats
//! behind a pipeline of [`OUT_LATENCY`](super::rtl::OUT_LATENCY) cycles; `done` rises the cycle
//! after the last output beat.

use super::Resolved;
use super::rtl::{NORM_CYCLES, OUT_LATENCY};

/// Cycles per token: load, normalisation, output.
pub fn token_cycles(r: &Resolved) -> u64 {
    let w = u64::from(r.words());
    w + NORM_CYCLES + w + OUT_LATENCY
}

/// Cycles of one command over `tokens` tokens, acceptance to `done`.
pub fn cycles(r: &Resolved, tokens: u64) -> u64 {
    1 + u64::from(r.words()) + tokens * token_cycles(r)
}
