//! What the test modules share.

pub mod cli;
pub mod vivado_stub;

/// A small MoE layer (8 tokens, d_model 8, ...) for `moe` commands that must run quickly.
pub const MOE_SMALL: [&str; 16] = [
    "--tokens",
    "8",
    "--d-model",
    "8",
    "--d-ff",
    "16",
    "--experts",
    "4",
    "--top-k",
    "2",
    "--lanes",
    "2",
    "--simd",
    "2",
    "--ddr-bytes-per-cycle",
    "2",
];
