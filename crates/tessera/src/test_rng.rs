//! Deterministic pseudo-random numbers for the unit tests (no dependency, the same sequence on
//! every machine): Marsaglia's xorshift64 (shifts 13, 7, 17) and a 64-bit LCG (Knuth's MMIX
//! constants), each as a closure over its state.

/// xorshift64 from `seed` (non-zero): each call the next 64-bit state.
pub(crate) fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// [`xorshift`]'s values as uniform `f64`s in [0, 1) (the top 53 bits).
pub(crate) fn xorshift_unit(seed: u64) -> impl FnMut() -> f64 {
    let mut next = xorshift(seed);
    move || (next() >> 11) as f64 / (1u64 << 53) as f64
}

/// A 64-bit LCG's values as uniform `f64`s in [0, 1) (the top 53 bits of the state).
pub(crate) fn lcg_unit(mut s: u64) -> impl FnMut() -> f64 {
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}
