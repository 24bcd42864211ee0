//! The Mixture-of-Experts space: axes, lazy enumeration, and evaluation of one point with the
//! MoE template's exact cycle model and its resource model.
//!
//! An MoE core is built for one layer shape (tokens per batch, d_model, d_ff, experts, top_k),
//! so the workload's `moe` layers must all have that shape; the axes are the core's knobs.
//!
//! The weight source's latency (`ddr_latency`, cycles from a weight request to its first beat)
//! is an axis of the environment, not of the core: it changes the cycles (the exact model takes
//! it) but neither the RTL nor the resources. Default 0, as `estimate moe` and the mapper.
//!
//! Routing is data-dependent and the cycle model needs it. A point is priced on the
//! **balanced** routing: token `t` picks experts `(t·k + j) mod E`, `j < k`, which spreads the
//! `T·k` pairs evenly (the routing the mapper prices). It goes through the template's own
//! admission and grouping (`moe::model::route`), so queue overflow drops pairs exactly as the
//! hardware does, and `reorder = false` processes the pairs in token order, reloading an
//! expert's weights at every change of expert.

use ndarray::Array2;
use serde::Deserialize;

use super::model::MoeData;
use super::{FfnActivation, GateMode, MoeParams, MoeTypes, WeightSource, cost, model};
use crate::qfx::QType;
use crate::template::axis::{IntAxis, OneOrMany, digits, int_values, space_len};
use crate::template::{LayerCost, PointEvaluation, SimCheck, SweepSpace};
use crate::workload::Layer;

/// The shape an MoE core is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MoeLayerShape {
    /// Tokens per batch.
    pub tokens: u32,
    /// Model width.
    pub d_model: u32,
    /// Expert hidden width.
    pub d_ff: u32,
    /// Experts.
    pub experts: u32,
    /// Experts per token.
    pub top_k: u32,
}

impl MoeLayerShape {
    /// The shape of an `moe` layer; `Ok(None)` for other layers, an error when a dimension
    /// does not fit 32 bits.
    pub fn of_layer(layer: &Layer) -> Result<Option<MoeLayerShape>, String> {
        let Some(m) = layer.moe() else {
            return Ok(None);
        };
        let dim = |what: &str, v: u64| {
            u32::try_from(v).map_err(|_| format!("{what} = {v} does not fit 32 bits"))
        };
        Ok(Some(MoeLayerShape {
            tokens: dim("tokens", m.tokens)?,
            d_model: dim("d_model", m.d_model)?,
            d_ff: dim("d_ff", m.d_ff)?,
            experts: dim("experts", m.experts)?,
            top_k: dim("top_k", m.top_k)?,
        }))
    }

    /// The one shape every layer of an MoE workload must have (a core is built for one shape).
    pub fn of_workload(layers: &[Layer]) -> Result<MoeLayerShape, String> {
        let mut shape: Option<(MoeLayerShape, &str)> = None;
        for l in layers {
            let Some(s) =
                MoeLayerShape::of_layer(l).map_err(|e| format!("layer `{}`: {e}", l.name))?
            else {
                return Err(format!(
                    "layer `{}` is a {} layer, which the MoE template does not run (sweep it with template = \"{}\")",
                    l.name,
                    l.op.kind(),
                    if l.attention().is_some() {
                        "attention"
                    } else {
                        "systolic"
                    }
                ));
            };
            match shape {
                None => shape = Some((s, &l.name)),
                Some((first, name)) if first != s => {
                    return Err(format!(
                        "layers `{name}` and `{}` have different shapes; an MoE core is built for one (tokens, d_model, d_ff, experts, top_k), so sweep them separately",
                        l.name
                    ));
                }
                Some(_) => {}
            }
        }
        shape
            .map(|(s, _)| s)
            .ok_or_else(|| "the workload has no layers".to_string())
    }
}

/// `[moe]`: one axis per knob of the core. Missing axes take the template's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeAxes {
    /// Output neurons computed in parallel.
    pub lanes: IntAxis,
    /// Inputs per lane per cycle.
    pub simd: IntAxis,
    /// Weight-stream bytes per cycle (the DDR rate the core sees); default 4.
    #[serde(default)]
    pub ddr_bytes_per_cycle: Option<IntAxis>,
    /// Weight-source latency in cycles (request to first beat); default 0.
    #[serde(default)]
    pub ddr_latency: Option<IntAxis>,
    /// Per-expert queue capacity; default: the layer's tokens (no pair is ever dropped).
    #[serde(default)]
    pub queue_depth: Option<IntAxis>,
    /// `softmax` or `renorm`.
    #[serde(default)]
    pub gate: OneOrMany<GateMode>,
    /// `relu` or `gelu`.
    #[serde(default)]
    pub activation: OneOrMany<FfnActivation>,
    /// Token types.
    #[serde(default)]
    pub input_type: OneOrMany<String>,
    /// Gate and expert weight types.
    #[serde(default)]
    pub weight_type: OneOrMany<String>,
    /// Gate logit types.
    #[serde(default)]
    pub logit_type: OneOrMany<String>,
    /// Expert hidden types.
    #[serde(default)]
    pub hidden_type: OneOrMany<String>,
    /// Expert output types.
    #[serde(default)]
    pub expert_out_type: OneOrMany<String>,
    /// Layer output types.
    #[serde(default)]
    pub output_type: OneOrMany<String>,
    /// Group tokens by expert (true, the default) or process them in token order (false).
    #[serde(default)]
    pub reorder: OneOrMany<bool>,
}

/// One point: the core's knobs, flat (one CSV column each), and the processing order of its
/// commands. The layer shape is the workload's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoePoint {
    /// Output neurons in parallel.
    pub lanes: u32,
    /// Inputs per lane per cycle.
    pub simd: u32,
    /// Weight-stream bytes per cycle.
    pub ddr_bytes_per_cycle: u32,
    /// Weight-source latency (cycles from a request to its first beat); records written
    /// before the axis existed read as 0, the latency they were priced at.
    #[serde(default)]
    pub ddr_latency: u32,
    /// Per-expert queue capacity.
    pub queue_depth: u32,
    /// Gate weights.
    pub gate: GateMode,
    /// Expert activation.
    pub activation: FfnActivation,
    /// Token type.
    pub input_type: QType,
    /// Weight type.
    pub weight_type: QType,
    /// Logit type.
    pub logit_type: QType,
    /// Hidden type.
    pub hidden_type: QType,
    /// Expert output type.
    pub expert_out_type: QType,
    /// Layer output type.
    pub output_type: QType,
    /// Expert reordering (the command's `reorder` argument).
    pub reorder: bool,
}

impl MoePoint {
    /// The weight source the point is priced with.
    pub fn source(&self) -> WeightSource {
        WeightSource::with_latency(self.ddr_latency)
    }

    /// The core's parameters for a layer of `shape` (not validated).
    pub fn params(&self, shape: &MoeLayerShape) -> MoeParams {
        MoeParams {
            tokens: shape.tokens,
            d_model: shape.d_model,
            d_ff: shape.d_ff,
            experts: shape.experts,
            top_k: shape.top_k,
            lanes: self.lanes,
            simd: self.simd,
            ddr_bytes_per_cycle: self.ddr_bytes_per_cycle,
            queue_depth: self.queue_depth,
            gate_mode: self.gate,
            activation: self.activation,
            types: MoeTypes {
                input: self.input_type,
                weight: self.weight_type,
                logit: self.logit_type,
                hidden: self.hidden_type,
                expert_out: self.expert_out_type,
                output: self.output_type,
            },
            ..MoeParams::default()
        }
    }
}

/// Parameter names, in CSV column order (the fields of [`MoePoint`]).
pub const PARAM_NAMES: [&str; 14] = [
    "lanes",
    "simd",
    "ddr_bytes_per_cycle",
    "ddr_latency",
    "queue_depth",
    "gate",
    "activation",
    "input_type",
    "weight_type",
    "logit_type",
    "hidden_type",
    "expert_out_type",
    "output_type",
    "reorder",
];

/// The expanded axes.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeSpace {
    shape: MoeLayerShape,
    lanes: Vec<u32>,
    simd: Vec<u32>,
    ddr: Vec<u32>,
    latency: Vec<u32>,
    queue: Vec<u32>,
    gate: Vec<GateMode>,
    activation: Vec<FfnActivation>,
    types: [Vec<QType>; 6],
    reorder: Vec<bool>,
    radices: Vec<u64>,
    len: u64,
}

fn or_default<T: Clone>(v: &OneOrMany<T>, d: T) -> Vec<T> {
    if v.0.is_empty() { vec![d] } else { v.0.clone() }
}

impl MoeSpace {
    /// Expands and checks the axes for a workload of `shape`; errors are `(key, problem)`.
    pub fn from_axes(a: &MoeAxes, shape: MoeLayerShape) -> Result<MoeSpace, (String, String)> {
        let d = MoeParams::default();
        let dt = MoeTypes::default();
        let type_axis = |key: &str, v: &OneOrMany<String>, default: QType| {
            if v.0.is_empty() {
                return Ok(vec![default]);
            }
            v.0.iter()
                .map(|x| {
                    x.parse::<QType>()
                        .map_err(|e| (key.to_string(), format!("`{x}`: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let types = [
            type_axis("input_type", &a.input_type, dt.input)?,
            type_axis("weight_type", &a.weight_type, dt.weight)?,
            type_axis("logit_type", &a.logit_type, dt.logit)?,
            type_axis("hidden_type", &a.hidden_type, dt.hidden)?,
            type_axis("expert_out_type", &a.expert_out_type, dt.expert_out)?,
            type_axis("output_type", &a.output_type, dt.output)?,
        ];
        let mut s = MoeSpace {
            shape,
            lanes: a.lanes.values().map_err(|p| ("lanes".to_string(), p))?,
            simd: a.simd.values().map_err(|p| ("simd".to_string(), p))?,
            ddr: int_values(
                &a.ddr_bytes_per_cycle,
                "ddr_bytes_per_cycle",
                &[d.ddr_bytes_per_cycle],
            )?,
            latency: int_values(&a.ddr_latency, "ddr_latency", &[0])?,
            queue: int_values(&a.queue_depth, "queue_depth", &[shape.tokens])?,
            gate: or_default(&a.gate, d.gate_mode),
            activation: or_default(&a.activation, d.activation),
            types,
            reorder: or_default(&a.reorder, true),
            radices: Vec::new(),
            len: 0,
        };
        let mut radices = vec![
            s.lanes.len(),
            s.simd.len(),
            s.ddr.len(),
            s.latency.len(),
            s.queue.len(),
            s.gate.len(),
            s.activation.len(),
        ];
        radices.extend(s.types.iter().map(Vec::len));
        radices.push(s.reorder.len());
        s.radices = radices.into_iter().map(|n| n as u64).collect();
        s.len = space_len(&s.radices)?;
        Ok(s)
    }

    /// The point `index` (mixed radix; the last axis varies fastest).
    pub fn point(&self, index: u64) -> MoePoint {
        let digits: [usize; PARAM_NAMES.len()] = digits(index, &self.radices);
        let t = |i: usize| self.types[i][digits[7 + i]];
        MoePoint {
            lanes: self.lanes[digits[0]],
            simd: self.simd[digits[1]],
            ddr_bytes_per_cycle: self.ddr[digits[2]],
            ddr_latency: self.latency[digits[3]],
            queue_depth: self.queue[digits[4]],
            gate: self.gate[digits[5]],
            activation: self.activation[digits[6]],
            input_type: t(0),
            weight_type: t(1),
            logit_type: t(2),
            hidden_type: t(3),
            expert_out_type: t(4),
            output_type: t(5),
            reorder: self.reorder[digits[13]],
        }
    }

    /// The layer shape every point is built for.
    pub fn shape(&self) -> MoeLayerShape {
        self.shape
    }
}

/// Gate logits (raw) that make token `t` pick experts `(t·k + j) mod E` in slot order `j`:
/// the balanced routing.
pub fn balanced_logits(p: &MoeParams) -> Array2<i64> {
    let (tt, e, k) = (p.tokens as usize, p.experts as usize, p.top_k as usize);
    // Slot j gets 1 - j and every other expert 1 - k: distinct, no ties, and representable in
    // the narrowest logit type the template takes (2 bits hold -2..=1).
    let mut logits = Array2::from_elem((tt, e), 1 - k as i64);
    for t in 0..tt {
        for j in 0..k {
            logits[[t, (t * k + j) % e]] = 1 - j as i64;
        }
    }
    logits
}

/// Evaluates one point on the workload: every layer has the core's shape.
pub fn evaluate(
    pt: &MoePoint,
    shape: &MoeLayerShape,
    layers: usize,
) -> Result<PointEvaluation, String> {
    let p = &pt.params(shape);
    p.validate().map_err(|e| e.to_string())?;
    let resources = cost::resources(p).map_err(|e| e.to_string())?.estimate();
    let routing =
        model::route(p, balanced_logits(p), pt.reorder).map_err(|e| format!("routing: {e}"))?;
    let c = cost::cycles_with(p, &routing.load_shape(), pt.source()).map_err(|e| e.to_string())?;
    let (tt, dm, dff, e) = (
        u64::from(p.tokens),
        u64::from(p.d_model),
        u64::from(p.d_ff),
        u64::from(p.experts),
    );
    let kept_pairs = tt * u64::from(p.top_k) - routing.dropped as u64;
    let macs = tt * dm * e + kept_pairs * 2 * dm * dff;
    let token_bytes = tt * dm * u64::from(p.input_bytes() + p.output_bytes());
    let layer = LayerCost {
        cycles: c.cycles,
        macs,
        ddr_bytes: c.weight_bytes + token_bytes,
    };
    Ok(PointEvaluation {
        pes: u64::from(p.lanes) * u64::from(p.simd),
        resources,
        layers: vec![layer; layers],
    })
}

impl SweepSpace for MoeSpace {
    fn len(&self) -> u64 {
        self.len
    }

    fn param_names(&self) -> &'static [&'static str] {
        &PARAM_NAMES
    }

    fn params(&self, index: u64) -> serde_json::Value {
        serde_json::to_value(self.point(index)).unwrap_or_default()
    }

    fn evaluate(
        &self,
        index: u64,
        layers: &[Layer],
    ) -> (serde_json::Value, Result<PointEvaluation, String>) {
        let pt = self.point(index);
        let json = serde_json::to_value(&pt).unwrap_or(serde_json::Value::Null);
        (json, evaluate(&pt, &self.shape, layers.len()))
    }

    /// An MoE point is priced on the balanced routing, which random data does not produce;
    /// its verification runs one batch of random tokens and weights (seed 1) and compares
    /// Verilator with the cycle model *for that batch's routing*.
    fn verify(&self, params: &serde_json::Value, _layer: &Layer) -> Result<SimCheck, String> {
        let pt: MoePoint = serde_json::from_value(params.clone())
            .map_err(|e| format!("its params do not describe an MoE core: {e}"))?;
        let p = pt.params(&self.shape);
        let data = MoeData::random(&p, 1, 0.0).map_err(|e| e.to_string())?;
        super::sim::simulate_batch(&p, &data, pt.reorder, pt.source())
    }

    fn verify_reports_its_own_model(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_logits_route_like_the_mappers_balanced_loads() {
        let p = MoeParams {
            tokens: 10,
            experts: 8,
            top_k: 2,
            ..MoeParams::default()
        };
        let r = model::route(&p, balanced_logits(&p), true).unwrap();
        // 20 pairs over 8 experts: experts 0..3 take 3, 4..7 take 2, one load each.
        let shape = r.load_shape();
        assert_eq!(shape.len(), 8);
        for (e, n) in shape {
            assert_eq!(n, if e < 4 { 3 } else { 2 }, "expert {e}");
        }
        assert_eq!(r.dropped, 0);
        let token_order = model::route(&p, balanced_logits(&p), false).unwrap();
        assert_eq!(token_order.loads.len(), 20);
    }

    #[test]
    fn ddr_latency_is_an_axis_priced_by_the_exact_model() {
        let text = r#"
template = "moe"
boards = ["kv260"]
objectives = [{ minimize = "latency_cycles" }]
[moe]
lanes = 4
simd = 4
ddr_bytes_per_cycle = 2
ddr_latency = [0, 40, 150]
reorder = [true, false]
[workload]
layers = [{ kind = "moe", name = "m", tokens = 16, d_model = 16, d_ff = 32, experts = 8, top_k = 2 }]
"#;
        let axes: toml::Value = toml::from_str::<toml::Table>(text).unwrap()["moe"].clone();
        let layers = crate::workload::parse_layer_tables(
            &[toml::from_str(
                "kind = 'moe'\nname = 'm'\ntokens = 16\nd_model = 16\nd_ff = 32\nexperts = 8\ntop_k = 2",
            )
            .unwrap()],
            "t",
        )
        .unwrap();
        let space = MoeSpace::from_axes(
            &crate::template::parse_axes::<MoeAxes>("moe", &axes).unwrap(),
            MoeLayerShape::of_workload(&layers).unwrap(),
        )
        .unwrap();
        assert_eq!(space.len(), 6);
        let mut cycles = std::collections::BTreeMap::new();
        for i in 0..space.len() {
            let pt = space.point(i);
            let (params, eval) = SweepSpace::evaluate(&space, i, &layers);
            assert_eq!(params["ddr_latency"], pt.ddr_latency);
            let p = pt.params(&space.shape());
            let r = model::route(&p, balanced_logits(&p), pt.reorder).unwrap();
            let want = cost::cycles_with(&p, &r.load_shape(), pt.source()).unwrap();
            assert_eq!(eval.unwrap().layers[0].cycles, want.cycles, "{pt:?}");
            cycles.insert((pt.reorder, pt.ddr_latency), want.cycles);
        }
        // With prefetch a latency costs about once per batch, not once per expert load.
        for reorder in [true, false] {
            let c0 = cycles[&(reorder, 0)];
            for l in [40u32, 150] {
                let c = cycles[&(reorder, l)];
                assert!(c > c0 && c - c0 <= 2 * u64::from(l), "{cycles:?}");
            }
        }
        // Records written before the axis existed read as latency 0.
        let mut old = serde_json::to_value(space.point(0)).unwrap();
        old.as_object_mut().unwrap().remove("ddr_latency");
        let pt: MoePoint = serde_json::from_value(old).unwrap();
        assert_eq!(pt.ddr_latency, 0);
    }

    #[test]
    fn queue_overflow_drops_pairs() {
        let p = MoeParams {
            tokens: 16,
            experts: 4,
            top_k: 2,
            queue_depth: 5,
            ..MoeParams::default()
        };
        let r = model::route(&p, balanced_logits(&p), true).unwrap();
        // 32 pairs, 8 per expert, 5 admitted each.
        assert_eq!(r.dropped, 12);
    }
}
