//! What crosses the kernel's AXI streams: random operands, the input beats in the order the
//! core takes them and the output beats it returns.
//!
//! Per head, per block of `query_lanes` queries (the last block may be short): the block's Q
//! rows, then for every key `j` in order its K row and its V row. Every row is `head_dim /
//! simd` beats of `simd` elements, element `e` of a beat in slot `e` (a power-of-two number of
//! bytes, two's complement in the low bits). The outputs come back per head, per block, per
//! query, in the same beat shape, each element sign-extended to its slot.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Result;
use super::golden;
use super::params::{Resolved, slot_bytes};
use crate::template::drive::pack_slots;

/// Raw Q, K and V (`tokens × head_dim`) of every head.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionData {
    /// Per head: (Q, K, V).
    pub heads: Vec<[Array2<i64>; 3]>,
}

impl AttentionData {
    /// Uniform random operands over the Q/K/V type, scaled by `spread` in (0, 1].
    pub fn random(r: &Resolved, seed: u64, spread: f64) -> AttentionData {
        let (t, d) = (r.p.tokens as usize, r.p.head_dim as usize);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (lo, hi) = (r.tqkv.min_raw() as f64, r.tqkv.max_raw() as f64);
        let mut draw = || {
            Array2::from_shape_fn((t, d), |_| {
                (rng.random_range(lo..=hi) * spread).round() as i64
            })
        };
        let heads = (0..r.p.heads).map(|_| [draw(), draw(), draw()]).collect();
        AttentionData { heads }
    }

    /// Operands at the corners of the type: every element the minimum, zero or the maximum
    /// (scores saturate, products and sums reach their largest magnitudes).
    pub fn extreme(r: &Resolved, seed: u64) -> AttentionData {
        let (t, d) = (r.p.tokens as usize, r.p.head_dim as usize);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let corners = [r.tqkv.min_raw() as i64, 0, r.tqkv.max_raw() as i64];
        let mut draw = || Array2::from_shape_fn((t, d), |_| corners[rng.random_range(0..3)]);
        let heads = (0..r.p.heads).map(|_| [draw(), draw(), draw()]).collect();
        AttentionData { heads }
    }

    /// The golden outputs of every head.
    pub fn golden(&self, r: &Resolved) -> Result<Vec<Array2<i64>>> {
        self.heads
            .iter()
            .map(|[q, k, v]| golden::head(r, q.view(), k.view(), v.view()))
            .collect()
    }
}

/// The rows of `x` from `rows` as beats.
fn row_beats(r: &Resolved, x: &Array2<i64>, row: usize, out: &mut Vec<Vec<u64>>) {
    let simd = r.p.simd as usize;
    let slot = slot_bytes(r.tqkv.width()) * 8;
    let line = x.row(row);
    for chunk in line.as_slice().expect("standard layout").chunks(simd) {
        out.push(pack_slots(chunk, r.tqkv.width(), slot, false));
    }
}

/// Query blocks of a head: (first query, queries).
pub fn blocks(r: &Resolved) -> impl Iterator<Item = (u32, u32)> + '_ {
    (0..r.p.tokens)
        .step_by(r.p.query_lanes as usize)
        .map(|q0| (q0, r.p.query_lanes.min(r.p.tokens - q0)))
}

/// Every input beat of one command, in order.
pub fn input_beats(r: &Resolved, data: &AttentionData) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    for [q, k, v] in &data.heads {
        for (q0, nq) in blocks(r) {
            for i in q0..q0 + nq {
                row_beats(r, q, i as usize, &mut out);
            }
            for j in 0..r.p.tokens as usize {
                row_beats(r, k, j, &mut out);
                row_beats(r, v, j, &mut out);
            }
        }
    }
    out
}

/// Every output beat of one command, in order (one 64-bit word per beat when the beat is at
/// most 64 bits, else little-endian words).
pub fn output_beats(r: &Resolved, outs: &[Array2<i64>]) -> Vec<Vec<u64>> {
    let simd = r.p.simd as usize;
    let slot = slot_bytes(r.tout.width()) * 8;
    let mut beats = Vec::new();
    for o in outs {
        for i in 0..r.p.tokens as usize {
            let row = o.row(i);
            for chunk in row.as_slice().expect("standard layout").chunks(simd) {
                beats.push(pack_slots(chunk, r.tout.width(), slot, true));
            }
        }
    }
    beats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::AttentionParams;

    #[test]
    fn beats_pack_slots_little_endian() {
        // Two 8-bit elements in 8-bit slots; a negative one keeps only its low bits on input
        // and is sign-extended on output.
        assert_eq!(pack_slots(&[1, -1], 8, 8, false), vec![0xff01]);
        assert_eq!(pack_slots(&[-2], 12, 16, true), vec![0xfffe]);
        assert_eq!(pack_slots(&[-2], 12, 16, false), vec![0x0ffe]);
        // A slot straddling two words.
        let w = pack_slots(&[0, 0, 0, -1, 0], 16, 16, true);
        assert_eq!(w, vec![0xffff_0000_0000_0000, 0]);
    }

    #[test]
    fn input_order_is_q_block_then_k_and_v_per_key() {
        let r = AttentionParams {
            head_dim: 4,
            heads: 2,
            tokens: 5,
            query_lanes: 2,
            simd: 2,
            ..AttentionParams::default()
        }
        .resolve()
        .unwrap();
        let data = AttentionData::random(&r, 1, 1.0);
        let beats = input_beats(&r, &data);
        // Per head: 3 blocks (2, 2, 1 queries); each Q row 2 beats, each key 4 beats.
        let per_head = (2 + 2 + 1) * 2 + 3 * 5 * 4;
        assert_eq!(beats.len(), 2 * per_head);
        assert_eq!(blocks(&r).collect::<Vec<_>>(), vec![(0, 2), (2, 2), (4, 1)]);
    }
}
