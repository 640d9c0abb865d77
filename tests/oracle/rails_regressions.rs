//! Cases where the crate once differed from Rails (found by the properties).

use cells_learn::RouteDef;

use crate::oracle::*;
use crate::properties::*;

// Each expected answer below is what Rails itself (actionpack 6.1.7.10, `Journey::Router#
// find_routes` on an ASCII-8BIT PATH_INFO) returned for the same routes drawn with the DSL.

pub(crate) fn answer(route: usize, params: &[(&str, &str)]) -> Answer {
    Some((route, params.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()))
}

/// Checks one request against Rails' recorded answer, the oracle first, then the crate.
pub(crate) fn assert_rails(defs: &[RouteDef], method: &str, path: &[u8], rails: Answer) {
    let oracle = Oracle::new(defs).unwrap();
    let theirs = oracle.serve(method, path);
    assert_eq!(theirs, Ok(rails.clone()), "the oracle itself is wrong on {method} \"{}\"", path.escape_ascii());
    for classifier in both_layouts(defs).unwrap() {
        if let Err(e) = compare(&classifier, &oracle, method, path) {
            panic!("the crate differs from Rails ({} automata):\n{e}", classifier.engine_kind());
        }
    }
}

/// A mounted application's route is a prefix (`UnanchoredRegexp`: `\A/api/v4(?:\b|\Z|/)`).
/// The crate once matched it against the whole path only (its automaton reports matches that
/// end where the path ends; a mount's pattern now takes the rest of the path).
#[test]
fn rails_mounted_route_is_a_prefix() {
    let defs = vec![RouteDef::new("GET|POST", "/api/v4").mounted(), RouteDef::new("GET", "/:username")];
    assert_rails(&defs, "GET", b"/api/v4", answer(0, &[]));
    assert_rails(&defs, "GET", b"/api/v4x", None);
    assert_rails(&defs, "GET", b"/api/v4/-/tree/master", answer(0, &[]));
    assert_rails(&defs, "HEAD", b"/api/v4/-/tree/master", answer(0, &[]));
    assert_rails(&defs, "GET", b"/api/v4.json", answer(0, &[]));
    // `mount app => "/"` is `\A/`: every path.
    let defs = vec![RouteDef::new("", "/").mounted()];
    assert_rails(&defs, "GET", b"/anything/x", answer(0, &[]));
}

/// A mounted app is drawn with `format: false`, so its glob keeps Journey's greedy `(.+)`
/// (`mount app => "/-/ide/*path"` is `\A/\-/ide/(.+)(?:\b|\Z|/)`); the crate once gave it
/// the lazy `.+?` of ordinary routes, and so stopped the parameter at the first word boundary.
#[test]
fn rails_mounted_glob_is_greedy() {
    let defs = vec![RouteDef::new("", "/-/ide/*path").mounted()];
    assert_rails(&defs, "GET", b"/-/ide/issues/foobar", answer(0, &[("path", "issues/foobar")]));
}

/// `/search(.:format)` with a format requirement is not a simulator route, so Rails matches
/// `/search\n` with its regex, whose `\Z` allows a final newline. The crate once skipped its
/// automaton of static routes because the first segment `search\n` was not one of theirs,
/// and answered `/:username` instead.
#[test]
fn rails_trailing_newline_after_static_custom_route() {
    let defs = vec![RouteDef::new("GET", "/search(.:format)").regex_requirement("format", "json|html", 0), RouteDef::new("GET", "/:username")];
    assert_rails(&defs, "GET", b"/search\n", answer(0, &[]));
}

/// Routes whose symbols all keep Journey's default regexp are found by Journey's simulator,
/// which reads the path as `[/.?]|[^/.?]+` tokens and needs a token equal to each literal: for
/// `/x/edit\n` the last token is `edit\n`, so Rails finds no route. The crate once matched the
/// route's regex, where `\Z` accepts the final newline (it now ends such routes with `\z`).
#[test]
fn rails_trailing_newline_after_simulator_route() {
    let defs = vec![RouteDef::new("GET", "/:a/edit")];
    assert_rails(&defs, "GET", b"/x/edit\n", None);
    let defs = vec![RouteDef::new("GET", "/-/profile/keys(.:format)"), RouteDef::new("GET", "/-/profile/keys/:id(.:format)")];
    assert_rails(&defs, "GET", b"/-/profile/keys\n", None);
    // A symbol's token takes the newline, so these match in Rails too (the crate agrees).
    assert_rails(&defs, "GET", b"/-/profile/keys/x\n", answer(1, &[("id", "x\n")]));
    assert_rails(&defs, "GET", b"/-/profile/keys.json\n", answer(0, &[("format", "json\n")]));
}
