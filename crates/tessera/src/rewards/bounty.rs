//! Bounties: a map consumer's extra pool for an area and an epoch range, allocated exactly (Σ =
//! what is available, largest remainder, as the main pool) over the recipients' points in the
//! area's cells. An epoch where nobody earned it rolls the pool over to the next epoch of the
//! range or returns it, per the bounty's `unclaimed` rule; after the range's last epoch a rolled
//! pool returns.

use super::{allocate, AllocError, Share};
use crate::epoch::Epoch;
use crate::places::policy::{parse_amount, BountyPolicy, Unclaimed};

/// A bounty's settlement in one epoch (recorded in the manifest).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settlement {
    /// Allocated to recipients.
    pub allocated: String,
    /// `pool + carried_in`.
    pub available: String,
    /// Rolled over from the previous epoch.
    pub carried_in: String,
    /// Rolled over to the next epoch.
    pub carried_out: String,
    /// The bounty's id.
    pub id: String,
    /// Points in the area (decimal, 6 places).
    pub points: String,
    /// This epoch's pool.
    pub pool: String,
    /// Recipients paid.
    pub recipients: u64,
    /// Returned to the funder.
    pub returned: String,
}

impl Settlement {
    /// `carried_out` as an integer (0 when unreadable).
    ///
    /// ```
    /// # use tessera::rewards::bounty::Settlement;
    /// # let s = Settlement { allocated: "0".into(), available: "5".into(), carried_in: "0".into(), carried_out: "5".into(),
    /// #   id: "b".into(), points: "0.000000".into(), pool: "5".into(), recipients: 0, returned: "0".into() };
    /// assert_eq!(s.carried_out_amount(), 5);
    /// ```
    pub fn carried_out_amount(&self) -> u128 {
        self.carried_out.parse().unwrap_or(0)
    }
}

/// Whether a bounty pays in `epoch`.
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str(
///     "[[bounties]]\nid = \"b\"\nsource = \"b.geojson\"\npool = \"5\"\nfirst_epoch = \"2026-W46\"\nlast_epoch = \"2026-W47\"\n").unwrap();
/// assert!(tessera::rewards::bounty::active(&p.bounties[0], "2026-W47".parse().unwrap()));
/// assert!(!tessera::rewards::bounty::active(&p.bounties[0], "2026-W48".parse().unwrap()));
/// ```
pub fn active(b: &BountyPolicy, epoch: Epoch) -> bool {
    match (b.first_epoch.parse::<Epoch>(), b.last_epoch.parse::<Epoch>()) {
        (Ok(f), Ok(l)) => f.index() <= epoch.index() && epoch.index() <= l.index(),
        _ => false,
    }
}

/// Settle an active bounty in `epoch`: `pool + carried_in` allocated over `points` (recipient,
/// points in the area), or rolled over / returned when nobody has points.
///
/// # Errors
/// As [`allocate`]; an unparsable pool (validated policies have none) allocates 0.
///
/// ```
/// use tessera::rewards::bounty::settle;
/// let p = tessera::policy::Policy::from_toml_str(
///     "[[bounties]]\nid = \"b\"\nsource = \"b.geojson\"\npool = \"10\"\nfirst_epoch = \"2026-W46\"\nlast_epoch = \"2026-W47\"\n").unwrap();
/// let (s, shares) = settle(&p.bounties[0], "2026-W46".parse().unwrap(), 0, &[]).unwrap();
/// assert_eq!((s.carried_out.as_str(), shares.len()), ("10", 0)); // rolls over to W47
/// let (s, shares) = settle(&p.bounties[0], "2026-W47".parse().unwrap(), 10, &[("w".into(), 3)]).unwrap();
/// assert_eq!((s.allocated.as_str(), shares[0].amount), ("20", 20));
/// ```
pub fn settle(
    b: &BountyPolicy,
    epoch: Epoch,
    carried_in: u128,
    points: &[(String, u128)],
) -> Result<(Settlement, Vec<Share>), AllocError> {
    let pool = parse_amount(&b.pool).unwrap_or(0);
    let available = pool.saturating_add(carried_in);
    let shares = allocate(available, points)?;
    let allocated: u128 = shares.iter().map(|s| s.amount).sum();
    let left = available - allocated;
    let last = b
        .last_epoch
        .parse::<Epoch>()
        .map(|l| l.index() <= epoch.index())
        .unwrap_or(true);
    let (carried_out, returned) = match b.unclaimed {
        Unclaimed::Rollover if !last => (left, 0),
        _ => (0, left),
    };
    let total_points: u128 = points.iter().map(|p| p.1).sum();
    Ok((
        Settlement {
            allocated: allocated.to_string(),
            available: available.to_string(),
            carried_in: carried_in.to_string(),
            carried_out: carried_out.to_string(),
            id: b.id.clone(),
            points: format!("{}.{:06}", total_points / 1_000_000, total_points % 1_000_000),
            pool: pool.to_string(),
            recipients: shares.len() as u64,
            returned: returned.to_string(),
        },
        shares,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bounty(unclaimed: &str) -> BountyPolicy {
        let text = format!("[[bounties]]\nid = \"b\"\nsource = \"b.geojson\"\npool = \"100\"\nfirst_epoch = \"2026-W46\"\nlast_epoch = \"2026-W48\"\nunclaimed = \"{unclaimed}\"\n");
        crate::policy::Policy::from_toml_str(&text).unwrap().bounties.remove(0)
    }

    #[test]
    fn unclaimed_rollover_carries_to_the_next_epoch_and_returns_after_the_last() {
        let b = bounty("rollover");
        let (s, _) = settle(&b, "2026-W47".parse().unwrap(), 100, &[]).unwrap();
        assert_eq!((s.carried_out.as_str(), s.returned.as_str()), ("200", "0"));
        let (s, _) = settle(&b, "2026-W48".parse().unwrap(), 200, &[]).unwrap();
        assert_eq!((s.carried_out.as_str(), s.returned.as_str()), ("0", "300"));
    }

    #[test]
    fn unclaimed_return_returns_at_once() {
        let (s, _) = settle(&bounty("return"), "2026-W46".parse().unwrap(), 0, &[]).unwrap();
        assert_eq!((s.carried_out.as_str(), s.returned.as_str()), ("0", "100"));
    }

    proptest! {
        #[test]
        fn a_claimed_bounty_is_allocated_exactly(
            carried in 0u128..1_000_000_000_000u128,
            pts in proptest::collection::vec(1u128..1_000_000_000u128, 1..30),
        ) {
            let points: Vec<(String, u128)> = pts.iter().enumerate().map(|(i, p)| (format!("r{i:02}"), *p)).collect();
            let (s, shares) = settle(&bounty("rollover"), "2026-W46".parse().unwrap(), carried, &points).unwrap();
            prop_assert_eq!(shares.iter().map(|x| x.amount).sum::<u128>(), 100 + carried);
            prop_assert_eq!(s.returned.as_str(), "0");
            prop_assert_eq!(s.carried_out.as_str(), "0");
        }
    }
}
