//! Fingerprints of GNSS simulators and hand-made traces, over the moving fixes of a segment
//! (each withholds the segment):
//!
//! - `constant_signal`: the same HDOP and satellite count for longer than
//!   `trust.simulator.max_constant_signal_s` (a real sky changes within minutes);
//! - `straight_line`: two or more windows of `trust.simulator.line_fixes` fixes spanning 300 m+
//!   whose RMS distance from their chord is below `trust.simulator.min_line_rms_m` (RTK fixes,
//!   quality 4/5, are exempt);
//! - `constant_speed`: a receiver speed within `trust.simulator.min_speed_range_mps` for longer
//!   than `trust.simulator.max_constant_speed_s`;
//! - `white_noise`: the median acceleration between consecutive 1 s steps above
//!   `trust.simulator.max_median_accel_mps2` — a receiver's error is smooth (correlated from one
//!   second to the next), noise added to a made-up path is not.

use super::policy::TrustKernels;
use super::{enu, Detector, Effect, Finding};
use crate::fix::Fix;

/// Apply the four fingerprints to the moving fixes `live`, marking `withheld`.
///
/// ```
/// use tessera::{fix::Fix, trust::simulator::check};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // a perfect line at constant speed, constant HDOP and satellites, for 20 minutes
/// let f: Vec<Fix> = (0..1200).map(|i| {
///     let mut f = Fix::new(i * 1000, 60.0 + i as f64 * 1e-4, 25.0);
///     f.hdop = Some(0.9); f.sats = Some(9); f.speed_mps = Some(11.12); f
/// }).collect();
/// let refs: Vec<&Fix> = f.iter().collect();
/// let live: Vec<usize> = (0..f.len()).collect();
/// let (mut withheld, mut ev) = (vec![false; f.len()], Vec::new());
/// check(&refs, &live, &k, &mut withheld, &mut ev);
/// assert!(withheld.iter().all(|w| *w));
/// let names: Vec<&str> = ev.iter().map(|e| e.detector.as_str()).collect();
/// assert!(names.contains(&"constant_signal") && names.contains(&"straight_line"), "{names:?}");
/// ```
pub fn check(fixes: &[&Fix], live: &[usize], k: &TrustKernels, withheld: &mut [bool], findings: &mut Vec<Finding>) {
    check_with(fixes, &super::Steps::new(fixes.len()), live, k, withheld, findings);
}

/// [`check`] with the steps the despiker measured.
pub(crate) fn check_with(
    fixes: &[&Fix],
    steps: &super::Steps,
    live: &[usize],
    k: &TrustKernels,
    withheld: &mut [bool],
    findings: &mut Vec<Finding>,
) {
    if live.len() < 3 {
        return;
    }
    let before = findings.len();
    constant_signal(fixes, live, k, findings);
    straight_line(fixes, live, k, findings);
    constant_speed(fixes, live, k, findings);
    white_noise(fixes, steps, live, k, findings);
    if findings.len() > before {
        for &i in live {
            withheld[i] = true;
        }
    }
}

/// A finding that withholds the segment's live fixes (shared with [`super::imu`]).
pub(super) fn segment_finding(
    fixes: &[&Fix],
    live: &[usize],
    detector: Detector,
    key: &'static str,
    measured: String,
    threshold: String,
    detail: &str,
) -> Finding {
    Finding {
        detector,
        start_ms: fixes[live[0]].time_ms,
        end_ms: fixes[live[live.len() - 1]].time_ms,
        measured,
        threshold,
        policy_key: key,
        effect: Effect::WithholdSegment,
        fixes: live.len() as u64,
        meters: super::path_m(fixes, live).round() as u64,
        detail: detail.into(),
    }
}

/// Longest time span of consecutive `live` fixes for which `same(key(first), this)` holds: a
/// run starts at `first` and lasts while its fixes are `same` as it (the key computed for the
/// fixes that start a run only).
fn longest<K>(fixes: &[&Fix], live: &[usize], key: impl Fn(&Fix) -> K, same: impl Fn(&K, &Fix) -> bool) -> i64 {
    let Some(&first) = live.first() else {
        return 0;
    };
    let (mut best, mut start_ms, mut start_key) = (0i64, fixes[first].time_ms, key(fixes[first]));
    for &i in &live[1..] {
        let f = fixes[i];
        if !same(&start_key, f) {
            (start_ms, start_key) = (f.time_ms, key(f));
        }
        best = best.max(f.time_ms - start_ms);
    }
    best
}

/// A run of one signal starts here: the HDOP as given, in hundredths, and the satellites.
type SignalKey = (Option<u32>, Option<u32>, Option<u8>);

fn signal_key(f: &Fix) -> SignalKey {
    (f.hdop.map(f32::to_bits), f.hdop_centi(), f.sats)
}

/// Whether `f` continues the run `a`: one HDOP in hundredths and one satellite count, both
/// given. An HDOP with the run's bits has its hundredths: only a changed HDOP is rounded again.
fn same_signal(a: &SignalKey, f: &Fix) -> bool {
    a.1.is_some() && a.2.is_some() && f.sats == a.2 && (f.hdop.map(f32::to_bits) == a.0 || f.hdop_centi() == a.1)
}

fn constant_signal(fixes: &[&Fix], live: &[usize], k: &TrustKernels, findings: &mut Vec<Finding>) {
    let span = longest(fixes, live, signal_key, same_signal);
    if span > k.max_constant_signal_ms {
        findings.push(segment_finding(
            fixes,
            live,
            Detector::ConstantSignal,
            "trust.simulator.max_constant_signal_s",
            format!("{} s with one HDOP and satellite count", span / 1000),
            format!("{} s", k.max_constant_signal_ms / 1000),
            "HDOP and satellites never change while moving: a simulator's signature",
        ));
    }
}

fn straight_line(fixes: &[&Fix], live: &[usize], k: &TrustKernels, findings: &mut Vec<Finding>) {
    let (mut perfect, mut best) = (0u32, f64::INFINITY);
    for w in live.chunks_exact(k.line_fixes) {
        if w.iter().any(|&i| matches!(fixes[i].quality, 4 | 5)) {
            continue;
        }
        let (a, b) = (fixes[w[0]], fixes[w[w.len() - 1]]);
        let (cx, cy) = enu(a, b);
        let len = super::hypot(cx, cy);
        if len < 300.0 {
            continue;
        }
        let ss: f64 = w
            .iter()
            .map(|&i| {
                let (px, py) = enu(a, fixes[i]);
                let d = (px * cy - py * cx) / len;
                d * d
            })
            .sum();
        let rms = (ss / w.len() as f64).sqrt();
        best = best.min(rms);
        if rms < k.min_line_rms_m {
            perfect += 1;
        }
    }
    if perfect >= 2 {
        findings.push(segment_finding(
            fixes,
            live,
            Detector::StraightLine,
            "trust.simulator.min_line_rms_m",
            format!("{perfect} windows, RMS {best:.3} m from a straight line"),
            format!("{:.3} m", k.min_line_rms_m),
            "geometrically perfect straight lines: no receiver noise",
        ));
    }
}

fn constant_speed(fixes: &[&Fix], live: &[usize], k: &TrustKernels, findings: &mut Vec<Finding>) {
    let range = k.min_speed_range_mps as f32;
    let span = longest(
        fixes,
        live,
        |f| f.speed_mps,
        |a, f| match (a, f.speed_mps) {
            (Some(x), Some(y)) => *x > 1.0 && (x - y).abs() <= range,
            _ => false,
        },
    );
    if span > k.max_constant_speed_ms {
        findings.push(segment_finding(
            fixes,
            live,
            Detector::ConstantSpeed,
            "trust.simulator.max_constant_speed_s",
            format!("{} s within {range} m/s", span / 1000),
            format!("{} s", k.max_constant_speed_ms / 1000),
            "a receiver speed that does not vary: a simulator's signature",
        ));
    }
}

fn white_noise(fixes: &[&Fix], steps: &super::Steps, live: &[usize], k: &TrustKernels, findings: &mut Vec<Finding>) {
    // The second step of one window is the first of the next: its ENU is computed once.
    let mut step: Option<(usize, (f64, f64))> = None;
    let mut acc: Vec<(f64, f64, f64)> = Vec::with_capacity(live.len().saturating_sub(2));
    acc.extend(live.windows(3).filter_map(|w| {
        let (a, b, c) = (fixes[w[0]], fixes[w[1]], fixes[w[2]]);
        let (d1, d2) = (b.time_ms - a.time_ms, c.time_ms - b.time_ms);
        if !(500..=1500).contains(&d1) || !(500..=1500).contains(&d2) {
            return None;
        }
        let (s1, s2) = (d1 as f64 / 1000.0, d2 as f64 / 1000.0);
        let (x1, y1) = match step {
            Some((from, e)) if from == w[0] => e,
            _ => steps.get(fixes, w[0], w[1]),
        };
        let (x2, y2) = steps.get(fixes, w[1], w[2]);
        step = Some((w[1], (x2, y2)));
        Some((x2 / s2 - x1 / s1, y2 / s2 - y1 / s1, (s1 + s2) / 2.0))
    }));
    if acc.len() < 60 {
        return;
    }
    let mid = acc.len() / 2;
    // The median of the fast values (`certain`) is within its own bound of the exact median (an
    // order statistic of values each within a bound that grows with the value); below the
    // threshold by more, there is nothing to report and no exact length is needed.
    let mut fast: Vec<f64> = acc.iter().map(|&(dx, dy, s)| super::fast_hypot(dx, dy) / s).collect();
    let finite = fast.iter().all(|v| v.is_finite());
    let fast_median = *fast.select_nth_unstable_by(mid, f64::total_cmp).1;
    if finite && super::certain::above(fast_median, k.max_median_accel_mps2) == Some(false) {
        return;
    }
    let mut acc: Vec<f64> = acc.iter().map(|&(dx, dy, s)| super::hypot(dx, dy) / s).collect();
    let median = *acc.select_nth_unstable_by(mid, f64::total_cmp).1;
    if median > k.max_median_accel_mps2 {
        findings.push(segment_finding(
            fixes,
            live,
            Detector::WhiteNoise,
            "trust.simulator.max_median_accel_mps2",
            format!("median {median:.1} m/s² between 1 s steps"),
            format!("{:.1} m/s²", k.max_median_accel_mps2),
            "position noise that is new every second: added to a made-up path, not a receiver's",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::*;

    fn run(f: &[Fix]) -> Vec<Finding> {
        let live: Vec<usize> = (0..f.len()).collect();
        let (mut w, mut ev) = (vec![false; f.len()], Vec::new());
        check(&refs(f), &live, &k(), &mut w, &mut ev);
        ev
    }

    #[test]
    fn rule_a_constant_span_compares_each_fix_with_the_first_of_its_run() {
        // Keys computed once per fix give the spans of comparing the fixes themselves, on
        // sequences with runs, gaps in `live`, missing values and speeds drifting within range.
        let mut s = 0xC0FFEE_u64;
        let mut next = |n: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % n
        };
        for _ in 0..200 {
            let f: Vec<Fix> = (0..300)
                .map(|i| {
                    let mut g = Fix::new(i * 1000 + next(400) as i64, 60.0, 25.0);
                    // Two hundredths, each from several HDOPs (0.9, 0.902, 0.904 are all 90).
                    g.hdop = (next(10) > 0).then(|| 0.9 + next(2) as f32 * 0.1 + next(3) as f32 * 0.002);
                    g.sats = (next(10) > 0).then(|| 9 + next(2) as u8);
                    g.speed_mps = (next(10) > 0).then(|| 0.8 + next(5) as f32 * 0.3);
                    g
                })
                .collect();
            let refs = refs(&f);
            let live: Vec<usize> = (0..f.len()).filter(|_| next(8) > 0).collect();
            let pairwise = |same: &dyn Fn(&Fix, &Fix) -> bool| {
                let (mut best, mut start) = (0i64, 0usize);
                for p in 1..live.len() {
                    if !same(refs[live[start]], refs[live[p]]) {
                        start = p;
                    }
                    best = best.max(refs[live[p]].time_ms - refs[live[start]].time_ms);
                }
                best
            };
            let signal = |a: &Fix, b: &Fix| {
                a.hdop_centi().is_some() && a.sats.is_some() && a.hdop_centi() == b.hdop_centi() && a.sats == b.sats
            };
            let keyed = longest(&refs, &live, signal_key, same_signal);
            assert_eq!(keyed, pairwise(&signal));
            let speed = |a: &Fix, b: &Fix| match (a.speed_mps, b.speed_mps) {
                (Some(x), Some(y)) => x > 1.0 && (x - y).abs() <= 0.5,
                _ => false,
            };
            let keyed = longest(
                &refs,
                &live,
                |g| g.speed_mps,
                |a, g| matches!((a, g.speed_mps), (Some(x), Some(y)) if *x > 1.0 && (x - y).abs() <= 0.5),
            );
            assert_eq!(keyed, pairwise(&speed));
        }
    }

    #[test]
    fn rule_honest_driving_has_no_simulator_fingerprint() {
        assert!(run(&drive(1800, 12.0, 2.0)).is_empty());
    }

    #[test]
    fn rule_constant_hdop_and_satellites_for_15_minutes_is_a_simulator() {
        let mut f = drive(1200, 12.0, 2.0);
        for g in &mut f {
            g.hdop = Some(1.0);
            g.sats = Some(10);
        }
        assert_eq!(run(&f)[0].detector, Detector::ConstantSignal);
    }

    #[test]
    fn rule_a_constant_receiver_speed_for_5_minutes_is_a_simulator() {
        let mut f = drive(600, 12.0, 2.0);
        for g in &mut f {
            g.speed_mps = Some(12.0);
        }
        assert_eq!(run(&f)[0].detector, Detector::ConstantSpeed);
    }

    #[test]
    fn rule_white_noise_on_a_made_up_path_is_a_simulator() {
        let mut f = drive(600, 12.0, 0.0);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for g in &mut f {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 2001) as f64 / 1000.0 - 1.0; // ±1 → ±4 m
            let v = ((x >> 20) % 2001) as f64 / 1000.0 - 1.0;
            g.lat += 4.0 * u / 111_195.0;
            g.lon += 4.0 * v / 55_000.0;
        }
        let ev = run(&f);
        assert!(ev.iter().any(|e| e.detector == Detector::WhiteNoise), "{ev:?}");
    }
}
