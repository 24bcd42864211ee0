//! The RTL engine of `accelforge run`: every array layer of the network runs on the systolic
//! template in Verilator, on the real weights and on the previous layer's outputs as the
//! hardware produced them; host stages (input quantizer, pooling) run in Rust.
//!
//! The array is configured to stream out its exact accumulators (output type = accumulator
//! type) and the per-channel requantization of each layer is applied to them on the host: the
//! systolic template has no per-channel requantizer yet. What this engine checks in RTL is
//! therefore every multiply-accumulate of the network, the operand/result streaming and the
//! cycle counts; the requantization is the golden engine's own.

use std::path::Path;

use accelforge_boards::BoardDb;
use accelforge_mapper::{
    Formulation, MapOptions, Method, SearchSpace, Solver, SystolicTemplateModel, map,
};
use accelforge_models::{IntNetwork, Stage};
use accelforge_templates::systolic::SystolicParams;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::sim::{SimOptions, run_gemm_with_outputs};
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
/// and accumulator types fitted to the network.
pub fn setup(
    net: &IntNetwork,
    workload_toml: &str,
    board: Option<&str>,
    params_file: Option<&Path>,
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
        });
    }
    let name = board.unwrap_or("pynq-z2");
    let db = BoardDb::load(None).context("loading the board database")?;
    let board = db.get(name)?;
    let workload = accelforge_mapper::workload::parse_workload(workload_toml, "workload", "model")
        .context("the imported workload")?;
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
    let report = map(
        &SystolicTemplateModel::for_workload(&workload),
        &workload,
        board,
        &opts,
    )
    .with_context(|| format!("mapping the network onto {name}"))?;
    let mut params: SystolicParams = serde_json::from_value(report.params.clone())
        .context("the mapper's configuration is not a systolic params object")?;
    fit_types(net, &mut params)?;
    Ok(RtlSetup {
        params,
        source: format!("board {name} (mapped, overlay)"),
        clock_mhz: report.clock_mhz,
    })
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

/// Integer operand types wide enough for the network, the narrowest accumulator that holds
/// every dot product exactly, and that accumulator as the output (no requantization in the
/// array); the stream is widened if an accumulator would not fit in one beat.
fn fit_types(net: &IntNetwork, p: &mut SystolicParams) -> anyhow::Result<()> {
    let (act, wts, max_k) = operand_ranges(net);
    p.input_type = int_type(act);
    p.weight_type = int_type(wts);
    p.max_k = p.max_k.max(max_k);
    p.relu = false;
    for width in 2..=64u32 {
        p.acc_type = format!("ap_fixed<{width},{width}>");
        p.output_type = p.acc_type.clone();
        p.stream_bits = p.stream_bits.max(width.div_ceil(8) * 8);
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
    anyhow::ensure!(
        p.output_type == p.acc_type && !p.relu,
        "the RTL engine reads the array's accumulators (the per-channel requantization runs on \
         the host until the array has its own): set output_type = acc_type ({}) and relu = false",
        p.acc_type
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
    for (si, st) in net.stages.iter().enumerate() {
        if !st.is_array() {
            for (i, c) in cur.iter_mut().enumerate() {
                *c = st
                    .run_host(&x[i * per..(i + 1) * per], c)
                    .context("host stage")?;
            }
            continue;
        }
        let (acc, stats) = array_layer(st, &cur, setup, si)?;
        for (i, c) in cur.iter_mut().enumerate() {
            *c = st.requantize(&acc[i]).context("requantization")?;
        }
        layers.push((si, stats));
        on_layer(si);
    }
    Ok(RtlRun {
        outputs: cur.iter().flat_map(|q| net.dequantize(q)).collect(),
        layers,
    })
}

/// One array layer for the whole batch: the samples' GEMM rows stacked (M = batch × rows per
/// sample), split into commands of at most 65,535 rows; returns each sample's accumulators.
fn array_layer(
    st: &Stage,
    cur: &[Vec<i32>],
    setup: &RtlSetup,
    stage_index: usize,
) -> anyhow::Result<(Vec<Vec<i64>>, LayerRun)> {
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
        let (report, c) = run_gemm_with_outputs(&setup.params, &g, &a, &b, &opts)
            .with_context(|| format!("layer {stage_index}: {g} in Verilator"))?;
        let c = c.with_context(|| {
            format!("layer {stage_index}: the array's output stream could not be unpacked")
        })?;
        out.extend(c.iter().copied());
        stats.cycles += report.cycles;
        stats.model_cycles += report.model_cycles;
        stats.mismatches += report.mismatches;
        stats.commands += 1;
        start += take;
    }
    let per_sample = out.chunks(m * n_out).map(<[i64]>::to_vec).collect();
    Ok((per_sample, stats))
}
