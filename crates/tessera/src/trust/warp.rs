//! Time-scaled replays: a copy of a trace whose clock runs faster or slower than the original's.
//!
//! The replay rule ([`super::copies`]) needs a constant time offset between a copy and its
//! original. A red-team trial dodged it by scaling the copy's time (×0.92–0.98, so the copy
//! "drives" a few percent faster and can start before the original to take rank 1): the offset
//! drifts by seconds a minute. A scale alone is no evidence — two honest drivers holding
//! different steady speeds on one road have anchor times in a constant ratio too. What an
//! independent drive does not share is the original's *unsteadiness*: where it stopped and for
//! how long, where it crawled. So a time-scaled match is a run of matched anchors where
//!
//! - the copy's anchor times are a linear function of the original's, `t_copy = s · t_orig + c`,
//!   the residuals spreading by at most `trust.copies.max_spread_s`, with the scale `s` within
//!   `1 / trust.copies.max_time_scale ..= max_time_scale` (default 1.25; 1 turns the rule off);
//! - the original departs from a steady pace (its distance along the anchors' cell centres
//!   linear in its time) by at least `trust.copies.min_unsteady_m` (default 300 m: a ~30 s stop
//!   at 12 m/s, or slow stretches adding up to it), which the copy reproduced to within the
//!   spread, scaled;
//! - the run holds at least `trust.copies.min_scaled_anchors` anchors (default 12; twice
//!   `min_anchors` before trust rule set 4) over at least twice
//!   `trust.copies.min_match_s` of the copy's time (one more free parameter than a constant
//!   offset, so twice the evidence).
//!
//! Pure: anchors in, a run out; no I/O.

use super::policy::TrustKernels;

/// A time-scaled run of matched anchors: the copy's and the original's anchor indices, first
/// and last, and what was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledRun {
    /// Matched anchors `(i in the copy, j in the original)`, in order.
    pub anchors: Vec<(u32, u32)>,
    /// The scale `s` of `t_copy = s · t_orig + c`.
    pub scale: f64,
    /// Spread of the residuals of that line, ms.
    pub spread_ms: f64,
    /// How far the original departs from a steady pace over the run, metres along the road.
    pub unsteady_m: f64,
    /// The same in seconds at the original's pace there ([`Departure::seconds`]; infinite
    /// under trust rule sets 1–5).
    pub unsteady_s: f64,
}

impl ScaledRun {
    /// The votes `v` (`(i in the copy, j in the original)`) on this run's clock: the residual
    /// `t_copy − scale · t_orig` of each within `k.max_spread_ms` of every residual of the
    /// run's anchors (the band the run's own spread allows), so matched anchors the run's chain
    /// left out — before, after or between its breaks — count as the same copy (trust rule set
    /// 7). `ta`, `tb`: the original's and the copy's anchors. No errors.
    ///
    /// ```
    /// // see `scaled_run`: the run's own votes are on its clock
    /// ```
    pub fn on_clock(
        &self,
        ta: &[(u64, i64)],
        tb: &[(u64, i64)],
        v: &[(u32, u32)],
        k: &TrustKernels,
    ) -> Vec<(u32, u32)> {
        let e = |p: &(u32, u32)| tb[p.0 as usize].1 as f64 - self.scale * ta[p.1 as usize].1 as f64;
        let (lo, hi) = self
            .anchors
            .iter()
            .map(e)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let band = k.max_spread_ms as f64;
        v.iter()
            .copied()
            .filter(|p| (hi - band..=lo + band).contains(&e(p)))
            .collect()
    }

    /// The original's departure from a steady pace over the run (metres, and seconds at its
    /// pace from trust rule set 6). No errors.
    ///
    /// ```
    /// // see `scaled_run`: the original's 60 s stop departs ≥ 300 m and ≥ 25 s
    /// ```
    pub fn departure(&self) -> Departure {
        Departure {
            metres: self.unsteady_m,
            seconds: self.unsteady_s,
        }
    }
}

/// The longest time-scaled run in the votes `v` (sorted, deduplicated `(i in the copy, j in the
/// original)` anchor pairs whose cells match) between the original's anchors `ta` and the
/// copy's `tb`, if it meets the rule of this module.
///
/// ```
/// use tessera::trust::warp::scaled_run;
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // 14 anchors along a line of res-10 cells, the original stopping 60 s midway; the copy
/// // is the same at 0.95 of the time
/// let mut cells = vec![u64::from(h3o::LatLng::new(60.0, 25.0).unwrap().to_cell(h3o::Resolution::Ten))];
/// while cells.len() < 14 {
///     let c = h3o::CellIndex::try_from(*cells.last().unwrap()).unwrap();
///     let next = c.grid_disk::<Vec<_>>(2).into_iter().map(u64::from)
///         .filter(|n| !cells.contains(n)).max_by_key(|&n| {
///             let p = h3o::LatLng::from(h3o::CellIndex::try_from(n).unwrap());
///             (p.lat() * 1e9) as i64 }).unwrap();
///     cells.push(next);
/// }
/// let ta: Vec<(u64, i64)> = cells.iter().enumerate()
///     .map(|(i, &c)| (c, i as i64 * 30_000 + if i >= 7 { 60_000 } else { 0 })).collect();
/// let tb: Vec<(u64, i64)> = ta.iter().map(|&(c, t)| (c, 5_000 + t * 95 / 100)).collect();
/// let votes: Vec<(u32, u32)> = (0..13).map(|i| (i, i)).collect();
/// let run = scaled_run(&ta, &tb, &votes, &k).unwrap();
/// assert_eq!(run.anchors.len(), 14);
/// assert!((run.scale - 0.95).abs() < 1e-3 && run.unsteady_m >= 300.0);
/// assert!(run.departure().seconds >= 25.0, "{:?}", run.departure());
/// assert_eq!(run.on_clock(&ta, &tb, &votes, &k), votes);
/// ```
pub fn scaled_run(ta: &[(u64, i64)], tb: &[(u64, i64)], v: &[(u32, u32)], k: &TrustKernels) -> Option<ScaledRun> {
    if k.max_time_scale <= 1.0 {
        return None;
    }
    line_run(ta, tb, v, k, k.max_time_scale)
}

/// [`scaled_run`] with the scale within `1 / max_scale ..= max_scale` (≥ 1) whatever
/// `k.max_time_scale` is: the rule of [`super::reverse`] uses it with a scale of 1 allowed when
/// the time-scaled rule is off.
pub(crate) fn line_run(
    ta: &[(u64, i64)],
    tb: &[(u64, i64)],
    v: &[(u32, u32)],
    k: &TrustKernels,
    max_scale: f64,
) -> Option<ScaledRun> {
    let need = k.scaled_anchors;
    if v.len() + 1 < need {
        return None;
    }
    let mut best: Option<ScaledRun> = None;
    for chain in chains(v) {
        if chain.len() + 1 < need {
            continue;
        }
        let mut pts = chain;
        let (li, lj) = pts[pts.len() - 1];
        pts.push((li + 1, lj + 1));
        let a: Vec<i64> = pts.iter().map(|p| ta[p.1 as usize].1).collect();
        let b: Vec<i64> = pts.iter().map(|p| tb[p.0 as usize].1).collect();
        let Some((lo, hi, scale, spread_ms)) = longest_line(&a, &b, k, max_scale) else {
            continue;
        };
        if hi + 1 - lo < need || b[hi] - b[lo] < 2 * k.min_match_ms {
            continue;
        }
        let d = departure(ta, &pts[lo..=hi], k);
        if !d.reaches(k) || best.as_ref().is_some_and(|r| r.anchors.len() >= hi + 1 - lo) {
            continue;
        }
        best = Some(ScaledRun {
            anchors: pts[lo..=hi].to_vec(),
            scale,
            spread_ms,
            unsteady_m: d.metres,
            unsteady_s: d.seconds,
        });
    }
    best
}

/// The chains of votes in which both traces advance together, by at most 3 anchors a step
/// (anchors a shingle missed are skipped); a vote extends the longest open chain it can (the
/// first of equal ones), else starts one.
fn chains(v: &[(u32, u32)]) -> Vec<Vec<(u32, u32)>> {
    let mut open: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut done = Vec::new();
    for &p in v {
        // chains that can no longer extend are done (in order, without reallocating)
        let mut n = 0;
        while n < open.len() {
            if open[n][open[n].len() - 1].0 + 3 < p.0 {
                done.push(open.remove(n));
            } else {
                n += 1;
            }
        }
        let fits = |c: &Vec<(u32, u32)>| {
            let l = c[c.len() - 1];
            l.0 < p.0 && l.1 < p.1 && p.1 <= l.1 + 3
        };
        let mut at: Option<usize> = None;
        for (n, c) in open.iter().enumerate() {
            if fits(c) && at.is_none_or(|m| open[m].len() < c.len()) {
                at = Some(n);
            }
        }
        match at {
            Some(n) => open[n].push(p),
            None => open.push(vec![p]),
        }
    }
    done.extend(open);
    done
}

/// The longest window `lo..=hi` of the points `(a[n], b[n])` on a line `b = s·a + c` through its
/// two ends, the other points within `k.max_spread_ms` of spread, `s` within `1 / max_scale ..=
/// max_scale`: `(lo, hi, s, spread)`. Two pointers: a window that fails moves its start.
fn longest_line(a: &[i64], b: &[i64], k: &TrustKernels, max_scale: f64) -> Option<(usize, usize, f64, f64)> {
    let fit = |lo: usize, hi: usize| -> Option<(f64, f64)> {
        let (da, db) = (a[hi] - a[lo], b[hi] - b[lo]);
        if da <= 0 || db <= 0 {
            return None;
        }
        let s = db as f64 / da as f64;
        if s > max_scale || s * max_scale < 1.0 {
            return None;
        }
        let (mut lo_e, mut hi_e) = (0.0f64, 0.0f64);
        for n in lo..=hi {
            let e = (b[n] - b[lo]) as f64 - s * (a[n] - a[lo]) as f64;
            lo_e = lo_e.min(e);
            hi_e = hi_e.max(e);
        }
        (hi_e - lo_e <= k.max_spread_ms as f64).then_some((s, hi_e - lo_e))
    };
    let (mut lo, mut best) = (0usize, None::<(usize, usize, f64, f64)>);
    for hi in 1..a.len() {
        let mut got = None;
        while lo < hi {
            got = fit(lo, hi);
            if got.is_some() {
                break;
            }
            lo += 1;
        }
        if let Some((s, spread)) = got
            && best.is_none_or(|w| hi - lo > w.1 - w.0)
        {
            best = Some((lo, hi, s, spread));
        }
    }
    best
}

/// How far the original departs from a steady pace at its anchors `pts` (`(i, j)`, `j` into
/// `ta`): the largest shortfall, metres, of the distance it covered between two consecutive
/// points against what its pace around them (the median speed over [`UNSTEADY_WINDOW`] steps
/// each side) would have covered in that time — a stop of `T` seconds at `v` m/s shows as
/// about `v · T`. Distance is measured between the anchors' cell centres (all of the original's
/// anchors between, so a skipped one still counts its way); each is off the road by up to about
/// a cell's edge, so a steady drive measures up to ~150 m at res-10 anchors.
pub(super) fn unsteadiness(ta: &[(u64, i64)], pts: &[(u32, u32)]) -> f64 {
    let win = UNSTEADY_WINDOW;
    let steps = steps_along(ta, pts);
    let mut speeds = Vec::with_capacity(2 * win + 1);
    let short: Vec<f64> = (0..steps.len())
        .map(|n| {
            speeds.clear();
            let near = &steps[n.saturating_sub(win)..(n + win + 1).min(steps.len())];
            speeds.extend(near.iter().filter(|s| s.0 > 0.0).map(|s| s.1 / s.0));
            speeds.sort_unstable_by(f64::total_cmp);
            speeds
                .get(speeds.len() / 2)
                .map_or(0.0, |v| v * steps[n].0 - steps[n].1)
        })
        .collect();
    // a stop inside an anchor's cell moves that anchor's middle time by half of it: the stop
    // shows as two steps' shortfalls (whose centre offsets cancel in the sum)
    (0..short.len())
        .map(|n| short[n].max(short[n] + short.get(n + 1).copied().unwrap_or(0.0)))
        .fold(0.0, f64::max)
}

/// `(seconds, metres)` of each step between consecutive points `pts` (`(i, j)`, `j` into `ta`),
/// metres between the cell centres of all of the original's anchors on the way.
fn steps_along(ta: &[(u64, i64)], pts: &[(u32, u32)]) -> Vec<(f64, f64)> {
    let centre = |c: u64| h3o::CellIndex::try_from(c).ok().map(h3o::LatLng::from);
    let (j0, j1) = (pts[0].1 as usize, pts[pts.len() - 1].1 as usize);
    let mut along = vec![0.0f64; j1 - j0 + 1];
    for j in j0 + 1..=j1 {
        let step = match (centre(ta[j - 1].0), centre(ta[j].0)) {
            (Some(p), Some(q)) => p.distance_m(q),
            _ => 0.0,
        };
        along[j - j0] = along[j - j0 - 1] + step;
    }
    pts.windows(2)
        .map(|w| {
            let (a, b) = (w[0].1 as usize, w[1].1 as usize);
            ((ta[b].1 - ta[a].1) as f64 / 1000.0, along[b - j0] - along[a - j0])
        })
        .collect()
}

/// How far the original departs from a steady pace at one step of a match: the shortfall in
/// metres, and in seconds at the pace around it (`departure`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Departure {
    /// Metres along the road the original fell short of its pace by.
    pub metres: f64,
    /// The same at that pace, seconds (infinite where the pace is 0, or under trust rule sets
    /// 1–5, which had no such bound).
    pub seconds: f64,
}

impl Departure {
    /// Whether it reaches both `trust.copies.min_unsteady_m` and `trust.copies.min_unsteady_s`.
    pub(super) fn reaches(&self, k: &TrustKernels) -> bool {
        self.metres >= k.min_unsteady_m && self.seconds >= k.min_unsteady_s
    }

    /// How close it comes to reaching both thresholds (≥ 1: it does).
    fn score(&self, k: &TrustKernels) -> f64 {
        (self.metres / k.min_unsteady_m).min(self.seconds / k.min_unsteady_s)
    }

    /// `"N m (S s at its pace)"` (`"N m"` without a bound in seconds), for a finding's
    /// measured value.
    pub(super) fn measured(&self) -> String {
        if self.seconds.is_finite() {
            format!("{:.0} m ({:.0} s at its pace)", self.metres, self.seconds)
        } else {
            format!("{:.0} m", self.metres)
        }
    }

    /// The threshold text: `"≥ 300 m"`, from trust rule set 6 `"≥ 300 m and ≥ 25 s"`.
    pub(super) fn threshold(k: &TrustKernels) -> String {
        if k.paced_departure {
            format!("≥ {} m and ≥ {} s", k.min_unsteady_m, k.min_unsteady_s)
        } else {
            format!("≥ {} m", k.min_unsteady_m)
        }
    }
}

/// How far the original departs from a steady pace over the match `pts` ([`unsteadiness`]'s
/// measure; from trust rule set 6, `k.paced_departure`, its pace and the seconds bound below).
///
/// From rule set 6 a step's pace is the median of its neighbours' speeds (up to
/// [`UNSTEADY_WINDOW`] steps each side, the step itself left out), each weighted by its
/// duration capped at the window's median duration: a short step between cell centres (a
/// cell's corner clipped in a second or two) measures a speed far off the vehicle's and counts
/// little, and a long stop counts as one step. The step that comes closest to both
/// `trust.copies.min_unsteady_m` and `trust.copies.min_unsteady_s` (its shortfall over its
/// pace) is returned: at motorway speed the cell-centre geometry of a steady drive measures
/// 300–450 m (18 s at 25 m/s), a stop of 25 s at 12 m/s measures 300 m.
pub(super) fn departure(ta: &[(u64, i64)], pts: &[(u32, u32)], k: &TrustKernels) -> Departure {
    if !k.paced_departure {
        return Departure {
            metres: unsteadiness(ta, pts),
            seconds: f64::INFINITY,
        };
    }
    let steps = steps_along(ta, pts);
    let pace: Vec<f64> = (0..steps.len()).map(|n| neighbours_pace(&steps, n)).collect();
    let short: Vec<f64> = steps.iter().zip(&pace).map(|(s, v)| v * s.0 - s.1).collect();
    (0..short.len())
        .map(|n| {
            let metres = short[n].max(short[n] + short.get(n + 1).copied().unwrap_or(0.0));
            let seconds = if pace[n] > 0.0 { metres / pace[n] } else { f64::INFINITY };
            Departure { metres, seconds }
        })
        .fold(
            Departure {
                metres: 0.0,
                seconds: 0.0,
            },
            |best, d| if d.score(k) > best.score(k) { d } else { best },
        )
}

/// The pace around step `n` of `steps` for [`departure`]: the duration-weighted median speed of
/// its neighbours, m/s (0 when none moved in measurable time).
fn neighbours_pace(steps: &[(f64, f64)], n: usize) -> f64 {
    let lo = n.saturating_sub(UNSTEADY_WINDOW);
    let near = &steps[lo..(n + UNSTEADY_WINDOW + 1).min(steps.len())];
    let mut durations: Vec<f64> = near.iter().map(|s| s.0).filter(|&t| t > 0.0).collect();
    durations.sort_unstable_by(f64::total_cmp);
    let cap = durations.get(durations.len() / 2).copied().unwrap_or(0.0);
    let mut speeds: Vec<(f64, f64)> = near
        .iter()
        .enumerate()
        .filter(|&(q, s)| s.0 > 0.0 && lo + q != n)
        .map(|(_, s)| (s.1 / s.0, s.0.min(cap)))
        .collect();
    speeds.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let half = speeds.iter().map(|s| s.1).sum::<f64>() / 2.0;
    let mut seen = 0.0;
    for (v, w) in speeds {
        seen += w;
        if seen >= half {
            return v;
        }
    }
    0.0
}

/// Steps each side whose median speed is a step's pace in [`unsteadiness`].
const UNSTEADY_WINDOW: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::Fix;
    use crate::trust::copies::anchors;
    use crate::trust::testing::*;
    use crate::trust::{policy::TrustKernels, Detector};

    fn k() -> TrustKernels {
        crate::trust::testing::k()
    }

    /// `f` with its clock scaled by `scale` from its first fix and moved to start at `start_ms`,
    /// with a little position noise.
    fn scaled(f: &[Fix], scale: f64, start_ms: i64) -> Vec<Fix> {
        f.iter()
            .enumerate()
            .map(|(i, g)| {
                let mut h = g.clone();
                h.time_ms = start_ms + ((g.time_ms - f[0].time_ms) as f64 * scale) as i64;
                h.lat += ((i * 7919) % 11) as f64 / 5.0e5 / 111.195;
                h
            })
            .collect()
    }

    fn run(orig: &[Fix], other: &[Fix], k: &TrustKernels) -> Vec<crate::trust::copies::CopyMatch> {
        copy_pair(orig, other, k)
    }

    const T0: i64 = 1_763_000_000_000;

    #[test]
    fn rule_a_copy_with_its_clock_scaled_is_a_replay_and_close_in_time_co_travel() {
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        for (scale, start, want) in [
            (0.95, T0 + 86_400_000, Detector::Replay),
            (0.92, T0 + 3_600_000, Detector::Replay),
            (1.06, T0 + 7_200_000, Detector::Replay),
            (0.97, T0 - 30_000, Detector::CoTravel),
        ] {
            let m = run(&orig, &scaled(&orig, scale, start), &k());
            assert_eq!(m.len(), 1, "{scale}: {m:?}");
            let f = &m[0].finding;
            assert_eq!((m[0].copy, f.detector), (1, want), "{scale}");
            assert_eq!(f.policy_key, "trust.copies.max_time_scale");
            assert!(f.measured.contains(&format!("time scale {scale:.3}")), "{}", f.measured);
            assert!(f.end_ms - f.start_ms > 900_000, "{scale}: {f:?}");
        }
    }

    #[test]
    fn rule_min_scaled_anchors_keeps_the_scaled_rule_at_12_while_min_anchors_is_14() {
        let kernels = |toml: &str| {
            let p = crate::policy::Policy::from_toml_str(toml).unwrap();
            p.kernels().unwrap().trust.unwrap()
        };
        assert_eq!((k().min_anchors, k().scaled_anchors), (14, 12));
        let apart = kernels("[trust.copies]\nmin_anchors = 14\nmin_scaled_anchors = 12\n");
        assert_eq!((apart.min_anchors, apart.scaled_anchors), (14, 12));
        // an epoch published under rule set 3 or earlier: twice min_anchors, as it was then
        let old = kernels("[trust.copies]\nmin_anchors = 8\n").under_rules(3);
        assert_eq!((old.min_anchors, old.scaled_anchors), (8, 16));
        // a scaled copy is matched on its 12+ anchors
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        let copy = scaled(&orig, 0.95, T0 + 86_400_000);
        let m = run(&orig, &copy, &apart);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].finding.threshold.starts_with("12 anchors"),
            "{}",
            m[0].finding.threshold
        );
    }

    #[test]
    fn rule_a_steady_drive_at_another_speed_is_not_a_scaled_copy() {
        // a steady drive scaled is a steady driver at another speed: no stop to reproduce
        let orig = along(1500, T0, |_| 1.0);
        for scale in [0.9, 0.95, 1.08] {
            let m = run(&orig, &scaled(&orig, scale, T0 + 86_400_000), &k());
            assert!(m.is_empty(), "{scale}: {m:?}");
        }
    }

    #[test]
    fn rule_a_driver_stopping_elsewhere_or_for_other_times_is_not_a_scaled_copy() {
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        // other stops: the same lights, other waits; other lights; one light of three shared
        let redrives = [
            along(1500, T0 + 86_400_000, |s| 0.95 * stops(&[190, 580, 960], 12)(s)),
            along(1500, T0 + 86_400_000, |s| 0.95 * stops(&[400, 800], 35)(s)),
            along(1500, T0 + 86_400_000, |s| 1.05 * stops(&[190, 700], 35)(s)),
        ];
        for (n, other) in redrives.iter().enumerate() {
            let m = run(&orig, other, &k());
            assert!(m.is_empty(), "{n}: {m:?}");
        }
    }

    #[test]
    fn rule_scales_beyond_max_time_scale_are_not_matched_and_a_max_of_one_is_off() {
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        let copy = scaled(&orig, 0.92, T0 + 86_400_000);
        assert_eq!(run(&orig, &copy, &k()).len(), 1);
        let mut narrow = k();
        narrow.max_time_scale = 1.05;
        assert!(run(&orig, &copy, &narrow).is_empty());
        let mut off = k();
        off.max_time_scale = 1.0;
        assert!(run(&orig, &scaled(&orig, 0.97, T0 + 86_400_000), &off).is_empty());
    }

    #[test]
    fn rule_a_steady_pace_departs_less_than_half_the_threshold_and_a_stop_its_length_in_metres() {
        let k = k();
        let unsteady = |f: &[Fix]| {
            let idx: Vec<usize> = (0..f.len()).collect();
            let a = anchors(&refs(f), &idx, &k);
            let pts: Vec<(u32, u32)> = (0..a.len() as u32).map(|j| (j, j)).collect();
            unsteadiness(&a, &pts)
        };
        for speed in [0.7, 1.0, 1.6] {
            let steady = unsteady(&along(1500, T0, move |_| speed));
            assert!(steady < 0.5 * k.min_unsteady_m, "{speed}: {steady} m");
        }
        for secs in [20, 35, 60] {
            let stop = unsteady(&along(
                1500,
                T0,
                move |s| if (700..700 + secs).contains(&s) { 0.0 } else { 1.0 },
            ));
            let want = 12.0 * secs as f64; // the drive's 12 m/s for the stop's time
            assert!((0.8 * want..1.2 * want).contains(&stop), "{secs}: {stop} m");
        }
    }

    #[test]
    fn rule_chains_follow_both_traces_forward_and_skip_up_to_two_anchors() {
        let v = [(0, 0), (1, 1), (1, 9), (2, 10), (4, 3), (7, 6), (12, 7)];
        let mut c = chains(&v);
        c.sort();
        assert_eq!(
            c,
            vec![
                vec![(0, 0), (1, 1), (4, 3), (7, 6)],
                vec![(1, 9), (2, 10)],
                vec![(12, 7)]
            ]
        );
    }
}
