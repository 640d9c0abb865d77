//! Learning a route from the cells: `GET {learn_path}?method=M&path_info=P` to a random healthy
//! cell, failover to the others, validation, caching, and single-flight.
//!
//! Any cell can answer for any path (they share the routing rules and resolve ownership
//! through the same data), so a learn request goes to a random cell, and a cell that fails,
//! times out or answers something untrustworthy is skipped for the next one — at most once per
//! configured cell, so a dead fleet costs a bounded wait, not a retry storm.
//!
//! Concurrent misses for the same method and path share one learn request: a popular project
//! whose entry expires would otherwise send one learn request per in-flight client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cells_learn::LearnResponse;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio::sync::OnceCell;

use crate::cache::{Entry, Lookup};
use crate::proxy;
use crate::trust;
use crate::State;

/// Learn answers are a few hundred bytes; anything far larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a learn call produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A validated answer; `cell` is its cell's index, `from` the cell that answered.
    Answer { answer: LearnResponse, cell: usize, from: usize, elapsed: Duration },
    /// Another request filled the cache while this one waited for its turn.
    Cached(Arc<Entry>),
    /// Another router learned it: the shared cache had a trusted entry (now in memory too).
    Shared(Arc<Entry>),
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("no cell answered the learn request: {0}")]
pub struct LearnError(pub String);

/// Why one learn request to one cell failed: the `reason` of the `learn_failures_total` metric
/// and of the warning logged ([`LearnFailure::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnFailure {
    /// The request could not be built (a path the URI refuses).
    Request,
    /// No connection to the cell (opens its breaker).
    Connect,
    /// The connection failed after it was made.
    Http,
    /// The answer's body could not be read, or was over the size limit.
    Body,
    /// No answer within `learn_timeout`.
    Timeout,
    /// An answer other than 200.
    Status,
    /// A 200 whose body is not a learn answer.
    Invalid,
    /// A learn answer the trust rules refuse.
    Untrusted,
}

impl LearnFailure {
    /// The metric label and log value: `request`, `connect`, `http`, `body`, `timeout`,
    /// `status`, `invalid` or `untrusted`.
    pub fn as_str(self) -> &'static str {
        match self {
            LearnFailure::Request => "request",
            LearnFailure::Connect => "connect",
            LearnFailure::Http => "http",
            LearnFailure::Body => "body",
            LearnFailure::Timeout => "timeout",
            LearnFailure::Status => "status",
            LearnFailure::Invalid => "invalid",
            LearnFailure::Untrusted => "untrusted",
        }
    }
}

type Slot = Arc<OnceCell<Result<Outcome, LearnError>>>;

#[derive(Default)]
pub struct Learner {
    inflight: Mutex<HashMap<String, Slot>>,
}

impl Learner {
    /// Learns the route of `method path`, sharing the work with concurrent callers.
    pub async fn learn(&self, st: &Arc<State>, method: &Method, path: &str) -> Result<Outcome, LearnError> {
        let key = format!("{method} {path}");
        let slot: Slot = self.inflight.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone();
        let result = slot
            .get_or_init(|| async {
                // A caller that missed the cache just before the previous flight finished
                // would otherwise learn again.
                if let Lookup::Fresh(e) = st.cache.lookup(path) {
                    return Ok(Outcome::Cached(e));
                }
                if let Some(e) = from_shared(st, path).await {
                    return Ok(Outcome::Shared(e));
                }
                self.learn_uncached(st, method, path).await
            })
            .await
            .clone();
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
            map.remove(&key);
        }
        result
    }

    /// Asks the cells in health order until one answer can be trusted: one that stands on its
    /// own ([`trust::Verdict::needs_confirmation`] false), or one that needs confirmation and
    /// that another cell repeats ([`trust::same_answer`]). Answers that disagree are kept as
    /// candidates (a later cell may confirm any of them) and their cells are not marked down.
    /// A candidate that no other cell could be asked about (the others failed) routes this
    /// request but is not cached; candidates that other cells contradicted are an error: the
    /// router cannot tell which cell lies, and refuses rather than guess.
    ///
    /// Also called without the cache or the shared flight: a cell that is down relearns an
    /// entry it still has, at most once per interval (see [`crate::breaker`]).
    pub(crate) async fn learn_uncached(&self, st: &Arc<State>, method: &Method, path: &str) -> Result<Outcome, LearnError> {
        let mut reasons = Vec::new();
        let mut candidates: Vec<(LearnResponse, trust::Verdict, usize, Duration)> = Vec::new();
        let mut answered = 0;
        let mut order = st.health.order();
        // Mixed versions: cells of the newest route table first (see `tables`).
        st.tables.rank(&mut order, |c| st.health.is_up(c));
        for cell in order {
            let name = &st.cfg.cells[cell].name;
            let started = Instant::now();
            st.metrics.learn_requests.inc();
            match self.attempt(st, cell, method, path).await {
                Ok((answer, verdict)) => {
                    st.tables.observe(cell, answer.routes_version, answer.routes_digest.as_deref());
                    let elapsed = started.elapsed();
                    st.metrics.learn_duration.observe(elapsed.as_secs_f64());
                    st.health.mark_up(st, cell);
                    answered += 1;
                    let confirmed = candidates.iter().position(|(c, ..)| trust::same_answer(c, &answer));
                    let (answer, verdict, from, elapsed) = match confirmed {
                        Some(i) => {
                            let (mut c, v, from, first) = candidates.swap_remove(i);
                            c.cacheable &= answer.cacheable;
                            (c, v, from, first + elapsed)
                        }
                        None if !verdict.needs_confirmation => (answer, verdict, cell, elapsed),
                        None => {
                            if let Some((first, _, from, _)) = candidates.first() {
                                tracing::warn!(cell = %name, other = %st.cfg.cells[*from].name, path, answer = ?answer, other_answer = ?first, "cells disagree about a path");
                            }
                            candidates.push((answer, verdict, cell, elapsed));
                            continue;
                        }
                    };
                    return Ok(self.accept(st, answer, verdict, from, elapsed));
                }
                Err((reason, detail)) => {
                    st.metrics.learn_failure(name, reason.as_str());
                    if reason == LearnFailure::Untrusted {
                        st.metrics.rejected("learn");
                    }
                    tracing::warn!(cell = %name, reason = reason.as_str(), detail = %detail, path, "learn request failed");
                    // Refused or unanswered connects open the cell's breaker; other failures
                    // only put it last in the learn order for a while.
                    if reason == LearnFailure::Connect {
                        st.health.trip(st, cell);
                    } else {
                        st.health.demote(cell);
                    }
                    reasons.push(format!("{name}: {detail}"));
                }
            }
        }
        if answered == 1 {
            // Nobody else answered: usable for this request, not for the cache.
            if let Some((mut answer, verdict, from, elapsed)) = candidates.pop() {
                answer.cacheable = false;
                return Ok(self.accept(st, answer, verdict, from, elapsed));
            }
        }
        if !candidates.is_empty() {
            st.metrics.rejected("learn");
            let claims: Vec<String> = candidates.iter().map(|(a, _, from, _)| format!("{} says {} {}", st.cfg.cells[*from].name, a.path, a.cell)).collect();
            reasons.push(format!("cells disagree and none confirms another: {}", claims.join(", ")));
        }
        Err(LearnError(reasons.join("; ")))
    }

    fn accept(&self, st: &State, mut answer: LearnResponse, verdict: trust::Verdict, from: usize, elapsed: Duration) -> Outcome {
        answer.cacheable &= verdict.cacheable;
        if answer.cacheable {
            st.remember(&answer.path, answer.exact, verdict.cell, answer.routes_version.unwrap_or(0));
        }
        Outcome::Answer { answer, cell: verdict.cell, from, elapsed }
    }

    /// One learn request to one cell: the answer and the trust rules' verdict on it, or (reason, detail).
    async fn attempt(&self, st: &State, cell: usize, method: &Method, path: &str) -> Result<(LearnResponse, trust::Verdict), (LearnFailure, String)> {
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("method", method.as_str()).append_pair("path_info", path).finish();
        let uri = format!("{}?{}", st.cfg.learn_path, query);
        let mut req = Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header("x-cells-router", st.cfg.name.as_str())
            .body(proxy::empty())
            .map_err(|e| (LearnFailure::Request, e.to_string()))?;
        if let Some(token) = &st.cfg.learn_token {
            req.headers_mut().insert(trust::LEARN_TOKEN_HEADER, token.header_value().clone());
        }
        let work = async {
            let resp = st
                .client
                .send(cell, req)
                .await
                .map_err(|e| (if e.is_connect() { LearnFailure::Connect } else { LearnFailure::Http }, proxy::error_chain(&e)))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES).collect().await.map_err(|e| (LearnFailure::Body, e.to_string()))?.to_bytes();
            Ok::<(StatusCode, Bytes), (LearnFailure, String)>((status, body))
        };
        let (status, body) = tokio::time::timeout(st.cfg.learn_timeout, work)
            .await
            .map_err(|_| (LearnFailure::Timeout, format!("no answer within {:?}", st.cfg.learn_timeout)))??;
        if status != StatusCode::OK {
            return Err((LearnFailure::Status, format!("status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)]))));
        }
        let answer: LearnResponse = serde_json::from_slice(&body).map_err(|e| (LearnFailure::Invalid, format!("invalid answer: {e}")))?;
        let verdict = trust::check_answer(&st.cfg, &answer, path, cell).map_err(|e| (LearnFailure::Untrusted, e.to_string()))?;
        Ok((answer, verdict))
    }
}

/// The first entry the shared cache holds for `path` that passes the trust rules, put in this
/// router's memory with the freshness its writer gave it. None when there is no shared tier,
/// Redis has nothing trustworthy, or it did not answer within the budget. An entry learned from
/// an older route table than the newest a cell reported is not used: the path is learned again
/// from the newest table's cells, whose answer then replaces it for the whole fleet.
async fn from_shared(st: &State, path: &str) -> Option<Arc<Entry>> {
    let shared = st.shared.as_ref()?;
    let normalized = trust::routing_path(path);
    let found = match shared.lookup(&normalized).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(error = %e, path, "shared cache read failed; learning from the cells");
            return None;
        }
    };
    let newest = st.tables.newest();
    for f in found {
        if f.table < newest {
            st.metrics.shared.count("read", "older_table");
            tracing::debug!(path, entry = %f.path, table = f.table, newest, "shared cache entry from an older route table; learning again");
            return None;
        }
        match trust::check_shared(&st.cfg, &f.path, f.exact, &f.cell, path) {
            Ok(cell) => {
                st.cache.insert_from(&f.path, f.exact, cell, f.fresh_for, f.table);
                if let Lookup::Fresh(e) = st.cache.lookup(path) {
                    return Some(e);
                }
            }
            Err(e) => {
                st.metrics.shared.count("read", "untrusted");
                st.metrics.rejected("shared");
                tracing::warn!(path, entry = %f.path, cell = %f.cell, reason = %e, "shared cache entry refused");
            }
        }
    }
    None
}
