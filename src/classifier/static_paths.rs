//! The candidate routes of the table's own literal paths, found once and then looked up.
//!
//! Why: path routers answer a static path (`/users/sign_in`, `/-/profile`, `/admin/runners`)
//! with one lookup in a radix tree; the classifier walked one to three automata over it, sorted
//! and deduplicated what they proposed, every time (about 2,400 instructions for
//! `/admin/application_settings` on the corpus table, where wayfind takes ~22 ns). Rails'
//! order still has to be kept — a glob route defined earlier may take the path, and a route
//! may ask the host — so what is kept is not an answer but the search's own result: the
//! candidate routes the automata propose for the path ([`Classifier::candidates`]), every one,
//! ascending. That list is a function of the path alone, so a request for the path then visits
//! the same candidates in the same order as a search would (the verb filter, the exact matcher
//! for the routes the DFA widened, the host's constraints all still run on it), without the
//! walks.
//!
//! The keys are the paths of the routes whose spec is literal once its optional groups are
//! left out (`/admin/application_settings(.:format)` gives `/admin/application_settings`):
//! a closed set the route table fixes, never grown by requests. Each list is searched on the
//! first request for its path, not at build time, so building walks no automaton (and fills no
//! lazy DFA cache) for paths nobody asks for; the lists are shared by every thread.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use super::CompiledRoute;
use crate::heap;
use crate::journey::{parse_spec, SpecNode};
use crate::normalize::normalize_path;

/// The table's literal paths and, once searched, their candidate routes.
#[derive(Debug, Default)]
pub(crate) struct StaticPaths {
    lists: FxHashMap<Box<[u8]>, OnceLock<Box<[u32]>>>,
}

impl StaticPaths {
    /// The literal paths of `routes` (see the module doc), each once.
    pub fn of(routes: &[CompiledRoute]) -> StaticPaths {
        let mut lists = FxHashMap::default();
        for route in routes {
            let Some(path) = literal_path(&route.def.path) else { continue };
            // A key must be a path as the query side sees it: already normalized.
            if normalize_path(path.as_bytes()).as_ref() != path.as_bytes() {
                continue;
            }
            lists.entry(path.into_bytes().into_boxed_slice()).or_insert_with(OnceLock::new);
        }
        lists.shrink_to_fit();
        StaticPaths { lists }
    }

    /// The candidates of `path` when it is one of the literal paths: found by `search` on the
    /// first request for it (an error is returned and nothing kept), then read back.
    #[inline]
    pub fn candidates<E>(&self, path: &[u8], search: impl FnOnce() -> Result<Box<[u32]>, E>) -> Result<Option<&[u32]>, E> {
        let Some(cell) = self.lists.get(path) else { return Ok(None) };
        if let Some(list) = cell.get() {
            return Ok(Some(list));
        }
        let list = search()?;
        // Another thread may have set it meanwhile: the same list, a function of the path.
        Ok(Some(cell.get_or_init(|| list)))
    }

    /// The literal paths.
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.lists.keys().map(|k| &k[..])
    }

    /// How many literal paths there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Heap bytes: the table, its keys and the lists searched so far.
    pub fn memory_usage(&self) -> usize {
        heap::hash_table::<Box<[u8]>, OnceLock<Box<[u32]>>>(self.lists.capacity())
            + self.lists.iter().map(|(path, list)| path.len() + list.get().map_or(0, |l| std::mem::size_of_val::<[u32]>(l))).sum::<usize>()
    }
}

/// The one path a spec matches with every optional group left out, when it has no parameter
/// or glob outside them (`/-/profile(.:format)` → `/-/profile`); `None` otherwise.
fn literal_path(spec: &str) -> Option<String> {
    // Most specs have a parameter outside any group: seen in one pass over the bytes, without
    // parsing (parsing every spec again was ~3 ms of the template snapshot's ~45 ms build).
    // A `(` the pass miscounts (an escaped one) only sends the spec on to the parser.
    let mut depth = 0usize;
    for b in spec.bytes() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b':' | b'*' | b'|' if depth == 0 => return None,
            _ => {}
        }
    }
    let nodes = parse_spec(spec).ok()?;
    let mut out = String::new();
    for node in &nodes {
        match node {
            SpecNode::Slash => out.push('/'),
            SpecNode::Dot => out.push('.'),
            SpecNode::Literal(text) => out.push_str(text),
            SpecNode::Group(_) => {}
            SpecNode::Symbol(_) | SpecNode::Star(_) | SpecNode::Or(_) => return None,
        }
    }
    out.starts_with('/').then_some(out)
}

#[cfg(test)]
mod tests {
    use super::literal_path;
    use crate::{Classifier, RouteDef};

    #[test]
    fn keys_are_the_normal_literal_paths_each_once() {
        let c = Classifier::new(vec![
            RouteDef::new("GET", "/-/profile(.:format)"),
            RouteDef::new("POST", "/-/profile"),
            RouteDef::new("GET", "/users/:id"),
            RouteDef::new("GET", "/"),
            RouteDef::new("GET", "/a(/b)"),
            // Not normal (a trailing `/`): no request path is ever this.
            RouteDef::new("GET", "/b/"),
        ])
        .unwrap();
        assert_eq!(c.static_paths.len(), 3);
        let before = c.static_paths.memory_usage();
        assert_eq!(c.recognize("GET", b"/-/profile/").unwrap().map(|m| m.route_index()), Some(0));
        assert_eq!(c.recognize("POST", b"/-/profile").unwrap().map(|m| m.route_index()), Some(1));
        // Two candidates kept (two u32s), read back on the second request.
        assert_eq!(c.static_paths.memory_usage(), before + 8);
    }

    #[test]
    fn literal_paths_leave_optional_groups_out() {
        assert_eq!(literal_path("/-/profile(.:format)").as_deref(), Some("/-/profile"));
        assert_eq!(literal_path("/").as_deref(), Some("/"));
        assert_eq!(literal_path("/robots.txt").as_deref(), Some("/robots.txt"));
        assert_eq!(literal_path("/-/jira(/*rest)").as_deref(), Some("/-/jira"));
        assert_eq!(literal_path("/users/:id"), None);
        assert_eq!(literal_path("/*namespace_id/:project_id"), None);
        assert_eq!(literal_path("/a|/b"), None);
        assert_eq!(literal_path("relative"), None);
    }
}
