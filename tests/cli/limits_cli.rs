//! The CLI refuses, up front and with the bound in the message, inputs that used to wrap,
//! exhaust memory or run for ever (issue 13, limits).

#![allow(clippy::unwrap_used)]

use crate::common::cli;
use cli::{accelforge, refused, stderr};

#[test]
fn conv2d_huge_height_is_refused_not_wrapped() {
    // Used to report M = 100 (OH*OW wrapped in u32).
    refused(
        &[
            "estimate",
            "conv2d",
            "--h",
            "1073741849",
            "--w",
            "10",
            "--c",
            "3",
            "--k",
            "8",
            "--r",
            "3",
            "--s",
            "3",
        ],
        &["h = 1073741849", "65536"],
    );
    // Within every per-dimension bound, but OH*OW overflows a 32-bit M.
    refused(
        &[
            "estimate", "conv2d", "--h", "65536", "--w", "65536", "--c", "3", "--k", "8", "--r",
            "1", "--s", "1",
        ],
        &["M = OH*OW", "4294967295"],
    );
}

#[test]
fn sim_gemm_beyond_the_memory_bound_is_refused_before_allocating() {
    refused(
        &["sim", "gemm", "--m", "65535", "--k", "256", "--n", "65535"],
        &["operand elements", "268435456"],
    );
}

#[test]
fn sim_conv2d_beyond_the_memory_bound_is_refused() {
    refused(
        &[
            "sim", "conv2d", "--h", "256", "--w", "256", "--c", "16", "--k", "16384", "--r", "3",
            "--s", "3",
        ],
        &["operand elements", "268435456"],
    );
}

#[test]
fn sim_moe_huge_ddr_latency_is_refused() {
    refused(
        &["sim", "moe", "--ddr-latency", "4294967295"],
        &["--ddr-latency 4294967295", "65536"],
    );
}

#[test]
fn gen_moe_one_token_is_refused_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    refused(
        &[
            "gen",
            "moe",
            "--tokens",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &["tokens = 1", "at least 2"],
    );
    assert!(!out.exists(), "nothing may be written");
    refused(
        &["estimate", "moe", "--tokens", "1"],
        &["tokens = 1", "at least 2"],
    );
}

#[test]
fn map_time_limit_must_be_sane() {
    refused(
        &[
            "map",
            "--workload",
            "mlp",
            "--board",
            "pynq-z2",
            "--time-limit",
            "1e300",
        ],
        &["--time-limit", "86400"],
    );
}

/// The largest documented MoE shape (1024 tokens, d_model 4096, d_ff 16384, 256 experts): its
/// weights (~34 G elements) used to be drawn by `estimate` and the process was killed; the
/// estimate needs only the routing. `sim` refuses it up front instead of allocating.
#[test]
fn largest_moe_shape_estimates_without_its_weights_and_sim_refuses_it() {
    let shape = [
        "--tokens",
        "1024",
        "--d-model",
        "4096",
        "--d-ff",
        "16384",
        "--experts",
        "256",
        "--top-k",
        "2",
        "--lanes",
        "16",
        "--simd",
        "16",
        "--ddr-bytes-per-cycle",
        "64",
    ];
    let mut args = vec!["estimate", "moe"];
    args.extend(shape);
    args.push("--json");
    let o = accelforge(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["cycles"].as_u64().unwrap() > 100_000_000, "{v}");
    assert_eq!(v["expert_loads"].as_u64(), v["active_experts"].as_u64());
    let mut args = vec!["sim", "moe"];
    args.extend(shape);
    refused(&args, &["simulation bound", "estimate moe"]);
}

/// A `.npy` whose header claims far more data than the file holds: the reader allocated what the
/// header said (2^40 elements aborted the process); now the header is checked against the file
/// and the bound first.
#[test]
fn npy_headers_claiming_more_than_the_file_holds_are_refused() {
    fn npy(shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..4u32)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let ok = dir.path().join("ok.npy");
    std::fs::write(&ok, npy("(4,)", &data)).unwrap();
    let o = accelforge(&[
        "qfx",
        "calibrate",
        "--input",
        ok.to_str().unwrap(),
        "--width",
        "8",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (name, shape, needle) in [
        ("huge.npy", "(1099511627776,)", "above the bound"),
        ("short.npy", "(5,)", "holds only 16 bytes"),
        ("overflow.npy", "(4294967296, 4294967296, 16)", "overflows"),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, npy(shape, &data)).unwrap();
        refused(
            &[
                "qfx",
                "calibrate",
                "--input",
                f.to_str().unwrap(),
                "--width",
                "8",
            ],
            &[name, needle],
        );
    }
}
