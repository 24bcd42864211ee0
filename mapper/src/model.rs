//! The interface between the mapper and an accelerator template's cost models.
//!
//! An engine implements [`EngineModel`]: it enumerates the configurations of a [`SearchSpace`],
//! the tiling options of a layer under a configuration, and the cycles, DDR bytes and resources
//! of each. The formulations only ever see the numbers, so replacing a model changes no
//! formulation. Every registered template is one through [`crate::TemplateEngine`]; implement
//! the trait directly only for a model that is not a template (the provisional textbook
//! model).

use std::fmt::Debug;

use accelforge_boards::ResourceEstimate;
pub use accelforge_templates::template::search::{MapDataflow as Dataflow, SearchSpace};
use serde::{Deserialize, Serialize};

use crate::workload::Layer;

/// One accelerator template family's cost model, as the mapper needs it.
///
/// A template gets this from [`crate::TemplateEngine`] (its `Template` impl is all it writes).
/// A model without tiling choices uses `type Tiling = ()` and returns `vec![()]` from
/// [`tilings`](Self::tilings).
pub trait EngineModel {
    /// One configuration (e.g. the template's params struct).
    type Config: Clone + Debug + Serialize;
    /// One way to tile a layer on a configuration (loop order, tile sizes).
    type Tiling: Clone + Debug + Serialize;

    /// Short name, shown in reports (`provisional-systolic`).
    fn name(&self) -> &str;

    /// A caveat shown with every report (e.g. "provisional, not calibrated"); `None` for an
    /// exact model.
    fn note(&self) -> Option<&str> {
        None
    }

    /// All configurations of the space this model can build.
    fn candidates(&self, space: &SearchSpace) -> Vec<Self::Config>;

    /// The tiling options of `layer` on `cfg`; empty when `cfg` cannot run the layer.
    fn tilings(&self, cfg: &Self::Config, layer: &Layer) -> Vec<Self::Tiling>;

    /// Compute cycles of one run of `layer` (repeat not included) with no memory stalls;
    /// `None` = cannot run it.
    fn layer_cycles(&self, cfg: &Self::Config, layer: &Layer, tiling: &Self::Tiling)
    -> Option<u64>;

    /// DDR bytes one run of `layer` moves (reads + writes) under this tiling.
    fn ddr_bytes(&self, cfg: &Self::Config, layer: &Layer, tiling: &Self::Tiling) -> u64;

    /// Bytes per cycle the engine's own DMA interface can move (its stream width).
    fn stream_bytes_per_cycle(&self, cfg: &Self::Config) -> f64;

    /// Resources of one engine.
    fn resources(&self, cfg: &Self::Config) -> ResourceEstimate;

    /// Errors the cycle or resource model returned for some candidate so far (such a
    /// candidate is skipped or priced out). Reported, not swallowed: one may hide a bug.
    fn model_errors(&self) -> ModelErrors {
        ModelErrors::default()
    }

    /// Cycles of one run of `layer` including memory: by default compute and DDR transfers
    /// overlap (double-buffered tiles), so the slower of the two wins, and the transfer rate is
    /// the smaller of the board's DDR rate and the engine's stream rate. A model whose cycle
    /// count already includes memory stalls overrides this.
    fn layer_latency(
        &self,
        cfg: &Self::Config,
        layer: &Layer,
        tiling: &Self::Tiling,
        ddr_bytes_per_cycle: f64,
    ) -> Option<u64> {
        let compute = self.layer_cycles(cfg, layer, tiling)?;
        let rate = ddr_bytes_per_cycle.min(self.stream_bytes_per_cycle(cfg));
        if rate <= 0.0 || !rate.is_finite() {
            return None;
        }
        // Byte counts are below 2^53 (dimensions are capped), so the f64 division is exact
        // enough; ceil because a partial cycle still costs a cycle.
        let transfer = (self.ddr_bytes(cfg, layer, tiling) as f64 / rate).ceil() as u64;
        Some(compute.max(transfer))
    }
}

/// How many cycle-/resource-model calls failed while pricing candidates, with a few distinct
/// messages. A layer the configuration cannot run by design (too large a dimension) is not an
/// error; anything the model itself refuses is, because it skips a candidate silently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelErrors {
    /// Failed calls.
    pub count: u64,
    /// Up to [`ModelErrors::EXAMPLES`] distinct messages.
    pub examples: Vec<String>,
}

impl ModelErrors {
    /// Distinct messages kept.
    pub const EXAMPLES: usize = 5;

    /// Counts one failure.
    pub fn record(&mut self, message: String) {
        self.count += 1;
        if self.examples.len() < Self::EXAMPLES && !self.examples.contains(&message) {
            self.examples.push(message);
        }
    }
}
