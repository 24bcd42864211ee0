//! `accelforge gen MODEL.onnx --board B --out DIR`: the Zynq bundle of the array a model maps
//! to, with the network package that runs the whole model through the PYNQ driver. Checked
//! without a board: the build script under the Vivado stand-in, `network.py` against a PYNQ
//! stand-in whose accelerator decodes the operand stream and multiplies (outputs identical to
//! the golden engine on 200 digits), `network.py`'s stream packing byte for byte against the
//! template's model of the stream, and the wrapped Zynq top running the whole network in
//! Verilator over AXI as the driver does.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::path::Path;
use std::process::Command;

use crate::common::cli;
use crate::common::vivado_stub;

use accelforge_boards::zynq::wrapper::interface_for_core;
use accelforge_templates::systolic::{Dataflow, Resolved, SystolicParams, model, requant, rtl};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tests/fixtures");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// numpy is installed by scripts/setup.sh; without it (outside CI) the Python checks cannot
/// run, and under CI=true that is a failure.
fn numpy() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "numpy is needed (pip install numpy)"
        );
        eprintln!("WARNING: numpy missing: the network.py checks did NOT run");
    }
    ok
}

fn gen_model(model: &str, out: &Path) -> serde_json::Value {
    gen_model_with(model, out, &[])
}

fn gen_model_with(model: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let fixture = fixture(model);
    let mut args = vec![
        "gen",
        &fixture,
        "--board",
        "pynq-z2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = cli::accelforge(&args);
    assert!(o.status.success(), "{}", cli::stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn python(dir: &Path, script: &str) -> String {
    let o = Command::new("python3")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "python failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The bundle holds the systolic bundle of the mapped array (build.tcl passes the Vivado
/// stand-in, the Verilog lints clean) and the network package; the JSON names every file.
#[test]
fn model_bundle_passes_the_vivado_stand_in() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cnn");
    let v = gen_model("cnn_w8a8_pow2.onnx", &out);
    for f in v["files"].as_array().unwrap() {
        assert!(Path::new(f.as_str().unwrap()).is_file(), "{f}");
    }
    for f in [
        "build.tcl",
        "manifest.json",
        "params.json",
        "network.json",
        "network.py",
        "run_network.py",
        "NETWORK.md",
        "weights/01_conv1_b.npy",
        "weights/01_conv1_table.npy",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // manifest.json lists the network package too, each file with its size and hash.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(out.join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(f["bytes"], bytes.len(), "{f}");
    }
    let listed = |p: &str| {
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == p)
    };
    assert!(listed("network.py") && listed("weights/01_conv1_b.npy") && listed("build.tcl"));
    let p: SystolicParams =
        serde_json::from_str(&std::fs::read_to_string(out.join("params.json")).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&p).unwrap(), v["params"]);
    // The array requantizes per channel (as `run --engine rtl`): narrow integer outputs, and
    // the requantizer's command fields are arguments the driver checks.
    assert!(
        matches!(
            p.requant,
            accelforge_templates::systolic::RequantMode::PerChannel { .. }
        ),
        "{:?}",
        p.requant
    );
    assert_ne!(p.output_type, p.acc_type);
    let core = rtl::design(&p).unwrap();
    let accel = interface_for_core(
        core.top(),
        &format!("{}_zynq", core.top_name()),
        100.0,
        (1 << 26) - 1,
    )
    .unwrap();
    vivado_stub::run(&out, &vivado_stub::prelude(&accel));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("network.json")).unwrap()).unwrap();
    let ops: Vec<&str> = spec["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["input-quant", "conv", "maxpool", "dense", "dense"]);
    assert_eq!(spec["stages"][1]["gemm"], serde_json::json!([64, 9, 8]));
    let engines = spec["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 1);
    assert_eq!(engines[0]["driver"]["class"], accel.class_name());
    assert_eq!(engines[0]["params"], "params.json");
    assert!(engines[0]["array"]["requant"]["mul_bits"].as_u64().unwrap() > 0);
    assert_eq!(spec["stages"][1]["engine"], 0);
    assert_eq!(
        spec["stages"][1]["array_requant"]["table"],
        "weights/01_conv1_table.npy"
    );
    let module = engines[0]["driver"]["module"].as_str().unwrap();
    let driver = std::fs::read_to_string(out.join(format!("{module}.py"))).unwrap();
    for limit in ["\"op\": (0, 1)", "\"shift\": (0, 63)", "\"round\": (0, 1)"] {
        assert!(
            driver.contains(limit),
            "{limit} not in the driver's ARG_LIMITS"
        );
    }
    let md = std::fs::read_to_string(out.join("NETWORK.md")).unwrap();
    assert!(
        md.contains("| 1 | conv1 | conv | array | 1x8x8 | 8x8x8 | 64, 9, 8 |"),
        "{md}"
    );
    for py in ["network.py", "run_network.py"] {
        let c = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(out.join(py))
            .status()
            .unwrap();
        assert!(c.success(), "{py}");
    }
    if accelforge_test_support::tool_available("verilator") {
        let hdl: Vec<_> = std::fs::read_dir(out.join("hdl"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let lint = accelforge_hdl::tools::lint(&hdl, None).unwrap();
        assert!(lint.is_clean(), "{:?}", lint.diagnostics);
    }
    // Deterministic: the same command writes the same package.
    let again = tmp.path().join("again");
    gen_model("cnn_w8a8_pow2.onnx", &again);
    for f in ["network.json", "weights/03_dense1_table.npy", "params.json"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// `map MODEL --mixed-out out` on the digits (calibration 1,200–1,499, a 2-point drop, the
/// small space, no Verilator) with `extra` options; returns the report.
fn map_mixed(model: &str, extra: &[&str], out: &Path) -> serde_json::Value {
    let (m, x, y) = (
        fixture(model),
        fixture("digits_x.npy"),
        fixture("digits_y.npy"),
    );
    let mut args = vec![
        "map",
        &m,
        "--board",
        "pynq-z2",
        "--calib",
        &x,
        "--labels",
        &y,
        "--skip",
        "1200",
        "--split",
        "300",
        "--accuracy-drop",
        "2",
        "--space",
        "small",
        "--no-rtl",
        "--mixed-out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = cli::accelforge(&args);
    assert!(o.status.success(), "{}", cli::stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// `map` on the digits CNN choosing widths from 8 and 6 bits: conv1 keeps 8-bit activations
/// and the dense layers take 6-bit ones, so the sequential design has two engines.
fn map_two_engines(out: &Path) {
    let report = map_mixed("cnn_w8a8_pow2.onnx", &["--bits", "8,6"], out);
    assert_eq!(
        report["engines"].as_array().unwrap().len(),
        2,
        "the test needs a two-engine choice: {}",
        report["engines"]
    );
}

/// A two-engine mixed-precision design (`gen MODEL.onnx --mixed`): both arrays in one block
/// design, each behind its own DMA, that passes the Vivado stand-in with both modules; every
/// engine's Verilog lints clean; the manifest, `network.json` and the drivers name each
/// engine's cells; a stage runs on the engine the choice gave it.
#[test]
fn two_engine_bundle_passes_the_vivado_stand_in() {
    let tmp = tempfile::tempdir().unwrap();
    let mixed = tmp.path().join("mixed.json");
    map_two_engines(&mixed);
    let out = tmp.path().join("cnn2");
    let v = gen_model_with(
        "cnn_w8a8_pow2.onnx",
        &out,
        &["--mixed", mixed.to_str().unwrap()],
    );
    for f in v["files"].as_array().unwrap() {
        assert!(Path::new(f.as_str().unwrap()).is_file(), "{f}");
    }
    assert_eq!(v["engines"].as_array().unwrap().len(), 2);
    let manifest: accelforge_boards::Manifest =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.engines.len(), 2);
    for f in &manifest.files {
        let bytes = std::fs::read(out.join(&f.path)).unwrap();
        assert_eq!(f.bytes, bytes.len() as u64, "{}", f.path);
    }
    // The budget is both engines together.
    let budget = manifest.budget.as_ref().unwrap();
    let dsp: u64 = manifest
        .engines
        .iter()
        .map(|e| e.estimate.unwrap().dsp)
        .sum();
    assert_eq!(budget.estimate.dsp, dsp);
    assert!(budget.fits);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mixed).unwrap()).unwrap();
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("network.json")).unwrap()).unwrap();
    for (n, e) in manifest.engines.iter().enumerate() {
        assert_eq!(e.engine, n);
        assert_eq!(e.accel_cell, format!("accel_{n}"));
        assert_eq!(e.dma_cell, format!("axi_dma_{n}"));
        // Each engine is the choice's engine, with its parameters file.
        let p: SystolicParams = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("params_{n}.json"))).unwrap(),
        )
        .unwrap();
        let chosen: SystolicParams =
            serde_json::from_value(report["engines"][n]["params"].clone()).unwrap();
        assert_eq!(p, chosen);
        assert_eq!(spec["engines"][n]["params"], format!("params_{n}.json"));
        assert_eq!(spec["engines"][n]["driver"]["module"], e.driver_module);
        let driver = std::fs::read_to_string(out.join(format!("{}.py", e.driver_module))).unwrap();
        assert!(
            driver.contains(&format!("IP_NAME = \"accel_{n}\""))
                && driver.contains(&format!("DMA_NAME = \"axi_dma_{n}\""))
                && driver.contains(&format!("BITSTREAM = \"{}.bit\"", manifest.base_name)),
            "{driver}"
        );
        assert_eq!(
            spec["engines"][n]["array"]["a_bits"],
            p.resolve().unwrap().ta.width()
        );
        // The stages the choice gave this engine name it.
        for layer in report["engines"][n]["layers"].as_array().unwrap() {
            let st = spec["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == *layer)
                .unwrap();
            assert_eq!(st["engine"], n, "{layer}");
        }
    }
    let mut prelude = String::new();
    for (n, e) in manifest.engines.iter().enumerate() {
        let p = vivado_stub::prelude(&e.accel);
        if n == 0 {
            prelude = p;
        } else {
            prelude.extend(
                p.lines()
                    .filter(|l| l.starts_with("::stub::declare_module"))
                    .map(|l| format!("{l}\n")),
            );
        }
    }
    let said = vivado_stub::run(&out, &prelude);
    assert!(said.contains("VIVADO-STUB OK"), "{said}");
    let tcl = std::fs::read_to_string(out.join("build.tcl")).unwrap();
    for needle in [
        "-reference $top_module accel_0",
        "-reference $top_module_1 accel_1",
        "[get_bd_intf_pins ctrl_smc/M03_AXI] [get_bd_intf_pins accel_1/s_axi_control]",
        "[get_bd_intf_pins axi_dma_1/M_AXI_S2MM] [get_bd_intf_pins data_smc/S03_AXI]",
    ] {
        assert!(tcl.contains(needle), "{needle} not in build.tcl");
    }
    let md = std::fs::read_to_string(out.join("NETWORK.md")).unwrap();
    assert!(md.contains("| conv1 | conv | engine "), "{md}");
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        readme.contains("| 1 | `accel_1` | `axi_dma_1` |"),
        "{readme}"
    );
    if accelforge_test_support::tool_available("verilator") {
        // Each engine's sources lint clean with its own top.
        for e in &manifest.engines {
            let stem = e.accel.name.trim_end_matches("_zynq");
            let hdl: Vec<_> = std::fs::read_dir(out.join("hdl"))
                .unwrap()
                .map(|f| f.unwrap().path())
                .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(stem))
                .collect();
            assert_eq!(hdl.len(), 3, "{hdl:?}");
            let lint = accelforge_hdl::tools::lint(&hdl, Some(&e.accel.name)).unwrap();
            assert!(lint.is_clean(), "{:?}", lint.diagnostics);
        }
    }
}

/// `network.py` on the PYNQ stand-in, whose accelerator decodes the operand stream, multiplies
/// and encodes the result (tests/python/fake_gemm_overlay.py): the outputs of 200 digits equal
/// `accelforge run --engine golden` exactly, for a power-of-two CNN, a float-scale MLP, a
/// QCDQ CNN and a mixed-precision MLP (`--mixed`); the example script prints the accuracy.
#[test]
fn network_py_on_a_fake_overlay_equals_the_golden_engine() {
    if !numpy() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A mixed-precision choice on one engine (`map MODEL.onnx --mixed-out`): `gen` and `run`
    // both take it.
    let mixed = tmp.path().join("mixed.json");
    map_mixed("mlp_w8a8_pow2.onnx", &["--engines", "1"], &mixed);
    let mixed_args = ["--mixed", mixed.to_str().unwrap()];
    // A mixed-precision choice on two engines: conv1 on one array, the dense layers on the
    // other, each decoded by the stand-in with its own operand widths.
    let mixed2 = tmp.path().join("mixed2.json");
    map_two_engines(&mixed2);
    let mixed2_args = ["--mixed", mixed2.to_str().unwrap()];
    // The last model leaves its input float: both commands quantize it with the same type.
    for (case, (model, extra)) in [
        ("mlp_w8a8_pow2.onnx", &mixed_args[..]),
        ("cnn_w8a8_pow2.onnx", &mixed2_args[..]),
        ("cnn_w8a8_pow2.onnx", &[][..]),
        ("mlp_w8a8_float.onnx", &[]),
        ("cnn_int8_qcdq.onnx", &[]),
        // Zero points (input 10 read by the padding, logits 128) and global average pooling.
        ("cnn_uint8_qcdq_zp.onnx", &[]),
        ("cnn_w8a8_gap.onnx", &[]),
        // A final Softmax, in float32 numpy.
        ("mlp_w8a8_pow2_softmax.onnx", &[]),
        (
            "mlp_w8a8_pow2_floatin.onnx",
            &["--input-type", "ap_ufixed<8,4>"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp
            .path()
            .join(format!("{case}_{}", model.trim_end_matches(".onnx")));
        gen_model_with(model, &out, extra);
        let golden = tmp.path().join(format!("{case}_{model}.golden.npy"));
        let (fx, fi) = (fixture(model), fixture("digits_x.npy"));
        let mut args = vec![
            "run",
            &fx,
            "--input",
            &fi,
            "--out",
            golden.to_str().unwrap(),
            "--limit",
            "200",
        ];
        args.extend(extra);
        let o = cli::accelforge(&args);
        assert!(o.status.success(), "{}", cli::stderr(&o));
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fpga-boards/tests/fake_pynq.py"
            ),
            out.join("pynq.py"),
        )
        .unwrap();
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/fake_gemm_overlay.py"
            ),
            out.join("fake_gemm_overlay.py"),
        )
        .unwrap();
        let install = "
import importlib, json, sys
import numpy as np
import fake_gemm_overlay
spec = json.load(open('network.json'))
drvs, stats = [], []
for e in spec['engines']:
    p = json.load(open(e['params']))
    drv = importlib.import_module(e['driver']['module'])
    drvs.append(drv)
    stats.append(fake_gemm_overlay.install(drv, e['array'], p['input_type'].startswith('ap_fixed'),
                                           p['weight_type'].startswith('ap_fixed'), dma=drv.DMA_NAME))
";
        let check = format!(
            "{install}
import network
x = np.load('{x}')[:200]
net = network.Network()
y = net.run(x)
g = np.load('{g}')
assert y.dtype == np.float32 and g.dtype == np.float32, (y.dtype, g.dtype)
assert y.shape == g.shape == (200, spec['out_len']), (y.shape, g.shape)
bad = int((y != g).sum())
if spec['softmax']:
    # numpy's float32 exp is not Rust's: the last bits of a Softmax may differ, the integers
    # before it may not (checked by the other models), nor the class.
    assert (y.argmax(1) == g.argmax(1)).all() and float(abs(y - g).max()) <= 3e-7, bad
else:
    assert bad == 0, '%d of %d outputs differ from the golden engine' % (bad, y.size)
# Every array layer went through its engine: its table loaded, then one GEMM command
# requantized by the array.
for i, s in enumerate(stats):
    mine = sum(st['op'] in ('conv', 'dense') and st['engine'] == i for st in spec['stages'])
    assert s['tables'] == s['commands'] == mine > 0, (i, stats)
layers = sum(st['op'] in ('conv', 'dense') for st in spec['stages'])
assert net.commands == 2 * layers, net.commands
assert net.engine_commands == [2 * s['commands'] for s in stats], (net.engine_commands, stats)
# A smaller DMA limit splits the commands further (the driver refuses larger transfers).
for drv in drvs:
    drv.MAX_TRANSFER_BYTES = 8192
first = net.commands
net.commands = 0
y = net.run(x[:20])
assert (y == g[:20]).all() or spec['softmax']
# The convolutions' 1280-row operand streams (about 11 kB) no longer fit one transfer.
assert net.commands > first or not any(s['op'] == 'conv' for s in spec['stages']), net.commands
print('EQUAL', sum(s['macs'] for s in stats), 'ENGINES', len(stats))
",
            x = fixture("digits_x.npy"),
            g = golden.display()
        );
        let said = python(&out, &check);
        assert!(said.contains("EQUAL"), "{model}: {said}");
        let engines = if extra == mixed2_args { 2 } else { 1 };
        assert!(
            said.contains(&format!("ENGINES {engines}")),
            "{model}: {said}"
        );
        // The example script, as a user runs it on the board.
        let script = format!(
            "{install}
import runpy
sys.argv = ['run_network.py', '{x}', '--labels', '{l}', '--limit', '50']
runpy.run_path('run_network.py', run_name='__main__')
",
            x = fixture("digits_x.npy"),
            l = fixture("digits_y.npy")
        );
        let said = python(&out, &script);
        assert!(
            said.contains("50 inputs") && said.contains("accuracy:"),
            "{model}: {said}"
        );
    }
}

/// The stream layout of an array as `gen MODEL.onnx` writes it into network.json.
fn array_json(r: &Resolved) -> serde_json::Value {
    serde_json::json!({
        "rows": r.r, "cols": r.c,
        "dataflow": if r.p.dataflow == Dataflow::Ws { "ws" } else { "os" },
        "stream_bits": r.p.stream_bits, "max_n_chunk": r.p.max_n_chunk, "max_k": r.p.max_k,
        "ws_m_block": r.ws_m_block,
        "a_bits": r.ta.width(), "b_bits": r.tb.width(), "out_bits": r.tout.width(),
        "out_signed": r.tout.is_signed(),
        "a_per_beat": r.ea, "b_per_beat": r.eb, "out_per_beat": r.eo,
    })
}

fn beat_bytes(r: &Resolved, beats: &[model::Beat]) -> Vec<u8> {
    let per = (r.p.stream_bits / 8) as usize;
    beats
        .iter()
        .flat_map(|(words, _)| {
            let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            b.truncate(per);
            b
        })
        .collect()
}

/// `network.py` packs a command's operands into exactly the bytes of the template's model of
/// the input stream (which the RTL tests hold the core to), and unpacks the model's output
/// stream into C, for both dataflows, partial tiles and chunks, signed and unsigned operands.
#[test]
fn network_py_packs_streams_as_the_core_reads_them() {
    use accelforge_templates::systolic::layer::Gemm;
    use accelforge_templates::systolic::sim::random_gemm_operands;
    use ndarray_npy::{ReadNpyExt as _, WriteNpyExt as _};
    if !numpy() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        SystolicParams {
            rows: 8,
            cols: 16,
            input_type: "ap_ufixed<8,8>".into(),
            acc_type: "ap_fixed<23,23>".into(),
            output_type: "ap_fixed<23,23>".into(),
            max_k: 128,
            max_n_chunk: 16,
            ..SystolicParams::default()
        },
        SystolicParams {
            rows: 3,
            cols: 4,
            max_k: 32,
            max_n_chunk: 8,
            input_type: "ap_fixed<5,5>".into(),
            acc_type: "ap_fixed<19,19>".into(),
            output_type: "ap_fixed<19,19>".into(),
            stream_bits: 32,
            ..SystolicParams::default()
        },
        SystolicParams {
            rows: 3,
            cols: 4,
            max_k: 32,
            max_n_chunk: 8,
            dataflow: Dataflow::Ws,
            acc_type: "ap_fixed<24,24>".into(),
            output_type: "ap_fixed<24,24>".into(),
            ..SystolicParams::default()
        },
    ];
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/fpga-boards/src/zynq");
    for (i, p) in cases.iter().enumerate() {
        let r = p.resolve().unwrap();
        for (j, g) in [Gemm { m: 11, k: 7, n: 21 }, Gemm { m: 24, k: 30, n: 5 }]
            .iter()
            .enumerate()
        {
            let (a, b) = random_gemm_operands(&r, g, (10 * i + j) as u64);
            let c = model::gemm(&r, &a, &b).unwrap();
            let dir = tmp.path().join(format!("{i}_{j}"));
            std::fs::create_dir_all(&dir).unwrap();
            let save = |name: &str, x: &ndarray::Array2<i64>| {
                x.write_npy(std::fs::File::create(dir.join(name)).unwrap())
                    .unwrap();
            };
            save("a.npy", &a);
            save("b.npy", &b);
            std::fs::write(dir.join("array.json"), array_json(&r).to_string()).unwrap();
            std::fs::write(
                dir.join("out.bin"),
                beat_bytes(&r, &model::output_beats(&r, g, &c)),
            )
            .unwrap();
            python(
                &dir,
                &format!(
                    "
import json, sys
import numpy as np
sys.path.insert(0, '{lib}')
import network
geo = network.ArrayGeometry(json.load(open('array.json')))
a, b = np.load('a.npy'), np.load('b.npy')
open('in.bin', 'wb').write(geo.input_stream(a, b).tobytes())
data = np.fromfile('out.bin', dtype=np.uint8)
assert geo.output_beats({m}, {n}) * {sb} // 8 == data.nbytes
np.save('c.npy', geo.unpack_output(data, {m}, {n}))
",
                    m = g.m,
                    n = g.n,
                    sb = p.stream_bits
                ),
            );
            let want = beat_bytes(&r, &model::input_beats(&r, g, &a, &b).unwrap());
            let got = std::fs::read(dir.join("in.bin")).unwrap();
            assert_eq!(got.len(), want.len(), "case {i} {g}: stream length");
            assert!(got == want, "case {i} {g}: input stream bytes differ");
            let back =
                ndarray::Array2::<i64>::read_npy(std::fs::File::open(dir.join("c.npy")).unwrap())
                    .unwrap();
            assert_eq!(back, c, "case {i} {g}: unpacked C");
        }
    }
    // The per-channel requantizer's table-load stream: one and two beats per entry, negative
    // fields, both at their extremes.
    for (i, (stream_bits, mul_bits, add_bits)) in [(64u32, 20u32, 40u32), (32, 24, 30)]
        .into_iter()
        .enumerate()
    {
        let p = SystolicParams {
            rows: 2,
            cols: 4,
            output_type: "ap_fixed<8,8>".into(),
            stream_bits,
            requant: accelforge_templates::systolic::RequantMode::PerChannel {
                max_channels: 6,
                mul_bits,
                add_bits,
            },
            ..SystolicParams::default()
        };
        let r = p.resolve().unwrap();
        let (mmax, amax) = ((1i64 << (mul_bits - 1)) - 1, (1i64 << (add_bits - 1)) - 1);
        let table = [
            (mmax, -amax - 1),
            (-mmax - 1, amax),
            (-1, -1),
            (0, 0),
            (12345, -678901),
            (-3, 99),
        ];
        let dir = tmp.path().join(format!("table{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let flat: Vec<i64> = table.iter().flat_map(|&(m, a)| [m, a]).collect();
        ndarray::Array2::from_shape_vec((table.len(), 2), flat)
            .unwrap()
            .write_npy(std::fs::File::create(dir.join("t.npy")).unwrap())
            .unwrap();
        let mut spec = array_json(&r);
        let pc = requant::per_channel(&r).unwrap();
        spec["requant"] = serde_json::json!({
            "mul_bits": pc.mul_bits, "add_bits": pc.add_bits,
            "beats_per_entry": pc.beats_per_entry, "max_channels": pc.max_channels,
        });
        std::fs::write(dir.join("array.json"), spec.to_string()).unwrap();
        python(
            &dir,
            &format!(
                "
import json, sys
import numpy as np
sys.path.insert(0, '{lib}')
import network
geo = network.ArrayGeometry(json.load(open('array.json')))
open('table.bin', 'wb').write(geo.table_stream(np.load('t.npy')).tobytes())
"
            ),
        );
        let want = beat_bytes(&r, &requant::table_beats(&r, &table).unwrap());
        let got = std::fs::read(dir.join("table.bin")).unwrap();
        assert!(
            got == want,
            "table case {i}: network.py's table stream differs from the template's"
        );
    }
}

/// Refusals name the problem and write nothing.
#[test]
fn gen_model_refusals_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = out.to_str().unwrap();
    cli::refused(
        &["gen", "foo", "--board", "pynq-z2", "--out", o],
        &["`gen foo`", "systolic", "moe", "MODEL.onnx"],
    );
    cli::refused(
        &[
            "gen",
            &fixture("mlp_w8a8_pow2_floatin.onnx"),
            "--board",
            "pynq-z2",
            "--out",
            o,
        ],
        &["--input-type"],
    );
    cli::refused(
        &["gen", &fixture("cnn_w8a8_pow2.onnx"), "--out", o],
        &["--board"],
    );
    cli::refused(
        &[
            "gen",
            &fixture("cnn_w8a8_pow2.onnx"),
            "--board",
            "no-such-board",
            "--out",
            o,
        ],
        &["no-such-board", "pynq-z2"],
    );
    cli::refused(
        &["gen", "missing.onnx", "--board", "pynq-z2", "--out", o],
        &["missing.onnx"],
    );
    assert!(!out.exists(), "nothing half-written");
    // A float input with a type works; a second run needs --force.
    let args = [
        "gen",
        &fixture("mlp_w8a8_pow2_floatin.onnx"),
        "--board",
        "pynq-z2",
        "--input-type",
        "ap_ufixed<8,4>",
        "--out",
        o,
    ];
    let r = cli::accelforge(&args);
    assert!(r.status.success(), "{}", cli::stderr(&r));
    let spec = std::fs::read_to_string(out.join("network.json")).unwrap();
    assert!(spec.contains("ap_ufixed<8,4>"), "{spec}");
    cli::refused(&args, &["--force"]);
    let mut forced = args.to_vec();
    forced.push("--force");
    let r = cli::accelforge(&forced);
    assert!(r.status.success(), "{}", cli::stderr(&r));
    // The board database and the clock as for `gen systolic`.
    let mut clocked = forced.clone();
    clocked.extend(["--clock-mhz", "125"]);
    let r = cli::accelforge(&clocked);
    assert!(r.status.success(), "{}", cli::stderr(&r));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("network.json")).unwrap()).unwrap();
    assert_eq!(spec["clock_mhz"], 125.0);
    let mut missing_dir = forced.clone();
    missing_dir.extend(["--boards-dir", "/no/such/boards"]);
    cli::refused(&missing_dir, &["/no/such/boards"]);
    // `gen systolic` still parses as before.
    cli::refused(&["gen", "systolic", "--rows", "0", "--out", o], &["rows"]);
}

/// The wrapped Zynq top runs the whole CNN in Verilator the way the PYNQ driver drives it, with
/// the array requantizing per channel: per array layer a table-load command (op = 1, the
/// table's beats in, nothing out), then the GEMM with m/k/n and the requantizer's registers
/// over AXI4-Lite, the operand stream in (with DMA-like gaps), the layer's output integers
/// drained to TLAST (with stalls), ap_done polled; the host stages in between. Every layer's
/// outputs equal the golden engine's requantization and the network's outputs equal the golden
/// engine's. A small array (4x4) keeps the Verilator build short; the stream packing that
/// reaches it is the one `network.py` produces (see the byte-for-byte test above).
#[test]
fn wrapped_top_runs_the_whole_network_over_axi() {
    use accelforge_boards::zynq::wrapper::wrap;
    use accelforge_sim::{
        AxiLiteMaster, AxisDriver, AxisMonitor, AxisNames, Beat, BuildOptions, DesignSpec, build,
    };
    use accelforge_templates::systolic::layer::Gemm;
    use ndarray_npy::ReadNpyExt as _;
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    let net = accelforge_models::load(&std::fs::read(fixture("cnn_w8a8_pow2.onnx")).unwrap(), None)
        .unwrap();
    // The array requantizes per channel, as the bundle's array does: every layer's folded
    // (multiplier, offset) table fits its fields, and its outputs fit int8.
    let forms: Vec<_> = net
        .folded_forms()
        .into_iter()
        .map(|(si, f, _)| (si, f.unwrap()))
        .collect();
    let bits = |v: i64| 65 - v.unsigned_abs().leading_zeros();
    let (mut mul_bits, mut add_bits) = (1, 1);
    let (mut lo, mut hi) = (0i64, 0i64);
    for (_, f) in &forms {
        (lo, hi) = (lo.min(f.lo), hi.max(f.hi));
        for &(m, a) in &f.chans {
            mul_bits = mul_bits.max(bits(m));
            add_bits = add_bits.max(bits(a));
        }
    }
    let p = SystolicParams {
        rows: 4,
        cols: 4,
        input_type: "ap_ufixed<8,8>".into(),
        weight_type: "ap_fixed<8,8>".into(),
        acc_type: "ap_fixed<24,24>".into(),
        // The narrowest type of the layers' outputs, as `gen` chooses it.
        output_type: match (lo, hi) {
            (0.., ..=255) => "ap_ufixed<8,8>",
            (-128.., ..=127) => "ap_fixed<8,8>",
            _ => "ap_fixed<16,16>",
        }
        .into(),
        max_k: 128,
        max_n_chunk: 8,
        requant: accelforge_templates::systolic::RequantMode::PerChannel {
            max_channels: forms
                .iter()
                .map(|(_, f)| f.chans.len() as u32)
                .max()
                .unwrap(),
            mul_bits,
            add_bits,
        },
        ..SystolicParams::default()
    };
    let r = p.resolve().unwrap();
    // The network's values fit these types (what `gen` fits the mapped array to).
    for l in net.layers().iter().filter(|l| l.runs_on == "array") {
        let (a, w) = (l.in_range.unwrap(), l.weight_range.unwrap());
        assert!(a.0 >= 0 && a.1 <= 255 && w.0 >= -128 && w.1 <= 127, "{l:?}");
        assert!(l.gemm().unwrap().1 <= 128);
    }
    let core = rtl::design(&p).unwrap();
    let accel = interface_for_core(
        core.top(),
        &format!("{}_zynq", core.top_name()),
        100.0,
        (1 << 26) - 1,
    )
    .unwrap();
    let wrapped = wrap(&core, &accel).unwrap();
    let opts = BuildOptions {
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache")),
        ..BuildOptions::default()
    };
    let compiled = build(&DesignSpec::from_hdl(&wrapped), &opts).unwrap();
    let mut sim = compiled.sim().unwrap();
    sim.reset(3).unwrap();
    let mut lite = AxiLiteMaster::new(&sim, "s_axi_control_", 11, 0.2).unwrap();
    let mut drv = AxisDriver::new(&sim, AxisNames::prefixed("s_axis_in_"), 12, 0.2).unwrap();
    let mut mon = AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_out_"), 13, 0.2).unwrap();
    let offset = |name: &str| {
        u64::from(
            accel
                .args
                .iter()
                .find(|a| a.name == name)
                .unwrap_or_else(|| panic!("no argument {name}"))
                .offset,
        )
    };

    let x = ndarray::ArrayD::<f32>::read_npy(std::fs::File::open(fixture("digits_x.npy")).unwrap())
        .unwrap();
    let x = x.as_slice().unwrap();
    let per = net.input_len();
    let batch = 4;
    let mut cur: Vec<Vec<i32>> = vec![Vec::new(); batch];
    let mut total = 0u64;
    for (si, st) in net.stages.iter().enumerate() {
        if !st.is_array() {
            for (i, c) in cur.iter_mut().enumerate() {
                *c = st.run_host(&x[i * per..(i + 1) * per], c).unwrap();
            }
            continue;
        }
        // The layer's table first (a command that moves no output), then the batch's GEMM
        // rows stacked in one command with the layer's requantizer settings, as network.py
        // issues them.
        let (m, k, n) = st.gemm_shape().unwrap();
        let f = &forms.iter().find(|(i, _)| *i == si).unwrap().1;
        for (name, v) in [("op", 1u32), ("n", n as u32), ("m", 1), ("k", 1)] {
            lite.write(offset(name), v);
        }
        lite.write(0x00, 1);
        for (data, last) in requant::table_beats(&r, &f.chans).unwrap() {
            drv.push(Beat { data, last });
        }
        let mut table_cycles = 0u64;
        loop {
            sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                .unwrap();
            table_cycles += 1;
            assert!(table_cycles < 100_000, "layer {si}: the table load stalled");
            if drv.pending() == 0 && lite.is_idle() {
                let before = lite.results().len();
                lite.read(0x00);
                while lite.results().len() == before {
                    sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                        .unwrap();
                    table_cycles += 1;
                }
                if lite.results().last().unwrap().data & 0b10 != 0 {
                    break;
                }
            }
        }
        assert!(
            mon.received().is_empty(),
            "layer {si}: a table load sends nothing back"
        );
        let a_rows: Vec<i64> = cur.iter().flat_map(|c| st.gemm_a(c).unwrap()).collect();
        let a = ndarray::Array2::from_shape_vec((batch * m, k), a_rows).unwrap();
        let b = ndarray::Array2::from_shape_vec((k, n), st.gemm_b().unwrap()).unwrap();
        let g = Gemm {
            m: (batch * m) as u32,
            k: k as u32,
            n: n as u32,
        };
        let cfg = requant::RqConfig {
            shift: f.shift,
            round_even: f.round_even,
            lo: f.lo as i32,
            hi: f.hi as i32,
        };
        let want_q = requant::gemm_per_channel(&r, &a, &b, &f.chans, &cfg).unwrap();
        let expected = model::output_beats(&r, &g, &want_q).len();
        for (name, v) in [
            ("m", g.m),
            ("k", g.k),
            ("n", g.n),
            ("op", 0),
            ("shift", f.shift),
            ("round", u32::from(f.round_even)),
            ("lo", cfg.lo as u32),
            ("hi", cfg.hi as u32),
        ] {
            lite.write(offset(name), v);
        }
        lite.write(0x00, 1);
        for (data, last) in model::input_beats(&r, &g, &a, &b).unwrap() {
            drv.push(Beat { data, last });
        }
        let mut cycles = 0u64;
        let mut done = false;
        while !done {
            sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                .unwrap();
            cycles += 1;
            assert!(cycles < 2_000_000, "layer {si} stalled");
            // Poll ap_done once the results are in, as the driver does after the DMA wait.
            if mon.received().len() >= expected && lite.is_idle() {
                let before = lite.results().len();
                lite.read(0x00);
                while lite.results().len() == before {
                    sim.step_agents(&mut [&mut lite, &mut drv, &mut mon])
                        .unwrap();
                    cycles += 1;
                }
                done = lite.results().last().unwrap().data & 0b10 != 0;
            }
        }
        assert!(lite.take_results().iter().all(|x| x.resp == 0), "OKAY");
        mon.check_protocol(&sim).unwrap();
        let beats: Vec<model::Beat> = mon
            .take_received()
            .into_iter()
            .map(|b| (b.data, b.last))
            .collect();
        assert_eq!(beats.len(), expected, "layer {si}: output beats");
        assert!(
            beats.last().unwrap().1,
            "layer {si}: TLAST on the last beat"
        );
        let c = model::unpack_output(&r, &g, &beats).unwrap();
        assert_eq!(
            c, want_q,
            "layer {si}: the template's golden requantized GEMM"
        );
        // The array's outputs are the golden engine's requantized integers.
        let acc = a.dot(&b);
        for (i, q) in cur.iter_mut().enumerate() {
            let range = i * m * n..(i + 1) * m * n;
            let want = st
                .requantize(&acc.as_slice().unwrap()[range.clone()])
                .unwrap();
            let got: Vec<i64> = c.as_slice().unwrap()[range].to_vec();
            let got = match st {
                accelforge_models::Stage::Conv { geom: gm, .. } => (0..gm.o)
                    .flat_map(|o| (0..gm.oh * gm.ow).map(move |px| (px, o)))
                    .map(|(px, o)| got[px * gm.o + o] as i32)
                    .collect::<Vec<i32>>(),
                _ => got.iter().map(|&v| v as i32).collect(),
            };
            assert_eq!(got, want, "layer {si}, input {i}");
            *q = got;
        }
        eprintln!("layer {si}: table load {table_cycles} cycles over AXI");
        let model_cycles = accelforge_templates::systolic::cost::cycles(&p, &g)
            .ok()
            .map(|e| e.cycles);
        eprintln!("layer {si} {g}: {cycles} cycles over AXI (model {model_cycles:?})");
        total += cycles;
    }
    for (i, q) in cur.iter().enumerate() {
        let want = net.run(&x[i * per..(i + 1) * per]).unwrap();
        assert_eq!(net.dequantize(q), want, "input {i}");
    }
    eprintln!("whole network, {batch} inputs: {total} cycles");
}
