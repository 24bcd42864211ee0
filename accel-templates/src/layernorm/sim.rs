//! The add & norm unit's streams and its Verilator harness.
//!
//! Input: `d / lanes` beats of γ (low half) and β (high half), then per token `d / lanes` beats
//! of `x` (low half) and `r` (high half; zero without a residual). Output per token: `d / lanes`
//! beats of `y` (low half) and, with a residual, `s = sat(x + r)` (high half), each element
//! sign-extended to its slot; `tlast` on the command's last beat.

use accelforge_sim::{BuildOptions, DesignSpec, build};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::rtl::{self, in_slot_bits, out_slot_bits};
use super::{LayerNormError, Resolved, Result, cost, golden, residual_add};
use crate::template::drive::{self, Stalls, pack_slots};

/// One command's operands, raw codes of their types.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormData {
    /// Tokens, `tokens × d` (input type).
    pub x: Array2<i64>,
    /// The residual added to `x` (same shape and type), when the unit has one.
    pub res: Option<Array2<i64>>,
    /// γ, `d` long.
    pub gamma: Vec<i64>,
    /// β, `d` long.
    pub beta: Vec<i64>,
}

/// The golden outputs: the residual sums `s` (= `x` without a residual) and `y = LN(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormOut {
    /// `tokens × d`, input type.
    pub s: Array2<i64>,
    /// `tokens × d`, output type.
    pub y: Array2<i64>,
}

impl LayerNormData {
    /// Random tokens spread over `spread` of the input range around a random offset per token
    /// (as a residual stream has), a residual when the unit has one, γ around 1, β small.
    pub fn random(r: &Resolved, tokens: usize, seed: u64, spread: f64) -> LayerNormData {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = r.p.d as usize;
        let max = r.tin.max_raw() as f64;
        let rows = |rng: &mut ChaCha8Rng| {
            let mut x = Array2::zeros((tokens, d));
            for mut row in x.rows_mut() {
                let off = rng.random_range(-0.3..0.3) * max * spread;
                let sp = rng.random_range(0.05..1.0) * max * spread;
                for v in row.iter_mut() {
                    *v = (off + rng.random_range(-sp..=sp))
                        .round()
                        .clamp(r.tin.min_raw() as f64, max) as i64;
                }
            }
            x
        };
        let x = rows(&mut rng);
        let res = r.p.residual.then(|| rows(&mut rng));
        let unit = |f: i32| (f64::from(f)).exp2();
        let (ug, ub) = (unit(r.tgamma.frac_bits()), unit(r.tbeta.frac_bits()));
        let clamp = |v: f64, t: &crate::qfx::QType| {
            v.round().clamp(t.min_raw() as f64, t.max_raw() as f64) as i64
        };
        let gamma = (0..d)
            .map(|_| clamp(rng.random_range(0.5..1.5) * ug, &r.tgamma))
            .collect();
        let beta = (0..d)
            .map(|_| clamp(rng.random_range(-0.5..0.5) * ub, &r.tbeta))
            .collect();
        LayerNormData {
            x,
            res,
            gamma,
            beta,
        }
    }

    /// Checks the shapes against the parameters.
    pub fn check(&self, r: &Resolved) -> Result<()> {
        let d = r.p.d as usize;
        if self.x.ncols() != d {
            return Err(LayerNormError::Data(format!(
                "tokens have {} features, expected d = {d}",
                self.x.ncols()
            )));
        }
        let (lo, hi) = (r.tin.min_raw() as i64, r.tin.max_raw() as i64);
        for (name, a) in [("x", Some(&self.x)), ("the residual", self.res.as_ref())] {
            if let Some(v) = a.and_then(|a| a.iter().find(|v| !(lo..=hi).contains(*v))) {
                return Err(LayerNormError::Data(format!(
                    "{name} holds {v}, outside {}",
                    r.tin
                )));
            }
        }
        match (&self.res, r.p.residual) {
            (Some(res), true) if res.dim() == self.x.dim() => Ok(()),
            (Some(res), true) => Err(LayerNormError::Data(format!(
                "the residual is {:?}, the tokens {:?}",
                res.dim(),
                self.x.dim()
            ))),
            (None, false) => Ok(()),
            (_, true) => Err(LayerNormError::Data(
                "the unit adds a residual but none was given".into(),
            )),
            (Some(_), false) => Err(LayerNormError::Data(
                "a residual was given to a unit without one".into(),
            )),
        }
    }

    /// The golden outputs of every token.
    pub fn golden(&self, r: &Resolved) -> Result<LayerNormOut> {
        self.check(r)?;
        let mut s = self.x.clone();
        if let Some(res) = &self.res {
            for (mut srow, rrow) in s.rows_mut().into_iter().zip(res.rows()) {
                let sum = residual_add(r, &srow.to_vec(), &rrow.to_vec());
                srow.assign(&ndarray::ArrayView1::from(&sum));
            }
        }
        let mut y = Array2::zeros(s.dim());
        for (srow, mut yrow) in s.rows().into_iter().zip(y.rows_mut()) {
            let out = golden(r, &srow.to_vec(), &self.gamma, &self.beta)?;
            yrow.assign(&ndarray::ArrayView1::from(&out));
        }
        Ok(LayerNormOut { s, y })
    }
}

/// Every input beat of one command, in order.
pub fn input_beats(r: &Resolved, data: &LayerNormData) -> Vec<Vec<u64>> {
    let (l, slot) = (r.p.lanes as usize, in_slot_bits(r));
    // Each element keeps only its own type's bits in its slot.
    let beat = |lo: &[i64], lo_bits: u32, hi: &[i64], hi_bits: u32| {
        let low = |v: i64, bits: u32| v & ((1i64 << bits) - 1);
        let elems: Vec<i64> = lo
            .iter()
            .map(|&v| low(v, lo_bits))
            .chain(hi.iter().map(|&v| low(v, hi_bits)))
            .collect();
        pack_slots(&elems, slot, slot, false)
    };
    let mut out = Vec::new();
    for (g, b) in data.gamma.chunks(l).zip(data.beta.chunks(l)) {
        out.push(beat(g, r.tgamma.width(), b, r.tbeta.width()));
    }
    let zeros = vec![0i64; l];
    for (t, row) in data.x.rows().into_iter().enumerate() {
        let row = row.to_vec();
        let res = data.res.as_ref().map(|a| a.row(t).to_vec());
        for (c, x) in row.chunks(l).enumerate() {
            let rr = res.as_ref().map_or(&zeros[..], |v| &v[c * l..(c + 1) * l]);
            out.push(beat(x, r.tin.width(), rr, r.tin.width()));
        }
    }
    out
}

/// Every output beat of one command, in order.
pub fn output_beats(r: &Resolved, out: &LayerNormOut) -> Vec<Vec<u64>> {
    let (l, slot) = (r.p.lanes as usize, out_slot_bits(r));
    let mut beats = Vec::new();
    for (yrow, srow) in out.y.rows().into_iter().zip(out.s.rows()) {
        let (y, s) = (yrow.to_vec(), srow.to_vec());
        for (yc, sc) in y.chunks(l).zip(s.chunks(l)) {
            let mut elems = yc.to_vec();
            if r.p.residual {
                elems.extend_from_slice(sc);
            }
            beats.push(pack_slots(&elems, slot, slot, true));
        }
    }
    beats
}

/// One command simulated and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormSim {
    /// Cycles from command acceptance to `done`.
    pub cycles: u64,
    /// [`cost::cycles`] for the same command.
    pub model_cycles: u64,
    /// Output elements compared (`y`, and `s` with a residual).
    pub outputs_checked: u64,
    /// Beats that differ, are missing or extra, plus wrong `tlast` flags.
    pub mismatches: u64,
    /// The first few problems.
    pub first: Vec<String>,
}

fn sim_err(e: impl std::fmt::Display) -> LayerNormError {
    LayerNormError::Sim(e.to_string())
}

/// Builds the unit (cached by `opts`), runs one command on `data` and checks every output beat
/// against `want` (normally [`LayerNormData::golden`]).
pub fn simulate_against(
    r: &Resolved,
    data: &LayerNormData,
    want: &LayerNormOut,
    stalls: Stalls,
    opts: &BuildOptions,
) -> Result<LayerNormSim> {
    data.check(r)?;
    let tokens = data.x.nrows() as u64;
    if tokens == 0 || tokens > u64::from(u32::MAX) {
        return Err(LayerNormError::Data(format!(
            "{tokens} tokens: a command takes 1 ..= 2^32 - 1"
        )));
    }
    let want_beats = output_beats(r, want);
    let inputs = input_beats(r, data);
    let design = rtl::design(r)?;
    let compiled = build(&DesignSpec::from_hdl(&design), opts)
        .map_err(|e| sim_err(format!("building the layernorm unit with Verilator: {e}")))?;
    let mut sim = compiled.sim().map_err(sim_err)?;
    sim.reset(2).map_err(sim_err)?;
    let cmd_tokens = sim.port("cmd_tokens").map_err(sim_err)?;
    sim.poke(cmd_tokens, tokens).map_err(sim_err)?;
    let model_cycles = cost::cycles(r, tokens);
    let limit = model_cycles * 8 + 10_000;
    let (cycles, got) =
        drive::run_command(&mut sim, &inputs, want_beats.len(), stalls, limit).map_err(sim_err)?;
    let (mismatches, first) = drive::compare_beats(&want_beats, &got);
    let per_token = if r.p.residual { 2 } else { 1 } * u64::from(r.p.d);
    Ok(LayerNormSim {
        cycles,
        model_cycles,
        outputs_checked: tokens * per_token,
        mismatches,
        first,
    })
}

/// [`simulate_against`] the golden outputs.
pub fn simulate(
    r: &Resolved,
    data: &LayerNormData,
    stalls: Stalls,
    opts: &BuildOptions,
) -> Result<(LayerNormSim, LayerNormOut)> {
    let want = data.golden(r)?;
    let s = simulate_against(r, data, &want, stalls, opts)?;
    Ok((s, want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layernorm::LayerNormParams;

    /// Operands the stream could not carry are refused by name, not truncated.
    #[test]
    fn out_of_range_or_misshapen_operands_are_named() {
        let r = LayerNormParams {
            d: 8,
            lanes: 2,
            residual: true,
            ..LayerNormParams::default()
        }
        .resolve()
        .unwrap();
        let good = LayerNormData::random(&r, 2, 1, 1.0);
        good.golden(&r).unwrap();
        let mut bad = good.clone();
        bad.x[[1, 3]] = 1 << 20;
        assert!(bad.golden(&r).unwrap_err().to_string().contains("x holds"));
        let mut bad = good.clone();
        bad.res.as_mut().unwrap()[[0, 0]] = -(1 << 20);
        let e = bad.golden(&r).unwrap_err().to_string();
        assert!(e.contains("the residual holds"), "{e}");
        let mut bad = good.clone();
        bad.res = None;
        let e = bad.golden(&r).unwrap_err().to_string();
        assert!(e.contains("none was given"), "{e}");
        let mut bad = good;
        bad.gamma.pop();
        let e = bad.golden(&r).unwrap_err().to_string();
        assert!(e.contains("gamma has 7 elements"), "{e}");
    }
}
