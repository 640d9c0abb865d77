//! One fixed, realistic route table (the shared gitlabish corpus), arbitrary requests.
//!
//! Input: the first byte picks the method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, or,
//! for the eighth value, the bytes up to the first space as an arbitrary method string); the
//! rest is `path_info`. Invariants checked on every answer:
//! - a match's `route_index` is a valid index into `routes()`, and its path is the normalized path;
//! - every parameter span lies within the normalized path;
//! - `Rules::learn` agrees with `classify` on the route, and its response `covers` the
//!   normalized path whenever that path is UTF-8.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use cells_learn::normalize::normalize_path;
use cells_learn::{routes, Classifier, Rules};

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

struct Fixture {
    classifier: Classifier,
    rules: Rules,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/gitlabish-routes.json");
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let defs = routes::from_json(&bytes).expect("the corpus route table parses");
        let classifier = Classifier::new(defs).expect("the corpus route table compiles");
        Fixture { classifier, rules: Rules::gitlab_default() }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (method, path_info): (String, &[u8]) = match METHODS.get(usize::from(selector % 8)) {
        Some(m) => (m.to_string(), rest),
        None => {
            let split = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let Ok(method) = std::str::from_utf8(&rest[..split]) else { return };
            (method.to_string(), rest.get(split + 1..).unwrap_or(&[]))
        }
    };
    let Fixture { classifier, rules } = fixture();
    let normalized = normalize_path(path_info);

    let classified = classifier.classify(&method, path_info);
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
        Ok(None) => None,
        Err(_) => None,
    };

    match rules.learn(classifier, &method, path_info) {
        Ok(learned) => {
            assert!(classified.is_ok(), "learn answered where classify failed: {:?}", classified.err());
            assert_eq!(learned.route(), route, "learn and classify disagree on the route: {learned:?}");
            let response = learned.respond("cell_0", |_| Some("cell_1".into()));
            if let Ok(path) = std::str::from_utf8(&normalized) {
                assert!(response.covers(path), "learn response {response:?} does not cover the request path {path:?} ({learned:?})");
            }
        }
        Err(e) => assert_eq!(classified.err(), Some(e), "learn failed where classify did not (or differently)"),
    }
});
