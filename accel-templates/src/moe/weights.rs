//! The MoE core's DDR weight image: which segments a weight request (`wreq_id`) fetches and how
//! they are packed, as the Zynq bundle's segment table ([`WeightFetch`]) describes them to the
//! DataMover wrapper and the PYNQ driver (`pack_weights`).
//!
//! The image holds the gate matrix (request id `experts`) and then experts `0..experts` (ids
//! `0..experts`), each expert its first layer (`d_ff x d_model`) then its second
//! (`d_model x d_ff`); every matrix is laid out as [`model::segment_beats`] streams it: tiles of
//! `lanes` rows, words of `simd` columns, `ddr_bytes_per_cycle` bytes per beat.

use accelforge_boards::{SegmentMatrix, WeightFetch, WeightLayout};

use super::model::{self, Segment};
use super::{MoeError, MoeParams, Result};

/// The segment request `id` fetches (`None` beyond the gate id `experts`).
pub fn segment(p: &MoeParams, id: u32) -> Option<Segment> {
    match id {
        _ if id == p.experts => Some(Segment::Gate),
        _ if id < p.experts => Some(Segment::Expert(id)),
        _ => None,
    }
}

/// The weight fetch of a MoE core: the segment table of the packed image at a `addr_bits`-bit
/// DDR address, for a core whose `wreq_id` is `id_bits` wide.
pub fn weight_fetch(p: &MoeParams, addr_bits: u32, id_bits: u32) -> WeightFetch {
    let mat = |array: &str, index: Option<u32>, rows: u32, cols: u32| SegmentMatrix {
        array: array.to_string(),
        index,
        rows,
        cols,
    };
    let mut segments = vec![(
        p.experts,
        "gate".to_string(),
        vec![mat("gate", None, p.experts, p.d_model)],
    )];
    for e in 0..p.experts {
        segments.push((
            e,
            format!("expert{e}"),
            vec![
                mat("w1", Some(e), p.d_ff, p.d_model),
                mat("w2", Some(e), p.d_model, p.d_ff),
            ],
        ));
    }
    WeightFetch::packed(
        p.ddr_bytes_per_cycle * 8,
        addr_bits,
        id_bits,
        WeightLayout {
            lanes: p.lanes,
            simd: p.simd,
            elem_bits: p.types.weight.width(),
            elem_bytes: p.weight_bytes(),
        },
        segments,
    )
}

/// The packed image of `data`: every segment of `fetch` at its offset, its beats as
/// [`model::segment_beats`] streams them (little-endian, `ddr_bytes_per_cycle` bytes each).
/// `fetch` must be [`weight_fetch`] of `p` (a segment id or size that does not match is an
/// error).
pub fn image(p: &MoeParams, data: &model::MoeData, fetch: &WeightFetch) -> Result<Vec<u8>> {
    let too_big = |what: u64| MoeError::Data(format!("weight image of {what} bytes is too large"));
    let len = fetch.image_bytes();
    let mut img = vec![0u8; usize::try_from(len).map_err(|_| too_big(len))?];
    let b = p.ddr_bytes_per_cycle as usize;
    for s in &fetch.segments {
        let seg = segment(p, s.id).ok_or_else(|| {
            MoeError::Data(format!(
                "weight segment {} has id {}, beyond the gate id {}",
                s.name, s.id, p.experts
            ))
        })?;
        let beats = model::segment_beats(p, data, seg);
        let at = usize::try_from(s.offset).map_err(|_| too_big(s.offset))?;
        let dst = img
            .get_mut(at..at + beats.len() * b)
            .filter(|_| (beats.len() * b) as u64 == s.bytes)
            .ok_or_else(|| {
                MoeError::Data(format!(
                    "weight segment {} ({} bytes at {}) does not hold its {} beats of {b} bytes",
                    s.name,
                    s.bytes,
                    s.offset,
                    beats.len()
                ))
            })?;
        for (beat, out) in beats.iter().zip(dst.chunks_exact_mut(b)) {
            let bytes: Vec<u8> = beat.iter().flat_map(|w| w.to_le_bytes()).collect();
            out.copy_from_slice(&bytes[..b]);
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_holds_every_segment_beat_at_its_offset() {
        let p = MoeParams::default();
        let data = model::MoeData::random(&p, 3, 0.0).unwrap();
        let fetch = weight_fetch(&p, 32, 3);
        let img = image(&p, &data, &fetch).unwrap();
        assert_eq!(img.len() as u64, fetch.image_bytes());
        // The gate segment comes first, then the experts in order.
        let ids: Vec<u32> = fetch.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![4, 0, 1, 2, 3]);
        let b = p.ddr_bytes_per_cycle as usize;
        let e2 = &fetch.segments[3];
        let first = model::segment_beats(&p, &data, Segment::Expert(2))[0][0].to_le_bytes();
        assert_eq!(img[e2.offset as usize..][..b], first[..b]);
    }

    #[test]
    fn image_refuses_a_segment_table_of_other_params() {
        let p = MoeParams::default();
        let data = model::MoeData::random(&p, 3, 0.0).unwrap();
        // A table of 8 experts names ids the 4-expert core does not have.
        let wider = MoeParams {
            experts: 8,
            ..MoeParams::default()
        };
        let e = image(&p, &data, &weight_fetch(&wider, 32, 4))
            .unwrap_err()
            .to_string();
        assert!(e.contains("beyond the gate id 4"), "{e}");
        // A wider expert layer: segments the beats do not fill.
        let wide_ff = MoeParams {
            d_ff: 64,
            ..MoeParams::default()
        };
        let e = image(&p, &data, &weight_fetch(&wide_ff, 32, 3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not hold its"), "{e}");
    }
}
