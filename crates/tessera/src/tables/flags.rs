//! `epochs/E/flags.parquet`: the trust evidence, one row per finding, sorted by (device, start,
//! end, detector, source); `epochs/E/fingerprints.parquet`: the anchors of the epoch's paid
//! traces (the replay detector's memory); `epochs/E/trust.parquet`: each device's reputation.

use super::{column, ppm_type, ts};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// One row of `flags.parquet`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct FlagRow {
    /// Device id.
    pub device: String,
    /// First time concerned, UTC ms.
    pub start_ms: i64,
    /// Last time concerned, UTC ms.
    pub end_ms: i64,
    /// Detector (`replay`, `impossible_bridge`…).
    pub detector: String,
    /// Source content hash (empty for device-level rows such as `reputation`).
    pub source: String,
    /// Source file name as uploaded.
    pub source_name: String,
    /// Effect (`withhold_window`, `multiplier`…).
    pub effect: String,
    /// Measured value with its unit.
    pub measured: String,
    /// Threshold with its unit.
    pub threshold: String,
    /// Policy key of the threshold.
    pub policy_key: String,
    /// Fixes withheld or skipped.
    pub fixes: u64,
    /// Metres of path withheld or not filled.
    pub meters: u64,
    /// For people.
    pub detail: String,
}

/// Schema of `epochs/E/flags.parquet`.
///
/// ```
/// assert!(tessera::tables::flags_schema().field_with_name("policy_key").is_ok());
/// ```
pub fn flags_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("start_time", ts(), false),
        Field::new("end_time", ts(), false),
        Field::new("detector", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("source_name", DataType::Utf8, false),
        Field::new("effect", DataType::Utf8, false),
        Field::new("measured", DataType::Utf8, false),
        Field::new("threshold", DataType::Utf8, false),
        Field::new("policy_key", DataType::Utf8, false),
        Field::new("fixes", DataType::UInt64, false),
        Field::new("meters", DataType::UInt64, false),
        Field::new("detail", DataType::Utf8, false),
    ]))
}

/// Flag rows → one record batch (in the order given).
///
/// ```
/// assert_eq!(tessera::tables::flags_batch(&[]).num_rows(), 0);
/// ```
pub fn flags_batch(rows: &[FlagRow]) -> RecordBatch {
    let s = |f: &dyn Fn(&FlagRow) -> &str| {
        let mut b = StringBuilder::new();
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let t = |f: &dyn Fn(&FlagRow) -> i64| {
        let mut b = TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let u = |f: &dyn Fn(&FlagRow) -> u64| {
        let mut b = UInt64Builder::with_capacity(rows.len());
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let cols = vec![
        s(&|r| &r.device),
        t(&|r| r.start_ms),
        t(&|r| r.end_ms),
        s(&|r| &r.detector),
        s(&|r| &r.source),
        s(&|r| &r.source_name),
        s(&|r| &r.effect),
        s(&|r| &r.measured),
        s(&|r| &r.threshold),
        s(&|r| &r.policy_key),
        u(&|r| r.fixes),
        u(&|r| r.meters),
        s(&|r| &r.detail),
    ];
    RecordBatch::try_new(flags_schema(), cols).expect("flags batch matches its schema")
}

/// The rows of a `flags.parquet` batch.
///
/// # Errors
/// A message naming a missing or mistyped column.
///
/// ```
/// let b = tessera::tables::flags_batch(&[]);
/// assert!(tessera::tables::flags_rows(&b).unwrap().is_empty());
/// ```
pub fn flags_rows(b: &RecordBatch) -> Result<Vec<FlagRow>, String> {
    let s = |n: &str| column::<StringArray>(b, n);
    let t = |n: &str| column::<TimestampMillisecondArray>(b, n);
    let u = |n: &str| column::<UInt64Array>(b, n);
    let (device, start, end, detector, source, name) = (
        s("device")?,
        t("start_time")?,
        t("end_time")?,
        s("detector")?,
        s("source")?,
        s("source_name")?,
    );
    let (effect, measured, threshold, key, fixes, meters, detail) = (
        s("effect")?,
        s("measured")?,
        s("threshold")?,
        s("policy_key")?,
        u("fixes")?,
        u("meters")?,
        s("detail")?,
    );
    Ok((0..b.num_rows())
        .map(|i| FlagRow {
            device: device.value(i).into(),
            start_ms: start.value(i),
            end_ms: end.value(i),
            detector: detector.value(i).into(),
            source: source.value(i).into(),
            source_name: name.value(i).into(),
            effect: effect.value(i).into(),
            measured: measured.value(i).into(),
            threshold: threshold.value(i).into(),
            policy_key: key.value(i).into(),
            fixes: fixes.value(i),
            meters: meters.value(i),
            detail: detail.value(i).into(),
        })
        .collect())
}

/// One anchor of a paid trace: `(source hash, segment, cell, time ms)`.
pub type AnchorRow = (String, u32, u64, i64);

/// Schema of `epochs/E/fingerprints.parquet`.
///
/// ```
/// assert_eq!(tessera::tables::fingerprints_schema().fields().len(), 5);
/// ```
pub fn fingerprints_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("segment", DataType::UInt32, false),
        Field::new("cell", DataType::UInt64, false),
        Field::new("time", DataType::Int64, false),
    ]))
}

/// `(device, anchor)` rows → one batch.
///
/// ```
/// let b = tessera::tables::fingerprints_batch(&[("car-1".into(), ("ab".into(), 0, 5, 7))]);
/// assert_eq!(tessera::tables::fingerprints_rows(&b).unwrap()[0].1 .3, 7);
/// ```
pub fn fingerprints_batch(rows: &[(String, AnchorRow)]) -> RecordBatch {
    fingerprints_batch_of(
        rows.iter()
            .map(|(d, (s, g, c, t))| (d.as_str(), s.as_str(), *g, *c, *t)),
    )
}

/// The batch of [`fingerprints_batch`] from borrowed rows `(device, source hash, segment, cell,
/// time ms)`: an epoch's anchors without a copy of two strings per row.
///
/// ```
/// let a = tessera::tables::fingerprints_batch(&[("car-1".into(), ("ab".into(), 0, 5, 7))]);
/// let b = tessera::tables::fingerprints_batch_of([("car-1", "ab", 0, 5, 7)].into_iter());
/// assert_eq!(a, b);
/// ```
pub fn fingerprints_batch_of<'a>(rows: impl Iterator<Item = (&'a str, &'a str, u32, u64, i64)>) -> RecordBatch {
    let (mut d, mut s) = (StringBuilder::new(), StringBuilder::new());
    let (mut g, mut c, mut t) = (UInt32Builder::new(), UInt64Builder::new(), Int64Builder::new());
    for (dev, src, seg, cell, time) in rows {
        d.append_value(dev);
        s.append_value(src);
        g.append_value(seg);
        c.append_value(cell);
        t.append_value(time);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(d.finish()),
        Arc::new(s.finish()),
        Arc::new(g.finish()),
        Arc::new(c.finish()),
        Arc::new(t.finish()),
    ];
    RecordBatch::try_new(fingerprints_schema(), cols).expect("fingerprints batch matches its schema")
}

/// The rows of a `fingerprints.parquet` batch.
///
/// # Errors
/// A message naming a missing or mistyped column.
///
/// ```
/// // see `fingerprints_batch`
/// ```
pub fn fingerprints_rows(b: &RecordBatch) -> Result<Vec<(String, AnchorRow)>, String> {
    Ok(fingerprints_rows_of(b)?
        .map(|(d, s, g, c, t)| (d.into(), (s.into(), g, c, t)))
        .collect())
}

/// The rows of a `fingerprints.parquet` batch, borrowed from it: `(device, source hash,
/// segment, cell, time ms)` (no string copied per row: a billion-fix week has ~5·10^7 rows).
///
/// # Errors
/// A message naming a missing or mistyped column.
///
/// ```
/// let b = tessera::tables::fingerprints_batch_of([("car-1", "ab", 0, 5, 7)].into_iter());
/// let rows: Vec<_> = tessera::tables::fingerprints_rows_of(&b).unwrap().collect();
/// assert_eq!(rows, [("car-1", "ab", 0, 5, 7)]);
/// ```
pub fn fingerprints_rows_of(b: &RecordBatch) -> Result<impl Iterator<Item = (&str, &str, u32, u64, i64)> + '_, String> {
    let (d, s) = (column::<StringArray>(b, "device")?, column::<StringArray>(b, "source")?);
    let (g, c, t) = (
        column::<UInt32Array>(b, "segment")?,
        column::<UInt64Array>(b, "cell")?,
        column::<Int64Array>(b, "time")?,
    );
    Ok((0..b.num_rows()).map(move |i| (d.value(i), s.value(i), g.value(i), c.value(i), t.value(i))))
}

/// Schema of `epochs/E/trust.parquet`: each device's reputation after the epoch (ppm decimal)
/// and whether the epoch had evidence of cheating against it.
///
/// ```
/// assert!(tessera::tables::trust_schema().field_with_name("reputation").is_ok());
/// ```
pub fn trust_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("reputation", ppm_type(), false),
        Field::new("flagged", DataType::Boolean, false),
    ]))
}

/// `(device, reputation ppm, flagged)` rows → one batch.
///
/// ```
/// let b = tessera::tables::trust_batch(&[("car-1".into(), 750_000, true)]);
/// assert_eq!(tessera::tables::trust_rows(&b).unwrap(), vec![("car-1".to_string(), 750_000, true)]);
/// ```
pub fn trust_batch(rows: &[(String, u64, bool)]) -> RecordBatch {
    let mut d = StringBuilder::new();
    let mut r = super::decimal_builder(rows.len(), &ppm_type());
    let mut f = BooleanBuilder::new();
    for (dev, rep, flagged) in rows {
        d.append_value(dev);
        r.append_value(i128::from(*rep));
        f.append_value(*flagged);
    }
    let cols: Vec<ArrayRef> = vec![Arc::new(d.finish()), Arc::new(r.finish()), Arc::new(f.finish())];
    RecordBatch::try_new(trust_schema(), cols).expect("trust batch matches its schema")
}

/// The rows of a `trust.parquet` batch.
///
/// # Errors
/// A message naming a missing or mistyped column, or a reputation outside 0..=1.
///
/// ```
/// // see `trust_batch`
/// ```
pub fn trust_rows(b: &RecordBatch) -> Result<Vec<(String, u64, bool)>, String> {
    let d = column::<StringArray>(b, "device")?;
    let r = column::<Decimal128Array>(b, "reputation")?;
    let f = column::<BooleanArray>(b, "flagged")?;
    (0..b.num_rows())
        .map(|i| {
            let v = r.value(i);
            if r.is_null(i) || !(0..=1_000_000).contains(&v) {
                return Err(format!("reputation of {} is not in 0..=1", d.value(i)));
            }
            Ok((d.value(i).to_string(), v as u64, f.value(i)))
        })
        .collect()
}
