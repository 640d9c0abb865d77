//! One client request, start to end: router endpoints, target checks, the routing decision
//! (cache, learn, stale, session cookie), forwarding, 421 handling, then metrics, the trace
//! header and one log line.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use rand::RngExt;

use crate::answer_idle::IdleWatch;
use crate::body_progress::{Progress, ProgressBody};
use crate::cache::{CacheResult, Entry, Lookup};
use crate::learn::{LearnError, Outcome};
use crate::proxy::{self, Body, ClientBody, ForwardError, Peer, UpstreamBody};
use crate::trust::{self, TargetError};
use crate::upstream::Resend;
use crate::{expect_continue, session, State};

/// What the log line and trace header say about a request.
#[derive(Default)]
struct Note {
    cache: CacheResult,
    learned_from: Option<usize>,
    cell: Option<usize>,
    learn_ms: Option<f64>,
    retried: bool,
    /// The cell that answered 421 (the request then went to `cell`).
    misdirected_by: Option<usize>,
    error: Option<String>,
}

/// Where the request goes, and which cache entry sent it there (dropped on a 421).
struct Decision {
    cell: usize,
    entry: Option<Routed>,
    /// Decided by the cache lookup alone, with nothing awaited: the clock reading taken when
    /// the request began still holds for forwarding it.
    at_once: bool,
}

/// The cache entry behind a decision: the one looked up, or the one a learn answer created.
enum Routed {
    Cached(Arc<Entry>),
    Learned { path: String, exact: bool },
}

impl Routed {
    fn path_exact(&self) -> (&str, bool) {
        match self {
            Routed::Cached(e) => (&e.path, e.exact),
            Routed::Learned { path, exact } => (path, *exact),
        }
    }
}

impl Decision {
    fn from_entry(e: &Arc<Entry>) -> Decision {
        Decision { cell: e.cell, entry: Some(Routed::Cached(e.clone())), at_once: false }
    }

    /// What the serving cell's cache headers may claim.
    fn scope(&self) -> Scope<'_> {
        Scope { cell: Some(self.cell), entry: self.entry.as_ref().map(Routed::path_exact) }
    }
}

/// What a response's `X-Gitlab-Cell-Cache` headers may claim ([`trust::check_cache_header`]):
/// the cell that sent it, and the entry that routed the request there (None: no entry did).
/// `cell` None: the response is not a served request's (a 421), and no header is taken.
#[derive(Clone, Copy)]
struct Scope<'a> {
    cell: Option<usize>,
    entry: Option<(&'a str, bool)>,
}

/// The request's future, as hyper stores it: moved into the connection's slot, all of it, for
/// every request, and its state is what a request touches; so it is written to stay small (~2
/// KiB; 3.6 KiB when this, `route`, `proxy::send` and `Pool::send_replayable` were `async fn`s).
/// A plain function returning one `async move` block rather than nested `async fn`s: an `async
/// fn` keeps each argument taken by value twice (the argument, and the body's own binding of
/// it), and each layer that took the ~250-byte `Request` kept two. The rare branches (learning,
/// a cell down, an upgrade, a 421, the 404 delay) are futures of their own, boxed.
#[allow(clippy::manual_async_fn, reason = "an `async fn` would keep its by-value arguments twice in the future")]
pub fn handle(conn: Arc<crate::Connection>, req: Request<Incoming>) -> impl std::future::Future<Output = Result<Response<ClientBody>, Infallible>> {
    async move {
        let (st, peer) = (&conn.st, &conn.peer);
        let method = req.method().clone();
        // The parsed target's path and query, what the cell is sent: a clone shares its bytes
        // (no copy of the path per request). Only this part of the target is kept, and only
        // once: a clone of the whole `Uri` and a second one of its path and query cost ~150
        // instructions per request with their drops. `path` is `Uri::path`'s answer ("" without
        // a path).
        let pq = req.uri().path_and_query().cloned();
        let path = pq.as_ref().map_or("", PathAndQuery::path);
        // The request's one clock reading: the access line's start, the cache's freshness, the
        // pool's idle check and the request timeout all use it (a reading costs ~25 ns each).
        let now = crate::lazy_timer::now();
        // Logs and counts the request even if hyper drops this future (the client went away).
        let mut access = Access {
            st,
            method: &method,
            path,
            started: access_log_on().then_some(now),
            note: Note { cache: CacheResult::Bypass, ..Note::default() },
            done: false,
        };
        let note = &mut access.note;
        let mut resp = 'route: {
            if path.starts_with(crate::ROUTER_PATHS) {
                break 'route router_endpoint(note);
            }
            let plain = match trust::check_target(req.uri(), st.cfg.max_path_bytes) {
                Ok(plain) => plain,
                Err(e) => break 'route refused_target(st, e, note),
            };
            // Which cell holds a namespace is the router's to ask, not the clients' (it would
            // enumerate private namespaces): the learn endpoint is never reachable through the
            // router.
            if trust::is_learn_path_of(path, &st.cfg.learn_path, plain) {
                break 'route learn_path_refused(note);
            }
            let mut decision = match decide(st, &method, path, plain, req.headers(), now, note).await {
                Ok(d) => d,
                Err(e) => break 'route no_cell_available(e, note),
            };
            note.cell = Some(decision.cell);
            if !st.health.is_closed(decision.cell) {
                decision = match Box::pin(while_down(st, &method, path, decision, note)).await {
                    Ok(d) => d,
                    Err(resp) => break 'route resp.map(ClientBody::from),
                };
            }

            // One pass over the header names says what upgrade detection and header hygiene need.
            let found = proxy::scan(req.headers(), proxy::Private::Internal);
            if found.transfer_encoding() && !proxy::only_chunked(req.headers()) {
                break 'route unsupported_request_coding(note);
            }
            // `check_target` let only origin-form targets through: there is a path and query.
            let pq = pq.as_ref().unwrap_or(&ROOT);
            if proxy::is_upgrade(req.headers(), found) {
                break 'route Box::pin(upgrade(st, req, pq, peer, found, decision, note)).await;
            }
            let (parts, body) = req.into_parts();
            // hyper's own framing decides: no Content-Length and no Transfer-Encoding, or a
            // length of 0, is an empty body — the one kind of request that may be replayed (421).
            let has_body = !body.is_end_stream();
            // A body-less request can be sent again (a 421's replay, the pool's resend): keep
            // the client's headers it was made from (see [`Replay`]).
            let replay = (!has_body).then(|| Replay { cfg: &st.cfg, peer, method: &method, pq, client: saved(&parts.headers), found });
            // `Expect: 100-continue`: the body waits for the cell's own `100 Continue`.
            let continue_gate = (has_body && expect_continue::expected(&parts.headers)).then(expect_continue::Gate::new);
            // The rest of `parts` (the target, extensions) is dropped here, not kept in the
            // future while the cell answers.
            let headers = proxy::upstream_headers(&st.cfg, { parts }.headers, found, peer, false);
            // A learn or a wait may have come between: the request timeout then starts now.
            let sent_at = if decision.at_once { now } else { crate::lazy_timer::now() };
            // A body's progress moves the request timeout on: an upload is not cut for taking
            // long, only for stopping (see `body_progress`).
            let progress = has_body.then(|| Progress::new(sent_at));
            let body = match (&continue_gate, &progress) {
                (Some(gate), Some(progress)) => expect_continue::GatedBody::new(ProgressBody::new(body, progress.clone()), gate.clone()).boxed_unsync(),
                (None, Some(progress)) => ProgressBody::new(body, progress.clone()).boxed_unsync(),
                (_, None) => proxy::empty(),
            };
            let resend = replay.as_ref().map(|r| r as &dyn Resend);
            let resp = match proxy::send(st, &peer.timer, decision.cell, &method, pq, headers, body, resend, continue_gate, progress, sent_at).await {
                Ok(r) => r,
                Err(e) => break 'route upstream_failure(st, decision.cell, e, note),
            };
            if resp.status() == StatusCode::MISDIRECTED_REQUEST {
                break 'route Box::pin(misdirected(st, peer, &method, path, pq, replay, decision, resp, note)).await;
            }
            // `finish` written out: the response is not moved into another future on the
            // common path.
            let resp = match respond(st, peer, resp, path, decision.scope()) {
                Ok(r) => r,
                Err(e) => break 'route upstream_failure(st, decision.cell, e, note),
            };
            match not_found_delay(st, resp.status()) {
                Some(delay) => Box::pin(delayed(resp, delay)).await,
                None => resp,
            }
        };
        let status = resp.status();
        if st.cfg.trace_header {
            add_trace(st, &access.note, &mut resp);
        }
        access.finish(status.as_u16());
        Ok(resp)
    }
}

/// Stands in for a target without a path (`check_target` lets none through).
static ROOT: PathAndQuery = PathAndQuery::from_static("/");

/// An upgrade request (WebSocket and friends): its own connection to the cell, never replayed.
async fn upgrade(
    st: &Arc<State>,
    mut req: Request<Incoming>,
    pq: &PathAndQuery,
    peer: &Peer,
    found: proxy::Found,
    decision: Decision,
    note: &mut Note,
) -> Response<ClientBody> {
    let path = pq.path();
    let client_side = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let headers = proxy::upstream_headers(&st.cfg, parts.headers, found, peer, true);
    let up = proxy::request(&parts.method, pq, headers, body.boxed_unsync());
    match proxy::send_upgrade(st, decision.cell, up, client_side).await {
        Ok(resp) => finish(st, peer, resp, path, decision.scope(), decision.cell, note).await,
        Err(e) => upstream_failure(st, decision.cell, e, note),
    }
}

/// The answer, after the 404 delay.
async fn delayed(resp: Response<ClientBody>, delay: Duration) -> Response<ClientBody> {
    tokio::time::sleep(delay).await;
    resp
}

// The functions marked `#[cold]` below are the rare answers and branches of a request: out of
// line, the code a cached request runs stays together and small (fewer instruction-cache lines
// per request).

/// The router's endpoints are on the internal listener only, and never forwarded.
#[cold]
fn router_endpoint(note: &mut Note) -> Response<ClientBody> {
    note.error = Some("router endpoint asked on the public listener".into());
    proxy::json_error(StatusCode::NOT_FOUND, "not_found", "not found").map(ClientBody::from)
}

/// The `X-Cells-Router-Trace` header (`trace_header = true`: demos and debugging).
#[cold]
fn add_trace(st: &State, note: &Note, resp: &mut Response<ClientBody>) {
    let mut v = format!("router={}; cache={}", st.cfg.name, note.cache);
    if let Some(f) = note.learned_from {
        let _ = write!(v, "; learned_from={}", st.cfg.cells[f].name);
    }
    if let Some(c) = note.cell {
        let _ = write!(v, "; cell={}", st.cfg.cells[c].name);
    }
    if let Some(ms) = note.learn_ms {
        let _ = write!(v, "; learn_ms={ms:.2}");
    }
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert(trust::TRACE_HEADER, v);
    }
}

/// True when the log filter lets access lines through (decided once per call site by
/// `tracing`: a cached answer, not a filter evaluation per request).
fn access_log_on() -> bool {
    tracing::enabled!(target: "cells_router::access", tracing::Level::INFO)
}

/// nginx's "client closed request": the client went away before the router answered.
pub const CLIENT_CLOSED: u16 = 499;

/// One request's access line and `requests_total` count, written exactly once: by
/// [`Access::finish`] when the handler answers, or by `Drop` with status 499 when hyper drops
/// the handler's future because the client closed the connection first (as nginx logs it).
/// It lives in the request's future: no allocation.
struct Access<'a> {
    st: &'a State,
    method: &'a Method,
    path: &'a str,
    /// When the request began, for the access line's `duration_ms`; None when access lines are
    /// filtered out (a clock read per request for nothing).
    started: Option<Instant>,
    note: Note,
    done: bool,
}

impl Access<'_> {
    fn finish(&mut self, status: u16) {
        self.done = true;
        let (st, note) = (self.st, &self.note);
        let cell_name = note.cell.map(|c| st.cfg.cells[c].name.as_str());
        st.metrics.request(note.cell, cell_name.unwrap_or("none"), status);
        self.log(status, cell_name);
    }

    /// The access line (the event is built only when the log filter lets it through; out of
    /// line, its code stays off the request's path when it does not).
    #[inline(never)]
    fn log(&self, status: u16, cell_name: Option<&str>) {
        let (st, note) = (self.st, &self.note);
        tracing::info!(
            target: "cells_router::access",
            method = self.method.as_str(),
            path = self.path,
            status,
            cache = note.cache.as_str(),
            learned_from = note.learned_from.map(|c| st.cfg.cells[c].name.as_str()),
            cell = cell_name,
            misdirected_by = note.misdirected_by.map(|c| st.cfg.cells[c].name.as_str()),
            learn_ms = note.learn_ms,
            retried = note.retried,
            error = note.error.as_deref(),
            duration_ms = self.started.map(|s| s.elapsed().as_secs_f64() * 1000.0),
            "request"
        );
    }
}

impl Drop for Access<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client_closed();
        }
    }
}

impl Access<'_> {
    #[cold]
    fn client_closed(&mut self) {
        if self.note.error.is_none() {
            self.note.error = Some("the client closed the connection before the answer".into());
        }
        self.finish(CLIENT_CLOSED);
    }
}

#[cold]
fn refused_target(st: &State, e: TargetError, note: &mut Note) -> Response<ClientBody> {
    match e {
        TargetError::TooLong => {
            note.error = Some(format!("path_too_long: over {} bytes", st.cfg.max_path_bytes));
            proxy::json_error(StatusCode::URI_TOO_LONG, "path_too_long", "the request path is too long").map(ClientBody::from)
        }
        TargetError::Invalid(why) => {
            note.error = Some(format!("invalid_path: {why}"));
            proxy::json_error(StatusCode::BAD_REQUEST, "invalid_path", why).map(ClientBody::from)
        }
    }
}

/// `501`, as nginx answers it: a transfer coding under the chunking (`gzip, chunked`) that hyper
/// does not decode, which the cell would never learn of once the body is chunked anew.
#[cold]
fn unsupported_request_coding(note: &mut Note) -> Response<ClientBody> {
    note.error = Some("unsupported_transfer_coding: a transfer coding other than chunked".into());
    proxy::json_error(StatusCode::NOT_IMPLEMENTED, "unsupported_transfer_coding", "only the chunked transfer coding is supported").map(ClientBody::from)
}

#[cold]
fn learn_path_refused(note: &mut Note) -> Response<ClientBody> {
    note.error = Some("the learn endpoint is not served to clients".into());
    proxy::json_error(StatusCode::NOT_FOUND, "not_found", "no route for this path").map(ClientBody::from)
}

#[cold]
fn no_cell_available(e: LearnError, note: &mut Note) -> Response<ClientBody> {
    note.error = Some(e.to_string());
    proxy::json_error(StatusCode::SERVICE_UNAVAILABLE, "no_cell_available", "no cell could tell where this path is served; try again later")
        .map(ClientBody::from)
}

/// A request's headers as entries, in order: one allocation, where a `HeaderMap`'s copy
/// takes two and copies its index too.
type Saved = Vec<(HeaderName, HeaderValue)>;

fn saved(h: &HeaderMap) -> Saved {
    let mut v = Vec::with_capacity(h.len());
    v.extend(h.iter().map(|(n, v)| (n.clone(), v.clone())));
    v
}

/// What a body-less request needs to be sent again, to its cell (the pool's resend after the
/// keep-alive race) or to another (a 421's replay). hyper drops a request's headers once it has
/// written them, so a copy is kept per request: the client's headers as they came, fewer than
/// the cell gets (`X-Forwarded-*` and `X-Real-IP` are added), from which the cell's headers are
/// made again, the same way, only when a resend happens. The copy of the cell's headers this
/// replaces cost ~550 instructions per request before its drop (two allocations, its index,
/// five entries), this one ~210 (callgrind, wrk's one-header requests).
struct Replay<'a> {
    cfg: &'a crate::Config,
    peer: &'a Peer,
    method: &'a Method,
    pq: &'a PathAndQuery,
    client: Saved,
    /// [`proxy::scan`]'s answer for the client's headers.
    found: proxy::Found,
}

impl Replay<'_> {
    /// The headers the cell got the first time.
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(self.client.len());
        for (n, v) in &self.client {
            h.append(n.clone(), v.clone());
        }
        proxy::upstream_headers(self.cfg, h, self.found, self.peer, false)
    }
}

impl Resend for Replay<'_> {
    fn again(&self) -> Request<proxy::Body> {
        proxy::request(self.method, self.pq, self.headers(), proxy::empty())
    }
}

/// Cache, then learn; stale entries only when learning fails. `plain`: [`trust::check_target`]'s
/// answer for `path`.
async fn decide(st: &Arc<State>, method: &Method, path: &str, plain: bool, headers: &HeaderMap, now: Instant, note: &mut Note) -> Result<Decision, LearnError> {
    match st.cache.lookup_at(path, plain, now) {
        Lookup::Fresh(e) => {
            note.cache = CacheResult::Hit;
            st.metrics.cache(CacheResult::Hit);
            Ok(Decision { at_once: true, ..Decision::from_entry(&e) })
        }
        Lookup::Stale(e) => {
            if st.cache.revalidation_failed(&e) {
                // The cells failed us recently: answer now, refresh behind the client's back.
                if !st.cache.recently_failed(&e) {
                    st.cache.mark_failed(&e);
                    refresh_in_background(st, method, path, e.clone());
                }
                note.cache = CacheResult::Stale;
                st.metrics.cache(CacheResult::Stale);
                return Ok(Decision::from_entry(&e));
            }
            // Boxed, as every learn below: the cached path's future stays small (hyper moves
            // each request's future into place; a learn inline would make it kilobytes).
            match Box::pin(st.learner.learn(st, method, path)).await {
                Ok(o) => {
                    // The cells answered differently: the stale entry must not outlive that
                    // answer and come back the next time the cells are down.
                    if let Outcome::Answer { answer, .. } = &o {
                        if !(answer.cacheable && answer.path == e.path && answer.exact == e.exact) {
                            st.cache.remove(&e.path, e.exact);
                        }
                    }
                    Ok(from_outcome(st, o, headers, note))
                }
                Err(err) => {
                    st.cache.mark_failed(&e);
                    note.cache = CacheResult::Stale;
                    note.error = Some(err.to_string());
                    st.metrics.cache(CacheResult::Stale);
                    Ok(Decision::from_entry(&e))
                }
            }
        }
        Lookup::Miss => {
            let o = Box::pin(st.learner.learn(st, method, path)).await;
            if o.is_err() {
                note.cache = CacheResult::Miss;
                st.metrics.cache(CacheResult::Miss);
            }
            Ok(from_outcome(st, o?, headers, note))
        }
    }
}

fn refresh_in_background(st: &Arc<State>, method: &Method, path: &str, stale: Arc<Entry>) {
    let (st, method, path) = (st.clone(), method.clone(), path.to_string());
    tokio::spawn(async move {
        if st.learner.learn(&st, &method, &path).await.is_err() {
            st.cache.mark_failed(&stale);
        }
    });
}

fn from_outcome(st: &State, o: Outcome, headers: &HeaderMap, note: &mut Note) -> Decision {
    match o {
        Outcome::Cached(e) => {
            note.cache = CacheResult::Hit;
            st.metrics.cache(CacheResult::Hit);
            Decision::from_entry(&e)
        }
        Outcome::Shared(e) => {
            note.cache = CacheResult::Shared;
            st.metrics.cache(CacheResult::Shared);
            Decision::from_entry(&e)
        }
        Outcome::Answer { answer, cell, from, elapsed } => {
            note.cache = if answer.cacheable { CacheResult::Miss } else { CacheResult::Bypass };
            st.metrics.cache(note.cache);
            note.learned_from = Some(from);
            note.learn_ms = Some(elapsed.as_secs_f64() * 1000.0);
            let cell = if session::applies(&answer) { session::cell_for(&st.cfg, headers).unwrap_or(cell) } else { cell };
            Decision { cell, entry: answer.cacheable.then(|| Routed::Learned { path: answer.path.clone(), exact: answer.exact }), at_once: false }
        }
    }
}

/// [`respond`], then the 404 delay when one is configured; `cell` sent `resp` (for the 502
/// of an answer that cannot be forwarded).
async fn finish(
    st: &Arc<State>,
    peer: &Peer,
    resp: Response<UpstreamBody>,
    path: &str,
    scope: Scope<'_>,
    cell: usize,
    note: &mut Note,
) -> Response<ClientBody> {
    let resp = match respond(st, peer, resp, path, scope) {
        Ok(r) => r,
        Err(e) => return upstream_failure(st, cell, e, note),
    };
    if let Some(delay) = not_found_delay(st, resp.status()) {
        tokio::time::sleep(delay).await;
    }
    resp
}

/// The seed's timing-attack mitigation: "not found" and "not yours" look alike in time.
fn not_found_delay(st: &State, status: StatusCode) -> Option<Duration> {
    if status != StatusCode::NOT_FOUND || st.cfg.not_found_delay_max.is_zero() {
        return None;
    }
    let max = st.cfg.not_found_delay_max.as_micros() as u64;
    Some(Duration::from_micros(rand::rng().random_range(0..=max)))
}

/// Learns from the cell's `X-Gitlab-Cell-Cache` headers and strips internal headers; an answer
/// the router cannot forward as it means it (a transfer coding besides `chunked`) is an error.
fn respond(st: &State, peer: &Peer, mut resp: Response<UpstreamBody>, path: &str, scope: Scope<'_>) -> Result<Response<ClientBody>, ForwardError> {
    // The answer is the router's, in the router's HTTP version, whatever the cell spoke (RFC
    // 9110 §6.2: an intermediary sends its own version). hyper writes a response in the version
    // it carries: an HTTP/1.0 cell's answer without a length went to HTTP/1.1 clients as an
    // `HTTP/1.0` answer delimited by closing their connection (`tests/cell_framing.rs`); as
    // HTTP/1.1 it is chunked and the client's connection stays open (hyper still answers an
    // HTTP/1.0 client in HTTP/1.0).
    *resp.version_mut() = http::Version::HTTP_11;
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let found = proxy::scan(resp.headers(), proxy::Private::CellAnswers);
    if found.transfer_encoding() && !proxy::only_chunked(resp.headers()) {
        return Err(proxy::unsupported_coding("the cell's answer"));
    }
    // Most responses carry neither a cache header nor a hop-by-hop one: one pass over the names
    // tells, and neither the lookup below nor the removal touches the map then.
    if found.private() {
        take_cache_headers(st, resp.headers(), path, scope);
    }
    proxy::sanitize_response(resp.headers_mut(), found, switching);
    Ok(resp.map(|body| ClientBody::Cell(body, IdleWatch::new(peer.timer.clone(), st.cfg.response_idle_timeout))))
}

/// The cell's `X-Gitlab-Cell-Cache` headers: remembered when trusted, refused and counted
/// otherwise (out of line: most responses carry none).
#[inline(never)]
fn take_cache_headers(st: &State, headers: &HeaderMap, path: &str, scope: Scope<'_>) {
    for v in headers.get_all(proxy::CACHE_HEADER) {
        let parsed = v.to_str().ok().and_then(trust::parse_cache_header);
        let check = |h: &trust::CacheHeader| match scope.cell {
            Some(sender) => trust::check_cache_header(&st.cfg, h, path, sender, scope.entry),
            None => Err(trust::Untrusted::Unrouted { path: h.path.clone() }),
        };
        match parsed.as_ref().map(|h| (h, check(h))) {
            Some((h, Ok(cell))) => st.remember(&h.path, h.exact, cell, st.tables.table_of(cell)),
            Some((_, Err(e))) => {
                st.metrics.rejected("header");
                let sender = scope.cell.map(|c| st.cfg.cells[c].name.as_str());
                tracing::warn!(path, cell = sender, reason = %e, "cache header refused");
            }
            None => {
                st.metrics.rejected("header");
                tracing::warn!(path, value = ?v, "unparseable cache header refused");
            }
        }
    }
}

/// The decision names a cell whose breaker is open: relearn the entry that sent us there if
/// the breaker allows it now (once per entry per `breaker.relearn_interval`: the namespace may
/// have moved), else answer at once with 503 and `Retry-After` (see [`crate::breaker`]).
async fn while_down(st: &Arc<State>, method: &Method, path: &str, d: Decision, note: &mut Note) -> Result<Decision, Response<Body>> {
    let down = d.cell;
    if let Some(Routed::Cached(e)) = &d.entry {
        if st.health.may_relearn(down, &e.path, e.exact, st.cfg.relearn_interval) {
            match st.learner.learn_uncached(st, method, path).await {
                Ok(Outcome::Answer { answer, cell, from, elapsed }) => {
                    note.learned_from = Some(from);
                    note.learn_ms = Some(elapsed.as_secs_f64() * 1000.0);
                    if cell != down && st.health.is_closed(cell) {
                        note.cell = Some(cell);
                        return Ok(Decision {
                            cell,
                            entry: answer.cacheable.then(|| Routed::Learned { path: answer.path.clone(), exact: answer.exact }),
                            at_once: false,
                        });
                    }
                }
                Ok(Outcome::Cached(e) | Outcome::Shared(e)) if e.cell != down && st.health.is_closed(e.cell) => {
                    note.cell = Some(e.cell);
                    return Ok(Decision::from_entry(&e));
                }
                _ => {}
            }
        }
    }
    Err(cell_unavailable(st, down, note))
}

/// `503 cell_unavailable` with `Retry-After`: the cell's breaker is open.
#[cold]
fn cell_unavailable(st: &State, cell: usize, note: &mut Note) -> Response<Body> {
    let name = &st.cfg.cells[cell].name;
    st.metrics.upstream_error(name, "breaker_open");
    note.error = Some(format!("cell {name} is down (breaker {})", st.health.state(cell).as_str()));
    let mut resp = proxy::json_error(StatusCode::SERVICE_UNAVAILABLE, "cell_unavailable", &format!("cell {name} is unavailable; retry shortly"));
    resp.headers_mut().insert(http::header::RETRY_AFTER, retry_after(st));
    resp
}

/// Whole seconds (at least 1) until the next probe may have closed the breaker.
fn retry_after(st: &State) -> HeaderValue {
    HeaderValue::from(st.cfg.probe_interval.as_secs_f64().ceil().max(1.0) as u64)
}

#[cold]
fn upstream_failure(st: &Arc<State>, cell: usize, e: ForwardError, note: &mut Note) -> Response<ClientBody> {
    let name = &st.cfg.cells[cell].name;
    let resp = match e {
        ForwardError::Connect(detail) => {
            st.metrics.upstream_error(name, "connect");
            // The cell's entries stay (its namespaces are still its own); its breaker answers
            // the next requests at once until a probe finds it back.
            st.health.trip(st, cell);
            note.error = Some(detail);
            let mut resp = proxy::json_error(StatusCode::BAD_GATEWAY, "cell_unreachable", &format!("cell {name} could not be reached"));
            resp.headers_mut().insert(http::header::RETRY_AFTER, retry_after(st));
            resp
        }
        ForwardError::Timeout => {
            st.metrics.upstream_error(name, "timeout");
            note.error = Some("timeout".into());
            proxy::json_error(StatusCode::GATEWAY_TIMEOUT, "cell_timeout", &format!("cell {name} did not answer in time"))
        }
        ForwardError::Other(detail) => {
            st.metrics.upstream_error(name, "protocol");
            note.error = Some(detail);
            proxy::json_error(StatusCode::BAD_GATEWAY, "bad_gateway", &format!("the exchange with cell {name} failed"))
        }
        ForwardError::ClientBody(detail) => {
            note.error = Some(detail);
            proxy::json_error(StatusCode::BAD_REQUEST, "invalid_request_body", "the request body was malformed or cut off")
        }
        ForwardError::ClientBodyTimeout => {
            note.error = Some("client body timeout".into());
            proxy::json_error(StatusCode::REQUEST_TIMEOUT, "client_body_timeout", "the request body stopped arriving")
        }
    };
    resp.map(ClientBody::from)
}

/// `421 Misdirected Request` + `X-Gitlab-Cell-Owner`: the entity moved. Drop the entry that
/// sent us here, believe the owner if it is a configured cell (it can only name a cell for a
/// path we already trusted), else relearn; replay once if the request had no body.
#[allow(clippy::too_many_arguments)]
async fn misdirected(
    st: &Arc<State>,
    peer: &Peer,
    method: &Method,
    path: &str,
    pq: &PathAndQuery,
    replay: Option<Replay<'_>>,
    d: Decision,
    resp: Response<UpstreamBody>,
    note: &mut Note,
) -> Response<ClientBody> {
    st.metrics.misdirected.inc();
    note.misdirected_by = Some(d.cell);
    let owner = resp.headers().get(trust::OWNER_HEADER).and_then(|v| v.to_str().ok()).and_then(|n| trust::cell_index(&st.cfg, n.trim()));
    if let Some((p, exact)) = d.entry.as_ref().map(Routed::path_exact) {
        st.cache.remove(p, exact);
        // An owner moved, not a route: the entry keeps the table it was learned from.
        let table = match &d.entry {
            Some(Routed::Cached(e)) => e.table,
            _ => st.tables.table_of(d.cell),
        };
        match owner.filter(|&o| o != d.cell) {
            Some(o) => st.remember(p, exact, o, table),
            None => {
                if let Some(shared) = &st.shared {
                    shared.forget(&trust::routing_path(p), exact);
                }
            }
        }
    }
    let no_headers = Scope { cell: None, entry: None };
    let Some(replay) = replay else {
        return finish(st, peer, resp, path, no_headers, d.cell, note).await;
    };
    let target = match owner.filter(|&o| o != d.cell) {
        Some(o) => Some(o),
        None => match st.learner.learn(st, method, path).await {
            Ok(Outcome::Answer { cell, from, .. }) => {
                note.learned_from = Some(from);
                Some(cell)
            }
            Ok(Outcome::Cached(e) | Outcome::Shared(e)) => Some(e.cell),
            Err(_) => None,
        },
    };
    let target = match target {
        Some(t) if t != d.cell => t,
        _ => return finish(st, peer, resp, path, no_headers, d.cell, note).await,
    };
    drop(resp);
    note.retried = true;
    note.cell = Some(target);
    // The owner's headers may narrow the entry the 421 re-pointed at it, nothing else.
    let repointed = owner.filter(|&o| o == target).and(d.entry.as_ref().map(Routed::path_exact));
    match proxy::send(st, &peer.timer, target, method, pq, replay.headers(), proxy::empty(), Some(&replay), None, None, crate::lazy_timer::now()).await {
        Ok(r) => finish(st, peer, r, path, Scope { cell: Some(target), entry: repointed }, target, note).await,
        Err(e) => upstream_failure(st, target, e, note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn taking two arguments returns (never called).
    fn future_size<A, B, F: std::future::Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// hyper moves each request's future into its connection's slot, a copy of all of it per
    /// request: the rare paths (learn, 421, upgrade, breaker) stay boxed, and no layer keeps its
    /// by-value arguments twice (see [`handle`]), so it stays near 2 KiB (3,984 bytes with
    /// `route`, `proxy::send` and `Pool::send_replayable` as `async fn`s; 2,024 without; 2,280
    /// with stop 41's `100-continue` relay, 2,328 with the request body's progress).
    #[test]
    fn the_request_future_stays_small() {
        let size = future_size(handle);
        assert!(size <= 2368, "handle's future is {size} bytes");
    }
}
