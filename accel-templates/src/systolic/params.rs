//! Parameters of the systolic array, their validation, and the values derived from them that
//! the RTL generator, the golden model and the cost model all share.

use serde::{Deserialize, Serialize};

use super::error::{Result, SystolicError};
use crate::qfx::QType;

/// Which operand stays in the processing elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dataflow {
    /// Output-stationary: each PE accumulates one output; operands flow through.
    #[default]
    Os,
    /// Weight-stationary: each PE holds one weight; partial sums flow down the columns.
    Ws,
}

/// How a processing element multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PeKind {
    /// A full-width product wire: one DSP48 per PE.
    #[default]
    Dsp,
    /// Weights restricted to ±2^k or a two-term canonical-signed-digit sum ±2^a ± 2^b: each PE
    /// shifts and adds, no DSP.
    ShiftAdd,
    /// Adjacent columns share one DSP48 multiply: their weights are packed into one operand
    /// `Σ w_i·2^(i·s)` (`s` = the product width), multiplied by the shared activation, and the
    /// products separated after the multiply (a sign correction per product), so the sums are
    /// those of `dsp` PEs. Two int8 products per DSP (three at 4 bits); see
    /// [`crate::systolic::packing`].
    DspPacked,
}

/// Which on-chip RAM holds the operand buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BufferRam {
    /// Block RAM (RAMB18/RAMB36), on every Zynq.
    #[default]
    Block,
    /// UltraRAM (URAM288: 4096 × 72 bits each), on the UltraScale+ parts that have it (KV260,
    /// ZCU104): frees block RAM for arrays whose buffers hold a long K.
    Ultra,
}

impl BufferRam {
    /// The default (skipped when serialising, so existing params stay byte-identical).
    pub fn is_block(&self) -> bool {
        *self == BufferRam::Block
    }

    /// The `ram_style` attribute of the buffers' memories.
    pub fn style(self) -> &'static str {
        match self {
            BufferRam::Block => "block",
            BufferRam::Ultra => "ultra",
        }
    }
}

/// How the array requantizes its accumulators into the output type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequantMode {
    /// One conversion for every column: `acc_type` to `output_type` with the output type's
    /// rounding and overflow modes (the default).
    #[default]
    Single,
    /// Per output channel: `q = clamp(round((acc·mul[c] + add[c]) >> shift), lo, hi)` with
    /// per-channel `(mul, add)` tables loaded at run time (`cmd_op = 1`) and per-command
    /// `cmd_shift`, `cmd_round`, `cmd_lo`, `cmd_hi` (see [`crate::systolic::requant`]).
    PerChannel {
        /// Channels (columns of B) the tables hold; a GEMM may have at most this many.
        max_channels: u32,
        /// Width of a signed multiplier.
        mul_bits: u32,
        /// Width of a signed offset.
        add_bits: u32,
    },
}

impl RequantMode {
    /// The default mode (skipped when serialising, so existing params stay byte-identical).
    pub fn is_single(&self) -> bool {
        *self == RequantMode::Single
    }
}

/// Parameters of one systolic-array accelerator (serialised as `params.json` by `gen`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystolicParams {
    /// PE rows R (rows of A, i.e. output rows, per tile).
    pub rows: u32,
    /// PE columns C (columns of B, i.e. output columns, per tile).
    pub cols: u32,
    /// Dataflow.
    pub dataflow: Dataflow,
    /// Type of A (inputs / activations), HLS spelling, e.g. `ap_fixed<8,8>`.
    pub input_type: String,
    /// Type of B (weights).
    pub weight_type: String,
    /// Accumulator type; must hold every dot product of `max_k` terms exactly.
    pub acc_type: String,
    /// Output type; its rounding and overflow modes define the requantizer.
    pub output_type: String,
    /// PE kind.
    pub pe: PeKind,
    /// Largest reduction length K a command may use (depth of the operand buffers). For the
    /// weight-stationary dataflow it also sets the M block (rows of A per accumulator bank):
    /// the largest multiple of `rows` not above it.
    pub max_k: u32,
    /// Columns of B kept on chip at once (a multiple of `cols`); A is streamed once per chunk.
    pub max_n_chunk: u32,
    /// AXI4-Stream data width of both streams, in bits.
    pub stream_bits: u32,
    /// Clamp negative accumulators to zero before requantizing.
    pub relu: bool,
    /// Requantization mode; absent from JSON when `single`.
    #[serde(default, skip_serializing_if = "RequantMode::is_single")]
    pub requant: RequantMode,
    /// RAM of the A and B (W) operand buffers; absent from JSON when `block`.
    #[serde(default, skip_serializing_if = "BufferRam::is_block")]
    pub buffer_ram: BufferRam,
}

impl Default for SystolicParams {
    fn default() -> Self {
        SystolicParams {
            rows: 8,
            cols: 8,
            dataflow: Dataflow::Os,
            input_type: "ap_fixed<8,8>".into(),
            weight_type: "ap_fixed<8,8>".into(),
            acc_type: "ap_fixed<32,32>".into(),
            output_type: "ap_fixed<8,8>".into(),
            pe: PeKind::Dsp,
            max_k: 256,
            max_n_chunk: 32,
            stream_bits: 64,
            relu: false,
            requant: RequantMode::Single,
            buffer_ram: BufferRam::Block,
        }
    }
}

/// Everything derived from validated parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The parameters themselves.
    pub p: SystolicParams,
    /// Rows R.
    pub r: u32,
    /// Columns C.
    pub c: u32,
    /// Input (A) type.
    pub ta: QType,
    /// Weight (B) type.
    pub tb: QType,
    /// Accumulator type.
    pub tacc: QType,
    /// Output type.
    pub tout: QType,
    /// Signed operand widths inside the PE (unsigned types get a zero bit on top).
    pub wa: u32,
    /// See `wa`.
    pub wb: u32,
    /// Accumulator width.
    pub wacc: u32,
    /// Left shift from a product's raw code to the accumulator's (acc fractional bits minus
    /// the products' fractional bits).
    pub acc_shift: u32,
    /// Elements per input beat for A, B, and per output beat.
    pub ea: u32,
    /// See `ea`.
    pub eb: u32,
    /// See `ea`.
    pub eo: u32,
    /// Memories (each one stream word wide) per A column / B row / output row.
    pub qa: u32,
    /// See `qa`.
    pub qb: u32,
    /// Output beats per full output row.
    pub qo: u32,
    /// Column tiles per B chunk.
    pub tiles_per_chunk: u32,
    /// Words per A bank (power of two ≥ max_k, ≥ 2).
    pub a_bank_depth: u32,
    /// Words per B bank (power of two ≥ tiles_per_chunk·max_k, ≥ 2).
    pub b_bank_depth: u32,
    /// Output FIFO rows (power of two ≥ 2R; 4 for weight-stationary, whose drain reads one
    /// row per cycle two cycles ahead of the FIFO).
    pub out_fifo_depth: u32,
    /// Minimum cycles between two tile starts, so the output chain never collides.
    pub min_period: u32,
    /// Weight-stationary only: rows of A per M block (the largest multiple of R not above
    /// `max_k`); the A buffer holds one block's K-slice and the accumulator buffer one block.
    pub ws_m_block: u32,
    /// Weight-stationary only: words per A-buffer bank (power of two ≥ `ws_m_block`, ≥ 2).
    pub ws_a_depth: u32,
    /// Weight-stationary only: words per weight-buffer bank (power of two ≥ tiles·R, ≥ 2).
    pub ws_w_depth: u32,
    /// Weight-stationary only: accumulators per column per accumulator bank (power of two ≥
    /// tiles·`ws_m_block`).
    pub ws_acc_depth: u32,
    /// Products per DSP multiply: the packing group size for `dsp-packed` PEs, 1 otherwise.
    pub pack: u32,
    /// Signed width that holds every product: the spacing of packed products.
    pub product_bits: u32,
}

fn perr(msg: impl Into<String>) -> SystolicError {
    SystolicError::Params(msg.into())
}

fn signed_bits_for(min: i128, max: i128) -> u32 {
    // Smallest w with -2^(w-1) <= min and max <= 2^(w-1)-1.
    let mut w = 1u32;
    while w < 127 && (min < -(1i128 << (w - 1)) || max > (1i128 << (w - 1)) - 1) {
        w += 1;
    }
    w
}

/// Bounds of the per-channel mode: output-stationary only, no separate ReLU (fold it into
/// `cmd_lo`), an integer output of at most 32 bits (its codes travel in `cmd_lo`/`cmd_hi`).
fn validate_requant(p: &SystolicParams, tout: &QType) -> Result<()> {
    let RequantMode::PerChannel {
        max_channels,
        mul_bits,
        add_bits,
    } = p.requant
    else {
        return Ok(());
    };
    if p.dataflow != Dataflow::Os {
        return Err(perr(
            "requant per_channel needs dataflow os (the weight-stationary drain has no \
             per-channel tables); use dataflow os or requant single",
        ));
    }
    if p.relu {
        return Err(perr(
            "requant per_channel folds ReLU into the clamp: set relu false and cmd_lo >= 0",
        ));
    }
    if max_channels == 0 || max_channels > 4096 {
        return Err(perr(format!(
            "requant max_channels must be 1..=4096 (got {max_channels})"
        )));
    }
    if !(1..=32).contains(&mul_bits) || !(1..=64).contains(&add_bits) {
        return Err(perr(format!(
            "requant mul_bits must be 1..=32 and add_bits 1..=64 (got {mul_bits}, {add_bits})"
        )));
    }
    // Output codes travel in the signed 32-bit cmd_lo / cmd_hi.
    if tout.min_raw() < -(1i128 << 31) || tout.max_raw() >= 1i128 << 31 {
        return Err(perr(format!(
            "requant per_channel needs an output_type whose codes fit 32-bit signed \
             (at most ap_fixed<32,32> or ap_ufixed<31,31>; got {tout})"
        )));
    }
    Ok(())
}

impl SystolicParams {
    /// Checks every parameter and their combinations; the message names the fix.
    pub fn validate(&self) -> Result<()> {
        self.resolve().map(|_| ())
    }

    /// Validates and derives the shared quantities.
    pub fn resolve(&self) -> Result<Resolved> {
        let p = self;
        if p.rows == 0 || p.rows > 64 || p.cols == 0 || p.cols > 64 {
            return Err(perr(format!(
                "rows and cols must be 1..=64 (got {}x{})",
                p.rows, p.cols
            )));
        }
        let parse = |what: &str, s: &str| -> Result<QType> {
            s.parse::<QType>().map_err(|e| perr(format!("{what}: {e}")))
        };
        let ta = parse("input_type", &p.input_type)?;
        let tb = parse("weight_type", &p.weight_type)?;
        let tacc = parse("acc_type", &p.acc_type)?;
        let tout = parse("output_type", &p.output_type)?;
        if !(8..=1024).contains(&p.stream_bits) || !p.stream_bits.is_multiple_of(8) {
            return Err(perr(format!(
                "stream_bits must be a multiple of 8 in 8..=1024 (got {})",
                p.stream_bits
            )));
        }
        // Elements are packed floor(stream_bits / W) per beat; a beat must hold at least one.
        for (what, t) in [("input", &ta), ("weight", &tb), ("output", &tout)] {
            if t.width() > p.stream_bits {
                return Err(perr(format!(
                    "stream_bits {} is narrower than the {what} element width {} ({t}); \
                     use stream_bits >= {}",
                    p.stream_bits,
                    t.width(),
                    t.width().div_ceil(8) * 8
                )));
            }
        }
        let wa = ta.width() + u32::from(!ta.is_signed());
        let wb = tb.width() + u32::from(!tb.is_signed());
        if wa > 32 || wb > 32 {
            return Err(perr("input and weight types must be at most 32 bits wide"));
        }
        if !tacc.is_signed() {
            return Err(perr(format!(
                "acc_type {tacc} must be signed (ap_fixed): the accumulator is two's complement"
            )));
        }
        // More accumulator fractional bits than the products have is an exact left shift of
        // each product; fewer would drop product bits, so the sum would not be exact.
        let prod_frac = ta.frac_bits() + tb.frac_bits();
        if tacc.frac_bits() < prod_frac {
            return Err(perr(format!(
                "acc_type {tacc} has {} fractional bits but products of {ta} and {tb} have \
                 {prod_frac}; the accumulator must hold products exactly (use F >= {prod_frac})",
                tacc.frac_bits(),
            )));
        }
        let acc_shift = (tacc.frac_bits() - prod_frac) as u32;
        if p.max_k == 0 || p.max_k > 65_535 {
            return Err(perr(format!("max_k must be 1..=65535 (got {})", p.max_k)));
        }
        let corners = [
            ta.min_raw() * tb.min_raw(),
            ta.min_raw() * tb.max_raw(),
            ta.max_raw() * tb.min_raw(),
            ta.max_raw() * tb.max_raw(),
        ];
        let pmin = corners.iter().copied().min().unwrap_or(0);
        let pmax = corners.iter().copied().max().unwrap_or(0);
        let k = i128::from(p.max_k);
        if tacc.width() > 64 {
            return Err(perr("acc_type must be at most 64 bits wide"));
        }
        // Products are shifted left by `acc_shift`; the sum of max_k of them must fit. Scaling
        // a range by 2^s adds exactly s bits to its signed width.
        let need = signed_bits_for(pmin * k, pmax * k) + acc_shift;
        if tacc.width() < need {
            return Err(perr(format!(
                "acc_type {tacc} is too narrow: a dot product of max_k = {} terms of {ta} x {tb} \
                 with {} fractional bits needs {need} bits (e.g. ap_fixed<{need},{}>)",
                p.max_k,
                tacc.frac_bits(),
                need as i32 - tacc.frac_bits()
            )));
        }
        if tout.width() < 2 {
            return Err(perr(format!(
                "output_type {tout} must be at least 2 bits wide"
            )));
        }
        if p.max_n_chunk == 0 || !p.max_n_chunk.is_multiple_of(p.cols) || p.max_n_chunk > 4096 {
            return Err(perr(format!(
                "max_n_chunk must be a positive multiple of cols ({}) up to 4096 (got {})",
                p.cols, p.max_n_chunk
            )));
        }
        if p.pe == PeKind::ShiftAdd && tb.width() > 16 {
            return Err(perr(
                "shift-add PEs support weight types of at most 16 bits",
            ));
        }
        validate_requant(p, &tout)?;
        // The signed width of every product: the spacing of packed products (one bit less than
        // wa + wb when an operand is unsigned: uint8 × int8 products fit 16 bits).
        let product_bits = signed_bits_for(pmin, pmax);
        let pack = if p.pe == PeKind::DspPacked {
            super::packing::group_size(product_bits, wa, wb).map_err(perr)?
        } else {
            1
        };
        let (r, c) = (p.rows, p.cols);
        let ea = p.stream_bits / ta.width();
        let eb = p.stream_bits / tb.width();
        let eo = p.stream_bits / tout.width();
        let tiles_per_chunk = p.max_n_chunk / c;
        // At least two words per bank: a bank's offset is addressed with at least one bit, so a
        // one-word bank (max_k = 1) would not match its address width.
        let a_bank_depth = p.max_k.next_power_of_two().max(2);
        let b_bank_depth = (tiles_per_chunk * p.max_k).next_power_of_two().max(2);
        if b_bank_depth > 1 << 20 {
            return Err(perr(
                "the B buffer (max_n_chunk/cols x max_k words per bank) exceeds 2^20 words",
            ));
        }
        // Weight-stationary: `max_k` also bounds the M block, so the A buffer has the same depth
        // as the output-stationary one; blocks are whole R-row groups so that draining a block
        // in the output-stationary order needs no reordering across blocks.
        let (ws_m_block, ws_a_depth, ws_w_depth, ws_acc_depth) = if p.dataflow == Dataflow::Ws {
            if p.max_k < r {
                return Err(perr(format!(
                    "dataflow ws needs max_k >= rows ({r}): max_k also sets the M block \
                     (got {})",
                    p.max_k
                )));
            }
            let mb = p.max_k / r * r;
            let acc = (tiles_per_chunk * mb).next_power_of_two().max(2);
            if acc > 1 << 20 {
                return Err(perr(
                    "the ws accumulator buffer (max_n_chunk/cols x M block per column) exceeds \
                     2^20 words; lower max_k or max_n_chunk",
                ));
            }
            (
                mb,
                mb.next_power_of_two().max(2),
                (tiles_per_chunk * r).next_power_of_two().max(2),
                acc,
            )
        } else {
            (0, 0, 0, 0)
        };
        Ok(Resolved {
            p: p.clone(),
            r,
            c,
            ta,
            tb,
            tacc,
            tout,
            wa,
            wb,
            wacc: tacc.width(),
            acc_shift,
            ea,
            eb,
            eo,
            qa: r.div_ceil(ea),
            qb: c.div_ceil(eb),
            qo: c.div_ceil(eo),
            tiles_per_chunk,
            a_bank_depth,
            b_bank_depth,
            out_fifo_depth: if p.dataflow == Dataflow::Ws {
                4
            } else {
                (2 * r).next_power_of_two().max(2)
            },
            min_period: 2 * r - 1,
            ws_m_block,
            ws_a_depth,
            ws_w_depth,
            ws_acc_depth,
            pack,
            product_bits,
        })
    }

    /// A stable short name for the generated modules, e.g. `af_systolic_os_8x8_1a2b3c`.
    pub fn module_prefix(&self) -> String {
        let df = match self.dataflow {
            Dataflow::Os => "os",
            Dataflow::Ws => "ws",
        };
        let hash = accelforge_hdl::params_hash(self);
        format!(
            "af_systolic_{df}_{}x{}_{}",
            self.rows,
            self.cols,
            &hash[..6.min(hash.len())]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let r = SystolicParams::default().resolve().unwrap();
        assert_eq!((r.ea, r.eb, r.eo, r.qa, r.qb, r.qo), (8, 8, 8, 1, 1, 1));
    }

    #[test]
    fn impossible_combinations_are_named() {
        let mut p = SystolicParams {
            stream_bits: 60,
            ..Default::default()
        };
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("multiple of 8")
        );
        p.stream_bits = 8;
        p.input_type = "ap_fixed<12,12>".into();
        assert!(p.validate().unwrap_err().to_string().contains("narrower"));
        p.stream_bits = 64;
        // 12-bit elements pack five to a 64-bit beat (the top 4 bits unused).
        p.acc_type = "ap_fixed<40,40>".into();
        assert_eq!(p.resolve().unwrap().ea, 5);
        p.acc_type = "ap_fixed<32,32>".into();
        p.input_type = "ap_fixed<8,8>".into();
        p.acc_type = "ap_fixed<16,16>".into();
        assert!(p.validate().unwrap_err().to_string().contains("too narrow"));
        p.acc_type = "ap_fixed<32,34>".into();
        assert!(p.validate().unwrap_err().to_string().contains("fractional"));
        // More fractional bits than the products is a shift: accepted while the integer part
        // still holds the sum, refused (naming the width) once it does not.
        p.acc_type = "ap_fixed<32,30>".into();
        p.validate().unwrap();
        p.acc_type = "ap_fixed<25,23>".into();
        assert!(p.validate().unwrap_err().to_string().contains("too narrow"));
        p.acc_type = "ap_fixed<32,32>".into();
        p.max_n_chunk = 12;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("multiple of cols")
        );
    }

    #[test]
    fn ws_m_block_is_whole_row_groups_within_max_k() {
        let p = SystolicParams {
            dataflow: Dataflow::Ws,
            rows: 3,
            max_k: 40,
            max_n_chunk: 16,
            cols: 4,
            ..Default::default()
        };
        let r = p.resolve().unwrap();
        assert_eq!((r.ws_m_block, r.ws_a_depth, r.ws_acc_depth), (39, 64, 256));
        let bad = SystolicParams { max_k: 2, ..p };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("max_k >= rows")
        );
    }

    #[test]
    fn products_are_spaced_by_their_signed_width() {
        let width = |input: &str, weight: &str| {
            SystolicParams {
                input_type: input.into(),
                weight_type: weight.into(),
                ..Default::default()
            }
            .resolve()
            .unwrap()
            .product_bits
        };
        assert_eq!(width("ap_fixed<8,8>", "ap_fixed<8,8>"), 16);
        assert_eq!(width("ap_ufixed<8,8>", "ap_fixed<8,8>"), 16);
        assert_eq!(width("ap_fixed<4,4>", "ap_fixed<4,4>"), 8);
        assert_eq!(width("ap_fixed<2,2>", "ap_fixed<2,2>"), 4);
    }

    #[test]
    fn json_round_trip_rejects_unknown_fields() {
        let p = SystolicParams::default();
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<SystolicParams>(&j).unwrap(), p);
        let bad = j.replace("\"relu\"", "\"relux\"");
        assert!(serde_json::from_str::<SystolicParams>(&bad).is_err());
    }
}
