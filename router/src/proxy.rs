//! Forwarding one request to one cell: header hygiene, the request itself (body streamed, sent
//! once), responses, upgrades.
//!
//! The client request body is hyper's `Incoming` handed to the upstream request as it is: it
//! streams through with back-pressure, is never buffered, and since it is moved into the one
//! upstream request it cannot be sent twice. Only body-less requests are ever replayed (421).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::Config;
use crate::trust;
use crate::State;

/// The body type of everything the router sends or answers.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;
/// The pooled HTTP/1 client used for learn requests and forwarding.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Body>;

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

pub fn build_client(cfg: &Config) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(cfg.connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// True for `Connection: upgrade` + `Upgrade: <protocol>` (WebSocket and friends).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE)
        && headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// The headers the cell gets: the client's, minus hop-by-hop and internal ones, plus
/// X-Forwarded-For/-Proto/-Host. Unless `trust_forwarded_headers`, client-sent X-Forwarded-*
/// are replaced, so a cell can believe them.
pub fn upstream_headers(cfg: &Config, mut h: HeaderMap, peer: SocketAddr, upgrade: bool) -> HeaderMap {
    let prev_xff = if cfg.trust_forwarded_headers { joined(&h, "x-forwarded-for") } else { None };
    let keep_proto = cfg.trust_forwarded_headers && h.contains_key("x-forwarded-proto");
    let keep_host = cfg.trust_forwarded_headers && h.contains_key("x-forwarded-host");
    trust::strip_hop_by_hop(&mut h, upgrade);
    trust::strip_internal(&mut h);
    if upgrade {
        h.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let ip = peer.ip().to_string();
    let xff = match prev_xff {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    if !keep_proto {
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if !keep_host {
        match h.get(http::header::HOST).cloned() {
            Some(host) => h.insert("x-forwarded-host", host),
            None => h.remove("x-forwarded-host"),
        };
    }
    h
}

fn joined(h: &HeaderMap, name: &str) -> Option<String> {
    let parts: Vec<&str> = h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Removes what must not reach the client: hop-by-hop headers and the cells' internal ones.
pub fn sanitize_response(headers: &mut HeaderMap, switching: bool) {
    trust::strip_hop_by_hop(headers, switching);
    headers.remove(trust::CACHE_HEADER);
    headers.remove(trust::OWNER_HEADER);
    if switching {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
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
}

/// Sends one request to `cell`; `path_and_query` as the client sent it.
pub async fn send(st: &State, cell: usize, method: &Method, path_and_query: &str, headers: HeaderMap, body: Body) -> Result<Response<Incoming>, ForwardError> {
    let uri = format!("http://{}{}", st.cfg.cells[cell].authority, path_and_query);
    let mut req = Request::builder().method(method.clone()).uri(uri).body(body).map_err(|e| ForwardError::Other(e.to_string()))?;
    *req.headers_mut() = headers;
    match tokio::time::timeout(st.cfg.request_timeout, st.client.request(req)).await {
        Err(_) => Err(ForwardError::Timeout),
        Ok(Err(e)) if e.is_connect() => Err(ForwardError::Connect(error_chain(&e))),
        Ok(Err(e)) => Err(ForwardError::Other(error_chain(&e))),
        Ok(Ok(resp)) => Ok(resp),
    }
}

/// An upgrade request on a dedicated connection (a pooled one cannot be handed over), then,
/// on `101 Switching Protocols`, both upgraded streams spliced together.
pub async fn send_upgrade(
    st: &State,
    cell: usize,
    req: Request<Body>,
    client_side: hyper::upgrade::OnUpgrade,
) -> Result<Response<Incoming>, ForwardError> {
    let authority = &st.cfg.cells[cell].authority;
    let stream = match tokio::time::timeout(st.cfg.connect_timeout, tokio::net::TcpStream::connect(authority)).await {
        Err(_) => return Err(ForwardError::Connect(format!("connect to {authority} timed out"))),
        Ok(Err(e)) => return Err(ForwardError::Connect(format!("connect to {authority}: {e}"))),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(|e| ForwardError::Other(e.to_string()))?;
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
    Ok(resp)
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
