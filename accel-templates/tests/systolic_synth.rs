//! Yosys: the 16×16 int8 `dsp` array uses exactly R·C DSP48E1, the `shift-add` array none, the
//! `dsp-packed` array half as many DSP48E2 (UltraScale+) as it has PEs, and block RAM matches
//! the resource model. Slow (one synthesis each).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::tools::{self, DesignFiles, Family};
use accelforge_templates::systolic::{BufferRam, Dataflow, PeKind, SystolicParams, cost, rtl};

fn synth_check(p: &SystolicParams) {
    synth_check_on(p, Family::Xc7);
}

fn synth_check_on(p: &SystolicParams, family: Family) {
    let d = rtl::design(p).expect("design");
    let files = DesignFiles::new(&d).expect("write");
    let rep = tools::synth(&files.paths, d.top_name(), family).expect("yosys");
    let model = cost::resources(p).expect("model");
    assert_eq!(rep.dsp, model.dsp, "DSP48E1: {rep:?}");
    assert_eq!(rep.bram36, model.bram36, "RAMB36: {rep:?}");
    assert_eq!(rep.bram18, model.bram18, "RAMB18: {rep:?}");
    eprintln!(
        "{:?}: yosys lut {} ff {} (model {} / {})",
        p.pe, rep.lut, rep.ff, model.lut, model.ff
    );
}

fn array16(pe: PeKind) -> SystolicParams {
    SystolicParams {
        rows: 16,
        cols: 16,
        pe,
        max_k: 256,
        max_n_chunk: 64,
        ..Default::default()
    }
}

#[test]
fn dsp_array_16x16_uses_256_dsp48() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = array16(PeKind::Dsp);
    assert_eq!(cost::resources(&p).expect("model").dsp, 256);
    synth_check(&p);
}

#[test]
fn shift_add_array_16x16_uses_no_dsp() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = array16(PeKind::ShiftAdd);
    assert_eq!(cost::resources(&p).expect("model").dsp, 0);
    synth_check(&p);
}

/// Two int8 MACs per DSP48E2: 256 PEs on 128 DSPs (efficiency 2.0 MACs per DSP per cycle).
#[test]
fn dsp_packed_array_16x16_uses_128_dsp48e2() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = array16(PeKind::DspPacked);
    assert_eq!(cost::resources(&p).expect("model").dsp, 128);
    synth_check_on(&p, Family::Xcup);
}

/// The same packing on 7-series: a weight-stationary 8×6 int8 array on 24 DSP48E1 (the packed
/// operand is 25 bits, the DSP48E1's port), block RAM as modelled.
#[test]
fn ws_dsp_packed_array_8x6_on_dsp48e1() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = SystolicParams {
        rows: 8,
        cols: 6,
        dataflow: Dataflow::Ws,
        pe: PeKind::DspPacked,
        max_k: 128,
        max_n_chunk: 12,
        ..Default::default()
    };
    assert_eq!(cost::resources(&p).expect("model").dsp, 24);
    synth_check(&p);
}

/// Yosys maps products narrower than 9 bits to LUTs: an int4 `dsp` array uses no DSP at all,
/// while packing three int4 weights makes a 21-bit operand that does; the lone fourth column
/// stays a 4×4 product in LUTs (4 rows × 1 DSP). The resource model counts both.
#[test]
fn int4_products_go_to_luts_unless_packed() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    for (pe, dsp) in [(PeKind::Dsp, 0), (PeKind::DspPacked, 4)] {
        let p = SystolicParams {
            rows: 4,
            cols: 4,
            pe,
            input_type: "ap_fixed<4,4>".into(),
            weight_type: "ap_fixed<4,4>".into(),
            acc_type: "ap_fixed<16,16>".into(),
            stream_bits: 16,
            max_k: 256,
            max_n_chunk: 8,
            ..Default::default()
        };
        assert_eq!(cost::resources(&p).expect("model").dsp, dsp, "{pe:?}");
        synth_check(&p);
    }
}

/// Operand buffers in UltraRAM for a long K (ResNet-18's 4,608): cascaded URAM288 blocks as the
/// model counts them (A 4, B 8), no block RAM left, on UltraScale+ with packed PEs.
#[test]
fn ultra_buffers_for_a_long_k_map_to_uram288() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = SystolicParams {
        rows: 8,
        cols: 8,
        pe: PeKind::DspPacked,
        buffer_ram: BufferRam::Ultra,
        max_k: 4608,
        max_n_chunk: 16,
        ..Default::default()
    };
    let m = cost::resources(&p).expect("model");
    assert_eq!((m.uram, m.bram18, m.bram36, m.dsp), (12, 0, 0, 32));
    let d = rtl::design(&p).expect("design");
    let files = DesignFiles::new(&d).expect("write");
    let rep = tools::synth(&files.paths, d.top_name(), Family::Xcup).expect("yosys");
    assert_eq!(
        (rep.uram, rep.bram18, rep.bram36, rep.dsp),
        (12, 0, 0, 32),
        "{rep:?}"
    );
}

#[test]
fn ws_dsp_array_8x8_dsp_and_block_ram_match_the_model() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = SystolicParams {
        dataflow: Dataflow::Ws,
        ..SystolicParams::default()
    };
    assert_eq!(cost::resources(&p).expect("model").dsp, 64);
    synth_check(&p);
}
