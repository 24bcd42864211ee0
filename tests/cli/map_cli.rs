//! End-to-end tests of `accelforge map`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use crate::common::cli::{accelforge, refused, stderr, stdout};

#[test]
fn map_mlp_on_pynq_z2_json() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params.json");
    let o = accelforge(&[
        "map",
        "--workload",
        "mlp",
        "--board",
        "pynq-z2",
        "--json",
        "--params-out",
        params.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is only JSON");
    for key in [
        "objective",
        "params",
        "resources",
        "budget",
        "layers",
        "status",
        "solve_seconds",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert!(v["objective"].as_f64().unwrap() > 0.0);
    assert_eq!(v["status"]["kind"], "optimal");
    assert_eq!(v["layers"].as_array().unwrap().len(), 3);
    assert_eq!(v["budget"]["dsp"], 220);
    assert_eq!(v["budget"]["bram18"], 280);
    for line in ["lut", "ff", "dsp", "bram18", "uram"] {
        assert!(v["resources"][line].as_u64().unwrap() <= v["budget"][line].as_u64().unwrap());
    }
    let sum: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cycles"].as_u64().unwrap())
        .sum();
    assert_eq!(sum as f64, v["objective"].as_f64().unwrap());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
    assert_eq!(written, v["params"]);
    assert!(written["rows"].as_u64().is_some());
}

#[test]
fn map_text_mentions_the_provisional_model() {
    let o = accelforge(&[
        "map",
        "--workload",
        "mlp",
        "--board",
        "pynq-z2",
        "--space",
        "small",
        "--model",
        "provisional",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("provisional"), "{out}");
    assert!(
        out.contains("status: optimal") && out.contains("fc1"),
        "{out}"
    );
}

/// `map --workload mlp --board BOARD --space small --json EXTRA...`, parsed.
fn map_small_json(board: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "map",
        "--workload",
        "mlp",
        "--board",
        board,
        "--space",
        "small",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = accelforge(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// DSP packing in the mapper: on a DSP-bound PYNQ-Z2 the default space (both DSP PE kinds)
/// chooses a packed 16×16 array, faster than the best one-multiply-per-DSP array `--pe dsp`
/// allows (8×16), with the MILP equal to the exhaustive search; `--pe` rejects other kinds.
#[test]
fn packed_pes_buy_a_larger_array_where_dsps_bind() {
    let run = |extra: &[&str]| map_small_json("pynq-z2", extra);
    let plain = run(&["--pe", "dsp"]);
    let both = run(&[]);
    let exhaustive = run(&["--exhaustive"]);
    assert_eq!(plain["params"]["pe"], "dsp");
    assert_eq!(both["params"]["pe"], "dsp-packed", "{}", both["params"]);
    let (p, b) = (
        plain["objective"].as_f64().unwrap(),
        both["objective"].as_f64().unwrap(),
    );
    assert!(b < p, "packed {b} vs dsp {p}");
    assert_eq!(exhaustive["objective"].as_f64().unwrap(), b);
    assert!(both["resources"]["dsp"].as_u64().unwrap() <= 220);
    refused(
        &[
            "map",
            "--workload",
            "mlp",
            "--board",
            "pynq-z2",
            "--pe",
            "shift-add",
        ],
        &["invalid value 'shift-add'", "dsp-packed"],
    );
}

#[test]
fn exhaustive_and_milp_agree_through_the_cli() {
    let run = |extra: &[&str]| {
        let mut args = vec!["--formulation", "heterogeneous"];
        args.extend_from_slice(extra);
        map_small_json("ultra96-v2", &args)["objective"]
            .as_f64()
            .unwrap()
    };
    let a = run(&[]);
    let b = run(&["--exhaustive"]);
    let c = run(&["--solver", "microlp"]);
    assert!(
        (a - b).abs() < 1e-6 * a && (a - c).abs() < 1e-6 * a,
        "{a} {b} {c}"
    );
}

#[test]
fn infeasible_board_names_the_binding_resource() {
    // One engine per layer of ResNet-18 cannot fit the smallest Zynq.
    let o = accelforge(&[
        "map",
        "--workload",
        "resnet18",
        "--board",
        "cora-z7-07s",
        "--formulation",
        "dataflow",
        "--space",
        "small",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("infeasible on Cora Z7-07S"), "{err}");
    assert!(
        err.contains("needs") && err.contains("Cora Z7-07S has"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn workload_file_errors_name_file_layer_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[[layer]]\nkind = \"gemm\"\nm = 4\nk = 4\nn = 4\n\n[[layer]]\nkind = \"dense\"\nbatch = 1\nin_features = 8\n",
    )
    .unwrap();
    let o = accelforge(&[
        "map",
        "--workload",
        f.to_str().unwrap(),
        "--board",
        "pynq-z2",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bad.toml") && err.contains("layer 1") && err.contains("out_features"),
        "{err}"
    );
}

#[test]
fn unknown_workload_lists_the_builtins() {
    let o = accelforge(&["map", "--workload", "lenet", "--board", "pynq-z2"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("mlp") && err.contains("vit-tiny"), "{err}");
}

#[test]
fn map_moe_from_a_file_on_zcu102_and_kv260() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moe.toml");
    std::fs::write(
        &file,
        "[[layer]]\nname = 'experts'\nkind = 'moe'\ntokens = 16\nd_model = 16\nd_ff = 32\nexperts = 8\ntop_k = 2\n",
    )
    .unwrap();
    for board in ["zcu102", "kv260"] {
        let params = dir.path().join(format!("{board}.json"));
        let run = |extra: &[&str]| {
            let mut args = vec![
                "map",
                "--workload",
                file.to_str().unwrap(),
                "--board",
                board,
                "--model",
                "moe",
                "--json",
            ];
            args.extend_from_slice(extra);
            let o = accelforge(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
        };
        let v = run(&["--params-out", params.to_str().unwrap()]);
        let ex = run(&["--exhaustive"]);
        assert_eq!(v["model"], "moe-template");
        assert_eq!(v["status"]["kind"], "optimal");
        assert_eq!(v["objective"], ex["objective"]);
        assert_eq!(v["layers"][0]["name"], "experts");
        for line in ["lut", "ff", "dsp", "bram18", "uram"] {
            assert!(v["resources"][line].as_u64().unwrap() <= v["budget"][line].as_u64().unwrap());
        }
        // LUT and FF come from the calibrated MoE model, so their budget lines count too.
        for line in ["lut", "ff", "dsp", "bram18"] {
            assert!(v["resources"][line].as_u64().unwrap() > 0, "{line}");
        }
        // The written parameters are the MoE core's own, ready for its generator.
        let p: accelforge_templates::moe::MoeParams =
            serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
        p.validate().unwrap();
        assert_eq!((p.tokens, p.experts, p.top_k), (16, 8, 2));
    }
    // A type the MoE core cannot take is refused before mapping, naming the layer and the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[layer]]\nkind = 'moe'\ntokens = 16\nd_model = 16\nd_ff = 32\nexperts = 8\ntop_k = 2\nweight = 'ap_ufixed<8,1>'\n",
    )
    .unwrap();
    let o = accelforge(&[
        "map",
        "--workload",
        bad.to_str().unwrap(),
        "--board",
        "kv260",
        "--model",
        "moe",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("layer 0") && stderr(&o).contains("`weight`"),
        "{}",
        stderr(&o)
    );
    // The systolic model cannot run an MoE layer, and says so.
    let o = accelforge(&["map", "--workload", "moe-tiny", "--board", "kv260"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot run"), "{}", stderr(&o));
}
