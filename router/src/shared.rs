//! The shared second-level route cache, on Redis (`[cache.shared]`, `--shared-cache URL`).
//!
//! Why: each router used to learn alone and forget everything on restart, so a fleet of N
//! routers sent about N learn requests per namespace, and a restarted router relearned its
//! whole working set from the cells. With the shared tier a router that misses its own memory
//! asks Redis before it asks a cell, and writes what it learns (and what cell headers teach it)
//! there with the entry's remaining freshness.
//!
//! Key layout (a contract: the gem's `Invalidation` deletes these keys too):
//! `{namespace}route:={path}` for an exact entry, `{namespace}route:>{path}` for a prefix,
//! the path normalized ([`crate::trust::routing_path`]), the value `{"cell":NAME,"until_ms":T}`
//! (T: Unix milliseconds until which the entry is fresh) plus `"table":V` when the entry was
//! learned from route table version V (see [`crate::tables`]), with a Redis TTL to match. A
//! write never replaces a fresh entry from a newer table: it is a small Lua script that
//! compares the two versions in Redis itself (one round trip, atomic against other routers). A
//! longest-prefix lookup is one `MGET` of the exact key and the keys of every `/`-boundary
//! prefix of the path: one round trip, whatever the depth.
//!
//! Redis is shared infrastructure, not an authority: what comes out of it passes
//! [`crate::trust::check_shared`] before it routes anything. Redis being down, slow or flushed
//! never stops the router: a read waits at most `budget` (default 5 ms) and then the router
//! learns from the cells as it would without Redis; writes never hold a request; the
//! connection manager reconnects by itself. A hit in the router's memory never touches Redis.
//!
//! Purges (`DELETE /-/cells-router/cache` on the internal listener, or the gem's
//! `Invalidation`) are published on `{namespace}purge`; every router subscribed there drops
//! the matching entries from its memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushKind, Value};
use serde::{Deserialize, Serialize};

use crate::cache::RouteCache;
use crate::metrics::SharedCounters;

/// Prefix entries deeper than this are not looked up in Redis (a `MGET` stays small however
/// long the path): GitLab's prefixes are one or two segments deep.
pub const MAX_PREFIX_DEPTH: usize = 16;

/// The `[cache.shared]` settings, validated.
#[derive(Clone, Debug)]
pub struct SharedConfig {
    /// `redis://[user:password@]host[:port][/db]`; never logged (it may hold a password).
    pub url: String,
    /// The longest a request waits on Redis.
    pub budget: Duration,
    /// Prepended to every key and to the purge channel, so several fleets can share a Redis.
    pub namespace: String,
}

/// What a purge drops: every entry at or below a path prefix, or every entry of a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Purge {
    Prefix(String),
    Cell(String),
}

/// A purge message as published: `{"prefix":"/acme-corp"}` or `{"cell":"cell_us1"}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cell: Option<String>,
}

impl Purge {
    /// The message published on the purge channel.
    pub fn to_message(&self) -> String {
        let m = match self {
            Purge::Prefix(p) => PurgeMessage { prefix: Some(p.clone()), cell: None },
            Purge::Cell(c) => PurgeMessage { prefix: None, cell: Some(c.clone()) },
        };
        serde_json::to_string(&m).unwrap_or_default()
    }

    /// Reads a published message; exactly one of `prefix` and `cell`.
    pub fn from_message(text: &[u8]) -> Option<Purge> {
        match serde_json::from_slice::<PurgeMessage>(text).ok()? {
            PurgeMessage { prefix: Some(p), cell: None } => Some(Purge::Prefix(p)),
            PurgeMessage { prefix: None, cell: Some(c) } => Some(Purge::Cell(c)),
            _ => None,
        }
    }
}

/// An entry as stored in Redis.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    cell: String,
    until_ms: u64,
    /// The route table version the entry was learned from (absent: 0, unversioned).
    #[serde(default, skip_serializing_if = "is_zero")]
    table: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `SET key value PX ms` unless the key holds a fresh entry from a newer route table.
/// KEYS[1] the key; ARGV: the value, its table, its PX, now (Unix ms). Returns 1 when written.
const STORE_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  if ok and type(old) == 'table' and (tonumber(old.table) or 0) > tonumber(ARGV[2]) and (tonumber(old.until_ms) or 0) > tonumber(ARGV[4]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

/// An entry read from Redis, not yet checked by the trust rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub exact: bool,
    pub cell: String,
    /// How much longer the writer said it is fresh.
    pub fresh_for: Duration,
    /// The route table version it was learned from.
    pub table: u64,
}

/// Why a shared-tier operation gave up (counted, logged at debug: Redis being away is normal).
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("no answer from redis within {0:?}")]
    Budget(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the shared cache's thread: {0}")]
    Thread(std::io::Error),
}

/// The Redis connections of one router: commands (multiplexed) and the purge subscription.
pub struct SharedTier {
    conn: ConnectionManager,
    cfg: SharedConfig,
    counters: SharedCounters,
    /// The runtime of the tier's own thread: writes and the subscriber run there, never on a
    /// worker's event loop (workers are single-threaded; a worker stopping must not stop Redis).
    handle: tokio::runtime::Handle,
    /// True once the purge subscription is in place (tests wait for it).
    subscribed: Arc<AtomicBool>,
    /// Counts purges applied from the channel (tests and the propagation figure wait on it).
    applied: tokio::sync::watch::Receiver<u64>,
    /// Dropped with the tier: ends the tier's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `*`, `?`, `[`, `]` and `\` are glob characters in `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// True when the normalized `path` is `prefix` or below it (on a `/` boundary).
pub fn at_or_below(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl SharedTier {
    /// Starts the tier's thread and connects lazily: a Redis that is down at start only means
    /// the router learns from the cells until it comes back.
    pub fn start(cfg: SharedConfig, cache: Arc<RouteCache>, cells: Vec<String>, counters: SharedCounters) -> Result<SharedTier, SharedError> {
        let info = redis::IntoConnectionInfo::into_connection_info(cfg.url.as_str())?;
        let resp3 = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.clone().set_redis_settings(resp3))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let subscribed = Arc::new(AtomicBool::new(false));
        let (applied_tx, applied_rx) = tokio::sync::watch::channel(0u64);
        let (sub_flag, channel, budget) = (subscribed.clone(), format!("{}purge", cfg.namespace), cfg.budget);
        let sub_counters = counters.clone();
        std::thread::Builder::new()
            .name("cells-router-shared".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(SharedError::Thread(e)));
                        return;
                    }
                };
                let made = {
                    let _guard = rt.enter();
                    // Commands: a reply later than the budget is abandoned by the caller anyway;
                    // the manager's own timeouts only bound reconnect attempts.
                    let commands = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(Duration::from_millis(500)))
                        .set_response_timeout(Some(Duration::from_secs(1)))
                        .set_number_of_retries(2)
                        .set_max_delay(Duration::from_millis(500));
                    let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel();
                    let pubsub = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(Duration::from_millis(500)))
                        .set_number_of_retries(2)
                        .set_max_delay(Duration::from_millis(500))
                        .set_push_sender(push_tx)
                        .set_automatic_resubscription();
                    ConnectionManager::new_lazy_with_config(client.clone(), commands)
                        .and_then(|c| ConnectionManager::new_lazy_with_config(client, pubsub).map(|p| (c, p, push_rx)))
                };
                let (conn, pubsub, pushes) = match made {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(SharedError::Redis(e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((conn, rt.handle().clone())));
                let subscriber = subscribe_loop(pubsub, pushes, channel, cache, cells, sub_flag, applied_tx, sub_counters, budget);
                rt.block_on(async move {
                    tokio::select! {
                        _ = stop_rx => {}
                        () = subscriber => {}
                    }
                });
            })
            .map_err(SharedError::Thread)?;
        let (conn, handle) = ready_rx.recv().map_err(|_| SharedError::Thread(std::io::Error::other("it ended before connecting")))??;
        // Connect now, in the background: the first lookup should not pay for the handshake
        // (it would exceed the budget and learn from the cells for nothing).
        let mut warm = conn.clone();
        handle.spawn(async move {
            let _ = redis::cmd("PING").query_async::<Value>(&mut warm).await;
        });
        Ok(SharedTier { conn, cfg, counters, handle, subscribed, applied: applied_rx, _stop: stop_tx })
    }

    /// Waits until Redis answers a `PING` on the command connection and the purge
    /// subscription is in place, at most `within`; true when both are (tests, scripts).
    pub async fn ready(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut conn = self.conn.clone();
            let ping = tokio::time::timeout(Duration::from_millis(200), redis::cmd("PING").query_async::<Value>(&mut conn)).await;
            if matches!(ping, Ok(Ok(_))) && self.subscribed() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    fn key(&self, exact: bool, path: &str) -> String {
        format!("{}route:{}{}", self.cfg.namespace, if exact { '=' } else { '>' }, path)
    }

    /// The keys a lookup of the normalized `path` reads, in preference order: the exact entry,
    /// then prefixes from the longest (the path itself) to one segment, at most
    /// [`MAX_PREFIX_DEPTH`] segments deep. No entry is ever made for `/`.
    pub fn candidates(path: &str) -> Vec<(String, bool)> {
        let mut out = vec![(path.to_string(), true)];
        if path == "/" {
            return out;
        }
        let mut cuts: Vec<usize> = path.match_indices('/').map(|(i, _)| i).skip(1).collect();
        cuts.push(path.len());
        for end in cuts.into_iter().take(MAX_PREFIX_DEPTH).rev() {
            out.push((path[..end].to_string(), false));
        }
        out
    }

    /// One `MGET` for every candidate entry of the normalized `path`, within the budget: the
    /// entries found, in preference order (exact, then longest prefix first).
    pub async fn lookup(&self, path: &str) -> Result<Vec<Found>, SharedError> {
        let candidates = Self::candidates(path);
        let keys: Vec<String> = candidates.iter().map(|(p, exact)| self.key(*exact, p)).collect();
        let mut conn = self.conn.clone();
        let read = async move { redis::cmd("MGET").arg(&keys).query_async::<Vec<Option<String>>>(&mut conn).await };
        let values = match tokio::time::timeout(self.cfg.budget, read).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.counters.count("read", "error");
                return Err(e.into());
            }
            Err(_) => {
                self.counters.count("read", "timeout");
                return Err(SharedError::Budget(self.cfg.budget));
            }
        };
        let now = unix_ms();
        let found: Vec<Found> = candidates
            .into_iter()
            .zip(values)
            .filter_map(|((path, exact), v)| {
                let stored: Stored = serde_json::from_str(&v?).ok()?;
                let fresh_for = Duration::from_millis(stored.until_ms.checked_sub(now).filter(|&ms| ms > 0)?);
                Some(Found { path, exact, cell: stored.cell, fresh_for, table: stored.table })
            })
            .collect();
        self.counters.count("read", if found.is_empty() { "miss" } else { "hit" });
        Ok(found)
    }

    /// Writes an entry fresh for `fresh_for`, learned from route table `table`, in the
    /// background: the request never waits. A fresh entry from a newer table stays (counted as
    /// `write`/`older_table`).
    pub fn store(&self, path: &str, exact: bool, cell: &str, fresh_for: Duration, table: u64) {
        let ms = fresh_for.as_millis() as u64;
        if ms == 0 {
            return;
        }
        let now = unix_ms();
        let value = serde_json::to_string(&Stored { cell: cell.to_string(), until_ms: now + ms, table }).unwrap_or_default();
        let (key, mut conn, counters, budget) = (self.key(exact, path), self.conn.clone(), self.counters.clone(), self.cfg.budget);
        self.handle.spawn(async move {
            // EVAL rather than EVALSHA: Redis caches the compiled script itself, and a write
            // needs no round trip to load it after a restart or a `SCRIPT FLUSH`.
            let mut eval = redis::cmd("EVAL");
            eval.arg(STORE_SCRIPT).arg(1).arg(&key).arg(&value).arg(table).arg(ms).arg(now);
            let write = eval.query_async::<i64>(&mut conn);
            // Writes get more time than reads: nobody waits on them, and a lost write only
            // costs another router a learn request.
            let result = tokio::time::timeout(budget * 20, write).await;
            counters.count(
                "write",
                match result {
                    Ok(Ok(1)) => "ok",
                    Ok(Ok(_)) => "older_table",
                    _ => "error",
                },
            );
        });
    }

    /// Deletes the entry at exactly (`path`, `exact`) in the background (a 421 with no owner).
    pub fn forget(&self, path: &str, exact: bool) {
        let (key, mut conn) = (self.key(exact, path), self.conn.clone());
        self.handle.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn)).await;
        });
    }

    /// Deletes the Redis entries a purge covers, then publishes it to every router. Returns
    /// the number of Redis entries deleted. Runs on the tier's runtime (a `SCAN` may take a
    /// while on a big keyspace), bounded by `timeout`.
    pub async fn purge(&self, purge: &Purge, timeout: Duration) -> Result<usize, SharedError> {
        let (mut conn, ns, purge2) = (self.conn.clone(), self.cfg.namespace.clone(), purge.clone());
        let work = self.handle.spawn(async move {
            let deleted = delete_matching(&mut conn, &ns, &purge2).await?;
            redis::cmd("PUBLISH").arg(format!("{ns}purge")).arg(purge2.to_message()).query_async::<i64>(&mut conn).await?;
            Ok::<usize, redis::RedisError>(deleted)
        });
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(Ok(r)) => r.map_err(SharedError::from),
            Ok(Err(e)) => Err(SharedError::Thread(std::io::Error::other(e.to_string()))),
            Err(_) => Err(SharedError::Budget(timeout)),
        };
        self.counters.count("purge", if result.is_ok() { "ok" } else { "error" });
        result
    }

    /// True once the purge subscription is in place.
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// A receiver of the number of purges applied from the channel so far.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.clone()
    }
}

/// `SCAN`s the route keys a purge covers and deletes them.
async fn delete_matching(conn: &mut ConnectionManager, ns: &str, purge: &Purge) -> Result<usize, redis::RedisError> {
    let route = format!("{ns}route:");
    let pattern = match purge {
        Purge::Prefix(p) => format!("{}[=>]{}*", glob_escape(&route), glob_escape(p.trim_end_matches('/'))),
        Purge::Cell(_) => format!("{}*", glob_escape(&route)),
    };
    let mut cursor = 0u64;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(conn).await?;
        let doomed: Vec<String> = match purge {
            Purge::Prefix(p) => keys.into_iter().filter(|k| k.get(route.len() + 1..).is_some_and(|path| at_or_below(path, p))).collect(),
            Purge::Cell(cell) if !keys.is_empty() => {
                let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
                keys.into_iter()
                    .zip(values)
                    .filter(|(_, v)| v.as_deref().and_then(|v| serde_json::from_str::<Stored>(v).ok()).is_some_and(|s| &s.cell == cell))
                    .map(|(k, _)| k)
                    .collect()
            }
            Purge::Cell(_) => Vec::new(),
        };
        if !doomed.is_empty() {
            deleted += redis::cmd("DEL").arg(&doomed).query_async::<usize>(conn).await?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(deleted);
        }
    }
}

/// Subscribes to the purge channel (again and again until Redis lets it) and applies every
/// purge message to this router's memory. Reconnects and resubscribes are the connection
/// manager's; a `PING` every second makes it notice a dead connection when nothing else does.
#[allow(clippy::too_many_arguments)]
async fn subscribe_loop(
    mut pubsub: ConnectionManager,
    mut pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    channel: String,
    cache: Arc<RouteCache>,
    cells: Vec<String>,
    subscribed: Arc<AtomicBool>,
    applied: tokio::sync::watch::Sender<u64>,
    counters: SharedCounters,
    budget: Duration,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ever_subscribed = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !ever_subscribed {
                    match tokio::time::timeout(Duration::from_secs(1), pubsub.subscribe(&channel)).await {
                        Ok(Ok(())) => ever_subscribed = true,
                        Ok(Err(e)) => tracing::debug!(error = %e, "shared cache: purge subscription failed; retrying"),
                        Err(_) => tracing::debug!("shared cache: purge subscription timed out; retrying"),
                    }
                } else {
                    let ping = tokio::time::timeout(Duration::from_secs(1).max(budget), redis::cmd("PING").query_async::<Value>(&mut pubsub)).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        subscribed.store(false, Ordering::Release);
                    }
                }
            }
            push = pushes.recv() => {
                let Some(push) = push else { return };
                match push.kind {
                    PushKind::Subscribe => subscribed.store(true, Ordering::Release),
                    PushKind::Disconnection => {
                        subscribed.store(false, Ordering::Release);
                        tracing::info!("shared cache: purge subscription lost; reconnecting");
                    }
                    PushKind::Message => {
                        let payload = match push.data.get(1) {
                            Some(Value::BulkString(b)) => b.as_slice(),
                            _ => &[],
                        };
                        match Purge::from_message(payload) {
                            Some(p) => {
                                let started = Instant::now();
                                let dropped = apply(&cache, &cells, &p);
                                counters.count("purge_received", "ok");
                                tracing::info!(purge = ?p, dropped, apply_us = started.elapsed().as_micros() as u64, "purge applied");
                                applied.send_modify(|n| *n += 1);
                            }
                            None => {
                                counters.count("purge_received", "invalid");
                                tracing::warn!(message = %String::from_utf8_lossy(&payload[..payload.len().min(200)]), "invalid purge message ignored");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Drops what a purge covers from this router's memory; returns how many entries (counted
/// before moka applies the invalidation).
pub fn apply(cache: &RouteCache, cells: &[String], purge: &Purge) -> usize {
    match purge {
        Purge::Prefix(p) => cache.purge_prefix(&crate::trust::routing_path(p)),
        Purge::Cell(c) => cells.iter().position(|n| n == c).map_or(0, |i| cache.purge_cell(i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_exact_then_longest_prefix_first() {
        let c = SharedTier::candidates("/acme/proj/-/issues");
        let want: Vec<(String, bool)> = vec![
            ("/acme/proj/-/issues".into(), true),
            ("/acme/proj/-/issues".into(), false),
            ("/acme/proj/-".into(), false),
            ("/acme/proj".into(), false),
            ("/acme".into(), false),
        ];
        assert_eq!(c, want);
        assert_eq!(SharedTier::candidates("/"), vec![("/".to_string(), true)]);
    }

    #[test]
    fn deep_paths_read_a_bounded_number_of_keys() {
        let deep = "/a".repeat(100);
        let c = SharedTier::candidates(&deep);
        assert_eq!(c.len(), 1 + MAX_PREFIX_DEPTH);
        assert_eq!(c.last().unwrap().0, "/a");
    }

    #[test]
    fn purge_messages_round_trip_and_refuse_ambiguity() {
        for p in [Purge::Prefix("/acme-corp".into()), Purge::Cell("cell_us1".into())] {
            assert_eq!(Purge::from_message(p.to_message().as_bytes()), Some(p));
        }
        assert_eq!(Purge::from_message(br#"{"prefix":"/a","cell":"c"}"#), None);
        assert_eq!(Purge::from_message(br#"{}"#), None);
        assert_eq!(Purge::from_message(br#"{"prefix":"/a","x":1}"#), None);
        assert_eq!(Purge::from_message(b"not json"), None);
    }

    #[test]
    fn prefixes_cover_on_segment_boundaries() {
        assert!(at_or_below("/acme-corp", "/acme-corp"));
        assert!(at_or_below("/acme-corp/x", "/acme-corp"));
        assert!(at_or_below("/acme-corp/x", "/acme-corp/"));
        assert!(!at_or_below("/acme-corpx", "/acme-corp"));
        assert!(!at_or_below("/acme", "/acme-corp"));
        assert_eq!(glob_escape("/a*b?[c]\\"), "/a\\*b\\?\\[c\\]\\\\");
    }
}
