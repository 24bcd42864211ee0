//! The crate's error type. Every variant carries enough context to act on without a debugger.

use std::path::PathBuf;

/// Errors from building, printing or checking Verilog.
#[derive(Debug, thiserror::Error)]
pub enum HdlError {
    /// Two operands (or an assignment's sides) disagree in width.
    #[error("width mismatch in {context}: left is {left} bits, right is {right} bits")]
    WidthMismatch {
        /// Where the mismatch was found (operator or statement).
        context: String,
        /// Width of the left operand or assignment target.
        left: u32,
        /// Width of the right operand or assigned value.
        right: u32,
    },
    /// Operands of an arithmetic or comparison operator disagree in signedness.
    #[error(
        "signedness mismatch in {context}: cast one side explicitly with as_signed()/as_unsigned()"
    )]
    SignMismatch {
        /// Where the mismatch was found.
        context: String,
    },
    /// A width is zero, or otherwise out of the supported range.
    #[error("invalid width {width} for {what}")]
    BadWidth {
        /// What was being sized.
        what: String,
        /// The offending width.
        width: u32,
    },
    /// A bit or part select falls outside its signal.
    #[error("select [{msb}:{lsb}] is out of range for `{name}` ({width} bits)")]
    BadSelect {
        /// Signal name.
        name: String,
        /// Most significant bit requested.
        msb: u32,
        /// Least significant bit requested.
        lsb: u32,
        /// Width of the signal.
        width: u32,
    },
    /// A constant does not fit in the requested width.
    #[error("constant {value} does not fit in {width} {signedness} bits")]
    ConstantTooWide {
        /// The value.
        value: i128,
        /// Requested width.
        width: u32,
        /// "signed" or "unsigned".
        signedness: &'static str,
    },
    /// An identifier is not a legal (or is a reserved) Verilog identifier.
    #[error("`{name}` is not a usable Verilog identifier: {reason}")]
    BadIdentifier {
        /// The identifier.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A name is declared twice in one module.
    #[error("`{name}` is declared twice in module `{module}`")]
    Duplicate {
        /// The module.
        module: String,
        /// The duplicated name.
        name: String,
    },
    /// An instance connection does not match the instantiated module.
    #[error("instance `{instance}` of `{module}`: {problem}")]
    BadInstance {
        /// Instance name.
        instance: String,
        /// Instantiated module name.
        module: String,
        /// What is wrong.
        problem: String,
    },
    /// Something was used in a place where it cannot be (e.g. assigning to an input).
    #[error("{0}")]
    Misuse(String),
    /// An output path cannot be written or replaced.
    #[error("refusing to write `{}`: {reason}", path.display())]
    Output {
        /// The output path as given.
        path: PathBuf,
        /// Why (and what to do instead).
        reason: String,
    },
    /// An external tool is not installed.
    #[error("`{tool}` was not found on PATH; install it with `{install}`")]
    ToolMissing {
        /// Executable name.
        tool: &'static str,
        /// How to install it.
        install: &'static str,
    },
    /// An external tool is older than the project supports.
    #[error(
        "`{tool}` {found} is too old (need {need} or newer); install a newer one with `{install}`"
    )]
    ToolTooOld {
        /// Executable name.
        tool: &'static str,
        /// Version found.
        found: String,
        /// Minimum version.
        need: &'static str,
        /// How to install it.
        install: &'static str,
    },
    /// An external tool failed; the relevant part of its log is attached.
    #[error("`{tool}` failed on {subject}:\n{log}")]
    ToolFailed {
        /// Executable name.
        tool: &'static str,
        /// What it was run on.
        subject: String,
        /// Relevant log lines.
        log: String,
    },
    /// A tool's output could not be understood.
    #[error("could not read {tool} output: {problem}")]
    ToolOutput {
        /// Executable name.
        tool: &'static str,
        /// What was wrong.
        problem: String,
    },
    /// Filesystem trouble.
    #[error("{action} `{}`: {err}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error (shown in the message, not chained, so it prints once).
        err: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = HdlError> = std::result::Result<T, E>;

impl HdlError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HdlError::Io {
            action,
            path: path.into(),
            err: source,
        }
    }
}
