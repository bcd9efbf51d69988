//! Per-wallet cap (`[rewards] max_wallet_share`): no recipient gets more than
//! `floor(pool × share)`; what a capped recipient would have had is redistributed exactly over the
//! others, pro rata to their points (water-filling: cap, reallocate the rest with
//! [`super::allocate`], repeat until nobody is above the cap). When every recipient is capped the
//! rest stays unallocated, and is reported.

use super::{allocate, AllocError, Share};
use crate::fixed::{mul_div_rem, Ppm, SCALE};

/// What the cap did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapOutcome {
    /// The cap, base units.
    pub cap: u128,
    /// Recipients held at the cap, sorted.
    pub capped: Vec<String>,
    /// Left unallocated because every recipient reached the cap.
    pub unallocated: u128,
}

/// Allocate `pool` over `points` with no recipient above `floor(pool × share_ppm / 10^6)`.
/// With `share_ppm` = 10^6 this is [`allocate`]. Σ amounts = pool − `unallocated`.
///
/// # Errors
/// As [`allocate`].
///
/// ```
/// use tessera::rewards::cap::allocate_capped;
/// // a would get 80 of 100; capped at 50, its excess goes to b and c (1:1).
/// let (s, o) = allocate_capped(100, &[("a".into(), 8), ("b".into(), 1), ("c".into(), 1)], 500_000).unwrap();
/// assert_eq!(s.iter().map(|x| x.amount).collect::<Vec<_>>(), [50, 25, 25]);
/// assert_eq!((o.cap, o.capped, o.unallocated), (50, vec!["a".to_string()], 0));
/// ```
pub fn allocate_capped(
    pool: u128,
    points: &[(String, u128)],
    share_ppm: Ppm,
) -> Result<(Vec<Share>, CapOutcome), AllocError> {
    if share_ppm >= SCALE {
        return Ok((
            allocate(pool, points)?,
            CapOutcome {
                cap: pool,
                ..CapOutcome::default()
            },
        ));
    }
    let cap = mul_div_rem(pool, u128::from(share_ppm), u128::from(SCALE)).map_or(0, |x| x.0);
    let mut capped: Vec<(String, u128)> = Vec::new();
    let mut free: Vec<(String, u128)> = points.iter().filter(|p| p.1 > 0).cloned().collect();
    loop {
        let rest = pool - cap * capped.len() as u128;
        let shares = allocate(rest, &free)?;
        let over: Vec<&Share> = shares.iter().filter(|s| s.amount > cap).collect();
        if over.is_empty() {
            let unallocated = if free.is_empty() { rest } else { 0 };
            let mut all = shares;
            all.extend(capped.iter().map(|(r, p)| Share {
                recipient: r.clone(),
                points: *p,
                amount: cap,
            }));
            all.sort_by(|a, b| a.recipient.cmp(&b.recipient));
            let mut names: Vec<String> = capped.into_iter().map(|c| c.0).collect();
            names.sort();
            return Ok((
                all,
                CapOutcome {
                    cap,
                    capped: names,
                    unallocated,
                },
            ));
        }
        let over: std::collections::BTreeSet<String> = over.into_iter().map(|s| s.recipient.clone()).collect();
        let (now, still): (Vec<_>, Vec<_>) = free.into_iter().partition(|p| over.contains(&p.0));
        capped.extend(now);
        free = still;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cap_cascades_until_nobody_is_above_it() {
        // 40 % cap of 100: a (60 %) capped at 40; then b gets 30/50·60 = 36 ≤ 40. c 24.
        let (s, o) = allocate_capped(100, &[("a".into(), 6), ("b".into(), 2), ("c".into(), 2)], 400_000).unwrap();
        assert!(s.iter().all(|x| x.amount <= 40));
        assert_eq!(s.iter().map(|x| x.amount).sum::<u128>(), 100);
        assert_eq!(o.capped, ["a"]);
    }

    #[test]
    fn when_everyone_is_capped_the_rest_is_reported_unallocated() {
        let (s, o) = allocate_capped(100, &[("a".into(), 1), ("b".into(), 1)], 300_000).unwrap();
        assert_eq!(s.iter().map(|x| x.amount).collect::<Vec<_>>(), [30, 30]);
        assert_eq!(o.unallocated, 40);
    }

    #[test]
    fn no_cap_is_the_plain_allocation() {
        let pts = vec![("a".to_string(), 5u128), ("b".to_string(), 3)];
        assert_eq!(
            allocate_capped(1000, &pts, SCALE).unwrap().0,
            allocate(1000, &pts).unwrap()
        );
    }

    proptest! {
        #[test]
        fn capped_amounts_sum_to_pool_minus_unallocated_and_respect_the_cap(
            pool in 0u128..1_000_000_000_000_000_000_000u128,
            pts in proptest::collection::vec(0u128..1_000_000_000u128, 0..40),
            share in 1u64..=1_000_000u64,
        ) {
            let points: Vec<(String, u128)> = pts.iter().enumerate().map(|(i, p)| (format!("r{i:03}"), *p)).collect();
            let (s, o) = allocate_capped(pool, &points, share).unwrap();
            let total: u128 = s.iter().map(|x| x.amount).sum();
            prop_assert_eq!(total + o.unallocated, if s.is_empty() && o.unallocated == 0 { total } else { pool });
            if share < SCALE {
                prop_assert!(s.iter().all(|x| x.amount <= o.cap));
            }
            // Nobody uncapped is paid more per point than a capped recipient would have been.
            prop_assert!(o.unallocated == 0 || s.iter().all(|x| x.amount == o.cap));
        }
    }
}
