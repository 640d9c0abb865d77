//! HTTP/1 connections to the cells, pooled per worker thread and per cell.
//!
//! Why not hyper-util's pooled client: it keys its pool by the request's absolute URI (so every
//! forwarded request needed one built, then rewritten back to origin-form) and shares one pool
//! between threads — a large share of the router's instructions per proxied request. The
//! router already runs one single-threaded event loop per worker (see `main.rs`), so each
//! worker keeps its own idle connections per cell behind an uncontended lock. A connection
//! goes back when its response body has been read to the end ([`UpstreamBody`]), so the pool
//! holds only connections that can take the next request.
//!
//! A cell closes a connection that stayed idle longer than its keep-alive timeout, and may do
//! so just as the router takes it from the pool: the request then meets a closing connection.
//! Two defences, as nginx (`keepalive_timeout` + `proxy_next_upstream`) and hyper's pooled
//! client (`retry_canceled_requests`) have:
//!
//! - the pool lets connections go after `upstream.idle_timeout`, which is set below the cells'
//!   keep-alive timeout, so the router closes first and never reuses one the cell is closing;
//! - a request that met a closing pooled connection is sent again, once, when nothing of it
//!   can have been acted on: when hyper gives it back unsent (`TrySendError::take_message`:
//!   the connection was closed before a byte was written), whatever its method; and when it
//!   was written but the connection was reset or closed without a byte of response, only if
//!   its method is idempotent (RFC 9110 §9.2.2) and it has no body (a streamed body is gone
//!   once sent: it is never sent twice). A POST written to a connection the cell then closed
//!   is not retried: the cell may have acted on it, the client gets a 502.
//!
//! Each retry is counted (`cells_router_upstream_retries_total{cell,reason}`) and logged.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, HOST};
use http::{Method, Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::CellReasonLabels;
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
    /// The cell's name (logs and metrics).
    pub name: String,
    /// `host:port`, to connect to.
    pub authority: String,
    /// The URL's authority, as the `Host` header of requests that carry none (the router's
    /// own learn requests, HTTP/1.0 clients).
    pub host: HeaderValue,
}

/// A body-less request that can be made again, for a resend (the keep-alive race, a 421's
/// replay). hyper drops a request's headers once it has written them, so whoever may resend
/// keeps what it takes to make them again; the request is made only when a resend happens.
pub trait Resend: Sync {
    /// The request once more: the same method, target and headers, no body.
    fn again(&self) -> Request<Body>;
}

/// A copy of a request's method, target and headers ([`Pool::send`]'s requests: the router's own).
struct Copied {
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
}

impl Resend for Copied {
    fn again(&self) -> Request<Body> {
        let mut again = Request::new(crate::proxy::empty());
        *again.method_mut() = self.method.clone();
        *again.uri_mut() = self.uri.clone();
        *again.headers_mut() = self.headers.clone();
        again
    }
}

/// An idle connection and the time it went idle.
type Pooled = (SendRequest<Body>, Instant);

/// One worker's idle connections, per cell (most recently used last, so the oldest are at the
/// front).
struct Idle {
    cells: Mutex<Vec<Vec<Pooled>>>,
    /// Connections kept per cell; more are closed once their exchange ends.
    max_per_cell: usize,
    /// How long a connection may stay idle and still be reused (`upstream.idle_timeout`).
    idle_timeout: Duration,
}

impl Idle {
    /// Puts a connection back; connections idle past the timeout leave on the way (from the
    /// front, where the oldest are: usually none, one comparison). Dropping a `SendRequest`
    /// closes its connection once no request is in flight on it.
    fn checkin(&self, cell: usize, sender: SendRequest<Body>) {
        let now = Instant::now();
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let conns = &mut cells[cell];
        let expired = conns.iter().take_while(|(_, since)| now.duration_since(*since) >= self.idle_timeout).count();
        if expired > 0 {
            conns.drain(..expired);
        }
        if conns.len() < self.max_per_cell && !sender.is_closed() {
            conns.push((sender, now));
        }
    }

    /// The most recently used connection to `cell` that is still open and has not been idle
    /// past the timeout; closed ones are dropped on the way, and once the most recent one has
    /// expired so have all older ones. It may still be finishing its last exchange (see
    /// [`Pool::send`]).
    /// `now`: the caller's reading of the clock.
    fn checkout(&self, cell: usize, now: Instant) -> Option<SendRequest<Body>> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let conns = &mut cells[cell];
        while let Some((sender, since)) = conns.pop() {
            if now.duration_since(since) >= self.idle_timeout {
                conns.clear();
                return None;
            }
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }
}

pub struct Pool {
    targets: Vec<Target>,
    /// One per worker, then one for the threads that are not workers.
    workers: Vec<Arc<Idle>>,
    connect_timeout: Duration,
    /// Requests sent again after meeting a closing connection, by cell and reason.
    retries: Family<CellReasonLabels, Counter>,
}

/// Why a request was sent again (the `reason` label of the retry metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// hyper gave the request back unsent: the pooled connection was closed first.
    Unsent,
    /// An idempotent request without a body was written, then the pooled connection was reset
    /// or closed before a byte of response.
    ResetIdempotent,
}

impl Retry {
    pub fn as_str(self) -> &'static str {
        match self {
            Retry::Unsent => "unsent",
            Retry::ResetIdempotent => "reset_idempotent",
        }
    }
}

/// Idempotent methods (RFC 9110 §9.2.2): sending one twice has the effect of sending it once.
fn idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// True when `e` is a connection that went away under a written request before any response:
/// closed (hyper's "connection closed before message completed") or reset / broken by the
/// kernel. A response that began but was malformed is not one (that is the cell's answer).
#[cold]
fn connection_lost(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof);
        }
        src = cause.source();
    }
    false
}

thread_local! {
    /// The calling thread's worker index; None on threads that are not workers.
    static WORKER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Marks the calling thread as worker `index`: its requests use that worker's connections.
/// Threads that are not workers (the internal listener's, tests, embedding) share a pool of
/// their own (see `Pool::idle`).
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(Some(index)));
}

/// The calling thread's worker index (0 for threads that are not workers).
pub fn worker() -> usize {
    WORKER.with(|w| w.get()).unwrap_or(0)
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

    /// The body will not be read to its end: its connection is not pooled again.
    pub fn abandon(&mut self) {
        self.checkin = None;
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
    /// `idle_timeout`: how long a connection may sit in the pool and still be reused.
    /// `retries` counts requests sent again (registered by [`crate::metrics::Metrics`]).
    pub fn new(
        targets: Vec<Target>,
        workers: usize,
        connect_timeout: Duration,
        max_per_cell: usize,
        idle_timeout: Duration,
        retries: Family<CellReasonLabels, Counter>,
    ) -> Pool {
        let cells = targets.len();
        let workers = (0..=workers.max(1))
            .map(|_| Arc::new(Idle { cells: Mutex::new((0..cells).map(|_| Vec::new()).collect()), max_per_cell: max_per_cell.max(1), idle_timeout }))
            .collect();
        Pool { targets, workers, connect_timeout, retries }
    }

    #[cold]
    fn count_retry(&self, cell: usize, why: Retry, req: &Request<Body>, error: &hyper::Error) {
        let name = &self.targets[cell].name;
        self.retries.get_or_create(&CellReasonLabels { cell: name.clone(), reason: why.as_str() }).inc();
        tracing::info!(cell = %name, reason = why.as_str(), method = req.method().as_str(), path = req.uri().path(), error = %error, "request sent again: its pooled connection was closing");
    }

    /// The calling thread's idle connections. A connection's task runs on the event loop of the
    /// thread that opened it, so a thread must never take another's: the internal listener's
    /// thread (route-table refreshes) once shared worker 0's pool, and worker 0 then sent
    /// requests over the connections it had opened — each exchange a hop to that thread and
    /// back (two eventfd writes, two more wake-ups; ~10% of a worker's requests under strace).
    fn idle(&self) -> &Arc<Idle> {
        let others = self.workers.len() - 1;
        let i = WORKER.with(|w| w.get()).map_or(others, |w| w % others);
        &self.workers[i]
    }

    /// Sends `req` (origin-form URI) to `cell` and waits for the response headers. A body-less
    /// idempotent request lost to a closing pooled connection is sent again (see the module
    /// documentation); its method, target and headers are copied for that.
    pub async fn send(&self, cell: usize, req: Request<Body>) -> Result<Response<UpstreamBody>, UpstreamError> {
        let replay = (idempotent(req.method()) && req.body().is_end_stream()).then(|| Copied {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        });
        self.send_replayable(cell, req, replay.as_ref().map(|r| r as &dyn Resend), Instant::now()).await
    }

    /// [`Pool::send`], with what a resend would carry given by the caller (the proxied path
    /// keeps what a 421's replay needs anyway: no second copy per request). `replay` must make
    /// `req` again, and be `None` when `req` has a body; the method decides whether a written
    /// request may be sent again. `now` is the caller's reading of the clock (the proxied
    /// request reads it once for its cache lookup, its timeout and this): the first pooled
    /// connection's idle time is judged at it, any later one's at a fresh reading.
    ///
    /// A plain function returning an `async move` block, not an `async fn`: the request is
    /// kept once in the future, not twice (see `handler::handle`).
    #[allow(clippy::manual_async_fn, reason = "an `async fn` would keep its by-value arguments twice in the future")]
    pub fn send_replayable<'a>(
        &'a self,
        cell: usize,
        mut req: Request<Body>,
        replay: Option<&'a dyn Resend>,
        now: Instant,
    ) -> impl std::future::Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + 'a {
        async move {
            let host = &self.targets[cell].host;
            if !req.headers().contains_key(HOST) {
                req.headers_mut().insert(HOST, host.clone());
            }
            // Only idempotent, body-less requests may be sent again once written.
            let mut replay = replay.filter(|_| idempotent(req.method()) && req.body().is_end_stream());
            let mut fresh_only = false;
            let idle = self.idle();
            let mut now = Some(now);
            loop {
                let pooled = if fresh_only { None } else { idle.checkout(cell, now.take().unwrap_or_else(Instant::now)) };
                let (mut sender, reused) = match pooled {
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
                        Some(unsent) if reused => {
                            self.count_retry(cell, Retry::Unsent, &unsent, e.error());
                            req = unsent;
                        }
                        // Written, then the pooled connection went away without a byte of answer:
                        // an idempotent body-less request goes once more, on a new connection.
                        None if reused && replay.is_some() && connection_lost(e.error()) => {
                            let mut again = replay.take().expect("checked above").again();
                            if !again.headers().contains_key(HOST) {
                                again.headers_mut().insert(HOST, host.clone());
                            }
                            self.count_retry(cell, Retry::ResetIdempotent, &again, e.error());
                            req = again;
                            fresh_only = true;
                        }
                        _ => return Err(UpstreamError::Http(e.into_error())),
                    },
                }
            }
        }
    }

    async fn connect(&self, cell: usize) -> Result<SendRequest<Body>, UpstreamError> {
        let authority = &self.targets[cell].authority;
        let stream = dial(authority, self.connect_timeout).await?;
        let (sender, conn) =
            http1().handshake::<_, Body>(TokioIo::new(stream)).await.map_err(|e| UpstreamError::Connect(format!("handshake with {authority}: {e}")))?;
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
    /// rest once `release` is notified; the first `/drop-once` is read and its connection closed
    /// without an answer (a cell closing a keep-alive connection just as a request arrived).
    /// Counts connections and requests (heads read).
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
        let dropped = Arc::new(AtomicUsize::new(0));
        let (c, r, rel, d) = (connections.clone(), requests.clone(), release.clone(), dropped.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, r.clone(), rel.clone(), d.clone()));
            }
        });
        Upstream { addr, connections, requests, release }
    }

    async fn serve(mut sock: TcpStream, requests: Arc<AtomicUsize>, release: Arc<tokio::sync::Notify>, dropped: Arc<AtomicUsize>) {
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
            if target == "/drop-once" && dropped.fetch_add(1, Ordering::SeqCst) == 0 {
                return;
            }
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
        pool_idle(addr, Duration::from_secs(10))
    }

    fn pool_idle(addr: std::net::SocketAddr, idle_timeout: Duration) -> Pool {
        let authority = addr.to_string();
        let target = Target { name: "cell".into(), host: HeaderValue::from_str(&authority).unwrap(), authority };
        Pool::new(vec![target], 1, Duration::from_secs(2), 4, idle_timeout, Family::default())
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

    /// A connection idle past `idle_timeout` is not reused: the next request opens a new one,
    /// and the expired one leaves the pool (its cell sees it closed).
    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_not_reused() {
        let up = upstream().await;
        let pool = pool_idle(up.addr, Duration::from_millis(50));
        text(pool.send(0, get("/one")).await.unwrap()).await;
        text(pool.send(0, get("/two")).await.unwrap()).await;
        assert_eq!(up.connections.load(Ordering::SeqCst), 1, "reused within the timeout");
        tokio::time::sleep(Duration::from_millis(80)).await;
        text(pool.send(0, get("/three")).await.unwrap()).await;
        assert_eq!(up.connections.load(Ordering::SeqCst), 2, "a new connection after the timeout");
        assert_eq!(pool.idle_connections(0), 1, "only the new connection is pooled");
        assert_eq!(up.requests.load(Ordering::SeqCst), 3);
    }

    /// Expired connections leave when another one is put back, even if none is taken out.
    #[tokio::test]
    async fn checkin_drops_the_expired_connections_at_the_front() {
        let up = upstream().await;
        let pool = pool_idle(up.addr, Duration::from_millis(50));
        // Two connections at once: the first is busy with its slow body when the second is asked for.
        let a = pool.send(0, get("/slow")).await.unwrap();
        let b = pool.send(0, get("/b")).await.unwrap();
        assert_eq!(up.connections.load(Ordering::SeqCst), 2);
        up.release.notify_one();
        text(a).await;
        assert_eq!(pool.idle_connections(0), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        // The second goes back after the first expired: the first leaves, nothing was checked out.
        text(b).await;
        assert_eq!(pool.idle_connections(0), 1);
        text(pool.send(0, get("/c")).await.unwrap()).await;
        assert_eq!(up.connections.load(Ordering::SeqCst), 2, "the fresh second connection was reused");
    }

    /// The idle clock restarts at each checkin: a connection used regularly, each use within
    /// the timeout, is kept however long it lives.
    #[tokio::test]
    async fn a_connection_in_regular_use_is_kept() {
        let up = upstream().await;
        let pool = pool_idle(up.addr, Duration::from_millis(60));
        for i in 0..5 {
            text(pool.send(0, get(&format!("/r{i}"))).await.unwrap()).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(up.connections.load(Ordering::SeqCst), 1);
    }

    fn retried(pool: &Pool, reason: &'static str) -> u64 {
        pool.retries.get_or_create(&CellReasonLabels { cell: "cell".into(), reason }).get()
    }

    /// A body-less GET written to a pooled connection that the cell then closed without an
    /// answer goes once more, on a new connection, and is counted.
    #[tokio::test]
    async fn an_idempotent_request_lost_on_a_pooled_connection_is_sent_again_once() {
        let up = upstream().await;
        let pool = pool(up.addr);
        text(pool.send(0, get("/first")).await.unwrap()).await;
        let resp = pool.send(0, get("/drop-once")).await.expect("sent again on a fresh connection");
        assert_eq!(text(resp).await, format!("/drop-once {}", up.addr));
        assert_eq!(up.connections.load(Ordering::SeqCst), 2);
        assert_eq!(up.requests.load(Ordering::SeqCst), 3, "first, the lost one, the resend");
        assert_eq!(retried(&pool, "reset_idempotent"), 1);
    }

    /// A POST is not sent again once written, even without a body: the cell may have acted.
    #[tokio::test]
    async fn a_written_post_is_never_sent_again() {
        let up = upstream().await;
        let pool = pool(up.addr);
        text(pool.send(0, get("/first")).await.unwrap()).await;
        let post = Request::post("/drop-once").body(crate::proxy::empty()).unwrap();
        let err = pool.send(0, post).await.expect_err("not retried");
        assert!(!err.is_connect(), "{err}");
        assert_eq!(up.requests.load(Ordering::SeqCst), 2);
        assert_eq!(up.connections.load(Ordering::SeqCst), 1);
        assert_eq!(retried(&pool, "reset_idempotent"), 0);
    }

    /// The same loss on a connection made for the request is final: the cell itself is failing.
    #[tokio::test]
    async fn a_loss_on_a_fresh_connection_is_not_retried() {
        let up = upstream().await;
        let pool = pool(up.addr);
        assert!(pool.send(0, get("/drop-once")).await.is_err());
        assert_eq!(up.requests.load(Ordering::SeqCst), 1);
        assert_eq!(retried(&pool, "reset_idempotent") + retried(&pool, "unsent"), 0);
    }

    /// A request whose body was streamed is never sent again, even with an idempotent method.
    #[tokio::test]
    async fn a_put_with_a_body_is_not_sent_again() {
        let up = upstream().await;
        let pool = pool(up.addr);
        text(pool.send(0, get("/first")).await.unwrap()).await;
        let put = Request::put("/drop-once").body(crate::proxy::full("payload")).unwrap();
        assert!(pool.send(0, put).await.is_err());
        assert_eq!(up.requests.load(Ordering::SeqCst), 2);
        assert_eq!(retried(&pool, "reset_idempotent"), 0);
    }

    /// A connection opened on a thread that is not a worker (the internal listener's) stays in
    /// that thread's pool: a worker never gets it, nor does the other thread get a worker's.
    // Multi-threaded: the fake cell keeps answering while this thread waits for the worker's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_and_other_threads_never_share_connections() {
        let up = upstream().await;
        let pool = pool(up.addr);
        text(pool.send(0, get("/other")).await.unwrap()).await;
        assert_eq!(pool.idle_connections(0), 1);
        let on_worker = |pool: &Pool| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    set_worker(0);
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    let seen = pool.idle_connections(0);
                    let body = rt.block_on(async { text(pool.send(0, get("/worker")).await.unwrap()).await });
                    (seen, body, pool.idle_connections(0))
                })
                .join()
                .unwrap()
            })
        };
        let (seen, body, after) = on_worker(&pool);
        assert_eq!((seen, body.as_str(), after), (0, format!("/worker {}", up.addr).as_str(), 1));
        assert_eq!(up.connections.load(Ordering::SeqCst), 2, "the worker opened its own");
        assert_eq!(pool.idle_connections(0), 1, "the worker's connection is not this thread's");
        assert_eq!(worker(), 0, "threads that are not workers count as worker 0 in metrics");
    }

    async fn slow_responses(pool: &Pool, n: usize) -> Vec<Response<UpstreamBody>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(pool.send(0, get("/slow")).await.unwrap());
        }
        out
    }
}
