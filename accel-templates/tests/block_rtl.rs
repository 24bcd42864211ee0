//! A whole encoder block in Verilator: every kernel (add & norm, the linear kernel for the
//! projections and the MLP, attention, the MoE core) against its golden model with 0
//! mismatches and cycles equal to its model, chained on the checked outputs; the block's error
//! against the float64 block stays within the documented bounds.

use accelforge_templates::block::run::{BlockData, Mode};
use accelforge_templates::block::{BlockParams, run};
use accelforge_templates::moe::FfnActivation;
use accelforge_templates::systolic::PeKind;

/// Verilator and Yosys are there (a CI run fails instead of skipping).
fn tools_present() -> bool {
    accelforge_test_support::tool_available("verilator")
        && accelforge_test_support::tool_available("yosys")
}

/// A small block: 12 tokens, d 32, 2 heads, MLP 64, on a 4×4 array.
fn small(experts: u32) -> BlockParams {
    BlockParams {
        tokens: 12,
        d_model: 32,
        heads: 2,
        d_ff: 64,
        experts,
        top_k: 2,
        activation: FfnActivation::Gelu,
        rows: 4,
        cols: 4,
        pe: PeKind::Dsp,
        stream_bits: 64,
        query_lanes: 4,
        attn_simd: 8,
        ln_lanes: 4,
        moe_lanes: 4,
        moe_simd: 4,
        moe_ddr_bytes: 8,
    }
}

/// Runs the block in Verilator; returns the block output's (max, mean) error against float.
fn check(p: &BlockParams) -> (f64, f64) {
    let data = BlockData::random(p, 11);
    let rep = run(p, &data, Mode::Verilator).expect("the block runs");
    for s in &rep.stages {
        eprintln!(
            "{:10} {:9} model {:7} sim {:?} checked {:6} mism {} macs {} err max {:.4} mean {:.4} (lsb {})",
            s.stage,
            s.kernel,
            s.model_cycles,
            s.cycles,
            s.outputs_checked,
            s.mismatches,
            s.macs,
            s.err_max,
            s.err_mean,
            s.lsb
        );
        assert_eq!(s.mismatches, 0, "{}", s.stage);
        assert!(s.outputs_checked > 0, "{}", s.stage);
        assert_eq!(s.cycles, Some(s.model_cycles), "{}", s.stage);
    }
    assert_eq!(rep.cycles, Some(rep.model_cycles));
    // Quantization shows (the float block is a different computation) but stays small.
    assert!(rep.stages.iter().all(|s| s.err_mean > 0.0));
    let out = rep.stages.last().expect("stages");
    (out.err_max, out.err_mean)
}

#[test]
fn mlp_block_matches_golden_and_cycle_models() {
    if !tools_present() {
        return;
    }
    let (max, mean) = check(&small(0));
    // Outputs of about unit size: measured max 0.09, mean 0.02.
    assert!(max < 0.3 && mean < 0.05, "max {max}, mean {mean}");
}

/// The MLP with ReLU: the clamp in the linear kernel's requantizer, no activation unit.
#[test]
fn relu_mlp_block_matches_golden_and_cycle_models() {
    if !tools_present() {
        return;
    }
    let p = BlockParams {
        activation: FfnActivation::Relu,
        ..small(0)
    };
    let (max, mean) = check(&p);
    assert!(max < 0.3 && mean < 0.05, "max {max}, mean {mean}");
}

#[test]
fn moe_block_matches_golden_and_cycle_models() {
    if !tools_present() {
        return;
    }
    let (max, mean) = check(&small(4));
    // A token whose fixed-point gate picks another expert than the float gate differs by whole
    // expert outputs, so only the mean is bounded tightly.
    assert!(mean < 0.1, "max {max}, mean {mean}");
}
