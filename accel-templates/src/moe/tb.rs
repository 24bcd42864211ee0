//! The MoE core's testbench, written against a small [`Harness`] trait so the same bench drives
//! any cycle-accurate model of the core: [`super::sim::SimHarness`] implements it for an
//! `accelforge_sim::Sim`, and [`super::sim::simulate`] builds, runs and checks a batch.
//!
//! It plays the host (tokens on `s_axis`, results from `m_axis`) and the DDR weight source
//! ([`WeightSource`]): it accepts every `wreq` request at once (`wreq_ready` = 1, any number
//! outstanding), queues the requested segments in order, and offers one
//! `ddr_bytes_per_cycle`-byte beat per cycle from `1 + latency` cycles after each request on —
//! exactly B bytes per cycle after a fixed latency, the cycle model's assumption — unless random
//! gaps are asked for.

use super::model::{self, MoeData, MoeGolden, SplitMix64};
use super::params::MoeParams;
use super::{MoeError, Result, WeightSource};

/// What a testbench needs from a cycle-accurate simulator.
pub trait Harness {
    /// A resolved port.
    type Port: Copy;
    /// Resolves a port by name.
    fn port(&mut self, name: &str) -> std::result::Result<Self::Port, String>;
    /// Sets an input of at most 64 bits.
    fn poke(&mut self, p: Self::Port, v: u64) -> std::result::Result<(), String>;
    /// Sets a wide input from little-endian 64-bit words.
    fn poke_wide(&mut self, p: Self::Port, words: &[u64]) -> std::result::Result<(), String>;
    /// Reads an output of at most 64 bits (after settling combinational logic).
    fn peek(&mut self, p: Self::Port) -> std::result::Result<u64, String>;
    /// One clock cycle.
    fn step(&mut self) -> std::result::Result<(), String>;
    /// Asserts `rst` for a few cycles and releases it.
    fn reset(&mut self) -> std::result::Result<(), String>;
}

/// Random stalls the testbench may inject (all zero for cycle-exact runs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stalls {
    /// Probability of a `s_axis_tvalid` gap before each token beat.
    pub input_gap: f64,
    /// Probability of a `s_axis_w_tvalid` gap before each weight beat.
    pub weight_gap: f64,
    /// Probability of `m_axis_tready` low in a cycle.
    pub output_stall: f64,
    /// Seed of the stall generator.
    pub seed: u64,
}

impl Stalls {
    /// Whether any stall is enabled (then cycle counts are not comparable with the model).
    pub fn any(&self) -> bool {
        self.input_gap > 0.0 || self.weight_gap > 0.0 || self.output_stall > 0.0
    }
}

/// What one batch did in simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Cycles from command acceptance to `done`.
    pub cycles: u64,
    /// `m_axis` beats in order (data, tlast).
    pub outputs: Vec<(u64, bool)>,
    /// Segment ids requested on `wreq`, in order (`experts` = the gate matrix).
    pub requests: Vec<u32>,
    /// Weight beats accepted.
    pub weight_beats: u64,
    /// `stat_loads` at the end.
    pub loads: u64,
    /// `stat_dropped` at the end.
    pub dropped: u64,
}

/// Comparison of a run with the golden model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Output elements compared.
    pub outputs_checked: u64,
    /// Elements that differ, are missing or extra, plus wrong `tlast` flags.
    pub mismatches: u64,
    /// First few problems, for the error message.
    pub first: Vec<String>,
}

/// Compares a run with the golden outputs, the expected segment order and the counters.
pub fn check(p: &MoeParams, golden: &MoeGolden, run: &RunReport) -> Check {
    let want = model::output_beats(p, &golden.outputs);
    let mut mismatches = 0u64;
    let mut first = Vec::new();
    let note = |s: String, first: &mut Vec<String>| {
        if first.len() < 8 {
            first.push(s);
        }
    };
    for (i, w) in want.iter().enumerate() {
        match run.outputs.get(i) {
            Some(&(got, last)) => {
                if got != *w {
                    mismatches += 1;
                    note(format!("beat {i}: got {got:#x}, want {w:#x}"), &mut first);
                }
                if last != (i + 1 == want.len()) {
                    mismatches += 1;
                    note(format!("beat {i}: tlast = {last}"), &mut first);
                }
            }
            None => {
                mismatches += 1;
                note(format!("beat {i}: missing"), &mut first);
            }
        }
    }
    if run.outputs.len() > want.len() {
        mismatches += (run.outputs.len() - want.len()) as u64;
        note(
            format!("{} extra beats", run.outputs.len() - want.len()),
            &mut first,
        );
    }
    let mut want_req = vec![p.experts];
    want_req.extend(golden.routing.loads.iter().map(|l| l.expert));
    if run.requests != want_req {
        mismatches += 1;
        note(
            format!("segments requested {:?}, want {want_req:?}", run.requests),
            &mut first,
        );
    }
    if run.loads != golden.routing.loads.len() as u64 || run.dropped != golden.routing.dropped {
        mismatches += 1;
        note(
            format!(
                "stat loads/dropped {}/{}, want {}/{}",
                run.loads,
                run.dropped,
                golden.routing.loads.len(),
                golden.routing.dropped
            ),
            &mut first,
        );
    }
    Check {
        outputs_checked: want.len() as u64,
        mismatches,
        first,
    }
}

struct Ports<P> {
    cmd_valid: P,
    cmd_ready: P,
    cmd_reorder: P,
    done: P,
    s_tdata: P,
    s_tvalid: P,
    s_tready: P,
    m_tdata: P,
    m_tvalid: P,
    m_tready: P,
    m_tlast: P,
    w_tdata: P,
    w_tvalid: P,
    w_tready: P,
    w_tlast: P,
    wreq_valid: P,
    wreq_ready: P,
    wreq_id: P,
    stat_loads: P,
    stat_dropped: P,
}

fn sim_err(e: String) -> MoeError {
    MoeError::Sim(e)
}

/// Runs one batch on a reset (or idle) core, with the weight source answering requests after
/// `source.latency` extra cycles, and returns what happened. `max_cycles` bounds the run;
/// exceeding it is an error naming the cycle.
pub fn run_batch<H: Harness>(
    h: &mut H,
    p: &MoeParams,
    data: &MoeData,
    reorder: bool,
    source: WeightSource,
    stalls: Stalls,
    max_cycles: u64,
) -> Result<RunReport> {
    let mut port = |n: &str| h.port(n).map_err(sim_err);
    let ports = Ports {
        cmd_valid: port("cmd_valid")?,
        cmd_ready: port("cmd_ready")?,
        cmd_reorder: port("cmd_reorder")?,
        done: port("done")?,
        s_tdata: port("s_axis_tdata")?,
        s_tvalid: port("s_axis_tvalid")?,
        s_tready: port("s_axis_tready")?,
        m_tdata: port("m_axis_tdata")?,
        m_tvalid: port("m_axis_tvalid")?,
        m_tready: port("m_axis_tready")?,
        m_tlast: port("m_axis_tlast")?,
        w_tdata: port("s_axis_w_tdata")?,
        w_tvalid: port("s_axis_w_tvalid")?,
        w_tready: port("s_axis_w_tready")?,
        w_tlast: port("s_axis_w_tlast")?,
        wreq_valid: port("wreq_valid")?,
        wreq_ready: port("wreq_ready")?,
        wreq_id: port("wreq_id")?,
        stat_loads: port("stat_loads")?,
        stat_dropped: port("stat_dropped")?,
    };
    let inputs = model::input_beats(p, data);
    let mut segments: Vec<Option<Vec<Vec<u64>>>> = vec![None; p.experts as usize + 1];
    let mut rng = SplitMix64::new(stalls.seed);
    let draw = |prob: f64, rng: &mut SplitMix64| {
        prob > 0.0 && (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= prob
    };
    let mut in_pos = 0usize;
    let mut in_offer = false;
    // (beat, tlast, first cycle it may be offered): the DDR latency of its request.
    let mut w_queue: std::collections::VecDeque<(Vec<u64>, bool, u64)> = Default::default();
    let mut w_offer = false;
    let mut cmd_pending = true;
    let mut cmd_cycle: Option<u64> = None;
    let mut report = RunReport {
        cycles: 0,
        outputs: Vec::new(),
        requests: Vec::new(),
        weight_beats: 0,
        loads: 0,
        dropped: 0,
    };
    let pk = |h: &mut H, p: H::Port, v: u64| h.poke(p, v).map_err(sim_err);
    pk(h, ports.wreq_ready, 1)?;
    pk(h, ports.cmd_reorder, u64::from(reorder))?;
    for cycle in 0..max_cycles {
        // Drive.
        pk(h, ports.cmd_valid, u64::from(cmd_pending))?;
        if !in_offer && in_pos < inputs.len() && !draw(stalls.input_gap, &mut rng) {
            in_offer = true;
        }
        if in_offer {
            pk(h, ports.s_tdata, inputs[in_pos])?;
        }
        pk(h, ports.s_tvalid, u64::from(in_offer))?;
        if !w_offer
            && w_queue.front().is_some_and(|b| b.2 <= cycle)
            && !draw(stalls.weight_gap, &mut rng)
        {
            w_offer = true;
        }
        if let (true, Some((beat, last, _))) = (w_offer, w_queue.front()) {
            h.poke_wide(ports.w_tdata, beat).map_err(sim_err)?;
            pk(h, ports.w_tlast, u64::from(*last))?;
        }
        pk(h, ports.w_tvalid, u64::from(w_offer))?;
        let ready = !draw(stalls.output_stall, &mut rng);
        pk(h, ports.m_tready, u64::from(ready))?;
        // Sample.
        let mut pe = |p: H::Port| h.peek(p).map_err(sim_err);
        if cmd_pending && pe(ports.cmd_ready)? == 1 {
            cmd_pending = false;
            cmd_cycle = Some(cycle);
        }
        if in_offer && pe(ports.s_tready)? == 1 {
            in_offer = false;
            in_pos += 1;
        }
        if w_offer && pe(ports.w_tready)? == 1 {
            w_offer = false;
            w_queue.pop_front();
            report.weight_beats += 1;
        }
        if ready && pe(ports.m_tvalid)? == 1 {
            let d = pe(ports.m_tdata)?;
            let l = pe(ports.m_tlast)? == 1;
            report.outputs.push((d, l));
        }
        if pe(ports.wreq_valid)? == 1 {
            let id = pe(ports.wreq_id)? as u32;
            let seg = super::weights::segment(p, id).ok_or_else(|| {
                MoeError::Sim(format!("cycle {cycle}: wreq_id {id} out of range"))
            })?;
            report.requests.push(id);
            let beats = segments[id as usize]
                .get_or_insert_with(|| model::segment_beats(p, data, seg))
                .clone();
            let n = beats.len();
            let due = cycle + 1 + u64::from(source.latency);
            w_queue.extend(
                beats
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| (b, i + 1 == n, due)),
            );
        }
        if let Some(c0) = cmd_cycle
            && cycle > c0
            && pe(ports.done)? == 1
        {
            report.cycles = cycle - c0;
            report.loads = pe(ports.stat_loads)?;
            report.dropped = pe(ports.stat_dropped)?;
            pk(h, ports.cmd_valid, 0)?;
            return Ok(report);
        }
        h.step().map_err(sim_err)?;
    }
    Err(MoeError::Sim(format!(
        "no `done` within {max_cycles} cycles ({} of {} tokens' elements in, {} outputs, {} weight beats)",
        in_pos,
        inputs.len(),
        report.outputs.len(),
        report.weight_beats
    )))
}
