//! The CLI's integration tests, in one test binary (one link of the CLI and its dependencies
//! instead of one per file), a module per area, and one shared runner (`common::cli`): run the
//! built `accelforge` with the user's board directory unset, check a refusal's message, run
//! with a watchdog. `common::vivado_stub` stands in for Vivado. Python helpers live in
//! `tests/python/`, model fixtures in `models/tests/fixtures/`.

mod common;

mod attention_cli;
mod block_cli;
mod boards_cli;
mod bundle_cli;
mod bundle_snapshots;
mod calibrate_cli;
mod cli_foundation;
mod estimate_snapshots;
mod hardening_cli;
mod limits_cli;
mod map_cli;
mod map_sim;
mod mapper_limits_cli;
mod mixed_cli;
mod model_bundle_cli;
mod models_cli;
mod moe_bundle_cli;
mod moe_cli;
mod qfx_cli;
mod report_cli;
mod sweep_cli;
mod systolic_cli;
mod template_cli;
