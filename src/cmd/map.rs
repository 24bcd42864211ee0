//! `accelforge map`: choose accelerator configurations for a workload under a board's budget.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use accelforge_boards::BoardDb;
use accelforge_mapper::{
    AttentionTemplateModel, Formulation, Joint, MapOptions, MapReport, Method, MoeTemplateModel,
    ProvisionalSystolicModel, SearchSpace, SolveStatus, Solver, SystolicTemplateModel, Workload,
    exhaustive::DEFAULT_POINT_LIMIT, map_with_progress,
};
use accelforge_templates::systolic::{BufferRam, PeKind, RequantMode, SystolicParams};
use accelforge_templates::template::MapDataflow;
use anyhow::Context;
use clap::{Args, ValueEnum};

/// `--time-limit` default, seconds: long enough for the built-in workloads on the small space and
/// the MLP/MoE ones on the default space, short enough that nobody waits minutes unasked.
pub const DEFAULT_TIME_LIMIT: f64 = 60.0;

/// How long past the limit the command waits for the mapper to stop by itself before it gives
/// up on it (a single cycle-model call or a solver that checks its clock rarely).
const GRACE: Duration = Duration::from_millis(500);

/// Map a workload onto a board: pick engine configuration(s) and per-layer tilings that
/// minimise latency within the board's LUT/FF/DSP/BRAM/URAM budget.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// A QONNX model to map with mixed precision (with --calib): each quantizer's width and the
    /// engines chosen together, then the chosen network run by the golden engine and in
    /// Verilator.
    #[arg(
        value_name = "MODEL.onnx",
        conflicts_with = "workload",
        requires = "calib"
    )]
    pub onnx: Option<PathBuf>,
    /// Workload: a TOML file, or a built-in (mlp, resnet18, mobilenet, vit-tiny, moe-tiny).
    #[arg(long, value_name = "FILE|NAME", required_unless_present = "onnx")]
    pub workload: Option<String>,
    /// MODEL.onnx: calibration inputs (float32 .npy, batch first) the sensitivity is measured on.
    #[arg(long, value_name = "X.npy", requires = "onnx")]
    pub calib: Option<PathBuf>,
    /// MODEL.onnx: class labels of --calib (int64/int32 .npy): the cost of a width is the
    /// accuracy it loses (without labels: the share of inputs whose top-1 class changes).
    #[arg(long, value_name = "L.npy", requires = "calib")]
    pub labels: Option<PathBuf>,
    /// MODEL.onnx: the first N inputs of --calib calibrate; the rest are held out for the
    /// measured accuracy and the Verilator batch.
    #[arg(long, value_name = "N", requires = "calib", conflicts_with = "heldout",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub split: Option<u64>,
    /// MODEL.onnx: ignore the first M inputs of --calib (and of --labels), e.g. the training
    /// split: a network measured on its own training data looks less sensitive than it is.
    #[arg(long, value_name = "M", requires = "calib")]
    pub skip: Option<u64>,
    /// MODEL.onnx: held-out inputs (default: the calibration inputs, which the report says).
    #[arg(long, value_name = "X.npy", requires = "calib")]
    pub heldout: Option<PathBuf>,
    /// MODEL.onnx: labels of --heldout.
    #[arg(long, value_name = "L.npy", requires = "heldout")]
    pub heldout_labels: Option<PathBuf>,
    /// MODEL.onnx: candidate widths for every quantizer (each at most its exported width).
    #[arg(long, value_delimiter = ',', default_value = "8,6,4,2", requires = "calib",
          value_parser = clap::value_parser!(u32).range(2..=24))]
    pub bits: Vec<u32>,
    /// MODEL.onnx: minimise latency with the summed predicted accuracy loss at most D
    /// percentage points (default 1).
    #[arg(
        long,
        value_name = "D",
        requires = "calib",
        conflicts_with = "latency_ms"
    )]
    pub accuracy_drop: Option<f64>,
    /// MODEL.onnx: minimise the predicted accuracy loss with the batch's latency at most T ms.
    #[arg(long, value_name = "T", requires = "calib")]
    pub latency_ms: Option<f64>,
    /// MODEL.onnx: how many held-out inputs run in Verilator (the batch the mapper prices;
    /// default all of them).
    #[arg(long, value_name = "N", requires = "calib",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rtl_limit: Option<u64>,
    /// MODEL.onnx: skip the Verilator batch (the choice is still measured by the golden engine).
    #[arg(long, requires = "calib")]
    pub no_rtl: bool,
    /// MODEL.onnx: write the report (chosen widths, engines' params, predicted and measured
    /// figures) as JSON to this file.
    #[arg(long, value_name = "FILE", requires = "calib")]
    pub mixed_out: Option<PathBuf>,
    /// Board name (see `accelforge boards list`).
    #[arg(long)]
    pub board: String,
    /// Directory of extra/overriding board TOML files (default: $ACCELFORGE_BOARDS_DIR).
    #[arg(long, value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// overlay: one time-shared engine; dataflow: one engine per layer, pipelined;
    /// heterogeneous: --engines engines, layers assigned to them (minimise the busiest);
    /// sequential: the same engines running in turn (minimise the sum, batch-1 latency).
    /// Default: overlay; sequential for MODEL.onnx (mixed precision pays off with an engine per
    /// width).
    #[arg(long, value_enum)]
    pub formulation: Option<FormulationArg>,
    /// Number of engines for the heterogeneous and sequential formulations.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub engines: u32,
    /// MILP back end.
    #[arg(long, value_enum, default_value_t = SolverArg::Cbc)]
    pub solver: SolverArg,
    /// Enumerate every choice instead of solving the MILP (small spaces only).
    #[arg(long)]
    pub exhaustive: bool,
    /// Stop after this many seconds (pricing the candidates, pruning and the solve together)
    /// and report the best solution found and its gap, or, with none found yet, an error naming
    /// the limit. 0 = no limit.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIME_LIMIT)]
    pub time_limit: f64,
    /// Search space: `default` (array sides 2–64, three buffer depths, the board's stream
    /// widths) or `small` (sides 4/8/16; quick, and small enough to verify exhaustively).
    /// Default: `default`; `small` for MODEL.onnx, whose space is priced once per operand-width
    /// class.
    #[arg(long, value_enum)]
    pub space: Option<SpaceArg>,
    /// PE kinds the systolic engine may use (comma-separated): `dsp` (one multiply per DSP)
    /// and `dsp-packed` (two int8 multiplies per DSP). Default: both.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND,...")]
    pub pe: Vec<MapPeArg>,
    /// Dataflows the systolic engine may use (comma-separated): `os` (output-stationary) and
    /// `ws` (weight-stationary). Default: both. (`sim block`'s linear kernel is `os`: its
    /// per-channel requantizer serves every projection of the block.)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "DF,...")]
    pub dataflow: Vec<MapDataflowArg>,
    /// The systolic engine's requantizer: `single` (the workload's output type) or
    /// `per-channel` (int8 operands, 32-bit accumulators, 16-bit outputs and per-channel
    /// tables for every GEMM of the workload: the linear kernel `sim block` builds, priced with
    /// the requantizer's DSPs).
    #[arg(long, value_enum, default_value_t = LinearRequantArg::Single)]
    pub linear_requant: LinearRequantArg,
    /// DSP slices kept out of the board's budget for units the mapper does not size (e.g. `sim
    /// block`'s add & norm unit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub reserve_dsp: u64,
    /// RAM the systolic engine's operand buffers may use (comma-separated): `block` and, on
    /// parts with UltraRAM, `ultra`. Default: both where the board has URAM.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "RAM,...")]
    pub buffer_ram: Vec<crate::cmd::generate::BufferRamArg>,
    /// PL clock in MHz (default: the board's default PL clock).
    #[arg(long, value_name = "MHZ")]
    pub clock_mhz: Option<f64>,
    /// Offer the solver every tiling and every configuration (no dominance pruning). Slower;
    /// same optimum.
    #[arg(long)]
    pub no_prune: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the chosen configuration as JSON to this file (with the default model, a
    /// `params.json` that `gen systolic --params` and `sim gemm --params` take; with
    /// `--model moe`, the MoE core's `MoeParams`).
    #[arg(long, value_name = "FILE")]
    pub params_out: Option<PathBuf>,
    /// Cost model: `template` (the systolic template's exact cycle model and its resource
    /// model), `provisional` (a textbook model, for comparison) or `moe` (the MoE template's
    /// models; runs only `moe` layers, e.g. the `moe-tiny` workload).
    #[arg(long, value_enum, default_value_t = ModelArg::Template)]
    pub model: ModelArg,
}

/// `--model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// The systolic template's own models (exact cycles).
    Template,
    /// The mapper's provisional textbook model.
    Provisional,
    /// The MoE template's own models (exact cycles under balanced routing).
    Moe,
    /// Every kernel the workload needs, sized together: the systolic array (linear layers),
    /// the attention kernel (`attention` layers) and the MoE core (`moe` layers), each with its
    /// own exact models; use `--formulation heterogeneous --engines N` for one kernel per kind.
    Joint,
}

/// `--formulation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormulationArg {
    /// One engine time-shared by all layers.
    Overlay,
    /// One engine per layer, pipelined.
    Dataflow,
    /// A few engines, layers assigned to them.
    Heterogeneous,
    /// A few engines, layers assigned to them, run one after another (batch-1 latency).
    Sequential,
}

/// `--solver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SolverArg {
    /// COIN-OR CBC.
    Cbc,
    /// microlp (pure Rust).
    Microlp,
}

impl SolverArg {
    /// The mapper's back end.
    pub fn solver(self) -> Solver {
        match self {
            SolverArg::Cbc => Solver::Cbc,
            SolverArg::Microlp => Solver::Microlp,
        }
    }
}

impl FormulationArg {
    /// The mapper's formulation, with `engines` for the multi-engine ones.
    pub fn formulation(self, engines: u32) -> Formulation {
        let engines = engines as usize;
        match self {
            FormulationArg::Overlay => Formulation::Overlay,
            FormulationArg::Dataflow => Formulation::Dataflow,
            FormulationArg::Heterogeneous => Formulation::Heterogeneous { engines },
            FormulationArg::Sequential => Formulation::Sequential { engines },
        }
    }
}

/// Drops repeated values, keeping the first of each in order (`--pe dsp,dsp-packed,dsp` must
/// not price every configuration twice).
fn keep_first<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        if new {
            seen.push(*x);
        }
        new
    });
}

/// `--pe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MapPeArg {
    /// One DSP multiply per PE.
    Dsp,
    /// Adjacent columns share one DSP multiply.
    DspPacked,
}

/// `--dataflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MapDataflowArg {
    /// Output-stationary.
    Os,
    /// Weight-stationary.
    Ws,
}

/// `--linear-requant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinearRequantArg {
    /// One conversion to the output type.
    Single,
    /// Per-channel tables on int8 codes (the block's linear kernel).
    PerChannel,
}

/// The systolic base of `--linear-requant per-channel`: the block's linear kernel with tables
/// for the workload's widest GEMM.
fn per_channel_base(workload: &Workload) -> anyhow::Result<SystolicParams> {
    let widest = workload
        .layers
        .iter()
        .filter(|l| l.is_gemm_like())
        .map(|l| l.lower().gemm.n)
        .max()
        .context("--linear-requant per-channel needs a workload with GEMM layers")?;
    let mut p = accelforge_templates::block::BlockParams::default().linear();
    // The candidates' depth follows the workload's longest reduction.
    p.max_k = 64;
    p.requant = RequantMode::PerChannel {
        max_channels: u32::try_from(widest)?,
        mul_bits: 2,
        add_bits: 2,
    };
    p.validate().with_context(|| {
        format!("--linear-requant per-channel: tables for the widest GEMM ({widest} columns)")
    })?;
    Ok(p)
}

/// `--space`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpaceArg {
    /// The board's default space.
    Default,
    /// A small space.
    Small,
}

/// Runs `accelforge map …`.
pub fn run(args: MapArgs) -> anyhow::Result<()> {
    if args.onnx.is_some() {
        return super::map_mixed::run(args);
    }
    anyhow::ensure!(
        args.calib.is_none(),
        "--calib and the other mixed-precision flags map a model: `accelforge map MODEL.onnx \
         --calib X.npy ...` (not --workload)"
    );
    let db = BoardDb::load(args.boards_dir.as_deref()).context("loading the board database")?;
    for note in db.notes() {
        eprintln!("note: {note}");
    }
    let mut board = db.get(&args.board)?.clone();
    anyhow::ensure!(
        args.reserve_dsp <= board.resources.dsp.value,
        "--reserve-dsp {} exceeds the {} DSP slices of {}",
        args.reserve_dsp,
        board.resources.dsp.value,
        board.display_name
    );
    board.resources.dsp.value -= args.reserve_dsp;
    let board = &board;
    let name = args.workload.clone().unwrap_or_default();
    let workload =
        Workload::resolve(&name).with_context(|| format!("loading workload `{name}`"))?;
    let linear_base = match args.linear_requant {
        LinearRequantArg::Single => None,
        LinearRequantArg::PerChannel => Some(per_channel_base(&workload)?),
    };
    let systolic = move |w: &Workload| {
        let m = SystolicTemplateModel::for_workload(w);
        match &linear_base {
            Some(b) => m.with_base(b.clone()),
            None => m,
        }
    };
    // A day is far beyond any mapping worth waiting for, and keeps the deadline arithmetic
    // (Instant + Duration) from overflowing on values like 1e300.
    const MAX_TIME_LIMIT_S: f64 = 86_400.0;
    anyhow::ensure!(
        (0.0..=MAX_TIME_LIMIT_S).contains(&args.time_limit),
        "--time-limit must be a number of seconds in 0..=86400 (0 = no limit), not {}",
        args.time_limit
    );
    let time_limit = (args.time_limit > 0.0).then_some(args.time_limit);
    let solver = args.solver.solver();
    let opts = MapOptions {
        formulation: args
            .formulation
            .unwrap_or(FormulationArg::Overlay)
            .formulation(args.engines),
        method: if args.exhaustive {
            Method::Exhaustive {
                limit: DEFAULT_POINT_LIMIT,
            }
        } else {
            Method::Ilp { solver, time_limit }
        },
        space: {
            let mut space = match args.space.unwrap_or(SpaceArg::Default) {
                SpaceArg::Default => SearchSpace::for_board(board),
                SpaceArg::Small => SearchSpace::small(),
            };
            if !args.pe.is_empty() {
                space.pes = args
                    .pe
                    .iter()
                    .map(|p| match p {
                        MapPeArg::Dsp => PeKind::Dsp,
                        MapPeArg::DspPacked => PeKind::DspPacked,
                    })
                    .collect();
                keep_first(&mut space.pes);
            }
            if !args.dataflow.is_empty() {
                space.dataflows = args
                    .dataflow
                    .iter()
                    .map(|d| match d {
                        MapDataflowArg::Os => MapDataflow::OutputStationary,
                        MapDataflowArg::Ws => MapDataflow::WeightStationary,
                    })
                    .collect();
                keep_first(&mut space.dataflows);
            }
            if !args.buffer_ram.is_empty() {
                space.buffer_rams = args
                    .buffer_ram
                    .iter()
                    .map(|b| match b {
                        crate::cmd::generate::BufferRamArg::Block => BufferRam::Block,
                        crate::cmd::generate::BufferRamArg::Ultra => BufferRam::Ultra,
                    })
                    .collect();
                keep_first(&mut space.buffer_rams);
            }
            space
        },
        clock_mhz: args.clock_mhz,
        prune: !args.no_prune,
    };
    let start = Instant::now();
    // The mapping runs on a worker thread so that this thread can drive the spinner and give
    // up at the limit even if the worker is inside one long model or solver call (it is then
    // abandoned; the process exits right after).
    let phase = Arc::new(Mutex::new(String::from("building the candidates")));
    let (tx, rx) = mpsc::channel();
    {
        let (workload, board, opts, phase) =
            (workload.clone(), board.clone(), opts.clone(), phase.clone());
        let model = args.model;
        std::thread::spawn(move || {
            let progress = |p: &str| {
                if let Ok(mut s) = phase.lock() {
                    *s = p.to_string();
                }
            };
            let r = match model {
                ModelArg::Template => {
                    map_with_progress(&systolic(&workload), &workload, &board, &opts, &progress)
                }
                ModelArg::Provisional => map_with_progress(
                    &ProvisionalSystolicModel,
                    &workload,
                    &board,
                    &opts,
                    &progress,
                ),
                ModelArg::Moe => map_with_progress(
                    // Same clock as the mapping, so the weight stream is sized for the DDR
                    // rate the formulation charges.
                    &MoeTemplateModel::for_board(&workload, &board, opts.clock_mhz),
                    &workload,
                    &board,
                    &opts,
                    &progress,
                ),
                ModelArg::Joint => map_with_progress(
                    &Joint::new(
                        Joint::new(
                            systolic(&workload),
                            AttentionTemplateModel::for_board(&workload, &board, opts.clock_mhz),
                        ),
                        MoeTemplateModel::for_board(&workload, &board, opts.clock_mhz),
                    ),
                    &workload,
                    &board,
                    &opts,
                    &progress,
                ),
            };
            // The receiver is gone only when the command already gave up.
            let _ = tx.send(r);
        });
    }
    let spinner = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let hard_stop = time_limit.map(|t| start + Duration::from_secs_f64(t) + GRACE);
    let outcome = loop {
        if let Some(pb) = &spinner {
            let p = phase.lock().map(|s| s.clone()).unwrap_or_default();
            pb.set_message(format!("{p} ({:.0} s)", start.elapsed().as_secs_f64()));
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => break Ok(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if hard_stop.is_some_and(|h| Instant::now() >= h) {
                    let p = phase.lock().map(|s| s.clone()).unwrap_or_default();
                    break Err(p);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err("the mapping thread stopped without a result".into());
            }
        }
    };
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    let report = match outcome {
        Ok(r) => r,
        Err(phase) => Err(accelforge_mapper::MapperError::TimeLimit {
            limit: time_limit.unwrap_or(0.0),
            phase,
        }),
    }
    .with_context(|| {
        format!(
            "mapping `{}` onto {} ({})",
            workload.name,
            board.display_name,
            opts.formulation.name()
        )
    })?;
    if let Some(path) = &args.params_out {
        let text = serde_json::to_string_pretty(&report.params)? + "\n";
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report, &board.display_name));
    }
    Ok(())
}

/// Writes beside the target and renames, so a failure leaves no half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "params.json".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}

fn text(r: &MapReport, board: &str) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "map {} onto {board} ({}, {}), model {}\n",
        r.workload, r.formulation, r.method, r.model
    ));
    if let Some(note) = &r.model_note {
        o.push_str(&format!("note: {note}\n"));
    }
    o.push_str(&format!(
        "objective: {:.0} cycles = {:.3} ms at {} MHz ({})\n",
        r.objective,
        r.objective_seconds * 1e3,
        r.clock_mhz,
        r.objective_meaning
    ));
    let status = match r.status {
        SolveStatus::Optimal => "optimal".to_string(),
        SolveStatus::TimeLimited { gap: Some(g) } => {
            format!("time-limited, gap {:.2}%", g * 100.0)
        }
        SolveStatus::TimeLimited { gap: None } => "time-limited, gap unknown".to_string(),
        SolveStatus::Exhaustive { points } => format!("exhaustive over {points:.3e} points"),
    };
    o.push_str(&format!(
        "status: {status}; solve {:.3} s; {} candidates, {} kept after pruning, {} options, {} variables\n",
        r.solve_seconds,
        r.search.candidates,
        r.search.configurations_solved,
        r.search.options_solved,
        r.search.variables
    ));
    if r.model_errors.count > 0 {
        o.push_str(&format!(
            "warning: {} cost-model errors skipped candidates (please report): {}\n",
            r.model_errors.count,
            r.model_errors.examples.join("; ")
        ));
    }
    for (i, e) in r.engines.iter().enumerate() {
        if r.engines.len() == 1 {
            o.push_str(&format!("params: {}\n", e.params));
        } else {
            o.push_str(&format!(
                "engine {i}: {} busy {} cycles; layers: {}\n",
                e.params,
                e.busy_cycles,
                e.layers.join(", ")
            ));
        }
    }
    o.push_str("layers:\n");
    let header = [
        "layer",
        "repeat",
        "engine",
        "GEMM MxKxN",
        "tiling",
        "compute",
        "DDR bytes",
        "cycles",
        "ms",
        "bound",
    ];
    let rows: Vec<[String; 10]> = r
        .layers
        .iter()
        .map(|l| {
            let g = if l.groups > 1 {
                format!("{}x{}x{} x{}", l.gemm.m, l.gemm.k, l.gemm.n, l.groups)
            } else {
                format!("{}x{}x{}", l.gemm.m, l.gemm.k, l.gemm.n)
            };
            [
                l.name.clone(),
                l.repeat.to_string(),
                l.engine.to_string(),
                g,
                tiling_text(&l.tiling),
                l.compute_cycles.to_string(),
                l.ddr_bytes.to_string(),
                l.cycles.to_string(),
                format!("{:.3}", l.seconds * 1e3),
                l.bound.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut line = |cells: &[String]| {
        let mut s = String::from(" ");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            s.push(' ');
            if matches!(i, 0 | 3 | 4 | 9) {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("{c:>w$}"));
            }
        }
        o.push_str(s.trim_end());
        o.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    o.push_str("resources (used / available):\n");
    for l in &r.utilisation.lines {
        let pct = l
            .fraction
            .map(|f| format!("{:5.1}%", f * 100.0))
            .unwrap_or_else(|| "   n/a".into());
        o.push_str(&format!(
            "  {:<7} {:>9} / {:<9} {pct}\n",
            l.resource, l.used, l.available
        ));
    }
    o
}

fn tiling_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => {
                    if k == "kind" {
                        s.clone()
                    } else {
                        format!("{k}={s}")
                    }
                }
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
