//! Stage 2, visits: where the visits of the epoch are while sources are covered — in memory
//! until they outgrow the budget, then range buckets on disk (`spill.rs`).

use crate::cells::VisitMap;
use crate::lake::Result;
use crate::novelty::VisitRow;
use crate::spill;
use rayon::prelude::*;
use std::path::PathBuf;

/// Where the visits of the epoch are while sources are covered: in memory until they outgrow
/// the budget, then range buckets on disk (`spill.rs`).
///
/// In memory they are a plain list, each source's visits appended as the source is folded: a
/// (cell, device) that several sources of one device visited appears once per source until
/// [`VisitStore::sorted`] merges them (`Visit::merge` is commutative and associative, so the
/// order never matters). Appending costs a copy per visit; a map keyed by (cell, device) cost a
/// cache miss per visit, and growing it rehashed every visit again on the folding thread.
pub(super) struct VisitStore {
    pub rows: Vec<VisitRow>,
    /// Rows held in memory before they go to the spill buckets.
    pub max: usize,
    pub spill: Option<spill::Spill>,
    pub dir: PathBuf,
    /// Whether `rows` are already [`VisitStore::sorted`] ([`VisitStore::sort_in_memory`]).
    pub sorted: bool,
}

impl VisitStore {
    pub fn add(&mut self, visits: VisitMap) -> Result<()> {
        self.sorted = false;
        self.rows.extend(
            visits
                .into_iter()
                .map(|((cell, device), visit)| VisitRow { cell, device, visit }),
        );
        if self.rows.len() > self.max {
            if self.spill.is_none() {
                let cells: Vec<u64> = self.rows.iter().map(|r| r.cell).collect();
                let bounds = spill::bounds_from(cells, spill::BUCKETS);
                self.spill = Some(spill::Spill::new(&self.dir, bounds)?);
            }
            self.spill.as_mut().expect("created above").drain(&mut self.rows)?;
        }
        Ok(())
    }

    /// When nothing spilled, put the rows held in memory in [`VisitStore::sorted`] order now
    /// (once): the first thing scoring does, done while the trust stage runs.
    pub fn sort_in_memory(&mut self) {
        if self.spill.is_none() && !self.sorted {
            self.rows = Self::sorted(std::mem::take(&mut self.rows));
            self.sorted = true;
        }
    }

    /// `rows` in (cell, device) order with the visits of one (cell, device) merged into one row.
    pub fn sorted(mut rows: Vec<VisitRow>) -> Vec<VisitRow> {
        // Rows of one key are merged whatever their order, so an unstable sort is exact.
        rows.par_sort_unstable_by_key(|r| (r.cell, r.device));
        rows.dedup_by(|later, kept| {
            let same = (later.cell, later.device) == (kept.cell, kept.device);
            if same {
                kept.visit = kept.visit.merge(later.visit);
            }
            same
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::VisitStore;
    use crate::cells::Visit;
    use crate::novelty::VisitRow;

    fn row(cell: u64, device: u32, t: i64, fixes: u32, hdop: u32) -> VisitRow {
        VisitRow {
            cell,
            device,
            visit: Visit {
                first_ms: t,
                last_ms: t + 1000,
                fixes,
                best_hdop_centi: hdop,
            },
        }
    }

    #[test]
    fn rule_sorted_merges_the_rows_of_one_cell_and_device_in_any_order() {
        let rows = vec![
            row(7, 1, 5_000, 2, 90),
            row(3, 0, 1_000, 1, 80),
            row(7, 1, 2_000, 3, 70),
            row(7, 0, 9_000, 1, 60),
            row(7, 1, 8_000, 1, 95),
        ];
        let want = vec![
            row(3, 0, 1_000, 1, 80),
            row(7, 0, 9_000, 1, 60),
            VisitRow {
                visit: Visit {
                    first_ms: 2_000,
                    last_ms: 9_000,
                    fixes: 6,
                    best_hdop_centi: 70,
                },
                ..row(7, 1, 0, 0, 0)
            },
        ];
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(VisitStore::sorted(rows.clone()), want);
        assert_eq!(VisitStore::sorted(reversed), want);
        // Sorted ahead of scoring (while trust runs): the same rows; rows added after that
        // are sorted in again, never skipped.
        let mut store = VisitStore {
            rows: rows.clone(),
            max: 100,
            spill: None,
            dir: std::env::temp_dir(),
            sorted: false,
        };
        store.sort_in_memory();
        assert_eq!(store.rows, want);
        let mut more = crate::cells::VisitMap::default();
        more.insert((1, 0), row(1, 0, 1_000, 1, 80).visit);
        store.add(more).unwrap();
        store.sort_in_memory();
        assert_eq!(store.rows[0], row(1, 0, 1_000, 1, 80));
        assert_eq!(store.rows[1..], want[..]);
    }
}
