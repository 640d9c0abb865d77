//! The build pipeline: route definitions → exact matchers, DFA patterns, and the automata
//! they are split between (see [`Layout`]).

use super::{Automaton, BuildOptions, Classifier, CompiledRoute, HostRegex, Layout, LazyMatcher};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use regex_syntax::hir::Hir;

use crate::around_key::{AroundKey, Part, Slashes, SplitRoute};
use crate::engine::{Engine, EngineConfig, EngineKind};
use crate::error::{AutomatonError, CompileError};
use crate::first_segment::{literal_first_segment, FirstSegments, RouteShape};
use crate::journey;
use crate::matcher::Matcher;
use crate::routes::{Requirement, RouteDef, Verbs};
use crate::ruby_regex::ast::Node;
use crate::ruby_regex::hir::{mounted_to_hir, to_hir};
use crate::ruby_regex::parse::{parse_as_allowed, Inexpressible};
use crate::ruby_regex::translate::{self, translate, translate_seq, Translation, Widening};

impl Classifier {
    /// Compiles `routes` (in definition order, or ordered by their `index`).
    ///
    /// A route that cannot be compiled is named, with the byte at fault:
    ///
    /// ```
    /// use cells_learn::{Classifier, CompileError, RouteDef};
    ///
    /// let err = Classifier::new(vec![RouteDef::new("GET", "/-/profile"), RouteDef::new("GET", "/projects/:id(")]).unwrap_err();
    /// assert!(matches!(err, CompileError::Spec { index: 1, .. }));
    /// assert_eq!(err.route_index(), Some(1));
    /// ```
    pub fn new(routes: Vec<RouteDef>) -> Result<Classifier, CompileError> {
        Self::build(routes, &BuildOptions::default())
    }

    /// Compiles `routes` with `options` (which automaton, the path length limit, whether a host
    /// decides the requirements only Ruby's `Regexp` can).
    pub fn build(routes: Vec<RouteDef>, options: &BuildOptions) -> Result<Classifier, CompileError> {
        let layout = match options.engine.kind {
            EngineKind::Dense => Layout::FirstSegment,
            EngineKind::Lazy => Layout::AnySegment,
            EngineKind::Auto | EngineKind::SegmentTree if routes.len() > options.engine.dense_max_patterns => Layout::AnySegment,
            EngineKind::Auto | EngineKind::SegmentTree => Layout::FirstSegment,
        };
        if let Some(classifier) = Self::build_tree_only(&routes, layout, options)? {
            return Ok(classifier);
        }
        // Large tables get lazy DFAs: GitLab's templates, split around their keys, build in a
        // fraction of a second; dense DFAs over them (keyed groups, an earlier layout) took
        // seconds and far more memory for no faster a search.
        let engine = match layout {
            Layout::FirstSegment => options.engine,
            Layout::AnySegment => EngineConfig { kind: EngineKind::Lazy, ..options.engine },
        };
        let dispatches = layout == Layout::AnySegment && options.engine.first_segment_dispatch;
        let mut parts = Parts::compile(routes, Mode::Build { dispatches }, options.host_regex)?;
        let pool = options.parallel.then(build_pool).flatten();
        let first_segments = parts.with_matchers_built(pool.as_ref(), |pending, parallel| match dispatches {
            true => pending.first_segments(&options.engine, parallel),
            false => Ok(None),
        })?;
        // The routes the dispatch selects alone leave the other automata.
        let (pending, dispatched): (Vec<_>, Vec<_>) = match first_segments {
            Some(_) => std::mem::take(&mut parts.pending.0).into_iter().partition(|p| p.dispatch_first.is_none()),
            None => (std::mem::take(&mut parts.pending.0), Vec::new()),
        };
        let pending = Pending(pending);
        let (groups, split) = pending.split(layout);
        if let Some(split) = &split {
            for route in &split.inexact {
                // Never happens with today's translator (it widens the same nodes either
                // way), but a split that widens must not let the DFA's word stand alone.
                let w = &mut parts.routes[*route as usize].widenings;
                if w.is_empty() {
                    w.push(Widening { construct: "split at its key segment".into(), action: "checked exactly".into() });
                }
            }
        }
        // The routes' regexes are done with: freeing them (a tree per route) takes about as
        // long as the automata around the keys take to build, so both at once on the pool.
        let retired = (pending, dispatched);
        let ((), around) = join(pool.as_ref(), move || drop(retired), || split.map(|split| AroundKey::build(split.routes, &engine)).transpose());
        let around = around.map_err(CompileError::Automaton)?;
        let automata = groups
            .into_iter()
            .map(|g| {
                let engine = Engine::build(&g.hirs, &engine).map_err(CompileError::Automaton)?;
                Ok(Automaton { engine, pattern_routes: g.pattern_routes, keys: g.keys })
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        let tree = options.engine.segment_tree.then(|| super::segment_tree::SegmentTree::of(&parts.routes)).flatten();
        parts.finish(automata, around, first_segments, layout, options, tree)
    }

    /// A table of plain routes, under `Auto` or [`EngineKind::SegmentTree`]: compiled with its
    /// segment tree and no automaton, which the tree's search never reads (on GitHub's 315 REST
    /// routes the dense DFA was ~1.4 MB of the classifier's ~1.5 MB and most of its build).
    /// `None`: the table gets automata.
    fn build_tree_only(routes: &[RouteDef], layout: Layout, options: &BuildOptions) -> Result<Option<Classifier>, CompileError> {
        let wanted = match options.engine.kind {
            EngineKind::SegmentTree => true,
            EngineKind::Auto => options.engine.segment_tree,
            EngineKind::Dense | EngineKind::Lazy => false,
        };
        // A table with a glob, a format or a requirement (every GitLab table) is told apart
        // by its specs alone, before any compilation.
        if !wanted || (options.engine.kind == EngineKind::Auto && !routes.iter().all(super::segment_tree::could_be_plain)) {
            return Ok(None);
        }
        let mut parts = Parts::compile(routes.to_vec(), Mode::Build { dispatches: false }, options.host_regex)?;
        let Some(tree) = super::segment_tree::SegmentTree::of(&parts.routes) else {
            if options.engine.kind == EngineKind::SegmentTree {
                let route = parts.routes.iter().find(|r| !super::segment_tree::is_plain(r)).expect("a table without a tree has a route that is not plain");
                return Err(CompileError::Automaton(AutomatonError::NotPlain { route: route.index, spec: route.def.path.clone() }));
            }
            return Ok(None);
        };
        parts.with_matchers_built(None, |_, _| ());
        parts.pending = Pending::default();
        parts.finish(Vec::new(), None, None, layout, options, Some(tree)).map(Some)
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
            return Err(CompileError::Automaton(AutomatonError::ForeignWidenings));
        }
        for (route, w) in parts.routes.iter_mut().zip(widenings) {
            route.widenings = w;
        }
        let route_count = parts.routes.len() as u32;
        for a in &automata {
            if a.engine.pattern_len() != a.pattern_routes.len() || a.pattern_routes.iter().flatten().any(|&r| r >= route_count) {
                return Err(CompileError::Automaton(AutomatonError::ForeignAutomata));
            }
        }
        let tree = options.engine.segment_tree.then(|| super::segment_tree::SegmentTree::of(&parts.routes)).flatten();
        parts.finish(automata, None, None, layout, options, tree)
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
    /// The DFA pattern's text: which routes share a pattern (and so a pattern id) is decided
    /// on it; the automata are built from [`PendingRoute::hir`]. None for a route the
    /// first-segment dispatch takes, which tells patterns apart by their regexes.
    pattern: Option<String>,
    /// A mount: the pattern matches a prefix of the path (`(?s-u:.*)\z` follows the regex).
    mounted: bool,
    /// The spec's first segment, if literal (see [`static_first_segment`]).
    first: Option<String>,
    /// Every literal segment every matching path contains, with its index in the spec (see
    /// [`literal_segments`]).
    literals: Vec<(String, usize)>,
    /// The route's regex: `\A`, one node per spec node, then the end anchor.
    node: Node,
    /// Its literal first segment, which selects it alone (see [`crate::first_segment`]).
    dispatch_first: Option<String>,
    /// False when Ruby's `Regexp` decides the route: `node` then has "any bytes" where Ruby
    /// has what the exact matcher cannot run.
    node_is_exact: bool,
}

/// The routes of one automaton.
#[derive(Default)]
struct Group {
    /// Each distinct pattern's HIR, by pattern id.
    hirs: Vec<Hir>,
    /// Pattern text → pattern id.
    pattern_ids: HashMap<String, u32>,
    pattern_routes: Vec<Vec<u32>>,
    keys: Vec<String>,
}

impl Group {
    fn add(&mut self, p: &PendingRoute) {
        let next = self.hirs.len() as u32;
        let pattern = p.pattern.as_ref().expect("only the routes the first-segment dispatch takes have no pattern text");
        let id = match self.pattern_ids.get(pattern) {
            Some(&id) => id,
            None => {
                self.pattern_ids.insert(pattern.clone(), next);
                self.hirs.push(p.hir());
                self.pattern_routes.push(Vec::new());
                next
            }
        };
        self.pattern_routes[id as usize].push(p.route);
    }
}

impl PendingRoute {
    /// The HIR of the route's DFA pattern (the one [`PendingRoute::pattern`] parses to).
    fn hir(&self) -> Hir {
        pattern_hir(&self.node, self.mounted)
    }
}

/// The DFA pattern of a route's regex `node`, as text, and what it widened.
pub(super) fn pattern_text(node: &Node, mounted: bool) -> Translation {
    let mut translation = translate(node);
    if mounted {
        // A mount is a prefix: the automaton reports matches that end where the path ends,
        // so it takes the rest of the path too, and only there (`\z`): without it every state
        // after the prefix is a match state, which the walks take the slow way (GitLab CE's
        // Grape API is mounted at `/`, so that was every byte of every path).
        translation.pattern.push_str("(?s-u:.*)\\z");
    }
    translation
}

/// The HIR of the DFA pattern of a route's regex `node`: what [`pattern_text`] parses to
/// (see [`crate::ruby_regex::hir`]).
pub(crate) fn pattern_hir(node: &Node, mounted: bool) -> Hir {
    if mounted {
        mounted_to_hir(node)
    } else {
        to_hir(node)
    }
}

/// Routes split around their key segment ([`Layout::AnySegment`]).
struct Split {
    routes: Vec<SplitRoute>,
    /// Routes whose split patterns widened where the whole regex did not.
    inexact: Vec<u32>,
}

impl Pending {
    /// The dispatch on first segments over these routes. The routes it selects alone (those led
    /// by a literal, `dispatch_first`) are then to leave the other automata.
    fn first_segments(&self, engine: &EngineConfig, parallel: bool) -> Result<Option<FirstSegments>, CompileError> {
        let shapes: Vec<RouteShape<'_>> = self
            .0
            .iter()
            .map(|p| RouteShape {
                route: p.route,
                pattern: p.pattern.as_deref(),
                first: p.dispatch_first.as_deref(),
                regex: &p.node,
                mounted: p.mounted,
                exact: p.node_is_exact,
            })
            .collect();
        FirstSegments::build(&shapes, engine, parallel).map_err(CompileError::Automaton)
    }

    /// The automata's routes under `layout`: the keyed group first, then the group every path
    /// searches, if any route needs it; under [`Layout::AnySegment`] keyed routes are split
    /// around their key instead.
    fn split(&self, layout: Layout) -> (Vec<Group>, Option<Split>) {
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
                            statics.add(p);
                        }
                        None => always.add(p),
                    }
                }
                if !statics.hirs.is_empty() {
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
                            let suffix = translate_seq(after);
                            if prefix_widened || !suffix.widenings.is_empty() {
                                inexact.push(p.route);
                            }
                            let slashes = [slashes(before), slashes(after)];
                            routes.push(SplitRoute { route: p.route, key: key.clone(), prefix, suffix: suffix.pattern, slashes });
                        }
                        _ => always.add(p),
                    }
                }
                split = Some(Split { routes, inexact });
            }
        }
        if !always.hirs.is_empty() {
            groups.push(always);
        }
        (groups, split)
    }
}

/// Whether [`Parts::compile`] also writes the DFA patterns (a fresh build) or not (a load:
/// the automata come from the artifact).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `dispatches`: the routes led by a literal first segment go to the first-segment
    /// dispatch, which reads their regexes, not their patterns' text.
    Build {
        dispatches: bool,
    },
    Load,
}

/// Parses a route's requirements (memoized across routes, which mostly share them).
pub(super) struct RequirementCache {
    parsed: HashMap<(String, u32), (Node, Vec<Inexpressible>)>,
    /// Widen inexpressible constructs for a [`RegexHost`](super::RegexHost) instead of refusing them.
    host_regex: bool,
    /// Keep each requirement [optimized](Node::optimized) (always, but in the tests that prove
    /// it changes nothing). GitLab's reserved-word look-aheads parse into hundreds of nodes (an
    /// alternative of byte-class sequences) and optimize into one run set: each route's regex
    /// copies its requirements, each exact matcher optimized its copy again, and copying,
    /// optimizing and dropping those trees was half of GitLab CE's build. Optimizing works
    /// bottom-up and leaves an optimized subtree as it is, so a route's regex optimizes to the
    /// same tree either way, and the automata's patterns translate to the same text.
    optimize: bool,
}

impl RequirementCache {
    pub(super) fn new(host_regex: bool) -> Self {
        RequirementCache { parsed: HashMap::new(), host_regex, optimize: true }
    }

    /// A cache that keeps requirements as parsed, for the tests that compare both forms.
    #[cfg(test)]
    pub(super) fn as_parsed(host_regex: bool) -> Self {
        RequirementCache { optimize: false, ..RequirementCache::new(host_regex) }
    }

    /// Each requirement's node, and the constructs only Ruby can decide (with their parameter).
    /// The nodes are borrowed from the cache: the route's regex copies each where its
    /// parameter appears, and a second copy per route (GitLab's reserved-word look-aheads are
    /// hundreds of nodes) was a twelfth of GitLab CE's build.
    #[allow(clippy::type_complexity)]
    fn get<'a>(&'a mut self, index: usize, def: &'a RouteDef) -> Result<(HashMap<&'a str, Cow<'a, Node>>, Vec<(String, Inexpressible)>), CompileError> {
        for (param, requirement) in &def.requirements {
            if let Requirement::Regex { source, options } = requirement {
                let key = (source.clone(), *options);
                if !self.parsed.contains_key(&key) {
                    let (node, inexpressible) = parse_as_allowed(source, *options, self.host_regex).map_err(|source| CompileError::Requirement {
                        index,
                        spec: def.path.clone(),
                        param: param.clone(),
                        source,
                    })?;
                    let node = if self.optimize { node.optimized() } else { node };
                    self.parsed.insert(key, (node, inexpressible));
                }
            }
        }
        let parsed = &self.parsed;
        let optimize = self.optimize;
        let mut out = HashMap::new();
        let mut inexpressible = Vec::new();
        for (param, requirement) in &def.requirements {
            let node = match requirement {
                Requirement::Literal { literal } => {
                    let node = Node::literal(literal.as_bytes());
                    Cow::Owned(if optimize { node.optimized() } else { node })
                }
                Requirement::Regex { source, options } => {
                    let (node, found) = &parsed[&(source.clone(), *options)];
                    inexpressible.extend(found.iter().map(|c| (param.clone(), c.clone())));
                    Cow::Borrowed(node)
                }
            };
            out.insert(param.as_str(), node);
        }
        Ok((out, inexpressible))
    }
}

/// A route's parsed spec, its regex, and what only Ruby's `Regexp` can decide.
type RouteRegex = (Vec<journey::SpecNode>, Node, Option<Box<HostRegex>>);

/// The full regex of a route, as Journey builds it, and what only Ruby's `Regexp` can decide.
pub(super) fn route_node(index: usize, def: &RouteDef, cache: &mut RequirementCache) -> Result<RouteRegex, CompileError> {
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
                return Err(CompileError::EncodedLiteralsAfter { index, spec: def.path.clone() });
            }
            journey::Literals::Encoded { after: mount.len() }
        }
    };
    // A name used twice (`/page/*id(.:format).:format`) has its requirement at every occurrence.
    let node = journey::route_regex_with(&spec, anchoring, literals, &mut |name| requirements.get(name).map(|node| Node::clone(node)));
    Ok((spec, node, host))
}

/// What makes two routes' regexes the same: their spec, requirements and anchoring.
fn same_regex(a: &RouteDef, b: &RouteDef) -> bool {
    a.path == b.path && a.requirements == b.requirements && a.mounted == b.mounted
}

/// A hash of what [`same_regex`] compares.
fn same_regex_hash(def: &RouteDef) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    (&def.path, &def.requirements, def.mounted).hash(&mut h);
    h.finish()
}

/// The threads of one build ([`BuildOptions::parallel`]), or `None` when none can be started
/// (the build then runs on the caller's thread alone). The pool ends with the build, so nothing
/// outlives it: a process forked after the build, as Puma forks its workers, has no pool threads
/// to miss. Two threads: the matchers and the automata balance on two, and each more would hold
/// another automaton's transient memory at the build's peak.
fn build_pool() -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .thread_name(|i| format!("cells-learn-build-{i}"))
        // The main thread's stack size: the matcher's compiler recurses over the regex.
        .stack_size(8 << 20)
        .build()
        .ok()
}

/// `a` and `b`, at once on `pool`, else one after the other.
fn join<A: Send, B: Send>(pool: Option<&rayon::ThreadPool>, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    match pool {
        Some(pool) => pool.join(a, b),
        None => (a(), b()),
    }
}

impl Parts {
    fn compile(mut routes: Vec<RouteDef>, mode: Mode, host_regex: bool) -> Result<Parts, CompileError> {
        order_routes(&mut routes)?;
        let mut cache = RequirementCache::new(host_regex);
        let mut matcher_ids: rustc_hash::FxHashMap<u64, u32> = Default::default();
        // At most one matcher and one pending regex per route: reserved once, not doubled.
        let mut matchers: Vec<LazyMatcher> = Vec::with_capacity(routes.len());
        let mut pending = Pending(Vec::with_capacity(routes.len()));
        let run_sets = crate::shared_runs::RunSets::default(); // reserved-word lists, one copy each
        let mut compiled: Vec<CompiledRoute> = Vec::with_capacity(routes.len());

        for (index, def) in routes.into_iter().enumerate() {
            let verbs = Verbs::parse(&def.verb).ok_or_else(|| CompileError::Verb { index, verb: def.verb.clone() })?;
            // Routes with the same spec, requirements and anchoring share one regex: looked up
            // by a hash of the three, confirmed against the first route that had it (a key
            // written out as text per route was a tenth of this loop).
            let key = same_regex_hash(&def);
            let known = matcher_ids.get(&key).copied().filter(|&id| same_regex(&compiled[matchers[id as usize].route as usize].def, &def));
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
                (_, Mode::Build { .. }) => {
                    let (spec, node, host) = route_node(index, &def, &mut cache)?;
                    (spec, Some(node), host)
                }
            };
            let params = journey::param_names(&spec);
            let matcher = match known {
                Some(id) => id,
                None => {
                    let id = matchers.len() as u32;
                    // A fresh build makes it in `with_matchers_built`, a load on first use.
                    matchers.push(LazyMatcher { route: index as u32, cell: OnceLock::new() });
                    // A different definition with the same hash (never seen) keeps its own.
                    matcher_ids.entry(key).or_insert(id);
                    id
                }
            };
            let widenings = match node {
                Some(node) => {
                    // A literal that may come percent-encoded is no key segment.
                    let plain = def.mounted || def.encoded_literals_after.is_some();
                    let dispatch_first = literal_first_segment(&spec, plain);
                    // A route the dispatch takes needs neither its pattern's text nor the
                    // segments the other automata are keyed by (held at the build's peak, they
                    // were ~1 MiB of GitLab's template snapshot).
                    let (pattern, mut widenings, first, literals) = match mode {
                        Mode::Build { dispatches: true } if dispatch_first.is_some() => (None, translate::widenings(&node), None, Vec::new()),
                        _ => {
                            let translation = pattern_text(&node, def.mounted);
                            (Some(translation.pattern), translation.widenings, static_first_segment(&spec, plain), literal_segments(&spec, plain))
                        }
                    };
                    pending.0.push(PendingRoute {
                        route: index as u32,
                        pattern,
                        mounted: def.mounted,
                        first,
                        literals,
                        node,
                        dispatch_first,
                        node_is_exact: host_regex.is_none(),
                    });
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
            compiled.push(CompiledRoute { index, def, verbs, params, matcher, widenings, host_regex });
        }
        Ok(Parts { routes: compiled, matchers, pending, run_sets })
    }

    /// Builds every exact matcher of a fresh build while `meanwhile` (the first-segment
    /// dispatch's automata, about as much work on GitLab's tables) runs on the routes' patterns:
    /// on the build's pool, whose threads share both (`meanwhile` is told it may hand its
    /// automata to the pool), or one after the other. Both sides only read the routes' regexes,
    /// and the matchers are built in definition order either way, so they share the same run
    /// sets.
    fn with_matchers_built<T: Send>(&mut self, pool: Option<&rayon::ThreadPool>, meanwhile: impl FnOnce(&Pending, bool) -> T + Send) -> T {
        let Parts { routes, matchers, pending, run_sets } = self;
        let (routes, matchers, pending) = (&*routes, &*matchers, &*pending);
        let build = |run_sets: &mut crate::shared_runs::RunSets| {
            for m in matchers {
                // A fresh build has one pending pattern per route, in definition order.
                let p = &pending.0[m.route as usize];
                debug_assert_eq!(p.route, m.route);
                let route = &routes[m.route as usize];
                let _ = m.cell.set(Matcher::for_route(&p.node, route.params.len(), run_sets, route.is_exact_in_dfa()));
            }
        };
        let (_, out) = join(pool, || build(run_sets), || meanwhile(pending, pool.is_some()));
        out
    }

    fn finish(
        self,
        automata: Vec<Automaton>,
        around: Option<AroundKey>,
        mut first_segments: Option<FirstSegments>,
        layout: Layout,
        options: &BuildOptions,
        segment_tree: Option<super::segment_tree::SegmentTree>,
    ) -> Result<Classifier, CompileError> {
        let mut keyed = rustc_hash::FxHashMap::default();
        let mut always = Vec::new();
        for (i, a) in automata.iter().enumerate() {
            if a.keys.is_empty() {
                always.push(i as u32);
            }
            for key in &a.keys {
                if keyed.insert(key.as_bytes().into(), i as u32).is_some() {
                    return Err(CompileError::Automaton(AutomatonError::KeyInTwoAutomata { key: key.clone() }));
                }
            }
        }
        let run_sets = std::sync::Mutex::new(self.run_sets);
        let leading = super::leading_routes::LeadingRoutes::build(&self.routes, &automata, &always, options.host_regex);
        let route_bits: Vec<_> = self.routes.iter().map(super::route_bits::RouteBits::of).collect();
        let static_paths = if options.engine.static_paths { super::static_paths::StaticPaths::of(&self.routes) } else { Default::default() };
        // Every literal path's first segment marked (each one: no stop at the first unkeyed).
        let literal_paths_keyed = first_segments.as_mut().is_some_and(|d| static_paths.paths().filter(|path| !d.mark_literal_path(path)).count() == 0);
        Ok(Classifier {
            static_paths,
            literal_paths_keyed,
            segment_tree,
            names_head: route_bits.iter().any(|bits| bits.names_head()),
            route_bits,
            routes: self.routes,
            matchers: self.matchers,
            automata,
            layout,
            keyed,
            always,
            leading,
            around,
            first_segments,
            max_path_len: options.max_path_len,
            run_sets,
        })
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
/// it has exactly one default glob, else at the `/` after its last run of unbounded segments
/// if it has one (see [`AroundKey`]), else whole; and whether the translation widened anything.
fn split_prefix(items: &[Node]) -> (Part, bool) {
    let globs: Vec<usize> = (0..items.len()).filter(|&i| is_default_glob(&items[i])).collect();
    let (part, widenings) = match globs[..] {
        [glob] => {
            let (head, tail) = (translate_seq(&items[..glob]), translate_seq(&items[glob + 1..]));
            (Part::Glob { head: head.pattern, tail: tail.pattern }, head.widenings.len() + tail.widenings.len())
        }
        _ => match slash_after_unbounded(items) {
            // The `/` ends the head and starts the tail: both match it.
            Some(slash) => {
                let (head, tail) = (translate_seq(&items[..=slash]), translate_seq(&items[slash..]));
                (Part::AtSlash { head: head.pattern, tail: tail.pattern }, head.widenings.len() + tail.widenings.len())
            }
            None => {
                let whole = translate_seq(items);
                (Part::Whole(whole.pattern), whole.widenings.len())
            }
        },
    };
    (part, widenings > 0)
}

/// Where a prefix splits so that its tail, walked back from the key, crosses neither the last
/// run that can match any number of `/` (GitLab's `*namespace_id` requirement, `X(/X)*`) nor
/// the parameter segments right after it (`:project_id`), whose bytes could be anything a path
/// holds there: the `/` after them, if the run is followed by `/`.
fn slash_after_unbounded(items: &[Node]) -> Option<usize> {
    let is_slash = |at: usize| matches!(items.get(at), Some(Node::Class(set)) if set.single_byte() == Some(b'/'));
    let last = items.iter().rposition(|item| slashes(std::slice::from_ref(item)).max == u16::MAX)?;
    let mut slash = last + 1;
    if !is_slash(slash) {
        return None;
    }
    while matches!(items.get(slash + 1), Some(Node::Capture { .. })) && is_slash(slash + 2) {
        slash += 2;
    }
    Some(slash)
}

/// How many `/` a match of the sequence `items` can hold (bounds, `u16::MAX` for none).
pub(super) fn slashes(items: &[Node]) -> Slashes {
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
            // One of the runs, a byte per class (requirements are kept optimized: `json|xml`).
            Node::SeqAlt(set) => set.runs.iter().map(|run| sum(run.iter().map(class))).reduce(|(a, b), (c, d)| (a.min(c), b.max(d))).unwrap_or((0, 0)),
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
pub(super) fn literal_segments(spec: &[journey::SpecNode], mounted: bool) -> Vec<(String, usize)> {
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

/// Orders routes by `index` when every route has one (duplicates refused), else keeps input order.
fn order_routes(routes: &mut [RouteDef]) -> Result<(), CompileError> {
    if routes.iter().all(|r| r.index.is_some()) {
        routes.sort_by_key(|r| r.index);
        for pair in routes.windows(2) {
            if pair[0].index == pair[1].index {
                return Err(CompileError::DuplicateIndex { index: pair[0].index.unwrap_or(0) });
            }
        }
    }
    Ok(())
}
