//! Router, classifier and Rails agree on the path (issue 6, item 1).
//!
//! Every hostile request target of `tests/data/hostile_paths.txt` goes through an in-process
//! router to three fake cells whose learn endpoint is the real core (the corpus classifier and
//! the GitLab rules). For each, the router either refuses it (400/414, no cell sees anything,
//! nothing cached) or forwards it unchanged to the cell the classifier names for that path,
//! and whatever it cached covers the path as Rails normalizes it. The list runs twice on the
//! same router, so the second pass is served from what the first one cached.
//! `spec/router_path_agreement_spec.rb` checks the classifier's side of the same list against
//! Rails' `normalize_path` and `router.recognize`.

#[path = "common/abuse_support.rs"]
mod abuse_support;
mod common;

use std::collections::HashSet;
use std::time::Duration;

use abuse_support::*;
use cells_learn::normalize::normalize_path;
use cells_router::cache::Lookup;
use common::*;

struct Cells {
    cells: Vec<FakeCell>,
}

impl Cells {
    async fn start(core: &std::sync::Arc<Core>) -> Cells {
        let mut cells = Vec::new();
        for name in ["cell_0", "cell_1", "cell_2"] {
            cells.push(FakeCell::start(name, core.learn_fn()).await);
        }
        Cells { cells }
    }
    fn counts(&self) -> Vec<usize> {
        self.cells.iter().map(|c| c.request_count()).collect()
    }
    fn refs(&self) -> Vec<&FakeCell> {
        self.cells.iter().collect()
    }
}

/// The request target as the cell must receive it: as sent, minus a fragment (which HTTP
/// clients never send and servers drop before routing).
fn forwarded_form(target: &[u8]) -> Vec<u8> {
    match target.iter().position(|&b| b == b'#') {
        Some(i) => target[..i].to_vec(),
        None => target.to_vec(),
    }
}

fn path_part(target: &[u8]) -> &[u8] {
    let end = target.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(target.len());
    &target[..end]
}

fn covers(entry_path: &str, exact: bool, normalized: &str) -> bool {
    if exact {
        entry_path == normalized
    } else {
        cells_learn::covers_prefix(entry_path, normalized)
    }
}

#[derive(Default)]
struct Tally {
    sent: usize,
    refused_400: usize,
    refused_414: usize,
    forwarded: usize,
    /// Forwarded targets with an escaped `/` or `.` inside a segment (refused before issue 14).
    encoded_forwarded: usize,
    hits: usize,
    cached: usize,
    unrouted_under_prefix: usize,
    /// Forwarded targets the learn endpoint answers 400 for, as Rails does (not UTF-8).
    rails_400_forwarded: usize,
    disagreements: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_route_where_the_classifier_says_or_are_refused() {
    let core = core();
    let cells = Cells::start(&core).await;
    let r = router("", "cell_0", &cells.refs()).await;
    let paths = hostile_paths();
    assert!(paths.len() > 1000, "{} paths", paths.len());
    let mut t = Tally::default();
    for pass in 0..2 {
        for target in &paths {
            check_one(&r, &cells, &core, target, pass, &mut t).await;
        }
    }
    let refused = t.refused_400 + t.refused_414;
    println!(
        "[path agreement] {} paths x 2 passes = {} requests: {} refused by the router (400: {}, 414: {}), {} forwarded ({} with %2F/%2E, {} from cache, {} created a cache entry, {} unrouted paths sent to the cell of a cached prefix above them, {} that Rails answers 400 sent on uncached); disagreements {}",
        paths.len(),
        t.sent,
        refused,
        t.refused_400,
        t.refused_414,
        t.forwarded,
        t.encoded_forwarded,
        t.hits,
        t.cached,
        t.unrouted_under_prefix,
        t.rails_400_forwarded,
        t.disagreements.len()
    );
    assert!(
        t.disagreements.is_empty(),
        "{} disagreements:\n{}",
        t.disagreements.len(),
        t.disagreements.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    // The list exercises both sides: many refusals, many forwards, hits on the second pass.
    assert!(refused > 300 && t.forwarded > 1000 && t.hits > 300, "refused {refused}, forwarded {}, hits {}", t.forwarded, t.hits);
    // Escaped slashes and dots inside segments are routed like Rails, not refused (issue 14).
    assert!(t.encoded_forwarded > 100, "{} forwarded targets with %2F/%2E", t.encoded_forwarded);
    r.shutdown().await;
}

async fn check_one(r: &cells_router::Running, cells: &Cells, core: &Core, target: &[u8], pass: usize, t: &mut Tally) {
    let cache = &r.state.cache;
    cache.run_pending_tasks();
    let before_counts = cells.counts();
    let before: HashSet<(String, bool, usize)> = cache.entries().into_iter().collect();
    let resp = exchange(r.addr, &get_request(target), Duration::from_secs(5)).await;
    t.sent += 1;
    cache.run_pending_tasks();
    let after_counts = cells.counts();
    let created: Vec<(String, bool, usize)> = cache.entries().into_iter().filter(|e| !before.contains(e)).collect();
    let new: Vec<(usize, Recorded)> = cells
        .cells
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.requests()[before_counts[i]..after_counts[i]].iter().map(|rec| (i, rec.clone())).collect::<Vec<_>>())
        .collect();
    let who = format!("pass {pass} {}", show(target));
    let mut fail = |msg: String| t.disagreements.push(format!("{who}: {msg}"));

    if resp.status == 400 || resp.status == 414 {
        if resp.status == 400 {
            t.refused_400 += 1;
        } else {
            t.refused_414 += 1;
        }
        if !new.is_empty() {
            fail(format!("refused with {} but {} cell request(s) were made", resp.status, new.len()));
        }
        if !created.is_empty() {
            fail(format!("refused with {} but cached {created:?}", resp.status));
        }
        return;
    }
    let Some(served_by) = resp.served_by().map(str::to_string).filter(|_| resp.status == 200) else {
        fail(format!("neither refused nor forwarded: {} {:?} {}", resp.status, resp.trace(), String::from_utf8_lossy(&resp.body)));
        return;
    };
    t.forwarded += 1;
    let lower = String::from_utf8_lossy(path_part(target)).to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%2e") {
        t.encoded_forwarded += 1;
    }
    if resp.trace().contains("cache=hit") {
        t.hits += 1;
    }
    // Forwarded once, unchanged, to the cell that answered.
    match new.as_slice() {
        [(i, rec)] => {
            if cells.cells[*i].name != served_by {
                fail(format!("x-served-by {served_by} but {} recorded it", cells.cells[*i].name));
            }
            let mut got = rec.path.clone().into_bytes();
            if let Some(q) = &rec.query {
                got.push(b'?');
                got.extend_from_slice(q.as_bytes());
            }
            if got != forwarded_form(target) {
                fail(format!("the cell got {} instead", show(&got)));
            }
        }
        other => fail(format!("{} cell requests for one client request", other.len())),
    }
    // To the cell the classifier names for this very path.
    let answer = match core.answer("GET", path_part(target)) {
        Ok(a) => a,
        Err(400) => {
            // A target Rails itself answers 400 for (a parameter that is not UTF-8 once
            // unescaped, e.g. `/gitlab-org/x%aF`): the learn endpoint says 400, the router learns
            // nothing and sends it to the default cell, which answers 400 as any cell would, or
            // to the cell of a prefix cached above it. Nothing may be cached from it.
            t.rails_400_forwarded += 1;
            let covered = match cache.lookup(std::str::from_utf8(path_part(target)).unwrap()) {
                Lookup::Fresh(e) => !e.exact && r.state.cfg.cells[e.cell].name == served_by,
                _ => false,
            };
            if served_by != "cell_0" && !covered {
                fail(format!("the learn endpoint answers 400, but it went to {served_by}, neither the default cell nor a cached prefix's"));
            }
            if !created.is_empty() {
                fail(format!("the learn endpoint answers 400, but {created:?} was cached"));
            }
            return;
        }
        Err(status) => {
            fail(format!("forwarded to {served_by}, but the learn endpoint answers {status} for it"));
            return;
        }
    };
    let normalized = String::from_utf8(normalize_path(path_part(target)).into_owned()).expect("UTF-8 (the router refuses the rest)");
    if answer.cell != served_by {
        // The one allowed difference: a path no route (or no rule) claims, under a prefix the
        // router has cached, goes to that prefix's cell (which answers 404), not the default
        // cell — prefix entries cover everything below them. A path that names an entity must
        // always reach the entity's cell.
        let unrouted = matches!(core.learner.learned("GET", path_part(target)), Ok(cells_learn::Learned::Default { .. }));
        let covering = match cache.lookup(std::str::from_utf8(path_part(target)).unwrap()) {
            Lookup::Fresh(e) => (!e.exact && covers(&e.path, false, &normalized) && r.state.cfg.cells[e.cell].name == served_by).then(|| e.path.clone()),
            _ => None,
        };
        match (unrouted, covering, resp.trace().contains("cache=hit")) {
            (true, Some(_), true) => t.unrouted_under_prefix += 1,
            _ => fail(format!("forwarded to {served_by} ({}), the classifier says {} for {:?}", resp.trace(), answer.cell, answer.path)),
        }
    }
    // What was cached covers the normalized path, for that cell.
    for (p, exact, cell) in &created {
        t.cached += 1;
        let name = &r.state.cfg.cells[*cell].name;
        if !covers(p, *exact, &normalized) || *name != answer.cell {
            fail(format!("cached {p:?} exact={exact} -> {name}, which is not the answer {:?} for {normalized:?}", (&answer.path, answer.exact, &answer.cell)));
        }
    }
    if answer.cacheable {
        match cache.lookup(std::str::from_utf8(path_part(target)).unwrap()) {
            Lookup::Fresh(e) if covers(&e.path, e.exact, &normalized) && r.state.cfg.cells[e.cell].name == answer.cell => {}
            other => fail(format!("after a cacheable answer {:?} the cache holds {other:?}", (&answer.path, answer.exact, &answer.cell))),
        }
    } else if !created.is_empty() {
        fail(format!("the answer {:?} is not cacheable, but {created:?} was cached", answer.path));
    }
}

/// The cases that used to fail (issue 6): a trailing slash or lower-case escapes made the
/// normalized learn answer look untrusted, so every cell was asked and the client got a 503.
#[tokio::test]
async fn trailing_slashes_and_lower_case_escapes_are_routed_like_rails() {
    let core = core();
    let cells = Cells::start(&core).await;
    let r = router("", "cell_0", &cells.refs()).await;
    let cases: [(&str, &str, bool); 6] = [
        ("/-/profile/", "/-/profile", true),
        ("/gitlab-org/gitlab/", "/gitlab-org/gitlab", false),
        ("/gitlab-org/gitlab/-/issues/", "/gitlab-org/gitlab", false),
        ("/groups/caf%c3%a9/-/epics", "/groups/caf%C3%A9", false),
        ("/groups/caf%c3%A9/", "/groups/caf%C3%A9", false),
        ("/help/", "/help", false),
    ];
    for (target, cached, exact) in cases {
        let answer = core.answer("GET", target.as_bytes()).unwrap();
        assert_eq!((answer.path.as_str(), answer.exact), (cached, exact), "{target}: the core's answer");
        let resp = exchange(r.addr, &get_request(target.as_bytes()), Duration::from_secs(5)).await;
        assert_eq!(resp.status, 200, "{target}: {}", String::from_utf8_lossy(&resp.raw));
        assert_eq!(resp.served_by(), Some(answer.cell.as_str()), "{target}");
        if target == "/-/profile/" {
            assert!(resp.trace().contains("cache=miss"), "{target}: {}", resp.trace());
        }
        let again = exchange(r.addr, &get_request(target.as_bytes()), Duration::from_secs(5)).await;
        assert_eq!(again.served_by(), Some(answer.cell.as_str()), "{target}");
        assert!(answer.cacheable, "{target}: pick cases with an owner");
        {
            assert!(again.trace().contains("cache=hit"), "{target}: {}", again.trace());
            assert!(r.state.cache.entries().contains(&(cached.to_string(), exact, r.state.cfg.cells.iter().position(|c| c.name == answer.cell).unwrap())));
        }
    }
    // The normal form is served from the entry the slashed form created, and vice versa.
    let resp = exchange(r.addr, &get_request(b"/-/profile"), Duration::from_secs(5)).await;
    assert!(resp.trace().contains("cache=hit"), "{}", resp.trace());
    let resp = exchange(r.addr, &get_request(b"/groups/caf%C3%A9/-/milestones/"), Duration::from_secs(5)).await;
    assert!(resp.trace().contains("cache=hit"), "{}", resp.trace());
    assert_eq!(r.state.metrics.encode(0).lines().filter(|l| l.starts_with("cells_router_rejected_answers_total")).count(), 0);
    r.shutdown().await;
}
