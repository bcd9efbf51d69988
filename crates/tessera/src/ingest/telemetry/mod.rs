//! Camera telemetry: GNSS fixes and IMU readings inside dashcam and action-camera files — GoPro
//! GPMF (`gpmd` MP4 track, or a raw payload), CAMM (`camm` track), BlackVue (`free` box with
//! `gps ` and `3gf `).
//!
//! Only metadata is read: [`mp4::index`] walks the box tree (never `mdat`), then each
//! telemetry sample is read by seeking to it, so a 4 GB video ingests in memory proportional
//! to its telemetry. Every sample is accounted for in [`crate::report::LineCounts`] (a "line" is one sample):
//! a fix, an IMU reading (`imu`), an ignored stream (`ignored_types`, by `gpmf:<FourCC>` or
//! `camm:<case>`), or a rejection naming the sample and its byte offset.
//!
//! **Clock** (recorded in [`Telemetry::clock`]): GPS time where the file has it (GPMF `GPS9`
//! time or `GPSU`, CAMM case 6, BlackVue's NMEA), carried to the other samples through their
//! MP4 sample time; else the container's creation time (`mvhd`) plus sample time; else the
//! samples have no time and are rejected `no_time`.
//!
//! **Precision → HDOP**: GPMF `GPSP` (and GPS9's DOP) is DOP × 100, so HDOP = GPSP / 100;
//! CAMM gives a horizontal accuracy in metres, mapped to HDOP = accuracy / 5 m (a typical
//! user-equivalent range error; ≤ 0 means unknown, as mapillary-tools writes it).

mod assemble;
pub mod blackvue;
pub mod camm;
pub mod gpmf;
pub mod klv;
pub mod mp4;

use serde::{Deserialize, Serialize};

pub use assemble::{parse_gpmf_payload, parse_mp4};

/// An IMU sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensor {
    /// Accelerometer, m/s².
    Accel = 0,
    /// Gyroscope, rad/s.
    Gyro = 1,
    /// Magnetometer, µT.
    Mag = 2,
}

impl Sensor {
    /// Stable name (`accel`, `gyro`, `mag`).
    ///
    /// ```
    /// assert_eq!(tessera::ingest::telemetry::Sensor::Gyro.as_str(), "gyro");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Sensor::Accel => "accel",
            Sensor::Gyro => "gyro",
            Sensor::Mag => "mag",
        }
    }

    /// Parse the stable name.
    ///
    /// ```
    /// use tessera::ingest::telemetry::Sensor;
    /// assert_eq!(Sensor::parse("mag"), Some(Sensor::Mag));
    /// ```
    pub fn parse(s: &str) -> Option<Sensor> {
        [Sensor::Accel, Sensor::Gyro, Sensor::Mag]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Unit of the values.
    ///
    /// ```
    /// assert_eq!(tessera::ingest::telemetry::Sensor::Accel.unit(), "m/s²");
    /// ```
    pub fn unit(&self) -> &'static str {
        match self {
            Sensor::Accel => "m/s²",
            Sensor::Gyro => "rad/s",
            Sensor::Mag => "µT",
        }
    }
}

/// One IMU reading of one sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuSample {
    /// UTC time, µs since 1970.
    pub time_us: i64,
    /// Which sensor.
    pub sensor: Sensor,
    /// x, y, z in the source's axes ([`Telemetry::axes`]), in the sensor's unit.
    pub xyz: [f32; 3],
    /// 1-based sample ordinal in the source (the "line").
    pub line: u32,
}

/// What kind of telemetry a source held and how it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// `gpmf` (GoPro), `camm` or `blackvue`.
    pub kind: String,
    /// `mp4`, or `gpmf` for a raw GPMF payload.
    pub container: String,
    /// The clock the times come from: `gps`, `container` (MP4 creation time + sample time),
    /// `camm_unix` (a CAMM case-6 time written as Unix seconds, as mapillary-tools does),
    /// `none`.
    pub clock: String,
    /// The axis convention of the IMU values.
    pub axes: String,
    /// Camera model when the file names one (`DVNM`, `@mod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Axis convention of GPMF IMU values (as mapillary-tools 0.14.7 reads them).
pub const AXES_GPMF: &str = "gpmf: stored axes rotated by MTRX or ORIN/ORIO, then (z, x, y) = elements (0, 1, 2)";
/// Axis convention of CAMM (the spec's camera frame).
pub const AXES_CAMM: &str = "camm: camera frame, x right, y up, z backwards";
/// Axis convention of BlackVue `3gf`.
pub const AXES_BLACKVUE: &str = "blackvue-3gf: as stored, 128 counts = 1 g";

/// A FourCC as text (`GPS5`, `moov`), non-printable bytes as `?`.
///
/// ```
/// assert_eq!(tessera::ingest::telemetry::fourcc(b"gps\0"), "gps?");
/// ```
pub fn fourcc(k: &[u8; 4]) -> String {
    k.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Seconds between the Unix and GPS epochs.
pub use camm::GPS_EPOCH_UNIX_S;

/// Leap seconds (GPS − UTC) in force from each UTC instant (Unix s), IERS Bulletin C.
const LEAP: [(i64, i64); 18] = [
    (362_793_600, 1),
    (394_329_600, 2),
    (425_865_600, 3),
    (489_024_000, 4),
    (567_993_600, 5),
    (631_152_000, 6),
    (662_688_000, 7),
    (709_948_800, 8),
    (741_484_800, 9),
    (773_020_800, 10),
    (820_454_400, 11),
    (867_715_200, 12),
    (915_148_800, 13),
    (1_136_073_600, 14),
    (1_230_768_000, 15),
    (1_341_100_800, 16),
    (1_435_708_800, 17),
    (1_483_228_800, 18),
];

/// GPS time (s since 1980-01-06, no leap seconds) → UTC µs since 1970.
///
/// ```
/// use tessera::ingest::telemetry::gps_to_unix_us;
/// // 2019-11-18T23:45:14Z is 1258155932 s of GPS time (18 leap seconds).
/// assert_eq!(gps_to_unix_us(1_258_155_932.0), 1_574_120_714_000_000);
/// ```
pub fn gps_to_unix_us(gps_s: f64) -> i64 {
    let naive = gps_s + GPS_EPOCH_UNIX_S as f64;
    let leap = LEAP
        .iter()
        .rev()
        .find(|(from, n)| naive - *n as f64 >= *from as f64)
        .map_or(0, |l| l.1);
    ((naive - leap as f64) * 1e6).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_gps_time_subtracts_the_leap_seconds_in_force() {
        // 1999-01-01: 13 leap seconds.
        assert_eq!(
            gps_to_unix_us((915_148_800 - GPS_EPOCH_UNIX_S + 13) as f64),
            915_148_800_000_000
        );
        // The GPS epoch itself: none.
        assert_eq!(gps_to_unix_us(0.0), GPS_EPOCH_UNIX_S * 1_000_000);
    }
}
