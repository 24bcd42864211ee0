//! A register pipeline: `depth` stages of data with a valid bit, reset clears every stage.

use serde::{Deserialize, Serialize};

use super::{check_range, mask};
use crate::design::Design;
use crate::error::Result;
use crate::expr::Expr;
use crate::module::{Module, ModuleBuilder, Stmt};

/// Parameters of [`module`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineParams {
    /// Data width in bits (1..=1024).
    pub width: u32,
    /// Number of register stages (1..=256).
    pub depth: u32,
}

impl PipelineParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        check_range("pipeline", "width", self.width, 1, 1024)?;
        check_range("pipeline", "depth", self.depth, 1, 256)
    }
    /// The module name these parameters produce.
    pub fn module_name(&self) -> String {
        format!("af_pipeline_w{}_d{}", self.width, self.depth)
    }
}

/// Ports: `clk`, `rst`, `in_valid`, `in_data[width]`, `out_valid`, `out_data[width]`.
pub fn module(p: &PipelineParams) -> Result<Module> {
    p.validate()?;
    let mut m = ModuleBuilder::new(&p.module_name())?;
    m.doc(format!(
        "Register pipeline: {} stage(s) of {} data bits plus a valid bit.",
        p.depth, p.width
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let in_valid = m.input("in_valid", 1)?;
    let in_data = m.input("in_data", p.width)?;
    let out_valid = m.output("out_valid", 1)?;
    let out_data = m.output("out_data", p.width)?;
    let mut valid = Vec::new();
    let mut data = Vec::new();
    for s in 0..p.depth {
        valid.push(m.reg(&format!("valid_s{s}"), 1)?);
        data.push(m.reg(&format!("data_s{s}"), p.width)?);
    }
    let mut on_reset = Vec::new();
    let mut advance = Vec::new();
    for s in 0..p.depth as usize {
        on_reset.push(Stmt::set(&valid[s], Expr::bool(false))?);
        on_reset.push(Stmt::set(&data[s], Expr::zero(p.width))?);
        let (v_in, d_in) = if s == 0 {
            (in_valid.e(), in_data.e())
        } else {
            (valid[s - 1].e(), data[s - 1].e())
        };
        advance.push(Stmt::set(&valid[s], v_in)?);
        advance.push(Stmt::set(&data[s], d_in)?);
    }
    m.clocked(&clk, vec![Stmt::if_else(rst.e(), on_reset, advance)?])?;
    let last = p.depth as usize - 1;
    m.assign_sig(&out_valid, valid[last].e())?;
    m.assign_sig(&out_data, data[last].e())?;
    Ok(m.finish())
}

/// The module as a design of its own.
pub fn design(p: &PipelineParams) -> Result<Design> {
    Ok(Design::new(module(p)?, p))
}

/// Cycle-level reference model (data up to 64 bits).
#[derive(Debug, Clone)]
pub struct PipelineModel {
    width: u32,
    stages: Vec<(bool, u64)>,
}

impl PipelineModel {
    /// A model in its reset state.
    pub fn new(p: &PipelineParams) -> Self {
        PipelineModel {
            width: p.width,
            stages: vec![(false, 0); p.depth as usize],
        }
    }
    /// `(out_valid, out_data)` during this cycle.
    pub fn outputs(&self) -> (bool, u64) {
        self.stages.last().copied().unwrap_or((false, 0))
    }
    /// A rising edge with the given inputs.
    pub fn tick(&mut self, rst: bool, in_valid: bool, in_data: u64) {
        if rst {
            self.stages.iter_mut().for_each(|s| *s = (false, 0));
            return;
        }
        self.stages.rotate_right(1);
        self.stages[0] = (in_valid, mask(in_data, self.width));
    }
}
