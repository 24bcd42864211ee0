//! `accelforge demo`: the README's main job on built-in defaults. Every stage is real: a built-in
//! workload mapped onto two boards by the MILP mapper, the chosen arrays generated and bundled for
//! Vivado, one layer each simulated in Verilator against the golden model and the mapper's
//! prediction, a design-space sweep with its best point re-simulated, and the reports. Each stage
//! prints where its output went.

use std::path::{Path, PathBuf};

use accelforge_hdl::Design;
use accelforge_hdl::blocks::{fifo, pipeline, ram, skid};
use accelforge_hdl::tools;
use accelforge_mapper::{MapOptions, MoeTemplateModel, SystolicTemplateModel, Workload, map};
use accelforge_templates::moe::MoeParams;
use accelforge_templates::systolic::layer::Gemm;
use accelforge_templates::systolic::sim::{SimOptions, random_gemm_operands, run_gemm};
use accelforge_templates::systolic::{SystolicParams, rtl};
use anyhow::{Context, ensure};

use super::generate::BundleArgs;

/// Run the built-in demonstration flow.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output directory (replaced if it holds an earlier accelforge output; any other existing
    /// directory is refused).
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
}

/// The built-in workload the demo maps, and the boards it maps it onto.
const WORKLOAD: &str = "mlp";
const BOARDS: [&str; 2] = ["pynq-z2", "zcu102"];
const SWEEP_SPEC: &str = include_str!("demo_sweep.toml");
/// The built-in MoE workload, the board it is mapped onto, and the routing skew of its batch.
const MOE_WORKLOAD: &str = "moe-tiny";
const MOE_BOARD: &str = "kv260";
const MOE_SKEW: f64 = 1.0;

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let out = &args.out;
    // Replace only an earlier accelforge output (never a user's directory, `.` or a file).
    accelforge_hdl::output::check_replaceable(out).context("choosing the demo's --out")?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing `{}`", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating `{}`", out.display()))?;
    // Marked first, so even an interrupted demo leaves a directory the next run may replace.
    accelforge_hdl::output::mark(out, "demo")?;
    blocks(&out.join("blocks"))?;

    let db = accelforge_boards::BoardDb::builtin()?;
    let workload = Workload::builtin(WORKLOAD)?;
    println!(
        "[2/8] mapping the built-in workload `{WORKLOAD}` ({} layers) with the MILP mapper",
        workload.layers.len()
    );
    let mut mapped = Vec::new();
    for name in BOARDS {
        let board = db.get(name)?;
        let model = SystolicTemplateModel::for_workload(&workload);
        let report = map(&model, &workload, board, &MapOptions::new(board))
            .with_context(|| format!("mapping `{WORKLOAD}` onto {name}"))?;
        let params: SystolicParams = serde_json::from_value(report.params.clone())
            .context("reading the chosen configuration")?;
        let dir = out.join(name);
        std::fs::create_dir_all(&dir)?;
        accelforge_hdl::write_atomic(
            &dir.join("map.json"),
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
        println!(
            "      {name:<8} {}x{} array, {} DSP of {}, {:.3} ms per inference at {} MHz ({:?}) -> {}",
            params.rows,
            params.cols,
            report.resources.dsp,
            report.budget.dsp,
            report.objective_seconds * 1e3,
            report.clock_mhz,
            report.status,
            dir.join("map.json").display()
        );
        mapped.push((name, params, report));
    }

    println!("[3/8] Zynq bundles for the chosen configurations");
    for (name, params, _) in &mapped {
        let dir = out.join(name).join("bundle");
        let manifest = array_bundle(name, &dir, params)?;
        println!(
            "      {name:<8} {} files in {} (build: `vivado -mode batch -source build.tcl`)",
            manifest.files.len(),
            dir.display()
        );
    }

    println!(
        "[4/8] one layer per board in Verilator against the golden model and the mapper's prediction"
    );
    for (name, params, report) in &mapped {
        // The layer with the most work: the one whose prediction matters most.
        let layer = report
            .layers
            .iter()
            .max_by_key(|l| l.macs)
            .context("the workload has no layers")?;
        let g = Gemm {
            m: u32::try_from(layer.gemm.m)?,
            k: u32::try_from(layer.gemm.k)?,
            n: u32::try_from(layer.gemm.n)?,
        };
        let r = params.resolve()?;
        let (a, b) = random_gemm_operands(&r, &g, 1);
        let sim = run_gemm(
            params,
            &g,
            &a,
            &b,
            &SimOptions {
                seed: 1,
                ..SimOptions::default()
            },
        )
        .with_context(|| format!("simulating layer `{}` on the {name} array", layer.name))?;
        println!(
            "      {name:<8} layer {} ({}x{}x{}): {} cycles simulated, {} predicted by the mapper, utilisation {:.3}, {} outputs checked, {} mismatches",
            layer.name,
            g.m,
            g.k,
            g.n,
            sim.cycles,
            layer.compute_cycles,
            sim.utilization,
            sim.outputs_checked,
            sim.mismatches
        );
        ensure!(
            sim.mismatches == 0,
            "{name}: {} outputs differ from the golden model",
            sim.mismatches
        );
        ensure!(
            sim.cycles == layer.compute_cycles && sim.cycles == sim.model_cycles,
            "{name}: the cycle model disagrees with Verilator"
        );
        let dir = out.join(name).join("sim");
        std::fs::create_dir_all(&dir)?;
        accelforge_hdl::write_atomic(
            &dir.join("sim.json"),
            (serde_json::to_string_pretty(&sim)? + "\n").as_bytes(),
        )?;
    }

    let sweep_dir = out.join("sweep");
    println!(
        "[5/8] design-space sweep (analytic models, best point re-run in Verilator) into {}",
        sweep_dir.display()
    );
    let spec_path = out.join("sweep.toml");
    accelforge_hdl::write_atomic(&spec_path, SWEEP_SPEC.as_bytes())?;
    let spec = accelforge_sweep::Spec::parse(SWEEP_SPEC, &spec_path)?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let opts = accelforge_sweep::RunOptions {
        out: sweep_dir.clone(),
        jobs,
        resume: false,
        shard: None,
        max_points: None,
    };
    let done = accelforge_sweep::sweep(&spec, &opts, 1, &accelforge_sweep::NoProgress)?;
    let summary = done.summary.context("the demo sweep stopped early")?;
    let failures = accelforge_sweep::verification_failures(&summary);
    ensure!(
        failures.is_empty(),
        "sweep verification failed: {failures:?}"
    );
    println!(
        "      {} points at {:.0} points/s; {} on the Pareto front; verified in Verilator: {}",
        done.run.evaluated,
        summary.run.as_ref().map_or(0.0, |r| r.points_per_second),
        summary.pareto_points,
        summary
            .verify
            .iter()
            .map(|v| format!(
                "{} cycles = model, {} mismatches",
                v.measured_cycles, v.mismatches
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    moe_stage(out, &db)?;
    super::demo_digits::digits_stage(out, "7/8")?;

    println!("[8/8] reports");
    for dir in [
        sweep_dir.clone(),
        out.join(BOARDS[0]),
        out.join(BOARDS[0]).join("sim"),
        out.join(MOE_BOARD),
    ] {
        let report_dir = dir.join("report");
        let rendered = accelforge_reports::render(&dir, &report_dir)?;
        println!(
            "      {:?}: {} ({} charts, PNG and SVG)",
            rendered.kind,
            rendered.html.display(),
            rendered.charts.len()
        );
    }
    println!("done: everything is under {}", out.display());
    Ok(())
}

/// The Zynq bundle of a systolic array for `board` in `dir` (replacing an earlier one): the
/// same bundle `gen systolic --board` writes.
pub(super) fn array_bundle(
    board: &str,
    dir: &Path,
    params: &SystolicParams,
) -> anyhow::Result<accelforge_boards::Manifest> {
    let bundle = BundleArgs {
        board: Some(board.to_string()),
        boards_dir: None,
        clock_mhz: None,
        allow_over_budget: false,
        force: true,
        shown_out: None,
    };
    let design = rtl::design(params)?;
    let (manifest, _, _) =
        super::generate::write_systolic_bundle(&bundle, board, dir, params, &design)?;
    Ok(manifest)
}

/// Stage 6: the MoE core sized by the mapper for a board, then one skewed batch simulated with
/// and without expert reordering, each against the golden model and the cycle model.
fn moe_stage(out: &Path, db: &accelforge_boards::BoardDb) -> anyhow::Result<()> {
    let workload = Workload::builtin(MOE_WORKLOAD)?;
    let board = db.get(MOE_BOARD)?;
    println!(
        "[6/8] Mixture-of-Experts: `{MOE_WORKLOAD}` mapped onto {MOE_BOARD}, its Zynq bundle, one batch in Verilator with and without reordering"
    );
    let model = MoeTemplateModel::for_board(&workload, board, None);
    let report = map(&model, &workload, board, &MapOptions::new(board))
        .with_context(|| format!("mapping `{MOE_WORKLOAD}` onto {MOE_BOARD}"))?;
    let params: MoeParams = serde_json::from_value(report.params.clone())
        .context("reading the chosen MoE configuration")?;
    let dir = out.join(MOE_BOARD);
    std::fs::create_dir_all(&dir)?;
    accelforge_hdl::write_atomic(
        &dir.join("map.json"),
        (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
    )?;
    println!(
        "      lanes {} x simd {}, {}-byte weight stream, {} DSP of {}, {} BRAM18 of {} -> {}",
        params.lanes,
        params.simd,
        params.ddr_bytes_per_cycle,
        report.resources.dsp,
        report.budget.dsp,
        report.resources.bram18,
        report.budget.bram18,
        dir.join("map.json").display()
    );
    let design = accelforge_templates::moe::rtl::design(&params)?;
    let bundle_dir = dir.join("bundle");
    let (manifest, _) = super::moe::write_moe_bundle(
        &params,
        &design,
        MOE_BOARD,
        &bundle_dir,
        &BundleArgs {
            board: None,
            boards_dir: None,
            clock_mhz: None,
            allow_over_budget: false,
            force: true,
            shown_out: None,
        },
    )?;
    println!(
        "      Zynq bundle (weights fetched from DDR by an AXI DataMover): {} files in {}",
        manifest.files.len(),
        bundle_dir.display()
    );
    let mut runs = Vec::new();
    for reorder in [true, false] {
        let o = super::moe::simulate(&params, 1, MOE_SKEW, reorder)?;
        let loads = o.run.requests.len().saturating_sub(1);
        println!(
            "      {:<13} {} cycles simulated = {} by the model, {} expert loads for {} active experts, {} outputs checked, {} mismatches",
            if reorder { "reordered" } else { "token order" },
            o.run.cycles,
            o.model.cycles,
            loads,
            o.golden.routing.active_experts(),
            o.check.outputs_checked,
            o.check.mismatches
        );
        ensure!(
            o.check.mismatches == 0,
            "MoE ({}): {} outputs differ from the golden model",
            if reorder { "reordered" } else { "token order" },
            o.check.mismatches
        );
        ensure!(
            o.run.cycles == o.model.cycles,
            "MoE: the cycle model ({}) disagrees with Verilator ({})",
            o.model.cycles,
            o.run.cycles
        );
        runs.push(serde_json::json!({
            "reorder": reorder,
            "cycles": o.run.cycles,
            "model_cycles": o.model.cycles,
            "expert_loads": loads,
            "active_experts": o.golden.routing.active_experts(),
            "outputs_checked": o.check.outputs_checked,
            "mismatches": o.check.mismatches,
        }));
    }
    accelforge_hdl::write_atomic(
        &dir.join("moe_sim.json"),
        (serde_json::to_string_pretty(&runs)? + "\n").as_bytes(),
    )?;
    Ok(())
}

/// Stage 1: the building blocks, generated, linted and parsed by a second tool.
fn blocks(dir: &Path) -> anyhow::Result<()> {
    println!("[1/8] building blocks into {}", dir.display());
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
