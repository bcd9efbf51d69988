//! `hypot(x, y)` = √(x² + y²) without undue overflow, inlined: the detectors' lengths of local
//! east/north vectors (despike, kinematics, simulator), a few hundred million calls in a
//! 10^9-fix epoch.
//!
//! The algorithm is C. F. Borges, "An Improved Algorithm for hypot(a, b)", 2019
//! (arXiv:1904.09481), the corrected square root without fused multiply-add — the one glibc 2.35
//! and later use for `hypot` on x86-64, with its thresholds (no scaling needed for
//! 2^-459 ≤ min ≤ max ≤ 2^511; the smaller term dropped when it is below 2^-54 of the larger).
//! In that range it gives glibc's bits, operation for operation (the test below compares with
//! the C library on every platform that has this glibc); outside it (zeros, subnormals, huge
//! values, infinities, NaN) it calls the C library. So the detectors measure exactly what they
//! measured before, only without a call into libm for every pair of fixes — and on a machine
//! whose C library computes `hypot` otherwise, tessera's results no longer change with it.

/// Below this the arguments need scaling (glibc: `TINY_VAL`).
const TINY: f64 = 6.717_876_107_567_089e-139; // 2^-459
/// Above this the arguments need scaling (glibc: `LARGE_VAL`).
const LARGE: f64 = 6.703_903_964_971_299e153; // 2^511
/// The smaller term is dropped when below this fraction of the larger (glibc: `EPS`).
const EPS: f64 = 5.551_115_123_125_783e-17; // 2^-54

/// √(x² + y²), as glibc ≥ 2.35 computes it (Borges 2019, without FMA): at most one unit in the
/// last place from the exact value. Never panics.
#[inline]
pub(crate) fn hypot(x: f64, y: f64) -> f64 {
    let (x, y) = (x.abs(), y.abs());
    let (ax, ay) = if y > x { (y, x) } else { (x, y) };
    // NaN fails both comparisons and goes to the C library too.
    if !(ax <= LARGE && ay >= TINY) {
        return x.hypot(y);
    }
    if ay <= ax * EPS {
        return ax + ay;
    }
    let h = (ax * ax + ay * ay).sqrt();
    // Borges' correction: the error of h² against ax² + ay², from exact products of the terms.
    let (t1, t2) = if h <= 2.0 * ay {
        let delta = h - ay;
        (ax * (2.0 * delta - ax), (delta - 2.0 * (ax - ay)) * delta)
    } else {
        let delta = h - ax;
        (2.0 * delta * (ax - 2.0 * ay), (4.0 * delta - ay) * ay + delta * delta)
    };
    h - (t1 + t2) / (2.0 * h)
}

/// `√(x² + y²)` the plain way, a *fast value* of [`hypot`] for [`super::certain`]: where
/// `x²`, `y²` and their sum neither overflow nor underflow it is within 1.5 units in the last
/// place of the exact length (two correctly rounded products, a sum and a square root), and
/// [`hypot`] within one, so within 3 × 2⁻⁵³ (≈ 3.3 × 10⁻¹⁶) of [`hypot`] relatively; an underflow
/// costs at most 10⁻¹⁵⁴ absolutely; an overflow gives `∞` (never decided).
#[inline]
pub(crate) fn fast_hypot(x: f64, y: f64) -> f64 {
    (x * x + y * y).sqrt()
}

#[cfg(test)]
mod tests {
    use super::{fast_hypot, hypot};

    /// The C library's version, when it is glibc: `Some((major, minor))`.
    fn glibc() -> Option<(u32, u32)> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: returns a pointer to a static NUL-terminated string.
            let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
            let mut it = v.to_str().ok()?.split('.').map(|p| p.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        None
    }

    /// xorshift64*: the same values on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        /// A value of random sign and mantissa, magnitude 2^lo .. 2^hi.
        fn value(&mut self, lo: i32, hi: i32) -> f64 {
            let e = lo + (self.next() % (hi - lo) as u64) as i32;
            let m = 1.0 + (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            let s = if self.next() & 1 == 0 { 1.0 } else { -1.0 };
            s * m * 2f64.powi(e)
        }
    }

    fn cases() -> Vec<(f64, f64)> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut v: Vec<(f64, f64)> = Vec::new();
        // The detectors' range: centimetres to kilometres, and metres per second squared.
        for _ in 0..1_000_000 {
            v.push((rng.value(-12, 14), rng.value(-12, 14)));
        }
        // Near-equal terms, one term far smaller (around the 2^-54 cut), and any magnitude.
        for _ in 0..200_000 {
            let a = rng.value(-20, 20);
            v.push((a, a * (1.0 + rng.value(-53, -1))));
            v.push((a, a * rng.value(-60, -50)));
            v.push((rng.value(-1074, 1023), rng.value(-1074, 1023)));
            v.push((f64::from_bits(rng.next()), f64::from_bits(rng.next())));
        }
        let edges = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            super::TINY,
            super::TINY * (1.0 - f64::EPSILON),
            super::LARGE,
            super::LARGE * (1.0 + f64::EPSILON),
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1.0,
            3.0,
            4.0,
        ];
        for a in edges {
            for b in edges {
                v.push((a, b));
            }
        }
        v
    }

    #[test]
    fn rule_hypot_gives_the_c_librarys_bits_where_it_is_glibc_2_35_or_later() {
        match glibc() {
            Some(v) if v >= (2, 35) => {}
            other => {
                eprintln!("skipped: the C library is {other:?}, not glibc >= 2.35");
                return;
            }
        }
        for (x, y) in cases() {
            let (ours, libm) = (hypot(x, y), x.hypot(y));
            assert!(
                ours.to_bits() == libm.to_bits() || (ours.is_nan() && libm.is_nan()),
                "hypot({x:e}, {y:e}) = {ours:e}, the C library gives {libm:e}"
            );
        }
    }

    #[test]
    fn rule_hypot_is_within_one_ulp_of_the_exact_length() {
        // Exact integer reference over the detectors' range: x = kx·2^-20, y = ky·2^-20 with
        // kx, ky < 2^30 (a micrometre to a kilometre), so x² + y² = K·2^-40 exactly; the result
        // h = m·2^e must have (m-1)²·2^2e < K·2^-40 < (m+1)²·2^2e.
        let mut rng = Rng(7);
        for _ in 0..300_000 {
            let (kx, ky) = (
                (rng.next() >> 34) as i128,
                (rng.next() >> (34 + rng.next() % 30)) as i128,
            );
            let (x, y) = (kx as f64 * 2f64.powi(-20), ky as f64 * 2f64.powi(-20));
            let h = hypot(x, y);
            if kx == 0 || ky == 0 {
                assert_eq!(h, x.max(y));
                continue;
            }
            let (m, e) = {
                let b = h.to_bits();
                ((b & ((1 << 52) - 1) | 1 << 52) as i128, ((b >> 52) as i32) - 1075)
            };
            let k = kx * kx + ky * ky;
            // Compare a·2^(2e) with K·2^-40: both sides times 2^(-2e-40) (> 0 here: h < 2^31).
            let shift = -2 * e - 40;
            assert!(shift > 0 && shift < 120, "{h:e}");
            let k_scaled = k.checked_mul(1i128 << shift).expect("no overflow near h²");
            assert!(
                (m - 1) * (m - 1) < k_scaled && k_scaled < (m + 1) * (m + 1),
                "hypot({x:e}, {y:e}) = {h:e} is off by an ulp or more"
            );
        }
    }

    #[test]
    fn rule_fast_hypot_is_within_the_certain_bound_of_hypot() {
        let mut n = 0;
        for (x, y) in cases() {
            let (f, h) = (fast_hypot(x, y), hypot(x, y));
            if !f.is_finite() {
                continue;
            }
            // A thousandth of `certain::err`: the bound the detectors rely on has that margin.
            assert!((f - h).abs() <= 2e-12 * h + 1e-15, "{x} {y}: {f} vs {h}");
            n += 1;
        }
        assert!(n > 1000, "{n}");
    }
}
