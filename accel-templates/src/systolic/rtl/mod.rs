//! Verilog generation for the systolic array: [`design`] builds the top module of either
//! dataflow and its PE module.
//!
//! The two tops live in `os.rs` (output-stationary) and `ws.rs` (weight-stationary); each is a
//! sequence of functions that add one part to the module builder. What both use lives in small
//! files of its own, and neither top imports the other:
//! * `shell`: the ports, the command handshake and the busy/done/error status;
//! * `buffers`: the loader's stream handshake, the double-banked operand block RAMs and their
//!   bank-full flags;
//! * `feed`: operand lanes out of the buffers, zeroed on idle cycles and skewed, and the
//!   shift-add weight encoder;
//! * `drain`: requantization of a column, the masked result row, and the output FIFO with its
//!   serializer.

mod buffers;
mod drain;
mod feed;
mod os;
mod shell;
mod ws;

use accelforge_hdl::{Design, ModuleBuilder};

use super::error::{HdlContext, Result};
use super::params::{Dataflow, Resolved, SystolicParams};
use super::pe::{pe_module, pe_ws_module};

/// Width of the command dimension ports.
pub const DIM_BITS: u32 = 16;

/// Lane counters and valid-lane counts (at most 64 lanes, kept at 16 bits).
const LANE_W: u32 = 16;

/// Generates the whole design: top module plus the PE module.
pub fn design(p: &SystolicParams) -> Result<Design> {
    let r = p.resolve()?;
    let prefix = p.module_prefix();
    let pe_name = format!("{prefix}_pe");
    let (pe, top) = match p.dataflow {
        Dataflow::Os => {
            let pe = pe_module(&r, &pe_name).ctx(&pe_name)?;
            let top = os::top_module(&r, &prefix, &pe).ctx(&prefix)?;
            (pe, top)
        }
        Dataflow::Ws => {
            let pe = pe_ws_module(&r, &pe_name).ctx(&pe_name)?;
            let top = ws::top_module(&r, &prefix, &pe).ctx(&prefix)?;
            (pe, top)
        }
    };
    let mut d = Design::new(top, p);
    d.add(pe).ctx(&pe_name)?;
    d.check_complete().ctx(&prefix)?;
    Ok(d)
}

/// The comment block above a top: what it computes, its buffers, where the protocol is told.
fn header_doc(m: &mut ModuleBuilder, r: &Resolved, dataflow: &str, buffers: &str) {
    let p = &r.p;
    m.doc(format!(
        "{dataflow} systolic array {}x{}: A {} x B {} -> acc {} -> out {}{}, PE {:?}.",
        r.r,
        r.c,
        r.ta,
        r.tb,
        r.tacc,
        r.tout,
        if p.relu { " (ReLU)" } else { "" },
        p.pe
    ));
    m.doc(format!(
        "Buffers: max K {}, {buffers}B chunk {} columns, {}-bit AXI4-Stream in/out.",
        p.max_k, p.max_n_chunk, p.stream_bits
    ));
    m.doc("Stream order and cycle model: see accelforge_templates::systolic docs.");
}
