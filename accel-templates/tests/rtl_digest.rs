//! Byte-for-byte guard on the systolic generators: the SHA-256 of the Verilog of every systolic
//! configuration the other tests build, plus a deterministic grid over shapes, dataflows, PE
//! kinds, types, ReLU, stream widths and buffer sizes, against the digests committed in
//! `tests/data/systolic_rtl_digests.txt`. The three insta snapshots show what changed; this
//! catches that anything changed in the ~300 designs they do not cover, so refactoring the
//! generators can prove it changed no byte.
//!
//! A deliberate change to the hardware regenerates the file with
//! `ACCELFORGE_UPDATE_DIGESTS=1 cargo test --release -p accelforge-templates --test rtl_digest`
//! (and the commit explains why the bytes changed).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use accelforge_templates::systolic::{Dataflow, PeKind, SystolicParams, calibration, rtl};
use sha2::{Digest, Sha256};

const UPDATE_VAR: &str = "ACCELFORGE_UPDATE_DIGESTS";

fn digest_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/systolic_rtl_digests.txt")
}

/// Every parameter, so equal labels mean equal configurations (the map dedups on it).
fn label(p: &SystolicParams) -> String {
    let df = match p.dataflow {
        Dataflow::Os => "os",
        Dataflow::Ws => "ws",
    };
    let pe = match p.pe {
        PeKind::Dsp => "dsp",
        PeKind::ShiftAdd => "shift-add",
        PeKind::DspPacked => "dsp-packed",
    };
    format!(
        "{df} {}x{} {pe} k{} n{} s{} relu{} {} {} {} {}",
        p.rows,
        p.cols,
        p.max_k,
        p.max_n_chunk,
        p.stream_bits,
        u8::from(p.relu),
        p.input_type,
        p.weight_type,
        p.acc_type,
        p.output_type
    )
}

fn with(
    rows: u32,
    cols: u32,
    max_k: u32,
    max_n_chunk: u32,
    f: impl FnOnce(&mut SystolicParams),
) -> SystolicParams {
    let mut p = SystolicParams {
        rows,
        cols,
        max_k,
        max_n_chunk,
        ..SystolicParams::default()
    };
    f(&mut p);
    p
}

fn types(p: &mut SystolicParams, t: [&str; 4]) {
    p.input_type = t[0].into();
    p.weight_type = t[1].into();
    p.acc_type = t[2].into();
    p.output_type = t[3].into();
}

const FRACTIONAL: [&str; 4] = [
    "ap_ufixed<8,4>",
    "ap_fixed<6,2>",
    "ap_fixed<24,16>",
    "ap_fixed<8,4,AP_RND_CONV,AP_SAT>",
];
const WIDE: [&str; 4] = [
    "ap_fixed<16,8>",
    "ap_fixed<16,4>",
    "ap_fixed<40,20>",
    "ap_ufixed<16,8,AP_RND,AP_SAT_ZERO>",
];
const ODD: [&str; 4] = [
    "ap_fixed<6,2>",
    "ap_fixed<5,1>",
    "ap_fixed<24,8>",
    "ap_fixed<12,4>",
];
const INT8: [&str; 4] = [
    "ap_fixed<8,8>",
    "ap_fixed<8,8>",
    "ap_fixed<32,32>",
    "ap_fixed<8,8>",
];

/// The configurations of systolic_sim, systolic_lint, systolic_synth, systolic_zynq,
/// systolic_cocotb, systolic_calibration, rtl_snapshots and the calibration grid, each for both
/// dataflows (the lint test does that too; the others use a subset).
fn test_configs() -> Vec<SystolicParams> {
    let mut v = vec![
        with(3, 5, 40, 10, |_| {}),
        with(3, 5, 8, 10, |_| {}),
        with(1, 1, 8, 1, |p| p.stream_bits = 32),
        with(5, 1, 16, 2, |p| {
            p.output_type = "ap_fixed<8,8,AP_TRN,AP_SAT>".into();
        }),
        with(1, 4, 16, 8, |_| {}),
        with(4, 3, 64, 6, |p| {
            p.pe = PeKind::ShiftAdd;
            types(p, FRACTIONAL);
            p.stream_bits = 48;
            p.relu = true;
        }),
        with(2, 7, 32, 14, |p| {
            types(p, WIDE);
            p.stream_bits = 128;
        }),
        with(16, 16, 256, 64, |_| {}),
        with(16, 16, 256, 64, |p| p.pe = PeKind::ShiftAdd),
        with(3, 6, 24, 12, |p| {
            types(p, ODD);
            p.output_type = "ap_fixed<12,4,AP_RND_CONV,AP_SAT>".into();
        }),
        with(3, 6, 24, 12, |p| types(p, ODD)),
        with(3, 4, 24, 8, |p| {
            p.pe = PeKind::ShiftAdd;
            types(p, ODD);
        }),
        with(1, 4, 1, 4, |_| {}),
        with(1, 1, 1, 1, |_| {}),
        with(2, 3, 8, 6, |p| p.stream_bits = 32),
        with(2, 3, 8, 6, |p| {
            p.stream_bits = 32;
            p.pe = PeKind::ShiftAdd;
        }),
        with(3, 4, 32, 8, |_| {}),
        with(2, 2, 64, 4, |_| {}),
        with(3, 4, 16, 8, |_| {}),
        with(5, 3, 128, 6, |_| {}),
        SystolicParams::default(),
        // rtl_snapshots
        with(2, 3, 16, 6, |_| {}),
        with(3, 2, 32, 8, |p| p.relu = true),
        with(2, 2, 8, 4, |p| {
            types(
                p,
                [
                    "ap_fixed<8,4>",
                    "ap_fixed<4,1>",
                    "ap_fixed<24,17>",
                    "ap_fixed<8,4,AP_RND,AP_SAT>",
                ],
            );
            p.pe = PeKind::ShiftAdd;
            p.stream_bits = 32;
        }),
    ];
    for out in [
        "ap_fixed<8,4,AP_RND_INF,AP_SAT_SYM>",
        "ap_fixed<8,3,AP_TRN_ZERO,AP_WRAP>",
        "ap_fixed<8,5,AP_RND_MIN_INF,AP_SAT>",
        "ap_fixed<8,6,AP_RND_ZERO,AP_SAT_SYM>",
        "ap_fixed<8,5,AP_RND,AP_WRAP_SM>",
        "ap_fixed<8,5,AP_RND_CONV,AP_WRAP,2>",
    ] {
        v.push(with(2, 2, 16, 4, |p| {
            types(
                p,
                ["ap_fixed<8,4>", "ap_fixed<8,4>", "ap_fixed<24,16>", out],
            );
        }));
    }
    v.extend(calibration::grid());
    v
}

/// A deterministic grid: every shape × dataflow × PE kind × type set, each with two
/// combinations of ReLU, stream width, `max_k` and chunk size chosen by coprime strides so the
/// grid covers their pairs without a full product.
fn grid() -> Vec<SystolicParams> {
    let shapes = [
        (1, 1),
        (1, 4),
        (2, 3),
        (3, 2),
        (4, 4),
        (5, 1),
        (3, 7),
        (8, 8),
    ];
    let type_sets = [INT8, FRACTIONAL, WIDE, ODD];
    let streams = [32, 48, 64, 128];
    let max_ks = [1, 8, 40, 64, 17];
    let chunk_mult = [1, 2, 3];
    let mut v = Vec::new();
    let mut i = 0usize;
    for (rows, cols) in shapes {
        for dataflow in [Dataflow::Os, Dataflow::Ws] {
            for pe in [PeKind::Dsp, PeKind::ShiftAdd] {
                for t in type_sets {
                    for _ in 0..2 {
                        let mut p = with(
                            rows,
                            cols,
                            max_ks[(i * 3) % max_ks.len()],
                            cols * chunk_mult[(i * 5 / 2) % chunk_mult.len()],
                            |p| types(p, t),
                        );
                        p.dataflow = dataflow;
                        p.pe = pe;
                        p.relu = i % 2 == 1;
                        p.stream_bits = streams[(i / 2 + i * 3) % streams.len()];
                        // A ws M block needs max_k >= rows; keep the config rather than lose it.
                        if dataflow == Dataflow::Ws && p.max_k < rows {
                            p.max_k = rows;
                        }
                        v.push(p);
                        i += 1;
                    }
                }
            }
        }
    }
    v
}

fn design_digest(p: &SystolicParams) -> String {
    let d = rtl::design(p).unwrap_or_else(|e| panic!("{}: {e}", label(p)));
    let mut h = Sha256::new();
    for (name, text) in d.files() {
        h.update(format!("// ==== {name}\n").as_bytes());
        h.update(text.as_bytes());
        h.update(b"\n");
    }
    h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Label → digest of every configuration that validates (both dataflows of each test config).
fn current() -> BTreeMap<String, String> {
    let mut all = test_configs();
    let ws: Vec<SystolicParams> = all
        .iter()
        .map(|p| SystolicParams {
            dataflow: Dataflow::Ws,
            ..p.clone()
        })
        .collect();
    all.extend(ws);
    all.extend(grid());
    all.into_iter()
        .filter(|p| p.validate().is_ok())
        .map(|p| (label(&p), design_digest(&p)))
        .collect()
}

fn render(m: &BTreeMap<String, String>) -> String {
    let mut s = String::from(
        "# SHA-256 of the generated Verilog of each systolic configuration (tests/rtl_digest.rs).\n\
         # Regenerate only for a deliberate hardware change: ACCELFORGE_UPDATE_DIGESTS=1.\n",
    );
    for (l, d) in m {
        let _ = writeln!(s, "{d} {l}");
    }
    s
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (d, lab) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("malformed digest line: {l}"));
            (lab.to_string(), d.to_string())
        })
        .collect()
}

#[test]
fn systolic_verilog_matches_committed_digests() {
    let now = current();
    // Guard against a grid that silently shrank to nothing (every config failing validate).
    assert!(
        now.len() > 150,
        "only {} configurations validate",
        now.len()
    );
    let path = digest_file();
    if std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1") {
        std::fs::write(&path, render(&now)).unwrap();
        eprintln!("wrote {} digests to {}", now.len(), path.display());
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with {UPDATE_VAR}=1 from the unchanged generator",
            path.display()
        )
    });
    let want = parse(&text);
    let mut problems = Vec::new();
    for (l, d) in &now {
        match want.get(l) {
            None => problems.push(format!("new configuration (no committed digest): {l}")),
            Some(w) if w != d => problems.push(format!("Verilog changed: {l}")),
            Some(_) => {}
        }
    }
    for l in want.keys().filter(|l| !now.contains_key(*l)) {
        problems.push(format!("committed configuration no longer generated: {l}"));
    }
    assert!(
        problems.is_empty(),
        "{} of {} configurations differ from {}:\n{}",
        problems.len(),
        now.len(),
        path.display(),
        problems.join("\n")
    );
}
