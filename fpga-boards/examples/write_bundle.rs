//! Writes a demo Zynq bundle: `cargo run -p accelforge-boards --example write_bundle -- BOARD DIR`.

use accelforge_boards::{
    AccelInterface, BoardDb, BundleOptions, BundleSpec, SourceFile, write_bundle,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(board), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: write_bundle BOARD DIR".into());
    };
    let db = BoardDb::load(None)?;
    let board = db.get(&board)?;
    let accel = AccelInterface::with_sequential_args(
        "af_demo_top",
        64,
        32,
        &[
            ("rows", 16, "number of input rows"),
            ("shift", 5, "output right shift"),
        ],
        board.default_clock_mhz(),
        1 << 20,
    );
    let manifest = write_bundle(
        std::path::Path::new(&dir),
        &BundleSpec {
            board,
            accel: &accel,
            sources: vec![SourceFile {
                name: "af_demo_top.v".into(),
                contents: "// the generated wrapper goes here\n".into(),
            }],
            template_params: serde_json::json!({ "demo": true }),
            estimate: None,
            options: BundleOptions::default(),
        },
    )?;
    for f in &manifest.files {
        println!("{}", f.path);
    }
    Ok(())
}
