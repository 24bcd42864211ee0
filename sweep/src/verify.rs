//! `--verify N`: simulate the best Pareto points in Verilator and compare with the estimates.

use accelforge_reports::schema::{PointRecord, VerifyRecord};

use crate::error::{Result, SweepError};
use crate::spec::{Spec, WorkLayer};

/// The layer simulated for each point: the one with the fewest MACs, so a verification costs
/// one small Verilator build and a short run (the cycle model is exact for every shape, so
/// any layer tests it; the cheapest one keeps `--verify` usable on big workloads). Every layer
/// of an MoE workload has the same shape: the first is taken.
pub fn representative_layer(spec: &Spec) -> Option<&WorkLayer> {
    spec.layers
        .iter()
        .min_by_key(|l| l.gemm().map_or(0, |g| g.macs()))
}

/// Simulates the first `n` points of `front` (best first) on the representative layer.
///
/// An MoE point is priced on the balanced routing, which random data does not produce; its
/// verification runs one batch of random tokens and weights (seed 1) and compares Verilator with
/// the cycle model *for that batch's routing*, so `model_cycles` there is the model's figure for
/// the simulated batch, not the point's balanced-routing latency.
pub fn verify(spec: &Spec, front: &[PointRecord], n: usize) -> Result<Vec<VerifyRecord>> {
    let Some(layer) = representative_layer(spec) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for rec in front.iter().take(n) {
        let fail = |reason: String| SweepError::Verify {
            id: rec.id.clone(),
            reason,
        };
        let check = spec.space.verify(&rec.params, &layer.unit).map_err(fail)?;
        // A point priced on another run than the simulated one (an MoE core's balanced
        // routing) is compared with the model's figure for the simulated run.
        let model_cycles = if spec.space.verify_reports_its_own_model() {
            check.model_cycles
        } else {
            rec.layers
                .iter()
                .find(|l| l.name == layer.name)
                .map(|l| l.cycles)
                .ok_or_else(|| fail(format!("the record has no layer `{}`", layer.name)))?
        };
        out.push(VerifyRecord {
            id: rec.id.clone(),
            layer: layer.name.clone(),
            model_cycles,
            measured_cycles: check.cycles,
            outputs_checked: check.outputs_checked,
            mismatches: check.mismatches,
            sim_seconds: check.sim_seconds,
        });
    }
    Ok(out)
}
