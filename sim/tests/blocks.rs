//! The hdl building blocks run in Verilator against their Rust reference models, cycle by cycle,
//! under seeded random stimulus and back-pressure: nothing lost, duplicated or reordered.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod common;

use accelforge_hdl::blocks::{fifo, pipeline, ram, skid};
use accelforge_sim::{
    AxisDriver, AxisMonitor, AxisNames, Beat, DesignSpec, Scoreboard, build, run_until_received,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn mask(w: u32) -> u64 {
    if w >= 64 { u64::MAX } else { (1 << w) - 1 }
}

#[test]
fn pipeline_matches_its_model() {
    require_verilator!();
    for (width, depth) in [(1, 1), (8, 3), (64, 5)] {
        let p = pipeline::PipelineParams { width, depth };
        let design = build(
            &DesignSpec::from_hdl(&pipeline::design(&p).unwrap()),
            &common::opts(),
        )
        .unwrap();
        let mut sim = design.sim().unwrap();
        let mut model = pipeline::PipelineModel::new(&p);
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(width * 100 + depth));
        let (rst, iv, id, ov, od) = (
            sim.port("rst").unwrap(),
            sim.port("in_valid").unwrap(),
            sim.port("in_data").unwrap(),
            sim.port("out_valid").unwrap(),
            sim.port("out_data").unwrap(),
        );
        for cycle in 0..2000 {
            let r = cycle < 2 || rng.random_bool(0.01);
            let v = rng.random_bool(0.7);
            let d = rng.random::<u64>() & mask(width);
            sim.poke(rst, u64::from(r)).unwrap();
            sim.poke(iv, u64::from(v)).unwrap();
            sim.poke(id, d).unwrap();
            let (mv, md) = model.outputs();
            if cycle >= 2 {
                assert_eq!(sim.peek(ov).unwrap(), u64::from(mv), "{p:?} cycle {cycle}");
                assert_eq!(sim.peek(od).unwrap(), md, "{p:?} cycle {cycle}");
            }
            sim.step().unwrap();
            model.tick(r, v, d);
        }
    }
}

#[test]
fn fifo_matches_its_model_and_loses_nothing() {
    require_verilator!();
    for (width, depth, p_push, p_pop) in [
        (8, 4, 0.5, 0.5),
        (12, 5, 0.9, 0.3),
        (32, 16, 0.3, 0.9),
        (1, 2, 0.7, 0.7),
    ] {
        let p = fifo::FifoParams { width, depth };
        let design = build(
            &DesignSpec::from_hdl(&fifo::design(&p).unwrap()),
            &common::opts(),
        )
        .unwrap();
        let mut sim = design.sim().unwrap();
        sim.reset(2).unwrap();
        let mut model = fifo::FifoModel::new(&p);
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(depth));
        let ports: Vec<_> = [
            "push",
            "push_data",
            "pop",
            "full",
            "empty",
            "count",
            "pop_data",
        ]
        .iter()
        .map(|n| sim.port(n).unwrap())
        .collect();
        let (mut pushed, mut popped) = (Vec::new(), Vec::new());
        for cycle in 0..3000 {
            let push = rng.random_bool(p_push);
            let pop = rng.random_bool(p_pop);
            let data = rng.random::<u64>() & mask(width);
            sim.poke(ports[0], u64::from(push)).unwrap();
            sim.poke(ports[1], data).unwrap();
            sim.poke(ports[2], u64::from(pop)).unwrap();
            let o = model.outputs();
            assert_eq!(
                sim.peek(ports[3]).unwrap(),
                u64::from(o.full),
                "full at {cycle}"
            );
            assert_eq!(
                sim.peek(ports[4]).unwrap(),
                u64::from(o.empty),
                "empty at {cycle}"
            );
            assert_eq!(
                sim.peek(ports[5]).unwrap(),
                u64::from(o.count),
                "count at {cycle}"
            );
            if let Some(d) = o.pop_data {
                assert_eq!(sim.peek(ports[6]).unwrap(), d, "pop_data at {cycle}");
            }
            sim.step().unwrap();
            let (accepted, out) = model.tick(false, push, data, pop);
            if accepted {
                pushed.push(data);
            }
            popped.extend(out);
        }
        // Every word that left was one that entered, in order, once.
        assert_eq!(&pushed[..popped.len()], &popped[..]);
        assert!(
            popped.len() > 500,
            "the test must move data: {}",
            popped.len()
        );
    }
}

#[test]
fn ram_matches_its_model() {
    require_verilator!();
    for (width, depth, kind) in [
        (8, 16, ram::RamKind::SinglePort),
        (16, 100, ram::RamKind::DualPort),
        (32, 1024, ram::RamKind::DualPort),
    ] {
        let p = ram::RamParams {
            width,
            depth,
            kind,
            style: ram::RamStyle::Block,
        };
        let design = build(
            &DesignSpec::from_hdl(&ram::design(&p).unwrap()),
            &common::opts(),
        )
        .unwrap();
        let mut sim = design.sim().unwrap();
        let mut model = ram::RamModel::new(&p);
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(depth));
        let we = sim.port("we").unwrap();
        let wd = sim.port("wdata").unwrap();
        let rd = sim.port("rdata").unwrap();
        let (wa, ra) = match kind {
            ram::RamKind::SinglePort => (sim.port("addr").unwrap(), sim.port("addr").unwrap()),
            ram::RamKind::DualPort => (sim.port("waddr").unwrap(), sim.port("raddr").unwrap()),
        };
        for cycle in 0..4000 {
            let w = rng.random_bool(0.5);
            let waddr = rng.random_range(0..depth as usize);
            let raddr = if kind == ram::RamKind::SinglePort {
                waddr
            } else {
                rng.random_range(0..depth as usize)
            };
            let data = rng.random::<u64>() & mask(width);
            sim.poke(we, u64::from(w)).unwrap();
            sim.poke(wa, waddr as u64).unwrap();
            sim.poke(ra, raddr as u64).unwrap();
            sim.poke(wd, data).unwrap();
            assert_eq!(sim.peek(rd).unwrap(), model.rdata(), "{p:?} cycle {cycle}");
            sim.step().unwrap();
            model.tick(w, waddr, data, raddr);
        }
    }
}

#[test]
fn skid_buffer_matches_its_model_under_backpressure() {
    require_verilator!();
    for (width, tlast) in [(8, true), (64, false), (130, true)] {
        let p = skid::SkidParams { width, tlast };
        let design = build(
            &DesignSpec::from_hdl(&skid::design(&p).unwrap()),
            &common::opts(),
        )
        .unwrap();
        for seed in 0..4u64 {
            // Stream level: random tvalid gaps and tready stalls, scoreboard on the output.
            let mut sim = design.sim().unwrap();
            sim.reset(2).unwrap();
            let names = |prefix: &str| {
                if tlast {
                    AxisNames::prefixed(prefix)
                } else {
                    AxisNames::prefixed(prefix).without_tlast()
                }
            };
            let mut drv = AxisDriver::new(&sim, names("s_axis_"), seed, 0.3).unwrap();
            let mut mon = AxisMonitor::new(&sim, names("m_axis_"), seed + 100, 0.4).unwrap();
            let mut sb = Scoreboard::new(format!("skid {p:?} seed {seed}"));
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = 400;
            for i in 0..n {
                let words: Vec<u64> = (0..width.div_ceil(64))
                    .map(|k| {
                        rng.random::<u64>()
                            & if (k + 1) * 64 > width {
                                mask(width % 64)
                            } else {
                                u64::MAX
                            }
                    })
                    .collect();
                let last = tlast && i % 7 == 6;
                let beat = Beat { data: words, last };
                drv.push(beat.clone());
                sb.expect(beat);
            }
            run_until_received(&mut sim, &mut drv, &mut mon, n, 20 * n as u64).unwrap();
            for _ in 0..10 {
                sim.step_agents(&mut [&mut drv, &mut mon]).unwrap();
            }
            mon.check_protocol(&sim).unwrap();
            sb.observe_all(mon.take_received());
            assert_eq!(sb.finish().unwrap(), n);
        }
        if width <= 64 {
            // Cycle level: every output equals the model's in every cycle.
            let mut sim = design.sim().unwrap();
            sim.reset(1).unwrap();
            let mut model = skid::SkidModel::new(&p);
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            for cycle in 0..3000 {
                let valid = rng.random_bool(0.6);
                let data = rng.random::<u64>() & mask(width);
                let last = tlast && rng.random_bool(0.2);
                let ready = rng.random_bool(0.5);
                sim.poke("s_axis_tvalid", u64::from(valid)).unwrap();
                sim.poke("s_axis_tdata", data).unwrap();
                if tlast {
                    sim.poke("s_axis_tlast", u64::from(last)).unwrap();
                }
                sim.poke("m_axis_tready", u64::from(ready)).unwrap();
                let o = model.outputs();
                assert_eq!(
                    sim.peek("s_axis_tready").unwrap(),
                    u64::from(o.s_ready),
                    "cycle {cycle}"
                );
                assert_eq!(
                    sim.peek("m_axis_tvalid").unwrap(),
                    u64::from(o.m_valid),
                    "cycle {cycle}"
                );
                if o.m_valid {
                    assert_eq!(
                        sim.peek("m_axis_tdata").unwrap(),
                        o.m_word.0,
                        "cycle {cycle}"
                    );
                }
                sim.step().unwrap();
                model.tick(false, valid.then_some((data, last)), ready);
            }
        }
    }
}
