//! The MoE template's own models as a mapper engine: its exact cycle model
//! (`accelforge_templates::moe::cost::cycles`, equal to Verilator) and its resource model, for
//! the very `MoeParams` that `gen moe`/`sim moe` take.
//!
//! Mapping of the search space onto the template's knobs:
//! - the layer (tokens, d_model, d_ff, experts, top_k, queue depth, types) is fixed by the
//!   hardware, so every distinct `moe` layer spec of the workload gets its own candidates and a
//!   configuration runs only layers of exactly its spec (an overlay of two different MoE specs
//!   is infeasible);
//! - `lanes` from the space's `rows`, `simd` from its `cols` (the template's `validate()` keeps
//!   powers of two up to 16 with `max(lanes, simd)` dividing d_model and d_ff and `lanes`
//!   dividing experts);
//! - the weight stream (`ddr_bytes_per_cycle`) is the board's DDR bytes per PL cycle, capped by
//!   the space's stream width and rounded down to what the core accepts (a power-of-two number
//!   of weights per beat that divides `lanes × simd`);
//! - `queue_depth` = the layer's `queue_depth` key, by default tokens, so no (token, expert)
//!   pair is ever dropped, whatever the routing;
//! - the space's `dataflows` and `buffer_depths` do not apply (the core has one dataflow and
//!   sizes its buffers from the layer shape);
//! - types: the layer's `in`, `weight` and `out` QFX strings become `MoeTypes::input`,
//!   `weight` and `output` (the workload parser has checked them); logit, hidden and expert
//!   output types, gate mode and activation are the template's defaults. A 16-bit weight
//!   doubles the weight stream's bytes and the weight buffer, and widens the accumulators;
//! - resources: the template's `cost::resources` — DSP and BRAM counted exactly, LUT and FF
//!   from its Yosys-fitted calibration (`moe::calibration`), so all four budget lines bind.
//!
//! Routing is data-dependent, and the cycle model needs the expert loads. The mapper prices a
//! **balanced** routing with expert reordering: the `tokens·top_k` pairs spread evenly over the
//! experts, each active expert loaded once. With `experts ≤ tokens·top_k` that streams every
//! expert's weights, which is what bounds a weight-streaming MoE core; skewed routings stream
//! fewer experts and are rarely slower. With a queue shallower than an expert's share, the
//! pairs beyond it are dropped and not computed.

use accelforge_boards::{Board, ResourceEstimate};
use accelforge_templates::moe::cost::{self, CycleReport};
use accelforge_templates::moe::{MoeParams, MoeTypes};
use accelforge_templates::qfx::QType;

use crate::model::{EngineModel, SearchSpace};
use crate::workload::{Layer, MoeShape, Workload};

/// What an MoE core is built for: the layer shape (queue depth included) and the value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoeSpec {
    /// Shape, with `queue_depth` resolved (`Some`, by default the token count).
    pub shape: MoeShape,
    /// Value types.
    pub types: MoeTypes,
}

impl MoeSpec {
    /// The spec of a `moe` layer; `None` for other layers or types that do not parse (the
    /// workload parser rejects those).
    pub fn of_layer(layer: &Layer) -> Option<MoeSpec> {
        let mut shape = layer.moe()?;
        shape.queue_depth = Some(shape.queue_depth.unwrap_or(shape.tokens));
        let parse = |s: &Option<String>, default: QType| -> Option<QType> {
            match s {
                Some(text) => text.parse().ok(),
                None => Some(default),
            }
        };
        let d = MoeTypes::default();
        let types = MoeTypes {
            input: parse(&layer.types.input, d.input)?,
            weight: parse(&layer.types.weight, d.weight)?,
            output: parse(&layer.types.out, d.output)?,
            ..d
        };
        Some(MoeSpec { shape, types })
    }

    /// The spec a configuration was built for.
    pub fn of_params(p: &MoeParams) -> MoeSpec {
        MoeSpec {
            shape: MoeShape {
                tokens: u64::from(p.tokens),
                d_model: u64::from(p.d_model),
                d_ff: u64::from(p.d_ff),
                experts: u64::from(p.experts),
                top_k: u64::from(p.top_k),
                queue_depth: Some(u64::from(p.queue_depth)),
            },
            types: p.types,
        }
    }
}

/// The MoE template's exact models for a given workload and weight-stream rate.
#[derive(Debug, Clone)]
pub struct MoeTemplateModel {
    /// Distinct MoE layer specs of the workload, in order of first appearance.
    specs: Vec<MoeSpec>,
    /// DDR bytes the board delivers per PL cycle.
    ddr_bytes_per_cycle: f64,
    /// Failures of the template's models: counted and reported, never silently dropped.
    errors: std::sync::Arc<std::sync::Mutex<crate::model::ModelErrors>>,
}

impl MoeTemplateModel {
    /// A model for the `moe` layers of `workload` whose weight stream may carry at most
    /// `ddr_bytes_per_cycle` bytes per cycle.
    pub fn new(workload: &Workload, ddr_bytes_per_cycle: f64) -> Self {
        let mut specs = Vec::new();
        for s in workload.layers.iter().filter_map(MoeSpec::of_layer) {
            if !specs.contains(&s) {
                specs.push(s);
            }
        }
        MoeTemplateModel {
            specs,
            ddr_bytes_per_cycle,
            errors: Default::default(),
        }
    }

    /// [`new`](Self::new) with the DDR rate of `board` at `clock_mhz` (default: the board's
    /// default PL clock) — pass the same clock as `MapOptions::clock_mhz`.
    pub fn for_board(workload: &Workload, board: &Board, clock_mhz: Option<f64>) -> Self {
        let clock = clock_mhz.unwrap_or_else(|| board.default_clock_mhz());
        Self::new(workload, board.ddr_bytes_per_pl_cycle(clock))
    }

    /// The priced routing: `tokens·top_k` pairs spread evenly, expert `i` taking one more while
    /// `i` is below the remainder, at most `queue_depth` each (the rest are dropped); experts
    /// without tokens are not loaded.
    pub fn balanced_loads(p: &MoeParams) -> Vec<(u32, u32)> {
        let pairs = p.tokens * p.top_k;
        let base = pairs / p.experts;
        let extra = pairs % p.experts;
        (0..p.experts)
            .map(|e| (e, (base + u32::from(e < extra)).min(p.max_load_tokens())))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// The cycle report of `layer` on `cfg`, or `None` when the configuration is not built for
    /// this layer.
    fn report(&self, cfg: &MoeParams, layer: &Layer) -> Option<CycleReport> {
        if MoeSpec::of_layer(layer)? != MoeSpec::of_params(cfg) {
            return None;
        }
        match cost::cycles(cfg, &Self::balanced_loads(cfg)) {
            Ok(r) => Some(r),
            Err(e) => {
                self.record(format!("cycle model: {e}"));
                None
            }
        }
    }

    fn record(&self, message: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.record(message);
        }
    }

    /// Bytes the core's token streams move: tokens in, results out.
    fn token_bytes(cfg: &MoeParams) -> u64 {
        let td = u64::from(cfg.tokens) * u64::from(cfg.d_model);
        td * u64::from(cfg.input_bytes() + cfg.output_bytes())
    }
}

/// Largest power of two `≤ x` (`x ≥ 1`).
fn floor_pow2(x: u32) -> u32 {
    1 << (31 - x.leading_zeros())
}

impl EngineModel for MoeTemplateModel {
    type Config = MoeParams;
    type Tiling = ();

    fn name(&self) -> &str {
        "moe-template"
    }

    fn note(&self) -> Option<&str> {
        Some(
            "cycles from the MoE template's exact model (equal to Verilator) under balanced routing with expert reordering; DSP and BRAM counted exactly, LUT and FF from the Yosys-fitted model; the layer's in/weight/out types and queue_depth applied",
        )
    }

    fn candidates(&self, space: &SearchSpace) -> Vec<MoeParams> {
        let mut out: Vec<MoeParams> = Vec::new();
        // The board's rate in whole bytes; a fraction of a byte per cycle cannot fill a beat.
        let board_bytes = if self.ddr_bytes_per_cycle.is_finite() && self.ddr_bytes_per_cycle >= 1.0
        {
            self.ddr_bytes_per_cycle.min(64.0).floor() as u32
        } else {
            return out;
        };
        for spec in &self.specs {
            let shape = &spec.shape;
            let dim = |x: u64| u32::try_from(x).ok();
            let (
                Some(tokens),
                Some(d_model),
                Some(d_ff),
                Some(experts),
                Some(top_k),
                Some(queue_depth),
            ) = (
                dim(shape.tokens),
                dim(shape.d_model),
                dim(shape.d_ff),
                dim(shape.experts),
                dim(shape.top_k),
                shape.queue_depth.and_then(dim),
            )
            else {
                continue;
            };
            for &lanes in &space.rows {
                for &simd in &space.cols {
                    for &stream_bits in &space.stream_bits {
                        let base = MoeParams {
                            tokens,
                            d_model,
                            d_ff,
                            experts,
                            top_k,
                            lanes,
                            simd,
                            queue_depth,
                            types: spec.types,
                            ..MoeParams::default()
                        };
                        let bpw = base.weight_bytes();
                        let cap = board_bytes.min(stream_bits / 8);
                        if cap < bpw || lanes == 0 || simd == 0 {
                            continue;
                        }
                        // Weights per beat must be a power of two dividing lanes × simd (one
                        // weight-buffer word); take the widest the bus allows.
                        let per_beat = floor_pow2(cap / bpw).min(lanes.saturating_mul(simd));
                        let p = MoeParams {
                            ddr_bytes_per_cycle: per_beat * bpw,
                            ..base
                        };
                        if p.validate().is_ok() && !out.contains(&p) {
                            out.push(p);
                        }
                    }
                }
            }
        }
        out
    }

    fn tilings(&self, cfg: &MoeParams, layer: &Layer) -> Vec<()> {
        if self.report(cfg, layer).is_some() {
            vec![()]
        } else {
            Vec::new()
        }
    }

    fn layer_cycles(&self, cfg: &MoeParams, layer: &Layer, _: &()) -> Option<u64> {
        self.report(cfg, layer).map(|r| r.cycles)
    }

    fn ddr_bytes(&self, cfg: &MoeParams, layer: &Layer, _: &()) -> u64 {
        self.report(cfg, layer).map_or(u64::MAX, |r| {
            r.weight_bytes.saturating_add(Self::token_bytes(cfg))
        })
    }

    fn stream_bytes_per_cycle(&self, cfg: &MoeParams) -> f64 {
        f64::from(cfg.ddr_bytes_per_cycle)
    }

    /// The cycle model already includes the weight-stream stalls (the stream runs at
    /// `cfg.ddr_bytes_per_cycle`, at most the board's rate), and tokens travel on their own
    /// stream in parallel; the board's DDR still has to carry weights and tokens together, so
    /// the latency is the larger of the two.
    fn layer_latency(
        &self,
        cfg: &MoeParams,
        layer: &Layer,
        tiling: &(),
        ddr_bytes_per_cycle: f64,
    ) -> Option<u64> {
        let cycles = self.layer_cycles(cfg, layer, tiling)?;
        if ddr_bytes_per_cycle <= 0.0 || !ddr_bytes_per_cycle.is_finite() {
            return None;
        }
        let transfer = (self.ddr_bytes(cfg, layer, tiling) as f64 / ddr_bytes_per_cycle).ceil();
        Some(cycles.max(transfer as u64))
    }

    fn resources(&self, cfg: &MoeParams) -> ResourceEstimate {
        match cost::resources(cfg) {
            Ok(r) => ResourceEstimate {
                lut: r.lut,
                ff: r.ff,
                dsp: r.dsp,
                bram18: r.bram18,
                uram: 0,
            },
            // Unbuildable configurations are filtered in `candidates`; make any other one
            // unaffordable rather than free, and report it.
            Err(e) => {
                self.record(format!("resource model: {e}"));
                ResourceEstimate {
                    lut: u64::MAX / 4,
                    ff: u64::MAX / 4,
                    dsp: u64::MAX / 4,
                    bram18: u64::MAX / 4,
                    uram: u64::MAX / 4,
                }
            }
        }
    }

    fn model_errors(&self) -> crate::model::ModelErrors {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::parse_workload;

    const TINY: &str =
        "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=8\ntop_k=2\n";

    #[test]
    fn balanced_loads_cover_every_pair() {
        let p = MoeParams {
            experts: 8,
            tokens: 5,
            top_k: 2,
            ..MoeParams::default()
        };
        let loads = MoeTemplateModel::balanced_loads(&p);
        assert_eq!(loads.iter().map(|l| l.1).sum::<u32>(), 10);
        assert_eq!(loads.len(), 8);
        assert!(loads.iter().all(|l| l.1 <= p.tokens));
    }

    #[test]
    fn candidates_are_valid_and_run_only_their_shape() {
        let w = parse_workload(
            &format!("{TINY}[[layer]]\nkind='gemm'\nm=4\nk=4\nn=4\n"),
            "t",
            "t",
        )
        .unwrap();
        let model = MoeTemplateModel::new(&w, 10.0);
        let c = model.candidates(&SearchSpace::small());
        // lanes, simd ∈ {4, 8} (16 does not divide 8 experts), two stream widths.
        assert!(!c.is_empty());
        for p in &c {
            p.validate().unwrap();
            assert!(p.ddr_bytes_per_cycle <= 8);
            assert_eq!(model.tilings(p, &w.layers[0]).len(), 1);
            assert!(model.tilings(p, &w.layers[1]).is_empty());
        }
        // Below one byte per cycle nothing can be built.
        assert!(
            MoeTemplateModel::new(&w, 0.5)
                .candidates(&SearchSpace::small())
                .is_empty()
        );
    }
}
