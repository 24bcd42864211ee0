//! The host side of a command-driven streaming kernel in Verilator, shared by the kernels with
//! the `cmd_valid/cmd_ready/done` + `s_axis` + `m_axis` interface (attention, LayerNorm): offer
//! the input beats (optionally with random gaps), take the output beats (optionally under
//! random back-pressure), count the cycles from command acceptance to `done`, and compare the
//! output beats with the expected ones.

use accelforge_sim::Sim;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// Output beats as taken: (data words, tlast).
pub type Beats = Vec<(Vec<u64>, bool)>;

/// Drives one command; returns the cycles from acceptance to `done` and the output beats.
pub fn run_command(
    sim: &mut Sim,
    inputs: &[Vec<u64>],
    expect_beats: usize,
    stalls: Stalls,
    limit: u64,
) -> Result<(u64, Beats), String> {
    let e = |x: accelforge_sim::SimError| x.to_string();
    let port = |sim: &Sim, n: &str| sim.port(n).map_err(e);
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
        sim.poke(cmd_valid, u64::from(cmd_pending)).map_err(e)?;
        if !offer && pos < inputs.len() && !draw(stalls.input_gap) {
            offer = true;
            sim.poke_wide(s_tdata, &inputs[pos]).map_err(e)?;
        }
        sim.poke(s_tvalid, u64::from(offer)).map_err(e)?;
        let ready = !draw(stalls.output_stall);
        sim.poke(m_tready, u64::from(ready)).map_err(e)?;
        if cmd_pending && sim.peek(cmd_ready).map_err(e)? == 1 {
            cmd_pending = false;
            start = Some(cycle);
        }
        if offer && sim.peek(s_tready).map_err(e)? == 1 {
            offer = false;
            pos += 1;
        }
        if ready && sim.peek(m_tvalid).map_err(e)? == 1 {
            let d = sim.peek_wide(m_tdata).map_err(e)?;
            let l = sim.peek(m_tlast).map_err(e)? == 1;
            outputs.push((d, l));
        }
        if let Some(c0) = start
            && cycle > c0
            && sim.peek(done).map_err(e)? == 1
        {
            sim.poke(cmd_valid, 0).map_err(e)?;
            return Ok((cycle - c0, outputs));
        }
        sim.step().map_err(e)?;
    }
    Err(format!(
        "no `done` within {limit} cycles ({pos} of {} input beats taken, {} of {expect_beats} \
         output beats)",
        inputs.len(),
        outputs.len()
    ))
}

/// Beats that differ, are missing or extra, plus wrong `tlast` flags (set on the last beat
/// only), and the first few problems.
pub fn compare_beats(want: &[Vec<u64>], got: &Beats) -> (u64, Vec<String>) {
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
    (mismatches, first)
}

/// Packs elements into `slot_bits`-bit slots, element 0 in the low bits (little-endian 64-bit
/// words). Inputs keep only their `elem_bits` low bits; outputs are sign-extended to the slot.
pub fn pack_slots(elems: &[i64], elem_bits: u32, slot_bits: u32, sign_extend: bool) -> Vec<u64> {
    let total = elems.len() as u32 * slot_bits;
    let mut words = vec![0u64; total.div_ceil(64) as usize];
    let keep = if sign_extend { slot_bits } else { elem_bits };
    let mask = if keep >= 64 {
        u64::MAX
    } else {
        (1u64 << keep) - 1
    };
    for (i, &e) in elems.iter().enumerate() {
        let v = (e as u64) & mask;
        let bit = i as u32 * slot_bits;
        let (w, off) = ((bit / 64) as usize, bit % 64);
        words[w] |= v << off;
        if off + keep > 64 {
            words[w + 1] |= v >> (64 - off);
        }
    }
    words
}
