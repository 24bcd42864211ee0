//! Every sample vector produced by the real ap_fixed headers must convert bit for bit.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_templates::qfx::{Converter, QType};

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/apfixed_samples.txt"
);

#[test]
fn apfixed_sample_vectors_match_exactly() {
    let text = std::fs::read_to_string(SAMPLES)
        .unwrap_or_else(|e| panic!("reading {SAMPLES}: {e} (a copy of shared/reference/apfixed_samples.txt, made with the ap_fixed headers)"));
    let mut converter: Option<Converter> = None;
    let (mut blocks, mut vectors, mut mismatches) = (0usize, 0usize, Vec::new());
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('#') {
            let (src, dst) = header
                .split_once("->")
                .unwrap_or_else(|| panic!("line {}: bad header {line}", lineno + 1));
            let src: QType = src.trim().parse().expect("source type");
            let dst: QType = dst.trim().parse().expect("destination type");
            converter = Some(Converter::new(&src, &dst));
            blocks += 1;
            continue;
        }
        let conv = converter.as_ref().expect("vector before any header");
        let mut it = line
            .split_whitespace()
            .map(|t| t.parse::<i128>().expect("integer"));
        let (src_raw, want) = (it.next().expect("src"), it.next().expect("dst"));
        let got = conv.convert_raw(src_raw).expect("source raw in range");
        vectors += 1;
        if got != want {
            mismatches.push(format!(
                "line {}: {} -> {}: src {src_raw} want {want} got {got}",
                lineno + 1,
                conv.src(),
                conv.dst()
            ));
        }
    }
    println!(
        "{blocks} blocks, {vectors} vectors, {} mismatches",
        mismatches.len()
    );
    assert!(
        blocks >= 50 && vectors > 3000,
        "sample file looks truncated"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
