//! `Classifier::matches` (every route whose pattern matches, in Rails' order) against the oracle
//! trying every route's Onigmo regex in turn, on GitLab CE's table: the automata only propose
//! candidates and the exact matcher prunes its backtracking by what each instruction needs next,
//! so a route missing from the list, or one too many, would show here.

use std::collections::BTreeMap;

use cells_learn::normalize::normalize_path;
use cells_learn::{routes, vectors, Classifier};

use crate::corpus::*;
use crate::oracle::*;

/// A route's parameters as Rails' Hash holds them: a repeated name keeps its last value.
type Found = Vec<(usize, BTreeMap<String, Vec<u8>>)>;

impl Oracle {
    /// Every route `Journey::Router#find_routes` keeps for the request, in definition order
    /// (HEAD: the matching routes that name it, else every matching route as GET).
    pub(crate) fn every_match(&self, method: &str, path_info: &[u8]) -> Result<Found, String> {
        let path = normalize_path(path_info);
        let tokens = sim_tokens(&path);
        let explicit = |r: &OracleRoute, m: &str| r.verbs.as_ref().is_some_and(|v| v.iter().any(|x| x == m));
        let mut all = Vec::new();
        for r in &self.routes {
            if let Some(params) = self.run(r, &path, &tokens)? {
                all.push((r, params.into_iter().collect::<BTreeMap<_, _>>()));
            }
        }
        let head = method == "HEAD" && all.iter().any(|(r, _)| explicit(r, "HEAD"));
        let method = if method == "HEAD" && !head { "GET" } else { method };
        let keep = |r: &OracleRoute| if head { explicit(r, "HEAD") } else { r.verbs.is_none() || explicit(r, method) };
        Ok(all.into_iter().filter(|(r, _)| keep(r)).map(|(r, params)| (r.index, params)).collect())
    }
}

fn crate_matches(classifier: &Classifier, method: &str, path: &[u8]) -> Result<Found, String> {
    let all = classifier.matches(method, path).map_err(|e| e.to_string())?;
    Ok(all.iter().map(|m| (m.route_index(), m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect())).collect())
}

/// Routes and parameters, readably.
fn show(found: &Result<Found, String>) -> String {
    let Ok(found) = found else { return format!("{found:?}") };
    let route = |(i, params): &(usize, BTreeMap<String, Vec<u8>>)| {
        let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}: \"{}\"", v.escape_ascii())).collect();
        format!("{i} {{{}}}", params.join(", "))
    };
    found.iter().map(route).collect::<Vec<_>>().join(" ")
}

/// Each recorded CE request, and variants that move where segments, formats and the end fall:
/// a trailing newline (`\Z`), a format or `.git`/`.atom` suffix (the namespace regex's
/// look-behind), and a reserved word as a later segment (its look-ahead). Formats after those
/// suffixes (`.git.json`, `.atom.atom`) and a dotted last segment put a `.` where either the
/// last parameter or `(.:format)` may take it (GitLab's group, project and user pages).
fn requests() -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(corpus_dir().join("gitlab-ce.recorded.jsonl")).unwrap();
    let recorded = vectors::from_jsonl(&text).unwrap();
    let mut out = Vec::new();
    // Every other request, and variants of every tenth: the oracle tries all 1,341 routes'
    // regexes on each (about 3 ms), and the test should stay under ten seconds.
    for (i, v) in recorded.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let path = v.path.as_bytes();
        out.push((v.method.clone(), path.to_vec()));
        if i % 10 == 0 {
            for suffix in [&b"\n"[..], b".git", b".atom", b"/-/blob/x.json", b".json", b".git.json", b".atom.atom", b"/v1.2.tar.gz"] {
                out.push((v.method.clone(), [path, suffix].concat()));
            }
        }
    }
    out
}

#[test]
fn matches_agree_with_the_oracle_on_gitlab_ce() {
    let defs = routes::from_json(&std::fs::read(corpus_dir().join("gitlab-ce.routes.json")).unwrap()).unwrap();
    let oracle = Oracle::new(&defs).unwrap();
    let classifier = Classifier::new(defs).unwrap();
    let (mut compared, mut matched, mut wrong) = (0, 0, Vec::new());
    for (method, path) in requests() {
        let theirs = oracle.every_match(&method, &path).unwrap();
        let ours = crate_matches(&classifier, &method, &path);
        compared += 1;
        matched += theirs.len();
        if ours.as_ref() != Ok(&theirs) {
            wrong.push(format!("{method} \"{}\":\n  crate  {}\n  oracle {}", path.escape_ascii(), show(&ours), show(&Ok(theirs))));
        }
    }
    assert!(wrong.is_empty(), "{} of {compared} requests:\n{}", wrong.len(), wrong[..wrong.len().min(20)].join("\n"));
    assert!(compared > 3_500 && matched > 3 * compared, "{compared} requests, {matched} matches");
}
