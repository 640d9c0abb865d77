//! What the router believes: which request targets it routes, which answers it caches, which
//! headers cross it.
//!
//! The cache steers every later request, so nothing may enter it unless it is about the request
//! that produced it: a learn answer or `X-Gitlab-Cell-Cache` header is accepted only when its
//! cell is configured and its path covers the request path (equal when exact, a `/`-boundary
//! prefix otherwise). And the router must route the path the way the cell will read it, so
//! ambiguous encodings of a path (`%2F`, dot segments, `//`) are refused rather than guessed.

use cells_learn::learn::covers_prefix;
use cells_learn::LearnResponse;
use http::header::{HeaderMap, HeaderName};
use http::Uri;

use crate::config::{valid_cell_name, Config};

/// Why a request target was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TargetError {
    /// 400: not something the router can route unambiguously.
    Invalid(&'static str),
    /// 414: longer than `limits.max_path_bytes`.
    TooLong,
}

/// Checks a request target before any routing. Conservative on purpose: every refused form is
/// one the cell might normalise differently from the router (so a cached prefix could be
/// dodged or a different entity reached), and none is produced by GitLab's own URLs.
pub fn check_target(uri: &Uri, max_path_bytes: usize) -> Result<(), TargetError> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(TargetError::Invalid("request target must be origin-form (/path?query)"));
    }
    let path = uri.path();
    if path.len() > max_path_bytes {
        return Err(TargetError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(TargetError::Invalid("path must start with /"));
    }
    let bytes = path.as_bytes();
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return Err(TargetError::Invalid("path contains control characters or a backslash"));
    }
    let mut i = 0;
    while let Some(off) = path[i..].find('%') {
        let at = i + off;
        let hex = bytes.get(at + 1..at + 3).ok_or(TargetError::Invalid("truncated percent-encoding in path"))?;
        let (h, l) = match (hex_val(hex[0]), hex_val(hex[1])) {
            (Some(h), Some(l)) => (h, l),
            _ => return Err(TargetError::Invalid("invalid percent-encoding in path")),
        };
        let decoded = h * 16 + l;
        if decoded == b'/' || decoded == b'.' || decoded == b'\\' || decoded < 0x20 || decoded == 0x7f {
            return Err(TargetError::Invalid("path contains an encoded /, ., \\ or control character"));
        }
        i = at + 3;
    }
    if path.contains("//") {
        return Err(TargetError::Invalid("path contains an empty segment (//)"));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(TargetError::Invalid("path contains a dot segment"));
    }
    Ok(())
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Why an answer was not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("cell {0:?} is not configured")]
    UnknownCell(String),
    #[error("path {path:?} does not cover the request path")]
    NotCovering { path: String },
}

/// Accepts `answer` for `request_path`, returning the cell's index.
pub fn check_answer(cfg: &Config, answer: &LearnResponse, request_path: &str) -> Result<usize, Untrusted> {
    let cell = cell_index(cfg, &answer.cell).ok_or_else(|| Untrusted::UnknownCell(answer.cell.clone()))?;
    if !answer.path.starts_with('/') || !answer.covers(request_path) {
        return Err(Untrusted::NotCovering { path: answer.path.clone() });
    }
    Ok(cell)
}

pub fn cell_index(cfg: &Config, name: &str) -> Option<usize> {
    if !valid_cell_name(name) {
        return None;
    }
    cfg.cells.iter().position(|c| c.name == name)
}

/// `X-Gitlab-Cell-Cache: path=<percent-encoded path>; cell=<cell>[; exact]`, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct CacheHeader {
    pub path: String,
    pub cell: String,
    pub exact: bool,
}

pub fn parse_cache_header(value: &str) -> Option<CacheHeader> {
    let (mut path, mut cell, mut exact) = (None, None, false);
    for part in value.split(';') {
        let part = part.trim();
        if part.eq_ignore_ascii_case("exact") {
            exact = true;
        } else if let Some(v) = part.strip_prefix("path=") {
            let decoded = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
            path = Some(decoded.into_owned());
        } else if let Some(v) = part.strip_prefix("cell=") {
            cell = Some(v.to_string());
        } else if !part.is_empty() {
            return None;
        }
    }
    let (path, cell) = (path?, cell?);
    if !path.starts_with('/') || !valid_cell_name(&cell) {
        return None;
    }
    Some(CacheHeader { path, cell, exact })
}

/// Accepts a cache header for `request_path`, returning the cell's index.
pub fn check_cache_header(cfg: &Config, h: &CacheHeader, request_path: &str) -> Result<usize, Untrusted> {
    let cell = cell_index(cfg, &h.cell).ok_or_else(|| Untrusted::UnknownCell(h.cell.clone()))?;
    let ok = if h.exact { h.path == request_path } else { covers_prefix(&h.path, request_path) };
    if !ok {
        return Err(Untrusted::NotCovering { path: h.path.clone() });
    }
    Ok(cell)
}

pub const CACHE_HEADER: &str = "x-gitlab-cell-cache";
pub const OWNER_HEADER: &str = "x-gitlab-cell-owner";
pub const TRACE_HEADER: &str = "x-cells-router-trace";

/// Headers a client must not be able to send to a cell: the cells trust `X-Gitlab-Cell-*`
/// (they are the router's and the cells' own), and `X-Cells-Router-*` is the router's.
pub fn is_internal(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("x-gitlab-cell-") || n.starts_with("x-cells-router-")
}

const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"];

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those named by `Connection`.
/// `Upgrade` is hop-by-hop too; when `keep_upgrade` the caller re-adds the handshake itself.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect();
    for n in named {
        if keep_upgrade && n == http::header::UPGRADE {
            continue;
        }
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    if !keep_upgrade {
        headers.remove(http::header::UPGRADE);
    }
}

/// Removes client-sent internal headers.
pub fn strip_internal(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers.keys().filter(|n| is_internal(n)).cloned().collect();
    for n in names {
        headers.remove(n);
    }
}

/// True when the request carries a body: it cannot be replayed, so it is never retried.
pub fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .any(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).is_none_or(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Result<(), TargetError> {
        check_target(&s.parse().unwrap(), 100)
    }

    #[test]
    fn refuses_ambiguous_targets() {
        assert!(target("/gitlab-org/gitlab/-/issues?x=%2F").is_ok());
        assert!(target("/a%20b").is_ok());
        for bad in ["/a%2Fb", "/a%2fb", "/a/%2e%2e/b", "/a/../b", "/a/./b", "/a/..", "//a", "/a%00", "/a%zz", "/a%2", "http://x/a", "/a\\b"] {
            assert!(matches!(target(bad), Err(TargetError::Invalid(_))), "{bad}");
        }
        assert_eq!(target(&format!("/{}", "a".repeat(100))), Err(TargetError::TooLong));
    }

    #[test]
    fn parses_cache_headers() {
        assert_eq!(
            parse_cache_header("path=/gitlab-org%2Fx; cell=cell_1; exact"),
            Some(CacheHeader { path: "/gitlab-org/x".into(), cell: "cell_1".into(), exact: true })
        );
        assert_eq!(parse_cache_header("path=/a;cell=c").map(|h| h.exact), Some(false));
        assert_eq!(parse_cache_header("path=a; cell=c"), None);
        assert_eq!(parse_cache_header("path=/a; cell=bad cell"), None);
        assert_eq!(parse_cache_header("path=/a; cell=c; weird"), None);
    }

    #[test]
    fn strips_hop_by_hop_and_internal_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-foo".parse().unwrap());
        h.insert("x-foo", "1".parse().unwrap());
        h.insert("keep-alive", "1".parse().unwrap());
        h.insert("x-gitlab-cell-cache", "1".parse().unwrap());
        h.insert("x-cells-router-trace", "1".parse().unwrap());
        h.insert("accept", "*/*".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        strip_internal(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }
}
