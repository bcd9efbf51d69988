//! Sines and cosines of angles that change little from one call to the next (the latitudes of
//! consecutive fixes, metres apart), without a call into the C library's `sin_cos` each time.
//! Used where a value is a *fast value* with a known error bound: the H3 indexer's fast paths
//! (which keep margins far above it) and the trust detectors' local projections (decided by
//! [`crate::trust`]'s `certain` bounds, recomputed exactly otherwise). No output is ever one
//! of these values.

/// `sin` and `cos` of angles near an anchor angle: from the anchor's values by the
/// angle-addition formula with the difference's Taylor series, re-anchored (one `sin_cos`) when
/// an angle is over [`NEAR_RAD`] away. Within [`NEAR_ERR`] of `sin_cos` (the test below finds
/// at most ~4e-16).
#[derive(Clone, Copy)]
pub(crate) struct NearSinCos {
    anchor: f64,
    sin: f64,
    cos: f64,
}

/// How far from its anchor [`NearSinCos`] takes an angle (radians, ~6 km of latitude): the
/// series' first dropped terms, d⁵/120 and d⁶/720, are then below 1e-17.
const NEAR_RAD: f64 = 1e-3;

/// The absolute error bound claimed for [`NearSinCos`]'s values against the C library's
/// `sin_cos` of the same angle: 1e-15, 2.5 times what the test finds. Its parts: the anchor's
/// `sin_cos` and the compared value, each within an ulp of the true value (≤ 1.1e-16 each); the
/// series' rounding (≤ 1.1e-16 for `cos d`) and its dropped terms (< 1e-17); two products and a
/// sum of terms at most 1 in magnitude (≤ 5.5e-17 each): ~4.5e-16 in all.
pub(crate) const NEAR_ERR: f64 = 1e-15;

impl NearSinCos {
    /// No anchor yet: the first angle is computed exactly and becomes the anchor.
    pub(crate) const NONE: NearSinCos = NearSinCos {
        anchor: f64::NAN,
        sin: f64::NAN,
        cos: f64::NAN,
    };

    /// `(sin a, cos a)`, each within [`NEAR_ERR`]; `a` in radians, any finite value (`NaN`
    /// gives `NaN`s).
    #[inline]
    pub(crate) fn sin_cos(&mut self, a: f64) -> (f64, f64) {
        let d = a - self.anchor;
        // NaN: no anchor yet.
        if d.is_nan() || d.abs() > NEAR_RAD {
            (self.sin, self.cos) = a.sin_cos();
            self.anchor = a;
            return (self.sin, self.cos);
        }
        let d2 = d * d;
        let (sin_d, cos_d) = (d - d * d2 * (1.0 / 6.0), 1.0 - 0.5 * d2 + d2 * d2 * (1.0 / 24.0));
        (self.sin * cos_d + self.cos * sin_d, self.cos * cos_d - self.sin * sin_d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_near_sin_cos_is_within_4e_16_of_sin_cos() {
        let mut rng = crate::trust::testing::Units(0x51_7cc1_b727_220a);
        let mut worst = 0.0f64;
        for walk in 0..2_000 {
            let mut sc = NearSinCos::NONE;
            let mut a = (2.0 * rng.next() - 1.0) * std::f64::consts::PI;
            // Steps from a micrometre to past the re-anchoring distance.
            let step = 10f64.powi(-(walk % 9) - 2);
            for _ in 0..500 {
                a += (2.0 * rng.next() - 1.0) * step;
                let ((s, c), (s0, c0)) = (sc.sin_cos(a), a.sin_cos());
                worst = worst.max((s - s0).abs()).max((c - c0).abs());
            }
        }
        assert!(worst <= NEAR_ERR / 2.5, "{worst:e}");
    }
}
