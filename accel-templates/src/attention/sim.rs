//! Runs the attention kernel in Verilator (through `accelforge-sim`) on random heads and
//! checks every output beat against the golden model and the cycle count against the model.
//!
//! The bench plays the host: it offers the input beats of [`super::stream::input_beats`] on
//! `s_axis` and takes `m_axis`, optionally with random gaps on the input and random
//! back-pressure on the output (then only the outputs are compared, not the cycles).

use accelforge_sim::{BuildOptions, DesignSpec, build};

use crate::template::drive;
pub use crate::template::drive::Stalls;

use super::params::Resolved;
use super::stream::{AttentionData, input_beats, output_beats};
use super::{AttentionError, Result, cost, rtl};

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
    let (cycles, got) =
        drive::run_command(&mut sim, &inputs, want.len(), stalls, limit).map_err(sim_err)?;
    let (mismatches, first) = drive::compare_beats(&want, &got);
    Ok(AttentionSim {
        cycles,
        model_cycles,
        beats_checked: want.len() as u64,
        outputs_checked: want.len() as u64 * u64::from(r.p.simd),
        mismatches,
        first,
    })
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
