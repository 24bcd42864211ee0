//! The systolic array's sweep space (`[systolic]` in a sweep spec): axes, lazy enumeration,
//! and evaluation of one point with the template's exact cycle model and its resource model.

use serde::Deserialize;

use super::{Dataflow, PeKind, SystolicParams, cost};
use crate::qfx::QType;
use crate::template::axis::{IntAxis, OneOrMany, digits, int_values, space_len};
use crate::template::{LayerCost, PointEvaluation, SimCheck, SweepSpace};
use crate::workload::Layer;

/// `[systolic]`: one axis per parameter. Missing axes take the template's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystolicAxes {
    /// PE rows.
    pub rows: IntAxis,
    /// PE columns.
    pub cols: IntAxis,
    /// `os` (output-stationary, the default) and/or `ws` (weight-stationary).
    #[serde(default)]
    pub dataflow: OneOrMany<Dataflow>,
    /// `dsp` or `shift-add`.
    #[serde(default)]
    pub pe: OneOrMany<PeKind>,
    /// AXI-Stream width in bits.
    #[serde(default)]
    pub stream_bits: Option<IntAxis>,
    /// Input (activation) types.
    #[serde(default)]
    pub input_type: OneOrMany<String>,
    /// Weight types.
    #[serde(default)]
    pub weight_type: OneOrMany<String>,
    /// Accumulator types; `auto` picks the narrowest exact one for the point's max_k.
    #[serde(default)]
    pub acc_type: OneOrMany<String>,
    /// Output types.
    #[serde(default)]
    pub output_type: OneOrMany<String>,
    /// Operand buffer depth (largest K).
    #[serde(default)]
    pub max_k: Option<IntAxis>,
    /// B columns kept on chip, absolute (must be a multiple of cols, else the point is invalid).
    #[serde(default)]
    pub max_n_chunk: Option<IntAxis>,
    /// B columns kept on chip as a multiple of cols (max_n_chunk = n_chunk_tiles × cols).
    #[serde(default)]
    pub n_chunk_tiles: Option<IntAxis>,
    /// ReLU before requantizing.
    #[serde(default)]
    pub relu: OneOrMany<bool>,
}

#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    Absolute(Vec<u32>),
    Tiles(Vec<u32>),
}

/// The expanded axes.
#[derive(Debug, Clone, PartialEq)]
pub struct SystolicSpace {
    rows: Vec<u32>,
    cols: Vec<u32>,
    dataflow: Vec<Dataflow>,
    pe: Vec<PeKind>,
    stream_bits: Vec<u32>,
    input_type: Vec<String>,
    weight_type: Vec<String>,
    acc_type: Vec<String>,
    output_type: Vec<String>,
    max_k: Vec<u32>,
    chunk: Chunk,
    relu: Vec<bool>,
    radices: Vec<u64>,
    len: u64,
}

/// Parameter names, in CSV column order.
pub const PARAM_NAMES: [&str; 12] = [
    "rows",
    "cols",
    "dataflow",
    "input_type",
    "weight_type",
    "acc_type",
    "output_type",
    "pe",
    "max_k",
    "max_n_chunk",
    "stream_bits",
    "relu",
];

fn or_default<T: Clone>(v: &OneOrMany<T>, key: &str, d: T) -> Result<Vec<T>, (String, String)> {
    if v.0.is_empty() {
        // An axis left out takes the default; an explicit empty list is a mistake.
        return Ok(vec![d]);
    }
    let _ = key;
    Ok(v.0.clone())
}

impl SystolicSpace {
    /// Expands and checks the axes; errors are `(key, problem)`.
    pub fn from_axes(a: &SystolicAxes) -> Result<SystolicSpace, (String, String)> {
        let d = SystolicParams::default();
        let rows = a.rows.values().map_err(|p| ("rows".to_string(), p))?;
        let cols = a.cols.values().map_err(|p| ("cols".to_string(), p))?;
        let chunk = match (&a.max_n_chunk, &a.n_chunk_tiles) {
            (Some(_), Some(_)) => {
                return Err((
                    "max_n_chunk".into(),
                    "give either max_n_chunk or n_chunk_tiles, not both".into(),
                ));
            }
            (Some(x), None) => {
                Chunk::Absolute(x.values().map_err(|p| ("max_n_chunk".to_string(), p))?)
            }
            (None, Some(x)) => {
                Chunk::Tiles(x.values().map_err(|p| ("n_chunk_tiles".to_string(), p))?)
            }
            (None, None) => Chunk::Tiles(vec![4]),
        };
        let mut s = SystolicSpace {
            rows,
            cols,
            dataflow: or_default(&a.dataflow, "dataflow", d.dataflow)?,
            pe: or_default(&a.pe, "pe", d.pe)?,
            stream_bits: int_values(&a.stream_bits, "stream_bits", &[d.stream_bits])?,
            input_type: or_default(&a.input_type, "input_type", d.input_type.clone())?,
            weight_type: or_default(&a.weight_type, "weight_type", d.weight_type.clone())?,
            acc_type: or_default(&a.acc_type, "acc_type", "auto".to_string())?,
            output_type: or_default(&a.output_type, "output_type", d.output_type.clone())?,
            max_k: int_values(&a.max_k, "max_k", &[d.max_k])?,
            chunk,
            relu: or_default(&a.relu, "relu", d.relu)?,
            radices: Vec::new(),
            len: 0,
        };
        for (key, t) in [
            ("input_type", &s.input_type),
            ("weight_type", &s.weight_type),
            ("output_type", &s.output_type),
        ] {
            for x in t {
                x.parse::<QType>()
                    .map_err(|e| (key.to_string(), format!("`{x}`: {e}")))?;
            }
        }
        for x in &s.acc_type {
            if x != "auto" {
                x.parse::<QType>().map_err(|e| {
                    (
                        "acc_type".to_string(),
                        format!("`{x}`: {e} (or write \"auto\")"),
                    )
                })?;
            }
        }
        let chunk_len = match &s.chunk {
            Chunk::Absolute(v) | Chunk::Tiles(v) => v.len(),
        };
        s.radices = [
            s.rows.len(),
            s.cols.len(),
            s.dataflow.len(),
            s.pe.len(),
            s.stream_bits.len(),
            s.input_type.len(),
            s.weight_type.len(),
            s.acc_type.len(),
            s.output_type.len(),
            s.max_k.len(),
            chunk_len,
            s.relu.len(),
        ]
        .iter()
        .map(|&n| n as u64)
        .collect();
        s.len = space_len(&s.radices)?;
        Ok(s)
    }

    /// The parameters of point `index` (mixed radix; the last axis varies fastest). Returns
    /// the problem too when `acc_type = "auto"` cannot be worked out.
    pub fn params(&self, index: u64) -> (SystolicParams, Option<String>) {
        let digits: [usize; 12] = digits(index, &self.radices);
        let cols = self.cols[digits[1]];
        let max_n_chunk = match &self.chunk {
            Chunk::Absolute(v) => v[digits[10]],
            Chunk::Tiles(v) => v[digits[10]].saturating_mul(cols),
        };
        let mut p = SystolicParams {
            rows: self.rows[digits[0]],
            cols,
            dataflow: self.dataflow[digits[2]],
            pe: self.pe[digits[3]],
            stream_bits: self.stream_bits[digits[4]],
            input_type: self.input_type[digits[5]].clone(),
            weight_type: self.weight_type[digits[6]].clone(),
            acc_type: self.acc_type[digits[7]].clone(),
            output_type: self.output_type[digits[8]].clone(),
            max_k: self.max_k[digits[9]],
            max_n_chunk,
            relu: self.relu[digits[11]],
            requant: Default::default(),
            buffer_ram: Default::default(),
        };
        let mut problem = None;
        if p.acc_type == "auto" {
            match auto_acc(&p.input_type, &p.weight_type, p.max_k) {
                Ok(t) => p.acc_type = t,
                Err(e) => problem = Some(e),
            }
        }
        (p, problem)
    }
}

/// The narrowest signed accumulator that holds every dot product of `max_k` terms exactly,
/// with the products' fractional bits (what the template requires).
fn auto_acc(input: &str, weight: &str, max_k: u32) -> Result<String, String> {
    let ta: QType = input
        .parse()
        .map_err(|e| format!("input_type `{input}`: {e}"))?;
    let tb: QType = weight
        .parse()
        .map_err(|e| format!("weight_type `{weight}`: {e}"))?;
    let corners = [
        ta.min_raw() * tb.min_raw(),
        ta.min_raw() * tb.max_raw(),
        ta.max_raw() * tb.min_raw(),
        ta.max_raw() * tb.max_raw(),
    ];
    let k = i128::from(max_k.max(1));
    let lo = corners.iter().copied().min().unwrap_or(0) * k;
    let hi = corners.iter().copied().max().unwrap_or(0) * k;
    let mut w = 1u32;
    while w < 127 && (lo < -(1i128 << (w - 1)) || hi > (1i128 << (w - 1)) - 1) {
        w += 1;
    }
    let f = ta.frac_bits() + tb.frac_bits();
    Ok(format!("ap_fixed<{w},{}>", w as i32 - f))
}

/// Evaluates one parameter set on the workload (one run of each layer).
pub fn evaluate(p: &SystolicParams, layers: &[Layer]) -> Result<PointEvaluation, String> {
    // The same check `gen systolic` makes before generating: a point it would refuse is
    // invalid here too, whatever the cost models would say.
    p.validate().map_err(|e| e.to_string())?;
    let resources = cost::resources(p).map_err(|e| e.to_string())?.estimate();
    let beat_bytes = u64::from(p.stream_bits / 8);
    // The parameters resolved once for all the workload's layers.
    let model = cost::Model::new(p).map_err(|e| e.to_string())?;
    let mut costs = Vec::with_capacity(layers.len());
    for l in layers {
        let gemm = super::layer::unit_gemm(l)
            .map_err(|e| format!("layer `{}`: {e}", l.name))?
            .ok_or_else(|| format!("layer `{}` is not a GEMM-like layer", l.name))?;
        let est = model
            .cycles(&gemm)
            .map_err(|e| format!("layer `{}`: {e}", l.name))?;
        costs.push(LayerCost {
            cycles: est.cycles,
            macs: est.macs,
            ddr_bytes: (est.input_beats + est.output_beats) * beat_bytes,
        });
    }
    Ok(PointEvaluation {
        pes: u64::from(p.rows) * u64::from(p.cols),
        resources,
        layers: costs,
    })
}

impl SweepSpace for SystolicSpace {
    fn len(&self) -> u64 {
        self.len
    }

    fn param_names(&self) -> &'static [&'static str] {
        &PARAM_NAMES
    }

    fn params(&self, index: u64) -> serde_json::Value {
        serde_json::to_value(self.params(index).0).unwrap_or_default()
    }

    fn evaluate(
        &self,
        index: u64,
        layers: &[Layer],
    ) -> (serde_json::Value, Result<PointEvaluation, String>) {
        let (p, problem) = SystolicSpace::params(self, index);
        let json = serde_json::to_value(&p).unwrap_or(serde_json::Value::Null);
        let eval = match problem {
            Some(e) => Err(e),
            None => evaluate(&p, layers),
        };
        (json, eval)
    }

    fn verify(&self, params: &serde_json::Value, layer: &Layer) -> Result<SimCheck, String> {
        let p: SystolicParams = serde_json::from_value(params.clone())
            .map_err(|e| format!("its params do not describe a systolic array: {e}"))?;
        super::sim::simulate_layer(&p, layer, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_acc_matches_template_rule() {
        let t = auto_acc("ap_fixed<8,8>", "ap_fixed<8,8>", 256).unwrap();
        let p = SystolicParams {
            acc_type: t.clone(),
            ..Default::default()
        };
        p.validate().unwrap();
        // One bit narrower must be refused by the template.
        let w: u32 = t[9..t.find(',').unwrap()].parse().unwrap();
        let narrower = SystolicParams {
            acc_type: format!("ap_fixed<{},{}>", w - 1, w - 1),
            ..Default::default()
        };
        assert!(narrower.validate().is_err());
        let t = auto_acc("ap_fixed<8,2>", "ap_ufixed<4,1>", 100).unwrap();
        let p = SystolicParams {
            input_type: "ap_fixed<8,2>".into(),
            weight_type: "ap_ufixed<4,1>".into(),
            acc_type: t,
            max_k: 100,
            ..Default::default()
        };
        p.validate().unwrap();
    }
}
