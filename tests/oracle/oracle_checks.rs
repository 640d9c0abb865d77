//! The oracle itself, checked against the regex strings Rails builds and Rails' recorded vectors.

use std::collections::BTreeMap;

use cells_learn::{vectors, Requirement, RouteDef};

use crate::corpus::*;
use crate::oracle::*;

pub(crate) fn reqs(list: &[(&str, Requirement)]) -> BTreeMap<String, Requirement> {
    list.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub(crate) fn regex(source: &str, options: u32) -> Requirement {
    Requirement::Regex { source: source.into(), options }
}

/// The regex strings are Rails' own: each expected string below was printed by actionpack
/// 6.1.7.10 (`Journey::Path::Pattern.new(Journey::Parser.new.parse(spec), requirements,
/// "/.?", anchored).to_regexp.source`), and the offsets by its `Pattern#offsets`.
#[test]
fn oracle_builds_rails_regex_strings() {
    let cases: Vec<(&str, BTreeMap<String, Requirement>, bool, &str)> = vec![
        (
            "/*namespace_id/:project_id/-/issues(.:format)",
            reqs(&[("namespace_id", regex(".+?", 0)), ("format", regex("(html|json)", 1))]),
            false,
            r"\A/((?-mix:.+?))/([^/.?]+)/\-/issues(?:\.((?i-mx:(html|json))))?\Z",
        ),
        // The mapper's lazy default for a glob, which `route.requirements` does not list.
        ("/help/*path", reqs(&[]), false, r"\A/help/((?-mix:.+?))\Z"),
        ("/a(/:b(/:c))", reqs(&[("b", Requirement::Literal { literal: "v4.x".into() })]), false, r"\A/a(?:/((?-mix:v4\.x))(?:/([^/.?]+))?)?\Z"),
        ("/", reqs(&[]), true, r"\A/"),
        ("/api/v4", reqs(&[]), true, r"\A/api/v4(?:\b|\Z|/)"),
        // `mount app => "/-/ide/*path"`: format: false, so no lazy default for the glob.
        ("/-/ide/*path", reqs(&[]), true, r"\A/\-/ide/(.+)(?:\b|\Z|/)"),
        (r"/x/\:y~!$&'*+,;=@ #q", reqs(&[]), false, r"\A/x/:y~!\$&'\*\+,;=@\ \#q\Z"),
        ("/x/(rss|atom)/:id", reqs(&[("id", regex("[a-z]+", 7))]), false, r"\A/x/(?:(?:rss|atom))?/((?mix:[a-z]+))\Z"),
        ("/d/:a-:b", reqs(&[("b", regex(r"\d+", 2))]), false, r"\A/d/([^/.?]+)\-((?x-mi:\d+))\Z"),
    ];
    for (spec, requirements, mounted, expected) in cases {
        let seq = parse_spec(spec).unwrap();
        assert_eq!(route_regex_source(&seq, &requirements, mounted), expected, "{spec}");
        compile(expected).unwrap();
    }

    // Pattern#offsets for "/:a/:b/*c(.:format)" with a: /(x)(y)?/, c: /.+?/, format: /(j)(s)(n)/
    // is [0, 2, 2, 2, 5]: the parameters are groups 1, 4, 5 and 6.
    let def = RouteDef::new("GET", "/:a/:b/*c(.:format)").regex_requirement("a", "(x)(y)?", 0).regex_requirement("c", ".+?", 0).regex_requirement(
        "format",
        "(j)(s)(n)",
        0,
    );
    let oracle = Oracle::new(&[def]).unwrap();
    let groups: Vec<usize> = oracle.routes[0].params.iter().map(|(_, g)| *g).collect();
    assert_eq!(groups, [1, 4, 5, 6]);
    let answer = oracle.serve("GET", b"/xy/b/c/d.jsn").unwrap();
    let expected: Params = [("a", "xy"), ("b", "b"), ("c", "c/d"), ("format", "jsn")].iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    assert_eq!(answer, Some((0, expected)));
}

/// The oracle decides every recorded Rails decision of the corpus the same way, route and params.
#[test]
fn oracle_agrees_with_rails_vectors() {
    let defs = gitlabish_routes();
    let oracle = Oracle::new(&defs).unwrap();
    let text = std::fs::read_to_string(corpus_dir().join("gitlabish-requests.jsonl")).unwrap();
    let vectors = vectors::from_jsonl(&text).unwrap();
    assert!(vectors.len() > 700, "{} vectors", vectors.len());
    let mut wrong = Vec::new();
    for v in &vectors {
        let answer = oracle.serve(&v.method, v.path.as_bytes()).unwrap();
        let route = answer.as_ref().map(|a| a.0);
        let params: BTreeMap<String, String> = answer.iter().flat_map(|a| &a.1).map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect();
        let params_agree = match (&v.params, v.route_index) {
            (Some(p), Some(_)) => *p == params,
            _ => true,
        };
        if route != v.route_index || !params_agree {
            wrong.push(format!("{} {:?}: rails {:?} {:?}, oracle {route:?} {params:?}", v.method, v.path, v.route_index, v.params));
        }
    }
    assert!(wrong.is_empty(), "{} of {} vectors:\n{}", wrong.len(), vectors.len(), wrong.join("\n"));
}
