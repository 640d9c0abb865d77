//! cells-router: the stateless GitLab Cells router.
//!
//! It asks any cell which cell serves a path (`GET /api/v4/cells/learn`), caches the answer
//! (prefix or exact, bounded, with a TTL), and proxies each request exactly once to that cell.
//! The library form exists so tests (and embedders) can run a router in-process on any
//! address; the binary in `main.rs` only parses flags, sets up logging and waits for signals.

mod admin;
pub mod answer_idle;
pub mod body_progress;
pub mod breaker;
pub mod cache;
pub mod client_write;
pub mod config;
pub mod expect_continue;
mod handler;
pub mod json_log;
pub mod lazy_timer;
pub mod learn;
pub mod metrics;
mod plain_path;
pub mod proxy;
mod purge;
pub mod session;
pub mod shared;
pub mod tables;
#[cfg(test)]
mod test_numbers;
pub mod trust;
pub mod upstream;

/// A small seeded xorshift64 generator for the unit tests' random inputs (reproducible runs,
/// no dependency).
#[cfg(test)]
pub(crate) fn test_rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use admin::{serve_internal, CACHE_PATH, HEALTH_PATH, METRICS_PATH, ROUTER_PATHS};
pub use config::{Args, Config, ConfigError};

/// Everything a request needs, shared by all connections.
pub struct State {
    pub cfg: Config,
    pub cache: Arc<cache::RouteCache>,
    /// The shared second-level cache on Redis, when `[cache.shared]` is configured.
    pub shared: Option<shared::SharedTier>,
    pub learner: learn::Learner,
    pub health: breaker::Health,
    /// Which route table each cell runs (mixed versions during a deploy).
    pub tables: tables::RouteTables,
    pub metrics: metrics::Metrics,
    pub client: proxy::Client,
}

impl State {
    pub fn new(cfg: Config) -> Arc<State> {
        let metrics = metrics::Metrics::for_cells(cfg.cells.len());
        // Every cell's breaker state is in the first scrape, not only after its first transition.
        for c in &cfg.cells {
            metrics.breaker_state.get_or_create(&metrics::CellLabels { cell: c.name.clone() }).set(0);
        }
        let tables = tables::RouteTables::new(cfg.cells.len());
        // Entries from an older route table than the newest a cell reported count as stale.
        let cache = Arc::new(cache::RouteCache::new(cfg.cache_capacity, cfg.cache_ttl, cfg.stale_grace).following(tables.newest_handle()));
        let shared = cfg.shared_cache.clone().and_then(|sc| {
            let names = cfg.cells.iter().map(|c| c.name.clone()).collect();
            shared::SharedTier::start(sc, cache.clone(), names, metrics.shared.clone())
                .inspect_err(|e| tracing::error!(error = %e, "shared cache unavailable: learning alone"))
                .ok()
        });
        Arc::new(State {
            cache,
            shared,
            learner: learn::Learner::default(),
            health: breaker::Health::new(cfg.cells.len()),
            tables,
            client: proxy::build_client(&cfg, metrics.upstream_retries.clone()),
            metrics,
            cfg,
        })
    }
}

impl State {
    /// Caches a trusted entry learned from route table `table` here and, with the shared tier,
    /// in Redis for the other routers. Neither replaces a fresh entry from a newer table.
    pub fn remember(&self, path: &str, exact: bool, cell: usize, table: u64) {
        if !self.cache.insert_from(path, exact, cell, self.cache.ttl(), table) {
            return;
        }
        if let Some(shared) = &self.shared {
            shared.store(&trust::routing_path(path), exact, &self.cfg.cells[cell].name, self.cache.ttl(), table);
        }
    }
}

/// One client connection: what each of its requests needs.
pub struct Connection {
    pub st: Arc<State>,
    pub peer: proxy::Peer,
}

/// A router serving in the background (tests, embedding).
pub struct Running {
    pub addr: SocketAddr,
    /// The internal listener's address: health and metrics.
    pub internal_addr: SocketAddr,
    pub state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, drains in-flight requests (bounded by `timeouts.shutdown`), returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Binds `cfg.listen` and `cfg.internal_listen` (port 0 picks a free port) and serves until
/// `shutdown` is called.
pub async fn start(cfg: Config) -> std::io::Result<Running> {
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let internal = TcpListener::bind(cfg.internal_listen).await?;
    let internal_addr = internal.local_addr()?;
    let state = State::new(cfg);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (itx, irx) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(serve_internal(internal, state.clone(), async move {
        let _ = irx.await;
    }));
    let public = serve(listener, state.clone(), async move {
        let _ = rx.await;
    });
    let task = tokio::spawn(async move {
        public.await;
        let _ = itx.send(());
        let _ = admin.await;
    });
    Ok(Running { addr, internal_addr, state, stop: Some(tx), task })
}

/// Accepts connections until `shutdown` completes, then lets open connections finish their
/// current request (graceful shutdown), for at most `timeouts.shutdown`.
pub async fn serve(listener: TcpListener, st: Arc<State>, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    // The header-read timeout runs on each connection's own timer (set below).
    http.header_read_timeout(st.cfg.header_read_timeout)
        .max_header_size(st.cfg.max_header_bytes)
        .max_buf_size(st.cfg.max_header_bytes.max(400 * 1024))
        // One flattened buffer per write rather than a vectored write of head and body: on
        // loopback at 128 connections +4–6% requests/s in every one of 7 alternating rounds
        // (`writev(false)` 55.3–69.0k against 52.4–66.1k); a few extra copies of body bytes
        // cost far less than the kernel's per-iovec work on small responses.
        .writev(false);
    // Each connection task holds a receiver: `closed()` on the sender resolves once all are gone.
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    // Set before the drain signal is sent: see `until_drain`.
    let draining = Arc::new(AtomicBool::new(false));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request's future holds the connection (this thread's alone), not the shared
        // state: cloning an `Arc<State>` per request would make every core write the same
        // reference count.
        let connection = Arc::new(Connection { st: st.clone(), peer: proxy::Peer::new(peer) });
        // The connection's lazy timer times its request heads (hyper) and its requests (the
        // handler) without touching tokio's timer wheel per request.
        let mut conn_http = http.clone();
        conn_http.timer(lazy_timer::HyperTimer(connection.peer.timer.clone()));
        // A client that stops taking its answer is let go (see `client_write`).
        let io = client_write::WriteTimeout::new(stream, connection.peer.timer.clone(), st.cfg.client_write_timeout);
        let svc = service_fn(move |req| handler::handle(connection.clone(), req));
        let conn = conn_http.serve_connection(TokioIo::new(io), svc).with_upgrades();
        let mut drain = drain_rx.clone();
        let draining = draining.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let result = match until_drain(conn.as_mut(), drain.changed(), &draining).await {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(drain);
        });
    }
    drop(listener);
    drop(drain_rx);
    draining.store(true, Ordering::Release);
    let _ = drain_tx.send(true);
    tracing::info!(router = %st.cfg.name, "shutting down: draining connections");
    if tokio::time::timeout(st.cfg.shutdown_timeout, drain_tx.closed()).await.is_err() {
        tracing::warn!("shutdown timeout reached with connections still open");
    }
}

/// Polls a connection until it ends (`Some` of its result) or the drain begins (`None`).
///
/// The drain signal (`changed`, a watch channel's) is polled once, which registers the
/// connection task's waker with the channel, and after that only once `draining` is set —
/// which serve does before sending the signal, whose send wakes every registered task. A
/// `select!` would poll the signal on every wake-up of the connection, several per request,
/// each taking the channel's waiter lock (callgrind: ~260 instructions per proxied request).
/// Sound because a task's waker stays the same task's: the one registered first still wakes it.
async fn until_drain<C: Future>(mut conn: Pin<&mut C>, changed: impl Future, draining: &AtomicBool) -> Option<C::Output> {
    let mut changed = std::pin::pin!(changed);
    let mut registered = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = conn.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if !registered || draining.load(Ordering::Acquire) {
            registered = true;
            if changed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    })
    .await
}
