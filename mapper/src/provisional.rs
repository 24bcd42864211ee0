//! **Provisional** analytic cost model of a systolic-array engine.
//!
//! This model exists so the mapper can be tested end to end before the systolic template's
//! exact cycle and resource models (in `accel-templates`) are available. It is a textbook
//! approximation, **not calibrated against RTL, synthesis or hardware**: use its numbers to
//! compare configurations with each other, never as a prediction of a real design. It will be
//! replaced by an adapter around the template's own models (see [`crate::EngineModel`]).
//!
//! Assumptions (all provisional):
//! - 8-bit activations, weights and outputs (1 byte each in DDR), 32-bit accumulators; the
//!   layers' QFX type strings are not consulted.
//! - One MAC per PE per cycle, one DSP slice per PE.
//! - Weight-stationary (WS): an R×C weight tile (K along rows, N along columns) sits in the
//!   array while `Tm` rows of A stream through; partial sums for `Tm × C` outputs live in C
//!   accumulator banks. Per (M-tile, N-fold, K-fold): `tm + R + C − 1` cycles (stream plus
//!   fill/drain skew); the next weight tile loads behind the current one (double-buffered), so
//!   only the first load (R cycles) is exposed. The tiling option is `Tm`.
//! - Output-stationary (OS): each PE accumulates one output of an R×C output tile while K
//!   operand pairs stream through: `K + R + C − 1` cycles per tile, output drain overlapped
//!   with the next tile (double-buffered accumulators). The tiling option is the loop order:
//!   keep an A row-panel resident and sweep N, or keep a B column-panel resident and sweep M.
//! - A panel can stay on chip only if it fits the buffer banks (`depth` entries per bank);
//!   otherwise it is re-read from DDR for every pass over the other dimension.
//! - Resources: LUT/FF as a fixed shell (control, DMA interface) plus per-PE, per-edge and
//!   per-stream-bit terms; BRAM18 per buffer bank from the BRAM18 aspect ratios; no URAM.

use accelforge_boards::ResourceEstimate;
use accelforge_templates::template::memory::ramb18_for;
use serde::{Deserialize, Serialize};

use crate::model::{Dataflow, EngineModel, SearchSpace};
use crate::workload::{GemmShape, Layer};

/// One provisional systolic-engine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionalSystolicConfig {
    /// PE-array rows (R).
    pub rows: u32,
    /// PE-array columns (C).
    pub cols: u32,
    /// Dataflow.
    pub dataflow: Dataflow,
    /// Entries per buffer bank.
    pub buffer_depth: u32,
    /// AXI-Stream width in bits.
    pub stream_bits: u32,
}

/// How a layer is tiled on a provisional systolic engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProvisionalTiling {
    /// Weight-stationary with `m_tile` rows of A per weight tile.
    WeightStationary {
        /// Rows of A streamed per resident weight tile.
        m_tile: u64,
    },
    /// Output-stationary, A row-panel resident, sweeping N.
    OutputStationaryRowPanel,
    /// Output-stationary, B column-panel resident, sweeping M.
    OutputStationaryColPanel,
}

/// The provisional systolic model (see the module docs for why it is provisional).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProvisionalSystolicModel;

const ACT_BYTES: u64 = 1;
const WEIGHT_BYTES: u64 = 1;
const OUT_BYTES: u64 = 1;
const ACT_BITS: u64 = 8;
const ACC_BITS: u64 = 32;

impl ProvisionalSystolicModel {
    fn gemm_cycles(cfg: &ProvisionalSystolicConfig, g: &GemmShape, t: &ProvisionalTiling) -> u64 {
        let (r, c) = (u64::from(cfg.rows), u64::from(cfg.cols));
        match *t {
            ProvisionalTiling::WeightStationary { m_tile } => {
                let folds = g.k.div_ceil(r) * g.n.div_ceil(c);
                let m_tiles = g.m.div_ceil(m_tile);
                folds * (g.m + m_tiles * (r + c - 1)) + r
            }
            ProvisionalTiling::OutputStationaryRowPanel
            | ProvisionalTiling::OutputStationaryColPanel => {
                g.m.div_ceil(r) * g.n.div_ceil(c) * (g.k + r + c - 1) + r
            }
        }
    }

    fn gemm_bytes(cfg: &ProvisionalSystolicConfig, g: &GemmShape, t: &ProvisionalTiling) -> u64 {
        let (r, c, d) = (
            u64::from(cfg.rows),
            u64::from(cfg.cols),
            u64::from(cfg.buffer_depth),
        );
        let a = g.m * g.k * ACT_BYTES;
        let b = g.k * g.n * WEIGHT_BYTES;
        let out = g.m * g.n * OUT_BYTES;
        let n_passes = g.n.div_ceil(c);
        match *t {
            ProvisionalTiling::WeightStationary { m_tile } => {
                let m_tiles = g.m.div_ceil(m_tile);
                // Bank r holds the A entries with k ≡ r (mod R) for the whole M-tile.
                let a_resident = m_tile * g.k.div_ceil(r) <= d;
                let a_reads = if a_resident { 1 } else { n_passes };
                a * a_reads + b * m_tiles + out
            }
            ProvisionalTiling::OutputStationaryRowPanel => {
                let m_passes = g.m.div_ceil(r);
                let a_reads = if g.k <= d { 1 } else { n_passes };
                a * a_reads + b * m_passes + out
            }
            ProvisionalTiling::OutputStationaryColPanel => {
                let m_passes = g.m.div_ceil(r);
                let b_reads = if g.k <= d { 1 } else { m_passes };
                a * n_passes + b * b_reads + out
            }
        }
    }
}

impl EngineModel for ProvisionalSystolicModel {
    type Config = ProvisionalSystolicConfig;
    type Tiling = ProvisionalTiling;

    fn name(&self) -> &str {
        "provisional-systolic"
    }

    fn note(&self) -> Option<&str> {
        Some(
            "provisional analytic systolic model: textbook cycle and resource estimates, not calibrated against RTL or hardware; to be replaced by the systolic template's exact model",
        )
    }

    fn candidates(&self, space: &SearchSpace) -> Vec<ProvisionalSystolicConfig> {
        let mut out = Vec::with_capacity(space.size());
        for &rows in &space.rows {
            for &cols in &space.cols {
                for &dataflow in &space.dataflows {
                    for &buffer_depth in &space.buffer_depths {
                        for &stream_bits in &space.stream_bits {
                            if rows == 0 || cols == 0 || buffer_depth == 0 || stream_bits < 8 {
                                continue;
                            }
                            out.push(ProvisionalSystolicConfig {
                                rows,
                                cols,
                                dataflow,
                                buffer_depth,
                                stream_bits,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    fn tilings(&self, cfg: &ProvisionalSystolicConfig, layer: &Layer) -> Vec<ProvisionalTiling> {
        // A GEMM engine does not run `moe` (routing-dependent) or `attention` (softmax) layers.
        if !layer.is_gemm_like() {
            return Vec::new();
        }
        let g = layer.lower().gemm;
        match cfg.dataflow {
            Dataflow::WeightStationary => {
                // The accumulator banks hold m_tile partial sums per column, so m_tile ≤ depth.
                let max = u64::from(cfg.buffer_depth).min(g.m);
                let mut tiles: Vec<u64> = std::iter::successors(Some(16u64), |t| Some(t * 2))
                    .take_while(|t| *t < max)
                    .collect();
                tiles.push(max);
                tiles
                    .into_iter()
                    .map(|m_tile| ProvisionalTiling::WeightStationary { m_tile })
                    .collect()
            }
            Dataflow::OutputStationary => vec![
                ProvisionalTiling::OutputStationaryRowPanel,
                ProvisionalTiling::OutputStationaryColPanel,
            ],
        }
    }

    fn layer_cycles(
        &self,
        cfg: &ProvisionalSystolicConfig,
        layer: &Layer,
        tiling: &ProvisionalTiling,
    ) -> Option<u64> {
        let consistent = matches!(
            (cfg.dataflow, tiling),
            (
                Dataflow::WeightStationary,
                ProvisionalTiling::WeightStationary { .. }
            ) | (
                Dataflow::OutputStationary,
                ProvisionalTiling::OutputStationaryRowPanel
                    | ProvisionalTiling::OutputStationaryColPanel
            )
        );
        if !consistent || cfg.rows == 0 || cfg.cols == 0 {
            return None;
        }
        if let ProvisionalTiling::WeightStationary { m_tile } = tiling
            && (*m_tile == 0 || *m_tile > u64::from(cfg.buffer_depth))
        {
            return None;
        }
        let low = layer.lower();
        Some(Self::gemm_cycles(cfg, &low.gemm, tiling).saturating_mul(low.groups))
    }

    fn ddr_bytes(
        &self,
        cfg: &ProvisionalSystolicConfig,
        layer: &Layer,
        tiling: &ProvisionalTiling,
    ) -> u64 {
        let low = layer.lower();
        Self::gemm_bytes(cfg, &low.gemm, tiling).saturating_mul(low.groups)
    }

    fn stream_bytes_per_cycle(&self, cfg: &ProvisionalSystolicConfig) -> f64 {
        f64::from(cfg.stream_bits) / 8.0
    }

    fn resources(&self, cfg: &ProvisionalSystolicConfig) -> ResourceEstimate {
        let (r, c) = (u64::from(cfg.rows), u64::from(cfg.cols));
        let pes = r * c;
        let s = u64::from(cfg.stream_bits);
        let d = u64::from(cfg.buffer_depth);
        // Per-PE registers: WS holds a, a double-buffered weight and a partial sum; OS holds a,
        // b and a double-buffered accumulator.
        let (ff_pe, lut_pe) = match cfg.dataflow {
            Dataflow::WeightStationary => (8 + 2 * 8 + ACC_BITS, 20),
            Dataflow::OutputStationary => (8 + 8 + 2 * ACC_BITS, 28),
        };
        let bram18 = match cfg.dataflow {
            Dataflow::WeightStationary => r * ramb18_for(ACT_BITS, d) + c * ramb18_for(ACC_BITS, d),
            Dataflow::OutputStationary => r * ramb18_for(ACT_BITS, d) + c * ramb18_for(ACT_BITS, d),
        };
        ResourceEstimate {
            lut: 2000 + lut_pe * pes + 24 * (r + c) + 6 * s,
            ff: 2500 + ff_pe * pes + 16 * (r + c) + 4 * s,
            dsp: pes,
            bram18,
            uram: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{LayerOp, QfxTypes};

    fn gemm(m: u64, k: u64, n: u64) -> Layer {
        Layer {
            name: "g".into(),
            op: LayerOp::Gemm(GemmShape { m, k, n }),
            repeat: 1,
            types: QfxTypes::default(),
        }
    }

    fn cfg(rows: u32, cols: u32, dataflow: Dataflow) -> ProvisionalSystolicConfig {
        ProvisionalSystolicConfig {
            rows,
            cols,
            dataflow,
            buffer_depth: 512,
            stream_bits: 64,
        }
    }

    #[test]
    fn cycles_never_beat_the_mac_bound() {
        let m = ProvisionalSystolicModel;
        for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
            let c = cfg(8, 4, df);
            for (mm, k, n) in [(1, 1, 1), (32, 784, 512), (197, 64, 197), (12544, 9, 1)] {
                let l = gemm(mm, k, n);
                for t in m.tilings(&c, &l) {
                    let cyc = m.layer_cycles(&c, &l, &t).unwrap();
                    assert!(cyc >= l.macs().div_ceil(32), "{df:?} {t:?}");
                    // Every tiling moves at least the operands and the result once.
                    assert!(m.ddr_bytes(&c, &l, &t) >= mm * k + k * n + mm * n);
                }
            }
        }
    }

    #[test]
    fn ws_exact_small_case() {
        // M=4, K=4, N=4 on a 4×4 WS array, m_tile 4: one fold of 4 + 7 cycles, + 4 preload.
        let m = ProvisionalSystolicModel;
        let c = cfg(4, 4, Dataflow::WeightStationary);
        let t = ProvisionalTiling::WeightStationary { m_tile: 4 };
        assert_eq!(m.layer_cycles(&c, &gemm(4, 4, 4), &t), Some(4 + 7 + 4));
        assert_eq!(m.resources(&c).dsp, 16);
    }

    #[test]
    fn mismatched_tiling_is_rejected() {
        let m = ProvisionalSystolicModel;
        let c = cfg(4, 4, Dataflow::OutputStationary);
        let t = ProvisionalTiling::WeightStationary { m_tile: 4 };
        assert_eq!(m.layer_cycles(&c, &gemm(4, 4, 4), &t), None);
    }
}
