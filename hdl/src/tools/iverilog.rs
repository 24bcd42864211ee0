//! `iverilog -g2005 -t null`: a second, independent parser and elaborator, to keep the emitted
//! subset portable beyond Verilator.

use std::path::PathBuf;
use std::process::Command;

use super::{ToolInfo, check_inputs, require, run};
use crate::error::{HdlError, Result};

pub(crate) const TOOL: ToolInfo = ToolInfo {
    exe: "iverilog",
    version_flag: "-V",
    min: (10, 0),
    need: "10.0",
    install: "apt-get install iverilog",
};

/// Parses and elaborates `files` as Verilog-2005 with Icarus; an error carries its messages.
pub fn parse_check(files: &[PathBuf], top: Option<&str>) -> Result<()> {
    check_inputs(files)?;
    let (exe, _) = require(&TOOL)?;
    let mut cmd = Command::new(&exe);
    cmd.args(["-g2005", "-Wall", "-t", "null"]);
    if let Some(top) = top {
        cmd.args(["-s", top]);
    }
    cmd.args(files);
    let out = run(&exe, &mut cmd)?;
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // Icarus exits 0 on warnings; treat any message as a failure so the subset stays clean.
    let messages: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if !out.status.success() || !messages.is_empty() {
        let subject = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        return Err(HdlError::ToolFailed {
            tool: "iverilog",
            subject,
            log: messages.join("\n"),
        });
    }
    Ok(())
}
