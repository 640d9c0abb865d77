//! Large tables: each route matched around its key segment, a literal every path it matches
//! contains (`issues` in `/*namespace_id/:project_id/-/issues(.:format)`).
//!
//! Why not one forward automaton per group of keyed routes: a path then walks, from its first
//! byte, every automaton its segments select, over states that track hundreds of glob-led
//! patterns at once. Cycling through GitLab's templates those states fall out of the CPU
//! caches (measured: 1.5 µs for a path's candidates across 3.6 automata). Split at its key, a
//! route's regex is `prefix · key · suffix`; GitLab's 5,066 templates have 954 distinct
//! prefixes (`\A/(?:.+?)/[^/.?]+/-/` alone stands for 218 routes) and 522 distinct suffixes
//! (`(?:\.[^/.?]+)?\n?\z` for 3,033). All prefixes go into one reverse DFA, searched backwards
//! from where a key segment starts, and all suffixes into one forward DFA, searched from where
//! it ends: two small automata that every path shares, so they stay hot, and whose states are
//! small because literals near the key tell the prefixes apart within a few bytes.
//!
//! A route matches iff, at some occurrence of its key as a whole segment after a `/`, its
//! prefix matches the path up to the key and its suffix matches the rest: the key literal sits
//! between a `/` and a `/`, `.`, newline or the end in every path the route matches (see the
//! classifier's `literal_segments`), so every split the route's regex can make is such an
//! occurrence.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use crate::engine::{Direction, Engine, EngineConfig};

/// A route's regex split at its key segment, as DFA patterns.
pub(crate) struct SplitRoute {
    pub route: u32,
    pub key: String,
    /// The pattern for the path before the key (from `\A` to the `/` before it).
    pub prefix: String,
    /// The pattern for the path after the key (to the end anchor).
    pub suffix: String,
}

/// A keyed route with the ids of its prefix and suffix patterns.
#[derive(Clone, Copy, Debug)]
struct KeyedRoute {
    route: u32,
    prefix: u32,
    suffix: u32,
}

/// The automata and key index for routes matched around their key.
pub(crate) struct AroundKey {
    /// Reverse DFA over every distinct prefix.
    prefixes: Engine,
    /// Forward DFA over every distinct suffix.
    suffixes: Engine,
    /// Key segment → its routes, ascending. FxHash: the keys come from the route table.
    keys: FxHashMap<Box<[u8]>, Box<[KeyedRoute]>>,
}

impl std::fmt::Debug for AroundKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AroundKey({} keys, {} prefixes, {} suffixes)", self.keys.len(), self.prefixes.pattern_len(), self.suffixes.pattern_len())
    }
}

/// Interns pattern texts as ids.
#[derive(Default)]
struct Patterns {
    texts: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Patterns {
    fn id(&mut self, text: String) -> u32 {
        let next = self.texts.len() as u32;
        *self.ids.entry(text).or_insert_with_key(|t| {
            self.texts.push(t.clone());
            next
        })
    }
}

impl AroundKey {
    pub fn build(routes: Vec<SplitRoute>, config: &EngineConfig) -> Result<AroundKey, String> {
        let mut prefixes = Patterns::default();
        let mut suffixes = Patterns::default();
        let mut keys: HashMap<String, Vec<KeyedRoute>> = HashMap::new();
        for r in routes {
            let keyed = KeyedRoute { route: r.route, prefix: prefixes.id(r.prefix), suffix: suffixes.id(r.suffix) };
            keys.entry(r.key).or_default().push(keyed);
        }
        let keys = keys
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_by_key(|r| r.route);
                (k.into_bytes().into_boxed_slice(), v.into_boxed_slice())
            })
            .collect();
        Ok(AroundKey {
            // Its states hold every prefix still alive (up to ~900 on GitLab's templates): cycling
            // through their examples it settles at ~10 MiB, and at the default 8 MiB it would
            // clear and rebuild its cache ~450 times a pass (8 µs per path instead of 0.9 µs).
            prefixes: Engine::build_lazy_unchunked(
                &prefixes.texts,
                &EngineConfig { lazy_cache_capacity: config.lazy_cache_capacity.saturating_mul(4), ..*config },
                Direction::Reverse,
            )?,
            suffixes: Engine::build_lazy_unchunked(&suffixes.texts, config, Direction::Forward)?,
            keys,
        })
    }

    /// Calls `found` with every keyed route that matches `path` (a route can be reported once
    /// per occurrence of its key).
    pub fn for_each_match(&self, path: &[u8], mut found: impl FnMut(u32)) -> Result<(), String> {
        let mut prefixes = IdSet::new(self.prefixes.pattern_len());
        let mut suffixes = IdSet::new(self.suffixes.pattern_len());
        for (start, end) in key_segments(path) {
            let Some(routes) = self.keys.get(&path[start..end]) else { continue };
            prefixes.clear();
            self.prefixes.for_each_prefix_match(path, start, |p| prefixes.push(p))?;
            if !routes.iter().any(|r| prefixes.contains(r.prefix)) {
                continue;
            }
            suffixes.clear();
            self.suffixes.for_each_suffix_match(path, end, |s| suffixes.push(s))?;
            for r in routes.iter() {
                if prefixes.contains(r.prefix) && suffixes.contains(r.suffix) {
                    found(r.route);
                }
            }
        }
        Ok(())
    }

    pub fn pattern_count(&self) -> usize {
        self.prefixes.pattern_len() + self.suffixes.pattern_len()
    }

    pub fn memory_usage(&self) -> usize {
        let index: usize = self.keys.iter().map(|(k, v)| k.len() + v.len() * std::mem::size_of::<KeyedRoute>() + 48).sum();
        self.prefixes.memory_usage() + self.suffixes.memory_usage() + index
    }
}

/// The segments of a normalized path that a key can be: preceded by `/`, ending at the next
/// `/`, `.`, newline or the end, as `(start, end)` byte offsets.
fn key_segments(path: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < path.len() {
            let slash = at + path[at..].iter().position(|&b| b == b'/')?;
            let start = slash + 1;
            let end = start + path[start..].iter().position(|&b| matches!(b, b'/' | b'.' | b'\n')).unwrap_or(path.len() - start);
            at = end;
            if end > start {
                return Some((start, end));
            }
        }
        None
    })
}

/// Pattern ids found by one search: a bit per pattern, on the stack for up to 1,024 patterns.
struct IdSet {
    inline: [u64; 16],
    heap: Vec<u64>,
    words: usize,
}

impl IdSet {
    fn new(patterns: usize) -> Self {
        let words = patterns.div_ceil(64);
        let heap = if words > 16 { vec![0; words] } else { Vec::new() };
        IdSet { inline: [0; 16], heap, words }
    }

    fn bits(&mut self) -> &mut [u64] {
        if self.heap.is_empty() { &mut self.inline[..self.words] } else { &mut self.heap }
    }

    fn clear(&mut self) {
        self.bits().fill(0);
    }

    #[inline]
    fn push(&mut self, id: u32) {
        self.bits()[id as usize / 64] |= 1 << (id % 64);
    }

    #[inline]
    fn contains(&self, id: u32) -> bool {
        let bits = if self.heap.is_empty() { &self.inline[..self.words] } else { &self.heap[..] };
        bits[id as usize / 64] & (1 << (id % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_segments_follow_slashes_only() {
        fn segs(p: &str) -> Vec<&str> {
            key_segments(p.as_bytes()).map(|(s, e)| &p[s..e]).collect()
        }
        assert_eq!(segs("/a/b/-/issues.json"), ["a", "b", "-", "issues"]);
        assert_eq!(segs("/a.b/c\n"), ["a", "c"]);
        assert_eq!(segs("/"), Vec::<&str>::new());
        assert_eq!(segs("//x//"), ["x"]);
        assert_eq!(segs("/x.y.z/w"), ["x", "w"]);
    }

    #[test]
    fn routes_match_around_any_occurrence_of_their_key() {
        let glob = r"(?-u)\A/(?:(?s-u:.+?))/(?:[^/.?]+)/-/";
        let format = r"(?-u)(?:\.(?:[^/.?]+))?\n?\z";
        let routes = vec![
            SplitRoute { route: 0, key: "issues".into(), prefix: glob.into(), suffix: format.into() },
            SplitRoute { route: 1, key: "issues".into(), prefix: glob.into(), suffix: r"(?-u)/(?:[^/.?]+)\n?\z".into() },
            SplitRoute { route: 2, key: "edit".into(), prefix: r"(?-u)\A/groups/(?:(?s-u:.+?))/-/".into(), suffix: r"(?-u)\n?\z".into() },
        ];
        let index = AroundKey::build(routes, &EngineConfig::default()).unwrap();
        let found = |p: &str| {
            let mut v = Vec::new();
            index.for_each_match(p.as_bytes(), |r| v.push(r)).unwrap();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(found("/a/b/-/issues"), [0]);
        assert_eq!(found("/a/b/-/issues.json"), [0]);
        assert_eq!(found("/a/issues/-/issues/5"), [1]);
        assert_eq!(found("/issues/b/-/issues/issues"), [1]);
        assert_eq!(found("/a/b/-/issuesx"), Vec::<u32>::new());
        assert_eq!(found("/groups/x/y/-/edit"), [2]);
        assert_eq!(found("/groups/x/y/-/edit\n"), [2]);
        assert_eq!(found("/groupsx/y/-/edit"), Vec::<u32>::new());
    }
}
