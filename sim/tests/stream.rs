//! AXI-Stream agents, scoreboard, deadlock detection and parallel simulation.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod common;

use accelforge_sim::{
    AxisDriver, AxisMonitor, AxisNames, Beat, CompiledDesign, Scoreboard, SimError, build, par_map,
    run_until_received,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Streams `n` random packets through `design` with the given back-pressure and checks the
/// output (data + 1, same tlast) in order. Returns the cycles taken.
fn run_stream(design: &CompiledDesign, seed: u64, n: usize, p_gap: f64, p_stall: f64) -> u64 {
    let mut sim = design.sim().expect("instantiate");
    sim.reset(2).expect("reset");
    let mut drv =
        AxisDriver::new(&sim, AxisNames::prefixed("s_axis_"), seed, p_gap).expect("driver");
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_"), seed ^ 0xdead, p_stall)
        .expect("monitor");
    let mut sb = Scoreboard::new(format!("stream seed {seed}"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sent = 0;
    while sent < n {
        let len = rng.random_range(1..=5).min(n - sent);
        let data: Vec<u64> = (0..len).map(|_| rng.random::<u32>() as u64 >> 1).collect();
        drv.push_packet(&data);
        for (i, d) in data.iter().enumerate() {
            sb.expect(Beat::new(d + 1, i + 1 == len));
        }
        sent += len;
    }
    let cycles = run_until_received(&mut sim, &mut drv, &mut mon, n, 50 * n as u64 + 100)
        .expect("all beats arrive");
    // Run on a little to catch duplicates.
    for _ in 0..20 {
        sim.step_agents(&mut [&mut drv, &mut mon]).expect("step");
    }
    assert!(drv.is_done());
    mon.check_protocol(&sim).expect("AXI stability rule");
    sb.observe_all(mon.take_received());
    assert_eq!(sb.finish().expect("scoreboard"), n);
    cycles
}

#[test]
fn stream_stage_survives_random_backpressure() {
    require_verilator!();
    let design = build(&common::stream_reg_spec(), &common::opts()).expect("build");
    // No back-pressure: one beat per cycle after the pipeline fills.
    let cycles = run_stream(&design, 1, 200, 0.0, 0.0);
    assert!(cycles <= 203, "took {cycles} cycles");
    for seed in [2, 3, 4, 5, 6] {
        run_stream(&design, seed, 300, 0.3, 0.4);
    }
    run_stream(&design, 7, 300, 0.9, 0.0);
    run_stream(&design, 8, 300, 0.0, 0.9);
}

#[test]
fn scoreboard_catches_a_broken_stream() {
    require_verilator!();
    let design = build(&common::stream_reg_spec(), &common::opts()).expect("build");
    let mut sim = design.sim().expect("instantiate");
    sim.reset(1).expect("reset");
    let mut drv = AxisDriver::new(&sim, AxisNames::prefixed("s_axis_"), 1, 0.2).expect("drv");
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_"), 2, 0.2).expect("mon");
    drv.push_packet(&[10, 20, 30]);
    run_until_received(&mut sim, &mut drv, &mut mon, 3, 100).expect("run");
    let mut sb = Scoreboard::new("wrong model");
    // Expect the identity (the design adds one) and one item too many.
    sb.expect_all([10, 20, 30, 40]);
    sb.observe_all(mon.received().iter().map(Beat::low));
    let msg = sb.finish().expect_err("must mismatch").to_string();
    assert!(msg.contains("[0] expected 10, got 11"), "{msg}");
    assert!(msg.contains("[3] missing"), "{msg}");
}

#[test]
fn deadlocked_stage_times_out_naming_the_handshake() {
    require_verilator!();
    let design = build(&common::stuck_spec(), &common::opts()).expect("build");
    let mut sim = design.sim().expect("instantiate");
    sim.reset(1).expect("reset");
    let mut drv = AxisDriver::new(&sim, AxisNames::prefixed("s_axis_"), 1, 0.0).expect("drv");
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_"), 2, 0.0).expect("mon");
    drv.push_values([1, 2, 3]);
    // The timeout is counted in cycles (`waited: 1000` below), not in seconds.
    let err = run_until_received(&mut sim, &mut drv, &mut mon, 3, 1000)
        .expect_err("a stage that never accepts must time out");
    let msg = err.to_string();
    assert!(
        matches!(err, SimError::Timeout { waited: 1000, .. }),
        "{msg}"
    );
    assert!(msg.contains("s_axis_tvalid=1"), "{msg}");
    assert!(msg.contains("s_axis_tready=0"), "{msg}");
    assert!(msg.contains("within 1000 cycles"), "{msg}");
    assert!(msg.contains("0 of 3 beats"), "{msg}");

    // Same through the generic run_until.
    let err = sim
        .run_until(|s| Ok(s.peek("s_axis_tready")? == 1), 50)
        .expect_err("never ready");
    assert!(err.to_string().contains("s_axis_tready=0"));
}

#[test]
fn parallel_designs_and_seeds_with_rayon() {
    require_verilator!();
    // Two different designs (separate libraries) built concurrently, then many seeds each.
    let specs = [common::stream_reg_spec(), common::counter_spec()];
    let designs: Vec<CompiledDesign> = par_map(&specs, |s| build(s, &common::opts()))
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("builds");
    let jobs: Vec<u64> = (0..16).collect();
    let results = par_map(&jobs, |&seed| {
        if seed % 2 == 0 {
            run_stream(&designs[0], seed + 100, 200, 0.25, 0.25)
        } else {
            let mut sim = designs[1].sim().expect("sim");
            sim.reset(1).expect("reset");
            sim.poke("en", 1).expect("poke");
            sim.step_n(seed).expect("step");
            sim.peek("count").expect("peek")
        }
    });
    for (seed, r) in jobs.iter().zip(&results) {
        if seed % 2 == 1 {
            assert_eq!(*r, *seed);
        } else {
            assert!(*r >= 200);
        }
    }
    // A Sim can also be moved to another thread.
    let mut sim = designs[1].sim().expect("sim");
    sim.reset(1).expect("reset");
    let handle = std::thread::spawn(move || {
        sim.poke("en", 1).expect("poke");
        sim.step_n(9).expect("step");
        sim.peek("count").expect("peek")
    });
    assert_eq!(handle.join().expect("thread"), 9);
}

#[test]
fn lossy_stage_is_caught_under_backpressure() {
    require_verilator!();
    // Always ready: overwrites its register when the output is stalled, so beats get lost.
    let lossy = common::STREAM_REG_V
        .replace("module stream_reg", "module lossy")
        .replace(
            "assign s_axis_tready = !m_axis_tvalid || m_axis_tready;",
            "assign s_axis_tready = 1'b1;",
        );
    let spec = common::stream_ports(
        accelforge_sim::DesignSpec::new("lossy").source("lossy.v", lossy),
        32,
    );
    let design = build(&spec, &common::opts()).expect("build");
    let mut sim = design.sim().expect("sim");
    sim.reset(1).expect("reset");
    let mut drv = AxisDriver::new(&sim, AxisNames::prefixed("s_axis_"), 3, 0.0).expect("drv");
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_"), 4, 0.5).expect("mon");
    drv.push_values(0..100);
    for _ in 0..400 {
        sim.step_agents(&mut [&mut drv, &mut mon]).expect("step");
    }
    let mut sb = Scoreboard::new("lossy");
    sb.expect_all((0..100).map(|d| d + 1));
    sb.observe_all(mon.received().iter().map(Beat::low));
    let msg = sb
        .finish()
        .expect_err("lost beats must be reported")
        .to_string();
    assert!(msg.contains("missing") || msg.contains("expected"), "{msg}");
    // The monitor also sees tdata change while tvalid waited for tready.
    assert!(mon.check_protocol(&sim).is_err());
}
