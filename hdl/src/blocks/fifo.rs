//! A synchronous first-word-fall-through FIFO with full/empty flags and an occupancy count.
//!
//! A push is accepted when `push && !full`, a pop when `pop && !empty`; both in one cycle are
//! both accepted (so a FIFO that is neither full nor empty streams at one word per cycle and
//! never loses or repeats a word). `pop_data` shows the oldest word whenever `!empty`.

use serde::{Deserialize, Serialize};

use super::{check_range, mask};
use crate::design::Design;
use crate::error::Result;
use crate::expr::{Expr, clog2};
use crate::module::{LValue, Module, ModuleBuilder, Stmt};

/// Parameters of [`module`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FifoParams {
    /// Word width (1..=1024).
    pub width: u32,
    /// Number of words (2..=65536; any value, not only powers of two).
    pub depth: u32,
}

impl FifoParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        check_range("fifo", "width", self.width, 1, 1024)?;
        check_range("fifo", "depth", self.depth, 2, 65_536)
    }
    /// The module name these parameters produce.
    pub fn module_name(&self) -> String {
        format!("af_fifo_w{}_d{}", self.width, self.depth)
    }
    /// Width of the `count` port: enough for 0..=depth.
    pub fn count_width(&self) -> u32 {
        clog2(u64::from(self.depth) + 1)
    }
}

/// Ports: `clk`, `rst`, `push`, `push_data`, `full`, `pop`, `pop_data`, `empty`, `count`.
pub fn module(p: &FifoParams) -> Result<Module> {
    p.validate()?;
    let mut m = ModuleBuilder::new(&p.module_name())?;
    m.doc(format!(
        "Synchronous FWFT FIFO: {} words of {} bits.",
        p.depth, p.width
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let push = m.input("push", 1)?;
    let push_data = m.input("push_data", p.width)?;
    let full = m.output("full", 1)?;
    let pop = m.input("pop", 1)?;
    let pop_data = m.output("pop_data", p.width)?;
    let empty = m.output("empty", 1)?;
    let cw = p.count_width();
    let count_out = m.output("count", cw)?;

    let mem = m.memory("storage", p.width, p.depth, false, None)?;
    let aw = mem.addr_width();
    let wr_ptr = m.reg("wr_ptr", aw)?;
    let rd_ptr = m.reg("rd_ptr", aw)?;
    let count = m.reg("occupancy", cw)?;

    let is_full = count.e().eq(&Expr::lit(u128::from(p.depth), cw)?)?;
    let is_empty = count.e().eq(&Expr::zero(cw))?;
    m.assign_sig(&full, is_full.clone())?;
    m.assign_sig(&empty, is_empty.clone())?;
    m.assign_sig(&count_out, count.e())?;
    m.assign_sig(&pop_data, mem.read(&rd_ptr.e())?)?;

    let do_push = m.wire_from("do_push", push.e().logic_and(&is_full.logic_not())?)?;
    let do_pop = m.wire_from("do_pop", pop.e().logic_and(&is_empty.logic_not())?)?;
    // Pointers wrap at depth-1 explicitly, so depths that are not powers of two work.
    let last = Expr::lit(u128::from(p.depth - 1), aw)?;
    let one = Expr::lit(1, aw)?;
    let next = |ptr: &crate::expr::Sig| -> Result<Expr> {
        Expr::mux(&ptr.e().eq(&last)?, &Expr::zero(aw), &ptr.e().add(&one)?)
    };
    let c_one = Expr::lit(1, cw)?;
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&wr_ptr, Expr::zero(aw))?,
                Stmt::set(&rd_ptr, Expr::zero(aw))?,
                Stmt::set(&count, Expr::zero(cw))?,
            ],
            vec![
                Stmt::if_(
                    do_push.e(),
                    vec![
                        Stmt::assign(LValue::word(&mem, &wr_ptr.e())?, push_data.e())?,
                        Stmt::set(&wr_ptr, next(&wr_ptr)?)?,
                    ],
                )?,
                Stmt::if_(do_pop.e(), vec![Stmt::set(&rd_ptr, next(&rd_ptr)?)?])?,
                Stmt::if_else(
                    do_push.e().logic_and(&do_pop.e().logic_not())?,
                    vec![Stmt::set(&count, count.e().add(&c_one)?)?],
                    vec![Stmt::if_(
                        do_pop.e().logic_and(&do_push.e().logic_not())?,
                        vec![Stmt::set(&count, count.e().sub(&c_one)?)?],
                    )?],
                )?,
            ],
        )?],
    )?;
    Ok(m.finish())
}

/// The module as a design of its own.
pub fn design(p: &FifoParams) -> Result<Design> {
    Ok(Design::new(module(p)?, p))
}

/// What the FIFO shows during a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FifoOutputs {
    /// `full`
    pub full: bool,
    /// `empty`
    pub empty: bool,
    /// `count`
    pub count: u32,
    /// `pop_data`, meaningful when `!empty`.
    pub pop_data: Option<u64>,
}

/// Cycle-level reference model (words up to 64 bits).
#[derive(Debug, Clone)]
pub struct FifoModel {
    params: FifoParams,
    words: std::collections::VecDeque<u64>,
}

impl FifoModel {
    /// An empty FIFO.
    pub fn new(p: &FifoParams) -> Self {
        FifoModel {
            params: *p,
            words: Default::default(),
        }
    }
    /// Ports during this cycle.
    pub fn outputs(&self) -> FifoOutputs {
        FifoOutputs {
            full: self.words.len() == self.params.depth as usize,
            empty: self.words.is_empty(),
            count: self.words.len() as u32,
            pop_data: self.words.front().copied(),
        }
    }
    /// A rising edge; returns `(push accepted, popped word)`.
    pub fn tick(
        &mut self,
        rst: bool,
        push: bool,
        push_data: u64,
        pop: bool,
    ) -> (bool, Option<u64>) {
        if rst {
            self.words.clear();
            return (false, None);
        }
        let o = self.outputs();
        let popped = if pop && !o.empty {
            self.words.pop_front()
        } else {
            None
        };
        let pushed = push && !o.full;
        if pushed {
            self.words.push_back(mask(push_data, self.params.width));
        }
        (pushed, popped)
    }
}
