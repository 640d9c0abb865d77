//! Mixed versions (issue 16 §4): during a deploy two route tables run across four cells. The
//! router reads each cell's table from its health answer and its learn answers, asks the
//! newest table's cells first, and never lets an older table's answer replace a newer one's,
//! in memory or in the shared Redis tier.
//!
//! The two tables (cell_0 is the default cell):
//! - old, version 1 (cell_0, cell_1): `/legacy-a` and `/legacy-b` are routable namespaces on
//!   cell_1; `/-/ml` does not exist (a default answer, uncacheable, cell_0);
//! - new, version 2 (cell_2, cell_3): `/legacy-a` and `/legacy-b` became fixed routes of
//!   cell_0 (the class changed); `/-/ml` is a new fixed route of cell_3.
//!
//! `/stable` is the same routable namespace of cell_2 in both tables.

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{self, RedisServer};
use common::*;

const OLD: u64 = 1;
const NEW: u64 = 2;

fn old_table() -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    versioned_table(
        OLD,
        "0ld0",
        &[("/legacy-a", "cell_1", "routable", false, true), ("/legacy-b", "cell_1", "routable", false, true), ("/stable", "cell_2", "routable", false, true)],
        "cell_0",
    )
}

fn new_table() -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    versioned_table(
        NEW,
        "new0",
        &[
            ("/legacy-a", "cell_0", "fixed", false, true),
            ("/legacy-b", "cell_0", "fixed", false, true),
            ("/-/ml", "cell_3", "fixed", false, true),
            ("/stable", "cell_2", "routable", false, true),
        ],
        "cell_0",
    )
}

/// cell_0 and cell_1 on the old table, cell_2 and cell_3 on the new one.
async fn four_cells() -> Vec<FakeCell> {
    let mut cells = Vec::new();
    for i in 0..4 {
        let old = i < 2;
        let cell = if old { FakeCell::start(&format!("cell_{i}"), old_table()).await } else { FakeCell::start(&format!("cell_{i}"), new_table()).await };
        if old {
            cell.set_routes(OLD, "0ld0");
        } else {
            cell.set_routes(NEW, "new0");
        }
        cells.push(cell);
    }
    cells
}

/// A router that has read every cell's table from its health answer.
async fn versioned_router(extra: &str, cells: &[FakeCell]) -> cells_router::Running {
    let refs: Vec<&FakeCell> = cells.iter().collect();
    let r = router(extra, "cell_0", &refs).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while (0..cells.len()).any(|c| r.state.tables.version(c).is_none()) {
        assert!(Instant::now() < deadline, "the router never read the cells' route tables");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r
}

fn learns(cells: &[FakeCell], which: std::ops::Range<usize>) -> usize {
    cells[which].iter().map(FakeCell::learn_count).sum()
}

/// A route that exists only in the newer table is learned from a newer cell. Each fresh router
/// asks first; a random order would ask an old cell first for about one router in two (and
/// get its default answer), so six routers in a row asking only new cells is no accident.
#[tokio::test]
async fn a_route_only_in_the_newer_table_is_learned_from_the_newer_cells() {
    let cells = four_cells().await;
    let c = client();
    for round in 0..6 {
        let r = versioned_router("", &cells).await;
        assert_eq!(r.state.tables.version(0), Some(OLD));
        assert_eq!(r.state.tables.version(3), Some(NEW));
        let g = get(&c, r.addr, &format!("/-/ml/models/{round}")).await;
        assert_eq!((g.status, g.served_by()), (200, "cell_3"), "round {round}: {}", g.trace());
        assert!(g.trace().contains("cache=miss"), "{}", g.trace());
        assert!(get(&c, r.addr, "/-/ml/other").await.trace().contains("cache=hit"), "cached from the new table's answer");
        r.shutdown().await;
    }
    assert_eq!(learns(&cells, 0..2), 0, "no learn request reached an old-table cell");
    assert!(learns(&cells, 2..4) >= 6);
}

/// With the new cells unable to answer, the old table's default answer routes the request to the
/// default cell and is not cached; the route is learned from the new table once it answers.
#[tokio::test]
async fn an_old_cells_default_answer_for_a_new_route_is_never_cached() {
    let cells = four_cells().await;
    let c = client();
    let r = versioned_router("", &cells).await;
    for cell in &cells[2..] {
        cell.set_learn(|_, _| LearnReply::Status(503));
    }
    let g = get(&c, r.addr, "/-/ml/models").await;
    assert_eq!(g.served_by(), "cell_0", "the old table does not know the route: the default cell");
    assert!(r.state.cache.entries().iter().all(|(p, ..)| !p.starts_with("/-/ml")), "{:?}", r.state.cache.entries());
    for cell in &cells[2..] {
        cell.set_learn(new_table());
    }
    // The new cells failed a learn request a moment ago (tried last for a few seconds): the
    // old cells may be asked first now, and their answer is still not cached.
    until_served_by(&c, &r, "/-/ml/models", "cell_3", "cell_0", Duration::from_secs(10)).await;
    assert!(get(&c, r.addr, "/-/ml/models").await.trace().contains("cache=hit"));
}

/// Asks for `path` until `new` serves it (learned from the new table's cells), at most
/// `within`; meanwhile only `old` may serve it.
async fn until_served_by(c: &Client, r: &cells_router::Running, path: &str, new: &str, old: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let g = get(c, r.addr, path).await;
        if g.served_by() == new {
            return;
        }
        assert_eq!(g.served_by(), old, "{}", g.trace());
        assert!(Instant::now() < deadline, "never learned from the new table: {}", g.trace());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Four cells on the old table; the router reads their tables every 50 ms.
async fn before_the_deploy() -> (Vec<FakeCell>, cells_router::Running) {
    let mut cells = Vec::new();
    for i in 0..4 {
        let cell = FakeCell::start(&format!("cell_{i}"), old_table()).await;
        cell.set_routes(OLD, "0ld0");
        cells.push(cell);
    }
    let r = versioned_router("[breaker]\ntable_refresh = \"50ms\"\n", &cells).await;
    assert_eq!(r.state.tables.newest(), OLD);
    (cells, r)
}

/// cell_2 and cell_3 move to the new table (their learn answers and health answers); returns
/// once the router has read it.
async fn deploy_the_new_table(cells: &[FakeCell], r: &cells_router::Running) {
    for cell in &cells[2..] {
        cell.set_learn(new_table());
        cell.set_routes(NEW, "new0");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while r.state.tables.newest() != NEW {
        assert!(Instant::now() < deadline, "the router never read the new table from the health answers");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The table an entry in the router's memory was learned from, if the path has a fresh one.
fn cached_table(r: &cells_router::Running, path: &str) -> Option<u64> {
    match r.state.cache.lookup(path) {
        cells_router::cache::Lookup::Fresh(e) => Some(e.table),
        _ => None,
    }
}

/// Issue 16 §4: an entry learned while only the old table existed does not outlive the news of
/// a newer table until its TTL. The answer is the same in both tables here (`/stable` on
/// cell_2): the next request learns it again, from a new cell, and the entry is the new
/// table's from then on (hits, no more learning).
#[tokio::test]
async fn an_entry_from_the_old_table_is_learned_again_once_a_newer_table_is_known() {
    let (cells, r) = before_the_deploy().await;
    let c = client();
    let g = get(&c, r.addr, "/stable/x").await;
    assert_eq!((g.served_by(), g.trace().contains("cache=miss")), ("cell_2", true), "{}", g.trace());
    assert!(get(&c, r.addr, "/stable/y").await.trace().contains("cache=hit"));
    assert_eq!(cached_table(&r, "/stable/y"), Some(OLD));

    deploy_the_new_table(&cells, &r).await;
    assert_eq!(cached_table(&r, "/stable/y"), None, "an entry from the old table is no longer fresh");
    let (old_before, new_before) = (learns(&cells, 0..2), learns(&cells, 2..4));
    let g = get(&c, r.addr, "/stable/z").await;
    assert_eq!(g.served_by(), "cell_2");
    assert!(g.trace().contains("cache=miss"), "learned again: {}", g.trace());
    // One learn flight, to the new cells only: cell_3's answer alone, or cell_2's confirmed by
    // cell_3 (a cell naming itself needs a second cell's word).
    let learned = learns(&cells, 2..4) - new_before;
    assert_eq!(learns(&cells, 0..2), old_before, "no old cell was asked");
    assert!((1..=2).contains(&learned), "{learned} learn requests");
    assert_eq!(cached_table(&r, "/stable/z"), Some(NEW));
    for i in 0..5 {
        let g = get(&c, r.addr, &format!("/stable/{i}")).await;
        assert!(g.trace().contains("cache=hit") && g.served_by() == "cell_2", "{}", g.trace());
    }
    assert_eq!(learns(&cells, 0..4), old_before + new_before + learned, "hits from then on");
}

/// The same when the answer changed class: `/legacy-a`, a routable namespace of cell_1 in the
/// old table, is a fixed route of cell_0 in the new one. The first request after the router
/// knows the new table already goes where the new table says.
#[tokio::test]
async fn a_path_that_changed_class_follows_the_newer_table_on_the_next_request() {
    let (cells, r) = before_the_deploy().await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/legacy-a/x").await.served_by(), "cell_1");
    assert!(get(&c, r.addr, "/legacy-a/y").await.trace().contains("cache=hit"));

    deploy_the_new_table(&cells, &r).await;
    let g = get(&c, r.addr, "/legacy-a/y").await;
    assert_eq!(g.served_by(), "cell_0", "the new table's answer: {}", g.trace());
    assert!(g.trace().contains("cache=miss") && g.trace().contains("learned_from=cell_"), "{}", g.trace());
    let g = get(&c, r.addr, "/legacy-a/z").await;
    assert_eq!((g.served_by(), g.trace().contains("cache=hit")), ("cell_0", true), "{}", g.trace());
    assert_eq!(cached_table(&r, "/legacy-a/z"), Some(NEW));
    let entries = r.state.cache.entries();
    assert!(entries.iter().all(|(p, _, cell)| p != "/legacy-a" || *cell == 0), "no old entry left: {entries:?}");
}

/// While the new table's cells cannot answer learn requests (they report the new table but
/// fail), the old entry keeps routing, and it is not learned again on every request: at most
/// the one inline attempt and about one background refresh a second. Once the new cells answer,
/// the entry moves to the new table.
#[tokio::test]
async fn an_old_entry_whose_newer_cells_fail_is_refreshed_in_the_background_not_per_request() {
    let (cells, r) = before_the_deploy().await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/legacy-a/x").await.served_by(), "cell_1");
    deploy_the_new_table(&cells, &r).await;
    for cell in &cells[2..] {
        cell.set_learn(|_, _| LearnReply::Status(503));
    }
    let before = learns(&cells, 0..4);
    let started = Instant::now();
    for i in 0..50 {
        let g = get(&c, r.addr, &format!("/legacy-a/{i}")).await;
        assert_eq!((g.status, g.served_by()), (200, "cell_1"), "the old table's answer still routes: {}", g.trace());
    }
    // A learn attempt asks each cell at most once: 4 learn requests at most per attempt, and
    // at most the inline attempt, one more for a request that raced it, and one background
    // refresh per second elapsed. One attempt per request would be at least 50.
    let sent = learns(&cells, 0..4) - before;
    let bound = 4 * (2 + started.elapsed().as_secs() as usize);
    assert!((1..=bound).contains(&sent), "{sent} learn requests for 50 requests in {:?}", started.elapsed());

    for cell in &cells[2..] {
        cell.set_learn(new_table());
    }
    // The new cells stay last in the learn order for 5 s after their failures (`breaker`).
    until_served_by(&c, &r, "/legacy-a/after", "cell_0", "cell_1", Duration::from_secs(15)).await;
    assert_eq!(cached_table(&r, "/legacy-a/after"), Some(NEW));
}

/// Both orders, on a real redis-server: a path that changed class (routable on cell_1 in the
/// old table, fixed on cell_0 in the new one) ends up with the new table's answer in Redis.
/// - old first: a router learns `/legacy-a` from the old cells (the new ones fail); a second
///   router finds that entry older than the newest table it knows, learns again from a new cell,
///   and its answer replaces the old one in Redis;
/// - new first: an old answer whose learn request was under way while a newer answer was
///   written does not overwrite it.
#[tokio::test]
async fn the_newer_table_wins_in_the_shared_cache_whichever_answered_first() {
    if !redis_server::available("the_newer_table_wins_in_the_shared_cache_whichever_answered_first") {
        return;
    }
    let redis = RedisServer::start();
    let cells = four_cells().await;
    let c = client();
    let shared = format!("[cache.shared]\nurl = \"{}\"\nbudget = \"500ms\"\n", redis.url());
    let shared_router = || async {
        let r = versioned_router(&shared, &cells).await;
        assert!(r.state.shared.as_ref().unwrap().ready(Duration::from_secs(5)).await);
        r
    };
    let fail_new = |fail: bool| {
        for cell in &cells[2..] {
            if fail {
                cell.set_learn(|_, _| LearnReply::Status(503));
            } else {
                cell.set_learn(new_table());
            }
        }
    };

    // Old first.
    fail_new(true);
    let r1 = shared_router().await;
    assert_eq!(get(&c, r1.addr, "/legacy-a/x").await.served_by(), "cell_1", "the old table's answer, while the new cells fail");
    let stored = wait_for(&redis, "cells-router:route:>/legacy-a", |v| v.contains("\"cell_1\"")).await;
    assert!(stored.contains("\"table\":1"), "{stored}");
    fail_new(false);
    let r2 = shared_router().await;
    let (before_old, before_new) = (learns(&cells, 0..2), learns(&cells, 2..4));
    let g = get(&c, r2.addr, "/legacy-a/y").await;
    assert_eq!(g.served_by(), "cell_0", "the new table's answer: {}", g.trace());
    assert!(g.trace().contains("cache=miss"), "the old-table entry in Redis was not used: {}", g.trace());
    assert_eq!(learns(&cells, 0..2), before_old, "learned from the new cells only");
    assert!(learns(&cells, 2..4) > before_new);
    let stored = wait_for(&redis, "cells-router:route:>/legacy-a", |v| v.contains("\"cell_0\"")).await;
    assert!(stored.contains("\"table\":2"), "the newer answer replaced the older one: {stored}");

    // New first, the older answer arriving last: the old cells answer slowly while the new
    // cells fail r3's learn request; meanwhile r2 learns from the new cells and writes.
    let r3 = shared_router().await;
    for cell in &cells[..2] {
        let slow = old_table();
        cell.set_learn(move |m, p| LearnReply::Delay(Duration::from_millis(1500), Box::new(slow(m, p))));
    }
    fail_new(true);
    let r3_addr = r3.addr;
    let c3 = c.clone();
    let old_learn = tokio::spawn(async move { get(&c3, r3_addr, "/legacy-b/x").await });
    // r3 has been refused by the new cells and is waiting on an old one.
    let deadline = Instant::now() + Duration::from_secs(5);
    while learns(&cells, 0..2) == before_old {
        assert!(Instant::now() < deadline, "r3 never asked an old cell");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fail_new(false);
    assert_eq!(get(&c, r2.addr, "/legacy-b/y").await.served_by(), "cell_0");
    wait_for(&redis, "cells-router:route:>/legacy-b", |v| v.contains("\"table\":2")).await;
    let old = old_learn.await.unwrap();
    assert_eq!(old.served_by(), "cell_1", "r3's request went where the old table said: {}", old.trace());
    // r3's write of the old answer reached Redis and was refused there.
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared_ops(&r3, "write", "older_table") == 0 {
        assert!(Instant::now() < deadline, "r3 never tried to write its answer; ok writes: {}", shared_ops(&r3, "write", "ok"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = redis.get("cells-router:route:>/legacy-b").unwrap();
    assert!(stored.contains("\"cell_0\"") && stored.contains("\"table\":2"), "the newer answer stayed: {stored}");
    // A router started now reads the new table's answer, and learns nothing.
    let r4 = shared_router().await;
    let learned = learns(&cells, 0..4);
    let g = get(&c, r4.addr, "/legacy-b/z").await;
    assert_eq!(g.served_by(), "cell_0");
    assert!(g.trace().contains("cache=shared"), "{}", g.trace());
    assert_eq!(learns(&cells, 0..4), learned);
}

/// Waits (up to 5 s) until Redis holds `key` with a value `ok` accepts (writes are made in the
/// background).
async fn wait_for(redis: &RedisServer, key: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = redis.get(key).filter(|v| ok(v)) {
            return v;
        }
        assert!(Instant::now() < deadline, "redis never got the expected {key}: {:?}", redis.get(key));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of one `cells_router_shared_cache_operations_total` series.
fn shared_ops(r: &cells_router::Running, op: &str, result: &str) -> u64 {
    let text = r.state.metrics.encode(0);
    let series = format!("cells_router_shared_cache_operations_total{{op=\"{op}\",result=\"{result}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}
