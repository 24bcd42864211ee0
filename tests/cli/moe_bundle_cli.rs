//! `accelforge gen moe --board NAME`: the MoE core as a Zynq bundle with weight fetch through an
//! AXI DataMover. The build script runs under the Vivado stand-in, the driver compiles, the
//! manifest's register map and segment table are the ones the Verilator test checks, and bad
//! configurations are refused with nothing written.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use crate::common::MOE_SMALL as SMALL;
use crate::common::cli;
use std::path::Path;
use std::process::Command;

use crate::common::vivado_stub;

use accelforge_boards::AccelInterface;

fn run_stub(bundle: &Path, accel: &AccelInterface) -> String {
    vivado_stub::run(bundle, &vivado_stub::prelude(accel))
}

#[test]
fn moe_bundles_for_a_zynq7000_and_an_ultrascale_board() {
    let tmp = tempfile::tempdir().unwrap();
    for (board, addr_bits, cmd_bits) in [("pynq-z2", 32, 72), ("kv260", 64, 104)] {
        let out = tmp.path().join(board);
        let mut args = vec!["gen", "moe", "--board", board, "--json"];
        args.extend(SMALL);
        let r = cli::command()
            .args(&args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["manifest"]["budget"]["fits"], true, "{v}");
        let accel: AccelInterface = serde_json::from_value(v["manifest"]["accel"].clone()).unwrap();
        let f = accel
            .weight_fetch
            .clone()
            .expect("weight fetch in the manifest");
        assert_eq!(f.addr_bits, addr_bits);
        assert_eq!(f.cmd_bits(), cmd_bits);
        assert_eq!(f.stream_bits, 16);
        // Gate first (id = experts = 4), then experts 0..3, each 128-byte aligned.
        let ids: Vec<u32> = f.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, [4, 0, 1, 2, 3]);
        assert_eq!(f.segments[0].offset, 0);
        assert_eq!(f.segments[0].bytes, 4 * 8); // 4 x 8 weights, one byte each
        assert_eq!(f.segments[1].offset, 128);
        assert_eq!(f.segments[1].bytes, 2 * 16 * 8);
        assert!(f.segments.iter().all(|s| s.offset % 128 == 0));
        let regs = accel.register_map();
        let names: Vec<&str> = regs.iter().map(|r| r.const_name.as_str()).collect();
        for want in [
            "REG_ARG_REORDER",
            "REG_STAT_LOADS",
            "REG_STAT_DROPPED",
            "REG_WEIGHTS_BASE",
            "REG_FETCH_STATUS",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        assert_eq!(names.contains(&"REG_WEIGHTS_BASE_HI"), addr_bits == 64);
        let stdout = run_stub(&out, &accel);
        assert!(stdout.contains("VIVADO-STUB OK"));
        let tcl = std::fs::read_to_string(out.join("build.tcl")).unwrap();
        for want in [
            "xilinx.com:ip:axi_datamover",
            "CONFIG.c_include_s2mm {Omit}",
            "CONFIG.c_m_axis_mm2s_tdata_width {16}",
            "CONFIG.c_m_axi_mm2s_data_width {32}",
            &format!("CONFIG.c_addr_width {{{addr_bits}}}"),
            "[get_bd_intf_pins axi_datamover_0/M_AXI_MM2S] [get_bd_intf_pins data_smc/S02_AXI]",
        ] {
            assert!(tcl.contains(want), "build.tcl lacks {want}");
        }
        let py = out.join("moe_core_zynq_driver.py");
        let c = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&py)
            .status()
            .unwrap();
        assert!(c.success());
        // The driver knows the batch: 8 tokens x 8 elements in and out, one byte each. Run it
        // against the PYNQ stand-in (numpy is installed by scripts/setup.sh).
        assert_eq!(
            accel.fixed_batch,
            Some(accelforge_boards::FixedBatch {
                in_beats: 64,
                out_beats: 64
            })
        );
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fpga-boards/tests/fake_pynq.py"
            ),
            out.join("pynq.py"),
        )
        .unwrap();
        let check = r#"
import numpy as np
import moe_core_zynq_driver as d
assert (d.IN_BATCH_BEATS, d.OUT_BATCH_BEATS) == (64, 64)
accel = d.MoeCoreZynq()
accel.load_weights(**{k: np.ones(s, dtype=np.int64) for k, s in d.weight_shapes().items()})
try:
    accel.run_batch(np.zeros(16, np.uint8))
except ValueError as e:
    assert "64 input beats" in str(e), e
else:
    raise AssertionError("a short batch was sent")
y, status = accel.run_batch(np.arange(64, dtype=np.uint8), reorder=1)
assert y.size == 64 * d.OUT_BEAT_BYTES, y.size
assert set(status) == {"loads", "dropped"}, status
"#;
        let r = Command::new("python3")
            .args(["-c", check])
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
        assert!(readme.contains("Weights from DDR") && readme.contains("REG_STAT_LOADS"));
        if accelforge_test_support::tool_available("verilator") {
            let hdl: Vec<_> = std::fs::read_dir(out.join("hdl"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            let lint = accelforge_hdl::tools::lint(&hdl, Some(&accel.name)).unwrap();
            assert!(lint.is_clean(), "{:?}", lint.diagnostics);
        }
    }
}

#[test]
fn moe_bundle_refusals_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    // 258 DSPs on a 220-DSP part.
    let out = tmp.path().join("big");
    let big = [
        "gen",
        "moe",
        "--board",
        "pynq-z2",
        "--lanes",
        "16",
        "--simd",
        "16",
        "--experts",
        "16",
        "--d-model",
        "16",
        "--d-ff",
        "32",
    ];
    let r = cli::command()
        .args(big)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("dsp 258 of 220") && err.contains("--allow-over-budget"),
        "{err}"
    );
    assert!(!out.exists(), "nothing half-written");
    let r = cli::command()
        .args(big)
        .arg("--allow-over-budget")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"fits\": false"));

    // 24-bit weights at 3 bytes per cycle: a valid core, but a 24-bit stream the DataMover
    // cannot carry.
    let out = tmp.path().join("odd");
    let mut args = vec!["gen", "moe", "--board", "pynq-z2"];
    args.extend(&SMALL[..14]);
    args.extend([
        "--ddr-bytes-per-cycle",
        "3",
        "--weight-type",
        "ap_fixed<24,4,AP_RND,AP_SAT>",
    ]);
    let r = cli::command()
        .args(&args)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success(), "a 24-bit weight stream was accepted");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("AXI DataMover") && err.contains("24-bit"),
        "{err}"
    );
    assert!(!out.exists(), "nothing half-written");
}
