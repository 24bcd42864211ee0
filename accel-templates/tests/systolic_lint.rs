//! Every generated configuration lints clean under `verilator --lint-only -Wall` and is
//! deterministic.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::tools::{self, DesignFiles};
use accelforge_templates::systolic::{Dataflow, PeKind, SystolicParams, rtl};

fn configs() -> Vec<SystolicParams> {
    let base = SystolicParams::default();
    let mut v = vec![
        SystolicParams {
            rows: 3,
            cols: 5,
            max_k: 40,
            max_n_chunk: 10,
            ..base.clone()
        },
        SystolicParams {
            rows: 1,
            cols: 1,
            max_k: 8,
            max_n_chunk: 1,
            stream_bits: 32,
            ..base.clone()
        },
        SystolicParams {
            rows: 4,
            cols: 3,
            pe: PeKind::ShiftAdd,
            input_type: "ap_ufixed<8,4>".into(),
            weight_type: "ap_fixed<6,2>".into(),
            acc_type: "ap_fixed<24,16>".into(),
            output_type: "ap_fixed<8,4,AP_RND_CONV,AP_SAT>".into(),
            stream_bits: 48,
            relu: true,
            max_k: 64,
            max_n_chunk: 6,
            ..base.clone()
        },
        SystolicParams {
            rows: 2,
            cols: 7,
            input_type: "ap_fixed<16,8>".into(),
            weight_type: "ap_fixed<16,4>".into(),
            acc_type: "ap_fixed<40,20>".into(),
            output_type: "ap_ufixed<16,8,AP_RND,AP_SAT_ZERO>".into(),
            stream_bits: 128,
            max_k: 32,
            max_n_chunk: 14,
            ..base.clone()
        },
        base.clone(),
        // The smallest buffers: one-word banks are padded to two (issue 13, max_k = 1 used to
        // fail with a width mismatch).
        SystolicParams {
            rows: 1,
            cols: 1,
            max_k: 1,
            max_n_chunk: 1,
            ..base.clone()
        },
        SystolicParams {
            rows: 1,
            cols: 4,
            max_k: 1,
            max_n_chunk: 4,
            ..base.clone()
        },
        // Floor packing (10 / 12 / 5 elements in a 64-bit beat, high bits unused) and an
        // accumulator with more fractional bits than the products, for both PE kinds.
        SystolicParams {
            rows: 3,
            cols: 6,
            input_type: "ap_fixed<6,2>".into(),
            weight_type: "ap_fixed<5,1>".into(),
            acc_type: "ap_fixed<24,8>".into(),
            output_type: "ap_fixed<12,4>".into(),
            max_k: 24,
            max_n_chunk: 12,
            ..base.clone()
        },
        SystolicParams {
            rows: 3,
            cols: 4,
            pe: PeKind::ShiftAdd,
            input_type: "ap_fixed<6,2>".into(),
            weight_type: "ap_fixed<5,1>".into(),
            acc_type: "ap_fixed<24,8>".into(),
            output_type: "ap_fixed<12,4>".into(),
            max_k: 24,
            max_n_chunk: 8,
            ..base.clone()
        },
        // Packed pairs with a lone last column, int4 triples with a pair left over, and
        // fractional int8 with an accumulator shift.
        SystolicParams {
            rows: 3,
            cols: 5,
            pe: PeKind::DspPacked,
            max_n_chunk: 10,
            ..base.clone()
        },
        SystolicParams {
            rows: 2,
            cols: 8,
            pe: PeKind::DspPacked,
            input_type: "ap_fixed<4,4>".into(),
            weight_type: "ap_fixed<4,4>".into(),
            acc_type: "ap_fixed<16,16>".into(),
            max_n_chunk: 8,
            ..base.clone()
        },
        SystolicParams {
            rows: 2,
            cols: 4,
            pe: PeKind::DspPacked,
            input_type: "ap_fixed<8,4>".into(),
            weight_type: "ap_fixed<8,2>".into(),
            acc_type: "ap_fixed<32,20>".into(),
            max_n_chunk: 8,
            ..base.clone()
        },
    ];
    // Every configuration again as weight-stationary.
    let ws: Vec<SystolicParams> = v
        .iter()
        .map(|p| SystolicParams {
            dataflow: Dataflow::Ws,
            ..p.clone()
        })
        .collect();
    v.extend(ws);
    v
}

#[test]
fn generated_configs_lint_clean_and_are_deterministic() {
    for p in configs() {
        let d1 = rtl::design(&p).expect("design");
        let d2 = rtl::design(&p).expect("design");
        assert_eq!(d1.files(), d2.files(), "same params, same bytes");
        if !accelforge_test_support::tool_available("verilator") {
            continue;
        }
        let files = DesignFiles::new(&d1).expect("write");
        let report = tools::lint(&files.paths, Some(d1.top_name())).expect("lint runs");
        assert!(
            report.is_clean(),
            "{p:?}\n{}",
            report
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
