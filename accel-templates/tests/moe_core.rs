//! The MoE core in Verilator against the golden model and the cycle model.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

#[path = "moe_common.rs"]
mod common;

use accelforge_templates::moe::tb::{self, Stalls};
use accelforge_templates::moe::{MoeParams, WeightSource, cost, model, rtl};
use common::*;

#[test]
fn default_config_matches_golden_and_cycle_model() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let p = MoeParams::default();
    let d = rtl::design(&p).unwrap();
    lint_clean(&d);
    let compiled = compile(&d);
    for reorder in [true, false] {
        let mut h = SimH(compiled.sim().unwrap());
        h.0.reset(2).unwrap();
        let data = model::MoeData::random(&p, 3, 0.0).unwrap();
        let g = model::golden(&p, &data, reorder).unwrap();
        let run = tb::run_batch(
            &mut h,
            &p,
            &data,
            reorder,
            WeightSource::default(),
            Stalls::default(),
            200_000,
        )
        .unwrap();
        let c = tb::check(&p, &g, &run);
        assert_eq!(c.mismatches, 0, "{:?}", c.first);
        let model = cost::cycles(&p, &g.routing.load_shape()).unwrap();
        assert_eq!(run.cycles, model.cycles, "reorder {reorder}: {model:?}");
    }
}
