//! Quality and plausibility (server side): fix-level gates, then trace-level checks between
//! consecutive fixes of one source. A pure kernel: fixes in, verdicts out.
//!
//! Rules (each has a test named after it):
//! - gate: quality 0 → `fix_invalid`; HDOP missing → `hdop_missing`; HDOP above the limit →
//!   `hdop_too_high`; satellites below the minimum → `too_few_sats` (missing → `sats_missing`
//!   only when the policy requires a count);
//! - trace: a fix earlier than the previous accepted one → `time_backwards`, unless the trust
//!   policy is on, the step is longer than the gap limit and the position continues (within
//!   `trust.time.clock_step_m`): then the clock stepped back and the trace restarts in a new
//!   segment; at the same time →
//!   `duplicate_time`; implied speed above the limit → `teleport` (the fix is rejected and the
//!   trace restarts from it in a new segment, so a driver who really moved is not rejected for
//!   the rest of the file); a gap longer than the limit starts a new segment.

use crate::fix::Fix;
use crate::policy::Kernels;
use crate::report::Reason;
use geo::{Distance, Haversine, Point};

/// The outcome for one fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted into segment `n` (segments are numbered from 0 within a source).
    Accepted(u32),
    /// Rejected with a reason and detail.
    Rejected(Reason, String),
}

/// Check one fix against the fix-level gates.
///
/// ```
/// use tessera::{fix::Fix, policy::Policy, quality::gate};
/// let k = Policy::default().kernels().unwrap();
/// let mut f = Fix::new(0, 52.5, 13.4);
/// f.hdop = Some(6.0);
/// assert_eq!(gate(&f, &k).unwrap_err().0.as_str(), "hdop_too_high");
/// f.hdop = Some(1.0);
/// assert!(gate(&f, &k).is_ok());
/// ```
///
/// # Errors
/// The reason and detail when the fix fails a gate (that is the point of the function).
pub fn gate(fix: &Fix, k: &Kernels) -> Result<(), (Reason, String)> {
    if fix.quality == 0 {
        return Err((Reason::FixInvalid, "fix quality 0".into()));
    }
    let Some(h) = fix.hdop_centi() else {
        return Err((Reason::HdopMissing, "no HDOP reported".into()));
    };
    if h > k.max_hdop_centi {
        return Err((
            Reason::HdopTooHigh,
            format!("HDOP {} > {}", Centi(h), Centi(k.max_hdop_centi)),
        ));
    }
    match fix.sats {
        Some(s) if s < k.min_sats => Err((Reason::TooFewSats, format!("{s} satellites < {}", k.min_sats))),
        None if k.require_sats => Err((Reason::SatsMissing, "no satellite count".into())),
        _ => Ok(()),
    }
}

/// Hundredths written with two decimals: the text `format!("{:.2}", c as f64 / 100.0)` gives
/// (whose double is never at a rounding tie), without formatting a float for every rejected fix.
struct Centi(u32);

impl std::fmt::Display for Centi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Great-circle distance in metres.
///
/// ```
/// let d = tessera::quality::distance_m(52.5, 13.4, 52.5, 13.401);
/// assert!((d - 67.7).abs() < 0.5);
/// ```
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    Haversine.distance(Point::new(lon1, lat1), Point::new(lon2, lat2))
}

/// A position (degrees) with the cosine of its latitude kept, for many great-circle distances
/// to and from it: [`GeoPoint::distance_m`] costs two sines and an arcsine where [`distance_m`]
/// also takes two cosines — with the same result to the bit (the same operations in the same
/// order as `geo`'s `Haversine`, which `distance_m` calls; tested on random and edge positions).
///
/// ```
/// use tessera::quality::{distance_m, GeoPoint};
/// let (a, b) = (GeoPoint::new(52.5, 13.4), GeoPoint::new(52.5, 13.401));
/// assert_eq!(a.distance_m(&b).to_bits(), distance_m(52.5, 13.4, 52.5, 13.401).to_bits());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    cos_lat: f64,
}

impl GeoPoint {
    /// The point at (`lat`, `lon`) degrees.
    #[must_use]
    pub fn new(lat: f64, lon: f64) -> Self {
        GeoPoint {
            lat,
            lon,
            cos_lat: lat.to_radians().cos(),
        }
    }

    /// Great-circle distance to `other`, metres (haversine on the GRS80 mean radius, as
    /// [`distance_m`]).
    #[must_use]
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        // geo 0.33 `HaversineMeasure::distance`, with theta1.cos() and theta2.cos() kept.
        let two = 2.0f64;
        let delta_theta = (other.lat - self.lat).to_radians();
        let delta_lambda = (other.lon - self.lon).to_radians();
        let a = (delta_theta / two).sin().powi(2) + self.cos_lat * other.cos_lat * (delta_lambda / two).sin().powi(2);
        let c = two * a.sqrt().asin();
        geo::HaversineMeasure::GRS80_MEAN_RADIUS.radius() * c
    }

    /// [`GeoPoint::distance_m`] without libm, for points up to ~6 km apart (half the latitude
    /// and longitude differences within 10⁻³ rad); `None` farther (or for non-finite input).
    /// A *fast value* for the detectors' decisions (`trust::certain`): the same haversine with
    /// `sin x ≈ x − x³/6` (error ≤ x⁵/120, so ≤ 8.4 × 10⁻¹⁵ relative at |x| ≤ 10⁻³) and
    /// `asin z ≈ z + z³/6` (error ≤ 0.08 z⁵: ≤ 3.2 × 10⁻¹³ relative at z ≤ 1.5 × 10⁻³), and
    /// the C library's `sin`/`asin` within one unit in the last place: within 10⁻¹² of
    /// [`GeoPoint::distance_m`] relatively (tested), metres.
    #[must_use]
    // Always inlined: called once per fix in the detectors' loops; out of line, a profile of the
    // off-road detector showed its point arguments going through the stack (~10 ns a call).
    #[inline(always)]
    pub(crate) fn distance_fast_m(&self, other: &GeoPoint) -> Option<f64> {
        let x = (other.lat - self.lat).to_radians() / 2.0;
        let y = (other.lon - self.lon).to_radians() / 2.0;
        if !(x.abs() <= 1e-3 && y.abs() <= 1e-3) {
            return None;
        }
        const SIXTH: f64 = 1.0 / 6.0; // rounded: one more unit in the last place of a term ≤ 10⁻¹⁰
        let (sx, sy) = (x - x * x * x * SIXTH, y - y * y * y * SIXTH);
        let a = sx * sx + self.cos_lat * other.cos_lat * (sy * sy);
        let z = a.sqrt();
        Some(geo::HaversineMeasure::GRS80_MEAN_RADIUS.radius() * (2.0 * (z + z * z * z * SIXTH)))
    }
}

/// Run gates and trace checks over one source's fixes, in source order.
///
/// ```
/// use tessera::{fix::Fix, policy::Policy, quality::{clean, Verdict}};
/// let k = Policy::default().kernels().unwrap();
/// let mut a = Fix::new(0, 52.5, 13.4);
/// a.hdop = Some(1.0);
/// let mut b = a.clone();
/// b.time_ms = 1000;
/// b.lat = 53.5; // 111 km in one second
/// let v = clean(&[a, b], &k);
/// assert_eq!(v[0], Verdict::Accepted(0));
/// assert!(matches!(&v[1], Verdict::Rejected(r, _) if r.as_str() == "teleport"));
/// ```
pub fn clean(fixes: &[Fix], k: &Kernels) -> Vec<Verdict> {
    clean_geo(fixes, k).0
}

/// What [`clean_geo`] measured on the way, for the trust detectors (the same bits they would
/// compute): each gated fix's [`GeoPoint`], and for an accepted fix that follows an accepted fix
/// of its segment the metres from that one when cleaning measured them exactly (near the
/// teleport limit; a step far below it is decided without the exact metres) — `NaN` otherwise,
/// and the detectors measure it themselves.
pub(crate) struct Geo {
    /// `points[i]` for `fixes[i]`; `None` for a fix the gates rejected.
    pub points: Vec<Option<GeoPoint>>,
    /// `step_m[i]`: metres from the previous accepted fix of the same segment, or `NaN` (not
    /// measured, or not in a segment).
    pub step_m: Vec<f64>,
}

/// [`clean`], with the positions and steps it measured ([`Geo`]).
pub(crate) fn clean_geo(fixes: &[Fix], k: &Kernels) -> (Vec<Verdict>, Geo) {
    let mut geo = Geo {
        points: vec![None; fixes.len()],
        step_m: vec![f64::NAN; fixes.len()],
    };
    let mut out = Vec::with_capacity(fixes.len());
    // (time, position) of the last accepted fix (or teleport anchor).
    let mut last: Option<(i64, GeoPoint)> = None;
    let mut segment: u32 = 0;
    let mut segment_open = false;
    for f in fixes {
        if let Err((r, d)) = gate(f, k) {
            out.push(Verdict::Rejected(r, d));
            continue;
        }
        let here = GeoPoint::new(f.lat, f.lon);
        geo.points[out.len()] = Some(here);
        if let Some((t, at)) = last {
            let step_m = k.trust.as_ref().map_or(0.0, |t| t.clock_step_m);
            if t - f.time_ms > k.max_gap_ms && step_m > 0.0 && at.distance_m(&here) <= step_m {
                // A clock step: the position goes on, the time went back. Restart the trace
                // from here (trust.time.clock_step_m) instead of rejecting the rest of the file.
                if segment_open {
                    segment += 1;
                }
                last = Some((f.time_ms, here));
                out.push(Verdict::Accepted(segment));
                continue;
            }
            if f.time_ms < t {
                out.push(Verdict::Rejected(
                    Reason::TimeBackwards,
                    format!("{} ms before the previous fix", t - f.time_ms),
                ));
                continue;
            }
            if f.time_ms == t {
                out.push(Verdict::Rejected(
                    Reason::DuplicateTime,
                    "same time as the previous fix".into(),
                ));
                continue;
            }
            let dt = f.time_ms - t;
            // speed > max  ⇔  d[m] · 1e6 > max[mm/s] · dt[ms], decided by the fast distance
            // unless it is near the limit (`trust::certain`); the exact one where it decides or
            // is reported.
            let limit = k.max_speed_mm_s as f64 * dt as f64;
            let fast = at
                .distance_fast_m(&here)
                .map(|d| crate::trust::certain::above(d * 1e6, limit));
            let d = match fast {
                Some(Some(false)) => f64::NAN,
                _ => at.distance_m(&here),
            };
            if !d.is_nan() && d * 1e6 > limit {
                out.push(Verdict::Rejected(
                    Reason::Teleport,
                    format!("{:.0} m in {} ms = {:.1} m/s", d, dt, d * 1000.0 / dt as f64),
                ));
                last = Some((f.time_ms, here));
                if segment_open {
                    segment += 1;
                    segment_open = false;
                }
                continue;
            }
            if dt > k.max_gap_ms && segment_open {
                segment += 1;
            } else if segment_open {
                // `at` is the previous accepted fix of this segment: a clock step, a teleport
                // and a gap each start a new segment (or leave none open).
                geo.step_m[out.len()] = d;
            }
        }
        last = Some((f.time_ms, here));
        segment_open = true;
        out.push(Verdict::Accepted(segment));
    }
    (out, geo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn k() -> Kernels {
        Policy::default().kernels().unwrap()
    }

    fn fix(t_s: i64, lat: f64, lon: f64) -> Fix {
        let mut f = Fix::new(t_s * 1000, lat, lon);
        f.hdop = Some(1.0);
        f.sats = Some(8);
        f
    }

    #[test]
    fn rule_geopoint_distance_is_geo_haversine_to_the_bit() {
        // Edge positions (poles, antimeridian, the same point, a full half turn) and 200,000
        // pseudo-random pairs, half of them a few metres apart as consecutive fixes are.
        let mut pairs = vec![
            (90.0, 0.0, -90.0, 180.0),
            (0.0, 179.9999, 0.0, -179.9999),
            (52.5, 13.4, 52.5, 13.4),
            (-33.9, 18.4, 33.9, -161.6),
            (89.99999, 45.0, 89.99999, -135.0),
            (0.0, 0.0, 1e-12, 1e-12),
        ];
        let mut next = crate::test_rng::xorshift_unit(0x9E37_79B9_7F4A_7C15);
        for i in 0..200_000 {
            let (lat, lon) = (next() * 180.0 - 90.0, next() * 360.0 - 180.0);
            let (dlat, dlon) = if i % 2 == 0 {
                ((next() - 0.5) * 1e-3, (next() - 0.5) * 1e-3)
            } else {
                (next() * 180.0 - 90.0 - lat, next() * 360.0 - 180.0 - lon)
            };
            pairs.push((lat, lon, lat + dlat, lon + dlon));
        }
        for (a_lat, a_lon, b_lat, b_lon) in pairs {
            let want = distance_m(a_lat, a_lon, b_lat, b_lon);
            let got = GeoPoint::new(a_lat, a_lon).distance_m(&GeoPoint::new(b_lat, b_lon));
            assert_eq!(got.to_bits(), want.to_bits(), "({a_lat}, {a_lon}) → ({b_lat}, {b_lon})");
        }
    }

    fn reasons(v: &[Verdict]) -> Vec<String> {
        v.iter()
            .map(|v| match v {
                Verdict::Accepted(s) => format!("seg{s}"),
                Verdict::Rejected(r, _) => r.to_string(),
            })
            .collect()
    }

    #[test]
    fn gate_rejects_invalid_fix_quality() {
        let mut f = fix(0, 1.0, 1.0);
        f.quality = 0;
        assert_eq!(gate(&f, &k()).unwrap_err().0, Reason::FixInvalid);
    }

    #[test]
    fn rule_hdop_detail_writes_hundredths_as_the_float_formatting_did() {
        let mut x = 0x9e37_79b9u32;
        let check = |c: u32| assert_eq!(Centi(c).to_string(), format!("{:.2}", c as f64 / 100.0), "{c}");
        for c in (0..=100_000).chain([u32::MAX, u32::MAX - 1, 999_999_999, 1_000_000_005]) {
            check(c);
        }
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            check(x);
        }
    }

    #[test]
    fn gate_hdop_limit_is_inclusive() {
        let mut f = fix(0, 1.0, 1.0);
        f.hdop = Some(4.0);
        assert!(gate(&f, &k()).is_ok());
        f.hdop = Some(4.01);
        assert_eq!(gate(&f, &k()).unwrap_err().0, Reason::HdopTooHigh);
        f.hdop = None;
        assert_eq!(gate(&f, &k()).unwrap_err().0, Reason::HdopMissing);
    }

    #[test]
    fn gate_needs_four_satellites_and_missing_count_only_when_required() {
        let mut f = fix(0, 1.0, 1.0);
        f.sats = Some(3);
        assert_eq!(gate(&f, &k()).unwrap_err().0, Reason::TooFewSats);
        f.sats = Some(4);
        assert!(gate(&f, &k()).is_ok());
        f.sats = None;
        assert!(gate(&f, &k()).is_ok());
        let mut strict = k();
        strict.require_sats = true;
        assert_eq!(gate(&f, &strict).unwrap_err().0, Reason::SatsMissing);
    }

    #[test]
    fn trace_time_backwards_and_duplicates_are_rejected() {
        let v = clean(
            &[
                fix(10, 1.0, 1.0),
                fix(9, 1.0, 1.0),
                fix(10, 1.0, 1.0),
                fix(11, 1.0, 1.00001),
            ],
            &k(),
        );
        assert_eq!(reasons(&v), ["seg0", "time_backwards", "duplicate_time", "seg0"]);
    }

    #[test]
    fn trace_a_clock_step_back_restarts_a_segment_when_the_position_continues() {
        // the clock steps back one hour mid-drive; then a fix far away steps back too
        let v = clean(
            &[
                fix(3600, 1.0, 1.0),
                fix(3601, 1.0, 1.0001),
                fix(2, 1.0, 1.0002),
                fix(3, 1.0, 1.0003),
                fix(1, 2.0, 1.0),
            ],
            &k(),
        );
        assert_eq!(reasons(&v), ["seg0", "seg0", "seg1", "seg1", "time_backwards"]);
        let mut v1 = k();
        v1.trust = None;
        let v = clean(&[fix(3600, 1.0, 1.0), fix(2, 1.0, 1.0001), fix(3, 1.0, 1.0002)], &v1);
        assert_eq!(reasons(&v), ["seg0", "time_backwards", "time_backwards"]);
    }

    #[test]
    fn trace_teleport_is_rejected_and_restarts_a_segment() {
        // 1 s apart, 0.01° lat ≈ 1.1 km → 1100 m/s.
        let v = clean(
            &[
                fix(0, 1.0, 1.0),
                fix(1, 1.0001, 1.0),
                fix(2, 1.0101, 1.0),
                fix(3, 1.0102, 1.0),
            ],
            &k(),
        );
        assert_eq!(reasons(&v), ["seg0", "seg0", "teleport", "seg1"]);
    }

    #[test]
    fn trace_speed_at_the_limit_is_plausible() {
        // 0.0005° of latitude ≈ 55.6 m in 1 s: under 60 m/s.
        let v = clean(&[fix(0, 1.0, 1.0), fix(1, 1.0005, 1.0)], &k());
        assert_eq!(reasons(&v), ["seg0", "seg0"]);
    }

    #[test]
    fn rule_clean_measures_the_step_from_the_previous_accepted_fix_of_the_segment_only() {
        // A clock step, a bad HDOP, a duplicate time, a teleport, its anchor's neighbour and a gap.
        let mut bad = fix(5, 1.0, 1.0004);
        bad.hdop = Some(99.0);
        let fixes = [
            fix(3600, 1.0, 1.0),
            fix(3601, 1.0, 1.0001),
            fix(2, 1.0, 1.0002),
            fix(3, 1.0, 1.0003),
            bad,
            fix(3, 1.0, 1.0005),
            fix(6, 1.0, 1.0006),
            fix(7, 1.0101, 1.0),
            fix(8, 1.0102, 1.0),
            fix(9, 1.0103, 1.0),
            fix(60, 1.0104, 1.0),
            fix(61, 1.0105, 1.0),
        ];
        let (v, geo) = clean_geo(&fixes, &k());
        assert_eq!(v, clean(&fixes, &k()));
        let mut prev: Option<(usize, u32)> = None;
        for (i, verdict) in v.iter().enumerate() {
            let Verdict::Accepted(seg) = verdict else {
                assert!(geo.step_m[i].is_nan(), "fix {i} is rejected");
                continue;
            };
            let p = GeoPoint::new(fixes[i].lat, fixes[i].lon);
            assert_eq!(geo.points[i], Some(p));
            match prev {
                Some((j, s)) if s == *seg && !geo.step_m[i].is_nan() => {
                    let want = GeoPoint::new(fixes[j].lat, fixes[j].lon).distance_m(&p);
                    assert_eq!(geo.step_m[i].to_bits(), want.to_bits(), "fix {i}");
                }
                Some((_, s)) if s == *seg => {}
                _ => assert!(geo.step_m[i].is_nan(), "fix {i} starts segment {seg}"),
            }
            prev = Some((i, *seg));
        }
    }

    #[test]
    fn trace_long_gap_splits_segments() {
        let v = clean(&[fix(0, 1.0, 1.0), fix(30, 1.0, 1.0001), fix(61, 1.0, 1.0002)], &k());
        assert_eq!(reasons(&v), ["seg0", "seg0", "seg1"]);
    }

    #[test]
    fn rule_fast_distance_is_within_a_thousandth_of_the_certain_bound() {
        // Consecutive fixes at every latitude (centimetres to the ~6 km edge of the fast form),
        // the same point, and pairs just past the edge (exact form only).
        let mut u = crate::test_rng::xorshift_unit(0x2545_f491_4f6c_dd1d);
        let mut n = 0;
        for i in 0..300_000 {
            let lat = -89.9 + 179.8 * u();
            let lon = -180.0 + 360.0 * u();
            let scale = 10f64.powf(-9.0 + 7.0 * u()); // degrees: ~0.1 mm to beyond 6 km
            let (dlat, dlon) = (scale * (2.0 * u() - 1.0), scale * (2.0 * u() - 1.0));
            let (a, b) = (GeoPoint::new(lat, lon), GeoPoint::new(lat + dlat, lon + dlon));
            let exact = a.distance_m(&b);
            match a.distance_fast_m(&b) {
                Some(f) => {
                    assert!((f - exact).abs() <= 1e-12 * exact + 1e-15, "{i}: {f} vs {exact}");
                    n += 1;
                }
                None => assert!(dlat.abs().max(dlon.abs()).to_radians() > 2e-3 * 0.999_999),
            }
        }
        assert!(n > 200_000, "{n}");
        let p = GeoPoint::new(52.5, 13.4);
        assert_eq!(p.distance_fast_m(&p), Some(0.0));
        assert_eq!(p.distance_fast_m(&GeoPoint::new(f64::NAN, 13.4)), None);
        assert_eq!(p.distance_fast_m(&GeoPoint::new(52.5, 13.6)), None);
    }

    #[test]
    fn rule_teleport_at_the_speed_limit_is_decided_by_the_exact_distance() {
        // For each pair, the longitude where the exact comparison flips (bisection over the
        // bits), and the few longitudes around it, where only the exact distance can decide:
        // each verdict is the exact comparison's.
        let k = k();
        let mut flips = 0;
        for i in 0..200 {
            let lat = -60.0 + 0.6 * i as f64;
            let dt_ms = 1000 + (i % 7) as i64 * 250;
            let limit = k.max_speed_mm_s as f64 * dt_ms as f64;
            let a = GeoPoint::new(lat, 10.0);
            let over = |lon: f64| a.distance_m(&GeoPoint::new(lat, lon)) * 1e6 > limit;
            let (mut lo, mut hi) = (10.0f64.to_bits(), 11.0f64.to_bits());
            assert!(!over(f64::from_bits(lo)) && over(f64::from_bits(hi)));
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if over(f64::from_bits(mid)) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            for bits in lo - 3..=hi + 3 {
                let lon = f64::from_bits(bits);
                let v = clean(
                    &[
                        fix(0, lat, 10.0),
                        Fix {
                            time_ms: dt_ms,
                            ..fix(0, lat, lon)
                        },
                    ],
                    &k,
                );
                let teleport = matches!(&v[1], Verdict::Rejected(Reason::Teleport, _));
                assert_eq!(teleport, over(lon), "pair {i}, longitude {lon}");
                flips += usize::from(bits == hi && teleport);
            }
        }
        assert_eq!(flips, 200);
    }
}
