//! The report renderer on its own: which kind of result a directory holds, what a report
//! writes, and the refusals (nothing to report, not a directory, a broken result file), which
//! leave no half-written report behind. The inputs under `tests/data/` are real outputs of
//! `accelforge map --json` and `accelforge sim --json`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use accelforge_reports::ReportError;
use accelforge_reports::render::{InputKind, detect, render};

fn data(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
}

#[test]
fn kinds_are_detected_from_the_files_present() {
    assert_eq!(detect(&data("map")).unwrap(), InputKind::Map);
    assert_eq!(detect(&data("sim")).unwrap(), InputKind::Sim);
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        detect(tmp.path()),
        Err(ReportError::NothingToReport(_))
    ));
    // A sweep wins when several results are present.
    std::fs::copy(data("map").join("map.json"), tmp.path().join("map.json")).unwrap();
    std::fs::write(tmp.path().join("results.jsonl"), "").unwrap();
    assert_eq!(detect(tmp.path()).unwrap(), InputKind::Sweep);
}

#[test]
fn map_and_sim_reports_write_a_page_and_their_charts() {
    for (kind, want) in [("map", InputKind::Map), ("sim", InputKind::Sim)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("report");
        let r = render(&data(kind), &out).unwrap();
        assert_eq!(r.kind, want);
        let page = std::fs::read_to_string(&r.html).unwrap();
        assert!(
            page.starts_with("<!DOCTYPE html>") || page.starts_with("<!doctype html>"),
            "{kind}"
        );
        assert!(!r.charts.is_empty(), "{kind}: no charts");
        for c in &r.charts {
            for f in [&c.png, &c.svg] {
                assert!(
                    std::fs::metadata(f).unwrap().len() > 0,
                    "{kind}: {}",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn refusals_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    // Not a directory.
    let e = render(&tmp.path().join("missing"), &out).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    assert!(!out.exists());
    // Nothing to report.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = render(&empty, &out).unwrap_err();
    assert!(matches!(e, ReportError::NothingToReport(_)), "{e}");
    assert!(!out.exists());
    // A broken result file: an error naming it, and no half report.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("map.json"), "{ not json").unwrap();
    let e = render(&broken, &out).unwrap_err();
    assert!(e.to_string().contains("map.json"), "{e}");
    assert!(!out.exists(), "a failed report leaves nothing behind");
}
