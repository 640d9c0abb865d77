//! What a request path holds of the bytes the trust rules care about, 16 bytes at a time.
//!
//! Why: every request's path is checked before anything else ([`crate::trust::check_target`]),
//! and a byte-at-a-time loop deciding it cost ~18 instructions a byte (~740 on the 41-byte mean
//! path of GitLab CE's recorded requests); plain Rust loops over fixed 16-byte chunks were not
//! turned into vector compares by the compiler. One SSE2 pass (part of the x86_64 baseline, as
//! in the classifier's `accel` module) reads each 16 bytes once; other targets take the scalar
//! loop, which is also the reference the tests hold the vector pass to.

/// A control byte (below 0x20), DEL, `\` or `%`.
pub(crate) const ODD: u32 = 1;
/// A `.` right after a `/`: where a dot segment (`.`, `..`) would start.
pub(crate) const SLASH_DOT: u32 = 2;
/// Two `/` in a row.
pub(crate) const DOUBLED_SLASH: u32 = 4;

/// [`ODD`], [`SLASH_DOT`] and [`DOUBLED_SLASH`], each set when `path` holds one.
#[inline]
pub(crate) fn flags(path: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        vector::flags(path)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        scalar(path)
    }
}

/// [`flags`] a byte at a time (other targets; the tests' reference on x86_64).
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(crate) fn scalar(path: &[u8]) -> u32 {
    let mut found = 0;
    let mut prev = 0u8;
    for &b in path {
        if b < 0x20 || b == 0x7f || b == b'\\' || b == b'%' {
            found |= ODD;
        }
        if b == b'.' && prev == b'/' {
            found |= SLASH_DOT;
        }
        if b == b'/' && prev == b'/' {
            found |= DOUBLED_SLASH;
        }
        prev = b;
    }
    found
}

#[cfg(target_arch = "x86_64")]
mod vector {
    use super::{DOUBLED_SLASH, ODD, SLASH_DOT};
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
    };

    const WIDTH: usize = 16;

    /// The flags of `path`: whole 16-byte blocks, then the last 16 bytes again (overlapping
    /// bytes already read: the flags only accumulate); a path shorter than a block is copied
    /// into one padded with `a`, which sets no flag.
    #[inline]
    pub(super) fn flags(path: &[u8]) -> u32 {
        if path.len() < WIDTH + 1 {
            let mut padded = [b'a'; WIDTH + 1];
            padded[..path.len()].copy_from_slice(path);
            return of_blocks(&padded);
        }
        of_blocks(path)
    }

    /// `hay.len() > WIDTH`: every byte in some block, every pair of neighbours in some pair of
    /// a block and the block one byte on.
    #[inline(always)]
    fn of_blocks(hay: &[u8]) -> u32 {
        debug_assert!(hay.len() > WIDTH);
        // SAFETY: every load reads 16 bytes from `at` or `at + 1` with `at + 1 + WIDTH <= len`
        // (unaligned loads); SSE2 is part of the x86_64 baseline.
        unsafe {
            let (mut odd, mut dot, mut doubled) = (_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128());
            let (below_space, del, backslash, percent, period, slash) = (
                _mm_set1_epi8(0x1f),
                _mm_set1_epi8(0x7f),
                _mm_set1_epi8(b'\\' as i8),
                _mm_set1_epi8(b'%' as i8),
                _mm_set1_epi8(b'.' as i8),
                _mm_set1_epi8(b'/' as i8),
            );
            let mut block = |at: usize| {
                let here = _mm_loadu_si128(hay.as_ptr().add(at).cast::<__m128i>());
                let next = _mm_loadu_si128(hay.as_ptr().add(at + 1).cast::<__m128i>());
                // `min(b, 0x1f) == b` is `b <= 0x1f`, unsigned.
                let control = _mm_cmpeq_epi8(_mm_min_epu8(here, below_space), here);
                let odd_here = _mm_or_si128(
                    _mm_or_si128(control, _mm_cmpeq_epi8(here, del)),
                    _mm_or_si128(_mm_cmpeq_epi8(here, backslash), _mm_cmpeq_epi8(here, percent)),
                );
                odd = _mm_or_si128(odd, odd_here);
                let slash_here = _mm_cmpeq_epi8(here, slash);
                dot = _mm_or_si128(dot, _mm_and_si128(slash_here, _mm_cmpeq_epi8(next, period)));
                doubled = _mm_or_si128(doubled, _mm_and_si128(slash_here, _mm_cmpeq_epi8(next, slash)));
            };
            // Blocks from 0 while a block and the byte after it fit, then the last block that
            // does (its first bytes read again), and the very last byte on its own below.
            let last = hay.len() - WIDTH - 1;
            let mut at = 0;
            while at < last {
                block(at);
                at += WIDTH;
            }
            block(last);
            let end = hay[hay.len() - 1];
            let tail = if end < 0x20 || end == 0x7f || end == b'\\' || end == b'%' { ODD } else { 0 };
            let any = |v: __m128i| _mm_movemask_epi8(v) != 0;
            tail | if any(odd) { ODD } else { 0 } | if any(dot) { SLASH_DOT } else { 0 } | if any(doubled) { DOUBLED_SLASH } else { 0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of up to 40 bytes over bytes that matter and bytes that do not, at every
    /// place relative to the blocks (first, inside, across two, the last byte, the padding of
    /// a short path): the vector pass answers as the scalar loop does.
    #[test]
    fn the_vector_pass_agrees_with_the_scalar_loop() {
        let alphabet = [b'/', b'.', b'%', b'\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff, b'a', b'-'];
        let mut next = crate::test_numbers::below(0x9e37_79b9_7f4a_7c15u64);
        let mut seen = [0usize; 3];
        for len in 0..=40 {
            for _ in 0..3_000 {
                // Mostly plain bytes, a few that matter.
                let path: Vec<u8> = (0..len).map(|_| if next(6) == 0 { alphabet[next(alphabet.len())] } else { b'a' + next(26) as u8 }).collect();
                let want = scalar(&path);
                assert_eq!(flags(&path), want, "{path:?}");
                for (bit, count) in seen.iter_mut().enumerate() {
                    *count += usize::from(want & (1 << bit) != 0);
                }
            }
            // Each thing that matters alone, at every position.
            for at in 0..len {
                for b in [b'/', b'.', b'%', b'\\', 0x00, 0x1f, 0x7f] {
                    let mut path = vec![b'x'; len];
                    path[at] = b;
                    assert_eq!(flags(&path), scalar(&path), "{path:?}");
                    if at + 1 < len && b == b'/' {
                        for (after, want) in [(b'/', DOUBLED_SLASH), (b'.', SLASH_DOT)] {
                            path[at + 1] = after;
                            assert_eq!(flags(&path), want, "{path:?}");
                        }
                    }
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 300), "each flag met in the random paths: {seen:?}");
    }
}
