//! `accelforge demo`: the README's main job on built-in defaults. Every stage is real — Verilog
//! generated, linted, simulated in Verilator against the golden model, bundled for two boards —
//! and prints where its output went.

use std::path::{Path, PathBuf};

use accelforge_hdl::Design;
use accelforge_hdl::blocks::{fifo, pipeline, ram, skid};
use accelforge_hdl::tools;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::sim::{SimOptions, random_gemm_operands, run_gemm};
use accelforge_templates::systolic::{SystolicParams, cost, rtl};
use anyhow::{Context, ensure};

use super::generate::BundleArgs;

/// Run the built-in demonstration flow.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output directory (replaced if it exists).
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
}

/// One board of the demo and the array sized for it.
struct Target {
    board: &'static str,
    params: SystolicParams,
    layer: Gemm,
}

fn targets() -> Vec<Target> {
    vec![
        // PYNQ-Z2: 220 DSP48E1, 140 BRAM36 — an 8x8 array leaves room for the DMA and PS glue.
        Target {
            board: "pynq-z2",
            params: SystolicParams {
                rows: 8,
                cols: 8,
                max_n_chunk: 32,
                ..SystolicParams::default()
            },
            layer: Gemm {
                m: 64,
                k: 128,
                n: 64,
            },
        },
        // ZCU102: 2,520 DSP48E2 — the 16x16 array of the README's utilisation figure.
        Target {
            board: "zcu102",
            params: SystolicParams {
                rows: 16,
                cols: 16,
                max_n_chunk: 64,
                ..SystolicParams::default()
            },
            layer: Gemm {
                m: 128,
                k: 256,
                n: 128,
            },
        },
    ]
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("clearing `{}`", args.out.display()))?;
    }
    blocks(&args.out.join("blocks"))?;
    let targets = targets();
    println!("[2/3] systolic-array bundles for Zynq boards");
    for t in &targets {
        let design = rtl::design(&t.params)?;
        let res = cost::resources(&t.params)?;
        let estimate = accelforge_boards::ResourceEstimate {
            lut: res.lut,
            ff: res.ff,
            dsp: res.dsp,
            bram18: res.bram18 + 2 * res.bram36,
            uram: res.uram,
        };
        let dir = args.out.join(t.board);
        let bundle = BundleArgs {
            board: None,
            boards_dir: None,
            clock_mhz: None,
            allow_over_budget: false,
            force: true,
        };
        let manifest = bundle.write(
            t.board,
            &dir,
            &design,
            serde_json::to_value(&t.params)?,
            estimate,
            (1 << 26) - 1,
        )?;
        println!(
            "      {:<8} {}x{} array: {} DSP, {} BRAM36 (estimate) -> {} ({} files; `vivado -mode batch -source build.tcl`)",
            t.board,
            t.params.rows,
            t.params.cols,
            res.dsp,
            res.bram36,
            dir.display(),
            manifest.files.len()
        );
    }
    println!("[3/3] one layer per board in Verilator against the golden model");
    for t in &targets {
        let r = t.params.resolve()?;
        let (a, b) = random_gemm_operands(&r, &t.layer, 1);
        let report = run_gemm(
            &t.params,
            &t.layer,
            &a,
            &b,
            &SimOptions {
                seed: 1,
                ..SimOptions::default()
            },
        )
        .with_context(|| {
            format!(
                "simulating GEMM {}x{}x{} on the {} array",
                t.layer.m, t.layer.k, t.layer.n, t.board
            )
        })?;
        println!(
            "      {:<8} GEMM {}x{}x{}: {} cycles (model {}), utilisation {:.3}, {} outputs checked, {} mismatches, {:.0} cycles/s{}",
            t.board,
            t.layer.m,
            t.layer.k,
            t.layer.n,
            report.cycles,
            report.model_cycles,
            report.utilization,
            report.outputs_checked,
            report.mismatches,
            report.sim_cycles_per_second,
            if report.build_cached {
                ""
            } else {
                " (Verilator build included once)"
            }
        );
        ensure!(
            report.mismatches == 0,
            "{}: {} outputs differ from the golden model",
            t.board,
            report.mismatches
        );
        ensure!(
            report.cycles == report.model_cycles,
            "{}: the cycle model disagrees with Verilator",
            t.board
        );
        let path = args.out.join(t.board).join("sim.json");
        accelforge_hdl::write_atomic(
            &path,
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
    }
    println!("done: everything is under {}", args.out.display());
    Ok(())
}

/// Stage 1: the building blocks, generated, linted and parsed by a second tool.
fn blocks(dir: &Path) -> anyhow::Result<()> {
    println!("[1/3] building blocks into {}", dir.display());
    let designs: Vec<Design> = vec![
        pipeline::design(&pipeline::PipelineParams {
            width: 16,
            depth: 3,
        })?,
        fifo::design(&fifo::FifoParams {
            width: 32,
            depth: 16,
        })?,
        ram::design(&ram::RamParams {
            width: 32,
            depth: 1024,
            kind: ram::RamKind::DualPort,
            style: ram::RamStyle::Block,
        })?,
        skid::design(&skid::SkidParams {
            width: 64,
            tlast: true,
        })?,
    ];
    for d in &designs {
        let paths = d
            .write_to(dir)
            .with_context(|| format!("writing {}", d.top_name()))?;
        let report = tools::lint(&paths, Some(d.top_name()))?;
        ensure!(
            report.is_clean(),
            "{} does not lint clean: {:?}",
            d.top_name(),
            report.diagnostics
        );
        tools::parse_check(&paths, Some(d.top_name()))?;
        println!(
            "      {:<28} verilator -Wall clean, iverilog ok",
            d.top_name()
        );
    }
    Ok(())
}
