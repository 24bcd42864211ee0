//! Verilator vs golden model: zero mismatches over a sweep of array shapes, PE kinds, types,
//! GEMM shapes (not multiples of the array) and conv2d; the analytic cycle model equals the
//! simulated cycle count whenever there is no back-pressure, and is a lower bound with it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::tools;
use accelforge_templates::systolic::layer::{Conv2d, Gemm};
use accelforge_templates::systolic::sim::{SimOptions, random_gemm_operands, run_conv2d, run_gemm};
use accelforge_templates::systolic::{Dataflow, PeKind, SystolicParams, cost};

fn check(p: &SystolicParams, g: Gemm, seed: u64, bp: f64) {
    let r = p.resolve().expect("params");
    let (a, b) = random_gemm_operands(&r, &g, seed);
    let opts = SimOptions {
        seed,
        backpressure: bp,
        trace: None,
    };
    let rep = run_gemm(p, &g, &a, &b, &opts).expect("simulation runs");
    assert_eq!(rep.mismatches, 0, "{p:?} {g:?}: {rep:?}");
    eprintln!(
        "{:?} {g:?} bp {bp}: sim {} model {} util {:.3}",
        p.dataflow, rep.cycles, rep.model_cycles, rep.utilization
    );
    assert_eq!(rep.outputs_checked, u64::from(g.m) * u64::from(g.n));
    let model = cost::cycles(p, &g).expect("model").cycles;
    if bp == 0.0 {
        assert_eq!(rep.cycles, model, "{p:?} {g:?}: estimate vs sim");
    } else {
        assert!(rep.cycles >= model, "{p:?} {g:?}: {rep:?}");
    }
}

fn gemm(m: u32, k: u32, n: u32) -> Gemm {
    Gemm { m, k, n }
}

/// Six awkward GEMM shapes (plus `extra`, as (shape, seed, stall probability)) cycle-exact
/// without back-pressure, one with it, and a stride-2 padded conv2d lowered by im2col.
fn odd_array_many_shapes(p: &SystolicParams, extra: &[(Gemm, u64, f64)]) {
    for (i, g) in [
        gemm(7, 9, 13),
        gemm(1, 1, 1),
        gemm(3, 40, 5),
        gemm(10, 1, 21),
        gemm(6, 2, 10),
        gemm(4, 5, 31),
    ]
    .into_iter()
    .enumerate()
    {
        check(p, g, i as u64, 0.0);
    }
    check(p, gemm(8, 17, 23), 99, 0.3);
    for &(g, seed, stall) in extra {
        check(p, g, seed, stall);
    }
    // conv2d, stride 2, padding 1, lowered by im2col on the host.
    let conv = Conv2d {
        h: 6,
        w: 5,
        c_in: 2,
        c_out: 7,
        kernel_h: 3,
        kernel_w: 3,
        stride: 2,
        pad: 1,
        depthwise: false,
    };
    let rep = run_conv2d(
        p,
        &conv,
        &SimOptions {
            seed: 5,
            ..Default::default()
        },
    )
    .expect("conv");
    assert_eq!(rep.mismatches, 0);
    assert_eq!(rep.cycles, rep.model_cycles);
}

#[test]
fn os_dsp_odd_array_many_shapes() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = SystolicParams {
        rows: 3,
        cols: 5,
        max_k: 40,
        max_n_chunk: 10,
        ..Default::default()
    };
    odd_array_many_shapes(&p, &[]);
}

#[test]
fn single_pe_and_single_column() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = SystolicParams {
        rows: 1,
        cols: 1,
        max_k: 8,
        max_n_chunk: 1,
        stream_bits: 32,
        ..Default::default()
    };
    check(&p, gemm(3, 5, 2), 1, 0.0);
    check(&p, gemm(1, 8, 3), 2, 0.0);
    check(&p, gemm(4, 3, 3), 3, 0.4);
    let p = SystolicParams {
        rows: 5,
        cols: 1,
        max_k: 16,
        max_n_chunk: 2,
        output_type: "ap_fixed<8,8,AP_TRN,AP_SAT>".into(),
        ..Default::default()
    };
    check(&p, gemm(11, 6, 3), 4, 0.0);
    check(&p, gemm(2, 16, 5), 5, 0.25);
}

#[test]
fn shift_add_fractional_types_relu() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = SystolicParams {
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
        ..Default::default()
    };
    check(&p, gemm(5, 7, 8), 1, 0.0);
    check(&p, gemm(9, 64, 6), 2, 0.0);
    check(&p, gemm(6, 13, 7), 3, 0.3);
}

#[test]
fn wide_types_wide_stream_and_rounding_modes() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = SystolicParams {
        rows: 2,
        cols: 7,
        input_type: "ap_fixed<16,8>".into(),
        weight_type: "ap_fixed<16,4>".into(),
        acc_type: "ap_fixed<40,20>".into(),
        output_type: "ap_ufixed<16,8,AP_RND,AP_SAT_ZERO>".into(),
        stream_bits: 128,
        max_k: 32,
        max_n_chunk: 14,
        ..Default::default()
    };
    check(&p, gemm(5, 11, 15), 1, 0.0);
    check(&p, gemm(3, 32, 29), 2, 0.35);
    for out in [
        "ap_fixed<8,4,AP_RND_INF,AP_SAT_SYM>",
        "ap_fixed<8,3,AP_TRN_ZERO,AP_WRAP>",
        "ap_fixed<8,5,AP_RND_MIN_INF,AP_SAT>",
        "ap_fixed<8,6,AP_RND_ZERO,AP_SAT_SYM>",
        "ap_fixed<8,5,AP_RND,AP_WRAP_SM>",
        "ap_fixed<8,5,AP_RND_CONV,AP_WRAP,2>",
    ] {
        let p = SystolicParams {
            rows: 2,
            cols: 2,
            input_type: "ap_fixed<8,4>".into(),
            weight_type: "ap_fixed<8,4>".into(),
            acc_type: "ap_fixed<24,16>".into(),
            output_type: out.into(),
            max_k: 16,
            max_n_chunk: 4,
            ..Default::default()
        };
        check(&p, gemm(5, 16, 7), 7, 0.0);
    }
}

#[test]
fn gemm_256_on_16x16_int8_reaches_target_utilization() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = SystolicParams {
        rows: 16,
        cols: 16,
        max_k: 256,
        max_n_chunk: 64,
        ..Default::default()
    };
    let g = gemm(256, 256, 256);
    let r = p.resolve().expect("params");
    let (a, b) = random_gemm_operands(&r, &g, 256);
    let rep = run_gemm(&p, &g, &a, &b, &SimOptions::default()).expect("simulation runs");
    assert_eq!(rep.mismatches, 0);
    assert_eq!(rep.cycles, rep.model_cycles);
    assert!(rep.utilization >= 0.85, "{rep:?}");
    eprintln!("256^3 on 16x16: {rep:?}");
}

// ---- weight-stationary: the same cases as output-stationary ----

fn ws(p: SystolicParams) -> SystolicParams {
    SystolicParams {
        dataflow: Dataflow::Ws,
        ..p
    }
}

#[test]
fn ws_dsp_odd_array_many_shapes() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    // max_k 40 on 3 rows gives M blocks of 39 rows; max_k 8 below gives blocks of 6.
    let p = ws(SystolicParams {
        rows: 3,
        cols: 5,
        max_k: 40,
        max_n_chunk: 10,
        ..Default::default()
    });
    odd_array_many_shapes(
        &p,
        &[(gemm(80, 7, 12), 6, 0.0), (gemm(45, 11, 14), 98, 0.2)],
    );
    let small_blocks = SystolicParams { max_k: 8, ..p };
    check(&small_blocks, gemm(20, 8, 11), 7, 0.0);
    check(&small_blocks, gemm(13, 5, 6), 8, 0.3);
}

#[test]
fn ws_single_pe_and_single_column() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = ws(SystolicParams {
        rows: 1,
        cols: 1,
        max_k: 8,
        max_n_chunk: 1,
        stream_bits: 32,
        ..Default::default()
    });
    check(&p, gemm(3, 5, 2), 1, 0.0);
    check(&p, gemm(1, 8, 3), 2, 0.0);
    check(&p, gemm(11, 3, 3), 3, 0.4);
    let p = ws(SystolicParams {
        rows: 5,
        cols: 1,
        max_k: 16,
        max_n_chunk: 2,
        output_type: "ap_fixed<8,8,AP_TRN,AP_SAT>".into(),
        ..Default::default()
    });
    check(&p, gemm(11, 6, 3), 4, 0.0);
    check(&p, gemm(2, 16, 5), 5, 0.25);
    let p = ws(SystolicParams {
        rows: 1,
        cols: 4,
        max_k: 16,
        max_n_chunk: 8,
        ..Default::default()
    });
    check(&p, gemm(7, 16, 9), 6, 0.0);
    check(&p, gemm(17, 3, 5), 7, 0.3);
}

#[test]
fn ws_shift_add_fractional_types_relu() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = ws(SystolicParams {
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
        ..Default::default()
    });
    check(&p, gemm(5, 7, 8), 1, 0.0);
    check(&p, gemm(9, 64, 6), 2, 0.0);
    check(&p, gemm(70, 13, 7), 3, 0.0);
    check(&p, gemm(6, 13, 7), 4, 0.3);
    let conv = Conv2d {
        h: 7,
        w: 6,
        c_in: 3,
        c_out: 5,
        kernel_h: 3,
        kernel_w: 2,
        stride: 2,
        pad: 1,
        depthwise: false,
    };
    let rep = run_conv2d(
        &p,
        &conv,
        &SimOptions {
            seed: 11,
            ..Default::default()
        },
    )
    .expect("conv");
    assert_eq!(rep.mismatches, 0);
    assert_eq!(rep.cycles, rep.model_cycles);
}

#[test]
fn ws_wide_types_wide_stream_and_rounding_modes() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = ws(SystolicParams {
        rows: 2,
        cols: 7,
        input_type: "ap_fixed<16,8>".into(),
        weight_type: "ap_fixed<16,4>".into(),
        acc_type: "ap_fixed<40,20>".into(),
        output_type: "ap_ufixed<16,8,AP_RND,AP_SAT_ZERO>".into(),
        stream_bits: 128,
        max_k: 32,
        max_n_chunk: 14,
        ..Default::default()
    });
    check(&p, gemm(5, 11, 15), 1, 0.0);
    check(&p, gemm(3, 32, 29), 2, 0.35);
    for out in [
        "ap_fixed<8,4,AP_RND_INF,AP_SAT_SYM>",
        "ap_fixed<8,3,AP_TRN_ZERO,AP_WRAP>",
        "ap_fixed<8,5,AP_RND_MIN_INF,AP_SAT>",
        "ap_fixed<8,5,AP_RND,AP_WRAP_SM>",
        "ap_fixed<8,5,AP_RND_CONV,AP_WRAP,2>",
    ] {
        let p = ws(SystolicParams {
            rows: 2,
            cols: 2,
            input_type: "ap_fixed<8,4>".into(),
            weight_type: "ap_fixed<8,4>".into(),
            acc_type: "ap_fixed<24,16>".into(),
            output_type: out.into(),
            max_k: 16,
            max_n_chunk: 4,
            ..Default::default()
        });
        check(&p, gemm(5, 16, 7), 7, 0.0);
    }
}

#[test]
fn ws_gemm_256_on_16x16_int8_utilization() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = ws(SystolicParams {
        rows: 16,
        cols: 16,
        max_k: 256,
        max_n_chunk: 64,
        ..Default::default()
    });
    let g = gemm(256, 256, 256);
    let r = p.resolve().expect("params");
    let (a, b) = random_gemm_operands(&r, &g, 256);
    let rep = run_gemm(&p, &g, &a, &b, &SimOptions::default()).expect("simulation runs");
    assert_eq!(rep.mismatches, 0);
    assert_eq!(rep.cycles, rep.model_cycles);
    assert!(rep.utilization >= 0.85, "{rep:?}");
    eprintln!("ws 256^3 on 16x16: {rep:?}");
}

/// ap_fixed<6,2> x ap_fixed<5,1> into ap_fixed<24,8> (16 fractional bits, 8 more than the
/// products) on the default 64-bit stream: 10 inputs, 12 weights and 5 outputs per beat, none
/// of which divides 64. Odd shapes, K = 1, multi-beat output rows and back-pressure; cycle
/// model equal to Verilator without back-pressure; both dataflows.
#[test]
fn six_by_five_bit_types_wide_acc_on_64_bit_stream_both_dataflows() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    for df in [Dataflow::Os, Dataflow::Ws] {
        let p = SystolicParams {
            rows: 3,
            cols: 6,
            dataflow: df,
            input_type: "ap_fixed<6,2>".into(),
            weight_type: "ap_fixed<5,1>".into(),
            acc_type: "ap_fixed<24,8>".into(),
            output_type: "ap_fixed<12,4,AP_RND_CONV,AP_SAT>".into(),
            max_k: 24,
            max_n_chunk: 12,
            ..Default::default()
        };
        let r = p.resolve().expect("params");
        assert_eq!((r.ea, r.eb, r.eo, r.qo, r.acc_shift), (10, 12, 5, 2, 8));
        for (i, g) in [
            gemm(7, 9, 13),
            gemm(1, 1, 1),
            gemm(4, 24, 7),
            gemm(5, 3, 25),
        ]
        .into_iter()
        .enumerate()
        {
            check(&p, g, 40 + i as u64, 0.0);
        }
        check(&p, gemm(8, 17, 23), 77, 0.3);
    }
}

/// max_k = 1 (one-word operand banks, padded to two) generates and computes K = 1 GEMMs
/// exactly, cycle model equal to Verilator, both dataflows.
#[test]
fn max_k_one_both_dataflows() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    for df in [Dataflow::Os, Dataflow::Ws] {
        let p = SystolicParams {
            rows: 1,
            cols: 4,
            dataflow: df,
            max_k: 1,
            max_n_chunk: 4,
            ..Default::default()
        };
        check(&p, gemm(3, 1, 6), 11, 0.0);
        check(&p, gemm(2, 1, 9), 12, 0.3);
    }
}

// ---- dsp-packed: the same sweeps, outputs identical to the unpacked array ----

fn packed(p: SystolicParams) -> SystolicParams {
    SystolicParams {
        pe: PeKind::DspPacked,
        ..p
    }
}

/// The odd-array sweep with two int8 columns per DSP: groups (0,1), (2,3) and a lone column 4,
/// both dataflows, back-pressure, conv2d.
#[test]
fn packed_odd_array_many_shapes_both_dataflows() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    for df in [Dataflow::Os, Dataflow::Ws] {
        let p = packed(SystolicParams {
            rows: 3,
            cols: 5,
            dataflow: df,
            max_k: 40,
            max_n_chunk: 10,
            ..Default::default()
        });
        assert_eq!(p.resolve().unwrap().pack, 2);
        odd_array_many_shapes(&p, &[(gemm(45, 11, 14), 98, 0.2)]);
    }
}

/// Narrow types pack more: int4 in groups of three (8 columns: 3, 3, 2) and int2 in groups of
/// six, fractional types with ReLU and a rounding, saturating output; uint8 activations pack in
/// pairs; both dataflows.
#[test]
fn packed_int4_and_int2_groups_both_dataflows() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    for df in [Dataflow::Os, Dataflow::Ws] {
        let p4 = packed(SystolicParams {
            rows: 2,
            cols: 8,
            dataflow: df,
            input_type: "ap_fixed<4,2>".into(),
            weight_type: "ap_fixed<4,1>".into(),
            acc_type: "ap_fixed<20,8>".into(),
            output_type: "ap_fixed<8,4,AP_RND_CONV,AP_SAT>".into(),
            relu: true,
            max_k: 32,
            max_n_chunk: 16,
            ..Default::default()
        });
        assert_eq!(p4.resolve().unwrap().pack, 3);
        check(&p4, gemm(9, 32, 17), 21, 0.0);
        check(&p4, gemm(5, 7, 16), 22, 0.3);
        // The operand buffers in UltraRAM: only the memories' ram_style differs.
        let p2 = packed(SystolicParams {
            rows: 3,
            cols: 12,
            dataflow: df,
            buffer_ram: accelforge_templates::systolic::BufferRam::Ultra,
            input_type: "ap_fixed<2,2>".into(),
            weight_type: "ap_fixed<2,2>".into(),
            acc_type: "ap_fixed<12,12>".into(),
            output_type: "ap_fixed<4,4>".into(),
            max_k: 64,
            max_n_chunk: 12,
            stream_bits: 32,
            ..Default::default()
        });
        assert_eq!(p2.resolve().unwrap().pack, 6);
        check(&p2, gemm(7, 64, 25), 23, 0.0);
        // Unsigned 8-bit activations (after a ReLU, as imported networks have them) pack in
        // pairs: their products with int8 weights fit 16 bits.
        let pu = packed(SystolicParams {
            rows: 3,
            cols: 5,
            dataflow: df,
            input_type: "ap_ufixed<8,8>".into(),
            max_k: 48,
            max_n_chunk: 10,
            ..Default::default()
        });
        assert_eq!(pu.resolve().unwrap().pack, 2);
        check(&pu, gemm(9, 48, 13), 24, 0.0);
        check(&pu, gemm(6, 17, 10), 25, 0.3);
    }
}

/// K at its maximum with the most negative operands: every product is (−128)·(−128) or
/// (−128)·127, summed into the narrowest accumulator `max_k` allows, with packed neighbours of
/// every sign; outputs equal the unpacked array's.
#[test]
fn packed_extreme_operands_at_max_k_equal_the_dsp_array() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    use ndarray::Array2;
    for df in [Dataflow::Os, Dataflow::Ws] {
        let base = SystolicParams {
            rows: 4,
            cols: 4,
            dataflow: df,
            acc_type: "ap_fixed<22,22>".into(),
            output_type: "ap_fixed<16,16,AP_TRN,AP_SAT>".into(),
            max_k: 64,
            max_n_chunk: 8,
            ..Default::default()
        };
        // 64 × 16384 = 2^20: the accumulator's 22 bits are exactly what max_k needs.
        let g = gemm(6, 64, 8);
        let a = Array2::from_shape_fn((6, 64), |(i, k)| if (i + k) % 7 == 6 { 127 } else { -128 });
        let cols = [-128i64, -128, -128, 127, 127, -128, -1, -128];
        let b = Array2::from_shape_fn(
            (64, 8),
            |(k, j)| if k % 5 == 4 { -cols[j] - 1 } else { cols[j] },
        );
        let opts = SimOptions::default();
        let want = run_gemm(&base, &g, &a, &b, &opts).expect("dsp array");
        let got = run_gemm(&packed(base.clone()), &g, &a, &b, &opts).expect("packed array");
        assert_eq!((want.mismatches, got.mismatches), (0, 0), "{df:?}: {got:?}");
        assert_eq!(got.cycles, want.cycles, "{df:?}: packing changes no cycle");
        assert_eq!(got.cycles, got.model_cycles);
    }
}

/// Every int8 activation against every int8 weight in both places of a packed pair: A is the
/// column −128..127 (K = 1), B the row −128..127 and then the same row shifted by one column,
/// so each weight meets each activation once as the lower and once as the upper product.
#[test]
fn packed_pe_every_int8_operand_pair_in_both_places() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    use ndarray::Array2;
    let p = packed(SystolicParams {
        rows: 8,
        cols: 2,
        acc_type: "ap_fixed<16,16>".into(),
        output_type: "ap_fixed<16,16>".into(),
        max_k: 1,
        max_n_chunk: 256,
        ..Default::default()
    });
    let g = gemm(256, 1, 256);
    let a = Array2::from_shape_fn((256, 1), |(i, _)| i as i64 - 128);
    for shift in [0i64, 1] {
        let b = Array2::from_shape_fn((1, 256), |(_, j)| (j as i64 + shift).rem_euclid(256) - 128);
        let rep = run_gemm(&p, &g, &a, &b, &SimOptions::default()).expect("simulation runs");
        assert_eq!(rep.mismatches, 0, "shift {shift}: {rep:?}");
        assert_eq!(rep.outputs_checked, 65_536);
        assert_eq!(rep.cycles, rep.model_cycles);
    }
}

/// Hex digits of a beat (`words` little-endian u64s) for a `bits`-wide bus, as `$readmemh` and
/// `$display("%h")` spell it.
fn beat_hex(words: &[u64], bits: u32) -> String {
    let full: String = words.iter().rev().map(|w| format!("{w:016x}")).collect();
    let digits = bits.div_ceil(4) as usize;
    full[full.len() - digits..].to_string()
}

/// Runs one GEMM on the generated core in Icarus Verilog (a 4-state simulator, unlike
/// Verilator) with a testbench generated here, and returns the output beats as
/// `(hex data, tlast)` strings, exactly as Icarus prints them (so X/Z stay visible).
fn icarus_gemm(p: &SystolicParams, g: Gemm, seed: u64) -> (Vec<(String, String)>, Vec<String>) {
    use accelforge_templates::systolic::{model, rtl};
    let r = p.resolve().expect("params");
    let (a, b) = random_gemm_operands(&r, &g, seed);
    let expected = model::gemm(&r, &a, &b).expect("golden");
    let sb = p.stream_bits;
    let beats_in = model::input_beats(&r, &g, &a, &b).expect("beats");
    let beats_out = model::output_beats(&r, &g, &expected);
    let d = rtl::design(p).expect("design");
    let files = tools::DesignFiles::new(&d).expect("write");
    let dir = files.paths[0].parent().unwrap().to_path_buf();
    let hex: String = beats_in
        .iter()
        .map(|(w, _)| beat_hex(w, sb) + "\n")
        .collect();
    std::fs::write(dir.join("in.hex"), hex).unwrap();
    let nb = beats_in.len();
    let limit = 20 * (cost::cycles(p, &g).expect("model").cycles + 100);
    let tb = format!(
        r#"`timescale 1ns/1ps
module tb;
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg cmd_valid = 1'b0;
  wire cmd_ready, busy, done, error;
  wire [{sbm}:0] s_tdata;
  wire s_tvalid, s_tlast, s_tready;
  wire [{sbm}:0] m_tdata;
  wire m_tvalid, m_tlast;
  reg started = 1'b0;
  reg [{sbm}:0] mem [0:{nbm}];
  integer idx = 0;
  assign s_tvalid = started && idx < {nb};
  assign s_tdata = (idx < {nb}) ? mem[idx] : {{{sb}{{1'b0}}}};
  assign s_tlast = idx == {nbm};
  {top} dut (
    .clk(clk), .rst(rst), .cmd_valid(cmd_valid), .cmd_ready(cmd_ready),
    .cmd_m(16'd{m}), .cmd_k(16'd{k}), .cmd_n(16'd{n}),
    .busy(busy), .done(done), .error(error),
    .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready),
    .s_axis_tlast(s_tlast),
    .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(1'b1),
    .m_axis_tlast(m_tlast)
  );
  always #5 clk = ~clk;
  always @(posedge clk) begin
    if (!rst && started && s_tvalid && s_tready === 1'b1) idx <= idx + 1;
    if (!rst && (^{{m_tvalid, s_tready, cmd_ready}}) === 1'bx) $display("XCTL %b %b %b", m_tvalid, s_tready, cmd_ready);
    if (!rst && m_tvalid === 1'b1) begin
      $display("OUT %h %b", m_tdata, m_tlast);
      if (m_tlast === 1'b1) $finish;
    end
  end
  initial begin
    $readmemh("{hexpath}", mem);
    repeat (3) @(posedge clk);
    #1 rst = 1'b0;
    @(posedge clk);
    #1 cmd_valid = 1'b1;
    @(posedge clk);
    #1 cmd_valid = 1'b0;
    started = 1'b1;
  end
  initial begin
    #{timeout};
    $display("TIMEOUT");
    $finish;
  end
endmodule
"#,
        sbm = sb - 1,
        nbm = nb - 1,
        top = d.top_name(),
        m = g.m,
        k = g.k,
        n = g.n,
        hexpath = dir.join("in.hex").display(),
        timeout = limit * 10,
    );
    let tb_path = dir.join("tb.v");
    std::fs::write(&tb_path, tb).unwrap();
    let vvp = dir.join("sim.vvp");
    let out = std::process::Command::new("iverilog")
        .args(["-g2005", "-s", "tb", "-o"])
        .arg(&vvp)
        .arg(&tb_path)
        .args(&files.paths)
        .output()
        .expect("iverilog runs");
    assert!(
        out.status.success(),
        "iverilog: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("vvp")
        .arg("-n")
        .arg(&vvp)
        .output()
        .expect("vvp runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "vvp: {stdout}");
    assert!(
        !stdout.contains("TIMEOUT"),
        "{p:?} {g:?}: timeout\n{stdout}"
    );
    assert!(
        !stdout.contains("XCTL"),
        "{p:?} {g:?}: X on control\n{stdout}"
    );
    let got: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("OUT "))
        .map(|l| {
            let (d, t) = l.split_once(' ').unwrap();
            (d.to_lowercase(), t.to_string())
        })
        .collect();
    let want = beats_out
        .iter()
        .map(|(w, l)| format!("{} {}", beat_hex(w, sb), u8::from(*l)))
        .collect();
    (got, want)
}

/// 4-state simulation (issue 13): with K < 7 idle multiply cycles used to read a never-written
/// B-buffer word, so output lanes were X in Icarus (0·X = X) though Verilator (2-state) was
/// fine. Every output beat must be free of X/Z and equal the golden model, both dataflows.
#[test]
fn icarus_outputs_have_no_x_for_small_k() {
    if !accelforge_test_support::tool_available("iverilog") {
        return;
    }
    let base = SystolicParams {
        rows: 2,
        cols: 3,
        max_k: 8,
        max_n_chunk: 6,
        stream_bits: 32,
        ..SystolicParams::default()
    };
    for (df, pe) in [
        (Dataflow::Os, PeKind::Dsp),
        (Dataflow::Ws, PeKind::Dsp),
        (Dataflow::Os, PeKind::ShiftAdd),
        (Dataflow::Os, PeKind::DspPacked),
        (Dataflow::Ws, PeKind::DspPacked),
    ] {
        let p = SystolicParams {
            dataflow: df,
            pe,
            ..base.clone()
        };
        for (g, seed) in [(gemm(3, 1, 5), 1), (gemm(4, 3, 7), 2)] {
            let (got, want) = icarus_gemm(&p, g, seed);
            for (d, t) in &got {
                assert!(
                    !d.contains(['x', 'z']) && !t.contains(['x', 'z']),
                    "{df:?} {g:?}: X/Z on an output beat: {d} {t}"
                );
            }
            let got: Vec<String> = got.iter().map(|(d, t)| format!("{d} {t}")).collect();
            assert_eq!(got, want, "{df:?} {g:?}: Icarus vs golden model");
        }
    }
}
