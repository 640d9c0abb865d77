//! GitLab's documented REST API URLs through the router (issue 14, item 1): every shape of
//! `tests/data/gitlab_api_urls.txt` (ids as URL-encoded full paths, `%2F` in file paths and
//! branch names, `@scope%2fpkg`, go-gitlab's `%2E`) is forwarded once, its target byte for byte
//! as sent, to the cell of the entity it names; the learn answer is cached on the same bytes, so
//! the second pass is served from the cache without one learn request.
//! `spec/router_api_urls_spec.rb` runs the same list against Puma cells running the gem.

mod common;

use bytes::Bytes;
use cells_router::cache::Lookup;
use common::*;

/// One line of the list: method, target, owner key.
struct Case {
    method: String,
    target: String,
    owner: String,
    doc: String,
}

fn cases() -> Vec<Case> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gitlab_api_urls.txt");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (fields, doc) = l.split_once('#').unwrap_or((l, ""));
            let f: Vec<&str> = fields.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{l}");
            Case { method: f[0].into(), target: f[1].into(), owner: f[2].into(), doc: doc.trim().into() }
        })
        .collect()
}

/// Where the test cells place each owner key.
fn cell_of(owner: &str) -> &'static str {
    match owner {
        "alpha" | "7" | "5" => "cell_a",
        "bravo" | "42" | "24" | "9" => "cell_b",
        "default" => "cell_0",
        other => panic!("unknown owner {other} in the list"),
    }
}

/// A learn endpoint standing for the GitLab rules' API claims (`/api/:version/projects/:id`,
/// groups, namespaces, users): the id segment is the entity, named by its first path segment
/// once unescaped (`alpha%2Fgitlab` is `alpha/gitlab`); the answer's path is the request's own
/// bytes up to the id, escapes upper-cased as Rails' `normalize_path` does.
fn api_learn(_method: &str, path: &str) -> LearnReply {
    let segs: Vec<&str> = path.split('/').collect();
    if segs.len() >= 5 && segs[1] == "api" && matches!(segs[3], "projects" | "groups" | "namespaces" | "users") {
        let id = segs[4];
        let decoded = percent_decode(id);
        let key = decoded.split('/').next().unwrap();
        let prefix = cells_router::trust::routing_path(&segs[..5].join("/")).into_owned();
        return LearnReply::Json(answer(&prefix, cell_of(key), "routable", false, true));
    }
    LearnReply::Json(answer(path, "cell_0", "default", true, false))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_api_urls_are_forwarded_once_unchanged_to_their_owner() {
    let cells = [FakeCell::start("cell_0", api_learn).await, FakeCell::start("cell_a", api_learn).await, FakeCell::start("cell_b", api_learn).await];
    let refs: Vec<&FakeCell> = cells.iter().collect();
    let r = router("", "cell_0", &refs).await;
    let list = cases();
    assert!(list.len() >= 40, "{} cases", list.len());
    let encoded = list.iter().filter(|c| c.target.to_ascii_lowercase().contains("%2f") || c.target.to_ascii_lowercase().contains("%2e")).count();
    assert!(encoded >= 30, "the list is about encoded paths: {encoded}");
    for pass in 0..2 {
        for case in &list {
            let learns_before: usize = cells.iter().map(|c| c.learn_count()).sum();
            let before: Vec<usize> = cells.iter().map(|c| c.request_count()).collect();
            let request = format!("{} {} HTTP/1.1\r\nHost: gitlab.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", case.method, case.target);
            let (status, text) = raw(r.addr, &request).await;
            let who = format!("pass {pass}: {} {} ({})", case.method, case.target, case.doc);
            assert_eq!(status, 200, "{who}: {text}");
            let want = cell_of(&case.owner);
            let new: Vec<(&str, Recorded)> =
                cells.iter().zip(&before).flat_map(|(c, &b)| c.requests()[b..].iter().map(|rec| (c.name.as_str(), rec.clone())).collect::<Vec<_>>()).collect();
            assert_eq!(new.len(), 1, "{who}: {} cell requests", new.len());
            let (got_cell, rec) = &new[0];
            assert_eq!(*got_cell, want, "{who}");
            let mut got_target = rec.path.clone();
            if let Some(q) = &rec.query {
                got_target.push('?');
                got_target.push_str(q);
            }
            assert_eq!(got_target, case.target, "{who}: the cell got another target");
            assert_eq!(rec.method, case.method, "{who}");
            let path = case.target.split('?').next().unwrap();
            r.state.cache.run_pending_tasks();
            let learns: usize = cells.iter().map(|c| c.learn_count()).sum::<usize>() - learns_before;
            if case.owner == "default" {
                assert!(matches!(r.state.cache.lookup(path), Lookup::Miss), "{who}: nothing to cache");
                continue;
            }
            match r.state.cache.lookup(path) {
                Lookup::Fresh(e) => assert_eq!(r.state.cfg.cells[e.cell].name, want, "{who}: cached {:?}", e.path),
                other => panic!("{who}: not cached: {other:?}"),
            }
            if pass == 1 {
                assert_eq!(learns, 0, "{who}: learned again");
                assert!(text.to_ascii_lowercase().contains("cache=hit"), "{who}: {text}");
            }
        }
    }
    // Each learn request carried the path's own bytes (the cells route on them).
    for c in &cells {
        for (_, p) in c.state.learns.lock().unwrap().iter() {
            assert!(list.iter().any(|case| case.target.split('?').next() == Some(p.as_str())), "learn path_info {p:?} is not a listed path");
        }
    }
    r.shutdown().await;
}

/// The same entity by any spelling Rails routes alike shares one cache entry: `%2f` and `%2F`
/// are one path to Rails (`normalize_path` upper-cases escapes), a trailing `/` too.
#[tokio::test]
async fn escape_case_and_trailing_slash_share_the_entry() {
    let cells = [FakeCell::start("cell_0", api_learn).await, FakeCell::start("cell_a", api_learn).await];
    let refs: Vec<&FakeCell> = cells.iter().collect();
    let r = router("", "cell_0", &refs).await;
    let c = client();
    let g = send(&c, r.addr, "GET", "/api/v4/projects/alpha%2fgitlab/issues", &[], Bytes::new()).await;
    assert_eq!(g.served_by(), "cell_a");
    assert!(g.trace().contains("cache=miss"), "{}", g.trace());
    for again in ["/api/v4/projects/alpha%2Fgitlab", "/api/v4/projects/alpha%2Fgitlab/", "/api/v4/projects/alpha%2fgitlab/merge_requests/1"] {
        let g = send(&c, r.addr, "GET", again, &[], Bytes::new()).await;
        assert_eq!(g.served_by(), "cell_a", "{again}");
        assert!(g.trace().contains("cache=hit"), "{again}: {}", g.trace());
        assert_eq!(cells[1].requests().last().unwrap().path, again);
    }
    // A different entity under the same top-level segment is not covered by that entry.
    let g = send(&c, r.addr, "GET", "/api/v4/projects/alpha%2Fgitlab2", &[], Bytes::new()).await;
    assert!(g.trace().contains("cache=miss"), "{}", g.trace());
    // Two learns, each one or two requests (an answer naming the cell that gave it is confirmed
    // by another cell).
    let learns = cells.iter().map(|c| c.learn_count()).sum::<usize>();
    assert!((2..=4).contains(&learns), "{learns} learn requests");
    r.shutdown().await;
}
