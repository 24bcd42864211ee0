//! An independent AXI client against the generated Zynq systolic top: cocotb with cocotbext-axi
//! (third-party Python AXI4-Lite and AXI4-Stream models) on Icarus Verilog, a 4-state simulator.
//! The Rust side writes the wrapped Verilog and a JSON file of commands — register offsets from
//! the generated interface, input beats from the stream packing, expected output beats from the
//! golden model — and `tests/cocotb/systolic_zynq_test.py` plays them as the PYNQ driver would.
//! Rejected commands (K = 0, K > max_k, M = 0, N = 0) must complete with ap_done and the error bit
//! set, the next valid command must give the golden result, and no output bit may be X after
//! reset (K = 1 reads buffer banks that a short command never wrote).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::path::{Path, PathBuf};
use std::process::Command;

use accelforge_boards::zynq::wrapper::{interface_for_core, wrap};
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::sim::random_gemm_operands;
use accelforge_templates::systolic::{Dataflow, SystolicParams, model, rtl};
use serde_json::{Value, json};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// cocotb and cocotbext-axi importable by `python3` (installed by scripts/setup.sh); under CI a
/// missing package fails the test instead of skipping it.
fn cocotb_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cocotb, cocotb_tools.runner, cocotbext.axi"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && ci() {
        panic!("CI=true but python3 cannot import cocotb/cocotbext-axi: run scripts/setup.sh");
    }
    if !ok {
        eprintln!("skipping: python3 cannot import cocotb/cocotbext-axi");
    }
    ok
}

fn beats_hex(beats: &[(Vec<u64>, bool)], bits: u32) -> String {
    let bytes = (bits / 8) as usize;
    let mut s = String::new();
    for (words, _) in beats {
        let le: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        for b in &le[..bytes] {
            s.push_str(&format!("{b:02x}"));
        }
    }
    s
}

fn run_cocotb(p: &SystolicParams, name: &str) {
    let r = p.resolve().unwrap();
    let core = rtl::design(p).unwrap();
    let accel = interface_for_core(core.top(), name, 100.0, 1 << 20).unwrap();
    let wrapped = wrap(&core, &accel).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cocotb-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let sources = wrapped.write_to(&dir.join("hdl")).unwrap();

    let top = wrapped.top();
    let outputs: Vec<&str> = top
        .ports()
        .iter()
        .filter(|p| p.dir == accelforge_hdl::Dir::Output)
        .map(|p| p.name.as_str())
        .collect();
    let args: serde_json::Map<String, Value> = accel
        .args
        .iter()
        .map(|a| (a.name.clone(), json!(a.offset)))
        .collect();
    let mut regs = json!({ "ap_ctrl": 0, "args": args });
    // REG_CMD_STATUS bit 0: the last command was rejected.
    regs["error"] = json!({ "offset": accel.cmd_status_offset(), "bit": 0 });

    let mut commands = Vec::new();
    let max_k = p.max_k;
    let layers = [
        // K = 1 first after reset: idle multiply cycles read buffer banks nothing wrote yet.
        (Gemm { m: 4, k: 1, n: 3 }, false),
        (Gemm { m: 5, k: 0, n: 3 }, true),
        (Gemm { m: 7, k: 5, n: 9 }, false),
        (
            Gemm {
                m: 3,
                k: max_k + 1,
                n: 2,
            },
            true,
        ),
        (Gemm { m: 0, k: 4, n: 2 }, true),
        (Gemm { m: 2, k: 3, n: 0 }, true),
        (
            Gemm {
                m: 6,
                k: max_k,
                n: 5,
            },
            false,
        ),
        (Gemm { m: 1, k: 2, n: 1 }, false),
    ];
    for (i, (g, rejected)) in layers.into_iter().enumerate() {
        let args = json!({ "m": g.m, "k": g.k, "n": g.n });
        if rejected {
            commands.push(json!({ "args": args, "rejected": true, "input": "", "expected": "" }));
            continue;
        }
        let (a, b) = random_gemm_operands(&r, &g, 90 + i as u64);
        let c = model::gemm(&r, &a, &b).unwrap();
        let input = model::input_beats(&r, &g, &a, &b).unwrap();
        let expected = model::output_beats(&r, &g, &c);
        commands.push(json!({
            "args": args,
            "rejected": false,
            "input": beats_hex(&input, accel.in_stream_bits),
            "expected": beats_hex(&expected, accel.out_stream_bits),
        }));
    }
    let vectors = dir.join("vectors.json");
    let spec = json!({ "regs": regs, "outputs": outputs, "commands": commands });
    std::fs::write(&vectors, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cocotb/run.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir.join("build"))
        .arg(wrapped.top_name())
        .arg("systolic_zynq_test")
        .args(&sources)
        .env("AF_VECTORS", &vectors)
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "cocotb run failed:\n{log}");
    assert!(log.contains("cocotb: 1 test(s), 0 failed"), "{log}");
}

/// A 3x4 array of the given dataflow through the cocotb client (skipped only outside CI when
/// Icarus or cocotb is missing; under CI=true both are required).
fn cocotb_3x4(dataflow: Dataflow, name: &str) {
    if !accelforge_test_support::tool_available("iverilog") || !cocotb_available() {
        return;
    }
    let p = SystolicParams {
        rows: 3,
        cols: 4,
        max_k: 16,
        max_n_chunk: 8,
        dataflow,
        ..SystolicParams::default()
    };
    run_cocotb(&p, name);
}

#[test]
fn cocotb_axi_client_drives_the_output_stationary_top() {
    cocotb_3x4(Dataflow::Os, "af_cocotb_os");
}

#[test]
fn cocotb_axi_client_drives_the_weight_stationary_top() {
    cocotb_3x4(Dataflow::Ws, "af_cocotb_ws");
}
