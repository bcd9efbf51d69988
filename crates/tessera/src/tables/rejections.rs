//! Rejection reports: `rejections/<blake3>.parquet` (ingest) and `epochs/E/rejections.parquet`
//! (the epoch's gates, trace checks and registry).

use super::ts;
use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of rejection reports (ingest and epoch).
///
/// ```
/// assert!(tessera::tables::rejections_schema().field_with_name("reason").is_ok());
/// ```
pub fn rejections_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("line", DataType::UInt32, false),
        Field::new("time", ts(), true),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("stage", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
    ]))
}

/// One row of a rejection report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RejectionRow {
    /// BLAKE3 of the source.
    pub source: String,
    /// Device id.
    pub device: String,
    /// Stage: `ingest`, `quality`, `trace` or `registry`.
    pub stage: &'static str,
    /// The rejection.
    pub rejection: crate::report::Rejection,
}

/// Rejection rows → one record batch.
///
/// ```
/// use tessera::report::{Reason, Rejection};
/// let row = tessera::tables::RejectionRow { source: "ab".into(), device: "car-1".into(), stage: "ingest", rejection: Rejection::at(3, Reason::NotNmea, "junk") };
/// assert_eq!(tessera::tables::rejections_to_batch(&[row]).num_rows(), 1);
/// ```
pub fn rejections_to_batch(rows: &[RejectionRow]) -> RecordBatch {
    let n = rows.len();
    let mut source = StringBuilder::with_capacity(n, 64 * n);
    let mut device = StringBuilder::new();
    let mut line = UInt32Builder::with_capacity(n);
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut lat, mut lon) = (Float64Builder::with_capacity(n), Float64Builder::with_capacity(n));
    let mut stage = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut detail = StringBuilder::new();
    for r in rows {
        source.append_value(&r.source);
        device.append_value(&r.device);
        line.append_value(r.rejection.line);
        time.append_option(r.rejection.time_ms);
        lat.append_option(r.rejection.lat);
        lon.append_option(r.rejection.lon);
        stage.append_value(r.stage);
        reason.append_value(r.rejection.reason.as_str());
        detail.append_value(&r.rejection.detail);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(device.finish()),
        Arc::new(line.finish()),
        Arc::new(time.finish()),
        Arc::new(lat.finish()),
        Arc::new(lon.finish()),
        Arc::new(stage.finish()),
        Arc::new(reason.finish()),
        Arc::new(detail.finish()),
    ];
    RecordBatch::try_new(rejections_schema(), cols).expect("schema matches")
}
