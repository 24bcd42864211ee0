//! The crate's error type. Every variant names the file, key, board or path it is about, so a
//! message read on its own says what to fix.

use std::path::PathBuf;

/// Everything that can go wrong loading boards or generating a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// A board file is not valid TOML or does not match the schema (unknown key, wrong type).
    #[error("{file}: key `{key}`: {message}")]
    Parse {
        /// The file (or `built-in:<name>.toml`).
        file: String,
        /// Dotted key path where the problem was found (`.` for the top level).
        key: String,
        /// What the parser said.
        message: String,
    },
    /// A board file parsed but holds an impossible value.
    #[error("{file}: key `{key}`: {problem}")]
    Invalid {
        /// The file (or `built-in:<name>.toml`).
        file: String,
        /// Dotted key path of the offending value.
        key: String,
        /// Why the value is impossible and what is expected.
        problem: String,
    },
    /// The requested board's user file could not be loaded (the other boards still work).
    #[error("board `{name}`: its file {file} is broken: {problem}; fix or remove the file")]
    BrokenFile {
        /// The board name asked for.
        name: String,
        /// The file.
        file: String,
        /// The load error.
        problem: String,
    },
    /// Reading a user board directory failed.
    #[error("cannot read board directory {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading a user board file failed.
    #[error("cannot read board file {file}: {source}")]
    ReadFile {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Two files in the same directory define the same board.
    #[error("board `{name}` is defined twice: in {first} and in {second}")]
    Duplicate {
        /// Normalised board name.
        name: String,
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },
    /// No board matches a requested name.
    #[error("unknown board `{name}`; known boards: {known}")]
    UnknownBoard {
        /// The name as requested.
        name: String,
        /// Comma-separated list of known board names.
        known: String,
    },
    /// The accelerator description handed to a generator is inconsistent.
    #[error("accelerator interface `{accel}`: {field}: {problem}")]
    Interface {
        /// The accelerator's module name.
        accel: String,
        /// The field (e.g. `args[2].offset`).
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The accelerator does not fit what the board offers (clock range, ports).
    #[error("board `{board}`: {problem}")]
    BoardMismatch {
        /// Board name.
        board: String,
        /// What does not fit.
        problem: String,
    },
    /// Writing a bundle failed; nothing was left at the destination.
    #[error("cannot write bundle {dir}: {action}: {source}")]
    Write {
        /// The destination directory.
        dir: PathBuf,
        /// What was being done (e.g. `write build.tcl`).
        action: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The destination of a bundle already exists and overwriting was not asked for.
    #[error(
        "bundle directory {dir} already exists (use --force, or BundleOptions::overwrite, to replace it)"
    )]
    Exists {
        /// The destination directory.
        dir: PathBuf,
    },
    /// A bundle source file name is unusable.
    #[error("bundle source file `{name}`: {problem}")]
    SourceName {
        /// The offending name.
        name: String,
        /// Why.
        problem: String,
    },
    /// Serialising the manifest failed.
    #[error("cannot serialise manifest for bundle {dir}: {source}")]
    Manifest {
        /// The destination directory.
        dir: PathBuf,
        /// The serde_json error.
        source: serde_json::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = BoardError> = std::result::Result<T, E>;
