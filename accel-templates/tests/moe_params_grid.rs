//! Every small or edge MoE parameter set that `validate()` accepts must also generate: a
//! setting that validates but fails in the generator would be reported `ok` by `estimate`,
//! `sweep` and `map` and only fail at `gen`.

#![allow(clippy::unwrap_used)]

use accelforge_templates::moe::{MoeParams, rtl};

#[test]
fn validated_edge_params_generate() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for tokens in [1, 2, 3, 4, 5, 8] {
        for (lanes, simd) in [(1, 1), (1, 2), (2, 1), (2, 2), (4, 4)] {
            for ddr in [1, 2, 4] {
                for top_k in [1, 2] {
                    for queue_depth in [1, 2, 3, 16] {
                        let p = MoeParams {
                            tokens,
                            lanes,
                            simd,
                            ddr_bytes_per_cycle: ddr,
                            top_k,
                            queue_depth,
                            d_model: 8,
                            d_ff: 8,
                            experts: 4,
                            ..MoeParams::default()
                        };
                        if p.validate().is_err() {
                            continue;
                        }
                        checked += 1;
                        if let Err(e) = rtl::design(&p) {
                            failures.push(format!(
                                "tokens={tokens} lanes={lanes} simd={simd} ddr={ddr} \
                                 top_k={top_k} queue_depth={queue_depth}: {e}"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} settings validated");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn one_token_is_refused_by_validate_with_the_fix() {
    let p = MoeParams {
        tokens: 1,
        ..MoeParams::default()
    };
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("tokens = 1") && e.contains("at least 2"), "{e}");
}
