//! `accelforge map MODEL.onnx --calib`: precision and engines chosen by one MILP, the choice
//! measured by the golden engine and run in Verilator on its engines (issue 18).

#![allow(clippy::unwrap_used)]

use crate::common::cli;

use std::path::Path;

use cli::{accelforge, refused, stderr};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The digits data: the first 1,200 inputs trained the fixtures, so calibration is the next
/// 300 and the last 297 are held out.
fn mixed(model: &str, extra: &[&str]) -> serde_json::Value {
    let (m, x, y) = (
        fixture(model),
        fixture("digits_x.npy"),
        fixture("digits_y.npy"),
    );
    let mut args = vec![
        "map", &m, "--board", "pynq-z2", "--calib", &x, "--labels", &y, "--skip", "1200",
        "--split", "300", "--space", "small", "--json",
    ];
    args.extend_from_slice(extra);
    let o = accelforge(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The MLP with widths 8/6/4/2 on PYNQ-Z2 within two points: the choice is measured within
/// budget on the calibration data, is faster than every quantizer at its exported 8 bits,
/// predicted cycles equal Verilator's and the model's, 0 mismatches.
#[test]
fn mixed_mlp_is_measured_and_runs_bit_exact_in_verilator() {
    let r = mixed("mlp_w8a8_pow2.onnx", &["--accuracy-drop", "2"]);
    assert!(f(&r, "calibration_loss") <= 0.02 + 1e-9, "{r}");
    assert!(f(&r, "predicted_cycles") < f(&r, "exported_cycles"), "{r}");
    let narrowed = r["sites"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["chosen_bits"] != s["exported_bits"])
        .count();
    assert!(narrowed > 0, "{r}");
    let rtl = &r["rtl"];
    assert_eq!(rtl["mismatches"], 0, "{r}");
    assert_eq!(rtl["inputs"], 297);
    assert_eq!(f(rtl, "cycles"), f(&r, "predicted_cycles"), "{r}");
    assert_eq!(rtl["cycles"], rtl["model_cycles"]);
    // At least the four operand quantizers are choices; the engines run both layers.
    let sites = r["sites"].as_array().unwrap();
    assert!(sites.len() >= 4, "{r}");
    let layers: usize = r["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["layers"].as_array().unwrap().len())
        .sum();
    assert_eq!(layers, 2);
    assert!(r["heldout"]["accuracy"].as_f64().unwrap() > 0.9, "{r}");
}

/// The joint MILP equals the exhaustive search over every width choice and configuration, on
/// the CNN (7 quantizers at 8 or 4 bits, one engine).
#[test]
fn mixed_milp_equals_exhaustive_on_the_cnn() {
    let common = [
        "--bits",
        "8,4",
        "--accuracy-drop",
        "3",
        "--formulation",
        "overlay",
        "--no-rtl",
    ];
    let milp = mixed("cnn_w8a8_pow2.onnx", &common);
    let mut ex_args = common.to_vec();
    ex_args.push("--exhaustive");
    let ex = mixed("cnn_w8a8_pow2.onnx", &ex_args);
    assert_eq!(milp["status"]["kind"], "optimal");
    assert_eq!(ex["status"]["kind"], "exhaustive");
    assert_eq!(f(&milp, "predicted_cycles"), f(&ex, "predicted_cycles"));
    assert!((f(&milp, "predicted_loss") - f(&ex, "predicted_loss")).abs() < 1e-9);
}

#[test]
fn mixed_refuses_bad_input_by_name() {
    let (m, x, y) = (
        fixture("mlp_w8a8_pow2.onnx"),
        fixture("digits_x.npy"),
        fixture("digits_y.npy"),
    );
    let base = ["map", &m, "--board", "pynq-z2", "--calib", &x];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run = |extra: &[&str], needles: &[&str]| {
        let args = with(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&refs, needles);
    };
    run(&["--split", "5000"], &["--split 5000", "1797 inputs"]);
    run(
        &["--accuracy-drop=-1"],
        &["--accuracy-drop", "0..=100", "-1"],
    );
    run(&["--accuracy-drop", "NaN"], &["--accuracy-drop", "NaN"]);
    run(&["--latency-ms", "0"], &["--latency-ms", "positive"]);
    let tmp = tempfile::tempdir().unwrap();
    run(
        &["--mixed-out", tmp.path().to_str().unwrap()],
        &["--mixed-out", "is a directory"],
    );
    run(
        &["--params-out", "p.json"],
        &["--params-out", "--mixed-out"],
    );
    run(
        &[
            "--labels",
            &y,
            "--bits",
            "2",
            "--accuracy-drop",
            "1",
            "--no-rtl",
        ],
        &["infeasible on PYNQ-Z2", "cost budget"],
    );
    // The time limit covers the pricing of every width class.
    run(
        &[
            "--labels",
            &y,
            "--space",
            "default",
            "--time-limit",
            "1",
            "--no-rtl",
        ],
        &["time limit of 1 s", "pricing"],
    );
    let tiny = tempfile::tempdir().unwrap();
    let labels = tiny.path().join("l.npy");
    ndarray_npy::write_npy(&labels, &ndarray::Array1::<i64>::zeros(3)).unwrap();
    run(
        &["--labels", labels.to_str().unwrap()],
        &["3 labels for 1797 inputs"],
    );
    // A workload and a model at once; calibration flags without a model.
    refused(
        &[
            "map",
            &m,
            "--workload",
            "mlp",
            "--board",
            "pynq-z2",
            "--calib",
            &x,
        ],
        &["--workload"],
    );
    refused(
        &[
            "map",
            "--workload",
            "mlp",
            "--board",
            "pynq-z2",
            "--calib",
            &x,
        ],
        &["MODEL.onnx"],
    );
}

/// The chosen network as `map --mixed-out` writes it runs again with `run --mixed`: the golden
/// engine's held-out accuracy is the map's, and in Verilator each layer runs on its engine with
/// 0 mismatches and the cycles the map predicted.
#[test]
fn run_mixed_repeats_the_maps_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("mixed.json");
    let (m, x, y) = (
        fixture("mlp_w8a8_pow2.onnx"),
        fixture("digits_x.npy"),
        fixture("digits_y.npy"),
    );
    let r = mixed(
        "mlp_w8a8_pow2.onnx",
        &[
            "--accuracy-drop",
            "2",
            "--mixed-out",
            report.to_str().unwrap(),
        ],
    );
    // The held-out inputs of `mixed`: the last 297 digits.
    let xs: ndarray::ArrayD<f32> = ndarray_npy::read_npy(&x).unwrap();
    let ys: ndarray::ArrayD<i64> = ndarray_npy::read_npy(&y).unwrap();
    let (hx, hy) = (dir.path().join("hx.npy"), dir.path().join("hy.npy"));
    ndarray_npy::write_npy(
        &hx,
        &xs.slice_axis(ndarray::Axis(0), (1500..).into()).to_owned(),
    )
    .unwrap();
    ndarray_npy::write_npy(
        &hy,
        &ys.slice_axis(ndarray::Axis(0), (1500..).into()).to_owned(),
    )
    .unwrap();
    let out = dir.path().join("y.npy");
    let run = |report: &Path, engine: &str, limit: &str| -> serde_json::Value {
        let o = accelforge(&[
            "run",
            &m,
            "--mixed",
            report.to_str().unwrap(),
            "--input",
            hx.to_str().unwrap(),
            "--labels",
            hy.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--engine",
            engine,
            "--limit",
            limit,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let golden = run(&report, "golden", "297");
    assert_eq!(golden["accuracy"], r["heldout"]["accuracy"]);
    let rtl = run(&report, "rtl", "297");
    assert_eq!(rtl["mismatches"], 0, "{rtl}");
    assert_eq!(rtl["total_cycles"], r["rtl"]["cycles"], "{rtl}");
    assert_eq!(rtl["accuracy"], golden["accuracy"]);
    // Two copies of the chosen engine, one per dense layer: `gen` checks the engines' summed
    // estimate against the board and refuses, naming it, with nothing written.
    let mut two: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let mut second = two["engines"][0].clone();
    second["layers"] = serde_json::json!(["dense2"]);
    two["engines"][0]["layers"] = serde_json::json!(["dense1"]);
    two["engines"].as_array_mut().unwrap().push(second);
    let two_path = dir.path().join("two.json");
    std::fs::write(&two_path, two.to_string()).unwrap();
    let bundle = dir.path().join("bundle");
    refused(
        &[
            "gen",
            &m,
            "--board",
            "pynq-z2",
            "--mixed",
            two_path.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ],
        // Naming the user's --out, not the staging directory it is written in first.
        &[
            "exceed the device",
            "dsp 384 of 220",
            "--allow-over-budget",
            &format!("into `{}`", bundle.display()),
        ],
    );
    assert!(!bundle.exists());
    // ... which `run` takes, each layer on its engine.
    let split = run(&two_path, "rtl", "20");
    assert_eq!(split["mismatches"], 0, "{split}");
    // A report for another model is refused by name.
    refused(
        &[
            "run",
            &fixture("cnn_w8a8_pow2.onnx"),
            "--mixed",
            report.to_str().unwrap(),
            "--input",
            hx.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["no QONNX quantizer named", "another model"],
    );
}
