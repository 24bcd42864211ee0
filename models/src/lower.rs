//! Lowering a parsed graph to an [`IntNetwork`]: constant folding (Quant/DequantizeLinear of
//! initializers, Transpose of weights, the Shape→Gather→Unsqueeze→Concat→Reshape chain, Flatten),
//! static shape inference along the one activation path, and folding of everything between an
//! integer GEMM/convolution and the next quantizer (scales, bias, BatchNorm, Mul, Relu) into the
//! per-channel requantization.

use std::collections::HashMap;

use crate::ModelError;
use crate::net::{ConvGeom, HostOp, IntNetwork, Requant, Stage};
use crate::onnx::{self, Attr, Data, Graph, Node, Tensor};

/// The ops lowering understands, for the "unsupported op" error.
pub const SUPPORTED_OPS: &str = "Quant, QuantizeLinear, DequantizeLinear, MatMul, Gemm, Conv, Add, Sub, Mul, Div, \
BatchNormalization, Relu, MaxPool, GlobalAveragePool (followed by a quantizer), BipolarQuant (of weights), Flatten, Reshape, Transpose (of constants), Shape, Gather, Unsqueeze, Concat, Identity, Softmax (as the last node, over the features of a (batch, features) output)";

/// Widest activation quantizer (levels - 1) a layer may feed: 16 bits.
const MAX_LEVELS: i64 = (1 << 16) - 1;

/// A fixed-point type for a float network input: `bits` wide, `frac` fractional bits
/// (scale 2^-frac), signed or not — `ap_fixed<bits, bits-frac>` / `ap_ufixed<...>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputType {
    pub bits: u32,
    pub frac: i32,
    pub signed: bool,
}

impl InputType {
    /// The narrowest integer part that holds every value of `data`, and the rest of `bits` as
    /// fraction; unsigned when no value is negative. Returns `None` for empty or non-finite data.
    pub fn calibrate(data: &[f32], bits: u32) -> Option<InputType> {
        if data.is_empty() || data.iter().any(|v| !v.is_finite()) || !(2..=16).contains(&bits) {
            return None;
        }
        let signed = data.iter().any(|&v| v < 0.0);
        let max = data.iter().fold(0f32, |m, &v| m.max(v.abs())) as f64;
        // Integer bits I: the largest magnitude fits, i.e. max < 2^I (unsigned) / 2^(I-1) (signed).
        let mut int_bits = if signed { 1 } else { 0 };
        while (if signed {
            2f64.powi(int_bits - 1)
        } else {
            2f64.powi(int_bits)
        }) <= max
        {
            int_bits += 1;
        }
        Some(InputType {
            bits,
            frac: bits as i32 - int_bits,
            signed,
        })
    }
    fn scale(&self) -> f32 {
        2f32.powi(-self.frac)
    }
    fn range(&self) -> (i64, i64) {
        if self.signed {
            (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1)
        } else {
            (0, (1 << self.bits) - 1)
        }
    }
}

/// A value in the graph, as lowering sees it.
#[derive(Debug, Clone)]
enum Val {
    Const(Tensor),
    /// A quantized constant: integers and a scale tensor broadcastable to them.
    QConst {
        ints: Vec<i64>,
        shape: Vec<usize>,
        scale: Tensor,
    },
    /// The network input (float) after host preprocessing.
    Float {
        shape: Vec<usize>,
        pre: Vec<HostOp>,
    },
    /// An integer activation, `real = q * scale`. `int_domain`: a QuantizeLinear output (the
    /// integers themselves, awaiting DequantizeLinear).
    Q {
        shape: Vec<usize>,
        scale: f32,
        int_domain: bool,
        /// `real = (q - zp) * scale` (QuantizeLinear's zero point; 0 for QONNX).
        zp: i64,
    },
    /// A GEMM/conv accumulator not yet requantized: per channel `real = a*acc + b`.
    Acc {
        shape: Vec<usize>,
        pending: Pending,
        a: Vec<f64>,
        b: Vec<f64>,
        relu: bool,
    },
}

#[derive(Debug, Clone)]
enum Pending {
    Dense {
        k: usize,
        m: usize,
        w: Vec<i32>,
    },
    Conv {
        geom: ConvGeom,
        w: Vec<i32>,
    },
    /// Global average pooling: the accumulator is a channel's integer sum.
    AvgPool {
        geom: ConvGeom,
    },
}

fn shape_of(v: &Val) -> Vec<usize> {
    match v {
        Val::Const(t) => t.shape.clone(),
        Val::QConst { shape, .. }
        | Val::Float { shape, .. }
        | Val::Q { shape, .. }
        | Val::Acc { shape, .. } => shape.clone(),
    }
}

/// Lower a parsed graph. `input_type` quantizes a float network input that the graph itself
/// feeds to a layer unquantized; it is required then and ignored otherwise.
pub fn lower(g: &Graph, input_type: Option<InputType>) -> Result<IntNetwork, ModelError> {
    let mut vals: HashMap<String, Val> = HashMap::new();
    for (k, t) in &g.initializers {
        vals.insert(k.clone(), Val::Const(t.clone()));
    }
    vals.insert(
        g.input.name.clone(),
        Val::Float {
            shape: g.input.shape.clone(),
            pre: vec![],
        },
    );
    let mut stages = Vec::new();
    let mut used_input_type = None;
    let mut softmax = false;
    for n in &g.nodes {
        let get = |i: usize| -> Result<Val, ModelError> {
            let name = n
                .inputs
                .get(i)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| n.bad(&format!("input {i} is missing")))?;
            vals.get(name).cloned().ok_or_else(|| {
                n.bad(&format!(
                    "input `{name}` is not produced by any earlier node"
                ))
            })
        };
        let opt = |i: usize| -> Option<Val> {
            n.inputs
                .get(i)
                .filter(|s| !s.is_empty())
                .and_then(|s| vals.get(s))
                .cloned()
        };
        let out = match n.op.as_str() {
            "Identity" => get(0)?,
            "Shape" => {
                let s = shape_of(&get(0)?);
                Val::Const(Tensor::i64(
                    vec![s.len()],
                    s.iter().map(|&d| d as i64).collect(),
                ))
            }
            "Gather" => gather(n, get(0)?, get(1)?)?,
            "Unsqueeze" => unsqueeze(n, get(0)?, opt(1))?,
            "Concat" => {
                let parts: Vec<Val> = (0..n.inputs.len()).map(&get).collect::<Result<_, _>>()?;
                concat(n, parts)?
            }
            "Reshape" => {
                let target = const_i64(n, &get(1)?, "the target shape")?;
                reshape(n, get(0)?, &target)?
            }
            "Flatten" => {
                let v = get(0)?;
                let s = shape_of(&v);
                let axis = n.int("axis", 1)?;
                let axis = if axis < 0 {
                    axis + s.len() as i64
                } else {
                    axis
                };
                if axis < 0 || axis as usize > s.len() {
                    return Err(n.bad(&format!("axis {axis} is out of range for rank {}", s.len())));
                }
                let axis = axis as usize;
                let target = vec![
                    s[..axis].iter().product::<usize>() as i64,
                    s[axis..].iter().product::<usize>() as i64,
                ];
                reshape(n, v, &target)?
            }
            "Transpose" => transpose(n, get(0)?)?,
            "Quant" => quant(n, get(0)?, &get(1)?, &get(2)?, &get(3)?, &mut stages)?,
            "QuantizeLinear" => quantize_linear(n, get(0)?, &get(1)?, opt(2), &mut stages)?,
            "DequantizeLinear" => dequantize_linear(n, get(0)?, &get(1)?, opt(2))?,
            "MatMul" | "Gemm" | "Conv" => {
                let mut x = get(0)?;
                if let Val::Float { shape, pre } = &x {
                    let t = input_type.ok_or_else(|| ModelError::FloatInput {
                        node: n.label(),
                        op: n.op.clone(),
                    })?;
                    let (lo, hi) = t.range();
                    stages.push(Stage::InputQuant {
                        pre: pre.clone(),
                        scale: t.scale(),
                        lo,
                        hi,
                        zp: 0,
                    });
                    used_input_type = Some(t);
                    x = Val::Q {
                        shape: shape.clone(),
                        scale: t.scale(),
                        int_domain: false,
                        zp: 0,
                    };
                }
                if n.op == "Conv" {
                    conv(n, x, get(1)?, opt(2))?
                } else {
                    gemm(n, x, get(1)?, opt(2))?
                }
            }
            "Add" | "Sub" | "Mul" | "Div" => arith(n, get(0)?, get(1)?)?,
            "BatchNormalization" => batchnorm(n, get(0)?, [get(1)?, get(2)?, get(3)?, get(4)?])?,
            "Relu" => match get(0)? {
                Val::Acc {
                    shape,
                    pending,
                    a,
                    b,
                    ..
                } => Val::Acc {
                    shape,
                    pending,
                    a,
                    b,
                    relu: true,
                },
                q @ Val::Q {
                    int_domain: false,
                    zp: 0,
                    ..
                } => {
                    stages.push(Stage::Relu);
                    q
                }
                Val::Q { zp, .. } if zp != 0 => {
                    return Err(n.bad(&format!(
                        "Relu on an activation with zero point {zp} is not supported (fuse the \
                         Relu before its QuantizeLinear)"
                    )));
                }
                _ => {
                    return Err(
                        n.bad("Relu is supported on a layer's output or a quantized activation")
                    );
                }
            },
            "MaxPool" => maxpool(n, get(0)?, &mut stages)?,
            "GlobalAveragePool" => global_avgpool(n, get(0)?)?,
            "Softmax" => {
                // A classifier's final Softmax runs on the host in f32 after the output's
                // dequantization; anywhere else its float output would feed integer layers.
                if n.outputs.first() != Some(&g.output) {
                    return Err(n.bad(
                        "Softmax is supported only as the graph's last node (its output is the \
                         graph output)",
                    ));
                }
                match get(0)? {
                    q @ Val::Q {
                        int_domain: false, ..
                    } => {
                        let rank = shape_of(&q).len();
                        let axis = n.int("axis", -1)?;
                        if rank != 2 || !(axis == -1 || axis == 1) {
                            return Err(n.bad(&format!(
                                "Softmax over axis {axis} of a rank-{rank} tensor: supported is \
                                 the feature axis of a (batch, features) output"
                            )));
                        }
                        softmax = true;
                        q
                    }
                    _ => {
                        return Err(n.bad(
                            "Softmax is supported on a dequantized output (after a Quant or \
                             DequantizeLinear)",
                        ));
                    }
                }
            }
            "BipolarQuant" => bipolar_quant(n, get(0)?, &get(1)?)?,
            _ => {
                return Err(ModelError::UnsupportedOp {
                    node: n.label(),
                    op: if n.domain.is_empty() {
                        n.op.clone()
                    } else {
                        format!("{}.{}", n.domain, n.op)
                    },
                    supported: SUPPORTED_OPS,
                });
            }
        };
        let name = n
            .outputs
            .first()
            .ok_or_else(|| n.bad("the node has no output"))?;
        vals.insert(name.clone(), out);
    }
    let out = vals.get(&g.output).ok_or_else(|| {
        ModelError::Graph(format!(
            "the graph output `{}` is not produced by any node",
            g.output
        ))
    })?;
    match out {
        Val::Q {
            shape,
            scale,
            int_domain: false,
            zp,
        } => Ok(IntNetwork {
            input_shape: g.input.shape.clone(),
            stages,
            out_scale: *scale,
            out_zp: *zp,
            out_len: shape.iter().skip(1).product(),
            input_type: used_input_type,
            softmax,
        }),
        _ => Err(ModelError::Graph(format!(
            "the graph output `{}` is not a quantized tensor; supported graphs end in a Quant (QONNX) or a DequantizeLinear (QCDQ)",
            g.output
        ))),
    }
}

fn const_i64(n: &Node, v: &Val, what: &str) -> Result<Vec<i64>, ModelError> {
    match v {
        Val::Const(t) => match &t.data {
            Data::I64(d) => Ok(d.clone()),
            Data::F32(_) => Err(n.bad(&format!("{what} must be an integer tensor"))),
        },
        _ => Err(ModelError::Unsupported {
            node: n.label(),
            op: n.op.clone(),
            what: format!("{what} is not a constant (dynamic shapes are not supported)"),
        }),
    }
}

fn gather(n: &Node, data: Val, idx: Val) -> Result<Val, ModelError> {
    let d = const_i64(n, &data, "Gather's data")?;
    let Val::Const(it) = &idx else {
        return Err(n.bad("Gather's indices must be constant"));
    };
    let ids = const_i64(n, &idx, "Gather's indices")?;
    if n.int("axis", 0)? != 0 {
        return Err(n.bad("Gather is supported on axis 0 of a 1-D constant"));
    }
    let mut out = Vec::new();
    for i in ids {
        let j = if i < 0 { i + d.len() as i64 } else { i };
        out.push(
            *d.get(j as usize).ok_or_else(|| {
                n.bad(&format!("index {i} is out of range for length {}", d.len()))
            })?,
        );
    }
    Ok(Val::Const(Tensor::i64(it.shape.clone(), out)))
}

fn unsqueeze(n: &Node, x: Val, axes_in: Option<Val>) -> Result<Val, ModelError> {
    let axes = match (axes_in, n.ints("axes")?) {
        (Some(v), _) => const_i64(n, &v, "Unsqueeze's axes")?,
        (None, Some(a)) => a,
        (None, None) => return Err(n.bad("Unsqueeze needs axes")),
    };
    let Val::Const(mut t) = x else {
        return Err(n.bad("Unsqueeze is supported on constants"));
    };
    let rank = t.shape.len() + axes.len();
    let mut ax: Vec<usize> = axes
        .iter()
        .map(|&a| {
            if a < 0 {
                (a + rank as i64) as usize
            } else {
                a as usize
            }
        })
        .collect();
    ax.sort_unstable();
    for a in ax {
        if a > t.shape.len() {
            return Err(n.bad(&format!("axis {a} is out of range")));
        }
        t.shape.insert(a, 1);
    }
    Ok(Val::Const(t))
}

fn concat(n: &Node, parts: Vec<Val>) -> Result<Val, ModelError> {
    let mut out = Vec::new();
    for p in &parts {
        let v = const_i64(n, p, "Concat's inputs")?;
        if let Val::Const(t) = p
            && t.shape.len() > 1
        {
            return Err(n.bad("Concat is supported on 1-D integer constants (shape chains)"));
        }
        out.extend(v);
    }
    Ok(Val::Const(Tensor::i64(vec![out.len()], out)))
}

fn reshape(n: &Node, x: Val, target: &[i64]) -> Result<Val, ModelError> {
    let s = shape_of(&x);
    let total: usize = s.iter().product();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            0 => shape.push(
                *s.get(i)
                    .ok_or_else(|| n.bad("a 0 in the target shape has no input axis to copy"))?,
            ),
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            d if d > 0 => shape.push(d as usize),
            _ => return Err(n.bad(&format!("target shape {target:?} is invalid"))),
        }
    }
    if let Some(i) = infer {
        let rest: usize = shape.iter().product();
        if rest == 0 || !total.is_multiple_of(rest) {
            return Err(n.bad(&format!("cannot reshape {s:?} to {target:?}")));
        }
        shape[i] = total / rest;
    }
    if shape.iter().product::<usize>() != total {
        return Err(n.bad(&format!("cannot reshape {s:?} to {target:?}")));
    }
    Ok(match x {
        Val::Const(mut t) => {
            t.shape = shape;
            Val::Const(t)
        }
        Val::Q {
            scale,
            int_domain,
            zp,
            ..
        } => Val::Q {
            shape,
            scale,
            int_domain,
            zp,
        },
        Val::Float { pre, .. } => Val::Float { shape, pre },
        _ => return Err(n.bad("Reshape is supported on constants and quantized activations")),
    })
}

fn permute<T: Copy>(data: &[T], shape: &[usize], perm: &[usize]) -> (Vec<T>, Vec<usize>) {
    let rank = shape.len();
    let new_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; rank];
    for _ in 0..total {
        let src: usize = (0..rank).map(|i| idx[i] * strides[perm[i]]).sum();
        out.push(data[src]);
        for i in (0..rank).rev() {
            idx[i] += 1;
            if idx[i] < new_shape[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    (out, new_shape)
}

fn transpose(n: &Node, x: Val) -> Result<Val, ModelError> {
    let rank = shape_of(&x).len();
    let perm: Vec<usize> = match n.ints("perm")? {
        Some(p) => p.iter().map(|&v| v as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(n.bad(&format!(
            "perm {perm:?} is not a permutation of {rank} axes"
        )));
    }
    let tperm = |t: &Tensor| -> Tensor {
        if t.shape.len() != rank {
            return t.clone(); // a scalar (or rank-0) scale stays as it is
        }
        match &t.data {
            Data::F32(d) => {
                let (v, s) = permute(d, &t.shape, &perm);
                Tensor::f32(s, v)
            }
            Data::I64(d) => {
                let (v, s) = permute(d, &t.shape, &perm);
                Tensor::i64(s, v)
            }
        }
    };
    match x {
        Val::Const(t) => Ok(Val::Const(tperm(&t))),
        Val::QConst { ints, shape, scale } => {
            let (ints, shape) = permute(&ints, &shape, &perm);
            Ok(Val::QConst {
                ints,
                shape,
                scale: tperm(&scale),
            })
        }
        _ => Err(n.bad("Transpose is supported on constants (weights), not on activations")),
    }
}

fn scalar_f32(n: &Node, v: &Val, what: &str) -> Result<f32, ModelError> {
    match v {
        Val::Const(t) if t.len() == 1 => Ok(t.to_f32()[0]),
        _ => Err(n.bad(&format!("{what} must be a constant scalar"))),
    }
}

fn qrange(bits: f32, signed: bool, narrow: bool) -> Result<(i64, i64), String> {
    if bits.fract() != 0.0 || !(2.0..=24.0).contains(&bits) {
        return Err(format!(
            "bit width {bits} is not supported (integers 2..=24)"
        ));
    }
    let b = bits as u32;
    Ok(if signed {
        (
            -(1i64 << (b - 1)) + i64::from(narrow),
            (1i64 << (b - 1)) - 1,
        )
    } else {
        (0, (1i64 << b) - 1)
    })
}

/// Broadcast a scale tensor against a shape (numpy rules, the scale may have fewer axes) and
/// return the scale for every element.
fn broadcast(scale: &Tensor, shape: &[usize]) -> Option<Vec<f32>> {
    let s = scale.to_f32();
    let rank = shape.len();
    if scale.shape.len() > rank {
        return None;
    }
    let sshape: Vec<usize> = std::iter::repeat_n(1, rank - scale.shape.len())
        .chain(scale.shape.iter().copied())
        .collect();
    if sshape.iter().zip(shape).any(|(&a, &b)| a != 1 && a != b) {
        return None;
    }
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; rank];
    for _ in 0..total {
        let mut off = 0;
        for i in 0..rank {
            off = off * sshape[i] + if sshape[i] == 1 { 0 } else { idx[i] };
        }
        out.push(s[off]);
        for i in (0..rank).rev() {
            idx[i] += 1;
            if idx[i] < shape[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    Some(out)
}

fn quant(
    n: &Node,
    x: Val,
    scale: &Val,
    zp: &Val,
    bits: &Val,
    stages: &mut Vec<Stage>,
) -> Result<Val, ModelError> {
    let signed = n.int("signed", 1)? != 0;
    let narrow = n.int("narrow", 0)? != 0;
    let mode = n.string("rounding_mode")?.unwrap_or_else(|| "ROUND".into());
    if mode != "ROUND" {
        return Err(n.bad(&format!("rounding_mode {mode} is not supported (ROUND)")));
    }
    let bits = scalar_f32(n, bits, "the bit width")?;
    let (lo, hi) = qrange(bits, signed, narrow).map_err(|e| n.bad(&e))?;
    let zp_ok = matches!(zp, Val::Const(t) if t.to_f32().iter().all(|&z| z == 0.0));
    if !zp_ok {
        return Err(n.bad("only a zero point of 0 is supported"));
    }
    let Val::Const(st) = scale else {
        return Err(n.bad("the scale must be a constant"));
    };
    quantize(n, x, st, (lo, hi), false, 0, stages)
}

/// The common part of Quant and QuantizeLinear: on a constant, fold; on the input, a host
/// quantizer; on an accumulator, the layer's requantization.
fn quantize(
    n: &Node,
    x: Val,
    st: &Tensor,
    (lo, hi): (i64, i64),
    int_domain: bool,
    zp: i64,
    stages: &mut Vec<Stage>,
) -> Result<Val, ModelError> {
    match x {
        Val::Const(t) => {
            let s = broadcast(st, &t.shape).ok_or_else(|| {
                n.bad(&format!(
                    "scale shape {:?} does not broadcast to {:?}",
                    st.shape, t.shape
                ))
            })?;
            // As qonnx computes it: f32 division, clip, round half to even.
            let ints = t
                .to_f32()
                .iter()
                .zip(&s)
                .map(|(&v, &s)| {
                    ((v / s).round_ties_even() as f64).clamp(lo as f64, hi as f64) as i64
                })
                .collect();
            Ok(Val::QConst {
                ints,
                shape: t.shape.clone(),
                scale: st.clone(),
            })
        }
        other => {
            if st.len() != 1 {
                return Err(n.bad("activation quantizers with a per-channel scale are not supported (per-tensor only)"));
            }
            let s = st.to_f32()[0];
            if !(s > 0.0 && s.is_finite()) {
                return Err(n.bad(&format!("scale {s} must be positive and finite")));
            }
            match other {
                Val::Float { shape, pre } => {
                    if hi - lo > MAX_LEVELS {
                        return Err(n.bad(&format!(
                            "an input quantizer with {} levels is not supported (at most {}, 16 bits)",
                            hi - lo + 1,
                            MAX_LEVELS + 1
                        )));
                    }
                    stages.push(Stage::InputQuant {
                        pre,
                        scale: s,
                        lo,
                        hi,
                        zp,
                    });
                    Ok(Val::Q {
                        shape,
                        scale: s,
                        int_domain,
                        zp,
                    })
                }
                Val::Acc {
                    shape,
                    pending,
                    a,
                    b,
                    relu,
                } => {
                    // One threshold per output level: keep the table (and a hardware compare
                    // tree) bounded.
                    if hi - lo > MAX_LEVELS {
                        return Err(n.bad(&format!(
                            "an activation quantizer with {} levels is not supported (at most {}, 16 bits)",
                            hi - lo + 1,
                            MAX_LEVELS + 1
                        )));
                    }
                    let rq = Requant::with_zero_point(&a, &b, f64::from(s), lo, hi, relu, zp);
                    stages.push(match pending {
                        Pending::Dense { k, m, w } => Stage::Dense { k, m, w, rq },
                        Pending::Conv { geom, w } => Stage::Conv { geom, w, rq },
                        Pending::AvgPool { geom } => Stage::AvgPool { geom, rq },
                    });
                    Ok(Val::Q {
                        shape,
                        scale: s,
                        int_domain,
                        zp,
                    })
                }
                _ => Err(n.bad("re-quantizing an already quantized activation is not supported")),
            }
        }
    }
}

fn quantize_linear(
    n: &Node,
    x: Val,
    scale: &Val,
    zp: Option<Val>,
    stages: &mut Vec<Stage>,
) -> Result<Val, ModelError> {
    let (lo, hi, z) = match &zp {
        None => (0, 255, 0),
        Some(Val::Const(t)) => {
            let range = if t.elem == onnx::INT8 {
                (-128, 127)
            } else if t.elem == onnx::UINT8 {
                (0, 255)
            } else {
                return Err(n.bad("the zero point must be int8 or uint8"));
            };
            let z = zero_point(n, t, range)?;
            // A weight's zero point would add a term per input to every output: symmetric
            // (zero-point 0) weights only.
            if z != 0 && matches!(x, Val::Const(_)) {
                return Err(n.bad(
                    "a constant (weight) quantized with a nonzero zero point is not supported",
                ));
            }
            (range.0, range.1, z)
        }
        Some(_) => return Err(n.bad("the zero point must be a constant")),
    };
    let Val::Const(st) = scale else {
        return Err(n.bad("the scale must be a constant"));
    };
    if matches!(x, Val::Const(_)) && st.len() != 1 && n.attrs.contains_key("axis") {
        return Err(n.bad("per-axis QuantizeLinear of constants is not supported"));
    }
    quantize(n, x, st, (lo, hi), true, z, stages)
}

fn dequantize_linear(n: &Node, x: Val, scale: &Val, zp: Option<Val>) -> Result<Val, ModelError> {
    let z = match &zp {
        None => 0,
        Some(Val::Const(t)) => zero_point(n, t, (-128, 255))?,
        Some(_) => return Err(n.bad("the zero point must be a constant")),
    };
    if z != 0 && matches!(x, Val::Const(_)) {
        return Err(n.bad("a constant (weight) with a nonzero zero point is not supported"));
    }
    let Val::Const(st) = scale else {
        return Err(n.bad("the scale must be a constant"));
    };
    match x {
        Val::Const(t) => {
            let ints = t
                .as_i64()
                .ok_or_else(|| n.bad("DequantizeLinear of a constant needs an integer tensor"))?
                .to_vec();
            // A per-axis scale (1-D, `axis`) becomes a scale shaped to broadcast along that axis.
            let scale = if st.len() > 1 {
                let rank = t.shape.len() as i64;
                let axis = n.int("axis", 1)?;
                let axis = if axis < 0 { axis + rank } else { axis } as usize;
                let mut shape = vec![1usize; t.shape.len()];
                if axis >= shape.len() {
                    return Err(n.bad(&format!("axis {axis} is out of range")));
                }
                shape[axis] = st.len();
                Tensor::f32(shape, st.to_f32())
            } else {
                st.clone()
            };
            Ok(Val::QConst {
                ints,
                shape: t.shape.clone(),
                scale,
            })
        }
        Val::Q {
            shape,
            scale: s,
            int_domain: true,
            zp: qz,
        } => {
            if st.len() != 1 || st.to_f32()[0] != s || z != qz {
                return Err(n.bad(
                    "DequantizeLinear must use the scale and zero point of the QuantizeLinear before it",
                ));
            }
            Ok(Val::Q {
                shape,
                scale: s,
                int_domain: false,
                zp: qz,
            })
        }
        _ => Err(
            n.bad("DequantizeLinear is supported on integer constants and QuantizeLinear outputs")
        ),
    }
}

/// A scalar zero point within `range`.
fn zero_point(n: &Node, t: &Tensor, (lo, hi): (i64, i64)) -> Result<i64, ModelError> {
    let v = t.to_f32();
    let z = v.first().copied().unwrap_or(0.0);
    if v.iter().any(|&x| x != z) {
        return Err(n.bad("per-channel zero points are not supported (one zero point per tensor)"));
    }
    if z.fract() != 0.0 || (z as i64) < lo || (z as i64) > hi {
        return Err(n.bad(&format!("zero point {z} is not an integer in {lo}..={hi}")));
    }
    Ok(z as i64)
}

/// The accumulator sums `w * q` over the raw integers; with an input zero point `xz` the real
/// product is `w * (q - xz)`, so each output channel's offset loses `a * xz * sum(w)` (its
/// weights `w[o*per..(o+1)*per]`). Convolution padding reads `xz` too, so the sum is over every
/// tap.
fn zero_point_correction(a: &[f64], b: Vec<f64>, w: &[i64], per: usize, xz: i64) -> Vec<f64> {
    if xz == 0 {
        return b;
    }
    b.iter()
        .enumerate()
        .map(|(o, &bo)| {
            let sum: i64 = w[o * per..(o + 1) * per].iter().sum();
            bo - a[o] * (xz * sum) as f64
        })
        .collect()
}

/// The per-channel scales of a weight whose output channels lie along `axis`.
fn channel_scales(
    n: &Node,
    scale: &Tensor,
    shape: &[usize],
    axis: usize,
) -> Result<Vec<f64>, ModelError> {
    let full = broadcast(scale, shape)
        .ok_or_else(|| n.bad("the weight scale does not broadcast to the weight"))?;
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let ch = shape[axis];
    let mut out = vec![0f64; ch];
    for o in 0..outer {
        for c in 0..ch {
            for i in 0..inner {
                let v = f64::from(full[(o * ch + c) * inner + i]);
                if o == 0 && i == 0 {
                    out[c] = v;
                } else if out[c] != v {
                    return Err(n.bad("the weight scale varies along an input axis; per-output-channel or per-tensor scales are supported"));
                }
            }
        }
    }
    Ok(out)
}

/// Weight integers of at most 25 bits: with activations of at most 16 bits a product stays
/// within 2^40, so the i64 accumulator cannot overflow for any layer with fewer than 2^23 inputs.
const MAX_WEIGHT: i64 = 1 << 24;

fn to_i32(n: &Node, ints: &[i64]) -> Result<Vec<i32>, ModelError> {
    if let Some(v) = ints.iter().find(|v| v.abs() > MAX_WEIGHT) {
        return Err(n.bad(&format!(
            "weight integer {v} is wider than 25 bits (|w| <= 2^24 is supported)"
        )));
    }
    Ok(ints.iter().map(|&v| v as i32).collect())
}

fn bias_vec(n: &Node, c: Option<Val>, m: usize) -> Result<Vec<f64>, ModelError> {
    match c {
        None => Ok(vec![0.0; m]),
        Some(Val::Const(t)) => {
            let v = broadcast(&t, &[m]).ok_or_else(|| {
                n.bad(&format!(
                    "the bias (shape {:?}) does not broadcast to {m} outputs",
                    t.shape
                ))
            })?;
            Ok(v.into_iter().map(f64::from).collect())
        }
        Some(Val::QConst { ints, shape, scale }) => {
            let s = broadcast(&scale, &shape)
                .ok_or_else(|| n.bad("the bias scale does not broadcast"))?;
            if ints.len() != m {
                return Err(n.bad(&format!(
                    "the bias has {} values for {m} outputs",
                    ints.len()
                )));
            }
            Ok(ints
                .iter()
                .zip(s)
                .map(|(&q, s)| q as f64 * f64::from(s))
                .collect())
        }
        Some(_) => Err(n.bad("the bias must be a constant")),
    }
}

/// A GEMM's or convolution's operands, as the layer needs them.
struct Operands {
    /// Input shape, scale and zero point.
    xs: Vec<usize>,
    sx: f32,
    xz: i64,
    /// Weight integers, shape and scale tensor.
    ints: Vec<i64>,
    ws: Vec<usize>,
    scale: Tensor,
}

/// The input must be a quantized activation and the weight a quantized constant.
fn operands(n: &Node, x: Val, w: Val) -> Result<Operands, ModelError> {
    let Val::Q {
        shape: xs,
        scale: sx,
        int_domain: false,
        zp: xz,
    } = x
    else {
        return Err(n.bad("the layer input must be a quantized activation (a Quant before it) or the network input"));
    };
    let Val::QConst {
        ints,
        shape: ws,
        scale,
    } = w
    else {
        return Err(n.bad("the weight must be a quantized constant (a Quant or DequantizeLinear of an initializer)"));
    };
    Ok(Operands {
        xs,
        sx,
        xz,
        ints,
        ws,
        scale,
    })
}

fn gemm(n: &Node, x: Val, w: Val, c: Option<Val>) -> Result<Val, ModelError> {
    let Operands {
        xs,
        sx,
        xz,
        ints,
        ws,
        scale,
    } = operands(n, x, w)?;
    if ws.len() != 2 || xs.len() != 2 || xs[0] != 1 {
        return Err(n.bad(&format!(
            "shapes {xs:?} x {ws:?} are not supported (batch x features times a 2-D weight)"
        )));
    }
    let trans_b = n.op == "Gemm" && n.int("transB", 0)? != 0;
    if n.op == "Gemm"
        && (n.int("transA", 0)? != 0
            || n.float("alpha", 1.0)? != 1.0
            || n.float("beta", 1.0)? != 1.0)
    {
        return Err(
            n.bad("Gemm with transA, alpha or beta other than the defaults is not supported")
        );
    }
    // Weight as [m][k] (output-major), and its per-output scales.
    let (k, m, w_mk, sw) = if trans_b {
        (
            ws[1],
            ws[0],
            ints.clone(),
            channel_scales(n, &scale, &ws, 0)?,
        )
    } else {
        let (t, _) = permute(&ints, &ws, &[1, 0]);
        (ws[0], ws[1], t, channel_scales(n, &scale, &ws, 1)?)
    };
    if xs[1] != k {
        return Err(n.bad(&format!(
            "input has {} features, the weight expects {k}",
            xs[1]
        )));
    }
    let b = if n.op == "Gemm" {
        bias_vec(n, c, m)?
    } else {
        vec![0.0; m]
    };
    let a: Vec<f64> = sw.iter().map(|&s| s * f64::from(sx)).collect();
    let b = zero_point_correction(&a, b, &w_mk, k, xz);
    Ok(Val::Acc {
        shape: vec![1, m],
        pending: Pending::Dense {
            k,
            m,
            w: to_i32(n, &w_mk)?,
        },
        a,
        b,
        relu: false,
    })
}

fn pads_strides(n: &Node, kh: usize, kw: usize) -> Result<(usize, usize, [usize; 4]), ModelError> {
    if let Some(Attr::Str(p)) = n.attrs.get("auto_pad")
        && p != "NOTSET"
    {
        return Err(n.bad("auto_pad is not supported (give explicit pads)"));
    }
    if n.ints("dilations")?
        .is_some_and(|d| d.iter().any(|&v| v != 1))
    {
        return Err(n.bad("dilations other than 1 are not supported"));
    }
    if let Some(k) = n.ints("kernel_shape")?
        && k != [kh as i64, kw as i64]
    {
        return Err(n.bad("kernel_shape does not match the weight"));
    }
    let s = n.ints("strides")?.unwrap_or(vec![1, 1]);
    let p = n.ints("pads")?.unwrap_or(vec![0, 0, 0, 0]);
    if s.len() != 2 || p.len() != 4 || s.iter().any(|&v| v < 1) || p.iter().any(|&v| v < 0) {
        return Err(n.bad("2-D strides and pads are supported"));
    }
    Ok((
        s[0] as usize,
        s[1] as usize,
        [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize],
    ))
}

fn conv(n: &Node, x: Val, w: Val, bias: Option<Val>) -> Result<Val, ModelError> {
    let Operands {
        xs,
        sx,
        xz,
        ints,
        ws,
        scale,
    } = operands(n, x, w)?;
    if xs.len() != 4 || ws.len() != 4 || xs[0] != 1 || xs[1] != ws[1] {
        return Err(n.bad(&format!(
            "shapes {xs:?} and weight {ws:?} are not supported (2-D convolution, NCHW)"
        )));
    }
    if n.int("group", 1)? != 1 {
        return Err(n.bad("grouped convolution is not supported"));
    }
    let (kh, kw) = (ws[2], ws[3]);
    let (sh, sw, p) = pads_strides(n, kh, kw)?;
    let (h, wd) = (xs[2], xs[3]);
    if h + p[0] + p[2] < kh || wd + p[1] + p[3] < kw {
        return Err(n.bad("the kernel is larger than the padded input"));
    }
    let oh = (h + p[0] + p[2] - kh) / sh + 1;
    let ow = (wd + p[1] + p[3] - kw) / sw + 1;
    let geom = ConvGeom {
        c: xs[1],
        h,
        w: wd,
        o: ws[0],
        kh,
        kw,
        sh,
        sw,
        pt: p[0],
        pl: p[1],
        oh,
        ow,
        // Padding is real 0, i.e. the zero point.
        pad: i32::try_from(xz).map_err(|_| n.bad("zero point out of range"))?,
    };
    let swc = channel_scales(n, &scale, &ws, 0)?;
    let b = bias_vec(n, bias, ws[0])?;
    let a: Vec<f64> = swc.iter().map(|&s| s * f64::from(sx)).collect();
    let per = ws[1] * kh * kw;
    let b = zero_point_correction(&a, b, &ints, per, xz);
    Ok(Val::Acc {
        shape: vec![1, ws[0], oh, ow],
        pending: Pending::Conv {
            geom,
            w: to_i32(n, &ints)?,
        },
        a,
        b,
        relu: false,
    })
}

/// A constant's value per channel (axis 1) of an activation shaped `shape`.
fn per_channel(n: &Node, t: &Tensor, shape: &[usize]) -> Result<Vec<f64>, ModelError> {
    let full = broadcast(t, shape).ok_or_else(|| {
        n.bad(&format!(
            "constant of shape {:?} does not broadcast to {shape:?}",
            t.shape
        ))
    })?;
    let ch = shape[1];
    let inner: usize = shape[2..].iter().product();
    let mut out = vec![0f64; ch];
    for c in 0..ch {
        out[c] = f64::from(full[c * inner]);
        if full[c * inner..(c + 1) * inner]
            .iter()
            .any(|&v| f64::from(v) != out[c])
        {
            return Err(
                n.bad("the constant varies within a channel; per-channel constants are supported")
            );
        }
    }
    Ok(out)
}

fn arith(n: &Node, x: Val, y: Val) -> Result<Val, ModelError> {
    let op = n.op.as_str();
    match (x, y) {
        (Val::Const(a), Val::Const(b)) => {
            // Constant folding, elementwise with broadcasting of a scalar.
            let (av, bv) = (a.to_f32(), b.to_f32());
            let shape = if a.len() >= b.len() { a.shape.clone() } else { b.shape.clone() };
            let len: usize = shape.iter().product();
            if !(av.len() == bv.len() || av.len() == 1 || bv.len() == 1) {
                return Err(n.bad("folding is supported for equal shapes or a scalar"));
            }
            let v = (0..len)
                .map(|i| {
                    let (p, q) = (av[if av.len() == 1 { 0 } else { i }], bv[if bv.len() == 1 { 0 } else { i }]);
                    match op {
                        "Add" => p + q,
                        "Sub" => p - q,
                        "Mul" => p * q,
                        _ => p / q,
                    }
                })
                .collect();
            Ok(Val::Const(Tensor::f32(shape, v)))
        }
        (Val::Float { shape, mut pre }, Val::Const(c)) if c.len() == 1 => {
            let c = c.to_f32()[0];
            pre.push(match op {
                "Add" => HostOp::Add(c),
                "Sub" => HostOp::Sub(c),
                "Mul" => HostOp::Mul(c),
                _ => HostOp::Div(c),
            });
            Ok(Val::Float { shape, pre })
        }
        (Val::Const(c), Val::Float { shape, mut pre }) if c.len() == 1 && (op == "Add" || op == "Mul") => {
            let c = c.to_f32()[0];
            pre.push(if op == "Add" { HostOp::Add(c) } else { HostOp::Mul(c) });
            Ok(Val::Float { shape, pre })
        }
        (acc @ Val::Acc { .. }, Val::Const(c)) => acc_arith(n, acc, &c),
        (Val::Const(c), acc @ Val::Acc { .. }) if op == "Add" || op == "Mul" => acc_arith(n, acc, &c),
        _ => Err(n.bad(&format!("{op} is supported between constants, on the network input by a scalar, and on a layer's output by a per-channel constant"))),
    }
}

/// `layer_output op c` folded into the per-channel affine (before any Relu).
fn acc_arith(n: &Node, acc: Val, c: &Tensor) -> Result<Val, ModelError> {
    let Val::Acc {
        shape,
        pending,
        mut a,
        mut b,
        relu,
    } = acc
    else {
        return Err(n.bad("internal: not an accumulator"));
    };
    if relu {
        return Err(n.bad("arithmetic after the Relu and before the quantizer is not supported"));
    }
    let k = per_channel(n, c, &shape)?;
    for ch in 0..a.len() {
        match n.op.as_str() {
            "Add" => b[ch] += k[ch],
            "Sub" => b[ch] -= k[ch],
            "Mul" => {
                a[ch] *= k[ch];
                b[ch] *= k[ch];
            }
            _ => {
                a[ch] /= k[ch];
                b[ch] /= k[ch];
            }
        }
    }
    Ok(Val::Acc {
        shape,
        pending,
        a,
        b,
        relu,
    })
}

fn batchnorm(n: &Node, x: Val, p: [Val; 4]) -> Result<Val, ModelError> {
    let Val::Acc {
        shape,
        pending,
        mut a,
        mut b,
        relu: false,
    } = x
    else {
        return Err(
            n.bad("BatchNormalization is supported between a layer and its activation quantizer")
        );
    };
    let eps = f64::from(n.float("epsilon", 1e-5)?);
    let mut v = Vec::new();
    for t in &p {
        let Val::Const(t) = t else {
            return Err(n.bad("BatchNormalization parameters must be constants"));
        };
        if t.len() != a.len() {
            return Err(n.bad(&format!(
                "a parameter has {} values for {} channels",
                t.len(),
                a.len()
            )));
        }
        v.push(t.to_f32());
    }
    for c in 0..a.len() {
        let (gamma, beta, mean, var) = (
            f64::from(v[0][c]),
            f64::from(v[1][c]),
            f64::from(v[2][c]),
            f64::from(v[3][c]),
        );
        let f = gamma / (var + eps).sqrt();
        a[c] *= f;
        b[c] = (b[c] - mean) * f + beta;
    }
    Ok(Val::Acc {
        shape,
        pending,
        a,
        b,
        relu: false,
    })
}

/// Global average pooling of a quantized activation: per channel the mean of `(q - zp) * s`
/// over H×W is `(s / HW) * sum(q) - zp * s`, an affine function of the integer sum, so it
/// lowers like a layer's accumulator and the next quantizer requantizes the sums exactly.
fn global_avgpool(n: &Node, x: Val) -> Result<Val, ModelError> {
    let Val::Q {
        shape: xs,
        scale,
        int_domain: false,
        zp,
    } = x
    else {
        return Err(n.bad("GlobalAveragePool is supported on a quantized activation"));
    };
    if xs.len() != 4 {
        return Err(n.bad("GlobalAveragePool on NCHW is supported"));
    }
    let (c, h, w) = (xs[1], xs[2], xs[3]);
    let geom = ConvGeom {
        c,
        h,
        w,
        o: c,
        kh: h,
        kw: w,
        sh: 1,
        sw: 1,
        pt: 0,
        pl: 0,
        oh: 1,
        ow: 1,
        pad: 0,
    };
    let s = f64::from(scale);
    Ok(Val::Acc {
        shape: vec![1, c, 1, 1],
        pending: Pending::AvgPool { geom },
        a: vec![s / (h * w) as f64; c],
        b: vec![-(zp as f64) * s; c],
        relu: false,
    })
}

/// QONNX `BipolarQuant` of a constant (binary weights): `+1` where the value is `>= 0`, `-1`
/// elsewhere, times the scale. Binary activations are not supported (their levels ±1 are not
/// a contiguous integer range).
fn bipolar_quant(n: &Node, x: Val, scale: &Val) -> Result<Val, ModelError> {
    let Val::Const(t) = x else {
        return Err(
            n.bad("BipolarQuant is supported on constants (binary weights), not on activations")
        );
    };
    let Val::Const(st) = scale else {
        return Err(n.bad("the scale must be a constant"));
    };
    broadcast(st, &t.shape).ok_or_else(|| {
        n.bad(&format!(
            "scale shape {:?} does not broadcast to {:?}",
            st.shape, t.shape
        ))
    })?;
    Ok(Val::QConst {
        ints: t
            .to_f32()
            .iter()
            .map(|&v| if v >= 0.0 { 1 } else { -1 })
            .collect(),
        shape: t.shape.clone(),
        scale: st.clone(),
    })
}

fn maxpool(n: &Node, x: Val, stages: &mut Vec<Stage>) -> Result<Val, ModelError> {
    let Val::Q {
        shape: xs,
        scale,
        int_domain: false,
        zp,
    } = x
    else {
        return Err(n.bad("MaxPool is supported on a quantized activation"));
    };
    let k = n
        .ints("kernel_shape")?
        .ok_or_else(|| n.bad("kernel_shape is required"))?;
    if k.len() != 2 || xs.len() != 4 || k.iter().any(|&v| v < 1) {
        return Err(n.bad("2-D max pooling on NCHW is supported"));
    }
    let (kh, kw) = (k[0] as usize, k[1] as usize);
    let (sh, sw, p) = pads_strides(n, kh, kw)?;
    if p != [0, 0, 0, 0] || n.int("ceil_mode", 0)? != 0 || n.int("storage_order", 0)? != 0 {
        return Err(n.bad("MaxPool with padding, ceil_mode or storage_order is not supported"));
    }
    if xs[2] < kh || xs[3] < kw {
        return Err(n.bad("the window is larger than the input"));
    }
    let (oh, ow) = ((xs[2] - kh) / sh + 1, (xs[3] - kw) / sw + 1);
    let geom = ConvGeom {
        c: xs[1],
        h: xs[2],
        w: xs[3],
        o: xs[1],
        kh,
        kw,
        sh,
        sw,
        pt: 0,
        pl: 0,
        oh,
        ow,
        pad: 0,
    };
    stages.push(Stage::MaxPool { geom });
    Ok(Val::Q {
        shape: vec![1, xs[1], oh, ow],
        scale,
        int_domain: false,
        zp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::Input;

    fn node(op: &str, name: &str, inputs: &[&str], output: &str, attrs: &[(&str, Attr)]) -> Node {
        Node {
            name: name.into(),
            op: op.into(),
            domain: String::new(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.into()],
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    /// x[1,4] -> Quant(bits_in) -> MatMul(W int32 [4,2] via DequantizeLinear) -> Quant(8).
    fn graph(bits_in: f32, w: i64) -> Graph {
        let f = |v: f32| Tensor::f32(vec![], vec![v]);
        let mut init = HashMap::new();
        init.insert("s".into(), f(0.5));
        init.insert("z".into(), f(0.0));
        init.insert("b_in".into(), f(bits_in));
        init.insert("b8".into(), f(8.0));
        let mut wt = Tensor::i64(vec![4, 2], vec![w, 1, 1, 1, 1, 1, 1, 1]);
        wt.elem = 6;
        init.insert("w".into(), wt);
        let q = |name: &str, x: &str, b: &str, o: &str| {
            node(
                "Quant",
                name,
                &[x, "s", "z", b],
                o,
                &[("signed", Attr::Int(0))],
            )
        };
        Graph {
            input: Input {
                name: "x".into(),
                shape: vec![1, 4],
            },
            output: "y".into(),
            nodes: vec![
                q("qin", "x", "b_in", "xq"),
                node("DequantizeLinear", "dq", &["w", "s"], "wf", &[]),
                node("MatMul", "mm", &["xq", "wf"], "acc", &[]),
                q("qout", "acc", "b8", "y"),
            ],
            initializers: init,
        }
    }

    #[test]
    fn small_graph_lowers_and_runs() {
        let net = lower(&graph(8.0, 3), None).expect("lower");
        // x = [1, 1, 1, 1] -> q = 2 each; acc = [2*(3+1+1+1), 2*4] = [12, 8];
        // real = acc * 0.25, out = round(real / 0.5) = [6, 4], y = q * 0.5.
        assert_eq!(net.run(&[1.0; 4]).expect("run"), vec![3.0, 2.0]);
    }

    #[test]
    fn input_quantizer_wider_than_16_bits_is_an_error() {
        let err = lower(&graph(20.0, 3), None)
            .expect_err("20 bit input")
            .to_string();
        assert_eq!(
            err,
            "node `qin` (Quant): an input quantizer with 1048576 levels is not supported (at most 65536, 16 bits)"
        );
    }

    #[test]
    fn weight_wider_than_25_bits_is_an_error() {
        let err = lower(&graph(8.0, 1 << 30), None)
            .expect_err("wide weight")
            .to_string();
        assert_eq!(
            err,
            "node `mm` (MatMul): weight integer 1073741824 is wider than 25 bits (|w| <= 2^24 is supported)"
        );
    }
}
