//! The first routes of the automata every path searches, checked on their own first.
//!
//! A first-match search runs the automata without a key (the routes with no literal segment
//! to key them) over every path they are not kept from, because any of their routes could
//! come first. On GitLab CE their first routes are `GET|PATCH|PUT|DELETE /*id(.:format)`
//! (#338–#341), which match nearly every path and answer every GET whose first segment leads
//! no earlier route (the host decides their group constraint, see `Bound::Likely`): six in
//! ten recorded requests. Yet the walk over all 21 routes without a key read the whole path one
//! dependent transition after another (~7 cycles a byte, ~350 of a median request's ~700),
//! only to find #338 again.
//!
//! So the patterns of those automata, in the order of their first routes, up to those that the
//! DFA decides alone and that take GET, POST, PUT, PATCH and DELETE (CE: `/*id(.:format)` for
//! all but POST, the API's mount at `/` for POST), get a small dense DFA of their own,
//! minimized so that a state most bytes loop on is one state, which regex-automata
//! *accelerates*: the bytes that leave it are found with `memchr` (after `/x`, CE's leading
//! routes wait for a newline, which paths do not have). When one of those routes matches, takes the method
//! and comes before every other route of the automata without a key, the search stops there as
//! it would after the full walk; the full walk still runs when the host turns that route down
//! (for the routes after it), and at once for a method none of them takes.

use super::build::{route_node, RequirementCache};
use super::route_bits::{Method, RouteBits};
use super::{Automaton, CompiledRoute};
use crate::engine::Engine;
use crate::error::SearchError;
use crate::inline_vec::InlineVec;

/// Bytes their DFA may take; past it (patterns no small DFA can hold) there are no leading routes.
const LEADING_DFA_LIMIT: usize = 256 << 10;

/// At most this many patterns lead (more would cost what the full walk does).
const MAX_LEADING_PATTERNS: usize = 8;

/// The methods a leading pattern is looked for to answer, GET first.
const COMMON_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The first routes of the automata without a key, and their DFA.
#[derive(Debug)]
pub(crate) struct LeadingRoutes {
    /// A dense DFA over the leading patterns, pattern `i` standing for `patterns[i]`.
    engine: Engine,
    patterns: Vec<LeadingPattern>,
    /// The verbs of every route in `bound` lists, together: a method none of them takes
    /// cannot be answered by the leading routes, which are then not walked (unless `complete`).
    takes: RouteBits,
    /// Every pattern of the automata without a key leads (the GitHub API set: its one route
    /// led by a parameter): a search of the leading routes finds all their candidates, and
    /// the full walk would only find them again.
    pub(crate) complete: bool,
}

/// One leading pattern: its routes, and those of them that can end a search when it
/// matches (the DFA decides them alone, and they come before every other route of the automata
/// without a key).
#[derive(Debug)]
struct LeadingPattern {
    routes: Vec<u32>,
    bound: Vec<u32>,
}

impl LeadingRoutes {
    /// The leading routes of the automata `always`: their patterns in the order of their first
    /// routes, up to the last one needed for each of the common methods to have a pattern that the DFA
    /// decides alone and that takes it (GitLab CE: `/-/peek`'s mount #70, `/*id(.:format)`
    /// #338–#341 for GET, PATCH, PUT and DELETE, `/-/graphql-explorer`'s mount #374, and the
    /// API's mount at `/`, #375, for POST), within [`MAX_LEADING_PATTERNS`]; at least GET must be
    /// taken, and they must make a small dense DFA (a load builds it again from the routes).
    pub(crate) fn build(routes: &[CompiledRoute], automata: &[Automaton], always: &[u32], host_regex: bool) -> Option<LeadingRoutes> {
        let mut patterns: Vec<&Vec<u32>> = always.iter().flat_map(|&a| automata[a as usize].pattern_routes.iter()).filter(|p| !p.is_empty()).collect();
        patterns.sort_by_key(|p| p[0]);
        // The methods each pattern can answer (none unless the DFA decides all its routes).
        let taken = |p: &Vec<u32>| -> usize {
            if !p.iter().all(|&r| routes[r as usize].is_exact_in_dfa()) {
                return 0;
            }
            let bits = |r: u32| RouteBits::of(&routes[r as usize]);
            COMMON_METHODS
                .iter()
                .enumerate()
                .filter(|(_, m)| p.iter().any(|&r| bits(r).allows(Method::new(m), &routes[r as usize])))
                .fold(0, |set, (i, _)| set | 1 << i)
        };
        let (mut answered, mut last) = (0usize, None);
        for (i, p) in patterns.iter().take(MAX_LEADING_PATTERNS).enumerate() {
            let now = answered | taken(p);
            if now != answered {
                (answered, last) = (now, Some(i));
            }
            if answered == (1 << COMMON_METHODS.len()) - 1 {
                break;
            }
        }
        // GET (bit 0) must be among them: the leading routes are for the paths most requests take.
        let last = last.filter(|_| answered & 1 != 0)?;
        let (leading, rest) = patterns.split_at(last + 1);
        let is_leading = |r: &u32| leading.iter().any(|p| p.contains(r));
        let rest_from = rest.iter().flat_map(|p| p.iter()).copied().filter(|r| !is_leading(r)).min().unwrap_or(u32::MAX);
        let mut cache = RequirementCache::new(host_regex);
        let mut hirs = Vec::with_capacity(leading.len());
        for p in leading {
            let route = &routes[p[0] as usize];
            if route.host_regex.is_some() {
                return None;
            }
            let (_, node, _) = route_node(route.index, &route.def, &mut cache).ok()?;
            hirs.push(super::pattern_hir(&node, route.def.mounted));
        }
        let engine = Engine::build_dense(&hirs, LEADING_DFA_LIMIT, true).ok()?;
        let patterns: Vec<LeadingPattern> = leading
            .iter()
            .map(|p| LeadingPattern {
                routes: p.to_vec(),
                bound: p.iter().copied().filter(|&r| r < rest_from && routes[r as usize].is_exact_in_dfa()).collect(),
            })
            .collect();
        let takes = patterns.iter().flat_map(|p| &p.bound).fold(RouteBits::NONE, |bits, &r| bits.with(RouteBits::of(&routes[r as usize])));
        Some(LeadingRoutes { engine, patterns, takes, complete: rest.is_empty() })
    }

    /// Adds to `out` the routes of every leading pattern that matches all of `path` (when
    /// `complete`, always: then they stand for the full walk); true when one of them ends a
    /// first-match search for `method` (`allows`: whether a route takes it).
    #[inline]
    pub(crate) fn search<const N: usize>(
        &self,
        path: &[u8],
        method: Method<'_>,
        out: &mut InlineVec<u32, N>,
        allows: impl Fn(u32) -> bool,
    ) -> Result<bool, SearchError> {
        if !self.takes.may_allow(method) && !self.complete {
            return Ok(false);
        }
        let mut answered = false;
        self.engine.for_each_match(path, |p| {
            let p = &self.patterns[p as usize];
            out.extend_from_slice(&p.routes);
            answered = answered || p.bound.iter().any(|&r| allows(r));
        })?;
        Ok(answered)
    }

    pub(crate) fn memory_usage(&self) -> usize {
        self.engine.memory_usage()
            + crate::heap::vec(&self.patterns)
            + self.patterns.iter().map(|p| crate::heap::vec(&p.routes) + crate::heap::vec(&p.bound)).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{EngineConfig, EngineKind};
    use crate::{BuildOptions, Classifier, RouteDef};

    fn build(routes: Vec<RouteDef>, kind: EngineKind) -> Classifier {
        Classifier::build(routes, &BuildOptions { engine: EngineConfig { kind, ..EngineConfig::default() }, ..BuildOptions::default() }).unwrap()
    }

    /// GitLab CE's leading routes: `/-/peek`'s mount, `/*id(.:format)`, `/-/graphql-explorer`'s mount and
    /// the API's mount at `/`; after `/x` only a newline leaves the state (accelerated, once the
    /// DFA is minimized).
    #[test]
    fn gitlab_ce_leads_with_the_group_catch_all_and_the_api_mount() {
        let Ok(json) = std::fs::read("../shared/corpus/gitlab-ce.routes.json") else { return };
        let c = Classifier::build(crate::routes::from_json(&json).unwrap(), &BuildOptions::default()).unwrap();
        let leading = c.leading.as_ref().expect("leading routes");
        let routes: Vec<&[u32]> = leading.patterns.iter().map(|p| &p.routes[..]).collect();
        assert_eq!(routes, [&[70][..], &[338, 339, 340, 341][..], &[374][..], &[375][..]]);
        let crate::engine::Engine::Dense(dfa, ..) = &leading.engine else { panic!("a dense DFA") };
        use regex_automata::dfa::Automaton;
        let path = b"/gitlab-org/gitlab/-/issues";
        let mut sid = dfa.start_state_forward(&regex_automata::Input::new(path).anchored(regex_automata::Anchored::Yes)).unwrap();
        for &b in &path[..2] {
            sid = dfa.next_state(sid, b);
        }
        assert!(dfa.is_accel_state(sid) && dfa.accelerator(sid) == b"\n", "{sid:?}");
    }

    /// The leading routes answer as the full walk would: their route when it holds, and when the host turns
    /// it down, the routes without a key after it (found then), in both layouts — held to the
    /// same table without them on every method, path and set of declined routes below.
    #[test]
    fn a_declined_leading_route_leads_to_the_routes_after_it() {
        a_declined_leading_route_leads_to_the_routes_after_it_in(true);
    }

    /// The same when the leading routes are all the routes without a key (`complete`: the
    /// full walk is never run, their search stands for it, whatever the method).
    #[test]
    fn complete_leading_routes_stand_for_the_full_walk() {
        a_declined_leading_route_leads_to_the_routes_after_it_in(false);
    }

    fn a_declined_leading_route_leads_to_the_routes_after_it_in(with_unmatched: bool) {
        let routes = || {
            let mut routes = vec![
                RouteDef::new("GET", "/-/peek").mounted(),
                RouteDef::new("GET", "/users/:id"),
                RouteDef::new("GET|DELETE", "/*id(.:format)").regex_requirement("id", ".+?", 0).dynamic(),
                // Widened by the DFA (the look-ahead), so it leads but bounds no search: PUT is
                // no method the leading routes answer, yet complete ones must still find it.
                RouteDef::new("PUT", "/:group/edit(.:format)").regex_requirement("group", "(?!admin)[^/.]+", 0),
                RouteDef::new("GET", "/:user(.:format)"),
                RouteDef::new("GET|POST", "/*namespace_id/:project_id(.:format)"),
            ];
            if with_unmatched {
                routes.push(RouteDef::new("POST", "/*unmatched"));
            }
            routes
        };
        let paths = [
            "/a/b",
            "/a",
            "/a/b.json",
            "/a/b/c",
            "/users/1",
            "/-/peek/x",
            "/-/peek",
            "/a\nb",
            "/a/b\n",
            "/",
            "/a.b/c.d",
            "/a/edit",
            "/admin/edit",
            "/a/edit.json",
        ];
        let declined_sets: [&[usize]; 7] = [&[], &[2], &[2, 5], &[5], &[0], &[0, 2, 4], &[3]];
        for kind in [EngineKind::Dense, EngineKind::Lazy] {
            let c = build(routes(), kind);
            let mut without = build(routes(), kind);
            without.leading = None;
            let leading = c.leading.as_ref().expect("leading routes");
            // Matched around its key (`edit`) in the layout of large tables, not led by a parameter.
            let expected: Vec<Vec<u32>> = match kind {
                EngineKind::Lazy => vec![vec![0], vec![2], vec![4], vec![5]],
                _ => vec![vec![0], vec![2], vec![3], vec![4], vec![5]],
            };
            assert_eq!(leading.patterns.iter().map(|p| p.routes.clone()).collect::<Vec<_>>(), expected, "{kind:?}");
            assert_eq!(leading.complete, !with_unmatched, "{kind:?}");
            let pick = |c: &Classifier, method: &str, path: &str, declined: &[usize]| {
                c.recognize_with(method, path.as_bytes(), |m| !declined.contains(&m.route_index())).unwrap().map(|m| m.route_index())
            };
            for method in ["GET", "POST", "DELETE", "HEAD", "PUT"] {
                for path in paths {
                    for declined in declined_sets {
                        assert_eq!(pick(&c, method, path, declined), pick(&without, method, path, declined), "{kind:?} {method} {path:?} {declined:?}");
                    }
                }
            }
            assert_eq!(pick(&c, "GET", "/a/b", &[]), Some(2), "{kind:?}");
            assert_eq!(pick(&c, "GET", "/a/b", &[2]), Some(5), "{kind:?}");
            assert_eq!(pick(&c, "GET", "/a", &[2]), Some(4), "{kind:?}");
            assert_eq!(pick(&c, "DELETE", "/a/b.json", &[2]), None, "{kind:?}");
            assert_eq!(pick(&c, "POST", "/a/b/c", &[]), Some(5), "{kind:?}");
            assert_eq!(pick(&c, "PUT", "/a/edit", &[]), Some(3), "{kind:?}");
            assert_eq!(pick(&c, "PUT", "/admin/edit", &[]), None, "{kind:?}");
            assert_eq!(pick(&c, "GET", "/-/peek/x", &[0]), Some(2), "{kind:?}");
            let all: Vec<usize> = c.matches("GET", b"/a/b").unwrap().iter().map(|m| m.route_index()).collect();
            assert_eq!(all, [2, 5], "{kind:?}");
        }
    }
}
