//! The systolic array as a [`Template`]: the registry's view of this folder.

use accelforge_boards::{AccelInterface, Board, ResourceEstimate};
use accelforge_hdl::Design;

use super::layer::Gemm;
use super::space::{SystolicAxes, SystolicSpace};
use super::{Dataflow, SystolicParams, cost, rtl};
use crate::template::{
    LayerCost, MapContext, MapDataflow, SimCheck, SpaceError, SweepSpace, Template, TemplateError,
    axis_error, err, parse_axes,
};
use crate::workload::{GemmShape, Layer, LayerOp, QfxTypes};

/// The systolic-array GEMM/conv2d engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Systolic;

/// The operand buffer depth that lets every GEMM-like layer of `layers` run: the largest K,
/// rounded up to a multiple of 64 (at least 64).
pub fn workload_max_k(layers: &[Layer]) -> u32 {
    let max_k = layers
        .iter()
        .filter(|l| l.is_gemm_like())
        .map(|l| l.lower().gemm.k)
        .max()
        .unwrap_or(64)
        .max(64);
    u32::try_from(max_k.div_ceil(64) * 64).unwrap_or(u32::MAX)
}

impl Template for Systolic {
    type Params = SystolicParams;

    fn name(&self) -> &'static str {
        "systolic"
    }

    fn about(&self) -> &'static str {
        "systolic-array GEMM/conv2d engine (output- or weight-stationary, DSP, packed-DSP or shift-add PEs)"
    }

    fn sweep_axes_hint(&self) -> &'static str {
        "at least rows and cols"
    }

    fn cost_note(&self) -> &'static str {
        "cycles from the systolic template's exact model (equal to Verilator); DSP and BRAM exact against Yosys, LUT/FF estimated; operand types and requantizer as configured (int8 by default)"
    }

    fn validate(&self, p: &SystolicParams) -> Result<(), TemplateError> {
        p.validate().map_err(err)
    }

    fn design(&self, p: &SystolicParams) -> Result<Design, TemplateError> {
        rtl::design(p).map_err(err)
    }

    fn resources(&self, p: &SystolicParams) -> Result<ResourceEstimate, TemplateError> {
        Ok(cost::resources(p).map_err(err)?.estimate())
    }

    fn layer_cost(
        &self,
        p: &SystolicParams,
        layer: &Layer,
    ) -> Result<Option<LayerCost>, TemplateError> {
        if !layer.is_gemm_like() {
            // An MoE layer's GEMMs depend on the routing and its gate/top-k/combine are not
            // GEMMs: the MoE core runs it; attention's softmax is not a GEMM either.
            return Ok(None);
        }
        let lowered = layer.lower();
        let g = lowered.gemm;
        // The command's dimension fields are 16 bits wide.
        let dim = |x: u64| u32::try_from(x).ok().filter(|v| *v > 0 && *v < 1 << 16);
        let (Some(m), Some(k), Some(n)) = (dim(g.m), dim(g.k), dim(g.n)) else {
            return Ok(None);
        };
        let g = Gemm { m, k, n };
        let est = cost::cycles(p, &g).map_err(|e| {
            TemplateError(format!(
                "cycle model, {}x{} array, {g}: {e}",
                p.rows, p.cols
            ))
        })?;
        let beats = est.input_beats + est.output_beats;
        let groups = lowered.groups;
        let (Some(cycles), Some(macs), Some(beats)) = (
            est.cycles.checked_mul(groups),
            est.macs.checked_mul(groups),
            beats.checked_mul(groups),
        ) else {
            return Ok(None);
        };
        Ok(Some(LayerCost {
            cycles,
            macs,
            // Every beat of the operand and result streams goes through the DMA.
            ddr_bytes: beats.saturating_mul(u64::from(p.stream_bits / 8)),
        }))
    }

    fn stream_bytes_per_cycle(&self, p: &SystolicParams) -> f64 {
        f64::from(p.stream_bits / 8)
    }

    fn simulate(
        &self,
        p: &SystolicParams,
        layer: &Layer,
        seed: u64,
    ) -> Result<SimCheck, TemplateError> {
        super::sim::simulate_layer(p, layer, seed).map_err(err)
    }

    fn example_layer(&self) -> Layer {
        Layer {
            name: "gemm".into(),
            op: LayerOp::Gemm(GemmShape {
                m: 12,
                k: 40,
                n: 20,
            }),
            repeat: 1,
            types: QfxTypes::default(),
        }
    }

    /// Bounded by the wrapper's 26-bit DMA length register: ask for the maximum.
    fn max_transfer_bytes(&self, _p: &SystolicParams) -> u64 {
        (1 << 26) - 1
    }

    fn complete_interface(
        &self,
        p: &SystolicParams,
        _design: &Design,
        accel: AccelInterface,
        _board: &Board,
    ) -> Result<AccelInterface, TemplateError> {
        // What the core accepts (it rejects the rest with its error bit); the driver checks
        // these before starting a command.
        let full = |name: &str| {
            accel
                .args
                .iter()
                .find(|x| x.name == name)
                .map_or(0, |x| (1u64 << x.bits) - 1)
        };
        let (m_max, n_max) = (full("m"), full("n"));
        let per_channel = accel.args.iter().any(|x| x.name == "op");
        let mut accel = accel
            .with_arg_range("m", 1, m_max)
            .and_then(|a| a.with_arg_range("k", 1, u64::from(p.max_k)))
            .and_then(|a| a.with_arg_range("n", 1, n_max))
            .map_err(err)?;
        // The per-channel requantizer's command fields (lo and hi are signed 32-bit clamp
        // bounds: any value is accepted).
        if per_channel {
            accel = accel
                .with_arg_range("op", 0, 1)
                .and_then(|a| a.with_arg_range("shift", 0, 63))
                .and_then(|a| a.with_arg_range("round", 0, 1))
                .map_err(err)?;
        }
        Ok(accel)
    }

    /// Rows, columns and stream width as given; the controller fixes the tiling; the space's
    /// `buffer_depths` set how many columns of B stay on chip (`max_n_chunk = cols × depth /
    /// 512`, at least `cols`); `max_k` is the workload's largest reduction length rounded up to
    /// a multiple of 64 (or the base's, if larger); combinations `validate()` refuses (packed
    /// PEs for types that do not pack) are skipped. In the space's order, so ties between
    /// equal costs are broken deterministically.
    fn map_candidates(&self, ctx: &MapContext<'_, SystolicParams>) -> Vec<SystolicParams> {
        let space = ctx.space;
        let base = ctx.base.cloned().unwrap_or_default();
        let max_k = match ctx.base {
            Some(b) => workload_max_k(ctx.layers).max(b.max_k),
            None => workload_max_k(ctx.layers),
        };
        let mut out = Vec::new();
        let dataflows = space.dataflows.iter().map(|d| match d {
            MapDataflow::OutputStationary => Dataflow::Os,
            MapDataflow::WeightStationary => Dataflow::Ws,
        });
        for dataflow in dataflows {
            for &rows in &space.rows {
                for &cols in &space.cols {
                    for &depth in &space.buffer_depths {
                        for &stream_bits in &space.stream_bits {
                            for &pe in &space.pes {
                                for &buffer_ram in &space.buffer_rams {
                                    let p = SystolicParams {
                                        rows,
                                        cols,
                                        dataflow,
                                        pe,
                                        buffer_ram,
                                        max_k,
                                        max_n_chunk: cols * (depth / 512).max(1),
                                        stream_bits,
                                        ..base.clone()
                                    };
                                    if p.validate().is_ok() {
                                        out.push(p);
                                    }
                                }
                            }
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
        let axes: SystolicAxes = parse_axes("systolic", axes)?;
        if let Some(l) = layers
            .iter()
            .find(|l| l.moe().is_some() || l.attention().is_some())
        {
            return Err(SpaceError {
                key: "workload".into(),
                problem: format!(
                    "layer `{}` is a {} layer, which the systolic template does not run (sweep it with template = \"{}\")",
                    l.name,
                    l.op.kind(),
                    l.op.kind()
                ),
            });
        }
        Ok(Box::new(
            SystolicSpace::from_axes(&axes).map_err(axis_error("systolic"))?,
        ))
    }
}
