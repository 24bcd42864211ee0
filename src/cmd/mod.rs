//! Subcommand registry. Add a subcommand by adding a file here, a variant to [`Command`] and an
//! arm to [`run`].

pub mod block;
pub mod boards;
pub mod calibrate;
pub mod demo;
pub mod demo_digits;
pub mod estimate;
// `gen` is a reserved keyword in edition 2024; the file keeps the subcommand's name.
pub mod gen_model;
#[path = "gen.rs"]
pub mod generate;
pub mod import;
pub mod lint;
pub mod map;
pub mod map_mixed;
pub mod merge;
pub mod moe;
pub mod npy;
pub mod qfx;
pub mod report;
pub mod run;
pub mod run_rtl;
pub mod sensitivity;
pub mod sim;
pub mod sweep;
pub mod synth;
pub mod template;

use clap::{Parser, Subcommand};

/// FPGA accelerator co-design: generate Verilog templates, simulate them cycle-accurately in
/// Verilator against bit-exact golden models, map workloads onto Zynq boards.
#[derive(Debug, Parser)]
#[command(name = "accelforge", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint Verilog files with `verilator --lint-only -Wall`.
    Lint(lint::LintArgs),
    /// Synthesise Verilog with Yosys and report FPGA resources.
    Synth(synth::SynthArgs),
    /// Run the built-in demonstration flow (the README's first command).
    Demo(demo::DemoArgs),
    /// Check that Verilator, Icarus Verilog and Yosys are installed and new enough.
    Doctor,
    /// Board database: list boards, show one with the source of every number.
    Boards(boards::BoardsArgs),
    /// Regenerate the resource-model calibration against Yosys (data file and report).
    Calibrate(calibrate::CalibrateArgs),
    /// Map a workload onto a board: choose engine configuration(s) under the board's budget.
    Map(map::MapArgs),
    /// Fixed-point numerics with exact Vitis HLS ap_fixed semantics.
    Qfx(qfx::QfxArgs),
    /// Generate a template's Verilog, params.json and a summary; `gen MODEL.onnx --board B
    /// --out DIR` writes the Zynq bundle and network package of a model.
    Gen(generate::GenArgs),
    /// Simulate a template in Verilator against its golden model.
    Sim(sim::SimArgs),
    /// Analytic cycle and resource estimates.
    Estimate(estimate::EstimateArgs),
    /// Sweep a design space from a spec file (parallel, streaming, resumable, shardable).
    Sweep(sweep::SweepArgs),
    /// Join sweep output directories (shards) and recompute the CSV files and summary.
    Merge(merge::MergeArgs),
    /// Read an ONNX model (QONNX or QCDQ): its integer layer table and a workload for `map`.
    Import(import::ImportArgs),
    /// Run an ONNX model on a batch of inputs (golden engine) and write its outputs.
    Run(run::RunArgs),
    /// Per-quantizer precision sensitivity of a QONNX model on calibration data.
    Sensitivity(sensitivity::SensitivityArgs),
    /// Charts and an HTML page for a sweep, map or sim result directory.
    Report(report::ReportArgs),
    /// List the registered templates (each runs under `gen|estimate|sim NAME --params FILE`).
    Templates(template::TemplatesArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Lint(a) => lint::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Doctor => doctor(),
        Command::Demo(a) => demo::run(a),
        Command::Boards(a) => boards::run(a),
        Command::Map(a) => map::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Qfx(a) => qfx::run(a),
        Command::Gen(a) => generate::run(a),
        Command::Sim(a) => sim::run(a),
        Command::Estimate(a) => estimate::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Report(a) => report::run(a),
        Command::Import(a) => import::run(a),
        Command::Run(a) => run::run(a),
        Command::Sensitivity(a) => sensitivity::run(a),
        Command::Templates(a) => template::list(a),
    }
}

fn doctor() -> anyhow::Result<()> {
    let mut missing = 0;
    for (tool, status) in accelforge_hdl::tools::doctor() {
        match status {
            Ok(v) => println!("ok       {tool:<10} {v}"),
            Err(e) => {
                missing += 1;
                println!("missing  {tool:<10} {e}");
            }
        }
    }
    anyhow::ensure!(missing == 0, "{missing} tool(s) missing or too old");
    Ok(())
}

/// Exit code for a failed command (clap itself uses 2 for usage errors).
pub fn exit_code_for(_err: &anyhow::Error) -> u8 {
    1
}
