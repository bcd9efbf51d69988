//! The coverage state: per cell, the first and last epoch it was covered and how many epochs
//! covered it. Epoch E reads the snapshot left by the latest earlier epoch in the lake and writes
//! its own as `epochs/E/coverage.parquet`.

use crate::epoch::Epoch;
use crate::io;
use crate::novelty::freshness::CellState;
use arrow_array::builder::{StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use std::collections::HashMap;
use std::sync::Arc;

/// Cell → state.
pub type Coverage = HashMap<u64, CellState, rustc_hash::FxBuildHasher>;

/// Fold the cells covered in `epoch` into the prior state.
///
/// ```
/// use tessera::{epoch::Epoch, state::{advance, Coverage}};
/// let e: Epoch = "2026-W47".parse().unwrap();
/// let s = advance(&Coverage::default(), [7u64, 7, 9], &e);
/// assert_eq!(s[&7].times_covered, 1);
/// assert_eq!(s[&7].first_epoch, e.index());
/// let s2 = advance(&s, [7u64], &e.next());
/// assert_eq!((s2[&7].times_covered, s2[&7].last_epoch), (2, e.next().index()));
/// assert_eq!(s2[&9].last_epoch, e.index());
/// ```
pub fn advance(prior: &Coverage, covered: impl IntoIterator<Item = u64>, epoch: &Epoch) -> Coverage {
    let e = epoch.index();
    let mut next = prior.clone();
    let mut seen = std::collections::HashSet::new();
    for cell in covered {
        if !seen.insert(cell) {
            continue;
        }
        let s = advance_cell(next.get(&cell).copied(), e);
        next.insert(cell, s);
    }
    next
}

/// The state of one cell covered in the epoch with index `e`, given its state before (`None`:
/// never covered). The rule [`advance`] applies to every covered cell.
///
/// ```
/// use tessera::{novelty::freshness::CellState, state::advance_cell};
/// assert_eq!(advance_cell(None, 9), CellState { first_epoch: 9, last_epoch: 9, times_covered: 1 });
/// let before = CellState { first_epoch: 2, last_epoch: 5, times_covered: 3 };
/// assert_eq!(advance_cell(Some(before), 9), CellState { first_epoch: 2, last_epoch: 9, times_covered: 4 });
/// ```
pub fn advance_cell(prior: Option<CellState>, e: i64) -> CellState {
    match prior {
        Some(mut s) => {
            if s.last_epoch < e {
                s.last_epoch = e;
                s.times_covered += 1;
            }
            s
        }
        None => CellState {
            first_epoch: e,
            last_epoch: e,
            times_covered: 1,
        },
    }
}

/// Coverage → one record batch sorted by cell.
pub fn to_batch(cov: &Coverage) -> RecordBatch {
    let mut cells: Vec<(u64, CellState)> = cov.iter().map(|(c, s)| (*c, *s)).collect();
    cells.sort_by_key(|(c, _)| *c);
    rows_to_batch(&cells)
}

/// Coverage rows (already in cell order) → one record batch.
///
/// ```
/// use tessera::{novelty::freshness::CellState, state::rows_to_batch};
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
    let mut name = |i: i64| -> String {
        names
            .entry(i)
            .or_insert_with(|| Epoch::from_index(i).to_string())
            .clone()
    };
    let mut hex = String::with_capacity(16);
    for (c, s) in cells {
        cell.append_value(*c);
        hex.clear();
        std::fmt::Write::write_fmt(&mut hex, format_args!("{c:x}")).expect("write to String");
        id.append_value(&hex);
        first.append_value(name(s.first_epoch));
        last.append_value(name(s.last_epoch));
        times.append_value(s.times_covered);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cell.finish()),
        Arc::new(id.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(times.finish()),
    ];
    RecordBatch::try_new(io::coverage_schema(), cols).expect("schema matches")
}

/// Parse coverage batches back.
pub fn from_batches(batches: &[RecordBatch]) -> Result<Coverage, String> {
    let mut cov = Coverage::default();
    for b in batches {
        cov.extend(rows_from_batch(b)?);
    }
    Ok(cov)
}

/// One coverage batch → its rows, in file order.
pub fn rows_from_batch(b: &RecordBatch) -> Result<Vec<(u64, CellState)>, String> {
    let get = |n: &str| b.column_by_name(n).ok_or_else(|| format!("column {n} missing"));
    let cell = get("cell")?.as_any().downcast_ref::<UInt64Array>().ok_or("cell type")?;
    let first = get("first_epoch")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("first_epoch type")?;
    let last = get("last_epoch")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("last_epoch type")?;
    let times = get("times_covered")?
        .as_any()
        .downcast_ref::<UInt32Array>()
        .ok_or("times_covered type")?;
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
