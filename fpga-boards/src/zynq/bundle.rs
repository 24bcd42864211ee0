//! Writing a whole bundle directory atomically, with its manifest.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::accel::{AccelInterface, Register};
use super::{BundleOptions, ZynqDesign};
use crate::board::Board;
use crate::budget::{BudgetReport, ResourceEstimate, check_budget};
use crate::error::{BoardError, Result};

/// A Verilog source file for the bundle's `hdl/` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// File name (no directories): letters, digits, `_`, `-`, `.`; ending in `.v`.
    pub name: String,
    /// File contents.
    pub contents: String,
}

/// Everything `write_bundle` needs.
#[derive(Debug, Clone)]
pub struct BundleSpec<'a> {
    /// Target board.
    pub board: &'a Board,
    /// The wrapped accelerator.
    pub accel: &'a AccelInterface,
    /// Plain-Verilog sources; one must define the module `accel.name`.
    pub sources: Vec<SourceFile>,
    /// The template's parameters, recorded verbatim in the manifest.
    pub template_params: serde_json::Value,
    /// Resource estimate to compare with the board, if the caller has one.
    pub estimate: Option<ResourceEstimate>,
    /// Project options.
    pub options: BundleOptions,
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the bundle directory, `/`-separated.
    pub path: String,
    /// What the file is (`vivado-build`, `pynq-driver`, …).
    pub role: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
}

/// Estimate and budget as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestBudget {
    /// The caller's estimate.
    pub estimate: ResourceEstimate,
    /// Per-resource utilisation on the board.
    pub report: BudgetReport,
    /// True when nothing exceeds the device.
    pub fits: bool,
}

/// `manifest.json`: what was generated, for what, from what. Contains no timestamps so the same
/// inputs give the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `accelforge-boards`.
    pub generator: String,
    /// Crate version.
    pub generator_version: String,
    /// Board name (database id).
    pub board: String,
    /// Board display name.
    pub board_display_name: String,
    /// Vivado part.
    pub part: String,
    /// Vivado board part, if any.
    pub board_part: Option<String>,
    /// `xc7` or `xcup`.
    pub family: String,
    /// PL clock, MHz.
    pub clock_mhz: f64,
    /// PS slave port the DMA uses.
    pub dma_port: String,
    /// Base name of `.bit`/`.hwh` once built.
    pub base_name: String,
    /// Block-design cell names the driver relies on.
    pub accel_cell: String,
    /// AXI DMA cell name.
    pub dma_cell: String,
    /// The accelerator interface.
    pub accel: AccelInterface,
    /// Register map with the driver's constant names.
    pub registers: Vec<Register>,
    /// The template parameters, verbatim.
    pub template_params: serde_json::Value,
    /// Estimate vs budget, when an estimate was given.
    pub budget: Option<ManifestBudget>,
    /// Files written (manifest.json itself excluded).
    pub files: Vec<ManifestFile>,
    /// Every engine of a block design with several (the fields above describe engine 0 and
    /// `budget` their sum); empty for a one-engine bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<ManifestEngine>,
}

/// One engine of a several-engine bundle, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEngine {
    /// Its index: cells `accel_<n>`, `axi_dma_<n>`.
    pub engine: usize,
    /// The accelerator's block-design cell.
    pub accel_cell: String,
    /// Its AXI DMA's cell.
    pub dma_cell: String,
    /// The Python module of its driver (file `<module>.py`).
    pub driver_module: String,
    /// The accelerator interface.
    pub accel: AccelInterface,
    /// Register map with the driver's constant names.
    pub registers: Vec<Register>,
    /// Its template parameters, verbatim.
    pub template_params: serde_json::Value,
    /// Its resource estimate, if the caller gave one.
    pub estimate: Option<ResourceEstimate>,
}

/// One accelerator of a several-engine bundle (see [`render_engines_bundle`]).
#[derive(Debug, Clone)]
pub struct EngineSpec<'a> {
    /// The wrapped accelerator.
    pub accel: &'a AccelInterface,
    /// Its plain-Verilog sources; one must define the module `accel.name`.
    pub sources: Vec<SourceFile>,
    /// Its template parameters, recorded verbatim in the manifest.
    pub template_params: serde_json::Value,
    /// Its resource estimate, if the caller has one.
    pub estimate: Option<ResourceEstimate>,
}

impl ManifestFile {
    /// The entry for a file written beside the bundle's own (e.g. a network package).
    pub fn of(path: &str, role: &str, bytes: &[u8]) -> ManifestFile {
        ManifestFile {
            path: path.to_string(),
            role: role.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// The generated files in memory, before writing.
#[derive(Debug, Clone)]
pub struct BundleFiles {
    /// `(relative path, role, contents)`.
    pub files: Vec<(String, String, String)>,
    /// The manifest describing them.
    pub manifest: Manifest,
}

fn check_source_name(name: &str) -> Result<()> {
    let bad = |problem: &str| BoardError::SourceName {
        name: name.to_string(),
        problem: problem.to_string(),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || name.starts_with('.')
    {
        return Err(bad(
            "use a plain file name of letters, digits, `_`, `-`, `.` (no directories, not hidden)",
        ));
    }
    if !name.ends_with(".v") {
        return Err(bad(
            "must end in `.v`: a Vivado module reference needs Verilog (or VHDL), not SystemVerilog",
        ));
    }
    Ok(())
}

/// The sources' file names, each checked and not among `seen` (which collects them).
fn source_names(sources: &[SourceFile], seen: &mut Vec<String>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for s in sources {
        check_source_name(&s.name)?;
        if seen.iter().any(|n| n == &s.name) {
            return Err(BoardError::SourceName {
                name: s.name.clone(),
                problem: "given twice".into(),
            });
        }
        seen.push(s.name.clone());
        names.push(s.name.clone());
    }
    Ok(names)
}

fn manifest_files(files: &[(String, String, String)]) -> Vec<ManifestFile> {
    files
        .iter()
        .map(|(path, role, text)| ManifestFile::of(path, role, text.as_bytes()))
        .collect()
}

/// Generates every file of a block design with several engines in memory: engine `n`'s
/// accelerator is cell `accel_<n>` behind `axi_dma_<n>`, with its own driver module,
/// out-of-context script (`synth_ooc_<n>.tcl`) and XDC; `build.tcl` builds them all into
/// `bitstream`.bit/.hwh. The estimate checked against the board is the engines' sum.
pub fn render_engines_bundle(
    board: &Board,
    engines: &[EngineSpec<'_>],
    bitstream: &str,
    options: &BundleOptions,
) -> Result<BundleFiles> {
    let designs = engines
        .iter()
        .enumerate()
        .map(|(n, e)| Ok(ZynqDesign::new(board, e.accel, options.clone())?.as_engine(n, bitstream)))
        .collect::<Result<Vec<_>>>()?;
    super::tcl::check_engines(&designs)?;
    let mut all = Vec::new();
    let mut per_engine = Vec::new();
    for e in engines {
        if e.sources.is_empty() {
            return Err(BoardError::SourceName {
                name: String::new(),
                problem: format!(
                    "no Verilog sources given; one must define module `{}`",
                    e.accel.name
                ),
            });
        }
        per_engine.push(source_names(&e.sources, &mut all)?);
    }
    let mut files: Vec<(String, String, String)> = engines
        .iter()
        .flat_map(|e| &e.sources)
        .map(|s| {
            (
                format!("hdl/{}", s.name),
                "verilog-source".to_string(),
                s.contents.clone(),
            )
        })
        .collect();
    files.push((
        "build.tcl".into(),
        "vivado-build".into(),
        super::tcl::engines_build_tcl(&designs, &all)?,
    ));
    for (d, names) in designs.iter().zip(&per_engine) {
        files.push((
            format!("synth_ooc_{}.tcl", d.engine),
            "vivado-ooc-synth".into(),
            super::tcl::synth_ooc_tcl(d, names),
        ));
        files.push((
            format!("{}.xdc", d.ooc_name()),
            "constraints".into(),
            super::xdc::xdc(d),
        ));
        files.push((
            format!("{}.py", d.driver_module()),
            "pynq-driver".into(),
            super::pynq::driver(d),
        ));
    }
    let mut listed: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    listed.push("README.md".into());
    listed.push("manifest.json".into());
    files.push((
        "README.md".into(),
        "readme".into(),
        super::readme::engines_readme(&designs, &listed),
    ));
    let estimate = engines
        .iter()
        .try_fold(ResourceEstimate::default(), |t, e| {
            e.estimate.map(|x| t + x)
        });
    let budget = estimate.map(|estimate| {
        let report = check_budget(board, &estimate);
        ManifestBudget {
            estimate,
            fits: report.fits(),
            report,
        }
    });
    let first = &designs[0];
    let manifest = Manifest {
        generator: env!("CARGO_PKG_NAME").to_string(),
        generator_version: env!("CARGO_PKG_VERSION").to_string(),
        board: board.name.clone(),
        board_display_name: board.display_name.clone(),
        part: board.part.value.clone(),
        board_part: board.board_part.as_ref().map(|b| b.value.clone()),
        family: board.family.yosys_name().to_string(),
        clock_mhz: first.accel.clock_mhz,
        dma_port: first.dma_port.clone(),
        base_name: bitstream.to_string(),
        accel_cell: first.accel_cell(),
        dma_cell: first.dma_cell(),
        accel: first.accel.clone(),
        registers: first.accel.register_map(),
        template_params: engines[0].template_params.clone(),
        budget,
        files: manifest_files(&files),
        engines: designs
            .iter()
            .zip(engines)
            .map(|(d, e)| ManifestEngine {
                engine: d.engine,
                accel_cell: d.accel_cell(),
                dma_cell: d.dma_cell(),
                driver_module: d.driver_module(),
                accel: e.accel.clone(),
                registers: e.accel.register_map(),
                template_params: e.template_params.clone(),
                estimate: e.estimate,
            })
            .collect(),
    };
    Ok(BundleFiles { files, manifest })
}

/// Generates every file of the bundle in memory.
pub fn render_bundle(spec: &BundleSpec<'_>) -> Result<BundleFiles> {
    let design = ZynqDesign::new(spec.board, spec.accel, spec.options.clone())?;
    if spec.sources.is_empty() {
        return Err(BoardError::SourceName {
            name: String::new(),
            problem: format!(
                "no Verilog sources given; one must define module `{}`",
                spec.accel.name
            ),
        });
    }
    let names = source_names(&spec.sources, &mut Vec::new())?;
    let base = design.base_name();
    let mut files: Vec<(String, String, String)> = spec
        .sources
        .iter()
        .map(|s| {
            (
                format!("hdl/{}", s.name),
                "verilog-source".to_string(),
                s.contents.clone(),
            )
        })
        .collect();
    files.push((
        "build.tcl".into(),
        "vivado-build".into(),
        super::tcl::build_tcl(&design, &names),
    ));
    files.push((
        "synth_ooc.tcl".into(),
        "vivado-ooc-synth".into(),
        super::tcl::synth_ooc_tcl(&design, &names),
    ));
    files.push((
        format!("{base}.xdc"),
        "constraints".into(),
        super::xdc::xdc(&design),
    ));
    files.push((
        format!("{}.py", design.driver_module()),
        "pynq-driver".into(),
        super::pynq::driver(&design),
    ));
    let mut listed: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    listed.push("README.md".into());
    listed.push("manifest.json".into());
    files.push((
        "README.md".into(),
        "readme".into(),
        super::readme::readme(&design, &listed),
    ));
    let manifest_files = manifest_files(&files);
    let budget = spec.estimate.map(|estimate| {
        let report = check_budget(spec.board, &estimate);
        ManifestBudget {
            estimate,
            fits: report.fits(),
            report,
        }
    });
    let manifest = Manifest {
        generator: env!("CARGO_PKG_NAME").to_string(),
        generator_version: env!("CARGO_PKG_VERSION").to_string(),
        board: spec.board.name.clone(),
        board_display_name: spec.board.display_name.clone(),
        part: spec.board.part.value.clone(),
        board_part: spec.board.board_part.as_ref().map(|b| b.value.clone()),
        family: spec.board.family.yosys_name().to_string(),
        clock_mhz: spec.accel.clock_mhz,
        dma_port: design.dma_port.clone(),
        base_name: base,
        accel_cell: super::tcl::ACCEL_CELL.to_string(),
        dma_cell: super::tcl::DMA_CELL.to_string(),
        accel: spec.accel.clone(),
        registers: spec.accel.register_map(),
        template_params: spec.template_params.clone(),
        budget,
        files: manifest_files,
        engines: Vec::new(),
    };
    Ok(BundleFiles { files, manifest })
}

/// Generates the bundle and writes it to `dir` atomically: everything goes into a temporary
/// directory beside `dir`, which is renamed into place only when complete, so an error leaves
/// either the old directory or nothing. Returns the manifest.
pub fn write_bundle(dir: &Path, spec: &BundleSpec<'_>) -> Result<Manifest> {
    write_rendered(dir, render_bundle(spec)?, spec.options.overwrite)
}

/// [`write_bundle`] for a block design with several engines (see [`render_engines_bundle`]).
pub fn write_engines_bundle(
    dir: &Path,
    board: &Board,
    engines: &[EngineSpec<'_>],
    bitstream: &str,
    options: &BundleOptions,
) -> Result<Manifest> {
    write_rendered(
        dir,
        render_engines_bundle(board, engines, bitstream, options)?,
        options.overwrite,
    )
}

/// Writes rendered files and their manifest into `dir` atomically.
fn write_rendered(dir: &Path, rendered: BundleFiles, overwrite: bool) -> Result<Manifest> {
    let werr = |action: String| {
        let dir = dir.to_path_buf();
        move |source| BoardError::Write {
            dir,
            action,
            source,
        }
    };
    if dir.exists() && !overwrite {
        return Err(BoardError::Exists {
            dir: dir.to_path_buf(),
        });
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(werr(format!(
        "create parent directory {}",
        parent.display()
    )))?;
    let tmp = tempfile::Builder::new()
        .prefix(".accelforge-bundle-")
        .tempdir_in(&parent)
        .map_err(werr("create temporary directory".into()))?;
    for (path, _, text) in &rendered.files {
        let target = tmp.path().join(path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(werr(format!("create directory for {path}")))?;
        }
        std::fs::write(&target, text).map_err(werr(format!("write {path}")))?;
    }
    let json = serde_json::to_string_pretty(&rendered.manifest).map_err(|source| {
        BoardError::Manifest {
            dir: dir.to_path_buf(),
            source,
        }
    })?;
    std::fs::write(tmp.path().join("manifest.json"), json + "\n")
        .map_err(werr("write manifest.json".into()))?;

    // Move an existing bundle aside first: rename() cannot replace a non-empty directory.
    let backup = if dir.exists() {
        let holder = tempfile::Builder::new()
            .prefix(".accelforge-old-")
            .tempdir_in(&parent)
            .map_err(werr("create backup directory".into()))?;
        let old = holder.path().join("old");
        std::fs::rename(dir, &old).map_err(werr("move the old bundle aside".into()))?;
        Some((holder, old))
    } else {
        None
    };
    let tmp_path = tmp.keep();
    if let Err(source) = std::fs::rename(&tmp_path, dir) {
        // Put the old bundle back and drop the new one; report the original failure.
        if let Some((_, old)) = &backup {
            let _ = std::fs::rename(old, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp_path);
        return Err(BoardError::Write {
            dir: dir.to_path_buf(),
            action: "move the new bundle into place".into(),
            source,
        });
    }
    // The backup holder (a TempDir) deletes the old bundle when dropped.
    drop(backup);
    Ok(rendered.manifest)
}
