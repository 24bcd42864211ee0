//! The mapper's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading a workload or mapping it onto a board.
#[derive(Debug, thiserror::Error)]
pub enum MapperError {
    /// A workload file could not be read from disk.
    #[error("cannot read workload file {path}: {source}")]
    ReadWorkload {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A workload file is malformed. `layer` and `key` locate the problem when known.
    #[error("{file}{}{}: {message}", .layer.map(|l| format!(": layer {l}")).unwrap_or_default(), .key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Workload {
        /// File name (or `builtin:<name>`).
        file: String,
        /// Zero-based layer index, when the problem is inside a layer.
        layer: Option<usize>,
        /// The offending key, when there is one.
        key: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `--workload NAME` named neither an existing file nor a built-in workload.
    #[error("unknown workload `{name}`: not a file and not a built-in (built-ins: {known})")]
    UnknownWorkload {
        /// What the user asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// The search space is malformed (empty list, zero size...).
    #[error("invalid search space: {0}")]
    SearchSpace(String),
    /// Nothing fits: no assignment satisfies the board budget. The message names the binding
    /// budget line.
    #[error("infeasible on {board}: {reason}")]
    Infeasible {
        /// Board name.
        board: String,
        /// Which budget line (or which layer) excludes every candidate, with the numbers.
        reason: String,
    },
    /// A solver back end was requested that this build does not contain.
    #[error("solver `{0}` is not compiled into this build (enable the cargo feature `{0}`)")]
    SolverUnavailable(String),
    /// The MILP solver failed (not an infeasibility the pre-check could explain).
    #[error("{solver} failed on the {formulation} formulation: {message}")]
    Solver {
        /// Back end name.
        solver: String,
        /// Formulation name.
        formulation: String,
        /// Solver message.
        message: String,
    },
    /// The time limit ran out before any solution was known (a solution found in time is
    /// reported with a `time_limited` status instead).
    #[error(
        "time limit of {limit} s reached while {phase}, before any solution was found; raise --time-limit, or shrink the search (--space small, fewer layers)"
    )]
    TimeLimit {
        /// The limit in seconds.
        limit: f64,
        /// What was running when it expired (with how far it got).
        phase: String,
    },
    /// The exhaustive search would enumerate more points than allowed.
    #[error(
        "the exhaustive {formulation} search would enumerate about {points:.3e} points (limit {limit:.0e}); use the ILP, or shrink the search space"
    )]
    TooLarge {
        /// Formulation name.
        formulation: String,
        /// Estimated number of points.
        points: f64,
        /// The limit.
        limit: f64,
    },
}

/// Result alias for the mapper.
pub type Result<T, E = MapperError> = std::result::Result<T, E>;
