//! Errors of the sweep engine.

use std::path::PathBuf;

/// Everything that can stop a sweep. Spec errors name the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The spec (or its workload file) is malformed or inconsistent.
    #[error("{file}: {key}: {problem}")]
    Spec {
        /// The file.
        file: PathBuf,
        /// The key path, e.g. `systolic.rows` or `constraints.limits[0]`.
        key: String,
        /// What is wrong and, where there is one, the fix.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The output directory cannot be used as asked (e.g. results exist without `--resume`).
    #[error("{0}")]
    Output(String),
    /// Result files could not be read or written.
    #[error(transparent)]
    Report(#[from] accelforge_reports::ReportError),
    /// The board database failed to load.
    #[error(transparent)]
    Boards(#[from] accelforge_boards::BoardError),
    /// Verilator verification could not run.
    #[error("verifying point {id} in Verilator: {reason}")]
    Verify {
        /// The point.
        id: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, SweepError>;

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> SweepError {
    let path = path.to_path_buf();
    move |source| SweepError::Io {
        action,
        path,
        source,
    }
}
