//! End-to-end tests of the foundation's CLI: lint, synth, and their errors.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use crate::common::cli;

fn have(tool: &str) -> bool {
    accelforge_test_support::tool_available(tool)
}

#[test]
fn version_and_help() {
    let out = cli::command().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("accelforge "));
    let out = cli::command().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lint") && text.contains("synth"), "{text}");
}

#[test]
fn synth_reports_block_ram_for_a_ram_block() {
    if !have("yosys") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = accelforge_hdl::blocks::ram::RamParams {
        width: 32,
        depth: 1024,
        kind: accelforge_hdl::blocks::ram::RamKind::DualPort,
        style: accelforge_hdl::blocks::ram::RamStyle::Auto,
    };
    let d = accelforge_hdl::blocks::ram::design(&p).unwrap();
    let files = d.write_to(dir.path()).unwrap();
    let out = cli::command()
        .arg("synth")
        .args(&files)
        .args(["--top", d.top_name(), "--family", "xc7", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "lut",
        "ff",
        "carry",
        "dsp",
        "bram18",
        "bram36",
        "uram",
        "logic_depth",
    ] {
        assert!(v.get(key).is_some_and(|x| x.is_u64()), "missing {key}: {v}");
    }
    assert_eq!(
        v["bram36"].as_u64().unwrap() * 2 + v["bram18"].as_u64().unwrap(),
        2,
        "{v}"
    );
}

#[test]
fn lint_passes_clean_files_and_fails_bad_ones() {
    if !have("verilator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = accelforge_hdl::blocks::skid::design(&accelforge_hdl::blocks::skid::SkidParams {
        width: 8,
        tlast: true,
    })
    .unwrap();
    let files = d.write_to(dir.path()).unwrap();
    let out = cli::command()
        .arg("lint")
        .args(&files)
        .arg("--icarus")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.v");
    std::fs::write(
        &bad,
        "module bad(input wire a, output wire [3:0] y);\nassign y = a;\nendmodule\n",
    )
    .unwrap();
    let out = cli::command()
        .arg("lint")
        .arg(&bad)
        .arg("--json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["diagnostics"].as_array().is_some_and(|d| !d.is_empty()),
        "{v}"
    );

    let broken = dir.path().join("broken.v");
    std::fs::write(&broken, "module broken(; endmodule\n").unwrap();
    let out = cli::command().arg("lint").arg(&broken).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn bad_input_gives_clear_errors() {
    let out = cli::command()
        .args(["synth", "/nonexistent/x.v", "--top", "x", "--family", "xc7"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.v"), "{err}");

    let out = cli::command()
        .args(["synth", "x.v", "--top", "x", "--family", "virtex2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("xc7"));

    if have("yosys") {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.v");
        std::fs::write(&broken, "module broken(; endmodule\n").unwrap();
        let out = cli::command()
            .arg("synth")
            .arg(&broken)
            .args(["--top", "broken", "--family", "xcup"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("yosys"));
    }
}
