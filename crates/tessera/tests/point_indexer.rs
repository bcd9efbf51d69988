//! `cells::PointIndexer` against h3o on real and simulated traces: every fix of every NMEA log of
//! the shared corpus and of a simulated fleet, in trace order, gets exactly h3o's cell at every
//! resolution, and two consecutive cells it calls adjacent are at h3o grid distance 1.

#[path = "support/corpus.rs"]
mod support;

use h3o::{LatLng, Resolution};
use proptest::prelude::*;
use tessera::cells::PointIndexer;

/// Index a trace at every resolution, checking each cell and each adjacency against h3o; the
/// number of adjacent pairs seen.
fn check_trace(points: &[(f64, f64)], what: &str) -> usize {
    let mut adjacent = 0;
    for res in Resolution::range(Resolution::Zero, Resolution::Fifteen) {
        let mut ix = PointIndexer::default();
        let mut prev = None;
        for &(lat, lon) in points {
            let Ok(ll) = LatLng::new(lat, lon) else { continue };
            let (c, hex) = ix.to_cell_hex(ll, res);
            assert_eq!(c, ll.to_cell(res), "{what}: {lat} {lon} at {res}");
            if let (Some((pc, Some(ph))), Some(h)) = (prev, hex)
                && tessera::cells::Hex::adjacent(ph, h)
            {
                assert_eq!(h3o::CellIndex::grid_distance(pc, c), Ok(1), "{what}: {pc} → {c}");
                adjacent += 1;
            }
            prev = Some((c, hex));
        }
    }
    adjacent
}

#[test]
fn rule_point_indexer_equals_h3o_on_every_corpus_nmea_fix() {
    let Some(root) = support::corpus("nmea") else { return };
    let (mut fixes, mut adjacent) = (0, 0);
    for dir in ["gpsd", "other"] {
        let mut logs: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        logs.sort();
        for log in logs {
            let parsed = tessera::ingest::parse(&std::fs::read(&log).unwrap());
            let points: Vec<(f64, f64)> = parsed.fixes.iter().map(|f| (f.lat, f.lon)).collect();
            fixes += points.len();
            adjacent += check_trace(&points, &log.display().to_string());
        }
    }
    assert!(
        fixes > 2_000 && adjacent > 0,
        "{fixes} fixes, {adjacent} adjacent pairs"
    );
}

#[test]
fn rule_point_indexer_equals_h3o_on_a_simulated_fleet() {
    let cfg = tessera::simulate::ScaleConfig::for_fixes(200_000, 11);
    let mut adjacent = 0;
    for d in 0..cfg.drivers {
        let points: Vec<(f64, f64)> = cfg.driver_fixes(d).iter().map(|f| (f.lat, f.lon)).collect();
        adjacent += check_trace(&points, &cfg.device(d));
    }
    assert!(adjacent > 100_000, "{adjacent}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any start on the globe, any step size from 1e-9° to 1°, any heading.
    #[test]
    fn prop_point_indexer_equals_h3o_on_any_walk(
        lat in -89.9f64..89.9,
        lon in -180.0f64..180.0,
        step_exp in -9.0f64..0.0,
        heading in 0.0f64..std::f64::consts::TAU,
    ) {
        let step = 10f64.powf(step_exp);
        let points: Vec<(f64, f64)> = (0..20)
            .map(|i| {
                let t = f64::from(i) * step;
                ((lat + t * heading.cos()).clamp(-90.0, 90.0), (lon + t * heading.sin() + 540.0).rem_euclid(360.0) - 180.0)
            })
            .collect();
        check_trace(&points, "walk");
    }
}
