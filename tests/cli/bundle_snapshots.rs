//! Golden files of the Zynq bundle text a user hands to Vivado and PYNQ — `build.tcl`, the
//! out-of-context synthesis script, the XDC and the PYNQ driver — for one board of each PS
//! family (Zynq-7000: PYNQ-Z2; Zynq UltraScale+: KV260). Any change to these bytes changes what
//! runs on a board: review it (`cargo insta review`) and say why in the commit.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn bundle(board: &str, dir: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .args([
            "gen", "systolic", "--rows", "2", "--cols", "2", "--max-k", "16",
        ])
        .args(["--max-n-chunk", "4", "--board", board, "--out"])
        .arg(dir)
        .env_remove("ACCELFORGE_BOARDS_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The generated text files of a bundle, in a fixed order, each under a header line.
fn text_files(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tcl") || n.ends_with(".xdc") || n.ends_with(".py"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| {
            format!(
                "# ==== {n}\n{}",
                std::fs::read_to_string(dir.join(n)).unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pynq_z2_bundle_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    bundle("pynq-z2", &out);
    insta::assert_snapshot!(text_files(&out));
}

#[test]
fn kv260_bundle_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    bundle("kv260", &out);
    insta::assert_snapshot!(text_files(&out));
}
