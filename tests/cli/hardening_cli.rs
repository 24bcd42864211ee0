//! Issue 13, files and the CLI's sharp edges: outputs are never lost or half-written, `--force`
//! replaces only accelforge outputs, a closed pipe ends quietly, paths with spaces work, and
//! small option mistakes are clear errors.

// Test helpers, not only #[test] bodies, unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use crate::common::cli::stderr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_accelforge");

fn run_in(dir: Option<&Path>, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run accelforge")
}

fn accelforge(args: &[&str]) -> Output {
    run_in(None, args, &[])
}

fn ok(args: &[&str]) -> Output {
    let o = accelforge(args);
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    o
}

/// Fails with a message containing every needle, and no panic.
fn fails_with(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing `{n}` in: {err}");
    }
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every entry of `dir` (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const GEN_BOARD: [&str; 6] = ["gen", "systolic", "--rows", "2", "--cols", "2"];

fn gen_bundle(out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = GEN_BOARD.to_vec();
    args.extend(["--board", "pynq-z2", "--out", s(out)]);
    args.extend(extra);
    accelforge(&args)
}

#[test]
fn gen_force_replaces_only_an_accelforge_output() {
    let t = tempfile::tempdir().unwrap();
    // A repository.
    let repo = t.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::write(repo.join("main.c"), "int main;").unwrap();
    fails_with(&gen_bundle(&repo, &["--force"]), &["repo", ".git"]);
    assert_eq!(listing(&repo), [".git", "main.c"]);
    // A regular file.
    let file = t.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    fails_with(&gen_bundle(&file, &["--force"]), &["notes.txt", "file"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // Some other directory.
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("data.csv"), "1,2").unwrap();
    fails_with(&gen_bundle(&other, &["--force"]), &["other", "not empty"]);
    assert_eq!(listing(&other), ["data.csv"]);
    // The current directory.
    let mut args: Vec<&str> = GEN_BOARD.to_vec();
    args.extend(["--board", "pynq-z2", "--out", ".", "--force"]);
    fails_with(&run_in(Some(&other), &args, &[]), &["current directory"]);
    assert_eq!(listing(&other), ["data.csv"]);
    // A symbolic link to a directory.
    #[cfg(unix)]
    {
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        fails_with(&gen_bundle(&link, &["--force"]), &["symbolic link"]);
        assert_eq!(listing(&other), ["data.csv"]);
    }
    // Plain `gen` into a user's directory does not make it replaceable.
    ok(&[
        "gen",
        "systolic",
        "--rows",
        "2",
        "--cols",
        "2",
        "--out",
        s(&other),
    ]);
    fails_with(&gen_bundle(&other, &["--force"]), &["other", "not empty"]);
    assert!(other.join("data.csv").is_file());
    // A bundle is replaced, and a failing replacement leaves it as it was.
    let bundle = t.path().join("bundle");
    assert!(gen_bundle(&bundle, &[]).status.success());
    let before = listing(&bundle);
    let manifest = std::fs::read(bundle.join("manifest.json")).unwrap();
    // 32x32 PEs need 1,024 DSPs, far over PYNQ-Z2's 220: refused after --force was accepted.
    let o = accelforge(&[
        "gen",
        "systolic",
        "--rows",
        "32",
        "--cols",
        "32",
        "--board",
        "pynq-z2",
        "--out",
        s(&bundle),
        "--force",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("dsp 1024 of 220"),
        "refused for its DSP budget: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(listing(&bundle), before);
    assert_eq!(
        std::fs::read(bundle.join("manifest.json")).unwrap(),
        manifest
    );
    let o = gen_bundle(&bundle, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        listing(t.path()).len(),
        5,
        "no temporary directory left behind"
    );
}

#[test]
fn gen_board_writes_params_json_and_lists_it() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("b");
    let o = gen_bundle(&out, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let params_file = v["params_file"].as_str().expect("params_file key");
    assert_eq!(Path::new(params_file), out.join("params.json"));
    let files: Vec<&str> = v["files"]
        .as_array()
        .expect("files key")
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files.contains(&params_file), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("build.tcl")), "{files:?}");
    for f in &files {
        assert!(Path::new(f).is_file(), "{f} listed but missing");
    }
    // The file is the one `--params` reads.
    let o = ok(&[
        "estimate",
        "gemm",
        "--params",
        params_file,
        "--m",
        "4",
        "--k",
        "4",
        "--n",
        "4",
        "--json",
    ]);
    let est: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(est["resources"]["dsp"], 4, "the 2x2 array's params: {est}");

    let moe = t.path().join("moe");
    let o = ok(&["gen", "moe", "--board", "kv260", "--out", s(&moe), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pf = v["params_file"].as_str().expect("params_file key");
    assert!(
        Path::new(pf).is_file() && pf.ends_with("moe_params.json"),
        "{pf}"
    );
    assert!(v["files"].as_array().unwrap().iter().any(|f| f == pf));
}

#[test]
fn demo_refuses_an_output_that_is_not_its_own() {
    let t = tempfile::tempdir().unwrap();
    let mine = t.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("thesis.tex"), "x").unwrap();
    fails_with(
        &accelforge(&["demo", "--out", s(&mine)]),
        &["mine", "not empty"],
    );
    assert_eq!(listing(&mine), ["thesis.tex"]);
    let file = t.path().join("f");
    std::fs::write(&file, "x").unwrap();
    fails_with(&accelforge(&["demo", "--out", s(&file)]), &["file"]);
    assert!(file.is_file());
}

const SPEC_A: &str = r#"
template = "systolic"
boards = ["pynq-z2"]
objectives = [{ minimize = "latency_cycles" }, { minimize = "dsp" }]
[systolic]
rows = { start = 1, end = 3 }
cols = { start = 1, end = 3 }
[workload]
layers = [{ kind = "gemm", name = "fc", m = 8, k = 8, n = 8 }]
"#;

fn sweep(dir: &Path, name: &str, spec: &str) -> PathBuf {
    let spec_path = dir.join(format!("{name}.toml"));
    std::fs::write(&spec_path, spec).unwrap();
    let out = dir.join(name);
    ok(&["sweep", "--spec", s(&spec_path), "--out", s(&out)]);
    out
}

#[test]
fn merge_never_overwrites_another_spec_and_leaves_nothing_on_failure() {
    let t = tempfile::tempdir().unwrap();
    let a = sweep(t.path(), "a", SPEC_A);
    let b = sweep(t.path(), "b", &SPEC_A.replace("m = 8", "m = 16"));
    let b_before = std::fs::read(b.join("results.jsonl")).unwrap();
    // Into a sweep of another spec: refused, naming both.
    fails_with(
        &accelforge(&["merge", s(&a), "--out", s(&b)]),
        &["another spec", s(&b), s(&a)],
    );
    assert_eq!(std::fs::read(b.join("results.jsonl")).unwrap(), b_before);
    // A failed merge (inputs of two specs) leaves no directory behind.
    let out = t.path().join("merged");
    assert!(
        !accelforge(&["merge", s(&a), s(&b), "--out", s(&out)])
            .status
            .success()
    );
    assert!(!out.exists(), "a failed merge left {}", out.display());
    let names = listing(t.path());
    assert!(
        names.iter().all(|n| !n.starts_with(".accelforge")),
        "{names:?}"
    );
    // Into a new directory, and again over the same spec's merge: fine.
    ok(&["merge", s(&a), "--out", s(&out)]);
    ok(&["merge", s(&a), "--out", s(&out)]);
    // A user's directory is not replaced.
    let mine = t.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("x"), "x").unwrap();
    fails_with(&accelforge(&["merge", s(&a), "--out", s(&mine)]), &["mine"]);
    assert_eq!(listing(&mine), ["x"]);
}

#[cfg(unix)]
#[test]
fn calibrate_refit_is_all_or_nothing_and_keeps_modes() {
    use std::os::unix::fs::PermissionsExt as _;
    let t = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sys = t.path().join("sys.json");
    let moe = t.path().join("moe.json");
    std::fs::copy(
        root.join("accel-templates/data/systolic_calibration.json"),
        &sys,
    )
    .unwrap();
    std::fs::copy(root.join("accel-templates/data/moe_calibration.json"), &moe).unwrap();
    for f in [&sys, &moe] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // The report cannot be written: the data files stay as they were (bytes and mode).
    let before = (std::fs::read(&sys).unwrap(), std::fs::read(&moe).unwrap());
    let sys_mtime = std::fs::metadata(&sys).unwrap().modified().unwrap();
    let bad_report = t.path().join("no-such-dir").join("calibration.md");
    let o = accelforge(&[
        "calibrate",
        "--refit",
        "--data",
        s(&sys),
        "--moe-data",
        s(&moe),
        "--report",
        s(&bad_report),
    ]);
    fails_with(&o, &["no-such-dir"]);
    assert_eq!(std::fs::read(&sys).unwrap(), before.0);
    assert_eq!(std::fs::read(&moe).unwrap(), before.1);
    assert_eq!(
        std::fs::metadata(&sys).unwrap().modified().unwrap(),
        sys_mtime
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&sys), mode(&moe)), (0o644, 0o644));
    // A successful refit keeps the modes too (tempfile creates 0600).
    let report = t.path().join("calibration.md");
    ok(&[
        "calibrate",
        "--refit",
        "--data",
        s(&sys),
        "--moe-data",
        s(&moe),
        "--report",
        s(&report),
    ]);
    assert_eq!((mode(&sys), mode(&moe)), (0o644, 0o644));
    assert!(report.is_file());
}

/// Runs `args` with stdout a pipe whose reader has already gone away.
fn closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [
        &["boards", "list", "--json"][..],
        &["estimate", "gemm", "--m", "64", "--k", "64", "--n", "64"][..],
    ] {
        let o = closed_pipe(args);
        let err = stderr(&o);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
}

const COUNTER: &str = "module my_top(input wire clk, input wire [3:0] a, output reg [3:0] q);\n  \
                       always @(posedge clk) q <= a;\nendmodule\n";

#[test]
fn lint_and_synth_take_paths_with_spaces() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("my designs");
    let tmp = t.path().join("tmp dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let good = dir.join("my_top.v");
    std::fs::write(&good, COUNTER).unwrap();
    let bad = dir.join("bad.v");
    std::fs::write(
        &bad,
        "module bad(input wire a);\n  assign b = ;\nendmodule\n",
    )
    .unwrap();

    fails_with(
        &accelforge(&["lint", s(&good), "--top", ""]),
        &["--top", "empty"],
    );
    if accelforge_test_support::tool_available("verilator") {
        // Verilator cuts names at a space: no spurious DECLFILENAME, and errors name the file.
        let o = accelforge(&["lint", s(&good)]);
        assert!(
            o.status.success(),
            "{}{}",
            stderr(&o),
            String::from_utf8_lossy(&o.stdout)
        );
        let o = accelforge(&["lint", s(&bad)]);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains(s(&bad)));
    }
    if accelforge_test_support::tool_available("yosys") {
        let env = [("TMPDIR", tmp.as_path())];
        let o = run_in(
            None,
            &[
                "synth",
                s(&good),
                "--top",
                "my_top",
                "--family",
                "xc7",
                "--json",
            ],
            &env,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["ff"], 4);
        let o = run_in(
            None,
            &["synth", s(&bad), "--top", "bad", "--family", "xc7"],
            &env,
        );
        let err = fails_with(&o, &[s(&bad), "syntax error"]);
        assert!(
            !err.contains("accelforge_in") && !err.contains("accelforge-yosys"),
            "{err}"
        );
    }
}

#[test]
fn options_that_would_be_ignored_are_errors() {
    let t = tempfile::tempdir().unwrap();
    let layer = t.path().join("l.toml");
    std::fs::write(&layer, "kind = \"gemm\"\nm = 4\nk = 4\nn = 4\n").unwrap();
    for sub in ["estimate", "sim"] {
        fails_with(
            &accelforge(&[sub, "gemm", "--layer", s(&layer), "--m", "8"]),
            &["--layer", "--m"],
        );
        fails_with(
            &accelforge(&[sub, "conv2d", "--layer", s(&layer), "--stride", "2"]),
            &["--layer", "--stride"],
        );
    }
    let out = t.path().join("g");
    for flag in [
        &["--clock-mhz", "100"][..],
        &["--force"][..],
        &["--allow-over-budget"][..],
    ] {
        let mut args = vec!["gen", "systolic", "--out", s(&out)];
        args.extend(flag);
        fails_with(&accelforge(&args), &["--board"]);
        let mut args = vec!["gen", "moe", "--out", s(&out)];
        args.extend(flag);
        fails_with(&accelforge(&args), &["--board"]);
    }
    assert!(!out.exists());
}

fn write_npy_f64(path: &Path, values: &[f64]) {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn qfx_calibrate_refuses_negative_unsigned_data_and_names_an_empty_file() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("d.npy");
    write_npy_f64(&data, &[1.0, -2.5, 0.5, -0.25]);
    fails_with(
        &accelforge(&[
            "qfx",
            "calibrate",
            "--input",
            s(&data),
            "--width",
            "8",
            "--unsigned",
        ]),
        &["--unsigned", "-2.5", "negative"],
    );
    ok(&["qfx", "calibrate", "--input", s(&data), "--width", "8"]);
    let empty = t.path().join("e.npy");
    std::fs::write(&empty, "").unwrap();
    let err = fails_with(
        &accelforge(&["qfx", "calibrate", "--input", s(&empty), "--width", "8"]),
        &["not a .npy file: empty", "e.npy"],
    );
    assert!(!err.contains("fill whole buffer"), "{err}");
    let text = t.path().join("t.npy");
    std::fs::write(&text, "1,2,3\n").unwrap();
    fails_with(
        &accelforge(&["qfx", "calibrate", "--input", s(&text), "--width", "8"]),
        &["not a .npy file"],
    );
}
