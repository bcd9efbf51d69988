//! A set of H3 cells answering "is this cell in it?" for a trace's consecutive fixes without a
//! search per fix: what the off-road detector asks of every accepted fix.
//!
//! H3 (h3geo.org, "H3 index bit layout"): a cell of resolution `r` is its resolution (bits
//! 52–55), base cell and `r` digits of 3 bits, digit `d` at bits `3 × (15 − d)`; the digits
//! finer than `r` are 7. A cell's last two digits (each 0–6) pick one of the 49 descendants of its
//! grandparent at resolution `r − 2`, so [`CellSet`] keeps, per grandparent, a 49-bit mask of
//! which of them are in the set: one sorted entry per ~7–49 road cells instead of one per cell,
//! and consecutive fixes (a res-12 cell is ~9 m across, its grandparent ~65 m) mostly answer
//! from the mask they already hold.

use super::lookup::gallop;

/// The bits of a cell's last two digits, when it has two (resolution ≥ 2) and both are 0–6.
fn split(cell: u64) -> Option<(u64, u32)> {
    let res = ((cell >> 52) & 0xF) as u32;
    if res < 2 {
        return None;
    }
    let shift = 3 * (15 - res);
    let (last, before) = ((cell >> shift) & 7, (cell >> (shift + 3)) & 7);
    if last > 6 || before > 6 {
        return None;
    }
    // The key keeps every other bit (resolution included), so two cells with the same key and
    // the same bit are the same cell.
    Some((cell | (0x3F << shift), (before * 7 + last) as u32))
}

/// An exact set of `u64` cells: H3 cells grouped under their grandparent as a 49-bit mask, any
/// other value (resolution 0–1, digits of 7) in a sorted list.
///
/// ```
/// use tessera::places::CellSet;
/// let cells: Vec<u64> = [0x8c1f18a240049ff_u64, 0x8c1f18a24004bff, 0x8c1f18a240059ff].into();
/// let set = CellSet::new(cells.iter().copied());
/// let mut near = Default::default();
/// assert!(set.contains_near(0x8c1f18a24004bff, &mut near));
/// assert!(!set.contains_near(0x8c1f18a24004dff, &mut near));
/// assert_eq!(set.contains_near(7, &mut near), cells.contains(&7));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellSet {
    /// (grandparent key, mask of its members), sorted by key, each key once.
    groups: Vec<(u64, u64)>,
    /// Members without a grandparent key, sorted, each once.
    other: Vec<u64>,
}

/// Where the previous [`CellSet::contains_near`] looked: the last group's key and mask, and its
/// position for the next search. Start from `Default::default()`, and use one `Near` with one
/// set only (it keeps that set's mask).
#[derive(Debug, Clone, Copy, Default)]
pub struct Near {
    last: Option<(u64, u64)>,
    at: usize,
}

impl CellSet {
    /// The set of `cells` (any order, repeats allowed).
    ///
    /// ```
    /// let set = tessera::places::CellSet::new([5u64, 5, 3].into_iter());
    /// assert!(set.contains_near(3, &mut Default::default()));
    /// ```
    pub fn new(cells: impl Iterator<Item = u64>) -> CellSet {
        let mut groups: Vec<(u64, u64)> = Vec::new();
        let mut other: Vec<u64> = Vec::new();
        for c in cells {
            match split(c) {
                // A table sorted by cell comes grouped by key already (the key only sets low
                // bits): a cell of the last group adds its bit there.
                Some((key, bit)) => match groups.last_mut() {
                    Some(g) if g.0 == key => g.1 |= 1 << bit,
                    _ => groups.push((key, 1 << bit)),
                },
                None => other.push(c),
            }
        }
        if !groups.is_sorted_by_key(|g| g.0) {
            groups.sort_unstable_by_key(|g| g.0);
        }
        groups.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 |= b.1;
            }
            same
        });
        other.sort_unstable();
        other.dedup();
        CellSet { groups, other }
    }

    /// Whether `cell` is in the set, looked up from where the previous lookup of `near` was:
    /// the same answer as a search of the cells, without a search while consecutive cells
    /// share a grandparent, and a [`gallop`] from the last position when they do not.
    ///
    /// ```
    /// let set = tessera::places::CellSet::new([0x8c1f18a240049ff_u64].into_iter());
    /// assert!(!set.contains_near(0x8c1f18a24004bff, &mut Default::default()));
    /// ```
    pub fn contains_near(&self, cell: u64, near: &mut Near) -> bool {
        let Some((key, bit)) = split(cell) else {
            return self.other.binary_search(&cell).is_ok();
        };
        let mask = match near.last {
            Some((k, m)) if k == key => m,
            _ => {
                let m = gallop(&self.groups, key, &mut near.at).map_or(0, |i| self.groups[i].1);
                near.last = Some((key, m));
                m
            }
        };
        mask >> bit & 1 == 1
    }

    /// Grandparent groups held (a measure of the set's size in memory: 16 bytes each).
    ///
    /// ```
    /// assert_eq!(tessera::places::CellSet::new([0x8c1f18a240049ff_u64, 0x8c1f18a24004bff].into_iter()).groups(), 1);
    /// ```
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cells_near(lat: f64, lon: f64, res: u8, n: u32) -> Vec<u64> {
        let r = h3o::Resolution::try_from(res).unwrap();
        let c = h3o::LatLng::new(lat, lon).unwrap().to_cell(r);
        c.grid_disk::<Vec<_>>(n).into_iter().map(u64::from).collect()
    }

    #[test]
    fn rule_cell_set_answers_as_a_search_of_its_cells() {
        // A disk of res-12 cells, every other one in the set; lookups walk the disk in index
        // order and back, and cross into cells of other resolutions and non-cells.
        let disk = cells_near(52.52, 13.40, 12, 12);
        let members: Vec<u64> = disk.iter().copied().step_by(2).collect();
        let set = CellSet::new(members.iter().copied());
        let mut sorted = members.clone();
        sorted.sort_unstable();
        let mut probes = disk.clone();
        probes.sort_unstable();
        probes.extend(disk.iter().rev());
        probes.extend(cells_near(52.52, 13.40, 10, 2));
        // A res-12 value whose last digit is 7 (not a cell) goes to the plain list's search.
        probes.extend([0, 1, u64::MAX, 0x8001fffffffffff, disk[3] | (7 << 9)]);
        let mut near = Near::default();
        for p in probes {
            assert_eq!(
                set.contains_near(p, &mut near),
                sorted.binary_search(&p).is_ok(),
                "{p:x}"
            );
        }
        assert!(
            set.groups() * 5 < members.len(),
            "{} groups for {}",
            set.groups(),
            members.len()
        );
    }

    #[test]
    fn rule_cell_set_keeps_cells_without_a_grandparent_exactly() {
        let odd = [0x8001fffffffffff_u64, 0x811fbffffffffff, 5, 5, u64::MAX];
        let set = CellSet::new(odd.into_iter());
        for c in odd {
            assert!(set.contains_near(c, &mut Near::default()), "{c:x}");
        }
        assert!(!set.contains_near(6, &mut Near::default()));
        assert_eq!(set.groups(), 0);
    }

    proptest! {
        #[test]
        fn rule_cell_set_equals_binary_search_on_random_tables(
            picks in proptest::collection::vec((0usize..400, any::<bool>()), 0..200),
            res in 2u8..=15,
            junk in proptest::collection::vec(any::<u64>(), 0..20),
        ) {
            let disk = cells_near(-33.9, 151.2, res, 11);
            let members: Vec<u64> = picks.iter().filter(|p| p.1).map(|p| disk[p.0 % disk.len()]).chain(junk.iter().copied()).collect();
            let mut sorted = members.clone();
            sorted.sort_unstable();
            let set = CellSet::new(members.iter().copied());
            let mut near = Near::default();
            for p in picks.iter().map(|p| disk[p.0 % disk.len()]).chain(junk) {
                prop_assert_eq!(set.contains_near(p, &mut near), sorted.binary_search(&p).is_ok());
            }
        }
    }
}
