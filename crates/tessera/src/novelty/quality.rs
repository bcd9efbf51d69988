//! Quality multiplier from the visit's best HDOP: 1 at or below `full_quality_hdop` (1.0),
//! falling linearly to `min_quality` (0.5) at the policy's HDOP limit.

use crate::fixed::{Ppm, SCALE};

/// Quality weight for a best HDOP in hundredths.
///
/// ```
/// use tessera::novelty::quality::quality_weight;
/// assert_eq!(quality_weight(80, 100, 400, 500_000), 1_000_000);
/// assert_eq!(quality_weight(250, 100, 400, 500_000), 750_000);
/// assert_eq!(quality_weight(400, 100, 400, 500_000), 500_000);
/// ```
pub fn quality_weight(hdop_centi: u32, full_centi: u32, limit_centi: u32, min_quality: Ppm) -> Ppm {
    if hdop_centi <= full_centi {
        return SCALE;
    }
    if hdop_centi >= limit_centi || limit_centi <= full_centi {
        return min_quality;
    }
    let span = u64::from(limit_centi - full_centi);
    let over = u64::from(hdop_centi - full_centi);
    // Linear from SCALE down to min_quality; rounds toward SCALE - floor(drop).
    SCALE - (SCALE.saturating_sub(min_quality)) * over / span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_is_full_at_or_below_hdop_one() {
        assert_eq!(quality_weight(0, 100, 400, 500_000), SCALE);
        assert_eq!(quality_weight(100, 100, 400, 500_000), SCALE);
    }

    #[test]
    fn quality_falls_linearly_to_half_at_the_limit() {
        let got: Vec<Ppm> = [100, 160, 220, 280, 340, 400]
            .iter()
            .map(|h| quality_weight(*h, 100, 400, 500_000))
            .collect();
        assert_eq!(got, [1_000_000, 900_000, 800_000, 700_000, 600_000, 500_000]);
    }

    #[test]
    fn quality_is_monotone_non_increasing() {
        let mut prev = SCALE;
        for h in 0..=500 {
            let q = quality_weight(h, 100, 400, 500_000);
            assert!(q <= prev);
            prev = q;
        }
    }
}
