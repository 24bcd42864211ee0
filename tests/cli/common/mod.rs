//! What the test modules share.

pub mod cli;
pub mod vivado_stub;
