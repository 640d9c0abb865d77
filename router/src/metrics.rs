//! Prometheus metrics, exposed as text at `/-/cells-router/metrics`.
//!
//! prometheus-client keeps each series lock-free (atomic counters in a label-keyed family) and
//! encodes the OpenMetrics text format that Prometheus scrapes. Finding a series in a family
//! takes a read lock, a hash of its labels and (for `String` labels) an allocation, so the
//! series counted on every request are resolved once and kept as handles: the cache lookup
//! results, and `requests_total` per (cell, status), created on first use (a series appears in
//! the output only once it has been counted).
//!
//! Those two are counted on every request by every worker thread, so their values are split per
//! worker ([`PerWorker`]): one shared atomic would have every core write the same cache line on
//! every request. A scrape sums the parts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{Atomic, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cache::CacheResult;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The cell that served the request, or "none" when the router answered itself.
    pub cell: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// hit, miss, stale or bypass (uncacheable answers / router endpoints).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CellReasonLabels {
    pub cell: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabels {
    /// learn (a learn answer) or header (an X-Gitlab-Cell-Cache header).
    pub origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CellLabels {
    pub cell: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub cell: String,
    /// The state entered: closed, open or half_open.
    pub to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub cell: String,
    /// ok or failed.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SharedLabels {
    /// read, write, purge (this router deleted and published), purge_received (applied from the channel).
    pub op: &'static str,
    /// read: hit, miss, error, timeout, untrusted; write and purge: ok, error; purge_received: ok, invalid.
    pub result: &'static str,
}

/// The shared tier's operation counts (`cells_router_shared_cache_operations_total`), a handle
/// the tier's own thread keeps.
#[derive(Clone, Default)]
pub struct SharedCounters(Family<SharedLabels, Counter>);

impl SharedCounters {
    pub fn count(&self, op: &'static str, result: &'static str) {
        self.0.get_or_create(&SharedLabels { op, result }).inc();
    }
}

/// Worker threads whose counts go to parts of their own (more share parts, round robin).
const PARTS: usize = 8;

/// A counter's value as one part per worker thread, each on a cache line of its own: counting
/// writes only the calling worker's line, reading sums them all.
#[derive(Debug, Default)]
pub struct PerWorker([Part; PARTS]);

/// 128 bytes: a cache line, or the pair of lines some CPUs fetch together.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Part(AtomicU64);

impl Atomic<u64> for PerWorker {
    fn inc(&self) -> u64 {
        self.inc_by(1)
    }

    fn inc_by(&self, v: u64) -> u64 {
        self.0[crate::upstream::worker() % PARTS].0.fetch_add(v, Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

/// A counter every request increments (see [`PerWorker`]).
pub type HotCounter = Counter<u64, PerWorker>;

pub struct Metrics {
    pub shared: SharedCounters,
    registry: Registry,
    pub requests: Family<RequestLabels, HotCounter>,
    pub cache_lookups: Family<CacheLabels, HotCounter>,
    pub cache_entries: Gauge,
    pub learn_duration: Histogram,
    pub learn_requests: Counter,
    pub learn_failures: Family<CellReasonLabels, Counter>,
    pub upstream_errors: Family<CellReasonLabels, Counter>,
    pub rejected_answers: Family<OriginLabels, Counter>,
    pub misdirected: Counter,
    /// Requests sent to a cell a second time after meeting a closing pooled connection, by
    /// cell and reason (`unsent`, `reset_idempotent`); counted by [`crate::upstream::Pool`].
    pub upstream_retries: Family<CellReasonLabels, Counter>,
    /// Per cell: 0 closed, 1 open, 2 half-open (see [`crate::breaker`]).
    pub breaker_state: Family<CellLabels, Gauge>,
    pub breaker_transitions: Family<TransitionLabels, Counter>,
    pub probes: Family<ProbeLabels, Counter>,
    /// `cache_lookups_total` handles: hit, miss, stale, bypass.
    lookups: [HotCounter; 4],
    /// `requests_total` handles: row 0 is the router itself (`cell="none"`), row i+1 cell i;
    /// column `status - 100` for statuses 100..=599.
    request_slots: Vec<Box<[OnceLock<HotCounter>]>>,
}

const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics without per-cell request handles (every request count goes through the family).
    pub fn new() -> Metrics {
        Self::for_cells(0)
    }

    /// Metrics with request handles for `cells` configured cells.
    pub fn for_cells(cells: usize) -> Metrics {
        let mut registry = Registry::with_prefix("cells_router");
        let requests = Family::<RequestLabels, HotCounter>::default();
        registry.register("requests", "Requests answered, by serving cell and status", requests.clone());
        let cache_lookups = Family::<CacheLabels, HotCounter>::default();
        registry.register("cache_lookups", "Route cache lookups by result (hit, miss, stale, bypass)", cache_lookups.clone());
        let cache_entries = Gauge::default();
        registry.register("cache_entries", "Entries in the route cache", cache_entries.clone());
        // 100 µs .. ~3.3 s
        let learn_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register("learn_duration_seconds", "Latency of successful learn requests", learn_duration.clone());
        let learn_requests = Counter::default();
        registry.register("learn_requests", "Learn requests sent to cells (all attempts)", learn_requests.clone());
        let learn_failures = Family::<CellReasonLabels, Counter>::default();
        registry.register("learn_failures", "Learn attempts that failed, by cell and reason", learn_failures.clone());
        let upstream_errors = Family::<CellReasonLabels, Counter>::default();
        registry.register("upstream_errors", "Forwarded requests that failed, by cell and reason", upstream_errors.clone());
        let rejected_answers = Family::<OriginLabels, Counter>::default();
        registry.register("rejected_answers", "Learn answers or cache headers refused by the trust checks", rejected_answers.clone());
        let misdirected = Counter::default();
        registry.register("misdirected", "421 Misdirected answers from cells", misdirected.clone());
        let upstream_retries = Family::<CellReasonLabels, Counter>::default();
        registry.register("upstream_retries", "Requests sent again after meeting a closing pooled connection, by cell and reason", upstream_retries.clone());
        let breaker_state = Family::<CellLabels, Gauge>::default();
        registry.register("cell_breaker_state", "Circuit breaker state per cell: 0 closed, 1 open, 2 half-open", breaker_state.clone());
        let breaker_transitions = Family::<TransitionLabels, Counter>::default();
        registry.register("cell_breaker_transitions", "Circuit breaker transitions, by cell and state entered", breaker_transitions.clone());
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register("cell_probes", "Probes of cells whose breaker is open, by cell and result", probes.clone());
        let shared = SharedCounters::default();
        registry.register("shared_cache_operations", "Shared (Redis) route cache operations, by operation and result", shared.0.clone());
        let lookups = CacheResult::PREREGISTERED.map(|result| cache_lookups.get_or_create(&CacheLabels { result: result.as_str() }).clone());
        let request_slots = (0..=cells).map(|_| STATUSES.map(|_| OnceLock::new()).collect()).collect();
        Metrics {
            shared,
            lookups,
            request_slots,
            registry,
            requests,
            cache_lookups,
            cache_entries,
            learn_duration,
            learn_requests,
            learn_failures,
            upstream_errors,
            rejected_answers,
            misdirected,
            upstream_retries,
            breaker_state,
            breaker_transitions,
            probes,
        }
    }

    /// A breaker transition of `cell` (named `name`) into `to`.
    pub fn breaker(&self, _cell: usize, name: &str, to: crate::breaker::BreakerState) {
        self.breaker_state.get_or_create(&CellLabels { cell: name.to_string() }).set(to as i64);
        self.breaker_transitions.get_or_create(&TransitionLabels { cell: name.to_string(), to: to.as_str() }).inc();
    }

    pub fn probe(&self, cell: &str, ok: bool) {
        self.probes.get_or_create(&ProbeLabels { cell: cell.to_string(), result: if ok { "ok" } else { "failed" } }).inc();
    }

    pub fn cache(&self, result: CacheResult) {
        // `lookups` holds `PREREGISTERED` in discriminant order; `Shared` comes after them.
        match self.lookups.get(result as usize) {
            Some(counter) => counter.inc(),
            None => self.cache_lookups.get_or_create(&CacheLabels { result: result.as_str() }).inc(),
        };
    }

    /// Counts one answered request: `cell` is the serving cell's index and `name` its name, or
    /// `None` and "none" when the router answered itself.
    pub fn request(&self, cell: Option<usize>, name: &str, status: u16) {
        let row = cell.map_or(0, |c| c + 1);
        let slot = self.request_slots.get(row).filter(|_| STATUSES.contains(&status)).map(|r| &r[usize::from(status - STATUSES.start())]);
        match slot {
            Some(slot) => slot.get_or_init(|| self.requests.get_or_create(&RequestLabels { cell: name.to_string(), status }).clone()).inc(),
            None => self.requests.get_or_create(&RequestLabels { cell: name.to_string(), status }).inc(),
        };
    }

    pub fn learn_failure(&self, cell: &str, reason: &'static str) {
        self.learn_failures.get_or_create(&CellReasonLabels { cell: cell.to_string(), reason }).inc();
    }

    pub fn upstream_error(&self, cell: &str, reason: &'static str) {
        self.upstream_errors.get_or_create(&CellReasonLabels { cell: cell.to_string(), reason }).inc();
    }

    pub fn rejected(&self, origin: &'static str) {
        self.rejected_answers.get_or_create(&OriginLabels { origin }).inc();
    }

    /// The exposition text.
    pub fn encode(&self, cache_entries: u64) -> String {
        self.cache_entries.set(cache_entries as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts made on several worker threads (more workers than parts: some share one) are all
    /// in the scrape, as the one total.
    #[test]
    fn per_worker_counts_add_up_in_the_scrape() {
        let m = std::sync::Arc::new(Metrics::for_cells(1));
        let threads: Vec<_> = (0..PARTS + 3)
            .map(|w| {
                let m = m.clone();
                std::thread::spawn(move || {
                    crate::upstream::set_worker(w);
                    for _ in 0..=w {
                        m.request(Some(0), "cell_0", 200);
                        m.cache(CacheResult::Hit);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let want: usize = (1..=PARTS + 3).sum();
        let text = m.encode(0);
        assert!(text.contains(&format!("cells_router_requests_total{{cell=\"cell_0\",status=\"200\"}} {want}\n")), "{text}");
        assert!(text.contains(&format!("cells_router_cache_lookups_total{{result=\"hit\"}} {want}\n")), "{text}");
    }
}
