//! Board database: built-ins load and validate, malformed user files name file and key, user
//! directories override, name lookup is tolerant.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::path::Path;

use accelforge_boards::{
    BoardDb, BoardError, Family, Origin, ResourceEstimate, builtin_sources, check_budget,
    lookup_key, parse_board,
};

fn pynq_z2_text() -> &'static str {
    builtin_sources()
        .iter()
        .find(|(n, _)| *n == "pynq-z2")
        .map(|(_, t)| *t)
        .expect("pynq-z2 built-in")
}

/// Replaces the first line starting with `prefix` under `[section]` with `line`.
fn edit(text: &str, section: &str, prefix: &str, line: &str) -> String {
    let mut out = Vec::new();
    let mut in_section = section.is_empty();
    let mut done = false;
    for l in text.lines() {
        if l.starts_with('[') {
            in_section = l == format!("[{section}]");
        }
        if in_section && !done && l.starts_with(prefix) {
            out.push(line.to_string());
            done = true;
        } else {
            out.push(l.to_string());
        }
    }
    assert!(done, "no `{prefix}` in [{section}]");
    out.join("\n") + "\n"
}

fn user_dir_with(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(file), text).expect("write");
    dir
}

#[test]
fn every_builtin_loads_and_validates() {
    let db = BoardDb::builtin().expect("built-ins load");
    let names: Vec<&str> = db.boards().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pynq-z1",
            "pynq-z2",
            "zybo-z7-10",
            "zybo-z7-20",
            "zedboard",
            "cora-z7-07s",
            "ultra96-v2",
            "kv260",
            "zcu104",
            "zcu102"
        ]
    );
    for b in db.boards() {
        assert_eq!(b.bram18(), 2 * b.resources.bram36.value);
        let expected_clock = match b.family {
            Family::Xc7 => 100.0,
            Family::Xcup => 150.0,
        };
        assert_eq!(b.default_clock_mhz(), expected_clock, "{}", b.name);
        assert!(b.ddr_bytes_per_default_cycle() > 0.0);
        // Serde round trip through TOML keeps every value.
        let text = toml::to_string(b).expect("serialise");
        assert_eq!(&parse_board(&text, "roundtrip").expect("reparse"), b);
    }
    let z2 = db.get("pynq-z2").expect("z2");
    assert_eq!(z2.resources.lut.value, 53_200);
    assert_eq!(z2.resources.dsp.value, 220);
    // 2.1 GB/s at 100 MHz = 21 bytes per PL cycle.
    assert!((z2.ddr_bytes_per_pl_cycle(100.0) - 21.0).abs() < 1e-9);
    let kv = db.get("kv260").expect("kv260");
    assert_eq!(
        (kv.resources.uram.value, kv.resources.dsp.value),
        (64, 1248)
    );
    // (ds) marks from the reference survive as datasheet_only.
    let zybo = db.get("zybo-z7-10").expect("zybo");
    assert!(zybo.board_part.as_ref().expect("bp").datasheet_only);
    assert!(!z2.board_part.as_ref().expect("bp").datasheet_only);
}

#[test]
fn lookup_is_tolerant_and_unknown_lists_known() {
    let db = BoardDb::builtin().expect("built-ins");
    for name in [
        "pynq-z2",
        "PYNQ-Z2",
        "pynq_z2",
        "Pynq Z2",
        "pynqz2",
        " PYNQ_Z2 ",
    ] {
        assert_eq!(db.get(name).expect(name).name, "pynq-z2", "{name}");
    }
    assert_eq!(db.get("ZedBoard").expect("zed").name, "zedboard");
    assert_eq!(db.get("Ultra96_V2").expect("u96").name, "ultra96-v2");
    assert_eq!(db.get("ZYBO Z7 10").expect("zybo").name, "zybo-z7-10");
    let err = db.get("pynq-z3").expect_err("unknown");
    let msg = err.to_string();
    assert!(matches!(err, BoardError::UnknownBoard { .. }));
    assert!(
        msg.contains("pynq-z3") && msg.contains("pynq-z2") && msg.contains("zcu102"),
        "{msg}"
    );
    assert!(db.get("").is_err());
    assert_eq!(lookup_key("A_b-C d"), "abcd");
}

/// The error for a bad user file: the database still loads (one bad file must not break every
/// command), lists the file as broken, and asking for that board names the file and problem.
fn load_err(file: &str, text: &str) -> String {
    let dir = user_dir_with(file, text);
    let db = BoardDb::load(Some(dir.path())).expect("a bad file does not break the database");
    assert_eq!(db.broken().len(), 1, "{file} listed as broken");
    assert!(db.get("zcu102").is_ok(), "other boards still work");
    let err = db
        .get(file.trim_end_matches(".toml"))
        .expect_err("asking for the broken board fails");
    let msg = err.to_string();
    assert!(
        msg.contains(file),
        "message does not name the file {file}: {msg}"
    );
    msg
}

#[test]
fn malformed_user_files_name_file_and_key() {
    let t = pynq_z2_text();
    // Unknown key.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(
            t,
            "resources.lut",
            "value",
            "value = 53200\ncolour = \"red\"",
        ),
    );
    assert!(
        msg.contains("resources.lut") && msg.contains("colour"),
        "{msg}"
    );
    // Unknown top-level key.
    let msg = load_err("pynq-z2.toml", &format!("speed_grade = 1\n{t}"));
    assert!(msg.contains("speed_grade"), "{msg}");
    // LUT = 0.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "resources.lut", "value", "value = 0"),
    );
    assert!(
        msg.contains("resources.lut.value") && msg.contains("greater than 0"),
        "{msg}"
    );
    // Wrong type.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "resources.ff", "value", "value = \"lots\""),
    );
    assert!(
        msg.contains("resources.ff.value") && msg.contains("invalid type"),
        "{msg}"
    );
    // Negative count.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "resources.dsp", "value", "value = -4"),
    );
    assert!(msg.contains("resources.dsp.value"), "{msg}");
    // Zero and negative clock.
    for v in ["0.0", "-100.0"] {
        let msg = load_err(
            "pynq-z2.toml",
            &edit(t, "clock.default_pl_mhz", "value", &format!("value = {v}")),
        );
        assert!(msg.contains("clock.default_pl_mhz.value"), "{msg}");
    }
    // DSP type does not match family.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "resources.dsp", "type", "type = \"DSP48E2\""),
    );
    assert!(
        msg.contains("resources.dsp.type") && msg.contains("DSP48E1"),
        "{msg}"
    );
    // Family does not match part.
    let msg = load_err("pynq-z2.toml", &edit(t, "", "family", "family = \"xcup\""));
    assert!(msg.contains("family"), "{msg}");
    // Empty part.
    let msg = load_err("pynq-z2.toml", &edit(t, "part", "value", "value = \"\""));
    assert!(msg.contains("part.value") && msg.contains("empty"), "{msg}");
    // Missing source.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "resources.bram36", "source", "source = \" \""),
    );
    assert!(msg.contains("resources.bram36.source"), "{msg}");
    // Missing key entirely.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "ddr.size_mb", "value", "# no value"),
    );
    assert!(
        msg.contains("ddr.size_mb") && msg.contains("missing field"),
        "{msg}"
    );
    // Bandwidth inconsistent with width × rate.
    let msg = load_err(
        "pynq-z2.toml",
        &edit(t, "ddr.peak_gbps", "value", "value = 4.2"),
    );
    assert!(msg.contains("ddr.peak_gbps.value"), "{msg}");
    // Unknown family name.
    let msg = load_err("pynq-z2.toml", &edit(t, "", "family", "family = \"xc6\""));
    assert!(msg.contains("family") && msg.contains("xc6"), "{msg}");
    // Not TOML at all.
    let msg = load_err("pynq-z2.toml", "name = \n");
    assert!(msg.contains("line 1"), "{msg}");
    // File name and board name disagree.
    let msg = load_err("my-board.toml", t);
    assert!(
        msg.contains("`name`") && msg.contains("my-board.toml"),
        "{msg}"
    );
}

#[test]
fn user_dir_overrides_and_extends() {
    let t = pynq_z2_text();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("pynq-z2.toml"),
        edit(t, "clock.default_pl_mhz", "value", "value = 125.0"),
    )
    .expect("write");
    let custom = edit(t, "", "name", "name = \"my-z2\"");
    let custom = edit(
        &custom,
        "",
        "display_name",
        "display_name = \"My Z2 clone\"",
    );
    std::fs::write(dir.path().join("my-z2.toml"), custom).expect("write");
    std::fs::write(dir.path().join("README.txt"), "not a board").expect("write");

    let db = BoardDb::load(Some(dir.path())).expect("load");
    assert_eq!(db.boards().count(), 11);
    let z2 = db.entry("pynq_z2").expect("z2");
    assert_eq!(z2.board.default_clock_mhz(), 125.0);
    assert!(matches!(&z2.origin, Origin::User(p) if p.ends_with("pynq-z2.toml")));
    assert_eq!(db.notes().len(), 1);
    assert!(db.notes()[0].contains("overrides built-in board `pynq-z2`"));
    assert_eq!(db.get("My Z2 Clone").expect("clone").name, "my-z2");
    assert_eq!(db.entry("pynq-z1").expect("z1").origin, Origin::BuiltIn);
}

#[test]
fn env_var_is_used_and_flag_wins() {
    // The only test in this binary that touches ACCELFORGE_BOARDS_DIR.
    let t = pynq_z2_text();
    let env_dir = user_dir_with(
        "pynq-z2.toml",
        &edit(t, "clock.default_pl_mhz", "value", "value = 111.0"),
    );
    let flag_dir = user_dir_with(
        "pynq-z2.toml",
        &edit(t, "clock.default_pl_mhz", "value", "value = 122.0"),
    );
    // SAFETY: set_var is unsafe in edition 2024 because other threads may read the environment;
    // no other test in this binary reads ACCELFORGE_BOARDS_DIR.
    unsafe { std::env::set_var("ACCELFORGE_BOARDS_DIR", env_dir.path()) };
    let via_env =
        BoardDb::load(None).map(|db| db.get("pynq-z2").map(|b| b.default_clock_mhz()).ok());
    let via_flag = BoardDb::load(Some(flag_dir.path()))
        .map(|db| db.get("pynq-z2").map(|b| b.default_clock_mhz()).ok());
    unsafe { std::env::set_var("ACCELFORGE_BOARDS_DIR", "") };
    let empty = BoardDb::load(None).map(|db| db.get("pynq-z2").map(|b| b.default_clock_mhz()).ok());
    unsafe { std::env::remove_var("ACCELFORGE_BOARDS_DIR") };
    assert_eq!(via_env.expect("env"), Some(111.0));
    assert_eq!(via_flag.expect("flag"), Some(122.0));
    assert_eq!(empty.expect("empty"), Some(100.0));
}

#[test]
fn missing_user_dir_is_an_error() {
    let err =
        BoardDb::load(Some(Path::new("/nonexistent/accelforge-boards"))).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/accelforge-boards"));
}

#[test]
fn duplicate_names_in_user_dir_are_rejected() {
    let t = pynq_z2_text();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pynq-z2.toml"), t).expect("write");
    std::fs::write(
        dir.path().join("pynq_z2.toml"),
        edit(t, "", "name", "name = \"pynq-z2\""),
    )
    .expect("write");
    let db = BoardDb::load(Some(dir.path())).expect("a duplicate does not break the database");
    assert_eq!(db.broken().len(), 1);
    let err = db.get("pynq_z2").expect_err("duplicate");
    assert!(matches!(err, BoardError::BrokenFile { .. }), "{err}");
    assert!(err.to_string().contains("defined twice"), "{err}");
}

#[test]
fn budget_check_flags_exceeding_lines() {
    let db = BoardDb::builtin().expect("built-ins");
    let z2 = db.get("pynq-z2").expect("z2");
    let r = check_budget(
        z2,
        &ResourceEstimate {
            lut: 26_600,
            ff: 10,
            dsp: 221,
            bram18: 280,
            uram: 1,
        },
    );
    assert!(!r.fits());
    let over: Vec<&str> = r.exceeding().iter().map(|l| l.resource.as_str()).collect();
    assert_eq!(over, ["dsp", "uram"]);
    assert_eq!(r.lines[0].fraction, Some(0.5));
    assert_eq!(r.lines[3].fraction, Some(1.0)); // bram18 = 2 × 140
    assert_eq!(r.lines[4].fraction, None); // no URAM on xc7z020
    let above: Vec<&str> = r.above(0.8).iter().map(|l| l.resource.as_str()).collect();
    assert_eq!(above, ["dsp", "bram18", "uram"]);
    let ok = check_budget(z2, &ResourceEstimate::default());
    assert!(ok.fits() && ok.above(0.0).is_empty());
}

/// Board strings reach generated Tcl, XDC and Python: the ones that could end a comment, a word
/// or a brace group there are refused when the file is loaded, naming the field.
#[test]
fn board_strings_that_could_escape_generated_code_are_rejected() {
    let t = pynq_z2_text();
    for (section, prefix, line, key) in [
        (
            "",
            "display_name",
            r#"display_name = "PYNQ-Z2\nputs pwned""#,
            "display_name",
        ),
        (
            "",
            "display_name",
            r#"display_name = "PYNQ-Z2\\""#,
            "display_name",
        ),
        ("", "vendor", r#"vendor = "TUL\r""#, "vendor"),
        (
            "part",
            "value",
            r#"value = "xc7z020clg400-1 [exec touch pwned]""#,
            "part.value",
        ),
        (
            "part",
            "value",
            r#"value = "xc7z020clg400-1;exit""#,
            "part.value",
        ),
        (
            "board_part",
            "value",
            r#"value = "tul.com.tw:pynq-z2:part0:1.0} {puts""#,
            "board_part.value",
        ),
    ] {
        let msg = load_err("pynq-z2.toml", &edit(t, section, prefix, line));
        assert!(msg.contains(key), "{line}: {msg}");
    }
}
