//! The board schema: one TOML file per board, every fact next to where it came from.

use serde::{Deserialize, Serialize};

use crate::error::{BoardError, Result};

/// A value together with the document it was taken from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sourced<T> {
    /// The value itself.
    pub value: T,
    /// Where it came from, e.g. `"DS190 ... (datasheet)"`.
    pub source: String,
    /// True when only a datasheet backs the value (not cross-checked against Vivado or board
    /// files); shown as `(ds)` by the CLI.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub datasheet_only: bool,
}

/// Device family, named as Yosys `synth_xilinx -family` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 7-series (Zynq-7000).
    Xc7,
    /// UltraScale+ (Zynq UltraScale+ MPSoC, Kria).
    Xcup,
}

impl Family {
    /// The Yosys `synth_xilinx -family` argument.
    pub fn yosys_name(self) -> &'static str {
        match self {
            Family::Xc7 => "xc7",
            Family::Xcup => "xcup",
        }
    }
    /// The DSP slice this family has.
    pub fn dsp_type(self) -> DspType {
        match self {
            Family::Xc7 => DspType::Dsp48e1,
            Family::Xcup => DspType::Dsp48e2,
        }
    }
    /// The processing system this family has.
    pub fn ps_type(self) -> PsType {
        match self {
            Family::Xc7 => PsType::Ps7,
            Family::Xcup => PsType::Psu,
        }
    }
}

/// DSP slice primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DspType {
    /// 25×18 multiplier, 7-series.
    #[serde(rename = "DSP48E1")]
    Dsp48e1,
    /// 27×18 multiplier, UltraScale+.
    #[serde(rename = "DSP48E2")]
    Dsp48e2,
}

impl DspType {
    /// Vivado/Yosys primitive name.
    pub fn name(self) -> &'static str {
        match self {
            DspType::Dsp48e1 => "DSP48E1",
            DspType::Dsp48e2 => "DSP48E2",
        }
    }
}

/// Processing-system IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsType {
    /// Zynq-7000 `processing_system7`.
    Ps7,
    /// Zynq UltraScale+ `zynq_ultra_ps_e`.
    Psu,
}

impl PsType {
    /// The Vivado IP name (library `xilinx.com:ip`).
    pub fn ip_name(self) -> &'static str {
        match self {
            PsType::Ps7 => "processing_system7",
            PsType::Psu => "zynq_ultra_ps_e",
        }
    }
}

/// The DSP count and which primitive it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspSlices {
    /// Number of DSP slices.
    pub value: u64,
    /// Primitive; must match the family.
    #[serde(rename = "type")]
    pub dsp_type: DspType,
    /// Where the count came from.
    pub source: String,
    /// True when only a datasheet backs the count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub datasheet_only: bool,
}

/// Programmable-logic totals of the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// 6-input LUTs.
    pub lut: Sourced<u64>,
    /// Flip-flops.
    pub ff: Sourced<u64>,
    /// DSP slices.
    pub dsp: DspSlices,
    /// 36 Kb block RAMs.
    pub bram36: Sourced<u64>,
    /// 288 Kb UltraRAMs (0 on most devices).
    pub uram: Sourced<u64>,
}

/// Clocking defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// PL clock the generators use when the caller does not ask for one, MHz.
    pub default_pl_mhz: Sourced<f64>,
}

/// The PS-attached DRAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ddr {
    /// Memory type, e.g. `DDR3`, `LPDDR4`.
    #[serde(rename = "type")]
    pub kind: Sourced<String>,
    /// Bus width in bits.
    pub width_bits: Sourced<u32>,
    /// Transfer rate in MT/s.
    pub rate_mts: Sourced<f64>,
    /// Peak bandwidth in GB/s (10^9 bytes per second).
    pub peak_gbps: Sourced<f64>,
    /// Capacity in MiB.
    pub size_mb: Sourced<u64>,
}

/// Whether the PL side of a PS–PL port is the AXI master or slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortDirection {
    /// The PS port is a slave: PL masters (e.g. a DMA) reach DDR through it.
    Slave,
    /// The PS port is a master: the CPU reaches PL registers through it.
    Master,
}

/// One PS–PL AXI port as the PS IP names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsPlPort {
    /// Interface name on the PS IP, e.g. `S_AXI_HP0` or `S_AXI_HP0_FPD`.
    pub name: String,
    /// Master or slave (from the PS's point of view).
    pub direction: PortDirection,
    /// Selectable data widths in bits.
    pub widths: Vec<u32>,
    /// Free-form remark (sharing, coherency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where the port facts came from.
    pub source: String,
}

/// One board, as stored in `boards/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Lowercase identifier, e.g. `pynq-z2`; must equal the file stem.
    pub name: String,
    /// Human-readable name, e.g. `PYNQ-Z2`.
    pub display_name: String,
    /// Board vendor.
    pub vendor: String,
    /// Device family.
    pub family: Family,
    /// Processing system type; must match the family.
    pub ps: PsType,
    /// Full Vivado part name.
    pub part: Sourced<String>,
    /// Vivado board part (used only when the board files are installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_part: Option<Sourced<String>>,
    /// Other names the same board files are installed under (another vendor prefix or board
    /// name, e.g. the ZedBoard files Vivado ships as `avnet.com:zedboard:part0:1.4`); build.tcl
    /// takes the first of `board_part` and these that is installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub board_part_alternates: Vec<String>,
    /// Device totals.
    pub resources: Resources,
    /// Application processor.
    pub cpu: Sourced<String>,
    /// Clock defaults.
    pub clock: Clock,
    /// PS DRAM.
    pub ddr: Ddr,
    /// PS–PL AXI ports.
    pub ps_pl_ports: Vec<PsPlPort>,
}

/// Relative tolerance for the DDR peak-bandwidth consistency check; the reference rounds to
/// two decimals (4.27 GB/s for 1067 MT/s × 4 B), so 2 % is plenty and still catches a wrong width.
const DDR_PEAK_TOLERANCE: f64 = 0.02;

impl Board {
    /// 18 Kb block RAMs: every BRAM36 splits into two.
    pub fn bram18(&self) -> u64 {
        self.resources.bram36.value.saturating_mul(2)
    }

    /// Default PL clock in MHz.
    pub fn default_clock_mhz(&self) -> f64 {
        self.clock.default_pl_mhz.value
    }

    /// Peak DDR bytes available per PL clock cycle at `pl_clock_mhz` (what a streaming
    /// accelerator can hope to get from memory each cycle, before port limits).
    pub fn ddr_bytes_per_pl_cycle(&self, pl_clock_mhz: f64) -> f64 {
        if pl_clock_mhz <= 0.0 || !pl_clock_mhz.is_finite() {
            return 0.0;
        }
        self.ddr.peak_gbps.value * 1e9 / (pl_clock_mhz * 1e6)
    }

    /// Peak DDR bytes per cycle at the board's default PL clock.
    pub fn ddr_bytes_per_default_cycle(&self) -> f64 {
        self.ddr_bytes_per_pl_cycle(self.default_clock_mhz())
    }

    /// The PS–PL port with this name (exact, as Vivado spells it).
    pub fn port(&self, name: &str) -> Option<&PsPlPort> {
        self.ps_pl_ports.iter().find(|p| p.name == name)
    }

    /// Highest PL clock (MHz) the generators accept for this family. The PS clock generators
    /// can produce more, but beyond these the PL fabric of the slowest speed grade on our boards
    /// will not close timing for anything useful.
    pub fn max_pl_clock_mhz(&self) -> f64 {
        match self.family {
            Family::Xc7 => 250.0,
            Family::Xcup => 400.0,
        }
    }

    /// Checks every value for plausibility. `file` is used in messages only.
    pub fn validate(&self, file: &str) -> Result<()> {
        let bad = |key: &str, problem: String| BoardError::Invalid {
            file: file.to_string(),
            key: key.to_string(),
            problem,
        };
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !self.name.starts_with('-')
            && !self.name.ends_with('-');
        if !name_ok {
            return Err(bad(
                "name",
                format!(
                    "`{}` must be a lowercase id of letters, digits and single dashes, e.g. `pynq-z2`",
                    self.name
                ),
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err(bad("display_name", "must not be empty".into()));
        }
        // These strings reach comments and docstrings of generated Tcl, XDC and Python: a line
        // break or a trailing backslash would end (or extend) a comment there.
        for (key, v) in [
            ("display_name", &self.display_name),
            ("vendor", &self.vendor),
        ] {
            if let Some(c) = v.chars().find(|c| c.is_control() || *c == '\\') {
                return Err(bad(
                    key,
                    format!(
                        "`{}` contains {c:?}; use printable text without control characters or backslashes",
                        v.escape_debug()
                    ),
                ));
            }
        }
        // Part names reach Tcl commands: keep them to the characters Vivado's names use.
        let name_chars = |v: &str| {
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        };
        if !self.board_part_alternates.is_empty() && self.board_part.is_none() {
            return Err(bad(
                "board_part_alternates",
                "needs a [board_part] (the primary name)".into(),
            ));
        }
        for a in &self.board_part_alternates {
            if a.split(':').count() != 4 {
                return Err(bad(
                    "board_part_alternates",
                    format!(
                        "`{}` is not a Vivado board part (vendor:board:part0:version)",
                        a.escape_debug()
                    ),
                ));
            }
        }
        for (key, v) in std::iter::once(("part.value", &self.part.value))
            .chain(
                self.board_part
                    .iter()
                    .map(|b| ("board_part.value", &b.value)),
            )
            .chain(
                self.board_part_alternates
                    .iter()
                    .map(|a| ("board_part_alternates", a)),
            )
        {
            if !name_chars(v) {
                return Err(bad(
                    key,
                    format!(
                        "`{}` may contain only letters, digits and . _ : - (it is written into Tcl)",
                        v.escape_debug()
                    ),
                ));
            }
        }
        if self.vendor.trim().is_empty() {
            return Err(bad("vendor", "must not be empty".into()));
        }
        check_text(&self.part, "part", file)?;
        let part = self.part.value.to_ascii_lowercase();
        let part_family = if part.starts_with("xc7z") || part.starts_with("xa7z") {
            Some(Family::Xc7)
        } else if part.starts_with("xczu") || part.starts_with("xck") || part.starts_with("xazu") {
            Some(Family::Xcup)
        } else {
            None
        };
        match part_family {
            None => {
                return Err(bad(
                    "part.value",
                    format!(
                        "`{}` is not a Zynq-7000 (xc7z…) or Zynq UltraScale+ (xczu…, xck…) part",
                        self.part.value
                    ),
                ));
            }
            Some(f) if f != self.family => {
                return Err(bad(
                    "family",
                    format!(
                        "`{}` does not match part `{}` (expected `{}`)",
                        self.family.yosys_name(),
                        self.part.value,
                        f.yosys_name()
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some(bp) = &self.board_part {
            check_text(bp, "board_part", file)?;
            if bp.value.split(':').count() != 4 {
                return Err(bad(
                    "board_part.value",
                    format!(
                        "`{}` is not a Vivado board part (vendor:board:part0:version)",
                        bp.value
                    ),
                ));
            }
        }
        if self.ps != self.family.ps_type() {
            return Err(bad(
                "ps",
                format!(
                    "`{}` does not match family `{}` (expected `{}`)",
                    self.ps.ip_name(),
                    self.family.yosys_name(),
                    self.family.ps_type().ip_name()
                ),
            ));
        }
        let r = &self.resources;
        for (key, v) in [
            ("resources.lut", &r.lut),
            ("resources.ff", &r.ff),
            ("resources.bram36", &r.bram36),
        ] {
            if v.value == 0 {
                return Err(bad(
                    &format!("{key}.value"),
                    "must be greater than 0".into(),
                ));
            }
            check_source(&v.source, key, file)?;
        }
        check_source(&r.uram.source, "resources.uram", file)?;
        if r.dsp.value == 0 {
            return Err(bad("resources.dsp.value", "must be greater than 0".into()));
        }
        check_source(&r.dsp.source, "resources.dsp", file)?;
        if r.dsp.dsp_type != self.family.dsp_type() {
            return Err(bad(
                "resources.dsp.type",
                format!(
                    "`{}` does not match family `{}` (expected `{}`)",
                    r.dsp.dsp_type.name(),
                    self.family.yosys_name(),
                    self.family.dsp_type().name()
                ),
            ));
        }
        // Every slice has 8 flip-flops per 4 LUTs on both families; a ratio other than 2 means a
        // typo in one of the two numbers.
        if r.ff.value != r.lut.value.saturating_mul(2) {
            return Err(bad(
                "resources.ff.value",
                format!(
                    "{} is not 2 × LUT ({}); both families have two flip-flops per LUT",
                    r.ff.value, r.lut.value
                ),
            ));
        }
        if self.family == Family::Xc7 && r.uram.value != 0 {
            return Err(bad(
                "resources.uram.value",
                "Zynq-7000 devices have no UltraRAM; must be 0".into(),
            ));
        }
        check_text(&self.cpu, "cpu", file)?;
        let clk = self.clock.default_pl_mhz.value;
        if !clk.is_finite() || clk <= 0.0 || clk > self.max_pl_clock_mhz() {
            return Err(bad(
                "clock.default_pl_mhz.value",
                format!(
                    "{clk} MHz is not a usable PL clock (must be > 0 and at most {} MHz)",
                    self.max_pl_clock_mhz()
                ),
            ));
        }
        check_source(
            &self.clock.default_pl_mhz.source,
            "clock.default_pl_mhz",
            file,
        )?;
        let d = &self.ddr;
        check_text(&d.kind, "ddr.type", file)?;
        if !matches!(d.width_bits.value, 8 | 16 | 32 | 64 | 72 | 128 | 256) {
            return Err(bad(
                "ddr.width_bits.value",
                format!("{} is not a DRAM bus width", d.width_bits.value),
            ));
        }
        check_source(&d.width_bits.source, "ddr.width_bits", file)?;
        for (key, v) in [
            ("ddr.rate_mts", &d.rate_mts),
            ("ddr.peak_gbps", &d.peak_gbps),
        ] {
            if !v.value.is_finite() || v.value <= 0.0 {
                return Err(bad(
                    &format!("{key}.value"),
                    format!("{} must be a positive number", v.value),
                ));
            }
            check_source(&v.source, key, file)?;
        }
        let computed = f64::from(d.width_bits.value) / 8.0 * d.rate_mts.value / 1000.0;
        if (computed - d.peak_gbps.value).abs() > DDR_PEAK_TOLERANCE * computed {
            return Err(bad(
                "ddr.peak_gbps.value",
                format!(
                    "{} GB/s disagrees with width × rate = {} bit × {} MT/s = {computed:.2} GB/s",
                    d.peak_gbps.value, d.width_bits.value, d.rate_mts.value
                ),
            ));
        }
        if d.size_mb.value == 0 {
            return Err(bad("ddr.size_mb.value", "must be greater than 0".into()));
        }
        check_source(&d.size_mb.source, "ddr.size_mb", file)?;
        if !self
            .ps_pl_ports
            .iter()
            .any(|p| p.direction == PortDirection::Slave)
        {
            return Err(bad(
                "ps_pl_ports",
                "needs at least one slave (HP/HPC) port for DMA".into(),
            ));
        }
        if !self
            .ps_pl_ports
            .iter()
            .any(|p| p.direction == PortDirection::Master)
        {
            return Err(bad(
                "ps_pl_ports",
                "needs at least one master (GP/HPM) port for register access".into(),
            ));
        }
        for (i, p) in self.ps_pl_ports.iter().enumerate() {
            let key = format!("ps_pl_ports[{i}]");
            if p.name.trim().is_empty() {
                return Err(bad(&format!("{key}.name"), "must not be empty".into()));
            }
            if p.widths.is_empty()
                || p.widths
                    .iter()
                    .any(|w| !matches!(w, 32 | 64 | 128 | 256 | 512))
            {
                return Err(bad(
                    &format!("{key}.widths"),
                    format!(
                        "{:?}: need a non-empty list of AXI data widths (32, 64, 128, …)",
                        p.widths
                    ),
                ));
            }
            check_source(&p.source, &key, file)?;
            if self.ps_pl_ports[..i].iter().any(|q| q.name == p.name) {
                return Err(bad(
                    &format!("{key}.name"),
                    format!("port `{}` listed twice", p.name),
                ));
            }
        }
        Ok(())
    }
}

fn check_source(source: &str, key: &str, file: &str) -> Result<()> {
    if source.trim().is_empty() {
        return Err(BoardError::Invalid {
            file: file.to_string(),
            key: format!("{key}.source"),
            problem: "every value needs a source (document, table or measurement)".into(),
        });
    }
    Ok(())
}

fn check_text(v: &Sourced<String>, key: &str, file: &str) -> Result<()> {
    if v.value.trim().is_empty() {
        return Err(BoardError::Invalid {
            file: file.to_string(),
            key: format!("{key}.value"),
            problem: "must not be empty".into(),
        });
    }
    check_source(&v.source, key, file)
}

/// Parses and validates one board file's text. `file` names it in error messages.
pub fn parse_board(text: &str, file: &str) -> Result<Board> {
    let de = toml::Deserializer::new(text);
    let board: Board = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // toml's message carries a line/column excerpt; keep its first and last line only so the
        // error stays one readable line plus the position.
        let msg = inner.message().to_string();
        let line = inner
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = match line {
            Some(l) => format!("{msg} (line {l})"),
            None => msg,
        };
        BoardError::Parse {
            file: file.to_string(),
            key: path,
            message,
        }
    })?;
    board.validate(file)?;
    Ok(board)
}
