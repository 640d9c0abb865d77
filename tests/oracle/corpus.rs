//! The route tables the properties run on: the repository's corpus and the words its specs use.

use std::path::PathBuf;

use cells_learn::{routes, RouteDef};

use crate::oracle::*;

pub(crate) fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

pub(crate) fn gitlabish_routes() -> Vec<RouteDef> {
    let bytes = std::fs::read(corpus_dir().join("gitlabish-routes.json")).expect("the shared corpus");
    routes::from_json(&bytes).expect("gitlabish-routes.json parses")
}

/// Literal words of a table's specs (`dashboard`, `-`, `merge_requests`...).
pub(crate) fn spec_words(defs: &[RouteDef]) -> Vec<String> {
    fn walk(seq: &[Spec], out: &mut Vec<String>) {
        for n in seq {
            match n {
                Spec::Literal(t) => out.push(t.clone()),
                Spec::Group(i) | Spec::Or(i) => walk(i, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for d in defs {
        walk(&parse_spec(&d.path).expect("corpus spec parses"), &mut out);
    }
    out.sort();
    out.dedup();
    out
}
