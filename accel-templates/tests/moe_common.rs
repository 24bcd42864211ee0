//! Shared helpers of the MoE tests (included with `#[path]`, not a test target of its own).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too
#![allow(dead_code)]

use accelforge_hdl::Design;
use accelforge_hdl::tools;
use accelforge_sim::{BuildOptions, CompiledDesign, DesignSpec, build};
use accelforge_templates::moe::MoeParams;

pub fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        jobs: 2,
        ..BuildOptions::default()
    }
}

/// The crate's Verilator harness under the name the tests use.
#[allow(unused_imports)] // not every test that includes this file runs the harness
pub use accelforge_templates::moe::sim::SimHarness as SimH;

pub fn compile(d: &Design) -> CompiledDesign {
    build(&DesignSpec::from_hdl(d), &opts()).expect("Verilator build")
}

pub fn lint_clean(d: &Design) {
    let files = tools::DesignFiles::new(d).expect("writing Verilog");
    let r = tools::lint(&files.paths, Some(d.top_name())).expect("running Verilator lint");
    assert!(
        r.is_clean(),
        "{}: {:#?}",
        d.top_name(),
        r.diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
}

/// Default params with the shape the sweep, latency and digest tests spell positionally:
/// (tokens, d_model, d_ff, experts, top_k, lanes, simd, DDR bytes per cycle, queue depth).
#[allow(clippy::too_many_arguments)]
pub fn params(
    tokens: u32,
    d_model: u32,
    d_ff: u32,
    experts: u32,
    top_k: u32,
    lanes: u32,
    simd: u32,
    bytes: u32,
    queue: u32,
) -> MoeParams {
    MoeParams {
        tokens,
        d_model,
        d_ff,
        experts,
        top_k,
        lanes,
        simd,
        ddr_bytes_per_cycle: bytes,
        queue_depth: queue,
        ..MoeParams::default()
    }
}

/// The small edge grid (d_model = d_ff = 8, 4 experts) over every token count, array shape,
/// stream width, top-k and queue depth given: (label, params), valid or not.
pub fn edge_grid(tokens: &[u32], queues: &[u32]) -> Vec<(String, MoeParams)> {
    let mut v = Vec::new();
    for &t in tokens {
        for (lanes, simd) in [(1, 1), (1, 2), (2, 1), (2, 2), (4, 4)] {
            for ddr in [1, 2, 4] {
                for top_k in [1, 2] {
                    for &q in queues {
                        v.push((
                            format!("t{t}_{lanes}x{simd}_b{ddr}_k{top_k}_q{q}"),
                            params(t, 8, 8, 4, top_k, lanes, simd, ddr, q),
                        ));
                    }
                }
            }
        }
    }
    v
}

/// Every module of a design, one after the other, in the printer's (sorted) file order.
pub fn design_text(d: &Design) -> String {
    d.files()
        .into_iter()
        .map(|(name, t)| format!("// ==== {name}\n{t}"))
        .collect::<Vec<_>>()
        .join("\n")
}
