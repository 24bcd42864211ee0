//! A whole pre-LN (MoE-)ViT encoder block on the generated kernels (issue 17, items 3–4):
//!
//! ```text
//! h   = LN1(x)                                  add & norm unit (no residual)
//! qkv = h · Wqkv                                linear kernel (systolic array)
//! o   = attention(q, k, v) per head             attention kernel
//! p   = o · Wo                                  linear kernel
//! s1  = x + p,  h2 = LN2(s1)                    add & norm unit
//! f   = act(h2 · W1) · W2    or   MoE(h2)       linear kernel, activation unit (GELU) or the
//!                                               requantizer's clamp (ReLU), linear kernel;
//!                                               or the MoE core
//! s2  = s1 + f, y = LN(s2)                      add & norm unit (y feeds the next block)
//! ```
//!
//! One systolic array (per-channel requantization, so one design serves every projection:
//! each GEMM loads its own table and sets its own shift and clamp) is the reusable linear
//! kernel. The kernels run in turn, each in Verilator against its own golden model; the block's
//! data flows from kernel to kernel as each kernel's checked outputs. [`run`] chains them,
//! [`reference`] is the float64 block on the same (dequantized) weights.
//!
//! # Types
//! LayerNorm outputs are `ap_fixed<8,3>` (unit variance: ±4 with 1/32 steps); Q, K, V, the
//! attention output and the MLP's hidden layer `ap_fixed<8,4>` (their spread is wider: ±8);
//! weights `ap_fixed<8,1>`; the residual stream `ap_fixed<16,6>`; LayerNorm's γ is
//! `ap_fixed<8,2>`, β `ap_fixed<8,3>`. The linear kernel works on the raw codes: an
//! accumulator holds the input's fractional bits plus the weights' 7, and is requantized with
//! round-half-even by the right shift to the output's fractional bits, saturating (ReLU by
//! clamping at 0).

pub mod reference;
pub mod run;

use serde::{Deserialize, Serialize};

use crate::attention::AttentionParams;
use crate::layernorm::LayerNormParams;
use crate::moe::{FfnActivation, MoeParams, MoeTypes};
use crate::qfx::QType;
use crate::systolic::params::{BufferRam, Dataflow, PeKind, RequantMode, SystolicParams};
use crate::units::act_stream::ActStream;
use crate::units::activation::{ActivationKind, ActivationParams};

pub use run::{BlockReport, StageReport, run};

/// LayerNorm outputs (the inputs of QKV, FC1 and the MoE core).
pub const NORM_TYPE: &str = "ap_fixed<8,3>";
/// Q, K, V, the attention output and the MLP's hidden layer.
pub const ACT_TYPE: &str = "ap_fixed<8,4>";
/// Weights of the linear layers (and the MoE experts and gate).
pub const WEIGHT_TYPE: &str = "ap_fixed<8,1>";
/// The residual stream.
pub const RESIDUAL_TYPE: &str = "ap_fixed<16,6>";
/// Fractional bits of [`NORM_TYPE`], [`ACT_TYPE`], [`WEIGHT_TYPE`] and [`RESIDUAL_TYPE`].
pub const NORM_FRAC: u32 = 5;
/// See [`NORM_FRAC`].
pub const ACT_FRAC: u32 = 4;
/// See [`NORM_FRAC`].
pub const WEIGHT_FRAC: u32 = 7;
/// See [`NORM_FRAC`].
pub const RESIDUAL_FRAC: u32 = 10;
/// LayerNorm's γ.
pub const GAMMA_TYPE: &str = "ap_fixed<8,2>";
/// LayerNorm's β.
pub const BETA_TYPE: &str = "ap_fixed<8,3>";
/// Most multiply-accumulates [`run`] computes in its golden models (2^31: under ten seconds on a
/// small machine; a ViT-Tiny block is about 10^8).
pub const MAX_GOLDEN_MACS: u64 = 1 << 31;
/// Fractional bits of [`GAMMA_TYPE`].
pub const GAMMA_FRAC: u32 = 6;
/// Fractional bits of [`BETA_TYPE`].
pub const BETA_FRAC: u32 = 5;

/// Errors of the block.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A parameter out of range or a kernel refusing its derived parameters.
    #[error("invalid block: {0}")]
    Params(String),
    /// A kernel's simulation or model failed.
    #[error("{stage}: {msg}")]
    Kernel {
        /// The block stage.
        stage: String,
        /// What failed.
        msg: String,
    },
}

/// Result of the block.
pub type Result<T> = std::result::Result<T, BlockError>;

/// The block's shape and the parallelism of each kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockParams {
    /// Tokens (e.g. 197 for a 224×224 ViT with a class token).
    pub tokens: u32,
    /// Model width.
    pub d_model: u32,
    /// Attention heads (`d_model / heads` per head).
    pub heads: u32,
    /// Hidden width of the MLP (or of each expert).
    pub d_ff: u32,
    /// Experts of the MoE FFN; 0 = a dense MLP on the linear kernel.
    pub experts: u32,
    /// Experts per token (1 or 2) with `experts > 0`.
    pub top_k: u32,
    /// The FFN's activation: GELU (ViT's; a table on the activation unit, or in the MoE core)
    /// or ReLU (the linear kernel's clamp at 0).
    pub activation: FfnActivation,
    /// Linear kernel: PE rows.
    pub rows: u32,
    /// Linear kernel: PE columns.
    pub cols: u32,
    /// Linear kernel: PE kind (`dsp` or `dsp-packed`).
    pub pe: PeKind,
    /// Linear kernel: AXI4-Stream width in bits.
    pub stream_bits: u32,
    /// Attention kernel: queries side by side.
    pub query_lanes: u32,
    /// Attention kernel: elements per cycle of a row.
    pub attn_simd: u32,
    /// Add & norm and activation units: elements per beat.
    pub ln_lanes: u32,
    /// MoE core: output lanes.
    pub moe_lanes: u32,
    /// MoE core: elements per cycle of a dot product.
    pub moe_simd: u32,
    /// MoE core: weight-stream bytes per cycle.
    pub moe_ddr_bytes: u32,
}

impl Default for BlockParams {
    /// A ViT-Tiny block (197 tokens, d 192, 3 heads, MLP 768).
    fn default() -> Self {
        BlockParams {
            tokens: 197,
            d_model: 192,
            heads: 3,
            d_ff: 768,
            experts: 0,
            top_k: 2,
            activation: FfnActivation::Gelu,
            rows: 16,
            cols: 16,
            pe: PeKind::Dsp,
            stream_bits: 64,
            query_lanes: 16,
            attn_simd: 16,
            ln_lanes: 4,
            moe_lanes: 16,
            moe_simd: 16,
            moe_ddr_bytes: 16,
        }
    }
}

fn bad(m: String) -> BlockError {
    BlockError::Params(m)
}

impl BlockParams {
    /// The M3ViT-style MoE block at ViT-Tiny width: 16 experts, top-2.
    pub fn m3vit() -> BlockParams {
        BlockParams {
            experts: 16,
            ..BlockParams::default()
        }
    }

    /// Whether the FFN is the MoE core.
    pub fn is_moe(&self) -> bool {
        self.experts > 0
    }

    /// Checks the shape and every kernel's derived parameters; the message names the field.
    pub fn validate(&self) -> Result<()> {
        if self.tokens < 2 || self.tokens > 1024 {
            return Err(bad(format!("tokens = {} is outside 2..=1024", self.tokens)));
        }
        if self.d_model == 0 {
            return Err(bad("d_model must be at least 1".into()));
        }
        if self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(bad(format!(
                "heads = {} must divide d_model = {}",
                self.heads, self.d_model
            )));
        }
        if self.d_ff == 0 {
            return Err(bad("d_ff must be at least 1".into()));
        }
        if self.is_moe() && !(1..=2).contains(&self.top_k) {
            return Err(bad(format!("top_k = {} must be 1 or 2", self.top_k)));
        }
        self.linear()
            .resolve()
            .map_err(|e| bad(format!("linear kernel: {e}")))?;
        self.attention()
            .resolve()
            .map_err(|e| bad(format!("attention kernel: {e}")))?;
        for residual in [false, true] {
            self.layernorm(residual)
                .resolve()
                .map_err(|e| bad(format!("add & norm unit: {e}")))?;
        }
        if self.activation == FfnActivation::Gelu && !self.is_moe() {
            if !self.d_ff.is_multiple_of(self.ln_lanes) {
                return Err(bad(format!(
                    "ln_lanes = {} must divide d_ff = {} (the activation unit streams the hidden \
                     layer)",
                    self.ln_lanes, self.d_ff
                )));
            }
            crate::units::act_stream::design(&self.gelu())
                .map_err(|e| bad(format!("activation unit: {e}")))?;
        }
        if let Some(m) = self.moe() {
            m.validate().map_err(|e| bad(format!("MoE core: {e}")))?;
        }
        Ok(())
    }

    /// Multiply-accumulates of the golden chain at most (every expert's slot counted as kept):
    /// the work `run` does even without Verilator, to give the MoE routing and the errors.
    pub fn golden_macs(&self) -> u64 {
        let (t, d, f) = (
            u64::from(self.tokens),
            u64::from(self.d_model),
            u64::from(self.d_ff),
        );
        let attention = 2 * t * t * d;
        let ffn = if self.is_moe() {
            t * u64::from(self.experts) * d + t * u64::from(self.top_k) * 2 * d * f
        } else {
            2 * t * d * f
        };
        4 * t * d * d + attention + ffn
    }

    /// Refuses a block whose golden chain would run longer than [`MAX_GOLDEN_MACS`] allows
    /// (the float reference does as much again), naming the figure and what to use instead.
    pub fn check_golden_size(&self) -> Result<()> {
        let macs = self.golden_macs();
        if macs > MAX_GOLDEN_MACS {
            return Err(bad(format!(
                "this block's golden models would compute {macs} multiply-accumulates (they give \
                 the MoE routing and the errors against float), above the bound of \
                 {MAX_GOLDEN_MACS}; price its kernels with `estimate attention|moe|gemm` or \
                 `map` on a `kind = \"encoder_block\"` workload instead, or use fewer tokens or \
                 a narrower model"
            )));
        }
        Ok(())
    }

    /// The linear kernel: one output-stationary array with per-channel requantization on raw
    /// codes, `max_k` and `max_channels` covering every projection of the block.
    pub fn linear(&self) -> SystolicParams {
        let (d, f) = (self.d_model, self.d_ff);
        let ffn = if self.is_moe() { 0 } else { f };
        SystolicParams {
            rows: self.rows,
            cols: self.cols,
            dataflow: Dataflow::Os,
            input_type: "ap_fixed<8,8>".into(),
            weight_type: "ap_fixed<8,8>".into(),
            acc_type: "ap_fixed<32,32>".into(),
            output_type: "ap_fixed<16,16>".into(),
            pe: self.pe,
            max_k: d.max(ffn),
            max_n_chunk: self.cols * 4,
            stream_bits: self.stream_bits,
            relu: false,
            requant: RequantMode::PerChannel {
                max_channels: (3 * d).max(ffn),
                mul_bits: 2,
                add_bits: 2,
            },
            buffer_ram: BufferRam::Block,
        }
    }

    /// The attention kernel.
    pub fn attention(&self) -> AttentionParams {
        AttentionParams {
            head_dim: self.d_model / self.heads.max(1),
            heads: self.heads,
            tokens: self.tokens,
            query_lanes: self.query_lanes,
            simd: self.attn_simd,
            qkv_type: ACT_TYPE.into(),
            output_type: ACT_TYPE.into(),
            ..AttentionParams::default()
        }
    }

    /// An add & norm unit, with or without the residual add.
    pub fn layernorm(&self, residual: bool) -> LayerNormParams {
        LayerNormParams {
            d: self.d_model,
            lanes: self.ln_lanes,
            residual,
            input_type: RESIDUAL_TYPE.into(),
            gamma_type: GAMMA_TYPE.into(),
            beta_type: BETA_TYPE.into(),
            output_type: NORM_TYPE.into(),
            ..LayerNormParams::default()
        }
    }

    /// The activation unit between the MLP's projections: GELU from [`ACT_TYPE`] to itself,
    /// a 256-entry table (every input value).
    pub fn gelu(&self) -> ActStream {
        let t: QType = ACT_TYPE.parse().expect("constant type");
        ActStream {
            act: ActivationParams {
                kind: ActivationKind::Gelu,
                input: t,
                output: t,
                table_bits: 8,
            },
            lanes: self.ln_lanes,
        }
    }

    /// The MoE core, when the FFN is one (queues as deep as the batch: no token is dropped).
    pub fn moe(&self) -> Option<MoeParams> {
        self.is_moe().then(|| MoeParams {
            tokens: self.tokens,
            d_model: self.d_model,
            d_ff: self.d_ff,
            experts: self.experts,
            top_k: self.top_k,
            lanes: self.moe_lanes,
            simd: self.moe_simd,
            ddr_bytes_per_cycle: self.moe_ddr_bytes,
            queue_depth: self.tokens,
            activation: self.activation,
            types: MoeTypes::default(),
            ..MoeParams::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_shapes_are_named() {
        BlockParams::default().validate().unwrap();
        BlockParams::m3vit().validate().unwrap();
        let e = |p: BlockParams| p.validate().unwrap_err().to_string();
        let d = BlockParams::default;
        assert!(e(BlockParams { heads: 5, ..d() }).contains("heads = 5"));
        assert!(e(BlockParams { tokens: 1, ..d() }).contains("tokens = 1"));
        assert!(
            e(BlockParams {
                experts: 4,
                top_k: 3,
                ..d()
            })
            .contains("top_k = 3")
        );
        assert!(
            e(BlockParams {
                attn_simd: 5,
                ..d()
            })
            .contains("attention kernel")
        );
        assert!(e(BlockParams { ln_lanes: 5, ..d() }).contains("add & norm"));
        assert!(
            e(BlockParams {
                experts: 4,
                moe_lanes: 3,
                ..d()
            })
            .contains("MoE core")
        );
    }

    /// Every GEMM of the block fits the one linear kernel, whose requantizer serves them all.
    #[test]
    fn one_linear_kernel_covers_every_projection() {
        let p = BlockParams::default();
        let l = p.linear();
        assert_eq!(l.max_k, 768);
        assert!(matches!(
            l.requant,
            RequantMode::PerChannel {
                max_channels: 768,
                ..
            }
        ));
        let m = BlockParams::m3vit().linear();
        assert_eq!(m.max_k, 192);
        assert!(matches!(
            m.requant,
            RequantMode::PerChannel {
                max_channels: 576,
                ..
            }
        ));
    }
}
