//! The `[trust]` section of the policy: every threshold of every detector, with its documented
//! default, and the integer/unit form the detectors use ([`TrustKernels`]).
//!
//! Evidence rows name the key that decided them (`trust.kinematics.max_accel_mps2`…), so an
//! operator can look the number up here.

use crate::fixed::{to_ppm, Ppm};
use crate::policy::PolicyError;
use serde::{Deserialize, Serialize};

/// `[trust]`: the detectors that withhold rewards from spoofed, replayed, copied or simulated
/// traces, and the per-device reputation. `enabled = false` gives policy v1 exactly (what the
/// independent Polars peer implements).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustPolicy {
    /// Run the detectors (default true).
    pub enabled: bool,
    /// Movement and sampling floors.
    pub motion: MotionPolicy,
    /// Physical limits of a road vehicle.
    pub kinematics: KinematicsPolicy,
    /// Fingerprints of GNSS simulators.
    pub simulator: SimulatorPolicy,
    /// One timeline per device.
    pub timeline: TimelinePolicy,
    /// Replays, copies and co-travel.
    pub copies: CopiesPolicy,
    /// Fix times against receipt times, at epoch time.
    pub time: TimePolicy,
    /// Per-device reputation across epochs.
    pub reputation: ReputationPolicy,
    /// Camera IMU against the track.
    pub imu: ImuPolicy,
}

/// `[trust.imu]`: camera telemetry (accelerometer, gyroscope) against the GNSS track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImuPolicy {
    /// Window of the vibration check, seconds (default 30).
    pub window_s: u32,
    /// Windows whose fixes move slower than this are not checked, m/s (default 5).
    pub min_speed_mps: f64,
    /// Vibration (RMS of the acceleration magnitude about its mean) below which a moving window
    /// is still, m/s² (default 0.05: a MEMS accelerometer at rest reads ~0.01, a car on any road
    /// 0.2 or more).
    pub min_vibration_mps2: f64,
    /// Heading change of the track that makes a turn, degrees (default 45).
    pub min_turn_deg: f64,
    /// Within this time, seconds (default 5).
    pub turn_window_s: u32,
    /// Share of a turn's heading change the gyroscope must integrate (default 0.5).
    pub min_turn_share: f64,
    /// Unseen turns from which the segment is withheld (default 2; also more than half of
    /// the turns checked).
    pub max_unseen_turns: u32,
}

/// `[trust.motion]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionPolicy {
    /// Slowest speed that earns, m/s, measured as displacement over `window_s` centred on the
    /// fix (default 2.5 = 9 km/h: walking, parked devices and wandering noise earn nothing).
    pub min_speed_mps: f64,
    /// Window of the movement floor, seconds (default 30).
    pub window_s: u32,
    /// Longest interval between fixes that is filled with the grid path, seconds (default 10);
    /// sparser fixes earn only their own cells.
    pub max_fill_s: u32,
    /// A fix further than this from the straight line between its neighbours, and further
    /// than half their distance, is a multipath spike and is skipped (metres, default 25).
    pub max_spike_m: f64,
}

/// `[trust.kinematics]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinematicsPolicy {
    /// Largest acceleration (longitudinal and lateral together), m/s², over `window_s` before
    /// and after a fix (default 12: about 1.2 g, beyond the tyre grip of road cars).
    pub max_accel_mps2: f64,
    /// Baseline of the acceleration, seconds (default 3).
    pub window_s: u32,
    /// Events (at least 10 s apart) in one segment from which the whole segment is withheld
    /// (default 3); fewer withhold only the fixes around each event.
    pub max_events: u32,
    /// Consecutive fixes rejected as `teleport` from which the segments on both sides are
    /// withheld (default 5: a multipath jump costs two, a 20 s leg at 340 km/h twenty).
    pub max_teleports: u32,
    /// Receiver speed (RMC/VTG) differing from the positions' speed by more than this (and
    /// more than 25 %) is a mismatch, m/s (default 5).
    pub speed_mismatch_mps: f64,
    /// Share of a segment's checked fixes that may mismatch before it is withheld (default 0.3;
    /// checked only with at least 30 fixes that report a speed).
    pub max_mismatch_share: f64,
}

/// `[trust.simulator]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorPolicy {
    /// Longest stretch of moving fixes with exactly the same HDOP and satellite count, seconds
    /// (default 900; real constellations change within minutes).
    pub max_constant_signal_s: u32,
    /// Fixes in a straight-line window (default 30).
    pub line_fixes: u32,
    /// A window of `line_fixes` spanning at least 300 m whose RMS distance from its chord is
    /// below this is geometrically perfect, metres (default 0.1; NMEA's 4-decimal minutes
    /// alone give 0.05).
    pub min_line_rms_m: f64,
    /// Longest stretch of moving fixes whose receiver speed stays within
    /// `min_speed_range_mps`, seconds (default 300).
    pub max_constant_speed_s: u32,
    /// See `max_constant_speed_s`, m/s (default 0.05).
    pub min_speed_range_mps: f64,
    /// Median acceleration between consecutive 1 s steps above which the noise is white (not
    /// a receiver's smooth error), m/s² (default 3; checked on segments of 60+ moving fixes).
    pub max_median_accel_mps2: f64,
}

/// `[trust.timeline]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimelinePolicy {
    /// Fastest average speed over a gap between two segments of one device (across all its
    /// sources), km/h (default 160); faster withholds both segments.
    pub max_bridge_kmh: f64,
    /// Segments with gaps up to this between them are one journey, withheld whole around an
    /// impossible bridge, seconds (default 1800).
    pub journey_gap_s: u32,
    /// Two sources of one device overlapping in time further apart than this at the same time
    /// place it in two places at once, metres (default 500); the overlap is withheld.
    pub max_apart_m: f64,
}

/// `[trust.copies]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CopiesPolicy {
    /// H3 resolution of the anchors a trace is fingerprinted by (default 10, ~66 m edge).
    pub anchor_resolution: u8,
    /// One cell in this many is an anchor, chosen by a hash of the cell, so every trace over
    /// a road samples the same cells (default 2).
    pub anchor_sampling: u32,
    /// Consecutive matched anchors with a constant time offset that make a copy (default 14;
    /// 6 until 2026-12-05: under fixed-time lights that switch together along an avenue,
    /// honest drivers a whole number of cycles apart who stop at most lights keep one offset
    /// over 6–12 anchors, see the README's trust section). Left out of a policy file it is 14
    /// under trust rule set 4 and later, and 6 under the earlier sets, whose default it was: an
    /// epoch published then under a policy that left it out is recomputed as it was published.
    pub min_anchors: u32,
    /// Anchors a time-scaled or reversed match needs ([`super::warp`], `trust::reverse`;
    /// default 12). Until trust rule set 4 it was twice `min_anchors`, and an epoch published
    /// under an earlier set is judged so.
    pub min_scaled_anchors: u32,
    /// Shortest matched stretch, seconds of the copy's time (default 180: two honest drivers
    /// can keep one speed for a minute or two).
    pub min_match_s: u32,
    /// Largest spread of the offset across the matched anchors, seconds (default 3; drivers
    /// on the same road drift apart by more than this within a few anchors).
    pub max_spread_s: u32,
    /// Offsets up to this are co-travel (one car, or a convoy), beyond it replay, seconds
    /// (default 120). Either way the later received trace is withheld on the matched part.
    pub co_travel_s: u32,
    /// A copy whose clock is scaled by up to this factor (faster or slower) against its
    /// original is matched too (default 1.25; 1 turns the time-scaled rule off): see
    /// [`super::warp`].
    pub max_time_scale: f64,
    /// A time-scaled match counts only where the original departs from a steady pace by at
    /// least this along the road, metres (default 300: a ~30 s stop at 12 m/s, or slow
    /// stretches adding up to it; a steady drive measures ~100 m at res-10 anchors): two honest
    /// drivers at different steady speeds have scaled timings too. From trust rule set 5 a
    /// constant-offset `replay` needs it as well: two honest drivers at one steady speed — trucks
    /// at their limiters, cars on cruise control — keep a constant offset too.
    pub min_unsteady_m: f64,
    /// From trust rule set 6 the departure must also last this long at the original's pace
    /// there, seconds (default 25: a stop of 25 s; at 12 m/s the same as `min_unsteady_m`): at
    /// motorway speed the cell-centre geometry of a steady drive measures 300–450 m, 12–18 s at
    /// 25 m/s, and honest trucks a day apart at one limiter speed were withheld as `replay`
    /// over it.
    pub min_unsteady_s: f64,
    /// From trust rule set 7 a `replay`'s withheld window crosses a gap between its matched
    /// chains only where every anchor of the copy in the gap lies within this of the original's
    /// track, metres (default 150: receiver noise moves a copy's anchor into a neighbouring
    /// res-10 cell, ~130 m between centres; a parallel street a block away, ~180 m, or an
    /// honest driver's own detour is not crossed). See [`super::bridge`].
    pub bridge_m: f64,
    /// A copy driven the other way (its fixes reversed, its clock mirrored) is matched too
    /// (default true): see `trust::reverse`.
    pub reversed: bool,
    /// Past epochs whose fingerprints are compared (default 4).
    pub history_epochs: u32,
    /// Devices of one wallet take one rank in a cell: the wallet's later devices get rank
    /// weight 0 and push no other contributor down (default true).
    pub one_rank_per_wallet: bool,
}

/// `[trust.time]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimePolicy {
    /// A fix later than its source's receipt by more than this is withheld, seconds (default
    /// 300).
    pub max_future_s: u64,
    /// A fix older than its source's receipt by more than this is withheld, days; 0 (default)
    /// for no bound. Networks paying weekly set e.g. 14.
    pub max_delay_days: u64,
    /// A backward clock step with the position continuing (within this distance of the last
    /// fix) restarts the segment instead of rejecting the rest as `time_backwards`, metres
    /// (default 300).
    pub clock_step_m: f64,
}

/// `[trust.reputation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReputationPolicy {
    /// Reputation of a device never seen (default 1.0).
    pub initial: f64,
    /// Lost in an epoch with withholding evidence of a cheating kind (default 0.25).
    pub penalty: f64,
    /// Regained in an epoch with none (default 0.05).
    pub recovery: f64,
}

macro_rules! defaults {
    ($($t:ident { $($f:ident: $v:expr),* $(,)? })*) => {$(
        impl Default for $t {
            fn default() -> Self { $t { $($f: $v),* } }
        }
    )*};
}

defaults! {
    TrustPolicy {
        enabled: true,
        motion: MotionPolicy::default(),
        kinematics: KinematicsPolicy::default(),
        simulator: SimulatorPolicy::default(),
        timeline: TimelinePolicy::default(),
        copies: CopiesPolicy::default(),
        time: TimePolicy::default(),
        reputation: ReputationPolicy::default(),
        imu: ImuPolicy::default(),
    }
    ImuPolicy {
        window_s: 30, min_speed_mps: 5.0, min_vibration_mps2: 0.05, min_turn_deg: 45.0, turn_window_s: 5,
        min_turn_share: 0.5, max_unseen_turns: 2,
    }
    MotionPolicy { min_speed_mps: 2.5, window_s: 30, max_fill_s: 10, max_spike_m: 25.0 }
    KinematicsPolicy {
        max_accel_mps2: 12.0, window_s: 3, max_events: 3, max_teleports: 5, speed_mismatch_mps: 5.0,
        max_mismatch_share: 0.3,
    }
    SimulatorPolicy {
        max_constant_signal_s: 900, line_fixes: 30, min_line_rms_m: 0.1,
        max_constant_speed_s: 300, min_speed_range_mps: 0.05, max_median_accel_mps2: 3.0,
    }
    TimelinePolicy { max_bridge_kmh: 160.0, journey_gap_s: 1800, max_apart_m: 500.0 }
    CopiesPolicy {
        anchor_resolution: 10, anchor_sampling: 2, min_anchors: MIN_ANCHORS, min_scaled_anchors: 12, min_match_s: 180, max_spread_s: 3,
        co_travel_s: 120, max_time_scale: 1.25, min_unsteady_m: 300.0, min_unsteady_s: 25.0,
        bridge_m: super::bridge::BRIDGE_M, reversed: true, history_epochs: 4,
        one_rank_per_wallet: true,
    }
    TimePolicy { max_future_s: 300, max_delay_days: 0, clock_step_m: 300.0 }
    ReputationPolicy { initial: 1.0, penalty: 0.25, recovery: 0.05 }
}

/// `trust.copies.min_anchors` when a policy leaves it out (trust rule set 4 and later).
const MIN_ANCHORS: u32 = 14;
/// `trust.copies.min_anchors` when a policy leaves it out, under trust rule sets 1–3 (the
/// default until 2026-12-05).
const MIN_ANCHORS_BEFORE_4: usize = 6;

/// Whether a policy's TOML text sets `trust.copies.min_anchors` (text that is not TOML: true,
/// so nothing is changed on its account; such a policy is refused when parsed anyway).
///
/// ```
/// use tessera::trust::policy::names_min_anchors;
/// assert!(!names_min_anchors("[trust]\nenabled = true\n"));
/// assert!(names_min_anchors("[trust.copies]\nmin_anchors = 14\n"));
/// ```
pub fn names_min_anchors(text: &str) -> bool {
    let Ok(t) = text.parse::<toml::Table>() else {
        return true;
    };
    t.get("trust")
        .and_then(|t| t.get("copies"))
        .is_some_and(|c| c.get("min_anchors").is_some())
}

/// The trust rule set new epochs are judged by. The manifest records it (`trust_rules`), and
/// `epoch verify` and a re-run of a published epoch judge it by the set it was published under,
/// as they do for the Parquet layout: a rule added later does not change a published epoch.
///
/// - 1: every epoch published before rule sets were numbered (manifests without the field);
/// - 2: adds copies whose clock is scaled ([`super::warp`], `trust.copies.max_time_scale`);
/// - 3: adds copies driven the other way (`trust::reverse`, `trust.copies.reversed`);
/// - 4: the time-scaled and reversed rules need `trust.copies.min_scaled_anchors` anchors
///   (before: twice `min_anchors`), so `min_anchors` can be raised alone; `min_anchors` left
///   out of a policy is 14 (before: 6);
/// - 5: a constant-offset `replay` (not `co_travel`) needs the original to depart from a steady
///   pace by `trust.copies.min_unsteady_m` over the match, as the time-scaled rule does: two
///   honest vehicles at one steady speed (trucks at their limiters, cars on cruise control) a
///   day apart keep a constant offset too;
/// - 6: that departure (`warp::departure`) is measured against a pace that short steps
///   between cell centres do not skew, and must also reach `trust.copies.min_unsteady_s` at
///   that pace: 9 of 144 pairs of honest trucks at one limiter speed were still withheld;
/// - 7: a `replay` withholds its chains of anchors matched on its clock (at its constant
///   offset, or on its time-scaled line), not only the longest, across gaps whose anchors lie
///   near the original's track ([`super::bridge`]): receiver noise breaks a copy's matched
///   anchors into chains, and a caught copy kept 4–38 % of its pay between and beside the
///   longest one; after a `replay` the votes off its clock are matched again (a copy keeping
///   several clocks is caught on each); and the copy search joins a device's sources that
///   follow each other within `trust.timeline.journey_gap_s` into one trace: a copy uploaded
///   as five-minute files had no part reaching `min_anchors`.
pub const TRUST_RULES: u32 = 7;

/// The trust policy in the units the detectors use (validated).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct TrustKernels {
    pub min_speed_mps: f64,
    pub floor_window_ms: i64,
    pub max_fill_ms: i64,
    pub max_spike_m: f64,
    pub max_accel_mps2: f64,
    pub accel_window_ms: i64,
    pub max_events: u32,
    pub max_teleports: u32,
    pub speed_mismatch_mps: f64,
    pub max_mismatch_share: f64,
    pub max_constant_signal_ms: i64,
    pub line_fixes: usize,
    pub min_line_rms_m: f64,
    pub max_constant_speed_ms: i64,
    pub min_speed_range_mps: f64,
    pub max_median_accel_mps2: f64,
    pub max_bridge_mps: f64,
    pub journey_gap_ms: i64,
    pub max_apart_m: f64,
    pub anchor_resolution: h3o::Resolution,
    pub anchor_sampling: u64,
    pub min_anchors: usize,
    /// Whether the policy's text gives `min_anchors` (left out, its default depends on the rule
    /// set: [`TrustKernels::under_rules`]). [`TrustPolicy::kernels`] sets true; an epoch's
    /// plan sets it from the text with [`names_min_anchors`].
    pub min_anchors_given: bool,
    /// Anchors of a time-scaled or reversed match.
    pub scaled_anchors: usize,
    pub min_match_ms: i64,
    pub max_spread_ms: i64,
    pub co_travel_ms: i64,
    pub max_time_scale: f64,
    pub min_unsteady_m: f64,
    /// A departure from a steady pace must last this long at that pace, seconds (trust rule
    /// set 6, with `paced_departure`).
    pub min_unsteady_s: f64,
    /// Metres from the original's track a gap's anchors may lie for a `replay`'s window to
    /// cross it (trust rule set 7).
    pub bridge_m: f64,
    /// A constant-offset `replay` needs `min_unsteady_m` too (trust rule set 5).
    pub unsteady_replays: bool,
    /// The departure from a steady pace is `warp::departure`'s from rule set 6
    /// (robust pace, `min_unsteady_s`); before, `unsteadiness` in metres alone.
    pub paced_departure: bool,
    /// A `replay` withholds its chains matched on its clock across gaps near the original's
    /// track ([`super::bridge`], trust rule set 7); before, the longest chain of them.
    pub every_chain: bool,
    /// The copy search joins a device's sources that follow each other within
    /// `journey_gap_ms` into one trace (trust rule set 7); before, one trace per source.
    pub join_sources: bool,
    pub reversed: bool,
    pub history_epochs: u32,
    pub one_rank_per_wallet: bool,
    pub max_future_ms: i64,
    pub max_delay_ms: Option<i64>,
    pub clock_step_m: f64,
    pub initial: Ppm,
    pub penalty: Ppm,
    pub recovery: Ppm,
    pub imu_window_ms: i64,
    pub imu_min_speed_mps: f64,
    pub imu_min_vibration_mps2: f64,
    pub imu_min_turn_rad: f64,
    pub imu_turn_window_ms: i64,
    pub imu_min_turn_share: f64,
    pub imu_max_unseen_turns: u32,
}

fn bad(field: &'static str, message: &str) -> PolicyError {
    PolicyError::Invalid {
        field,
        message: message.into(),
    }
}

fn positive(x: f64, max: f64, field: &'static str) -> Result<f64, PolicyError> {
    if x.is_finite() && x > 0.0 && x <= max {
        Ok(x)
    } else {
        Err(bad(field, &format!("must be in (0, {max}]")))
    }
}

fn secs(x: u32, field: &'static str) -> Result<i64, PolicyError> {
    if x == 0 {
        return Err(bad(field, "must be at least 1"));
    }
    Ok(i64::from(x) * 1000)
}

impl TrustKernels {
    /// The fewest anchors any copy rule matches on (the constant-offset rule's
    /// `min_anchors`, or the time-scaled and reversed rules' `scaled_anchors` when set lower):
    /// candidates with fewer shared anchor pairs are not compared.
    pub(crate) fn fewest_anchors(&self) -> usize {
        self.min_anchors.min(self.scaled_anchors)
    }

    /// These kernels as rule set `rules` ([`TRUST_RULES`]) judges: a rule added after it is off.
    ///
    /// ```
    /// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
    /// assert_eq!(k.clone().under_rules(1).max_time_scale, 1.0);
    /// assert!(!k.clone().under_rules(2).reversed && k.clone().under_rules(2).max_time_scale > 1.0);
    /// assert_eq!(k.clone().under_rules(3).scaled_anchors, 2 * k.min_anchors);
    /// // a policy that leaves min_anchors out: 14 now, 6 (its default then) under rule set 3
    /// let mut bare = tessera::policy::Policy::from_toml_str("").unwrap().kernels().unwrap().trust.unwrap();
    /// bare.min_anchors_given = tessera::trust::policy::names_min_anchors("");
    /// assert_eq!((bare.min_anchors, bare.scaled_anchors), (14, 12));
    /// let then = bare.under_rules(3);
    /// assert_eq!((then.min_anchors, then.scaled_anchors), (6, 12));
    /// assert_eq!(k.clone().under_rules(tessera::trust::policy::TRUST_RULES), k);
    /// ```
    pub fn under_rules(mut self, rules: u32) -> TrustKernels {
        if rules < 2 {
            self.max_time_scale = 1.0;
        }
        if rules < 3 {
            self.reversed = false;
        }
        if rules < 5 {
            self.unsteady_replays = false;
        }
        if rules < 6 {
            self.paced_departure = false;
        }
        if rules < 7 {
            self.every_chain = false;
            self.join_sources = false;
        }
        if rules < 4 {
            if !self.min_anchors_given {
                self.min_anchors = MIN_ANCHORS_BEFORE_4;
            }
            self.scaled_anchors = 2 * self.min_anchors;
        }
        self
    }
}

impl TrustPolicy {
    /// Validate and convert; `None` when the detectors are off.
    ///
    /// ```
    /// let k = tessera::trust::policy::TrustPolicy::default().kernels().unwrap().unwrap();
    /// assert_eq!((k.max_fill_ms, k.initial), (10_000, 1_000_000));
    /// ```
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] naming the `trust.…` key out of its range.
    pub fn kernels(&self) -> Result<Option<TrustKernels>, PolicyError> {
        if !self.enabled {
            return Ok(None);
        }
        let (m, k, s, t, c, r) = (
            &self.motion,
            &self.kinematics,
            &self.simulator,
            &self.copies,
            &self.time,
            &self.reputation,
        );
        let tl = &self.timeline;
        let ppm = |x: f64, f: &'static str| to_ppm(x, 1.0).ok_or_else(|| bad(f, "must be in [0, 1]"));
        Ok(Some(TrustKernels {
            min_speed_mps: if m.min_speed_mps == 0.0 {
                0.0
            } else {
                positive(m.min_speed_mps, 100.0, "trust.motion.min_speed_mps")?
            },
            floor_window_ms: secs(m.window_s, "trust.motion.window_s")?,
            max_fill_ms: secs(m.max_fill_s, "trust.motion.max_fill_s")?,
            max_spike_m: positive(m.max_spike_m, 1e6, "trust.motion.max_spike_m")?,
            max_accel_mps2: positive(k.max_accel_mps2, 1e4, "trust.kinematics.max_accel_mps2")?,
            accel_window_ms: secs(k.window_s, "trust.kinematics.window_s")?,
            max_events: k.max_events.max(1),
            max_teleports: k.max_teleports.max(1),
            speed_mismatch_mps: positive(k.speed_mismatch_mps, 1e4, "trust.kinematics.speed_mismatch_mps")?,
            max_mismatch_share: positive(k.max_mismatch_share, 1.0, "trust.kinematics.max_mismatch_share")?,
            max_constant_signal_ms: secs(s.max_constant_signal_s, "trust.simulator.max_constant_signal_s")?,
            line_fixes: (s.line_fixes as usize).max(3),
            min_line_rms_m: positive(s.min_line_rms_m, 1e3, "trust.simulator.min_line_rms_m")?,
            max_constant_speed_ms: secs(s.max_constant_speed_s, "trust.simulator.max_constant_speed_s")?,
            min_speed_range_mps: positive(s.min_speed_range_mps, 1e3, "trust.simulator.min_speed_range_mps")?,
            max_median_accel_mps2: positive(s.max_median_accel_mps2, 1e4, "trust.simulator.max_median_accel_mps2")?,
            max_bridge_mps: positive(tl.max_bridge_kmh, 1e6, "trust.timeline.max_bridge_kmh")? / 3.6,
            journey_gap_ms: i64::from(tl.journey_gap_s) * 1000,
            max_apart_m: positive(tl.max_apart_m, 1e7, "trust.timeline.max_apart_m")?,
            anchor_resolution: h3o::Resolution::try_from(t.anchor_resolution)
                .map_err(|_| bad("trust.copies.anchor_resolution", "must be 0..=15"))?,
            anchor_sampling: u64::from(t.anchor_sampling.max(1)),
            min_anchors: (t.min_anchors as usize).max(2),
            min_anchors_given: true,
            scaled_anchors: (t.min_scaled_anchors as usize).max(2),
            min_match_ms: i64::from(t.min_match_s) * 1000,
            max_spread_ms: i64::from(t.max_spread_s) * 1000,
            co_travel_ms: i64::from(t.co_travel_s) * 1000,
            max_time_scale: if t.max_time_scale.is_finite() && (1.0..=10.0).contains(&t.max_time_scale) {
                t.max_time_scale
            } else {
                return Err(bad("trust.copies.max_time_scale", "must be in [1, 10] (1: off)"));
            },
            min_unsteady_m: positive(t.min_unsteady_m, 1e6, "trust.copies.min_unsteady_m")?,
            min_unsteady_s: positive(t.min_unsteady_s, 1e6, "trust.copies.min_unsteady_s")?,
            bridge_m: positive(t.bridge_m, 1e5, "trust.copies.bridge_m")?,
            unsteady_replays: true,
            paced_departure: true,
            every_chain: true,
            join_sources: true,
            reversed: t.reversed,
            history_epochs: t.history_epochs,
            one_rank_per_wallet: t.one_rank_per_wallet,
            max_future_ms: i64::try_from(c.max_future_s.min(1 << 40)).unwrap_or(0) * 1000,
            max_delay_ms: (c.max_delay_days > 0)
                .then(|| i64::try_from(c.max_delay_days.min(1 << 20)).unwrap_or(0) * 86_400_000),
            clock_step_m: if c.clock_step_m == 0.0 {
                0.0
            } else {
                positive(c.clock_step_m, 1e7, "trust.time.clock_step_m")?
            },
            initial: ppm(r.initial, "trust.reputation.initial")?,
            penalty: ppm(r.penalty, "trust.reputation.penalty")?,
            recovery: ppm(r.recovery, "trust.reputation.recovery")?,
            imu_window_ms: secs(self.imu.window_s, "trust.imu.window_s")?,
            imu_min_speed_mps: positive(self.imu.min_speed_mps, 1e3, "trust.imu.min_speed_mps")?,
            imu_min_vibration_mps2: positive(self.imu.min_vibration_mps2, 1e3, "trust.imu.min_vibration_mps2")?,
            imu_min_turn_rad: positive(self.imu.min_turn_deg, 180.0, "trust.imu.min_turn_deg")?.to_radians(),
            imu_turn_window_ms: secs(self.imu.turn_window_s, "trust.imu.turn_window_s")?,
            imu_min_turn_share: positive(self.imu.min_turn_share, 1.0, "trust.imu.min_turn_share")?,
            imu_max_unseen_turns: self.imu.max_unseen_turns.max(1),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_defaults_convert_to_their_units() {
        let k = TrustPolicy::default().kernels().unwrap().unwrap();
        assert_eq!(k.floor_window_ms, 30_000);
        assert!((k.max_bridge_mps - 44.44).abs() < 0.01);
        assert_eq!(k.anchor_resolution, h3o::Resolution::Ten);
        assert_eq!((k.penalty, k.recovery), (250_000, 50_000));
        assert_eq!(k.max_delay_ms, None);
    }

    #[test]
    fn trust_disabled_gives_no_kernels() {
        let p = TrustPolicy {
            enabled: false,
            ..TrustPolicy::default()
        };
        assert_eq!(p.kernels().unwrap(), None);
    }

    #[test]
    fn trust_out_of_range_names_the_key() {
        let mut p = TrustPolicy::default();
        p.kinematics.max_accel_mps2 = -1.0;
        assert!(p
            .kernels()
            .unwrap_err()
            .to_string()
            .contains("trust.kinematics.max_accel_mps2"));
        let mut p = TrustPolicy::default();
        p.reputation.penalty = 2.0;
        assert!(p
            .kernels()
            .unwrap_err()
            .to_string()
            .contains("trust.reputation.penalty"));
    }
}
