//! Cycle and resource models.
//!
//! # Cycle count definition
//! `cycles` counts rising edges from the edge that accepts the command (`cmd_valid && cmd_ready`,
//! exclusive) to the edge that transfers the last output beat (`m_axis_tvalid && tready &&
//! tlast`, inclusive), with the input stream always valid and the output always ready. The
//! simulator measures exactly the same span; with back-pressure it can only be longer.
//!
//! The model mirrors the controller's registers (loader, issuer, bank flags, output credits, row
//! sequencer, output FIFO, serializer) edge by edge; the PE array never stalls, so its only
//! timing effect is the fixed latency from a tile's start flag to its rows reaching the output
//! FIFO (C + 2 cycles for the first row, then one row every other cycle). Stretches where
//! nothing but counters advance are skipped in one step, so a model evaluation costs
//! O(tiles + output rows), not O(cycles).
//!
//! The weight-stationary controller has its own mirror (same cycle definition), stepped one
//! period at a time: loader, weight feeder, issuer, accumulator-bank flags, drain, output FIFO.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::error::{Result, SystolicError};
use super::layer::Gemm;
use super::params::{Dataflow, PeKind, Resolved, SystolicParams};

/// Result of the cycle model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CycleEstimate {
    /// Cycles from command acceptance to the last output beat (see the module docs).
    pub cycles: u64,
    /// Multiply-accumulates of the layer.
    pub macs: u64,
    /// `macs / (cycles · R · C)`.
    pub utilization: f64,
    /// Input beats the host streams.
    pub input_beats: u64,
    /// Output beats the accelerator sends.
    pub output_beats: u64,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: u64,
    rv: u64,
    cv: u64,
    last: bool,
}

/// The cycle model for one GEMM.
pub fn cycles(p: &SystolicParams, g: &Gemm) -> Result<CycleEstimate> {
    let r = p.resolve()?;
    g.check(p)?;
    if p.dataflow == Dataflow::Ws {
        let run = super::cost_ws::run(&r, g)?;
        let macs = g.macs();
        return Ok(CycleEstimate {
            cycles: run.cycles,
            macs,
            utilization: macs as f64 / (run.cycles as f64 * f64::from(r.r) * f64::from(r.c)),
            input_beats: run.in_beats,
            output_beats: run.out_beats,
        });
    }
    let mut s = Ctrl::new(&r, g);
    let cycles = s.run()?;
    let macs = g.macs();
    Ok(CycleEstimate {
        cycles,
        macs,
        utilization: macs as f64 / (cycles as f64 * f64::from(r.r) * f64::from(r.c)),
        input_beats: s.in_beats,
        output_beats: s.out_beats,
    })
}

/// Register-level mirror of the controller (names follow the RTL).
struct Ctrl {
    // constants
    rr: u64,
    cc: u64,
    nc: u64,
    ea: u64,
    eb: u64,
    eo: u64,
    kk: u64,
    m: u64,
    per_eff: u64,
    ev_delay: u64,
    // loader
    ld_act: bool,
    ld_isa: bool,
    ld_nrem: u64,
    ld_crem: u64,
    ld_mrem: u64,
    ld_k: u64,
    ld_lane: u64,
    ld_valid: u64,
    ld_ab: usize,
    ld_bb: usize,
    afull: [bool; 2],
    bfull: [bool; 2],
    // issuer
    is_act: bool,
    is_k: u64,
    is_nrem: u64,
    is_crem: u64,
    is_mrem: u64,
    is_ab: usize,
    is_bb: usize,
    is_left: bool,
    is_fl: bool,
    per: u64,
    cap_v: bool,
    cap_rv: u64,
    cap_cv: u64,
    credits: u64,
    // output side
    events: VecDeque<Event>,
    seq_left: u64,
    seq_ph: bool,
    seq_cv: u64,
    seq_last: bool,
    fifo: VecDeque<(u64, bool)>,
    ob_lane: u64,
    in_beats: u64,
    out_beats: u64,
}

impl Ctrl {
    fn new(r: &Resolved, g: &Gemm) -> Ctrl {
        let (rr, cc, nc) = (u64::from(r.r), u64::from(r.c), u64::from(r.p.max_n_chunk));
        let (m, k, n) = (u64::from(g.m), u64::from(g.k), u64::from(g.n));
        Ctrl {
            rr,
            cc,
            nc,
            ea: u64::from(r.ea),
            eb: u64::from(r.eb),
            eo: u64::from(r.eo),
            kk: k,
            m,
            per_eff: k.max(u64::from(r.min_period)),
            ev_delay: cc + 2,
            ld_act: true,
            ld_isa: false,
            ld_nrem: n,
            ld_crem: n.min(nc),
            ld_mrem: m,
            ld_k: 0,
            ld_lane: 0,
            ld_valid: n.min(cc),
            ld_ab: 0,
            ld_bb: 0,
            afull: [false; 2],
            bfull: [false; 2],
            is_act: false,
            is_k: 0,
            is_nrem: n,
            is_crem: n.min(nc),
            is_mrem: m,
            is_ab: 0,
            is_bb: 0,
            is_left: true,
            is_fl: false,
            per: u64::from(u16::MAX),
            cap_v: false,
            cap_rv: 0,
            cap_cv: 0,
            credits: u64::from(r.out_fifo_depth),
            events: VecDeque::new(),
            seq_left: 0,
            seq_ph: false,
            seq_cv: 0,
            seq_last: false,
            fifo: VecDeque::new(),
            ob_lane: 0,
            in_beats: 0,
            out_beats: 0,
        }
    }

    /// Runs periods 0, 1, ... (period p follows edge p; edge 0 accepted the command) until the
    /// last output beat; returns the edge at which it transfers.
    fn run(&mut self) -> Result<u64> {
        let mut p: u64 = 0;
        // Generous bound: every beat and every tile cycle, many times over.
        let limit = 64
            + 4 * (self.kk + 2 * self.rr + self.cc + 8)
                * (self.m.div_ceil(self.rr) + 1)
                * (self.is_nrem.div_ceil(self.cc) + 1)
                * (self.rr + 2);
        loop {
            if p > limit {
                return Err(SystolicError::Sim(format!(
                    "cycle model did not finish within {limit} cycles (a model bug)"
                )));
            }
            if self.period(p) {
                return Ok(p + 1);
            }
            p += 1 + self.skippable(p + 1);
        }
    }

    /// Periods after `p` that would change nothing but plain counters (the issuer's k counter
    /// mid-tile, `since_start` while waiting, and the loader streaming within a row run) can
    /// be skipped only when every unit is in such a state; kept conservative: returns 0 unless
    /// the issuer is mid-tile and nothing else is active except the loader being blocked.
    fn skippable(&mut self, p: u64) -> u64 {
        let loader_blocked = !self.ld_act || {
            if self.ld_isa {
                self.afull[self.ld_ab]
            } else {
                self.bfull[self.ld_bb]
            }
        };
        if !(self.is_act
            && loader_blocked
            && self.fifo.is_empty()
            && self.seq_left == 0
            && self.events.is_empty())
        {
            return 0;
        }
        // Mid-tile with nothing else moving: jump to two periods before the tile's last read.
        let remaining = self.kk.saturating_sub(self.is_k + 1);
        let skip = remaining.saturating_sub(1);
        if skip > 0 {
            self.is_k += skip;
            self.per = (self.per + skip).min(u64::from(u16::MAX));
        }
        let _ = p;
        skip
    }

    /// One period: returns true when the last beat transfers at the following edge.
    fn period(&mut self, p: u64) -> bool {
        let (rr, cc, nc) = (self.rr, self.cc, self.nc);
        // ---- combinational ----
        let tgt_full = if self.ld_isa {
            self.afull[self.ld_ab]
        } else {
            self.bfull[self.ld_bb]
        };
        let fire = self.ld_act && !tgt_full;
        let e_cur = if self.ld_isa { self.ea } else { self.eb };
        let row_end = self.ld_lane + e_cur >= self.ld_valid;
        let k_end = self.ld_k + 1 == self.kk;
        let ld_blk_end = fire && row_end && k_end;
        let set_a = ld_blk_end && self.ld_isa;
        let set_b = ld_blk_end && !self.ld_isa && self.ld_crem <= cc;

        let a_ok = self.afull[self.is_ab];
        let b_ok = self.bfull[self.is_bb];
        let per_ok = self.per >= self.per_eff;
        let cred_ok = !self.cap_v || self.credits >= self.cap_rv;
        let idle_ok = !self.is_act && per_ok && cred_ok;
        let start = idle_ok && self.is_left && a_ok && b_ok;
        let flush = idle_ok && !self.is_left && !self.is_fl && self.cap_v;
        let flag = start || flush;
        let tile_end = (start && self.kk == 1) || (self.is_act && self.is_k + 1 == self.kk);
        let blk_end = tile_end && self.is_crem <= cc;
        let chunk_end = blk_end && self.is_mrem <= rr;

        let ev = match self.events.front() {
            Some(e) if e.at == p => self.events.pop_front(),
            _ => None,
        };
        let seq_busy = self.seq_left != 0;
        let push = ev.is_some() || (seq_busy && self.seq_ph);
        let (row_cv, row_last) = match ev {
            Some(e) => (e.cv, e.last && e.rv == 1),
            None => (self.seq_cv, self.seq_last && self.seq_left == 1),
        };

        let head = self.fifo.front().copied();
        let xfer = head.is_some();
        let (head_cv, head_last) = head.unwrap_or((0, false));
        let row_last_beat = self.ob_lane + self.eo >= head_cv;
        let tlast = head_last && row_last_beat;
        let pop = xfer && row_last_beat;
        if xfer {
            self.out_beats += 1;
            if tlast {
                return true;
            }
        }

        // ---- registers ----
        if fire {
            self.in_beats += 1;
            if !row_end {
                self.ld_lane += e_cur;
            } else {
                self.ld_lane = 0;
                if !k_end {
                    self.ld_k += 1;
                } else {
                    self.ld_k = 0;
                    if self.ld_isa {
                        self.ld_ab ^= 1;
                        if self.ld_mrem > rr {
                            self.ld_mrem -= rr;
                            self.ld_valid = self.ld_mrem.min(rr);
                        } else if self.ld_nrem > nc {
                            self.ld_nrem -= nc;
                            self.ld_isa = false;
                            self.ld_crem = self.ld_nrem.min(nc);
                            self.ld_valid = self.ld_nrem.min(cc);
                        } else {
                            self.ld_act = false;
                        }
                    } else if self.ld_crem > cc {
                        self.ld_crem -= cc;
                        self.ld_valid = self.ld_crem.min(cc);
                    } else {
                        self.ld_bb ^= 1;
                        self.ld_isa = true;
                        self.ld_mrem = self.m;
                        self.ld_valid = self.m.min(rr);
                    }
                }
            }
        }
        // Bank flags (set before the pointers moved: use the values of this period).
        let (old_ld_ab, old_ld_bb, old_is_ab, old_is_bb) = (
            if set_a { self.ld_ab ^ 1 } else { self.ld_ab },
            if set_b { self.ld_bb ^ 1 } else { self.ld_bb },
            self.is_ab,
            self.is_bb,
        );
        if set_a {
            self.afull[old_ld_ab] = true;
        }
        if set_b {
            self.bfull[old_ld_bb] = true;
        }
        if blk_end {
            self.afull[old_is_ab] = false;
        }
        if chunk_end {
            self.bfull[old_is_bb] = false;
        }

        let take = if flag && self.cap_v { self.cap_rv } else { 0 };
        self.credits = self.credits - take + u64::from(pop);
        self.per = if flag {
            1
        } else {
            (self.per + 1).min(u64::from(u16::MAX))
        };
        if flag && self.cap_v {
            self.events.push_back(Event {
                at: p + 1 + self.ev_delay - 1,
                rv: self.cap_rv,
                cv: self.cap_cv,
                last: flush,
            });
        }
        if start {
            self.cap_v = true;
            self.cap_rv = self.is_mrem.min(rr);
            self.cap_cv = self.is_crem.min(cc);
            self.is_act = true;
            self.is_k = 1;
        } else if self.is_act && !tile_end {
            self.is_k += 1;
        }
        if tile_end {
            self.is_act = false;
            self.is_k = 0;
            if self.is_crem > cc {
                self.is_crem -= cc;
            } else {
                self.is_ab ^= 1;
                if self.is_mrem > rr {
                    self.is_mrem -= rr;
                    self.is_crem = self.is_nrem.min(nc);
                } else {
                    self.is_bb ^= 1;
                    self.is_mrem = self.m;
                    if self.is_nrem > nc {
                        self.is_nrem -= nc;
                        self.is_crem = self.is_nrem.min(nc);
                    } else {
                        self.is_left = false;
                    }
                }
            }
        }
        if flush {
            self.is_fl = true;
            self.cap_v = false;
        }

        if let Some(e) = ev {
            self.seq_left = e.rv - 1;
            self.seq_ph = false;
            self.seq_cv = e.cv;
            self.seq_last = e.last;
        } else if seq_busy {
            if self.seq_ph {
                self.seq_left -= 1;
            }
            self.seq_ph = !self.seq_ph;
        }
        if xfer {
            if row_last_beat {
                self.ob_lane = 0;
            } else {
                self.ob_lane += self.eo;
            }
        }
        if pop {
            self.fifo.pop_front();
        }
        if push {
            self.fifo.push_back((row_cv, row_last));
        }
        false
    }
}

/// FPGA resources in budget units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    /// LUTs (rough).
    pub lut: u64,
    /// Flip-flops (rough).
    pub ff: u64,
    /// DSP slices (exact for operands up to 25×18).
    pub dsp: u64,
    /// RAMB18 primitives.
    pub bram18: u64,
    /// RAMB36 primitives.
    pub bram36: u64,
    /// UltraRAM blocks.
    pub uram: u64,
}

/// RAMB36/RAMB18 counts Yosys (`synth_xilinx -family xc7`) uses for one simple-dual-port memory
/// of `width × depth` bits: the cheapest tiling among the 7-series aspect ratios.
pub fn bram_for(width: u64, depth: u64) -> (u64, u64) {
    // (depth, width) aspect ratios; 72/36-bit widths are the simple-dual-port modes.
    const B36: [(u64, u64); 7] = [
        (512, 72),
        (1024, 36),
        (2048, 18),
        (4096, 9),
        (8192, 4),
        (16384, 2),
        (32768, 1),
    ];
    const B18: [(u64, u64); 6] = [
        (512, 36),
        (1024, 18),
        (2048, 9),
        (4096, 4),
        (8192, 2),
        (16384, 1),
    ];
    let best36 = B36
        .iter()
        .map(|&(d, w)| width.div_ceil(w) * depth.div_ceil(d))
        .min()
        .unwrap_or(0);
    let best18 = B18
        .iter()
        .map(|&(d, w)| width.div_ceil(w) * depth.div_ceil(d))
        .min()
        .unwrap_or(0);
    // A RAMB36 costs two RAMB18s; prefer the RAMB18 tiling only when it is strictly cheaper.
    if best18 < 2 * best36 {
        (0, best18)
    } else {
        (best36, 0)
    }
}

/// The resource model.
pub fn resources(p: &SystolicParams) -> Result<Resources> {
    Ok(super::requant::with_tables(p, model(p)?.0))
}

/// The structural counts the LUT/FF calibration scales (see [`super::calibration`]).
pub fn features(p: &SystolicParams) -> Result<super::calibration::Features> {
    Ok(model(p)?.1)
}

fn model(p: &SystolicParams) -> Result<(Resources, super::calibration::Features)> {
    let r = p.resolve()?;
    let (rr, cc) = (u64::from(r.r), u64::from(r.c));
    let pes = rr * cc;
    let sb = u64::from(p.stream_bits);
    let (wa, wb, wacc) = (u64::from(r.wa), u64::from(r.wb), u64::from(r.wacc));
    let wo = u64::from(r.tout.width());
    let dsp = match p.pe {
        PeKind::Dsp => {
            // A DSP48E1 multiplies 25×18 signed; wider operands take a grid of them.
            let (x, y) = (wa.max(wb), wa.min(wb));
            let per = if x <= 25 && y <= 18 {
                1
            } else {
                x.div_ceil(25) * y.div_ceil(18)
            };
            pes * per
        }
        PeKind::ShiftAdd => 0,
    };
    let (mut b36, mut b18) = (0, 0);
    // Operand buffers hold only the packed elements of a beat (floor(B/W) of them).
    let (a_w, b_w) = (
        u64::from(r.ea * r.ta.width()),
        u64::from(r.eb * r.tb.width()),
    );
    // (memories, width, depth) of every block RAM.
    let mems = if p.dataflow == Dataflow::Ws {
        vec![
            (u64::from(r.qa), a_w, 2 * u64::from(r.ws_a_depth)),
            (u64::from(r.qb), b_w, 2 * u64::from(r.ws_w_depth)),
            // Accumulator buffer: one memory per column and bank.
            (2 * cc, wacc, u64::from(r.ws_acc_depth)),
        ]
    } else {
        vec![
            (u64::from(r.qa), a_w, 2 * u64::from(r.a_bank_depth)),
            (u64::from(r.qb), b_w, 2 * u64::from(r.b_bank_depth)),
        ]
    };
    for (count, width, depth) in mems {
        let (x, y) = bram_for(width, depth);
        b36 += count * x;
        b18 += count * y;
    }
    let bw = u64::from(super::pe::b_lane_width(&r));
    // With a wrapping output only the accumulator bits that reach the output survive synthesis
    // (Yosys trims the rest), which changes LUT/FF several-fold for narrow outputs.
    let d = i64::from(r.tacc.frac_bits()) - i64::from(r.tout.frac_bits());
    let eff_acc = if matches!(r.tout.overflow(), crate::qfx::Overflow::Wrap) {
        wacc.min(d.max(0) as u64 + wo)
    } else {
        wacc
    };
    let sbits = u64::from(super::pe::shift_bits(&r));
    // Structural counts per PE and for the array's periphery (the DSP48E1 absorbs the
    // accumulator register of `dsp` PEs); `calibration` scales them to what Yosys measures.
    let (pe_ff, pe_lut) = match p.pe {
        PeKind::Dsp => (wa + wb + 1 + eff_acc, eff_acc + 4),
        PeKind::ShiftAdd => (wa + bw + 1 + 2 * eff_acc, (wa + wb) * sbits + 2 * eff_acc),
    };
    let fifo_lut = (1 + 16 + cc * wo).div_ceil(2) * u64::from(r.out_fifo_depth).div_ceil(32);
    let skew_lut = rr * (wa + 1) + cc * bw;
    let mut features = super::calibration::Features {
        pe_lut: pes * pe_lut,
        periphery_lut: cc * (eff_acc + 2 * wo) + fifo_lut + skew_lut + sb,
        pe_ff: pes * pe_ff,
        periphery_ff: cc * (cc + 1) / 2 * wo + sb,
    };
    if p.dataflow == Dataflow::Ws {
        // Second weight register per PE, the accumulator adders and bank muxes per column, and
        // the control chain along the bottom.
        let acc_aw = u64::from(accelforge_hdl::clog2(u64::from(r.ws_acc_depth)).max(1));
        features.pe_ff += pes * bw;
        features.periphery_ff += (rr + cc) * (4 + acc_aw) + cc * wo;
        features.pe_lut += pes * bw / 2;
        features.periphery_lut += cc * (2 * wacc + 2 * acc_aw);
    }
    let (lut, ff) = super::calibration::predict(p.pe, &features);
    Ok((
        Resources {
            lut,
            ff,
            dsp,
            bram18: b18,
            bram36: b36,
            uram: 0,
        },
        features,
    ))
}
