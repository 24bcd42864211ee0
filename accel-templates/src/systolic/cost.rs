//! Cycle and resource models.
//!
//! # Cycle count definition
//! `cycles` counts rising edges from the edge that accepts the command (`cmd_valid && cmd_ready`,
//! exclusive) to the edge that transfers the last output beat (`m_axis_tvalid && tready &&
//! tlast`, inclusive), with the input stream always valid and the output always ready. The
//! simulator measures exactly the same span; with back-pressure it can only be longer.
//!
//! The model is a closed form of the controller (derived from the register-level mirror kept
//! in [`reference`]): every event — loader beats into the ping-pong A/B banks, tile starts
//! (period `max(K, 2R−1)`, operands ready, output-FIFO credits), the output chain (C + 2
//! cycles to the FIFO for a tile's first row, then one row every other cycle) and the
//! serializer — is a max-plus recurrence over tiles, and runs of identical M tiles and chunks
//! are skipped exactly by [`Periodic`]. An evaluation costs O(distinct tile shapes), not
//! O(tiles) or O(cycles). The weight-stationary controller has its own closed form in
//! `cost_ws` (same cycle definition).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::error::Result;
use super::layer::Gemm;
use super::params::{BufferRam, Dataflow, PeKind, Resolved, SystolicParams};

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

/// The cycle model for one GEMM: closed form, in time independent of the layer size.
pub fn cycles(p: &SystolicParams, g: &Gemm) -> Result<CycleEstimate> {
    Model::new(p)?.cycles(g)
}

/// The cycle model with its parameters resolved once (type strings parsed, derived constants
/// computed), for callers that price many layers on one configuration: the mapper and the
/// sweep. Gives exactly [`cycles`]'s numbers.
#[derive(Debug, Clone)]
pub struct Model {
    r: Resolved,
}

impl Model {
    /// Resolves `p` (the errors of [`SystolicParams::resolve`]).
    pub fn new(p: &SystolicParams) -> Result<Model> {
        Ok(Model { r: p.resolve()? })
    }

    /// The parameters this model was made from.
    pub fn params(&self) -> &SystolicParams {
        &self.r.p
    }

    /// The cycle model for one GEMM.
    pub fn cycles(&self, g: &Gemm) -> Result<CycleEstimate> {
        let r = &self.r;
        g.check(&r.p)?;
        let (cycles, input_beats, output_beats) = match r.p.dataflow {
            Dataflow::Os => os_cycles(r, g),
            Dataflow::Ws => super::cost_ws::cycles(r, g),
        };
        Ok(estimate(r, g, cycles, input_beats, output_beats))
    }
}

fn estimate(
    r: &Resolved,
    g: &Gemm,
    cycles: u64,
    input_beats: u64,
    output_beats: u64,
) -> CycleEstimate {
    let macs = g.macs();
    CycleEstimate {
        cycles,
        macs,
        utilization: macs as f64 / (cycles as f64 * f64::from(r.r) * f64::from(r.c)),
        input_beats,
        output_beats,
    }
}

/// The array and layer constants both closed forms step with: array rows and columns, the
/// reduction length and the elements per beat of A, B and the output.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) rr: i64,
    pub(super) cc: i64,
    pub(super) kk: i64,
    pub(super) ea: i64,
    pub(super) eb: i64,
    pub(super) eo: i64,
}

impl Shape {
    pub(super) fn new(r: &Resolved, g: &Gemm) -> Shape {
        Shape {
            rr: i64::from(r.r),
            cc: i64::from(r.c),
            kk: i64::from(g.k),
            ea: i64::from(r.ea),
            eb: i64::from(r.eb),
            eo: i64::from(r.eo),
        }
    }
}

/// "Minus infinity" for times that constrain nothing yet (max-plus zero); far enough from
/// `i64::MIN` that adding a layer's worth of cycles cannot wrap.
pub(super) const NEG: i64 = i64::MIN / 4;

/// Periodic extrapolation shared by both closed forms.
///
/// The controllers are max-plus systems: every event time is the maximum of earlier event
/// times plus constants that depend only on the shape of the unit (tile, block, chunk) being
/// processed. Processing a unit is therefore a function `F` of the state with
/// `F(s + λ) = F(s) + λ` (all live times shifted together). When the state after a unit is
/// exactly the state `P` units earlier shifted by `λ`, and the next units have the same shape,
/// every following period of `P` units shifts it by `λ` again: the remaining identical units
/// are skipped in one step, exactly. Nothing is assumed about when this happens: if no repeat
/// is seen the units are simply processed one by one.
pub(super) struct Periodic {
    hist: [Vec<i64>; 3],
    n: usize,
}

impl Periodic {
    pub(super) fn new() -> Periodic {
        Periodic {
            hist: [Vec::new(), Vec::new(), Vec::new()],
            n: 0,
        }
    }

    /// Records a snapshot (first element: the reference time, then relative times and plain
    /// integers) and returns `(period, shift)` when it repeats the one `period` units back.
    pub(super) fn push(&mut self, snap: &mut Vec<i64>) -> Option<(u64, i64)> {
        // Rotate: hist[0] newest.
        let oldest = std::mem::take(&mut self.hist[2]);
        self.hist.swap(1, 2);
        self.hist.swap(0, 1);
        self.hist[0] = std::mem::replace(snap, oldest);
        snap.clear();
        self.n += 1;
        for period in 1..=2usize {
            if self.n > period && self.hist[0].len() == self.hist[period].len() {
                let (a, b) = (&self.hist[0], &self.hist[period]);
                if a[1..] == b[1..] {
                    return Some((period as u64, a[0] - b[0]));
                }
            }
        }
        None
    }

    pub(super) fn reset(&mut self) {
        self.n = 0;
    }
}

/// A time relative to the reference, keeping "minus infinity" recognisable.
pub(super) fn rel(t: i64, reference: i64) -> i64 {
    if t <= NEG / 2 {
        i64::MIN
    } else {
        t - reference
    }
}

/// Ceiling division of non-negative counts (`i64::div_ceil` is not stable).
pub(super) fn cdiv(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// Shifts a time, leaving "minus infinity" alone.
pub(super) fn shifted(t: i64, d: i64) -> i64 {
    if t <= NEG / 2 { t } else { t + d }
}

/// One tile's rows in the output FIFO: `rv` rows of `q` beats, the first available at
/// `avail` and one more every other cycle; the serializer was free from `fin` on.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// Rows sent before this batch.
    lo: i64,
    rv: i64,
    q: i64,
    fin: i64,
    avail: i64,
}

impl Batch {
    /// The cycle after row `j` (0-based) of the batch left the serializer: one beat per
    /// cycle, rows in order, each no earlier than it arrived.
    fn free_after(&self, j: i64) -> i64 {
        (self.fin + (j + 1) * self.q).max(self.avail + self.q + j * self.q.max(2))
    }
}

/// Closed form of the output-stationary controller (see [`reference`] for the register-level
/// mirror it was derived from and is tested against).
struct Os {
    sh: Shape,
    per_eff: i64,
    depth: i64,
    // loader
    ld_end: i64,
    /// When the A bank of the next block / the one after is free for loading.
    a_free: [i64; 2],
    /// The same for the B banks, per chunk.
    b_free: [i64; 2],
    // issuer
    prev_start: i64,
    /// Rows and output beats per row of the last started tile (flushed by the next flag).
    pend: Option<(i64, i64)>,
    // output
    ser_free: i64,
    cum: i64,
    batches: VecDeque<Batch>,
}

impl Os {
    fn new(r: &Resolved, g: &Gemm) -> Os {
        let sh = Shape::new(r, g);
        let kk = sh.kk;
        Os {
            sh,
            per_eff: kk.max(i64::from(r.min_period)),
            depth: i64::from(r.out_fifo_depth),
            ld_end: -1,
            a_free: [NEG; 2],
            b_free: [NEG; 2],
            prev_start: NEG,
            pend: None,
            ser_free: NEG,
            cum: 0,
            batches: VecDeque::new(),
        }
    }

    /// The earliest a flag may rise: the output FIFO must have room for the pending rows.
    fn credit_time(&mut self) -> i64 {
        let Some((rv, _)) = self.pend else {
            return NEG;
        };
        let x = self.cum + rv - self.depth; // rows (1-based) that must have left
        if x < 1 {
            return NEG;
        }
        while let Some(b) = self.batches.front() {
            if b.lo + b.rv < x {
                self.batches.pop_front();
            } else {
                break;
            }
        }
        match self.batches.front() {
            Some(b) => b.free_after(x - 1 - b.lo),
            None => NEG,
        }
    }

    /// A flag at `t` sends the pending tile's rows down the output chain.
    fn flag(&mut self, t: i64) {
        if let Some((rv, q)) = self.pend {
            let b = Batch {
                lo: self.cum,
                rv,
                q,
                fin: self.ser_free,
                avail: t + self.sh.cc + 3,
            };
            self.ser_free = b.free_after(rv - 1);
            self.cum += rv;
            self.batches.push_back(b);
        }
    }

    /// One M tile (`rows` rows of A) against the current chunk (`full` column tiles of C plus
    /// a `tail`-column one), after loading the chunk's B first when `b_beats` is given.
    fn group(&mut self, b_beats: Option<i64>, rows: i64, full: i64, tail: i64) -> i64 {
        let mut ready = NEG;
        if let Some(beats) = b_beats {
            let s = (self.ld_end + 1).max(self.b_free[0]);
            self.ld_end = s + beats - 1;
            ready = self.ld_end + 1;
        }
        let s = (self.ld_end + 1).max(self.a_free[0]);
        self.ld_end = s + self.sh.kk * cdiv(rows, self.sh.ea) - 1;
        ready = ready.max(self.ld_end + 1);
        let mut start = NEG;
        let tiles = full + i64::from(tail > 0);
        for t in 0..tiles {
            let w = if t < full { self.sh.cc } else { tail };
            start = (self.prev_start + self.per_eff)
                .max(if t == 0 { ready } else { NEG })
                .max(self.credit_time());
            self.flag(start);
            self.prev_start = start;
            self.pend = Some((rows, cdiv(w, self.sh.eo)));
        }
        self.a_free = [self.a_free[1], start + self.sh.kk];
        start
    }

    /// The live state relative to the last tile start. Inside a chunk the B-bank times are
    /// constants nobody reads until the next chunk, so they are compared (and shifted) only
    /// between chunks (`with_b`).
    fn snapshot(&self, out: &mut Vec<i64>, with_b: bool) {
        let t0 = self.prev_start;
        out.push(t0);
        for t in [self.ld_end, self.a_free[0], self.a_free[1], self.ser_free] {
            out.push(rel(t, t0));
        }
        if with_b {
            out.extend([rel(self.b_free[0], t0), rel(self.b_free[1], t0)]);
        }
        let (rv, q) = self.pend.unwrap_or((-1, -1));
        out.extend([rv, q, self.batches.len() as i64]);
        for b in &self.batches {
            out.extend([b.lo - self.cum, b.rv, b.q, rel(b.fin, t0), rel(b.avail, t0)]);
        }
    }

    fn shift(&mut self, d: i64, rows: i64, with_b: bool) {
        for t in [&mut self.ld_end, &mut self.ser_free, &mut self.prev_start] {
            *t = shifted(*t, d);
        }
        self.a_free = self.a_free.map(|t| shifted(t, d));
        if with_b {
            self.b_free = self.b_free.map(|t| shifted(t, d));
        }
        self.cum += rows;
        for b in &mut self.batches {
            b.lo += rows;
            b.fin = shifted(b.fin, d);
            b.avail = shifted(b.avail, d);
        }
    }

    /// One chunk of `cols` columns: its B, then every M tile of A.
    fn chunk(&mut self, m: i64, cols: i64, snap: &mut Vec<i64>, per: &mut Periodic) {
        let (full, tail) = (cols / self.sh.cc, cols % self.sh.cc);
        let b_beats = self.sh.kk * (full * cdiv(self.sh.cc, self.sh.eb) + cdiv(tail, self.sh.eb));
        let mt = cdiv(m, self.sh.rr);
        let last_rows = m - (mt - 1) * self.sh.rr;
        let mut last = self.group(Some(b_beats), m.min(self.sh.rr), full, tail);
        // Groups 1.. with R rows are identical (the last one too when R divides M).
        let same_end = if last_rows == self.sh.rr { mt } else { mt - 1 };
        // The caller's detector (its buffers are reused: no allocation per chunk).
        per.reset();
        let mut i = 1;
        let rows_per_group = self.sh.rr * (full + i64::from(tail > 0));
        while i < same_end {
            last = self.group(None, self.sh.rr, full, tail);
            i += 1;
            self.snapshot(snap, false);
            if let Some((p, d)) = per.push(snap) {
                let jumps = (same_end - i) / p as i64;
                if jumps > 0 {
                    self.shift(jumps * d, jumps * p as i64 * rows_per_group, false);
                    i += jumps * p as i64;
                    last = shifted(last, jumps * d);
                    per.reset();
                }
            }
        }
        if i < mt {
            last = self.group(None, last_rows, full, tail);
        }
        self.b_free = [self.b_free[1], last + self.sh.kk];
    }
}

/// `(cycles, input beats, output beats)` of the output-stationary controller.
/// Buffers of the output-stationary closed form, kept per thread so that an evaluation does
/// not allocate (the mapper and the sweep evaluate millions of layers).
struct OsScratch {
    snap: Vec<i64>,
    per: Periodic,
    inner: Periodic,
    batches: VecDeque<Batch>,
}

thread_local! {
    static OS_SCRATCH: std::cell::RefCell<OsScratch> = std::cell::RefCell::new(OsScratch {
        snap: Vec::new(),
        per: Periodic::new(),
        inner: Periodic::new(),
        batches: VecDeque::new(),
    });
}

fn os_cycles(r: &Resolved, g: &Gemm) -> (u64, u64, u64) {
    OS_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut sc) => os_cycles_with(r, g, &mut sc),
        // Not reachable (the model does not call itself); fresh buffers keep it correct.
        Err(_) => os_cycles_with(
            r,
            g,
            &mut OsScratch {
                snap: Vec::new(),
                per: Periodic::new(),
                inner: Periodic::new(),
                batches: VecDeque::new(),
            },
        ),
    })
}

fn os_cycles_with(r: &Resolved, g: &Gemm, sc: &mut OsScratch) -> (u64, u64, u64) {
    let mut s = Os::new(r, g);
    let mut batches = std::mem::take(&mut sc.batches);
    batches.clear();
    s.batches = batches;
    let (m, k, n) = (i64::from(g.m), i64::from(g.k), i64::from(g.n));
    let nc = i64::from(r.p.max_n_chunk);
    let chunks = cdiv(n, nc);
    let last_cols = n - (chunks - 1) * nc;
    let same_end = if last_cols == nc { chunks } else { chunks - 1 };
    let OsScratch {
        snap, per, inner, ..
    } = sc;
    snap.clear();
    per.reset();
    let mut j = 0;
    while j < same_end {
        s.chunk(m, nc, snap, inner);
        j += 1;
        s.snapshot(snap, true);
        if let Some((p, d)) = per.push(snap) {
            let jumps = (same_end - j) / p as i64;
            if jumps > 0 {
                let rows = jumps * p as i64 * m * cdiv(nc, s.sh.cc);
                s.shift(jumps * d, rows, true);
                j += jumps * p as i64;
                per.reset();
            }
        }
    }
    if j < chunks {
        s.chunk(m, last_cols, snap, inner);
    }
    // Flush: the last tile's rows leave after one more period (and FIFO room).
    let f = (s.prev_start + s.per_eff).max(s.credit_time());
    s.flag(f);
    let cycles = s.ser_free;
    // Beats: every chunk streams its B once and all of A.
    let Shape {
        ea, eb, eo, rr, cc, ..
    } = s.sh;
    let row_beats = |cols: i64, e: i64| (cols / cc) * cdiv(cc, e) + cdiv(cols % cc, e);
    let a_beats = k * ((m / rr) * cdiv(rr, ea) + cdiv(m % rr, ea));
    let b_cols_beats = (chunks - 1) * row_beats(nc, eb) + row_beats(last_cols, eb);
    let in_beats = k * b_cols_beats + chunks * a_beats;
    let out_row = (chunks - 1) * row_beats(nc, eo) + row_beats(last_cols, eo);
    sc.batches = std::mem::take(&mut s.batches);
    (cycles as u64, in_beats as u64, (m * out_row) as u64)
}

/// The register-level mirrors the closed forms were derived from: they step the controllers
/// period by period (output-stationary) or cycle by cycle (weight-stationary), so their cost
/// grows with the layer. Kept only as test oracles (and for the bench's comparison).
#[doc(hidden)]
pub mod reference {
    use std::collections::VecDeque;

    use super::super::error::{Result, SystolicError};
    use super::super::layer::Gemm;
    use super::super::params::{Dataflow, Resolved, SystolicParams};
    use super::CycleEstimate;

    /// The stepping model for one GEMM (same result as [`super::cycles`]).
    pub fn cycles(p: &SystolicParams, g: &Gemm) -> Result<CycleEstimate> {
        let r = p.resolve()?;
        g.check(p)?;
        if p.dataflow == Dataflow::Ws {
            let run = super::super::cost_ws::reference::run(&r, g)?;
            return Ok(super::estimate(
                &r,
                g,
                run.cycles,
                run.in_beats,
                run.out_beats,
            ));
        }
        let mut s = Ctrl::new(&r, g);
        let cycles = s.run()?;
        Ok(super::estimate(&r, g, cycles, s.in_beats, s.out_beats))
    }

    #[derive(Debug, Clone, Copy)]
    struct Event {
        at: u64,
        rv: u64,
        cv: u64,
        last: bool,
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

impl Resources {
    /// The workspace's budget units: a RAMB36 counts as two 18 Kb blocks.
    pub fn estimate(&self) -> accelforge_boards::ResourceEstimate {
        accelforge_boards::ResourceEstimate {
            lut: self.lut,
            ff: self.ff,
            dsp: self.dsp,
            bram18: self.bram18 + 2 * self.bram36,
            uram: self.uram,
        }
    }
}

pub use crate::template::memory::{bram_for, uram_for};

/// `(count, width, depth)` of identical memories.
type Memories = (u64, u64, u64);

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
        PeKind::Dsp => pes * multiplier_dsps(wa, wb),
        PeKind::ShiftAdd => 0,
        // One multiply per packing group and row: the activation times the packed weights.
        PeKind::DspPacked => {
            let s = r.product_bits;
            super::packing::groups(r.c, r.pack)
                .into_iter()
                .map(|(_, n)| {
                    rr * multiplier_dsps(wa, u64::from(super::packing::packed_bits(n, s, r.wb)))
                })
                .sum()
        }
    };
    let (mut b36, mut b18) = (0, 0);
    // Operand buffers hold only the packed elements of a beat (floor(B/W) of them).
    let (a_w, b_w) = (
        u64::from(r.ea * r.ta.width()),
        u64::from(r.eb * r.tb.width()),
    );
    // With a wrapping output only the accumulator bits that reach the output survive synthesis
    // (Yosys trims the rest), which changes LUT/FF several-fold for narrow outputs.
    let d = i64::from(r.tacc.frac_bits()) - i64::from(r.tout.frac_bits());
    let eff_acc = if matches!(r.tout.overflow(), crate::qfx::Overflow::Wrap) {
        wacc.min(d.max(0) as u64 + wo)
    } else {
        wacc
    };
    // (memories, width, depth) of the operand buffers, then of the other block RAMs.
    let (operands, mut mems): (Vec<Memories>, Vec<Memories>) = if p.dataflow == Dataflow::Ws {
        (
            vec![
                (u64::from(r.qa), a_w, 2 * u64::from(r.ws_a_depth)),
                (u64::from(r.qb), b_w, 2 * u64::from(r.ws_w_depth)),
            ],
            // Accumulator buffer: one memory per column and bank, at the accumulator's
            // full width. (Yosys sometimes drops the bits above those that reach a
            // wrapping output, e.g. 16×32 with K = 4,608, and sometimes not, e.g. 8×16
            // with K = 832; counting them all never under-prices a design.)
            vec![(2 * cc, wacc, u64::from(r.ws_acc_depth))],
        )
    } else {
        (
            vec![
                (u64::from(r.qa), a_w, 2 * u64::from(r.a_bank_depth)),
                (u64::from(r.qb), b_w, 2 * u64::from(r.b_bank_depth)),
            ],
            Vec::new(),
        )
    };
    let mut uram = 0;
    match p.buffer_ram {
        BufferRam::Block => {
            // The order of the memories does not change the counts.
            mems.extend(operands);
        }
        BufferRam::Ultra => {
            uram = operands
                .iter()
                .map(|&(count, width, depth)| count * uram_for(width, depth))
                .sum();
        }
    }
    for (count, width, depth) in mems {
        let (x, y) = bram_for(width, depth);
        b36 += count * x;
        b18 += count * y;
    }
    let bw = u64::from(super::pe::b_lane_width(&r));
    let sbits = u64::from(super::pe::shift_bits(&r));
    // Structural counts per PE and for the array's periphery (the DSP48E1 absorbs the
    // accumulator register of `dsp` PEs); `calibration` scales them to what Yosys measures.
    let ws = p.dataflow == Dataflow::Ws;
    let (pe_ff_sum, pe_lut_sum) = match p.pe {
        PeKind::Dsp => (pes * (wa + wb + 1 + eff_acc), pes * (eff_acc + 4)),
        PeKind::ShiftAdd => (
            pes * (wa + bw + 1 + 2 * eff_acc),
            pes * ((wa + wb) * sbits + 2 * eff_acc),
        ),
        PeKind::DspPacked => packed_pe_terms(&r, eff_acc, ws),
    };
    let fifo_lut = (1 + 16 + cc * wo).div_ceil(2) * u64::from(r.out_fifo_depth).div_ceil(32);
    let skew_lut = rr * (wa + 1) + cc * bw;
    let mut features = super::calibration::Features {
        pe_lut: pe_lut_sum,
        periphery_lut: cc * (eff_acc + 2 * wo) + fifo_lut + skew_lut + sb,
        pe_ff: pe_ff_sum,
        periphery_ff: cc * (cc + 1) / 2 * wo + sb,
    };
    if ws {
        // Second weight register per PE, the accumulator adders and bank muxes per column, and
        // the control chain along the bottom.
        let acc_aw = u64::from(accelforge_hdl::clog2(u64::from(r.ws_acc_depth)).max(1));
        if p.pe != PeKind::DspPacked {
            features.pe_ff += pes * bw;
            features.pe_lut += pes * bw / 2;
        }
        features.periphery_ff += (rr + cc) * (4 + acc_aw) + cc * wo;
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
            uram,
        },
        features,
    ))
}

/// DSP48 slices one signed `wa × wb` multiply takes, as Yosys's `synth_xilinx` maps it: none
/// when an operand is narrower than 2 bits or the product narrower than 9 (`mul2dsp`'s
/// `DSP_*_MINWIDTH`: such products go to LUTs, e.g. int4 × int4), one up to 25 × 18, else a
/// grid of them.
pub fn multiplier_dsps(wa: u64, wb: u64) -> u64 {
    let (x, y) = (wa.max(wb), wa.min(wb));
    if y < 2 || x + y < 9 {
        0
    } else if x <= 25 && y <= 18 {
        1
    } else {
        x.div_ceil(25) * y.div_ceil(18)
    }
}

/// Structural `(FF, LUT)` sums of the DSP-packed PE groups (all rows): per group of `n`
/// columns the activation and flag pass through `n` stages, the packed weight lane, `n`
/// accumulators in fabric (the sign correction sits between the multiply and the
/// accumulator, so the DSP cannot absorb it) and `n − 1` sign corrections; output-stationary
/// groups also hold the output chain, weight-stationary ones the shadow weight, the products
/// delayed for the later columns' partial sums and those sums' adders and registers (which the
/// DSP absorbs for `dsp` PEs).
fn packed_pe_terms(r: &Resolved, eff_acc: u64, ws: bool) -> (u64, u64) {
    let wa = u64::from(r.wa);
    let s = u64::from(r.product_bits);
    let (mut ff, mut lut) = (0, 0);
    for (_, n) in super::packing::groups(r.c, r.pack) {
        let pw = u64::from(super::packing::packed_bits(n, r.product_bits, r.wb));
        let n = u64::from(n);
        let (gff, glut) = if ws {
            // Partial sums go on to the accumulator buffer at full width: nothing is trimmed.
            let wacc = u64::from(r.wacc);
            (
                n * (wa + 1) + 2 * pw + n * wacc + s * n * (n - 1) / 2,
                n * wacc + (n - 1) * s + pw / 2,
            )
        } else {
            (
                n * (wa + 1) + pw + 2 * n * eff_acc,
                2 * n * eff_acc + (n - 1) * s,
            )
        };
        ff += gff;
        lut += glut;
    }
    (u64::from(r.r) * ff, u64::from(r.r) * lut)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::params::{Dataflow, PeKind, SystolicParams};
    use super::*;

    /// A random valid configuration: every dataflow and PE kind, array sides 1..=12 (and a few
    /// up to 64), element widths that pack 1..=16 elements per beat, chunks of 1..=4 tiles,
    /// `max_k` from the bound the dataflow allows.
    fn random_params(rng: &mut ChaCha8Rng) -> SystolicParams {
        let side = |rng: &mut ChaCha8Rng| {
            if rng.random_bool(0.05) {
                rng.random_range(13..=64)
            } else {
                rng.random_range(1..=12)
            }
        };
        let (rows, cols) = (side(rng), side(rng));
        let dataflow = if rng.random_bool(0.5) {
            Dataflow::Ws
        } else {
            Dataflow::Os
        };
        let ty = |rng: &mut ChaCha8Rng| {
            let w = [4, 5, 8, 12, 16][rng.random_range(0..5)];
            format!("ap_fixed<{w},{w}>")
        };
        let max_k = if rng.random_bool(0.5) {
            rng.random_range(rows..=rows + 20)
        } else {
            rng.random_range(rows..=rows.max(200))
        };
        SystolicParams {
            rows,
            cols,
            dataflow,
            input_type: ty(rng),
            weight_type: ty(rng),
            acc_type: "ap_fixed<64,64>".into(),
            output_type: ty(rng),
            pe: if rng.random_bool(0.5) {
                PeKind::Dsp
            } else {
                PeKind::ShiftAdd
            },
            max_k,
            max_n_chunk: cols * rng.random_range(1..=4),
            stream_bits: [16, 32, 64, 128][rng.random_range(0..4)],
            relu: false,
            requant: Default::default(),
            buffer_ram: Default::default(),
        }
    }

    /// The closed forms equal the register-level mirrors (themselves equal to Verilator) on
    /// 30,000 random configurations × GEMM shapes: both dataflows, M/K/N = 1, K = max_k,
    /// tiles and chunks that do not divide, narrow and wide streams.
    #[test]
    fn closed_form_equals_stepping_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let mut checked = [0u32; 2];
        while checked.iter().sum::<u32>() < 30_000 {
            let p = random_params(&mut rng);
            let Ok(r) = p.resolve() else { continue };
            let dim = |rng: &mut ChaCha8Rng, top: u32| match rng.random_range(0..6) {
                0 => 1,
                1 => top,
                _ => rng.random_range(1..=top),
            };
            let m = dim(
                &mut rng,
                3 * r.r * if p.dataflow == Dataflow::Ws { 1 } else { 3 } + 7,
            );
            let k = dim(&mut rng, p.max_k);
            let n = dim(&mut rng, 3 * p.max_n_chunk + 5);
            let g = Gemm { m, k, n };
            let want = reference::cycles(&p, &g).expect("stepping model");
            let got = cycles(&p, &g).expect("closed form");
            assert_eq!(got, want, "{p:?} {g:?}");
            checked[usize::from(p.dataflow == Dataflow::Ws)] += 1;
        }
    }
}
