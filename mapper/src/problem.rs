//! A model-independent mapping instance: per layer and configuration, the costs of each tiling
//! option; per configuration, its resources; the board budget. The formulations (ILP and
//! exhaustive) see only this.

use serde::{Deserialize, Serialize};

use crate::error::{MapperError, Result};

/// Resource lines in budget order.
pub const RESOURCE_NAMES: [&str; 5] = ["lut", "ff", "dsp", "bram18", "uram"];

/// Resource lines as messages spell them.
pub const RESOURCE_LABELS: [&str; 5] = ["LUT", "FF", "DSP", "BRAM18", "URAM"];

/// A resource vector in [`RESOURCE_NAMES`] order.
pub type Res = [u64; 5];

/// Which formulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formulation {
    /// One engine time-shared by all layers; minimise the sum of layer latencies.
    Overlay,
    /// One engine per layer, pipelined; minimise the slowest stage.
    Dataflow,
    /// `engines` engines, layers assigned to them; minimise the makespan.
    Heterogeneous {
        /// Number of engines (2–3 is sensible; at least 1).
        engines: usize,
    },
    /// `engines` engines, layers assigned to them, run one after another (one inference at a
    /// time, e.g. the kernels of an encoder block); minimise the sum of the layers' latencies.
    Sequential {
        /// Number of engines (one per kind of kernel the workload needs; at least 1).
        engines: usize,
    },
}

impl Formulation {
    /// Name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Formulation::Overlay => "overlay",
            Formulation::Dataflow => "dataflow",
            Formulation::Heterogeneous { .. } => "heterogeneous",
            Formulation::Sequential { .. } => "sequential",
        }
    }

    /// The engine count of the multi-engine formulations.
    pub fn engines(&self) -> Option<usize> {
        match self {
            Formulation::Heterogeneous { engines } | Formulation::Sequential { engines } => {
                Some(*engines)
            }
            _ => None,
        }
    }
}

/// Costs of one tiling option of one layer on one configuration, `repeat` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionCost {
    /// Cycles including memory (what the objective adds up).
    pub latency: u64,
    /// Compute-only cycles.
    pub compute: u64,
    /// DDR bytes.
    pub bytes: u64,
}

/// A mapping instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Board budget.
    pub budget: Res,
    /// Board DDR bytes per PL cycle, shared by all engines.
    pub ddr_bytes_per_cycle: f64,
    /// Resources of each configuration.
    pub resources: Vec<Res>,
    /// Layer names (for messages).
    pub layer_names: Vec<String>,
    /// `options[layer][config]`: the tiling options (empty = the config cannot run the layer).
    pub options: Vec<Vec<Vec<OptionCost>>>,
}

/// A solution in problem indices: which configuration each engine has, which engine runs each
/// layer and with which option. Overlay: one engine. Dataflow: engine `l` runs layer `l`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Configuration index of each engine.
    pub engines: Vec<usize>,
    /// Engine of each layer.
    pub layer_engine: Vec<usize>,
    /// Option index (into `options[l][engines[layer_engine[l]]]`) of each layer.
    pub layer_option: Vec<usize>,
}

/// Adds resource vectors, saturating.
pub fn res_add(a: &Res, b: &Res) -> Res {
    std::array::from_fn(|k| a[k].saturating_add(b[k]))
}

/// True when `r` fits `budget` on every line.
pub fn res_fits(r: &Res, budget: &Res) -> bool {
    r.iter().zip(budget).all(|(u, b)| u <= b)
}

impl Problem {
    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.options.len()
    }
    /// Number of configurations.
    pub fn configs(&self) -> usize {
        self.resources.len()
    }

    /// Checks shapes: every layer has one option list per configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| MapperError::SearchSpace(m);
        if self.options.len() != self.layer_names.len() {
            return Err(bad("layer names and option tables differ in length".into()));
        }
        for (l, row) in self.options.iter().enumerate() {
            if row.len() != self.resources.len() {
                return Err(bad(format!(
                    "layer {l} has {} option lists for {} configurations",
                    row.len(),
                    self.resources.len()
                )));
            }
        }
        if !(self.ddr_bytes_per_cycle > 0.0 && self.ddr_bytes_per_cycle.is_finite()) {
            return Err(bad("DDR bytes per cycle must be positive".into()));
        }
        Ok(())
    }

    /// The tie-breaking score of a configuration: its utilisation summed over the lines.
    /// Among equally fast solutions the solvers prefer the smaller design.
    pub fn score(&self, c: usize) -> f64 {
        self.resources[c]
            .iter()
            .zip(&self.budget)
            .map(|(&u, &b)| if b == 0 { 0.0 } else { u as f64 / b as f64 })
            .sum()
    }

    /// Total resources of an assignment's engines.
    pub fn assignment_resources(&self, a: &Assignment) -> Res {
        a.engines
            .iter()
            .fold([0; 5], |acc, &c| res_add(&acc, &self.resources[c]))
    }

    /// The objective of an assignment, in cycles: the largest engine load (sum of its layers'
    /// latencies), but never less than the time the shared DDR needs for all the traffic.
    /// Errors when the assignment is malformed or over budget.
    pub fn evaluate(&self, a: &Assignment) -> Result<f64> {
        self.evaluate_in(a, Formulation::Heterogeneous { engines: 1 })
    }

    /// The objective of an assignment under `f`: [`evaluate`](Self::evaluate), except for
    /// [`Formulation::Sequential`], where the engines run in turn and the loads add up.
    pub fn evaluate_in(&self, a: &Assignment, f: Formulation) -> Result<f64> {
        let bad = |m: String| MapperError::SearchSpace(format!("invalid assignment: {m}"));
        if a.layer_engine.len() != self.layers() || a.layer_option.len() != self.layers() {
            return Err(bad("wrong number of layers".into()));
        }
        let mut loads = vec![0u64; a.engines.len()];
        let mut bytes = 0u64;
        for l in 0..self.layers() {
            let e = a.layer_engine[l];
            let c = *a
                .engines
                .get(e)
                .ok_or_else(|| bad(format!("layer {l} on missing engine {e}")))?;
            let opts = self
                .options
                .get(l)
                .and_then(|r| r.get(c))
                .ok_or_else(|| bad(format!("config {c} out of range")))?;
            let o = opts
                .get(a.layer_option[l])
                .ok_or_else(|| bad(format!("layer {l}: option out of range on config {c}")))?;
            loads[e] = loads[e].saturating_add(o.latency);
            bytes = bytes.saturating_add(o.bytes);
        }
        if !res_fits(&self.assignment_resources(a), &self.budget) {
            return Err(bad("over budget".into()));
        }
        let load = match f {
            Formulation::Sequential { .. } => loads.into_iter().fold(0u64, u64::saturating_add),
            _ => loads.into_iter().max().unwrap_or(0),
        } as f64;
        Ok(load.max(bytes as f64 / self.ddr_bytes_per_cycle))
    }

    /// True when every option's latency already covers its DDR time at the board rate
    /// (`latency · rate ≥ bytes`), as with any model whose latency includes memory time. Then,
    /// for a single engine, the shared-DDR bound can never decide the objective, and options
    /// can be compared by latency alone.
    pub fn memory_in_latency(&self) -> bool {
        self.options
            .iter()
            .flatten()
            .flatten()
            .all(|o| o.latency as f64 * self.ddr_bytes_per_cycle >= o.bytes as f64)
    }

    /// Tie-breaking score of an assignment.
    pub fn assignment_score(&self, a: &Assignment) -> f64 {
        a.engines.iter().map(|&c| self.score(c)).sum()
    }

    /// Number of complete assignments the formulation has on this (pruned) problem: the size of
    /// the space an exhaustive search covers. For heterogeneous it is an upper bound (budget
    /// ignored when counting engine tuples).
    pub fn space_size(&self, f: Formulation) -> f64 {
        let n = |l: usize, c: usize| self.options[l][c].len() as f64;
        match f {
            Formulation::Overlay => (0..self.configs())
                .map(|c| (0..self.layers()).map(|l| n(l, c)).product::<f64>())
                .sum(),
            Formulation::Dataflow => (0..self.layers())
                .map(|l| (0..self.configs()).map(|c| n(l, c)).sum::<f64>())
                .product(),
            Formulation::Heterogeneous { engines } | Formulation::Sequential { engines } => {
                let c = self.configs() as f64;
                let e = engines as f64;
                // Multisets of `engines` configurations: C(c + e − 1, e).
                let tuples: f64 = (0..engines)
                    .map(|i| (c + i as f64) / (i as f64 + 1.0))
                    .product();
                let per_layer: f64 = (0..self.layers())
                    .map(|l| e * (0..self.configs()).map(|c| n(l, c)).fold(0.0f64, f64::max))
                    .product();
                tuples * per_layer
            }
        }
    }
}

/// Keeps the Pareto front of options: by latency only (`latency_only`: the overlay case when
/// [`Problem::memory_in_latency`] holds, so bytes cannot decide the objective) or by
/// (latency, bytes). Returns the kept indices, sorted by
/// latency. Dropping a dominated option never changes an optimum.
pub fn pareto(opts: &[OptionCost], latency_only: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..opts.len()).collect();
    idx.sort_by_key(|&i| (opts[i].latency, opts[i].bytes, i));
    if latency_only {
        idx.truncate(1);
        return idx;
    }
    let mut kept = Vec::new();
    let mut best_bytes = u64::MAX;
    for i in idx {
        if opts[i].bytes < best_bytes {
            best_bytes = opts[i].bytes;
            kept.push(i);
        }
    }
    kept
}

/// A pruned problem and the way back to the original indices.
#[derive(Debug, Clone)]
pub struct Pruned {
    /// The smaller problem.
    pub problem: Problem,
    /// Original configuration index of each kept configuration.
    pub config_map: Vec<usize>,
    /// `option_map[l][c]`: original option index of each kept option.
    pub option_map: Vec<Vec<Vec<usize>>>,
}

impl Pruned {
    /// Maps an assignment of the pruned problem back to the original indices.
    pub fn unmap(&self, a: &Assignment) -> Assignment {
        Assignment {
            engines: a.engines.iter().map(|&c| self.config_map[c]).collect(),
            layer_engine: a.layer_engine.clone(),
            layer_option: (0..a.layer_option.len())
                .map(|l| {
                    let c = a.engines[a.layer_engine[l]];
                    self.option_map[l][c][a.layer_option[l]]
                })
                .collect(),
        }
    }
}

/// Removes what cannot be part of an optimum for `f`: configurations over budget on their own,
/// configurations that cannot serve the formulation (overlay: must run every layer; others:
/// must run some layer), dominated options (see [`pareto`]) and, when `dominance` is set,
/// dominated configurations (another one with no more of any resource whose options are at
/// least as good on every layer; exact ties keep the lower index).
pub fn prune(p: &Problem, f: Formulation, dominance: bool) -> Pruned {
    let latency_only = f == Formulation::Overlay && p.memory_in_latency();
    let layers = p.layers();
    let fits: Vec<usize> = (0..p.configs())
        .filter(|&c| res_fits(&p.resources[c], &p.budget))
        .filter(|&c| {
            let runs = |l: usize| !p.options[l][c].is_empty();
            match f {
                Formulation::Overlay => (0..layers).all(runs),
                _ => (0..layers).any(runs),
            }
        })
        .collect();
    // Option fronts per (layer, kept config).
    let fronts: Vec<Vec<Vec<usize>>> = (0..layers)
        .map(|l| {
            fits.iter()
                .map(|&c| pareto(&p.options[l][c], latency_only))
                .collect()
        })
        .collect();
    let n = fits.len();
    let mut keep = vec![true; n];
    if dominance {
        // covers(a, b): every option of b on every layer is matched or beaten by one of a.
        let covers = |a: usize, b: usize| -> bool {
            (0..layers).all(|l| {
                let (ca, cb) = (fits[a], fits[b]);
                fronts[l][b].iter().all(|&ob| {
                    let y = p.options[l][cb][ob];
                    fronts[l][a].iter().any(|&oa| {
                        let x = p.options[l][ca][oa];
                        x.latency <= y.latency && (latency_only || x.bytes <= y.bytes)
                    })
                })
            })
        };
        for b in 0..n {
            for a in 0..n {
                if a == b || !keep[a] {
                    continue;
                }
                let ra = &p.resources[fits[a]];
                let rb = &p.resources[fits[b]];
                if !res_fits(ra, rb) || !covers(a, b) {
                    continue;
                }
                // Mutual domination (identical costs): keep the lower index only.
                let mutual = res_fits(rb, ra) && covers(b, a);
                if !mutual || a < b {
                    keep[b] = false;
                    break;
                }
            }
        }
    }
    let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
    let mut fronts = fronts;
    if dominance && f == Formulation::Dataflow {
        // Each dataflow engine serves one layer, so a (configuration, option) pair is useless
        // for that layer when another pair is no slower, moves no more bytes and needs no
        // more of any resource. Exact for dataflow only: the other formulations share a
        // configuration between layers.
        for (l, front) in fronts.iter_mut().enumerate() {
            let mut items: Vec<(usize, usize)> = kept
                .iter()
                .flat_map(|&i| front[i].iter().map(move |&o| (i, o)))
                .collect();
            let cost = |&(i, o): &(usize, usize)| p.options[l][fits[i]][o];
            let rsum = |i: usize| p.resources[fits[i]].iter().sum::<u64>();
            items.sort_by_key(|it| {
                let c = cost(it);
                (c.latency, c.bytes, rsum(it.0), it.0, it.1)
            });
            let mut survivors: Vec<(usize, usize)> = Vec::new();
            for it in items {
                let c = cost(&it);
                let r = &p.resources[fits[it.0]];
                let dominated = survivors
                    .iter()
                    .any(|s| cost(s).bytes <= c.bytes && res_fits(&p.resources[fits[s.0]], r));
                if !dominated {
                    survivors.push(it);
                }
            }
            for (i, opts) in front.iter_mut().enumerate() {
                opts.retain(|&o| survivors.contains(&(i, o)));
            }
        }
    }
    let problem = Problem {
        budget: p.budget,
        ddr_bytes_per_cycle: p.ddr_bytes_per_cycle,
        resources: kept.iter().map(|&i| p.resources[fits[i]]).collect(),
        layer_names: p.layer_names.clone(),
        options: (0..layers)
            .map(|l| {
                kept.iter()
                    .map(|&i| {
                        fronts[l][i]
                            .iter()
                            .map(|&o| p.options[l][fits[i]][o])
                            .collect()
                    })
                    .collect()
            })
            .collect(),
    };
    Pruned {
        problem,
        config_map: kept.iter().map(|&i| fits[i]).collect(),
        option_map: (0..layers)
            .map(|l| kept.iter().map(|&i| fronts[l][i].clone()).collect())
            .collect(),
    }
}

/// Without pruning: only the configurations that fit the budget alone and can serve the
/// formulation, with every option kept (used to show the solvers handle tiling choices
/// themselves).
pub fn filter_only(p: &Problem, f: Formulation) -> Pruned {
    let layers = p.layers();
    let fits: Vec<usize> = (0..p.configs())
        .filter(|&c| res_fits(&p.resources[c], &p.budget))
        .filter(|&c| {
            let runs = |l: usize| !p.options[l][c].is_empty();
            match f {
                Formulation::Overlay => (0..layers).all(runs),
                _ => (0..layers).any(runs),
            }
        })
        .collect();
    Pruned {
        problem: Problem {
            budget: p.budget,
            ddr_bytes_per_cycle: p.ddr_bytes_per_cycle,
            resources: fits.iter().map(|&c| p.resources[c]).collect(),
            layer_names: p.layer_names.clone(),
            options: (0..layers)
                .map(|l| fits.iter().map(|&c| p.options[l][c].clone()).collect())
                .collect(),
        },
        option_map: (0..layers)
            .map(|l| {
                fits.iter()
                    .map(|&c| (0..p.options[l][c].len()).collect())
                    .collect()
            })
            .collect(),
        config_map: fits,
    }
}

/// Explains why nothing fits, naming the binding budget line. Returns `None` when every line
/// on its own admits some choice (the caller then reports a joint infeasibility).
pub fn diagnose(p: &Problem, f: Formulation, board: &str) -> Option<String> {
    let layers = p.layers();
    let line = |k: usize, need: u64, what: &str| {
        format!(
            "{what} needs {need} {}; {board} has {}",
            RESOURCE_LABELS[k], p.budget[k]
        )
    };
    let runs = |l: usize, c: usize| !p.options[l][c].is_empty();
    // A layer nothing can run.
    for l in 0..layers {
        if !(0..p.configs()).any(|c| runs(l, c)) {
            return Some(format!(
                "layer {l} ({}) cannot run on any candidate configuration",
                p.layer_names[l]
            ));
        }
    }
    match f {
        Formulation::Overlay => {
            let usable: Vec<usize> = (0..p.configs())
                .filter(|&c| (0..layers).all(|l| runs(l, c)))
                .collect();
            if usable.is_empty() {
                return Some("no single candidate configuration can run every layer".into());
            }
            binding(p, &usable, 1, "even the smallest configuration", &line)
        }
        Formulation::Heterogeneous { engines } | Formulation::Sequential { engines } => {
            let all: Vec<usize> = (0..p.configs()).collect();
            binding(
                p,
                &all,
                engines as u64,
                &format!("{engines} engines of the smallest configuration"),
                &line,
            )
        }
        Formulation::Dataflow => {
            let mut over: Vec<(f64, String)> = Vec::new();
            for k in 0..5 {
                let need: u64 = (0..layers)
                    .map(|l| {
                        (0..p.configs())
                            .filter(|&c| runs(l, c))
                            .map(|c| p.resources[c][k])
                            .min()
                            .unwrap_or(u64::MAX)
                    })
                    .fold(0u64, u64::saturating_add);
                if need > p.budget[k] {
                    let ratio = need as f64 / (p.budget[k] as f64).max(0.5);
                    over.push((
                        ratio,
                        line(
                            k,
                            need,
                            &format!(
                                "one engine per layer ({layers} layers), each the smallest that runs it,"
                            ),
                        ),
                    ));
                }
            }
            over.sort_by(|a, b| b.0.total_cmp(&a.0));
            over.into_iter().next().map(|(_, s)| s)
        }
    }
}

fn binding(
    p: &Problem,
    usable: &[usize],
    copies: u64,
    what: &str,
    line: &dyn Fn(usize, u64, &str) -> String,
) -> Option<String> {
    // Every line that on its own excludes all candidates, the most overdrawn first.
    let mut over: Vec<(f64, String)> = (0..5)
        .filter_map(|k| {
            let need = usable
                .iter()
                .map(|&c| p.resources[c][k])
                .min()
                .unwrap_or(u64::MAX)
                .saturating_mul(copies);
            (need > p.budget[k]).then(|| {
                let ratio = need as f64 / (p.budget[k] as f64).max(0.5);
                (ratio, line(k, need, what))
            })
        })
        .collect();
    if !over.is_empty() {
        over.sort_by(|a, b| b.0.total_cmp(&a.0));
        return Some(
            over.into_iter()
                .map(|(_, s)| s)
                .collect::<Vec<_>>()
                .join("; also, "),
        );
    }
    // Every line alone admits something, but maybe no configuration meets all at once: name
    // the line that excludes the most candidates.
    if copies == 1 && !usable.iter().any(|&c| res_fits(&p.resources[c], &p.budget)) {
        let worst = (0..5)
            .max_by_key(|&k| {
                usable
                    .iter()
                    .filter(|&&c| p.resources[c][k] > p.budget[k])
                    .count()
            })
            .unwrap_or(0);
        let excluded = usable
            .iter()
            .filter(|&&c| p.resources[c][worst] > p.budget[worst])
            .count();
        return Some(format!(
            "no configuration meets every budget line at once; {} excludes {excluded} of {} candidates (the board has {} {})",
            RESOURCE_LABELS[worst],
            usable.len(),
            p.budget[worst],
            RESOURCE_LABELS[worst]
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oc(latency: u64, bytes: u64) -> OptionCost {
        OptionCost {
            latency,
            compute: latency,
            bytes,
        }
    }

    #[test]
    fn pareto_keeps_the_front() {
        let o = [oc(5, 10), oc(3, 20), oc(4, 15), oc(6, 5), oc(4, 16)];
        assert_eq!(pareto(&o, false), vec![1, 2, 0, 3]);
        assert_eq!(pareto(&o, true), vec![1]);
    }

    #[test]
    fn diagnose_names_the_binding_line() {
        let p = Problem {
            budget: [100, 200, 10, 4, 0],
            ddr_bytes_per_cycle: 8.0,
            resources: vec![[50, 50, 16, 2, 0], [60, 60, 64, 2, 0]],
            layer_names: vec!["a".into()],
            options: vec![vec![vec![oc(1, 1)], vec![oc(1, 1)]]],
        };
        let msg = diagnose(&p, Formulation::Overlay, "Tiny").unwrap();
        assert!(msg.contains("needs 16 DSP; Tiny has 10"), "{msg}");
    }
}
