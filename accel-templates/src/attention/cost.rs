//! The kernel's exact cycle model, from the RTL's state machine (`rtl.rs`), and its
//! resource model.
//!
//! With the streams never stalling, from the cycle the command is accepted to the cycle
//! `done` is seen, each head and each block of `nq` queries (`W = head_dim / simd` words per
//! row, `WO` output bits) takes:
//! - `nq·W` cycles to load the block's Q rows;
//! - per key `2·W + 3`: its K row (the dot products), three cycles for the score, the running
//!   maximum and the two exponentials, then its V row (the rescaled accumulators);
//! - one cycle for the last accumulator write to land;
//! - per output beat `WO + 3`: read the accumulators, load the dividers, `WO` restoring
//!   division steps, hand the beat over;
//!
//! plus one cycle for `done`.

use super::params::Resolved;
use super::stream::blocks;

/// Cycles of the score pipeline between a key's last K beat and its first V beat.
pub const SCORE_CYCLES: u64 = 3;

/// Cycles of one command (every head), no stalls.
pub fn cycles(r: &Resolved) -> u64 {
    let w = u64::from(r.words());
    let t = u64::from(r.p.tokens);
    let wo = u64::from(r.tout.width());
    let per_head: u64 = blocks(r)
        .map(|(_, nq)| {
            let nq = u64::from(nq);
            nq * w + t * (2 * w + SCORE_CYCLES) + 1 + nq * w * (wo + 3)
        })
        .sum();
    1 + u64::from(r.p.heads) * per_head
}

/// Input beats of one command.
pub fn input_beats(r: &Resolved) -> u64 {
    let w = u64::from(r.words());
    let t = u64::from(r.p.tokens);
    let per_head: u64 = blocks(r).map(|(_, nq)| u64::from(nq) * w + 2 * t * w).sum();
    u64::from(r.p.heads) * per_head
}

/// Output beats of one command.
pub fn output_beats(r: &Resolved) -> u64 {
    u64::from(r.p.heads) * u64::from(r.p.tokens) * u64::from(r.words())
}

/// Multiply-accumulates of one command: `Q·Kᵀ` and `P·V` for every head.
pub fn macs(r: &Resolved) -> u64 {
    let (t, d) = (u64::from(r.p.tokens), u64::from(r.p.head_dim));
    u64::from(r.p.heads) * 2 * t * t * d
}

/// Bytes the streams move in one command.
pub fn ddr_bytes(r: &Resolved) -> u64 {
    input_beats(r) * u64::from(r.in_bits() / 8) + output_beats(r) * u64::from(r.out_bits() / 8)
}

/// The multipliers of the kernel, `(signed width a, signed width b, count)`: per lane `simd`
/// Q·K products, the score scale, the sum's rescale, and per lane `simd` accumulator rescales
/// and `p·v` products.
pub fn multipliers(r: &Resolved) -> Vec<(u32, u32, u64)> {
    let (l, s) = (u64::from(r.p.query_lanes), u64::from(r.p.simd));
    let (w, fe) = (r.tqkv.width(), r.p.exp_frac_bits);
    vec![
        (w, w, l * s),
        (r.dot_bits(), r.scale_bits() + 1, l),
        (r.sum_bits() + 1, fe + 2, l),
        (r.acc_bits(), fe + 2, l * s),
        (fe + 2, w, l * s),
    ]
}

/// DSP slices Yosys's `synth_xilinx` spends on one signed `a × b` multiplier.
pub fn dsp_for(a: u32, b: u32) -> u64 {
    let (a, b) = (a.max(b), a.min(b));
    if b <= 1 {
        return 0;
    }
    u64::from((a - 1).div_ceil(24)) * u64::from((b - 1).div_ceil(17))
}

/// The resource model: DSP and block RAM counted from the structure, LUT and FF from a
/// Yosys-fitted linear model.
pub fn resources(r: &Resolved) -> accelforge_boards::ResourceEstimate {
    let dsp = multipliers(r)
        .iter()
        .map(|&(a, b, n)| n * dsp_for(a, b))
        .sum();
    let bram18 = super::rtl::memories(r)
        .iter()
        .filter(|&&(w, words)| super::rtl::ram_style(w, words) == "block")
        .map(|&(w, words)| {
            let (b36, b18) = crate::template::memory::bram_for(u64::from(w), u64::from(words));
            2 * b36 + b18
        })
        .sum();
    let (l, s) = (u64::from(r.p.query_lanes), u64::from(r.p.simd));
    let per_elem = u64::from(r.acc_bits() + r.tout.width());
    accelforge_boards::ResourceEstimate {
        lut: 500 + l * s * per_elem * 3,
        ff: 300 + l * s * per_elem,
        dsp,
        bram18,
        uram: 0,
    }
}
