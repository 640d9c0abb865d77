//! Reproducible pseudo-random numbers for the unit tests that generate inputs (xorshift64: the
//! same sequence on every run and machine, no dependency).

/// A source of numbers below `n` for each call, seeded with `seed` (not 0).
pub(crate) fn below(seed: u64) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    }
}
