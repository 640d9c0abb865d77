//! Mixed versions: which route table each cell runs, and which one is the newest.
//!
//! During a deploy, cells run different route tables: a route only the new code has is
//! "unknown" (a default answer) to an old cell, and a path may change class between the two
//! (routable in the old table, fixed in the new). Each learn answer carries the answering
//! cell's table, `"routes_digest"` (which table: the gem's artifact digest) and
//! `"routes_version"` (which is newer: a digest alone has no order; the deploy gives the version,
//! its build time or pipeline number). Cells also report both in their health answer
//! (`X-Gitlab-Cell-Routes-Version`, `X-Gitlab-Cell-Routes-Digest` on `breaker.probe_path`),
//! which the router reads at start and every `breaker.table_refresh`, so it knows the fleet's
//! tables before its first learn request.
//!
//! What the router does with them:
//! - learn requests go to the cells of the newest table first (healthy cells first as before,
//!   then cells whose table is not known yet, so their table gets known, then by version, newest
//!   first; random among equals);
//! - every cache entry keeps the version of the table it was learned from, in memory and in
//!   Redis; an answer from an older table never replaces a fresh entry learned from a newer one,
//!   and an entry learned from an older table is replaced by a newer answer;
//! - a shared-cache entry learned from an older table than the newest the router knows is not
//!   used: the path is learned again (from a newest-table cell), which upgrades the entry for
//!   the whole fleet;
//! - a memory entry learned from an older table than the newest the router knows counts as
//!   stale: the next request for it learns again (from a newest-table cell). The cache reads the
//!   newest version from [`RouteTables::newest_handle`], one relaxed load per hit.
//!
//! An answer without a version (an older gem) counts as version 0: below every versioned table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::HeaderMap;

use crate::State;

/// The health answer's headers (lower case, as `http` stores them).
pub const VERSION_HEADER: &str = "x-gitlab-cell-routes-version";
pub const DIGEST_HEADER: &str = "x-gitlab-cell-routes-digest";

/// A cell whose table nothing has told yet.
const UNKNOWN: u64 = u64::MAX;

/// Every cell's route table as last reported.
pub struct RouteTables {
    versions: Vec<AtomicU64>,
    digests: Mutex<Vec<Option<String>>>,
    /// The newest version any cell reported (0: none), kept up to date by [`RouteTables::observe`]
    /// rather than computed per read: the route cache compares every hit against it.
    newest: Arc<AtomicU64>,
}

impl RouteTables {
    pub fn new(cells: usize) -> RouteTables {
        RouteTables {
            versions: (0..cells).map(|_| AtomicU64::new(UNKNOWN)).collect(),
            digests: Mutex::new(vec![None; cells]),
            newest: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The newest version, shared: what [`crate::cache::RouteCache::following`] reads on each hit.
    pub fn newest_handle(&self) -> Arc<AtomicU64> {
        self.newest.clone()
    }

    /// `cell` reported its table (a learn answer or its health answer); no version is 0.
    pub fn observe(&self, cell: usize, version: Option<u64>, digest: Option<&str>) {
        let version = version.unwrap_or(0).min(UNKNOWN - 1);
        let was = self.versions[cell].swap(version, Ordering::Relaxed);
        let mut digests = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        // Recomputed under the lock, so concurrent reports cannot leave an older maximum behind;
        // a cell that went back (a rollback) lowers it again.
        let newest = self.versions.iter().map(|v| v.load(Ordering::Relaxed)).filter(|&v| v != UNKNOWN).max().unwrap_or(0);
        self.newest.store(newest, Ordering::Relaxed);
        if was != version || digests[cell].as_deref() != digest {
            tracing::info!(cell, version, digest = digest.unwrap_or("-"), "cell route table");
            digests[cell] = digest.map(str::to_string);
        }
    }

    /// Reads a health answer's headers; a health answer without a version header tells nothing
    /// (the health path may be served by something that does not know the routes).
    pub fn observe_headers(&self, cell: usize, headers: &HeaderMap) {
        let Some(version) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()) else {
            return;
        };
        let digest = headers.get(DIGEST_HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
        self.observe(cell, Some(version), digest);
    }

    /// The version of `cell`'s table, None while unknown.
    pub fn version(&self, cell: usize) -> Option<u64> {
        Some(self.versions[cell].load(Ordering::Relaxed)).filter(|&v| v != UNKNOWN)
    }

    /// The table version an entry taught by `cell` (a cache header, a 421) is tagged with.
    pub fn table_of(&self, cell: usize) -> u64 {
        self.version(cell).unwrap_or(0)
    }

    /// The newest table any cell reported (0: none).
    pub fn newest(&self) -> u64 {
        self.newest.load(Ordering::Relaxed)
    }

    /// Reorders a learn order: `up` cells first (as given), then unknown tables, then newest
    /// first. The sort is stable, so the random order among equals is kept.
    pub fn rank(&self, order: &mut [usize], up: impl Fn(usize) -> bool) {
        order.sort_by_key(|&c| (!up(c), std::cmp::Reverse(self.versions[c].load(Ordering::Relaxed))));
    }
}

/// Reads every cell's health answer for its route table, at start and then every
/// `breaker.table_refresh` (zero: once). Only with the HTTP probe; failures are the breaker's
/// business and are ignored here.
pub async fn refresh(st: Arc<State>) {
    if !matches!(st.cfg.probe, crate::breaker::Probe::Http(_)) {
        return;
    }
    loop {
        for cell in 0..st.cfg.cells.len() {
            crate::breaker::read_health(&st, cell).await;
        }
        if st.cfg.table_refresh.is_zero() {
            return;
        }
        tokio::time::sleep(st.cfg.table_refresh).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_order_is_up_then_unknown_then_newest() {
        let t = RouteTables::new(5);
        t.observe(0, Some(1), Some("aa"));
        t.observe(1, Some(2), Some("bb"));
        t.observe(2, None, None);
        t.observe(4, Some(2), Some("bb"));
        let mut order = vec![0, 1, 2, 3, 4];
        t.rank(&mut order, |c| c != 4);
        assert_eq!(order, vec![3, 1, 0, 2, 4]);
        assert_eq!(t.newest(), 2);
        assert_eq!((t.version(3), t.table_of(3), t.version(2)), (None, 0, Some(0)));
    }

    #[test]
    fn the_newest_version_follows_every_report_rollbacks_included() {
        let t = RouteTables::new(3);
        let handle = t.newest_handle();
        assert_eq!(t.newest(), 0);
        t.observe(0, Some(3), None);
        t.observe(1, Some(5), None);
        assert_eq!((t.newest(), handle.load(Ordering::Relaxed)), (5, 5));
        t.observe(2, None, None);
        assert_eq!(t.newest(), 5, "an unversioned cell ranks below");
        t.observe(1, Some(4), None);
        assert_eq!(handle.load(Ordering::Relaxed), 4, "the only cell of version 5 went back to 4");
    }

    #[test]
    fn health_headers_without_a_version_tell_nothing() {
        let t = RouteTables::new(1);
        let mut h = HeaderMap::new();
        h.insert(DIGEST_HEADER, "ff".parse().unwrap());
        t.observe_headers(0, &h);
        assert_eq!(t.version(0), None);
        h.insert(VERSION_HEADER, " 42 ".parse().unwrap());
        t.observe_headers(0, &h);
        assert_eq!(t.version(0), Some(42));
        h.insert(VERSION_HEADER, "-1".parse().unwrap());
        t.observe_headers(0, &h);
        assert_eq!(t.version(0), Some(42), "a malformed version is ignored");
    }
}
