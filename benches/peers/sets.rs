//! The four route sets of the peer benchmark and their requests.
//!
//! - `github`: the GitHub REST API routes and URLs of path-tree's own benchmark fixture
//!   (`benches/data/github-api.json`, origin and license inside), any verb, GET requests;
//! - each corpus table `../shared/corpus/<name>-routes.json` with its `<name>-requests.jsonl`;
//! - `gitlab-ce`: GitLab CE's web routes with the requests Rails dispatched
//!   (`gitlab-ce.routes.json`, `gitlab-ce.recorded.jsonl`), decided with the ideal host (a route
//!   with a request-time constraint or a mount holds exactly when it is the recorded one);
//! - `snapshot`: GitLab's 5,066-template snapshot ordered specific-first (see [`crate::order`])
//!   with each template's example and dotted example as GET requests.
//!
//! Paths are given to every side normalized as Journey normalizes them (the peers' best case:
//! they do not normalize).

use std::path::{Path, PathBuf};

use cells_learn::normalize::normalize_path;
use cells_learn::{routes, templates, vectors, RouteDef};

use crate::order::specific_first;

/// One request of a set.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The recorded route, for sets decided with the ideal host.
    pub recorded: Option<usize>,
}

/// A route table and the requests to look up in it.
pub struct Set {
    pub name: String,
    pub defs: Vec<RouteDef>,
    pub requests: Vec<Request>,
    /// Routes that ask the host are decided by the recorded route (see the module doc).
    pub ideal_host: bool,
}

impl Set {
    /// The methods the requests use, in first-seen order.
    pub fn methods(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.requests {
            if !out.contains(&r.method) {
                out.push(r.method.clone());
            }
        }
        out
    }
}

fn shared_corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn normalized(path: &str) -> Option<String> {
    String::from_utf8(normalize_path(path.as_bytes()).into_owned()).ok()
}

fn indexed(mut defs: Vec<RouteDef>) -> Vec<RouteDef> {
    for (i, d) in defs.iter_mut().enumerate() {
        d.index = Some(i);
    }
    defs
}

#[derive(serde::Deserialize)]
struct GithubFixture {
    routes: Vec<String>,
    urls: Vec<String>,
}

pub fn github() -> Result<Set, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/data/github-api.json");
    let fixture: GithubFixture = serde_json::from_slice(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let defs = indexed(fixture.routes.iter().map(|r| RouteDef::new("", r.as_str())).collect());
    let requests = fixture.urls.iter().filter_map(|u| normalized(u)).map(|path| Request { method: "GET".into(), path, recorded: None }).collect();
    Ok(Set { name: "github".into(), defs, requests, ideal_host: false })
}

fn table(name: &str, routes_file: &str, requests_file: &str, ideal_host: bool) -> Result<Set, String> {
    let dir = shared_corpus();
    let routes_path = dir.join(routes_file);
    let defs = routes::from_json(&read(&routes_path)?).map_err(|e| format!("{}: {e}", routes_path.display()))?;
    let requests_path = dir.join(requests_file);
    let text = String::from_utf8(read(&requests_path)?).map_err(|e| format!("{}: {e}", requests_path.display()))?;
    let vs = vectors::from_jsonl(&text).map_err(|e| format!("{}: {e}", requests_path.display()))?;
    let requests = vs.into_iter().filter_map(|v| Some(Request { path: normalized(&v.path)?, method: v.method, recorded: v.route_index })).collect();
    Ok(Set { name: name.into(), defs, requests, ideal_host })
}

/// Every `*-routes.json` of the shared corpus that has a `*-requests.jsonl`.
pub fn corpus_tables() -> Result<Vec<Set>, String> {
    let dir = shared_corpus();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix("-routes.json").map(str::to_string))
        .filter(|stem| dir.join(format!("{stem}-requests.jsonl")).is_file())
        .collect();
    names.sort();
    names.iter().map(|stem| table(stem, &format!("{stem}-routes.json"), &format!("{stem}-requests.jsonl"), false)).collect()
}

pub fn gitlab_ce() -> Result<Set, String> {
    table("gitlab-ce", "gitlab-ce.routes.json", "gitlab-ce.recorded.jsonl", true)
}

pub fn snapshot() -> Result<Set, String> {
    let path = shared_corpus().join("gitlab-route-templates.json");
    let ts = templates::from_json(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let ts = specific_first(ts);
    let defs = ts.iter().enumerate().map(|(i, t)| t.to_route(i)).collect();
    let requests = ts
        .iter()
        .flat_map(|t| t.example.iter().chain(t.dotted_example.iter()))
        .filter_map(|e| normalized(e))
        .map(|path| Request { method: "GET".into(), path, recorded: None })
        .collect();
    Ok(Set { name: "snapshot".into(), defs, requests, ideal_host: false })
}
