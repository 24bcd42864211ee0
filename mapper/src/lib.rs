//! accelforge-mapper: choose accelerator configurations for a workload under a board's budget.
//!
//! A workload is a list of layers (GEMM, dense, conv2d lowered to GEMM shapes; MoE layers,
//! which only [`MoeTemplateModel`] runs). An
//! [`EngineModel`] turns a [`SearchSpace`] into configurations and prices every layer on every
//! configuration (cycles, DDR bytes, tiling options) and every configuration in resources.
//! Three formulations choose among them — **overlay** (one time-shared engine), **dataflow**
//! (one engine per layer, pipelined) and **heterogeneous** (a few engines, layers assigned to
//! them) — each as a MILP solved with good_lp and as an exhaustive search used to verify it.
//!
//! Every registered template is an engine through [`TemplateEngine`], which forwards to the
//! template's own exact models (`accelforge_templates::template::Template`):
//! [`SystolicTemplateModel`] and [`MoeTemplateModel`] are its instances, and a new template
//! needs no code here. [`ProvisionalSystolicModel`] is an independent textbook model, kept as a
//! second engine for the verification tests.
//!
//! ```
//! use accelforge_boards::BoardDb;
//! use accelforge_mapper::{MapOptions, SearchSpace, SystolicTemplateModel, Workload, map};
//!
//! let db = BoardDb::builtin()?;
//! let board = db.get("pynq-z2")?;
//! let workload = Workload::builtin("mlp")?;
//! let mut opts = MapOptions::new(board);
//! opts.space = SearchSpace::small();
//! let model = SystolicTemplateModel::for_workload(&workload);
//! let report = map(&model, &workload, board, &opts)?;
//! assert!(report.utilisation.fits());
//! assert_eq!(report.layers.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod bound;
pub mod engine;
pub mod error;
pub mod exhaustive;
pub mod ilp;
pub mod joint;
pub mod mapping;
pub mod model;
pub mod moe;
pub mod precision;
pub mod problem;
pub mod provisional;
pub mod systolic;
pub mod workload;

pub use engine::TemplateEngine;
pub use error::{MapperError, Result};
pub use ilp::{SolveStatus, Solved, Solver};
pub use joint::{Either, Joint};
pub use mapping::{
    EngineReport, Instance, LayerReport, MapOptions, MapReport, Method, SearchStats,
    build_instance, map, map_with_progress, solve_pruned,
};
pub use model::{Dataflow, EngineModel, ModelErrors, SearchSpace};
pub use moe::{MoeSpec, MoeTemplateModel};
pub use problem::{Assignment, Formulation, OptionCost, Problem, Pruned, filter_only, prune};
pub use provisional::{ProvisionalSystolicConfig, ProvisionalSystolicModel, ProvisionalTiling};
pub use systolic::SystolicTemplateModel;

/// The attention template's exact models for a workload's `attention` layers.
pub type AttentionTemplateModel = TemplateEngine<accelforge_templates::attention::Attention>;
pub use workload::{
    BUILTINS, Conv2d, GemmShape, Layer, LayerOp, Lowered, MoeShape, QfxTypes, Workload,
    builtin_names, parse_workload,
};
