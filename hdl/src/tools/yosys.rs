//! `yosys synth_xilinx`: cell statistics mapped to the resources FPGA engineers budget with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use super::{ToolInfo, check_inputs, require, run};
use crate::error::{HdlError, Result};

pub(crate) const TOOL: ToolInfo = ToolInfo {
    exe: "yosys",
    version_flag: "-V",
    min: (0, 20),
    need: "0.20",
    install: "apt-get install yosys",
};

/// Target family for `synth_xilinx -family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 7-series, including Zynq-7000 (DSP48E1, RAMB18E1/RAMB36E1).
    Xc7,
    /// UltraScale+, including Zynq UltraScale+ (DSP48E2, RAMB18E2/RAMB36E2, URAM288).
    Xcup,
}

impl Family {
    /// The name Yosys expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Xc7 => "xc7",
            Family::Xcup => "xcup",
        }
    }
}

impl FromStr for Family {
    type Err = HdlError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "xc7" | "7series" | "zynq7000" | "zynq-7000" => Ok(Family::Xc7),
            "xcup" | "ultrascale+" | "zynqmp" | "zynq-ultrascale+" => Ok(Family::Xcup),
            other => Err(HdlError::Misuse(format!(
                "unknown FPGA family `{other}`: use `xc7` (7-series, Zynq-7000) or `xcup` (UltraScale+, Zynq UltraScale+)"
            ))),
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resources after `synth_xilinx`, in the units a budget is written in.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SynthReport {
    /// Look-up tables, counting LUT-based RAMs and shift registers at their LUT cost.
    pub lut: u64,
    /// Flip-flops.
    pub ff: u64,
    /// Carry chains (CARRY4 on 7-series, CARRY8 on UltraScale+).
    pub carry: u64,
    /// DSP slices (DSP48E1 or DSP48E2).
    pub dsp: u64,
    /// RAMB18 primitives.
    pub bram18: u64,
    /// RAMB36 primitives (each is two BRAM18 of capacity; see [`SynthReport::bram18_equivalent`]).
    pub bram36: u64,
    /// UltraRAM blocks.
    pub uram: u64,
    /// Longest combinational path between registers, in cells (Yosys `ltp` with flip-flops
    /// removed): a rough proxy for the achievable clock.
    pub logic_depth: u64,
    /// Every cell type with its count, for whoever wants the detail.
    pub cells: BTreeMap<String, u64>,
}

impl SynthReport {
    /// Block RAM in BRAM18 units: a RAMB36 is two.
    pub fn bram18_equivalent(&self) -> u64 {
        self.bram18 + 2 * self.bram36
    }

    /// Folds Yosys cell counts into resources.
    pub fn from_cells(cells: BTreeMap<String, u64>, logic_depth: u64) -> SynthReport {
        let mut r = SynthReport {
            logic_depth,
            ..SynthReport::default()
        };
        for (cell, &n) in &cells {
            let c = cell.as_str();
            match c {
                "LUT1" | "LUT2" | "LUT3" | "LUT4" | "LUT5" | "LUT6" | "LUT6_2" | "INV" => {
                    r.lut += n
                }
                // LUT-based memories and shift registers, at the LUTs each occupies.
                "SRL16E" | "SRLC16E" | "SRLC32E" | "RAM32X1S" | "RAM64X1S" | "RAM32X1D" => {
                    r.lut += n * if c == "RAM32X1D" { 2 } else { 1 }
                }
                "RAM64X1D" | "RAM128X1S" => r.lut += 2 * n,
                "RAM32M" | "RAM64M" | "RAM128X1D" | "RAM256X1S" | "RAM32M16" | "RAM64M8" => {
                    r.lut += n * if c.ends_with("16") || c.ends_with("M8") {
                        8
                    } else {
                        4
                    }
                }
                "RAM256X1D" | "RAM512X1S" => r.lut += 8 * n,
                "CARRY4" | "CARRY8" => r.carry += n,
                "DSP48E1" | "DSP48E2" => r.dsp += n,
                "RAMB18E1" | "RAMB18E2" => r.bram18 += n,
                "RAMB36E1" | "RAMB36E2" => r.bram36 += n,
                "URAM288" | "URAM288_BASE" => r.uram += n,
                _ if c.starts_with("FD") || c.starts_with("LD") => r.ff += n,
                _ => {}
            }
        }
        r.cells = cells;
        r
    }
}

fn parse_stat_json(text: &str, top: &str) -> Result<BTreeMap<String, u64>> {
    let bad = |problem: String| HdlError::ToolOutput {
        tool: "yosys",
        problem,
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("stat -json is not JSON: {e}")))?;
    let modules = v
        .get("modules")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("stat -json has no modules".into()))?;
    let key = format!("\\{top}");
    let m = modules
        .get(&key)
        .or_else(|| modules.values().next())
        .ok_or_else(|| bad(format!("no module `{top}` in stat -json")))?;
    let by_type = m
        .get("num_cells_by_type")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    Ok(by_type
        .into_iter()
        .map(|(k, v)| {
            (
                k.trim_start_matches('\\').to_string(),
                v.as_u64().unwrap_or(0),
            )
        })
        .collect())
}

fn parse_ltp(text: &str) -> u64 {
    regex::Regex::new(r"length=(-?\d+)")
        .ok()
        .and_then(|re| re.captures(text).and_then(|c| c[1].parse::<i64>().ok()))
        .map_or(0, |n| n.max(0) as u64)
}

/// Whether Verilog text asks for UltraRAM: a `ram_style` attribute of `"ultra"`, however it
/// is spaced or cased (our printer writes `(* ram_style = "ultra" *)`; a user's file given to
/// `accelforge synth` may not).
fn asks_for_uram(verilog: &str) -> bool {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r#"(?i)\bram_style\s*=\s*"ultra""#).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(verilog))
}

/// Synthesises `files` with `synth_xilinx -family <family> -flatten` (no I/O buffers, as for a
/// block inside a larger design) and reports resources and logic depth.
pub fn synth(files: &[PathBuf], top: &str, family: Family) -> Result<SynthReport> {
    check_inputs(files)?;
    crate::ident::check(top)?;
    let (exe, _) = require(&TOOL)?;
    let work = tempfile::Builder::new()
        .prefix("accelforge-yosys-")
        .tempdir()
        .map_err(|e| HdlError::io("creating", std::env::temp_dir(), e))?;
    let stat = work.path().join("stat.json");
    let ltp = work.path().join("ltp.txt");
    let mut script = String::new();
    // Yosys' command parser splits on whitespace, so inputs are copied under plain names and
    // every path in the script is relative to the work directory Yosys runs in: neither a
    // space in the user's path nor one in TMPDIR reaches the parser.
    let local_names: Vec<String> = (0..files.len())
        .map(|i| format!("accelforge_in{i}.v"))
        .collect();
    let mut wants_uram = false;
    for (f, local) in files.iter().zip(&local_names) {
        std::fs::copy(f, work.path().join(local)).map_err(|e| HdlError::io("copying", f, e))?;
        script.push_str(&format!("read_verilog {local}\n"));
        wants_uram |= std::fs::read_to_string(f).is_ok_and(|t| asks_for_uram(&t));
    }
    // URAM288 inference is opt-in in Yosys (`-uram`); it is asked for only when a memory of the
    // design requests it, so that large memories without a style keep their block-RAM mapping.
    let uram = if wants_uram && family == Family::Xcup {
        " -uram"
    } else {
        ""
    };
    script.push_str(&format!(
        "synth_xilinx -family {} -top {top} -flatten -noiopad -noclkbuf{uram}\n\
         tee -q -o stat.json stat -json\n\
         delete t:FD*\n\
         tee -q -o ltp.txt ltp -noff\n",
        family.as_str(),
    ));
    let script_path = work.path().join("synth.ys");
    std::fs::write(&script_path, &script).map_err(|e| HdlError::io("writing", &script_path, e))?;
    let log_path = work.path().join("yosys.log");
    let mut cmd = Command::new(&exe);
    cmd.current_dir(work.path())
        .arg("-q")
        .arg("-l")
        .arg("yosys.log")
        .arg("-s")
        .arg("synth.ys");
    let out = run(&exe, &mut cmd)?;
    if !out.status.success() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let relevant: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("Error") || l.contains("error"))
            .collect();
        let mut text = relevant.join("\n");
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        return Err(HdlError::ToolFailed {
            tool: "yosys",
            subject: top.to_string(),
            log: user_paths(&text, work.path(), files, &local_names),
        });
    }
    let stat_text =
        std::fs::read_to_string(&stat).map_err(|e| HdlError::io("reading", &stat, e))?;
    let cells = parse_stat_json(&stat_text, top)?;
    let depth = parse_ltp(&std::fs::read_to_string(&ltp).unwrap_or_default());
    Ok(SynthReport::from_cells(cells, depth))
}

/// `text` with the temporary copies' names (bare or under `work`) replaced by the user's paths,
/// so an error names the file the user gave.
fn user_paths(text: &str, work: &Path, files: &[PathBuf], local: &[String]) -> String {
    let mut out = text.to_string();
    // Highest index first, so `accelforge_in1.v` never rewrites part of `accelforge_in12.v`.
    for (f, name) in files.iter().zip(local).rev() {
        let user = f.display().to_string();
        out = out.replace(&work.join(name).display().to_string(), &user);
        let re = regex::Regex::new(&format!(r"(^|[^A-Za-z0-9_./]){}", regex::escape(name)));
        if let Ok(re) = re {
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| format!("{}{user}", &c[1]))
                .into_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uram_requests_are_recognised_however_written() {
        assert!(asks_for_uram(
            "(* ram_style = \"ultra\" *) reg [7:0] m [0:9];"
        ));
        assert!(asks_for_uram("(*ram_style=\"ULTRA\"*) reg [7:0] m [0:9];"));
        assert!(!asks_for_uram(
            "(* ram_style = \"block\" *) reg [7:0] m [0:9];"
        ));
        assert!(!asks_for_uram("(* my_ram_style = \"ultra\" *)"));
        assert!(!asks_for_uram("// ultra"));
    }

    #[test]
    fn cells_fold_into_resources() {
        let cells: BTreeMap<String, u64> = [
            ("LUT2", 3),
            ("LUT6", 1),
            ("FDRE", 5),
            ("FDSE", 1),
            ("CARRY4", 2),
            ("DSP48E1", 1),
            ("RAMB36E1", 1),
            ("RAMB18E1", 1),
            ("RAM64M", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let r = SynthReport::from_cells(cells, 7);
        assert_eq!(
            (r.lut, r.ff, r.carry, r.dsp, r.bram18, r.bram36),
            (12, 6, 2, 1, 1, 1)
        );
        assert_eq!(r.bram18_equivalent(), 3);
        assert_eq!(r.logic_depth, 7);
    }

    #[test]
    fn family_parses() {
        assert_eq!("XC7".parse::<Family>().ok(), Some(Family::Xc7));
        assert!("virtex2".parse::<Family>().is_err());
    }
}
