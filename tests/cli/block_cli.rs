//! `sim block` / `estimate block`: a small encoder block (MLP and MoE) through the CLI, every
//! stage's Verilator count equal to the model with 0 mismatches, the estimate equal to the
//! simulation, and bad shapes refused by name.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use serde_json::Value;

use crate::common::cli::{accelforge, refused, stderr, stdout};

const SMALL: &[&str] = &[
    "--tokens",
    "9",
    "--d-model",
    "16",
    "--heads",
    "2",
    "--d-ff",
    "32",
    "--rows",
    "4",
    "--cols",
    "4",
    "--query-lanes",
    "2",
    "--attn-simd",
    "4",
    "--ln-lanes",
    "2",
    "--moe-lanes",
    "4",
    "--moe-simd",
    "4",
    "--moe-ddr-bytes",
    "8",
    "--json",
];

fn run_json(cmd: &str, extra: &[&str]) -> Value {
    let mut args = vec![cmd, "block"];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    let o = accelforge(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn block_sim_equals_estimate_for_mlp_and_moe() {
    for (extra, stages) in [
        (&[][..], 9),
        (&["--activation", "relu"][..], 8),
        (&["--experts", "4", "--top-k", "2"][..], 7),
    ] {
        let sim = run_json("sim", extra);
        let est = run_json("estimate", extra);
        let st = sim["stages"].as_array().unwrap();
        assert_eq!(st.len(), stages, "{sim}");
        assert_eq!(sim["mismatches"], 0, "{sim}");
        assert!(sim["outputs_checked"].as_u64().unwrap() > 0, "{sim}");
        for s in st {
            assert_eq!(s["cycles"], s["model_cycles"], "{s}");
            assert!(s["err_mean"].as_f64().unwrap() > 0.0, "{s}");
        }
        assert_eq!(sim["cycles"], sim["model_cycles"], "{sim}");
        assert_eq!(est["model_cycles"], sim["model_cycles"], "{est}");
        assert!(est["cycles"].is_null(), "{est}");
        let ms = sim["latency_ms"].as_f64().unwrap();
        let want = sim["model_cycles"].as_f64().unwrap() / 150.0 / 1e3;
        assert!((ms - want).abs() < 1e-12, "{sim}");
    }
}

#[test]
fn bad_blocks_are_refused_by_name() {
    // SMALL with `extra`'s flags replacing its own.
    let with = |extra: &[&'static str]| {
        let mut a = vec!["estimate", "block"];
        let mut i = 0;
        while i < SMALL.len() {
            if SMALL[i] != "--json" && extra.contains(&SMALL[i]) {
                i += 2;
                continue;
            }
            a.push(SMALL[i]);
            i += 1;
        }
        a.extend_from_slice(extra);
        a
    };
    refused(&with(&["--heads", "3"]), &["heads = 3", "d_model = 16"]);
    refused(&with(&["--experts", "4", "--top-k", "3"]), &["top_k = 3"]);
    refused(&with(&["--tokens", "1"]), &["tokens = 1"]);
    refused(&with(&["--ln-lanes", "3"]), &["lanes = 3"]);
    refused(&with(&["--rows", "0"]), &["linear kernel"]);
    refused(&with(&["--board", "no-such-board"]), &["no-such-board"]);
    refused(&with(&["--clock-mhz", "0"]), &["--clock-mhz"]);
    // Too large to simulate: refused before any data is drawn; the estimate still prices it.
    let big = [
        "sim",
        "block",
        "--tokens",
        "1024",
        "--d-model",
        "1024",
        "--heads",
        "16",
        "--d-ff",
        "4096",
        "--experts",
        "64",
    ];
    refused(&big, &["simulation bound", "estimate block"]);
    // 256 wide experts: too many weights to draw, for the estimate too.
    refused(
        &[
            "estimate",
            "block",
            "--tokens",
            "16",
            "--d-model",
            "512",
            "--heads",
            "8",
            "--d-ff",
            "4096",
            "--experts",
            "256",
        ],
        &["pricing this block", "elements", "encoder_block"],
    );
    // Too large even for the golden models both commands run: refused at once, not hours later.
    for cmd in ["estimate", "sim"] {
        refused(
            &[
                cmd,
                "block",
                "--tokens",
                "1024",
                "--d-model",
                "1024",
                "--heads",
                "16",
                "--d-ff",
                "4096",
            ],
            &["multiply-accumulates", "encoder_block"],
        );
    }
}
