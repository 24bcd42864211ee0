//! `accelforge calibrate`: `--refit` rebuilds the data files and the two-section report from
//! the committed Yosys figures without running Yosys; bad input changes nothing.
#![allow(clippy::unwrap_used)]

use crate::common::cli::accelforge;

const SYS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/accel-templates/data/systolic_calibration.json"
);
const MOE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/accel-templates/data/moe_calibration.json"
);

#[test]
fn refit_reproduces_the_committed_moe_calibration_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let (sys, moe, report) = (
        dir.path().join("sys.json"),
        dir.path().join("moe.json"),
        dir.path().join("calibration.md"),
    );
    std::fs::copy(SYS, &sys).unwrap();
    std::fs::copy(MOE, &moe).unwrap();
    let o = accelforge(&[
        "calibrate",
        "--template",
        "moe",
        "--refit",
        "--data",
        sys.to_str().unwrap(),
        "--moe-data",
        moe.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The committed data file is what a re-fit of its own points gives.
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(MOE).unwrap()).unwrap();
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&moe).unwrap()).unwrap();
    assert_eq!(before, after);
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("# Systolic-array resource calibration"));
    assert!(text.contains("# MoE-core resource calibration"));
    assert!(text.contains("DSP and BRAM exact on every point: true"));
    // The committed report is this one.
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/calibration.md"))
            .unwrap();
    assert_eq!(
        text, committed,
        "docs/calibration.md is stale: run `accelforge calibrate`"
    );
}

#[test]
fn a_missing_data_file_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("calibration.md");
    let o = accelforge(&[
        "calibrate",
        "--template",
        "moe",
        "--refit",
        "--data",
        SYS,
        "--moe-data",
        dir.path().join("none.json").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("none.json"));
    assert!(!report.exists());
    let o = accelforge(&["calibrate", "--template", "vivado"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("vivado"));
}
