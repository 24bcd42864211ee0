//! The mapper's predicted cycles equal Verilator's: for one layer of each built-in workload, map
//! the workload onto a board with the template's model, feed the chosen parameters to `sim`
//! (`--params`), and compare.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::process::Command;

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn mapped_layer_cycles_equal_simulated_cycles() {
    if !accelforge_hdl::tools::available_for_tests("verilator") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // (workload, board, layer to simulate): the smallest GEMM-like layer keeps the suite quick.
    for (workload, board) in [
        ("mlp", "pynq-z2"),
        ("vit-tiny", "kv260"),
        ("mobilenet", "zcu104"),
        ("resnet18", "zcu102"),
    ] {
        let params = tmp.path().join(format!("{workload}.json"));
        let map = run_json(&[
            "map",
            "--workload",
            workload,
            "--board",
            board,
            "--space",
            "small",
            "--json",
            "--params-out",
            params.to_str().unwrap(),
        ]);
        let layers = map["layers"].as_array().unwrap();
        // The layer with the fewest predicted compute cycles.
        let layer = layers
            .iter()
            .min_by_key(|l| l["compute_cycles"].as_u64().unwrap_or(u64::MAX))
            .unwrap();
        let g = &layer["gemm"];
        let (m, k, n) = (
            g["m"].as_u64().unwrap(),
            g["k"].as_u64().unwrap(),
            g["n"].as_u64().unwrap(),
        );
        let groups = layer["groups"].as_u64().unwrap_or(1);
        let sim = run_json(&[
            "sim",
            "gemm",
            "--params",
            params.to_str().unwrap(),
            "--m",
            &m.to_string(),
            "--k",
            &k.to_string(),
            "--n",
            &n.to_string(),
            "--json",
        ]);
        assert_eq!(sim["mismatches"], 0, "{workload}: {sim}");
        assert_eq!(
            sim["cycles"].as_u64().unwrap() * groups,
            layer["compute_cycles"].as_u64().unwrap(),
            "{workload} layer {}: {sim} vs {layer}",
            layer["name"]
        );
    }
}
