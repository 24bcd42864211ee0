//! `sim moe`, `estimate moe`, `gen moe`: the Mixture-of-Experts layer core. Each parses the same
//! options into `MoeParams`, then calls the template: Verilator against the golden model, the
//! analytic cycle and resource models, or Verilog generation.

use std::path::PathBuf;

use accelforge_sim::BuildOptions;
use accelforge_templates::moe::sim::{self, MoeSimOutcome};
use accelforge_templates::moe::tb::Stalls;
use accelforge_templates::moe::{
    FfnActivation, GateMode, MoeParams, MoeTypes, WeightSource, cost, model, rtl,
};
use accelforge_templates::qfx::QType;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

/// Gate weight computation.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GateArg {
    /// Softmax over the selected logits (exp table).
    Softmax,
    /// Sigmoid affinities renormalised over the selected experts.
    Renorm,
}

/// Expert activation.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActArg {
    /// max(x, 0).
    Relu,
    /// Table-based GELU.
    Gelu,
}

/// Options shared by `sim moe`, `estimate moe` and `gen moe`.
#[derive(Debug, Clone, Args)]
pub struct MoeOpts {
    /// Tokens per batch.
    #[arg(long, default_value_t = 16)]
    pub tokens: u32,
    /// Model width (a multiple of max(lanes, simd), up to 4096).
    #[arg(long, default_value_t = 16)]
    pub d_model: u32,
    /// Expert hidden width (a multiple of max(lanes, simd), up to 16384).
    #[arg(long, default_value_t = 32)]
    pub d_ff: u32,
    /// Number of experts (a multiple of lanes, up to 256).
    #[arg(long, default_value_t = 4)]
    pub experts: u32,
    /// Experts per token (1 or 2).
    #[arg(long, default_value_t = 2)]
    pub top_k: u32,
    /// Output neurons in parallel.
    #[arg(long, default_value_t = 4)]
    pub lanes: u32,
    /// Inputs per lane per cycle.
    #[arg(long, default_value_t = 4)]
    pub simd: u32,
    /// Weight-stream bytes per cycle (the DDR rate the core sees).
    #[arg(long, default_value_t = 4)]
    pub ddr_bytes_per_cycle: u32,
    /// Per-expert queue capacity; pairs beyond it are dropped and counted.
    #[arg(long, default_value_t = 16)]
    pub queue_depth: u32,
    /// Gate weights.
    #[arg(long, value_enum, default_value_t = GateArg::Softmax)]
    pub gate: GateArg,
    /// Expert activation.
    #[arg(long, value_enum, default_value_t = ActArg::Relu)]
    pub activation: ActArg,
    /// Fractional bits of the gate weights.
    #[arg(long, default_value_t = 12)]
    pub gate_frac_bits: u32,
    /// Token type, e.g. 'ap_fixed<8,3,AP_RND,AP_SAT>'.
    #[arg(long, value_name = "TYPE")]
    pub input_type: Option<QType>,
    /// Weight type.
    #[arg(long, value_name = "TYPE")]
    pub weight_type: Option<QType>,
    /// Gate logit type.
    #[arg(long, value_name = "TYPE")]
    pub logit_type: Option<QType>,
    /// Expert hidden type.
    #[arg(long, value_name = "TYPE")]
    pub hidden_type: Option<QType>,
    /// Expert output type.
    #[arg(long, value_name = "TYPE")]
    pub expert_out_type: Option<QType>,
    /// Layer output type.
    #[arg(long, value_name = "TYPE")]
    pub output_type: Option<QType>,
    /// Parameters file (`moe_params.json` as `gen moe` writes it) instead of the flags above.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "tokens", "d_model", "d_ff", "experts", "top_k", "lanes", "simd",
        "ddr_bytes_per_cycle", "queue_depth", "gate", "activation", "gate_frac_bits",
        "input_type", "weight_type", "logit_type", "hidden_type", "expert_out_type",
        "output_type",
    ])]
    pub params: Option<PathBuf>,
}

impl MoeOpts {
    /// The validated parameters.
    pub fn params(&self) -> anyhow::Result<MoeParams> {
        if let Some(path) = &self.params {
            return super::template::load_typed(&accelforge_templates::moe::Moe, path);
        }
        let d = MoeTypes::default();
        let p = MoeParams {
            tokens: self.tokens,
            d_model: self.d_model,
            d_ff: self.d_ff,
            experts: self.experts,
            top_k: self.top_k,
            lanes: self.lanes,
            simd: self.simd,
            ddr_bytes_per_cycle: self.ddr_bytes_per_cycle,
            queue_depth: self.queue_depth,
            gate_mode: match self.gate {
                GateArg::Softmax => GateMode::Softmax,
                GateArg::Renorm => GateMode::Renorm,
            },
            activation: match self.activation {
                ActArg::Relu => FfnActivation::Relu,
                ActArg::Gelu => FfnActivation::Gelu,
            },
            gate_frac_bits: self.gate_frac_bits,
            types: MoeTypes {
                input: self.input_type.unwrap_or(d.input),
                weight: self.weight_type.unwrap_or(d.weight),
                logit: self.logit_type.unwrap_or(d.logit),
                hidden: self.hidden_type.unwrap_or(d.hidden),
                expert_out: self.expert_out_type.unwrap_or(d.expert_out),
                output: self.output_type.unwrap_or(d.output),
            },
            ..MoeParams::default()
        };
        p.validate().context("invalid MoE parameters")?;
        Ok(p)
    }
}

/// Data and routing options of `sim moe` and `estimate moe`.
#[derive(Debug, Clone, Args)]
pub struct RunOpts {
    /// Seed of the random tokens and weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Routing skew (0 = uniform; larger values favour a few experts, Zipf-like).
    #[arg(long, default_value_t = 0.0)]
    pub skew: f64,
    /// Process tokens in order, reloading an expert's weights whenever the expert changes.
    #[arg(long)]
    pub no_reorder: bool,
    /// Weight-source latency: extra cycles from a weight request to its first beat (a Zynq's
    /// DDR through a DataMover: typically 30-100 PL cycles). 0 = the ideal source, as the
    /// mapper prices it.
    #[arg(long, value_name = "CYCLES", default_value_t = 0)]
    pub ddr_latency: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl RunOpts {
    /// The weight source of the run.
    pub fn source(&self) -> WeightSource {
        WeightSource::with_latency(self.ddr_latency)
    }
}

/// `sim moe`: run one batch in Verilator and check every output against the golden model.
#[derive(Debug, Args)]
pub struct SimMoeArgs {
    #[command(flatten)]
    pub moe: MoeOpts,
    #[command(flatten)]
    pub run: RunOpts,
}

/// `estimate moe`: cycles and resources from the analytic models.
#[derive(Debug, Args)]
pub struct EstimateMoeArgs {
    #[command(flatten)]
    pub moe: MoeOpts,
    #[command(flatten)]
    pub run: RunOpts,
}

/// `gen moe`: write the Verilog and the parameters, or with `--board` a Zynq bundle whose
/// weights are fetched from DDR by an AXI DataMover.
#[derive(Debug, Args)]
pub struct GenMoeArgs {
    #[command(flatten)]
    pub moe: MoeOpts,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Print JSON (with `--board`: keys `top`, `bundle`, `files`, `params`, `params_file`,
    /// `resources`, `manifest`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub bundle: super::generate::BundleArgs,
}

/// Parameters, routing and cycle report of the seeded batch `estimate moe` prices. Only the
/// tokens and the gate matrix are drawn: the cycles depend on the routing alone, and the expert
/// weights of the largest layers would not fit in memory.
fn prepare(
    moe: &MoeOpts,
    run: &RunOpts,
) -> anyhow::Result<(MoeParams, model::Routing, cost::CycleReport)> {
    let p = moe.params()?;
    let data = model::random_gate_data(&p, run.seed, run.skew).context("generating tokens")?;
    let logits = model::gate_logits_of(&p, &data.x, &data.gate).context("gate logits")?;
    let routing = model::route(&p, logits, !run.no_reorder).context("routing")?;
    let c = cost::cycles_with(&p, &routing.load_shape(), run.source()).context("cycle model")?;
    Ok((p, routing, c))
}

/// Simulates one batch of random tokens and weights drawn from `seed` (routing skewed by
/// `skew`) with or without expert reordering, against the ideal weight source, checked
/// against the golden model.
pub fn simulate(
    p: &MoeParams,
    seed: u64,
    skew: f64,
    reorder: bool,
) -> anyhow::Result<MoeSimOutcome> {
    simulate_with(p, seed, skew, reorder, WeightSource::default())
}

/// [`simulate`] against a weight source of the given latency.
pub fn simulate_with(
    p: &MoeParams,
    seed: u64,
    skew: f64,
    reorder: bool,
    source: WeightSource,
) -> anyhow::Result<MoeSimOutcome> {
    // Every expert's weights are drawn and streamed: refuse before allocating them.
    accelforge_templates::moe::sim::check_sim_size(p).map_err(anyhow::Error::msg)?;
    let data = model::MoeData::random(p, seed, skew).context("generating test data")?;
    Ok(sim::simulate(
        p,
        &data,
        reorder,
        source,
        Stalls::default(),
        &BuildOptions::default(),
    )?)
}

/// Refuses a weight-source latency above [`MAX_DDR_LATENCY`] (4294967295 used to simulate
/// for ever: every expert load waits that many cycles).
///
/// [`MAX_DDR_LATENCY`]: accelforge_templates::limits::MAX_DDR_LATENCY
fn check_latency(latency: u32) -> anyhow::Result<()> {
    use accelforge_templates::limits::MAX_DDR_LATENCY;
    if latency > MAX_DDR_LATENCY {
        bail!(
            "--ddr-latency {latency} is above the largest supported latency of {MAX_DDR_LATENCY} \
             cycles (a Zynq DDR read takes 30-100 PL cycles)"
        );
    }
    Ok(())
}

/// `sim moe`.
pub fn sim_moe(args: SimMoeArgs) -> anyhow::Result<()> {
    let p = args.moe.params()?;
    check_latency(args.run.ddr_latency)?;
    let reorder = !args.run.no_reorder;
    let MoeSimOutcome {
        run,
        check: chk,
        golden: g,
        model: model_c,
    } = simulate_with(&p, args.run.seed, args.run.skew, reorder, args.run.source())?;
    let cycles = run.cycles.max(1) as f64;
    let v = json!({
        "cycles": run.cycles,
        "model_cycles": model_c.cycles,
        "outputs_checked": chk.outputs_checked,
        "mismatches": chk.mismatches,
        "weight_bytes_streamed": run.weight_beats * u64::from(p.ddr_bytes_per_cycle),
        "expert_loads": run.requests.len().saturating_sub(1),
        "active_experts": g.routing.active_experts(),
        "dropped": run.dropped,
        "compute_utilization": model_c.mac_cycles as f64 / cycles,
        "bandwidth_utilization": run.weight_beats as f64 / cycles,
        "reorder": reorder,
        "ddr_latency": args.run.ddr_latency,
    });
    print_report(&v, args.run.json)?;
    if chk.mismatches > 0 {
        bail!(
            "{} mismatches against the golden model; first: {}",
            chk.mismatches,
            chk.first.join("; ")
        );
    }
    Ok(())
}

/// `estimate moe`.
pub fn estimate_moe(args: EstimateMoeArgs) -> anyhow::Result<()> {
    check_latency(args.run.ddr_latency)?;
    let (p, routing, c) = prepare(&args.moe, &args.run)?;
    let r = cost::resources(&p)?;
    let v = json!({
        "cycles": c.cycles,
        "weight_bytes_streamed": c.weight_bytes,
        "expert_loads": routing.loads.len(),
        "active_experts": routing.active_experts(),
        "dropped": routing.dropped,
        "compute_utilization": c.compute_utilization(),
        "bandwidth_utilization": c.bandwidth_utilization(),
        "route_start": c.route_start,
        "expert_start": c.expert_start,
        "output_start": c.output_start,
        "lut": r.lut,
        "ff": r.ff,
        "dsp": r.dsp,
        "bram18": r.bram18,
        "memory_bits": r.memory_bits,
        "reorder": !args.run.no_reorder,
        "ddr_latency": args.run.ddr_latency,
    });
    print_report(&v, args.run.json)
}

/// `gen moe`.
pub fn gen_moe(args: GenMoeArgs) -> anyhow::Result<()> {
    let p = args.moe.params()?;
    let design = rtl::design(&p).context("generating the MoE core")?;
    if let Some(board) = &args.bundle.board {
        return gen_moe_bundle(&args, board, &p, &design);
    }
    // Only a directory this command creates (or an earlier output) is marked as replaceable:
    // marking a user's existing directory would let a later `--force` delete it.
    let markable = accelforge_hdl::output::check_replaceable(&args.out).is_ok();
    let written = design
        .write_to(&args.out)
        .with_context(|| format!("writing Verilog to {}", args.out.display()))?;
    let params = serde_json::to_string_pretty(&p)?;
    let pj = args.out.join("moe_params.json");
    accelforge_hdl::write_atomic(&pj, params.as_bytes())
        .with_context(|| format!("writing {}", pj.display()))?;
    if markable {
        accelforge_hdl::output::mark(&args.out, "gen moe")?;
    }
    for f in written.iter().chain([&pj]) {
        println!("{}", f.display());
    }
    Ok(())
}

/// Writes the Zynq bundle of the MoE core `design` (built from `p`) for `board` into `out`:
/// the wrapper with its DataMover weight fetch, build script, constraints, driver and manifest.
/// Refuses a design over the board's budget unless `bundle.allow_over_budget`.
pub fn write_moe_bundle(
    p: &MoeParams,
    design: &accelforge_hdl::Design,
    board: &str,
    out: &std::path::Path,
    bundle: &super::generate::BundleArgs,
) -> anyhow::Result<(accelforge_boards::Manifest, cost::ResourceReport)> {
    let res = cost::resources(p)?;
    let (manifest, _) = bundle.write(
        board,
        out,
        &accelforge_templates::moe::Moe,
        &serde_json::to_value(p)?,
        design,
    )?;
    Ok((manifest, res))
}

fn gen_moe_bundle(
    args: &GenMoeArgs,
    board: &str,
    p: &MoeParams,
    design: &accelforge_hdl::Design,
) -> anyhow::Result<()> {
    let (manifest, res) = write_moe_bundle(p, design, board, &args.out, &args.bundle)?;
    if args.json {
        let v = json!({
            "top": design.top_name(),
            "bundle": args.out.display().to_string(),
            "files": super::generate::bundle_files(&args.out, &manifest, "moe_params.json"),
            "params": p,
            "params_file": args.out.join("moe_params.json").display().to_string(),
            "resources": res,
            "manifest": manifest,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("Zynq bundle for {board} in {}:", args.out.display());
        for f in &manifest.files {
            println!("  {:<40} {}", f.path, f.role);
        }
        println!("  {:<40} template-params", "moe_params.json");
        println!(
            "estimated: {} LUT, {} FF (Yosys-fitted, core only), {} DSP, {} RAMB18",
            res.lut, res.ff, res.dsp, res.bram18
        );
        println!(
            "build the bitstream with: cd {} && vivado -mode batch -source build.tcl",
            args.out.display()
        );
    }
    Ok(())
}

fn print_report(v: &serde_json::Value, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(());
    }
    if let Some(map) = v.as_object() {
        for (k, x) in map {
            println!("{k:<24} {x}");
        }
    }
    Ok(())
}
