//! The block's data, its chain of kernels (golden models, and Verilator when asked), and what
//! each stage measured.

use std::time::Instant;

use accelforge_sim::BuildOptions;
use ndarray::{Array2, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{
    ACT_FRAC, BETA_FRAC, BlockError, BlockParams, GAMMA_FRAC, NORM_FRAC, RESIDUAL_FRAC, Result,
    WEIGHT_FRAC, reference,
};
use crate::attention::stream::AttentionData;
use crate::layernorm::sim::{LayerNormData, LayerNormOut};
use crate::moe::model::MoeData;
use crate::moe::{self, FfnActivation, WeightSource};
use crate::systolic::layer::Gemm;
use crate::systolic::requant::{self, RqConfig};
use crate::systolic::sim::{SimOptions, run_per_channel_gemm};
use crate::template::drive::Stalls;

/// The block's input and every weight, as raw codes of their types.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockData {
    /// Tokens, `tokens × d_model`, residual-stream codes.
    pub x: Array2<i64>,
    /// γ and β of LN1, LN2 and the closing add & norm.
    pub norms: [(Vec<i64>, Vec<i64>); 3],
    /// `d × 3d`: the Q, K and V projections side by side (heads in order within each).
    pub wqkv: Array2<i64>,
    /// `d × d`: the output projection.
    pub wo: Array2<i64>,
    /// `d × d_ff` and `d_ff × d`: the MLP (empty for an MoE block).
    pub mlp: (Array2<i64>, Array2<i64>),
    /// The experts and the gate (its tokens are replaced by LN2's output at run time).
    pub moe: Option<MoeData>,
}

/// Uniform weight codes in `±round(sqrt(3/k)·2^7)`: unit-variance outputs for unit-variance
/// inputs over a reduction of `k`.
fn weights(rng: &mut ChaCha8Rng, rows: usize, cols: usize, k: usize) -> Array2<i64> {
    let a = ((3.0 / k as f64).sqrt() / lsb(WEIGHT_FRAC))
        .round()
        .clamp(1.0, 127.0) as i64;
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-a..=a))
}

impl BlockData {
    /// Seeded random tokens (about unit variance around a per-token offset) and weights.
    pub fn random(p: &BlockParams, seed: u64) -> BlockData {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (t, d, f) = (p.tokens as usize, p.d_model as usize, p.d_ff as usize);
        let mut x = Array2::zeros((t, d));
        for mut row in x.rows_mut() {
            let off: f64 = rng.random_range(-0.5..0.5);
            for v in row.iter_mut() {
                *v = ((off + rng.random_range(-1.7..1.7)) / lsb(RESIDUAL_FRAC)).round() as i64;
            }
        }
        let mut norm = || {
            let g = (0..d)
                .map(|_| (rng.random_range(0.5..1.5) / lsb(GAMMA_FRAC)).round() as i64)
                .collect();
            let b = (0..d)
                .map(|_| (rng.random_range(-0.5..0.5) / lsb(BETA_FRAC)).round() as i64)
                .collect();
            (g, b)
        };
        let norms = [norm(), norm(), norm()];
        let wqkv = weights(&mut rng, d, 3 * d, d);
        let wo = weights(&mut rng, d, d, d);
        let (mlp, moe) = if p.is_moe() {
            let e = p.experts as usize;
            let gate = weights(&mut rng, e, d, d);
            let w1 = (0..e).map(|_| weights(&mut rng, f, d, d)).collect();
            let w2 = (0..e).map(|_| weights(&mut rng, d, f, f)).collect();
            let data = MoeData {
                x: Array2::zeros((t, d)),
                gate,
                w1,
                w2,
            };
            ((Array2::zeros((0, 0)), Array2::zeros((0, 0))), Some(data))
        } else {
            (
                (weights(&mut rng, d, f, d), weights(&mut rng, f, d, f)),
                None,
            )
        };
        BlockData {
            x,
            norms,
            wqkv,
            wo,
            mlp,
            moe,
        }
    }
}

/// The value of one code with `frac` fractional bits.
pub fn lsb(frac: u32) -> f64 {
    (-f64::from(frac)).exp2()
}

/// What one stage of the block measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    /// The block stage (`ln1`, `qkv`, `attention`, ...).
    pub stage: String,
    /// The kernel that runs it.
    pub kernel: String,
    /// The kernel's cycle model (with the linear kernel, its table load included).
    pub model_cycles: u64,
    /// Verilator's count, when simulated.
    pub cycles: Option<u64>,
    /// Output elements compared with the kernel's golden model (0 when not simulated).
    pub outputs_checked: u64,
    /// Elements that differed.
    pub mismatches: u64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// DSP slices of the kernel (its resource model: the DSP48E1 count, exact against Yosys,
    /// an upper bound on DSP48E2).
    pub dsp: Option<u64>,
    /// Largest absolute error of the stage's output against the float64 block.
    pub err_max: f64,
    /// Mean absolute error against the float64 block.
    pub err_mean: f64,
    /// The output's resolution (one LSB), to read the errors against.
    pub lsb: f64,
    /// MoE: tokens whose fixed-point gate picks other experts than the float gate (their
    /// outputs differ by whole expert outputs: the largest errors).
    pub routing_differs: Option<u64>,
    /// Wall time of the stage's simulation, seconds.
    pub sim_seconds: f64,
}

/// The whole block.
#[derive(Debug, Clone, Serialize)]
pub struct BlockReport {
    /// The parameters.
    pub params: BlockParams,
    /// Every stage, in order.
    pub stages: Vec<StageReport>,
    /// The block's cycles with the kernels in turn, from the models.
    pub model_cycles: u64,
    /// The same from Verilator, when simulated.
    pub cycles: Option<u64>,
    /// The busiest kernel's cycles: the block interval when successive blocks (images)
    /// overlap, each kernel on its own engine.
    pub pipelined_cycles: u64,
    /// Which kernel that is.
    pub busiest_kernel: String,
    /// Mismatches over every stage.
    pub mismatches: u64,
    /// Output elements compared over every stage.
    pub outputs_checked: u64,
    /// The block's output `s2` (residual codes).
    #[serde(skip)]
    pub output: Array2<i64>,
}

fn kerr(stage: &str, e: impl std::fmt::Display) -> BlockError {
    BlockError::Kernel {
        stage: stage.into(),
        msg: e.to_string(),
    }
}

/// A stage's report before its error against float is known.
fn stage(name: &str, kernel: &str, model_cycles: u64, macs: u64, dsp: Option<u64>) -> StageReport {
    StageReport {
        stage: name.into(),
        kernel: kernel.into(),
        model_cycles,
        cycles: None,
        outputs_checked: 0,
        mismatches: 0,
        macs,
        dsp,
        err_max: 0.0,
        err_mean: 0.0,
        lsb: 0.0,
        routing_differs: None,
        sim_seconds: 0.0,
    }
}

/// Records a stage's simulation: Verilator's cycles, what it compared, and the wall time since
/// `t0`.
fn simulated(rep: &mut StageReport, (cycles, checked, mismatches): (u64, u64, u64), t0: Instant) {
    rep.cycles = Some(cycles);
    rep.outputs_checked = checked;
    rep.mismatches = mismatches;
    rep.sim_seconds = t0.elapsed().as_secs_f64();
}

/// How to run the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Golden models and cycle models only.
    Models,
    /// Every kernel in Verilator too, checked against its golden model.
    Verilator,
}

struct Chain<'a> {
    p: &'a BlockParams,
    mode: Mode,
    opts: BuildOptions,
    stages: Vec<StageReport>,
}

impl Chain<'_> {
    fn layernorm(
        &mut self,
        name: &str,
        x: &Array2<i64>,
        res: Option<&Array2<i64>>,
        (gamma, beta): &(Vec<i64>, Vec<i64>),
    ) -> Result<LayerNormOut> {
        let r = self
            .p
            .layernorm(res.is_some())
            .resolve()
            .map_err(|e| kerr(name, e))?;
        let data = LayerNormData {
            x: x.clone(),
            res: res.cloned(),
            gamma: gamma.clone(),
            beta: beta.clone(),
        };
        let want = data.golden(&r).map_err(|e| kerr(name, e))?;
        let tokens = x.nrows() as u64;
        let mut rep = stage(
            name,
            "layernorm",
            crate::layernorm::cost::cycles(&r, tokens),
            0,
            Some(crate::layernorm::cost::dsps(
                &r,
                accelforge_hdl::tools::Family::Xc7,
            )),
        );
        if self.mode == Mode::Verilator {
            let t0 = Instant::now();
            let s = crate::layernorm::sim::simulate_against(
                &r,
                &data,
                &want,
                Stalls::default(),
                &self.opts,
            )
            .map_err(|e| kerr(name, e))?;
            simulated(&mut rep, (s.cycles, s.outputs_checked, s.mismatches), t0);
        }
        self.stages.push(rep);
        Ok(want)
    }

    /// `a · b` on the linear kernel: `a` has `in_frac` fractional bits, the outputs
    /// `out_frac`, clamped to `[lo, hi]`.
    fn gemm(
        &mut self,
        name: &str,
        (a, in_frac): (&Array2<i64>, u32),
        b: &Array2<i64>,
        out_frac: u32,
        (lo, hi): (i32, i32),
    ) -> Result<Array2<i64>> {
        let shift = in_frac + WEIGHT_FRAC - out_frac;
        let p = self.p.linear();
        let r = p.resolve().map_err(|e| kerr(name, e))?;
        let g = Gemm {
            m: a.nrows() as u32,
            k: a.ncols() as u32,
            n: b.ncols() as u32,
        };
        let table = vec![(1i64, 0i64); g.n as usize];
        let cfg = RqConfig {
            shift,
            round_even: true,
            lo,
            hi,
        };
        let want = requant::gemm_per_channel(&r, a, b, &table, &cfg).map_err(|e| kerr(name, e))?;
        let cycles = crate::systolic::cost::cycles(&p, &g)
            .map_err(|e| kerr(name, e))?
            .cycles
            + requant::table_load_cycles(&r, g.n).map_err(|e| kerr(name, e))?;
        let dsp = crate::systolic::cost::resources(&p)
            .map_err(|e| kerr(name, e))?
            .dsp;
        let mut rep = stage(name, "systolic", cycles, g.macs(), Some(dsp));
        if self.mode == Mode::Verilator {
            let opts = SimOptions {
                seed: 0,
                backpressure: 0.0,
                trace: None,
            };
            let t0 = Instant::now();
            let (pc, got) = run_per_channel_gemm(&p, &g, (a, b), (&table, &cfg), &opts)
                .map_err(|e| kerr(name, e))?;
            if got.as_ref() != Some(&want) && pc.gemm.mismatches == 0 {
                return Err(kerr(
                    name,
                    "the returned outputs differ from the golden model",
                ));
            }
            simulated(
                &mut rep,
                (
                    pc.table_cycles + pc.gemm.cycles,
                    pc.gemm.outputs_checked,
                    pc.gemm.mismatches,
                ),
                t0,
            );
        }
        self.stages.push(rep);
        Ok(want)
    }

    fn attention(&mut self, name: &str, qkv: &Array2<i64>) -> Result<Array2<i64>> {
        let r = self.p.attention().resolve().map_err(|e| kerr(name, e))?;
        let (d, hd) = (self.p.d_model as usize, r.p.head_dim as usize);
        let heads = (0..self.p.heads as usize)
            .map(|h| {
                let cols = |base: usize| qkv.slice(s![.., base + h * hd..base + (h + 1) * hd]);
                [
                    cols(0).to_owned(),
                    cols(d).to_owned(),
                    cols(2 * d).to_owned(),
                ]
            })
            .collect();
        let data = AttentionData { heads };
        let outs = data.golden(&r).map_err(|e| kerr(name, e))?;
        let mut o = Array2::zeros((self.p.tokens as usize, d));
        for (h, oh) in outs.iter().enumerate() {
            o.slice_mut(s![.., h * hd..(h + 1) * hd]).assign(oh);
        }
        let mut rep = stage(
            name,
            "attention",
            crate::attention::cost::cycles(&r),
            crate::attention::cost::macs(&r),
            Some(crate::attention::cost::resources(&r).dsp),
        );
        if self.mode == Mode::Verilator {
            let t0 = Instant::now();
            let s = crate::attention::sim::simulate_against(
                &r,
                &data,
                &outs,
                Stalls::default(),
                &self.opts,
            )
            .map_err(|e| kerr(name, e))?;
            simulated(&mut rep, (s.cycles, s.outputs_checked, s.mismatches), t0);
        }
        self.stages.push(rep);
        Ok(o)
    }

    /// The activation unit over the hidden layer.
    fn activation(&mut self, name: &str, h: &Array2<i64>) -> Result<Array2<i64>> {
        let u = self.p.gelu();
        let want = crate::units::act_stream::golden(&u, h).map_err(|e| kerr(name, e))?;
        let beats = (h.len() / u.lanes as usize) as u64;
        let mut rep = stage(
            name,
            "activation",
            crate::units::act_stream::cycles(beats),
            0,
            Some(0),
        );
        if self.mode == Mode::Verilator {
            let t0 = Instant::now();
            let s = crate::units::act_stream::simulate_against(
                &u,
                h,
                &want,
                Stalls::default(),
                &self.opts,
            )
            .map_err(|e| kerr(name, e))?;
            simulated(&mut rep, (s.cycles, s.outputs_checked, s.mismatches), t0);
        }
        self.stages.push(rep);
        Ok(want)
    }

    /// The MoE FFN; also each token's experts (sorted).
    fn moe(&mut self, name: &str, data: &MoeData) -> Result<(Array2<i64>, Vec<Vec<usize>>)> {
        let p = self.p.moe().expect("an MoE block");
        let source = WeightSource::with_latency(0);
        let golden = moe::model::golden(&p, data, true).map_err(|e| kerr(name, e))?;
        let model = moe::cost::cycles_with(&p, &golden.routing.load_shape(), source)
            .map_err(|e| kerr(name, e))?;
        let kept = golden.routing.kept.iter().filter(|&&k| k).count() as u64;
        let (t, d, f, e) = (
            u64::from(p.tokens),
            u64::from(p.d_model),
            u64::from(p.d_ff),
            u64::from(p.experts),
        );
        let macs = t * e * d + kept * 2 * d * f;
        let dsp = moe::cost::resources(&p).map_err(|e| kerr(name, e))?.dsp;
        let mut rep = stage(name, "moe", model.cycles, macs, Some(dsp));
        if self.mode == Mode::Verilator {
            let t0 = Instant::now();
            let o = moe::sim::simulate(
                &p,
                data,
                true,
                source,
                moe::tb::Stalls::default(),
                &self.opts,
            )
            .map_err(|e| kerr(name, e))?;
            simulated(
                &mut rep,
                (o.run.cycles, o.check.outputs_checked, o.check.mismatches),
                t0,
            );
        }
        self.stages.push(rep);
        let selected = golden
            .routing
            .selected
            .rows()
            .into_iter()
            .map(|r| {
                let mut v: Vec<usize> = r.iter().map(|&e| e as usize).collect();
                v.sort_unstable();
                v
            })
            .collect();
        Ok((golden.outputs, selected))
    }
}

/// Runs the block on `data`: every kernel's golden model (and, with [`Mode::Verilator`], its
/// simulation, checked against it), the float64 block for the errors, and the cycle totals.
pub fn run(p: &BlockParams, data: &BlockData, mode: Mode) -> Result<BlockReport> {
    p.validate()?;
    p.check_golden_size()?;
    let mut c = Chain {
        p,
        mode,
        opts: BuildOptions::default(),
        stages: Vec::new(),
    };
    let act = (-128, 127);
    let relu = (0, 127);
    let resid = (-32768, 32767);
    let ln1 = c.layernorm("ln1", &data.x, None, &data.norms[0])?;
    let qkv = c.gemm("qkv", (&ln1.y, NORM_FRAC), &data.wqkv, ACT_FRAC, act)?;
    let att = c.attention("attention", &qkv)?;
    let proj = c.gemm("proj", (&att, ACT_FRAC), &data.wo, RESIDUAL_FRAC, resid)?;
    let an1 = c.layernorm("add_ln2", &data.x, Some(&proj), &data.norms[1])?;
    let mut selected = Vec::new();
    let mut pre_activation = None;
    let (hidden, ffn) = match &data.moe {
        Some(m) => {
            let mut m = m.clone();
            m.x = an1.y.clone();
            let (f, sel) = c.moe("moe", &m)?;
            selected = sel;
            (None, f)
        }
        None => {
            let h = match p.activation {
                FfnActivation::Relu => {
                    c.gemm("fc1", (&an1.y, NORM_FRAC), &data.mlp.0, ACT_FRAC, relu)?
                }
                FfnActivation::Gelu => {
                    let pre = c.gemm("fc1", (&an1.y, NORM_FRAC), &data.mlp.0, ACT_FRAC, act)?;
                    pre_activation = Some(pre.clone());
                    c.activation("gelu", &pre)?
                }
            };
            let f = c.gemm("fc2", (&h, ACT_FRAC), &data.mlp.1, RESIDUAL_FRAC, resid)?;
            (Some(h), f)
        }
    };
    let an2 = c.layernorm("add_ln", &an1.s, Some(&ffn), &data.norms[2])?;

    // Errors against the float64 block.
    let fl = reference::float_block(p, data);
    let mut fixed: Vec<(&Array2<i64>, u32, &Array2<f64>)> = vec![
        (&ln1.y, NORM_FRAC, &fl.ln1),
        (&qkv, ACT_FRAC, &fl.qkv),
        (&att, ACT_FRAC, &fl.attention),
        (&proj, RESIDUAL_FRAC, &fl.proj),
        (&an1.y, NORM_FRAC, &fl.ln2),
    ];
    if let Some(pre) = &pre_activation {
        fixed.push((pre, ACT_FRAC, &fl.pre_activation));
    }
    if let Some(h) = &hidden {
        fixed.push((h, ACT_FRAC, &fl.hidden));
    }
    fixed.push((&ffn, RESIDUAL_FRAC, &fl.ffn));
    fixed.push((&an2.s, RESIDUAL_FRAC, &fl.out));
    for (rep, &(codes, frac, want)) in c.stages.iter_mut().zip(&fixed) {
        let (max, mean) = reference::error(codes, lsb(frac), want);
        rep.err_max = max;
        rep.err_mean = mean;
        rep.lsb = lsb(frac);
    }
    if let Some(rep) = c.stages.iter_mut().find(|s| s.kernel == "moe") {
        rep.routing_differs = Some(
            selected
                .iter()
                .zip(&fl.selected)
                .filter(|(a, b)| a != b)
                .count() as u64,
        );
    }
    let stages = c.stages;
    let model_cycles = stages.iter().map(|s| s.model_cycles).sum();
    let cycles = stages.iter().map(|s| s.cycles).sum::<Option<u64>>();
    let mut per_kernel: Vec<(String, u64)> = Vec::new();
    for s in &stages {
        match per_kernel.iter_mut().find(|(k, _)| *k == s.kernel) {
            Some((_, c)) => *c += s.model_cycles,
            None => per_kernel.push((s.kernel.clone(), s.model_cycles)),
        }
    }
    let (busiest_kernel, pipelined_cycles) = per_kernel
        .into_iter()
        .max_by_key(|(_, c)| *c)
        .expect("stages");
    Ok(BlockReport {
        params: p.clone(),
        model_cycles,
        cycles,
        pipelined_cycles,
        busiest_kernel,
        mismatches: stages.iter().map(|s| s.mismatches).sum(),
        outputs_checked: stages.iter().map(|s| s.outputs_checked).sum(),
        stages,
        output: an2.s,
    })
}
