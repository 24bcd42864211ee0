//! `accelforge`: the command-line front end. Each subcommand lives in its own file under
//! `src/cmd/` and stays thin: parse → validated plan → library calls.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(cmd::exit_code_for(&err))
        }
    }
}

/// Rust ignores SIGPIPE, so `accelforge boards list --json | head -c 5` made every `println!`
/// panic on the closed pipe. With the default action restored the process ends quietly when its
/// reader goes away, as `cat` or `ls` do; one call covers every print in every subcommand.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
