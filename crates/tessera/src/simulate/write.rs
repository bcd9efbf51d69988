//! Writing simulated fleets to disk: the small fleet as files, a fleet at scale as NMEA logs or
//! as Parquet sources straight into a lake. What the CLI's `simulate` and Python share.

use super::{Fleet, ScaleConfig};
use crate::lake::{write_atomic, Error, Lake, Upload};
use rayon::prelude::*;
use std::path::Path;

/// Write a fleet as `out/<device>/<file>`, `out/registry.csv`, `out/roles.csv` and its places
/// (`roads.geojson`, `regions.geojson`, `bounty.geojson`, `places.toml`); the bytes of trace
/// files written.
///
/// # Errors
/// [`Error::Io`] naming the file that could not be written.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 1, ..Default::default() });
/// let bytes = tessera::simulate::write::fleet_files(&fleet, d.path()).unwrap();
/// assert!(bytes > 0 && d.path().join("registry.csv").is_file());
/// ```
pub fn fleet_files(fleet: &Fleet, out: &Path) -> Result<u64, Error> {
    let mut bytes = 0;
    for f in &fleet.files {
        write_atomic(&out.join(&f.device).join(&f.name), &f.bytes)?;
        bytes += f.bytes.len() as u64;
    }
    write_atomic(&out.join("registry.csv"), fleet.registry_csv.as_bytes())?;
    let roles: String = fleet.roles.iter().map(|(d, r)| format!("{d},{r}\n")).collect();
    write_atomic(&out.join("roles.csv"), format!("device_id,role\n{roles}").as_bytes())?;
    for (name, b) in &fleet.places {
        write_atomic(&out.join(name), b)?;
    }
    Ok(bytes)
}

/// Write one NMEA log per driver as `out/<device>/<epoch>.nmea` (in parallel) and
/// `out/registry.csv`; the bytes of NMEA written. `progress(drivers_done)`.
///
/// # Errors
/// [`Error::Io`] naming the file that could not be written.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let cfg = tessera::simulate::ScaleConfig::for_fixes(100, 7);
/// let bytes = tessera::simulate::write::nmea_logs(&cfg, d.path(), &|_| {}).unwrap();
/// assert!(bytes > 100 * 60);
/// ```
pub fn nmea_logs(cfg: &ScaleConfig, out: &Path, progress: &(dyn Fn(u64) + Sync)) -> Result<u64, Error> {
    let bytes = (0..cfg.drivers)
        .into_par_iter()
        .map(|d| {
            let log = cfg.driver_nmea(d);
            write_atomic(&out.join(cfg.device(d)).join(format!("{}.nmea", cfg.epoch)), &log)?;
            progress(1);
            Ok(log.len() as u64)
        })
        .sum::<Result<u64, Error>>()?;
    write_atomic(&out.join("registry.csv"), cfg.registry_csv().as_bytes())?;
    Ok(bytes)
}

/// Generate every driver's fixes and ingest them into `lake` as Parquet sources, 256 drivers per
/// group commit (generated and encoded in parallel), and write `registry.csv` into the lake;
/// (fixes, bytes) ingested. `progress(drivers_done)`.
///
/// # Errors
/// The first ingest or write error.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// let cfg = tessera::simulate::ScaleConfig::for_fixes(1000, 7);
/// let (fixes, _) = tessera::simulate::write::into_lake(&cfg, &lake, &|_| {}).unwrap();
/// assert_eq!(fixes, 1000);
/// ```
pub fn into_lake(cfg: &ScaleConfig, lake: &Lake, progress: &(dyn Fn(u64) + Sync)) -> Result<(u64, u64), Error> {
    let (mut fixes, mut bytes) = (0, 0);
    let all: Vec<u32> = (0..cfg.drivers).collect();
    for group in all.chunks(256) {
        let files: Vec<(String, String, Vec<u8>)> = group
            .par_iter()
            .map(|d| {
                let device = cfg.device(*d);
                let name = format!("{device}-{}.parquet", cfg.epoch);
                let bytes = lake.fixes_source(&device, &name, &cfg.driver_fixes(*d))?;
                Ok((device, name, bytes))
            })
            .collect::<Result<_, Error>>()?;
        let uploads: Vec<Upload> = files
            .iter()
            .map(|(device, name, bytes)| Upload::new(device, name, bytes))
            .collect();
        for out in lake.ingest_batch(&uploads) {
            let out = out?;
            fixes += out.meta.fixes;
            bytes += out.meta.bytes;
        }
        progress(group.len() as u64);
    }
    write_atomic(&lake.path("registry.csv"), cfg.registry_csv().as_bytes())?;
    Ok((fixes, bytes))
}
