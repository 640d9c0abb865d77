//! Unit tests of the classifier: the build pipeline's helpers and the query side's Rails order.

use super::build::{literal_segments, route_node, slashes, RequirementCache};
use super::*;
use crate::around_key::Slashes;
use crate::engine::{EngineConfig, EngineKind};
use crate::journey;
use crate::routes::{Requirement, RouteDef};
use crate::ruby_regex::ast::Node;

fn literals(spec: &str, mounted: bool) -> Vec<String> {
    literal_segments(&journey::parse_spec(spec).unwrap(), mounted).into_iter().map(|(l, _)| l).collect()
}

#[test]
fn slash_bounds_hold_every_match() {
    let bounds = |spec: &str| {
        let def = RouteDef::new("GET", spec);
        let (_, node, _) = route_node(0, &def, &mut RequirementCache::new(false)).unwrap();
        let Node::Concat(items) = node else { unreachable!("a route's regex is a sequence") };
        let s = slashes(&items);
        (s.min, s.max)
    };
    assert_eq!(bounds("/a/:b"), (2, 2));
    assert_eq!(bounds("/a(/:b)(.:format)"), (1, 2));
    assert_eq!(bounds("/*glob/x"), (2, u16::MAX));
    // A requirement that admits `/` counts as one or none per byte it may match.
    let def = RouteDef::new("GET", "/:id").regex_requirement("id", "[a-z/]{1,3}", 0);
    let (_, node, _) = route_node(0, &def, &mut RequirementCache::new(false)).unwrap();
    assert_eq!(slashes(std::slice::from_ref(&node)), Slashes { min: 1, max: 4 });
}

#[test]
fn key_segments_are_literals_every_matching_path_contains() {
    assert_eq!(literals("/*namespace_id/:project_id/-/issues(.:format)", false), ["-", "issues"]);
    assert_eq!(literals("/groups/*id/-/edit", false), ["groups", "-", "edit"]);
    assert_eq!(literals("(/:locale)/help/:page", false), ["help"]);
    assert!(literals("/", false).is_empty());
    let at = literal_segments(&journey::parse_spec("/*namespace_id/:project_id/-/issues").unwrap(), false);
    assert_eq!(at, [("-".to_string(), 5), ("issues".to_string(), 7)]);
    // Not delimited by separators, optional, or under a mount: not keys.
    assert!(literals("/:username", false).is_empty());
    assert!(literals("/foo-:id/bar-:x", false).is_empty());
    assert!(literals("/x(/edit)", false) == ["x"]);
    assert!(literals("/api/v4", true).is_empty());
}

fn table() -> Classifier {
    Classifier::new(vec![
        RouteDef::new("GET", "/").to("root", "index"),
        RouteDef::new("GET", "/-/profile(.:format)").to("profiles", "show"),
        RouteDef::new("GET", "/groups/*id(.:format)").regex_requirement("format", "(html|json|atom)", 0),
        RouteDef::new("HEAD", "/ping").to("ping", "head"),
        RouteDef::new("", "/ping").to("ping", "any"),
        RouteDef::new("GET|POST", "/:username(.:format)").regex_requirement("username", r"(?!(admin|groups)/)[a-zA-Z0-9_.\-]+(?<!\.git|\.atom)", 1).dynamic(),
        RouteDef::new("GET", "/*namespace_id/:project_id(.:format)"),
    ])
    .unwrap()
}

/// A table built with lazy DFAs, as large tables are: its layout matches routes around key
/// segments, as on GitLab's tables.
fn lazy_table(routes: Vec<RouteDef>) -> Classifier {
    let options = BuildOptions { engine: EngineConfig { kind: EngineKind::Lazy, ..EngineConfig::default() }, ..BuildOptions::default() };
    Classifier::build(routes, &options).unwrap()
}

fn params(m: &Match<'_, '_>) -> Vec<(String, String)> {
    m.params().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(&v).into_owned())).collect()
}

#[test]
fn recognize_skips_keyed_routes_only_after_a_route_that_certainly_answers() {
    // Large-table layout: `issues` and `edit` routes are matched around their key segment,
    // the catch-alls by the automaton for routes without a key, which runs first.
    let c = lazy_table(vec![
        RouteDef::new("GET", "/*namespace_id/:project_id").dynamic(),
        RouteDef::new("POST", "/:group/:id"),
        RouteDef::new("GET", "/:group/issues"),
        RouteDef::new("GET", "/*ns/:p(.:format)"),
        RouteDef::new("GET", "/x/issues"),
        RouteDef::new("HEAD", "/:a/edit"),
    ]);
    assert_eq!(c.layout, Layout::AnySegment);
    let pick = |method: &str, path: &str, accept: bool| c.recognize_with(method, path.as_bytes(), |_| accept).unwrap().map(|m| m.route_index());
    // Route 0 would answer, but its dynamic constraint says no: the keyed route 2 is next.
    assert_eq!(pick("GET", "/x/issues", false), Some(2));
    assert_eq!(pick("GET", "/x/issues", true), Some(0));
    // Route 1 matches but not for GET, so it does not cut the search short.
    assert_eq!(pick("POST", "/x/issues", false), Some(1));
    // Route 3 answers for sure: route 4 (keyed, later) is never needed.
    assert_eq!(pick("GET", "/a/b/issues", false), Some(3));
    // HEAD looks for routes naming HEAD among every candidate first.
    assert_eq!(pick("HEAD", "/x/edit", false), Some(5));
    // matches() still lists every route, keyed ones after the certain answer included.
    let all: Vec<usize> = c.matches("GET", b"/x/issues").unwrap().iter().map(Match::route_index).collect();
    assert_eq!(all, [0, 2, 3, 4]);
}

/// A first-match search stops at the first candidate that would answer were the host to agree
/// (route 1 here), and searches on only when the host declines it: the host must still be
/// asked in Rails' order, about the same routes as a search that never stopped early.
#[test]
fn recognize_resumes_after_a_likely_answer_the_host_declines() {
    let c = lazy_table(vec![
        RouteDef::new("GET", "/:group/issues").dynamic(),
        RouteDef::new("GET", "/*ns/:p").dynamic(),
        RouteDef::new("GET", "/*ns/:p/issues").dynamic(),
        RouteDef::new("GET", "/x/issues").dynamic(),
        RouteDef::new("GET", "/:a/:b/issues").dynamic(),
        RouteDef::new("GET", "/*rest(.:format)"),
        RouteDef::new("GET", "/:a/:b/:c/issues"),
    ]);
    assert_eq!(c.layout, Layout::AnySegment);
    for path in ["/x/issues", "/a/issues", "/a/b/issues", "/a/b/c/issues", "/a/b/c/d/issues"] {
        let all: Vec<usize> = c.matches("GET", path.as_bytes()).unwrap().iter().map(Match::route_index).collect();
        assert!(all.len() >= 3, "{path}: {all:?}");
        // The host accepts only route `accepted` (none: it declines every one).
        for accepted in all.iter().copied().map(Some).chain([None]) {
            let mut asked = Vec::new();
            let pick = c
                .recognize_with("GET", path.as_bytes(), |m| {
                    asked.push(m.route_index());
                    Some(m.route_index()) == accepted
                })
                .unwrap()
                .map(|m| m.route_index());
            // Rails: the first route the host accepts or that asks no host.
            let expected = all.iter().copied().find(|&r| Some(r) == accepted || !c.routes()[r].def().asks_host());
            let expected_asked: Vec<usize> =
                all.iter().copied().take_while(|&r| Some(r) != expected).chain(expected).filter(|&r| c.routes()[r].def().asks_host()).collect();
            assert_eq!(pick, expected, "{path}, accepting {accepted:?}");
            assert_eq!(asked, expected_asked, "{path}, accepting {accepted:?}");
        }
    }
}

#[test]
fn first_match_wins_with_params() {
    let c = table();
    let m = c.recognize("GET", b"/groups/gitlab-org/sub.json").unwrap().unwrap();
    assert_eq!(m.route_index(), 2);
    assert_eq!(params(&m), [("id".into(), "gitlab-org/sub".into()), ("format".into(), "json".into())]);
    let m = c.recognize("GET", b"//Admin/").unwrap().unwrap();
    assert_eq!(m.route_index(), 5);
    assert_eq!(params(&m), [("username".into(), "Admin".into())]);
    assert!(c.recognize("DELETE", b"/x").unwrap().is_none());
}

#[test]
fn head_prefers_explicit_head_routes_then_get() {
    let c = table();
    assert_eq!(c.recognize("HEAD", b"/ping").unwrap().unwrap().route_index(), 3);
    assert_eq!(c.recognize("GET", b"/ping").unwrap().unwrap().route_index(), 4);
    assert_eq!(c.recognize("HEAD", b"/someone").unwrap().unwrap().route_index(), 5);
    assert_eq!(c.recognize("HEAD", b"/-/profile").unwrap().unwrap().route_index(), 1);
}

/// Journey's `match_head_routes` keeps the routes drawn for HEAD whose request conditions
/// hold; when a HEAD route's `subdomain:` fails, HEAD is answered by the GET routes. Its
/// constraint objects, asked later at `serve`, do not send the request back to GET.
#[test]
fn head_routes_with_failing_request_conditions_fall_back_to_get() {
    let c = Classifier::new(vec![
        RouteDef::new("HEAD", "/x").conditions(),
        RouteDef::new("GET", "/x"),
        RouteDef::new("HEAD", "/y").dynamic(),
        RouteDef::new("GET", "/y"),
    ])
    .unwrap();
    let mut questions = Vec::new();
    let mut pick = |path: &str, conditions: bool, constraints: bool| {
        c.recognize_with("HEAD", path.as_bytes(), |m| {
            questions.push((m.route_index(), m.asks_request_conditions_only()));
            if m.asks_request_conditions_only() {
                conditions
            } else {
                constraints
            }
        })
        .unwrap()
        .map(|m| m.route_index())
    };
    assert_eq!(pick("/x", true, true), Some(0));
    assert_eq!(pick("/x", false, true), Some(1));
    // Conditions hold but the route's constraint object says no: no fallback to GET.
    assert_eq!(pick("/x", true, false), None);
    // A HEAD route with constraint objects only is chosen for the HEAD list without asking.
    assert_eq!(pick("/y", false, false), None);
    assert_eq!(questions, [(0, true), (0, false), (0, true), (0, true), (0, false), (2, false)]);
    assert_eq!(c.recognize("HEAD", b"/x").unwrap().map(|m| m.route_index()), Some(0));
}

/// Without a route that names HEAD, HEAD is answered as GET in every case — searched as a GET
/// is, stopping at the same route (both layouts; the same routes, constraints declined or not).
#[test]
fn head_is_get_where_no_route_names_head() {
    let routes = || {
        vec![
            RouteDef::new("GET", "/-/profile(.:format)"),
            RouteDef::new("GET|DELETE", "/*id(.:format)").regex_requirement("id", ".+?", 0).dynamic(),
            RouteDef::new("POST", "/:a/edit"),
            RouteDef::new("GET", "/:a/:b/edit").dynamic(),
            RouteDef::new("", "/api").mounted(),
            RouteDef::new("GET", "/*namespace_id/:project_id(.:format)"),
        ]
    };
    let dense = Classifier::new(routes()).unwrap();
    let lazy = lazy_table(routes());
    for c in [&dense, &lazy] {
        assert!(!c.names_head);
        for path in ["/-/profile", "/x", "/x/edit", "/x/y/edit", "/x/y", "/api/v4", "/", "/x/y/z.json"] {
            for declined in [&[][..], &[1], &[1, 3], &[1, 3, 4], &[4]] {
                let pick = |method: &str| c.recognize_with(method, path.as_bytes(), |m| !declined.contains(&m.route_index())).unwrap().map(|m| m.route_index());
                assert_eq!(pick("HEAD"), pick("GET"), "{path} {declined:?}");
            }
            let all = |method: &str| c.matches(method, path.as_bytes()).unwrap().iter().map(|m| m.route_index()).collect::<Vec<_>>();
            assert_eq!(all("HEAD"), all("GET"), "{path}");
        }
    }
    assert!(table().names_head, "`HEAD /ping` names it");
}

#[test]
fn dynamic_constraints_are_asked_in_order() {
    let c = table();
    let mut asked = Vec::new();
    let m = c
        .recognize_with("GET", b"/gitlab-org", |m| {
            asked.push(m.route_index());
            false
        })
        .unwrap();
    assert_eq!(asked, [5]);
    assert!(m.is_none(), "no later route matches a single segment");
    let all = c.matches("GET", b"/gitlab-org/gitlab").unwrap();
    assert_eq!(all.iter().map(Match::route_index).collect::<Vec<_>>(), [6]);
    let all = c.matches("GET", b"/gitlab-org/gitlab.git").unwrap();
    assert_eq!(all.len(), 1, "the username look-behind refuses .git; the project route takes it as a format");
    assert_eq!(all[0].param("format").as_deref(), Some(&b"git"[..]));
}

/// Rails accepts a parameter name twice in one spec; its path parameters Hash keeps the last
/// capture that matched (an optional later one that did not match leaves the earlier).
#[test]
fn a_repeated_parameter_keeps_the_last_value_that_matched() {
    let c = Classifier::new(vec![RouteDef::new("GET", "/downloads/:id/:id.tar"), RouteDef::new("GET", "/a/:id(/:id)")]).unwrap();
    let m = c.recognize("GET", b"/downloads/1/2.tar").unwrap().unwrap();
    assert_eq!((m.param("id").as_deref(), m.params().count()), (Some(&b"2"[..]), 1));
    let m = c.recognize("GET", b"/a/1").unwrap().unwrap();
    assert_eq!(m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect::<Vec<_>>(), [("id".to_string(), b"1".to_vec())]);
    let m = c.recognize("GET", b"/a/1/2").unwrap().unwrap();
    assert_eq!(m.param("id").as_deref(), Some(&b"2"[..]));
    // Each occurrence carries the name's requirement (`format: true` on a formatted glob).
    let c = Classifier::new(vec![RouteDef::new("GET", "/page/*id(.:format).:format").regex_requirement("format", ".+", 0)]).unwrap();
    let m = c.recognize("GET", b"/page/foo/bar.json.json/extra").unwrap().unwrap();
    assert_eq!(m.param("format").as_deref(), Some(&b"json/extra"[..]));
}

/// A mounted app may pass (`X-Cascade: pass`): the host is asked, and when it declines the
/// routes after the mount are tried, as Rails would after a cascade.
#[test]
fn mounted_apps_are_asked_like_constraints() {
    let c = Classifier::new(vec![RouteDef::new("", "/").mounted(), RouteDef::new("GET", "/help(.:format)").to("help", "index")]).unwrap();
    assert_eq!(c.recognize("GET", b"/help").unwrap().unwrap().route_index(), 0);
    let mut asked = Vec::new();
    let m = c
        .recognize_with("GET", b"/help", |m| {
            asked.push(m.route_index());
            false
        })
        .unwrap();
    assert_eq!((asked, m.map(|m| m.route_index())), (vec![0], Some(1)));
    assert!(c.recognize_with("GET", b"/api/v4", |m| m.route_index() == 0).unwrap().is_some_and(|m| m.route_index() == 0));
    // A route without parameters reads none, whatever the path (a mount has no span plan: its
    // parameters are not looked for by running its regex).
    for path in [&b"/"[..], b"/help", b"/a/b.c/d", b"/%2F"] {
        let m = c.recognize("GET", path).unwrap().unwrap();
        assert_eq!((m.route_index(), m.try_spans().unwrap().len(), m.params().count()), (0, 0, 0), "{path:?}");
    }
}

/// A requirement only Ruby can decide: refused by default (naming route, parameter and
/// construct); with `host_regex`, widened in the automaton and decided by the regex host,
/// whose spans become the parameters. Without a host, classifying such a route is an error.
#[test]
fn routes_only_ruby_can_decide_are_refused_or_asked_of_the_regex_host() {
    let routes = || {
        vec![
            RouteDef::new("GET", "/r/:id(.:format)").regex_requirement("id", r"(a|b)\1", 0),
            RouteDef::new("GET", "/r/:other").regex_requirement("other", "[a-z]+", 0),
        ]
    };
    let err = Classifier::new(routes()).unwrap_err();
    assert_eq!(err.route_index(), Some(0));
    assert!(err.to_string().contains("requirement for 'id'") && err.to_string().contains("back-references"), "{err}");

    let options = BuildOptions { host_regex: true, ..BuildOptions::default() };
    let c = Classifier::build(routes(), &options).unwrap();
    let host = c.routes()[0].host_regex().expect("route 0 needs Ruby");
    assert_eq!(host.source, r"\A/r/((?-mix:(a|b)\1))(?:\.([^/.?]+))?\Z");
    assert_eq!(host.requirements, [Some(r"(?-mix:(a|b)\1)".to_string()), None]);
    assert!(c.routes()[1].host_regex().is_none());
    // A stand-in for Ruby: "aa" and "bb" match, with `.json` as a format.
    let mut asked = Vec::new();
    let mut ruby = |route: &CompiledRoute, path: &[u8]| -> Result<Option<Spans>, ClassifyError> {
        asked.push((route.index(), String::from_utf8_lossy(path).into_owned()));
        let id = &path[3..5];
        Ok((id[0] == id[1] && path.len() >= 5 && (path.len() == 5 || &path[5..] == b".json"))
            .then(|| vec![Some((3, 5)), (path.len() > 5).then_some((6, path.len()))]))
    };
    let pick = |c: &Classifier, path: &str, ruby: &mut RegexHost<'_>| {
        c.recognize_with_regex("GET", path.as_bytes(), |_| true, ruby).unwrap().map(|m| (m.route_index(), params(&m)))
    };
    assert_eq!(pick(&c, "/r/aa.json", &mut ruby), Some((0, vec![("id".into(), "aa".into()), ("format".into(), "json".into())])));
    assert_eq!(pick(&c, "/r/ab", &mut ruby), Some((1, vec![("other".into(), "ab".into())])));
    assert_eq!(asked, [(0, "/r/aa.json".to_string()), (0, "/r/ab".to_string())]);
    assert!(matches!(c.recognize("GET", b"/r/aa"), Err(ClassifyError::NeedsRuby { route: 0, .. })));
    // Spans outside the path are the host's bug, not an answer.
    let mut liar = |_: &CompiledRoute, _: &[u8]| -> Result<Option<Spans>, ClassifyError> { Ok(Some(vec![Some((3, 99)), None])) };
    assert!(c.recognize_with_regex("GET", b"/r/aa", |_| true, &mut liar).is_err());
}

#[test]
fn bad_requests_are_errors() {
    let c = table();
    assert!(matches!(c.recognize("get", b"/"), Err(ClassifyError::InvalidMethod(_))));
    let long = vec![b'a'; DEFAULT_MAX_PATH_LEN + 1];
    assert!(matches!(c.recognize("GET", &long), Err(ClassifyError::PathTooLong { .. })));
}

#[test]
fn bad_routes_name_index_and_position() {
    let err = Classifier::new(vec![RouteDef::new("GET", "/ok"), RouteDef::new("GET", "/x/:id").regex_requirement("id", "a(b", 0)]).unwrap_err();
    assert_eq!(err.route_index(), Some(1));
    assert_eq!(err.position(), Some(1));
    assert!(err.to_string().contains("route 1"), "{err}");
    let err = Classifier::new(vec![RouteDef::new("GOT it", "/")]).unwrap_err();
    assert!(err.to_string().contains("invalid verb"), "{err}");
}

/// The shared corpus (`../shared/corpus`).
fn corpus_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// Every route table of the shared corpus (`*routes.json`), named by its path; GitLab CE's
/// table is among them.
fn corpus_tables() -> Vec<(String, Vec<RouteDef>)> {
    let tables: Vec<(String, Vec<RouteDef>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with("routes.json"))
        .map(|p| (p.display().to_string(), crate::routes::from_json(&std::fs::read(&p).unwrap()).unwrap()))
        .collect();
    assert!(tables.iter().any(|(name, _)| name.ends_with("gitlab-ce.routes.json")), "GitLab CE's table is among them");
    tables
}

/// [`corpus_tables`] and GitLab's template snapshot as a table, with the snapshot's templates
/// (their example URLs).
fn corpus_and_snapshot_tables() -> (Vec<(String, Vec<RouteDef>)>, Vec<crate::templates::Template>) {
    let mut tables = corpus_tables();
    let snapshot = crate::templates::from_json(&std::fs::read(corpus_dir().join("gitlab-route-templates.json")).unwrap()).unwrap();
    tables.push(("gitlab-route-templates.json".into(), snapshot.iter().enumerate().map(|(i, t)| t.to_route(i)).collect()));
    (tables, snapshot)
}

/// Requirements are kept optimized ([`RequirementCache::new`]) instead of as parsed: on every
/// route of the shared corpus tables (and literal, repeated and optional requirements), a
/// route's regex must then optimize to the same tree, translate to the same DFA pattern, give
/// the same span plan and the same `/` bounds as with its requirements as parsed.
#[test]
fn optimized_requirements_change_no_route_regex() {
    use crate::ruby_regex::translate::translate;
    use crate::span_plan::SpanPlan;
    let mut tables = corpus_tables();
    tables.push((
        "hand-written".into(),
        vec![
            RouteDef::new("GET", "/:id/x(.:format)").requirement("id", crate::routes::Requirement::literal("abc")),
            RouteDef::new("GET", "/page/*id(.:format).:format").regex_requirement("format", "json|xml", 0),
            RouteDef::new("GET", "/p(/:lang)/:id").regex_requirement("lang", "en|de|", 0).regex_requirement("id", "(?!new|edit)[a-z]+", 0),
            RouteDef::new("GET", "/:a/:b").regex_requirement("a", "x(?:y|z)w", 0).regex_requirement("b", "(?:)", 0),
        ],
    ));
    let mut compared = 0;
    for (name, defs) in &tables {
        let (mut optimized, mut parsed) = (RequirementCache::new(true), RequirementCache::as_parsed(true));
        for (index, def) in defs.iter().enumerate() {
            let (spec, new, _) = route_node(index, def, &mut optimized).unwrap();
            let (_, old, _) = route_node(index, def, &mut parsed).unwrap();
            let at = || format!("{name}: route {index} {}", def.path);
            assert_eq!(new.optimized(), old.optimized(), "{}", at());
            let (new_t, old_t) = (translate(&new), translate(&old));
            assert_eq!((new_t.pattern, new_t.widenings), (old_t.pattern, old_t.widenings), "{}", at());
            let slots = journey::param_names(&spec).len();
            assert_eq!(SpanPlan::new(&new, slots), SpanPlan::new(&old, slots), "{}", at());
            let items = |n: &Node| match n {
                Node::Concat(items) => items.clone(),
                other => vec![other.clone()],
            };
            assert_eq!(slashes(&items(&new)), slashes(&items(&old)), "{}", at());
            compared += 1;
        }
    }
    assert!(compared > 1_500, "{compared} routes compared");
}

/// The routes the first-segment dispatch takes get their widenings without their pattern text
/// being written: on every route of the shared corpus tables and of GitLab's template snapshot,
/// [`translate::widenings`] lists what [`pattern_text`] records, and so it does for a route with
/// each kind of widening (none of which it misses).
#[test]
fn widenings_without_the_text_are_the_translations() {
    use super::build::pattern_text;
    use crate::ruby_regex::translate;
    let (mut tables, _) = corpus_and_snapshot_tables();
    let widened = |requirement: &str| {
        let mut def = RouteDef::new("GET", "/a/:id/b(.:format)");
        def.requirements.insert("id".into(), Requirement::Regex { source: requirement.into(), options: 0 });
        def
    };
    let kinds = [r"(?!new)[a-z]+", r"(?<=a)b", r"(?>ab|a)c", r"[a-z]{1,100}", r"a\Zb", r"(?:a|(?!x)b){2}"];
    tables.push(("widened".into(), kinds.iter().map(|k| widened(k)).collect()));
    let mut compared = 0;
    for (name, defs) in &tables {
        let mut cache = RequirementCache::new(true);
        for (index, def) in defs.iter().enumerate() {
            let (_, node, _) = route_node(index, def, &mut cache).unwrap();
            let expected = pattern_text(&node, def.mounted).widenings;
            assert_eq!(translate::widenings(&node), expected, "{name}: route {index} {}", def.path);
            assert!(name != "widened" || !expected.is_empty(), "{}: {:?} widens nothing", def.path, def.requirements);
            compared += 1;
        }
    }
    assert!(compared > 5_000, "{compared} routes");
}

/// The automata are built from each route's HIR ([`pattern_hir`]) rather than by parsing its
/// pattern text: on every route of the shared corpus tables and of GitLab's template snapshot,
/// the HIR is the one `regex-syntax` parses from the text, and lazy DFAs over each table's
/// patterns built the way they were from the text (`build_many`) and from the HIRs have the
/// same NFA and report the same patterns for every recorded request path and example URL.
#[test]
fn pattern_hirs_are_the_parsed_pattern_texts() {
    use super::build::{pattern_hir, pattern_text};
    use regex_automata::hybrid::dfa::DFA;
    let read = |name: &str| std::fs::read(corpus_dir().join(name)).unwrap();
    let (tables, snapshot) = corpus_and_snapshot_tables();
    let mut paths: Vec<String> = snapshot.iter().flat_map(|t| t.example.iter().chain(&t.dotted_example)).cloned().collect();
    for requests in ["gitlabish-requests.jsonl", "gitlab-ce.recorded.jsonl"] {
        let vectors = crate::vectors::from_jsonl(&String::from_utf8(read(requests)).unwrap()).unwrap();
        paths.extend(vectors.into_iter().map(|v| v.path));
    }
    assert!(paths.len() > 10_000, "{} paths", paths.len());

    let config = EngineConfig::default();
    let (mut routes_compared, mut paths_compared) = (0, 0);
    for (name, defs) in &tables {
        // Distinct patterns, as an automaton holds them.
        let (mut texts, mut hirs): (Vec<String>, Vec<regex_syntax::hir::Hir>) = (Vec::new(), Vec::new());
        let mut cache = RequirementCache::new(true);
        for (index, def) in defs.iter().enumerate() {
            let (_, node, _) = route_node(index, def, &mut cache).unwrap();
            let text = pattern_text(&node, def.mounted).pattern;
            let hir = pattern_hir(&node, def.mounted);
            let parsed = regex_automata::util::syntax::parse_with(&text, &crate::engine::syntax_config()).unwrap();
            assert_eq!(hir, parsed, "{name}: route {index} {}: {text}", def.path);
            routes_compared += 1;
            if !texts.contains(&text) {
                texts.push(text);
                hirs.push(hir);
            }
        }
        for (chunk, (texts, hirs)) in texts.chunks(config.lazy_chunk_patterns).zip(hirs.chunks(config.lazy_chunk_patterns)).enumerate() {
            let from_text = DFA::builder()
                .configure(DFA::config().match_kind(regex_automata::MatchKind::All))
                .syntax(crate::engine::syntax_config())
                .thompson(crate::engine::thompson_config())
                .build_many(texts)
                .unwrap();
            let from_hir = crate::engine::lazy_dfa(hirs, &config, crate::engine::Direction::Forward).unwrap();
            assert_eq!(format!("{:?}", from_hir.get_nfa()), format!("{:?}", from_text.get_nfa()), "{name}: chunk {chunk}");
            let (mut text_cache, mut hir_cache) = (from_text.create_cache(), from_hir.create_cache());
            for path in &paths {
                let (mut by_text, mut by_hir) = (Vec::new(), Vec::new());
                crate::around_key::suffix_matches(&from_text, &mut text_cache, path.as_bytes(), 0, |p| by_text.push(p)).unwrap();
                crate::around_key::suffix_matches(&from_hir, &mut hir_cache, path.as_bytes(), 0, |p| by_hir.push(p)).unwrap();
                assert_eq!(by_hir, by_text, "{name}: chunk {chunk}, {path}");
                paths_compared += usize::from(!by_hir.is_empty());
            }
        }
    }
    assert!(routes_compared > 6_500, "{routes_compared} routes compared");
    assert!(paths_compared > 10_000, "{paths_compared} paths matched by some pattern");
}

/// A path is looked up among the literal paths only when its first segment leads one, once
/// every literal path's first segment is a key of the dispatch; otherwise always, as before.
#[test]
fn literal_paths_are_looked_up_under_the_first_segments_that_lead_them() {
    let c = lazy_table(vec![
        RouteDef::new("GET", "/-/profile(.:format)"),
        RouteDef::new("GET", "/users/:id(.:format)"),
        RouteDef::new("GET", "/groups/new"),
        RouteDef::new("GET", "/*id(.:format)"),
    ]);
    assert!(c.literal_paths_keyed);
    let dispatch = c.first_segments.as_ref().expect("a lazy table dispatches on first segments");
    let leads = |path: &[u8]| dispatch.select(path).map(|s| s.literal_paths);
    assert_eq!(leads(b"/-/profile"), Some(true));
    assert_eq!(leads(b"/groups/x"), Some(true));
    // A key no literal path starts with, and no key at all.
    assert_eq!(leads(b"/users/1"), Some(false));
    assert_eq!(leads(b"/gitlab-org/x"), None);
    // Answers are those of the full search either way; a literal path is still memoized.
    let before = c.static_paths.memory_usage();
    let route = |path: &[u8]| c.recognize("GET", path).unwrap().map(|m| m.route_index());
    assert_eq!(route(b"/gitlab-org/x"), Some(3));
    assert_eq!(route(b"/users/1"), Some(1));
    assert_eq!(c.static_paths.memory_usage(), before);
    assert_eq!(route(b"/groups/new"), Some(2));
    assert_eq!(route(b"/groups/new"), Some(2));
    assert!(c.static_paths.memory_usage() > before);

    // A mounted application's literal path leads no key (a mount is never literal-led): every
    // path is looked up, as without the dispatch.
    let mounted = lazy_table(vec![RouteDef::new("GET", "/users/:id"), RouteDef::new("GET", "/peek").mounted(), RouteDef::new("GET", "/*id")]);
    assert!(!mounted.literal_paths_keyed);
    assert_eq!(mounted.recognize("GET", b"/peek").unwrap().map(|m| m.route_index()), Some(1));
}
