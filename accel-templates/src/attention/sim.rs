//! Runs the attention kernel in Verilator (through `accelforge-sim`) on random heads and
//! checks every output beat against the golden model and the cycle count against the model.
//!
//! The bench plays the host: it offers the input beats of [`super::stream::input_beats`] on
//! `s_axis` and takes `m_axis`, optionally with random gaps on the input and random
//! back-pressure on the output (then only the outputs are compared, not the cycles).

use accelforge_sim::{BuildOptions, DesignSpec, Sim, build};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::params::Resolved;
use super::stream::{AttentionData, input_beats, output_beats};
use super::{AttentionError, Result, cost, rtl};

/// Random stalls (all zero for a cycle-exact run).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stalls {
    /// Probability of no input beat offered in a cycle.
    pub input_gap: f64,
    /// Probability of `m_axis_tready` low in a cycle.
    pub output_stall: f64,
    /// Seed of the stall generator.
    pub seed: u64,
}

/// One command simulated and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionSim {
    /// Cycles from command acceptance to `done`.
    pub cycles: u64,
    /// The cycle model's count for the same command.
    pub model_cycles: u64,
    /// Output beats compared.
    pub beats_checked: u64,
    /// Output elements compared.
    pub outputs_checked: u64,
    /// Beats that differ, are missing or extra, plus wrong `tlast` flags.
    pub mismatches: u64,
    /// The first few problems.
    pub first: Vec<String>,
}

fn sim_err(e: impl std::fmt::Display) -> AttentionError {
    AttentionError::Sim(e.to_string())
}

/// Builds the kernel (cached by `opts`), runs one command on `data` and checks it.
pub fn simulate(
    r: &Resolved,
    data: &AttentionData,
    stalls: Stalls,
    opts: &BuildOptions,
) -> Result<AttentionSim> {
    simulate_against(r, data, &data.golden(r)?, stalls, opts)
}

/// As [`simulate`], checking against the given per-head outputs (a test's deliberately wrong
/// expectation shows the check can fail).
pub fn simulate_against(
    r: &Resolved,
    data: &AttentionData,
    golden: &[ndarray::Array2<i64>],
    stalls: Stalls,
    opts: &BuildOptions,
) -> Result<AttentionSim> {
    let want = output_beats(r, golden);
    let inputs = input_beats(r, data);
    let design = rtl::design(r)?;
    let compiled = build(&DesignSpec::from_hdl(&design), opts)
        .map_err(|e| sim_err(format!("building the attention kernel with Verilator: {e}")))?;
    let mut sim = compiled.sim().map_err(sim_err)?;
    sim.reset(2).map_err(sim_err)?;
    let model_cycles = cost::cycles(r);
    let limit = model_cycles * 8 + 10_000;
    let (cycles, got) = run(&mut sim, &inputs, want.len(), stalls, limit)?;
    let mut mismatches = 0u64;
    let mut first = Vec::new();
    let mut note = |s: String| {
        if first.len() < 8 {
            first.push(s);
        }
    };
    for (i, w) in want.iter().enumerate() {
        match got.get(i) {
            Some((data, last)) => {
                if data != w {
                    mismatches += 1;
                    note(format!("beat {i}: got {data:x?}, want {w:x?}"));
                }
                if *last != (i + 1 == want.len()) {
                    mismatches += 1;
                    note(format!("beat {i}: tlast = {last}"));
                }
            }
            None => {
                mismatches += 1;
                note(format!("beat {i}: missing"));
            }
        }
    }
    if got.len() > want.len() {
        mismatches += (got.len() - want.len()) as u64;
        note(format!("{} extra beats", got.len() - want.len()));
    }
    Ok(AttentionSim {
        cycles,
        model_cycles,
        beats_checked: want.len() as u64,
        outputs_checked: want.len() as u64 * u64::from(r.p.simd),
        mismatches,
        first,
    })
}

/// Output beats as taken: (data words, tlast).
type Beats = Vec<(Vec<u64>, bool)>;

/// Drives one command; returns the cycles to `done` and the output beats.
fn run(
    sim: &mut Sim,
    inputs: &[Vec<u64>],
    expect_beats: usize,
    stalls: Stalls,
    limit: u64,
) -> Result<(u64, Beats)> {
    let port = |sim: &Sim, n: &str| sim.port(n).map_err(sim_err);
    let cmd_valid = port(sim, "cmd_valid")?;
    let cmd_ready = port(sim, "cmd_ready")?;
    let done = port(sim, "done")?;
    let s_tdata = port(sim, "s_axis_tdata")?;
    let s_tvalid = port(sim, "s_axis_tvalid")?;
    let s_tready = port(sim, "s_axis_tready")?;
    let m_tdata = port(sim, "m_axis_tdata")?;
    let m_tvalid = port(sim, "m_axis_tvalid")?;
    let m_tready = port(sim, "m_axis_tready")?;
    let m_tlast = port(sim, "m_axis_tlast")?;
    let mut rng = ChaCha8Rng::seed_from_u64(stalls.seed);
    let mut draw = |prob: f64| prob > 0.0 && rng.random_bool(prob.min(1.0));
    let mut outputs = Vec::with_capacity(expect_beats);
    let mut pos = 0usize;
    let mut offer = false;
    let mut cmd_pending = true;
    let mut start: Option<u64> = None;
    for cycle in 0..limit {
        sim.poke(cmd_valid, u64::from(cmd_pending))
            .map_err(sim_err)?;
        if !offer && pos < inputs.len() && !draw(stalls.input_gap) {
            offer = true;
            sim.poke_wide(s_tdata, &inputs[pos]).map_err(sim_err)?;
        }
        sim.poke(s_tvalid, u64::from(offer)).map_err(sim_err)?;
        let ready = !draw(stalls.output_stall);
        sim.poke(m_tready, u64::from(ready)).map_err(sim_err)?;
        if cmd_pending && sim.peek(cmd_ready).map_err(sim_err)? == 1 {
            cmd_pending = false;
            start = Some(cycle);
        }
        if offer && sim.peek(s_tready).map_err(sim_err)? == 1 {
            offer = false;
            pos += 1;
        }
        if ready && sim.peek(m_tvalid).map_err(sim_err)? == 1 {
            let d = sim.peek_wide(m_tdata).map_err(sim_err)?;
            let l = sim.peek(m_tlast).map_err(sim_err)? == 1;
            outputs.push((d, l));
        }
        if let Some(c0) = start
            && cycle > c0
            && sim.peek(done).map_err(sim_err)? == 1
        {
            sim.poke(cmd_valid, 0).map_err(sim_err)?;
            return Ok((cycle - c0, outputs));
        }
        sim.step().map_err(sim_err)?;
    }
    Err(sim_err(format!(
        "no `done` within {limit} cycles ({pos} of {} input beats taken, {} of {expect_beats} \
         output beats)",
        inputs.len(),
        outputs.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::AttentionParams;

    fn params(d: u32, t: u32, lanes: u32, simd: u32) -> Resolved {
        AttentionParams {
            head_dim: d,
            heads: 2,
            tokens: t,
            query_lanes: lanes,
            simd,
            ..AttentionParams::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn small_kernel_matches_golden_and_model() {
        let r = params(8, 5, 2, 4);
        let data = AttentionData::random(&r, 7, 1.0);
        let s = simulate(&r, &data, Stalls::default(), &BuildOptions::default()).unwrap();
        assert_eq!(s.mismatches, 0, "{:?}", s.first);
        assert_eq!(s.cycles, s.model_cycles);
    }
}
