//! Large tables: a path whose first segment is a literal of the table (`/-/`, `/admin/`,
//! `/groups/`, `/users/`...) runs only the routes that can match it, in small automata, before
//! (and mostly instead of) the automata every path shares.
//!
//! Path routers dispatch on static segments in a radix tree; a Rails table cannot simply do
//! that, because Rails tries routes in definition order and a route led by a parameter or a glob
//! (`/*namespace_id/:project_id/...`, `/:username`, `/*id`, a Rack app mounted at `/`) may take
//! a path that starts with a literal another route names. So the table is split in two:
//!
//! - **literal-led routes**, `Lit(L)`: the spec starts `/L` and whatever follows `L` starts with
//!   `/` or `.` or ends the spec (optional groups looked through: `/dashboard(.:format)`), `L`
//!   holding no `/`, `.` or newline (see [`literal_first_segment`]). Every path such a route
//!   matches starts with `/L` followed by `/`, `.`, a newline (`\Z`) or the end, so its
//!   *first segment* — the bytes after the leading `/` up to the first `/`, `.`, newline or the
//!   end, as [`split_first_segment`] reads it — is exactly `L`. `/` is `Lit("")`, and so is
//!   `/.well-known/...`. Mounted applications (prefix matches) and routes whose literals may
//!   come percent-encoded (Grape's) are never literal-led.
//! - **the others**, led by a parameter, a glob, an alternation or an encoded literal.
//!
//! For a path with first segment `F`, a route of `Lit(L)` with `L ≠ F` cannot match. So the
//! candidates are those of `Lit(F)` (none when `F` is no key) and those of the others; the
//! others go the way they always went (the automata without a key and the routes matched
//! around their key, [`crate::around_key`]), except after `/L/` — a key followed by `/`, most
//! literal-led traffic — where each other route was tried once at build time on that prefix:
//!
//! 1. its DFA pattern, which widens what the DFA cannot express to a superset of the route's
//!    language, cannot continue after `/L/` (its own start state, walked over those bytes,
//!    dies): the route matches no path starting with `/L/`. This drops `/:username(.:format)`,
//!    a mount at `/-/peek` for every key but `-`, and so on;
//! 2. its regex opens with a negative look-ahead at the path's second byte — the route is
//!    `\A/` then a parameter whose requirement starts `(?!...)`, as GitLab's namespace and
//!    username requirements do: `(?!((?i-mx:\-|admin|api|...))\/)` — whose body has no
//!    assertion of its own and matches exactly `L/`: on any path starting with `/L/` the body
//!    then matches at that byte whatever follows, so the look-ahead fails, and every match
//!    must pass it there. This drops the ~700 `/*namespace_id/...` routes after `/admin/`.
//!    (Not for a route Ruby's `Regexp` decides: its tree has "any bytes" where Ruby has a
//!    construct the exact matcher cannot run, and a wider look-ahead body refuses more.)
//!
//! Both tests only ever drop routes that cannot match, so the routes kept together with
//! `Lit(L)` are a superset of the routes that match, and each candidate is then confirmed
//! exactly as before (the exact matcher, verbs, constraints, in definition order). When a key
//! keeps more than [`MAX_OTHERS`] others (a key GitLab does not reserve, `/u/...`, keeps every
//! namespace route) the others go the way they always went. The routes kept after every key
//! share one automaton (GitLab CE: the same 25 glob routes, plus the mount under the key): a
//! route one key dropped that its pattern still proposes there is one the DFA widened
//! (test 2), and the exact check turns it down as it turns down any widened candidate. Either
//! way the set of matching routes — and so `matches` and Rails' pick — is the one the table
//! had without the dispatch
//! (`tests/first_segment_dispatch.rs` compares both on GitLab CE's table, the corpus and
//! GitLab's templates, recorded and adversarial paths).

use std::borrow::Cow;
use std::collections::HashMap;

use regex_automata::hybrid::dfa::DFA;
use regex_automata::{Anchored, Input, MatchKind, PatternID};
use rustc_hash::FxHashMap;

use regex_syntax::hir::Hir;

use crate::classifier::{pattern_hir, Automaton};
use crate::engine::{Engine, EngineConfig, EngineKind, ToHir};
use crate::error::{AutomatonError, SearchError};
use crate::journey::SpecNode;
use crate::matcher::Matcher;
use crate::ruby_regex::ast::{Assertion, Node};

/// Above this many other routes kept after `/L/`, those routes go the way they always went:
/// an automaton over them would be as large as the shared ones.
pub(crate) const MAX_OTHERS: usize = 64;

/// A route as the dispatch sees it at build time.
pub(crate) struct RouteShape<'a> {
    pub route: u32,
    /// Its DFA pattern's text (a superset of its regex's language), when it was written (the
    /// routes led by a literal, which only this dispatch searches, have none): routes with the
    /// same text, or without text and the same regex, share a pattern id.
    pub pattern: Option<&'a str>,
    /// Its literal first segment ([`literal_first_segment`]).
    pub first: Option<&'a str>,
    /// Its regex (`\A`, one node per spec node, the end anchor): the automata are built from
    /// its HIR ([`pattern_hir`]).
    pub regex: &'a Node,
    /// A mount, matched as a prefix.
    pub mounted: bool,
    /// True when the exact matcher decides the route (not Ruby's `Regexp`, for which `regex`
    /// has "any bytes" where Ruby has what the matcher cannot run).
    pub exact: bool,
}

impl RouteShape<'_> {
    /// The HIR of its DFA pattern (what [`RouteShape::pattern`] parses to).
    fn hir(&self) -> Hir {
        pattern_hir(self.regex, self.mounted)
    }
}

/// A route's pattern, made when its automaton (chunk) is built.
impl ToHir for &RouteShape<'_> {
    fn to_hir(&self) -> Cow<'_, Hir> {
        Cow::Owned(self.hir())
    }
}

/// The routes a path's first segment selects (see the module documentation).
pub(crate) struct FirstSegments {
    buckets: FxHashMap<Box<[u8]>, Bucket>,
    /// The buckets' automata: each key's literal-led routes, and the sets of other routes.
    automata: Vec<Automaton>,
}

struct Bucket {
    /// The automaton of the routes led by this literal, and the first of them.
    literal: u32,
    literal_first: u32,
    /// The other routes that can still match a path starting with `/L/`.
    after_slash: Others,
    /// Some literal path of the table starts with this segment
    /// ([`FirstSegments::mark_literal_path`]).
    literal_paths: bool,
}

/// Which routes not led by a literal a path must still be run through after `/L/`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Others {
    /// None can match.
    Nothing,
    /// Those of this automaton; `first` is the first (in definition order) of those the key
    /// keeps.
    Automaton { automaton: u32, first: u32 },
    /// Too many to tell: the classifier's shared automata, as without the dispatch.
    Shared,
}

impl std::fmt::Debug for FirstSegments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.buckets.values().filter(|b| b.after_slash == Others::Shared).count();
        write!(f, "FirstSegments({} keys, {} automata, {shared} keys leaving the others shared)", self.buckets.len(), self.automata.len())
    }
}

impl FirstSegments {
    /// The dispatch over `routes`, or `None` when no route is led by a literal.
    pub fn build(routes: &[RouteShape<'_>], config: &EngineConfig, parallel: bool) -> Result<Option<FirstSegments>, AutomatonError> {
        // Lazy: determinizing a key's glob-led routes (`/groups/*id/-/...`) or the glob routes
        // kept after a key took up to a second and a half each on GitLab CE's table, and a
        // small lazy DFA's cache stays warm.
        let config = EngineConfig { kind: EngineKind::Lazy, ..*config };
        let mut literal_led: Vec<(&str, Vec<&RouteShape<'_>>)> = Vec::new();
        let mut others: Vec<&RouteShape<'_>> = Vec::new();
        for r in routes {
            match r.first {
                Some(first) => match literal_led.iter_mut().find(|(k, _)| *k == first) {
                    Some((_, v)) => v.push(r),
                    None => literal_led.push((first, vec![r])),
                },
                None => others.push(r),
            }
        }
        if literal_led.is_empty() {
            return Ok(None);
        }
        let kept = kept_after_slash(&literal_led.iter().map(|(k, _)| *k).collect::<Vec<_>>(), &others)?;
        // One automaton over every route some key keeps, when they are few: the keys keep
        // nearly the same ones (GitLab CE: the same 25 glob routes, plus the mount under the
        // key), and a route a key does not keep cannot match its paths anyway, so it costs
        // that key a little search, not a wrong candidate.
        let mut union: Vec<usize> = kept.iter().flatten().flatten().copied().collect();
        union.sort_unstable();
        union.dedup();
        // First which automata there are (each one's routes), then the automata themselves:
        // independent of each other, so a parallel build shares them between its threads.
        let mut plans: Vec<Vec<&RouteShape<'_>>> = Vec::new();
        let mut other_automata: HashMap<Vec<usize>, u32> = HashMap::new();
        let mut buckets = FxHashMap::default();
        for ((key, led), kept) in literal_led.into_iter().zip(kept) {
            let literal = plans.len() as u32;
            let literal_first = led[0].route;
            plans.push(led);
            let after_slash = match kept {
                None => Others::Shared,
                Some(kept) if kept.is_empty() => Others::Nothing,
                Some(kept) => {
                    let searched = if union.len() <= MAX_OTHERS { union.clone() } else { kept.clone() };
                    let id = match other_automata.get(&searched) {
                        Some(&id) => id,
                        None => {
                            let id = plans.len() as u32;
                            plans.push(searched.iter().map(|&i| others[i]).collect());
                            other_automata.insert(searched, id);
                            id
                        }
                    };
                    // `others` is in definition order, `kept` ascending.
                    Others::Automaton { automaton: id, first: others[kept[0]].route }
                }
            };
            // `led` is in definition order.
            buckets.insert(key.as_bytes().into(), Bucket { literal, literal_first, after_slash, literal_paths: false });
        }
        buckets.shrink_to_fit();
        let automata = if parallel {
            use rayon::prelude::*;
            plans.par_iter().map(|routes| automaton(routes, &config)).collect::<Result<Vec<_>, _>>()?
        } else {
            plans.iter().map(|routes| automaton(routes, &config)).collect::<Result<Vec<_>, _>>()?
        };
        Ok(Some(FirstSegments { buckets, automata }))
    }

    /// What the first segment of `path` (a normalized path) selects; `None` when it is no
    /// literal of the table: no literal-led route can match, the others go the shared way.
    pub fn select(&self, path: &[u8]) -> Option<Selection<'_>> {
        let (first, after) = split_first_segment(path)?;
        let bucket = self.buckets.get(first)?;
        let others = match (after, bucket.after_slash) {
            (Some(b'/'), Others::Nothing) => Selected::Nothing,
            (Some(b'/'), Others::Automaton { automaton, first }) => Selected::Automaton(&self.automata[automaton as usize], first),
            _ => Selected::Shared,
        };
        Some(Selection { literal: &self.automata[bucket.literal as usize], literal_first: bucket.literal_first, others, literal_paths: bucket.literal_paths })
    }

    /// Notes that one of the table's literal paths (a normalized `/...`) starts with its first
    /// segment; false when that segment is no key, so a path the dispatch selects nothing for
    /// may still be that literal path.
    pub fn mark_literal_path(&mut self, path: &[u8]) -> bool {
        match split_first_segment(path).and_then(|(first, _)| self.buckets.get_mut(first)) {
            Some(bucket) => {
                bucket.literal_paths = true;
                true
            }
            None => false,
        }
    }

    pub fn pattern_count(&self) -> usize {
        self.automata.iter().map(|a| a.pattern_routes.len()).sum()
    }

    /// The calling thread's caches of the dispatch's automata.
    pub(crate) fn thread_caches(&self, out: &mut Vec<crate::engine::LazyCache>) {
        for (i, a) in self.automata.iter().enumerate() {
            a.engine.thread_caches(&format!("first_segment {i}"), out);
        }
    }

    /// Heap bytes: the key index and the automata (a lazy one's NFA and cache pool, not the
    /// per-thread caches taken from it).
    pub fn memory_usage(&self) -> usize {
        let table = crate::heap::hash_table::<Box<[u8]>, Bucket>(self.buckets.capacity()) + self.buckets.keys().map(|k| k.len()).sum::<usize>();
        table + crate::heap::vec(&self.automata) + self.automata.iter().map(Automaton::memory_usage).sum::<usize>()
    }
}

/// The automata a path's first segment selects.
pub(crate) struct Selection<'d> {
    literal: &'d Automaton,
    literal_first: u32,
    others: Selected<'d>,
    /// Some literal path of the table starts with the path's first segment.
    pub literal_paths: bool,
}

enum Selected<'d> {
    Nothing,
    /// An automaton, and the first of its routes.
    Automaton(&'d Automaton, u32),
    Shared,
}

impl Selection<'_> {
    /// Calls `found` with the routes led by the path's first segment that match it, unless
    /// they all come from `bound` on (Rails never reaches them).
    pub fn literal_candidates(&self, path: &[u8], bound: u32, mut found: impl FnMut(u32)) -> Result<(), SearchError> {
        if self.literal_first >= bound {
            return Ok(());
        }
        self.literal.for_each_route(path, &mut found)
    }

    /// True when the routes not led by a literal go the shared way for this path.
    pub fn others_shared(&self) -> bool {
        matches!(self.others, Selected::Shared)
    }

    /// Calls `found` with the other routes before `bound` that match `path`, when the dispatch
    /// knows them (not when [`Selection::others_shared`]).
    pub fn other_candidates(&self, path: &[u8], bound: u32, mut found: impl FnMut(u32)) -> Result<(), SearchError> {
        match self.others {
            Selected::Automaton(a, first) if first < bound => a.for_each_route(path, &mut found),
            // None, all after the bound (Rails never reaches them), or searched the shared way.
            _ => Ok(()),
        }
    }
}

impl Automaton {
    /// Calls `found` with the routes of every pattern that matches all of `path`.
    pub(crate) fn for_each_route(&self, path: &[u8], found: &mut impl FnMut(u32)) -> Result<(), SearchError> {
        self.engine.for_each_route_run(path, &self.pattern_routes, |run| {
            for &r in run {
                found(r);
            }
        })
    }

    /// Heap bytes of the engine, the pattern → routes lists and the keys.
    pub(crate) fn memory_usage(&self) -> usize {
        self.engine.memory_usage()
            + crate::heap::vec(&self.pattern_routes)
            + self.pattern_routes.iter().map(crate::heap::vec).sum::<usize>()
            + crate::heap::vec(&self.keys)
            + self.keys.iter().map(crate::heap::string).sum::<usize>()
    }
}

/// What makes two routes one pattern of an automaton: the same pattern text, or (for routes
/// without one) the same regex and anchoring, which translate to the same text.
#[derive(PartialEq, Eq, Hash)]
enum PatternKey<'a> {
    Text(&'a str),
    Regex(&'a Node, bool),
}

/// One automaton over `routes` (routes sharing a pattern share its id), without keys.
fn automaton(routes: &[&RouteShape<'_>], config: &EngineConfig) -> Result<Automaton, AutomatonError> {
    let mut patterns: Vec<&RouteShape<'_>> = Vec::new();
    let mut pattern_routes: Vec<Vec<u32>> = Vec::new();
    let mut ids: FxHashMap<PatternKey<'_>, usize> = FxHashMap::default();
    for &r in routes {
        let key = match r.pattern {
            Some(text) => PatternKey::Text(text),
            None => PatternKey::Regex(r.regex, r.mounted),
        };
        let id = *ids.entry(key).or_insert_with(|| {
            patterns.push(r);
            pattern_routes.push(Vec::new());
            patterns.len() - 1
        });
        pattern_routes[id].push(r.route);
    }
    for routes in &mut pattern_routes {
        routes.shrink_to_fit();
    }
    pattern_routes.shrink_to_fit();
    Ok(Automaton { engine: Engine::build(&patterns, config)?, pattern_routes, keys: Vec::new() })
}

/// For each key, the indexes (into `others`) of the other routes that can still match a path
/// starting with `/key/`, ascending; `None` past [`MAX_OTHERS`].
fn kept_after_slash(keys: &[&str], others: &[&RouteShape<'_>]) -> Result<Vec<Option<Vec<usize>>>, AutomatonError> {
    // Test 2 first (cheap): what each route's leading look-ahead leaves.
    let mut refusals = Refusals::default();
    let bodies: Vec<Vec<usize>> = others.iter().map(|r| if r.exact { refusals.route_bodies(r.regex) } else { Vec::new() }).collect();
    let mut kept: Vec<Option<Vec<usize>>> = keys
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let kept: Vec<usize> = (0..others.len()).filter(|&i| !bodies[i].iter().any(|&b| refusals.refuses(b, k, key.as_bytes()))).collect();
            // Far too many for test 1 to bring under the limit: not worth its walks.
            (kept.len() <= MAX_OTHERS * 4).then_some(kept)
        })
        .collect();
    // Test 1 on the routes still kept somewhere: one lazy DFA with a start state per pattern.
    let mut candidates: Vec<usize> = kept.iter().flatten().flatten().copied().collect();
    candidates.sort_unstable();
    candidates.dedup();
    if !candidates.is_empty() {
        let patterns: Vec<Hir> = candidates.iter().map(|&i| others[i].hir()).collect();
        let mut prefixes = Prefixes::build(&patterns)?;
        for (key, kept) in keys.iter().zip(&mut kept) {
            let Some(list) = kept else { continue };
            let prefix = [b"/", key.as_bytes(), b"/"].concat();
            let mut alive = Vec::with_capacity(list.len());
            for &i in list.iter() {
                // Every kept route has a pattern; were one missing, keeping the route is safe.
                let keep = candidates.binary_search(&i).map_or(true, |pattern| prefixes.can_continue(pattern, &prefix));
                if keep {
                    alive.push(i);
                }
            }
            *kept = (alive.len() <= MAX_OTHERS).then_some(alive);
        }
    }
    Ok(kept)
}

/// Test 1: route patterns, each with its own anchored start state.
struct Prefixes {
    dfa: DFA,
    cache: regex_automata::hybrid::dfa::Cache,
}

impl Prefixes {
    fn build(patterns: &[Hir]) -> Result<Prefixes, AutomatonError> {
        let nfa = crate::engine::nfa(patterns, crate::engine::Direction::Forward)?;
        let dfa = DFA::builder().configure(DFA::config().match_kind(MatchKind::All).starts_for_each_pattern(true)).build_from_nfa(nfa)?;
        let cache = dfa.create_cache();
        Ok(Prefixes { dfa, cache })
    }

    /// False when pattern `id` matches no text starting with `prefix`. This test only ever
    /// drops routes, so a search that fails (none is expected: no quit bytes, no cache-clear
    /// limit) keeps the route rather than failing the build.
    fn can_continue(&mut self, id: usize, prefix: &[u8]) -> bool {
        self.walk(id, prefix).unwrap_or(true)
    }

    fn walk(&mut self, id: usize, prefix: &[u8]) -> Option<bool> {
        let cache = &mut self.cache;
        let input = Input::new(prefix).anchored(Anchored::Pattern(PatternID::new(id).ok()?));
        let mut sid = self.dfa.start_state_forward(cache, &input).ok()?;
        for &b in prefix {
            if sid.is_dead() {
                return Some(false);
            }
            // A quit state (none are configured) would only keep the route.
            sid = self.dfa.next_state(cache, sid, b).ok()?;
        }
        Some(!sid.is_dead())
    }
}

/// Test 2: whether a route's leading negative look-ahead refuses every path starting with
/// `/key/`. Bodies are interned (GitLab's ~700 namespace routes share two or three) and each
/// answer is memoized per body and key.
#[derive(Default)]
struct Refusals {
    /// FxHash: a body is hundreds of nodes, hashed once per route (SipHash over them was 6% of
    /// GitLab CE's build).
    ids: FxHashMap<Node, usize>,
    /// Per body, a matcher for it alone; `None` when it has assertions of its own.
    matchers: Vec<Option<Matcher>>,
    /// (body, key index) → whether the body matches exactly `key/`.
    answers: HashMap<(usize, usize), bool>,
}

impl Refusals {
    /// The bodies of the negative look-aheads a route's regex tests at the path's second byte:
    /// the route is `\A/` and then such look-aheads lead what follows.
    fn route_bodies(&mut self, route: &Node) -> Vec<usize> {
        let Node::Concat(items) = route else { return Vec::new() };
        let [Node::Assert(Assertion::StartText), Node::Class(slash), rest @ ..] = &items[..] else { return Vec::new() };
        if slash.single_byte() != Some(b'/') {
            return Vec::new();
        }
        let mut bodies = Vec::new();
        leading_look_aheads(rest, &mut bodies);
        bodies.into_iter().map(|body| self.intern(body)).collect()
    }

    fn intern(&mut self, body: &Node) -> usize {
        if let Some(&id) = self.ids.get(body) {
            return id;
        }
        let mut plain = true;
        body.walk(&mut |n| plain &= !matches!(n, Node::Look { .. } | Node::Assert(_) | Node::Capture { .. }));
        let whole = Node::Concat(vec![Node::Assert(Assertion::StartText), body.clone(), Node::Assert(Assertion::EndText)]);
        self.matchers.push(plain.then(|| Matcher::new(whole, 0)));
        self.ids.insert(body.clone(), self.matchers.len() - 1);
        self.matchers.len() - 1
    }

    /// True when `body` (without assertions) matches exactly `key/`, so that it matches at the
    /// second byte of every path starting with `/key/`, whatever follows.
    fn refuses(&mut self, body: usize, key_index: usize, key: &[u8]) -> bool {
        let matchers = &self.matchers;
        *self.answers.entry((body, key_index)).or_insert_with(|| {
            // Over the step budget: not known to match, so the route is kept.
            matchers[body].as_ref().is_some_and(|m| matches!(m.captures(&[key, b"/"].concat()), Ok(Some(_))))
        })
    }
}

/// The bodies of the negative look-aheads every match of `items` tests at its first byte:
/// those at the start of `items`, looking through zero-width nodes, parameters, groups and
/// atomic groups.
fn leading_look_aheads<'n>(items: &'n [Node], out: &mut Vec<&'n Node>) -> bool {
    items.iter().all(|item| leading_in(item, out))
}

/// [`leading_look_aheads`] of one node; true when the node is zero-width, so that the next
/// node starts where it did.
fn leading_in<'n>(node: &'n Node, out: &mut Vec<&'n Node>) -> bool {
    match node {
        Node::Look { behind: false, negate: true, node } => {
            out.push(node);
            true
        }
        Node::Look { .. } | Node::Assert(_) | Node::Empty => true,
        Node::Capture { node, .. } | Node::Atomic(node) => leading_in(node, out),
        Node::Concat(items) => leading_look_aheads(items, out),
        _ => false,
    }
}

/// The literal first segment of a spec: `L` when every path the route matches starts with `/L`
/// followed by `/`, `.`, a newline or the end; `None` for a mount, a route whose literals may
/// come percent-encoded, or a spec led by anything else.
pub(crate) fn literal_first_segment(spec: &[SpecNode], mounted_or_encoded: bool) -> Option<String> {
    if mounted_or_encoded {
        return None;
    }
    let (literal, rest) = match spec {
        [SpecNode::Slash, SpecNode::Literal(text), rest @ ..] => (text.as_str(), rest),
        [SpecNode::Slash, rest @ ..] => ("", rest),
        _ => return None,
    };
    let plain = !literal.contains(['/', '.', '\n']);
    (plain && separator_first(rest)).then(|| literal.to_string())
}

/// True when every match of `nodes` starts with `/` or `.`, or is empty (the spec ends).
fn separator_first(nodes: &[SpecNode]) -> bool {
    match nodes.first() {
        None | Some(SpecNode::Slash) | Some(SpecNode::Dot) => true,
        // An optional group: taken, its own first node; skipped, what follows it.
        Some(SpecNode::Group(inner)) => separator_first(&[&inner[..], &nodes[1..]].concat()) && separator_first(&nodes[1..]),
        Some(_) => false,
    }
}

/// A normalized path's first segment (after the leading `/`, up to the first `/`, `.`,
/// newline or the end) and the byte after it; `None` for a path not starting with `/`.
pub(crate) fn split_first_segment(path: &[u8]) -> Option<(&[u8], Option<u8>)> {
    let rest = path.strip_prefix(b"/")?;
    let end = segment_end(rest, 0);
    Some((&rest[..end], rest.get(end).copied()))
}

/// Where the segment starting at `from` ends: the first `/`, `.` or newline from there, or the
/// end of `path` (how a first segment and a key segment end alike). Sixteen bytes at a time
/// (`accel::find`): every request's path is split here, and the byte loops this replaced cost
/// GitLab CE ~25 (first segment) and ~35 (key segments) instructions of a ~2,200-instruction request.
pub(crate) fn segment_end(path: &[u8], from: usize) -> usize {
    crate::accel::find(b"/.\n", path, from).unwrap_or(path.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::parse_spec;

    fn first(spec: &str) -> Option<String> {
        literal_first_segment(&parse_spec(spec).unwrap(), false)
    }

    #[test]
    fn literal_led_specs() {
        assert_eq!(first("/admin/users/:id(.:format)").as_deref(), Some("admin"));
        assert_eq!(first("/dashboard(.:format)").as_deref(), Some("dashboard"));
        assert_eq!(first("/-/profile").as_deref(), Some("-"));
        assert_eq!(first("/").as_deref(), Some(""));
        assert_eq!(first("/.well-known/webfinger(.:format)").as_deref(), Some(""));
        assert_eq!(first("/groups(/:id)/x").as_deref(), Some("groups"));
        assert_eq!(first("/*namespace_id/:project_id"), None);
        assert_eq!(first("/:username(.:format)"), None);
        assert_eq!(first("/(:locale)/x"), None);
        assert_eq!(first("/foo:bar"), None);
        // The group skipped, `baz` follows `foo` in the same segment.
        assert_eq!(first("/foo(/x)baz"), None);
        assert_eq!(literal_first_segment(&parse_spec("/-/peek").unwrap(), true), None);
    }

    #[test]
    fn first_segments_of_paths() {
        assert_eq!(split_first_segment(b"/admin/users"), Some((&b"admin"[..], Some(b'/'))));
        assert_eq!(split_first_segment(b"/admin.json"), Some((&b"admin"[..], Some(b'.'))));
        assert_eq!(split_first_segment(b"/admin\n"), Some((&b"admin"[..], Some(b'\n'))));
        assert_eq!(split_first_segment(b"/admin"), Some((&b"admin"[..], None)));
        assert_eq!(split_first_segment(b"/"), Some((&b""[..], None)));
        assert_eq!(split_first_segment(b"/.well-known/x"), Some((&b""[..], Some(b'.'))));
        assert_eq!(split_first_segment(b"x"), None);
    }

    #[test]
    fn a_leading_negative_look_ahead_refuses_its_reserved_words() {
        let reserved = r"(?!((?i-mx:\-|admin|api|favicon\.ico))\/)(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254})";
        let (requirement, _) = crate::ruby_regex::parse::parse_as_allowed(reserved, 0, false).unwrap();
        let route = |spec: &str| {
            let spec = parse_spec(spec).unwrap();
            let mut requirements = |name: &str| (name == "namespace_id").then(|| requirement.clone());
            crate::journey::route_regex_with(&spec, crate::journey::Anchoring::Regex, crate::journey::Literals::Plain, &mut requirements)
        };
        let mut refusals = Refusals::default();
        let mut refused = |spec: &str, key: &str| {
            let bodies = refusals.route_bodies(&route(spec));
            // A fresh key index each time: answers are memoized per (body, key index).
            let k = refusals.answers.len() + 1000;
            bodies.iter().any(|&b| refusals.refuses(b, k, key.as_bytes()))
        };
        let glob = "/*namespace_id/:project_id";
        assert!(refused(glob, "admin"));
        assert!(refused(glob, "-"));
        // Case-insensitive, as the requirement says.
        assert!(refused(glob, "ADMIN"));
        assert!(!refused(glob, "u"));
        assert!(!refused(glob, "administrators"));
        // `favicon.ico/` is reserved, `favicon/` is not.
        assert!(!refused(glob, "favicon"));
        // Behind a literal the look-ahead is no longer at the second byte.
        assert!(!refused("/x/*namespace_id", "admin"));
        // Inside an optional group it may be skipped.
        assert!(!refused("/(*namespace_id)", "admin"));
    }
}
