//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading or running a simulation.
///
/// Every variant carries enough context (design, port, path, cycle) to be reported on its own.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A required external tool could not be started.
    #[error("`{tool}` was not found or could not be run ({source}); {hint}")]
    ToolMissing {
        /// The program that could not be run.
        tool: String,
        /// How to fix it.
        hint: String,
        /// The underlying error from spawning it.
        #[source]
        source: std::io::Error,
    },

    /// The installed Verilator is older than this crate supports.
    #[error(
        "`{tool}` reports version `{version}`, but Verilator >= 5.0 is required (VerilatedContext API); install a newer Verilator"
    )]
    ToolTooOld {
        /// The program that was run.
        tool: String,
        /// What it printed for `--version`.
        version: String,
    },

    /// The design specification itself is inconsistent.
    #[error("invalid design spec for `{top}`: {reason}")]
    InvalidSpec {
        /// Top module name of the spec.
        top: String,
        /// What is wrong.
        reason: String,
    },

    /// Verilator rejected the Verilog sources.
    #[error("Verilator rejected design `{top}`:\n{}", errors.join("\n"))]
    VerilatorFailed {
        /// Top module name.
        top: String,
        /// The `%Error` lines of Verilator's log (the whole log tail if there were none).
        errors: Vec<String>,
    },

    /// A port in the spec does not match what Verilator found in the Verilog.
    #[error("port list of `{top}` does not match the Verilog: {reason}")]
    PortMismatch {
        /// Top module name.
        top: String,
        /// Which port and how it differs.
        reason: String,
    },

    /// The C++ compile or link step failed.
    #[error("C++ {stage} for design `{top}` failed:\n{log_tail}")]
    CompileFailed {
        /// Top module name.
        top: String,
        /// Which step (`model compile`, `runtime compile`, `link`).
        stage: String,
        /// The last lines of the compiler output.
        log_tail: String,
    },

    /// A file-system operation failed.
    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        /// What was being attempted.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// No cache directory could be determined from the environment.
    #[error(
        "cannot determine a cache directory: none of ACCELFORGE_CACHE_DIR, XDG_CACHE_HOME or HOME is set; set ACCELFORGE_CACHE_DIR"
    )]
    NoCacheDir,

    /// The built shared library could not be loaded.
    #[error("could not load simulation library `{}`: {source}", path.display())]
    Load {
        /// The library path.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },

    /// The shared library loaded but is not a model built by this crate version.
    #[error("simulation library `{}` has ABI {found}, expected {expected}; clear the cache", path.display())]
    AbiMismatch {
        /// The library path.
        path: PathBuf,
        /// ABI version found in the library.
        found: u32,
        /// ABI version this crate expects.
        expected: u32,
    },

    /// The C++ side failed to construct a model instance.
    #[error("could not construct a model instance of `{top}`")]
    ModelCreate {
        /// Top module name.
        top: String,
    },

    /// A port name was not found.
    #[error("design `{top}` has no port named `{name}` (ports: {available})")]
    UnknownPort {
        /// Top module name.
        top: String,
        /// The name asked for.
        name: String,
        /// Comma-separated list of the ports that exist.
        available: String,
    },

    /// A handle from a different design was used.
    #[error("port handle `{port}` belongs to a different design than `{top}`")]
    ForeignHandle {
        /// Top module name of the simulation used.
        top: String,
        /// Index of the handle's port.
        port: usize,
    },

    /// Attempt to poke an output port.
    #[error("port `{port}` of `{top}` is an output and cannot be poked")]
    NotAnInput {
        /// Top module name.
        top: String,
        /// Port name.
        port: String,
    },

    /// A value has bits set beyond the port width.
    #[error("value {value} does not fit port `{port}` of `{top}` ({width} bits)")]
    ValueTooWide {
        /// Top module name.
        top: String,
        /// Port name.
        port: String,
        /// Port width in bits.
        width: u32,
        /// The offending value (hex).
        value: String,
    },

    /// A narrow accessor was used on a port wider than 64 bits.
    #[error("port `{port}` of `{top}` is {width} bits wide; use peek_wide")]
    PortTooWide {
        /// Top module name.
        top: String,
        /// Port name.
        port: String,
        /// Port width in bits.
        width: u32,
    },

    /// `run_until` (or a stream helper) reached its cycle limit.
    #[error(
        "`{top}`: {what} did not happen within {waited} cycles (now at cycle {cycle}); handshake signals: {}",
        if handshakes.is_empty() { "(none found)".to_string() } else { handshakes.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(", ") }
    )]
    Timeout {
        /// Top module name.
        top: String,
        /// Description of what was awaited.
        what: String,
        /// Cycles waited.
        waited: u64,
        /// The simulation's cycle counter at the timeout.
        cycle: u64,
        /// Current values of handshake-like ports (`*valid`, `*ready`, ...), as `(name, value)`.
        handshakes: Vec<(String, String)>,
    },

    /// The model executed `$stop` or hit a Verilator fatal error.
    #[error("`{top}` stopped with an error ($stop or Verilator fatal error) at cycle {cycle}")]
    Fatal {
        /// Top module name.
        top: String,
        /// Cycle at which it happened.
        cycle: u64,
    },

    /// Waveform tracing was requested from a model built without it.
    #[error("design `{top}` was built without tracing; set BuildOptions::trace = true")]
    TraceNotEnabled {
        /// Top module name.
        top: String,
    },

    /// The VCD file could not be opened.
    #[error("could not open VCD trace `{}` for `{top}` (already tracing, or path not writable)", path.display())]
    TraceOpen {
        /// Top module name.
        top: String,
        /// The path asked for.
        path: PathBuf,
    },

    /// The scoreboard found missing, extra or differing items.
    #[error("scoreboard `{name}`: {mismatches} problem(s):\n{summary}")]
    Scoreboard {
        /// Name given to the scoreboard.
        name: String,
        /// Number of problems found.
        mismatches: usize,
        /// One line per problem, with indices.
        summary: String,
    },

    /// An AXI-Stream agent was misconfigured or saw a protocol violation.
    #[error("AXI-Stream `{interface}` on `{top}`: {detail}")]
    Axis {
        /// Top module name.
        top: String,
        /// Interface prefix, e.g. `s_axis_`.
        interface: String,
        /// What went wrong.
        detail: String,
    },

    /// An argument to a testbench helper was out of range.
    #[error("{0}")]
    InvalidArgument(String),
}

/// Shorthand result type.
pub type Result<T, E = SimError> = std::result::Result<T, E>;
