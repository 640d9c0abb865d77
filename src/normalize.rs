//! Path normalization and parameter unescaping, byte for byte as Rails 6.1 does them.

use std::borrow::Cow;

/// Drops a query string, then applies `Journey::Router::Utils.normalize_path`: a leading `/`,
/// runs of `/` squeezed to one, one trailing `/` dropped (except for `/` itself), and `%xx`
/// escapes whose two characters are in `[a-f0-9]` upper-cased.
///
/// Borrows when the path is already normal, which is the common case.
pub fn normalize_path(path_info: &[u8]) -> Cow<'_, [u8]> {
    let path = match path_info.iter().position(|&b| b == b'?') {
        Some(q) => &path_info[..q],
        None => path_info,
    };
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
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
    Cow::Owned(out)
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_normal(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    if path.len() > 1 && path.last() == Some(&b'/') {
        return false;
    }
    let mut prev = 0u8;
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' && prev == b'/' {
            return false;
        }
        if b == b'%'
            && i + 2 < path.len()
            && is_lower_hex(path[i + 1])
            && is_lower_hex(path[i + 2])
            && (path[i + 1].is_ascii_lowercase() || path[i + 2].is_ascii_lowercase())
        {
            return false;
        }
        prev = b;
    }
    true
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

    #[test]
    fn unescapes_like_rails() {
        assert_eq!(&*unescape(b"master%2Fapp%2fuser.rb"), b"master/app/user.rb");
        assert_eq!(&*unescape(b"%zz"), b"\0");
        assert_eq!(&*unescape(b"%az"), b"\x0a");
        assert_eq!(&*unescape(b"%2"), b"%2");
        assert_eq!(&*unescape(b"100%"), b"100%");
    }
}
