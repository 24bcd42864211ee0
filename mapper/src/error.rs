//! The mapper's error type.

/// Everything that can go wrong while reading a workload or mapping it onto a board.
#[derive(Debug, thiserror::Error)]
pub enum MapperError {
    /// A workload could not be read (file, syntax, unknown built-in).
    #[error(transparent)]
    Workload(#[from] accelforge_templates::workload::WorkloadError),
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
