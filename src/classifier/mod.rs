//! The compiled classifier: `(method, path_info)` → the route Rails would pick, with its params.
//!
//! Rails' `Journey::Router#find_routes` takes every route whose regex matches the normalized
//! path, keeps those whose verb matches (HEAD: routes that name HEAD, else everything as
//! GET), sorts them by definition order, and `serve` then tries them in turn: a route whose
//! constraint object says no (`GroupUrlConstrainer`...) passes to the next. This module does
//! the same, with one DFA pass in place of the per-route regex loop: the DFA yields the
//! structural candidates, the exact matcher confirms the ones whose regex the DFA widened,
//! and the host decides dynamic constraints through a callback, in Rails' order.
//!
//! This file holds the compiled table's types; `build` turns route definitions into
//! automata and exact matchers (once, at boot), `query` answers requests with them (the
//! hot path).

mod build;
pub(crate) use build::pattern_hir;
mod leading_routes;
mod query;
mod route_bits;
mod segment_tree;
mod static_paths;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::OnceLock;

use crate::around_key::AroundKey;
use crate::engine::{Engine, EngineConfig, EngineKind, LazyCache};
use crate::error::ClassifyError;
use crate::first_segment::FirstSegments;
use crate::heap;
use crate::matcher::{Matcher, Spans};
use crate::normalize::unescape;
use crate::routes::{RouteDef, Verbs};
use crate::ruby_regex::parse::Inexpressible;
use crate::ruby_regex::translate::Widening;

/// Paths longer than this are refused by default (Puma's own limit on a request target is 12 KiB).
pub const DEFAULT_MAX_PATH_LEN: usize = 8 * 1024;

/// A route after compilation.
#[derive(Debug)]
pub struct CompiledRoute {
    pub(crate) index: usize,
    pub(crate) def: RouteDef,
    pub(crate) verbs: Verbs,
    pub(crate) params: Vec<String>,
    pub(crate) matcher: u32,
    pub(crate) widenings: Vec<Widening>,
    /// Set when a requirement uses what neither the DFA nor the exact matcher can run: the
    /// host confirms the route with Ruby's own `Regexp` ([`BuildOptions::host_regex`]).
    pub(crate) host_regex: Option<Box<HostRegex>>,
}

/// A route the host decides with Ruby's own `Regexp`, because one of its requirements uses an
/// Onigmo construct no DFA can express ([`Inexpressible`]). The automaton widens the construct
/// to "any bytes", so it proposes every path Ruby could accept (and more); the host runs
/// `source` on each such candidate and reads the parameters as Journey does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostRegex {
    /// The route's regexp as Journey builds it (`Path::Pattern#to_regexp`), in Ruby syntax.
    pub source: String,
    /// Per parameter slot ([`CompiledRoute::param_names`]), its requirement as Journey
    /// interpolates it, or `None`: Journey counts each requirement's groups to find the
    /// parameter's capture (`Path::Pattern#offsets`), and so must the host.
    pub requirements: Vec<Option<String>>,
    /// What needed Ruby, per parameter.
    pub constructs: Vec<(String, Inexpressible)>,
}

/// Confirms a [`HostRegex`] route on a normalized path: the parameters' byte spans (in
/// parameter-slot order) when Ruby's `Regexp` matches, `None` when it does not.
pub type RegexHost<'h> = dyn FnMut(&CompiledRoute, &[u8]) -> Result<Option<Spans>, ClassifyError> + 'h;

impl CompiledRoute {
    /// Position in definition order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The definition it was compiled from.
    pub fn def(&self) -> &RouteDef {
        &self.def
    }

    /// Its parameters' names, in spec order (the order of [`Match::try_spans`]).
    pub fn param_names(&self) -> &[String] {
        &self.params
    }

    /// What the DFA widened for this route (each then checked by the exact matcher).
    pub fn widenings(&self) -> &[Widening] {
        &self.widenings
    }

    /// True when the DFA alone decides this route's regex, with no exact check needed.
    pub fn is_exact_in_dfa(&self) -> bool {
        self.widenings.is_empty()
    }

    /// The verbs it answers.
    pub fn verbs(&self) -> &Verbs {
        &self.verbs
    }

    /// What Ruby's `Regexp` must decide for this route, if anything.
    pub fn host_regex(&self) -> Option<&HostRegex> {
        self.host_regex.as_deref()
    }
}

/// Options for [`Classifier::build`].
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Which automata to build, and their limits.
    pub engine: EngineConfig,
    /// Longer paths are refused ([`ClassifyError::PathTooLong`]); default [`DEFAULT_MAX_PATH_LEN`].
    pub max_path_len: usize,
    /// Accept requirements with Onigmo constructs no DFA can express ([`Inexpressible`]): the
    /// route is then decided by a [`RegexHost`] running Ruby's own `Regexp` (the gem). Off for
    /// users without Ruby (CLI, router), which refuse such a table naming route and construct.
    pub host_regex: bool,
    /// Build on a pool of two threads made for the build and ended with it (on by default; the
    /// same classifier either way): the exact matchers beside the first-segment dispatch's
    /// automata, which the threads share, and the regexes freed beside the around-key automata.
    pub parallel: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { engine: EngineConfig::default(), max_path_len: DEFAULT_MAX_PATH_LEN, host_regex: false, parallel: true }
    }
}

/// A compiled, immutable route table. `Send + Sync`: share one across threads.
#[derive(Debug)]
pub struct Classifier {
    pub(crate) routes: Vec<CompiledRoute>,
    /// Per route, what the query side asks of every candidate, packed ([`route_bits`]).
    pub(crate) route_bits: Vec<route_bits::RouteBits>,
    /// Some route names HEAD among its verbs (Journey's explicit HEAD routes).
    pub(crate) names_head: bool,
    pub(crate) matchers: Vec<LazyMatcher>,
    /// Routes split by a literal segment every path they match contains (see [`Layout`]).
    pub(crate) automata: Vec<Automaton>,
    pub(crate) layout: Layout,
    /// Key segment → the automaton it selects (each key selects one). FxHash: a few ns per
    /// segment, and the keys come from the route table, not from requests.
    pub(crate) keyed: rustc_hash::FxHashMap<Box<[u8]>, u32>,
    /// Automata without keys: searched for every path.
    pub(crate) always: Vec<u32>,
    /// Their first routes, checked alone before them by a first-match search
    /// ([`leading_routes`]).
    pub(crate) leading: Option<leading_routes::LeadingRoutes>,
    /// [`Layout::AnySegment`]: the keyed routes, matched around their key segment.
    pub(crate) around: Option<AroundKey>,
    /// [`Layout::AnySegment`]: the routes led by a literal segment, selected by a path's first
    /// segment before the automata above (which then hold only the other routes).
    pub(crate) first_segments: Option<FirstSegments>,
    pub(crate) max_path_len: usize,
    /// The table's literal paths, each with the candidates its first request found
    /// ([`static_paths`]).
    pub(crate) static_paths: static_paths::StaticPaths,
    /// Every literal path starts with a segment the first-segment dispatch keys: a path it
    /// selects nothing for (or a key no literal path starts with) is none of them, and its
    /// candidates are searched without looking it up in [`Classifier::static_paths`] — a hash
    /// of the whole path, and in traffic that varies a likely cache miss, spared on six GitLab
    /// CE requests in ten.
    pub(crate) literal_paths_keyed: bool,
    /// A table whose routes are all plain: the tree of their segments, searched instead of
    /// the automata ([`segment_tree`]).
    pub(crate) segment_tree: Option<segment_tree::SegmentTree>,
    /// The matchers' shared run sets, for matchers built on first use (after a load).
    pub(crate) run_sets: std::sync::Mutex<crate::shared_runs::RunSets>,
}

/// One automaton and, for each of its patterns, the routes (ascending) it stands for.
#[derive(Debug)]
pub(crate) struct Automaton {
    pub(crate) engine: Engine,
    pub(crate) pattern_routes: Vec<Vec<u32>>,
    /// Path segments that select this automaton; empty: every path does.
    pub(crate) keys: Vec<String>,
}

/// How routes are split between automata, and which segments of a path select them.
///
/// A union of `/*namespace_id/...` routes with `/groups/*id/...` routes makes a determinizer
/// track both at once at every position (on the corpus table, together they take several
/// times the build time and memory they take apart); in GitLab's full template list thousands of glob-led
/// routes make any one automaton over them slow to search or to build. So each route goes to
/// an automaton keyed by a literal segment that every path it matches contains, and a path is
/// only run through the automata its own segments select (plus those without a key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Layout {
    /// Two automata: routes whose first segment is a literal (keyed by it: `/groups/...`,
    /// `/-/profile`, `/`), and the rest. Small tables, which fit one dense DFA each: one
    /// lookup of the path's first segment.
    FirstSegment,
    /// Each route keyed by its rarest literal segment (`issues` rather than `-` in
    /// `/*namespace_id/:project_id/-/issues`) and matched around it (see [`AroundKey`]), plus
    /// one automaton for routes without a literal segment. Large tables: every segment of the
    /// path is looked up.
    AnySegment,
}

/// A route that matched, with its parameters.
#[derive(Debug, Clone)]
pub struct Match<'c, 'p> {
    classifier: &'c Classifier,
    route: &'c CompiledRoute,
    path: Cow<'p, [u8]>,
    /// Parameter spans, found on first use: a route the DFA decides alone is chosen without
    /// running its exact matcher, and most answers never need their parameters.
    spans: OnceCell<Result<Spans, ClassifyError>>,
    /// Offered to the host only to ask whether its request conditions hold (see
    /// [`Match::asks_request_conditions_only`]).
    conditions_only: bool,
}

impl<'c, 'p> Match<'c, 'p> {
    /// The route that matched.
    pub fn route(&self) -> &'c CompiledRoute {
        self.route
    }

    /// The route's position in definition order.
    pub fn route_index(&self) -> usize {
        self.route.index
    }

    /// The normalized path that was matched.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Every parameter's byte span in [`Match::path`], in spec order; an error only when the
    /// route's regex backtracks past the step budget on this path.
    pub fn try_spans(&self) -> Result<&Spans, ClassifyError> {
        let spans = self.spans.get_or_init(|| match self.classifier.known_match_spans(self.route, &self.path) {
            Ok(Some(spans)) => Ok(spans),
            Ok(None) => Err(ClassifyError::MatcherDisagrees { route: self.route.index, path: String::from_utf8_lossy(&self.path).into_owned() }),
            Err(e) => Err(e),
        });
        spans.as_ref().map_err(Clone::clone)
    }

    /// A parameter's byte span in [`Match::path`] (`None` also if [`Match::try_spans`] fails).
    /// A name the spec uses twice takes the last occurrence that matched, as Rails' path
    /// parameters Hash does (each capture overwrites the one before).
    pub fn span(&self, name: &str) -> Option<(usize, usize)> {
        let spans = self.try_spans().ok()?;
        self.route.params.iter().zip(spans).rev().find(|(p, s)| *p == name && s.is_some()).and_then(|(_, s)| *s)
    }

    /// A parameter as Rails gives it: unescaped (`%2F` → `/`).
    pub fn param(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.span(name).map(|(s, e)| unescape(&self.path[s..e]))
    }

    /// A parameter as raw (still escaped) path bytes.
    pub fn raw_param(&self, name: &str) -> Option<&[u8]> {
        self.span(name).map(|(s, e)| &self.path[s..e])
    }

    /// All parameters that matched, in spec order, unescaped; a repeated name once, with the
    /// value [`Match::span`] gives it.
    pub fn params(&self) -> impl Iterator<Item = (&str, Cow<'_, [u8]>)> + '_ {
        let spans = self.try_spans().map(|s| s.as_slice()).unwrap_or(&[]);
        let names = &self.route.params;
        names.iter().zip(spans).enumerate().filter_map(move |(slot, (name, span))| {
            let (s, e) = (*span)?;
            // Superseded by a later occurrence of the same name that matched.
            let later = names[slot + 1..].iter().zip(&spans[slot + 1..]).any(|(n, sp)| n == name && sp.is_some());
            (!later).then(|| (name.as_str(), unescape(&self.path[s..e])))
        })
    }

    /// True when the host is asked only whether the route's *request conditions* (`subdomain:`,
    /// `host:`...) hold, not its constraint objects: Journey's `match_head_routes` keeps the
    /// routes drawn for HEAD whose `matches?(req)` holds, and only when there is none answers
    /// HEAD with the GET routes; a HEAD route's constraint objects are asked later, at `serve`,
    /// and do not send the request back to the GET routes.
    pub fn asks_request_conditions_only(&self) -> bool {
        self.conditions_only
    }

    /// The same match, holding its own copy of the path (to outlive the request's bytes).
    pub fn into_owned(self) -> Match<'c, 'static> {
        Match {
            classifier: self.classifier,
            route: self.route,
            path: Cow::Owned(self.path.into_owned()),
            spans: self.spans,
            conditions_only: self.conditions_only,
        }
    }
}

/// A route's exact matcher, built on first use when the classifier was loaded from bytes
/// (loading then skips regex work for routes no request has reached yet).
#[derive(Debug)]
pub(crate) struct LazyMatcher {
    /// A route whose definition yields this matcher.
    route: u32,
    cell: OnceLock<Matcher>,
}

impl Classifier {
    pub(crate) fn engines(&self) -> impl Iterator<Item = &Engine> {
        self.automata.iter().map(|a| &a.engine)
    }

    /// Every route, in definition order.
    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }

    /// Whether the table is searched by its segment tree (every route plain) rather than its
    /// automata (tests and diagnostics).
    #[doc(hidden)]
    pub fn has_segment_tree(&self) -> bool {
        self.segment_tree.is_some()
    }

    /// The automata built: [`EngineKind::SegmentTree`] if none (the segment tree searches the
    /// table alone), [`EngineKind::Lazy`] if any automaton is lazy, else
    /// [`EngineKind::Dense`] (never `Auto`, which only asks for one of them).
    pub fn engine_kind(&self) -> EngineKind {
        if self.segment_tree.is_some() && self.automata.is_empty() && self.around.is_none() && self.first_segments.is_none() {
            EngineKind::SegmentTree
        } else if self.around.is_some() || self.engines().any(|e| e.kind() == EngineKind::Lazy) {
            EngineKind::Lazy
        } else {
            EngineKind::Dense
        }
    }

    /// Number of distinct patterns in the automaton.
    pub fn pattern_count(&self) -> usize {
        self.automata.iter().map(|a| a.pattern_routes.len()).sum::<usize>()
            + self.around.as_ref().map_or(0, AroundKey::pattern_count)
            + self.first_segments.as_ref().map_or(0, FirstSegments::pattern_count)
    }

    /// The lazy DFAs' caches as the calling thread holds them (each taken from its pool: one is
    /// made for a thread that has none), one per lazy automaton; none for a dense table. They
    /// are not part of [`Classifier::memory_usage`]: each grows as paths visit new states, up
    /// to its capacity, and is cleared when full.
    pub fn lazy_caches(&self) -> Vec<LazyCache> {
        let mut out = Vec::new();
        for (i, a) in self.automata.iter().enumerate() {
            let name = if a.keys.is_empty() { format!("always {i}") } else { format!("keyed {i}") };
            a.engine.thread_caches(&name, &mut out);
        }
        if let Some(around) = &self.around {
            around.thread_caches(&mut out);
        }
        if let Some(dispatch) = &self.first_segments {
            dispatch.thread_caches(&mut out);
        }
        out
    }

    /// Heap bytes held by the compiled classifier: route definitions, exact matchers built so
    /// far, automata and indexes, counted from their capacities (`tests/memory_usage.rs` checks
    /// it against a counting allocator). Not counted: the lazy DFAs' per-thread caches, which
    /// grow with use up to [`EngineConfig::lazy_cache_capacity`] each ([`Classifier::lazy_caches`]).
    pub fn memory_usage(&self) -> usize {
        let routes: usize = self
            .routes
            .iter()
            .map(|r| {
                heap::route_def(&r.def)
                    + heap::vec(&r.params)
                    + r.params.iter().map(heap::string).sum::<usize>()
                    + heap::vec(&r.widenings)
                    + r.widenings.iter().map(|w| heap::string(&w.construct) + heap::string(&w.action)).sum::<usize>()
                    + heap::verbs(&r.verbs)
            })
            .sum();
        let routes = routes + heap::vec(&self.route_bits);
        let mut counted = crate::shared_runs::Counted::default(); // shared run sets once
        let matchers: usize = self.matchers.iter().filter_map(|m| m.cell.get()).map(|m| m.heap_bytes(&mut counted)).sum::<usize>()
            + self.run_sets.lock().unwrap_or_else(|e| e.into_inner()).heap_bytes();
        let automata: usize = self
            .automata
            .iter()
            .map(|a| {
                a.engine.memory_usage()
                    + heap::vec(&a.pattern_routes)
                    + a.pattern_routes.iter().map(heap::vec).sum::<usize>()
                    + heap::vec(&a.keys)
                    + a.keys.iter().map(heap::string).sum::<usize>()
            })
            .sum();
        let keyed = heap::hash_table::<Box<[u8]>, u32>(self.keyed.capacity()) + self.keyed.keys().map(|k| k.len()).sum::<usize>();
        let around = self.around.as_ref().map_or(0, AroundKey::memory_usage) + self.first_segments.as_ref().map_or(0, FirstSegments::memory_usage);
        heap::vec(&self.routes)
            + routes
            + heap::vec(&self.matchers)
            + matchers
            + heap::vec(&self.automata)
            + automata
            + keyed
            + heap::vec(&self.always)
            + self.leading.as_ref().map_or(0, leading_routes::LeadingRoutes::memory_usage)
            + around
            + self.static_paths.memory_usage()
            + self.segment_tree.as_ref().map_or(0, segment_tree::SegmentTree::memory_usage)
    }
}

#[cfg(test)]
mod tests;
