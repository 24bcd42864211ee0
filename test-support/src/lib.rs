//! Helpers the workspace's test suites share; a dev-dependency only, so nothing here is part of
//! a library's public API.

/// Whether `tool` (`verilator`, `iverilog` or `yosys`) can be run. When it cannot, this panics
/// if `CI=true` (a CI run must never pass by skipping) and otherwise prints why the caller is
/// skipping.
pub fn tool_available(tool: &str) -> bool {
    let status = accelforge_hdl::tools::doctor()
        .into_iter()
        .find(|(exe, _)| *exe == tool)
        .map_or_else(
            || Err(format!("unknown tool `{tool}`")),
            |(_, r)| r.map(|_| ()).map_err(|e| e.to_string()),
        );
    match status {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("CI=true and a required tool is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
            false
        }
    }
}
