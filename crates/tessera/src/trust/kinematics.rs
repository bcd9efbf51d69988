//! Kinematics: what a road vehicle can do.
//!
//! - `acceleration`: the change of the velocity vector between the `trust.kinematics.window_s`
//!   before and after a fix (longitudinal and lateral together), against
//!   `trust.kinematics.max_accel_mps2`. Events are at least 10 s apart. From
//!   `trust.kinematics.max_events` events on, the whole segment is withheld (200 km/h through
//!   90° turns); fewer withhold only the fixes around each event (an honest glitch).
//! - `speed_mismatch`: the receiver's own speed (RMC/VTG, Doppler) against the speed of the
//!   positions around the fix; a segment where more than `trust.kinematics.max_mismatch_share`
//!   of the checked fixes differ by more than `trust.kinematics.speed_mismatch_mps` (and 25 %)
//!   is withheld: positions that were written, not measured.
//!
//! - `impossible_speed` ([`teleport_runs`]): `trust.kinematics.max_teleports` or more
//!   consecutive fixes rejected as `teleport` are a sustained impossible speed, not a glitch:
//!   the segments on both sides of the run are withheld.
//!
//! [`check`] runs over the moving fixes (spikes and stationary fixes already out).

use super::policy::TrustKernels;
use super::{Detector, Effect, Finding};
use crate::fix::Fix;
use crate::quality::GeoPoint;

/// Apply both rules to the moving fixes `live`, marking `withheld`.
///
/// ```
/// use tessera::{fix::Fix, trust::kinematics::check};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // 200 km/h north, then east from one second to the next, seven times
/// let m = 1.0 / 111_195.0;
/// let mut f = Vec::new();
/// let (mut lat, mut lon, mut t) = (60.0, 25.0, 0);
/// for leg in 0..8 {
///     for _ in 0..15 {
///         if leg % 2 == 0 { lat += 55.0 * m } else { lon += 110.0 * m }
///         t += 1000;
///         f.push(Fix::new(t, lat, lon));
///     }
/// }
/// let refs: Vec<&Fix> = f.iter().collect();
/// let live: Vec<usize> = (0..f.len()).collect();
/// let (mut withheld, mut ev) = (vec![false; f.len()], Vec::new());
/// check(&refs, &live, &k, &mut withheld, &mut ev);
/// assert!(withheld.iter().all(|w| *w));
/// assert_eq!(ev[0].effect.as_str(), "withhold_segment");
/// ```
pub fn check(fixes: &[&Fix], live: &[usize], k: &TrustKernels, withheld: &mut [bool], findings: &mut Vec<Finding>) {
    check_at(
        fixes,
        &super::points(fixes),
        &super::Steps::new(fixes.len()),
        live,
        k,
        withheld,
        findings,
    );
}

/// [`check`] with `pts[i]` the position of `fixes[i]` (its latitude's cosine computed once)
/// and the steps the despiker measured.
pub(crate) fn check_at(
    fixes: &[&Fix],
    pts: &[GeoPoint],
    steps: &super::Steps,
    live: &[usize],
    k: &TrustKernels,
    withheld: &mut [bool],
    findings: &mut Vec<Finding>,
) {
    if live.len() < 3 {
        return;
    }
    let w = k.accel_window_ms;
    let t = |p: usize| fixes[live[p]].time_ms;
    // (p, j, m, accel) of every fix whose windows are both present: the exact acceleration, or
    // `None` where a fast value showed it certainly within the threshold (no exact value was
    // computed: a fast one depends on the steps' order of evaluation and must not be used).
    let mut samples: Vec<Sample> = Vec::with_capacity(live.len() - 2);
    // ahead[p] = (m, fast velocity from p to m with its bound): at 1 Hz the window after p is
    // often the window before m, projected and divided by its duration once.
    let mut ahead: Vec<Option<(usize, Velocity)>> = vec![None; live.len()];
    let mut cos_lat = crate::trig::NearSinCos::NONE;
    let (mut j, mut m) = (0usize, 0usize);
    for p in 1..live.len() - 1 {
        while j + 1 < p && t(j + 1) <= t(p) - w {
            j += 1;
        }
        if m <= p {
            m = p + 1;
        }
        while m + 1 < live.len() && t(m) < t(p) + w {
            m += 1;
        }
        let (dt1, dt2) = (t(p) - t(j), t(m) - t(p));
        if dt1 < w / 2 || dt2 < w / 2 || dt1 > 2 * w || dt2 > 2 * w {
            continue;
        }
        let (s1, s2) = (dt1 as f64 / 1000.0, dt2 as f64 / 1000.0);
        // The window before p is the window after j: the same step over the same seconds.
        let first = match ahead[j] {
            Some((to, v)) if to == p => v,
            _ => per_second(steps.get_near(fixes, live[j], live[p], &mut cos_lat), s1),
        };
        let second = per_second(steps.get_near(fixes, live[p], live[m], &mut cos_lat), s2);
        ahead[p] = Some((m, second));
        // Within a road car's grip (decided by a fast value, `certain`), the value is only
        // compared with the threshold again; otherwise it is the exact one, from exact steps.
        let acc = match fast_accel(first, second, s1, s2, k.max_accel_mps2) {
            true => None,
            false => {
                let (x1, y1) = steps.get(fixes, live[j], live[p]);
                let (x2, y2) = steps.get(fixes, live[p], live[m]);
                let (dx, dy, mean_s) = (x2 / s2 - x1 / s1, y2 / s2 - y1 / s1, (s1 + s2) / 2.0);
                Some(super::hypot(dx, dy) / mean_s)
            }
        };
        samples.push((p, j, m, acc));
    }
    acceleration(fixes, live, k, &samples, withheld, findings);
    mismatch(fixes, pts, live, k, &samples, withheld, findings);
}

/// A fast ENU step ([`super::enu_near`]) and its bound (metres).
type Step = ((f64, f64), f64);

/// A fast step over its duration: east and north m/s and the bound over the same seconds.
#[derive(Debug, Clone, Copy)]
struct Velocity {
    x: f64,
    y: f64,
    bound: f64,
}

/// A fast step ([`Step`]) over its duration `s` (seconds).
#[inline]
fn per_second(((x, y), b): Step, s: f64) -> Velocity {
    Velocity {
        x: x / s,
        y: y / s,
        bound: b / s,
    }
}

/// `(p, j, m, accel)`: a fix, the ends of its two windows (indices into `live`) and the exact
/// acceleration over them, m/s² (`None`: certainly within the threshold).
type Sample = (usize, usize, usize, Option<f64>);

/// The acceleration between the steps `first` (over `s1` seconds) and `second` (over `s2`),
/// from fast steps ([`per_second`]: each divided by its duration), when it is certainly
/// ([`super::certain`]) at most `max`: `None` when the exact value must decide.
///
/// The velocity change's east part `x2/s2 − x1/s1` differs from the one from exact steps by at
/// most `b1/s1 + b2/s2` (the steps' bounds; the north parts are the same bits) and the rounding
/// of three operations on terms up to `|x1/s1| + |x2/s2|` (within 6.7 × 10⁻¹⁶ of that sum;
/// 10⁻¹⁵ is used). Its length over `mean_s` moves by at most that over `mean_s`, added to the
/// fast length's own [`super::certain::err`]. Most accelerations are far below `max`: those are
/// decided without the root and the divisions ([`super::certain::root_over_within`], the same
/// decision), the rest from the fast value.
#[inline]
fn fast_accel(first: Velocity, second: Velocity, s1: f64, s2: f64, max: f64) -> bool {
    // `v1.x` is `x1 / s1` and so on ([`per_second`]): the same bits as dividing here.
    let (v1, v2) = (first, second);
    let (dx, dy, mean_s) = (v2.x - v1.x, v2.y - v1.y, (s1 + s2) / 2.0);
    let moved = v1.bound + v2.bound + 1e-15 * (v1.x.abs() + v2.x.abs());
    // `fast_hypot`'s sum of squares, the same bits.
    let q = dx * dx + dy * dy;
    if super::certain::root_over_within(q, mean_s, 1.01 * moved, max) {
        return true;
    }
    let fast = q.sqrt() / mean_s;
    let e = super::certain::err(fast) + 1.01 * moved / mean_s;
    super::certain::above_within(fast, e, max) == Some(false)
}

fn acceleration(
    fixes: &[&Fix],
    live: &[usize],
    k: &TrustKernels,
    samples: &[Sample],
    withheld: &mut [bool],
    findings: &mut Vec<Finding>,
) {
    let t = |p: usize| fixes[live[p]].time_ms;
    // events: (first j, last m, max accel)
    let mut events: Vec<(usize, usize, f64)> = Vec::new();
    for &(p, j, m, acc) in samples {
        // (A NaN counts, as `acc <= max` is false for it.)
        let Some(acc) = acc else { continue };
        if acc <= k.max_accel_mps2 {
            continue;
        }
        match events.last_mut() {
            Some(e) if t(p) - t(e.1) < 10_000 => {
                e.1 = e.1.max(m);
                e.2 = e.2.max(acc);
            }
            _ => events.push((j, m, acc)),
        }
    }
    if events.is_empty() {
        return;
    }
    let worst = events.iter().map(|e| e.2).fold(0.0, f64::max);
    let threshold = format!("{:.1} m/s²", k.max_accel_mps2);
    if events.len() as u32 >= k.max_events {
        for &i in live {
            withheld[i] = true;
        }
        findings.push(Finding {
            detector: Detector::Acceleration,
            start_ms: t(0),
            end_ms: t(live.len() - 1),
            measured: format!("{} events, up to {worst:.1} m/s²", events.len()),
            threshold,
            policy_key: "trust.kinematics.max_accel_mps2",
            effect: Effect::WithholdSegment,
            fixes: live.len() as u64,
            meters: super::path_m(fixes, live).round() as u64,
            detail: format!(
                "{} accelerations beyond a road car's grip (segment withheld from {} events, trust.kinematics.max_events)",
                events.len(),
                k.max_events
            ),
        });
        return;
    }
    for (a, b, acc) in events {
        let idx: Vec<usize> = live[a..=b].to_vec();
        for &i in &idx {
            withheld[i] = true;
        }
        findings.push(Finding {
            detector: Detector::Acceleration,
            start_ms: t(a),
            end_ms: t(b),
            measured: format!("{acc:.1} m/s²"),
            threshold: threshold.clone(),
            policy_key: "trust.kinematics.max_accel_mps2",
            effect: Effect::WithholdFixes,
            fixes: idx.len() as u64,
            meters: super::path_m(fixes, &idx).round() as u64,
            detail: "an acceleration beyond a road car's grip: the fixes around it are withheld".into(),
        });
    }
}

fn mismatch(
    fixes: &[&Fix],
    pts: &[GeoPoint],
    live: &[usize],
    k: &TrustKernels,
    samples: &[Sample],
    withheld: &mut [bool],
    findings: &mut Vec<Finding>,
) {
    let (mut checked, mut bad, mut worst) = (0u64, 0u64, 0.0f64);
    for &(p, j, m, _) in samples {
        let Some(rx) = fixes[live[p]].speed_mps.filter(|s| s.is_finite()) else {
            continue;
        };
        let (a, c) = (live[j], live[m]);
        let dt = (fixes[c].time_ms - fixes[a].time_ms) as f64 / 1000.0;
        checked += 1;
        // Decided by the fast distance (`certain`) unless near either threshold: |rx − v| moves
        // by at most the error of v (and its own rounding), 0.25 v by a quarter of it.
        let fast = pts[a].distance_fast_m(&pts[c]).map(|d| {
            let v = d / dt;
            let diff = (f64::from(rx) - v).abs();
            let e = super::certain::err(v) + super::certain::err(diff);
            let over = super::certain::above_within(diff, e, k.speed_mismatch_mps);
            let rel = super::certain::above_within(diff, e + 0.25 * super::certain::err(v), 0.25 * v);
            (over, rel)
        });
        if let Some((Some(false), _) | (_, Some(false))) = fast {
            continue;
        }
        let v = pts[a].distance_m(&pts[c]) / dt;
        let diff = (f64::from(rx) - v).abs();
        if diff > k.speed_mismatch_mps && diff > 0.25 * v {
            bad += 1;
            worst = worst.max(diff);
        }
    }
    if checked < 30 || (bad as f64) <= k.max_mismatch_share * checked as f64 {
        return;
    }
    for &i in live {
        withheld[i] = true;
    }
    let t = |p: usize| fixes[live[p]].time_ms;
    findings.push(Finding {
        detector: Detector::SpeedMismatch,
        start_ms: t(0),
        end_ms: t(live.len() - 1),
        measured: format!(
            "{:.0} % of {checked} fixes, up to {worst:.1} m/s apart",
            100.0 * bad as f64 / checked as f64
        ),
        threshold: format!(
            "{:.0} % beyond {:.1} m/s",
            100.0 * k.max_mismatch_share,
            k.speed_mismatch_mps
        ),
        policy_key: "trust.kinematics.max_mismatch_share",
        effect: Effect::WithholdSegment,
        fixes: live.len() as u64,
        meters: super::path_m(fixes, live).round() as u64,
        detail: "the receiver's own speed does not match the speed of its positions".into(),
    });
}

/// Runs of consecutive teleport rejections: `teleport[i]` says whether fix `i` (of one source,
/// in order, gate failures left out) was rejected as a teleport, `segment[i]` its accepted
/// segment (`None` when rejected). Returns `(first, last)` fix indices of each run of
/// `max_teleports` or more, with the fixes of the accepted segments on both sides.
///
/// ```
/// use tessera::trust::kinematics::teleport_runs;
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// let seg = [Some(0), Some(0), None, None, None, None, None, None, Some(1), Some(1)];
/// let tel: Vec<bool> = seg.iter().map(|s| s.is_none()).collect();
/// assert_eq!(teleport_runs(&tel, &seg, &k), vec![(0, 9)]);
/// ```
pub fn teleport_runs(teleport: &[bool], segment: &[Option<u32>], k: &TrustKernels) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < teleport.len() {
        if !teleport[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < teleport.len() && teleport[i] {
            i += 1;
        }
        if (i - start) as u32 >= k.max_teleports {
            let before = segment[..start].iter().rev().find_map(|s| *s);
            let after = segment[i..].iter().find_map(|s| *s);
            let first = before
                .and_then(|b| segment.iter().position(|s| *s == Some(b)))
                .unwrap_or(start);
            let last = after
                .and_then(|a| segment.iter().rposition(|s| *s == Some(a)))
                .unwrap_or(i - 1);
            out.push((first, last));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::*;

    fn run(f: &[Fix]) -> (Vec<bool>, Vec<Finding>) {
        let live: Vec<usize> = (0..f.len()).collect();
        let (mut w, mut ev) = (vec![false; f.len()], Vec::new());
        check(&refs(f), &live, &k(), &mut w, &mut ev);
        (w, ev)
    }

    #[test]
    fn rule_a_fast_acceleration_is_kept_only_when_the_exact_one_is_within_the_threshold() {
        let (mut clear, mut fast) = (0u32, 0u32);
        let mut walk = 0u32;
        walks(0x51_7cc1_b727_220a, |u, a, deg, cos_lat| {
            let (s1, s2) = (0.5 + 5.0 * u.next(), 0.5 + 5.0 * u.next());
            let b = near(u, a, deg, (s1 * 1000.0) as i64);
            let c = near(u, &b, deg, (s2 * 1000.0) as i64);
            let ((x1, y1), (x2, y2)) = (super::super::enu(a, &b), super::super::enu(&b, &c));
            let (dx, dy) = (x2 / s2 - x1 / s1, y2 / s2 - y1 / s1);
            let exact = super::super::hypot(dx, dy) / ((s1 + s2) / 2.0);
            // Either step may be a kept exact one (bound 0) or a fast one.
            let step = |p: &Fix, q: &Fix, cos_lat: &mut crate::trig::NearSinCos, kept: bool| {
                if kept {
                    (super::super::enu(p, q), 0.0)
                } else {
                    super::super::enu_near(p, q, cos_lat)
                }
            };
            walk += 1;
            let (k1, k2) = (walk % 3 == 1, walk % 3 == 2);
            for t in around(exact) {
                let (first, second) = (step(a, &b, cos_lat, k1), step(&b, &c, cos_lat, k2));
                if fast_accel(per_second(first, s1), per_second(second, s2), s1, s2, t) {
                    assert!(exact <= t, "{a:?} {b:?} {c:?}: {exact} {t}");
                }
            }
            let (first, second) = (step(a, &b, cos_lat, k1), step(&b, &c, cos_lat, k2));
            clear += 1;
            fast += u32::from(fast_accel(
                per_second(first, s1),
                per_second(second, s2),
                s1,
                s2,
                2.0 * exact,
            ));
        });
        assert!(fast as f64 >= 0.99 * clear as f64, "{fast} of {clear}");
    }

    #[test]
    fn rule_a_fast_acceleration_holds_for_a_spoofers_long_steps_of_nearly_one_velocity() {
        // Two steps of 1,000 to 10,000 km at nearly the same velocity (the second aimed to
        // repeat the first): the fast step's own error (~10⁻¹⁶ of |Δλ|·R) is then far above
        // `certain::err` of the tiny acceleration, and only the bound `fast_accel` adds keeps
        // its answer the exact one.
        far_steps(0xbb67_ae85_84ca_a73b, 1000, |u, a, b| {
            let (x1, y1) = super::super::enu(a, b);
            // c: from b by the same east/north metres, through the same projection.
            let lat_c = (b.lat + y1.to_degrees() / super::super::EARTH_R).clamp(-90.0, 90.0);
            let cos_bc = ((b.lat + lat_c) / 2.0).to_radians().cos();
            let lon_c = wrap_lon(b.lon + (x1 / (super::super::EARTH_R * cos_bc)).to_degrees());
            let c = Fix::new(2000, lat_c, lon_c);
            let (x2, y2) = super::super::enu(b, &c);
            let exact = super::super::hypot(x2 - x1, y2 - y1);
            let cos_lat = anchored_near(u, ((b.lat + c.lat) / 2.0).to_radians());
            let scale = (super::super::enu_angles(b, &c).1 * super::super::EARTH_R).abs() * 1e-16;
            // The first step kept (exact), the second fast: its error alone moves the value.
            let first = ((x1, y1), 0.0);
            let mut err_alone_wrong = 0;
            for t in around_scale(exact, scale) {
                let second = super::super::enu_near(b, &c, &mut { cos_lat });
                if fast_accel(per_second(first, 1.0), per_second(second, 1.0), 1.0, 1.0, t) {
                    assert!(exact <= t, "{a:?} {b:?} {c:?}: {exact} {t}");
                }
                let ((fx, fy), _) = second;
                let v = super::super::fast_hypot(fx - x1, fy - y1);
                err_alone_wrong += u32::from(super::super::certain::above(v, t) == Some(false) && exact > t);
            }
            err_alone_wrong
        });
    }

    #[test]
    fn rule_honest_driving_has_no_kinematic_evidence() {
        let (w, ev) = run(&drive(900, 14.0, 3.0));
        assert!(ev.is_empty(), "{ev:?}");
        assert!(w.iter().all(|w| !w));
    }

    #[test]
    fn rule_one_glitch_withholds_only_the_fixes_around_it() {
        let mut f = drive(300, 14.0, 1.0);
        for g in f.iter_mut().skip(150).take(3) {
            g.lat += 150.0 / 111_195.0; // a 150 m step for 3 s
        }
        let (w, ev) = run(&f);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].effect, Effect::WithholdFixes);
        let n = w.iter().filter(|w| **w).count();
        assert!(n > 0 && n < 20, "{n}");
    }

    #[test]
    fn rule_a_receiver_speed_that_does_not_match_its_positions_withholds_the_segment() {
        let mut f = drive(300, 14.0, 1.0);
        for g in &mut f {
            g.speed_mps = Some(3.0);
        }
        let (w, ev) = run(&f);
        assert_eq!(ev[0].detector, Detector::SpeedMismatch);
        assert!(w.iter().all(|w| *w));
    }
}
