//! The per-channel requantizer of the output-stationary array (`requant = per_channel`): its
//! golden arithmetic, the table-load command's stream and cycles, and its resources.
//!
//! # Arithmetic
//! For output channel `c` (a column of B) with table entry `(mul[c], add[c])` and the
//! command's `shift`, `round`, `lo`, `hi`:
//!
//! ```text
//! v = acc·mul + add                       (exact, V = max(Wacc+mul_bits, add_bits, 64)+1 bits)
//! q = v >> shift                          (arithmetic: floor)
//! q += 1 if round and shift > 0 and (rem > half or rem == half and q odd)
//! out = lo' if q < lo' else hi' if q > hi' else q
//! ```
//! with `rem = v mod 2^shift`, `half = 2^(shift-1)`, `lo' = max(lo, output min)` and
//! `hi' = min(hi, output max)` (so an out-of-range clamp never wraps). ReLU and a zero point
//! fold into `add`, `lo` and `hi` (see `accelforge_models::net::MulShift::folded`).
//!
//! # Table-load command (`cmd_op = 1`, `cmd_n` = entries)
//! Entries for channels `0 .. cmd_n` follow on `s_axis`, each as
//! `ceil((mul_bits + add_bits) / stream_bits)` beats of the word `mul | add << mul_bits`
//! (two's complement fields, low beat first). `cmd_n = 0` or `cmd_n > max_channels` is
//! rejected (done and error at once). A GEMM (`cmd_op = 0`) with `N > max_channels` is
//! rejected likewise. Entry `c` lives in lane `c mod C` at address `c / C`: lane `j` only
//! ever serves channels `c0 + j` of a tile starting at column `c0`.

use ndarray::Array2;

use super::cost::Resources;
use super::error::{Result, SystolicError};
use super::model::Beat;
use super::params::{RequantMode, Resolved, SystolicParams};

/// The shape of the per-channel mode, from validated parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerChannel {
    /// Channels the tables hold.
    pub max_channels: u32,
    /// Signed multiplier width.
    pub mul_bits: u32,
    /// Signed offset width.
    pub add_bits: u32,
    /// Entries per lane table (power of two ≥ ⌈max_channels / C⌉, ≥ 2).
    pub depth: u32,
    /// Width of `v = acc·mul + add` inside the requantizer.
    pub v_bits: u32,
    /// Beats per table entry.
    pub beats_per_entry: u32,
}

/// Width of the `cmd_shift` port (shifts 0..=63).
pub const SHIFT_BITS: u32 = 6;
/// Width of the `cmd_lo` / `cmd_hi` ports (signed).
pub const CLAMP_BITS: u32 = 32;

/// The per-channel shape, or `None` in the single-type mode.
pub fn per_channel(r: &Resolved) -> Option<PerChannel> {
    match r.p.requant {
        RequantMode::Single => None,
        RequantMode::PerChannel {
            max_channels,
            mul_bits,
            add_bits,
        } => Some(PerChannel {
            max_channels,
            mul_bits,
            add_bits,
            depth: max_channels.div_ceil(r.c).next_power_of_two().max(2),
            // At least 65 bits: every shift 0..=63 then leaves the remainder and the half
            // exact, so the hardware needs no special case for large shifts.
            v_bits: (r.wacc + mul_bits).max(add_bits).max(64) + 1,
            beats_per_entry: (mul_bits + add_bits).div_ceil(r.p.stream_bits),
        }),
    }
}

fn pc_or_err(r: &Resolved) -> Result<PerChannel> {
    per_channel(r).ok_or_else(|| {
        SystolicError::Params("this array has requant single, not per_channel".into())
    })
}

/// The per-command requantization settings (`cmd_shift`, `cmd_round`, `cmd_lo`, `cmd_hi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RqConfig {
    /// Right shift, 0..=63.
    pub shift: u32,
    /// Round half to even (else floor).
    pub round_even: bool,
    /// Lowest output code (clamped to the output type).
    pub lo: i32,
    /// Highest output code (clamped to the output type).
    pub hi: i32,
}

/// One channel's requantization of the exact accumulator code `acc`, as the RTL computes it.
pub fn requantize_channel(r: &Resolved, cfg: &RqConfig, (mul, add): (i64, i64), acc: i128) -> i64 {
    let v = acc * i128::from(mul) + i128::from(add);
    let mut q = v >> cfg.shift;
    if cfg.round_even && cfg.shift > 0 {
        let rem = v - (q << cfg.shift);
        let half = 1i128 << (cfg.shift - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q += 1;
        }
    }
    let lo = i128::from(cfg.lo).max(r.tout.min_raw());
    let hi = i128::from(cfg.hi).min(r.tout.max_raw());
    (if q < lo {
        lo
    } else if q > hi {
        hi
    } else {
        q
    }) as i64
}

fn fits_signed(v: i64, bits: u32) -> bool {
    bits >= 64 || (-(1i64 << (bits - 1))..(1i64 << (bits - 1))).contains(&v)
}

/// Checks a table against the array's field widths and channel count.
pub fn check_table(r: &Resolved, table: &[(i64, i64)]) -> Result<PerChannel> {
    let pc = pc_or_err(r)?;
    if table.is_empty() || table.len() > pc.max_channels as usize {
        return Err(SystolicError::Data(format!(
            "a requant table needs 1..={} entries (max_channels), got {}",
            pc.max_channels,
            table.len()
        )));
    }
    for (c, &(m, a)) in table.iter().enumerate() {
        if !fits_signed(m, pc.mul_bits) || !fits_signed(a, pc.add_bits) {
            return Err(SystolicError::Data(format!(
                "requant entry {c} (mul {m}, add {a}) does not fit mul_bits {} / add_bits {}",
                pc.mul_bits, pc.add_bits
            )));
        }
    }
    Ok(pc)
}

/// Checks a command's settings.
pub fn check_config(cfg: &RqConfig) -> Result<()> {
    if cfg.shift >= 1 << SHIFT_BITS {
        return Err(SystolicError::Data(format!(
            "requant shift {} exceeds 63",
            cfg.shift
        )));
    }
    Ok(())
}

/// The per-channel GEMM golden model: exact MACs, then [`requantize_channel`] with column `j`'s
/// table entry. `a` is M×K, `b` K×N, `table` has at least N entries.
pub fn gemm_per_channel(
    r: &Resolved,
    a: &Array2<i64>,
    b: &Array2<i64>,
    table: &[(i64, i64)],
    cfg: &RqConfig,
) -> Result<Array2<i64>> {
    check_table(r, table)?;
    check_config(cfg)?;
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 || n > table.len() {
        return Err(SystolicError::Data(format!(
            "A is {m}x{k}, B is {k2}x{n}, table has {} entries: need equal K and N <= entries",
            table.len()
        )));
    }
    let mut c = Array2::<i64>::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let mut acc: i128 = 0;
            for q in 0..k {
                acc += i128::from(a[(i, q)]) * i128::from(b[(q, j)]);
            }
            c[(i, j)] = requantize_channel(r, cfg, table[j], acc << r.acc_shift);
        }
    }
    Ok(c)
}

/// The `s_axis` beats of a table-load command (TLAST on the last one; the array ignores it).
pub fn table_beats(r: &Resolved, table: &[(i64, i64)]) -> Result<Vec<Beat>> {
    let pc = check_table(r, table)?;
    let sb = r.p.stream_bits;
    let words_per_beat = sb.div_ceil(64) as usize;
    let mut beats = Vec::new();
    for &(m, a) in table {
        let mut bits = vec![0u64; (pc.beats_per_entry * sb).div_ceil(64) as usize + 2];
        let mut put = |pos: u32, width: u32, v: i64| {
            for b in 0..width {
                if (v >> b.min(63)) & 1 == 1 {
                    let p = pos + b;
                    bits[(p / 64) as usize] |= 1 << (p % 64);
                }
            }
        };
        put(0, pc.mul_bits, m);
        put(pc.mul_bits, pc.add_bits, a);
        for bt in 0..pc.beats_per_entry {
            let mut words = vec![0u64; words_per_beat];
            for i in 0..sb {
                let p = bt * sb + i;
                if (bits[(p / 64) as usize] >> (p % 64)) & 1 == 1 {
                    words[(i / 64) as usize] |= 1 << (i % 64);
                }
            }
            beats.push((words, false));
        }
    }
    if let Some(last) = beats.last_mut() {
        last.1 = true;
    }
    Ok(beats)
}

/// Cycles of a table-load command of `n` entries, from the cycle after its acceptance to the
/// cycle `done` is seen (the same convention as GEMM commands in [`super::cost`]), with every
/// input beat available: one cycle per beat.
pub fn table_load_cycles(r: &Resolved, n: u32) -> Result<u64> {
    let pc = pc_or_err(r)?;
    Ok(u64::from(n) * u64::from(pc.beats_per_entry))
}

/// Adds the per-channel requantizer to the array's resources: per lane one `Wacc × mul_bits`
/// multiplier (DSP48E1 grid as for the PEs) and a LUT-RAM table of `depth` entries, plus the
/// rounding / clamp logic on `v_bits`.
pub fn with_tables(p: &SystolicParams, mut res: Resources) -> Resources {
    let Ok(r) = p.resolve() else {
        return res;
    };
    let Some(pc) = per_channel(&r) else {
        return res;
    };
    let cc = u64::from(r.c);
    let (x, y) = (
        u64::from(r.wacc.max(pc.mul_bits)),
        u64::from(r.wacc.min(pc.mul_bits)),
    );
    res.dsp += cc * x.div_ceil(25) * y.div_ceil(18);
    let entry = u64::from(pc.mul_bits + pc.add_bits);
    // RAM64X1D-style: one LUT per bit per 64 entries; adder, shifter, rounding and two
    // comparators ≈ 4 LUTs per bit of v; the raw accumulator replaces the old output in the
    // de-skew registers.
    let v = u64::from(pc.v_bits);
    res.lut += cc * (entry * u64::from(pc.depth).div_ceil(64) + 4 * v + v * 6);
    res.ff += cc * (cc + 1) / 2 * u64::from(r.wacc) + 2 * u64::from(CLAMP_BITS) + 16;
    res
}
