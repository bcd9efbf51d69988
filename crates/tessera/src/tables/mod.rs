//! The lake's tables: for each one its Arrow schema, row type and conversions, in one place
//! (`fixes`, `imu`, `rejections`, `explain`, `rewards`, `coverage`, and the trust tables `flags`,
//! `fingerprints`, `trust`), plus the one set of Parquet writer
//! settings every file uses. Writers are deterministic: the same rows give the same bytes (fixed
//! compression, row-group size and `created_by`).

mod coverage;
mod encode;
mod explain;
mod fixes;
mod flags;
mod imu;
mod layout;
mod piped;
mod places;
mod rejections;
mod rewards;

pub use coverage::{
    coverage_schema, rows_from_batch as coverage_rows, rows_to_batch as coverage_batch, COVERAGE_STATE_COLUMNS,
};
pub use encode::ColumnParallelWriter;
pub use explain::{explain_batch, explain_batch_parts, explain_schema};
pub use fixes::{
    batch_to_epoch_fixes, batch_to_fixes, fixes_schema, fixes_to_batches, fixes_to_batches_sized, EPOCH_FIX_COLUMNS,
    FIX_COLUMNS,
};
pub use flags::{
    fingerprints_batch, fingerprints_batch_of, fingerprints_rows, fingerprints_rows_of, fingerprints_schema,
    flags_batch, flags_rows, flags_schema, trust_batch, trust_rows, trust_schema, AnchorRow, FlagRow,
};
pub use imu::{batch_to_imu, imu_schema, imu_to_batches};
pub use layout::{Layout, HIGH_CARDINALITY_COLUMNS, NARROW_PRECISION};
pub use places::{
    places_batch, places_from_batches, places_from_parquet, places_parquet, places_schema, regions_batch,
    regions_schema, RegionRow,
};
pub use rejections::{rejections_schema, rejections_to_batch, RejectionRow};
pub use rewards::rewards_schema;

use arrow_array::builder::Decimal128Builder;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use std::io::Write;

/// Rows per record batch when streaming.
pub const BATCH_ROWS: usize = 65_536;

pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Decimal type for base-unit amounts.
///
/// ```
/// assert_eq!(tessera::tables::amount_type(), arrow_schema::DataType::Decimal128(38, 0));
/// ```
pub fn amount_type() -> DataType {
    DataType::Decimal128(38, 0)
}

/// Decimal type for points and multipliers (millionths).
///
/// ```
/// assert_eq!(tessera::tables::ppm_type(), arrow_schema::DataType::Decimal128(38, 6));
/// ```
pub fn ppm_type() -> DataType {
    DataType::Decimal128(38, 6)
}

/// The column `name` of a batch as array type `T`, or an error naming the column.
///
/// # Errors
/// A message naming the column when it is missing or of another type.
///
/// ```
/// use arrow_array::{RecordBatch, UInt32Array};
/// let b = tessera::tables::coverage_batch(&[]);
/// assert!(tessera::tables::column::<UInt32Array>(&b, "times_covered").is_ok());
/// assert!(tessera::tables::column::<UInt32Array>(&b, "cell").unwrap_err().contains("cell"));
/// ```
pub fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| format!("column {name:?} is missing"))?;
    c.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column {name:?} has type {}, not what tessera writes", c.data_type()))
}

/// A batch read from an epoch's file as the table's `schema`: the columns by name, in the
/// schema's order, a `Decimal128` column of a smaller precision (a [`Layout::V4`] file's
/// fixed-point columns, `Decimal128(18, 6)`) widened to the schema's (the same values). So
/// every layout reads as one schema (Python's `epoch_table`, the SQL tables).
///
/// # Errors
/// A message naming a column that is missing or of another type.
///
/// ```
/// use tessera::tables::{conform, explain_schema, Layout};
/// let s = explain_schema();
/// let file = arrow_array::RecordBatch::new_empty(Layout::V4.file_schema(&s));
/// assert_eq!(conform(&file, &s).unwrap().schema(), s);
/// let coverage = arrow_array::RecordBatch::new_empty(tessera::tables::coverage_schema());
/// assert!(conform(&coverage, &s).unwrap_err().contains("\"device\" is missing"));
/// ```
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let c = batch
                .column_by_name(f.name())
                .ok_or_else(|| format!("column {:?} is missing", f.name()))?;
            match (f.data_type(), c.data_type()) {
                (a, b) if a == b => Ok(c.clone()),
                (DataType::Decimal128(p, s), DataType::Decimal128(q, t)) if s == t && q <= p => {
                    let d = c
                        .as_any()
                        .downcast_ref::<arrow_array::Decimal128Array>()
                        .expect("decimal");
                    let wide = d.clone().with_precision_and_scale(*p, *s).map_err(|e| e.to_string())?;
                    Ok(std::sync::Arc::new(wide) as arrow_array::ArrayRef)
                }
                (a, b) => Err(format!("column {:?} has type {b}, not {a}", f.name())),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), cols, &opts).map_err(|e| e.to_string())
}

/// An H3 index as its canonical string, lowercase hex without leading zeros (what
/// `format!("{:x}")` gives and h3o's `Display` prints), written into `buf` without allocating.
/// One per output row of the explain, coverage, places and visits tables.
pub(crate) fn cell_hex(cell: u64, buf: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let n = ((67 - cell.leading_zeros()) / 4).max(1) as usize;
    for (k, b) in buf[..n].iter_mut().enumerate() {
        *b = DIGITS[((cell >> (4 * (n - 1 - k))) & 15) as usize];
    }
    std::str::from_utf8(&buf[..n]).expect("hex digits are ASCII")
}

/// A builder for a Decimal128 column.
///
/// ```
/// let mut b = tessera::tables::decimal_builder(1, &tessera::tables::ppm_type());
/// b.append_value(1_500_000);
/// assert_eq!(b.finish().value_as_string(0), "1.500000");
/// ```
pub fn decimal_builder(cap: usize, dt: &DataType) -> Decimal128Builder {
    let DataType::Decimal128(p, s) = dt else {
        unreachable!("decimal type")
    };
    Decimal128Builder::with_capacity(cap)
        .with_precision_and_scale(*p, *s)
        .expect("valid precision")
}

fn props() -> WriterProperties {
    props_with(zstd())
}

/// The lake's one compression: ZSTD level 3.
fn zstd() -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level"))
}

fn props_with(compression: Compression) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("tessera {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A per-source lake file (`fixes/`, `rejections/`, `imu/` of one source) with fewer rows than
/// this is stored uncompressed. ZSTD costs a compression and a decompression context per column
/// chunk, and creating each runs `cpuid` (zstd 1.5.7 checks for BMI2 every time) — a trapped
/// instruction in a VM, ~4 µs each here: ~0.3 ms per 12-column file, more than compressing a
/// minute of fixes saves. Larger sources keep ZSTD.
pub const SMALL_SOURCE_ROWS: usize = 1024;

/// Encode the batches of one per-source lake file: as [`to_parquet`], but uncompressed below
/// [`SMALL_SOURCE_ROWS`] rows in all, and the [`PER_ROW_COLUMNS`] without dictionaries.
/// Deterministic: the same batches give the same bytes.
///
/// # Errors
/// The Parquet writer's error (a batch that does not match the schema).
///
/// ```
/// use tessera::{fix::Fix, tables};
/// let small = tables::fixes_to_batches("car-1", &[Fix::new(0, 52.5, 13.4)]);
/// let a = tables::to_source_parquet(&tables::fixes_schema(), &small).unwrap();
/// assert_eq!(tables::from_parquet(a.into()).unwrap()[0].num_rows(), 1);
/// ```
pub fn to_source_parquet(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let compression = if rows >= SMALL_SOURCE_ROWS {
        zstd()
    } else {
        Compression::UNCOMPRESSED
    };
    let mut props = props_with(compression).into_builder();
    for name in PER_ROW_COLUMNS {
        let Some((_, field)) = schema.column_with_name(name) else {
            continue;
        };
        let encoding = match field.data_type() {
            DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::Timestamp(..) => {
                Encoding::DELTA_BINARY_PACKED
            }
            _ => Encoding::PLAIN,
        };
        let path = ColumnPath::from(name);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, encoding);
    }
    encode_with(schema, batches, props.build())
}

/// Columns of the per-source lake files whose value differs from row to row: the fix or sample
/// time, its position, its line in the raw file. [`to_source_parquet`] writes them without a
/// dictionary (a dictionary of distinct values is those values again plus an index per row;
/// interning every value was ~8 % of the durable ingest's CPU): times and lines
/// `DELTA_BINARY_PACKED` (they step by about the same amount), coordinates PLAIN. A 50,000-fix
/// source: 1.19 MB with dictionaries, ~0.67 MB this way. The other columns (device, talker,
/// quality, satellites, HDOP, …) repeat and keep their dictionaries. (`BYTE_STREAM_SPLIT` for
/// the coordinates would be smaller still, but Spark's default, vectorized Parquet reader
/// refuses it (checked with pyspark 4.1.1): an analyst's `spark.read.parquet` of the lake must work.)
pub const PER_ROW_COLUMNS: [&str; 4] = ["time", "lat", "lon", "line"];

fn encode_with(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(buf)
}

/// Encode record batches as one Parquet file in memory.
///
/// # Errors
/// The Parquet writer's error (a batch that does not match the schema).
///
/// ```
/// use tessera::{fix::Fix, tables};
/// let batches = tables::fixes_to_batches("car-1", &[Fix::new(0, 52.5, 13.4)]);
/// let a = tables::to_parquet(&tables::fixes_schema(), &batches).unwrap();
/// assert_eq!(a, tables::to_parquet(&tables::fixes_schema(), &batches).unwrap()); // deterministic
/// assert_eq!(tables::from_parquet(a.into()).unwrap()[0].num_rows(), 1);
/// ```
pub fn to_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    encode_with(schema, batches, props())
}

/// The bytes of [`to_parquet`], with the columns of each row group encoded in parallel on the
/// rayon pool ([`ColumnParallelWriter`]).
///
/// # Errors
/// The Parquet writer's error (a batch that does not match the schema).
///
/// ```
/// use tessera::{fix::Fix, tables};
/// let fixes: Vec<Fix> = (0..5000).map(|i| Fix::new(i * 1000, 52.5 + i as f64 * 1e-5, 13.4)).collect();
/// let batches = tables::fixes_to_batches("car-1", &fixes);
/// let s = tables::fixes_schema();
/// assert_eq!(tables::to_parquet_parallel(&s, &batches).unwrap(), tables::to_parquet(&s, &batches).unwrap());
/// ```
pub fn to_parquet_parallel(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut w = ColumnParallelWriter::try_new(Vec::new(), schema, props())?;
    w.write(batches)?;
    w.into_inner()
}

/// A Parquet writer into memory with the same deterministic settings as [`to_parquet`]: writing
/// the same batches in the same order gives the same bytes.
///
/// # Errors
/// The Parquet writer's error.
///
/// ```
/// let mut w = tessera::tables::memory_writer(&tessera::tables::fixes_schema()).unwrap();
/// w.write(&tessera::tables::fixes_to_batches("d", &[tessera::fix::Fix::new(0, 1.0, 2.0)])[0]).unwrap();
/// assert_eq!(&w.into_inner().unwrap()[..4], b"PAR1");
/// ```
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
    ///
    /// # Errors
    /// The I/O error of creating the file.
    ///
    /// ```
    /// use std::io::Write;
    /// # let d = tempfile::tempdir().unwrap();
    /// let mut f = tessera::tables::HashedFile::create(&d.path().join("x")).unwrap();
    /// f.write_all(b"abc").unwrap();
    /// assert_eq!(f.finish().unwrap(), tessera::lake::sha256_hex(b"abc"));
    /// ```
    pub fn create(path: &std::path::Path) -> std::io::Result<HashedFile> {
        Ok(HashedFile {
            file: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?),
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        })
    }

    /// Flush and fsync; the SHA-256 (lowercase hex) of every byte written.
    ///
    /// # Errors
    /// The I/O or Parquet error of the last write.
    ///
    /// ```
    /// // see `HashedFile::create` and `BatchSink::new`
    /// ```
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

/// How a [`BatchSink`] turns rows into a record batch: from one slice, or — a batch that spans
/// two vectors given to [`BatchSink::append`] — from two. Every `Fn(&[T]) -> RecordBatch` is one
/// (it joins the two slices into one first: a copy of that batch's rows); [`Parts`] is one that
/// reads the two slices where they are.
///
/// The contract that keeps a sink's bytes independent of how its rows were handed over:
/// `build_parts(head, tail)` must equal `build` of `head` and `tail` concatenated (a rule test
/// holds explain's builder to it at every cut).
pub trait BuildBatch<T>: Sync {
    /// The batch of `rows`.
    fn build(&self, rows: &[T]) -> RecordBatch;
    /// The batch of `head` followed by `tail`: the same as [`BuildBatch::build`] of the two
    /// joined.
    fn build_parts(&self, head: &[T], tail: &[T]) -> RecordBatch;
}

impl<T: Clone, F: Fn(&[T]) -> RecordBatch + Sync> BuildBatch<T> for F {
    fn build(&self, rows: &[T]) -> RecordBatch {
        self(rows)
    }

    fn build_parts(&self, head: &[T], tail: &[T]) -> RecordBatch {
        match (head.is_empty(), tail.is_empty()) {
            (_, true) => self(head),
            (true, false) => self(tail),
            (false, false) => self(&[head, tail].concat()),
        }
    }
}

/// A batch builder of rows given as consecutive slices (`build(&[head, tail])`), so that a
/// [`BatchSink`] fed whole vectors ([`BatchSink::append`]) never copies a row.
///
/// ```
/// use tessera::tables::{BatchSink, BuildBatch, Parts, coverage_batch, coverage_schema};
/// use tessera::novelty::freshness::CellState;
/// let s = CellState { first_epoch: 1, last_epoch: 1, times_covered: 1 };
/// let rows: Vec<(u64, CellState)> = (0..5).map(|c| (c, s)).collect();
/// let parts = Parts(|p: &[&[(u64, CellState)]]| coverage_batch(&p.concat()));
/// assert_eq!(parts.build_parts(&rows[..2], &rows[2..]), coverage_batch(&rows));
/// ```
pub struct Parts<F>(pub F);

impl<T, F: Fn(&[&[T]]) -> RecordBatch + Sync> BuildBatch<T> for Parts<F> {
    fn build(&self, rows: &[T]) -> RecordBatch {
        (self.0)(&[rows])
    }

    fn build_parts(&self, head: &[T], tail: &[T]) -> RecordBatch {
        (self.0)(&[head, tail])
    }
}

/// Streams rows into a Parquet file, always in record batches of exactly [`BATCH_ROWS`] rows
/// (the last one shorter), so the bytes depend only on the row sequence, never on how callers
/// chunked their work. Full batches are built a few at a time in parallel and written in order
/// (one at a time as soon as they are full: [`BatchSink::eager`]).
///
/// ```
/// use tessera::tables::{BatchSink, coverage_schema};
/// use tessera::{novelty::freshness::CellState, tables::coverage_batch as rows_to_batch};
/// let s = CellState { first_epoch: 1, last_epoch: 1, times_covered: 1 };
/// let mut a = BatchSink::new(Vec::new(), &coverage_schema(), rows_to_batch).unwrap();
/// a.extend([(1u64, s), (2, s)]).unwrap();
/// a.extend([(3u64, s)]).unwrap();
/// let mut b = BatchSink::new(Vec::new(), &coverage_schema(), rows_to_batch).unwrap();
/// b.extend([(1u64, s), (2, s), (3, s)]).unwrap();
/// assert_eq!(a.finish().unwrap(), b.finish().unwrap());
/// ```
pub struct BatchSink<T, W: Write + Send, B> {
    writer: Out<W>,
    /// Rows appended; those before `start` are written.
    pending: Vec<T>,
    start: usize,
    rows: u64,
    build: B,
    empty_batch: bool,
    /// Full batches built (in parallel) and written per write.
    group: usize,
}

impl<T, W, B> BatchSink<T, W, B>
where
    T: Clone + Send + Sync,
    W: Write + Send,
    B: Fn(&[T]) -> RecordBatch + Sync,
{
    /// A sink writing `schema` rows into `w`; `build` turns rows into a batch.
    ///
    /// # Errors
    /// The Parquet writer's error.
    ///
    /// ```
    /// use tessera::{fix::Fix, tables};
    /// let build = |rows: &[Fix]| tables::fixes_to_batches("car-1", rows).remove(0);
    /// let mut sink = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap();
    /// sink.extend((0..10).map(|i| Fix::new(i * 1000, 52.5, 13.4))).unwrap();
    /// assert_eq!(sink.rows(), 10);
    /// let bytes = sink.finish().unwrap();
    /// assert_eq!(tables::from_parquet(bytes.into()).unwrap()[0].num_rows(), 10);
    /// ```
    pub fn new(w: W, schema: &SchemaRef, build: B) -> Result<Self, parquet::errors::ParquetError> {
        Self::with_props(w, schema, props(), build)
    }

    /// As [`BatchSink::new`], with these writer settings (an epoch output's [`Layout::props`]).
    ///
    /// # Errors
    /// The Parquet writer's error.
    ///
    /// ```
    /// use tessera::tables::{coverage_batch, coverage_schema, BatchSink, Layout};
    /// let s = coverage_schema();
    /// let sink = BatchSink::with_props(Vec::new(), &s, Layout::CURRENT.props(&s), coverage_batch).unwrap();
    /// assert_eq!(sink.rows(), 0);
    /// ```
    pub fn with_props(
        w: W,
        schema: &SchemaRef,
        props: WriterProperties,
        build: B,
    ) -> Result<Self, parquet::errors::ParquetError> {
        Self::open(w, schema, props, build)
    }
}

impl<T, W, F> BatchSink<T, W, Parts<F>>
where
    T: Send + Sync,
    W: Write + Send,
    F: Fn(&[&[T]]) -> RecordBatch + Sync,
{
    /// As [`BatchSink::with_props`], with a builder of rows in consecutive slices ([`Parts`]):
    /// a batch that spans two appended vectors is built from both where they are.
    ///
    /// # Errors
    /// The Parquet writer's error.
    ///
    /// ```
    /// use tessera::tables::{coverage_batch, coverage_schema, BatchSink, Layout, BATCH_ROWS};
    /// use tessera::novelty::freshness::CellState;
    /// let s = CellState { first_epoch: 1, last_epoch: 1, times_covered: 1 };
    /// let rows: Vec<(u64, CellState)> = (0..BATCH_ROWS as u64 * 2 + 7).map(|c| (c, s)).collect();
    /// let schema = coverage_schema();
    /// let build = |p: &[&[(u64, CellState)]]| coverage_batch(&p.concat());
    /// let mut a = BatchSink::with_parts(Vec::new(), &schema, Layout::CURRENT.props(&schema), build).unwrap().eager();
    /// for part in rows.chunks(50_000) {
    ///     a.append(part.to_vec()).unwrap();
    /// }
    /// let mut b = BatchSink::with_props(Vec::new(), &schema, Layout::CURRENT.props(&schema), coverage_batch).unwrap();
    /// b.extend(rows).unwrap();
    /// assert_eq!(a.finish().unwrap(), b.finish().unwrap());
    /// ```
    pub fn with_parts(
        w: W,
        schema: &SchemaRef,
        props: WriterProperties,
        build: F,
    ) -> Result<Self, parquet::errors::ParquetError> {
        Self::open(w, schema, props, Parts(build))
    }
}

impl<T, W, B> BatchSink<T, W, B>
where
    T: Send + Sync,
    W: Write + Send,
    B: BuildBatch<T>,
{
    fn open(
        w: W,
        schema: &SchemaRef,
        props: WriterProperties,
        build: B,
    ) -> Result<Self, parquet::errors::ParquetError> {
        Ok(BatchSink {
            writer: Out::Direct(Box::new(ColumnParallelWriter::try_new(w, schema, props)?)),
            pending: Vec::new(),
            start: 0,
            rows: 0,
            build,
            empty_batch: false,
            group: 4,
        })
    }

    /// When no row at all is written, write one empty batch (a row group of 0 rows) instead of
    /// none.
    ///
    /// ```
    /// // see `BatchSink::new`
    /// ```
    pub fn with_empty_batch(mut self) -> Self {
        self.empty_batch = true;
        self
    }

    /// Write each full batch as soon as it is there, instead of four at a time (built in
    /// parallel): for a sink fed from one thread while other work runs, so that its encoding
    /// overlaps that work instead of waiting for the file's end. The bytes are the same.
    ///
    /// ```
    /// use tessera::{fix::Fix, tables};
    /// let build = |rows: &[Fix]| tables::fixes_to_batches("car-1", rows).remove(0);
    /// let rows = || (0..200_000).map(|i| Fix::new(i * 1000, 52.5, 13.4));
    /// let mut a = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap().eager();
    /// a.extend(rows()).unwrap();
    /// let mut b = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap();
    /// b.extend(rows()).unwrap();
    /// assert_eq!(a.finish().unwrap(), b.finish().unwrap());
    /// ```
    pub fn eager(mut self) -> Self {
        self.group = 1;
        self
    }

    /// Write the full batches of the unwritten rows.
    fn write_full_batches(&mut self) -> Result<(), parquet::errors::ParquetError> {
        let full = (self.pending.len() - self.start) / BATCH_ROWS * BATCH_ROWS;
        let rows = &self.pending[self.start..self.start + full];
        for group in rows.chunks(BATCH_ROWS * self.group) {
            let batches: Vec<RecordBatch> = group.par_chunks(BATCH_ROWS).map(|b| self.build.build(b)).collect();
            self.writer.write(batches)?;
        }
        self.start += full;
        if self.start == self.pending.len() {
            self.pending.clear();
            self.start = 0;
        }
        Ok(())
    }

    /// Append rows.
    ///
    /// # Errors
    /// The Parquet writer's error.
    ///
    /// ```
    /// // see `BatchSink::new`
    /// ```
    pub fn extend(&mut self, rows: impl IntoIterator<Item = T>) -> Result<(), parquet::errors::ParquetError> {
        self.pending.drain(..std::mem::take(&mut self.start));
        let before = self.pending.len();
        self.pending.extend(rows);
        self.rows += (self.pending.len() - before) as u64;
        self.write_if_full()
    }

    /// Append the rows of a vector: as [`BatchSink::extend`], but without copying it: a vector
    /// appended while nothing is pending becomes the pending rows, and a batch that begins in
    /// the rows pending and ends in `rows` is built from both ([`BuildBatch::build_parts`]);
    /// `rows` then is the pending rows from that batch's end.
    ///
    /// # Errors
    /// The Parquet writer's error.
    ///
    /// ```
    /// use tessera::{fix::Fix, tables};
    /// let build = |rows: &[Fix]| tables::fixes_to_batches("car-1", rows).remove(0);
    /// let rows = || (0..10).map(|i| Fix::new(i * 1000, 52.5, 13.4));
    /// let mut a = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap();
    /// a.append(rows().take(4).collect()).unwrap();
    /// a.append(rows().skip(4).collect()).unwrap();
    /// let mut b = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap();
    /// b.extend(rows()).unwrap();
    /// assert_eq!(a.finish().unwrap(), b.finish().unwrap());
    /// ```
    pub fn append(&mut self, rows: Vec<T>) -> Result<(), parquet::errors::ParquetError> {
        let left = self.pending.len() - self.start;
        if left == 0 {
            self.rows += rows.len() as u64;
            self.pending = rows;
            self.start = 0;
            return self.write_if_full();
        }
        // Rows that end the last batch begun among the pending ones (0: they end on a batch).
        let need = (BATCH_ROWS - left % BATCH_ROWS) % BATCH_ROWS;
        if need == 0 || rows.len() < need {
            // Whole batches pending (fewer than a group), or too few rows to end the batch:
            // the rows join the pending ones.
            return self.extend(rows);
        }
        // The pending whole batches and the one that ends in `rows`, built at once and written
        // together; `rows` then is the pending rows from that batch's end.
        let (whole, begun) = self.pending[self.start..].split_at(left - (BATCH_ROWS - need));
        let build = &self.build;
        let (mut batches, spanning) = rayon::join(
            || whole.par_chunks(BATCH_ROWS).map(|b| build.build(b)).collect::<Vec<_>>(),
            || build.build_parts(begun, &rows[..need]),
        );
        batches.push(spanning);
        self.writer.write(batches)?;
        self.rows += rows.len() as u64;
        self.pending = rows;
        self.start = need;
        self.write_if_full()
    }

    fn write_if_full(&mut self) -> Result<(), parquet::errors::ParquetError> {
        if self.pending.len() - self.start >= BATCH_ROWS * self.group {
            self.write_full_batches()?;
        }
        Ok(())
    }

    /// Rows written so far.
    ///
    /// ```
    /// // see `BatchSink::new`
    /// ```
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flush, close the Parquet file and return the writer.
    ///
    /// # Errors
    /// The I/O or Parquet error of the last write.
    ///
    /// ```
    /// // see `BatchSink::new`
    /// ```
    pub fn finish(mut self) -> Result<W, parquet::errors::ParquetError> {
        self.write_full_batches()?;
        let rest = &self.pending[self.start..];
        if !rest.is_empty() || (self.rows == 0 && self.empty_batch) {
            let b = self.build.build(rest);
            self.writer.write(vec![b])?;
        }
        self.writer.into_inner()
    }
}

impl<T, W, B> BatchSink<T, W, B>
where
    T: Send + Sync,
    W: Write + Send + 'static,
    B: BuildBatch<T>,
{
    /// Encode on a thread of its own (its column tasks on a rayon pool of their own): each write
    /// hands its batches over and returns while they are encoded (at most two groups of batches
    /// in flight), so the caller's next rows are built while the last ones are encoded. The
    /// bytes are the same. An error of the encoding surfaces at the next write or at
    /// [`BatchSink::finish`]. Where no thread can be started, the caller encodes as before.
    ///
    /// ```
    /// use tessera::{fix::Fix, tables};
    /// let build = |rows: &[Fix]| tables::fixes_to_batches("car-1", rows).remove(0);
    /// let rows = || (0..200_000).map(|i| Fix::new(i * 1000, 52.5, 13.4));
    /// let mut a = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap().eager().pipelined();
    /// a.extend(rows()).unwrap();
    /// let mut b = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap();
    /// b.extend(rows()).unwrap();
    /// assert_eq!(a.finish().unwrap(), b.finish().unwrap());
    /// ```
    pub fn pipelined(mut self) -> Self {
        self.writer = match self.writer {
            Out::Direct(w) => piped::PipedWriter::new(w).map_or_else(Out::Direct, Out::Piped),
            piped => piped,
        };
        self
    }

    /// [`BatchSink::pipelined`] when `on`, else the sink as it is.
    ///
    /// ```
    /// use tessera::{fix::Fix, tables};
    /// let build = |rows: &[Fix]| tables::fixes_to_batches("car-1", rows).remove(0);
    /// let sink = tables::BatchSink::new(Vec::new(), &tables::fixes_schema(), build).unwrap();
    /// assert!(!sink.pipelined_if(false).finish().unwrap().is_empty());
    /// ```
    pub fn pipelined_if(self, on: bool) -> Self {
        if on {
            self.pipelined()
        } else {
            self
        }
    }
}

/// Where a [`BatchSink`]'s batches go: encoded by the caller, or by a thread of their own.
enum Out<W: Write + Send> {
    Direct(Box<ColumnParallelWriter<W>>),
    Piped(piped::PipedWriter<W>),
}

impl<W: Write + Send> Out<W> {
    fn write(&mut self, batches: Vec<RecordBatch>) -> Result<(), parquet::errors::ParquetError> {
        match self {
            Out::Direct(w) => w.write(&batches),
            Out::Piped(w) => w.write(batches),
        }
    }

    fn into_inner(self) -> Result<W, parquet::errors::ParquetError> {
        match self {
            Out::Direct(w) => w.into_inner(),
            Out::Piped(w) => w.into_inner(),
        }
    }
}

/// Decode all record batches of a Parquet file held in memory.
///
/// # Errors
/// The Parquet reader's error (not a Parquet file, a corrupt page).
///
/// ```
/// // see `to_parquet`
/// ```
pub fn from_parquet(bytes: bytes::Bytes) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    from_parquet_batched(bytes, BATCH_ROWS)
}

/// Decode a Parquet file held in memory into record batches of at most `batch_rows` rows.
///
/// # Errors
/// The Parquet reader's error (not a Parquet file, a corrupt page).
///
/// ```
/// use tessera::{fix::Fix, tables};
/// let fixes: Vec<Fix> = (0..10).map(|i| Fix::new(i * 1000, 52.5, 13.4)).collect();
/// let bytes = tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("d", &fixes)).unwrap();
/// let batches = tables::from_parquet_batched(bytes.into(), 4).unwrap();
/// assert_eq!(batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [4, 4, 2]);
/// ```
pub fn from_parquet_batched(
    bytes: bytes::Bytes,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    from_parquet_columns(bytes, batch_rows, None)
}

/// As [`from_parquet_batched`], decoding only the columns named in `columns` (all with
/// `None`; names as `parquet::arrow::ProjectionMask::columns` matches them, a dotted name being
/// a nested leaf), in the file's order: a column the caller does not use is neither
/// decompressed nor decoded, so damage confined to it goes unnoticed here (the caller's hash of
/// the whole file still covers it). A name the file lacks is ignored here; the batch's consumer
/// reports it missing.
///
/// # Errors
/// The Parquet reader's error (not a Parquet file, a corrupt page).
///
/// ```
/// use tessera::{fix::Fix, tables};
/// let fixes: Vec<Fix> = (0..10).map(|i| Fix::new(i * 1000, 52.5, 13.4)).collect();
/// let bytes = tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("d", &fixes)).unwrap();
/// let b = tables::from_parquet_columns(bytes.into(), 4, Some(&["lon", "time"])).unwrap();
/// let names: Vec<_> = b[0].schema().fields().iter().map(|f| f.name().clone()).collect();
/// assert_eq!(names, ["time", "lon"]);
/// ```
pub fn from_parquet_columns(
    bytes: bytes::Bytes,
    batch_rows: usize,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(batch_rows.max(1));
    if let Some(names) = columns {
        let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), names.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder.build()?;
    reader
        .map(|b| b.map_err(|e| parquet::errors::ParquetError::General(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_appended_vectors_give_the_bytes_of_one_extend_wherever_they_are_cut() {
        use super::{coverage_batch, coverage_schema, BatchSink, Layout, BATCH_ROWS};
        use crate::novelty::freshness::CellState;
        let s = |i: u64| CellState {
            first_epoch: (i % 7) as i64,
            last_epoch: 9,
            times_covered: (i % 5) as u32 + 1,
        };
        let rows: Vec<(u64, CellState)> = (0..3 * BATCH_ROWS as u64 + 11).map(|i| (i * 64, s(i))).collect();
        let schema = coverage_schema();
        let props = || Layout::CURRENT.props(&schema);
        let mut one = BatchSink::with_props(Vec::new(), &schema, props(), coverage_batch).unwrap();
        one.extend(rows.iter().copied()).unwrap();
        let want = one.finish().unwrap();
        let b = BATCH_ROWS;
        // Cuts at, just before and after batch ends, tiny and empty vectors, one larger than
        // two batches; some fed through `extend` between appends.
        let cuts: [&[usize]; 4] = [
            &[b - 1, 1, b + 1, 0, 5, 2 * b + 3],
            &[1, 1, b, b - 2, 3, 7, b],
            &[2 * b + 1, 0, b - 1],
            &[b / 2, b / 2, b / 2 + 1, 17, b - 18],
        ];
        let parts = |p: &[&[(u64, CellState)]]| coverage_batch(&p.concat());
        for (k, cut) in cuts.iter().enumerate() {
            for eager in [false, true] {
                let mut with_parts = BatchSink::with_parts(Vec::new(), &schema, props(), parts).unwrap();
                let mut joined = BatchSink::with_props(Vec::new(), &schema, props(), coverage_batch).unwrap();
                if eager {
                    with_parts = with_parts.eager();
                    joined = joined.eager();
                }
                let mut at = 0usize;
                for (i, &n) in cut.iter().chain([&usize::MAX]).enumerate() {
                    let piece = &rows[at..(at.saturating_add(n)).min(rows.len())];
                    at += piece.len();
                    if i % 3 == 2 {
                        with_parts.extend(piece.iter().copied()).unwrap();
                        joined.extend(piece.iter().copied()).unwrap();
                    } else {
                        with_parts.append(piece.to_vec()).unwrap();
                        joined.append(piece.to_vec()).unwrap();
                    }
                }
                assert_eq!(with_parts.rows(), rows.len() as u64);
                assert!(with_parts.finish().unwrap() == want, "cut {k}, eager {eager}: parts");
                assert!(joined.finish().unwrap() == want, "cut {k}, eager {eager}: joined");
            }
        }
        // Encoded on a thread of its own: the same bytes.
        let mut piped = BatchSink::with_parts(Vec::new(), &schema, props(), parts)
            .unwrap()
            .eager()
            .pipelined();
        for piece in rows.chunks(BATCH_ROWS - 3) {
            piped.append(piece.to_vec()).unwrap();
        }
        assert!(piped.finish().unwrap() == want, "pipelined");
        // Nothing but empty vectors: the one empty batch asked for, as with nothing extended.
        let empty = || {
            BatchSink::with_parts(Vec::new(), &schema, props(), parts)
                .unwrap()
                .with_empty_batch()
        };
        let mut a = empty();
        a.append(Vec::new()).unwrap();
        a.append(Vec::new()).unwrap();
        let mut b = empty();
        b.extend([]).unwrap();
        assert_eq!(a.finish().unwrap(), b.finish().unwrap());
    }

    #[test]
    fn cell_hex_writes_what_format_x_writes() {
        let mut buf = [0u8; 16];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut check = |c: u64| assert_eq!(super::cell_hex(c, &mut buf), format!("{c:x}"));
        for c in [0, 1, 15, 16, 255, 256, u64::MAX, 1 << 63, 0x08c2_8308_2815_9fff] {
            check(c);
        }
        for shift in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x >> shift);
        }
    }
}
