//! The compiled classifier: `(method, path_info)` → the route Rails would pick, with its params.
//!
//! Rails' `Journey::Router#find_routes` takes every route whose regex matches the normalized
//! path, keeps those whose verb matches (HEAD: routes that name HEAD, else everything as
//! GET), sorts them by definition order, and `serve` then tries them in turn: a route whose
//! constraint object says no (`GroupUrlConstrainer`...) passes to the next. This module does
//! the same, with one DFA pass in place of the per-route regex loop: the DFA yields the
//! structural candidates, the exact matcher confirms the ones whose regex the DFA widened,
//! and the host decides dynamic constraints through a callback, in Rails' order.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::around_key::{AroundKey, Part, Slashes, SplitRoute};
use crate::engine::{Engine, EngineConfig, EngineKind};
use crate::error::{ClassifyError, CompileError};
use crate::heap;
use crate::inline_vec::InlineVec;
use crate::journey;
use crate::matcher::{Matcher, Spans};
use crate::normalize::{normalize_path, unescape};
use crate::routes::{is_method_token, Requirement, RouteDef, Verbs};
use crate::ruby_regex::ast::Node;
use crate::ruby_regex::parse::{parse_as_allowed, Inexpressible};
use crate::ruby_regex::translate::{translate, Widening};

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

/// Rails sets the path parameters of each route it tries (`Journey::Router#serve`) before asking
/// its constraints, and refuses parameters that are not UTF-8 once unescaped
/// (`ActionController::BadRequest`, 400): so the first route tried with such a parameter ends
/// the search with that error, whatever routes follow.
fn parameters_are_utf8(m: &Match<'_, '_>) -> Result<(), ClassifyError> {
    m.try_spans()?;
    match m.params().find(|(_, value)| std::str::from_utf8(value).is_err()) {
        Some((name, _)) => Err(ClassifyError::ParamNotUtf8 { route: m.route_index(), param: name.to_string() }),
        None => Ok(()),
    }
}

/// The [`RegexHost`] of callers without Ruby: a [`HostRegex`] route cannot be decided.
fn no_regex_host(route: &CompiledRoute, _: &[u8]) -> Result<Option<Spans>, ClassifyError> {
    Err(ClassifyError::NeedsRuby {
        route: route.index,
        construct: route.host_regex.as_ref().and_then(|h| h.constructs.first()).map(|(p, c)| format!("{p}: {}", c.construct)).unwrap_or_default(),
    })
}

impl CompiledRoute {
    /// Position in definition order.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn def(&self) -> &RouteDef {
        &self.def
    }

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
    pub engine: EngineConfig,
    pub max_path_len: usize,
    /// Accept requirements with Onigmo constructs no DFA can express ([`Inexpressible`]): the
    /// route is then decided by a [`RegexHost`] running Ruby's own `Regexp` (the gem). Off for
    /// users without Ruby (CLI, router), which refuse such a table naming route and construct.
    pub host_regex: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { engine: EngineConfig::default(), max_path_len: DEFAULT_MAX_PATH_LEN, host_regex: false }
    }
}

/// A compiled, immutable route table. `Send + Sync`: share one across threads.
#[derive(Debug)]
pub struct Classifier {
    pub(crate) routes: Vec<CompiledRoute>,
    pub(crate) matchers: Vec<LazyMatcher>,
    /// Routes split by a literal segment every path they match contains (see [`Layout`]).
    pub(crate) automata: Vec<Automaton>,
    pub(crate) layout: Layout,
    /// Key segment → the automaton it selects (each key selects one). FxHash: a few ns per
    /// segment, and the keys come from the route table, not from requests.
    pub(crate) keyed: rustc_hash::FxHashMap<Box<[u8]>, u32>,
    /// Automata without keys: searched for every path.
    pub(crate) always: Vec<u32>,
    /// [`Layout::AnySegment`]: the keyed routes, matched around their key segment.
    pub(crate) around: Option<AroundKey>,
    pub(crate) max_path_len: usize,
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
/// track both at once at every position (measured on the corpus table: 570 ms and 4.4 MiB
/// together, 60 ms and 1.3 MiB apart); in GitLab's full template list thousands of glob-led
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
            Ok(None) => Err(ClassifyError::Automaton(format!(
                "route {}: the automaton and the exact matcher disagree on {:?}",
                self.route.index,
                String::from_utf8_lossy(&self.path)
            ))),
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

/// Whether a caller wants every matching route or stops at the first it accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wanted {
    All,
    First,
}

/// Which verbs a request's routes must allow (Journey's HEAD handling).
#[derive(Clone, Copy)]
enum VerbFilter<'m> {
    /// Routes that allow this method (any-verb routes included).
    Method(&'m str),
    /// HEAD answered by the routes that name HEAD explicitly.
    ExplicitHead,
}

impl VerbFilter<'_> {
    fn allows(self, verbs: &Verbs) -> bool {
        match self {
            VerbFilter::Method(m) => verbs.allows(m),
            VerbFilter::ExplicitHead => verbs.is_specific() && verbs.allows("HEAD"),
        }
    }
}

/// Up to this many candidates live on the stack.
const INLINE_CANDIDATES: usize = 24;

impl Classifier {
    /// Compiles `routes` (in definition order, or ordered by their `index`).
    pub fn new(routes: Vec<RouteDef>) -> Result<Classifier, CompileError> {
        Self::build(routes, &BuildOptions::default())
    }

    pub fn build(routes: Vec<RouteDef>, options: &BuildOptions) -> Result<Classifier, CompileError> {
        let layout = match options.engine.kind {
            EngineKind::Dense => Layout::FirstSegment,
            EngineKind::Lazy => Layout::AnySegment,
            EngineKind::Auto if routes.len() > options.engine.dense_max_patterns => Layout::AnySegment,
            EngineKind::Auto => Layout::FirstSegment,
        };
        // Large tables get lazy DFAs: GitLab's 5,066 templates, split around their keys, build
        // in ~120 ms; dense DFAs over them (keyed groups, an earlier layout) took 3.7 s and
        // 117 MiB for no faster a search.
        let engine = match layout {
            Layout::FirstSegment => options.engine,
            Layout::AnySegment => EngineConfig { kind: EngineKind::Lazy, ..options.engine },
        };
        let mut parts = Parts::compile(routes, Mode::Build, options.host_regex)?;
        let (groups, split) = std::mem::take(&mut parts.pending).split(layout);
        let around = match split {
            Some(split) => {
                for route in &split.inexact {
                    // Never happens with today's translator (it widens the same nodes either
                    // way), but a split that widens must not let the DFA's word stand alone.
                    let w = &mut parts.routes[*route as usize].widenings;
                    if w.is_empty() {
                        w.push(Widening { construct: "split at its key segment".into(), action: "checked exactly".into() });
                    }
                }
                Some(AroundKey::build(split.routes, &engine).map_err(CompileError::Automaton)?)
            }
            None => None,
        };
        let automata = groups
            .into_iter()
            .map(|g| {
                let engine = Engine::build(&g.patterns, &engine).map_err(CompileError::Automaton)?;
                Ok(Automaton { engine, pattern_routes: g.pattern_routes, keys: g.keys })
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        parts.finish(automata, around, layout, options)
    }

    /// Rebuilds a classifier around automata that were built (and serialized) before; every
    /// route definition is validated, but exact matchers are built on first use.
    pub(crate) fn from_parts(
        routes: Vec<RouteDef>,
        options: &BuildOptions,
        automata: Vec<Automaton>,
        layout: Layout,
        widenings: Vec<Vec<Widening>>,
    ) -> Result<Classifier, CompileError> {
        let mut parts = Parts::compile(routes, Mode::Load, options.host_regex)?;
        if widenings.len() != parts.routes.len() {
            return Err(CompileError::Automaton("the widenings do not belong to these routes".into()));
        }
        for (route, w) in parts.routes.iter_mut().zip(widenings) {
            route.widenings = w;
        }
        let route_count = parts.routes.len() as u32;
        for a in &automata {
            if a.engine.pattern_len() != a.pattern_routes.len() || a.pattern_routes.iter().flatten().any(|&r| r >= route_count) {
                return Err(CompileError::Automaton("the automata do not belong to these routes".into()));
            }
        }
        parts.finish(automata, None, layout, options)
    }

    pub(crate) fn engines(&self) -> impl Iterator<Item = &Engine> {
        self.automata.iter().map(|a| &a.engine)
    }

    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }

    /// `"dense"` or `"lazy"`.
    pub fn engine_kind(&self) -> &'static str {
        if self.around.is_some() || self.engines().any(|e| e.kind_name() == "lazy") {
            "lazy"
        } else {
            "dense"
        }
    }

    /// Number of distinct patterns in the automaton.
    pub fn pattern_count(&self) -> usize {
        self.automata.iter().map(|a| a.pattern_routes.len()).sum::<usize>() + self.around.as_ref().map_or(0, AroundKey::pattern_count)
    }

    /// Heap bytes held by the compiled classifier: route definitions, exact matchers built so
    /// far, automata and indexes, counted from their capacities (`tests/memory_usage.rs` checks
    /// it against a counting allocator). Not counted: the lazy DFAs' per-thread caches, which
    /// grow with use up to [`EngineConfig::lazy_cache_capacity`] each.
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
        let around = self.around.as_ref().map_or(0, AroundKey::memory_usage);
        heap::vec(&self.routes)
            + routes
            + heap::vec(&self.matchers)
            + matchers
            + heap::vec(&self.automata)
            + automata
            + keyed
            + heap::vec(&self.always)
            + around
    }

    fn check_request(&self, method: &str, path_info: &[u8]) -> Result<(), ClassifyError> {
        if !is_method_token(method) {
            return Err(ClassifyError::InvalidMethod(method.chars().take(40).collect()));
        }
        if path_info.len() > self.max_path_len {
            return Err(ClassifyError::PathTooLong { len: path_info.len(), limit: self.max_path_len });
        }
        Ok(())
    }

    /// The route Rails would pick, assuming every dynamic constraint holds and every mounted
    /// application claims the path.
    pub fn classify<'c, 'p>(&'c self, method: &str, path_info: &'p [u8]) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        self.classify_with(method, path_info, |_| true)
    }

    /// The route Rails would pick; for routes with dynamic constraints and mounted applications
    /// ([`RouteDef::asks_host`]), `accept` decides, called in definition order as Rails' `serve`
    /// would ask the constraint objects (and as a mounted app's `X-Cascade: pass` would fall
    /// through to the next route).
    pub fn classify_with<'c, 'p>(
        &'c self,
        method: &str,
        path_info: &'p [u8],
        accept: impl FnMut(&Match<'c, 'p>) -> bool,
    ) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        self.classify_with_regex(method, path_info, accept, &mut no_regex_host)
    }

    /// [`Classifier::classify_with`], with `regex` deciding the routes only Ruby's `Regexp`
    /// can ([`CompiledRoute::host_regex`]).
    pub fn classify_with_regex<'c, 'p>(
        &'c self,
        method: &str,
        path_info: &'p [u8],
        accept: impl FnMut(&Match<'c, 'p>) -> bool,
        regex: &mut RegexHost<'_>,
    ) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        let mut found = None;
        let mut invalid = None;
        // Only a path with `%` or a non-ASCII byte can give a parameter that is not UTF-8.
        let check_encoding = path_info.iter().any(|&b| b == b'%' || b >= 0x80);
        let accept = std::cell::RefCell::new(accept);
        let mut conditions = |m: &Match<'c, 'p>| (accept.borrow_mut())(m);
        self.visit_matches(method, path_info, Wanted::First, regex, Some(&mut conditions), |m| {
            if check_encoding {
                if let Err(e) = parameters_are_utf8(&m) {
                    invalid = Some(e);
                    return false;
                }
            }
            if !m.route.def.asks_host() || (accept.borrow_mut())(&m) {
                found = Some(m);
                false
            } else {
                true
            }
        })?;
        match invalid {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Every route that matches `(method, path_info)`, in the order Rails would try them
    /// (dynamic constraints not applied).
    pub fn matches<'c, 'p>(&'c self, method: &str, path_info: &'p [u8]) -> Result<Vec<Match<'c, 'p>>, ClassifyError> {
        self.matches_with_regex(method, path_info, &mut no_regex_host)
    }

    /// [`Classifier::matches`], with `regex` deciding the routes only Ruby's `Regexp` can.
    pub fn matches_with_regex<'c, 'p>(&'c self, method: &str, path_info: &'p [u8], regex: &mut RegexHost<'_>) -> Result<Vec<Match<'c, 'p>>, ClassifyError> {
        let mut all = Vec::new();
        self.visit_matches(method, path_info, Wanted::All, regex, None, |m| {
            all.push(m);
            true
        })?;
        Ok(all)
    }

    /// Every route whose path pattern matches, whatever its verb, in definition order.
    pub fn path_matches<'c, 'p>(&'c self, path_info: &'p [u8]) -> Result<Vec<Match<'c, 'p>>, ClassifyError> {
        self.check_request("GET", path_info)?;
        let path = normalize_path(path_info);
        let mut out = Vec::new();
        let mut candidates = Candidates::new();
        self.candidates(&path, &mut candidates)?;
        for &route in candidates.as_slice() {
            let route = &self.routes[route as usize];
            if let Some(m) = self.confirm(route, &path, &mut no_regex_host)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Calls `visit` with each matching route in Rails' order until it returns false.
    pub fn each_match<'c, 'p>(&'c self, method: &str, path_info: &'p [u8], visit: impl FnMut(Match<'c, 'p>) -> bool) -> Result<(), ClassifyError> {
        self.visit_matches(method, path_info, Wanted::All, &mut no_regex_host, None, visit)
    }

    fn visit_matches<'c, 'p>(
        &'c self,
        method: &str,
        path_info: &'p [u8],
        wanted: Wanted,
        regex: &mut RegexHost<'_>,
        mut conditions: Option<&mut dyn FnMut(&Match<'c, 'p>) -> bool>,
        mut visit: impl FnMut(Match<'c, 'p>) -> bool,
    ) -> Result<(), ClassifyError> {
        self.check_request(method, path_info)?;
        let path = normalize_path(path_info);
        let mut candidates = Candidates::new();
        // HEAD first looks for routes naming HEAD among all candidates (see below).
        let first_for = (wanted == Wanted::First && method != "HEAD").then_some(method);
        self.candidates_until(&path, &mut candidates, first_for)?;
        let candidates = candidates.as_slice();
        if candidates.is_empty() {
            return Ok(());
        }

        let filter = if method == "HEAD" {
            // Journey's `match_head_routes`: the routes drawn for HEAD whose request conditions
            // hold (asked of the host, when a route has any), else every route as GET.
            let mut explicit = false;
            for &r in candidates {
                let route = &self.routes[r as usize];
                if !VerbFilter::ExplicitHead.allows(&route.verbs) {
                    continue;
                }
                let Some(mut m) = self.confirm(route, &path, regex)? else { continue };
                m.conditions_only = true;
                if !route.def.request_conditions || conditions.as_mut().is_none_or(|ask| ask(&m)) {
                    explicit = true;
                    break;
                }
            }
            if explicit {
                VerbFilter::ExplicitHead
            } else {
                VerbFilter::Method("GET")
            }
        } else {
            VerbFilter::Method(method)
        };

        // Routes sharing one regex are confirmed once.
        let mut verified: Vec<(u32, Option<Spans>)> = Vec::new();
        for (i, &r) in candidates.iter().enumerate() {
            let route = &self.routes[r as usize];
            if !filter.allows(&route.verbs) {
                continue;
            }
            let spans = if route.is_exact_in_dfa() {
                // The automaton's match is the route's: parameters are found when asked for.
                Some(OnceCell::new())
            } else {
                match verified.iter().position(|(m, _)| *m == route.matcher) {
                    Some(at) => verified[at].1.clone().map(|s| OnceCell::from(Ok(s))),
                    None => {
                        let spans = self.verify(route, &path, regex)?;
                        // Keep a copy only if a later candidate shares this regex.
                        if candidates[i + 1..].iter().any(|&later| self.routes[later as usize].matcher == route.matcher) {
                            verified.push((route.matcher, spans.clone()));
                        }
                        spans.map(|s| OnceCell::from(Ok(s)))
                    }
                }
            };
            let Some(spans) = spans else { continue };
            if !visit(Match { classifier: self, route, path: path.clone(), spans, conditions_only: false }) {
                break;
            }
        }
        Ok(())
    }

    /// Routes whose DFA pattern matches `path`, in definition order.
    fn candidates(&self, path: &[u8], out: &mut Candidates) -> Result<(), ClassifyError> {
        self.candidates_until(path, out, None)
    }

    /// [`Classifier::candidates`]; with `first_for` a method, only those that could come before
    /// the first route that certainly answers it. Such a route (the automaton decides its regex,
    /// it allows the method, no dynamic constraint can turn it down) is Rails' pick unless an
    /// earlier route matches, so keyed routes after it need no walk around their keys.
    fn candidates_until(&self, path: &[u8], out: &mut Candidates, first_for: Option<&str>) -> Result<(), ClassifyError> {
        let selected = match self.layout {
            Layout::FirstSegment => self.keyed.get(first_segment(path)).copied(),
            Layout::AnySegment => None,
        };
        self.automata_candidates(path, self.always.iter().chain(selected.as_ref()), out)?;
        if let Some(around) = &self.around {
            let bound = first_for.map_or(u32::MAX, |method| {
                out.as_slice()
                    .iter()
                    .copied()
                    .filter(|&r| {
                        let route = &self.routes[r as usize];
                        route.is_exact_in_dfa() && !route.def.asks_host() && VerbFilter::Method(method).allows(&route.verbs)
                    })
                    .min()
                    .unwrap_or(u32::MAX)
            });
            around.for_each_match(path, bound, |r| out.push(r)).map_err(ClassifyError::Automaton)?;
        }
        out.sort_dedup();
        Ok(())
    }

    /// Adds the routes of `automata` whose patterns match `path` (unsorted).
    fn automata_candidates<'a>(&self, path: &[u8], automata: impl Iterator<Item = &'a u32>, out: &mut Candidates) -> Result<(), ClassifyError> {
        for &a in automata {
            let automaton = &self.automata[a as usize];
            automaton
                .engine
                .for_each_match(path, |pattern| {
                    for &r in &automaton.pattern_routes[pattern as usize] {
                        out.push(r);
                    }
                })
                .map_err(ClassifyError::Automaton)?;
        }
        Ok(())
    }

    /// How many routes the automaton alone proposes for `path_info` (benchmarks and diagnostics).
    #[doc(hidden)]
    pub fn candidate_count(&self, path_info: &[u8]) -> Result<usize, ClassifyError> {
        let path = normalize_path(path_info);
        let mut candidates = Candidates::new();
        self.candidates(&path, &mut candidates)?;
        Ok(candidates.as_slice().len())
    }

    /// The route's match, if its regex matches `path` (an automaton proposed it).
    fn confirm<'c, 'p>(&'c self, route: &'c CompiledRoute, path: &Cow<'p, [u8]>, regex: &mut RegexHost<'_>) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        if route.is_exact_in_dfa() {
            return Ok(Some(Match { classifier: self, route, path: path.clone(), spans: OnceCell::new(), conditions_only: false }));
        }
        Ok(self.verify(route, path, regex)?.map(|s| Match {
            classifier: self,
            route,
            path: path.clone(),
            spans: OnceCell::from(Ok(s)),
            conditions_only: false,
        }))
    }

    /// The spans of a route the automaton matched: for a route it decides exactly they may be
    /// read off the path ([`Matcher::known_match_spans`]); otherwise the regex runs.
    fn known_match_spans(&self, route: &CompiledRoute, path: &[u8]) -> Result<Option<Spans>, ClassifyError> {
        if !route.is_exact_in_dfa() {
            return self.verify(route, path, &mut no_regex_host);
        }
        self.matcher(route.matcher)?.known_match_spans(path).map_err(|source| ClassifyError::TooComplex { route: route.index, source })
    }

    /// Runs the route's exact regex (Ruby's, through `regex`, for a [`HostRegex`] route); `None`
    /// when it does not match after all.
    fn verify(&self, route: &CompiledRoute, path: &[u8], regex: &mut RegexHost<'_>) -> Result<Option<Spans>, ClassifyError> {
        if route.host_regex.is_some() {
            let spans = regex(route, path)?;
            if spans.as_ref().is_some_and(|s| s.len() != route.params.len() || s.iter().flatten().any(|&(a, b)| a > b || b > path.len())) {
                return Err(ClassifyError::Automaton(format!("route {}: the host's Regexp gave spans outside the path", route.index)));
            }
            return Ok(spans);
        }
        self.matcher(route.matcher)?.captures(path).map_err(|source| ClassifyError::TooComplex { route: route.index, source })
    }

    fn matcher(&self, id: u32) -> Result<&Matcher, ClassifyError> {
        let lazy = &self.matchers[id as usize];
        if let Some(m) = lazy.cell.get() {
            return Ok(m);
        }
        let route = &self.routes[lazy.route as usize];
        // Validated when the classifier was loaded, so this cannot fail short of a bug.
        let (_, node, _) = route_node(route.index, &route.def, &mut RequirementCache::new(true))
            .map_err(|e| ClassifyError::Automaton(format!("route {} no longer compiles: {e}", route.index)))?;
        let mut run_sets = self.run_sets.lock().unwrap_or_else(|e| e.into_inner());
        Ok(lazy.cell.get_or_init(|| Matcher::new_sharing(node, route.params.len(), &mut run_sets)))
    }
}

/// Routes compiled up to, not including, the automata.
struct Parts {
    routes: Vec<CompiledRoute>,
    matchers: Vec<LazyMatcher>,
    /// Each route's DFA pattern and possible keys (a fresh build only).
    pending: Pending,
    /// The matchers' shared run sets (see [`crate::shared_runs`]).
    run_sets: crate::shared_runs::RunSets,
}

/// Each route's DFA pattern, with what could key it, before routes are split into automata.
#[derive(Default)]
struct Pending(Vec<PendingRoute>);

struct PendingRoute {
    route: u32,
    pattern: String,
    /// The spec's first segment, if literal (see [`static_first_segment`]).
    first: Option<String>,
    /// Every literal segment every matching path contains, with its index in the spec (see
    /// [`literal_segments`]).
    literals: Vec<(String, usize)>,
    /// The route's regex: `\A`, one node per spec node, then the end anchor.
    node: Node,
}

/// The routes of one automaton.
#[derive(Default)]
struct Group {
    patterns: Vec<String>,
    pattern_ids: HashMap<String, u32>,
    pattern_routes: Vec<Vec<u32>>,
    keys: Vec<String>,
}

impl Group {
    fn add(&mut self, route: u32, pattern: &str) {
        let next = self.patterns.len() as u32;
        let id = *self.pattern_ids.entry(pattern.to_owned()).or_insert_with_key(|p| {
            self.patterns.push(p.clone());
            self.pattern_routes.push(Vec::new());
            next
        });
        self.pattern_routes[id as usize].push(route);
    }
}

/// Routes split around their key segment ([`Layout::AnySegment`]).
struct Split {
    routes: Vec<SplitRoute>,
    /// Routes whose split patterns widened where the whole regex did not.
    inexact: Vec<u32>,
}

impl Pending {
    /// The automata's routes under `layout`: the keyed group first, then the group every path
    /// searches, if any route needs it; under [`Layout::AnySegment`] keyed routes are split
    /// around their key instead.
    fn split(self, layout: Layout) -> (Vec<Group>, Option<Split>) {
        let mut groups: Vec<Group> = Vec::new();
        let mut always = Group::default();
        let mut split = None;
        match layout {
            Layout::FirstSegment => {
                // One automaton for every route with a literal first segment, keyed by all of them.
                let mut statics = Group::default();
                for p in &self.0 {
                    match &p.first {
                        Some(first) => {
                            if !statics.keys.contains(first) {
                                statics.keys.push(first.clone());
                            }
                            statics.add(p.route, &p.pattern);
                        }
                        None => always.add(p.route, &p.pattern),
                    }
                }
                if !statics.patterns.is_empty() {
                    groups.push(statics);
                }
            }
            Layout::AnySegment => {
                // The rarest segment: the fewer routes share a key, the fewer a path carrying
                // it has to check.
                let mut count: HashMap<&str, usize> = HashMap::new();
                for p in &self.0 {
                    for (l, _) in &p.literals {
                        *count.entry(l.as_str()).or_default() += 1;
                    }
                }
                let mut routes = Vec::new();
                let mut inexact = Vec::new();
                for p in &self.0 {
                    let key = p.literals.iter().min_by_key(|(l, _)| (count[l.as_str()], l.len()));
                    match (&p.node, key) {
                        // items[0] is `\A`, items[1 + i] the node of spec[i], then the end anchor.
                        (Node::Concat(items), Some((key, at))) if at + 2 < items.len() => {
                            let (before, after) = (&items[..at + 1], &items[at + 2..]);
                            let (prefix, prefix_widened) = split_prefix(before);
                            let suffix = translate(&Node::Concat(after.to_vec()));
                            if prefix_widened || !suffix.widenings.is_empty() {
                                inexact.push(p.route);
                            }
                            let slashes = [slashes(before), slashes(after)];
                            routes.push(SplitRoute { route: p.route, key: key.clone(), prefix, suffix: suffix.pattern, slashes });
                        }
                        _ => always.add(p.route, &p.pattern),
                    }
                }
                split = Some(Split { routes, inexact });
            }
        }
        if !always.patterns.is_empty() {
            groups.push(always);
        }
        (groups, split)
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

/// Whether [`Parts::compile`] also writes the DFA patterns (a fresh build) or not (a load:
/// the automata come from the artifact).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Build,
    Load,
}

/// Parses a route's requirements (memoized across routes, which mostly share them).
struct RequirementCache {
    parsed: HashMap<(String, u32), (Node, Vec<Inexpressible>)>,
    /// Widen inexpressible constructs for a [`RegexHost`] instead of refusing them.
    host_regex: bool,
}

impl RequirementCache {
    fn new(host_regex: bool) -> Self {
        RequirementCache { parsed: HashMap::new(), host_regex }
    }

    /// Each requirement's node, and the constructs only Ruby can decide (with their parameter).
    #[allow(clippy::type_complexity)]
    fn get(&mut self, index: usize, def: &RouteDef) -> Result<(HashMap<String, Node>, Vec<(String, Inexpressible)>), CompileError> {
        let mut out = HashMap::new();
        let mut inexpressible = Vec::new();
        for (param, requirement) in &def.requirements {
            let node = match requirement {
                Requirement::Literal { literal } => Node::literal(literal.as_bytes()),
                Requirement::Regex { source, options } => {
                    let key = (source.clone(), *options);
                    if !self.parsed.contains_key(&key) {
                        let parsed = parse_as_allowed(source, *options, self.host_regex).map_err(|source| CompileError::Requirement {
                            index,
                            spec: def.path.clone(),
                            param: param.clone(),
                            source,
                        })?;
                        self.parsed.insert(key.clone(), parsed);
                    }
                    let (node, found) = &self.parsed[&key];
                    inexpressible.extend(found.iter().map(|c| (param.clone(), c.clone())));
                    node.clone()
                }
            };
            out.insert(param.clone(), node);
        }
        Ok((out, inexpressible))
    }
}

/// A route's parsed spec, its regex, and what only Ruby's `Regexp` can decide.
type RouteRegex = (Vec<journey::SpecNode>, Node, Option<Box<HostRegex>>);

/// The full regex of a route, as Journey builds it, and what only Ruby's `Regexp` can decide.
fn route_node(index: usize, def: &RouteDef, cache: &mut RequirementCache) -> Result<RouteRegex, CompileError> {
    let spec = journey::parse_spec(&def.path).map_err(|source| CompileError::Spec { index, spec: def.path.clone(), source })?;
    let (requirements, inexpressible) = cache.get(index, def)?;
    let anchoring = if def.mounted {
        journey::Anchoring::Mounted
    } else if journey::is_simulator_route(&spec, &|name| requirements.contains_key(name)) {
        journey::Anchoring::Simulator
    } else {
        journey::Anchoring::Regex
    };
    let host = (!inexpressible.is_empty()).then(|| {
        let ruby = |name: &str| def.requirements.get(name).map(journey::ruby_requirement);
        Box::new(HostRegex {
            source: journey::ruby_source(&spec, anchoring, &ruby),
            requirements: journey::param_names(&spec).iter().map(|name| ruby(name)).collect(),
            constructs: inexpressible,
        })
    });
    let literals = match def.encoded_literals_after.as_deref() {
        None => journey::Literals::Plain,
        Some("" | "/") => journey::Literals::Encoded { after: 0 },
        Some(mount) => {
            let mount = journey::parse_spec(mount).map_err(|source| CompileError::Spec { index, spec: mount.to_string(), source })?;
            if !spec.starts_with(&mount) {
                return Err(CompileError::Table(format!("route {index}: encoded_literals_after is not the start of {:?}", def.path)));
            }
            journey::Literals::Encoded { after: mount.len() }
        }
    };
    // A name used twice (`/page/*id(.:format).:format`) has its requirement at every occurrence.
    let node = journey::route_regex_with(&spec, anchoring, literals, &mut |name| requirements.get(name).cloned());
    Ok((spec, node, host))
}

impl Parts {
    fn compile(mut routes: Vec<RouteDef>, mode: Mode, host_regex: bool) -> Result<Parts, CompileError> {
        order_routes(&mut routes)?;
        let mut cache = RequirementCache::new(host_regex);
        let mut matcher_ids: HashMap<String, u32> = HashMap::new();
        let mut matchers: Vec<LazyMatcher> = Vec::new();
        let mut pending = Pending::default();
        let mut run_sets = crate::shared_runs::RunSets::default(); // reserved-word lists, one copy each
        let mut compiled: Vec<CompiledRoute> = Vec::with_capacity(routes.len());

        for (index, def) in routes.into_iter().enumerate() {
            let verbs = Verbs::parse(&def.verb).ok_or_else(|| CompileError::Verb { index, verb: def.verb.clone() })?;
            // Routes with the same spec, requirements and anchoring share one regex.
            let key = format!("{}\0{}\0{}", def.path, serde_json::to_string(&def.requirements).unwrap_or_default(), def.mounted);
            let known = matcher_ids.get(&key).copied();
            let (spec, node, host_regex) = match (known, mode) {
                // A load validates every definition once, but builds regexes lazily.
                (Some(id), Mode::Load) => {
                    let spec = journey::parse_spec(&def.path).map_err(|source| CompileError::Spec { index, spec: def.path.clone(), source })?;
                    let owner = matchers[id as usize].route as usize;
                    (spec, None, compiled[owner].host_regex.clone())
                }
                (None, Mode::Load) => {
                    let (spec, _, host) = route_node(index, &def, &mut cache)?;
                    (spec, None, host)
                }
                (_, Mode::Build) => {
                    let (spec, node, host) = route_node(index, &def, &mut cache)?;
                    (spec, Some(node), host)
                }
            };
            let params = journey::param_names(&spec);
            let widenings = match &node {
                Some(node) => {
                    let mut translation = translate(node);
                    if def.mounted {
                        // A mount is a prefix: the automaton reports matches that end where
                        // the path ends, so it takes the rest of the path too.
                        translation.pattern.push_str("(?s-u:.*)");
                    }
                    pending.0.push(PendingRoute {
                        route: index as u32,
                        pattern: translation.pattern,
                        // A literal that may come percent-encoded is no key segment.
                        first: static_first_segment(&spec, def.mounted || def.encoded_literals_after.is_some()),
                        literals: literal_segments(&spec, def.mounted || def.encoded_literals_after.is_some()),
                        node: node.clone(),
                    });
                    let mut widenings = translation.widenings;
                    if let Some(host) = &host_regex {
                        for (param, c) in &host.constructs {
                            widenings.push(Widening {
                                construct: format!("{} in '{param}'", c.construct),
                                action: "any bytes in the DFA; confirmed by Ruby's Regexp".into(),
                            });
                        }
                    }
                    widenings
                }
                None => Vec::new(),
            };
            let matcher = match known {
                Some(id) => id,
                None => {
                    let id = matchers.len() as u32;
                    let cell = OnceLock::new();
                    if let Some(node) = node {
                        let _ = cell.set(Matcher::new_sharing(node, params.len(), &mut run_sets));
                    }
                    matchers.push(LazyMatcher { route: index as u32, cell });
                    matcher_ids.insert(key, id);
                    id
                }
            };
            compiled.push(CompiledRoute { index, def, verbs, params, matcher, widenings, host_regex });
        }
        Ok(Parts { routes: compiled, matchers, pending, run_sets })
    }

    fn finish(self, automata: Vec<Automaton>, around: Option<AroundKey>, layout: Layout, options: &BuildOptions) -> Result<Classifier, CompileError> {
        let mut keyed = rustc_hash::FxHashMap::default();
        let mut always = Vec::new();
        for (i, a) in automata.iter().enumerate() {
            if a.keys.is_empty() {
                always.push(i as u32);
            }
            for key in &a.keys {
                if keyed.insert(key.as_bytes().into(), i as u32).is_some() {
                    return Err(CompileError::Automaton(format!("the key segment {key:?} selects two automata")));
                }
            }
        }
        let run_sets = std::sync::Mutex::new(self.run_sets);
        Ok(Classifier { routes: self.routes, matchers: self.matchers, automata, layout, keyed, always, around, max_path_len: options.max_path_len, run_sets })
    }
}

/// The literal first segment of a spec, when every path the route matches starts with
/// `/literal` followed by `/`, `.` or the end (`/groups/*id`, `/dashboard(.:format)`, `/`).
fn static_first_segment(spec: &[journey::SpecNode], mounted: bool) -> Option<String> {
    use journey::SpecNode::*;
    if mounted {
        return None;
    }
    match spec {
        [Slash] => Some(String::new()),
        [Slash, Literal(text), rest @ ..] => {
            let separated = match rest.first() {
                None | Some(Slash) | Some(Dot) => true,
                Some(Group(inner)) => matches!(inner.first(), Some(Slash) | Some(Dot)),
                _ => false,
            };
            separated.then(|| text.clone())
        }
        _ => None,
    }
}

/// The DFA pattern(s) for the run of a route's regex before its key: split around its glob if
/// it has exactly one default glob (see [`AroundKey`]), else whole; and whether the
/// translation widened anything.
fn split_prefix(items: &[Node]) -> (Part, bool) {
    let globs: Vec<usize> = (0..items.len()).filter(|&i| is_default_glob(&items[i])).collect();
    match globs[..] {
        [glob] => {
            let head = translate(&Node::Concat(items[..glob].to_vec()));
            let tail = translate(&Node::Concat(items[glob + 1..].to_vec()));
            let widened = !head.widenings.is_empty() || !tail.widenings.is_empty();
            (Part::Glob { head: head.pattern, tail: tail.pattern }, widened)
        }
        _ => {
            let whole = translate(&Node::Concat(items.to_vec()));
            let widened = !whole.widenings.is_empty();
            (Part::Whole(whole.pattern), widened)
        }
    }
}

/// How many `/` a match of the sequence `items` can hold (bounds, `u16::MAX` for none).
fn slashes(items: &[Node]) -> Slashes {
    fn class(set: &crate::ruby_regex::ast::ByteSet) -> (u32, u32) {
        if !set.contains(b'/') {
            (0, 0)
        } else if *set == crate::ruby_regex::ast::ByteSet::single(b'/') {
            (1, 1)
        } else {
            (0, 1)
        }
    }
    const UNBOUNDED: u32 = u32::MAX;
    /// The bounds of parts matched one after another.
    fn sum(parts: impl Iterator<Item = (u32, u32)>) -> (u32, u32) {
        parts.fold((0, 0), |(a, b), (c, d)| (a.saturating_add(c), b.saturating_add(d)))
    }
    fn bounds(node: &Node) -> (u32, u32) {
        match node {
            Node::Empty | Node::Assert(_) | Node::Look { .. } => (0, 0),
            Node::Class(set) => class(set),
            Node::Seq(sets) => sum(sets.iter().map(class)),
            Node::Concat(items) => sum(items.iter().map(bounds)),
            Node::Alt(items) => items.iter().map(bounds).reduce(|(a, b), (c, d)| (a.min(c), b.max(d))).unwrap_or((0, 0)),
            Node::Repeat { node, min, max, .. } => {
                let (lo, hi) = bounds(node);
                let hi = match (hi, max) {
                    (0, _) => 0,
                    (hi, Some(max)) => hi.saturating_mul(*max),
                    (_, None) => UNBOUNDED,
                };
                (lo.saturating_mul(*min), hi)
            }
            Node::Atomic(node) | Node::Capture { node, .. } => bounds(node),
            Node::SeqAlt(_) => (0, UNBOUNDED),
        }
    }
    let (min, max) = sum(items.iter().map(bounds));
    Slashes { min: min.min(u16::MAX as u32 - 1) as u16, max: if max >= u16::MAX as u32 { u16::MAX } else { max as u16 } }
}

/// True for a `*glob` parameter with Journey's default regex (one or more bytes, no newline),
/// which [`AroundKey`] matches by position instead of by automaton.
fn is_default_glob(node: &Node) -> bool {
    matches!(node, Node::Capture { node, .. } if **node == journey::default_glob_regex(false) || **node == journey::default_glob_regex(true))
}

/// The literal segments every path a route matches contains, with their index in the spec:
/// a top-level literal right after a `/` and followed by `/`, `.`, the end, or an optional
/// group starting with one of those (`issues` in `/*namespace_id/:project_id/-/issues(.:format)`),
/// so that in a path it is a whole segment after a `/` (what [`AroundKey`] looks up).
/// Literals inside optional groups are not required; mounted apps match any suffix.
fn literal_segments(spec: &[journey::SpecNode], mounted: bool) -> Vec<(String, usize)> {
    use journey::SpecNode::*;
    if mounted {
        return Vec::new();
    }
    let mut out: Vec<(String, usize)> = Vec::new();
    for (i, node) in spec.iter().enumerate() {
        let Literal(text) = node else { continue };
        let after_slash = i > 0 && matches!(spec[i - 1], Slash);
        let separated = match spec.get(i + 1) {
            None | Some(Slash) | Some(Dot) => true,
            Some(Group(inner)) => matches!(inner.first(), Some(Slash) | Some(Dot)),
            _ => false,
        };
        if after_slash && separated && !text.is_empty() && !text.contains(['/', '.', '\n']) && !out.iter().any(|(t, _)| t == text) {
            out.push((text.clone(), i));
        }
    }
    out
}

/// A normalized path's first segment, up to the next `/` or `.` (literals never contain a dot),
/// or a newline: `/search\n` must still reach `/search(.:format)`, whose `\Z` allows a final one.
fn first_segment(path: &[u8]) -> &[u8] {
    let rest = path.strip_prefix(b"/").unwrap_or(path);
    let end = rest.iter().position(|&b| b == b'/' || b == b'.' || b == b'\n').unwrap_or(rest.len());
    &rest[..end]
}

/// Candidate route ids, on the stack while there are few.
type Candidates = InlineVec<u32, INLINE_CANDIDATES>;

/// Orders routes by `index` when every route has one (duplicates refused), else keeps input order.
fn order_routes(routes: &mut [RouteDef]) -> Result<(), CompileError> {
    if routes.iter().all(|r| r.index.is_some()) {
        routes.sort_by_key(|r| r.index);
        for pair in routes.windows(2) {
            if pair[0].index == pair[1].index {
                return Err(CompileError::Table(format!("two routes have index {}", pair[0].index.unwrap_or(0))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    fn literals(spec: &str, mounted: bool) -> Vec<String> {
        super::literal_segments(&journey::parse_spec(spec).unwrap(), mounted).into_iter().map(|(l, _)| l).collect()
    }

    #[test]
    fn slash_bounds_hold_every_match() {
        let bounds = |spec: &str| {
            let def = RouteDef::new("GET", spec);
            let (_, node, _) = route_node(0, &def, &mut RequirementCache::new(false)).unwrap();
            let Node::Concat(items) = node else { unreachable!("a route's regex is a sequence") };
            let s = slashes(&items);
            (s.min, s.max)
        };
        assert_eq!(bounds("/a/:b"), (2, 2));
        assert_eq!(bounds("/a(/:b)(.:format)"), (1, 2));
        assert_eq!(bounds("/*glob/x"), (2, u16::MAX));
        // A requirement that admits `/` counts as one or none per byte it may match.
        let def = RouteDef::new("GET", "/:id").regex_requirement("id", "[a-z/]{1,3}", 0);
        let (_, node, _) = route_node(0, &def, &mut RequirementCache::new(false)).unwrap();
        assert_eq!(slashes(std::slice::from_ref(&node)), Slashes { min: 1, max: 4 });
    }

    #[test]
    fn key_segments_are_literals_every_matching_path_contains() {
        assert_eq!(literals("/*namespace_id/:project_id/-/issues(.:format)", false), ["-", "issues"]);
        assert_eq!(literals("/groups/*id/-/edit", false), ["groups", "-", "edit"]);
        assert_eq!(literals("(/:locale)/help/:page", false), ["help"]);
        assert!(literals("/", false).is_empty());
        let at = super::literal_segments(&journey::parse_spec("/*namespace_id/:project_id/-/issues").unwrap(), false);
        assert_eq!(at, [("-".to_string(), 5), ("issues".to_string(), 7)]);
        // Not delimited by separators, optional, or under a mount: not keys.
        assert!(literals("/:username", false).is_empty());
        assert!(literals("/foo-:id/bar-:x", false).is_empty());
        assert!(literals("/x(/edit)", false) == ["x"]);
        assert!(literals("/api/v4", true).is_empty());
    }
    use super::*;

    fn table() -> Classifier {
        Classifier::new(vec![
            RouteDef::new("GET", "/").to("root", "index"),
            RouteDef::new("GET", "/-/profile(.:format)").to("profiles", "show"),
            RouteDef::new("GET", "/groups/*id(.:format)").regex_requirement("format", "(html|json|atom)", 0),
            RouteDef::new("HEAD", "/ping").to("ping", "head"),
            RouteDef::new("", "/ping").to("ping", "any"),
            RouteDef::new("GET|POST", "/:username(.:format)")
                .regex_requirement("username", r"(?!(admin|groups)/)[a-zA-Z0-9_.\-]+(?<!\.git|\.atom)", 1)
                .dynamic(),
            RouteDef::new("GET", "/*namespace_id/:project_id(.:format)"),
        ])
        .unwrap()
    }

    fn params(m: &Match<'_, '_>) -> Vec<(String, String)> {
        m.params().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(&v).into_owned())).collect()
    }

    #[test]
    fn classify_skips_keyed_routes_only_after_a_route_that_certainly_answers() {
        // Large-table layout: `issues` and `edit` routes are matched around their key segment,
        // the catch-alls by the automaton for routes without a key, which runs first.
        let options = BuildOptions { engine: EngineConfig { kind: EngineKind::Lazy, ..EngineConfig::default() }, ..BuildOptions::default() };
        let c = Classifier::build(
            vec![
                RouteDef::new("GET", "/*namespace_id/:project_id").dynamic(),
                RouteDef::new("POST", "/:group/:id"),
                RouteDef::new("GET", "/:group/issues"),
                RouteDef::new("GET", "/*ns/:p(.:format)"),
                RouteDef::new("GET", "/x/issues"),
                RouteDef::new("HEAD", "/:a/edit"),
            ],
            &options,
        )
        .unwrap();
        assert_eq!(c.layout, Layout::AnySegment);
        let pick = |method: &str, path: &str, accept: bool| c.classify_with(method, path.as_bytes(), |_| accept).unwrap().map(|m| m.route_index());
        // Route 0 would answer, but its dynamic constraint says no: the keyed route 2 is next.
        assert_eq!(pick("GET", "/x/issues", false), Some(2));
        assert_eq!(pick("GET", "/x/issues", true), Some(0));
        // Route 1 matches but not for GET, so it does not cut the search short.
        assert_eq!(pick("POST", "/x/issues", false), Some(1));
        // Route 3 answers for sure: route 4 (keyed, later) is never needed.
        assert_eq!(pick("GET", "/a/b/issues", false), Some(3));
        // HEAD looks for routes naming HEAD among every candidate first.
        assert_eq!(pick("HEAD", "/x/edit", false), Some(5));
        // matches() still lists every route, keyed ones after the certain answer included.
        let all: Vec<usize> = c.matches("GET", b"/x/issues").unwrap().iter().map(Match::route_index).collect();
        assert_eq!(all, [0, 2, 3, 4]);
    }

    #[test]
    fn first_match_wins_with_params() {
        let c = table();
        let m = c.classify("GET", b"/groups/gitlab-org/sub.json").unwrap().unwrap();
        assert_eq!(m.route_index(), 2);
        assert_eq!(params(&m), [("id".into(), "gitlab-org/sub".into()), ("format".into(), "json".into())]);
        let m = c.classify("GET", b"//Admin/").unwrap().unwrap();
        assert_eq!(m.route_index(), 5);
        assert_eq!(params(&m), [("username".into(), "Admin".into())]);
        assert!(c.classify("DELETE", b"/x").unwrap().is_none());
    }

    #[test]
    fn head_prefers_explicit_head_routes_then_get() {
        let c = table();
        assert_eq!(c.classify("HEAD", b"/ping").unwrap().unwrap().route_index(), 3);
        assert_eq!(c.classify("GET", b"/ping").unwrap().unwrap().route_index(), 4);
        assert_eq!(c.classify("HEAD", b"/someone").unwrap().unwrap().route_index(), 5);
        assert_eq!(c.classify("HEAD", b"/-/profile").unwrap().unwrap().route_index(), 1);
    }

    /// Journey's `match_head_routes` keeps the routes drawn for HEAD whose request conditions
    /// hold; when a HEAD route's `subdomain:` fails, HEAD is answered by the GET routes. Its
    /// constraint objects, asked later at `serve`, do not send the request back to GET.
    #[test]
    fn head_routes_with_failing_request_conditions_fall_back_to_get() {
        let c = Classifier::new(vec![
            RouteDef::new("HEAD", "/x").conditions(),
            RouteDef::new("GET", "/x"),
            RouteDef::new("HEAD", "/y").dynamic(),
            RouteDef::new("GET", "/y"),
        ])
        .unwrap();
        let mut questions = Vec::new();
        let mut pick = |path: &str, conditions: bool, constraints: bool| {
            c.classify_with("HEAD", path.as_bytes(), |m| {
                questions.push((m.route_index(), m.asks_request_conditions_only()));
                if m.asks_request_conditions_only() {
                    conditions
                } else {
                    constraints
                }
            })
            .unwrap()
            .map(|m| m.route_index())
        };
        assert_eq!(pick("/x", true, true), Some(0));
        assert_eq!(pick("/x", false, true), Some(1));
        // Conditions hold but the route's constraint object says no: no fallback to GET.
        assert_eq!(pick("/x", true, false), None);
        // A HEAD route with constraint objects only is chosen for the HEAD list without asking.
        assert_eq!(pick("/y", false, false), None);
        assert_eq!(questions, [(0, true), (0, false), (0, true), (0, true), (0, false), (2, false)]);
        assert_eq!(c.classify("HEAD", b"/x").unwrap().map(|m| m.route_index()), Some(0));
    }

    #[test]
    fn dynamic_constraints_are_asked_in_order() {
        let c = table();
        let mut asked = Vec::new();
        let m = c
            .classify_with("GET", b"/gitlab-org", |m| {
                asked.push(m.route_index());
                false
            })
            .unwrap();
        assert_eq!(asked, [5]);
        assert!(m.is_none(), "no later route matches a single segment");
        let all = c.matches("GET", b"/gitlab-org/gitlab").unwrap();
        assert_eq!(all.iter().map(Match::route_index).collect::<Vec<_>>(), [6]);
        let all = c.matches("GET", b"/gitlab-org/gitlab.git").unwrap();
        assert_eq!(all.len(), 1, "the username look-behind refuses .git; the project route takes it as a format");
        assert_eq!(all[0].param("format").as_deref(), Some(&b"git"[..]));
    }

    /// Rails accepts a parameter name twice in one spec; its path parameters Hash keeps the last
    /// capture that matched (an optional later one that did not match leaves the earlier).
    #[test]
    fn a_repeated_parameter_keeps_the_last_value_that_matched() {
        let c = Classifier::new(vec![RouteDef::new("GET", "/downloads/:id/:id.tar"), RouteDef::new("GET", "/a/:id(/:id)")]).unwrap();
        let m = c.classify("GET", b"/downloads/1/2.tar").unwrap().unwrap();
        assert_eq!((m.param("id").as_deref(), m.params().count()), (Some(&b"2"[..]), 1));
        let m = c.classify("GET", b"/a/1").unwrap().unwrap();
        assert_eq!(m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect::<Vec<_>>(), [("id".to_string(), b"1".to_vec())]);
        let m = c.classify("GET", b"/a/1/2").unwrap().unwrap();
        assert_eq!(m.param("id").as_deref(), Some(&b"2"[..]));
        // Each occurrence carries the name's requirement (`format: true` on a formatted glob).
        let c = Classifier::new(vec![RouteDef::new("GET", "/page/*id(.:format).:format").regex_requirement("format", ".+", 0)]).unwrap();
        let m = c.classify("GET", b"/page/foo/bar.json.json/extra").unwrap().unwrap();
        assert_eq!(m.param("format").as_deref(), Some(&b"json/extra"[..]));
    }

    /// A mounted app may pass (`X-Cascade: pass`): the host is asked, and when it declines the
    /// routes after the mount are tried, as Rails would after a cascade.
    #[test]
    fn mounted_apps_are_asked_like_constraints() {
        let c = Classifier::new(vec![RouteDef::new("", "/").mounted(), RouteDef::new("GET", "/help(.:format)").to("help", "index")]).unwrap();
        assert_eq!(c.classify("GET", b"/help").unwrap().unwrap().route_index(), 0);
        let mut asked = Vec::new();
        let m = c
            .classify_with("GET", b"/help", |m| {
                asked.push(m.route_index());
                false
            })
            .unwrap();
        assert_eq!((asked, m.map(|m| m.route_index())), (vec![0], Some(1)));
        assert!(c.classify_with("GET", b"/api/v4", |m| m.route_index() == 0).unwrap().is_some_and(|m| m.route_index() == 0));
    }

    /// A requirement only Ruby can decide: refused by default (naming route, parameter and
    /// construct); with `host_regex`, widened in the automaton and decided by the regex host,
    /// whose spans become the parameters. Without a host, classifying such a route is an error.
    #[test]
    fn routes_only_ruby_can_decide_are_refused_or_asked_of_the_regex_host() {
        let routes = || {
            vec![
                RouteDef::new("GET", "/r/:id(.:format)").regex_requirement("id", r"(a|b)\1", 0),
                RouteDef::new("GET", "/r/:other").regex_requirement("other", "[a-z]+", 0),
            ]
        };
        let err = Classifier::new(routes()).unwrap_err();
        assert_eq!(err.route_index(), Some(0));
        assert!(err.to_string().contains("requirement for 'id'") && err.to_string().contains("back-references"), "{err}");

        let options = BuildOptions { host_regex: true, ..BuildOptions::default() };
        let c = Classifier::build(routes(), &options).unwrap();
        let host = c.routes()[0].host_regex().expect("route 0 needs Ruby");
        assert_eq!(host.source, r"\A/r/((?-mix:(a|b)\1))(?:\.([^/.?]+))?\Z");
        assert_eq!(host.requirements, [Some(r"(?-mix:(a|b)\1)".to_string()), None]);
        assert!(c.routes()[1].host_regex().is_none());
        // A stand-in for Ruby: "aa" and "bb" match, with `.json` as a format.
        let mut asked = Vec::new();
        let mut ruby = |route: &CompiledRoute, path: &[u8]| -> Result<Option<Spans>, ClassifyError> {
            asked.push((route.index(), String::from_utf8_lossy(path).into_owned()));
            let id = &path[3..5];
            Ok((id[0] == id[1] && path.len() >= 5 && (path.len() == 5 || &path[5..] == b".json"))
                .then(|| vec![Some((3, 5)), (path.len() > 5).then_some((6, path.len()))]))
        };
        let pick = |c: &Classifier, path: &str, ruby: &mut RegexHost<'_>| {
            c.classify_with_regex("GET", path.as_bytes(), |_| true, ruby).unwrap().map(|m| (m.route_index(), params(&m)))
        };
        assert_eq!(pick(&c, "/r/aa.json", &mut ruby), Some((0, vec![("id".into(), "aa".into()), ("format".into(), "json".into())])));
        assert_eq!(pick(&c, "/r/ab", &mut ruby), Some((1, vec![("other".into(), "ab".into())])));
        assert_eq!(asked, [(0, "/r/aa.json".to_string()), (0, "/r/ab".to_string())]);
        assert!(matches!(c.classify("GET", b"/r/aa"), Err(ClassifyError::NeedsRuby { route: 0, .. })));
        // Spans outside the path are the host's bug, not an answer.
        let mut liar = |_: &CompiledRoute, _: &[u8]| -> Result<Option<Spans>, ClassifyError> { Ok(Some(vec![Some((3, 99)), None])) };
        assert!(c.classify_with_regex("GET", b"/r/aa", |_| true, &mut liar).is_err());
    }

    #[test]
    fn bad_requests_are_errors() {
        let c = table();
        assert!(matches!(c.classify("get", b"/"), Err(ClassifyError::InvalidMethod(_))));
        let long = vec![b'a'; DEFAULT_MAX_PATH_LEN + 1];
        assert!(matches!(c.classify("GET", &long), Err(ClassifyError::PathTooLong { .. })));
    }

    #[test]
    fn bad_routes_name_index_and_position() {
        let err = Classifier::new(vec![RouteDef::new("GET", "/ok"), RouteDef::new("GET", "/x/:id").regex_requirement("id", "a(b", 0)]).unwrap_err();
        assert_eq!(err.route_index(), Some(1));
        assert_eq!(err.position(), Some(1));
        assert!(err.to_string().contains("route 1"), "{err}");
        let err = Classifier::new(vec![RouteDef::new("GOT it", "/")]).unwrap_err();
        assert!(err.to_string().contains("invalid verb"), "{err}");
    }
}
