//! The streaming attention kernel as a [`Template`]: the registry's view of this folder.
//!
//! A kernel is built for one attention shape (tokens, head dimension, heads) and its Q/K/V
//! and output types: it runs exactly the `attention` layers of that shape, one command per
//! layer (every head).

use accelforge_boards::{AccelInterface, Board, FixedBatch, ResourceEstimate};
use accelforge_hdl::Design;

use super::params::Resolved;
use super::space::{AttentionAxes, AttentionSpace};
use super::stream::AttentionData;
use super::{AttentionParams, cost, rtl, sim};
use crate::template::{
    LayerCost, MapContext, SimCheck, SpaceError, SweepSpace, Template, TemplateError, axis_error,
    err, parse_axes,
};
use crate::workload::{AttentionShape, Layer, LayerOp, QfxTypes};

/// The streaming attention kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attention;

/// What a kernel is built for, from an `attention` layer: its shape, and its `in` and `out`
/// types (the template's defaults where the layer sets none).
pub fn params_for_layer(layer: &Layer, base: &AttentionParams) -> Option<AttentionParams> {
    let a = layer.attention()?;
    let dim = |x: u64| u32::try_from(x).ok();
    Some(AttentionParams {
        tokens: dim(a.tokens)?,
        head_dim: dim(a.head_dim)?,
        heads: dim(a.heads)?,
        qkv_type: layer.types.input.clone().unwrap_or(base.qkv_type.clone()),
        output_type: layer.types.out.clone().unwrap_or(base.output_type.clone()),
        ..base.clone()
    })
}

/// Whether the kernel `p` is built for `layer` (shape and types).
fn runs(p: &AttentionParams, layer: &Layer) -> bool {
    params_for_layer(layer, p).is_some_and(|q| &q == p)
}

fn resolve(p: &AttentionParams) -> Result<Resolved, TemplateError> {
    p.resolve().map_err(err)
}

/// The figures of one command.
pub fn command_cost(r: &Resolved) -> LayerCost {
    LayerCost {
        cycles: cost::cycles(r),
        macs: cost::macs(r),
        ddr_bytes: cost::ddr_bytes(r),
    }
}

impl Template for Attention {
    type Params = AttentionParams;

    fn name(&self) -> &'static str {
        "attention"
    }

    fn about(&self) -> &'static str {
        "Streaming multi-head attention (Q·Kᵀ, online softmax with exp2 tables, P·V) for one shape"
    }

    fn params_file(&self) -> &'static str {
        "attention_params.json"
    }

    fn sweep_axes_hint(&self) -> &'static str {
        "at least query_lanes and simd"
    }

    fn validate(&self, p: &AttentionParams) -> Result<(), TemplateError> {
        resolve(p).map(|_| ())
    }

    fn design(&self, p: &AttentionParams) -> Result<Design, TemplateError> {
        rtl::design(&resolve(p)?).map_err(err)
    }

    fn resources(&self, p: &AttentionParams) -> Result<ResourceEstimate, TemplateError> {
        Ok(cost::resources(&resolve(p)?))
    }

    /// `None` unless the layer is exactly the one the kernel is built for.
    fn layer_cost(
        &self,
        p: &AttentionParams,
        layer: &Layer,
    ) -> Result<Option<LayerCost>, TemplateError> {
        if !runs(p, layer) {
            return Ok(None);
        }
        Ok(Some(command_cost(&resolve(p)?)))
    }

    fn own_layer(&self, p: &AttentionParams) -> Option<Layer> {
        Some(Layer {
            name: "attention".into(),
            op: LayerOp::Attention(AttentionShape {
                tokens: u64::from(p.tokens),
                head_dim: u64::from(p.head_dim),
                heads: u64::from(p.heads),
            }),
            repeat: 1,
            types: QfxTypes {
                input: Some(p.qkv_type.clone()),
                out: Some(p.output_type.clone()),
                ..QfxTypes::default()
            },
        })
    }

    fn stream_bytes_per_cycle(&self, p: &AttentionParams) -> f64 {
        p.resolve()
            .map_or(0.0, |r| f64::from(r.in_bits() + r.out_bits()) / 8.0)
    }

    fn simulate(
        &self,
        p: &AttentionParams,
        layer: &Layer,
        seed: u64,
    ) -> Result<SimCheck, TemplateError> {
        if !runs(p, layer) {
            return Err(err(format!(
                "layer `{}` is not the attention layer this kernel is built for (tokens {}, head_dim {}, heads {}, in {}, out {})",
                layer.name, p.tokens, p.head_dim, p.heads, p.qkv_type, p.output_type
            )));
        }
        let r = resolve(p)?;
        check_sim_size(&r).map_err(err)?;
        let started = std::time::Instant::now();
        let data = AttentionData::random(&r, seed, 1.0);
        let s = sim::simulate(
            &r,
            &data,
            sim::Stalls::default(),
            &accelforge_sim::BuildOptions::default(),
        )
        .map_err(err)?;
        Ok(SimCheck {
            cycles: s.cycles,
            model_cycles: s.model_cycles,
            outputs_checked: s.outputs_checked,
            mismatches: s.mismatches,
            sim_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The default kernel's layer: a ViT-Tiny attention (3 heads, 197 tokens, d = 64).
    fn example_layer(&self) -> Layer {
        Template::own_layer(self, &AttentionParams::default())
            .expect("a kernel is built for a layer")
    }

    /// The input of one command (every head) in one transfer.
    fn max_transfer_bytes(&self, p: &AttentionParams) -> u64 {
        p.resolve().map_or(0, |r| {
            (cost::input_beats(&r) * u64::from(r.in_bits() / 8))
                .max(cost::output_beats(&r) * u64::from(r.out_bits() / 8))
        })
    }

    /// The fixed command: every head's input beats in, its output beats out.
    fn complete_interface(
        &self,
        p: &AttentionParams,
        _design: &Design,
        accel: AccelInterface,
        _board: &Board,
    ) -> Result<AccelInterface, TemplateError> {
        let r = resolve(p)?;
        Ok(accel.with_fixed_batch(FixedBatch {
            in_beats: cost::input_beats(&r),
            out_beats: cost::output_beats(&r),
        }))
    }

    /// Every distinct `attention` layer of the workload gets its own candidates (a kernel runs
    /// only layers of exactly its shape and types): `query_lanes` from the space's `rows`,
    /// `simd` from its `cols` (powers of two dividing the head dimension). The space's other
    /// knobs do not apply.
    fn map_candidates(&self, ctx: &MapContext<'_, AttentionParams>) -> Vec<AttentionParams> {
        let default = AttentionParams::default();
        let base = ctx.base.unwrap_or(&default);
        let mut out: Vec<AttentionParams> = Vec::new();
        let mut specs: Vec<AttentionParams> = Vec::new();
        for s in ctx.layers.iter().filter_map(|l| params_for_layer(l, base)) {
            if !specs.contains(&s) {
                specs.push(s);
            }
        }
        for spec in &specs {
            for &query_lanes in &ctx.space.rows {
                for &simd in &ctx.space.cols {
                    let p = AttentionParams {
                        query_lanes,
                        simd,
                        ..spec.clone()
                    };
                    if p.resolve().is_ok() && !out.contains(&p) {
                        out.push(p);
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
        let axes: AttentionAxes = parse_axes("attention", axes)?;
        let base = super::space::layer_params(layers).map_err(|problem| SpaceError {
            key: "workload".into(),
            problem,
        })?;
        Ok(Box::new(
            AttentionSpace::from_axes(&axes, base).map_err(axis_error("attention"))?,
        ))
    }
}

/// Refuses a command whose simulation would hold more than
/// [`MAX_SIM_ELEMENTS`](crate::limits::MAX_SIM_ELEMENTS) Q/K/V elements, or run more than
/// [`MAX_SIM_CYCLES`] cycles.
pub fn check_sim_size(r: &Resolved) -> Result<(), String> {
    let elements = 3 * u64::from(r.p.heads) * u64::from(r.p.tokens) * u64::from(r.p.head_dim);
    if elements > crate::limits::MAX_SIM_ELEMENTS {
        return Err(format!(
            "simulating this attention layer needs {elements} Q/K/V elements in memory, above \
             the simulation bound of {}; use `estimate attention` for its exact cycle count",
            crate::limits::MAX_SIM_ELEMENTS
        ));
    }
    let cycles = cost::cycles(r);
    if cycles > MAX_SIM_CYCLES {
        return Err(format!(
            "simulating this attention layer takes {cycles} cycles, above the simulation bound \
             of {MAX_SIM_CYCLES}; use `estimate attention` for its exact cycle count, or \
             simulate fewer heads or tokens"
        ));
    }
    Ok(())
}

/// Longest attention command `sim` runs (a few seconds in Verilator).
pub const MAX_SIM_CYCLES: u64 = 20_000_000;
