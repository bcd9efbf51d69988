//! Decisions from fast values, exact results: a detector compares a measured quantity (a speed,
//! an acceleration, a distance off the path) with its threshold millions of times, and nearly
//! every comparison is far from the threshold. A *fast value* — the same quantity computed
//! without libm (a Taylor form of the haversine, a plain `√(x² + y²)`) — that is known to lie
//! within [`err`] of the exact value (the one the detector has always computed, bit for bit)
//! decides the comparison whenever the threshold lies outside `v ± err(v)`. Otherwise, and
//! wherever a value is published (a finding's measured value), the detector computes the exact
//! value as before. So every decision and every published number is the exact one; only the work
//! is less.
//!
//! The bound [`err`] = `2 × 10⁻⁹ × |v| + 10⁻¹²` is claimed for every fast form of a length or
//! speed from exact inputs; each is derived below 10⁻¹² relative (a thousand times tighter) and
//! tested against the exact form at that tighter bound (the fast forms' own tests). Where the
//! inputs are fast values too — local projections with a series cosine (`enu_near`, 10⁻¹⁵ of
//! the step's length, which for a spoofer's 10,000 km step is far above `err` of a tiny
//! deviation) — their bound is added on top and the decision taken by [`above_within`]
//! (`near_path` in `motion`, `fast_accel` in `kinematics`), with tests that reach the cases
//! where `err` alone would decide wrong.

#[cfg(test)]
thread_local! {
    /// Tests only: every decision deferred to the exact value ([`exact_only`]).
    static EXACT_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tests only: `f()` with every decision of this module deferred to the exact value on this
/// thread — the reference the fast decisions are compared with.
#[cfg(test)]
pub(crate) fn exact_only<T>(f: impl FnOnce() -> T) -> T {
    EXACT_ONLY.set(true);
    let r = f();
    EXACT_ONLY.set(false);
    r
}

/// Whether decisions are deferred to the exact value ([`exact_only`]; never outside tests).
#[inline]
fn deferred() -> bool {
    #[cfg(test)]
    {
        EXACT_ONLY.get()
    }
    #[cfg(not(test))]
    {
        false
    }
}

/// Relative part of the error bound of a fast value.
const REL: f64 = 2e-9;
/// Absolute part (metres, m/s, m/s²): covers zeros and underflow.
const ABS: f64 = 1e-12;

/// The error bound of a fast value `v`: `|v − exact| ≤ err(v)`. `NaN` for a `NaN` value, `∞`
/// for an infinite one (then nothing is decided).
#[inline]
pub(crate) fn err(v: f64) -> f64 {
    REL * v.abs() + ABS
}

/// Whether the exact value is `> t`, from a fast value `v` with error bound `e`: `Some(true)` or
/// `Some(false)` when every value within `e` of `v` gives that answer, `None` when the exact
/// value must decide (also for non-finite `v` or `e`).
#[inline]
pub(crate) fn above_within(v: f64, e: f64, t: f64) -> Option<bool> {
    if !(v.is_finite() && e.is_finite()) || deferred() {
        None
    } else if v - e > t {
        Some(true)
    } else if v + e <= t {
        Some(false)
    } else {
        None
    }
}

/// Whether [`above_within`]`(v, `[`err`]`(v) + x / s, t)` is certainly `Some(false)` for the fast
/// length over a duration `v = fl(√q) / s` — decided without the square root or the divisions,
/// for the many values far below `t`. `true` only when it holds; `false` when it may not (then
/// compute `v` and ask [`above_within`]). `q` is the sum of squares `fl(√q)` is taken of (the
/// same bits), `s > 0` the duration, `x ≥ 0` the fast inputs' bound times `s`, `t ≥ 0`.
///
/// Why: let `r = t·s − ABS·s − x` (computed: within `4u·t·s`, `u = 2⁻⁵³`, so within `8u` of
/// itself relatively when it is at least `t·s / 2`, as required). From `q·(1 + 10⁻⁸) ≤ r²`
/// (two more roundings), `√q ≤ r·(1 + 10u) / (1 + 4.99 × 10⁻⁹)`, and the computed
/// `v ≤ √q / s · (1 + u)²`, so `v·(1 + REL)·s < r`: `v + err(v) + x / s < t` with a relative
/// margin of ~3 × 10⁻⁹, far above the rounding of [`above_within`]'s own sums.
#[inline]
pub(crate) fn root_over_within(q: f64, s: f64, x: f64, t: f64) -> bool {
    let ts = t * s;
    let r = ts - ABS * s - x;
    let room = r * r;
    // (`room` finite: for `t·s` beyond ~10¹⁵⁴ the square overflows and nothing is decided.)
    !deferred() && r > 0.0 && r >= 0.5 * ts && room.is_finite() && q * (1.0 + 1e-8) <= room
}

/// [`above_within`] with the bound [`err`]`(v)`.
#[inline]
pub(crate) fn above(v: f64, t: f64) -> Option<bool> {
    above_within(v, err(v), t)
}

/// Whether the exact value is `≥ t`, from a fast value `v` (bound [`err`]`(v)`).
#[inline]
pub(crate) fn at_least(v: f64, t: f64) -> Option<bool> {
    let e = err(v);
    if !(v.is_finite() && e.is_finite()) || deferred() {
        None
    } else if v - e >= t {
        Some(true)
    } else if v + e < t {
        Some(false)
    } else {
        None
    }
}

/// A sum of non-negative terms, each exact or a fast value, with the bound of every exact
/// summation of the same exact terms (in any order or grouping): the fast terms' [`err`] plus
/// both sums' rounding, `(n + 2)` units of 2⁻⁵² of the sum each.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastSum {
    sum: f64,
    fast_err: f64,
    n: usize,
}

impl FastSum {
    /// Add a term: `Some(v)` a fast value, `None` with `exact` the exact one.
    #[inline]
    pub(crate) fn add(&mut self, fast: Option<f64>, exact: impl FnOnce() -> f64) {
        let d = match fast {
            Some(v) => {
                self.fast_err += err(v);
                v
            }
            None => exact(),
        };
        self.sum += d;
        self.n += 1;
    }

    /// The sum and its bound: every exact sum lies within `sum ± bound`.
    pub(crate) fn value(&self) -> (f64, f64) {
        let rounding = 2.0 * (self.n as f64 + 2.0) * f64::EPSILON * self.sum.abs();
        (self.sum, self.fast_err + rounding)
    }

    /// The exact sum rounded to an integer, when every value within the bound rounds alike.
    pub(crate) fn rounded(&self) -> Option<u64> {
        let (s, e) = self.value();
        let (lo, hi) = ((s - e).round(), (s + e).round());
        (lo == hi && lo.is_finite() && !deferred()).then_some(lo as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rule_a_value_far_from_its_threshold_decides() {
        assert_eq!(above(10.0, 5.0), Some(true));
        assert_eq!(above(1.0, 5.0), Some(false));
        assert_eq!(at_least(10.0, 5.0), Some(true));
        assert_eq!(at_least(1.0, 5.0), Some(false));
        // Without the root: 1 m/s² over 1 s against 12 decides; 12 (q = 144) against 12 does not.
        assert!(root_over_within(1.0, 1.0, 0.0, 12.0));
        assert!(!root_over_within(144.0, 1.0, 0.0, 12.0));
        assert!(!root_over_within(1.0, 1.0, 0.0, -1.0));
        assert!(!root_over_within(f64::NAN, 1.0, 0.0, 12.0));
        assert!(!root_over_within(1.0, 1.0, f64::INFINITY, 12.0));
        assert!(!root_over_within(f64::INFINITY, 1.0, 0.0, 1e200));
    }

    #[test]
    fn rule_a_value_within_its_bound_of_the_threshold_defers_to_the_exact_one() {
        for t in [0.0f64, 2.0, 30.0, 1e6] {
            for v in [t, f64::from_bits(t.to_bits() + 1), t * (1.0 + 1e-10), t * (1.0 - 1e-10)] {
                assert_eq!(above(v, t), None, "{v} vs {t}");
                assert_eq!(at_least(v, t), None, "{v} vs {t}");
            }
        }
    }

    #[test]
    fn rule_non_finite_values_are_never_decided() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(above(v, 1.0), None);
            assert_eq!(at_least(v, 1.0), None);
            assert_eq!(above_within(1.0, v, 0.5), None);
        }
    }

    proptest! {
        /// What [`root_over_within`] decides, the fast value's own test decides the same way.
        #[test]
        fn rule_a_decision_without_the_root_is_one_the_fast_value_takes(
            h in 0.0f64..1e4, s in 1e-3f64..1e3, x in 0.0f64..1e3, t in 0.0f64..1e4, near in 0.0f64..1.0
        ) {
            // Lengths anywhere, lengths just under the room left (`near` of it), and sums of
            // squares at the test's own boundary and a unit in the last place either side,
            // where it is closest to deciding wrong.
            let r = t * s - ABS * s - x;
            let edge = r * r / (1.0 + 1e-8);
            let near_room = near.sqrt() * (r / (1.0 + REL)).max(0.0);
            for q in [h * h, near_room * near_room, edge, edge.next_up(), edge.next_down()] {
                if root_over_within(q, s, x, t) {
                    let v = q.sqrt() / s;
                    prop_assert_eq!(above_within(v, err(v) + x / s, t), Some(false), "{} {} {} {}", q, s, x, t);
                }
            }
        }

        /// Whatever the exact value within the bound, a decided comparison is its comparison.
        /// (`v ± err(v)` is itself rounded to nearest, so the guarantee is for values strictly
        /// inside the bound — the fast forms' real errors are ~2000 times smaller.)
        #[test]
        fn rule_a_decision_holds_for_every_value_within_the_bound(
            v in 0.0f64..1e4, t in 0.0f64..1e4, u in -0.999f64..=0.999
        ) {
            let exact = v + u * err(v);
            if let Some(d) = above(v, t) {
                prop_assert_eq!(d, exact > t);
            }
            if let Some(d) = at_least(v, t) {
                prop_assert_eq!(d, exact >= t);
            }
        }
    }
}
