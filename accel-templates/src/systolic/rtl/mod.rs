//! Verilog generation for the systolic array: [`design`] builds the top module of either
//! dataflow and its PE module.
//!
//! The two tops live in `os.rs` (output-stationary) and `ws.rs` (weight-stationary); each is a
//! sequence of functions that add one part to the module builder. What both use lives in small
//! files of its own, and neither top imports the other:
//! * `shell`: the ports, the command handshake, the busy/done/error status and the header;
//! * `buffers`: the loader's stream handshake, the double-banked operand block RAMs and their
//!   bank-full flags;
//! * `feed`: operand lanes out of the buffers, zeroed on idle cycles and skewed, and the
//!   shift-add weight encoder;
//! * `drain`: requantization of a column, the masked result row, and the output FIFO with its
//!   serializer.
//! * `requant` (output-stationary, `requant = per_channel` only): the table-load command, the
//!   per-lane (mul, add) tables and the per-channel arithmetic at the output-FIFO push.
//!
//! The printer keeps declarations and always blocks in the order of the builder calls, so
//! reordering calls between or inside these parts changes the Verilog text (not its function);
//! `tests/rtl_digest.rs` pins the bytes of ~340 configurations to catch that.

mod buffers;
mod drain;
mod feed;
mod os;
mod packed;
mod requant;
mod shell;
mod ws;

use accelforge_hdl::Design;

use self::packed::Pes;
use super::error::{HdlContext, Result};
use super::params::{Dataflow, PeKind, SystolicParams};
use super::pe::{pe_module, pe_ws_module};

pub use self::shell::DIM_BITS;

/// Generates the whole design: top module plus the PE module (or, for `dsp-packed`, one
/// module per packing-group size).
pub fn design(p: &SystolicParams) -> Result<Design> {
    let r = p.resolve()?;
    let prefix = p.module_prefix();
    let pe_name = format!("{prefix}_pe");
    let ws = p.dataflow == Dataflow::Ws;
    let pes = if p.pe == PeKind::DspPacked {
        Pes::Packed(packed::modules(&r, &prefix, ws).ctx(&pe_name)?)
    } else if ws {
        Pes::One(pe_ws_module(&r, &pe_name).ctx(&pe_name)?)
    } else {
        Pes::One(pe_module(&r, &pe_name).ctx(&pe_name)?)
    };
    let top = if ws {
        ws::top_module(&r, &prefix, &pes).ctx(&prefix)?
    } else {
        os::top_module(&r, &prefix, &pes).ctx(&prefix)?
    };
    let mut d = Design::new(top, p);
    for pe in pes.modules() {
        d.add(pe.clone()).ctx(&pe_name)?;
    }
    d.check_complete().ctx(&prefix)?;
    Ok(d)
}
