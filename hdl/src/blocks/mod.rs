//! A first library of building blocks, each emitted through the typed tree and each with a Rust
//! cycle-level reference model: the simulator runs the Verilog against the model.
//!
//! Conventions shared by every block: one clock `clk` (rising edge), a synchronous active-high
//! reset `rst`, and module names that spell out the parameters so that several variants can live
//! in one design. A reference model exposes `outputs()` (what the ports show during the current
//! cycle, before the next rising edge) and `tick(inputs)` (the rising edge).

pub mod fifo;
pub mod mac_grid;
pub mod pipeline;
pub mod ram;
pub mod skid;

use crate::error::{HdlError, Result};

/// Rejects a parameter outside `[lo, hi]` with a message naming it.
pub(crate) fn check_range(block: &str, name: &str, value: u32, lo: u32, hi: u32) -> Result<()> {
    if value < lo || value > hi {
        return Err(HdlError::Misuse(format!(
            "{block}: {name} = {value} is out of range ({lo}..={hi})"
        )));
    }
    Ok(())
}

/// Masks a value to `width` bits (width ≤ 64), as a register of that width would hold it.
pub(crate) fn mask(value: u64, width: u32) -> u64 {
    if width >= 64 {
        value
    } else {
        value & ((1u64 << width) - 1)
    }
}
