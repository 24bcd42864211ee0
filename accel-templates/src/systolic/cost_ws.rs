//! Cycle model of the weight-stationary controller of [`super::rtl_ws`], in closed form: the
//! controller is a max-plus system over its loader, weight feeder, issuer, accumulator banks,
//! drain and output FIFO, evaluated per tile, with runs of identical tiles, K-slices, M blocks
//! and chunks skipped by [`Periodic`] (exact: see there). [`reference`] is the register-level
//! mirror it was derived from, kept as the test oracle.
//!
//! Timing facts used (all from the register mirror): the loader streams one beat per cycle,
//! per K-slice first the weights (all column tiles of the chunk) then the A slice, each into
//! the free bank of a ping-pong pair (a bank is free the cycle after its last reader finished);
//! the feeder fills the shadow weights in R cycles, starting no earlier than
//! `max(R−1, 1)` cycles after the previous tile started; a tile reads `mv` A rows, one per
//! cycle, and starts once its weights, its A slice and (for a block's first tile) its
//! accumulator bank are ready; a block's bank is drainable `R + C + 1` cycles after its last
//! row was read; the drain reads one row per cycle while the 4-entry FIFO has a credit, and a
//! row reaches the FIFO 3 cycles after its read.

use super::cost::{NEG, Periodic, Shape, cdiv, rel, shifted};
use super::layer::Gemm;
use super::params::Resolved;

struct Ws {
    sh: Shape,
    feed_gap: i64,
    // loader and issuer
    ld_end: i64,
    w_free: [i64; 2],
    a_free: [i64; 2],
    prev_start: i64,
    iss_free: i64,
    // accumulator banks and drain
    acc_free: [i64; 2],
    dr_prev: i64,
    /// Cycle after each of the last four drained rows left the serializer (newest first).
    fifo: [i64; 4],
}

impl Ws {
    fn new(r: &Resolved, g: &Gemm) -> Ws {
        let sh = Shape::new(r, g);
        Ws {
            sh,
            feed_gap: (sh.rr - 1).max(1),
            ld_end: -1,
            w_free: [NEG; 2],
            a_free: [NEG; 2],
            prev_start: NEG,
            iss_free: NEG,
            acc_free: [NEG; 2],
            dr_prev: NEG,
            fifo: [NEG; 4],
        }
    }

    /// One K-slice (`kv` rows of B) of an M block of `mv` rows: loads its weights and A slice,
    /// then issues one tile per column tile (`full` of C columns plus one of `tail`).
    fn slice(&mut self, mv: i64, kv: i64, full: i64, tail: i64, acc: i64) {
        let w_beats = kv * (full * cdiv(self.sh.cc, self.sh.eb) + cdiv(tail, self.sh.eb));
        let s = (self.ld_end + 1).max(self.w_free[0]);
        self.ld_end = s + w_beats - 1;
        let w_ready = self.ld_end + 1;
        let s = (self.ld_end + 1).max(self.a_free[0]);
        self.ld_end = s + mv * cdiv(kv, self.sh.ea) - 1;
        let a_ready = self.ld_end + 1;
        let (mut go, mut start) = (NEG, NEG);
        for t in 0..full + i64::from(tail > 0) {
            go = w_ready.max(shifted(self.prev_start, self.feed_gap));
            start = (go + self.sh.rr)
                .max(self.iss_free)
                .max(a_ready)
                .max(if t == 0 { acc } else { NEG });
            self.prev_start = start;
            self.iss_free = start + mv;
        }
        self.w_free = [self.w_free[1], go + self.sh.rr];
        self.a_free = [self.a_free[1], start + mv];
    }

    /// Drains `n` rows of `q` beats each; the first no earlier than `ready`.
    fn drain_run(&mut self, n: i64, q: i64, ready: i64) {
        let mut i = 0;
        let mut prev = [0i64; 5];
        while i < n {
            let d = (self.dr_prev + 1)
                .max(self.fifo[3])
                .max(if i == 0 { ready } else { NEG });
            let f = self.fifo[0].max(d + 3) + q;
            self.fifo = [f, self.fifo[0], self.fifo[1], self.fifo[2]];
            self.dr_prev = d;
            i += 1;
            // Identical rows: once one row shifts the whole state uniformly, all the rest do.
            let cur = [d, f, self.fifo[1], self.fifo[2], self.fifo[3]];
            let lam = cur[0] - prev[0];
            if i >= 2 && self.fifo[3] > NEG / 2 && cur.iter().zip(prev).all(|(a, b)| a - b == lam) {
                let rest = n - i;
                self.dr_prev += rest * lam;
                self.fifo = self.fifo.map(|t| t + rest * lam);
                return;
            }
            prev = cur;
        }
    }

    fn drain_snapshot(&self, out: &mut Vec<i64>) {
        let t0 = self.dr_prev;
        out.push(t0);
        out.extend(self.fifo.map(|t| rel(t, t0)));
    }

    /// Drains an M block of `mv` rows of a chunk with `full` + `tail` column tiles, in the
    /// output-stationary order (R-row groups, then column tiles, then rows).
    fn drain_block(&mut self, mv: i64, full: i64, tail: i64, ready: i64, sc: &mut WsScratch) {
        let qf = cdiv(self.sh.cc, self.sh.eo);
        if tail == 0 {
            self.drain_run(mv * full, qf, ready);
            return;
        }
        let qt = cdiv(tail, self.sh.eo);
        let groups = cdiv(mv, self.sh.rr);
        let last_rows = mv - (groups - 1) * self.sh.rr;
        let same_end = if last_rows == self.sh.rr {
            groups
        } else {
            groups - 1
        };
        sc.drain.reset();
        let mut i = 0;
        let mut ready = ready;
        while i < same_end {
            self.drain_run(self.sh.rr * full, qf, ready);
            self.drain_run(self.sh.rr, qt, ready);
            ready = NEG;
            i += 1;
            self.drain_snapshot(&mut sc.snap);
            if let Some((p, d)) = sc.drain.push(&mut sc.snap) {
                let jumps = (same_end - i) / p as i64;
                if jumps > 0 {
                    self.dr_prev += jumps * d;
                    self.fifo = self.fifo.map(|t| shifted(t, jumps * d));
                    i += jumps * p as i64;
                    sc.drain.reset();
                }
            }
        }
        if i < groups {
            self.drain_run(last_rows * full, qf, ready);
            self.drain_run(last_rows, qt, ready);
        }
    }

    /// The live state relative to the last tile start; `all` adds the accumulator banks and
    /// the drain, which stay constant (and unread) while the K-slices of one block are issued.
    fn snapshot(&self, out: &mut Vec<i64>, all: bool) {
        let t0 = self.prev_start;
        out.push(t0);
        for t in [
            self.ld_end,
            self.w_free[0],
            self.w_free[1],
            self.a_free[0],
            self.a_free[1],
            self.iss_free,
        ] {
            out.push(rel(t, t0));
        }
        if all {
            for t in [self.acc_free[0], self.acc_free[1], self.dr_prev] {
                out.push(rel(t, t0));
            }
            out.extend(self.fifo.map(|t| rel(t, t0)));
        }
    }

    fn shift(&mut self, d: i64, all: bool) {
        for t in [&mut self.ld_end, &mut self.iss_free, &mut self.prev_start] {
            *t = shifted(*t, d);
        }
        self.w_free = self.w_free.map(|t| shifted(t, d));
        self.a_free = self.a_free.map(|t| shifted(t, d));
        if all {
            self.acc_free = self.acc_free.map(|t| shifted(t, d));
            self.dr_prev = shifted(self.dr_prev, d);
            self.fifo = self.fifo.map(|t| shifted(t, d));
        }
    }

    /// One M block: every K-slice against the chunk, then its drain.
    fn block(&mut self, mv: i64, full: i64, tail: i64, sc: &mut WsScratch) {
        let slices = cdiv(self.sh.kk, self.sh.rr);
        let last_kv = self.sh.kk - (slices - 1) * self.sh.rr;
        let acc = self.acc_free[0];
        self.slice(mv, self.sh.kk.min(self.sh.rr), full, tail, acc);
        let same_end = if last_kv == self.sh.rr {
            slices
        } else {
            slices - 1
        };
        sc.block.reset();
        let mut i = 1;
        while i < same_end {
            self.slice(mv, self.sh.rr, full, tail, NEG);
            i += 1;
            self.snapshot(&mut sc.snap, false);
            if let Some((p, d)) = sc.block.push(&mut sc.snap) {
                let jumps = (same_end - i) / p as i64;
                if jumps > 0 {
                    self.shift(jumps * d, false);
                    i += jumps * p as i64;
                    sc.block.reset();
                }
            }
        }
        if i < slices {
            self.slice(mv, last_kv, full, tail, NEG);
        }
        let ready = self.prev_start + mv + self.sh.rr + self.sh.cc;
        self.drain_block(mv, full, tail, ready, sc);
        self.acc_free = [self.acc_free[1], self.dr_prev + 1];
    }

    /// One chunk of `cols` columns: every M block.
    fn chunk(&mut self, m: i64, mb: i64, cols: i64, sc: &mut WsScratch) {
        let (full, tail) = (cols / self.sh.cc, cols % self.sh.cc);
        let blocks = cdiv(m, mb);
        let last_rows = m - (blocks - 1) * mb;
        let same_end = if last_rows == mb { blocks } else { blocks - 1 };
        sc.chunk.reset();
        let mut i = 0;
        while i < same_end {
            self.block(mb, full, tail, sc);
            i += 1;
            self.snapshot(&mut sc.snap, true);
            if let Some((p, d)) = sc.chunk.push(&mut sc.snap) {
                let jumps = (same_end - i) / p as i64;
                if jumps > 0 {
                    self.shift(jumps * d, true);
                    i += jumps * p as i64;
                    sc.chunk.reset();
                }
            }
        }
        if i < blocks {
            self.block(last_rows, full, tail, sc);
        }
    }
}

/// The periodicity detectors of each level and the snapshot buffer, kept per thread so that an
/// evaluation does not allocate (the mapper and the sweep evaluate millions of layers).
struct WsScratch {
    snap: Vec<i64>,
    outer: Periodic,
    chunk: Periodic,
    block: Periodic,
    drain: Periodic,
}

impl WsScratch {
    fn new() -> WsScratch {
        WsScratch {
            snap: Vec::new(),
            outer: Periodic::new(),
            chunk: Periodic::new(),
            block: Periodic::new(),
            drain: Periodic::new(),
        }
    }
}

thread_local! {
    static WS_SCRATCH: std::cell::RefCell<WsScratch> = std::cell::RefCell::new(WsScratch::new());
}

/// `(cycles, input beats, output beats)` of the weight-stationary controller.
pub(super) fn cycles(r: &Resolved, g: &Gemm) -> (u64, u64, u64) {
    WS_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut sc) => cycles_with(r, g, &mut sc),
        // Not reachable (the model does not call itself); fresh buffers keep it correct.
        Err(_) => cycles_with(r, g, &mut WsScratch::new()),
    })
}

fn cycles_with(r: &Resolved, g: &Gemm, sc: &mut WsScratch) -> (u64, u64, u64) {
    let mut s = Ws::new(r, g);
    let (m, k, n) = (i64::from(g.m), i64::from(g.k), i64::from(g.n));
    let (nc, mb) = (i64::from(r.p.max_n_chunk), i64::from(r.ws_m_block));
    let chunks = cdiv(n, nc);
    let last_cols = n - (chunks - 1) * nc;
    let same_end = if last_cols == nc { chunks } else { chunks - 1 };
    sc.snap.clear();
    sc.outer.reset();
    let mut j = 0;
    while j < same_end {
        s.chunk(m, mb, nc, sc);
        j += 1;
        s.snapshot(&mut sc.snap, true);
        if let Some((p, d)) = sc.outer.push(&mut sc.snap) {
            let jumps = (same_end - j) / p as i64;
            if jumps > 0 {
                s.shift(jumps * d, true);
                j += jumps * p as i64;
                sc.outer.reset();
            }
        }
    }
    if j < chunks {
        s.chunk(m, mb, last_cols, sc);
    }
    let cycles = s.fifo[0];
    // Beats: per chunk, every M block streams all K rows of the chunk's weights, and A once.
    let (rr, cc) = (s.sh.rr, s.sh.cc);
    let row_beats = |cols: i64, e: i64| (cols / cc) * cdiv(cc, e) + cdiv(cols % cc, e);
    let blocks = cdiv(m, mb);
    let a_beats = m * ((k / rr) * cdiv(rr, s.sh.ea) + cdiv(k % rr, s.sh.ea));
    let in_beats = (chunks - 1) * (blocks * k * row_beats(nc, s.sh.eb) + a_beats)
        + blocks * k * row_beats(last_cols, s.sh.eb)
        + a_beats;
    let out_row = (chunks - 1) * row_beats(nc, s.sh.eo) + row_beats(last_cols, s.sh.eo);
    (cycles as u64, in_beats as u64, (m * out_row) as u64)
}

/// The register-level mirror (stepped one cycle at a time), kept as the oracle of the tests
/// and the bench.
pub(crate) mod reference {
    use std::collections::VecDeque;

    use super::super::error::{Result, SystolicError};
    use super::super::layer::Gemm;
    use super::super::params::Resolved;

    /// What one WS run measured: cycles and beat counts.
    pub(crate) struct WsRun {
        pub cycles: u64,
        pub in_beats: u64,
        pub out_beats: u64,
    }

    /// Runs the mirror for one GEMM (already checked against the parameters).
    pub(crate) fn run(r: &Resolved, g: &Gemm) -> Result<WsRun> {
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
                self.step_loader(row_end, i_end, e_cur);
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
                self.step_issuer(row_last, m_cur);
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
                self.step_feeder(wf_last, wf_c);
            }

            for b in 0..2 {
                let clr = dr_blk_done && old_dr_bank == b;
                let busy_set = claim && old_acb == b;
                self.acc_busy[b] = (self.acc_busy[b] || busy_set) && !clr;
                self.acc_ready[b] = (self.acc_ready[b] || ready_set == Some(b)) && !clr;
            }

            if dr_go {
                self.step_drain(p, dr_cv, dr_final, dr_r_end);
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

        /// The loader's registers after a beat was accepted.
        fn step_loader(&mut self, row_end: bool, i_end: bool, e_cur: u64) {
            let (rr, cc, nc, mb) = (self.rr, self.cc, self.nc, self.mb);
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

        /// The issuer's registers after a row was read.
        fn step_issuer(&mut self, row_last: bool, m_cur: u64) {
            let (rr, cc, nc, mb) = (self.rr, self.cc, self.nc, self.mb);
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

        /// The weight feeder's registers after a shadow row was written.
        fn step_feeder(&mut self, wf_last: bool, wf_c: u64) {
            let (rr, cc, nc, mb) = (self.rr, self.cc, self.nc, self.mb);
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

        /// The drain's registers after a row was read (its tag reaches the FIFO 2 periods on).
        fn step_drain(&mut self, p: u64, dr_cv: u64, dr_final: bool, dr_r_end: bool) {
            let (rr, cc, nc, mb) = (self.rr, self.cc, self.nc, self.mb);
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
    }
}
