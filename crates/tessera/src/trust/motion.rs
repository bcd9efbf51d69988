//! Movement and sampling floors, and multipath spikes.
//!
//! - `spike`: a fix further than `trust.motion.max_spike_m` from the straight line between its
//!   neighbours (at its time), and further than half their distance, is skipped; the neighbours
//!   are joined as if it were not there (a multipath jump costs an honest driver nothing, and
//!   does not trip the kinematics rules).
//! - `stationary`: a fix whose displacement over the half `trust.motion.window_s` before it and
//!   the half after it are both below `trust.motion.min_speed_mps` earns no cells (walking,
//!   parked, wandering noise; a U-turn is not a stop).
//! - `sparse_fill` (in [`super::check_segment`]): no grid path between fixes further apart than
//!   `trust.motion.max_fill_s`.

use super::policy::TrustKernels;
use super::{enu, Detector, Effect, Finding};
use crate::fix::Fix;
use crate::quality::GeoPoint;

/// `idx` without its spikes; one finding when any was skipped.
///
/// ```
/// use tessera::{fix::Fix, trust::motion::despike};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// let mut f: Vec<Fix> = (0..5).map(|i| Fix::new(i * 1000, 60.0 + i as f64 * 1e-4, 25.0)).collect();
/// f[2].lon += 0.002; // 111 m east for one fix
/// let refs: Vec<&Fix> = f.iter().collect();
/// let mut ev = Vec::new();
/// assert_eq!(despike(&refs, &[0, 1, 2, 3, 4], &k, &mut ev), vec![0, 1, 3, 4]);
/// assert_eq!(ev[0].detector.as_str(), "spike");
/// ```
pub fn despike(fixes: &[&Fix], idx: &[usize], k: &TrustKernels, findings: &mut Vec<Finding>) -> Vec<usize> {
    despike_with(fixes, idx, k, findings, &mut super::Steps::new(fixes.len()))
}

/// [`despike`], keeping in `steps` each step it measured from the last kept fix.
pub(crate) fn despike_with(
    fixes: &[&Fix],
    idx: &[usize],
    k: &TrustKernels,
    findings: &mut Vec<Finding>,
    steps: &mut super::Steps,
) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(idx.len());
    let (mut n, mut worst, mut span) = (0u64, 0.0f64, (i64::MAX, i64::MIN));
    let mut cos_lat = crate::trig::NearSinCos::NONE;
    for (p, &b) in idx.iter().enumerate() {
        if let (Some(&a), Some(&c)) = (out.last(), idx.get(p + 1)) {
            let (fa, fb, fc) = (fixes[a], fixes[b], fixes[c]);
            let span_ms = fc.time_ms - fa.time_ms;
            if span_ms > 0 && span_ms <= 10_000 {
                let frac = (fb.time_ms - fa.time_ms) as f64 / span_ms as f64;
                let (bx, by) = enu(fa, fb);
                steps.put(a, b, (bx, by));
                if !near_path(fa, fc, (bx, by), frac, k.max_spike_m, &mut cos_lat) {
                    let (cx, cy) = enu(fa, fc);
                    let dev = super::hypot(bx - frac * cx, by - frac * cy);
                    if dev > k.max_spike_m && dev > 0.5 * super::hypot(cx, cy) {
                        n += 1;
                        worst = worst.max(dev);
                        span = (span.0.min(fb.time_ms), span.1.max(fb.time_ms));
                        continue;
                    }
                }
            }
        }
        out.push(b);
    }
    if n > 0 {
        findings.push(Finding {
            detector: Detector::Spike,
            start_ms: span.0,
            end_ms: span.1,
            measured: format!("{worst:.0} m off the path"),
            threshold: format!("{:.0} m", k.max_spike_m),
            policy_key: "trust.motion.max_spike_m",
            effect: Effect::SkipFix,
            fixes: n,
            meters: 0,
            detail: format!("{n} multipath spikes skipped; their neighbours were joined"),
        });
    }
    out
}

/// Whether the fix `b`, `(bx, by)` = `enu(fa, fb)` from `fa`, is certainly ([`super::certain`])
/// within `max_m` of the point `frac` of the way from `fa` to `fc` — nearly always, decided
/// without an exact length and without the C library's cosine for `enu(fa, fc)`. `false`:
/// the exact deviation must decide.
///
/// The deviation `(bx − frac·cx, by − frac·cy)` from [`super::enu_near`]'s `(cx, cy)` differs
/// from the one from [`enu`]'s only in its east part, by at most `|frac|·bound` (`cy` is the
/// same) and the rounding of two operations on terms up to `|bx| + |frac·cx|` (within
/// 4.4 × 10⁻¹⁶ of that sum; 10⁻¹⁵ is used). Its length moves by at most as much, so that is
/// added to the fast length's own [`super::certain::err`].
#[inline]
fn near_path(
    fa: &Fix,
    fc: &Fix,
    (bx, by): (f64, f64),
    frac: f64,
    max_m: f64,
    cos_lat: &mut crate::trig::NearSinCos,
) -> bool {
    let ((cx, cy), bound) = super::enu_near(fa, fc, cos_lat);
    let (ux, uy) = (bx - frac * cx, by - frac * cy);
    let v = super::fast_hypot(ux, uy);
    let e = super::certain::err(v) + frac.abs() * bound + 1e-15 * (bx.abs() + (frac * cx).abs());
    super::certain::above_within(v, e, max_m) == Some(false)
}

/// For each fix of `seq`, whether it moves at least at the floor speed (displacement to the fix
/// half a window before it, or from it to the fix half a window after it). One finding when any
/// fix is below.
///
/// ```
/// use tessera::{fix::Fix, trust::motion::floor};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // walking pace: 1.4 m/s north for 2 minutes
/// let f: Vec<Fix> = (0..120).map(|i| Fix::new(i * 1000, 60.0 + i as f64 * 1.4 / 111_195.0, 25.0)).collect();
/// let refs: Vec<&Fix> = f.iter().collect();
/// let mut ev = Vec::new();
/// let seq: Vec<usize> = (0..120).collect();
/// assert!(floor(&refs, &seq, &k, &mut ev).iter().all(|m| !m));
/// assert_eq!(ev[0].detector.as_str(), "stationary");
/// ```
pub fn floor(fixes: &[&Fix], seq: &[usize], k: &TrustKernels, findings: &mut Vec<Finding>) -> Vec<bool> {
    floor_at(fixes, &super::points(fixes), seq, k, findings)
}

/// [`floor`] with `pts[i]` the position of `fixes[i]` (its latitude's cosine computed once).
pub(crate) fn floor_at(
    fixes: &[&Fix],
    pts: &[GeoPoint],
    seq: &[usize],
    k: &TrustKernels,
    findings: &mut Vec<Finding>,
) -> Vec<bool> {
    if k.min_speed_mps == 0.0 {
        return vec![true; seq.len()];
    }
    let half = k.floor_window_ms / 2;
    let t = |p: usize| fixes[seq[p]].time_ms;
    let mut moving = vec![false; seq.len()];
    // ahead_of[m] = (p, fast speed from p to m) of the last fix p whose window ahead ends at m.
    let mut ahead_of: Vec<Option<(usize, Option<f64>)>> = vec![None; seq.len()];
    let (mut j, mut m) = (0usize, 0usize);
    let (mut slow, mut fastest_slow, mut span) = (0u64, 0.0f64, (i64::MAX, i64::MIN));
    let mut slow_m = 0.0;
    for p in 0..seq.len() {
        while j < p && t(j + 1) <= t(p) - half {
            j += 1;
        }
        if m < p {
            m = p;
        }
        while m + 1 < seq.len() && t(m) < t(p) + half {
            m += 1;
        }
        // The faster of the two half windows: a U-turn is not a stop.
        let half_speed = |a: usize, b: usize| {
            let dt = (fixes[b].time_ms - fixes[a].time_ms) as f64 / 1000.0;
            if dt > 0.0 {
                pts[a].distance_m(&pts[b]) / dt
            } else {
                0.0
            }
        };
        // The same speed as a fast value (`certain`), which decides unless it is near the floor.
        let fast_speed = |a: usize, b: usize| {
            let dt = (fixes[b].time_ms - fixes[a].time_ms) as f64 / 1000.0;
            if dt > 0.0 {
                pts[a].distance_fast_m(&pts[b]).map(|d| d / dt)
            } else {
                Some(0.0)
            }
        };
        // At a steady rate the window behind p is the window ahead of an earlier fix: its
        // speed (the same pair, so the same value) is taken from there.
        let behind = match ahead_of[p] {
            Some((a, v)) if a == j => v,
            _ => fast_speed(seq[j], seq[p]),
        };
        let ahead = fast_speed(seq[p], seq[m]);
        ahead_of[m] = Some((p, ahead));
        // The larger of two fast values is within its own bound of the larger exact value.
        let decided = behind
            .zip(ahead)
            .and_then(|(b, a)| super::certain::at_least(b.max(a), k.min_speed_mps));
        let exact = || half_speed(seq[j], seq[p]).max(half_speed(seq[p], seq[m]));
        let (is_moving, speed) = match decided {
            Some(true) => (true, None),
            _ => {
                let speed = exact();
                (speed >= k.min_speed_mps, Some(speed))
            }
        };
        moving[p] = is_moving;
        if let (false, Some(speed)) = (is_moving, speed) {
            slow += 1;
            fastest_slow = fastest_slow.max(speed);
            span = (span.0.min(t(p)), span.1.max(t(p)));
            if p > 0 {
                slow_m += pts[seq[p - 1]].distance_m(&pts[seq[p]]);
            }
        }
    }
    if slow > 0 {
        findings.push(Finding {
            detector: Detector::Stationary,
            start_ms: span.0,
            end_ms: span.1,
            measured: format!("{slow} fixes at ≤ {fastest_slow:.1} m/s"),
            threshold: format!("{:.1} m/s over {} s", k.min_speed_mps, k.floor_window_ms / 1000),
            policy_key: "trust.motion.min_speed_mps",
            effect: Effect::WithholdFixes,
            fixes: slow,
            meters: slow_m.round() as u64,
            detail: "stopped, walking pace or a parked device's wandering noise earns no cells".into(),
        });
    }
    moving
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::*;

    #[test]
    fn rule_near_path_is_true_only_when_the_exact_deviation_is_within_the_threshold() {
        let (mut clear, mut fast) = (0u32, 0u32);
        walks(0x2545_f491_4f6c_dd1d, |u, a, deg, cos_lat| {
            let (b, c) = (near(u, a, deg, 1000), near(u, a, deg, 2000));
            let frac = u.next();
            let (bx, by) = enu(a, &b);
            let (cx, cy) = enu(a, &c);
            let dev = super::super::hypot(bx - frac * cx, by - frac * cy);
            for t in around(dev) {
                if near_path(a, &c, (bx, by), frac, t, cos_lat) {
                    assert!(dev <= t, "{a:?} {b:?} {c:?} {frac}: {dev} > {t}");
                }
            }
            clear += 1;
            fast += u32::from(near_path(a, &c, (bx, by), frac, 2.0 * dev, cos_lat));
        });
        // Well clear of the threshold, the fast test decides (nearly) every time.
        assert!(fast as f64 >= 0.99 * clear as f64, "{fast} of {clear}");
    }

    #[test]
    fn rule_near_path_holds_for_a_spoofers_long_steps_with_tiny_deviations() {
        // Steps of 1,000 to 10,000 km whose middle fix lies within 10⁻¹²–1 m of the line: the
        // fast projection's own error (~10⁻¹⁶ of |Δλ|·R) is then far above `certain::err` of
        // the deviation, and only the bound `near_path` adds keeps its answer the exact one.
        far_steps(0x6a09_e667_f3bc_c908, 10_000, |u, a, c| {
            let cos_lat = anchored_near(u, ((a.lat + c.lat) / 2.0).to_radians());
            let frac = u.next();
            let (cx, cy) = enu(a, c);
            let (delta, turn) = (
                10f64.powi(-((u.next() * 13.0) as i32)),
                std::f64::consts::TAU * u.next(),
            );
            let (bx, by) = (frac * cx + delta * turn.cos(), frac * cy + delta * turn.sin());
            let dev = super::super::hypot(bx - frac * cx, by - frac * cy);
            let scale = (super::super::enu_angles(a, c).1 * super::super::EARTH_R).abs() * 1e-16;
            let mut err_alone_wrong = 0;
            for t in around_scale(dev, scale) {
                if near_path(a, c, (bx, by), frac, t, &mut { cos_lat }) {
                    assert!(dev <= t, "{a:?} {c:?} {frac} {bx} {by}: {dev} > {t}");
                }
                // What `certain::err` alone would have decided.
                let ((fx, fy), _) = super::super::enu_near(a, c, &mut { cos_lat });
                let v = super::super::fast_hypot(bx - frac * fx, by - frac * fy);
                err_alone_wrong += u32::from(super::super::certain::above(v, t) == Some(false) && dev > t);
            }
            err_alone_wrong
        });
    }

    #[test]
    fn rule_a_multipath_spike_is_skipped_and_its_neighbours_joined() {
        let mut f = drive(60, 10.0, 1.0);
        f[30].lat += 80.0 / 111_195.0;
        let seq: Vec<usize> = (0..60).collect();
        let mut ev = Vec::new();
        let out = despike(&refs(&f), &seq, &k(), &mut ev);
        assert_eq!(out.len(), 59);
        assert!(!out.contains(&30));
        assert_eq!(ev[0].effect, Effect::SkipFix);
    }

    #[test]
    fn rule_a_sharp_honest_turn_is_not_a_spike() {
        // 10 m/s east, then north: the corner fix is ~7 m from its neighbours' chord.
        let m = 1.0 / 111_195.0;
        let lon_m = m / (60.0f64).to_radians().cos();
        let mut f: Vec<Fix> = (0..10)
            .map(|i| Fix::new(i * 1000, 60.0, 25.0 + i as f64 * 10.0 * lon_m))
            .collect();
        f.extend((1..10).map(|i| Fix::new((9 + i) * 1000, 60.0 + i as f64 * 10.0 * m, 25.0 + 90.0 * lon_m)));
        let seq: Vec<usize> = (0..f.len()).collect();
        let mut ev = Vec::new();
        assert_eq!(despike(&refs(&f), &seq, &k(), &mut ev).len(), f.len());
        assert!(ev.is_empty());
    }

    #[test]
    fn rule_a_stop_at_a_light_withholds_only_the_stop() {
        // 60 s driving, 60 s stopped, 60 s driving
        let mut f = drive(60, 10.0, 0.5);
        let last = f[59].clone();
        for i in 0..60 {
            let mut s = last.clone();
            s.time_ms += (i + 1) * 1000;
            f.push(s);
        }
        let start = f.len() as i64;
        for (i, mut g) in drive(60, 10.0, 0.5).into_iter().enumerate() {
            g.time_ms = last.time_ms + (start - 59 + i as i64) * 1000;
            g.lat += last.lat - 60.17;
            g.lon += last.lon - 24.94;
            f.push(g);
        }
        let seq: Vec<usize> = (0..f.len()).collect();
        let mut ev = Vec::new();
        let moving = floor(&refs(&f), &seq, &k(), &mut ev);
        let slow = moving.iter().filter(|m| !**m).count();
        // the 60 s stop less the 15 s at each end whose other half window moves
        assert!((25..=60).contains(&slow), "{slow}");
        assert!(moving[..45].iter().all(|m| *m) && moving[f.len() - 45..].iter().all(|m| *m));
    }

    #[test]
    fn rule_walking_pace_and_a_parked_device_earn_nothing() {
        let walk = drive(300, 1.4, 0.5);
        let parked: Vec<Fix> = drive(300, 0.0, 3.0);
        for f in [walk, parked] {
            let seq: Vec<usize> = (0..f.len()).collect();
            let mut ev = Vec::new();
            assert!(floor(&refs(&f), &seq, &k(), &mut ev).iter().all(|m| !m));
        }
    }

    #[test]
    fn rule_a_lone_fix_is_not_moving() {
        let f = drive(1, 10.0, 0.0);
        let mut ev = Vec::new();
        assert_eq!(floor(&refs(&f), &[0], &k(), &mut ev), vec![false]);
    }

    /// The movement floor as first written: every half-window speed measured exactly.
    fn floor_exact(f: &[Fix], k: &TrustKernels) -> (Vec<bool>, Vec<f64>) {
        let pts: Vec<GeoPoint> = f.iter().map(|x| GeoPoint::new(x.lat, x.lon)).collect();
        let half = k.floor_window_ms / 2;
        let speed = |a: usize, b: usize| {
            let dt = (f[b].time_ms - f[a].time_ms) as f64 / 1000.0;
            if dt > 0.0 {
                pts[a].distance_m(&pts[b]) / dt
            } else {
                0.0
            }
        };
        let (mut j, mut m) = (0, 0);
        let mut out = (Vec::new(), Vec::new());
        for p in 0..f.len() {
            while j < p && f[j + 1].time_ms <= f[p].time_ms - half {
                j += 1;
            }
            m = m.max(p);
            while m + 1 < f.len() && f[m].time_ms < f[p].time_ms + half {
                m += 1;
            }
            let v = speed(j, p).max(speed(p, m));
            out.0.push(v >= k.min_speed_mps);
            out.1.push(v);
        }
        out
    }

    #[test]
    fn rule_a_floor_exactly_at_a_measured_speed_is_decided_by_the_exact_speed() {
        // Floors equal to speeds the drive has (to the bit) and one unit in the last place
        // either side: the fast speeds cannot decide there, the exact ones must.
        let f = drive(400, 2.5, 1.5);
        let seq: Vec<usize> = (0..f.len()).collect();
        let mut k = k();
        let (_, speeds) = floor_exact(&f, &k);
        for (n, &v) in speeds.iter().enumerate().step_by(13) {
            for floor in [v, f64::from_bits(v.to_bits() + 1), f64::from_bits(v.to_bits() - 1)] {
                k.min_speed_mps = floor;
                let mut ev = Vec::new();
                let got = super::floor(&refs(&f), &seq, &k, &mut ev);
                let (want, _) = floor_exact(&f, &k);
                assert_eq!(got, want, "speed {n}, floor {floor}");
                let slow = want.iter().filter(|m| !**m).count() as u64;
                assert_eq!(ev.first().map_or(0, |e| e.fixes), slow);
                if let Some(e) = ev.first() {
                    let fastest = (0..f.len())
                        .filter(|&i| !want[i])
                        .map(|i| speeds[i])
                        .fold(0.0, f64::max);
                    assert!(e.measured.ends_with(&format!("≤ {fastest:.1} m/s")), "{}", e.measured);
                }
            }
        }
    }
}
