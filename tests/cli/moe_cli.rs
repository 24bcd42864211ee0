//! End-to-end tests of `accelforge moe sim|estimate|gen`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use crate::common::MOE_SMALL as SMALL;
use crate::common::cli;

fn json(args: &[&str]) -> serde_json::Value {
    let out = cli::command()
        .args(args)
        .output()
        .expect("running accelforge");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn estimate_reports_cycles_and_resources() {
    let mut a = vec!["estimate", "moe", "--json", "--seed", "3"];
    a.extend(SMALL);
    let v = json(&a);
    for key in [
        "cycles",
        "weight_bytes_streamed",
        "expert_loads",
        "dsp",
        "bram18",
    ] {
        assert!(v[key].is_u64(), "{key}: {v}");
    }
    assert_eq!(v["dsp"], 4 + 2);
}

#[test]
fn sim_equals_estimate_and_reordering_pays() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let mut cycles = Vec::new();
    for extra in [&[][..], &["--no-reorder"][..]] {
        let mut a = vec!["sim", "moe", "--json", "--seed", "3", "--skew", "0.5"];
        a.extend(SMALL);
        a.extend(extra);
        let s = json(&a);
        a[0] = "estimate";
        let e = json(&a);
        assert_eq!(s["mismatches"], 0, "{s}");
        assert_eq!(s["outputs_checked"], 64);
        assert_eq!(s["cycles"], e["cycles"], "{s} {e}");
        assert_eq!(s["expert_loads"], e["expert_loads"]);
        for key in ["compute_utilization", "bandwidth_utilization"] {
            assert!(
                s[key].as_f64().is_some_and(|x| x > 0.0 && x <= 1.0),
                "{key}: {s}"
            );
        }
        cycles.push((
            s["cycles"].as_u64().unwrap(),
            s["expert_loads"].as_u64().unwrap(),
        ));
    }
    assert!(
        cycles[1].0 > cycles[0].0 && cycles[1].1 > cycles[0].1,
        "{cycles:?}"
    );
}

#[test]
fn gen_writes_verilog_and_params() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec!["gen", "moe", "--out", dir.path().to_str().unwrap()];
    a.extend(SMALL);
    let out = cli::command().args(&a).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let core = std::fs::read_to_string(dir.path().join("moe_core.v")).unwrap();
    assert!(core.contains("module moe_core"));
    assert!(dir.path().join("moe_params.json").is_file());
    // Deterministic: a second run writes the same bytes.
    let dir2 = tempfile::tempdir().unwrap();
    a[3] = dir2.path().to_str().unwrap();
    assert!(cli::command().args(&a).status().unwrap().success());
    assert_eq!(
        core,
        std::fs::read_to_string(dir2.path().join("moe_core.v")).unwrap()
    );
}

#[test]
fn impossible_parameters_are_refused_with_the_reason() {
    let out = cli::command()
        .args(["estimate", "moe", "--lanes", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lanes = 3"), "{err}");
    let out = cli::command()
        .args(["estimate", "moe", "--ddr-bytes-per-cycle", "64"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ddr_bytes_per_cycle"));
}

/// A real layer shape, ViT-S / M3ViT (d_model 384, d_ff 1536, 16 experts, top-2) on an 8x8
/// array with a 64-byte weight stream: bit-exact and cycle-exact against the estimate.
#[test]
fn vit_s_shape_simulates_exactly() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let shape = [
        "--json",
        "--seed",
        "5",
        "--skew",
        "0.5",
        "--tokens",
        "16",
        "--d-model",
        "384",
        "--d-ff",
        "1536",
        "--experts",
        "16",
        "--top-k",
        "2",
        "--lanes",
        "8",
        "--simd",
        "8",
        "--ddr-bytes-per-cycle",
        "64",
    ];
    let mut a = vec!["sim", "moe"];
    a.extend(shape);
    let s = json(&a);
    a[0] = "estimate";
    let e = json(&a);
    assert_eq!(s["mismatches"], 0, "{s}");
    assert_eq!(s["outputs_checked"], 16 * 384);
    assert_eq!(s["cycles"], e["cycles"], "{s} {e}");
    assert_eq!(s["cycles"], s["model_cycles"]);
    assert_eq!(s["expert_loads"], e["expert_loads"]);
    assert_eq!(e["dsp"], 8 * 8 + 2);
}

#[test]
fn dimensions_off_the_banking_are_refused_with_the_fix() {
    let out = cli::command()
        .args(["estimate", "moe", "--d-model", "100", "--lanes", "8"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("d_model = 100"), "{err}");
    assert!(err.contains("96 or 104"), "{err}");
    let out = cli::command()
        .args(["estimate", "moe", "--experts", "6", "--lanes", "4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("experts = 6") && err.contains("4 or 8"),
        "{err}"
    );
}

/// `--ddr-latency`: the weight source answers each request that many cycles late, in the
/// simulation and in the estimate alike; with prefetch the batch pays it about once.
#[test]
fn ddr_latency_is_simulated_and_estimated_exactly() {
    let est = |l: &str| {
        let mut a = vec![
            "estimate",
            "moe",
            "--json",
            "--seed",
            "3",
            "--ddr-latency",
            l,
        ];
        a.extend(SMALL);
        json(&a)
    };
    let (e0, e40) = (est("0"), est("40"));
    assert_eq!(e40["ddr_latency"], 40);
    assert_eq!(e0["ddr_latency"], 0);
    let (c0, c40) = (
        e0["cycles"].as_u64().unwrap(),
        e40["cycles"].as_u64().unwrap(),
    );
    assert!(c40 > c0 && c40 - c0 <= 2 * 40, "{c0} {c40}");
    // Omitted, the latency is 0.
    let mut a = vec!["estimate", "moe", "--json", "--seed", "3"];
    a.extend(SMALL);
    assert_eq!(json(&a)["cycles"], e0["cycles"]);
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let mut a = vec!["sim", "moe", "--json", "--seed", "3", "--ddr-latency", "40"];
    a.extend(SMALL);
    let s = json(&a);
    assert_eq!(s["mismatches"], 0, "{s}");
    assert_eq!(s["cycles"], e40["cycles"], "{s} {e40}");
    assert_eq!(s["model_cycles"], e40["cycles"]);
    assert_eq!(s["ddr_latency"], 40);
}

#[test]
fn a_bad_ddr_latency_is_refused_naming_the_option() {
    for bad in ["-1", "soon", "5000000000"] {
        let out = cli::command()
            .args(["estimate", "moe", &format!("--ddr-latency={bad}")])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--ddr-latency"), "{bad}: {err}");
    }
}
