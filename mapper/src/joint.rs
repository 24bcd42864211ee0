//! Several templates sized together: [`Joint<A, B>`] is one engine model whose
//! configurations are `A`'s and `B`'s side by side, each layer priced only on the
//! configurations of the template that runs it. Under the heterogeneous formulation with one
//! engine per template (`--engines N`), the MILP chooses every kernel's size at once under one
//! board budget: the linear kernel (systolic array) for the projections and the MLP, the
//! attention kernel for `attention` layers, the MoE core for `moe` layers. Nesting composes
//! more than two (`Joint<Joint<A, B>, C>`).

use accelforge_boards::ResourceEstimate;
use serde::Serialize;

use crate::model::{EngineModel, ModelErrors, SearchSpace};
use crate::workload::Layer;

/// A configuration of one of two engines (serialized as the inner one).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Either<A, B> {
    /// The first engine's.
    First(A),
    /// The second engine's.
    Second(B),
}

/// Two engine models offered together.
#[derive(Debug)]
pub struct Joint<A, B> {
    first: A,
    second: B,
    name: String,
    note: String,
}

impl<A: EngineModel, B: EngineModel> Joint<A, B> {
    /// `first` and `second` as one engine model.
    pub fn new(first: A, second: B) -> Self {
        let name = format!("{}+{}", first.name(), second.name());
        let note = [first.note(), second.note()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
        Joint {
            first,
            second,
            name,
            note,
        }
    }
}

impl<A: EngineModel, B: EngineModel> EngineModel for Joint<A, B> {
    type Config = Either<A::Config, B::Config>;
    type Tiling = Either<A::Tiling, B::Tiling>;

    fn name(&self) -> &str {
        &self.name
    }

    fn note(&self) -> Option<&str> {
        (!self.note.is_empty()).then_some(self.note.as_str())
    }

    fn candidates(&self, space: &SearchSpace) -> Vec<Self::Config> {
        let a = self.first.candidates(space).into_iter().map(Either::First);
        let b = self
            .second
            .candidates(space)
            .into_iter()
            .map(Either::Second);
        a.chain(b).collect()
    }

    fn tilings(&self, cfg: &Self::Config, layer: &Layer) -> Vec<Self::Tiling> {
        match cfg {
            Either::First(c) => self
                .first
                .tilings(c, layer)
                .into_iter()
                .map(Either::First)
                .collect(),
            Either::Second(c) => self
                .second
                .tilings(c, layer)
                .into_iter()
                .map(Either::Second)
                .collect(),
        }
    }

    fn layer_cycles(&self, cfg: &Self::Config, layer: &Layer, t: &Self::Tiling) -> Option<u64> {
        match (cfg, t) {
            (Either::First(c), Either::First(t)) => self.first.layer_cycles(c, layer, t),
            (Either::Second(c), Either::Second(t)) => self.second.layer_cycles(c, layer, t),
            _ => None,
        }
    }

    fn ddr_bytes(&self, cfg: &Self::Config, layer: &Layer, t: &Self::Tiling) -> u64 {
        match (cfg, t) {
            (Either::First(c), Either::First(t)) => self.first.ddr_bytes(c, layer, t),
            (Either::Second(c), Either::Second(t)) => self.second.ddr_bytes(c, layer, t),
            _ => u64::MAX,
        }
    }

    fn stream_bytes_per_cycle(&self, cfg: &Self::Config) -> f64 {
        match cfg {
            Either::First(c) => self.first.stream_bytes_per_cycle(c),
            Either::Second(c) => self.second.stream_bytes_per_cycle(c),
        }
    }

    fn resources(&self, cfg: &Self::Config) -> ResourceEstimate {
        match cfg {
            Either::First(c) => self.first.resources(c),
            Either::Second(c) => self.second.resources(c),
        }
    }

    fn model_errors(&self) -> ModelErrors {
        let mut e = self.first.model_errors();
        let other = self.second.model_errors();
        e.count += other.count;
        for m in other.examples {
            if e.examples.len() < ModelErrors::EXAMPLES && !e.examples.contains(&m) {
                e.examples.push(m);
            }
        }
        e
    }

    /// Each engine's own latency rule (the MoE core's cycles already include its stream).
    fn layer_latency(
        &self,
        cfg: &Self::Config,
        layer: &Layer,
        t: &Self::Tiling,
        ddr_bytes_per_cycle: f64,
    ) -> Option<u64> {
        match (cfg, t) {
            (Either::First(c), Either::First(t)) => {
                self.first.layer_latency(c, layer, t, ddr_bytes_per_cycle)
            }
            (Either::Second(c), Either::Second(t)) => {
                self.second.layer_latency(c, layer, t, ddr_bytes_per_cycle)
            }
            _ => None,
        }
    }
}
