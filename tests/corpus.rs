//! Every request vector of every `*-requests.jsonl` in `../shared/corpus/` (decided by Rails'
//! own router) must be classified the same way, route and params. New tables dropped into that
//! folder are picked up without code changes.

use std::path::PathBuf;

use cells_learn::{routes, vectors, Classifier};

fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(dir.is_dir(), "the shared corpus is expected at {}", dir.display());
    dir
}

fn tables() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix("-routes.json") {
            let requests = path.with_file_name(format!("{stem}-requests.jsonl"));
            if requests.exists() {
                out.push((path, requests));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no *-routes.json with *-requests.jsonl in the corpus");
    out
}

#[test]
fn agrees_with_rails_on_every_corpus_vector() {
    for (routes_path, requests_path) in tables() {
        let defs = routes::from_json(&std::fs::read(&routes_path).unwrap()).unwrap();
        let classifier = Classifier::new(defs).unwrap();
        let vectors = vectors::from_jsonl(&std::fs::read_to_string(&requests_path).unwrap()).unwrap();
        let disagreements = vectors::check(&classifier, &vectors);
        for d in disagreements.iter().take(40) {
            eprintln!("{d}");
        }
        eprintln!("{}: agreement {}/{}", routes_path.display(), vectors.len() - disagreements.len(), vectors.len());
        assert!(disagreements.is_empty(), "{} disagreements with Rails in {}", disagreements.len(), requests_path.display());
    }
}

/// GitLab CE's web routes (`gitlab-ce.routes.json`, 850 of 1,341 routes with request-time
/// constraints, 4 mounts) against what Rails dispatched with GitLab's constrainers answering
/// (`gitlab-ce.recorded.jsonl`): with the ideal host, every vector agrees, route and spec
/// parameters. The same table with a host that accepts everything must disagree often, or
/// the ideal host would be deciding nothing.
#[test]
fn agrees_with_rails_on_gitlab_ce_with_an_ideal_constraint_host() {
    let dir = corpus_dir();
    let defs = routes::from_json(&std::fs::read(dir.join("gitlab-ce.routes.json")).unwrap()).unwrap();
    assert!(defs.iter().filter(|d| d.asks_host()).count() > 800);
    let classifier = Classifier::new(defs).unwrap();
    let vectors = vectors::from_jsonl(&std::fs::read_to_string(dir.join("gitlab-ce.recorded.jsonl")).unwrap()).unwrap();
    assert!(vectors.len() >= 4000, "{} vectors", vectors.len());
    let disagreements = vectors::check_with(&classifier, &vectors, vectors::Host::Ideal);
    for d in disagreements.iter().take(40) {
        eprintln!("{d}");
    }
    assert!(disagreements.is_empty(), "{} of {} CE vectors disagree with Rails", disagreements.len(), vectors.len());
    let blind = vectors::check_with(&classifier, &vectors, vectors::Host::AcceptAll);
    assert!(blind.len() > vectors.len() / 2, "only {} disagreements without the host", blind.len());
}
