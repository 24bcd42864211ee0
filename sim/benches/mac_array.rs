//! Simulated cycles per second of a 16×16 signed 8-bit MAC array: this crate's harness against a
//! plain C++ Verilator testbench of the same RTL, same stimulus, same `OPT_FAST=-O2`.
//!
//! Run with `cargo bench -p accelforge-sim --bench mac_array` (optionally `-- <cycles>`).
//! Both loops do the same work per cycle: two 128-bit input vectors and an 8-bit select from a
//! cheap LCG, one clock cycle, one 32-bit output read folded into a checksum. The two checksums
//! must agree, which shows the two runs simulated the same thing.

use accelforge_sim::{BuildOptions, DesignSpec, build, verilator_version};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const ROWS: usize = 16;
const COLS: usize = 16;
const DEFAULT_CYCLES: u64 = 1_000_000;
const ROUNDS: usize = 5;
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// Bits needed to index `n` items (at least 1).
fn index_bits(n: usize) -> usize {
    (usize::BITS - (n.max(2) - 1).leading_zeros()) as usize
}

/// The 16×16 signed 8-bit MAC grid, generated through the project's Verilog emitter
/// (`accelforge_hdl::blocks::mac_grid`): the design both harnesses simulate.
fn grid() -> accelforge_hdl::Design {
    accelforge_hdl::blocks::mac_grid::design(&accelforge_hdl::blocks::mac_grid::MacGridParams {
        rows: ROWS as u32,
        cols: COLS as u32,
    })
    .expect("the 16x16 grid is a valid design")
}

fn all_verilog() -> String {
    grid()
        .files()
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

fn spec() -> DesignSpec {
    DesignSpec::from_hdl(&grid())
}

/// Knuth's MMIX LCG: cheap enough not to dominate the loop.
#[inline(always)]
fn lcg(x: u64) -> u64 {
    x.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
}

/// The same stimulus loop in C++ (must stay in step with `run_harness`).
fn cpp_main(sel_mask: u64) -> String {
    let top = grid().top_name().to_string();
    format!(
        r#"#include "V{top}.h"
#include "verilated.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

static inline uint64_t lcg(uint64_t x) {{
    return x * 6364136223846793005ULL + 1442695040888963407ULL;
}}

int main(int argc, char** argv) {{
    const uint64_t cycles = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000ULL;
    VerilatedContext ctx;
    V{top} top{{&ctx, "TOP"}};
    top.rst = 1;
    for (int i = 0; i < 2; ++i) {{
        top.clk = 0; top.eval();
        top.clk = 1; top.eval();
    }}
    top.rst = 0;
    uint64_t x = {SEED}ULL;
    uint64_t sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < cycles; ++i) {{
        x = lcg(x); const uint64_t a0 = x;
        x = lcg(x); const uint64_t a1 = x;
        x = lcg(x); const uint64_t b0 = x;
        x = lcg(x); const uint64_t b1 = x;
        top.a_in[0] = (uint32_t)a0; top.a_in[1] = (uint32_t)(a0 >> 32);
        top.a_in[2] = (uint32_t)a1; top.a_in[3] = (uint32_t)(a1 >> 32);
        top.b_in[0] = (uint32_t)b0; top.b_in[1] = (uint32_t)(b0 >> 32);
        top.b_in[2] = (uint32_t)b1; top.b_in[3] = (uint32_t)(b1 >> 32);
        top.sel = (x >> 56) & {sel_mask}ULL;
        top.clk = 0; top.eval();
        top.clk = 1; top.eval();
        sum = (sum << 1 | sum >> 63) ^ top.acc_out;
    }}
    const auto t1 = std::chrono::steady_clock::now();
    top.final();
    std::printf("%llu %.9f %llu\n", (unsigned long long)cycles,
                std::chrono::duration<double>(t1 - t0).count(), (unsigned long long)sum);
    return 0;
}}
"#
    )
}

/// Builds the plain C++ testbench with `verilator --cc --exe --build` at the same optimisation.
fn build_cpp(dir: &Path) -> Result<PathBuf, String> {
    let design = grid();
    let mut srcs = Vec::new();
    for (name, text) in design.files() {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        srcs.push(path);
    }
    let main = dir.join("tb_main.cpp");
    let sel_mask = (1u64 << index_bits(ROWS * COLS)) - 1;
    std::fs::write(&main, cpp_main(sel_mask)).map_err(|e| e.to_string())?;
    let obj = dir.join("obj");
    let out = Command::new("verilator")
        .args(["--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-j", "2"])
        .args(["-MAKEFLAGS", "OPT_FAST=-O2"])
        .args(["--top-module", design.top_name(), "-o", "Vtb", "--Mdir"])
        .arg(&obj)
        .args(&srcs)
        .arg(&main)
        .output()
        .map_err(|e| format!("cannot run verilator: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "C++ testbench build failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(obj.join("Vtb"))
}

fn run_cpp(exe: &Path, cycles: u64) -> Result<(f64, u64), String> {
    let out = Command::new(exe)
        .arg(cycles.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    match (
        f.get(1).map(|s| s.parse::<f64>()),
        f.get(2).map(|s| s.parse::<u64>()),
    ) {
        (Some(Ok(secs)), Some(Ok(sum))) => Ok((secs, sum)),
        _ => Err(format!("unexpected C++ testbench output: {text}")),
    }
}

fn run_harness(
    design: &accelforge_sim::CompiledDesign,
    cycles: u64,
) -> accelforge_sim::Result<(f64, u64)> {
    let mut sim = design.sim()?;
    sim.reset(2)?;
    let a = sim.port("a_in")?;
    let b = sim.port("b_in")?;
    let sel = sim.port("sel")?;
    let out = sim.port("acc_out")?;
    let sel_mask = (1u64 << index_bits(ROWS * COLS)) - 1;
    let mut x = SEED;
    let mut sum = 0u64;
    let t0 = Instant::now();
    for _ in 0..cycles {
        x = lcg(x);
        let a0 = x;
        x = lcg(x);
        let a1 = x;
        x = lcg(x);
        let b0 = x;
        x = lcg(x);
        let b1 = x;
        sim.poke_wide(a, &[a0, a1])?;
        sim.poke_wide(b, &[b0, b1])?;
        sim.poke(sel, (x >> 56) & sel_mask)?;
        sim.step()?;
        sum = sum.rotate_left(1) ^ sim.peek(out)?;
    }
    Ok((t0.elapsed().as_secs_f64(), sum))
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("mac_array bench failed: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    if std::env::args().any(|a| a == "--print-verilog") {
        print!("{}", all_verilog());
        return Ok(());
    }
    // `cargo bench` passes `--bench`; a bare number sets the cycle count.
    let cycles = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let version = verilator_version(Path::new("verilator")).map_err(|e| e.to_string())?;
    println!("{ROWS}x{COLS} signed 8-bit MAC array, {cycles} cycles, {version}");

    let opts = BuildOptions {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache")),
        jobs: 2,
        ..BuildOptions::default()
    };
    let t = Instant::now();
    let design = build(&spec(), &opts).map_err(|e| e.to_string())?;
    println!(
        "harness build: {:.3} s ({})",
        t.elapsed().as_secs_f64(),
        if design.was_cached() {
            "cache hit"
        } else {
            "fresh build"
        }
    );

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let exe = build_cpp(dir.path())?;
    println!("c++ testbench build: {:.3} s", t.elapsed().as_secs_f64());

    // Alternate the two a few times and keep each one's best, to damp noise from other load on
    // the machine.
    let (mut best_h, mut best_c) = (f64::MAX, f64::MAX);
    let mut paired = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (h_secs, h_sum) = run_harness(&design, cycles).map_err(|e| e.to_string())?;
        let (c_secs, c_sum) = run_cpp(&exe, cycles)?;
        if h_sum != c_sum {
            return Err(format!(
                "checksums differ (harness {h_sum:#x}, c++ {c_sum:#x}): the runs are not equivalent"
            ));
        }
        println!(
            "round {round}: harness {:.0} cycles/s, c++ {:.0} cycles/s (checksum {h_sum:#018x})",
            cycles as f64 / h_secs,
            cycles as f64 / c_secs
        );
        paired.push(c_secs / h_secs);
        best_h = best_h.min(h_secs);
        best_c = best_c.min(c_secs);
    }
    let h_rate = cycles as f64 / best_h;
    let c_rate = cycles as f64 / best_c;
    println!("harness: {h_rate:.0} cycles/s");
    println!("c++: {c_rate:.0} cycles/s");
    println!("ratio: {:.3}", h_rate / c_rate);
    // Each round runs the two back to back, so the median per-round ratio is less sensitive to
    // load changes on a shared machine than the ratio of the bests.
    paired.sort_by(f64::total_cmp);
    println!(
        "median per-round ratio: {:.3}",
        paired.get(paired.len() / 2).copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
