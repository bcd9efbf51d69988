//! Off the road network: with `[roads]` configured, a source whose accepted track runs mostly
//! where no road is (a simulator over open water or fields, a made-up line across town) is
//! withheld whole — the road cells it happens to cross earn nothing either. Off-road cells earn
//! nothing anyway (the road rule in scoring); this detector is about the rest of the source.
//!
//! Measured: the length of each step between consecutive accepted fixes of a segment whose end
//! fix lies in a cell that is not a road cell, over the total step length.

use super::certain::FastSum;
use super::{Detector, Effect, Finding};
use crate::fix::Fix;
use crate::fixed::Ppm;
use crate::quality::GeoPoint;

/// Thresholds, from `[roads] max_off_road_share` and `min_off_road_km`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffRoadKernels {
    /// Largest share of the track's length off the road network, ppm.
    pub max_share: Ppm,
    /// Tracks shorter than this (metres) are not judged.
    pub min_m: u64,
}

/// Judge one source's accepted segments (`segments`: per segment, its fixes in time order, each
/// with whether the fix's cell is a road cell).
///
/// ```
/// use tessera::{fix::Fix, trust::roads::{off_road, OffRoadKernels}};
/// let k = OffRoadKernels { max_share: 500_000, min_m: 1000 };
/// let seg: Vec<Fix> = (0..200).map(|i| Fix::new(i * 1000, 60.0, 24.0 + i as f64 * 0.0002)).collect();
/// let off: Vec<(&Fix, bool)> = seg.iter().map(|f| (f, false)).collect();
/// let f = off_road(&[off], &k).unwrap(); // ~2.2 km, all off the network
/// assert_eq!(f.detector.as_str(), "off_road");
/// let on: Vec<(&Fix, bool)> = seg.iter().map(|f| (f, true)).collect();
/// assert!(off_road(&[on], &k).is_none());
/// ```
pub fn off_road(segments: &[Vec<(&Fix, bool)>], k: &OffRoadKernels) -> Option<Finding> {
    off_road_over(
        || {
            segments.iter().flat_map(|s| {
                s.iter().enumerate().map(|(q, &(f, on_road))| TrackFix {
                    time_ms: f.time_ms,
                    first: q == 0,
                    on_road,
                    step_m: f64::NAN,
                    point: GeoPoint::new(f.lat, f.lon),
                })
            })
        },
        k,
    )
}

/// One accepted fix of a source's track for [`off_road_over`], in time order: its time, whether
/// it starts a segment, whether its cell is a road cell, its step from the previous fix of the
/// segment where cleaning measured it (`NaN`: measured here), and its position (`GeoPoint::new`
/// of the fix: cleaning's, its cosine not computed again).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrackFix {
    pub time_ms: i64,
    pub first: bool,
    pub on_road: bool,
    pub step_m: f64,
    pub point: GeoPoint,
}

/// [`off_road`] over a source's accepted fixes as they come (`track`: a fresh pass over them each
/// call; one pass when no step ends off the network — it stops at the first that does —, then
/// one for the fast sums, and one more when they cannot decide), with the steps cleaning already
/// measured: the same metres to the bit (`GeoPoint::distance_m` from the previous fix of the
/// segment to this one, as `quality::clean_geo` measures) and the same finding, without holding
/// the track in memory (no per-source vector of its fixes; measured no faster than collecting
/// them, the cost is the fast sums' distances).
pub(crate) fn off_road_over<I: Iterator<Item = TrackFix>>(
    track: impl Fn() -> I,
    k: &OffRoadKernels,
) -> Option<Finding> {
    // No step ends off the network (most honest sources): the off-road length is an empty sum,
    // a share of 0 (or no total to judge), whatever the steps measure — nothing is measured.
    // Fast sums next (`certain`): when every total and off-road length within their bounds
    // gives the same answer below the thresholds, there is nothing to report; otherwise the
    // exact sums decide and are reported.
    if !track().any(|f| !f.first && !f.on_road) || nothing_to_report(track(), k) {
        return None;
    }
    let (mut total, mut off, mut fixes) = (0.0f64, 0.0f64, 0u64);
    let (mut start, mut end) = (i64::MAX, i64::MIN);
    // The previous fix's time and position; `seen`: there is one.
    let (mut prev_ms, mut prev, mut seen) = (0i64, GeoPoint::new(0.0, 0.0), false);
    // Only when the fast sums cannot decide (rare): plain internal iteration.
    track().for_each(|here| {
        if seen && !here.first {
            let d = if here.step_m.is_nan() {
                prev.distance_m(&here.point)
            } else {
                here.step_m
            };
            total += d;
            if !here.on_road {
                off += d;
                fixes += 1;
            }
        } else {
            // A segment starts here: the one before (if any) ended at the previous fix.
            start = start.min(here.time_ms);
            if seen {
                end = end.max(prev_ms);
            }
        }
        (prev_ms, prev, seen) = (here.time_ms, here.point, true);
    });
    if seen {
        end = end.max(prev_ms);
    }
    let total_m = total.round() as u64;
    if total_m < k.min_m || total_m == 0 {
        return None;
    }
    let share = ((off / total) * 1e6).round() as u64;
    if share <= k.max_share {
        return None;
    }
    Some(Finding {
        detector: Detector::OffRoad,
        start_ms: start,
        end_ms: end,
        measured: format!(
            "{:.1} % of {:.2} km off the road network",
            share as f64 / 1e4,
            total / 1000.0
        ),
        threshold: format!(
            "{:.1} % (over at least {:.2} km)",
            k.max_share as f64 / 1e4,
            k.min_m as f64 / 1000.0
        ),
        policy_key: "roads.max_off_road_share",
        effect: Effect::WithholdWindow,
        fixes,
        meters: off.round() as u64,
        detail: "the source's accepted track runs mostly where no road of the network is".into(),
    })
}

/// Whether [`off_road_over`] certainly reports nothing, from fast step lengths: the exact total
/// (rounded) is below `k.min_m`, or the exact share (rounded) at most `k.max_share`, for every
/// pair of sums within their bounds. `false`: only the exact sums can tell.
fn nothing_to_report(track: impl Iterator<Item = TrackFix>, k: &OffRoadKernels) -> bool {
    // Folded by value (the sums, the previous point, whether there is one): kept in registers,
    // where sums captured by a `for_each` closure went through memory on every fix.
    let start = (FastSum::default(), FastSum::default(), GeoPoint::new(0.0, 0.0), false);
    let (total, off, _, _) = track.fold(start, |(mut total, mut off, a, seen), here| {
        if seen && !here.first {
            // A step cleaning measured is exact as it is; the others are measured here.
            let (fast, d) = if here.step_m.is_nan() {
                let fast = a.distance_fast_m(&here.point);
                (fast, fast.unwrap_or_else(|| a.distance_m(&here.point)))
            } else {
                (None, here.step_m)
            };
            total.add(fast, || d);
            if !here.on_road {
                off.add(fast, || d);
            }
        }
        (total, off, here.point, true)
    });
    let ((t, e_t), (o, e_o)) = (total.value(), off.value());
    if !(t.is_finite() && o.is_finite()) {
        return false;
    }
    let longest = (t + e_t).round();
    if (longest as u64) < k.min_m || longest == 0.0 {
        return true;
    }
    let low = t - e_t;
    // The largest share any exact sums within the bounds give, its division and scaling rounded.
    low > 0.0 && ((((o + e_o) / low * 1e6) * (1.0 + 4.0 * f64::EPSILON)).round() as u64) <= k.max_share
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At most half the track off the network, judged from 1 km.
    fn kernels() -> OffRoadKernels {
        OffRoadKernels {
            max_share: 500_000,
            min_m: 1000,
        }
    }

    fn line(n: i64) -> Vec<Fix> {
        (0..n)
            .map(|i| Fix::new(i * 1000, 60.0, 24.0 + i as f64 * 0.0002))
            .collect()
    }

    /// Each fix with whether `on_road` holds at its position.
    fn judged<'a>(fixes: &'a [Fix], on_road: &dyn Fn(f64, f64) -> bool) -> Vec<(&'a Fix, bool)> {
        fixes.iter().map(|f| (f, on_road(f.lat, f.lon))).collect()
    }

    #[test]
    fn off_road_withholds_a_source_mostly_off_the_network() {
        let k = kernels();
        let fixes = line(300);
        // 60 % of the steps end off the network.
        let f = off_road(&[judged(&fixes, &|_, lon| lon <= 24.024)], &k).unwrap();
        assert_eq!(f.effect, Effect::WithholdWindow);
        assert!(
            f.measured.starts_with("59.") || f.measured.starts_with("60."),
            "{}",
            f.measured
        );
        assert_eq!((f.start_ms, f.end_ms), (0, 299_000));
    }

    #[test]
    fn rule_steps_measured_by_cleaning_give_the_same_finding_as_measuring_here() {
        let k = kernels();
        let fixes = line(300);
        let seg = judged(&fixes, &|_, lon| lon <= 24.024);
        let measured: Vec<TrackFix> = seg
            .iter()
            .enumerate()
            .map(|(q, &(f, r))| {
                let step = match q {
                    0 => f64::NAN,
                    // Every third step left unmeasured: measured here instead.
                    q if q % 3 == 0 => f64::NAN,
                    q => GeoPoint::new(fixes[q - 1].lat, fixes[q - 1].lon).distance_m(&GeoPoint::new(f.lat, f.lon)),
                };
                TrackFix {
                    time_ms: f.time_ms,
                    first: q == 0,
                    on_road: r,
                    step_m: step,
                    point: GeoPoint::new(f.lat, f.lon),
                }
            })
            .collect();
        let (a, b) = (
            off_road(std::slice::from_ref(&seg), &k),
            off_road_over(|| measured.iter().copied(), &k),
        );
        assert!(a.is_some());
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn rule_a_track_of_several_segments_sums_its_steps_within_segments_only() {
        // Two segments all off the network, 5 km apart: the jump between them is no step, the
        // finding spans the first fix of the first to the last fix of the last, and an empty
        // segment changes nothing.
        let k = kernels();
        let a = line(300);
        let b: Vec<Fix> = (0..300)
            .map(|i| Fix::new(900_000 + i * 1000, 60.05, 24.0 + i as f64 * 0.0002))
            .collect();
        let (sa, sb) = (judged(&a, &|_, _| false), judged(&b, &|_, _| false));
        let f = off_road(&[sa.clone(), Vec::new(), sb.clone()], &k).unwrap();
        let ((ta, _), (tb, _)) = (exact_sums(&sa), exact_sums(&sb));
        assert_eq!(f.meters, (ta + tb).round() as u64);
        assert_eq!((f.fixes, f.start_ms, f.end_ms), (598, 0, 1_199_000));
        assert!(f.measured.starts_with("100.0 % of"), "{}", f.measured);
        let one = off_road(&[sa], &k).unwrap();
        assert_eq!((one.fixes, one.end_ms, one.meters), (299, 299_000, ta.round() as u64));
    }

    #[test]
    fn off_road_spares_a_source_mostly_on_the_network_and_short_tracks() {
        let k = kernels();
        let fixes = line(300);
        assert!(off_road(&[judged(&fixes, &|_, lon| lon < 24.04)], &k).is_none()); // 33 % off
        let short = judged(&fixes[..50], &|_, _| false); // ~0.55 km
        assert!(off_road(&[short], &k).is_none());
    }

    #[test]
    fn rule_max_off_road_share_no_step_off_the_network_is_never_reported() {
        // The strictest kernels (any off-road metre over any length): a track whose fixes are
        // all on the network, or whose only off-network fixes start its segments (no step ends
        // there), is spared; one step ending off the network is reported.
        let k = OffRoadKernels { max_share: 0, min_m: 0 };
        let fixes = line(300);
        assert!(off_road(&[judged(&fixes, &|_, _| true)], &k).is_none());
        let (a, b) = fixes.split_at(150);
        fn starts_off(seg: &[Fix]) -> Vec<(&Fix, bool)> {
            seg.iter().enumerate().map(|(i, f)| (f, i > 0)).collect()
        }
        assert!(off_road(&[starts_off(a), starts_off(b)], &k).is_none());
        let mut one = judged(&fixes, &|_, _| true);
        one[200].1 = false;
        let f = off_road(&[one], &k).unwrap();
        assert_eq!(f.fixes, 1);
    }

    /// The exact sums, as first written: total metres and off-road metres.
    fn exact_sums(seg: &[(&Fix, bool)]) -> (f64, f64) {
        let (mut total, mut off) = (0.0, 0.0);
        for w in seg.windows(2) {
            let d = GeoPoint::new(w[0].0.lat, w[0].0.lon).distance_m(&GeoPoint::new(w[1].0.lat, w[1].0.lon));
            total += d;
            if !w[1].1 {
                off += d;
            }
        }
        (total, off)
    }

    #[test]
    fn rule_a_share_or_length_exactly_at_its_threshold_is_decided_by_the_exact_sums() {
        // Thresholds set to the exact rounded share and total (and one either side): only the
        // exact sums can decide there; the finding must be the one they give.
        let fixes: Vec<Fix> = (0..400)
            .map(|i| Fix::new(i * 1000, 60.0 + (i % 7) as f64 * 1e-5, 24.0 + i as f64 * 0.00021))
            .collect();
        for cut in [3, 97, 200, 333] {
            let seg = judged(&fixes, &|_, lon| lon <= 24.0 + cut as f64 * 0.00021);
            let (total, off) = exact_sums(&seg);
            let (share, total_m) = (((off / total) * 1e6).round() as u64, total.round() as u64);
            for max_share in [share - 1, share, share + 1] {
                for min_m in [total_m - 1, total_m, total_m + 1] {
                    let k = OffRoadKernels { max_share, min_m };
                    let want = total_m >= min_m && share > max_share;
                    let got = off_road(std::slice::from_ref(&seg), &k);
                    assert_eq!(got.is_some(), want, "cut {cut}, share {max_share}, min {min_m}");
                    if let Some(f) = got {
                        assert_eq!(f.meters, off.round() as u64);
                    }
                }
            }
        }
    }
}
