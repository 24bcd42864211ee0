//! Every small or edge MoE parameter set that `validate()` accepts must also generate: a
//! setting that validates but fails in the generator would be reported `ok` by `estimate`,
//! `sweep` and `map` and only fail at `gen`.

#![allow(clippy::unwrap_used)]

#[path = "moe_common.rs"]
mod common;

use accelforge_templates::moe::{MoeParams, rtl};
use common::edge_grid;

#[test]
fn validated_edge_params_generate() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (label, p) in edge_grid(&[1, 2, 3, 4, 5, 8], &[1, 2, 3, 16]) {
        if p.validate().is_err() {
            continue;
        }
        checked += 1;
        if let Err(e) = rtl::design(&p) {
            failures.push(format!("{label}: {e}"));
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
