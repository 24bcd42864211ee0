//! Errors of the report crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading results or writing reports. Each variant names
/// the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file or line does not have the expected shape.
    #[error("`{path}`{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number for JSON-lines files.
        line: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds nothing this crate knows how to report.
    #[error(
        "`{0}` holds no results.jsonl (sweep), map.json (accelforge map --json) or sim.json \
         (accelforge sim --json); point `report` at the output directory of one of those commands"
    )]
    NothingToReport(PathBuf),
    /// Inputs cannot be combined (e.g. merging sweeps of different specs).
    #[error("{0}")]
    Incompatible(String),
    /// Drawing a plot failed.
    #[error("plot `{path}`: {reason}")]
    Plot {
        /// The image being drawn.
        path: PathBuf,
        /// The backend's message.
        reason: String,
    },
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, ReportError>;

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.to_path_buf();
    move |source| ReportError::Io {
        action,
        path,
        source,
    }
}
