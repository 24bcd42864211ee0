//! `accelforge gen systolic ...`: writes a template's Verilog (one file per module), its
//! `params.json` and a short summary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use accelforge_templates::systolic::{
    BufferRam, Dataflow, PeKind, Systolic, SystolicParams, cost, rtl,
};
use accelforge_templates::template::DynTemplate;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

/// Generate a template's Verilog.
#[derive(Debug, Args)]
#[command(
    after_help = "A model instead of a template: accelforge gen MODEL.onnx --board NAME --out DIR \
                  [--input-type T] [--force] [--json] (see `accelforge gen MODEL.onnx --help`)"
)]
pub struct GenArgs {
    #[command(subcommand)]
    pub template: GenTemplate,
}

#[derive(Debug, Subcommand)]
pub enum GenTemplate {
    /// The systolic-array GEMM accelerator.
    Systolic(GenSystolicArgs),
    /// The Mixture-of-Experts streaming core.
    Moe(super::moe::GenMoeArgs),
    /// `gen MODEL.onnx --board B --out DIR`: the Zynq bundle of the array the model maps to,
    /// with the network package that runs the whole model through it (see `gen_model`); or
    /// `gen NAME --params FILE --out DIR` for any other registered template (see `template`).
    #[command(external_subcommand)]
    Model(Vec<OsString>),
}

#[derive(Debug, Args)]
pub struct GenSystolicArgs {
    #[command(flatten)]
    pub array: ArrayArgs,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print JSON (keys `top`, `files`, `params`, `params_file`, `resources`; with `--board`
    /// also `bundle` and `manifest`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub bundle: BundleArgs,
}

/// Options that turn a generated core into a Zynq bundle.
#[derive(Debug, Args, Clone)]
pub struct BundleArgs {
    /// Write a bitstream-ready Zynq bundle for this board (see `accelforge boards list`): the
    /// wrapped Verilog, a Vivado batch script, XDC, PYNQ driver, README and manifest.
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Extra board files (overrides `ACCELFORGE_BOARDS_DIR`).
    #[arg(long, value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// PL clock in MHz [default: the board's default PL clock].
    #[arg(long, value_name = "MHZ", requires = "board")]
    pub clock_mhz: Option<f64>,
    /// Write the bundle even if the estimate exceeds the board (marked in the manifest).
    #[arg(long, requires = "board")]
    pub allow_over_budget: bool,
    /// Replace an existing bundle directory (only one holding an accelforge output).
    #[arg(long, requires = "board")]
    pub force: bool,
    /// The directory messages name when the bundle is written into a staging directory first
    /// (`gen MODEL.onnx`), so an error names the user's `--out`, not a hidden temporary one.
    #[arg(skip)]
    pub shown_out: Option<PathBuf>,
}

impl BundleArgs {
    /// Wraps `design` (template `t` built from `params`) for the board and writes the bundle
    /// into `out` with the parameters file, the template completing the interface for the
    /// board (argument limits, a weight fetch). Returns the manifest and the driver's class
    /// name. Works for every registered template.
    pub fn write(
        &self,
        board_name: &str,
        out: &Path,
        t: &dyn DynTemplate,
        params: &serde_json::Value,
        design: &accelforge_hdl::Design,
    ) -> anyhow::Result<(accelforge_boards::Manifest, String)> {
        use accelforge_boards::zynq::generate::{GenerateRequest, generate_bundle};
        let db = accelforge_boards::BoardDb::load(self.boards_dir.as_deref())
            .context("loading the board database")?;
        let (board, clock) = self.board_and_clock(&db, board_name, out)?;
        let accel = wrapped_interface(t, params, design, board, clock)?;
        let class = accel.class_name();
        let req = GenerateRequest {
            board,
            accel: &accel,
            template_params: params.clone(),
            estimate: t.resources(params)?,
            allow_over_budget: self.allow_over_budget,
            options: accelforge_boards::BundleOptions {
                overwrite: self.force,
                ..Default::default()
            },
        };
        let manifest = generate_bundle(out, design, &req).with_context(|| {
            format!(
                "writing the {} bundle into `{}`",
                board.name,
                self.shown_out.as_deref().unwrap_or(out).display()
            )
        })?;
        // The same parameters file `gen` writes without a bundle, so `--params` works on a
        // bundle directory too.
        let params_file = out.join(t.params_file());
        let json = serde_json::to_string_pretty(params)? + "\n";
        accelforge_hdl::write_atomic(&params_file, json.as_bytes())
            .with_context(|| format!("writing `{}`", params_file.display()))?;
        Ok((manifest, class))
    }
}

impl BundleArgs {
    /// The board and the PL clock, after refusing to replace `out` unless it is ours: the
    /// bundle writer replaces `out` wholesale under --force, so only an accelforge output may
    /// be replaced, never a user's project, `.`, a file or a link.
    fn board_and_clock<'d>(
        &self,
        db: &'d accelforge_boards::BoardDb,
        board_name: &str,
        out: &Path,
    ) -> anyhow::Result<(&'d accelforge_boards::Board, f64)> {
        let board = db.get(board_name)?;
        if self.force {
            accelforge_hdl::output::check_replaceable(out)?;
        }
        Ok((
            board,
            self.clock_mhz.unwrap_or_else(|| board.default_clock_mhz()),
        ))
    }
}

/// The AXI interface of `design` wrapped for Zynq (top `<core>_zynq`), completed by its
/// template for the board (argument limits, a weight fetch).
fn wrapped_interface(
    t: &dyn DynTemplate,
    params: &serde_json::Value,
    design: &accelforge_hdl::Design,
    board: &accelforge_boards::Board,
    clock: f64,
) -> anyhow::Result<accelforge_boards::AccelInterface> {
    let top = format!("{}_zynq", design.top_name());
    let accel = accelforge_boards::zynq::wrapper::interface_for_core(
        design.top(),
        &top,
        clock,
        t.max_transfer_bytes(params)?,
    )
    .context("describing the accelerator's AXI interface")?;
    Ok(t.complete_interface(params, design, accel, board)?)
}

/// What [`BundleArgs::write_engines`] wrote: the manifest and each engine's driver
/// (module, class) and parameters file.
pub struct EnginesWritten {
    pub manifest: accelforge_boards::Manifest,
    pub drivers: Vec<(String, String)>,
    pub params_files: Vec<String>,
}

impl BundleArgs {
    /// [`BundleArgs::write`] for several engines of template `t` in one block design
    /// (`engines`: each one's parameters and core), building to `bitstream`.bit/.hwh: engine
    /// `n` is `accel_<n>` behind `axi_dma_<n>` with its own driver, and its parameters go to
    /// `params_<n>.json`. Their summed estimate is checked against the board.
    pub fn write_engines(
        &self,
        board_name: &str,
        out: &Path,
        t: &dyn DynTemplate,
        engines: &[(serde_json::Value, &accelforge_hdl::Design)],
        bitstream: &str,
    ) -> anyhow::Result<EnginesWritten> {
        use accelforge_boards::zynq::generate::{EngineRequest, generate_engines_bundle};
        let db = accelforge_boards::BoardDb::load(self.boards_dir.as_deref())
            .context("loading the board database")?;
        let (board, clock) = self.board_and_clock(&db, board_name, out)?;
        let accels = engines
            .iter()
            .map(|(params, design)| wrapped_interface(t, params, design, board, clock))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let requests = engines
            .iter()
            .zip(&accels)
            .map(|((params, design), accel)| {
                Ok(EngineRequest {
                    core: design,
                    accel,
                    template_params: params.clone(),
                    estimate: t.resources(params)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let options = accelforge_boards::BundleOptions {
            overwrite: self.force,
            ..Default::default()
        };
        let manifest = generate_engines_bundle(
            out,
            board,
            &requests,
            bitstream,
            self.allow_over_budget,
            &options,
        )
        .with_context(|| {
            format!(
                "writing the {} bundle into `{}`",
                board.name,
                self.shown_out.as_deref().unwrap_or(out).display()
            )
        })?;
        let mut params_files = Vec::new();
        for (n, (params, _)) in engines.iter().enumerate() {
            let name = format!("params_{n}.json");
            let json = serde_json::to_string_pretty(params)? + "\n";
            accelforge_hdl::write_atomic(&out.join(&name), json.as_bytes())
                .with_context(|| format!("writing `{name}`"))?;
            params_files.push(name);
        }
        let drivers = manifest
            .engines
            .iter()
            .map(|e| (e.driver_module.clone(), e.accel.class_name()))
            .collect();
        Ok(EnginesWritten {
            manifest,
            drivers,
            params_files,
        })
    }
}

/// Dataflow choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DataflowArg {
    /// Output-stationary.
    Os,
    /// Weight-stationary.
    Ws,
}

/// PE choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PeArg {
    /// One DSP multiply per PE.
    Dsp,
    /// Power-of-two / two-term CSD weights: shifts and adds, no DSP.
    ShiftAdd,
    /// Adjacent columns share one DSP multiply (two int8 products per DSP, three int4).
    DspPacked,
}

/// `--buffer-ram`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BufferRamArg {
    /// Block RAM.
    Block,
    /// UltraRAM.
    Ultra,
}

/// The systolic array's options, shared by `gen`, `sim` and `estimate`. `--params` loads a
/// `params.json` written by `gen`; any option given explicitly overrides it.
#[derive(Debug, Args, Clone)]
pub struct ArrayArgs {
    /// Parameters file (`params.json` as written by `gen systolic`).
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
    /// PE rows [default: 8].
    #[arg(long)]
    pub rows: Option<u32>,
    /// PE columns [default: 8].
    #[arg(long)]
    pub cols: Option<u32>,
    /// Dataflow [default: os].
    #[arg(long, value_enum)]
    pub dataflow: Option<DataflowArg>,
    /// Input (A) type [default: ap_fixed<8,8>].
    #[arg(long = "in", value_name = "TYPE")]
    pub input: Option<String>,
    /// Weight (B) type [default: ap_fixed<8,8>].
    #[arg(long, value_name = "TYPE")]
    pub weight: Option<String>,
    /// Accumulator type [default: ap_fixed<32,32>].
    #[arg(long, value_name = "TYPE")]
    pub acc: Option<String>,
    /// Output type with its rounding/overflow modes [default: ap_fixed<8,8>].
    #[arg(long = "out-type", value_name = "TYPE")]
    pub out_type: Option<String>,
    /// PE kind [default: dsp].
    #[arg(long, value_enum)]
    pub pe: Option<PeArg>,
    /// RAM of the operand buffers: `block` (RAMB18/36) or `ultra` (URAM288, UltraScale+ parts
    /// that have it: KV260, ZCU104) [default: block].
    #[arg(long, value_enum)]
    pub buffer_ram: Option<BufferRamArg>,
    /// AXI4-Stream data width in bits [default: 64].
    #[arg(long = "stream-bits")]
    pub stream_bits: Option<u32>,
    /// ReLU before requantization.
    #[arg(long)]
    pub relu: bool,
    /// Largest K a command may use [default: 256].
    #[arg(long = "max-k")]
    pub max_k: Option<u32>,
    /// Columns of B kept on chip [default: 4 x cols].
    #[arg(long = "max-n-chunk")]
    pub max_n_chunk: Option<u32>,
}

impl ArrayArgs {
    /// The validated parameters.
    pub fn params(&self) -> anyhow::Result<SystolicParams> {
        let mut p = match &self.params {
            Some(path) => load_params(path)?,
            None => SystolicParams::default(),
        };
        let explicit_chunk = self.max_n_chunk.is_some();
        if let Some(v) = self.rows {
            p.rows = v;
        }
        if let Some(v) = self.cols {
            p.cols = v;
        }
        if let Some(v) = self.dataflow {
            p.dataflow = match v {
                DataflowArg::Os => Dataflow::Os,
                DataflowArg::Ws => Dataflow::Ws,
            };
        }
        if let Some(v) = &self.input {
            p.input_type = v.clone();
        }
        if let Some(v) = &self.weight {
            p.weight_type = v.clone();
        }
        if let Some(v) = &self.acc {
            p.acc_type = v.clone();
        }
        if let Some(v) = &self.out_type {
            p.output_type = v.clone();
        }
        if let Some(v) = self.buffer_ram {
            p.buffer_ram = match v {
                BufferRamArg::Block => BufferRam::Block,
                BufferRamArg::Ultra => BufferRam::Ultra,
            };
        }
        if let Some(v) = self.pe {
            p.pe = match v {
                PeArg::Dsp => PeKind::Dsp,
                PeArg::ShiftAdd => PeKind::ShiftAdd,
                PeArg::DspPacked => PeKind::DspPacked,
            };
        }
        if let Some(v) = self.stream_bits {
            p.stream_bits = v;
        }
        if self.relu {
            p.relu = true;
        }
        if let Some(v) = self.max_k {
            p.max_k = v;
        }
        if let Some(v) = self.max_n_chunk {
            p.max_n_chunk = v;
        } else if self.params.is_none() || (self.cols.is_some() && !explicit_chunk) {
            p.max_n_chunk = 4 * p.cols;
        }
        p.validate()
            .context("checking the systolic-array options")?;
        Ok(p)
    }
}

/// The paths a bundle holds (manifest entries, manifest.json and the parameters file), for
/// `--json`.
pub fn bundle_files(
    out: &Path,
    manifest: &accelforge_boards::Manifest,
    params_name: &str,
) -> Vec<String> {
    let mut files: Vec<String> = manifest
        .files
        .iter()
        .map(|f| out.join(&f.path).display().to_string())
        .collect();
    for extra in ["manifest.json", params_name] {
        let p = out.join(extra).display().to_string();
        if !files.contains(&p) {
            files.push(p);
        }
    }
    files
}

fn load_params(path: &Path) -> anyhow::Result<SystolicParams> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading parameters file `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "parsing `{}` as systolic parameters (a params.json written by `gen systolic`)",
            path.display()
        )
    })
}

pub fn run(args: GenArgs) -> anyhow::Result<()> {
    match args.template {
        GenTemplate::Systolic(a) => gen_systolic(a),
        GenTemplate::Moe(a) => super::moe::gen_moe(a),
        GenTemplate::Model(argv) => match argv.first().and_then(|a| a.to_str()) {
            Some(name) if accelforge_templates::template::find(name).is_ok() => {
                super::template::generate(argv)
            }
            _ => super::gen_model::run_from(argv),
        },
    }
}

fn gen_systolic(a: GenSystolicArgs) -> anyhow::Result<()> {
    let p = a.array.params()?;
    let design = rtl::design(&p).context("generating the systolic array")?;
    if let Some(board) = &a.bundle.board {
        let (manifest, res, _) = write_systolic_bundle(&a.bundle, board, &a.out, &p, &design)?;
        if a.json {
            let v = serde_json::json!({
                "top": design.top_name(),
                "bundle": a.out.display().to_string(),
                "files": bundle_files(&a.out, &manifest, "params.json"),
                "params": p,
                "params_file": a.out.join("params.json").display().to_string(),
                "resources": res,
                "manifest": manifest,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("Zynq bundle for {board} in {}:", a.out.display());
            for f in &manifest.files {
                println!("  {:<40} {}", f.path, f.role);
            }
            println!("  {:<40} template-params", "params.json");
            println!(
                "build the bitstream with: cd {} && vivado -mode batch -source build.tcl",
                a.out.display()
            );
        }
        return Ok(());
    }
    // Only a directory this command creates (or an earlier output) is marked as replaceable:
    // marking a user's existing directory would let a later `--force` delete it.
    let markable = accelforge_hdl::output::check_replaceable(&a.out).is_ok();
    let files = design
        .write_to(&a.out)
        .with_context(|| format!("writing Verilog into `{}`", a.out.display()))?;
    if markable {
        accelforge_hdl::output::mark(&a.out, "gen systolic")?;
    }
    let params_file = a.out.join("params.json");
    let json = serde_json::to_string_pretty(&p)? + "\n";
    accelforge_hdl::write_atomic(&params_file, json.as_bytes())
        .with_context(|| format!("writing `{}`", params_file.display()))?;
    let res = cost::resources(&p)?;
    let summary = format!(
        "systolic array {}x{} ({:?}, {:?} PEs), top `{}`\n\
         A {} x B {} -> acc {} -> out {}{}\n\
         stream {} bits, max K {}, B chunk {} columns\n\
         estimated: {} DSP, {} RAMB36, {} RAMB18{}, ~{} LUT, ~{} FF\n",
        p.rows,
        p.cols,
        p.dataflow,
        p.pe,
        design.top_name(),
        p.input_type,
        p.weight_type,
        p.acc_type,
        p.output_type,
        if p.relu { ", ReLU" } else { "" },
        p.stream_bits,
        p.max_k,
        p.max_n_chunk,
        res.dsp,
        res.bram36,
        res.bram18,
        if res.uram > 0 {
            format!(", {} URAM288", res.uram)
        } else {
            String::new()
        },
        res.lut,
        res.ff
    );
    accelforge_hdl::write_atomic(&a.out.join("summary.txt"), summary.as_bytes())?;
    if a.json {
        let v = serde_json::json!({
            "top": design.top_name(),
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "params": p,
            "params_file": params_file.display().to_string(),
            "resources": res,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{summary}");
        println!(
            "wrote {} Verilog files and params.json to {}",
            files.len(),
            a.out.display()
        );
    }
    Ok(())
}

/// Writes the Zynq bundle of a systolic array (`gen systolic --board`, and the array of
/// `gen MODEL.onnx`); returns the manifest, the resource estimate and the driver's class name.
pub fn write_systolic_bundle(
    bundle: &BundleArgs,
    board: &str,
    out: &Path,
    p: &SystolicParams,
    design: &accelforge_hdl::Design,
) -> anyhow::Result<(accelforge_boards::Manifest, cost::Resources, String)> {
    let res = cost::resources(p)?;
    let (manifest, class) =
        bundle.write(board, out, &Systolic, &serde_json::to_value(p)?, design)?;
    Ok((manifest, res, class))
}
