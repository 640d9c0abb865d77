//! Large tables: each route matched around its key segment, a literal every path it matches
//! contains (`issues` in `/*namespace_id/:project_id/-/issues(.:format)`).
//!
//! Why not one forward automaton per group of keyed routes: a path then walks, from its first
//! byte, every automaton its segments select, over states that track hundreds of glob-led
//! patterns at once. Cycling through GitLab's templates those states fall out of the CPU
//! caches. Split at its key, a
//! route's regex is `prefix · key · suffix`; GitLab's 5,066 templates have 954 distinct
//! prefixes (`\A/(?:.+?)/[^/.?]+/-/` alone stands for 218 routes) and 522 distinct suffixes
//! (`(?:\.[^/.?]+)?\n?\z` for 3,033). All prefixes go into one reverse DFA, searched backwards
//! from where a key segment starts, and all suffixes into one forward DFA, searched from where
//! it ends: small automata that every path shares, so they stay hot.
//!
//! A prefix with one default glob (`*namespace_id`: any bytes but a newline) is split again
//! around it: its head (`\A/`, `\A/o/[^/.?]+/`) runs forward from the path's start, once per
//! path, and its tail (`/[^/.?]+/-/`) backwards from the key, unanchored, so neither walk
//! crosses the namespace and the reverse DFA's states no longer carry every glob-led prefix
//! through it (a whole-prefix reverse DFA needed several times the cache on the templates). The
//! prefix matches when a head ends before a tail starts with no newline between them (the
//! glob's one byte or more). Suffixes are not split: their walks are short already, and
//! splitting them made the search slower.
//!
//! A prefix with another run that can match any number of `/` (GitLab CE's `*namespace_id`
//! requirement, `X(/X)*`) is split the same way at the `/` after that run and the parameter
//! segments right after it (`\A/X(/X)*/P/` and `/-/settings/ci_cd/`), the two sharing that
//! `/`: the prefix matches when a head ends right after the byte a tail starts at. Walked
//! whole, each such prefix kept its own copy of the run alive back to the path's start, and
//! varied paths took the reverse DFA through as many states as the table's prefixes hold
//! bytes. A tail that is then a plain literal (most are) is compared with the bytes before
//! the key instead of walked: in a lazy DFA each byte of a literal is a state of its own, with
//! a row of transitions (256 bytes on GitLab CE). On CE's 4,033 recorded requests cycled
//! through `recognize` and `matches` the reverse DFA's cache went 1.18 MB → 0.32 MB.
//!
//! A route matches iff, at some occurrence of its key as a whole segment after a `/`, its
//! prefix matches the path up to the key and its suffix matches the rest: the key literal sits
//! between a `/` and a `/`, `.`, newline or the end in every path the route matches (see the
//! classifier's `literal_segments`), so every split the route's regex can make is such an
//! occurrence.

use std::collections::HashMap;
use std::sync::Arc;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{HirKind, Literal};
use rustc_hash::FxHashMap;

use crate::engine::{lazy_dfa, parse_patterns, Direction, EngineConfig};
use crate::error::{AutomatonError, SearchError};
use crate::inline_vec::InlineVec;

/// A route's regex split at its key segment, as DFA patterns.
pub(crate) struct SplitRoute {
    pub route: u32,
    pub key: String,
    /// The path before the key (from `\A` to the `/` before it).
    pub prefix: Part,
    /// The pattern for the path after the key (to the end anchor).
    pub suffix: String,
    /// How many `/` the path before and after the key can hold (see [`Slashes`]).
    pub slashes: [Slashes; 2],
}

/// The number of `/` a part of a route's regex can match: a path whose count is outside needs
/// no walk (a key segment in the wrong place, `o` in `/gitlab-org/o/-/issues`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slashes {
    pub min: u16,
    /// `u16::MAX`: no bound (a glob).
    pub max: u16,
}

impl Slashes {
    #[cfg(test)]
    pub const ANY: Slashes = Slashes { min: 0, max: u16::MAX };

    #[inline]
    fn admits(self, n: usize) -> bool {
        n >= self.min as usize && (self.max == u16::MAX || n <= self.max as usize)
    }
}

/// The part of a route's regex before its key.
pub(crate) enum Part {
    /// One pattern, from `\A` to the key.
    Whole(String),
    /// `head · glob · tail`, the glob being Journey's default (`[^\n]+`).
    Glob { head: String, tail: String },
    /// `head` and `tail` sharing one `/`: the head ends with it, the tail starts with it.
    AtSlash { head: String, tail: String },
}

/// A keyed route with the ids of its patterns.
#[derive(Clone, Copy, Debug)]
struct KeyedRoute {
    route: u32,
    /// Its whole prefix or its prefix's tail: an id of [`AroundKey::literal_prefixes`] (walked
    /// by the reverse DFA when not a literal).
    prefix: u32,
    /// Its prefix's head in `heads`, or [`NO_HEAD`].
    head: u32,
    /// How its head and tail meet (when it has a head).
    join: Join,
    /// Its suffix in `suffixes`.
    suffix: u32,
    slashes: [Slashes; 2],
}

impl KeyedRoute {
    #[inline]
    fn admits(&self, before: usize, after: usize) -> bool {
        self.slashes[0].admits(before) && self.slashes[1].admits(after)
    }
}

const NO_HEAD: u32 = u32::MAX;

/// How a prefix's head (ending at `head_at`) and tail (starting at `tail_at`) make the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    /// Journey's default glob between them: one byte at least, no newline.
    Glob,
    /// The `/` both match: the head ends right after the byte the tail starts at.
    Slash,
}

/// The automata and key index for routes matched around their key.
pub(crate) struct AroundKey {
    dfas: Arc<Dfas>,
    /// One set of caches per thread, taken once per path.
    caches: Pool<Caches, CachesFn>,
    /// Key segment → its routes, ascending. FxHash: the keys come from the route table.
    keys: FxHashMap<Box<[u8]>, Box<[KeyedRoute]>>,
    /// Per prefix id, the bytes of a prefix (tail) that is a plain literal (`/-/settings/ci_cd/`):
    /// compared with the bytes before the key rather than walked by the reverse DFA, where each
    /// of its bytes would be a state of its own (a row of transitions, 256 bytes on GitLab CE).
    literal_prefixes: Box<[Option<Box<[u8]>>]>,
    /// Per pattern of the reverse DFA, its prefix id (the prefixes that are not literals).
    walked_prefixes: Box<[u32]>,
    /// The first and last keyed route: a search for routes outside costs nothing. On GitLab CE
    /// the keyed routes start at #353 while `GET /*id(.:format)` (#338) bounds most first-match
    /// searches, so three in four searches here end before reading a segment.
    routes: std::ops::RangeInclusive<u32>,
}

struct Dfas {
    /// Reverse, over every distinct whole prefix and prefix tail that is not a literal, from the
    /// key's start.
    prefixes: DFA,
    /// Forward, over every distinct prefix head, from the path's start.
    heads: DFA,
    /// Forward, over every distinct suffix, from the key's end.
    suffixes: DFA,
}

impl Dfas {
    fn all(&self) -> [&DFA; 3] {
        [&self.prefixes, &self.heads, &self.suffixes]
    }
}

struct Caches {
    prefixes: Cache,
    heads: Cache,
    suffixes: Cache,
}

type CachesFn = Box<dyn Fn() -> Caches + Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>;

impl std::fmt::Debug for AroundKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AroundKey({} keys, {} prefixes, {} heads, {} suffixes)",
            self.keys.len(),
            self.dfas.prefixes.pattern_len(),
            self.dfas.heads.pattern_len(),
            self.dfas.suffixes.pattern_len()
        )
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
    pub fn build(routes: Vec<SplitRoute>, config: &EngineConfig) -> Result<AroundKey, AutomatonError> {
        let (mut prefixes, mut heads, mut suffixes) = (Patterns::default(), Patterns::default(), Patterns::default());
        let mut keys: HashMap<String, Vec<KeyedRoute>> = HashMap::new();
        for r in routes {
            let (prefix, head, join) = match r.prefix {
                Part::Whole(p) => (prefixes.id(p), NO_HEAD, Join::Glob),
                Part::Glob { head, tail } => (prefixes.id(tail), heads.id(head), Join::Glob),
                Part::AtSlash { head, tail } => (prefixes.id(tail), heads.id(head), Join::Slash),
            };
            keys.entry(r.key).or_default().push(KeyedRoute { route: r.route, prefix, head, join, suffix: suffixes.id(r.suffix), slashes: r.slashes });
        }
        let keys: FxHashMap<Box<[u8]>, Box<[KeyedRoute]>> = keys
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_by_key(|r| r.route);
                (k.into_bytes().into_boxed_slice(), v.into_boxed_slice())
            })
            .collect();
        let mut walked = Vec::new();
        let mut walked_prefixes = Vec::new();
        let literal_prefixes = parse_patterns(&prefixes.texts)?
            .into_iter()
            .enumerate()
            .map(|(id, hir)| match hir.kind() {
                HirKind::Literal(Literal(bytes)) => Some(bytes.clone()),
                _ => {
                    walked.push(hir);
                    walked_prefixes.push(id as u32);
                    None
                }
            })
            .collect();
        let dfas = Arc::new(Dfas {
            prefixes: lazy_dfa(&walked, config, Direction::Reverse)?,
            heads: lazy_dfa(&parse_patterns(&heads.texts)?, config, Direction::Forward)?,
            suffixes: lazy_dfa(&parse_patterns(&suffixes.texts)?, config, Direction::Forward)?,
        });
        let for_pool = Arc::clone(&dfas);
        let create: CachesFn = Box::new(move || Caches {
            prefixes: for_pool.prefixes.create_cache(),
            heads: for_pool.heads.create_cache(),
            suffixes: for_pool.suffixes.create_cache(),
        });
        let keyed = || keys.values().flat_map(|routes| routes.iter().map(|r| r.route));
        let routes = keyed().min().unwrap_or(u32::MAX)..=keyed().max().unwrap_or(0);
        Ok(AroundKey { dfas, caches: Pool::new(create), keys, literal_prefixes, walked_prefixes: walked_prefixes.into_boxed_slice(), routes })
    }

    /// Calls `found` with every keyed route in `routes` (a range of route indexes) that matches
    /// `path` (a route can be reported once per occurrence of its key). Routes outside the range
    /// cost no walk: Rails never reaches those after a route that answers, and a search resumed
    /// after one skips those already looked for.
    ///
    /// Inlined for that range check alone: on GitLab CE six requests in ten end their search
    /// before the first keyed route (#353), where the call itself was most of the cost.
    #[inline]
    pub fn for_each_match(&self, path: &[u8], routes: std::ops::Range<u32>, found: impl FnMut(u32)) -> Result<(), SearchError> {
        if routes.end <= *self.routes.start() || routes.start > *self.routes.end() {
            return Ok(());
        }
        self.search(path, routes, found)
    }

    /// [`AroundKey::for_each_match`] once `routes` meets the keyed ones.
    fn search(&self, path: &[u8], routes: std::ops::Range<u32>, mut found: impl FnMut(u32)) -> Result<(), SearchError> {
        let wanted = routes;
        let dfas = &*self.dfas;
        let mut caches = None;
        // Per occurrence: the suffixes matched; the whole prefixes' and tails' starts.
        let mut suffixes = IdSet::new(dfas.suffixes.pattern_len());
        let mut tails = Pairs::new();
        // Per path, when first needed: the heads' ends.
        let mut heads: Option<Pairs> = None;
        // Whether a head ending at `from` and a tail starting at `to` meet: around a glob, one
        // byte at least and no newline; at a slash, the tail's first byte the head's last.
        let newline = path.contains(&b'\n');
        let meet = |join: Join, from: u32, to: u32| match join {
            Join::Glob => from < to && !(newline && path[from as usize..to as usize].contains(&b'\n')),
            Join::Slash => from == to + 1,
        };
        let slashes_in = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'/').count();
        let mut total_slashes = None;
        let (mut counted, mut before) = (0, 0);
        for (start, end) in key_segments(path) {
            let Some(routes) = self.keys.get(&path[start..end]) else { continue };
            // Ascending: only the routes in the range.
            let routes = &routes[routes.partition_point(|r| r.route < wanted.start)..routes.partition_point(|r| r.route < wanted.end)];
            if routes.is_empty() {
                continue;
            }
            before += slashes_in(&path[counted..start]);
            counted = start;
            let after = *total_slashes.get_or_insert_with(|| slashes_in(path)) - before;
            if !routes.iter().any(|r| r.admits(before, after)) {
                continue;
            }
            let caches = caches.get_or_insert_with(|| self.caches.get());
            // The suffix first: it is usually short (a key is mostly the last segment or next
            // to it), and an occurrence none of whose suffixes match needs no walk back.
            suffixes.clear();
            suffix_matches(&dfas.suffixes, &mut caches.suffixes, path, end, |s| suffixes.push(s))?;
            // The routes this occurrence can still match: slashes around it and a suffix after.
            let open = |r: &&KeyedRoute| r.admits(before, after) && suffixes.contains(r.suffix);
            if !routes.iter().any(|r| open(&r)) {
                continue;
            }
            // The literal prefixes these routes need, compared; the others walked back at once.
            tails.clear();
            let mut walk = false;
            for r in routes.iter().filter(open) {
                match &self.literal_prefixes[r.prefix as usize] {
                    Some(literal) if !tails.as_slice().iter().any(|&(p, _)| p == r.prefix) && path[..start].ends_with(literal) => {
                        tails.push((r.prefix, (start - literal.len()) as u32))
                    }
                    Some(_) => {}
                    None => walk = true,
                }
            }
            if walk {
                let walked = &self.walked_prefixes;
                matches_back(&dfas.prefixes, &mut caches.prefixes, path, start, |p, at| tails.push((walked[p as usize], at as u32)))?;
            }
            for r in routes.iter().filter(open) {
                let has_tail = tails.as_slice().iter().any(|&(p, _)| p == r.prefix);
                // A whole prefix starts with `\A`: it only matches from 0. A prefix with a head
                // needs its tail first: no walk forward for heads when the tail is not there.
                let matched = if r.head == NO_HEAD || !has_tail {
                    has_tail
                } else {
                    let heads = match &mut heads {
                        Some(h) => &*h,
                        None => {
                            let mut found_heads = Pairs::new();
                            matches_from_start(&dfas.heads, &mut caches.heads, path, |h, at| found_heads.push((h, at as u32)))?;
                            &*heads.insert(found_heads)
                        }
                    };
                    tails
                        .as_slice()
                        .iter()
                        .any(|&(p, tail_at)| p == r.prefix && heads.as_slice().iter().any(|&(h, head_at)| h == r.head && meet(r.join, head_at, tail_at)))
                };
                if matched {
                    found(r.route);
                }
            }
        }
        Ok(())
    }

    /// The calling thread's caches of the three automata.
    pub(crate) fn thread_caches(&self, out: &mut Vec<crate::engine::LazyCache>) {
        let caches = self.caches.get();
        let dfas = &*self.dfas;
        for (name, dfa, cache) in
            [("prefixes", &dfas.prefixes, &caches.prefixes), ("heads", &dfas.heads, &caches.heads), ("suffixes", &dfas.suffixes, &caches.suffixes)]
        {
            out.push(crate::engine::LazyCache::of(format!("around_key {name}"), dfa, cache));
        }
    }

    pub fn pattern_count(&self) -> usize {
        self.dfas.all().iter().map(|d| d.pattern_len()).sum()
    }

    /// Heap bytes of the automata (their NFAs), the key index and the cache pool (not the
    /// per-thread caches taken from it).
    pub fn memory_usage(&self) -> usize {
        let index: usize = self.keys.iter().map(|(k, v)| k.len() + std::mem::size_of_val::<[KeyedRoute]>(v)).sum();
        let table = crate::heap::hash_table::<Box<[u8]>, Box<[KeyedRoute]>>(self.keys.capacity());
        let dfas = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Dfas>();
        let literals =
            std::mem::size_of_val::<[Option<Box<[u8]>>]>(&self.literal_prefixes) + self.literal_prefixes.iter().flatten().map(|l| l.len()).sum::<usize>();
        let prefixes = literals + std::mem::size_of_val::<[u32]>(&self.walked_prefixes);
        self.dfas.all().iter().map(|d| d.get_nfa().memory_usage()).sum::<usize>() + dfas + index + table + prefixes + crate::heap::pool::<Caches, CachesFn>()
    }
}

/// The segments of a normalized path that a key can be: preceded by `/`, ending at the next
/// `/`, `.`, newline or the end, as `(start, end)` byte offsets.
fn key_segments(path: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < path.len() {
            let slash = crate::accel::find(b"/", path, at)?;
            let start = slash + 1;
            let end = crate::first_segment::segment_end(path, start);
            at = end;
            if end > start {
                return Some((start, end));
            }
        }
        None
    })
}

/// Calls `found` with every pattern of a forward DFA that matches `hay` from its start, and the
/// offset where that match ends (each pattern once per end), as an overlapping search reports
/// them, but with every pattern of a match state read at once rather than the search
/// re-entered once per match (a head ends after most `/` of a path).
fn matches_from_start(dfa: &DFA, cache: &mut Cache, hay: &[u8], found: impl FnMut(u32, usize)) -> Result<(), SearchError> {
    let sid = dfa.start_state_forward(cache, &Input::new(hay).anchored(Anchored::Yes))?;
    // Match states are entered one byte late: a match seen after `hay[at]` ends at `at`.
    walk(dfa, cache, sid, hay.iter().copied().enumerate(), hay.len(), Report::Every, found)
}

/// The same for a reverse DFA read back from `end` (look-arounds still see the bytes after
/// it): every pattern that matches `hay[start..end]` for some `start`, with that start.
fn matches_back(dfa: &DFA, cache: &mut Cache, hay: &[u8], end: usize, found: impl FnMut(u32, usize)) -> Result<(), SearchError> {
    let sid = dfa.start_state_reverse(cache, &Input::new(hay).range(..end).anchored(Anchored::Yes))?;
    // One byte late, as forward: a match seen after `hay[at]` starts at `at + 1`.
    walk(dfa, cache, sid, (0..end).rev().map(|at| (at + 1, hay[at])), 0, Report::Every, found)
}

/// Calls `found` with every pattern that matches all of `hay[start..]` (look-behinds still see
/// the bytes before `start`).
///
/// Walks the states itself and reads every pattern of the last one: an overlapping search
/// re-enters once per match, and a short suffix is matched by a dozen patterns at once (37
/// reports a path on GitLab's templates, which took most of the time spent on suffixes).
pub(crate) fn suffix_matches(dfa: &DFA, cache: &mut Cache, hay: &[u8], start: usize, mut found: impl FnMut(u32)) -> Result<(), SearchError> {
    let sid = dfa.start_state_forward(cache, &Input::new(hay).range(start..).anchored(Anchored::Yes))?;
    walk(dfa, cache, sid, hay[start..].iter().map(|&b| (0, b)), hay.len(), Report::AtEnd, |p, _| found(p))
}

/// Which match states [`walk`] reports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Each one on the way, and the one after the end of input.
    Every,
    /// Only the one after the end of input: the matches of all of the bytes.
    AtEnd,
}

/// Walks `dfa` from `sid` over `bytes`, each with the offset of the matches a match state entered
/// on it stands for, then over the end of input (matches at `eoi_at`), calling `found` with the
/// patterns of the match states `report` asks for; stops early at the dead state.
#[inline]
fn walk(
    dfa: &DFA,
    cache: &mut Cache,
    mut sid: LazyStateID,
    bytes: impl Iterator<Item = (usize, u8)>,
    eoi_at: usize,
    report: Report,
    mut found: impl FnMut(u32, usize),
) -> Result<(), SearchError> {
    for (at, b) in bytes {
        sid = if sid.is_tagged() {
            dfa.next_state(cache, sid, b)?
        } else {
            // SAFETY: `sid` is untagged and the one the last call on `cache` returned
            // (regex-automata's rule for these IDs). The checked `next_state` was ~21
            // instructions a byte, this ~8; a transition not computed yet is computed as before.
            match unsafe { dfa.next_state_untagged_unchecked(cache, sid, b) } {
                next if next.is_unknown() => dfa.next_state(cache, sid, b)?,
                next => next,
            }
        };
        if sid.is_tagged() {
            if sid.is_dead() {
                return Ok(());
            }
            if sid.is_quit() {
                return Err(SearchError::GaveUp { byte: b });
            }
            if report == Report::Every && sid.is_match() {
                for i in 0..dfa.match_len(cache, sid) {
                    found(dfa.match_pattern(cache, sid, i).as_u32(), at);
                }
            }
        }
    }
    sid = dfa.next_eoi_state(cache, sid)?;
    if sid.is_match() {
        for i in 0..dfa.match_len(cache, sid) {
            found(dfa.match_pattern(cache, sid, i).as_u32(), eoi_at);
        }
    }
    Ok(())
}

/// `(pattern, offset)` matches of one search.
type Pairs = InlineVec<(u32, u32), 16>;

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
        if self.heap.is_empty() {
            &mut self.inline[..self.words]
        } else {
            &mut self.heap
        }
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

    /// The routes of `index` that match `path` (each once), ascending.
    fn matching(index: &AroundKey, path: &str) -> Vec<u32> {
        let mut v = Vec::new();
        index.for_each_match(path.as_bytes(), 0..u32::MAX, |r| v.push(r)).unwrap();
        v.sort();
        v.dedup();
        v
    }

    /// Prefixes split at a `/` both halves match: the head must end right after the byte the
    /// tail starts at, whether the tail is a literal (compared) or not (walked).
    #[test]
    fn prefixes_split_at_a_slash_meet_there() {
        let head = r"(?-u)\A/(?:[a-z]+(?:/[a-z]+)*)/";
        let end = r"(?-u)\n?\z";
        let at_slash = |route: u32, key: &str, tail: &str| SplitRoute {
            route,
            key: key.into(),
            prefix: Part::AtSlash { head: head.into(), tail: tail.into() },
            suffix: end.into(),
            slashes: [Slashes::ANY; 2],
        };
        let routes = vec![at_slash(0, "edit", r"(?-u)/\x2D/"), at_slash(1, "jobs", r"(?-u)/\x2D/(?:[0-9]+)/"), at_slash(2, "raw", r"(?-u)/")];
        let index = AroundKey::build(routes, &EngineConfig::default()).unwrap();
        assert_eq!(index.literal_prefixes.iter().filter(|l| l.is_some()).count(), 2);
        assert_eq!(index.walked_prefixes.len(), 1);
        let found = |p: &str| matching(&index, p);
        assert_eq!(found("/a/b/-/edit"), [0]);
        assert_eq!(found("/a/-/edit\n"), [0]);
        assert_eq!(found("/a/b/c/-/12/jobs"), [1]);
        assert_eq!(found("/a/raw"), [2]);
        assert_eq!(found("/a/b/raw"), [2]);
        // The tail matches, but no head ends right after its `/`.
        assert_eq!(found("/1/-/edit"), Vec::<u32>::new());
        assert_eq!(found("/a/-/-/edit"), Vec::<u32>::new());
        assert_eq!(found("/a/b-/edit"), Vec::<u32>::new());
        assert_eq!(found("/1/-/2/jobs"), Vec::<u32>::new());
        assert_eq!(found("/a/-/x/jobs"), Vec::<u32>::new());
        assert_eq!(found("/a/-/12/-/12/jobs"), Vec::<u32>::new());
        assert_eq!(found("/raw"), Vec::<u32>::new());
        assert_eq!(found("/1/raw"), Vec::<u32>::new());
    }

    #[test]
    fn routes_match_around_any_occurrence_of_their_key() {
        let glob = r"(?-u)\A/(?:[^\n]+?)/(?:[^/.?]+)/-/";
        let format = r"(?-u)(?:\.(?:[^/.?]+))?\n?\z";
        let routes = vec![
            // The same glob-led prefix, once whole and once split around its glob.
            SplitRoute { route: 0, key: "issues".into(), prefix: Part::Whole(glob.into()), suffix: format.into(), slashes: [Slashes::ANY; 2] },
            SplitRoute {
                route: 1,
                key: "issues".into(),
                prefix: Part::Glob { head: r"(?-u)\A/".into(), tail: r"(?-u)/(?:[^/.?]+)/-/".into() },
                suffix: r"(?-u)/(?:[^/.?]+)\n?\z".into(),
                slashes: [Slashes { min: 3, max: u16::MAX }, Slashes { min: 1, max: 1 }],
            },
            SplitRoute {
                route: 2,
                key: "edit".into(),
                prefix: Part::Glob { head: r"(?-u)\A/groups/".into(), tail: r"(?-u)/-/".into() },
                suffix: r"(?-u)\n?\z".into(),
                slashes: [Slashes::ANY; 2],
            },
            SplitRoute {
                route: 3,
                key: "edit".into(),
                prefix: Part::Whole(r"(?-u)\A/".into()),
                suffix: r"(?-u)\n?\z".into(),
                slashes: [Slashes { min: 1, max: 1 }, Slashes { min: 0, max: 0 }],
            },
        ];
        let index = AroundKey::build(routes, &EngineConfig::default()).unwrap();
        let found = |p: &str| matching(&index, p);
        assert_eq!(found("/a/b/-/issues"), [0]);
        assert_eq!(found("/a/b/-/issues.json"), [0]);
        assert_eq!(found("/a/issues/-/issues/5"), [1]);
        assert_eq!(found("/issues/b/-/issues/issues"), [1]);
        assert_eq!(found("/a/b/-/issuesx"), Vec::<u32>::new());
        assert_eq!(found("/groups/x/y/-/edit"), [2]);
        assert_eq!(found("/groups/x/y/-/edit\n"), [2]);
        assert_eq!(found("/groupsx/y/-/edit"), Vec::<u32>::new());
        // The glob takes one byte at least, and no newline.
        assert_eq!(found("/groups/-/edit"), Vec::<u32>::new());
        assert_eq!(found("/groups/x\ny/-/edit"), Vec::<u32>::new());
        assert_eq!(found("/a\nb/c/-/issues/5"), Vec::<u32>::new());
        assert_eq!(found("/a\nb/c/-/issues"), Vec::<u32>::new());
        assert_eq!(found("/ab/c/-/issues/5\n"), [1]);
        assert_eq!(found("/edit"), [3]);
        // A bound leaves out the routes from it on.
        let before = |p: &str, bound: u32| {
            let mut v = Vec::new();
            index.for_each_match(p.as_bytes(), 0..bound, |r| v.push(r)).unwrap();
            v
        };
        assert_eq!(before("/a/issues/-/issues/5", 2), [1]);
        assert_eq!(before("/a/issues/-/issues/5", 1), Vec::<u32>::new());
        assert_eq!(before("/groups/x/y/-/edit", 3), [2]);
        assert_eq!(before("/edit", 3), Vec::<u32>::new());
        // A range's start leaves out the routes before it.
        let within = |p: &str, routes: std::ops::Range<u32>| {
            let mut v = Vec::new();
            index.for_each_match(p.as_bytes(), routes, |r| v.push(r)).unwrap();
            v
        };
        assert_eq!(within("/groups/x/y/-/edit", 2..4), [2]);
        assert_eq!(within("/groups/x/y/-/edit", 3..u32::MAX), Vec::<u32>::new());
        assert_eq!(within("/edit", 3..4), [3]);
        assert_eq!(within("/a/b/-/issues", 1..u32::MAX), Vec::<u32>::new());
    }
}
