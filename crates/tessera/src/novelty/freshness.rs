//! Freshness multiplier, from the coverage state before this epoch: a never-covered cell gets
//! the discovery weight; a cell last covered k epochs ago gets min(1, k / refresh_epochs).

use crate::fixed::{Ppm, SCALE};

/// What the coverage state knows about a cell before the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellState {
    /// Epoch index ([`crate::epoch::Epoch::index`]) of the first coverage.
    pub first_epoch: i64,
    /// Epoch index of the latest coverage.
    pub last_epoch: i64,
    /// Number of epochs in which the cell was covered.
    pub times_covered: u32,
}

/// Freshness weight and age (epochs since last covered; `None` = never covered).
///
/// ```
/// use tessera::novelty::freshness::{freshness, CellState};
/// assert_eq!(freshness(None, 100, 2_000_000, 4), (2_000_000, None));
/// let s = CellState { first_epoch: 90, last_epoch: 99, times_covered: 3 };
/// assert_eq!(freshness(Some(&s), 100, 2_000_000, 4), (250_000, Some(1)));
/// ```
pub fn freshness(
    prior: Option<&CellState>,
    epoch_index: i64,
    discovery: Ppm,
    refresh_epochs: u32,
) -> (Ppm, Option<i64>) {
    match prior {
        None => (discovery, None),
        Some(s) => {
            let k = (epoch_index - s.last_epoch).max(0);
            let w = if k >= i64::from(refresh_epochs) {
                SCALE
            } else {
                (k as u64) * SCALE / u64::from(refresh_epochs)
            };
            (w, Some(k))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(last: i64) -> CellState {
        CellState {
            first_epoch: 0,
            last_epoch: last,
            times_covered: 1,
        }
    }

    #[test]
    fn freshness_never_covered_gets_discovery_weight() {
        assert_eq!(freshness(None, 10, 2_000_000, 4).0, 2_000_000);
    }

    #[test]
    fn freshness_is_k_over_refresh_epochs_capped_at_one() {
        let got: Vec<Ppm> = (1..=6)
            .map(|k| freshness(Some(&state(10 - k)), 10, 2_000_000, 4).0)
            .collect();
        assert_eq!(got, [250_000, 500_000, 750_000, 1_000_000, 1_000_000, 1_000_000]);
    }

    #[test]
    fn freshness_rounds_down_for_non_dividing_refresh() {
        assert_eq!(freshness(Some(&state(9)), 10, 2_000_000, 3).0, 333_333);
    }

    #[test]
    fn freshness_state_from_the_same_or_a_later_epoch_counts_as_age_zero() {
        assert_eq!(freshness(Some(&state(12)), 10, 2_000_000, 4), (0, Some(0)));
    }
}
