//! Verilator vs golden model: zero mismatches, and the analytic cycle model equals the
//! simulated cycle count whenever there is no back-pressure.

use accelforge_hdl::tools;
use accelforge_templates::systolic::SystolicParams;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::sim::{SimOptions, random_gemm_operands, run_gemm};

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
    if bp == 0.0 {
        assert_eq!(rep.cycles, rep.model_cycles, "{p:?} {g:?}: model vs sim");
    } else {
        assert!(rep.cycles >= rep.model_cycles, "{p:?} {g:?}: {rep:?}");
    }
}

#[test]
fn small_os_dsp() {
    if !tools::available_for_tests("verilator") {
        return;
    }
    let p = SystolicParams {
        rows: 3,
        cols: 5,
        max_k: 40,
        max_n_chunk: 10,
        ..Default::default()
    };
    check(&p, Gemm { m: 7, k: 9, n: 13 }, 1, 0.0);
}
