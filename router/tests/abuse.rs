//! HTTP abuse against the router (issue 6, item 3), with raw TCP clients and raw fake cells
//! that record the exact bytes the router sends them: request smuggling probes, oversized
//! heads and paths, slow clients, clients that vanish mid-body, spoofed internal and
//! forwarding headers. Each probe checks the status, that the cells got nothing malformed
//! (count and raw head), that the cache was not poisoned, and that the router keeps serving.

#[path = "common/abuse_support.rs"]
mod abuse_support;
mod common;

use std::time::{Duration, Instant};

use abuse_support::*;
use common::answer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// `/org/proj` is cell_1's (a cacheable prefix); everything else is the default cell's, uncached.
fn learn(path: &str) -> String {
    if cells_learn::covers_prefix("/org/proj", path) {
        answer("/org/proj", "cell_1", "routable", false, true)
    } else {
        answer(path, "cell_0", "default", true, false)
    }
}

struct Setup {
    cells: Vec<RawCell>,
    router: cells_router::Running,
}

async fn setup(extra: &str) -> Setup {
    let cells = vec![RawCell::start("cell_0", learn).await, RawCell::start("cell_1", learn).await];
    let mut toml = format!(
        "name = \"router_test\"\nlisten = \"127.0.0.1:0\"\ninternal_listen = \"127.0.0.1:0\"\ndefault_cell = \"cell_0\"\ntrace_header = true\n{extra}\n"
    );
    for c in &cells {
        toml.push_str(&format!("[[cells]]\nname = \"{}\"\nurl = \"{}\"\n", c.name, c.url()));
    }
    let cfg = cells_router::Config::from_toml(&toml, &cells_router::Args::default()).unwrap();
    Setup { cells, router: cells_router::start(cfg).await.unwrap() }
}

impl Setup {
    fn addr(&self) -> std::net::SocketAddr {
        self.router.addr
    }

    /// Every forwarded request the cells read so far, with the cell's name.
    fn received(&self) -> Vec<(String, RawReq)> {
        self.cells.iter().flat_map(|c| c.requests().into_iter().map(|r| (c.name.clone(), r))).collect()
    }

    /// The cache holds nothing but what the cells answered: `/org/proj` for cell_1.
    fn assert_cache_clean(&self, probe: &str) {
        self.router.state.cache.run_pending_tasks();
        for e in self.router.state.cache.entries() {
            assert_eq!(e, ("/org/proj".to_string(), false, 1), "{probe}: the cache holds {e:?}");
        }
    }

    /// An ordinary request still goes through, to the right cell, promptly.
    async fn assert_serving(&self, probe: &str) {
        let started = Instant::now();
        let r = exchange(self.addr(), &get_request(b"/org/proj/-/issues"), Duration::from_secs(5)).await;
        assert_eq!((r.status, r.served_by()), (200, Some("cell_1")), "{probe}: the router stopped serving: {}", String::from_utf8_lossy(&r.raw));
        assert!(started.elapsed() < Duration::from_secs(2), "{probe}: a plain request took {:?}", started.elapsed());
    }
}

/// Every well-formedness rule a forwarded request must meet: one framing header at most,
/// `chunked` only, no folding, CRLF lines, a complete body, no internal or spoofed headers.
fn assert_well_formed(probe: &str, cell: &str, r: &RawReq) {
    assert!(r.error.is_none(), "{probe}: {cell} got a malformed request: {:?}\n{:#?}", r.error, r.head);
    assert!(r.complete, "{probe}: {cell} got an incomplete body ({} bytes)\n{:#?}", r.body.len(), r.head);
    for name in r.names() {
        assert!(
            !(name.starts_with("x-gitlab-cell") || name.starts_with("x-cells-router") || name.contains('_')),
            "{probe}: {cell} got the client's {name}\n{:#?}",
            r.head
        );
    }
    assert_eq!(r.headers("x-forwarded-for"), ["127.0.0.1"], "{probe}: {:#?}", r.head);
    assert_eq!(r.headers("x-forwarded-proto"), ["http"], "{probe}: {:#?}", r.head);
    assert!(r.head[0].ends_with(" HTTP/1.1"), "{probe}: request line {:?}", r.head[0]);
}

/// All responses on one connection, in order: (status, x-served-by).
fn statuses(mut raw: &[u8]) -> Vec<(u16, Option<String>)> {
    let mut out = Vec::new();
    while raw.starts_with(b"HTTP/1.") {
        let r = parse_response(raw);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { break };
        let len = r.header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        out.push((r.status, r.served_by().map(str::to_string)));
        raw = &raw[(end + 4 + len).min(raw.len())..];
    }
    out
}

struct Probe {
    name: &'static str,
    bytes: Vec<u8>,
    /// The first response's status: one of these.
    first: &'static [u16],
    /// At most this many requests reach a cell (a body that breaks while streaming reaches
    /// it cut short: the head and the bytes before the break, never an end).
    max_forwarded: usize,
}

fn probe(name: &'static str, bytes: &[u8], first: &'static [u16], max_forwarded: usize) -> Probe {
    Probe { name, bytes: bytes.to_vec(), first, max_forwarded }
}

const POST: &str = "POST /org/proj/-/issues HTTP/1.1\r\nHost: gitlab.example\r\n";

#[tokio::test]
async fn smuggling_and_framing_probes_are_refused_or_reframed() {
    let s = setup("").await;
    let p = |rest: &str| format!("{POST}{rest}").into_bytes();
    let probes = vec![
        // Both framings: Transfer-Encoding wins (RFC 9112 §6.3), the cell gets one framing.
        probe("CL+TE", &p("Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), &[200, 400], 1),
        probe(
            "TE+CL smuggling a second request",
            &p("Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n"),
            &[200, 400],
            2,
        ),
        probe("duplicate Content-Length, different", &p("Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), &[400], 0),
        probe("Content-Length list", &p("Content-Length: 5, 6\r\n\r\nhello!"), &[400], 0),
        probe("duplicate Content-Length, same", &p("Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"), &[200, 400], 1),
        probe("Content-Length +5", &p("Content-Length: +5\r\n\r\nhello"), &[400], 0),
        probe("Content-Length -1", &p("Content-Length: -1\r\n\r\nhello"), &[400], 0),
        probe("Content-Length 0x5", &p("Content-Length: 0x5\r\n\r\nhello"), &[400], 0),
        probe("Content-Length overflow", &p("Content-Length: 99999999999999999999999\r\n\r\nhello"), &[400], 0),
        probe("obsolete line folding", &p("X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"), &[400], 0),
        probe("folded Transfer-Encoding", &p("Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"), &[400], 0),
        probe("space before the colon", &p("Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), &[400], 0),
        probe("Transfer-Encoding: chunked, identity", &p("Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"), &[400], 0),
        probe("Transfer-Encoding: identity", &p("Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello"), &[400], 0),
        probe("Transfer-Encoding: xchunked", &p("Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"), &[400], 0),
        // A coding under the chunking (valid HTTP/1.1, RFC 9112 §6.1): re-chunked without it, the
        // cell would take the still-compressed bytes for the body.
        probe("Transfer-Encoding: gzip, chunked", &p("Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), &[400, 501], 0),
        probe("two Transfer-Encoding headers", &p("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"), &[400], 0),
        probe("invalid chunk size", &p("Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), &[400], 1),
        probe("chunk size overflow", &p("Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n"), &[400], 1),
        probe("negative chunk size", &p("Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"), &[400], 1),
        probe("chunk longer than its size", &p("Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"), &[400], 1),
        probe("chunk extension", &p("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=\"x\"\r\nhello\r\n0\r\n\r\n"), &[200], 1),
        probe(
            "HTTP/1.0 with Transfer-Encoding",
            b"POST /org/proj/-/issues HTTP/1.0\r\nHost: gitlab.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            &[400],
            0,
        ),
        probe("NUL in a header value", &p("X-A: a\0b\r\nContent-Length: 0\r\n\r\n"), &[400], 0),
        probe("bare CR in a header value", &p("X-A: a\rb\r\nContent-Length: 0\r\n\r\n"), &[400], 0),
        probe("header name with a space", &p("X A: b\r\nContent-Length: 0\r\n\r\n"), &[400], 0),
        probe("bare LF line endings", b"GET /org/proj/x HTTP/1.1\nHost: gitlab.example\nConnection: close\n\n", &[200, 400], 1),
        probe(
            "body longer than Content-Length",
            &p("Content-Length: 5\r\n\r\nhelloGET /admin HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n"),
            &[200],
            2,
        ),
        probe("absolute-form target", b"GET http://evil.example/org/proj HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n", &[400], 0),
        probe("authority-form target", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n", &[400], 0),
        probe("asterisk-form target", b"OPTIONS * HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n", &[400], 0),
    ];
    let mut outcomes = Vec::new();
    for pr in &probes {
        let before = s.received().len();
        let r = exchange(s.addr(), &pr.bytes, Duration::from_secs(3)).await;
        let got = statuses(&r.raw);
        let first = got.first().map(|g| g.0).unwrap_or(0);
        assert!(
            pr.first.contains(&first),
            "{}: first status {first} (all {got:?}), expected one of {:?}\n{}",
            pr.name,
            pr.first,
            String::from_utf8_lossy(&r.raw)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let new: Vec<(String, RawReq)> = s.received().into_iter().skip(before).collect();
        let served = got.iter().filter(|g| g.1.is_some()).count();
        assert!(new.len() <= pr.max_forwarded, "{}: {} requests reached the cells: {new:#?}", pr.name, new.len());
        // A client body that breaks while streaming is answered 400: the cell got the head and
        // the bytes before the break, never a completed request.
        let incomplete_ok = first == 400;
        for (cell, req) in &new {
            if incomplete_ok && req.error.is_none() && !req.complete {
                continue; // the router aborted the upstream request when the client's body broke
            }
            assert_well_formed(pr.name, cell, req);
            assert!(!String::from_utf8_lossy(&req.body).contains("HTTP/1.1"), "{}: a request smuggled in a body reached {cell}", pr.name);
            assert!(req.target().starts_with("/org/proj/") || req.target() == "/admin", "{}: {cell} got {:?}", pr.name, req.target());
            if req.target() == "/admin" {
                // Only as a request the router itself parsed and answered.
                assert!(got.len() >= 2, "{}: /admin reached {cell} without the router answering it: {got:?}", pr.name);
            }
        }
        // Every request a cell answered is one the client got a response to, and vice versa.
        assert_eq!(new.iter().filter(|(_, r)| r.complete).count(), served, "{}: cells {new:#?} vs responses {got:?}", pr.name);
        s.assert_cache_clean(pr.name);
        s.assert_serving(pr.name).await;
        outcomes.push(format!("{}: {}", pr.name, got.iter().map(|g| g.0.to_string()).collect::<Vec<_>>().join("+")));
    }
    println!("[abuse] {} framing probes: {}", probes.len(), outcomes.join(", "));
    s.router.shutdown().await;
}

#[tokio::test]
async fn oversized_heads_and_paths() {
    let s = setup("[limits]\nmax_header_bytes = 16384\nmax_path_bytes = 8192\n").await;
    let big_header = format!("GET /org/proj/x HTTP/1.1\r\nHost: gitlab.example\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(20_000));
    let many_headers = format!(
        "GET /org/proj/x HTTP/1.1\r\nHost: gitlab.example\r\n{}Connection: close\r\n\r\n",
        (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    let long_path = get_request(format!("/org/proj/{}", "p".repeat(9000)).as_bytes());
    let path_at_limit = get_request(format!("/org/proj/{}", "p".repeat(8192 - 10)).as_bytes());
    let huge_path = get_request(format!("/org/proj/{}", "p".repeat(70_000)).as_bytes());
    for (name, bytes, want) in [
        ("header over max_header_bytes", big_header.into_bytes(), 431),
        ("200 headers", many_headers.into_bytes(), 431),
        ("path over max_path_bytes", long_path, 414),
        ("path of max_path_bytes", path_at_limit, 200),
        ("path over the head limit", huge_path, 431),
    ] {
        let before = s.received().len();
        let r = exchange(s.addr(), &bytes, Duration::from_secs(5)).await;
        assert_eq!(r.status, want, "{name}: {}", String::from_utf8_lossy(&r.raw[..r.raw.len().min(300)]));
        let new = s.received().len() - before;
        assert_eq!(new, usize::from(want == 200), "{name}: {new} requests reached a cell");
        for (cell, req) in s.received().iter().skip(before) {
            assert_well_formed(name, cell, req);
        }
        s.assert_cache_clean(name);
        s.assert_serving(name).await;
    }
    s.router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_at_header_read_and_others_are_served_meanwhile() {
    let s = setup("[timeouts]\nheader_read = \"1s\"\n").await;
    // 40 clients dribbling a head one byte every 50 ms, forever.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let addr = s.addr();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut c = TcpStream::connect(addr).await.unwrap();
            let head = b"GET /org/proj/-/issues HTTP/1.1\r\nHost: gitlab.example\r\nX-Slow: ".to_vec();
            let mut i = 0usize;
            loop {
                let byte = if i < head.len() { head[i] } else { b'a' };
                if c.write_all(&[byte]).await.is_err() {
                    break;
                }
                i += 1;
                if started.elapsed() > Duration::from_secs(6) {
                    return (started.elapsed(), false, Vec::new());
                }
                // The router closing the connection shows up as a read of 0 or a write error.
                let mut peek = [0u8; 512];
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), tokio::io::AsyncReadExt::read(&mut c, &mut peek)).await {
                    return (started.elapsed(), true, peek[..n].to_vec());
                }
            }
            (started.elapsed(), true, Vec::new())
        }));
    }
    // Meanwhile ordinary clients are served without delay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut served = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let r = exchange(s.addr(), &get_request(b"/org/proj/-/merge_requests"), Duration::from_secs(5)).await;
        assert_eq!((r.status, r.served_by()), (200, Some("cell_1")));
        assert!(started.elapsed() < Duration::from_millis(500), "a request took {:?} beside the slow clients", started.elapsed());
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut cut = Vec::new();
    for t in slow {
        let (after, closed, bytes) = t.await.unwrap();
        assert!(closed, "a slow client was still connected after {after:?}");
        assert!(after >= Duration::from_millis(900) && after < Duration::from_secs(3), "a slow client was cut after {after:?}");
        // Nothing, or a 408: never a response from a cell.
        let text = String::from_utf8_lossy(&bytes);
        assert!(bytes.is_empty() || text.starts_with("HTTP/1.1 408"), "the slow client got {text:?}");
        cut.push(after.as_millis());
    }
    // None of the slow requests reached a cell.
    assert_eq!(s.received().len(), served, "{:#?}", s.received());
    // A client slow but within header_read is served.
    let mut c = TcpStream::connect(s.addr()).await.unwrap();
    for b in get_request(b"/org/proj/-/issues?slow=1") {
        c.write_all(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = read_all(&mut c, Duration::from_secs(3)).await;
    assert_eq!((r.status, r.served_by()), (200, Some("cell_1")), "{}", String::from_utf8_lossy(&r.raw));
    println!(
        "[abuse] 40 slow clients cut after {}..{} ms (header_read 1s); {served} requests served meanwhile",
        cut.iter().min().unwrap(),
        cut.iter().max().unwrap()
    );
    s.assert_cache_clean("slow clients");
    s.router.shutdown().await;
}

#[tokio::test]
async fn clients_vanishing_mid_body_never_deliver_a_complete_wrong_body() {
    let s = setup("").await;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut cl = format!("{POST}Content-Length: 100000\r\n\r\n").into_bytes();
    cl.extend(std::iter::repeat_n(b'x', 10_000));
    cases.push(("Content-Length body cut at 10%", cl));
    let mut ch = format!("{POST}Transfer-Encoding: chunked\r\n\r\n186a0\r\n").into_bytes();
    ch.extend(std::iter::repeat_n(b'y', 10_000));
    cases.push(("chunk cut inside", ch));
    let ch2 = format!("{POST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").into_bytes();
    cases.push(("chunked body without its last chunk", ch2));
    cases.push(("head only, body promised", format!("{POST}Content-Length: 10\r\n\r\n").into_bytes()));
    for (name, bytes) in cases {
        let before = s.received().len();
        let mut c = TcpStream::connect(s.addr()).await.unwrap();
        c.write_all(&bytes).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(c);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let new: Vec<(String, RawReq)> = s.received().into_iter().skip(before).collect();
        assert!(new.len() <= 1, "{name}: {new:#?}");
        for (cell, req) in &new {
            assert!(req.error.is_none(), "{name}: {cell} got a malformed request: {:?}", req.error);
            assert!(!req.complete, "{name}: {cell} got a complete request of {} bytes from a client that vanished", req.body.len());
            assert!(req.body.iter().all(|&b| b == b'x' || b == b'y' || b"hello".contains(&b)), "{name}: foreign bytes in the body");
        }
        s.assert_cache_clean(name);
        s.assert_serving(name).await;
    }
    s.router.shutdown().await;
}

#[tokio::test]
async fn spoofed_internal_and_forwarding_headers_never_reach_a_cell() {
    let s = setup("").await;
    let spoof = "X-Gitlab-Cell-Cache: path=/; cell=cell_1\r\n\
                 X-Gitlab-Cell-Owner: cell_1\r\n\
                 X-Gitlab-Cell-Claimed-Organization: 1\r\n\
                 x-GITLAB-cell-whatever: 1\r\n\
                 X-Cells-Router-Trace: router=evil\r\n\
                 X-Cells-Router: evil\r\n\
                 X_Gitlab_Cell_Cache: path=/; cell=cell_1\r\n\
                 X_Cells_Router_Trace: evil\r\n\
                 X-Forwarded-For: 6.6.6.6\r\n\
                 X-Forwarded-For: 7.7.7.7\r\n\
                 X_Forwarded_For: 8.8.8.8\r\n\
                 X-Forwarded-Proto: https\r\n\
                 X_Forwarded_Proto: https\r\n\
                 X-Forwarded-Host: evil.example\r\n\
                 X_Forwarded_Host: evil.example\r\n\
                 X-Real_IP: 9.9.9.9\r\n\
                 X-Real-IP: 9.9.9.9\r\n\
                 Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n";
    for (name, target, conn) in [
        ("spoofed headers on a cached route", "/org/proj/-/issues", "close"),
        ("spoofed headers on an uncached route", "/someone/else", "close"),
        // Connection naming the headers the router sets: they are set after hop-by-hop removal.
        ("Connection naming X-Forwarded-For", "/org/proj/-/issues", "close, x-forwarded-for, x-forwarded-proto, x-forwarded-host"),
    ] {
        let before = s.received().len();
        let req = format!("GET {target} HTTP/1.1\r\nHost: gitlab.example\r\n{spoof}Connection: {conn}\r\n\r\n");
        let r = exchange(s.addr(), req.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(r.status, 200, "{name}: {}", String::from_utf8_lossy(&r.raw));
        assert!(!r.trace().contains("evil"), "{name}: {}", r.trace());
        let new: Vec<(String, RawReq)> = s.received().into_iter().skip(before).collect();
        assert_eq!(new.len(), 1, "{name}: {new:#?}");
        let (cell, got) = &new[0];
        assert_well_formed(name, cell, got);
        assert_eq!(got.headers("x-forwarded-host"), ["gitlab.example"], "{name}");
        assert_eq!(got.headers("host"), ["gitlab.example"], "{name}");
        // X-Real-IP is the router's (the peer), as nginx sets it; a client's Forwarded is dropped.
        assert_eq!(got.headers("x-real-ip"), ["127.0.0.1"], "{name}: {:#?}", got.head);
        assert!(got.headers("x-real_ip").is_empty() && got.headers("forwarded").is_empty(), "{name}: {:#?}", got.head);
        s.assert_cache_clean(name);
    }
    // The spoofed cache header named cell_1 for "/": nothing but /org/proj may point there.
    let r = exchange(s.addr(), &get_request(b"/someone/else"), Duration::from_secs(5)).await;
    assert_eq!(r.served_by(), Some("cell_0"));
    s.assert_serving("spoofed headers").await;
    s.router.shutdown().await;
}

/// The responses on one connection, in order, as a client reads them: each framed by its
/// Content-Length, except the answer to a HEAD (`heads[i]`), which has no body whatever its
/// length says (RFC 9110 §9.3.2).
fn split_responses(raw: &[u8], heads: &[bool]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    let mut rest = raw;
    for &head in heads {
        let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else { break };
        let mut r = parse_response(&rest[..end + 4]);
        let len = if head { 0 } else { r.header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0) };
        let body_end = (end + 4 + len).min(rest.len());
        r.body = rest[end + 4..body_end].to_vec();
        r.raw = rest[..body_end].to_vec();
        out.push(r);
        rest = &rest[body_end..];
    }
    out
}

/// One request of a pipelined run: its bytes, its target, the cell that must serve it, the body
/// the cell must get, and whether it is a HEAD (its answer has no body).
struct Piped {
    wire: &'static [u8],
    target: &'static str,
    cell: &'static str,
    body: &'static [u8],
    head: bool,
}

/// HTTP/1.1 pipelining (RFC 9112 §9.3.2): a client may send its next requests before the first
/// answer. Written in one piece (and once more a byte at a time, so that each request's end
/// arrives separately from the next one's start), five requests for two cells — a cached
/// namespace's GET, another namespace's POST with a Content-Length body, a chunked POST, a HEAD
/// and a last GET with `Connection: close` — are answered in the order sent on the one
/// connection, each forwarded once, to its own cell, with its body intact and framed once;
/// nothing is left over after the close.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order_each_by_its_cell() {
    let s = setup("").await;
    let requests = [
        Piped {
            wire: b"GET /org/proj/-/issues HTTP/1.1\r\nHost: gitlab.example\r\n\r\n",
            target: "/org/proj/-/issues",
            cell: "cell_1",
            body: b"",
            head: false,
        },
        Piped {
            wire: b"POST /other/thing HTTP/1.1\r\nHost: gitlab.example\r\nContent-Length: 5\r\n\r\nhello",
            target: "/other/thing",
            cell: "cell_0",
            body: b"hello",
            head: false,
        },
        Piped {
            wire: b"POST /org/proj/-/notes HTTP/1.1\r\nHost: gitlab.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            target: "/org/proj/-/notes",
            cell: "cell_1",
            body: b"abcde",
            head: false,
        },
        Piped { wire: b"HEAD /org/proj HTTP/1.1\r\nHost: gitlab.example\r\n\r\n", target: "/org/proj", cell: "cell_1", body: b"", head: true },
        Piped {
            wire: b"GET /other/last HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n",
            target: "/other/last",
            cell: "cell_0",
            body: b"",
            head: false,
        },
    ];
    let wire: Vec<u8> = requests.iter().flat_map(|r| r.wire.iter().copied()).collect();
    let heads: Vec<bool> = requests.iter().map(|r| r.head).collect();
    for dribbled in [false, true] {
        let how = if dribbled { "a byte at a time" } else { "in one write" };
        // What each cell had read before (`received` lists the cells one after the other).
        let before: Vec<usize> = s.cells.iter().map(|c| c.requests().len()).collect();
        let mut c = TcpStream::connect(s.addr()).await.unwrap();
        if dribbled {
            for b in &wire {
                c.write_all(std::slice::from_ref(b)).await.unwrap();
            }
        } else {
            c.write_all(&wire).await.unwrap();
        }
        let all = read_all(&mut c, Duration::from_secs(5)).await;
        assert!(all.closed, "{how}: the connection stayed open after `Connection: close`");
        let answers = split_responses(&all.raw, &heads);
        assert_eq!(answers.len(), requests.len(), "{how}: {}", show(&all.raw));
        let answered: usize = answers.iter().map(|a| a.raw.len()).sum();
        assert_eq!(answered, all.raw.len(), "{how}: bytes after the last answer: {}", show(&all.raw[answered..]));
        for (i, (r, answer)) in requests.iter().zip(&answers).enumerate() {
            assert_eq!((answer.status, answer.served_by()), (200, Some(r.cell)), "{how}: answer {i} ({}): {}", r.target, show(&answer.raw));
            // The cell echoes what it read: the answer is this request's, not a neighbour's.
            assert_eq!(answer.body, r.body, "{how}: answer {i} ({})", r.target);
        }
        let forwarded: Vec<(String, RawReq)> =
            s.cells.iter().zip(&before).flat_map(|(c, &n)| c.requests().into_iter().skip(n).map(|r| (c.name.clone(), r))).collect();
        let mut sent: Vec<(String, String, Vec<u8>)> = forwarded.iter().map(|(cell, r)| (cell.clone(), r.target().to_string(), r.body.clone())).collect();
        let mut want: Vec<(String, String, Vec<u8>)> = requests.iter().map(|r| (r.cell.to_string(), r.target.to_string(), r.body.to_vec())).collect();
        sent.sort();
        want.sort();
        assert_eq!(sent, want, "{how}: each request forwarded once, to its cell, with its body");
        for (cell, got) in &forwarded {
            assert_well_formed(how, cell, got);
        }
        s.assert_cache_clean(how);
    }
    s.assert_serving("pipelining").await;
    s.router.shutdown().await;
}
