//! Every building block, over a range of parameters, lints clean under `verilator -Wall`, parses
//! in Icarus and synthesises in Yosys for both families.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::Design;
use accelforge_hdl::blocks::{fifo, mac_grid, pipeline, ram, skid};
use accelforge_hdl::tools::{self, DesignFiles, Family};
use rayon::prelude::*;

fn designs() -> Vec<Design> {
    let mut v = Vec::new();
    for (width, depth) in [(1, 1), (8, 3), (33, 2), (64, 5)] {
        v.push(pipeline::design(&pipeline::PipelineParams { width, depth }).unwrap());
    }
    for (width, depth) in [(1, 2), (8, 4), (12, 5), (32, 16), (70, 7)] {
        v.push(fifo::design(&fifo::FifoParams { width, depth }).unwrap());
    }
    for (width, depth, kind, style) in [
        (8, 16, ram::RamKind::SinglePort, ram::RamStyle::Auto),
        (16, 100, ram::RamKind::DualPort, ram::RamStyle::Distributed),
        (32, 1024, ram::RamKind::DualPort, ram::RamStyle::Block),
        (18, 512, ram::RamKind::SinglePort, ram::RamStyle::Block),
    ] {
        v.push(
            ram::design(&ram::RamParams {
                width,
                depth,
                kind,
                style,
            })
            .unwrap(),
        );
    }
    for (width, tlast) in [(1, false), (8, true), (64, false), (130, true)] {
        v.push(skid::design(&skid::SkidParams { width, tlast }).unwrap());
    }
    for (rows, cols) in [(1, 1), (3, 2), (16, 16)] {
        v.push(mac_grid::design(&mac_grid::MacGridParams { rows, cols }).unwrap());
    }
    v
}

#[test]
fn blocks_lint_clean_and_parse_in_icarus() {
    if !accelforge_test_support::tool_available("verilator")
        || !accelforge_test_support::tool_available("iverilog")
    {
        return;
    }
    for d in designs() {
        let files = DesignFiles::new(&d).unwrap();
        let report = tools::lint(&files.paths, Some(d.top_name())).unwrap();
        assert!(
            report.is_clean(),
            "{}: {:#?}\n{}",
            d.top_name(),
            report.diagnostics,
            d.files()[0].1
        );
        tools::parse_check(&files.paths, Some(d.top_name()))
            .unwrap_or_else(|e| panic!("{}: {e}", d.top_name()));
    }
}

#[test]
fn blocks_synthesise_for_both_families() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    // Two or more parameter sets per block (Yosys is the slow part, so a subset of the lint set),
    // each for both families, spread over the cores.
    let picked = [0usize, 2, 5, 7, 10, 11, 13, 15];
    let all = designs();
    let jobs: Vec<(&Design, Family)> = picked
        .iter()
        .flat_map(|&i| [(&all[i], Family::Xc7), (&all[i], Family::Xcup)])
        .collect();
    jobs.par_iter().for_each(|(d, family)| {
        let files = DesignFiles::new(d).unwrap();
        let r = tools::synth(&files.paths, d.top_name(), *family)
            .unwrap_or_else(|e| panic!("{} {family}: {e}", d.top_name()));
        assert!(
            r.ff + r.bram18 + r.bram36 + r.lut > 0,
            "{} {family}: empty netlist {r:?}",
            d.top_name()
        );
        assert_eq!(r.dsp, 0, "{}: no block multiplies", d.top_name());
    });
}

#[test]
fn block_ram_infers_bram_not_luts() {
    if !accelforge_test_support::tool_available("yosys") {
        return;
    }
    let p = ram::RamParams {
        width: 32,
        depth: 1024,
        kind: ram::RamKind::DualPort,
        style: ram::RamStyle::Block,
    };
    let d = ram::design(&p).unwrap();
    let files = DesignFiles::new(&d).unwrap();
    let r = tools::synth(&files.paths, d.top_name(), Family::Xc7).unwrap();
    // 32 Kib of storage is exactly one RAMB36E1 (or two RAMB18E1).
    assert_eq!(r.bram18_equivalent(), 2, "{r:?}");
    assert!(r.lut < 20, "storage must not be in LUTs: {r:?}");
}
