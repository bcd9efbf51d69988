//! `tessera simulate`: a deterministic synthetic fleet, small (files per driver) or at scale
//! (`--fixes N`: Parquet sources into a lake, or one NMEA log per driver).

use crate::cli::{SimArgs, SimFormat};
use crate::output::{bar, print_json};
use anyhow::Result;
use tessera::simulate::{self, write, ScaleConfig, SimConfig};

pub fn run(a: &SimArgs, json: bool) -> Result<()> {
    if let Some(roads) = &a.roads {
        if a.fixes.is_some() || a.format.is_some() || a.attacks {
            anyhow::bail!("--roads drives the small fleet (NMEA files); leave out --fixes, --format and --attacks");
        }
        return on_roads(a, roads, json);
    }
    if a.attacks {
        return attacks(a, json);
    }
    match a.fixes {
        Some(n) => at_scale(a, n, json),
        None => small(a, json),
    }
}

fn attacks(a: &SimArgs, json: bool) -> Result<()> {
    let fleet = simulate::attacks::attack_fleet(a.seed, a.start);
    let lake = tessera::lake::Lake::open(&a.out)?;
    let n = fleet.ingest(&lake);
    tessera::lake::write_atomic(&a.out.join("registry.csv"), fleet.registry_csv.as_bytes())?;
    let mut labels = String::from("device,label\n");
    for (d, l) in &fleet.labels {
        labels.push_str(&format!("{d},{l}\n"));
    }
    tessera::lake::write_atomic(&a.out.join("labels.csv"), labels.as_bytes())?;
    if json {
        return print_json(
            &serde_json::json!({"lake": a.out, "sources": n, "devices": fleet.labels.len(), "epoch": a.start.to_string()}),
        );
    }
    println!(
        "simulated an adversarial fleet ({} devices, {n} sources) in {} into the lake {}; labels in labels.csv, registry in registry.csv",
        fleet.labels.len(),
        a.start,
        a.out.display()
    );
    Ok(())
}

fn small(a: &SimArgs, json: bool) -> Result<()> {
    let camera = match a.format {
        None => None,
        Some(SimFormat::Camm) => Some(simulate::camera::Kind::Camm),
        Some(SimFormat::BlackvueMp4) => Some(simulate::camera::Kind::BlackVue),
        Some(f) => anyhow::bail!(
            "--format {f:?} needs --fixes N (a fleet at scale); the small fleet writes camm or blackvue-mp4"
        ),
    };
    let cfg = SimConfig {
        camera,
        seed: a.seed,
        drivers: a.drivers,
        start: a.start,
        epochs: a.epochs,
        trips: a.trips,
        minutes: a.minutes,
        ..Default::default()
    };
    let fleet = simulate::simulate(&cfg);
    let bytes = write::fleet_files(&fleet, &a.out)?;
    if json {
        return print_json(
            &serde_json::json!({"out": a.out, "files": fleet.files.len(), "bytes": bytes, "drivers": fleet.roles.len()}),
        );
    }
    println!(
        "simulated {} files ({bytes} bytes) for {} drivers into {}",
        fleet.files.len(),
        fleet.roles.len(),
        a.out.display()
    );
    Ok(())
}

fn on_roads(a: &SimArgs, path: &std::path::Path, json: bool) -> Result<()> {
    let (roads, _) = tessera::places::osm::read_roads(path, &tessera::places::policy::default_highways())?;
    let cfg = SimConfig {
        seed: a.seed,
        drivers: a.drivers,
        start: a.start,
        epochs: a.epochs,
        trips: a.trips,
        minutes: a.minutes,
        ..Default::default()
    };
    let fleet =
        simulate::osm::simulate_on_roads(&roads, &cfg).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bytes = write::fleet_files(&fleet, &a.out)?;
    if json {
        return print_json(
            &serde_json::json!({"out": a.out, "files": fleet.files.len(), "bytes": bytes, "drivers": fleet.roles.len(), "roads": path}),
        );
    }
    println!(
        "simulated {} files ({bytes} bytes) for {} drivers on the roads of {} into {}",
        fleet.files.len(),
        fleet.roles.len(),
        path.display(),
        a.out.display()
    );
    Ok(())
}

fn at_scale(a: &SimArgs, n: u64, json: bool) -> Result<()> {
    let mut cfg = ScaleConfig::for_fixes(n, a.seed);
    cfg.epoch = a.start;
    let t0 = std::time::Instant::now();
    let pb = bar(u64::from(cfg.drivers), "simulate", json);
    let inc = |k: u64| pb.inc(k);
    let registry = a.out.join("registry.csv");
    let (fixes, bytes, what) = match a.format.unwrap_or(SimFormat::Parquet) {
        SimFormat::Camm | SimFormat::BlackvueMp4 => {
            anyhow::bail!("--format camm and blackvue-mp4 write the small fleet; leave out --fixes")
        }
        SimFormat::Nmea => {
            let bytes = write::nmea_logs(&cfg, &a.out, &inc)?;
            (
                u64::from(cfg.drivers) * u64::from(cfg.seconds_per_driver),
                bytes,
                "NMEA",
            )
        }
        SimFormat::Parquet => {
            let lake = tessera::lake::Lake::open(&a.out)?;
            let (fixes, bytes) = write::into_lake(&cfg, &lake, &inc)?;
            (fixes, bytes, "Parquet")
        }
    };
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    if json {
        return print_json(
            &serde_json::json!({"out": a.out, "format": what, "fixes": fixes, "bytes": bytes, "drivers": cfg.drivers, "epoch": cfg.epoch.to_string(), "registry": registry}),
        );
    }
    println!(
        "simulated {fixes} fixes ({bytes} bytes of {what}) for {} drivers on a {}x{} street grid in {} into {} in {secs:.1} s ({:.2} M fixes/s); registry: {}",
        cfg.drivers,
        cfg.streets(),
        cfg.streets(),
        cfg.epoch,
        a.out.display(),
        fixes as f64 / secs / 1e6,
        registry.display()
    );
    Ok(())
}
