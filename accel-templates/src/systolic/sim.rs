//! Runs the generated Verilog in Verilator (through `accelforge-sim`) against the golden model.

use std::path::PathBuf;
use std::time::Instant;

use accelforge_sim::{AxisDriver, AxisMonitor, AxisNames, Beat, BuildOptions, DesignSpec, Sim};
use ndarray::{Array2, Array3, Array4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::cost;
use super::error::{Result, SystolicError};
use super::layer::{Conv2d, Gemm};
use super::model;
use super::params::{PeKind, Resolved, SystolicParams};
use super::pe::is_shift_add_weight;
use super::requant;
use super::rtl;

/// How to simulate.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Seed of the operand data and of the back-pressure.
    pub seed: u64,
    /// Probability of an idle input cycle and, independently, of output `tready` low.
    pub backpressure: f64,
    /// Write a VCD waveform here (builds the tracing variant).
    pub trace: Option<PathBuf>,
}

/// What a simulation measured (JSON keys are part of the CLI contract).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimReport {
    /// Cycles from command acceptance to the last output beat (see [`cost`]).
    pub cycles: u64,
    /// Multiply-accumulates of the GEMM.
    pub macs: u64,
    /// `macs / (cycles · R · C)`.
    pub utilization: f64,
    /// Output elements compared with the golden model.
    pub outputs_checked: u64,
    /// Elements that differed (plus missing/extra beats and TLAST errors).
    pub mismatches: u64,
    /// Simulated cycles per second of wall time (simulation loop only, after the build).
    pub sim_cycles_per_second: f64,
    /// The analytic model's cycle count for the same layer.
    pub model_cycles: u64,
    /// Wall time of the simulation loop, seconds.
    pub sim_seconds: f64,
    /// Whether the Verilator build came from the cache.
    pub build_cached: bool,
}

fn sim_err(e: accelforge_sim::SimError) -> SystolicError {
    SystolicError::Sim(e.to_string())
}

/// Refuses a GEMM too large to simulate: more than
/// [`MAX_SIM_ELEMENTS`](crate::limits::MAX_SIM_ELEMENTS) operand elements in memory, or more than
/// [`MAX_SIM_CYCLES`](crate::limits::MAX_SIM_CYCLES) cycles on even the largest array.
pub fn check_sim_size(g: &Gemm) -> std::result::Result<(), String> {
    use crate::limits::{MAX_SIM_CYCLES, MAX_SIM_ELEMENTS};
    let (m, k, n) = (u64::from(g.m), u64::from(g.k), u64::from(g.n));
    // At most (2^32)^2 each, so the sum of three fits in u128 trivially; u64 suffices with
    // saturation because anything near u64::MAX is far above the bound anyway.
    let elements = (m * k).saturating_add(k * n).saturating_add(m * n);
    if elements > MAX_SIM_ELEMENTS {
        return Err(format!(
            "{g} needs {elements} operand elements (A, B and C), above the simulation bound of \
             {MAX_SIM_ELEMENTS}; use `estimate` for the cycle count of a layer this large, or \
             simulate a tile of it"
        ));
    }
    // Every MAC takes at least one PE-cycle on an array; a conservative lower bound on the
    // cycles is MACs divided by the largest array (64x64 PEs).
    let min_cycles = g.macs() / 4096;
    if min_cycles > MAX_SIM_CYCLES {
        return Err(format!(
            "{g} would simulate at least {min_cycles} cycles, above the bound of {MAX_SIM_CYCLES}; \
             use `estimate` instead"
        ));
    }
    Ok(())
}

/// One run of a GEMM-like workload layer (a depthwise convolution's per-group GEMM) on random
/// operands from `seed`, checked against the golden model and the cycle model: what `sim
/// systolic --params`, the sweep's `--verify` and the conformance test run.
pub fn simulate_layer(
    p: &SystolicParams,
    layer: &crate::workload::Layer,
    seed: u64,
) -> std::result::Result<crate::template::SimCheck, String> {
    let g = super::layer::unit_gemm(layer)?
        .ok_or_else(|| format!("layer `{}` is not a GEMM-like layer", layer.name))?;
    g.check(p).map_err(|e| e.to_string())?;
    check_sim_size(&g)?;
    let r = p.resolve().map_err(|e| e.to_string())?;
    let (a, b) = random_gemm_operands(&r, &g, seed);
    let opts = SimOptions {
        seed,
        backpressure: 0.0,
        trace: None,
    };
    let rep = run_gemm(p, &g, &a, &b, &opts).map_err(|e| e.to_string())?;
    Ok(crate::template::SimCheck {
        cycles: rep.cycles,
        model_cycles: rep.model_cycles,
        outputs_checked: rep.outputs_checked,
        mismatches: rep.mismatches,
        sim_seconds: rep.sim_seconds,
    })
}

/// Random raw operands for a GEMM (weights drawn from the shift-add set for shift-add PEs).
pub fn random_gemm_operands(r: &Resolved, g: &Gemm, seed: u64) -> (Array2<i64>, Array2<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = Array2::from_shape_fn((g.m as usize, g.k as usize), |_| {
        rng.random_range(r.ta.min_raw()..=r.ta.max_raw()) as i64
    });
    let b = Array2::from_shape_fn((g.k as usize, g.n as usize), |_| random_weight(r, &mut rng));
    (a, b)
}

fn random_weight(r: &Resolved, rng: &mut ChaCha8Rng) -> i64 {
    loop {
        let w = rng.random_range(r.tb.min_raw()..=r.tb.max_raw());
        if r.p.pe != PeKind::ShiftAdd || is_shift_add_weight(w, r.wb) {
            return w as i64;
        }
    }
}

/// Builds (cached) and runs one GEMM; every output is checked against the golden model.
pub fn run_gemm(
    p: &SystolicParams,
    g: &Gemm,
    a: &Array2<i64>,
    b: &Array2<i64>,
    opts: &SimOptions,
) -> Result<SimReport> {
    run_gemm_with_outputs(p, g, a, b, opts).map(|(report, _)| report)
}

/// [`run_gemm`], also returning the output matrix C as Verilator produced it (raw output-type
/// codes), for engines that chain layers on the hardware's own results. `None` when the output
/// stream could not be unpacked (every element then counts as a mismatch).
pub fn run_gemm_with_outputs(
    p: &SystolicParams,
    g: &Gemm,
    a: &Array2<i64>,
    b: &Array2<i64>,
    opts: &SimOptions,
) -> Result<(SimReport, Option<Array2<i64>>)> {
    let r = p.resolve()?;
    g.check(p)?;
    if r.p.pe == PeKind::ShiftAdd
        && let Some(w) = b
            .iter()
            .find(|&&w| !is_shift_add_weight(i128::from(w), r.wb))
    {
        return Err(SystolicError::Data(format!(
            "weight code {w} is not ±2^a or ±2^a±2^b; shift-add PEs cannot multiply by it"
        )));
    }
    let expected = model::gemm(&r, a, b)?;
    let beats_in = model::input_beats(&r, g, a, b)?;
    let beats_out = model::output_beats(&r, g, &expected);
    let est = cost::cycles(p, g)?;

    let design = rtl::design(p)?;
    let spec = DesignSpec::from_hdl(&design);
    let build_opts = BuildOptions {
        trace: opts.trace.is_some(),
        ..BuildOptions::default()
    };
    let compiled = accelforge_sim::build(&spec, &build_opts).map_err(sim_err)?;
    let mut sim = compiled.sim().map_err(sim_err)?;
    if let Some(path) = &opts.trace {
        sim.trace_vcd(path).map_err(sim_err)?;
    }
    sim.reset(2).map_err(sim_err)?;
    let mut driver = AxisDriver::new(
        &sim,
        AxisNames::prefixed("s_axis_"),
        opts.seed ^ 0x5eed,
        opts.backpressure,
    )
    .map_err(sim_err)?;
    let mut monitor = AxisMonitor::new(
        &sim,
        AxisNames::prefixed("m_axis_"),
        opts.seed ^ 0xbacc,
        opts.backpressure,
    )
    .map_err(sim_err)?;
    for (data, last) in beats_in {
        driver.push(Beat { data, last });
    }
    let t0 = Instant::now();
    let cycles = command(
        &mut sim,
        g,
        &mut driver,
        &mut monitor,
        est.cycles,
        opts.backpressure,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    if opts.trace.is_some() {
        sim.trace_close();
    }
    monitor.check_protocol(&sim).map_err(sim_err)?;

    let (mismatches, outputs) = compare(&r, g, &monitor, &beats_out, &expected);
    let report = report(
        &r,
        g,
        (cycles, est.cycles),
        secs,
        mismatches,
        compiled.was_cached(),
    );
    Ok((report, outputs))
}

/// Counts the output stream's mismatches against the expected beats and matrix (a missing or
/// extra beat, a TLAST in the wrong place, a wrong element; an unpackable stream counts every
/// element) and unpacks the matrix Verilator produced.
fn compare(
    r: &Resolved,
    g: &Gemm,
    monitor: &AxisMonitor,
    beats_out: &[model::Beat],
    expected: &Array2<i64>,
) -> (u64, Option<Array2<i64>>) {
    let got: Vec<model::Beat> = monitor
        .received()
        .iter()
        .map(|b| (b.data.clone(), b.last))
        .collect();
    let mut mismatches = got.len().abs_diff(beats_out.len()) as u64;
    // A TLAST in the wrong place is a mismatch even when the data agrees.
    mismatches += got
        .iter()
        .zip(beats_out)
        .filter(|(g_b, e_b)| g_b.1 != e_b.1)
        .count() as u64;
    let outputs = match model::unpack_output(r, g, &got) {
        Ok(c) => {
            if std::env::var_os("AF_SYSTOLIC_DEBUG").is_some() {
                eprintln!("got\n{c}\nexpected\n{expected}");
            }
            mismatches += c
                .iter()
                .zip(expected.iter())
                .filter(|(x, y)| x != y)
                .count() as u64;
            Some(c)
        }
        Err(_) => {
            mismatches += u64::from(g.m) * u64::from(g.n);
            None
        }
    };
    (mismatches, outputs)
}

/// The report of one GEMM run: `(measured, model)` cycles, wall time, mismatches.
fn report(
    r: &Resolved,
    g: &Gemm,
    (cycles, model_cycles): (u64, u64),
    secs: f64,
    mismatches: u64,
    build_cached: bool,
) -> SimReport {
    let macs = g.macs();
    SimReport {
        cycles,
        macs,
        utilization: macs as f64 / (cycles as f64 * f64::from(r.r) * f64::from(r.c)),
        outputs_checked: u64::from(g.m) * u64::from(g.n),
        mismatches,
        sim_cycles_per_second: if secs > 0.0 {
            cycles as f64 / secs
        } else {
            0.0
        },
        model_cycles,
        sim_seconds: secs,
        build_cached,
    }
}

/// What a table-load + GEMM run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PerChannelReport {
    /// Cycles of the table-load command (acceptance to `done`).
    pub table_cycles: u64,
    /// [`requant::table_load_cycles`] for the same table.
    pub table_model_cycles: u64,
    /// The GEMM, checked against [`requant::gemm_per_channel`].
    pub gemm: SimReport,
}

/// Runs a table-load command with `table`, then one GEMM with the settings `cfg`, on a
/// per-channel array; every output is checked against the golden model. Also returns the
/// output matrix as Verilator produced it (`None` when the stream could not be unpacked).
pub fn run_per_channel_gemm(
    p: &SystolicParams,
    g: &Gemm,
    (a, b): (&Array2<i64>, &Array2<i64>),
    (table, cfg): (&[(i64, i64)], &requant::RqConfig),
    opts: &SimOptions,
) -> Result<(PerChannelReport, Option<Array2<i64>>)> {
    let r = p.resolve()?;
    g.check(p)?;
    let expected = requant::gemm_per_channel(&r, a, b, table, cfg)?;
    let table_in = requant::table_beats(&r, table)?;
    let beats_in = model::input_beats(&r, g, a, b)?;
    let beats_out = model::output_beats(&r, g, &expected);
    let est = cost::cycles(p, g)?;
    let table_model_cycles = requant::table_load_cycles(&r, table.len() as u32)?;
    let design = rtl::design(p)?;
    let spec = DesignSpec::from_hdl(&design);
    let build_opts = BuildOptions {
        trace: opts.trace.is_some(),
        ..BuildOptions::default()
    };
    let compiled = accelforge_sim::build(&spec, &build_opts).map_err(sim_err)?;
    let mut sim = compiled.sim().map_err(sim_err)?;
    if let Some(path) = &opts.trace {
        sim.trace_vcd(path).map_err(sim_err)?;
    }
    sim.reset(2).map_err(sim_err)?;
    let mut driver = AxisDriver::new(
        &sim,
        AxisNames::prefixed("s_axis_"),
        opts.seed ^ 0x5eed,
        opts.backpressure,
    )
    .map_err(sim_err)?;
    let mut monitor = AxisMonitor::new(
        &sim,
        AxisNames::prefixed("m_axis_"),
        opts.seed ^ 0xbacc,
        opts.backpressure,
    )
    .map_err(sim_err)?;
    let e = sim_err;
    // Table load: cmd_op = 1, cmd_n entries.
    for (data, last) in table_in {
        driver.push(Beat { data, last });
    }
    sim.poke("cmd_op", 1).map_err(e)?;
    sim.poke("cmd_n", table.len() as u64).map_err(e)?;
    sim.poke("cmd_valid", 1).map_err(e)?;
    sim.step_agents(&mut [&mut driver, &mut monitor])
        .map_err(e)?;
    sim.poke("cmd_valid", 0).map_err(e)?;
    let limit = table_model_cycles * 40 + 10_000;
    let mut table_cycles = 0u64;
    while sim.peek("done").map_err(e)? != 1 {
        if table_cycles >= limit {
            return Err(SystolicError::Sim(
                sim.timeout_error("the table load's done".to_string(), table_cycles)
                    .to_string(),
            ));
        }
        sim.step_agents(&mut [&mut driver, &mut monitor])
            .map_err(e)?;
        table_cycles += 1;
    }
    if sim.peek("error").map_err(e)? != 0 || sim.peek("busy").map_err(e)? != 0 {
        return Err(SystolicError::Sim(
            "after the table load, error and busy should be 0".into(),
        ));
    }
    // The GEMM with its settings (two's-complement clamp bounds on the 32-bit ports).
    for (data, last) in beats_in {
        driver.push(Beat { data, last });
    }
    sim.poke("cmd_op", 0).map_err(e)?;
    sim.poke("cmd_shift", u64::from(cfg.shift)).map_err(e)?;
    sim.poke("cmd_round", u64::from(cfg.round_even))
        .map_err(e)?;
    sim.poke("cmd_lo", u64::from(cfg.lo as u32)).map_err(e)?;
    sim.poke("cmd_hi", u64::from(cfg.hi as u32)).map_err(e)?;
    let t0 = Instant::now();
    let cycles = command(
        &mut sim,
        g,
        &mut driver,
        &mut monitor,
        est.cycles,
        opts.backpressure,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    if opts.trace.is_some() {
        sim.trace_close();
    }
    monitor.check_protocol(&sim).map_err(sim_err)?;
    let (mismatches, outputs) = compare(&r, g, &monitor, &beats_out, &expected);
    let gemm = report(
        &r,
        g,
        (cycles, est.cycles),
        secs,
        mismatches,
        compiled.was_cached(),
    );
    Ok((
        PerChannelReport {
            table_cycles,
            table_model_cycles,
            gemm,
        },
        outputs,
    ))
}

/// Issues the command and runs until the TLAST beat; returns the cycle count as defined in
/// [`cost`].
fn command(
    sim: &mut Sim,
    g: &Gemm,
    driver: &mut AxisDriver,
    monitor: &mut AxisMonitor,
    model_cycles: u64,
    bp: f64,
) -> Result<u64> {
    let e = sim_err;
    let cmd_valid = sim.port("cmd_valid").map_err(e)?;
    sim.poke("cmd_m", u64::from(g.m)).map_err(e)?;
    sim.poke("cmd_k", u64::from(g.k)).map_err(e)?;
    sim.poke("cmd_n", u64::from(g.n)).map_err(e)?;
    if sim.peek("cmd_ready").map_err(e)? != 1 {
        return Err(SystolicError::Sim("cmd_ready is low after reset".into()));
    }
    sim.poke(cmd_valid, 1).map_err(e)?;
    sim.step_agents(&mut [driver, monitor]).map_err(e)?;
    sim.poke(cmd_valid, 0).map_err(e)?;
    let slack = if bp > 0.0 { 1.0 / (1.0 - bp) } else { 1.0 };
    let limit = (model_cycles as f64 * slack * 4.0) as u64 + 10_000;
    let mut cycles = 0u64;
    loop {
        if cycles >= limit {
            return Err(SystolicError::Sim(
                sim.timeout_error(
                    format!(
                        "the last output beat ({} beats received, {} input beats sent)",
                        monitor.received().len(),
                        driver.sent()
                    ),
                    cycles,
                )
                .to_string(),
            ));
        }
        sim.step_agents(&mut [driver, monitor]).map_err(e)?;
        cycles += 1;
        if monitor.received().last().is_some_and(|b| b.last) {
            break;
        }
    }
    if sim.peek("done").map_err(e)? != 1 || sim.peek("busy").map_err(e)? != 0 {
        return Err(SystolicError::Sim(
            "after the last beat, done should be 1 and busy 0".into(),
        ));
    }
    Ok(cycles)
}

/// Runs one conv2d layer (host im2col) with random data; every output is checked against the
/// direct-convolution golden model.
pub fn run_conv2d(p: &SystolicParams, conv: &Conv2d, opts: &SimOptions) -> Result<SimReport> {
    let r = p.resolve()?;
    let g = conv.gemm()?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let x = Array3::from_shape_fn(
        (conv.c_in as usize, conv.h as usize, conv.w as usize),
        |_| rng.random_range(r.ta.min_raw()..=r.ta.max_raw()) as i64,
    );
    let w = Array4::from_shape_fn(
        (
            conv.c_out as usize,
            conv.c_in as usize,
            conv.kernel_h as usize,
            conv.kernel_w as usize,
        ),
        |_| random_weight(&r, &mut rng),
    );
    let a = model::im2col(conv, &x)?;
    let b = model::weights_to_b(conv, &w)?;
    // The direct convolution must agree with the lowered GEMM's golden result.
    let y = model::conv2d(&r, conv, &x, &w)?;
    let c = model::gemm(&r, &a, &b)?;
    let (_, ow) = conv.out_hw()?;
    for ((o, oy, ox), v) in y.indexed_iter() {
        if c[(oy * ow as usize + ox, o)] != *v {
            return Err(SystolicError::Data(
                "im2col lowering disagrees with the direct convolution (a model bug)".into(),
            ));
        }
    }
    run_gemm(p, &g, &a, &b, opts)
}
