//! `gen|estimate|sim attention --params FILE`: the registry's generic commands on the
//! attention kernel, its Zynq bundle checked by the Vivado stub, Verilator lint and Python,
//! and bad parameters refused with the field named and nothing written.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::process::Command;

use accelforge_boards::AccelInterface;
use serde_json::{Value, json};

use crate::common::cli::{accelforge, refused, stderr, stdout};
use crate::common::vivado_stub;

/// A small kernel: 2 heads of 7 tokens, d = 8, 3 query lanes of 4 elements.
fn small() -> Value {
    json!({
        "head_dim": 8, "heads": 2, "tokens": 7, "query_lanes": 3, "simd": 4,
        "qkv_type": "ap_fixed<8,3>", "score_frac_bits": 10, "score_bits": 18,
        "exp_frac_bits": 15, "exp_table_bits": 8, "output_type": "ap_fixed<16,4>"
    })
}

fn run_json(args: &[&str]) -> Value {
    let o = accelforge(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn attention_estimate_sim_and_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let params = tmp.path().join("p.json");
    std::fs::write(&params, small().to_string()).unwrap();
    let p = params.to_str().unwrap();

    // Blocks of 3, 3 and 1 queries, per head: the main machine takes nq·2 + 7·(2·2 + 3)
    // cycles per block, the dividers nq·2·(16 + 3) for the block before, side by side.
    let (mut h, mut out) = (0u64, 0u64);
    for (b, nq) in [3u64, 3, 1, 3, 3, 1].into_iter().enumerate() {
        let main = nq * 2 + 7 * 7;
        h = if b == 0 {
            main + 1
        } else {
            h + (main + 1).max(out + 1)
        };
        out = nq * 2 * 19;
    }
    assert_eq!(h + out + 1, 611);
    let est = run_json(&["estimate", "attention", "--params", p, "--json"]);
    assert_eq!(est["cycles"], 611, "{est}");
    let sim = run_json(&["sim", "attention", "--params", p, "--json"]);
    assert_eq!(sim["mismatches"], 0, "{sim}");
    assert_eq!(sim["cycles"], est["cycles"], "{sim}");
    assert_eq!(sim["model_cycles"], est["cycles"], "{sim}");

    let out = tmp.path().join("bundle");
    let o = accelforge(&[
        "gen",
        "attention",
        "--params",
        p,
        "--board",
        "pynq-z2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let accel: AccelInterface = serde_json::from_value(v["manifest"]["accel"].clone()).unwrap();
    // 2 heads x (7 Q rows + 3 blocks x 7 keys x 2 rows) x 2 beats in; 2 x 7 x 2 beats out.
    let batch = accel.fixed_batch.unwrap();
    assert_eq!((batch.in_beats, batch.out_beats), (2 * (7 + 42) * 2, 28));
    assert_eq!((accel.in_stream_bits, accel.out_stream_bits), (32, 64));
    let stub = vivado_stub::run(&out, &vivado_stub::prelude(&accel));
    assert!(stub.contains("VIVADO-STUB OK"), "{stub}");
    let py = out.join("attention_core_zynq_driver.py");
    let c = Command::new("python3")
        .args(["-m", "py_compile"])
        .arg(&py)
        .status()
        .unwrap();
    assert!(c.success());
    let hdl: Vec<_> = std::fs::read_dir(out.join("hdl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let lint = accelforge_hdl::tools::lint(&hdl, Some(&accel.name)).unwrap();
    assert!(lint.is_clean(), "{:?}", lint.diagnostics);
}

#[test]
fn bad_attention_params_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    for (field, value, needle) in [
        (
            "simd",
            json!(3),
            "simd = 3 must be a power of two dividing head_dim = 8",
        ),
        ("tokens", json!(0), "tokens = 0 is outside 1..=4096"),
        ("qkv_type", json!("ap_ufixed<8,3>"), "qkv_type"),
        (
            "exp_table_bits",
            json!(11),
            "exp_table_bits = 11 is outside 1..=10",
        ),
    ] {
        let mut p = small();
        p[field] = value;
        let path = tmp.path().join(format!("{field}.json"));
        std::fs::write(&path, p.to_string()).unwrap();
        let out = tmp.path().join(format!("out_{field}"));
        refused(
            &[
                "gen",
                "attention",
                "--params",
                path.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[needle],
        );
        assert!(!out.exists(), "{field}: nothing half-written");
    }
    // A layer of another shape is not the kernel's.
    let params = tmp.path().join("p.json");
    std::fs::write(&params, small().to_string()).unwrap();
    let layer = tmp.path().join("l.toml");
    std::fs::write(
        &layer,
        "kind = \"attention\"\nname = \"a\"\ntokens = 8\nhead_dim = 8\nheads = 2\n",
    )
    .unwrap();
    refused(
        &[
            "sim",
            "attention",
            "--params",
            params.to_str().unwrap(),
            "--layer",
            layer.to_str().unwrap(),
        ],
        &["not the attention layer this kernel is built for"],
    );
}

/// A sweep over the kernel's axes: every point priced, the best verified in Verilator.
#[test]
fn attention_sweep_explores_the_kernel_axes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("sw.toml");
    std::fs::write(
        &spec,
        r#"template = "attention"
boards = ["pynq-z2"]
objectives = [{ minimize = "latency_s" }, { minimize = "dsp" }]
[attention]
query_lanes = [1, 2, 4]
simd = [2, 4, 8]
exp_table_bits = [6, 8]
[workload]
layers = [ { kind = "attention", name = "attn", tokens = 7, head_dim = 8, heads = 2 } ]
"#,
    )
    .unwrap();
    let out = tmp.path().join("run");
    let o = accelforge(&[
        "sweep",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--verify",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("18 of 18 points"), "{text}");
    assert!(text.contains(", 0 mismatches"), "{text}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(
        csv.starts_with(
            "id,index,status,query_lanes,simd,score_frac_bits,exp_frac_bits,exp_table_bits,"
        ),
        "{csv}"
    );
    // A layer the kernel does not run is refused by name.
    std::fs::write(
        &spec,
        "template = \"attention\"\nboards = [\"pynq-z2\"]\nobjectives = [{ minimize = \"dsp\" }]\n[attention]\nquery_lanes = 1\nsimd = 2\n[workload]\nlayers = [ { kind = \"gemm\", name = \"g\", m = 2, k = 2, n = 2 } ]\n",
    )
    .unwrap();
    refused(
        &[
            "sweep",
            "--spec",
            spec.to_str().unwrap(),
            "--out",
            tmp.path().join("r2").to_str().unwrap(),
        ],
        &["layer `g` is a gemm layer, which the attention template does not run"],
    );
}

/// `map --model joint`: an encoder block's kernels sized together, with the engines running in
/// turn (`sequential`: the objective is the block's latency, every layer's cycles added) or
/// pipelined (`heterogeneous`: the busiest kernel).
#[test]
fn map_joint_sizes_the_block_kernels() {
    for (formulation, sum) in [("sequential", true), ("heterogeneous", false)] {
        let r = run_json(&[
            "map",
            "--workload",
            "vit-tiny-block",
            "--board",
            "zcu102",
            "--model",
            "joint",
            "--space",
            "small",
            "--formulation",
            formulation,
            "--engines",
            "2",
            "--json",
        ]);
        let layers = r["layers"].as_array().unwrap();
        let cycles: Vec<u64> = layers
            .iter()
            .map(|l| l["cycles"].as_u64().unwrap())
            .collect();
        let objective = r["objective"].as_f64().unwrap();
        if sum {
            assert_eq!(objective, cycles.iter().sum::<u64>() as f64, "{r}");
        } else {
            assert!(objective < cycles.iter().sum::<u64>() as f64, "{r}");
        }
        let attn = layers.iter().find(|l| l["name"] == "attn").unwrap();
        let engine = &r["engines"][attn["engine"].as_u64().unwrap() as usize];
        assert!(engine["params"]["query_lanes"].is_u64(), "{r}");
        let lines = r["utilisation"]["lines"].as_array().unwrap();
        assert!(lines.iter().all(|l| l["exceeds"] == false), "{r}");
    }
}

/// `map --dataflow os` keeps the linear kernel output-stationary (the dataflow whose
/// per-channel requantizer `sim block` reuses for every projection), on an `encoder_block`
/// workload file, and the block's layers come out under the block's name.
#[test]
fn map_dataflow_filter_on_an_encoder_block_file() {
    let tmp = tempfile::tempdir().unwrap();
    let wl = tmp.path().join("enc.toml");
    std::fs::write(
        &wl,
        "[[layer]]\nname = \"enc\"\nkind = \"encoder_block\"\ntokens = 197\nd_model = 192\n\
         heads = 3\nd_ff = 768\n",
    )
    .unwrap();
    let r = run_json(&[
        "map",
        "--workload",
        wl.to_str().unwrap(),
        "--board",
        "zcu102",
        "--model",
        "joint",
        "--space",
        "small",
        "--formulation",
        "sequential",
        "--engines",
        "2",
        "--dataflow",
        "os",
        "--json",
    ]);
    let layers = r["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["enc.qkv", "enc.attn", "enc.proj", "enc.fc1", "enc.fc2"]
    );
    let qkv = &layers[0];
    let engine = &r["engines"][qkv["engine"].as_u64().unwrap() as usize];
    assert_eq!(engine["params"]["dataflow"], "os", "{r}");
}

/// `map --linear-requant per-channel --reserve-dsp N`: the linear kernel priced as `sim block`
/// builds it (per-channel tables for the widest GEMM) within the budget less the reserve; an
/// impossible reserve is refused.
#[test]
fn map_prices_the_block_linear_kernel_and_a_reserve() {
    let base = [
        "map",
        "--workload",
        "vit-tiny-block",
        "--board",
        "zcu102",
        "--model",
        "joint",
        "--space",
        "small",
        "--formulation",
        "sequential",
        "--engines",
        "2",
        "--dataflow",
        "os",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--linear-requant",
        "per-channel",
        "--reserve-dsp",
        "44",
        "--json",
    ]);
    let r = run_json(&args);
    let qkv = &r["layers"][0];
    let engine = &r["engines"][qkv["engine"].as_u64().unwrap() as usize];
    assert_eq!(
        engine["params"]["requant"]["per_channel"]["max_channels"], 768,
        "{r}"
    );
    let lines = r["utilisation"]["lines"].as_array().unwrap();
    let dsp = lines.iter().find(|l| l["resource"] == "dsp").unwrap();
    assert_eq!(dsp["available"], 2520 - 44, "{r}");
    let mut bad = base.to_vec();
    bad.extend(["--reserve-dsp", "9999"]);
    refused(&bad, &["--reserve-dsp 9999", "2520"]);
    // Tables wider than the requantizer takes, and a workload without GEMMs, are named.
    let tmp = tempfile::tempdir().unwrap();
    let wide = tmp.path().join("wide.toml");
    std::fs::write(
        &wide,
        "[[layer]]\nkind = \"gemm\"\nm = 8\nk = 64\nn = 5000\n",
    )
    .unwrap();
    let attn = tmp.path().join("attn.toml");
    std::fs::write(
        &attn,
        "[[layer]]\nkind = \"attention\"\ntokens = 8\nhead_dim = 8\nheads = 1\n",
    )
    .unwrap();
    for (wl, needle) in [
        (&wide, "5000 columns"),
        (&attn, "needs a workload with GEMM"),
    ] {
        refused(
            &[
                "map",
                "--workload",
                wl.to_str().unwrap(),
                "--board",
                "zcu102",
                "--model",
                "joint",
                "--space",
                "small",
                "--linear-requant",
                "per-channel",
            ],
            &[needle],
        );
    }
}
