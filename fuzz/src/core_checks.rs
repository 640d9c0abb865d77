//! The properties the core's fuzz targets check, one function per target.
//!
//! Shared on purpose: `fuzz/fuzz_targets/*.rs` call these on every generated input, and the
//! core's `tests/fuzz_regressions.rs` includes this file (`#[path]`) and calls them on every
//! saved input in `fuzz/regressions/<target>/`, so a regression test runs exactly the code
//! the fuzzer ran. Only `cells_learn` and `serde_json` are used: both crates see them.

use std::path::Path;

use cells_learn::internals::{param_names, parse, parse_spec, translate, Matcher};
use cells_learn::normalize::normalize_path;
use cells_learn::{routes, BuildOptions, Classifier, EngineConfig, EngineKind, LearnResponse, Learner, Rules};

/// `spec_parser`: a Journey path spec. `parse_spec` returns Ok or Err for any string, and
/// every parameter of a spec it accepts is a non-empty word (`[A-Za-z0-9_]+`, Journey's
/// `:name`/`*name`) written in the spec with its sigil. A name may repeat (`/:id/:id.tar`):
/// Rails draws such a route and keeps the last value, so the parser must accept it.
pub fn spec_parser(spec: &str) {
    if let Ok(nodes) = parse_spec(spec) {
        for name in param_names(&nodes) {
            assert!(!name.is_empty(), "parse_spec accepted an empty parameter name in {spec:?}");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "parse_spec accepted parameter {name:?} in {spec:?}");
            assert!(spec.contains(&format!(":{name}")) || spec.contains(&format!("*{name}")), "parameter {name:?} is not written in {spec:?}");
        }
    }
}

/// Haystacks stay short: the step budget, not the haystack, bounds the matcher's work.
pub const MAX_HAY: usize = 64;

/// `ruby_regex`: `[options byte] [regex source, UTF-8] [0x00] [haystack]`. The options byte is
/// masked to the `Regexp#options` bits (i = 1, x = 2, m = 4), the haystack cut to 64 bytes.
/// Parse → translate → budgeted backtracking match never panics or hangs; a translated
/// pattern always turns Unicode mode off; with no parameter slots a match has no spans.
pub fn ruby_regex(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else { return };
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let Ok(source) = std::str::from_utf8(&rest[..split]) else { return };
    let hay = rest.get(split + 1..).unwrap_or(&[]);
    let hay = &hay[..hay.len().min(MAX_HAY)];

    let Ok(node) = parse(source, u32::from(options) & 7) else { return };
    let translation = translate(&node);
    assert!(translation.pattern.starts_with("(?-u)"), "pattern {:?}", translation.pattern);
    let matcher = Matcher::new(node, 0);
    // Err(BudgetExceeded) is an allowed answer.
    if let Ok(Some(spans)) = matcher.captures_with_budget(hay, 100_000) {
        assert!(spans.is_empty(), "a matcher without slots returned spans {spans:?}");
    }
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The `classify` target's fixed route table and rules.
pub struct ClassifyFixture {
    pub learner: Learner,
    /// The same table built with lazy DFAs, as large tables are (GitLab's: routes matched
    /// around their key segments, the first-segment dispatch, the leading routes): its answers
    /// must be the dense build's, and its walks run the lazy DFAs' unchecked transitions.
    pub lazy: Classifier,
}

impl ClassifyFixture {
    /// The shared gitlabish corpus table (`gitlabish-routes.json`) with GitLab's default rules.
    pub fn load(routes_json: &Path) -> ClassifyFixture {
        let bytes = std::fs::read(routes_json).unwrap_or_else(|e| panic!("reading {}: {e}", routes_json.display()));
        let defs = routes::from_json(&bytes).expect("the corpus route table parses");
        let options = BuildOptions { engine: EngineConfig { kind: EngineKind::Lazy, ..EngineConfig::default() }, ..BuildOptions::default() };
        let lazy = Classifier::build(defs.clone(), &options).expect("the corpus route table compiles with lazy DFAs");
        let classifier = Classifier::new(defs).expect("the corpus route table compiles");
        ClassifyFixture { learner: Learner::new(classifier, Rules::gitlab_default()), lazy }
    }
}

/// `classify`: the first byte picks the method (GET … OPTIONS, or for `% 8 == 7` the bytes up
/// to the first space as an arbitrary method string); the rest is `path_info`. Checks:
/// - a match's `route_index` is valid and its path is the normalized path;
/// - every parameter span lies within the normalized path;
/// - `Learner::learned` agrees with `recognize` on the route, its response `covers` the
///   normalized path, and it fails exactly when `recognize` fails or the normalized path is not
///   UTF-8;
/// - the table built with lazy DFAs gives the same answer (route, parameters or error) and the
///   same matching routes in the same order.
pub fn classify(fx: &ClassifyFixture, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (method, path_info): (String, &[u8]) = match METHODS.get(usize::from(selector % 8)) {
        Some(m) => (m.to_string(), rest),
        None => {
            let split = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let Ok(method) = std::str::from_utf8(&rest[..split]) else { return };
            (method.to_string(), rest.get(split + 1..).unwrap_or(&[]))
        }
    };
    let (learner, classifier) = (&fx.learner, fx.learner.classifier());
    let normalized = normalize_path(path_info);
    assert_eq!(normalize_path(&normalized), &normalized[..], "normalize_path is not idempotent on {path_info:?}");
    if !path_info.contains(&b'?') {
        let (before, after) = (std::str::from_utf8(path_info).is_ok(), std::str::from_utf8(&normalized).is_ok());
        assert_eq!(before, after, "normalize_path changed whether {path_info:?} is UTF-8");
    }

    let classified = classifier.recognize(&method, path_info);
    let route = match &classified {
        Ok(Some(m)) => {
            assert!(m.route_index() < classifier.routes().len(), "route_index {} out of range", m.route_index());
            assert_eq!(m.path(), &normalized[..], "Match::path is not the normalized path");
            for name in m.route().param_names() {
                if let Some((start, end)) = m.span(name) {
                    assert!(start <= end && end <= m.path().len(), "param {name:?} span {start}..{end} outside a path of {} bytes", m.path().len());
                    let _ = m.param(name);
                }
            }
            let _ = m.params().count();
            Some(m.route_index())
        }
        Ok(None) | Err(_) => None,
    };
    let answer = |c: &Result<Option<cells_learn::Match<'_, '_>>, cells_learn::ClassifyError>| match c {
        Ok(m) => Ok(m.as_ref().map(|m| (m.route_index(), m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect::<Vec<_>>()))),
        Err(e) => Err(e.clone()),
    };
    assert_eq!(answer(&fx.lazy.recognize(&method, path_info)), answer(&classified), "the lazy build answers {method} {path_info:?} differently");
    let routes = |c: &Classifier| c.matches(&method, path_info).map(|all| all.iter().map(|m| m.route_index()).collect::<Vec<_>>());
    assert_eq!(routes(&fx.lazy), routes(classifier), "the lazy build matches {method} {path_info:?} differently");

    match learner.learned(&method, path_info) {
        Ok(learned) => {
            assert!(classified.is_ok(), "learn answered where recognize failed: {:?}", classified.err());
            assert_eq!(learned.route(), route, "learn and recognize disagree on the route: {learned:?}");
            let response = learned.respond("cell_0", |_| Some("cell_1".into()));
            match std::str::from_utf8(&normalized) {
                Ok(path) => assert!(response.covers(path), "learn response {response:?} does not cover the request path {path:?} ({learned:?})"),
                // Not UTF-8 and no route took the bytes as a parameter: an exact answer that is
                // never cached, naming the path with its invalid bytes percent-encoded.
                Err(_) => assert!(response.exact && !response.cacheable, "learn answer {response:?} for a path that is not UTF-8"),
            }
        }
        // Including Rails' 400 for a parameter that is not UTF-8 (`ParamNotUtf8`): both refuse.
        Err(e) => assert_eq!(classified.err(), Some(e), "learn failed where recognize did not (or differently)"),
    }
}

/// `learn_response`: the learn endpoint's JSON answer as the router reads it. Whatever parses
/// survives a serialize → parse round trip unchanged, serializing is stable, the optional
/// fields are written only when they differ from their defaults, and `covers` agrees with an
/// independent statement of the coverage rule on the answer's own path and its neighbours.
pub fn learn_response(data: &[u8]) {
    let Ok(first) = serde_json::from_slice::<LearnResponse>(data) else { return };
    let bytes = serde_json::to_vec(&first).expect("a parsed LearnResponse serializes");
    let second: LearnResponse = serde_json::from_slice(&bytes).expect("a serialized LearnResponse parses");
    assert_eq!(first, second);
    assert_eq!(bytes, serde_json::to_vec(&second).unwrap());
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value.get("exact").is_some(), first.exact, "\"exact\" written iff true: {value}");
    assert_eq!(value.get("cacheable").is_some(), !first.cacheable, "\"cacheable\" written iff false: {value}");

    let p = first.path.as_str();
    for probe in [p.to_string(), format!("{p}/x"), format!("{p}x"), format!("{p}/"), "/".to_string()] {
        assert_eq!(first.covers(&probe), covers_oracle(p, first.exact, &probe), "covers({probe:?}) for {first:?}");
    }
}

/// The coverage rule, written independently of `covers_prefix`: an exact answer covers its own
/// path only; a prefix answer covers its path and what lies below it on a `/` boundary, and
/// `/` covers every absolute path.
pub fn covers_oracle(answer_path: &str, exact: bool, request_path: &str) -> bool {
    if exact {
        return request_path == answer_path;
    }
    if answer_path == "/" {
        return request_path.starts_with('/');
    }
    request_path == answer_path || request_path.starts_with(&format!("{answer_path}/"))
}

const PROBES: [(&str, &[u8]); 6] = [
    ("GET", b"/"),
    ("GET", b"/gitlab-org/gitlab/-/issues/1"),
    ("POST", b"/api/v4/projects/1.json"),
    ("HEAD", b"/a/b.c/d"),
    ("GET", b"/users/sign_in?x=1"),
    ("DELETE", b"//x%2f/%aa."),
];

fn check_match(classifier: &Classifier, method: &str, path: &[u8]) {
    if let Ok(Some(m)) = classifier.recognize(method, path) {
        assert!(m.route_index() < classifier.routes().len());
        for name in m.route().param_names() {
            if let Some((start, end)) = m.span(name) {
                assert!(start <= end && end <= m.path().len(), "param {name:?} span {start}..{end} outside {} bytes", m.path().len());
            }
        }
        let _ = m.params().count();
    }
}

/// `routes_table`: an arbitrary route table as JSON. Parsing and compiling (lazy DFA, so the
/// time goes to the parsers and compiler) return Ok or Err; a table that compiles classifies
/// the probes and its own first specs (taken as paths) with matches that respect the same
/// invariants as in `classify`.
pub fn routes_table(data: &[u8]) {
    let Ok(defs) = routes::from_json(data) else { return };
    let options = BuildOptions { engine: EngineConfig { kind: EngineKind::Lazy, ..Default::default() }, ..Default::default() };
    let Ok(classifier) = Classifier::build(defs, &options) else { return };
    for (method, path) in PROBES {
        check_match(&classifier, method, path);
    }
    let specs: Vec<String> = classifier.routes().iter().take(8).map(|r| r.def().path.clone()).collect();
    for spec in specs {
        check_match(&classifier, "GET", spec.as_bytes());
    }
}
