//! Finding where a path segment ends, eight bytes at a time.
//!
//! Why: the segment tree and the plain span plans read a path one segment at a time, and a
//! byte loop that looks for the `/` ending a segment and for one byte that matters inside it
//! (a `.` that a default parameter refuses, a `\n` the exact matcher must decide) was ~8
//! instructions a byte: a third of a lookup on GitHub's REST API set. Word-at-a-time (SWAR)
//! tests take ~2.

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
    use super::segment_end;

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
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let len = (next() % 40) as usize;
            let word: Vec<u8> = (0..len).map(|_| alphabet[(next() % 6) as usize]).collect();
            for flagged in [b'.', b'\n'] {
                assert_eq!(segment_end(&word, flagged), segment_end_plainly(&word, flagged), "{word:?}");
            }
        }
    }
}
