//! Looking cells up in the places' sorted `(cell, value)` tables from the position of the
//! previous lookup ([`gallop`]): what scoring uses (the region and road weights of every scored
//! cell, the road length of every covered cell). The off-road share of every fix asks a
//! [`super::CellSet`] instead.

/// Where `cell` is in `rows` (sorted by cell, each cell once), searched from `*at`, the position
/// of the previous lookup: the same answer as `rows.binary_search_by_key(&cell, |r| r.0)`, found
/// by galloping (1, 2, 4… rows away from `*at`, then a binary search between the last two
/// probes). Lookups of nearby cells — a part's cells in order —
/// touch a few cache lines near the previous answer instead of the ~22 rows, most of them cache
/// misses, of a binary search over millions of road cells. `*at` is left at the answer.
///
/// # Errors
/// `Err(i)` when `cell` is not in `rows`: `i` is where it would be inserted (as
/// [`slice::binary_search`]).
///
/// ```
/// use tessera::places::gallop;
/// let rows: Vec<(u64, ())> = [3, 5, 8, 13].iter().map(|c| (*c, ())).collect();
/// let mut at = 0;
/// assert_eq!(gallop(&rows, 8, &mut at), Ok(2));
/// assert_eq!(gallop(&rows, 4, &mut at), Err(1));
/// assert_eq!(gallop(&rows, 99, &mut at), Err(4));
/// ```
pub fn gallop<T>(rows: &[(u64, T)], cell: u64, at: &mut usize) -> Result<usize, usize> {
    let n = rows.len();
    if n == 0 {
        return Err(0);
    }
    let p = (*at).min(n - 1);
    let (lo, hi) = match rows[p].0.cmp(&cell) {
        std::cmp::Ordering::Equal => {
            *at = p;
            return Ok(p);
        }
        // rows[lo - 1] < cell; the answer is in lo..hi (hi == n or rows[hi - 1] >= cell).
        std::cmp::Ordering::Less => {
            let (mut lo, mut step) = (p + 1, 1usize);
            let hi = loop {
                let probe = p.saturating_add(step);
                if probe >= n {
                    break n;
                }
                if rows[probe].0 >= cell {
                    break probe + 1;
                }
                lo = probe + 1;
                step = step.saturating_mul(2);
            };
            (lo, hi)
        }
        // rows[hi] > cell; the answer is in lo..hi (lo == 0 or rows[lo] <= cell).
        std::cmp::Ordering::Greater => {
            let (mut hi, mut step) = (p, 1usize);
            let lo = loop {
                if step > p {
                    break 0;
                }
                let probe = p - step;
                if rows[probe].0 <= cell {
                    break probe;
                }
                hi = probe;
                step = step.saturating_mul(2);
            };
            (lo, hi)
        }
    };
    let r = rows[lo..hi]
        .binary_search_by_key(&cell, |r| r.0)
        .map(|i| i + lo)
        .map_err(|i| i + lo);
    *at = match r {
        Ok(i) | Err(i) => i.min(n - 1),
    };
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rule_gallop_gives_the_binary_search_answer_from_any_start() {
        let rows: Vec<(u64, u8)> = [2u64, 3, 5, 8, 13, 21, 34, 55, 89].iter().map(|c| (*c, 0)).collect();
        for start in 0..12 {
            for cell in 0..100 {
                let mut at = start;
                let want = rows.binary_search_by_key(&cell, |r| r.0);
                assert_eq!(gallop(&rows, cell, &mut at), want, "cell {cell} from {start}");
                assert!(at < rows.len());
            }
        }
        let mut at = 5;
        assert_eq!(gallop(&Vec::<(u64, ())>::new(), 7, &mut at), Err(0));
    }

    proptest! {
        #[test]
        fn rule_gallop_equals_binary_search_on_random_tables(
            mut cells in proptest::collection::vec(any::<u64>(), 0..300),
            probes in proptest::collection::vec((any::<u64>(), 0usize..400), 1..50),
        ) {
            cells.sort_unstable();
            cells.dedup();
            let rows: Vec<(u64, ())> = cells.iter().map(|c| (*c, ())).collect();
            let mut at = 0;
            for (k, (cell, start)) in probes.into_iter().enumerate() {
                // Alternately a fresh start and the previous answer; half the probes are cells
                // of the table.
                if k % 2 == 0 {
                    at = start;
                }
                let cell = if k % 4 < 2 && !rows.is_empty() { rows[start % rows.len()].0 } else { cell };
                prop_assert_eq!(gallop(&rows, cell, &mut at), rows.binary_search_by_key(&cell, |r| r.0));
            }
        }
    }
}
