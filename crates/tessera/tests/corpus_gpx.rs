//! Every GPX file of the shared corpus (`../shared/corpus/gpx`, when present): no panic, every
//! `<trkpt>` accounted for as a fix or a rejection with its line.

#[path = "support/corpus.rs"]
mod support;

use std::path::PathBuf;
use tessera::ingest::{self, Format, Reason};

fn gpx_files() -> Vec<PathBuf> {
    let Some(root) = support::corpus("gpx") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sub in ["georust-gpx", "gpxpy"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        out.extend(
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "gpx")),
        );
    }
    out.sort();
    out
}

#[test]
fn every_corpus_gpx_point_is_a_fix_or_a_rejection_with_its_line() {
    let files = gpx_files();
    if files.is_empty() {
        return;
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(Format::detect(&bytes), Format::Gpx, "{}", f.display());
        let p = ingest::parse(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let points = ["<trkpt", "<rtept", "<wpt"]
            .iter()
            .map(|t| text.matches(t).count() as u64)
            .sum::<u64>();
        assert!(p.lines.balanced(), "{}", f.display());
        if !p.rejections.iter().any(|r| r.reason == Reason::BadFile) {
            assert_eq!(p.lines.total, points, "{}", f.display());
        }
        for r in &p.rejections {
            let line = text.lines().nth(r.line as usize - 1).unwrap_or_default();
            assert!(
                ["<trkpt", "<rtept", "<wpt"].iter().any(|t| line.contains(t)) || r.reason == Reason::BadFile,
                "{}:{} {:?}",
                f.display(),
                r.line,
                r.reason
            );
        }
    }
}

#[test]
fn gpx_without_times_is_rejected_no_time_and_car_drive_is_accepted() {
    let files = gpx_files();
    let Some(no_times) = files.iter().find(|p| p.ends_with("cerknicko-without-times.gpx")) else {
        return;
    };
    let p = ingest::parse(&std::fs::read(no_times).unwrap());
    // 296 points, a handful of which still carry a <time>.
    assert!(p.fixes.len() <= 6, "{}", p.fixes.len());
    let track: Vec<_> = p
        .rejections
        .iter()
        .filter(|r| r.reason != Reason::NotTrackPoint)
        .collect();
    assert_eq!(track.len() + p.fixes.len(), 296);
    assert!(track.iter().all(|r| r.reason == Reason::NoTime));
    let car = files
        .iter()
        .find(|p| p.ends_with("around-visnjan-with-car.gpx"))
        .unwrap();
    let p = ingest::parse(&std::fs::read(car).unwrap());
    assert!(p.fixes.len() > 100, "{}", p.fixes.len());
    assert!(p.fixes.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
}
