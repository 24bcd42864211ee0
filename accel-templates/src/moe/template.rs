//! The MoE core as a [`Template`]: the registry's view of this folder.
//!
//! Routing is data-dependent and the cycle model needs it. Outside a simulation the core is
//! priced on a **balanced** routing with expert reordering ([`balanced_loads`]): the
//! `tokens·top_k` pairs spread evenly over the experts, each active expert loaded once. With
//! `experts ≤ tokens·top_k` that streams every expert's weights, which is what bounds a
//! weight-streaming MoE core; skewed routings stream fewer experts and are rarely slower.

use accelforge_boards::{AccelInterface, Board, ResourceEstimate};
use accelforge_hdl::Design;

use super::model::MoeData;
use super::space::{MoeAxes, MoeLayerShape, MoeSpace};
use super::{MoeParams, MoeTypes, WeightSource, cost, rtl};
use crate::qfx::QType;
use crate::template::{
    LayerCost, MapContext, SimCheck, SpaceError, SweepSpace, Template, TemplateError, axis_error,
    err, parse_axes,
};
use crate::workload::{Layer, LayerOp, MoeShape, QfxTypes};

/// The Mixture-of-Experts streaming core.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moe;

/// What an MoE core is built for: the layer shape (queue depth included) and the value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoeSpec {
    /// Shape, with `queue_depth` resolved (`Some`, by default the token count).
    pub shape: MoeShape,
    /// Value types.
    pub types: MoeTypes,
}

impl MoeSpec {
    /// The spec of a `moe` layer: its `in`, `weight` and `out` types (logit, hidden and expert
    /// output types are the template's defaults); `None` for other layers or types that do
    /// not parse (the workload parser rejects those).
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

/// Bytes the core's token streams move in one batch: tokens in, results out.
pub fn token_bytes(p: &MoeParams) -> u64 {
    let td = u64::from(p.tokens) * u64::from(p.d_model);
    td * u64::from(p.input_bytes() + p.output_bytes())
}

/// Largest power of two `≤ x` (`x ≥ 1`).
fn floor_pow2(x: u32) -> u32 {
    1 << (31 - x.leading_zeros())
}

impl Template for Moe {
    type Params = MoeParams;

    fn name(&self) -> &'static str {
        "moe"
    }

    fn about(&self) -> &'static str {
        "Mixture-of-Experts streaming core (gate, top-k, dispatch, expert FFN with weights streamed from DDR, combine)"
    }

    fn params_file(&self) -> &'static str {
        "moe_params.json"
    }

    fn sweep_axes_hint(&self) -> &'static str {
        "at least lanes and simd"
    }

    fn cost_note(&self) -> &'static str {
        "cycles from the MoE template's exact model (equal to Verilator) under balanced routing with expert reordering; DSP and BRAM counted exactly, LUT and FF from the Yosys-fitted model; the layer's in/weight/out types and queue_depth applied"
    }

    fn validate(&self, p: &MoeParams) -> Result<(), TemplateError> {
        p.validate().map_err(err)
    }

    fn design(&self, p: &MoeParams) -> Result<Design, TemplateError> {
        rtl::design(p).map_err(err)
    }

    fn resources(&self, p: &MoeParams) -> Result<ResourceEstimate, TemplateError> {
        Ok(cost::resources(p).map_err(err)?.estimate())
    }

    /// The balanced routing's cycles; `None` unless the layer is exactly the one the core is
    /// built for (shape, queue depth and types).
    fn layer_cost(&self, p: &MoeParams, layer: &Layer) -> Result<Option<LayerCost>, TemplateError> {
        if MoeSpec::of_layer(layer) != Some(MoeSpec::of_params(p)) {
            return Ok(None);
        }
        let loads = balanced_loads(p);
        let c = cost::cycles(p, &loads).map_err(|e| err(format!("cycle model: {e}")))?;
        let (t, d, e) = (
            u64::from(p.tokens),
            u64::from(p.d_model),
            u64::from(p.experts),
        );
        let pairs: u64 = loads.iter().map(|l| u64::from(l.1)).sum();
        Ok(Some(LayerCost {
            cycles: c.cycles,
            macs: t * d * e + pairs * 2 * d * u64::from(p.d_ff),
            ddr_bytes: c.weight_bytes.saturating_add(token_bytes(p)),
        }))
    }

    fn own_layer(&self, p: &MoeParams) -> Option<Layer> {
        let spec = MoeSpec::of_params(p);
        Some(Layer {
            name: "moe".into(),
            op: LayerOp::Moe(spec.shape),
            repeat: 1,
            types: QfxTypes {
                input: Some(spec.types.input.to_string()),
                weight: Some(spec.types.weight.to_string()),
                out: Some(spec.types.output.to_string()),
                ..QfxTypes::default()
            },
        })
    }

    fn stream_bytes_per_cycle(&self, p: &MoeParams) -> f64 {
        f64::from(p.ddr_bytes_per_cycle)
    }

    /// The cycle model includes the weight-stream stalls (the stream runs at the core's
    /// `ddr_bytes_per_cycle`, at most the board's rate), and tokens travel on their own stream
    /// in parallel; the board's DDR still has to carry weights and tokens together.
    fn cycles_include_streams(&self) -> bool {
        true
    }

    fn simulate(&self, p: &MoeParams, layer: &Layer, seed: u64) -> Result<SimCheck, TemplateError> {
        let built = MoeLayerShape {
            tokens: p.tokens,
            d_model: p.d_model,
            d_ff: p.d_ff,
            experts: p.experts,
            top_k: p.top_k,
        };
        if MoeLayerShape::of_layer(layer).map_err(err)? != Some(built) {
            return Err(err(format!(
                "layer `{}` is not the MoE layer this core is built for (tokens {}, d_model {}, d_ff {}, experts {}, top_k {})",
                layer.name, p.tokens, p.d_model, p.d_ff, p.experts, p.top_k
            )));
        }
        super::sim::check_sim_size(p).map_err(err)?;
        let data = MoeData::random(p, seed, 0.0).map_err(err)?;
        super::sim::simulate_batch(p, &data, true, WeightSource::default()).map_err(err)
    }

    fn example_layer(&self) -> Layer {
        Template::own_layer(self, &MoeParams::default()).expect("an MoE core is built for a layer")
    }

    /// One batch moves `tokens × d_model` elements each way.
    fn max_transfer_bytes(&self, p: &MoeParams) -> u64 {
        let elems = u64::from(p.tokens) * u64::from(p.d_model);
        elems * u64::from(p.input_bytes().max(p.output_bytes()).next_power_of_two())
    }

    /// The DataMover weight fetch (its address width depends on the PS) and the fixed batch
    /// of `tokens × d_model` elements each way.
    fn complete_interface(
        &self,
        p: &MoeParams,
        design: &Design,
        accel: AccelInterface,
        board: &Board,
    ) -> Result<AccelInterface, TemplateError> {
        let id_bits = design
            .top()
            .port("wreq_id")
            .map(|port| port.width)
            .ok_or_else(|| err("the MoE core has no `wreq_id` port"))?;
        let elems = u64::from(p.tokens) * u64::from(p.d_model);
        let addr_bits = accelforge_boards::zynq::dma_addr_bits(board.ps);
        let accel = accel
            .with_weight_fetch(super::weights::weight_fetch(p, addr_bits, id_bits))
            .with_fixed_batch(accelforge_boards::FixedBatch {
                in_beats: elems,
                out_beats: elems,
            });
        Ok(accel)
    }

    /// Every distinct `moe` layer spec of the workload gets its own candidates (a core runs
    /// only layers of exactly its spec): `lanes` from the space's `rows`, `simd` from its
    /// `cols`; the weight stream is the board's DDR bytes per PL cycle, capped by the space's
    /// stream width and rounded down to what the core accepts (a power-of-two number of
    /// weights per beat that divides `lanes × simd`); `queue_depth` is the layer's (by default
    /// its tokens, so no pair is ever dropped). The space's `dataflows`, `buffer_depths`,
    /// `pes` and `buffer_rams` do not apply.
    fn map_candidates(&self, ctx: &MapContext<'_, MoeParams>) -> Vec<MoeParams> {
        let mut out: Vec<MoeParams> = Vec::new();
        // The board's rate in whole bytes; a fraction of a byte per cycle cannot fill a beat.
        let rate = ctx.ddr_bytes_per_cycle;
        let board_bytes = if rate.is_finite() && rate >= 1.0 {
            rate.min(64.0).floor() as u32
        } else {
            return out;
        };
        let mut specs: Vec<MoeSpec> = Vec::new();
        for s in ctx.layers.iter().filter_map(MoeSpec::of_layer) {
            if !specs.contains(&s) {
                specs.push(s);
            }
        }
        for spec in &specs {
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
            for &lanes in &ctx.space.rows {
                for &simd in &ctx.space.cols {
                    for &stream_bits in &ctx.space.stream_bits {
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

    fn sweep_space(
        &self,
        axes: &toml::Value,
        layers: &[Layer],
    ) -> Result<Box<dyn SweepSpace>, SpaceError> {
        let axes: MoeAxes = parse_axes("moe", axes)?;
        let shape = MoeLayerShape::of_workload(layers).map_err(|problem| SpaceError {
            key: "workload".into(),
            problem,
        })?;
        Ok(Box::new(
            MoeSpace::from_axes(&axes, shape).map_err(axis_error("moe"))?,
        ))
    }
}
