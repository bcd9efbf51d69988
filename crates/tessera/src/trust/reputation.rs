//! Reputation: a per-device trust score in ppm, kept in the lake across epochs
//! (`epochs/E/trust.parquet`). A device never seen starts at `trust.reputation.initial`; an
//! epoch with evidence of cheating (see [`super::Finding::is_cheating`]) lowers it by
//! `trust.reputation.penalty`, a clean epoch with sources raises it by
//! `trust.reputation.recovery` (up to 1). The score a device enters an epoch with is that
//! epoch's `trust` multiplier in `explain.parquet`. Integers only.

use super::policy::TrustKernels;
use crate::fixed::{Ppm, SCALE};

/// The reputation after an epoch.
///
/// ```
/// use tessera::trust::reputation::next;
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// assert_eq!(next(1_000_000, true, &k), 750_000);
/// assert_eq!(next(750_000, false, &k), 800_000);
/// assert_eq!(next(100_000, true, &k), 0);
/// ```
pub fn next(before: Ppm, cheating: bool, k: &TrustKernels) -> Ppm {
    if cheating {
        before.saturating_sub(k.penalty)
    } else {
        before.saturating_add(k.recovery).min(SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::k;

    #[test]
    fn rule_reputation_falls_with_evidence_and_recovers_with_clean_epochs() {
        let k = k();
        let mut r = k.initial;
        for _ in 0..2 {
            r = next(r, true, &k);
        }
        assert_eq!(r, 500_000);
        for _ in 0..10 {
            r = next(r, false, &k);
        }
        assert_eq!(r, 1_000_000);
    }
}
