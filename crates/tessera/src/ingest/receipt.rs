//! Fix times checked against independent clocks: a camera's frame time and the time the network
//! received the source. Pure functions; the lake supplies the receipt time.
//!
//! GPS week rollover: GPS broadcasts the week number in 10 bits, so a receiver whose firmware
//! resolves it in the wrong 1024-week era (19.6 years) reports dates exactly 1024·k weeks off
//! (IS-GPS-200 §20.3.3.3.1.1). A fix is moved by whole 1024-week steps only when an independent
//! clock confirms it; the correction is counted (`gps_week_rollover`) in the source's accounting.

use crate::report::Reason;

/// 1024 GPS weeks, ms.
pub const ROLLOVER_MS: i64 = 1024 * 7 * 86_400_000;
/// How close a frame time must be to a corrected fix time (2 days: camera clocks drift and
/// are often set to local time).
const FRAME_TOLERANCE_MS: i64 = 2 * 86_400_000;
/// How close to the receipt a rollover-corrected fix must land (4 weeks of upload delay).
const RECEIPT_TOLERANCE_MS: i64 = 28 * 86_400_000;
/// A fix more than half a rollover period (512 weeks, ~9.8 years) before its receipt is a
/// rollover candidate, never plausible as is.
const HALF_ROLLOVER_MS: i64 = ROLLOVER_MS / 2;

/// When the network received a source and how far its fixes may be from that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Receipt time, UTC ms.
    pub received_at_ms: i64,
    /// Largest accepted time of a fix after the receipt, ms (policy `receipt.max_future_s`).
    pub max_future_ms: i64,
    /// Largest accepted age of a fix at receipt, ms, if bounded (policy `receipt.max_age_days`).
    pub max_age_ms: Option<i64>,
}

/// What to do with one fix time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Keep the fix at this time; `true` when it was moved by whole GPS week rollovers.
    Keep(i64, bool),
    /// Reject it.
    Reject(Reason, String),
}

/// `time_ms` moved by the whole number of 1024-week periods that brings it within `tolerance`
/// of `clock`, if one (other than zero) does.
fn rollover_to(time_ms: i64, clock: i64, tolerance: i64) -> Option<i64> {
    let d = clock.checked_sub(time_ms)?;
    let k = (d + d.signum() * ROLLOVER_MS / 2) / ROLLOVER_MS;
    let moved = time_ms.checked_add(k.checked_mul(ROLLOVER_MS)?)?;
    (k != 0 && (clock - moved).abs() <= tolerance).then_some(moved)
}

/// Judge a fix time against the source's frame time (BlackVue `[ms]`, GnssLogger) and receipt.
///
/// Rules, in order: (1) a fix more than 2 days from its frame time by a whole number of 1024-week
/// periods (±2 days) is moved by them; otherwise the receiver's time is kept (camera clocks are
/// often wrong by hours). (2) A fix more than 512 weeks before its receipt is moved by whole
/// periods if that lands it within 4 weeks before the receipt (or up to `max_future_ms` after
/// it), else rejected `before_receipt`. (3) A fix more than `max_future_ms` after the receipt is
/// rejected `after_receipt`; (4) one older than `max_age_ms` at receipt `before_receipt`.
///
/// ```
/// use tessera::ingest::receipt::{judge, Judgement, Receipt, ROLLOVER_MS};
/// let r = Receipt { received_at_ms: 1_795_000_000_000, max_future_ms: 300_000, max_age_ms: None };
/// assert_eq!(judge(1_794_990_000_000, None, Some(&r)), Judgement::Keep(1_794_990_000_000, false));
/// assert_eq!(judge(1_794_990_000_000 - ROLLOVER_MS, None, Some(&r)), Judgement::Keep(1_794_990_000_000, true));
/// assert!(matches!(judge(1_795_000_400_000, None, Some(&r)), Judgement::Reject(..)));
/// ```
pub fn judge(time_ms: i64, frame_ms: Option<i64>, receipt: Option<&Receipt>) -> Judgement {
    let mut t = time_ms;
    let mut rolled = false;
    if let Some(f) = frame_ms
        && (f - t).abs() > FRAME_TOLERANCE_MS
        && let Some(moved) = rollover_to(t, f, FRAME_TOLERANCE_MS)
    {
        (t, rolled) = (moved, true);
    }
    let Some(r) = receipt else {
        return Judgement::Keep(t, rolled);
    };
    let at = |ms: i64| fmt_ms(ms);
    if r.received_at_ms - t > HALF_ROLLOVER_MS {
        let moved =
            rollover_to(t, r.received_at_ms, RECEIPT_TOLERANCE_MS).filter(|m| *m <= r.received_at_ms + r.max_future_ms);
        match moved {
            Some(m) => (t, rolled) = (m, true),
            None => {
                return Judgement::Reject(
                    Reason::BeforeReceipt,
                    format!(
                        "fix at {} is more than 512 weeks before receipt at {} and not whole GPS week rollovers from it (for an archive, give its real receipt time)",
                        at(t),
                        at(r.received_at_ms)
                    ),
                )
            }
        }
    }
    if t - r.received_at_ms > r.max_future_ms {
        return Judgement::Reject(
            Reason::AfterReceipt,
            format!(
                "fix at {} is {} s after receipt at {} (receipt.max_future_s {})",
                at(t),
                (t - r.received_at_ms) / 1000,
                at(r.received_at_ms),
                r.max_future_ms / 1000
            ),
        );
    }
    if let Some(max_age) = r.max_age_ms
        && r.received_at_ms - t > max_age
    {
        return Judgement::Reject(
            Reason::BeforeReceipt,
            format!(
                "fix at {} is {} days before receipt at {} (receipt.max_age_days {})",
                at(t),
                (r.received_at_ms - t) / 86_400_000,
                at(r.received_at_ms),
                max_age / 86_400_000
            ),
        );
    }
    Judgement::Keep(t, rolled)
}

/// Apply [`judge`] to a fix about to be accepted: its (possibly corrected) time, counting a
/// correction in `lines`, or the rejection.
pub(crate) fn settle(
    time_ms: i64,
    frame_ms: Option<i64>,
    receipt: Option<&Receipt>,
    lines: &mut crate::report::LineCounts,
) -> Result<i64, (Reason, String)> {
    match judge(time_ms, frame_ms, receipt) {
        Judgement::Keep(t, rolled) => {
            if rolled {
                *lines.corrected.entry("gps_week_rollover".into()).or_default() += 1;
            }
            Ok(t)
        }
        Judgement::Reject(reason, detail) => Err((reason, detail)),
    }
}

/// UTC ms as RFC 3339 with milliseconds (`2026-11-18T10:15:00.000Z`).
///
/// ```
/// assert_eq!(tessera::ingest::receipt::fmt_ms(1_794_824_100_000), "2026-11-16T10:15:00.000Z");
/// ```
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: i64 = 1_795_478_400_000; // 2026-11-24T00:00:00Z

    fn receipt() -> Receipt {
        Receipt {
            received_at_ms: R,
            max_future_ms: 300_000,
            max_age_ms: None,
        }
    }

    #[test]
    fn rule_week_rollover_is_corrected_when_the_frame_clock_says_so() {
        let t = 1_794_960_000_000; // 2026-11-18
        assert_eq!(
            judge(t - ROLLOVER_MS, Some(t + 3_600_000), None),
            Judgement::Keep(t, true)
        );
        // Two periods back (a 1999 rollover firmware) too.
        assert_eq!(judge(t - 2 * ROLLOVER_MS, Some(t), None), Judgement::Keep(t, true));
        // A camera clock off by hours or days is not a rollover: the receiver's time stays.
        assert_eq!(judge(t, Some(t + 5 * 86_400_000), None), Judgement::Keep(t, false));
    }

    #[test]
    fn rule_week_rollover_is_corrected_when_the_receipt_says_so_else_rejected() {
        let t = R - 86_400_000;
        assert_eq!(judge(t - ROLLOVER_MS, None, Some(&receipt())), Judgement::Keep(t, true));
        // Ten years back but not a rollover: rejected, never stored at the wrong date.
        let j = judge(t - 3650 * 86_400_000, None, Some(&receipt()));
        assert!(
            matches!(j, Judgement::Reject(Reason::BeforeReceipt, ref d) if d.contains("512 weeks")),
            "{j:?}"
        );
        // Without any independent clock nothing can be confirmed: kept as the receiver said.
        assert_eq!(
            judge(t - ROLLOVER_MS, None, None),
            Judgement::Keep(t - ROLLOVER_MS, false)
        );
    }

    #[test]
    fn rule_fixes_after_receipt_beyond_the_skew_are_rejected() {
        assert_eq!(
            judge(R + 300_000, None, Some(&receipt())),
            Judgement::Keep(R + 300_000, false)
        );
        let j = judge(R + 300_001, None, Some(&receipt()));
        assert!(
            matches!(j, Judgement::Reject(Reason::AfterReceipt, ref d) if d.contains("max_future_s 300")),
            "{j:?}"
        );
        // Stamped next week.
        assert!(matches!(
            judge(R + 7 * 86_400_000, None, Some(&receipt())),
            Judgement::Reject(Reason::AfterReceipt, _)
        ));
    }

    #[test]
    fn rule_fixes_older_than_the_policy_age_at_receipt_are_rejected() {
        let r = Receipt {
            max_age_ms: Some(30 * 86_400_000),
            ..receipt()
        };
        assert!(matches!(
            judge(R - 30 * 86_400_000, None, Some(&r)),
            Judgement::Keep(..)
        ));
        let j = judge(R - 31 * 86_400_000, None, Some(&r));
        assert!(
            matches!(j, Judgement::Reject(Reason::BeforeReceipt, ref d) if d.contains("max_age_days 30")),
            "{j:?}"
        );
    }
}
