//! AXI4-Stream driver and monitor with seeded random back-pressure, and an in-order scoreboard.
//!
//! Agents work in two phases around each clock edge (see [`Sim::step_agents`]): every agent
//! first *drives* its inputs, then every agent *samples* the handshake that will complete at the
//! coming edge. Sampling after all driving matters because a design's `s_axis_tready` may depend
//! combinationally on its `m_axis_tready`.

use crate::error::{Result, SimError};
use crate::sim::{PortHandle, Sim};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::fmt::Debug;

/// A testbench component that drives and observes ports around each clock edge.
pub trait Agent {
    /// Sets this agent's inputs for the coming rising edge.
    fn drive(&mut self, sim: &mut Sim) -> Result<()>;
    /// Observes what will happen at the coming edge; called after every agent has driven.
    fn sample(&mut self, sim: &mut Sim) -> Result<()>;
}

impl Sim {
    /// Lets every agent drive, then every agent sample, then runs one clock cycle.
    pub fn step_agents(&mut self, agents: &mut [&mut dyn Agent]) -> Result<()> {
        for a in agents.iter_mut() {
            a.drive(self)?;
        }
        for a in agents.iter_mut() {
            a.sample(self)?;
        }
        self.step()
    }
}

/// Port names of one AXI4-Stream interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisNames {
    /// Data port.
    pub tdata: String,
    /// Valid port.
    pub tvalid: String,
    /// Ready port.
    pub tready: String,
    /// Optional last-beat marker.
    pub tlast: Option<String>,
}

impl AxisNames {
    /// `prefix` + `tdata`/`tvalid`/`tready`/`tlast`, e.g. `AxisNames::prefixed("s_axis_")`.
    pub fn prefixed(prefix: &str) -> Self {
        Self::with_suffixes(prefix, "tdata", "tvalid", "tready", Some("tlast"))
    }

    /// `prefix` + custom suffixes, e.g. `("in_", "data", "valid", "ready", None)`.
    pub fn with_suffixes(
        prefix: &str,
        data: &str,
        valid: &str,
        ready: &str,
        last: Option<&str>,
    ) -> Self {
        Self {
            tdata: format!("{prefix}{data}"),
            tvalid: format!("{prefix}{valid}"),
            tready: format!("{prefix}{ready}"),
            tlast: last.map(|l| format!("{prefix}{l}")),
        }
    }

    /// The same names without a `tlast` port.
    pub fn without_tlast(mut self) -> Self {
        self.tlast = None;
        self
    }

    /// The common prefix, for messages.
    fn label(&self) -> String {
        self.tdata
            .strip_suffix("tdata")
            .unwrap_or(&self.tdata)
            .to_string()
    }
}

/// One transfer on a stream: data words (least significant 64 bits first) and `tlast`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Beat {
    /// Data, 64-bit words, least significant first.
    pub data: Vec<u64>,
    /// The `tlast` flag (false when the interface has none).
    pub last: bool,
}

impl Beat {
    /// A beat of at most 64 bits.
    pub fn new(data: u64, last: bool) -> Self {
        Self {
            data: vec![data],
            last,
        }
    }

    /// The low 64 bits.
    pub fn low(&self) -> u64 {
        self.data.first().copied().unwrap_or(0)
    }
}

struct Ports {
    tdata: PortHandle,
    tvalid: PortHandle,
    tready: PortHandle,
    tlast: Option<PortHandle>,
    words: usize,
}

fn resolve(sim: &Sim, names: &AxisNames) -> Result<Ports> {
    let width = sim.width(names.tdata.as_str())?;
    Ok(Ports {
        tdata: sim.port(&names.tdata)?,
        tvalid: sim.port(&names.tvalid)?,
        tready: sim.port(&names.tready)?,
        tlast: names.tlast.as_deref().map(|n| sim.port(n)).transpose()?,
        words: width.div_ceil(64) as usize,
    })
}

fn check_prob(sim: &Sim, names: &AxisNames, p: f64, what: &str) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(SimError::Axis {
            top: sim.design().spec().top.clone(),
            interface: names.label(),
            detail: format!("{what} probability {p} must be in [0, 1)"),
        })
    }
}

/// Drives a design's AXI4-Stream *input* (slave) interface from a queue of beats.
///
/// With probability `gap_prob` it leaves `tvalid` low for a cycle before offering the next beat;
/// once it offers a beat it holds `tdata`/`tlast`/`tvalid` stable until the handshake, as AXI
/// requires.
#[derive(Debug)]
pub struct AxisDriver {
    names: AxisNames,
    ports: PortsDebug,
    queue: VecDeque<Beat>,
    current: Option<Beat>,
    rng: ChaCha8Rng,
    gap_prob: f64,
    sent: u64,
}

/// `Ports` with a Debug impl kept out of the public API.
struct PortsDebug(Ports);

impl Debug for PortsDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("words", &self.0.words)
            .finish()
    }
}

impl AxisDriver {
    /// A driver for the interface `names` of `sim`, with `tvalid` gaps of probability
    /// `gap_prob` (0 for none) drawn from a ChaCha8 generator seeded with `seed`.
    pub fn new(sim: &Sim, names: AxisNames, seed: u64, gap_prob: f64) -> Result<Self> {
        check_prob(sim, &names, gap_prob, "tvalid gap")?;
        let ports = resolve(sim, &names)?;
        Ok(Self {
            names,
            ports: PortsDebug(ports),
            queue: VecDeque::new(),
            current: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            gap_prob,
            sent: 0,
        })
    }

    /// Queues one beat.
    pub fn push(&mut self, beat: Beat) {
        self.queue.push_back(beat);
    }

    /// Queues a packet: one beat per value, `tlast` on the final one.
    pub fn push_packet(&mut self, data: &[u64]) {
        for (i, &d) in data.iter().enumerate() {
            self.push(Beat::new(d, i + 1 == data.len()));
        }
    }

    /// Queues values as beats without `tlast`.
    pub fn push_values(&mut self, data: impl IntoIterator<Item = u64>) {
        for d in data {
            self.push(Beat::new(d, false));
        }
    }

    /// Beats accepted by the design so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Beats not yet accepted (queued or on the bus).
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.current.is_some())
    }

    /// Whether every queued beat has been accepted.
    pub fn is_done(&self) -> bool {
        self.pending() == 0
    }
}

impl Agent for AxisDriver {
    fn drive(&mut self, sim: &mut Sim) -> Result<()> {
        if self.current.is_none() && !self.queue.is_empty() {
            let gap = self.gap_prob > 0.0 && self.rng.random_bool(self.gap_prob);
            if !gap {
                self.current = self.queue.pop_front();
            }
        }
        let p = &self.ports.0;
        match &self.current {
            Some(beat) => {
                sim.poke_wide(p.tdata, &beat.data)?;
                if let Some(l) = p.tlast {
                    sim.poke(l, u64::from(beat.last))?;
                }
                sim.poke(p.tvalid, 1)?;
            }
            // tdata keeps its last value: AXI does not care, and not toggling it keeps waves
            // readable.
            None => sim.poke(p.tvalid, 0)?,
        }
        Ok(())
    }

    fn sample(&mut self, sim: &mut Sim) -> Result<()> {
        if self.current.is_some() && sim.peek(self.ports.0.tready)? == 1 {
            self.current = None;
            self.sent += 1;
        }
        Ok(())
    }
}

/// Receives a design's AXI4-Stream *output* (master) interface, de-asserting `tready` with
/// probability `stall_prob` each cycle, and checks the design keeps `tvalid`, `tdata` and
/// `tlast` stable until each handshake.
#[derive(Debug)]
pub struct AxisMonitor {
    names: AxisNames,
    ports: PortsDebug,
    rng: ChaCha8Rng,
    stall_prob: f64,
    ready_now: bool,
    received: Vec<Beat>,
    /// A beat offered but not yet accepted, for the stability check.
    offered: Option<Beat>,
    violations: Vec<String>,
    scratch: Vec<u64>,
}

impl AxisMonitor {
    /// A monitor for the interface `names` of `sim`, with `tready` stalls of probability
    /// `stall_prob` drawn from a ChaCha8 generator seeded with `seed`.
    pub fn new(sim: &Sim, names: AxisNames, seed: u64, stall_prob: f64) -> Result<Self> {
        check_prob(sim, &names, stall_prob, "tready stall")?;
        let ports = resolve(sim, &names)?;
        let words = ports.words;
        Ok(Self {
            names,
            ports: PortsDebug(ports),
            rng: ChaCha8Rng::seed_from_u64(seed),
            stall_prob,
            ready_now: true,
            received: Vec::new(),
            offered: None,
            violations: Vec::new(),
            scratch: vec![0; words],
        })
    }

    /// Beats received so far, in order.
    pub fn received(&self) -> &[Beat] {
        &self.received
    }

    /// Removes and returns the beats received so far.
    pub fn take_received(&mut self) -> Vec<Beat> {
        std::mem::take(&mut self.received)
    }

    /// The received beats grouped into packets by `tlast` (a trailing unfinished packet is
    /// included).
    pub fn packets(&self) -> Vec<Vec<Beat>> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        for b in &self.received {
            cur.push(b.clone());
            if b.last {
                out.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// AXI rule violations seen (each with its cycle).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Fails if the design broke the AXI stability rule.
    pub fn check_protocol(&self, sim: &Sim) -> Result<()> {
        if self.violations.is_empty() {
            return Ok(());
        }
        Err(SimError::Axis {
            top: sim.design().spec().top.clone(),
            interface: self.names.label(),
            detail: self.violations.join("; "),
        })
    }
}

impl Agent for AxisMonitor {
    fn drive(&mut self, sim: &mut Sim) -> Result<()> {
        self.ready_now = !(self.stall_prob > 0.0 && self.rng.random_bool(self.stall_prob));
        sim.poke(self.ports.0.tready, u64::from(self.ready_now))
    }

    fn sample(&mut self, sim: &mut Sim) -> Result<()> {
        let p = &self.ports.0;
        let valid = sim.peek(p.tvalid)? == 1;
        if !valid {
            if self.offered.take().is_some() {
                self.violations.push(format!(
                    "cycle {}: tvalid dropped before the handshake",
                    sim.cycle()
                ));
            }
            return Ok(());
        }
        sim.peek_wide_into(p.tdata, &mut self.scratch)?;
        let last = match p.tlast {
            Some(l) => sim.peek(l)? == 1,
            None => false,
        };
        let beat = Beat {
            data: self.scratch.clone(),
            last,
        };
        if let Some(prev) = self.offered.take()
            && prev != beat
        {
            self.violations.push(format!(
                "cycle {}: tdata/tlast changed from {:x?} to {:x?} while waiting for tready",
                sim.cycle(),
                prev,
                beat
            ));
        }
        if self.ready_now {
            self.received.push(beat);
        } else {
            self.offered = Some(beat);
        }
        Ok(())
    }
}

/// Steps `sim` with `agents` until `monitor` has received `count` beats in total; on timeout the
/// error names the cycle and the handshake signals.
pub fn run_until_received(
    sim: &mut Sim,
    driver: &mut AxisDriver,
    monitor: &mut AxisMonitor,
    count: usize,
    max_cycles: u64,
) -> Result<u64> {
    let mut waited = 0;
    while monitor.received().len() < count {
        if waited >= max_cycles {
            let what = format!(
                "{} of {count} beats on `{}` ({} sent on `{}`)",
                monitor.received().len(),
                monitor.names.label(),
                driver.sent(),
                driver.names.label()
            );
            return Err(sim.timeout_error(what, waited));
        }
        sim.step_agents(&mut [driver, monitor])?;
        waited += 1;
    }
    Ok(waited)
}

/// One difference found by a [`Scoreboard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch<T> {
    /// Position `index` holds different values.
    Different {
        /// Position in the stream.
        index: usize,
        /// What the model predicted.
        expected: T,
        /// What the design produced.
        actual: T,
    },
    /// The design produced fewer items than expected.
    Missing {
        /// Position in the stream.
        index: usize,
        /// The item that never came.
        expected: T,
    },
    /// The design produced more items than expected.
    Extra {
        /// Position in the stream.
        index: usize,
        /// The unexpected item.
        actual: T,
    },
}

/// Compares a design's output stream with expected values, in order.
#[derive(Debug, Clone)]
pub struct Scoreboard<T> {
    name: String,
    expected: Vec<T>,
    actual: Vec<T>,
}

impl<T: PartialEq + Debug + Clone> Scoreboard<T> {
    /// An empty scoreboard; `name` appears in its report.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            expected: Vec::new(),
            actual: Vec::new(),
        }
    }

    /// Adds an expected item.
    pub fn expect(&mut self, item: T) {
        self.expected.push(item);
    }

    /// Adds expected items.
    pub fn expect_all(&mut self, items: impl IntoIterator<Item = T>) {
        self.expected.extend(items);
    }

    /// Records an item the design produced.
    pub fn observe(&mut self, item: T) {
        self.actual.push(item);
    }

    /// Records items the design produced.
    pub fn observe_all(&mut self, items: impl IntoIterator<Item = T>) {
        self.actual.extend(items);
    }

    /// Every difference, in stream order.
    pub fn mismatches(&self) -> Vec<Mismatch<T>> {
        let mut out = Vec::new();
        for (index, (e, a)) in self.expected.iter().zip(&self.actual).enumerate() {
            if e != a {
                out.push(Mismatch::Different {
                    index,
                    expected: e.clone(),
                    actual: a.clone(),
                });
            }
        }
        let n = self.expected.len().min(self.actual.len());
        for (index, e) in self.expected.iter().enumerate().skip(n) {
            out.push(Mismatch::Missing {
                index,
                expected: e.clone(),
            });
        }
        for (index, a) in self.actual.iter().enumerate().skip(n) {
            out.push(Mismatch::Extra {
                index,
                actual: a.clone(),
            });
        }
        out
    }

    /// Returns the number of matching items, or [`SimError::Scoreboard`] listing (up to 20)
    /// differences with their indices.
    pub fn finish(&self) -> Result<usize> {
        let mism = self.mismatches();
        if mism.is_empty() {
            return Ok(self.expected.len());
        }
        const SHOWN: usize = 20;
        let mut lines: Vec<String> = mism
            .iter()
            .take(SHOWN)
            .map(|m| match m {
                Mismatch::Different {
                    index,
                    expected,
                    actual,
                } => format!("  [{index}] expected {expected:?}, got {actual:?}"),
                Mismatch::Missing { index, expected } => {
                    format!("  [{index}] missing: expected {expected:?}, got nothing")
                }
                Mismatch::Extra { index, actual } => {
                    format!("  [{index}] extra: got {actual:?}, expected nothing")
                }
            })
            .collect();
        if mism.len() > SHOWN {
            lines.push(format!("  ... and {} more", mism.len() - SHOWN));
        }
        lines.push(format!(
            "  ({} expected, {} received)",
            self.expected.len(),
            self.actual.len()
        ));
        Err(SimError::Scoreboard {
            name: self.name.clone(),
            mismatches: mism.len(),
            summary: lines.join("\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoreboard_reports_missing_extra_and_different() {
        let mut sb = Scoreboard::new("t");
        sb.expect_all([1, 2, 3]);
        sb.observe_all([1, 5, 3]);
        let err = sb.finish().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("[1] expected 2, got 5"), "{err}");

        let mut sb = Scoreboard::new("t");
        sb.expect_all([1, 2, 3]);
        sb.observe_all([1]);
        assert_eq!(sb.mismatches().len(), 2);
        assert!(matches!(
            sb.mismatches()[0],
            Mismatch::Missing { index: 1, .. }
        ));

        let mut sb = Scoreboard::new("t");
        sb.expect_all([1]);
        sb.observe_all([1, 9]);
        assert_eq!(
            sb.mismatches(),
            vec![Mismatch::Extra {
                index: 1,
                actual: 9
            }]
        );
        assert!(sb.finish().is_err());

        let mut sb = Scoreboard::new("t");
        sb.expect_all([4, 5]);
        sb.observe_all([4, 5]);
        assert_eq!(sb.finish().ok(), Some(2));
    }

    #[test]
    fn names_from_prefix() {
        let n = AxisNames::prefixed("s_axis_");
        assert_eq!(n.tready, "s_axis_tready");
        assert_eq!(n.tlast.as_deref(), Some("s_axis_tlast"));
        assert_eq!(n.label(), "s_axis_");
        assert_eq!(AxisNames::prefixed("x_").without_tlast().tlast, None);
    }
}
