//! Bad models: one clear error naming the problem.

use std::path::PathBuf;

use accelforge_models::{ModelError, load};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

#[test]
fn broken_protobuf() {
    for bytes in [
        b"this is not an onnx file".to_vec(),
        read("mlp_w8a8_pow2.onnx")[..5000].to_vec(),
    ] {
        let err = load(&bytes, None).expect_err("broken protobuf");
        assert!(matches!(err, ModelError::Protobuf(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot read the model: not a valid ONNX protobuf ("),
            "{err}"
        );
    }
    let err = load(&[], None).expect_err("empty file").to_string();
    assert_eq!(
        err,
        "cannot read the model: not a valid ONNX protobuf (the model has no graph)"
    );
}

#[test]
fn unknown_op_names_node_op_and_supported_ops() {
    let err = load(&read("err_unknown_op.onnx"), None)
        .expect_err("Elu")
        .to_string();
    assert_eq!(
        err,
        format!(
            "node `Relu_42`: op `Elu` is not supported; supported ops: {}",
            accelforge_models::SUPPORTED_OPS
        )
    );
}

#[test]
fn softmax_only_at_the_end() {
    let err = load(&read("err_softmax_middle.onnx"), None)
        .expect_err("Softmax in the middle")
        .to_string();
    assert!(
        err.contains("Softmax is supported only as the graph's last node"),
        "{err}"
    );
    // At the end it loads, and the outputs of one input sum to one.
    let net = load(&read("mlp_w8a8_pow2_softmax.onnx"), None).unwrap();
    assert!(net.softmax);
    let y = net.run(&vec![3.0; net.input_len()]).unwrap();
    assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{y:?}");
}

#[test]
fn dynamic_shape() {
    let err = load(&read("err_dynamic.onnx"), None)
        .expect_err("dynamic")
        .to_string();
    assert_eq!(
        err,
        "the input `global_in` has a dynamic size on axis 2 (`H`); only the batch axis (0) may be dynamic"
    );
}

#[test]
fn flatten_axis_out_of_range() {
    let err = load(&read("err_flatten_axis.onnx"), None)
        .expect_err("axis 7")
        .to_string();
    assert_eq!(
        err,
        "node `Flatten_34` (Flatten): axis 7 is out of range for rank 4"
    );
}

#[test]
fn activation_quantizer_too_wide() {
    let err = load(&read("err_wide_activation.onnx"), None)
        .expect_err("20 bit")
        .to_string();
    assert_eq!(
        err,
        "node `Quant_47` (Quant): an activation quantizer with 1048576 levels is not supported (at most 65536, 16 bits)"
    );
}

/// Corrupted files (bytes overwritten, truncated) are an error or a model, never a panic; a
/// model that loads also runs without panicking.
#[test]
fn corrupted_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    for name in [
        "mlp_w8a8_pow2.onnx",
        "cnn_w8a8_float.onnx",
        "cnn_int8_qcdq.onnx",
    ] {
        let good = read(name);
        for _ in 0..400 {
            let mut b = good.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            if rng.random_bool(0.2) {
                b.truncate(rng.random_range(0..b.len()));
            }
            let r = std::panic::catch_unwind(|| {
                if let Ok(net) = load(&b, None) {
                    let x = vec![1.0f32; net.input_len()];
                    let _ = net.run(&x);
                }
            });
            assert!(r.is_ok(), "{name}: a corrupted file panicked");
        }
    }
}
