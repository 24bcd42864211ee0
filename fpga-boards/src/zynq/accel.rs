//! The abstract accelerator a Zynq bundle wraps: stream widths, register arguments, clock.
//! Template crates fill this in; the Verilog wrapper, the TCL, the XDC and the Python driver
//! are all derived from the same value so they cannot disagree.

use serde::{Deserialize, Serialize};

use crate::error::{BoardError, Result};

/// Control register (ap_ctrl) offset.
pub const AP_CTRL_OFFSET: u32 = 0x00;
/// Global interrupt enable offset.
pub const GIE_OFFSET: u32 = 0x04;
/// IP interrupt enable offset.
pub const IER_OFFSET: u32 = 0x08;
/// IP interrupt status offset.
pub const ISR_OFFSET: u32 = 0x0C;
/// First argument offset.
pub const FIRST_ARG_OFFSET: u32 = 0x10;
/// Stride between arguments.
pub const ARG_STRIDE: u32 = 4;
/// ap_ctrl bit: start.
pub const AP_START_BIT: u32 = 0;
/// ap_ctrl bit: done.
pub const AP_DONE_BIT: u32 = 1;
/// ap_ctrl bit: idle.
pub const AP_IDLE_BIT: u32 = 2;
/// ap_ctrl bit: ready.
pub const AP_READY_BIT: u32 = 3;
/// ap_ctrl bit: auto-restart.
pub const AP_AUTO_RESTART_BIT: u32 = 7;

/// AXI DMA simple mode counts bytes in a register of at most 26 bits (PG021).
pub const DMA_MAX_LENGTH_BITS: u32 = 26;

/// The AXI DataMover's bytes-to-transfer field is at most 23 bits (PG022, `c_mm2s_btt_used`
/// 8..=23), so one weight segment is at most 8,388,607 bytes.
pub const DATAMOVER_MAX_BTT_BITS: u32 = 23;
/// Smallest `c_mm2s_btt_used` the DataMover accepts.
pub const DATAMOVER_MIN_BTT_BITS: u32 = 8;
/// Alignment of every weight segment in the packed DDR image. Without the DataMover's
/// realignment engine a transfer must start at a multiple of its stream/memory-map width, which
/// [`AccelInterface`] validation allows up to 1024 bits; 128 bytes covers every width and costs
/// at most 127 bytes of padding per segment.
pub const WEIGHT_SEGMENT_ALIGN: u64 = 128;
/// Fetch status register: a DataMover status reported INTERR, DECERR or SLVERR.
pub const FETCH_ERROR_BIT: u32 = 0;
/// Fetch status register: INTERR seen (e.g. a zero byte count).
pub const FETCH_INTERR_BIT: u32 = 1;
/// Fetch status register: DECERR seen (the address decodes to nothing).
pub const FETCH_DECERR_BIT: u32 = 2;
/// Fetch status register: SLVERR seen (the memory reported an error).
pub const FETCH_SLVERR_BIT: u32 = 3;
/// Fetch status register: a DataMover command is waiting to be accepted.
pub const FETCH_CMD_PENDING_BIT: u32 = 4;
/// Fetch status register: the core asked for a segment id the table does not have; no
/// DataMover command was sent (a zero byte count would stop the DataMover until reset).
pub const FETCH_BAD_ID_BIT: u32 = 5;
/// Fetch status register: low bit of the last status's TAG (4 bits, the segment id's low bits).
pub const FETCH_LAST_TAG_LSB: u32 = 8;
/// Fetch status register: low bit of the 16-bit count of segments completed this command.
pub const FETCH_COUNT_LSB: u32 = 16;

/// Command status register: the core rejected the last command (a size out of range), so it
/// finished at once without output. Cleared when the next command starts.
pub const CMD_ERROR_BIT: u32 = 0;

/// One scalar argument register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegArg {
    /// Identifier (lowercase snake case recommended); also the Python keyword argument.
    pub name: String,
    /// Byte offset in the s_axi_control window (≥ 0x10, multiple of 4).
    pub offset: u32,
    /// Significant bits, 1..=32.
    pub bits: u32,
    /// One-line description for the driver's docstring.
    pub doc: String,
    /// Values the core accepts, inclusive (it rejects others with its `error`); the driver
    /// refuses a value outside before starting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(u64, u64)>,
}

/// The stream lengths of one command, for cores whose batch is fixed by their parameters (the
/// MoE core takes exactly `tokens x d_model` beats and returns as many). The driver then checks
/// the input length and knows the output length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedBatch {
    /// `s_axis_in` beats one command consumes.
    pub in_beats: u64,
    /// `m_axis_out` beats one command produces.
    pub out_beats: u64,
}

/// One read-only status register showing a core output `stat_<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReg {
    /// Counter name; the core's port is `stat_<name>`, the driver's constant `REG_STAT_<NAME>`.
    pub name: String,
    /// Byte offset in the s_axi_control window (≥ 0x10, multiple of 4).
    pub offset: u32,
    /// Significant bits, 1..=32 (the port's width).
    pub bits: u32,
    /// One-line description.
    pub doc: String,
}

/// How a template's weight matrices are laid out in a streamed segment: tiles of `lanes`
/// consecutive rows; in a tile, words of `simd` columns (`kk` = 0, 1, …); in a word, lane-major
/// (`W[t·lanes + lane][kk·simd + s]`); `beat_bytes / elem_bytes` elements per beat, element `i`
/// in bytes `i·elem_bytes ..`, two's complement in the low `elem_bits` bits and zero above; the
/// last beat of a segment is zero-padded. This is the MAC array's weight-buffer word order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightLayout {
    /// Rows per tile (output neurons computed in parallel).
    pub lanes: u32,
    /// Columns per word (inputs per lane per cycle).
    pub simd: u32,
    /// Bits of one weight.
    pub elem_bits: u32,
    /// Bytes one weight occupies on the stream.
    pub elem_bytes: u32,
}

/// One matrix of a weight segment: `arrays[array]` (or `arrays[array][index]`) in the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentMatrix {
    /// Name of the array the host passes (a Python keyword argument of `pack_weights`).
    pub array: String,
    /// Index into the array's first axis, for stacked matrices (one per expert).
    pub index: Option<u32>,
    /// Rows (a multiple of `lanes`).
    pub rows: u32,
    /// Columns (a multiple of `simd`).
    pub cols: u32,
}

/// One segment of the packed weight image: what one weight request fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightSegment {
    /// The id the core puts on `wreq_id` to ask for this segment.
    pub id: u32,
    /// Name for messages and the driver.
    pub name: String,
    /// Byte offset in the image (a multiple of [`WEIGHT_SEGMENT_ALIGN`]).
    pub offset: u64,
    /// Bytes streamed (the DataMover's BTT): whole beats, padding included.
    pub bytes: u64,
    /// The matrices streamed one after another.
    pub matrices: Vec<SegmentMatrix>,
}

/// Weight fetch in the PL: the wrapper turns each `wreq` handshake of the core into an AXI
/// DataMover MM2S command for that segment at `weights_base + offset` and streams the data into
/// the core's `s_axis_w`, so weights come from DDR without the CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightFetch {
    /// Width of the weight stream (`s_axis_w_tdata`), the DataMover's MM2S stream width.
    pub stream_bits: u32,
    /// Address bits of the DataMover command: 32 (Zynq-7000) or 64 (UltraScale+).
    pub addr_bits: u32,
    /// Width of the core's `wreq_id`.
    pub id_bits: u32,
    /// How matrices are packed into segments.
    pub layout: WeightLayout,
    /// The segments in image order.
    pub segments: Vec<WeightSegment>,
    /// Offset of the `weights_base` register (low word; the high word follows at +4 when
    /// `addr_bits` is 64).
    pub base_offset: u32,
    /// Offset of the read-only fetch status register.
    pub status_offset: u32,
}

impl WeightFetch {
    /// Lays `segments` (`(id, name, matrices)`, in image order) out one after another, each
    /// aligned to [`WEIGHT_SEGMENT_ALIGN`] and sized as streamed. Register offsets are left at 0
    /// for [`AccelInterface::with_weight_fetch`] to place.
    pub fn packed(
        stream_bits: u32,
        addr_bits: u32,
        id_bits: u32,
        layout: WeightLayout,
        segments: Vec<(u32, String, Vec<SegmentMatrix>)>,
    ) -> Self {
        let beat = u64::from(stream_bits / 8).max(1);
        let per_beat = (beat / u64::from(layout.elem_bytes.max(1))).max(1);
        let mut offset = 0u64;
        let segments = segments
            .into_iter()
            .map(|(id, name, matrices)| {
                let elems: u64 = matrices
                    .iter()
                    .map(|m| u64::from(m.rows) * u64::from(m.cols))
                    .sum();
                let bytes = elems.div_ceil(per_beat) * beat;
                let seg = WeightSegment {
                    id,
                    name,
                    offset,
                    bytes,
                    matrices,
                };
                offset = (offset + bytes).div_ceil(WEIGHT_SEGMENT_ALIGN) * WEIGHT_SEGMENT_ALIGN;
                seg
            })
            .collect();
        WeightFetch {
            stream_bits,
            addr_bits,
            id_bits,
            layout,
            segments,
            base_offset: 0,
            status_offset: 0,
        }
    }

    /// Bytes of the whole image (the end of the last segment).
    pub fn image_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.offset + s.bytes)
            .max()
            .unwrap_or(0)
    }

    /// Bits of the DataMover's BTT field this design needs (`c_mm2s_btt_used`).
    pub fn btt_bits(&self) -> u32 {
        let largest = self.segments.iter().map(|s| s.bytes).max().unwrap_or(1);
        (u64::BITS - largest.leading_zeros()).clamp(DATAMOVER_MIN_BTT_BITS, DATAMOVER_MAX_BTT_BITS)
    }

    /// Width of the DataMover command word: BTT/type/DSA/EOF/DRR (32 bits), the address, TAG
    /// and reserved (4 + 4): 72 bits with 32-bit addresses, 104 with 64-bit (PG022).
    pub fn cmd_bits(&self) -> u32 {
        32 + self.addr_bits + 8
    }

    /// Memory-map data width of the DataMover: the stream width, at least 32 (PG022: the
    /// stream may not be wider than the memory map, and the memory map is at least 32 bits).
    pub fn mm_bits(&self) -> u32 {
        self.stream_bits.max(32)
    }
}

/// The accelerator's interface as the wrapped Verilog top exposes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccelInterface {
    /// Sanitised module name of the wrapped top, e.g. `af_systolic_top`.
    pub name: String,
    /// TDATA width of `s_axis_in` (8..=1024, a power of two: AXI DMA stream widths).
    pub in_stream_bits: u32,
    /// TDATA width of `m_axis_out`.
    pub out_stream_bits: u32,
    /// Scalar arguments.
    pub args: Vec<RegArg>,
    /// PL clock the design is built for, MHz.
    pub clock_mhz: f64,
    /// Largest single DMA transfer in bytes (sizes the DMA length register).
    pub max_transfer_bytes: u64,
    /// Read-only status registers (the core's `stat_<name>` outputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusReg>,
    /// Weight fetch from DDR through an AXI DataMover, for cores with a weight request port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_fetch: Option<WeightFetch>,
    /// Stream lengths of one command when the core fixes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_batch: Option<FixedBatch>,
}

/// Direction of a top-level port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortDir {
    /// Input.
    Input,
    /// Output.
    Output,
}

/// One port the wrapped Verilog top must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Port name.
    pub name: String,
    /// Direction.
    pub dir: PortDir,
    /// Width in bits.
    pub width: u32,
}

/// One register of the control window, with the constant name the Python driver uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// Python constant name, e.g. `REG_AP_CTRL`, `REG_ARG_SCALE`.
    pub const_name: String,
    /// Byte offset.
    pub offset: u32,
    /// Significant bits.
    pub bits: u32,
    /// Description.
    pub doc: String,
    /// Read-only (status): writes are ignored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    "self",
    "data",
    "out_beats",
    "out_dtype",
    "timeout_s",
];

/// Turns arbitrary text into an identifier valid in Verilog, Tcl, Python and file names:
/// ASCII letters, digits and `_`, not starting with a digit, not a keyword.
pub fn sanitize_identifier(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if accelforge_hdl::ident::is_reserved(&s) || PYTHON_KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

fn is_identifier(s: &str) -> bool {
    sanitize_identifier(s) == s
}

/// The ports the wrapped top has besides its streams and control bus.
const AXI_LITE_PORTS: &[(&str, PortDir, Option<u32>)] = &[
    // None = address width, Some(w) = fixed width.
    ("awaddr", PortDir::Input, None),
    ("awvalid", PortDir::Input, Some(1)),
    ("awready", PortDir::Output, Some(1)),
    ("wdata", PortDir::Input, Some(32)),
    ("wstrb", PortDir::Input, Some(4)),
    ("wvalid", PortDir::Input, Some(1)),
    ("wready", PortDir::Output, Some(1)),
    ("bresp", PortDir::Output, Some(2)),
    ("bvalid", PortDir::Output, Some(1)),
    ("bready", PortDir::Input, Some(1)),
    ("araddr", PortDir::Input, None),
    ("arvalid", PortDir::Input, Some(1)),
    ("arready", PortDir::Output, Some(1)),
    ("rdata", PortDir::Output, Some(32)),
    ("rresp", PortDir::Output, Some(2)),
    ("rvalid", PortDir::Output, Some(1)),
    ("rready", PortDir::Input, Some(1)),
];

impl AccelInterface {
    /// An interface whose arguments sit at 0x10, 0x14, … in the given order.
    pub fn with_sequential_args(
        name: &str,
        in_stream_bits: u32,
        out_stream_bits: u32,
        args: &[(&str, u32, &str)],
        clock_mhz: f64,
        max_transfer_bytes: u64,
    ) -> Self {
        let args = args
            .iter()
            .zip((0u32..).map(|i| FIRST_ARG_OFFSET + ARG_STRIDE * i))
            .map(|((n, bits, doc), offset)| RegArg {
                name: (*n).to_string(),
                offset,
                bits: *bits,
                doc: (*doc).to_string(),
                range: None,
            })
            .collect();
        Self {
            name: name.to_string(),
            in_stream_bits,
            out_stream_bits,
            args,
            clock_mhz,
            max_transfer_bytes,
            status: Vec::new(),
            weight_fetch: None,
            fixed_batch: None,
        }
    }

    /// Declares the values the core accepts for argument `name` (inclusive); the driver checks
    /// them before starting. Fails when there is no such argument or the range is empty or
    /// wider than the register.
    pub fn with_arg_range(mut self, name: &str, min: u64, max: u64) -> Result<Self> {
        let err = self.err(
            format!("args.{name}.range"),
            format!("{min}..={max} is empty or does not fit the register"),
        );
        let Some(a) = self.args.iter_mut().find(|a| a.name == name) else {
            return Err(self.err(format!("args.{name}"), "no such argument"));
        };
        if min > max || max >> a.bits != 0 {
            return Err(err);
        }
        a.range = Some((min, max));
        Ok(self)
    }

    /// Declares that every command moves exactly `batch`'s beats.
    pub fn with_fixed_batch(mut self, batch: FixedBatch) -> Self {
        self.fixed_batch = Some(batch);
        self
    }

    /// Adds weight fetch, placing its registers (`weights_base`, its high word when the
    /// addresses have 64 bits, the fetch status) after every register used so far.
    pub fn with_weight_fetch(mut self, mut fetch: WeightFetch) -> Self {
        let next = self
            .core_register_map()
            .iter()
            .map(|r| r.offset + 4)
            .max()
            .unwrap_or(FIRST_ARG_OFFSET)
            .max(FIRST_ARG_OFFSET);
        fetch.base_offset = next;
        fetch.status_offset = next + if fetch.addr_bits > 32 { 8 } else { 4 };
        self.weight_fetch = Some(fetch);
        self
    }

    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> BoardError {
        BoardError::Interface {
            accel: self.name.clone(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Checks names, widths, offsets and the clock.
    pub fn validate(&self) -> Result<()> {
        if !is_identifier(&self.name) {
            return Err(self.err(
                "name",
                format!(
                    "`{}` is not a sanitised identifier (try `{}`)",
                    self.name,
                    sanitize_identifier(&self.name)
                ),
            ));
        }
        for (field, bits) in [
            ("in_stream_bits", self.in_stream_bits),
            ("out_stream_bits", self.out_stream_bits),
        ] {
            if !(8..=1024).contains(&bits) || !bits.is_power_of_two() {
                return Err(self.err(
                    field,
                    format!("{bits} is not an AXI DMA stream width (8, 16, 32, …, 1024)"),
                ));
            }
        }
        if !self.clock_mhz.is_finite() || self.clock_mhz <= 0.0 {
            return Err(self.err(
                "clock_mhz",
                format!("{} must be a positive number of MHz", self.clock_mhz),
            ));
        }
        let max_len = (1u64 << DMA_MAX_LENGTH_BITS) - 1;
        if self.max_transfer_bytes == 0 || self.max_transfer_bytes > max_len {
            return Err(self.err(
                "max_transfer_bytes",
                format!(
                    "{} must be between 1 and {max_len} (the AXI DMA length register has at most {DMA_MAX_LENGTH_BITS} bits)",
                    self.max_transfer_bytes
                ),
            ));
        }
        let mut used: Vec<(u32, &str)> = Vec::new();
        for (i, a) in self.args.iter().enumerate() {
            let f = |k: &str| format!("args[{i}].{k}");
            if !is_identifier(&a.name) || a.name.starts_with('_') {
                return Err(self.err(
                    f("name"),
                    format!(
                        "`{}` is not a usable identifier (letters, digits, `_`; not a keyword; not starting with `_`)",
                        a.name
                    ),
                ));
            }
            if a.offset < FIRST_ARG_OFFSET || a.offset % ARG_STRIDE != 0 {
                return Err(self.err(
                    f("offset"),
                    format!(
                        "0x{:02X} must be a multiple of 4 at or above 0x10 (0x00-0x0C are ap_ctrl/GIE/IER/ISR)",
                        a.offset
                    ),
                ));
            }
            if a.offset >= 0x1_0000 {
                return Err(self.err(
                    f("offset"),
                    format!("0x{:X} is outside the 64 KiB control window", a.offset),
                ));
            }
            if !(1..=32).contains(&a.bits) {
                return Err(self.err(
                    f("bits"),
                    format!("{} must be 1..=32 (one 32-bit register)", a.bits),
                ));
            }
            if let Some((_, other)) = used.iter().find(|(o, _)| *o == a.offset) {
                return Err(self.err(
                    f("offset"),
                    format!("0x{:02X} is already used by `{other}`", a.offset),
                ));
            }
            if self.args[..i]
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(&a.name))
            {
                return Err(self.err(
                    f("name"),
                    format!(
                        "`{}` repeats an earlier argument (names are compared case-insensitively because the driver's constants are upper case)",
                        a.name
                    ),
                ));
            }
            if a.doc.contains(['\n', '\r']) {
                return Err(self.err(f("doc"), "must be a single line"));
            }
            used.push((a.offset, &a.name));
        }
        for (i, st) in self.status.iter().enumerate() {
            let f = |k: &str| format!("status[{i}].{k}");
            if !is_identifier(&st.name) || st.name.starts_with('_') {
                return Err(self.err(
                    f("name"),
                    format!("`{}` is not a usable identifier", st.name),
                ));
            }
            if !(1..=32).contains(&st.bits) {
                return Err(self.err(
                    f("bits"),
                    format!("{} must be 1..=32 (one 32-bit register)", st.bits),
                ));
            }
            if self.status[..i]
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(&st.name))
            {
                return Err(self.err(f("name"), format!("`{}` repeats", st.name)));
            }
            if st.doc.contains(['\n', '\r']) {
                return Err(self.err(f("doc"), "must be a single line"));
            }
        }
        if let Some(wf) = &self.weight_fetch {
            self.validate_fetch(wf)?;
        }
        if let Some(b) = &self.fixed_batch {
            for (field, beats, bits) in [
                ("in_beats", b.in_beats, self.in_stream_bits),
                ("out_beats", b.out_beats, self.out_stream_bits),
            ] {
                let bytes = beats.saturating_mul(u64::from(bits / 8));
                if beats == 0 || bytes > self.max_transfer_bytes {
                    return Err(self.err(
                        format!("fixed_batch.{field}"),
                        format!(
                            "{beats} beats ({bytes} bytes) must be at least 1 and fit one DMA transfer of at most {} bytes",
                            self.max_transfer_bytes
                        ),
                    ));
                }
            }
        }
        // Every register (arguments, status, fetch) needs its own word.
        let regs = self.register_map();
        for (i, r) in regs.iter().enumerate() {
            if r.offset < FIRST_ARG_OFFSET && i >= 4 {
                return Err(self.err(
                    r.const_name.clone(),
                    format!(
                        "offset 0x{:02X} is below 0x10 (0x00-0x0C are ap_ctrl/GIE/IER/ISR)",
                        r.offset
                    ),
                ));
            }
            if r.offset % ARG_STRIDE != 0 || r.offset >= 0x1_0000 {
                return Err(self.err(
                    r.const_name.clone(),
                    format!(
                        "offset 0x{:X} must be a multiple of 4 inside the 64 KiB window",
                        r.offset
                    ),
                ));
            }
            if let Some(o) = regs[..i].iter().find(|o| o.offset == r.offset) {
                return Err(self.err(
                    r.const_name.clone(),
                    format!(
                        "offset 0x{:02X} is already used by {}",
                        r.offset, o.const_name
                    ),
                ));
            }
            if regs[..i].iter().any(|o| o.const_name == r.const_name) {
                return Err(self.err(
                    r.const_name.clone(),
                    "two registers would get this driver constant",
                ));
            }
        }
        Ok(())
    }

    fn validate_fetch(&self, wf: &WeightFetch) -> Result<()> {
        let e = |field: &str, problem: String| self.err(format!("weight_fetch.{field}"), problem);
        if !(8..=1024).contains(&wf.stream_bits) || !wf.stream_bits.is_power_of_two() {
            return Err(e(
                "stream_bits",
                format!(
                    "a {}-bit ({} byte) weight stream cannot be carried by the AXI DataMover, whose MM2S stream is 8, 16, 32, ..., 1024 bits: use a power-of-two number of bytes per cycle (1, 2, 4, ..., 128)",
                    wf.stream_bits,
                    f64::from(wf.stream_bits) / 8.0
                ),
            ));
        }
        if wf.addr_bits != 32 && wf.addr_bits != 64 {
            return Err(e(
                "addr_bits",
                format!(
                    "{} must be 32 (Zynq-7000) or 64 (UltraScale+)",
                    wf.addr_bits
                ),
            ));
        }
        if !(1..=16).contains(&wf.id_bits) {
            return Err(e("id_bits", format!("{} must be 1..=16", wf.id_bits)));
        }
        let l = &wf.layout;
        let beat = wf.stream_bits / 8;
        if l.lanes == 0
            || l.simd == 0
            || l.elem_bytes == 0
            || l.elem_bits == 0
            || l.elem_bits > 8 * l.elem_bytes
            || l.elem_bits > 32
            || !beat.is_multiple_of(l.elem_bytes)
        {
            return Err(e(
                "layout",
                format!(
                    "lanes {} / simd {} / {}-bit weights in {} byte(s) do not pack into {beat}-byte beats",
                    l.lanes, l.simd, l.elem_bits, l.elem_bytes
                ),
            ));
        }
        if wf.segments.is_empty() {
            return Err(e("segments", "no segments".into()));
        }
        let per_beat = u64::from(beat / l.elem_bytes);
        let max_btt = (1u64 << DATAMOVER_MAX_BTT_BITS) - 1;
        for (i, s) in wf.segments.iter().enumerate() {
            let f = |k: &str| format!("segments[{i}].{k}");
            if u64::from(s.id) >= 1u64 << wf.id_bits {
                return Err(e(
                    &f("id"),
                    format!("{} does not fit the {}-bit wreq_id", s.id, wf.id_bits),
                ));
            }
            if wf.segments[..i].iter().any(|o| o.id == s.id) {
                return Err(e(&f("id"), format!("segment id {} repeats", s.id)));
            }
            if s.bytes == 0 || s.bytes > max_btt {
                return Err(e(
                    &f("bytes"),
                    format!(
                        "segment `{}` is {} bytes; one AXI DataMover command moves 1..={max_btt} bytes (23-bit BTT): use smaller matrices",
                        s.name, s.bytes
                    ),
                ));
            }
            if !s.offset.is_multiple_of(WEIGHT_SEGMENT_ALIGN) {
                return Err(e(
                    &f("offset"),
                    format!("{} is not a multiple of {WEIGHT_SEGMENT_ALIGN}", s.offset),
                ));
            }
            if let Some(o) = wf.segments[..i]
                .iter()
                .find(|o| s.offset < o.offset + o.bytes && o.offset < s.offset + s.bytes)
            {
                return Err(e(
                    &f("offset"),
                    format!("segment `{}` overlaps `{}`", s.name, o.name),
                ));
            }
            let mut elems = 0u64;
            for m in &s.matrices {
                if !is_identifier(&m.array)
                    || m.rows == 0
                    || m.cols == 0
                    || !m.rows.is_multiple_of(l.lanes)
                    || !m.cols.is_multiple_of(l.simd)
                {
                    return Err(e(
                        &f("matrices"),
                        format!(
                            "`{}` ({} x {}) must be a usable name with rows a multiple of lanes {} and columns of simd {}",
                            m.array, m.rows, m.cols, l.lanes, l.simd
                        ),
                    ));
                }
                elems += u64::from(m.rows) * u64::from(m.cols);
            }
            if elems.div_ceil(per_beat) * u64::from(beat) != s.bytes {
                return Err(e(
                    &f("bytes"),
                    format!(
                        "segment `{}` holds {elems} weights, {} bytes as streamed, not {}",
                        s.name,
                        elems.div_ceil(per_beat) * u64::from(beat),
                        s.bytes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Address bits of the s_axi_control bus: enough for every register, at least 6 (what HLS
    /// emits for four control registers plus a few arguments).
    pub fn ctrl_addr_bits(&self) -> u32 {
        let top = self
            .register_map()
            .iter()
            .map(|r| r.offset + 4)
            .max()
            .unwrap_or(FIRST_ARG_OFFSET)
            .max(FIRST_ARG_OFFSET);
        let bits = u32::BITS - (top - 1).leading_zeros();
        bits.max(6)
    }

    /// Width of the AXI DMA buffer-length register needed for `max_transfer_bytes`.
    pub fn dma_length_bits(&self) -> u32 {
        let need = u64::BITS - self.max_transfer_bytes.leading_zeros();
        need.clamp(8, DMA_MAX_LENGTH_BITS)
    }

    /// Offset of the read-only command status register ([`CMD_ERROR_BIT`]): the word after
    /// every other register, so adding it moved no existing offset.
    pub fn cmd_status_offset(&self) -> u32 {
        self.core_register_map()
            .iter()
            .map(|r| r.offset + 4)
            .max()
            .unwrap_or(FIRST_ARG_OFFSET)
            .max(FIRST_ARG_OFFSET)
    }

    /// Every register with the constant name the generated Python uses.
    pub fn register_map(&self) -> Vec<Register> {
        let mut regs = self.core_register_map();
        regs.push(Register {
            const_name: "REG_CMD_STATUS".into(),
            offset: self.cmd_status_offset(),
            bits: 1,
            doc: format!(
                "command status: bit{CMD_ERROR_BIT} error (the core rejected the last command: a size out of range; it finished with ap_done and no output); cleared when a command starts"
            ),
            read_only: true,
        });
        regs
    }

    fn core_register_map(&self) -> Vec<Register> {
        let mut regs = vec![
            Register {
                const_name: "REG_AP_CTRL".into(),
                offset: AP_CTRL_OFFSET,
                bits: 8,
                doc: "ap_ctrl: bit0 start, bit1 done (clear on read), bit2 idle, bit3 ready (clear on read), bit7 auto_restart"
                    .into(),
                read_only: false,
            },
            Register {
                const_name: "REG_GIE".into(),
                offset: GIE_OFFSET,
                bits: 1,
                doc: "global interrupt enable".into(),
                read_only: false,
            },
            Register {
                const_name: "REG_IER".into(),
                offset: IER_OFFSET,
                bits: 2,
                doc: "IP interrupt enable: bit0 done, bit1 ready".into(),
                read_only: false,
            },
            Register {
                const_name: "REG_ISR".into(),
                offset: ISR_OFFSET,
                bits: 2,
                doc: "IP interrupt status (toggle on write): bit0 done, bit1 ready".into(),
                read_only: false,
            },
        ];
        regs.extend(self.args.iter().map(|a| Register {
            const_name: arg_const_name(&a.name),
            offset: a.offset,
            bits: a.bits,
            doc: a.doc.clone(),
            read_only: false,
        }));
        regs.extend(self.status.iter().map(|s| Register {
            const_name: status_const_name(&s.name),
            offset: s.offset,
            bits: s.bits,
            doc: s.doc.clone(),
            read_only: true,
        }));
        if let Some(f) = &self.weight_fetch {
            regs.push(Register {
                const_name: "REG_WEIGHTS_BASE".into(),
                offset: f.base_offset,
                bits: 32,
                doc: "DDR byte address of the packed weight image (low 32 bits)".into(),
                read_only: false,
            });
            if f.addr_bits > 32 {
                regs.push(Register {
                    const_name: "REG_WEIGHTS_BASE_HI".into(),
                    offset: f.base_offset + 4,
                    bits: f.addr_bits - 32,
                    doc: "DDR byte address of the packed weight image (high bits)".into(),
                    read_only: false,
                });
            }
            regs.push(Register {
                const_name: "REG_FETCH_STATUS".into(),
                offset: f.status_offset,
                bits: 32,
                doc: format!(
                    "weight fetch: bit{FETCH_ERROR_BIT} error, bit{FETCH_INTERR_BIT} INTERR, bit{FETCH_DECERR_BIT} DECERR, bit{FETCH_SLVERR_BIT} SLVERR, bit{FETCH_CMD_PENDING_BIT} command pending, bit{FETCH_BAD_ID_BIT} unknown segment id (no command sent), bits{}:{FETCH_LAST_TAG_LSB} last tag, bits31:{FETCH_COUNT_LSB} segments done; cleared when a command starts",
                    FETCH_LAST_TAG_LSB + 3
                ),
                read_only: true,
            });
        }
        regs
    }

    /// The ports the wrapped Verilog top must have, in a fixed order; the Verilog side can
    /// check its module against this, and the Vivado stub uses it for the module reference.
    pub fn expected_ports(&self) -> Vec<PortSpec> {
        let p = |name: String, dir, width| PortSpec { name, dir, width };
        let mut v = vec![
            p("ap_clk".into(), PortDir::Input, 1),
            p("ap_rst_n".into(), PortDir::Input, 1),
        ];
        for (prefix, bits, data_dir) in [
            ("s_axis_in", self.in_stream_bits, PortDir::Input),
            ("m_axis_out", self.out_stream_bits, PortDir::Output),
        ] {
            let back = match data_dir {
                PortDir::Input => PortDir::Output,
                PortDir::Output => PortDir::Input,
            };
            v.push(p(format!("{prefix}_tdata"), data_dir, bits));
            v.push(p(format!("{prefix}_tvalid"), data_dir, 1));
            v.push(p(format!("{prefix}_tready"), back, 1));
            v.push(p(format!("{prefix}_tlast"), data_dir, 1));
            if data_dir == PortDir::Output {
                // All ones: every output byte is valid; the DMA's S2MM channel expects TKEEP.
                v.push(p(format!("{prefix}_tkeep"), data_dir, bits / 8));
            }
        }
        if let Some(f) = &self.weight_fetch {
            v.push(p(
                "m_axis_mm2s_cmd_tdata".into(),
                PortDir::Output,
                f.cmd_bits(),
            ));
            v.push(p("m_axis_mm2s_cmd_tvalid".into(), PortDir::Output, 1));
            v.push(p("m_axis_mm2s_cmd_tready".into(), PortDir::Input, 1));
            v.push(p("s_axis_mm2s_sts_tdata".into(), PortDir::Input, 8));
            v.push(p("s_axis_mm2s_sts_tvalid".into(), PortDir::Input, 1));
            v.push(p("s_axis_mm2s_sts_tready".into(), PortDir::Output, 1));
            v.push(p("s_axis_w_tdata".into(), PortDir::Input, f.stream_bits));
            v.push(p("s_axis_w_tvalid".into(), PortDir::Input, 1));
            v.push(p("s_axis_w_tready".into(), PortDir::Output, 1));
            v.push(p("s_axis_w_tlast".into(), PortDir::Input, 1));
        }
        let addr = self.ctrl_addr_bits();
        for (sig, dir, width) in AXI_LITE_PORTS {
            v.push(p(
                format!("s_axi_control_{sig}"),
                *dir,
                width.unwrap_or(addr),
            ));
        }
        v.push(p("interrupt".into(), PortDir::Output, 1));
        v
    }

    /// Python class name for the driver (CamelCase of the module name).
    pub fn class_name(&self) -> String {
        let mut out = String::new();
        for part in self.name.split('_').filter(|p| !p.is_empty()) {
            let mut cs = part.chars();
            if let Some(c) = cs.next() {
                out.push(c.to_ascii_uppercase());
                out.extend(cs);
            }
        }
        if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert_str(0, "Accel");
        }
        out
    }
}

/// The Python constant name for an argument register.
pub fn arg_const_name(arg: &str) -> String {
    format!("REG_ARG_{}", arg.to_ascii_uppercase())
}

/// The Python constant name for a status register.
pub fn status_const_name(name: &str) -> String {
    format!("REG_STAT_{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the DataMover's realignment engine, the image base (checked by the driver against
    /// this alignment) and every segment must sit on a whole beat of the widest weight stream
    /// validation allows, 1024 bits: 64 bytes let a 64-byte-aligned base through.
    #[test]
    fn segment_alignment_covers_every_datamover_stream_width() {
        for bits in [8u32, 16, 32, 64, 128, 256, 512, 1024] {
            let beat = u64::from(bits / 8);
            assert!(
                WEIGHT_SEGMENT_ALIGN.is_multiple_of(beat),
                "{bits}-bit stream"
            );
            let layout = WeightLayout {
                lanes: 1,
                simd: 1,
                elem_bits: 8,
                elem_bytes: 1,
            };
            let m = |rows| SegmentMatrix {
                array: "w".into(),
                index: None,
                rows,
                cols: 1,
            };
            let wf = WeightFetch::packed(
                bits,
                64,
                4,
                layout,
                vec![
                    (0, "a".into(), vec![m(3)]),
                    (1, "b".into(), vec![m(200)]),
                    (2, "c".into(), vec![m(1)]),
                ],
            );
            for s in &wf.segments {
                assert!(s.offset.is_multiple_of(beat), "{bits}-bit: {s:?}");
            }
        }
    }
}
