//! Finding where a path segment ends, eight bytes at a time, and where all of a path's `/`s
//! are, sixteen at a time.
//!
//! Why: the segment tree and the plain span plans read a path one segment at a time, and a
//! byte loop that looks for the `/` ending a segment and for one byte that matters inside it
//! (a `.` that a default parameter refuses, a `\n` the exact matcher must decide) was ~8
//! instructions a byte: a third of a lookup on GitHub's REST API set. Word-at-a-time (SWAR)
//! tests take ~2. The other span plans first list every `/` of the path (their globs take
//! whole runs of segments); that list, made byte by byte after a search for `\n`, was ~330
//! instructions a call on GitLab CE's recorded requests, a quarter of reading a match's
//! parameters there.

use crate::inline_vec::InlineVec;

/// The offsets of a path's `/`s, on the stack for up to 32.
pub(crate) type Cuts = InlineVec<u32, 32>;

/// Writes the offsets of `path`'s `/`s to `cuts` (empty before); false when the path holds a
/// `\n` (Journey's `\Z` lets a route end before one: the exact matcher decides those paths).
/// One pass, sixteen bytes at a time; the last bytes are read as the path's last sixteen (or
/// as a zero-padded copy of a shorter path), the bits of bytes already read shifted out.
#[inline]
pub(crate) fn slash_cuts(path: &[u8], cuts: &mut Cuts) -> bool {
    let mut at = 0;
    let mut add = |at: usize, slashes: u32, newlines: u32| {
        let mut bits = slashes;
        while bits != 0 {
            cuts.push((at + bits.trailing_zeros() as usize) as u32);
            bits &= bits - 1;
        }
        newlines == 0
    };
    while let Some(chunk) = path.get(at..at + 16) {
        let (slashes, newlines) = chunk_slashes(chunk.try_into().unwrap());
        if !add(at, slashes, newlines) {
            return false;
        }
        at += 16;
    }
    let rest = path.len() - at;
    if rest == 0 {
        return true;
    }
    if path.len() >= 16 {
        // The last sixteen bytes: the first `16 - rest` of them were read above.
        let (slashes, newlines) = chunk_slashes(path[path.len() - 16..].try_into().unwrap());
        let skip = 16 - rest;
        add(at, slashes >> skip, newlines >> skip)
    } else {
        let mut padded = [0u8; 16];
        padded[..rest].copy_from_slice(path);
        let (slashes, newlines) = chunk_slashes(&padded);
        add(0, slashes, newlines)
    }
}

/// A bit per byte of `chunk` that is `/`, and one per byte that is `\n` (byte `i` as bit `i`).
/// SSE2 is in the x86_64 baseline: one compare and one `movemask` each.
#[cfg(target_arch = "x86_64")]
#[inline]
fn chunk_slashes(chunk: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    // SAFETY: SSE2 is in the x86_64 baseline, and the unaligned load reads exactly the sixteen
    // bytes of `chunk`. (Some of these intrinsics are safe functions on newer compilers.)
    #[allow(unused_unsafe)]
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let eq = |b: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32;
        (eq(b'/'), eq(b'\n'))
    }
}

/// The same, byte by byte, on every other target.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn chunk_slashes(chunk: &[u8; 16]) -> (u32, u32) {
    chunk.iter().enumerate().fold((0, 0), |(slashes, newlines), (i, &b)| (slashes | (u32::from(b == b'/') << i), newlines | (u32::from(b == b'\n') << i)))
}

/// The length of the segment `rest` starts with (up to its first `/` or its end), and whether
/// it holds `flagged`.
#[inline]
pub(crate) fn segment_end(rest: &[u8], flagged: u8) -> (usize, bool) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A high bit set in each byte of `word` equal to `byte`; exact up to the first such byte
    // (a borrow can only mark bytes after a true one), which is all that is read of it.
    let equal = |word: u64, byte: u8| {
        let x = word ^ (ONES * byte as u64);
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut at = 0;
    while let Some(chunk) = rest.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap());
        let (slash, dot) = (equal(word, b'/'), equal(word, flagged));
        if slash != 0 {
            let first = slash.trailing_zeros();
            // The flagged bytes before the `/` (bits below it): exact, as above.
            return (at + first as usize / 8, dot & ((1u64 << first) - 1) != 0);
        }
        if dot != 0 {
            let end = at + 8 + rest[at + 8..].iter().position(|&b| b == b'/').unwrap_or(rest.len() - at - 8);
            return (end, true);
        }
        at += 8;
    }
    let mut dotted = false;
    for (i, &b) in rest[at..].iter().enumerate() {
        match b {
            b'/' => return (at + i, dotted),
            _ if b == flagged => dotted = true,
            _ => {}
        }
    }
    (rest.len(), dotted)
}

#[cfg(test)]
mod tests {
    use super::{segment_end, slash_cuts};

    /// The next of a fixed pseudo-random sequence (xorshift64): the same inputs on every run.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// `slash_cuts` read byte by byte.
    fn slash_cuts_plainly(path: &[u8]) -> Option<Vec<u32>> {
        (!path.contains(&b'\n')).then(|| path.iter().enumerate().filter(|(_, &b)| b == b'/').map(|(i, _)| i as u32).collect())
    }

    fn cuts_of(path: &[u8]) -> Option<Vec<u32>> {
        let mut cuts = super::Cuts::new();
        slash_cuts(path, &mut cuts).then(|| cuts.as_slice().to_vec())
    }

    #[test]
    fn slashes_sixteen_bytes_at_a_time_as_byte_by_byte() {
        // `/` and `\n` at every position of paths of up to 70 bytes (around each chunk's
        // edges), with bytes next to them in value (`.` and `0` around `/`, 0x09 and 0x0b
        // around `\n`), over 32 slashes (past the stack), and random mixes.
        let fills = [b'x', b'.', b'0', 0x09, 0x0b, 0x80, 0xff];
        for len in 0..=70 {
            for fill in fills {
                let base = vec![fill; len];
                assert_eq!(cuts_of(&base), slash_cuts_plainly(&base));
                for at in 0..len {
                    for byte in [b'/', b'\n'] {
                        let mut path = base.clone();
                        path[at] = byte;
                        assert_eq!(cuts_of(&path), slash_cuts_plainly(&path), "{path:?}");
                    }
                }
            }
        }
        let slashes = vec![b'/'; 40];
        assert_eq!(cuts_of(&slashes).unwrap(), (0..40).collect::<Vec<u32>>());
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut next = || xorshift(&mut state);
            let len = (next() % 80) as usize;
            let path: Vec<u8> = (0..len).map(|_| [b'/', b'a', b'.', b'\n', 0x0b, b'%'][(next() % 6) as usize]).collect();
            assert_eq!(cuts_of(&path), slash_cuts_plainly(&path), "{path:?}");
        }
    }

    /// `segment_end` read byte by byte.
    fn segment_end_plainly(rest: &[u8], flagged: u8) -> (usize, bool) {
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        (end, rest[..end].contains(&flagged))
    }

    #[test]
    fn segment_ends_eight_bytes_at_a_time_as_byte_by_byte() {
        // Every string of up to 9 bytes over `/`, `.` (each one xor 0x01 of the other: a
        // borrow's false match), `\n`, 0x0b (`\n` xor 0x01), 0x00 and 0x01; then longer ones
        // at random.
        let alphabet = [b'/', b'.', b'\n', 0x0b, 0x00, 0x01];
        let mut word = Vec::new();
        let mut count = 0usize;
        loop {
            for flagged in [b'.', b'\n'] {
                assert_eq!(segment_end(&word, flagged), segment_end_plainly(&word, flagged), "{word:?}");
            }
            count += 1;
            // The next word in shortlex order.
            let mut i = word.len();
            loop {
                if i == 0 {
                    word.insert(0, alphabet[0]);
                    word.iter_mut().for_each(|b| *b = alphabet[0]);
                    break;
                }
                i -= 1;
                let at = alphabet.iter().position(|&a| a == word[i]).unwrap();
                if at + 1 < alphabet.len() {
                    word[i] = alphabet[at + 1];
                    break;
                }
                word[i] = alphabet[0];
            }
            if word.len() > 9 {
                break;
            }
        }
        assert_eq!(count, (6usize.pow(10) - 1) / 5);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut next = || xorshift(&mut state);
            let len = (next() % 40) as usize;
            let word: Vec<u8> = (0..len).map(|_| alphabet[(next() % 6) as usize]).collect();
            for flagged in [b'.', b'\n'] {
                assert_eq!(segment_end(&word, flagged), segment_end_plainly(&word, flagged), "{word:?}");
            }
        }
    }
}
