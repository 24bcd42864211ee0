//! The demo's model stage: a quantized CNN trained on scikit-learn's 8×8 digits (the committed
//! fixture `cnn_w8a8_pow2.onnx`, QONNX, made by scripts/make_model_fixtures.py) imported, mapped
//! onto PYNQ-Z2, the held-out split run through the array in Verilator, accuracy printed next
//! to the golden engine's and the float model's, and the array's Zynq bundle written.

use std::path::Path;

use accelforge_models::IntNetwork;
use anyhow::{Context, ensure};
use ndarray::{Array1, ArrayD};
use ndarray_npy::ReadNpyExt as _;
use serde::Serialize;

use super::import::{layer_rows, layer_table, workload_toml};
use super::run_rtl;

const MODEL_NAME: &str = "cnn_w8a8_pow2.onnx";
const MODEL: &[u8] = include_bytes!("../../models/tests/fixtures/cnn_w8a8_pow2.onnx");
const DIGITS_X: &[u8] = include_bytes!("../../models/tests/fixtures/digits_x.npy");
const DIGITS_Y: &[u8] = include_bytes!("../../models/tests/fixtures/digits_y.npy");
const MANIFEST: &str = include_str!("../../models/tests/fixtures/manifest.json");
const BOARD: &str = "pynq-z2";

#[derive(Debug, Serialize)]
struct DigitsSummary {
    model: &'static str,
    board: &'static str,
    inputs: usize,
    params: accelforge_templates::systolic::SystolicParams,
    layers: Vec<DigitsLayer>,
    total_cycles: u64,
    latency_ms: f64,
    mismatches: u64,
    accuracy_rtl: f64,
    accuracy_golden: f64,
    accuracy_float: f64,
}

#[derive(Debug, Serialize)]
struct DigitsLayer {
    name: String,
    gemm: [u64; 3],
    cycles: u64,
    model_cycles: u64,
    mismatches: u64,
}

pub fn digits_stage(out: &Path, step: &str) -> anyhow::Result<()> {
    let dir = out.join("digits-cnn");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let net: IntNetwork = accelforge_models::load(MODEL, None).context("the demo model")?;
    let rows = layer_rows(&net);
    accelforge_hdl::write_atomic(&dir.join(MODEL_NAME), MODEL)?;
    accelforge_hdl::write_atomic(
        &dir.join("layers.txt"),
        (layer_table(&rows) + "\n").as_bytes(),
    )?;
    let toml = workload_toml(&net, "digits-cnn", MODEL_NAME);
    accelforge_hdl::write_atomic(&dir.join("workload.toml"), toml.as_bytes())?;
    println!(
        "[{step}] the digits CNN ({MODEL_NAME}, QONNX, 8-bit): imported ({} layers, {} MACs per inference) -> {}",
        rows.len(),
        net.macs(),
        dir.join("layers.txt").display()
    );

    let manifest: serde_json::Value = serde_json::from_str(MANIFEST)?;
    let n_train = manifest["n_train"].as_u64().context("manifest n_train")? as usize;
    let float_accuracy = manifest["float_cnn"]["accuracy"]
        .as_f64()
        .context("manifest float accuracy")?;
    let x = ArrayD::<f32>::read_npy(DIGITS_X).context("the demo inputs")?;
    let y = Array1::<i64>::read_npy(DIGITS_Y).context("the demo labels")?;
    let per = net.input_len();
    let flat = x.as_slice().context("contiguous inputs")?;
    let held_out = &flat[n_train * per..];
    let labels = &y.as_slice().context("contiguous labels")?[n_train..];

    let setup = run_rtl::setup(&net, &toml, (Some(BOARD), None), None, labels.len() as u64)?;
    let rtl = run_rtl::run(&net, &setup, held_out, per, |_| {})?;
    let golden: Vec<f32> = held_out
        .chunks(per)
        .map(|xi| net.run(xi))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let output_mismatches = rtl
        .outputs
        .iter()
        .zip(&golden)
        .filter(|(a, b)| a != b)
        .count() as u64;
    let mut layers = Vec::new();
    for (si, r) in &rtl.layers {
        let row = &rows[*si];
        ensure!(
            r.cycles == r.model_cycles,
            "digits CNN layer {}: Verilator {} cycles, model {}",
            row.name,
            r.cycles,
            r.model_cycles
        );
        layers.push(DigitsLayer {
            name: row.name.clone(),
            gemm: row.gemm.unwrap_or_default(),
            cycles: r.cycles,
            model_cycles: r.model_cycles,
            mismatches: r.mismatches,
        });
    }
    let mismatches = output_mismatches + layers.iter().map(|l| l.mismatches).sum::<u64>();
    ensure!(
        mismatches == 0,
        "the digits CNN in RTL differs from the golden engine in {mismatches} values"
    );
    let total_cycles: u64 = layers.iter().map(|l| l.cycles).sum();
    let summary = DigitsSummary {
        model: MODEL_NAME,
        board: BOARD,
        inputs: labels.len(),
        params: setup.params.clone(),
        total_cycles,
        latency_ms: total_cycles as f64 / (setup.clock_mhz * 1e3),
        mismatches,
        accuracy_rtl: accelforge_models::top1_accuracy(&rtl.outputs, net.out_len, labels),
        accuracy_golden: accelforge_models::top1_accuracy(&golden, net.out_len, labels),
        accuracy_float: float_accuracy,
        layers,
    };
    accelforge_hdl::write_atomic(
        &dir.join("run.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    println!(
        "      {BOARD}: {}x{} array ({} x {}); {} held-out digits in Verilator: {} cycles = model ({:.3} ms at {} MHz), {} mismatches against golden",
        setup.params.rows,
        setup.params.cols,
        setup.params.input_type,
        setup.params.weight_type,
        summary.inputs,
        total_cycles,
        summary.latency_ms,
        setup.clock_mhz,
        mismatches
    );
    println!(
        "      accuracy: RTL {:.2}%, golden {:.2}%, float model {:.2}% -> {}",
        100.0 * summary.accuracy_rtl,
        100.0 * summary.accuracy_golden,
        100.0 * summary.accuracy_float,
        dir.join("run.json").display()
    );

    let bundle_dir = dir.join("bundle");
    let written = super::gen_model::write(&super::gen_model::GenModelArgs {
        model: dir.join(MODEL_NAME),
        board: BOARD.into(),
        boards_dir: None,
        clock_mhz: None,
        out: bundle_dir.clone(),
        input_type: None,
        mixed: None,
        force: true,
        allow_over_budget: false,
        json: false,
    })?;
    println!(
        "      its Zynq bundle with the network package (network.py runs all {} layers through the PYNQ driver, the array requantizing per channel as in the run above): {} files in {}",
        rows.len(),
        written.manifest.files.len(),
        bundle_dir.display()
    );
    Ok(())
}
