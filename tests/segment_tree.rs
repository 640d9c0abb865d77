//! The segment tree of a plain table (`src/classifier/segment_tree.rs`) changes how its routes
//! are found, never which: a classifier with it and one that walks the automata give the same
//! `matches` (routes and parameters, in order), `path_matches` and picks, for every method, on
//! GitHub's REST API routes (path-tree's fixture, which nobody here wrote) with their URLs and
//! near misses, and on generated tables (with and without Rails' `(.:format)`) over every path
//! of a small alphabet.

use std::path::PathBuf;

use cells_learn::{artifact, AutomatonError, BuildOptions, Classifier, CompileError, EngineConfig, EngineKind, RouteDef};

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn build(defs: &[RouteDef], tree: bool) -> Classifier {
    let engine = EngineConfig { segment_tree: tree, ..EngineConfig::default() };
    Classifier::build(defs.to_vec(), &BuildOptions { engine, ..BuildOptions::default() }).unwrap()
}

/// A match as its route and its parameters (name, unescaped value).
type Described = (usize, Vec<(String, Vec<u8>)>);

/// Each match, in order.
fn described(c: &Classifier, method: &str, path: &[u8]) -> Vec<Described> {
    c.matches(method, path)
        .unwrap()
        .iter()
        .map(|m| (m.route_index(), m.params().map(|(name, value)| (name.to_string(), value.into_owned())).collect()))
        .collect()
}

/// Asserts the two classifiers agree on `paths` for every method; returns how many
/// (method, path) pairs matched at least one route.
fn agree(with: &Classifier, without: &Classifier, paths: &[Vec<u8>]) -> usize {
    let mut matched = 0;
    for path in paths {
        let shown = String::from_utf8_lossy(path);
        for method in METHODS {
            let (a, b) = (described(with, method, path), described(without, method, path));
            assert_eq!(a, b, "{method} {shown}: matches differ");
            matched += usize::from(!a.is_empty());
            let pick = |c: &Classifier| c.recognize(method, path).unwrap().map(|m| m.route_index());
            assert_eq!(pick(with), pick(without), "{method} {shown}: picks differ");
        }
        let all = |c: &Classifier| c.path_matches(path).unwrap().iter().map(|m| m.route_index()).collect::<Vec<_>>();
        assert_eq!(all(with), all(without), "{shown}: path_matches differ");
    }
    matched
}

fn github_set() -> (Vec<RouteDef>, Vec<String>) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/data/github-api.json");
    let data: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let defs: Vec<RouteDef> = data["routes"].as_array().unwrap().iter().map(|r| RouteDef::new("", r.as_str().unwrap())).collect();
    let urls = data["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect();
    (defs, urls)
}

#[test]
fn github_api_routes_and_urls() {
    let (defs, urls) = github_set();
    let (with, without) = (build(&defs, true), build(&defs, false));
    assert!(with.routes().len() == 315 && with.has_segment_tree() && !without.has_segment_tree());
    // The tree searches the table alone: no automaton is built for it.
    assert_eq!((with.engine_kind(), with.pattern_count()), (EngineKind::SegmentTree, 0));
    assert_eq!(without.engine_kind(), EngineKind::Dense);
    assert!(without.pattern_count() > 0);
    let mut paths = Vec::new();
    for url in &urls {
        let trimmed = url.trim_end_matches('/');
        let parent = &trimmed[..trimmed.rfind('/').unwrap_or(0)];
        for probe in [
            url.to_string(),
            format!("{url}/"),
            format!("/{url}"),
            format!("{trimmed}.json"),
            format!("{trimmed}?a=1"),
            format!("{trimmed}/x"),
            format!("{trimmed}x"),
            format!("{parent}/%2E"),
            format!("{parent}//{}", &trimmed[parent.len() + 1..]),
            trimmed.to_uppercase(),
            trimmed.replace('/', "%2F"),
            parent.to_string(),
        ] {
            paths.push(probe.into_bytes());
        }
    }
    paths.push(b"/".to_vec());
    paths.push(b"/\xff/x".to_vec());
    let matched = agree(&with, &without, &paths);
    // Every URL of the fixture, with any verb, and its `/`-variants match: at least 4 × 315 × 7.
    assert!(matched >= 4 * 315 * METHODS.len(), "only {matched} matched: the probes miss the table");
}

/// A small deterministic generator (no dependency for a test's table).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn generated_tables_over_every_short_path() {
    const SEGMENTS: [&str; 4] = ["a", "b", ":p", ":q"];
    // Rails' default after a route's last segment, on about half the routes.
    const ENDINGS: [&str; 2] = ["", "(.:format)"];
    const VERBS: [&str; 5] = ["GET", "POST", "", "GET|POST", "HEAD"];
    // Every path of up to three segments over pieces that a literal, a parameter or neither takes.
    let pieces: [&[u8]; 10] = [b"a", b"b", b"c", b"a.b", b"x?y", b"%2E", b"", b"a.", b".b", b"c.b.a"];
    let mut paths = vec![b"/".to_vec()];
    let mut level = vec![Vec::new()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for prefix in &level {
            for piece in pieces {
                let mut path = prefix.clone();
                path.push(b'/');
                path.extend_from_slice(piece);
                paths.push(path.clone());
                next.push(path);
            }
        }
        level = next;
    }
    let mut rng = Lcg(17);
    let mut total = 0;
    for _ in 0..40 {
        let defs: Vec<RouteDef> = (0..rng.below(12) + 1)
            .map(|_| {
                let depth = rng.below(4);
                let spec: String = if depth == 0 {
                    "/".into()
                } else {
                    let segments: String = (0..depth).map(|_| format!("/{}", SEGMENTS[rng.below(SEGMENTS.len())])).collect();
                    segments + ENDINGS[rng.below(ENDINGS.len())]
                };
                // A parameter named twice in one spec is not a route Rails draws.
                let spec = spec.replacen(":p", ":p1", 1).replacen(":p", ":p2", 1).replacen(":q", ":q1", 1).replacen(":q", ":q2", 1);
                RouteDef::new(VERBS[rng.below(VERBS.len())], spec)
            })
            .collect();
        let (with, without) = (build(&defs, true), build(&defs, false));
        assert!(with.has_segment_tree(), "{defs:?}");
        total += agree(&with, &without, &paths);
    }
    assert!(total > 1_000, "only {total} (method, path) pairs matched: the tables miss the paths");
}

/// Asked for by name, the segment tree takes a plain table (with the automata it would build
/// asked for too, the tree still searches) and refuses one that is not plain, naming the first
/// route that is not.
#[test]
fn segment_tree_by_name() {
    let with_kind = |kind: EngineKind, defs: &[RouteDef]| {
        let engine = EngineConfig { kind, ..EngineConfig::default() };
        Classifier::build(defs.to_vec(), &BuildOptions { engine, ..BuildOptions::default() })
    };
    let plain = vec![RouteDef::new("GET", "/projects/:id"), RouteDef::new("POST", "/projects")];
    let tree = with_kind(EngineKind::SegmentTree, &plain).unwrap();
    assert_eq!((tree.engine_kind(), tree.pattern_count()), (EngineKind::SegmentTree, 0));
    assert_eq!(tree.recognize("GET", b"/projects/7").unwrap().map(|m| m.route_index()), Some(0));
    // Dense automata asked for by name are built, and the tree (on by default) searches.
    let dense = with_kind(EngineKind::Dense, &plain).unwrap();
    assert!(dense.engine_kind() == EngineKind::Dense && dense.has_segment_tree() && dense.pattern_count() > 0);

    for (extra, why) in [
        ("/projects(/:id)", "an optional segment"),
        ("/projects/:id(.:format)(.:x)", "two groups"),
        ("/files/*path", "a glob"),
        ("/projects/:id.json", "a dot"),
        ("/v:version/projects", "a partial segment"),
        ("/caf%C3%A9", "an escape"),
    ] {
        let mut defs = plain.clone();
        defs.push(RouteDef::new("GET", extra));
        defs.push(RouteDef::new("GET", "/users/*rest"));
        let err = with_kind(EngineKind::SegmentTree, &defs).unwrap_err();
        match &err {
            CompileError::Automaton(AutomatonError::NotPlain { route: 2, spec }) => assert_eq!(spec, extra, "{why}"),
            other => panic!("{why}: {other:?}"),
        }
        assert_eq!(err.route_index(), Some(2), "{why}");
        assert!(err.to_string().contains(&format!("route #2 ({extra}) is not plain")), "{why}: {err}");
        // Under `Auto` the same table gets its automata.
        let auto = with_kind(EngineKind::Auto, &defs).unwrap();
        assert!(!auto.has_segment_tree() && auto.engine_kind() != EngineKind::SegmentTree, "{why}");
    }
    let mut required = plain.clone();
    required[0] = RouteDef::new("GET", "/projects/:id").requirement("id", cells_learn::Requirement::regex(r"\d+"));
    assert!(matches!(with_kind(EngineKind::SegmentTree, &required), Err(CompileError::Automaton(AutomatonError::NotPlain { route: 0, .. }))));
}

/// A tree-only classifier written as an artifact loads as one, with the same answers.
#[test]
fn tree_only_artifact_round_trip() {
    let (defs, urls) = github_set();
    let built = build(&defs, true);
    let bytes = artifact::write(&built, None).unwrap();
    let (loaded, _) = artifact::read(&bytes).unwrap();
    assert_eq!((loaded.engine_kind(), loaded.pattern_count()), (EngineKind::SegmentTree, 0));
    let paths: Vec<Vec<u8>> = urls.iter().map(|u| u.clone().into_bytes()).collect();
    // The routes take any verb: 312 of the 315 URLs match, under all seven methods.
    assert_eq!(agree(&built, &loaded, &paths), 312 * METHODS.len());
}
