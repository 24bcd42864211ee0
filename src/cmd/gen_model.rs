//! `accelforge gen MODEL.onnx --board B --out DIR`: the Zynq bundle of the systolic array a
//! model maps to on a board (the array `run --engine rtl` uses), plus a network package that
//! runs the whole model through it on the board: `network.json` (every stage in order),
//! `weights/` (per array layer the integer weights B and the per-channel threshold tables),
//! `network.py` (host stages in numpy, GEMMs through the bundle's PYNQ driver) and
//! `run_network.py` (the example script).
//!
//! The array requantizes per output channel itself (`requant = per_channel`), exactly as in
//! `run --engine rtl`: `network.py` loads each array layer's folded (multiplier, offset) table
//! with a table-load command, then runs its GEMMs with the layer's shift, rounding and clamp
//! bounds, and reads back the layer's output integers. Only global average pooling still
//! requantizes on the host (by integer thresholds).
//!
//! With `--mixed FILE` (a choice of `map MODEL.onnx --mixed-out`) the quantizers take its
//! widths, and a choice with several engines gets them all in one block design: engine `n` is
//! `accel_<n>` behind `axi_dma_<n>` with its own driver and `params_<n>.json`, and each array
//! stage of `network.json` names the engine it runs on.

use std::ffi::OsString;
use std::path::PathBuf;

use accelforge_models::{Chan, HostOp, Stage};
use accelforge_templates::systolic::{Dataflow, Resolved, rtl};
use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};

/// Generate the Zynq bundle for a model: the mapped systolic array, its PYNQ driver and a
/// package that runs the whole network through it.
#[derive(Debug, Parser)]
#[command(name = "accelforge gen")]
pub struct GenModelArgs {
    /// The model file (.onnx), QONNX or QCDQ.
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    /// The board to map the network onto (see `accelforge boards list`).
    #[arg(long, value_name = "NAME")]
    pub board: String,
    /// Directory of extra board files (as for `gen systolic`).
    #[arg(long, value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// PL clock in MHz (default: the board's default clock).
    #[arg(long, value_name = "MHZ")]
    pub clock_mhz: Option<f64>,
    /// Output directory (the bundle and the network package).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How to quantize a float network input (`ap_fixed<W,I>` / `ap_ufixed<W,I>`); needed
    /// when the graph leaves its input float.
    #[arg(long, value_name = "TYPE")]
    pub input_type: Option<String>,
    /// A mixed-precision choice (`map MODEL.onnx --mixed-out FILE`): the quantizers at its
    /// widths and a bundle with its engines (two engines: two accelerators, each behind its own
    /// DMA, in one block design; `network.py` runs each layer on its engine).
    #[arg(long, value_name = "FILE")]
    pub mixed: Option<PathBuf>,
    /// Replace DIR if it is an earlier accelforge output.
    #[arg(long)]
    pub force: bool,
    /// Write the bundle even if the estimate exceeds the board (marked in the manifest).
    #[arg(long)]
    pub allow_over_budget: bool,
    /// Print JSON (keys `bundle`, `model`, `board`, `params`, `layers`, `files`, `manifest`).
    #[arg(long)]
    pub json: bool,
}

/// `gen NAME ...` where NAME is not a template: a model file, or an error naming the choices.
pub fn run_from(argv: Vec<OsString>) -> anyhow::Result<()> {
    let first = argv
        .first()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !first.to_ascii_lowercase().ends_with(".onnx") {
        let names: Vec<String> = accelforge_templates::template::names()
            .iter()
            .map(|n| format!("`{n}`"))
            .collect();
        anyhow::bail!(
            "`gen {first}`: unknown template; `gen` takes a template ({}) or a model file \
             `MODEL.onnx` (e.g. `accelforge gen model.onnx --board pynq-z2 --out DIR`)",
            names.join(", ")
        );
    }
    let args = std::iter::once(OsString::from("accelforge gen")).chain(argv);
    let args = match GenModelArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => anyhow::bail!("{}", e.render().to_string().trim_end()),
    };
    run(&args)
}

fn run(a: &GenModelArgs) -> anyhow::Result<()> {
    let w = write(a)?;
    report(a, &w)
}

/// `RxC OS ap_fixed<8,8> x ap_fixed<8,8> -> ...`: an engine in one phrase.
fn engine_text(p: &accelforge_templates::systolic::SystolicParams) -> String {
    format!(
        "{}x{} {} systolic array ({} x {} -> {})",
        p.rows,
        p.cols,
        format!("{:?}", p.dataflow).to_uppercase(),
        p.input_type,
        p.weight_type,
        p.output_type
    )
}

/// What [`write`] wrote.
pub struct Written {
    /// Each engine's array (one unless a mixed-precision choice has more).
    pub engines: Vec<accelforge_templates::systolic::SystolicParams>,
    pub rows: Vec<super::import::LayerRow>,
    pub manifest: accelforge_boards::Manifest,
}

/// Maps the model onto the board and writes its bundle and network package into `a.out`
/// (staged: an error leaves nothing).
pub fn write(a: &GenModelArgs) -> anyhow::Result<Written> {
    let mixed = a
        .mixed
        .as_deref()
        .map(super::run_rtl::read_mixed)
        .transpose()?;
    let loaded = super::import::load_model_with(
        &a.model,
        a.input_type.as_deref(),
        None,
        mixed.as_ref().map_or(&[][..], |m| &m.widths),
    )?;
    let net = &loaded.net;
    let toml = super::import::workload_toml(net, "model", &a.model.display().to_string());
    let rows = super::import::layer_rows(net);
    // The engines (one unless a mixed-precision choice has more) and which runs each stage.
    let (setup, engines, engine_of) = match &mixed {
        Some(m) => {
            let setup = m.setup(net)?;
            let engine_of: std::collections::BTreeMap<usize, usize> = net
                .stages
                .iter()
                .enumerate()
                .filter(|(_, st)| st.is_array())
                .filter_map(|(si, _)| {
                    let name = &rows.get(si)?.name;
                    let n = m
                        .engines
                        .iter()
                        .position(|(layers, _)| layers.contains(name))?;
                    Some((si, n))
                })
                .collect();
            let engines: Vec<_> = m.engines.iter().map(|(_, p)| p.clone()).collect();
            (setup, engines, engine_of)
        }
        // The array requantizes per channel, as in `run --engine rtl`.
        // Sized for one inference at a time, as the PYNQ driver runs it.
        None => {
            let setup = super::run_rtl::setup(
                net,
                &toml,
                (Some(&a.board), a.boards_dir.as_deref()),
                None,
                1,
            )?;
            let engines = vec![setup.params.clone()];
            (setup, engines, std::collections::BTreeMap::new())
        }
    };
    let folded: std::collections::BTreeMap<usize, accelforge_models::FoldedMulShift> = net
        .folded_forms()
        .into_iter()
        .map(|(si, f, _)| {
            f.map(|f| (si, f)).with_context(|| {
                format!("layer {si}: no exact multiply-and-shift form for the array's requantizer")
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut resolved = Vec::new();
    let mut designs = Vec::new();
    for (n, p) in engines.iter().enumerate() {
        resolved.push(p.resolve().with_context(|| format!("engine {n}'s array"))?);
        designs.push(rtl::design(p).with_context(|| format!("generating engine {n}'s array"))?);
    }
    // Everything goes into a staged directory swapped in at the end: an error leaves nothing.
    let staged = accelforge_hdl::output::StagedDir::new(&a.out, a.force)?;
    let clock_mhz = a.clock_mhz.unwrap_or(setup.clock_mhz);
    let bundle_args = super::generate::BundleArgs {
        board: Some(a.board.clone()),
        boards_dir: a.boards_dir.clone(),
        clock_mhz: Some(clock_mhz),
        allow_over_budget: a.allow_over_budget,
        // The staged directory is empty and ours.
        force: true,
        shown_out: Some(a.out.clone()),
    };
    let (manifest, drivers, params_files) = if engines.len() == 1 {
        let (manifest, _, class) = super::generate::write_systolic_bundle(
            &bundle_args,
            &a.board,
            staged.path(),
            &engines[0],
            &designs[0],
        )?;
        let module = manifest
            .files
            .iter()
            .find_map(|f| f.path.strip_suffix(".py"))
            .context("the bundle has no Python driver")?
            .to_string();
        (
            manifest,
            vec![(module, class)],
            vec!["params.json".to_string()],
        )
    } else {
        let stem = a
            .model
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        let bitstream = format!(
            "af_{}_{}engines",
            accelforge_boards::sanitize_identifier(&stem),
            engines.len()
        );
        let with_params = engines
            .iter()
            .zip(&designs)
            .map(|(p, d)| Ok((serde_json::to_value(p)?, d)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let w = bundle_args.write_engines(
            &a.board,
            staged.path(),
            &accelforge_templates::systolic::Systolic,
            &with_params,
            &bitstream,
        )?;
        (w.manifest, w.drivers, w.params_files)
    };
    let engines_json: Vec<Value> = resolved
        .iter()
        .zip(&drivers)
        .zip(&params_files)
        .map(|((r, (module, class)), params)| {
            json!({
                "driver": {"module": module, "class": class},
                "array": array_json(r),
                "params": params,
            })
        })
        .collect();
    let mut stages = Vec::new();
    let mut files: Vec<PackageFile> = Vec::new();
    for (si, st) in net.stages.iter().enumerate() {
        let name = rows
            .get(si)
            .map_or_else(|| format!("stage{si}"), |r| r.name.clone());
        let (mut v, extra) = stage_json(si, &name, st, folded.get(&si))?;
        if st.is_array() {
            v["engine"] = json!(engine_of.get(&si).copied().unwrap_or(0));
        }
        stages.push(v);
        files.extend(extra);
    }
    let spec = json!({
        "format": "accelforge-network/2",
        "model": a.model.display().to_string(),
        "board": a.board,
        "input_shape": net.input_shape,
        "input": loaded.input,
        "out_len": net.out_len,
        "out_scale": f64::from(net.out_scale),
        "out_zp": net.out_zp,
        "softmax": net.softmax,
        "engines": engines_json,
        "clock_mhz": clock_mhz,
        "stages": stages,
    });
    files.push((
        "network.json".into(),
        (serde_json::to_string_pretty(&spec)? + "\n").into_bytes(),
    ));
    let engine_rows: Vec<String> = rows
        .iter()
        .map(|r| match engine_of.get(&r.index) {
            Some(n) if engines.len() > 1 => format!("engine {n}"),
            _ => r.runs_on.to_string(),
        })
        .collect();
    files.push((
        "NETWORK.md".into(),
        network_md(a, &engines, &rows, &engine_rows).into_bytes(),
    ));
    files.push((
        "network.py".into(),
        accelforge_boards::zynq::network::NETWORK_PY
            .as_bytes()
            .to_vec(),
    ));
    files.push((
        "run_network.py".into(),
        accelforge_boards::zynq::network::RUN_NETWORK_PY
            .as_bytes()
            .to_vec(),
    ));
    std::fs::create_dir_all(staged.path().join("weights"))
        .with_context(|| format!("creating weights/ in {}", staged.path().display()))?;
    for (path, bytes) in &files {
        let target = staged.path().join(path);
        accelforge_hdl::output::write_atomic(&target, bytes)
            .with_context(|| format!("writing {path}"))?;
    }
    // The manifest lists the package too (what was generated, with hashes), in file order.
    let mut manifest = manifest;
    for (path, bytes) in &files {
        let role = if path.starts_with("weights/") {
            "network-weights"
        } else {
            "network-package"
        };
        manifest
            .files
            .push(accelforge_boards::zynq::bundle::ManifestFile::of(
                path, role, bytes,
            ));
    }
    accelforge_hdl::output::write_atomic(
        &staged.path().join("manifest.json"),
        (serde_json::to_string_pretty(&manifest)? + "\n").as_bytes(),
    )?;
    staged.commit("gen MODEL.onnx")?;
    Ok(Written {
        engines,
        rows,
        manifest,
    })
}

fn report(a: &GenModelArgs, w: &Written) -> anyhow::Result<()> {
    // The manifest lists the bundle and the network package.
    let params_file = if w.engines.len() == 1 {
        "params.json".to_string()
    } else {
        "params_0.json".to_string()
    };
    let mut all = super::generate::bundle_files(&a.out, &w.manifest, &params_file);
    for n in 1..w.engines.len() {
        all.push(a.out.join(format!("params_{n}.json")).display().to_string());
    }
    if a.json {
        let resources = w
            .engines
            .iter()
            .map(accelforge_templates::systolic::cost::resources)
            .collect::<Result<Vec<_>, _>>()?;
        let v = json!({
            "bundle": a.out.display().to_string(),
            "model": a.model.display().to_string(),
            "board": a.board,
            "params": w.engines[0],
            "resources": resources[0],
            "engines": w.engines.iter().zip(&resources).map(|(p, r)| json!({"params": p, "resources": r})).collect::<Vec<_>>(),
            "layers": w.rows,
            "files": all,
            "manifest": w.manifest,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Zynq bundle for {} on {} in {}:",
            a.model.display(),
            a.board,
            a.out.display()
        );
        for (n, p) in w.engines.iter().enumerate() {
            println!("  engine {n}: {}", engine_text(p));
        }
        for f in &all {
            println!("  {f}");
        }
        println!(
            "on the board: python3 run_network.py X.npy [--labels L.npy]; build the bitstream \
             with: cd {} && vivado -mode batch -source build.tcl",
            a.out.display()
        );
    }
    Ok(())
}

/// How to run the network on the board, and what each stage is (the bundle's README covers
/// the accelerator itself; it is listed with its hash in manifest.json, so it stays as written).
/// `runs_on[i]` says where row `i` runs (`array`, `host`, or `engine n` with several).
fn network_md(
    a: &GenModelArgs,
    engines: &[accelforge_templates::systolic::SystolicParams],
    rows: &[super::import::LayerRow],
    runs_on: &[String],
) -> String {
    let model = a.model.file_name().map_or_else(
        || a.model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let hardware = match engines {
        [p] => format!(
            "The accelerator is a {} that requantizes per output channel itself: each array \
             layer loads its (multiplier, offset) table, then runs its GEMM.",
            engine_text(p)
        ),
        _ => {
            let list: Vec<String> = engines
                .iter()
                .enumerate()
                .map(|(n, p)| format!("engine {n}: {}", engine_text(p)))
                .collect();
            format!(
                "The block design holds {} accelerators, each behind its own DMA: {}. Each \
                 requantizes per output channel itself: an array layer loads its (multiplier, \
                 offset) table into its engine, then runs its GEMM there.",
                engines.len(),
                list.join("; ")
            )
        }
    };
    let mixed = a
        .mixed
        .as_ref()
        .map_or_else(String::new, |m| format!(" --mixed {}", m.display()));
    let mut t = format!(
        "# {model} on {}\n\n\
         Written by `accelforge gen {model} --board {}{mixed}`. {hardware} The host stages run \
         in numpy (`network.py`).\n\n\
         On the board, with the bitstream (`build.tcl`) next to these files:\n\n\
         ```sh\npython3 run_network.py X.npy [--labels L.npy] [--out Y.npy]\n```\n\n\
         or from Python: `from network import Network; y = Network().run(x)` (x float32 with the \
         batch first). The outputs equal `accelforge run {model} --engine golden{it}{mixed}`.\n\n\
         | # | stage | op | runs on | in | out | GEMM (M, K, N) per input |\n|---|---|---|---|---|---|---|\n",
        a.board,
        a.board,
        it = a
            .input_type
            .as_ref()
            .map_or_else(String::new, |t| format!(" --input-type '{t}'")),
    );
    for (r, on) in rows.iter().zip(runs_on) {
        let shape = |s: &[usize]| {
            s.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("x")
        };
        let gemm = r
            .gemm
            .map_or_else(String::new, |[m, k, n]| format!("{m}, {k}, {n}"));
        t += &format!(
            "| {} | {} | {} | {on} | {} | {} | {gemm} |\n",
            r.index,
            r.name,
            r.op,
            shape(&r.in_shape),
            shape(&r.out_shape)
        );
    }
    t
}

/// The stream layout of the array, what `network.py` packs operands and unpacks results by,
/// and the shape of its per-channel requantizer's table entries.
pub fn array_json(r: &Resolved) -> Value {
    let requant = accelforge_templates::systolic::requant::per_channel(r).map(|pc| {
        json!({
            "max_channels": pc.max_channels,
            "mul_bits": pc.mul_bits,
            "add_bits": pc.add_bits,
            "beats_per_entry": pc.beats_per_entry,
        })
    });
    json!({
        "requant": requant,
        "rows": r.r,
        "cols": r.c,
        "dataflow": if r.p.dataflow == Dataflow::Ws { "ws" } else { "os" },
        "stream_bits": r.p.stream_bits,
        "max_n_chunk": r.p.max_n_chunk,
        "max_k": r.p.max_k,
        "ws_m_block": r.ws_m_block,
        "a_bits": r.ta.width(),
        "b_bits": r.tb.width(),
        "out_bits": r.tout.width(),
        "out_signed": r.tout.is_signed(),
        "a_per_beat": r.ea,
        "b_per_beat": r.eb,
        "out_per_beat": r.eo,
    })
}

fn geom_json(g: &accelforge_models::ConvGeom) -> Value {
    json!({
        "c": g.c, "h": g.h, "w": g.w, "o": g.o, "kh": g.kh, "kw": g.kw,
        "sh": g.sh, "sw": g.sw, "pt": g.pt, "pl": g.pl, "oh": g.oh, "ow": g.ow,
        "pad": g.pad,
    })
}

/// A file of the network package: its path in the bundle and its bytes.
pub type PackageFile = (String, Vec<u8>);

/// A requantization's JSON entry and its threshold table (.npy, channels × levels - 1).
fn requant_json(
    si: usize,
    name: &str,
    rq: &accelforge_models::Requant,
) -> anyhow::Result<(Value, PackageFile)> {
    use ndarray_npy::WriteNpyExt as _;
    let width = usize::try_from(rq.hi - rq.lo).context("requantization range")?;
    let mut thr = ndarray::Array2::<i64>::zeros((rq.chans.len(), width));
    let mut kinds = Vec::new();
    let mut consts = Vec::new();
    for (c, ch) in rq.chans.iter().enumerate() {
        let (kind, t, k0) = match ch {
            Chan::Up(t) => (1, Some(t), 0),
            Chan::Down(t) => (-1, Some(t), 0),
            Chan::Const(v) => (0, None, *v),
        };
        kinds.push(kind);
        consts.push(k0);
        if let Some(t) = t {
            for (j, &x) in t.iter().enumerate() {
                thr[(c, j)] = x;
            }
        }
    }
    let tpath = format!("weights/{si:02}_{name}_thresholds.npy");
    let mut tb = Vec::new();
    thr.write_npy(&mut tb).context("encoding thresholds")?;
    let v = json!({
        "lo": rq.lo, "hi": rq.hi, "relu": rq.relu, "zp": rq.zp,
        "kinds": kinds, "const": consts, "thresholds": tpath,
        "function": "q = clip(round_half_even((a[c]*acc + b[c]) / s), lo, hi), Relu, + zp",
        "a": rq.a, "b": rq.b, "s": rq.s,
    });
    Ok((v, (tpath, tb)))
}

/// An array layer's requantizer settings and its (multiplier, offset) table (.npy, channels
/// × 2): what the table-load command and the GEMM's command fields carry.
fn table_json(
    si: usize,
    name: &str,
    f: &accelforge_models::FoldedMulShift,
) -> anyhow::Result<(Value, PackageFile)> {
    use ndarray_npy::WriteNpyExt as _;
    let flat: Vec<i64> = f.chans.iter().flat_map(|&(m, a)| [m, a]).collect();
    let table = ndarray::Array2::from_shape_vec((f.chans.len(), 2), flat)?;
    let tpath = format!("weights/{si:02}_{name}_table.npy");
    let mut tb = Vec::new();
    table
        .write_npy(&mut tb)
        .context("encoding the requantization table")?;
    let v = json!({
        "table": tpath, "shift": f.shift, "round": u8::from(f.round_even),
        "lo": f.lo, "hi": f.hi,
        "function": "q = clamp(round(acc*mul[c] + add[c], shift), lo, hi): floor shift, plus one \
                     when round = 1 and the dropped bits exceed half (ties to even)",
    });
    Ok((v, (tpath, tb)))
}

/// The stage's JSON entry and the .npy files it refers to.
fn stage_json(
    si: usize,
    name: &str,
    st: &Stage,
    folded: Option<&accelforge_models::FoldedMulShift>,
) -> anyhow::Result<(Value, Vec<PackageFile>)> {
    use ndarray_npy::WriteNpyExt as _;
    let v = match st {
        Stage::InputQuant {
            pre,
            scale,
            lo,
            hi,
            zp,
        } => {
            let pre: Vec<Value> = pre
                .iter()
                .map(|op| {
                    let (name, c) = match *op {
                        HostOp::Mul(c) => ("mul", c),
                        HostOp::Div(c) => ("div", c),
                        HostOp::Add(c) => ("add", c),
                        HostOp::Sub(c) => ("sub", c),
                    };
                    // f32 constants as exact f64: numpy's float32() gives back the same value.
                    json!([name, f64::from(c)])
                })
                .collect();
            json!({"op": "input-quant", "name": name, "pre": pre, "scale": f64::from(*scale),
                   "lo": lo, "hi": hi, "zp": zp, "runs_on": "host"})
        }
        Stage::MaxPool { geom } => {
            json!({"op": "maxpool", "name": name, "geom": geom_json(geom), "runs_on": "host"})
        }
        Stage::Relu => json!({"op": "relu", "name": name, "runs_on": "host"}),
        Stage::Dense { .. } | Stage::Conv { .. } => {
            let (m, k, n) = st.gemm_shape().context("array stage")?;
            let b = st.gemm_b().context("array stage weights")?;
            let b: Vec<i32> = b
                .into_iter()
                .map(i32::try_from)
                .collect::<Result<_, _>>()
                .context("weights beyond 32 bits")?;
            let b = ndarray::Array2::from_shape_vec((k, n), b)?;
            let wpath = format!("weights/{si:02}_{name}_b.npy");
            let mut wb = Vec::new();
            b.write_npy(&mut wb).context("encoding weights")?;
            let f = folded.with_context(|| format!("layer {si}: no folded requantization"))?;
            let (requant, table) = table_json(si, name, f)?;
            let mut v = json!({
                "op": if matches!(st, Stage::Conv { .. }) { "conv" } else { "dense" },
                "name": name,
                "runs_on": "array",
                "gemm": [m, k, n],
                "weights": wpath,
                "array_requant": requant,
            });
            if let Stage::Conv { geom, .. } = st {
                v["geom"] = geom_json(geom);
            }
            return Ok((v, vec![(wpath, wb), table]));
        }
        Stage::AvgPool { geom, rq } => {
            let (requant, thresholds) = requant_json(si, name, rq)?;
            let v = json!({"op": "avgpool", "name": name, "geom": geom_json(geom),
                           "requant": requant, "runs_on": "host"});
            return Ok((v, vec![thresholds]));
        }
    };
    Ok((v, Vec::new()))
}
