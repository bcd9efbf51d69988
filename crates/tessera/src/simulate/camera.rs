//! Simulated camera files: a drive's fixes and an IMU consistent with it (10 Hz accelerometer
//! and gyroscope: gravity, the drive's longitudinal and centripetal acceleration, its yaw rate,
//! and road vibration growing with speed) written as a CAMM MP4 (the `camm` track Street View
//! and Mapillary take) or a BlackVue MP4 (`free` box with `gps ` and `3gf `). Only the metadata
//! track is written (no video), in the minimal box layout mapillary-tools reads.
//!
//! A "desk" IMU (gravity and sensor noise only) is what a spoofer's camera that never left the
//! desk records; the attack fleet uses it.

use super::Rng;
use crate::ingest::telemetry::{blackvue, camm, ImuSample, Sensor, GPS_EPOCH_UNIX_S};

/// One second of a simulated drive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    /// UTC ms.
    pub t_ms: i64,
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
    /// Metres.
    pub alt: f64,
    /// m/s.
    pub speed: f64,
    /// Degrees from north, clockwise.
    pub course: f64,
    /// HDOP.
    pub hdop: f64,
}

/// Which camera file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A CAMM MP4 (case 6 GPS, case 3 accelerometer, case 2 gyroscope).
    Camm,
    /// A BlackVue MP4 (`gps ` NMEA with `[ms]` frames, `3gf ` accelerometer).
    BlackVue,
}

/// IMU samples per second.
pub const IMU_HZ: i64 = 10;
const G: f64 = 9.806_65;

/// An IMU consistent with `m` in the CAMM camera frame (x right, y up, z backwards), 10 Hz;
/// `desk`: a camera at rest instead (gravity and 0.01 m/s² / 0.002 rad/s of sensor noise).
///
/// ```
/// use tessera::simulate::camera::{imu, Motion};
/// let m: Vec<Motion> = (0..60).map(|i| Motion { t_ms: i * 1000, lat: 52.5, lon: 13.4 + i as f64 * 1e-4,
///     alt: 30.0, speed: 10.0, course: 90.0, hdop: 0.9 }).collect();
/// let s = imu(&m, 7, false);
/// assert_eq!(s.len(), 2 * 59 * 10);
/// ```
pub fn imu(m: &[Motion], seed: u64, desk: bool) -> Vec<ImuSample> {
    let mut rng = Rng(seed ^ 0x14D0_CA3E);
    let mut out = Vec::with_capacity(m.len() * 2 * IMU_HZ as usize);
    for p in m.windows(2) {
        let (a, b) = (p[0], p[1]);
        let dt = ((b.t_ms - a.t_ms) as f64 / 1000.0).max(1e-3);
        let turn = ((b.course - a.course + 540.0).rem_euclid(360.0) - 180.0).to_radians() / dt;
        let accel = (b.speed - a.speed) / dt;
        for k in 0..IMU_HZ {
            let t_us = (a.t_ms * 1000) + (b.t_ms - a.t_ms) * 1000 * k / IMU_HZ;
            let v = a.speed + (b.speed - a.speed) * k as f64 / IMU_HZ as f64;
            let (sa, sg) = if desk {
                (0.01, 0.002)
            } else {
                (0.08 + 0.03 * v, 0.005 + 0.001 * v)
            };
            let n = |rng: &mut Rng, s: f64| rng.normal() * s;
            let (acc, gyro) = if desk {
                ([0.0, G, 0.0], [0.0; 3])
            } else {
                // right turns (course increasing) pull right (+x); forward acceleration is −z.
                ([v * turn, G, -accel], [0.0, -turn, 0.0])
            };
            let acc = [
                acc[0] + n(&mut rng, sa),
                acc[1] + n(&mut rng, sa),
                acc[2] + n(&mut rng, sa),
            ];
            let gyro = [
                gyro[0] + n(&mut rng, sg),
                gyro[1] + n(&mut rng, sg),
                gyro[2] + n(&mut rng, sg),
            ];
            for (sensor, xyz) in [(Sensor::Accel, acc), (Sensor::Gyro, gyro)] {
                out.push(ImuSample {
                    time_us: t_us,
                    sensor,
                    xyz: xyz.map(|x| x as f32),
                    line: 0,
                });
            }
        }
    }
    out
}

/// An MP4 box.
fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend(kind);
    v.extend(body);
    v
}

/// An MP4 full box (version 0, `flags`).
fn full(kind: &[u8; 4], flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = flags.to_be_bytes().to_vec();
    b.extend(body);
    bx(kind, &b)
}

fn be(parts: &[u32]) -> Vec<u8> {
    parts.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// `mvhd` (version 0): creation time, timescale 1000, duration.
fn mvhd(created_unix_s: i64, duration_ms: u32) -> Vec<u8> {
    let t = (created_unix_s + crate::ingest::telemetry::mp4::MP4_EPOCH_UNIX_S) as u32;
    let mut b = be(&[t, t, 1000, duration_ms, 0x0001_0000]);
    b.extend([0x01, 0x00]); // volume 1.0
    b.extend([0; 10]);
    b.extend(be(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000])); // unity matrix
    b.extend([0; 24]);
    b.extend(be(&[2])); // next track id
    full(b"mvhd", 0, &b)
}

/// A `camm` track whose samples sit at `data_at` in the file, one chunk.
fn camm_trak(created_unix_s: i64, times_ms: &[i64], sizes: &[u32], data_at: u64) -> Vec<u8> {
    let t = (created_unix_s + crate::ingest::telemetry::mp4::MP4_EPOCH_UNIX_S) as u32;
    let t0 = times_ms.first().copied().unwrap_or(0);
    let dur = (times_ms.last().copied().unwrap_or(0) - t0) as u32;
    let mut tkhd = be(&[t, t, 1, 0, dur, 0, 0, 0, 0]);
    tkhd.extend(be(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000, 0, 0]));
    let mut mdhd = be(&[t, t, 1000, dur]);
    mdhd.extend([0x55, 0xc4, 0, 0]); // language "und"
    let mut hdlr = be(&[0]);
    hdlr.extend(b"camm");
    hdlr.extend([0; 12]);
    hdlr.extend(b"CameraMetadataMotionHandler\0");
    let dinf = bx(b"dinf", &full(b"dref", 0, &[be(&[1]), full(b"url ", 1, &[])].concat()));
    let mut entry = vec![0u8; 6];
    entry.extend(1u16.to_be_bytes());
    let stsd = full(b"stsd", 0, &[be(&[1]), bx(b"camm", &entry)].concat());
    // stts: run-length deltas between sample times (the last sample's is 0).
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for (i, &tm) in times_ms.iter().enumerate() {
        let d = times_ms.get(i + 1).map_or(0, |n| (n - tm) as u32);
        match runs.last_mut() {
            Some(r) if r.1 == d => r.0 += 1,
            _ => runs.push((1, d)),
        }
    }
    let stts = full(
        b"stts",
        0,
        &[
            be(&[runs.len() as u32]),
            runs.iter().flat_map(|r| be(&[r.0, r.1])).collect(),
        ]
        .concat(),
    );
    let n = sizes.len() as u32;
    let stsc = full(b"stsc", 0, &be(&[1, 1, n, 1]));
    let stsz = full(b"stsz", 0, &[be(&[0, n]), be(sizes)].concat());
    let co64 = full(b"co64", 0, &[be(&[1]), data_at.to_be_bytes().to_vec()].concat());
    let stbl = bx(b"stbl", &[stsd, stts, stsc, stsz, co64].concat());
    let minf = bx(b"minf", &[dinf, stbl].concat());
    let mdia = bx(
        b"mdia",
        &[full(b"mdhd", 0, &mdhd), full(b"hdlr", 0, &hdlr), minf].concat(),
    );
    // A leading empty edit places the first sample at its time from the movie start (0 here).
    bx(b"trak", &[full(b"tkhd", 1, &tkhd), mdia].concat())
}

fn ftyp() -> Vec<u8> {
    bx(b"ftyp", b"isom\0\0\x02\0isomiso2mp41")
}

/// A CAMM MP4 of the drive `m` and its IMU: case 6 GPS each second (horizontal accuracy =
/// 5 m × HDOP, velocities from speed and course), case 3/2 for the IMU, in time order.
///
/// ```
/// use tessera::simulate::camera::{camm_mp4, Motion};
/// let m: Vec<Motion> = (0..5).map(|i| Motion { t_ms: 1_794_000_000_000 + i * 1000, lat: 52.5, lon: 13.4,
///     alt: 30.0, speed: 0.0, course: 0.0, hdop: 0.9 }).collect();
/// let p = tessera::ingest::parse(&camm_mp4(&m, &[]));
/// assert_eq!(p.fixes.len(), 5);
/// assert_eq!(p.fixes[0].time_ms, m[0].t_ms);
/// ```
pub fn camm_mp4(m: &[Motion], imu: &[ImuSample]) -> Vec<u8> {
    let mut packets: Vec<(i64, u8, Vec<u8>)> = Vec::with_capacity(m.len() + imu.len());
    for p in m {
        let (s, c) = (p.speed, p.course.to_radians());
        let gps = camm::Gps {
            time_gps_s: (p.t_ms as f64 / 1000.0) + 18.0 - GPS_EPOCH_UNIX_S as f64,
            fix_type: 3,
            lat: p.lat,
            lon: p.lon,
            alt: p.alt as f32,
            h_acc: (5.0 * p.hdop) as f32,
            vel: [(s * c.sin()) as f32, (s * c.cos()) as f32, 0.0],
        };
        packets.push((p.t_ms * 1000, 0, camm::encode(&camm::Packet::Gps(gps))));
    }
    for s in imu {
        packets.push((
            s.time_us,
            1 + s.sensor as u8,
            camm::encode(&camm::Packet::Imu(s.sensor, s.xyz)),
        ));
    }
    packets.sort_by_key(|p| (p.0, p.1));
    let t0_us = packets.first().map_or(0, |p| p.0);
    let created = t0_us.div_euclid(1_000_000);
    let times: Vec<i64> = packets.iter().map(|p| (p.0 - created * 1_000_000) / 1000).collect();
    let sizes: Vec<u32> = packets.iter().map(|p| p.2.len() as u32).collect();
    let duration = times.last().copied().unwrap_or(0) as u32;
    let moov_len = |at: u64| {
        bx(
            b"moov",
            &[mvhd(created, duration), camm_trak(created, &times, &sizes, at)].concat(),
        )
        .len()
    };
    let head = ftyp();
    let data_at = (head.len() + moov_len(0) + 8) as u64;
    let moov = bx(
        b"moov",
        &[mvhd(created, duration), camm_trak(created, &times, &sizes, data_at)].concat(),
    );
    let mdat = bx(
        b"mdat",
        &packets.iter().flat_map(|p| p.2.iter().copied()).collect::<Vec<u8>>(),
    );
    [head, moov, mdat].concat()
}

/// A BlackVue MP4 of the drive: `[ms]$GPRMC`/`$GPGGA` lines in a `gps ` box and the
/// accelerometer samples as `3gf ` records (ms since the first fix, 128 counts per g), in a
/// top-level `free` box, then a `moov` with the creation time (the recording start).
///
/// ```
/// use tessera::simulate::camera::{blackvue_mp4, Motion};
/// let m: Vec<Motion> = (0..5).map(|i| Motion { t_ms: 1_794_000_000_000 + i * 1000, lat: 52.5, lon: 13.4,
///     alt: 30.0, speed: 3.0, course: 90.0, hdop: 0.9 }).collect();
/// let p = tessera::ingest::parse(&blackvue_mp4(&m, &[]));
/// assert_eq!(p.fixes.len(), 5);
/// assert_eq!(p.telemetry.unwrap().kind, "blackvue");
/// ```
pub fn blackvue_mp4(m: &[Motion], imu: &[ImuSample]) -> Vec<u8> {
    let start_ms = m.first().map_or(0, |p| p.t_ms).div_euclid(1000) * 1000;
    let mut gps = String::new();
    for p in m {
        let dt = chrono::DateTime::from_timestamp_millis(p.t_ms).expect("in range");
        let tod = p.t_ms.rem_euclid(86_400_000);
        let (lat, lon) = (
            super::nmea_coord(p.lat, 2, 'N', 'S'),
            super::nmea_coord(p.lon, 3, 'E', 'W'),
        );
        let rmc = super::sentence(&format!(
            "GPRMC,{},A,{lat},{lon},{:.2},{:.1},{},,,A",
            super::hms(tod),
            p.speed / 0.514_444,
            p.course,
            dt.format("%d%m%y")
        ));
        let gga = super::sentence(&format!(
            "GPGGA,{},{lat},{lon},1,09,{:.1},{:.1},M,39.5,M,,",
            super::hms(tod),
            p.hdop,
            p.alt
        ));
        gps.push_str(&format!("[{}]{rmc}\n[{}]{gga}\n", p.t_ms, p.t_ms));
    }
    let mut gps_box = gps.into_bytes();
    gps_box.push(0);
    let recs: Vec<blackvue::Record> = imu
        .iter()
        .filter(|s| s.sensor == Sensor::Accel)
        .map(|s| blackvue::Record {
            ms: ((s.time_us / 1000 - start_ms).max(0)) as u32,
            counts: s.xyz.map(|v| {
                (f64::from(v) / G * blackvue::COUNTS_PER_G)
                    .round()
                    .clamp(-32768.0, 32767.0) as i16
            }),
        })
        .collect();
    let free = bx(
        b"free",
        &[bx(b"gps ", &gps_box), bx(b"3gf ", &blackvue::encode_records(&recs))].concat(),
    );
    let duration = m.last().map_or(0, |p| p.t_ms - start_ms) as u32;
    let moov = bx(b"moov", &mvhd(start_ms / 1000, duration));
    [ftyp(), free, moov, bx(b"mdat", &[])].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive() -> Vec<Motion> {
        (0..120)
            .map(|i| Motion {
                t_ms: 1_794_000_000_000 + i * 1000,
                lat: 52.5 + if i > 60 { (i - 60) as f64 * 1e-4 } else { 0.0 },
                lon: 13.4 + i.min(60) as f64 * 1.5e-4,
                alt: 30.0,
                speed: 10.0,
                course: if i > 60 { 0.0 } else { 90.0 },
                hdop: 0.8,
            })
            .collect()
    }

    #[test]
    fn rule_a_simulated_camm_file_reads_back_to_its_fixes_and_imu() {
        let m = drive();
        let s = imu(&m, 3, false);
        let p = crate::ingest::parse(&camm_mp4(&m, &s));
        assert_eq!((p.fixes.len(), p.imu.len(), p.rejections.len()), (m.len(), s.len(), 0));
        assert!(p.lines.balanced());
        for (f, x) in p.fixes.iter().zip(&m) {
            assert_eq!(f.time_ms, x.t_ms);
            assert!((f.lat - x.lat).abs() < 1e-12 && (f.hdop.unwrap() - 0.8).abs() < 1e-6);
            assert!((f.course_deg.unwrap() - x.course as f32).abs() < 0.01 || x.course == 0.0);
        }
        let mut got: Vec<(i64, Sensor)> = p.imu.iter().map(|x| (x.time_us, x.sensor)).collect();
        got.sort();
        let mut want: Vec<(i64, Sensor)> = s.iter().map(|x| ((x.time_us / 1000) * 1000, x.sensor)).collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(p.telemetry.unwrap().clock, "gps");
    }

    #[test]
    fn rule_a_simulated_blackvue_file_reads_back_its_nmea_and_3gf() {
        let m = drive();
        let s = imu(&m, 3, false);
        let p = crate::ingest::parse(&blackvue_mp4(&m, &s));
        assert_eq!(p.fixes.len(), m.len());
        assert_eq!(p.imu.len(), s.len() / 2);
        assert!(p.lines.balanced(), "{:?}", p.lines);
        let first = p.imu.iter().find(|x| x.sensor == Sensor::Accel).unwrap();
        assert_eq!(first.time_us, m[0].t_ms * 1000);
        assert!((first.xyz[1] - 9.8).abs() < 1.5);
    }

    #[test]
    fn rule_the_simulated_drive_passes_the_imu_rules_and_a_desk_camera_fails_them() {
        let k = crate::policy::Policy::default().kernels().unwrap().trust.unwrap();
        let m = drive();
        let fixes: Vec<crate::fix::Fix> = crate::ingest::parse(&camm_mp4(&m, &[])).fixes;
        let refs: Vec<&crate::fix::Fix> = fixes.iter().collect();
        let live: Vec<usize> = (0..fixes.len()).collect();
        for (desk, want) in [(false, 0), (true, 1)] {
            let mut s = imu(&m, 5, desk);
            s.sort_by_key(|x| (x.time_us, x.sensor));
            let (mut w, mut ev) = (vec![false; fixes.len()], Vec::new());
            crate::trust::imu::check(&refs, &live, &s, &k, &mut w, &mut ev);
            assert_eq!(ev.len(), want, "desk {desk}: {ev:?}");
        }
    }

    #[test]
    fn rule_a_zero_timescale_is_a_bad_file_not_stretched_times() {
        let m = drive();
        let mut b = camm_mp4(&m, &imu(&m, 3, false));
        let at = b.windows(4).position(|w| w == b"mdhd").unwrap() + 4 + 12;
        b[at..at + 4].copy_from_slice(&[0; 4]);
        let p = crate::ingest::parse(&b);
        assert!(p.fixes.is_empty());
        assert!(
            p.rejections[0].detail.contains("timescale 0"),
            "{}",
            p.rejections[0].detail
        );
    }

    #[test]
    fn rule_imu_readings_meet_the_receipt_rules_of_their_clock() {
        let m = drive();
        let s = imu(&m, 3, false);
        let b = camm_mp4(&m, &s);
        // Received an hour before the drive: every fix and every reading is after the receipt.
        let r = crate::ingest::receipt::Receipt {
            received_at_ms: m[0].t_ms - 3_600_000,
            max_future_ms: 300_000,
            max_age_ms: None,
        };
        let p = crate::ingest::parse_received(&b, Some(&r));
        assert_eq!((p.fixes.len(), p.imu.len()), (0, 0));
        assert_eq!(p.rejections.len(), m.len() + s.len());
        assert!(p
            .rejections
            .iter()
            .all(|x| x.reason == crate::ingest::Reason::AfterReceipt));
        assert!(p.lines.balanced());
    }

    #[test]
    fn rule_camm_velocities_written_as_zero_without_accuracy_are_unknown_speed() {
        let mut m = drive();
        for p in &mut m {
            p.speed = 0.0;
            p.hdop = 0.0; // accuracy 0: not filled in
        }
        let p = crate::ingest::parse(&camm_mp4(&m, &[]));
        assert!(p.fixes.iter().all(|f| f.speed_mps.is_none() && f.hdop.is_none()));
    }
}
