//! The purge API: `DELETE /-/cells-router/cache?prefix=/acme-corp` or `?cell=cell_us1` on the
//! internal listener, with `Authorization: Bearer <purge token>`.
//!
//! Why: an organization or top-level namespace that moves used to reach a router only through
//! a `421` from its old cell (one wasted round trip per router and namespace, and a request
//! with a body gets the `421` itself). Rails calls this (through the gem's
//! `Gitlab::Cells::Learn::Invalidation`) after the routes row changes, and every router sends
//! the next request straight to the new cell. With the shared tier the router deletes the
//! Redis entries too and publishes the purge, which every router applies (see `shared.rs`);
//! without it, the caller purges each router it knows.
//!
//! The token is compared in constant time and never logged; without a configured token the
//! endpoint refuses every purge (`403`).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::proxy::{self, Body};
use crate::shared::{self, Purge};
use crate::State;

/// How long a purge may take in Redis (delete + publish) before the caller hears it failed.
const SHARED_PURGE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a purge request was refused: a 4xx JSON answer.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("purges are disabled: no purge token is configured (purge_token_file or CELLS_ROUTER_PURGE_TOKEN)")]
    Disabled,
    #[error("missing or wrong purge token (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("{0}")]
    BadQuery(String),
}

impl Refused {
    fn response(&self) -> Response<Body> {
        let (status, code) = match self {
            Refused::Disabled => (StatusCode::FORBIDDEN, "purge_disabled"),
            Refused::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Refused::BadQuery(_) => (StatusCode::BAD_REQUEST, "invalid_purge"),
        };
        proxy::json_error(status, code, &self.to_string())
    }
}

pub(crate) async fn handle(st: &State, req: &Request<Incoming>) -> Response<Body> {
    let purge = match authorize(st, req).and_then(|()| parse(st, req.uri().query().unwrap_or(""))) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(reason = %e, "purge refused");
            return e.response();
        }
    };
    let local = shared::apply(&st.cache, &cell_names(st), &purge);
    let mut body = serde_json::json!({ "status": "purged", "local_entries": local });
    match &purge {
        Purge::Prefix(p) => body["prefix"] = p.as_str().into(),
        Purge::Cell(c) => body["cell"] = c.as_str().into(),
    }
    if let Some(tier) = &st.shared {
        match tier.purge(&purge, SHARED_PURGE_TIMEOUT).await {
            Ok(n) => {
                body["shared_entries"] = n.into();
                body["published"] = true.into();
            }
            Err(e) => {
                tracing::warn!(purge = ?purge, local, error = %e, "purge applied here but not published: other routers keep their entries");
                return proxy::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shared_cache_unavailable",
                    "purged on this router only: the shared cache did not take the purge; retry",
                );
            }
        }
    }
    tracing::info!(purge = ?purge, local, "purge");
    proxy::json_response(StatusCode::OK, body.to_string())
}

fn cell_names(st: &State) -> Vec<String> {
    st.cfg.cells.iter().map(|c| c.name.clone()).collect()
}

fn authorize(st: &State, req: &Request<Incoming>) -> Result<(), Refused> {
    let token = st.cfg.purge_token.as_ref().ok_or(Refused::Disabled)?;
    let offered = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer ")).ok_or(Refused::Unauthorized)?;
    if token.matches(offered) {
        Ok(())
    } else {
        Err(Refused::Unauthorized)
    }
}

/// Exactly one of `prefix` (an absolute path below `/`, without `.`/`..` or empty segments)
/// and `cell` (a configured cell).
fn parse(st: &State, query: &str) -> Result<Purge, Refused> {
    let mut found = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let p = match k.as_ref() {
            "prefix" => {
                let path = v.trim_end_matches('/');
                let ok = path.starts_with('/') && path.len() > 1 && !path[1..].split('/').any(|s| s.is_empty() || s == "." || s == "..");
                if !ok || path.contains(['?', '#']) || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    return Err(Refused::BadQuery(format!("invalid prefix {v:?}: an absolute path below / (e.g. /acme-corp)")));
                }
                Purge::Prefix(path.to_string())
            }
            "cell" => {
                if !st.cfg.cells.iter().any(|c| c.name == v) {
                    return Err(Refused::BadQuery(format!("unknown cell {v:?}")));
                }
                Purge::Cell(v.into_owned())
            }
            other => return Err(Refused::BadQuery(format!("unknown parameter {other:?} (expected prefix or cell)"))),
        };
        if found.replace(p).is_some() {
            return Err(Refused::BadQuery("give exactly one prefix or cell".into()));
        }
    }
    found.ok_or_else(|| Refused::BadQuery("give prefix=/path or cell=NAME".into()))
}
