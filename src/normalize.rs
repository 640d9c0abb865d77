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
/// request, and most paths are normal: each check is one vectorized scan (`memchr`) rather than
/// a byte-by-byte loop, which cost ~11 instructions a byte, a tenth of a recognize on GitLab CE.
fn scan(path_info: &[u8]) -> (&[u8], bool) {
    static DOUBLE_SLASH: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let end = memchr::memchr(b'?', path_info).unwrap_or(path_info.len());
    let path = &path_info[..end];
    let normal = path.first() == Some(&b'/')
        && !(path.len() > 1 && path[path.len() - 1] == b'/')
        && DOUBLE_SLASH.get_or_init(|| memchr::memmem::Finder::new(b"//")).find(path).is_none()
        // A `%` escape with a lower-case hex letter gets upper-cased (an escape cut by the query
        // string is left alone, as before it: the bytes after `?` are not looked at).
        && !memchr::memchr_iter(b'%', path).any(|i| {
            let (h, l) = (path.get(i + 1).copied().unwrap_or(0), path.get(i + 2).copied().unwrap_or(0));
            is_lower_hex(h) && is_lower_hex(l) && (h.is_ascii_lowercase() || l.is_ascii_lowercase())
        });
    (path, normal)
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

    #[test]
    fn unescapes_like_rails() {
        assert_eq!(&*unescape(b"master%2Fapp%2fuser.rb"), b"master/app/user.rb");
        assert_eq!(&*unescape(b"%zz"), b"\0");
        assert_eq!(&*unescape(b"%az"), b"\x0a");
        assert_eq!(&*unescape(b"%2"), b"%2");
        assert_eq!(&*unescape(b"100%"), b"100%");
    }
}
