//! Path normalization and parameter unescaping, byte for byte as Rails 6.1 does them.

use std::borrow::Cow;

/// Drops a query string, then applies `Journey::Router::Utils.normalize_path`: a leading `/`,
/// runs of `/` squeezed to one, one trailing `/` dropped (except for `/` itself), and `%xx`
/// escapes whose two characters are in `[a-f0-9]` upper-cased.
///
/// Borrows when the path is already normal, which is the common case.
pub fn normalize_path(path_info: &[u8]) -> Cow<'_, [u8]> {
    let (path, normal) = scan(path_info);
    if normal {
        return Cow::Borrowed(path);
    }
    Cow::Owned(rewrite(path))
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

/// The path before any query string, and whether it is already normal. This runs for every
/// request, and most paths are normal: the bytes are read eight at a time (SWAR: one `u64`
/// compared with `?`, `/` and `%` at once), where a byte-by-byte loop cost ~11 instructions a
/// byte and three `memchr`/`memmem` scans (one per byte sought, each set up anew for a short
/// path) ~520 instructions for a 40-byte path, a seventh of a recognize on GitLab CE.
fn scan(path_info: &[u8]) -> (&[u8], bool) {
    let mut end = path_info.len();
    // High bits, per byte: a `/` right after a `/`, a `%`; `carry` is 0x80 when the previous
    // word ended with `/` (a `//` across two words).
    let (mut double_slashes, mut percents, mut carry) = (0u64, 0u64, 0u64);
    let mut at = 0;
    while at < path_info.len() {
        let word = load_word(path_info, at);
        let mut slashes = bytes_equal(word, b'/');
        let mut percent = bytes_equal(word, b'%');
        let question = bytes_equal(word, b'?');
        if question != 0 {
            // Only the bytes before the first `?` count.
            let first = question.trailing_zeros() / 8;
            end = at + first as usize;
            let before = (1u64 << (8 * first)).wrapping_sub(1);
            slashes &= before;
            percent &= before;
        }
        double_slashes |= slashes & ((slashes << 8) | carry);
        percents |= percent;
        carry = slashes >> 56;
        if question != 0 {
            break;
        }
        at += 8;
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
    (path, normal)
}

/// The eight bytes of `bytes` from `at` as a little-endian word (byte 0 lowest); past the end,
/// zeros (no byte sought is 0). A short last word is read as the path's last eight bytes,
/// shifted (no copy into a buffer, which was a `memcpy` call per path).
#[inline]
fn load_word(bytes: &[u8], at: usize) -> u64 {
    if let Some(word) = bytes[at..].first_chunk::<8>() {
        return u64::from_le_bytes(*word);
    }
    let left = bytes.len() - at;
    match bytes.last_chunk::<8>() {
        Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - left)),
        None => bytes[at..].iter().rev().fold(0, |word, &b| (word << 8) | u64::from(b)),
    }
}

/// The high bit of each byte of `word` that equals `byte`, and no other bit: exact, as no
/// carry crosses a byte (`(x & 0x7f) + 0x7f` stays below 0x100), unlike the shorter
/// `(x - 0x01..) & !x & 0x80..`, which also flags a byte just above a match.
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * byte as u64);
    !(((x & LOW7) + LOW7) | x | LOW7)
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

    /// The same for longer paths, across the eight-byte words the scan reads: every byte that
    /// matters at every offset of paths up to 40 bytes (a fixed pseudo-random sample).
    #[test]
    fn borrows_exactly_the_normal_long_paths() {
        let alphabet = b"/%?aF1.\x80\xff.b";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
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
        for word in [*b"//abcdef", *b"a/b/c/d/", *b"/.%2f/?x", *b"?///////"].iter().map(|w| &w[..8]) {
            let (path, normal) = scan(word);
            assert_eq!(load_word(word, 0), u64::from_le_bytes(word.try_into().unwrap()));
            let before_query = &word[..word.iter().position(|&b| b == b'?').unwrap_or(8)];
            assert_eq!(path, before_query);
            assert_eq!(normal, rewrite(before_query) == before_query, "{:?}", String::from_utf8_lossy(word));
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
