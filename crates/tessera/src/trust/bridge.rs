//! How far a `replay`'s withheld window reaches (trust rule set 7).
//!
//! A copy's matched anchors break into chains where receiver noise moves one of its anchors to
//! a neighbouring cell; under rule sets 1–6 only the chain that made the finding was withheld,
//! and a caught copy kept 4–38 % of its pay between and beside it. From set 7 the window
//! reaches, chain by chain, every anchor pair matched on the replay's clock (at its offset, or
//! on its time-scaled line) — but crosses a gap between two of them only where each of the
//! copy's anchors in the gap lies within `trust.copies.bridge_m` (default [`BRIDGE_M`]) of the
//! original's track at the replay's
//! clock: an honest driver matched on one stretch who turned off onto streets of their own and
//! met the original's route again later (fixed-time lights put them back on the same clock)
//! keeps the stretch between.

use h3o::{CellIndex, LatLng};

/// The default of `trust.copies.bridge_m`: the largest distance, metres, from a copy's anchor
/// in a gap to the original's track at the replay's clock for the window to cross the gap:
/// noise moves a copy's anchor to a
/// neighbouring H3 res-10 cell (~130 m between centres); a parallel street a city block away
/// (~180 m) or more is a drive of its own.
pub const BRIDGE_M: f64 = 150.0;

/// A widened window: the copy's anchors `lo..=hi` (indices into its anchors), and how many
/// anchor pairs matched on the clock it holds beyond the finding's own chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// First anchor of the copy in the window.
    pub lo: usize,
    /// Last anchor of the copy in the window.
    pub hi: usize,
    /// Anchor pairs matched on the clock in the window, beyond the finding's chain.
    pub more: usize,
}

/// Widen the finding's chain — the copy's anchors `span.0..=span.1` — over the anchor pairs
/// `on` its clock (votes `(i in the copy, j in the original)`: pair `i` is the copy's anchors
/// `i` and `i + 1`), crossing a gap only where every copy anchor in it is within `max_m`
/// metres (`trust.copies.bridge_m`, default [`BRIDGE_M`]) of the original's track at `to_original(time)` ([`off_track_m`]). `ta`, `tb`: the original's
/// and the copy's anchors `(H3 cell, ms)`, in time order. No errors.
///
/// ```
/// use tessera::trust::bridge::{reach, Reach};
/// let cell = |lng: f64| u64::from(h3o::LatLng::new(60.0, lng).unwrap().to_cell(h3o::Resolution::Ten));
/// // the original: 30 anchors along a parallel, 20 s apart
/// let ta: Vec<(u64, i64)> = (0..30).map(|i| (cell(25.0 + 0.004 * i as f64), i * 20_000)).collect();
/// // the copy a day later, its anchors 10 and 20 off the track: 2 km north, or 20 m
/// let mut tb: Vec<(u64, i64)> = ta.iter().map(|&(c, t)| (c, t + 86_400_000)).collect();
/// tb[10].0 = u64::from(h3o::LatLng::new(60.018, 25.04).unwrap().to_cell(h3o::Resolution::Ten));
/// tb[20].0 = u64::from(h3o::LatLng::new(60.0002, 25.08).unwrap().to_cell(h3o::Resolution::Ten));
/// let on: Vec<(u32, u32)> = (0..29).filter(|i| ![9, 10, 19, 20].contains(i)).map(|i| (i, i)).collect();
/// let r = reach(&ta, &tb, &on, (11, 19), |t| t - 86_400_000, tessera::trust::bridge::BRIDGE_M);
/// // crosses the 20 m gap, not the 2 km one
/// assert_eq!(r, Reach { lo: 11, hi: 29, more: 8 });
/// ```
pub fn reach(
    ta: &[(u64, i64)],
    tb: &[(u64, i64)],
    on: &[(u32, u32)],
    span: (usize, usize),
    to_original: impl Fn(i64) -> i64,
    max_m: f64,
) -> Reach {
    let mut pairs: Vec<usize> = on.iter().map(|p| p.0 as usize).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let near = |n: usize| off_track_m(ta, tb[n].0, to_original(tb[n].1)).is_some_and(|d| d <= max_m);
    let (mut lo, mut hi) = span;
    for &i in pairs.iter().rev().filter(|&&i| i < span.0) {
        if i + 1 < lo && !(i + 2..lo).all(near) {
            break;
        }
        lo = i;
    }
    for &i in pairs.iter().filter(|&&i| i + 1 > span.1) {
        if i > hi && !(hi + 1..i).all(near) {
            break;
        }
        hi = i + 1;
    }
    let inside = |i: &&usize| **i >= lo && **i < hi;
    let in_span = |i: &&usize| **i >= span.0 && **i < span.1;
    let more = pairs.iter().filter(inside).count() - pairs.iter().filter(in_span).count();
    Reach { lo, hi, more }
}

/// The centre of an H3 cell (`None` for a value that is not one).
fn centre(c: u64) -> Option<LatLng> {
    CellIndex::try_from(c).ok().map(LatLng::from)
}

/// How far the original's track passes from a copy's anchor at the replay's clock, metres: the
/// least distance from the centre of cell `c` to the chords between the centres of the
/// original's consecutive anchors (`ta`, time order) that reach within [`TRACK_WINDOW_MS`] of
/// its time `t`, ms; `None` when no chord does (or `c` is not an H3 cell). The chords cut a
/// corner by up to ~90 m at res-10 anchors sampled one cell in two.
///
/// ```
/// let c = |lat: f64, lng: f64| u64::from(h3o::LatLng::new(lat, lng).unwrap().to_cell(h3o::Resolution::Ten));
/// // the original drives east along the equator for 100 s
/// let ta = [(c(0.0, 10.0), 0), (c(0.0, 10.01), 100_000)];
/// // 1 km north of its track (0.009°) at its time 50 s: ~1,000 m
/// let d = tessera::trust::bridge::off_track_m(&ta, c(0.009, 10.005), 50_000).unwrap();
/// assert!((d - 1000.0).abs() < 80.0, "{d}");
/// // on the track
/// assert!(tessera::trust::bridge::off_track_m(&ta, c(0.0, 10.005), 50_000).unwrap() < 80.0);
/// // long after the original's last anchor: no chord near that time
/// assert!(tessera::trust::bridge::off_track_m(&ta, c(0.0, 10.005), 500_000).is_none());
/// ```
pub fn off_track_m(ta: &[(u64, i64)], c: u64, t: i64) -> Option<f64> {
    let p = centre(c)?;
    let (cos, m_per_deg) = (p.lat().to_radians().cos(), 111_195.0);
    // local plane around p, metres
    let xy = |q: LatLng| ((q.lng() - p.lng()) * cos * m_per_deg, (q.lat() - p.lat()) * m_per_deg);
    let from = ta.partition_point(|a| a.1 < t - TRACK_WINDOW_MS).max(1);
    let mut best: Option<f64> = None;
    for k in from..ta.len() {
        if ta[k - 1].1 > t + TRACK_WINDOW_MS {
            break;
        }
        let (Some(a), Some(b)) = (centre(ta[k - 1].0), centre(ta[k].0)) else {
            continue;
        };
        let d = to_segment(xy(a), xy(b));
        best = Some(best.map_or(d, |x: f64| x.min(d)));
    }
    best
}

/// The chords of the original's track within this of a copy anchor's time at the replay's
/// clock are searched, ms: a copy's clock keeps to the original's within the 3 s spread; a
/// copy's anchors in a stop it cut short are up to half a stop off.
pub const TRACK_WINDOW_MS: i64 = 30_000;

/// Distance from the origin to the segment `a`–`b` (plane coordinates).
fn to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let f = if len2 > 0.0 {
        (-(a.0 * dx + a.1 * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (x, y) = (a.0 + f * dx, a.1 + f * dy);
    (x * x + y * y).sqrt()
}
