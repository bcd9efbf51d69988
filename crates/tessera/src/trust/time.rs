//! Time rules at epoch time: a fix later than its source's receipt (plus the policy's allowance)
//! was not recorded when the network received it (`future`); a fix older than the receipt by
//! more than the policy's delay is `stale` (off by default, since a lake also holds archives).
//! The upload server's receipt time is the source's `received_at`; sources without one (older
//! lakes) are not checked. Clock steps are handled where time order is checked
//! (`quality::clean`, `trust.time.clock_step_m`).

use super::policy::TrustKernels;
use super::{Detector, Effect, Finding};
use crate::fix::Fix;
use crate::ingest::receipt::fmt_ms;

/// Indices of the fixes that pass the time rules; one finding per rule that withheld any.
///
/// ```
/// use tessera::{fix::Fix, trust::time::check};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// let fixes = [Fix::new(0, 1.0, 1.0), Fix::new(1_000_000, 1.0, 1.0)];
/// let refs: Vec<&Fix> = fixes.iter().collect();
/// let mut ev = Vec::new();
/// assert_eq!(check(&refs, Some(500_000), &k, &mut ev), vec![0]);
/// assert_eq!(ev[0].detector.as_str(), "future");
/// ```
pub fn check(fixes: &[&Fix], received_ms: Option<i64>, k: &TrustKernels, findings: &mut Vec<Finding>) -> Vec<usize> {
    let Some(rx) = received_ms else {
        return (0..fixes.len()).collect();
    };
    let mut keep = Vec::with_capacity(fixes.len());
    let mut future: Vec<usize> = Vec::new();
    let mut stale: Vec<usize> = Vec::new();
    for (i, f) in fixes.iter().enumerate() {
        if f.time_ms > rx.saturating_add(k.max_future_ms) {
            future.push(i);
        } else if k.max_delay_ms.is_some_and(|d| f.time_ms < rx.saturating_sub(d)) {
            stale.push(i);
        } else {
            keep.push(i);
        }
    }
    let mut note = |idx: &[usize], detector, key, measured: String, threshold: String| {
        if let (Some(&a), Some(&b)) = (idx.first(), idx.last()) {
            findings.push(Finding {
                detector,
                start_ms: fixes[a].time_ms,
                end_ms: fixes[b].time_ms,
                measured,
                threshold,
                policy_key: key,
                effect: Effect::WithholdFixes,
                fixes: idx.len() as u64,
                meters: super::path_m(fixes, idx).round() as u64,
                detail: format!("{} fixes timed against the receipt at {}", idx.len(), fmt_ms(rx)),
            });
        }
    };
    if let Some(&last) = future.last() {
        note(
            &future,
            Detector::Future,
            "trust.time.max_future_s",
            format!("{} s after receipt", (fixes[last].time_ms - rx) / 1000),
            format!("{} s", k.max_future_ms / 1000),
        );
    }
    if let (Some(&first), Some(d)) = (stale.first(), k.max_delay_ms) {
        note(
            &stale,
            Detector::Stale,
            "trust.time.max_delay_days",
            format!(
                "{:.1} days before receipt",
                (rx - fixes[first].time_ms) as f64 / 86_400_000.0
            ),
            format!("{} days", d / 86_400_000),
        );
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::*;

    #[test]
    fn rule_fixes_after_the_receipt_are_future_and_withheld() {
        let f = drive(100, 10.0, 1.0);
        let rx = f[49].time_ms; // received mid-drive: the second half is from the future
        let mut ev = Vec::new();
        let keep = check(&refs(&f), Some(rx), &k(), &mut ev);
        // the allowance is 300 s: all 100 s are within it
        assert_eq!(keep.len(), 100);
        let mut strict = k();
        strict.max_future_ms = 10_000;
        let keep = check(&refs(&f), Some(rx), &strict, &mut ev);
        assert_eq!(keep.len(), 60);
        assert_eq!(ev[0].detector, Detector::Future);
        assert_eq!(ev[0].fixes, 40);
    }

    #[test]
    fn rule_stale_fixes_are_withheld_only_with_a_delay_in_the_policy() {
        let f = drive(10, 10.0, 1.0);
        let rx = f[0].time_ms + 20 * 86_400_000;
        let mut ev = Vec::new();
        assert_eq!(check(&refs(&f), Some(rx), &k(), &mut ev).len(), 10);
        let mut weekly = k();
        weekly.max_delay_ms = Some(14 * 86_400_000);
        assert!(check(&refs(&f), Some(rx), &weekly, &mut ev).is_empty());
        assert_eq!(ev[0].detector, Detector::Stale);
        assert_eq!(ev[0].policy_key, "trust.time.max_delay_days");
    }

    #[test]
    fn rule_a_source_without_a_receipt_time_is_not_checked() {
        let f = drive(10, 10.0, 1.0);
        let mut ev = Vec::new();
        assert_eq!(check(&refs(&f), None, &k(), &mut ev).len(), 10);
        assert!(ev.is_empty());
    }
}
