//! `--verify N`: simulate the best Pareto points in Verilator and compare with the estimates.

use accelforge_reports::schema::{PointRecord, VerifyRecord};
use accelforge_templates::systolic::SystolicParams;
use accelforge_templates::systolic::sim::{SimOptions, random_gemm_operands, run_gemm};

use crate::error::{Result, SweepError};
use crate::spec::{Spec, TemplateSpace, WorkLayer};

/// The layer simulated for each point: the one with the fewest MACs, so a verification costs
/// one small Verilator build and a short run (the cycle model is exact for every shape, so
/// any layer tests it; the cheapest one keeps `--verify` usable on big workloads).
pub fn representative_layer(spec: &Spec) -> Option<&WorkLayer> {
    spec.layers.iter().min_by_key(|l| l.gemm.macs())
}

/// Simulates the first `n` points of `front` (best first) on the representative layer.
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
        match &spec.space {
            TemplateSpace::Systolic(_) => {
                let p: SystolicParams =
                    serde_json::from_value(rec.params.clone()).map_err(|e| {
                        fail(format!("its params do not describe a systolic array: {e}"))
                    })?;
                let r = p.resolve().map_err(|e| fail(e.to_string()))?;
                let model_cycles = rec
                    .layers
                    .iter()
                    .find(|l| l.name == layer.name)
                    .map(|l| l.cycles)
                    .ok_or_else(|| fail(format!("the record has no layer `{}`", layer.name)))?;
                let (a, b) = random_gemm_operands(&r, &layer.gemm, 1);
                let opts = SimOptions {
                    seed: 1,
                    backpressure: 0.0,
                    trace: None,
                };
                let rep =
                    run_gemm(&p, &layer.gemm, &a, &b, &opts).map_err(|e| fail(e.to_string()))?;
                out.push(VerifyRecord {
                    id: rec.id.clone(),
                    layer: layer.name.clone(),
                    model_cycles,
                    measured_cycles: rep.cycles,
                    outputs_checked: rep.outputs_checked,
                    mismatches: rep.mismatches,
                    sim_seconds: rep.sim_seconds,
                });
            }
        }
    }
    Ok(out)
}
