//! IMU against GNSS, for sources with camera telemetry (GPMF, CAMM, BlackVue `3gf`): a camera
//! that drives shakes and turns. Two rules over a camera source's whole track ([`check_source`]:
//! all its accepted fixes, so cutting a made-up track into short segments does not dodge them),
//! each withholding every segment of the source (a spoofed position fed to a camera that sits on
//! a desk, or an IMU stream made up beside a made-up track):
//!
//! - `imu_still`: in windows of `trust.imu.window_s` where the fixes move faster than
//!   `trust.imu.min_speed_mps`, the accelerometer's vibration (RMS of the magnitude about its
//!   mean, orientation-free) stays below `trust.imu.min_vibration_mps2` in at least two windows
//!   and in more than half of the windows checked;
//! - `imu_turn`: turns of the GNSS track (heading change ≥ `trust.imu.min_turn_deg` within
//!   `trust.imu.turn_window_s`) that the gyroscope did not see — its integrated angular rate
//!   (magnitude, so any mounting works) below `trust.imu.min_turn_share` of the heading change
//!   — at least `trust.imu.max_unseen_turns` of them and more than half of the turns checked.
//!
//! Windows and turns without IMU samples are not checked: a missing stream is no evidence
//! (NMEA sources have none), a contradicting one is.

use super::policy::TrustKernels;
use super::simulator::segment_finding;
use super::{Detector, Finding};
use crate::fix::Fix;
pub use crate::ingest::telemetry::{ImuSample, Sensor};

/// The samples of `imu` (sorted by time) between `from_ms` and `to_ms` inclusive.
///
/// ```
/// use tessera::trust::imu::{between, ImuSample, Sensor};
/// let s = |t: i64| ImuSample { time_us: t * 1000, sensor: Sensor::Accel, xyz: [0.0; 3], line: 1 };
/// let v = [s(0), s(10), s(20)];
/// assert_eq!(between(&v, 5, 20).len(), 2);
/// ```
pub fn between(imu: &[ImuSample], from_ms: i64, to_ms: i64) -> &[ImuSample] {
    let a = imu.partition_point(|s| s.time_us < from_ms * 1000);
    let b = imu.partition_point(|s| s.time_us <= to_ms * 1000);
    &imu[a..b.max(a)]
}

/// Check a camera source's whole track (its accepted fixes, in order) against its IMU samples
/// (sorted by time): the findings, each withholding the source's every segment, or none.
///
/// ```
/// use tessera::{fix::Fix, trust::imu::check_source};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// let f: Vec<Fix> = (0..10).map(|i| Fix::new(i * 1000, 52.5, 13.4)).collect();
/// let refs: Vec<&Fix> = f.iter().collect();
/// assert!(check_source(&refs, &[], &k).is_empty());
/// ```
pub fn check_source(fixes: &[&Fix], imu: &[ImuSample], k: &TrustKernels) -> Vec<Finding> {
    let live: Vec<usize> = (0..fixes.len()).collect();
    let (mut withheld, mut findings) = (vec![false; fixes.len()], Vec::new());
    check(fixes, &live, imu, k, &mut withheld, &mut findings);
    for f in &mut findings {
        f.detail.push_str(" (the whole source is withheld)");
    }
    findings
}

/// Check a segment's moving fixes (`live`) against the source's IMU samples (sorted by time),
/// marking every live fix `withheld` when a rule fires.
///
/// ```
/// use tessera::{fix::Fix, trust::imu::{check, ImuSample, Sensor}};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // 3 minutes east at 12 m/s while the accelerometer reads gravity and nothing else.
/// let f: Vec<Fix> = (0..180).map(|i| Fix::new(i * 1000, 52.5, 13.4 + i as f64 * 12.0 / 67_700.0)).collect();
/// let imu: Vec<ImuSample> = (0..1800).map(|i| ImuSample { time_us: i * 100_000, sensor: Sensor::Accel,
///     xyz: [0.0, 9.81, 0.0], line: i as u32 }).collect();
/// let refs: Vec<&Fix> = f.iter().collect();
/// let live: Vec<usize> = (0..f.len()).collect();
/// let (mut withheld, mut ev) = (vec![false; f.len()], Vec::new());
/// check(&refs, &live, &imu, &k, &mut withheld, &mut ev);
/// assert_eq!(ev[0].detector.as_str(), "imu_still");
/// assert!(withheld.iter().all(|w| *w));
/// ```
pub fn check(
    fixes: &[&Fix],
    live: &[usize],
    imu: &[ImuSample],
    k: &TrustKernels,
    withheld: &mut [bool],
    findings: &mut Vec<Finding>,
) {
    if live.len() < 3 || imu.is_empty() {
        return;
    }
    let before = findings.len();
    still(fixes, live, imu, k, findings);
    turns(fixes, live, imu, k, findings);
    if findings.len() > before {
        for &i in live {
            withheld[i] = true;
        }
    }
}

/// RMS of the acceleration magnitude about its mean, m/s² (`None` under 10 samples).
fn vibration(samples: &[ImuSample]) -> Option<f64> {
    let mags: Vec<f64> = samples
        .iter()
        .filter(|s| s.sensor == Sensor::Accel)
        .map(|s| s.xyz.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt())
        .collect();
    if mags.len() < 10 {
        return None;
    }
    let mean = mags.iter().sum::<f64>() / mags.len() as f64;
    Some((mags.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / mags.len() as f64).sqrt())
}

fn still(fixes: &[&Fix], live: &[usize], imu: &[ImuSample], k: &TrustKernels, findings: &mut Vec<Finding>) {
    let (mut checked, mut quiet, mut lowest) = (0u32, 0u32, f64::INFINITY);
    let mut start = 0;
    while start < live.len() {
        let t0 = fixes[live[start]].time_ms;
        let end = start + live[start..].partition_point(|&i| fixes[i].time_ms - t0 < k.imu_window_ms);
        let w = &live[start..end];
        start = end;
        let dt = (fixes[w[w.len() - 1]].time_ms - t0) as f64 / 1000.0;
        if w.len() < 2 || dt < k.imu_window_ms as f64 / 2000.0 || super::path_m(fixes, w) / dt < k.imu_min_speed_mps {
            continue;
        }
        let Some(v) = vibration(between(imu, t0, fixes[w[w.len() - 1]].time_ms)) else {
            continue;
        };
        checked += 1;
        if v < k.imu_min_vibration_mps2 {
            quiet += 1;
            lowest = lowest.min(v);
        }
    }
    if quiet >= 2 && 2 * quiet > checked {
        findings.push(segment_finding(
            fixes,
            live,
            Detector::ImuStill,
            "trust.imu.min_vibration_mps2",
            format!("{lowest:.3} m/s² vibration (lowest) in {quiet} of {checked} moving windows"),
            format!("{} m/s²", k.imu_min_vibration_mps2),
            &format!(
                "the accelerometer did not shake while the positions moved faster than {} m/s: the camera was not in the vehicle",
                k.imu_min_speed_mps
            ),
        ));
    }
}

/// Heading of the step from `a` to `b`, radians, or `None` under 3 m.
fn heading(a: &Fix, b: &Fix) -> Option<f64> {
    let (e, n) = super::enu(a, b);
    (super::hypot(e, n) >= 3.0).then(|| e.atan2(n))
}

/// Integrated gyroscope magnitude over samples, radians (`None` under 3 samples).
fn gyro_angle(samples: &[ImuSample]) -> Option<f64> {
    let g: Vec<&ImuSample> = samples.iter().filter(|s| s.sensor == Sensor::Gyro).collect();
    if g.len() < 3 {
        return None;
    }
    let mag = |s: &ImuSample| s.xyz.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    Some(
        g.windows(2)
            .map(|p| (mag(p[0]) + mag(p[1])) / 2.0 * (p[1].time_us - p[0].time_us) as f64 / 1e6)
            .sum(),
    )
}

fn turns(fixes: &[&Fix], live: &[usize], imu: &[ImuSample], k: &TrustKernels, findings: &mut Vec<Finding>) {
    let heads: Vec<Option<f64>> = live.windows(2).map(|p| heading(fixes[p[0]], fixes[p[1]])).collect();
    let (mut checked, mut unseen, mut worst) = (0u32, 0u32, (f64::INFINITY, 0.0));
    let mut i = 0;
    while i < heads.len() {
        let (Some(h0), t0) = (heads[i], fixes[live[i]].time_ms) else {
            i += 1;
            continue;
        };
        let turn = (i + 1..heads.len())
            .take_while(|&j| fixes[live[j + 1]].time_ms - t0 <= k.imu_turn_window_ms)
            .find_map(|j| {
                let d =
                    (heads[j]? - h0 + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
                (d.abs() >= k.imu_min_turn_rad).then_some((j, d.abs()))
            });
        let Some((j, turned)) = turn else {
            i += 1;
            continue;
        };
        let t1 = fixes[live[j + 1]].time_ms;
        if let Some(seen) = gyro_angle(between(imu, t0 - 1000, t1 + 1000)) {
            checked += 1;
            if seen < k.imu_min_turn_share * turned {
                unseen += 1;
                if seen / turned < worst.0 {
                    worst = (seen / turned, turned);
                }
            }
        }
        i = j + 1;
    }
    if unseen >= k.imu_max_unseen_turns && 2 * unseen > checked {
        findings.push(segment_finding(
            fixes,
            live,
            Detector::ImuTurn,
            "trust.imu.min_turn_share",
            format!(
                "{unseen} of {checked} turns not seen by the gyroscope (worst: {:.0} % of a {:.0}° turn)",
                worst.0 * 100.0,
                worst.1.to_degrees()
            ),
            format!("{:.0} % of each turn", k.imu_min_turn_share * 100.0),
            "the track turns, the camera's gyroscope does not: the positions are not the camera's",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> TrustKernels {
        crate::policy::Policy::default().kernels().unwrap().trust.unwrap()
    }

    /// A drive east then north (a 90° left turn at 60 s), 12 m/s, 1 Hz fixes.
    fn drive() -> Vec<Fix> {
        let m = 1.0 / 111_320.0;
        (0..120)
            .map(|i| {
                let (e, n) = if i <= 60 {
                    (i as f64 * 12.0, 0.0)
                } else {
                    (720.0, (i - 60) as f64 * 12.0)
                };
                Fix::new(i * 1000, 52.5 + n * m, 13.4 + e * m / 0.6088)
            })
            .collect()
    }

    /// 10 Hz IMU: gravity plus vibration `vib`, gyro `turn_rate` rad/s during the turn second.
    fn imu(vib: f32, turn_rate: f32) -> Vec<ImuSample> {
        let mut out = Vec::new();
        for i in 0..1200i64 {
            let wobble = if i % 2 == 0 { vib } else { -vib };
            out.push(ImuSample {
                time_us: i * 100_000,
                sensor: Sensor::Accel,
                xyz: [0.0, 9.81 + wobble, 0.0],
                line: 0,
            });
            let w = if (600..610).contains(&i) { turn_rate } else { 0.0 };
            out.push(ImuSample {
                time_us: i * 100_000,
                sensor: Sensor::Gyro,
                xyz: [0.0, w, 0.0],
                line: 0,
            });
        }
        out.sort_by_key(|s| (s.time_us, s.sensor));
        out
    }

    fn run(imu: &[ImuSample]) -> Vec<Finding> {
        let f = drive();
        let refs: Vec<&Fix> = f.iter().collect();
        let live: Vec<usize> = (0..f.len()).collect();
        let (mut w, mut ev) = (vec![false; f.len()], Vec::new());
        check(&refs, &live, imu, &k(), &mut w, &mut ev);
        ev
    }

    #[test]
    fn rule_imu_still_a_camera_that_does_not_shake_while_moving_earns_nothing() {
        let ev = run(&imu(0.0, 1.57));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].detector, Detector::ImuStill);
        assert_eq!(ev[0].policy_key, "trust.imu.min_vibration_mps2");
    }

    #[test]
    fn rule_imu_turn_a_track_turn_the_gyroscope_did_not_see_withholds() {
        // A single unseen turn is not enough (max_unseen_turns = 2) ...
        assert!(run(&imu(0.3, 0.0)).is_empty());
        // ... two are.
        let f = drive();
        let mut g: Vec<Fix> = f.clone();
        let m = 1.0 / 111_320.0;
        for (i, x) in g.iter_mut().enumerate().skip(90) {
            // a right turn back east at 90 s
            let e = 720.0 + (i - 90) as f64 * 12.0;
            x.lat = 52.5 + 360.0 * m;
            x.lon = 13.4 + e * m / 0.6088;
        }
        let refs: Vec<&Fix> = g.iter().collect();
        let live: Vec<usize> = (0..g.len()).collect();
        let (mut w, mut ev) = (vec![false; g.len()], Vec::new());
        check(&refs, &live, &imu(0.3, 0.0), &k(), &mut w, &mut ev);
        assert_eq!(
            ev.iter().map(|e| e.detector).collect::<Vec<_>>(),
            [Detector::ImuTurn],
            "{ev:?}"
        );
    }

    #[test]
    fn rule_imu_a_shaking_camera_whose_gyroscope_sees_the_turn_keeps_its_rewards() {
        assert!(run(&imu(0.3, 1.57)).is_empty());
        // No IMU at all: nothing to contradict.
        assert!(run(&[]).is_empty());
    }
}
