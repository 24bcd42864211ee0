//! The attention kernel's sweep axes: `[attention]` in a sweep spec. The shape and types are
//! the workload's (one `attention` layer shape per sweep, as a kernel is built for one).

use serde::Deserialize;

use super::AttentionParams;
use super::template::{command_cost, params_for_layer};
use crate::template::axis::{IntAxis, digits, int_values, space_len};
use crate::template::{PointEvaluation, SimCheck, SweepSpace, Template};
use crate::workload::Layer;

/// `[attention]`: the kernel's knobs. Missing axes take the template's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionAxes {
    /// Queries processed side by side.
    pub query_lanes: IntAxis,
    /// Elements per beat and per lane per cycle.
    pub simd: IntAxis,
    /// Fractional bits of a score.
    #[serde(default)]
    pub score_frac_bits: Option<IntAxis>,
    /// Fractional bits of the exponentials and sums.
    #[serde(default)]
    pub exp_frac_bits: Option<IntAxis>,
    /// Index bits of the exp2 table.
    #[serde(default)]
    pub exp_table_bits: Option<IntAxis>,
}

/// One point, flat (one CSV column each).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionPoint {
    /// Queries in parallel.
    pub query_lanes: u32,
    /// Elements per cycle.
    pub simd: u32,
    /// Score fractional bits.
    pub score_frac_bits: u32,
    /// Exponential fractional bits.
    pub exp_frac_bits: u32,
    /// exp2 table index bits.
    pub exp_table_bits: u32,
}

/// Parameter names, in CSV column order.
pub const PARAM_NAMES: [&str; 5] = [
    "query_lanes",
    "simd",
    "score_frac_bits",
    "exp_frac_bits",
    "exp_table_bits",
];

impl AttentionPoint {
    /// The kernel's parameters on `base` (shape and types).
    pub fn params(&self, base: &AttentionParams) -> AttentionParams {
        AttentionParams {
            query_lanes: self.query_lanes,
            simd: self.simd,
            score_frac_bits: self.score_frac_bits,
            exp_frac_bits: self.exp_frac_bits,
            exp_table_bits: self.exp_table_bits,
            ..base.clone()
        }
    }
}

/// The one kernel shape of a workload: every layer an `attention` layer of the same shape and
/// types.
pub fn layer_params(layers: &[Layer]) -> Result<AttentionParams, String> {
    let base = AttentionParams::default();
    let mut found: Option<(AttentionParams, &str)> = None;
    for l in layers {
        let Some(p) = params_for_layer(l, &base) else {
            return Err(format!(
                "layer `{}` is a {} layer, which the attention template does not run (sweep it with template = \"{}\")",
                l.name,
                l.op.kind(),
                if l.moe().is_some() { "moe" } else { "systolic" }
            ));
        };
        match &found {
            None => found = Some((p, &l.name)),
            Some((first, name)) if *first != p => {
                return Err(format!(
                    "layers `{name}` and `{}` have different shapes or types; an attention kernel is built for one, so sweep them separately",
                    l.name
                ));
            }
            Some(_) => {}
        }
    }
    found
        .map(|(p, _)| p)
        .ok_or_else(|| "the workload has no layers".to_string())
}

/// The expanded axes.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionSpace {
    base: AttentionParams,
    axes: [Vec<u32>; 5],
    radices: Vec<u64>,
    len: u64,
}

impl AttentionSpace {
    /// Expands the axes for kernels built on `base`; errors are `(key, problem)`.
    pub fn from_axes(
        a: &AttentionAxes,
        base: AttentionParams,
    ) -> Result<AttentionSpace, (String, String)> {
        let axes = [
            a.query_lanes
                .values()
                .map_err(|p| ("query_lanes".to_string(), p))?,
            a.simd.values().map_err(|p| ("simd".to_string(), p))?,
            int_values(
                &a.score_frac_bits,
                "score_frac_bits",
                &[base.score_frac_bits],
            )?,
            int_values(&a.exp_frac_bits, "exp_frac_bits", &[base.exp_frac_bits])?,
            int_values(&a.exp_table_bits, "exp_table_bits", &[base.exp_table_bits])?,
        ];
        let radices: Vec<u64> = axes.iter().map(|v| v.len() as u64).collect();
        let len = space_len(&radices)?;
        Ok(AttentionSpace {
            base,
            axes,
            radices,
            len,
        })
    }

    /// The point `index` (mixed radix; the last axis varies fastest).
    pub fn point(&self, index: u64) -> AttentionPoint {
        let d: [usize; 5] = digits(index, &self.radices);
        AttentionPoint {
            query_lanes: self.axes[0][d[0]],
            simd: self.axes[1][d[1]],
            score_frac_bits: self.axes[2][d[2]],
            exp_frac_bits: self.axes[3][d[3]],
            exp_table_bits: self.axes[4][d[4]],
        }
    }
}

impl SweepSpace for AttentionSpace {
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
        let p = pt.params(&self.base);
        let eval = p
            .resolve()
            .map_err(|e| e.to_string())
            .map(|r| PointEvaluation {
                pes: u64::from(p.query_lanes) * u64::from(p.simd),
                resources: super::cost::resources(&r),
                layers: vec![command_cost(&r); layers.len()],
            });
        (json, eval)
    }

    fn verify(&self, params: &serde_json::Value, layer: &Layer) -> Result<SimCheck, String> {
        let pt: AttentionPoint = serde_json::from_value(params.clone())
            .map_err(|e| format!("its params do not describe an attention kernel: {e}"))?;
        let p = pt.params(&self.base);
        super::template::Attention
            .simulate(&p, layer, 1)
            .map_err(|e| e.to_string())
    }
}
