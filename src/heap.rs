//! Heap-size accounting for `Classifier::memory_usage`: what the allocator holds for a value's
//! collections, counted from their capacities (checked against a counting allocator by
//! `tests/memory_usage.rs`). Standard collections' layouts are modelled, not measured: a
//! `BTreeMap` as one 11-entry leaf per 11 entries, a `HashMap` (hashbrown) as its power-of-two
//! bucket array with one control byte per bucket plus a 16-byte group.

use std::collections::BTreeMap;
use std::mem::size_of;

use crate::routes::{Requirement, RouteDef, Verbs};

/// Entries per B-tree node (std's `B = 6`, `CAPACITY = 2 * B - 1`).
const BTREE_NODE_ENTRIES: usize = 11;

pub(crate) fn vec<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

pub(crate) fn string(s: &String) -> usize {
    s.capacity()
}

/// The buckets hashbrown allocates for a map or set of `capacity` (its reported capacity).
fn hash_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        _ => (capacity * 8 / 7).next_power_of_two(),
    }
}

/// The table of a hash map with `capacity` and `(K, V)` entries (not what the entries own).
pub(crate) fn hash_table<K, V>(capacity: usize) -> usize {
    let buckets = hash_buckets(capacity);
    if buckets == 0 {
        return 0;
    }
    (buckets * size_of::<(K, V)>()).next_multiple_of(16) + buckets + 16
}

/// The nodes of a B-tree map (not what the entries own).
pub(crate) fn btree<K, V>(map: &BTreeMap<K, V>) -> usize {
    btree_nodes(map.len(), size_of::<K>() + size_of::<V>())
}

/// Leaves of 11 entries (about two thirds full once split), and for more than one leaf the
/// internal nodes with their child pointers.
fn btree_nodes(len: usize, entry: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let leaf = 2 * size_of::<usize>() + BTREE_NODE_ENTRIES * entry;
    let leaves = if len <= BTREE_NODE_ENTRIES { 1 } else { len.div_ceil(BTREE_NODE_ENTRIES * 2 / 3) };
    let internal = if leaves > 1 { leaves.div_ceil(BTREE_NODE_ENTRIES) * (leaf + (BTREE_NODE_ENTRIES + 1) * size_of::<usize>()) } else { 0 };
    leaves * leaf + internal
}

pub(crate) fn json(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => string(s),
        Value::Array(items) => vec(items) + items.iter().map(json).sum::<usize>(),
        Value::Object(map) => btree_nodes(map.len(), size_of::<String>() + size_of::<Value>()) + map.iter().map(|(k, v)| string(k) + json(v)).sum::<usize>(),
        _ => 0,
    }
}

/// What a route definition owns on the heap.
pub(crate) fn route_def(def: &RouteDef) -> usize {
    let requirements: usize = def
        .requirements
        .iter()
        .map(|(k, r)| {
            string(k)
                + match r {
                    Requirement::Regex { source, .. } => string(source),
                    Requirement::Literal { literal } => string(literal),
                }
        })
        .sum();
    let defaults: usize = def.defaults.iter().map(|(k, v)| string(k) + json(v)).sum();
    string(&def.verb) + string(&def.path) + def.name.as_ref().map_or(0, string) + btree(&def.requirements) + requirements + btree(&def.defaults) + defaults
}

pub(crate) fn verbs(verbs: &Verbs) -> usize {
    match verbs {
        Verbs::Any => 0,
        Verbs::Only(v) => vec(v) + v.iter().map(|m| m.len()).sum::<usize>(),
    }
}

/// A `regex_automata` pool before any value is taken from it: its boxed state, with the owner's
/// slot for one `T` inline and 8 cache-line-aligned stacks (values taken later are not counted).
pub(crate) fn pool<T, F>() -> usize {
    size_of::<F>() + 2 * size_of::<usize>() + size_of::<Option<T>>() + 3 * size_of::<usize>() + 8 * 64
}
