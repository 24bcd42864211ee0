//! Errors of the systolic-array template.

/// Everything that can go wrong while validating, generating, modelling or simulating a
/// systolic array. Every variant names the offending value and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum SystolicError {
    /// A parameter is out of range or inconsistent with another.
    #[error("invalid systolic parameters: {0}")]
    Params(String),
    /// A fixed-point type string does not parse or is unsupported here.
    #[error("fixed-point type `{text}`: {reason}")]
    Type {
        /// The text as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layer shape does not fit the array's buffers or is empty.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// The layer, e.g. `gemm 4x300x5`.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// Operand data does not match the layer or the types.
    #[error("operand data: {0}")]
    Data(String),
    /// Building the Verilog tree failed (a generator bug, reported with its context).
    #[error("generating Verilog for {module}: {source}")]
    Hdl {
        /// The module being generated.
        module: String,
        /// The tree builder's error.
        #[source]
        source: accelforge_hdl::HdlError,
    },
    /// A file could not be read or parsed.
    #[error("{what} `{path}`: {reason}")]
    File {
        /// What the file was meant to hold.
        what: &'static str,
        /// Its path.
        path: String,
        /// The problem.
        reason: String,
    },
    /// The simulation disagreed with the protocol or ran into a timeout.
    #[error("simulation: {0}")]
    Sim(String),
}

/// Result alias of the template.
pub type Result<T> = std::result::Result<T, SystolicError>;

/// Attaches the module name to tree-builder errors.
pub(crate) trait HdlContext<T> {
    fn ctx(self, module: &str) -> Result<T>;
}

impl<T> HdlContext<T> for std::result::Result<T, accelforge_hdl::HdlError> {
    fn ctx(self, module: &str) -> Result<T> {
        self.map_err(|source| SystolicError::Hdl {
            module: module.to_string(),
            source,
        })
    }
}
