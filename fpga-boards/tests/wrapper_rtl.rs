//! The Zynq wrapper around the bring-up core lints clean, parses in Icarus, and synthesises for
//! both families; its ports are exactly what the Vivado script and PYNQ driver expect.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_boards::zynq::{loopback, wrapper};
use accelforge_hdl::tools::{self, DesignFiles, Family};

#[test]
fn wrapper_ports_match_the_interface_description() {
    let accel = loopback::interface("af_loopback_top", 32, 100.0);
    let d = wrapper::wrap(&loopback::core(32).unwrap(), &accel).unwrap();
    let ports: Vec<(String, u32)> = d
        .top()
        .ports()
        .iter()
        .map(|p| (p.name.clone(), p.width))
        .collect();
    let expected: Vec<(String, u32)> = accel
        .expected_ports()
        .iter()
        .map(|p| (p.name.clone(), p.width))
        .collect();
    assert_eq!(ports, expected);
    for (p, e) in d.top().ports().iter().zip(accel.expected_ports()) {
        let dir_matches = matches!(
            (p.dir, e.dir),
            (
                accelforge_hdl::Dir::Input,
                accelforge_boards::PortDir::Input
            ) | (
                accelforge_hdl::Dir::Output,
                accelforge_boards::PortDir::Output
            )
        );
        assert!(dir_matches, "{}", p.name);
    }
}

#[test]
fn wrapped_design_lints_and_synthesises() {
    if !tools::available_for_tests("verilator")
        || !tools::available_for_tests("yosys")
        || !tools::available_for_tests("iverilog")
    {
        return;
    }
    for bits in [8, 32] {
        let accel = loopback::interface("af_loopback_top", bits, 100.0);
        let d = wrapper::wrap(&loopback::core(bits).unwrap(), &accel).unwrap();
        let files = DesignFiles::new(&d).unwrap();
        let lint = tools::lint(&files.paths, Some(d.top_name())).unwrap();
        assert!(lint.is_clean(), "{:#?}", lint.diagnostics);
        tools::parse_check(&files.paths, Some(d.top_name())).unwrap();
        for family in [Family::Xc7, Family::Xcup] {
            let r = tools::synth(&files.paths, d.top_name(), family).unwrap();
            assert!(r.ff > 50 && r.dsp == 0, "{family}: {r:?}");
        }
    }
}

#[test]
fn over_budget_designs_are_refused_unless_allowed() {
    use accelforge_boards::zynq::generate::{GenerateRequest, generate_bundle};
    let db = accelforge_boards::BoardDb::builtin().unwrap();
    let accel = loopback::interface("af_loopback_top", 32, 100.0);
    let core = loopback::core(32).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut req = GenerateRequest {
        board: db.get("cora-z7-07s").unwrap(),
        accel: &accel,
        template_params: serde_json::json!({}),
        estimate: accelforge_boards::ResourceEstimate {
            lut: 1000,
            ff: 1000,
            dsp: 100,
            bram18: 2,
            uram: 0,
        },
        allow_over_budget: false,
        options: Default::default(),
    };
    let err = generate_bundle(&out.path().join("b1"), &core, &req)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dsp 100 of 66"), "{err}");
    assert!(!out.path().join("b1").exists(), "nothing half-written");
    req.allow_over_budget = true;
    let manifest = generate_bundle(&out.path().join("b2"), &core, &req).unwrap();
    let text = std::fs::read_to_string(out.path().join("b2/manifest.json")).unwrap();
    assert!(text.contains("\"fits\": false"), "{text}");
    assert!(!manifest.files.is_empty());
    // Every listed board gets a bundle, quickly (no external tools involved).
    for entry in db.entries() {
        let start = std::time::Instant::now();
        req.board = &entry.board;
        req.estimate = accelforge_boards::ResourceEstimate {
            lut: 300,
            ff: 400,
            dsp: 0,
            bram18: 0,
            uram: 0,
        };
        let dir = out.path().join(format!("bundle-{}", entry.board.name));
        generate_bundle(&dir, &core, &req).unwrap();
        assert!(start.elapsed().as_secs_f64() < 1.0);
        assert!(dir.join("build.tcl").exists());
    }
}
