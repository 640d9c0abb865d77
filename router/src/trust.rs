//! What the router believes: which request targets it routes, which answers it caches, which
//! headers cross it.
//!
//! The cache steers every later request, so nothing may enter it unless it is about the request
//! that produced it: a learn answer or `X-Gitlab-Cell-Cache` header is accepted only when its
//! cell is configured and its path covers the request path (equal when exact, a `/`-boundary
//! prefix otherwise). And the router must route the path the way the cell will read it, so
//! paths a cell's server could resolve differently (dot segments, raw or `%2E`-encoded, `//`,
//! `\`) are refused rather than guessed, while escapes such as `%2F` inside a segment (GitLab's
//! API ids and file paths) are forwarded as they are, as Rails routes on them undecoded,
//! and every comparison (cache keys, answers, cache headers) is made on the path as Rails
//! routes it: [`routing_path`], Rails' `normalize_path` (one trailing `/` dropped, lower-case
//! `%xx` escapes upper-cased) — the form the cells' learn answers are written in. The request
//! itself is forwarded with its target as received; the cell normalizes it the same way.

use std::borrow::Cow;

use cells_learn::covers_prefix;
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
///
/// `Ok(true)`: the path was proved plain in one pass (no `%`, no `//`: see
/// [`is_learn_path_of`]); `Ok(false)`: it is valid, but has escapes or was not looked at that way.
pub fn check_target(uri: &Uri, max_path_bytes: usize) -> Result<bool, TargetError> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(TargetError::Invalid("request target must be origin-form (/path?query)"));
    }
    // `?x` and `#x` parse with an empty path, which `Uri::path` reports as `/`.
    if !uri.path_and_query().is_some_and(|pq| pq.as_str().starts_with('/')) {
        return Err(TargetError::Invalid("path must start with /"));
    }
    let path = uri.path();
    if path.len() > max_path_bytes {
        return Err(TargetError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(TargetError::Invalid("path must start with /"));
    }
    if plainly_valid(path.as_bytes()) {
        return Ok(true);
    }
    refusal(path).map(|()| false)
}

/// Proves, in the common case (no `%`), that the path has nothing [`refusal`] looks for:
/// `refusal`'s checks one after the other cost several passes over every request's path.
///
/// One vector pass ([`crate::plain_path`]) says whether the path holds a control byte, DEL,
/// `\`, `%`, `//` or `/.`; only a path holding `/.` then looks for a dot segment, at each `.`
/// that starts a segment.
fn plainly_valid(path: &[u8]) -> bool {
    use crate::plain_path::{flags, DOUBLED_SLASH, ODD, SLASH_DOT};
    let found = flags(path);
    if found & (ODD | DOUBLED_SLASH) != 0 {
        return false;
    }
    // A dot segment is `.` or `..` between two `/` (or a `/` and the end); every path here
    // starts with `/`, so such a segment's first dot follows a `/`.
    let ends_segment = |i: usize| path.get(i).is_none_or(|&b| b == b'/');
    found & SLASH_DOT == 0
        || !(1..path.len()).any(|i| path[i] == b'.' && path[i - 1] == b'/' && (ends_segment(i + 1) || (path.get(i + 1) == Some(&b'.') && ends_segment(i + 2))))
}

/// Why `path` (starting with `/`, within the length limit) is refused, checked in order; Ok
/// if it is not.
///
/// Percent-encoded bytes are forwarded as they are (`/api/v4/projects/gitlab-org%2Fgitlab`,
/// `.../files/lib%2Fclass%2Erb`, `@scope%2fpkg`): Puma hands the target to Rack undecoded
/// (`PATH_INFO` keeps `%2F`), and Rails' Journey matches the raw path after `normalize_path`
/// and unescapes parameters only afterwards, exactly as the classifier and [`routing_path`] do.
/// What stays refused is what a server or proxy in front of Rails could resolve differently
/// from the raw path: dot segments, raw or encoded (`.`, `..`, `%2e`, `.%2E`: RFC 3986 §2.3
/// makes `%2E` equal to `.`, and `remove_dot_segments` then climbs), empty segments (`//`),
/// raw `\` (WHATWG URL parsers read it as `/`), control bytes, and malformed escapes (Rack's
/// `unescape` raises on them). See router/README.md, "Trust rules".
fn refusal(path: &str) -> Result<(), TargetError> {
    let bytes = path.as_bytes();
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return Err(TargetError::Invalid("path contains control characters or a backslash"));
    }
    let mut i = 0;
    while let Some(off) = path[i..].find('%') {
        let at = i + off;
        let hex = bytes.get(at + 1..at + 3).ok_or(TargetError::Invalid("truncated percent-encoding in path"))?;
        if hex_val(hex[0]).is_none() || hex_val(hex[1]).is_none() {
            return Err(TargetError::Invalid("invalid percent-encoding in path"));
        }
        i = at + 3;
    }
    if path.contains("//") {
        return Err(TargetError::Invalid("path contains an empty segment (//)"));
    }
    if path.split('/').any(is_dot_segment) {
        return Err(TargetError::Invalid("path contains a dot segment (., .., or their %2E forms)"));
    }
    Ok(())
}

/// `.` or `..`, each dot raw or `%2E`/`%2e`.
fn is_dot_segment(seg: &str) -> bool {
    let (mut rest, mut dots) = (seg.as_bytes(), 0);
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'2' && (rest[2] == b'e' || rest[2] == b'E') {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// The path as the cells route it and the router keys its cache: Rails'
/// `Journey::Router::Utils.normalize_path` (`cells_learn::normalize::normalize_path`), so
/// `/-/profile/` is `/-/profile` and `/caf%c3%a9` is `/caf%C3%A9`. Borrows when the path is
/// already normal (the common case). Anything from `?` on is dropped, as Rails drops a query.
pub fn routing_path(path: &str) -> Cow<'_, str> {
    if plainly_normal(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    match cells_learn::normalize::normalize_path(path.as_bytes()) {
        // A borrowed answer is `path` up to its `?` (or all of it), which ends on a character
        // boundary: sliced, not validated as UTF-8 once more on every request.
        Cow::Borrowed(b) => match path.get(..b.len()) {
            Some(p) => Cow::Borrowed(p),
            None => String::from_utf8_lossy(b),
        },
        // Normalization only adds, drops or upper-cases ASCII bytes: UTF-8 stays UTF-8.
        Cow::Owned(v) => Cow::Owned(String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
    }
}

/// [`routing_path`] for a path [`check_target`] answered `Ok(plain)` for. A plain path has no
/// `%` and no `//`, starts with `/` and, as `Uri::path` gives it, has no `?`: it is its own
/// routing path unless it ends with `/`, known without another pass over its bytes (~80
/// instructions per request on `/bench/x`).
pub fn routing_path_of(path: &str, plain: bool) -> Cow<'_, str> {
    if plain && (path.len() == 1 || !path.ends_with('/')) {
        return Cow::Borrowed(path);
    }
    routing_path(path)
}

/// True for a path that `normalize_path` returns whole and unchanged, proved in one pass in the
/// common case: it starts with `/`, has no `?`, no `%` and no `//`, and does not end with `/`
/// (unless it is `/`). Every request's path is normalized for its cache lookup; on short paths
/// `normalize_path`'s vectorized searches cost more to set up than this loop costs in all
/// (callgrind, `/bench/x`: ~360 instructions per request, ~90 with this). False says nothing: the path then
/// goes to `normalize_path`.
fn plainly_normal(path: &[u8]) -> bool {
    let Some((&b'/', rest)) = path.split_first() else {
        return false;
    };
    let mut prev = b'/';
    for &b in rest {
        // `%`, `/` and `?` are all below `@`: letters, the bulk of a path, take one comparison.
        if b < b'@' && (b == b'%' || b == b'?' || (b == b'/' && prev == b'/')) {
            return false;
        }
        prev = b;
    }
    rest.is_empty() || prev != b'/'
}

/// True when `answer_path` (normalized) covers `request_path` (normalized): equal when
/// `exact`, a `/`-boundary prefix otherwise.
fn covers(answer_path: &str, exact: bool, request_path: &str) -> bool {
    if !answer_path.starts_with('/') || answer_path.bytes().any(|b| b == b'?' || b == b'#' || b < 0x20 || b == 0x7f) {
        return false;
    }
    let (answer, request) = (routing_path(answer_path), routing_path(request_path));
    if exact {
        answer == request
    } else {
        covers_prefix(&answer, &request)
    }
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
    #[error("path {path:?} has an empty or dot segment")]
    Malformed { path: String },
    #[error("a prefix for / would cover every path; / can only be an exact, uncached answer")]
    RootPrefix,
    #[error("a cache header may not name / (never cached)")]
    RootHeader,
    #[error("a cache header names cell {named:?}, not the cell that sent it ({sender:?})")]
    NotTheSender { named: String, sender: String },
    #[error("a cache header for {path:?} on a request no cache entry routed (only an entry's own cell may narrow it)")]
    Unrouted { path: String },
    #[error("a cache header for {path:?} is wider than the entry {entry:?} that routed the request")]
    WiderThanEntry { path: String, entry: String },
    #[error("a cache header for {path:?} covers the reserved prefix {reserved:?}")]
    ReservedHeader { path: String, reserved: String },
}

/// Why an entry read from the shared cache was not trusted: what refuses a learn answer, and
/// what only a confirmed learn answer may claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedUntrusted {
    #[error(transparent)]
    Answer(#[from] Untrusted),
    #[error("a shared cache entry for {path:?} covers the reserved prefix {reserved:?} (only confirmed learn answers may)")]
    Reserved { path: String, reserved: String },
    #[error("a shared cache entry may not name / (never cached)")]
    Root,
}

/// A learn answer the router may use, and how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The answer's cell (index in the configuration).
    pub cell: usize,
    /// False when the answer may route this one request but must not enter the cache (`/`).
    pub cacheable: bool,
    /// True when the answer alone is not enough: another cell must give the same answer
    /// (see [`check_answer`]).
    pub needs_confirmation: bool,
}

/// Accepts `answer` for `request_path`, given by cell `from`. Both paths are compared
/// normalized ([`routing_path`]); the answer's path may not contain `?`, `#`, control bytes,
/// empty or dot segments.
///
/// What one cell alone cannot make the router believe (the threat model is in README.md's
/// Trust rules):
/// - a prefix for `/` (it would cover every path): refused; an exact `/` routes this request
///   but is never cached, whatever its `cacheable` says;
/// - that it owns the path itself (`cell` is `from`): any cell could say so of any namespace,
///   and nothing in the answer tells an owner from a thief, so another cell must agree;
///   an answer naming another cell needs no second opinion, as that cell answers
///   `421 Misdirected Request` with the true owner when it is wrong;
/// - a prefix covering a reserved path (`/api/v4/projects`, `/groups`, `/-`, ...: containers
///   of many entities, `reserved_prefixes`), whichever cell it names: another cell must agree.
///
/// With a single configured cell there is no one to ask, and nothing to steal from.
pub fn check_answer(cfg: &Config, answer: &LearnResponse, request_path: &str, from: usize) -> Result<Verdict, Untrusted> {
    let cell = cell_index(cfg, &answer.cell).ok_or_else(|| Untrusted::UnknownCell(answer.cell.clone()))?;
    if !covers(&answer.path, answer.exact, request_path) {
        return Err(Untrusted::NotCovering { path: answer.path.clone() });
    }
    let path = routing_path(&answer.path);
    if has_empty_or_dot_segment(&path) {
        return Err(Untrusted::Malformed { path: answer.path.clone() });
    }
    if path == "/" && !answer.exact {
        return Err(Untrusted::RootPrefix);
    }
    let several = cfg.cells.len() > 1;
    let reserved = !answer.exact && reserved_below(cfg, &path).is_some();
    Ok(Verdict { cell, cacheable: answer.cacheable && path != "/", needs_confirmation: several && (cell == from || reserved) })
}

/// Accepts an entry read from the shared cache (Redis) for `request_path`: the cell index it
/// names. Redis is shared infrastructure, not an authority, so an entry must pass what a learn
/// answer from a cell that does not own the path must pass (a configured cell, a path covering
/// the request, no empty or dot segment, never `/`), and since nobody can confirm it, a prefix
/// over a reserved path (`/api/v4/projects`, `/groups`, ...) is refused outright: the router
/// learns such a path from the cells instead. A wrong entry naming an honest cell is corrected
/// by that cell's `421`, as a wrong learn answer naming another cell is.
pub fn check_shared(cfg: &Config, path: &str, exact: bool, cell: &str, request_path: &str) -> Result<usize, SharedUntrusted> {
    let index = cell_index(cfg, cell).ok_or_else(|| Untrusted::UnknownCell(cell.to_string()))?;
    if !covers(path, exact, request_path) {
        return Err(Untrusted::NotCovering { path: path.to_string() }.into());
    }
    let normalized = routing_path(path);
    if has_empty_or_dot_segment(&normalized) {
        return Err(Untrusted::Malformed { path: path.to_string() }.into());
    }
    if normalized == "/" {
        return Err(SharedUntrusted::Root);
    }
    if let Some(reserved) = (!exact).then(|| reserved_below(cfg, &normalized)).flatten() {
        return Err(SharedUntrusted::Reserved { path: path.to_string(), reserved: reserved.to_string() });
    }
    Ok(index)
}

/// True when two trusted answers say the same thing: the same cell for the same normalized
/// path, exact or prefix alike.
pub fn same_answer(a: &LearnResponse, b: &LearnResponse) -> bool {
    a.cell == b.cell && a.exact == b.exact && routing_path(&a.path) == routing_path(&b.path)
}

/// `//` or a `.`/`..` segment (or a `//` that normalization squeezed: checked on the raw form).
fn has_empty_or_dot_segment(path: &str) -> bool {
    path.len() > 1 && path[1..].split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..")
}

/// True when `path`'s first segment is a top-level namespace rather than one of GitLab's fixed
/// top-level routes: no reserved prefix covers it or lies below it. A top-level namespace (an
/// organization, a top-level group or user) lives on one cell, so its cell may widen an entry for
/// `/my-company/project` to `/my-company`; under `/api`, `/groups` or `/-` the entities next to
/// each other belong to different cells, and a header may only narrow.
fn namespace_root(cfg: &Config, path: &str) -> bool {
    let first = match path[1..].find('/') {
        Some(i) => &path[..i + 1],
        None => path,
    };
    first.len() > 1 && !cfg.reserved_prefixes.iter().any(|r| covers_prefix(first, r) || covers_prefix(r, first))
}

/// The first reserved prefix that the prefix `path` (normalized) covers: equal to it or above it.
fn reserved_below<'c>(cfg: &'c Config, path: &str) -> Option<&'c str> {
    cfg.reserved_prefixes.iter().map(String::as_str).find(|r| covers_prefix(path, r))
}

pub fn cell_index(cfg: &Config, name: &str) -> Option<usize> {
    if !valid_cell_name(name) {
        return None;
    }
    cfg.cells.iter().position(|c| c.name == name)
}

/// `X-Gitlab-Cell-Cache: path=<request path>; cell=<cell>[; exact]`, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct CacheHeader {
    /// The path's own bytes, as in the request target (escapes kept: `/a%2Fb` is `/a%2Fb`).
    pub path: String,
    pub cell: String,
    pub exact: bool,
}

/// The longest path a cache header may carry, as the gem's `CacheHeader::MAX_PATH_BYTES`.
pub const MAX_CACHE_HEADER_PATH_BYTES: usize = 8192;

/// Parses the one grammar the gem's `CacheHeader.format` writes and `CacheHeader.parse` reads
/// (router/README.md, "Cache header grammar"; the cases both suites run are
/// `router/tests/data/cache_header_cases.json`):
///
/// ```text
/// value     = OWS attribute *( OWS ";" OWS attribute ) OWS
/// attribute = "path=" ( path / DQUOTE qpath DQUOTE ) / "cell=" cell / "exact"
/// path      = "/" *( pchar except ";" and "," / "/" )      ; RFC 3986 pchar
/// qpath     = "/" *( pchar / "/" )                           ; ";" and "," allowed
/// ```
///
/// The path is the request path's own bytes, the form Rails routes on: `%XX` escapes are kept
/// as they are (never decoded), so `/api/v4/projects/gitlab-org%2Fgitlab` is written as it is
/// requested. `path=` and `cell=` once each, `exact` at most once and without a value, names in
/// lower case, no empty part; at most [`MAX_CACHE_HEADER_PATH_BYTES`]. Anything else is
/// refused whole.
pub fn parse_cache_header(value: &str) -> Option<CacheHeader> {
    const BLANK: [char; 2] = [' ', '\t'];
    if value.len() > MAX_CACHE_HEADER_PATH_BYTES + 128 {
        return None;
    }
    let (mut path, mut cell, mut exact) = (None, None, false);
    let mut rest = value;
    loop {
        let part = rest.trim_start_matches(BLANK);
        // An attribute runs to the first `;` outside double quotes (a quoted path may hold `;`).
        let mut quoted = false;
        let end = part.bytes().position(|b| {
            quoted ^= b == b'"';
            b == b';' && !quoted
        });
        if quoted {
            return None;
        }
        let (attr, after) = part.split_at(end.unwrap_or(part.len()));
        let (name, raw) = match attr.split_once('=') {
            Some((name, raw)) => (name.trim_matches(BLANK), Some(raw.trim_matches(BLANK))),
            None => (attr.trim_matches(BLANK), None),
        };
        match (name, raw) {
            ("path", Some(raw)) if path.is_none() => path = Some(header_path(raw)?),
            ("cell", Some(raw)) if cell.is_none() => cell = Some(raw.to_string()),
            ("exact", None) if !exact => exact = true,
            _ => return None,
        }
        let after = after.trim_start_matches(BLANK);
        if after.is_empty() {
            break;
        }
        rest = after.strip_prefix(';')?;
    }
    let (path, cell) = (path?, cell?);
    valid_cell_name(&cell).then_some(CacheHeader { path, cell, exact })
}

/// A header path value, bare or quoted: `/`, then RFC 3986 `pchar`s and `/` (well-formed
/// `%XX` escapes, kept as they are); `;` and `,` only inside quotes.
fn header_path(raw: &str) -> Option<String> {
    let (inner, quoted) = match raw.strip_prefix('"') {
        Some(q) => (q.strip_suffix('"')?, true),
        None => (raw, false),
    };
    let bytes = inner.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.len() > MAX_CACHE_HEADER_PATH_BYTES {
        return None;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) => i += 3,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => i += 1,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b'=' | b':' | b'@' => i += 1,
            b';' | b',' if quoted => i += 1,
            _ => return None,
        }
    }
    Some(inner.to_string())
}

/// Accepts a cache header for `request_path` from the cell `sender` that served the request,
/// returning the cell's index (paths compared as [`check_answer`] compares them).
///
/// A header is the sending cell's word about itself, with no second cell asked, so it may only
/// refine what the router already trusted: it must name `sender`, and narrow (or repeat) the
/// entry that routed the request to `sender` — `entry` is that entry's (path, exact), None
/// when no cache entry routed it (an uncacheable answer, the session cookie, a replay after a
/// relearn), and then no header is taken. A prefix entry inside a top-level namespace may also
/// be widened up to that namespace (`/my-company/project` to `/my-company`: the seed's flow; see
/// `namespace_root`). `/` and prefixes covering a reserved path are refused.
pub fn check_cache_header(cfg: &Config, h: &CacheHeader, request_path: &str, sender: usize, entry: Option<(&str, bool)>) -> Result<usize, Untrusted> {
    let cell = cell_index(cfg, &h.cell).ok_or_else(|| Untrusted::UnknownCell(h.cell.clone()))?;
    if cell != sender {
        return Err(Untrusted::NotTheSender { named: h.cell.clone(), sender: cfg.cells[sender].name.clone() });
    }
    if !covers(&h.path, h.exact, request_path) {
        return Err(Untrusted::NotCovering { path: h.path.clone() });
    }
    let path = routing_path(&h.path);
    if has_empty_or_dot_segment(&path) {
        return Err(Untrusted::Malformed { path: h.path.clone() });
    }
    if path == "/" {
        return Err(Untrusted::RootHeader);
    }
    if let Some(r) = (!h.exact).then(|| reserved_below(cfg, &path)).flatten() {
        return Err(Untrusted::ReservedHeader { path: h.path.clone(), reserved: r.to_string() });
    }
    let Some((entry_path, entry_exact)) = entry else {
        return Err(Untrusted::Unrouted { path: h.path.clone() });
    };
    let entry_path = routing_path(entry_path);
    let within = if entry_exact {
        h.exact && path == entry_path
    } else {
        covers_prefix(&entry_path, &path) || (!h.exact && covers_prefix(&path, &entry_path) && namespace_root(cfg, &entry_path))
    };
    if !within {
        return Err(Untrusted::WiderThanEntry { path: h.path.clone(), entry: entry_path.into_owned() });
    }
    Ok(cell)
}

/// The header carrying the router's learn token on its own learn requests (never from a
/// client: `x-gitlab-cell-*` is stripped from client requests by [`is_internal`]).
pub const LEARN_TOKEN_HEADER: &str = "x-gitlab-cell-learn-token";

/// True when a cell would route `path` to its learn endpoint `learn_path`, so the router must
/// not forward it (clients asking where any namespace lives is the enumeration the 404 delay
/// exists to prevent). Deliberately wider than Rails: every `%XX` decoded (Rails leaves
/// `%6C` alone, Rack's URLMap too; refusing it costs no real URL), `//` squeezed (Rack's
/// URLMap matches `/+` between segments), a trailing `/` dropped, ASCII case ignored, and the
/// learn path itself, anything below it (`/learn/x`: URLMap passes it to the mounted app) and
/// any `.format` suffix (`/learn.json`: Grape's and Rails' `(.:format)`) all count.
pub fn is_learn_path(path: &str, learn_path: &str) -> bool {
    is_learn_path_of(path, learn_path, false)
}

/// [`is_learn_path`] for a path [`check_target`] answered `Ok(plain)` for: a plain path has
/// nothing to decode or squeeze, and is not looked through again for `%` and `//` (~80
/// instructions per request on a short path).
pub fn is_learn_path_of(path: &str, learn_path: &str, plain: bool) -> bool {
    let learn = learn_path.trim_end_matches('/').as_bytes();
    let under = |p: &[u8]| p.len() >= learn.len() && p[..learn.len()].eq_ignore_ascii_case(learn) && matches!(p.get(learn.len()), None | Some(b'/' | b'.'));
    if under(path.as_bytes()) {
        return true;
    }
    // The common case: nothing to decode or squeeze, no allocation (this runs on every request:
    // one pass over the bytes, no substring searcher set up for `//`).
    if plain || (!path.as_bytes().windows(2).any(|w| w[0] == b'%' || w == b"//") && !path.ends_with('%')) {
        return false;
    }
    let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode_str(path).into();
    let mut squeezed = Vec::with_capacity(decoded.len());
    for &b in decoded.iter() {
        if !(b == b'/' && squeezed.last() == Some(&b'/')) {
            squeezed.push(b);
        }
    }
    under(&squeezed)
}

pub const CACHE_HEADER: &str = "x-gitlab-cell-cache";
pub const OWNER_HEADER: &str = "x-gitlab-cell-owner";
pub const TRACE_HEADER: &str = "x-cells-router-trace";

/// Headers a client must not be able to send to a cell: the cells trust `X-Gitlab-Cell-*`
/// (they are the router's and the cells' own), and `X-Cells-Router*` is the router's.
///
/// Also their spellings with `_` for `-`, and those of `X-Forwarded-*`: Rack servers such as
/// Puma 5 file `X_Gitlab_Cell_Cache` under the same `HTTP_X_GITLAB_CELL_CACHE` key as
/// `X-Gitlab-Cell-Cache`, so an underscore spelling would slip a spoofed header (or a second
/// `X-Forwarded-For`) past the hyphenated checks. No client needs them (nginx drops every
/// header with an underscore by default). Every name it accepts starts with `x`:
/// `proxy::scan` passes over names on their first byte (it lets `f` through as well).
pub fn is_internal(name: &HeaderName) -> bool {
    let n = name.as_str();
    if n.starts_with("x-gitlab-cell-") || n.starts_with("x-cells-router") {
        return true;
    }
    if !n.contains('_') {
        return false;
    }
    let dashed = n.replace('_', "-");
    dashed.starts_with("x-gitlab-cell-")
        || dashed.starts_with("x-cells-router")
        || dashed.starts_with("x-forwarded-")
        || dashed == "forwarded"
        || dashed == "x-real-ip"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Result<(), TargetError> {
        check_target(&s.parse().unwrap(), 100).map(|_| ())
    }

    #[test]
    fn refuses_ambiguous_targets() {
        assert!(target("/gitlab-org/gitlab/-/issues?x=%2F").is_ok());
        assert!(target("/a%20b").is_ok());
        for bad in ["/a/%2e%2e/b", "/a/%2E.", "/a/.%2e", "/a/%2e", "/a/../b", "/a/./b", "/a/..", "//a", "/a%zz", "/a%2", "/a%", "http://x/a", "/a\\b"] {
            assert!(matches!(target(bad), Err(TargetError::Invalid(_))), "{bad}");
        }
        assert_eq!(target(&format!("/{}", "a".repeat(100))), Err(TargetError::TooLong));
    }

    /// GitLab's documented API forms: escapes inside a segment are the segment's own bytes to
    /// Rails, so they are routed, not refused (issue 14, item 1).
    #[test]
    fn forwards_escapes_inside_segments() {
        for ok in [
            "/api/v4/projects/gitlab-org%2Fgitlab",
            "/api/v4/projects/gitlab-org%2fgitlab/issues",
            "/api/v4/projects/42/repository/files/lib%2Fclass%2Erb",
            "/api/v4/projects/42/packages/npm/@scope%2fpkg",
            "/api/v4/projects/group%2Fmy%2Eproject",
            "/api/v4/projects/42/repository/files/..%2Fsecret",
            "/api/v4/projects/42/repository/files/%2E%2E%2Fx",
            "/a/%2e%2e%2e",
            "/a/.%2e.",
            "/a%5Cb",
            "/a%00b",
            "/a%2F%2Fb",
        ] {
            assert_eq!(target(ok), Ok(()), "{ok}");
        }
    }

    /// The one-pass check agrees with the full one on every path built from up to four pieces
    /// that matter (dots, slashes, escapes, control bytes, backslashes): it accepts exactly the
    /// paths without `%` that the full check accepts.
    #[test]
    fn the_fast_path_accepts_exactly_what_the_full_check_accepts() {
        let pieces = ["/", "a", ".", "..", "...", ".a", "a.", "-", "%2e", "%41", "\\", "\u{1}", "\u{7f}", "é"];
        let mut paths = vec![String::from("/")];
        let mut frontier = paths.clone();
        for _ in 0..4 {
            frontier = frontier.iter().flat_map(|p| pieces.iter().map(move |x| format!("{p}{x}"))).collect();
            paths.extend(frontier.iter().cloned());
        }
        assert!(paths.len() > 40_000);
        let mut accepted = 0;
        for p in &paths {
            let full = refusal(p).is_ok();
            assert_eq!(plainly_valid(p.as_bytes()), full && !p.contains('%'), "{p:?}");
            accepted += usize::from(full);
        }
        // Both kinds are well represented.
        assert!(accepted > 1000 && accepted < paths.len() - 1000, "{accepted} of {}", paths.len());
    }

    /// The same on long paths (the fast path's vector compares take 16 bytes at a time, so what
    /// matters may sit in a first chunk, across two, or in the tail): 200,000 paths of 4 to 40
    /// pieces, most of them ordinary segments, each with one piece that matters at most.
    #[test]
    fn the_fast_path_agrees_on_long_paths() {
        let plain = ["/", "gitlab-org", "a", "-", "issues", "x.json", "v4", "123456789"];
        let rare = [".", "..", "/.", "/..", "//", "%2e", "%41", "\\", "\u{1}", "\u{7f}", "é", "...", ".a"];
        let mut next = crate::test_numbers::below(0x2545_f491_4f6c_dd1du64);
        let (mut accepted, mut refused, mut longest) = (0, 0, 0);
        for _ in 0..200_000 {
            let mut p = String::from("/");
            let pieces = 4 + next(37);
            let odd_at = next(pieces * 2); // past the end half the time: a plain path
            for i in 0..pieces {
                p.push_str(if i == odd_at { rare[next(rare.len())] } else { plain[next(plain.len())] });
            }
            let full = refusal(&p).is_ok();
            assert_eq!(plainly_valid(p.as_bytes()), full && !p.contains('%'), "{p:?}");
            if full {
                accepted += 1;
            } else {
                refused += 1;
            }
            longest = longest.max(p.len());
        }
        assert!(accepted > 50_000 && refused > 50_000 && longest > 200, "{accepted} accepted, {refused} refused, longest {longest}");
    }

    #[test]
    fn origin_form_only() {
        // (`?x` and `#x` do not even parse; hyper answers them 400 before the router sees them.)
        for bad in ["?x", "?/gitlab-org/gitlab", "#x", "*", "http://evil.example/a", "evil.example:80"] {
            if let Ok(uri) = bad.parse::<Uri>() {
                assert!(matches!(check_target(&uri, 100), Err(TargetError::Invalid(_))), "{bad}");
            }
        }
        assert!(check_target(&"*".parse().unwrap(), 100).is_err());
    }

    #[test]
    fn answers_are_compared_normalized() {
        let cfg =
            Config::from_toml("name='r'\nlisten='127.0.0.1:0'\ndefault_cell='c0'\n[[cells]]\nname='c0'\nurl='http://127.0.0.1:1'\n", &crate::Args::default())
                .unwrap();
        let a = |path: &str, exact: bool| LearnResponse {
            path: path.into(),
            cell: "c0".into(),
            source: cells_learn::Source::Fixed,
            exact,
            cacheable: true,
            routes_digest: None,
            routes_version: None,
        };
        let ok = Ok(Verdict { cell: 0, cacheable: true, needs_confirmation: false });
        assert_eq!(check_answer(&cfg, &a("/-/profile", true), "/-/profile/", 0), ok);
        assert_eq!(check_answer(&cfg, &a("/caf%C3%A9", false), "/caf%c3%a9/x/", 0), ok);
        assert_eq!(check_answer(&cfg, &a("/caf%c3%a9", true), "/caf%C3%A9", 0), ok);
        assert_eq!(check_answer(&cfg, &a("/-/profile/", false), "/-/profile/keys", 0), ok);
        // Mixed-case escapes are different paths to Rails: not covered.
        assert!(check_answer(&cfg, &a("/x%aF", true), "/x%AF", 0).is_err());
        assert!(check_answer(&cfg, &a("/-/profile", true), "/-/profile/keys", 0).is_err());
        assert!(check_answer(&cfg, &a("/-/profilex", false), "/-/profile", 0).is_err());
        // Not a path: a query or fragment would be cut off by normalization, widening the claim.
        assert!(check_answer(&cfg, &a("/a?b/c", false), "/a/x", 0).is_err());
        assert!(check_answer(&cfg, &a("/a#b", false), "/a/x", 0).is_err());
        assert!(check_answer(&cfg, &a("a", false), "/a/x", 0).is_err());
        let h = parse_cache_header("path=/-/profile; cell=c0; exact").unwrap();
        assert_eq!(check_cache_header(&cfg, &h, "/-/profile/", 0, Some(("/-/profile", true))), Ok(0));
        let h = parse_cache_header("path=/a%3Fb; cell=c0").unwrap();
        assert!(check_cache_header(&cfg, &h, "/a/x", 0, Some(("/a", false))).is_err());
    }

    fn three_cells() -> Config {
        let mut t = String::from("name='r'\nlisten='127.0.0.1:0'\ndefault_cell='c0'\n");
        for i in 0..3 {
            t.push_str(&format!("[[cells]]\nname='c{i}'\nurl='http://127.0.0.1:{}'\n", i + 1));
        }
        Config::from_toml(&t, &crate::Args::default()).unwrap()
    }

    /// `/` is never a prefix and never cached; self-claims and prefixes over reserved paths
    /// need a second cell; an answer naming another cell for an entity does not.
    #[test]
    fn answers_that_claim_too_much() {
        let cfg = three_cells();
        let a = |path: &str, cell: &str, exact: bool, cacheable: bool| LearnResponse {
            path: path.into(),
            cell: cell.into(),
            source: cells_learn::Source::Routable,
            exact,
            cacheable,
            routes_digest: None,
            routes_version: None,
        };
        let v = |cell, cacheable, needs_confirmation| Ok(Verdict { cell, cacheable, needs_confirmation });
        for root in ["/", "//", "/./", "///"] {
            assert!(check_answer(&cfg, &a(root, "c1", false, true), "/org/x", 0).is_err(), "{root}");
        }
        assert_eq!(check_answer(&cfg, &a("/", "c1", false, true), "/org/x", 0), Err(Untrusted::RootPrefix));
        // The gem's own answer for `/` (exact, no `cacheable` field in the seed's format) routes, uncached.
        assert_eq!(check_answer(&cfg, &a("/", "c1", true, true), "/", 0), v(1, false, false));
        assert_eq!(check_answer(&cfg, &a("/", "c0", true, true), "/", 0), v(0, false, true));
        assert!(matches!(check_answer(&cfg, &a("/org/./x", "c1", false, true), "/org/./x/y", 0), Err(Untrusted::Malformed { .. })));
        // `//` is squeezed as Rails squeezes it: the same path as `/org/x`.
        assert_eq!(check_answer(&cfg, &a("/org//x", "c1", false, true), "/org/x/y", 0), v(1, true, false));
        // Entities, named by another cell: trusted; by the answering cell itself: confirmed.
        assert_eq!(check_answer(&cfg, &a("/org/x", "c1", false, true), "/org/x/-/issues", 0), v(1, true, false));
        assert_eq!(check_answer(&cfg, &a("/org/x", "c1", false, true), "/org/x/-/issues", 1), v(1, true, true));
        assert_eq!(check_answer(&cfg, &a("/api/v4/projects/42", "c2", false, true), "/api/v4/projects/42/issues", 0), v(2, true, false));
        assert_eq!(check_answer(&cfg, &a("/groups/org", "c2", false, true), "/groups/org/-/epics", 0), v(2, true, false));
        // Containers of many entities: confirmed whoever is named.
        for wide in ["/api", "/api/v4", "/api/v4/projects", "/-", "/users", "/groups", "/admin"] {
            let req = format!("{wide}/42/x");
            assert_eq!(check_answer(&cfg, &a(wide, "c2", false, true), &req, 0), v(2, true, true), "{wide}");
            // Exact answers name one path only.
            assert_eq!(check_answer(&cfg, &a(wide, "c2", true, true), wide, 0), v(2, true, false), "{wide}");
        }
        assert_eq!(check_answer(&cfg, &a("/-/profile", "c2", false, true), "/-/profile/keys", 0), v(2, true, false));
    }

    #[test]
    fn cache_headers_only_narrow_the_senders_own_entry() {
        let cfg = three_cells();
        let h = |v: &str| parse_cache_header(v).unwrap();
        let entry = Some(("/org", false));
        assert_eq!(check_cache_header(&cfg, &h("path=/org/x; cell=c1"), "/org/x/y", 1, entry), Ok(1));
        assert_eq!(check_cache_header(&cfg, &h("path=/org; cell=c1"), "/org/x/y", 1, entry), Ok(1));
        assert_eq!(check_cache_header(&cfg, &h("path=/org/x/y; cell=c1; exact"), "/org/x/y", 1, entry), Ok(1));
        let err = |v: &str, sender, entry| check_cache_header(&cfg, &h(v), "/org/x/y", sender, entry).unwrap_err();
        assert!(matches!(err("path=/org/x; cell=c2", 1, entry), Untrusted::NotTheSender { .. }));
        assert!(matches!(err("path=/org/x; cell=c1", 1, None), Untrusted::Unrouted { .. }));
        assert!(matches!(err("path=/; cell=c1", 1, entry), Untrusted::RootHeader));
        assert!(matches!(err("path=/; cell=c1", 1, Some(("/", false))), Untrusted::RootHeader));
        assert!(matches!(err("path=/org/x; cell=c1", 1, Some(("/org/x/y", true))), Untrusted::WiderThanEntry { .. }));
        // Widening inside the top-level namespace is the cell's to say; not from an exact entry,
        // and not under GitLab's fixed top-level routes, where neighbours live on other cells.
        assert_eq!(check_cache_header(&cfg, &h("path=/org; cell=c1"), "/org/x/y", 1, Some(("/org/x", false))), Ok(1));
        assert!(matches!(err("path=/org; cell=c1", 1, Some(("/org/x/y", true))), Untrusted::WiderThanEntry { .. }));
        let g2 = |v: &str, req: &str, entry| check_cache_header(&cfg, &h(v), req, 1, entry);
        assert!(matches!(g2("path=/api/v4/foo; cell=c1", "/api/v4/foo/5/x", Some(("/api/v4/foo/5", false))), Err(Untrusted::WiderThanEntry { .. })));
        assert!(matches!(g2("path=/-/snippets; cell=c1", "/-/snippets/5", Some(("/-/snippets/5", false))), Err(Untrusted::WiderThanEntry { .. })));
        let g = |v: &str, req: &str, entry| check_cache_header(&cfg, &h(v), req, 1, entry);
        assert!(matches!(g("path=/api/v4; cell=c1", "/api/v4/projects/1", Some(("/api/v4/projects/1", false))), Err(Untrusted::ReservedHeader { .. })));
        assert!(matches!(g("path=/-; cell=c1", "/-/profile", Some(("/-/profile", false))), Err(Untrusted::ReservedHeader { .. })));
    }

    #[test]
    fn learn_paths_in_every_spelling_a_cell_would_route() {
        let l = "/api/v4/cells/learn";
        for p in [
            l,
            "/api/v4/cells/learn/",
            "/api/v4/cells/learn.json",
            "/api/v4/cells/learn/x",
            "//api/v4//cells/learn",
            "/api/v4/cells/%6Cearn",
            "/api/v4/cells/%6cearn",
            "/API/v4/cells/Learn",
            "/api/v4/cells%2Flearn",
            "/%61pi/v4/cells/learn?x",
        ] {
            assert!(is_learn_path(p.split('?').next().unwrap(), l), "{p}");
        }
        for p in ["/api/v4/cells/learner", "/api/v4/cells", "/api/v4/cells/lear", "/gitlab-org/api/v4/cells/learn", "/"] {
            assert!(!is_learn_path(p, l), "{p}");
        }
        assert!(is_learn_path("/internal/learn.json", "/internal/learn/"));
    }

    /// The request path's shortcuts: with [`check_target`]'s answer, the learn-path check and
    /// the routing path say what they say on their own, for escaped, trailing-`/` and plain
    /// paths alike.
    #[test]
    fn shortcuts_with_the_targets_answer_agree() {
        let l = "/api/v4/cells/learn";
        for p in [
            "/api/v4/cells/learn",
            "/api/v4/cells/learn.json",
            "/api/v4/cells/%6Cearn",
            "/api/v4/cells%2Flearn",
            "/%61pi/v4/cells/learn?x",
            "/api/v4/cells/learner",
            "/api/v4/cells",
            "/gitlab-org/gitlab/-/issues",
            "/bench/x",
            "/a%20b",
            "/",
            "/Gitlab-Org/gitlab/",
            "/api/v4/projects/1/",
            "/a/b.json",
        ] {
            let uri: Uri = p.parse().unwrap();
            let plain = check_target(&uri, 100).unwrap();
            assert_eq!(plain, !p.contains('%'), "{p}");
            assert_eq!(is_learn_path_of(uri.path(), l, plain), is_learn_path(uri.path(), l), "{p}");
            assert_eq!(routing_path_of(uri.path(), plain), routing_path(uri.path()), "{p}");
        }
    }

    /// The grammar's cases are the shared table (tests/cache_header_grammar.rs); here, that a
    /// path is kept as the request's own bytes, so a cell no longer has to encode it twice.
    #[test]
    fn parses_cache_headers() {
        assert_eq!(
            parse_cache_header("path=/api/v4/projects/gitlab-org%2Fx; cell=cell_1; exact"),
            Some(CacheHeader { path: "/api/v4/projects/gitlab-org%2Fx".into(), cell: "cell_1".into(), exact: true })
        );
        assert_eq!(parse_cache_header("path=\"/a;b\";cell=c").map(|h| h.path), Some("/a;b".into()));
        assert_eq!(parse_cache_header("path=%2Fa; cell=c"), None);
    }

    #[test]
    fn strips_hop_by_hop_and_internal_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-foo".parse().unwrap());
        h.insert("x-foo", "1".parse().unwrap());
        h.insert("keep-alive", "1".parse().unwrap());
        h.insert("x-gitlab-cell-cache", "1".parse().unwrap());
        h.insert("x-cells-router-trace", "1".parse().unwrap());
        h.insert("x-cells-router", "1".parse().unwrap());
        h.insert("x_gitlab_cell_cache", "1".parse().unwrap());
        h.insert("x_gitlab-cell_owner", "1".parse().unwrap());
        h.insert("x_forwarded_for", "1".parse().unwrap());
        h.insert("x_cells_router_trace", "1".parse().unwrap());
        h.insert("accept", "*/*".parse().unwrap());
        h.insert("x_custom_thing", "1".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        strip_internal(&mut h);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.contains_key("accept") && h.contains_key("x_custom_thing"));
    }

    /// The one-pass shortcut never answers for a path `normalize_path` would change or cut: on
    /// every mix of the bytes that matter, `routing_path` is `normalize_path`'s answer.
    #[test]
    fn the_plainly_normal_shortcut_agrees_with_normalize_path() {
        const BYTES: &[u8] = b"//a.%2fF?#-\xe9";
        let mut next = crate::test_rng(0x2545_f491_4f6c_dd1d_u64);
        let mut shortcut = 0;
        for _ in 0..20_000 {
            let len = (next() % 9) as usize;
            let path: String = (0..len).map(|_| BYTES[(next() % BYTES.len() as u64) as usize] as char).collect();
            let slow = match cells_learn::normalize::normalize_path(path.as_bytes()) {
                Cow::Borrowed(b) => String::from_utf8_lossy(b).into_owned(),
                Cow::Owned(v) => String::from_utf8(v).unwrap(),
            };
            if plainly_normal(path.as_bytes()) {
                shortcut += 1;
                assert_eq!(slow, path, "{path:?} is not normal");
            }
            assert_eq!(routing_path(&path), slow, "{path:?}");
        }
        assert!(shortcut > 1000, "the shortcut was taken {shortcut} times");
        for (path, normal) in
            [("/", true), ("/a/b", true), ("/a/", false), ("//", false), ("/a//b", false), ("/a?b", false), ("/a%2f", false), ("a", false), ("", false)]
        {
            assert_eq!(plainly_normal(path.as_bytes()), normal, "{path:?}");
        }
    }
}
