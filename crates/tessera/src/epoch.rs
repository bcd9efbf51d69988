//! Epochs are ISO weeks in UTC: `2026-W47` runs from Monday 00:00 to the next Monday 00:00.

use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use std::fmt;
use std::str::FromStr;

/// One reward epoch: an ISO week.
///
/// ```
/// use tessera::epoch::Epoch;
/// let e: Epoch = "2026-W47".parse().unwrap();
/// assert_eq!(e.to_string(), "2026-W47");
/// assert_eq!(e.next().to_string(), "2026-W48");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch {
    year: i32,
    week: u32,
}

/// Why an epoch string was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid epoch {0:?}: expected an ISO week like 2026-W47")]
pub struct EpochParseError(pub String);

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

impl Epoch {
    /// The epoch containing a UTC instant (ms since 1970).
    ///
    /// ```
    /// use tessera::epoch::Epoch;
    /// // 2026-11-16T00:00:00Z is the Monday of ISO week 47.
    /// assert_eq!(Epoch::containing(1_794_787_200_000 + 3 * 86_400_000).unwrap().to_string(), "2026-W47");
    /// ```
    pub fn containing(time_ms: i64) -> Option<Epoch> {
        let dt = Utc.timestamp_millis_opt(time_ms).single()?;
        let iso = dt.date_naive().iso_week();
        Some(Epoch {
            year: iso.year(),
            week: iso.week(),
        })
    }

    fn monday(&self) -> NaiveDate {
        // from_isoywd_opt validates the week number for the year.
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("validated on construction")
    }

    /// Start of the window, inclusive, UTC ms.
    ///
    /// ```
    /// let e: tessera::epoch::Epoch = "1970-W01".parse().unwrap();
    /// assert_eq!(e.start_ms(), -3 * 86_400_000); // Monday 1969-12-29
    /// ```
    pub fn start_ms(&self) -> i64 {
        self.monday()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
    }

    /// End of the window, exclusive, UTC ms.
    ///
    /// ```
    /// let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    /// assert_eq!(e.end_ms() - e.start_ms(), 7 * 86_400_000);
    /// ```
    pub fn end_ms(&self) -> i64 {
        self.start_ms() + WEEK_MS
    }

    /// Whether `time_ms` lies in `[start, end)`.
    ///
    /// ```
    /// let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    /// assert!(e.contains(e.start_ms()) && !e.contains(e.end_ms()));
    /// ```
    pub fn contains(&self, time_ms: i64) -> bool {
        time_ms >= self.start_ms() && time_ms < self.end_ms()
    }

    /// A monotone week number (weeks since the ISO week containing 1970-01-01), so that
    /// "k epochs ago" is a subtraction.
    ///
    /// ```
    /// let a: tessera::epoch::Epoch = "2025-W52".parse().unwrap();
    /// let b: tessera::epoch::Epoch = "2026-W02".parse().unwrap();
    /// assert_eq!(b.index() - a.index(), 2);
    /// ```
    pub fn index(&self) -> i64 {
        (self.start_ms() - Epoch { year: 1970, week: 1 }.start_ms()) / WEEK_MS
    }

    /// The epoch with a given [`Epoch::index`].
    ///
    /// ```
    /// let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    /// assert_eq!(tessera::epoch::Epoch::from_index(e.index()), e);
    /// ```
    pub fn from_index(index: i64) -> Epoch {
        let base = Epoch { year: 1970, week: 1 }.start_ms();
        Epoch::containing(base + index * WEEK_MS).expect("in chrono's range")
    }

    /// The following epoch.
    ///
    /// ```
    /// let e: tessera::epoch::Epoch = "2026-W52".parse().unwrap();
    /// assert_eq!(e.next().to_string(), "2026-W53");
    /// ```
    pub fn next(&self) -> Epoch {
        Epoch::from_index(self.index() + 1)
    }

    /// The preceding epoch.
    ///
    /// ```
    /// let e: tessera::epoch::Epoch = "2026-W01".parse().unwrap();
    /// assert_eq!(e.prev().to_string(), "2025-W52");
    /// ```
    pub fn prev(&self) -> Epoch {
        Epoch::from_index(self.index() - 1)
    }
}

impl FromStr for Epoch {
    type Err = EpochParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || EpochParseError(s.to_string());
        let (y, w) = s.split_once("-W").ok_or_else(err)?;
        if y.len() != 4 || w.len() != 2 {
            return Err(err());
        }
        let year: i32 = y.parse().map_err(|_| err())?;
        let week: u32 = w.parse().map_err(|_| err())?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(err)?;
        Ok(Epoch { year, week })
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_week_window_starts_monday_utc() {
        let e: Epoch = "2026-W47".parse().unwrap();
        let start = Utc.timestamp_millis_opt(e.start_ms()).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-16T00:00:00+00:00");
        assert_eq!(start.weekday(), Weekday::Mon);
    }

    #[test]
    fn iso_week_53_and_year_boundaries() {
        assert!("2026-W53".parse::<Epoch>().is_ok()); // 2026 has 53 ISO weeks
        assert!("2025-W53".parse::<Epoch>().is_err());
        let e: Epoch = "2026-W53".parse().unwrap();
        assert_eq!(e.next().to_string(), "2027-W01");
        // 2027-01-01 is a Friday that still belongs to 2026-W53.
        let jan1 = NaiveDate::from_ymd_opt(2027, 1, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(Epoch::containing(jan1.timestamp_millis()).unwrap(), e);
    }

    #[test]
    fn malformed_epochs_are_refused() {
        for bad in ["2026-47", "2026-W7", "2026-W00", "26-W10", "2026-W47x", ""] {
            assert!(bad.parse::<Epoch>().is_err(), "{bad}");
        }
    }

    #[test]
    fn index_roundtrips_across_many_weeks() {
        let mut e: Epoch = "1999-W50".parse().unwrap();
        for _ in 0..1500 {
            let n = e.next();
            assert_eq!(n.index(), e.index() + 1);
            assert_eq!(n.prev(), e);
            e = n;
        }
    }
}
