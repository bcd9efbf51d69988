//! The coverage state: per cell, the first and last epoch it was covered and how many epochs
//! covered it. Epoch E reads the snapshot left by the latest earlier epoch in the lake and writes
//! its own as `epochs/E/coverage.parquet`.

use crate::novelty::freshness::CellState;
use crate::tables::coverage_rows;
use arrow_array::RecordBatch;
use std::collections::HashMap;

/// Cell → state.
pub type Coverage = HashMap<u64, CellState, rustc_hash::FxBuildHasher>;

/// The coverage after an epoch for one range of cells: the prior state of the range (cell order)
/// merged with the cells covered in the epoch with index `e` (ascending, distinct). Covered cells
/// are advanced by [`advance_cell`], prior cells not covered are kept as they were. Returns the
/// merged rows in cell order and how many covered cells were new (never covered before).
///
/// ```
/// use tessera::{novelty::freshness::CellState, state::merge};
/// let old = CellState { first_epoch: 1, last_epoch: 1, times_covered: 1 };
/// let (rows, new) = merge(&[(5, old), (9, old)], &[5, 7], 3);
/// assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [5, 7, 9]);
/// assert_eq!((rows[0].1.times_covered, rows[1].1.first_epoch, rows[2].1), (2, 3, old));
/// assert_eq!(new, 1);
/// ```
pub fn merge(prior: &[(u64, CellState)], covered: &[u64], e: i64) -> (Vec<(u64, CellState)>, u64) {
    let mut next = Vec::with_capacity(prior.len() + covered.len());
    let mut new = 0;
    let (mut i, mut j) = (0, 0);
    while i < prior.len() || j < covered.len() {
        match (prior.get(i), covered.get(j)) {
            (Some(&(pc, ps)), Some(&cc)) if pc == cc => {
                next.push((cc, advance_cell(Some(ps), e)));
                i += 1;
                j += 1;
            }
            (Some(&(pc, ps)), Some(&cc)) if pc < cc => {
                next.push((pc, ps));
                i += 1;
            }
            (Some(&(pc, ps)), None) => {
                next.push((pc, ps));
                i += 1;
            }
            (_, Some(&cc)) => {
                next.push((cc, advance_cell(None, e)));
                new += 1;
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    (next, new)
}

/// The state of one cell covered in the epoch with index `e`, given its state before (`None`:
/// never covered). The rule [`merge`] applies to every covered cell.
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

/// Parse coverage batches back (`tables::coverage_rows` of each).
///
/// # Errors
/// A message naming a missing column or a bad epoch name.
///
/// ```
/// use tessera::{novelty::freshness::CellState, tables};
/// let s = CellState { first_epoch: 1, last_epoch: 2, times_covered: 2 };
/// let cov = tessera::state::from_batches(&[tables::coverage_batch(&[(7, s)])]).unwrap();
/// assert_eq!(cov[&7], s);
/// ```
pub fn from_batches(batches: &[RecordBatch]) -> Result<Coverage, String> {
    let mut cov = Coverage::default();
    for b in batches {
        cov.extend(coverage_rows(b)?);
    }
    Ok(cov)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(first: i64, last: i64, times: u32) -> CellState {
        CellState {
            first_epoch: first,
            last_epoch: last,
            times_covered: times,
        }
    }

    #[test]
    fn merge_advances_covered_cells_keeps_the_others_and_counts_new_ones() {
        let prior = [(2, st(1, 1, 1)), (4, st(1, 2, 2)), (8, st(2, 2, 1))];
        let (rows, new) = merge(&prior, &[1, 4, 9], 5);
        assert_eq!(
            rows,
            [
                (1, st(5, 5, 1)),
                (2, st(1, 1, 1)),
                (4, st(1, 5, 3)),
                (8, st(2, 2, 1)),
                (9, st(5, 5, 1))
            ]
        );
        assert_eq!(new, 2);
    }

    #[test]
    fn merge_of_nothing_covered_is_the_prior_and_of_no_prior_is_all_new() {
        let prior = [(3, st(0, 0, 1))];
        assert_eq!(merge(&prior, &[], 4), (prior.to_vec(), 0));
        let (rows, new) = merge(&[], &[1, 2], 4);
        assert_eq!((rows.len(), new), (2, 2));
    }

    #[test]
    fn merge_does_not_count_a_cell_twice_in_one_epoch() {
        let (rows, _) = merge(&[(3, st(4, 4, 1))], &[3], 4);
        assert_eq!(rows, [(3, st(4, 4, 1))]);
    }
}
