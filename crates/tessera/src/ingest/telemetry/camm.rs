//! CAMM, Camera Motion Metadata (Google's Street View spec,
//! <https://developers.google.com/streetview/publish/camm-spec>): a `camm` track whose every
//! sample is one packet — `u16` reserved (0), `u16` case, then the case's little-endian payload:
//!
//! | case | payload | tessera keeps |
//! | --- | --- | --- |
//! | 0 | angle-axis orientation `f32[3]` | ignored (`camm:0`) |
//! | 1 | exposure: pixel exposure, rolling-shutter skew `i32[2]` (ns) | ignored (`camm:1`) |
//! | 2 | gyroscope `f32[3]` rad/s | IMU `gyro` |
//! | 3 | accelerometer `f32[3]` m/s² | IMU `accel` |
//! | 4 | position `f32[3]` (m, local) | ignored (`camm:4`) |
//! | 5 | latitude, longitude, altitude `f64[3]` | a fix (no fix type or accuracy) |
//! | 6 | GPS: time (s since the GPS epoch 1980-01-06, `f64`), fix type `i32`, lat/lon `f64`, altitude, horizontal and vertical accuracy (m), velocity east/north/up (m/s), speed accuracy `f32` | a fix |
//! | 7 | magnetometer `f32[3]` µT | IMU `mag` |
//!
//! Axes are the camera's: x right, y up, z backwards (out of the lens' opposite side), as the
//! spec defines them. Pure functions over one packet's bytes.

/// One decoded CAMM packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Packet {
    /// Case 2, 3 or 7: an IMU reading in the camera's axes (rad/s, m/s², µT).
    Imu(super::Sensor, [f32; 3]),
    /// Case 5: position only.
    Position {
        /// Degrees.
        lat: f64,
        /// Degrees.
        lon: f64,
        /// Metres.
        alt: f64,
    },
    /// Case 6: a full GPS reading.
    Gps(Gps),
    /// Case 0, 1 or 4: read but not used.
    Other(u16),
}

/// CAMM case 6.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gps {
    /// Seconds since the GPS epoch (1980-01-06T00:00:00, no leap seconds).
    pub time_gps_s: f64,
    /// 0 no fix, 2 2D, 3 3D.
    pub fix_type: i32,
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
    /// Metres.
    pub alt: f32,
    /// Horizontal accuracy, metres.
    pub h_acc: f32,
    /// Velocity east, north, up, m/s.
    pub vel: [f32; 3],
}

/// The payload length of each case (after the 4-byte header).
pub const CASE_LEN: [usize; 8] = [12, 8, 12, 12, 12, 24, 56, 12];

/// Decode one packet.
///
/// # Errors
/// A reason naming the case and the byte count when the packet is cut short, names an unknown
/// case, or carries a non-zero reserved field.
///
/// ```
/// use tessera::ingest::telemetry::{camm::{decode, Packet}, Sensor};
/// let mut p = vec![0, 0, 3, 0];
/// for v in [0.5f32, -9.81, 0.25] { p.extend(v.to_le_bytes()); }
/// assert_eq!(decode(&p), Ok(Packet::Imu(Sensor::Accel, [0.5, -9.81, 0.25])));
/// assert!(decode(&p[..10]).unwrap_err().contains("case 3"));
/// ```
pub fn decode(p: &[u8]) -> Result<Packet, String> {
    if p.len() < 4 {
        return Err(format!("{} bytes, a CAMM packet header needs 4", p.len()));
    }
    let reserved = u16::from_le_bytes([p[0], p[1]]);
    let case = u16::from_le_bytes([p[2], p[3]]);
    if reserved != 0 {
        return Err(format!("reserved field is {reserved}, CAMM requires 0"));
    }
    let Some(&len) = CASE_LEN.get(usize::from(case)) else {
        return Err(format!("unknown CAMM case {case} (0-7 are defined)"));
    };
    let b = &p[4..];
    if b.len() < len {
        return Err(format!("case {case} needs {len} payload bytes, {} present", b.len()));
    }
    let f = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let d = |i: usize| f64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let xyz = || [f(0), f(4), f(8)];
    Ok(match case {
        2 => Packet::Imu(super::Sensor::Gyro, xyz()),
        3 => Packet::Imu(super::Sensor::Accel, xyz()),
        7 => Packet::Imu(super::Sensor::Mag, xyz()),
        5 => Packet::Position {
            lat: d(0),
            lon: d(8),
            alt: d(16),
        },
        6 => Packet::Gps(Gps {
            time_gps_s: d(0),
            fix_type: i32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            lat: d(12),
            lon: d(20),
            alt: f(28),
            h_acc: f(32),
            vel: [f(40), f(44), f(48)],
        }),
        c => Packet::Other(c),
    })
}

/// Encode one packet (what `tessera simulate --format camm` writes).
///
/// ```
/// use tessera::ingest::telemetry::{camm::{decode, encode, Packet}, Sensor};
/// let p = Packet::Imu(Sensor::Gyro, [0.0, 0.1, 0.0]);
/// assert_eq!(decode(&encode(&p)), Ok(p));
/// ```
pub fn encode(p: &Packet) -> Vec<u8> {
    let (case, body): (u16, Vec<u8>) = match *p {
        Packet::Imu(s, v) => {
            let case = match s {
                super::Sensor::Gyro => 2,
                super::Sensor::Accel => 3,
                super::Sensor::Mag => 7,
            };
            (case, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        Packet::Position { lat, lon, alt } => (5, [lat, lon, alt].iter().flat_map(|x| x.to_le_bytes()).collect()),
        Packet::Gps(g) => {
            let mut b = Vec::with_capacity(56);
            b.extend(g.time_gps_s.to_le_bytes());
            b.extend(g.fix_type.to_le_bytes());
            b.extend(g.lat.to_le_bytes());
            b.extend(g.lon.to_le_bytes());
            for v in [g.alt, g.h_acc, g.h_acc, g.vel[0], g.vel[1], g.vel[2], 0.0] {
                b.extend(v.to_le_bytes());
            }
            (6, b)
        }
        Packet::Other(c) => (c, vec![0; CASE_LEN.get(usize::from(c)).copied().unwrap_or(0)]),
    };
    let mut out = vec![0, 0];
    out.extend(case.to_le_bytes());
    out.extend(body);
    out
}

/// Seconds between the Unix epoch and the GPS epoch (1980-01-06T00:00:00Z).
pub const GPS_EPOCH_UNIX_S: i64 = 315_964_800;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::telemetry::Sensor;

    #[test]
    fn rule_every_case_round_trips_and_every_cut_is_an_error() {
        let g = Gps {
            time_gps_s: 1_258_000_000.25,
            fix_type: 3,
            lat: 33.1268,
            lon: -117.3273,
            alt: 12.5,
            h_acc: 2.0,
            vel: [3.0, 4.0, 0.0],
        };
        let packets = [
            Packet::Other(0),
            Packet::Other(1),
            Packet::Imu(Sensor::Gyro, [0.1, 0.2, 0.3]),
            Packet::Imu(Sensor::Accel, [0.0, 9.81, 0.0]),
            Packet::Other(4),
            Packet::Position {
                lat: 1.0,
                lon: 2.0,
                alt: 3.0,
            },
            Packet::Gps(g),
            Packet::Imu(Sensor::Mag, [20.0, -5.0, 40.0]),
        ];
        for (case, p) in packets.iter().enumerate() {
            let b = encode(p);
            assert_eq!(b.len(), 4 + CASE_LEN[case]);
            assert_eq!(decode(&b).as_ref(), Ok(p));
            for cut in 0..b.len() {
                assert!(decode(&b[..cut]).is_err());
            }
        }
    }

    #[test]
    fn rule_unknown_case_and_reserved_bits_are_refused() {
        assert!(decode(&[0, 0, 8, 0]).unwrap_err().contains("case 8"));
        assert!(decode(&[1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap_err()
            .contains("reserved"));
    }
}
