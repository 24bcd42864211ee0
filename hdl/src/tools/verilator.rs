//! `verilator --lint-only -Wall`.

use std::path::PathBuf;
use std::process::Command;

use super::{ToolInfo, check_inputs, require, run};
use crate::error::{HdlError, Result};

pub(crate) const TOOL: ToolInfo = ToolInfo {
    exe: "verilator",
    version_flag: "--version",
    min: (5, 0),
    need: "5.0",
    install: "apt-get install verilator",
};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `%Warning-...`
    Warning,
    /// `%Error...`
    Error,
}

/// One message from the linter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// Verilator's code, e.g. `WIDTHEXPAND` (empty for plain errors).
    pub code: String,
    /// File named by the message, if any.
    pub file: Option<String>,
    /// Line number, if any.
    pub line: Option<u32>,
    /// The message text.
    pub message: String,
}

/// The linter's verdict on a set of files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintReport {
    /// Every warning and error, in Verilator's order.
    pub diagnostics: Vec<Diagnostic>,
}

impl LintReport {
    /// True when there is nothing at all to report.
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }
    /// Errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        let code = if self.code.is_empty() {
            String::new()
        } else {
            format!("[{}]", self.code)
        };
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {sev}{code}: {}", self.message),
            _ => write!(f, "{sev}{code}: {}", self.message),
        }
    }
}

fn parse(text: &str) -> Vec<Diagnostic> {
    // Lines look like `%Warning-WIDTHEXPAND: f.v:3:12: Operator ...` or `%Error: f.v:3:1: ...`;
    // continuation lines (source excerpts, hints) start with spaces and are skipped.
    let re = regex::Regex::new(
        r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (?:([^:\s]+):(\d+):(?:\d+:)? )?(.*)$",
    )
    .ok();
    let Some(re) = re else { return Vec::new() };
    text.lines()
        .filter_map(|l| re.captures(l))
        .filter(|c| !c[6.min(c.len() - 1)].starts_with("Exiting due to"))
        .map(|c| Diagnostic {
            severity: if &c[1] == "Warning" {
                Severity::Warning
            } else {
                Severity::Error
            },
            code: c.get(2).map(|m| m.as_str().to_string()).unwrap_or_default(),
            file: c.get(3).map(|m| m.as_str().to_string()),
            line: c.get(4).and_then(|m| m.as_str().parse().ok()),
            message: c[5].to_string(),
        })
        .collect()
}

/// Runs `verilator --lint-only -Wall` on `files` (with `top` as the top module when given).
pub fn lint(files: &[PathBuf], top: Option<&str>) -> Result<LintReport> {
    check_inputs(files)?;
    if let Some(top) = top {
        crate::ident::check(top).map_err(|e| {
            HdlError::Misuse(format!(
                "--top: {e}; give the top module's name or omit --top"
            ))
        })?;
    }
    let (exe, _) = require(&TOOL)?;
    // Verilator 5.006 cuts a file name at its first space ("my dir/a.v" becomes "my"), which
    // shows up as a spurious DECLFILENAME warning. Such files are linted as copies under
    // space-free relative names in a scratch directory, and the diagnostics name the user's
    // files again.
    let spaced = files
        .iter()
        .any(|f| f.to_string_lossy().chars().any(char::is_whitespace));
    let scratch = if spaced {
        Some(
            tempfile::Builder::new()
                .prefix("accelforge-lint-")
                .tempdir()
                .map_err(|e| HdlError::io("creating", std::env::temp_dir(), e))?,
        )
    } else {
        None
    };
    let mut cmd = Command::new(&exe);
    cmd.args(["--lint-only", "-Wall", "--quiet-exit"]);
    if let Some(top) = top {
        cmd.args(["--top-module", top]);
    }
    let mut renames: Vec<(String, String)> = Vec::new();
    match &scratch {
        Some(dir) => {
            cmd.current_dir(dir.path());
            for (i, f) in files.iter().enumerate() {
                let base = f
                    .file_name()
                    .map(|n| n.to_string_lossy().replace(char::is_whitespace, "_"))
                    .unwrap_or_else(|| "file.v".into());
                let local = format!("d{i}/{base}");
                std::fs::create_dir_all(dir.path().join(format!("d{i}")))
                    .map_err(|e| HdlError::io("creating", dir.path(), e))?;
                std::fs::copy(f, dir.path().join(&local))
                    .map_err(|e| HdlError::io("copying", f, e))?;
                cmd.arg(&local);
                renames.push((local, f.display().to_string()));
            }
        }
        None => {
            cmd.args(files);
        }
    }
    let out = run(&exe, &mut cmd)?;
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let mut diagnostics = parse(&log);
    for d in &mut diagnostics {
        let user = d
            .file
            .as_ref()
            .and_then(|file| renames.iter().find(|(local, _)| local == file));
        if let Some((_, user)) = user {
            d.file = Some(user.clone());
        }
    }
    if !out.status.success() && diagnostics.is_empty() {
        let subject = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        return Err(HdlError::ToolFailed {
            tool: "verilator",
            subject,
            log,
        });
    }
    Ok(LintReport { diagnostics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_warning_and_error_lines() {
        let log = "%Warning-WIDTHEXPAND: a.v:3:12: Operator ADD expects 8 bits\n   3 | x\n%Error: b.v:1:1: syntax error\n%Error: Exiting due to 1 error(s)\n";
        let d = parse(log);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].code, "WIDTHEXPAND");
        assert_eq!(d[0].line, Some(3));
        assert_eq!(d[1].severity, Severity::Error);
        assert_eq!(d[1].file.as_deref(), Some("b.v"));
    }
}
