//! The MoE core in Verilator over a parameter sweep: zero mismatches against the golden model
//! and simulated cycles equal to the cycle model in every run (uniform and skewed routing, both
//! processing orders, queue overflow, weight-source latencies 0 to 150), plus runs with random
//! back-pressure on every stream.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

#[path = "moe_common.rs"]
mod common;

use accelforge_templates::moe::tb::{self, Stalls};
use accelforge_templates::moe::{
    FfnActivation, GateMode, MoeParams, WeightSource, cost, model, rtl,
};
use common::*;

struct Case {
    p: MoeParams,
    seeds: &'static [u64],
}

fn t(s: &str) -> accelforge_templates::qfx::QType {
    s.parse().expect("moe sweep step")
}

/// Lints the design, then runs every seed x skew x order on one build; returns (runs, dropped
/// pairs seen).
fn run_case(c: &Case) -> (usize, u64) {
    let p = &c.p;
    let d = rtl::design(p).expect("moe sweep step");
    lint_clean(&d);
    let compiled = compile(&d);
    let mut runs = 0;
    let mut dropped = 0;
    for &seed in c.seeds {
        for skew in [0.0, 0.9] {
            let data = model::MoeData::random(p, seed, skew).expect("moe sweep step");
            for reorder in [true, false] {
                let mut h = SimH(compiled.sim().expect("moe sweep step"));
                h.0.reset(2).expect("moe sweep step");
                let g = model::golden(p, &data, reorder).expect("moe sweep step");
                // Every run also has its own weight-source latency (0 included).
                let src = WeightSource::with_latency([0, 40, 1, 150, 7][runs % 5]);
                let run =
                    tb::run_batch(&mut h, p, &data, reorder, src, Stalls::default(), 1_000_000)
                        .expect("moe sweep step");
                let chk = tb::check(p, &g, &run);
                assert_eq!(
                    chk.mismatches, 0,
                    "{p:?} seed {seed} skew {skew} reorder {reorder}: {:?}",
                    chk.first
                );
                let m = cost::cycles_with(p, &g.routing.load_shape(), src).expect("moe sweep step");
                assert_eq!(
                    run.cycles, m.cycles,
                    "{p:?} seed {seed} skew {skew} reorder {reorder} {src:?}"
                );
                assert_eq!(run.weight_beats, m.weight_beats);
                dropped += g.routing.dropped;
                runs += 1;
            }
        }
    }
    (runs, dropped)
}

#[test]
fn sweep_e4() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let mut a = params(8, 8, 16, 4, 1, 2, 2, 2, 8);
    a.types.weight = t("ap_fixed<16,2,AP_RND,AP_SAT>");
    let mut b = params(12, 16, 32, 4, 2, 4, 2, 4, 5);
    b.gate_mode = GateMode::Renorm;
    b.activation = FfnActivation::Gelu;
    for c in [
        Case {
            p: a,
            seeds: &[1, 2],
        },
        Case {
            p: b,
            seeds: &[3, 4],
        },
    ] {
        let (runs, dropped) = run_case(&c);
        assert_eq!(runs, c.seeds.len() * 4);
        if c.p.queue_depth == 5 {
            assert!(dropped > 0, "the queue-overflow case must drop pairs");
        }
    }
}

#[test]
fn sweep_e8() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let a = params(16, 16, 32, 8, 2, 2, 4, 8, 16);
    let mut b = params(8, 32, 64, 8, 1, 8, 4, 16, 8);
    b.activation = FfnActivation::Gelu;
    for c in [
        Case {
            p: a,
            seeds: &[5, 6],
        },
        Case { p: b, seeds: &[7] },
    ] {
        run_case(&c);
    }
}

#[test]
fn sweep_e16_with_overflow() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let mut a = params(16, 16, 16, 16, 2, 4, 4, 4, 2);
    a.gate_mode = GateMode::Renorm;
    let b = params(5, 16, 32, 16, 1, 1, 1, 1, 3);
    let mut dropped = 0;
    for c in [
        Case {
            p: a,
            seeds: &[8, 9],
        },
        Case { p: b, seeds: &[10] },
    ] {
        dropped += run_case(&c).1;
    }
    assert!(dropped > 0);
}

#[test]
fn random_back_pressure_keeps_results_exact() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = params(8, 16, 32, 4, 2, 4, 4, 4, 3);
    let compiled = compile(&rtl::design(&p).expect("moe sweep step"));
    for seed in 0..3u64 {
        let data = model::MoeData::random(&p, 100 + seed, 0.5).expect("moe sweep step");
        for reorder in [true, false] {
            let mut h = SimH(compiled.sim().expect("moe sweep step"));
            h.0.reset(2).expect("moe sweep step");
            let g = model::golden(&p, &data, reorder).expect("moe sweep step");
            let stalls = Stalls {
                input_gap: 0.3,
                weight_gap: 0.3,
                output_stall: 0.4,
                seed,
            };
            // Gaps on top of a DDR latency (0, 20, 40): the prefetched segments still arrive
            // in request order.
            let src = WeightSource::with_latency(seed as u32 * 20);
            let run = tb::run_batch(&mut h, &p, &data, reorder, src, stalls, 1_000_000)
                .expect("moe sweep step");
            let chk = tb::check(&p, &g, &run);
            assert_eq!(chk.mismatches, 0, "seed {seed}: {:?}", chk.first);
            let m = cost::cycles_with(&p, &g.routing.load_shape(), src).expect("moe sweep step");
            assert!(run.cycles > m.cycles, "stalls must cost cycles");
        }
    }
}

#[test]
fn two_batches_back_to_back_on_one_core() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = MoeParams::default();
    let compiled = compile(&rtl::design(&p).expect("moe sweep step"));
    let mut h = SimH(compiled.sim().expect("moe sweep step"));
    h.0.reset(2).expect("moe sweep step");
    // The request counters start over with each command: every batch is exact, at any latency.
    for (seed, reorder, l) in [(11u64, true, 40u32), (12, false, 0), (13, true, 7)] {
        let data = model::MoeData::random(&p, seed, 0.0).expect("moe sweep step");
        let g = model::golden(&p, &data, reorder).expect("moe sweep step");
        let src = WeightSource::with_latency(l);
        let run = tb::run_batch(
            &mut h,
            &p,
            &data,
            reorder,
            src,
            Stalls::default(),
            1_000_000,
        )
        .expect("moe sweep step");
        assert_eq!(tb::check(&p, &g, &run).mismatches, 0);
        let m = cost::cycles_with(&p, &g.routing.load_shape(), src).expect("moe sweep step");
        assert_eq!(run.cycles, m.cycles, "seed {seed}");
        h.0.step().expect("moe sweep step");
    }
}

/// Dimensions that are not powers of two (only multiples of max(lanes, simd)), with E = 4, 8
/// and 16, both k, both orders, skewed routing and a queue that overflows.
#[test]
fn sweep_non_power_of_two_dims() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    // d_model 24, d_ff 40, 2x2 array, 16-bit weights: 2 beats per word.
    let mut a = params(7, 24, 40, 4, 2, 2, 2, 2, 3);
    a.types.weight = t("ap_fixed<16,2,AP_RND,AP_SAT>");
    // d_model 48, d_ff 96, d_ff/nb = 12 rows per load position; queue 5 overflows.
    let mut b = params(12, 48, 96, 8, 1, 4, 8, 8, 5);
    b.activation = FfnActivation::Gelu;
    // d_ff < d_model (40 > 24: the weight buffer is sized by d_model), renorm gate.
    let mut c = params(10, 40, 24, 16, 2, 8, 4, 16, 4);
    c.gate_mode = GateMode::Renorm;
    let mut dropped = 0;
    for c in [
        Case { p: a, seeds: &[21] },
        Case { p: b, seeds: &[22] },
        Case { p: c, seeds: &[23] },
    ] {
        dropped += run_case(&c).1;
    }
    assert!(dropped > 0, "a queue-overflow case must drop pairs");
}

/// Expert counts that are not powers of two (multiples of `lanes`): 6 and 12, the latter not a
/// multiple of max(lanes, simd) = 8 either, so a token's logits end in a part-filled row.
#[test]
fn sweep_non_power_of_two_experts() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let mut a = params(9, 24, 48, 6, 2, 2, 2, 2, 9);
    a.gate_mode = GateMode::Renorm;
    let b = params(8, 48, 40, 12, 2, 4, 8, 4, 2);
    let mut dropped = 0;
    for c in [Case { p: a, seeds: &[31] }, Case { p: b, seeds: &[32] }] {
        dropped += run_case(&c).1;
    }
    assert!(dropped > 0, "the queue-overflow case must drop pairs");
}
