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

use crate::matcher::ParamProgram;
use crate::ruby_regex::ast::{ByteSet, Node, RunSet};

/// Interns run sets: equal sets become one allocation. Indexed by the set's hash, so the
/// index holds no second copy of any set.
#[derive(Default)]
pub(crate) struct RunSets {
    by_hash: FxHashMap<u64, Vec<Arc<RunSet>>>,
    /// The shared sets by address: a route's regex holds its requirements' sets as `Arc`s made
    /// once per build, so every matcher after the first finds them here without hashing ~15 KiB.
    /// Only shared sets are keys, and the index keeps them alive: no address is reused.
    by_address: FxHashMap<usize, Arc<RunSet>>,
    /// Look-aheads already expanded into one run set (`(?!(admin|api|...)/)`: each reserved
    /// word followed by `/`), by their items; `None` when there were too many runs. GitLab CE's
    /// matchers expanded the same two look-aheads ~1,700 times.
    expansions: FxHashMap<Vec<RunKey>, Option<Arc<RunSet>>>,
    /// Parameters' own regexes compiled alone ([`crate::matcher::Matcher::confirm`]), by
    /// [`fingerprint`]: GitLab CE's 747 widened routes check two requirements between them.
    params: FxHashMap<u64, Vec<(Node, Arc<ParamProgram>)>>,
}

/// One item of an expanded look-ahead, as a memo key: a run set by its shared address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RunKey {
    Class(ByteSet),
    Seq(Vec<ByteSet>),
    Runs(usize),
}

impl RunSets {
    /// The shared copy of `set` (`set` itself the first time an equal set is seen).
    pub(crate) fn share(&mut self, set: &Arc<RunSet>) -> Arc<RunSet> {
        if let Some(shared) = self.by_address.get(&address(set)) {
            return Arc::clone(shared);
        }
        self.find(set).unwrap_or_else(|| self.insert(Arc::clone(set)))
    }

    /// [`RunSets::share`] for a set built on the spot.
    pub(crate) fn share_owned(&mut self, set: RunSet) -> Arc<RunSet> {
        self.find(&set).unwrap_or_else(|| self.insert(Arc::new(set)))
    }

    /// The shared run set spelling the sequence `items` (classes, runs and run sets), built by
    /// `expand` the first time these items are seen; `None` when `expand` found too many runs
    /// (or `items` holds another kind of node).
    pub(crate) fn expansion(&mut self, items: &[Node], expand: impl FnOnce(&[Node]) -> Option<RunSet>) -> Option<Arc<RunSet>> {
        let mut key = Vec::with_capacity(items.len());
        for item in items {
            key.push(match item {
                Node::Class(set) => RunKey::Class(*set),
                Node::Seq(sets) => RunKey::Seq(sets.clone()),
                Node::SeqAlt(set) => RunKey::Runs(address(&self.share(set))),
                _ => return None,
            });
        }
        if let Some(known) = self.expansions.get(&key) {
            return known.clone();
        }
        let expanded = expand(items).map(|set| self.share_owned(set));
        self.expansions.insert(key, expanded.clone());
        expanded
    }

    /// The shared program of a parameter's regex `node`, compiled by `compile` (with these run
    /// sets) the first time an equal regex is seen.
    pub(crate) fn param_program(&mut self, node: &Node, compile: impl FnOnce(&mut RunSets) -> ParamProgram) -> Arc<ParamProgram> {
        let key = fingerprint(node);
        if let Some((_, shared)) = self.params.get(&key).and_then(|known| known.iter().find(|(n, _)| same(n, node))) {
            return Arc::clone(shared);
        }
        let program = Arc::new(compile(self));
        self.params.entry(key).or_default().push((node.clone(), Arc::clone(&program)));
        program
    }

    fn find(&self, set: &RunSet) -> Option<Arc<RunSet>> {
        self.by_hash.get(&hash_of(set))?.iter().find(|shared| ***shared == *set).cloned()
    }

    fn insert(&mut self, shared: Arc<RunSet>) -> Arc<RunSet> {
        self.by_hash.entry(hash_of(&shared)).or_default().push(Arc::clone(&shared));
        self.by_address.insert(address(&shared), Arc::clone(&shared));
        shared
    }

    /// Heap bytes of the index (the sets themselves are counted through the matchers).
    pub(crate) fn heap_bytes(&self) -> usize {
        crate::heap::hash_table::<u64, Vec<Arc<RunSet>>>(self.by_hash.capacity())
            + self.by_hash.values().map(crate::heap::vec).sum::<usize>()
            + crate::heap::hash_table::<usize, Arc<RunSet>>(self.by_address.capacity())
            + crate::heap::hash_table::<Vec<RunKey>, Option<Arc<RunSet>>>(self.expansions.capacity())
            + self.expansions.keys().map(|key| crate::heap::vec(key) + key.iter().map(RunKey::heap_bytes).sum::<usize>()).sum::<usize>()
            + crate::heap::hash_table::<u64, Vec<(Node, Arc<ParamProgram>)>>(self.params.capacity())
            + self.params.values().map(|v| crate::heap::vec(v) + v.iter().map(|(n, _)| node_heap_bytes(n)).sum::<usize>()).sum::<usize>()
    }
}

impl std::fmt::Debug for RunSets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunSets({} shared)", self.by_hash.values().map(Vec::len).sum::<usize>())
    }
}

impl RunKey {
    fn heap_bytes(&self) -> usize {
        match self {
            RunKey::Seq(sets) => crate::heap::vec(sets),
            RunKey::Class(_) | RunKey::Runs(_) => 0,
        }
    }
}

/// An `Arc`'s address, as a key compared and never followed.
fn address(set: &Arc<RunSet>) -> usize {
    Arc::as_ptr(set) as usize
}

fn hash_of(set: &RunSet) -> u64 {
    let mut hasher = FxHasher::default();
    set.hash(&mut hasher);
    hasher.finish()
}

/// Heap bytes of a regex tree (its run sets are counted through the matchers that share them).
fn node_heap_bytes(node: &Node) -> usize {
    match node {
        Node::Empty | Node::Class(_) | Node::Assert(_) | Node::SeqAlt(_) => 0,
        Node::Seq(sets) => crate::heap::vec(sets),
        Node::Concat(v) | Node::Alt(v) => crate::heap::vec(v) + v.iter().map(node_heap_bytes).sum::<usize>(),
        Node::Repeat { node, .. } | Node::Atomic(node) | Node::Look { node, .. } | Node::Capture { node, .. } => size_of::<Node>() + node_heap_bytes(node),
    }
}

/// A parameter's regex hashed by its structure, a run set by its address (the regexes of one
/// requirement share theirs): cheap where hashing GitLab's ~15 KiB reserved-word sets is not.
fn fingerprint(node: &Node) -> u64 {
    fn add(node: &Node, h: &mut FxHasher) {
        std::mem::discriminant(node).hash(h);
        match node {
            Node::Empty => {}
            Node::Class(set) => set.hash(h),
            Node::Seq(sets) => sets.hash(h),
            Node::SeqAlt(set) => address(set).hash(h),
            Node::Assert(a) => a.hash(h),
            Node::Concat(v) | Node::Alt(v) => {
                v.len().hash(h);
                v.iter().for_each(|n| add(n, h));
            }
            Node::Repeat { node, min, max, greedy } => {
                (min, max, greedy).hash(h);
                add(node, h);
            }
            Node::Atomic(node) => add(node, h),
            Node::Look { behind, negate, node } => {
                (behind, negate).hash(h);
                add(node, h);
            }
            Node::Capture { slot, node } => {
                slot.hash(h);
                add(node, h);
            }
        }
    }
    let mut h = FxHasher::default();
    add(node, &mut h);
    h.finish()
}

/// Structural equality, a run set the same one when its address is (or, rarely, its content).
fn same(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::SeqAlt(x), Node::SeqAlt(y)) => Arc::ptr_eq(x, y) || x == y,
        (Node::Concat(x), Node::Concat(y)) | (Node::Alt(x), Node::Alt(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Node::Repeat { node: x, min: a1, max: a2, greedy: a3 }, Node::Repeat { node: y, min: b1, max: b2, greedy: b3 }) => {
            (a1, a2, a3) == (b1, b2, b3) && same(x, y)
        }
        (Node::Atomic(x), Node::Atomic(y)) => same(x, y),
        (Node::Look { behind: a1, negate: a2, node: x }, Node::Look { behind: b1, negate: b2, node: y }) => (a1, a2) == (b1, b2) && same(x, y),
        (Node::Capture { slot: a1, node: x }, Node::Capture { slot: b1, node: y }) => a1 == b1 && same(x, y),
        _ => a == b,
    }
}

/// Counts each shared allocation (run set, parameter program) once in heap accounting
/// (`Classifier::memory_usage`).
#[derive(Default)]
pub(crate) struct Counted(HashSet<usize>);

impl Counted {
    /// Heap bytes of `set`'s allocation (the `Arc` and what the set owns), or 0 when it was
    /// counted before.
    pub(crate) fn heap_bytes(&mut self, set: &Arc<RunSet>) -> usize {
        if !self.first_time(address(set)) {
            return 0;
        }
        2 * size_of::<usize>() + size_of::<RunSet>() + set.heap_bytes()
    }

    /// Whether the allocation at `address` is seen here for the first time.
    pub(crate) fn first_time(&mut self, address: usize) -> bool {
        self.0.insert(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> RunSet {
        RunSet::new(ws.iter().map(|w| w.bytes().map(ByteSet::single).collect()).collect())
    }

    #[test]
    fn equal_sets_share_one_allocation_and_are_counted_once() {
        let mut runs = RunSets::default();
        let a = runs.share(&Arc::new(words(&["admin", "api"])));
        let b = runs.share_owned(words(&["admin", "api"]));
        let c = runs.share(&Arc::new(words(&["admin"])));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        // The set itself, found again by address; an equal set in another allocation by content.
        let d = Arc::new(words(&["admin", "api"]));
        let shared = runs.share(&d);
        assert!(Arc::ptr_eq(&shared, &a) && !Arc::ptr_eq(&shared, &d));
        assert!(Arc::ptr_eq(&runs.share(&a), &a));
        assert_eq!(runs.by_address.len(), 2, "only shared sets are indexed by address");
        assert_eq!(*c, words(&["admin"]));
        let mut counted = Counted::default();
        assert!(counted.heap_bytes(&a) > 0);
        assert_eq!(counted.heap_bytes(&b), 0);
        assert!(counted.heap_bytes(&c) > 0);
    }

    #[test]
    fn look_ahead_expansions_are_built_once_per_distinct_items() {
        let mut runs = RunSets::default();
        let slash = Node::Class(ByteSet::single(b'/'));
        let items = [Node::SeqAlt(Arc::new(words(&["admin", "api"]))), slash.clone()];
        let mut built = 0;
        let mut expand = |items: &[Node]| {
            built += 1;
            assert_eq!(items.len(), 2);
            Some(words(&["admin/", "api/"]))
        };
        let first = runs.expansion(&items, &mut expand).unwrap();
        // The same words in another allocation are the same key once shared.
        let again = [Node::SeqAlt(Arc::new(words(&["admin", "api"]))), slash.clone()];
        let second = runs.expansion(&again, &mut expand).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(built, 1);
        assert_eq!(*first, words(&["admin/", "api/"]));
        // Other items are expanded anew; a refusal (too many runs) is remembered too.
        assert!(runs.expansion(std::slice::from_ref(&slash), |_| None).is_none());
        assert!(runs.expansion(std::slice::from_ref(&slash), |_| unreachable!("remembered")).is_none());
        assert!(runs.expansion(&[Node::Empty], |_| unreachable!("not a run")).is_none());
    }
}
