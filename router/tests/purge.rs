//! The purge API (`DELETE /-/cells-router/cache` on the internal listener) and its spread to
//! every router through Redis pub/sub: an organization that moves reaches every router before
//! its next request, with no 421.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::redis_server::{self, RedisServer};
use common::*;

const TOKEN: &str = "purge-secret-0123456789";

/// A purge token file of this test's own (tests run in parallel: no shared environment).
fn token_file(test: &str) -> String {
    let path = std::env::temp_dir().join(format!("cells-router-purge-{}-{test}", std::process::id()));
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    format!("purge_token_file = \"{}\"\n", path.display())
}

fn org_on(cell: &'static str) -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    table(
        &[("/acme-corp", cell, "routable", false, true), ("/acme-corpx", "cell_a", "routable", false, true), ("/other", "cell_a", "routable", false, true)],
        "cell_a",
    )
}

async fn purge(r: &cells_router::Running, query: &str, token: Option<&str>) -> Got {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
    send(&client(), r.internal_addr, "DELETE", &format!("/-/cells-router/cache?{query}"), &headers, Bytes::new()).await
}

fn paths(r: &cells_router::Running) -> Vec<String> {
    r.state.cache.run_pending_tasks();
    let mut p: Vec<String> = r.state.cache.entries().into_iter().map(|(p, ..)| p).collect();
    p.sort();
    p
}

#[tokio::test]
async fn purges_need_the_token_and_exactly_one_target() {
    let (a, b) = (FakeCell::start("cell_a", org_on("cell_b")).await, FakeCell::start("cell_b", org_on("cell_b")).await);
    let off = router("", "cell_a", &[&a, &b]).await;
    let g = purge(&off, "prefix=/acme-corp", Some(TOKEN)).await;
    assert_eq!((g.status, g.json()["error"].as_str()), (403, Some("purge_disabled")));
    off.shutdown().await;

    let r = router(&token_file("refusals"), "cell_a", &[&a, &b]).await;
    assert_eq!(purge(&r, "prefix=/acme-corp", None).await.status, 401);
    assert_eq!(purge(&r, "prefix=/acme-corp", Some("purge-secret-012345678X")).await.status, 401);
    assert_eq!(purge(&r, "prefix=/acme-corp", Some(&TOKEN[..10])).await.status, 401);
    for bad in ["", "prefix=/", "prefix=acme", "prefix=/a/../b", "prefix=/a&cell=cell_a", "cell=cell_zz", "path=/a", "prefix=/a&prefix=/b"] {
        let g = purge(&r, bad, Some(TOKEN)).await;
        assert_eq!((g.status, g.json()["error"].as_str()), (400, Some("invalid_purge")), "{bad:?}: {:?}", g.body);
    }
    let c = client();
    assert_eq!(send(&c, r.internal_addr, "GET", "/-/cells-router/cache", &[], Bytes::new()).await.status, 405);
    // Never on the public listener, never forwarded.
    let g = send(&c, r.addr, "DELETE", "/-/cells-router/cache?prefix=/acme-corp", &[("authorization", &format!("Bearer {TOKEN}"))], Bytes::new()).await;
    assert_eq!(g.status, 404);
    assert_eq!(a.request_count() + b.request_count(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn a_prefix_purge_drops_entries_at_and_below_it_only() {
    let (a, b) = (FakeCell::start("cell_a", org_on("cell_b")).await, FakeCell::start("cell_b", org_on("cell_b")).await);
    let r = router(&token_file("prefix"), "cell_a", &[&a, &b]).await;
    let c = client();
    for p in ["/acme-corp/x", "/acme-corpx/y", "/other/z"] {
        assert_eq!(get(&c, r.addr, p).await.status, 200);
    }
    r.state.cache.insert("/acme-corp/deep/exact", true, 1);
    assert_eq!(paths(&r), ["/acme-corp", "/acme-corp/deep/exact", "/acme-corpx", "/other"]);
    let g = purge(&r, "prefix=/acme-corp/", Some(TOKEN)).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    assert_eq!((g.json()["prefix"].as_str(), g.json()["local_entries"].as_u64()), (Some("/acme-corp"), Some(2)));
    assert_eq!(paths(&r), ["/acme-corpx", "/other"]);
    let g = purge(&r, "cell=cell_a", Some(TOKEN)).await;
    assert_eq!((g.status, g.json()["local_entries"].as_u64()), (200, Some(2)));
    assert!(paths(&r).is_empty());
    r.shutdown().await;
}

#[tokio::test]
async fn a_moved_organization_reaches_every_router_with_no_421() {
    if !redis_server::available("a_moved_organization_reaches_every_router_with_no_421") {
        return;
    }
    let redis = RedisServer::start();
    let (a, b) = (FakeCell::start("cell_a", org_on("cell_a")).await, FakeCell::start("cell_b", org_on("cell_a")).await);
    let extra = format!("{}[cache.shared]\nurl = \"{}\"\nbudget = \"500ms\"\n", token_file("moved"), redis.url());
    let (r1, r2) = (router(&extra, "cell_a", &[&a, &b]).await, router(&extra, "cell_a", &[&a, &b]).await);
    for r in [&r1, &r2] {
        assert!(r.state.shared.as_ref().unwrap().ready(Duration::from_secs(5)).await);
    }
    let c = client();
    for r in [&r1, &r2] {
        assert_eq!(get(&c, r.addr, "/acme-corp/p").await.served_by(), "cell_a");
    }
    // The organization moves: the cells answer cell_b, and cell_a would say 421.
    a.set_learn(org_on("cell_b"));
    b.set_learn(org_on("cell_b"));
    a.set_app(|rec| AppReply {
        status: if rec.path.starts_with("/acme-corp/") { 421 } else { 200 },
        headers: vec![("x-gitlab-cell-owner".into(), "cell_b".into())],
        ..AppReply::default()
    });
    let mut applied = r2.state.shared.as_ref().unwrap().applied();
    let seen = *applied.borrow_and_update();
    let g = purge(&r1, "prefix=/acme-corp", Some(TOKEN)).await;
    assert_eq!((g.status, g.json()["published"].as_bool()), (200, Some(true)), "{:?}", g.body);
    tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|n| *n > seen)).await.expect("router 2 applied the purge").unwrap();
    let served_by_a = a.request_count();
    for r in [&r1, &r2] {
        let g = send(&c, r.addr, "POST", "/acme-corp/p/-/issues", &[], Bytes::from_static(b"{\"title\":\"x\"}")).await;
        assert_eq!((g.status, g.served_by()), (200, "cell_b"), "{}", g.trace());
        assert_eq!(r.state.metrics.misdirected.get(), 0);
    }
    assert_eq!(a.request_count(), served_by_a, "nothing went to the old cell");
    r1.shutdown().await;
    r2.shutdown().await;
}

#[tokio::test]
async fn a_purge_published_to_redis_directly_is_applied_and_garbage_is_ignored() {
    if !redis_server::available("a_purge_published_to_redis_directly_is_applied_and_garbage_is_ignored") {
        return;
    }
    let redis = RedisServer::start();
    let (a, b) = (FakeCell::start("cell_a", org_on("cell_b")).await, FakeCell::start("cell_b", org_on("cell_b")).await);
    let r = router(&format!("[cache.shared]\nurl = \"{}\"\nbudget = \"500ms\"\n", redis.url()), "cell_a", &[&a, &b]).await;
    let shared = r.state.shared.as_ref().unwrap();
    assert!(shared.ready(Duration::from_secs(5)).await);
    let c = client();
    get(&c, r.addr, "/acme-corp/p").await;
    get(&c, r.addr, "/other/p").await;
    let mut applied = shared.applied();
    let publish = |m: &str| redis.query::<i64>(redis::cmd("PUBLISH").arg("cells-router:purge").arg(m)).unwrap();
    assert_eq!(publish("{\"prefix\":\"/\",\"cell\":\"x\"}"), 1);
    assert_eq!(publish("not json"), 1);
    assert_eq!(publish("{\"prefix\":\"/acme-corp\"}"), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while *applied.borrow_and_update() < 1 {
        assert!(Instant::now() < deadline, "the purge was not applied");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(paths(&r), ["/other"]);
    r.shutdown().await;
}
