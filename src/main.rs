//! `accelforge`: the command-line front end. Each subcommand lives in its own file under
//! `src/cmd/` and stays thin: parse → validated plan → library calls.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(cmd::exit_code_for(&err))
        }
    }
}
