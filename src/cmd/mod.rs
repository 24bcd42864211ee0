//! Subcommand registry. Add a subcommand by adding a file here, a variant to [`Command`] and an
//! arm to [`run`].

pub mod qfx;

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
    /// Fixed-point numerics with exact Vitis HLS ap_fixed semantics.
    Qfx(qfx::QfxArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Qfx(args) => qfx::run(args),
    }
}

/// Exit codes: 1 for runtime failures, 2 for bad input (clap uses 2 for usage errors too).
pub fn exit_code_for(_err: &anyhow::Error) -> u8 {
    1
}
