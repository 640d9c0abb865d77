//! The candidates kept for the table's literal paths (`src/classifier/static_paths.rs`) change
//! how a literal path's routes are found, never which: on GitLab CE's table, the corpus table
//! and GitLab's route templates, a classifier that keeps them and one that searches every time
//! give the same `matches` (routes and parameters, in order), `path_matches` and picks — with
//! every constraint holding and with a host that turns routes down — for every method, on the
//! first request for a path (which searches and keeps) and on the next ones (which read back),
//! for every literal path of the table, the paths that normalize to one, near misses, and the
//! recorded requests; and from threads racing to fill the same lists.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cells_learn::{routes, templates, vectors, BuildOptions, Classifier, EngineConfig, RouteDef};

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus").join(name)).unwrap()
}

fn build(defs: &[RouteDef], keep: bool) -> Classifier {
    let engine = EngineConfig { static_paths: keep, ..EngineConfig::default() };
    Classifier::build(defs.to_vec(), &BuildOptions { engine, ..BuildOptions::default() }).unwrap()
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Each spec with its optional groups left out, when nothing but literals remain: written here
/// without the library's parser (a bracket counter), so the test does not share its reading.
fn literal_paths(defs: &[RouteDef]) -> BTreeSet<String> {
    defs.iter()
        .filter_map(|d| {
            let mut depth = 0;
            let mut out = String::new();
            for c in d.path.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ if depth > 0 => {}
                    ':' | '*' | '|' => return None,
                    c => out.push(c),
                }
            }
            out.starts_with('/').then_some(out)
        })
        .collect()
}

/// The literal paths, the paths that normalize to them, and near misses.
fn probes(defs: &[RouteDef], recorded: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in literal_paths(defs) {
        let trimmed = p.trim_end_matches('/');
        for probe in [
            p.clone(),
            format!("{p}/"),
            format!("/{p}"),
            format!("{p}?a=1"),
            format!("{trimmed}.json"),
            format!("{trimmed}.json/"),
            format!("{trimmed}x"),
            format!("{trimmed}/x"),
            format!("{trimmed}\n"),
            p.to_ascii_uppercase(),
            p.replacen('/', "%2F", 2),
        ] {
            out.push(probe);
        }
    }
    out.extend(recorded.iter().cloned());
    out
}

type Seen = (usize, Vec<(String, Vec<u8>)>);

fn seen(m: &cells_learn::Match<'_, '_>) -> Seen {
    (m.route_index(), m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect())
}

/// Everything the two classifiers answer for `method` and `path`, as comparable values.
fn answers(c: &Classifier, method: &str, path: &str) -> Vec<String> {
    let all = c.matches(method, path.as_bytes()).map(|ms| ms.iter().map(seen).collect::<Vec<_>>());
    let pick = c.recognize(method, path.as_bytes()).map(|m| m.as_ref().map(seen));
    // A host that turns down every other route that asks it, and every route with an even index.
    let mut asked = 0;
    let choosy = c
        .recognize_with(method, path.as_bytes(), |m| {
            asked += 1;
            m.route_index() % 2 == 1 && asked % 2 == 1
        })
        .map(|m| m.as_ref().map(seen));
    let paths = c.path_matches(path.as_bytes()).map(|ms| ms.iter().map(|m| m.route_index()).collect::<Vec<_>>());
    vec![format!("{all:?}"), format!("{pick:?}"), format!("{choosy:?}"), format!("{paths:?}")]
}

fn compare(name: &str, defs: &[RouteDef], recorded: &[String]) {
    let (kept, searched) = (build(defs, true), build(defs, false));
    let probes = probes(defs, recorded);
    let mut checked = 0;
    for round in ["first", "again"] {
        for path in &probes {
            for method in METHODS {
                let (a, b) = (answers(&kept, method, path), answers(&searched, method, path));
                assert_eq!(a, b, "{name}: {method} {path:?} ({round} request)");
                checked += 1;
            }
        }
    }
    assert!(kept.memory_usage() > searched.memory_usage(), "{name}: the kept lists are counted");
    eprintln!("{name}: {} literal paths, {checked} answers compared", literal_paths(defs).len());
}

fn indexed(mut defs: Vec<RouteDef>) -> Vec<RouteDef> {
    for (i, d) in defs.iter_mut().enumerate() {
        d.index = Some(i);
    }
    defs
}

#[test]
fn gitlab_ce_answers_as_without_kept_candidates() {
    let defs = routes::from_json(&corpus("gitlab-ce.routes.json")).unwrap();
    let text = String::from_utf8(corpus("gitlab-ce.recorded.jsonl")).unwrap();
    let recorded: Vec<String> = vectors::from_jsonl(&text).unwrap().into_iter().step_by(4).map(|v| v.path).collect();
    compare("gitlab-ce", &defs, &recorded);
}

#[test]
fn the_corpus_table_answers_as_without_kept_candidates() {
    let defs = routes::from_json(&corpus("gitlabish-routes.json")).unwrap();
    let text = String::from_utf8(corpus("gitlabish-requests.jsonl")).unwrap();
    let recorded: Vec<String> = vectors::from_jsonl(&text).unwrap().into_iter().map(|v| v.path).collect();
    compare("gitlabish", &defs, &recorded);
}

#[test]
fn gitlab_templates_answer_as_without_kept_candidates() {
    let ts = templates::from_json(&corpus("gitlab-route-templates.json")).unwrap();
    let defs = indexed(ts.iter().map(|t| RouteDef::new("", t.template.as_str())).collect());
    let examples: Vec<String> = ts.iter().filter_map(|t| t.example.clone()).step_by(8).collect();
    compare("templates", &defs, &examples);
}

#[test]
fn threads_filling_the_same_lists_agree() {
    let defs = routes::from_json(&corpus("gitlab-ce.routes.json")).unwrap();
    let searched = build(&defs, false);
    let kept = build(&defs, true);
    let paths: Vec<String> = literal_paths(&defs).into_iter().collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|t| {
                let (kept, paths) = (&kept, &paths);
                s.spawn(move || {
                    // Each thread starts at a different place, so first requests race.
                    let n = paths.len();
                    (0..n).map(|i| &paths[(i + t * n / 4) % n]).map(|p| (p.clone(), answers(kept, "GET", p))).collect::<Vec<_>>()
                })
            })
            .collect();
        for run in runs {
            for (path, got) in run.join().unwrap() {
                assert_eq!(got, answers(&searched, "GET", &path), "GET {path:?}");
            }
        }
    });
}
