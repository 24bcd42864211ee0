//! `accelforge gen systolic --board NAME`: the whole Zynq bundle from the command line, checked
//! as far as possible without Vivado — the build script runs under the Vivado stand-in, the
//! driver compiles, and over-budget designs are refused unless asked for.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use crate::common::cli;
use std::path::Path;
use std::process::Command;

use crate::common::vivado_stub;

use accelforge_boards::zynq::wrapper::interface_for_core;
use accelforge_templates::systolic::{SystolicParams, rtl};

fn stub_prelude(core_params: &SystolicParams, clock: f64) -> String {
    let core = rtl::design(core_params).unwrap();
    let accel = interface_for_core(
        core.top(),
        &format!("{}_zynq", core.top_name()),
        clock,
        (1 << 26) - 1,
    )
    .unwrap();
    vivado_stub::prelude(&accel)
}

fn run_stub(bundle: &Path, prelude: &str) -> String {
    vivado_stub::run(bundle, prelude)
}

#[test]
fn systolic_bundles_for_a_zynq7000_and_an_ultrascale_board() {
    let tmp = tempfile::tempdir().unwrap();
    for (board, rows, clock) in [("pynq-z2", 8, 100.0), ("zcu102", 16, 150.0)] {
        let out = tmp.path().join(board);
        let r = cli::command()
            .args([
                "gen",
                "systolic",
                "--rows",
                &rows.to_string(),
                "--cols",
                &rows.to_string(),
                "--board",
                board,
                "--json",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["manifest"]["budget"]["fits"], true, "{v}");
        for f in ["build.tcl", "manifest.json", "README.md"] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let p = SystolicParams {
            rows,
            cols: rows,
            max_n_chunk: 4 * rows,
            ..SystolicParams::default()
        };
        run_stub(&out, &stub_prelude(&p, clock));
        let py = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "py"))
            .unwrap();
        let c = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&py)
            .status()
            .unwrap();
        assert!(c.success());
        // The driver refuses what the core would reject (K above max_k, zero sizes).
        let driver = std::fs::read_to_string(&py).unwrap();
        let limits = format!(
            "ARG_LIMITS = {{\n    \"m\": (1, 65535),\n    \"k\": (1, {}),\n    \"n\": (1, 65535),\n}}",
            p.max_k
        );
        assert!(driver.contains(&limits), "{limits}");
        if accelforge_test_support::tool_available("verilator") {
            let hdl: Vec<_> = std::fs::read_dir(out.join("hdl"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            let lint = accelforge_hdl::tools::lint(&hdl, None).unwrap();
            assert!(lint.is_clean(), "{:?}", lint.diagnostics);
        }
    }
}

#[test]
fn over_budget_is_refused_with_the_resource_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cora");
    let r = cli::command()
        .args([
            "gen",
            "systolic",
            "--rows",
            "16",
            "--cols",
            "16",
            "--board",
            "cora-z7-07s",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("dsp 256 of 66") && err.contains("--allow-over-budget"),
        "{err}"
    );
    assert!(!out.exists(), "nothing half-written");
    let r = cli::command()
        .args([
            "gen",
            "systolic",
            "--rows",
            "16",
            "--cols",
            "16",
            "--board",
            "cora-z7-07s",
            "--allow-over-budget",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success());
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"fits\": false"));
    let r = cli::command()
        .args(["gen", "systolic", "--board", "no-such-board", "--out"])
        .arg(tmp.path().join("x"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("pynq-z2"),
        "unknown board lists the known ones"
    );
}
