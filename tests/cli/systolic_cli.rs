//! End-to-end tests of `accelforge gen systolic`, `sim` and `estimate` through the built binary.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_accelforge");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("spawning accelforge")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

const ARRAY: &[&str] = &[
    "--rows",
    "3",
    "--cols",
    "4",
    "--max-k",
    "32",
    "--max-n-chunk",
    "8",
];

#[test]
fn gen_writes_verilog_params_and_summary_and_params_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("sys");
    let out_s = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "gen",
        "systolic",
        "--pe",
        "shift-add",
        "--relu",
        "--json",
        "--out",
        out_s,
    ];
    args.extend_from_slice(ARRAY);
    let v = json(&run(&args));
    assert!(
        v["top"]
            .as_str()
            .is_some_and(|t| t.starts_with("af_systolic_os_3x4"))
    );
    assert_eq!(v["files"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["resources"]["dsp"], 0);
    assert!(out.join("params.json").is_file() && out.join("summary.txt").is_file());
    // Same params file, same bytes.
    let params = out.join("params.json");
    let p = params.to_str().expect("utf-8");
    let out2 = dir.path().join("again");
    let v2 = json(&run(&[
        "gen",
        "systolic",
        "--params",
        p,
        "--json",
        "--out",
        out2.to_str().expect("utf-8"),
    ]));
    assert_eq!(v["top"], v2["top"]);
    for f in v["files"].as_array().expect("files") {
        let name = std::path::Path::new(f.as_str().expect("str"))
            .file_name()
            .expect("name");
        assert_eq!(
            std::fs::read(out.join(name)).expect("read"),
            std::fs::read(out2.join(name)).expect("read")
        );
    }
}

#[test]
fn estimate_keys_and_sim_agree() {
    let mut est = vec![
        "estimate", "gemm", "--m", "7", "--k", "11", "--n", "9", "--json",
    ];
    est.extend_from_slice(ARRAY);
    let e = json(&run(&est));
    for key in ["cycles", "utilization", "resources"] {
        assert!(e.get(key).is_some(), "missing {key}");
    }
    for key in ["lut", "ff", "dsp", "bram18", "bram36", "uram"] {
        assert!(e["resources"].get(key).is_some(), "missing resources.{key}");
    }
    assert_eq!(e["resources"]["dsp"], 12);
    if !accelforge_hdl_available() {
        return;
    }
    let mut sim = vec![
        "sim", "gemm", "--m", "7", "--k", "11", "--n", "9", "--seed", "3", "--json",
    ];
    sim.extend_from_slice(ARRAY);
    let s = json(&run(&sim));
    for key in [
        "cycles",
        "macs",
        "utilization",
        "outputs_checked",
        "mismatches",
        "sim_cycles_per_second",
    ] {
        assert!(s.get(key).is_some(), "missing {key}");
    }
    assert_eq!(s["mismatches"], 0);
    assert_eq!(s["outputs_checked"], 63);
    assert_eq!(
        s["cycles"], e["cycles"],
        "estimate == sim without back-pressure"
    );
}

#[test]
fn conv2d_from_a_layer_file_with_backpressure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layer = dir.path().join("conv.toml");
    std::fs::write(
        &layer,
        "kind = \"conv2d\"\nh = 7\nw = 6\nc_in = 2\nc_out = 5\nkernel_h = 3\nkernel_w = 2\nstride = 2\npad = 1\n",
    )
    .expect("write layer");
    let l = layer.to_str().expect("utf-8");
    let mut est = vec!["estimate", "conv2d", "--layer", l, "--json"];
    est.extend_from_slice(ARRAY);
    let e = json(&run(&est));
    if !accelforge_hdl_available() {
        return;
    }
    let mut sim = vec!["sim", "conv2d", "--layer", l, "--json"];
    sim.extend_from_slice(ARRAY);
    let s = json(&run(&sim));
    assert_eq!(s["mismatches"], 0);
    assert_eq!(s["cycles"], e["cycles"]);
    let mut bp = sim.clone();
    bp.extend_from_slice(&["--backpressure", "0.3", "--seed", "9"]);
    let s = json(&run(&bp));
    assert_eq!(s["mismatches"], 0);
    assert!(s["cycles"].as_u64() >= e["cycles"].as_u64());
}

#[test]
fn conv2d_flags_take_the_workload_keys_and_old_layer_files_get_the_new_spelling() {
    let mut long = vec![
        "estimate",
        "conv2d",
        "--h",
        "7",
        "--w",
        "6",
        "--c-in",
        "2",
        "--c-out",
        "5",
        "--kernel-h",
        "3",
        "--kernel-w",
        "2",
        "--stride",
        "2",
        "--pad",
        "1",
        "--json",
    ];
    long.extend_from_slice(ARRAY);
    let mut short = vec![
        "estimate", "conv2d", "--h", "7", "--w", "6", "--c", "2", "--k", "5", "--r", "3", "--s",
        "2", "--stride", "2", "--pad", "1", "--json",
    ];
    short.extend_from_slice(ARRAY);
    let (l, s) = (json(&run(&long)), json(&run(&short)));
    assert_eq!(l, s, "the short flags are aliases of the long ones");
    assert_eq!(l["gemm"]["k"], 2 * 3 * 2);

    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.toml");
    std::fs::write(
        &old,
        "type = \"conv2d\"\nh = 7\nw = 6\nc = 2\nk = 5\nr = 3\ns = 2\n",
    )
    .expect("write layer");
    let mut est = vec![
        "estimate",
        "conv2d",
        "--layer",
        old.to_str().expect("utf-8"),
    ];
    est.extend_from_slice(ARRAY);
    let out = run(&est);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for needle in ["old.toml", "`type`", "kind = \"conv2d\"", "c_in, c_out"] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
}

#[test]
fn bad_input_gets_one_clear_message() {
    let mut args = vec!["estimate", "gemm", "--m", "4", "--k", "33", "--n", "4"];
    args.extend_from_slice(ARRAY);
    let out = run(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_k"), "{err}");
    let out = run(&[
        "estimate",
        "gemm",
        "--m",
        "4",
        "--k",
        "4",
        "--n",
        "4",
        "--stream-bits",
        "60",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stream_bits"));
    let out = run(&[
        "gen",
        "systolic",
        "--acc",
        "ap_fixed<12,12>",
        "--out",
        "/nonexistent/x",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("too narrow"));
    // Types that do not pack two to a DSP are refused naming the widths, and nothing is written.
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("packed");
    let out = run(&[
        "gen",
        "systolic",
        "--pe",
        "dsp-packed",
        "--in",
        "ap_fixed<12,12>",
        "--acc",
        "ap_fixed<40,40>",
        "--out",
        target.to_str().expect("utf-8 path"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dsp-packed") && err.contains("29-bit operand") && err.contains("pe dsp"),
        "{err}"
    );
    assert!(!target.exists(), "nothing written");
}

fn accelforge_hdl_available() -> bool {
    accelforge_test_support::tool_available("verilator")
}

#[test]
fn weight_stationary_gen_estimate_and_sim_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ws");
    let mut gen_args = vec![
        "gen",
        "systolic",
        "--dataflow",
        "ws",
        "--json",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    gen_args.extend_from_slice(ARRAY);
    let v = json(&run(&gen_args));
    assert!(
        v["top"]
            .as_str()
            .is_some_and(|t| t.starts_with("af_systolic_ws_3x4"))
    );
    assert_eq!(v["resources"]["dsp"], 12);
    let mut est = vec![
        "estimate",
        "gemm",
        "--m",
        "13",
        "--k",
        "11",
        "--n",
        "9",
        "--dataflow",
        "ws",
        "--json",
    ];
    est.extend_from_slice(ARRAY);
    let e = json(&run(&est));
    if !accelforge_hdl_available() {
        return;
    }
    let mut sim = vec![
        "sim",
        "gemm",
        "--m",
        "13",
        "--k",
        "11",
        "--n",
        "9",
        "--dataflow",
        "ws",
        "--seed",
        "4",
        "--json",
    ];
    sim.extend_from_slice(ARRAY);
    let s = json(&run(&sim));
    assert_eq!(s["mismatches"], 0);
    assert_eq!(s["outputs_checked"], 117);
    assert_eq!(
        s["cycles"], e["cycles"],
        "estimate == sim without back-pressure"
    );
    let mut bp = sim.clone();
    bp.extend_from_slice(&["--backpressure", "0.3", "--pe", "shift-add"]);
    let s = json(&run(&bp));
    assert_eq!(s["mismatches"], 0);
}
