//! accelforge-sim: cycle-accurate simulation of generated Verilog through Verilator, driven from
//! Rust at C++ speed.
//!
//! A [`DesignSpec`] (Verilog sources, top module, port list, clock and reset) is turned by
//! [`build`] into a Verilated model plus a generated `extern "C"` shim, linked as a shared
//! library, cached under [`cache_dir`] by a hash of everything that affects it, and loaded at
//! run time. Each [`Sim`] made from the resulting [`CompiledDesign`] is an independent model
//! instance with its own `VerilatedContext`, so simulations can run in parallel (see
//! [`par_map`]).
//!
//! ```
//! use accelforge_sim::{build, BuildOptions, DesignSpec, ResetSpec};
//!
//! # fn main() -> Result<(), accelforge_sim::SimError> {
//! # if accelforge_sim::verilator_version("verilator".as_ref()).is_err() { return Ok(()); }
//! let spec = DesignSpec::new("counter")
//!     .source(
//!         "counter.v",
//!         "module counter(input clk, input rst, input en, output reg [7:0] count);\n\
//!          always @(posedge clk) if (rst) count <= 0; else if (en) count <= count + 1;\n\
//!          endmodule\n",
//!     )
//!     .input("clk", 1)
//!     .input("rst", 1)
//!     .input("en", 1)
//!     .output("count", 8)
//!     .reset(ResetSpec::active_high("rst"));
//! let design = build(&spec, &BuildOptions::default())?; // cached after the first build
//! let mut sim = design.sim()?;
//! sim.reset(2)?;
//! let en = sim.port("en")?; // resolve once, then index-based
//! let count = sim.port("count")?;
//! sim.poke(en, 1)?;
//! sim.step_n(10)?;
//! assert_eq!(sim.peek(count)?, 10);
//! let waited = sim.run_until(|s| Ok(s.peek(count)? == 20), 100)?;
//! assert_eq!(waited, 10);
//! # Ok(())
//! # }
//! ```
//!
//! Build errors are typed ([`SimError::VerilatorFailed`] carries Verilator's `%Error` lines,
//! [`SimError::ToolMissing`] says how to install Verilator); [`Sim::run_until`] never hangs and
//! its timeout names the cycle and the current `*valid`/`*ready` values.
//!
//! Streams are driven with [`AxisDriver`] / [`AxisMonitor`] (seeded random back-pressure) and
//! checked with a [`Scoreboard`]; waveforms come from a `trace` build and [`Sim::trace_vcd`].
#![warn(missing_docs)]

pub mod axilite;
pub mod axis;
mod build;
mod error;
mod model;
mod shim;
mod sim;
mod spec;

pub use axilite::{AxiLiteMaster, AxiLiteOp, AxiLiteResult};
pub use axis::{
    Agent, AxisDriver, AxisMonitor, AxisNames, Beat, Mismatch, Scoreboard, run_until_received,
};
pub use build::{build, cache_dir, clear_cache, verilator_version};
pub use error::{Result, SimError};
pub use model::CompiledDesign;
pub use sim::{PortHandle, PortRef, Sim};
pub use spec::{BuildOptions, DesignSpec, MAX_PORT_WIDTH, PortDir, PortSpec, ResetSpec};

/// Runs `f` on every item in parallel on all cores (rayon) and returns the results in order.
///
/// Each call should create its own [`Sim`] (from a shared [`CompiledDesign`] or its own build):
/// a `Sim` is `Send` but never shared.
pub fn par_map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync + Send,
{
    use rayon::prelude::*;
    items.par_iter().map(f).collect()
}
