//! Region multiplier: 1 everywhere for policy v1 (polygon regions come later).

use crate::fixed::{Ppm, SCALE};

/// Region weight of a cell.
///
/// ```
/// assert_eq!(tessera::novelty::region::region_weight(0x8c1f05a4c8a39ff), 1_000_000);
/// ```
pub fn region_weight(_cell: u64) -> Ppm {
    SCALE
}

#[cfg(test)]
mod tests {
    #[test]
    fn region_weight_is_one_everywhere_in_policy_v1() {
        for c in [0u64, 1, u64::MAX] {
            assert_eq!(super::region_weight(c), super::SCALE);
        }
    }
}
