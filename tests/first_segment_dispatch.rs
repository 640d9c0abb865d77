//! The dispatch on a path's first segment (`src/first_segment.rs`) changes which automata a
//! path runs through, never which routes match: on GitLab CE's table, the corpus table (matched
//! around its keys, as large tables are) and GitLab's route templates, a classifier with it and
//! one without give the same `matches` (routes and parameters, in order) and the same picks —
//! with every constraint holding and with a host that turns some routes down — for every
//! recorded request and for paths made to probe the dispatch's edges: each literal first
//! segment of the table alone, followed by `/`, `.`, a newline or another segment, in another
//! case, percent-encoded, after `//` or `/-/../`, and put in front of every recorded path.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cells_learn::{routes, templates, vectors, BuildOptions, Classifier, EngineConfig, EngineKind, RouteDef};

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus").join(name)).unwrap()
}

fn build(defs: &[RouteDef], dispatch: bool) -> Classifier {
    let engine = EngineConfig { kind: EngineKind::Lazy, first_segment_dispatch: dispatch, ..EngineConfig::default() };
    Classifier::build(defs.to_vec(), &BuildOptions { engine, ..BuildOptions::default() }).unwrap()
}

/// The table's literal first segments, as its specs spell them (`/-/profile` → `-`).
fn first_literals(defs: &[RouteDef]) -> BTreeSet<String> {
    defs.iter()
        .filter_map(|d| {
            let rest = d.path.strip_prefix('/')?;
            let end = rest.find(['/', '.', '(', ':', '*']).unwrap_or(rest.len());
            Some(rest[..end].to_string())
        })
        .collect()
}

/// Paths probing the edges of the dispatch on `key`.
fn probes(key: &str) -> Vec<String> {
    let upper = key.to_ascii_uppercase();
    let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    [
        format!("/{key}"),
        format!("/{key}/"),
        format!("/{key}.json"),
        format!("/{key}\n"),
        format!("/{key}/\n"),
        format!("/{key}/x"),
        format!("/{key}/x.json"),
        format!("/{key}/x/y/-/issues"),
        format!("/{key}.x/y/-/issues"),
        format!("/{key}x/y"),
        format!("/{key}-/y"),
        format!("/{upper}/x/y"),
        format!("/{encoded}/x/y"),
        format!("//{key}/x"),
        format!("/-/../{key}/x"),
        format!("/{key}/../x"),
        format!("/{key}%2Fx/y"),
        format!("/{key}/{key}/{key}"),
        format!("/{key}/x/y/z/-/merge_requests/1.json"),
    ]
    .into()
}

/// What a classifier answers for one request: every match with its parameters, the pick with
/// every constraint holding, and the pick of a host that turns every third route down.
fn answers(c: &Classifier, method: &str, path: &str) -> String {
    let matches = match c.matches(method, path.as_bytes()) {
        Ok(all) => all
            .iter()
            .map(|m| format!("{}{:?}", m.route_index(), m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
            .join(" "),
        Err(e) => format!("error {e}"),
    };
    let pick = |r: Result<Option<cells_learn::Match<'_, '_>>, cells_learn::ClassifyError>| match r {
        Ok(m) => format!("{:?}", m.map(|m| m.route_index())),
        Err(e) => format!("error {e}"),
    };
    let all = pick(c.recognize(method, path.as_bytes()));
    let some = pick(c.recognize_with(method, path.as_bytes(), |m| m.route_index() % 3 != 0));
    format!("matches [{matches}] pick {all} host {some}")
}

/// Compares the two classifiers on every recorded request and every probe; returns how many
/// requests were compared.
fn compare(name: &str, defs: Vec<RouteDef>, recorded: &[(String, String)]) -> usize {
    let with = build(&defs, true);
    let without = build(&defs, false);
    let mut requests: Vec<(String, String)> = recorded.to_vec();
    for key in first_literals(&defs) {
        for path in probes(&key) {
            for method in ["GET", "HEAD", "POST"] {
                requests.push((method.to_string(), path.clone()));
            }
        }
        // The key in front of every recorded path, with its recorded method.
        requests.extend(recorded.iter().map(|(method, path)| (method.clone(), format!("/{key}{path}"))));
    }
    let mut differences = Vec::new();
    for (method, path) in &requests {
        let (a, b) = (answers(&with, method, path), answers(&without, method, path));
        if a != b {
            differences.push(format!("{method} {path:?}:\n  with the dispatch    {a}\n  without the dispatch {b}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{name}: {} of {} requests differ:\n{}",
        differences.len(),
        requests.len(),
        differences[..differences.len().min(20)].join("\n")
    );
    requests.len()
}

fn recorded(file: &str) -> Vec<(String, String)> {
    vectors::from_jsonl(&String::from_utf8(corpus(file)).unwrap()).unwrap().into_iter().map(|v| (v.method, v.path)).collect()
}

#[test]
fn gitlab_ce_table_answers_the_same_with_and_without_the_dispatch() {
    let n = compare("gitlab-ce", routes::from_json(&corpus("gitlab-ce.routes.json")).unwrap(), &recorded("gitlab-ce.recorded.jsonl"));
    assert!(n > 4033);
}

#[test]
fn corpus_table_answers_the_same_with_and_without_the_dispatch() {
    compare("gitlabish", routes::from_json(&corpus("gitlabish-routes.json")).unwrap(), &recorded("gitlabish-requests.jsonl"));
}

#[test]
fn gitlab_templates_answer_the_same_with_and_without_the_dispatch() {
    let templates = templates::from_json(&corpus("gitlab-route-templates.json")).unwrap();
    let defs: Vec<RouteDef> = templates.iter().enumerate().map(|(i, t)| t.to_route(i)).collect();
    // Every example, every third one also as POST (no key segment in front: too many requests).
    let examples: Vec<(String, String)> = templates
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((i, t.example.clone()?)))
        .flat_map(|(i, example)| {
            let post = (i % 3 == 0).then(|| ("POST".to_string(), example.clone()));
            std::iter::once(("GET".to_string(), example)).chain(post)
        })
        .collect();
    let with = build(&defs, true);
    let without = build(&defs, false);
    let differences: Vec<String> = examples
        .iter()
        .chain(first_literals(&defs).iter().flat_map(|k| probes(k).into_iter().map(|p| ("GET".to_string(), p))).collect::<Vec<_>>().iter())
        .filter(|(m, p)| answers(&with, m, p) != answers(&without, m, p))
        .map(|(m, p)| format!("{m} {p:?}"))
        .collect();
    assert!(differences.is_empty(), "{} differ: {:?}", differences.len(), &differences[..differences.len().min(20)]);
}
