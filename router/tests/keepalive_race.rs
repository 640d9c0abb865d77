//! The idle keep-alive race (issue 14, item 9): a cell closes an idle connection just as the
//! router reuses it from its pool.
//!
//! The cell here is a bare HTTP/1.1 server that behaves as a busy server does at its keep-alive
//! timeout: once a connection has been idle for `IDLE`, it decides to close it, and the close
//! itself happens `LAG` later without reading what arrived meanwhile (Puma's reactor and Go's
//! http.Server both close from a timer, not from a read). A request that reaches the connection
//! in that window was written by the router and never read by the cell: the router sees the
//! connection reset or closed with no response. Requests come 85–115 ms apart, so some land in
//! the window (gaps of 100–104 ms): before the fix each of those failed with 502.
//!
//! The cell counts every request it read, by its unique path: none may be read twice.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The cell's keep-alive timeout.
const IDLE: Duration = Duration::from_millis(100);
/// How long after deciding to close the cell really closes (the race window).
const LAG: Duration = Duration::from_millis(5);
const REQUESTS: usize = 80;

struct RacyCell {
    addr: SocketAddr,
    /// Paths of the requests the cell read, with how often each was read.
    read: Arc<Mutex<HashMap<String, usize>>>,
    /// Requests that arrived on a connection the cell had decided to close (never read).
    dropped: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    /// The header lines of each request under `/group/` the cell read, as they came.
    heads: Arc<Mutex<Vec<String>>>,
}

impl RacyCell {
    async fn start() -> RacyCell {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cell = RacyCell { addr, read: Arc::default(), dropped: Arc::default(), connections: Arc::default(), heads: Arc::default() };
        let (read, dropped, connections, heads) = (cell.read.clone(), cell.dropped.clone(), cell.connections.clone(), cell.heads.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, read.clone(), dropped.clone(), heads.clone()));
            }
        });
        cell
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn times_read(&self, path: &str) -> usize {
        self.read.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// One connection: requests with a Content-Length body (or none); the learn endpoint answers
/// that `/group` lives on this cell.
async fn serve(mut sock: TcpStream, read: Arc<Mutex<HashMap<String, usize>>>, dropped: Arc<AtomicUsize>, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    loop {
        let idle_since = Instant::now();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let left = IDLE.saturating_sub(idle_since.elapsed());
            match tokio::time::timeout(left, sock.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => {
                    // Idle too long: close, but only after the lag, and without reading what
                    // came meanwhile (dropping unread data makes the kernel send a reset).
                    tokio::time::sleep(LAG).await;
                    let mut probe = [0u8; 1];
                    if let Ok(Ok(n)) = tokio::time::timeout(Duration::ZERO, sock.peek(&mut probe)).await {
                        if n > 0 {
                            dropped.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    return;
                }
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let length: usize = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim().parse().unwrap()))
            .unwrap_or(0);
        while buf.len() < length {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        let body = if target.starts_with(LEARN) {
            answer("/group", "cell_r", "routable", false, true)
        } else {
            let path = target.split('?').next().unwrap().to_string();
            if path.starts_with("/group/") {
                heads.lock().unwrap().push(head.split_once("\r\n").map_or("", |(_, h)| h).to_string());
            }
            *read.lock().unwrap().entry(path).or_default() += 1;
            format!("read {length} bytes")
        };
        // A HEAD answer has the length a GET's would, but no body.
        let sent = if head.starts_with("HEAD ") { "" } else { body.as_str() };
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{sent}", body.len());
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The gap before request `i`: 85..=115 ms, spread evenly, deterministic.
fn gap(i: usize) -> Duration {
    Duration::from_millis(85 + (i as u64 * 7) % 31)
}

fn retries(r: &cells_router::Running, reason: &'static str) -> u64 {
    r.state.metrics.upstream_retries.get_or_create(&cells_router::metrics::CellReasonLabels { cell: "cell_r".into(), reason }).get()
}

async fn racy_router(cell: &RacyCell, extra: &str) -> cells_router::Running {
    let toml = format!(
        "name = \"router_test\"\nlisten = \"127.0.0.1:0\"\ninternal_listen = \"127.0.0.1:0\"\ndefault_cell = \"cell_r\"\n{extra}\n[[cells]]\nname = \"cell_r\"\nurl = \"{}\"\n",
        cell.url()
    );
    cells_router::start(cells_router::Config::from_toml(&toml, &cells_router::Args::default()).unwrap()).await.unwrap()
}

/// The router's idle timeout below the cell's keep-alive timeout, as documented: GETs and POSTs
/// alternate, every one is answered, and the cell reads each exactly once.
#[tokio::test]
async fn requests_85_to_115_ms_apart_all_succeed_once() {
    let cell = RacyCell::start().await;
    let r = racy_router(&cell, "[upstream]\nidle_timeout = \"80ms\"").await;
    let c = client();
    let mut failed = Vec::new();
    for i in 0..REQUESTS {
        tokio::time::sleep(gap(i)).await;
        let path = format!("/group/project/-/r{i}");
        let g = if i % 2 == 0 { get(&c, r.addr, &path).await } else { send(&c, r.addr, "POST", &path, &[], Bytes::from(vec![b'x'; 1000])).await };
        if g.status != 200 {
            failed.push((i, g.status, String::from_utf8_lossy(&g.body).to_string()));
        }
    }
    assert!(failed.is_empty(), "{} of {REQUESTS} failed: {failed:?}", failed.len());
    for i in 0..REQUESTS {
        assert_eq!(cell.times_read(&format!("/group/project/-/r{i}")), 1, "request {i}");
    }
    assert_eq!(cell.dropped.load(Ordering::SeqCst), 0, "no request reached a connection the cell was closing");
    r.shutdown().await;
}

/// The router's idle timeout above the cell's (the race happens): idempotent requests without a
/// body that the cell never read are sent again, once, on a fresh connection, and counted.
#[tokio::test]
async fn gets_lost_to_a_closing_connection_are_retried_on_a_fresh_one() {
    let cell = RacyCell::start().await;
    let r = racy_router(&cell, "").await;
    let c = client();
    let mut failed = Vec::new();
    for i in 0..REQUESTS {
        tokio::time::sleep(gap(i)).await;
        let path = format!("/group/project/-/g{i}");
        let method = if i % 2 == 0 { "GET" } else { "HEAD" };
        let g = send(&c, r.addr, method, &path, &CLIENT_HEADERS, Bytes::new()).await;
        if g.status != 200 {
            failed.push((i, g.status, String::from_utf8_lossy(&g.body).to_string()));
        }
    }
    assert!(failed.is_empty(), "{} of {REQUESTS} failed: {failed:?}", failed.len());
    for i in 0..REQUESTS {
        assert_eq!(cell.times_read(&format!("/group/project/-/g{i}")), 1, "request {i}");
    }
    // The race did happen (the window holds gaps of 100–104 ms): every request the cell dropped
    // unread was written, so it was sent again (a request that reached the connection between
    // the cell's look and its close is resent too, without having been counted as dropped).
    let lost = cell.dropped.load(Ordering::SeqCst) as u64;
    assert!(lost >= 1, "the cell never dropped a request: the test did not reproduce the race");
    assert!(retries(&r, "reset_idempotent") >= lost, "{} retries for {lost} dropped", retries(&r, "reset_idempotent"));
    // A resend carries the headers the lost request had, byte for byte and in their order:
    // every request the cell read has the same header lines.
    let heads = cell.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), REQUESTS);
    assert!(heads.iter().all(|h| *h == heads[0]), "requests with different headers: {heads:#?}");
    for line in ["accept: text/html\r\naccept: application/json\r\n", "x-custom: 1\r\n", "x-forwarded-for: 127.0.0.1\r\n"] {
        assert!(heads[0].contains(line), "{line:?} missing from {:?}", heads[0]);
    }
    r.shutdown().await;
}

/// Client headers of the resent requests: a repeated name, a custom one.
const CLIENT_HEADERS: [(&str, &str); 3] = [("accept", "text/html"), ("accept", "application/json"), ("x-custom", "1")];

/// A POST whose body was written to a connection the cell then closed unread is not sent again:
/// the router cannot know whether the cell acted on it. 502, and the cell read it zero times.
#[tokio::test]
async fn a_post_whose_body_was_sent_is_not_retried() {
    let cell = RacyCell::start().await;
    let r = racy_router(&cell, "").await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/group/project").await.status, 200);
    // Inside the window: the cell has decided to close but has not yet.
    tokio::time::sleep(IDLE + LAG / 5).await;
    let g = send(&c, r.addr, "POST", "/group/project/-/uploads", &[], Bytes::from(vec![b'y'; 2000])).await;
    assert_eq!(g.status, 502, "{}", String::from_utf8_lossy(&g.body));
    assert_eq!(g.json()["error"], "bad_gateway");
    assert_eq!(cell.times_read("/group/project/-/uploads"), 0);
    assert_eq!(retries(&r, "reset_idempotent"), 0);
    // The next request is fine (a fresh connection).
    assert_eq!(get(&c, r.addr, "/group/project/-/after").await.status, 200);
    r.shutdown().await;
}
