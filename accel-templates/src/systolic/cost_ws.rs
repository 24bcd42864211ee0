//! Cycle model of the weight-stationary controller: a register-level mirror of the loader,
//! weight feeder, issuer, accumulator-bank flags, drain, output FIFO and serializer of
//! [`super::rtl_ws`], stepped one period at a time. The PE array and the accumulator
//! read-modify-write never stall, so they appear only as fixed latencies: a block's last row
//! issued in period x makes its bank drainable in x+R+C+1, and a drain read in period d
//! reaches the output FIFO in d+2.

use std::collections::VecDeque;

use super::error::{Result, SystolicError};
use super::layer::Gemm;
use super::params::Resolved;

/// What one WS run measured: cycles and beat counts.
pub(super) struct WsRun {
    pub cycles: u64,
    pub in_beats: u64,
    pub out_beats: u64,
}

/// Runs the mirror for one GEMM (already checked against the parameters).
pub(super) fn run(r: &Resolved, g: &Gemm) -> Result<WsRun> {
    let mut s = Ws::new(r, g);
    let limit = s.limit();
    let mut p = 0u64;
    loop {
        if p > limit {
            return Err(SystolicError::Sim(format!(
                "ws cycle model did not finish within {limit} cycles (a model bug)"
            )));
        }
        if s.period(p) {
            return Ok(WsRun {
                cycles: p + 1,
                in_beats: s.in_beats,
                out_beats: s.out_beats,
            });
        }
        p += 1;
    }
}

struct Ws {
    rr: u64,
    cc: u64,
    nc: u64,
    mb: u64,
    ea: u64,
    eb: u64,
    eo: u64,
    kk: u64,
    m: u64,
    n: u64,
    hold_after: u64,
    // loader
    ld_act: bool,
    ld_isa: bool,
    ld_nrem: u64,
    ld_crem: u64,
    ld_mrem: u64,
    ld_krem: u64,
    ld_i: u64,
    ld_lane: u64,
    ld_wb: usize,
    ld_ab: usize,
    afull: [bool; 2],
    wfull: [bool; 2],
    // issuer
    is_act: bool,
    is_m: u64,
    is_left: bool,
    is_ab: usize,
    is_acb: usize,
    is_t: u64,
    is_nrem: u64,
    is_crem: u64,
    is_mrem: u64,
    is_krem: u64,
    // weight feeder
    wf_ld: bool,
    wf_cnt: u64,
    wf_full: bool,
    wf_hold: u64,
    wf_left: bool,
    wf_wb: usize,
    wf_nrem: u64,
    wf_crem: u64,
    wf_mrem: u64,
    wf_krem: u64,
    // accumulator banks
    acc_busy: [bool; 2],
    acc_ready: [bool; 2],
    ready_events: VecDeque<(u64, usize)>,
    // drain
    dr_left: bool,
    dr_bank: usize,
    dr_r: u64,
    dr_grem: u64,
    dr_crem: u64,
    dr_mrem: u64,
    dr_nrem: u64,
    credits: u64,
    tags: VecDeque<(u64, u64, bool)>,
    // output
    fifo: VecDeque<(u64, bool)>,
    ob_lane: u64,
    in_beats: u64,
    out_beats: u64,
}

impl Ws {
    fn new(r: &Resolved, g: &Gemm) -> Ws {
        let (rr, cc, nc) = (u64::from(r.r), u64::from(r.c), u64::from(r.p.max_n_chunk));
        let mb = u64::from(r.ws_m_block);
        let (m, k, n) = (u64::from(g.m), u64::from(g.k), u64::from(g.n));
        Ws {
            rr,
            cc,
            nc,
            mb,
            ea: u64::from(r.ea),
            eb: u64::from(r.eb),
            eo: u64::from(r.eo),
            kk: k,
            m,
            n,
            hold_after: rr.saturating_sub(2),
            ld_act: true,
            ld_isa: false,
            ld_nrem: n,
            ld_crem: n.min(nc),
            ld_mrem: m,
            ld_krem: k,
            ld_i: 0,
            ld_lane: 0,
            ld_wb: 0,
            ld_ab: 0,
            afull: [false; 2],
            wfull: [false; 2],
            is_act: false,
            is_m: 0,
            is_left: true,
            is_ab: 0,
            is_acb: 0,
            is_t: 0,
            is_nrem: n,
            is_crem: n.min(nc),
            is_mrem: m,
            is_krem: k,
            wf_ld: false,
            wf_cnt: 0,
            wf_full: false,
            wf_hold: 0,
            wf_left: true,
            wf_wb: 0,
            wf_nrem: n,
            wf_crem: n.min(nc),
            wf_mrem: m,
            wf_krem: k,
            acc_busy: [false; 2],
            acc_ready: [false; 2],
            ready_events: VecDeque::new(),
            dr_left: true,
            dr_bank: 0,
            dr_r: 0,
            dr_grem: m.min(mb),
            dr_crem: n.min(nc),
            dr_mrem: m,
            dr_nrem: n,
            credits: u64::from(r.out_fifo_depth),
            tags: VecDeque::new(),
            fifo: VecDeque::new(),
            ob_lane: 0,
            in_beats: 0,
            out_beats: 0,
        }
    }

    /// A generous bound on the periods a run can take (only a model bug reaches it).
    fn limit(&self) -> u64 {
        let (rr, cc) = (self.rr, self.cc);
        let blocks = self.m.div_ceil(self.mb);
        let slices = self.kk.div_ceil(rr);
        let tiles = self.n.div_ceil(cc) * blocks * slices;
        let beats = self.n * self.kk * blocks + self.m * self.kk * self.n.div_ceil(self.nc);
        let outs = self.m * self.n.div_ceil(cc) * cc.div_ceil(self.eo);
        10_000 + 4 * (beats + outs + tiles * (self.mb + 2 * rr + cc + 8))
    }

    /// One period: returns true when the last output beat transfers at the following edge.
    fn period(&mut self, p: u64) -> bool {
        let (rr, cc, nc, mb) = (self.rr, self.cc, self.nc, self.mb);
        // ---- combinational ----
        let tgt_full = if self.ld_isa {
            self.afull[self.ld_ab]
        } else {
            self.wfull[self.ld_wb]
        };
        let fire = self.ld_act && !tgt_full;
        let (kv, cv, mv) = (
            self.ld_krem.min(rr),
            self.ld_crem.min(cc),
            self.ld_mrem.min(mb),
        );
        let (valid, e_cur, rows) = if self.ld_isa {
            (kv, self.ea, mv)
        } else {
            (cv, self.eb, kv)
        };
        let row_end = self.ld_lane + e_cur >= valid;
        let i_end = self.ld_i + 1 == rows;
        let set_end = fire && row_end && i_end;
        let set_a = set_end && self.ld_isa;
        let set_w = set_end && !self.ld_isa && self.ld_crem <= cc;

        let first_slice = self.is_krem == self.kk;
        let blk_first = first_slice && self.is_t == 0;
        let acc_free = !self.acc_busy[self.is_acb];
        let start = !self.is_act
            && self.is_left
            && self.afull[self.is_ab]
            && self.wf_full
            && (!blk_first || acc_free);
        let claim = start && blk_first;
        let rd = start || self.is_act;
        let m_cur = if self.is_act { self.is_m } else { 0 };
        let row_last = m_cur + 1 == self.is_mrem.min(mb);
        let tile_end = rd && row_last;
        let slice_end = tile_end && self.is_crem <= cc;
        let blk_last = slice_end && self.is_krem <= rr;

        let wf_go = self.wf_left
            && !self.wf_ld
            && !self.wf_full
            && self.wf_hold == 0
            && self.wfull[self.wf_wb];
        let wf_rd = wf_go || self.wf_ld;
        let wf_c = if self.wf_ld { self.wf_cnt } else { 0 };
        let wf_last = wf_rd && wf_c == rr - 1;
        let clr_w = wf_last && self.wf_crem <= cc;

        let dr_go = self.dr_left && self.acc_ready[self.dr_bank] && self.credits != 0;
        let dr_cv = self.dr_crem.min(cc);
        let dr_r_end = self.dr_r + 1 == self.dr_grem.min(rr);
        let dr_g_end = dr_r_end && self.dr_crem <= cc && self.dr_grem <= rr;
        let dr_blk_done = dr_go && dr_g_end;
        let dr_final = dr_g_end && self.dr_mrem <= mb && self.dr_nrem <= nc;

        let ready_set = match self.ready_events.front() {
            Some(&(at, b)) if at == p => {
                self.ready_events.pop_front();
                Some(b)
            }
            _ => None,
        };
        let push = match self.tags.front() {
            Some(&(at, cv, last)) if at == p => {
                self.tags.pop_front();
                Some((cv, last))
            }
            _ => None,
        };
        let head = self.fifo.front().copied();
        let xfer = head.is_some();
        let (head_cv, head_last) = head.unwrap_or((0, false));
        let row_last_beat = self.ob_lane + self.eo >= head_cv;
        let pop = xfer && row_last_beat;
        if xfer {
            self.out_beats += 1;
            if head_last && row_last_beat {
                return true;
            }
        }

        // ---- registers ----
        let (old_ld_ab, old_ld_wb, old_is_ab, old_wf_wb) =
            (self.ld_ab, self.ld_wb, self.is_ab, self.wf_wb);
        let (old_acb, old_dr_bank) = (self.is_acb, self.dr_bank);
        if fire {
            self.in_beats += 1;
            if !row_end {
                self.ld_lane += e_cur;
            } else {
                self.ld_lane = 0;
                if !i_end {
                    self.ld_i += 1;
                } else {
                    self.ld_i = 0;
                    if !self.ld_isa {
                        if self.ld_crem > cc {
                            self.ld_crem -= cc;
                        } else {
                            self.ld_wb ^= 1;
                            self.ld_isa = true;
                            self.ld_crem = self.ld_nrem.min(nc);
                        }
                    } else {
                        self.ld_ab ^= 1;
                        self.ld_isa = false;
                        if self.ld_krem > rr {
                            self.ld_krem -= rr;
                        } else {
                            self.ld_krem = self.kk;
                            if self.ld_mrem > mb {
                                self.ld_mrem -= mb;
                            } else {
                                self.ld_mrem = self.m;
                                if self.ld_nrem > nc {
                                    self.ld_nrem -= nc;
                                    self.ld_crem = self.ld_nrem.min(nc);
                                } else {
                                    self.ld_act = false;
                                }
                            }
                        }
                    }
                }
            }
        }
        if set_a {
            self.afull[old_ld_ab] = true;
        }
        if set_w {
            self.wfull[old_ld_wb] = true;
        }
        if slice_end {
            self.afull[old_is_ab] = false;
        }
        if clr_w {
            self.wfull[old_wf_wb] = false;
        }

        if rd {
            if row_last {
                self.is_act = false;
                self.is_m = 0;
                if self.is_crem > cc {
                    self.is_crem -= cc;
                    self.is_t += 1;
                } else {
                    self.is_t = 0;
                    self.is_ab ^= 1;
                    self.is_crem = self.is_nrem.min(nc);
                    if self.is_krem > rr {
                        self.is_krem -= rr;
                    } else {
                        self.is_krem = self.kk;
                        self.is_acb ^= 1;
                        if self.is_mrem > mb {
                            self.is_mrem -= mb;
                        } else {
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
            } else {
                self.is_act = true;
                self.is_m = m_cur + 1;
            }
        }
        if rd && blk_last {
            self.ready_events.push_back((p + rr + cc, old_acb));
        }

        if start {
            self.wf_full = false;
            self.wf_hold = self.hold_after;
        } else if self.wf_hold != 0 {
            self.wf_hold -= 1;
        }
        if wf_rd {
            if wf_last {
                self.wf_ld = false;
                self.wf_cnt = 0;
                self.wf_full = true;
                if self.wf_crem > cc {
                    self.wf_crem -= cc;
                } else {
                    self.wf_wb ^= 1;
                    self.wf_crem = self.wf_nrem.min(nc);
                    if self.wf_krem > rr {
                        self.wf_krem -= rr;
                    } else {
                        self.wf_krem = self.kk;
                        if self.wf_mrem > mb {
                            self.wf_mrem -= mb;
                        } else {
                            self.wf_mrem = self.m;
                            if self.wf_nrem > nc {
                                self.wf_nrem -= nc;
                                self.wf_crem = self.wf_nrem.min(nc);
                            } else {
                                self.wf_left = false;
                            }
                        }
                    }
                }
            } else {
                self.wf_ld = true;
                self.wf_cnt = wf_c + 1;
            }
        }

        for b in 0..2 {
            let clr = dr_blk_done && old_dr_bank == b;
            let busy_set = claim && old_acb == b;
            self.acc_busy[b] = (self.acc_busy[b] || busy_set) && !clr;
            self.acc_ready[b] = (self.acc_ready[b] || ready_set == Some(b)) && !clr;
        }

        if dr_go {
            self.tags.push_back((p + 2, dr_cv, dr_final));
            if !dr_r_end {
                self.dr_r += 1;
            } else {
                self.dr_r = 0;
                if self.dr_crem > cc {
                    self.dr_crem -= cc;
                } else {
                    self.dr_crem = self.dr_nrem.min(nc);
                    if self.dr_grem > rr {
                        self.dr_grem -= rr;
                    } else {
                        self.dr_bank ^= 1;
                        if self.dr_mrem > mb {
                            self.dr_mrem -= mb;
                            self.dr_grem = self.dr_mrem.min(mb);
                        } else {
                            self.dr_mrem = self.m;
                            if self.dr_nrem > nc {
                                self.dr_nrem -= nc;
                                self.dr_crem = self.dr_nrem.min(nc);
                                self.dr_grem = self.m.min(mb);
                            } else {
                                self.dr_left = false;
                            }
                        }
                    }
                }
            }
        }
        self.credits = self.credits - u64::from(dr_go) + u64::from(pop);

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
        if let Some(row) = push {
            self.fifo.push_back(row);
        }
        false
    }
}
