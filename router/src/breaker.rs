//! Cell health: a circuit breaker per cell, and a short "try it last" mark for learn requests.
//!
//! Why a breaker: when a cell dies, the requests for its namespaces must neither wait on
//! connects that will fail nor multiply into learn requests. The router used to drop every
//! entry of an unreachable cell, so each later request for its namespaces missed the cache and
//! sent a learn request to a healthy cell: one learn per request during an outage (the README's
//! Reliability figures). Now the entries stay, and the cell's breaker opens:
//!
//! - **closed**: requests are forwarded. A connect failure (nothing was sent: the cell is
//!   not listening, or did not accept within `timeouts.connect`) opens it.
//! - **open**: requests for the cell are answered at once with `503 cell_unavailable` and a
//!   `Retry-After`, except that each cached entry (a prefix: one namespace) may be relearned at
//!   most once per `breaker.relearn_interval`, so a namespace that really moved to another cell
//!   is found again, and an outage costs at most one learn request per namespace per interval.
//! - **half-open**: a background probe (every `breaker.probe_interval`: a TCP connect, or a
//!   `GET breaker.probe_path` answered with any status below 500) is under way. Its success
//!   closes the breaker, so a restarted cell serves its first request within one probe
//!   interval of answering; its failure opens it again. A successful learn request to the cell
//!   closes it too.
//!
//! Only connect failures open a breaker: a timeout or a broken exchange says the cell is slow
//! or failed one request, not that it is gone, and those requests were (maybe) processed.
//!
//! The hot path pays one relaxed atomic load per forwarded request ([`Health::is_closed`]);
//! everything else runs only while a cell is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use crate::State;

/// How long a cell whose learn request failed (not by a connect failure) goes to the back of
/// the learn queue.
const DEMOTED_FOR: Duration = Duration::from_secs(5);

/// A breaker's state, as the `cells_router_cell_breaker_state` gauge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl BreakerState {
    fn from_u8(v: u8) -> BreakerState {
        match v {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// How a half-open breaker checks that its cell is back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect to the cell's address.
    Tcp,
    /// `GET path` on the cell; any status below 500 counts as an answer.
    Http(String),
}

struct Cell {
    state: AtomicU8,
    /// A probe task is running for this cell (at most one at a time).
    probing: AtomicBool,
    /// Milliseconds since the epoch until which the cell is tried last for learn requests.
    demoted_until_ms: AtomicU64,
    /// Last relearn (ms since the epoch) per cached entry (path, exact) while the breaker is
    /// not closed; emptied when it closes. Touched only for requests to a cell that is down.
    relearned: Mutex<HashMap<(String, bool), u64>>,
}

pub struct Health {
    epoch: Instant,
    cells: Vec<Cell>,
}

impl Health {
    pub fn new(cells: usize) -> Health {
        let cells = (0..cells)
            .map(|_| Cell {
                state: AtomicU8::new(BreakerState::Closed as u8),
                probing: AtomicBool::new(false),
                demoted_until_ms: AtomicU64::new(0),
                relearned: Mutex::default(),
            })
            .collect();
        Health { epoch: Instant::now(), cells }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn state(&self, cell: usize) -> BreakerState {
        BreakerState::from_u8(self.cells[cell].state.load(Ordering::Relaxed))
    }

    /// True when requests may be forwarded to `cell` (the hot path's one check).
    #[inline]
    pub fn is_closed(&self, cell: usize) -> bool {
        self.cells[cell].state.load(Ordering::Relaxed) == BreakerState::Closed as u8
    }

    /// Healthy as the health endpoint reports it: breaker closed and no recent learn failure.
    pub fn is_up(&self, cell: usize) -> bool {
        self.is_closed(cell) && self.cells[cell].demoted_until_ms.load(Ordering::Relaxed) <= self.now_ms()
    }

    /// A learn request to `cell` failed without a connect failure: try it last for a while.
    pub fn demote(&self, cell: usize) {
        self.cells[cell].demoted_until_ms.store(self.now_ms() + DEMOTED_FOR.as_millis() as u64, Ordering::Relaxed);
    }

    /// `cell` answered (a learn request, a forwarded request's connect): it is healthy.
    pub fn mark_up(&self, st: &State, cell: usize) {
        let c = &self.cells[cell];
        if c.demoted_until_ms.load(Ordering::Relaxed) != 0 {
            c.demoted_until_ms.store(0, Ordering::Relaxed);
        }
        if !self.is_closed(cell) {
            self.transition(st, cell, BreakerState::Closed);
        }
    }

    /// `cell` could not be connected to: open its breaker and, if it was closed, start the
    /// background probe that closes it again (on the calling task's runtime).
    pub fn trip(&self, st: &Arc<State>, cell: usize) {
        let c = &self.cells[cell];
        let was = c.state.swap(BreakerState::Open as u8, Ordering::AcqRel);
        if was != BreakerState::Open as u8 {
            record(st, cell, BreakerState::Open);
        }
        if !c.probing.swap(true, Ordering::AcqRel) {
            tokio::spawn(probe_until_closed(st.clone(), cell));
        }
    }

    fn transition(&self, st: &State, cell: usize, to: BreakerState) -> bool {
        let was = self.cells[cell].state.swap(to as u8, Ordering::AcqRel);
        if was != to as u8 {
            if to == BreakerState::Closed {
                self.cells[cell].relearned.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            record(st, cell, to);
        }
        was != to as u8
    }

    /// While `cell` is down: true at most once per `interval` for the cache entry `(path,
    /// exact)`, for the caller that may relearn it.
    pub fn may_relearn(&self, cell: usize, path: &str, exact: bool, interval: Duration) -> bool {
        let now = self.now_ms();
        let mut map = self.cells[cell].relearned.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&(path.to_string(), exact)) {
            Some(at) if now.saturating_sub(*at) < interval.as_millis() as u64 => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                map.insert((path.to_string(), exact), now);
                true
            }
        }
    }

    /// Every cell once, for learn requests: healthy ones in random order, then the others in
    /// random order (if every cell is "down", all are still tried).
    pub fn order(&self) -> Vec<usize> {
        let mut rng = rand::rng();
        let (mut up, mut down): (Vec<usize>, Vec<usize>) = (0..self.cells.len()).partition(|&i| self.is_up(i));
        up.shuffle(&mut rng);
        down.shuffle(&mut rng);
        up.extend(down);
        up
    }
}

/// The transition's log line and metrics.
fn record(st: &State, cell: usize, to: BreakerState) {
    let name = st.cfg.cells[cell].name.as_str();
    st.metrics.breaker(cell, name, to);
    match to {
        BreakerState::Closed => tracing::info!(cell = name, "cell breaker closed: the cell answers again"),
        BreakerState::Open => tracing::warn!(cell = name, "cell breaker open: requests for the cell are answered 503 until a probe succeeds"),
        BreakerState::HalfOpen => tracing::debug!(cell = name, "cell breaker half-open: probing"),
    }
}

/// Probes `cell` every `breaker.probe_interval` until a probe (or a learn request) closes its
/// breaker.
async fn probe_until_closed(st: Arc<State>, cell: usize) {
    let c = &st.health.cells[cell];
    let name = st.cfg.cells[cell].name.as_str();
    loop {
        tokio::time::sleep(st.cfg.probe_interval).await;
        // Open -> half-open; anything else means a learn request closed it meanwhile.
        if c.state.compare_exchange(BreakerState::Open as u8, BreakerState::HalfOpen as u8, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            record(&st, cell, BreakerState::HalfOpen);
            let ok = probe(&st, cell).await;
            st.metrics.probe(name, ok);
            if ok {
                st.health.transition(&st, cell, BreakerState::Closed);
            } else if c.state.compare_exchange(BreakerState::HalfOpen as u8, BreakerState::Open as u8, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                record(&st, cell, BreakerState::Open);
            }
        }
        if st.health.is_closed(cell) {
            c.probing.store(false, Ordering::Release);
            // A trip between the check and the store found `probing` set and left the probing
            // to this task: take it up again.
            if st.health.is_closed(cell) || c.probing.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }
}

/// One probe, bounded by `timeouts.connect` (TCP) or `timeouts.learn` (HTTP). An HTTP probe's
/// answer also tells the cell's route table (see [`crate::tables`]).
pub async fn probe(st: &State, cell: usize) -> bool {
    match &st.cfg.probe {
        Probe::Tcp => crate::upstream::dial(&st.cfg.cells[cell].authority, st.cfg.connect_timeout).await.is_ok(),
        Probe::Http(_) => read_health(st, cell).await,
    }
}

/// `GET probe_path` on `cell`: true when it answered below 500. The route table headers of the
/// answer are recorded. Bounded by `timeouts.learn`.
pub async fn read_health(st: &State, cell: usize) -> bool {
    let Probe::Http(path) = &st.cfg.probe else {
        return false;
    };
    let Ok(req) = http::Request::get(path.as_str()).header("x-cells-router", st.cfg.name.as_str()).body(crate::proxy::empty()) else {
        return false;
    };
    let work = async {
        let resp = st.client.send(cell, req).await.ok()?;
        let ok = resp.status().as_u16() < 500;
        if ok {
            st.tables.observe_headers(cell, resp.headers());
        }
        // Read to the end, so the connection goes back to the pool for the next request.
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
        Some(ok)
    };
    matches!(tokio::time::timeout(st.cfg.learn_timeout, work).await, Ok(Some(true)))
}
