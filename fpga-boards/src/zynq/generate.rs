//! One call from a template's core to a bitstream-ready bundle: wrap the core for Zynq, check the
//! estimate against the board's budget, and write every file of the bundle atomically.

use std::path::Path;

use accelforge_hdl::Design;

use super::accel::AccelInterface;
use super::bundle::{BundleSpec, Manifest, SourceFile, write_bundle};
use super::{BundleOptions, wrapper};
use crate::board::Board;
use crate::budget::{ResourceEstimate, check_budget};
use crate::error::BoardError;

/// What [`generate_bundle`] needs besides the core.
#[derive(Debug, Clone)]
pub struct GenerateRequest<'a> {
    /// Target board.
    pub board: &'a Board,
    /// Register map and stream widths of the wrapped top.
    pub accel: &'a AccelInterface,
    /// The template's parameters, recorded in the manifest.
    pub template_params: serde_json::Value,
    /// The template's resource estimate for the core.
    pub estimate: ResourceEstimate,
    /// Write the bundle even when the estimate exceeds the board (the manifest then says
    /// `"fits": false`).
    pub allow_over_budget: bool,
    /// Vivado project options.
    pub options: BundleOptions,
}

/// Wraps `core`, checks the budget, and writes the bundle into `dir`. A design that does not fit
/// is refused, naming every resource over budget, unless `allow_over_budget` is set.
pub fn generate_bundle(
    dir: &Path,
    core: &Design,
    req: &GenerateRequest<'_>,
) -> Result<Manifest, BoardError> {
    // Interface and board problems (a weight stream the DataMover cannot carry, a segment too
    // large for one command) are named before anything else is done.
    super::ZynqDesign::new(req.board, req.accel, req.options.clone())?;
    let report = check_budget(req.board, &req.estimate);
    if !report.fits() && !req.allow_over_budget {
        let lines: Vec<String> = report
            .exceeding()
            .iter()
            .map(|l| format!("{} {} of {}", l.resource, l.used, l.available))
            .collect();
        return Err(BoardError::BoardMismatch {
            board: req.board.name.clone(),
            problem: format!(
                "the design's estimated resources exceed the device ({}); choose a smaller configuration or pass --allow-over-budget",
                lines.join(", ")
            ),
        });
    }
    let wrapped = wrapper::wrap(core, req.accel).map_err(|e| BoardError::Interface {
        accel: req.accel.name.clone(),
        field: "core".into(),
        problem: e.to_string(),
    })?;
    let sources = wrapped
        .files()
        .into_iter()
        .map(|(name, contents)| SourceFile { name, contents })
        .collect();
    let spec = BundleSpec {
        board: req.board,
        accel: req.accel,
        sources,
        template_params: req.template_params.clone(),
        estimate: Some(req.estimate),
        options: req.options.clone(),
    };
    write_bundle(dir, &spec)
}
