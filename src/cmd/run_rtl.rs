//! The RTL engine of `accelforge run`: every array layer of the network runs on the systolic
//! template in Verilator, on the real weights and on the previous layer's outputs as the
//! hardware produced them; host stages (input quantizer, pooling) run in Rust.
//!
//! The array requantizes per output channel itself (`requant = per_channel`): per layer the
//! host loads the layer's multiplier/offset table (its exact multiply-and-shift form with ReLU
//! and the zero point folded in, `IntNetwork::folded_forms`) with a table-load command, then
//! runs the GEMM with the layer's shift, rounding and clamp; the array's outputs are the
//! layer's integers. Each layer's outputs are also compared with the golden engine's
//! requantization of the exact accumulators (`Stage::requantize`).

use std::path::Path;

use accelforge_boards::BoardDb;
use accelforge_mapper::workload::{GemmShape, LayerOp, Workload};
use accelforge_mapper::{
    Formulation, MapOptions, Method, SearchSpace, Solver, SystolicTemplateModel, map,
};
use accelforge_models::{FoldedMulShift, IntNetwork, Stage};
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::requant::RqConfig;
use accelforge_templates::systolic::sim::{SimOptions, run_per_channel_gemm};
use accelforge_templates::systolic::{Dataflow, RequantMode, SystolicParams};
use anyhow::Context;
use ndarray::Array2;
use serde::Serialize;

/// The hardware the array layers run on.
#[derive(Debug, Clone, Serialize)]
pub struct RtlSetup {
    pub params: SystolicParams,
    /// `board pynq-z2 (mapped)` or `params FILE`.
    pub source: String,
    pub clock_mhz: f64,
    /// Array layers (stage index) that run on another engine than `params` (mixed precision:
    /// one engine per operand width).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layer_params: Vec<(usize, SystolicParams)>,
}

impl RtlSetup {
    /// The engine that runs stage `stage`.
    pub fn params_for(&self, stage: usize) -> &SystolicParams {
        self.layer_params
            .iter()
            .find(|(s, _)| *s == stage)
            .map_or(&self.params, |(_, p)| p)
    }
}

/// What Verilator measured for one array layer over the whole batch.
#[derive(Debug, Clone, Default)]
pub struct LayerRun {
    pub cycles: u64,
    pub model_cycles: u64,
    /// Output elements that differ from the template's golden GEMM (plus stream errors).
    pub mismatches: u64,
    /// GEMM commands issued (the batch is split where M would exceed a command's 16 bits).
    pub commands: u64,
}

/// A batch through the network on the RTL engine.
#[derive(Debug, Clone)]
pub struct RtlRun {
    /// Output floats, n × out_len.
    pub outputs: Vec<f32>,
    /// Per array layer (its stage index): what Verilator measured.
    pub layers: Vec<(usize, LayerRun)>,
}

/// Largest M of one array command (16-bit command field).
const MAX_COMMAND_ROWS: usize = 65_535;

/// Chooses the array: the mapper's configuration for `board`, or a params.json, with operand
/// and accumulator types fitted to the network and the per-channel requantizer it needs.
pub fn setup(
    net: &IntNetwork,
    workload_toml: &str,
    (board, boards_dir): (Option<&str>, Option<&Path>),
    params_file: Option<&Path>,
    batch: u64,
) -> anyhow::Result<RtlSetup> {
    if let Some(path) = params_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let params: SystolicParams = serde_json::from_str(&text)
            .with_context(|| format!("reading {} as systolic params", path.display()))?;
        params
            .validate()
            .with_context(|| format!("{}: invalid systolic params", path.display()))?;
        check_fits(net, &params).with_context(|| format!("{}", path.display()))?;
        return Ok(RtlSetup {
            params,
            source: format!("params {}", path.display()),
            clock_mhz: 100.0,
            layer_params: Vec::new(),
        });
    }
    let name = board.unwrap_or("pynq-z2");
    let db = BoardDb::load(boards_dir).context("loading the board database")?;
    let board = db.get(name)?;
    let workload = accelforge_mapper::workload::parse_workload(workload_toml, "workload", "model")
        .context("the imported workload")?;
    let workload = batched(&workload, batch);
    let opts = MapOptions {
        formulation: Formulation::Overlay,
        method: Method::Ilp {
            solver: Solver::Cbc,
            time_limit: Some(60.0),
        },
        space: SearchSpace::for_board(board),
        clock_mhz: None,
        prune: true,
    };
    // Price the candidates as they will be built: the network's operand types and the
    // per-channel requantizer (its DSPs and tables count against the board).
    let mut base = SystolicParams::default();
    fit_types(net, &mut base)?;
    let model = SystolicTemplateModel::for_workload(&workload).with_base(base);
    let report = map(&model, &workload, board, &opts)
        .with_context(|| format!("mapping the network onto {name}"))?;
    let mut params: SystolicParams = serde_json::from_value(report.params.clone())
        .context("the mapper's configuration is not a systolic params object")?;
    fit_types(net, &mut params)?;
    Ok(RtlSetup {
        params,
        source: format!("board {name} (mapped, overlay)"),
        clock_mhz: report.clock_mhz,
        layer_params: Vec::new(),
    })
}

/// The workload as [`run`] executes it on `batch` inputs: each layer's GEMM with the batch
/// stacked into M, split into commands of at most 65,535 rows (priced as equal ones). The
/// mapper then minimises the cycles of the run itself; for one input it is the one-inference
/// workload.
pub fn batched(workload: &Workload, batch: u64) -> Workload {
    let mut out = workload.clone();
    if batch <= 1 {
        return out;
    }
    for layer in &mut out.layers {
        if !layer.is_gemm_like() {
            continue;
        }
        let lowered = layer.lower();
        let rows = lowered.gemm.m.saturating_mul(batch);
        let commands = rows.div_ceil(MAX_COMMAND_ROWS as u64).max(1);
        layer.op = LayerOp::Gemm(GemmShape {
            m: rows.div_ceil(commands),
            ..lowered.gemm
        });
        layer.repeat = layer.repeat.saturating_mul(lowered.groups * commands);
    }
    out
}

/// Value ranges the array must carry: activations into array layers, weights, and the
/// largest reduction length.
fn operand_ranges(net: &IntNetwork) -> ((i64, i64), (i64, i64), u32) {
    let mut act = (0i64, 0i64);
    let mut wts = (0i64, 0i64);
    let mut max_k = 1u32;
    for l in net.layers().iter().filter(|l| l.runs_on == "array") {
        let (a, w) = (
            l.in_range.unwrap_or((0, 0)),
            l.weight_range.unwrap_or((0, 0)),
        );
        act = (act.0.min(a.0), act.1.max(a.1));
        wts = (wts.0.min(w.0), wts.1.max(w.1));
        if let Some((_, k, _)) = l.gemm() {
            max_k = max_k.max(u32::try_from(k).unwrap_or(u32::MAX));
        }
    }
    (act, wts, max_k)
}

fn int_type((lo, hi): (i64, i64)) -> String {
    let name = super::import::int_type_name((lo, hi));
    match name.strip_prefix("uint") {
        Some(w) => format!("ap_ufixed<{w},{w}>"),
        None => format!("ap_fixed<{0},{0}>", &name["int".len()..]),
    }
}

fn signed_bits(v: i64) -> u32 {
    65 - v.unsigned_abs().leading_zeros().min(64)
}

/// The per-channel requantizer the network needs (channels, multiplier and offset widths) and
/// the range of every array layer's output integers.
pub(crate) fn requant_needs(net: &IntNetwork) -> anyhow::Result<(RequantMode, (i64, i64))> {
    let (mut mul_bits, mut add_bits, mut chans) = (1u32, 1u32, 1usize);
    let mut out: Option<(i64, i64)> = None;
    for (si, f, ranges) in net.folded_forms() {
        let f = f.with_context(|| {
            format!(
                "layer {si}: no exact multiply-and-shift form for the array's per-channel \
                 requantizer"
            )
        })?;
        for &(m, a) in &f.chans {
            mul_bits = mul_bits.max(signed_bits(m));
            add_bits = add_bits.max(signed_bits(a));
        }
        chans = chans.max(ranges.len());
        out = Some(out.map_or((f.lo, f.hi), |(lo, hi)| (lo.min(f.lo), hi.max(f.hi))));
    }
    Ok((
        RequantMode::PerChannel {
            max_channels: u32::try_from(chans)?,
            mul_bits,
            add_bits,
        },
        out.unwrap_or((0, 0)),
    ))
}

/// Integer operand types wide enough for the network, the narrowest accumulator that holds
/// every dot product exactly, the per-channel requantizer the layers need, and the narrowest
/// integer output type covering every layer's output (output-stationary: the per-channel
/// requantizer lives in its drain).
fn fit_types(net: &IntNetwork, p: &mut SystolicParams) -> anyhow::Result<()> {
    let (act, wts, max_k) = operand_ranges(net);
    let (requant, out) = requant_needs(net)?;
    p.input_type = int_type(act);
    p.weight_type = int_type(wts);
    p.max_k = p.max_k.max(max_k);
    p.relu = false;
    p.dataflow = Dataflow::Os;
    p.requant = requant;
    p.output_type = int_type(out);
    for width in 2..=64u32 {
        p.acc_type = format!("ap_fixed<{width},{width}>");
        if p.validate().is_ok() {
            return Ok(());
        }
    }
    p.validate()
        .context("no accumulator up to 64 bits holds this network's dot products")
}

/// A params file must carry the network's values exactly and stream the accumulators out.
fn check_fits(net: &IntNetwork, p: &SystolicParams) -> anyhow::Result<()> {
    let r = p.resolve()?;
    let (act, wts, max_k) = operand_ranges(net);
    let holds = |t: &accelforge_templates::qfx::QType, (lo, hi): (i64, i64)| {
        t.frac_bits() == 0 && t.contains_raw(i128::from(lo)) && t.contains_raw(i128::from(hi))
    };
    anyhow::ensure!(
        holds(&r.ta, act),
        "input_type {} cannot hold the network's activations {act:?} as integers; use {}",
        p.input_type,
        int_type(act)
    );
    anyhow::ensure!(
        holds(&r.tb, wts),
        "weight_type {} cannot hold the network's weights {wts:?} as integers; use {}",
        p.weight_type,
        int_type(wts)
    );
    anyhow::ensure!(
        p.max_k >= max_k,
        "max_k {} is below the network's largest reduction length {max_k}",
        p.max_k
    );
    let (need, out) = requant_needs(net)?;
    let RequantMode::PerChannel {
        max_channels: need_ch,
        mul_bits: need_mul,
        add_bits: need_add,
    } = need
    else {
        anyhow::bail!("internal: requant_needs returns per_channel");
    };
    let fits = matches!(p.requant, RequantMode::PerChannel { max_channels, mul_bits, add_bits }
        if max_channels >= need_ch && mul_bits >= need_mul && add_bits >= need_add);
    anyhow::ensure!(
        fits,
        "the RTL engine requantizes in the array: set \"requant\": {{\"per_channel\": \
         {{\"max_channels\": {need_ch}, \"mul_bits\": {need_mul}, \"add_bits\": {need_add}}}}} \
         (or larger)"
    );
    anyhow::ensure!(
        holds(&r.tout, out),
        "output_type {} cannot hold the layers' outputs {out:?}; use {}",
        p.output_type,
        int_type(out)
    );
    Ok(())
}

/// Runs `n` samples (`x`: n × per floats) through the network; returns the output floats
/// (n × out_len) and, per stage index of an array layer, what Verilator measured.
pub fn run(
    net: &IntNetwork,
    setup: &RtlSetup,
    x: &[f32],
    per: usize,
    mut on_layer: impl FnMut(usize),
) -> anyhow::Result<RtlRun> {
    let n = x.len() / per;
    let mut cur: Vec<Vec<i32>> = vec![Vec::new(); n];
    let mut layers = Vec::new();
    let mut forms = net.folded_forms().into_iter();
    for (si, st) in net.stages.iter().enumerate() {
        if !st.is_array() {
            for (i, c) in cur.iter_mut().enumerate() {
                *c = st
                    .run_host(&x[i * per..(i + 1) * per], c)
                    .context("host stage")?;
            }
            continue;
        }
        let form = match forms.next() {
            Some((fi, Some(f), _)) if fi == si => f,
            _ => anyhow::bail!("layer {si}: no per-channel requantization form"),
        };
        let (next, stats) = array_layer(st, &cur, setup, (si, &form))?;
        cur = next;
        layers.push((si, stats));
        on_layer(si);
    }
    Ok(RtlRun {
        outputs: cur.iter().flat_map(|q| net.dequantize(q)).collect(),
        layers,
    })
}

/// The stage's output order from its GEMM result (rows × channels, row-major): channel-major
/// for a convolution, as `Stage::requantize` orders it.
fn stage_order(st: &Stage, c: &[i64]) -> Vec<i32> {
    match st {
        Stage::Conv { geom: g, .. } => {
            let pixels = g.oh * g.ow;
            (0..g.o)
                .flat_map(|o| (0..pixels).map(move |p| c[p * g.o + o] as i32))
                .collect()
        }
        _ => c.iter().map(|&v| v as i32).collect(),
    }
}

/// One array layer for the whole batch: the layer's table loaded, then the samples' GEMM rows
/// stacked (M = batch × rows per sample), split into commands of at most 65,535 rows (each
/// run loads the table first); returns each sample's output integers (in the stage's order),
/// counting as mismatches those that differ from the golden requantization.
fn array_layer(
    st: &Stage,
    cur: &[Vec<i32>],
    setup: &RtlSetup,
    (stage_index, form): (usize, &FoldedMulShift),
) -> anyhow::Result<(Vec<Vec<i32>>, LayerRun)> {
    let (m, k, n_out) = st.gemm_shape().context("array stage")?;
    let b_flat = st.gemm_b().context("weights")?;
    let b = Array2::from_shape_vec((k, n_out), b_flat).context("weight matrix")?;
    let rows: Vec<i64> = cur
        .iter()
        .map(|c| st.gemm_a(c).context("operands"))
        .collect::<anyhow::Result<Vec<_>>>()?
        .concat();
    let total_rows = cur.len() * m;
    let mut out = Vec::with_capacity(total_rows * n_out);
    let mut stats = LayerRun::default();
    let mut start = 0;
    while start < total_rows {
        let take = (total_rows - start).min(MAX_COMMAND_ROWS);
        let a = Array2::from_shape_vec((take, k), rows[start * k..(start + take) * k].to_vec())
            .context("operand matrix")?;
        let g = Gemm {
            m: u32::try_from(take)?,
            k: u32::try_from(k)?,
            n: u32::try_from(n_out)?,
        };
        let opts = SimOptions {
            seed: stage_index as u64,
            ..SimOptions::default()
        };
        let cfg = RqConfig {
            shift: form.shift,
            round_even: form.round_even,
            lo: i32::try_from(form.lo)?,
            hi: i32::try_from(form.hi)?,
        };
        let (report, c) = run_per_channel_gemm(
            setup.params_for(stage_index),
            &g,
            (&a, &b),
            (&form.chans, &cfg),
            &opts,
        )
        .with_context(|| format!("layer {stage_index}: {g} in Verilator"))?;
        let c = c.with_context(|| {
            format!("layer {stage_index}: the array's output stream could not be unpacked")
        })?;
        // The golden engine's requantization of the exact accumulators, sample by sample.
        let acc = a.dot(&b);
        for (got, exact) in c
            .as_slice()
            .context("output matrix")?
            .chunks(m * n_out)
            .zip(acc.as_slice().context("accumulators")?.chunks(m * n_out))
        {
            let want = st.requantize(exact).context("requantization")?;
            stats.mismatches += stage_order(st, got)
                .iter()
                .zip(&want)
                .filter(|(x, y)| x != y)
                .count() as u64;
        }
        out.extend(c.iter().copied());
        // The table load is part of the layer's time on the array.
        stats.cycles += report.table_cycles + report.gemm.cycles;
        stats.model_cycles += report.table_model_cycles + report.gemm.model_cycles;
        stats.mismatches += report.gemm.mismatches;
        stats.commands += 1;
        start += take;
    }
    let per_sample = out.chunks(m * n_out).map(|c| stage_order(st, c)).collect();
    Ok((per_sample, stats))
}

/// What `run` and `gen` take from a `map MODEL.onnx --mixed-out` report.
pub struct Mixed {
    path: std::path::PathBuf,
    /// (quantizer name, chosen bits).
    pub widths: Vec<(String, u32)>,
    /// (layer names, the engine's params).
    pub engines: Vec<(Vec<String>, SystolicParams)>,
    pub clock_mhz: f64,
}

pub fn read_mixed(path: &std::path::Path) -> anyhow::Result<Mixed> {
    #[derive(serde::Deserialize)]
    struct Site {
        name: String,
        chosen_bits: u32,
    }
    #[derive(serde::Deserialize)]
    struct Engine {
        params: SystolicParams,
        layers: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Report {
        sites: Vec<Site>,
        engines: Vec<Engine>,
        clock_mhz: f64,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let r: Report = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a mixed-precision report (`map MODEL.onnx --mixed-out`)",
            path.display()
        )
    })?;
    anyhow::ensure!(!r.engines.is_empty(), "{}: no engine", path.display());
    Ok(Mixed {
        path: path.to_path_buf(),
        widths: r
            .sites
            .into_iter()
            .map(|s| (s.name, s.chosen_bits))
            .collect(),
        engines: r
            .engines
            .into_iter()
            .map(|e| (e.layers, e.params))
            .collect(),
        clock_mhz: r.clock_mhz,
    })
}

impl Mixed {
    /// Each array layer on the engine the report gives it.
    pub fn setup(&self, net: &IntNetwork) -> anyhow::Result<RtlSetup> {
        let rows = super::import::layer_rows(net);
        let mut layer_params = Vec::new();
        for (si, st) in net.stages.iter().enumerate() {
            if !st.is_array() {
                continue;
            }
            let name = &rows[si].name;
            let (_, params) = self
                .engines
                .iter()
                .find(|(layers, _)| layers.contains(name))
                .with_context(|| {
                    format!(
                        "{}: no engine runs array layer `{name}` (the report is for another \
                         model?)",
                        self.path.display()
                    )
                })?;
            params
                .validate()
                .with_context(|| format!("{}: engine of `{name}`", self.path.display()))?;
            layer_params.push((si, params.clone()));
        }
        Ok(RtlSetup {
            params: self.engines[0].1.clone(),
            source: format!("mixed {}", self.path.display()),
            clock_mhz: self.clock_mhz,
            layer_params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A convolution and a dense layer: the batch multiplies M (the output pixels or rows);
    /// a batch too large for one command is priced as equal commands of at most 65,535 rows.
    #[test]
    fn a_batched_workload_stacks_the_inputs_into_m() {
        let text = r#"
[[layer]]
kind = "conv2d"
name = "c"
h = 8
w = 8
c_in = 1
c_out = 8
kernel_h = 3
kernel_w = 3
pad = 1
[[layer]]
kind = "dense"
name = "d"
batch = 1
in_features = 128
out_features = 10
"#;
        let w = accelforge_mapper::workload::parse_workload(text, "t.toml", "t").unwrap();
        assert_eq!(batched(&w, 1), w);
        let b = batched(&w, 597);
        let gemm = |l: &accelforge_mapper::workload::Layer| l.lower().gemm;
        assert_eq!(
            (
                gemm(&b.layers[0]).m,
                gemm(&b.layers[0]).k,
                gemm(&b.layers[0]).n
            ),
            (64 * 597, 9, 8)
        );
        assert_eq!((gemm(&b.layers[1]).m, b.layers[1].repeat), (597, 1));
        // 64 × 2,000 rows = 128,000: two commands of 64,000.
        let big = batched(&w, 2000);
        assert_eq!((gemm(&big.layers[0]).m, big.layers[0].repeat), (64_000, 2));
    }
}
