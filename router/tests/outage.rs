//! A cell outage (issue 14 items 3 and 7): the breaker keeps the dead cell's entries, answers
//! its requests at once, learns at most once per prefix per interval, and closes within a probe
//! interval of the cell coming back. Every request is logged and counted once (item 6), and the
//! router's endpoints are on the internal listener only (item 5).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tokio::io::AsyncWriteExt;

/// Four namespaces on cell_b, one on cell_a; cell_a and cell_b both answer learn requests.
fn owners() -> impl Fn(&str, &str) -> LearnReply + Send + Sync + Clone + 'static {
    let t = Arc::new(table(
        &[
            ("/ns0", "cell_b", "routable", false, true),
            ("/ns1", "cell_b", "routable", false, true),
            ("/ns2", "cell_b", "routable", false, true),
            ("/ns3", "cell_b", "routable", false, true),
            ("/home", "cell_a", "routable", false, true),
        ],
        "cell_a",
    ));
    move |m: &str, p: &str| t(m, p)
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

async fn metrics(c: &Client, r: &cells_router::Running) -> String {
    String::from_utf8_lossy(&get(c, r.internal_addr, cells_router::METRICS_PATH).await.body).to_string()
}

#[tokio::test]
async fn an_outage_costs_one_learn_per_prefix_not_one_per_request() {
    let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
    let r = router("[breaker]\nprobe_interval = \"10s\"\nrelearn_interval = \"10s\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    for ns in 0..4 {
        assert_eq!(get(&c, r.addr, &format!("/ns{ns}/p")).await.served_by(), "cell_b");
    }
    b.kill().await;
    let learns_before = a.learn_count();
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..200 {
        let g = get(&c, r.addr, &format!("/ns{}/project-{i}/-/issues", i % 4)).await;
        *statuses.entry(g.status).or_insert(0) += 1;
        if g.status == 503 {
            assert_eq!(g.json()["error"], "cell_unavailable");
            assert!(g.headers.contains_key("retry-after"));
        }
    }
    let elapsed = started.elapsed();
    // One 502 (the connect failure that opened the breaker), then only fast 503s.
    assert_eq!(statuses.get(&502), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&503), Some(&199), "{statuses:?}");
    let learns = a.learn_count() - learns_before;
    assert!(learns <= 4, "{learns} learn requests for 4 prefixes during the outage");
    assert!(learns >= 1, "a moved namespace would never be found: no relearn at all");
    assert!(elapsed < Duration::from_secs(5), "200 requests took {elapsed:?}");
    // The other cell's namespaces are untouched.
    assert_eq!(get(&c, r.addr, "/home/x").await.served_by(), "cell_a");
    let m = metrics(&c, &r).await;
    assert_eq!(metric(&m, "cells_router_upstream_errors_total{cell=\"cell_b\",reason=\"breaker_open\"}"), 199.0, "{m}");
    assert_eq!(metric(&m, "cells_router_cell_breaker_state{cell=\"cell_b\"}"), 1.0, "{m}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_namespace_that_moved_during_the_outage_is_found_by_the_relearn() {
    // Three cells: cell_a's answer naming itself after the move is confirmed by cell_c (with
    // cell_b down and no third cell it could not be, and would route without being cached).
    let (a, b, c3) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await, FakeCell::start("cell_c", owners()).await);
    let r = router("[breaker]\nprobe_interval = \"10s\"\nrelearn_interval = \"200ms\"\n", "cell_a", &[&a, &b, &c3]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/ns0/p").await.served_by(), "cell_b");
    b.kill().await;
    assert_eq!(get(&c, r.addr, "/ns0/p").await.status, 502);
    assert_eq!(get(&c, r.addr, "/ns0/p").await.status, 503); // relearned: still cell_b
    a.set_learn(table(&[("/ns0", "cell_a", "routable", false, true)], "cell_a"));
    c3.set_learn(table(&[("/ns0", "cell_a", "routable", false, true)], "cell_a"));
    assert_eq!(get(&c, r.addr, "/ns0/p").await.status, 503, "relearned again within the interval");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let g = get(&c, r.addr, "/ns0/p").await;
    assert_eq!((g.status, g.served_by()), (200, "cell_a"), "{}", g.trace());
    assert_eq!(get(&c, r.addr, "/ns0/q").await.served_by(), "cell_a");
    r.shutdown().await;
}

/// Item 7's last bullet: the restarted cell serves (from the entries kept) within a probe
/// interval of listening again, without a learn request.
#[tokio::test]
async fn a_restarted_cell_serves_within_a_probe_interval() {
    for (probe, extra) in [("http", "probe = \"http\"\nprobe_path = \"/-/readiness\"\n"), ("tcp", "probe = \"tcp\"\n")] {
        let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
        let r = router(&format!("[breaker]\nprobe_interval = \"100ms\"\n{extra}"), "cell_a", &[&a, &b]).await;
        let c = client();
        assert_eq!(get(&c, r.addr, "/ns1/p").await.served_by(), "cell_b");
        let addr = b.addr;
        b.kill().await;
        assert_eq!(get(&c, r.addr, "/ns1/p").await.status, 502);
        tokio::time::sleep(Duration::from_millis(300)).await; // a few failed probes
        assert_eq!(get(&c, r.addr, "/ns1/p").await.status, 503);
        let back = FakeCell::start_on(addr, "cell_b", owners()).await;
        let restarted = Instant::now();
        let served = loop {
            let g = get(&c, r.addr, "/ns1/p").await;
            if g.status == 200 {
                assert_eq!(g.served_by(), "cell_b");
                assert!(g.trace().contains("cache=hit"), "{}", g.trace());
                break restarted.elapsed();
            }
            assert!(restarted.elapsed() < Duration::from_secs(3), "{probe}: not served 3 s after the restart");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(served < Duration::from_millis(400), "{probe}: first request served {served:?} after the restart");
        assert_eq!(back.learn_count(), 0);
        if probe == "http" {
            assert!(back.probe_count() > 0, "{probe}: no probe request");
        }
        let m = metrics(&c, &r).await;
        assert_eq!(metric(&m, "cells_router_cell_breaker_state{cell=\"cell_b\"}"), 0.0, "{m}");
        assert_eq!(metric(&m, "cells_router_cell_breaker_transitions_total{cell=\"cell_b\",to=\"closed\"}"), 1.0, "{m}");
        assert!(metric(&m, "cells_router_cell_probes_total{cell=\"cell_b\",result=\"failed\"}") >= 1.0, "{m}");
        let h = get(&c, r.internal_addr, cells_router::HEALTH_PATH).await.json();
        assert_eq!(h["cells"][1]["breaker"], "closed");
        r.shutdown().await;
    }
}

/// A learn request whose connect fails opens the breaker too (the cell is down before any
/// request was forwarded to it), and a successful learn from it closes it.
#[tokio::test]
async fn learn_connect_failures_open_the_breaker() {
    let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
    let r = router("[breaker]\nprobe_interval = \"10s\"\n", "cell_a", &[&a, &b]).await;
    let c = client();
    b.kill().await;
    // Learn requests go to a random cell: within a few, one tries cell_b and fails to connect.
    for i in 0..40 {
        get(&c, r.addr, &format!("/home/{i}")).await;
        r.state.cache.remove("/home", false);
        if r.state.health.state(1) != cells_router::breaker::BreakerState::Closed {
            break;
        }
    }
    assert_eq!(r.state.health.state(1), cells_router::breaker::BreakerState::Open);
    // Its namespaces: the learn answer names cell_b, whose breaker is open: 503 at once.
    let g = get(&c, r.addr, "/ns2/p").await;
    assert_eq!((g.status, g.json()["error"].as_str()), (503, Some("cell_unavailable")));
    r.shutdown().await;
}

// --- item 6: every request logged and counted -------------------------------------------

/// Captures every log line of this test binary: one global subscriber (a thread-scoped one
/// misses lines once tests run in parallel, as tracing caches its callsites' interest
/// process-wide), so each test picks its own lines by path.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn capture() -> Lines {
        static LINES: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();
        LINES
            .get_or_init(|| {
                let lines = Lines::default();
                let w = lines.clone();
                let sub = tracing_subscriber::fmt().event_format(cells_router::json_log::JsonLines).with_writer(move || w.clone()).finish();
                tracing::subscriber::set_global_default(sub).expect("the only subscriber");
                lines
            })
            .clone()
    }

    /// Access lines as JSON objects.
    fn access(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).to_string();
        text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter(|v| v["target"] == "cells_router::access").collect()
    }
}

#[tokio::test]
async fn a_client_that_closes_while_its_cell_works_is_logged_and_counted_as_499() {
    let lines = Lines::capture();
    let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
    a.set_app(|_: &Recorded| AppReply { status: 200, delay: Some(Duration::from_millis(1500)), ..AppReply::default() });
    let r = router("", "cell_a", &[&a, &b]).await;
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /home/slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    // The cell has the request, then the client goes away.
    let deadline = Instant::now() + Duration::from_secs(3);
    while a.request_count() == 0 {
        assert!(Instant::now() < deadline, "the request never reached the cell");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(s);
    let line = loop {
        if let Some(l) = lines.access().into_iter().find(|l| l["path"] == "/home/slow") {
            break l;
        }
        assert!(Instant::now() < deadline, "no access line for the closed request: {}", String::from_utf8_lossy(&lines.0.lock().unwrap()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Well before the cell's answer (1.5 s): the line is written when the client leaves.
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(line["cell"], "cell_a", "{line}");
    assert!(line["error"].as_str().unwrap_or("").contains("closed"), "{line}");
    let c = client();
    let m = metrics(&c, &r).await;
    assert_eq!(metric(&m, "cells_router_requests_total{cell=\"cell_a\",status=\"499\"}"), 1.0, "{m}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(lines.access().iter().filter(|l| l["path"] == "/home/slow").count(), 1, "exactly one line");
    r.shutdown().await;
}

#[tokio::test]
async fn refusals_and_421s_are_logged_with_their_reason_and_cell() {
    let lines = Lines::capture();
    let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
    // cell_b says /ns3 now lives on cell_a.
    b.set_app(|q: &Recorded| {
        if q.path.starts_with("/ns3") {
            AppReply { status: 421, headers: vec![("x-gitlab-cell-owner".into(), "cell_a".into())], ..AppReply::default() }
        } else {
            AppReply { status: 200, ..AppReply::default() }
        }
    });
    let r = router("[limits]\nmax_path_bytes = 100\n", "cell_a", &[&a, &b]).await;
    let c = client();
    let long = format!("/{}", "x".repeat(200));
    assert_eq!(get(&c, r.addr, &long).await.status, 414);
    let (status, _) = raw(r.addr, "GET /a%zz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
    assert_eq!(get(&c, r.addr, "/-/cells-router/health").await.status, 404);
    let g = get(&c, r.addr, "/ns3/moved-421").await;
    assert_eq!(g.served_by(), "cell_a");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let paths = [long.as_str(), "/a%zz", "/-/cells-router/health", "/ns3/moved-421"];
    let access: Vec<_> = lines.access().into_iter().filter(|l| paths.iter().any(|p| l["path"] == *p)).collect();
    assert_eq!(access.len(), 4, "{access:?}");
    let by_status = |s: u16| access.iter().find(|l| l["status"] == s).cloned().unwrap_or_else(|| panic!("no {s} line in {access:?}"));
    assert!(by_status(414)["error"].as_str().unwrap().contains("path_too_long"), "{access:?}");
    assert!(by_status(400)["error"].as_str().unwrap().contains("invalid_path"), "{access:?}");
    assert!(by_status(404)["error"].as_str().unwrap().contains("public listener"), "{access:?}");
    let moved = access.iter().find(|l| l["path"] == "/ns3/moved-421").unwrap();
    assert_eq!((moved["misdirected_by"].as_str(), moved["cell"].as_str(), moved["retried"].as_bool()), (Some("cell_b"), Some("cell_a"), Some(true)), "{moved}");
    // Every request above has its line and its count.
    let m = metrics(&c, &r).await;
    let counted: f64 = m.lines().filter(|l| l.starts_with("cells_router_requests_total{")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
    assert_eq!(counted, 4.0, "{m}");
    r.shutdown().await;
}

#[tokio::test]
async fn health_reports_the_same_entry_count_as_the_metric() {
    let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    for ns in ["/ns0", "/ns1", "/ns2", "/home"] {
        get(&c, r.addr, &format!("{ns}/x")).await;
    }
    // Read at once, before moka's own housekeeping ran.
    let h = get(&c, r.internal_addr, cells_router::HEALTH_PATH).await.json();
    let m = metrics(&c, &r).await;
    assert_eq!(h["cache_entries"], 4);
    assert_eq!(metric(&m, "cells_router_cache_entries"), 4.0);
    r.shutdown().await;
}

// --- item 5: the internal listener ------------------------------------------------------

#[tokio::test]
async fn the_internal_listener_serves_only_the_router_endpoints() {
    let (a, b) = (FakeCell::start("cell_a", owners()).await, FakeCell::start("cell_b", owners()).await);
    let r = router("", "cell_a", &[&a, &b]).await;
    assert_ne!(r.addr, r.internal_addr);
    let c = client();
    assert_eq!(get(&c, r.internal_addr, cells_router::HEALTH_PATH).await.status, 200);
    assert_eq!(get(&c, r.internal_addr, cells_router::METRICS_PATH).await.status, 200);
    let g = get(&c, r.internal_addr, "/home/x").await;
    assert_eq!(g.status, 404);
    assert_eq!(send(&c, r.internal_addr, "POST", cells_router::HEALTH_PATH, &[], Bytes::new()).await.status, 405);
    assert_eq!(a.request_count() + b.request_count(), 0, "nothing on the internal listener is forwarded");
    r.shutdown().await;
}

#[test]
fn internal_listen_is_configurable_and_checked() {
    let base = "listen = \"127.0.0.1:8080\"\ndefault_cell = \"c\"\n[[cells]]\nname = \"c\"\nurl = \"http://127.0.0.1:1\"\n";
    let cfg = cells_router::Config::from_toml(base, &cells_router::Args::default()).unwrap();
    assert_eq!(cfg.internal_listen.to_string(), "127.0.0.1:9190");
    let args = cells_router::Args { internal_listen: Some("127.0.0.1:0".into()), ..Default::default() };
    assert_eq!(cells_router::Config::from_toml(base, &args).unwrap().internal_listen.to_string(), "127.0.0.1:0");
    let err = |t: &str| cells_router::Config::from_toml(t, &cells_router::Args::default()).unwrap_err().to_string();
    assert!(err(&format!("internal_listen = \"127.0.0.1:8080\"\n{base}")).contains("must differ from listen"));
    assert!(err(&format!("internal_listen = \"nine\"\n{base}")).contains("invalid internal_listen"));
    assert!(err(&format!("{base}[breaker]\nprobe = \"icmp\"\n")).contains("breaker.probe"));
    assert!(err(&format!("{base}[breaker]\nprobe_path = \"health\"\n")).contains("breaker.probe_path"));
    assert!(err(&format!("{base}[breaker]\nprobe_interval = \"0s\"\n")).contains("breaker.probe_interval"));
}
