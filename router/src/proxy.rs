//! Forwarding one request to one cell: header hygiene, the request itself (body streamed, sent
//! once), responses, upgrades.
//!
//! The client request body is hyper's `Incoming` handed to the upstream request as it is: it
//! streams through with back-pressure, is never buffered, and since it is moved into the one
//! upstream request it cannot be sent twice. Only body-less requests are ever replayed (421).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;

use crate::answer_idle::IdleWatch;
use crate::config::Config;
use crate::lazy_timer::LazyTimer;
use crate::trust;
pub use crate::upstream::UpstreamBody;
use crate::State;

/// The body type of everything the router sends or answers.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;
/// The upstream connections, for learn requests and forwarding (see [`crate::upstream`]).
pub type Client = crate::upstream::Pool;

/// What a client gets as a response body: a cell's body as it came, or anything else (the
/// router's own answers) boxed. Most responses are a cell's: boxing each one cost an
/// allocation and a dynamic call per frame, for the rare router-made answer.
pub enum ClientBody {
    /// A cell's body, cut if it stops for `timeouts.response_idle` (see [`crate::answer_idle`]).
    Cell(UpstreamBody, IdleWatch),
    Router(Body),
}

/// What a client's answer body fails with: the cell's connection failing, or the cell going
/// silent mid-body ([`crate::answer_idle::Stalled`]). Either way hyper cuts the answer.
pub type ClientBodyError = Box<dyn std::error::Error + Send + Sync>;

impl From<Body> for ClientBody {
    fn from(b: Body) -> ClientBody {
        ClientBody::Router(b)
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, ClientBodyError>>> {
        use std::task::Poll;
        // Both variants are Unpin (hyper's `Incoming`, a pinned box).
        match self.get_mut() {
            ClientBody::Cell(b, idle) => match std::pin::Pin::new(&mut *b).poll_frame(cx) {
                Poll::Ready(frame) => {
                    idle.moved();
                    Poll::Ready(frame.map(|f| f.map_err(ClientBodyError::from)))
                }
                Poll::Pending => match idle.poll_stalled(cx) {
                    Poll::Ready(()) => {
                        // The cell's connection goes with the body, not back to the pool.
                        b.abandon();
                        Poll::Ready(Some(Err(crate::answer_idle::Stalled(idle.limit()).into())))
                    }
                    Poll::Pending => Poll::Pending,
                },
            },
            ClientBody::Router(b) => std::pin::Pin::new(b).poll_frame(cx).map(|frame| frame.map(|f| f.map_err(ClientBodyError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Cell(b, _) => b.is_end_stream(),
            ClientBody::Router(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ClientBody::Cell(b, _) => b.size_hint(),
            ClientBody::Router(b) => b.size_hint(),
        }
    }
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// The contract's error shape: `{"error":code,"message":...}`, JSON, never cached.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    json_response(status, body)
}

pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Connections kept per cell and worker thread.
const MAX_CONNECTIONS_PER_CELL: usize = 256;

/// The pool; `retries` is the metric family it counts its retries in.
pub fn build_client(
    cfg: &Config,
    retries: prometheus_client::metrics::family::Family<crate::metrics::CellReasonLabels, prometheus_client::metrics::counter::Counter>,
) -> Client {
    let targets = cfg
        .cells
        .iter()
        .map(|c| crate::upstream::Target {
            name: c.name.clone(),
            authority: c.authority.clone(),
            host: HeaderValue::from_str(c.uri_authority.as_str()).expect("a parsed authority is a valid header value"),
        })
        .collect();
    crate::upstream::Pool::new(targets, cfg.workers, cfg.connect_timeout, MAX_CONNECTIONS_PER_CELL, cfg.upstream_idle_timeout, retries)
}

/// True for `Connection: upgrade` + `Upgrade: <protocol>` (WebSocket and friends). `found` is
/// [`scan`]'s answer for `headers` (it says whether there is an `Upgrade` header: no lookup).
pub fn is_upgrade(headers: &HeaderMap, found: Found) -> bool {
    found.0 & UPGRADE_BIT != 0
        && headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// One client connection's peer, resolved once per connection: the `X-Forwarded-For` value
/// is the same for every request on it.
#[derive(Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr`'s IP as a header value.
    pub ip: HeaderValue,
    /// The connection's timer: hyper's header-read timeout and the request timeout.
    pub timer: Arc<LazyTimer>,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        let ip = HeaderValue::from_str(&addr.ip().to_string()).expect("an IP address is a valid header value");
        Peer { addr, ip, timer: Arc::new(LazyTimer::new()) }
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// `X-Gitlab-Cell-Cache`, as a name (no parsing per lookup).
pub const CACHE_HEADER: HeaderName = HeaderName::from_static(trust::CACHE_HEADER);
const OWNER_HEADER: HeaderName = HeaderName::from_static(trust::OWNER_HEADER);
const HTTP: HeaderValue = HeaderValue::from_static("http");

/// The headers the cell gets: the client's, minus hop-by-hop and internal ones, plus
/// X-Forwarded-For/-Proto/-Host and X-Real-IP. Unless `trust_forwarded_headers`, client-sent
/// X-Forwarded-* and X-Real-IP are replaced and `Forwarded` (RFC 7239, which Rack 3 and other
/// frameworks read before X-Forwarded-*) is removed, so a cell can believe what it gets. With
/// it, the router is behind a trusted proxy: X-Forwarded-For and `Forwarded` get the peer
/// appended, X-Forwarded-Proto/-Host and X-Real-IP are kept when present. `found` is [`scan`]'s
/// answer for `h` with [`Private::Internal`].
pub fn upstream_headers(cfg: &Config, mut h: HeaderMap, found: Found, peer: &Peer, upgrade: bool) -> HeaderMap {
    let prev_xff = if cfg.trust_forwarded_headers { joined(&h, &X_FORWARDED_FOR) } else { None };
    let keep_proto = cfg.trust_forwarded_headers && h.contains_key(&X_FORWARDED_PROTO);
    let keep_host = cfg.trust_forwarded_headers && h.contains_key(&X_FORWARDED_HOST);
    let keep_real_ip = cfg.trust_forwarded_headers && h.contains_key(&X_REAL_IP);
    let forwarded = if cfg.trust_forwarded_headers { joined(&h, &FORWARDED) } else { None };
    if !cfg.trust_forwarded_headers && found.0 & FORWARDED_BIT != 0 {
        h.remove(FORWARDED);
    }
    // Removing `Forwarded` changed nothing else `found` says.
    strip_found(&mut h, found, upgrade, Private::Internal);
    if upgrade {
        h.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let xff = match prev_xff {
        Some(prev) => HeaderValue::from_str(&format!("{prev}, {}", peer.addr.ip())).ok(),
        None => Some(peer.ip.clone()),
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR, v);
    }
    if !keep_proto {
        h.insert(X_FORWARDED_PROTO, HTTP);
    }
    if !keep_real_ip {
        h.insert(X_REAL_IP, peer.ip.clone());
    }
    if let Some(prev) = forwarded {
        // RFC 7239 §6: an IPv6 node is quoted and bracketed.
        let node = match peer.addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("\"[{ip}]\""),
        };
        match HeaderValue::from_str(&format!("{prev}, for={node}")) {
            Ok(v) => h.insert(FORWARDED, v),
            Err(_) => h.remove(FORWARDED),
        };
    }
    if !keep_host {
        match h.get(http::header::HOST).cloned() {
            Some(host) => h.insert(X_FORWARDED_HOST, host),
            None => h.remove(X_FORWARDED_HOST),
        };
    }
    h
}

fn joined(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Removes what must not reach the client: hop-by-hop headers and the cells' internal ones.
/// `found` is [`scan`]'s answer for these headers (the caller looked for cache headers first).
pub fn sanitize_response(headers: &mut HeaderMap, found: Found, switching: bool) {
    if found.0 & TRANSFER_ENCODING_BIT != 0 {
        // RFC 9112 §6.3: a message with both framings is read by its `Transfer-Encoding`, and an
        // intermediary forwarding it "MUST first remove the received Content-Length". hyper read
        // the cell's body chunked and frames it anew for the client; a `Content-Length` left
        // beside it told the client another length than the bytes it got (a response split:
        // `tests/cell_framing.rs`).
        headers.remove(http::header::CONTENT_LENGTH);
    }
    strip_found(headers, found, switching, Private::CellAnswers);
    if switching {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// The names `trust::strip_hop_by_hop` removes besides those a `Connection` header lists.
static HOP_BY_HOP: [HeaderName; 8] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
];
/// `Transfer-Encoding`: its place in [`HOP_BY_HOP`] (see [`scan`]).
const TRANSFER_ENCODING_BIT: u32 = 1 << 7;
const UPGRADE_BIT: u32 = 1 << 8;
const PRIVATE_BIT: u32 = UPGRADE_BIT << 1;
/// `Forwarded` (RFC 7239), which requests lose unless `trust_forwarded_headers`.
const FORWARDED_BIT: u32 = PRIVATE_BIT << 1;

/// Which router-private headers `strip` removes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Private {
    /// Requests: every `X-Gitlab-Cell-*` and `X-Cells-Router-*` (`trust::strip_internal`).
    Internal,
    /// Responses: the cells' `X-Gitlab-Cell-Cache` and `X-Gitlab-Cell-Owner`.
    CellAnswers,
}

/// Which of the names `strip` removes a header map holds: bit `i` for `HOP_BY_HOP[i]`, then
/// `Upgrade`, then any private header, then `Forwarded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found(u32);

impl Found {
    /// True when the map holds a private header (for responses: a cache or owner header).
    pub fn private(self) -> bool {
        self.0 & PRIVATE_BIT != 0
    }

    /// True when the map holds a `Transfer-Encoding` header.
    pub fn transfer_encoding(self) -> bool {
        self.0 & TRANSFER_ENCODING_BIT != 0
    }
}

/// The message's `Transfer-Encoding` is `chunked` alone, the one coding hyper decodes (once its
/// own checks have passed: a final `chunked`, one header). Any coding under it (`gzip, chunked`,
/// valid HTTP/1.1: RFC 9112 §6.1) would stay on the body the router frames anew as plain
/// `chunked`, and the other side would take the coded bytes for the content.
#[cold]
pub fn only_chunked(h: &HeaderMap) -> bool {
    let mut values = h.get_all(http::header::TRANSFER_ENCODING).iter();
    matches!((values.next(), values.next()), (Some(v), None) if v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// A message the router cannot forward for its transfer coding (see [`only_chunked`]).
#[cold]
pub fn unsupported_coding(whose: &str) -> ForwardError {
    ForwardError::Other(format!("{whose} has a transfer coding other than chunked"))
}

/// One pass over the names, each matched as a string: the compiled `match` tells most names
/// (`host`, `accept…`, `content-type`, `date`, `server`…) from the hop-by-hop ones by their
/// length alone, where comparing each against the nine names one by one cost several hundred
/// instructions per request and response. Private names all start with `x` (`f` is let through
/// too, for `forwarded`-like names `trust::is_internal` may come to cover). The tests below hold
/// this to `HOP_BY_HOP` and to the slow path.
pub fn scan(h: &HeaderMap, private: Private) -> Found {
    let mut found = 0u32;
    for name in h.keys() {
        found |= match name.as_str() {
            "connection" => 1 << 0,
            "keep-alive" => 1 << 1,
            "proxy-connection" => 1 << 2,
            "proxy-authenticate" => 1 << 3,
            "proxy-authorization" => 1 << 4,
            "te" => 1 << 5,
            "trailer" => 1 << 6,
            "transfer-encoding" => TRANSFER_ENCODING_BIT,
            "upgrade" => UPGRADE_BIT,
            "forwarded" => FORWARDED_BIT,
            n if matches!(n.as_bytes()[0], b'x' | b'f')
                && match private {
                    Private::Internal => trust::is_internal(name),
                    Private::CellAnswers => name == CACHE_HEADER || name == OWNER_HEADER,
                } =>
            {
                PRIVATE_BIT
            }
            _ => 0,
        };
    }
    Found(found)
}

/// `trust::strip_hop_by_hop` + the private headers, without touching the map when there is
/// nothing to remove — the common case — and without parsing header names when `Connection`
/// lists only standard hop-by-hop names (`keep-alive`, `close`, `upgrade`): one pass over the
/// names decides. Anything else (`Connection: x-foo`) goes to `trust::strip_hop_by_hop` itself.
#[cfg(test)]
fn strip(h: &mut HeaderMap, keep_upgrade: bool, private: Private) {
    let found = scan(h, private);
    strip_found(h, found, keep_upgrade, private);
}

/// [`strip`] once [`scan`] has looked.
fn strip_found(h: &mut HeaderMap, Found(found): Found, keep_upgrade: bool, private: Private) {
    if found & !FORWARDED_BIT == 0 {
        return;
    }
    if found & 1 != 0 && !connection_lists_only_hop_by_hop(h) {
        trust::strip_hop_by_hop(h, keep_upgrade);
    } else {
        for (i, n) in HOP_BY_HOP.iter().enumerate() {
            if found & (1 << i) != 0 {
                h.remove(n);
            }
        }
        if found & UPGRADE_BIT != 0 && !keep_upgrade {
            h.remove(http::header::UPGRADE);
        }
    }
    if found & PRIVATE_BIT != 0 {
        match private {
            Private::Internal => trust::strip_internal(h),
            Private::CellAnswers => {
                h.remove(CACHE_HEADER);
                h.remove(OWNER_HEADER);
            }
        }
    }
}

/// True when every token of every `Connection` value is empty, `upgrade` or a name in
/// `HOP_BY_HOP` (which are removed anyway): then the tokens name nothing else to remove.
fn connection_lists_only_hop_by_hop(h: &HeaderMap) -> bool {
    // The common case, a cell's one `Connection: keep-alive` (or `close`), decided without
    // splitting and comparing each token against every name (callgrind: the response's
    // header stripping 975 → 551 instructions).
    let mut values = h.get_all(http::header::CONNECTION).iter();
    if let (Some(v), None) = (values.next(), values.next()) {
        let v = v.as_bytes();
        if v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close") {
            return true;
        }
    }
    h.get_all(http::header::CONNECTION).iter().all(|v| match v.to_str() {
        Ok(s) => s.split(',').all(|t| {
            let t = t.trim();
            t.is_empty() || t.eq_ignore_ascii_case("upgrade") || HOP_BY_HOP.iter().any(|n| t.eq_ignore_ascii_case(n.as_str()))
        }),
        Err(_) => false,
    })
}

/// Why forwarding failed.
#[derive(Debug)]
pub enum ForwardError {
    /// The cell could not be reached (nothing was sent).
    Connect(String),
    /// No response headers within `timeouts.request`.
    Timeout,
    /// The exchange broke after the request was (perhaps partly) sent.
    Other(String),
    /// The client's own request body broke off or was malformed (bad chunked framing, the
    /// client gone mid-body) while it streamed to the cell: the client's fault, not the cell's.
    ClientBody(String),
    /// The client stopped sending its body mid-way for `timeouts.request` (hyper asked for more
    /// and got nothing): the client's fault, answered `408` (see [`crate::body_progress`]).
    ClientBodyTimeout,
}

/// True when hyper's client failed because the request body it was streaming — the client's
/// `Incoming` — yielded an error: that error is then the cause of a user-body error.
fn client_body_failed(e: &crate::upstream::UpstreamError) -> bool {
    match e {
        crate::upstream::UpstreamError::Http(e) => {
            e.is_user() && std::error::Error::source(e).is_some_and(|cause| cause.downcast_ref::<hyper::Error>().is_some())
        }
        crate::upstream::UpstreamError::Connect(_) => false,
    }
}

/// The request to a cell: origin-form target, as the client sent it.
#[inline]
pub fn request(method: &Method, path_and_query: &PathAndQuery, headers: HeaderMap, body: Body) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = Uri::from(path_and_query.clone());
    *req.headers_mut() = headers;
    req
}

/// Sends one request to `cell`; `path_and_query` as the client sent it.
///
/// `timer` is the client connection's: the request timeout costs no timer-wheel work unless
/// the cell is slow (see [`crate::lazy_timer`]). `at`: when the request is handed to the cell,
/// as the caller read it (the timeout runs from there; the pool judges idle connections by it).
/// `replay`: when the request has no body, what makes it again, so that an idempotent one lost
/// to a closing pooled connection can be sent again (see [`crate::upstream`]).
///
/// A plain function returning an `async move` block (see `handler::handle`): the request is
/// made in the exchange's future, not kept beside it.
#[allow(clippy::manual_async_fn, reason = "an `async fn` would keep its by-value arguments twice in the future")]
#[allow(clippy::too_many_arguments)]
pub fn send<'a>(
    st: &'a State,
    timer: &'a LazyTimer,
    cell: usize,
    method: &'a Method,
    path_and_query: &'a PathAndQuery,
    headers: HeaderMap,
    body: Body,
    replay: Option<&'a dyn crate::upstream::Resend>,
    continue_gate: Option<std::sync::Arc<crate::expect_continue::Gate>>,
    progress: Option<std::sync::Arc<crate::body_progress::Progress>>,
    at: std::time::Instant,
) -> impl std::future::Future<Output = Result<Response<UpstreamBody>, ForwardError>> + 'a {
    async move {
        let mut req = request(method, path_and_query, headers, body);
        if let Some(gate) = continue_gate {
            // The cell's `100 Continue` lets the client's body go (see `expect_continue`).
            gate.watch(&mut req);
        }
        // Pinned here, handed to the timeout by reference: the exchange's future (the request,
        // the connection) is large, and moved into the timeout it was copied twice.
        let exchange = std::pin::pin!(st.client.send_replayable(cell, req, replay, at));
        // With a body, the timeout runs from the body's last move (see `body_progress`).
        let fixed = at + st.cfg.request_timeout;
        let deadline = || match &progress {
            None => fixed,
            Some(p) => p.last_moved() + st.cfg.request_timeout,
        };
        match timer.timeout_by(deadline, exchange).await {
            // A switch the request did not ask for (upgrades go through `send_upgrade`) is a
            // broken answer (RFC 9110 §15.2.2: a server switches only to a protocol the client
            // named): forwarded, the client would have got a `101` with nothing behind it. The
            // connection is dropped with the answer, not pooled.
            Ok(Ok(resp)) if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS => Err(unasked_switch()),
            Ok(Ok(resp)) => Ok(resp),
            // Whose silence it was: a client that stopped sending its body is not the cell's.
            Err(_) if progress.is_some_and(|p| p.waiting() == crate::body_progress::Waiting::Client) => Err(ForwardError::ClientBodyTimeout),
            Err(_) => Err(ForwardError::Timeout),
            Ok(Err(e)) => Err(forward_error(e)),
        }
    }
}

#[cold]
fn unasked_switch() -> ForwardError {
    ForwardError::Other("the cell answered 101 Switching Protocols to a request that asked for no upgrade".into())
}

/// Why the exchange failed, as [`ForwardError`] says it (out of line: the rare case).
#[cold]
fn forward_error(e: crate::upstream::UpstreamError) -> ForwardError {
    if e.is_connect() {
        ForwardError::Connect(error_chain(&e))
    } else if client_body_failed(&e) {
        ForwardError::ClientBody(error_chain(&e))
    } else {
        ForwardError::Other(error_chain(&e))
    }
}

/// An upgrade request on a dedicated connection (a pooled one cannot be handed over), then,
/// on `101 Switching Protocols`, both upgraded streams spliced together.
pub async fn send_upgrade(st: &State, cell: usize, req: Request<Body>, client_side: hyper::upgrade::OnUpgrade) -> Result<Response<UpstreamBody>, ForwardError> {
    let stream = crate::upstream::dial(&st.cfg.cells[cell].authority, st.cfg.connect_timeout).await.map_err(|e| ForwardError::Connect(e.to_string()))?;
    let (mut sender, conn) = crate::upstream::http1().handshake::<_, Body>(TokioIo::new(stream)).await.map_err(|e| ForwardError::Other(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream upgrade connection ended");
        }
    });
    let mut resp = match tokio::time::timeout(st.cfg.request_timeout, sender.send_request(req)).await {
        Err(_) => return Err(ForwardError::Timeout),
        Ok(Err(e)) => return Err(ForwardError::Other(e.to_string())),
        Ok(Ok(r)) => r,
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client_side, upstream_side) {
                Ok((client_io, upstream_io)) => {
                    let (mut a, mut b) = (TokioIo::new(client_io), TokioIo::new(upstream_io));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
                        tracing::debug!(error = %e, "upgraded connection ended with an error");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "upgrade failed"),
            }
        });
    }
    Ok(resp.map(UpstreamBody::unpooled))
}

/// The error and its causes on one line (hyper's top-level messages alone say little).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECTION_VALUES: [&[u8]; 9] =
        [b"keep-alive", b"close", b"Keep-Alive, Upgrade", b"x-foo", b"close, x-gitlab-cell-cache", b"", b" , ", b"upgrade", b"caf\xe9"];
    const NAMES: [&str; 19] = [
        "keep-alive",
        "x_gitlab_cell_cache",
        "x_forwarded_for",
        "content-type",
        "cookie",
        "forwarded",
        "upgrade",
        "x-foo",
        "te",
        "transfer-encoding",
        "trailer",
        "proxy-connection",
        "proxy-authorization",
        "x-gitlab-cell-cache",
        "x-gitlab-cell-owner",
        "x-gitlab-cell-other",
        "x-cells-router-trace",
        "accept",
        "host",
    ];

    /// The fast path removes exactly what trust's functions remove, on every mix of names.
    #[test]
    fn strip_matches_trust_on_random_header_sets() {
        let mut next = crate::test_rng(0x9e37_79b9_7f4a_7c15_u64);
        for _ in 0..5000 {
            let mut h = HeaderMap::new();
            let bits = next();
            for (i, n) in NAMES.iter().enumerate() {
                if bits & (1 << i) != 0 {
                    h.append(*n, HeaderValue::from_static("1"));
                }
            }
            let conns = (bits >> 20) % 3;
            for _ in 0..conns {
                let v = CONNECTION_VALUES[(next() % CONNECTION_VALUES.len() as u64) as usize];
                h.append(http::header::CONNECTION, HeaderValue::from_bytes(v).unwrap());
            }
            let answers = h.contains_key(trust::CACHE_HEADER) || h.contains_key(trust::OWNER_HEADER);
            assert_eq!(scan(&h, Private::CellAnswers).private(), answers, "headers {h:?}");
            for keep_upgrade in [false, true] {
                let mut fast = h.clone();
                strip(&mut fast, keep_upgrade, Private::Internal);
                let mut slow = h.clone();
                trust::strip_hop_by_hop(&mut slow, keep_upgrade);
                trust::strip_internal(&mut slow);
                assert_eq!(fast, slow, "requests, keep_upgrade={keep_upgrade}, headers {h:?}");

                let mut fast = h.clone();
                strip(&mut fast, keep_upgrade, Private::CellAnswers);
                let mut slow = h.clone();
                trust::strip_hop_by_hop(&mut slow, keep_upgrade);
                slow.remove(trust::CACHE_HEADER);
                slow.remove(trust::OWNER_HEADER);
                assert_eq!(fast, slow, "responses, keep_upgrade={keep_upgrade}, headers {h:?}");
            }
        }
    }

    /// `scan`'s string match gives each name of `HOP_BY_HOP` its own bit, and `Upgrade` and
    /// `Forwarded` theirs, whatever the spelling the client sent.
    #[test]
    fn scan_gives_each_stripped_name_its_bit() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_bytes(name.as_str().to_uppercase().as_bytes()).unwrap(), HeaderValue::from_static("1"));
            assert_eq!(scan(&h, Private::Internal), Found(1 << i), "{name}");
        }
        let mut h = HeaderMap::new();
        h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(FORWARDED, HeaderValue::from_static("for=1.2.3.4"));
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(scan(&h, Private::Internal), Found(UPGRADE_BIT | FORWARDED_BIT));
    }

    /// A router-made answer keeps its length (hyper writes it as Content-Length) and its bytes.
    #[tokio::test]
    async fn router_answers_keep_their_length_and_bytes() {
        let body = ClientBody::from(full("{\"error\":\"x\"}"));
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(13));
        assert!(!hyper::body::Body::is_end_stream(&body));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"error\":\"x\"}");
        assert!(hyper::body::Body::is_end_stream(&ClientBody::from(empty())));
    }

    /// The headers a cell gets, pinned entry by entry and in order: IPv4 and IPv6 peers, with
    /// and without `trust_forwarded_headers`, a client that sends none of the forwarding
    /// headers and one that sends them all (two `X-Forwarded-For`, a `Forwarded`, hop-by-hop
    /// and internal ones).
    #[test]
    fn cells_get_exactly_these_forwarding_headers() {
        let config = |trust: bool| {
            let t =
                format!("name='r'\nlisten='127.0.0.1:0'\ndefault_cell='c0'\ntrust_forwarded_headers={trust}\n[[cells]]\nname='c0'\nurl='http://127.0.0.1:1'\n");
            Config::from_toml(&t, &crate::Args::default()).unwrap()
        };
        let plain: &[(&str, &str)] = &[("host", "gitlab.example"), ("accept", "*/*")];
        let sent: &[(&str, &str)] = &[
            ("host", "gitlab.example"),
            ("x-forwarded-for", "10.0.0.1"),
            ("connection", "keep-alive"),
            ("x-real-ip", "10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
            ("forwarded", "for=10.0.0.4;proto=https"),
            ("x-forwarded-proto", "https"),
            ("x-gitlab-cell-cache", "path=/; cell=c0"),
            ("x-forwarded-host", "front.example"),
            ("accept", "*/*"),
        ];
        let run = |trust: bool, peer: &str, client: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut h = HeaderMap::new();
            for (n, v) in client {
                h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            let found = scan(&h, Private::Internal);
            let out = upstream_headers(&config(trust), h, found, &Peer::new(peer.parse().unwrap()), false);
            out.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())).collect()
        };
        let pairs = |l: &[(&str, &str)]| -> Vec<(String, String)> { l.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect() };
        let v4 = "192.0.2.7:40000";
        let v6 = "[2001:db8::7]:40000";
        fn added(ip: &str) -> [(&str, &str); 4] {
            [("x-forwarded-for", ip), ("x-forwarded-proto", "http"), ("x-real-ip", ip), ("x-forwarded-host", "gitlab.example")]
        }
        for trust in [false, true] {
            for (peer, ip) in [(v4, "192.0.2.7"), (v6, "2001:db8::7")] {
                let mut want = plain.to_vec();
                want.extend(added(ip));
                assert_eq!(run(trust, peer, plain), pairs(&want), "trust={trust} peer={peer}");
            }
        }
        // Not trusted: the client's forwarding headers are replaced in place, `Forwarded` and
        // the hop-by-hop and internal ones are gone (each removal moves the map's last entry
        // into the gap).
        for (peer, ip) in [(v4, "192.0.2.7"), (v6, "2001:db8::7")] {
            let want = [
                ("host", "gitlab.example"),
                ("x-forwarded-for", ip),
                ("x-forwarded-host", "gitlab.example"),
                ("x-real-ip", ip),
                ("accept", "*/*"),
                ("x-forwarded-proto", "http"),
            ];
            assert_eq!(run(false, peer, sent), pairs(&want), "peer={peer}");
        }
        // Trusted: the chain is extended, the others kept.
        for (peer, ip, node) in [(v4, "192.0.2.7", "192.0.2.7"), (v6, "2001:db8::7", "\"[2001:db8::7]\"")] {
            let xff = format!("10.0.0.1, 10.0.0.3, {ip}");
            let fwd = format!("for=10.0.0.4;proto=https, for={node}");
            let want = [
                ("host", "gitlab.example"),
                ("x-forwarded-for", xff.as_str()),
                ("accept", "*/*"),
                ("x-real-ip", "10.0.0.2"),
                ("forwarded", fwd.as_str()),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "front.example"),
            ];
            assert_eq!(run(true, peer, sent), pairs(&want), "peer={peer}");
        }
    }

    #[test]
    fn untouched_maps_stay_as_they_are() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.com"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        let before = h.clone();
        strip(&mut h, false, Private::Internal);
        assert_eq!(h, before);
    }
}
