//! The router's fuzz targets (`cache_header`, `router_learn`), replayed on the inputs saved in
//! `fuzz/regressions/<target>/` (inputs that once crashed a target, and hand-written hostile
//! edge cases). Each input goes through the very function the fuzz target calls
//! (`fuzz/src/router_checks.rs`, included here by path); `script/fuzz` replays the same inputs
//! through the fuzz binaries.

#[path = "../../fuzz/src/router_checks.rs"]
#[allow(dead_code)]
mod router_checks;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::{Path, PathBuf};

use cells_learn::{LearnResponse, Source};
use cells_router::trust::{self, CacheHeader};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

fn replay(target: &str, min: usize, check: impl Fn(&[u8])) {
    replay::replay(&regressions(), target, min, check);
}

fn inputs(target: &str, min: usize) -> Vec<(String, Vec<u8>)> {
    replay::inputs(&regressions(), target, min)
}

#[test]
fn cache_header_inputs() {
    let cfg = router_checks::config();
    replay("cache_header", 20, |data| router_checks::cache_header(&cfg, data));
}

#[test]
fn router_learn_inputs() {
    let cfg = router_checks::config();
    replay("router_learn", 20, |data| router_checks::router_learn(&cfg, data));
}

/// The saved inputs reach both sides of each decision (accepted and refused), so the replay
/// exercises the cache checks and not only the refusals.
#[test]
fn saved_inputs_reach_accepted_and_refused_answers() {
    let cfg = router_checks::config();
    let (mut accepted, mut refused) = (0, 0);
    for (_, data) in inputs("cache_header", 20) {
        let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let (Ok(value), Ok(path)) = (std::str::from_utf8(&data[..split]), std::str::from_utf8(data.get(split + 1..).unwrap_or(&[]))) else { continue };
        match trust::parse_cache_header(value)
            .map(|h| trust::check_cache_header(&cfg, &h, path, trust::cell_index(&cfg, &h.cell).unwrap_or(0), Some((&h.path, h.exact))))
        {
            Some(Ok(_)) => accepted += 1,
            _ => refused += 1,
        }
    }
    assert!(accepted >= 5 && refused >= 5, "cache_header inputs: {accepted} accepted, {refused} refused");

    let (mut accepted, mut refused) = (0, 0);
    for (_, data) in inputs("router_learn", 20) {
        let Some((&mode, rest)) = data.split_first() else { continue };
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (Ok(tail), Ok(answer)) = (std::str::from_utf8(&rest[..split]), serde_json::from_slice::<LearnResponse>(rest.get(split + 1..).unwrap_or(&[])))
        else {
            refused += 1;
            continue;
        };
        let path = if mode % 2 == 0 { tail.to_string() } else { format!("{}{tail}", answer.path) };
        match trust::check_answer(&cfg, &answer, &path, usize::MAX) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted >= 5 && refused >= 5, "router_learn inputs: {accepted} accepted, {refused} refused");
}

/// The properties can fail: the oracle refuses what an untrustworthy answer claims, and a
/// header that would not round-trip is caught.
#[test]
fn the_checks_refuse_what_they_should() {
    assert!(router_checks::covers("/a", false, "/a/b"));
    assert!(router_checks::covers("/a/", false, "/a//b"));
    assert!(!router_checks::covers("/a", false, "/ab"));
    assert!(!router_checks::covers("/-/profile", true, "/-/profile/keys"));
    assert!(router_checks::covers("/caf%c3%a9", true, "/caf%C3%A9/"));
    assert!(!router_checks::is_path("/a?b"));
    let h = CacheHeader { path: "/a;b%25".into(), cell: "cell_0".into(), exact: true };
    let formatted = router_checks::format_cache_header(&h);
    assert_eq!(formatted, "path=\"/a;b%25\"; cell=cell_0; exact");
    assert_eq!(trust::parse_cache_header(&formatted), Some(h));
    let not_ours = LearnResponse {
        path: "/a".into(),
        cell: "elsewhere".into(),
        source: Source::Routable,
        exact: false,
        cacheable: true,
        routes_digest: None,
        routes_version: None,
    };
    let cfg = router_checks::config();
    assert!(trust::check_answer(&cfg, &not_ours, "/a/b", 0).is_err());
}

/// Diagnostic for the "no memory growth" requirement, not a regression test: replays the local
/// (git-ignored) corpus that `script/fuzz` grew for `FUZZ_MEMORY_TARGET` (`cache_header` or
/// `router_learn`, the default) 12 times in one process, prints the RSS after each pass, and
/// fails if it still grows by more than 2 MB between pass 4 and pass 12.
///
///     FUZZ_MEMORY_TARGET=cache_header cargo test --release -p cells-router --test fuzz_regressions -- --ignored --nocapture corpus_memory
#[test]
#[ignore = "diagnostic: needs the local fuzz corpus (script/fuzz) and a release build"]
fn corpus_memory() {
    let target = std::env::var("FUZZ_MEMORY_TARGET").unwrap_or_else(|_| "router_learn".into());
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(&target);
    let cfg = router_checks::config();
    let check = |data: &[u8]| match target.as_str() {
        "cache_header" => router_checks::cache_header(&cfg, data),
        "router_learn" => router_checks::router_learn(&cfg, data),
        other => panic!("unknown router target {other:?}"),
    };
    let rss = replay::corpus_memory(&corpus, 12, check);
    println!("{target}: RSS MB after each pass over {}: {rss:?}", corpus.display());
    assert!(rss[11] <= rss[3] + 2, "{target}: RSS still grows on the same inputs: {rss:?}");
}
