//! Golden files of `estimate --json`: the cycle and resource models' numbers for small
//! configurations of each template (the systolic array in both dataflows, GEMM and conv2d; the
//! MoE core with and without reordering and with a DDR latency). The cycle models are exact
//! against Verilator and the resource models calibrated against Yosys; any change to these
//! numbers must be intended and explained in the commit (`cargo insta review`).

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn estimate(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .arg("estimate")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn systolic_gemm_both_dataflows() {
    let shape = ["--m", "37", "--k", "50", "--n", "21"];
    for (name, array) in [
        ("os_4x8", &["--rows", "4", "--cols", "8"][..]),
        (
            "ws_4x8",
            &["--rows", "4", "--cols", "8", "--dataflow", "ws"][..],
        ),
        (
            "os_3x5_int4_stream32",
            &[
                "--rows",
                "3",
                "--cols",
                "5",
                "--in",
                "ap_fixed<4,2>",
                "--weight",
                "ap_fixed<4,2>",
                "--acc",
                "ap_fixed<16,12>",
                "--out-type",
                "ap_fixed<8,4>",
                "--stream-bits",
                "32",
            ][..],
        ),
    ] {
        let mut args = vec!["gemm"];
        args.extend(shape);
        args.extend(array);
        insta::assert_snapshot!(format!("gemm_{name}"), estimate(&args));
    }
}

#[test]
fn systolic_conv2d_both_dataflows() {
    let shape = [
        "--h",
        "9",
        "--w",
        "7",
        "--c-in",
        "3",
        "--c-out",
        "10",
        "--kernel-h",
        "3",
        "--kernel-w",
        "3",
        "--stride",
        "2",
        "--pad",
        "1",
    ];
    for (name, array) in [
        ("os_4x4", &["--rows", "4", "--cols", "4"][..]),
        (
            "ws_4x4",
            &["--rows", "4", "--cols", "4", "--dataflow", "ws"][..],
        ),
    ] {
        let mut args = vec!["conv2d"];
        args.extend(shape);
        args.extend(array);
        insta::assert_snapshot!(format!("conv2d_{name}"), estimate(&args));
    }
}

#[test]
fn moe_core() {
    for (name, args) in [
        ("default", &[][..]),
        ("token_order", &["--no-reorder"][..]),
        (
            "ddr_latency_64",
            &["--tokens", "32", "--experts", "8", "--ddr-latency", "64"][..],
        ),
    ] {
        let mut a = vec!["moe"];
        a.extend(args);
        insta::assert_snapshot!(format!("moe_{name}"), estimate(&a));
    }
}
