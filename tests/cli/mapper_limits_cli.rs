//! `map` honours its time limit and reports model errors; `sweep` bounds `--jobs` and marks
//! points `validate()` rejects as invalid (issue 13, slice D2).
// Test helpers, not only #[test] bodies, unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::cli;
use cli::{accelforge, accelforge_within};

#[test]
fn map_time_limit_stops_resnet18_with_a_clear_message() {
    // resnet18 on the default space spends minutes pricing candidates with the exact cycle
    // model before the solver starts; the limit has to cover that, not only the solver.
    let o = accelforge_within(
        &[
            "map",
            "--workload",
            "resnet18",
            "--board",
            "pynq-z2",
            "--time-limit",
            "1",
        ],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        // A result in time is fine too, but then it must say it was time-limited or optimal.
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("status: "), "{out}");
    } else {
        assert!(
            err.contains("time limit of 1 s") && err.contains("--time-limit"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn map_time_limit_stops_a_slow_solve() {
    // Pricing is quick with the provisional model; here the time goes into CBC, which does
    // not stop by itself at its `seconds` limit on this model.
    let o = accelforge_within(
        &[
            "map",
            "--workload",
            "vit-tiny",
            "--board",
            "pynq-z2",
            "--model",
            "provisional",
            "--formulation",
            "heterogeneous",
            "--engines",
            "3",
            "--time-limit",
            "2",
            "--json",
        ],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["status"]["kind"].is_string(), "{v}");
    } else {
        assert!(err.contains("time limit of 2 s"), "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn map_has_a_default_time_limit_and_refuses_a_bad_one() {
    let help = accelforge(&["map", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 60]"), "{help}");
    let o = accelforge(&[
        "map",
        "--workload",
        "mlp",
        "--board",
        "pynq-z2",
        "--time-limit=-3",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--time-limit"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn map_json_reports_model_errors() {
    let o = accelforge_within(
        &[
            "map",
            "--workload",
            "mlp",
            "--board",
            "pynq-z2",
            "--space",
            "small",
            "--json",
        ],
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["model_errors"]["count"], 0, "{v}");
    assert!(v["model_errors"]["examples"].is_array(), "{v}");
}

#[test]
fn sweep_jobs_is_bounded_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = dir.path().join("out");
    let o = accelforge_within(
        &[
            "sweep",
            "--spec",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "100000",
        ],
        Duration::from_secs(60),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--jobs") && err.contains("1024"), "{err}");
    assert!(!out.exists());
    let o = accelforge(&[
        "sweep",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "0",
    ]);
    assert!(!o.status.success());
}

const SPEC: &str = r#"
template = "systolic"
boards = ["pynq-z2"]
objectives = [{ minimize = "latency_cycles" }]
[systolic]
rows = [4]
cols = [4]
stream_bits = [32]
max_k = [0, 64]
input_type = ["ap_fixed<8,8>"]
[workload]
layers = [{ kind = "gemm", name = "fc", m = 8, k = 8, n = 8 }]
"#;

#[test]
fn sweep_marks_points_validate_rejects_invalid_like_gen() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = dir.path().join("out");
    let o = accelforge(&[
        "sweep",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let max_k = r["params"]["max_k"].as_u64().unwrap();
        // gen decides with the same validate(): its verdict and the sweep's must agree.
        let gen_dir = dir.path().join(format!("gen{max_k}"));
        let g = accelforge(&[
            "gen",
            "systolic",
            "--rows",
            "4",
            "--cols",
            "4",
            "--max-k",
            &max_k.to_string(),
            "--out",
            gen_dir.to_str().unwrap(),
        ]);
        if max_k == 0 {
            assert_eq!(r["status"], "invalid", "{r}");
            assert!(r["error"].as_str().unwrap().contains("max_k"), "{r}");
            assert!(!g.status.success());
        } else {
            assert_eq!(r["status"], "ok", "{r}");
            assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}
