//! Cells that frame their answers as real servers sometimes do, which hyper-built fake cells
//! never do: a body delimited by the cell closing its connection (no `Content-Length`, no
//! chunking: HTTP/1.0 servers, and HTTP/1.1 ones answering `Connection: close`), and an answer
//! sent before the request body was read (a cell refusing an upload it will not take, as
//! Workhorse and Puma answer 413 to an over-long body). The cell here is a raw TCP server; the
//! client is a raw TCP client; the router in between is the real one.

#[path = "common/abuse_support.rs"]
mod abuse_support;
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abuse_support::{read_all, read_exact_into, read_until, show};
use common::answer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the raw cell answers a forwarded request (learn requests are always answered `default`,
/// uncached, for cell_0: every path is this cell's).
#[derive(Clone, Copy)]
enum Framing {
    /// `HTTP/1.1 200` with `Connection: close` and no length: the body ends when the cell closes.
    CloseDelimited11,
    /// `HTTP/1.0 200` without a length: the same, the HTTP/1.0 way.
    CloseDelimited10,
    /// `413` with a short body as soon as the head is read, the request body left unread, then
    /// the connection closed.
    EarlyRefusal,
    /// `103 Early Hints` (Puma's `early_hints`, Rails' `request.send_early_hints`), then the
    /// answer, kept alive.
    EarlyHints,
    /// An answer no HTTP parser takes (a header line without a colon).
    Garbage,
    /// A `200` whose body the cell stops sending a third of the way in, then closes: framed by
    /// `Content-Length` (false) or chunked (true).
    CutShort { chunked: bool },
    /// A `200` whose body the cell stops sending a third of the way in, keeping the connection
    /// open and silent (a hung worker): framed by `Content-Length` (false) or chunked (true).
    Stalls { chunked: bool },
    /// A chunked `200` whose body comes in ten pieces 100 ms apart (a slow stream that keeps
    /// moving), then its last chunk; kept alive.
    Trickle,
    /// `101 Switching Protocols` to a request that asked for no upgrade, then bytes that are no
    /// HTTP at all.
    UnaskedSwitch,
    /// Two `Content-Length`s that disagree (a response-splitting shape).
    ConflictingLengths,
    /// Both `Content-Length` and `Transfer-Encoding: chunked`, the length a lie.
    LengthAndChunked,
    /// `Transfer-Encoding: gzip, chunked`: a coding under the chunking.
    CodedAnswer,
    /// `100 Continue` when the request expects it (as Puma does), then the `Content-Length` body
    /// read and echoed; kept alive.
    ContinueThenEcho,
    /// The `Content-Length` body read without any `100 Continue` (an HTTP/1.0-minded server),
    /// then echoed; kept alive.
    SilentEcho,
    /// Learn answers in HTTP/1.0 without a length (ended by closing the connection); forwarded
    /// requests answered plainly.
    LearnClosed,
    /// Conditional requests (`If-None-Match`) answered `304` with the representation's
    /// `Content-Length` and `ETag` and no body, HEAD with the `Content-Length` of the GET and
    /// no body, anything else `200` with a body; kept alive (Rails' conditional GET and HEAD).
    NotModified,
    /// Learn answers chunked, after a `103 Early Hints`; forwarded requests answered plainly.
    LearnChunked,
    /// A whole second answer right after the first's body, unasked, on a kept-alive connection:
    /// whoever's request goes next on that connection would get it (response smuggling).
    TrailingAnswer,
}

/// The body a close-delimited answer carries: larger than one read, in several writes.
fn big_body() -> Vec<u8> {
    (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect()
}

struct RawCell {
    addr: SocketAddr,
    /// Forwarded (non-learn) requests whose head the cell read.
    forwarded: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawCell {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_cell(framing: Framing) -> RawCell {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let forwarded = Arc::new(AtomicUsize::new(0));
    let count = forwarded.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { continue };
            tokio::spawn(serve(s, framing, count.clone()));
        }
    });
    RawCell { addr, forwarded, task }
}

/// One connection of the raw cell: learn requests answered and kept alive; the first
/// forwarded request answered as `framing` says, which ends the connection.
async fn serve(mut s: TcpStream, framing: Framing, forwarded: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = read_until(&mut s, &mut buf, 0, b"\r\n\r\n").await else { return };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        if target == "/-/readiness" {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            continue;
        }
        if let Some(query) = target.strip_prefix("/api/v4/cells/learn?") {
            let path: String = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "path_info").map(|(_, v)| v.into_owned()).unwrap_or_default();
            let body = answer(&path, "cell_0", "default", true, false);
            let reply = match framing {
                Framing::LearnClosed => format!("HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{body}"),
                Framing::LearnChunked => format!(
                    "HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                    body.len() / 2,
                    &body[..body.len() / 2],
                    body.len() - body.len() / 2,
                    &body[body.len() / 2..]
                ),
                _ => format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()),
            };
            let _ = s.write_all(reply.as_bytes()).await;
            if matches!(framing, Framing::LearnClosed) {
                let _ = s.shutdown().await;
                return;
            }
            continue;
        }
        forwarded.fetch_add(1, Ordering::SeqCst);
        match framing {
            Framing::CloseDelimited11 | Framing::CloseDelimited10 => {
                let status = if matches!(framing, Framing::CloseDelimited10) { "HTTP/1.0 200 OK" } else { "HTTP/1.1 200 OK\r\nconnection: close" };
                let _ = s.write_all(format!("{status}\r\nx-served-by: cell_0\r\n\r\n").as_bytes()).await;
                for part in big_body().chunks(30_000) {
                    if s.write_all(part).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Framing::EarlyHints => {
                let reply = "HTTP/1.1 103 Early Hints\r\nlink: </assets/app.css>; rel=preload; as=style\r\n\r\n\
                             HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: 5\r\n\r\nhello";
                if s.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Framing::Garbage => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\nthis is not a header\r\ncontent-length: 2\r\n\r\nok").await;
            }
            Framing::CutShort { chunked } => {
                let body = big_body();
                let third = &body[..body.len() / 3];
                let head = if chunked {
                    format!("HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n", body.len())
                } else {
                    format!("HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: {}\r\n\r\n", body.len())
                };
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(third).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Framing::Stalls { chunked } => {
                let body = big_body();
                let head = if chunked {
                    format!("HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n", body.len())
                } else {
                    format!("HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: {}\r\n\r\n", body.len())
                };
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body[..body.len() / 3]).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Framing::Trickle => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ntransfer-encoding: chunked\r\n\r\n").await;
                for i in 0..10u8 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = s.write_all(format!("3\r\nab{i}\r\n").as_bytes()).await;
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
                continue;
            }
            Framing::UnaskedSwitch => {
                let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: raw\r\n\r\n\x00\x01binary stream").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Framing::ConflictingLengths => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: 5\r\ncontent-length: 40\r\n\r\nhelloHTTP/1.1 200 OK\r\nx-smuggled: yes\r\n\r\n").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Framing::LengthAndChunked => {
                let reply = b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
                if s.write_all(reply).await.is_err() {
                    return;
                }
                continue;
            }
            Framing::NotModified => {
                let head_lower = head.to_ascii_lowercase();
                let reply: &[u8] = if head_lower.contains("if-none-match:") {
                    b"HTTP/1.1 304 Not Modified\r\nx-served-by: cell_0\r\netag: W/\"abc\"\r\ncontent-length: 1234\r\n\r\n"
                } else if head.starts_with("HEAD ") {
                    b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\netag: W/\"abc\"\r\ncontent-length: 1234\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\netag: W/\"abc\"\r\ncontent-length: 5\r\n\r\nhello"
                };
                if s.write_all(reply).await.is_err() {
                    return;
                }
                continue;
            }
            Framing::LearnClosed | Framing::LearnChunked => {
                if s.write_all(b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: 5\r\n\r\nhello").await.is_err() {
                    return;
                }
                continue;
            }
            Framing::ContinueThenEcho | Framing::SilentEcho => {
                if matches!(framing, Framing::ContinueThenEcho)
                    && head.to_ascii_lowercase().contains("expect: 100-continue")
                    && s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
                {
                    return;
                }
                let len: usize = head.to_ascii_lowercase().lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
                if !read_exact_into(&mut s, &mut buf, len).await {
                    return;
                }
                let body: Vec<u8> = buf.drain(..len).collect();
                let mut reply = format!("HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: {len}\r\n\r\n").into_bytes();
                reply.extend_from_slice(&body);
                if s.write_all(&reply).await.is_err() {
                    return;
                }
                continue;
            }
            Framing::CodedAnswer => {
                let reply = b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ntransfer-encoding: gzip, chunked\r\n\r\n7\r\ngzipped\r\n0\r\n\r\n";
                if s.write_all(reply).await.is_err() {
                    return;
                }
                continue;
            }
            Framing::TrailingAnswer => {
                let reply = b"HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\ncontent-length: 5\r\n\r\nhello\
                              HTTP/1.1 200 OK\r\nx-served-by: cell_0\r\nx-smuggled: yes\r\ncontent-length: 8\r\n\r\nsmuggled";
                if s.write_all(reply).await.is_err() {
                    return;
                }
                continue;
            }
            Framing::EarlyRefusal => {
                let _ = s.write_all(b"HTTP/1.1 413 Payload Too Large\r\nx-served-by: cell_0\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large").await;
                // Read a little of what keeps coming, as a server does before it closes (so the
                // answer is not lost to a reset), then close.
                let mut sink = [0u8; 65_536];
                let until = Instant::now() + Duration::from_millis(200);
                while let Ok(Ok(n)) = tokio::time::timeout(until.saturating_duration_since(Instant::now()), s.read(&mut sink)).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        let _ = s.shutdown().await;
        return;
    }
}

async fn router_for(cell: &RawCell) -> cells_router::Running {
    router_with(cell, "").await
}

/// [`router_for`] with `extra` TOML sections (before the cells).
async fn router_with(cell: &RawCell, extra: &str) -> cells_router::Running {
    let toml = format!(
        "name = \"router_test\"\nlisten = \"127.0.0.1:0\"\ninternal_listen = \"127.0.0.1:0\"\ndefault_cell = \"cell_0\"\ntrace_header = true\n{extra}\n[[cells]]\nname = \"cell_0\"\nurl = \"http://{}\"\n",
        cell.addr
    );
    let cfg = cells_router::Config::from_toml(&toml, &cells_router::Args::default()).unwrap();
    cells_router::start(cfg).await.unwrap()
}

/// `GET target` on a new connection with `Connection: close`, read to the end.
async fn get_once(router: &cells_router::Running, target: &str) -> abuse_support::RawResponse {
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    c.write_all(format!("GET {target} HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    read_all(&mut c, Duration::from_secs(5)).await
}

/// A 502 that carries nothing of what the cell sent (`marker` is in the cell's bytes).
fn assert_refused(r: &abuse_support::RawResponse, marker: &str, what: &str) {
    assert_eq!(r.status, 502, "{what}: {}", show(&r.raw));
    assert!(!String::from_utf8_lossy(&r.raw).contains(marker), "{what}: {}", show(&r.raw));
}

/// Reads one HTTP/1.1 response off `c` and decodes its body (chunked or `Content-Length`, the
/// router's framings towards a client), leaving the connection open for the next.
async fn read_response(c: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let deadline = Instant::now() + READ_WAIT;
    let head_end = read_to(c, &mut buf, 0, b"\r\n\r\n", deadline, "an answer's head").await;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = Vec::new();
    let mut at = head_end;
    if head.contains("transfer-encoding: chunked") {
        loop {
            let line_end = read_to(c, &mut buf, at, b"\r\n", deadline, "a chunk's size line").await;
            let size = usize::from_str_radix(std::str::from_utf8(&buf[at..line_end - 2]).unwrap().trim(), 16).unwrap();
            let chunk_end = line_end + size + 2;
            assert!(within(deadline, read_exact_into(c, &mut buf, chunk_end)).await, "chunk cut: {} bytes so far", body.len());
            body.extend_from_slice(&buf[line_end..line_end + size]);
            at = chunk_end;
            if size == 0 {
                break;
            }
        }
    } else {
        let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse().unwrap()).unwrap_or(0);
        assert!(within(deadline, read_exact_into(c, &mut buf, head_end + len)).await, "body cut at {} of {len} bytes", buf.len() - head_end);
        body = buf[head_end..head_end + len].to_vec();
    }
    (status, head, body)
}

/// How long a test waits for what it reads off a connection.
const READ_WAIT: Duration = Duration::from_secs(5);

/// `read`'s answer when it completes by `deadline`; false when it times out first.
async fn within(deadline: Instant, read: impl std::future::Future<Output = bool>) -> bool {
    tokio::time::timeout_at(deadline.into(), read).await.unwrap_or(false)
}

/// [`read_until`] by `deadline`; panics naming `what` and showing what was read when the
/// connection ends or the deadline passes first.
async fn read_to(c: &mut (impl tokio::io::AsyncRead + Unpin), buf: &mut Vec<u8>, from: usize, needle: &[u8], deadline: Instant, what: &str) -> usize {
    match tokio::time::timeout_at(deadline.into(), read_until(c, buf, from, needle)).await {
        Ok(Some(end)) => end,
        outcome => panic!("no {what} ({outcome:?}): {}", show(buf)),
    }
}

/// A body that ends where the cell closes its connection reaches the client whole, framed for
/// the client (the cell's close is not the client's), and the client's connection serves the
/// next request (on a new connection to the cell: the closed one is not pooled).
#[tokio::test]
async fn close_delimited_answers_are_forwarded_whole_and_the_client_keeps_its_connection() {
    for (name, framing) in [("HTTP/1.1 with Connection: close", Framing::CloseDelimited11), ("HTTP/1.0", Framing::CloseDelimited10)] {
        let cell = raw_cell(framing).await;
        let router = router_for(&cell).await;
        let mut c = TcpStream::connect(router.addr).await.unwrap();
        for round in 0..2 {
            c.write_all(format!("GET /group/project/-/raw/{round} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n").as_bytes()).await.unwrap();
            let (status, head, body) = read_response(&mut c).await;
            assert_eq!(status, 200, "{name}, request {round}: {head}");
            assert!(head.contains("x-served-by: cell_0"), "{name}, request {round}: {head}");
            assert!(!head.contains("connection: close"), "{name}, request {round}: the cell's close reached the client: {head}");
            assert_eq!(body.len(), big_body().len(), "{name}, request {round}: {head}");
            assert!(body == big_body(), "{name}, request {round}: the body changed on the way");
        }
        // An HTTP/1.0 client (ApacheBench, old probes) is answered in HTTP/1.0: the body ends
        // where the router closes its connection.
        let mut old = TcpStream::connect(router.addr).await.unwrap();
        old.write_all(b"GET /group/project/-/raw/old HTTP/1.0\r\nHost: gitlab.example\r\n\r\n").await.unwrap();
        let r = read_all(&mut old, Duration::from_secs(5)).await;
        assert!(r.closed && r.head.starts_with("HTTP/1.0 200"), "{name}, HTTP/1.0 client: {}", r.head);
        assert!(r.body == big_body(), "{name}, HTTP/1.0 client: {} bytes", r.body.len());
        assert_eq!(cell.forwarded.load(Ordering::SeqCst), 3, "{name}: each request forwarded once");
        router.shutdown().await;
    }
}

/// A cell that refuses an upload before reading it (413 and close) is answered to the client
/// at once, while the client is still sending: the client neither waits for its whole body to
/// go through nor gets a 502 for the cell's early close.
#[tokio::test]
async fn an_early_refusal_reaches_the_client_while_it_still_uploads() {
    let cell = raw_cell(Framing::EarlyRefusal).await;
    let router = router_for(&cell).await;
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    let total = 50 << 20;
    c.write_all(format!("POST /group/project/uploads HTTP/1.1\r\nHost: gitlab.example\r\nContent-Length: {total}\r\n\r\n").as_bytes()).await.unwrap();
    let started = Instant::now();
    // Upload in the background, slowly enough that the whole body could never be sent in time.
    let (mut rd, mut wr) = c.into_split();
    let upload = tokio::spawn(async move {
        let part = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        while sent < total {
            if wr.write_all(&part).await.is_err() {
                break;
            }
            sent += part.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    });
    let mut raw = Vec::new();
    read_to(&mut rd, &mut raw, 0, b"too large", started + Duration::from_secs(10), "answer to the upload").await;
    let waited = started.elapsed();
    let response = abuse_support::parse_response(&raw);
    assert_eq!(response.status, 413, "{}", show(&raw));
    assert_eq!(response.served_by(), Some("cell_0"));
    assert_eq!(response.body, b"too large");
    assert!(waited < Duration::from_secs(5), "the refusal took {waited:?}");
    let sent = upload.await.unwrap();
    assert!(sent < total, "the client had to send its whole body ({sent} bytes) first");
    assert_eq!(cell.forwarded.load(Ordering::SeqCst), 1);
    // The router goes on serving: the next request is answered (by the same refusal) promptly.
    let mut next = TcpStream::connect(router.addr).await.unwrap();
    next.write_all(b"POST /group/project/uploads HTTP/1.1\r\nHost: gitlab.example\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc").await.unwrap();
    let again = read_all(&mut next, Duration::from_secs(5)).await;
    assert_eq!((again.status, again.served_by()), (413, Some("cell_0")), "{}", show(&again.raw));
    router.shutdown().await;
}

/// An interim `103 Early Hints` before the answer: the client gets the answer (the hints are
/// dropped: the router forwards final answers only), and the cell's connection is reused.
#[tokio::test]
async fn early_hints_are_passed_over_and_the_answer_forwarded() {
    let cell = raw_cell(Framing::EarlyHints).await;
    let router = router_for(&cell).await;
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    for round in 0..3 {
        c.write_all(format!("GET /group/project/-/tree/{round} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n").as_bytes()).await.unwrap();
        let (status, head, body) = read_response(&mut c).await;
        assert_eq!((status, body.as_slice()), (200, &b"hello"[..]), "request {round}: {head}");
        assert!(head.contains("x-served-by: cell_0"), "request {round}: {head}");
    }
    assert_eq!(cell.forwarded.load(Ordering::SeqCst), 3);
    router.shutdown().await;
}

/// An answer the router cannot parse is a 502 with a JSON reason, not a crash, a hang or the
/// garbage passed on; the router keeps serving.
#[tokio::test]
async fn an_unparseable_answer_is_a_502_and_the_router_keeps_serving() {
    let cell = raw_cell(Framing::Garbage).await;
    let router = router_for(&cell).await;
    for round in 0..2 {
        let r = get_once(&router, &format!("/group/project/-/blob/{round}")).await;
        assert_refused(&r, "this is not a header", &format!("request {round}"));
        assert!(r.header("content-type").is_some_and(|t| t.starts_with("application/json")), "request {round}: {}", r.head);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("request {round}: {e}: {}", show(&r.body)));
        assert!(v["error"].is_string(), "request {round}: {v}");
    }
    router.shutdown().await;
}

/// A cell that dies a third of the way into its answer: the client can tell the answer is cut
/// (fewer bytes than its `Content-Length`, or a chunked body without its last chunk, then the
/// connection closed), and never gets a complete-looking answer or a kept-alive connection
/// after it.
#[tokio::test]
async fn an_answer_cut_by_its_cell_reaches_the_client_visibly_cut() {
    for chunked in [false, true] {
        let name = if chunked { "chunked" } else { "Content-Length" };
        let cell = raw_cell(Framing::CutShort { chunked }).await;
        let router = router_for(&cell).await;
        let mut c = TcpStream::connect(router.addr).await.unwrap();
        c.write_all(b"GET /group/project/-/archive/main.zip HTTP/1.1\r\nHost: gitlab.example\r\n\r\n").await.unwrap();
        let r = read_all(&mut c, Duration::from_secs(5)).await;
        assert!(r.closed, "{name}: the client's connection stayed open after a cut answer");
        assert_eq!(r.status, 200, "{name}: {}", r.head);
        let head = r.head.to_ascii_lowercase();
        let total = big_body().len();
        if head.contains("transfer-encoding: chunked") {
            assert!(!r.raw.ends_with(b"0\r\n\r\n"), "{name}: the cut answer was given its last chunk");
        } else {
            let promised: usize = r.header("content-length").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name}: no framing: {}", r.head));
            let end = r.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(promised, total, "{name}");
            assert!(r.raw.len() - end < promised, "{name}: the client got {} of {promised} bytes", r.raw.len() - end);
        }
        assert!(r.raw.len() < total, "{name}: more bytes than the cell sent");
        router.shutdown().await;
    }
}

/// A cell that stops mid-answer and stays silent (a hung worker) does not hold its client for
/// ever: after `timeouts.response_idle` without a byte the answer is cut as a cell's own cut
/// would be (short of its length, or without its last chunk, and the connection closed).
#[tokio::test]
async fn an_answer_that_stalls_is_cut_after_the_idle_timeout() {
    for chunked in [false, true] {
        let name = if chunked { "chunked" } else { "Content-Length" };
        let cell = raw_cell(Framing::Stalls { chunked }).await;
        let router = router_with(&cell, "[timeouts]\nresponse_idle = \"300ms\"\n").await;
        let mut c = TcpStream::connect(router.addr).await.unwrap();
        c.write_all(b"GET /group/project/-/archive/main.zip HTTP/1.1\r\nHost: gitlab.example\r\n\r\n").await.unwrap();
        let started = Instant::now();
        let r = read_all(&mut c, Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(r.closed, "{name}: the client's connection is still open after {took:?}");
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{name}: cut after {took:?}");
        assert_eq!(r.status, 200, "{name}: {}", r.head);
        if chunked {
            assert!(!r.raw.ends_with(b"0\r\n\r\n"), "{name}: the cut answer was given its last chunk");
        } else {
            let end = r.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(r.raw.len() - end < big_body().len(), "{name}: the client got the whole length");
        }
        router.shutdown().await;
    }
}

/// A slow answer that keeps moving (ten pieces 100 ms apart, a second in all) is not cut by a
/// 300 ms idle timeout, and the connection serves on.
#[tokio::test]
async fn a_slow_answer_that_keeps_moving_is_not_cut() {
    let cell = raw_cell(Framing::Trickle).await;
    let router = router_with(&cell, "[timeouts]\nresponse_idle = \"300ms\"\n").await;
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    for round in 0..2 {
        c.write_all(b"GET /group/project/-/jobs/1/trace HTTP/1.1\r\nHost: gitlab.example\r\n\r\n").await.unwrap();
        let (status, _, body) = read_response(&mut c).await;
        assert_eq!(status, 200, "round {round}");
        let want: String = (0..10).map(|i| format!("ab{i}")).collect();
        assert_eq!(String::from_utf8_lossy(&body), want, "round {round}");
    }
    router.shutdown().await;
}

/// A cell answering `101` to a request that asked for no upgrade gets no tunnel: the client
/// gets a 502 and none of the cell's raw bytes.
#[tokio::test]
async fn a_switch_nobody_asked_for_is_a_502_not_a_tunnel() {
    let cell = raw_cell(Framing::UnaskedSwitch).await;
    let router = router_for(&cell).await;
    assert_refused(&get_once(&router, "/group/project").await, "binary stream", "the first request");
    // The cell's connection was not pooled: the next request is a new exchange, answered alike.
    assert_refused(&get_once(&router, "/group/project/-/issues").await, "binary stream", "the next request");
    assert_eq!(cell.forwarded.load(Ordering::SeqCst), 2);
    router.shutdown().await;
}

/// Answers framed two ways at once (RFC 9112 §6.3): two `Content-Length`s that disagree are no
/// answer (502, nothing of it passed on), nor is a coding under the chunking (`gzip, chunked`),
/// and `Transfer-Encoding: chunked` beside a `Content-Length` is read as chunked, the length
/// ignored, and the client gets the body once, framed once.
#[tokio::test]
async fn answers_framed_two_ways_are_refused_or_reframed() {
    let cell = raw_cell(Framing::ConflictingLengths).await;
    let router = router_for(&cell).await;
    assert_refused(&get_once(&router, "/group/project").await, "smuggled", "two lengths");
    router.shutdown().await;

    // A coding under the chunking cannot be passed on once the body is chunked anew: 502.
    let cell = raw_cell(Framing::CodedAnswer).await;
    let router = router_for(&cell).await;
    assert_refused(&get_once(&router, "/group/project").await, "gzipped", "gzip, chunked");
    router.shutdown().await;

    let cell = raw_cell(Framing::LengthAndChunked).await;
    let router = router_for(&cell).await;
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    for round in 0..2 {
        c.write_all(format!("GET /group/project/{round} HTTP/1.1\r\nHost: gitlab.example\r\n\r\n").as_bytes()).await.unwrap();
        let (status, head, body) = read_response(&mut c).await;
        assert_eq!((status, body.as_slice()), (200, &b"hello"[..]), "request {round}: {head}");
        assert!(!(head.contains("content-length") && head.contains("transfer-encoding")), "request {round}: framed twice: {head}");
    }
    router.shutdown().await;
}

/// A cell that sends an answer nobody asked for after the one it owed (on a connection it keeps
/// open) never gets it to a client: each request, from whichever client, gets its own answer,
/// and the smuggled one reaches nobody (the next request on that pooled connection would have
/// got it).
#[tokio::test]
async fn an_unasked_second_answer_reaches_no_client() {
    let cell = raw_cell(Framing::TrailingAnswer).await;
    let router = router_for(&cell).await;
    for round in 0..6 {
        let r = get_once(&router, &format!("/group/project/-/issues/{round}")).await;
        assert!(!String::from_utf8_lossy(&r.raw).contains("smuggled"), "request {round}: {}", show(&r.raw));
        // Each request gets its own answer: hyper's client reads the unasked answer with the owed
        // one (one write), finds bytes where none may be, and drops the connection unpooled.
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]), "request {round}: {}", show(&r.raw));
    }
    router.shutdown().await;
}

/// Learn answers framed as real servers may frame them — HTTP/1.0 ended by the cell's close, or
/// chunked after a `103 Early Hints` — are read like any other: every request is routed by them
/// and answered by its cell (the learn path's reader is the pooled client's, not a parser of
/// its own).
#[tokio::test]
async fn learn_answers_in_other_framings_are_read_alike() {
    for (name, framing) in [("HTTP/1.0, close-delimited", Framing::LearnClosed), ("chunked after 103", Framing::LearnChunked)] {
        let cell = raw_cell(framing).await;
        let router = router_for(&cell).await;
        for round in 0..3 {
            let r = get_once(&router, &format!("/group/project/-/merge_requests/{round}")).await;
            assert_eq!((r.status, r.served_by(), r.body.as_slice()), (200, Some("cell_0"), &b"hello"[..]), "{name}, request {round}: {}", show(&r.raw));
            // Routed by a learn answer the router read from this cell (not by a fallback).
            assert!(r.trace().contains("learned_from=cell_0"), "{name}, request {round}: {}", r.trace());
        }
        assert_eq!(cell.forwarded.load(Ordering::SeqCst), 3, "{name}");
        router.shutdown().await;
    }
}

/// Rails' conditional GET and HEAD on one client connection: a `304` and a HEAD answer carry the
/// representation's `Content-Length` and no body; each reaches the client as the cell sent it
/// (status, `ETag`, length), without a body, and the connection goes on serving (a body expected
/// after them would have cut it or made the next answer unreadable).
#[tokio::test]
async fn not_modified_and_head_answers_keep_the_connection() {
    let cell = raw_cell(Framing::NotModified).await;
    let router = router_for(&cell).await;
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    let ask = |method: &str, conditional: bool, n: usize| {
        let condition = if conditional { "If-None-Match: W/\"abc\"\r\n" } else { "" };
        format!("{method} /group/project/-/raw/main/{n} HTTP/1.1\r\nHost: gitlab.example\r\n{condition}\r\n")
    };
    let sequence = [("GET", true, 304u16), ("HEAD", false, 200), ("GET", false, 200), ("GET", true, 304), ("HEAD", false, 200), ("GET", false, 200)];
    for (n, (method, conditional, want)) in sequence.into_iter().enumerate() {
        c.write_all(ask(method, conditional, n).as_bytes()).await.unwrap();
        // Read the head, then exactly the body this answer may have.
        let mut raw = Vec::new();
        let end = read_to(&mut c, &mut raw, 0, b"\r\n\r\n", Instant::now() + READ_WAIT, &format!("answer to request {n} ({method})")).await;
        let r = abuse_support::parse_response(&raw[..end]);
        assert_eq!((r.status, r.served_by()), (want, Some("cell_0")), "request {n} ({method}): {}", r.head);
        assert_eq!(r.header("etag"), Some("W/\"abc\""), "request {n} ({method}): {}", r.head);
        let body_len = if want == 200 && method == "GET" { 5 } else { 0 };
        if want == 304 || method == "HEAD" {
            assert!(r.header("content-length").is_none_or(|v| v == "1234"), "request {n} ({method}): {}", r.head);
        }
        let whole = within(Instant::now() + READ_WAIT, read_exact_into(&mut c, &mut raw, end + body_len)).await;
        assert!(whole, "request {n} ({method}): body cut: {}", show(&raw));
        assert_eq!(raw.len(), end + body_len, "request {n} ({method}): bytes beyond the answer: {}", show(&raw));
    }
    assert_eq!(cell.forwarded.load(Ordering::SeqCst), sequence.len());
    router.shutdown().await;
}

/// curl's large upload: `Expect: 100-continue`, then the body only after `100 Continue`. A cell
/// that refuses the upload at once (413) is answered to the client before the client sent a
/// byte of its body: the router asks the client for the body only when the cell reads it.
#[tokio::test]
async fn an_upload_refused_before_its_body_is_never_asked_for() {
    let cell = raw_cell(Framing::EarlyRefusal).await;
    let router = router_for(&cell).await;
    let mut c = TcpStream::connect(router.addr).await.unwrap();
    c.write_all(b"PUT /group/project/-/uploads/big HTTP/1.1\r\nHost: gitlab.example\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    // The client waits for `100 Continue` (curl waits 1 s) and sends nothing meanwhile.
    let r = read_all(&mut c, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&r.raw);
    assert!(!text.contains("100 Continue"), "the client was asked for a body the cell refused: {}", show(&r.raw));
    assert_eq!((r.status, r.served_by()), (413, Some("cell_0")), "{}", show(&r.raw));
    assert_eq!(r.body, b"too large");
    router.shutdown().await;
}

/// The other two outcomes of `Expect: 100-continue`: a cell that sends `100 Continue` (Puma)
/// has it relayed to the client at once, and the body the client then sends arrives whole; a
/// cell that sends none and waits for the body gets it after [`cells_router::expect_continue::WAIT`],
/// when the router asks the client for it (as curl would send it after its own wait).
#[tokio::test]
async fn an_expected_continue_comes_from_the_cell_or_after_the_wait() {
    let wait = cells_router::expect_continue::WAIT;
    for (name, framing) in [("a cell that continues", Framing::ContinueThenEcho), ("a silent cell", Framing::SilentEcho)] {
        let cell = raw_cell(framing).await;
        let router = router_for(&cell).await;
        let mut c = TcpStream::connect(router.addr).await.unwrap();
        for round in 0..2 {
            let body = format!("upload number {round} of {name}");
            let started = Instant::now();
            c.write_all(
                format!(
                    "PUT /group/project/-/uploads/{round} HTTP/1.1\r\nHost: gitlab.example\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            let mut got = Vec::new();
            read_to(&mut c, &mut got, 0, b"\r\n\r\n", started + READ_WAIT, &format!("100 Continue for {name}, upload {round}")).await;
            let waited = started.elapsed();
            assert!(got.starts_with(b"HTTP/1.1 100 Continue\r\n"), "{name}, upload {round}: {}", show(&got));
            match framing {
                Framing::ContinueThenEcho => assert!(waited < wait / 2, "{name}, upload {round}: the cell's 100 took {waited:?}"),
                _ => assert!(waited >= wait.mul_f64(0.9) && waited < wait * 3, "{name}, upload {round}: 100 after {waited:?}"),
            }
            c.write_all(body.as_bytes()).await.unwrap();
            let (status, head, echoed) = read_response(&mut c).await;
            assert_eq!((status, echoed), (200, body.into_bytes()), "{name}, upload {round}: {head}");
        }
        assert_eq!(cell.forwarded.load(Ordering::SeqCst), 2, "{name}");
        router.shutdown().await;
    }
}
