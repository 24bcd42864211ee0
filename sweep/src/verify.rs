//! `--verify N`: simulate the best Pareto points in Verilator and compare with the estimates.

use accelforge_reports::schema::{PointRecord, VerifyRecord};
use accelforge_templates::moe::model::MoeData;
use accelforge_templates::moe::tb::Stalls;
use accelforge_templates::systolic::SystolicParams;
use accelforge_templates::systolic::sim::{SimOptions, random_gemm_operands, run_gemm};

use crate::error::{Result, SweepError};
use crate::moe::MoePoint;
use crate::spec::{Spec, TemplateSpace, WorkLayer, WorkOp};

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
        match (&spec.space, &layer.op) {
            (TemplateSpace::Systolic(_), WorkOp::Gemm { gemm, .. }) => {
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
                let (a, b) = random_gemm_operands(&r, gemm, 1);
                let opts = SimOptions {
                    seed: 1,
                    backpressure: 0.0,
                    trace: None,
                };
                let rep = run_gemm(&p, gemm, &a, &b, &opts).map_err(|e| fail(e.to_string()))?;
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
            (TemplateSpace::Moe(space), WorkOp::Moe(_)) => {
                let pt: MoePoint = serde_json::from_value(rec.params.clone())
                    .map_err(|e| fail(format!("its params do not describe an MoE core: {e}")))?;
                let p = pt.params(&space.shape());
                let data = MoeData::random(&p, 1, 0.0).map_err(|e| fail(e.to_string()))?;
                let started = std::time::Instant::now();
                let o = accelforge_templates::moe::sim::simulate(
                    &p,
                    &data,
                    pt.reorder,
                    pt.source(),
                    Stalls::default(),
                    &accelforge_sim::BuildOptions::default(),
                )
                .map_err(|e| fail(e.to_string()))?;
                out.push(VerifyRecord {
                    id: rec.id.clone(),
                    layer: layer.name.clone(),
                    model_cycles: o.model.cycles,
                    measured_cycles: o.run.cycles,
                    outputs_checked: o.check.outputs_checked,
                    mismatches: o.check.mismatches,
                    sim_seconds: started.elapsed().as_secs_f64(),
                });
            }
            _ => {
                return Err(fail(
                    "the workload's layers do not belong to the sweep's template".into(),
                ));
            }
        }
    }
    Ok(out)
}
