//! Sweep throughput and memory: evaluates spaces of 10,000 and 100,000 points (each in its own
//! child process, so each peak RSS is its own) and prints points per second and peak RSS.
//! Flat memory shows as a ratio near 1 between the two peaks while the point count grows 10×.
//!
//! `cargo bench -p accelforge-sweep --bench sweep_throughput`

use std::process::Command;
use std::time::Instant;

use accelforge_sweep::{NoProgress, RunOptions, Spec, sweep};

const CHILD: &str = "ACCELFORGE_SWEEP_BENCH_ROWS";

fn spec(rows: u32) -> String {
    // 2,000 points per row value: cols 1..=50 × 2 stream widths × 4 depths × 5 chunk sizes.
    format!(
        r#"
template = "systolic"
boards = ["pynq-z2", "kv260"]
objectives = [{{ minimize = "latency_cycles" }}, {{ minimize = "dsp" }}, {{ minimize = "lut" }}]
[constraints]
fits = "kv260"
[systolic]
rows = {{ start = 1, end = {rows} }}
cols = {{ start = 1, end = 50 }}
stream_bits = [32, 64]
max_k = [16, 32, 64, 128]
n_chunk_tiles = [1, 2, 4, 8, 16]
[workload]
layers = [{{ kind = "gemm", m = 16, k = 16, n = 16 }}]
"#
    )
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn child(rows: u32) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let spec = Spec::parse(&spec(rows), "bench.toml".as_ref())?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let opts = RunOptions {
        out: dir.path().join("out"),
        jobs,
        resume: false,
        shard: None,
        max_points: None,
    };
    let t = Instant::now();
    let done = sweep(&spec, &opts, 0, &NoProgress)?;
    let total = t.elapsed().as_secs_f64();
    let s = done.summary.ok_or("the sweep did not finish")?;
    println!(
        "{} {} {} {} {} {}",
        s.counts.points,
        done.run.seconds,
        total,
        peak_rss_kib(),
        jobs,
        s.pareto_points
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(rows) = std::env::var(CHILD) {
        return child(rows.parse()?);
    }
    let exe = std::env::current_exe()?;
    println!(
        "points   eval s   points/s   total s (with csv/pareto pass)   peak RSS MiB   threads   front"
    );
    let mut peaks = Vec::new();
    for rows in [5u32, 50] {
        let out = Command::new(&exe).env(CHILD, rows.to_string()).output()?;
        if !out.status.success() {
            return Err(format!("child failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let text = String::from_utf8(out.stdout)?;
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() != 6 {
            return Err(format!("unexpected child output: {text}").into());
        }
        println!(
            "{:>7}  {:>7.2}  {:>9.0}  {:>7.2}                            {:>8.1}      {:>3}       {:>4}",
            v[0],
            v[1],
            v[0] / v[1],
            v[2],
            v[3] / 1024.0,
            v[4],
            v[5]
        );
        peaks.push(v[3]);
    }
    if let [small, large] = peaks[..] {
        println!(
            "peak RSS ratio 100k / 10k points: {:.2}",
            large / small.max(1.0)
        );
    }
    Ok(())
}
