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

/// Vivado reads clock/bus association, reset polarity and interrupt sensitivity from these
/// attributes (UG994); without them a block design guesses and warns at connection time.
#[test]
fn clock_reset_and_interrupt_carry_vivado_interface_attributes() {
    let accel = loopback::interface("af_loopback_top", 32, 100.0);
    let d = wrapper::wrap(&loopback::core(32).unwrap(), &accel).unwrap();
    let attrs = |port: &str| {
        d.top()
            .ports()
            .iter()
            .find(|p| p.name == port)
            .unwrap()
            .attributes
            .clone()
    };
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        attrs("ap_clk"),
        [
            pair("X_INTERFACE_INFO", "xilinx.com:signal:clock:1.0 ap_clk CLK"),
            pair(
                "X_INTERFACE_PARAMETER",
                "ASSOCIATED_BUSIF s_axi_control:s_axis_in:m_axis_out, ASSOCIATED_RESET ap_rst_n"
            ),
        ]
    );
    assert!(attrs("ap_rst_n").contains(&pair("X_INTERFACE_PARAMETER", "POLARITY ACTIVE_LOW")));
    assert!(attrs("interrupt").contains(&pair("X_INTERFACE_PARAMETER", "SENSITIVITY LEVEL_HIGH")));
    let text = d.files().into_iter().map(|(_, t)| t).collect::<String>();
    assert!(
        text.contains(
            "(* X_INTERFACE_PARAMETER = \"POLARITY ACTIVE_LOW\" *)\n    input  wire ap_rst_n"
        ),
        "{text}"
    );
}

#[test]
fn wrapped_design_lints_and_synthesises() {
    if !accelforge_test_support::tool_available("verilator")
        || !accelforge_test_support::tool_available("yosys")
        || !accelforge_test_support::tool_available("iverilog")
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
    // Every listed board gets a bundle (no external tools involved).
    for entry in db.entries() {
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
        assert!(dir.join("build.tcl").exists());
    }
}

/// A weight request for a segment id the table does not have sends no DataMover command (a
/// zero byte count would put the DataMover in INTERR until reset): the request is consumed and
/// the fetch status shows the error and the unknown-id bit; a known id still gets its command.
#[test]
fn unknown_segment_id_sends_no_datamover_command() {
    use accelforge_boards::zynq::accel::{
        FETCH_BAD_ID_BIT, FETCH_CMD_PENDING_BIT, FETCH_ERROR_BIT, SegmentMatrix, WeightFetch,
        WeightLayout,
    };
    use accelforge_boards::zynq::fetch;
    use accelforge_sim::{BuildOptions, DesignSpec, build};
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let m = |index| SegmentMatrix {
        array: "w".into(),
        index: Some(index),
        rows: 16,
        cols: 8,
    };
    let f = WeightFetch::packed(
        32,
        32,
        2,
        WeightLayout {
            lanes: 4,
            simd: 2,
            elem_bits: 8,
            elem_bytes: 1,
        },
        vec![(1, "a".into(), vec![m(0)]), (0, "b".into(), vec![m(1)])],
    );
    let module = fetch::module("af_fetch_probe", &f).unwrap();
    let design = accelforge_hdl::Design::new(module, "af_fetch_probe");
    let compiled = build(&DesignSpec::from_hdl(&design), &BuildOptions::default()).unwrap();
    let mut sim = compiled.sim().unwrap();
    sim.reset(2).unwrap();
    sim.poke("weights_base", 0x1000).unwrap();
    sim.poke("m_axis_mm2s_cmd_tready", 0).unwrap();
    for (id, known) in [(3u64, false), (1, true)] {
        sim.poke("wreq_id", id).unwrap();
        sim.poke("wreq_valid", 1).unwrap();
        sim.eval().unwrap();
        assert_eq!(sim.peek("wreq_ready").unwrap(), 1, "id {id} is taken");
        sim.step().unwrap();
        sim.poke("wreq_valid", 0).unwrap();
        sim.eval().unwrap();
        let status = sim.peek("status").unwrap();
        assert_eq!(
            sim.peek("m_axis_mm2s_cmd_tvalid").unwrap(),
            u64::from(known),
            "id {id}"
        );
        assert_eq!(
            status >> FETCH_CMD_PENDING_BIT & 1,
            u64::from(known),
            "id {id}"
        );
        // The unknown id's error stays until the next command clears it.
        assert_eq!(status >> FETCH_BAD_ID_BIT & 1, 1, "id {id}: {status:#x}");
        assert_eq!(status >> FETCH_ERROR_BIT & 1, 1, "id {id}: {status:#x}");
    }
    // The known segment's command carries its byte count (BTT, bits 22:0), never 0.
    let cmd = sim.peek_wide("m_axis_mm2s_cmd_tdata").unwrap();
    assert_eq!(
        cmd[0] & 0x7F_FFFF,
        f.segments.iter().find(|s| s.id == 1).unwrap().bytes
    );
    sim.poke("clear", 1).unwrap();
    sim.step().unwrap();
    sim.poke("clear", 0).unwrap();
    sim.eval().unwrap();
    assert_eq!(sim.peek("status").unwrap() >> FETCH_BAD_ID_BIT & 1, 0);
}
