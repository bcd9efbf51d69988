//! Region multiplier: the weight of the `[[regions]]` area a cell's centre lies in, or
//! `[novelty] outside_region_weight` (default 1) outside every region. With no regions
//! configured it is 1 everywhere (policy v1).

use crate::fixed::Ppm;
use crate::places::Places;

/// Region (index into `places.regions`) and multiplier of a cell.
///
/// ```
/// use tessera::places::{Places, Region};
/// let p = Places { regions: vec![Region { name: "port".into(), weight: 2_000_000 }], region_cells: vec![(7, 0)], ..Places::default() };
/// assert_eq!(tessera::novelty::region::region_weight(7, &p, 1_000_000), (Some(0), 2_000_000));
/// assert_eq!(tessera::novelty::region::region_weight(8, &p, 500_000), (None, 500_000));
/// ```
pub fn region_weight(cell: u64, places: &Places, outside: Ppm) -> (Option<u32>, Ppm) {
    weight_of(places.region_of(cell), places, outside)
}

/// [`region_weight`], the region looked up from `*at` ([`Places::region_of_near`]): cells in
/// order cost a few cache lines each.
///
/// ```
/// use tessera::places::{Places, Region};
/// let p = Places { regions: vec![Region { name: "port".into(), weight: 2_000_000 }], region_cells: vec![(7, 0)], ..Places::default() };
/// let mut at = 0;
/// assert_eq!(tessera::novelty::region::region_weight_near(7, &p, 1_000_000, &mut at), (Some(0), 2_000_000));
/// ```
pub fn region_weight_near(cell: u64, places: &Places, outside: Ppm, at: &mut usize) -> (Option<u32>, Ppm) {
    weight_of(places.region_of_near(cell, at), places, outside)
}

fn weight_of(region: Option<u32>, places: &Places, outside: Ppm) -> (Option<u32>, Ppm) {
    match region {
        Some(r) => (Some(r), places.regions[r as usize].weight),
        None => (None, outside),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::places::Region;

    #[test]
    fn region_weight_is_one_everywhere_in_policy_v1() {
        for c in [0u64, 1, u64::MAX] {
            assert_eq!(
                region_weight(c, &Places::default(), crate::fixed::SCALE),
                (None, crate::fixed::SCALE)
            );
        }
    }

    #[test]
    fn region_weight_is_the_containing_regions_weight_else_the_outside_weight() {
        let p = Places {
            regions: vec![
                Region {
                    name: "a".into(),
                    weight: 3_000_000,
                },
                Region {
                    name: "b".into(),
                    weight: 0,
                },
            ],
            region_cells: vec![(10, 1), (20, 0)],
            ..Places::default()
        };
        assert_eq!(region_weight(20, &p, 1_000_000), (Some(0), 3_000_000));
        assert_eq!(region_weight(10, &p, 1_000_000), (Some(1), 0));
        assert_eq!(region_weight(15, &p, 250_000), (None, 250_000));
    }
}
