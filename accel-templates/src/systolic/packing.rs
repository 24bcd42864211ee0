//! DSP packing: several products that share one operand computed by one DSP48 multiply.
//!
//! Adjacent columns of the array see the same activation `a`. Their weights `w_0 … w_{n−1}`
//! (each `wb` bits, signed) are packed into one operand `W = Σ w_i·2^(i·s)` with `s` the signed
//! width that holds every product (`wa + wb`, or one less with an unsigned operand), and
//! multiplied once: `P = a·W = Σ (a·w_i)·2^(i·s)`. Each product
//! fits `s` signed bits, so the lowest one is the sign-extended low `s` bits of `P`, and
//! removing it leaves the rest shifted by `s`:
//!
//! ```text
//! p_0 = sext(P[s−1:0])        P' = (P − p_0) >> s = (P >>> s) + P[s−1]
//! ```
//!
//! `P[s−1]` is the sign correction: a negative lower product borrowed one from the upper ones.
//! The products are separated every cycle and accumulated in fabric, one accumulator per
//! column, so the sums are exactly those of one-product-per-DSP PEs for any K (no guard bits
//! inside the DSP's accumulator, which is what limits in-DSP accumulation to a few terms).
//!
//! The packed operand needs `(n − 1)·s + wb + 1` signed bits: one more than its top weight's
//! place, because the lower weights may push a most-negative top weight below
//! `−2^((n−1)·s + wb − 1)`. It must fit the DSP48E1's 25-bit multiplier port (the DSP48E2's
//! is 27 bits; packing to 25 keeps one RTL for both families) and the activation its 18-bit
//! port: int8 × int8 packs two products per DSP (s = 16, a 25-bit operand), int4 three
//! (s = 8, 21 bits), int2 six.

/// Width of the DSP48E1 multiplier's wide port (A, after the pre-adder): 25 bits signed.
pub const DSP_WIDE_BITS: u32 = 25;
/// Width of the DSP48 multiplier's narrow port (B): 18 bits signed.
pub const DSP_NARROW_BITS: u32 = 18;

/// Products per DSP for activations of `wa` and weights of `wb` signed bits (unsigned types
/// counted with their zero sign bit) whose products all fit `s` signed bits (the spacing;
/// `Resolved::product_bits`), or why they cannot be packed.
pub fn group_size(s: u32, wa: u32, wb: u32) -> Result<u32, String> {
    if wa > DSP_NARROW_BITS || wb >= DSP_WIDE_BITS {
        return Err(format!(
            "pe dsp-packed needs activations of at most {DSP_NARROW_BITS} bits and weights of at \
             most {} (got {wa} and {wb} signed bits); use pe dsp",
            DSP_WIDE_BITS - 1
        ));
    }
    let n = (DSP_WIDE_BITS - wb - 1) / s + 1;
    if n < 2 {
        return Err(format!(
            "pe dsp-packed cannot fit two products in one DSP multiply: products of a {wa}-bit \
             activation and a {wb}-bit weight need {s} bits, and two need a {}-bit operand on \
             the {DSP_WIDE_BITS}-bit port (8-bit x 8-bit, signed or unsigned activations, is \
             the widest pair); use pe dsp or narrower types",
            s + wb + 1
        ));
    }
    Ok(n)
}

/// Width of the packed operand of `n` weights of `wb` bits spaced `s` apart.
pub fn packed_bits(n: u32, s: u32, wb: u32) -> u32 {
    if n == 1 { wb } else { (n - 1) * s + wb + 1 }
}

/// The column groups that share a DSP: `(first column, columns)` for `cols` columns in groups
/// of `pack` (the last one smaller when `pack` does not divide `cols`).
pub fn groups(cols: u32, pack: u32) -> Vec<(u32, u32)> {
    let pack = pack.max(1);
    (0..cols.div_ceil(pack))
        .map(|q| {
            let first = q * pack;
            (first, pack.min(cols - first))
        })
        .collect()
}

/// Two's-complement wrap of `x` to `bits` bits, as a Verilog wire of that width holds it.
fn wrap(x: i128, bits: u32) -> i128 {
    let m = 1i128 << bits;
    let v = x.rem_euclid(m);
    if v >= m / 2 { v - m } else { v }
}

/// The packed operand `Σ w_i·2^(i·s)` as the RTL's wire of [`packed_bits`] holds it.
pub fn pack(weights: &[i64], s: u32, wb: u32) -> i128 {
    let sum = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| i128::from(w) << (i as u32 * s))
        .sum();
    wrap(sum, packed_bits(weights.len() as u32, s, wb))
}

/// The `n` products of `a` times a packed operand, computed as the RTL does: one product
/// wire of `wa + packed_bits` bits, then the low `s` bits sign-extended and the rest shifted
/// down with the sign correction, each remainder in its own narrower wire.
pub fn separate(a: i64, packed: i128, (n, s): (u32, u32), (wa, wb): (u32, u32)) -> Vec<i64> {
    let mut width = wa + packed_bits(n, s, wb);
    let mut rest = wrap(i128::from(a) * packed, width);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        if i + 1 == n {
            // The RTL keeps the top product's `s` bits (it is exact there).
            out.push(wrap(rest, s) as i64);
            break;
        }
        out.push(wrap(rest, s) as i64);
        width -= s;
        rest = wrap((rest >> s) + ((rest >> (s - 1)) & 1), width);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_sizes_follow_the_port_width() {
        assert_eq!(group_size(16, 8, 8), Ok(2));
        // uint8 activations are 9 signed bits, but their products with int8 fit 16.
        assert_eq!(group_size(16, 9, 8), Ok(2));
        assert_eq!(group_size(8, 4, 4), Ok(3));
        assert_eq!(group_size(4, 2, 2), Ok(6));
        assert_eq!(group_size(12, 8, 4), Ok(2));
        let e = group_size(17, 9, 9).unwrap_err();
        assert!(e.contains("27-bit operand") && e.contains("pe dsp"), "{e}");
        assert!(group_size(24, 16, 8).unwrap_err().contains("need 24 bits"));
        assert!(group_size(24, 20, 4).unwrap_err().contains("at most 18"));
        assert_eq!(groups(5, 2), vec![(0, 2), (2, 2), (4, 1)]);
        assert_eq!(groups(8, 3), vec![(0, 3), (3, 3), (6, 2)]);
        assert_eq!(packed_bits(2, 16, 8), 25);
        assert_eq!(packed_bits(1, 16, 8), 8);
    }

    /// The model wraps like the RTL's wires: one bit less for the packed operand breaks the
    /// most negative top weight under a negative lower one (the bug this width fixes).
    #[test]
    fn the_packed_operand_needs_its_extra_bit() {
        let sum = i128::from(-128i64 << 16) - 1;
        assert_eq!(pack(&[-1, -128], 16, 8), sum);
        assert_ne!(wrap(sum, 24), sum);
    }

    /// Every int8 activation against every pair of int8 weights: 2^24 packed products.
    #[test]
    fn int8_pairs_separate_exactly_for_every_operand() {
        for a in -128i64..=127 {
            for w0 in -128i64..=127 {
                for w1 in -128i64..=127 {
                    let p = pack(&[w0, w1], 16, 8);
                    assert_eq!(
                        separate(a, p, (2, 16), (8, 8)),
                        [a * w0, a * w1],
                        "a={a} w=({w0},{w1})"
                    );
                }
            }
        }
    }

    /// Every uint8 activation (a 9-bit signed lane) against every pair of int8 weights, spaced
    /// 16 bits apart: the products fit 16 bits although the operands take 17.
    #[test]
    fn uint8_activations_pack_with_16_bit_spacing() {
        for a in 0i64..=255 {
            for w0 in -128i64..=127 {
                for w1 in -128i64..=127 {
                    let p = pack(&[w0, w1], 16, 8);
                    assert_eq!(separate(a, p, (2, 16), (9, 8)), [a * w0, a * w1]);
                }
            }
        }
    }

    /// Every int4 activation against every triple of int4 weights (and its pairs, the group
    /// left over at the array's edge), and int2 groups of six on every activation.
    #[test]
    fn narrower_groups_separate_exactly() {
        for a in -8i64..=7 {
            for w in 0..16 * 16 * 16 {
                let ws = [(w & 15) - 8, ((w >> 4) & 15) - 8, ((w >> 8) & 15) - 8];
                let want: Vec<i64> = ws.iter().map(|x| a * x).collect();
                assert_eq!(separate(a, pack(&ws, 8, 4), (3, 8), (4, 4)), want);
                assert_eq!(separate(a, pack(&ws[..2], 8, 4), (2, 8), (4, 4)), want[..2]);
            }
        }
        for a in -2i64..=1 {
            for w in 0..4096i64 {
                let ws: Vec<i64> = (0..6).map(|i| ((w >> (2 * i)) & 3) - 2).collect();
                let want: Vec<i64> = ws.iter().map(|x| a * x).collect();
                assert_eq!(separate(a, pack(&ws, 4, 2), (6, 4), (2, 2)), want);
            }
        }
    }
}
