//! Rust types for the ONNX protobuf messages, generated at build time from the checked-in
//! `proto/onnx.proto` by protobuf-codegen's pure-Rust parser (no system `protoc` needed).

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .input("proto/onnx.proto")
        .cargo_out_dir("onnx_proto")
        .run_from_script();
}
