//! The core's fuzz targets, replayed on the inputs saved in `fuzz/regressions/<target>/`
//! (inputs that once crashed a target, and hand-written hostile edge cases). Each input goes
//! through the very function the fuzz target calls (`fuzz/src/core_checks.rs`, included here by
//! path), so a property the fuzzer checks is checked here too, in the ordinary test suite.
//! `script/fuzz` replays the same inputs through the fuzz binaries.

#[path = "../fuzz/src/core_checks.rs"]
#[allow(dead_code)]
mod core_checks;

#[path = "../fuzz/src/replay.rs"]
mod replay;

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use core_checks::ClassifyFixture;

fn replay(target: &str, min: usize, check: impl Fn(&[u8])) {
    let regressions: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    replay::replay(&regressions, target, min, check);
}

#[test]
fn spec_parser_inputs() {
    replay("spec_parser", 10, |data| {
        // The target takes `&str`: libFuzzer skips inputs that are not UTF-8.
        if let Ok(spec) = std::str::from_utf8(data) {
            core_checks::spec_parser(spec);
        }
    });
}

#[test]
fn ruby_regex_inputs() {
    replay("ruby_regex", 10, core_checks::ruby_regex);
}

#[test]
fn classify_inputs() {
    let fixture = ClassifyFixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/gitlabish-routes.json"));
    replay("classify", 10, |data| core_checks::classify(&fixture, data));
}

#[test]
fn learn_response_inputs() {
    replay("learn_response", 10, core_checks::learn_response);
}

#[test]
fn routes_table_inputs() {
    replay("routes_table", 5, core_checks::routes_table);
}

/// The checks can fail: the coverage oracle refuses what it should, and a replay of an input
/// whose check panics fails, naming it.
#[test]
fn the_checks_can_fail() {
    assert!(core_checks::covers_oracle("/a", false, "/a/b"));
    assert!(!core_checks::covers_oracle("/a", false, "/ab"));
    assert!(!core_checks::covers_oracle("/a", true, "/a/b"));
    assert!(core_checks::covers_oracle("/", false, "/x"));
    let failed = catch_unwind(|| replay("learn_response", 1, |data| assert!(!data.starts_with(b"{\"path\":\"/a\""), "refused"))).unwrap_err();
    let msg = failed.downcast_ref::<String>().unwrap();
    assert!(msg.contains("learn_response/minimal") && msg.contains("refused"), "{msg}");
}

/// Diagnostic for the "no memory growth" requirement, not a regression test: replays the local
/// (git-ignored) corpus that `script/fuzz` grew for `FUZZ_MEMORY_TARGET` (default `ruby_regex`)
/// 12 times in one process, prints the RSS after each pass, and fails if it still grows by more
/// than 2 MB between pass 4 and pass 12 (same inputs: anything kept past the first passes' high-water
/// marks would be a leak).
///
///     FUZZ_MEMORY_TARGET=classify cargo test --release --test fuzz_regressions -- --ignored --nocapture corpus_memory
#[test]
#[ignore = "diagnostic: needs the local fuzz corpus (script/fuzz) and a release build"]
fn corpus_memory() {
    let target = std::env::var("FUZZ_MEMORY_TARGET").unwrap_or_else(|_| "ruby_regex".into());
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(&target);
    let fixture = (target == "classify").then(|| ClassifyFixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/gitlabish-routes.json")));
    let check = |data: &[u8]| match target.as_str() {
        "spec_parser" => {
            if let Ok(spec) = std::str::from_utf8(data) {
                core_checks::spec_parser(spec)
            }
        }
        "ruby_regex" => core_checks::ruby_regex(data),
        "classify" => core_checks::classify(fixture.as_ref().unwrap(), data),
        "learn_response" => core_checks::learn_response(data),
        "routes_table" => core_checks::routes_table(data),
        other => panic!("unknown core target {other:?}"),
    };
    let rss = replay::corpus_memory(&corpus, 12, check);
    println!("{target}: RSS MB after each pass over {}: {rss:?}", corpus.display());
    assert!(rss[11] <= rss[3] + 2, "{target}: RSS still grows on the same inputs: {rss:?}");
}
