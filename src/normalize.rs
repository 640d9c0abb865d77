//! Path normalization and parameter unescaping, byte for byte as Rails 6.1 does them.

use std::borrow::Cow;

/// Drops a query string, then applies `Journey::Router::Utils.normalize_path`: a leading `/`,
/// runs of `/` squeezed to one, one trailing `/` dropped (except for `/` itself), and `%xx`
/// escapes whose two characters are in `[a-f0-9]` upper-cased.
///
/// Borrows when the path is already normal, which is the common case.
pub fn normalize_path(path_info: &[u8]) -> Cow<'_, [u8]> {
    normalize(path_info).path
}

/// A normalized path, and what the one pass over it learned on the way.
pub(crate) struct Normalized<'p> {
    pub path: Cow<'p, [u8]>,
    /// ASCII and without `%`: every parameter read from it is UTF-8, so a first-match search
    /// need not check them ([`ClassifyError::ParamNotUtf8`](crate::ClassifyError::ParamNotUtf8)).
    pub plain: bool,
}

/// [`normalize_path`], with [`Normalized::plain`].
pub(crate) fn normalize(path_info: &[u8]) -> Normalized<'_> {
    let Scan { path, normal, plain } = scan(path_info);
    // Normalizing drops `/`s and upper-cases hex letters: it adds no `%` and no byte past ASCII.
    Normalized { path: if normal { Cow::Borrowed(path) } else { Cow::Owned(rewrite(path)) }, plain }
}

/// `path` (no query string) normalized, always as a new copy.
fn rewrite(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    out.push(b'/');
    for &b in path {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    if out.len() > 1 {
        if out.last() == Some(&b'/') {
            out.pop();
        }
        let mut i = 0;
        while i + 2 < out.len() {
            if out[i] == b'%' && is_lower_hex(out[i + 1]) && is_lower_hex(out[i + 2]) {
                out[i + 1] = out[i + 1].to_ascii_uppercase();
                out[i + 2] = out[i + 2].to_ascii_uppercase();
                i += 3;
            } else {
                i += 1;
            }
        }
    }
    out
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// What [`scan`] finds.
#[derive(Debug, PartialEq, Eq)]
struct Scan<'p> {
    /// The path before any query string.
    path: &'p [u8],
    /// Already normal.
    normal: bool,
    /// ASCII, no `%` ([`Normalized::plain`]).
    plain: bool,
}

/// One pass over the path: where it ends, whether it is already normal, whether it is plain.
/// This runs for every request, and most paths are normal: the bytes are read sixteen at a time
/// ([`chunk_masks`]: one bit per byte for `/`, `%`, `?` and bytes past ASCII), where a
/// byte-by-byte loop cost ~11 instructions a byte, three `memchr`/`memmem` scans ~520 for a
/// 40-byte path, and eight bytes at a time in a `u64` (SWAR, stop 31) ~6 a byte, plus a second
/// pass for the parameters' encoding (~80).
fn scan(path_info: &[u8]) -> Scan<'_> {
    let mut end = path_info.len();
    // Bit per byte: a `/` right after a `/`, a `%`, a byte past ASCII; `carry` is 1 when the
    // previous chunk ended with `/` (a `//` across two chunks).
    let (mut double_slashes, mut percents, mut high, mut carry) = (0u32, 0u32, 0u32, 0u32);
    let mut at = 0;
    while at < path_info.len() {
        let mut m = masks_at(path_info, at);
        if m.question != 0 {
            // Only the bytes before the first `?` count.
            let first = m.question.trailing_zeros();
            end = at + first as usize;
            let before = (1u32 << first) - 1;
            m.slash &= before;
            m.percent &= before;
            m.high &= before;
        }
        double_slashes |= m.slash & ((m.slash << 1) | carry);
        percents |= m.percent;
        high |= m.high;
        carry = m.slash >> (CHUNK - 1);
        if m.question != 0 {
            break;
        }
        at += CHUNK;
    }
    let (double_slash, percent) = (double_slashes != 0, percents != 0);
    let path = &path_info[..end];
    // A `%` escape with a lower-case hex letter gets upper-cased (an escape cut by the query
    // string is left alone, as before it: the bytes after `?` are not looked at).
    let lower_case_escape = percent
        && memchr::memchr_iter(b'%', path).any(|i| {
            let (h, l) = (path.get(i + 1).copied().unwrap_or(0), path.get(i + 2).copied().unwrap_or(0));
            is_lower_hex(h) && is_lower_hex(l) && (h.is_ascii_lowercase() || l.is_ascii_lowercase())
        });
    let trailing_slash = path.len() > 1 && path[path.len() - 1] == b'/';
    let normal = path.first() == Some(&b'/') && !trailing_slash && !double_slash && !lower_case_escape;
    Scan { path, normal, plain: !percent && high == 0 }
}

/// Bytes per chunk the scan reads.
const CHUNK: usize = 16;

/// Bit `i` set when byte `i` of a chunk is the byte sought (or, for `high`, past ASCII).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Masks {
    slash: u32,
    percent: u32,
    question: u32,
    high: u32,
}

impl Masks {
    fn shifted_right(self, by: u32) -> Masks {
        Masks { slash: self.slash >> by, percent: self.percent >> by, question: self.question >> by, high: self.high >> by }
    }
}

/// The masks of the chunk at `at`; past the end of `bytes`, none. A short last chunk is read as
/// the path's last sixteen bytes, its masks shifted (no copy into a buffer); only a path shorter
/// than a chunk is copied, into a zeroed one (no byte sought is 0).
#[inline]
fn masks_at(bytes: &[u8], at: usize) -> Masks {
    if let Some(chunk) = bytes[at..].first_chunk::<CHUNK>() {
        return chunk_masks(chunk);
    }
    let left = bytes.len() - at;
    match bytes.last_chunk::<CHUNK>() {
        Some(last) => chunk_masks(last).shifted_right((CHUNK - left) as u32),
        None => {
            let mut padded = [0u8; CHUNK];
            padded[..left].copy_from_slice(&bytes[at..]);
            chunk_masks(&padded)
        }
    }
}

/// SSE2, part of every x86_64 CPU: one compare and one `movemask` per byte sought.
#[cfg(target_arch = "x86_64")]
#[inline]
fn chunk_masks(chunk: &[u8; CHUNK]) -> Masks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    // SAFETY: SSE2 is in the x86_64 baseline, and the unaligned load reads exactly the sixteen
    // bytes of `chunk`. (Some of these intrinsics are safe functions on newer compilers.)
    #[allow(unused_unsafe)]
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let eq = |b: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32;
        Masks { slash: eq(b'/'), percent: eq(b'%'), question: eq(b'?'), high: _mm_movemask_epi8(v) as u32 }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn chunk_masks(chunk: &[u8; CHUNK]) -> Masks {
    portable_chunk_masks(chunk)
}

/// The same masks from two `u64` words (SWAR): every other target, and the x86_64 version's
/// reference in the tests.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn portable_chunk_masks(chunk: &[u8; CHUNK]) -> Masks {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let (lo, hi) = chunk.split_at(CHUNK / 2);
    let words = [u64::from_le_bytes(lo.try_into().expect("8 bytes")), u64::from_le_bytes(hi.try_into().expect("8 bytes"))];
    let bits = |f: &dyn Fn(u64) -> u64| words.iter().rev().fold(0u32, |acc, &w| (acc << 8) | high_bits(f(w)));
    Masks {
        slash: bits(&|w| bytes_equal(w, b'/')),
        percent: bits(&|w| bytes_equal(w, b'%')),
        question: bits(&|w| bytes_equal(w, b'?')),
        high: bits(&|w| w & HIGH),
    }
}

/// The high bit of each byte of `word` that equals `byte`, and no other bit: exact, as no
/// carry crosses a byte (`(x & 0x7f) + 0x7f` stays below 0x100), unlike the shorter
/// `(x - 0x01..) & !x & 0x80..`, which also flags a byte just above a match.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * byte as u64);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The high bits of a word's bytes (nothing else set) as eight bits, byte `i` as bit `i`.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn high_bits(mask: u64) -> u32 {
    ((mask >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// `Journey::Router::Utils.unescape_uri`: every `%` followed by two characters of
/// `[a-zA-Z0-9]` becomes the byte of their leading hex digits (Ruby's `String#hex`, so
/// `%zz` is a NUL byte, exactly as Rails produces it).
pub fn unescape(value: &[u8]) -> Cow<'_, [u8]> {
    if !value.contains(&b'%') {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' && i + 2 < value.len() && value[i + 1].is_ascii_alphanumeric() && value[i + 2].is_ascii_alphanumeric() {
            let hi = (value[i + 1] as char).to_digit(16);
            let lo = (value[i + 2] as char).to_digit(16);
            let byte = match (hi, lo) {
                (Some(h), Some(l)) => h * 16 + l,
                (Some(h), None) => h,
                _ => 0,
            };
            out.push(byte as u8);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed pseudo-random sequence (xorshift64) from `seed`.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    fn n(p: &str) -> String {
        String::from_utf8(normalize_path(p.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn normalizes_like_rails() {
        assert_eq!(n(""), "/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("//"), "/");
        assert_eq!(n("//gitlab-org//gitlab/"), "/gitlab-org/gitlab");
        assert_eq!(n("gitlab-org"), "/gitlab-org");
        assert_eq!(n("/a%2fb%2F%aF"), "/a%2Fb%2F%aF");
        assert_eq!(n("/search?q=1"), "/search");
        assert!(matches!(normalize_path(b"/gitlab-org/gitlab"), Cow::Borrowed(_)));
    }

    /// The one-pass check borrows exactly the paths that normalizing would leave unchanged:
    /// every string of up to six bytes over the bytes that matter.
    #[test]
    fn borrows_exactly_the_normal_paths() {
        let alphabet = b"/%?aF1";
        let mut paths: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = paths
                .iter()
                .filter(|p| p.len() == paths.last().map_or(0, Vec::len))
                .flat_map(|p| alphabet.iter().map(move |&b| [&p[..], &[b]].concat()))
                .collect();
            paths.extend(longer);
        }
        assert_eq!(paths.len(), (0..=6).map(|n| 6usize.pow(n)).sum::<usize>());
        for path in &paths {
            let before_query = &path[..path.iter().position(|&b| b == b'?').unwrap_or(path.len())];
            let expected = rewrite(before_query);
            let got = normalize_path(path);
            assert_eq!(&*got, &expected[..], "{:?}", String::from_utf8_lossy(path));
            assert_eq!(matches!(got, Cow::Borrowed(_)), expected == before_query, "{:?}", String::from_utf8_lossy(path));
        }
    }

    /// The same for longer paths, across the sixteen-byte chunks the scan reads: every byte that
    /// matters at every offset of paths up to 40 bytes (a fixed pseudo-random sample).
    #[test]
    fn borrows_exactly_the_normal_long_paths() {
        let alphabet = b"/%?aF1.\x80\xff.b";
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let len = (next() % 41) as usize;
            // Mostly letters, so that normal paths (with `/` at every offset) come up too.
            let path: Vec<u8> = (0..len)
                .map(|i| match next() % 8 {
                    _ if i == 0 => b'/',
                    0..=4 => b'x',
                    _ => alphabet[(next() % alphabet.len() as u64) as usize],
                })
                .collect();
            let before_query = &path[..path.iter().position(|&b| b == b'?').unwrap_or(path.len())];
            let expected = rewrite(before_query);
            let got = normalize_path(&path);
            assert_eq!(&*got, &expected[..], "{:?}", String::from_utf8_lossy(&path));
            assert_eq!(matches!(got, Cow::Borrowed(_)), expected == before_query, "{:?}", String::from_utf8_lossy(&path));
        }
        // Paths around the chunk's length: a `//` or a `?` across two chunks, a short last chunk.
        for path in [&b"/abcdefghijklmn//x"[..], b"/abcdefghijklmno/", b"/abcdefghijklmno?/", b"/abcdefghijklmnop?a//", b"/abcdefghijklmn/", b"/a//"] {
            let Scan { path: before, normal, plain } = scan(path);
            let before_query = &path[..path.iter().position(|&b| b == b'?').unwrap_or(path.len())];
            assert_eq!(before, before_query);
            assert_eq!(normal, rewrite(before_query) == before_query, "{:?}", String::from_utf8_lossy(path));
            assert!(plain);
        }
    }

    /// `plain` says exactly whether the path before the query has a `%` or a byte past ASCII.
    #[test]
    fn plain_is_ascii_without_percent_before_the_query() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let alphabet = b"/a?%\x80\xff\x7fZ";
        for _ in 0..100_000 {
            let len = (next() % 50) as usize;
            let path: Vec<u8> = (0..len).map(|_| if next() % 4 == 0 { alphabet[(next() % alphabet.len() as u64) as usize] } else { b'x' }).collect();
            let before_query = &path[..path.iter().position(|&b| b == b'?').unwrap_or(path.len())];
            let n = normalize(&path);
            assert_eq!(n.plain, before_query.is_ascii() && !before_query.contains(&b'%'), "{:?}", String::from_utf8_lossy(&path));
        }
    }

    /// The x86_64 masks (SSE2) and the portable ones agree on every byte at every position.
    #[test]
    fn chunk_masks_agree_with_the_portable_ones() {
        for byte in 0..=255u8 {
            for at in 0..CHUNK {
                for fill in [b'x', b'/', 0x80] {
                    let mut chunk = [fill; CHUNK];
                    chunk[at] = byte;
                    let m = chunk_masks(&chunk);
                    assert_eq!(m, portable_chunk_masks(&chunk), "{chunk:?}");
                    for (i, &b) in chunk.iter().enumerate() {
                        assert_eq!(m.slash >> i & 1 == 1, b == b'/');
                        assert_eq!(m.percent >> i & 1 == 1, b == b'%');
                        assert_eq!(m.question >> i & 1 == 1, b == b'?');
                        assert_eq!(m.high >> i & 1 == 1, b >= 0x80);
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_equal_flags_exactly_the_equal_bytes() {
        for byte in [b'/', b'%', b'?'] {
            for other in 0..=255u8 {
                for at in 0..8 {
                    let mut word = [byte.wrapping_add(1); 8];
                    word[at] = other;
                    if at + 1 < 8 {
                        word[at + 1] = byte ^ 1;
                    }
                    let mask = bytes_equal(u64::from_le_bytes(word), byte);
                    for (i, &b) in word.iter().enumerate() {
                        assert_eq!(mask >> (8 * i) & 0xff, if b == byte { 0x80 } else { 0 }, "{word:?} {byte}");
                    }
                }
            }
        }
    }

    #[test]
    fn unescapes_like_rails() {
        assert_eq!(&*unescape(b"master%2Fapp%2fuser.rb"), b"master/app/user.rb");
        assert_eq!(&*unescape(b"%zz"), b"\0");
        assert_eq!(&*unescape(b"%az"), b"\x0a");
        assert_eq!(&*unescape(b"%2"), b"%2");
        assert_eq!(&*unescape(b"100%"), b"100%");
    }
}
