//! The integer network a model lowers to, and the golden engine that runs it.
//!
//! Every compute layer is an integer GEMM or convolution (i32 weights, i64 accumulators) followed
//! by a per-output-channel [`Requant`]: integer thresholds on the accumulator that give the next
//! layer's integer directly. The thresholds are computed once, at lowering, from the exact real
//! function the graph applies between accumulator and quantizer (scales, bias, BatchNorm, Relu);
//! at run time nothing but integer compares happens, which is also what hardware would do.
//! Host ops (input preprocessing and quantization, max pooling) are the only float code, and the
//! input quantizer repeats the reference's f32 operations in the same order.

/// A float operation on the network input before its quantizer, in graph order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HostOp {
    Mul(f32),
    Div(f32),
    Add(f32),
    Sub(f32),
}

/// The requantization of one output channel: `q = lo + (number of thresholds passed)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Chan {
    /// Slope > 0: thresholds ascending, `acc >= t` passes.
    Up(Vec<i64>),
    /// Slope < 0 (e.g. a negative BatchNorm gamma): thresholds descending, `acc <= t` passes.
    Down(Vec<i64>),
    /// Slope 0: a constant output.
    Const(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Requant {
    /// Output range relative to the zero point (`q - zp`).
    pub lo: i64,
    pub hi: i64,
    /// The output quantizer's zero point (QuantizeLinear's `y_zero_point`): the integers the
    /// next layer sees are `zp + (lo + thresholds passed)`.
    pub zp: i64,
    /// A Relu before the quantizer (its output is then max(q, 0)).
    pub relu: bool,
    pub chans: Vec<Chan>,
    /// The real function the thresholds encode, `(a*acc + b) / s` per channel, kept for reports
    /// and for tracing a difference from a float reference to a near-tie (see [`TieMargin`]).
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub s: f64,
}

/// Of one requantization stage, the output whose exact pre-rounding value `v` lay closest to a
/// rounding tie (`k + 1/2`), unclipped values only. A float32 reference can round such a value
/// the other way when `distance` is below its accumulated rounding error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TieMargin {
    pub stage: usize,
    pub output: usize,
    pub value: f64,
    pub distance: f64,
}

/// Round half to even, as numpy's `round` (qonnx `ROUND`) and QuantizeLinear do.
fn round_even(v: f64) -> f64 {
    v.round_ties_even()
}

impl Requant {
    /// Thresholds for `q = clip(round_half_even((a*acc + b) / s), lo, hi)` per channel.
    /// Exact real arithmetic would need rationals; f64 is exact whenever the scales are powers of
    /// two and a, b have ≤ 53 significant bits, which covers what float32 graphs hold.
    pub fn new(a: &[f64], b: &[f64], s: f64, lo: i64, hi: i64, relu: bool) -> Requant {
        const LIM: f64 = 4.0e18;
        let chans = a
            .iter()
            .zip(b)
            .map(|(&a, &b)| {
                if a == 0.0 {
                    return Chan::Const((round_even(b / s) as i64).clamp(lo, hi));
                }
                let mut th = Vec::with_capacity((hi - lo) as usize);
                for k in lo + 1..=hi {
                    // q >= k  iff  v > k - 1/2, or v == k - 1/2 and k is even (ties to even).
                    let t = (((k as f64 - 0.5) * s - b) / a).clamp(-LIM, LIM);
                    let tie_in = t.fract() == 0.0 && k % 2 == 0;
                    th.push(if a > 0.0 {
                        if tie_in {
                            t as i64
                        } else {
                            t.floor() as i64 + 1
                        }
                    } else if tie_in {
                        t as i64
                    } else {
                        t.ceil() as i64 - 1
                    });
                }
                if a > 0.0 {
                    Chan::Up(th)
                } else {
                    Chan::Down(th)
                }
            })
            .collect();
        Requant {
            lo,
            hi,
            zp: 0,
            relu,
            chans,
            a: a.to_vec(),
            b: b.to_vec(),
            s,
        }
    }

    /// [`Requant::new`] for an output quantizer with zero point `zp` and integer range
    /// `lo..=hi`: `q = clip(round_half_even((a*acc + b) / s) + zp, lo, hi)` (QuantizeLinear).
    #[allow(clippy::too_many_arguments)]
    pub fn with_zero_point(
        a: &[f64],
        b: &[f64],
        s: f64,
        lo: i64,
        hi: i64,
        relu: bool,
        zp: i64,
    ) -> Requant {
        Requant {
            zp,
            ..Requant::new(a, b, s, lo - zp, hi - zp, relu)
        }
    }

    #[inline]
    pub fn apply(&self, c: usize, acc: i64) -> i32 {
        let q = match &self.chans[c] {
            Chan::Up(t) => self.lo + t.partition_point(|&x| x <= acc) as i64,
            Chan::Down(t) => self.lo + t.partition_point(|&x| x >= acc) as i64,
            Chan::Const(v) => *v,
        };
        ((if self.relu { q.max(0) } else { q }) + self.zp) as i32
    }

    /// The integers the stage can output (Relu and the zero point applied).
    pub fn out_range(&self) -> (i64, i64) {
        let lo = if self.relu { self.lo.max(0) } else { self.lo };
        (lo + self.zp, self.hi + self.zp)
    }
}

/// One step of the integer network. Activations between stages are flat i32 vectors in the
/// model's own layout (NCHW without the batch axis), so Flatten/Reshape cost nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Host: the float input through its preprocessing, then `clip(round(x / scale))`.
    InputQuant {
        pre: Vec<HostOp>,
        scale: f32,
        lo: i64,
        hi: i64,
        /// Zero point added after rounding (QuantizeLinear), 0 for QONNX `Quant`.
        zp: i64,
    },
    /// `out[m] = rq_m(sum_k w[m*k_len + k] * in[k])`.
    Dense {
        k: usize,
        m: usize,
        w: Vec<i32>,
        rq: Requant,
    },
    /// 2-D convolution, one group, no dilation; weights [o][c][kh][kw].
    Conv {
        geom: ConvGeom,
        w: Vec<i32>,
        rq: Requant,
    },
    /// Host: max pooling (monotone, so pooling the integers equals pooling the floats).
    MaxPool { geom: ConvGeom },
    /// Host: global average pooling, each channel's integer sum through `rq` (the mean's
    /// scale and the input zero point are folded into it).
    AvgPool { geom: ConvGeom, rq: Requant },
    /// Host: Relu on integers.
    Relu,
}

/// Shapes of a convolution or pooling window (`o` = output channels; pooling keeps `c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
    /// The integer a padded tap reads: the input's zero point (real 0), 0 without one.
    pub pad: i32,
}

/// A whole lowered network: stages, then the output's scale (`y = q * scale`, in f32 as the
/// graph's dequantization computes it).
#[derive(Debug, Clone, PartialEq)]
pub struct IntNetwork {
    pub input_shape: Vec<usize>,
    pub stages: Vec<Stage>,
    pub out_scale: f32,
    /// The output quantizer's zero point: `y = (q - out_zp) * out_scale`.
    pub out_zp: i64,
    pub out_len: usize,
    /// How the input was quantized when the graph left it float (`None`: the graph's own
    /// quantizer). Reports say which.
    pub input_type: Option<crate::InputType>,
    /// The graph ends in a Softmax over the outputs: [`IntNetwork::dequantize`] applies it, in
    /// f32 (see [`softmax_f32`]).
    pub softmax: bool,
}

impl IntNetwork {
    /// Values per input sample (the input shape without its batch axis).
    pub fn input_len(&self) -> usize {
        self.input_shape.iter().skip(1).product()
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> u64 {
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Dense { k, m, .. } => (k * m) as u64,
                Stage::Conv { geom: g, .. } => (g.o * g.oh * g.ow * g.c * g.kh * g.kw) as u64,
                _ => 0,
            })
            .sum()
    }

    /// Run one sample (`x.len() == input_len()`); returns the graph's float output.
    pub fn run(&self, x: &[f32]) -> Result<Vec<f32>, crate::ModelError> {
        self.run_inner(x, None)
    }

    /// Run one sample and report, per requantization stage, the output closest to a rounding
    /// tie: how a difference from a float reference is traced to the reference's rounding.
    pub fn nearest_ties(&self, x: &[f32]) -> Result<Vec<TieMargin>, crate::ModelError> {
        let mut t = Vec::new();
        self.run_inner(x, Some(&mut t))?;
        Ok(t)
    }

    fn run_inner(
        &self,
        x: &[f32],
        mut trace: Option<&mut Vec<TieMargin>>,
    ) -> Result<Vec<f32>, crate::ModelError> {
        if x.len() != self.input_len() {
            return Err(crate::ModelError::InputShape {
                expected: self.input_shape[1..].to_vec(),
                got: x.len(),
            });
        }
        // A float graph would carry NaN/inf through; an integer network cannot represent them.
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(crate::ModelError::InputValue {
                index: i,
                value: x[i],
            });
        }
        let mut cur: Vec<i32> = Vec::new();
        for (si, st) in self.stages.iter().enumerate() {
            let mut accs: Vec<(usize, i64)> = Vec::new();
            let mut keep = |o: usize, acc: i64| {
                if trace.is_some() {
                    accs.push((o, acc));
                }
            };
            let next = match st {
                Stage::InputQuant { .. }
                | Stage::MaxPool { .. }
                | Stage::AvgPool { .. }
                | Stage::Relu => st.run_host(x, &cur).unwrap_or_default(),
                Stage::Dense { k, m, w, rq } => (0..*m)
                    .map(|o| {
                        let row = &w[o * k..(o + 1) * k];
                        let acc: i64 = row
                            .iter()
                            .zip(&cur)
                            .map(|(&a, &b)| i64::from(a) * i64::from(b))
                            .sum();
                        keep(o, acc);
                        rq.apply(o, acc)
                    })
                    .collect(),
                Stage::Conv { geom: g, w, rq } => conv(g, &cur, w, rq, &mut keep),
            };
            if let (Some(t), Stage::Dense { rq, .. } | Stage::Conv { rq, .. }) =
                (trace.as_deref_mut(), st)
            {
                let per_ch = accs.len() / rq.a.len().max(1);
                let mut best: Option<TieMargin> = None;
                for (i, &(o, acc)) in accs.iter().enumerate() {
                    let ch = if matches!(st, Stage::Conv { .. }) {
                        i / per_ch.max(1)
                    } else {
                        o
                    };
                    let v = (rq.a[ch] * acc as f64 + rq.b[ch]) / rq.s;
                    if v < rq.lo as f64 - 0.5 || v > rq.hi as f64 + 0.5 {
                        continue;
                    }
                    let d = (v - v.floor() - 0.5).abs();
                    if best.is_none_or(|b| d < b.distance) {
                        best = Some(TieMargin {
                            stage: si,
                            output: i,
                            value: v,
                            distance: d,
                        });
                    }
                }
                t.extend(best);
            }
            cur = next;
        }
        Ok(self.dequantize(&cur))
    }
}

/// The network stage by stage, for engines that run the array layers elsewhere (the RTL
/// engine): host stages here, array stages as a GEMM `C = A·B` whose accumulators come back
/// through [`Stage::requantize`]. Composing these gives exactly [`IntNetwork::run`].
impl IntNetwork {
    /// The output floats of the last stage's integers (`y = q * scale`, in f32 as the graph's
    /// dequantization computes it).
    pub fn dequantize(&self, q: &[i32]) -> Vec<f32> {
        // As DequantizeLinear computes it: the integer difference, then one f32 multiply.
        let mut y: Vec<f32> = q
            .iter()
            .map(|&v| (i64::from(v) - self.out_zp) as f32 * self.out_scale)
            .collect();
        if self.softmax {
            softmax_f32(&mut y);
        }
        y
    }
}

/// A final Softmax as ONNX defines it, in f32: `exp(x - max) / Σ exp(x - max)`. The reference
/// executors compute the same formula with their own vectorised `expf` and summation order, so
/// an output can differ from theirs in the last bits (measured and reported by the tests; the
/// integers before it are exact).
pub fn softmax_f32(y: &mut [f32]) {
    let m = y.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in y.iter_mut() {
        *v = (*v - m).exp();
    }
    let sum: f32 = y.iter().sum();
    // Multiplied by the reciprocal, as onnxruntime's MLAS kernel does (fewer last-bit
    // differences than a division, measured on the fixtures).
    let inv = 1.0 / sum;
    for v in y.iter_mut() {
        *v *= inv;
    }
}

impl Stage {
    /// Whether the stage is an integer GEMM/convolution (runs on the array).
    pub fn is_array(&self) -> bool {
        matches!(self, Stage::Dense { .. } | Stage::Conv { .. })
    }

    /// A host stage on one sample: the input quantizer takes the float sample (`x`), the
    /// others the previous stage's integers. `None` for array stages.
    pub fn run_host(&self, x: &[f32], cur: &[i32]) -> Option<Vec<i32>> {
        match self {
            Stage::InputQuant {
                pre,
                scale,
                lo,
                hi,
                zp,
            } => Some(
                x.iter()
                    .map(|&v| {
                        let mut v = v;
                        for op in pre {
                            v = match *op {
                                HostOp::Mul(c) => v * c,
                                HostOp::Div(c) => v / c,
                                HostOp::Add(c) => v + c,
                                HostOp::Sub(c) => v - c,
                            };
                        }
                        ((v / scale).round_ties_even() as f64 + *zp as f64)
                            .clamp(*lo as f64, *hi as f64) as i32
                    })
                    .collect(),
            ),
            Stage::MaxPool { geom } => Some(maxpool(geom, cur)),
            Stage::AvgPool { geom: g, rq } => Some(
                cur.chunks(g.h * g.w)
                    .enumerate()
                    .map(|(c, xs)| rq.apply(c, xs.iter().map(|&v| i64::from(v)).sum()))
                    .collect(),
            ),
            Stage::Relu => Some(cur.iter().map(|&v| v.max(0)).collect()),
            Stage::Dense { .. } | Stage::Conv { .. } => None,
        }
    }

    /// `(M, K, N)` of an array stage's GEMM for one sample (a convolution: one row per output
    /// pixel, im2col).
    pub fn gemm_shape(&self) -> Option<(usize, usize, usize)> {
        match self {
            Stage::Dense { k, m, .. } => Some((1, *k, *m)),
            Stage::Conv { geom: g, .. } => Some((g.oh * g.ow, g.c * g.kh * g.kw, g.o)),
            _ => None,
        }
    }

    /// The A rows (M × K, row-major) of one sample: its activations for a dense layer, the
    /// im2col patches for a convolution (zero padding; K ordered as c, ky, kx like the weights).
    pub fn gemm_a(&self, cur: &[i32]) -> Option<Vec<i64>> {
        match self {
            Stage::Dense { .. } => Some(cur.iter().map(|&v| i64::from(v)).collect()),
            Stage::Conv { geom: g, .. } => {
                let mut a = Vec::with_capacity(g.oh * g.ow * g.c * g.kh * g.kw);
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        for c in 0..g.c {
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let iy = (oy * g.sh + ky) as isize - g.pt as isize;
                                    let ix = (ox * g.sw + kx) as isize - g.pl as isize;
                                    let inside = (0..g.h as isize).contains(&iy)
                                        && (0..g.w as isize).contains(&ix);
                                    a.push(i64::from(if inside {
                                        cur[(c * g.h + iy as usize) * g.w + ix as usize]
                                    } else {
                                        g.pad
                                    }));
                                }
                            }
                        }
                    }
                }
                Some(a)
            }
            _ => None,
        }
    }

    /// B (K × N, row-major): the weights, one column per output channel.
    pub fn gemm_b(&self) -> Option<Vec<i64>> {
        let (_, k, n) = self.gemm_shape()?;
        let w = match self {
            Stage::Dense { w, .. } | Stage::Conv { w, .. } => w,
            _ => return None,
        };
        // Weights are stored [out][k] (dense: [m][k]; conv: [o][c][kh][kw]).
        Some(
            (0..k)
                .flat_map(|kk| (0..n).map(move |nn| i64::from(w[nn * k + kk])))
                .collect(),
        )
    }

    /// The stage's output integers (model layout) from one sample's accumulators `C` (M × N,
    /// row-major), through the per-channel requantization.
    pub fn requantize(&self, acc: &[i64]) -> Option<Vec<i32>> {
        match self {
            Stage::Dense { rq, m, .. } => Some((0..*m).map(|o| rq.apply(o, acc[o])).collect()),
            Stage::Conv { geom: g, rq, .. } => {
                let pixels = g.oh * g.ow;
                Some(
                    (0..g.o)
                        .flat_map(|o| (0..pixels).map(move |p| (o, p)))
                        .map(|(o, p)| rq.apply(o, acc[p * g.o + o]))
                        .collect(),
                )
            }
            _ => None,
        }
    }
}

fn conv(
    g: &ConvGeom,
    x: &[i32],
    w: &[i32],
    rq: &Requant,
    keep: &mut impl FnMut(usize, i64),
) -> Vec<i32> {
    let mut out = Vec::with_capacity(g.o * g.oh * g.ow);
    for o in 0..g.o {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = 0i64;
                for c in 0..g.c {
                    for ky in 0..g.kh {
                        let iy = (oy * g.sh + ky) as isize - g.pt as isize;
                        for kx in 0..g.kw {
                            let ix = (ox * g.sw + kx) as isize - g.pl as isize;
                            // A padded tap reads the input's zero point (real 0).
                            let inside =
                                (0..g.h as isize).contains(&iy) && (0..g.w as isize).contains(&ix);
                            let xv = if inside {
                                x[(c * g.h + iy as usize) * g.w + ix as usize]
                            } else {
                                g.pad
                            };
                            let wv = w[((o * g.c + c) * g.kh + ky) * g.kw + kx];
                            acc += i64::from(xv) * i64::from(wv);
                        }
                    }
                }
                keep(o, acc);
                out.push(rq.apply(o, acc));
            }
        }
    }
    out
}

fn maxpool(g: &ConvGeom, x: &[i32]) -> Vec<i32> {
    let mut out = Vec::with_capacity(g.c * g.oh * g.ow);
    for c in 0..g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut m = i32::MIN;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        m = m.max(x[(c * g.h + oy * g.sh + ky) * g.w + ox * g.sw + kx]);
                    }
                }
                out.push(m);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thresholds against the direct formula on every accumulator in a range, for slopes of
    /// both signs, ties included (power-of-two a, b, s make exact ties frequent).
    #[test]
    fn thresholds_equal_direct_rounding() {
        for &(a, b, s, lo, hi, relu) in &[
            (0.25, 0.0, 1.0, -8, 7, false),
            (0.25, 0.125, 0.5, 0, 15, false),
            (-0.375, 1.0, 0.25, -128, 127, false),
            (0.0123, -0.3, 0.05, -2, 1, true),
            (0.0, 0.75, 0.5, 0, 3, false),
        ] {
            let rq = Requant::new(&[a], &[b], s, lo, hi, relu);
            for acc in -2000i64..2000 {
                let v: f64 = ((a * acc as f64 + b) / s)
                    .round_ties_even()
                    .clamp(lo as f64, hi as f64);
                let want = if relu { v.max(0.0) } else { v } as i32;
                assert_eq!(rq.apply(0, acc), want, "a={a} b={b} s={s} acc={acc}");
            }
        }
    }
}

/// A requantization as an integer multiplier, offset and shift per channel:
/// `q = clip((acc * mul + add) >> shift)` (then Relu), the shift either flooring or rounding
/// half to even (`round_even`, ap_fixed's AP_RND_CONV) — the unit a systolic array's output
/// stage would implement instead of a threshold table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulShift {
    pub shift: u32,
    pub round_even: bool,
    /// (mul, add) per channel.
    pub chans: Vec<(i64, i64)>,
}

impl MulShift {
    pub fn apply(&self, rq: &Requant, c: usize, acc: i64) -> i32 {
        let (m, add) = self.chans[c];
        let v = i128::from(acc) * i128::from(m) + i128::from(add);
        let mut q = v >> self.shift;
        if self.round_even && self.shift > 0 {
            let rem = v - (q << self.shift);
            let half = 1i128 << (self.shift - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q += 1;
            }
        }
        let q = q.clamp(i128::from(rq.lo), i128::from(rq.hi)) as i64;
        ((if rq.relu { q.max(0) } else { q }) + rq.zp) as i32
    }

    /// Bits of the widest multiplier (two's complement).
    pub fn mul_bits(&self) -> u32 {
        self.chans
            .iter()
            .map(|&(m, _)| 65 - m.unsigned_abs().leading_zeros().min(64))
            .max()
            .unwrap_or(1)
    }
}

impl Requant {
    /// The smallest shift (up to 62) at which a per-channel multiplier and offset reproduce this
    /// requantization for every accumulator in `ranges[c]` (inclusive), or `None`. Both are
    /// monotone step functions, so agreeing on both sides of every threshold inside the range and
    /// at its ends is agreeing everywhere on it; that is what is checked (a proof by exhaustion
    /// over the steps, not a sample).
    pub fn mul_shift(&self, ranges: &[(i64, i64)]) -> Option<MulShift> {
        for shift in 0..=62u32 {
            for round_even in [false, true] {
                if let Some(ms) = self.try_mul_shift(ranges, shift, round_even) {
                    return Some(ms);
                }
            }
        }
        None
    }

    fn try_mul_shift(
        &self,
        ranges: &[(i64, i64)],
        shift: u32,
        round_even: bool,
    ) -> Option<MulShift> {
        let p = 2f64.powi(shift as i32);
        let mut ms = MulShift {
            shift,
            round_even,
            chans: Vec::with_capacity(self.chans.len()),
        };
        for (c, ch) in self.chans.iter().enumerate() {
            let (alpha, beta) = (self.a[c] / self.s, self.b[c] / self.s);
            let m = (alpha * p).round();
            // Flooring needs the half added; rounding to even takes the offset as it is.
            let add = if round_even {
                (beta * p).round()
            } else {
                ((beta + 0.5) * p).floor()
            };
            if !(m.abs() < 9.0e15 && add.abs() < 9.0e15) {
                return None;
            }
            ms.chans.push((m as i64, add as i64));
            let (lo, hi) = ranges[c];
            let mut points = vec![lo, hi];
            if let Chan::Up(t) | Chan::Down(t) = ch {
                for &x in t {
                    points.extend(
                        [x - 1, x, x + 1]
                            .into_iter()
                            .filter(|y| (lo..=hi).contains(y)),
                    );
                }
            }
            if points
                .iter()
                .any(|&x| ms.apply(self, c, x) != self.apply(c, x))
            {
                return None;
            }
        }
        Some(ms)
    }
}

impl IntNetwork {
    /// Per requantizing layer (stage index), the multiplier-and-shift form over the accumulator
    /// range its inputs and weights can reach, or `None` where no shift up to 62 reproduces the
    /// thresholds.
    pub fn mul_shift_forms(&self) -> Vec<(usize, Option<MulShift>)> {
        self.array_requants()
            .into_iter()
            .map(|(i, rq, ranges)| (i, rq.mul_shift(&ranges)))
            .collect()
    }

    /// Every array layer's requantization with its per-channel accumulator ranges: what its
    /// inputs (the previous stage's integer range, and the pad value for a convolution) and
    /// its weights can reach.
    fn array_requants(&self) -> Vec<ArrayRequant<'_>> {
        let mut range = (0i64, 0i64);
        let mut out = Vec::new();
        for (i, st) in self.stages.iter().enumerate() {
            match st {
                Stage::InputQuant { lo, hi, .. } => range = (*lo, *hi),
                Stage::Relu => range = (range.0.max(0), range.1.max(0)),
                Stage::MaxPool { .. } => {}
                Stage::AvgPool { rq, .. } => range = rq.out_range(),
                Stage::Dense { k, m, w, rq } => {
                    let ranges = (0..*m)
                        .map(|o| acc_range(&w[o * k..(o + 1) * k], range))
                        .collect();
                    out.push((i, rq, ranges));
                    range = rq.out_range();
                }
                Stage::Conv { geom: g, w, rq } => {
                    let per = g.c * g.kh * g.kw;
                    // A padded tap reads the pad value (the input's zero point).
                    let pad = i64::from(g.pad);
                    let pr = (range.0.min(pad), range.1.max(pad));
                    let ranges = (0..g.o)
                        .map(|o| acc_range(&w[o * per..(o + 1) * per], pr))
                        .collect();
                    out.push((i, rq, ranges));
                    range = rq.out_range();
                }
            }
        }
        out
    }
}

/// A multiplier-and-shift form with ReLU and the zero point folded in, as the systolic array's
/// per-channel requantizer applies it: `q = round_or_floor((acc·mul + add) >> shift)`, then
/// `lo` if `q < lo`, `hi` if `q > hi`, else `q` (integers of the layer's output directly).
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedMulShift {
    pub shift: u32,
    pub round_even: bool,
    /// (mul, add) per channel, the zero point folded into `add`.
    pub chans: Vec<(i64, i64)>,
    pub lo: i64,
    pub hi: i64,
}

impl FoldedMulShift {
    pub fn apply(&self, c: usize, acc: i64) -> i64 {
        let (m, add) = self.chans[c];
        let v = i128::from(acc) * i128::from(m) + i128::from(add);
        let mut q = v >> self.shift;
        if self.round_even && self.shift > 0 {
            let rem = v - (q << self.shift);
            let half = 1i128 << (self.shift - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q += 1;
            }
        }
        let (lo, hi) = (i128::from(self.lo), i128::from(self.hi));
        (if q < lo {
            lo
        } else if q > hi {
            hi
        } else {
            q
        }) as i64
    }

    /// Bits of the widest offset (two's complement).
    pub fn add_bits(&self) -> u32 {
        self.chans
            .iter()
            .map(|&(_, a)| 65 - a.unsigned_abs().leading_zeros().min(64))
            .max()
            .unwrap_or(1)
    }
}

/// Whether `acc·m + add` hits a rounding tie (`≡ 2^(s−1) mod 2^s`) for some `acc` in `lo..=hi`.
fn tie_reachable(m: i64, add: i64, s: u32, (lo, hi): (i64, i64)) -> bool {
    if s == 0 || lo > hi {
        return false;
    }
    let modulus = 1i128 << s;
    let t = ((1i128 << (s - 1)) - i128::from(add)).rem_euclid(modulus);
    let m = i128::from(m).rem_euclid(modulus);
    if m == 0 {
        return t == 0;
    }
    let z = m.trailing_zeros();
    if z >= s {
        return t == 0;
    }
    if t & ((1i128 << z) - 1) != 0 {
        return false;
    }
    // acc·u ≡ t/2^z (mod 2^(s−z)) with u odd: acc ≡ acc0 (mod 2^(s−z)).
    let k = s - z;
    let mk = 1i128 << k;
    let u = (m >> z).rem_euclid(mk);
    let mut inv = 1i128; // Newton: inv ← inv·(2 − u·inv) doubles the correct low bits.
    for _ in 0..7 {
        inv = (inv * (2 - u * inv)).rem_euclid(mk);
    }
    let acc0 = ((t >> z) * inv).rem_euclid(mk);
    let first = i128::from(lo) + (acc0 - i128::from(lo)).rem_euclid(mk);
    first <= i128::from(hi)
}

impl MulShift {
    /// Folds ReLU and the zero point into the form: `add' = add + zp·2^shift`,
    /// `(lo', hi') = rq.out_range()`. Exact except at a round-half-even tie with an odd zero
    /// point (adding `zp` flips the parity that breaks the tie): where no tie is reachable over
    /// `ranges` the form becomes floor with the half added; otherwise `None`.
    pub fn folded(&self, rq: &Requant, ranges: &[(i64, i64)]) -> Option<FoldedMulShift> {
        let (lo, hi) = rq.out_range();
        // With ReLU and hi < 0 every output is the zero point: keep lo' <= hi'.
        let hi = hi.max(lo);
        let s = self.shift;
        let zp = i128::from(rq.zp) << s;
        let mut round_even = self.round_even;
        let mut half = 0i128;
        if round_even && rq.zp & 1 == 1 {
            let ties = self
                .chans
                .iter()
                .zip(ranges)
                .any(|(&(m, a), &r)| tie_reachable(m, a, s, r));
            if ties {
                return None;
            }
            // No tie: round half even equals floor of v + 2^(s−1).
            round_even = false;
            half = 1i128 << (s - 1);
        }
        let chans = self
            .chans
            .iter()
            .map(|&(m, a)| {
                i64::try_from(i128::from(a) + zp + half)
                    .ok()
                    .map(|a| (m, a))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FoldedMulShift {
            shift: s,
            round_even,
            chans,
            lo,
            hi,
        })
    }
}

/// An array layer's stage index, its requantization and its per-channel accumulator ranges.
type ArrayRequant<'a> = (usize, &'a Requant, Vec<(i64, i64)>);

/// A requantizing layer's stage index, its folded form (`None` where none is exact) and its
/// per-channel accumulator ranges.
pub type FoldedLayer = (usize, Option<FoldedMulShift>, Vec<(i64, i64)>);

impl IntNetwork {
    /// [`IntNetwork::mul_shift_forms`] folded for the per-channel requantizer (see
    /// [`MulShift::folded`]), with each layer's per-channel accumulator ranges.
    pub fn folded_forms(&self) -> Vec<FoldedLayer> {
        self.array_requants()
            .into_iter()
            .map(|(i, rq, ranges)| {
                let f = rq.mul_shift(&ranges).and_then(|ms| ms.folded(rq, &ranges));
                (i, f, ranges)
            })
            .collect()
    }
}

fn acc_range(w: &[i32], (lo, hi): (i64, i64)) -> (i64, i64) {
    w.iter().fold((0, 0), |(a, b), &wv| {
        let (p, q) = (i64::from(wv) * lo, i64::from(wv) * hi);
        (a + p.min(q), b + p.max(q))
    })
}

/// One row of a network's layer table (what `import` prints).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// `input-quant`, `dense`, `conv`, `maxpool`, `avgpool`, `relu`.
    pub op: &'static str,
    /// Input and output shapes without the batch axis.
    pub in_shape: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub macs: u64,
    /// Integer range of the layer's input (`None` for the float network input).
    pub in_range: Option<(i64, i64)>,
    /// Output integer range.
    pub out_range: (i64, i64),
    /// Range of the integer weights (array layers only).
    pub weight_range: Option<(i64, i64)>,
    /// Real value of one output integer step where the layer quantizes (`real = q * scale`):
    /// the input quantizer's scale, or an array layer's output quantizer scale.
    pub out_scale: Option<f64>,
    /// The convolution's geometry (`conv` and `maxpool`).
    pub geom: Option<ConvGeom>,
    /// `array` for integer GEMM/conv layers (for the systolic template), `host` otherwise.
    pub runs_on: &'static str,
}

impl LayerInfo {
    /// The GEMM an array layer lowers to, `(M, K, N)`: a dense layer is one row (batch 1) of
    /// K inputs by N outputs; a convolution is im2col, one row per output pixel.
    pub fn gemm(&self) -> Option<(u64, u64, u64)> {
        match (self.op, self.geom) {
            ("dense", _) => Some((
                1,
                self.in_shape.iter().product::<usize>() as u64,
                self.out_shape.iter().product::<usize>() as u64,
            )),
            ("conv", Some(g)) => {
                Some(((g.oh * g.ow) as u64, (g.c * g.kh * g.kw) as u64, g.o as u64))
            }
            _ => None,
        }
    }
}

/// The narrowest integer range of a set of weights (at least `0..=0`).
fn weight_range(w: &[i32]) -> (i64, i64) {
    w.iter().fold((0, 0), |(lo, hi), &v| {
        (lo.min(i64::from(v)), hi.max(i64::from(v)))
    })
}

impl IntNetwork {
    /// The layer table, in order.
    pub fn layers(&self) -> Vec<LayerInfo> {
        let mut range: Option<(i64, i64)> = None;
        let mut shape: Vec<usize> = self.input_shape[1..].to_vec();
        self.stages
            .iter()
            .map(|st| {
                let in_shape = shape.clone();
                let in_range = range;
                let info = |op, out_range, macs, runs_on| LayerInfo {
                    op,
                    in_shape: in_shape.clone(),
                    out_shape: Vec::new(),
                    macs,
                    in_range,
                    out_range,
                    weight_range: None,
                    out_scale: None,
                    geom: None,
                    runs_on,
                };
                let row = match st {
                    Stage::InputQuant { lo, hi, scale, .. } => LayerInfo {
                        out_shape: shape.clone(),
                        out_scale: Some(f64::from(*scale)),
                        ..info("input-quant", (*lo, *hi), 0, "host")
                    },
                    Stage::Relu => {
                        let r = range.unwrap_or((0, 0));
                        LayerInfo {
                            out_shape: shape.clone(),
                            ..info("relu", (r.0.max(0), r.1.max(0)), 0, "host")
                        }
                    }
                    Stage::AvgPool { geom: g, rq } => LayerInfo {
                        out_shape: vec![g.c, 1, 1],
                        out_scale: Some(rq.s),
                        geom: Some(*g),
                        ..info("avgpool", rq.out_range(), 0, "host")
                    },
                    Stage::MaxPool { geom: g } => LayerInfo {
                        out_shape: vec![g.c, g.oh, g.ow],
                        geom: Some(*g),
                        ..info("maxpool", range.unwrap_or((0, 0)), 0, "host")
                    },
                    Stage::Dense { k, m, w, rq } => LayerInfo {
                        out_shape: vec![*m],
                        weight_range: Some(weight_range(w)),
                        out_scale: Some(rq.s),
                        ..info("dense", rq.out_range(), (k * m) as u64, "array")
                    },
                    Stage::Conv { geom: g, w, rq } => LayerInfo {
                        out_shape: vec![g.o, g.oh, g.ow],
                        weight_range: Some(weight_range(w)),
                        out_scale: Some(rq.s),
                        geom: Some(*g),
                        ..info(
                            "conv",
                            rq.out_range(),
                            (g.o * g.oh * g.ow * g.c * g.kh * g.kw) as u64,
                            "array",
                        )
                    },
                };
                shape = row.out_shape.clone();
                range = Some(row.out_range);
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod fold_tests {
    use super::tie_reachable;

    /// The congruence solution agrees with enumeration for small multipliers, offsets, shifts
    /// and ranges.
    #[test]
    fn tie_reachable_matches_enumeration() {
        for s in 0..6u32 {
            for m in -9i64..=9 {
                for add in -20i64..=20 {
                    for (lo, hi) in [(-7i64, 9i64), (3, 3), (0, 1), (-40, -33), (5, 4)] {
                        let want = s > 0
                            && (lo..=hi).any(|x| {
                                (i128::from(x * m + add)).rem_euclid(1 << s) == 1 << (s - 1)
                            });
                        assert_eq!(tie_reachable(m, add, s, (lo, hi)), want, "{m} {add} {s}");
                    }
                }
            }
        }
    }
}
