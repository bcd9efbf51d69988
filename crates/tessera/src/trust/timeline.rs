//! One timeline per device, across all its sources in the epoch.
//!
//! - `two_places`: two sources of the device overlapping in time, further apart than
//!   `trust.timeline.max_apart_m` at the same instant: both segments are withheld for the device
//!   (which recording is real cannot be told; two recordings of one drive agree and are fine).
//! - `impossible_bridge`: between consecutive segments (of one source or of two), the gap is
//!   bridged faster than `trust.timeline.max_bridge_kmh` on average: the journeys on both sides
//!   (segments chained by gaps up to `trust.timeline.journey_gap_s`) are withheld. Hopping
//!   between cities with every step under the teleport limit does not pay, and neither does a
//!   trace that jumps mid-drive.
//!
//! - `clock_overlap`: after a backward clock step (`quality::clean` restarts the trace where the
//!   position goes on, `trust.time.clock_step_m`), a source's later fixes claim times its
//!   earlier fixes already covered. Where the two recordings are further apart than
//!   `trust.timeline.max_apart_m` at the same claimed instant, the overlapping window is withheld
//!   for the device: which fixes were recorded when cannot be told, and one device is paid for
//!   one place at a time (a step followed by a jump elsewhere would otherwise put a second car's
//!   drive into one file). Not evidence of cheating (a faulty clock does this too); recordings
//!   that agree (a parked car) are fine.
//!
//! A backward clock step is never a bridge between the two sides.

use super::policy::TrustKernels;
use super::{Detector, Effect, Finding, Trace};

/// One covered segment of the device: which source (index chosen by the caller) and its trace.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The source, as the caller numbers them.
    pub source: usize,
    /// The segment's position in its source (file order).
    pub seg: u32,
    /// The segment's covered trace.
    pub trace: &'a Trace,
}

/// A finding that withholds a window of the device's time, attached to a source.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFinding {
    /// The source the finding is attached to.
    pub source: usize,
    /// The evidence (its `start_ms..=end_ms` is the window withheld).
    pub finding: Finding,
}

/// Position of a track at time `t` (linear between points at most 60 s apart).
fn at(track: &[(i64, f64, f64)], t: i64) -> Option<(f64, f64)> {
    let i = track.partition_point(|p| p.0 < t);
    let b = track.get(i)?;
    if b.0 == t {
        return Some((b.1, b.2));
    }
    let a = track.get(i.checked_sub(1)?)?;
    if b.0 - a.0 > 60_000 {
        return None;
    }
    let f = (t - a.0) as f64 / (b.0 - a.0) as f64;
    Some((a.1 + f * (b.1 - a.1), a.2 + f * (b.2 - a.2)))
}

/// Check the device's pieces; the findings come in a deterministic order.
///
/// ```
/// use tessera::trust::{timeline::{check, Piece}, Trace};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// let t = |s: i64, lat: f64| Trace { start_ms: s, end_ms: s + 60_000,
///     track: vec![(s, lat, 25.0), (s + 60_000, lat + 0.005, 25.0)], ..Trace::default() };
/// // Helsinki, then 100 km north 10 minutes later: 600 km/h
/// let (a, b) = (t(0, 60.0), t(660_000, 60.9));
/// let ev = check(&[Piece { source: 0, seg: 0, trace: &a }, Piece { source: 1, seg: 0, trace: &b }], &k);
/// assert_eq!(ev[0].finding.detector.as_str(), "impossible_bridge");
/// ```
pub fn check(pieces: &[Piece], k: &TrustKernels) -> Vec<WindowFinding> {
    let mut order: Vec<&Piece> = pieces.iter().collect();
    order.sort_by_key(|p| (p.trace.start_ms, p.trace.end_ms, p.source));
    let mut out = Vec::new();
    let mut latest: Option<usize> = None;
    for n in 0..order.len() {
        let b = order[n];
        for a in &order[..n] {
            if a.trace.end_ms >= b.trace.start_ms {
                if a.source != b.source {
                    two_places(a, b, k, &mut out);
                } else if a.seg != b.seg {
                    clock_overlap(a, b, k, &mut out);
                }
            }
        }
        if let Some(pa) = latest {
            let a = order[pa];
            // Same source, later in the file but earlier in time: a clock step, not a trip.
            let clock_step = a.source == b.source && a.seg > b.seg;
            if b.trace.start_ms > a.trace.end_ms
                && !clock_step
                && let Some(mut f) = bridge(a, b, k)
            {
                (f.finding.start_ms, f.finding.end_ms) = journeys(&order, pa, n, k);
                out.push(f);
            }
        }
        if latest.is_none_or(|a| b.trace.end_ms > order[a].trace.end_ms) {
            latest = Some(n);
        }
    }
    out
}

/// The journeys on both sides of a bridge from `order[a]` to `order[b]`: the pieces chained to
/// them by gaps of at most `trust.timeline.journey_gap_s`, as one time window.
fn journeys(order: &[&Piece], a: usize, b: usize, k: &TrustKernels) -> (i64, i64) {
    let (mut lo, mut hi) = (a, b);
    while lo > 0 && order[lo].trace.start_ms - order[lo - 1].trace.end_ms <= k.journey_gap_ms {
        lo -= 1;
    }
    while hi + 1 < order.len() && order[hi + 1].trace.start_ms - order[hi].trace.end_ms <= k.journey_gap_ms {
        hi += 1;
    }
    let end = order[lo..=hi]
        .iter()
        .map(|p| p.trace.end_ms)
        .max()
        .unwrap_or(order[b].trace.end_ms);
    (order[lo].trace.start_ms, end)
}

/// The largest distance (m) between `a` and `b` at the same instant while both cover it (`b`
/// starts inside `a`), at `b`'s track points.
fn worst_apart_m(a: &Piece, b: &Piece) -> f64 {
    let (lo, hi) = (b.trace.start_ms, a.trace.end_ms.min(b.trace.end_ms));
    let mut worst = 0.0f64;
    for &(t, lat, lon) in b.trace.track.iter().filter(|p| p.0 >= lo && p.0 <= hi) {
        if let Some((alat, alon)) = at(&a.trace.track, t) {
            worst = worst.max(crate::quality::distance_m(alat, alon, lat, lon));
        }
    }
    worst
}

/// A withheld window where the device was `worst_m` apart from itself at one (claimed) instant.
fn apart(
    source: usize,
    detector: Detector,
    (start_ms, end_ms): (i64, i64),
    worst_m: f64,
    k: &TrustKernels,
    detail: String,
) -> WindowFinding {
    let same = if detector == Detector::ClockOverlap {
        "the same claimed time"
    } else {
        "the same time"
    };
    WindowFinding {
        source,
        finding: Finding {
            detector,
            start_ms,
            end_ms,
            measured: format!("{:.1} km apart at {same}", worst_m / 1000.0),
            threshold: format!("{:.0} m", k.max_apart_m),
            policy_key: "trust.timeline.max_apart_m",
            effect: Effect::WithholdWindow,
            fixes: 0,
            meters: 0,
            detail,
        },
    }
}

/// Two segments of one source overlapping in claimed time (only a backward clock step makes
/// them): the overlap is withheld when they are apart at the same instant.
fn clock_overlap(a: &Piece, b: &Piece, k: &TrustKernels, out: &mut Vec<WindowFinding>) {
    // Both orders: `b` starts inside `a`, but either may be the later one in the file.
    let worst = worst_apart_m(a, b).max(worst_apart_m(b, a));
    if worst > k.max_apart_m {
        let (first, later) = if a.seg < b.seg { (a, b) } else { (b, a) };
        let window = (b.trace.start_ms, a.trace.end_ms.min(b.trace.end_ms));
        let detail = format!(
            "after a backward clock step, segment {} of the source claims times its segment {} covered, in another place",
            later.seg, first.seg
        );
        out.push(apart(later.source, Detector::ClockOverlap, window, worst, k, detail));
    }
}

fn two_places(a: &Piece, b: &Piece, k: &TrustKernels, out: &mut Vec<WindowFinding>) {
    let worst = worst_apart_m(a, b);
    if worst > k.max_apart_m {
        let window = (
            a.trace.start_ms.min(b.trace.start_ms),
            a.trace.end_ms.max(b.trace.end_ms),
        );
        let detail = format!(
            "two sources of the device overlap in time in different places (the other is source #{})",
            a.source
        );
        out.push(apart(b.source, Detector::TwoPlaces, window, worst, k, detail));
    }
}

fn bridge(a: &Piece, b: &Piece, k: &TrustKernels) -> Option<WindowFinding> {
    let (&(ta, lat_a, lon_a), &(tb, lat_b, lon_b)) = (a.trace.track.last()?, b.trace.track.first()?);
    let dt = (tb - ta) as f64 / 1000.0;
    let d = crate::quality::distance_m(lat_a, lon_a, lat_b, lon_b);
    // 100 m of slack for position error at either end
    if dt <= 0.0 || d - 100.0 <= k.max_bridge_mps * dt {
        return None;
    }
    Some(WindowFinding {
        source: b.source,
        finding: Finding {
            detector: Detector::ImpossibleBridge,
            start_ms: a.trace.start_ms,
            end_ms: b.trace.end_ms,
            measured: format!("{:.1} km in {:.0} s = {:.0} km/h", d / 1000.0, dt, d / dt * 3.6),
            threshold: format!("{:.0} km/h", k.max_bridge_mps * 3.6),
            policy_key: "trust.timeline.max_bridge_kmh",
            effect: Effect::WithholdWindow,
            fixes: 0,
            meters: a.trace.meters + b.trace.meters,
            detail: format!(
                "a gap bridged faster than any road trip: the journeys on both sides are withheld (previous segment from source #{})",
                a.source
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::k;

    fn trace(start_s: i64, secs: i64, lat0: f64, dlat: f64) -> Trace {
        let track = (0..=secs / 5)
            .map(|i| {
                (
                    start_s * 1000 + i * 5000,
                    lat0 + dlat * (i * 5) as f64 / secs as f64,
                    25.0,
                )
            })
            .collect();
        Trace {
            start_ms: start_s * 1000,
            end_ms: (start_s + secs) * 1000,
            track,
            anchors: vec![],
            meters: (dlat.abs() * 111_195.0) as u64,
        }
    }

    #[test]
    fn rule_one_device_in_two_places_at_once_withholds_the_overlap() {
        let (a, b) = (trace(0, 600, 60.0, 0.05), trace(300, 600, 61.0, 0.05));
        let ev = check(
            &[
                Piece {
                    source: 0,
                    seg: 0,
                    trace: &a,
                },
                Piece {
                    source: 1,
                    seg: 0,
                    trace: &b,
                },
            ],
            &k(),
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].finding.detector, Detector::TwoPlaces);
        assert_eq!((ev[0].finding.start_ms, ev[0].finding.end_ms), (0, 900_000));
    }

    #[test]
    fn rule_two_recordings_of_one_drive_are_not_two_places() {
        let (a, b) = (trace(0, 600, 60.0, 0.05), trace(0, 600, 60.00001, 0.05));
        assert!(check(
            &[
                Piece {
                    source: 0,
                    seg: 0,
                    trace: &a
                },
                Piece {
                    source: 1,
                    seg: 0,
                    trace: &b
                }
            ],
            &k()
        )
        .is_empty());
    }

    #[test]
    fn rule_city_hops_just_under_the_teleport_limit_are_impossible_bridges() {
        // 10 cities, 30 min each, 100 km apart, 30 min gaps (200 km/h)
        let t: Vec<Trace> = (0..10)
            .map(|i| trace(i * 3600, 1800, 60.0 + 0.9 * i as f64, 0.01))
            .collect();
        let pieces: Vec<Piece> = t
            .iter()
            .enumerate()
            .map(|(i, trace)| Piece {
                source: i,
                seg: 0,
                trace,
            })
            .collect();
        let ev = check(&pieces, &k());
        assert_eq!(ev.len(), 9);
        assert!(ev.iter().all(|e| e.finding.detector == Detector::ImpossibleBridge));
    }

    #[test]
    fn rule_a_tunnel_gap_at_driving_speed_is_not_a_bridge() {
        // 2 km in 3 minutes between the segments: 40 km/h
        let (a, b) = (
            trace(0, 600, 60.0, 0.05),
            trace(780, 600, 60.05 + 2000.0 / 111_195.0, 0.05),
        );
        assert!(check(
            &[
                Piece {
                    source: 0,
                    seg: 0,
                    trace: &a
                },
                Piece {
                    source: 0,
                    seg: 1,
                    trace: &b
                }
            ],
            &k()
        )
        .is_empty());
    }

    /// The findings of two segments `sa`, `sb` of one source.
    fn one_source(a: &Trace, sa: u32, b: &Trace, sb: u32) -> Vec<WindowFinding> {
        let piece = |seg, trace| Piece { source: 0, seg, trace };
        check(&[piece(sa, a), piece(sb, b)], &k())
    }

    #[test]
    fn rule_a_clock_step_inside_one_source_is_not_evidence() {
        // the first 10 minutes stamped an hour late, then the clock steps back
        let (a, b) = (trace(3600, 600, 60.0, 0.05), trace(600, 600, 60.05, 0.05));
        let ev = one_source(&a, 0, &b, 1);
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn rule_a_clock_step_then_a_jump_elsewhere_withholds_the_overlap_as_clock_overlap() {
        // One file: 20 minutes of driving, a clock step back 15 minutes, then a drive 55 km
        // away (after a rejected teleport: a new segment) at the claimed times of the first.
        let (a, b) = (trace(0, 1200, 60.0, 0.05), trace(300, 900, 60.5, 0.05));
        for (sa, sb) in [(0, 2), (2, 0)] {
            let ev = one_source(&a, sa, &b, sb);
            assert_eq!(ev.len(), 1, "{ev:?}");
            let f = &ev[0].finding;
            assert_eq!(f.detector, Detector::ClockOverlap);
            assert_eq!((f.start_ms, f.end_ms), (300_000, 1_200_000), "the overlap only");
            assert_eq!(f.effect, Effect::WithholdWindow);
            assert!(!f.is_cheating(), "a faulty clock is not evidence");
            assert!(f.measured.starts_with("55.") && f.threshold == "500 m", "{f:?}");
        }
    }

    #[test]
    fn rule_a_clock_step_whose_recordings_agree_is_not_withheld() {
        // Parked through the step: both recordings at the same place.
        let (a, b) = (trace(0, 1200, 60.0, 0.0), trace(300, 600, 60.001, 0.0));
        let ev = one_source(&a, 0, &b, 1);
        assert!(ev.is_empty(), "{ev:?}");
    }
}
