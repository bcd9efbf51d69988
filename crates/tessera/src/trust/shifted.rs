//! Copies moved to a parallel street: a trace whose every position is another trace's shifted
//! by one constant vector (a block north, say), its clock shifted too. It passes none of the
//! original's anchor cells, so [`super::copies`] cannot see it; its *stops* give it away.
//!
//! A stop is a run of consecutive fixes each less than `trust.motion.min_speed_mps` (the
//! movement floor's speed) from the last, lasting at least [`MIN_STOP_MS`]: a wait at a light,
//! a give-way, a jam. A copy keeps its original's stops — their durations, the time between them
//! and where they are relative to each other. Two traces match when at least
//! `trust.copies.min_shift_stops` consecutive stops have
//!
//! - durations, and start times less one constant clock offset, within `max_spread_s`;
//! - positions less one constant shift within `max_shift_spread_m` (east and north each);
//! - a shift of at least twice `max_shift_spread_m` (closer is the same road: the anchor rules'
//!   case) and a clock offset beyond `co_travel_s` (two cars on parallel streets at the same
//!   time can wait at lights switched together);
//! - at least `min_match_s` from the first stop's start to the last one's end.
//!
//! Honest drivers' stops differ: a wait at a light is one of dozens of durations, and the next
//! light comes after a drive whose length depends on traffic; four in a row agreeing to seconds,
//! at positions one constant shift apart, is a copy. The withheld window runs from the first
//! matched stop to the last, extended over the copy's track points (every 30 s) that stay at
//! the same shift from the original's track.
//!
//! Stops are kept for the traces of the epoch being computed; an earlier epoch's fingerprints
//! hold anchors only, so a shifted copy of an earlier epoch's trace is not matched.

use super::copies::CopyMatch;
use super::policy::TrustKernels;
use super::{Detector, Finding};
use crate::fix::Fix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Shortest stop, ms.
pub const MIN_STOP_MS: i64 = 5_000;

/// A stop of a trace: from its first fix to its last, at its middle fix's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stop {
    /// First fix of the stop, UTC ms.
    pub start_ms: i64,
    /// Last fix of the stop, UTC ms.
    pub end_ms: i64,
    /// Latitude of the middle fix, 10⁻⁷ degrees.
    pub lat_e7: i32,
    /// Longitude of the middle fix, 10⁻⁷ degrees.
    pub lon_e7: i32,
}

impl Stop {
    fn duration(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// East and north metres from `self` to `other` (equirectangular at `self`'s latitude).
    fn to(&self, other: &Stop) -> (f64, f64) {
        let deg = |e7: i32| f64::from(e7) * 1e-7;
        let lat = deg(self.lat_e7).to_radians();
        let mut dlon = deg(other.lon_e7) - deg(self.lon_e7);
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let r = 6_371_008.8;
        (
            dlon.to_radians() * lat.cos() * r,
            (deg(other.lat_e7) - deg(self.lat_e7)).to_radians() * r,
        )
    }
}

fn e7(deg: f64) -> i32 {
    (deg * 1e7).round() as i32
}

/// The stops of a segment: runs of consecutive fixes of `seq` (indices into `fixes`, in order;
/// `pts[i]` the position of `fixes[i]`) whose every step is slower than `min_speed_mps`,
/// lasting at least [`MIN_STOP_MS`]. None when `min_speed_mps` is 0.
///
/// ```
/// use tessera::{fix::Fix, quality::GeoPoint, trust::shifted::stops};
/// // 12 m/s north, stopped from 10 s to 21 s
/// let f: Vec<Fix> = (0..40i64).map(|i| Fix::new(i * 1000, 60.0 + (i.min(10) + (i - 21).max(0)) as f64 * 12.0 / 111_195.0, 25.0)).collect();
/// let refs: Vec<&Fix> = f.iter().collect();
/// let pts: Vec<GeoPoint> = f.iter().map(|f| GeoPoint::new(f.lat, f.lon)).collect();
/// let seq: Vec<usize> = (0..40).collect();
/// let s = stops(&refs, &pts, &seq, 2.5);
/// assert_eq!((s.len(), s[0].start_ms, s[0].end_ms), (1, 10_000, 21_000));
/// ```
pub fn stops(fixes: &[&Fix], pts: &[crate::quality::GeoPoint], seq: &[usize], min_speed_mps: f64) -> Vec<Stop> {
    let slow = |w: &[usize]| {
        let dt = (fixes[w[1]].time_ms - fixes[w[0]].time_ms) as f64 / 1000.0;
        let (a, b) = (&pts[w[0]], &pts[w[1]]);
        let m = a.distance_fast_m(b).unwrap_or_else(|| a.distance_m(b));
        dt > 0.0 && m < min_speed_mps * dt
    };
    let mut out = Vec::new();
    let mut p = 0;
    while p + 1 < seq.len() {
        if !slow(&seq[p..p + 2]) {
            p += 1;
            continue;
        }
        let first = p;
        while p + 1 < seq.len() && slow(&seq[p..p + 2]) {
            p += 1;
        }
        // fixes first..=p are joined by slow steps
        let (a, b) = (fixes[seq[first]], fixes[seq[p]]);
        if b.time_ms - a.time_ms >= MIN_STOP_MS {
            let m = fixes[seq[first + (p - first) / 2]];
            out.push(Stop {
                start_ms: a.time_ms,
                end_ms: b.time_ms,
                lat_e7: e7(m.lat),
                lon_e7: e7(m.lon),
            });
        }
    }
    out
}

/// One trace to compare: its device, receipt order (as [`super::copies::CopyTrace`]), stops
/// and track (`(time ms, lat, lon)`, see [`super::Trace::track`]), both in time order.
#[derive(Debug, Clone, Copy)]
pub struct ShiftTrace<'a> {
    /// The device (equal numbers are the same device).
    pub device: u64,
    /// Receipt order: (received at, UTC ms; tie-break).
    pub received: (i64, u64),
    /// Stops in time order.
    pub stops: &'a [Stop],
    /// Track points in time order.
    pub track: &'a [(i64, f64, f64)],
}

/// The shifted copies among `traces`, sorted by (copy, original): the later received of two
/// matching traces is the copy (see the module docs), its finding `replay` with policy key
/// `trust.copies.shifted`. Nothing when `k.shifted` is off.
///
/// ```
/// use tessera::trust::shifted::{detect, ShiftTrace, Stop};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // five stops of 12..32 s, 70..150 s apart; the copy 150 m north, a day later
/// let a: Vec<Stop> = (0..5i64).map(|i| Stop { start_ms: i * 100_000 + (i * i) * 7_000,
///     end_ms: i * 100_000 + (i * i) * 7_000 + 12_000 + i * 5_000, lat_e7: 600_000_000 + (i as i32) * 9_000,
///     lon_e7: 250_000_000 + (i as i32 % 2) * 12_000 }).collect();
/// let b: Vec<Stop> = a.iter().map(|s| Stop { start_ms: s.start_ms + 86_400_000, end_ms: s.end_ms + 86_400_000,
///     lat_e7: s.lat_e7 + 13_490, lon_e7: s.lon_e7 }).collect();
/// let t = [ShiftTrace { device: 1, received: (1, 0), stops: &a, track: &[] },
///          ShiftTrace { device: 2, received: (2, 0), stops: &b, track: &[] }];
/// let m = detect(&t, &k);
/// assert_eq!((m.len(), m[0].copy, m[0].original, m[0].finding.detector.as_str()), (1, 1, 0, "replay"));
/// assert_eq!(m[0].finding.policy_key, "trust.copies.shifted");
/// ```
pub fn detect(traces: &[ShiftTrace], k: &TrustKernels) -> Vec<CopyMatch> {
    use rayon::prelude::*;
    if !k.shifted {
        return Vec::new();
    }
    let index = Index::new(traces, k);
    let mut out: Vec<CopyMatch> = (0..traces.len())
        .into_par_iter()
        .flat_map_iter(|b| originals_of(&index, traces, b, k))
        .collect();
    out.sort_by_key(|m| (m.copy, m.original));
    out
}

/// Consecutive stop pairs by (first duration, gap, second duration), each in buckets of the
/// time tolerance.
struct Index {
    q: i64,
    pairs: BTreeMap<[i64; 3], Vec<(u32, u32)>>,
}

impl Index {
    fn new(traces: &[ShiftTrace], k: &TrustKernels) -> Index {
        let q = k.max_spread_ms.max(1000);
        let mut pairs: BTreeMap<[i64; 3], Vec<(u32, u32)>> = BTreeMap::new();
        for (t, tr) in traces
            .iter()
            .enumerate()
            .filter(|(_, t)| t.stops.len() >= k.min_shift_stops)
        {
            for i in 0..tr.stops.len() - 1 {
                pairs.entry(key(tr.stops, i, q)).or_default().push((t as u32, i as u32));
            }
        }
        Index { q, pairs }
    }
}

fn shape(s: &[Stop], i: usize) -> [i64; 3] {
    [s[i].duration(), s[i + 1].start_ms - s[i].end_ms, s[i + 1].duration()]
}

fn key(s: &[Stop], i: usize, q: i64) -> [i64; 3] {
    shape(s, i).map(|v| v.div_euclid(q))
}

/// The matches of trace `b` as the copy of an earlier-received trace.
fn originals_of(index: &Index, traces: &[ShiftTrace], b: usize, k: &TrustKernels) -> Vec<CopyMatch> {
    let tb = &traces[b];
    if tb.stops.len() < k.min_shift_stops {
        return Vec::new();
    }
    // original → votes (stop pair i of the copy, j of the original)
    let mut votes: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    for i in 0..tb.stops.len() - 1 {
        let (kb, sb) = (key(tb.stops, i, index.q), shape(tb.stops, i));
        for d in 0..27 {
            let probe = [kb[0] + d / 9 - 1, kb[1] + d / 3 % 3 - 1, kb[2] + d % 3 - 1];
            for &(a, j) in index.pairs.get(&probe).into_iter().flatten() {
                let ta = &traces[a as usize];
                if a as usize == b || ta.device == tb.device || ta.received >= tb.received {
                    continue;
                }
                let sa = shape(ta.stops, j as usize);
                if sa.iter().zip(&sb).all(|(x, y)| (x - y).abs() <= k.max_spread_ms) {
                    votes.entry(a).or_default().push((i as u32, j));
                }
            }
        }
    }
    votes
        .into_iter()
        .filter_map(|(a, v)| {
            let m = best_run(&traces[a as usize], tb, v, k)?;
            Some(CopyMatch {
                copy: b,
                original: a as usize,
                finding: m,
            })
        })
        .collect()
}

/// A run of matched stops: the copy's first stop `i`, the original's `j`, `n` stops; the mean
/// clock offset (ms) and shift (east, north metres), and the largest spreads.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    i: usize,
    j: usize,
    n: usize,
    offset_ms: i64,
    shift: (f64, f64),
    spread_ms: i64,
    spread_m: f64,
}

/// The longest run of consecutive stop pairs on one diagonal that passes [`consistent`] (the
/// earliest of equals), as a finding.
fn best_run(a: &ShiftTrace, b: &ShiftTrace, mut votes: Vec<(u32, u32)>, k: &TrustKernels) -> Option<Finding> {
    votes.sort_by_key(|&(i, j)| (i64::from(i) - i64::from(j), i));
    votes.dedup();
    let mut best: Option<Run> = None;
    let mut start = 0;
    while start < votes.len() {
        let mut end = start + 1;
        while end < votes.len() && votes[end] == (votes[end - 1].0 + 1, votes[end - 1].1 + 1) {
            end += 1;
        }
        // pairs start..end cover stops i0..=i0 + (end - start)
        let (i0, j0) = (votes[start].0 as usize, votes[start].1 as usize);
        let stops = end - start + 1;
        for s in 0..stops {
            for n in (k.min_shift_stops..=stops - s).rev() {
                if best.is_some_and(|r| r.n >= n) {
                    break;
                }
                if let Some(r) = consistent(a.stops, b.stops, i0 + s, j0 + s, n, k) {
                    best = Some(r);
                    break;
                }
            }
        }
        start = end;
    }
    best.map(|r| finding(a, b, r, k))
}

/// Whether stops `i..i + n` of the copy `b` are stops `j..j + n` of `a` at one clock offset and
/// one shift (see the module docs).
fn consistent(a: &[Stop], b: &[Stop], i: usize, j: usize, n: usize, k: &TrustKernels) -> Option<Run> {
    let (sa, sb) = (&a[j..j + n], &b[i..i + n]);
    let offsets: Vec<i64> = sa
        .iter()
        .zip(sb)
        .flat_map(|(x, y)| [y.start_ms - x.start_ms, y.end_ms - x.end_ms])
        .collect();
    let (lo, hi) = (*offsets.iter().min()?, *offsets.iter().max()?);
    let shifts: Vec<(f64, f64)> = sa.iter().zip(sb).map(|(x, y)| x.to(y)).collect();
    let range = |f: fn(&(f64, f64)) -> f64| {
        let v = shifts.iter().map(f);
        v.clone().fold(f64::NEG_INFINITY, f64::max) - v.fold(f64::INFINITY, f64::min)
    };
    let spread_m = range(|s| s.0).max(range(|s| s.1));
    let mean = |f: fn(&(f64, f64)) -> f64| shifts.iter().map(f).sum::<f64>() / n as f64;
    let shift = (mean(|s| s.0), mean(|s| s.1));
    let offset_ms = lo + (hi - lo) / 2;
    let span = sb[n - 1].end_ms - sb[0].start_ms;
    let ok = hi - lo <= k.max_spread_ms
        && spread_m <= k.max_shift_spread_m
        && shift.0.hypot(shift.1) >= 2.0 * k.max_shift_spread_m
        && offset_ms.abs() > k.co_travel_ms
        && span >= k.min_match_ms;
    ok.then_some(Run {
        i,
        j,
        n,
        offset_ms,
        shift,
        spread_ms: hi - lo,
        spread_m,
    })
}

/// The copy's window: its matched stops, extended over its track points that stay at the
/// run's shift (within twice the spread allowed) from the original's track.
fn window(a: &ShiftTrace, b: &ShiftTrace, r: &Run, k: &TrustKernels) -> (i64, i64) {
    let (mut start, mut end) = (b.stops[r.i].start_ms, b.stops[r.i + r.n - 1].end_ms);
    let agrees = |p: &(i64, f64, f64)| {
        let Some((lat, lon)) = super::timeline::at(a.track, p.0 - r.offset_ms) else {
            return false;
        };
        let here = Stop {
            lat_e7: e7(lat),
            lon_e7: e7(lon),
            ..Stop::default()
        };
        let there = Stop {
            lat_e7: e7(p.1),
            lon_e7: e7(p.2),
            ..Stop::default()
        };
        let s = here.to(&there);
        (s.0 - r.shift.0).hypot(s.1 - r.shift.1) <= 2.0 * k.max_shift_spread_m
    };
    let from = b.track.partition_point(|p| p.0 <= end);
    for p in b.track[from..].iter().take_while(|p| agrees(p)) {
        end = p.0;
    }
    let to = b.track.partition_point(|p| p.0 < start);
    for p in b.track[..to].iter().rev().take_while(|p| agrees(p)) {
        start = p.0;
    }
    (start, end)
}

fn finding(a: &ShiftTrace, b: &ShiftTrace, r: Run, k: &TrustKernels) -> Finding {
    let (start_ms, end_ms) = window(a, b, &r, k);
    Finding::copy_window(
        Detector::Replay,
        (start_ms, end_ms),
        format!(
            "{} stops matched at a clock offset of {:+.0} s and a shift of {:.0} m east, {:.0} m \
             north (times within {:.1} s, positions within {:.0} m)",
            r.n,
            r.offset_ms as f64 / 1000.0,
            r.shift.0.round() + 0.0,
            r.shift.1.round() + 0.0,
            r.spread_ms as f64 / 1000.0,
            r.spread_m
        ),
        format!(
            "{} stops over {} s, times within {} s, positions within {} m, shift ≥ {} m, \
             clock offset beyond ±{} s",
            k.min_shift_stops,
            k.min_match_ms / 1000,
            k.max_spread_ms / 1000,
            k.max_shift_spread_m,
            2.0 * k.max_shift_spread_m,
            k.co_travel_ms / 1000
        ),
        "trust.copies.shifted",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::*;
    use crate::trust::Effect;

    const T0: i64 = 1_763_000_000_000;
    const DAY: i64 = 86_400_000;

    /// Waits of `(second of the drive, seconds)`.
    fn waits(at: &'static [(usize, usize)]) -> impl Fn(usize) -> f64 {
        move |s| {
            if at.iter().any(|&(a, n)| (a..a + n).contains(&s)) {
                0.0
            } else {
                1.0
            }
        }
    }

    const WAITS: &[(usize, usize)] = &[(150, 22), (420, 35), (700, 14), (980, 41), (1250, 27)];

    /// `f` moved `east`/`north` metres and `dt_ms` later, with a little position noise.
    fn moved(f: &[Fix], east: f64, north: f64, dt_ms: i64) -> Vec<Fix> {
        let m_lat = 1.0 / 111_195.0;
        f.iter()
            .enumerate()
            .map(|(i, g)| {
                let mut h = g.clone();
                let noise = ((i * 7919) % 11) as f64 / 10.0 - 0.5;
                h.lat += (north + noise) * m_lat;
                h.lon += (east - noise) * m_lat / g.lat.to_radians().cos();
                h.time_ms += dt_ms;
                h
            })
            .collect()
    }

    /// The trace of `f` as one checked segment gives it.
    fn trace(f: &[Fix], k: &TrustKernels) -> crate::trust::Trace {
        crate::trust::check_segment(&refs(f), None, k).trace.unwrap()
    }

    /// The shifted-copy search over `orig` (received first) and `other`.
    fn pair(orig: &[Fix], other: &[Fix], k: &TrustKernels) -> Vec<CopyMatch> {
        let (a, b) = (trace(orig, k), trace(other, k));
        let t = [(1u64, &a), (2, &b)].map(|(device, t)| ShiftTrace {
            device,
            received: (device as i64, 0),
            stops: &t.stops,
            track: &t.track,
        });
        detect(&t, k)
    }

    #[test]
    fn rule_stops_are_runs_of_steps_below_the_floor_speed_of_five_seconds_or_more() {
        let f = along(1500, T0, waits(&[(100, 30), (400, 3), (800, 12)]));
        let s = trace(&f, &k()).stops;
        assert_eq!(s.len(), 2, "{s:?}"); // the 3 s wait is not a stop
        for (stop, (at, secs)) in s.iter().zip([(100i64, 30i64), (800, 12)]) {
            let (a, b) = ((stop.start_ms - T0) / 1000, (stop.end_ms - T0) / 1000);
            assert!(
                (a - at).abs() <= 1 && (b - (at + secs)).abs() <= 1,
                "{stop:?} {at} {secs}"
            );
        }
    }

    #[test]
    fn rule_a_copy_moved_to_a_parallel_street_is_a_replay_over_most_of_it() {
        let orig = along(1500, T0, waits(WAITS));
        for (east, north, dt) in [(0.0, 150.0, DAY), (120.0, -80.0, 3_600_000), (-300.0, 0.0, -DAY / 2)] {
            let copy = moved(&orig, east, north, dt);
            let m = pair(&orig, &copy, &k());
            assert_eq!(m.len(), 1, "{east} {north}: {m:?}");
            let f = &m[0].finding;
            assert_eq!((m[0].copy, m[0].original, f.detector), (1, 0, Detector::Replay));
            assert_eq!(
                (f.policy_key, f.effect),
                ("trust.copies.shifted", Effect::WithholdWindow)
            );
            assert!(f.measured.starts_with("5 stops matched"), "{}", f.measured);
            assert!(
                f.measured.contains(&format!("{east:.0} m east, {north:.0} m north")),
                "{}",
                f.measured
            );
            let span = (copy[0].time_ms, copy[copy.len() - 1].time_ms);
            assert!(span.0 <= f.start_ms && f.end_ms <= span.1, "{f:?} {span:?}");
            assert!((f.end_ms - f.start_ms) * 10 > (span.1 - span.0) * 8, "{f:?} {span:?}");
        }
    }

    #[test]
    fn rule_a_shifted_copy_whose_clock_slips_two_seconds_is_still_matched() {
        // the tolerance is `max_spread_s` (3 s); the index probes the neighbouring buckets
        let orig = along(1500, T0, waits(WAITS));
        let mut copy = moved(&orig, 0.0, 150.0, DAY);
        for f in copy.iter_mut().skip(600) {
            f.time_ms += 2000;
        }
        let m = pair(&orig, &copy, &k());
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].finding.measured.contains("times within 2.0 s"),
            "{}",
            m[0].finding.measured
        );
    }

    #[test]
    fn rule_shifted_copies_are_not_matched_when_the_rule_is_off_or_under_trust_rules_3() {
        let orig = along(1500, T0, waits(WAITS));
        let copy = moved(&orig, 0.0, 150.0, DAY);
        let mut off = k();
        off.shifted = false;
        assert!(pair(&orig, &copy, &off).is_empty());
        assert!(pair(&orig, &copy, &k().under_rules(3)).is_empty());
        // fewer stops than min_shift_stops
        let mut six = k();
        six.min_shift_stops = 6;
        assert!(pair(&orig, &copy, &six).is_empty());
    }

    #[test]
    fn rule_a_car_on_a_parallel_street_at_the_same_time_is_not_matched() {
        // lights switched together on parallel streets: two honest cars can wait alike
        let orig = along(1500, T0, waits(WAITS));
        assert!(pair(&orig, &moved(&orig, 0.0, 150.0, 40_000), &k()).is_empty());
    }

    #[test]
    fn rule_a_shift_under_twice_the_spread_is_left_to_the_anchor_rules() {
        let orig = along(1500, T0, waits(WAITS));
        assert!(pair(&orig, &moved(&orig, 20.0, 20.0, DAY), &k()).is_empty());
    }

    #[test]
    fn rule_honest_drivers_with_other_waits_or_at_other_places_are_not_matched() {
        let orig = along(1500, T0, waits(WAITS));
        // the parallel street a day later, waiting 6-9 s longer or shorter at each light
        const OTHER: &[(usize, usize)] = &[(150, 30), (420, 27), (700, 21), (980, 33), (1250, 34)];
        let other = along(1500, T0 + DAY, waits(OTHER));
        assert!(pair(&orig, &moved(&other, 0.0, 150.0, 0), &k()).is_empty());
        // the same waits at the same times of the drive, on another street: the stops are
        // not one shift apart
        let back = along_back(1500, T0 + DAY, waits(WAITS));
        assert!(pair(&orig, &back, &k()).is_empty());
        // one wait in the middle 5 s longer leaves runs of 2 matching stops on either side
        const ONE: &[(usize, usize)] = &[(150, 22), (420, 35), (700, 19), (980, 41), (1250, 27)];
        let one = moved(&along(1500, T0, waits(ONE)), 0.0, 150.0, DAY);
        assert!(pair(&orig, &one, &k()).is_empty());
    }
}
