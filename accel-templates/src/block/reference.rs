//! The float64 block on the same weights (dequantized exactly), from the same dequantized
//! input: what the fixed-point block is measured against, stage by stage.
//!
//! Float LayerNorm, `softmax(q·kᵀ/√d)·v` per head, GELU (erf form) or ReLU, and for an MoE
//! block: the top-k of the float gate logits, softmax over the selected logits, the experts'
//! `W2·act(W1·x)` weighted by it.

use ndarray::{Array2, s};

use super::run::{BlockData, lsb};
use super::{BETA_FRAC, BlockParams, GAMMA_FRAC, RESIDUAL_FRAC, WEIGHT_FRAC};
use crate::attention::reference::head_f64;
use crate::layernorm::reference as ln_ref;

/// Every stage's output in float64.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatBlock {
    /// LN1's output.
    pub ln1: Array2<f64>,
    /// The Q, K, V projections side by side.
    pub qkv: Array2<f64>,
    /// Attention's output (heads side by side).
    pub attention: Array2<f64>,
    /// The output projection.
    pub proj: Array2<f64>,
    /// `s1 = x + proj`.
    pub s1: Array2<f64>,
    /// LN2's output.
    pub ln2: Array2<f64>,
    /// The MLP's hidden layer before the activation (empty for an MoE block).
    pub pre_activation: Array2<f64>,
    /// The MLP's hidden layer after the activation (empty for an MoE block).
    pub hidden: Array2<f64>,
    /// The MLP's or the MoE's output.
    pub ffn: Array2<f64>,
    /// The block output `s2 = s1 + ffn`.
    pub out: Array2<f64>,
    /// An MoE block's experts per token, as the float gate selects them (sorted).
    pub selected: Vec<Vec<usize>>,
}

fn deq(a: &Array2<i64>, lsb: f64) -> Array2<f64> {
    a.mapv(|v| v as f64 * lsb)
}

fn layer_norm(x: &Array2<f64>, (g, b): &(Vec<i64>, Vec<i64>)) -> Array2<f64> {
    let g: Vec<f64> = g.iter().map(|&v| v as f64 * lsb(GAMMA_FRAC)).collect();
    let b: Vec<f64> = b.iter().map(|&v| v as f64 * lsb(BETA_FRAC)).collect();
    let mut y = Array2::zeros(x.dim());
    for (row, mut out) in x.rows().into_iter().zip(y.rows_mut()) {
        let v = ln_ref(&row.to_vec(), &g, &b, 1e-5);
        out.assign(&ndarray::ArrayView1::from(&v));
    }
    y
}

/// The float64 block.
pub fn float_block(p: &BlockParams, data: &BlockData) -> FloatBlock {
    let x = deq(&data.x, lsb(RESIDUAL_FRAC));
    let ln1 = layer_norm(&x, &data.norms[0]);
    let qkv = ln1.dot(&deq(&data.wqkv, lsb(WEIGHT_FRAC)));
    let (d, hd) = (p.d_model as usize, (p.d_model / p.heads) as usize);
    let mut attention = Array2::zeros((p.tokens as usize, d));
    for h in 0..p.heads as usize {
        let c = |base: usize| qkv.slice(s![.., base + h * hd..base + (h + 1) * hd]);
        let o = head_f64(c(0), c(d), c(2 * d));
        attention.slice_mut(s![.., h * hd..(h + 1) * hd]).assign(&o);
    }
    let proj = attention.dot(&deq(&data.wo, lsb(WEIGHT_FRAC)));
    let s1 = &x + &proj;
    let ln2 = layer_norm(&s1, &data.norms[1]);
    let act = |v: f64| activation(p, v);
    let (pre_activation, hidden, ffn, selected) = match &data.moe {
        Some(m) => {
            let (f, sel) = moe_f64(p, m, &ln2);
            (Array2::zeros((0, 0)), Array2::zeros((0, 0)), f, sel)
        }
        None => {
            let pre = ln2.dot(&deq(&data.mlp.0, lsb(WEIGHT_FRAC)));
            let h = pre.mapv(act);
            let f = h.dot(&deq(&data.mlp.1, lsb(WEIGHT_FRAC)));
            (pre, h, f, Vec::new())
        }
    };
    let out = &s1 + &ffn;
    FloatBlock {
        ln1,
        qkv,
        attention,
        proj,
        s1,
        ln2,
        pre_activation,
        hidden,
        ffn,
        out,
        selected,
    }
}

/// The FFN's activation in float64 (GELU in its erf form).
fn activation(p: &BlockParams, v: f64) -> f64 {
    match p.activation {
        crate::moe::FfnActivation::Relu => v.max(0.0),
        crate::moe::FfnActivation::Gelu => p.gelu().act.reference(v),
    }
}

/// The MoE FFN in float64, and each token's experts (sorted).
fn moe_f64(
    p: &BlockParams,
    m: &crate::moe::model::MoeData,
    x: &Array2<f64>,
) -> (Array2<f64>, Vec<Vec<usize>>) {
    let gate = deq(&m.gate, lsb(WEIGHT_FRAC));
    let logits = x.dot(&gate.t());
    let k = p.top_k as usize;
    // Each expert dequantized once, not once per token that picks it.
    let experts: Vec<(Array2<f64>, Array2<f64>)> =
        m.w1.iter()
            .zip(&m.w2)
            .map(|(w1, w2)| (deq(w1, lsb(WEIGHT_FRAC)), deq(w2, lsb(WEIGHT_FRAC))))
            .collect();
    let mut y = Array2::zeros(x.dim());
    let mut selected = Vec::new();
    for (t, row) in logits.rows().into_iter().enumerate() {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let sel = &order[..k];
        let top = row[sel[0]];
        let e: Vec<f64> = sel.iter().map(|&i| (row[i] - top).exp()).collect();
        let den: f64 = e.iter().sum();
        let xt = x.row(t);
        for (&ex, w) in sel.iter().zip(&e) {
            let (w1, w2) = &experts[ex];
            let h = w1.dot(&xt).mapv(|v| activation(p, v));
            let o = w2.dot(&h);
            y.row_mut(t).scaled_add(w / den, &o);
        }
        let mut sorted = sel.to_vec();
        sorted.sort_unstable();
        selected.push(sorted);
    }
    (y, selected)
}

/// `(max, mean)` absolute error of the codes (`lsb` each) against the float values.
pub fn error(codes: &Array2<i64>, lsb: f64, want: &Array2<f64>) -> (f64, f64) {
    let mut max = 0.0f64;
    let mut sum = 0.0;
    for (c, w) in codes.iter().zip(want.iter()) {
        let e = (*c as f64 * lsb - w).abs();
        max = max.max(e);
        sum += e;
    }
    (max, sum / codes.len().max(1) as f64)
}
