//! End-to-end tests of `accelforge report` on sweep, map and sim results.
// Test helpers, not only #[test] bodies, unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use crate::common::cli::accelforge;
use std::path::Path;
use std::process::Output;

fn ok(args: &[&str]) -> Output {
    let o = accelforge(args);
    assert!(
        o.status.success(),
        "accelforge {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}

/// A PNG is non-trivial when it is large and not one flat colour: check the size and that the
/// file has the PNG signature.
fn assert_png(p: &Path) {
    let bytes = std::fs::read(p).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", p.display());
    assert!(
        bytes.len() > 8_000,
        "{} is only {} bytes",
        p.display(),
        bytes.len()
    );
}

fn assert_svg(p: &Path) {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(text.contains("<svg"), "{}", p.display());
    assert!(text.contains("<text"), "{} has no labels", p.display());
    assert!(text.len() > 3_000, "{}", p.display());
}

const SPEC: &str = r#"
template = "systolic"
name = "report-test"
boards = ["pynq-z2", "ultra96-v2"]
objectives = [{ minimize = "latency_s" }, { minimize = "lut" }]
[constraints]
fits = "pynq-z2"
limits = ["dsp <= 200"]
[systolic]
rows = { start = 2, end = 16, step = 2 }
cols = { start = 2, end = 16, step = 2 }
pe = ["dsp", "shift-add"]
stream_bits = [32, 64]
max_k = 128
[workload]
layers = [
  { kind = "conv2d", name = "conv1", h = 8, w = 8, c_in = 3, c_out = 8, kernel_h = 3, kernel_w = 3, pad = 1 },
  { kind = "gemm", name = "fc", m = 4, k = 128, n = 10, repeat = 2 },
]
"#;

#[test]
fn sweep_report_has_charts_and_a_self_contained_page() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = dir.path().join("sweep");
    ok(&["sweep", "--spec", s(&spec), "--out", s(&out), "--jobs", "2"]);
    let o = ok(&["report", s(&out)]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sweep report: 5 charts"));
    let rep = out.join("report");
    for stem in [
        "pareto_latency_dsp",
        "pareto_latency_lut",
        "roofline",
        "layer_utilization",
        "budget",
    ] {
        assert_png(&rep.join(format!("{stem}.png")));
        assert_svg(&rep.join(format!("{stem}.svg")));
    }
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 5, "every chart inlined");
    for needle in [
        "Pareto front",
        "Roofline",
        "PYNQ-Z2",
        "Ultra96-V2",
        "conv1",
        "fits pynq-z2",
        "dsp &lt;= 200",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    // Self-contained: no external scripts, styles or images.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http"));
    assert!(size(&rep.join("index.html")) > 20_000);

    // --out elsewhere.
    let other = dir.path().join("elsewhere");
    ok(&["report", s(&out), "--out", s(&other)]);
    assert!(other.join("index.html").exists());
}

#[test]
fn map_and_sim_results_are_detected_and_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map");
    std::fs::create_dir(&map).unwrap();
    let map_json = serde_json::json!({
        "workload": "mlp", "board": "pynq-z2", "model": "systolic", "formulation": "overlay",
        "method": "cbc", "objective": 123456.0, "objective_seconds": 0.00123456,
        "objective_meaning": "latency of one inference", "clock_mhz": 100.0,
        "ddr_bytes_per_cycle": 21.0,
        "params": { "rows": 8, "cols": 8 },
        "engines": [],
        "resources": { "lut": 20000, "ff": 30000, "dsp": 64, "bram18": 40, "uram": 0 },
        "budget": { "lut": 53200, "ff": 106400, "dsp": 220, "bram18": 280, "uram": 0 },
        "layers": [
            { "name": "fc1", "repeat": 1, "engine": 0, "gemm": { "m": 32, "k": 784, "n": 512 },
              "groups": 1, "macs": 12845056, "tiling": {}, "compute_cycles": 100000,
              "ddr_bytes": 500000, "cycles": 100000, "seconds": 0.001, "bound": "compute" },
            { "name": "fc2", "repeat": 1, "engine": 0, "gemm": { "m": 32, "k": 512, "n": 256 },
              "groups": 1, "macs": 4194304, "tiling": {}, "compute_cycles": 20000,
              "ddr_bytes": 600000, "cycles": 23456, "seconds": 0.0002, "bound": "memory" }
        ],
        "status": { "kind": "optimal" },
        "solve_seconds": 0.21
    });
    std::fs::write(
        map.join("map.json"),
        serde_json::to_string_pretty(&map_json).unwrap(),
    )
    .unwrap();
    let o = ok(&["report", s(&map)]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("map report: 2 charts"));
    assert_png(&map.join("report/layer_cycles.png"));
    assert_png(&map.join("report/budget.png"));
    let html = std::fs::read_to_string(map.join("report/index.html")).unwrap();
    for needle in ["fc1", "fc2", "optimal", "memory", "123,456"] {
        assert!(html.contains(needle), "map page lacks {needle}");
    }

    let sim = dir.path().join("sim");
    std::fs::create_dir(&sim).unwrap();
    let sim_json = serde_json::json!({
        "cycles": 1234, "macs": 4096, "utilization": 0.2, "outputs_checked": 64,
        "mismatches": 0, "sim_cycles_per_second": 500000.0, "model_cycles": 1234,
        "sim_seconds": 0.002, "build_cached": true
    });
    std::fs::write(sim.join("sim.json"), sim_json.to_string()).unwrap();
    let o = ok(&["report", s(&sim)]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sim report: 1 charts"));
    assert_png(&sim.join("report/cycles.png"));
    let html = std::fs::read_to_string(sim.join("report/index.html")).unwrap();
    assert!(html.contains("no mismatches"));
}

#[test]
fn unknown_or_broken_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let o = accelforge(&["report", s(dir.path())]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("results.jsonl") && err.contains("map.json"),
        "{err}"
    );
    assert!(!dir.path().join("report").exists());

    std::fs::write(dir.path().join("sim.json"), "{\"cycles\": ").unwrap();
    let o = accelforge(&["report", s(dir.path())]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("sim.json"));
    assert!(!dir.path().join("report").exists(), "no half report");

    let o = accelforge(&["report", "/nonexistent/dir"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/dir"));
}
