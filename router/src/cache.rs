//! The route cache: learned answers, exact or prefix, bounded in size and in age.
//!
//! Built on moka (a concurrent TinyLFU cache) rather than hand-written eviction: the router's
//! cache must stay at its capacity under a long tail of distinct URLs (the seed's "the router
//! cache may need to be very large" concern), and moka admits new keys only when they are more
//! popular than what they would evict, so a flood of one-off paths cannot flush the hot routes.
//!
//! Entries live `ttl + stale_grace` in moka; within `ttl` they are fresh, after it they are
//! stale and only used when no cell can answer a learn request (stale-while-revalidate).
//!
//! Mixed versions ([`crate::tables`]): an entry learned from an older route table than the
//! newest one a cell has reported is stale too, however young: the next request learns it
//! again, from a cell of the newest table. When that cell cannot answer (an older cell does,
//! or none), the entry is stored as one whose revalidation failed: served at once, refreshed in
//! the background at most once a second, so a deploy whose new cells are failing costs a
//! bounded trickle of learn requests, not one per request.
//!
//! Keys are the path with a one-byte marker, `=` for exact entries and `>` for prefixes, so
//! one cache (one capacity) holds both and a lookup is a few hash probes: the exact path,
//! then each `/`-boundary prefix of the path from the longest to `/`.
//!
//! A hit is served from the calling worker thread's memo of fresh entries when it can (`memo`):
//! moka's `get` writes shared cache lines on every hit, which two cores serving the same
//! popular route would otherwise pass back and forth on every request.
//!
//! Every path is keyed in its normalized form ([`crate::trust::routing_path`]: Rails'
//! `normalize_path`, which the cells apply before routing and the learn answers are written
//! in), so `/-/profile/` finds the `/-/profile` entry and `%c3%a9` the `%C3%A9` one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

mod memo;

/// One learned route.
#[derive(Debug)]
pub struct Entry {
    /// The path the answer (or cache header) named: the request path itself when `exact`.
    pub path: String,
    pub exact: bool,
    /// Index of the owning cell in the configuration.
    pub cell: usize,
    pub fresh_until: Instant,
    /// The version of the route table the entry was learned from (0: unversioned); see
    /// [`crate::tables`].
    pub table: u64,
    /// Milliseconds since the cache's epoch of the last failed revalidation (0: none), so a
    /// stale entry whose cells are down is served at once instead of waiting on every request.
    failed_at_ms: AtomicU64,
    /// Set once the cache has replaced or removed the entry: the threads' memos drop it.
    retired: AtomicBool,
}

impl Entry {
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// A thread's own copy of a fresh entry (see `memo`): no revalidation has failed for it.
    fn copy(&self) -> Entry {
        Entry {
            path: self.path.clone(),
            exact: self.exact,
            cell: self.cell,
            fresh_until: self.fresh_until,
            table: self.table,
            failed_at_ms: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }
    }
}

/// How the route cache decided a request, as the access log (`cache=`), the trace header and
/// the `cache_lookups_total{result}` metric name it ([`CacheResult::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CacheResult {
    /// A fresh entry (or one another request learned meanwhile) routed it.
    Hit,
    /// No usable entry: the router learned, and may cache the answer.
    Miss,
    /// An expired entry routed it because learning failed (or failed recently).
    Stale,
    /// Not looked up, or learned but not cacheable: the cache played no part.
    #[default]
    Bypass,
    /// The shared cache had a trusted entry another router learned.
    Shared,
}

impl CacheResult {
    /// The results counted from the start (their `cache_lookups_total` series exist at 0
    /// before any request), in the order of their discriminants.
    pub const PREREGISTERED: [CacheResult; 4] = [CacheResult::Hit, CacheResult::Miss, CacheResult::Stale, CacheResult::Bypass];

    /// `hit`, `miss`, `stale`, `bypass` or `shared`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Stale => "stale",
            CacheResult::Bypass => "bypass",
            CacheResult::Shared => "shared",
        }
    }
}

impl std::fmt::Display for CacheResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    Fresh(Arc<Entry>),
    /// Expired but within the stale grace: usable only if learning fails.
    Stale(Arc<Entry>),
    Miss,
}

pub struct RouteCache {
    inner: Cache<String, Arc<Entry>>,
    ttl: Duration,
    epoch: Instant,
    /// Bit `d` set once an exact (resp. prefix) entry of `d` segments has been stored (bit 63:
    /// 63 or more). A lookup probes only depths where an entry may exist: GitLab's prefixes
    /// are one or two segments deep (`/gitlab-org`, `/gitlab-org/gitlab`), so a request for
    /// `/gitlab-org/gitlab/-/issues/1` costs one hash probe rather than six. Bits are never
    /// cleared, so no entry is ever skipped.
    exact_depths: AtomicU64,
    prefix_depths: AtomicU64,
    /// The newest route table version a cell has reported ([`crate::tables::RouteTables::newest_handle`];
    /// 0 and never raised for a cache that follows no tables).
    newest_table: Arc<AtomicU64>,
    /// This cache among others in the process, and its purge count: the threads' memos of hits
    /// (`memo`) belong to one cache and start over after each purge.
    id: u64,
    purges: AtomicU64,
}

/// A normalized path's number of segments (`/` is 0).
fn depth(path: &str) -> usize {
    if path == "/" {
        0
    } else {
        path.bytes().filter(|&b| b == b'/').count()
    }
}

/// The bit of `depth` in a depth mask (bit 63: 63 or more).
fn depth_bit(depth: usize) -> u64 {
    1 << depth.min(63)
}

thread_local! {
    /// Each thread's buffer for [`RouteCache::lookup`]'s keys.
    static LOOKUP_KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A key buffer grown past this (a very long path) is shrunk back at the next lookup.
const MAX_KEPT_KEY: usize = 4096;

/// How long after a failed revalidation a stale entry is served without trying again inline.
const REVALIDATE_BACKOFF: Duration = Duration::from_secs(1);

impl RouteCache {
    pub fn new(capacity: u64, ttl: Duration, stale_grace: Duration) -> RouteCache {
        let inner = Cache::builder().max_capacity(capacity).time_to_live(ttl + stale_grace).support_invalidation_closures().build();
        RouteCache {
            inner,
            ttl,
            epoch: Instant::now(),
            exact_depths: AtomicU64::new(0),
            prefix_depths: AtomicU64::new(0),
            newest_table: Arc::new(AtomicU64::new(0)),
            id: memo::new_cache_id(),
            purges: AtomicU64::new(0),
        }
    }

    /// The same cache, taking `newest` as the newest route table version (see the module
    /// documentation): entries from older tables are stale.
    pub fn following(self, newest: Arc<AtomicU64>) -> RouteCache {
        RouteCache { newest_table: newest, ..self }
    }

    /// True when `entry` was learned from an older route table than the newest one known.
    fn outdated(&self, entry: &Entry) -> bool {
        entry.table < self.newest_table.load(Ordering::Relaxed)
    }

    fn key(exact: bool, path: &str) -> String {
        let mut k = String::with_capacity(path.len() + 1);
        k.push(if exact { '=' } else { '>' });
        k.push_str(path);
        k
    }

    /// Exact entry first, then the longest cached prefix ending on a `/` boundary, both for
    /// the normalized `path`.
    pub fn lookup(&self, path: &str) -> Lookup {
        self.lookup_at(path, false, Instant::now())
    }

    /// [`RouteCache::lookup`] with freshness judged at `now`: the proxied request reads the
    /// clock once and shares the reading with the pool and its timeout. `plain`: what
    /// [`crate::trust::check_target`] answered for `path` (see [`crate::trust::routing_path_of`]).
    pub fn lookup_at(&self, path: &str, plain: bool, now: Instant) -> Lookup {
        // The keys are built in the thread's own buffer: one allocation per request less
        // (a lookup only borrows its key; moka and the memo copy what they keep).
        LOOKUP_KEY.with(|buf| match buf.try_borrow_mut() {
            Ok(mut key) => {
                key.clear();
                if key.capacity() > MAX_KEPT_KEY {
                    key.shrink_to(MAX_KEPT_KEY);
                }
                self.lookup_in(path, plain, &mut key, now)
            }
            Err(_) => self.lookup_in(path, plain, &mut String::new(), now),
        })
    }

    /// [`RouteCache::lookup`], building the keys in `key` (empty).
    fn lookup_in(&self, path: &str, plain: bool, key: &mut String, now: Instant) -> Lookup {
        let (exact_depths, prefix_depths) = (self.exact_depths.load(Ordering::Acquire), self.prefix_depths.load(Ordering::Acquire));
        let normalized = crate::trust::routing_path_of(path, plain);
        key.push('=');
        key.push_str(&normalized);
        let depth = depth(&key[1..]);
        let probe = |mask: u64, d: usize| mask & depth_bit(d) != 0;
        let exact = if probe(exact_depths, depth) { memo::get(self, key, now) } else { None };
        let found = exact.or_else(|| {
            // The key written again rather than its first character replaced: `replace_range`
            // (a splice) cost ~115 instructions per request, a copy of the path a few dozen.
            key.clear();
            key.push('>');
            key.push_str(&normalized);
            // Candidates: the path itself, then the path cut before each '/' (longest first),
            // then "/" — each only at a depth some prefix entry has.
            let mut end = key.len();
            let mut d = depth;
            loop {
                if probe(prefix_depths, d) {
                    if let Some(e) = memo::get(self, &key[..end], now) {
                        return Some(e);
                    }
                }
                if end <= 2 {
                    return None;
                }
                match key[1..end].rfind('/') {
                    Some(0) => end = 2, // try "/" itself
                    Some(i) => end = i + 1,
                    None => return None,
                }
                d = d.saturating_sub(1);
            }
        });
        match found {
            Some(e) if e.is_fresh(now) && !self.outdated(&e) => Lookup::Fresh(e),
            Some(e) => Lookup::Stale(e),
            None => Lookup::Miss,
        }
    }

    /// Stores an answer the caller has already validated against the request path (under
    /// its normalized path, which the entry keeps).
    pub fn insert(&self, path: &str, exact: bool, cell: usize) {
        self.insert_from(path, exact, cell, self.ttl, 0);
    }

    /// Like [`RouteCache::insert`], fresh for `fresh_for` (at most the configured TTL: an entry
    /// from the shared tier keeps the freshness its writer gave it), learned from route table
    /// `table`. A fresh entry at the same key learned from a newer table stays (mixed versions:
    /// an older table's answer never replaces a newer one's); returns false then.
    pub fn insert_from(&self, path: &str, exact: bool, cell: usize, fresh_for: Duration, table: u64) -> bool {
        let path = crate::trust::routing_path(path);
        let depths = if exact { &self.exact_depths } else { &self.prefix_depths };
        // Published before the entry itself, so a lookup that finds the entry probes its depth.
        depths.fetch_or(depth_bit(depth(&path)), Ordering::Release);
        let now = Instant::now();
        let entry = Arc::new(Entry {
            path: path.to_string(),
            exact,
            cell,
            fresh_until: now + fresh_for.min(self.ttl),
            table,
            failed_at_ms: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        });
        if self.outdated(&entry) {
            // Learned from an older table while a newer one is known: its newest cells did not
            // answer. Refreshed in the background, not inline on every request.
            self.mark_failed(&entry);
        }
        // Compared and replaced under the key's lock: two answers from different tables arriving
        // together cannot leave the older one in place.
        let result = self.inner.entry(Self::key(exact, &path)).and_compute_with(|old| match old {
            Some(old) if old.value().table > table && old.value().is_fresh(now) => moka::ops::compute::Op::Nop,
            old => {
                if let Some(old) = old {
                    old.value().retire();
                }
                moka::ops::compute::Op::Put(entry)
            }
        });
        !matches!(result, moka::ops::compute::CompResult::Unchanged(_))
    }

    pub fn remove(&self, path: &str, exact: bool) {
        if let Some(e) = self.inner.remove(Self::key(exact, &crate::trust::routing_path(path)).as_str()) {
            e.retire();
        }
    }

    /// Every entry as (path, exact, cell), in no particular order (tests and diagnostics).
    pub fn entries(&self) -> Vec<(String, bool, usize)> {
        self.inner.iter().map(|(_, e)| (e.path.clone(), e.exact, e.cell)).collect()
    }

    /// Drops every entry that points at `cell` (it was unreachable: relearn rather than keep
    /// sending clients to a dead cell). Returns false if moka refused the predicate.
    pub fn remove_cell(&self, cell: usize) -> bool {
        self.drop_where(move |e| e.cell == cell).1
    }

    /// Drops every entry at or below the normalized `prefix` (on a `/` boundary): an
    /// organization or namespace moved (a purge). Returns how many entries it found.
    pub fn purge_prefix(&self, prefix: &str) -> usize {
        let prefix = prefix.to_string();
        self.drop_where(move |e| crate::shared::at_or_below(&e.path, &prefix)).0
    }

    /// Drops every entry of `cell` (a purge by cell); returns how many entries it found.
    pub fn purge_cell(&self, cell: usize) -> usize {
        self.drop_where(move |e| e.cell == cell).0
    }

    /// Drops the entries `doomed` picks, from moka and from every thread's memo: each is retired
    /// now, moka's invalidation is applied, then the purge count moves on (after the removal, so
    /// no memo can take a doomed entry back in under the new count). Returns how many entries it
    /// found and whether moka took the predicate.
    fn drop_where(&self, doomed: impl Fn(&Entry) -> bool + Send + Sync + 'static) -> (usize, bool) {
        let mut n = 0;
        for (_, e) in self.inner.iter() {
            if doomed(&e) {
                e.retire();
                n += 1;
            }
        }
        let ok = self.inner.invalidate_entries_if(move |_, e| doomed(e)).is_ok();
        self.inner.run_pending_tasks();
        self.purges.fetch_add(1, Ordering::Release);
        (n, ok)
    }

    /// The configured TTL: how long a learned entry is fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records a failed revalidation of `entry`.
    pub fn mark_failed(&self, entry: &Entry) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        entry.failed_at_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// True when a revalidation of `entry` has failed (the cells were down for it).
    pub fn revalidation_failed(&self, entry: &Entry) -> bool {
        entry.failed_at_ms.load(Ordering::Relaxed) != 0
    }

    /// True when a revalidation of `entry` failed less than a second ago: serve it stale
    /// without waiting for the cells again (a background refresh is started instead).
    pub fn recently_failed(&self, entry: &Entry) -> bool {
        let at = entry.failed_at_ms.load(Ordering::Relaxed);
        // Saturating: a failure marked in the cache's first millisecond is stored as 1.
        at != 0 && (self.epoch.elapsed().as_millis() as u64).saturating_sub(at) < REVALIDATE_BACKOFF.as_millis() as u64
    }

    /// Approximate number of entries (moka counts lazily; see `run_pending_tasks`).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Applies pending evictions and invalidations now (tests and the metrics scrape use it).
    pub fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric keeps one counter per preregistered result, indexed by discriminant.
    #[test]
    fn preregistered_results_are_in_discriminant_order() {
        for (i, r) in CacheResult::PREREGISTERED.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r}");
        }
        assert!(!CacheResult::PREREGISTERED.contains(&CacheResult::Shared));
        let names: Vec<&str> =
            [CacheResult::Hit, CacheResult::Miss, CacheResult::Stale, CacheResult::Bypass, CacheResult::Shared].map(CacheResult::as_str).to_vec();
        assert_eq!(names, ["hit", "miss", "stale", "bypass", "shared"]);
    }

    fn cache() -> RouteCache {
        RouteCache::new(100, Duration::from_secs(60), Duration::from_secs(60))
    }

    fn cell_of(l: Lookup) -> Option<usize> {
        match l {
            Lookup::Fresh(e) => Some(e.cell),
            _ => None,
        }
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let c = cache();
        c.insert("/my-company", false, 1);
        c.insert("/my-company/project", false, 2);
        assert_eq!(cell_of(c.lookup("/my-company")), Some(1));
        assert_eq!(cell_of(c.lookup("/my-company/x")), Some(1));
        assert_eq!(cell_of(c.lookup("/my-company/project/-/issues")), Some(2));
        assert_eq!(cell_of(c.lookup("/my-company/projectx")), Some(1));
        assert_eq!(cell_of(c.lookup("/my-companyx")), None);
        assert_eq!(cell_of(c.lookup("/")), None);
        c.insert("/", false, 3);
        assert_eq!(cell_of(c.lookup("/other")), Some(3));
    }

    /// Lookups share one key buffer per thread: whatever a lookup left in it (a longer path, an
    /// exact key, a very long path that grew it) changes nothing for the next one.
    #[test]
    fn the_thread_key_buffer_carries_nothing_over() {
        let c = cache();
        c.insert("/a", false, 1);
        c.insert("/a/b/c", true, 2);
        let long = format!("/a/{}", "x".repeat(3 * MAX_KEPT_KEY));
        assert_eq!(cell_of(c.lookup(&long)), Some(1));
        assert_eq!(cell_of(c.lookup("/a/b/c")), Some(2));
        assert!(LOOKUP_KEY.with(|k| k.borrow().capacity()) <= MAX_KEPT_KEY, "shrunk after the long path");
        assert_eq!(cell_of(c.lookup("/a/b")), Some(1));
        assert_eq!(cell_of(c.lookup("/b")), None);
        assert_eq!(cell_of(c.lookup("/a")), Some(1));
    }

    #[test]
    fn exact_entries_do_not_cover_children_and_win_over_prefixes() {
        let c = cache();
        c.insert("/-/profile", true, 1);
        assert_eq!(cell_of(c.lookup("/-/profile")), Some(1));
        assert_eq!(cell_of(c.lookup("/-/profile/keys")), None);
        c.insert("/-", false, 2);
        assert_eq!(cell_of(c.lookup("/-/profile")), Some(1));
        assert_eq!(cell_of(c.lookup("/-/profile/keys")), Some(2));
    }

    #[test]
    fn paths_are_keyed_normalized() {
        let c = cache();
        c.insert("/-/profile", true, 1);
        assert_eq!(cell_of(c.lookup("/-/profile/")), Some(1));
        c.insert("/caf%c3%a9/", false, 2);
        assert_eq!(cell_of(c.lookup("/caf%C3%A9/x")), Some(2));
        assert_eq!(cell_of(c.lookup("/caf%c3%a9")), Some(2));
        assert_eq!(c.entries().iter().filter(|e| e.0 == "/caf%C3%A9").count(), 1);
        c.remove("/caf%C3%A9/", false);
        assert_eq!(cell_of(c.lookup("/caf%c3%a9/x")), None);
        // Mixed-case escapes are left as they are, as Rails leaves them.
        c.insert("/x%aF", false, 3);
        assert_eq!(cell_of(c.lookup("/x%AF")), None);
        assert_eq!(cell_of(c.lookup("/x%aF/y/")), Some(3));
    }

    /// The depth-skipping lookup finds what probing every candidate would: random entries
    /// and paths over a small alphabet of segments, checked against a brute-force model.
    #[test]
    fn lookups_agree_with_probing_every_prefix() {
        let mut rng = crate::test_rng(0x2545_f491_4f6c_dd1d_u64);
        let mut next = move |n: u64| rng() % n;
        let segs = ["a", "b", "-", "x.y", "%C3%A9"];
        for _ in 0..200 {
            let c = RouteCache::new(1000, Duration::from_secs(60), Duration::from_secs(60));
            let mut model: std::collections::HashMap<(String, bool), usize> = Default::default();
            let path = |next: &mut dyn FnMut(u64) -> u64| -> String {
                let n = next(5);
                if n == 0 {
                    return "/".into();
                }
                (0..n).map(|_| format!("/{}", segs[next(segs.len() as u64) as usize])).collect()
            };
            for cell in 0..next(6) as usize {
                let (p, exact) = (path(&mut next), next(2) == 0);
                c.insert(&p, exact, cell);
                model.insert((p, exact), cell);
            }
            for _ in 0..30 {
                let p = path(&mut next);
                let want = model.get(&(p.clone(), true)).copied().or_else(|| {
                    let mut candidates: Vec<&str> = vec![p.as_str()];
                    let mut cut = p.as_str();
                    while let Some(i) = cut.rfind('/') {
                        cut = if i == 0 { "/" } else { &cut[..i] };
                        candidates.push(cut);
                        if i == 0 {
                            break;
                        }
                    }
                    candidates.iter().find_map(|q| model.get(&(q.to_string(), false)).copied())
                });
                assert_eq!(cell_of(c.lookup(&p)), want, "{p} with {model:?}");
            }
        }
    }

    fn cell_and_table(l: Lookup) -> Option<(usize, u64)> {
        match l {
            Lookup::Fresh(e) => Some((e.cell, e.table)),
            _ => None,
        }
    }

    /// Mixed versions: whichever order the answers of two route tables arrive in, the newer
    /// table's entry is the one kept; an equal table replaces (a re-learn, a 421).
    #[test]
    fn an_older_table_never_replaces_a_newer_one() {
        let ttl = Duration::from_secs(60);
        let c = cache();
        assert!(c.insert_from("/legacy", false, 1, ttl, 1));
        assert!(c.insert_from("/legacy", false, 0, ttl, 2), "newer replaces older");
        assert!(!c.insert_from("/legacy", false, 1, ttl, 1), "older does not replace newer");
        assert_eq!(cell_and_table(c.lookup("/legacy/x")), Some((0, 2)));
        assert!(c.insert_from("/legacy", false, 3, ttl, 2), "same table replaces");
        assert_eq!(cell_and_table(c.lookup("/legacy/x")), Some((3, 2)));
        // Unversioned answers (older gems) rank below every versioned table.
        assert!(!c.insert_from("/legacy", false, 1, ttl, 0));
        // Exact and prefix entries are different keys: each keeps its own table.
        assert!(c.insert_from("/legacy", true, 1, ttl, 1));
        assert_eq!(cell_and_table(c.lookup("/legacy")), Some((1, 1)));
    }

    #[test]
    fn a_stale_newer_entry_gives_way() {
        let c = RouteCache::new(100, Duration::from_millis(20), Duration::from_secs(60));
        c.insert_from("/a", false, 0, Duration::from_secs(60), 5);
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.insert_from("/a", false, 1, Duration::from_secs(60), 1), "an expired entry from a newer table is not kept");
        assert_eq!(cell_and_table(c.lookup("/a")), Some((1, 1)));
    }

    /// Once a newer route table is known, an entry from an older one is stale however young;
    /// one stored from an older table after that is born as a failed revalidation (served, then
    /// refreshed in the background rather than inline).
    #[test]
    fn entries_from_an_older_table_than_the_newest_are_stale() {
        let newest = Arc::new(AtomicU64::new(1));
        let c = cache().following(newest.clone());
        let ttl = Duration::from_secs(60);
        c.insert_from("/a", false, 0, ttl, 1);
        let Lookup::Fresh(e) = c.lookup("/a/x") else { panic!("an entry of the newest table is fresh") };
        assert!(!c.revalidation_failed(&e));
        newest.store(2, Ordering::Relaxed);
        let Lookup::Stale(e) = c.lookup("/a/x") else { panic!("a newer table is known: stale") };
        assert!(!c.revalidation_failed(&e), "learned before the newer table was known: relearned inline");
        c.insert_from("/a", false, 1, ttl, 1);
        let Lookup::Stale(e) = c.lookup("/a/x") else { panic!("still the older table") };
        assert!(c.recently_failed(&e), "learned from the older table while the newer one was known");
        c.insert_from("/a", false, 2, ttl, 2);
        assert_eq!(cell_and_table(c.lookup("/a/x")), Some((2, 2)));
    }

    /// Looks `path` up on a thread of its own (its own memo) until `done` says so, at most 2 s.
    fn lookup_elsewhere(c: &Arc<RouteCache>, path: &'static str, done: impl Fn(Option<usize>) -> bool + Send + 'static) -> std::thread::JoinHandle<bool> {
        let c = c.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if done(cell_of(c.lookup(path))) {
                    return true;
                }
            }
            false
        })
    }

    /// Each thread serves its hits from its own memo; a change the cache makes on another
    /// thread reaches it: a replaced entry, a removed one, a purge (prefix and cell).
    #[test]
    fn memoized_hits_follow_changes_made_on_other_threads() {
        let c = Arc::new(cache());
        c.insert("/org", false, 1);
        // Memoized here (the first hit fills the memo, the next ones come from it).
        for _ in 0..3 {
            assert_eq!(cell_of(c.lookup("/org/p")), Some(1));
        }
        let other = lookup_elsewhere(&c, "/org/p", |cell| cell == Some(1));
        assert!(other.join().unwrap());
        // Replaced on another thread.
        let c2 = c.clone();
        std::thread::spawn(move || assert!(c2.insert_from("/org", false, 2, Duration::from_secs(60), 0))).join().unwrap();
        assert_eq!(cell_of(c.lookup("/org/p")), Some(2));
        // Removed (a 421).
        let c2 = c.clone();
        std::thread::spawn(move || c2.remove("/org", false)).join().unwrap();
        assert_eq!(cell_of(c.lookup("/org/p")), None);
        // Purges.
        c.insert("/org", false, 3);
        c.insert("/other", false, 3);
        assert_eq!(cell_of(c.lookup("/org/p")), Some(3));
        assert_eq!(cell_of(c.lookup("/other/p")), Some(3));
        let c2 = c.clone();
        assert_eq!(std::thread::spawn(move || c2.purge_prefix("/org")).join().unwrap(), 1);
        assert_eq!(cell_of(c.lookup("/org/p")), None);
        assert_eq!(cell_of(c.lookup("/other/p")), Some(3), "what the purge did not name stays");
        let c2 = c.clone();
        assert_eq!(std::thread::spawn(move || c2.purge_cell(3)).join().unwrap(), 1);
        assert_eq!(cell_of(c.lookup("/other/p")), None);
    }

    /// A memo belongs to one cache: another cache on the same thread never sees its entries.
    #[test]
    fn memos_do_not_leak_between_caches() {
        let (a, b) = (cache(), cache());
        a.insert("/org", false, 1);
        b.insert("/org", false, 2);
        for _ in 0..3 {
            assert_eq!((cell_of(a.lookup("/org/x")), cell_of(b.lookup("/org/x"))), (Some(1), Some(2)));
        }
        b.remove("/org", false);
        assert_eq!((cell_of(a.lookup("/org/x")), cell_of(b.lookup("/org/x"))), (Some(1), None));
    }

    #[test]
    fn expired_entries_are_stale_then_gone() {
        let c = RouteCache::new(100, Duration::from_millis(20), Duration::from_millis(200));
        c.insert("/a", false, 0);
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(c.lookup("/a/b"), Lookup::Stale(_)));
        std::thread::sleep(Duration::from_millis(250));
        assert!(matches!(c.lookup("/a/b"), Lookup::Miss));
    }
}
