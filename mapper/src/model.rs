//! The interface between the mapper and an accelerator template's cost models.
//!
//! A template family (systolic array, ...) implements [`EngineModel`]: it enumerates the
//! configurations of a [`SearchSpace`], the tiling options of a layer under a configuration,
//! and the cycles, DDR bytes and resources of each. The formulations only ever see the numbers,
//! so replacing a model changes no formulation.

use std::fmt::Debug;

use accelforge_boards::{Board, PortDirection, ResourceEstimate};
use accelforge_templates::systolic::{BufferRam, PeKind};
use serde::{Deserialize, Serialize};

use crate::error::{MapperError, Result};
use crate::workload::Layer;

/// Systolic dataflow: which operand stays in the PE array while the others stream through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataflow {
    /// Weights preloaded into the PEs; activations stream through, partial sums flow down.
    WeightStationary,
    /// Each PE owns one output; both operands stream through.
    OutputStationary,
}

/// The knobs the mapper sweeps. A model turns the cross product into configurations; it may
/// skip combinations it cannot build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    /// PE-array rows.
    pub rows: Vec<u32>,
    /// PE-array columns.
    pub cols: Vec<u32>,
    /// Dataflows.
    pub dataflows: Vec<Dataflow>,
    /// Depth (entries) of each on-chip buffer bank.
    pub buffer_depths: Vec<u32>,
    /// AXI-Stream data width in bits between the DMA and the engine.
    pub stream_bits: Vec<u32>,
    /// PE kinds: `dsp` (one multiply per DSP) and `dsp-packed` (adjacent columns share one
    /// DSP multiply; offered only where the operand types pack). Absent = both.
    #[serde(default = "SearchSpace::default_pes")]
    pub pes: Vec<PeKind>,
    /// RAM of the operand buffers: `block`, and `ultra` (URAM288) on parts that have it.
    /// Absent = block RAM only.
    #[serde(default = "SearchSpace::default_buffer_rams")]
    pub buffer_rams: Vec<BufferRam>,
}

impl SearchSpace {
    /// The default space for a board: array sides 2–64, both dataflows, three buffer depths,
    /// the stream widths the board's PS slave ports offer (32/64 on Zynq-7000, up to 128 on
    /// UltraScale+), both DSP PE kinds, and UltraRAM operand buffers where the part has URAM.
    pub fn for_board(board: &Board) -> SearchSpace {
        let max_port = board
            .ps_pl_ports
            .iter()
            .filter(|p| p.direction == PortDirection::Slave)
            .flat_map(|p| p.widths.iter().copied())
            .max()
            .unwrap_or(64);
        let stream_bits: Vec<u32> = [32, 64, 128]
            .into_iter()
            .filter(|w| *w <= max_port)
            .collect();
        SearchSpace {
            rows: vec![2, 4, 8, 12, 16, 24, 32, 48, 64],
            cols: vec![2, 4, 8, 12, 16, 24, 32, 48, 64],
            dataflows: vec![Dataflow::WeightStationary, Dataflow::OutputStationary],
            buffer_depths: vec![512, 1024, 2048],
            stream_bits: if stream_bits.is_empty() {
                vec![32]
            } else {
                stream_bits
            },
            pes: SearchSpace::default_pes(),
            buffer_rams: if board.resources.uram.value > 0 {
                vec![BufferRam::Block, BufferRam::Ultra]
            } else {
                SearchSpace::default_buffer_rams()
            },
        }
    }

    /// Block RAM buffers only (the spaces of boards without UltraRAM).
    pub fn default_buffer_rams() -> Vec<BufferRam> {
        vec![BufferRam::Block]
    }

    /// The PE kinds every space offers: both DSP PEs (shift-add PEs need power-of-two or
    /// two-term weights, which a workload's shape does not promise).
    pub fn default_pes() -> Vec<PeKind> {
        vec![PeKind::Dsp, PeKind::DspPacked]
    }

    /// A small space (tests, benches, quick looks): array sides 4/8/16, both dataflows, two
    /// depths, two stream widths, both DSP PE kinds — 144 configurations.
    pub fn small() -> SearchSpace {
        SearchSpace {
            rows: vec![4, 8, 16],
            cols: vec![4, 8, 16],
            dataflows: vec![Dataflow::WeightStationary, Dataflow::OutputStationary],
            buffer_depths: vec![512, 2048],
            stream_bits: vec![32, 64],
            pes: SearchSpace::default_pes(),
            buffer_rams: SearchSpace::default_buffer_rams(),
        }
    }

    /// Checks that no list is empty and no size is zero.
    pub fn validate(&self) -> Result<()> {
        let lists: [(&str, &[u32]); 4] = [
            ("rows", &self.rows),
            ("cols", &self.cols),
            ("buffer_depths", &self.buffer_depths),
            ("stream_bits", &self.stream_bits),
        ];
        for (name, list) in lists {
            if list.is_empty() {
                return Err(MapperError::SearchSpace(format!("`{name}` is empty")));
            }
            if list.contains(&0) {
                return Err(MapperError::SearchSpace(format!("`{name}` contains 0")));
            }
        }
        if self.dataflows.is_empty() {
            return Err(MapperError::SearchSpace("`dataflows` is empty".into()));
        }
        if self.pes.is_empty() {
            return Err(MapperError::SearchSpace("`pes` is empty".into()));
        }
        if self.buffer_rams.is_empty() {
            return Err(MapperError::SearchSpace("`buffer_rams` is empty".into()));
        }
        if self.stream_bits.iter().any(|w| w % 8 != 0) {
            return Err(MapperError::SearchSpace(
                "`stream_bits` must be whole bytes".into(),
            ));
        }
        Ok(())
    }

    /// Number of knob combinations.
    pub fn size(&self) -> usize {
        self.rows.len()
            * self.cols.len()
            * self.dataflows.len()
            * self.buffer_depths.len()
            * self.stream_bits.len()
            * self.pes.len()
            * self.buffer_rams.len()
    }
}

/// One accelerator template family's cost model, as the mapper needs it.
///
/// To plug in a template's exact model: implement this trait for a small adapter around the
/// template's params struct (`type Config = SystolicParams`), enumerate params in
/// [`candidates`](Self::candidates), and forward to the template's cycle and resource models.
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
