//! The staged epoch ([`tessera::pipeline::staged`]) for `tessera.spark`: a driver object holding
//! the run between Spark's actions, and the functions Spark's Python workers call inside
//! `mapInArrow` / `cogroup().applyInArrow` (Arrow batches in and out, the GIL released).

use crate::{epoch, table, te};
use arrow_array::builder::{Decimal128Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tessera::cells::Visit;
use tessera::lake::Lake;
use tessera::novelty::freshness::CellState;
use tessera::novelty::VisitRow;
use tessera::pipeline::staged::{RecipientPoints, SourcesDone, StagedEpoch};
use tessera::pipeline::{EpochRun, RunOptions};

/// Visits as they go to Spark: the bucket (`cell >> shift`), the H3 cell and the visit.
fn visits_schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("bucket", DataType::Int64),
        f("cell", DataType::Int64),
        f("device", DataType::Int32),
        f("first_ms", DataType::Int64),
        f("last_ms", DataType::Int64),
        f("fixes", DataType::Int64),
        f("hdop_centi", DataType::Int64),
    ]))
}

/// The prior coverage state as it goes to Spark.
fn prior_schema() -> SchemaRef {
    let f = |n: &str| Field::new(n, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        f("bucket"),
        f("cell"),
        f("first_epoch"),
        f("last_epoch"),
        f("times_covered"),
    ]))
}

/// One bucket's points per recipient, for Spark to sum.
fn points_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("recipient", DataType::Utf8, false),
        Field::new("points", DataType::Decimal128(38, 0), false),
        Field::new("cells", DataType::Int64, false),
        Field::new(
            "devices",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            false,
        ),
    ]))
}

/// The worker's copy of the run, rebuilt once per scratch directory (Python workers are reused
/// across tasks).
fn staged(scratch: &Path) -> PyResult<Arc<StagedEpoch>> {
    static CACHE: Mutex<Option<(PathBuf, Arc<StagedEpoch>)>> = Mutex::new(None);
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, s)) = c.as_ref()
        && p == scratch
    {
        return Ok(s.clone());
    }
    let s = Arc::new(StagedEpoch::open(scratch).map_err(te)?);
    *c = Some((scratch.to_path_buf(), s.clone()));
    Ok(s)
}

fn shift_ok(shift: u32) -> PyResult<u32> {
    if shift > 63 {
        return Err(te(format!("bucket shift {shift} is above 63")));
    }
    Ok(shift)
}

/// Stage 1 on a worker: clean and cover source `index`; its visits with their bucket.
#[pyfunction]
pub fn spark_cover(py: Python<'_>, scratch: PathBuf, index: usize, shift: u32) -> PyResult<Py<PyAny>> {
    let shift = shift_ok(shift)?;
    let s = staged(&scratch)?;
    let rows = py.detach(|| s.cover_source(index)).map_err(te)?;
    let n = rows.len();
    let mut cols: Vec<Int64Builder> = (0..6).map(|_| Int64Builder::with_capacity(n)).collect();
    let mut device = Int32Builder::with_capacity(n);
    for r in &rows {
        let v = &r.visit;
        let vals = [
            (r.cell >> shift) as i64,
            r.cell as i64,
            v.first_ms,
            v.last_ms,
            i64::from(v.fixes),
            i64::from(v.best_hdop_centi),
        ];
        for (b, x) in cols.iter_mut().zip(vals) {
            b.append_value(x);
        }
        device.append_value(r.device as i32);
    }
    let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    arrays.insert(2, Arc::new(device.finish()));
    let batch = RecordBatch::try_new(visits_schema(), arrays).map_err(te)?;
    table(py, vec![batch], visits_schema())
}

/// Row groups of the prior coverage state (driver).
#[pyfunction]
pub fn spark_prior_row_groups(py: Python<'_>, scratch: PathBuf) -> PyResult<usize> {
    let s = staged(&scratch)?;
    py.detach(|| s.prior_row_groups()).map_err(te)
}

/// The prior coverage state's rows of one row group, with their bucket.
#[pyfunction]
pub fn spark_prior(py: Python<'_>, scratch: PathBuf, row_group: usize, shift: u32) -> PyResult<Py<PyAny>> {
    let shift = shift_ok(shift)?;
    let s = staged(&scratch)?;
    let rows = py.detach(|| s.prior_rows(row_group)).map_err(te)?;
    let mut cols: Vec<Int64Builder> = (0..5).map(|_| Int64Builder::with_capacity(rows.len())).collect();
    for (cell, st) in &rows {
        let vals = [
            (cell >> shift) as i64,
            *cell as i64,
            st.first_epoch,
            st.last_epoch,
            i64::from(st.times_covered),
        ];
        for (b, x) in cols.iter_mut().zip(vals) {
            b.append_value(x);
        }
    }
    let arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    let batch = RecordBatch::try_new(prior_schema(), arrays).map_err(te)?;
    table(py, vec![batch], prior_schema())
}

fn i64_col<'a>(b: &'a RecordBatch, name: &str) -> PyResult<&'a Int64Array> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .filter(|c| c.null_count() == 0)
        .ok_or_else(|| te(format!("column {name}: missing, not int64 or with nulls")))
}

fn u32_of(x: i64, name: &str) -> PyResult<u32> {
    u32::try_from(x).map_err(|_| te(format!("column {name}: {x} is out of range")))
}

fn visits_of(batches: &[RecordBatch]) -> PyResult<Vec<VisitRow>> {
    let mut out = Vec::new();
    for b in batches {
        let device = b
            .column_by_name("device")
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
            .filter(|c| c.null_count() == 0)
            .ok_or_else(|| te("column device: missing, not int32 or with nulls"))?;
        let (cell, first, last) = (i64_col(b, "cell")?, i64_col(b, "first_ms")?, i64_col(b, "last_ms")?);
        let (fixes, hdop) = (i64_col(b, "fixes")?, i64_col(b, "hdop_centi")?);
        for i in 0..b.num_rows() {
            out.push(VisitRow {
                cell: cell.value(i) as u64,
                device: u32::try_from(device.value(i)).map_err(|_| te("column device: negative"))?,
                visit: Visit {
                    first_ms: first.value(i),
                    last_ms: last.value(i),
                    fixes: u32_of(fixes.value(i), "fixes")?,
                    best_hdop_centi: u32_of(hdop.value(i), "hdop_centi")?,
                },
            });
        }
    }
    Ok(out)
}

fn prior_of(batches: &[RecordBatch]) -> PyResult<Vec<(u64, CellState)>> {
    let mut out = Vec::new();
    for b in batches {
        let (cell, first, last) = (
            i64_col(b, "cell")?,
            i64_col(b, "first_epoch")?,
            i64_col(b, "last_epoch")?,
        );
        let times = i64_col(b, "times_covered")?;
        for i in 0..b.num_rows() {
            let st = CellState {
                first_epoch: first.value(i),
                last_epoch: last.value(i),
                times_covered: u32_of(times.value(i), "times_covered")?,
            };
            out.push((cell.value(i) as u64, st));
        }
    }
    Ok(out)
}

/// Stage 3 on a worker: score one bucket (its visits and prior state, as Spark's cogroup hands
/// them over); per-recipient points for Spark to sum.
#[pyfunction]
pub fn spark_score(
    py: Python<'_>,
    scratch: PathBuf,
    bucket: i64,
    visits: PyTable,
    prior: PyTable,
) -> PyResult<Py<PyAny>> {
    let s = staged(&scratch)?;
    let v = visits_of(&visits.into_inner().0)?;
    let p = prior_of(&prior.into_inner().0)?;
    let per = py.detach(|| s.score_bucket(bucket as u64, v, p)).map_err(te)?;
    let n = per.len();
    let mut r = StringBuilder::new();
    let mut pts = Decimal128Builder::with_capacity(n)
        .with_precision_and_scale(38, 0)
        .map_err(te)?;
    let mut cells = Int64Builder::with_capacity(n);
    let mut devices = ListBuilder::new(Int32Builder::new());
    for (w, e) in &per {
        r.append_value(w);
        pts.append_value(i128::try_from(e.points).map_err(te)?);
        cells.append_value(e.cells as i64);
        for d in &e.devices {
            devices.values().append_value(*d as i32);
        }
        devices.append(true);
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(r.finish()),
        Arc::new(pts.finish()),
        Arc::new(cells.finish()),
        Arc::new(devices.finish()),
    ];
    let batch = RecordBatch::try_new(points_schema(), arrays).map_err(te)?;
    table(py, vec![batch], points_schema())
}

struct Driver {
    lake: Lake,
    staging: PathBuf,
    opts: RunOptions,
    staged: StagedEpoch,
    done: Option<SourcesDone>,
}

/// The driver's side of a staged epoch run: planned into a staging directory of the lake, the
/// scratch directory inside it (shared with the workers), published by `finish`.
#[pyclass(module = "tessera._tessera")]
pub struct StagedDriver {
    inner: Mutex<Option<Driver>>,
    scratch: PathBuf,
    sources: usize,
}

#[pymethods]
impl StagedDriver {
    #[new]
    #[pyo3(signature = (lake, epoch_id, pool=None, registry_path=None, policy_path=None, replace=false, no_prior=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        lake: PathBuf,
        epoch_id: &str,
        pool: Option<u128>,
        registry_path: Option<PathBuf>,
        policy_path: Option<PathBuf>,
        replace: bool,
        no_prior: bool,
    ) -> PyResult<Self> {
        let e = epoch(epoch_id)?;
        let lake = Lake::open_existing(&lake).map_err(te)?;
        let mut inputs = py
            .detach(|| crate::epoch_inputs(&lake, e, pool, registry_path, policy_path))
            .map_err(te)?;
        let opts = RunOptions { replace, no_prior };
        // A published epoch is recomputed in the layout and trust rules it was published in, as
        // the CLI does.
        if let Some((layout, rules)) = tessera::pipeline::published_terms(&lake, &e).map_err(te)? {
            (inputs.layout, inputs.trust_rules) = (layout, rules);
        }
        let staging = tessera::pipeline::prepare(&lake, &e, opts).map_err(te)?;
        // Unique per run: a Python worker keeps the run it last served by this path.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let scratch = staging.join(format!(".spark-{nonce}"));
        let planned = py.detach(|| StagedEpoch::plan(lake.clone(), inputs, &scratch));
        let staged = match planned {
            Ok(s) => s,
            Err(x) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(te(x));
            }
        };
        let sources = staged.sources();
        Ok(StagedDriver {
            inner: Mutex::new(Some(Driver {
                lake,
                staging,
                opts,
                staged,
                done: None,
            })),
            scratch,
            sources,
        })
    }

    /// The scratch directory the workers share.
    #[getter]
    fn scratch(&self) -> String {
        self.scratch.display().to_string()
    }

    /// Sources to cover (`spark_cover(scratch, 0..sources, shift)`).
    #[getter]
    fn sources(&self) -> usize {
        self.sources
    }

    /// After stage 1: fold the sources' parts, write `rejections.parquet` and the trust files,
    /// and the verdicts the workers score with.
    fn fold_sources(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let d = g.as_mut().ok_or_else(|| te("this run is finished"))?;
        let done = py.detach(|| d.staged.fold_sources(&d.staging)).map_err(te)?;
        d.done = Some(done);
        Ok(())
    }

    /// After stage 3: fold the scored buckets, check Spark's sums `[(recipient, points, cells,
    /// devices)]` against them, write every file and publish the epoch; the summary as JSON.
    fn finish(&self, py: Python<'_>, sums: Vec<(String, String, u64, Vec<u32>)>) -> PyResult<String> {
        let d = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| te("this run is finished"))?;
        let mut engine = BTreeMap::new();
        for (w, p, cells, mut devices) in sums {
            devices.sort_unstable();
            let points = p.parse::<u128>().map_err(|x| te(format!("points {p:?} of {w}: {x}")))?;
            engine.insert(w, RecipientPoints { points, cells, devices });
        }
        let out = py.detach(|| -> tessera::lake::Result<EpochRun> {
            let done = d
                .done
                .ok_or_else(|| tessera::lake::Error::Invalid("fold_sources was not called".into()))?;
            let e = d.staged.epoch();
            match d.staged.finish(done, &d.staging, &engine) {
                Ok(run) => tessera::pipeline::commit(&d.lake, &e, &d.staging, run, d.opts),
                Err(x) => {
                    let _ = std::fs::remove_dir_all(&d.staging);
                    Err(x)
                }
            }
        });
        let run = out.map_err(te)?;
        let mut v = serde_json::to_value(&run.summary).map_err(te)?;
        v["unchanged"] = serde_json::Value::Bool(run.unchanged);
        serde_json::to_string(&v).map_err(te)
    }

    /// Give up: remove the staging directory (nothing is published). Call it once the run's
    /// tasks have stopped; a removal that races a file still being created is retried.
    fn abort(&self, py: Python<'_>) {
        if let Some(d) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take() {
            py.detach(|| remove_staging(&d.staging));
        }
    }
}

/// Remove a staging directory, retrying for up to ~2 s while a straggling writer makes
/// `remove_dir_all` fail (`ENOTEMPTY`); what is left then is removed by the lake's recovery
/// once it is an hour old, and is never published.
fn remove_staging(dir: &Path) {
    for _ in 0..40 {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => return,
        }
    }
}
