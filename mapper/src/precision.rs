//! Mixed precision chosen together with the hardware (issue 18): one MILP picks each
//! quantizer's bit width ("site" option) and the engine configurations, so that a layer runs
//! only on an engine whose operand widths carry its operands at the chosen precision.
//!
//! On top of [`crate::ilp`]'s model (engines `y`, layer placements `x`, budget rows):
//!
//! - `z[s][o]` ∈ {0,1}: site `s` takes option `o`; `Σ_o z[s][o] = 1`.
//! - Every layer lists the same operands (the caller defines them: activations, weights,
//!   outputs), each with a need that is fixed or depends on one site, and every configuration
//!   a width per operand. Fixed needs empty the (layer, configuration) pairs up front; for a
//!   site-dependent need, one row per layer, operand and needed width `w`:
//!   `Σ_{e, c: width(c,k) < w, o} x[l][e][c][o] + Σ_{o': need(l,k,o') ≥ w} z[s][o'] ≤ 1` —
//!   the layer sits only on configurations wide enough for its chosen precision.
//! - The predicted cost (e.g. a measured loss per site, summed as HAWQ-V3 and OHQ sum
//!   sensitivities) is `Σ cost[s][o]·z[s][o]`: bounded by the goal's budget when minimising
//!   latency; minimised (then latency at that cost) when latency is bounded.
//! - Cuts (choices measured to miss the goal): some site must be wider than in the cut.
//!
//! [`exhaustive`] enumerates every site choice and solves each restricted problem exhaustively:
//! the verification of the MILP on small spaces.

use serde::{Deserialize, Serialize};

use crate::error::{MapperError, Result};
use crate::ilp::{Solved, Solver};
use crate::mapping::Method;
use crate::problem::{Formulation, Problem};

/// What one operand of a layer needs of a configuration's operand width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    /// A width that no choice changes.
    Fixed(u32),
    /// The width depends on site `site`'s option: `widths[o]` under option `o`.
    Site {
        /// Site index.
        site: usize,
        /// Needed width per option of the site.
        widths: Vec<u32>,
    },
}

/// The precision side of a mixed-precision instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precision {
    /// Per site, the predicted cost of each option (non-negative; e.g. an accuracy drop).
    pub site_costs: Vec<Vec<f64>>,
    /// Per site, the bit width of each option (what "narrower" means for [`Self::cuts`]).
    pub site_bits: Vec<Vec<u32>>,
    /// Choices measured to miss the goal: every solution must give at least one site a wider
    /// option than the cut does (so the cut choice and every choice narrower or equal
    /// everywhere are excluded; see [`solve_checked`]).
    #[serde(default)]
    pub cuts: Vec<Vec<usize>>,
    /// Per layer of the problem, per operand: what it needs (every layer lists the same
    /// operands, e.g. activations, weights, outputs).
    pub needs: Vec<Vec<Need>>,
    /// Per configuration of the problem, per operand: the width it carries.
    pub widths: Vec<Vec<u32>>,
}

/// What to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Goal {
    /// Minimise latency with the summed cost at most `max_cost`.
    MinLatency {
        /// Cost budget.
        max_cost: f64,
    },
    /// Minimise the summed cost with latency at most `max_cycles`; among equal costs, the
    /// lowest latency.
    MinCost {
        /// Latency bound in cycles.
        max_cycles: f64,
    },
}

/// A solved mixed-precision instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedSolved {
    /// The engines and placements (objective: latency in cycles).
    pub solved: Solved,
    /// The option of each site.
    pub choice: Vec<usize>,
    /// The summed predicted cost of `choice`.
    pub cost: f64,
}

/// Costs below this are equal (sums of measured fractions).
const COST_EPS: f64 = 1e-9;

impl Precision {
    /// Checks the shapes against `p`.
    pub fn validate(&self, p: &Problem) -> Result<()> {
        let bad = |m: String| Err(MapperError::SearchSpace(format!("precision: {m}")));
        if self.needs.len() != p.layers() {
            return bad(format!(
                "{} layer needs for {} layers",
                self.needs.len(),
                p.layers()
            ));
        }
        if self.widths.len() != p.configs() {
            return bad(format!(
                "{} configuration widths for {} configurations",
                self.widths.len(),
                p.configs()
            ));
        }
        if self.site_bits.len() != self.site_costs.len()
            || self
                .site_bits
                .iter()
                .zip(&self.site_costs)
                .any(|(b, c)| b.len() != c.len())
        {
            return bad("site_bits must give one width per option of every site".into());
        }
        if self.cuts.iter().any(|c| {
            c.len() != self.site_costs.len()
                || c.iter()
                    .zip(&self.site_costs)
                    .any(|(&o, costs)| o >= costs.len())
        }) {
            return bad("a cut must give one option per site".into());
        }
        for (s, costs) in self.site_costs.iter().enumerate() {
            if costs.is_empty() || costs.iter().any(|c| !(c.is_finite() && *c >= 0.0)) {
                return bad(format!(
                    "site {s} needs at least one option, costs finite and >= 0"
                ));
            }
        }
        if self
            .needs
            .iter()
            .map(Vec::len)
            .chain(self.widths.iter().map(Vec::len))
            .any(|n| n != self.widths.first().map_or(0, Vec::len))
        {
            return bad("every layer and configuration must list the same operands".into());
        }
        for (l, needs) in self.needs.iter().enumerate() {
            for need in needs {
                if let Need::Site { site, widths } = need {
                    let options = self.site_costs.get(*site).map(Vec::len);
                    if options != Some(widths.len()) {
                        return bad(format!(
                            "layer {l} names site {site} with {} widths; the site has {options:?} options",
                            widths.len()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The summed cost of a choice.
    pub fn cost(&self, choice: &[usize]) -> f64 {
        choice
            .iter()
            .enumerate()
            .map(|(s, &o)| self.site_costs[s][o])
            .sum()
    }

    fn need(&self, need: &Need, choice: Option<&[usize]>) -> Option<u32> {
        match need {
            Need::Fixed(w) => Some(*w),
            Need::Site { site, widths } => choice.map(|c| widths[c[*site]]),
        }
    }

    /// True when `choice` is excluded by a cut: no site wider than the cut gives it.
    pub fn is_cut(&self, choice: &[usize]) -> bool {
        self.cuts.iter().any(|cut| {
            cut.iter()
                .zip(choice)
                .enumerate()
                .all(|(s, (&c, &o))| self.site_bits[s][o] <= self.site_bits[s][c])
        })
    }

    /// `p` with every (layer, configuration) pair that cannot carry the layer's operands
    /// emptied: under `choice`, or (`None`) for the fixed needs only.
    pub fn restrict(&self, p: &Problem, choice: Option<&[usize]>) -> Problem {
        let mut out = p.clone();
        for (l, row) in out.options.iter_mut().enumerate() {
            for (c, opts) in row.iter_mut().enumerate() {
                let fits = self.needs[l]
                    .iter()
                    .zip(&self.widths[c])
                    .all(|(need, &w)| self.need(need, choice).is_none_or(|n| n <= w));
                if !fits {
                    opts.clear();
                }
            }
        }
        out
    }
}

/// Drops every configuration another one dominates: one at least as wide on every operand, no
/// larger on any resource line, and matching every option of every layer with one no slower
/// and moving no more DDR bytes. Swapping the dominated configuration for the
/// dominating one keeps any solution feasible and no slower, so the optimum is unchanged.
/// Returns the smaller problem, its precision side, and each kept configuration's original
/// index. (Within one width class this is the mapper's own dominance pruning; across classes
/// it removes the narrow configurations a wider one matches, e.g. LUT-multiplier arrays.)
pub fn prune_dominated(p: &Problem, prec: &Precision) -> (Problem, Precision, Vec<usize>) {
    let n = p.configs();
    // Every option of `b` matched by one of `a` no slower and moving no more bytes.
    let covers = |l: usize, a: usize, b: usize| -> bool {
        p.options[l][b].iter().all(|ob| {
            p.options[l][a]
                .iter()
                .any(|oa| oa.latency <= ob.latency && oa.bytes <= ob.bytes)
        })
    };
    let dominates = |a: usize, b: usize| -> bool {
        prec.widths[a]
            .iter()
            .zip(&prec.widths[b])
            .all(|(x, y)| x >= y)
            && p.resources[a]
                .iter()
                .zip(&p.resources[b])
                .all(|(x, y)| x <= y)
            && (0..p.layers()).all(|l| covers(l, a, b))
    };
    // Equal pairs: the lower index survives.
    let kept: Vec<usize> = (0..n)
        .filter(|&b| !(0..n).any(|a| a != b && dominates(a, b) && (!dominates(b, a) || a < b)))
        .collect();
    let problem = Problem {
        budget: p.budget,
        ddr_bytes_per_cycle: p.ddr_bytes_per_cycle,
        resources: kept.iter().map(|&c| p.resources[c]).collect(),
        layer_names: p.layer_names.clone(),
        options: p
            .options
            .iter()
            .map(|row| kept.iter().map(|&c| row[c].clone()).collect())
            .collect(),
    };
    let prec = Precision {
        widths: kept.iter().map(|&c| prec.widths[c].clone()).collect(),
        ..prec.clone()
    };
    (problem, prec, kept)
}

/// Solves the joint problem with the MILP of [`crate::ilp`] plus the precision rows.
pub fn solve(
    p: &Problem,
    f: Formulation,
    prec: &Precision,
    goal: Goal,
    solver: Solver,
    time_limit: Option<f64>,
) -> Result<MixedSolved> {
    prec.validate(p)?;
    check_goal(prec, goal)?;
    let fixed = prec.restrict(p, None);
    // Lexicographic, in two solves: the goal's primary objective, then the other one within it
    // (least cost at the optimal latency; least latency at the optimal cost). A weighted
    // tie-break would have to sit between the resource tie-break and one cycle, which
    // measured costs (fractions of a calibration set) cannot be scaled into reliably.
    let (first, first_choice) = crate::ilp::solve_mixed(&fixed, f, prec, goal, solver, time_limit)?;
    let second = match goal {
        Goal::MinLatency { .. } => {
            let t = prec
                .restrict(p, Some(&first_choice))
                .evaluate_in(&first.assignment, f)?;
            Goal::MinCost {
                max_cycles: t * (1.0 + 1e-12) + 1e-6,
            }
        }
        Goal::MinCost { .. } => Goal::MinLatency {
            max_cost: prec.cost(&first_choice) + COST_EPS,
        },
    };
    let (solved, choice) = crate::ilp::solve_mixed(&fixed, f, prec, second, solver, time_limit)?;
    // The objective, checked on the problem restricted to the choice.
    let objective = prec
        .restrict(p, Some(&choice))
        .evaluate_in(&solved.assignment, f)
        .map_err(|e| MapperError::Solver {
            solver: solver.name().into(),
            formulation: f.name().into(),
            message: format!("the mixed-precision solution does not check out: {e}"),
        })?;
    let cost = prec.cost(&choice);
    let solve_seconds = first.solve_seconds + solved.solve_seconds;
    Ok(MixedSolved {
        solved: Solved {
            objective,
            solve_seconds,
            ..solved
        },
        choice,
        cost,
    })
}

/// [`solve`], with every solution's choice measured by `accept` (e.g. the re-quantized
/// network's accuracy on the calibration data): a rejected choice becomes a cut and the MILP
/// is solved again, at most `rounds` times. The cut also excludes every choice that is nowhere
/// wider, which assumes that narrowing a quantizer never helps; the returned choice is always
/// one `accept` passed. Returns the solution and the precision side with the cuts it took.
pub fn solve_checked(
    p: &Problem,
    f: Formulation,
    prec: &Precision,
    goal: Goal,
    method: Method,
    rounds: usize,
    mut accept: impl FnMut(&[usize]) -> bool,
) -> Result<(MixedSolved, Precision)> {
    let mut prec = prec.clone();
    let mut seconds = 0.0;
    for _ in 0..rounds {
        let mut s = match method {
            Method::Ilp { solver, time_limit } => solve(p, f, &prec, goal, solver, time_limit)?,
            Method::Exhaustive { limit } => exhaustive(p, f, &prec, goal, limit)?,
        };
        // The report's solve time covers every round.
        seconds += s.solved.solve_seconds;
        if accept(&s.choice) {
            s.solved.solve_seconds = seconds;
            return Ok((s, prec));
        }
        prec.cuts.push(s.choice);
    }
    Err(MapperError::Infeasible {
        board: String::new(),
        reason: format!(
            "{rounds} precision choices in a row missed the goal when measured; relax the goal"
        ),
    })
}

/// Every site choice, each restricted problem solved by [`crate::exhaustive::solve`]: the
/// exact optimum, for checking [`solve`] on small spaces. `limit` bounds each inner search.
pub fn exhaustive(
    p: &Problem,
    f: Formulation,
    prec: &Precision,
    goal: Goal,
    limit: f64,
) -> Result<MixedSolved> {
    prec.validate(p)?;
    check_goal(prec, goal)?;
    let sizes: Vec<usize> = prec.site_costs.iter().map(Vec::len).collect();
    let mut choice = vec![0usize; sizes.len()];
    let mut best: Option<MixedSolved> = None;
    loop {
        let cost = prec.cost(&choice);
        let admissible = !prec.is_cut(&choice)
            && match goal {
                Goal::MinLatency { max_cost } => cost <= max_cost + COST_EPS,
                Goal::MinCost { .. } => true,
            };
        if admissible {
            match crate::exhaustive::solve(&prec.restrict(p, Some(&choice)), f, limit) {
                Ok(solved) => {
                    let within = match goal {
                        Goal::MinCost { max_cycles } => solved.objective <= max_cycles,
                        Goal::MinLatency { .. } => true,
                    };
                    let candidate = MixedSolved {
                        solved,
                        choice: choice.clone(),
                        cost,
                    };
                    if within && best.as_ref().is_none_or(|b| better(&candidate, b, goal)) {
                        best = Some(candidate);
                    }
                }
                Err(MapperError::Infeasible { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // Next choice (odometer).
        let mut s = 0;
        loop {
            if s == sizes.len() {
                return best.ok_or_else(|| MapperError::Infeasible {
                    board: String::new(),
                    reason: "no precision choice meets the goal within the budget".into(),
                });
            }
            choice[s] += 1;
            if choice[s] < sizes[s] {
                break;
            }
            choice[s] = 0;
            s += 1;
        }
    }
}

/// A cost budget below what the cheapest option of every site costs is named as such (the MILP
/// would only say "infeasible").
fn check_goal(prec: &Precision, goal: Goal) -> Result<()> {
    if let Goal::MinLatency { max_cost } = goal {
        let least: f64 = prec
            .site_costs
            .iter()
            .map(|c| c.iter().copied().fold(f64::INFINITY, f64::min))
            .sum();
        if least > max_cost + COST_EPS {
            return Err(MapperError::Infeasible {
                board: String::new(),
                reason: format!(
                    "the cost budget {max_cost} is below {least}, what the cheapest option of \
                     every site costs together"
                ),
            });
        }
    }
    Ok(())
}

fn better(a: &MixedSolved, b: &MixedSolved, goal: Goal) -> bool {
    let (la, lb) = (a.solved.objective, b.solved.objective);
    match goal {
        Goal::MinLatency { .. } => la < lb || (la == lb && a.cost < b.cost - COST_EPS),
        Goal::MinCost { .. } => {
            a.cost < b.cost - COST_EPS || ((a.cost - b.cost).abs() <= COST_EPS && la < lb)
        }
    }
}
