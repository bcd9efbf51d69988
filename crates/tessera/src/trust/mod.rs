//! Trust: the detectors that keep rewards from spoofed, replayed, copied and simulated traces
//! while honest drivers keep theirs. Pure kernels over plain data (no I/O, no clock); one module
//! per detector, each with tests named after its rule:
//!
//! | module | rule | effect |
//! | --- | --- | --- |
//! | [`time`] | fixes after their receipt (`future`) or older than a policy delay (`stale`) | fixes withheld |
//! | [`motion`] | multipath `spike`s skipped; no cells below a minimum speed (`stationary`); no path fill across sparse sampling (`sparse_fill`) | fix skipped / fixes withheld / no fill |
//! | [`kinematics`] | `acceleration` beyond a road car's grip; receiver speed against the positions (`speed_mismatch`); a run of teleports (`impossible_speed`) | fixes, segment or window withheld |
//! | [`simulator`] | `constant_signal` (HDOP and satellites), `straight_line`, `constant_speed`, `white_noise` | segment withheld |
//! | [`timeline`] | one timeline per device across its sources: `two_places` at once, `clock_overlap` (one source at once after a clock step), `impossible_bridge` between segments | window withheld |
//! | [`copies`] | a trace following another one (anchors with a constant offset): `replay` or `co_travel`; only the first received is paid | window withheld ([`bridge`]: how far a `replay`'s reaches) |
//! | [`reputation`] | a per-device score across epochs, applied as the `trust` multiplier | multiplier |
//! | [`imu`] | camera telemetry against the track: an accelerometer that does not shake while moving (`imu_still`), turns the gyroscope did not see (`imu_turn`), over the whole source | source withheld |
//!
//! Every withholding leaves a [`Finding`]: detector, time range, measured value, threshold, the
//! policy key that decided it and the effect; the pipeline adds device and source and writes
//! them to `epochs/E/flags.parquet`. Every threshold is in [`policy::TrustPolicy`].

pub mod bridge;
pub(crate) mod certain;
pub mod copies;
mod hypot;
pub mod imu;
pub mod kinematics;
pub mod motion;
pub mod policy;
pub mod reputation;
pub(crate) mod reverse;
pub mod roads;
pub mod simulator;
pub mod time;
pub mod timeline;
pub mod warp;

use crate::fix::Fix;
use policy::TrustKernels;

/// The detector that produced a finding (stable snake_case names, as in `flags.parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[allow(missing_docs)]
pub enum Detector {
    ClockStep,
    Future,
    Stale,
    Spike,
    Stationary,
    SparseFill,
    Acceleration,
    ImpossibleSpeed,
    SpeedMismatch,
    ConstantSignal,
    StraightLine,
    ConstantSpeed,
    WhiteNoise,
    TwoPlaces,
    ImpossibleBridge,
    Replay,
    CoTravel,
    Reputation,
    ImuStill,
    ImuTurn,
    OffRoad,
    ClockOverlap,
}

impl Detector {
    /// The stable name.
    ///
    /// ```
    /// assert_eq!(tessera::trust::Detector::ImpossibleBridge.as_str(), "impossible_bridge");
    /// ```
    pub fn as_str(self) -> &'static str {
        use Detector::*;
        match self {
            ClockStep => "clock_step",
            Future => "future",
            Stale => "stale",
            Spike => "spike",
            Stationary => "stationary",
            SparseFill => "sparse_fill",
            Acceleration => "acceleration",
            ImpossibleSpeed => "impossible_speed",
            SpeedMismatch => "speed_mismatch",
            ConstantSignal => "constant_signal",
            StraightLine => "straight_line",
            ConstantSpeed => "constant_speed",
            WhiteNoise => "white_noise",
            TwoPlaces => "two_places",
            ImpossibleBridge => "impossible_bridge",
            Replay => "replay",
            CoTravel => "co_travel",
            Reputation => "reputation",
            ImuStill => "imu_still",
            ImuTurn => "imu_turn",
            OffRoad => "off_road",
            ClockOverlap => "clock_overlap",
        }
    }
}

/// What a finding did to the rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Effect {
    /// Nothing withheld (recorded for the operator, e.g. a clock step that restarted a segment).
    None,
    /// One fix skipped; its neighbours are joined as if it were not there.
    SkipFix,
    /// Path cells between sparse fixes not filled; the fixes keep their own cells.
    NoFill,
    /// The fixes in the time range earn nothing.
    WithholdFixes,
    /// The whole segment earns nothing.
    WithholdSegment,
    /// Every visit of the device inside the time range earns nothing.
    WithholdWindow,
    /// The device's points are multiplied by its trust (reputation).
    Multiplier,
}

impl Effect {
    /// The stable name.
    ///
    /// ```
    /// assert_eq!(tessera::trust::Effect::WithholdSegment.as_str(), "withhold_segment");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::None => "none",
            Effect::SkipFix => "skip_fix",
            Effect::NoFill => "no_fill",
            Effect::WithholdFixes => "withhold_fixes",
            Effect::WithholdSegment => "withhold_segment",
            Effect::WithholdWindow => "withhold_window",
            Effect::Multiplier => "multiplier",
        }
    }
}

/// One piece of evidence, before the pipeline names the device and source.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The rule.
    pub detector: Detector,
    /// First time concerned, UTC ms.
    pub start_ms: i64,
    /// Last time concerned, UTC ms.
    pub end_ms: i64,
    /// The measured value, with its unit ("14.3 m/s²").
    pub measured: String,
    /// The threshold it was held against, with its unit.
    pub threshold: String,
    /// The policy key of the threshold (`trust.kinematics.max_accel_mps2`).
    pub policy_key: &'static str,
    /// What it did.
    pub effect: Effect,
    /// Fixes withheld or skipped.
    pub fixes: u64,
    /// Metres of path withheld (or not filled).
    pub meters: u64,
    /// A sentence for people.
    pub detail: String,
}

impl Finding {
    /// Whether this finding is evidence of cheating (it lowers the device's reputation): a
    /// withheld segment or window, except for the floors and time rules an honest device meets
    /// (a faulty clock's overlap, `clock_overlap`, included) and `co_travel`: devices in one car
    /// or a convoy are ranked as one contributor (only the first received is paid on the shared
    /// part), which honest convoys meet too, so the one withheld is not also marked down (a
    /// red-team trial: a follower who uploaded first cost the honest leader both its pay and a
    /// quarter of its reputation). `replay` (an offset beyond `trust.copies.co_travel_s`) is
    /// evidence.
    ///
    /// ```
    /// use tessera::trust::{Detector, Effect, Finding};
    /// let f = |detector, effect| Finding { detector, start_ms: 0, end_ms: 0, measured: String::new(),
    ///     threshold: String::new(), policy_key: "", effect, fixes: 0, meters: 0, detail: String::new() };
    /// assert!(f(Detector::Replay, Effect::WithholdWindow).is_cheating());
    /// assert!(!f(Detector::Stationary, Effect::WithholdFixes).is_cheating());
    /// assert!(!f(Detector::CoTravel, Effect::WithholdWindow).is_cheating());
    /// ```
    pub fn is_cheating(&self) -> bool {
        matches!(self.effect, Effect::WithholdSegment | Effect::WithholdWindow)
            && !matches!(
                self.detector,
                Detector::Stale
                    | Detector::Stationary
                    | Detector::SparseFill
                    | Detector::ClockOverlap
                    | Detector::CoTravel
            )
    }
}

/// The covered part of one segment, for the detectors that look across sources and devices.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// First covered fix, UTC ms.
    pub start_ms: i64,
    /// Last covered fix, UTC ms.
    pub end_ms: i64,
    /// `(time ms, lat, lon)` of covered fixes at least 30 s apart, first and last included (small:
    /// a billion-fix week keeps ~3·10^7 of them).
    #[serde(with = "crate::pipeline::wire::track_bits")]
    pub track: Vec<(i64, f64, f64)>,
    /// `(anchor cell, mid time ms)` in time order (see [`copies`]).
    pub anchors: Vec<(u64, i64)>,
    /// Covered path length, metres.
    pub meters: u64,
}

/// What checking one segment gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentCheck {
    /// Runs of fix indices to cover, each with path fill between consecutive fixes.
    pub runs: Vec<Vec<usize>>,
    /// Evidence.
    pub findings: Vec<Finding>,
    /// The covered part, for the cross-source detectors (`None` when nothing is covered).
    pub trace: Option<Trace>,
}

pub(crate) use hypot::{fast_hypot, hypot};

/// Local east/north metres from `a` to `b` (equirectangular at their mean latitude; exact to
/// well under a metre over the few hundred metres the detectors measure).
pub(crate) fn enu(a: &Fix, b: &Fix) -> (f64, f64) {
    let (lat, dlon) = enu_angles(a, b);
    (dlon * lat.cos() * EARTH_R, (b.lat - a.lat).to_radians() * EARTH_R)
}

/// The mean Earth radius [`enu`] projects with, metres.
const EARTH_R: f64 = 6_371_008.8;

/// [`enu`]'s mean latitude and longitude difference (wrapped to ±180°), radians.
#[inline]
fn enu_angles(a: &Fix, b: &Fix) -> (f64, f64) {
    let lat = ((a.lat + b.lat) / 2.0).to_radians();
    let mut dlon = b.lon - a.lon;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    (lat, dlon.to_radians())
}

/// [`enu`] as a *fast value* ([`certain`]): the cosine of the mean latitude from `near`
/// instead of the C library. Returns `((east, north), bound)`: `north` is [`enu`]'s, the same
/// bits; `east` is within `bound` metres of [`enu`]'s. The cosine is within
/// [`crate::trig::NEAR_ERR`] (10⁻¹⁵) of the C library's, which moves `east` by at most
/// `|Δλ|·R·10⁻¹⁵`; the two products of each form round within 2.2 × 10⁻¹⁶·`|Δλ|·R`, both forms
/// within 4.4 × 10⁻¹⁶·`|Δλ|·R`: so `bound` = `|Δλ|·R·3·10⁻¹⁵`, twice that. `NaN` in, `NaN` out
/// (never decided).
#[inline]
pub(crate) fn enu_near(a: &Fix, b: &Fix, near: &mut crate::trig::NearSinCos) -> ((f64, f64), f64) {
    let (lat, dlon) = enu_angles(a, b);
    let east = dlon * near.sin_cos(lat).1 * EARTH_R;
    let bound = (dlon * EARTH_R).abs() * (3.0 * crate::trig::NEAR_ERR);
    ((east, (b.lat - a.lat).to_radians() * EARTH_R), bound)
}

/// [`enu`] steps between fixes of a segment, kept by the later fix's index: the despiker
/// measures every step between consecutive kept fixes, and the kinematics and white-noise
/// detectors measure most of the same pairs again. A step is looked up by its exact pair of
/// fix indices (same pair, same bits), else measured.
pub(crate) struct Steps {
    from: Vec<u32>,
    enu: Vec<(f64, f64)>,
}

impl Steps {
    /// No steps yet, for a segment of `n` fixes.
    pub(crate) fn new(n: usize) -> Steps {
        Steps {
            from: vec![u32::MAX; n],
            enu: vec![(0.0, 0.0); n],
        }
    }

    /// Keep `e` = `enu(fixes[a], fixes[b])`.
    pub(crate) fn put(&mut self, a: usize, b: usize, e: (f64, f64)) {
        self.from[b] = a as u32;
        self.enu[b] = e;
    }

    /// `enu(fixes[a], fixes[b])`, kept or measured.
    pub(crate) fn get(&self, fixes: &[&Fix], a: usize, b: usize) -> (f64, f64) {
        if self.from[b] == a as u32 {
            self.enu[b]
        } else {
            enu(fixes[a], fixes[b])
        }
    }

    /// As [`Steps::get`], as a fast value with its bound ([`enu_near`]): the kept step with
    /// bound 0, or [`enu_near`]'s.
    pub(crate) fn get_near(
        &self,
        fixes: &[&Fix],
        a: usize,
        b: usize,
        near: &mut crate::trig::NearSinCos,
    ) -> ((f64, f64), f64) {
        if self.from[b] == a as u32 {
            (self.enu[b], 0.0)
        } else {
            enu_near(fixes[a], fixes[b], near)
        }
    }
}

/// Each fix's position with its latitude's cosine, for the detectors' great-circle distances.
pub(crate) fn points(fixes: &[&Fix]) -> Vec<crate::quality::GeoPoint> {
    fixes
        .iter()
        .map(|f| crate::quality::GeoPoint::new(f.lat, f.lon))
        .collect()
}

/// Metres along the fixes `idx` (consecutive pairs).
pub(crate) fn path_m(fixes: &[&Fix], idx: &[usize]) -> f64 {
    // Each fix's latitude cosine once (`GeoPoint`: the same bits as `quality::distance_m`).
    let pts: Vec<crate::quality::GeoPoint> = idx
        .iter()
        .map(|&i| crate::quality::GeoPoint::new(fixes[i].lat, fixes[i].lon))
        .collect();
    pts.windows(2).map(|w| w[0].distance_m(&w[1])).sum()
}

/// [`path_m`] with the fixes' [`points`] already computed (`pts[i]` for `fixes[i]`), taking the
/// metres between neighbours `i - 1` and `i` from `steps[i]` when measured there (the same
/// haversine of the same points: the same bits).
fn path_m_steps(pts: &[crate::quality::GeoPoint], steps: Option<&[f64]>, idx: &[usize]) -> f64 {
    idx.windows(2)
        .map(|w| match steps.map(|s| s[w[1]]) {
            Some(m) if w[1] == w[0] + 1 && !m.is_nan() => m,
            _ => pts[w[0]].distance_m(&pts[w[1]]),
        })
        .sum()
}

/// `runs.iter().map(|r| path_m_steps(pts, steps, r)).sum::<f64>().round()` as whole metres,
/// from fast distances (`certain`) when every value within their summed bound (and both sums'
/// rounding) rounds to the same integer — nearly always — and from the exact sum otherwise.
fn runs_m_rounded(pts: &[crate::quality::GeoPoint], steps: Option<&[f64]>, runs: &[Vec<usize>]) -> u64 {
    let mut sum = certain::FastSum::default();
    for w in runs.iter().flat_map(|r| r.windows(2)) {
        match steps.map(|s| s[w[1]]) {
            Some(m) if w[1] == w[0] + 1 && !m.is_nan() => sum.add(None, || m),
            _ => sum.add(pts[w[0]].distance_fast_m(&pts[w[1]]), || {
                pts[w[0]].distance_m(&pts[w[1]])
            }),
        }
    }
    sum.rounded()
        .unwrap_or_else(|| runs.iter().map(|r| path_m_steps(pts, steps, r)).sum::<f64>().round() as u64)
}

/// Check one accepted segment (fixes in time order) of a source received at `received_ms`:
/// time rules, spikes, movement floor, kinematics and simulator fingerprints; then the runs to
/// cover (no fill across withheld fixes or sparse sampling) and the trace summary.
///
/// ```
/// use tessera::{fix::Fix, policy::Policy, trust::check_segment};
/// let k = Policy::default().kernels().unwrap().trust.unwrap();
/// // 2 minutes at about 10 m/s with a little noise: nothing withheld, one run.
/// let fixes: Vec<Fix> = (0..120).map(|i| {
///     let mut f = Fix::new(i * 1000, 60.17 + (i as f64) * 0.00009 + ((i * 7 % 5) as f64) * 2e-6, 24.94 + ((i * 3 % 7) as f64) * 3e-6);
///     f.hdop = Some(0.9 + (i % 4) as f32 * 0.1); f.sats = Some(8 + (i / 40) as u8); f
/// }).collect();
/// let refs: Vec<&Fix> = fixes.iter().collect();
/// let c = check_segment(&refs, None, &k);
/// assert_eq!(c.runs.len(), 1);
/// assert_eq!(c.runs[0].len(), 120);
/// assert!(c.findings.is_empty(), "{:?}", c.findings);
/// ```
pub fn check_segment(fixes: &[&Fix], received_ms: Option<i64>, k: &TrustKernels) -> SegmentCheck {
    check_segment_with(fixes, None, None, received_ms, k)
}

/// [`check_segment`] with the fixes' cells at `k.anchor_resolution` already indexed
/// (`anchor_cells[i]` for `fixes[i]`; `None` for a position h3o refuses) and, in `geo`, what
/// cleaning measured ([`crate::quality::clean_geo`]): each fix's point and the metres from
/// `fixes[i - 1]` to `fixes[i]` (`NaN` where not measured). The same result, without indexing
/// every fix a second time or measuring its steps twice.
pub(crate) fn check_segment_with(
    fixes: &[&Fix],
    anchor_cells: Option<&[Option<u64>]>,
    geo: Option<(&[crate::quality::GeoPoint], &[f64])>,
    received_ms: Option<i64>,
    k: &TrustKernels,
) -> SegmentCheck {
    let mut out = SegmentCheck::default();
    if fixes.is_empty() {
        return out;
    }
    let owned;
    let (pts, steps) = match geo {
        Some((points, step_m)) => (points, Some(step_m)),
        None => {
            owned = points(fixes);
            (owned.as_slice(), None)
        }
    };
    // 1. Time against receipt: withheld fixes leave the sequence (and break runs).
    let timely = time::check(fixes, received_ms, k, &mut out.findings);
    // 2. Spikes are skipped (their neighbours are joined).
    let mut enu_steps = Steps::new(fixes.len());
    let seq = motion::despike_with(fixes, &timely, k, &mut out.findings, &mut enu_steps);
    // 3. The movement floor marks slow fixes.
    let moving = motion::floor_at(fixes, pts, &seq, k, &mut out.findings);
    let live: Vec<usize> = seq.iter().zip(&moving).filter(|(_, m)| **m).map(|(i, _)| *i).collect();
    // 4. Kinematics and simulator fingerprints over the moving fixes.
    let mut withheld = vec![false; fixes.len()];
    kinematics::check_at(fixes, pts, &enu_steps, &live, k, &mut withheld, &mut out.findings);
    simulator::check_with(fixes, &enu_steps, &live, k, &mut withheld, &mut out.findings);
    // 5. Runs to cover.
    let covered = |i: usize| !withheld[i];
    let live_set: Vec<bool> = {
        let mut v = vec![false; fixes.len()];
        for &i in &live {
            v[i] = true;
        }
        v
    };
    let mut run: Vec<usize> = Vec::new();
    let (mut sparse, mut sparse_m, mut sparse_span) = (0u64, 0.0f64, (i64::MAX, i64::MIN));
    for (pos, &i) in seq.iter().enumerate() {
        let ok = live_set[i] && covered(i);
        if !ok {
            if !run.is_empty() {
                out.runs.push(std::mem::take(&mut run));
            }
            continue;
        }
        if let Some(&prev) = run.last() {
            let dt = fixes[i].time_ms - fixes[prev].time_ms;
            if dt > k.max_fill_ms && seq.get(pos.wrapping_sub(1)) == Some(&prev) {
                sparse += 1;
                sparse_m += path_m_steps(pts, steps, &[prev, i]);
                sparse_span = (
                    sparse_span.0.min(fixes[prev].time_ms),
                    sparse_span.1.max(fixes[i].time_ms),
                );
                out.runs.push(std::mem::take(&mut run));
            }
        }
        run.push(i);
    }
    if !run.is_empty() {
        out.runs.push(run);
    }
    if sparse > 0 {
        out.findings.push(Finding {
            detector: Detector::SparseFill,
            start_ms: sparse_span.0,
            end_ms: sparse_span.1,
            measured: format!("{sparse} intervals > {} s", k.max_fill_ms / 1000),
            threshold: format!("{} s", k.max_fill_ms / 1000),
            policy_key: "trust.motion.max_fill_s",
            effect: Effect::NoFill,
            fixes: 0,
            meters: sparse_m.round() as u64,
            detail: format!(
                "{sparse} intervals between fixes longer than the fill limit: only the fixes' own cells count there"
            ),
        });
    }
    out.trace = trace_of(fixes, (pts, steps), &out.runs, anchor_cells, k);
    out
}

/// The trace summary of the covered runs.
fn trace_of(
    fixes: &[&Fix],
    (pts, steps): (&[crate::quality::GeoPoint], Option<&[f64]>),
    runs: &[Vec<usize>],
    anchor_cells: Option<&[Option<u64>]>,
    k: &TrustKernels,
) -> Option<Trace> {
    let all: Vec<usize> = runs.iter().flatten().copied().collect();
    let (&first, &last) = (all.first()?, all.last()?);
    let mut t = Trace {
        start_ms: fixes[first].time_ms,
        end_ms: fixes[last].time_ms,
        meters: runs_m_rounded(pts, steps, runs),
        ..Trace::default()
    };
    for &i in &all {
        let f = fixes[i];
        if t.track.last().is_none_or(|p| f.time_ms - p.0 >= 30_000) || i == last {
            t.track.push((f.time_ms, f.lat, f.lon));
        }
    }
    t.anchors = match anchor_cells {
        Some(cells) => copies::anchors_from(fixes, &all, k, |i| cells[i]),
        None => copies::anchors(fixes, &all, k),
    };
    Some(t)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Synthetic segments for the detectors' tests.
    use crate::fix::Fix;

    /// A drive: `n` fixes 1 s apart heading north-east at `speed` m/s from (60.17, 24.94), with a
    /// deterministic, smooth (correlated) noise of about `noise_m` metres and varying HDOP/sats.
    pub fn drive(n: usize, speed: f64, noise_m: f64) -> Vec<Fix> {
        let m_lat = 1.0 / 111_195.0;
        let m_lon = m_lat / (60.17f64).to_radians().cos();
        let mut e = (0.0f64, 0.0f64);
        (0..n)
            .map(|i| {
                let s = i as f64 * speed;
                // smooth noise: a slow walk
                let phase = i as f64 * 0.37;
                e = (
                    0.8 * e.0 + 0.2 * noise_m * phase.sin(),
                    0.8 * e.1 + 0.2 * noise_m * (phase * 1.3).cos(),
                );
                // a gentle curve so the path is not a perfect line
                let north = s * 0.7 + e.1 + 30.0 * (s / 400.0).sin();
                let east = s * 0.7 + e.0;
                let mut f = Fix::new(
                    1_763_000_000_000 + i as i64 * 1000,
                    60.17 + north * m_lat,
                    24.94 + east * m_lon,
                );
                f.hdop = Some(0.8 + ((i / 37) % 5) as f32 * 0.1);
                f.sats = Some(7 + ((i / 53) % 4) as u8);
                f.speed_mps = Some(speed as f32 + ((i % 7) as f32 - 3.0) * 0.05);
                f
            })
            .collect()
    }

    /// The path of `drive(n, 12, 2)` driven again from `start_ms`, one fix a second, advancing
    /// `pace(second)` of the path's fixes each second (0: stopped), positions interpolated.
    pub fn along(n: usize, start_ms: i64, pace: impl Fn(usize) -> f64) -> Vec<Fix> {
        along_path(&drive(n, 12.0, 2.0), start_ms, pace)
    }

    /// [`along`] the other way: the path of `drive(n, 12, 2)` from its end to its start.
    pub fn along_back(n: usize, start_ms: i64, pace: impl Fn(usize) -> f64) -> Vec<Fix> {
        let mut path = drive(n, 12.0, 2.0);
        path.reverse();
        along_path(&path, start_ms, pace)
    }

    /// `path` driven from `start_ms` as [`along`] drives it.
    fn along_path(path: &[Fix], start_ms: i64, pace: impl Fn(usize) -> f64) -> Vec<Fix> {
        let n = path.len();
        let mut out = Vec::new();
        let mut u = 0.0f64;
        for sec in 0.. {
            if u >= (n - 1) as f64 {
                break;
            }
            let (lo, f) = (u.floor() as usize, u.fract());
            let mut g = path[lo].clone();
            g.lat += f * (path[lo + 1].lat - path[lo].lat);
            g.lon += f * (path[lo + 1].lon - path[lo].lon);
            g.time_ms = start_ms + sec as i64 * 1000;
            out.push(g);
            u += pace(sec);
        }
        out
    }

    /// Stops of `secs` seconds starting at each of `at` (seconds of the drive).
    pub fn stops(at: &'static [usize], secs: usize) -> impl Fn(usize) -> f64 {
        move |s| {
            if at.iter().any(|&a| (a..a + secs).contains(&s)) {
                0.0
            } else {
                1.0
            }
        }
    }

    /// The copy search over two traces of two devices: `orig` received first, then `other`.
    pub fn copy_pair(orig: &[Fix], other: &[Fix], k: &super::TrustKernels) -> Vec<crate::trust::copies::CopyMatch> {
        use crate::trust::copies::{anchors, detect, CopyTrace};
        let idx = |f: &[Fix]| (0..f.len()).collect::<Vec<_>>();
        let (a, b) = (
            anchors(&refs(orig), &idx(orig), k),
            anchors(&refs(other), &idx(other), k),
        );
        let trace = |device, anchors| CopyTrace {
            device,
            received: (device as i64, 0),
            historic: false,
            anchors,
        };
        detect(&[trace(1, &a), trace(2, &b)], k)
    }

    /// References to fixes, as the detectors take them.
    pub fn refs(f: &[Fix]) -> Vec<&Fix> {
        f.iter().collect()
    }

    /// A deterministic generator of numbers below `n` (a 64-bit LCG's high bits).
    pub fn lcg(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        }
    }

    /// A deterministic generator of numbers in [0, 1) (xorshift64, 53 bits).
    pub struct Units(pub u64);

    impl Units {
        /// The next number.
        pub fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A fix anywhere on Earth, half of them within ~11 m (10⁻⁴°) of a pole or of the
    /// antimeridian (either side).
    pub fn anywhere(u: &mut Units) -> Fix {
        let (lat, lon) = match (u.next() * 4.0) as u32 {
            0 => (90.0 - u.next() * 1e-4, (2.0 * u.next() - 1.0) * 180.0),
            1 => ((2.0 * u.next() - 1.0) * 89.9, 180.0 - u.next() * 1e-4),
            _ => ((2.0 * u.next() - 1.0) * 89.9, (2.0 * u.next() - 1.0) * 180.0),
        };
        let lon = if u.next() < 0.5 { lon } else { -lon };
        Fix::new(0, if u.next() < 0.5 { lat } else { -lat }, lon)
    }

    /// A fix up to `deg` degrees (latitude and longitude each) from `f`, `ms` later: latitude
    /// clamped to ±90°, longitude wrapped to ±180°.
    pub fn near(u: &mut Units, f: &Fix, deg: f64, ms: i64) -> Fix {
        let lat = (f.lat + (2.0 * u.next() - 1.0) * deg).clamp(-90.0, 90.0);
        let lon = f.lon + (2.0 * u.next() - 1.0) * deg;
        Fix::new(f.time_ms + ms, lat, wrap_lon(lon))
    }

    /// A longitude within ±540° wrapped to ±180°.
    pub fn wrap_lon(lon: f64) -> f64 {
        if lon > 180.0 {
            lon - 360.0
        } else if lon < -180.0 {
            lon + 360.0
        } else {
            lon
        }
    }

    /// The fast forms' adversarial cases: 100,000 pairs of a fix [`anywhere`] and one 10–90°
    /// from it `ms` later (a spoofer's 1,000–10,000 km step). `each(u, a, b)` checks its
    /// thresholds and returns how many of them `certain::err` alone would have decided wrong;
    /// some must be, or the inputs never reach the cases an added bound is for.
    pub fn far_steps(seed: u64, ms: i64, mut each: impl FnMut(&mut Units, &Fix, &Fix) -> u32) {
        let mut u = Units(seed);
        let mut err_alone_wrong = 0;
        for _ in 0..100_000 {
            let a = anywhere(&mut u);
            let deg = 10.0 + 80.0 * u.next();
            let b = near(&mut u, &a, deg, ms);
            err_alone_wrong += each(&mut u, &a, &b);
        }
        assert!(
            err_alone_wrong > 0,
            "the inputs never reach a case the added bound is for"
        );
    }

    /// Thresholds at and around `v`: its neighbours in the last place, relative and absolute
    /// nudges, and clearly above and below.
    pub fn around(v: f64) -> [f64; 9] {
        [
            v,
            v.next_up(),
            v.next_down(),
            v * (1.0 + 1e-9),
            v * (1.0 - 1e-9),
            v + 1e-6,
            v - 1e-6,
            2.0 * v,
            0.5 * v,
        ]
    }

    /// Thresholds just below and above `v` by fractions and multiples of `scale` (a fast form's
    /// own error scale, far below [`super::certain::err`]'s for tiny values of long steps).
    pub fn around_scale(v: f64, scale: f64) -> [f64; 8] {
        [
            v,
            v.next_down(),
            v - 0.25 * scale,
            v - scale,
            v - 4.0 * scale,
            v + 0.25 * scale,
            v + scale,
            v + 4.0 * scale,
        ]
    }

    /// A [`crate::trig::NearSinCos`] anchored up to 10⁻³ rad from `rad` (so that `rad` takes its
    /// series, not the C library).
    pub fn anchored_near(u: &mut Units, rad: f64) -> crate::trig::NearSinCos {
        let mut s = crate::trig::NearSinCos::NONE;
        s.sin_cos(rad + (2.0 * u.next() - 1.0) * 1e-3);
        s
    }

    /// Walks for the fast forms' tests: 2,000 walks of 100 steps from [`anywhere`], each with its
    /// own [`crate::trig::NearSinCos`]; `step(u, a, deg, cos_lat)` at each fix `a`, with `deg` from 1°
    /// to 10⁻⁶° by walk (`a` then moves a thousandth of that: the cosine's anchor is reused).
    pub fn walks(seed: u64, mut step: impl FnMut(&mut Units, &Fix, f64, &mut crate::trig::NearSinCos)) {
        let mut u = Units(seed);
        for walk in 0..2_000 {
            let mut cos_lat = crate::trig::NearSinCos::NONE;
            let mut a = anywhere(&mut u);
            let deg = 10f64.powi(-(walk % 7));
            for _ in 0..100 {
                step(&mut u, &a, deg, &mut cos_lat);
                a = near(&mut u, &a, deg * 1e-3, 1000);
            }
        }
    }

    /// The default trust kernels.
    pub fn k() -> super::TrustKernels {
        crate::policy::Policy::default().kernels().unwrap().trust.unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn rule_fast_decisions_give_what_the_exact_path_gives_on_honest_and_spoofed_segments() {
        let mut u = Units(0x3c6e_f372_fe94_f82b);
        let mut seen = std::collections::BTreeSet::new();
        for case in 0..240u32 {
            let (n, speed, noise) = (
                200 + (case % 5) as usize * 150,
                3.0 + f64::from(case % 7) * 7.0,
                f64::from(case % 4) * 2.5,
            );
            let mut f = drive(n, speed, noise);
            let shift = |f: &mut [Fix], dlat: f64, dlon: f64| {
                for g in f {
                    g.lat = (g.lat + dlat).clamp(-90.0, 90.0);
                    g.lon += dlon;
                    if g.lon > 180.0 {
                        g.lon -= 360.0;
                    }
                }
            };
            match case % 6 {
                // multipath spikes of up to ±110 m
                0 => {
                    for _ in 0..n / 20 {
                        let i = (u.next() * n as f64) as usize;
                        f[i].lat += (u.next() - 0.5) * 2e-3;
                        f[i].lon += (u.next() - 0.5) * 2e-3;
                    }
                }
                // a spoofer's jump of up to ~6,600 km halfway, and back
                1 => {
                    let (a, b) = (n / 2, n / 2 + n / 8);
                    shift(&mut f[a..b], (u.next() - 0.5) * 60.0, (u.next() - 0.5) * 60.0);
                }
                // at the pole, then across the antimeridian
                2 => shift(&mut f, 89.98 - 60.2, u.next() * 10.0),
                3 => shift(&mut f, 0.0, 180.0 - 24.95 - u.next() * 0.01),
                // irregular timing: jitter, a gap, duplicated instants
                4 => {
                    for (i, g) in f.iter_mut().enumerate() {
                        g.time_ms += (u.next() * 900.0) as i64 + if i > n / 3 { 40_000 } else { 0 };
                    }
                }
                // a simulator: no noise, one HDOP, one speed
                _ => {
                    f = drive(n, speed, 0.0);
                    for g in &mut f {
                        g.hdop = Some(1.0);
                        g.sats = Some(9);
                        g.speed_mps = Some(speed as f32);
                    }
                }
            }
            let r = refs(&f);
            let fast = check_segment(&r, None, &k());
            let exact = certain::exact_only(|| check_segment(&r, None, &k()));
            assert_eq!(fast, exact, "case {case}");
            seen.extend(fast.findings.iter().map(|f| f.detector.as_str()));
        }
        // The segments do trip the detectors whose decisions are fast.
        for d in [
            "spike",
            "acceleration",
            "speed_mismatch",
            "stationary",
            "white_noise",
            "sparse_fill",
        ] {
            assert!(seen.contains(d), "{d} never found: {seen:?}");
        }
    }

    #[test]
    fn rule_enu_near_is_within_its_bound_of_enu_with_the_same_north() {
        let mut u = Units(0x9e37_79b9_7f4a_7c15);
        let (mut worst, mut checked) = (0.0f64, 0u32);
        for walk in 0..3_000 {
            let mut cos_lat = crate::trig::NearSinCos::NONE;
            let mut a = anywhere(&mut u);
            // Steps from ~20° to 2·10⁻⁵° (~2 m): re-anchored often, and not for hundreds of fixes.
            let deg = 20.0 * 10f64.powi(-(walk % 7));
            for _ in 0..200 {
                let b = near(&mut u, &a, deg, 1000);
                let ((e, n), bound) = enu_near(&a, &b, &mut cos_lat);
                let (e0, n0) = enu(&a, &b);
                assert_eq!(n.to_bits(), n0.to_bits());
                assert!((e - e0).abs() <= bound, "{a:?} {b:?}: {e} {e0} {bound}");
                let scale = (enu_angles(&a, &b).1 * EARTH_R).abs();
                if scale > 0.0 {
                    worst = worst.max((e - e0).abs() / scale);
                    checked += 1;
                }
                a = b;
            }
        }
        assert!(checked > 500_000, "{checked}");
        // The bound claims 3e-15 of |Δλ|·R; what is found is well inside it.
        assert!(worst <= 1e-15, "{worst:e}");
    }

    #[test]
    fn rule_an_honest_drive_is_covered_whole_with_no_evidence() {
        let f = drive(600, 12.0, 2.0);
        let c = check_segment(&refs(&f), None, &k());
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        assert_eq!(c.runs.iter().map(Vec::len).sum::<usize>(), 600);
        let t = c.trace.unwrap();
        assert!((t.meters as f64 - 7200.0).abs() < 500.0, "{}", t.meters);
        assert!(!t.anchors.is_empty());
    }

    #[test]
    fn rule_sparse_sampling_earns_only_the_fixes_own_cells() {
        let f: Vec<Fix> = drive(600, 12.0, 2.0).into_iter().step_by(29).collect();
        let c = check_segment(&refs(&f), None, &k());
        assert!(c.runs.iter().all(|r| r.len() == 1), "{:?}", c.runs);
        let ev = c.findings.iter().find(|f| f.detector == Detector::SparseFill).unwrap();
        assert_eq!(ev.effect, Effect::NoFill);
        assert!(ev.meters > 6000, "{}", ev.meters);
    }

    #[test]
    fn rule_path_metres_are_the_sum_of_geo_haversines_to_the_bit() {
        // `path_m` and `path_m_steps` keep each fix's latitude cosine; the sum must be the one of
        // `quality::distance_m` per pair, in order (evidence metres and trace lengths reach the
        // outputs).
        let f = drive(2_000, 17.0, 4.0);
        let r = refs(&f);
        let pts = points(&r);
        for idx in [
            (0..2_000).collect::<Vec<usize>>(),
            (0..2_000).step_by(7).collect(),
            vec![5],
            vec![],
        ] {
            let want: f64 = idx
                .windows(2)
                .map(|w| crate::quality::distance_m(f[w[0]].lat, f[w[0]].lon, f[w[1]].lat, f[w[1]].lon))
                .sum();
            assert_eq!(path_m(&r, &idx).to_bits(), want.to_bits());
            assert_eq!(path_m_steps(&pts, None, &idx).to_bits(), want.to_bits());
        }
    }

    #[test]
    fn rule_trace_metres_are_the_exact_sum_rounded_even_at_a_half_metre() {
        let exact = |pts: &[crate::quality::GeoPoint], steps: Option<&[f64]>, runs: &[Vec<usize>]| {
            runs.iter().map(|r| path_m_steps(pts, steps, r)).sum::<f64>().round() as u64
        };
        // Whole drives, thinned, split into runs, with and without cleaning's steps.
        let f = drive(3_000, 13.0, 3.0);
        let pts = points(&refs(&f));
        let steps: Vec<f64> = (0..f.len())
            .map(|i| {
                if i % 3 == 0 || i == 0 {
                    f64::NAN
                } else {
                    pts[i - 1].distance_m(&pts[i])
                }
            })
            .collect();
        for runs in [
            vec![(0..3_000).collect::<Vec<usize>>()],
            vec![(0..1_000).collect(), (1_200..3_000).step_by(2).collect(), vec![2_999]],
            vec![],
        ] {
            for st in [None, Some(steps.as_slice())] {
                assert_eq!(runs_m_rounded(&pts, st, &runs), exact(&pts, st, &runs));
            }
        }
        // Two fixes whose exact distance crosses 100.5 m between neighbouring longitudes.
        let a = crate::quality::GeoPoint::new(48.0, 11.0);
        let len = |lon: f64| a.distance_m(&crate::quality::GeoPoint::new(48.0, lon));
        let (mut lo, mut hi) = (11.0f64.to_bits(), 11.01f64.to_bits());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if len(f64::from_bits(mid)) >= 100.5 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for bits in lo - 2..=hi + 2 {
            let pts = [a, crate::quality::GeoPoint::new(48.0, f64::from_bits(bits))];
            let m = runs_m_rounded(&pts, None, &[vec![0, 1]]);
            assert_eq!(m, exact(&pts, None, &[vec![0, 1]]), "longitude bits {bits}");
            seen.insert(m);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [100, 101]);
    }
}
