//! The systolic-array template as a mapper engine: [`TemplateEngine`] over
//! [`Systolic`], whose `map_candidates` documents how the search space maps onto the
//! template's knobs.

use accelforge_templates::systolic::Systolic;

use crate::engine::TemplateEngine;
use crate::workload::Workload;

/// The systolic template's exact models for a workload.
pub type SystolicTemplateModel = TemplateEngine<Systolic>;

impl TemplateEngine<Systolic> {
    /// A model whose configurations can run every GEMM-like layer of `workload` (the DDR rate
    /// does not change a systolic array's candidates).
    pub fn for_workload(workload: &Workload) -> Self {
        Self::new(workload, f64::INFINITY)
    }
}
