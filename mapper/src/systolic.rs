//! The systolic-array template's own models as a mapper engine: the exact cycle model that equals
//! Verilator (`accelforge_templates::systolic::cost::cycles`) and its resource model, for the
//! very `SystolicParams` that `gen`/`sim` take — so a mapping can be fed to them unchanged.
//!
//! Mapping of the search space onto the template's knobs: rows, cols and stream width as given;
//! the template's controller fixes the tiling (one option per layer); `buffer_depths` sets how
//! many columns of B stay on chip (`max_n_chunk = cols × depth / 512`, at least `cols`); `max_k`
//! is the workload's largest reduction length (rounded up to a multiple of 64), so every layer
//! fits (for weight-stationary it also sets the M block, the largest multiple of `rows` not
//! above it). Both dataflows the template implements are offered when the space lists them
//! (`output_stationary` → `Dataflow::Os`, `weight_stationary` → `Dataflow::Ws`); combinations
//! the template's `validate()` refuses are skipped. The cycle model is a closed form (cost
//! independent of the layer size), so every candidate is priced exactly. Operand types are the
//! template's defaults (int8 × int8 → 32-bit accumulator → int8). `moe` layers are not
//! runnable on this engine.

use std::collections::HashMap;
use std::sync::Mutex;

use accelforge_boards::ResourceEstimate;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::{Dataflow as TemplateDataflow, SystolicParams, cost};

use crate::model::{Dataflow, EngineModel, ModelErrors, SearchSpace};
use crate::workload::{Layer, Workload};

/// Cache key: the configuration (as JSON) and the GEMM's M, K, N.
type GemmKey = (String, u64, u64, u64);
/// Cached answer: `(cycles, stream beats)`, or `None` when the GEMM cannot run.
type GemmCost = Option<(u64, u64)>;

/// The template's exact models for a given workload.
#[derive(Debug)]
pub struct SystolicTemplateModel {
    max_k: u32,
    /// What every candidate shares besides its shape: operand types, requantizer
    /// (the template's defaults unless [`SystolicTemplateModel::with_base`] says otherwise).
    base: SystolicParams,
    /// (params, m, k, n) → cycles and beats; the cycle model is exact but not free, and the
    /// formulations ask for the same pairs more than once.
    cache: Mutex<HashMap<GemmKey, GemmCost>>,
    /// Failures of the template's models: counted and reported, never silently dropped.
    errors: Mutex<ModelErrors>,
}

impl SystolicTemplateModel {
    /// Candidates built on `base` (its types, requantizer, ReLU) instead of the template's
    /// defaults, so that they are priced as they will be generated: an imported network's
    /// array with its per-channel requantizer (2 DSPs and a table per lane) and its own
    /// operand widths. Rows, columns, dataflow, chunk and stream width still come from the
    /// search space; `max_k` is the larger of `base`'s and the workload's.
    pub fn with_base(mut self, base: SystolicParams) -> Self {
        self.max_k = self.max_k.max(base.max_k);
        self.base = base;
        self
    }

    /// A model whose configurations can run every layer of `workload`.
    pub fn for_workload(workload: &Workload) -> Self {
        let max_k = workload
            .layers
            .iter()
            .filter(|l| l.moe().is_none())
            .map(|l| l.lower().gemm.k)
            .max()
            .unwrap_or(64)
            .max(64);
        let max_k = u32::try_from(max_k.div_ceil(64) * 64).unwrap_or(u32::MAX);
        SystolicTemplateModel {
            max_k,
            base: SystolicParams::default(),
            cache: Mutex::new(HashMap::new()),
            errors: Mutex::new(ModelErrors::default()),
        }
    }

    /// `(cycles, stream beats in + out)` of one GEMM, or `None` when the layer cannot run.
    fn gemm(&self, cfg: &SystolicParams, m: u64, k: u64, n: u64) -> Option<(u64, u64)> {
        let key = (serde_json::to_string(cfg).unwrap_or_default(), m, k, n);
        if let Ok(cache) = self.cache.lock()
            && let Some(v) = cache.get(&key)
        {
            return *v;
        }
        let dim = |x: u64| u32::try_from(x).ok().filter(|v| *v > 0 && *v < 1 << 16);
        let value = (|| {
            let g = Gemm {
                m: dim(m)?,
                k: dim(k)?,
                n: dim(n)?,
            };
            let est = match cost::cycles(cfg, &g) {
                Ok(est) => est,
                Err(e) => {
                    self.record(format!(
                        "cycle model, {}x{} array, {g}: {e}",
                        cfg.rows, cfg.cols
                    ));
                    return None;
                }
            };
            Some((est.cycles, est.input_beats + est.output_beats))
        })();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, value);
        }
        value
    }

    fn record(&self, message: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.record(message);
        }
    }

    /// Cycles and beats of a layer: its lowered GEMM, once per group.
    fn layer(&self, cfg: &SystolicParams, layer: &Layer) -> Option<(u64, u64)> {
        // An MoE layer's GEMMs depend on the routing and its gate/top-k/combine are not GEMMs:
        // this engine cannot run it (the MoE template model does).
        if layer.moe().is_some() {
            return None;
        }
        let lowered = layer.lower();
        let g = lowered.gemm;
        let (c, b) = self.gemm(cfg, g.m, g.k, g.n)?;
        Some((
            c.checked_mul(lowered.groups)?,
            b.checked_mul(lowered.groups)?,
        ))
    }
}

impl EngineModel for SystolicTemplateModel {
    type Config = SystolicParams;
    type Tiling = ();

    fn name(&self) -> &str {
        "systolic-template"
    }

    fn note(&self) -> Option<&str> {
        Some(
            "cycles from the systolic template's exact model (equal to Verilator); DSP and BRAM exact against Yosys, LUT/FF estimated; operand types and requantizer as configured (int8 by default)",
        )
    }

    fn candidates(&self, space: &SearchSpace) -> Vec<SystolicParams> {
        let mut out = Vec::new();
        // In the space's order, so the candidate list (and ties between equal costs) is
        // deterministic.
        let dataflows = space.dataflows.iter().map(|d| match d {
            Dataflow::OutputStationary => TemplateDataflow::Os,
            Dataflow::WeightStationary => TemplateDataflow::Ws,
        });
        for dataflow in dataflows {
            for &rows in &space.rows {
                for &cols in &space.cols {
                    for &depth in &space.buffer_depths {
                        for &stream_bits in &space.stream_bits {
                            for (&pe, &buffer_ram) in space
                                .pes
                                .iter()
                                .flat_map(|pe| space.buffer_rams.iter().map(move |b| (pe, b)))
                            {
                                let p = SystolicParams {
                                    rows,
                                    cols,
                                    dataflow,
                                    pe,
                                    buffer_ram,
                                    max_k: self.max_k,
                                    max_n_chunk: cols * (depth / 512).max(1),
                                    stream_bits,
                                    ..self.base.clone()
                                };
                                // Also drops packed PEs for types that do not pack.
                                if p.validate().is_ok() {
                                    out.push(p);
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn tilings(&self, cfg: &SystolicParams, layer: &Layer) -> Vec<()> {
        if self.layer(cfg, layer).is_some() {
            vec![()]
        } else {
            Vec::new()
        }
    }

    fn layer_cycles(&self, cfg: &SystolicParams, layer: &Layer, _: &()) -> Option<u64> {
        self.layer(cfg, layer).map(|(c, _)| c)
    }

    fn ddr_bytes(&self, cfg: &SystolicParams, layer: &Layer, _: &()) -> u64 {
        // Every beat of the operand and result streams goes through the DMA to or from DDR.
        self.layer(cfg, layer).map_or(u64::MAX, |(_, beats)| {
            beats.saturating_mul(u64::from(cfg.stream_bits / 8))
        })
    }

    fn stream_bytes_per_cycle(&self, cfg: &SystolicParams) -> f64 {
        f64::from(cfg.stream_bits / 8)
    }

    fn resources(&self, cfg: &SystolicParams) -> ResourceEstimate {
        match cost::resources(cfg) {
            Ok(r) => ResourceEstimate {
                lut: r.lut,
                ff: r.ff,
                dsp: r.dsp,
                bram18: r.bram18 + 2 * r.bram36,
                uram: r.uram,
            },
            // Unbuildable configurations are filtered in `candidates`; make any other one
            // unaffordable rather than free, and report it.
            Err(e) => {
                self.record(format!(
                    "resource model, {}x{} array: {e}",
                    cfg.rows, cfg.cols
                ));
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
