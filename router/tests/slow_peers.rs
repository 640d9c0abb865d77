//! Slow peers on GitLab's real traffic.
//!
//! Uploads that take longer than the request timeout: GitLab's real traffic is full of them
//! (`git push` of a large repository, LFS objects, CI artifacts, package uploads, each answered
//! only once the cell has read the whole body). The request timeout bounds the cell's silence,
//! as nginx's `proxy_read_timeout` does, not the client's upload: it runs from the request's last
//! body byte handed to the cell (from the request itself when it has no body), so an upload that
//! keeps moving is never cut, a cell that goes quiet after the body still is, and a client that
//! stops sending mid-body gets a `408` (its fault, as nginx's `client_body_timeout` answers),
//! not a `504` blaming the cell.
//!
//! And clients that stop reading their answer: after `timeouts.client_write` of blocked writes
//! (nginx's `send_timeout`) the client is let go and the cell's connection closed, so that no
//! client can hold a cell's worker by opening a download and reading nothing.

#[path = "common/abuse_support.rs"]
mod abuse_support;
mod common;

use std::time::{Duration, Instant};

use abuse_support::{read_all, RawResponse};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TIMEOUT: &str = "[timeouts]\nrequest = \"300ms\"\n";

async fn cells() -> (FakeCell, FakeCell) {
    let t = || table(&[("/org/proj", "cell_b", "routable", false, true)], "cell_a");
    (FakeCell::start("cell_a", t()).await, FakeCell::start("cell_b", t()).await)
}

/// The two cells with cell_b answering only after 3 s, behind a router with a 300 ms request
/// timeout.
async fn cell_b_silent() -> (FakeCell, FakeCell, cells_router::Running) {
    let (a, b) = cells().await;
    b.set_app(|_: &Recorded| AppReply { status: 200, delay: Some(Duration::from_secs(3)), ..Default::default() });
    let r = router(TIMEOUT, "cell_a", &[&a, &b]).await;
    (a, b, r)
}

/// Reads a request head off `s` (None: the connection ended first).
async fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// A router with the fake cell_a (whose learn table puts `/org/proj` on cell_b) and a raw
/// cell_b at `b_addr`; `extra` is TOML for the router.
async fn router_with_raw_b(extra: &str, a: &FakeCell, b_addr: std::net::SocketAddr) -> cells_router::Running {
    let mut toml = router_toml(extra, "cell_a", &[a]);
    toml.push_str(&format!("[[cells]]\nname = \"cell_b\"\nurl = \"http://{b_addr}\"\n"));
    let cfg = cells_router::Config::from_toml(&toml, &cells_router::Args::default()).unwrap();
    cells_router::start(cfg).await.unwrap()
}

/// A chunked POST whose `chunks` chunks of `size` bytes are written `gap` apart, then the last
/// chunk (unless `finish` is false: the client then stops writing and waits). Returns the
/// response and when the last byte was written.
async fn upload(addr: std::net::SocketAddr, chunks: usize, size: usize, gap: Duration, finish: bool) -> (RawResponse, Instant) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /org/proj/-/uploads HTTP/1.1\r\nHost: gitlab.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").await.unwrap();
    let piece = vec![b'x'; size];
    for i in 0..chunks {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let mut chunk = format!("{size:x}\r\n").into_bytes();
        chunk.extend_from_slice(&piece);
        chunk.extend_from_slice(b"\r\n");
        // The router may have answered already (the bug this file is about): stop writing then.
        if s.write_all(&chunk).await.is_err() {
            break;
        }
    }
    if finish {
        let _ = s.write_all(b"0\r\n\r\n").await;
    }
    let last_byte = Instant::now();
    (read_all(&mut s, Duration::from_secs(5)).await, last_byte)
}

/// Twelve chunks 100 ms apart: 1.1 s of upload under a 300 ms request timeout, forwarded whole.
#[tokio::test]
async fn an_upload_longer_than_the_request_timeout_reaches_its_cell() {
    let (a, b) = cells().await;
    let r = router(TIMEOUT, "cell_a", &[&a, &b]).await;
    let started = Instant::now();
    let (resp, _) = upload(r.addr, 12, 1000, Duration::from_millis(100), true).await;
    assert_eq!(resp.status, 200, "after {:?}: {}", started.elapsed(), String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.served_by(), Some("cell_b"));
    assert_eq!(resp.body.len(), 12_000, "the cell echoes the body it got");
    assert_eq!(b.requests().iter().map(|q| q.body_len).collect::<Vec<_>>(), vec![12_000]);
    assert!(started.elapsed() >= Duration::from_millis(1100), "{:?}", started.elapsed());
    r.shutdown().await;
}

/// The whole body arrives, then the cell says nothing: `504` one request timeout after the body's
/// last byte, neither earlier (counted from the request's start) nor never.
#[tokio::test]
async fn a_cell_silent_after_the_body_still_times_out_from_the_bodys_end() {
    let (_a, _b, r) = cell_b_silent().await;
    let (resp, last_byte) = upload(r.addr, 6, 1000, Duration::from_millis(100), true).await;
    let after_body = last_byte.elapsed();
    assert_eq!(resp.status, 504, "{}", String::from_utf8_lossy(&resp.body));
    assert!(String::from_utf8_lossy(&resp.body).contains("cell_timeout"));
    assert!(after_body >= Duration::from_millis(250) && after_body < Duration::from_millis(1500), "answered {after_body:?} after the body's end");
    r.shutdown().await;
}

/// The client stops sending mid-body: after one request timeout without a byte it gets a `408`
/// (its own fault), the cell is not blamed, and its request never completes at the cell.
#[tokio::test]
async fn a_client_that_stops_mid_body_gets_408() {
    let (a, b) = cells().await;
    let r = router(TIMEOUT, "cell_a", &[&a, &b]).await;
    let (resp, last_byte) = upload(r.addr, 3, 1000, Duration::from_millis(100), false).await;
    let stalled = last_byte.elapsed();
    assert_eq!(resp.status, 408, "{}", String::from_utf8_lossy(&resp.body));
    assert!(String::from_utf8_lossy(&resp.body).contains("client_body_timeout"), "{}", String::from_utf8_lossy(&resp.body));
    assert!(stalled >= Duration::from_millis(250) && stalled < Duration::from_millis(1500), "answered {stalled:?} after the last byte");
    assert!(b.requests().is_empty(), "the cell got no complete request");
    // The cell is not marked down for a client's stall: the next request is served.
    let c = client();
    assert_eq!(get(&c, r.addr, "/org/proj").await.served_by(), "cell_b");
    r.shutdown().await;
}

/// A body-less request keeps the plain deadline: the cell's answer within the timeout of the
/// request's start.
#[tokio::test]
async fn a_bodyless_request_still_times_out_from_its_start() {
    let (_a, _b, r) = cell_b_silent().await;
    let c = client();
    let started = Instant::now();
    let g = get(&c, r.addr, "/org/proj").await;
    assert_eq!(g.status, 504);
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    r.shutdown().await;
}

/// The cell stops reading mid-body (its buffers and the router's fill, and hyper stops asking the
/// client for more): that silence is the cell's, `504`, not the client's `408`.
#[tokio::test]
async fn a_cell_that_stops_reading_the_body_is_the_one_timed_out() {
    use tokio::io::AsyncReadExt;
    let a = FakeCell::start("cell_a", table(&[("/org/proj", "cell_b", "routable", false, true)], "cell_a")).await;
    // cell_b: answers its health probes; takes an upload's head and then reads nothing more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else { return };
                if head.starts_with(b"POST") {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                } else {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                }
            });
        }
    });
    let r = router_with_raw_b(TIMEOUT, &a, b_addr).await;

    const BODY: usize = 256 << 20;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(format!("POST /org/proj/-/uploads HTTP/1.1\r\nHost: gitlab.test\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let piece = vec![b'x'; 1 << 20];
        for _ in 0..BODY >> 20 {
            if wr.write_all(&piece).await.is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the whole answer is in (the router need not close at once: hyper may read on for a
    // while what the client is still sending).
    let answered = |got: &[u8]| {
        let r = abuse_support::parse_response(got);
        r.status != 0 && r.header("content-length").and_then(|l| l.parse::<usize>().ok()) == Some(r.body.len())
    };
    while !answered(&got) {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    writer.abort();
    let resp = abuse_support::parse_response(&got);
    assert_eq!(resp.status, 504, "after {:?}: {}", started.elapsed(), String::from_utf8_lossy(&got));
    assert!(String::from_utf8_lossy(&resp.body).contains("cell_timeout"));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    r.shutdown().await;
}

/// A client opens a large download and stops reading after 100 KB: once the router's writes to
/// it have been blocked for `client_write`, it is disconnected and the cell's connection closed
/// (the cell's worker, writing, sees the close at once instead of blocking for ever).
#[tokio::test]
async fn a_client_that_stops_reading_is_let_go_and_frees_the_cell() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    let a = FakeCell::start("cell_a", table(&[("/org/proj", "cell_b", "routable", false, true)], "cell_a")).await;
    // cell_b: answers health probes; a download is 1 GiB written 1 MiB at a time, and the cell
    // notes when a write fails (the router closed its connection).
    let freed = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_addr = listener.local_addr().unwrap();
    let flag = freed.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let flag = flag.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else { return };
                if !head.starts_with(b"GET /org/proj/-/archive") {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                    return;
                }
                let _ = s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 1u64 << 30).as_bytes()).await;
                let piece = vec![b'z'; 1 << 20];
                for _ in 0..1024 {
                    if s.write_all(&piece).await.is_err() {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    let r = router_with_raw_b("[timeouts]\nclient_write = \"300ms\"\n", &a, b_addr).await;

    let mut c = TcpStream::connect(r.addr).await.unwrap();
    c.write_all(b"GET /org/proj/-/archive/main.zip HTTP/1.1\r\nHost: gitlab.test\r\n\r\n").await.unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    while got < 100 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.expect("the download started").unwrap();
        assert!(n > 0, "closed after {got} bytes");
        got += n;
    }
    // Reads nothing more. The cell is freed within a few seconds (the socket buffers fill first).
    let started = Instant::now();
    while !freed.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed.load(Ordering::SeqCst), "the cell's worker was still writing after {:?}", started.elapsed());
    // And the client's connection is gone: what it reads now ends (EOF or reset) well short of
    // the answer's length.
    let mut rest = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => rest += n,
            Err(_) => panic!("the client's connection is still open after {} more bytes", rest),
        }
    }
    assert!(got + rest < 1 << 30);
    r.shutdown().await;
}
