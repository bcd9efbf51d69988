//! Fleets at scale: one random stream per driver, so drivers generate in parallel and in any
//! order with the same result; fixes straight to Parquet sources or one NMEA log per driver.

use super::{checksum, drive, hms, nmea_coord, wallet, Rng, Role, SimConfig};
use crate::epoch::Epoch;
use std::f64::consts::PI;

/// A fleet at scale, generated one driver at a time (each driver has its own random stream, so
/// drivers can be generated in parallel and in any order with the same result).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleConfig {
    /// RNG seed.
    pub seed: u64,
    /// Number of drivers (all honest and registered).
    pub drivers: u32,
    /// The epoch driven in.
    pub epoch: Epoch,
    /// Driving seconds per driver in the epoch (1 Hz fixes: this many fixes per driver).
    pub seconds_per_driver: u32,
    /// Trip length in minutes.
    pub trip_minutes: u32,
}

impl ScaleConfig {
    /// Drivers and per-driver seconds for about `fixes` fixes: 14 h of driving per driver and
    /// week (a full-time driver), fewer seconds when `fixes` is small.
    ///
    /// ```
    /// let c = tessera::simulate::ScaleConfig::for_fixes(1_000_000, 7);
    /// assert_eq!((c.drivers, c.seconds_per_driver), (20, 50_000)); // 14 h = 50 400 s is the most per driver
    /// ```
    pub fn for_fixes(fixes: u64, seed: u64) -> ScaleConfig {
        let per = 14 * 3600u64;
        let drivers = fixes.div_ceil(per).max(1);
        ScaleConfig {
            seed,
            drivers: drivers.min(u32::MAX as u64) as u32,
            epoch: "2026-W47".parse().expect("valid"),
            seconds_per_driver: fixes.div_ceil(drivers).min(u32::MAX as u64) as u32,
            trip_minutes: 30,
        }
    }

    /// Streets per side of the city grid: grows with the square root of the fleet, so the
    /// density of drivers per km² stays the same at every scale (a bigger network maps a bigger
    /// area, and the visits per cell do not explode).
    ///
    /// ```
    /// let c = tessera::simulate::ScaleConfig::for_fixes(1_000_000, 7);
    /// assert_eq!((c.streets(), c.device(0).as_str()), (72, "d000000"));
    /// assert_eq!(c.registry_csv().lines().count(), 1 + c.drivers as usize);
    /// ```
    pub fn streets(&self) -> u32 {
        ((f64::from(self.drivers)).sqrt() * 16.0).ceil().max(14.0) as u32
    }

    /// The small-fleet configuration whose street grid the drivers share.
    ///
    /// ```
    /// let c = tessera::simulate::ScaleConfig::for_fixes(1_000_000, 7);
    /// assert_eq!(c.sim_config().streets, c.streets());
    /// ```
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            drivers: self.drivers,
            start: self.epoch,
            epochs: 1,
            trips: 1,
            minutes: self.trip_minutes.max(1),
            streets: self.streets(),
            ..SimConfig::default()
        }
    }

    /// The grid's places (roads, two districts, a bounty) and the policy naming them, as
    /// [`super::places::grid_places`] writes them for the small fleet.
    ///
    /// ```
    /// let c = tessera::simulate::ScaleConfig::for_fixes(1_000, 7);
    /// assert_eq!(c.places().len(), 4);
    /// ```
    pub fn places(&self) -> Vec<(String, Vec<u8>)> {
        super::places::grid_places(&self.sim_config())
    }

    /// Device id of driver `d`.
    ///
    /// ```
    /// // see `ScaleConfig::streets`
    /// ```
    pub fn device(&self, d: u32) -> String {
        format!("d{d:06}")
    }

    /// Registry CSV of all drivers.
    ///
    /// ```
    /// // see `ScaleConfig::streets`
    /// ```
    pub fn registry_csv(&self) -> String {
        let mut s = String::from("device_id,wallet\n");
        for d in 0..self.drivers {
            let dev = self.device(d);
            s.push_str(&format!("{dev},{}\n", wallet(self.seed, &dev)));
        }
        s
    }

    /// The fixes of driver `d`, in time order.
    ///
    /// ```
    /// let c = tessera::simulate::ScaleConfig::for_fixes(100_000, 7);
    /// let a = c.driver_fixes(1);
    /// assert_eq!(a.len(), c.seconds_per_driver as usize);
    /// assert_eq!(a, c.driver_fixes(1));
    /// assert_ne!(a, c.driver_fixes(0));
    /// ```
    pub fn driver_fixes(&self, d: u32) -> Vec<crate::fix::Fix> {
        let mut rng = Rng(self.seed ^ u64::from(d).wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        let streets = self.streets();
        let sim = self.sim_config();
        let m_per_deg_lat = 111_320.0;
        let m_per_deg_lon = 111_320.0 * (sim.lat0 * PI / 180.0).cos();
        let half = f64::from(sim.streets - 1) * sim.block_m / 2.0;
        let home = (
            rng.range(u64::from(streets)) as i64,
            rng.range(u64::from(streets)) as i64,
        );
        let trip_s = i64::from(sim.minutes) * 60;
        let total = i64::from(self.seconds_per_driver);
        let trips = (total + trip_s - 1) / trip_s.max(1);
        // Trips start at distinct slots of the week (one slot per trip length), in order.
        let slots = (7 * 86_400 / trip_s).max(1);
        let mut starts: Vec<i64> = Vec::with_capacity(trips as usize);
        let stride = (slots / trips.max(1)).max(1);
        for t in 0..trips {
            starts.push(((t * stride + rng.range(stride as u64) as i64) % slots) * trip_s);
        }
        starts.sort_unstable();
        let mut out = Vec::with_capacity(total as usize);
        for s in &starts {
            let left = total - out.len() as i64;
            if left <= 0 {
                break;
            }
            let cfg = SimConfig {
                minutes: ((left.min(trip_s) + 59) / 60) as u32,
                ..sim.clone()
            };
            let samples = drive(
                &mut rng,
                &cfg,
                Role::Honest,
                home,
                self.epoch.start_ms() + s * 1000,
                half,
                m_per_deg_lat,
                m_per_deg_lon,
            );
            for p in samples.into_iter().take(left as usize) {
                out.push(crate::fix::Fix {
                    time_ms: p.t_ms,
                    lat: p.lat,
                    lon: p.lon,
                    alt_m: Some(34.0),
                    quality: 1,
                    sats: Some(p.sats as u8),
                    hdop: Some(p.hdop as f32),
                    speed_mps: Some(p.speed as f32),
                    course_deg: Some(p.course as f32),
                    line: (out.len() + 1) as u32,
                    talker: *b"GP",
                });
            }
        }
        out
    }

    /// The fixes of driver `d` as the NMEA log a receiver would have written (RMC + GGA every
    /// second, GSA every fifth; coordinates to 1e-5 minute), for ingest benchmarks at scale.
    /// Every line parses back: [`crate::ingest::parse`] gives one fix per simulated fix.
    ///
    /// ```
    /// let c = tessera::simulate::ScaleConfig::for_fixes(20_000, 7);
    /// let log = c.driver_nmea(0);
    /// let parsed = tessera::ingest::parse(&log);
    /// assert_eq!(parsed.fixes.len(), c.driver_fixes(0).len());
    /// assert_eq!(parsed.lines.rejected, 0);
    /// ```
    pub fn driver_nmea(&self, d: u32) -> Vec<u8> {
        use std::fmt::Write;
        let fixes = self.driver_fixes(d);
        let mut s = String::with_capacity(fixes.len() * 170);
        let mut day = (i64::MIN, String::new());
        let mut body = String::with_capacity(96);
        for (i, f) in fixes.iter().enumerate() {
            let days = f.time_ms.div_euclid(86_400_000);
            if days != day.0 {
                let dt = chrono::DateTime::from_timestamp_millis(f.time_ms).expect("in range");
                day = (days, dt.format("%d%m%y").to_string());
            }
            let tod = hms(f.time_ms.rem_euclid(86_400_000));
            let lat = nmea_coord(f.lat, 2, 'N', 'S');
            let lon = nmea_coord(f.lon, 3, 'E', 'W');
            let hdop = f.hdop.unwrap_or(1.0);
            let mut line = |b: &str| {
                let _ = writeln!(s, "${b}*{:02X}", checksum(b));
            };
            body.clear();
            let _ = write!(
                body,
                "GPRMC,{tod},A,{lat},{lon},{:.2},{:.1},{},,,A",
                f.speed_mps.unwrap_or(0.0) / 0.514_444,
                f.course_deg.unwrap_or(0.0),
                day.1
            );
            line(&body);
            body.clear();
            let _ = write!(
                body,
                "GPGGA,{tod},{lat},{lon},{},{:02},{hdop:.1},{:.1},M,39.5,M,,",
                f.quality,
                f.sats.unwrap_or(0),
                f.alt_m.unwrap_or(0.0)
            );
            line(&body);
            if i % 5 == 0 {
                body.clear();
                let _ = write!(
                    body,
                    "GPGSA,A,3,02,05,07,09,13,16,20,,,,,,{:.1},{hdop:.1},{hdop:.1}",
                    hdop * 1.4
                );
                line(&body);
            }
        }
        s.into_bytes()
    }
}
