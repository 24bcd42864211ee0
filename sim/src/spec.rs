//! What to build: Verilog sources, the top module and its port list.

use crate::error::{Result, SimError};
use std::collections::HashSet;
use std::path::PathBuf;

/// Widest port the harness accepts. VlWide has no hard limit; this only catches absurd specs.
pub const MAX_PORT_WIDTH: u32 = 65_536;

/// Direction of a top-level port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortDir {
    /// Driven by the testbench.
    In,
    /// Driven by the design.
    Out,
}

/// One top-level port of the design.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// Verilog port name.
    pub name: String,
    /// Width in bits (1..=[`MAX_PORT_WIDTH`]).
    pub width: u32,
    /// Direction.
    pub dir: PortDir,
    /// Whether the port carries a two's-complement value (affects display and `peek_signed`).
    pub signed: bool,
}

impl PortSpec {
    /// An unsigned input port.
    pub fn input(name: impl Into<String>, width: u32) -> Self {
        Self {
            name: name.into(),
            width,
            dir: PortDir::In,
            signed: false,
        }
    }

    /// An unsigned output port.
    pub fn output(name: impl Into<String>, width: u32) -> Self {
        Self {
            name: name.into(),
            width,
            dir: PortDir::Out,
            signed: false,
        }
    }

    /// Marks the port as signed.
    pub fn signed(mut self) -> Self {
        self.signed = true;
        self
    }
}

/// Name and polarity of the design's synchronous reset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResetSpec {
    /// Port name, e.g. `rst` or `ap_rst_n`.
    pub name: String,
    /// `true` when the reset is asserted by driving 0.
    pub active_low: bool,
}

impl ResetSpec {
    /// A reset asserted by 1 (e.g. `rst`).
    pub fn active_high(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            active_low: false,
        }
    }

    /// A reset asserted by 0 (e.g. `rst_n`, `ap_rst_n`).
    pub fn active_low(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            active_low: true,
        }
    }

    /// The port value that asserts reset.
    pub fn asserted_value(&self) -> u64 {
        if self.active_low { 0 } else { 1 }
    }
}

/// A design to simulate: sources, top module, ports, clock and reset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesignSpec {
    /// `(file name, Verilog text)` pairs. File names must be plain names ending in `.v` or `.sv`.
    pub sources: Vec<(String, String)>,
    /// Top module name.
    pub top: String,
    /// Every top-level port, in any order.
    pub ports: Vec<PortSpec>,
    /// The clock input toggled by `step()`; `None` for purely combinational designs.
    pub clock: Option<String>,
    /// The reset driven by `Sim::reset`.
    pub reset: Option<ResetSpec>,
}

impl DesignSpec {
    /// A spec with no sources or ports yet, clocked by `clk` and without a reset.
    pub fn new(top: impl Into<String>) -> Self {
        Self {
            sources: Vec::new(),
            top: top.into(),
            ports: Vec::new(),
            clock: Some("clk".to_string()),
            reset: None,
        }
    }

    /// Adds a source file.
    pub fn source(mut self, file_name: impl Into<String>, text: impl Into<String>) -> Self {
        self.sources.push((file_name.into(), text.into()));
        self
    }

    /// Adds a port.
    pub fn port(mut self, port: PortSpec) -> Self {
        self.ports.push(port);
        self
    }

    /// Adds an unsigned input port.
    pub fn input(self, name: impl Into<String>, width: u32) -> Self {
        self.port(PortSpec::input(name, width))
    }

    /// Adds an unsigned output port.
    pub fn output(self, name: impl Into<String>, width: u32) -> Self {
        self.port(PortSpec::output(name, width))
    }

    /// Sets (or with `None` removes) the clock port.
    pub fn clock(mut self, name: Option<&str>) -> Self {
        self.clock = name.map(str::to_string);
        self
    }

    /// Sets the reset port.
    pub fn reset(mut self, reset: ResetSpec) -> Self {
        self.reset = Some(reset);
        self
    }

    /// The spec of a design emitted through `accelforge-hdl`: its files, its top module's ports,
    /// clock `clk` or `ap_clk`, and reset `rst` (active high) or `ap_rst_n` (active low) when
    /// the top has one.
    pub fn from_hdl(design: &accelforge_hdl::Design) -> Self {
        let top = design.top();
        let mut spec = DesignSpec::new(top.name());
        spec.sources = design.files();
        for p in top.ports() {
            let port = match p.dir {
                accelforge_hdl::Dir::Input => PortSpec::input(&p.name, p.width),
                accelforge_hdl::Dir::Output => PortSpec::output(&p.name, p.width),
            };
            spec.ports.push(if p.signed { port.signed() } else { port });
        }
        spec.clock = ["clk", "ap_clk"]
            .into_iter()
            .find(|c| top.port(c).is_some())
            .map(str::to_string);
        spec.reset = if top.port("rst").is_some() {
            Some(ResetSpec::active_high("rst"))
        } else if top.port("ap_rst_n").is_some() {
            Some(ResetSpec::active_low("ap_rst_n"))
        } else {
            None
        };
        spec
    }

    /// Looks a port up by name.
    pub fn find_port(&self, name: &str) -> Option<&PortSpec> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// Checks names, widths and that the clock and reset are 1-bit inputs.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| SimError::InvalidSpec {
            top: self.top.clone(),
            reason,
        };
        if !is_identifier(&self.top) {
            return Err(bad(format!(
                "top module name `{}` is not a plain Verilog identifier",
                self.top
            )));
        }
        if self.sources.is_empty() {
            return Err(bad("no Verilog sources given".into()));
        }
        let mut files = HashSet::new();
        for (file, _) in &self.sources {
            let plain = !file.is_empty()
                && file
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                && !file.starts_with('.');
            if !plain || !(file.ends_with(".v") || file.ends_with(".sv")) {
                return Err(bad(format!(
                    "source file name `{file}` must be a plain name (letters, digits, `_-.`) ending in .v or .sv"
                )));
            }
            if !files.insert(file.as_str()) {
                return Err(bad(format!("source file name `{file}` appears twice")));
            }
        }
        if self.ports.is_empty() {
            return Err(bad("the port list is empty".into()));
        }
        let mut names = HashSet::new();
        for p in &self.ports {
            // Verilator reserves names starting with `__` and mangles other odd names, which the
            // generated shim could not refer to.
            if !is_identifier(&p.name) || p.name.starts_with("__") {
                return Err(bad(format!(
                    "port name `{}` is not a plain Verilog identifier",
                    p.name
                )));
            }
            if p.width == 0 || p.width > MAX_PORT_WIDTH {
                return Err(bad(format!(
                    "port `{}` has width {}; it must be 1..={MAX_PORT_WIDTH}",
                    p.name, p.width
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("port `{}` is listed twice", p.name)));
            }
        }
        let one_bit_input = |what: &str, name: &str| -> Result<()> {
            match self.find_port(name) {
                Some(p) if p.dir == PortDir::In && p.width == 1 => Ok(()),
                Some(_) => Err(bad(format!("{what} `{name}` must be a 1-bit input"))),
                None => Err(bad(format!("{what} `{name}` is not in the port list"))),
            }
        };
        if let Some(clk) = &self.clock {
            one_bit_input("clock", clk)?;
        }
        if let Some(rst) = &self.reset {
            one_bit_input("reset", &rst.name)?;
        }
        Ok(())
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How to build a design.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildOptions {
    /// Build the `--trace` variant so `Sim::trace_vcd` works (slower model).
    pub trace: bool,
    /// Optimisation for the model's hot code (`OPT_FAST`); `-O2` measured fastest.
    pub opt_fast: String,
    /// Treat Verilator warnings as errors (otherwise they are only logged).
    pub warnings_fatal: bool,
    /// Extra arguments for `verilator` (part of the cache key).
    pub extra_verilator_args: Vec<String>,
    /// Parallel jobs for `make`.
    pub jobs: usize,
    /// The Verilator executable.
    pub verilator: PathBuf,
    /// Cache root; `None` uses [`crate::cache_dir`].
    pub cache_dir: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            trace: false,
            opt_fast: "-O2".to_string(),
            warnings_fatal: false,
            extra_verilator_args: Vec::new(),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
            verilator: PathBuf::from("verilator"),
            cache_dir: None,
        }
    }
}

impl BuildOptions {
    /// Default options with tracing on or off.
    pub fn with_trace(trace: bool) -> Self {
        Self {
            trace,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> DesignSpec {
        DesignSpec::new("counter")
            .source("counter.v", "module counter; endmodule")
            .input("clk", 1)
            .input("rst", 1)
            .output("count", 8)
            .reset(ResetSpec::active_high("rst"))
    }

    #[test]
    fn valid_spec_passes() {
        assert!(counter().validate().is_ok());
    }

    #[test]
    fn rejects_bad_names_and_widths() {
        assert!(counter().input("a b", 1).validate().is_err());
        assert!(counter().input("__x", 1).validate().is_err());
        assert!(counter().input("z", 0).validate().is_err());
        assert!(counter().input("count", 3).validate().is_err());
        assert!(counter().source("../x.v", "").validate().is_err());
        assert!(counter().source("x.vhd", "").validate().is_err());
    }

    #[test]
    fn clock_and_reset_must_be_one_bit_inputs() {
        let mut s = counter();
        s.clock = Some("count".into());
        assert!(s.validate().is_err());
        let s = counter().reset(ResetSpec::active_low("rst_n"));
        assert!(s.validate().is_err());
        let s = counter().clock(None);
        assert!(s.validate().is_ok());
    }
}
