//! `accelforge sim block` / `estimate block`: a whole pre-LN encoder block (MLP or MoE FFN) on
//! the generated kernels, each in Verilator against its golden model (`sim`) or from the cycle
//! models alone (`estimate`), with the error of every stage against the float64 block.

use std::path::PathBuf;

use accelforge_boards::BoardDb;
use accelforge_templates::block::run::{BlockData, Mode};
use accelforge_templates::block::{BlockParams, BlockReport, run};
use accelforge_templates::moe::FfnActivation;
use accelforge_templates::systolic::PeKind;
use anyhow::{Context, bail};
use clap::Args;

/// The block's shape, each kernel's parallelism, the data seed and the clock.
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// Tokens.
    #[arg(long, default_value_t = 197)]
    pub tokens: u32,
    /// Model width.
    #[arg(long, default_value_t = 192)]
    pub d_model: u32,
    /// Attention heads.
    #[arg(long, default_value_t = 3)]
    pub heads: u32,
    /// Hidden width of the MLP (or of each expert).
    #[arg(long, default_value_t = 768)]
    pub d_ff: u32,
    /// Experts of an MoE FFN on the MoE core (0 = a dense MLP on the linear kernel).
    #[arg(long, default_value_t = 0)]
    pub experts: u32,
    /// Experts per token (1 or 2).
    #[arg(long, default_value_t = 2)]
    pub top_k: u32,
    /// The FFN's activation: `gelu` (an activation unit between the MLP's projections, or in
    /// the MoE core) or `relu` (the linear kernel's clamp at 0).
    #[arg(long, value_enum, default_value_t = ActivationArg::Gelu)]
    pub activation: ActivationArg,
    /// Linear kernel (systolic array): PE rows.
    #[arg(long, default_value_t = 16)]
    pub rows: u32,
    /// Linear kernel: PE columns.
    #[arg(long, default_value_t = 16)]
    pub cols: u32,
    /// Linear kernel: PE kind.
    #[arg(long, value_enum, default_value_t = crate::cmd::map::MapPeArg::Dsp)]
    pub pe: crate::cmd::map::MapPeArg,
    /// Linear kernel: AXI4-Stream width in bits.
    #[arg(long, default_value_t = 64)]
    pub stream_bits: u32,
    /// Attention kernel: queries side by side.
    #[arg(long, default_value_t = 16)]
    pub query_lanes: u32,
    /// Attention kernel: row elements per cycle.
    #[arg(long, default_value_t = 16)]
    pub attn_simd: u32,
    /// Add & norm units: elements per beat.
    #[arg(long, default_value_t = 4)]
    pub ln_lanes: u32,
    /// MoE core: output lanes.
    #[arg(long, default_value_t = 16)]
    pub moe_lanes: u32,
    /// MoE core: dot-product elements per cycle.
    #[arg(long, default_value_t = 16)]
    pub moe_simd: u32,
    /// MoE core: weight-stream bytes per cycle.
    #[arg(long, default_value_t = 16)]
    pub moe_ddr_bytes: u32,
    /// Seed of the random tokens and weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Board whose default PL clock gives the latency (ZCU102 if neither this nor
    /// `--clock-mhz` is given).
    #[arg(long)]
    pub board: Option<String>,
    /// PL clock for the latency, MHz.
    #[arg(long, conflicts_with = "board")]
    pub clock_mhz: Option<f64>,
    /// Directory of user board files (else `ACCELFORGE_BOARDS_DIR`).
    #[arg(long, value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--activation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActivationArg {
    /// GELU (erf form, by table).
    Gelu,
    /// max(x, 0).
    Relu,
}

impl BlockArgs {
    fn params(&self) -> BlockParams {
        BlockParams {
            tokens: self.tokens,
            d_model: self.d_model,
            heads: self.heads,
            d_ff: self.d_ff,
            experts: self.experts,
            top_k: self.top_k,
            activation: match self.activation {
                ActivationArg::Gelu => FfnActivation::Gelu,
                ActivationArg::Relu => FfnActivation::Relu,
            },
            rows: self.rows,
            cols: self.cols,
            pe: match self.pe {
                crate::cmd::map::MapPeArg::Dsp => PeKind::Dsp,
                crate::cmd::map::MapPeArg::DspPacked => PeKind::DspPacked,
            },
            stream_bits: self.stream_bits,
            query_lanes: self.query_lanes,
            attn_simd: self.attn_simd,
            ln_lanes: self.ln_lanes,
            moe_lanes: self.moe_lanes,
            moe_simd: self.moe_simd,
            moe_ddr_bytes: self.moe_ddr_bytes,
        }
    }

    /// `(clock MHz, what it is)`.
    fn clock(&self) -> anyhow::Result<(f64, String)> {
        if let Some(mhz) = self.clock_mhz {
            if !(mhz.is_finite() && mhz > 0.0 && mhz <= 1000.0) {
                bail!("--clock-mhz {mhz} must be in (0, 1000]");
            }
            return Ok((mhz, format!("{mhz} MHz")));
        }
        let name = self.board.as_deref().unwrap_or("zcu102");
        let db = BoardDb::load(self.boards_dir.as_deref()).context("loading the board database")?;
        let b = db.get(name)?;
        let mhz = b.default_clock_mhz();
        Ok((mhz, format!("{} at {mhz} MHz", b.name)))
    }
}

/// The block in Verilator (`sim block`).
pub fn sim(args: BlockArgs) -> anyhow::Result<()> {
    go(&args, Mode::Verilator)
}

/// The block from the models only (`estimate block`).
pub fn estimate(args: BlockArgs) -> anyhow::Result<()> {
    go(&args, Mode::Models)
}

fn go(args: &BlockArgs, mode: Mode) -> anyhow::Result<()> {
    let p = args.params();
    p.validate()?;
    let (mhz, clock) = args.clock()?;
    check_size(&p, mode)?;
    let data = BlockData::random(&p, args.seed);
    let rep = run(&p, &data, mode)?;
    if args.json {
        let mut v = serde_json::to_value(&rep)?;
        v["clock_mhz"] = serde_json::json!(mhz);
        v["latency_ms"] = serde_json::json!(rep.model_cycles as f64 / mhz / 1e3);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print(&rep, mhz, &clock);
    }
    if rep.mismatches > 0 {
        let bad: Vec<&str> = rep
            .stages
            .iter()
            .filter(|s| s.mismatches > 0)
            .map(|s| s.stage.as_str())
            .collect();
        bail!(
            "{} mismatches against the kernels' golden models (in {})",
            rep.mismatches,
            bad.join(", ")
        );
    }
    if let Some(s) = rep
        .stages
        .iter()
        .find(|s| s.cycles.is_some_and(|c| c != s.model_cycles))
    {
        bail!(
            "{}: Verilator counted {} cycles, the model {}",
            s.stage,
            s.cycles.unwrap_or(0),
            s.model_cycles
        );
    }
    Ok(())
}

/// Refuses, before drawing any data, a block whose random tokens and weights would not fit in
/// memory (both commands draw them) or whose golden chain would take too long (both run it).
fn check_size(p: &BlockParams, mode: Mode) -> anyhow::Result<()> {
    let (t, d, f) = (u64::from(p.tokens), u64::from(p.d_model), u64::from(p.d_ff));
    let experts = u64::from(p.experts.max(1));
    let elements = t * d * 8 + 4 * d * d + 2 * d * f * experts;
    let bound = accelforge_templates::limits::MAX_SIM_ELEMENTS;
    if elements > bound {
        let (what, instead) = match mode {
            Mode::Verilator => ("simulating", "use `estimate block` for a smaller one"),
            Mode::Models => (
                "pricing",
                "price its kernels with `estimate attention|moe|gemm` or `map` on a \
                 `kind = \"encoder_block\"` workload",
            ),
        };
        bail!(
            "{what} this block holds about {elements} token and weight elements, above the \
             simulation bound of {bound}; {instead}, or use fewer experts or a smaller block"
        );
    }
    p.check_golden_size()?;
    Ok(())
}

fn print(rep: &BlockReport, mhz: f64, clock: &str) {
    let p = &rep.params;
    println!(
        "encoder block: {} tokens, d {}, {} heads, {} ({}); linear kernel {}x{} {:?}, attention \
         {}x{}, add & norm {}/beat",
        p.tokens,
        p.d_model,
        p.heads,
        if p.is_moe() {
            format!("MoE {} experts top-{}", p.experts, p.top_k)
        } else {
            format!("MLP with {:?}", p.activation)
        },
        p.d_ff,
        p.rows,
        p.cols,
        p.pe,
        p.query_lanes,
        p.attn_simd,
        p.ln_lanes,
    );
    println!(
        "{:<10} {:<10} {:>10} {:>10} {:>8} {:>11} {:>6} {:>13} {:>10} {:>10}",
        "stage",
        "kernel",
        "cycles",
        "verilator",
        "mismatch",
        "MACs",
        "DSP",
        "MACs/DSP/cyc",
        "err max",
        "err mean"
    );
    for s in &rep.stages {
        let eff = s
            .dsp
            .filter(|&d| d > 0 && s.macs > 0)
            .map_or("-".to_string(), |d| {
                format!("{:.2}", s.macs as f64 / d as f64 / s.model_cycles as f64)
            });
        println!(
            "{:<10} {:<10} {:>10} {:>10} {:>8} {:>11} {:>6} {:>13} {:>10.4} {:>10.4}",
            s.stage,
            s.kernel,
            s.model_cycles,
            s.cycles.map_or("-".to_string(), |c| c.to_string()),
            if s.cycles.is_some() {
                s.mismatches.to_string()
            } else {
                "-".into()
            },
            s.macs,
            s.dsp.map_or("-".to_string(), |d| d.to_string()),
            eff,
            s.err_max,
            s.err_mean
        );
    }
    if let Some(n) = rep.stages.iter().find_map(|s| s.routing_differs) {
        println!(
            "MoE routing: {n} of {} tokens pick other experts than the float gate (the largest \
             errors of the moe and add_ln stages)",
            p.tokens
        );
    }
    let ms = |c: u64| c as f64 / mhz / 1e3;
    println!(
        "block, kernels in turn: {} cycles = {:.3} ms on {clock}{}",
        rep.model_cycles,
        ms(rep.model_cycles),
        match rep.cycles {
            Some(c) => format!(
                " (Verilator {c}; {} outputs checked, {} mismatches)",
                rep.outputs_checked, rep.mismatches
            ),
            None => String::new(),
        }
    );
    println!(
        "overlapped (each kernel its own engine, successive blocks pipelined): one block every \
         {} cycles = {:.3} ms, bound by the {} kernel",
        rep.pipelined_cycles,
        ms(rep.pipelined_cycles),
        rep.busiest_kernel
    );
}
