//! The next byte an accelerated DFA state leaves on: `memchr` for one to three bytes, with a
//! first look at one 16-byte window.
//!
//! Why: a dense DFA state that only one to three bytes leave (a parameter's `[^/.?]+` waiting
//! for its `/`, `.` or `?`) skips ahead to the next such byte rather than stepping through
//! the bytes one dependent transition after another. In a request path the next such byte is
//! a segment away, a few bytes, where `memchr3`'s setup for a short haystack cost ~200
//! instructions a call (about a quarter of a `recognize` on the GitHub API set, three
//! parameters a path). One SSE2 compare of the 16 bytes from the state on (or the path's last
//! 16, when fewer remain) answers most such skips in a dozen instructions; `memchr` searches
//! past the window only when the byte is not in it.

/// The offset of the first byte of `hay[at..]` that is one of `needles` (one to three bytes,
/// as regex-automata accelerates), as an index into `hay`.
#[inline(always)]
pub(crate) fn find(needles: &[u8], hay: &[u8], at: usize) -> Option<usize> {
    debug_assert!(at <= hay.len());
    #[cfg(target_arch = "x86_64")]
    if let Some(found) = window::first(needles, hay, at) {
        return found;
    }
    let rest = &hay[at..];
    let i = match *needles {
        [a] => memchr::memchr(a, rest),
        [a, b] => memchr::memchr2(a, b, rest),
        [a, b, c] => memchr::memchr3(a, b, c, rest),
        // Never more than three (regex-automata's accelerators); a state left by more is
        // stepped through byte by byte, which is always right.
        _ => Some(0),
    };
    i.map(|i| at + i)
}

#[cfg(target_arch = "x86_64")]
mod window {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128};

    /// Bytes in the window.
    const WIDTH: usize = 16;

    /// What the window says about `hay[at..]`: `Some(answer)` when it decides (the byte is in
    /// it, or it reaches the end of `hay` without it), `None` when bytes past it are left to
    /// search, which [`super::find`] then searches from `at` as if the window had not looked.
    #[inline(always)]
    pub(super) fn first(needles: &[u8], hay: &[u8], at: usize) -> Option<Option<usize>> {
        if hay.len() < WIDTH || needles.is_empty() || needles.len() > 3 {
            return None;
        }
        // The 16 bytes from `at`, or the last 16 of `hay` (some before `at`, masked off below).
        let start = at.min(hay.len() - WIDTH);
        // SAFETY: `start + WIDTH <= hay.len()`, and the load is unaligned. SSE2 is part of the
        // x86_64 baseline, so the intrinsics are always available.
        let hits = unsafe {
            let bytes = _mm_loadu_si128(hay.as_ptr().add(start).cast::<__m128i>());
            let mut any = _mm_setzero_si128();
            for &n in needles {
                any = _mm_or_si128(any, _mm_cmpeq_epi8(bytes, _mm_set1_epi8(n as i8)));
            }
            _mm_movemask_epi8(any) as u32
        };
        // Only the bytes from `at` on count (`at - start < WIDTH`, or the window is all before `at`).
        let skip = at - start;
        let hits = if skip >= WIDTH { 0 } else { hits & (u32::MAX << skip) };
        if hits != 0 {
            return Some(Some(start + hits.trailing_zeros() as usize));
        }
        if start + WIDTH >= hay.len() {
            return Some(None);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    /// The plain scan the window must agree with.
    fn reference(needles: &[u8], hay: &[u8], at: usize) -> Option<usize> {
        hay[at..].iter().position(|b| needles.contains(b)).map(|i| at + i)
    }

    #[test]
    fn agrees_with_a_plain_scan_at_every_offset() {
        let alphabet = b"ab/.?\nz";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let needle_sets: [&[u8]; 6] = [b"/", b"?", b"/.", b"\n?", b"/.?", b"ab\n"];
        let mut checked = 0;
        for len in 0..80 {
            for _ in 0..20 {
                // Sparse hits: most bytes not a needle, so windows miss and the scan goes on.
                let hay: Vec<u8> = (0..len).map(|_| if next() % 9 == 0 { alphabet[(next() % alphabet.len() as u64) as usize] } else { b'x' }).collect();
                for needles in needle_sets {
                    for at in 0..=len {
                        assert_eq!(find(needles, &hay, at), reference(needles, &hay, at), "{needles:?} in {hay:?} from {at}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000);
    }
}
