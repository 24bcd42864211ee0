//! An AXI4-Lite master agent: what the processing system does to an accelerator's control
//! registers. Address and data of a write are offered together (the harder case for a slave),
//! responses are accepted after seeded random delays, and every response code is recorded so a
//! test can insist on OKAY.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::axis::Agent;
use crate::error::{Result, SimError};
use crate::sim::{PortHandle, Sim};

/// One register access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxiLiteOp {
    /// Write `data` to `addr` with byte strobes `strb`.
    Write {
        /// Byte address.
        addr: u64,
        /// 32-bit data.
        data: u32,
        /// Byte enables.
        strb: u8,
    },
    /// Read `addr`.
    Read {
        /// Byte address.
        addr: u64,
    },
}

/// A completed access with the slave's response code (0 = OKAY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxiLiteResult {
    /// The access.
    pub op: AxiLiteOp,
    /// Data read (0 for writes).
    pub data: u32,
    /// `bresp` or `rresp`.
    pub resp: u8,
}

struct Ports {
    awaddr: PortHandle,
    awvalid: PortHandle,
    awready: PortHandle,
    wdata: PortHandle,
    wstrb: PortHandle,
    wvalid: PortHandle,
    wready: PortHandle,
    bresp: PortHandle,
    bvalid: PortHandle,
    bready: PortHandle,
    araddr: PortHandle,
    arvalid: PortHandle,
    arready: PortHandle,
    rdata: PortHandle,
    rresp: PortHandle,
    rvalid: PortHandle,
    rready: PortHandle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Write { aw_done: bool, w_done: bool },
    WriteResp,
    ReadAddr,
    ReadData,
}

/// Drives an AXI4-Lite slave whose ports are `<prefix>awaddr`, `<prefix>awvalid`, ….
pub struct AxiLiteMaster {
    ports: Ports,
    queue: VecDeque<AxiLiteOp>,
    current: Option<AxiLiteOp>,
    phase: Phase,
    results: Vec<AxiLiteResult>,
    rng: ChaCha8Rng,
    stall_prob: f64,
    ready_now: bool,
}

impl std::fmt::Debug for AxiLiteMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AxiLiteMaster")
            .field("queue", &self.queue)
            .field("phase", &self.phase)
            .finish()
    }
}

impl AxiLiteMaster {
    /// A master on the ports named `prefix` + signal (e.g. `s_axi_control_`), taking responses
    /// after random stalls of probability `stall_prob` per cycle (seeded).
    pub fn new(sim: &Sim, prefix: &str, seed: u64, stall_prob: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&stall_prob) {
            return Err(SimError::InvalidArgument(format!(
                "AXI4-Lite stall probability {stall_prob} must be in [0, 1)"
            )));
        }
        let p = |s: &str| sim.port(&format!("{prefix}{s}"));
        Ok(AxiLiteMaster {
            ports: Ports {
                awaddr: p("awaddr")?,
                awvalid: p("awvalid")?,
                awready: p("awready")?,
                wdata: p("wdata")?,
                wstrb: p("wstrb")?,
                wvalid: p("wvalid")?,
                wready: p("wready")?,
                bresp: p("bresp")?,
                bvalid: p("bvalid")?,
                bready: p("bready")?,
                araddr: p("araddr")?,
                arvalid: p("arvalid")?,
                arready: p("arready")?,
                rdata: p("rdata")?,
                rresp: p("rresp")?,
                rvalid: p("rvalid")?,
                rready: p("rready")?,
            },
            queue: VecDeque::new(),
            current: None,
            phase: Phase::Idle,
            results: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            stall_prob,
            ready_now: false,
        })
    }

    /// Queues a full-word write.
    pub fn write(&mut self, addr: u64, data: u32) {
        self.queue.push_back(AxiLiteOp::Write {
            addr,
            data,
            strb: 0xf,
        });
    }
    /// Queues a write with byte strobes.
    pub fn write_strobed(&mut self, addr: u64, data: u32, strb: u8) {
        self.queue.push_back(AxiLiteOp::Write { addr, data, strb });
    }
    /// Queues a read.
    pub fn read(&mut self, addr: u64) {
        self.queue.push_back(AxiLiteOp::Read { addr });
    }
    /// True when every queued access has completed.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_none()
    }
    /// Completed accesses, oldest first.
    pub fn results(&self) -> &[AxiLiteResult] {
        &self.results
    }
    /// Takes the completed accesses.
    pub fn take_results(&mut self) -> Vec<AxiLiteResult> {
        std::mem::take(&mut self.results)
    }
}

impl Agent for AxiLiteMaster {
    fn drive(&mut self, sim: &mut Sim) -> Result<()> {
        if self.current.is_none() {
            self.current = self.queue.pop_front();
            self.phase = match self.current {
                Some(AxiLiteOp::Write { .. }) => Phase::Write {
                    aw_done: false,
                    w_done: false,
                },
                Some(AxiLiteOp::Read { .. }) => Phase::ReadAddr,
                None => Phase::Idle,
            };
        }
        let p = &self.ports;
        let (mut awvalid, mut wvalid, mut arvalid) = (false, false, false);
        match (self.phase, self.current) {
            (Phase::Write { aw_done, w_done }, Some(AxiLiteOp::Write { addr, data, strb })) => {
                awvalid = !aw_done;
                wvalid = !w_done;
                sim.poke(p.awaddr, addr)?;
                sim.poke(p.wdata, u64::from(data))?;
                sim.poke(p.wstrb, u64::from(strb))?;
            }
            (Phase::ReadAddr, Some(AxiLiteOp::Read { addr })) => {
                arvalid = true;
                sim.poke(p.araddr, addr)?;
            }
            _ => {}
        }
        self.ready_now = !self.rng.random_bool(self.stall_prob);
        sim.poke(p.awvalid, u64::from(awvalid))?;
        sim.poke(p.wvalid, u64::from(wvalid))?;
        sim.poke(p.arvalid, u64::from(arvalid))?;
        sim.poke(
            p.bready,
            u64::from(self.phase == Phase::WriteResp && self.ready_now),
        )?;
        sim.poke(
            p.rready,
            u64::from(self.phase == Phase::ReadData && self.ready_now),
        )?;
        Ok(())
    }

    fn sample(&mut self, sim: &mut Sim) -> Result<()> {
        let p = &self.ports;
        let Some(op) = self.current else {
            return Ok(());
        };
        match self.phase {
            Phase::Write {
                mut aw_done,
                mut w_done,
            } => {
                aw_done |= sim.peek(p.awready)? == 1;
                w_done |= sim.peek(p.wready)? == 1 && sim.peek(p.wvalid)? == 1;
                self.phase = if aw_done && w_done {
                    Phase::WriteResp
                } else {
                    Phase::Write { aw_done, w_done }
                };
            }
            Phase::WriteResp if self.ready_now && sim.peek(p.bvalid)? == 1 => {
                let resp = sim.peek(p.bresp)? as u8;
                self.results.push(AxiLiteResult { op, data: 0, resp });
                self.current = None;
            }
            Phase::ReadAddr if sim.peek(p.arready)? == 1 => self.phase = Phase::ReadData,
            Phase::ReadData if self.ready_now && sim.peek(p.rvalid)? == 1 => {
                let data = sim.peek(p.rdata)? as u32;
                let resp = sim.peek(p.rresp)? as u8;
                self.results.push(AxiLiteResult { op, data, resp });
                self.current = None;
            }
            _ => {}
        }
        Ok(())
    }
}
