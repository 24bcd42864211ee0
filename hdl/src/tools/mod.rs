//! Wrappers around the external tools: Verilator (lint), Icarus Verilog (parse check) and Yosys
//! (`synth_xilinx` statistics). Each finds its tool, checks the version, runs it on files and
//! returns typed results; a missing or too-old tool is an error that says how to install it.

mod iverilog;
mod verilator;
mod yosys;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use iverilog::parse_check;
pub use verilator::{Diagnostic, LintReport, Severity, lint};
pub use yosys::{Family, SynthReport, synth};

use crate::design::Design;
use crate::error::{HdlError, Result};

/// A tool the project depends on, with how to get it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolInfo {
    pub exe: &'static str,
    pub version_flag: &'static str,
    pub min: (u32, u32),
    pub need: &'static str,
    pub install: &'static str,
}

/// Locates `exe` on PATH (or through the `ACCELFORGE_<EXE>` variable, e.g.
/// `ACCELFORGE_VERILATOR=/opt/verilator/bin/verilator`).
pub(crate) fn locate(tool: &ToolInfo) -> Result<PathBuf> {
    let var = format!("ACCELFORGE_{}", tool.exe.to_ascii_uppercase());
    if let Some(p) = std::env::var_os(&var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool.exe))
        .find(|p| p.is_file())
        .ok_or(HdlError::ToolMissing {
            tool: tool.exe,
            install: tool.install,
        })
}

/// First `major.minor` pair found in a version banner.
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32)> {
    let re = regex::Regex::new(r"(\d+)\.(\d+)").ok()?;
    let c = re.captures(text)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

/// Finds the tool and checks it is new enough; returns its path and version banner.
pub(crate) fn require(tool: &ToolInfo) -> Result<(PathBuf, String)> {
    let exe = locate(tool)?;
    let out = Command::new(&exe)
        .arg(tool.version_flag)
        .output()
        .map_err(|e| HdlError::io("running", &exe, e))?;
    let banner = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let banner = banner.lines().next().unwrap_or("").trim().to_string();
    match parse_version(&banner) {
        Some(v) if v >= tool.min => Ok((exe, banner)),
        _ => Err(HdlError::ToolTooOld {
            tool: tool.exe,
            found: banner,
            need: tool.need,
            install: tool.install,
        }),
    }
}

pub(crate) fn run(exe: &Path, cmd: &mut Command) -> Result<Output> {
    cmd.output().map_err(|e| HdlError::io("running", exe, e))
}

/// The Verilog files of a design written to a fresh temporary directory, for tools that want
/// paths. The directory lives as long as this value.
#[derive(Debug)]
pub struct DesignFiles {
    _dir: tempfile::TempDir,
    /// Paths of the written files.
    pub paths: Vec<PathBuf>,
}

impl DesignFiles {
    /// Writes `design` out.
    pub fn new(design: &Design) -> Result<DesignFiles> {
        let dir = tempfile::Builder::new()
            .prefix("accelforge-hdl-")
            .tempdir()
            .map_err(|e| HdlError::io("creating", std::env::temp_dir(), e))?;
        let paths = design.write_to(dir.path())?;
        Ok(DesignFiles { _dir: dir, paths })
    }
}

/// Checks input files exist before a tool sees them, so the error names the file plainly.
pub(crate) fn check_inputs(files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        return Err(HdlError::Misuse("no Verilog files given".into()));
    }
    for f in files {
        if !f.is_file() {
            return Err(HdlError::io(
                "reading",
                f,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
    }
    Ok(())
}

/// Whether the three tools are present and new enough, as `(tool, Ok(version) | Err)` pairs.
pub fn doctor() -> Vec<(&'static str, Result<String>)> {
    [verilator::TOOL, iverilog::TOOL, yosys::TOOL]
        .iter()
        .map(|t| (t.exe, require(t).map(|(_, v)| v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_banners() {
        assert_eq!(
            parse_version("Verilator 5.006 2023-01-22 rev (Debian 5.006-3)"),
            Some((5, 6))
        );
        assert_eq!(
            parse_version("Yosys 0.23 (git sha1 7ce5011c24b)"),
            Some((0, 23))
        );
        assert_eq!(
            parse_version("Icarus Verilog version 11.0 (stable) ()"),
            Some((11, 0))
        );
    }

    #[test]
    fn missing_tool_names_install_command() {
        let t = ToolInfo {
            exe: "definitely-not-a-tool-xyz",
            version_flag: "--version",
            min: (1, 0),
            need: "1.0",
            install: "apt-get install xyz",
        };
        let err = require(&t).unwrap_err().to_string();
        assert!(
            err.contains("definitely-not-a-tool-xyz") && err.contains("apt-get install xyz"),
            "{err}"
        );
    }
}
