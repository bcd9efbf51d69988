//! `epochs/E/coverage.parquet`: the coverage state after an epoch, one row per cell in cell
//! order.

use crate::epoch::Epoch;
use crate::novelty::freshness::CellState;
use arrow_array::builder::{StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of `epochs/E/coverage.parquet` (coverage state after the epoch).
///
/// ```
/// assert_eq!(tessera::tables::coverage_schema().field(0).name(), "cell");
/// ```
pub fn coverage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("first_epoch", DataType::Utf8, false),
        Field::new("last_epoch", DataType::Utf8, false),
        Field::new("times_covered", DataType::UInt32, false),
    ]))
}

/// Coverage rows (already in cell order) → one record batch.
///
/// ```
/// use tessera::{novelty::freshness::CellState, tables::coverage_batch as rows_to_batch};
/// let s = CellState { first_epoch: 0, last_epoch: 0, times_covered: 1 };
/// assert_eq!(rows_to_batch(&[(1, s), (2, s)]).num_rows(), 2);
/// ```
pub fn rows_to_batch(cells: &[(u64, CellState)]) -> RecordBatch {
    let n = cells.len();
    let mut cell = UInt64Builder::with_capacity(n);
    let mut id = StringBuilder::with_capacity(n, 15 * n);
    let mut first = StringBuilder::with_capacity(n, 8 * n);
    let mut last = StringBuilder::with_capacity(n, 8 * n);
    let mut times = UInt32Builder::with_capacity(n);
    // Few distinct epochs: name each once.
    let mut names: std::collections::BTreeMap<i64, String> = std::collections::BTreeMap::new();
    fn name(names: &mut std::collections::BTreeMap<i64, String>, i: i64) -> &str {
        names.entry(i).or_insert_with(|| Epoch::from_index(i).to_string())
    }
    let mut hex = [0u8; 16];
    for (c, s) in cells {
        cell.append_value(*c);
        id.append_value(super::cell_hex(*c, &mut hex));
        first.append_value(name(&mut names, s.first_epoch));
        last.append_value(name(&mut names, s.last_epoch));
        times.append_value(s.times_covered);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cell.finish()),
        Arc::new(id.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(times.finish()),
    ];
    RecordBatch::try_new(coverage_schema(), cols).expect("schema matches")
}

/// The columns [`rows_from_batch`] reads: all but `cell_id` (the cell's hex id, for people and
/// SQL), which a reader of the coverage state need not decompress or decode.
///
/// ```
/// use tessera::tables::{coverage_schema, COVERAGE_STATE_COLUMNS};
/// let s = coverage_schema();
/// assert!(COVERAGE_STATE_COLUMNS.iter().all(|c| s.column_with_name(c).is_some()));
/// assert_eq!(COVERAGE_STATE_COLUMNS.len() + 1, s.fields().len());
/// ```
pub const COVERAGE_STATE_COLUMNS: [&str; 4] = ["cell", "first_epoch", "last_epoch", "times_covered"];

/// One coverage batch → its rows, in file order (only [`COVERAGE_STATE_COLUMNS`] are read).
///
/// # Errors
/// A message naming a missing or mistyped column or a bad epoch name.
///
/// ```
/// use tessera::{novelty::freshness::CellState, tables};
/// let s = CellState { first_epoch: 5, last_epoch: 6, times_covered: 2 };
/// assert_eq!(tables::coverage_rows(&tables::coverage_batch(&[(9, s)])).unwrap(), [(9, s)]);
/// ```
pub fn rows_from_batch(b: &RecordBatch) -> Result<Vec<(u64, CellState)>, String> {
    let cell = super::column::<UInt64Array>(b, "cell")?;
    let first = super::column::<StringArray>(b, "first_epoch")?;
    let last = super::column::<StringArray>(b, "last_epoch")?;
    let times = super::column::<UInt32Array>(b, "times_covered")?;
    // Few distinct epoch names: parse each once.
    let mut names: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    let mut index = |name: &str, i: usize| -> Result<i64, String> {
        if let Some(x) = names.get(name) {
            return Ok(*x);
        }
        let e: Epoch = name.parse().map_err(|e| format!("row {i}: {e}"))?;
        names.insert(name.to_string(), e.index());
        Ok(e.index())
    };
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        out.push((
            cell.value(i),
            CellState {
                first_epoch: index(first.value(i), i)?,
                last_epoch: index(last.value(i), i)?,
                times_covered: times.value(i),
            },
        ));
    }
    Ok(out)
}
