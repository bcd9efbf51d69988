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
    // floor(∏f / SCALE^(n−1)). A factor of exactly one (SCALE) cancels one SCALE of the
    // denominator: floor(a·S / (d·S)) = floor(a / d). Most of a visit's multipliers are one,
    // so what is left usually fits a u128 (or a u64); a product that does not is computed in
    // 256 bits as before. The same quotient either way (tested against the 256-bit form).
    let mut acc: u128 = 1;
    let mut n = 0u32;
    for &f in factors {
        if f == SCALE {
            continue;
        }
        match acc.checked_mul(u128::from(f)) {
            Some(p) => acc = p,
            None => return mul_ppm_wide(factors),
        }
        n += 1;
    }
    if n == 0 {
        return SCALE; // no factor, or all of them one
    }
    // SCALE^(n−1) = 10^(6(n−1)): from n = 8 on (10^42) it exceeds every u128 (< 3.5·10^38),
    // so the quotient is 0.
    let q = match 6 * (n - 1) {
        0 => acc,
        e if e <= 36 => {
            let den = 10u128.pow(e);
            match (u64::try_from(acc), u64::try_from(den)) {
                (Ok(a), Ok(d)) => u128::from(a / d),
                _ => acc / den,
            }
        }
        _ => 0,
    };
    q.try_into().unwrap_or(u64::MAX)
}

/// [`mul_ppm`] in 256-bit integers throughout: ∏f and SCALE^(n−1), then one division (exact
/// while both stay below 2^256: up to 13 factors, and 4 of any size).
fn mul_ppm_wide(factors: &[Ppm]) -> Ppm {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The 256-bit form, or `None` where it would overflow (its exact domain).
    fn wide(factors: &[Ppm]) -> Option<Ppm> {
        let mut acc = U256::from(1u8);
        for f in factors {
            acc = acc.checked_mul(U256::from(*f))?;
        }
        let mut den = U256::from(1u8);
        for _ in 1..factors.len() {
            den = den.checked_mul(U256::from(SCALE))?;
        }
        Some(mul_ppm_wide(factors))
    }

    #[test]
    fn rule_mul_ppm_equals_the_256_bit_product_floor() {
        let mut next = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1d);
        let special = [
            0,
            1,
            2,
            SCALE - 1,
            SCALE,
            SCALE + 1,
            2 * SCALE,
            999_999_999,
            u64::MAX / 3,
            u64::MAX,
        ];
        let (mut checked, mut fast, mut seven) = (0, 0, 0);
        for _ in 0..300_000 {
            let len = (next() % 9) as usize;
            let factors: Vec<Ppm> = (0..len)
                .map(|_| match next() % 8 {
                    0..=2 => SCALE,
                    3 => special[(next() % special.len() as u64) as usize],
                    4 => next() % 4 * 500_000,
                    5 => next(),
                    // Seven of these multiply to 10^35..2·10^38: around SCALE^6, in a u128.
                    6 => 100_000 + next() % 200_000,
                    _ => next() % 10_000_000,
                })
                .collect();
            if let Some(want) = wide(&factors) {
                assert_eq!(mul_ppm(&factors), want, "{factors:?}");
                checked += 1;
                fast += usize::from(factors.iter().all(|f| *f < 1 << 40));
                let big = factors.iter().filter(|f| **f != SCALE).count();
                seven += usize::from(big >= 7 && mul_ppm(&factors) > 0);
            }
        }
        assert!(
            checked > 250_000 && fast > 100_000 && seven > 0,
            "{checked} {fast} {seven}"
        );
        // The edges: nothing, all ones, one zero, a quotient past u64 (saturated), 8+ factors.
        assert_eq!(mul_ppm(&[]), SCALE);
        assert_eq!(mul_ppm(&[SCALE; 6]), SCALE);
        assert_eq!(mul_ppm(&[SCALE, 0, SCALE]), 0);
        assert_eq!(mul_ppm(&[u64::MAX, u64::MAX]), mul_ppm_wide(&[u64::MAX, u64::MAX]));
        assert_eq!(mul_ppm(&[u64::MAX, u64::MAX]), u64::MAX);
        assert_eq!(mul_ppm(&[2; 9]), 0);
        assert_eq!(mul_ppm(&[2 * SCALE; 9]), 512 * SCALE);
    }
}
