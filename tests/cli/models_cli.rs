//! `accelforge import` and `accelforge run` on the committed model fixtures
//! (models/tests/fixtures, made by scripts/make_model_fixtures.py): the CLI's outputs against
//! the reference executors run live (qonnx for QONNX, onnxruntime for QCDQ, through
//! scripts/onnx_reference.py), the imported workload in the mapper, and bad input refused with
//! nothing written.

#![allow(clippy::unwrap_used)]

use crate::common::cli;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli::{accelforge, refused, stderr};
use ndarray::{Array1, Array2, ArrayD, Axis};
use ndarray_npy::{read_npy, write_npy};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/fixtures")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
        .unwrap()
}

/// Differences between the golden engine and the reference traced to the reference's float32
/// rounding (see models/tests/golden.rs, which proves the trace): (model, input, output).
const TRACED: &[(&str, usize, usize)] = &[
    ("cnn_w8a8_float", 738, 2),
    ("cnn_int8_qcdq", 738, 2),
    ("cnn_uint8_qcdq_zp", 738, 6),
];

/// The reference executor on `x`, or `None` when its Python packages are missing outside CI
/// (under CI=true they are required: scripts/setup.sh installs them).
fn reference(model: &str, x: &str, dir: &Path) -> Option<Array2<f32>> {
    let y = dir.join(format!("{model}.live.npy"));
    let o = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/onnx_reference.py"))
        .arg(fixture(&format!("{model}.onnx")))
        .arg(x)
        .arg(&y)
        .output()
        .unwrap();
    if !o.status.success() {
        let e = String::from_utf8_lossy(&o.stderr);
        let missing = e.contains("ModuleNotFoundError");
        assert!(
            missing && std::env::var("CI").as_deref() != Ok("true"),
            "the reference executor failed for {model}: {e}"
        );
        eprintln!("skipping the live reference for {model}: {e}");
        return None;
    }
    Some(read_npy(&y).unwrap())
}

/// The held-out split (the first `n` of it), written as X/labels .npy files into `dir`.
fn held_out(dir: &Path, n: Option<usize>) -> (PathBuf, PathBuf) {
    let n_train = manifest()["n_train"].as_u64().unwrap() as usize;
    let x: ArrayD<f32> = read_npy(fixtures().join("digits_x.npy")).unwrap();
    let y: Array1<i64> = read_npy(fixtures().join("digits_y.npy")).unwrap();
    let end = n.map_or(y.len(), |n| n_train + n);
    let (xt, yt) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy(
        &xt,
        &x.slice_axis(Axis(0), (n_train..end).into()).to_owned(),
    )
    .unwrap();
    write_npy(
        &yt,
        &y.slice_axis(Axis(0), (n_train..end).into()).to_owned(),
    )
    .unwrap();
    (xt, yt)
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let o = accelforge(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every fully quantized fixture, all 1,797 digits inputs: `run --engine golden` writes exactly
/// what the reference executor computes, bit for bit, apart from the traced float-rounding case.
#[test]
fn run_equals_the_reference_executors_on_every_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let x = fixture("digits_x.npy");
    let models = manifest()["models"].as_object().unwrap().clone();
    let mut checked = 0;
    for (name, info) in &models {
        if info["float_input"].as_bool().unwrap() {
            continue; // float input: checked against the committed reference below
        }
        if info["output"] == "softmax" {
            continue; // float outputs: checked to the last bits below
        }
        let out = dir.path().join(format!("{name}.npy"));
        let r = run_json(&[
            "run",
            &fixture(&format!("{name}.onnx")),
            "--input",
            &x,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(r["inputs"], 1797);
        assert_eq!(r["engine"], "golden");
        assert_eq!(r["input"]["source"], "graph");
        let ours: Array2<f32> = read_npy(&out).unwrap();
        let committed: Array2<f32> = read_npy(fixtures().join(format!("{name}.ref.npy"))).unwrap();
        let Some(live) = reference(name, &x, dir.path()) else {
            continue;
        };
        // The committed references are what the same packages computed when the fixtures were
        // made: a different result would mean the reference itself changed.
        assert_eq!(
            live, committed,
            "{name}: the live reference differs from the committed one"
        );
        assert_eq!(ours.dim(), live.dim());
        let differing: Vec<(usize, usize)> = ours
            .indexed_iter()
            // Equal as numbers: the reference writes -0.0 where a zero output's scale product
            // keeps the sign; the value is the same.
            .filter(|&((i, j), &v)| v != live[[i, j]])
            .map(|(ij, _)| ij)
            .collect();
        let expected: Vec<(usize, usize)> = TRACED
            .iter()
            .filter(|t| t.0 == name)
            .map(|t| (t.1, t.2))
            .collect();
        assert!(
            differing == expected,
            "{name}: {} outputs differ from {}, first: {:?}",
            differing.len(),
            info["reference"],
            &differing[..differing.len().min(10)]
        );
        checked += 1;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        assert_eq!(checked, 12, "every fully quantized fixture checked live");
    }
}

/// Classifiers ending in a Softmax: the integers before it are exact (the same models without
/// it equal the references exactly), and the f32 Softmax on the host differs from the
/// references' vectorised expf only in the last bits. Measured over all 1,797 digits: the
/// QONNX MLP differs in 6,951 of 17,970 values and the QCDQ CNN in 4,590, by at most 2.4e-7
/// (5 ulp for values above 1e-6), with the same top-1 class on every input. The test holds
/// those bounds and prints the counts.
#[test]
fn softmax_outputs_match_the_references_to_the_last_bits() {
    let dir = tempfile::tempdir().unwrap();
    let x = fixture("digits_x.npy");
    let models = manifest()["models"].as_object().unwrap().clone();
    let mut checked = 0;
    for (name, info) in models.iter().filter(|(_, i)| i["output"] == "softmax") {
        let out = dir.path().join(format!("{name}.npy"));
        let o = cli::accelforge(&[
            "run",
            &fixture(&format!("{name}.onnx")),
            "--input",
            &x,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", cli::stderr(&o));
        let ours: Array2<f32> = read_npy(&out).unwrap();
        let committed: Array2<f32> = read_npy(fixtures().join(format!("{name}.ref.npy"))).unwrap();
        let reference = match reference(name, &x, dir.path()) {
            Some(live) => {
                assert_eq!(live, committed, "{name}: the live reference changed");
                live
            }
            None => committed,
        };
        let (mut differing, mut max_abs, mut max_ulp) = (0usize, 0f32, 0i64);
        for (row_ours, row_ref) in ours.rows().into_iter().zip(reference.rows()) {
            let top = |r: ndarray::ArrayView1<f32>| {
                r.iter()
                    .enumerate()
                    .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                    .0
            };
            assert_eq!(top(row_ours), top(row_ref), "{name}: top-1 class");
            for (&a, &b) in row_ours.iter().zip(row_ref) {
                if a != b {
                    differing += 1;
                    max_abs = max_abs.max((a - b).abs());
                    if b >= 1e-6 {
                        max_ulp =
                            max_ulp.max((i64::from(a.to_bits()) - i64::from(b.to_bits())).abs());
                    }
                }
            }
        }
        eprintln!(
            "{name}: {differing} of {} outputs differ from {}, by at most {max_abs:e} ({max_ulp} ulp above 1e-6)",
            ours.len(),
            info["reference"]
        );
        assert!(
            max_abs <= 3e-7 && max_ulp <= 8,
            "{name}: {max_abs:e}, {max_ulp} ulp"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "both Softmax fixtures");
}

/// A graph that leaves its input float: `run` calibrates an 8-bit type from the data and says
/// so; `--input-type` gives one; both match the committed reference (computed on the input
/// quantized with that type).
#[test]
fn float_input_is_calibrated_or_given_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let committed: Array2<f32> =
        read_npy(fixtures().join("mlp_w8a8_pow2_floatin.ref.npy")).unwrap();
    let (x, model) = (
        fixture("digits_x.npy"),
        fixture("mlp_w8a8_pow2_floatin.onnx"),
    );
    let out = dir.path().join("y.npy");
    let out_s = out.to_str().unwrap();
    for extra in [&[][..], &["--input-type", "ap_ufixed<8,5>"][..]] {
        let mut args = vec!["run", &model, "--json", "--input", &x, "--out", out_s];
        args.extend_from_slice(extra);
        let r = run_json(&args);
        let source = if extra.is_empty() {
            "calibrated"
        } else {
            "given"
        };
        assert_eq!(r["input"]["source"], source);
        assert_eq!(r["input"]["type"], "ap_ufixed<8,5>");
        let ours: Array2<f32> = read_npy(&out).unwrap();
        assert_eq!(ours, committed);
    }
    // Without data to calibrate from, import needs the type.
    refused(
        &["import", &fixture("mlp_w8a8_pow2_floatin.onnx")],
        &["--input-type", "float network input"],
    );
    refused(
        &[
            "import",
            &fixture("mlp_w8a8_pow2_floatin.onnx"),
            "--input-type",
            "ap_ufixed<8,5,AP_TRN,AP_SAT>",
        ],
        &["rounding half to even", "ap_ufixed<8,5>"],
    );
}

/// Accuracy on the held-out split equals what the reference executor scored when the fixtures
/// were made, and the 8-bit network is within one point of the float model.
#[test]
fn accuracy_on_the_held_out_split() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest();
    let (xt, yt) = held_out(dir.path(), None);
    for name in ["cnn_w8a8_pow2", "mlp_w8a8_float", "cnn_w2a2_pow2"] {
        let out = dir.path().join("out.npy");
        let r = run_json(&[
            "run",
            &fixture(&format!("{name}.onnx")),
            "--input",
            xt.to_str().unwrap(),
            "--labels",
            yt.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        let want = m["models"][name]["accuracy"].as_f64().unwrap();
        let got = r["accuracy"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
        if name.contains("w8a8") {
            let arch = m["models"][name]["arch"].as_str().unwrap();
            let float = m[format!("float_{arch}")]["accuracy"].as_f64().unwrap();
            assert!(got >= float - 0.01, "{name}: {got} vs float {float}");
        }
    }
    // --limit runs the first N only.
    let out = dir.path().join("out.npy");
    let r = run_json(&[
        "run",
        &fixture("mlp_w8a8_pow2.onnx"),
        "--input",
        xt.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--limit",
        "7",
        "--json",
    ]);
    assert_eq!(r["inputs"], 7);
    assert_eq!(read_npy::<_, Array2<f32>>(&out).unwrap().dim(), (7, 10));
}

/// `import`: the layer table, its JSON, and a workload that `map` reads and maps.
#[test]
fn import_writes_a_workload_the_mapper_maps() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let o = accelforge(&[
        "import",
        &fixture("cnn_w4a4_pow2.onnx"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "conv1         conv         1x8x8     8x8x8      uint8  int4     uint4  2^-1       4608  64x9x8      array",
        "maxpool1      maxpool",
        "dense2        dense        32        10         uint4  int4     int8",
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    let layers: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("layers.json")).unwrap()).unwrap();
    assert_eq!(layers.as_array().unwrap().len(), 5);
    assert_eq!(layers[1]["gemm"], serde_json::json!([64, 9, 8]));
    let j = run_json(&["import", &fixture("cnn_int8_qcdq.onnx"), "--json"]);
    assert_eq!(j["macs"], 9024);
    assert_eq!(j["layers"][3]["weight_type"], "int8");
    assert_eq!(j["input"]["source"], "graph");
    let map = run_json(&[
        "map",
        "--workload",
        out.join("workload.toml").to_str().unwrap(),
        "--board",
        "pynq-z2",
        "--json",
    ]);
    let layers = map["layers"].as_array().unwrap();
    assert_eq!(
        layers.iter().map(|l| l["name"].clone()).collect::<Vec<_>>(),
        ["conv1", "dense1", "dense2"]
    );
    // The same directory again needs --force, and then is replaced.
    refused(
        &[
            "import",
            &fixture("cnn_w4a4_pow2.onnx"),
            "--out",
            out.to_str().unwrap(),
        ],
        &["already exists", "--force"],
    );
    let o = accelforge(&[
        "import",
        &fixture("mlp_w4a4_pow2.onnx"),
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(out.join("workload.toml"))
            .unwrap()
            .contains("mlp_w4a4_pow2")
    );
}

/// Unknown ops, broken protobufs, dynamic shapes, inputs of the wrong shape or dtype: a clear
/// message, a non-zero exit, and no output file or directory.
#[test]
fn bad_models_and_inputs_are_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).display().to_string();
    let x = fixture("digits_x.npy");
    let y = d("y.npy");
    let model = fixture("mlp_w8a8_pow2.onnx");
    std::fs::write(d("broken.onnx"), b"\x08\x07\x12\x05not a model at all").unwrap();
    let flat: ArrayD<f32> = read_npy(fixtures().join("digits_x.npy")).unwrap();
    let n = flat.shape()[0];
    write_npy(d("flat.npy"), &flat.to_shape((n, 64)).unwrap().to_owned()).unwrap();
    write_npy(d("f64.npy"), &flat.mapv(f64::from)).unwrap();
    write_npy(d("short_labels.npy"), &Array1::<i64>::zeros(3)).unwrap();
    let mut nan = flat.clone();
    nan[[4, 0, 2, 3]] = f32::NAN;
    write_npy(d("nan.npy"), &nan).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "run",
                &fixture("err_unknown_op.onnx"),
                "--input",
                &x,
                "--out",
                &y,
            ],
            &["op `Elu` is not supported", "supported ops: Quant"],
        ),
        (
            &[
                "import",
                &fixture("err_unknown_op.onnx"),
                "--out",
                &d("imp"),
            ],
            &["op `Elu` is not supported"],
        ),
        (
            &["run", &d("broken.onnx"), "--input", &x, "--out", &y],
            &["not a valid ONNX protobuf"],
        ),
        (
            &["import", &fixture("err_dynamic.onnx"), "--out", &d("imp")],
            &["dynamic size on axis 2", "`H`"],
        ),
        (
            &["run", &model, "--input", &d("flat.npy"), "--out", &y],
            &["shape [1797, 64]", "[1, 8, 8]"],
        ),
        (
            &["run", &model, "--input", &d("f64.npy"), "--out", &y],
            &["must be float32", "'<f8'"],
        ),
        (
            &[
                "run",
                &model,
                "--input",
                &x,
                "--out",
                &y,
                "--labels",
                &d("short_labels.npy"),
            ],
            &["3 labels for 1797 inputs"],
        ),
        (
            &["run", &model, "--input", &d("nan.npy"), "--out", &y],
            &["input 4", "not a finite number"],
        ),
        (
            &["run", &model, "--input", &d("missing.npy"), "--out", &y],
            &["missing.npy"],
        ),
        (
            &["run", &model, "--input", &x, "--out", &y, "--limit", "0"],
            &["--limit"],
        ),
    ];
    for (args, needles) in cases {
        refused(args, needles);
        assert!(!Path::new(&y).exists(), "{args:?} wrote {y}");
        assert!(!Path::new(&d("imp")).exists(), "{args:?} wrote imp/");
    }
}

/// `run --engine rtl`: every array layer in Verilator on the mapped PYNQ-Z2 array, chained on
/// the hardware's own outputs — the same outputs as the golden engine, 0 mismatches, and each
/// layer's Verilator cycles equal to the cycle model. A convolutional network at 8 bits, a
/// 2-bit MLP (different operand types, so different arrays), and a QCDQ CNN whose input zero
/// point (10) is what the convolution's padding reads.
#[test]
fn rtl_engine_equals_golden_with_cycles_equal_to_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (xt, yt) = held_out(dir.path(), Some(120));
    for (name, array_layers) in [
        ("cnn_w8a8_pow2", 3),
        ("mlp_w2a2_pow2", 2),
        ("cnn_uint8_qcdq_zp", 3),
    ] {
        let model = fixture(&format!("{name}.onnx"));
        let run = |engine: &str| {
            let out = dir.path().join(format!("{name}.{engine}.npy"));
            let r = run_json(
                &[
                    "run",
                    &model,
                    "--input",
                    xt.to_str().unwrap(),
                    "--labels",
                    yt.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--engine",
                    engine,
                    "--board",
                    "pynq-z2",
                    "--json",
                ]
                .into_iter()
                .filter(|a| engine == "rtl" || !["--board", "pynq-z2"].contains(a))
                .collect::<Vec<_>>(),
            );
            (r, read_npy::<_, Array2<f32>>(&out).unwrap())
        };
        let (golden, golden_y) = run("golden");
        let (rtl, rtl_y) = run("rtl");
        assert_eq!(rtl_y, golden_y, "{name}: RTL outputs differ from golden");
        assert_eq!(rtl["mismatches"], 0, "{name}");
        assert_eq!(rtl["accuracy"], golden["accuracy"], "{name}");
        let measured: Vec<_> = rtl["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| !l["cycles"].is_null())
            .collect();
        assert_eq!(measured.len(), array_layers, "{name}");
        let mut total = 0;
        for l in measured {
            assert_eq!(l["runs_on"], "array", "{name}: {l}");
            assert_eq!(l["cycles"], l["model_cycles"], "{name}: {l}");
            assert_eq!(l["mismatches"], 0, "{name}: {l}");
            total += l["cycles"].as_u64().unwrap();
        }
        assert_eq!(rtl["total_cycles"], total);
        let clock = rtl["hardware"]["clock_mhz"].as_f64().unwrap();
        assert!((rtl["latency_ms"].as_f64().unwrap() - total as f64 / (clock * 1e3)).abs() < 1e-9);
        assert!(golden["total_cycles"].is_null() && golden["mismatches"].is_null());
    }
}

/// `--params`: a systolic params file is used as given, after checking it can carry the
/// network; one without a per-channel requantizer wide enough for the layers, or that holds
/// too few weight bits, is refused before any simulation.
#[test]
fn rtl_engine_checks_a_params_file() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("y.npy").display().to_string();
    let model = fixture("mlp_w8a8_pow2.onnx");
    let x = fixture("digits_x.npy");
    let write = |name: &str, json: serde_json::Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, json.to_string()).unwrap();
        p.display().to_string()
    };
    let base = serde_json::json!({
        "rows": 4, "cols": 4, "dataflow": "os", "input_type": "ap_ufixed<8,8>",
        "weight_type": "ap_fixed<8,8>", "acc_type": "ap_fixed<32,32>",
        "output_type": "ap_fixed<8,8>", "pe": "dsp", "max_k": 64, "max_n_chunk": 16,
        "stream_bits": 64, "relu": false
    });
    let requant = write("requant.json", base.clone());
    refused(
        &[
            "run", &model, "--input", &x, "--out", &y, "--engine", "rtl", "--params", &requant,
        ],
        &["requantizes in the array", "per_channel", "max_channels"],
    );
    let mut narrow = base.clone();
    narrow["weight_type"] = "ap_fixed<4,4>".into();
    narrow["output_type"] = "ap_fixed<32,32>".into();
    let narrow = write("narrow.json", narrow);
    refused(
        &[
            "run", &model, "--input", &x, "--out", &y, "--engine", "rtl", "--params", &narrow,
        ],
        &["weight_type ap_fixed<4,4> cannot hold", "ap_fixed<8,8>"],
    );
    refused(
        &[
            "run", &model, "--input", &x, "--out", &y, "--params", &narrow,
        ],
        &["golden engine does not use them"],
    );
    assert!(!Path::new(&y).exists());
}

/// `sensitivity`: every QONNX quantizer alone at fewer bits, measured by the golden engine; at
/// the exported width nothing changes. A QCDQ model has no variable quantizer: a clear error.
#[test]
fn sensitivity_of_each_quantizer() {
    let dir = tempfile::tempdir().unwrap();
    let (xt, yt) = held_out(dir.path(), Some(200));
    let r = run_json(&[
        "sensitivity",
        &fixture("cnn_w4a4_pow2.onnx"),
        "--calib",
        xt.to_str().unwrap(),
        "--labels",
        yt.to_str().unwrap(),
        "--bits",
        "4,2",
        "--json",
    ]);
    assert_eq!(r["inputs"], 200);
    let sites = r["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 7, "input, 3 weights, 3 activations: {r}");
    for s in sites {
        let e = s["effects"].as_array().unwrap();
        let exported = s["exported_bits"].as_u64().unwrap();
        assert_eq!(e.len(), if exported >= 4 { 2 } else { 1 }, "{s}");
        if exported == 4 {
            assert_eq!(e[0]["bits"], 4);
            assert_eq!(e[0]["agreement"], 1.0, "{s}");
            assert_eq!(e[0]["mean_abs_error"], 0.0, "{s}");
        }
    }
    refused(
        &[
            "sensitivity",
            &fixture("cnn_int8_qcdq.onnx"),
            "--calib",
            xt.to_str().unwrap(),
        ],
        &["no QONNX `Quant` node"],
    );
}
