//! A byte-for-byte guard on the MoE generator beyond the two golden snapshots: the Verilog of
//! every MoE configuration the tests exercise (plus the calibration grid and a grid of valid
//! edge parameters) is hashed with SHA-256 and compared with the committed list in
//! `tests/data/moe_rtl_digests.txt`, one line per configuration. The memory plan and resource
//! model the cost model reports are hashed alongside, so a refactor that moves the plan between
//! modules cannot change what `estimate` or the mapper see either.
//!
//! A deliberate change to the hardware is recorded with `ACCELFORGE_UPDATE_DIGESTS=1 cargo test
//! --release -p accelforge-templates --test moe_rtl_digest` and explained in its commit; any
//! other difference fails.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

#[path = "moe_common.rs"]
mod common;

use std::fmt::Write as _;

use accelforge_hdl::Design;
use accelforge_templates::moe::params::{MemStyle, MoeLayout};
use accelforge_templates::moe::{FfnActivation, GateMode, MoeParams, MoeTypes, calibration, cost};
use accelforge_templates::qfx::{Overflow, QType, Quant};
use common::{design_text, edge_grid, params};
use sha2::{Digest, Sha256};

const DIGESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/moe_rtl_digests.txt"
);

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .fold(String::new(), |mut o, b| {
            let _ = write!(o, "{b:02x}");
            o
        })
}

fn qt(w: u32, i: i32) -> QType {
    QType::fixed(w, i)
        .unwrap()
        .with_modes(Quant::Rnd, Overflow::Sat, 0)
        .unwrap()
}

/// The configurations of the MoE tests (rtl_snapshots, moe_core, moe_sweep, moe_latency,
/// moe_perf, moe_zynq, moe_calibration), each under a label naming where it comes from.
fn test_configs() -> Vec<(String, MoeParams)> {
    let w16 = MoeTypes {
        weight: qt(16, 2),
        ..MoeTypes::default()
    };
    let w12 = MoeTypes {
        weight: qt(12, 2),
        ..MoeTypes::default()
    };
    let with = |mut p: MoeParams, f: &dyn Fn(&mut MoeParams)| {
        f(&mut p);
        p
    };
    let renorm = |p: &mut MoeParams| p.gate_mode = GateMode::Renorm;
    let gelu = |p: &mut MoeParams| p.activation = FfnActivation::Gelu;
    let renorm_gelu = |p: &mut MoeParams| {
        p.gate_mode = GateMode::Renorm;
        p.activation = FfnActivation::Gelu;
    };
    let wide = |p: &mut MoeParams| p.types = w16;
    let zynq_small = |top_k| params(8, 8, 16, 4, top_k, 2, 2, 2, 8);
    let perf_small = |bytes| params(16, 16, 32, 8, 2, 4, 4, bytes, 16);
    let mut v = vec![
        ("default".into(), MoeParams::default()),
        (
            "snapshot_top1_narrow".into(),
            params(4, 8, 8, 2, 1, 2, 2, 2, 4),
        ),
        (
            "sweep_e4_a".into(),
            with(params(8, 8, 16, 4, 1, 2, 2, 2, 8), &wide),
        ),
        (
            "sweep_e4_b".into(),
            with(params(12, 16, 32, 4, 2, 4, 2, 4, 5), &renorm_gelu),
        ),
        ("sweep_e8_a".into(), params(16, 16, 32, 8, 2, 2, 4, 8, 16)),
        (
            "sweep_e8_b".into(),
            with(params(8, 32, 64, 8, 1, 8, 4, 16, 8), &gelu),
        ),
        (
            "sweep_e16_a".into(),
            with(params(16, 16, 16, 16, 2, 4, 4, 4, 2), &renorm),
        ),
        ("sweep_e16_b".into(), params(5, 16, 32, 16, 1, 1, 1, 1, 3)),
        (
            "sweep_back_pressure".into(),
            params(8, 16, 32, 4, 2, 4, 4, 4, 3),
        ),
        (
            "sweep_npot_a".into(),
            with(params(7, 24, 40, 4, 2, 2, 2, 2, 3), &wide),
        ),
        (
            "sweep_npot_b".into(),
            with(params(12, 48, 96, 8, 1, 4, 8, 8, 5), &gelu),
        ),
        (
            "sweep_npot_c".into(),
            with(params(10, 40, 24, 16, 2, 8, 4, 16, 4), &renorm),
        ),
        (
            "sweep_npot_experts_a".into(),
            with(params(9, 24, 48, 6, 2, 2, 2, 2, 9), &renorm),
        ),
        (
            "sweep_npot_experts_b".into(),
            params(8, 48, 40, 12, 2, 4, 8, 4, 2),
        ),
        ("latency_a".into(), params(16, 16, 32, 8, 2, 4, 4, 1, 16)),
        (
            "latency_last_expert".into(),
            params(6, 8, 16, 4, 1, 2, 2, 2, 8),
        ),
        (
            "latency_prefetch".into(),
            params(16, 16, 32, 8, 2, 4, 4, 2, 16),
        ),
        (
            "latency_beyond_window".into(),
            params(16, 16, 32, 8, 2, 4, 4, 16, 16),
        ),
        ("perf_small_b1".into(), perf_small(1)),
        ("perf_small_b4".into(), perf_small(4)),
        ("perf_small_b16".into(), perf_small(16)),
        (
            "perf_yosys_small".into(),
            params(4, 8, 16, 4, 2, 2, 2, 2, 4),
        ),
        (
            "perf_vit_s".into(),
            params(16, 384, 1536, 16, 2, 8, 8, 64, 16),
        ),
        ("zynq_small_k1".into(), zynq_small(1)),
        ("zynq_small_k2".into(), zynq_small(2)),
        (
            "zynq_k2_w12_q3".into(),
            MoeParams {
                ddr_bytes_per_cycle: 4,
                queue_depth: 3,
                types: w12,
                ..zynq_small(2)
            },
        ),
        (
            "zynq_kv260_wide".into(),
            MoeParams {
                types: w12,
                ddr_bytes_per_cycle: 8,
                lanes: 4,
                simd: 2,
                ..zynq_small(2)
            },
        ),
        (
            "calibration_off_grid".into(),
            MoeParams {
                act_table_bits: 7,
                ..with(params(12, 32, 32, 8, 1, 2, 4, 4, 12), &renorm_gelu)
            },
        ),
    ];
    for (i, p) in calibration::grid().into_iter().enumerate() {
        v.push((format!("calibration_grid_{i:02}"), p));
    }
    v
}

/// A deterministic grid of valid parameters: the edge grid of `moe_params_grid` (small shapes,
/// every queue/token/stream corner) crossed with both gate modes and activations on a subset,
/// plus non-power-of-two layer shapes.
fn grid_configs() -> Vec<(String, MoeParams)> {
    let mut v: Vec<(String, MoeParams)> = edge_grid(&[2, 3, 5, 8], &[2, 3, 16])
        .into_iter()
        .filter(|(_, p)| p.validate().is_ok())
        .map(|(label, p)| (format!("grid_{label}"), p))
        .collect();
    for (gm, gn) in [(GateMode::Softmax, "softmax"), (GateMode::Renorm, "renorm")] {
        for (act, an) in [(FfnActivation::Relu, "relu"), (FfnActivation::Gelu, "gelu")] {
            for (d_model, d_ff, experts, lanes, simd) in
                [(12, 20, 6, 2, 4), (24, 36, 12, 4, 2), (48, 16, 8, 8, 8)]
            {
                let p = MoeParams {
                    tokens: 6,
                    d_model,
                    d_ff,
                    experts,
                    lanes,
                    simd,
                    queue_depth: 4,
                    ddr_bytes_per_cycle: 3,
                    gate_mode: gm,
                    activation: act,
                    ..MoeParams::default()
                };
                if p.validate().is_ok() {
                    v.push((
                        format!("grid_{gn}_{an}_d{d_model}_f{d_ff}_e{experts}_{lanes}x{simd}"),
                        p,
                    ));
                }
            }
        }
    }
    v
}

/// `label rtl <sha>` and `label cost <sha>` lines of every configuration.
fn digests() -> String {
    let mut out = String::new();
    let mut configs = test_configs();
    configs.extend(grid_configs());
    for (label, p) in configs {
        p.validate()
            .unwrap_or_else(|e| panic!("{label}: invalid params: {e}"));
        let d = accelforge_templates::moe::rtl::design(&p)
            .unwrap_or_else(|e| panic!("{label}: generation failed: {e}"));
        let plan = format!(
            "{:?}\n{:?}",
            cost::memories(&p),
            cost::resources(&p).unwrap()
        );
        writeln!(out, "{label} rtl {}", sha(&design_text(&d))).unwrap();
        writeln!(out, "{label} cost {}", sha(&plan)).unwrap();
    }
    out
}

#[test]
fn moe_rtl_matches_committed_digests() {
    let got = digests();
    if std::env::var_os("ACCELFORGE_UPDATE_DIGESTS").is_some_and(|v| v == "1") {
        std::fs::write(DIGESTS, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(DIGESTS)
        .unwrap_or_else(|e| panic!("{DIGESTS}: {e} (ACCELFORGE_UPDATE_DIGESTS=1 writes it)"));
    let want_lines: Vec<&str> = want.lines().collect();
    let got_lines: Vec<&str> = got.lines().collect();
    let diff: Vec<String> = got_lines
        .iter()
        .zip(&want_lines)
        .filter(|(g, w)| g != w)
        .map(|(g, w)| format!("  got  {g}\n  want {w}"))
        .collect();
    assert!(
        diff.is_empty() && got_lines.len() == want_lines.len(),
        "{} of {} digests differ ({} lines now, {} committed):\n{}",
        diff.len(),
        want_lines.len(),
        got_lines.len(),
        want_lines.len(),
        diff.join("\n")
    );
}

/// The memories `moe_core.v` declares: (name, word bits, words, ram_style), from each
/// `(* ram_style = "..." *)` attribute and the `reg [hi:0] name [0:last];` line after it.
fn declared_memories(d: &Design) -> Vec<(String, u32, u64, String)> {
    let files = d.files();
    let core = files
        .iter()
        .find(|(name, _)| name.as_str() == "moe_core.v")
        .map(|(_, t)| t.as_str())
        .unwrap();
    let lines: Vec<&str> = core.lines().collect();
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(style) = l.trim().strip_prefix("(* ram_style = \"") else {
            continue;
        };
        let style = style.trim_end_matches("\" *)").to_string();
        let decl = lines[i + 1]
            .trim()
            .trim_start_matches("reg ")
            .trim_end_matches(';');
        let decl = decl.trim_start_matches("signed ");
        let (width, rest) = match decl.strip_prefix('[') {
            Some(r) => {
                let (hi, rest) = r.split_once(":0] ").unwrap();
                (hi.parse::<u32>().unwrap() + 1, rest)
            }
            None => (1, decl),
        };
        let (name, range) = rest.split_once(" [0:").unwrap();
        let last: u64 = range.trim_end_matches(']').parse().unwrap();
        v.push((name.to_string(), width, last + 1, style));
    }
    v
}

/// Batches of 512 and more tokens: x and y banks of 2,048 words (block RAM), gate-weight
/// memories of 512 words the RTL keeps distributed.
fn long_batches() -> Vec<MoeParams> {
    [512, 1024]
        .into_iter()
        .map(|tokens| MoeParams {
            tokens,
            ..MoeParams::default()
        })
        .collect()
}

/// The resource model's block RAMs are exactly the memories the RTL marks `block` (plus the
/// tables Yosys maps to block RAM). The gate-weight memories of a batch of 512 or more tokens
/// are declared `distributed`; the model used to count them as block RAM.
#[test]
fn resource_model_prices_the_block_rams_the_rtl_declares() {
    let mut configs: Vec<MoeParams> = test_configs().into_iter().map(|(_, p)| p).collect();
    configs.extend(long_batches());
    for p in configs {
        let d = accelforge_templates::moe::rtl::design(&p).unwrap();
        let declared: u64 = declared_memories(&d)
            .iter()
            .filter(|m| m.3 == "block")
            .map(|m| cost::bram18_for(u64::from(m.1), m.2))
            .sum();
        let tables = calibration::table_bram18(&p).unwrap();
        assert_eq!(
            cost::resources(&p).unwrap().bram18,
            declared + tables,
            "{}",
            calibration::label(&p)
        );
    }
}

/// The RTL declares exactly the memories of the params' plan, with its widths, depths and
/// styles.
#[test]
fn rtl_declares_exactly_the_memory_plan() {
    let mut configs: Vec<MoeParams> = test_configs().into_iter().map(|(_, p)| p).collect();
    configs.extend(grid_configs().into_iter().map(|(_, p)| p));
    configs.extend(long_batches());
    for p in configs {
        let d = accelforge_templates::moe::rtl::design(&p).unwrap();
        let plan = MoeLayout::of(&p);
        let mut want: Vec<(String, u32, u64, String)> = plan
            .data
            .iter()
            .chain(&plan.control)
            .map(|m| (m.name.clone(), m.width, m.words, m.style.attr().to_string()))
            .collect();
        let mut got = declared_memories(&d);
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}", calibration::label(&p));
        assert!(plan.data.iter().any(|m| m.style == MemStyle::Block));
    }
}
