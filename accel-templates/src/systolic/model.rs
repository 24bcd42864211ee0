//! Bit-exact golden models and the host side of the streaming protocol.
//!
//! # Stream order (host → accelerator, `s_axis`)
//! Elements are raw two's-complement (or unsigned) codes, packed little-endian within a beat:
//! lane `l` occupies bits `l·W .. l·W+W−1`. Each *row* of a buffer (one `k` of a tile) starts a
//! new beat; unused lanes of its last beat are ignored (send zeros). With `Nc = max_n_chunk`:
//!
//! ```text
//! for each chunk j of Nc columns of B (n0 = j·Nc):
//!     for each column tile t of C columns in the chunk (c0 = n0 + t·C, cv = valid columns):
//!         for k in 0..K: ceil(cv/Eb) beats carrying B[k][c0 .. c0+cv]
//!     for each row block i of R rows of A (r0 = i·R, rv = valid rows):
//!         for k in 0..K: ceil(rv/Ea) beats carrying A[r0 .. r0+rv][k]
//! ```
//! A is therefore streamed once per B chunk. Input TLAST is ignored.
//!
//! Weight-stationary arrays (`dataflow = ws`) take a different operand order. With
//! `Mb` = the largest multiple of R not above `max_k` (the M block):
//!
//! ```text
//! for each chunk j of Nc columns of B (n0 = j·Nc):
//!     for each M block of Mb rows of A (m0, mv = valid rows):
//!         for each K-slice of R rows of K (k0 = s·R, kv = valid rows):
//!             for each column tile t of C columns in the chunk (c0, cv):
//!                 for i in 0..kv: ceil(cv/Eb) beats carrying B[k0+i][c0 .. c0+cv]
//!             for m in 0..mv: ceil(kv/Ea) beats carrying A[m0+m][k0 .. k0+kv]
//! ```
//! so B is streamed once per M block and A once per chunk. The output order is the same for
//! both dataflows.
//!
//! # Output order (`m_axis`)
//! For each chunk, each row block, each column tile of the chunk: each of its `rv` rows as
//! `ceil(cv/Eo)` beats carrying `C[r][c0 .. c0+cv]` (unused lanes zero). TLAST marks the last
//! beat of the whole result.

use ndarray::{Array2, Array3, Array4};

use super::error::{Result, SystolicError};
use super::layer::{Conv2d, Gemm};
use super::params::{Dataflow, Resolved};
use crate::qfx::Converter;

/// One AXI4-Stream beat: data as little-endian 64-bit words, and TLAST.
pub type Beat = (Vec<u64>, bool);

/// Requantizes one exact accumulator value (after the optional ReLU) into the output type.
pub fn requantize(r: &Resolved, acc: i128) -> i64 {
    let x = if r.p.relu { acc.max(0) } else { acc };
    Converter::new(&r.tacc, &r.tout).convert_raw_in_range(x) as i64
}

/// GEMM golden model on raw codes: exact integer MACs into the accumulator, then the output
/// conversion. `a` is M×K (input type), `b` is K×N (weight type).
pub fn gemm(r: &Resolved, a: &Array2<i64>, b: &Array2<i64>) -> Result<Array2<i64>> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 {
        return Err(SystolicError::Data(format!(
            "A is {m}x{k} but B is {k2}x{n}: inner dimensions differ"
        )));
    }
    let mut c = Array2::<i64>::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let mut acc: i128 = 0;
            for q in 0..k {
                acc += i128::from(a[(i, q)]) * i128::from(b[(q, j)]);
            }
            // The accumulator's raw code: the exact sum scaled to its fractional bits.
            c[(i, j)] = requantize(r, acc << r.acc_shift);
        }
    }
    Ok(c)
}

/// im2col: the A matrix (`OH·OW × C·R·S`) of a convolution input `x` (C × H × W).
pub fn im2col(conv: &Conv2d, x: &Array3<i64>) -> Result<Array2<i64>> {
    let g = conv.gemm()?;
    let (_, ow) = conv.out_hw()?;
    let (ci, h, w) = x.dim();
    if (ci, h, w) != (conv.c_in as usize, conv.h as usize, conv.w as usize) {
        return Err(SystolicError::Data(format!(
            "input is {ci}x{h}x{w}, expected {}x{}x{}",
            conv.c_in, conv.h, conv.w
        )));
    }
    let mut a = Array2::<i64>::zeros((g.m as usize, g.k as usize));
    let (rk, sk, st, pad) = (
        conv.kernel_h as i64,
        conv.kernel_w as i64,
        conv.stride as i64,
        conv.pad as i64,
    );
    for p in 0..g.m as i64 {
        let (oy, ox) = (p / ow as i64, p % ow as i64);
        for c in 0..ci as i64 {
            for r in 0..rk {
                for s in 0..sk {
                    let (y, xx) = (oy * st + r - pad, ox * st + s - pad);
                    if y >= 0 && y < h as i64 && xx >= 0 && xx < w as i64 {
                        let q = (c * rk + r) * sk + s;
                        a[(p as usize, q as usize)] = x[(c as usize, y as usize, xx as usize)];
                    }
                }
            }
        }
    }
    Ok(a)
}

/// The B matrix (`C·R·S × K_out`) of convolution weights `w` (K_out × C × R × S).
pub fn weights_to_b(conv: &Conv2d, w: &Array4<i64>) -> Result<Array2<i64>> {
    let (ko, ci, rk, sk) = w.dim();
    if (ko, ci, rk, sk)
        != (
            conv.c_out as usize,
            conv.c_in as usize,
            conv.kernel_h as usize,
            conv.kernel_w as usize,
        )
    {
        return Err(SystolicError::Data(
            "weight tensor shape does not match the layer".into(),
        ));
    }
    let mut b = Array2::<i64>::zeros((ci * rk * sk, ko));
    for o in 0..ko {
        for c in 0..ci {
            for r in 0..rk {
                for s in 0..sk {
                    b[((c * rk + r) * sk + s, o)] = w[(o, c, r, s)];
                }
            }
        }
    }
    Ok(b)
}

/// conv2d golden model computed directly (no im2col), output `K_out × OH × OW`.
pub fn conv2d(
    r: &Resolved,
    conv: &Conv2d,
    x: &Array3<i64>,
    w: &Array4<i64>,
) -> Result<Array3<i64>> {
    let (oh, ow) = conv.out_hw()?;
    let mut y = Array3::<i64>::zeros((conv.c_out as usize, oh as usize, ow as usize));
    let (h, wd) = (conv.h as i64, conv.w as i64);
    for o in 0..conv.c_out as usize {
        for oy in 0..oh as i64 {
            for ox in 0..ow as i64 {
                let mut acc: i128 = 0;
                for c in 0..conv.c_in as usize {
                    for rr in 0..conv.kernel_h as i64 {
                        for ss in 0..conv.kernel_w as i64 {
                            let yy = oy * conv.stride as i64 + rr - conv.pad as i64;
                            let xx = ox * conv.stride as i64 + ss - conv.pad as i64;
                            if yy >= 0 && yy < h && xx >= 0 && xx < wd {
                                acc += i128::from(x[(c, yy as usize, xx as usize)])
                                    * i128::from(w[(o, c, rr as usize, ss as usize)]);
                            }
                        }
                    }
                }
                y[(o, oy as usize, ox as usize)] = requantize(r, acc << r.acc_shift);
            }
        }
    }
    Ok(y)
}

/// Packs up to `lanes` raw codes of `width` bits into one beat of `bits` bits.
fn pack(vals: &[i64], width: u32, bits: u32) -> Vec<u64> {
    let mut words = vec![0u64; bits.div_ceil(64) as usize];
    let mask: u128 = if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    for (l, &v) in vals.iter().enumerate() {
        let code = (v as i128 as u128) & mask;
        let bit = l as u32 * width;
        for b in 0..width {
            if (code >> b) & 1 == 1 {
                let pos = bit + b;
                words[(pos / 64) as usize] |= 1u64 << (pos % 64);
            }
        }
    }
    words
}

fn unpack(words: &[u64], lane: u32, width: u32, signed: bool) -> i64 {
    let mut v: u128 = 0;
    for b in 0..width {
        let pos = lane * width + b;
        let w = words.get((pos / 64) as usize).copied().unwrap_or(0);
        if (w >> (pos % 64)) & 1 == 1 {
            v |= 1u128 << b;
        }
    }
    if signed && width < 128 && (v >> (width - 1)) & 1 == 1 {
        (v as i128 - (1i128 << width)) as i64
    } else {
        v as i64
    }
}

/// Tile geometry: `(chunk start, chunk width)` for each chunk of N.
fn chunks(r: &Resolved, n: u32) -> Vec<(u32, u32)> {
    let nc = r.p.max_n_chunk;
    (0..n.div_ceil(nc))
        .map(|j| (j * nc, nc.min(n - j * nc)))
        .collect()
}

/// The input beats in stream order (see the module docs).
pub fn input_beats(r: &Resolved, g: &Gemm, a: &Array2<i64>, b: &Array2<i64>) -> Result<Vec<Beat>> {
    g.check(&r.p)?;
    if a.dim() != (g.m as usize, g.k as usize) || b.dim() != (g.k as usize, g.n as usize) {
        return Err(SystolicError::Data(format!(
            "operands are {:?} and {:?}, expected {}x{} and {}x{}",
            a.dim(),
            b.dim(),
            g.m,
            g.k,
            g.k,
            g.n
        )));
    }
    let sb = r.p.stream_bits;
    let (wa, wb) = (r.ta.width(), r.tb.width());
    let mut beats = Vec::new();
    if r.p.dataflow == Dataflow::Ws {
        ws_input_beats(r, g, a, b, &mut beats);
        if let Some(last) = beats.last_mut() {
            last.1 = true;
        }
        return Ok(beats);
    }
    for (n0, ncw) in chunks(r, g.n) {
        for t in 0..ncw.div_ceil(r.c) {
            let c0 = n0 + t * r.c;
            let cv = r.c.min(n0 + ncw - c0);
            for k in 0..g.k as usize {
                for bt in 0..cv.div_ceil(r.eb) {
                    let lanes: Vec<i64> = (bt * r.eb..((bt + 1) * r.eb).min(cv))
                        .map(|l| b[(k, (c0 + l) as usize)])
                        .collect();
                    beats.push((pack(&lanes, wb, sb), false));
                }
            }
        }
        for i in 0..g.m.div_ceil(r.r) {
            let r0 = i * r.r;
            let rv = r.r.min(g.m - r0);
            for k in 0..g.k as usize {
                for bt in 0..rv.div_ceil(r.ea) {
                    let lanes: Vec<i64> = (bt * r.ea..((bt + 1) * r.ea).min(rv))
                        .map(|l| a[((r0 + l) as usize, k)])
                        .collect();
                    beats.push((pack(&lanes, wa, sb), false));
                }
            }
        }
    }
    if let Some(last) = beats.last_mut() {
        last.1 = true;
    }
    Ok(beats)
}

/// Weight-stationary operand order (see the module docs).
fn ws_input_beats(r: &Resolved, g: &Gemm, a: &Array2<i64>, b: &Array2<i64>, out: &mut Vec<Beat>) {
    let sb = r.p.stream_bits;
    let (wa, wb) = (r.ta.width(), r.tb.width());
    let mb = r.ws_m_block;
    for (n0, ncw) in chunks(r, g.n) {
        for blk in 0..g.m.div_ceil(mb) {
            let m0 = blk * mb;
            let mv = mb.min(g.m - m0);
            for s in 0..g.k.div_ceil(r.r) {
                let k0 = s * r.r;
                let kv = r.r.min(g.k - k0);
                for t in 0..ncw.div_ceil(r.c) {
                    let c0 = n0 + t * r.c;
                    let cv = r.c.min(n0 + ncw - c0);
                    for i in 0..kv {
                        for bt in 0..cv.div_ceil(r.eb) {
                            let lanes: Vec<i64> = (bt * r.eb..((bt + 1) * r.eb).min(cv))
                                .map(|l| b[((k0 + i) as usize, (c0 + l) as usize)])
                                .collect();
                            out.push((pack(&lanes, wb, sb), false));
                        }
                    }
                }
                for row in 0..mv {
                    for bt in 0..kv.div_ceil(r.ea) {
                        let lanes: Vec<i64> = (bt * r.ea..((bt + 1) * r.ea).min(kv))
                            .map(|l| a[((m0 + row) as usize, (k0 + l) as usize)])
                            .collect();
                        out.push((pack(&lanes, wa, sb), false));
                    }
                }
            }
        }
    }
}

/// The output beats the accelerator must produce for result `c` (M×N raw output codes).
pub fn output_beats(r: &Resolved, g: &Gemm, c: &Array2<i64>) -> Vec<Beat> {
    let sb = r.p.stream_bits;
    let wo = r.tout.width();
    let mut beats = Vec::new();
    for (n0, ncw) in chunks(r, g.n) {
        for i in 0..g.m.div_ceil(r.r) {
            let r0 = i * r.r;
            let rv = r.r.min(g.m - r0);
            for t in 0..ncw.div_ceil(r.c) {
                let c0 = n0 + t * r.c;
                let cv = r.c.min(n0 + ncw - c0);
                for row in 0..rv {
                    for bt in 0..cv.div_ceil(r.eo) {
                        let lanes: Vec<i64> = (bt * r.eo..((bt + 1) * r.eo).min(cv))
                            .map(|l| c[((r0 + row) as usize, (c0 + l) as usize)])
                            .collect();
                        beats.push((pack(&lanes, wo, sb), false));
                    }
                }
            }
        }
    }
    if let Some(last) = beats.last_mut() {
        last.1 = true;
    }
    beats
}

/// Unpacks received output beats into the M×N result; errors on a wrong beat count.
pub fn unpack_output(r: &Resolved, g: &Gemm, beats: &[Beat]) -> Result<Array2<i64>> {
    let wo = r.tout.width();
    let signed = r.tout.is_signed();
    let mut c = Array2::<i64>::zeros((g.m as usize, g.n as usize));
    let mut it = beats.iter();
    for (n0, ncw) in chunks(r, g.n) {
        for i in 0..g.m.div_ceil(r.r) {
            let r0 = i * r.r;
            let rv = r.r.min(g.m - r0);
            for t in 0..ncw.div_ceil(r.c) {
                let c0 = n0 + t * r.c;
                let cv = r.c.min(n0 + ncw - c0);
                for row in 0..rv {
                    for bt in 0..cv.div_ceil(r.eo) {
                        let (words, _) = it.next().ok_or_else(|| {
                            SystolicError::Data(format!(
                                "output ended early after {} beats",
                                beats.len()
                            ))
                        })?;
                        for l in bt * r.eo..((bt + 1) * r.eo).min(cv) {
                            c[((r0 + row) as usize, (c0 + l) as usize)] =
                                unpack(words, l - bt * r.eo, wo, signed);
                        }
                    }
                }
            }
        }
    }
    Ok(c)
}
