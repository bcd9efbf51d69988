//! Fixed-point arithmetic for scores and money. Multipliers are integer parts-per-million; pool
//! arithmetic uses 256-bit intermediates so `pool × points` never overflows.

use ethnum::U256;

/// A multiplier in parts per million: 1.0 = 1_000_000.
pub type Ppm = u64;

/// One, in ppm.
pub const SCALE: Ppm = 1_000_000;

/// Convert a decimal policy value to ppm, refusing NaN, negatives and values above `max`.
///
/// ```
/// use tessera::fixed::to_ppm;
/// assert_eq!(to_ppm(0.25, 1.0), Some(250_000));
/// assert_eq!(to_ppm(1.5, 1.0), None);
/// assert_eq!(to_ppm(f64::NAN, 1.0), None);
/// ```
pub fn to_ppm(x: f64, max: f64) -> Option<Ppm> {
    if x.is_finite() && x >= 0.0 && x <= max {
        Some((x * SCALE as f64).round() as Ppm)
    } else {
        None
    }
}

/// Product of ppm multipliers, in ppm, rounded down once at the end.
///
/// ```
/// use tessera::fixed::mul_ppm;
/// assert_eq!(mul_ppm(&[500_000, 2_000_000, 750_000]), 750_000);
/// assert_eq!(mul_ppm(&[]), 1_000_000);
/// ```
pub fn mul_ppm(factors: &[Ppm]) -> Ppm {
    let mut acc = U256::from(1u8);
    let mut den = U256::from(1u8);
    for (i, f) in factors.iter().enumerate() {
        acc *= U256::from(*f);
        if i > 0 {
            den *= U256::from(SCALE);
        }
    }
    if factors.is_empty() {
        return SCALE;
    }
    let q = acc / den;
    q.try_into().unwrap_or(u64::MAX)
}

/// `floor(a × b / c)` and the remainder, exact for any u128 inputs; `None` when `c` is zero or
/// the quotient does not fit in u128.
///
/// ```
/// use tessera::fixed::mul_div_rem;
/// let (q, r) = mul_div_rem(u128::MAX, 3, 4).unwrap();
/// assert_eq!(q, u128::MAX / 4 * 3 + 2);
/// assert_eq!(r, 1);
/// assert_eq!(mul_div_rem(u128::MAX, 2, 1), None);
/// ```
pub fn mul_div_rem(a: u128, b: u128, c: u128) -> Option<(u128, u128)> {
    if c == 0 {
        return None;
    }
    let p = U256::from(a) * U256::from(b);
    let c = U256::from(c);
    let q = p / c;
    let r = p % c;
    Some((q.try_into().ok()?, r.as_u128()))
}
