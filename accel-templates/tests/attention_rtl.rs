//! The attention kernel in Verilator against its golden model: 0 mismatches over head
//! dimensions, token counts (1, 7, 64, 197), head counts, query lanes, simd widths and types —
//! random, small-spread and corner-valued operands — with the cycle count equal to the model
//! when the streams never stall, and the same outputs under random input gaps and output
//! back-pressure.

use accelforge_hdl::tools;
use accelforge_sim::BuildOptions;
use accelforge_templates::attention::sim::{Stalls, simulate};
use accelforge_templates::attention::stream::AttentionData;
use accelforge_templates::attention::{AttentionParams, Resolved};

/// Verilator and Yosys are there (a CI run fails instead of skipping).
fn tools_present() -> bool {
    accelforge_test_support::tool_available("verilator")
        && accelforge_test_support::tool_available("yosys")
}

/// (what it exercises, params).
fn configs() -> Vec<(&'static str, AttentionParams)> {
    let d = AttentionParams::default;
    vec![
        (
            "one token: every weight is exactly one",
            AttentionParams {
                head_dim: 16,
                heads: 1,
                tokens: 1,
                query_lanes: 1,
                simd: 4,
                ..d()
            },
        ),
        (
            "7 tokens in blocks of 3, 3 heads, narrow types",
            AttentionParams {
                head_dim: 8,
                heads: 3,
                tokens: 7,
                query_lanes: 3,
                simd: 2,
                qkv_type: "ap_fixed<6,2>".into(),
                output_type: "ap_fixed<10,3>".into(),
                ..d()
            },
        ),
        (
            "64 tokens, coarse table and exponentials",
            AttentionParams {
                head_dim: 32,
                heads: 2,
                tokens: 64,
                query_lanes: 4,
                simd: 8,
                exp_frac_bits: 10,
                exp_table_bits: 4,
                ..d()
            },
        ),
        (
            "ViT-Tiny head: 197 tokens, d 64, 16 lanes of 16",
            AttentionParams {
                heads: 1,
                query_lanes: 16,
                simd: 16,
                ..d()
            },
        ),
        (
            "one word per row (head_dim = simd): hand-over as the last sum lands",
            AttentionParams {
                head_dim: 8,
                heads: 2,
                tokens: 7,
                query_lanes: 4,
                simd: 8,
                ..d()
            },
        ),
        (
            "one element per cycle, narrow saturating scores",
            AttentionParams {
                head_dim: 4,
                heads: 2,
                tokens: 9,
                query_lanes: 2,
                simd: 1,
                qkv_type: "ap_fixed<12,4>".into(),
                score_bits: 16,
                output_type: "ap_fixed<12,2>".into(),
                ..d()
            },
        ),
        (
            "16-bit operands, fewer output than input fraction bits, saturating outputs",
            AttentionParams {
                head_dim: 16,
                heads: 1,
                tokens: 12,
                query_lanes: 5,
                simd: 4,
                qkv_type: "ap_fixed<16,4>".into(),
                output_type: "ap_fixed<8,2>".into(),
                score_frac_bits: 12,
                ..d()
            },
        ),
    ]
}

fn check(name: &str, r: &Resolved, data: &AttentionData, stalls: Stalls, exact_cycles: bool) {
    let s = simulate(r, data, stalls, &BuildOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(s.mismatches, 0, "{name} ({stalls:?}): {:?}", s.first);
    assert!(s.outputs_checked > 0, "{name}");
    if exact_cycles {
        assert_eq!(s.cycles, s.model_cycles, "{name}");
    } else {
        assert!(
            s.cycles > s.model_cycles,
            "{name}: stalls must cost cycles: {s:?}"
        );
    }
}

#[test]
fn attention_matches_golden_and_cycle_model() {
    if !tools_present() {
        return;
    }
    let cases = configs();
    accelforge_sim::par_map(&cases, |(name, p)| {
        let r = p.resolve().unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = accelforge_templates::attention::rtl::design(&r).unwrap();
        let files = tools::DesignFiles::new(&d).unwrap();
        let lint = tools::lint(&files.paths, Some(d.top_name())).unwrap();
        assert!(lint.is_clean(), "{name}: {:#?}", lint.diagnostics);
        for seed in [1u64, 2] {
            let data = AttentionData::random(&r, seed, 1.0);
            check(name, &r, &data, Stalls::default(), true);
        }
        check(
            name,
            &r,
            &AttentionData::random(&r, 3, 0.25),
            Stalls::default(),
            true,
        );
        check(
            name,
            &r,
            &AttentionData::extreme(&r, 4),
            Stalls::default(),
            true,
        );
        let stalls = Stalls {
            input_gap: 0.3,
            output_stall: 0.5,
            seed: 5,
        };
        check(name, &r, &AttentionData::random(&r, 6, 1.0), stalls, false);
    });
}

/// The test above can fail: a golden model one LSB off is caught on every configuration.
#[test]
fn a_wrong_expectation_is_caught() {
    if !tools_present() {
        return;
    }
    let (name, p) = &configs()[1];
    let r = p.resolve().unwrap();
    let data = AttentionData::random(&r, 1, 1.0);
    // Every exp2 table entry but exp2(0) one LSB low, in the golden model only (the RTL keeps
    // the right table).
    let mut wrong = r.clone();
    for v in wrong.exp_table.iter_mut().skip(1) {
        *v -= 1;
    }
    let want = data.golden(&r).unwrap();
    let off = data.golden(&wrong).unwrap();
    assert_ne!(
        want, off,
        "{name}: the perturbation must change some output"
    );
    let s = accelforge_templates::attention::sim::simulate_against(
        &r,
        &data,
        &off,
        Stalls::default(),
        &BuildOptions::default(),
    )
    .unwrap();
    assert!(s.mismatches > 0, "{name}: {s:?}");
}
