//! Rejection reasons and the per-source accounting of every input line.

use std::collections::BTreeMap;
use std::fmt;

/// Why a line, point or fix was not turned into (or kept as) an accepted fix.
///
/// The string forms ([`Reason::as_str`]) are stable: they are written to Parquet and are what
/// analysts filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Reason {
    // ---- ingest: line level
    /// Not an NMEA sentence and not a known framing.
    NotNmea,
    /// A sentence without `*hh`.
    MissingChecksum,
    /// Checksum does not match the sentence.
    BadChecksum,
    /// The sentence or its checksum was cut off.
    Truncated,
    /// The sentence could not be decoded (details say which field).
    Unparseable,
    /// The receiver reported no fix (GGA quality 0, RMC/GLL status V, GNS mode N).
    NoFix,
    /// No UTC date could be found for the fix (no RMC/ZDA date, no framing timestamp).
    NoDate,
    /// A GPX point without a time.
    NoTime,
    /// Position out of range (|lat| > 90 or |lon| > 180).
    BadPosition,
    /// The whole file could not be parsed (GPX XML error).
    BadFile,
    /// A GPX waypoint or route point: a marked place or a plan, not a recorded position.
    NotTrackPoint,
    /// A fix time later than the source's receipt by more than the policy's skew.
    AfterReceipt,
    /// A fix time too long before the source's receipt (policy age, or a 1024-week GPS rollover
    /// that no independent clock confirms).
    BeforeReceipt,
    /// A field holds a null, NaN, infinite or impossible value (the detail names the field).
    BadValue,
    // ---- epoch: fix level gates
    /// Fix quality 0.
    FixInvalid,
    /// HDOP missing.
    HdopMissing,
    /// HDOP above the policy limit.
    HdopTooHigh,
    /// Fewer satellites than the policy minimum.
    TooFewSats,
    /// No satellite count while the policy requires one.
    SatsMissing,
    // ---- epoch: trace level
    /// Earlier than the previous accepted fix of the same source.
    TimeBackwards,
    /// Same time as the previous accepted fix of the same source.
    DuplicateTime,
    /// Implied speed from the previous accepted fix above the policy limit.
    Teleport,
    // ---- rewards
    /// The device is not in the registry.
    UnregisteredDevice,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 23] = [
        Reason::NotNmea,
        Reason::MissingChecksum,
        Reason::BadChecksum,
        Reason::Truncated,
        Reason::Unparseable,
        Reason::NoFix,
        Reason::NoDate,
        Reason::NoTime,
        Reason::BadPosition,
        Reason::BadFile,
        Reason::NotTrackPoint,
        Reason::AfterReceipt,
        Reason::BeforeReceipt,
        Reason::BadValue,
        Reason::FixInvalid,
        Reason::HdopMissing,
        Reason::HdopTooHigh,
        Reason::TooFewSats,
        Reason::SatsMissing,
        Reason::TimeBackwards,
        Reason::DuplicateTime,
        Reason::Teleport,
        Reason::UnregisteredDevice,
    ];

    /// Stable snake_case name.
    ///
    /// ```
    /// assert_eq!(tessera::ingest::Reason::BadChecksum.as_str(), "bad_checksum");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::NotNmea => "not_nmea",
            Reason::MissingChecksum => "missing_checksum",
            Reason::BadChecksum => "bad_checksum",
            Reason::Truncated => "truncated",
            Reason::Unparseable => "unparseable",
            Reason::NoFix => "no_fix",
            Reason::NoDate => "no_date",
            Reason::NoTime => "no_time",
            Reason::BadPosition => "bad_position",
            Reason::BadFile => "bad_file",
            Reason::NotTrackPoint => "not_track_point",
            Reason::AfterReceipt => "after_receipt",
            Reason::BeforeReceipt => "before_receipt",
            Reason::BadValue => "bad_value",
            Reason::FixInvalid => "fix_invalid",
            Reason::HdopMissing => "hdop_missing",
            Reason::HdopTooHigh => "hdop_too_high",
            Reason::TooFewSats => "too_few_sats",
            Reason::SatsMissing => "sats_missing",
            Reason::TimeBackwards => "time_backwards",
            Reason::DuplicateTime => "duplicate_time",
            Reason::Teleport => "teleport",
            Reason::UnregisteredDevice => "unregistered_device",
        }
    }

    /// Parse the stable name back.
    ///
    /// ```
    /// use tessera::ingest::Reason;
    /// assert_eq!(Reason::parse("teleport"), Some(Reason::Teleport));
    /// ```
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rejected line, point or fix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// 1-based line (GPX: the line of the `<trkpt>`); 0 for a whole-file error.
    pub line: u32,
    /// Why.
    pub reason: Reason,
    /// Human detail (the offending field, expected vs found checksum...).
    pub detail: String,
    /// UTC ms, when known.
    pub time_ms: Option<i64>,
    /// Latitude, when known.
    #[serde(with = "crate::pipeline::wire::opt_f64_bits")]
    pub lat: Option<f64>,
    /// Longitude, when known.
    #[serde(with = "crate::pipeline::wire::opt_f64_bits")]
    pub lon: Option<f64>,
}

impl Rejection {
    /// A rejection with no time or position.
    ///
    /// ```
    /// use tessera::report::{Reason, Rejection};
    /// let r = Rejection::at(7, Reason::BadChecksum, "expected *4A");
    /// assert_eq!((r.line, r.reason, r.time_ms), (7, Reason::BadChecksum, None));
    /// ```
    pub fn at(line: u32, reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            line,
            reason,
            detail: detail.into(),
            time_ms: None,
            lat: None,
            lon: None,
        }
    }
}

/// Where every input line of a source went. Invariant (tested on every corpus log):
/// `total == fix + aux + imu + ignored + blank + comment + rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineCounts {
    /// Lines (GPX: track points) read.
    pub total: u64,
    /// Position sentences (or points) merged into accepted fixes.
    pub fix: u64,
    /// Sentences used as supplementary information (GSA, GSV, VTG, ZDA, TXT).
    pub aux: u64,
    /// Well-framed sentences of types tessera does not use, by type.
    pub ignored: u64,
    /// Empty lines.
    pub blank: u64,
    /// `#` comment lines.
    pub comment: u64,
    /// Lines or points in the rejection report.
    pub rejected: u64,
    /// Camera telemetry: IMU samples kept (a "line" of a camera file is one sample).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub imu: u64,
    /// Ignored sentence types and how often (`PGRME` → 12).
    pub ignored_types: BTreeMap<String, u64>,
    /// Accepted fixes whose time was corrected, by correction (`gps_week_rollover` → 3600); not
    /// a line category (the lines are counted under `fix`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub corrected: BTreeMap<String, u64>,
}

impl LineCounts {
    /// Whether the accounting invariant holds.
    ///
    /// ```
    /// let p = tessera::ingest::parse(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n\n# note\njunk\n");
    /// assert!(p.lines.balanced());
    /// assert_eq!((p.lines.fix, p.lines.blank, p.lines.comment, p.lines.rejected), (1, 1, 1, 1));
    /// ```
    pub fn balanced(&self) -> bool {
        self.total == self.fix + self.aux + self.imu + self.ignored + self.blank + self.comment + self.rejected
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
