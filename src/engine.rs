//! The multi-route automaton: one anchored pass over the path yields every route pattern that
//! matches it structurally.
//!
//! Patterns are compiled with `MatchKind::All`, so the final state of one overlapping search
//! holds all matching patterns; the classifier then orders them by definition order. A dense
//! DFA is used when it stays under a size limit (fastest, and serializable for zero-copy
//! loading); tables whose globs make determinization explode (GitLab's full template list,
//! where `*namespace_id` is an unconstrained `.+?`) use the lazy DFA, which only builds the
//! states real paths visit.

use std::borrow::{Borrow, Cow};
use std::sync::Arc;

use regex_automata::{
    dfa::{dense, Automaton, StartKind},
    hybrid,
    nfa::thompson,
    util::{pool::Pool, primitives::StateID, start, syntax, wire::DeserializeError},
    Anchored, Input, MatchKind,
};

use regex_syntax::hir::Hir;

use crate::error::{AutomatonError, SearchError};

/// Which automaton to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// A dense DFA for tables of up to `dense_max_patterns` patterns if it fits
    /// `dense_size_limit`, else the lazy DFA.
    #[default]
    Auto,
    /// One dense DFA per automaton: fastest, built ahead of time, serializable into artifacts.
    Dense,
    /// Lazy (hybrid) DFAs that build their states while searching, in a bounded cache: for
    /// tables whose dense DFA would be too large to determinize.
    Lazy,
    /// No automaton: a table whose every route is plain (`/literal` and `/:param` segments
    /// only, as GitHub's REST routes are) is searched by its segment tree alone, built in a
    /// fraction of a millisecond where its dense DFA took milliseconds and most of the
    /// classifier's memory. `Auto` picks it for such tables (unless
    /// [`EngineConfig::segment_tree`] is off); asked for by name, a table with a route that is
    /// not plain is refused ([`AutomatonError::NotPlain`]).
    SegmentTree,
}

impl EngineKind {
    /// `"auto"`, `"dense"`, `"lazy"` or `"segment_tree"`, as serialized and as the CLI and the
    /// gem name it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Auto => "auto",
            EngineKind::Dense => "dense",
            EngineKind::Lazy => "lazy",
            EngineKind::SegmentTree => "segment_tree",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits for building the automaton.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// Which automaton to build.
    pub kind: EngineKind,
    /// Bytes the dense DFA (and its determinization) may use before `Auto` gives up on it.
    pub dense_size_limit: usize,
    /// Bytes of transition cache per thread for each lazy DFA chunk (an upper bound: caches grow
    /// as paths visit states).
    pub lazy_cache_capacity: usize,
    /// Above this many patterns `Auto` goes straight to the lazy DFA: determinizing GitLab's
    /// full template list (glob-heavy, thousands of patterns) runs for many seconds before any
    /// size limit stops it, while the lazy DFA builds in a fraction of a second.
    pub dense_max_patterns: usize,
    /// Patterns per lazy DFA. A Thompson NFA shares no prefix between patterns, so in one DFA
    /// over thousands of `/*namespace_id/...` patterns every state holds thousands of NFA
    /// states: each new transition costs an epsilon closure over all of them, few states fit
    /// the cache, and varied traffic thrashes it.
    /// Chunks of consecutive patterns (neighbours in definition order look alike) keep every
    /// state small. Large tables match most routes around a key segment instead (see the
    /// classifier's `Layout::AnySegment`); this still chunks the routes without one.
    pub lazy_chunk_patterns: usize,
    /// Large tables (those matched around key segments): run a path whose first segment is a
    /// literal of the table through the routes that segment selects first (see
    /// `first_segment`); off only to compare with the table without it.
    pub first_segment_dispatch: bool,
    /// Keep the candidate routes of the table's literal paths once a request has found them
    /// (see the classifier's `static_paths`); off only to compare with the table without it.
    pub static_paths: bool,
    /// A table whose routes are all plain (literal segments and default parameters) is searched
    /// by a tree of its segments instead of its automata (see the classifier's
    /// `segment_tree`); off only to compare with the table without it.
    pub segment_tree: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Auto,
            dense_size_limit: 24 << 20,
            lazy_cache_capacity: 8 << 20,
            dense_max_patterns: 600,
            // Chosen on GitLab's templates with varied traffic: smaller chunks mean more automata
            // per path, larger ones thrash the caches again.
            lazy_chunk_patterns: 256,
            first_segment_dispatch: true,
            static_paths: true,
            segment_tree: true,
        }
    }
}

/// One lazy DFA over `patterns` (all matches reported, `MatchKind::All`), reading the path
/// `direction`; its cache is bounded by `config.lazy_cache_capacity`.
pub fn lazy_dfa<H: Borrow<Hir>>(patterns: &[H], config: &EngineConfig, direction: Direction) -> Result<hybrid::dfa::DFA, AutomatonError> {
    let nfa = nfa(patterns, direction)?;
    hybrid::dfa::Builder::new()
        .configure(
            hybrid::dfa::Config::new()
                .match_kind(MatchKind::All)
                .starts_for_each_pattern(false)
                .cache_capacity(config.lazy_cache_capacity)
                .skip_cache_capacity_check(true)
                // Never give up on a search: clearing the cache only costs time.
                .minimum_cache_clear_count(None),
        )
        .build_from_nfa(nfa)
        .map_err(AutomatonError::from)
}

/// The Thompson NFA of `patterns`, as a DFA builder's `build_many` makes it from their text
/// (the same configuration, captures off: no DFA uses them), without parsing any text: the
/// patterns come as HIRs ([`crate::ruby_regex::hir`]).
pub(crate) fn nfa<H: Borrow<Hir>>(patterns: &[H], direction: Direction) -> Result<thompson::NFA, AutomatonError> {
    thompson::Compiler::new()
        .configure(thompson_config().reverse(direction == Direction::Reverse).which_captures(thompson::WhichCaptures::None))
        .build_many_from_hir(patterns)
        .map_err(|e| AutomatonError::Nfa(Box::new(e)))
}

/// Parses pattern text into HIRs, for the automata still written as text (the routes split
/// around their key segment, [`crate::around_key`]).
pub(crate) fn parse_patterns<P: AsRef<str>>(patterns: &[P]) -> Result<Vec<Hir>, AutomatonError> {
    patterns.iter().map(|p| syntax::parse_with(p.as_ref(), &syntax_config()).map_err(|e| AutomatonError::Syntax(Box::new(e)))).collect()
}

/// An automaton's pattern: its HIR, or what makes it when the automaton is built.
pub(crate) trait ToHir {
    fn to_hir(&self) -> Cow<'_, Hir>;
}

impl ToHir for Hir {
    fn to_hir(&self) -> Cow<'_, Hir> {
        Cow::Borrowed(self)
    }
}

/// Which way a lazy DFA reads the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

type CacheFn = Box<dyn Fn() -> ChunkCache + Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>;

/// A lazy DFA chunk as one thread holds it: the DFA's cache, and the routes its end states
/// stand for.
pub(crate) struct ChunkCache {
    dfa: hybrid::dfa::Cache,
    ends: EndRoutes,
}

/// Above this many routes listed, a thread's [`EndRoutes`] of one chunk start over: a bound on
/// its memory whatever the traffic (GitLab CE's 4,033 recorded requests, cycled through, leave
/// ~17 KB listed across all its chunks, indexes included).
const MAX_END_ROUTES: usize = 1 << 14;

/// Per match state a path can end in, the routes of its patterns, ascending and each once.
///
/// Why: the end state of a glob-led table holds a dozen patterns (on GitLab CE's automaton
/// without a key, which every namespace path runs, 11.5 routes a path): reading each pattern
/// back from the state, mapping it to its routes and sorting them took about a third of a
/// `recognize`, where the same few hundred end states come back request after request.
/// Keyed by the lazy state's id, which means the same state only until the cache is cleared
/// (ids are then reused): the list is dropped when the cache's clear count moves.
#[derive(Default)]
struct EndRoutes {
    clears: usize,
    /// End state → `routes[start..start + len]`.
    index: rustc_hash::FxHashMap<hybrid::LazyStateID, (u32, u32)>,
    routes: Vec<u32>,
}

impl EndRoutes {
    fn memory_usage(&self) -> usize {
        crate::heap::hash_table::<hybrid::LazyStateID, (u32, u32)>(self.index.capacity()) + crate::heap::vec(&self.routes)
    }
}

#[allow(clippy::large_enum_variant)] // one per classifier, matched on every search: an indirection would cost more than the bytes
pub enum Engine {
    /// The DFA, and its start state for a search anchored at the start of a path (one for every
    /// path: the look-behind context is always the start of the text), read once rather than
    /// looked up for each walk (~70 instructions a walk, two or three walks a request); `None`
    /// when the DFA has no such start state (a loaded one built otherwise): each walk then asks,
    /// and fails as any search would.
    /// With it, its accelerated states' needles laid out for the walk ([`crate::accel::States`]).
    Dense(dense::DFA<Vec<u32>>, Option<StateID>, crate::accel::States),
    /// Lazy DFAs over consecutive chunks of the patterns; pattern ids are offset by the chunk's start.
    Lazy(Vec<LazyChunk>),
}

/// One lazy DFA's cache as the calling thread holds it ([`Classifier::lazy_caches`](crate::Classifier::lazy_caches)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LazyCache {
    /// Which automaton: `around_key prefixes`, `first_segment 3`, `keyed 0 chunk 1`...
    pub automaton: String,
    /// Its NFA's states (the cache's sparse sets take 16 bytes per state whatever it holds).
    pub nfa_states: usize,
    /// The cache's heap bytes as regex-automata counts them (`Cache::memory_usage`): what its
    /// capacity bounds (the vectors' spare capacity is not counted); for an automaton of routes
    /// without a key or led by a literal, plus the routes listed per end state (at most
    /// 64 KiB and its index).
    pub bytes: usize,
    /// The cache's capacity ([`EngineConfig::lazy_cache_capacity`]): `bytes` stays within it, a
    /// cache that a new state would take past it being cleared first.
    pub capacity: usize,
    /// How many times the cache was cleared because it was full.
    pub clears: usize,
}

impl LazyCache {
    fn of_chunk(automaton: String, dfa: &hybrid::dfa::DFA, cache: &ChunkCache) -> LazyCache {
        let mut of = LazyCache::of(automaton, dfa, &cache.dfa);
        of.bytes += cache.ends.memory_usage();
        of
    }

    pub(crate) fn of(automaton: String, dfa: &hybrid::dfa::DFA, cache: &hybrid::dfa::Cache) -> LazyCache {
        LazyCache {
            automaton,
            nfa_states: dfa.get_nfa().states().len(),
            bytes: cache.memory_usage(),
            capacity: dfa.get_config().get_cache_capacity(),
            clears: cache.clear_count(),
        }
    }
}

pub struct LazyChunk {
    first_pattern: u32,
    dfa: Arc<hybrid::dfa::DFA>,
    pool: Pool<ChunkCache, CacheFn>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine::{}", self.kind())
    }
}

pub(crate) fn syntax_config() -> syntax::Config {
    // Paths are bytes: `[^/]` must match any byte, and patterns are written in `(?-u)`.
    syntax::Config::new().unicode(false).utf8(false)
}

pub(crate) fn thompson_config() -> thompson::Config {
    thompson::Config::new().utf8(false)
}

impl Engine {
    /// The automaton over `patterns` (see [`crate::ruby_regex::hir`]), pattern `i` reported as `i`.
    pub fn build<P: ToHir>(patterns: &[P], config: &EngineConfig) -> Result<Engine, AutomatonError> {
        match config.kind {
            EngineKind::Dense => Self::build_dense(patterns, usize::MAX >> 4, false),
            EngineKind::Lazy => Self::build_lazy(patterns, config),
            // A table searched by its segment tree alone builds no automaton (see
            // `Classifier::build`); any other asks as `Auto` does.
            EngineKind::Auto | EngineKind::SegmentTree if patterns.len() > config.dense_max_patterns => Self::build_lazy(patterns, config),
            EngineKind::Auto | EngineKind::SegmentTree => match Self::build_dense(patterns, config.dense_size_limit, false) {
                Ok(e) => Ok(e),
                Err(_) => Self::build_lazy(patterns, config),
            },
        }
    }

    /// A dense DFA over `patterns` (anchored, every match reported), within `limit` bytes;
    /// `minimize` for a small DFA whose states should loop where they can, so that they are
    /// accelerated (determinizing alone keeps equivalent states apart: on GitLab CE's
    /// `/*id(.:format)`, one after a word byte and one after any other, which no one to three
    /// bytes leave).
    pub(crate) fn build_dense<P: ToHir>(patterns: &[P], limit: usize, minimize: bool) -> Result<Engine, AutomatonError> {
        let nfa = nfa(&patterns.iter().map(ToHir::to_hir).collect::<Vec<_>>(), Direction::Forward)?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored)
                    .minimize(minimize)
                    .dfa_size_limit(Some(limit))
                    .determinize_size_limit(Some(limit)),
            )
            .build_from_nfa(&nfa)?;
        Ok(Engine::dense(dfa))
    }

    /// A dense engine over `dfa`, with its start state.
    fn dense(dfa: dense::DFA<Vec<u32>>) -> Engine {
        let start = dfa.start_state(&start::Config::new().anchored(Anchored::Yes)).ok();
        let accel = crate::accel::States::of(&dfa, start);
        Engine::Dense(dfa, start, accel)
    }

    fn build_lazy<P: ToHir>(patterns: &[P], config: &EngineConfig) -> Result<Engine, AutomatonError> {
        let chunk = config.lazy_chunk_patterns.max(1);
        let chunks =
            patterns.chunks(chunk).enumerate().map(|(i, part)| Self::build_lazy_chunk((i * chunk) as u32, part, config)).collect::<Result<Vec<_>, _>>()?;
        Ok(Engine::Lazy(chunks))
    }

    fn build_lazy_chunk<P: ToHir>(first_pattern: u32, patterns: &[P], config: &EngineConfig) -> Result<LazyChunk, AutomatonError> {
        // One chunk's HIRs at a time: a route's HIR is made here and dropped once its chunk's
        // NFA is built (all of a 1,600-pattern automaton's at once were 4 MB more at the
        // peak of the template snapshot's build).
        let hirs: Vec<Cow<'_, Hir>> = patterns.iter().map(ToHir::to_hir).collect();
        let dfa = Arc::new(lazy_dfa(&hirs, config, Direction::Forward)?);
        let for_pool = Arc::clone(&dfa);
        let create: CacheFn = Box::new(move || ChunkCache { dfa: for_pool.create_cache(), ends: EndRoutes::default() });
        Ok(LazyChunk { first_pattern, dfa, pool: Pool::new(create) })
    }

    /// Number of patterns the automaton was built from.
    pub fn pattern_len(&self) -> usize {
        match self {
            Engine::Dense(dfa, ..) => dfa.pattern_len(),
            Engine::Lazy(chunks) => chunks.iter().map(|c| c.dfa.pattern_len()).sum(),
        }
    }

    /// [`EngineKind::Dense`] or [`EngineKind::Lazy`].
    pub fn kind(&self) -> EngineKind {
        match self {
            Engine::Dense(..) => EngineKind::Dense,
            Engine::Lazy(_) => EngineKind::Lazy,
        }
    }

    /// Heap bytes held by the automaton (for the lazy DFA: its NFA and its cache pool, not the
    /// per-thread caches taken from it).
    pub fn memory_usage(&self) -> usize {
        match self {
            Engine::Dense(dfa, _, accel) => dfa.memory_usage() + accel.memory_usage(),
            Engine::Lazy(chunks) => {
                let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<hybrid::dfa::DFA>();
                let each = arc + crate::heap::pool::<ChunkCache, CacheFn>();
                crate::heap::vec(chunks) + chunks.iter().map(|c| c.dfa.get_nfa().memory_usage() + each).sum::<usize>()
            }
        }
    }

    /// The calling thread's cache of each lazy DFA (none for a dense DFA), labelled `name`
    /// (with the chunk's number when there are several).
    pub(crate) fn thread_caches(&self, name: &str, out: &mut Vec<LazyCache>) {
        if let Engine::Lazy(chunks) = self {
            for (i, chunk) in chunks.iter().enumerate() {
                let label = if chunks.len() == 1 { name.to_string() } else { format!("{name} chunk {i}") };
                out.push(LazyCache::of_chunk(label, &chunk.dfa, &chunk.pool.get()));
            }
        }
    }

    /// Calls `found` with every pattern that matches all of `hay`.
    #[inline]
    pub fn for_each_match(&self, hay: &[u8], mut found: impl FnMut(u32)) -> Result<(), SearchError> {
        match self {
            Engine::Dense(dfa, start, accel) => {
                // As for the lazy DFA below: the state after the whole path holds every match.
                if let Some(sid) = dense_end_state(dfa, *start, accel, hay)? {
                    for i in 0..dfa.match_len(sid) {
                        found(dfa.match_pattern(sid, i).as_u32());
                    }
                }
                Ok(())
            }
            Engine::Lazy(chunks) => {
                // Only matches ending where the path ends count: walk the path and read every
                // pattern of the state after it, rather than an overlapping search re-entering
                // once per match (a fifth of the time on GitLab CE's literal-led paths).
                for chunk in chunks {
                    let mut cache = chunk.pool.get();
                    crate::around_key::suffix_matches(&chunk.dfa, &mut cache.dfa, hay, 0, |p| found(chunk.first_pattern + p))?;
                }
                Ok(())
            }
        }
    }

    /// Calls `found` with the routes of every pattern that matches all of `hay`
    /// (`pattern_routes[p]` for pattern `p`; an automaton passes its own, always the same), as
    /// runs each ascending and without repeats: one per pattern of a dense DFA, one per chunk
    /// of a lazy one, listed once per end state and thread (see [`EndRoutes`]).
    #[inline]
    pub(crate) fn for_each_route_run(&self, hay: &[u8], pattern_routes: &[Vec<u32>], mut found: impl FnMut(&[u32])) -> Result<(), SearchError> {
        let Engine::Lazy(chunks) = self else {
            return self.for_each_match(hay, |p| found(&pattern_routes[p as usize]));
        };
        for chunk in chunks {
            let mut guard = chunk.pool.get();
            let ChunkCache { dfa: cache, ends } = &mut *guard;
            let Some(end) = end_state(&chunk.dfa, cache, hay)? else { continue };
            if ends.clears != cache.clear_count() {
                *ends = EndRoutes { clears: cache.clear_count(), ..EndRoutes::default() };
            }
            let (start, len) = match ends.index.get(&end) {
                Some(&run) => run,
                None => {
                    // Once per end state: a Vec of its own is no cost worth sparing.
                    let mut run: Vec<u32> = (0..chunk.dfa.match_len(cache, end))
                        .flat_map(|i| &pattern_routes[chunk.first_pattern as usize + chunk.dfa.match_pattern(cache, end, i).as_usize()])
                        .copied()
                        .collect();
                    run.sort_unstable();
                    run.dedup();
                    let (start, kept) = (ends.routes.len(), run.len());
                    ends.routes.extend_from_slice(&run);
                    if ends.routes.len() > MAX_END_ROUTES {
                        // Listed for this path all the same; the next ones start over.
                        found(&ends.routes[start..]);
                        *ends = EndRoutes { clears: ends.clears, ..EndRoutes::default() };
                        continue;
                    }
                    let run = (start as u32, kept as u32);
                    ends.index.insert(end, run);
                    run
                }
            };
            found(&ends.routes[start as usize..(start + len) as usize]);
        }
        Ok(())
    }

    /// The dense DFA's serialized form (little-endian), if this is a dense engine.
    pub fn dense_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Engine::Dense(dfa, ..) => {
                let (bytes, pad) = dfa.to_bytes_little_endian();
                Some(bytes[pad..].to_vec())
            }
            Engine::Lazy(_) => None,
        }
    }

    /// Loads a dense DFA written by [`Engine::dense_bytes`]; the bytes are validated.
    pub fn from_dense_bytes(bytes: &[u8]) -> Result<Engine, DeserializeError> {
        // DFA::from_bytes needs 4-byte alignment: deserialize from an aligned copy if needed.
        if bytes.as_ptr() as usize % 4 == 0 {
            let (dfa, _) = dense::DFA::from_bytes(bytes)?;
            Ok(Engine::dense(dfa.to_owned()))
        } else {
            let mut words = vec![0u32; bytes.len().div_ceil(4)];
            let buf: &mut [u8] = bytemuck_cast(&mut words);
            buf[..bytes.len()].copy_from_slice(bytes);
            let (dfa, _) = dense::DFA::from_bytes(&buf[..bytes.len()])?;
            Ok(Engine::dense(dfa.to_owned()))
        }
    }
}

/// The match state a lazy DFA is in after all of `hay` and its end (`None`: no pattern matches).
///
/// Walks the untagged states with `next_state_untagged`, as regex-automata's own searches do:
/// the checked `next_state` took ~21 instructions a byte (its `Result`, the tag mask), this
/// ~11, and every namespace path on GitLab CE is walked whole by at least one automaton.
#[inline]
fn end_state(dfa: &hybrid::dfa::DFA, cache: &mut hybrid::dfa::Cache, hay: &[u8]) -> Result<Option<hybrid::LazyStateID>, SearchError> {
    let mut sid = dfa.start_state_forward(cache, &Input::new(hay).anchored(Anchored::Yes))?;
    let mut at: usize = 0;
    loop {
        if sid.is_tagged() {
            if sid.is_dead() {
                return Ok(None);
            }
            if sid.is_quit() {
                return Err(SearchError::GaveUp { byte: hay[at.saturating_sub(1)] });
            }
            // A match state on the way (a pattern that could end here), or a start state.
            if at == hay.len() {
                break;
            }
            sid = dfa.next_state(cache, sid, hay[at])?;
            at += 1;
            continue;
        }
        if at == hay.len() {
            break;
        }
        let mut prev = sid;
        // SAFETY (each `step`): `at < hay.len()`, and the state walked from is untagged and
        // the one the last call on `cache` returned (regex-automata's rule for these IDs; no
        // call in between may change the cache).
        let step = |sid, at: usize| unsafe { dfa.next_state_untagged_unchecked(cache, sid, *hay.get_unchecked(at)) };
        'walk: {
            // Four transitions a round while none leaves the untagged states, as regex-automata's
            // own search unrolls: ~7 instructions a byte rather than ~11 (bounds and loop checks).
            while at + 4 <= hay.len() {
                let s1 = step(sid, at);
                if s1.is_tagged() {
                    (prev, sid, at) = (sid, s1, at + 1);
                    break 'walk;
                }
                let s2 = step(s1, at + 1);
                if s2.is_tagged() {
                    (prev, sid, at) = (s1, s2, at + 2);
                    break 'walk;
                }
                let s3 = step(s2, at + 2);
                if s3.is_tagged() {
                    (prev, sid, at) = (s2, s3, at + 3);
                    break 'walk;
                }
                let s4 = step(s3, at + 3);
                (prev, sid, at) = (s3, s4, at + 4);
                if s4.is_tagged() {
                    break 'walk;
                }
            }
            while at < hay.len() {
                prev = sid;
                sid = step(sid, at);
                at += 1;
                if sid.is_tagged() {
                    break;
                }
            }
        }
        // Never go on from a transition not computed yet: compute it.
        if sid.is_unknown() {
            sid = dfa.next_state(cache, prev, hay[at - 1])?;
        }
    }
    sid = dfa.next_eoi_state(cache, sid)?;
    Ok(sid.is_match().then_some(sid))
}

/// The match state a dense DFA is in after all of `hay` (anchored at its start), if any.
///
/// Accelerated states (those that only one to three bytes leave: a `.+?` waiting for a `.` or a
/// newline) skip to the next such byte ([`crate::accel::find`]: one 16-byte window, then
/// `memchr`), as regex-automata's own searches do: a transition is a load that depends on the
/// one before (~7 cycles a byte), a vector compare reads sixteen bytes at once.
#[inline]
fn dense_end_state(dfa: &dense::DFA<Vec<u32>>, start: Option<StateID>, accel: &crate::accel::States, hay: &[u8]) -> Result<Option<StateID>, SearchError> {
    let mut sid = match start {
        Some(sid) => sid,
        None => dfa.start_state_forward(&Input::new(hay).anchored(Anchored::Yes))?,
    };
    let mut at = 0;
    while at < hay.len() {
        // SAFETY: `at < hay.len()`; `sid` is the start state or a transition's target, and
        // every transition of a DFA built here or read by `DFA::from_bytes` (which validates
        // them all) is a state of the same DFA.
        sid = unsafe { dfa.next_state_unchecked(sid, *hay.get_unchecked(at)) };
        at += 1;
        if dfa.is_special_state(sid) {
            if dfa.is_dead_state(sid) {
                return Ok(None);
            }
            if dfa.is_quit_state(sid) {
                return Err(SearchError::GaveUp { byte: hay[at - 1] });
            }
            if dfa.is_accel_state(sid) {
                at = accel.skip(dfa, sid, hay, at);
            }
        }
    }
    sid = dfa.next_eoi_state(sid);
    Ok(dfa.is_match_state(sid).then_some(sid))
}

fn bytemuck_cast(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: u32 has no padding and any byte pattern is a valid u32; the length is exact.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 4) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATTERNS: [&str; 7] = [
        r"/(?s-u:.+?)/[^/.?]+/-/issues(?:\.[^/.?]+)?",
        r"/(?s-u:.+?)/[^/.?]+(?:\.[^/.?]+)?",
        r"/groups/(?s-u:.+?)/-/edit",
        r"/[^/.?]+",
        r"/(?s-u:.+?)/[^/.?]+/-/merge_requests/[^/.?]+",
        r"/-/profile",
        r"/api/[^/.?]+/projects/[^/]+/issues",
    ];
    const PATHS: [&str; 9] = [
        "/a/b/-/issues",
        "/a/b/c/-/issues.json",
        "/groups/x/y/-/edit",
        "/x",
        "/-/profile",
        "/a/b/-/merge_requests/1",
        "/api/v4/projects/1/issues",
        "/",
        "/a/b",
    ];

    /// The routes listed per end state are those of the patterns matching there, ascending and
    /// each once, on a first search and on repeats, and when the cache is cleared again and
    /// again (a cache too small for two states: the list's state ids are then stale).
    #[test]
    fn route_runs_are_the_matching_patterns_routes() {
        let patterns = parse_patterns(&PATTERNS).unwrap();
        // Unsorted, overlapping, and one pattern without routes.
        let pattern_routes: Vec<Vec<u32>> = vec![vec![9, 2], vec![2, 7], vec![], vec![1], vec![7, 9, 3], vec![0], vec![5, 4]];
        for (chunk, capacity) in [(1, 8 << 20), (3, 8 << 20), (100, 8 << 20), (100, 0), (2, 0)] {
            let config = EngineConfig { kind: EngineKind::Lazy, lazy_chunk_patterns: chunk, lazy_cache_capacity: capacity, ..EngineConfig::default() };
            let lazy = Engine::build(&patterns, &config).unwrap();
            for round in 0..3 {
                for path in PATHS.iter().chain(PATHS.iter().rev()) {
                    let mut expected = Vec::new();
                    lazy.for_each_match(path.as_bytes(), |p| expected.extend_from_slice(&pattern_routes[p as usize])).unwrap();
                    expected.sort();
                    expected.dedup();
                    let mut got = Vec::new();
                    lazy.for_each_route_run(path.as_bytes(), &pattern_routes, |run| {
                        assert!(run.windows(2).all(|w| w[0] < w[1]), "{run:?}");
                        got.extend_from_slice(run);
                    })
                    .unwrap();
                    // Each run is one chunk's: chunks may list a route again (the caller sorts).
                    got.sort();
                    got.dedup();
                    assert_eq!(got, expected, "chunk {chunk}, capacity {capacity}, round {round}, path {path}");
                }
            }
            if capacity == 0 {
                let mut caches = Vec::new();
                lazy.thread_caches("t", &mut caches);
                assert!(caches.iter().any(|c| c.clears > 0), "{caches:?}");
            }
        }
    }

    /// Chunked lazy DFAs report the same pattern ids as one dense DFA over all patterns.
    #[test]
    fn lazy_chunks_agree_with_dense() {
        let patterns = parse_patterns(&PATTERNS).unwrap();
        let dense = Engine::build(&patterns, &EngineConfig { kind: EngineKind::Dense, ..EngineConfig::default() }).unwrap();
        for chunk in [1, 2, 3, 100] {
            let lazy = Engine::build(&patterns, &EngineConfig { kind: EngineKind::Lazy, lazy_chunk_patterns: chunk, ..EngineConfig::default() }).unwrap();
            assert_eq!(lazy.pattern_len(), patterns.len());
            for path in PATHS {
                let collect = |e: &Engine| {
                    let mut v = Vec::new();
                    e.for_each_match(path.as_bytes(), |p| v.push(p)).unwrap();
                    v.sort();
                    v
                };
                assert_eq!(collect(&lazy), collect(&dense), "chunk {chunk}, path {path}");
            }
        }
    }
}
