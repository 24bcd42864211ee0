//! The MoE core wrapped for Zynq with weight fetch in the PL, driven the way the board drives
//! it: registers over AXI4-Lite at the offsets of the generated interface, tokens on the input
//! stream, results drained to TLAST, and a model of the AXI DataMover that takes the wrapper's
//! MM2S commands, checks their address and byte count against the segment table, and serves the
//! packed DDR image at `ddr_bytes_per_cycle` per cycle. Outputs must equal the golden model.
//! Also: the generated PYNQ driver packs the same image bit for bit (python3 + numpy), and the
//! wrapped top lints clean and synthesises in Yosys.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;

use accelforge_boards::zynq::accel::WEIGHT_SEGMENT_ALIGN;
use accelforge_boards::zynq::wrapper::{interface_for_core, wrap};
use accelforge_boards::{
    AccelInterface, BoardDb, BundleOptions, BundleSpec, SourceFile, WeightFetch, write_bundle,
};
use accelforge_hdl::tools::{self, DesignFiles, Family};
use accelforge_sim::{
    Agent, AxiLiteMaster, AxisDriver, AxisMonitor, AxisNames, Beat, BuildOptions, DesignSpec,
    PortHandle, Scoreboard, Sim, build,
};
use accelforge_templates::moe::model::{self, MoeData, Segment};
use accelforge_templates::moe::weights;
use accelforge_templates::moe::{MoeParams, MoeTypes, rtl};
use accelforge_templates::qfx::{Overflow, QType, Quant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn interface(p: &MoeParams, core: &accelforge_hdl::Design, addr_bits: u32) -> AccelInterface {
    let id_bits = core.top().port("wreq_id").unwrap().width;
    let elems = u64::from(p.tokens) * u64::from(p.d_model);
    interface_for_core(core.top(), "af_moe_zynq", 100.0, elems * 4)
        .unwrap()
        .with_weight_fetch(weights::weight_fetch(p, addr_bits, id_bits))
}

/// The packed DDR image (`moe::weights::image`), after checking each segment's size against
/// the stream sizes the cycle model uses.
fn reference_image(p: &MoeParams, data: &MoeData, fetch: &WeightFetch) -> Vec<u8> {
    for s in &fetch.segments {
        let want = match weights::segment(p, s.id).unwrap() {
            Segment::Gate => p.gate_stream_bytes(),
            Segment::Expert(_) => p.expert_stream_bytes(),
        };
        assert_eq!(s.bytes, want, "segment {} size", s.name);
    }
    weights::image(p, data, fetch).unwrap()
}

/// One command the DataMover model accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DmCommand {
    addr: u64,
    btt: u64,
    tag: u64,
}

/// A model of the AXI DataMover's MM2S side: it takes commands on `m_axis_mm2s_cmd_*`, checks
/// the fields, waits `latency` cycles (DDR read latency), serves `btt` bytes from `image` (which
/// sits at `base`) as beats of the weight stream, TLAST on the last (EOF), with optional random
/// gaps, and then returns a status word (OKAY, or `fail_status` once if set).
struct DataMover {
    cmd_tdata: PortHandle,
    cmd_tvalid: PortHandle,
    cmd_tready: PortHandle,
    sts_tdata: PortHandle,
    sts_tvalid: PortHandle,
    sts_tready: PortHandle,
    w_tdata: PortHandle,
    w_tvalid: PortHandle,
    w_tready: PortHandle,
    w_tlast: PortHandle,
    addr_bits: u32,
    beat_bytes: usize,
    base: u64,
    image: Vec<u8>,
    latency: u64,
    gap_prob: f64,
    rng: ChaCha8Rng,
    queue: VecDeque<DmCommand>,
    /// (next address, bytes left, tag, cycles to wait).
    active: Option<(u64, u64, u64, u64)>,
    offer: Option<(Vec<u64>, bool)>,
    statuses: VecDeque<u64>,
    cmd_ready_now: bool,
    fail_status: Option<u64>,
    log: Vec<DmCommand>,
    beats: u64,
    problems: Vec<String>,
}

impl DataMover {
    fn new(sim: &Sim, fetch: &WeightFetch, base: u64, image: Vec<u8>, gap_prob: f64) -> Self {
        let p = |n: &str| sim.port(n).unwrap();
        DataMover {
            cmd_tdata: p("m_axis_mm2s_cmd_tdata"),
            cmd_tvalid: p("m_axis_mm2s_cmd_tvalid"),
            cmd_tready: p("m_axis_mm2s_cmd_tready"),
            sts_tdata: p("s_axis_mm2s_sts_tdata"),
            sts_tvalid: p("s_axis_mm2s_sts_tvalid"),
            sts_tready: p("s_axis_mm2s_sts_tready"),
            w_tdata: p("s_axis_w_tdata"),
            w_tvalid: p("s_axis_w_tvalid"),
            w_tready: p("s_axis_w_tready"),
            w_tlast: p("s_axis_w_tlast"),
            addr_bits: fetch.addr_bits,
            beat_bytes: (fetch.stream_bits / 8) as usize,
            base,
            image,
            latency: 12,
            gap_prob,
            rng: ChaCha8Rng::seed_from_u64(base),
            queue: VecDeque::new(),
            active: None,
            offer: None,
            statuses: VecDeque::new(),
            cmd_ready_now: false,
            fail_status: None,
            log: Vec::new(),
            beats: 0,
            problems: Vec::new(),
        }
    }

    fn decode(&mut self, words: &[u64]) -> Option<DmCommand> {
        let bits = |lo: u32, n: u32| -> u64 {
            let mut v = 0u64;
            for i in 0..n {
                let b = lo + i;
                v |= ((words[(b / 64) as usize] >> (b % 64)) & 1) << i;
            }
            v
        };
        let btt = bits(0, 23);
        let (ty, dsa, eof, drr) = (bits(23, 1), bits(24, 6), bits(30, 1), bits(31, 1));
        let addr = bits(32, self.addr_bits);
        let tag = bits(32 + self.addr_bits, 4);
        let rsvd = bits(36 + self.addr_bits, 4);
        if ty != 1 || dsa != 0 || eof != 1 || drr != 0 || rsvd != 0 {
            self.problems.push(format!(
                "command fields type {ty} dsa {dsa} eof {eof} drr {drr} rsvd {rsvd}"
            ));
        }
        let end = self.base + self.image.len() as u64;
        if btt == 0 || addr < self.base || addr + btt > end {
            self.problems.push(format!(
                "command reads {btt} bytes at {addr:#x}, outside the image [{:#x}, {end:#x})",
                self.base
            ));
            return None;
        }
        if !(addr - self.base).is_multiple_of(WEIGHT_SEGMENT_ALIGN)
            || !btt.is_multiple_of(self.beat_bytes as u64)
        {
            self.problems.push(format!(
                "command at {addr:#x} for {btt} bytes is not aligned"
            ));
        }
        Some(DmCommand { addr, btt, tag })
    }
}

impl Agent for DataMover {
    fn drive(&mut self, sim: &mut Sim) -> accelforge_sim::Result<()> {
        // Commands: a small queue, as the DataMover's command FIFO.
        self.cmd_ready_now = self.queue.len() < 2;
        sim.poke(self.cmd_tready, u64::from(self.cmd_ready_now))?;
        if self.active.is_none()
            && let Some(c) = self.queue.pop_front()
        {
            self.active = Some((c.addr, c.btt, c.tag, self.latency));
        }
        if self.offer.is_none()
            && let Some((addr, left, tag, wait)) = self.active
        {
            if wait > 0 {
                self.active = Some((addr, left, tag, wait - 1));
            } else if !(self.gap_prob > 0.0 && self.rng.random_bool(self.gap_prob)) {
                let at = (addr - self.base) as usize;
                let bytes = &self.image[at..at + self.beat_bytes];
                let mut words = vec![0u64; self.beat_bytes.div_ceil(8)];
                for (i, b) in bytes.iter().enumerate() {
                    words[i / 8] |= u64::from(*b) << (8 * (i % 8));
                }
                self.offer = Some((words, left == self.beat_bytes as u64));
            }
        }
        match &self.offer {
            Some((words, last)) => {
                sim.poke_wide(self.w_tdata, words)?;
                sim.poke(self.w_tlast, u64::from(*last))?;
                sim.poke(self.w_tvalid, 1)?;
            }
            None => sim.poke(self.w_tvalid, 0)?,
        }
        match self.statuses.front() {
            Some(s) => {
                sim.poke(self.sts_tdata, *s)?;
                sim.poke(self.sts_tvalid, 1)?;
            }
            None => sim.poke(self.sts_tvalid, 0)?,
        }
        Ok(())
    }

    fn sample(&mut self, sim: &mut Sim) -> accelforge_sim::Result<()> {
        // The status word driven this cycle (before a transfer ending now adds another).
        if !self.statuses.is_empty() && sim.peek(self.sts_tready)? == 1 {
            self.statuses.pop_front();
        }
        if self.cmd_ready_now && sim.peek(self.cmd_tvalid)? == 1 {
            let words = sim.peek_wide(self.cmd_tdata)?;
            if let Some(c) = self.decode(&words) {
                self.log.push(c.clone());
                self.queue.push_back(c);
            }
        }
        if self.offer.is_some() && sim.peek(self.w_tready)? == 1 {
            self.offer = None;
            self.beats += 1;
            if let Some((addr, left, tag, _)) = self.active {
                let b = self.beat_bytes as u64;
                if left == b {
                    self.active = None;
                    let status = self.fail_status.take().unwrap_or(0x80) | (tag & 0xF);
                    self.statuses.push_back(status);
                } else {
                    self.active = Some((addr + b, left - b, tag, 0));
                }
            }
        }
        Ok(())
    }
}

fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache"),
        ),
        jobs: 2,
        ..BuildOptions::default()
    }
}

fn reg(accel: &AccelInterface, name: &str) -> u64 {
    u64::from(
        accel
            .register_map()
            .iter()
            .find(|r| r.const_name == name)
            .unwrap_or_else(|| panic!("no register {name}"))
            .offset,
    )
}

/// Runs the AXI4-Lite queue to completion and returns the read results' data.
fn lite_run(
    sim: &mut Sim,
    lite: &mut AxiLiteMaster,
    others: &mut [&mut dyn Agent],
    max: u64,
) -> Vec<u32> {
    let mut n = 0;
    while !lite.is_idle() {
        let mut agents: Vec<&mut dyn Agent> = vec![lite];
        for o in others.iter_mut() {
            agents.push(&mut **o);
        }
        sim.step_agents(&mut agents).unwrap();
        n += 1;
        assert!(n < max, "AXI4-Lite access stalled");
    }
    let res = lite.take_results();
    assert!(res.iter().all(|r| r.resp == 0), "every response is OKAY");
    res.into_iter().map(|r| r.data).collect()
}

struct Config {
    name: &'static str,
    params: MoeParams,
    addr_bits: u32,
    base: u64,
    gap_prob: f64,
    stall_prob: f64,
    batches: Vec<(u64, bool)>, // (data seed, reorder)
}

fn run_config(cfg: &Config) {
    let p = &cfg.params;
    let core = rtl::design(p).unwrap();
    let accel = interface(p, &core, cfg.addr_bits);
    accel.validate().unwrap();
    let fetch = accel.weight_fetch.clone().unwrap();
    let wrapped = wrap(&core, &accel).unwrap();
    let compiled = build(&DesignSpec::from_hdl(&wrapped), &opts()).unwrap();
    let mut sim = compiled.sim().unwrap();
    sim.reset(3).unwrap();
    let mut lite = AxiLiteMaster::new(&sim, "s_axi_control_", 5, 0.2).unwrap();
    let mut drv =
        AxisDriver::new(&sim, AxisNames::prefixed("s_axis_in_"), 6, cfg.gap_prob).unwrap();
    let mut mon =
        AxisMonitor::new(&sim, AxisNames::prefixed("m_axis_out_"), 7, cfg.stall_prob).unwrap();
    let mut dm = DataMover::new(&sim, &fetch, cfg.base, Vec::new(), cfg.gap_prob);
    for (i, &(seed, reorder)) in cfg.batches.iter().enumerate() {
        let what = format!("{} batch {i} (seed {seed}, reorder {reorder})", cfg.name);
        let data = MoeData::random(p, seed, 0.0).unwrap();
        let golden = model::golden(p, &data, reorder).unwrap();
        dm.image = reference_image(p, &data, &fetch);
        dm.log.clear();
        // The host's side: weights_base, the command argument, start.
        lite.write(reg(&accel, "REG_WEIGHTS_BASE"), cfg.base as u32);
        if cfg.addr_bits > 32 {
            lite.write(reg(&accel, "REG_WEIGHTS_BASE_HI"), (cfg.base >> 32) as u32);
        }
        lite.write(reg(&accel, "REG_ARG_REORDER"), u32::from(reorder));
        lite.write(0x00, 1);
        let expected = model::output_beats(p, &golden.outputs);
        drv.push_packet(&model::input_beats(p, &data));
        let mut cycles = 0u64;
        while mon.received().len() < expected.len() || !lite.is_idle() {
            sim.step_agents(&mut [&mut lite, &mut drv, &mut mon, &mut dm])
                .unwrap();
            cycles += 1;
            assert!(cycles < 200_000, "{what}: stalled");
        }
        assert!(
            lite.take_results().iter().all(|r| r.resp == 0),
            "{what}: OKAY responses"
        );
        // ap_done, as the driver polls it.
        let mut done = false;
        for _ in 0..20 {
            lite.read(0x00);
            let r = lite_run(
                &mut sim,
                &mut lite,
                &mut [&mut drv, &mut mon, &mut dm],
                1000,
            );
            if r[0] & 0b10 != 0 {
                done = true;
                break;
            }
        }
        assert!(done, "{what}: ap_done never rose");
        mon.check_protocol(&sim).unwrap();
        let mut sb = Scoreboard::new(what.clone());
        sb.expect_all(expected.into_iter().map(|d| Beat::new(d, false)));
        let got: Vec<Beat> = mon.take_received();
        let last_ok =
            got.last().is_some_and(|b| b.last) && got.iter().rev().skip(1).all(|b| !b.last);
        assert!(last_ok, "{what}: TLAST only on the final beat");
        sb.observe_all(got.into_iter().map(|b| Beat::new(b.low(), false)));
        let n = sb.finish().unwrap();
        // Segment requests: the gate, then one per expert load, in processing order, each at
        // the address and size of the segment table.
        let mut want_ids = vec![p.experts];
        want_ids.extend(golden.routing.loads.iter().map(|l| l.expert));
        let want_cmds: Vec<DmCommand> = want_ids
            .iter()
            .map(|id| {
                let s = fetch.segments.iter().find(|s| s.id == *id).unwrap();
                DmCommand {
                    addr: cfg.base + s.offset,
                    btt: s.bytes,
                    tag: u64::from(*id & 0xF),
                }
            })
            .collect();
        assert_eq!(dm.log, want_cmds, "{what}: DataMover commands");
        assert!(dm.problems.is_empty(), "{what}: {:?}", dm.problems);
        // Status registers, read over AXI4-Lite.
        lite.read(reg(&accel, "REG_STAT_LOADS"));
        lite.read(reg(&accel, "REG_STAT_DROPPED"));
        lite.read(reg(&accel, "REG_FETCH_STATUS"));
        let r = lite_run(
            &mut sim,
            &mut lite,
            &mut [&mut drv, &mut mon, &mut dm],
            1000,
        );
        assert_eq!(
            u64::from(r[0]),
            golden.routing.loads.len() as u64,
            "{what}: stat_loads"
        );
        assert_eq!(
            u64::from(r[1]),
            golden.routing.dropped,
            "{what}: stat_dropped"
        );
        assert_eq!(r[2] & 0x1F, 0, "{what}: fetch status {:#x}", r[2]);
        assert_eq!(
            (r[2] >> 16) as usize,
            want_ids.len(),
            "{what}: segments done"
        );
        assert_eq!(
            u64::from((r[2] >> 8) & 0xF),
            u64::from(want_ids.last().unwrap() & 0xF),
            "{what}: last tag"
        );
        eprintln!(
            "{what}: {n} outputs, 0 mismatches, {} loads, {} dropped, {} segments, {} weight beats, {cycles} cycles start-to-last-output",
            r[0],
            r[1],
            want_ids.len(),
            dm.beats
        );
        dm.beats = 0;
    }

    // An error status from the DataMover shows in REG_FETCH_STATUS (and the batch still ends).
    let data = MoeData::random(p, 99, 0.0).unwrap();
    let golden = model::golden(p, &data, true).unwrap();
    dm.image = reference_image(p, &data, &fetch);
    dm.fail_status = Some(0x20); // DECERR, not OKAY
    lite.write(0x00, 1);
    drv.push_packet(&model::input_beats(p, &data));
    let want = golden.outputs.len();
    let mut cycles = 0;
    while mon.received().len() < want || !lite.is_idle() {
        sim.step_agents(&mut [&mut lite, &mut drv, &mut mon, &mut dm])
            .unwrap();
        cycles += 1;
        assert!(cycles < 200_000, "error batch stalled");
    }
    mon.take_received();
    lite.take_results();
    lite.read(reg(&accel, "REG_FETCH_STATUS"));
    let r = lite_run(
        &mut sim,
        &mut lite,
        &mut [&mut drv, &mut mon, &mut dm],
        1000,
    );
    assert_eq!(r[0] & 0x0F, 0b0101, "error + DECERR latched: {:#x}", r[0]);
}

fn small(top_k: u32) -> MoeParams {
    MoeParams {
        tokens: 8,
        d_model: 8,
        d_ff: 16,
        experts: 4,
        top_k,
        lanes: 2,
        simd: 2,
        ddr_bytes_per_cycle: 2,
        queue_depth: 8,
        ..MoeParams::default()
    }
}

#[test]
fn wrapped_moe_fetches_weights_through_the_datamover_model() {
    if !accelforge_test_support::tool_available("verilator") {
        return;
    }
    // k = 1, 32-bit addresses (Zynq-7000), no back-pressure; reorder on then off.
    run_config(&Config {
        name: "k1",
        params: small(1),
        addr_bits: 32,
        base: 0x1234_5000,
        gap_prob: 0.0,
        stall_prob: 0.0,
        batches: vec![(11, true), (12, false)],
    });
    // k = 2, 64-bit addresses above 4 GiB (UltraScale+), 12-bit weights two to a 4-byte beat,
    // random gaps on every stream and output stalls; reorder off then on.
    // A queue of 3 for 8 tokens x 2 experts: some pairs are dropped and counted.
    let mut p = MoeParams {
        ddr_bytes_per_cycle: 4,
        queue_depth: 3,
        ..small(2)
    };
    let t = |w: u32, i: i32| {
        QType::fixed(w, i)
            .unwrap()
            .with_modes(Quant::Rnd, Overflow::Sat, 0)
            .unwrap()
    };
    p.types = MoeTypes {
        weight: t(12, 2),
        ..MoeTypes::default()
    };
    p.validate().unwrap();
    run_config(&Config {
        name: "k2",
        params: p,
        addr_bits: 64,
        base: 0x8_0010_0000,
        gap_prob: 0.2,
        stall_prob: 0.2,
        batches: vec![(21, false), (22, true)],
    });
}

#[test]
fn wrapped_moe_lints_and_synthesises() {
    if !accelforge_test_support::tool_available("verilator")
        || !accelforge_test_support::tool_available("yosys")
    {
        return;
    }
    let p = MoeParams::default();
    let core = rtl::design(&p).unwrap();
    for (family, addr_bits) in [(Family::Xc7, 32), (Family::Xcup, 64)] {
        let accel = interface(&p, &core, addr_bits);
        let wrapped = wrap(&core, &accel).unwrap();
        let files = DesignFiles::new(&wrapped).unwrap();
        let lint = tools::lint(&files.paths, Some(wrapped.top_name())).unwrap();
        assert!(lint.is_clean(), "{:#?}", lint.diagnostics);
        let r = tools::synth(&files.paths, wrapped.top_name(), family).unwrap();
        let core_files = DesignFiles::new(&core).unwrap();
        let rc = tools::synth(&core_files.paths, core.top_name(), family).unwrap();
        eprintln!(
            "{family} wrapped MoE (default params, {addr_bits}-bit fetch): {} LUT, {} FF, {} DSP, {} BRAM18 eq; core alone {} LUT, {} FF",
            r.lut,
            r.ff,
            r.dsp,
            r.bram18_equivalent(),
            rc.lut,
            rc.ff
        );
        assert_eq!(r.dsp, rc.dsp, "{family}: the wrapper adds no DSP");
        assert!(
            r.ff > rc.ff,
            "{family}: registers and fetcher add flip-flops"
        );
    }
}

/// The driver's `pack_weights` gives the reference image byte for byte.
#[test]
fn pynq_driver_packs_the_reference_image() {
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !numpy {
        assert!(
            std::env::var("CI").is_err(),
            "numpy is needed (scripts/setup.sh installs it)"
        );
        eprintln!("WARNING: numpy missing: pynq_driver_packs_the_reference_image did NOT run");
        return;
    }
    let db = BoardDb::builtin().unwrap();
    let t = |w: u32, i: i32| {
        QType::fixed(w, i)
            .unwrap()
            .with_modes(Quant::Rnd, Overflow::Sat, 0)
            .unwrap()
    };
    let wide = MoeParams {
        types: MoeTypes {
            weight: t(12, 2),
            ..MoeTypes::default()
        },
        ddr_bytes_per_cycle: 8,
        lanes: 4,
        simd: 2,
        ..small(2)
    };
    for (i, (board, p, seed)) in [("pynq-z2", small(1), 5u64), ("kv260", wide, 6)]
        .into_iter()
        .enumerate()
    {
        p.validate().unwrap();
        let b = db.get(board).unwrap();
        let addr_bits = accelforge_boards::zynq::dma_addr_bits(b.ps);
        let core = rtl::design(&p).unwrap();
        let accel = interface(&p, &core, addr_bits);
        let wrapped = wrap(&core, &accel).unwrap();
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("moe_zynq_pack_{i}"));
        write_bundle(
            &dir,
            &BundleSpec {
                board: b,
                accel: &accel,
                sources: wrapped
                    .files()
                    .into_iter()
                    .map(|(name, contents)| SourceFile { name, contents })
                    .collect(),
                template_params: serde_json::to_value(&p).unwrap(),
                estimate: None,
                options: BundleOptions {
                    overwrite: true,
                    ..BundleOptions::default()
                },
            },
        )
        .unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fpga-boards/tests/fake_pynq.py"),
            dir.join("pynq.py"),
        )
        .unwrap();
        let data = MoeData::random(&p, seed, 0.0).unwrap();
        let fetch = accel.weight_fetch.as_ref().unwrap();
        let reference = reference_image(&p, &data, fetch);
        // Raw int64 arrays for numpy: gate (E, D), w1 (E, F, D), w2 (E, D, F).
        let dump = |name: &str, vals: Vec<i64>| {
            let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
        };
        dump("gate", data.gate.iter().copied().collect());
        dump(
            "w1",
            data.w1.iter().flat_map(|m| m.iter().copied()).collect(),
        );
        dump(
            "w2",
            data.w2.iter().flat_map(|m| m.iter().copied()).collect(),
        );
        let script = format!(
            r#"
import numpy as np
import pynq
import af_moe_zynq_driver as d
shapes = d.weight_shapes()
assert shapes == {{"gate": ({e}, {dm}), "w1": ({e}, {f}, {dm}), "w2": ({e}, {dm}, {f})}}, shapes
arrays = {{k: np.fromfile(k + ".bin", dtype="<i8").reshape(s) for k, s in shapes.items()}}
d.pack_weights(**arrays).tofile("image.bin")
accel = d.AfMoeZynq()
addr = accel.load_weights(**arrays)
writes = [e[1:] for e in pynq.LOG if e[0] == "write"]
assert (d.REG_WEIGHTS_BASE, addr & 0xFFFFFFFF) in writes, writes
if d.WEIGHT_ADDR_BITS > 32:
    assert (d.REG_WEIGHTS_BASE_HI, addr >> 32) in writes, writes
for bad in (dict(arrays, gate=arrays["gate"][:, :-1]), {{k: v for k, v in arrays.items() if k != "w2"}},
            dict(arrays, w1=arrays["w1"] + 4096)):
    try:
        d.pack_weights(**bad)
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError("accepted bad arrays")
print("PACK OK")
"#,
            e = p.experts,
            dm = p.d_model,
            f = p.d_ff
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("PACK OK"),
            "config {i}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(dir.join("image.bin")).unwrap();
        assert_eq!(got.len(), reference.len(), "config {i}: image size");
        let diff = got.iter().zip(&reference).filter(|(a, b)| a != b).count();
        assert_eq!(
            diff, 0,
            "config {i}: {diff} bytes differ from segment_beats"
        );
        let py = dir.join("af_moe_zynq_driver.py");
        let c = Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&py)
            .output()
            .unwrap();
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    }
}
