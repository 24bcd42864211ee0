//! Golden files of the generated Verilog: two or three small configurations per template, the
//! core and its Zynq wrapper. Generation is deterministic, so any change to these bytes is a
//! change to the hardware and must be reviewed (`cargo insta review`) and explained in its
//! commit. Simulation would catch a functional change; these catch every change.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_boards::zynq::wrapper::{interface_for_core, wrap};
use accelforge_hdl::Design;
use accelforge_templates::moe::{self, MoeParams};
use accelforge_templates::systolic::{Dataflow, PeKind, SystolicParams, rtl};

/// Every module of a design, one after the other, in the printer's (sorted) file order.
fn text(d: &Design) -> String {
    d.files()
        .into_iter()
        .map(|(name, t)| format!("// ==== {name}\n{t}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn systolic_with_wrapper(p: &SystolicParams) -> String {
    let core = rtl::design(p).unwrap();
    let accel = interface_for_core(core.top(), "af_snapshot_top", 100.0, 1 << 20).unwrap();
    text(&wrap(&core, &accel).unwrap())
}

#[test]
fn systolic_os_2x3_int8() {
    let p = SystolicParams {
        rows: 2,
        cols: 3,
        max_k: 16,
        max_n_chunk: 6,
        ..SystolicParams::default()
    };
    insta::assert_snapshot!(systolic_with_wrapper(&p));
}

#[test]
fn systolic_ws_3x2_relu() {
    let p = SystolicParams {
        rows: 3,
        cols: 2,
        dataflow: Dataflow::Ws,
        max_k: 32,
        max_n_chunk: 8,
        relu: true,
        ..SystolicParams::default()
    };
    insta::assert_snapshot!(systolic_with_wrapper(&p));
}

#[test]
fn systolic_os_2x2_shift_add_fixed() {
    let p = SystolicParams {
        rows: 2,
        cols: 2,
        input_type: "ap_fixed<8,4>".into(),
        weight_type: "ap_fixed<4,1>".into(),
        acc_type: "ap_fixed<24,17>".into(),
        output_type: "ap_fixed<8,4,AP_RND,AP_SAT>".into(),
        pe: PeKind::ShiftAdd,
        max_k: 8,
        max_n_chunk: 4,
        stream_bits: 32,
        ..SystolicParams::default()
    };
    insta::assert_snapshot!(systolic_with_wrapper(&p));
}

#[test]
fn moe_core_default() {
    insta::assert_snapshot!(text(&moe::rtl::design(&MoeParams::default()).unwrap()));
}

#[test]
fn moe_core_top1_narrow() {
    let p = MoeParams {
        tokens: 4,
        d_model: 8,
        d_ff: 8,
        experts: 2,
        top_k: 1,
        lanes: 2,
        simd: 2,
        ddr_bytes_per_cycle: 2,
        queue_depth: 4,
        ..MoeParams::default()
    };
    insta::assert_snapshot!(text(&moe::rtl::design(&p).unwrap()));
}
