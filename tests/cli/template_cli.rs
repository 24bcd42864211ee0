//! The registry's generic CLI: `accelforge templates`, and `estimate|sim NAME --params FILE
//! [--layer FILE]` for any registered template, equal to the template's own commands.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use serde_json::Value;

use crate::common::cli::{accelforge, refused, stderr, stdout};

fn json(args: &[&str]) -> Value {
    let o = accelforge(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// Writes every template's default params (`templates --json`) into `dir/NAME.json`.
fn default_params(dir: &std::path::Path) -> Value {
    let list = json(&["templates", "--json"]);
    for t in list.as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string(&t["default_params"]).unwrap(),
        )
        .unwrap();
    }
    list
}

#[test]
fn templates_lists_the_registry_with_defaults_and_an_example_layer() {
    let dir = tempfile::tempdir().unwrap();
    let list = default_params(dir.path());
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["systolic", "moe", "attention"]);
    assert_eq!(list[1]["params_file"], "moe_params.json");
    assert_eq!(list[2]["example_layer"]["op"]["tokens"], 197, "{list}");
    assert_eq!(list[0]["example_layer"]["op"]["m"], 12, "{list}");
    let text = stdout(&accelforge(&["templates"]));
    assert!(
        text.contains("systolic")
            && text.contains("Mixture-of-Experts")
            && text.contains("attention"),
        "{text}"
    );
}

/// The generic `estimate systolic` on a conv2d layer file equals `estimate conv2d`, and the
/// generic `sim systolic` runs it in Verilator with 0 mismatches and the model's cycles.
#[test]
fn generic_estimate_and_sim_equal_the_templates_own_commands() {
    let dir = tempfile::tempdir().unwrap();
    default_params(dir.path());
    let params = dir.path().join("systolic.json");
    let layer = dir.path().join("conv.toml");
    std::fs::write(
        &layer,
        "kind = \"conv2d\"\nname = \"c\"\nh = 10\nw = 9\nc_in = 3\nc_out = 12\nkernel_h = 3\nkernel_w = 3\npad = 1\n",
    )
    .unwrap();
    let (p, l) = (params.to_str().unwrap(), layer.to_str().unwrap());
    let generic = json(&[
        "estimate", "systolic", "--params", p, "--layer", l, "--json",
    ]);
    let own = json(&[
        "estimate",
        "conv2d",
        "--h",
        "10",
        "--w",
        "9",
        "--c-in",
        "3",
        "--c-out",
        "12",
        "--kernel-h",
        "3",
        "--kernel-w",
        "3",
        "--pad",
        "1",
        "--json",
    ]);
    assert_eq!(generic["cycles"], own["cycles"]);
    assert_eq!(generic["macs"], own["macs"]);
    assert_eq!(generic["resources"]["dsp"], own["resources"]["dsp"]);
    let beats = own["input_beats"].as_u64().unwrap() + own["output_beats"].as_u64().unwrap();
    assert_eq!(generic["ddr_bytes"], beats * 8, "64-bit stream");

    let sim = json(&[
        "sim", "systolic", "--params", p, "--layer", l, "--seed", "3", "--json",
    ]);
    assert_eq!(sim["mismatches"], 0, "{sim}");
    assert_eq!(sim["cycles"], own["cycles"], "{sim}");
    assert_eq!(sim["model_cycles"], own["cycles"], "{sim}");
    assert_eq!(sim["outputs_checked"], 10 * 9 * 12, "{sim}");
}

#[test]
fn generic_commands_refuse_bad_input_by_name() {
    let dir = tempfile::tempdir().unwrap();
    default_params(dir.path());
    let p = dir.path().join("systolic.json");
    let p = p.to_str().unwrap();
    refused(
        &["sim", "fft", "--params", p],
        &["unknown template `fft`", "systolic, moe"],
    );
    refused(&["estimate", "systolic", "--params", p], &["--layer FILE"]);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"rows": 0}"#).unwrap();
    refused(
        &["estimate", "systolic", "--params", bad.to_str().unwrap()],
        &["bad.json"],
    );
    refused(
        &[
            "gen",
            "fft",
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
        &["`gen fft`", "`systolic`, `moe`"],
    );
    assert!(!dir.path().join("o").exists());
    // A layer too large to simulate is refused before any operand is drawn.
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "kind = \"gemm\"\nm = 65535\nk = 256\nn = 65535\n").unwrap();
    refused(
        &[
            "sim",
            "systolic",
            "--params",
            p,
            "--layer",
            huge.to_str().unwrap(),
        ],
        &["simulation bound", "estimate"],
    );
    refused(
        &["sim", "systolic", "--params", p, "--seed", "x"],
        &["accelforge sim", "--seed"],
    );
    // An MoE layer on the systolic array is refused, not priced.
    let moe_layer = dir.path().join("moe.toml");
    std::fs::write(
        &moe_layer,
        "kind = \"moe\"\ntokens = 16\nd_model = 16\nd_ff = 32\nexperts = 4\ntop_k = 2\n",
    )
    .unwrap();
    refused(
        &[
            "estimate",
            "systolic",
            "--params",
            p,
            "--layer",
            moe_layer.to_str().unwrap(),
        ],
        &["cannot run layer", "moe"],
    );
}

/// `--params FILE` works on the MoE core's own commands too: `gen moe --params` of the file
/// `gen moe` wrote gives the same Verilog, `estimate moe --params` the same figures as the
/// flags, and flags beside `--params` are refused rather than silently ignored.
#[test]
fn moe_commands_take_a_params_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let flags = [
        "--tokens",
        "8",
        "--experts",
        "4",
        "--lanes",
        "4",
        "--simd",
        "8",
    ];
    let mut args = vec!["gen", "moe", "--out", a.to_str().unwrap()];
    args.extend(flags);
    assert!(accelforge(&args).status.success());
    let params = a.join("moe_params.json");
    let p = params.to_str().unwrap();
    let o = accelforge(&["gen", "moe", "--params", p, "--out", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut compared = 0;
    for f in std::fs::read_dir(&a).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "v") {
            let other = b.join(f.file_name().unwrap());
            assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(other).unwrap());
            compared += 1;
        }
    }
    assert_eq!(compared, 2, "moe_core.v and its FIFO");
    let mut args = vec!["estimate", "moe", "--json"];
    args.extend(flags);
    let by_flags = json(&args);
    let by_file = json(&["estimate", "moe", "--params", p, "--json"]);
    assert_eq!(by_flags, by_file);
    refused(
        &["estimate", "moe", "--params", p, "--lanes", "8"],
        &["--params", "--lanes"],
    );
}
