//! Runs a bundle's `build.tcl` under the Vivado stand-in (`fpga-boards/tests/vivado_stub.tcl`)
//! in tclsh (shared by the bundle modules of the CLI test binary).

use std::path::Path;
use std::process::Command;

use accelforge_boards::{AccelInterface, PortDir};

/// The stand-in's set-up for a wrapped top with `accel`'s ports.
pub fn prelude(accel: &AccelInterface) -> String {
    let ports: Vec<String> = accel
        .expected_ports()
        .iter()
        .map(|p| {
            let dir = if p.dir == PortDir::Input {
                "input"
            } else {
                "output"
            };
            format!("{{{} {dir} {}}}", p.name, p.width)
        })
        .collect();
    let stub = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fpga-boards/tests/vivado_stub.tcl"
    );
    format!(
        "source {{{stub}}}\n::stub::declare_module {} {{{}}}\n::stub::set_board_parts {{}}\n",
        accel.name,
        ports.join(" ")
    )
}

/// Runs `bundle/build.tcl` after `prelude`; fails unless the stand-in reports success. Returns
/// its output. No board files are installed, so the bare part is opted in explicitly.
pub fn run(bundle: &Path, prelude: &str) -> String {
    let runner = bundle
        .parent()
        .expect("bundle has a parent")
        .join("runner.tcl");
    let script = format!(
        "{prelude}set argv {{--jobs 2 --allow-bare-part}}\nset argc 3\nsource {{{}}}\n::stub::finish\n",
        bundle.join("build.tcl").display()
    );
    std::fs::write(&runner, script).expect("writing the runner script");
    let out = Command::new("tclsh")
        .arg(&runner)
        .output()
        .expect("tclsh must be installed (apt-get install tcl)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("VIVADO-STUB OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
