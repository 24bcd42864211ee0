//! DDR latency on the MoE core's weight stream: the testbench's weight source answers each
//! request `L` cycles late, and the cycle model equals Verilator for every `L` (0 included), in
//! both processing orders, on several shapes; with random back-pressure on top the results stay
//! bit-exact.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

#[path = "moe_common.rs"]
mod common;

use accelforge_sim::CompiledDesign;
use accelforge_templates::moe::tb::{self, Stalls};
use accelforge_templates::moe::{MoeParams, WeightSource, cost, model, rtl};
use common::*;

/// The latencies every exactness test covers: none, one, short, typical Zynq DDR, long.
const LATENCIES: [u32; 5] = [0, 1, 7, 40, 150];

/// One batch in Verilator at latency `l`: zero mismatches, cycles = model; returns the cycles.
fn run(
    compiled: &CompiledDesign,
    p: &MoeParams,
    data: &model::MoeData,
    reorder: bool,
    l: u32,
) -> u64 {
    let src = WeightSource::with_latency(l);
    let mut h = SimH(compiled.sim().unwrap());
    h.0.reset(2).unwrap();
    let g = model::golden(p, data, reorder).unwrap();
    let r = tb::run_batch(&mut h, p, data, reorder, src, Stalls::default(), 4_000_000).unwrap();
    let chk = tb::check(p, &g, &r);
    assert_eq!(
        chk.mismatches, 0,
        "L {l} reorder {reorder}: {:?}",
        chk.first
    );
    let m = cost::cycles_with(p, &g.routing.load_shape(), src).unwrap();
    assert_eq!(r.cycles, m.cycles, "L {l} reorder {reorder} {p:?}: {m:?}");
    assert_eq!(r.weight_beats, m.weight_beats);
    r.cycles
}

/// Every latency of `lats`, both orders, on one build; returns cycles per (order, L).
fn sweep_latencies(p: &MoeParams, seed: u64, skew: f64, lats: &[u32]) -> Vec<(bool, u32, u64)> {
    let d = rtl::design(p).unwrap();
    lint_clean(&d);
    let compiled = compile(&d);
    let data = model::MoeData::random(p, seed, skew).unwrap();
    let mut out = Vec::new();
    for reorder in [true, false] {
        for &l in lats {
            out.push((reorder, l, run(&compiled, p, &data, reorder, l)));
        }
    }
    out
}

#[test]
fn model_equals_verilator_at_every_latency() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    // Bandwidth-bound (1 B/cycle), compute-bound (16 B/cycle), 16-bit weights over two beats
    // per word with non-power-of-two dimensions and a queue that overflows.
    let a = params(16, 16, 32, 8, 2, 4, 4, 1, 16);
    let b = params(8, 32, 64, 8, 1, 8, 4, 16, 8);
    let mut c = params(7, 24, 40, 4, 2, 2, 2, 2, 3);
    c.types.weight = "ap_fixed<16,2,AP_RND,AP_SAT>".parse().unwrap();
    for (p, seed) in [(a, 1u64), (b, 2), (c, 3)] {
        let rows = sweep_latencies(&p, seed, 0.5, &LATENCIES);
        eprintln!("{rows:?}");
        // Latency never helps.
        for w in rows.windows(2) {
            if w[0].0 == w[1].0 {
                assert!(w[1].2 >= w[0].2, "{rows:?}");
            }
        }
    }
}

/// Every token routed to the last expert only (top-1): the one load is planned in the last
/// planning cycle, so the expert phase's first request must still carry the right id.
#[test]
fn only_the_last_expert_active() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = params(6, 8, 16, 4, 1, 2, 2, 2, 8);
    let mut data = model::MoeData::random(&p, 9, 0.0).unwrap();
    let (e, d) = (p.experts as usize, p.d_model as usize);
    let hi = p.types.weight.max_raw() as i64 / 2;
    for r in 0..e {
        for c in 0..d {
            data.gate[[r, c]] = if r == e - 1 { hi } else { -hi };
        }
    }
    data.x.mapv_inplace(|v| v.abs().max(1));
    let g = model::golden(&p, &data, true).unwrap();
    assert_eq!(g.routing.load_shape(), vec![(p.experts - 1, p.tokens)]);
    let compiled = compile(&rtl::design(&p).unwrap());
    for reorder in [true, false] {
        for l in [0, 40] {
            run(&compiled, &p, &data, reorder, l);
        }
    }
}

/// Cycles of the README's bandwidth-bound configuration (T = 16, d_model 16, d_ff 32, E = 8,
/// top-2, 4 x 4, 2 B/cycle; seed 1, uniform routing) at L = 0 / 40 / 150 **before prefetch**,
/// measured in Verilator (= model) on the RTL of commit e27a711, which requested each segment
/// two cycles after the previous one's last beat: (reorder, [cycles at L = 0, 40, 150]).
const BEFORE_PREFETCH: [(bool, [u64; 3]); 2] =
    [(true, [5229, 5511, 6391]), (false, [17005, 18245, 21655])];

/// With prefetch the latency is paid about once per batch (the first expert segment's; the
/// gate segment's hides under the token input), not once per expert load as before.
#[test]
fn prefetch_pays_the_latency_once_per_batch() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = params(16, 16, 32, 8, 2, 4, 4, 2, 16);
    let compiled = compile(&rtl::design(&p).unwrap());
    let data = model::MoeData::random(&p, 1, 0.0).unwrap();
    for (reorder, before) in BEFORE_PREFETCH {
        let loads = model::golden(&p, &data, reorder)
            .unwrap()
            .routing
            .loads
            .len() as u64;
        let after: Vec<u64> = [0, 40, 150]
            .iter()
            .map(|&l| run(&compiled, &p, &data, reorder, l))
            .collect();
        eprintln!("reorder {reorder}, {loads} loads: before {before:?}, after {after:?}");
        for (i, l) in [0u64, 40, 150].into_iter().enumerate() {
            assert!(after[i] <= before[i], "{after:?} vs {before:?}");
            // The latency's cost: at most L once with prefetch ...
            assert!(after[i] - after[0] <= l, "L {l}: {after:?}");
            // ... where it was at least L per expert load but one without.
            assert!(
                before[i] - before[0] >= (loads - 1) * l,
                "L {l}: {before:?}"
            );
        }
    }
}

/// A latency longer than the segments in flight can cover (compute-bound, short segments,
/// 2,000 cycles): requests wait for the prefetch window, and the model still equals Verilator.
#[test]
fn latency_beyond_the_prefetch_window() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = params(16, 16, 32, 8, 2, 4, 4, 16, 16);
    let rows = sweep_latencies(&p, 4, 0.0, &[0, 600, 2000]);
    eprintln!("{rows:?}");
    // Token order (many short loads): the window, not the latency, now paces the requests, so
    // 2,000 cycles cost several times 2,000 — but far less than once per load.
    let (c0, c) = (rows[3].2, rows[5].2);
    let data = model::MoeData::random(&p, 4, 0.0).unwrap();
    let loads = model::golden(&p, &data, false).unwrap().routing.loads.len() as u64;
    assert!(c - c0 > 2 * 2000 && c - c0 < loads * 2000 / 2, "{rows:?}");
}
