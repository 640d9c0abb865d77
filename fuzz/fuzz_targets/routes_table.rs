//! Arbitrary route tables (JSON, as `cells-learn` reads them): parsing and compiling must
//! return Ok or Err, never panic; a table that compiles classifies a few paths without
//! panicking, and its matches respect the same invariants as in the `classify` target.
//! The lazy DFA keeps building cheap, so the fuzzer spends its time on the parsers and compiler.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cells_learn::{routes, BuildOptions, Classifier, EngineConfig, EngineKind};

const PROBES: [(&str, &[u8]); 6] = [
    ("GET", b"/"),
    ("GET", b"/gitlab-org/gitlab/-/issues/1"),
    ("POST", b"/api/v4/projects/1.json"),
    ("HEAD", b"/a/b.c/d"),
    ("GET", b"/users/sign_in?x=1"),
    ("DELETE", b"//x%2f/%aa."),
];

fn check(classifier: &Classifier, method: &str, path: &[u8]) {
    if let Ok(Some(m)) = classifier.classify(method, path) {
        assert!(m.route_index() < classifier.routes().len());
        for name in m.route().param_names() {
            if let Some((start, end)) = m.span(name) {
                assert!(start <= end && end <= m.path().len(), "param {name:?} span {start}..{end} outside {} bytes", m.path().len());
            }
        }
        let _ = m.params().count();
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(defs) = routes::from_json(data) else { return };
    let options = BuildOptions { engine: EngineConfig { kind: EngineKind::Lazy, ..Default::default() }, ..Default::default() };
    let Ok(classifier) = Classifier::build(defs, &options) else { return };
    for (method, path) in PROBES {
        check(&classifier, method, path);
    }
    // Each route's own spec, taken as a path, reaches deeper into its regex than the probes.
    let specs: Vec<String> = classifier.routes().iter().take(8).map(|r| r.def().path.clone()).collect();
    for spec in specs {
        check(&classifier, "GET", spec.as_bytes());
    }
});
