//! The one runner the CLI tests share: run the built `accelforge` (user board
//! directories unset), with or without a watchdog, and check a refusal's message.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built `accelforge`, with the user's board directory unset (a developer's own boards must
/// not change results), for a caller that adds arguments, input or environment itself.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_accelforge"));
    c.env_remove("ACCELFORGE_BOARDS_DIR");
    c
}

/// Runs `accelforge` with `args` and returns what it did.
pub fn accelforge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .args(args)
        .env_remove("ACCELFORGE_BOARDS_DIR")
        .output()
        .unwrap()
}

/// Runs with a watchdog: a run still going after `limit` is killed and fails the test (a hang
/// is the bug; the bound is generous so a slow machine does not fail it).
pub fn accelforge_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_accelforge"))
        .args(args)
        .env_remove("ACCELFORGE_BOARDS_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("accelforge {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs and expects a non-zero exit, no panic, and a message containing every `needle`.
pub fn refused(args: &[&str], needles: &[&str]) {
    let o = accelforge(args);
    let e = stderr(&o);
    assert!(!o.status.success(), "{args:?} succeeded: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "{args:?}: `{n}` not in: {e}");
    }
}
