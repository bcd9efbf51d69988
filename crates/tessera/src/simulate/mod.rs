//! A deterministic synthetic fleet: drivers on a road grid emitting 1 Hz NMEA (or GPX) with
//! realistic noise, HDOP and satellite counts, a registry, and a few dishonest drivers.
//!
//! Everything is a pure function of [`SimConfig`]: the same config gives the same bytes on every
//! machine (a SplitMix64 generator is used instead of a library RNG so that the stream cannot
//! change with a dependency upgrade; the sample data in `data/` is checked against it).

pub mod attack_report;
pub mod attacks;
pub mod camera;
pub mod osm;
pub mod places;
mod scale;
pub mod signals;
pub mod write;

pub use scale::ScaleConfig;

use crate::epoch::Epoch;
use std::f64::consts::PI;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// RNG seed.
    pub seed: u64,
    /// Number of drivers (at least 4: the last ones are the dishonest and unregistered ones).
    pub drivers: u32,
    /// First epoch.
    pub start: Epoch,
    /// Number of consecutive epochs.
    pub epochs: u32,
    /// Trips per driver per epoch.
    pub trips: u32,
    /// Trip length in minutes.
    pub minutes: u32,
    /// Grid centre latitude.
    pub lat0: f64,
    /// Grid centre longitude.
    pub lon0: f64,
    /// Streets per side of the grid.
    pub streets: u32,
    /// Block length in metres.
    pub block_m: f64,
    /// Every driver records with this camera (MP4 with GNSS and IMU); `None`: the demo mix of
    /// NMEA, BlackVue `.gps`, GnssLogger and GPX loggers, with driver 5 a CAMM camera.
    pub camera: Option<camera::Kind>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 7,
            drivers: 10,
            start: "2026-W46".parse().expect("valid"),
            epochs: 2,
            trips: 2,
            minutes: 10,
            lat0: 52.5200,
            lon0: 13.4050,
            streets: 14,
            block_m: 140.0,
            camera: None,
        }
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq)]
pub struct SimFile {
    /// Device id.
    pub device: String,
    /// File name (relative to the device directory).
    pub name: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// A generated fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Trace files.
    pub files: Vec<SimFile>,
    /// Registry CSV (the unregistered driver is left out on purpose).
    pub registry_csv: String,
    /// Which drivers misbehave and how, for people reading the sample.
    pub roles: Vec<(String, &'static str)>,
    /// The grid's places and the policy naming them ([`places::grid_places`]).
    pub places: Vec<(String, Vec<u8>)>,
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.f().max(1e-12);
        let u2 = self.f();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Honest,
    Teleporter,
    Speeder,
    Unregistered,
}

#[derive(Clone, Copy, PartialEq)]
enum Output {
    Nmea,
    BlackVue,
    GnssLogger,
    Gpx,
    Camera(camera::Kind),
}

fn checksum(body: &str) -> u8 {
    body.bytes().fold(0, |a, b| a ^ b)
}

fn sentence(body: &str) -> String {
    format!("${body}*{:02X}", checksum(body))
}

/// `ddmm.mmmmm` / `dddmm.mmmmm` with exact integer rounding.
fn nmea_coord(v: f64, deg_digits: usize, pos: char, neg: char) -> String {
    let units = (v.abs() * 60.0 * 1e5).round() as i64; // 1e-5 minutes
    let deg = units / 6_000_000;
    let min = units % 6_000_000;
    format!(
        "{:0w$}{:02}.{:05},{}",
        deg,
        min / 100_000,
        min % 100_000,
        if v < 0.0 { neg } else { pos },
        w = deg_digits
    )
}

fn hms(ms_of_day: i64) -> String {
    let s = ms_of_day / 1000;
    format!(
        "{:02}{:02}{:02}.{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        (ms_of_day % 1000) / 10
    )
}

fn wallet(seed: u64, device: &str) -> String {
    let h = blake3::hash(format!("tessera-sim/{seed}/{device}").as_bytes());
    format!("0x{}", hex::encode(&h.as_bytes()[..20]))
}

struct Sample {
    t_ms: i64,
    lat: f64,
    lon: f64,
    speed: f64,
    course: f64,
    hdop: f64,
    sats: u32,
}

/// Generate a fleet.
///
/// ```
/// use tessera::simulate::{simulate, SimConfig};
/// let cfg = SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 1, ..SimConfig::default() };
/// let a = simulate(&cfg);
/// assert_eq!(a, simulate(&cfg)); // deterministic
/// assert_eq!(a.files.len(), 4);
/// ```
pub fn simulate(cfg: &SimConfig) -> Fleet {
    let mut rng = Rng(cfg.seed);
    let n = cfg.drivers.max(4);
    let m_per_deg_lat = 111_320.0;
    let m_per_deg_lon = 111_320.0 * (cfg.lat0 * PI / 180.0).cos();
    let half = f64::from(cfg.streets - 1) * cfg.block_m / 2.0;
    let mut files = Vec::new();
    let mut registry = String::from("device_id,wallet\n");
    let mut roles = Vec::new();
    for d in 0..n {
        let device = format!("car-{:03}", d + 1);
        let role = match n - d {
            1 => Role::Unregistered,
            2 => Role::Speeder,
            3 => Role::Teleporter,
            _ => Role::Honest,
        };
        let output = match (cfg.camera, d % 6) {
            (Some(k), _) => Output::Camera(k),
            (None, _) if d == 4 => Output::Camera(camera::Kind::Camm),
            (None, 1) => Output::BlackVue,
            (None, 3) => Output::GnssLogger,
            (None, 5) => Output::Gpx,
            _ => Output::Nmea,
        };
        roles.push((
            device.clone(),
            match role {
                Role::Honest => "honest",
                Role::Teleporter => "dishonest: teleports 3 km mid-trip",
                Role::Speeder => "dishonest: a 20 s leg at 95 m/s",
                Role::Unregistered => "not in the registry",
            },
        ));
        if role != Role::Unregistered {
            // Drivers 1 and 2 belong to one fleet operator and share a wallet.
            let w = if d == 1 {
                wallet(cfg.seed, "car-001")
            } else {
                wallet(cfg.seed, &device)
            };
            registry.push_str(&format!("{device},{w}\n"));
        }
        // Each driver prefers a quadrant of the grid, so coverage overlaps but is not identical.
        let home = (
            rng.range(u64::from(cfg.streets)) as i64,
            rng.range(u64::from(cfg.streets)) as i64,
        );
        for e in 0..cfg.epochs {
            let epoch = Epoch::from_index(cfg.start.index() + i64::from(e));
            for t in 0..cfg.trips {
                let day = rng.range(7) as i64;
                let start_ms = epoch.start_ms() + day * 86_400_000 + (6 * 3600 + rng.range(14 * 3600) as i64) * 1000;
                let samples = drive(&mut rng, cfg, role, home, start_ms, half, m_per_deg_lat, m_per_deg_lon);
                let (name, bytes) = match output {
                    Output::Camera(kind) => {
                        // Draw the NMEA render's random numbers all the same, so the other
                        // drivers' files do not depend on which ones carry cameras.
                        let _ = render(&mut rng, &device, &epoch, t, Output::Nmea, &samples);
                        camera_file(cfg.seed, &device, &epoch, t, kind, &samples)
                    }
                    _ => render(&mut rng, &device, &epoch, t, output, &samples),
                };
                files.push(SimFile {
                    device: device.clone(),
                    name,
                    bytes,
                });
            }
        }
    }
    Fleet {
        files,
        registry_csv: registry,
        roles,
        places: places::grid_places(cfg),
    }
}

#[allow(clippy::too_many_arguments)]
fn drive(
    rng: &mut Rng,
    cfg: &SimConfig,
    role: Role,
    home: (i64, i64),
    start_ms: i64,
    half: f64,
    mlat: f64,
    mlon: f64,
) -> Vec<Sample> {
    let s = i64::from(cfg.streets);
    // Position on the grid in metres from the south-west corner; start near home.
    let jitter = |rng: &mut Rng| rng.range(5) as i64 - 2;
    let mut ix = (home.0 + jitter(rng)).clamp(0, s - 1);
    let mut iy = (home.1 + jitter(rng)).clamp(0, s - 1);
    let (mut x, mut y) = (ix as f64 * cfg.block_m, iy as f64 * cfg.block_m);
    let mut dir = rng.range(4) as i64; // 0 E, 1 N, 2 W, 3 S
    let mut speed = 8.0 + rng.f() * 6.0;
    let total = i64::from(cfg.minutes) * 60;
    let mut out = Vec::with_capacity(total as usize);
    let mut canyon = 0i64; // seconds of degraded HDOP left
    let (mut off_x, mut off_y) = (0.0, 0.0);
    const RHO: f64 = 0.9;
    let mut err = (0.0f64, 0.0f64);
    for sec in 0..total {
        let mut v = speed;
        if role == Role::Speeder && sec >= total / 2 && sec < total / 2 + 20 {
            v = 95.0;
        }
        if role == Role::Teleporter && sec == total / 2 {
            off_x += 3000.0;
            off_y += 1200.0;
        }
        // Move along the current street; turn at intersections.
        let mut left = v;
        while left > 0.0 {
            let (tx, ty) = match dir {
                0 => ((ix + 1) as f64 * cfg.block_m, y),
                1 => (x, (iy + 1) as f64 * cfg.block_m),
                2 => ((ix - 1) as f64 * cfg.block_m, y),
                _ => (x, (iy - 1) as f64 * cfg.block_m),
            };
            let dist = ((tx - x).abs() + (ty - y).abs()).max(0.0);
            if dist > left {
                match dir {
                    0 => x += left,
                    1 => y += left,
                    2 => x -= left,
                    _ => y -= left,
                }
                left = 0.0;
            } else {
                x = tx;
                y = ty;
                left -= dist;
                match dir {
                    0 => ix += 1,
                    1 => iy += 1,
                    2 => ix -= 1,
                    _ => iy -= 1,
                }
                // Turn: straight, left or right; never leave the grid or reverse.
                let options: Vec<i64> = [dir, (dir + 1) % 4, (dir + 3) % 4]
                    .into_iter()
                    .filter(|d| match d {
                        0 => ix + 1 < s,
                        1 => iy + 1 < s,
                        2 => ix > 0,
                        _ => iy > 0,
                    })
                    .collect();
                dir = if options.is_empty() {
                    (dir + 2) % 4
                } else {
                    options[rng.range(options.len() as u64) as usize]
                };
                speed = (speed + rng.normal() * 1.5).clamp(5.0, 16.0);
            }
        }
        if canyon == 0 && rng.range(400) == 0 {
            canyon = 5 + rng.range(20) as i64;
        }
        let hdop = if canyon > 0 {
            canyon -= 1;
            3.0 + rng.f() * 4.0
        } else {
            0.7 + rng.f() * 0.9
        };
        let sats = if canyon > 0 {
            3 + rng.range(4) as u32
        } else {
            7 + rng.range(8) as u32
        };
        // A receiver's error wanders (it is correlated from one second to the next: AR(1) with
        // ρ = 0.9), with a spread of 1.2 m per unit of HDOP; it is not new every second.
        let sigma = 1.2 * hdop;
        let innov = sigma * (1.0f64 - RHO * RHO).sqrt();
        err = (RHO * err.0 + rng.normal() * innov, RHO * err.1 + rng.normal() * innov);
        let (nx, ny) = err;
        let px = x + off_x + nx - half;
        let py = y + off_y + ny - half;
        out.push(Sample {
            t_ms: start_ms + sec * 1000,
            lat: cfg.lat0 + py / mlat,
            lon: cfg.lon0 + px / mlon,
            // a receiver's Doppler speed is never exactly constant
            speed: (v + rng.normal() * 0.05).max(0.0),
            course: [90.0, 0.0, 270.0, 180.0][dir as usize],
            hdop: (hdop * 10.0).round() / 10.0,
            sats,
        });
    }
    out
}

/// A camera trip: the drive as CAMM or BlackVue MP4 with an IMU consistent with it (its own
/// random stream, seeded by device, epoch and trip).
fn camera_file(
    seed: u64,
    device: &str,
    epoch: &Epoch,
    trip: u32,
    kind: camera::Kind,
    samples: &[Sample],
) -> (String, Vec<u8>) {
    let h = blake3::hash(format!("tessera-sim-camera/{seed}/{device}/{epoch}/{trip}").as_bytes());
    let file_seed = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
    let mut rng = Rng(file_seed);
    let m: Vec<camera::Motion> = samples
        .iter()
        .map(|p| camera::Motion {
            t_ms: p.t_ms,
            lat: p.lat,
            lon: p.lon,
            alt: 34.0 + rng.normal(),
            speed: p.speed,
            course: p.course,
            hdop: p.hdop,
        })
        .collect();
    let imu = camera::imu(&m, file_seed, false);
    let stem = format!("{epoch}-trip{}", trip + 1);
    match kind {
        camera::Kind::Camm => (format!("{stem}.mp4"), camera::camm_mp4(&m, &imu)),
        camera::Kind::BlackVue => (format!("{stem}_N.mp4"), camera::blackvue_mp4(&m, &imu)),
    }
}

fn render(
    rng: &mut Rng,
    device: &str,
    epoch: &Epoch,
    trip: u32,
    output: Output,
    samples: &[Sample],
) -> (String, Vec<u8>) {
    let stem = format!("{epoch}-trip{}", trip + 1);
    if output == Output::Gpx {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"tessera simulate\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n<trk><name>");
        s.push_str(&format!("{device} {stem}</name><trkseg>\n"));
        for p in samples {
            let t = chrono::DateTime::from_timestamp_millis(p.t_ms)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%SZ");
            s.push_str(&format!(
                "<trkpt lat=\"{:.7}\" lon=\"{:.7}\"><ele>{:.1}</ele><time>{t}</time><sat>{}</sat><hdop>{:.1}</hdop></trkpt>\n",
                p.lat, p.lon, 34.0 + rng.normal(), p.sats, p.hdop
            ));
        }
        s.push_str("</trkseg></trk>\n</gpx>\n");
        return (format!("{stem}.gpx"), s.into_bytes());
    }
    let mut s = String::new();
    if output == Output::GnssLogger {
        s.push_str("# Version: v3.0.6.6 Platform: 14 Manufacturer: tessera Model: sim\r\n");
    }
    for (i, p) in samples.iter().enumerate() {
        let dt = chrono::DateTime::from_timestamp_millis(p.t_ms).expect("in range");
        let tod = p.t_ms.rem_euclid(86_400_000);
        let date = dt.format("%d%m%y");
        let lat = nmea_coord(p.lat, 2, 'N', 'S');
        let lon = nmea_coord(p.lon, 3, 'E', 'W');
        let fixq = if p.sats < 4 {
            1
        } else {
            1 + u32::from(rng.range(10) == 0)
        };
        let gga = sentence(&format!(
            "GPGGA,{},{lat},{lon},{fixq},{:02},{:.1},{:.1},M,39.5,M,,",
            hms(tod),
            p.sats,
            p.hdop,
            34.0 + rng.normal()
        ));
        let rmc = sentence(&format!(
            "GPRMC,{},A,{lat},{lon},{:.2},{:.1},{date},,,A",
            hms(tod),
            p.speed / 0.514_444,
            p.course
        ));
        let mut lines = vec![rmc, gga];
        if i % 5 == 0 {
            lines.push(sentence(&format!(
                "GPGSA,A,3,02,05,07,09,13,16,20,,,,,,{:.1},{:.1},{:.1}",
                p.hdop * 1.4,
                p.hdop,
                p.hdop
            )));
        }
        // Real logs carry the odd corrupted sentence (one byte inserted: the XOR checksum no
        // longer matches; two identical insertions would cancel out).
        if rng.range(700) == 0 {
            let bad = lines[1].replacen(',', ",7", 1);
            lines[1] = bad;
        }
        if output == Output::GnssLogger && i % 60 == 0 {
            lines.push(format!(
                "Fix,GPS,{:.7},{:.7},34.0,{:.2},{:.1},0.0,{}",
                p.lat,
                p.lon,
                p.speed,
                p.hdop * 5.0,
                p.t_ms
            ));
        }
        for l in lines {
            match output {
                Output::BlackVue => s.push_str(&format!("[{}]{l}\n", p.t_ms)),
                Output::GnssLogger if l.starts_with("Fix,") => s.push_str(&format!("{l}\r\n")),
                Output::GnssLogger => s.push_str(&format!("NMEA,{l},{}\r\n", p.t_ms)),
                _ => {
                    s.push_str(&l);
                    s.push('\n');
                }
            }
        }
    }
    match output {
        // BlackVue pads its .gps files with NUL bytes.
        Output::BlackVue => s.push_str("\0\0\0\0\0\0\0\0\n"),
        // Power lost mid-sentence on the second trip of plain NMEA loggers.
        Output::Nmea if trip == 1 => {
            s.push_str("$GPGGA,000000.00,5231.0");
        }
        _ => {}
    }
    let ext = match output {
        Output::BlackVue => "gps",
        Output::GnssLogger => "txt",
        _ => "nmea",
    };
    (format!("{stem}.{ext}"), s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_traces_parse_back_with_every_line_accounted() {
        let cfg = SimConfig {
            drivers: 6,
            epochs: 1,
            trips: 1,
            minutes: 3,
            ..SimConfig::default()
        };
        let fleet = simulate(&cfg);
        for f in &fleet.files {
            let p = crate::ingest::parse(&f.bytes);
            assert!(p.lines.balanced(), "{}", f.name);
            assert!(
                p.fixes.len() >= 170,
                "{} {}: {} fixes, {:?}",
                f.device,
                f.name,
                p.fixes.len(),
                p.rejections.first()
            );
            assert!(p.fixes.iter().all(|x| cfg.start.contains(x.time_ms)));
        }
    }

    #[test]
    fn scale_nmea_parses_back_to_the_simulated_fixes_within_nmea_precision() {
        let c = ScaleConfig::for_fixes(30_000, 11);
        for d in [0, 1] {
            let want = c.driver_fixes(d);
            let p = crate::ingest::parse(&c.driver_nmea(d));
            assert!(p.lines.balanced());
            assert_eq!(p.lines.rejected, 0, "{:?}", p.rejections.first());
            assert_eq!(p.fixes.len(), want.len());
            for (a, b) in p.fixes.iter().zip(&want) {
                assert_eq!(a.time_ms, b.time_ms);
                // 1e-5 minute = 1.7e-7 degree.
                assert!((a.lat - b.lat).abs() < 1e-5 / 60.0 && (a.lon - b.lon).abs() < 1e-5 / 60.0);
                assert_eq!((a.sats, a.quality), (b.sats, b.quality));
            }
        }
        assert_eq!(c.driver_nmea(1), c.driver_nmea(1));
    }

    #[test]
    fn nmea_coordinates_round_exactly() {
        assert_eq!(nmea_coord(52.5, 2, 'N', 'S'), "5230.00000,N");
        assert_eq!(nmea_coord(-13.999_999_999, 3, 'E', 'W'), "01400.00000,W");
    }

    #[test]
    fn registry_leaves_out_the_unregistered_driver_and_shares_one_wallet() {
        let fleet = simulate(&SimConfig {
            drivers: 5,
            epochs: 1,
            trips: 1,
            minutes: 1,
            ..SimConfig::default()
        });
        let reg = crate::registry::Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
        assert_eq!(reg.len(), 4);
        assert_eq!(reg.wallet("car-001"), reg.wallet("car-002"));
        assert!(reg.wallet("car-005").is_none());
    }
}
