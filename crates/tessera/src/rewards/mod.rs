//! Rewards: each recipient gets floor(pool × points / total); the remainder goes one base unit
//! each to the largest fractional remainders, ties broken by recipient. Amounts sum to the pool
//! exactly. Pure integers (u128 with 256-bit intermediates).

use crate::fixed::mul_div_rem;

pub mod bounty;
pub mod cap;
pub mod emission;

/// One recipient's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Recipient (wallet).
    pub recipient: String,
    /// Points, millionths.
    pub points: u128,
    /// Amount in base units.
    pub amount: u128,
}

/// Why an allocation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    /// The same recipient appears twice.
    #[error("recipient {0} appears twice")]
    DuplicateRecipient(String),
    /// Total points overflow u128.
    #[error("total points overflow")]
    Overflow,
}

/// Allocate `pool` over `(recipient, points)`. Recipients with zero points get nothing and are
/// left out; an empty or all-zero input allocates nothing (the caller reports it).
///
/// ```
/// use tessera::rewards::allocate;
/// let s = allocate(10, &[("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]).unwrap();
/// assert_eq!(s.iter().map(|x| x.amount).collect::<Vec<_>>(), [4, 3, 3]);
/// assert_eq!(s.iter().map(|x| x.amount).sum::<u128>(), 10);
/// ```
///
/// # Errors
/// [`AllocError`] when a recipient appears twice or the total points overflow u128.
pub fn allocate(pool: u128, points: &[(String, u128)]) -> Result<Vec<Share>, AllocError> {
    let mut rows: Vec<(String, u128)> = points.iter().filter(|(_, p)| *p > 0).cloned().collect();
    rows.sort();
    for w in rows.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(AllocError::DuplicateRecipient(w[0].0.clone()));
        }
    }
    let total = rows
        .iter()
        .try_fold(0u128, |a, (_, p)| a.checked_add(*p))
        .ok_or(AllocError::Overflow)?;
    if total == 0 {
        return Ok(Vec::new());
    }
    let mut shares = Vec::with_capacity(rows.len());
    let mut rems = Vec::with_capacity(rows.len());
    let mut given: u128 = 0;
    for (i, (r, p)) in rows.into_iter().enumerate() {
        let (q, rem) = mul_div_rem(pool, p, total).expect("points <= total so the share fits");
        given += q;
        rems.push((rem, i));
        shares.push(Share {
            recipient: r,
            points: p,
            amount: q,
        });
    }
    let mut left = pool - given;
    // Largest remainder first; ties by recipient (index order is recipient order).
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left == 0 {
            break;
        }
        shares[i].amount += 1;
        left -= 1;
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(pool: u128, pts: &[(&str, u128)]) -> Vec<(String, u128)> {
        let v: Vec<(String, u128)> = pts.iter().map(|(r, p)| (r.to_string(), *p)).collect();
        allocate(pool, &v)
            .unwrap()
            .into_iter()
            .map(|s| (s.recipient, s.amount))
            .collect()
    }

    #[test]
    fn allocation_is_floor_of_pro_rata_share() {
        assert_eq!(
            amounts(100, &[("a", 3), ("b", 1)]),
            [("a".into(), 75), ("b".into(), 25)]
        );
    }

    #[test]
    fn remainder_goes_to_largest_fractional_remainders() {
        // 10 × 5/9 = 5.55, 10 × 3/9 = 3.33, 10 × 1/9 = 1.11 → floors 5,3,1; 1 left → a (0.55).
        assert_eq!(
            amounts(10, &[("a", 5), ("b", 3), ("c", 1)]),
            [("a".into(), 6), ("b".into(), 3), ("c".into(), 1)]
        );
    }

    #[test]
    fn remainder_ties_break_by_recipient() {
        assert_eq!(
            amounts(2, &[("z", 1), ("m", 1), ("a", 1)]),
            [("a".into(), 1), ("m".into(), 1), ("z".into(), 0)]
        );
    }

    #[test]
    fn amounts_sum_to_pool_even_at_u128_max() {
        let pts: Vec<(String, u128)> = (0..50).map(|i| (format!("r{i:02}"), (i * 7919 + 13) as u128)).collect();
        for pool in [0, 1, 7, 1_000_000_007, u128::MAX, u128::MAX - 1] {
            let s = allocate(pool, &pts).unwrap();
            assert_eq!(s.iter().map(|x| x.amount).sum::<u128>(), pool, "pool {pool}");
        }
    }

    #[test]
    fn no_points_allocates_nothing() {
        assert!(allocate(1000, &[]).unwrap().is_empty());
        assert!(allocate(1000, &[("a".into(), 0)]).unwrap().is_empty());
    }

    #[test]
    fn input_order_does_not_matter() {
        let a = allocate(1001, &[("b".into(), 2), ("a".into(), 5), ("c".into(), 2)]).unwrap();
        let b = allocate(1001, &[("c".into(), 2), ("b".into(), 2), ("a".into(), 5)]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn duplicate_recipient_is_an_error() {
        assert!(allocate(1, &[("a".into(), 1), ("a".into(), 2)]).is_err());
    }
}
