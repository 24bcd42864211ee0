//! Bundle generation checks: the generated TCL runs under tclsh against the Vivado stub for
//! every built-in board, the stub itself catches mistakes, the Python driver compiles and its
//! register constants match the interface, and generation is fast.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::path::{Path, PathBuf};
use std::process::Command;

use accelforge_boards::{
    AccelInterface, Board, BoardDb, BoardError, BundleOptions, BundleSpec, EngineSpec, PortDir,
    ResourceEstimate, SegmentMatrix, SourceFile, StatusReg, WeightFetch, WeightLayout,
    render_engines_bundle, write_bundle, write_engines_bundle,
};

const TOP: &str = "af_test_top";

fn stub_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vivado_stub.tcl")
}

fn accel_for(board: &Board) -> AccelInterface {
    AccelInterface::with_sequential_args(
        TOP,
        64,
        32,
        &[
            ("rows", 16, "number of input rows"),
            ("scale", 32, "requantisation multiplier"),
            ("shift", 5, "requantisation right shift"),
        ],
        board.default_clock_mhz(),
        1 << 20,
    )
}

fn spec<'a>(board: &'a Board, accel: &'a AccelInterface) -> BundleSpec<'a> {
    BundleSpec {
        board,
        accel,
        sources: vec![SourceFile {
            name: format!("{TOP}.v"),
            // Placeholder: the stub reads the module's ports from declare_module, not from here.
            contents: "// placeholder for the generated wrapper\n".into(),
        }],
        template_params: serde_json::json!({ "template": "test", "rows": 4 }),
        estimate: Some(ResourceEstimate {
            lut: 20_000,
            ff: 30_000,
            dsp: 64,
            bram18: 40,
            uram: 0,
        }),
        options: BundleOptions::default(),
    }
}

/// Tcl for `::stub::declare_module` from the interface's expected ports.
fn declare_module(accel: &AccelInterface) -> String {
    let ports = accel
        .expected_ports()
        .iter()
        .map(|p| {
            let dir = match p.dir {
                PortDir::Input => "input",
                PortDir::Output => "output",
            };
            format!("{{{} {dir} {}}}", p.name, p.width)
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("::stub::declare_module {} {{{ports}}}\n", accel.name)
}

fn tclsh(script: &str, dir: &Path) -> std::process::Output {
    let runner = dir.join("runner.tcl");
    std::fs::write(&runner, script).expect("write runner");
    // A missing tclsh fails here, loudly: this check never passes by skipping.
    Command::new("tclsh")
        .arg(&runner)
        .output()
        .expect("tclsh must be installed (apt-get install tcl) for the Vivado stub tests")
}

fn prelude(accel: &AccelInterface, board_parts: &[String]) -> String {
    format!(
        "source {{{}}}\n{}::stub::set_board_parts {{{}}}\n",
        stub_path().display(),
        declare_module(accel),
        board_parts.join(" ")
    )
}

/// Runs build.tcl under the stub. Most tests install no board files, so they opt in to the
/// bare part explicitly (`run_build_with` runs without that).
fn run_build(
    bundle: &Path,
    accel: &AccelInterface,
    board_parts: &[String],
) -> std::process::Output {
    run_build_with(bundle, accel, board_parts, "--jobs 2 --allow-bare-part", "")
}

/// build.tcl under the stub with `argv` and extra stub configuration `setup`.
fn run_build_with(
    bundle: &Path,
    accel: &AccelInterface,
    board_parts: &[String],
    argv: &str,
    setup: &str,
) -> std::process::Output {
    let script = format!(
        "{}{setup}\nset argv {{{argv}}}\nset argc [llength $argv]\nsource {{{}}}\n::stub::finish\n",
        prelude(accel, board_parts),
        bundle.join("build.tcl").display()
    );
    tclsh(&script, bundle.parent().expect("bundle has a parent"))
}

fn assert_ok(out: &std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("VIVADO-STUB OK"),
        "{what} failed under the Vivado stub\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

fn assert_fails(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure containing {needle:?}, but the script passed"
    );
    assert!(
        stderr.contains(needle),
        "expected {needle:?} in stderr:\n{stderr}"
    );
}

fn make_bundle(board: &Board, tmp: &Path) -> (PathBuf, AccelInterface) {
    let accel = accel_for(board);
    let dir = tmp.join(format!("bundle-{}", board.name));
    write_bundle(&dir, &spec(board, &accel)).expect("bundle");
    (dir, accel)
}

#[test]
fn build_tcl_runs_under_stub_for_every_builtin_board() {
    let db = BoardDb::builtin().expect("built-ins");
    for board in db.boards() {
        let bp = board.board_part.as_ref().map(|b| b.value.clone());
        // Three installations: exact board files, another file version, none (bare part).
        let other_version = bp.as_ref().map(|v| {
            let mut parts: Vec<&str> = v.split(':').collect();
            parts[3] = "9.9";
            parts.join(":")
        });
        let variants: Vec<Vec<String>> = vec![
            bp.clone().into_iter().collect(),
            other_version.into_iter().collect(),
            vec![],
        ];
        for (i, installed) in variants.iter().enumerate() {
            let tmp = tempfile::tempdir().expect("tempdir");
            let (bundle, accel) = make_bundle(board, tmp.path());
            let out = run_build(&bundle, &accel, installed);
            let stdout = assert_ok(&out, &format!("{} variant {i}", board.name));
            assert!(
                bundle.join(format!("{TOP}.bit")).is_file(),
                "{}: no .bit",
                board.name
            );
            assert!(
                bundle.join(format!("{TOP}.hwh")).is_file(),
                "{}: no .hwh",
                board.name
            );
            let warned = stdout.contains("board files for");
            assert_eq!(
                warned,
                installed.is_empty(),
                "{}: bare-part warning",
                board.name
            );
        }
    }
}

/// The DMA's S2MM channel needs TKEEP: the interface declares it, and a top without it fails
/// the stand-in's connection check.
#[test]
fn output_stream_has_tkeep_for_the_dma() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (bundle, accel) = make_bundle(board, tmp.path());
    assert!(
        accel
            .expected_ports()
            .iter()
            .any(|p| p.name == "m_axis_out_tkeep"
                && p.dir == PortDir::Output
                && p.width == accel.out_stream_bits / 8)
    );
    let mut no_keep = accel.clone();
    no_keep.name = format!("{TOP}_nokeep");
    let decl = declare_module(&no_keep).replace(
        &format!(" {{m_axis_out_tkeep output {}}}", accel.out_stream_bits / 8),
        "",
    );
    let decl = decl.replace(&format!("{TOP}_nokeep"), TOP);
    assert!(!decl.contains("tkeep"), "{decl}");
    let script = format!(
        "source {{{}}}\n{decl}::stub::set_board_parts {{}}\nset argv {{--allow-bare-part}}\nset argc 1\nsource {{{}}}\n::stub::finish\n",
        stub_path().display(),
        bundle.join("build.tcl").display()
    );
    let out = tclsh(&script, tmp.path());
    assert_fails(&out, "accel_0/m_axis_out has no TKEEP");
}

/// A display name full of Tcl and Python syntax that passes validation stays inert: build.tcl
/// still runs under the stand-in, and importing the driver runs no code and keeps the name in
/// the docstring.
#[test]
fn hostile_display_name_is_inert_in_tcl_and_python() {
    let db = BoardDb::builtin().expect("built-ins");
    let mut board = db.get("pynq-z2").expect("pynq-z2").clone();
    board.display_name =
        r#"PYNQ """; import sys; sys.exit(3); """ } {puts x} $y [exit 4] ;# "#.into();
    board
        .validate("hostile")
        .expect("printable text is allowed");
    let tmp = tempfile::tempdir().expect("tempdir");
    let accel = accel_for(&board);
    let bundle = tmp.path().join("b");
    write_bundle(&bundle, &spec(&board, &accel)).expect("bundle");
    assert_ok(&run_build(&bundle, &accel, &[]), "hostile display name");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_pynq.py"),
        bundle.join("pynq.py"),
    )
    .expect("copy fake pynq");
    let check = "import af_test_top_driver as d\nassert 'import sys; sys.exit(3)' in d.__doc__, d.__doc__\nprint('IMPORT OK')\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .current_dir(&bundle)
        .output()
        .expect("python3");
    // The driver imports numpy; without it (outside CI) the import check cannot run.
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("No module named 'numpy'")
    {
        assert!(
            std::env::var("CI").is_err(),
            "numpy is needed (pip install numpy)"
        );
        return;
    }
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("IMPORT OK"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Without board files build.tcl stops, naming the board part and the opt-in; with the
/// opt-in (argument or environment variable) it builds for the bare part with a warning.
#[test]
fn build_tcl_needs_board_files_or_an_explicit_bare_part() {
    let db = BoardDb::builtin().expect("built-ins");
    for name in ["pynq-z2", "zcu104"] {
        let board = db.get(name).expect("board");
        let bp = board.board_part.as_ref().expect("board part").value.clone();
        let tmp = tempfile::tempdir().expect("tempdir");
        let (bundle, accel) = make_bundle(board, tmp.path());
        let out = run_build_with(&bundle, &accel, &[], "", "");
        assert_fails(&out, &format!("board files for {bp} are not installed"));
        assert_fails(&out, "ACCELFORGE_ALLOW_BARE_PART=1");
        assert!(!bundle.join(format!("{TOP}.bit")).exists());
        let env = "set ::env(ACCELFORGE_ALLOW_BARE_PART) 1";
        for (argv, setup) in [("--allow-bare-part", ""), ("", env)] {
            let out = run_build_with(&bundle, &accel, &[], argv, setup);
            let stdout = assert_ok(&out, &format!("{name} {argv}{setup}"));
            assert!(stdout.contains("building for the bare part"), "{stdout}");
        }
    }
}

/// A routed design with negative WNS or WHS fails build.tcl (naming the slack) and copies no
/// bitstream, unless the user keeps it explicitly.
#[test]
fn build_tcl_refuses_a_design_that_fails_timing() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (bundle, accel) = make_bundle(board, tmp.path());
    let bit = bundle.join(format!("{TOP}.bit"));
    let out = run_build(&bundle, &accel, &[]);
    let stdout = assert_ok(&out, "timing met");
    assert!(
        stdout.contains("timing met: WNS 0.125 ns, WHS 0.021 ns"),
        "{stdout}"
    );
    std::fs::remove_file(&bit).expect("rm bit");
    for (setup, needle) in [
        ("::stub::set_timing -0.250 0.021", "WNS -0.250 ns"),
        ("::stub::set_timing 0.125 -0.013", "WHS -0.013 ns"),
    ] {
        let out = run_build_with(&bundle, &accel, &[], "--allow-bare-part", setup);
        assert_fails(&out, needle);
        assert_fails(&out, "--allow-timing-failure");
        assert!(!bit.exists(), "{setup}: bitstream copied");
        let env = format!("{setup}\nset ::env(ACCELFORGE_ALLOW_TIMING_FAILURE) 1");
        for (argv, setup) in [
            (
                "--allow-bare-part --allow-timing-failure",
                setup.to_string(),
            ),
            ("--allow-bare-part", env),
        ] {
            let out = run_build_with(&bundle, &accel, &[], argv, &setup);
            let stdout = assert_ok(&out, &setup);
            assert!(stdout.contains("WARNING: accelforge: routed design fails timing"));
            assert!(bit.exists());
            std::fs::remove_file(&bit).expect("rm bit");
        }
    }
}

#[test]
fn synth_ooc_tcl_runs_under_stub_for_every_builtin_board() {
    let db = BoardDb::builtin().expect("built-ins");
    for board in db.boards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (bundle, accel) = make_bundle(board, tmp.path());
        let script = format!(
            "{}source {{{}}}\n::stub::finish\n",
            prelude(&accel, &[]),
            bundle.join("synth_ooc.tcl").display()
        );
        let out = tclsh(&script, tmp.path());
        assert_ok(&out, &format!("synth_ooc.tcl on {}", board.name));
        assert!(bundle.join(format!("{TOP}_ooc_utilization.rpt")).is_file());
    }
}

#[test]
fn build_tcl_uses_the_right_ps_and_widths() {
    let db = BoardDb::builtin().expect("built-ins");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (z7, _) = make_bundle(db.get("pynq-z2").expect("pynq-z2"), tmp.path());
    let t = std::fs::read_to_string(z7.join("build.tcl")).expect("read");
    assert!(t.contains("xilinx.com:ip:processing_system7"));
    assert!(t.contains("CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}"));
    assert!(t.contains("CONFIG.PCW_USE_S_AXI_HP0 {1}"));
    assert!(t.contains("CONFIG.c_m_axis_mm2s_tdata_width {64}"));
    assert!(t.contains("CONFIG.c_s_axis_s2mm_tdata_width {32}"));
    assert!(t.contains("CONFIG.c_sg_length_width {21}"));
    assert!(t.contains("create_bd_cell -type module -reference $top_module accel_0"));
    assert!(t.contains("launch_runs impl_1 -to_step write_bitstream -jobs $jobs"));
    let (zu, _) = make_bundle(db.get("zcu104").expect("zcu104"), tmp.path());
    let t = std::fs::read_to_string(zu.join("build.tcl")).expect("read");
    assert!(t.contains("xilinx.com:ip:zynq_ultra_ps_e"));
    assert!(t.contains("CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {150}"));
    assert!(t.contains("CONFIG.PSU__USE__S_AXI_GP2 {1}"));
    assert!(t.contains("CONFIG.c_addr_width {64}"));
}

#[test]
fn stub_rejects_unknown_command_option_and_pin() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let accel = accel_for(board);
    let pre = prelude(&accel, &[]);

    // Unknown command.
    let out = tclsh(&format!("{pre}open_hw_manager_please\n"), tmp.path());
    assert_fails(&out, "invalid command 'open_hw_manager_please'");
    // Tcl 8.6-only command (Vivado embeds 8.5).
    let out = tclsh(&format!("{pre}lmap x {{1 2}} {{set x}}\n"), tmp.path());
    assert_fails(&out, "invalid command 'lmap'");
    // Unknown option.
    let out = tclsh(
        &format!(
            "{pre}create_project p {}/p -part xc7z020clg400-1 -bogus\n",
            tmp.path().display()
        ),
        tmp.path(),
    );
    assert_fails(&out, "create_project: unknown option '-bogus'");
    // A pin the IP does not have, and one that exists only when its port is enabled.
    let base = format!(
        "{pre}create_project p {{{}/p}} -part xc7z020clg400-1 -force\ncreate_bd_design d\n\
         set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps]\n\
         set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 dma]\n",
        tmp.path().display()
    );
    let out = tclsh(
        &format!("{base}connect_bd_net [get_bd_pins ps/FCLK_CLK0] [get_bd_pins dma/no_such_pin]\n"),
        tmp.path(),
    );
    assert_fails(&out, "has no pin 'no_such_pin'");
    let out = tclsh(
        &format!(
            "{base}connect_bd_net [get_bd_pins ps/FCLK_CLK0] [get_bd_pins ps/S_AXI_HP0_ACLK]\n"
        ),
        tmp.path(),
    );
    assert_fails(&out, "has no pin 'S_AXI_HP0_ACLK'");
    // Unknown CONFIG parameter.
    let out = tclsh(
        &format!("{base}set_property -dict [list CONFIG.PCW_USE_S_AXI_HP9 {{1}}] $ps\n"),
        tmp.path(),
    );
    assert_fails(&out, "not a known CONFIG parameter");
    // Clock driven into a reset, and two drivers on one net.
    let out = tclsh(
        &format!("{base}connect_bd_net [get_bd_pins ps/FCLK_CLK0] [get_bd_pins dma/axi_resetn]\n"),
        tmp.path(),
    );
    assert_fails(&out, "clock pins mixed with");
    let out = tclsh(
        &format!(
            "{base}set_property -dict [list CONFIG.c_include_sg {{0}}] $dma\n\
             connect_bd_net [get_bd_pins dma/mm2s_introut] [get_bd_pins dma/s2mm_introut]\n"
        ),
        tmp.path(),
    );
    assert_fails(&out, "several drivers");
}

#[test]
fn stub_catches_mutated_build_scripts() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (bundle, accel) = make_bundle(board, tmp.path());
    let original = std::fs::read_to_string(bundle.join("build.tcl")).expect("read");
    let cases = [
        // Scatter-gather left on: its M_AXI_SG master is never connected.
        (
            "CONFIG.c_include_sg {0}",
            "CONFIG.c_include_sg {1}",
            "interface /axi_dma_0/M_AXI_SG is not connected",
        ),
        // Stream width mismatch between DMA and accelerator.
        (
            "CONFIG.c_m_axis_mm2s_tdata_width {64}",
            "CONFIG.c_m_axis_mm2s_tdata_width {32}",
            "stream widths differ",
        ),
        // HP port not enabled.
        (
            "CONFIG.PCW_USE_S_AXI_HP0 {1}",
            "CONFIG.PCW_USE_S_AXI_HP0 {0}",
            "has no pin 'S_AXI_HP0_ACLK'",
        ),
        // Master and master.
        (
            "[get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins accel_0/s_axis_in]",
            "[get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins accel_0/m_axis_out]",
            "needs one master and one slave",
        ),
        // Unknown option on a real command.
        (
            "launch_runs synth_1 -jobs $jobs",
            "launch_runs synth_1 -jobs $jobs -flow fast",
            "launch_runs: unknown option '-flow'",
        ),
        // Forgotten address assignment.
        ("\nassign_bd_address\n", "\n", "no addresses assigned"),
        // The accelerator's register window left at Vivado's minimum.
        (
            "-range 64K",
            "",
            "accel_0/s_axi_control has no explicit address range",
        ),
        // DMA stream widths not marked as user-set.
        (
            "CONFIG.c_s_axis_s2mm_tdata_width.VALUE_SRC USER",
            "CONFIG.c_s_axis_s2mm_tdata_width.VALUE_SRC DEFAULTS",
            "VALUE_SRC is USER",
        ),
    ];
    for (from, to, needle) in cases {
        assert!(
            original.contains(from),
            "mutation anchor {from:?} not in build.tcl"
        );
        std::fs::write(bundle.join("build.tcl"), original.replace(from, to)).expect("write");
        let out = run_build(&bundle, &accel, &[]);
        assert_fails(&out, needle);
    }
}

#[test]
fn python_driver_compiles_for_every_board() {
    let db = BoardDb::builtin().expect("built-ins");
    for board in db.boards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (bundle, _) = make_bundle(board, tmp.path());
        let py = bundle.join(format!("{TOP}_driver.py"));
        let out = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&py)
            .output()
            .expect("python3 must be installed for the driver checks");
        assert!(
            out.status.success(),
            "{}: py_compile failed: {}",
            board.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn python_register_constants_match_interface() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("kv260").expect("kv260");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut accel = accel_for(board);
    // Non-sequential offsets too, so the check is not trivially "0x10 + 4i".
    accel.args[2].offset = 0x40;
    let dir = tmp.path().join("b");
    write_bundle(&dir, &spec(board, &accel)).expect("bundle");
    let py = dir.join(format!("{TOP}_driver.py"));
    // Read module-level integer constants with ast (pynq and numpy need not be installed).
    let extract = r#"
import ast, json, sys
tree = ast.parse(open(sys.argv[1]).read())
out = {}
for node in tree.body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        name = node.targets[0].id
        if name.startswith("REG_") and isinstance(node.value, ast.Constant):
            out[name] = node.value.value
        if name == "ARGS":
            out["ARGS"] = {k.value: [v.elts[0].id, v.elts[1].value] for k, v in zip(node.value.keys, node.value.values)}
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(extract)
        .arg(&py)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let regs = accel.register_map();
    assert_eq!(got.as_object().map(|o| o.len()), Some(regs.len() + 1));
    for r in &regs {
        assert_eq!(
            got[&r.const_name],
            serde_json::json!(r.offset),
            "{}",
            r.const_name
        );
    }
    for a in &accel.args {
        assert_eq!(
            got["ARGS"][&a.name],
            serde_json::json!([format!("REG_ARG_{}", a.name.to_ascii_uppercase()), a.bits])
        );
    }
    assert_eq!(got["REG_ARG_SHIFT"], serde_json::json!(0x40));
    // The manifest carries the same map for the Verilog-side check.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("read"))
            .expect("json");
    assert_eq!(
        manifest["registers"],
        serde_json::to_value(&regs).expect("regs")
    );
}

#[test]
fn bundle_generation_is_deterministic() {
    let db = BoardDb::builtin().expect("built-ins");
    for board in db.boards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let accel = accel_for(board);
        let s = spec(board, &accel);
        let m1 = write_bundle(&tmp.path().join("a"), &s).expect("bundle a");
        let m2 = write_bundle(&tmp.path().join("b"), &s).expect("bundle b");
        assert_eq!(m1, m2, "{}: same inputs, different manifest", board.name);
        let names: Vec<&str> = m1.files.iter().map(|f| f.path.as_str()).collect();
        for want in [
            "hdl/af_test_top.v",
            "build.tcl",
            "synth_ooc.tcl",
            "af_test_top.xdc",
            "af_test_top_driver.py",
            "README.md",
        ] {
            assert!(names.contains(&want), "{}: missing {want}", board.name);
        }
        let budget = m1.budget.as_ref().expect("budget");
        assert_eq!(
            budget.fits,
            board.resources.lut.value >= 20_000 && board.resources.dsp.value >= 64
        );
    }
}

#[test]
fn write_bundle_is_atomic_and_refuses_to_clobber() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let accel = accel_for(board);
    let dir = tmp.path().join("out");
    write_bundle(&dir, &spec(board, &accel)).expect("first");
    let err = write_bundle(&dir, &spec(board, &accel)).expect_err("exists");
    assert!(matches!(err, BoardError::Exists { .. }), "{err}");

    // A failing generation leaves the old bundle untouched and no temp dirs behind.
    let mut bad = spec(board, &accel);
    bad.options.overwrite = true;
    bad.sources[0].name = "../escape.v".into();
    let err = write_bundle(&dir, &bad).expect_err("bad name");
    assert!(err.to_string().contains("../escape.v"), "{err}");
    assert!(dir.join("build.tcl").is_file());

    let mut over = spec(board, &accel);
    over.options.overwrite = true;
    std::fs::write(dir.join("stale.txt"), "old").expect("write");
    write_bundle(&dir, &over).expect("overwrite");
    assert!(
        !dir.join("stale.txt").exists(),
        "old bundle was not replaced"
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "out")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary directories left: {leftovers:?}"
    );
}

#[test]
fn interface_validation_names_the_field() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    type Mutation = Box<dyn Fn(&mut AccelInterface)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|a| a.in_stream_bits = 24), "in_stream_bits"),
        (Box::new(|a| a.args[1].offset = 0x0C), "args[1].offset"),
        (
            Box::new(|a| a.args[1].offset = 0x10),
            "already used by `rows`",
        ),
        (Box::new(|a| a.args[0].bits = 33), "args[0].bits"),
        (
            Box::new(|a| a.args[0].name = "class".into()),
            "args[0].name",
        ),
        (Box::new(|a| a.name = "af top".into()), "try `af_top`"),
        (
            Box::new(|a| a.max_transfer_bytes = 1 << 27),
            "max_transfer_bytes",
        ),
        (Box::new(|a| a.clock_mhz = 300.0), "above the 250 MHz"),
        (Box::new(|a| a.clock_mhz = f64::NAN), "clock_mhz"),
    ];
    for (i, (mutate, needle)) in cases.iter().enumerate() {
        let mut accel = accel_for(board);
        mutate(&mut accel);
        let err = write_bundle(&tmp.path().join(format!("c{i}")), &spec(board, &accel))
            .expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert!(!tmp.path().join(format!("c{i}")).exists());
    }
    let accel = accel_for(board);
    let mut s = spec(board, &accel);
    s.options.dma_port = Some("S_AXI_HP0_FPD".into());
    let err = write_bundle(&tmp.path().join("p"), &s).expect_err("port");
    assert!(err.to_string().contains("S_AXI_HP0_FPD"), "{err}");
}

#[test]
fn every_hp_port_option_passes_the_stub() {
    let db = BoardDb::builtin().expect("built-ins");
    for (board, ports) in [
        ("zedboard", vec!["S_AXI_HP1", "S_AXI_HP3"]),
        ("ultra96-v2", vec!["S_AXI_HPC0_FPD", "S_AXI_HP3_FPD"]),
    ] {
        let board = db.get(board).expect("board");
        for port in ports {
            let tmp = tempfile::tempdir().expect("tempdir");
            let accel = accel_for(board);
            let mut s = spec(board, &accel);
            s.options.dma_port = Some(port.into());
            let dir = tmp.path().join("b");
            write_bundle(&dir, &s).expect("bundle");
            let out = run_build(&dir, &accel, &[]);
            assert_ok(&out, &format!("{} {port}", board.name));
        }
    }
}

#[test]
fn python_driver_runs_against_fake_pynq() {
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !numpy {
        // numpy is not a build dependency of the crate; in CI it must be there.
        assert!(
            std::env::var("CI").is_err(),
            "numpy is needed for the driver run test (pip install numpy)"
        );
        eprintln!("WARNING: numpy missing: python_driver_runs_against_fake_pynq did NOT run");
        return;
    }
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (bundle, _) = make_bundle(board, tmp.path());
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_pynq.py"),
        bundle.join("pynq.py"),
    )
    .expect("copy fake pynq");
    let check = r#"
import numpy as np
import pynq
from af_test_top_driver import AfTestTop, REG_AP_CTRL, REG_ARG_ROWS, REG_ARG_SCALE, REG_ARG_SHIFT

accel = AfTestTop()
x = np.arange(16, dtype=np.uint8)           # two 64-bit beats
y = accel.run(x, out_beats=3, rows=2, scale=7, shift=-1)
assert y.dtype == np.uint8 and y.tolist() == [v + 2 for v in range(12)], y
writes = [e[1:] for e in pynq.LOG if e[0] == "write"]
assert writes == [(REG_ARG_ROWS, 2), (REG_ARG_SCALE, 7), (REG_ARG_SHIFT, 31), (REG_AP_CTRL, 1)], writes
order = [e[0] + ":" + str(e[1]) for e in pynq.LOG if e[0] in ("transfer", "write")]
assert order.index("transfer:recv") < order.index("transfer:send") < order.index("write:0"), order
assert ("invalidate", 12) in pynq.LOG and ("flush", 16) in pynq.LOG
assert sum(1 for e in pynq.LOG if e[0] == "free") == 2

y16 = accel.run(x, out_beats=2, out_dtype=np.uint16)
assert y16.dtype == np.uint16 and y16.size == 4
# A command that only reads its input (a table load): no receive transfer, nothing waited for.
pynq.LOG.clear()
none = accel.run(x, out_beats=0)
assert none.size == 0, none
assert not any(e[0] == "transfer" and e[1] == "recv" for e in pynq.LOG), pynq.LOG
assert ("wait", "recv") not in pynq.LOG and sum(1 for e in pynq.LOG if e[0] == "free") == 1
for bad in (dict(data=np.zeros(5, np.uint8), out_beats=1), dict(data=x, out_beats=-1)):
    try:
        accel.run(**bad)
    except ValueError:
        pass
    else:
        raise AssertionError(bad)
for kwargs in (dict(nope=1), dict(shift=32), dict(rows=-40000)):
    try:
        accel.write_args(**kwargs)
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(kwargs)
print("DRIVER OK")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .current_dir(&bundle)
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("DRIVER OK"),
        "driver run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The driver refuses an argument outside the core's limits before touching the hardware
/// (naming the limit), and raises when the accelerator reports a rejected command.
#[test]
fn python_driver_checks_limits_and_the_error_bit() {
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !numpy {
        assert!(
            std::env::var("CI").is_err(),
            "numpy is needed for the driver run test (pip install numpy)"
        );
        eprintln!(
            "WARNING: numpy missing: python_driver_checks_limits_and_the_error_bit did NOT run"
        );
        return;
    }
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let accel = accel_for(board)
        .with_arg_range("rows", 1, 300)
        .expect("range");
    // A range must fit the register and name a real argument.
    assert!(accel_for(board).with_arg_range("rows", 1, 1 << 16).is_err());
    assert!(accel_for(board).with_arg_range("cols", 1, 2).is_err());
    assert!(accel_for(board).with_arg_range("rows", 3, 2).is_err());
    let bundle = tmp.path().join("b");
    write_bundle(&bundle, &spec(board, &accel)).expect("bundle");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_pynq.py"),
        bundle.join("pynq.py"),
    )
    .expect("copy fake pynq");
    let check = r#"
import numpy as np
import pynq
from af_test_top_driver import AfTestTop, REG_AP_CTRL, REG_CMD_STATUS, CMD_ERROR, ARG_LIMITS

assert ARG_LIMITS == {"rows": (1, 300)}, ARG_LIMITS
accel = AfTestTop()
x = np.arange(16, dtype=np.uint8)
for rows in (0, 301):
    try:
        accel.run(x, out_beats=3, rows=rows)
    except ValueError as e:
        assert "'rows' = %d" % rows in str(e) and "1..300" in str(e), e
    else:
        raise AssertionError(rows)
# The register's value counts when the argument is not given (it is 0 after reset).
try:
    accel.run(x, out_beats=3)
except ValueError as e:
    assert "'rows' = 0" in str(e), e
else:
    raise AssertionError("rows register 0")
assert not [e for e in pynq.LOG if e[0] in ("write", "allocate")], pynq.LOG
y = accel.run(x, out_beats=3, rows=2)
assert y.tolist() == [v + 2 for v in range(12)], y
# The accelerator rejects the command anyway: the driver says so instead of waiting forever.
accel.ip.on_start = lambda regs: regs.__setitem__(REG_CMD_STATUS, CMD_ERROR)
try:
    accel.run(x, out_beats=3, rows=2)
except RuntimeError as e:
    assert "rejected" in str(e) and "REG_CMD_STATUS" in str(e), e
else:
    raise AssertionError("error bit ignored")
waits = [e for e in pynq.LOG if e[0] == "wait"]
assert len(waits) == 2, waits  # only the good run waited on the DMA
assert sum(1 for e in pynq.LOG if e[0] == "free") == 4
print("LIMITS OK")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .current_dir(&bundle)
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("LIMITS OK"),
        "driver run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An interface with status registers and a weight fetch (two segments, one 16 x 8 matrix
/// each, 8-bit weights, 4-byte beats), for the board's address width.
fn fetch_accel_for(board: &Board) -> AccelInterface {
    let mut a = accel_for(board);
    a.status.push(StatusReg {
        name: "loads".into(),
        offset: 0x1C,
        bits: 7,
        doc: "expert loads".into(),
    });
    let m = |index| SegmentMatrix {
        array: "w".into(),
        index: Some(index),
        rows: 16,
        cols: 8,
    };
    let fetch = WeightFetch::packed(
        32,
        accelforge_boards::zynq::dma_addr_bits(board.ps),
        2,
        WeightLayout {
            lanes: 4,
            simd: 2,
            elem_bits: 8,
            elem_bytes: 1,
        },
        vec![(1, "a".into(), vec![m(0)]), (0, "b".into(), vec![m(1)])],
    );
    a.with_weight_fetch(fetch)
}

#[test]
fn weight_fetch_bundles_pass_the_stub_on_every_board() {
    let db = BoardDb::builtin().expect("built-ins");
    for board in db.boards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let accel = fetch_accel_for(board);
        let f = accel.weight_fetch.as_ref().unwrap();
        assert_eq!(f.segments[1].offset, 128, "second segment 64-byte aligned");
        assert_eq!(f.image_bytes(), 256);
        let dir = tmp.path().join("b");
        write_bundle(&dir, &spec(board, &accel)).expect("bundle");
        let out = run_build(&dir, &accel, &[]);
        assert_ok(&out, &board.name);
        let t = std::fs::read_to_string(dir.join("build.tcl")).unwrap();
        assert!(t.contains("CONFIG.NUM_SI {3} CONFIG.NUM_MI {1}"));
        assert!(t.contains("CONFIG.c_mm2s_btt_used {8}"));
        let py = dir.join(format!("{TOP}_driver.py"));
        let c = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&py)
            .output()
            .unwrap();
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    }
}

#[test]
fn stub_catches_mutated_datamover_wiring() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let accel = fetch_accel_for(board);
    let dir = tmp.path().join("b");
    write_bundle(&dir, &spec(board, &accel)).expect("bundle");
    let original = std::fs::read_to_string(dir.join("build.tcl")).expect("read");
    let cases = [
        // S2MM left in: its interfaces dangle.
        (
            "CONFIG.c_include_s2mm {Omit}",
            "CONFIG.c_include_s2mm {Full}",
            "is not connected",
        ),
        // Weight stream width differs from the accelerator's.
        (
            "CONFIG.c_m_axis_mm2s_tdata_width {32}",
            "CONFIG.c_m_axis_mm2s_tdata_width {64}",
            "M_AXIS_MM2S TDATA 64 bits, /accel_0/s_axis_w TDATA 32 bits",
        ),
        // 64-bit addresses give a 104-bit command the 72-bit port cannot take.
        (
            "CONFIG.c_addr_width {32} \\\n] $datamover",
            "CONFIG.c_addr_width {64} \\\n] $datamover",
            "S_AXIS_MM2S_CMD TDATA 104 bits",
        ),
        // Status stream forgotten: the DataMover would stop once its status FIFO fills.
        (
            "connect_bd_intf_net [get_bd_intf_pins axi_datamover_0/M_AXIS_MM2S_STS] [get_bd_intf_pins accel_0/s_axis_mm2s_sts]\n",
            "",
            "M_AXIS_MM2S_STS is not connected",
        ),
        // BTT width out of PG022's range.
        (
            "CONFIG.c_mm2s_btt_used {8}",
            "CONFIG.c_mm2s_btt_used {24}",
            "BTT width is 8..23",
        ),
        // Interconnect with one slave port too few.
        (
            "CONFIG.NUM_SI {3} CONFIG.NUM_MI {1}",
            "CONFIG.NUM_SI {2} CONFIG.NUM_MI {1}",
            "has no intf 'S02_AXI'",
        ),
    ];
    for (from, to, needle) in cases {
        assert!(
            original.contains(from),
            "mutation anchor {from:?} not in build.tcl"
        );
        std::fs::write(dir.join("build.tcl"), original.replace(from, to)).expect("write");
        let out = run_build(&dir, &accel, &[]);
        assert_fails(&out, needle);
    }
}

fn wf(a: &mut AccelInterface) -> &mut WeightFetch {
    a.weight_fetch.as_mut().unwrap()
}

#[test]
fn weight_fetch_validation_names_the_problem() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    type Mutation = Box<dyn Fn(&mut AccelInterface)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|a| wf(a).stream_bits = 24),
            "cannot be carried by the AXI DataMover",
        ),
        (
            Box::new(|a| wf(a).segments[0].bytes = 1 << 23),
            "23-bit BTT",
        ),
        (
            Box::new(|a| wf(a).segments[1].offset = 96),
            "multiple of 128",
        ),
        (Box::new(|a| wf(a).segments[1].id = 1), "repeats"),
        (Box::new(|a| wf(a).segments[0].id = 4), "2-bit wreq_id"),
        (
            Box::new(|a| wf(a).segments[0].matrices[0].rows = 6),
            "multiple of lanes",
        ),
        (
            Box::new(|a| {
                let w = wf(a);
                w.addr_bits = 64;
                w.status_offset += 4;
            }),
            "64-bit addresses but processing_system7 needs 32",
        ),
        (Box::new(|a| wf(a).status_offset = 0x1C), "already used"),
        (Box::new(|a| a.status[0].bits = 40), "status[0].bits"),
    ];
    for (i, (mutate, needle)) in cases.iter().enumerate() {
        let mut accel = fetch_accel_for(board);
        mutate(&mut accel);
        let err = write_bundle(&tmp.path().join(format!("c{i}")), &spec(board, &accel))
            .expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert!(!tmp.path().join(format!("c{i}")).exists());
    }
}

#[test]
fn weight_fetch_driver_runs_against_fake_pynq() {
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !numpy {
        assert!(std::env::var("CI").is_err(), "numpy is needed in CI");
        eprintln!("WARNING: numpy missing: weight_fetch_driver_runs_against_fake_pynq did NOT run");
        return;
    }
    let db = BoardDb::builtin().expect("built-ins");
    for board in ["pynq-z2", "kv260"] {
        let board = db.get(board).expect("board");
        let tmp = tempfile::tempdir().expect("tempdir");
        let accel = fetch_accel_for(board);
        let dir = tmp.path().join("b");
        write_bundle(&dir, &spec(board, &accel)).expect("bundle");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_pynq.py"),
            dir.join("pynq.py"),
        )
        .unwrap();
        // Segment "a" (id 1) holds w[0], "b" (id 0) holds w[1]. With 16 x 8 matrices, 4 lanes
        // and 2 columns per word, byte j of a segment is W[4t + lane][2kk + s] with
        // j = ((t * 4 + kk) * 4 + lane) * 2 + s.
        let check = r#"
import numpy as np
import pynq
import af_test_top_driver as d
assert d.weight_shapes() == {"w": (2, 16, 8)}
w = (np.arange(2 * 16 * 8, dtype=np.int64).reshape(2, 16, 8) % 200) - 100
img = d.pack_weights(w=w)
assert img.size == 256
for seg, off in ((0, 0), (1, 128)):
    for t in range(4):
        for kk in range(4):
            for lane in range(4):
                for s in range(2):
                    j = ((t * 4 + kk) * 4 + lane) * 2 + s
                    assert img[off + j] == (int(w[seg][4 * t + lane][2 * kk + s]) & 0xFF), (seg, j)
assert not img[128 + 128:].any()
accel = d.AfTestTop()
try:
    accel.run_batch(np.zeros(8, np.uint8), out_beats=1)
except RuntimeError as e:
    assert "load_weights" in str(e)
else:
    raise AssertionError("ran without weights")
addr = accel.load_weights(w=w)
writes = [e[1:] for e in pynq.LOG if e[0] == "write"]
assert (d.REG_WEIGHTS_BASE, addr & 0xFFFFFFFF) in writes
assert ("REG_WEIGHTS_BASE_HI" in dir(d)) == (d.WEIGHT_ADDR_BITS == 64)
if d.WEIGHT_ADDR_BITS == 64:
    assert (d.REG_WEIGHTS_BASE_HI, addr >> 32) in writes
accel.ip.regs[d.REG_STAT_LOADS] = 5
y, status = accel.run_batch(np.arange(16, dtype=np.uint8), out_beats=2, rows=1)
assert status == {"loads": 5}, status
assert y.tolist() == [v + 1 for v in range(8)], y
accel.ip.regs[d.REG_FETCH_STATUS] = d.FETCH_ERROR | d.FETCH_DECERR | (3 << d.FETCH_COUNT_SHIFT)
fs = accel.fetch_status()
assert fs["error"] and fs["decerr"] and fs["segments_done"] == 3, fs
try:
    accel.run_batch(np.arange(16, dtype=np.uint8), out_beats=2)
except RuntimeError as e:
    assert "weight fetch failed" in str(e)
else:
    raise AssertionError("fetch error not reported")
print("FETCH DRIVER OK")
"#;
        let out = Command::new("python3")
            .arg("-c")
            .arg(check)
            .current_dir(&dir)
            .output()
            .expect("python3");
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("FETCH DRIVER OK"),
            "{}: {}\n{}",
            board.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `tcl_word` gives one word tclsh reads back as exactly the input, whatever it holds.
#[test]
fn tcl_word_round_trips_through_tclsh() {
    use accelforge_boards::zynq::tcl::tcl_word;
    let inputs = [
        "xc7z020clg400-1",
        "a b\tc\nd",
        "} {puts x} {",
        "[exit 3]",
        "$env(HOME)",
        "\"q\" ;# c",
        "back\\slash\\",
        "",
    ];
    let mut script = String::new();
    for s in &inputs {
        script.push_str(&format!(
            "puts -nonewline [string length {}]|\n",
            tcl_word(s)
        ));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tclsh(&script, tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: String = inputs.iter().map(|s| format!("{}|", s.len())).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

/// ZedBoard's files as Vivado ships them (`avnet.com:zedboard:part0:1.4`, or another version
/// of that name) are found without the bare-part opt-in.
#[test]
fn zedboard_matches_the_board_part_vivado_ships() {
    let db = BoardDb::builtin().expect("built-ins");
    let board = db.get("zedboard").expect("zedboard");
    assert!(
        board
            .board_part_alternates
            .iter()
            .any(|a| a == "avnet.com:zedboard:part0:1.4")
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let (bundle, accel) = make_bundle(board, tmp.path());
    for installed in [
        "avnet.com:zedboard:part0:1.4",
        "avnet.com:zedboard:part0:1.5",
    ] {
        let out = run_build_with(&bundle, &accel, &[installed.to_string()], "", "");
        let stdout = assert_ok(&out, installed);
        assert!(!stdout.contains("bare part"), "{stdout}");
    }
    let out = run_build_with(
        &bundle,
        &accel,
        &["avnet.com:other:part0:1.4".into()],
        "",
        "",
    );
    assert_fails(
        &out,
        "board files for digilentinc.com:zedboard:part0:1.0 are not installed",
    );
}

/// Engine `n` of a several-engine test design: module `af_test_top_<n>`, engine 1 with a
/// weight fetch (its DataMover takes the data interconnect's fifth slave port).
fn engine_accel(board: &Board, n: usize) -> AccelInterface {
    let mut a = if n == 1 {
        fetch_accel_for(board)
    } else {
        accel_for(board)
    };
    a.name = format!("{TOP}_{n}");
    a
}

fn engine_spec<'a>(accel: &'a AccelInterface) -> EngineSpec<'a> {
    EngineSpec {
        accel,
        sources: vec![SourceFile {
            name: format!("{}.v", accel.name),
            contents: "// placeholder for the generated wrapper\n".into(),
        }],
        template_params: serde_json::json!({ "template": "test", "engine": accel.name }),
        estimate: Some(ResourceEstimate {
            lut: 10_000,
            ff: 10_000,
            dsp: 32,
            bram18: 8,
            uram: 0,
        }),
    }
}

/// Two engines in one block design (the second with a weight fetch) pass the Vivado stand-in on
/// every built-in board with both modules declared: each accelerator and DMA cell wired on its
/// own interconnect ports and interrupt lines, the DataMover after both DMAs on the data
/// interconnect; each engine's out-of-context script runs too, each driver names its cells and
/// the shared bitstream, and the manifest lists both engines with the summed budget.
#[test]
fn two_engine_bundles_pass_the_stub_on_every_board() {
    let db = BoardDb::builtin().expect("built-ins");
    for board in db.boards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let accels = [engine_accel(board, 0), engine_accel(board, 1)];
        let specs: Vec<_> = accels.iter().map(engine_spec).collect();
        let dir = tmp.path().join("b");
        let m = write_engines_bundle(&dir, board, &specs, "af_two", &BundleOptions::default())
            .expect("bundle");
        let script = format!(
            "{}{}\nset argv {{--jobs 2 --allow-bare-part}}\nset argc 3\nsource {{{}}}\n::stub::finish\n",
            prelude(&accels[0], &[]),
            declare_module(&accels[1]),
            dir.join("build.tcl").display()
        );
        assert_ok(&tclsh(&script, tmp.path()), &board.name);
        let t = std::fs::read_to_string(dir.join("build.tcl")).unwrap();
        for needle in [
            "CONFIG.NUM_SI {1} CONFIG.NUM_MI {4}",
            "CONFIG.NUM_SI {5} CONFIG.NUM_MI {1}",
            "CONFIG.NUM_PORTS {6}",
            "[get_bd_intf_pins axi_datamover_1/M_AXI_MM2S] [get_bd_intf_pins data_smc/S04_AXI]",
            "[get_bd_intf_pins accel_1/m_axis_mm2s_cmd] [get_bd_intf_pins axi_datamover_1/S_AXIS_MM2S_CMD]",
            "[get_bd_pins axi_dma_1/s2mm_introut] [get_bd_pins irq_concat/In5]",
        ] {
            assert!(
                t.contains(needle),
                "{}: {needle} not in build.tcl",
                board.name
            );
        }
        assert!(
            !t.contains("axi_datamover_0"),
            "engine 0 has no weight fetch"
        );
        for (n, a) in accels.iter().enumerate() {
            let ooc = format!(
                "{}source {{{}}}\n::stub::finish\n",
                prelude(a, &[]),
                dir.join(format!("synth_ooc_{n}.tcl")).display()
            );
            assert_ok(&tclsh(&ooc, tmp.path()), &format!("synth_ooc_{n}.tcl"));
            assert!(
                dir.join(format!("{}_ooc_utilization.rpt", a.name))
                    .is_file()
            );
            let py = std::fs::read_to_string(dir.join(format!("{}_driver.py", a.name))).unwrap();
            for line in [
                format!("IP_NAME = \"accel_{n}\""),
                format!("DMA_NAME = \"axi_dma_{n}\""),
                "BITSTREAM = \"af_two.bit\"".to_string(),
            ] {
                assert!(py.contains(&line), "{line}");
            }
            let c = Command::new("python3")
                .args(["-m", "py_compile"])
                .arg(dir.join(format!("{}_driver.py", a.name)))
                .output()
                .unwrap();
            assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
        }
        assert_eq!(m.engines.len(), 2);
        assert_eq!(m.engines[1].accel_cell, "accel_1");
        assert_eq!(m.base_name, "af_two");
        assert_eq!(m.budget.as_ref().unwrap().estimate.dsp, 64);
        let listed: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        for f in [
            "hdl/af_test_top_0.v",
            "hdl/af_test_top_1.v",
            "synth_ooc_1.tcl",
        ] {
            assert!(listed.contains(&f), "{f} not in the manifest");
        }
    }
}

/// What engines of one block design cannot be, each refused naming the problem: different
/// clocks, one module name twice, one source file twice, more engines than interrupt lines.
#[test]
fn engine_bundles_refuse_what_one_block_design_cannot_hold() {
    let db = BoardDb::builtin().expect("built-ins");
    let z2 = db.get("pynq-z2").expect("pynq-z2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let render = |board: &Board, accels: &[AccelInterface]| {
        let specs: Vec<_> = accels.iter().map(engine_spec).collect();
        render_engines_bundle(board, &specs, "af_x", &BundleOptions::default())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let mut slow = engine_accel(z2, 1);
    slow.clock_mhz = 50.0;
    let e = render(z2, &[engine_accel(z2, 0), slow]);
    assert!(e.contains("share the board, the PL clock"), "{e}");
    let e = render(z2, &[engine_accel(z2, 0), engine_accel(z2, 0)]);
    assert!(e.contains("two engines with one module name"), "{e}");
    let a = [engine_accel(z2, 0), engine_accel(z2, 2)];
    let mut specs: Vec<_> = a.iter().map(engine_spec).collect();
    specs[1].sources[0].name = specs[0].sources[0].name.clone();
    let e = render_engines_bundle(z2, &specs, "af_x", &BundleOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("given twice"), "{e}");
    let specs: Vec<_> = a.iter().map(engine_spec).collect();
    let e = render_engines_bundle(z2, &specs, "af x; rm", &BundleOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a plain identifier"), "{e}");
    let kv = db.get("kv260").expect("kv260");
    let three: Vec<_> = [0, 2, 3].iter().map(|&n| engine_accel(kv, n)).collect();
    let e = render(kv, &three);
    assert!(e.contains("3 engines need 9 interrupt lines"), "{e}");
    // Nothing was written by a refused bundle.
    let specs: Vec<_> = three.iter().map(engine_spec).collect();
    let out = tmp.path().join("never");
    assert!(write_engines_bundle(&out, kv, &specs, "af_x", &BundleOptions::default()).is_err());
    assert!(!out.exists());
}
