//! The kernel's exact cycle model, from the RTL's state machine (`rtl.rs`), and its
//! resource model.
//!
//! Two state machines run side by side. The main one takes, for each block of `nq` queries
//! (every head's blocks in turn; `W = head_dim / simd` words per row):
//! - `nq·W` cycles to load the block's Q rows;
//! - per key `2·W + 3`: its K row (the dot products), three cycles for the score, the running
//!   maximum and the two exponentials, then its V row (the rescaled accumulators);
//! - at least one cycle to hand the block over (the last accumulator write lands), waiting
//!   until the output machine has finished the previous block.
//!
//! The output machine divides the block handed over while the next one accumulates (the
//! accumulators have two banks): per output beat `WO + 3` cycles (read the accumulators, load
//! the dividers, `WO` restoring division steps, hand the beat over), then one cycle back to
//! idle. With the streams never stalling and hand-over cycles `h_b` counted from the command's
//! acceptance: `h_0 = M_0 + 1`, `h_(b+1) = h_b + max(M_(b+1) + 1, O_b + 1)` with
//! `M_b = nq·W + T·(2W + 3)` and `O_b = nq·W·(WO + 3)`, and `done` is seen at `h_last + O_last
//! + 1`.

use accelforge_hdl::tools::Family;

use super::params::Resolved;
use super::stream::blocks;

/// Cycles of the score pipeline between a key's last K beat and its first V beat.
pub const SCORE_CYCLES: u64 = 3;

/// Cycles of one command (every head), no stalls.
pub fn cycles(r: &Resolved) -> u64 {
    let w = u64::from(r.words());
    let t = u64::from(r.p.tokens);
    let wo = u64::from(r.tout.width());
    let per_block: Vec<(u64, u64)> = blocks(r)
        .map(|(_, nq)| {
            let nq = u64::from(nq);
            (nq * w + t * (2 * w + SCORE_CYCLES), nq * w * (wo + 3))
        })
        .collect();
    let mut handover: Option<(u64, u64)> = None; // (h_b, O_b)
    for _ in 0..r.p.heads {
        for &(main, out) in &per_block {
            let h = match handover {
                None => main + 1,
                Some((h, prev_out)) => h + (main + 1).max(prev_out + 1),
            };
            handover = Some((h, out));
        }
    }
    handover.map_or(0, |(h, out)| h + out + 1)
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

/// DSP slices Yosys's `synth_xilinx` spends on one signed `a × b` multiplier: the wider
/// operand is cut into 24-bit (DSP48E1, 25-bit port) or 26-bit (DSP48E2, 27-bit port) unsigned
/// chunks, the other into 17-bit ones (18-bit port), one DSP per pair of chunks.
pub fn dsp_for(a: u32, b: u32, family: Family) -> u64 {
    let (a, b) = (a.max(b), a.min(b));
    if b <= 1 {
        return 0;
    }
    let chunk = match family {
        Family::Xc7 => 24,
        Family::Xcup => 26,
    };
    u64::from((a - 1).div_ceil(chunk)) * u64::from((b - 1).div_ceil(17))
}

/// DSP slices of the kernel on `family`.
pub fn dsps(r: &Resolved, family: Family) -> u64 {
    multipliers(r)
        .iter()
        .map(|&(a, b, n)| n * dsp_for(a, b, family))
        .sum()
}

/// RAMB18s of the memories the kernel puts in block RAM (the same on both families).
pub fn bram18(r: &Resolved) -> u64 {
    super::rtl::memories(r)
        .iter()
        .filter(|&&(w, words, _)| super::rtl::ram_style(w, words) == "block")
        .map(|&(w, words, reads)| {
            // One copy per read port: a simple-dual-port block RAM reads at one address.
            let (b36, b18) = crate::template::memory::bram_for(u64::from(w), u64::from(words));
            u64::from(reads) * (2 * b36 + b18)
        })
        .sum()
}

/// The structural features the LUT and FF counts follow: (accumulator bits, divider bits,
/// per-lane scalar bits, exp2 table entries-bits / 64).
pub fn features(r: &Resolved) -> [f64; 4] {
    let (l, s) = (f64::from(r.p.query_lanes), f64::from(r.p.simd));
    let fe1 = f64::from(r.p.exp_frac_bits + 1);
    let (f, fo) = (r.tqkv.frac_bits(), r.tout.frac_bits());
    let sh_n = (fo - f).max(0) as u32;
    let sh_d = (f - fo).max(0) as u32;
    let wo = r.tout.width();
    let wr = (r.acc_bits() + sh_n).max(r.sum_bits() + sh_d + wo - 1) + 1;
    [
        l * s * f64::from(r.acc_bits()),
        s * f64::from(wr),
        l * (f64::from(r.p.score_bits + r.sum_bits()) + 2.0 * fe1),
        l * 2.0 * f64::from(1u32 << r.p.exp_table_bits) * fe1 / 64.0,
    ]
}

/// LUT and FF coefficients over [`features`] (FF with a constant), least squares on ten
/// kernels synthesized with Yosys 0.23 for `xc7` and `xcup` (the mean of the two): within
/// 17 % of either family's LUTs and 24 % of its FFs on every one of them
/// (`tests/attention_synth.rs` re-checks two).
const LUT_COEF: [f64; 4] = [3.04, 5.07, 5.38, 0.79];
const FF_COEF: [f64; 4] = [2.35, 1.5, 1.78, 0.0];
const FF_CONST: f64 = 73.0;

/// The resource model: DSP (the DSP48E1 count, which is also the DSP48E2 count unless an
/// operand is 25 to 27 bits wide, where it is an upper bound) and block RAM counted from the
/// structure exactly as Yosys maps it; LUT and FF from the fitted model.
pub fn resources(r: &Resolved) -> accelforge_boards::ResourceEstimate {
    let x = features(r);
    let dot = |c: &[f64; 4]| c.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>();
    accelforge_boards::ResourceEstimate {
        lut: dot(&LUT_COEF).round() as u64,
        ff: (FF_CONST + dot(&FF_COEF)).round() as u64,
        dsp: dsps(r, Family::Xc7),
        bram18: bram18(r),
        uram: 0,
    }
}
