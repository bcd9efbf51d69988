//! Reversed replays: a copy of a trace driven the other way.
//!
//! A red-team trial took honest trips, reversed the order of their fixes and mirrored their
//! clock (`t_copy = c − t_orig`): the copy passes the original's cells in the opposite order,
//! so none of its anchor pairs is one of the original's and the copy search
//! ([`super::copies`]) found nothing; the copies took ~1.8 % of the pool with trust on.
//!
//! Reversing a trace's anchors and negating their times ([`reversed`]) turns a reversed copy
//! back into a forward one: its anchor pairs are the original's, and its times are a line of
//! the original's (`−t_copy = s · t_orig + c`). So the copy search looks each trace up a second
//! time, reversed, and a reversed match is a run of matched anchors where
//!
//! - the reversed copy's times lie on such a line, the residuals spreading by at most
//!   `trust.copies.max_spread_s`, with the scale `s` within `1 / max_time_scale ..=
//!   max_time_scale` (within 1/1.01..1.01 while the time-scaled rule is off: a mirrored clock
//!   with its speed kept);
//! - the original departs from a steady pace by at least `trust.copies.min_unsteady_m` — two
//!   honest drivers passing each other at one steady speed have mirrored timings too, so what
//!   counts is a stop (or crawl) reproduced where and for as long as the original's;
//! - the run holds at least `trust.copies.min_scaled_anchors` anchors (default 12; twice
//!   `min_anchors` before trust rule set 4) over at least twice
//!   `trust.copies.min_match_s` of the copy's time.
//!
//! That is the rule of [`super::warp`] on the reversed copy; a reversed match is always a
//! `replay` (two devices in one car do not drive opposite ways). `trust.copies.reversed`
//! (default true) turns it off. What it does not rule out, as for the time-scaled rule: an
//! honest driver the other way who waits at the original's lights for the original's waits
//! (within a second or two), at a speed holding one ratio to the original's to within ~1 % for
//! six minutes — such as two drivers meeting at a red light from opposite sides within seconds
//! of each other, each then holding the other's speed.
//!
//! Pure: anchors in, a match out; no I/O.

use super::copies::CopyMatch;
use super::policy::TrustKernels;
use super::{Detector, Effect, Finding};

/// The largest time scale of a reversed match while `trust.copies.max_time_scale` is 1 (the
/// time-scaled rule off): a mirrored clock, its noise over six minutes within the spread.
const CONSTANT_SCALE: f64 = 1.01;

/// `anchors` (time order) driven the other way: reversed, times negated, so still in time
/// order — a reversed copy's anchors are then its original's, on a line of its times.
pub(crate) fn reversed(anchors: &[(u64, i64)]) -> Vec<(u64, i64)> {
    anchors.iter().rev().map(|&(c, t)| (c, t.saturating_neg())).collect()
}

/// The pair index `p` of a trace of `n` anchors, counted in the reversed trace: the pair
/// `(p, p + 1)` is the reversed trace's pair `n − 2 − p` (its cells swapped).
pub(crate) fn flipped_pair(n: usize, p: u32) -> u32 {
    (n as u32).saturating_sub(2).saturating_sub(p)
}

/// The reversed match of the copy `b` against the original `a`, from the votes `v` (`(i in
/// rb, j in ta)`: anchor pairs of the reversed copy `rb` = [`reversed`]`(copy)` whose cells are
/// the original's pair `j`), if it meets the rule of this module.
pub(crate) fn reversed_match(
    (ta, a): (&[(u64, i64)], usize),
    (rb, b): (&[(u64, i64)], usize),
    mut v: Vec<(u32, u32)>,
    k: &TrustKernels,
) -> Option<CopyMatch> {
    if !k.reversed {
        return None;
    }
    v.sort_unstable();
    v.dedup();
    let max_scale = k.max_time_scale.max(CONSTANT_SCALE);
    let r = super::warp::line_run(ta, rb, &v, k, max_scale)?;
    let (first, last) = (r.anchors[0], r.anchors[r.anchors.len() - 1]);
    // the copy's own time: the reversed trace's negated, first and last swapped
    let (start_ms, end_ms) = (
        rb[last.0 as usize].1.saturating_neg(),
        rb[first.0 as usize].1.saturating_neg(),
    );
    let finding = Finding {
        detector: Detector::Replay,
        start_ms,
        end_ms,
        measured: format!(
            "{} anchors driven in reverse at a time scale {:.3} (spread {:.1} s), where the \
             original departs {} from a steady pace",
            r.anchors.len(),
            r.scale,
            r.spread_ms / 1000.0,
            r.departure().measured()
        ),
        threshold: format!(
            "{} anchors over {} s, scale within 1/{max_scale}..{max_scale}, spread ≤ {} s, \
             departure {}",
            k.scaled_anchors,
            2 * k.min_match_ms / 1000,
            k.max_spread_ms / 1000,
            super::warp::Departure::threshold(k),
        ),
        policy_key: "trust.copies.reversed",
        effect: Effect::WithholdWindow,
        fixes: 0,
        meters: 0,
        detail: String::new(),
    };
    Some(CopyMatch {
        copy: b,
        original: a,
        finding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::Fix;
    use crate::trust::copies::{anchors, CopySearch, CopyTrace};
    use crate::trust::testing::*;

    const T0: i64 = 1_763_000_000_000;

    /// `f` driven the other way from `start_ms`: its fixes in reverse order, its clock mirrored
    /// and scaled by `scale`, its course turned around, with a little position noise.
    fn mirrored(f: &[Fix], scale: f64, start_ms: i64) -> Vec<Fix> {
        let last = f[f.len() - 1].time_ms;
        f.iter()
            .rev()
            .enumerate()
            .map(|(i, g)| {
                let mut h = g.clone();
                h.time_ms = start_ms + ((last - g.time_ms) as f64 * scale) as i64;
                h.course_deg = g.course_deg.map(|c| (c + 180.0) % 360.0);
                h.lat += ((i * 7919) % 11) as f64 / 5.0e5 / 111.195;
                h
            })
            .collect()
    }

    #[test]
    fn rule_a_copy_driven_in_reverse_is_a_replay_even_close_in_time() {
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        for (scale, start) in [
            (1.0, T0 + 86_400_000),
            (0.95, T0 + 3_600_000),
            (1.06, T0 - 30_000),
            (1.0, T0),
        ] {
            let copy = mirrored(&orig, scale, start);
            let m = copy_pair(&orig, &copy, &k());
            assert_eq!(m.len(), 1, "{scale}: {m:?}");
            let f = &m[0].finding;
            assert_eq!(
                (m[0].copy, m[0].original, f.detector),
                (1, 0, Detector::Replay),
                "{scale}"
            );
            assert_eq!(
                (f.policy_key, f.effect),
                ("trust.copies.reversed", Effect::WithholdWindow)
            );
            assert!(
                f.measured.contains(&format!("in reverse at a time scale {scale:.3}")),
                "{}",
                f.measured
            );
            // the window is in the copy's own time, and covers most of it
            let span = (copy[0].time_ms, copy[copy.len() - 1].time_ms);
            assert!(span.0 <= f.start_ms && f.end_ms <= span.1, "{scale}: {f:?} {span:?}");
            assert!((f.end_ms - f.start_ms) * 10 > (span.1 - span.0) * 7, "{scale}: {f:?}");
        }
        // the constant-offset and time-scaled rules do not see it
        let mut off = k();
        off.reversed = false;
        assert!(copy_pair(&orig, &mirrored(&orig, 1.0, T0 + 86_400_000), &off).is_empty());
    }

    #[test]
    fn rule_a_mirrored_clock_is_matched_with_the_time_scaled_rule_off_but_not_a_scaled_one() {
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        let mut constant = k();
        constant.max_time_scale = 1.0;
        assert_eq!(
            copy_pair(&orig, &mirrored(&orig, 1.0, T0 + 86_400_000), &constant).len(),
            1
        );
        assert!(copy_pair(&orig, &mirrored(&orig, 0.95, T0 + 86_400_000), &constant).is_empty());
    }

    #[test]
    fn rule_an_honest_driver_the_other_way_is_not_a_reversed_copy() {
        // passing each other at one steady speed: mirrored timings, but nothing unsteady to share
        let steady = along(1500, T0, |_| 1.0);
        assert!(copy_pair(&steady, &along_back(1500, T0 + 600_000, |_| 1.0), &k()).is_empty());
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        // the other way at other lights; at the original's lights (path fixes 569, 934, 1299 of
        // the way back) with other waits; at its lights and waits at a 10 % lower speed (the
        // stops are not scaled with the driving: 3.5 s off at each)
        let others = [
            along_back(1500, T0 + 86_400_000, stops(&[300, 900], 35)),
            along_back(1500, T0 + 86_400_000, stops(&[569, 954, 1339], 20)),
            along_back(1500, T0 + 86_400_000, |s| 0.9 * stops(&[633, 1074, 1514], 35)(s)),
        ];
        for (n, other) in others.iter().enumerate() {
            let m = copy_pair(&orig, other, &k());
            assert!(m.is_empty(), "{n}: {m:?}");
        }
    }

    #[test]
    fn rule_a_reversed_copy_of_an_earlier_trace_is_found_from_either_side() {
        // an earlier epoch's trace is looked up (reversed) against the current ones; the same
        // finding as when both are current and the copy is looked up reversed
        let k = k();
        let orig = along(1500, T0, stops(&[200, 600, 1000], 35));
        let copy = mirrored(&orig, 0.97, T0 + 86_400_000);
        let idx = |f: &[Fix]| (0..f.len()).collect::<Vec<_>>();
        let (a, b) = (
            anchors(&refs(&orig), &idx(&orig), &k),
            anchors(&refs(&copy), &idx(&copy), &k),
        );
        let trace = |device, historic, anchors| CopyTrace {
            device,
            received: (device as i64, 0),
            historic,
            anchors,
        };
        let current = [trace(1, false, &a[..]), trace(2, false, &b[..])];
        let among = CopySearch::new(&current, &k).among();
        let past = [trace(1, true, &a[..]), trace(2, false, &b[..])];
        let earlier = CopySearch::new(&past, &k).of_earlier(0, &a);
        assert_eq!(among.len(), 1, "{among:?}");
        assert_eq!(among, earlier);
    }

    #[test]
    fn rule_a_pair_counted_in_the_reversed_trace_is_the_same_two_cells_swapped() {
        let a: Vec<(u64, i64)> = (0..9).map(|i| (100 + i as u64, i * 1000)).collect();
        let r = reversed(&a);
        assert!(r.windows(2).all(|w| w[0].1 < w[1].1));
        assert_eq!(reversed(&r), a);
        for p in 0..8u32 {
            let q = flipped_pair(a.len(), p) as usize;
            assert_eq!((r[q].0, r[q + 1].0), (a[p as usize + 1].0, a[p as usize].0));
            assert_eq!(r[q + 1].1 - r[q].1, a[p as usize + 1].1 - a[p as usize].1);
        }
    }
}
