//! The systolic array wrapped for Zynq, driven the way the PS and the AXI DMA drive it: layer
//! arguments and the start bit over AXI4-Lite, operands on the input stream with random gaps,
//! results drained to TLAST with random stalls, the done bit polled — and the results equal the
//! golden model.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_boards::zynq::wrapper::{interface_for_core, wrap};
use accelforge_sim::{
    AxiLiteMaster, AxisDriver, AxisMonitor, AxisNames, Beat, BuildOptions, DesignSpec, Scoreboard,
    build,
};
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::sim::random_gemm_operands;
use accelforge_templates::systolic::{SystolicParams, model, rtl};

/// The 3x4 array both AXI tests drive, wrapped and built in Verilator (one cached build).
fn wrapped_3x4() -> (
    accelforge_templates::systolic::Resolved,
    accelforge_boards::AccelInterface,
    accelforge_sim::CompiledDesign,
) {
    let p = SystolicParams {
        rows: 3,
        cols: 4,
        max_k: 32,
        max_n_chunk: 8,
        ..SystolicParams::default()
    };
    let r = p.resolve().unwrap();
    let core = rtl::design(&p).unwrap();
    let accel = interface_for_core(core.top(), "af_systolic_top", 100.0, 1 << 20).unwrap();
    let wrapped = wrap(&core, &accel).unwrap();
    let opts = BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        ..BuildOptions::default()
    };
    let compiled = build(&DesignSpec::from_hdl(&wrapped), &opts).unwrap();
    (r, accel, compiled)
}

#[test]
fn wrapped_systolic_array_computes_gemms_over_axi() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let (r, accel, compiled) = wrapped_3x4();
    assert_eq!(
        accel
            .args
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["m", "k", "n"]
    );
    let mut sim = compiled.sim().unwrap();
    sim.reset(3).unwrap();
    let mut lite = AxiLiteMaster::new(&sim, "s_axi_control_", 1, 0.2).unwrap();
    let mut drv = AxisDriver::new(&sim, AxisNames::prefixed("s_axis_in_"), 2, 0.25).unwrap();
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_out_"), 3, 0.25).unwrap();
    // Two layers back to back through the same accelerator, as a driver would run them.
    for (i, g) in [Gemm { m: 7, k: 5, n: 9 }, Gemm { m: 4, k: 13, n: 3 }]
        .into_iter()
        .enumerate()
    {
        let (a, b) = random_gemm_operands(&r, &g, 40 + i as u64);
        let c = model::gemm(&r, &a, &b).unwrap();
        let expected = model::output_beats(&r, &g, &c);
        for (arg, value) in accel.args.iter().zip([g.m, g.k, g.n]) {
            lite.write(u64::from(arg.offset), value);
        }
        lite.write(0x00, 1);
        for beat in model::input_beats(&r, &g, &a, &b).unwrap() {
            drv.push(Beat {
                data: beat.0,
                last: beat.1,
            });
        }
        let mut cycles = 0u64;
        while mon.received().len() < expected.len() || !lite.is_idle() {
            sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                .unwrap();
            cycles += 1;
            assert!(cycles < 20_000, "layer {i} stalled");
        }
        // Poll ap_done (bit 1) like the PYNQ driver.
        let mut done = false;
        for _ in 0..20 {
            lite.read(0x00);
            while !lite.is_idle() {
                sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                    .unwrap();
            }
            if lite.results().last().unwrap().data & 0b10 != 0 {
                done = true;
                break;
            }
        }
        assert!(done, "layer {i}: ap_done never rose");
        assert!(
            lite.take_results().iter().all(|r| r.resp == 0),
            "every AXI4-Lite response is OKAY"
        );
        mon.check_protocol(&sim).unwrap();
        let mut sb = Scoreboard::new(format!("layer {i}"));
        sb.expect_all(expected.into_iter().map(|(data, last)| Beat { data, last }));
        sb.observe_all(mon.take_received());
        sb.finish().unwrap();
    }
}

/// Runs AXI4-Lite accesses (and the streams) until the master is idle; returns the read data.
fn settle(
    sim: &mut accelforge_sim::Sim,
    lite: &mut AxiLiteMaster,
    drv: &mut AxisDriver,
    mon: &mut AxisMonitor,
) -> Vec<u32> {
    for _ in 0..1000 {
        if lite.is_idle() {
            break;
        }
        sim.step_agents(&mut [lite, drv, mon]).unwrap();
    }
    assert!(lite.is_idle(), "AXI4-Lite accesses did not complete");
    let results = lite.take_results();
    assert!(results.iter().all(|r| r.resp == 0), "OKAY responses");
    results.iter().map(|r| r.data).collect()
}

/// Every command the core rejects (K = 0, K > max_k, M = 0, N = 0) completes with ap_done and
/// the error bit, writes nothing to the output stream, and leaves the top ready: a valid GEMM
/// right after it gives the golden result with the error bit clear. Before the fix the first
/// rejected command after a finished one never raised ap_done and the top ignored ap_start.
#[test]
fn wrapped_systolic_array_reports_rejected_commands_and_recovers() {
    use accelforge_boards::zynq::accel::{AP_DONE_BIT, AP_IDLE_BIT, AP_READY_BIT, CMD_ERROR_BIT};
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    // The array of the test above, so the Verilator build is shared.
    let (r, accel, compiled) = wrapped_3x4();
    let mut sim = compiled.sim().unwrap();
    sim.reset(3).unwrap();
    let mut lite = AxiLiteMaster::new(&sim, "s_axi_control_", 5, 0.2).unwrap();
    let mut drv = AxisDriver::new(&sim, AxisNames::prefixed("s_axis_in_"), 6, 0.25).unwrap();
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_out_"), 7, 0.25).unwrap();
    let status = u64::from(accel.cmd_status_offset());
    let (done, idle, ready) = (1 << AP_DONE_BIT, 1 << AP_IDLE_BIT, 1 << AP_READY_BIT);
    let ok = Gemm { m: 4, k: 13, n: 3 };
    // A valid layer first, so the core's `done` is high when the rejected ones arrive.
    let bad = [
        ok,
        Gemm { m: 4, k: 0, n: 3 },
        Gemm { m: 4, k: 0, n: 3 },
        Gemm { m: 4, k: 33, n: 3 },
        Gemm { m: 0, k: 5, n: 3 },
        Gemm { m: 4, k: 5, n: 0 },
        ok,
    ];
    for (i, g) in bad.into_iter().enumerate() {
        let valid = g.k >= 1 && g.k <= r.p.max_k && g.m >= 1 && g.n >= 1;
        let (a, b) = if valid {
            random_gemm_operands(&r, &g, 70 + i as u64)
        } else {
            Default::default()
        };
        let expected = if valid {
            let c = model::gemm(&r, &a, &b).unwrap();
            model::output_beats(&r, &g, &c)
        } else {
            Vec::new()
        };
        for (arg, value) in accel.args.iter().zip([g.m, g.k, g.n]) {
            lite.write(u64::from(arg.offset), value);
        }
        lite.write(0x00, 1);
        settle(&mut sim, &mut lite, &mut drv, &mut mon);
        if valid {
            for beat in model::input_beats(&r, &g, &a, &b).unwrap() {
                drv.push(Beat {
                    data: beat.0,
                    last: beat.1,
                });
            }
        }
        let mut reads = Vec::new();
        for _ in 0..2000 {
            lite.read(0x00);
            reads.push(settle(&mut sim, &mut lite, &mut drv, &mut mon)[0]);
            if reads.last().unwrap() & done != 0 {
                break;
            }
        }
        // ap_ready is held from the accept until the first read of ap_ctrl (as in HLS).
        assert_ne!(
            reads[0] & ready,
            0,
            "command {i} {g:?}: ap_ready {reads:x?}"
        );
        let ctrl = *reads.last().unwrap();
        assert_eq!(
            ctrl & (done | idle),
            done | idle,
            "command {i} {g:?}: ap_ctrl {ctrl:#x} after completion"
        );
        // ap_done and ap_ready were cleared by those reads; the top stays idle.
        lite.read(0x00);
        lite.read(status);
        let after = settle(&mut sim, &mut lite, &mut drv, &mut mon);
        assert_eq!(after[0] & (done | idle | ready), idle, "command {i}");
        assert_eq!(
            after[1] >> CMD_ERROR_BIT & 1,
            u32::from(!valid),
            "command {i} {g:?}: error bit"
        );
        for _ in 0..200 {
            sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                .unwrap();
        }
        mon.check_protocol(&sim).unwrap();
        let mut sb = Scoreboard::new(format!("command {i}"));
        sb.expect_all(expected.into_iter().map(|(data, last)| Beat { data, last }));
        sb.observe_all(mon.take_received());
        sb.finish().unwrap();
    }
}

/// The wrapped array lints clean and synthesises for both board families.
#[test]
fn wrapped_systolic_array_lints_and_synthesises() {
    use accelforge_hdl::tools::{self, DesignFiles, Family};
    if !accelforge_test_support::tool_available("verilator")
        || !accelforge_test_support::tool_available("yosys")
    {
        return;
    }
    let p = SystolicParams {
        rows: 2,
        cols: 2,
        max_k: 64,
        max_n_chunk: 4,
        ..SystolicParams::default()
    };
    let core = rtl::design(&p).unwrap();
    let accel = interface_for_core(core.top(), "af_systolic_top", 100.0, 1 << 20).unwrap();
    let wrapped = wrap(&core, &accel).unwrap();
    let files = DesignFiles::new(&wrapped).unwrap();
    let lint = tools::lint(&files.paths, Some(wrapped.top_name())).unwrap();
    assert!(lint.is_clean(), "{:?}", lint.diagnostics);
    tools::parse_check(&files.paths, Some(wrapped.top_name())).unwrap();
    for family in [Family::Xc7, Family::Xcup] {
        let r = tools::synth(&files.paths, wrapped.top_name(), family).unwrap();
        assert_eq!(r.dsp, 4, "{family}: {r:?}");
        assert!(
            r.bram18_equivalent() > 0,
            "{family}: operand buffers are block RAM"
        );
    }
}
