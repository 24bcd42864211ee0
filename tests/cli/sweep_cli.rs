//! End-to-end tests of `accelforge sweep` and `accelforge merge`.
// Test helpers, not only #[test] bodies, unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use crate::common::cli::{accelforge, stderr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(args: &[&str]) -> Output {
    let o = accelforge(args);
    assert!(
        o.status.success(),
        "accelforge {args:?} failed:\n{}",
        stderr(&o)
    );
    o
}

/// rows 1..=16 × cols 1..=16 × 2 stream widths × 4 buffer depths × 5 chunk sizes = 10,240.
const LARGE: &str = r#"
template = "systolic"
boards = ["pynq-z2", "kv260"]
objectives = [{ minimize = "latency_cycles" }, { minimize = "dsp" }, { minimize = "lut" }]
[constraints]
fits = "pynq-z2"
limits = ["bram18 <= 200"]
[systolic]
rows = { start = 1, end = 16 }
cols = { start = 1, end = 16, step = 1 }
stream_bits = [32, 64]
max_k = { start = 4, end = 32, factor = 2 }
n_chunk_tiles = [1, 2, 4, 8, 16]
[workload]
layers = [{ kind = "gemm", name = "fc", m = 8, k = 8, n = 8 }]
"#;

/// 12 × 12 × 2 × 2 = 576 points with a heavier (two-layer) workload.
const MEDIUM: &str = r#"
template = "systolic"
boards = ["pynq-z2"]
objectives = [{ minimize = "latency_s" }, { minimize = "dsp" }]
[systolic]
rows = { start = 1, end = 12 }
cols = { start = 1, end = 12 }
stream_bits = [32, 64]
n_chunk_tiles = [1, 4]
max_k = 128
[workload]
layers = [
  { kind = "gemm", name = "fc1", m = 16, k = 64, n = 24 },
  { kind = "conv2d", name = "conv", h = 6, w = 6, c_in = 4, c_out = 8, kernel_h = 3, kernel_w = 3, pad = 1 },
]
"#;

fn write_spec(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn ten_thousand_points_stream_to_disk_with_derived_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "large.toml", LARGE);
    let out = dir.path().join("out");
    let o = ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&out),
        "--jobs",
        "2",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["total_points"], 10_240);
    assert_eq!(summary["counts"]["points"], 10_240);
    let c = &summary["counts"];
    assert!(c["ok"].as_u64().unwrap() > 1000, "{summary}");
    assert!(
        c["invalid"].as_u64().unwrap() > 0,
        "max_k = 4 cannot run K = 8: {summary}"
    );
    assert!(summary["run"]["points_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(sorted_lines(&out.join("results.jsonl")).len(), 10_240);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10_241);
    assert!(csv.starts_with("id,index,status,rows,cols,"));
    let pareto = std::fs::read_to_string(out.join("pareto.csv")).unwrap();
    let front = pareto.lines().count() - 1;
    assert_eq!(front as u64, summary["pareto_points"].as_u64().unwrap());
    assert!(front >= 3, "{pareto}");
    // Every Pareto point is feasible: fits the PYNQ-Z2 and meets the BRAM limit.
    for line in pareto.lines().skip(1) {
        assert!(line.contains(",ok,"), "{line}");
    }
    // The id set has no duplicates.
    let ids: std::collections::HashSet<String> = sorted_lines(&out.join("results.jsonl"))
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 10_240);
}

#[test]
fn resume_after_a_stop_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "medium.toml", MEDIUM);
    let full = dir.path().join("full");
    ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&full),
        "--jobs",
        "2",
    ]);

    let part = dir.path().join("part");
    ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&part),
        "--jobs",
        "2",
        "--max-points",
        "150",
    ]);
    let results = part.join("results.jsonl");
    assert_eq!(sorted_lines(&results).len(), 150);
    assert!(
        !part.join("summary.json").exists(),
        "a stopped run is not finalised"
    );
    // A killed writer may leave half a line behind: resume must drop it.
    let mut text = std::fs::read_to_string(&results).unwrap();
    text.push_str("{\"id\":\"0123");
    std::fs::write(&results, text).unwrap();

    // Without --resume the directory is refused, untouched.
    let o = accelforge(&["sweep", "--spec", s(&spec), "--out", s(&part)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));

    let o = ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&part),
        "--jobs",
        "2",
        "--resume",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["run"]["resumed"], 150);
    assert_eq!(summary["run"]["evaluated"], 576 - 150);
    assert_eq!(
        sorted_lines(&results),
        sorted_lines(&full.join("results.jsonl"))
    );
    assert_eq!(
        std::fs::read_to_string(part.join("pareto.csv")).unwrap(),
        std::fs::read_to_string(full.join("pareto.csv")).unwrap()
    );
}

#[test]
fn a_killed_sweep_resumes_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "large.toml", LARGE);
    let out = dir.path().join("killed");
    let results = out.join("results.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .args(["sweep", "--spec", s(&spec), "--out", s(&out), "--jobs", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some results are on disk (or let it finish if the machine is fast).
    let start = std::time::Instant::now();
    loop {
        let n = std::fs::read(&results)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if n >= 500 || start.elapsed().as_secs() > 60 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&out),
        "--jobs",
        "2",
        "--resume",
    ]);
    let lines = sorted_lines(&results);
    assert_eq!(lines.len(), 10_240);
    let ids: std::collections::HashSet<&str> = lines.iter().map(|l| &l[7..23]).collect();
    assert_eq!(ids.len(), 10_240, "no point twice, none missing");
}

#[test]
fn three_shards_merged_equal_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "medium.toml", MEDIUM);
    let full = dir.path().join("full");
    ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&full),
        "--jobs",
        "2",
    ]);
    let mut shards = Vec::new();
    for i in 1..=3 {
        let d = dir.path().join(format!("shard{i}"));
        let o = ok(&[
            "sweep",
            "--spec",
            s(&spec),
            "--out",
            s(&d),
            "--shard",
            &format!("{i}/3"),
            "--json",
        ]);
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(summary["counts"]["points"], 192, "576 / 3");
        shards.push(d);
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|d| s(d)));
    // A shard given twice is deduplicated.
    args.push(s(&shards[0]));
    args.extend(["--out", s(&merged)]);
    let o = ok(&args);
    assert!(String::from_utf8_lossy(&o.stdout).contains("192 duplicates"));
    assert_eq!(
        sorted_lines(&merged.join("results.jsonl")),
        sorted_lines(&full.join("results.jsonl"))
    );
    assert_eq!(
        std::fs::read_to_string(merged.join("pareto.csv")).unwrap(),
        std::fs::read_to_string(full.join("pareto.csv")).unwrap()
    );
    assert_eq!(
        sorted_lines(&merged.join("results.csv")),
        sorted_lines(&full.join("results.csv"))
    );
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("summary.json")).unwrap())
            .unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(full.join("summary.json")).unwrap()).unwrap();
    assert_eq!(a["counts"], b["counts"]);
    assert_eq!(a["best"], b["best"]);

    // Shards of a different spec do not merge.
    let other = write_spec(
        dir.path(),
        "other.toml",
        &MEDIUM.replace("pynq-z2", "kv260"),
    );
    let od = dir.path().join("other");
    ok(&[
        "sweep",
        "--spec",
        s(&other),
        "--out",
        s(&od),
        "--shard",
        "1/3",
    ]);
    let o = accelforge(&[
        "merge",
        s(&shards[0]),
        s(&od),
        "--out",
        s(&dir.path().join("bad")),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("different sweep specs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn spec_errors_name_the_file_and_key_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            MEDIUM.replace("stream_bits", "stream_bitz"),
            "systolic",
            "stream_bitz",
        ),
        (
            MEDIUM.replace("max_k = 128", "max_k = { start = 8, stop = 64 }"),
            "systolic.max_k",
            "stop",
        ),
        (
            MEDIUM.replace(
                "[systolic]",
                "[constraints]\nlimits = [\"dsp << 3\"]\n[systolic]",
            ),
            "constraints.limits[0]",
            "not a number",
        ),
        (
            MEDIUM.replace("minimize = \"dsp\"", "minimize = \"dsps\""),
            "objectives[1]",
            "unknown metric",
        ),
        (
            MEDIUM.replace("\"pynq-z2\"", "\"pynq-z9\""),
            "boards[0]",
            "pynq-z9",
        ),
        (MEDIUM.replace("m = 16,", "m = -1,"), "workload.layers", "m"),
        // The spelling before the layer vocabulary was unified: the error names the new one.
        (
            MEDIUM.replace("kind = \"gemm\"", "type = \"gemm\""),
            "workload.layers[0].type",
            "kind = \"gemm\"",
        ),
        (
            MEDIUM.replace(
                "rows = { start = 1, end = 12 }",
                "rows = { start = 5, end = 2 }",
            ),
            "systolic.rows",
            "below start",
        ),
    ];
    for (i, (text, key, word)) in cases.iter().enumerate() {
        let spec = write_spec(dir.path(), &format!("bad{i}.toml"), text);
        let out = dir.path().join(format!("out{i}"));
        let o = accelforge(&["sweep", "--spec", s(&spec), "--out", s(&out)]);
        assert!(!o.status.success(), "case {i} succeeded");
        let err = stderr(&o);
        assert!(err.contains(&format!("bad{i}.toml")), "case {i}: {err}");
        assert!(err.contains(key), "case {i}: expected key {key}: {err}");
        assert!(err.contains(word), "case {i}: expected {word}: {err}");
        assert!(!out.exists(), "case {i}: nothing may be written");
    }
    let o = accelforge(&[
        "sweep",
        "--spec",
        "/nonexistent/spec.toml",
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/spec.toml"));
    let spec = write_spec(dir.path(), "ok.toml", MEDIUM);
    let o = accelforge(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&dir.path().join("y")),
        "--shard",
        "4/3",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1 <= I <= N"), "{}", stderr(&o));
}

#[test]
fn verify_two_pareto_points_in_verilator() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "tiny.toml",
        r#"
template = "systolic"
objectives = [{ minimize = "latency_cycles" }, { minimize = "dsp" }]
[systolic]
rows = [2, 3]
cols = [2, 3]
pe = ["dsp", "dsp-packed"]
stream_bits = 32
max_k = 16
n_chunk_tiles = 1
[workload]
layers = [{ kind = "gemm", name = "g", m = 5, k = 7, n = 4 }]
"#,
    );
    let out = dir.path().join("out");
    let o = ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&out),
        "--verify",
        "2",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = summary["verify"].as_array().unwrap();
    assert_eq!(v.len(), 2, "{summary}");
    for r in v {
        assert_eq!(r["mismatches"], 0, "{r}");
        assert_eq!(r["measured_cycles"], r["model_cycles"], "{r}");
        assert!(r["outputs_checked"].as_u64().unwrap() >= 20);
    }
    let pareto = std::fs::read_to_string(out.join("pareto.csv")).unwrap();
    assert!(
        pareto
            .lines()
            .next()
            .unwrap()
            .contains("verified_measured_cycles")
    );
    // Packed PEs halve the DSPs at the same cycles, so they make the front (and are verified).
    assert!(pareto.contains("dsp-packed"), "{pareto}");
}

const MOE: &str = r#"
template = "moe"
boards = ["kv260", "zcu102"]
objectives = [{ minimize = "latency_cycles" }, { minimize = "dsp" }]
[moe]
lanes = [1, 2, 4, 8]
simd = [2, 4, 8]
ddr_bytes_per_cycle = [1, 2, 4, 8, 16]
reorder = [true, false]
[workload]
layers = [{ kind = "moe", name = "experts", tokens = 8, d_model = 16, d_ff = 32, experts = 4, top_k = 2, repeat = 3 }]
"#;

#[test]
fn moe_sweep_prices_reordering_and_bandwidth_and_verifies_in_verilator() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "moe.toml", MOE);
    let out = dir.path().join("out");
    let o = ok(&[
        "sweep",
        "--spec",
        s(&spec),
        "--out",
        s(&out),
        "--verify",
        "1",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["counts"]["points"], 4 * 3 * 5 * 2, "{summary}");
    let v = summary["verify"].as_array().unwrap();
    assert_eq!(v.len(), 1, "{summary}");
    assert_eq!(v[0]["mismatches"], 0, "{}", v[0]);
    assert_eq!(v[0]["measured_cycles"], v[0]["model_cycles"], "{}", v[0]);

    // Per point: with reordering every expert streams once, so fewer weight bytes and no more
    // cycles than token order; more stream bandwidth never costs cycles.
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["status"] == "ok")
        .collect();
    assert!(recs.len() > 20, "{} feasible points", recs.len());
    let find = |lanes: u64, simd: u64, ddr: u64, reorder: bool| {
        recs.iter().find(|r| {
            r["params"]["lanes"] == lanes
                && r["params"]["simd"] == simd
                && r["params"]["ddr_bytes_per_cycle"] == ddr
                && r["params"]["reorder"] == reorder
        })
    };
    let metric = |r: &serde_json::Value, m: &str| r["metrics"][m].as_f64().unwrap();
    let mut compared = 0;
    for r in recs.iter().filter(|r| r["params"]["reorder"] == true) {
        let (l, sd, d) = (
            r["params"]["lanes"].as_u64().unwrap(),
            r["params"]["simd"].as_u64().unwrap(),
            r["params"]["ddr_bytes_per_cycle"].as_u64().unwrap(),
        );
        let t = find(l, sd, d, false).unwrap();
        assert!(metric(r, "ddr_bytes") < metric(t, "ddr_bytes"), "{r}");
        assert!(
            metric(r, "latency_cycles") <= metric(t, "latency_cycles"),
            "{r}"
        );
        // The workload repeats the layer three times.
        assert_eq!(
            metric(r, "latency_cycles"),
            3.0 * r["layers"][0]["cycles"].as_f64().unwrap()
        );
        if let Some(wider) = find(l, sd, d * 2, true) {
            assert!(metric(wider, "latency_cycles") <= metric(r, "latency_cycles"));
        }
        compared += 1;
    }
    assert!(compared > 10);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("ddr_bytes_per_cycle"));
}

#[test]
fn moe_spec_errors_name_the_layer_or_table() {
    let dir = tempfile::tempdir().unwrap();
    let two_shapes = MOE.replace(
        "repeat = 3 }]",
        "repeat = 3 }, { kind = \"moe\", name = \"wide\", tokens = 8, d_model = 32, d_ff = 32, experts = 4, top_k = 2 }]",
    );
    let gemm_in_moe = MOE.replace(
        "repeat = 3 }]",
        "repeat = 3 }, { kind = \"gemm\", name = \"fc\", m = 4, k = 4, n = 4 }]",
    );
    let moe_in_systolic = MOE
        .replace("template = \"moe\"", "template = \"systolic\"")
        .replace("[moe]", "[systolic]\nrows = 2\ncols = 2\n[moe]");
    let cases = [
        (two_shapes, "workload", "different shapes"),
        (gemm_in_moe, "workload", "`fc`"),
        (moe_in_systolic, "workload", "`experts`"),
        (MOE.replace("[moe]", "[mo]"), "mo", "unknown field"),
        (MOE.replace("simd", "simd_x"), "moe", "simd_x"),
    ];
    for (i, (text, key, word)) in cases.iter().enumerate() {
        let spec = write_spec(dir.path(), &format!("bad{i}.toml"), text);
        let out = dir.path().join(format!("out{i}"));
        let o = accelforge(&["sweep", "--spec", s(&spec), "--out", s(&out)]);
        assert!(!o.status.success(), "case {i} succeeded");
        let err = stderr(&o);
        assert!(err.contains(key), "case {i}: expected key {key}: {err}");
        assert!(err.contains(word), "case {i}: expected {word}: {err}");
        assert!(!out.exists(), "case {i}: nothing may be written");
    }
}

/// The sweep reads the mapper's workloads too: a built-in by name, or a file whose layers say
/// `kind = ...`. Both equal the same layers written inline in the spec.
#[test]
fn mapper_workloads_sweep_like_their_sweep_format_twins() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"
template = "systolic"
objectives = [{ minimize = "latency_cycles" }, { minimize = "dsp" }]
[systolic]
rows = [4, 8]
cols = [4, 8]
max_k = 1024
[workload]
"#;
    std::fs::write(
        dir.path().join("mapper_fmt.toml"),
        "[[layer]]\nname = 'c'\nkind = 'conv2d'\nh = 8\nw = 8\nc_in = 3\nc_out = 8\nkernel_h = 3\nkernel_w = 3\npad = 1\n\
         [[layer]]\nname = 'dw'\nkind = 'conv2d'\nh = 8\nw = 8\nc_in = 8\nc_out = 8\nkernel_h = 3\nkernel_w = 3\npad = 1\ndepthwise = true\n",
    )
    .unwrap();
    let variants = [
        ("builtin", "builtin = \"mlp\"\n".to_string()),
        (
            "own",
            "layers = [{ kind = \"gemm\", name = \"fc1\", m = 32, k = 784, n = 512 }, \
             { kind = \"gemm\", name = \"fc2\", m = 32, k = 512, n = 256 }, \
             { kind = \"gemm\", name = \"fc3\", m = 32, k = 256, n = 10 }]\n"
                .to_string(),
        ),
        ("mapperfile", "file = \"mapper_fmt.toml\"\n".to_string()),
        (
            // The depthwise layer: 8 groups of M = 64, K = 9, N = 1.
            "ownconv",
            "layers = [{ kind = \"conv2d\", name = \"c\", h = 8, w = 8, c_in = 3, c_out = 8, kernel_h = 3, kernel_w = 3, pad = 1 }, \
             { kind = \"gemm\", name = \"dw\", m = 64, k = 9, n = 1, repeat = 8 }]\n"
                .to_string(),
        ),
    ];
    let mut latency = Vec::new();
    for (name, workload) in &variants {
        let spec = write_spec(
            dir.path(),
            &format!("{name}.toml"),
            &(head.to_string() + workload),
        );
        let out = dir.path().join(name);
        ok(&["sweep", "--spec", s(&spec), "--out", s(&out)]);
        let mut l: Vec<String> = std::fs::read_to_string(out.join("results.jsonl"))
            .unwrap()
            .lines()
            .map(|line| {
                let r: serde_json::Value = serde_json::from_str(line).unwrap();
                format!("{} {}", r["params"], r["metrics"]["latency_cycles"])
            })
            .collect();
        l.sort();
        assert_eq!(l.len(), 4, "{name}");
        latency.push(l);
    }
    assert_eq!(
        latency[0], latency[1],
        "built-in mlp vs the same layers inline"
    );
    assert_eq!(
        latency[2], latency[3],
        "mapper-format file vs the same layers inline"
    );

    for (i, (builtin, word)) in [
        ("moe-tiny", "template = \"moe\""),
        ("resnet99", "workload.builtin"),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = write_spec(
            dir.path(),
            &format!("bad{i}.toml"),
            &format!("{head}builtin = \"{builtin}\"\n"),
        );
        let out = dir.path().join(format!("bad{i}"));
        let o = accelforge(&["sweep", "--spec", s(&spec), "--out", s(&out)]);
        assert!(!o.status.success(), "{builtin} was accepted");
        assert!(stderr(&o).contains(word), "{}", stderr(&o));
        assert!(!out.exists(), "nothing may be written");
    }
}
