//! Figures of the router fleet with the shared cache (issue 16 §5), against a real
//! `redis-server` and in-process fake cells. Ignored by default: `script/fleet-figures` runs them
//! (`cargo test -p cells-router --test fleet_figures -- --ignored --nocapture --test-threads 1`)
//! and prints one `FIGURE {json}` line each. They check what they measure (learn counts), but
//! print timings rather than assert them.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::redis_server::{self, RedisServer};
use common::*;

const CELLS: [&str; 3] = ["cell_a", "cell_b", "cell_c"];
const ROUTERS: usize = 4;

fn prefixes() -> Vec<String> {
    let n = std::env::var("FLEET_PREFIXES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    (0..n).map(|i| format!("/ns-{i}")).collect()
}

/// Three cells that agree: prefix i lives on cell i mod 3.
async fn cells(prefixes: &[String]) -> Vec<FakeCell> {
    let entries: Vec<(&str, &str, &str, bool, bool)> = prefixes.iter().enumerate().map(|(i, p)| (p.as_str(), CELLS[i % 3], "routable", false, true)).collect();
    let mut out = Vec::new();
    for name in CELLS {
        out.push(FakeCell::start(name, table(&entries, "cell_a")).await);
    }
    out
}

fn learns(cells: &[FakeCell]) -> usize {
    cells.iter().map(FakeCell::learn_count).sum()
}

async fn fleet(extra: &str, cells: &[FakeCell], n: usize) -> Vec<cells_router::Running> {
    let refs: Vec<&FakeCell> = cells.iter().collect();
    let mut routers = Vec::new();
    for _ in 0..n {
        let r = router(extra, "cell_a", &refs).await;
        if let Some(s) = &r.state.shared {
            assert!(s.ready(Duration::from_secs(5)).await, "router connected to redis");
        }
        routers.push(r);
    }
    routers
}

/// The read budget of the figures (FLEET_BUDGET, default 50ms): on a loaded machine a loopback
/// `MGET` can take longer than the router's default 5 ms, and a read past the budget is a learn
/// request, which is what the figure counts. Each figure reports the reads that ran out of time.
fn budget() -> String {
    std::env::var("FLEET_BUDGET").unwrap_or_else(|_| "50ms".into())
}

fn shared(redis: &RedisServer) -> String {
    format!("purge_token_file = \"{}\"\n[cache.shared]\nurl = \"{}\"\nbudget = \"{}\"\n", token_file(), redis.url(), budget())
}

/// Shared-cache reads that gave up at the budget, over the routers.
fn read_timeouts(routers: &[cells_router::Running]) -> u64 {
    routers.iter().map(|r| count(&r.state.metrics.encode(0), "cells_router_shared_cache_operations_total{op=\"read\",result=\"timeout\"}")).sum()
}

fn token_file() -> String {
    let path = std::env::temp_dir().join(format!("cells-router-figures-{}", std::process::id()));
    std::fs::write(&path, "figures-token\n").unwrap();
    path.display().to_string()
}

/// Every router asks for every prefix, all routers at once, each in its own order.
async fn every_router_asks_every_prefix(routers: &[cells_router::Running], prefixes: &[String]) {
    let mut tasks = Vec::new();
    for (i, r) in routers.iter().enumerate() {
        let (addr, mut order) = (r.addr, prefixes.to_vec());
        order.rotate_left(i * prefixes.len() / routers.len().max(1));
        tasks.push(tokio::spawn(async move {
            let c = client();
            for p in order {
                assert_eq!(get(&c, addr, &format!("{p}/project")).await.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure: script/fleet-figures"]
async fn learn_requests_of_four_routers() {
    if !redis_server::available("learn_requests_of_four_routers") {
        return;
    }
    let prefixes = prefixes();
    let n = prefixes.len();
    let mut figure = serde_json::json!({ "figure": "fleet_learns", "routers": ROUTERS, "cells": CELLS.len(), "prefixes": n, "budget": budget() });
    for (label, with_shared) in [("alone", false), ("shared", true)] {
        let redis = RedisServer::start();
        let cells = cells(&prefixes).await;
        let extra = if with_shared { shared(&redis) } else { String::new() };
        let routers = fleet(&extra, &cells, ROUTERS).await;
        every_router_asks_every_prefix(&routers, &prefixes).await;
        let flights: u64 = routers.iter().map(|r| r.state.metrics.encode(0)).map(|t| count(&t, "cells_router_cache_lookups_total{result=\"miss\"}")).sum();
        figure[label] = serde_json::json!({ "learn_requests": learns(&cells), "learned_paths": flights, "per_prefix": learns(&cells) as f64 / n as f64, "read_timeouts": read_timeouts(&routers) });
        for r in routers {
            r.shutdown().await;
        }
    }
    let alone = figure["alone"]["learned_paths"].as_u64().unwrap();
    let shared_paths = figure["shared"]["learned_paths"].as_u64().unwrap();
    assert_eq!(alone, (ROUTERS * n) as u64, "alone, each router learns each prefix");
    assert!(shared_paths < alone, "the shared tier saves learn requests");
    println!("FIGURE {figure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure: script/fleet-figures"]
async fn a_router_restarted_against_a_warm_redis() {
    if !redis_server::available("a_router_restarted_against_a_warm_redis") {
        return;
    }
    let prefixes = prefixes();
    let redis = RedisServer::start();
    let cells = cells(&prefixes).await;
    let first = fleet(&shared(&redis), &cells, 1).await;
    every_router_asks_every_prefix(&first, &prefixes).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.keys().len() < prefixes.len() {
        assert!(Instant::now() < deadline, "every prefix reached redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in first {
        r.shutdown().await;
    }
    let before = learns(&cells);
    let restarted = fleet(&shared(&redis), &cells, 1).await;
    every_router_asks_every_prefix(&restarted, &prefixes).await;
    let after = learns(&cells) - before;
    let timeouts = read_timeouts(&restarted);
    println!(
        "FIGURE {}",
        serde_json::json!({ "figure": "restart_warm_redis", "prefixes": prefixes.len(), "learn_requests_after_restart": after, "budget": budget(), "read_timeouts": timeouts })
    );
    assert!(timeouts > 0 || after == 0, "every known prefix came from redis");
    for r in restarted {
        r.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure: script/fleet-figures"]
async fn purge_propagation_and_lookup_round_trip() {
    if !redis_server::available("purge_propagation_and_lookup_round_trip") {
        return;
    }
    let prefixes = prefixes();
    let redis = RedisServer::start();
    let cells = cells(&prefixes).await;
    let routers = fleet(&shared(&redis), &cells, ROUTERS).await;
    every_router_asks_every_prefix(&routers, &prefixes).await;
    let c = client();
    // From the DELETE sent to router 0 until every router applied the purge.
    let mut all = Vec::new();
    let purges = std::env::var("FLEET_PURGES").ok().and_then(|v| v.parse().ok()).unwrap_or(200usize);
    for i in 0..purges {
        let mut watches: Vec<_> = routers.iter().map(|r| r.state.shared.as_ref().unwrap().applied()).collect();
        let seen: Vec<u64> = watches.iter_mut().map(|w| *w.borrow_and_update()).collect();
        let started = Instant::now();
        let g = send(
            &c,
            routers[0].internal_addr,
            "DELETE",
            &format!("/-/cells-router/cache?prefix={}", prefixes[i % prefixes.len()]),
            &[("authorization", "Bearer figures-token")],
            Bytes::new(),
        )
        .await;
        assert_eq!(g.status, 200, "{:?}", g.body);
        for (w, s) in watches.iter_mut().zip(&seen) {
            tokio::time::timeout(Duration::from_secs(5), w.wait_for(|n| n > s)).await.expect("purge applied").unwrap();
        }
        all.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    all.sort_by(f64::total_cmp);
    // One MGET for a five-segment path: exact + five prefix keys.
    let shared = routers[0].state.shared.as_ref().unwrap();
    let mut rtt = Vec::new();
    for i in 0..1000 {
        let started = Instant::now();
        shared.lookup(&format!("/ns-{}/project/-/issues/{i}", i % prefixes.len())).await.unwrap();
        rtt.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    rtt.sort_by(f64::total_cmp);
    println!(
        "FIGURE {}",
        serde_json::json!({
            "figure": "purge_propagation", "routers": ROUTERS, "purges": purges,
            "p50_ms": percentile(&all, 0.5), "p99_ms": percentile(&all, 0.99), "max_ms": all[all.len() - 1],
            "lookup_mget_keys": 6, "lookup_p50_ms": percentile(&rtt, 0.5), "lookup_p99_ms": percentile(&rtt, 0.99),
        })
    );
    for r in routers {
        r.shutdown().await;
    }
}

fn count(text: &str, series: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(series)).map_or(0, |v| v.trim().parse().unwrap_or(0))
}
