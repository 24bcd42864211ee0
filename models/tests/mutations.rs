//! Hostile model files: every fixture with single bytes changed and with truncations, thousands
//! of them. A mutated protobuf often still parses and then says something odd (a dimension of
//! 2^40, an initializer shorter than its shape, a zero stride, a Reshape that does not fit);
//! loading must then return an error — never panic, never allocate without bound, never hang —
//! and a model that does load must run one input without panicking.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn mutated_models_load_or_fail_cleanly() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let (mut loaded, mut refused, mut panics) = (0, 0, Vec::new());
    for name in &names {
        let original = std::fs::read(fixtures().join(name)).expect("fixture");
        for case in 0..400 {
            let mut bytes = original.clone();
            match case % 4 {
                // One byte anywhere.
                0 | 1 => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = rng.random();
                }
                // A varint-looking byte set to a large value (dimensions, attributes).
                2 => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] |= 0x80;
                }
                // Truncated.
                _ => bytes.truncate(rng.random_range(0..bytes.len())),
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                accelforge_models::load(&bytes, None).map(|net| {
                    let x = vec![1.0f32; net.input_len().min(1 << 20)];
                    let _ = net.run(&x);
                })
            }));
            match outcome {
                Ok(Ok(())) => loaded += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panics.push((name.clone(), case)),
            }
        }
    }
    eprintln!("{loaded} mutated models loaded and ran, {refused} refused");
    assert!(
        panics.is_empty(),
        "{} mutations panicked, first (fixture, case): {:?}",
        panics.len(),
        &panics[..panics.len().min(10)]
    );
}
