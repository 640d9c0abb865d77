//! The `X-Gitlab-Cell-Cache` grammar (issue 14, item 7): the router's parser against the one
//! table of cases, `tests/data/cache_header_cases.json`, that `spec/cache_header_spec.rb` runs
//! against the gem's `CacheHeader` too, so the cells and the router read every header alike.

use cells_router::trust::{parse_cache_header, CacheHeader, MAX_CACHE_HEADER_PATH_BYTES};
use serde_json::Value;

fn cases() -> Value {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cache_header_cases.json");
    serde_json::from_slice(&std::fs::read(&file).expect("the shared cache header cases")).expect("valid JSON")
}

fn expected(v: &Value) -> Option<CacheHeader> {
    (!v.is_null()).then(|| CacheHeader {
        path: v["path"].as_str().unwrap().to_string(),
        cell: v["cell"].as_str().unwrap().to_string(),
        exact: v["exact"].as_bool().unwrap(),
    })
}

#[test]
fn the_router_parses_every_shared_case_as_the_table_says() {
    let cases = cases();
    let parse = cases["parse"].as_array().unwrap();
    assert!(parse.len() > 40, "{} cases", parse.len());
    let mut refused = 0;
    for case in parse {
        let header = case["header"].as_str().unwrap();
        let want = expected(&case["parsed"]);
        refused += usize::from(want.is_none());
        assert_eq!(parse_cache_header(header), want, "{header:?} ({})", case["why"]);
    }
    // Both kinds are there.
    assert!(refused > 20 && refused < parse.len() - 10, "{refused} refusals");
}

/// What the gem writes, the router reads back unchanged.
#[test]
fn the_router_reads_what_the_gem_writes() {
    let cases = cases();
    for case in cases["format"].as_array().unwrap() {
        let header = case["header"].as_str().unwrap();
        let want =
            CacheHeader { path: case["path"].as_str().unwrap().into(), cell: case["cell"].as_str().unwrap().into(), exact: case["exact"].as_bool().unwrap() };
        assert_eq!(parse_cache_header(header), Some(want), "{header:?}");
    }
    // A path the gem refuses to write is refused by the router, bare or quoted.
    for path in cases["unformattable"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()) {
        for header in [format!("path={path}; cell=c"), format!("path=\"{path}\"; cell=c")] {
            assert_eq!(parse_cache_header(&header), None, "{header:?}");
        }
    }
}

#[test]
fn paths_up_to_the_limit_and_not_one_byte_more() {
    let longest = format!("path=/{}; cell=c", "a".repeat(MAX_CACHE_HEADER_PATH_BYTES - 1));
    assert_eq!(parse_cache_header(&longest).map(|h| h.path.len()), Some(MAX_CACHE_HEADER_PATH_BYTES));
    assert_eq!(parse_cache_header(&longest.replacen('/', "/a", 1)), None);
    let quoted = format!("path=\"/{};\"; cell=c", "a".repeat(MAX_CACHE_HEADER_PATH_BYTES - 2));
    assert_eq!(parse_cache_header(&quoted).map(|h| h.path.len()), Some(MAX_CACHE_HEADER_PATH_BYTES));
}
