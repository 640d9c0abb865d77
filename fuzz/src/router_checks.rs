//! The properties the router's fuzz targets check (`cache_header`, `router_learn`).
//!
//! Shared like `core_checks.rs`: the fuzz targets call these on every input, and
//! `router/tests/fuzz_regressions.rs` includes this file (`#[path]`) and calls them on the saved
//! inputs in `fuzz/regressions/<target>/`. Only crates the router's integration tests also see
//! are used (`cells_router`, `cells_learn`, `http`, `serde_json`).
//!
//! The safety property behind both targets: nothing the cells say may steer a request it was
//! not about. An accepted answer or header names a configured cell and covers the request path,
//! and once cached, the route cache returns it for the request path and for no path it does not
//! cover.

use std::time::Duration;

use cells_learn::normalize::normalize_path;
use cells_learn::LearnResponse;
use cells_router::cache::{Lookup, RouteCache};
use cells_router::config::{valid_cell_name, Args, Config};
use cells_router::trust::{self, CacheHeader, TargetError, Untrusted};
use http::{HeaderValue, Uri};

/// The configured cells (names chosen to use every character class a cell name allows).
pub const CELLS: [&str; 4] = ["cell_0", "cell_1", "cell_us0", "c.e-U_9"];

/// The learn body limit in `router/src/learn.rs` (`MAX_ANSWER_BYTES`).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `limits.max_path_bytes` for the request-target check.
const MAX_PATH_BYTES: usize = 8192;

/// A router configuration with `CELLS` (built once per process by the targets).
pub fn config() -> Config {
    let mut toml = String::from("default_cell = \"cell_0\"\n");
    for (i, name) in CELLS.iter().enumerate() {
        toml.push_str(&format!("[[cells]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{}\"\n", 9001 + i));
    }
    Config::from_toml(&toml, &Args::default()).expect("the fuzz router configuration is valid")
}

/// A path as Rails routes it and the router compares and caches it: the core's
/// `normalize_path` (Rails' `normalize_path`: query dropped, `/` runs squeezed, one trailing
/// `/` dropped, lower-case `%xx` upper-cased). Normalizing keeps UTF-8 UTF-8 and is idempotent.
pub fn norm(path: &str) -> String {
    let once = String::from_utf8(normalize_path(path.as_bytes()).into_owned()).expect("normalization keeps UTF-8");
    assert_eq!(normalize_path(once.as_bytes()), once.as_bytes(), "normalize_path is not idempotent on {path:?}");
    once
}

/// What the router accepts as an answer's path: absolute, and nothing normalization would cut
/// off (`?`, `#`) or that no request path contains (control bytes).
pub fn is_path(answer_path: &str) -> bool {
    answer_path.starts_with('/') && !answer_path.bytes().any(|b| b == b'?' || b == b'#' || b < 0x20 || b == 0x7f)
}

/// A `.` or `..` segment once normalized (normalization squeezes `//`).
pub fn dot_segment(path: &str) -> bool {
    let n = norm(path);
    n.len() > 1 && n[1..].split('/').any(|s| s.is_empty() || s == "." || s == "..")
}

/// The coverage rule, written independently of the core's `covers_prefix`, on normalized
/// paths: an exact answer covers its own path only; a prefix answer covers its path and what
/// lies below it on a `/` boundary; `/` covers every path.
pub fn covers(answer_path: &str, exact: bool, request_path: &str) -> bool {
    let (a, r) = (norm(answer_path), norm(request_path));
    if exact {
        return r == a;
    }
    a == "/" || r == a || r.starts_with(&format!("{a}/"))
}

/// The gem's `CacheHeader` writing: the path as it is (the request path's own bytes), in
/// double quotes when it holds `;` or `,`.
fn header_path(path: &str) -> String {
    if path.contains([';', ',']) {
        format!("\"{path}\"")
    } else {
        path.to_string()
    }
}

/// Formats a header the way the contract writes it.
pub fn format_cache_header(h: &CacheHeader) -> String {
    format!("path={}; cell={}{}", header_path(&h.path), h.cell, if h.exact { "; exact" } else { "" })
}

/// Request paths the router would route: the request target passes `trust::check_target`.
/// An accepted path has none of the forms the router promises to refuse.
fn routable(path: &str) -> bool {
    let Ok(uri) = path.parse::<Uri>() else { return false };
    match trust::check_target(&uri, MAX_PATH_BYTES) {
        Ok(plain) => {
            let p = uri.path();
            assert!(p.starts_with('/'), "check_target accepted {p:?}");
            // The router's shortcuts on a path proved plain say what the full checks say.
            assert!(!plain || !p.contains('%'), "check_target called {p:?} plain");
            assert_eq!(trust::routing_path_of(p, plain), trust::routing_path(p), "routing path of {p:?}");
            for learn in ["/api/v4/internal/cells/learn", "/-/learn/"] {
                assert_eq!(trust::is_learn_path_of(p, learn, plain), trust::is_learn_path(p, learn), "learn path {learn:?} for {p:?}");
            }
            assert!(!p.contains("//"), "check_target accepted an empty segment: {p:?}");
            assert!(!p.split('/').any(|s| s == "." || s == ".."), "check_target accepted a dot segment: {p:?}");
            // Escapes inside a segment (`%2F`, `%2E`, `%5C`, ...) are forwarded as they are
            // (Rails routes on them undecoded); a segment of dots, raw or `%2E`, never is.
            let lower = p.to_ascii_lowercase();
            assert!(!lower.split('/').any(|s| matches!(s.replace("%2e", ".").as_str(), "." | "..")), "check_target accepted an encoded dot segment: {p:?}");
            assert!(!p.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\'), "check_target accepted a control byte or backslash: {p:?}");
            true
        }
        Err(TargetError::TooLong) => {
            assert!(uri.path().len() > MAX_PATH_BYTES);
            false
        }
        Err(TargetError::Invalid(_)) => false,
    }
}

/// Caches an accepted (path, exact, cell) the way the router does and checks the cache returns
/// it for `request_path`, and for each probe returns it only when the entry covers the probe.
fn check_cached(answer_path: &str, exact: bool, cell: usize, request_path: &str) {
    let cache = RouteCache::new(64, Duration::from_secs(60), Duration::from_secs(60));
    cache.insert(answer_path, exact, cell);
    match cache.lookup(request_path) {
        Lookup::Fresh(e) => {
            assert_eq!((e.path.as_str(), e.exact, e.cell), (norm(answer_path).as_str(), exact, cell), "the cache returned another entry for {request_path:?}");
        }
        other => panic!("accepted {answer_path:?} (exact {exact}) for {request_path:?}, but the cache answers {other:?}"),
    }
    let parent = request_path.rfind('/').map_or("/", |i| if i == 0 { "/" } else { &request_path[..i] });
    let probes = [
        format!("{request_path}/x"),
        format!("{request_path}x"),
        format!("{request_path}/"),
        parent.to_string(),
        format!("{answer_path}x"),
        format!("{answer_path}/"),
        format!("{answer_path}/y/z"),
        "/".to_string(),
        "/other".to_string(),
    ];
    for q in probes {
        if let Lookup::Fresh(e) | Lookup::Stale(e) = cache.lookup(&q) {
            assert!(
                covers(&e.path, e.exact, &q),
                "the cache steers {q:?} with {:?} (exact {}), which does not cover it (learned for {request_path:?})",
                e.path,
                e.exact
            );
        }
    }
}

/// `cache_header`: `[header value bytes] \n [request path]`.
///
/// The value goes through what the router does with a response header (`HeaderValue` →
/// `to_str` → `trust::parse_cache_header`); `parse_cache_header` also gets the raw text when it
/// is UTF-8, since it must hold for any string. Checks:
/// - a parsed header has an absolute path and a valid cell name; formatted the way the contract
///   writes it, it is a valid header value that parses back to the same header;
/// - `check_cache_header` accepts exactly when the cell is configured and the path covers the
///   request path, and the index it returns names that cell;
/// - an accepted header, cached, steers the request path, and no probe path it does not cover.
pub fn cache_header(cfg: &Config, data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (value, rest) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let Ok(request_path) = std::str::from_utf8(rest) else { return };

    // The raw text, HTTP or not: parsing is total and a result round-trips.
    if let Ok(text) = std::str::from_utf8(value) {
        if let Some(h) = trust::parse_cache_header(text) {
            check_header(cfg, &h, request_path);
        }
    }
    // What the router actually sees.
    let Ok(header) = HeaderValue::from_bytes(value) else { return };
    let Some(h) = header.to_str().ok().and_then(trust::parse_cache_header) else { return };
    check_header(cfg, &h, request_path);
    // Parts in any order, with spaces or tabs around them: the same header.
    let mut swapped = format!(" cell={} ;\tpath={}", h.cell, header_path(&h.path));
    if h.exact {
        swapped.push_str("; exact ");
    }
    assert_eq!(trust::parse_cache_header(&swapped).as_ref(), Some(&h), "{swapped:?} parses differently");
}

fn check_header(cfg: &Config, h: &CacheHeader, request_path: &str) {
    assert!(h.path.starts_with('/'), "parse_cache_header accepted a relative path {:?}", h.path);
    assert!(valid_cell_name(&h.cell), "parse_cache_header accepted the cell name {:?}", h.cell);
    let formatted = format_cache_header(h);
    assert!(HeaderValue::from_str(&formatted).is_ok(), "the formatted header {formatted:?} is not a valid header value");
    assert_eq!(trust::parse_cache_header(&formatted).as_ref(), Some(h), "{formatted:?} does not parse back to {h:?}");

    let known = CELLS.iter().position(|c| *c == h.cell);
    let covering = is_path(&h.path) && covers(&h.path, h.exact, request_path);
    // Sent by the cell it names, on a request its own entry (the header itself) routed: only
    // the shape of the claim can be refused.
    let root = norm(&h.path) == "/";
    let reserved = (!h.exact).then(|| cfg.reserved_prefixes.iter().find(|r| covers(&h.path, false, r))).flatten();
    match trust::check_cache_header(cfg, h, request_path, known.unwrap_or(0), Some((&h.path, h.exact))) {
        Ok(cell) => {
            assert_eq!(Some(cell), known, "check_cache_header returned cell {cell} for {:?}", h.cell);
            assert!(covering, "check_cache_header accepted {h:?} for {request_path:?}, which it does not cover");
            assert!(!root && reserved.is_none() && !dot_segment(&h.path), "check_cache_header accepted {h:?}, which claims too much");
            check_cached(&h.path, h.exact, cell, request_path);
        }
        Err(Untrusted::RootHeader) => assert!(root && covering, "{h:?} refused as / for {request_path:?}"),
        Err(Untrusted::ReservedHeader { reserved: r, .. }) => assert_eq!(reserved.map(String::as_str), Some(r.as_str()), "{h:?}"),
        Err(Untrusted::Malformed { .. }) => assert!(dot_segment(&h.path) && covering, "{h:?} refused as malformed"),
        Err(e @ (Untrusted::NotTheSender { .. } | Untrusted::Unrouted { .. } | Untrusted::WiderThanEntry { .. } | Untrusted::RootPrefix)) => {
            panic!("check_cache_header refused {h:?} from its own cell within its own entry: {e}")
        }
        Err(Untrusted::UnknownCell(c)) => {
            assert_eq!(c, h.cell);
            assert!(known.is_none(), "check_cache_header refused the configured cell {c:?}");
        }
        Err(Untrusted::NotCovering { path }) => {
            assert_eq!(path, h.path);
            assert!(known.is_some(), "an unknown cell must be refused as such");
            assert!(!covering, "check_cache_header refused {h:?} for {request_path:?}, which it covers");
        }
    }
    let _ = routable(request_path);
}

/// `router_learn`: `[mode byte] [request path tail] \n [learn answer body]`.
///
/// The body goes through what `Learner::attempt` does with a 200 answer (at most
/// `MAX_ANSWER_BYTES`, `serde_json` → `LearnResponse`, `trust::check_answer`). The request path
/// is the tail itself (even mode) or the answer's path followed by the tail (odd mode), so the
/// fuzzer reaches accepted answers as easily as refused ones. Checks:
/// - `check_answer` accepts exactly when the cell is configured, the answer's path is absolute
///   and it covers the request path; the index it returns names the answer's cell;
/// - an accepted cacheable answer, cached as the router caches it, steers the request path and
///   no probe path it does not cover.
pub fn router_learn(cfg: &Config, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (tail, body) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));
    if body.len() > MAX_ANSWER_BYTES {
        return;
    }
    let Ok(tail) = std::str::from_utf8(tail) else { return };
    let Ok(answer) = serde_json::from_slice::<LearnResponse>(body) else { return };
    let request_path = if mode % 2 == 0 { tail.to_string() } else { format!("{}{tail}", answer.path) };

    let known = CELLS.iter().position(|c| *c == answer.cell);
    let covering = is_path(&answer.path) && covers(&answer.path, answer.exact, &request_path);
    let root = norm(&answer.path) == "/";
    match trust::check_answer(cfg, &answer, &request_path, usize::MAX) {
        Ok(v) => {
            let cell = v.cell;
            assert_eq!(Some(cell), known, "check_answer returned cell {cell} for {:?}", answer.cell);
            assert!(covering, "check_answer accepted {answer:?} for {request_path:?}, which it does not cover");
            assert!((!root || answer.exact) && !dot_segment(&answer.path), "check_answer accepted {answer:?}, which claims too much");
            assert!(!(root && v.cacheable), "check_answer let / be cached");
            if answer.cacheable && v.cacheable {
                check_cached(&answer.path, answer.exact, cell, &request_path);
            }
        }
        Err(Untrusted::RootPrefix) => assert!(root && !answer.exact && covering, "{answer:?} refused as a prefix for /"),
        Err(Untrusted::Malformed { .. }) => assert!(dot_segment(&answer.path) && covering, "{answer:?} refused as malformed"),
        Err(
            e @ (Untrusted::NotTheSender { .. }
            | Untrusted::Unrouted { .. }
            | Untrusted::WiderThanEntry { .. }
            | Untrusted::RootHeader
            | Untrusted::ReservedHeader { .. }),
        ) => {
            panic!("check_answer refused {answer:?} with a cache header's reason: {e}")
        }
        Err(Untrusted::UnknownCell(c)) => {
            assert_eq!(c, answer.cell);
            assert!(known.is_none(), "check_answer refused the configured cell {c:?}");
        }
        Err(Untrusted::NotCovering { path }) => {
            assert_eq!(path, answer.path);
            assert!(known.is_some(), "an unknown cell must be refused as such");
            assert!(!covering, "check_answer refused {answer:?} for {request_path:?}, which it covers");
        }
    }
    let _ = routable(&request_path);
}
