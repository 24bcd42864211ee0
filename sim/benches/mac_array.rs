//! Simulated cycles per second of a 16×16 signed 8-bit MAC array: this crate's harness against a
//! plain C++ Verilator testbench of the same RTL, same stimulus, same `OPT_FAST=-O2`.
//!
//! Run with `cargo bench -p accelforge-sim --bench mac_array` (optionally `-- <cycles>`).
//! Both loops do the same work per cycle: two 128-bit input vectors and an 8-bit select from a
//! cheap LCG, one clock cycle, one 32-bit output read folded into a checksum. The two checksums
//! must agree, which shows the two runs simulated the same thing.

use accelforge_sim::{BuildOptions, DesignSpec, ResetSpec, build, verilator_version};
use std::fmt::Write as _;
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

/// A `rows`×`cols` output-stationary array of signed 8-bit MAC PEs (plain Verilog-2005).
///
/// `a_in` carries one 8-bit value per row and `b_in` one per column; row `r` (column `c`) is
/// delayed by `r` (`c`) cycles so the wavefronts meet skewed along the array. `a` moves right and
/// `b` down one PE per cycle; each PE forms an explicit full-width product wire and accumulates it
/// into 32 bits. `acc_out` shows the accumulator selected by `sel` (which keeps every PE live for
/// Verilator's dead-code elimination).
pub fn mac_array_verilog(rows: usize, cols: usize) -> String {
    let sel_w = index_bits(rows * cols);
    let mut v = String::new();
    let _ = writeln!(
        v,
        "// {rows}x{cols} signed 8-bit MAC array, hand-written bench RTL (accelforge-sim)."
    );
    v.push_str(
        "module mac_pe (
    input  wire               clk,
    input  wire               rst,
    input  wire signed [7:0]  a_in,
    input  wire signed [7:0]  b_in,
    output reg  signed [7:0]  a_out,
    output reg  signed [7:0]  b_out,
    output reg  signed [31:0] acc
);
    wire signed [15:0] prod;
    assign prod = a_in * b_in;
    always @(posedge clk) begin
        if (rst) begin
            a_out <= 8'sd0;
            b_out <= 8'sd0;
            acc   <= 32'sd0;
        end else begin
            a_out <= a_in;
            b_out <= b_in;
            acc   <= acc + {{16{prod[15]}}, prod};
        end
    end
endmodule

",
    );
    let _ = writeln!(
        v,
        "module mac_array (
    input  wire                clk,
    input  wire                rst,
    input  wire [{aw}:0]      a_in,
    input  wire [{bw}:0]      b_in,
    input  wire [{sw}:0]       sel,
    output wire [31:0]         acc_out
);",
        aw = rows * 8 - 1,
        bw = cols * 8 - 1,
        sw = sel_w - 1
    );
    // Skew registers: lane k delayed by k cycles.
    let skew = |v: &mut String, name: &str, lanes: usize| {
        for k in 0..lanes {
            let _ = writeln!(
                v,
                "    wire [7:0] {name}_sk{k}_0 = {name}_in[{}:{}];",
                k * 8 + 7,
                k * 8
            );
            for d in 1..=k {
                let _ = writeln!(v, "    reg  [7:0] {name}_sk{k}_{d};");
                let _ = writeln!(
                    v,
                    "    always @(posedge clk) {name}_sk{k}_{d} <= rst ? 8'd0 : {name}_sk{k}_{};",
                    d - 1
                );
            }
        }
    };
    skew(&mut v, "a", rows);
    skew(&mut v, "b", cols);
    // Unpacked net arrays, one element per PE link: with flat packed buses every PE's
    // non-blocking write into a slice made Verilator copy the whole multi-kilobit bus each
    // cycle (measured 35x slower).
    let _ = writeln!(
        v,
        "    wire [7:0]  a_link [0:{}]; // a entering PE (r, c) is a_link[r*{}+c]",
        rows * (cols + 1) - 1,
        cols + 1
    );
    let _ = writeln!(
        v,
        "    wire [7:0]  b_link [0:{}]; // b entering PE (r, c) is b_link[r*{cols}+c]",
        (rows + 1) * cols - 1
    );
    let _ = writeln!(v, "    wire [31:0] acc_w  [0:{}];", rows * cols - 1);
    for r in 0..rows {
        let _ = writeln!(v, "    assign a_link[{}] = a_sk{r}_{r};", r * (cols + 1));
    }
    for c in 0..cols {
        let _ = writeln!(v, "    assign b_link[{c}] = b_sk{c}_{c};");
    }
    let _ = writeln!(
        v,
        "    genvar r, c;
    generate
        for (r = 0; r < {rows}; r = r + 1) begin : pe_row
            for (c = 0; c < {cols}; c = c + 1) begin : pe_col
                mac_pe u_pe (
                    .clk  (clk),
                    .rst  (rst),
                    .a_in (a_link[r*{ap}+c]),
                    .b_in (b_link[r*{cols}+c]),
                    .a_out(a_link[r*{ap}+c+1]),
                    .b_out(b_link[(r+1)*{cols}+c]),
                    .acc  (acc_w[r*{cols}+c])
                );
            end
        end
    endgenerate
    assign acc_out = acc_w[sel];
endmodule",
        ap = cols + 1
    );
    v
}

fn spec() -> DesignSpec {
    DesignSpec::new("mac_array")
        .source("mac_array.v", mac_array_verilog(ROWS, COLS))
        .input("clk", 1)
        .input("rst", 1)
        .input("a_in", (ROWS * 8) as u32)
        .input("b_in", (COLS * 8) as u32)
        .input("sel", index_bits(ROWS * COLS) as u32)
        .output("acc_out", 32)
        .reset(ResetSpec::active_high("rst"))
}

/// Knuth's MMIX LCG: cheap enough not to dominate the loop.
#[inline(always)]
fn lcg(x: u64) -> u64 {
    x.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
}

/// The same stimulus loop in C++ (must stay in step with `run_harness`).
fn cpp_main(sel_mask: u64) -> String {
    format!(
        r#"#include "Vmac_array.h"
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
    Vmac_array top{{&ctx, "TOP"}};
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
    let src = dir.join("mac_array.v");
    let main = dir.join("tb_main.cpp");
    let sel_mask = (1u64 << index_bits(ROWS * COLS)) - 1;
    std::fs::write(&src, mac_array_verilog(ROWS, COLS)).map_err(|e| e.to_string())?;
    std::fs::write(&main, cpp_main(sel_mask)).map_err(|e| e.to_string())?;
    let obj = dir.join("obj");
    let out = Command::new("verilator")
        .args(["--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-j", "2"])
        .args(["-MAKEFLAGS", "OPT_FAST=-O2"])
        .args(["--top-module", "mac_array", "-o", "Vtb", "--Mdir"])
        .arg(&obj)
        .arg(&src)
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
        print!("{}", mac_array_verilog(ROWS, COLS));
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
