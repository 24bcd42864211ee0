//! End-to-end tests of `accelforge boards`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use crate::common::cli::{accelforge, stderr, stdout};
use std::process::Command;

#[test]
fn list_prints_a_table_of_every_board() {
    let o = accelforge(&["boards", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 11, "{out}");
    for col in [
        "name", "part", "family", "LUT", "FF", "DSP", "BRAM36", "URAM", "DDR GB/s", "clock",
    ] {
        assert!(lines[0].contains(col), "header lacks {col}: {}", lines[0]);
    }
    let z2 = lines
        .iter()
        .find(|l| l.starts_with("pynq-z2 "))
        .expect("pynq-z2 row");
    for cell in [
        "xc7z020clg400-1",
        "xc7",
        "53200",
        "106400",
        "220",
        "140",
        "2.10",
        "100",
    ] {
        assert!(
            z2.split_whitespace().any(|c| c == cell),
            "{cell} not in {z2}"
        );
    }
    assert!(out.contains("kv260") && out.contains("19.20"));
}

#[test]
fn list_json_is_machine_readable() {
    let o = accelforge(&["boards", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("valid JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 10);
    let zcu104 = arr
        .iter()
        .find(|e| e["board"]["name"] == "zcu104")
        .expect("zcu104");
    assert_eq!(zcu104["board"]["resources"]["uram"]["value"], 96);
    assert_eq!(zcu104["board"]["resources"]["dsp"]["type"], "DSP48E2");
    assert_eq!(zcu104["derived"]["bram18"], 624);
    assert_eq!(zcu104["origin"]["kind"], "builtin");
}

#[test]
fn show_prints_every_number_with_its_source() {
    let o = accelforge(&["boards", "show", "pynq-z2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "PYNQ-Z2",
        "xc7z020clg400-1",
        "tul.com.tw:pynq-z2:part0:1.0",
        "53200",
        "106400",
        "220 DSP48E1",
        "BRAM18",
        "280",
        "100 MHz",
        "DDR3",
        "16 bit",
        "1050 MT/s",
        "2.1 GB/s",
        "512 MiB",
        "S_AXI_HP0",
        "M_AXI_GP0",
        "DS190",
    ] {
        assert!(out.contains(want), "show lacks {want}:\n{out}");
    }
    // Every value line is followed by its source line.
    let sources = out
        .lines()
        .filter(|l| l.trim_start().starts_with("source:"))
        .count();
    assert!(sources >= 18, "only {sources} source lines:\n{out}");
    // Tolerant name and JSON form.
    let o = accelforge(&["boards", "show", "PYNQ_Z2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["board"]["name"], "pynq-z2");
    // Datasheet-only marks are shown.
    let o = accelforge(&["boards", "show", "zedboard"]);
    assert!(stdout(&o).contains("(ds: datasheet only)"));
}

#[test]
fn unknown_board_fails_and_lists_known_names() {
    let o = accelforge(&["boards", "show", "pynq-z9"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("unknown board `pynq-z9`"), "{err}");
    for name in ["pynq-z1", "pynq-z2", "kv260", "zcu102"] {
        assert!(err.contains(name), "{name} not listed: {err}");
    }
    assert!(stdout(&o).is_empty());
}

#[test]
fn malformed_user_board_fails_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"broken\"\ndisplay_name = \"Broken\"\nvendor = \"x\"\nfamily = \"xc7\"\nps = \"ps7\"\nlut = 0\n",
    )
    .expect("write");
    let d = dir.path().to_str().expect("utf-8 path");
    // One bad file does not break every command: `list` warns and lists the others, and the
    // bad board is an error (naming the file and key) only when asked for.
    let o = accelforge(&["boards", "list", "--boards-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning") && err.contains("broken.toml") && err.contains("lut"),
        "{err}"
    );
    assert!(stdout(&o).contains("pynq-z2"));
    let o = accelforge(&["boards", "show", "pynq-z2", "--boards-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = accelforge(&["boards", "show", "broken", "--boards-dir", d]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("broken.toml") && err.contains("lut"), "{err}");
    assert!(stdout(&o).is_empty());

    // Environment variable works too, and an override says so on stderr.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let text = accelforge_boards::builtin_sources()
        .iter()
        .find(|(n, _)| *n == "zcu102")
        .map(|(_, t)| *t)
        .expect("zcu102");
    std::fs::write(dir2.path().join("zcu102.toml"), text).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .args(["boards", "show", "zcu102"])
        .env("ACCELFORGE_BOARDS_DIR", dir2.path())
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("overrides built-in board `zcu102`"));
    assert!(stdout(&o).contains("origin: "));
}

#[test]
fn usage_errors_exit_non_zero() {
    assert!(!accelforge(&["boards"]).status.success());
    assert!(!accelforge(&["boards", "show"]).status.success());
    assert!(!accelforge(&["boards", "list", "--bogus"]).status.success());
}
