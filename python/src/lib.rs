//! `tessera._tessera`: the native module behind the `tessera` Python package. Every function
//! calls the same Rust code as the CLI; tables cross as Arrow C streams (no copy), long work runs
//! with the GIL released, and every error becomes `tessera.TesseraError` with the Rust message.

mod spark;

use arrow_array::RecordBatch;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use std::path::PathBuf;
use tessera::epoch::Epoch;
use tessera::lake::files::FileJob;
use tessera::lake::Lake;
use tessera::pipeline::{self, EpochInputs};
use tessera::policy::Policy;
use tessera::registry::Registry;

create_exception!(
    _tessera,
    TesseraError,
    PyException,
    "An error from tessera, with the file, line or field at fault."
);

fn te(e: impl std::fmt::Display) -> PyErr {
    TesseraError::new_err(e.to_string())
}

fn table(py: Python<'_>, batches: Vec<RecordBatch>, schema: arrow_schema::SchemaRef) -> PyResult<Py<PyAny>> {
    Ok(PyTable::try_new(batches, schema)?.into_pyarrow(py)?.unbind())
}

fn policy(text: Option<&str>) -> PyResult<Policy> {
    match text {
        None => Ok(Policy::default()),
        Some(t) => Policy::from_toml_str(t).map_err(te),
    }
}

fn epoch(e: &str) -> PyResult<Epoch> {
    e.parse().map_err(te)
}

/// An epoch's inputs as `run_epoch` and `tessera.spark` take them: the registry (default
/// `LAKE/registry.csv`), the policy file with its GeoJSON/OSM places (default: a published
/// epoch's own policy and places, else policy v1), the pool
/// (default: the policy's `[emission]`).
fn epoch_inputs(
    lake: &Lake,
    e: Epoch,
    pool: Option<u128>,
    registry_path: Option<PathBuf>,
    policy_path: Option<PathBuf>,
) -> Result<EpochInputs, String> {
    let reg_path = registry_path.unwrap_or_else(|| lake.path("registry.csv"));
    let reg_bytes = std::fs::read(&reg_path).map_err(|x| format!("registry {}: {x}", reg_path.display()))?;
    let registry = Registry::parse(&reg_bytes, &reg_path.display().to_string()).map_err(|x| x.to_string())?;
    let (policy_text, policy, places) = match policy_path {
        Some(p) => {
            let policy = Policy::load(&p).map_err(|x| x.to_string())?;
            // Places (regions, roads, bounty areas) from GeoJSON and .osm.pbf sources, relative
            // to the policy file; other formats need the CLI's GDAL build.
            let base = p.parent().unwrap_or(std::path::Path::new("."));
            let places =
                tessera::places::build(&policy, base, &tessera::places::shapes::Native).map_err(|x| x.to_string())?;
            let text = std::fs::read_to_string(&p).map_err(|x| format!("{}: {x}", p.display()))?;
            (text, policy, places)
        }
        // A published epoch is recomputed under its own policy (as `tessera epoch run`).
        None => match tessera::audit::policy_of_published(lake, &e).map_err(|x| {
            format!("{x} (epoch {e} is published, and without policy_path it is recomputed under its own policy: pass policy_path to choose one)")
        })? {
            Some(p) => (p.text, p.policy, p.places),
            None => (Policy::default().to_toml(), Policy::default(), Default::default()),
        },
    };
    let pool = match (pool, &policy.emission) {
        (Some(p), _) => p,
        (None, Some(em)) => em.pool_for(e).map_err(|m| format!("policy [emission]: {m}"))?,
        (None, None) => return Err("no pool: give one, or an [emission] schedule in the policy".into()),
    };
    if pool > 99_999_999_999_999_999_999_999_999_999_999_999_999 {
        return Err(format!(
            "pool {pool} exceeds 10^38 - 1, the largest amount Decimal128(38,0) can store"
        ));
    }
    Ok(EpochInputs {
        epoch: e,
        pool,
        policy_text,
        registry,
        only_sources: None,
        places,
        places_parquet: None,
        layout: tessera::tables::Layout::CURRENT,
        trust_rules: tessera::trust::policy::TRUST_RULES,
    })
}

fn json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(te)
}

/// Parse trace bytes: (fixes, rejections, line-accounting JSON).
#[pyfunction]
#[pyo3(signature = (data, device, source="memory"))]
fn parse_bytes(py: Python<'_>, data: Vec<u8>, device: &str, source: &str) -> PyResult<(Py<PyAny>, Py<PyAny>, String)> {
    let (fixes, rej, lines) = py.detach(|| tessera::frames::parse(&data, device, source));
    let s = fixes[0].schema();
    let rs = rej.schema();
    Ok((table(py, fixes, s)?, table(py, vec![rej], rs)?, json(&lines)?))
}

/// Fixes, rejections, accounting JSON, IMU readings.
type TraceTuple = (Py<PyAny>, Py<PyAny>, String, Py<PyAny>);

/// Read a trace file (a camera video by seeking to its telemetry): (fixes, rejections,
/// accounting JSON with `telemetry` for camera files, IMU readings).
#[pyfunction]
#[pyo3(signature = (path, device))]
fn read_file(py: Python<'_>, path: PathBuf, device: &str) -> PyResult<TraceTuple> {
    let t = py.detach(|| tessera::frames::read_file(&path, device)).map_err(te)?;
    let mut lines = serde_json::to_value(&t.lines).map_err(te)?;
    if let (Some(tel), Some(obj)) = (&t.telemetry, lines.as_object_mut()) {
        obj.insert("telemetry".into(), serde_json::to_value(tel).map_err(te)?);
    }
    let (fs, rs, is) = (t.fixes[0].schema(), t.rejections.schema(), t.imu[0].schema());
    Ok((
        table(py, t.fixes, fs)?,
        table(py, vec![t.rejections], rs)?,
        json(&lines)?,
        table(py, t.imu, is)?,
    ))
}

/// Gates and trace checks: (accepted fixes with `segment`, rejected fixes).
#[pyfunction]
#[pyo3(signature = (fixes, policy_toml=None))]
fn clean(py: Python<'_>, fixes: PyTable, policy_toml: Option<&str>) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let p = policy(policy_toml)?;
    let (batches, _) = fixes.into_inner();
    let (acc, rej) = py.detach(|| tessera::frames::clean(&batches, &p)).map_err(te)?;
    let rs = rej.schema();
    Ok((
        table(py, acc, tessera::frames::segmented_schema())?,
        table(py, vec![rej], rs)?,
    ))
}

/// H3 cover and dedupe: visits.
#[pyfunction]
#[pyo3(signature = (cleaned, policy_toml=None))]
fn cover(py: Python<'_>, cleaned: PyTable, policy_toml: Option<&str>) -> PyResult<Py<PyAny>> {
    let p = policy(policy_toml)?;
    let (batches, _) = cleaned.into_inner();
    let v = py.detach(|| tessera::frames::cover(&batches, &p)).map_err(te)?;
    table(py, vec![v], tessera::frames::visits_schema())
}

/// Novelty scoring of visits against a coverage state.
#[pyfunction]
#[pyo3(signature = (visits, epoch_id, coverage=None, policy_toml=None, registry_csv=None))]
fn score(
    py: Python<'_>,
    visits: PyTable,
    epoch_id: &str,
    coverage: Option<PyTable>,
    policy_toml: Option<&str>,
    registry_csv: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let p = policy(policy_toml)?;
    let e = epoch(epoch_id)?;
    let reg = registry_csv
        .map(|c| Registry::parse(c.as_bytes(), "registry"))
        .transpose()
        .map_err(te)?;
    let (vb, _) = visits.into_inner();
    let cb = coverage.map(|c| c.into_inner().0).unwrap_or_default();
    let out = py
        .detach(|| tessera::frames::score(&vb, &e, &cb, &p, reg.as_ref()))
        .map_err(te)?;
    table(py, vec![out], tessera::tables::explain_schema())
}

/// Largest-remainder allocation of an integer pool.
#[pyfunction]
fn allocate(py: Python<'_>, pool: u128, points: PyTable) -> PyResult<Py<PyAny>> {
    let (b, _) = points.into_inner();
    let out = py.detach(|| tessera::frames::allocate(pool, &b)).map_err(te)?;
    table(py, vec![out], tessera::frames::allocation_schema())
}

/// Ingest files for a device in group commits (as `tessera ingest`); JSON list of outcomes. A
/// file that fails does not stop the others; the error names every failed file.
#[pyfunction]
#[pyo3(signature = (lake, device, paths, received_at_ms=None))]
fn ingest(
    py: Python<'_>,
    lake: PathBuf,
    device: &str,
    paths: Vec<PathBuf>,
    received_at_ms: Option<i64>,
) -> PyResult<String> {
    let out = py.detach(|| -> Result<Vec<tessera::lake::IngestOutcome>, String> {
        let lake = Lake::open(&lake).map_err(|e| e.to_string())?;
        let jobs: Vec<FileJob> = paths
            .iter()
            .map(|p| FileJob {
                device: device.to_string(),
                path: p.clone(),
                received_at_ms,
            })
            .collect();
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for r in lake.ingest_files(&jobs, &|_, _| {}) {
            match r.result {
                Ok(o) => ok.push(o),
                Err(e) => failed.push(format!("{}: {e}", r.job.path.display())),
            }
        }
        match failed.is_empty() {
            true => Ok(ok),
            false => Err(format!(
                "{} of {} file(s) not ingested (the others are): {}",
                failed.len(),
                jobs.len(),
                failed.join("; ")
            )),
        }
    });
    json(&out.map_err(te)?)
}

/// Run an epoch into the lake; JSON summary.
#[pyfunction]
#[pyo3(signature = (lake, epoch_id, pool, registry_path=None, policy_path=None, replace=false, no_prior=false))]
#[allow(clippy::too_many_arguments)]
fn run_epoch(
    py: Python<'_>,
    lake: PathBuf,
    epoch_id: &str,
    pool: u128,
    registry_path: Option<PathBuf>,
    policy_path: Option<PathBuf>,
    replace: bool,
    no_prior: bool,
) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    let out = py.detach(|| -> Result<pipeline::Summary, String> {
        let lake = Lake::open_existing(&lake).map_err(|e| e.to_string())?;
        let inputs = epoch_inputs(&lake, e, Some(pool), registry_path, policy_path)?;
        let opts = pipeline::RunOptions { replace, no_prior };
        pipeline::run_with(&lake, &inputs, opts, &pipeline::no_progress)
            .map(|o| o.summary)
            .map_err(|e| e.to_string())
    });
    json(&out.map_err(te)?)
}

/// An epoch's manifest, read and checked by the core's typed `Manifest`; JSON.
#[pyfunction]
fn read_manifest(py: Python<'_>, lake: PathBuf, epoch_id: &str) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    let path = lake.join("epochs").join(e.to_string()).join("manifest.json");
    let m = py.detach(|| tessera::audit::read_manifest(&path)).map_err(te)?;
    json(&m)
}

/// Recompute and compare an epoch; JSON report.
#[pyfunction]
#[pyo3(signature = (lake, epoch_id, manifest=None))]
fn verify_epoch(py: Python<'_>, lake: PathBuf, epoch_id: &str, manifest: Option<PathBuf>) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    let r = py
        .detach(|| {
            Lake::open_existing(&lake)
                .and_then(|l| tessera::audit::verify(&l, &e, manifest.as_deref(), &pipeline::no_progress))
        })
        .map_err(te)?;
    json(&r)
}

/// A recipient's claim (or all claims); JSON.
#[pyfunction]
#[pyo3(signature = (lake, epoch_id, recipient=None))]
fn proof(py: Python<'_>, lake: PathBuf, epoch_id: &str, recipient: Option<String>) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    let d = py
        .detach(|| Lake::open_existing(&lake).and_then(|l| tessera::audit::proof(&l, &e, recipient.as_deref())))
        .map_err(te)?;
    json(&d)
}

/// Explanation of a recipient's amount; JSON.
#[pyfunction]
fn explain(py: Python<'_>, lake: PathBuf, epoch_id: &str, recipient: &str) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    let x = py
        .detach(|| Lake::open_existing(&lake).and_then(|l| tessera::audit::explain(&l, &e, recipient)))
        .map_err(te)?;
    json(&x)
}

/// Trust review of a published epoch: flagged devices, what they would have earned with the
/// detectors off, the evidence; JSON.
#[pyfunction]
fn review(py: Python<'_>, lake: PathBuf, epoch_id: &str) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    let r = py
        .detach(|| Lake::open_existing(&lake).and_then(|l| tessera::review::review(&l, &e)))
        .map_err(te)?;
    json(&r)
}

/// Per-recipient change under another policy (TOML text); JSON.
#[pyfunction]
fn diff_policy(py: Python<'_>, lake: PathBuf, epoch_id: &str, policy_toml: &str) -> PyResult<String> {
    let e = epoch(epoch_id)?;
    Policy::from_toml_str(policy_toml).map_err(te)?;
    let d = py
        .detach(|| {
            Lake::open_existing(&lake).and_then(|l| tessera::audit::diff(&l, &e, policy_toml, &pipeline::no_progress))
        })
        .map_err(te)?;
    json(&d)
}

/// Read one of an epoch's Parquet outputs (`rewards`, `explain`, `rejections`, `coverage`,
/// `flags`, `trust`).
#[pyfunction]
fn epoch_table(py: Python<'_>, lake: PathBuf, epoch_id: &str, name: &str) -> PyResult<Py<PyAny>> {
    let e = epoch(epoch_id)?;
    if !["rewards", "explain", "rejections", "coverage", "flags", "trust"].contains(&name) {
        return Err(te(format!(
            "unknown epoch table {name:?}: rewards, explain, rejections, coverage, flags or trust"
        )));
    }
    let path = lake.join("epochs").join(e.to_string()).join(format!("{name}.parquet"));
    let batches = py
        .detach(|| {
            std::fs::read(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|b| tessera::tables::from_parquet(b.into()).map_err(|e| format!("{}: {e}", path.display())))
        })
        .map_err(te)?;
    let schema = match name {
        "rewards" => tessera::tables::rewards_schema(),
        "explain" => tessera::tables::explain_schema(),
        "rejections" => tessera::tables::rejections_schema(),
        "flags" => tessera::tables::flags_schema(),
        "trust" => tessera::tables::trust_schema(),
        _ => tessera::tables::coverage_schema(),
    };
    // Every layout as the table's schema (layout 4 writes explain's decimals with 18 digits).
    let batches = batches
        .iter()
        .map(|b| tessera::tables::conform(b, &schema).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(te)?;
    table(py, batches, schema)
}

/// Generate a synthetic fleet into a directory (DIR/<device>/<files>, registry.csv); JSON.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (out, seed=7, drivers=10, epochs=2, start="2026-W46", trips=2, minutes=10, camera=None))]
fn simulate(
    py: Python<'_>,
    out: PathBuf,
    seed: u64,
    drivers: u32,
    epochs: u32,
    start: &str,
    trips: u32,
    minutes: u32,
    camera: Option<&str>,
) -> PyResult<String> {
    let camera = match camera {
        None => None,
        Some("camm") => Some(tessera::simulate::camera::Kind::Camm),
        Some("blackvue-mp4") => Some(tessera::simulate::camera::Kind::BlackVue),
        Some(o) => return Err(te(format!("camera {o:?}: camm or blackvue-mp4"))),
    };
    let cfg = tessera::simulate::SimConfig {
        camera,
        seed,
        drivers,
        start: epoch(start)?,
        epochs,
        trips,
        minutes,
        ..Default::default()
    };
    let files = py.detach(|| -> Result<usize, String> {
        let fleet = tessera::simulate::simulate(&cfg);
        for f in &fleet.files {
            tessera::lake::write_atomic(&out.join(&f.device).join(&f.name), &f.bytes).map_err(|e| e.to_string())?;
        }
        tessera::lake::write_atomic(&out.join("registry.csv"), fleet.registry_csv.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(fleet.files.len())
    });
    json(&serde_json::json!({"files": files.map_err(te)?, "out": out}))
}

/// Draw an epoch's cells as a PNG map; returns the PNG bytes and a JSON summary.
#[pyfunction]
#[pyo3(signature = (lake, epoch_id, color_by="freshness", width=1200, res=None))]
fn render(
    py: Python<'_>,
    lake: PathBuf,
    epoch_id: &str,
    color_by: &str,
    width: u32,
    res: Option<u8>,
) -> PyResult<(Py<pyo3::types::PyBytes>, String)> {
    let e = epoch(epoch_id)?;
    let color_by: tessera::render::ColorBy = color_by.parse().map_err(te)?;
    let resolution = match res {
        None => None,
        Some(r) => Some(h3o::Resolution::try_from(r).map_err(|_| te(format!("res {r}: expected 0..=15")))?),
    };
    let map = py
        .detach(|| -> Result<tessera::render::Map, String> {
            let lake = Lake::open_existing(&lake).map_err(|x| x.to_string())?;
            let cells = tessera::geoparquet::epoch_cells(&lake, &e).map_err(|x| x.to_string())?;
            let opts = tessera::render::Options {
                color_by,
                width,
                map_height: None,
                resolution,
            };
            tessera::render::render(&e, &cells, &opts).map_err(|x| x.to_string())
        })
        .map_err(te)?;
    let legend: Vec<serde_json::Value> = map
        .legend
        .iter()
        .map(|l| serde_json::json!({"label": l.label, "color": format!("#{:02x}{:02x}{:02x}", l.color[0], l.color[1], l.color[2]), "cells": l.count}))
        .collect();
    let summary = json(&serde_json::json!({
        "width": map.width, "height": map.height, "cells": map.cells, "drawn": map.drawn,
        "drawn_resolution": u8::from(map.drawn_resolution), "scale": map.scale, "legend": legend,
    }))?;
    Ok((pyo3::types::PyBytes::new(py, &map.png).unbind(), summary))
}

/// The default policy as TOML.
#[pyfunction]
fn default_policy() -> String {
    Policy::default().to_toml()
}

#[pymodule]
fn _tessera(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tessera::cpu_supported().map_err(pyo3::exceptions::PyImportError::new_err)?;
    m.add("TesseraError", m.py().get_type::<TesseraError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    for f in [
        wrap_pyfunction!(parse_bytes, m)?,
        wrap_pyfunction!(read_file, m)?,
        wrap_pyfunction!(clean, m)?,
        wrap_pyfunction!(cover, m)?,
        wrap_pyfunction!(score, m)?,
        wrap_pyfunction!(allocate, m)?,
        wrap_pyfunction!(ingest, m)?,
        wrap_pyfunction!(run_epoch, m)?,
        wrap_pyfunction!(verify_epoch, m)?,
        wrap_pyfunction!(read_manifest, m)?,
        wrap_pyfunction!(proof, m)?,
        wrap_pyfunction!(explain, m)?,
        wrap_pyfunction!(diff_policy, m)?,
        wrap_pyfunction!(review, m)?,
        wrap_pyfunction!(epoch_table, m)?,
        wrap_pyfunction!(simulate, m)?,
        wrap_pyfunction!(default_policy, m)?,
        wrap_pyfunction!(render, m)?,
        wrap_pyfunction!(spark::spark_cover, m)?,
        wrap_pyfunction!(spark::spark_prior_row_groups, m)?,
        wrap_pyfunction!(spark::spark_prior, m)?,
        wrap_pyfunction!(spark::spark_score, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add_class::<spark::StagedDriver>()?;
    Ok(())
}
