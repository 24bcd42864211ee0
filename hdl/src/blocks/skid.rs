//! An AXI4-Stream skid buffer (register slice): full throughput, and every output — including
//! `s_axis_tready` — comes straight from a register, which breaks long timing paths between
//! stream stages.

use serde::{Deserialize, Serialize};

use super::{check_range, mask};
use crate::design::Design;
use crate::error::Result;
use crate::expr::{Expr, Sig};
use crate::module::{Module, ModuleBuilder, Stmt};

/// Parameters of [`module`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkidParams {
    /// `tdata` width (1..=4096).
    pub width: u32,
    /// Whether the stream carries `tlast`.
    pub tlast: bool,
}

impl SkidParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        check_range("skid buffer", "width", self.width, 1, 4096)
    }
    /// The module name these parameters produce.
    pub fn module_name(&self) -> String {
        format!(
            "af_skid_w{}{}",
            self.width,
            if self.tlast { "_last" } else { "" }
        )
    }
}

/// Ports: `clk`, `rst`, `s_axis_tdata/tvalid/tready[/tlast]`, `m_axis_tdata/tvalid/tready[/tlast]`.
pub fn module(p: &SkidParams) -> Result<Module> {
    p.validate()?;
    // tlast travels as the top bit of the stored word, so one datapath serves both variants.
    let w = p.width + u32::from(p.tlast);
    let mut m = ModuleBuilder::new(&p.module_name())?;
    m.doc(format!(
        "AXI4-Stream skid buffer, {} data bits{}.",
        p.width,
        if p.tlast { " with TLAST" } else { "" }
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let s_data = m.input("s_axis_tdata", p.width)?;
    let s_valid = m.input("s_axis_tvalid", 1)?;
    let s_ready = m.output("s_axis_tready", 1)?;
    let s_last = if p.tlast {
        Some(m.input("s_axis_tlast", 1)?)
    } else {
        None
    };
    let m_data = m.output("m_axis_tdata", p.width)?;
    let m_valid = m.output("m_axis_tvalid", 1)?;
    let m_ready = m.input("m_axis_tready", 1)?;
    let m_last = if p.tlast {
        Some(m.output("m_axis_tlast", 1)?)
    } else {
        None
    };

    let in_word = match &s_last {
        Some(l) => Expr::concat(&[l.e(), s_data.e()])?,
        None => s_data.e(),
    };
    let out_word = m.reg("out_word", w)?;
    let out_valid = m.reg("out_valid", 1)?;
    let skid_word = m.reg("skid_word", w)?;
    let skid_valid = m.reg("skid_valid", 1)?;

    m.assign_sig(&s_ready, skid_valid.e().logic_not())?;
    m.assign_sig(&m_valid, out_valid.e())?;
    let split = |sig: &Sig, data: &Sig, last: &Option<Sig>, b: &mut ModuleBuilder| -> Result<()> {
        b.assign_sig(data, sig.slice(p.width - 1, 0)?)?;
        if let Some(l) = last {
            b.assign_sig(l, sig.bit(p.width)?)?;
        }
        Ok(())
    };
    split(&out_word, &m_data, &m_last, &mut m)?;

    let out_free = m.wire_from(
        "out_free",
        m_ready.e().logic_or(&out_valid.e().logic_not())?,
    )?;
    m.comment("The output register takes a new word whenever it is empty or being read; a word\nthat arrives while it is stalled waits in the skid register, and tready drops.");
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&out_valid, Expr::bool(false))?,
                Stmt::set(&skid_valid, Expr::bool(false))?,
            ],
            vec![Stmt::if_else(
                out_free.e(),
                vec![Stmt::if_else(
                    skid_valid.e(),
                    vec![
                        Stmt::set(&out_word, skid_word.e())?,
                        Stmt::set(&out_valid, Expr::bool(true))?,
                        Stmt::set(&skid_valid, Expr::bool(false))?,
                    ],
                    vec![
                        Stmt::set(&out_word, in_word.clone())?,
                        Stmt::set(&out_valid, s_valid.e())?,
                    ],
                )?],
                vec![Stmt::if_(
                    s_valid.e().logic_and(&skid_valid.e().logic_not())?,
                    vec![
                        Stmt::set(&skid_word, in_word)?,
                        Stmt::set(&skid_valid, Expr::bool(true))?,
                    ],
                )?],
            )?],
        )?],
    )?;
    Ok(m.finish())
}

/// The module as a design of its own.
pub fn design(p: &SkidParams) -> Result<Design> {
    Ok(Design::new(module(p)?, p))
}

/// What the skid buffer shows during a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkidOutputs {
    /// `s_axis_tready`
    pub s_ready: bool,
    /// `m_axis_tvalid`
    pub m_valid: bool,
    /// `(m_axis_tdata, m_axis_tlast)`, meaningful when `m_valid`.
    pub m_word: (u64, bool),
}

/// Cycle-level reference model (data up to 64 bits).
#[derive(Debug, Clone)]
pub struct SkidModel {
    width: u32,
    out: Option<(u64, bool)>,
    skid: Option<(u64, bool)>,
}

impl SkidModel {
    /// Empty after reset.
    pub fn new(p: &SkidParams) -> Self {
        SkidModel {
            width: p.width,
            out: None,
            skid: None,
        }
    }
    /// Ports during this cycle.
    pub fn outputs(&self) -> SkidOutputs {
        SkidOutputs {
            s_ready: self.skid.is_none(),
            m_valid: self.out.is_some(),
            m_word: self.out.unwrap_or((0, false)),
        }
    }
    /// A rising edge with the input word offered (`Some` = tvalid high) and the output's tready.
    pub fn tick(&mut self, rst: bool, input: Option<(u64, bool)>, m_ready: bool) {
        if rst {
            self.out = None;
            self.skid = None;
            return;
        }
        let input = input.map(|(d, l)| (mask(d, self.width), l));
        if m_ready || self.out.is_none() {
            if let Some(w) = self.skid.take() {
                self.out = Some(w);
            } else {
                self.out = input;
            }
        } else if self.skid.is_none() {
            self.skid = input;
        }
    }
}
