//! Parameters of the MoE layer core, their validation, and the quantities derived from them that
//! the RTL, the golden model and the cycle model all share.

use serde::{Deserialize, Serialize};

use super::{MoeError, Result};
use crate::qfx::{Overflow, QType, Quant};
use crate::units::activation::{ActivationKind, ActivationParams};

/// How the gate weights of the selected experts are computed from their logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// Softmax over the k selected logits (Mixtral style): numerators `exp(l_i - l_max)` from a
    /// table indexed by the logit difference, so the best expert's numerator is exactly 1.0.
    Softmax,
    /// Renormalised top-k of sigmoid affinities (DeepSeek-V3 style): numerators `sigmoid(l_i)`
    /// from the table of `units::activation`, floored at one LSB so the divisor is never zero.
    Renorm,
}

/// The expert FFN's activation between its two linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnActivation {
    /// max(x, 0).
    Relu,
    /// Table-based GELU from `units::activation` (index = the top `act_table_bits` bits).
    Gelu,
}

/// The fixed-point types of every value the core stores or streams. All are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeTypes {
    /// Token activations on `s_axis`.
    pub input: QType,
    /// Gate and expert weights on `s_axis_w`.
    pub weight: QType,
    /// Gate logits (the gate GEMV's accumulator is requantized to this).
    pub logit: QType,
    /// Expert hidden activations (first layer's accumulator, requantized, then activated).
    pub hidden: QType,
    /// Expert outputs (second layer's accumulator, requantized).
    pub expert_out: QType,
    /// Layer outputs on `m_axis`: the gate-weighted sum of the k expert outputs, requantized.
    pub output: QType,
}

impl Default for MoeTypes {
    fn default() -> Self {
        // Constants known to be valid types; a failure here is a bug in this file.
        let t = |w: u32, i: i32| {
            QType::fixed(w, i)
                .and_then(|t| t.with_modes(Quant::Rnd, Overflow::Sat, 0))
                .expect("constant fixed-point type")
        };
        MoeTypes {
            input: t(8, 3),
            weight: t(8, 1),
            logit: t(12, 4),
            hidden: t(12, 4),
            expert_out: t(12, 4),
            output: t(16, 6),
        }
    }
}

/// Parameters of the MoE layer core (gating, dispatch, expert FFNs, combine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeParams {
    /// Tokens per batch (one command processes exactly this many), 2..=MAX_TOKENS.
    pub tokens: u32,
    /// Model width: any multiple of `max(lanes, simd)` in 2..=4096 (e.g. 384 or 768 for
    /// ViT-S/B).
    pub d_model: u32,
    /// Expert hidden width: any multiple of `max(lanes, simd)` in 2..=16384.
    pub d_ff: u32,
    /// Number of experts: any multiple of `lanes` in 2..=256 (the gate GEMV computes `lanes`
    /// logits per weight tile); need not be a power of two.
    pub experts: u32,
    /// Experts per token: 1 or 2.
    pub top_k: u32,
    /// Output neurons computed in parallel (power of two, 1..=16: the buffer bank of an
    /// element is its index's low bits).
    pub lanes: u32,
    /// Inputs per lane per cycle (power of two, 1..=16).
    pub simd: u32,
    /// Width of the weight stream in bytes: the DDR delivers this many bytes per cycle.
    pub ddr_bytes_per_cycle: u32,
    /// Capacity of each expert's token queue (1..=1024, any value); a (token, expert) pair
    /// beyond it is dropped and counted (its gate weight becomes 0), in both processing orders.
    pub queue_depth: u32,
    /// Gate weight computation.
    pub gate_mode: GateMode,
    /// Expert FFN activation.
    pub activation: FfnActivation,
    /// Index bits of the GELU table.
    pub act_table_bits: u32,
    /// Index bits of the exp (softmax) or sigmoid (renorm) table.
    pub score_table_bits: u32,
    /// Fractional bits of the score numerators (`ap_ufixed<F+1,1>`).
    pub score_frac_bits: u32,
    /// Fractional bits of the gate weights (`ap_ufixed<F+1,1>`).
    pub gate_frac_bits: u32,
    /// Value types.
    pub types: MoeTypes,
}

impl Default for MoeParams {
    fn default() -> Self {
        MoeParams {
            tokens: 16,
            d_model: 16,
            d_ff: 32,
            experts: 4,
            top_k: 2,
            lanes: 4,
            simd: 4,
            ddr_bytes_per_cycle: 4,
            queue_depth: 16,
            gate_mode: GateMode::Softmax,
            activation: FfnActivation::Relu,
            act_table_bits: 8,
            score_table_bits: 8,
            score_frac_bits: 12,
            gate_frac_bits: 12,
            types: MoeTypes::default(),
        }
    }
}

fn pow2(what: &str, v: u32, lo: u32, hi: u32) -> Result<()> {
    if !v.is_power_of_two() || v < lo || v > hi {
        return Err(MoeError::Params(format!(
            "{what} = {v} must be a power of two in {lo}..={hi}"
        )));
    }
    Ok(())
}

fn range(what: &str, v: u32, lo: u32, hi: u32) -> Result<()> {
    if v < lo || v > hi {
        return Err(MoeError::Params(format!(
            "{what} = {v} is out of range ({lo}..={hi})"
        )));
    }
    Ok(())
}

/// `v` must be a multiple of `step` (`why` says which hardware needs it); the message offers
/// the nearest multiples within `lo..=hi`.
fn multiple(what: &str, v: u32, step: u32, why: &str, lo: u32, hi: u32) -> Result<()> {
    if v.is_multiple_of(step) {
        return Ok(());
    }
    let down = v / step * step;
    let up = down + step;
    let near: Vec<String> = [down, up]
        .into_iter()
        .filter(|&c| c >= lo && c <= hi)
        .map(|c| c.to_string())
        .collect();
    let hint = if near.is_empty() {
        format!("reduce {why}")
    } else {
        format!("use {}", near.join(" or "))
    };
    Err(MoeError::Params(format!(
        "{what} = {v} must be a multiple of {why} = {step}; {hint}"
    )))
}

/// log2 of a power of two.
pub(crate) fn log2(v: u32) -> u32 {
    v.trailing_zeros()
}

/// Largest `tokens` (and `queue_depth`).
pub const MAX_TOKENS: u32 = 1024;
/// Largest `d_model`.
pub const MAX_D_MODEL: u32 = 4096;
/// Largest `d_ff`.
pub const MAX_D_FF: u32 = 16384;
/// Largest `experts`.
pub const MAX_EXPERTS: u32 = 256;

/// Row layout of the core's buffers, shared by the RTL and the resource model. Every
/// activation buffer is `max(lanes, simd)` one-element banks; element `i` of a token's vector
/// lives in bank `i mod nb`, row `base + i / nb`, where a token's (or load position's) `base`
/// is its index times the stride. Nothing here needs a power of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLayout {
    /// Rows per token in the token (x) and expert-output (y) buffers: `d_model / nb`.
    pub x_stride: u64,
    /// Rows per load position in the hidden (h) buffer: `d_ff / nb`.
    pub h_stride: u64,
    /// Rows per token in the logit (l) buffer: `ceil(experts / nb)`.
    pub l_stride: u64,
    /// Rows of each x and y bank: `tokens · x_stride`.
    pub x_rows: u64,
    /// Rows of each h bank: `min(tokens, queue_depth) · h_stride`.
    pub h_rows: u64,
    /// Rows of each l bank: `tokens · l_stride`.
    pub l_rows: u64,
    /// Entries of the token list: the expert queues (`experts · min(tokens, queue_depth)`,
    /// queue e from entry `e · min(tokens, queue_depth)`) or, without reordering, every kept
    /// pair in arrival order (`tokens · top_k`), whichever is larger.
    pub list_rows: u64,
}

impl BufferLayout {
    /// The layout of `p` (assumed valid).
    pub fn of(p: &MoeParams) -> Self {
        let nb = u64::from(p.banks());
        let t = u64::from(p.tokens);
        let mlt = u64::from(p.max_load_tokens());
        let x_stride = u64::from(p.d_model) / nb;
        let h_stride = u64::from(p.d_ff) / nb;
        let l_stride = u64::from(p.experts).div_ceil(nb);
        BufferLayout {
            x_stride,
            h_stride,
            l_stride,
            x_rows: t * x_stride,
            h_rows: mlt * h_stride,
            l_rows: t * l_stride,
            list_rows: (u64::from(p.experts) * mlt).max(t * u64::from(p.top_k)),
        }
    }
}

/// Bits needed to count `0..n` (at least 1).
pub(crate) fn bits_for(n: u64) -> u32 {
    accelforge_hdl::clog2(n).max(1)
}

/// Cycles a tile's results take to leave the MAC pipeline after its last issue (stages 1 to
/// 3): the RTL's drain counter and the cycle model's tile time.
pub const DRAIN: u64 = 3;

/// Depth of the core's output FIFO (covers the two-cycle read latency at full rate).
pub const OUT_FIFO_DEPTH: u32 = 4;

/// Activation banks of at least this many words are marked `block`; smaller ones (and every
/// control memory) `distributed`. The weight buffer is always `block`.
pub const BLOCK_RAM_MIN_WORDS: u64 = 512;

/// Words a memory of `rows` rows is declared with: the exact row count (not a power of two;
/// rows are addressed base plus offset), at least 2.
pub fn memory_words(rows: u64) -> u64 {
    rows.max(2)
}

/// Address bits of a memory of `rows` rows.
pub fn memory_addr_bits(rows: u64) -> u32 {
    bits_for(memory_words(rows))
}

/// Where a memory's words are kept: the `ram_style` the RTL declares, which the resource model
/// prices (block RAM in RAMB18s, distributed RAM in LUTs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemStyle {
    /// Block RAM.
    Block,
    /// LUT RAM.
    Distributed,
}

impl MemStyle {
    /// The `ram_style` attribute value.
    pub fn attr(self) -> &'static str {
        match self {
            MemStyle::Block => "block",
            MemStyle::Distributed => "distributed",
        }
    }
}

/// One memory of the core, as the RTL declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySpec {
    /// Declared name (banks carry their index: `xbuf_0`, `ybuf1_3`).
    pub name: String,
    /// Word bits.
    pub width: u32,
    /// Words ([`memory_words`] of its rows).
    pub words: u64,
    /// Block or distributed RAM.
    pub style: MemStyle,
}

impl MemorySpec {
    fn new(name: String, width: u32, rows: u64, style: MemStyle) -> Self {
        MemorySpec {
            name,
            width,
            words: memory_words(rows),
            style,
        }
    }

    /// An activation bank: block RAM from [`BLOCK_RAM_MIN_WORDS`] words on.
    fn bank(name: String, width: u32, rows: u64) -> Self {
        let style = if memory_words(rows) >= BLOCK_RAM_MIN_WORDS {
            MemStyle::Block
        } else {
            MemStyle::Distributed
        };
        MemorySpec::new(name, width, rows, style)
    }
}

/// The core's memory plan, derived from the params: the buffer rows and every memory the RTL
/// declares, with its width, depth and RAM style. The RTL declares exactly these memories and
/// the resource model (`cost`, `calibration`) prices them, so the two cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoeLayout {
    /// Row layout of the activation buffers.
    pub buffers: BufferLayout,
    /// The data memories, any of which may map to block RAM: the weight buffer, the x, h and
    /// l banks, and per gate slot its y banks and its gate-weight memory (`gw{s}`).
    pub data: Vec<MemorySpec>,
    /// The control memories, all distributed: the expert-load list (`ld_exp`, `ld_base`,
    /// `ld_n`) and the token list (`list`, each entry a token's x row base and its gate slot).
    pub control: Vec<MemorySpec>,
}

impl MoeLayout {
    /// The plan of `p` (assumed valid).
    pub fn of(p: &MoeParams) -> Self {
        let lay = BufferLayout::of(p);
        let ty = &p.types;
        let mut data = vec![MemorySpec::new(
            "weight_buffer".into(),
            p.lanes * p.simd * ty.weight.width(),
            2 * u64::from(p.max_k() / p.simd),
            MemStyle::Block,
        )];
        let banks = |name: &str, data: &mut Vec<MemorySpec>, w: u32, rows: u64| {
            for b in 0..p.banks() {
                data.push(MemorySpec::bank(format!("{name}_{b}"), w, rows));
            }
        };
        banks("xbuf", &mut data, ty.input.width(), lay.x_rows);
        banks("hbuf", &mut data, ty.hidden.width(), lay.h_rows);
        banks("lbuf", &mut data, ty.logit.width(), lay.l_rows);
        for s in 0..p.top_k {
            banks(
                &format!("ybuf{s}"),
                &mut data,
                ty.expert_out.width(),
                lay.x_rows,
            );
            // One gate weight per token, read back by the output stage.
            data.push(MemorySpec::new(
                format!("gw{s}"),
                p.gate_frac_bits + 1,
                u64::from(p.tokens),
                MemStyle::Distributed,
            ));
        }
        let loads = u64::from(p.max_loads());
        let list_base_bits = memory_addr_bits(lay.list_rows);
        let dist = |name: &str, width: u32, rows: u64| {
            MemorySpec::new(name.into(), width, rows, MemStyle::Distributed)
        };
        let control = vec![
            dist("ld_exp", bits_for(u64::from(p.experts)), loads),
            dist("ld_base", list_base_bits, loads),
            dist("ld_n", bits_for(u64::from(p.max_load_tokens()) + 1), loads),
            dist("list", memory_addr_bits(lay.x_rows) + 1, lay.list_rows),
        ];
        MoeLayout {
            buffers: lay,
            data,
            control,
        }
    }

    /// The memory named `name` (data or control).
    pub fn memory(&self, name: &str) -> Result<&MemorySpec> {
        self.data
            .iter()
            .chain(&self.control)
            .find(|m| m.name == name)
            .ok_or_else(|| MoeError::Params(format!("the memory plan has no memory {name}")))
    }
}

impl MoeParams {
    /// Checks every range and divisibility the hardware relies on; the message names the
    /// parameter and what would fix it.
    pub fn validate(&self) -> Result<()> {
        // A one-token batch or a one-entry expert queue (an expert load holding a single token,
        // min(tokens, queue_depth) = 1) is refused rather than generated: the load's token
        // counter is then one bit wide and the generator's end-of-load constants do not fit
        // ("constant does not fit"). A single token runs as a batch of two with a zero token.
        if self.tokens == 1 {
            return Err(MoeError::Params(
                "tokens = 1 is not supported: the core needs a batch of at least 2 tokens \
                 (pad a single token with a zero token)"
                    .into(),
            ));
        }
        range("tokens", self.tokens, 2, MAX_TOKENS)?;
        pow2("lanes", self.lanes, 1, 16)?;
        pow2("simd", self.simd, 1, 16)?;
        range("d_model", self.d_model, 2, MAX_D_MODEL)?;
        range("d_ff", self.d_ff, 2, MAX_D_FF)?;
        range("experts", self.experts, 2, MAX_EXPERTS)?;
        if self.top_k != 1 && self.top_k != 2 {
            return Err(MoeError::Params(format!(
                "top_k = {} must be 1 or 2",
                self.top_k
            )));
        }
        if self.queue_depth == 1 {
            return Err(MoeError::Params(
                "queue_depth = 1 is not supported: an expert load must hold at least 2 tokens \
                 (use queue_depth >= 2)"
                    .into(),
            ));
        }
        range("queue_depth", self.queue_depth, 2, MAX_TOKENS)?;
        let nb = self.banks();
        let banked = "max(lanes, simd) (activation buffers are banked that wide)";
        multiple("d_model", self.d_model, nb, banked, 2, MAX_D_MODEL)?;
        multiple("d_ff", self.d_ff, nb, banked, 2, MAX_D_FF)?;
        multiple(
            "experts",
            self.experts,
            self.lanes,
            "lanes (the gate GEMV computes lanes logits per weight tile)",
            2,
            MAX_EXPERTS,
        )?;
        for (what, t) in [
            ("input", &self.types.input),
            ("weight", &self.types.weight),
            ("logit", &self.types.logit),
            ("hidden", &self.types.hidden),
            ("expert_out", &self.types.expert_out),
            ("output", &self.types.output),
        ] {
            if !t.is_signed() || t.width() > 24 || t.width() < 2 {
                return Err(MoeError::Params(format!(
                    "type {what} = {t} must be a signed ap_fixed of 2..=24 bits"
                )));
            }
        }
        range("gate_frac_bits", self.gate_frac_bits, 1, 20)?;
        range("score_frac_bits", self.score_frac_bits, 1, 20)?;
        range(
            "score_table_bits",
            self.score_table_bits,
            1,
            self.types.logit.width().min(12),
        )?;
        if self.activation == FfnActivation::Gelu {
            range(
                "act_table_bits",
                self.act_table_bits,
                1,
                self.types.hidden.width().min(12),
            )?;
        }
        let bpw = self.weight_bytes();
        range("ddr_bytes_per_cycle", self.ddr_bytes_per_cycle, 1, 64)?;
        if !self.ddr_bytes_per_cycle.is_multiple_of(bpw) {
            return Err(MoeError::Params(format!(
                "ddr_bytes_per_cycle = {} must be a multiple of the {bpw} byte(s) each weight occupies",
                self.ddr_bytes_per_cycle
            )));
        }
        let per_beat = self.weights_per_beat();
        if !(self.lanes * self.simd).is_multiple_of(per_beat) {
            return Err(MoeError::Params(format!(
                "ddr_bytes_per_cycle = {} carries {per_beat} weights per beat, which must divide lanes x simd = {} (one weight-buffer word); use at most {} bytes per cycle",
                self.ddr_bytes_per_cycle,
                self.lanes * self.simd,
                self.lanes * self.simd * bpw
            )));
        }
        self.accumulator_width_checked()?;
        Ok(())
    }

    /// Buffer banks: every activation buffer is `max(lanes, simd)` one-element-wide memories,
    /// so `lanes` consecutive results can be written and `simd` consecutive inputs read in one
    /// cycle.
    pub fn banks(&self) -> u32 {
        self.lanes.max(self.simd)
    }

    /// Bytes one weight occupies on the weight stream.
    pub fn weight_bytes(&self) -> u32 {
        self.types.weight.width().div_ceil(8)
    }

    /// Weights carried by one weight-stream beat.
    pub fn weights_per_beat(&self) -> u32 {
        self.ddr_bytes_per_cycle / self.weight_bytes()
    }

    /// Weight-stream beats per weight-buffer word (`lanes x simd` weights).
    pub fn beats_per_word(&self) -> u32 {
        self.lanes * self.simd / self.weights_per_beat()
    }

    /// Beats of one weight tile with reduction length `k` (`lanes` rows of `k` weights).
    pub fn tile_beats(&self, k: u32) -> u64 {
        u64::from(k / self.simd) * u64::from(self.beats_per_word())
    }

    /// Bytes of one element on `s_axis` / `m_axis` (elements are byte-aligned for DMA).
    pub fn input_bytes(&self) -> u32 {
        self.types.input.width().div_ceil(8)
    }

    /// Bytes of one output element on `m_axis`.
    pub fn output_bytes(&self) -> u32 {
        self.types.output.width().div_ceil(8)
    }

    /// Width of the MAC array's activation operand: inputs and hidden values sign-extended.
    pub fn operand_width(&self) -> u32 {
        self.types.input.width().max(self.types.hidden.width())
    }

    /// Largest reduction length of any job.
    pub fn max_k(&self) -> u32 {
        self.d_model.max(self.d_ff)
    }

    fn accumulator_width_checked(&self) -> Result<u32> {
        let w = self.operand_width()
            + self.types.weight.width()
            + accelforge_hdl::clog2(u64::from(self.max_k()));
        if w > 62 {
            return Err(MoeError::Params(format!(
                "the exact accumulator would be {w} bits; narrow the types (at most 62)"
            )));
        }
        Ok(w)
    }

    /// Width of the exact accumulator (holds every dot product of every job).
    pub fn acc_width(&self) -> u32 {
        self.operand_width()
            + self.types.weight.width()
            + accelforge_hdl::clog2(u64::from(self.max_k()))
    }

    /// The accumulator read as a fixed-point number whose activations have `act_frac` bits.
    pub fn acc_type(&self, act_frac: i32) -> Result<QType> {
        let w = self.acc_width();
        let f = act_frac + self.types.weight.frac_bits();
        Ok(QType::new_wide(w, w as i32 - f, true)?)
    }

    /// Score numerator type `ap_ufixed<Fe+1,1,AP_RND,AP_SAT>`.
    pub fn score_type(&self) -> Result<QType> {
        Ok(QType::ufixed(self.score_frac_bits + 1, 1)?.with_modes(Quant::Rnd, Overflow::Sat, 0)?)
    }

    /// Gate weight type `ap_ufixed<Fw+1,1>` (the divider's quotient).
    pub fn gate_weight_type(&self) -> Result<QType> {
        Ok(QType::ufixed(self.gate_frac_bits + 1, 1)?)
    }

    /// The sigmoid table unit used by [`GateMode::Renorm`].
    pub fn sigmoid_params(&self) -> Result<ActivationParams> {
        Ok(ActivationParams {
            kind: ActivationKind::Sigmoid,
            input: self.types.logit,
            output: self.score_type()?,
            table_bits: self.score_table_bits,
        })
    }

    /// The expert activation unit (input and output both `hidden`).
    pub fn activation_params(&self) -> ActivationParams {
        ActivationParams {
            kind: match self.activation {
                FfnActivation::Relu => ActivationKind::Relu,
                FfnActivation::Gelu => ActivationKind::Gelu,
            },
            input: self.types.hidden,
            output: self.types.hidden,
            table_bits: self.act_table_bits,
        }
    }

    /// Right shift applied to a logit difference before it indexes the exp table: the table
    /// spans differences up to 16 (exp(-16) < 2^-23), so finer logits drop low bits.
    pub fn exp_shift(&self) -> u32 {
        (self.types.logit.frac_bits() + 4 - self.score_table_bits as i32).max(0) as u32
    }

    /// Largest number of tokens one expert load can hold.
    pub fn max_load_tokens(&self) -> u32 {
        self.tokens.min(self.queue_depth)
    }

    /// Largest number of expert loads in a batch (every kept pair its own load).
    pub fn max_loads(&self) -> u32 {
        self.tokens * self.top_k
    }

    /// Weight tiles of the gate GEMV.
    pub fn gate_tiles(&self) -> u32 {
        self.experts / self.lanes
    }

    /// Weight tiles of one expert (first layer, then second).
    pub fn expert_tiles(&self) -> (u32, u32) {
        (self.d_ff / self.lanes, self.d_model / self.lanes)
    }

    /// Bytes of one expert's weights as streamed (both layers, padding included).
    pub fn expert_stream_bytes(&self) -> u64 {
        let (t1, t2) = self.expert_tiles();
        (u64::from(t1) * self.tile_beats(self.d_model) + u64::from(t2) * self.tile_beats(self.d_ff))
            * u64::from(self.ddr_bytes_per_cycle)
    }

    /// Bytes of the gate matrix as streamed.
    pub fn gate_stream_bytes(&self) -> u64 {
        u64::from(self.gate_tiles())
            * self.tile_beats(self.d_model)
            * u64::from(self.ddr_bytes_per_cycle)
    }

    /// Cycles the routing unit spends on one token: scan E logits through a registered read
    /// (E+1), score numerators (1), restoring division (Fw+1), dispatch one slot per cycle (k).
    pub fn route_cycles_per_token(&self) -> u64 {
        u64::from(self.experts + 1 + 1 + self.gate_frac_bits + 1 + self.top_k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(d_model: u32, d_ff: u32, experts: u32, lanes: u32, simd: u32) -> MoeParams {
        MoeParams {
            d_model,
            d_ff,
            experts,
            lanes,
            simd,
            ..MoeParams::default()
        }
    }

    fn err(p: &MoeParams) -> String {
        match p.validate() {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{p:?} was accepted"),
        }
    }

    #[test]
    fn real_shapes_are_accepted() {
        for (dm, dff, e) in [
            (384, 1536, 16),
            (768, 3072, 16),
            (4096, 14336, 8),
            (24, 40, 6),
        ] {
            let mut p = shape(dm, dff, e, 2, 8);
            p.ddr_bytes_per_cycle = 16;
            p.validate().unwrap();
        }
        let mut p = shape(1024, 16384, 256, 8, 8);
        p.tokens = MAX_TOKENS;
        p.queue_depth = MAX_TOKENS;
        p.validate().unwrap();
    }

    #[test]
    fn errors_name_the_parameter_and_the_fix() {
        let e = err(&shape(100, 32, 4, 8, 4));
        assert!(
            e.contains("d_model = 100") && e.contains("96 or 104"),
            "{e}"
        );
        let e = err(&shape(16, 36, 4, 4, 8));
        assert!(e.contains("d_ff = 36") && e.contains("32 or 40"), "{e}");
        let e = err(&shape(16, 32, 6, 4, 4));
        assert!(e.contains("experts = 6") && e.contains("lanes"), "{e}");
        let e = err(&shape(8192, 32, 4, 4, 4));
        assert!(e.contains("d_model = 8192") && e.contains("4096"), "{e}");
        let e = err(&shape(16, 32, 4, 3, 4));
        assert!(e.contains("lanes = 3") && e.contains("power of two"), "{e}");
        let e = err(&shape(16, 32, 1, 1, 4));
        assert!(e.contains("experts = 1"), "{e}");
    }

    #[test]
    fn buffer_rows_are_exact() {
        // ViT-S on an 8-wide bank: 48 x rows per token, 192 h rows per position, logits of 12
        // experts in 2 rows (the second part-filled).
        let mut p = shape(384, 1536, 12, 4, 8);
        p.tokens = 16;
        p.queue_depth = 5;
        p.validate().unwrap();
        let l = BufferLayout::of(&p);
        assert_eq!((l.x_stride, l.h_stride, l.l_stride), (48, 192, 2));
        assert_eq!((l.x_rows, l.h_rows, l.l_rows), (768, 960, 32));
        // Queues of min(16, 5) entries for 12 experts outnumber the 32 kept pairs.
        assert_eq!(l.list_rows, 60);
    }
}
