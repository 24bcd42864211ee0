//! Shared helpers of the MoE tests (included with `#[path]`, not a test target of its own).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too
#![allow(dead_code)]

use accelforge_hdl::Design;
use accelforge_hdl::tools;
use accelforge_sim::{BuildOptions, CompiledDesign, DesignSpec, build};

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
