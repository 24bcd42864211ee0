//! Shared helpers of the MoE tests (included with `#[path]`, not a test target of its own).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too
#![allow(dead_code)]

use accelforge_hdl::Design;
use accelforge_hdl::tools;
use accelforge_sim::{BuildOptions, CompiledDesign, DesignSpec, PortHandle, Sim, build};
use accelforge_templates::moe::tb::Harness;

pub fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        jobs: 2,
        ..BuildOptions::default()
    }
}

#[allow(missing_debug_implementations)] // a test handle; Sim has no Debug
pub struct SimH(pub Sim);

impl Harness for SimH {
    type Port = PortHandle;
    fn port(&mut self, name: &str) -> Result<PortHandle, String> {
        self.0.port(name).map_err(|e| e.to_string())
    }
    fn poke(&mut self, p: PortHandle, v: u64) -> Result<(), String> {
        self.0.poke(p, v).map_err(|e| e.to_string())
    }
    fn poke_wide(&mut self, p: PortHandle, words: &[u64]) -> Result<(), String> {
        self.0.poke_wide(p, words).map_err(|e| e.to_string())
    }
    fn peek(&mut self, p: PortHandle) -> Result<u64, String> {
        self.0.peek(p).map_err(|e| e.to_string())
    }
    fn step(&mut self) -> Result<(), String> {
        self.0.step().map_err(|e| e.to_string())
    }
    fn reset(&mut self) -> Result<(), String> {
        self.0.reset(2).map_err(|e| e.to_string())
    }
}

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
