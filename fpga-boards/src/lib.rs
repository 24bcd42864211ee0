//! accelforge-boards: the board database and Zynq bundle generation.
//!
//! Boards are TOML files (one per board, every number with its `source`); the built-ins are
//! compiled in and a user directory can add or override boards. From a board and an
//! [`AccelInterface`] the [`zynq`] module writes a bundle: Vivado batch TCL, XDC, a PYNQ
//! driver, a README and a JSON manifest.
//!
//! ```
//! use accelforge_boards::{BoardDb, AccelInterface, BundleOptions, BundleSpec, SourceFile,
//!     ResourceEstimate, check_budget, write_bundle};
//!
//! let db = BoardDb::builtin()?;
//! let board = db.get("PYNQ_Z2")?; // case, `_`, `-` and spaces do not matter
//! assert_eq!(board.bram18(), 280);
//!
//! let report = check_budget(board, &ResourceEstimate { lut: 60_000, ..Default::default() });
//! assert_eq!(report.exceeding()[0].resource, "lut");
//!
//! let accel = AccelInterface::with_sequential_args(
//!     "af_demo_top", 64, 32, &[("scale", 16, "output scale")], 100.0, 1 << 20);
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("bundle");
//! let manifest = write_bundle(&out, &BundleSpec {
//!     board,
//!     accel: &accel,
//!     sources: vec![SourceFile { name: "af_demo_top.v".into(), contents: "// RTL here\n".into() }],
//!     template_params: serde_json::json!({ "rows": 4 }),
//!     estimate: None,
//!     options: BundleOptions::default(),
//! })?;
//! assert!(out.join("build.tcl").exists());
//! assert_eq!(manifest.registers[4].const_name, "REG_ARG_SCALE");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod board;
pub mod budget;
pub mod db;
pub mod error;
pub mod zynq;

pub use board::{
    Board, Clock, Ddr, DspSlices, DspType, Family, PortDirection, PsPlPort, PsType, Resources,
    Sourced, parse_board,
};
pub use budget::{BudgetReport, ResourceEstimate, Utilisation, check_budget};
pub use db::{BOARDS_DIR_ENV, BoardDb, Entry, Origin, builtin_board, builtin_sources, lookup_key};
pub use error::{BoardError, Result};
pub use zynq::accel::{
    AccelInterface, FixedBatch, PortDir, PortSpec, RegArg, Register, SegmentMatrix, StatusReg,
    WeightFetch, WeightLayout, WeightSegment, sanitize_identifier,
};
pub use zynq::bundle::{
    BundleFiles, BundleSpec, EngineSpec, Manifest, ManifestBudget, ManifestEngine, ManifestFile,
    SourceFile, render_bundle, render_engines_bundle, write_bundle, write_engines_bundle,
};
pub use zynq::{BundleOptions, ZynqDesign};
