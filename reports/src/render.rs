//! `accelforge report`: detects what a directory holds (a sweep, a `map` result or a `sim`
//! result) and writes charts (PNG + SVG) and one self-contained HTML page.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ReportError, Result, io_err};
use crate::fsio::{read_json, write_atomic};
use crate::html::Page;
use crate::plot::{Bar, Bars, ChartFiles, PALETTE, Scatter, Series, grey, save, seconds, si};
use crate::results::{PlotPoint, read_meta, scan};
use crate::schema::{PointRecord, Summary, SweepMeta, files, metric};

/// What a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// `results.jsonl` + `sweep.json` from `accelforge sweep` / `merge`.
    Sweep,
    /// `map.json` from `accelforge map --json`.
    Map,
    /// `sim.json` from `accelforge sim --json`.
    Sim,
}

impl InputKind {
    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Sweep => "sweep",
            InputKind::Map => "map",
            InputKind::Sim => "sim",
        }
    }
}

/// What [`render`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The input kind.
    pub kind: InputKind,
    /// The HTML page.
    pub html: PathBuf,
    /// Every chart.
    pub charts: Vec<ChartFiles>,
}

/// Detects the input kind from the files in `dir` (a sweep wins when several are present).
pub fn detect(dir: &Path) -> Result<InputKind> {
    if dir.join(files::RESULTS).is_file() {
        Ok(InputKind::Sweep)
    } else if dir.join(files::MAP).is_file() {
        Ok(InputKind::Map)
    } else if dir.join(files::SIM).is_file() {
        Ok(InputKind::Sim)
    } else {
        Err(ReportError::NothingToReport(dir.to_path_buf()))
    }
}

/// Renders `dir` into `out` (created if needed): charts and `index.html`.
pub fn render(dir: &Path, out: &Path) -> Result<Rendered> {
    if !dir.is_dir() {
        return Err(ReportError::Io {
            action: "reading directory",
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    let kind = detect(dir)?;
    let existed = out.exists();
    std::fs::create_dir_all(out).map_err(io_err("creating", out))?;
    let made = match kind {
        InputKind::Sweep => sweep_report(dir, out),
        InputKind::Map => map_report(dir, out),
        InputKind::Sim => sim_report(dir, out),
    };
    let (page, charts) = match made {
        Ok(x) => x,
        Err(err) => {
            // Leave no half report behind: remove the directory if this call created it.
            if !existed {
                let _ = std::fs::remove_dir_all(out);
            }
            return Err(err);
        }
    };
    let html = out.join("index.html");
    write_atomic(&html, page.as_bytes())?;
    Ok(Rendered { kind, html, charts })
}

fn int(v: f64) -> String {
    let n = v.round() as i128;
    let s = n.unsigned_abs().to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    if n < 0 { format!("-{o}") } else { o }
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn metric_text(name: &str, v: f64) -> String {
    match name {
        metric::LATENCY_S => seconds(v),
        metric::PE_UTILIZATION | metric::UTILIZATION => pct(v),
        metric::THROUGHPUT => format!("{}/s", si(v)),
        metric::GMACS | metric::ARITHMETIC_INTENSITY => format!("{v:.3}"),
        _ if v.fract() == 0.0 => int(v),
        _ => format!("{v:.4}"),
    }
}

fn param_text(p: &Value, key: &str) -> String {
    match p.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn front_series(points: &[PlotPoint], x: fn(&PlotPoint) -> f64) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = points.iter().map(|p| (x(p), p.latency_s)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    v
}

fn pareto_chart(
    title: &str,
    x_desc: &str,
    sample: &[PlotPoint],
    front: &[PlotPoint],
    x: fn(&PlotPoint) -> f64,
) -> Scatter {
    let feasible: Vec<(f64, f64)> = sample
        .iter()
        .filter(|p| p.feasible)
        .map(|p| (x(p), p.latency_s))
        .collect();
    let infeasible: Vec<(f64, f64)> = sample
        .iter()
        .filter(|p| !p.feasible)
        .map(|p| (x(p), p.latency_s))
        .collect();
    let mut series = Vec::new();
    if !infeasible.is_empty() {
        series.push(Series {
            label: "violates a constraint".into(),
            points: infeasible,
            color: plotters::style::RGBColor(240, 190, 170),
            marker: 2,
            line: false,
        });
    }
    series.push(Series {
        label: "feasible design (sample)".into(),
        points: feasible,
        color: grey(),
        marker: 2,
        line: false,
    });
    series.push(Series {
        label: "Pareto front".into(),
        points: front_series(front, x),
        color: PALETTE[0],
        marker: 4,
        line: true,
    });
    Scatter {
        title: title.into(),
        x_desc: x_desc.into(),
        y_desc: "workload latency".into(),
        x_log: false,
        y_log: true,
        x_fmt: si,
        y_fmt: seconds,
        series,
        legend_at: plotters::chart::SeriesLabelPosition::UpperRight,
        x_room: 1.0,
    }
}

fn roofline_chart(meta: &SweepMeta, sample: &[PlotPoint], front: &[PlotPoint]) -> Scatter {
    let pts = |v: &[PlotPoint]| -> Vec<(f64, f64)> {
        v.iter()
            .filter(|p| p.intensity > 0.0 && p.macs_per_s > 0.0)
            .map(|p| (p.intensity, p.macs_per_s))
            .collect()
    };
    let all = pts(sample);
    let (lo, hi) = all
        .iter()
        .chain(pts(front).iter())
        .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.0), h.max(p.0)));
    let (lo, hi) = if lo <= hi {
        (lo / 4.0, hi * 40.0)
    } else {
        (0.1, 100.0)
    };
    let mut series = vec![Series {
        label: "design (sample)".into(),
        points: all,
        color: grey(),
        marker: 2,
        line: false,
    }];
    for (i, b) in meta.boards.iter().enumerate() {
        let peak = b.peak_macs_per_s();
        let bw = b.ddr_gbps * 1e9;
        if peak <= 0.0 || bw <= 0.0 {
            continue;
        }
        // Sample the roof on a log grid plus the ridge point, so the corner is sharp.
        let mut xs: Vec<f64> = (0..=80)
            .map(|k| lo * (hi / lo).powf(k as f64 / 80.0))
            .collect();
        let ridge = peak / bw;
        if ridge > lo && ridge < hi {
            xs.push(ridge);
        }
        xs.sort_by(f64::total_cmp);
        series.push(Series {
            label: format!(
                "{}: {} MAC/s peak, {} GB/s",
                b.display_name,
                si(peak),
                si(b.ddr_gbps)
            ),
            points: xs.into_iter().map(|x| (x, (bw * x).min(peak))).collect(),
            color: PALETTE[(i + 1) % PALETTE.len()],
            marker: 0,
            line: true,
        });
    }
    series.push(Series {
        label: "Pareto front".into(),
        points: pts(front),
        color: PALETTE[0],
        marker: 4,
        line: false,
    });
    Scatter {
        title: "Roofline (achieved MAC rate vs arithmetic intensity)".into(),
        x_desc: "arithmetic intensity (MAC per DDR byte)".into(),
        y_desc: "MAC/s".into(),
        x_log: true,
        y_log: true,
        x_fmt: si,
        y_fmt: si,
        series,
        legend_at: plotters::chart::SeriesLabelPosition::LowerRight,
        x_room: 1.0,
    }
}

fn layer_bars(best: &PointRecord) -> Bars {
    Bars {
        title: format!("Per-layer PE utilisation of the best design ({})", best.id),
        x_desc: "PE utilisation (MACs / (cycles × PEs))".into(),
        bars: best
            .layers
            .iter()
            .map(|l| Bar {
                label: l.name.clone(),
                value: l.utilization,
                note: format!("{} · {} cycles", pct(l.utilization), si(l.cycles as f64)),
                color: 0,
            })
            .collect(),
        x_min_max: 1.0,
        reference: None,
        legend: Vec::new(),
        x_fmt: |v| format!("{:.0} %", v * 100.0),
    }
}

/// Bars of `used / available` per (board, resource).
fn budget_bars(
    title: String,
    lines: &[(usize, String, String, f64, f64)],
    boards: &[String],
) -> Bars {
    Bars {
        title,
        x_desc: "fraction of the device".into(),
        bars: lines
            .iter()
            .map(|(bi, board, res, used, avail)| Bar {
                label: format!("{board} · {res}"),
                value: if *avail > 0.0 { used / avail } else { 0.0 },
                note: format!(
                    "{} / {} ({})",
                    int(*used),
                    int(*avail),
                    if *avail > 0.0 {
                        pct(used / avail)
                    } else {
                        "none on device".into()
                    }
                ),
                color: *bi,
            })
            .collect(),
        x_min_max: 1.0,
        reference: Some((1.0, "device capacity".into())),
        legend: boards
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.clone()))
            .collect(),
        x_fmt: |v| format!("{:.0} %", v * 100.0),
    }
}

const RESOURCES: [(&str, &str); 5] = [
    ("lut", metric::LUT),
    ("ff", metric::FF),
    ("dsp", metric::DSP),
    ("bram18", metric::BRAM),
    ("uram", metric::URAM),
];

fn sweep_report(dir: &Path, out: &Path) -> Result<(String, Vec<ChartFiles>)> {
    let meta = read_meta(dir)?;
    let s = scan(dir, &meta, |_, _| Ok(()))?;
    let summary: Option<Summary> = read_json(&dir.join(files::SUMMARY)).ok();
    let mut charts = Vec::new();
    let mut page = Page::new(&format!("Sweep report: {} ({})", meta.name, meta.template));
    let shard = meta
        .shard
        .map(|s| format!(", shard {}/{}", s.index, s.count))
        .unwrap_or_default();
    page.p(&format!(
        "{} of {} points evaluated{shard}: {} feasible, {} violate a constraint, {} invalid. \
         Clock {} MHz. Objectives: {}. Constraints: {}.",
        int(s.counts.points as f64),
        int(meta.total_points as f64),
        int(s.counts.ok as f64),
        int(s.counts.infeasible as f64),
        int(s.counts.invalid as f64),
        meta.clock_mhz,
        meta.objectives
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if meta.constraints.is_empty() {
            "none".to_string()
        } else {
            meta.constraints.join(", ")
        }
    ));
    if let Some(run) = summary.as_ref().and_then(|s| s.run.as_ref()) {
        page.p(&format!(
            "Last run: {} points evaluated ({} resumed) in {:.2} s, {} points/s on {} threads.",
            int(run.evaluated as f64),
            int(run.resumed as f64),
            run.seconds,
            int(run.points_per_second),
            run.jobs
        ));
    }

    page.h2("Best per objective");
    let rows: Vec<Vec<String>> = s
        .best
        .iter()
        .map(|b| {
            vec![
                b.objective.to_string(),
                metric_text(&b.objective.metric, b.value),
                b.id.clone(),
            ]
        })
        .collect();
    page.table(&["objective", "best", "point"], &rows, 1);

    if !s.sample.is_empty() {
        page.h2("Pareto fronts");
        let c = save(
            &pareto_chart(
                "Latency vs DSP slices",
                "DSP slices",
                &s.sample,
                &s.front_dsp,
                |p| p.dsp,
            ),
            out,
            "pareto_latency_dsp",
        )?;
        page.chart(&c)?;
        charts.push(c);
        let c = save(
            &pareto_chart("Latency vs LUTs", "LUTs", &s.sample, &s.front_lut, |p| {
                p.lut
            }),
            out,
            "pareto_latency_lut",
        )?;
        page.chart(&c)?;
        charts.push(c);
        let front_pp: Vec<PlotPoint> = s.front.iter().filter_map(plot_point).collect();
        let c = save(
            &roofline_chart(&meta, &s.sample, &front_pp),
            out,
            "roofline",
        )?;
        page.chart(&c)?;
        charts.push(c);
    }

    if let Some(best) = s.front.first() {
        page.h2("Best design");
        page.p(&format!(
            "Point {} (best by {}): {}.",
            best.id,
            meta.objectives
                .first()
                .map(|o| o.to_string())
                .unwrap_or_default(),
            meta.param_names
                .iter()
                .map(|k| format!("{k} = {}", param_text(&best.params, k)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let c = save(&layer_bars(best), out, "layer_utilization")?;
        page.chart(&c)?;
        charts.push(c);
        let mut lines = Vec::new();
        for (bi, b) in meta.boards.iter().enumerate() {
            for (res, m) in RESOURCES {
                let avail = b.budget(res).unwrap_or(0) as f64;
                let used = best.metric(m).unwrap_or(0.0);
                if avail > 0.0 || used > 0.0 {
                    lines.push((bi, b.display_name.clone(), res.to_string(), used, avail));
                }
            }
        }
        if !lines.is_empty() {
            let names: Vec<String> = meta.boards.iter().map(|b| b.display_name.clone()).collect();
            let c = save(
                &budget_bars(
                    format!("Resources of the best design ({}) vs each board", best.id),
                    &lines,
                    &names,
                ),
                out,
                "budget",
            )?;
            page.chart(&c)?;
            charts.push(c);
        }
        let rows: Vec<Vec<String>> = best
            .layers
            .iter()
            .map(|l| {
                vec![
                    l.name.clone(),
                    int(l.cycles as f64),
                    int(l.macs as f64),
                    pct(l.utilization),
                    int(l.ddr_bytes as f64),
                ]
            })
            .collect();
        page.table(
            &["layer", "cycles", "MACs", "PE utilisation", "stream bytes"],
            &rows,
            1,
        );
    }

    page.h2(&format!("Pareto front ({} points)", s.front.len()));
    let show = [
        "rows",
        "cols",
        "pe",
        "stream_bits",
        "input_type",
        "weight_type",
        "max_k",
        "max_n_chunk",
    ];
    let params: Vec<&str> = show
        .iter()
        .copied()
        .filter(|k| meta.param_names.iter().any(|p| p == k))
        .collect();
    let mut metrics: Vec<String> = meta.objectives.iter().map(|o| o.metric.clone()).collect();
    for m in [
        metric::LATENCY_S,
        metric::DSP,
        metric::LUT,
        metric::BRAM,
        metric::PE_UTILIZATION,
    ] {
        if !metrics.iter().any(|x| x == m) {
            metrics.push(m.to_string());
        }
    }
    let mut header: Vec<&str> = vec!["point"];
    header.extend(params.iter().copied());
    header.extend(metrics.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = s
        .front
        .iter()
        .take(100)
        .map(|r| {
            let mut row = vec![r.id.clone()];
            row.extend(params.iter().map(|k| param_text(&r.params, k)));
            row.extend(
                metrics
                    .iter()
                    .map(|m| r.metric(m).map(|v| metric_text(m, v)).unwrap_or_default()),
            );
            row
        })
        .collect();
    page.table(&header, &rows, 1 + params.len());
    if s.front.len() > 100 {
        page.p(&format!(
            "First 100 of {} rows; all are in pareto.csv.",
            s.front.len()
        ));
    }

    if let Some(sum) = &summary
        && !sum.verify.is_empty()
    {
        page.h2("Verilator verification");
        let rows: Vec<Vec<String>> = sum
            .verify
            .iter()
            .map(|v| {
                vec![
                    v.id.clone(),
                    v.layer.clone(),
                    int(v.model_cycles as f64),
                    int(v.measured_cycles as f64),
                    int(v.outputs_checked as f64),
                    int(v.mismatches as f64),
                    if v.passed() {
                        "pass".into()
                    } else {
                        "FAIL".into()
                    },
                ]
            })
            .collect();
        page.table(
            &[
                "point",
                "layer",
                "model cycles",
                "measured cycles",
                "outputs checked",
                "mismatches",
                "verdict",
            ],
            &rows,
            2,
        );
    }

    page.h2("Workload and boards");
    let rows: Vec<Vec<String>> = meta
        .workload
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.clone(),
                int(l.m as f64),
                int(l.k as f64),
                int(l.n as f64),
                l.repeat.to_string(),
            ]
        })
        .collect();
    page.table(&["layer", "kind", "M", "K", "N", "repeat"], &rows, 2);
    let rows: Vec<Vec<String>> = meta
        .boards
        .iter()
        .map(|b| {
            vec![
                b.display_name.clone(),
                int(b.lut as f64),
                int(b.ff as f64),
                int(b.dsp as f64),
                int(b.bram18 as f64),
                int(b.uram as f64),
                format!("{} GB/s", b.ddr_gbps),
                format!("{} MAC/s", si(b.peak_macs_per_s())),
            ]
        })
        .collect();
    page.table(
        &["board", "LUT", "FF", "DSP", "BRAM18", "URAM", "DDR", "peak"],
        &rows,
        1,
    );
    page.p("Peak MAC rate = DSPs × MACs per DSP (1 on DSP48E1, 2 on DSP48E2 with 8-bit packing) × clock. \
            Arithmetic intensity = workload MACs / bytes streamed in and out. Scatter plots show a \
            deterministic sample of at most 3,000 points; the fronts are exact.");
    Ok((page.finish(), charts))
}

fn plot_point(r: &PointRecord) -> Option<PlotPoint> {
    let lat = r.metric(metric::LATENCY_S)?;
    let macs = r.metric(metric::MACS)?;
    Some(PlotPoint {
        id: r.id.clone(),
        latency_s: lat,
        dsp: r.metric(metric::DSP)?,
        lut: r.metric(metric::LUT)?,
        intensity: r.metric(metric::ARITHMETIC_INTENSITY).unwrap_or(0.0),
        macs_per_s: if lat > 0.0 { macs / lat } else { 0.0 },
        feasible: true,
    })
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn scalar_rows(v: &Value) -> Vec<Vec<String>> {
    let Some(obj) = v.as_object() else {
        return Vec::new();
    };
    obj.iter()
        .filter(|(_, x)| !x.is_object() && !x.is_array())
        .map(|(k, x)| {
            let text = match x {
                Value::String(s) => s.clone(),
                Value::Number(n) => n
                    .as_f64()
                    .map(|f| metric_text("", f))
                    .unwrap_or_else(|| n.to_string()),
                other => other.to_string(),
            };
            vec![k.clone(), text]
        })
        .collect()
}

fn map_report(dir: &Path, out: &Path) -> Result<(String, Vec<ChartFiles>)> {
    let path = dir.join(files::MAP);
    let v: Value = read_json(&path)?;
    let bad = |reason: &str| ReportError::Parse {
        path: path.clone(),
        line: None,
        reason: reason.to_string(),
    };
    let objective = num(v.get("objective")).ok_or_else(|| {
        bad("no numeric `objective`: is this the output of `accelforge map --json`?")
    })?;
    let mut charts = Vec::new();
    let mut page = Page::new(&format!(
        "Mapping report: {} on {}",
        v.get("workload")
            .and_then(Value::as_str)
            .unwrap_or("workload"),
        v.get("board").and_then(Value::as_str).unwrap_or("board")
    ));
    let status = match v.get("status") {
        Some(Value::Object(o)) => o
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".into(),
    };
    page.p(&format!(
        "Objective {} cycles{}; status {status}; solved in {:.3} s.",
        int(objective),
        num(v.get("objective_seconds"))
            .map(|s| format!(" ({})", seconds(s)))
            .unwrap_or_default(),
        num(v.get("solve_seconds")).unwrap_or(0.0)
    ));
    page.h2("Summary");
    page.table(&["key", "value"], &scalar_rows(&v), 1);
    if let Some(layers) = v.get("layers").and_then(Value::as_array)
        && !layers.is_empty()
    {
        let bars: Vec<Bar> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let cycles = num(l.get("cycles")).unwrap_or(0.0);
                let bound = l.get("bound").and_then(Value::as_str).unwrap_or("");
                Bar {
                    label: l
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or(format!("layer{i}")),
                    value: cycles,
                    note: format!(
                        "{} cycles{}",
                        si(cycles),
                        if bound.is_empty() {
                            String::new()
                        } else {
                            format!(" · {bound}-bound")
                        }
                    ),
                    color: usize::from(bound == "memory"),
                }
            })
            .collect();
        let c = save(
            &Bars {
                title: "Cycles per layer".into(),
                x_desc: "cycles (repeats included)".into(),
                bars,
                x_min_max: 0.0,
                reference: None,
                legend: vec![(0, "compute-bound".into()), (1, "memory-bound".into())],
                x_fmt: si,
            },
            out,
            "layer_cycles",
        )?;
        page.h2("Layers");
        page.chart(&c)?;
        charts.push(c);
        let rows: Vec<Vec<String>> = layers
            .iter()
            .map(|l| {
                let g = l.get("gemm");
                vec![
                    l.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    g.map(|g| {
                        format!(
                            "{}×{}×{}",
                            param_text(g, "m"),
                            param_text(g, "k"),
                            param_text(g, "n")
                        )
                    })
                    .unwrap_or_default(),
                    int(num(l.get("macs")).unwrap_or(0.0)),
                    int(num(l.get("compute_cycles")).unwrap_or(0.0)),
                    int(num(l.get("cycles")).unwrap_or(0.0)),
                    int(num(l.get("ddr_bytes")).unwrap_or(0.0)),
                    l.get("bound")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ]
            })
            .collect();
        page.table(
            &[
                "layer",
                "GEMM",
                "MACs",
                "compute cycles",
                "cycles",
                "DDR bytes",
                "bound",
            ],
            &rows,
            2,
        );
    }
    if let (Some(res), Some(budget)) = (v.get("resources"), v.get("budget")) {
        let board = v
            .get("board")
            .and_then(Value::as_str)
            .unwrap_or("board")
            .to_string();
        let lines: Vec<(usize, String, String, f64, f64)> = RESOURCES
            .iter()
            .filter_map(|(r, _)| {
                let used = num(res.get(*r))?;
                let avail = num(budget.get(*r))?;
                (used > 0.0 || avail > 0.0).then(|| (0, board.clone(), r.to_string(), used, avail))
            })
            .collect();
        if !lines.is_empty() {
            let c = save(
                &budget_bars(
                    format!("Resources vs {board}"),
                    &lines,
                    std::slice::from_ref(&board),
                ),
                out,
                "budget",
            )?;
            page.h2("Resources");
            page.chart(&c)?;
            charts.push(c);
        }
    }
    if let Some(p) = v.get("params") {
        page.h2("Parameters");
        let text = serde_json::to_string_pretty(p).unwrap_or_default();
        page.raw(&format!("<pre>{}</pre>", crate::html::esc(&text)));
    }
    Ok((page.finish(), charts))
}

fn sim_report(dir: &Path, out: &Path) -> Result<(String, Vec<ChartFiles>)> {
    let path = dir.join(files::SIM);
    let v: Value = read_json(&path)?;
    let cycles = num(v.get("cycles")).ok_or_else(|| ReportError::Parse {
        path: path.clone(),
        line: None,
        reason: "no numeric `cycles`: is this the output of `accelforge sim --json`?".into(),
    })?;
    let mismatches = num(v.get("mismatches")).unwrap_or(0.0);
    let mut page = Page::new("Simulation report");
    let verdict = if mismatches == 0.0 {
        "<span class=\"ok\">no mismatches</span>".to_string()
    } else {
        format!("<span class=\"bad\">{} mismatches</span>", int(mismatches))
    };
    page.raw(&format!(
        "<p>{} cycles measured in Verilator; {} outputs checked against the golden model: {verdict}.</p>",
        int(cycles),
        int(num(v.get("outputs_checked")).unwrap_or(0.0))
    ));
    let mut charts = Vec::new();
    let mut bars = vec![Bar {
        label: "Verilator".into(),
        value: cycles,
        note: format!("{} cycles", int(cycles)),
        color: 0,
    }];
    if let Some(m) = num(v.get("model_cycles")) {
        bars.push(Bar {
            label: "cycle model".into(),
            value: m,
            note: format!(
                "{} cycles{}",
                int(m),
                if m == cycles { " (equal)" } else { "" }
            ),
            color: 2,
        });
    }
    let c = save(
        &Bars {
            title: "Measured vs modelled cycles".into(),
            x_desc: "cycles".into(),
            bars,
            x_min_max: 0.0,
            reference: None,
            legend: Vec::new(),
            x_fmt: si,
        },
        out,
        "cycles",
    )?;
    page.chart(&c)?;
    charts.push(c);
    page.h2("All figures");
    page.table(&["key", "value"], &scalar_rows(&v), 1);
    Ok((page.finish(), charts))
}
