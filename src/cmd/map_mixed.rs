//! `accelforge map MODEL.onnx --calib X.npy`: per-quantizer precision and the engines chosen
//! by one MILP (issue 18), then proven by running the re-quantized network.
//!
//! 1. Sensitivity: every QONNX `Quant` site alone at each candidate width, the network run on
//!    the calibration data by the golden engine (`accelforge_models::sensitivity`); a site's
//!    cost at a width is the accuracy it loses (or, without labels, the share of inputs whose
//!    top-1 class changes).
//! 2. Which operand of which array layer a site sets, and the integer width it needs there,
//!    come from lowering the network with the site narrowed: a site that changes no array
//!    operand (the output quantizer) is not a choice.
//! 3. The systolic engine is priced once per operand-width class (activation width × weight
//!    width) with the template's exact models, each class pruned on its own and the classes
//!    merged; `accelforge_mapper::precision` links each layer's placement to its sites' widths.
//! 4. The chosen network is re-quantized, run by the golden engine on held-out data, and a batch
//!    of it runs in Verilator on the chosen engines (each layer on its engine), checked against
//!    the golden engine; predicted and measured accuracy and latency are reported side by side.

use std::io::Write as _;
use std::path::Path;

use accelforge_boards::BoardDb;
use accelforge_mapper::precision::{self, Goal, MixedSolved, Need, Precision};
use accelforge_mapper::{
    Method, Problem, SolveStatus, SystolicTemplateModel, build_instance,
    exhaustive::DEFAULT_POINT_LIMIT, prune,
};
use accelforge_models::onnx::Graph;
use accelforge_models::sensitivity::{Site, measure, with_bits};
use accelforge_models::{InputType, IntNetwork, ModelError, top1_accuracy};
use accelforge_templates::systolic::{Dataflow, PeKind, RequantMode, SystolicParams};
use accelforge_templates::template::MapDataflow;
use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;

use super::map::{FormulationArg, MapArgs};
use super::run_rtl::{self, RtlSetup};

/// One quantizer the MILP chooses a width for.
#[derive(Debug, Clone, Serialize)]
struct SiteChoice {
    name: String,
    kind: &'static str,
    exported_bits: u32,
    /// Candidate widths, with the predicted accuracy loss of each (fraction).
    options: Vec<(u32, f64)>,
    chosen_bits: u32,
    /// The array layers and operand this site sets (`conv1 activations`).
    sets: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct EngineChoice {
    params: SystolicParams,
    dsp: u64,
    lut: u64,
    ff: u64,
    bram18: u64,
    layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Measured {
    inputs: usize,
    /// Top-1 accuracy, when labels were given.
    accuracy: Option<f64>,
    /// Inputs whose top-1 class equals the exported model's.
    agreement: f64,
}

#[derive(Debug, Clone, Serialize)]
struct RtlMeasured {
    inputs: usize,
    cycles: u64,
    model_cycles: u64,
    latency_ms: f64,
    mismatches: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    board: String,
    formulation: String,
    engines_allowed: usize,
    goal: Goal,
    clock_mhz: f64,
    batch: u64,
    calibration_inputs: usize,
    base_accuracy: Option<f64>,
    sites: Vec<SiteChoice>,
    engines: Vec<EngineChoice>,
    /// Predicted: the MILP's latency of the batch (cycles, ms), the summed per-quantizer loss
    /// (share of calibration inputs whose top-1 class leaves the exported model's), and the
    /// accuracy that loss guarantees at least (calibration accuracy minus the loss).
    predicted_cycles: f64,
    predicted_ms: f64,
    predicted_loss: f64,
    predicted_accuracy: Option<f64>,
    /// The chosen network's loss measured on the calibration data (what the budget checks).
    calibration_loss: f64,
    /// Choices the solver returned whose measured loss missed the budget (each cut).
    rejected_choices: usize,
    /// The same engines' MILP optimum with every site at its exported width.
    exported_cycles: Option<f64>,
    status: SolveStatus,
    solve_seconds: f64,
    /// Configurations the MILP chose from, after dropping those a wider one dominates.
    configurations: usize,
    /// Configurations priced (every width class, each pruned on its own).
    priced_configurations: usize,
    heldout: Option<Measured>,
    rtl: Option<RtlMeasured>,
}

/// Integer width of a range: unsigned when `signed` is false.
fn width((lo, hi): (i64, i64), signed: bool) -> u32 {
    let bits = |v: i64| 64 - v.leading_zeros();
    if signed {
        bits(if lo < 0 { -(lo + 1) } else { 0 }).max(bits(hi.max(0))) + 1
    } else {
        bits(hi).max(1)
    }
}

fn qtype(w: u32, signed: bool) -> String {
    if signed {
        format!("ap_fixed<{w},{w}>")
    } else {
        format!("ap_ufixed<{w},{w}>")
    }
}

/// Lowers `g`, calibrating an 8-bit input type from `x` when the network input is float.
fn lower(g: &Graph, x: &[f32]) -> anyhow::Result<IntNetwork> {
    match accelforge_models::lower::lower(g, None) {
        Err(ModelError::FloatInput { .. }) => {
            let t = InputType::calibrate(x, 8)
                .context("cannot calibrate an input type from the data")?;
            Ok(accelforge_models::lower::lower(g, Some(t))?)
        }
        other => Ok(other?),
    }
}

/// The integer ranges an array layer's engine carries: activations in, weights, outputs.
type Ranges = [(i64, i64); 3];

/// Operand names, in [`Ranges`] order.
const OPERANDS: [&str; 3] = ["activations", "weights", "outputs"];

/// (stage index, ranges) of every array layer.
fn array_ranges(net: &IntNetwork) -> Vec<(usize, Ranges)> {
    net.layers()
        .iter()
        .enumerate()
        .filter(|(_, l)| l.runs_on == "array")
        .map(|(i, l)| {
            (
                i,
                [
                    l.in_range.unwrap_or((0, 0)),
                    l.weight_range.unwrap_or((0, 0)),
                    l.out_range,
                ],
            )
        })
        .collect()
}

fn outputs(net: &IntNetwork, x: &[f32]) -> anyhow::Result<Vec<f32>> {
    let rows: Vec<Vec<f32>> = x
        .par_chunks(net.input_len())
        .map(|xi| net.run(xi))
        .collect::<Result<_, _>>()?;
    Ok(rows.concat())
}

fn agreement(a: &[f32], b: &[f32], width: usize) -> f64 {
    let n = a.len() / width.max(1);
    let same = a
        .chunks(width)
        .zip(b.chunks(width))
        .filter(|(p, q)| accelforge_models::top1(p) == accelforge_models::top1(q))
        .count();
    same as f64 / n.max(1) as f64
}

/// The network's data: calibration and held-out inputs with their labels.
struct Data {
    calib: Vec<f32>,
    calib_labels: Option<Vec<i64>>,
    heldout: Vec<f32>,
    heldout_labels: Option<Vec<i64>>,
    heldout_is_calib: bool,
}

fn read_data(args: &MapArgs, per: usize, shape: &[usize]) -> anyhow::Result<Data> {
    let calib_path = args.calib.as_deref().context("internal: --calib")?;
    let read = |p: &Path, what: &str| -> anyhow::Result<Vec<f32>> {
        let x = super::npy::read_f32(p, what)?;
        anyhow::ensure!(
            x.ndim() >= 1 && x.shape()[1..] == shape[1..],
            "{}: shape {:?}, but the model takes a batch of {:?}",
            p.display(),
            x.shape(),
            &shape[1..]
        );
        anyhow::ensure!(x.shape()[0] > 0, "{}: holds no inputs", p.display());
        Ok(x.as_slice()
            .context("the array is not contiguous (C order)")?
            .to_vec())
    };
    let labels = |p: Option<&Path>, n: usize| -> anyhow::Result<Option<Vec<i64>>> {
        let Some(p) = p else { return Ok(None) };
        let l = super::npy::read_labels(p)?;
        anyhow::ensure!(
            l.len() == n,
            "{}: {} labels for {n} inputs; give one label per input",
            p.display(),
            l.len()
        );
        Ok(Some(l))
    };
    let x = read(calib_path, "the calibration input")?;
    let n = x.len() / per;
    let all_labels = labels(args.labels.as_deref(), n)?;
    let (mut calib, mut calib_labels) = (x, all_labels);
    if let Some(skip) = args.skip {
        let skip = usize::try_from(skip)?;
        anyhow::ensure!(
            skip < n,
            "--skip {skip}: {} holds {n} inputs; nothing would be left",
            calib_path.display()
        );
        calib.drain(..skip * per);
        if let Some(l) = calib_labels.as_mut() {
            l.drain(..skip);
        }
    }
    let n = calib.len() / per;
    let mut heldout = None;
    if let Some(split) = args.split {
        let split = usize::try_from(split)?;
        anyhow::ensure!(
            split < n,
            "--split {split}: {} holds {n} inputs (after --skip); the split must leave some \
             held out",
            calib_path.display()
        );
        let rest = calib.split_off(split * per);
        let rest_labels = calib_labels.as_mut().map(|l| l.split_off(split));
        heldout = Some((rest, rest_labels));
    }
    if let Some(p) = args.heldout.as_deref() {
        let hx = read(p, "the held-out input")?;
        let hn = hx.len() / per;
        heldout = Some((hx, labels(args.heldout_labels.as_deref(), hn)?));
    }
    let heldout_is_calib = heldout.is_none();
    let (heldout, heldout_labels) =
        heldout.unwrap_or_else(|| (calib.clone(), calib_labels.clone()));
    Ok(Data {
        calib,
        calib_labels,
        heldout,
        heldout_labels,
        heldout_is_calib,
    })
}

/// What the sites do to the array layers: per site, per option, per array layer, the
/// (activation, weight) ranges; and which (layer, operand) each site sets.
struct SiteEffects {
    /// Sites that set some array operand, with their options.
    chosen: Vec<(Site, Vec<u32>)>,
    /// Per array layer and operand: the site (index into `chosen`) that sets it.
    sets: Vec<[Option<usize>; 3]>,
    /// `ranges[s][o][l]`: the ranges of array layer `l` with site `s` at option `o`.
    ranges: Vec<Vec<Vec<Ranges>>>,
    /// The per-channel requantizer (channels, multiplier bits, offset bits) wide enough for
    /// the exported network and every chosen site at every option.
    requant: (u32, u32, u32),
}

/// The per-channel requantizer `net` needs, widened to cover `acc`.
fn widen_requant(acc: (u32, u32, u32), net: &IntNetwork) -> anyhow::Result<(u32, u32, u32)> {
    Ok(match run_rtl::requant_needs(net)? {
        (
            RequantMode::PerChannel {
                max_channels,
                mul_bits,
                add_bits,
            },
            _,
        ) => (
            acc.0.max(max_channels),
            acc.1.max(mul_bits),
            acc.2.max(add_bits),
        ),
        _ => acc,
    })
}

fn site_effects(
    g: &Graph,
    sites: &[Site],
    bits: &[u32],
    (base_net, base): (&IntNetwork, &[(usize, Ranges)]),
    x: &[f32],
) -> anyhow::Result<SiteEffects> {
    let mut out = SiteEffects {
        chosen: Vec::new(),
        sets: vec![[None; 3]; base.len()],
        ranges: Vec::new(),
        requant: widen_requant((1, 1, 1), base_net)?,
    };
    for site in sites {
        let options: Vec<u32> = bits
            .iter()
            .copied()
            .filter(|&b| b >= 2 && b <= site.bits)
            .collect();
        if options.is_empty() {
            continue;
        }
        let mut per_option = Vec::new();
        let mut requant = out.requant;
        let mut touched = [
            vec![false; base.len()],
            vec![false; base.len()],
            vec![false; base.len()],
        ];
        for &b in &options {
            let net = lower(&with_bits(g, site, b)?, x)
                .with_context(|| format!("lowering with {} at {b} bits", site.name))?;
            let r = array_ranges(&net);
            anyhow::ensure!(
                r.len() == base.len(),
                "{} at {b} bits changes which layers run on the array",
                site.name
            );
            for (l, ((_, now), (_, was))) in r.iter().zip(base).enumerate() {
                for k in 0..3 {
                    touched[k][l] |= now[k] != was[k];
                }
            }
            per_option.push(r.iter().map(|&(_, ranges)| ranges).collect::<Vec<_>>());
            requant = widen_requant(requant, &net)?;
        }
        // A site at its exported width changes nothing; one narrower shows what it sets.
        if !touched.iter().flatten().any(|&t| t) {
            continue;
        }
        let s = out.chosen.len();
        out.requant = requant;
        for (k, t) in touched.iter().enumerate() {
            for (l, &hit) in t.iter().enumerate() {
                if hit {
                    if let Some(other) = out.sets[l][k] {
                        anyhow::bail!(
                            "array layer {l}'s {} depend on two quantizers ({} and {}); \
                             mixed precision supports one per operand",
                            OPERANDS[k],
                            out.chosen[other].0.name,
                            site.name
                        );
                    }
                    out.sets[l][k] = Some(s);
                }
            }
        }
        out.chosen.push((site.clone(), options));
        out.ranges.push(per_option);
    }
    Ok(out)
}

/// The engine's base params for a width class: the operand types, the narrowest accumulator,
/// the per-channel requantizer and output type wide enough for every variant in `nets`.
fn class_base(
    (wa, wb, (out_signed, wo)): (u32, u32, (bool, u32)),
    (act_signed, max_k): (bool, u32),
    requant: RequantMode,
) -> anyhow::Result<SystolicParams> {
    let mut p = SystolicParams {
        input_type: qtype(wa, act_signed),
        weight_type: qtype(wb, true),
        max_k,
        relu: false,
        dataflow: Dataflow::Os,
        requant,
        output_type: qtype(wo, out_signed),
        ..SystolicParams::default()
    };
    p.max_k = p.max_k.max(max_k);
    for w in 2..=64u32 {
        p.acc_type = format!("ap_fixed<{w},{w}>");
        if p.validate().is_ok() {
            return Ok(p);
        }
    }
    p.validate()
        .context("no accumulator up to 64 bits holds these dot products")?;
    Ok(p)
}

pub fn run(args: MapArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    anyhow::ensure!(
        (0.0..=86_400.0).contains(&args.time_limit),
        "--time-limit must be a number of seconds in 0..=86400 (0 = no limit), not {}",
        args.time_limit
    );
    // What is left of --time-limit (None: no limit); pricing stops at it and each solve gets
    // what remains.
    let remaining =
        || (args.time_limit > 0.0).then(|| args.time_limit - started.elapsed().as_secs_f64());
    let out_of_time = |phase: &str| -> anyhow::Result<()> {
        match remaining() {
            Some(left) if left <= 0.0 => anyhow::bail!(
                "time limit of {} s reached while {phase}; raise --time-limit, or narrow the \
                 search (--space small, fewer --bits)",
                args.time_limit
            ),
            _ => Ok(()),
        }
    };
    let model = args.onnx.clone().context("internal: MODEL")?;
    for (given, flag) in [
        (args.params_out.is_some(), "--params-out (use --mixed-out)"),
        (args.model != super::map::ModelArg::Template, "--model"),
        (
            args.linear_requant != super::map::LinearRequantArg::Single,
            "--linear-requant",
        ),
        (args.reserve_dsp != 0, "--reserve-dsp"),
        (!args.dataflow.is_empty(), "--dataflow"),
        (!args.buffer_ram.is_empty(), "--buffer-ram"),
        (args.no_prune, "--no-prune"),
    ] {
        anyhow::ensure!(
            !given,
            "{flag} applies to `map --workload`; mapping a model (MODEL.onnx --calib) uses the \
             systolic template's exact models, output-stationary, with the per-channel \
             requantizer"
        );
    }
    anyhow::ensure!(
        args.accuracy_drop.is_none() || args.latency_ms.is_none(),
        "give --accuracy-drop or --latency-ms, not both"
    );
    if let Some(path) = &args.mixed_out {
        // Refused before minutes of work, not after.
        anyhow::ensure!(
            !path.is_dir(),
            "--mixed-out {}: is a directory; give a file name",
            path.display()
        );
    }
    if let Some(d) = args.accuracy_drop {
        anyhow::ensure!(
            (0.0..=100.0).contains(&d),
            "--accuracy-drop is a number of percentage points in 0..=100, not {d}"
        );
    }
    if let Some(t) = args.latency_ms {
        anyhow::ensure!(
            t > 0.0 && t.is_finite(),
            "--latency-ms must be a positive number of milliseconds, not {t}"
        );
    }
    let db = BoardDb::load(args.boards_dir.as_deref()).context("loading the board database")?;
    let board = db.get(&args.board)?;
    let clock = args.clock_mhz.unwrap_or_else(|| board.default_clock_mhz());
    let bytes = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
    let g = accelforge_models::onnx::parse(&bytes)
        .with_context(|| format!("importing {}", model.display()))?;
    let per: usize = g.input.shape[1..].iter().product();
    let data = read_data(&args, per, &g.input.shape)?;
    let base_net =
        lower(&g, &data.calib).with_context(|| format!("lowering {}", model.display()))?;
    let base = array_ranges(&base_net);
    anyhow::ensure!(
        !base.is_empty(),
        "{} has no layer that runs on the array",
        model.display()
    );

    // 1. Sensitivity.
    let (sites, effects) = measure(&g, &data.calib, data.calib_labels.as_deref(), &args.bits)
        .with_context(|| format!("measuring {}", model.display()))?;
    anyhow::ensure!(
        !sites.is_empty(),
        "{} has no QONNX `Quant` node with a constant bit width to choose (QCDQ models are \
         8-bit by format)",
        model.display()
    );
    let base_out = outputs(&base_net, &data.calib)?;
    let base_accuracy = data
        .calib_labels
        .as_deref()
        .map(|l| top1_accuracy(&base_out, base_net.out_len, l));
    // The loss of a width is the share of calibration inputs whose top-1 class moves away
    // from the exported model's: it bounds the accuracy drop on the same inputs whatever the
    // labels, and unlike the drop it does not let a gain on some inputs hide a loss on others
    // (measured on the digits CNN: 0.33 points of accuracy on calibration, 1.01 held out).
    let loss = |site: usize, bits: u32| -> f64 {
        effects
            .iter()
            .find(|e| e.site == site && e.bits == bits)
            .map_or(0.0, |e| 1.0 - e.agreement)
    };

    // 2. What each site sets.
    let fx = site_effects(&g, &sites, &args.bits, (&base_net, &base), &data.calib)?;
    // Operand capacities: activations and weights by width (one signedness each, as the
    // network has it); outputs, whose signedness differs between layers (a ReLU layer's
    // unsigned, a classifier's signed), as two capacities: the unsigned width a type holds
    // (w for ap_ufixed<w>, w - 1 for ap_fixed<w>) and the signed width (w for ap_fixed<w>,
    // none for ap_ufixed<w>).
    let all_ranges = || {
        base.iter()
            .map(|(_, r)| *r)
            .chain(fx.ranges.iter().flatten().flatten().copied())
    };
    let act_signed = all_ranges().any(|r| r[0].0 < 0);
    let out_signed: Vec<bool> = (0..base.len())
        .map(|l| base[l].1[2].0 < 0 || fx.ranges.iter().flatten().any(|r| r[l][2].0 < 0))
        .collect();
    // The width operand `k` of layer `l` needs with ranges `r` (0: none).
    let need_width = |l: usize, k: usize, r: &Ranges| -> u32 {
        match k {
            0 => width(r[0], act_signed),
            1 => width(r[1], true),
            2 if !out_signed[l] => width(r[2], false),
            3 if out_signed[l] => width(r[2], true),
            _ => 0,
        }
    };
    let need = |l: usize, k: usize| -> Need {
        let site = fx.sets[l][k.min(2)].filter(|_| need_width(l, k, &base[l].1) > 0);
        match site {
            None => Need::Fixed(need_width(l, k, &base[l].1)),
            Some(s) => Need::Site {
                site: s,
                widths: fx.ranges[s]
                    .iter()
                    .map(|r| need_width(l, k, &r[l]))
                    .collect(),
            },
        }
    };
    let needs: Vec<Vec<Need>> = (0..base.len())
        .map(|l| (0..4).map(|k| need(l, k)).collect())
        .collect();
    // The widths engines are built for: each need rounded up to a candidate width (a 3-bit
    // weight runs on a 4-bit engine), which keeps the classes few.
    let round_up = |w: u32| -> u32 {
        args.bits
            .iter()
            .copied()
            .filter(|&b| b >= w)
            .min()
            .unwrap_or(w)
    };
    let needed = |k: usize| -> Vec<u32> {
        let mut w: Vec<u32> = needs
            .iter()
            .flat_map(|n| match &n[k] {
                Need::Fixed(w) => vec![*w],
                Need::Site { widths, .. } => widths.clone(),
            })
            .filter(|&w| w > 0)
            .map(round_up)
            .collect();
        w.sort_unstable();
        w.dedup();
        w
    };
    // Output types: every unsigned width needed, and every signed one, and one bit wider than
    // the widest unsigned one (an engine that runs signed and unsigned layers).
    let mut out_types: Vec<(bool, u32)> = needed(2).into_iter().map(|w| (false, w)).collect();
    let mut signed: Vec<u32> = needed(3);
    if !signed.is_empty() {
        signed.extend(needed(2).last().map(|w| w + 1));
    }
    signed.sort_unstable();
    signed.dedup();
    out_types.extend(signed.into_iter().map(|w| (true, w)));
    let class_widths = [needed(0), needed(1)];

    // 3. Price every width class. The requantizer and output type cover the exported network
    // and every site variant, so any chosen network fits the engine priced for it.
    let rq = fx.requant;
    let requant = RequantMode::PerChannel {
        max_channels: rq.0,
        mul_bits: rq.1,
        add_bits: rq.2,
    };
    let max_k = base_net
        .layers()
        .iter()
        .filter_map(|l| l.gemm())
        .map(|(_, k, _)| u32::try_from(k).unwrap_or(u32::MAX))
        .max()
        .unwrap_or(1);
    let batch = data.heldout.len() / per;
    let batch = args.rtl_limit.map_or(batch, |l| {
        batch.min(usize::try_from(l).unwrap_or(usize::MAX))
    }) as u64;
    let toml = super::import::workload_toml(&base_net, "model", &model.display().to_string());
    let workload = accelforge_mapper::workload::parse_workload(&toml, "workload", "model")
        .context("the imported workload")?;
    let workload = run_rtl::batched(&workload, batch);
    let f = args
        .formulation
        .unwrap_or(FormulationArg::Sequential)
        .formulation(args.engines);
    let mut space = match args.space {
        Some(super::map::SpaceArg::Default) => accelforge_mapper::SearchSpace::for_board(board),
        Some(super::map::SpaceArg::Small) => accelforge_mapper::SearchSpace::small(),
        None => model_space(board),
    };
    space.dataflows = vec![MapDataflow::OutputStationary];
    if !args.pe.is_empty() {
        space.pes = args
            .pe
            .iter()
            .map(|p| match p {
                super::map::MapPeArg::Dsp => PeKind::Dsp,
                super::map::MapPeArg::DspPacked => PeKind::DspPacked,
            })
            .collect();
    }
    let mut classes: Vec<(u32, u32, (bool, u32))> = Vec::new();
    for &wa in &class_widths[0] {
        for &wb in &class_widths[1] {
            classes.extend(out_types.iter().map(|&out| (wa, wb, out)));
        }
    }
    let (problem, origin, widths) = price_classes(
        &classes,
        (&workload, board, &space, clock, f),
        (act_signed, max_k, requant),
        &out_of_time,
    )?;
    anyhow::ensure!(
        problem.configs() > 0,
        "no engine configuration fits {} for this network",
        board.display_name
    );
    // Per site and option, the measured loss alone.
    let losses: Vec<Vec<f64>> = fx
        .chosen
        .iter()
        .map(|(site, options)| {
            let si = sites.iter().position(|s| s.node == site.node).unwrap_or(0);
            options.iter().map(|&b| loss(si, b)).collect()
        })
        .collect();
    let prec = Precision {
        site_costs: fx
            .chosen
            .iter()
            .zip(&losses)
            .map(|((site, options), losses)| {
                // A width is narrowed only when it buys latency: among choices of equal
                // measured loss, the second solve (least cost at the best latency) then keeps
                // the exported widths.
                options
                    .iter()
                    .zip(losses)
                    .map(|(&b, &l)| l + 1e-5 * f64::from(site.bits - b))
                    .collect()
            })
            .collect(),
        site_bits: fx.chosen.iter().map(|(_, o)| o.clone()).collect(),
        cuts: Vec::new(),
        needs,
        widths,
    };
    // Across classes: a configuration some wider one matches everywhere goes.
    let priced = problem.configs();
    let (problem, prec, kept) = precision::prune_dominated(&problem, &prec);
    let origin: Vec<SystolicParams> = kept.iter().map(|&c| origin[c].clone()).collect();
    let goal = match (args.accuracy_drop, args.latency_ms) {
        (_, Some(ms)) => Goal::MinCost {
            max_cycles: ms * clock * 1e3,
        },
        (drop, None) => Goal::MinLatency {
            max_cost: drop.unwrap_or(1.0) / 100.0,
        },
    };
    out_of_time("pricing the engines of every width class")?;
    let time_limit = remaining();
    let method = if args.exhaustive {
        Method::Exhaustive {
            limit: DEFAULT_POINT_LIMIT,
        }
    } else {
        Method::Ilp {
            solver: args.solver.solver(),
            time_limit,
        }
    };
    // Every choice the solver returns is measured: the re-quantized network on the
    // calibration data. Summed per-site losses miss interactions (measured on the digits CNN:
    // 1.0 point predicted, 3.4 lost), so a choice whose measured loss exceeds the budget is cut.
    let mut measured_loss = std::collections::HashMap::new();
    let mut rejected = 0usize;
    let mut measure_choice = |choice: &[usize]| -> anyhow::Result<f64> {
        if let Some(&l) = measured_loss.get(choice) {
            return Ok(l);
        }
        let net = lower(&requantized(&g, &fx.chosen, choice)?, &data.calib)?;
        let out = outputs(&net, &data.calib)?;
        let l = 1.0 - agreement(&out, &base_out, net.out_len);
        measured_loss.insert(choice.to_vec(), l);
        Ok(l)
    };
    let mut failure = None;
    let checked =
        precision::solve_checked(&problem, f, &prec, goal, method, 64, |choice| match goal {
            Goal::MinLatency { max_cost } => match measure_choice(choice) {
                Ok(l) if l <= max_cost + 1e-9 => true,
                Ok(_) => {
                    rejected += 1;
                    false
                }
                Err(e) => {
                    failure = Some(e);
                    true
                }
            },
            Goal::MinCost { .. } => true,
        });
    if let Some(e) = failure {
        return Err(e.context("measuring a precision choice"));
    }
    let (solved, _) = checked
        .map_err(|e| named(e, &board.display_name))
        .with_context(|| {
            format!(
                "choosing precisions and engines for {} on {}",
                model.display(),
                board.display_name
            )
        })?;
    let calib_loss = measure_choice(&solved.choice)?;
    let solve = |prec: &Precision, goal: Goal| -> anyhow::Result<MixedSolved> {
        match method {
            Method::Ilp { solver, time_limit } => {
                precision::solve(&problem, f, prec, goal, solver, time_limit)
            }
            Method::Exhaustive { limit } => precision::exhaustive(&problem, f, prec, goal, limit),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))
    };
    // The same engines with every site at its exported width (when that is a candidate).
    let exported_option = |site: usize| {
        let (s, options) = &fx.chosen[site];
        options.iter().position(|&b| b == s.bits)
    };
    let exported = if (0..fx.chosen.len()).all(|s| exported_option(s).is_some()) {
        let at_export = Precision {
            site_costs: Vec::new(),
            site_bits: Vec::new(),
            cuts: Vec::new(),
            needs: prec
                .needs
                .iter()
                .map(|n| {
                    n.iter()
                        .cloned()
                        .map(|need| match need {
                            Need::Site { site, widths } => {
                                Need::Fixed(widths[exported_option(site).unwrap_or(0)])
                            }
                            fixed => fixed,
                        })
                        .collect()
                })
                .collect(),
            widths: prec.widths.clone(),
        };
        solve(&at_export, Goal::MinLatency { max_cost: 0.0 })
            .ok()
            .map(|s| s.solved.objective)
    } else {
        None
    };

    // 4. The chosen network, measured.
    let mixed = requantized(&g, &fx.chosen, &solved.choice)?;
    let mut site_rows = Vec::new();
    for (s, (site, options)) in fx.chosen.iter().enumerate() {
        let bits = options[solved.choice[s]];
        let mut sets = Vec::new();
        for (l, ks) in fx.sets.iter().enumerate() {
            for (k, hit) in ks.iter().enumerate() {
                if *hit == Some(s) {
                    sets.push(format!(
                        "{} {}",
                        stage_name(&base_net, base[l].0),
                        OPERANDS[k]
                    ));
                }
            }
        }
        site_rows.push(SiteChoice {
            name: site.name.clone(),
            kind: site.kind,
            exported_bits: site.bits,
            options: options
                .iter()
                .zip(&losses[s])
                .map(|(&b, &c)| (b, c))
                .collect(),
            chosen_bits: bits,
            sets,
        });
    }
    let predicted_loss: f64 = (0..fx.chosen.len())
        .map(|s| losses[s][solved.choice[s]])
        .sum();
    let mixed_net = lower(&mixed, &data.calib).context("lowering the chosen network")?;
    let held_n = data.heldout.len() / per;
    let held_out = outputs(&mixed_net, &data.heldout)?;
    let held_base = outputs(&base_net, &data.heldout)?;
    let heldout = Measured {
        inputs: held_n,
        accuracy: data
            .heldout_labels
            .as_deref()
            .map(|l| top1_accuracy(&held_out, mixed_net.out_len, l)),
        agreement: agreement(&held_out, &held_base, mixed_net.out_len),
    };
    let (engines, layer_params) = engines_of(
        &solved.solved.assignment,
        (&problem, &origin),
        (&base_net, &base),
    );
    let rtl = if args.no_rtl {
        None
    } else {
        let setup = RtlSetup {
            params: engines[0].params.clone(),
            source: format!("board {} (mixed precision)", args.board),
            clock_mhz: clock,
            layer_params,
        };
        Some(in_verilator(
            &mixed_net,
            &setup,
            &data.heldout[..batch as usize * per],
        )?)
    };
    let report = Report {
        model: model.display().to_string(),
        board: args.board.clone(),
        formulation: f.name().to_string(),
        engines_allowed: f.engines().unwrap_or(1),
        goal,
        clock_mhz: clock,
        batch,
        calibration_inputs: data.calib.len() / per,
        base_accuracy,
        predicted_cycles: solved.solved.objective,
        predicted_ms: solved.solved.objective / (clock * 1e3),
        predicted_loss,
        predicted_accuracy: base_accuracy.map(|b| b - predicted_loss),
        calibration_loss: calib_loss,
        rejected_choices: rejected,
        exported_cycles: exported,
        status: solved.solved.status,
        solve_seconds: solved.solved.solve_seconds,
        configurations: problem.configs(),
        priced_configurations: priced,
        sites: site_rows,
        engines,
        heldout: Some(heldout),
        rtl,
    };
    if let Some(mismatches) = report.rtl.as_ref().map(|r| r.mismatches)
        && mismatches > 0
    {
        print(&report, args.json, data.heldout_is_calib)?;
        anyhow::bail!("{mismatches} mismatches between Verilator and the golden engine");
    }
    if let Some(path) = &args.mixed_out {
        let json = serde_json::to_string_pretty(&report).context("serializing the report")?;
        accelforge_hdl::output::write_atomic(path, json.as_bytes())?;
    }
    print(&report, args.json, data.heldout_is_calib)
}

/// The space a model is mapped in by default: it is priced once per operand-width class, so
/// it keeps array sides to powers of two up to 64 (a narrow type's cheaper PEs only pay off
/// when the array may grow, which `--space small`'s 16 × 16 cap forbids) and two buffer depths;
/// the board's stream widths and both DSP PE kinds as `--space default` has them.
fn model_space(board: &accelforge_boards::Board) -> accelforge_mapper::SearchSpace {
    let full = accelforge_mapper::SearchSpace::for_board(board);
    let sides = vec![4, 8, 16, 32, 64];
    accelforge_mapper::SearchSpace {
        rows: sides.clone(),
        cols: sides,
        buffer_depths: vec![2048],
        stream_bits: full.stream_bits.iter().max().copied().into_iter().collect(),
        ..full
    }
}

/// Latencies as the hardware runs them: the template's exact cycles (which already include the
/// engine's streams; its in and out streams overlap, so charging their bytes again at the
/// stream rate, as the generic bound does, over-counts) plus each command's table load,
/// bounded below by the board's DDR rate. These are the cycles Verilator measures.
fn exact_latencies(
    problem: &mut Problem,
    candidates: &[SystolicParams],
    workload: &accelforge_mapper::Workload,
) -> anyhow::Result<()> {
    let rate = problem.ddr_bytes_per_cycle;
    for (l, row) in problem.options.iter_mut().enumerate() {
        let layer = &workload.layers[l];
        let channels = u32::try_from(layer.lower().gemm.n)?;
        for (c, opts) in row.iter_mut().enumerate() {
            if opts.is_empty() {
                continue;
            }
            let r = candidates[c].resolve()?;
            let table = accelforge_templates::systolic::requant::table_load_cycles(&r, channels)?
                .saturating_mul(layer.repeat);
            for o in opts.iter_mut() {
                let cycles = o.compute.saturating_add(table);
                let ddr = (o.bytes as f64 / rate).ceil() as u64;
                o.compute = cycles;
                o.latency = cycles.max(ddr);
            }
        }
    }
    Ok(())
}

/// Prices the systolic template once per width class (activation width, weight width, output
/// type), each class pruned on its own (exact: within a class the widths are equal), and
/// merges them: the problem, each configuration's params and operand capacities.
fn price_classes(
    classes: &[(u32, u32, (bool, u32))],
    (workload, board, space, clock, f): (
        &accelforge_mapper::Workload,
        &accelforge_boards::Board,
        &accelforge_mapper::SearchSpace,
        f64,
        accelforge_mapper::Formulation,
    ),
    (act_signed, max_k, requant): (bool, u32, RequantMode),
    out_of_time: &dyn Fn(&str) -> anyhow::Result<()>,
) -> anyhow::Result<(Problem, Vec<SystolicParams>, Vec<Vec<u32>>)> {
    let mut merged: Option<Problem> = None;
    let mut origin: Vec<SystolicParams> = Vec::new();
    let mut widths: Vec<Vec<u32>> = Vec::new();
    for &(wa, wb, out) in classes {
        out_of_time("pricing the engines of every width class")?;
        let base_params = class_base((wa, wb, out), (act_signed, max_k), requant)?;
        let engine = SystolicTemplateModel::for_workload(workload).with_base(base_params);
        let inst = build_instance(&engine, workload, board, space, Some(clock))
            .with_context(|| format!("pricing the {wa}-bit x {wb}-bit engines"))?;
        let mut problem = inst.problem;
        exact_latencies(&mut problem, &inst.candidates, workload)?;
        let pruned = prune(&problem, f, true);
        let (out_signed, wo) = out;
        for &c in &pruned.config_map {
            origin.push(inst.candidates[c].clone());
            widths.push(if out_signed {
                vec![wa, wb, wo - 1, wo]
            } else {
                vec![wa, wb, wo, 0]
            });
        }
        let p = pruned.problem;
        merged = Some(match merged {
            None => p,
            Some(mut m) => {
                m.resources.extend(p.resources);
                for (row, extra) in m.options.iter_mut().zip(p.options) {
                    row.extend(extra);
                }
                m
            }
        });
    }
    Ok((merged.context("no width class")?, origin, widths))
}

/// The engines a solution configures that run some layer, and each array stage's engine.
fn engines_of(
    a: &accelforge_mapper::Assignment,
    (problem, origin): (&Problem, &[SystolicParams]),
    (net, base): (&IntNetwork, &[(usize, Ranges)]),
) -> (Vec<EngineChoice>, Vec<(usize, SystolicParams)>) {
    let mut engines = Vec::new();
    let mut layer_params = Vec::new();
    for (e, &c) in a.engines.iter().enumerate() {
        let layers: Vec<usize> = (0..base.len())
            .filter(|&l| a.layer_engine[l] == e)
            .collect();
        if layers.is_empty() {
            continue;
        }
        let params = origin[c].clone();
        let r = &problem.resources[c];
        layer_params.extend(layers.iter().map(|&l| (base[l].0, params.clone())));
        engines.push(EngineChoice {
            params,
            lut: r[0],
            ff: r[1],
            dsp: r[2],
            bram18: r[3],
            layers: layers.iter().map(|&l| stage_name(net, base[l].0)).collect(),
        });
    }
    (engines, layer_params)
}

/// The network on `x` in Verilator, each array layer on its engine, against the golden engine.
fn in_verilator(net: &IntNetwork, setup: &RtlSetup, x: &[f32]) -> anyhow::Result<RtlMeasured> {
    let per = net.input_len();
    let run = run_rtl::run(net, setup, x, per, |_| {})?;
    let golden = outputs(net, x)?;
    let output_mismatches = run
        .outputs
        .iter()
        .zip(&golden)
        .filter(|(p, q)| p != q)
        .count() as u64;
    let cycles: u64 = run.layers.iter().map(|(_, r)| r.cycles).sum();
    Ok(RtlMeasured {
        inputs: x.len() / per.max(1),
        cycles,
        model_cycles: run.layers.iter().map(|(_, r)| r.model_cycles).sum(),
        latency_ms: cycles as f64 / (setup.clock_mhz * 1e3),
        mismatches: run.layers.iter().map(|(_, r)| r.mismatches).sum::<u64>() + output_mismatches,
    })
}

/// The mapper's error, with the board named where the mapper leaves it to the caller.
fn named(e: accelforge_mapper::MapperError, board: &str) -> anyhow::Error {
    match e {
        accelforge_mapper::MapperError::Infeasible { reason, .. } => {
            anyhow::anyhow!("infeasible on {board}: {reason}")
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// `g` with each chosen site at its chosen option's width.
fn requantized(g: &Graph, chosen: &[(Site, Vec<u32>)], choice: &[usize]) -> anyhow::Result<Graph> {
    let mut out = g.clone();
    for ((site, options), &o) in chosen.iter().zip(choice) {
        if options[o] != site.bits {
            out = with_bits(&out, site, options[o])?;
        }
    }
    Ok(out)
}

fn stage_name(net: &IntNetwork, stage: usize) -> String {
    super::import::layer_rows(net)
        .get(stage)
        .map_or_else(|| format!("layer {stage}"), |r| r.name.clone())
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn print(r: &Report, json: bool, heldout_is_calib: bool) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(r).context("serializing the report")?
    } else {
        let mut t = format!(
            "{} on {}: precision and engines chosen together ({}, up to {} engine(s), {} \
             configurations, batch {}), {:?}\n\nquantizer                 kind        bits  \
             chosen  loss per width (% disagreement)           sets\n",
            r.model, r.board, r.formulation, r.engines_allowed, r.configurations, r.batch, r.goal
        );
        for s in &r.sites {
            let opts: Vec<String> = s
                .options
                .iter()
                .map(|(b, c)| format!("{b}:{:.2}", 100.0 * c))
                .collect();
            t += &format!(
                "{:<25} {:<10} {:>5} {:>7}  {:<40} {}\n",
                s.name,
                s.kind,
                s.exported_bits,
                s.chosen_bits,
                opts.join(" "),
                s.sets.join(", ")
            );
        }
        t += "\n";
        for (i, e) in r.engines.iter().enumerate() {
            t += &format!(
                "engine {i}: {}x{} {:?} {} x {}, {} DSP, {} LUT, {} FF, {} BRAM18: {}\n",
                e.params.rows,
                e.params.cols,
                e.params.pe,
                e.params.input_type,
                e.params.weight_type,
                e.dsp,
                e.lut,
                e.ff,
                e.bram18,
                e.layers.join(", ")
            );
        }
        t += &format!(
            "\npredicted: {:.0} cycles = {:.3} ms for {} inputs at {} MHz; top-1 disagreement \
             with the exported model {} (summed per quantizer){}; measured on the {} \
             calibration inputs: {} ({} choice(s) over the budget cut first)\n",
            r.predicted_cycles,
            r.predicted_ms,
            r.batch,
            r.clock_mhz,
            pct(r.predicted_loss),
            r.predicted_accuracy.map_or(String::new(), |a| format!(
                ", so top-1 accuracy >= {}",
                pct(a)
            )),
            r.calibration_inputs,
            pct(r.calibration_loss),
            r.rejected_choices
        );
        if let Some(c) = r.exported_cycles {
            t += &format!(
                "every quantizer at its exported width, same board and formulation: {c:.0} \
                 cycles ({:.2}x the chosen design's latency)\n",
                c / r.predicted_cycles.max(1.0)
            );
        }
        if let Some(h) = &r.heldout {
            t += &format!(
                "measured (golden engine, {} {} inputs): {}top-1 agreement with the exported \
                 model {}\n",
                h.inputs,
                if heldout_is_calib {
                    "calibration"
                } else {
                    "held-out"
                },
                h.accuracy
                    .map_or(String::new(), |a| format!("accuracy {}, ", pct(a))),
                pct(h.agreement)
            );
        }
        if let Some(x) = &r.rtl {
            t += &format!(
                "measured (Verilator, {} inputs, each layer on its engine): {} cycles = {:.3} \
                 ms (model {}, table loads included), {} mismatches against the golden engine\n",
                x.inputs, x.cycles, x.latency_ms, x.model_cycles, x.mismatches
            );
        }
        t += &format!("solve: {:?}, {:.2} s", r.status, r.solve_seconds);
        t
    };
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_of_ranges() {
        assert_eq!(width((0, 255), false), 8);
        assert_eq!(width((0, 15), false), 4);
        assert_eq!(width((0, 0), false), 1);
        assert_eq!(width((-128, 127), true), 8);
        assert_eq!(width((-8, 7), true), 4);
        assert_eq!(width((-9, 7), true), 5);
        assert_eq!(width((0, 255), true), 9);
        assert_eq!(qtype(4, false), "ap_ufixed<4,4>");
        assert_eq!(qtype(5, true), "ap_fixed<5,5>");
    }
}
