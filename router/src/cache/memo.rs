//! Cache hits without shared writes: each worker thread's memo of the fresh entries it found.
//!
//! Why: a moka `get` writes shared memory on every hit — the entry's access time, moka's and the
//! value's reference counts, its read-log channel — and the router runs one worker thread per
//! core, so for a popular route every core writes the same cache lines: each hit waits for those
//! lines to come over from the other core. Profiled on a cached route under load, this was most
//! of what the router spent above the hyper floor (the README's figures).
//!
//! How: a small direct-mapped table per thread maps a cache key to the cache's entry and this
//! thread's own copy of it. A hit reads two words that are written only when entries go away
//! (the entry's `retired` flag, the cache's purge count: both cores keep those lines shared) and
//! hands out the copy, whose reference count no other thread touches. Only fresh entries of the
//! newest route table are served from the memo: a stale entry carries revalidation state every
//! thread must see, and goes through moka. One memo hit in [`SAMPLE`] also goes through moka's
//! `get`, so its TinyLFU policy still sees which routes are popular (a flood of one-off paths must
//! not evict them).
//!
//! What makes a memoized entry go: its replacement or removal in the cache (`retired`, set under
//! the key's lock before the new entry is visible), a purge or a cell's removal (the purge count: every
//! thread's memo starts over), its freshness running out (checked on each hit), a newer route
//! table (checked on each hit), a collision in the table. An entry moka evicts for room stays
//! usable here until one of those: it is a trusted, fresh answer.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::{Entry, RouteCache};

/// Slots per thread (a power of two). A slot holds two `Arc`s; a thread's table is 4 KiB.
const SLOTS: usize = 256;

/// One memo hit in this many is also a moka `get` (popularity for TinyLFU).
pub(super) const SAMPLE: u32 = 16;

/// Which cache instance a memo belongs to (tests run several routers on one thread).
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

pub(super) fn new_cache_id() -> u64 {
    NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed)
}

struct Slot {
    /// The cache's entry: its `retired` flag says whether it is still the cache's.
    shared: Arc<Entry>,
    /// This thread's copy, handed out on hits.
    local: Arc<Entry>,
}

impl Slot {
    /// True when this slot holds the entry stored under `key` (`=` or `>`, then the path).
    fn holds(&self, key: &str) -> bool {
        let (marker, path) = key.split_at(1);
        marker == if self.shared.exact { "=" } else { ">" } && path == self.shared.path
    }
}

struct Memo {
    /// The cache (id) and purge count the slots were filled under.
    cache: u64,
    epoch: u64,
    slots: Vec<Option<Slot>>,
    hits: u32,
}

impl Memo {
    /// Empties the table when it was filled for another cache or before a purge.
    fn claim(&mut self, cache: u64, epoch: u64) {
        if (self.cache, self.epoch) != (cache, epoch) {
            self.slots.iter_mut().for_each(|s| *s = None);
            (self.cache, self.epoch) = (cache, epoch);
        }
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo { cache: 0, epoch: 0, slots: (0..SLOTS).map(|_| None).collect(), hits: 0 });
}

/// The slot of a key, by rustc's FxHash (eight bytes per step, not one as FNV). Collisions only
/// cost a moka `get`, so no keyed hash is needed.
fn slot_of(key: &str) -> usize {
    (rustc_hash::FxBuildHasher.hash_one(key) as usize) & (SLOTS - 1)
}

/// True when `e` may be served from a memo: fresh, of the newest table, still the cache's.
fn servable(cache: &RouteCache, e: &Entry, now: Instant) -> bool {
    e.is_fresh(now) && !cache.outdated(e)
}

/// The entry stored under `key`, as `cache.inner.get(key)` would find it (see the module
/// documentation for when it comes from this thread's memo instead).
pub(super) fn get(cache: &RouteCache, key: &str, now: Instant) -> Option<Arc<Entry>> {
    let slot = slot_of(key);
    let epoch = cache.purges.load(Ordering::Acquire);
    let memoized = MEMO.with(|m| {
        let mut m = m.borrow_mut();
        m.claim(cache.id, epoch);
        let s = m.slots[slot].as_ref().filter(|s| s.holds(key) && !s.shared.is_retired() && servable(cache, &s.local, now))?;
        let local = s.local.clone();
        m.hits = m.hits.wrapping_add(1);
        Some((local, m.hits % SAMPLE == 0))
    });
    if let Some((local, sample)) = memoized {
        if sample {
            let _ = cache.inner.get(key);
        }
        return Some(local);
    }
    let e = cache.inner.get(key)?;
    if servable(cache, &e, now) && !e.is_retired() {
        let local = Arc::new(e.copy());
        MEMO.with(|m| {
            let mut m = m.borrow_mut();
            m.claim(cache.id, epoch);
            m.slots[slot] = Some(Slot { shared: e.clone(), local });
        });
    }
    Some(e)
}
