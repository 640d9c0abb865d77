//! The router against in-process fake cells: request flow, trust, faults, operations.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;

const ORG: (&str, &str, &str, bool, bool) = ("/org/proj", "cell_b", "routable", false, true);

async fn two_cells() -> (FakeCell, FakeCell) {
    let t = || {
        table(
            &[
                ORG,
                ("/my-company", "cell_b", "routable", false, true),
                ("/-/profile", "cell_a", "fixed", true, true),
                ("/api/graphql", "cell_a", "fixed", true, false),
            ],
            "cell_a",
        )
    };
    (FakeCell::start("cell_a", t()).await, FakeCell::start("cell_b", t()).await)
}

fn learns(a: &FakeCell, b: &FakeCell) -> usize {
    a.learn_count() + b.learn_count()
}

/// Learn requests for `rounds` learns: one each, or two when the first cell asked named itself
/// (a self-claim, confirmed by the other cell: `trust::check_answer`); which cell is asked first
/// is random.
fn within_rounds(learns: usize, rounds: usize) -> bool {
    (rounds..=2 * rounds).contains(&learns)
}

#[tokio::test]
async fn miss_then_hit() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let g = get(&c, r.addr, "/org/proj/-/issues?state=opened").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().starts_with("router=router_test; cache=miss; learned_from=cell_"), "{}", g.trace());
    assert!(g.trace().contains("; cell=cell_b; learn_ms="), "{}", g.trace());
    let first = learns(&a, &b);
    assert!(within_rounds(first, 1), "{first}");
    let (m, p) = [a.state.learns.lock().unwrap().clone(), b.state.learns.lock().unwrap().clone()].concat()[0].clone();
    assert_eq!((m.as_str(), p.as_str()), ("GET", "/org/proj/-/issues"));
    let g = get(&c, r.addr, "/org/proj/-/tree/main").await;
    assert_eq!(g.served_by(), "cell_b");
    assert_eq!(g.trace(), "router=router_test; cache=hit; cell=cell_b");
    assert_eq!(learns(&a, &b), first);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/org/proj/-/issues");
    assert_eq!(reqs[0].query.as_deref(), Some("state=opened"));
    assert_eq!(a.request_count(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn prefix_covers_only_on_segment_boundaries() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/my-company").await.served_by(), "cell_b");
    assert_eq!(get(&c, r.addr, "/my-company/x").await.trace(), "router=router_test; cache=hit; cell=cell_b");
    let first = learns(&a, &b);
    assert!(within_rounds(first, 1), "{first}");
    let g = get(&c, r.addr, "/my-companyx").await;
    assert_eq!(g.served_by(), "cell_a");
    assert!(g.trace().contains("cache=bypass"), "{}", g.trace());
    assert!(within_rounds(learns(&a, &b) - first, 1));
    r.shutdown().await;
}

#[tokio::test]
async fn exact_answers_cover_only_their_path() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_b", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/-/profile").await.served_by(), "cell_a");
    assert!(get(&c, r.addr, "/-/profile").await.trace().contains("cache=hit"));
    let first = learns(&a, &b);
    assert!(within_rounds(first, 1), "{first}");
    // Not covered by the exact entry: learned again, answered by the default cell.
    let g = get(&c, r.addr, "/-/profile/keys").await;
    assert!(g.trace().contains("cache=bypass"), "{}", g.trace());
    assert!(within_rounds(learns(&a, &b) - first, 1));
    r.shutdown().await;
}

#[tokio::test]
async fn uncacheable_answers_are_never_cached() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    for _ in 0..3 {
        let g = get(&c, r.addr, "/").await;
        assert_eq!(g.served_by(), "cell_a");
        assert!(g.trace().contains("cache=bypass"));
    }
    assert!(within_rounds(learns(&a, &b), 3), "{}", learns(&a, &b));
    r.state.cache.run_pending_tasks();
    assert_eq!(r.state.cache.entry_count(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn concurrent_misses_share_one_learn_request() {
    let slow = |_: &str, p: &str| {
        let _ = p;
        LearnReply::Delay(Duration::from_millis(300), Box::new(LearnReply::Json(answer("/org/proj", "cell_b", "routable", false, true))))
    };
    let a = FakeCell::start("cell_a", slow).await;
    let b = FakeCell::start("cell_b", slow).await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (c, addr) = (c.clone(), r.addr);
        tasks.push(tokio::spawn(async move { get(&c, addr, "/org/proj/-/issues").await }));
    }
    for t in tasks {
        let g = t.await.unwrap();
        assert_eq!(g.status, 200);
        assert_eq!(g.served_by(), "cell_b");
    }
    assert!(within_rounds(learns(&a, &b), 1), "{}", learns(&a, &b));
    assert_eq!(b.request_count(), 64);
    r.shutdown().await;
}

#[tokio::test]
async fn bodies_stream_through_once() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let g = send(&c, r.addr, "POST", "/org/proj/-/uploads", &[("content-type", "application/octet-stream")], Bytes::from(body.clone())).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body.len(), body.len());
    assert!(g.body == body);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body_len, body.len());
    r.shutdown().await;
}

#[tokio::test]
async fn poisoned_learn_answers_are_refused() {
    // Every cell claims /victim/x belongs under /other, or names an unknown cell.
    let a = FakeCell::start("cell_a", |_: &str, _: &str| LearnReply::Json(answer("/other", "cell_a", "routable", false, true))).await;
    let b = FakeCell::start("cell_b", |_: &str, p: &str| LearnReply::Json(answer(p, "cell_evil", "routable", false, true))).await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let g = get(&c, r.addr, "/victim/x").await;
    assert_eq!(g.status, 503);
    assert_eq!(g.json()["error"], "no_cell_available");
    assert_eq!(a.learn_count(), 1);
    assert_eq!(b.learn_count(), 1);
    assert_eq!(a.request_count() + b.request_count(), 0);
    r.state.cache.run_pending_tasks();
    assert_eq!(r.state.cache.entry_count(), 0);
    // An exact answer for another path is refused too.
    a.set_learn(|_: &str, _: &str| LearnReply::Json(answer("/victim", "cell_a", "fixed", true, true)));
    b.set_learn(|_: &str, _: &str| LearnReply::Json("{\"path\":".into()));
    assert_eq!(get(&c, r.addr, "/victim/x").await.status, 503);
    r.state.cache.run_pending_tasks();
    assert_eq!(r.state.cache.entry_count(), 0);
    let m = get(&c, r.internal_addr, cells_router::METRICS_PATH).await;
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(text.contains("cells_router_rejected_answers_total{origin=\"learn\"} 3"), "{text}");
    r.shutdown().await;
}

/// A cache header must cover the request path, name the cell that sent it, and narrow (or
/// repeat) the entry that routed the request there. (Before issue 14 any configured cell could
/// be named, on any request: a cell could point paths at itself or at others.)
#[tokio::test]
async fn cache_headers_are_trusted_only_for_the_request_path() {
    let (a, b) = two_cells().await;
    let header = |v: &str| vec![("x-gitlab-cell-cache".to_string(), v.to_string())];
    a.set_app(move |rec: &Recorded| {
        let h = match rec.path.as_str() {
            "/" => header("path=/elsewhere; cell=cell_a"),
            "/team" => header("path=/team; cell=cell_zzz"),
            "/team/sub" => header("path=/team; cell=cell_a"),
            _ => vec![],
        };
        AppReply { status: 200, headers: h, delay: None }
    });
    b.set_app(move |rec: &Recorded| {
        let h = match rec.path.as_str() {
            "/my-company/team/sub" => header("path=/my-company/team; cell=cell_b"),
            "/my-company/x" => header("path=/my-company/x; cell=cell_a"),
            "/my-company/y" => header("path=/my-company/y/z; cell=cell_b"),
            "/org/proj/wider" => header("path=//; cell=cell_b"),
            _ => vec![],
        };
        AppReply { status: 200, headers: h, delay: None }
    });
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let g = get(&c, r.addr, "/").await; // default answer; header names a path that does not cover "/"
    assert!(!g.headers.contains_key("x-gitlab-cell-cache"));
    get(&c, r.addr, "/team").await; // unknown cell
    let g = get(&c, r.addr, "/team/sub").await; // covers, names its sender, but no entry routed the request
    assert!(!g.headers.contains_key("x-gitlab-cell-cache"));
    r.state.cache.run_pending_tasks();
    assert_eq!(r.state.cache.entry_count(), 0, "{:?}", r.state.cache.entries());
    // Routed by the /my-company entry to cell_b: cell_b may narrow it, for itself only.
    assert_eq!(get(&c, r.addr, "/my-company/team/sub").await.served_by(), "cell_b");
    assert_eq!(get(&c, r.addr, "/my-company/x").await.served_by(), "cell_b"); // names cell_a: refused
    get(&c, r.addr, "/org/proj/wider").await; // `//` is `/`: refused
    r.state.cache.run_pending_tasks();
    let mut entries = r.state.cache.entries();
    entries.sort();
    let b_idx = 1;
    assert_eq!(entries, vec![("/my-company".into(), false, b_idx), ("/my-company/team".into(), false, b_idx), ("/org/proj".into(), false, b_idx)]);
    let g = get(&c, r.addr, "/my-company/team/other").await;
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("cache=hit"));
    let m = String::from_utf8_lossy(&get(&c, r.internal_addr, cells_router::METRICS_PATH).await.body).to_string();
    assert!(m.contains("cells_router_rejected_answers_total{origin=\"header\"} 5"), "{m}");
    r.shutdown().await;
}

#[tokio::test]
async fn client_internal_and_hop_by_hop_headers_do_not_reach_cells() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let g = send(
        &c,
        r.addr,
        "GET",
        "/org/proj",
        &[
            ("x-gitlab-cell-owner", "cell_a"),
            ("x-gitlab-cell-cache", "path=/; cell=cell_a"),
            ("x-cells-router-trace", "forged"),
            ("connection", "x-private"),
            ("x-private", "1"),
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-proto", "https"),
            ("host", "gitlab.example.com"),
            ("cookie", "a=b"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(g.status, 200);
    let rec = &b.requests()[0];
    for h in ["x-gitlab-cell-owner", "x-gitlab-cell-cache", "x-cells-router-trace", "x-private", "keep-alive"] {
        assert!(!rec.headers.contains_key(h), "{h} reached the cell");
    }
    assert_eq!(rec.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(rec.headers["x-forwarded-proto"], "http");
    assert_eq!(rec.headers["x-forwarded-host"], "gitlab.example.com");
    assert_eq!(rec.headers["host"], "gitlab.example.com");
    assert_eq!(rec.headers["cookie"], "a=b");
    // The router's own trace header replaces nothing the client sent.
    assert!(g.trace().starts_with("router=router_test"));
    r.shutdown().await;
}

#[tokio::test]
async fn learn_fails_over_to_other_cells() {
    let (a, b) = two_cells().await;
    let dead = FakeCell::start("cell_dead", |_: &str, _: &str| LearnReply::Status(500)).await;
    let garbage = FakeCell::start("cell_garbage", |_: &str, _: &str| LearnReply::Json("not json".into())).await;
    let hang = FakeCell::start("cell_hang", |_: &str, _: &str| LearnReply::Delay(Duration::from_secs(30), Box::new(LearnReply::Status(200)))).await;
    let killed = FakeCell::start("cell_killed", table(&[], "cell_a")).await;
    killed.kill().await;
    let r = router("[timeouts]\nlearn = \"200ms\"\n", "cell_a", &[&dead, &garbage, &hang, &killed, &a, &b]).await;
    let c = client();
    for i in 0..6 {
        let g = get(&c, r.addr, &format!("/org/proj/-/issues/{i}")).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.served_by(), "cell_b");
        r.state.cache.remove("/org/proj", false);
    }
    // Each learn attempt went to at most each cell once; the failed ones are tried last.
    let total = dead.learn_count() + garbage.learn_count() + hang.learn_count() + learns(&a, &b);
    assert!(within_rounds(learns(&a, &b), 6), "good cells answered {}", learns(&a, &b));
    assert!(total <= learns(&a, &b) + 3, "failed cells were retried too often: {total}");
    let health = get(&c, r.internal_addr, cells_router::HEALTH_PATH).await.json();
    let down: Vec<&str> = health["cells"].as_array().unwrap().iter().filter(|c| c["healthy"] == false).map(|c| c["name"].as_str().unwrap()).collect();
    assert!(down.iter().all(|n| ["cell_dead", "cell_garbage", "cell_hang", "cell_killed"].contains(n)), "{down:?}");
    r.shutdown().await;
}

#[tokio::test]
async fn no_cell_answering_gives_503_json() {
    let a = FakeCell::start("cell_a", |_: &str, _: &str| LearnReply::Status(503)).await;
    let b = FakeCell::start("cell_b", table(&[], "cell_a")).await;
    b.kill().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let g = get(&c, r.addr, "/org/proj").await;
    assert_eq!(g.status, 503);
    assert_eq!(g.headers["content-type"], "application/json");
    assert_eq!(g.headers["cache-control"], "no-store");
    let j = g.json();
    assert_eq!(j["error"], "no_cell_available");
    assert!(j["message"].as_str().unwrap().len() > 10);
    assert_eq!(a.request_count(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn stale_entries_serve_while_cells_cannot_answer() {
    let (a, b) = two_cells().await;
    let r = router("[cache]\nttl = \"150ms\"\nstale_grace = \"30s\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/proj").await.served_by(), "cell_b");
    a.set_learn(|_: &str, _: &str| LearnReply::Status(500));
    b.set_learn(|_: &str, _: &str| LearnReply::Status(500));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("cache=stale"), "{}", g.trace());
    let failed = learns(&a, &b);
    assert!((3..=4).contains(&failed), "{failed}"); // the first miss (1 or 2 with its confirmation) + one attempt per cell
                                                    // Within the backoff: stale at once, no learn request.
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert!(g.trace().contains("cache=stale"));
    assert_eq!(learns(&a, &b), failed);
    // Cells are back: after the backoff a background refresh renews the entry.
    let t = || table(&[ORG], "cell_a");
    a.set_learn(t());
    b.set_learn(t());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert!(g.trace().contains("cache=stale"), "{}", g.trace());
    let mut fresh = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if get(&c, r.addr, "/org/proj/-/issues").await.trace().contains("cache=hit") {
            fresh = true;
            break;
        }
    }
    assert!(fresh, "the background refresh did not renew the entry");
    r.shutdown().await;
}

#[tokio::test]
async fn expired_entries_without_grace_give_503() {
    let (a, b) = two_cells().await;
    let r = router("[cache]\nttl = \"100ms\"\nstale_grace = \"0s\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/proj").await.status, 200);
    a.set_learn(|_: &str, _: &str| LearnReply::Status(500));
    b.set_learn(|_: &str, _: &str| LearnReply::Status(500));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&c, r.addr, "/org/proj").await.status, 503);
    r.shutdown().await;
}

/// Changed deliberately with the circuit breaker (issue 14 item 3): an unreachable cell's
/// entries are kept (they used to be dropped, so every later request relearned); its requests
/// get a fast 503 while each entry may still be relearned once per interval.
#[tokio::test]
async fn unreachable_target_gives_502_then_503_and_keeps_its_entries() {
    let t = || {
        table(
            &[("/org", "cell_c", "routable", false, true), ("/grp", "cell_c", "routable", false, true), ("/keep", "cell_a", "routable", false, true)],
            "cell_a",
        )
    };
    let a = FakeCell::start("cell_a", t()).await;
    let cc = FakeCell::start("cell_c", t()).await;
    let r = router("[breaker]\nprobe_interval = \"10s\"\n", "cell_a", &[&a, &cc]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/x").await.served_by(), "cell_c");
    assert_eq!(get(&c, r.addr, "/grp/x").await.served_by(), "cell_c");
    assert_eq!(get(&c, r.addr, "/keep/x").await.served_by(), "cell_a");
    cc.kill().await;
    let g = get(&c, r.addr, "/org/x").await;
    assert_eq!(g.status, 502);
    assert_eq!(g.json()["error"], "cell_unreachable");
    assert_eq!(g.headers["retry-after"], "10");
    assert!(matches!(r.state.cache.lookup("/grp/x"), cells_router::cache::Lookup::Fresh(_)));
    assert!(matches!(r.state.cache.lookup("/keep/x"), cells_router::cache::Lookup::Fresh(_)));
    let g = get(&c, r.addr, "/grp/x").await;
    assert_eq!((g.status, g.json()["error"].as_str()), (503, Some("cell_unavailable")));
    assert_eq!(g.headers["retry-after"], "10");
    // The organization moved to cell_a: the next request relearns instead of using the dead entry.
    // cell_a names itself and no other cell is left to confirm it: routed, not cached (a
    // self-claim is cached only when a second cell agrees).
    a.set_learn(table(&[("/org", "cell_a", "routable", false, true)], "cell_a"));
    let g = get(&c, r.addr, "/org/x").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.served_by(), "cell_a");
    assert!(g.trace().contains("learned_from=cell_a"), "{}", g.trace());
    r.shutdown().await;
}

#[tokio::test]
async fn misdirected_requests_relearn_and_retry_once_without_body() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/proj").await.served_by(), "cell_b");
    // The project moved to cell_a: cell_b says so.
    b.set_app(|rec: &Recorded| {
        if rec.path.starts_with("/org/proj") {
            AppReply { status: 421, headers: vec![("x-gitlab-cell-owner".into(), "cell_a".into())], delay: None }
        } else {
            AppReply { status: 200, ..Default::default() }
        }
    });
    // The client's headers, a repeated one, some the router replaces or strips among them.
    let client_headers = [
        ("accept", "text/html"),
        ("accept", "application/json"),
        ("x-custom", "1"),
        ("cookie", "a=b"),
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x-gitlab-cell-owner", "cell_b"),
    ];
    let g = send(&c, r.addr, "GET", "/org/proj/-/issues", &client_headers, Bytes::new()).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.served_by(), "cell_a");
    assert!(g.trace().contains("cell=cell_a"));
    assert_eq!(b.request_count(), 2);
    assert_eq!(a.request_count(), 1);
    // The replay carries exactly the headers the first cell got.
    let (first, replayed) = (b.requests().pop().unwrap().headers, a.requests().pop().unwrap().headers);
    assert_eq!(replayed, first);
    let accept: Vec<_> = replayed.get_all("accept").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(accept, ["text/html", "application/json"]);
    assert_eq!(replayed["x-custom"], "1");
    assert_eq!(replayed["x-forwarded-for"], "127.0.0.1");
    assert!(!replayed.contains_key("forwarded") && !replayed.contains_key("x-gitlab-cell-owner"), "{replayed:?}");
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert_eq!(g.served_by(), "cell_a");
    assert!(g.trace().contains("cache=hit"));
    assert_eq!(b.request_count(), 2);

    // With a body: the 421 goes back to the client (never replayed), the cache still learns.
    a.set_app(|_: &Recorded| AppReply { status: 421, headers: vec![("x-gitlab-cell-owner".into(), "cell_b".into())], delay: None });
    b.set_app(|_: &Recorded| AppReply { status: 200, ..Default::default() });
    let g = send(&c, r.addr, "POST", "/org/proj/-/issues", &[], Bytes::from_static(b"title=x")).await;
    assert_eq!(g.status, 421);
    assert!(!g.headers.contains_key("x-gitlab-cell-owner"));
    assert_eq!(a.request_count(), 3);
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("cache=hit"));

    // An owner that is not configured: relearn; the cells now say cell_a; retried there once.
    a.set_app(|_: &Recorded| AppReply { status: 200, ..Default::default() });
    b.set_app(|_: &Recorded| AppReply { status: 421, headers: vec![("x-gitlab-cell-owner".into(), "cell_nowhere".into())], delay: None });
    a.set_learn(table(&[("/org/proj", "cell_a", "routable", false, true)], "cell_a"));
    b.set_learn(table(&[("/org/proj", "cell_a", "routable", false, true)], "cell_a"));
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.served_by(), "cell_a");
    r.shutdown().await;
}

#[tokio::test]
async fn session_cookie_routes_paths_without_a_routable_key() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let with_cookie = |v: &'static str| [("cookie", v)];
    let g = send(&c, r.addr, "POST", "/api/graphql", &with_cookie("theme=dark; _gitlab_session=cell-cell_b-0123abcd"), Bytes::from_static(b"{}")).await;
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("cache=bypass"));
    let g = send(&c, r.addr, "POST", "/api/graphql", &[], Bytes::from_static(b"{}")).await;
    assert_eq!(g.served_by(), "cell_a");
    let g = send(&c, r.addr, "POST", "/api/graphql", &with_cookie("_gitlab_session=cell-cell_zz-0123"), Bytes::from_static(b"{}")).await;
    assert_eq!(g.served_by(), "cell_a");
    // Uncacheable default answers use the cookie too...
    assert_eq!(send(&c, r.addr, "GET", "/dashboard", &with_cookie("_gitlab_session=cell-cell_b-1"), Bytes::new()).await.served_by(), "cell_b");
    // ...but a routable answer always wins over the cookie.
    assert_eq!(send(&c, r.addr, "GET", "/-/profile", &with_cookie("_gitlab_session=cell-cell_b-1"), Bytes::new()).await.served_by(), "cell_a");
    r.shutdown().await;
}

#[tokio::test]
async fn upgrades_pass_through_to_the_learned_cell() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /org/proj/-/terminal HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Gitlab-Cell-Owner: forged\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-served-by: cell_b"));
    assert!(head.contains("upgrade: websocket"));
    s.write_all(b"ping over the tunnel").await.unwrap();
    let mut echo = vec![0u8; 20];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut echo)).await.unwrap().unwrap();
    assert_eq!(&echo, b"ping over the tunnel");
    let rec = &b.requests()[0];
    assert!(!rec.headers.contains_key("x-gitlab-cell-owner"));
    assert_eq!(rec.headers["upgrade"], "websocket");
    r.shutdown().await;
}

#[tokio::test]
async fn ambiguous_request_targets_are_refused() {
    let (a, b) = two_cells().await;
    let r = router("[limits]\nmax_path_bytes = 200\n", "cell_a", &[&a, &b]).await;
    // (`%2F` inside a segment is forwarded since issue 14: see tests/encoded_paths.rs.)
    for target in ["/org/proj/../x", "/org/./proj", "/org/%2e%2e/x", "/org/.%2E/x", "/org/%2E", "//org/proj", "/org\\x", "/org%zz"] {
        let (status, text) = raw(r.addr, &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert_eq!(status, 400, "{target}: {text}");
        assert!(text.contains("\"error\":\"invalid_path\""), "{text}");
    }
    let (status, _) = raw(r.addr, "GET http://evil.example/org/proj HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
    let (status, text) = raw(r.addr, &format!("GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(300))).await;
    assert_eq!(status, 414, "{text}");
    assert_eq!(learns(&a, &b), 0);
    // Oversized headers are refused by the HTTP layer.
    let (status, _) = raw(r.addr, &format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(70_000))).await;
    assert_eq!(status, 431);
    r.shutdown().await;
}

#[tokio::test]
async fn cache_stays_within_capacity() {
    let a = FakeCell::start("cell_a", |_: &str, p: &str| {
        let first = p.split('/').nth(1).unwrap_or("");
        LearnReply::Json(answer(&format!("/{first}"), "cell_a", "routable", false, true))
    })
    .await;
    let r = router("[cache]\ncapacity = 50\n", "cell_a", &[&a]).await;
    let c = client();
    for i in 0..600 {
        assert_eq!(get(&c, r.addr, &format!("/ns{i}/p")).await.status, 200);
    }
    r.state.cache.run_pending_tasks();
    let n = r.state.cache.entry_count();
    assert!(n <= 50 && n > 0, "entry_count {n}");
    assert_eq!(a.learn_count(), 600);
    r.shutdown().await;
}

#[tokio::test]
async fn metrics_and_health_endpoints() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    get(&c, r.addr, "/org/proj").await;
    get(&c, r.addr, "/org/proj/x").await;
    get(&c, r.addr, "/").await;
    b.kill().await;
    get(&c, r.addr, "/org/proj/y").await;
    let m = get(&c, r.internal_addr, cells_router::METRICS_PATH).await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).to_string();
    for needle in [
        "cells_router_requests_total{cell=\"cell_b\",status=\"200\"} 2",
        "cells_router_requests_total{cell=\"cell_a\",status=\"200\"} 1",
        "cells_router_requests_total{cell=\"cell_b\",status=\"502\"} 1",
        "cells_router_cache_lookups_total{result=\"hit\"} 2",
        "cells_router_cache_lookups_total{result=\"miss\"} 1",
        "cells_router_cache_lookups_total{result=\"bypass\"} 1",
        // The dead cell's entry stays: its breaker answers for it (issue 14 item 3).
        "cells_router_cache_entries 1",
        "cells_router_cell_breaker_state{cell=\"cell_b\"} 1",
        "cells_router_cell_breaker_state{cell=\"cell_a\"} 0",
        "cells_router_cell_breaker_transitions_total{cell=\"cell_b\",to=\"open\"} 1",
        "cells_router_learn_duration_seconds_bucket{le=",
        "cells_router_upstream_errors_total{cell=\"cell_b\",reason=\"connect\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // Two learns (`/org/proj`, `/`), each one or two requests (self-claims are confirmed).
    let value = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
    let sent = value("cells_router_learn_requests_total ");
    assert!(within_rounds(sent, 2), "{sent}");
    assert_eq!(value("cells_router_learn_duration_seconds_count "), sent);
    let h = get(&c, r.internal_addr, cells_router::HEALTH_PATH).await;
    assert_eq!(h.status, 200);
    let j = h.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["router"], "router_test");
    assert_eq!(j["cells"][0]["name"], "cell_a");
    assert_eq!(j["cells"][1]["healthy"], false);
    assert_eq!(j["cells"][1]["breaker"], "open");
    assert_eq!(j["cache_entries"], 1);
    // Neither endpoint is served (nor forwarded) on the public port.
    for p in [cells_router::HEALTH_PATH, cells_router::METRICS_PATH, "/-/cells-router/other"] {
        let g = get(&c, r.addr, p).await;
        assert_eq!((g.status, g.json()["error"].as_str()), (404, Some("not_found")), "{p}");
    }
    assert!(a.requests().iter().all(|q| !q.path.starts_with("/-/cells-router")));
    r.shutdown().await;
}

#[tokio::test]
async fn not_found_answers_are_delayed_up_to_the_maximum() {
    let (a, b) = two_cells().await;
    a.set_app(|_: &Recorded| AppReply { status: 404, ..Default::default() });
    let r = router("[not_found_delay]\nmax = \"40ms\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    let mut total = Duration::ZERO;
    for _ in 0..10 {
        let t = std::time::Instant::now();
        assert_eq!(get(&c, r.addr, "/missing").await.status, 404);
        total += t.elapsed();
    }
    // Ten uniform draws from 0..=40 ms: the sum is far above zero, and none above the max.
    assert!(total >= Duration::from_millis(40), "{total:?}");
    r.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let (a, b) = two_cells().await;
    b.set_app(|_: &Recorded| AppReply { status: 200, delay: Some(Duration::from_millis(300)), ..Default::default() });
    let r = router("", "cell_a", &[&a, &b]).await;
    let (c, addr) = (client(), r.addr);
    let slow = tokio::spawn(async move { get(&c, addr, "/org/proj").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.shutdown().await;
    let g = slow.await.unwrap();
    assert_eq!(g.status, 200);
    assert_eq!(g.served_by(), "cell_b");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A keep-alive connection idle between requests is closed as soon as the drain begins, not
/// left until `timeouts.shutdown` runs out: its task, woken by nothing else, must have its waker
/// registered with the drain signal (src/lib.rs, `until_drain`, polls the signal only once).
#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let (a, b) = two_cells().await;
    let r = router("[timeouts]\nshutdown = \"20s\"\n", "cell_a", &[&a, &b]).await;
    let stream = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    let (mut conn, driver) = hyper::client::conn::http1::handshake::<_, http_body_util::Empty<Bytes>>(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let driver = tokio::spawn(driver);
    let req = http::Request::get("/org/proj").header("host", "gitlab.example").body(http_body_util::Empty::new()).unwrap();
    let resp = conn.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    http_body_util::BodyExt::collect(resp.into_body()).await.unwrap();
    // The connection now waits idle for its next request; the router drains.
    let started = std::time::Instant::now();
    r.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown waited {:?} for an idle connection", started.elapsed());
    // And the router closed it: the client's connection task ends.
    tokio::time::timeout(Duration::from_secs(5), driver).await.expect("the router closed the idle connection").unwrap().unwrap();
}

/// One client connection, several requests: a cell slower than `timeouts.request` gives 504
/// (at the deadline, not before or long after), and requests that finish in time are never cut
/// by an earlier request's deadline, although one connection's timer serves them all (the lazy
/// timer of src/lazy_timer.rs re-arms only when a deadline fires early).
#[tokio::test]
async fn slow_cells_time_out_with_504_and_the_connection_goes_on() {
    let (a, b) = two_cells().await;
    b.set_app(|rec: &Recorded| {
        let delay = match rec.path.as_str() {
            "/org/proj/slow" => Duration::from_secs(3),
            _ => Duration::from_millis(120),
        };
        AppReply { status: 200, delay: Some(delay), ..Default::default() }
    });
    let r = router("[timeouts]\nrequest = \"400ms\"\n", "cell_a", &[&a, &b]).await;
    let stream = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    let (mut conn, driver) = hyper::client::conn::http1::handshake::<_, http_body_util::Empty<Bytes>>(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(driver);
    let mut get_on_conn = async |path: &str| {
        let req = http::Request::get(path).header("host", "gitlab.example").body(http_body_util::Empty::new()).unwrap();
        let started = std::time::Instant::now();
        let resp = conn.send_request(req).await.expect("the connection stays open");
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        (status, body, started.elapsed())
    };
    let (status, body, took) = get_on_conn("/org/proj/slow").await;
    assert_eq!(status, 504, "{body:?}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "cell_timeout");
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");
    // Six requests of 120 ms each: 720 ms in all, past the deadlines armed for the first ones.
    for i in 0..6 {
        let (status, _, took) = get_on_conn(&format!("/org/proj/fast-{i}")).await;
        assert_eq!(status, 200, "request {i} took {took:?}");
    }
    // And a slow one after them still times out at its own deadline.
    let (status, _, took) = get_on_conn("/org/proj/slow").await;
    assert_eq!(status, 504);
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");
    r.shutdown().await;
}

/// The request timeout runs from when the request is handed to its cell: a learn before it
/// (here 300 ms, under a 400 ms request timeout, then a 250 ms answer) does not eat into it.
/// A request answered from the cache shares one clock reading between its lookup and its
/// timeout; one that waited for a learn reads the clock again before forwarding.
#[tokio::test]
async fn a_slow_learn_does_not_shorten_the_request_timeout() {
    let slow =
        |_: &str, _: &str| LearnReply::Delay(Duration::from_millis(300), Box::new(LearnReply::Json(answer("/org/proj", "cell_b", "routable", false, true))));
    let a = FakeCell::start("cell_a", slow).await;
    let b = FakeCell::start("cell_b", slow).await;
    b.set_app(|_: &Recorded| AppReply { status: 200, delay: Some(Duration::from_millis(250)), ..Default::default() });
    let r = router("[timeouts]\nrequest = \"400ms\"\nlearn = \"5s\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    let started = std::time::Instant::now();
    let g = get(&c, r.addr, "/org/proj/-/issues").await;
    assert_eq!(g.status, 200, "learn + forward took {:?}", started.elapsed());
    assert_eq!(g.served_by(), "cell_b");
    assert!(started.elapsed() >= Duration::from_millis(550), "{:?}", started.elapsed());
    // Cached now: the same 250 ms answer is within its 400 ms.
    assert_eq!(get(&c, r.addr, "/org/proj/-/issues").await.status, 200);
    r.shutdown().await;
}

#[tokio::test]
async fn forwarded_headers_are_extended_only_when_trusted() {
    let (a, b) = two_cells().await;
    let r = router("trust_forwarded_headers = true\n", "cell_a", &[&a, &b]).await;
    let c = client();
    let hdrs = [("x-forwarded-for", "10.9.9.9"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "gitlab.com"), ("host", "internal:8080")];
    assert_eq!(send(&c, r.addr, "GET", "/org/proj", &hdrs, Bytes::new()).await.status, 200);
    let rec = &b.requests()[0];
    assert_eq!(rec.headers["x-forwarded-for"], "10.9.9.9, 127.0.0.1");
    assert_eq!(rec.headers["x-forwarded-proto"], "https");
    assert_eq!(rec.headers["x-forwarded-host"], "gitlab.com");
    r.shutdown().await;
}

#[tokio::test]
async fn a_stale_entry_the_cells_no_longer_confirm_is_dropped() {
    let (a, b) = two_cells().await;
    let r = router("[cache]\nttl = \"100ms\"\nstale_grace = \"30s\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/proj/x").await.served_by(), "cell_b");
    // The project is gone: the cells now answer "default, uncacheable".
    a.set_learn(table(&[], "cell_a"));
    b.set_learn(table(&[], "cell_a"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let g = get(&c, r.addr, "/org/proj/x").await;
    assert_eq!(g.served_by(), "cell_a");
    assert!(g.trace().contains("cache=bypass"));
    // Cells down now: no stale /org/proj entry may resurrect the old owner.
    a.set_learn(|_: &str, _: &str| LearnReply::Status(500));
    b.set_learn(|_: &str, _: &str| LearnReply::Status(500));
    assert_eq!(get(&c, r.addr, "/org/proj/x").await.status, 503);
    r.shutdown().await;
}
