//! The add & norm unit's exact cycle count (equal to Verilator's when the streams never
//! stall).
//!
//! From command acceptance: one cycle into PARAM, `W = d / lanes` γ/β beats, then per token
//! `W` input beats, [`NORM_CYCLES`](super::rtl::NORM_CYCLES) cycles and `W` output beats
//! behind a pipeline of [`OUT_LATENCY`](super::rtl::OUT_LATENCY) cycles; `done` rises the cycle
//! after the last output beat.

use accelforge_hdl::tools::Family;

use super::Resolved;
use super::rtl::{self, NORM_CYCLES, OUT_LATENCY};
use crate::attention::cost::dsp_for;

/// Cycles per token: load, normalisation, output.
pub fn token_cycles(r: &Resolved) -> u64 {
    let w = u64::from(r.words());
    w + NORM_CYCLES + w + OUT_LATENCY
}

/// Cycles of one command over `tokens` tokens, acceptance to `done`.
pub fn cycles(r: &Resolved, tokens: u64) -> u64 {
    1 + u64::from(r.words()) + tokens * token_cycles(r)
}

/// DSP slices Yosys maps the unit's multipliers to on `family` (`tests/layernorm_rtl.rs`
/// checks it).
pub fn dsps(r: &Resolved, family: Family) -> u64 {
    rtl::multipliers(r)
        .iter()
        .map(|&(a, b, n)| n * dsp_for(a, b, family))
        .sum()
}

/// RAMB18s of the memories in block RAM (one read port each).
pub fn bram18(r: &Resolved) -> u64 {
    rtl::memories(r)
        .iter()
        .filter(|&&(_, w, words)| rtl::ram_style(w, words) == "block")
        .map(|&(_, w, words)| {
            let (b36, b18) = crate::template::memory::bram_for(u64::from(w), u64::from(words));
            2 * b36 + b18
        })
        .sum()
}
