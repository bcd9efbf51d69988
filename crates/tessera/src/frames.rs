//! Every stage as a function over Arrow record batches, for callers that hold tables rather than
//! a lake (the Python bindings, notebooks, Spark UDFs). Same kernels as the epoch pipeline,
//! under policy v1: the trust detectors (`[trust]`) look across sources, devices and epochs and
//! run only in the epoch pipeline, so these stages ignore the policy's `[trust]` section.
//!
//! Tables: *fixes* ([`crate::tables::fixes_schema`], plus `segment` after [`clean`]), *visits*
//! ([`visits_schema`]), *explain* ([`crate::tables::explain_schema`]), *allocation*
//! ([`allocation_schema`]).

use crate::cells::{cover_segment, Visit, VisitMap};
use crate::epoch::Epoch;
use crate::fix::Fix;
use crate::ingest::{self, LineCounts, Rejection};
use crate::novelty::{self, freshness::CellState, VisitRow};
use crate::policy::Policy;
use crate::quality::{self, Verdict};
use crate::registry::Registry;
use crate::tables::{self, RejectionRow};
use arrow_array::builder::{Float32Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{
    Array, ArrayRef, Decimal128Array, Float32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A table-level failure naming the column or row.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(pub String);

type Result<T> = std::result::Result<T, FrameError>;

fn err(m: impl Into<String>) -> FrameError {
    FrameError(m.into())
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T> {
    crate::tables::column(b, name).map_err(err)
}

/// Parse a trace into fixes, its rejection report and the line accounting.
///
/// ```
/// let (fixes, rej, lines) = tessera::frames::parse(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\njunk\n", "car-1", "mem");
/// assert_eq!(fixes.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
/// assert_eq!(rej.num_rows(), 1);
/// assert!(lines.balanced());
/// ```
pub fn parse(bytes: &[u8], device: &str, source: &str) -> (Vec<RecordBatch>, RecordBatch, LineCounts) {
    let t = tables_of(ingest::parse(bytes), device, source);
    (t.fixes, t.rejections, t.lines)
}

/// A parsed trace as tables: fixes, rejection report, IMU readings, accounting, telemetry.
#[derive(Debug)]
pub struct TraceTables {
    /// Fixes ([`crate::tables::fixes_schema`]), at least one (possibly empty) batch.
    pub fixes: Vec<RecordBatch>,
    /// The rejection report.
    pub rejections: RecordBatch,
    /// IMU readings ([`crate::tables::imu_schema`]), at least one (possibly empty) batch.
    pub imu: Vec<RecordBatch>,
    /// Where every line or sample went.
    pub lines: LineCounts,
    /// How camera telemetry was read, for camera files.
    pub telemetry: Option<ingest::telemetry::Telemetry>,
}

/// Read a trace file of any format as tables; a camera video is read by seeking to its
/// telemetry (bounded memory, whatever the video's size).
///
/// # Errors
/// [`FrameError`] naming the file when it cannot be opened or read.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let p = d.path().join("a.nmea");
/// std::fs::write(&p, b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n").unwrap();
/// let t = tessera::frames::read_file(&p, "car-1").unwrap();
/// assert_eq!((t.fixes[0].num_rows(), t.imu[0].num_rows()), (1, 0));
/// ```
pub fn read_file(path: &std::path::Path, device: &str) -> Result<TraceTables> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| err(format!("{name}: {e}"));
    let parsed = if crate::lake::is_mp4_file(path) {
        let f = std::fs::File::open(path).map_err(io)?;
        ingest::telemetry::parse_mp4(&mut std::io::BufReader::new(f), None)
    } else {
        ingest::parse(&std::fs::read(path).map_err(io)?)
    };
    Ok(tables_of(parsed, device, &name))
}

fn tables_of(p: ingest::Parsed, device: &str, source: &str) -> TraceTables {
    let mut fixes = tables::fixes_to_batches(device, &p.fixes);
    if fixes.is_empty() {
        fixes.push(RecordBatch::new_empty(tables::fixes_schema()));
    }
    let mut imu = tables::imu_to_batches(device, &p.imu);
    if imu.is_empty() {
        imu.push(RecordBatch::new_empty(tables::imu_schema()));
    }
    let rows: Vec<RejectionRow> = p
        .rejections
        .into_iter()
        .map(|r| RejectionRow {
            source: source.to_string(),
            device: device.to_string(),
            stage: "ingest",
            rejection: r,
        })
        .collect();
    TraceTables {
        fixes,
        rejections: tables::rejections_to_batch(&rows),
        imu,
        lines: p.lines,
        telemetry: p.telemetry,
    }
}

/// Fixes grouped per device, each in table order.
fn fixes_by_device(batches: &[RecordBatch]) -> Result<BTreeMap<String, Vec<Fix>>> {
    let mut out: BTreeMap<String, Vec<Fix>> = BTreeMap::new();
    for b in batches {
        let dev = col::<StringArray>(b, "device")?;
        let mut fixes = Vec::new();
        tables::batch_to_fixes(b, &mut fixes).map_err(err)?;
        for (i, f) in fixes.into_iter().enumerate() {
            out.entry(dev.value(i).to_string()).or_default().push(f);
        }
    }
    Ok(out)
}

/// Schema of cleaned fixes: the fixes schema plus `segment`.
///
/// ```
/// assert!(tessera::frames::segmented_schema().field_with_name("segment").is_ok());
/// ```
pub fn segmented_schema() -> SchemaRef {
    let mut fields: Vec<Field> = tables::fixes_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("segment", DataType::UInt32, false));
    Arc::new(Schema::new(fields))
}

/// Apply the policy's fix gates and trace checks per device (in table order): accepted fixes
/// with their segment number, and the rejected ones with reasons.
///
/// # Errors
/// [`FrameError`] naming a missing or mistyped column of the fixes schema.
///
/// ```
/// use tessera::{frames, policy::Policy};
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// let (fixes, _rejections, _lines) = frames::parse(&fleet.files[0].bytes, "car-001", "trip.nmea");
/// let policy = Policy::default();
/// let (accepted, rejected) = frames::clean(&fixes, &policy).unwrap();
/// let n_in: usize = fixes.iter().map(|b| b.num_rows()).sum();
/// assert_eq!(accepted.iter().map(|b| b.num_rows()).sum::<usize>() + rejected.num_rows(), n_in);
/// let visits = frames::cover(&accepted, &policy).unwrap();
/// let explain = frames::score(&[visits], &"2026-W46".parse().unwrap(), &[], &policy, None).unwrap();
/// assert_eq!(explain.schema(), tessera::tables::explain_schema());
/// ```
pub fn clean(fixes: &[RecordBatch], policy: &Policy) -> Result<(Vec<RecordBatch>, RecordBatch)> {
    let k = policy.kernels().map_err(|e| err(e.to_string()))?;
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (device, fs) in fixes_by_device(fixes)? {
        let verdicts = quality::clean(&fs, &k);
        let mut keep = Vec::new();
        let mut segs = Vec::new();
        for (f, v) in fs.into_iter().zip(verdicts) {
            match v {
                Verdict::Accepted(s) => {
                    keep.push(f);
                    segs.push(s);
                }
                Verdict::Rejected(r, d) => rejected.push(RejectionRow {
                    source: String::new(),
                    device: device.clone(),
                    stage: if matches!(
                        r,
                        ingest::Reason::TimeBackwards | ingest::Reason::DuplicateTime | ingest::Reason::Teleport
                    ) {
                        "trace"
                    } else {
                        "quality"
                    },
                    rejection: Rejection {
                        line: f.line,
                        reason: r,
                        detail: d,
                        time_ms: Some(f.time_ms),
                        lat: Some(f.lat),
                        lon: Some(f.lon),
                    },
                }),
            }
        }
        let mut start = 0;
        for b in tables::fixes_to_batches(&device, &keep) {
            let n = b.num_rows();
            let seg: ArrayRef = Arc::new(UInt32Array::from(segs[start..start + n].to_vec()));
            let mut cols = b.columns().to_vec();
            cols.push(seg);
            accepted.push(RecordBatch::try_new(segmented_schema(), cols).map_err(|e| err(e.to_string()))?);
            start += n;
        }
    }
    if accepted.is_empty() {
        accepted.push(RecordBatch::new_empty(segmented_schema()));
    }
    Ok((accepted, tables::rejections_to_batch(&rejected)))
}

/// Schema of visits.
///
/// ```
/// assert!(tessera::frames::visits_schema().field_with_name("cell").is_ok());
/// ```
pub fn visits_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("cell_lat", DataType::Float64, false),
        Field::new("cell_lng", DataType::Float64, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("first_time", ts.clone(), false),
        Field::new("last_time", ts, false),
        Field::new("fixes", DataType::UInt32, false),
        Field::new("best_hdop", DataType::Float32, false),
    ]))
}

/// Cover cleaned fixes (with `segment`) with H3 cells at the policy's resolution, path cells
/// included, deduplicated into visits sorted by (cell, device).
///
/// # Errors
/// [`FrameError`] naming a missing or mistyped column (`segment` comes from [`clean`]).
///
/// ```
/// // see `clean`: parse → clean → cover → score
/// ```
pub fn cover(cleaned: &[RecordBatch], policy: &Policy) -> Result<RecordBatch> {
    let k = policy.kernels().map_err(|e| err(e.to_string()))?;
    let mut per: BTreeMap<String, Vec<(u32, Fix)>> = BTreeMap::new();
    for b in cleaned {
        let dev = col::<StringArray>(b, "device")?;
        let seg = col::<UInt32Array>(b, "segment")?;
        let mut fixes = Vec::new();
        tables::batch_to_fixes(b, &mut fixes).map_err(err)?;
        for (i, f) in fixes.into_iter().enumerate() {
            per.entry(dev.value(i).to_string()).or_default().push((seg.value(i), f));
        }
    }
    let devices: Vec<String> = per.keys().cloned().collect();
    let mut map = VisitMap::default();
    for (di, (_, fs)) in per.iter().enumerate() {
        let mut i = 0;
        while i < fs.len() {
            let s = fs[i].0;
            let mut j = i;
            while j < fs.len() && fs[j].0 == s {
                j += 1;
            }
            let seg: Vec<&Fix> = fs[i..j].iter().map(|(_, f)| f).collect();
            cover_segment(&seg, di as u32, k.resolution, &mut map);
            i = j;
        }
    }
    let mut rows: Vec<VisitRow> = map
        .into_iter()
        .map(|((cell, device), visit)| VisitRow { cell, device, visit })
        .collect();
    rows.sort_by_key(|r| (r.cell, r.device));
    Ok(visits_batch(&rows, &devices))
}

fn visits_batch(rows: &[VisitRow], devices: &[String]) -> RecordBatch {
    let n = rows.len();
    let mut cell = UInt64Builder::with_capacity(n);
    let mut cell_id = StringBuilder::new();
    let (mut clat, mut clng) = (
        arrow_array::builder::Float64Builder::with_capacity(n),
        arrow_array::builder::Float64Builder::with_capacity(n),
    );
    let mut device = StringBuilder::new();
    let mut first = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut fixes = UInt32Builder::with_capacity(n);
    let mut hdop = Float32Builder::with_capacity(n);
    for r in rows {
        cell.append_value(r.cell);
        cell_id.append_value(crate::tables::cell_hex(r.cell, &mut [0u8; 16]));
        let ll = h3o::CellIndex::try_from(r.cell).map(h3o::LatLng::from).ok();
        clat.append_value(ll.map_or(f64::NAN, |l| l.lat()));
        clng.append_value(ll.map_or(f64::NAN, |l| l.lng()));
        device.append_value(&devices[r.device as usize]);
        first.append_value(r.visit.first_ms);
        last.append_value(r.visit.last_ms);
        fixes.append_value(r.visit.fixes);
        hdop.append_value(r.visit.best_hdop_centi as f32 / 100.0);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cell.finish()),
        Arc::new(cell_id.finish()),
        Arc::new(clat.finish()),
        Arc::new(clng.finish()),
        Arc::new(device.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(fixes.finish()),
        Arc::new(hdop.finish()),
    ];
    RecordBatch::try_new(visits_schema(), cols).expect("schema matches")
}

/// Score visits of `epoch` against a coverage state (the `coverage.parquet` of the previous
/// epoch, or none for a first epoch). With a registry, `recipient` is filled in.
///
/// # Errors
/// [`FrameError`] naming a missing or mistyped column, or a coverage table that cannot be read.
///
/// ```
/// // see `clean`: parse → clean → cover → score
/// ```
pub fn score(
    visits: &[RecordBatch],
    epoch: &Epoch,
    coverage: &[RecordBatch],
    policy: &Policy,
    registry: Option<&Registry>,
) -> Result<RecordBatch> {
    let k = policy.kernels().map_err(|e| err(e.to_string()))?;
    let mut raw: Vec<(u64, String, Visit)> = Vec::new();
    for b in visits {
        let cell = col::<UInt64Array>(b, "cell")?;
        let dev = col::<StringArray>(b, "device")?;
        let first = col::<TimestampMillisecondArray>(b, "first_time")?;
        let last = col::<TimestampMillisecondArray>(b, "last_time")?;
        let fixes = col::<UInt32Array>(b, "fixes")?;
        let hdop = col::<Float32Array>(b, "best_hdop")?;
        for i in 0..b.num_rows() {
            let v = Visit {
                first_ms: first.value(i),
                last_ms: last.value(i),
                fixes: fixes.value(i),
                best_hdop_centi: ((hdop.value(i) as f64) * 100.0).round() as u32,
            };
            raw.push((cell.value(i), dev.value(i).to_string(), v));
        }
    }
    let devices: Vec<String> = raw
        .iter()
        .map(|r| r.1.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let idx: BTreeMap<&str, u32> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i as u32))
        .collect();
    let mut rows: Vec<VisitRow> = raw
        .iter()
        .map(|(c, d, v)| VisitRow {
            cell: *c,
            device: idx[d.as_str()],
            visit: *v,
        })
        .collect();
    rows.sort_by_key(|r| (r.cell, r.device));
    for w in rows.windows(2) {
        if (w[0].cell, w[0].device) == (w[1].cell, w[1].device) {
            return Err(err(format!(
                "visits has two rows for cell {:x} device {}: merge passes first (cover does)",
                w[0].cell, devices[w[0].device as usize]
            )));
        }
    }
    let prior = crate::state::from_batches(coverage).map_err(err)?;
    let scored = novelty::score(
        &rows,
        &devices,
        &|c| prior.get(&c).copied().map(|s: CellState| s),
        epoch.index(),
        &k,
        &crate::places::Places::default(),
        None,
    );
    let wallets: Vec<String> = devices
        .iter()
        .map(|d| registry.and_then(|r| r.wallet(d)).unwrap_or_default().to_string())
        .collect();
    Ok(crate::tables::explain_batch(&scored, &devices, &wallets, &[]))
}

/// Schema of an allocation.
///
/// ```
/// assert!(tessera::frames::allocation_schema().field_with_name("amount").is_ok());
/// ```
pub fn allocation_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("recipient", DataType::Utf8, false),
        Field::new("points", tables::ppm_type(), false),
        Field::new("amount", tables::amount_type(), false),
    ]))
}

/// Allocate a pool over a table with `recipient` and `points` (Decimal128 with 6 places, as in
/// explain/rewards, or an unsigned integer column of millionths). Points of the same recipient are
/// summed first.
///
/// # Errors
/// [`FrameError`] for a missing `recipient`/`points` column or a pool the allocation refuses.
///
/// ```
/// use arrow_array::{ArrayRef, Decimal128Array, RecordBatch, StringArray};
/// use std::sync::Arc;
/// let points = Decimal128Array::from(vec![1_000_000i128, 2_000_000]).with_precision_and_scale(38, 6).unwrap();
/// let b = RecordBatch::try_from_iter([
///     ("recipient", Arc::new(StringArray::from(vec!["0xa", "0xb"])) as ArrayRef),
///     ("points", Arc::new(points) as ArrayRef),
/// ]).unwrap();
/// let out = tessera::frames::allocate(10, &[b]).unwrap();
/// assert_eq!(out.num_rows(), 2);
/// ```
pub fn allocate(pool: u128, points: &[RecordBatch]) -> Result<RecordBatch> {
    let mut per: BTreeMap<String, u128> = BTreeMap::new();
    for b in points {
        let r = col::<StringArray>(b, "recipient")?;
        let p = b
            .column_by_name("points")
            .ok_or_else(|| err("column \"points\" is missing"))?;
        for i in 0..b.num_rows() {
            if r.is_null(i) || p.is_null(i) {
                return Err(err(format!("row {i}: recipient and points must not be null")));
            }
            let v: u128 = if let Some(d) = p.as_any().downcast_ref::<Decimal128Array>() {
                if d.scale() != 6 {
                    return Err(err(format!("points has scale {}, expected 6 (millionths)", d.scale())));
                }
                u128::try_from(d.value(i)).map_err(|_| err(format!("row {i}: negative points")))?
            } else if let Some(u) = p.as_any().downcast_ref::<UInt64Array>() {
                u128::from(u.value(i))
            } else if let Some(s) = p.as_any().downcast_ref::<Int64Array>() {
                u128::try_from(s.value(i)).map_err(|_| err(format!("row {i}: negative points")))?
            } else {
                return Err(err(format!(
                    "points has type {}; use Decimal128(38,6) or integer millionths",
                    p.data_type()
                )));
            };
            *per.entry(r.value(i).to_string()).or_default() += v;
        }
    }
    let pts: Vec<(String, u128)> = per.into_iter().collect();
    let shares = crate::rewards::allocate(pool, &pts).map_err(|e| err(e.to_string()))?;
    let n = shares.len();
    let mut r = StringBuilder::new();
    let mut p = tables::decimal_builder(n, &tables::ppm_type());
    let mut a = tables::decimal_builder(n, &tables::amount_type());
    for s in &shares {
        r.append_value(&s.recipient);
        p.append_value(i128::try_from(s.points).map_err(|_| err("points overflow Decimal128"))?);
        a.append_value(i128::try_from(s.amount).map_err(|_| err("amount overflows Decimal128(38,0)"))?);
    }
    let cols: Vec<ArrayRef> = vec![Arc::new(r.finish()), Arc::new(p.finish()), Arc::new(a.finish())];
    RecordBatch::try_new(allocation_schema(), cols).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{simulate, SimConfig};

    #[test]
    fn table_stages_reproduce_the_pipeline_explain_rows() {
        let fleet = simulate(&SimConfig {
            drivers: 4,
            epochs: 1,
            trips: 1,
            minutes: 2,
            ..SimConfig::default()
        });
        let mut policy = Policy::default();
        policy.trust.enabled = false; // the table stages are policy v1
        let mut fixes = Vec::new();
        let d = tempfile::tempdir().unwrap();
        let lake = crate::lake::Lake::open(d.path()).unwrap();
        for f in &fleet.files {
            fixes.extend(parse(&f.bytes, &f.device, "x").0);
            lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
        }
        let reg = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
        let (clean_b, _rej) = clean(&fixes, &policy).unwrap();
        let visits = cover(&clean_b, &policy).unwrap();
        let epoch = SimConfig::default().start;
        let explain = score(&[visits], &epoch, &[], &policy, Some(&reg)).unwrap();
        // The unregistered device is scored here (no registry gate at this level), so compare
        // only registered devices' rows with the pipeline's explain.parquet.
        let out = crate::pipeline::compute(
            &lake,
            &crate::pipeline::EpochInputs {
                policy_text: policy.to_toml(),
                ..crate::pipeline::EpochInputs::new(epoch, 1000, reg.clone())
            },
            &crate::pipeline::no_progress,
        )
        .unwrap();
        let pipe = tables::from_parquet(out.files["explain.parquet"].clone().into()).unwrap();
        let rows = |b: &RecordBatch| -> BTreeSet<(u64, String)> {
            let c = b
                .column_by_name("cell")
                .unwrap()
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap();
            let d = b
                .column_by_name("device")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            (0..b.num_rows())
                .filter(|i| reg.wallet(d.value(*i)).is_some())
                .map(|i| (c.value(i), d.value(i).to_string()))
                .collect()
        };
        assert_eq!(rows(&explain), pipe.iter().flat_map(rows).collect());
    }

    #[test]
    fn allocate_table_sums_to_pool() {
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("recipient", DataType::Utf8, false),
                Field::new("points", DataType::UInt64, false),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "a"])),
                Arc::new(UInt64Array::from(vec![1u64, 1, 1])),
            ],
        )
        .unwrap();
        let a = allocate(10, &[b]).unwrap();
        let amt = a.column(2).as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!((amt.value(0), amt.value(1)), (7, 3));
    }
}
