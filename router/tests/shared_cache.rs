//! The shared second-level cache on a real `redis-server`: routers learn once for the fleet,
//! a restarted router learns nothing it can read from Redis, Redis answers pass the trust
//! rules, and Redis down, slow or flushed only means learning from the cells as before.

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{self, RedisServer};
use common::*;

fn cells_table() -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    table(&[("/org", "cell_b", "routable", false, true), ("/api/graphql", "cell_a", "fixed", true, false)], "cell_a")
}

async fn two_cells() -> (FakeCell, FakeCell) {
    (FakeCell::start("cell_a", cells_table()).await, FakeCell::start("cell_b", cells_table()).await)
}

/// The shared tier on `redis`. The budget is generous here: the tests share two loaded cores,
/// and what they check is what the router does with an answer, not how fast Redis gives it
/// (the slow-Redis test sets its own).
fn shared(redis: &RedisServer) -> String {
    format!("[cache.shared]\nurl = \"{}\"\n", redis.url())
}

const TEST_BUDGET: &str = "budget = \"500ms\"\n";

/// A router with the shared tier, once its Redis connections are up.
async fn shared_router(redis: &RedisServer, extra: &str, cells: &[&FakeCell]) -> cells_router::Running {
    let r = router(&format!("{}{extra}", shared(redis)), "cell_a", cells).await;
    assert!(r.state.shared.as_ref().unwrap().ready(Duration::from_secs(5)).await, "the router connected to redis");
    r
}

fn learns(cells: &[&FakeCell]) -> usize {
    cells.iter().map(|c| c.learn_count()).sum()
}

/// Waits (up to 5 s) until Redis holds `key`: writes are made in the background.
async fn wait_for_key(redis: &RedisServer, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = redis.get(key) {
            return v;
        }
        assert!(Instant::now() < deadline, "redis never got {key}; keys: {:?}", redis.keys());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of one `cells_router_shared_cache_operations_total` series.
fn shared_ops(r: &cells_router::Running, op: &str, result: &str) -> u64 {
    let text = r.state.metrics.encode(0);
    let series = format!("cells_router_shared_cache_operations_total{{op=\"{op}\",result=\"{result}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_second_router_reads_what_the_first_learned() {
    if !redis_server::available("a_second_router_reads_what_the_first_learned") {
        return;
    }
    let redis = RedisServer::start();
    let (a, b) = two_cells().await;
    let (r1, r2) = (shared_router(&redis, TEST_BUDGET, &[&a, &b]).await, shared_router(&redis, TEST_BUDGET, &[&a, &b]).await);
    let c = client();
    let g = get(&c, r1.addr, "/org/proj/-/issues").await;
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("cache=miss"), "{}", g.trace());
    let stored = wait_for_key(&redis, "cells-router:route:>/org").await;
    assert!(stored.contains("\"cell\":\"cell_b\""), "{stored}");
    let learned = learns(&[&a, &b]);
    let g = get(&c, r2.addr, "/org/other").await;
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("cache=shared"), "{}", g.trace());
    assert_eq!(learns(&[&a, &b]), learned, "the second router sent no learn request");
    // Now in the second router's memory: a hit, and Redis is not asked again.
    let reads = shared_ops(&r2, "read", "hit");
    assert!(get(&c, r2.addr, "/org/third").await.trace().contains("cache=hit"));
    assert_eq!(shared_ops(&r2, "read", "hit") + shared_ops(&r2, "read", "miss"), reads);
    r1.shutdown().await;
    r2.shutdown().await;
}

#[tokio::test]
async fn a_restarted_router_learns_nothing_redis_knows() {
    if !redis_server::available("a_restarted_router_learns_nothing_redis_knows") {
        return;
    }
    let redis = RedisServer::start();
    let names: Vec<String> = (0..20).map(|i| format!("/ns{i}")).collect();
    let entries: Vec<(&str, &str, &str, bool, bool)> =
        names.iter().map(|n| (n.as_str(), if n.len() % 2 == 0 { "cell_a" } else { "cell_b" }, "routable", false, true)).collect();
    let (a, b) = (FakeCell::start("cell_a", table(&entries, "cell_a")).await, FakeCell::start("cell_b", table(&entries, "cell_a")).await);
    let c = client();
    let r = shared_router(&redis, TEST_BUDGET, &[&a, &b]).await;
    for n in &names {
        assert_eq!(get(&c, r.addr, &format!("{n}/p")).await.status, 200);
    }
    for n in &names {
        wait_for_key(&redis, &format!("cells-router:route:>{n}")).await;
    }
    r.shutdown().await;
    let before = learns(&[&a, &b]);
    let r = shared_router(&redis, TEST_BUDGET, &[&a, &b]).await;
    for (n, e) in names.iter().zip(&entries) {
        let g = get(&c, r.addr, &format!("{n}/q")).await;
        assert_eq!(g.served_by(), e.1);
        assert!(g.trace().contains("cache=shared"), "{}", g.trace());
    }
    assert_eq!(learns(&[&a, &b]), before, "no learn request for a prefix Redis holds");
    r.shutdown().await;
}

#[tokio::test]
async fn redis_entries_pass_the_trust_rules() {
    if !redis_server::available("redis_entries_pass_the_trust_rules") {
        return;
    }
    let redis = RedisServer::start();
    let (a, b) = two_cells().await;
    let fresh = r#"{"cell":"cell_b","until_ms":99999999999999}"#;
    // What a hostile writer could put there: / for everything, a reserved prefix, an unknown
    // cell, a dot segment.
    redis.set("cells-router:route:>/", fresh);
    redis.set("cells-router:route:>/api/v4/projects", fresh);
    redis.set("cells-router:route:>/evil", r#"{"cell":"cell_zz","until_ms":99999999999999}"#);
    redis.set("cells-router:route:>/x/..", fresh);
    // And what a router may share: an entity below a reserved prefix, an exact path.
    redis.set("cells-router:route:>/api/v4/projects/42", fresh);
    redis.set("cells-router:route:=/plain/page", fresh);
    let r = shared_router(&redis, TEST_BUDGET, &[&a, &b]).await;
    let c = client();
    let g = get(&c, r.addr, "/api/v4/projects/7").await;
    assert_eq!(g.served_by(), "cell_a", "the reserved-prefix entry did not route: {}", g.trace());
    assert!(!g.trace().contains("cache=shared"));
    let g = get(&c, r.addr, "/evil/x").await;
    assert_eq!(g.served_by(), "cell_a");
    assert!(!g.trace().contains("cache=shared"));
    let g = get(&c, r.addr, "/api/v4/projects/42/issues").await;
    assert_eq!((g.served_by(), g.trace().contains("cache=shared")), ("cell_b", true), "{}", g.trace());
    let g = get(&c, r.addr, "/plain/page").await;
    assert_eq!((g.served_by(), g.trace().contains("cache=shared")), ("cell_b", true), "{}", g.trace());
    assert!(shared_ops(&r, "read", "untrusted") >= 2);
    // Expired entries are not used either.
    redis.set("cells-router:route:>/old", r#"{"cell":"cell_b","until_ms":1}"#);
    assert!(!get(&c, r.addr, "/old/x").await.trace().contains("cache=shared"));
    r.shutdown().await;
}

#[tokio::test]
async fn redis_down_slow_or_flushed_means_learning_from_the_cells() {
    if !redis_server::available("redis_down_slow_or_flushed_means_learning_from_the_cells") {
        return;
    }
    let mut redis = RedisServer::start();
    let (a, b) = two_cells().await;
    let r = shared_router(&redis, "budget = \"20ms\"\n", &[&a, &b]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/a").await.served_by(), "cell_b");
    wait_for_key(&redis, "cells-router:route:>/org").await;

    // Flushed: a miss, then learned and written again.
    redis.query::<()>(&redis::cmd("FLUSHALL")).unwrap();
    r.state.cache.remove("/org", false);
    let g = get(&c, r.addr, "/org/b").await;
    assert!(g.trace().contains("cache=miss") && g.trace().contains("learned_from"), "{}", g.trace());
    wait_for_key(&redis, "cells-router:route:>/org").await;

    // Slow: Redis sleeps 1 s; the read gives up at the budget and the cells answer.
    let url = redis.url();
    let sleeper = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg("1").query(&mut con);
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.state.cache.remove("/org", false);
    let timeouts = shared_ops(&r, "read", "timeout");
    let g = get(&c, r.addr, "/org/c").await;
    assert_eq!(g.served_by(), "cell_b");
    assert!(g.trace().contains("learned_from"), "{}", g.trace());
    assert_eq!(shared_ops(&r, "read", "timeout"), timeouts + 1);
    sleeper.join().unwrap();

    // Down: still served, from memory and from the cells.
    redis.kill();
    assert!(get(&c, r.addr, "/org/d").await.trace().contains("cache=hit"));
    let g = get(&c, r.addr, "/new/x").await;
    assert_eq!(g.status, 200);
    assert!(g.trace().contains("learned_from"), "{}", g.trace());

    // Back (empty, same port): the router reconnects by itself and writes again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.keys().is_empty() {
        assert!(Instant::now() < deadline, "the router did not reconnect to redis");
        r.state.cache.remove("/org", false);
        assert_eq!(get(&c, r.addr, "/org/again").await.served_by(), "cell_b");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(redis.get("cells-router:route:>/org").is_some());
    r.shutdown().await;
}
