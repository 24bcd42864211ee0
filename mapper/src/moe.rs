//! The MoE template as a mapper engine: [`TemplateEngine`] over [`Moe`], whose
//! `map_candidates` documents how the search space maps onto the core's knobs and whose
//! module documents the balanced routing it is priced on.

pub use accelforge_templates::moe::template::MoeSpec;
use accelforge_templates::moe::template::balanced_loads;
use accelforge_templates::moe::{Moe, MoeParams};

use crate::engine::TemplateEngine;

/// The MoE template's exact models for a workload and weight-stream rate.
pub type MoeTemplateModel = TemplateEngine<Moe>;

impl TemplateEngine<Moe> {
    /// The priced routing (see [`balanced_loads`]).
    pub fn balanced_loads(p: &MoeParams) -> Vec<(u32, u32)> {
        balanced_loads(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EngineModel, SearchSpace};
    use crate::workload::parse_workload;

    const TINY: &str =
        "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=8\ntop_k=2\n";

    #[test]
    fn balanced_loads_cover_every_pair() {
        let p = MoeParams {
            experts: 8,
            tokens: 5,
            top_k: 2,
            ..MoeParams::default()
        };
        let loads = MoeTemplateModel::balanced_loads(&p);
        assert_eq!(loads.iter().map(|l| l.1).sum::<u32>(), 10);
        assert_eq!(loads.len(), 8);
        assert!(loads.iter().all(|l| l.1 <= p.tokens));
    }

    #[test]
    fn candidates_are_valid_and_run_only_their_shape() {
        let w = parse_workload(
            &format!("{TINY}[[layer]]\nkind='gemm'\nm=4\nk=4\nn=4\n"),
            "t",
            "t",
        )
        .unwrap();
        let model = MoeTemplateModel::new(&w, 10.0);
        let c = model.candidates(&SearchSpace::small());
        // lanes, simd ∈ {4, 8} (16 does not divide 8 experts), two stream widths.
        assert!(!c.is_empty());
        for p in &c {
            p.validate().unwrap();
            assert!(p.ddr_bytes_per_cycle <= 8);
            assert_eq!(model.tilings(p, &w.layers[0]).len(), 1);
            assert!(model.tilings(p, &w.layers[1]).is_empty());
        }
        // Below one byte per cycle nothing can be built.
        assert!(
            MoeTemplateModel::new(&w, 0.5)
                .candidates(&SearchSpace::small())
                .is_empty()
        );
    }
}
