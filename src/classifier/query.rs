//! The query side: a request's `(method, path_info)` → the routes Rails would try, in its order.

use super::build::{route_node, RequirementCache};
use super::route_bits::{Method, RouteBits};
use super::{Classifier, CompiledRoute, Layout, Match, RegexHost};
use std::borrow::Cow;
use std::cell::OnceCell;

use crate::error::ClassifyError;
use crate::first_segment::{split_first_segment, Selection};
use crate::inline_vec::InlineVec;
use crate::matcher::{Matcher, Spans};
use crate::normalize::{normalize, normalize_path, Normalized};
use crate::routes::is_method_token;

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

/// The [`RegexHost`] of callers without Ruby: a [`HostRegex`](super::HostRegex) route cannot be decided.
fn no_regex_host(route: &CompiledRoute, _: &[u8]) -> Result<Option<Spans>, ClassifyError> {
    Err(ClassifyError::NeedsRuby {
        route: route.index,
        construct: route.host_regex.as_ref().and_then(|h| h.constructs.first()).map(|(p, c)| format!("{p}: {}", c.construct)).unwrap_or_default(),
    })
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
    Method(Method<'m>),
    /// HEAD answered by the routes that name HEAD explicitly.
    ExplicitHead,
}

impl VerbFilter<'_> {
    #[inline]
    fn allows(self, bits: RouteBits, route: &CompiledRoute) -> bool {
        match self {
            VerbFilter::Method(m) => bits.allows(m, route),
            VerbFilter::ExplicitHead => bits.names_head(),
        }
    }
}

/// Room [`Classifier::matches`] makes for its list once a route matches.
const MATCHES_RESERVED: usize = 8;

/// Up to this many candidates live on the stack.
const INLINE_CANDIDATES: usize = 24;

impl Classifier {
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
    ///
    /// ```
    /// use cells_learn::{Classifier, ClassifyError, RouteDef};
    ///
    /// let classifier = Classifier::new(vec![
    ///     RouteDef::new("GET", "/-/profile(.:format)").to("profiles", "show"),
    ///     RouteDef::new("GET|POST", "/*namespace_id/:project_id(.:format)").to("projects", "show"),
    /// ]).unwrap();
    /// // Rails' normalization first (`//` squeezed, trailing `/` dropped), then Rails' order.
    /// let m = classifier.recognize("GET", b"//gitlab-org/sub/gitlab/").unwrap().unwrap();
    /// assert_eq!(m.route().def().endpoint().as_deref(), Some("projects#show"));
    /// assert_eq!(m.param("namespace_id").as_deref(), Some(&b"gitlab-org/sub"[..]));
    /// assert!(classifier.recognize("DELETE", b"/-/profile").unwrap().is_none());
    /// assert!(matches!(classifier.recognize("get", b"/"), Err(ClassifyError::InvalidMethod(_))));
    /// ```
    pub fn recognize<'c, 'p>(&'c self, method: &str, path_info: &'p [u8]) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        self.recognize_with(method, path_info, |_| true)
    }

    /// The route Rails would pick; for routes with dynamic constraints and mounted applications
    /// ([`RouteDef::asks_host`](crate::RouteDef::asks_host)), `accept` decides, called in definition order as Rails' `serve`
    /// would ask the constraint objects (and as a mounted app's `X-Cascade: pass` would fall
    /// through to the next route).
    pub fn recognize_with<'c, 'p>(
        &'c self,
        method: &str,
        path_info: &'p [u8],
        accept: impl FnMut(&Match<'c, 'p>) -> bool,
    ) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        self.recognize_with_regex(method, path_info, accept, &mut no_regex_host)
    }

    /// [`Classifier::recognize_with`], with `regex` deciding the routes only Ruby's `Regexp`
    /// can ([`CompiledRoute::host_regex`]).
    pub fn recognize_with_regex<'c, 'p>(
        &'c self,
        method: &str,
        path_info: &'p [u8],
        accept: impl FnMut(&Match<'c, 'p>) -> bool,
        regex: &mut RegexHost<'_>,
    ) -> Result<Option<Match<'c, 'p>>, ClassifyError> {
        let mut found = None;
        let mut invalid = None;
        self.check_request(method, path_info)?;
        // Only a path with `%` or a non-ASCII byte can give a parameter that is not UTF-8: the
        // normalizing pass says whether it has either (two more scans here were ~80
        // instructions, ~4% of a recognize on GitLab CE).
        let Normalized { path, plain } = normalize(path_info);
        let check_encoding = !plain;
        let accept = std::cell::RefCell::new(accept);
        let mut conditions = |m: &Match<'c, 'p>| (accept.borrow_mut())(m);
        self.visit_matches(method, path, Wanted::First, regex, Some(&mut conditions), |m| {
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
        self.check_request(method, path_info)?;
        self.visit_matches(method, normalize_path(path_info), Wanted::All, regex, None, |m| {
            if all.is_empty() {
                // One allocation for most requests (3.8 routes each on CE's recorded ones,
                // rarely more than 8), not one for 4 and another for 8.
                all.reserve_exact(MATCHES_RESERVED);
            }
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
        self.check_request(method, path_info)?;
        self.visit_matches(method, normalize_path(path_info), Wanted::All, &mut no_regex_host, None, visit)
    }

    /// `path`: the request's path, checked ([`Classifier::check_request`]) and normalized.
    fn visit_matches<'c, 'p>(
        &'c self,
        method: &str,
        path: Cow<'p, [u8]>,
        wanted: Wanted,
        regex: &mut RegexHost<'_>,
        mut conditions: Option<&mut dyn FnMut(&Match<'c, 'p>) -> bool>,
        mut visit: impl FnMut(Match<'c, 'p>) -> bool,
    ) -> Result<(), ClassifyError> {
        // Looked up once: the method's bit serves the early stop and the verb filter.
        // HEAD first looks for routes naming HEAD among all candidates (see below), unless no
        // route names it: Journey's `match_head_routes` then takes every route as GET, and so
        // can the search, stopping as a GET's does (searched in full, a HEAD on GitLab CE cost
        // five times a GET).
        let method = Method::new(method);
        let head_as_get = method.is_head() && !self.names_head;
        let not_head = if head_as_get { Some(Method::GET) } else { (!method.is_head()).then_some(method) };
        let first_for = not_head.filter(|_| wanted == Wanted::First);
        // A table of plain routes: its segment tree lists every candidate (read here rather than
        // through `candidates`, whose call and `Result` cost ~5% of a lookup on GitHub's set).
        if let Some(tree) = &self.segment_tree {
            let mut candidates = Candidates::new();
            tree.candidates(&path, &mut candidates);
            candidates.sort_dedup();
            return self.visit_listed(method, candidates.as_slice(), &path, regex, &mut conditions, &mut visit);
        }
        let selection = self.first_segments.as_ref().and_then(|d| d.select(&path));
        // One of the table's literal paths: the search's candidates, found once. (A memo: a
        // path not looked up here is searched as on its first request.)
        if !self.literal_paths_keyed || selection.as_ref().is_some_and(|s| s.literal_paths) {
            let known = self.static_paths.candidates(&path, || {
                let mut all = Candidates::new();
                self.candidates(&path, &mut all)?;
                Ok::<_, ClassifyError>(all.as_slice().into())
            })?;
            if let Some(candidates) = known {
                return self.visit_listed(method, candidates, &path, regex, &mut conditions, &mut visit);
            }
        }
        let mut candidates = Candidates::new();
        let unsearched = self.shared_candidates(&path, selection.as_ref(), &mut candidates, first_for)?;
        // A first-match search looks no further than the first route the automata decide
        // alone and that allows the method, even one a host may turn down (see
        // [`Bound::Likely`]); the rest is searched only if the host does turn it down.
        let stop_at = if first_for.is_some() { Bound::Likely } else { Bound::Certain };
        let bound = self.bounded_candidates(&path, selection.as_ref(), 0, &mut candidates, first_for, stop_at)?;
        candidates.sort_dedup();
        let candidates = candidates.as_slice();
        if candidates.is_empty() {
            return Ok(());
        }

        let filter = self.verb_filter(method, candidates, &path, regex, &mut conditions)?;

        let bound = if first_for.is_some() { bound } else { u32::MAX };
        // Every candidate up to the bound was found (each bounded search stopped at a bound no
        // lower than it); past it, only those of the searches that never stop early.
        let complete = candidates.partition_point(|&r| r <= bound);
        if !self.visit_candidates(&candidates[..complete], &path, filter, regex, &mut visit)? || bound == u32::MAX {
            return Ok(());
        }
        // The host turned the likely answer down: the routes after it, searched as without the
        // early stop (from the route after it on).
        let mut rest = Candidates::new();
        for &r in &candidates[complete..] {
            rest.push(r);
        }
        if unsearched {
            // The leading routes answered for the automata without a key: their routes after it now.
            let from = bound + 1;
            self.automata_candidates(&path, self.always.iter(), &mut rest, from)?;
        }
        self.bounded_candidates(&path, selection.as_ref(), bound + 1, &mut rest, first_for, Bound::Certain)?;
        rest.sort_dedup();
        self.visit_candidates(rest.as_slice(), &path, filter, regex, &mut visit)?;
        Ok(())
    }

    /// Visits `candidates` (every candidate of the path, ascending) in Rails' order, once the
    /// verb filter is known.
    #[allow(clippy::ptr_arg)] // matches hold the path as this Cow
    #[inline]
    fn visit_listed<'c, 'p>(
        &'c self,
        method: Method<'_>,
        candidates: &[u32],
        path: &Cow<'p, [u8]>,
        regex: &mut RegexHost<'_>,
        conditions: &mut Option<&mut dyn FnMut(&Match<'c, 'p>) -> bool>,
        visit: &mut impl FnMut(Match<'c, 'p>) -> bool,
    ) -> Result<(), ClassifyError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let filter = self.verb_filter(method, candidates, path, regex, conditions)?;
        self.visit_candidates(candidates, path, filter, regex, visit)?;
        Ok(())
    }

    /// Which routes' verbs a request's candidates must allow (Journey's HEAD handling: the
    /// routes drawn for HEAD whose request conditions hold, else every route as GET).
    /// When no route names HEAD, HEAD is GET at once (see [`Classifier::visit_matches`]).
    #[allow(clippy::ptr_arg)] // matches hold the path as this Cow
    #[inline]
    fn verb_filter<'c, 'p, 'm>(
        &'c self,
        method: Method<'m>,
        candidates: &[u32],
        path: &Cow<'p, [u8]>,
        regex: &mut RegexHost<'_>,
        conditions: &mut Option<&mut dyn FnMut(&Match<'c, 'p>) -> bool>,
    ) -> Result<VerbFilter<'m>, ClassifyError> {
        if !method.is_head() {
            return Ok(VerbFilter::Method(method));
        }
        Ok(if self.names_head {
            // Journey's `match_head_routes`: the routes drawn for HEAD whose request conditions
            // hold (asked of the host, when a route has any), else every route as GET.
            let mut explicit = false;
            for &r in candidates {
                let route = &self.routes[r as usize];
                if !VerbFilter::ExplicitHead.allows(self.route_bits[r as usize], route) {
                    continue;
                }
                let Some(mut m) = self.confirm(route, path, regex)? else { continue };
                m.conditions_only = true;
                if !route.def.request_conditions || conditions.as_mut().is_none_or(|ask| ask(&m)) {
                    explicit = true;
                    break;
                }
            }
            if explicit {
                VerbFilter::ExplicitHead
            } else {
                VerbFilter::Method(Method::GET)
            }
        } else {
            VerbFilter::Method(Method::GET)
        })
    }

    /// Offers each of `candidates` (ascending) whose verb `filter` allows and whose regex
    /// matches to `visit`, in order; false once `visit` returned false.
    #[allow(clippy::ptr_arg)] // each match holds the path as this Cow (borrowed, or normalized once)
    fn visit_candidates<'c, 'p>(
        &'c self,
        candidates: &[u32],
        path: &Cow<'p, [u8]>,
        filter: VerbFilter<'_>,
        regex: &mut RegexHost<'_>,
        visit: &mut impl FnMut(Match<'c, 'p>) -> bool,
    ) -> Result<bool, ClassifyError> {
        // Routes sharing one regex are confirmed once.
        let mut verified: Vec<(u32, Option<Spans>)> = Vec::new();
        for (i, &r) in candidates.iter().enumerate() {
            let (route, bits) = (&self.routes[r as usize], self.route_bits[r as usize]);
            if !filter.allows(bits, route) {
                continue;
            }
            let spans = if bits.is_exact_in_dfa() {
                // The automaton's match is the route's: parameters are found when asked for.
                Some(OnceCell::new())
            } else {
                match verified.iter().position(|(m, _)| *m == route.matcher) {
                    Some(at) => verified[at].1.clone().map(|s| OnceCell::from(Ok(s))),
                    None => {
                        let spans = self.verify(route, path, regex)?;
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
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Routes whose pattern matches `path` (by the segment tree of a plain table, else by the
    /// automata), in definition order.
    fn candidates(&self, path: &[u8], out: &mut Candidates) -> Result<(), ClassifyError> {
        if let Some(tree) = &self.segment_tree {
            tree.candidates(path, out);
            out.sort_dedup();
            return Ok(());
        }
        let selection = self.first_segments.as_ref().and_then(|d| d.select(path));
        self.shared_candidates(path, selection.as_ref(), out, None)?;
        self.bounded_candidates(path, selection.as_ref(), 0, out, None, Bound::Certain)?;
        out.sort_dedup();
        Ok(())
    }

    /// Adds the candidates of the searches that never stop early: the shared automata without
    /// keys, when the path's first segment leaves the routes not led by a literal to them
    /// (searched first: a certain answer there — GitLab's template snapshot starts with a glob
    /// route — spares the rest). With `first_for` a method, their
    /// [`LeadingRoutes`](super::leading_routes::LeadingRoutes) are checked first, and when one
    /// answers before any other of their routes could, they are not searched
    /// (true returned: they were not searched, their leading routes answered —
    /// [`Classifier::leading_answers`]; should the host turn that answer down, their routes
    /// after it are still to be found). `selection`: what the path's first segment selects.
    fn shared_candidates(
        &self,
        path: &[u8],
        selection: Option<&Selection<'_>>,
        out: &mut Candidates,
        first_for: Option<Method<'_>>,
    ) -> Result<bool, ClassifyError> {
        let selected = match self.layout {
            // A normalized path starts with `/`, so the split always finds a first segment.
            Layout::FirstSegment => self.keyed.get(split_first_segment(path).map_or(&[][..], |(first, _)| first)).copied(),
            Layout::AnySegment => None,
        };
        let mut unsearched = false;
        if selection.is_none_or(|s| s.others_shared()) {
            // Complete leading routes found every candidate of the automata without a key.
            let mut all_found = false;
            if let Some(method) = first_for {
                let answered = self.leading_answers(path, method, out)?;
                all_found = self.leading.as_ref().is_some_and(|l| l.complete);
                unsearched = answered && !all_found;
            }
            let always = if unsearched || all_found { &[][..] } else { &self.always[..] };
            self.automata_candidates(path, always.iter().chain(selected.as_ref()), out, 0)?;
        }
        Ok(unsearched)
    }

    /// Adds the candidates from route `from` on of the searches that can stop early: the routes
    /// led by the path's first segment, the other routes it keeps, and the routes matched
    /// around their key. With `first_for` a method, each search leaves out the routes after
    /// the first candidate found so far that is `bound` to answer it (see
    /// [`Classifier::first_bound`]): Rails would never reach them. Returns that candidate
    /// among all of `out` once done (`u32::MAX`: none).
    fn bounded_candidates(
        &self,
        path: &[u8],
        selection: Option<&Selection<'_>>,
        from: u32,
        out: &mut Candidates,
        first_for: Option<Method<'_>>,
        bound: Bound,
    ) -> Result<u32, ClassifyError> {
        // Kept up to date as candidates arrive: each is looked at once.
        let mut limit = self.first_bound(out.as_slice(), first_for, bound);
        let push = |out: &mut Candidates, limit: &mut u32, r: u32| {
            if r >= from {
                out.push(r);
                if r < *limit && first_for.is_some_and(|method| self.is_bound(r, method, bound)) {
                    *limit = r;
                }
            }
        };
        if let Some(s) = selection {
            s.literal_candidates(path, limit, |r| push(out, &mut limit, r)).map_err(ClassifyError::Automaton)?;
            s.other_candidates(path, limit, |r| push(out, &mut limit, r)).map_err(ClassifyError::Automaton)?;
        }
        if let Some(around) = self.around.as_ref().filter(|_| selection.is_none_or(|s| s.others_shared())) {
            around.for_each_match(path, from..limit, |r| push(out, &mut limit, r)).map_err(ClassifyError::Automaton)?;
        }
        Ok(limit)
    }

    /// With `first_for` a method, the first of `candidates` that is `bound` to answer it:
    /// routes after it need not be looked for while it stands. `u32::MAX` when there is none.
    fn first_bound(&self, candidates: &[u32], first_for: Option<Method<'_>>, bound: Bound) -> u32 {
        let Some(method) = first_for else { return u32::MAX };
        // One pass, each candidate's flags read only while it could still be the least (an
        // ascending run, the usual case, reads only up to the first that is).
        let mut least = u32::MAX;
        for &r in candidates {
            if r < least && self.is_bound(r, method, bound) {
                least = r;
            }
        }
        least
    }

    /// Whether route `r`, a candidate, is `bound` to answer `method` (see [`Bound`]).
    #[inline(always)]
    fn is_bound(&self, r: u32, method: Method<'_>, bound: Bound) -> bool {
        let bits = self.route_bits[r as usize];
        bits.is_exact_in_dfa() && (bound == Bound::Likely || !bits.asks_host()) && bits.allows(method, &self.routes[r as usize])
    }

    /// Whether one of the [`LeadingRoutes`](super::leading_routes::LeadingRoutes) matches
    /// `path`, allows `method` and comes before every other route of the automata without a
    /// key: then it bounds a first-match search as their walk would have found it; the leading
    /// routes that match are added to `out`.
    fn leading_answers(&self, path: &[u8], method: Method<'_>, out: &mut Candidates) -> Result<bool, ClassifyError> {
        let Some(leading) = &self.leading else { return Ok(false) };
        leading.search(path, method, out, |r| self.route_bits[r as usize].allows(method, &self.routes[r as usize])).map_err(ClassifyError::Automaton)
    }

    /// Adds the routes from `from` on of `automata` whose patterns match `path` (unsorted).
    fn automata_candidates<'a>(&self, path: &[u8], automata: impl Iterator<Item = &'a u32>, out: &mut Candidates, from: u32) -> Result<(), ClassifyError> {
        for &a in automata {
            let automaton = &self.automata[a as usize];
            automaton
                .engine
                .for_each_route_run(path, &automaton.pattern_routes, |run| match from {
                    0 => out.extend_from_slice(run),
                    _ => run.iter().filter(|&&r| r >= from).for_each(|&r| out.push(r)),
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
    pub(super) fn known_match_spans(&self, route: &CompiledRoute, path: &[u8]) -> Result<Option<Spans>, ClassifyError> {
        if !route.is_exact_in_dfa() {
            return self.verify(route, path, &mut no_regex_host);
        }
        self.matcher(route.matcher)?.known_match_spans(path).map_err(|source| ClassifyError::TooComplex { route: route.index, source })
    }

    /// Runs the route's exact regex (Ruby's, through `regex`, for a [`HostRegex`](super::HostRegex) route); `None`
    /// when it does not match after all.
    fn verify(&self, route: &CompiledRoute, path: &[u8], regex: &mut RegexHost<'_>) -> Result<Option<Spans>, ClassifyError> {
        if route.host_regex.is_some() {
            let spans = regex(route, path)?;
            if spans.as_ref().is_some_and(|s| s.len() != route.params.len() || s.iter().flatten().any(|&(a, b)| a > b || b > path.len())) {
                return Err(ClassifyError::HostRegexSpans { route: route.index });
            }
            return Ok(spans);
        }
        self.matcher(route.matcher)?.confirm(path).map_err(|source| ClassifyError::TooComplex { route: route.index, source })
    }

    fn matcher(&self, id: u32) -> Result<&Matcher, ClassifyError> {
        let lazy = &self.matchers[id as usize];
        if let Some(m) = lazy.cell.get() {
            return Ok(m);
        }
        let route = &self.routes[lazy.route as usize];
        // Validated when the classifier was loaded, so this cannot fail short of a bug.
        let (_, node, _) = route_node(route.index, &route.def, &mut RequirementCache::new(true))
            .map_err(|e| ClassifyError::RouteNoLongerCompiles { route: route.index, reason: e.to_string() })?;
        let mut run_sets = self.run_sets.lock().unwrap_or_else(|e| e.into_inner());
        Ok(lazy.cell.get_or_init(|| Matcher::for_route(&node, route.params.len(), &mut run_sets, route.is_exact_in_dfa())))
    }
}

/// Which candidate ends a first-match search (routes after it are not looked for).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// One that certainly answers: the automaton decides its regex, it allows the method, and
    /// no dynamic constraint or mounted application can turn it down. Rails' pick unless an
    /// earlier route matches.
    Certain,
    /// One the automaton decides and that allows the method, whether or not a host may still
    /// turn it down: Rails' pick unless an earlier route matches or the host declines it
    /// (GitLab's `GET /*id(.:format)` for groups, route #338 of CE's table, matches nearly
    /// every GET path; with every constraint holding, nothing after it needs a walk).
    Likely,
}

/// Candidate route ids, on the stack while there are few.
pub(super) type Candidates = InlineVec<u32, INLINE_CANDIDATES>;
