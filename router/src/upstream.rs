//! HTTP/1 connections to the cells, pooled per worker thread and per cell.
//!
//! Why not hyper-util's pooled client: it keys its pool by the request's absolute URI (so every
//! forwarded request needed one built, then rewritten back to origin-form) and shares one pool
//! between threads — about a sixth of the router's instructions per proxied request. The
//! router already runs one single-threaded event loop per worker (see `main.rs`), so each
//! worker keeps its own idle connections per cell behind an uncontended lock. A connection
//! goes back when its response body has been read to the end ([`UpstreamBody`]), so the pool
//! holds only connections that can take the next request.
//!
//! Requests are never sent twice: a request goes back to the caller only when hyper returns
//! it unsent (`TrySendError::take_message`: the pooled connection closed before a byte was
//! written), and then it is tried on the next connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::proxy::Body;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The cell could not be reached: nothing was sent.
    #[error("{0}")]
    Connect(String),
    /// The exchange failed after the request was handed to a connection.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Connect(_))
    }
}

/// Where a cell listens.
pub struct Target {
    /// `host:port`, to connect to.
    pub authority: String,
    /// The URL's authority, as the `Host` header of requests that carry none (the router's
    /// own learn requests, HTTP/1.0 clients).
    pub host: HeaderValue,
}

/// One worker's idle connections, per cell (most recently used last).
struct Idle {
    cells: Mutex<Vec<Vec<SendRequest<Body>>>>,
    /// Connections kept per cell; more are closed once their exchange ends.
    max_per_cell: usize,
}

impl Idle {
    fn checkin(&self, cell: usize, sender: SendRequest<Body>) {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if cells[cell].len() < self.max_per_cell && !sender.is_closed() {
            cells[cell].push(sender);
        }
    }

    /// The most recently used connection to `cell` that is still open; closed ones are dropped
    /// on the way. It may still be finishing its last exchange (see [`Pool::send`]).
    fn checkout(&self, cell: usize) -> Option<SendRequest<Body>> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let conns = &mut cells[cell];
        while let Some(sender) = conns.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }
}

pub struct Pool {
    targets: Vec<Target>,
    workers: Vec<Arc<Idle>>,
    connect_timeout: Duration,
}

thread_local! {
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the calling thread as worker `index`: its requests use that worker's connections.
/// Threads that are not workers (tests, embedding) share worker 0's.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// A response body from a pooled connection: it puts the connection back into its worker's
/// pool once the body has been read to the end (or, for bodies that were empty from the start,
/// when it is dropped). A body dropped half-read takes its connection with it.
pub struct UpstreamBody {
    inner: Incoming,
    checkin: Option<Checkin>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody").field("inner", &self.inner).field("pooled", &self.checkin.is_some()).finish()
    }
}

struct Checkin {
    idle: Arc<Idle>,
    cell: usize,
    sender: SendRequest<Body>,
}

impl UpstreamBody {
    /// A body from a connection that is not pooled (upgrades).
    pub fn unpooled(inner: Incoming) -> UpstreamBody {
        UpstreamBody { inner, checkin: None }
    }

    fn release(&mut self) {
        if let Some(c) = self.checkin.take() {
            c.idle.checkin(c.cell, c.sender);
        }
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            None => self.release(),
            Some(Err(_)) => self.checkin = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Servers never poll a body that is empty from the start (204, 304, HEAD, length 0).
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl Pool {
    pub fn new(targets: Vec<Target>, workers: usize, connect_timeout: Duration, max_per_cell: usize) -> Pool {
        let cells = targets.len();
        let workers = (0..workers.max(1))
            .map(|_| Arc::new(Idle { cells: Mutex::new((0..cells).map(|_| Vec::new()).collect()), max_per_cell: max_per_cell.max(1) }))
            .collect();
        Pool { targets, workers, connect_timeout }
    }

    fn idle(&self) -> &Arc<Idle> {
        let i = WORKER.with(|w| w.get());
        &self.workers[i % self.workers.len()]
    }

    /// Sends `req` (origin-form URI) to `cell` and waits for the response headers.
    pub async fn send(&self, cell: usize, mut req: Request<Body>) -> Result<Response<UpstreamBody>, UpstreamError> {
        if !req.headers().contains_key(HOST) {
            req.headers_mut().insert(HOST, self.targets[cell].host.clone());
        }
        let idle = self.idle();
        loop {
            let (mut sender, reused) = match idle.checkout(cell) {
                Some(s) => (s, true),
                // Boxed: a new connection is the rare case; inline, its handshake would make
                // every request's future larger.
                None => (Box::pin(self.connect(cell)).await?, false),
            };
            // A connection comes back as soon as its response body has been read, which can be a
            // moment before its connection task has noticed and taken up waiting for the next
            // request; wait for that rather than close a good connection. A connection that
            // closed meanwhile is left behind.
            if reused && !sender.is_ready() && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let checkin = Some(Checkin { idle: idle.clone(), cell, sender });
                    return Ok(resp.map(|inner| UpstreamBody { inner, checkin }));
                }
                Err(mut e) => match e.take_message() {
                    // A pooled connection closed before the request was written: nothing was
                    // sent, so it goes on the next connection. Each such connection leaves the
                    // pool, so this ends at a fresh one, whose failure is final.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self, cell: usize) -> Result<SendRequest<Body>, UpstreamError> {
        let authority = &self.targets[cell].authority;
        let stream = dial(authority, self.connect_timeout).await?;
        let (sender, conn) = http1()
            .handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(format!("handshake with {authority}: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Connections now idle for `cell` in the calling thread's worker (tests, diagnostics).
    pub fn idle_connections(&self, cell: usize) -> usize {
        self.idle().cells.lock().unwrap_or_else(|p| p.into_inner())[cell].len()
    }
}

/// A TCP connection to a cell (no Nagle: requests and answers are small and latency-bound).
pub(crate) async fn dial(authority: &str, timeout: std::time::Duration) -> Result<tokio::net::TcpStream, UpstreamError> {
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority)).await {
        Err(_) => return Err(UpstreamError::Connect(format!("connect to {authority} timed out after {timeout:?}"))),
        Ok(Err(e)) => return Err(UpstreamError::Connect(format!("connect to {authority}: {e}"))),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The HTTP/1 client side of a cell connection: flattened writes, as on the router's own
/// server side (see `serve`).
pub(crate) fn http1() -> hyper::client::conn::http1::Builder {
    let mut builder = hyper::client::conn::http1::Builder::new();
    builder.writev(false);
    builder
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A bare HTTP/1.1 upstream: answers each GET with its target and Host header, keeps the
    /// connection open unless the target is `/close`; `/slow` sends half its body, then the
    /// rest once `release` is notified. Counts connections and requests.
    struct Upstream {
        addr: std::net::SocketAddr,
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
        release: Arc<tokio::sync::Notify>,
    }

    async fn upstream() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (connections, requests, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(tokio::sync::Notify::new()));
        let (c, r, rel) = (connections.clone(), requests.clone(), release.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, r.clone(), rel.clone()));
            }
        });
        Upstream { addr, connections, requests, release }
    }

    async fn serve(mut sock: TcpStream, requests: Arc<AtomicUsize>, release: Arc<tokio::sync::Notify>) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 1024];
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            buf.drain(..head_end);
            requests.fetch_add(1, Ordering::SeqCst);
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let host = head.lines().find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: "))).unwrap_or("-").to_string();
            let body = format!("{target} {host}");
            if target == "/empty" {
                let _ = sock.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                continue;
            }
            if target == "/slow" {
                let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{}", body.len() * 2, body).as_bytes()).await;
                release.notified().await;
                let _ = sock.write_all(body.as_bytes()).await;
                continue;
            }
            let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes()).await;
            if target == "/close" {
                return;
            }
        }
    }

    fn pool(addr: std::net::SocketAddr) -> Pool {
        let authority = addr.to_string();
        Pool::new(vec![Target { host: HeaderValue::from_str(&authority).unwrap(), authority }], 1, Duration::from_secs(2), 4)
    }

    fn get(target: &str) -> Request<Body> {
        Request::get(target).body(crate::proxy::empty()).unwrap()
    }

    async fn text(resp: Response<UpstreamBody>) -> String {
        String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn connections_are_reused_and_requests_get_a_host() {
        let up = upstream().await;
        let pool = pool(up.addr);
        for i in 0..3 {
            let resp = pool.send(0, get(&format!("/a/{i}?q=1"))).await.unwrap();
            assert_eq!(pool.idle_connections(0), 0, "in use until its body is read");
            assert_eq!(text(resp).await, format!("/a/{i}?q=1 {}", up.addr));
            assert_eq!(pool.idle_connections(0), 1);
        }
        assert_eq!(up.connections.load(Ordering::SeqCst), 1);
        assert_eq!(up.requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_empty_response_returns_its_connection_when_dropped() {
        let up = upstream().await;
        let pool = pool(up.addr);
        for _ in 0..3 {
            let resp = pool.send(0, get("/empty")).await.unwrap();
            assert_eq!(resp.status(), 204);
            drop(resp); // a server never polls a body that is already at its end
            assert_eq!(pool.idle_connections(0), 1);
        }
        assert_eq!(up.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_half_read_takes_its_connection_along() {
        let up = upstream().await;
        let pool = pool(up.addr);
        drop(pool.send(0, get("/slow")).await.unwrap());
        assert_eq!(pool.idle_connections(0), 0);
        assert_eq!(text(pool.send(0, get("/next")).await.unwrap()).await, format!("/next {}", up.addr));
        assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_still_sending_a_body_is_not_handed_out() {
        let up = upstream().await;
        let pool = pool(up.addr);
        let slow = pool.send(0, get("/slow")).await.unwrap();
        // The slow response's body is still arriving: the next request takes a new connection
        // instead of waiting behind it.
        let fast = tokio::time::timeout(Duration::from_secs(2), pool.send(0, get("/fast"))).await.expect("not blocked").unwrap();
        assert_eq!(text(fast).await, format!("/fast {}", up.addr));
        up.release.notify_one();
        assert_eq!(text(slow).await, format!("/slow {}/slow {}", up.addr, up.addr));
        assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_the_cell_closed_are_dropped_and_nothing_is_sent_twice() {
        let up = upstream().await;
        let pool = pool(up.addr);
        assert_eq!(text(pool.send(0, get("/close")).await.unwrap()).await, format!("/close {}", up.addr));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(text(pool.send(0, get("/after")).await.unwrap()).await, format!("/after {}", up.addr));
        assert_eq!(up.connections.load(Ordering::SeqCst), 2);
        assert_eq!(up.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_cell_is_a_connect_error() {
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap(); // closed at once
        let err = pool(addr).send(0, get("/x")).await.unwrap_err();
        assert!(err.is_connect(), "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[tokio::test]
    async fn the_pool_keeps_at_most_its_limit_per_cell() {
        let up = upstream().await;
        let pool = pool(up.addr);
        let slow: Vec<_> = slow_responses(&pool, 6).await;
        assert_eq!(up.connections.load(Ordering::SeqCst), 6);
        for _ in 0..6 {
            up.release.notify_one();
        }
        for r in slow {
            text(r).await;
        }
        assert_eq!(pool.idle_connections(0), 4);
    }

    async fn slow_responses(pool: &Pool, n: usize) -> Vec<Response<UpstreamBody>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(pool.send(0, get("/slow")).await.unwrap());
        }
        out
    }
}
