//! The sweep spec parser on its own: valid specs of each template, and every kind of mistake
//! with the key it names and what it says.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use accelforge_sweep::SweepError;
use accelforge_sweep::spec::{Spec, WorkOp};

const SYSTOLIC: &str = r#"
template = "systolic"
name = "unit"
boards = ["pynq-z2"]
objectives = [{ minimize = "latency_cycles" }, { minimize = "dsp" }]
[constraints]
limits = ["dsp <= 220", "utilization < 0.9"]
[systolic]
rows = { start = 2, end = 8, step = 2 }
cols = [4, 8]
stream_bits = [32, 64]
max_k = 128
[workload]
layers = [
  { kind = "gemm", name = "fc", m = 16, k = 64, n = 10 },
  { kind = "conv2d", name = "conv", h = 8, w = 8, c_in = 3, c_out = 8, kernel_h = 3, kernel_w = 3, pad = 1 },
  { kind = "dense", name = "head", batch = 4, in_features = 32, out_features = 10, repeat = 2 },
]
"#;

const MOE: &str = r#"
template = "moe"
objectives = [{ minimize = "latency_cycles" }]
[moe]
lanes = [4, 8]
simd = [8, 16]
[workload]
layers = [{ kind = "moe", name = "experts", tokens = 8, d_model = 16, d_ff = 32, experts = 4, top_k = 2 }]
"#;

fn parse(text: &str) -> Result<Spec, SweepError> {
    Spec::parse(text, Path::new("unit.toml"))
}

/// The key and the problem of a spec error.
fn refused(text: &str) -> (String, String) {
    match parse(text) {
        Err(SweepError::Spec { file, key, problem }) => {
            assert_eq!(file, Path::new("unit.toml"));
            (key, problem)
        }
        Err(other) => panic!("expected a spec error, got {other}"),
        Ok(_) => panic!("expected a spec error, the spec parsed"),
    }
}

#[test]
fn a_systolic_spec_reads_its_axes_workload_and_limits() {
    let s = parse(SYSTOLIC).unwrap();
    assert_eq!(s.name, "unit");
    assert_eq!(s.template.name(), "systolic");
    // rows 2, 4, 6, 8 × cols 4, 8 × stream 32, 64.
    assert_eq!(s.total_points(), 4 * 2 * 2);
    assert_eq!(s.objectives.len(), 2);
    assert_eq!(s.limits.len(), 2);
    assert_eq!(s.boards.len(), 1);
    let names: Vec<&str> = s.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["fc", "conv", "head"]);
    // The convolution as im2col: M = 8·8, K = 3·3·3, N = 8; the dense layer keeps its repeat.
    let WorkOp::Gemm { gemm } = &s.layers[1].op else {
        panic!("conv2d lowers to a GEMM")
    };
    assert_eq!((gemm.m, gemm.k, gemm.n), (64, 27, 8));
    assert_eq!(s.layers[2].repeat, 2);
    // The clock defaults to the first board's.
    assert!(s.clock_mhz > 0.0);
}

#[test]
fn an_moe_spec_reads_its_axes_and_layer() {
    let s = parse(MOE).unwrap();
    assert_eq!(s.template.name(), "moe");
    assert_eq!(s.total_points(), 4);
    assert!(matches!(s.layers[0].op, WorkOp::Moe(_)));
}

#[test]
fn mistakes_name_their_key() {
    let cases: [(String, &str, &str); 9] = [
        (
            SYSTOLIC.replace("template = \"systolic\"", "template = \"tpu\""),
            "template",
            "tpu",
        ),
        (
            SYSTOLIC.replace("minimize = \"dsp\"", "minimize = \"dsps\""),
            "objectives[1]",
            "dsps",
        ),
        (
            SYSTOLIC.replace("\"dsp <= 220\"", "\"dsp <<= 220\""),
            "constraints.limits[0]",
            "dsp",
        ),
        (
            SYSTOLIC.replace("cols = [4, 8]", "cols = []"),
            "systolic.cols",
            "empty",
        ),
        (
            SYSTOLIC.replace("\"pynq-z2\"", "\"no-board\""),
            "boards[0]",
            "no-board",
        ),
        (
            SYSTOLIC.replace("m = 16,", "m = 0,"),
            "workload.layers[0].m",
            "at least 1",
        ),
        (
            SYSTOLIC.replace("kind = \"gemm\"", "type = \"gemm\""),
            "workload.layers[0].type",
            "kind = \"gemm\"",
        ),
        (
            SYSTOLIC.replace("name = \"conv\"", "name = \"fc\""),
            "workload.layers[1].name",
            "fc",
        ),
        (
            MOE.replace(
                "kind = \"moe\"",
                "kind = \"gemm\", m = 1, k = 1, n = 1, x = 0",
            ),
            "workload.layers[0]",
            "x",
        ),
    ];
    for (i, (text, key, word)) in cases.iter().enumerate() {
        let (k, problem) = refused(text);
        assert!(
            k.contains(key),
            "case {i}: key `{k}`, expected `{key}` ({problem})"
        );
        assert!(
            problem.contains(word),
            "case {i}: `{word}` not in: {problem}"
        );
    }
}

#[test]
fn a_workload_needs_exactly_one_source() {
    let none = SYSTOLIC[..SYSTOLIC.find("[workload]").unwrap()].to_string() + "[workload]\n";
    let (key, problem) = refused(&none);
    assert_eq!(key, "workload");
    assert!(problem.contains("kind = \"gemm\""), "{problem}");
    let both = SYSTOLIC.replace("[workload]\n", "[workload]\nbuiltin = \"mlp\"\n");
    let (key, problem) = refused(&both);
    assert_eq!(key, "workload");
    assert!(problem.contains("one of"), "{problem}");
    // A built-in workload by name.
    let builtin = none + "builtin = \"mlp\"\n";
    let s = parse(&builtin).unwrap();
    assert_eq!(s.layers.len(), 3);
}
