//! Zynq bundle generation: Vivado batch TCL, XDC, PYNQ driver, README and a JSON manifest,
//! written atomically into one directory.

pub mod accel;
pub mod bundle;
pub mod fetch;
pub mod generate;
pub mod loopback;
pub mod network;
pub mod pynq;
pub mod readme;
pub mod tcl;
pub mod wrapper;
pub mod xdc;

use crate::board::{Board, PortDirection, PsType};
use crate::error::{BoardError, Result};
use accel::AccelInterface;

/// `accelforge-boards <version>`, written into every generated file.
pub fn generator_id() -> String {
    format!("accelforge-boards {}", env!("CARGO_PKG_VERSION"))
}

/// Address bits of the DMA engines on this PS: 32 on Zynq-7000; 64 on UltraScale+, whose DDR
/// above 2 GiB sits at 0x8_0000_0000 where PYNQ may allocate.
pub fn dma_addr_bits(ps: PsType) -> u32 {
    match ps {
        PsType::Ps7 => 32,
        PsType::Psu => 64,
    }
}

/// Knobs of the generated project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOptions {
    /// PS slave port for the DMA (`S_AXI_HP0`…`S_AXI_HP3` on Zynq-7000, `S_AXI_HP0_FPD`…,
    /// `S_AXI_HPC0_FPD`… on UltraScale+). `None` picks HP0.
    pub dma_port: Option<String>,
    /// Default `launch_runs -jobs` (overridable with `-tclargs --jobs N`).
    pub jobs: u32,
    /// Replace an existing bundle directory.
    pub overwrite: bool,
}

impl Default for BundleOptions {
    fn default() -> Self {
        Self {
            dma_port: None,
            jobs: 4,
            overwrite: false,
        }
    }
}

/// A board and an accelerator checked against each other; the generators take this.
#[derive(Debug, Clone)]
pub struct ZynqDesign<'a> {
    /// The board.
    pub board: &'a Board,
    /// The accelerator.
    pub accel: &'a AccelInterface,
    /// Options.
    pub options: BundleOptions,
    /// The PS slave port the DMA uses (resolved).
    pub dma_port: String,
    /// That port's data width (the widest the board lists).
    pub dma_port_width: u32,
    /// Which engine of the block design this accelerator is: its cells are `accel_<n>`,
    /// `axi_dma_<n>` (and `axi_datamover_<n>`). 0 for a one-engine bundle.
    pub engine: usize,
    /// Base name of the `.bit`/`.hwh` the whole block design builds to (the accelerator's
    /// module name in a one-engine bundle).
    pub bitstream: String,
}

impl<'a> ZynqDesign<'a> {
    /// Validates the accelerator and checks it against the board: clock in range, DMA port
    /// present on the board and supported by the generator.
    pub fn new(
        board: &'a Board,
        accel: &'a AccelInterface,
        options: BundleOptions,
    ) -> Result<Self> {
        accel.validate()?;
        let mismatch = |problem: String| BoardError::BoardMismatch {
            board: board.name.clone(),
            problem,
        };
        if accel.clock_mhz > board.max_pl_clock_mhz() {
            return Err(mismatch(format!(
                "accelerator clock {} MHz is above the {} MHz the generator allows on {}",
                accel.clock_mhz,
                board.max_pl_clock_mhz(),
                board.family.yosys_name()
            )));
        }
        if accel.clock_mhz < 10.0 {
            return Err(mismatch(format!(
                "accelerator clock {} MHz is below the 10 MHz the PS clock generators reach",
                accel.clock_mhz
            )));
        }
        let default_port = match board.ps {
            PsType::Ps7 => "S_AXI_HP0",
            PsType::Psu => "S_AXI_HP0_FPD",
        };
        let dma_port = options
            .dma_port
            .clone()
            .unwrap_or_else(|| default_port.to_string());
        let supported = match board.ps {
            PsType::Ps7 => (0..4).any(|n| dma_port == format!("S_AXI_HP{n}")),
            PsType::Psu => {
                (0..4).any(|n| dma_port == format!("S_AXI_HP{n}_FPD"))
                    || (0..2).any(|n| dma_port == format!("S_AXI_HPC{n}_FPD"))
            }
        };
        if !supported {
            return Err(mismatch(format!(
                "DMA port `{dma_port}` is not one the generator can use on {} (use {})",
                board.ps.ip_name(),
                match board.ps {
                    PsType::Ps7 => "S_AXI_HP0..S_AXI_HP3",
                    PsType::Psu => "S_AXI_HP0_FPD..S_AXI_HP3_FPD or S_AXI_HPC0_FPD/S_AXI_HPC1_FPD",
                }
            )));
        }
        let port = board
            .port(&dma_port)
            .filter(|p| p.direction == PortDirection::Slave)
            .ok_or_else(|| {
                mismatch(format!(
                    "the board file lists no slave port `{dma_port}` (ps_pl_ports)"
                ))
            })?;
        let dma_port_width = port.widths.iter().copied().max().unwrap_or(32);
        if let Some(f) = &accel.weight_fetch
            && f.addr_bits != dma_addr_bits(board.ps)
        {
            return Err(mismatch(format!(
                "the weight fetch uses {}-bit addresses but {} needs {} (DDR above 4 GiB on UltraScale+)",
                f.addr_bits,
                board.ps.ip_name(),
                dma_addr_bits(board.ps)
            )));
        }
        Ok(Self {
            board,
            accel,
            options,
            dma_port,
            dma_port_width,
            engine: 0,
            bitstream: accel.name.clone(),
        })
    }

    /// This accelerator as engine `engine` of a block design that builds to
    /// `bitstream`.bit/.hwh.
    pub fn as_engine(mut self, engine: usize, bitstream: &str) -> Self {
        self.engine = engine;
        self.bitstream = bitstream.to_string();
        self
    }

    /// Base name of `.bit` and `.hwh` (the whole block design's).
    pub fn base_name(&self) -> String {
        self.bitstream.clone()
    }

    /// Base name of this accelerator's `.xdc` and out-of-context reports: its module name.
    pub fn ooc_name(&self) -> String {
        self.accel.name.clone()
    }

    /// Block-design cell of the accelerator; the PYNQ driver looks it up by this name.
    pub fn accel_cell(&self) -> String {
        format!("accel_{}", self.engine)
    }

    /// Block-design cell of the accelerator's AXI DMA.
    pub fn dma_cell(&self) -> String {
        format!("axi_dma_{}", self.engine)
    }

    /// Block-design cell of the accelerator's weight-fetch DataMover.
    pub fn datamover_cell(&self) -> String {
        format!("axi_datamover_{}", self.engine)
    }

    /// Python module name of the driver (file `<module>.py`).
    pub fn driver_module(&self) -> String {
        format!("{}_driver", self.accel.name)
    }
}

/// Replaces `@KEY@` markers in one pass, so substituted text is never scanned again (a doc
/// string containing `@TOP@` stays as it is). Unknown markers are left untouched.
pub(crate) fn fill(template: &str, subs: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find('@') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let hit = after.find('@').and_then(|end| {
            let key = &rest[start..start + end + 2];
            subs.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, end + 2))
        });
        match hit {
            Some((v, len)) => {
                out.push_str(v);
                rest = &rest[start + len..];
            }
            None => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fill_is_single_pass() {
        let s = fill(
            "a @X@ b @Y@ c@ @Z",
            &[("@X@", "@Y@".into()), ("@Y@", "y".into())],
        );
        assert_eq!(s, "a @Y@ b y c@ @Z");
    }
}
