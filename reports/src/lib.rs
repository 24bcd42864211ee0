//! accelforge-reports: result files, Pareto fronts, plots and HTML/CSV/JSON reports.
//!
//! This crate reads result JSON only (it never links a template): a sweep engine writes
//! [`schema::SweepMeta`] and [`schema::PointRecord`] lines, and everything downstream (derived
//! CSV files, merging shards, plots, the HTML page) works from those files alone.
//!
//! ```
//! use accelforge_reports::pareto::ParetoFront;
//! use accelforge_reports::schema::Goal;
//!
//! let mut front = ParetoFront::new(vec![Goal::Minimize, Goal::Minimize]);
//! front.offer(vec![10.0, 4.0], "a".into(), ());
//! front.offer(vec![12.0, 5.0], "b".into(), ()); // dominated by a
//! front.offer(vec![20.0, 1.0], "c".into(), ());
//! let keys: Vec<_> = front.into_sorted().into_iter().map(|m| m.key).collect();
//! assert_eq!(keys, ["a", "c"]);
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod fsio;
pub mod html;
pub mod pareto;
pub mod plot;
pub mod render;
pub mod results;
pub mod schema;

pub use error::{ReportError, Result};
pub use render::{InputKind, Rendered, detect, render};
pub use results::{MergeOutcome, Scan, finalize, merge, pareto_front, read_meta, scan};
