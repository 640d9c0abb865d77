//! Literal-run sets shared between the exact matchers of one classifier.
//!
//! GitLab's path requirements carry long reserved-word look-aheads
//! (`(?!((?i-mx:\-|\.well\-known|404\.html|...|admin|api|...))/)`, ~780 characters for
//! `namespace_id`, ~660 for `project_id`) that every `/*namespace_id/:project_id/...` route
//! repeats. Each compiles to a [`RunSet`] of one 32-byte class per character: ~15 KiB apiece.
//! Built once per route they were 33 of the 37 MiB GitLab CE's 1,341 routes retained; the
//! matchers of one classifier share one copy of each distinct set instead, whether they are
//! compiled with it or later, on first use, after a load from an artifact.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};

use crate::ruby_regex::ast::RunSet;

/// Interns run sets: equal sets become one allocation. Indexed by the set's hash, so the
/// index holds no second copy of any set.
#[derive(Default)]
pub(crate) struct RunSets(FxHashMap<u64, Vec<Arc<RunSet>>>);

impl RunSets {
    /// The shared copy of `set` (cloned the first time it is seen).
    pub(crate) fn share(&mut self, set: &RunSet) -> Arc<RunSet> {
        self.find(set).unwrap_or_else(|| self.insert(set.clone()))
    }

    /// [`RunSets::share`] for a set built on the spot.
    pub(crate) fn share_owned(&mut self, set: RunSet) -> Arc<RunSet> {
        self.find(&set).unwrap_or_else(|| self.insert(set))
    }

    fn find(&self, set: &RunSet) -> Option<Arc<RunSet>> {
        self.0.get(&hash_of(set))?.iter().find(|shared| ***shared == *set).cloned()
    }

    fn insert(&mut self, set: RunSet) -> Arc<RunSet> {
        let shared = Arc::new(set);
        self.0.entry(hash_of(&shared)).or_default().push(Arc::clone(&shared));
        shared
    }

    /// Heap bytes of the index (the sets themselves are counted through the matchers).
    pub(crate) fn heap_bytes(&self) -> usize {
        crate::heap::hash_table::<u64, Vec<Arc<RunSet>>>(self.0.capacity()) + self.0.values().map(crate::heap::vec).sum::<usize>()
    }
}

impl std::fmt::Debug for RunSets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunSets({} shared)", self.0.values().map(Vec::len).sum::<usize>())
    }
}

fn hash_of(set: &RunSet) -> u64 {
    let mut hasher = FxHasher::default();
    set.hash(&mut hasher);
    hasher.finish()
}

/// Counts each shared run set once in heap accounting (`Classifier::memory_usage`).
#[derive(Default)]
pub(crate) struct Counted(HashSet<*const RunSet>);

impl Counted {
    /// Heap bytes of `set`'s allocation (the `Arc` and what the set owns), or 0 when it was
    /// counted before.
    pub(crate) fn heap_bytes(&mut self, set: &Arc<RunSet>) -> usize {
        if !self.0.insert(Arc::as_ptr(set)) {
            return 0;
        }
        2 * size_of::<usize>() + size_of::<RunSet>() + set.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruby_regex::ast::ByteSet;

    fn words(ws: &[&str]) -> RunSet {
        RunSet::new(ws.iter().map(|w| w.bytes().map(ByteSet::single).collect()).collect())
    }

    #[test]
    fn equal_sets_share_one_allocation_and_are_counted_once() {
        let mut runs = RunSets::default();
        let a = runs.share(&words(&["admin", "api"]));
        let b = runs.share_owned(words(&["admin", "api"]));
        let c = runs.share(&words(&["admin"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, words(&["admin"]));
        let mut counted = Counted::default();
        assert!(counted.heap_bytes(&a) > 0);
        assert_eq!(counted.heap_bytes(&b), 0);
        assert!(counted.heap_bytes(&c) > 0);
    }
}
