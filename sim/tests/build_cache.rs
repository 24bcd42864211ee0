//! Build cache, build errors, tracing.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod common;

use accelforge_sim::{BuildOptions, DesignSpec, SimError, build, clear_cache};

fn isolated_opts(dir: &std::path::Path) -> BuildOptions {
    BuildOptions {
        cache_dir: Some(dir.to_path_buf()),
        ..common::opts()
    }
}

#[test]
fn missing_verilator_is_a_clear_error() {
    // Needs no Verilator: that is the point.
    let opts = BuildOptions {
        verilator: "/nonexistent/verilator".into(),
        ..common::opts()
    };
    let err = build(&common::counter_spec(), &opts).expect_err("no such tool");
    let msg = err.to_string();
    assert!(matches!(err, SimError::ToolMissing { .. }), "{msg}");
    assert!(msg.contains("/nonexistent/verilator"), "{msg}");
    assert!(msg.contains("apt-get install verilator"), "{msg}");
}

#[test]
fn cache_hit_reuses_the_library_and_clear_cache_works() {
    require_verilator!();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = isolated_opts(dir.path());
    let spec = common::counter_spec();
    let first = build(&spec, &opts).expect("first build");
    assert!(!first.was_cached());

    // A hit is the same library, not a rebuild (how long it takes is the machine's business,
    // not a test's).
    let second = build(&spec, &opts).expect("second build");
    assert!(second.was_cached());
    assert_eq!(first.library_path(), second.library_path());

    // Any change to the sources is a different entry.
    let mut changed = spec.clone();
    changed.sources[0].1.push_str("// changed\n");
    let third = build(&changed, &opts).expect("changed build");
    assert!(!third.was_cached());
    assert_ne!(third.library_path(), first.library_path());

    clear_cache(&opts).expect("clear");
    assert!(!dir.path().exists());
    // Loaded libraries stay usable after the cache is cleared.
    let mut sim = first.sim().expect("sim");
    sim.reset(1).expect("reset");
    let again = build(&spec, &opts).expect("rebuild");
    assert!(!again.was_cached());
}

#[test]
fn concurrent_builds_of_one_design_agree() {
    require_verilator!();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = isolated_opts(dir.path());
    let spec = common::stream_reg_spec();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (spec, opts) = (spec.clone(), opts.clone());
            std::thread::spawn(move || build(&spec, &opts).map(|d| d.library_path().to_path_buf()))
        })
        .collect();
    let paths: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("build"))
        .collect();
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    // No temporary directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read cache")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn verilog_errors_carry_the_error_lines() {
    require_verilator!();
    let spec = DesignSpec::new("broken")
        .source(
            "broken.v",
            "module broken(input wire clk, output wire q);\n  assign q = undeclared_signal;\nendmodule\n",
        )
        .input("clk", 1)
        .output("q", 1);
    let err = build(&spec, &common::opts()).expect_err("undeclared signal");
    match &err {
        SimError::VerilatorFailed { errors, .. } => {
            assert!(errors.iter().all(|l| l.starts_with("%Error")), "{errors:?}");
            assert!(
                errors
                    .iter()
                    .any(|l| l.contains("broken.v:2") && l.contains("undeclared_signal")),
                "{errors:?}"
            );
            assert!(!errors.iter().any(|l| l.contains(".tmp-")), "{errors:?}");
        }
        other => panic!("expected VerilatorFailed, got {other}"),
    }
}

#[test]
fn spec_port_mismatch_is_reported() {
    require_verilator!();
    let mut spec = common::counter_spec();
    spec.ports.retain(|p| p.name != "count");
    spec = spec.output("count", 9);
    let err = build(&spec, &common::opts()).expect_err("width mismatch");
    let msg = err.to_string();
    assert!(matches!(err, SimError::PortMismatch { .. }), "{msg}");
    assert!(
        msg.contains("`count` is 9 bits in the spec but 8 bits"),
        "{msg}"
    );
}

#[test]
fn finish_and_stop_do_not_kill_the_process() {
    require_verilator!();
    let src = "\
module ender(input wire clk, input wire [1:0] cmd, output reg [3:0] n);
    initial n = 0;
    always @(posedge clk) begin
        n <= n + 1;
        if (cmd == 2'd1) $finish;
        if (cmd == 2'd2) $stop;
    end
endmodule
";
    let spec = DesignSpec::new("ender")
        .source("ender.v", src)
        .input("clk", 1)
        .input("cmd", 2)
        .output("n", 4);
    let design = build(&spec, &common::opts()).expect("build");
    let mut sim = design.sim().expect("sim");
    sim.step_n(2).expect("step");
    sim.poke("cmd", 1).expect("poke");
    sim.step().expect("$finish is not an error");
    assert!(sim.finished());
    sim.step()
        .expect("a second $finish must not exit the process");
    sim.poke("cmd", 2).expect("poke");
    let err = sim.step().expect_err("$stop is an error");
    assert!(matches!(err, SimError::Fatal { .. }), "{err}");
}

#[test]
fn vcd_trace_names_the_ports() {
    require_verilator!();
    let design = build(&common::stream_reg_spec(), &common::trace_opts()).expect("build");
    assert!(design.has_trace());
    let dir = tempfile::tempdir().expect("tempdir");
    let vcd = dir.path().join("stream.vcd");
    let mut sim = design.sim().expect("sim");
    sim.reset(2).expect("reset");
    sim.trace_vcd(&vcd).expect("open vcd");
    sim.poke("s_axis_tvalid", 1).expect("poke");
    sim.poke("s_axis_tdata", 0xabc).expect("poke");
    sim.poke("m_axis_tready", 1).expect("poke");
    sim.step_n(5).expect("step");
    sim.trace_close();
    let text = std::fs::read_to_string(&vcd).expect("read vcd");
    for port in [
        "clk",
        "rst_n",
        "s_axis_tdata",
        "s_axis_tvalid",
        "s_axis_tready",
        "m_axis_tdata",
        "m_axis_tvalid",
        "m_axis_tready",
    ] {
        assert!(
            text.contains(&format!(" {port} ")),
            "VCD lacks {port}:\n{}",
            &text[..text.len().min(2000)]
        );
    }
    assert!(text.contains("#10"), "time advances:\n{text}");

    // A non-trace build refuses.
    let plain = build(&common::stream_reg_spec(), &common::opts()).expect("build");
    let mut sim = plain.sim().expect("sim");
    assert!(matches!(
        sim.trace_vcd(dir.path().join("x.vcd")),
        Err(SimError::TraceNotEnabled { .. })
    ));
}
