//! Arrow schemas of every lake table and their Parquet encoding. Writers are deterministic: the
//! same rows give the same bytes (fixed compression, row-group size and `created_by`).

use crate::fix::Fix;
use arrow_array::builder::{
    Decimal128Builder, Float32Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::{
    Array, ArrayRef, Float32Array, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
    UInt8Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use std::io::Write;
use std::sync::Arc;

/// Rows per record batch when streaming.
pub const BATCH_ROWS: usize = 65_536;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Decimal type for base-unit amounts.
pub fn amount_type() -> DataType {
    DataType::Decimal128(38, 0)
}

/// Decimal type for points and multipliers (millionths).
pub fn ppm_type() -> DataType {
    DataType::Decimal128(38, 6)
}

/// Schema of `fixes/<blake3>.parquet`.
pub fn fixes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("time", ts(), false),
        Field::new("lat", DataType::Float64, false),
        Field::new("lon", DataType::Float64, false),
        Field::new("alt_m", DataType::Float32, true),
        Field::new("quality", DataType::UInt8, false),
        Field::new("sats", DataType::UInt8, true),
        Field::new("hdop", DataType::Float32, true),
        Field::new("speed_mps", DataType::Float32, true),
        Field::new("course_deg", DataType::Float32, true),
        Field::new("line", DataType::UInt32, false),
        Field::new("talker", DataType::Utf8, false),
    ]))
}

/// Schema of rejection reports (ingest and epoch).
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

/// Schema of `epochs/E/explain.parquet`.
pub fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("recipient", DataType::Utf8, false),
        Field::new("first_time", ts(), false),
        Field::new("last_time", ts(), false),
        Field::new("fixes", DataType::UInt32, false),
        Field::new("best_hdop", DataType::Float32, false),
        Field::new("rank", DataType::UInt32, false),
        Field::new("age_epochs", DataType::Int64, true),
        Field::new("rank_w", ppm_type(), false),
        Field::new("freshness_w", ppm_type(), false),
        Field::new("quality_w", ppm_type(), false),
        Field::new("region_w", ppm_type(), false),
        Field::new("points", ppm_type(), false),
    ]))
}

/// Schema of `epochs/E/rewards.parquet`.
pub fn rewards_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("recipient", DataType::Utf8, false),
        Field::new("amount", amount_type(), false),
        Field::new("points", ppm_type(), false),
        Field::new("devices", DataType::UInt32, false),
        Field::new("cells", DataType::UInt64, false),
        Field::new("leaf", DataType::Utf8, false),
        Field::new(
            "proof",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
    ]))
}

/// Schema of `epochs/E/coverage.parquet` (coverage state after the epoch).
pub fn coverage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("first_epoch", DataType::Utf8, false),
        Field::new("last_epoch", DataType::Utf8, false),
        Field::new("times_covered", DataType::UInt32, false),
    ]))
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")))
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("tessera {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Encode record batches as one Parquet file in memory.
pub fn to_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props()))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(buf)
}

/// A Parquet writer into memory with the same deterministic settings as [`to_parquet`]: writing
/// the same batches in the same order gives the same bytes.
pub fn memory_writer(schema: &SchemaRef) -> Result<ArrowWriter<Vec<u8>>, parquet::errors::ParquetError> {
    ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props()))
}

/// A file being written whose SHA-256 is computed from the bytes as they pass, so a large output
/// is never read back to be hashed.
pub struct HashedFile {
    file: std::io::BufWriter<std::fs::File>,
    hasher: sha2::Sha256,
}

impl HashedFile {
    /// Create (truncate) `path`.
    pub fn create(path: &std::path::Path) -> std::io::Result<HashedFile> {
        Ok(HashedFile {
            file: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?),
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        })
    }

    /// Flush and fsync; the SHA-256 (lowercase hex) of every byte written.
    pub fn finish(self) -> std::io::Result<String> {
        let f = self.file.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(hex::encode(sha2::Digest::finalize(self.hasher)))
    }
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Streams rows into a Parquet file, always in record batches of exactly [`BATCH_ROWS`] rows
/// (the last one shorter), so the bytes depend only on the row sequence, never on how callers
/// chunked their work. Full batches are built a few at a time in parallel and written in order.
///
/// ```
/// use tessera::io::{BatchSink, coverage_schema};
/// use tessera::{novelty::freshness::CellState, state::rows_to_batch};
/// let s = CellState { first_epoch: 1, last_epoch: 1, times_covered: 1 };
/// let mut a = BatchSink::new(Vec::new(), &coverage_schema(), rows_to_batch).unwrap();
/// a.extend([(1u64, s), (2, s)]).unwrap();
/// a.extend([(3u64, s)]).unwrap();
/// let mut b = BatchSink::new(Vec::new(), &coverage_schema(), rows_to_batch).unwrap();
/// b.extend([(1u64, s), (2, s), (3, s)]).unwrap();
/// assert_eq!(a.finish().unwrap(), b.finish().unwrap());
/// ```
pub struct BatchSink<T, W: Write + Send, B> {
    writer: ArrowWriter<W>,
    pending: Vec<T>,
    rows: u64,
    build: B,
    empty_batch: bool,
}

impl<T, W, B> BatchSink<T, W, B>
where
    T: Send + Sync,
    W: Write + Send,
    B: Fn(&[T]) -> RecordBatch + Sync,
{
    /// A sink writing `schema` rows into `w`; `build` turns rows into a batch.
    pub fn new(w: W, schema: &SchemaRef, build: B) -> Result<Self, parquet::errors::ParquetError> {
        Ok(BatchSink {
            writer: ArrowWriter::try_new(w, schema.clone(), Some(props()))?,
            pending: Vec::new(),
            rows: 0,
            build,
            empty_batch: false,
        })
    }

    /// When no row at all is written, write one empty batch (a row group of 0 rows) instead of
    /// none.
    pub fn with_empty_batch(mut self) -> Self {
        self.empty_batch = true;
        self
    }

    fn write_full_batches(&mut self) -> Result<(), parquet::errors::ParquetError> {
        let full = self.pending.len() / BATCH_ROWS * BATCH_ROWS;
        for group in self.pending[..full].chunks(BATCH_ROWS * 4) {
            let batches: Vec<RecordBatch> = group.par_chunks(BATCH_ROWS).map(&self.build).collect();
            for b in &batches {
                self.writer.write(b)?;
            }
        }
        self.pending.drain(..full);
        Ok(())
    }

    /// Append rows.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = T>) -> Result<(), parquet::errors::ParquetError> {
        let before = self.pending.len();
        self.pending.extend(rows);
        self.rows += (self.pending.len() - before) as u64;
        if self.pending.len() >= BATCH_ROWS * 4 {
            self.write_full_batches()?;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flush, close the Parquet file and return the writer.
    pub fn finish(mut self) -> Result<W, parquet::errors::ParquetError> {
        self.write_full_batches()?;
        if !self.pending.is_empty() || (self.rows == 0 && self.empty_batch) {
            let b = (self.build)(&self.pending);
            self.writer.write(&b)?;
        }
        self.writer.into_inner()
    }
}

/// Decode all record batches of a Parquet file held in memory.
pub fn from_parquet(bytes: bytes::Bytes) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    from_parquet_batched(bytes, BATCH_ROWS)
}

/// Decode a Parquet file held in memory into record batches of at most `batch_rows` rows.
pub fn from_parquet_batched(
    bytes: bytes::Bytes,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(batch_rows.max(1))
        .build()?;
    reader
        .map(|b| b.map_err(|e| parquet::errors::ParquetError::General(e.to_string())))
        .collect()
}

/// Fixes → record batches of at most [`BATCH_ROWS`].
pub fn fixes_to_batches(device: &str, fixes: &[Fix]) -> Vec<RecordBatch> {
    fixes_to_batches_sized(device, fixes, BATCH_ROWS)
}

/// Fixes → record batches of at most `batch_rows`.
pub fn fixes_to_batches_sized(device: &str, fixes: &[Fix], batch_rows: usize) -> Vec<RecordBatch> {
    fixes
        .chunks(batch_rows.max(1))
        .map(|chunk| {
            let n = chunk.len();
            let mut dev = StringBuilder::with_capacity(n, n * device.len());
            let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            let (mut lat, mut lon) = (Float64Builder::with_capacity(n), Float64Builder::with_capacity(n));
            let mut alt = Float32Builder::with_capacity(n);
            let mut q = UInt8Builder::with_capacity(n);
            let mut sats = UInt8Builder::with_capacity(n);
            let (mut hdop, mut speed, mut course) = (
                Float32Builder::with_capacity(n),
                Float32Builder::with_capacity(n),
                Float32Builder::with_capacity(n),
            );
            let mut line = UInt32Builder::with_capacity(n);
            let mut talker = StringBuilder::with_capacity(n, 2 * n);
            for f in chunk {
                dev.append_value(device);
                time.append_value(f.time_ms);
                lat.append_value(f.lat);
                lon.append_value(f.lon);
                alt.append_option(f.alt_m);
                q.append_value(f.quality);
                sats.append_option(f.sats);
                hdop.append_option(f.hdop);
                speed.append_option(f.speed_mps);
                course.append_option(f.course_deg);
                line.append_value(f.line);
                talker.append_value(f.talker_str());
            }
            let cols: Vec<ArrayRef> = vec![
                Arc::new(dev.finish()),
                Arc::new(time.finish()),
                Arc::new(lat.finish()),
                Arc::new(lon.finish()),
                Arc::new(alt.finish()),
                Arc::new(q.finish()),
                Arc::new(sats.finish()),
                Arc::new(hdop.finish()),
                Arc::new(speed.finish()),
                Arc::new(course.finish()),
                Arc::new(line.finish()),
                Arc::new(talker.finish()),
            ];
            RecordBatch::try_new(fixes_schema(), cols).expect("schema matches")
        })
        .collect()
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    b.column_by_name(name)
        .ok_or_else(|| format!("column {name} missing"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column {name} has the wrong type"))
}

fn opt<A: Array, T>(a: &A, i: usize, v: impl Fn(usize) -> T) -> Option<T> {
    (!a.is_null(i)).then(|| v(i))
}

/// Record batch of the fixes schema → fixes (the device column is returned separately).
pub fn batch_to_fixes(b: &RecordBatch, out: &mut Vec<Fix>) -> Result<(), String> {
    let time = col::<TimestampMillisecondArray>(b, "time")?;
    let lat = col::<Float64Array>(b, "lat")?;
    let lon = col::<Float64Array>(b, "lon")?;
    let alt = col::<Float32Array>(b, "alt_m")?;
    let q = col::<UInt8Array>(b, "quality")?;
    let sats = col::<UInt8Array>(b, "sats")?;
    let hdop = col::<Float32Array>(b, "hdop")?;
    let speed = col::<Float32Array>(b, "speed_mps")?;
    let course = col::<Float32Array>(b, "course_deg")?;
    let line = col::<UInt32Array>(b, "line")?;
    let talker = col::<StringArray>(b, "talker")?;
    out.reserve(b.num_rows());
    for i in 0..b.num_rows() {
        let t = talker.value(i).as_bytes();
        out.push(Fix {
            time_ms: time.value(i),
            lat: lat.value(i),
            lon: lon.value(i),
            alt_m: opt(alt, i, |i| alt.value(i)),
            quality: q.value(i),
            sats: opt(sats, i, |i| sats.value(i)),
            hdop: opt(hdop, i, |i| hdop.value(i)),
            speed_mps: opt(speed, i, |i| speed.value(i)),
            course_deg: opt(course, i, |i| course.value(i)),
            line: line.value(i),
            talker: [t.first().copied().unwrap_or(b'?'), t.get(1).copied().unwrap_or(b'?')],
        });
    }
    Ok(())
}

/// One row of a rejection report.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectionRow {
    /// BLAKE3 of the source.
    pub source: String,
    /// Device id.
    pub device: String,
    /// Stage: `ingest`, `quality`, `trace` or `registry`.
    pub stage: &'static str,
    /// The rejection.
    pub rejection: crate::ingest::Rejection,
}

/// Rejection rows → one record batch.
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

/// A builder for a Decimal128 column.
pub fn decimal_builder(cap: usize, dt: &DataType) -> Decimal128Builder {
    let DataType::Decimal128(p, s) = dt else {
        unreachable!("decimal type")
    };
    Decimal128Builder::with_capacity(cap)
        .with_precision_and_scale(*p, *s)
        .expect("valid precision")
}

/// Re-exported builders the pipeline uses.
pub mod builders {
    pub use arrow_array::builder::{
        Float32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
    };
}

#[allow(unused_imports)]
use {Int64Builder as _, UInt64Builder as _};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_roundtrip_through_parquet() {
        let mut f = Fix::new(1_794_824_100_000, 52.5, 13.4);
        f.hdop = Some(0.9);
        f.sats = Some(7);
        f.line = 42;
        let mut g = f.clone();
        g.alt_m = Some(31.5);
        g.hdop = None;
        let batches = fixes_to_batches("car-1", &[f.clone(), g.clone()]);
        let bytes = to_parquet(&fixes_schema(), &batches).unwrap();
        let back = from_parquet(bytes.into()).unwrap();
        let mut out = Vec::new();
        for b in &back {
            batch_to_fixes(b, &mut out).unwrap();
        }
        assert_eq!(out, vec![f, g]);
    }

    #[test]
    fn parquet_bytes_are_deterministic() {
        let fixes: Vec<Fix> = (0..1000).map(|i| Fix::new(i, 1.0 + i as f64 * 1e-5, 2.0)).collect();
        let a = to_parquet(&fixes_schema(), &fixes_to_batches("d", &fixes)).unwrap();
        let b = to_parquet(&fixes_schema(), &fixes_to_batches("d", &fixes)).unwrap();
        assert_eq!(a, b);
    }
}
