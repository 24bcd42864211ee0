//! One call from a template's core to a bitstream-ready bundle: wrap the core for Zynq, check the
//! estimate against the board's budget, and write every file of the bundle atomically.

use std::path::Path;

use accelforge_hdl::Design;

use super::accel::AccelInterface;
use super::bundle::{
    BundleSpec, EngineSpec, Manifest, SourceFile, write_bundle, write_engines_bundle,
};
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
    check_fits(req.board, &req.estimate, req.allow_over_budget)?;
    let sources = wrapped_sources(core, req.accel)?;
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

/// Refuses an estimate beyond the board, naming every resource over budget, unless allowed.
fn check_fits(board: &Board, estimate: &ResourceEstimate, allow: bool) -> Result<(), BoardError> {
    let report = check_budget(board, estimate);
    if !report.fits() && !allow {
        let lines: Vec<String> = report
            .exceeding()
            .iter()
            .map(|l| format!("{} {} of {}", l.resource, l.used, l.available))
            .collect();
        return Err(BoardError::BoardMismatch {
            board: board.name.clone(),
            problem: format!(
                "the design's estimated resources exceed the device ({}); choose a smaller configuration or pass --allow-over-budget",
                lines.join(", ")
            ),
        });
    }
    Ok(())
}

/// The core wrapped for Zynq, as bundle sources.
fn wrapped_sources(core: &Design, accel: &AccelInterface) -> Result<Vec<SourceFile>, BoardError> {
    let wrapped = wrapper::wrap(core, accel).map_err(|e| BoardError::Interface {
        accel: accel.name.clone(),
        field: "core".into(),
        problem: e.to_string(),
    })?;
    Ok(wrapped
        .files()
        .into_iter()
        .map(|(name, contents)| SourceFile { name, contents })
        .collect())
}

/// One engine of [`generate_engines_bundle`]: a core and its interface.
#[derive(Debug, Clone)]
pub struct EngineRequest<'a> {
    /// The template's core.
    pub core: &'a Design,
    /// Register map and stream widths of its wrapped top.
    pub accel: &'a AccelInterface,
    /// The template's parameters, recorded in the manifest.
    pub template_params: serde_json::Value,
    /// The template's resource estimate for the core.
    pub estimate: ResourceEstimate,
}

/// [`generate_bundle`] for several engines in one block design that builds to
/// `bitstream`.bit/.hwh: each core is wrapped, their summed estimate is checked against the
/// board, and the bundle is written into `dir` (see
/// [`render_engines_bundle`](super::bundle::render_engines_bundle)).
pub fn generate_engines_bundle(
    dir: &Path,
    board: &Board,
    engines: &[EngineRequest<'_>],
    bitstream: &str,
    allow_over_budget: bool,
    options: &BundleOptions,
) -> Result<Manifest, BoardError> {
    for e in engines {
        super::ZynqDesign::new(board, e.accel, options.clone())?;
    }
    let total = engines
        .iter()
        .fold(ResourceEstimate::default(), |t, e| t + e.estimate);
    check_fits(board, &total, allow_over_budget)?;
    let specs = engines
        .iter()
        .map(|e| {
            Ok(EngineSpec {
                accel: e.accel,
                sources: wrapped_sources(e.core, e.accel)?,
                template_params: e.template_params.clone(),
                estimate: Some(e.estimate),
            })
        })
        .collect::<Result<Vec<_>, BoardError>>()?;
    write_engines_bundle(dir, board, &specs, bitstream, options)
}
