//! The three peers (matchit, wayfind, path-tree), each holding a route table as one router per
//! HTTP method, the way a framework built on them dispatches.
//!
//! Per method the routes that answer it are inserted in Rails' definition order (for HEAD, the
//! routes naming HEAD first, then those answering GET, as Journey does), every optional-group
//! variant of each; a variant whose shape an earlier route already holds is left to that earlier
//! route (Rails' first match), and a route with any variant the peer cannot express or refuses is
//! counted as not held. Mounted applications are never held (a peer has no cascade).

use std::collections::HashSet;

use cells_learn::{RouteDef, Verbs};

use crate::shapes::{self, Piece};

/// Which peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    Matchit,
    Wayfind,
    PathTree,
}

impl PeerKind {
    pub const ALL: [PeerKind; 3] = [PeerKind::Matchit, PeerKind::Wayfind, PeerKind::PathTree];

    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Matchit => "matchit",
            PeerKind::Wayfind => "wayfind",
            PeerKind::PathTree => "path-tree",
        }
    }

    fn render(self, shape: &[Piece]) -> Option<String> {
        match self {
            PeerKind::Matchit => shapes::matchit(shape),
            PeerKind::Wayfind => shapes::wayfind(shape),
            PeerKind::PathTree => shapes::path_tree(shape),
        }
    }
}

enum MethodRouter {
    Matchit(matchit::Router<usize>),
    Wayfind(wayfind::Router<usize>),
    PathTree(path_tree::PathTree<usize>),
}

enum Building {
    Matchit(matchit::Router<usize>),
    Wayfind(wayfind::RouterBuilder<usize>),
    PathTree(path_tree::PathTree<usize>),
}

impl Building {
    fn new(kind: PeerKind) -> Building {
        match kind {
            PeerKind::Matchit => Building::Matchit(matchit::Router::new()),
            PeerKind::Wayfind => Building::Wayfind(wayfind::RouterBuilder::new()),
            PeerKind::PathTree => Building::PathTree(path_tree::PathTree::new()),
        }
    }

    fn insert(&mut self, route: &str, value: usize) -> bool {
        match self {
            Building::Matchit(r) => r.insert(route, value).is_ok(),
            Building::Wayfind(r) => r.insert(route, value).is_ok(),
            Building::PathTree(r) => {
                let _route_id = r.insert(route, value);
                true
            }
        }
    }

    fn finish(self) -> MethodRouter {
        match self {
            Building::Matchit(r) => MethodRouter::Matchit(r),
            Building::Wayfind(r) => MethodRouter::Wayfind(r.build()),
            Building::PathTree(r) => MethodRouter::PathTree(r),
        }
    }
}

/// A route's shapes, one per optional-group variant, or why it has none.
type Variants = Result<Vec<Vec<Piece>>, String>;

/// One peer holding one table.
pub struct Peer {
    pub kind: PeerKind,
    methods: Vec<String>,
    routers: Vec<MethodRouter>,
    /// Routes the peer holds under every method they answer (of those the set's requests use).
    pub routes_held: usize,
    pub routes_total: usize,
}

impl Peer {
    /// Builds the peer for `defs` (in definition order) and the methods the requests use.
    pub fn build(kind: PeerKind, defs: &[RouteDef], methods: &[String]) -> Peer {
        let parsed: Vec<(Option<Verbs>, Variants)> = defs.iter().map(|d| (Verbs::parse(&d.verb), shapes::expand(&d.path))).collect();
        let mut unheld: HashSet<usize> = HashSet::new();
        let mut routers = Vec::with_capacity(methods.len());
        for method in methods {
            let mut building = Building::new(kind);
            let mut seen: HashSet<String> = HashSet::new();
            let naming_head = |v: &Verbs| method == "HEAD" && v.is_specific() && v.allows("HEAD");
            let passes: [&dyn Fn(&Verbs) -> bool; 2] = if method == "HEAD" {
                [&|v: &Verbs| naming_head(v), &|v: &Verbs| !naming_head(v) && v.allows("GET")]
            } else {
                [&|v: &Verbs| v.allows(method), &|_: &Verbs| false]
            };
            for pass in passes {
                for (index, (def, (verbs, variants))) in defs.iter().zip(&parsed).enumerate() {
                    let Some(verbs) = verbs else {
                        unheld.insert(index);
                        continue;
                    };
                    if !pass(verbs) {
                        continue;
                    }
                    let Ok(variants) = variants else {
                        unheld.insert(index);
                        continue;
                    };
                    if def.mounted {
                        unheld.insert(index);
                        continue;
                    }
                    for shape in variants {
                        if !seen.insert(shapes::conflict_key(shape)) {
                            continue;
                        }
                        let inserted = kind.render(shape).is_some_and(|route| building.insert(&route, index));
                        if !inserted {
                            unheld.insert(index);
                        }
                    }
                }
            }
            routers.push(building.finish());
        }
        Peer { kind, methods: methods.to_vec(), routers, routes_held: defs.len() - unheld.len(), routes_total: defs.len() }
    }

    #[inline]
    fn router(&self, method: &str) -> Option<&MethodRouter> {
        let i = self.methods.iter().position(|m| m == method)?;
        Some(&self.routers[i])
    }

    /// The route the peer picks (its value: the route's index).
    #[inline]
    pub fn route(&self, method: &str, path: &str) -> Option<usize> {
        match self.router(method)? {
            MethodRouter::Matchit(r) => r.at(path).ok().map(|m| *m.value),
            MethodRouter::Wayfind(r) => r.search(path).map(|m| *m.data()),
            MethodRouter::PathTree(r) => r.find(path).map(|(v, _)| *v),
        }
    }

    /// The route and its parameters as (name, value) pairs, sorted by name: what the agreement
    /// checks compare with the classifier's (`exercise` in main.rs).
    pub fn route_and_params(&self, method: &str, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        let owned = |(k, v): (&str, &str)| (k.to_string(), v.to_string());
        let (route, mut params): (usize, Vec<(String, String)>) = match self.router(method)? {
            MethodRouter::Matchit(r) => r.at(path).ok().map(|m| (*m.value, m.params.iter().map(owned).collect()))?,
            MethodRouter::Wayfind(r) => r.search(path).map(|m| (*m.data(), m.parameters().iter().map(|(k, v)| owned((k, v))).collect()))?,
            MethodRouter::PathTree(r) => r.find(path).map(|(v, p)| (*v, p.params_iter().map(owned).collect()))?,
        };
        params.sort();
        Some((route, params))
    }

    /// The route and its parameters, read as `&str` pairs (their total length returned so
    /// that the reads are not optimized away).
    #[inline]
    pub fn route_with_params(&self, method: &str, path: &str) -> Option<(usize, usize)> {
        match self.router(method)? {
            MethodRouter::Matchit(r) => r.at(path).ok().map(|m| (*m.value, m.params.iter().map(|(k, v)| k.len() + v.len()).sum())),
            MethodRouter::Wayfind(r) => r.search(path).map(|m| (*m.data(), m.parameters().iter().map(|(k, v)| k.len() + v.len()).sum())),
            MethodRouter::PathTree(r) => r.find(path).map(|(v, p)| (*v, p.params_iter().map(|(k, v)| k.len() + v.len()).sum())),
        }
    }
}
