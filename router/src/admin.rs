//! The internal listener: the router's own endpoints, health and metrics.
//!
//! Why a listener of its own: on the public port these paths were reachable by every client
//! (cell names and URLs, cache size, per-cell error counts) and competed with client traffic.
//! They are served only on `internal_listen` (default `127.0.0.1:9190`), which a load balancer
//! health check or Prometheus reaches and clients do not; the public port answers every path
//! under [`ROUTER_PATHS`] with a 404 of its own and never forwards it (see `handler::handle`).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::proxy::{self, Body};
use crate::State;

pub const HEALTH_PATH: &str = "/-/cells-router/health";
pub const METRICS_PATH: &str = "/-/cells-router/metrics";
/// `DELETE` with `?prefix=/path` or `?cell=NAME`: the purge API (see `purge.rs`).
pub const CACHE_PATH: &str = "/-/cells-router/cache";
/// Every path under this is the router's own, answered and never forwarded.
pub const ROUTER_PATHS: &str = "/-/cells-router/";

/// Serves the internal endpoints on `listener` until `shutdown` completes (in-flight scrapes are
/// not waited for: they are cheap and idempotent).
pub async fn serve_internal(listener: TcpListener, st: Arc<State>, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(st.cfg.header_read_timeout);
    tokio::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    // The cells' route tables, read from their health answers (mixed versions, `tables.rs`):
    // on this thread, off the workers' event loops.
    let tables = tokio::spawn(crate::tables::refresh(st.clone()));
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "internal listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let st = st.clone();
        let conn = http.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let st = st.clone();
                async move {
                    if req.uri().path() == CACHE_PATH && req.method() == Method::DELETE {
                        return Ok::<_, Infallible>(crate::purge::handle(&st, &req).await);
                    }
                    Ok(answer(&st, &req))
                }
            }),
        );
        conns.spawn(async move {
            let _ = conn.await;
        });
        while conns.try_join_next().is_some() {}
    }
    tables.abort();
}

fn answer(st: &State, req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return proxy::json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the router's endpoints answer GET only (and DELETE /-/cells-router/cache)",
        );
    }
    match req.uri().path() {
        HEALTH_PATH => health(st),
        METRICS_PATH => metrics(st),
        CACHE_PATH => proxy::json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "the cache endpoint answers DELETE only"),
        _ => proxy::json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the internal listener serves /-/cells-router/health, /-/cells-router/metrics and DELETE /-/cells-router/cache",
        ),
    }
}

fn metrics(st: &State) -> Response<Body> {
    // moka counts entries lazily: apply pending work so the gauge is exact.
    st.cache.run_pending_tasks();
    let mut r = Response::new(proxy::full(st.metrics.encode(st.cache.entry_count())));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    r
}

fn health(st: &State) -> Response<Body> {
    let cells: Vec<_> = st
        .cfg
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| serde_json::json!({ "name": c.name, "url": c.url.to_string(), "healthy": st.health.is_up(i), "breaker": st.health.state(i).as_str() }))
        .collect();
    // The same count as the metric's, not moka's estimate (see `metrics`).
    st.cache.run_pending_tasks();
    let body = serde_json::json!({
        "status": "ok",
        "router": st.cfg.name,
        "default_cell": st.cfg.default_cell,
        "cache_entries": st.cache.entry_count(),
        "cells": cells,
    });
    let mut r = proxy::json_response(StatusCode::OK, body.to_string());
    r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
