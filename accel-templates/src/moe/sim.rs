//! Runs the MoE core in Verilator (through `accelforge-sim`) with the testbench of [`super::tb`]
//! and checks it against the golden model and the cycle model — what `sim moe`, the sweep's
//! `--verify` and the demo share.

use accelforge_sim::{BuildOptions, DesignSpec, PortHandle, Sim, build};

use super::model::{self, MoeData, MoeGolden};
use super::params::MoeParams;
use super::tb::{self, Check, Harness, RunReport, Stalls};
use super::{MoeError, Result, WeightSource, cost, rtl};

/// [`Harness`] over a Verilator simulation.
#[allow(missing_debug_implementations)] // Sim holds a loaded library and has no Debug
pub struct SimHarness(pub Sim);

impl Harness for SimHarness {
    type Port = PortHandle;
    fn port(&mut self, name: &str) -> std::result::Result<PortHandle, String> {
        self.0.port(name).map_err(|e| e.to_string())
    }
    fn poke(&mut self, p: PortHandle, v: u64) -> std::result::Result<(), String> {
        self.0.poke(p, v).map_err(|e| e.to_string())
    }
    fn poke_wide(&mut self, p: PortHandle, words: &[u64]) -> std::result::Result<(), String> {
        self.0.poke_wide(p, words).map_err(|e| e.to_string())
    }
    fn peek(&mut self, p: PortHandle) -> std::result::Result<u64, String> {
        self.0.peek(p).map_err(|e| e.to_string())
    }
    fn step(&mut self) -> std::result::Result<(), String> {
        self.0.step().map_err(|e| e.to_string())
    }
    fn reset(&mut self) -> std::result::Result<(), String> {
        self.0.reset(2).map_err(|e| e.to_string())
    }
}

/// One batch simulated in Verilator, with what it is checked against.
#[derive(Debug, Clone)]
pub struct MoeSimOutcome {
    /// What the simulation did.
    pub run: RunReport,
    /// The run compared with the golden model.
    pub check: Check,
    /// The golden model's routing and outputs.
    pub golden: MoeGolden,
    /// The analytic cycle model for the same routing.
    pub model: cost::CycleReport,
}

impl MoeSimOutcome {
    /// Expert loads the core requested (every request but the gate matrix's).
    pub fn expert_loads(&self) -> usize {
        self.run.requests.len().saturating_sub(1)
    }
}

/// Builds the core (cached by `opts`), runs one batch of `data` with or without expert
/// reordering against a weight source of the given latency, and checks it against the golden
/// model; the cycle model is evaluated for the same source.
pub fn simulate(
    p: &MoeParams,
    data: &MoeData,
    reorder: bool,
    source: WeightSource,
    stalls: Stalls,
    opts: &BuildOptions,
) -> Result<MoeSimOutcome> {
    let golden = model::golden(p, data, reorder)?;
    let model_c = cost::cycles_with(p, &golden.routing.load_shape(), source)?;
    let design = rtl::design(p)?;
    let compiled = build(&DesignSpec::from_hdl(&design), opts)
        .map_err(|e| MoeError::Sim(format!("building the MoE core with Verilator: {e}")))?;
    let mut h = SimHarness(
        compiled
            .sim()
            .map_err(|e| MoeError::Sim(format!("starting the simulation: {e}")))?,
    );
    h.reset().map_err(MoeError::Sim)?;
    // Generous: stalls stretch the run, the model bounds the stall-free one.
    let limit = model_c.cycles * 4 + 100_000;
    let run = tb::run_batch(&mut h, p, data, reorder, source, stalls, limit)?;
    let check = tb::check(p, &golden, &run);
    Ok(MoeSimOutcome {
        run,
        check,
        golden,
        model: model_c,
    })
}

/// Refuses a layer whose simulation would hold more than
/// [`MAX_SIM_ELEMENTS`](crate::limits::MAX_SIM_ELEMENTS) token and weight elements (every
/// expert's weights are drawn and streamed): checked before allocating them.
pub fn check_sim_size(p: &MoeParams) -> std::result::Result<(), String> {
    let (t, d, f, e) = (
        u64::from(p.tokens),
        u64::from(p.d_model),
        u64::from(p.d_ff),
        u64::from(p.experts),
    );
    let elements = 2 * t * d + e * d + 2 * e * d * f;
    if elements > crate::limits::MAX_SIM_ELEMENTS {
        return Err(format!(
            "simulating this MoE layer needs {elements} token and weight elements in memory, \
             above the simulation bound of {}; use `estimate moe` for its exact cycle count \
             (it draws only the tokens and the gate), or simulate fewer experts or smaller \
             d_model/d_ff",
            crate::limits::MAX_SIM_ELEMENTS
        ));
    }
    Ok(())
}

/// Simulates one batch of `data` in Verilator (default build options) and checks it against
/// the golden model and the cycle model of the same routing.
pub fn simulate_batch(
    p: &MoeParams,
    data: &MoeData,
    reorder: bool,
    source: WeightSource,
) -> std::result::Result<crate::template::SimCheck, String> {
    let started = std::time::Instant::now();
    let o = simulate(
        p,
        data,
        reorder,
        source,
        Stalls::default(),
        &accelforge_sim::BuildOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    Ok(crate::template::SimCheck {
        cycles: o.run.cycles,
        model_cycles: o.model.cycles,
        outputs_checked: o.check.outputs_checked,
        mismatches: o.check.mismatches,
        sim_seconds: started.elapsed().as_secs_f64(),
    })
}
