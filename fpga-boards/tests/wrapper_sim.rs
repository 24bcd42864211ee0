//! The wrapped bring-up core driven the way the PS and the AXI DMA drive it: AXI4-Lite writes of
//! the arguments and the start bit, the input stream with random back-pressure, the output
//! stream to its TLAST, and the done bit read back — with every protocol rule checked.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_boards::zynq::generate::{GenerateRequest, generate_bundle};
use accelforge_boards::zynq::{loopback, wrapper};
use accelforge_boards::{BoardDb, ResourceEstimate};
use accelforge_sim::{
    AxiLiteMaster, AxisDriver, AxisMonitor, AxisNames, Beat, BuildOptions, DesignSpec, Scoreboard,
    Sim, build,
};

/// Register offsets read from the generated PYNQ driver, so the test checks that the driver and
/// the Verilog agree: every access below goes to the address the driver would use.
struct Regs {
    ctrl: u64,
    gie: u64,
    ier: u64,
    isr: u64,
    count: u64,
    addend: u64,
}

fn driver_offsets(py: &str) -> Regs {
    let get = |name: &str| -> u64 {
        let line = py
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} missing from the driver"));
        let hex = line
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_start_matches("0x");
        u64::from_str_radix(hex, 16).unwrap()
    };
    Regs {
        ctrl: get("REG_AP_CTRL"),
        gie: get("REG_GIE"),
        ier: get("REG_IER"),
        isr: get("REG_ISR"),
        count: get("REG_ARG_COUNT"),
        addend: get("REG_ARG_ADDEND"),
    }
}

fn settle(
    sim: &mut Sim,
    lite: &mut AxiLiteMaster,
    drv: &mut AxisDriver,
    mon: &mut AxisMonitor,
    limit: u64,
) -> Vec<u32> {
    for _ in 0..limit {
        if lite.is_idle() {
            break;
        }
        sim.step_agents(&mut [lite, drv, mon]).unwrap();
    }
    assert!(lite.is_idle(), "AXI4-Lite accesses did not complete");
    let results = lite.take_results();
    assert!(
        results.iter().all(|r| r.resp == 0),
        "every response must be OKAY: {results:?}"
    );
    results.iter().map(|r| r.data).collect()
}

#[test]
#[allow(non_snake_case)]
fn wrapped_core_runs_like_on_the_board() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let accel = loopback::interface("af_loopback_top", 32, 100.0);
    let core = loopback::core(32).unwrap();
    let design = wrapper::wrap(&core, &accel).unwrap();
    // The bundle a user would get for PYNQ-Z2; its driver's offsets drive the simulation.
    let db = BoardDb::builtin().unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    let req = GenerateRequest {
        board: db.get("pynq-z2").unwrap(),
        accel: &accel,
        template_params: serde_json::json!({"template": "loopback", "stream_bits": 32}),
        estimate: ResourceEstimate {
            lut: 300,
            ff: 400,
            dsp: 0,
            bram18: 0,
            uram: 0,
        },
        allow_over_budget: false,
        options: Default::default(),
    };
    let manifest = generate_bundle(&bundle, &core, &req).unwrap();
    let py_file = manifest
        .files
        .iter()
        .find(|f| f.path.ends_with(".py"))
        .unwrap();
    let regs = driver_offsets(&std::fs::read_to_string(bundle.join(&py_file.path)).unwrap());
    // The bundle's Verilog is the very design simulated here.
    for (name, text) in design.files() {
        assert_eq!(
            std::fs::read_to_string(bundle.join("hdl").join(&name)).unwrap(),
            text,
            "{name}"
        );
    }
    let (CTRL, GIE, IER, ISR) = (regs.ctrl, regs.gie, regs.ier, regs.isr);
    let opts = BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        ..BuildOptions::default()
    };
    let compiled = build(&DesignSpec::from_hdl(&design), &opts).unwrap();
    for seed in 0..3u64 {
        let mut sim = compiled.sim().unwrap();
        sim.reset(3).unwrap();
        let mut lite = AxiLiteMaster::new(&sim, "s_axi_control_", seed, 0.3).unwrap();
        let mut drv =
            AxisDriver::new(&sim, AxisNames::prefixed("s_axis_in_"), seed + 10, 0.3).unwrap();
        let mut mon =
            AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_out_"), seed + 20, 0.3).unwrap();

        // Idle after reset; unmapped addresses read as zero.
        lite.read(CTRL);
        lite.read(0x3C);
        let r = settle(&mut sim, &mut lite, &mut drv, &mut mon, 200);
        assert_eq!(r[0] & 0b1111, 0b0100, "after reset only ap_idle is set");
        assert_eq!(r[1], 0);

        for (run, n) in [(0u32, 37u32), (1, 5)] {
            let addend = 0x0101_0000 * (seed as u32 + 1) + run;
            lite.write(regs.count, n);
            lite.write_strobed(regs.addend, 0xdead_beef, 0b0000); // no strobes: must not change anything
            lite.write(regs.addend, addend);
            lite.write(GIE, 1);
            lite.write(IER, 1);
            lite.read(regs.count);
            lite.read(regs.addend);
            let r = settle(&mut sim, &mut lite, &mut drv, &mut mon, 400);
            assert_eq!(&r[r.len() - 2..], &[n, addend]);

            let mut sb = Scoreboard::new(format!("seed {seed} run {run}"));
            for i in 0..n {
                let word = (seed as u32).wrapping_mul(7919).wrapping_add(i * 104_729);
                drv.push(Beat::new(u64::from(word), i + 1 == n));
                sb.expect(Beat::new(u64::from(word.wrapping_add(addend)), i + 1 == n));
            }
            lite.write(CTRL, 1);
            settle(&mut sim, &mut lite, &mut drv, &mut mon, 400);
            // The DMA side: run until the output's TLAST arrives.
            let mut cycles = 0;
            while mon.received().len() < n as usize {
                sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                    .unwrap();
                cycles += 1;
                assert!(cycles < 100 * u64::from(n), "output stream stalled");
            }
            // Poll ap_done like the PYNQ driver does; the interrupt line is up meanwhile.
            let mut done = false;
            for _ in 0..50 {
                lite.read(CTRL);
                let r = settle(&mut sim, &mut lite, &mut drv, &mut mon, 100);
                if r[0] & 0b10 != 0 {
                    done = true;
                    assert_eq!(r[0] & 0b100, 0b100, "idle again once done");
                    break;
                }
            }
            assert!(done, "ap_done never rose");
            assert_eq!(sim.peek("interrupt").unwrap(), 1);
            lite.read(CTRL); // ap_done clears on read
            lite.read(ISR);
            lite.write(ISR, 1); // toggle-on-write clears the done interrupt
            lite.read(ISR);
            let r = settle(&mut sim, &mut lite, &mut drv, &mut mon, 200);
            assert_eq!(r[0] & 0b10, 0, "ap_done must clear when read");
            assert_eq!((r[1], r[3]), (1, 0));
            assert_eq!(sim.peek("interrupt").unwrap(), 0);
            mon.check_protocol(&sim).unwrap();
            sb.observe_all(mon.take_received());
            assert_eq!(sb.finish().unwrap(), n as usize);
        }
    }
}
