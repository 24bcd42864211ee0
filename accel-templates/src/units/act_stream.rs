//! An activation ([`super::activation`]) as a streaming kernel, `act_stream`: one command of
//! `cmd_beats` beats, `lanes` elements per beat, each through the activation's logic, one
//! register stage that stalls under output back-pressure; `done` the cycle after the last output
//! beat. What runs GELU between an encoder block's two MLP projections.
//!
//! Cycles from command acceptance to `done` with streams that never stall: `beats + 2`
//! ([`cycles`]).

use accelforge_hdl::helpers::{eq_c, lit};
use accelforge_hdl::{Design, Expr, ModuleBuilder, Stmt};
use serde::Serialize;

use super::Result;
use super::activation::{ActivationParams, emit_activation};
use crate::attention::params::slot_bytes;

/// Name of the top module.
pub const TOP: &str = "act_stream";

/// The unit: an activation and its lanes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActStream {
    /// The function and its types.
    pub act: ActivationParams,
    /// Elements per beat.
    pub lanes: u32,
}

impl ActStream {
    /// Bits of one element's slot (a power-of-two number of bytes).
    pub fn slot_in(&self) -> u32 {
        slot_bytes(self.act.input.width()) * 8
    }
    /// See [`ActStream::slot_in`].
    pub fn slot_out(&self) -> u32 {
        slot_bytes(self.act.output.width()) * 8
    }
}

/// Cycles of a command of `beats` beats, acceptance to `done`.
pub fn cycles(beats: u64) -> u64 {
    beats + 2
}

/// The unit's design.
pub fn design(u: &ActStream) -> Result<Design> {
    u.act.validate()?;
    if !(1..=64).contains(&u.lanes) {
        return Err(super::UnitError::Unsupported(format!(
            "lanes = {} is outside 1..=64",
            u.lanes
        )));
    }
    let (l, wi, wo) = (u.lanes, u.act.input.width(), u.act.output.width());
    let (si, so) = (u.slot_in(), u.slot_out());
    let mut m = ModuleBuilder::new(TOP)?;
    m.doc(format!(
        "Streaming activation {:?}: {} -> {}, {} per beat.",
        u.act.kind, u.act.input, u.act.output, l
    ));
    let clk = m.input("clk", 1)?;
    let rst = m.input("rst", 1)?;
    let cmd_valid = m.input("cmd_valid", 1)?;
    let cmd_beats = m.input("cmd_beats", 32)?;
    let cmd_ready = m.output("cmd_ready", 1)?;
    let done = m.output_reg("done", 1)?;
    let s_tdata = m.input("s_axis_tdata", l * si)?;
    let s_tvalid = m.input("s_axis_tvalid", 1)?;
    let s_tready = m.output("s_axis_tready", 1)?;
    let m_tdata = m.output("m_axis_tdata", l * so)?;
    let m_tvalid = m.output("m_axis_tvalid", 1)?;
    let m_tready = m.input("m_axis_tready", 1)?;
    let m_tlast = m.output("m_axis_tlast", 1)?;
    if si > wi {
        m.allow_unused("s_axis_tdata")?;
    }

    let busy = m.reg("busy", 1)?;
    let left = m.reg("left", 32)?;
    let out_left = m.reg("out_left", 32)?;
    let ov = m.reg("ov", 1)?;
    m.assign_sig(&cmd_ready, busy.e().logic_not())?;
    let adv = m.wire_from("adv", ov.e().logic_not().logic_or(&m_tready.e())?)?;
    let taking = busy
        .e()
        .logic_and(&left.e().ne(&lit(0, 32)?)?)?
        .logic_and(&adv.e())?;
    m.assign_sig(&s_tready, taking.clone())?;
    let in_fire = m.wire_from("in_fire", taking.logic_and(&s_tvalid.e())?)?;
    let out_fire = m.wire_from("out_fire", ov.e().logic_and(&m_tready.e())?)?;
    m.assign_sig(&m_tvalid, ov.e())?;
    m.assign_sig(&m_tlast, eq_c(&out_left.e(), 1)?)?;

    let mut outs = Vec::new();
    let mut regs = Vec::new();
    for i in 0..l {
        let xe = s_tdata.slice(i * si + wi - 1, i * si)?;
        let x = if u.act.input.is_signed() {
            m.wire_from(&format!("x{i}"), xe.as_signed())?
        } else {
            m.wire_from(&format!("x{i}"), xe)?
        };
        let y = emit_activation(&mut m, &format!("a{i}"), &x, &u.act)?;
        let yr = if u.act.output.is_signed() {
            m.reg_signed(&format!("y{i}"), wo)?
        } else {
            m.reg(&format!("y{i}"), wo)?
        };
        regs.push(Stmt::set(&yr, y.e())?);
        let slot = if wo < so { yr.extend(so)? } else { yr.e() };
        outs.push(slot.as_unsigned());
    }
    let rev: Vec<Expr> = outs.into_iter().rev().collect();
    m.assign_sig(&m_tdata, Expr::concat(&rev)?)?;

    let mut body = vec![
        Stmt::set(&done, Expr::bool(false))?,
        Stmt::if_(adv.e(), [vec![Stmt::set(&ov, in_fire.e())?], regs].concat())?,
        Stmt::if_(
            in_fire.e(),
            vec![Stmt::set(&left, left.e().sub(&lit(1, 32)?)?)?],
        )?,
        Stmt::if_(
            out_fire.e(),
            vec![
                Stmt::set(&out_left, out_left.e().sub(&lit(1, 32)?)?)?,
                Stmt::if_(
                    eq_c(&out_left.e(), 1)?,
                    vec![
                        Stmt::set(&busy, Expr::bool(false))?,
                        Stmt::set(&done, Expr::bool(true))?,
                    ],
                )?,
            ],
        )?,
    ];
    body.push(Stmt::if_(
        busy.e()
            .logic_not()
            .logic_and(&cmd_valid.e())?
            .logic_and(&cmd_beats.e().ne(&lit(0, 32)?)?)?,
        vec![
            Stmt::set(&busy, Expr::bool(true))?,
            Stmt::set(&left, cmd_beats.e())?,
            Stmt::set(&out_left, cmd_beats.e())?,
        ],
    )?);
    m.clocked(
        &clk,
        vec![Stmt::if_else(
            rst.e(),
            vec![
                Stmt::set(&busy, Expr::bool(false))?,
                Stmt::set(&ov, Expr::bool(false))?,
                Stmt::set(&done, Expr::bool(false))?,
                Stmt::set(&left, lit(0, 32)?)?,
                Stmt::set(&out_left, lit(0, 32)?)?,
            ],
            body,
        )?],
    )?;
    let d = Design::new(m.finish(), u);
    d.check_complete()?;
    Ok(d)
}

/// One command simulated and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ActStreamSim {
    /// Cycles from command acceptance to `done`.
    pub cycles: u64,
    /// [`cycles`] for the same command.
    pub model_cycles: u64,
    /// Elements compared.
    pub outputs_checked: u64,
    /// Beats that differ, are missing or extra, plus wrong `tlast` flags.
    pub mismatches: u64,
    /// The first few problems.
    pub first: Vec<String>,
}

/// The golden outputs: the activation of every element.
pub fn golden(u: &ActStream, x: &ndarray::Array2<i64>) -> Result<ndarray::Array2<i64>> {
    let table = u.act.table().ok();
    let table = table.as_deref().filter(|t| !t.is_empty());
    let mut y = ndarray::Array2::zeros(x.dim());
    for (o, &v) in y.iter_mut().zip(x.iter()) {
        *o = u.act.apply_raw(i128::from(v), table)? as i64;
    }
    Ok(y)
}

/// Builds the unit (cached by `opts`), streams `x` (row by row, `lanes` per beat; the row
/// length must be a multiple of `lanes`) and checks every output against `want`.
pub fn simulate_against(
    u: &ActStream,
    x: &ndarray::Array2<i64>,
    want: &ndarray::Array2<i64>,
    stalls: crate::template::drive::Stalls,
    opts: &accelforge_sim::BuildOptions,
) -> Result<ActStreamSim> {
    use crate::template::drive::{compare_beats, pack_slots, run_command};
    let unsupported = |m: String| super::UnitError::Unsupported(m);
    let l = u.lanes as usize;
    if !x.ncols().is_multiple_of(l) || x.is_empty() {
        return Err(unsupported(format!(
            "rows of {} elements do not split into beats of {l}",
            x.ncols()
        )));
    }
    let t = &u.act.input;
    if let Some(v) = x
        .iter()
        .find(|&&v| !(t.min_raw()..=t.max_raw()).contains(&i128::from(v)))
    {
        return Err(unsupported(format!("an input holds {v}, outside {t}")));
    }
    let beats = |a: &ndarray::Array2<i64>, bits: u32, slot: u32, ext: bool| -> Vec<Vec<u64>> {
        a.rows()
            .into_iter()
            .flat_map(|r| {
                r.to_vec()
                    .chunks(l)
                    .map(|c| pack_slots(c, bits, slot, ext))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let inputs = beats(x, u.act.input.width(), u.slot_in(), false);
    let want_beats = beats(want, u.slot_out(), u.slot_out(), true);
    let d = design(u)?;
    let sim_err = |e: String| unsupported(format!("activation stream simulation: {e}"));
    let compiled = accelforge_sim::build(&accelforge_sim::DesignSpec::from_hdl(&d), opts)
        .map_err(|e| sim_err(e.to_string()))?;
    let mut sim = compiled.sim().map_err(|e| sim_err(e.to_string()))?;
    sim.reset(2).map_err(|e| sim_err(e.to_string()))?;
    let port = sim.port("cmd_beats").map_err(|e| sim_err(e.to_string()))?;
    sim.poke(port, inputs.len() as u64)
        .map_err(|e| sim_err(e.to_string()))?;
    let model_cycles = cycles(inputs.len() as u64);
    let (c, got) = run_command(
        &mut sim,
        &inputs,
        want_beats.len(),
        stalls,
        model_cycles * 8 + 1000,
    )
    .map_err(sim_err)?;
    let (mismatches, first) = compare_beats(&want_beats, &got);
    Ok(ActStreamSim {
        cycles: c,
        model_cycles,
        outputs_checked: x.len() as u64,
        mismatches,
        first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qfx::QType;
    use crate::units::activation::ActivationKind;

    fn unit(kind: ActivationKind, lanes: u32) -> ActStream {
        let t: QType = "ap_fixed<8,4>".parse().unwrap();
        ActStream {
            act: ActivationParams {
                kind,
                input: t,
                output: t,
                table_bits: 8,
            },
            lanes,
        }
    }

    /// Every 8-bit input through GELU and ReLU, in Verilator, against the golden model: 0
    /// mismatches, cycles = model, the same outputs under stalls; lint clean.
    #[test]
    fn every_input_matches_in_verilator() {
        if !accelforge_test_support::tool_available("verilator") {
            return;
        }
        let x = ndarray::Array2::from_shape_fn((4, 64), |(r, c)| (r * 64 + c) as i64 - 128);
        for (kind, lanes) in [(ActivationKind::Gelu, 4), (ActivationKind::Relu, 8)] {
            let u = unit(kind, lanes);
            let d = design(&u).unwrap();
            let files = accelforge_hdl::tools::DesignFiles::new(&d).unwrap();
            let lint = accelforge_hdl::tools::lint(&files.paths, Some(d.top_name())).unwrap();
            assert!(lint.is_clean(), "{:#?}", lint.diagnostics);
            let want = golden(&u, &x).unwrap();
            let opts = accelforge_sim::BuildOptions::default();
            let s = simulate_against(&u, &x, &want, Default::default(), &opts).unwrap();
            assert_eq!(s.mismatches, 0, "{kind:?}: {:?}", s.first);
            assert_eq!(s.cycles, s.model_cycles, "{kind:?}");
            let stalls = crate::template::drive::Stalls {
                input_gap: 0.3,
                output_stall: 0.4,
                seed: 3,
            };
            let s = simulate_against(&u, &x, &want, stalls, &opts).unwrap();
            assert_eq!(s.mismatches, 0, "{kind:?} under stalls: {:?}", s.first);
            let mut wide = x.clone();
            wide[[0, 0]] = 1000;
            let e = simulate_against(&u, &wide, &want, Default::default(), &opts).unwrap_err();
            assert!(e.to_string().contains("outside"), "{e}");
            let mut off = want.clone();
            off[[1, 1]] += 1;
            let s = simulate_against(&u, &x, &off, Default::default(), &opts).unwrap();
            assert!(s.mismatches > 0, "{kind:?}: a wrong expectation is caught");
        }
    }
}
