//! A labelled adversarial fleet for the trust layer, and how much of it an epoch pays.
//!
//! Honest controls drive a 3 km street grid like people do: they accelerate and brake, stop at
//! some intersections, slow for turns, lose fixes in tunnels, meet urban-canyon HDOP and
//! multipath outliers, and one has a clock that steps back an hour mid-drive. The attackers
//! share the grid with them (every attack kind of the trust issue, plus evasions). Everything is
//! a pure function of the seed; files carry their receipt times (copies arrive after their
//! originals, as they must).

use super::{hms, nmea_coord, sentence, Rng};
use crate::epoch::Epoch;
use std::f64::consts::PI;

/// One file of the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackFile {
    /// Device id.
    pub device: String,
    /// File name.
    pub name: String,
    /// The file's bytes (NMEA; a CAMM MP4 for the camera sources).
    pub bytes: Vec<u8>,
    /// When the network received it, UTC ms.
    pub received_ms: i64,
}

/// The fleet: files, registry and which device plays which part.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackFleet {
    /// Every file.
    pub files: Vec<AttackFile>,
    /// `device_id,wallet` CSV.
    pub registry_csv: String,
    /// `(device, label)`: `honest…` for controls, else the attack's name.
    pub labels: Vec<(String, String)>,
    /// The epoch driven in.
    pub epoch: Epoch,
}

impl AttackFleet {
    /// Ingest every file into `lake` with its receipt time (one group commit); returns how many
    /// sources were stored.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// let f = tessera::simulate::attacks::attack_fleet(7, "2026-W47".parse().unwrap());
    /// assert_eq!(f.ingest(&lake), f.files.len());
    /// ```
    pub fn ingest(&self, lake: &crate::lake::Lake) -> usize {
        let uploads: Vec<crate::lake::Upload> = self
            .files
            .iter()
            .map(|f| crate::lake::Upload::new(&f.device, &f.name, &f.bytes).received_at(f.received_ms))
            .collect();
        lake.ingest_batch(&uploads).into_iter().filter(Result::is_ok).count()
    }
}

const LAT0: f64 = 60.1699;
const LON0: f64 = 24.9384;
const BLOCK: f64 = 150.0;
const STREETS: i64 = 20;

/// One fix of a simulated drive: time (UTC ms), grid position (m east, north of `LAT0`/`LON0`),
/// speed (m/s), course (°), HDOP and satellites.
#[derive(Clone, Copy)]
pub(super) struct Fx {
    pub(super) t: i64,
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) v: f64,
    pub(super) course: f64,
    pub(super) hdop: f64,
    pub(super) sats: u32,
}

pub(super) fn latlon(x: f64, y: f64) -> (f64, f64) {
    let mlat = 111_320.0;
    let mlon = 111_320.0 * (LAT0 * PI / 180.0).cos();
    (LAT0 + y / mlat, LON0 + x / mlon)
}

/// NMEA (RMC + GGA per fix) for `fixes` at grid offset `(ox, oy)` metres.
pub(super) fn nmea(fixes: &[Fx]) -> Vec<u8> {
    let mut s = String::new();
    for f in fixes {
        let (lat, lon) = latlon(f.x, f.y);
        let dt = chrono::DateTime::from_timestamp_millis(f.t).expect("in range");
        let (la, lo) = (nmea_coord(lat, 2, 'N', 'S'), nmea_coord(lon, 3, 'E', 'W'));
        let tod = hms(f.t.rem_euclid(86_400_000));
        s.push_str(&sentence(&format!(
            "GPRMC,{tod},A,{la},{lo},{:.2},{:.1},{},,,A",
            f.v / 0.514_444,
            f.course,
            dt.format("%d%m%y")
        )));
        s.push('\n');
        s.push_str(&sentence(&format!(
            "GPGGA,{tod},{la},{lo},1,{:02},{:.1},30.0,M,19.0,M,,",
            f.sats, f.hdop
        )));
        s.push('\n');
    }
    s.into_bytes()
}

/// Options of a driven route.
#[derive(Clone, Copy)]
pub(super) struct Drive {
    seconds: i64,
    /// Target speed range, m/s.
    speed: (f64, f64),
    /// Chance of stopping at an intersection.
    stops: f64,
    /// Brake for turns and stops (false: full speed through 90° turns).
    brake: bool,
    /// Receiver error: AR(1) spread per HDOP unit (m); `white` makes it new every second.
    noise: f64,
    white: bool,
    /// Multipath outliers and tunnels.
    faults: bool,
    /// HDOP and satellites vary (false: constant 0.9 and 10).
    varying_signal: bool,
}

pub(super) const HONEST: Drive = Drive {
    seconds: 1200,
    speed: (8.0, 15.0),
    stops: 0.25,
    brake: true,
    noise: 1.2,
    white: false,
    faults: true,
    varying_signal: true,
};

/// Metres to the next intersection heading `dir` (0 E, 1 N, 2 W, 3 S) from block `i`, at `p`.
fn to_next(dir: i64, i: (i64, i64), p: (f64, f64)) -> f64 {
    match dir {
        0 => (i.0 + 1) as f64 * BLOCK - p.0,
        1 => (i.1 + 1) as f64 * BLOCK - p.1,
        2 => p.0 - (i.0 - 1) as f64 * BLOCK,
        _ => p.1 - (i.1 - 1) as f64 * BLOCK,
    }
}

/// HDOP, satellites and the receiver's position error this second (`canyon`: seconds of
/// urban canyon left; `err`: the AR(1) error state).
pub(super) fn signal(rng: &mut Rng, d: Drive, canyon: &mut i64, err: &mut (f64, f64)) -> (f64, u32, (f64, f64)) {
    if d.varying_signal && *canyon == 0 && rng.range(300) == 0 {
        *canyon = 10 + rng.range(30) as i64;
    }
    let hdop = if !d.varying_signal {
        0.9
    } else if *canyon > 0 {
        *canyon -= 1;
        2.5 + rng.f() * 1.4
    } else {
        0.7 + rng.f() * 0.8
    };
    let sats = if d.varying_signal { 6 + rng.range(8) as u32 } else { 10 };
    let sigma = d.noise * hdop;
    *err = if d.white {
        (rng.normal() * sigma, rng.normal() * sigma)
    } else {
        let innov = sigma * (1.0f64 - 0.81).sqrt();
        (0.9 * err.0 + rng.normal() * innov, 0.9 * err.1 + rng.normal() * innov)
    };
    let mut e = *err;
    if d.faults && rng.range(400) == 0 {
        e.0 += 30.0 + rng.f() * 40.0;
    }
    (hdop, sats, e)
}

/// A route on the grid from a random intersection, one fix per second.
fn drive(rng: &mut Rng, start_ms: i64, d: Drive) -> Vec<Fx> {
    let (mut ix, mut iy) = (rng.range(STREETS as u64) as i64, rng.range(STREETS as u64) as i64);
    let (mut x, mut y) = (ix as f64 * BLOCK, iy as f64 * BLOCK);
    let mut dir = rng.range(4) as i64;
    let mut v: f64 = 0.0;
    let mut target = d.speed.0 + rng.f() * (d.speed.1 - d.speed.0);
    let (mut plan_turn, mut plan_stop) = (rng.f() < 0.4, rng.f() < d.stops);
    let (mut stopped, mut canyon, mut tunnel) = (0i64, 0i64, 0i64);
    let mut err = (0.0f64, 0.0f64);
    let mut out = Vec::with_capacity(d.seconds as usize);
    for sec in 0..d.seconds {
        let next = to_next(dir, (ix, iy), (x, y));
        let want = if stopped > 0 {
            stopped -= 1;
            0.0
        } else if d.brake && (plan_stop || plan_turn) && next < v * v / 4.0 + v {
            if plan_stop {
                0.0
            } else {
                4.0
            }
        } else {
            target
        };
        v = if d.brake {
            (v + (want - v).clamp(-2.5, 2.0)).max(0.0)
        } else {
            target
        };
        if plan_stop && v < 0.5 && stopped == 0 {
            stopped = 10 + rng.range(35) as i64;
            plan_stop = false;
            v = 0.0;
        }
        let mut left = if stopped > 0 {
            0.0
        } else {
            v.max(if next < 1.0 { 1.0 } else { 0.0 })
        };
        while left > 0.0 {
            let rem = to_next(dir, (ix, iy), (x, y));
            let step = left.min(rem);
            match dir {
                0 => x += step,
                1 => y += step,
                2 => x -= step,
                _ => y -= step,
            }
            left -= step;
            if step >= rem {
                match dir {
                    0 => ix += 1,
                    1 => iy += 1,
                    2 => ix -= 1,
                    _ => iy -= 1,
                }
                let turn = if plan_turn { [1, 3][rng.range(2) as usize] } else { 0 };
                dir = (dir + turn) % 4;
                let blocked = |d: i64| match d {
                    0 => ix + 1 >= STREETS,
                    1 => iy + 1 >= STREETS,
                    2 => ix <= 0,
                    _ => iy <= 0,
                };
                for _ in 0..4 {
                    if !blocked(dir) {
                        break;
                    }
                    dir = (dir + 1) % 4;
                }
                plan_turn = rng.f() < 0.4;
                plan_stop = rng.f() < d.stops;
                target = d.speed.0 + rng.f() * (d.speed.1 - d.speed.0);
            }
        }
        if d.faults && tunnel == 0 && rng.range(1500) == 0 {
            tunnel = 20 + rng.range(40) as i64;
        }
        let (hdop, sats, e) = signal(rng, d, &mut canyon, &mut err);
        if tunnel > 0 {
            tunnel -= 1;
            continue;
        }
        out.push(Fx {
            t: start_ms + sec * 1000,
            x: x + e.0,
            y: y + e.1,
            v: (v + rng.normal() * 0.1).max(0.0),
            course: [90.0, 0.0, 270.0, 180.0][dir as usize],
            hdop: (hdop * 10.0).round() / 10.0,
            sats,
        });
    }
    out
}

/// A copy of `fixes`: shifted in time, with white noise of `noise` metres, resampled by
/// `resample_ms`, every `drop`-th fix left out (0: none).
fn copy(rng: &mut Rng, fixes: &[Fx], shift_ms: i64, noise: f64, resample_ms: i64, drop: usize) -> Vec<Fx> {
    fixes
        .iter()
        .enumerate()
        .filter(|(i, _)| drop == 0 || i % drop != drop - 1)
        .map(|(_, f)| Fx {
            t: f.t + shift_ms + resample_ms,
            x: f.x + rng.normal() * noise,
            y: f.y + rng.normal() * noise,
            ..*f
        })
        .collect()
}

pub(super) fn wallet(device: &str) -> String {
    let h = blake3::hash(format!("tessera-attack/{device}").as_bytes());
    format!("0x{}", hex::encode(&h.as_bytes()[..20]))
}

/// Generate the fleet for `epoch`.
///
/// ```
/// let f = tessera::simulate::attacks::attack_fleet(7, "2026-W47".parse().unwrap());
/// assert_eq!(f, tessera::simulate::attacks::attack_fleet(7, "2026-W47".parse().unwrap()));
/// assert!(f.labels.iter().any(|(_, l)| l == "replay_day"));
/// ```
pub fn attack_fleet(seed: u64, epoch: Epoch) -> AttackFleet {
    let mut b = Builder {
        rng: Rng(seed),
        epoch,
        fleet: AttackFleet {
            files: Vec::new(),
            registry_csv: "device_id,wallet\n".into(),
            labels: Vec::new(),
            epoch,
        },
    };
    let originals = b.honest();
    b.copies(&originals);
    b.simulators();
    b.timeline();
    b.groups();
    b.floors();
    b.cameras();
    b.fleet
}

struct Builder {
    rng: Rng,
    epoch: Epoch,
    fleet: AttackFleet,
}

impl Builder {
    fn day(&mut self, day: i64) -> i64 {
        self.epoch.start_ms() + day * 86_400_000 + (7 * 3600 + self.rng.range(10 * 3600) as i64) * 1000
    }

    fn device(&mut self, device: &str, label: &str, wallet_of: &str) {
        self.fleet.labels.push((device.into(), label.into()));
        self.fleet
            .registry_csv
            .push_str(&format!("{device},{}\n", wallet(wallet_of)));
    }

    fn file(&mut self, device: &str, name: &str, fixes: &[Fx], received_ms: i64) {
        self.fleet.files.push(AttackFile {
            device: device.into(),
            name: name.into(),
            bytes: nmea(fixes),
            received_ms,
        });
    }

    fn end(fixes: &[Fx]) -> i64 {
        fixes.last().map_or(0, |f| f.t) + 300_000
    }

    /// Ten honest drivers, three trips each; returns each driver's first trip.
    fn honest(&mut self) -> Vec<Vec<Fx>> {
        let mut firsts = Vec::new();
        for h in 0..10 {
            let dev = format!("honest-{h:02}");
            self.device(&dev, "honest", &dev);
            for trip in 0..3 {
                let start = self.day(trip * 2);
                let mut fixes = drive(&mut self.rng, start, HONEST);
                if h == 9 && trip == 1 {
                    // the receiver's clock steps back an hour ten minutes in
                    for f in fixes.iter_mut().skip(600) {
                        f.t -= 3_600_000;
                    }
                }
                let rx = Self::end(&fixes);
                self.file(&dev, &format!("trip{trip}.nmea"), &fixes, rx);
                if trip == 0 {
                    firsts.push(fixes);
                }
            }
        }
        firsts
    }

    fn copies(&mut self, o: &[Vec<Fx>]) {
        let later = |f: &[Fx]| Self::end(f) + 86_400_000 * 2;
        let cases: [(&str, usize, i64, f64, i64, usize); 5] = [
            ("replay_hour", 0, 3_600_000, 3.0, 0, 0),
            ("replay_day", 1, 86_400_000, 5.0, 500, 10),
            ("replay_extra_line", 2, 0, 0.0, 0, 0),
            ("replay_rank_steal", 3, -10, 2.0, 0, 0),
            ("replay_partial", 4, 7_200_000, 3.0, 0, 0),
        ];
        for (label, src, shift, noise, resample, drop) in cases {
            let dev = format!("{label}-x");
            self.device(&dev, label, &dev);
            let mut c = copy(&mut self.rng, &o[src], shift, noise, resample, drop);
            if label == "replay_partial" {
                c = c[300..900].to_vec();
            }
            let mut bytes = nmea(&c);
            if label == "replay_extra_line" {
                bytes.extend_from_slice(b"$PTESS,1*00\n");
            }
            self.fleet.files.push(AttackFile {
                device: dev,
                name: "trip.nmea".into(),
                bytes,
                received_ms: later(&o[src]),
            });
        }
        // An evasion: the replay stretched in time by 4 %.
        let dev = "replay_stretched-x".to_string();
        self.device(&dev, "replay_stretched", &dev);
        let t0 = o[5][0].t;
        let c: Vec<Fx> = copy(&mut self.rng, &o[5], 7_200_000, 3.0, 0, 0)
            .into_iter()
            .map(|f| Fx {
                t: t0 + 7_200_000 + (f.t - t0 - 7_200_000) * 104 / 100,
                v: f.v / 1.04,
                ..f
            })
            .collect();
        let rx = later(&o[5]);
        self.file(&dev, "trip.nmea", &c, rx);
    }

    fn simulators(&mut self) {
        let cases = [
            (
                "sim_perfect",
                Drive {
                    speed: (13.9, 13.9),
                    stops: 0.0,
                    brake: false,
                    noise: 0.0,
                    white: false,
                    faults: false,
                    varying_signal: false,
                    seconds: 2400,
                },
            ),
            (
                "sim_white_noise",
                Drive {
                    noise: 2.5,
                    white: true,
                    faults: false,
                    seconds: 2400,
                    ..HONEST
                },
            ),
            (
                "speed_200_grid",
                Drive {
                    speed: (55.0, 55.0),
                    stops: 0.0,
                    brake: false,
                    seconds: 1800,
                    ..HONEST
                },
            ),
        ];
        for (label, d) in cases {
            let dev = format!("{label}-x");
            self.device(&dev, label, &dev);
            let start = self.day(1);
            let f = drive(&mut self.rng, start, d);
            self.file(&dev, "trip.nmea", &f, Self::end(&f));
        }
        // One fix every 29 s of a plausible 2-hour drive.
        let dev = "sparse_29s-x".to_string();
        self.device(&dev, "sparse_29s", &dev);
        let start = self.day(2);
        let f: Vec<Fx> = drive(
            &mut self.rng,
            start,
            Drive {
                seconds: 7200,
                ..HONEST
            },
        )
        .into_iter()
        .step_by(29)
        .collect();
        self.file(&dev, "trip.nmea", &f, Self::end(&f));
    }

    fn timeline(&mut self) {
        // Ten cities in one day, each hop at 59 m/s (just under the teleport limit).
        let dev = "city_hops-x".to_string();
        self.device(&dev, "city_hops", &dev);
        let mut t = self.day(3) - 4 * 3_600_000;
        let mut all = Vec::new();
        for city in 0..10 {
            let f = drive(&mut self.rng, t, Drive { seconds: 900, ..HONEST });
            let shift = city as f64 * 100_000.0;
            all.extend(f.iter().map(|g| Fx { y: g.y + shift, ..*g }));
            t = all.last().map_or(t, |g: &Fx| g.t) + (100_000.0 / 59.0 * 1000.0) as i64;
        }
        self.file(&dev, "day.nmea", &all, Self::end(&all));
        // One device in two places at once, from two files.
        let dev = "two_places-x".to_string();
        self.device(&dev, "two_places", &dev);
        let start = self.day(4);
        let a = drive(&mut self.rng, start, HONEST);
        let b: Vec<Fx> = drive(&mut self.rng, start + 60_000, HONEST)
            .into_iter()
            .map(|g| Fx { x: g.x + 50_000.0, ..g })
            .collect();
        self.file(&dev, "a.nmea", &a, Self::end(&a));
        self.file(&dev, "b.nmea", &b, Self::end(&b));
        // Stamped a week ahead, and a Friday drive stamped Monday (both received before).
        for (label, shift) in [("future_week", 7 * 86_400_000), ("friday_as_monday", 3 * 86_400_000)] {
            let dev = format!("{label}-x");
            self.device(&dev, label, &dev);
            let start = self.day(1);
            let f = drive(&mut self.rng, start, HONEST);
            let rx = Self::end(&f);
            let moved: Vec<Fx> = f.iter().map(|g| Fx { t: g.t + shift, ..*g }).collect();
            self.file(&dev, "trip.nmea", &moved, rx);
        }
    }

    fn groups(&mut self) {
        // Twenty devices of one wallet in one car, and a convoy of twenty wallets.
        for (label, one_wallet, gap_ms) in [("sybil_one_car", true, 0i64), ("convoy", false, 2_000)] {
            let start = self.day(5);
            let base = drive(
                &mut self.rng,
                start,
                Drive {
                    noise: 0.0,
                    faults: false,
                    ..HONEST
                },
            );
            for k in 0..20 {
                let dev = format!("{label}-{k:02}");
                let w = if one_wallet { format!("{label}-00") } else { dev.clone() };
                self.device(&dev, label, &w);
                let mut err = (0.0f64, 0.0f64);
                let f: Vec<Fx> = base
                    .iter()
                    .map(|g| {
                        let innov = 1.2 * g.hdop * 0.436;
                        err = (
                            0.9 * err.0 + self.rng.normal() * innov,
                            0.9 * err.1 + self.rng.normal() * innov,
                        );
                        Fx {
                            t: g.t + gap_ms * k,
                            x: g.x + err.0,
                            y: g.y + err.1,
                            ..*g
                        }
                    })
                    .collect();
                self.file(&dev, "trip.nmea", &f, Self::end(&f));
            }
        }
    }

    fn floors(&mut self) {
        let walk = Drive {
            seconds: 86_400,
            speed: (1.3, 1.5),
            stops: 0.1,
            ..HONEST
        };
        let parked = Drive {
            seconds: 86_400,
            speed: (0.0, 0.0),
            stops: 0.0,
            noise: 4.0,
            faults: false,
            ..HONEST
        };
        for (label, d) in [("walking_24h", walk), ("parked_wander", parked)] {
            let dev = format!("{label}-x");
            self.device(&dev, label, &dev);
            let start = self.epoch.start_ms() + 86_400_000;
            let f = drive(&mut self.rng, start, d);
            self.file(&dev, "day.nmea", &f, Self::end(&f));
        }
    }

    /// Camera sources (CAMM MP4 with a 10 Hz IMU): an honest dashcam whose IMU shakes and turns
    /// with the drive (a control), a camera left on a desk fed a spoofed track (`desk_camera`),
    /// and a made-up IMU beside a made-up track that shakes but never turns (`imu_noise`).
    fn cameras(&mut self) {
        use super::camera::{camm_mp4, imu, Motion};
        use crate::ingest::telemetry::Sensor;
        for (dev, label) in [
            ("honest-cam", "honest"),
            ("desk_camera-x", "desk_camera"),
            ("imu_noise-x", "imu_noise"),
        ] {
            self.device(dev, label, dev);
            let start = self.day(3);
            let f = drive(&mut self.rng, start, HONEST);
            let m: Vec<Motion> = f
                .iter()
                .map(|x| {
                    let (lat, lon) = latlon(x.x, x.y);
                    Motion {
                        t_ms: x.t,
                        lat,
                        lon,
                        alt: 20.0,
                        speed: x.v,
                        course: x.course,
                        hdop: x.hdop,
                    }
                })
                .collect();
            let mut samples = imu(&m, self.rng.next_u64(), label == "desk_camera");
            if label == "imu_noise" {
                for s in samples.iter_mut().filter(|s| s.sensor == Sensor::Gyro) {
                    s.xyz = [s.xyz[0], s.xyz[1].clamp(-0.02, 0.02), s.xyz[2]];
                }
            }
            self.fleet.files.push(AttackFile {
                device: dev.into(),
                name: "trip.mp4".into(),
                bytes: camm_mp4(&m, &samples),
                received_ms: Self::end(&f),
            });
        }
    }
}
