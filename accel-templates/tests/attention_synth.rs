//! The attention kernel's resource model against Yosys `synth_xilinx` on both families: DSP
//! and block RAM exactly, LUT and FF within the fitted model's error.

use accelforge_hdl::tools::{self, Family};
use accelforge_templates::attention::{AttentionParams, cost, rtl};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn resource_model_matches_yosys() {
    if !tools::doctor().iter().all(|(_, s)| s.is_ok()) {
        assert!(!ci(), "Yosys is required under CI=true");
        eprintln!("skipped: tools missing");
        return;
    }
    let cases = [
        // LUT RAM only; 28-bit accumulators take two DSPs per rescale on both families.
        AttentionParams {
            head_dim: 8,
            heads: 1,
            tokens: 5,
            query_lanes: 2,
            simd: 4,
            ..Default::default()
        },
        // Block RAM accumulators (128 words); a 27-bit sum rescale is one DSP48E2, two DSP48E1.
        AttentionParams {
            head_dim: 128,
            heads: 1,
            tokens: 1024,
            query_lanes: 2,
            simd: 1,
            ..Default::default()
        },
    ];
    let runs: Vec<(usize, Family)> = (0..cases.len())
        .flat_map(|i| [(i, Family::Xc7), (i, Family::Xcup)])
        .collect();
    accelforge_sim::par_map(&runs, |&(i, family)| {
        let r = cases[i].resolve().unwrap();
        let d = rtl::design(&r).unwrap();
        let files = tools::DesignFiles::new(&d).unwrap();
        let s = tools::synth(&files.paths, d.top_name(), family).unwrap();
        let m = cost::resources(&r);
        let ctx = format!("case {i} on {family}: yosys {s:?}, model {m:?}");
        assert_eq!(s.dsp, cost::dsps(&r, family), "{ctx}");
        assert!(m.dsp >= s.dsp, "{ctx}");
        assert_eq!(s.bram18_equivalent(), m.bram18, "{ctx}");
        assert_eq!(s.uram, 0, "{ctx}");
        let rel = |model: u64, got: u64| (model as f64 - got as f64).abs() / got as f64;
        assert!(rel(m.lut, s.lut) <= 0.25, "{ctx}");
        assert!(rel(m.ff, s.ff) <= 0.25, "{ctx}");
    });
}
