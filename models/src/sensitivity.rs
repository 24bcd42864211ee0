//! Per-quantizer precision sensitivity of a QONNX model: each `Quant` node's bit width lowered
//! on its own (the others as exported), the network re-lowered and run on calibration data by
//! the golden engine, and the effect on its outputs measured. The mixed-precision mapper uses
//! the table (issue 18); it is also a report in its own right.
//!
//! A quantizer at fewer bits keeps the range it was exported with (the same clipping point,
//! fewer levels): its scale grows by `qmax_old / qmax_new`, rounded up to a power of two when
//! the exported scale was one (an ap_fixed binary point), so a narrower type never clips
//! values the exported one kept.

use crate::lower::lower;
use crate::net::IntNetwork;
use crate::onnx::{Graph, Tensor};
use crate::{ModelError, top1};

/// One quantizer of the graph that can run at fewer bits.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Index of the `Quant` node in the graph.
    pub node: usize,
    /// The node's label (name, or its output).
    pub name: String,
    /// `weight` (its input is an initializer) or `activation`.
    pub kind: &'static str,
    /// The exported bit width.
    pub bits: u32,
}

/// What running a site at `bits` did to the network's outputs on the calibration data.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub site: usize,
    pub bits: u32,
    /// Inputs whose top-1 class equals the exported model's.
    pub agreement: f64,
    /// Top-1 accuracy, when labels were given.
    pub accuracy: Option<f64>,
    /// Mean absolute difference of the outputs from the exported model's.
    pub mean_abs_error: f64,
}

/// The `Quant` nodes whose bit width is a constant scalar.
pub fn sites(g: &Graph) -> Vec<Site> {
    g.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op == "Quant" && n.inputs.len() == 4)
        .filter_map(|(i, n)| {
            let bits = g.initializers.get(&n.inputs[3])?.to_f32();
            let bits = *bits.first().filter(|b| b.fract() == 0.0 && **b >= 1.0)? as u32;
            Some(Site {
                node: i,
                name: n.label(),
                kind: if g.initializers.contains_key(&n.inputs[0]) {
                    "weight"
                } else {
                    "activation"
                },
                bits,
            })
        })
        .collect()
}

/// The graph with one quantizer at `bits`: its bit width and its scale (see the module docs)
/// replaced, as new initializers so nothing else that shares the old ones changes.
pub fn with_bits(g: &Graph, site: &Site, bits: u32) -> Result<Graph, ModelError> {
    let n = &g.nodes[site.node];
    // The largest level (narrow ranges only drop the most negative one).
    let signed = n.int("signed", 1)? != 0;
    let qmax = |b: u32| -> f64 {
        if signed {
            2f64.powi(b as i32 - 1) - 1.0
        } else {
            2f64.powi(b as i32) - 1.0
        }
    };
    if bits < 2 || bits > site.bits {
        return Err(n.bad(&format!(
            "a quantizer of {} bits can be evaluated at 2..={} bits, not {bits}",
            site.bits, site.bits
        )));
    }
    let scale = g
        .initializers
        .get(&n.inputs[1])
        .ok_or_else(|| n.bad("the scale is not a constant"))?;
    let grow = qmax(site.bits) / qmax(bits);
    let pow2 = scale
        .to_f32()
        .iter()
        .all(|&s| s > 0.0 && s.log2().fract() == 0.0);
    let new_scale: Vec<f32> = scale
        .to_f32()
        .iter()
        .map(|&s| {
            let v = f64::from(s) * grow;
            (if pow2 { 2f64.powf(v.log2().ceil()) } else { v }) as f32
        })
        .collect();
    let mut out = g.clone();
    let (scale_name, bits_name) = (
        format!("{}__scale_{bits}b", n.inputs[1]),
        format!("{}__bits_{bits}b", n.inputs[3]),
    );
    out.initializers.insert(
        scale_name.clone(),
        Tensor::f32(scale.shape.clone(), new_scale),
    );
    out.initializers.insert(
        bits_name.clone(),
        Tensor::f32(Vec::new(), vec![bits as f32]),
    );
    let node = &mut out.nodes[site.node];
    node.inputs[1] = scale_name;
    node.inputs[3] = bits_name;
    Ok(out)
}

/// Runs `net` on every sample of `x` (`n × input_len`).
fn outputs(net: &IntNetwork, x: &[f32]) -> Result<Vec<Vec<f32>>, ModelError> {
    x.chunks(net.input_len()).map(|xi| net.run(xi)).collect()
}

/// The effect of every site at every width in `widths` below or at its exported one.
/// `labels`, when given, has one class per sample.
pub fn measure(
    g: &Graph,
    x: &[f32],
    labels: Option<&[i64]>,
    widths: &[u32],
) -> Result<(Vec<Site>, Vec<Effect>), ModelError> {
    let base_net = lower(g, None)?;
    let base = outputs(&base_net, x)?;
    let sites = sites(g);
    let mut effects = Vec::new();
    for (si, site) in sites.iter().enumerate() {
        for &bits in widths.iter().filter(|&&b| b >= 2 && b <= site.bits) {
            let net = lower(&with_bits(g, site, bits)?, None)?;
            let out = outputs(&net, x)?;
            let n = out.len().max(1) as f64;
            let agree = out
                .iter()
                .zip(&base)
                .filter(|(a, b)| top1(a) == top1(b))
                .count() as f64;
            let accuracy = labels.map(|l| {
                out.iter()
                    .zip(l)
                    .filter(|&(o, &c)| i64::try_from(top1(o)).is_ok_and(|p| p == c))
                    .count() as f64
                    / n
            });
            let err: f64 = out
                .iter()
                .zip(&base)
                .flat_map(|(a, b)| a.iter().zip(b).map(|(p, q)| f64::from((p - q).abs())))
                .sum::<f64>()
                / (n * base_net.out_len.max(1) as f64);
            effects.push(Effect {
                site: si,
                bits,
                agreement: agree / n,
                accuracy,
                mean_abs_error: err,
            });
        }
    }
    Ok((sites, effects))
}
