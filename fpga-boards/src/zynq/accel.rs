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
            })
            .collect();
        Self {
            name: name.to_string(),
            in_stream_bits,
            out_stream_bits,
            args,
            clock_mhz,
            max_transfer_bytes,
        }
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
        Ok(())
    }

    /// Address bits of the s_axi_control bus: enough for every register, at least 6 (what HLS
    /// emits for four control registers plus a few arguments).
    pub fn ctrl_addr_bits(&self) -> u32 {
        let top = self
            .args
            .iter()
            .map(|a| a.offset + 4)
            .max()
            .unwrap_or(FIRST_ARG_OFFSET);
        let bits = u32::BITS - (top - 1).leading_zeros();
        bits.max(6)
    }

    /// Width of the AXI DMA buffer-length register needed for `max_transfer_bytes`.
    pub fn dma_length_bits(&self) -> u32 {
        let need = u64::BITS - self.max_transfer_bytes.leading_zeros();
        need.clamp(8, DMA_MAX_LENGTH_BITS)
    }

    /// Every register with the constant name the generated Python uses.
    pub fn register_map(&self) -> Vec<Register> {
        let mut regs = vec![
            Register {
                const_name: "REG_AP_CTRL".into(),
                offset: AP_CTRL_OFFSET,
                bits: 8,
                doc: "ap_ctrl: bit0 start, bit1 done, bit2 idle, bit3 ready, bit7 auto_restart"
                    .into(),
            },
            Register {
                const_name: "REG_GIE".into(),
                offset: GIE_OFFSET,
                bits: 1,
                doc: "global interrupt enable".into(),
            },
            Register {
                const_name: "REG_IER".into(),
                offset: IER_OFFSET,
                bits: 2,
                doc: "IP interrupt enable: bit0 done, bit1 ready".into(),
            },
            Register {
                const_name: "REG_ISR".into(),
                offset: ISR_OFFSET,
                bits: 2,
                doc: "IP interrupt status (toggle on write): bit0 done, bit1 ready".into(),
            },
        ];
        regs.extend(self.args.iter().map(|a| Register {
            const_name: arg_const_name(&a.name),
            offset: a.offset,
            bits: a.bits,
            doc: a.doc.clone(),
        }));
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
