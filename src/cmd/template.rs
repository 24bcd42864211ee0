//! The generic face of the CLI over the template registry
//! (`accelforge_templates::template::registry`): `accelforge templates` lists the templates,
//! and for any registered template `NAME`
//! - `gen NAME --params FILE --out DIR [--board B ...]` writes its Verilog (or Zynq bundle),
//! - `estimate NAME --params FILE [--layer FILE]` prices a layer with its exact models,
//! - `sim NAME --params FILE [--layer FILE] [--seed N]` runs the layer in Verilator against
//!   its golden model.
//!
//! A template with its own flags (`gen systolic --rows ...`, `sim moe ...`) keeps them; a new
//! template needs no code here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use accelforge_templates::template::{self, DynTemplate};
use accelforge_templates::workload::{Layer, parse_layer};
use anyhow::{Context, bail};
use clap::{Args, Parser};

/// `accelforge templates`.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// Print JSON (per template: `name`, `about`, `params_file`, `default_params`,
    /// `example_layer`).
    #[arg(long)]
    pub json: bool,
}

/// `gen NAME --params FILE --out DIR`.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct GenArgs {
    /// Registered template.
    template: String,
    /// Parameters (JSON, as `gen NAME` writes them; missing fields take the defaults only
    /// where the template says so).
    #[arg(long, value_name = "FILE")]
    params: PathBuf,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print JSON (keys `top`, `files`, `params`, `params_file`, `resources`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    bundle: super::generate::BundleArgs,
}

/// `estimate|sim NAME --params FILE [--layer FILE]`: any registered template.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct LayerArgs {
    /// Registered template.
    template: String,
    /// Parameters (JSON, as `gen NAME` writes them).
    #[arg(long, value_name = "FILE")]
    params: PathBuf,
    /// One layer (TOML, `kind = "gemm" | "dense" | "conv2d" | "moe"` and its keys) [default:
    /// the layer the params are built for, where they fix one].
    #[arg(long, value_name = "FILE")]
    layer: Option<PathBuf>,
    /// Seed of the random operands (`sim`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse<P: Parser>(command: &'static str, argv: Vec<OsString>) -> anyhow::Result<P> {
    let matches = P::command()
        .name(command)
        .no_binary_name(true)
        .try_get_matches_from(argv)
        .and_then(|m| P::from_arg_matches(&m).map(|p| (m, p)));
    match matches {
        Ok((_, p)) => Ok(p),
        // Help and version go to stdout with exit 0, as clap would do at the top level.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            let text = e.render().to_string();
            let text = text.trim().trim_start_matches("error: ");
            Err(anyhow::anyhow!("{command}: {text}"))
        }
    }
}

fn load(t: &dyn DynTemplate, path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading parameters file `{}`", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing `{}` as JSON", path.display()))?;
    t.check_params(&v)
        .with_context(|| format!("checking `{}`", path.display()))
}

/// Reads and checks a params file of template `t` as its typed params (what a template's own
/// flags take `--params FILE` through).
pub fn load_typed<T: accelforge_templates::template::Template>(
    t: &T,
    path: &Path,
) -> anyhow::Result<T::Params> {
    let v = load(t, path)?;
    Ok(serde_json::from_value(v)?)
}

fn layer(
    t: &dyn DynTemplate,
    params: &serde_json::Value,
    path: Option<&Path>,
) -> anyhow::Result<Layer> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading layer file `{}`", p.display()))?;
            Ok(parse_layer(&text, &p.display().to_string())?)
        }
        None => t.own_layer(params)?.with_context(|| {
            format!(
                "give --layer FILE: {} params do not fix a layer (e.g. a file with kind = \"gemm\", m = 64, k = 64, n = 64)",
                t.name()
            )
        }),
    }
}

/// `accelforge templates`.
pub fn list(args: TemplatesArgs) -> anyhow::Result<()> {
    let reg = template::registry();
    if args.json {
        let v: Vec<serde_json::Value> = reg
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name(),
                    "about": t.about(),
                    "params_file": t.params_file(),
                    "default_params": t.default_params(),
                    "example_layer": t.example_layer(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for t in reg {
        println!("{:<10} {}", t.name(), t.about());
    }
    println!(
        "\nevery template: accelforge gen|estimate|sim NAME --params FILE (defaults: `accelforge templates --json`)"
    );
    Ok(())
}

/// `gen NAME --params FILE --out DIR [--board B]`.
pub fn generate(argv: Vec<OsString>) -> anyhow::Result<()> {
    let a: GenArgs = parse("accelforge gen", argv)?;
    let t = template::find(&a.template)?;
    let params = load(t, &a.params)?;
    let design = t
        .design(&params)
        .with_context(|| format!("generating the {} template", t.name()))?;
    let resources = t.resources(&params)?;
    if let Some(board) = &a.bundle.board {
        let (manifest, _) = a.bundle.write(board, &a.out, t, &params, &design)?;
        let files = super::generate::bundle_files(&a.out, &manifest, t.params_file());
        if a.json {
            let v = serde_json::json!({
                "top": design.top_name(),
                "bundle": a.out.display().to_string(),
                "files": files,
                "params": params,
                "params_file": a.out.join(t.params_file()).display().to_string(),
                "resources": resources,
                "manifest": manifest,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("Zynq bundle for {board} in {}:", a.out.display());
            for f in files {
                println!("  {f}");
            }
        }
        return Ok(());
    }
    // Only a directory this command creates (or an earlier output) is marked as replaceable.
    let markable = accelforge_hdl::output::check_replaceable(&a.out).is_ok();
    let mut files = design
        .write_to(&a.out)
        .with_context(|| format!("writing Verilog into `{}`", a.out.display()))?;
    let params_file = a.out.join(t.params_file());
    let json = serde_json::to_string_pretty(&params)? + "\n";
    accelforge_hdl::write_atomic(&params_file, json.as_bytes())
        .with_context(|| format!("writing `{}`", params_file.display()))?;
    if markable {
        accelforge_hdl::output::mark(&a.out, &format!("gen {}", t.name()))?;
    }
    files.push(params_file.clone());
    if a.json {
        let v = serde_json::json!({
            "top": design.top_name(),
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "params": params,
            "params_file": params_file.display().to_string(),
            "resources": resources,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for f in &files {
            println!("{}", f.display());
        }
    }
    Ok(())
}

/// `estimate NAME --params FILE [--layer FILE]`.
pub fn estimate(argv: Vec<OsString>) -> anyhow::Result<()> {
    let a: LayerArgs = parse("accelforge estimate", argv)?;
    let t = template::find(&a.template)?;
    let params = load(t, &a.params)?;
    let l = layer(t, &params, a.layer.as_deref())?;
    let cost = t.layer_cost(&params, &l)?.with_context(|| {
        format!(
            "the {} configuration cannot run layer `{}` ({})",
            t.name(),
            l.name,
            l.op.kind()
        )
    })?;
    let res = t.resources(&params)?;
    if a.json {
        let v = serde_json::json!({
            "template": t.name(),
            "layer": l,
            "cycles": cost.cycles,
            "macs": cost.macs,
            "ddr_bytes": cost.ddr_bytes,
            "resources": res,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} layer `{}` on {}: {} cycles, {} MACs, {} DDR bytes",
            l.op.kind(),
            l.name,
            t.name(),
            cost.cycles,
            cost.macs,
            cost.ddr_bytes
        );
        println!(
            "resources: {} LUT, {} FF, {} DSP, {} BRAM18, {} URAM",
            res.lut, res.ff, res.dsp, res.bram18, res.uram
        );
    }
    Ok(())
}

/// `sim NAME --params FILE [--layer FILE] [--seed N]`.
pub fn sim(argv: Vec<OsString>) -> anyhow::Result<()> {
    let a: LayerArgs = parse("accelforge sim", argv)?;
    let t = template::find(&a.template)?;
    let params = load(t, &a.params)?;
    let l = layer(t, &params, a.layer.as_deref())?;
    let check = t.simulate(&params, &l, a.seed)?;
    if a.json {
        let v = serde_json::json!({
            "template": t.name(),
            "layer": l.name,
            "cycles": check.cycles,
            "model_cycles": check.model_cycles,
            "outputs_checked": check.outputs_checked,
            "mismatches": check.mismatches,
            "sim_seconds": check.sim_seconds,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} layer `{}` on {}: {} cycles (model {}), {} outputs checked, {} mismatches",
            l.op.kind(),
            l.name,
            t.name(),
            check.cycles,
            check.model_cycles,
            check.outputs_checked,
            check.mismatches
        );
    }
    if check.mismatches > 0 {
        bail!("{} mismatches against the golden model", check.mismatches);
    }
    if check.cycles != check.model_cycles {
        bail!(
            "Verilator counted {} cycles, the cycle model {}",
            check.cycles,
            check.model_cycles
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gen NAME --params` (reached for templates without flags of their own) writes the
    /// template's Verilog and its params file, and refuses a file that is not its params.
    #[test]
    fn generic_gen_writes_the_templates_verilog_and_params() {
        let dir = tempfile::tempdir().unwrap();
        for t in template::registry() {
            let params = dir.path().join(format!("{}.json", t.name()));
            std::fs::write(&params, t.default_params().to_string()).unwrap();
            let out = dir.path().join(t.name());
            let argv: Vec<OsString> = vec![
                t.name().into(),
                "--params".into(),
                params.clone().into(),
                "--out".into(),
                out.clone().into(),
            ];
            generate(argv).unwrap();
            let design = t.design(&t.default_params()).unwrap();
            for (file, text) in design.files() {
                assert_eq!(
                    std::fs::read_to_string(out.join(&file)).unwrap(),
                    text,
                    "{file}"
                );
            }
            let written: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join(t.params_file())).unwrap())
                    .unwrap();
            assert_eq!(written, t.default_params());
        }
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"lanes": "four"}"#).unwrap();
        let argv: Vec<OsString> = vec![
            "moe".into(),
            "--params".into(),
            bad.into(),
            "--out".into(),
            dir.path().join("never").into(),
        ];
        let err = format!("{:#}", generate(argv).unwrap_err());
        assert!(err.contains("bad.json") && err.contains("moe"), "{err}");
        assert!(!dir.path().join("never").exists());
    }
}
