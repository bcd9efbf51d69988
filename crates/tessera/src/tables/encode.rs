//! Column-parallel Parquet encoding: the bytes of `parquet`'s [`ArrowWriter`] (same properties,
//! same row groups, same pages), with each column of a row group encoded and compressed on its
//! own rayon task. `ArrowWriter` encodes the columns one after another on the caller's thread;
//! the big outputs of an epoch (explain, coverage) have 5–18 columns, so this is where a serial
//! writer left cores idle.
//!
//! Built on the crate's documented low-level path (`ArrowWriter::into_serialized_writer`,
//! `ArrowRowGroupWriterFactory`, `compute_leaves`, `ArrowColumnChunk::append_to_row_group`, see
//! the example on `parquet::arrow::arrow_writer::ArrowColumnWriter`): a row group is cut exactly
//! where `ArrowWriter::write` cuts it (at `max_row_group_row_count` rows, slicing a batch that
//! straddles the limit; empty batches write nothing) and the chunks are appended in column order.
//!
//! A batch's `Decimal128` column may be written with a smaller precision than it was built
//! with (the writer's schema says so: [`super::Layout::file_schema`]); each of its values is
//! checked against that precision ([`as_field`]), so none is ever written wrapped.

use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use rayon::prelude::*;
use std::io::Write;

/// A Parquet file written like [`ArrowWriter`] with the columns encoded in parallel.
///
/// ```
/// use arrow_array::{Int64Array, RecordBatch, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use std::sync::Arc;
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("n", DataType::Int64, false),
///     Field::new("s", DataType::Utf8, true),
/// ]));
/// let batch = |a: i64| RecordBatch::try_new(schema.clone(), vec![
///     Arc::new(Int64Array::from_iter_values(a..a + 1000)),
///     Arc::new(StringArray::from_iter((a..a + 1000).map(|i| (i % 3 > 0).then(|| i.to_string())))),
/// ]).unwrap();
/// let props = || parquet::file::properties::WriterProperties::builder()
///     .set_max_row_group_row_count(Some(1500)).build();
/// let mut serial = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props())).unwrap();
/// let mut parallel = tessera::tables::ColumnParallelWriter::try_new(Vec::new(), &schema, props()).unwrap();
/// for a in [0, 1000, 2000] {
///     serial.write(&batch(a)).unwrap();
///     parallel.write(&[batch(a)]).unwrap();
/// }
/// assert_eq!(serial.into_inner().unwrap(), parallel.into_inner().unwrap());
/// ```
pub struct ColumnParallelWriter<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Parquet leaf columns per Arrow field (1 for flat fields).
    leaves: Vec<usize>,
    max_rows: usize,
    /// The row group being encoded: column writers grouped per field, and its rows so far.
    group: Option<(Vec<Vec<ArrowColumnWriter>>, usize)>,
}

/// `array` as the writer's `field` says it is written: a `Decimal128` array of another
/// precision (the same scale) relabelled, after checking that every value fits that precision;
/// any other array as it is.
///
/// # Errors
/// A value that does not fit, or another scale: an error naming the column and the value.
fn as_field(field: &Field, array: &ArrayRef) -> Result<ArrayRef> {
    let (DataType::Decimal128(p, s), DataType::Decimal128(q, t)) = (field.data_type(), array.data_type()) else {
        return Ok(array.clone());
    };
    if (p, s) == (q, t) {
        return Ok(array.clone());
    }
    let bad = |e: String| ParquetError::General(format!("column {:?}: {e}", field.name()));
    if s != t {
        return Err(bad(format!("scale {t} written as scale {s}")));
    }
    let a = array.as_primitive::<Decimal128Type>();
    // Every slot in range (one comparison each) settles it for a valid precision and scale;
    // otherwise arrow-rs's check, which refuses those, skips null slots and names the value
    // that does not fit.
    let in_range = |max: i128| a.values().iter().all(|v| (-max..=max).contains(v));
    let valid = *p <= 38 && *s >= 0 && *s as u8 <= *p;
    if !(valid && in_range(10i128.pow(u32::from(*p)) - 1)) {
        a.validate_decimal_precision(*p).map_err(|e| bad(e.to_string()))?;
    }
    let narrowed = a
        .clone()
        .with_precision_and_scale(*p, *s)
        .map_err(|e| bad(e.to_string()))?;
    Ok(std::sync::Arc::new(narrowed))
}

fn leaf_count(t: &Type) -> usize {
    if t.is_primitive() {
        1
    } else {
        t.get_fields().iter().map(|f| leaf_count(f)).sum()
    }
}

impl<W: Write + Send> ColumnParallelWriter<W> {
    /// A writer of `schema` rows into `w` under `props` (the Arrow schema is embedded in the
    /// footer as `ArrowWriter` does).
    ///
    /// # Errors
    /// The Parquet error of converting the schema or writing the header.
    ///
    /// ```
    /// // see `ColumnParallelWriter`
    /// ```
    pub fn try_new(w: W, schema: &SchemaRef, props: WriterProperties) -> Result<Self> {
        let max_rows = props.max_row_group_row_count().unwrap_or(usize::MAX);
        let (file, factory) = ArrowWriter::try_new(w, schema.clone(), Some(props))?.into_serialized_writer()?;
        let leaves = file
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| leaf_count(f))
            .collect();
        Ok(ColumnParallelWriter {
            file,
            factory,
            schema: schema.clone(),
            leaves,
            max_rows: max_rows.max(1),
            group: None,
        })
    }

    /// Encode `batches`, in order, into the file.
    ///
    /// # Errors
    /// The Parquet error of encoding or writing (a batch of another schema, an I/O error).
    ///
    /// ```
    /// // see `ColumnParallelWriter`
    /// ```
    pub fn write(&mut self, batches: &[RecordBatch]) -> Result<()> {
        // Cut the batches where ArrowWriter cuts row groups, then encode each run of one group.
        let mut run: Vec<RecordBatch> = Vec::new();
        let mut rows = self.group.as_ref().map_or(0, |g| g.1);
        for b in batches {
            let mut b = b.clone();
            while b.num_rows() > 0 {
                let take = b.num_rows().min(self.max_rows - rows);
                run.push(b.slice(0, take));
                b = b.slice(take, b.num_rows() - take);
                rows += take;
                if rows >= self.max_rows {
                    self.encode(&std::mem::take(&mut run))?;
                    self.flush()?;
                    rows = 0;
                }
            }
        }
        self.encode(&run)
    }

    /// Encode batches that all belong to the current row group, one task per field.
    fn encode(&mut self, run: &[RecordBatch]) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        if self.group.is_none() {
            let mut all = self
                .factory
                .create_column_writers(self.file.flushed_row_groups().len())?
                .into_iter();
            let grouped = self.leaves.iter().map(|n| all.by_ref().take(*n).collect()).collect();
            self.group = Some((grouped, 0));
        }
        let (writers, rows) = self.group.as_mut().expect("created above");
        let schema = &self.schema;
        writers
            .par_iter_mut()
            .enumerate()
            .map(|(j, ws)| {
                for b in run {
                    let column = as_field(schema.field(j), b.column(j))?;
                    let leaves = compute_leaves(schema.field(j), &column)?;
                    for (w, leaf) in ws.iter_mut().zip(leaves) {
                        w.write(&leaf)?;
                    }
                }
                Ok(())
            })
            .collect::<Result<Vec<()>>>()?;
        *rows += run.iter().map(RecordBatch::num_rows).sum::<usize>();
        Ok(())
    }

    /// Close the current row group (its columns' last pages compressed in parallel) and append
    /// its chunks in column order.
    fn flush(&mut self) -> Result<()> {
        let Some((writers, _)) = self.group.take() else {
            return Ok(());
        };
        let chunks = writers
            .into_par_iter()
            .map(|ws| ws.into_iter().map(ArrowColumnWriter::close).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        let mut rg = self.file.next_row_group()?;
        for chunk in chunks.into_iter().flatten() {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        Ok(())
    }

    /// Close the last row group, write the footer and return the writer.
    ///
    /// # Errors
    /// The Parquet or I/O error of the last writes.
    ///
    /// ```
    /// // see `ColumnParallelWriter`
    /// ```
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        self.file.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, Int64Array, ListArray, StringArray, StructArray};
    use arrow_schema::{DataType, Field, Fields, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        let inner = Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]);
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Struct(inner), true),
            Field::new_list("l", Field::new_list_field(DataType::Int64, true), true),
            Field::new("t", DataType::Utf8, false),
        ]))
    }

    fn batch(schema: &SchemaRef, start: i64, n: usize) -> RecordBatch {
        let ids: Vec<i64> = (start..start + n as i64).collect();
        let s = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int64, true)),
                Arc::new(Int64Array::from_iter(ids.iter().map(|i| (i % 5 > 0).then_some(i * 3)))) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from_iter(
                    ids.iter().map(|i| (i % 7 > 0).then(|| format!("b{}", i % 11))),
                )) as ArrayRef,
            ),
        ]);
        let l = ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(
            ids.iter()
                .map(|i| (i % 4 > 0).then(|| (0..(i % 3)).map(Some).collect::<Vec<_>>())),
        );
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Float64Array::from_iter(
                    ids.iter().map(|i| (i % 9 > 0).then_some(*i as f64 / 7.0)),
                )),
                Arc::new(s),
                Arc::new(l),
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("row-{}", i * 7919 % 1000)),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn column_parallel_bytes_equal_arrow_writers_for_any_cut() {
        let schema = schema();
        let props = |max: usize| {
            WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .set_max_row_group_row_count(Some(max))
                .set_data_page_row_count_limit(700)
                .build()
        };
        // Batch sizes that straddle row groups, an empty batch, and several per call.
        let sizes = [1000, 0, 2500, 1, 4096, 3000, 999];
        for max in [1, 1000, 1024, 5000, 1 << 20] {
            let mut serial = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props(max))).unwrap();
            let mut parallel = ColumnParallelWriter::try_new(Vec::new(), &schema, props(max)).unwrap();
            let mut start = 0i64;
            let mut pending = Vec::new();
            for (i, n) in sizes.iter().enumerate() {
                let b = batch(&schema, start, *n);
                start += *n as i64;
                serial.write(&b).unwrap();
                pending.push(b);
                if i % 2 == 1 {
                    parallel.write(&std::mem::take(&mut pending)).unwrap();
                }
            }
            parallel.write(&pending).unwrap();
            let (a, b) = (serial.into_inner().unwrap(), parallel.into_inner().unwrap());
            assert!(a == b, "max rows {max}: {} vs {} bytes", a.len(), b.len());
        }
    }

    #[test]
    fn an_empty_file_equals_arrow_writers() {
        let schema = schema();
        let serial = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
        let mut parallel = ColumnParallelWriter::try_new(Vec::new(), &schema, WriterProperties::default()).unwrap();
        parallel.write(&[batch(&schema, 0, 0)]).unwrap();
        assert_eq!(serial.into_inner().unwrap(), parallel.into_inner().unwrap());
    }

    /// One `Decimal128` column `v` of precision `p`, scale 6 (`decimals_at` another scale).
    fn decimals(p: u8, v: &[i128]) -> (SchemaRef, RecordBatch) {
        decimals_at(p, 6, v)
    }

    fn decimals_at(p: u8, scale: i8, v: &[i128]) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "points",
            DataType::Decimal128(p, scale),
            false,
        )]));
        let a = arrow_array::Decimal128Array::from(v.to_vec())
            .with_precision_and_scale(p, scale)
            .unwrap();
        (
            schema.clone(),
            RecordBatch::try_new(schema, vec![Arc::new(a) as ArrayRef]).unwrap(),
        )
    }

    #[test]
    fn rule_narrow_decimals_a_38_digit_column_written_as_18_digits_is_what_arrow_writes_for_18() {
        let v: Vec<i128> = (0..5000).map(|i| i * 1_000_003 % 999_999_999_999_999_999).collect();
        let (s18, b18) = decimals(18, &v);
        let (_, b38) = decimals(38, &v);
        let mut serial = ArrowWriter::try_new(Vec::new(), s18.clone(), None).unwrap();
        serial.write(&b18).unwrap();
        let mut parallel = ColumnParallelWriter::try_new(Vec::new(), &s18, WriterProperties::default()).unwrap();
        parallel.write(&[b38]).unwrap();
        let bytes = parallel.into_inner().unwrap();
        assert_eq!(serial.into_inner().unwrap(), bytes);
        let back = crate::tables::from_parquet(bytes.into()).unwrap();
        assert_eq!(back[0].column(0).data_type(), &DataType::Decimal128(18, 6));
        assert_eq!(back[0].column(0).as_primitive::<Decimal128Type>().values().to_vec(), v);
    }

    #[test]
    fn rule_narrow_decimals_a_value_beyond_18_digits_is_an_error_naming_the_column_never_wrapped() {
        let (s18, _) = decimals(18, &[]);
        for big in [
            1_000_000_000_000_000_000i128,
            i128::from(u64::MAX),
            -1_000_000_000_000_000_000,
        ] {
            let (_, b38) = decimals(38, &[1, big]);
            let mut w = ColumnParallelWriter::try_new(Vec::new(), &s18, WriterProperties::default()).unwrap();
            let e = w.write(&[b38]).unwrap_err().to_string();
            assert!(e.contains("\"points\"") && e.contains("precision 18"), "{e}");
        }
        let (_, scale0) = decimals_at(38, 0, &[1]);
        let mut w = ColumnParallelWriter::try_new(Vec::new(), &s18, WriterProperties::default()).unwrap();
        assert!(w.write(&[scale0]).unwrap_err().to_string().contains("scale 0"));
        // A null slot's value is not a value: whatever it holds, the column is written.
        let nullable = Arc::new(Schema::new(vec![Field::new(
            "points",
            DataType::Decimal128(18, 6),
            true,
        )]));
        let a = arrow_array::Decimal128Array::new(
            vec![1, 1_000_000_000_000_000_000i128].into(),
            Some(vec![true, false].into()),
        )
        .with_precision_and_scale(38, 6)
        .unwrap();
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "points",
                DataType::Decimal128(38, 6),
                true,
            )])),
            vec![Arc::new(a) as ArrayRef],
        )
        .unwrap();
        let mut w = ColumnParallelWriter::try_new(Vec::new(), &nullable, WriterProperties::default()).unwrap();
        w.write(&[b]).unwrap();
        let back = crate::tables::from_parquet(w.into_inner().unwrap().into()).unwrap();
        assert_eq!(back[0].column(0).null_count(), 1);
        // A file precision beyond Decimal128's 38 digits is an error (of the writer or the
        // write), never a panic.
        let s39 = Arc::new(Schema::new(vec![Field::new(
            "points",
            DataType::Decimal128(39, 6),
            false,
        )]));
        let (_, b38) = decimals(38, &[1]);
        if let Ok(mut w) = ColumnParallelWriter::try_new(Vec::new(), &s39, WriterProperties::default()) {
            assert!(w.write(&[b38]).is_err());
        }
    }
}
