//! The knobs the mapper sweeps: the search space every template's
//! [`map_candidates`](super::Template::map_candidates) turns into configurations.

use accelforge_boards::{Board, PortDirection};
use serde::{Deserialize, Serialize};

use crate::systolic::{BufferRam, PeKind};

/// Systolic dataflow: which operand stays in the PE array while the others stream through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapDataflow {
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
    pub dataflows: Vec<MapDataflow>,
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
            dataflows: vec![MapDataflow::WeightStationary, MapDataflow::OutputStationary],
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
            dataflows: vec![MapDataflow::WeightStationary, MapDataflow::OutputStationary],
            buffer_depths: vec![512, 2048],
            stream_bits: vec![32, 64],
            pes: SearchSpace::default_pes(),
            buffer_rams: SearchSpace::default_buffer_rams(),
        }
    }

    /// Checks that no list is empty and no size is zero.
    pub fn validate(&self) -> Result<(), String> {
        let lists: [(&str, &[u32]); 4] = [
            ("rows", &self.rows),
            ("cols", &self.cols),
            ("buffer_depths", &self.buffer_depths),
            ("stream_bits", &self.stream_bits),
        ];
        for (name, list) in lists {
            if list.is_empty() {
                return Err(format!("`{name}` is empty"));
            }
            if list.contains(&0) {
                return Err(format!("`{name}` contains 0"));
            }
        }
        if self.dataflows.is_empty() {
            return Err("`dataflows` is empty".into());
        }
        if self.pes.is_empty() {
            return Err("`pes` is empty".into());
        }
        if self.buffer_rams.is_empty() {
            return Err("`buffer_rams` is empty".into());
        }
        if self.stream_bits.iter().any(|w| w % 8 != 0) {
            return Err("`stream_bits` must be whole bytes".into());
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
