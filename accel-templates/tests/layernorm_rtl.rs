//! The add & norm unit in Verilator against its golden model: 0 mismatches over widths, lanes,
//! types (including a left-shifting output scale), with and without the residual add, on random,
//! saturating and constant rows; cycles equal to the model when the streams never stall, the
//! same outputs under random input gaps and output back-pressure; every configuration lints
//! clean and a wrong expectation is caught.

use accelforge_hdl::tools;
use accelforge_sim::BuildOptions;
use accelforge_templates::layernorm::sim::{LayerNormData, simulate, simulate_against};
use accelforge_templates::layernorm::{LayerNormParams, Resolved, cost, rtl};
use accelforge_templates::template::drive::Stalls;

/// Verilator and Yosys are there (a CI run fails instead of skipping).
fn tools_present() -> bool {
    accelforge_test_support::tool_available("verilator")
        && accelforge_test_support::tool_available("yosys")
}

fn configs() -> Vec<(&'static str, LayerNormParams)> {
    let d = LayerNormParams::default;
    vec![
        ("ViT-Tiny LN1: d 192, 4 per beat", d()),
        (
            "residual add, d 16, 2 per beat, narrow types",
            LayerNormParams {
                d: 16,
                lanes: 2,
                residual: true,
                input_type: "ap_fixed<10,4>".into(),
                gamma_type: "ap_fixed<6,2>".into(),
                beta_type: "ap_fixed<5,2>".into(),
                output_type: "ap_fixed<6,2>".into(),
                rsqrt_table_bits: 4,
                ..d()
            },
        ),
        (
            "one element per beat, odd d, left-shifted output scale",
            LayerNormParams {
                d: 7,
                lanes: 1,
                input_type: "ap_fixed<12,8>".into(),
                gamma_type: "ap_fixed<8,8>".into(),
                beta_type: "ap_fixed<8,4>".into(),
                output_type: "ap_fixed<24,4>".into(),
                rsqrt_frac_bits: 10,
                eps: 0.01,
                ..d()
            },
        ),
        (
            "whole row per beat, power-of-two d, residual, 24-bit input",
            LayerNormParams {
                d: 8,
                lanes: 8,
                residual: true,
                input_type: "ap_fixed<24,10>".into(),
                rsqrt_frac_bits: 20,
                rsqrt_table_bits: 7,
                ..d()
            },
        ),
    ]
}

fn check(name: &str, r: &Resolved, data: &LayerNormData, stalls: Stalls) {
    let (s, _) = simulate(r, data, stalls, &BuildOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(s.mismatches, 0, "{name} ({stalls:?}): {:?}", s.first);
    assert!(s.outputs_checked > 0, "{name}");
    if stalls == Stalls::default() {
        assert_eq!(s.cycles, s.model_cycles, "{name}");
    } else {
        assert!(s.cycles > s.model_cycles, "{name}: stalls must cost cycles");
    }
}

#[test]
fn layernorm_matches_golden_and_cycle_model() {
    if !tools_present() {
        return;
    }
    let cases = configs();
    accelforge_sim::par_map(&cases, |(name, p)| {
        let r = p.resolve().unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = rtl::design(&r).unwrap();
        let files = tools::DesignFiles::new(&d).unwrap();
        let lint = tools::lint(&files.paths, Some(d.top_name())).unwrap();
        assert!(lint.is_clean(), "{name}: {:#?}", lint.diagnostics);
        check(
            name,
            &r,
            &LayerNormData::random(&r, 5, 1, 1.0),
            Stalls::default(),
        );
        check(
            name,
            &r,
            &LayerNormData::random(&r, 1, 2, 0.05),
            Stalls::default(),
        );
        // Saturating sums and outputs: values at the type's corners, constant rows (var = 0).
        let mut extreme = LayerNormData::random(&r, 4, 3, 1.0);
        let (lo, hi) = (r.tin.min_raw() as i64, r.tin.max_raw() as i64);
        for (t, mut row) in extreme.x.rows_mut().into_iter().enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = match t {
                    0 => hi,
                    // One element √(d−1) standard deviations out: the largest |z|.
                    1 => {
                        if i == 0 {
                            hi
                        } else {
                            lo
                        }
                    }
                    _ => [lo, 0, hi][(i * 7 + t) % 3],
                };
            }
        }
        if let Some(res) = extreme.res.as_mut() {
            res.fill(hi);
            // Row 1 keeps its outlier through the residual add.
            res.row_mut(1).fill(0);
        }
        check(name, &r, &extreme, Stalls::default());
        let stalls = Stalls {
            input_gap: 0.3,
            output_stall: 0.5,
            seed: 9,
        };
        check(name, &r, &LayerNormData::random(&r, 3, 4, 1.0), stalls);
    });
}

/// The check above can fail: a golden model whose table is one LSB off is caught.
#[test]
fn a_wrong_expectation_is_caught() {
    if !tools_present() {
        return;
    }
    let (name, p) = &configs()[1];
    let r = p.resolve().unwrap();
    let data = LayerNormData::random(&r, 3, 7, 1.0);
    let mut wrong = r.clone();
    // 1.5 % high: a few outputs cross a rounding boundary.
    for v in wrong.table.iter_mut() {
        *v += *v / 64;
    }
    let want = data.golden(&r).unwrap();
    let off = data.golden(&wrong).unwrap();
    assert_ne!(
        want, off,
        "{name}: the perturbation must change some output"
    );
    let s = simulate_against(&r, &data, &off, Stalls::default(), &BuildOptions::default()).unwrap();
    assert!(s.mismatches > 0, "{name}: {s:?}");
}

/// Every configuration synthesizes in Yosys on both families with the DSP and block-RAM counts
/// of the resource model.
#[test]
fn layernorm_synthesizes_in_yosys() {
    if !tools_present() {
        return;
    }
    let cases: Vec<(usize, tools::Family)> = (0..4)
        .flat_map(|i| [(i, tools::Family::Xc7), (i, tools::Family::Xcup)])
        .collect();
    let configs = configs();
    accelforge_sim::par_map(&cases, |&(i, family)| {
        let (name, p) = &configs[i];
        let r = p.resolve().unwrap();
        let d = rtl::design(&r).unwrap();
        let files = tools::DesignFiles::new(&d).unwrap();
        let s = tools::synth(&files.paths, d.top_name(), family)
            .unwrap_or_else(|e| panic!("{name} on {family}: {e}"));
        eprintln!("{name} on {family}: {s:?}");
        assert_eq!(s.dsp, cost::dsps(&r, family), "{name} on {family}: {s:?}");
        assert_eq!(
            s.bram18_equivalent(),
            cost::bram18(&r),
            "{name} on {family}: {s:?}"
        );
        assert!(s.lut > 0 && s.ff > 0, "{name} on {family}: {s:?}");
    });
}
