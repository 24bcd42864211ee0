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
    if !accelforge_test_support::tool_available("verilator") {
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

/// The configuration the mapper picks for the smallest board fits it by Yosys too, not only by
/// the calibrated model.
#[test]
fn mapped_configuration_fits_by_yosys() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let params_path = tmp.path().join("cora.json");
    let map = run_json(&[
        "map",
        "--workload",
        "mlp",
        "--board",
        "cora-z7-07s",
        "--space",
        "small",
        "--json",
        "--params-out",
        params_path.to_str().unwrap(),
    ]);
    let params: accelforge_templates::systolic::SystolicParams =
        serde_json::from_str(&std::fs::read_to_string(&params_path).unwrap()).unwrap();
    let design = accelforge_templates::systolic::rtl::design(&params).unwrap();
    let files = accelforge_hdl::tools::DesignFiles::new(&design).unwrap();
    let r = accelforge_hdl::tools::synth(
        &files.paths,
        design.top_name(),
        accelforge_hdl::tools::Family::Xc7,
    )
    .unwrap();
    let budget = &map["budget"];
    for (what, used) in [
        ("dsp", r.dsp),
        ("bram18", r.bram18_equivalent()),
        ("lut", r.lut),
        ("ff", r.ff),
    ] {
        assert!(
            used <= budget[what].as_u64().unwrap(),
            "{what}: yosys {used} > budget {}",
            budget[what]
        );
        let predicted = map["resources"][what].as_u64().unwrap();
        if what == "dsp" || what == "bram18" {
            assert_eq!(predicted, used, "{what} is counted exactly");
        }
    }
}
