//! Analytic cycle model and resource model of the MoE core.
//!
//! The cycle model is the RTL's schedule written as a recurrence over weight tiles, so it equals
//! the Verilator count exactly when `s_axis` is always valid, `m_axis` always ready and the
//! weight source ([`WeightSource`]) accepts every request at once and offers a segment's beats
//! one per cycle from `1 + latency` cycles after its request (a B-byte bus at one beat per
//! cycle is exactly B bytes per cycle), in request order. Counting starts at the cycle the
//! command is accepted (cycle 0) and ends at the cycle `done` is high.
//!
//! The schedule (see `rtl/mod.rs` for the state machines):
//! - input: beats on cycles 1 ..= T·D; the gate segment is requested on cycle 1;
//! - requests (prefetch): expert segment i is requested on the first cycle that is in the
//!   expert phase, after request i−1 (one request per cycle) and, for i ≥ N, after segment i−N
//!   was fully received (the cycle after its last beat), with N =
//!   [`super::MAX_OUTSTANDING_REQUESTS`]; its data are offered from `request + 1 + latency`;
//! - loader: tile j starts on the cycle after its predecessor's last beat, not before its
//!   segment's data are offered, and not before its buffer slot was released by tile j−2; it
//!   takes one beat per cycle; its slot is full from the cycle after its last beat;
//! - compute: tile j begins with one set-up cycle `w_j` (the slot must be full, the previous
//!   tile drained, the phase reached), then issues `n·K/simd` MAC cycles, then drains 3 cycles;
//!   its slot is released from the cycle after its last issue;
//! - routing starts the cycle after the last gate tile drained and takes
//!   [`MoeParams::route_cycles_per_token`] per token; planning takes E + 1 cycles;
//! - output: starts the cycle after the last expert tile drained; T·D beats, one per cycle,
//!   the first two cycles after the start; `done` the cycle after the last beat.

use serde::Serialize;

pub use super::params::DRAIN;
use super::params::{MemStyle, MoeLayout, MoeParams};
use super::{Result, WeightSource};

/// Cycle-model result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    /// Cycles from command acceptance to `done`.
    pub cycles: u64,
    /// Cycles the MAC array issues (gate and expert tiles).
    pub mac_cycles: u64,
    /// Weight-stream beats.
    pub weight_beats: u64,
    /// Weight-stream bytes (beats × bus width).
    pub weight_bytes: u64,
    /// First cycle of the routing phase.
    pub route_start: u64,
    /// First cycle of the expert phase.
    pub expert_start: u64,
    /// First cycle of the output phase.
    pub output_start: u64,
}

impl CycleReport {
    /// Fraction of cycles the `lanes x simd` MAC array issues.
    pub fn compute_utilization(&self) -> f64 {
        self.mac_cycles as f64 / self.cycles.max(1) as f64
    }
    /// Fraction of cycles the weight stream transfers a beat.
    pub fn bandwidth_utilization(&self) -> f64 {
        self.weight_beats as f64 / self.cycles.max(1) as f64
    }
}

struct Tile {
    seg: usize,
    issue: u64,
    beats: u64,
}

/// The cycle model for one batch whose expert loads are `loads` = (expert, tokens) in order,
/// with the ideal weight source (latency 0): [`cycles_with`] at `WeightSource::default()`.
pub fn cycles(p: &MoeParams, loads: &[(u32, u32)]) -> Result<CycleReport> {
    cycles_with(p, loads, WeightSource::default())
}

/// The cycle model for one batch whose expert loads are `loads` = (expert, tokens) in order,
/// with weights from `source`.
pub fn cycles_with(
    p: &MoeParams,
    loads: &[(u32, u32)],
    source: WeightSource,
) -> Result<CycleReport> {
    p.validate()?;
    let lat = u64::from(source.latency);
    let t = u64::from(p.tokens);
    let d = u64::from(p.d_model);
    let s = u64::from(p.simd);
    let td = t * d;
    let mut tiles = Vec::new();
    for _ in 0..p.gate_tiles() {
        tiles.push(Tile {
            seg: 0,
            issue: t * d / s,
            beats: p.tile_beats(p.d_model),
        });
    }
    let (t1, t2) = p.expert_tiles();
    for (i, &(_, n)) in loads.iter().enumerate() {
        let n = u64::from(n);
        for _ in 0..t1 {
            tiles.push(Tile {
                seg: i + 1,
                issue: n * d / s,
                beats: p.tile_beats(p.d_model),
            });
        }
        for _ in 0..t2 {
            tiles.push(Tile {
                seg: i + 1,
                issue: n * u64::from(p.d_ff) / s,
                beats: p.tile_beats(p.d_ff),
            });
        }
    }
    let gate_tiles = p.gate_tiles() as usize;
    let mut release = vec![0u64; tiles.len()];
    let mut loader_free = 0u64; // first cycle the loader may take a beat of the next tile
    let mut seg_data = 2 + lat; // gate segment requested on cycle 1
    let window = super::MAX_OUTSTANDING_REQUESTS as usize;
    let mut seg_received = Vec::with_capacity(loads.len()); // per expert segment
    let mut last_request = 0u64;
    let mut compute_free = 0u64;
    let mut route_start = 0;
    let mut expert_start = 0;
    let mut mac_cycles = 0;
    let mut weight_beats = 0;
    for j in 0..tiles.len() {
        if j == gate_tiles {
            route_start = compute_free;
            expert_start = route_start + t * p.route_cycles_per_token() + u64::from(p.experts) + 1;
        }
        let tile = &tiles[j];
        let first_of_seg = j == 0 || tiles[j - 1].seg != tile.seg;
        if first_of_seg && j > 0 {
            let i = tile.seg - 1;
            let mut req = expert_start;
            if i >= 1 {
                req = req.max(last_request + 1);
            }
            if i >= window {
                req = req.max(seg_received[i - window]);
            }
            last_request = req;
            seg_data = req + 1 + lat;
        }
        let mut start = if first_of_seg {
            seg_data.max(loader_free)
        } else {
            loader_free
        };
        if j >= 2 {
            start = start.max(release[j - 2]);
        }
        let end = start + tile.beats - 1;
        loader_free = end + 1;
        if tile.seg > 0 && tiles.get(j + 1).is_none_or(|n| n.seg != tile.seg) {
            seg_received.push(end + 1);
        }
        let full = end + 1;
        let phase = if j < gate_tiles { td + 1 } else { expert_start };
        let w = full.max(compute_free).max(phase);
        release[j] = w + tile.issue + 1;
        compute_free = w + tile.issue + 1 + DRAIN;
        mac_cycles += tile.issue;
        weight_beats += tile.beats;
    }
    if tiles.len() == gate_tiles {
        route_start = compute_free;
        expert_start = route_start + t * p.route_cycles_per_token() + u64::from(p.experts) + 1;
        compute_free = expert_start + 1;
    }
    let output_start = compute_free;
    Ok(CycleReport {
        cycles: output_start + td + 2,
        mac_cycles,
        weight_beats,
        weight_bytes: weight_beats * u64::from(p.ddr_bytes_per_cycle),
        route_start,
        expert_start,
        output_start,
    })
}

/// Resource estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceReport {
    /// LUTs (LUT-RAM included) from the Yosys-fitted model (`super::calibration`).
    pub lut: u64,
    /// Flip-flops from the Yosys-fitted model.
    pub ff: u64,
    /// DSP slices: one per MAC-array multiplier (`lanes x simd`) plus one per combine slot.
    pub dsp: u64,
    /// BRAM18 equivalents of the memories marked `block` (the weight buffer, and activation
    /// banks of at least 512 words), plus tables Yosys maps to block RAM
    /// (`calibration::table_bram18`).
    pub bram18: u64,
    /// Bits held in every memory (block and distributed).
    pub memory_bits: u64,
    /// Weight-buffer shape: (word bits, words).
    pub weight_buffer: (u64, u64),
}

impl ResourceReport {
    /// The workspace's budget units (the core uses no UltraRAM).
    pub fn estimate(&self) -> accelforge_boards::ResourceEstimate {
        accelforge_boards::ResourceEstimate {
            lut: self.lut,
            ff: self.ff,
            dsp: self.dsp,
            bram18: self.bram18,
            uram: 0,
        }
    }
}

/// BRAM18s for a `width x depth` memory (the workspace's one table; the core's memories are
/// counted in RAMB18s).
pub use crate::template::memory::ramb18_for as bram18_for;

/// Every memory of the core that may map to block RAM: (name, word bits, words), as the RTL
/// declares them: the data memories of the params' memory plan ([`MoeLayout`]). Depths are
/// exact row counts (at least 2), not powers of two: the RTL addresses rows with
/// base-plus-offset adders.
pub fn memories(p: &MoeParams) -> Vec<(String, u64, u64)> {
    MoeLayout::of(p)
        .data
        .into_iter()
        .map(|m| (m.name, u64::from(m.width), m.words))
        .collect()
}

/// The resource model.
pub fn resources(p: &MoeParams) -> Result<ResourceReport> {
    p.validate()?;
    let plan = MoeLayout::of(p);
    let mems = &plan.data;
    let bram18 = mems
        .iter()
        .filter(|m| m.style == MemStyle::Block)
        .map(|m| bram18_for(u64::from(m.width), m.words))
        .sum::<u64>()
        + super::calibration::table_bram18(p)?;
    let memory_bits = mems.iter().map(|m| u64::from(m.width) * m.words).sum();
    let (lut, ff) = super::calibration::predict(&super::calibration::features(p)?);
    Ok(ResourceReport {
        lut,
        ff,
        dsp: u64::from(p.lanes * p.simd + p.top_k),
        bram18,
        memory_bits,
        weight_buffer: (u64::from(mems[0].width), mems[0].words),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(bytes: u32) -> MoeParams {
        MoeParams {
            tokens: 16,
            d_model: 16,
            d_ff: 32,
            experts: 8,
            top_k: 2,
            lanes: 4,
            simd: 4,
            ddr_bytes_per_cycle: bytes,
            queue_depth: 16,
            ..MoeParams::default()
        }
    }

    /// (expert, tokens) loads: `n` loads of 4 tokens each, experts cycling.
    fn loads(n: u32) -> Vec<(u32, u32)> {
        (0..n).map(|i| (i % 8, 4)).collect()
    }

    #[test]
    fn zero_latency_is_the_plain_model() {
        let p = small(2);
        for n in [0, 1, 8, 31] {
            assert_eq!(
                cycles(&p, &loads(n)).unwrap(),
                cycles_with(&p, &loads(n), WeightSource::default()).unwrap()
            );
        }
    }

    #[test]
    fn latency_never_helps_and_is_paid_about_once_per_batch() {
        for bytes in [1, 2, 4, 16] {
            let p = small(bytes);
            // One expert segment's beats: the latency prefetch hides behind its stream.
            let seg = (p.expert_stream_bytes() / u64::from(p.ddr_bytes_per_cycle)) as u32;
            for n in [1, 8, 31] {
                let at = |l: u32| {
                    cycles_with(&p, &loads(n), WeightSource::with_latency(l))
                        .unwrap()
                        .cycles
                };
                let base = at(0);
                let mut prev = base;
                for l in (0..=seg.min(400)).step_by(7) {
                    let c = at(l);
                    assert!(c >= prev, "B {bytes}, {n} loads, L {l}");
                    // The gate segment's latency (partly hidden under the token input) and the
                    // first expert segment's: never one per load.
                    assert!(c - base <= 2 * u64::from(l), "B {bytes}, {n} loads, L {l}");
                    prev = c;
                }
            }
        }
    }

    #[test]
    fn latency_beyond_the_prefetch_window_is_paid_once_per_window() {
        // Compute-bound: a 4-token segment takes about 350 cycles to consume, so four segments
        // in flight cover about 1,400 cycles. A latency of 2,000 cannot hide behind them and is
        // paid about once per MAX_OUTSTANDING_REQUESTS loads: 16 loads, about 4 times.
        let p = small(16);
        let at = |l: u32| {
            cycles_with(&p, &loads(16), WeightSource::with_latency(l))
                .unwrap()
                .cycles
        };
        let extra = at(2000) - at(0);
        assert!(extra > 3 * 2000 && extra < 5 * 2000, "{extra}");
    }
}
