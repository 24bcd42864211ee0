//! End-to-end tests of `accelforge qfx` through the built binary.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_accelforge");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning accelforge");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("writing stdin");
    child.wait_with_output().expect("waiting for accelforge")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn convert_matches_the_first_sample_block() {
    // From shared/reference/apfixed_samples.txt, block ap_fixed<32,16> -> ap_fixed<10,5,AP_RND,AP_SAT,0>.
    let input = b"2147483645\n51200\n31638\n-219\n-3072\n-2147483648\n20735\n-23194\n";
    let out = run(
        &[
            "qfx",
            "convert",
            "--from",
            "ap_fixed<32,16>",
            "--to",
            "ap_fixed<10,5,AP_RND,AP_SAT,0>",
        ],
        input,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "511\n25\n15\n0\n-1\n-512\n10\n-11\n");
}

#[test]
fn convert_names_the_bad_line_and_fails() {
    let args = [
        "qfx",
        "convert",
        "--from",
        "ap_fixed<8,4>",
        "--to",
        "ap_fixed<4,2>",
    ];
    let out = run(&args, b"1\n2\nthree\n4\n");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 3") && err.contains("three"), "{err}");

    let out = run(&args, b"1\n128\n");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("out of range"),
        "{err}"
    );
}

#[test]
fn convert_rejects_bad_types() {
    let out = run(
        &[
            "qfx",
            "convert",
            "--from",
            "ap_ufixed<8,4,AP_RND,AP_WRAP_SM>",
            "--to",
            "ap_fixed<4,2>",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("AP_WRAP_SM"));
}

#[test]
fn info_json_describes_the_type() {
    let out = run(
        &["qfx", "info", "ap_fixed<16,6, RND_CONV, AP_SAT>", "--json"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["type"], "ap_fixed<16,6,AP_RND_CONV,AP_SAT>");
    assert_eq!(v["width"], 16);
    assert_eq!(v["int_bits"], 6);
    assert_eq!(v["frac_bits"], 10);
    assert_eq!(v["signed"], true);
    assert_eq!(v["min"], "-32");
    assert_eq!(v["max"], "31.9990234375");
    assert_eq!(v["resolution"], "0.0009765625");
    assert_eq!(v["quantization"], "AP_RND_CONV");
    assert_eq!(v["overflow"], "AP_SAT");
}

/// A minimal .npy (format 1.0) writer, so the test does not share the reader's code.
fn write_npy(path: &std::path::Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).expect("writing .npy");
}

#[test]
fn calibrate_reads_npy_of_both_float_widths() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Values in [-2.5, 2.5): range needs I = 3 for a signed 8-bit type.
    let values: Vec<f64> = (0..600).map(|i| f64::from(i) / 120.0 - 2.5).collect();
    let f64_path = dir.path().join("data64.npy");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&f64_path, "<f8", &[20, 30], &bytes);
    let f32_path = dir.path().join("data32.npy");
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    write_npy(&f32_path, "<f4", &[2, 3, 100], &bytes);

    for path in [&f64_path, &f32_path] {
        let p = path.to_str().expect("utf-8 path");
        let range = run(
            &[
                "qfx",
                "calibrate",
                "--input",
                p,
                "--width",
                "8",
                "--method",
                "range",
                "--json",
            ],
            b"",
        );
        assert!(range.status.success(), "{}", text(&range.stderr));
        let r: serde_json::Value = serde_json::from_slice(&range.stdout).expect("JSON");
        assert_eq!(r["int_bits"], 3);
        assert_eq!(r["type"], "ap_fixed<8,3,AP_RND,AP_SAT>");
        assert_eq!(r["method"], "range");
        let mse = run(
            &[
                "qfx",
                "calibrate",
                "--input",
                p,
                "--width",
                "8",
                "--signed",
                "--method",
                "mse",
                "--json",
            ],
            b"",
        );
        assert!(mse.status.success(), "{}", text(&mse.stderr));
        let m: serde_json::Value = serde_json::from_slice(&mse.stdout).expect("JSON");
        assert_eq!(m["method"], "mse");
        let (rm, mm) = (
            r["mse"].as_f64().expect("mse"),
            m["mse"].as_f64().expect("mse"),
        );
        assert!(mm <= rm, "mse {mm} worse than range {rm}");
        assert!(m["type"].as_str().expect("type").starts_with("ap_fixed<8,"));
    }

    // `--unsigned` takes non-negative data (negative data is refused: tests/hardening_cli.rs).
    let positive_path = dir.path().join("positive.npy");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.abs().to_le_bytes()).collect();
    write_npy(&positive_path, "<f8", &[20, 30], &bytes);
    let unsigned = run(
        &[
            "qfx",
            "calibrate",
            "--input",
            positive_path.to_str().expect("utf-8"),
            "--width",
            "6",
            "--unsigned",
        ],
        b"",
    );
    assert!(unsigned.status.success(), "{}", text(&unsigned.stderr));
    assert!(text(&unsigned.stdout).contains("ap_ufixed<6,"));

    let ints = dir.path().join("ints.npy");
    write_npy(&ints, "<i4", &[2], &[1, 0, 0, 0, 2, 0, 0, 0]);
    let bad = run(
        &[
            "qfx",
            "calibrate",
            "--input",
            ints.to_str().expect("utf-8"),
            "--width",
            "8",
        ],
        b"",
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("float32 or float64"),
        "{}",
        text(&bad.stderr)
    );

    let missing = run(
        &[
            "qfx",
            "calibrate",
            "--input",
            "/nonexistent/x.npy",
            "--width",
            "8",
        ],
        b"",
    );
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("/nonexistent/x.npy"));
}
