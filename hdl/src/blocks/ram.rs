//! Block-RAM-shaped memories: single-port and simple dual-port (one write port, one read port),
//! both with a registered, read-first output — the shape Yosys and Vivado map to RAMB18/RAMB36.

use serde::{Deserialize, Serialize};

use super::{check_range, mask};
use crate::design::Design;
use crate::error::{HdlError, Result};
use crate::module::{LValue, Module, ModuleBuilder, Stmt};

/// Port arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RamKind {
    /// One address for reads and writes: `we`, `addr`, `wdata`, `rdata`.
    SinglePort,
    /// Separate write (`we`, `waddr`, `wdata`) and read (`raddr`, `rdata`) addresses.
    DualPort,
}

/// Which memory primitive to ask synthesis for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RamStyle {
    /// Let the tool decide.
    Auto,
    /// `(* ram_style = "block" *)`: RAMB18/RAMB36.
    Block,
    /// `(* ram_style = "distributed" *)`: LUT RAM.
    Distributed,
    /// `(* ram_style = "ultra" *)`: URAM on UltraScale+.
    Ultra,
}

/// Parameters of [`module`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RamParams {
    /// Word width (1..=1024).
    pub width: u32,
    /// Number of words (2..=1<<20).
    pub depth: u32,
    /// Ports.
    pub kind: RamKind,
    /// Primitive requested.
    pub style: RamStyle,
}

impl RamParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        check_range("ram", "width", self.width, 1, 1024)?;
        check_range("ram", "depth", self.depth, 2, 1 << 20)?;
        if self.style == RamStyle::Ultra && self.width > 72 {
            return Err(HdlError::Misuse(
                "ram: URAM words are at most 72 bits; use several memories".into(),
            ));
        }
        Ok(())
    }
    /// The module name these parameters produce.
    pub fn module_name(&self) -> String {
        let k = match self.kind {
            RamKind::SinglePort => "sp",
            RamKind::DualPort => "dp",
        };
        let s = match self.style {
            RamStyle::Auto => "",
            RamStyle::Block => "_b",
            RamStyle::Distributed => "_l",
            RamStyle::Ultra => "_u",
        };
        format!("af_ram_{k}_w{}_d{}{s}", self.width, self.depth)
    }
}

/// The RAM module (see [`RamKind`] for the ports; all have `clk`).
pub fn module(p: &RamParams) -> Result<Module> {
    p.validate()?;
    let mut m = ModuleBuilder::new(&p.module_name())?;
    m.doc(format!(
        "{:?} RAM, {} x {} bits, registered read-first output.",
        p.kind, p.depth, p.width
    ));
    let style = match p.style {
        RamStyle::Auto => None,
        RamStyle::Block => Some("block"),
        RamStyle::Distributed => Some("distributed"),
        RamStyle::Ultra => Some("ultra"),
    };
    let clk = m.input("clk", 1)?;
    let we = m.input("we", 1)?;
    let aw = crate::expr::clog2(u64::from(p.depth)).max(1);
    let (waddr, raddr) = match p.kind {
        RamKind::SinglePort => {
            let a = m.input("addr", aw)?;
            (a.clone(), a)
        }
        RamKind::DualPort => (m.input("waddr", aw)?, m.input("raddr", aw)?),
    };
    let wdata = m.input("wdata", p.width)?;
    let rdata = m.output_reg("rdata", p.width)?;
    let mem = m.memory("storage", p.width, p.depth, false, style)?;
    m.clocked(
        &clk,
        vec![
            Stmt::if_(
                we.e(),
                vec![Stmt::assign(LValue::word(&mem, &waddr.e())?, wdata.e())?],
            )?,
            // Nonblocking read of the old word: read-first, which every block RAM supports.
            Stmt::set(&rdata, mem.read(&raddr.e())?)?,
        ],
    )?;
    Ok(m.finish())
}

/// The module as a design of its own.
pub fn design(p: &RamParams) -> Result<Design> {
    Ok(Design::new(module(p)?, p))
}

/// Cycle-level reference model (words up to 64 bits; memory starts as zeros, as Verilator's
/// default initialisation does).
#[derive(Debug, Clone)]
pub struct RamModel {
    width: u32,
    words: Vec<u64>,
    rdata: u64,
}

impl RamModel {
    /// A zeroed memory.
    pub fn new(p: &RamParams) -> Self {
        RamModel {
            width: p.width,
            words: vec![0; p.depth as usize],
            rdata: 0,
        }
    }
    /// `rdata` during this cycle.
    pub fn rdata(&self) -> u64 {
        self.rdata
    }
    /// A rising edge (for a single-port RAM pass the same address twice).
    pub fn tick(&mut self, we: bool, waddr: usize, wdata: u64, raddr: usize) {
        let n = self.words.len();
        self.rdata = self.words.get(raddr).copied().unwrap_or(0);
        if we && waddr < n {
            self.words[waddr] = mask(wdata, self.width);
        }
    }
}
