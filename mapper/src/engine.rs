//! Any registered template as a mapper engine: [`TemplateEngine<T>`] forwards to the
//! template's own exact models ([`Template::map_candidates`], [`Template::layer_cost`],
//! [`Template::resources`]) for the very params `gen`/`sim` take, so a mapping can be fed to
//! them unchanged. A new template needs no code here.
//!
//! The formulations ask for the same (configuration, layer) pairs more than once, so layer
//! costs are cached; every failure of a template's model is counted and reported
//! ([`ModelErrors`]), never silently dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use accelforge_boards::{Board, ResourceEstimate};
use accelforge_templates::template::{LayerCost, MapContext, Template};

use crate::model::{EngineModel, ModelErrors, SearchSpace};
use crate::workload::{Layer, Workload};

/// Cache key: the configuration and the layer's operation and types (as text; a layer's name
/// and repeat do not change one run's cost).
type CostKey = (String, String);

/// A template's exact models for a given workload.
#[derive(Debug)]
pub struct TemplateEngine<T: Template> {
    template: T,
    /// `NAME-template`, shown in reports.
    name: String,
    layers: Vec<Layer>,
    /// What every candidate shares besides the swept knobs; `None` = the template's defaults.
    base: Option<T::Params>,
    /// DDR bytes the board delivers per PL cycle (for templates whose stream rate depends on
    /// it).
    ddr_bytes_per_cycle: f64,
    cache: Mutex<HashMap<CostKey, Option<LayerCost>>>,
    errors: Arc<Mutex<ModelErrors>>,
}

impl<T: Template + Default> TemplateEngine<T> {
    /// An engine whose configurations can run the layers of `workload` it is meant for, fed
    /// by a DDR of `ddr_bytes_per_cycle` bytes per PL cycle.
    pub fn new(workload: &Workload, ddr_bytes_per_cycle: f64) -> Self {
        TemplateEngine {
            template: T::default(),
            name: format!("{}-template", T::default().name()),
            layers: workload.layers.clone(),
            base: None,
            ddr_bytes_per_cycle,
            cache: Mutex::new(HashMap::new()),
            errors: Arc::default(),
        }
    }

    /// [`new`](Self::new) with the DDR rate of `board` at `clock_mhz` (default: the board's
    /// default PL clock) — pass the same clock as `MapOptions::clock_mhz`.
    pub fn for_board(workload: &Workload, board: &Board, clock_mhz: Option<f64>) -> Self {
        let clock = clock_mhz.unwrap_or_else(|| board.default_clock_mhz());
        Self::new(workload, board.ddr_bytes_per_pl_cycle(clock))
    }

    /// Candidates built on `base` (its types, requantizer, ...) instead of the template's
    /// defaults, so that they are priced as they will be generated.
    pub fn with_base(mut self, base: T::Params) -> Self {
        self.base = Some(base);
        self
    }

    fn record(&self, message: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.record(message);
        }
    }

    fn cost(&self, cfg: &T::Params, layer: &Layer) -> Option<LayerCost> {
        let key = (
            serde_json::to_string(cfg).unwrap_or_default(),
            format!("{:?}{:?}", layer.op, layer.types),
        );
        if let Ok(cache) = self.cache.lock()
            && let Some(v) = cache.get(&key)
        {
            return *v;
        }
        let value = match self.template.layer_cost(cfg, layer) {
            Ok(v) => v,
            Err(e) => {
                self.record(e.to_string());
                None
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, value);
        }
        value
    }
}

impl<T: Template + Default> EngineModel for TemplateEngine<T> {
    type Config = T::Params;
    type Tiling = ();

    fn name(&self) -> &str {
        &self.name
    }

    fn note(&self) -> Option<&str> {
        Some(self.template.cost_note())
    }

    fn candidates(&self, space: &SearchSpace) -> Vec<T::Params> {
        self.template.map_candidates(&MapContext {
            space,
            layers: &self.layers,
            base: self.base.as_ref(),
            ddr_bytes_per_cycle: self.ddr_bytes_per_cycle,
        })
    }

    fn tilings(&self, cfg: &T::Params, layer: &Layer) -> Vec<()> {
        if self.cost(cfg, layer).is_some() {
            vec![()]
        } else {
            Vec::new()
        }
    }

    fn layer_cycles(&self, cfg: &T::Params, layer: &Layer, _: &()) -> Option<u64> {
        self.cost(cfg, layer).map(|c| c.cycles)
    }

    fn ddr_bytes(&self, cfg: &T::Params, layer: &Layer, _: &()) -> u64 {
        self.cost(cfg, layer).map_or(u64::MAX, |c| c.ddr_bytes)
    }

    fn stream_bytes_per_cycle(&self, cfg: &T::Params) -> f64 {
        self.template.stream_bytes_per_cycle(cfg)
    }

    fn layer_latency(
        &self,
        cfg: &T::Params,
        layer: &Layer,
        _: &(),
        ddr_bytes_per_cycle: f64,
    ) -> Option<u64> {
        let c = self.cost(cfg, layer)?;
        // Compute and DDR transfers overlap (double-buffered tiles), so the slower wins. A
        // template whose cycles include its own stream's stalls is bounded by the board's
        // DDR alone; otherwise the transfer runs at the slower of the DDR and the stream.
        let rate = if self.template.cycles_include_streams() {
            ddr_bytes_per_cycle
        } else {
            ddr_bytes_per_cycle.min(self.template.stream_bytes_per_cycle(cfg))
        };
        if rate <= 0.0 || !rate.is_finite() {
            return None;
        }
        // Byte counts are below 2^53 (dimensions are capped), so the f64 division is exact
        // enough; ceil because a partial cycle still costs a cycle.
        let transfer = (c.ddr_bytes as f64 / rate).ceil() as u64;
        Some(c.cycles.max(transfer))
    }

    fn resources(&self, cfg: &T::Params) -> ResourceEstimate {
        match self.template.resources(cfg) {
            Ok(r) => r,
            // Unbuildable configurations are filtered in `candidates`; make any other one
            // unaffordable rather than free, and report it.
            Err(e) => {
                self.record(format!("resource model: {e}"));
                ResourceEstimate {
                    lut: u64::MAX / 4,
                    ff: u64::MAX / 4,
                    dsp: u64::MAX / 4,
                    bram18: u64::MAX / 4,
                    uram: u64::MAX / 4,
                }
            }
        }
    }

    fn model_errors(&self) -> ModelErrors {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}
