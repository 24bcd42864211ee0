//! Bit-exact golden model of the MoE layer core (gating, top-k, gate weights, dispatch, expert
//! FFNs, combine), the stream formats, and a seeded generator of test data.
//!
//! Every function here is the definition the RTL implements: the fixed-point steps are the
//! `qfx` conversions, the table lookups read the same tables the generator prints into the
//! Verilog, and the divider is the same restoring algorithm, step for step.

use ndarray::Array2;

use super::params::{GateMode, MoeParams};
use super::{MoeError, Result};
use crate::qfx::{Converter, Fx, QType};

/// A deterministic 64-bit generator (SplitMix64): test data must be reproducible from a seed
/// on every platform, and the library has no random-number dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Skips `n` draws in O(1): the state advances by a constant per draw.
    pub fn skip(&mut self, n: u64) {
        self.0 = self
            .0
            .wrapping_add(0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(n));
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }
}

/// One batch: tokens and every weight, as raw fixed-point integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoeData {
    /// Tokens, `tokens x d_model`, raw `types.input`.
    pub x: Array2<i64>,
    /// Gate matrix, `experts x d_model` (logits = gate · x), raw `types.weight`.
    pub gate: Array2<i64>,
    /// First-layer weights per expert, `d_ff x d_model`.
    pub w1: Vec<Array2<i64>>,
    /// Second-layer weights per expert, `d_model x d_ff`.
    pub w2: Vec<Array2<i64>>,
}

impl MoeData {
    /// Seeded random data. With `skew > 0` routing is made non-uniform (Zipf-like): feature 0
    /// of every token is a constant bias input of 1.0 (saturated to the input type), and the gate
    /// column 0 gives the expert of popularity rank r (a seeded permutation) the weight
    /// `skew / (r + 1)`, so low-rank experts win most tokens.
    pub fn random(p: &MoeParams, seed: u64, skew: f64) -> Result<MoeData> {
        random_data(p, seed, skew, true)
    }
}

/// The tokens and the gate matrix of one batch: all that routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateData {
    /// Tokens, `tokens x d_model`, raw `types.input`.
    pub x: Array2<i64>,
    /// Gate matrix, `experts x d_model`, raw `types.weight`.
    pub gate: Array2<i64>,
}

/// The tokens and gate matrix [`MoeData::random`] draws for the same `seed` and `skew`, without
/// drawing the expert weights: a cycle estimate needs only the routing, and the weights of the
/// largest layers (256 experts of 4096 x 16384) would not fit in memory.
pub fn random_gate_data(p: &MoeParams, seed: u64, skew: f64) -> Result<GateData> {
    let d = random_data(p, seed, skew, false)?;
    Ok(GateData {
        x: d.x,
        gate: d.gate,
    })
}

/// [`MoeData::random`]; without `with_weights` the expert weights' draws are skipped (the
/// generator jumps past them, so the skew that follows draws the same numbers) and `w1`/`w2`
/// are left empty.
fn random_data(p: &MoeParams, seed: u64, skew: f64, with_weights: bool) -> Result<MoeData> {
    p.validate()?;
    if !(skew.is_finite() && skew >= 0.0) {
        return Err(MoeError::Params(format!(
            "skew = {skew} must be a finite number >= 0"
        )));
    }
    let mut rng = SplitMix64::new(seed);
    let t = &p.types;
    let (tt, d, f, e) = (
        p.tokens as usize,
        p.d_model as usize,
        p.d_ff as usize,
        p.experts as usize,
    );
    // Half the representable range keeps most sums out of saturation while still using
    // every bit; extremes appear through the products.
    let half = |ty: &QType| (ty.max_raw() / 2).max(1) as i64;
    let (xa, wa) = (half(&t.input), half(&t.weight));
    let gen_mat = |rows: usize, cols: usize, a: i64, rng: &mut SplitMix64| {
        Array2::from_shape_fn((rows, cols), |_| rng.range(-a, a))
    };
    let mut x = gen_mat(tt, d, xa, &mut rng);
    let mut gate = gen_mat(e, d, wa, &mut rng);
    let (w1, w2) = if with_weights {
        let w1 = (0..e).map(|_| gen_mat(f, d, wa, &mut rng)).collect();
        let w2 = (0..e).map(|_| gen_mat(d, f, wa, &mut rng)).collect();
        (w1, w2)
    } else {
        rng.skip(2 * (e as u64) * (f as u64) * (d as u64));
        (Vec::new(), Vec::new())
    };
    if skew > 0.0 {
        let one = Fx::from_f64(1.0, &t.input)?.raw() as i64;
        for r in 0..tt {
            x[[r, 0]] = one;
        }
        let mut rank: Vec<usize> = (0..e).collect();
        for i in (1..e).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            rank.swap(i, j);
        }
        for (r, &expert) in rank.iter().enumerate() {
            let w = Fx::from_f64(skew / (r as f64 + 1.0), &t.weight)?.raw() as i64;
            gate[[expert, 0]] = w;
        }
    }
    Ok(MoeData { x, gate, w1, w2 })
}

impl MoeData {
    /// Checks shapes and that every value is a raw value of its type.
    pub fn validate(&self, p: &MoeParams) -> Result<()> {
        let (tt, d, f, e) = (
            p.tokens as usize,
            p.d_model as usize,
            p.d_ff as usize,
            p.experts as usize,
        );
        let shape = |what: &str, a: &Array2<i64>, r: usize, c: usize| -> Result<()> {
            if a.dim() != (r, c) {
                return Err(MoeError::Data(format!(
                    "{what} is {:?}, expected ({r}, {c})",
                    a.dim()
                )));
            }
            Ok(())
        };
        let range = |what: &str, a: &Array2<i64>, ty: &QType| -> Result<()> {
            if let Some(v) = a.iter().find(|v| !ty.contains_raw(i128::from(**v))) {
                return Err(MoeError::Data(format!(
                    "{what}: raw value {v} is not a {ty}"
                )));
            }
            Ok(())
        };
        shape("x", &self.x, tt, d)?;
        range("x", &self.x, &p.types.input)?;
        shape("gate", &self.gate, e, d)?;
        range("gate", &self.gate, &p.types.weight)?;
        if self.w1.len() != e || self.w2.len() != e {
            return Err(MoeError::Data(format!(
                "{} first-layer and {} second-layer matrices for {e} experts",
                self.w1.len(),
                self.w2.len()
            )));
        }
        for (i, (a, b)) in self.w1.iter().zip(&self.w2).enumerate() {
            shape(&format!("w1[{i}]"), a, f, d)?;
            range(&format!("w1[{i}]"), a, &p.types.weight)?;
            shape(&format!("w2[{i}]"), b, d, f)?;
            range(&format!("w2[{i}]"), b, &p.types.weight)?;
        }
        Ok(())
    }
}

/// One expert load: the expert's weights stream once and are applied to these (token, slot)
/// pairs, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// The expert.
    pub expert: u32,
    /// (token, slot) pairs; slot is 0 for the best expert of the token, 1 for the second.
    pub entries: Vec<(u32, u32)>,
}

/// Routing of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Gate logits, `tokens x experts`, raw `types.logit`.
    pub logits: Array2<i64>,
    /// Selected experts per token (best first), `tokens x top_k`.
    pub selected: Array2<u32>,
    /// Gate weights, `tokens x top_k`, raw [`MoeParams::gate_weight_type`]; 0 where dropped.
    pub weights: Array2<i64>,
    /// Whether each (token, slot) pair found room in its expert's queue.
    pub kept: Array2<bool>,
    /// Pairs dropped because their expert's queue was full.
    pub dropped: u64,
    /// Expert loads in processing order.
    pub loads: Vec<Load>,
}

impl Routing {
    /// Distinct experts with at least one kept token.
    pub fn active_experts(&self) -> usize {
        let mut seen: Vec<u32> = self.loads.iter().map(|l| l.expert).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }
    /// (expert, tokens) per load, what the cycle model needs.
    pub fn load_shape(&self) -> Vec<(u32, u32)> {
        self.loads
            .iter()
            .map(|l| (l.expert, l.entries.len() as u32))
            .collect()
    }
}

/// Everything the golden model computes for one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoeGolden {
    /// Routing.
    pub routing: Routing,
    /// Layer outputs, `tokens x d_model`, raw `types.output`.
    pub outputs: Array2<i64>,
}

fn conv(raw: i128, src: &QType, dst: &QType) -> i64 {
    Converter::new(src, dst).convert_raw_in_range(raw) as i64
}

/// Exact dot product of raw integers.
fn dot(a: impl Iterator<Item = i64>, b: impl Iterator<Item = i64>) -> i128 {
    a.zip(b).map(|(x, y)| i128::from(x) * i128::from(y)).sum()
}

/// The exp table for [`GateMode::Softmax`]: entry `i` is `exp(-(i << exp_shift) · lsb)` as
/// `ap_ufixed<Fe+1,1,AP_RND,AP_SAT>` raw, so entry 0 is exactly 1.0.
pub fn exp_table(p: &MoeParams) -> Result<Vec<i64>> {
    let st = p.score_type()?;
    let lsb = (-f64::from(p.types.logit.frac_bits())).exp2();
    (0..1u64 << p.score_table_bits)
        .map(|i| {
            let d = ((i << p.exp_shift()) as f64) * lsb;
            Ok(Fx::from_f64((-d).exp(), &st)?.raw() as i64)
        })
        .collect()
}

/// The exp-table index of a logit difference `diff >= 0` (raw logit units): shifted, then
/// clamped to the last entry.
pub fn exp_index(p: &MoeParams, diff: i64) -> usize {
    let last = (1usize << p.score_table_bits) - 1;
    ((diff >> p.exp_shift()) as usize).min(last)
}

/// The divider: `floor(n · 2^Fw / d)` by restoring division, one quotient bit per step
/// (Fw + 1 steps, integer bit first), for `1 <= d` and `n <= d`.
pub fn restoring_divide(n: u64, d: u64, frac_bits: u32) -> u64 {
    let (mut r, mut q) = (n, 0u64);
    for _ in 0..=frac_bits {
        let ge = r >= d;
        q = (q << 1) | u64::from(ge);
        if ge {
            r -= d;
        }
        r <<= 1;
    }
    q
}

/// Gate logits `tokens x experts` (the gate GEMV, requantized to `types.logit`).
pub fn gate_logits(p: &MoeParams, data: &MoeData) -> Result<Array2<i64>> {
    gate_logits_of(p, &data.x, &data.gate)
}

/// [`gate_logits`] from the tokens `x` and the `gate` matrix alone.
pub fn gate_logits_of(p: &MoeParams, x: &Array2<i64>, gate: &Array2<i64>) -> Result<Array2<i64>> {
    let acc = p.acc_type(p.types.input.frac_bits())?;
    let (tt, e) = (p.tokens as usize, p.experts as usize);
    Ok(Array2::from_shape_fn((tt, e), |(t, j)| {
        let s = dot(x.row(t).iter().copied(), gate.row(j).iter().copied());
        conv(s, &acc, &p.types.logit)
    }))
}

/// Top-k of one token's logits: scanning experts in index order with strict comparisons, so on
/// equal logits the lower expert index ranks first.
pub fn top_k(logits: &[i64], k: usize) -> Vec<usize> {
    let mut best: Vec<(i64, usize)> = Vec::with_capacity(2);
    for (i, &v) in logits.iter().enumerate() {
        // Same as the hardware: replace the best on a strictly greater value, else the second.
        if best.is_empty() || v > best[0].0 {
            best.insert(0, (v, i));
        } else if best.len() < 2 || v > best[1].0 {
            if best.len() == 2 {
                best[1] = (v, i);
            } else {
                best.push((v, i));
            }
        }
        best.truncate(2);
    }
    best.into_iter().take(k).map(|(_, i)| i).collect()
}

/// Score numerators (best first) of the selected logits.
pub fn score_numerators(p: &MoeParams, sel_logits: &[i64]) -> Result<Vec<u64>> {
    match p.gate_mode {
        GateMode::Softmax => {
            let table = exp_table(p)?;
            let top = sel_logits[0];
            Ok(sel_logits
                .iter()
                .map(|&v| table[exp_index(p, top - v)] as u64)
                .collect())
        }
        GateMode::Renorm => {
            let sp = p.sigmoid_params()?;
            let table = sp.table()?;
            sel_logits
                .iter()
                .map(|&v| Ok((sp.apply_raw(i128::from(v), Some(&table))? as u64).max(1)))
                .collect()
        }
    }
}

/// Routing: top-k, gate weights, queue admission and the expert-load order.
///
/// Admission walks tokens in order and, within a token, slot 0 before slot 1; a pair is kept
/// while its expert has admitted fewer than `queue_depth` pairs, otherwise dropped (counted,
/// gate weight 0). With `reorder`, loads are one per active expert in expert-index order, each
/// holding its queue in admission order (M3ViT's grouping); without it, loads are the maximal
/// runs of equal experts in the admission order of the kept pairs.
pub fn route(p: &MoeParams, logits: Array2<i64>, reorder: bool) -> Result<Routing> {
    let (tt, k, e) = (p.tokens as usize, p.top_k as usize, p.experts as usize);
    let mut selected = Array2::zeros((tt, k));
    let mut weights = Array2::zeros((tt, k));
    let mut kept = Array2::from_elem((tt, k), false);
    let mut queues: Vec<Vec<(u32, u32)>> = vec![Vec::new(); e];
    let mut order: Vec<(u32, u32, u32)> = Vec::new();
    let mut dropped = 0;
    for t in 0..tt {
        let row: Vec<i64> = logits.row(t).to_vec();
        let sel = top_k(&row, k);
        let sel_logits: Vec<i64> = sel.iter().map(|&i| row[i]).collect();
        let nums = score_numerators(p, &sel_logits)?;
        let den: u64 = nums.iter().sum();
        for (s, &ex) in sel.iter().enumerate() {
            selected[[t, s]] = ex as u32;
            let q = restoring_divide(nums[s], den, p.gate_frac_bits) as i64;
            if queues[ex].len() < p.queue_depth as usize {
                queues[ex].push((t as u32, s as u32));
                order.push((ex as u32, t as u32, s as u32));
                kept[[t, s]] = true;
                weights[[t, s]] = q;
            } else {
                dropped += 1;
            }
        }
    }
    let loads = if reorder {
        queues
            .into_iter()
            .enumerate()
            .filter(|(_, q)| !q.is_empty())
            .map(|(ex, entries)| Load {
                expert: ex as u32,
                entries,
            })
            .collect()
    } else {
        let mut loads: Vec<Load> = Vec::new();
        for (ex, t, s) in order {
            match loads.last_mut() {
                Some(l) if l.expert == ex => l.entries.push((t, s)),
                _ => loads.push(Load {
                    expert: ex,
                    entries: vec![(t, s)],
                }),
            }
        }
        loads
    };
    Ok(Routing {
        logits,
        selected,
        weights,
        kept,
        dropped,
        loads,
    })
}

/// One expert's FFN on one token: `rq_out(W2 · act(rq_hidden(W1 · x)))`.
pub fn expert_ffn(p: &MoeParams, data: &MoeData, expert: usize, x: &[i64]) -> Result<Vec<i64>> {
    let acc1 = p.acc_type(p.types.input.frac_bits())?;
    let acc2 = p.acc_type(p.types.hidden.frac_bits())?;
    let act = p.activation_params();
    let table = match act.kind {
        crate::units::activation::ActivationKind::Relu => None,
        _ => Some(act.table()?),
    };
    let w1 = &data.w1[expert];
    let w2 = &data.w2[expert];
    let h: Vec<i64> = (0..p.d_ff as usize)
        .map(|n| {
            let pre = conv(
                dot(x.iter().copied(), w1.row(n).iter().copied()),
                &acc1,
                &p.types.hidden,
            );
            Ok(act.apply_raw(i128::from(pre), table.as_deref())? as i64)
        })
        .collect::<Result<_>>()?;
    Ok((0..p.d_model as usize)
        .map(|n| {
            conv(
                dot(h.iter().copied(), w2.row(n).iter().copied()),
                &acc2,
                &p.types.expert_out,
            )
        })
        .collect())
}

/// The exact type of the combine sum `sum_s w_s · y_s` before the output requantization.
pub fn combine_type(p: &MoeParams) -> Result<QType> {
    let w = p.gate_frac_bits + 2 + p.types.expert_out.width() + 1;
    let f = p.gate_frac_bits as i32 + p.types.expert_out.frac_bits();
    Ok(QType::new_wide(w, w as i32 - f, true)?)
}

/// The whole layer.
pub fn golden(p: &MoeParams, data: &MoeData, reorder: bool) -> Result<MoeGolden> {
    p.validate()?;
    data.validate(p)?;
    let routing = route(p, gate_logits(p, data)?, reorder)?;
    let (tt, d, k) = (p.tokens as usize, p.d_model as usize, p.top_k as usize);
    let mut y = vec![vec![vec![0i64; d]; k]; tt];
    for load in &routing.loads {
        for &(t, s) in &load.entries {
            let xt: Vec<i64> = data.x.row(t as usize).to_vec();
            y[t as usize][s as usize] = expert_ffn(p, data, load.expert as usize, &xt)?;
        }
    }
    let ct = combine_type(p)?;
    let outputs = Array2::from_shape_fn((tt, d), |(t, j)| {
        let sum: i128 = (0..k)
            .map(|s| i128::from(routing.weights[[t, s]]) * i128::from(y[t][s][j]))
            .sum();
        conv(sum, &ct, &p.types.output)
    });
    Ok(MoeGolden { routing, outputs })
}

/// What a weight segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The gate matrix (requested with id = `experts`).
    Gate,
    /// One expert's first- then second-layer weights (requested with its index).
    Expert(u32),
}

fn mask(v: i64, w: u32) -> u64 {
    (v as u64) & if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

/// The weight-stream beats of one segment, each as little-endian 64-bit words of the
/// `8 · ddr_bytes_per_cycle`-bit `s_axis_w_tdata`.
///
/// Order: tile by tile (each tile is `lanes` consecutive rows of the matrix, rows `t·lanes ..`);
/// within a tile, word by word (`kk` = 0 .. K/simd); within a word, lane-major
/// (`lane`, then `s`), element = `W[t·lanes + lane][kk·simd + s]`. Elements are packed
/// `weights_per_beat` to a beat, element `i` of a beat in bytes `i·b .. (i+1)·b` (b = bytes per
/// weight), two's complement in the low bits, zero above.
pub fn segment_beats(p: &MoeParams, data: &MoeData, seg: Segment) -> Vec<Vec<u64>> {
    let mats: Vec<&Array2<i64>> = match seg {
        Segment::Gate => vec![&data.gate],
        Segment::Expert(e) => vec![&data.w1[e as usize], &data.w2[e as usize]],
    };
    let (l, s) = (p.lanes as usize, p.simd as usize);
    let ww = p.types.weight.width();
    let bpw = p.weight_bytes() as usize;
    let per_beat = p.weights_per_beat() as usize;
    let words64 = (p.ddr_bytes_per_cycle as usize).div_ceil(8);
    let mut elems = Vec::new();
    for m in mats {
        let (rows, k) = m.dim();
        for t in 0..rows / l {
            for kk in 0..k / s {
                for lane in 0..l {
                    for j in 0..s {
                        elems.push(m[[t * l + lane, kk * s + j]]);
                    }
                }
            }
        }
    }
    elems
        .chunks(per_beat)
        .map(|chunk| {
            let mut beat = vec![0u64; words64];
            for (i, &v) in chunk.iter().enumerate() {
                let bit = i * bpw * 8;
                let val = mask(v, ww);
                beat[bit / 64] |= val << (bit % 64);
                if bit % 64 + ww as usize > 64 {
                    beat[bit / 64 + 1] |= val >> (64 - bit % 64);
                }
            }
            beat
        })
        .collect()
}

/// `s_axis` beats: token by token, feature by feature, one element per beat in the low bits.
pub fn input_beats(p: &MoeParams, data: &MoeData) -> Vec<u64> {
    let w = p.input_bytes() * 8;
    data.x.iter().map(|&v| mask(v, w)).collect()
}

/// Expected `m_axis` beats: token by token, feature by feature, one element per beat,
/// sign-extended to the byte-aligned width; `tlast` on the final beat only.
pub fn output_beats(p: &MoeParams, outputs: &Array2<i64>) -> Vec<u64> {
    let w = p.output_bytes() * 8;
    outputs.iter().map(|&v| mask(v, w)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn gate_data_equals_the_full_batch_without_drawing_weights() {
        for skew in [0.0, 1.5] {
            let p = MoeParams::default();
            let full = MoeData::random(&p, 9, skew).unwrap();
            let gate = random_gate_data(&p, 9, skew).unwrap();
            assert_eq!((gate.x, gate.gate), (full.x, full.gate), "skew {skew}");
        }
    }

    use super::*;

    #[test]
    fn divider_matches_integer_division() {
        for d in 1..200u64 {
            for n in 0..=d {
                assert_eq!(restoring_divide(n, d, 10), (n << 10) / d, "{n}/{d}");
            }
        }
    }

    #[test]
    fn top_k_breaks_ties_by_lower_index() {
        assert_eq!(top_k(&[3, 5, 5, 1], 2), vec![1, 2]);
        assert_eq!(top_k(&[5, 5], 2), vec![0, 1]);
        assert_eq!(top_k(&[1, 2, 3, 3], 1), vec![2]);
        assert_eq!(top_k(&[7, 1, 7, 7], 2), vec![0, 2]);
    }

    #[test]
    fn exp_table_starts_at_one() {
        let p = MoeParams::default();
        let t = exp_table(&p).unwrap();
        assert_eq!(t[0], 1 << p.score_frac_bits);
        assert!(t.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn reordering_loads_each_expert_once() {
        let p = MoeParams::default();
        let data = MoeData::random(&p, 1, 0.0).unwrap();
        let a = golden(&p, &data, true).unwrap();
        let b = golden(&p, &data, false).unwrap();
        assert_eq!(a.outputs, b.outputs);
        assert_eq!(a.routing.loads.len(), a.routing.active_experts());
        assert!(b.routing.loads.len() >= a.routing.loads.len());
    }
}
