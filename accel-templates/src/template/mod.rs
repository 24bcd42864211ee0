//! One shape for every template: the [`Template`] trait, its object-safe face [`DynTemplate`]
//! and the [`registry`] the mapper, the sweep and the CLI go through.
//!
//! A template is a folder under `src/` (its params, RTL generator, golden model, cycle and
//! resource models, Verilator harness) plus one `impl Template` and one line in [`registry`].
//! From then on:
//! - `accelforge gen|estimate|sim NAME --params FILE` generate, price and simulate it, and
//!   `gen --board` writes its Zynq bundle ([`Template::complete_interface`]);
//! - a sweep spec with `template = "NAME"` and a `[NAME]` table of axes explores it
//!   ([`Template::sweep_space`]);
//! - the mapper prices it on a workload under a board's budget (`accelforge_mapper::
//!   TemplateEngine<T>` over [`Template::map_candidates`] and [`Template::layer_cost`]).
//!
//! The README's "Adding a template" section walks through it.

pub mod axis;
pub mod drive;
pub mod memory;
pub mod search;

use std::fmt::Debug;

use accelforge_boards::{AccelInterface, Board, ResourceEstimate};
use accelforge_hdl::Design;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::workload::Layer;

pub use search::{MapDataflow, SearchSpace};

/// What one run of a workload layer costs on a configuration, from the template's exact
/// models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LayerCost {
    /// Cycles, equal to Verilator's count.
    pub cycles: u64,
    /// Multiply-accumulates the hardware performs.
    pub macs: u64,
    /// Bytes its AXI streams move to and from DDR (operands, results, streamed weights).
    pub ddr_bytes: u64,
}

/// One simulation of a layer in Verilator against the golden model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimCheck {
    /// Cycles Verilator counted.
    pub cycles: u64,
    /// Cycles the analytic model gives for the same run.
    pub model_cycles: u64,
    /// Outputs compared with the golden model.
    pub outputs_checked: u64,
    /// Outputs that differed.
    pub mismatches: u64,
    /// Wall time of the simulation, seconds.
    pub sim_seconds: f64,
}

/// Where the mapper's candidates come from.
#[derive(Debug, Clone, Copy)]
pub struct MapContext<'a, P> {
    /// The knobs to sweep.
    pub space: &'a SearchSpace,
    /// The workload's layers (each configuration must run the ones it is priced on).
    pub layers: &'a [Layer],
    /// What every candidate shares besides the swept knobs (types, requantizer); `None` =
    /// the template's defaults.
    pub base: Option<&'a P>,
    /// DDR bytes the board delivers per PL cycle.
    pub ddr_bytes_per_cycle: f64,
}

/// An error from a template, with the problem in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Any displayable error as a [`TemplateError`] (for `map_err` in a template's impl).
pub fn err(e: impl std::fmt::Display) -> TemplateError {
    TemplateError(e.to_string())
}

/// A sweep-spec error: the key (as written in the spec, e.g. `systolic.rows` or `workload`)
/// and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceError {
    /// Key in the spec file.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// What a template's models say about one sweep point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointEvaluation {
    /// Processing elements (MAC units).
    pub pes: u64,
    /// Resources.
    pub resources: ResourceEstimate,
    /// One run of each workload layer, workload order.
    pub layers: Vec<LayerCost>,
}

/// A template's sweep space: its axes expanded, enumerated lazily by index.
pub trait SweepSpace: Send + Sync + Debug {
    /// Number of points.
    fn len(&self) -> u64;

    /// True for an empty space (never: every axis has a value).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parameter names in CSV column order (the keys of [`SweepSpace::params`]).
    fn param_names(&self) -> &'static [&'static str];

    /// The parameters of point `index` as recorded (JSON object, field order fixed: the point
    /// id hashes its text).
    fn params(&self, index: u64) -> serde_json::Value;

    /// Parameters and model figures of point `index` on `layers`; `Err` = an invalid point.
    fn evaluate(
        &self,
        index: u64,
        layers: &[Layer],
    ) -> (serde_json::Value, Result<PointEvaluation, String>);

    /// Simulates the point recorded as `params` on `layer` in Verilator (seed 1); the check's
    /// `model_cycles` is the cycle model of the simulated run.
    fn verify(&self, params: &serde_json::Value, layer: &Layer) -> Result<SimCheck, String>;

    /// Whether [`verify`](Self::verify)'s `model_cycles` replaces the record's layer cycles
    /// (true when the simulated run differs from the priced one).
    fn verify_reports_its_own_model(&self) -> bool {
        false
    }
}

/// An accelerator template.
///
/// Implemented by a unit struct per template (`Systolic`, `Moe`); every method is the
/// template's own code, reached through one shape.
pub trait Template: Send + Sync + Debug + 'static {
    /// The parameters: what `gen` takes and writes as JSON.
    type Params: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Default + Send + Sync;

    /// Name on the command line and in sweep specs (`systolic`).
    fn name(&self) -> &'static str;

    /// One line for `accelforge templates`.
    fn about(&self) -> &'static str;

    /// What the mapper's report says about this template's figures.
    fn cost_note(&self) -> &'static str {
        "cycles from the template's exact model (equal to Verilator); resources from its Yosys-calibrated model"
    }

    /// File name of the parameters in `gen` outputs and bundles.
    fn params_file(&self) -> &'static str {
        "params.json"
    }

    /// What a sweep spec's `[NAME]` table must hold at least (for the error when it is missing).
    fn sweep_axes_hint(&self) -> &'static str;

    /// Checks everything `gen` would refuse.
    fn validate(&self, p: &Self::Params) -> Result<(), TemplateError>;

    /// The Verilog.
    fn design(&self, p: &Self::Params) -> Result<Design, TemplateError>;

    /// The resource model (DSP and block RAM exact against Yosys, LUT/FF calibrated).
    fn resources(&self, p: &Self::Params) -> Result<ResourceEstimate, TemplateError>;

    /// The exact cycle model on one run of `layer`; `Ok(None)` when the configuration cannot
    /// run it by design (another kind of layer, a dimension beyond its buffers).
    fn layer_cost(
        &self,
        p: &Self::Params,
        layer: &Layer,
    ) -> Result<Option<LayerCost>, TemplateError>;

    /// The layer the configuration is built for, when its params fix one (an MoE core's
    /// batch); `None` when any layer of a kind it runs will do.
    fn own_layer(&self, _p: &Self::Params) -> Option<Layer> {
        None
    }

    /// Bytes per cycle the engine's own DMA interface moves.
    fn stream_bytes_per_cycle(&self, p: &Self::Params) -> f64;

    /// True when [`layer_cost`](Self::layer_cost)'s cycles already include the stream stalls
    /// (a core that streams its weights at its own rate): the mapper then bounds the latency
    /// by the board's DDR rate alone, not by the stream rate too.
    fn cycles_include_streams(&self) -> bool {
        false
    }

    /// Simulates one run of `layer` (random data from `seed`) in Verilator against the golden
    /// model.
    fn simulate(
        &self,
        p: &Self::Params,
        layer: &Layer,
        seed: u64,
    ) -> Result<SimCheck, TemplateError>;

    /// A small layer the default params run: what `accelforge templates` shows and the
    /// registry-wide conformance test simulates.
    fn example_layer(&self) -> Layer;

    /// The largest DMA transfer of one command, in bytes (sizes the Zynq wrapper's DMA).
    fn max_transfer_bytes(&self, p: &Self::Params) -> u64;

    /// Completes the AXI interface of the Zynq wrapper for `board`: argument ranges the core
    /// accepts (the driver checks them), a weight fetch, a fixed batch.
    fn complete_interface(
        &self,
        p: &Self::Params,
        design: &Design,
        accel: AccelInterface,
        board: &Board,
    ) -> Result<AccelInterface, TemplateError>;

    /// The mapper's configurations of `ctx.space` for `ctx.layers`, each valid.
    fn map_candidates(&self, ctx: &MapContext<'_, Self::Params>) -> Vec<Self::Params>;

    /// The sweep space of the spec's `[NAME]` table for a workload of `layers` (one run of
    /// each; a depthwise convolution's groups are already in its repeat).
    fn sweep_space(
        &self,
        axes: &toml::Value,
        layers: &[Layer],
    ) -> Result<Box<dyn SweepSpace>, SpaceError>;
}

/// A template behind a trait object, its params as JSON: what the registry holds.
pub trait DynTemplate: Send + Sync + Debug {
    /// See [`Template::name`].
    fn name(&self) -> &'static str;
    /// See [`Template::about`].
    fn about(&self) -> &'static str;
    /// See [`Template::params_file`].
    fn params_file(&self) -> &'static str;
    /// See [`Template::sweep_axes_hint`].
    fn sweep_axes_hint(&self) -> &'static str;
    /// Parses and validates params; returns them re-serialized (defaults filled in).
    fn check_params(&self, params: &serde_json::Value) -> Result<serde_json::Value, TemplateError>;
    /// See [`Template::design`].
    fn design(&self, params: &serde_json::Value) -> Result<Design, TemplateError>;
    /// See [`Template::resources`].
    fn resources(&self, params: &serde_json::Value) -> Result<ResourceEstimate, TemplateError>;
    /// See [`Template::layer_cost`].
    fn layer_cost(
        &self,
        params: &serde_json::Value,
        layer: &Layer,
    ) -> Result<Option<LayerCost>, TemplateError>;
    /// See [`Template::own_layer`].
    fn own_layer(&self, params: &serde_json::Value) -> Result<Option<Layer>, TemplateError>;
    /// See [`Template::simulate`].
    fn simulate(
        &self,
        params: &serde_json::Value,
        layer: &Layer,
        seed: u64,
    ) -> Result<SimCheck, TemplateError>;
    /// The template's default params, as JSON.
    fn default_params(&self) -> serde_json::Value;
    /// See [`Template::map_candidates`] (on the template's default base), as JSON.
    fn map_candidates(
        &self,
        space: &SearchSpace,
        layers: &[Layer],
        ddr_bytes_per_cycle: f64,
    ) -> Vec<serde_json::Value>;
    /// See [`Template::example_layer`].
    fn example_layer(&self) -> Layer;
    /// See [`Template::max_transfer_bytes`].
    fn max_transfer_bytes(&self, params: &serde_json::Value) -> Result<u64, TemplateError>;
    /// See [`Template::complete_interface`].
    fn complete_interface(
        &self,
        params: &serde_json::Value,
        design: &Design,
        accel: AccelInterface,
        board: &Board,
    ) -> Result<AccelInterface, TemplateError>;
    /// See [`Template::sweep_space`].
    fn sweep_space(
        &self,
        axes: &toml::Value,
        layers: &[Layer],
    ) -> Result<Box<dyn SweepSpace>, SpaceError>;
}

fn parse<T: Template>(t: &T, params: &serde_json::Value) -> Result<T::Params, TemplateError> {
    serde_json::from_value(params.clone()).map_err(|e| {
        TemplateError(format!(
            "these are not {} parameters (a {} written by `gen {}`): {e}",
            t.name(),
            t.params_file(),
            t.name()
        ))
    })
}

fn parse_valid<T: Template>(t: &T, params: &serde_json::Value) -> Result<T::Params, TemplateError> {
    let p = parse(t, params)?;
    t.validate(&p)?;
    Ok(p)
}

impl<T: Template> DynTemplate for T {
    fn name(&self) -> &'static str {
        Template::name(self)
    }
    fn about(&self) -> &'static str {
        Template::about(self)
    }
    fn params_file(&self) -> &'static str {
        Template::params_file(self)
    }
    fn sweep_axes_hint(&self) -> &'static str {
        Template::sweep_axes_hint(self)
    }
    fn check_params(&self, params: &serde_json::Value) -> Result<serde_json::Value, TemplateError> {
        let p = parse_valid(self, params)?;
        serde_json::to_value(&p).map_err(err)
    }
    fn design(&self, params: &serde_json::Value) -> Result<Design, TemplateError> {
        Template::design(self, &parse_valid(self, params)?)
    }
    fn resources(&self, params: &serde_json::Value) -> Result<ResourceEstimate, TemplateError> {
        Template::resources(self, &parse_valid(self, params)?)
    }
    fn layer_cost(
        &self,
        params: &serde_json::Value,
        layer: &Layer,
    ) -> Result<Option<LayerCost>, TemplateError> {
        Template::layer_cost(self, &parse_valid(self, params)?, layer)
    }
    fn own_layer(&self, params: &serde_json::Value) -> Result<Option<Layer>, TemplateError> {
        Ok(Template::own_layer(self, &parse_valid(self, params)?))
    }
    fn simulate(
        &self,
        params: &serde_json::Value,
        layer: &Layer,
        seed: u64,
    ) -> Result<SimCheck, TemplateError> {
        Template::simulate(self, &parse_valid(self, params)?, layer, seed)
    }
    fn default_params(&self) -> serde_json::Value {
        serde_json::to_value(T::Params::default()).unwrap_or_default()
    }
    fn example_layer(&self) -> Layer {
        Template::example_layer(self)
    }
    fn map_candidates(
        &self,
        space: &SearchSpace,
        layers: &[Layer],
        ddr_bytes_per_cycle: f64,
    ) -> Vec<serde_json::Value> {
        let ctx = MapContext {
            space,
            layers,
            base: None,
            ddr_bytes_per_cycle,
        };
        Template::map_candidates(self, &ctx)
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect()
    }
    fn max_transfer_bytes(&self, params: &serde_json::Value) -> Result<u64, TemplateError> {
        Ok(Template::max_transfer_bytes(
            self,
            &parse_valid(self, params)?,
        ))
    }
    fn complete_interface(
        &self,
        params: &serde_json::Value,
        design: &Design,
        accel: AccelInterface,
        board: &Board,
    ) -> Result<AccelInterface, TemplateError> {
        Template::complete_interface(self, &parse_valid(self, params)?, design, accel, board)
    }
    fn sweep_space(
        &self,
        axes: &toml::Value,
        layers: &[Layer],
    ) -> Result<Box<dyn SweepSpace>, SpaceError> {
        Template::sweep_space(self, axes, layers)
    }
}

/// Every template, in the order `accelforge templates` lists them. Adding a template is one
/// line here.
static REGISTRY: &[&dyn DynTemplate] = &[
    &crate::systolic::Systolic,
    &crate::moe::Moe,
    &crate::attention::Attention,
];

/// The registered templates.
pub fn registry() -> &'static [&'static dyn DynTemplate] {
    REGISTRY
}

/// The template called `name`, or an error listing the known ones.
pub fn find(name: &str) -> Result<&'static dyn DynTemplate, TemplateError> {
    REGISTRY
        .iter()
        .copied()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            TemplateError(format!(
                "unknown template `{name}`; known: {}",
                names().join(", ")
            ))
        })
}

/// Names of the registered templates.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|t| t.name()).collect()
}

/// Deserializes a sweep axes table with the failing key prefixed by `table` (`systolic.rows`).
pub fn parse_axes<A: DeserializeOwned>(table: &str, axes: &toml::Value) -> Result<A, SpaceError> {
    serde_path_to_error::deserialize(axes.clone()).map_err(|e| {
        let path = e.path().to_string();
        SpaceError {
            key: if path == "." {
                table.to_string()
            } else {
                format!("{table}.{path}")
            },
            problem: e.into_inner().message().trim().to_string(),
        }
    })
}

/// `(key, problem)` from an axis helper, as a [`SpaceError`] under `table`.
pub fn axis_error(table: &str) -> impl Fn((String, String)) -> SpaceError + '_ {
    move |(k, p)| SpaceError {
        key: format!("{table}.{k}"),
        problem: p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_found() {
        let names = names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for n in names {
            assert_eq!(find(n).unwrap().name(), n);
        }
        let err = find("fft").unwrap_err().to_string();
        assert!(
            err.contains("unknown template `fft`") && err.contains("systolic, moe"),
            "{err}"
        );
    }
}
