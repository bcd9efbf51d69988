//! Rank multiplier: the devices visiting a cell in the epoch are ranked by their first time in
//! it (ties: device id); rank r gets `rank_weights[r-1]`, ranks past the list get 0.

use crate::fixed::Ppm;

/// Weight of a 1-based rank.
///
/// ```
/// use tessera::novelty::rank::rank_weight;
/// let w = [1_000_000, 500_000, 250_000];
/// assert_eq!(rank_weight(1, &w), 1_000_000);
/// assert_eq!(rank_weight(4, &w), 0);
/// ```
pub fn rank_weight(rank: u32, weights: &[Ppm]) -> Ppm {
    rank.checked_sub(1)
        .and_then(|i| weights.get(i as usize))
        .copied()
        .unwrap_or(0)
}

/// Order in which devices rank within one cell: by first time, then by device id.
///
/// ```
/// use tessera::novelty::rank::rank_order;
/// let mut v = vec![(10, "b"), (5, "z"), (10, "a")];
/// v.sort_by(|x, y| rank_order((x.0, x.1), (y.0, y.1)));
/// assert_eq!(v, [(5, "z"), (10, "a"), (10, "b")]);
/// ```
pub fn rank_order(a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [Ppm; 3] = [1_000_000, 500_000, 250_000];

    #[test]
    fn rank_weights_default_one_half_quarter_then_zero() {
        let got: Vec<Ppm> = (1..=5).map(|r| rank_weight(r, &W)).collect();
        assert_eq!(got, [1_000_000, 500_000, 250_000, 0, 0]);
    }

    #[test]
    fn rank_zero_is_not_a_rank() {
        assert_eq!(rank_weight(0, &W), 0);
    }

    #[test]
    fn rank_ties_on_first_time_go_to_the_smaller_device_id() {
        assert_eq!(rank_order((7, "dev-a"), (7, "dev-b")), std::cmp::Ordering::Less);
        assert_eq!(rank_order((6, "dev-z"), (7, "dev-a")), std::cmp::Ordering::Less);
    }
}
