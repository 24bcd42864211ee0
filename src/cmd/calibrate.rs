//! `accelforge calibrate`: synthesises a grid of configurations of each template with Yosys (in
//! parallel), fits its LUT/FF model by least squares, and writes the data file the resource
//! model embeds plus one Markdown report of predicted against synthesised resources covering
//! every template (a template not re-run contributes the section of its current data file).

use std::path::{Path, PathBuf};
use std::time::Instant;

use accelforge_hdl::Design;
use accelforge_hdl::tools::{self, DesignFiles, Family, SynthReport};
use accelforge_templates::moe::calibration as moe_cal;
use accelforge_templates::systolic::calibration as sys_cal;
use anyhow::{Context, ensure};
use rayon::prelude::*;

/// Which template(s) to calibrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// The systolic array (36 configurations, ~6 minutes on two cores).
    Systolic,
    /// The MoE core (27 configurations, ~7 minutes on two idle cores, ~15 on shared ones).
    Moe,
    /// Both.
    All,
}

/// Regenerate the resource-model calibration against Yosys.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Template(s) to re-synthesise and re-fit; the report always covers both, taking the other
    /// template's section from its data file.
    #[arg(long, value_enum, default_value_t = Template::All)]
    pub template: Template,
    /// Systolic data file to write (the one its resource model embeds).
    #[arg(
        long,
        visible_alias = "systolic-data",
        default_value = "accel-templates/data/systolic_calibration.json"
    )]
    pub data: PathBuf,
    /// MoE data file to write (the one its resource model embeds).
    #[arg(long, default_value = "accel-templates/data/moe_calibration.json")]
    pub moe_data: PathBuf,
    /// Report to write.
    #[arg(long, default_value = "docs/calibration.md")]
    pub report: PathBuf,
    /// Parallel Yosys runs [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Re-fit from the Yosys figures already in the data file(s) instead of running Yosys: for
    /// a change of the structural features, not of the RTL (the configurations are kept).
    #[arg(long)]
    pub refit: bool,
}

/// Progress over the synthesis grid: a bar on a terminal (each finished configuration printed
/// above it), plain lines otherwise (logs, CI), so nothing redraws into a file.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} configurations  ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        pb.set_style(style);
        Progress(Some(pb))
    }

    fn done(&self, line: String) {
        match &self.0 {
            Some(pb) => {
                pb.println(line);
                pb.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// Synthesises one design for 7-series and times it.
fn synth(design: &Design) -> anyhow::Result<(SynthReport, f64)> {
    let files = DesignFiles::new(design)?;
    let t = Instant::now();
    let r = tools::synth(&files.paths, design.top_name(), Family::Xc7)
        .with_context(|| format!("synthesising {}", design.top_name()))?;
    Ok((r, t.elapsed().as_secs_f64()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a calibration data file; regenerate it with `accelforge calibrate`",
            path.display()
        )
    })
}

fn reference() -> String {
    format!(
        "{} synth_xilinx -family xc7 -flatten",
        tools::doctor()
            .into_iter()
            .find(|(t, _)| *t == "yosys")
            .and_then(|(_, v)| v.ok())
            .unwrap_or_else(|| "yosys".into())
    )
}

fn systolic(
    args: &CalibrateArgs,
    pool: &rayon::ThreadPool,
) -> anyhow::Result<sys_cal::Calibration> {
    use accelforge_templates::systolic::{cost, rtl};
    if args.refit {
        let old: sys_cal::Calibration = read_json(&args.data)?;
        let points = old
            .points
            .into_iter()
            .map(|p| {
                Ok(sys_cal::Point {
                    features: cost::features(&p.params)?,
                    ..p
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return sys_cal::fit(&old.reference, points)
            .context("fitting the systolic resource model (degenerate calibration grid)");
    }
    let grid = sys_cal::grid();
    eprintln!(
        "systolic: synthesising {} configurations with yosys ({} at a time)",
        grid.len(),
        pool.current_num_threads()
    );
    let progress = Progress::new(grid.len());
    let points: Vec<sys_cal::Point> = pool.install(|| {
        grid.par_iter()
            .map(|p| -> anyhow::Result<sys_cal::Point> {
                let (r, _) = synth(&rtl::design(p)?)?;
                progress.done(format!(
                    "  {}x{} {:?} {:?}: {} LUT, {} FF, {} DSP, {} BRAM18",
                    p.rows,
                    p.cols,
                    p.dataflow,
                    p.pe,
                    r.lut,
                    r.ff,
                    r.dsp,
                    r.bram18_equivalent()
                ));
                Ok(sys_cal::Point {
                    params: p.clone(),
                    features: cost::features(p)?,
                    lut: r.lut,
                    ff: r.ff,
                    dsp: r.dsp,
                    bram18: r.bram18_equivalent(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    sys_cal::fit(&reference(), points)
        .context("fitting the systolic resource model (degenerate calibration grid)")
}

fn moe(args: &CalibrateArgs, pool: &rayon::ThreadPool) -> anyhow::Result<moe_cal::Calibration> {
    use accelforge_templates::moe::rtl;
    if args.refit {
        let old: moe_cal::Calibration = read_json(&args.moe_data)?;
        let points = old
            .points
            .into_iter()
            .map(|p| {
                Ok(moe_cal::Point {
                    features: moe_cal::features(&p.params)?,
                    ..p
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return moe_cal::fit(&old.reference, points)
            .context("fitting the MoE resource model (degenerate calibration grid)");
    }
    let grid = moe_cal::grid();
    eprintln!(
        "moe: synthesising {} configurations with yosys ({} at a time)",
        grid.len(),
        pool.current_num_threads()
    );
    let progress = Progress::new(grid.len());
    let points: Vec<moe_cal::Point> = pool.install(|| {
        grid.par_iter()
            .map(|p| -> anyhow::Result<moe_cal::Point> {
                let (r, seconds) = synth(&rtl::design(p)?)?;
                progress.done(format!(
                    "  {}: {} LUT, {} FF, {} DSP, {} BRAM18 ({seconds:.0} s)",
                    moe_cal::label(p),
                    r.lut,
                    r.ff,
                    r.dsp,
                    r.bram18_equivalent()
                ));
                Ok(moe_cal::Point {
                    params: p.clone(),
                    features: moe_cal::features(p)?,
                    lut: r.lut,
                    ff: r.ff,
                    dsp: r.dsp,
                    bram18: r.bram18_equivalent(),
                    seconds,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    moe_cal::fit(&reference(), points)
        .context("fitting the MoE resource model (degenerate calibration grid)")
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ensure!(jobs > 0, "--jobs must be at least 1");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let start = Instant::now();
    let do_sys = matches!(args.template, Template::Systolic | Template::All);
    let do_moe = matches!(args.template, Template::Moe | Template::All);
    // Everything is computed (or read) before anything is written, so a failure leaves the
    // data files and the report as they were.
    let sys = if do_sys {
        systolic(&args, &pool)?
    } else {
        read_json(&args.data).context("the report needs the systolic section")?
    };
    let moe = if do_moe {
        moe(&args, &pool)?
    } else {
        read_json(&args.moe_data).context("the report needs the MoE section")?
    };
    let report = format!("{}\n{}", sys_cal::report(&sys), moe_cal::report(&moe));
    // All files are written beside their targets first and renamed together, so a failure on
    // any (e.g. the report's directory is missing) leaves every file as it was.
    let sys_json = serde_json::to_string_pretty(&sys)? + "\n";
    let moe_json = serde_json::to_string_pretty(&moe)? + "\n";
    let mut files: Vec<(&Path, &[u8])> = Vec::new();
    if do_sys {
        files.push((&args.data, sys_json.as_bytes()));
    }
    if do_moe {
        files.push((&args.moe_data, moe_json.as_bytes()));
    }
    files.push((&args.report, report.as_bytes()));
    accelforge_hdl::output::write_atomic_all(&files)
        .context("writing the calibration (nothing was changed)")?;
    let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    print!("{report}");
    println!(
        "\nwrote {} in {:.0} s; rebuild so the resource models embed the new data",
        written.join(", "),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
