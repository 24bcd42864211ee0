//! `accelforge lint FILE.v...`: Verilator `-Wall` (and optionally Icarus) on Verilog files.

use std::path::PathBuf;

use accelforge_hdl::tools;
use anyhow::{Context, bail};

/// Lint Verilog files with `verilator --lint-only -Wall`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Verilog files to check together.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Top module (default: Verilator picks the one nothing instantiates).
    #[arg(long)]
    pub top: Option<String>,
    /// Also parse and elaborate with Icarus Verilog (`iverilog -g2005`).
    #[arg(long)]
    pub icarus: bool,
    /// Print the diagnostics as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LintArgs) -> anyhow::Result<()> {
    let report = tools::lint(&args.files, args.top.as_deref()).context("linting with Verilator")?;
    if args.icarus {
        tools::parse_check(&args.files, args.top.as_deref())
            .context("parsing with Icarus Verilog")?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.diagnostics {
            println!("{d}");
        }
    }
    if !report.is_clean() {
        bail!(
            "{} diagnostic(s) from verilator -Wall",
            report.diagnostics.len()
        );
    }
    if !args.json {
        println!(
            "clean: {} file(s), verilator -Wall{}",
            args.files.len(),
            if args.icarus {
                " and iverilog -g2005"
            } else {
                ""
            }
        );
    }
    Ok(())
}
