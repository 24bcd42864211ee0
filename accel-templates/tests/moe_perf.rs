//! Performance behaviour of the MoE core, measured in Verilator and equal to the cycle model:
//! reordering streams each active expert once per batch; without it loads and cycles go up; a
//! sweep of the DDR rate shows the bandwidth-bound and compute-bound regimes; the resource model
//! matches Yosys on a small configuration.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

#[path = "moe_common.rs"]
mod common;

use accelforge_hdl::tools::{self, DesignFiles, Family};
use accelforge_templates::moe::tb::{self, Stalls};
use accelforge_templates::moe::{MoeParams, WeightSource, cost, model, rtl};
use common::*;

fn small(bytes: u32) -> MoeParams {
    MoeParams {
        tokens: 16,
        d_model: 16,
        d_ff: 32,
        experts: 8,
        top_k: 2,
        lanes: 4,
        simd: 4,
        ddr_bytes_per_cycle: bytes,
        queue_depth: 16,
        ..MoeParams::default()
    }
}

#[test]
fn reordering_streams_each_active_expert_once() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = small(4);
    let compiled = compile(&rtl::design(&p).expect("moe perf step"));
    for (seed, skew) in [(1u64, 0.0), (2, 0.9)] {
        let data = model::MoeData::random(&p, seed, skew).expect("moe perf step");
        let mut seen = Vec::new();
        for reorder in [true, false] {
            let mut h = SimH(compiled.sim().expect("moe perf step"));
            h.0.reset(2).expect("moe perf step");
            let g = model::golden(&p, &data, reorder).expect("moe perf step");
            let run = tb::run_batch(
                &mut h,
                &p,
                &data,
                reorder,
                WeightSource::default(),
                Stalls::default(),
                1_000_000,
            )
            .expect("moe perf step");
            let chk = tb::check(&p, &g, &run);
            assert_eq!(chk.mismatches, 0, "{:?}", chk.first);
            assert_eq!(
                run.cycles,
                cost::cycles(&p, &g.routing.load_shape())
                    .expect("moe perf step")
                    .cycles
            );
            // Expert segments requested = expert loads (the first request is the gate matrix).
            let expert_loads = run.requests.len() - 1;
            if reorder {
                assert_eq!(expert_loads, g.routing.active_experts());
                let mut ids = run.requests[1..].to_vec();
                ids.dedup();
                assert_eq!(ids.len(), expert_loads, "an expert streamed twice");
            }
            // The checker really compares: one corrupted expectation is one mismatch.
            let mut bad = g.clone();
            bad.outputs[[0, 0]] ^= 1;
            assert_eq!(tb::check(&p, &bad, &run).mismatches, 1);
            seen.push((expert_loads, run.cycles, run.weight_beats));
        }
        let (with, without) = (seen[0], seen[1]);
        eprintln!("seed {seed} skew {skew}: reorder {with:?}, in order {without:?}");
        assert!(without.0 > with.0, "loads {without:?} vs {with:?}");
        assert!(without.1 > with.1, "cycles {without:?} vs {with:?}");
        assert!(without.2 > with.2);
    }
}

#[test]
fn ddr_rate_sweep_shows_the_roofline_knee() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let data_p = small(1);
    let data = model::MoeData::random(&data_p, 5, 0.0).expect("moe perf step");
    let mut rows = Vec::new();
    for bytes in [1u32, 2, 4, 8, 16] {
        let p = small(bytes);
        let compiled = compile(&rtl::design(&p).expect("moe perf step"));
        let mut h = SimH(compiled.sim().expect("moe perf step"));
        h.0.reset(2).expect("moe perf step");
        let g = model::golden(&p, &data, true).expect("moe perf step");
        let run = tb::run_batch(
            &mut h,
            &p,
            &data,
            true,
            WeightSource::default(),
            Stalls::default(),
            2_000_000,
        )
        .expect("moe perf step");
        assert_eq!(tb::check(&p, &g, &run).mismatches, 0);
        let m = cost::cycles(&p, &g.routing.load_shape()).expect("moe perf step");
        assert_eq!(run.cycles, m.cycles, "B = {bytes}");
        eprintln!(
            "B={bytes:>2} cycles={:>6} compute_util={:.3} bw_util={:.3}",
            m.cycles,
            m.compute_utilization(),
            m.bandwidth_utilization()
        );
        rows.push((bytes, m));
    }
    // Bandwidth-bound at the low end: doubling B nearly halves the expert phase...
    let expert = |m: &cost::CycleReport| m.output_start - m.expert_start;
    assert!(expert(&rows[0].1) * 10 > expert(&rows[1].1) * 18);
    // ...compute-bound at the top: more bandwidth no longer helps.
    assert!(rows[3].1.cycles - rows[4].1.cycles < rows[4].1.cycles / 100);
    assert!(rows.windows(2).all(|w| w[1].1.cycles <= w[0].1.cycles));
}

/// Lint, Yosys `synth_xilinx` (xc7) and the resource model on one configuration: DSP and
/// BRAM18 (a RAMB36 counts two) equal.
fn yosys_matches_model(p: &MoeParams) -> cost::ResourceReport {
    let d = rtl::design(p).expect("moe perf step");
    assert_eq!(d.files(), rtl::design(p).expect("moe perf step").files());
    lint_clean(&d);
    let files = DesignFiles::new(&d).expect("moe perf step");
    let r = tools::synth(&files.paths, d.top_name(), Family::Xc7).expect("moe perf step");
    let model = cost::resources(p).expect("moe perf step");
    eprintln!("yosys: {r:?}\nmodel: {model:?}");
    assert_eq!(r.dsp, model.dsp);
    assert_eq!(r.bram18 + 2 * r.bram36, model.bram18);
    model
}

#[test]
fn resource_model_matches_yosys_and_verilog_is_deterministic() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = MoeParams {
        tokens: 4,
        d_model: 8,
        d_ff: 16,
        experts: 4,
        top_k: 2,
        lanes: 2,
        simd: 2,
        ddr_bytes_per_cycle: 2,
        queue_depth: 4,
        ..MoeParams::default()
    };
    yosys_matches_model(&p);
}

/// A real layer shape, no dimension a power of two: ViT-S / M3ViT (d_model 384, d_ff 1536, 16
/// experts, top-2) on an 8x8 array. Block RAMs at depths 384 (the 512-bit weight buffer), 768
/// (token and expert-output banks) and 3072 (hidden banks); 66 DSPs, none for addressing.
#[test]
fn resource_model_matches_yosys_on_the_vit_s_shape() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = MoeParams {
        tokens: 16,
        d_model: 384,
        d_ff: 1536,
        experts: 16,
        top_k: 2,
        lanes: 8,
        simd: 8,
        ddr_bytes_per_cycle: 64,
        queue_depth: 16,
        ..MoeParams::default()
    };
    let model = yosys_matches_model(&p);
    let depth = |name: &str| {
        cost::memories(&p)
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|m| m.2)
    };
    assert_eq!(depth("weight_buffer"), Some(384));
    assert_eq!(depth("xbuf_0"), Some(768));
    assert_eq!(depth("hbuf_7"), Some(3072));
    assert_eq!(model.dsp, 66);
}
