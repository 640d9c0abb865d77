//! Parameter positions read off the path's `/`s, for routes whose shape leaves them no choice.
//!
//! Why: once the automaton has matched a path to a route whose regex it decides exactly, the
//! backtracking matcher only runs to say where each parameter is — about 140 steps on a GitLab
//! path, a third of a learn call when every request is a new path. For most routes the
//! positions are forced: every `/` in the regex outside a parameter is a literal and every
//! parameter but at most one (the glob, alone in its segment) cannot hold a `/`, so the path's
//! `/`s pair up with the regex's in order, the glob taking the extra ones; inside a segment a
//! parameter sits between fixed-width literals, and an optional `(.:format)` at the end starts
//! at the first `.` that parameter cannot hold. Only one split exists, so it is the one
//! Onigmo's backtracking finds, greedy or lazy.
//!
//! Optional literal groups (`(/-/jira)/*namespace_id/:project_id`) make a few such shapes,
//! tried in the order backtracking tries them (a greedy group taken first). Every shape but
//! the last is checked byte by byte against the path; the last needs no check, since the
//! automaton has already found that one of them matches.
//!
//! A *verifying* plan (for a route the automaton widens) may also follow two globs, trying the
//! first one's share of the extra segments in its backtracking order ([`SpanPlan::verify`]).
//!
//! A plan answers only for a path the route is known to match; a path that does not fit (one
//! with a newline, where `\Z` may leave it unmatched; widths that do not add up) gets `None`,
//! and the matcher runs instead.

use crate::matcher::Spans;
use crate::ruby_regex::ast::{Assertion, ByteSet, Node};
use crate::segment_scan::{segment_end, slash_cuts, Cuts};

/// At most this many optional literal groups are expanded (2ⁿ shapes).
const MAX_OPTIONAL_GROUPS: usize = 2;

/// How to find a route's parameter spans from the path's `/` positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanPlan {
    /// In backtracking order; all but the last carry a [`Check`] (the last needs none: the
    /// automaton has found that one of them matches), every one in a verifying plan.
    shapes: Box<[Shape]>,
    slots: usize,
    /// Built by [`SpanPlan::verifying`]: answers whether the route matches at all.
    verifying: bool,
}

/// What a verifying plan says of a path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The plan cannot tell (a newline in the path): the matcher decides.
    Undecided,
    NoMatch,
    Match(Spans),
}

/// The regex with each optional group either taken or not.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    /// The regex between its `/` literals, in order (the first is what precedes the first `/`).
    segments: Box<[Segment]>,
    /// The segment holding the parameter that may contain `/`, and that parameter's slot (the
    /// last such parameter when there are two).
    glob: Option<(usize, u32)>,
    /// In a verifying plan, a first parameter that may contain `/` before `glob` (GitLab's
    /// `/*namespace_id/:project_id/*all(.:format)`): its segment, its slot, and the order in
    /// which backtracking gives it the path's extra segments ([`SpanPlan::verify`] tries each
    /// split in that order).
    first_glob: Option<(usize, u32, GlobOrder)>,
    /// What a path must hold to match this shape (not kept for the last shape).
    check: Option<Box<Check>>,
    /// The glob ends the path and an optional `(.:format)` follows it (GitLab's
    /// `/*id(.:format)`, the group page).
    glob_format: Option<GlobFormat>,
}

/// The order in which backtracking tries the number of path segments a glob holds, when
/// another glob after it takes the rest: what a verifying plan needs to try two globs' splits
/// as Onigmo does ([`glob_order`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobOrder {
    /// A greedy glob: as many segments as it can hold first.
    MostFirst,
    /// A lazy glob (Journey's `.+?`): one segment first.
    FewestFirst,
}

/// A glob that may hold `.`, followed by `(.:format)` at the end of the path: where the glob
/// ends is a choice, but one backtracking makes in a known order. A lazy glob (Journey's
/// default `.+?`) is tried shortest first, and the format cannot hold a `.`: the format starts
/// at the path's last `.` if what follows is a format value and what precedes a glob value,
/// else the glob takes the whole rest. A greedy glob takes the whole rest at once (it can),
/// and the optional format then matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GlobFormat {
    format_slot: u32,
    lazy: bool,
    glob: Repeat,
    format: FormatValue,
}

/// What a format parameter may hold: one class repeated (`[^/.?]+`), or one of a few
/// fixed-width alternatives (GitLab's `(html|json|atom)`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum FormatValue {
    Repeat(Repeat),
    Runs(Box<[Box<[ByteSet]>]>),
}

/// At most this many alternatives are kept for a format (more: no plan).
const MAX_FORMAT_RUNS: usize = 16;

impl FormatValue {
    fn of(node: &Node) -> Option<FormatValue> {
        if let Some(repeat) = simple_repeat(node) {
            return Some(FormatValue::Repeat(repeat));
        }
        let runs = fixed_runs(node)?;
        Some(FormatValue::Runs(runs.into_iter().map(Vec::into_boxed_slice).collect()))
    }

    /// Whether the whole of `bytes` is a value of the format (the format's regex matches
    /// exactly `bytes`, as it must before `\Z`).
    fn admits(&self, bytes: &[u8]) -> bool {
        match self {
            FormatValue::Repeat(repeat) => repeat.admits(bytes),
            FormatValue::Runs(runs) => runs.iter().any(|run| run.len() == bytes.len() && run.iter().zip(bytes).all(|(set, &b)| set.contains(b))),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            FormatValue::Repeat(_) => 0,
            FormatValue::Runs(runs) => {
                runs.len() * std::mem::size_of::<Box<[ByteSet]>>() + runs.iter().map(|r| std::mem::size_of_val::<[ByteSet]>(r)).sum::<usize>()
            }
        }
    }
}

/// The fixed-width alternatives a node matches (each a run of classes), if it is built of
/// classes, runs, concatenations and alternations only, with few alternatives.
fn fixed_runs(node: &Node) -> Option<Vec<Vec<ByteSet>>> {
    let runs = match node {
        Node::Empty => vec![Vec::new()],
        Node::Class(set) => vec![vec![*set]],
        Node::Seq(sets) => vec![sets.clone()],
        Node::SeqAlt(set) => set.runs.clone(),
        Node::Alt(alts) => alts.iter().map(fixed_runs).collect::<Option<Vec<_>>>()?.concat(),
        Node::Concat(items) => items.iter().try_fold(vec![Vec::new()], |acc, item| product(&acc, &fixed_runs(item)?))?,
        // `a?`, `x{1,2}`: each count in turn (whichever order backtracking tries them in, the
        // format must match the whole value either way).
        Node::Repeat { node, min, max: Some(max), .. } if *max <= 4 => {
            let once = fixed_runs(node)?;
            let mut power = vec![Vec::new()];
            let mut all = Vec::new();
            for count in 0..=*max {
                if count >= *min {
                    all.extend(power.iter().cloned());
                }
                power = product(&power, &once)?;
            }
            all
        }
        _ => return None,
    };
    (runs.len() <= MAX_FORMAT_RUNS).then_some(runs)
}

/// Every run of `heads` followed by every run of `tails`, unless there are too many.
fn product(heads: &[Vec<ByteSet>], tails: &[Vec<ByteSet>]) -> Option<Vec<Vec<ByteSet>>> {
    (heads.len() * tails.len() <= MAX_FORMAT_RUNS)
        .then(|| heads.iter().flat_map(|head| tails.iter().map(move |tail| [&head[..], &tail[..]].concat())).collect())
}

impl GlobFormat {
    /// The glob's and the format's spans, the glob starting at `start` and the two of them
    /// running to the end of `path`.
    fn split(&self, path: &[u8], start: usize) -> ((usize, usize), Option<(usize, usize)>) {
        let whole = (start, path.len());
        if !self.lazy {
            return (whole, None);
        }
        // `memrchr`: the glob is most of the path (GitLab's `/*id(.:format)`, the group page, answers
        // most GET paths of CE's recorded traffic), where a byte loop back cost ~8 instructions a byte.
        let Some(dot) = memchr::memrchr(b'.', &path[start..]).map(|d| start + d) else { return (whole, None) };
        if self.glob.admits(&path[start..dot]) && self.format.admits(&path[dot + 1..]) {
            ((start, dot), Some((dot + 1, path.len())))
        } else {
            (whole, None)
        }
    }
}

/// One segment of the regex: `lead` fixed-width bytes, an optional parameter, `trail` bytes,
/// and (in the last segment only) an optional `(.:format)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Segment {
    lead: usize,
    param: Option<u32>,
    trail: usize,
    /// The slot of an optional `.` + parameter ending the segment; the format cannot hold a
    /// `.`, and where it starts is `format_at`.
    format: Option<u32>,
    format_at: FormatAt,
}

/// Where the segment's optional `(.:format)` starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum FormatAt {
    /// At the first `.` after the lead: the segment's parameter cannot hold one.
    #[default]
    FirstDot,
    /// Nowhere: the parameter, which may hold `.`s, takes the segment (a verifying plan's
    /// first try for a parameter that tries its longest ends first).
    Absent,
    /// At the segment's last `.` (that plan's second try).
    LastDot,
}

/// What a shape checks of a path before placing its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// Nothing: the automaton found the path matches (the last shape of a plan).
    None,
    /// Its literal bytes and every parameter's class (a shape tried before the last).
    Classes,
    /// Its literal bytes (and the classes of the parameters that are one class repeated);
    /// the caller checks each parameter's regex ([`SpanPlan::verifying`]).
    LiteralsOnly,
}

/// A shape's literal bytes and parameter classes, for shapes that must be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Check {
    /// Every segment's leading and trailing literal bytes, one after another: one allocation
    /// per shape (a verifying plan is kept for each of GitLab CE's ~750 widened routes).
    bytes: Box<[u8]>,
    /// Per segment, where its lead and its trail end in `bytes` (each starts where the one
    /// before it ends).
    ends: Box<[(u16, u16)]>,
    /// Per slot: the bytes the parameter may hold and its length bounds (empty when no
    /// parameter is one class repeated).
    params: Box<[Option<Repeat>]>,
}

impl Check {
    /// The `i`th segment's leading and trailing literal bytes.
    fn literals(&self, i: usize) -> (&[u8], &[u8]) {
        let from = if i == 0 { 0 } else { self.ends[i - 1].1 as usize };
        let (lead, trail) = self.ends[i];
        (&self.bytes[from..lead as usize], &self.bytes[lead as usize..trail as usize])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Repeat {
    set: ByteSet,
    min: u32,
    max: Option<u32>,
}

impl Repeat {
    /// Whether `bytes` is a value of this repetition. Plans never place a path holding a `\n`
    /// ([`SpanPlan::verify`] and [`SpanPlan::spans`] give those to the matcher), so for a class
    /// of every other byte (a glob's `.+?`) only the length is left to check: the bytes of a
    /// glob holding most of the path were compared one by one on every split tried.
    fn admits(&self, bytes: &[u8]) -> bool {
        debug_assert!(!bytes.contains(&b'\n') || !self.set.holds_all_but_newline() || self.set.contains(b'\n'));
        bytes.len() >= self.min as usize
            && self.max.is_none_or(|max| bytes.len() <= max as usize)
            && (self.set.holds_all_but_newline() || bytes.iter().all(|&b| self.set.contains(b)))
    }
}

/// What a regex item is, seen from the segments.
#[derive(Debug)]
enum Item {
    Slash,
    /// A run of literal bytes, none a `/`: the regex's `start..end`th (see [`RunBytes`]). One
    /// item per run, not per byte, and borrowed by the shapes, not cloned into each (GitLab's
    /// template snapshot: [`SpanPlan::new`] 88.9M -> 41.0M instructions).
    Bytes {
        start: u32,
        end: u32,
    },
    /// `repeat`: the parameter's regex when it is one class repeated.
    Param {
        slot: u32,
        bytes: ByteSet,
        repeat: Option<Repeat>,
        /// A lazy repeat (`.+?`): tried shortest first.
        lazy: bool,
        /// It may hold a `.` but no `/`, and tries its ends longest first
        /// ([`crate::piece_check::ends_longest_first`]).
        dotted_longest_first: bool,
        /// For a parameter that may hold `/`: the order of its splits, when [`glob_order`]
        /// knows it.
        order: Option<GlobOrder>,
    },
    Format {
        slot: u32,
        repeat: Option<Repeat>,
        value: Option<FormatValue>,
    },
    /// A greedy optional group of literals.
    Optional(Vec<Item>),
}

impl SpanPlan {
    /// The plan for a route's regex (as [`crate::journey::route_regex`] builds it), or `None`
    /// when its shape does not force the parameters' positions.
    pub fn new(regex: &Node, slots: usize) -> Option<SpanPlan> {
        Self::build(regex, slots, false)
    }

    /// A plan that decides whether the regex matches at all, for a route the automaton widens
    /// (GitLab's namespace and project requirements: look-arounds, bounded repeats): every
    /// shape checks the path's literal bytes, and [`SpanPlan::verify`] has the caller check
    /// each parameter's own regex on the span the shape gives it.
    ///
    /// Why that is the route's answer: the parameters the plan places are split by the same
    /// argument as [`SpanPlan::new`]'s, which rests only on the bytes each parameter can
    /// consume (look-around bodies consume none), so any match of the regex with a shape's choice
    /// of optional groups has exactly the spans that shape places. The regex then matches iff
    /// the literals are there and each parameter's regex matches its span — run in place on
    /// the whole path, so its look-arounds see what they see inside the route's regex — and
    /// the first shape that matches, in backtracking order, is the one Onigmo finds. The
    /// parameter checks replace running the route's whole regex, whose backtracking repeats
    /// the namespace's look-ahead for every candidate route of a path.
    pub fn verifying(regex: &Node, slots: usize) -> Option<SpanPlan> {
        Self::build(regex, slots, true)
    }

    pub(crate) fn is_verifying(&self) -> bool {
        self.verifying
    }

    fn build(regex: &Node, slots: usize, verifying: bool) -> Option<SpanPlan> {
        let Node::Concat(items) = regex else { return None };
        let (first, rest) = items.split_first()?;
        let (last, body) = rest.split_last()?;
        if !matches!(first, Node::Assert(Assertion::StartText)) || !matches!(last, Node::Assert(Assertion::EndText | Assertion::EndTextOptionalNewline)) {
            return None;
        }
        // Each body node (a spec node) makes at most one item.
        let flat_body = |bytes: &mut RunBytes| {
            let mut flat = Vec::with_capacity(body.len());
            body.iter().try_for_each(|node| flatten(node, &mut flat, bytes, true))?;
            Some(flat)
        };
        let mut bytes = if verifying { RunBytes { count: 0, kept: Some(Vec::new()) } } else { RunBytes::default() };
        let mut flat = flat_body(&mut bytes)?;
        let groups = flat.iter().filter(|i| matches!(i, Item::Optional(_))).count();
        if groups > MAX_OPTIONAL_GROUPS {
            return None;
        }
        if (groups > 0 || ends_with_dotted_format(&flat)) && !verifying {
            // All shapes but the last check their literal bytes: flatten again, keeping them.
            bytes = RunBytes { count: 0, kept: Some(Vec::new()) };
            flat = flat_body(&mut bytes)?;
        }
        let bytes = bytes.kept.unwrap_or_default();
        // Every group taken: the most items a shape has.
        let most = flat.iter().map(|i| if let Item::Optional(inner) = i { inner.len() } else { 1 }).sum();
        // Backtracking order: the first group taken before not, then the next group...
        let combos = 1usize << groups;
        let mut shapes = Vec::with_capacity(combos);
        for combo in 0..combos {
            let mut group = 0;
            let mut items = Vec::with_capacity(most);
            for item in &flat {
                match item {
                    Item::Optional(inner) => {
                        let taken = combo & (1 << (groups - 1 - group)) == 0;
                        group += 1;
                        if taken {
                            items.extend(inner);
                        }
                    }
                    other => items.push(other),
                }
            }
            let check = if verifying {
                Checks::LiteralsOnly
            } else if combo + 1 < combos {
                Checks::Classes
            } else {
                Checks::None
            };
            if ends_with_dotted_format(&items) {
                // Backtracking order: the parameter ends at the segment's end if it can, else at
                // its last `.` (see `piece_check::ends_longest_first`). In a plan of a route the
                // automaton decides, the first try checks the parameter's class on the whole
                // segment (GitLab's `:id` with `[^/]+` before `(.:format)`, `milestones/1.2`:
                // the id is `1.2`); the second is the last `.` when the first fails.
                let first = if verifying { check } else { Checks::Classes };
                shapes.push(Shape::new(&items, &bytes, slots, first, FormatAt::Absent)?);
                shapes.push(Shape::new(&items, &bytes, slots, check, FormatAt::LastDot)?);
            } else {
                shapes.push(Shape::new(&items, &bytes, slots, check, FormatAt::FirstDot)?);
            }
        }
        Some(SpanPlan { shapes: shapes.into_boxed_slice(), slots, verifying })
    }

    /// For a [`SpanPlan::verifying`] plan: the spans of the first shape that fits `path` and
    /// whose parameters `params_match` accepts (each parameter's own regex on its span; the
    /// second argument, when set, names a parameter already known to hold on its span).
    ///
    /// A shape with two globs tries each split of the path's extra segments in the first
    /// glob's backtracking order. When that glob is not one class repeated, `segments(slot,
    /// start)` must say which numbers of whole segments from `start` on its regex holds (a range,
    /// found in one pass: see [`crate::piece_check::PieceCheck::segment_counts`]); without that
    /// answer the plan is undecided and the matcher runs.
    pub(crate) fn verify<E>(
        &self,
        path: &[u8],
        mut params_match: impl FnMut(&Spans, Option<u32>) -> Result<bool, E>,
        mut segments: impl FnMut(u32, usize) -> Option<std::ops::RangeInclusive<usize>>,
    ) -> Result<Verdict, E> {
        debug_assert!(self.verifying);
        let mut cuts = Cuts::new();
        if !slash_cuts(path, &mut cuts) {
            return Ok(Verdict::Undecided);
        }
        let cuts = cuts.as_slice();
        let mut spans: Spans = vec![None; self.slots];
        for shape in self.shapes.iter() {
            let Some((at, slot, order)) = shape.first_glob else {
                if shape.place(path, cuts, &mut spans, 0).is_some() && params_match(&spans, None)? {
                    return Ok(Verdict::Match(spans));
                }
                spans.iter_mut().for_each(|s| *s = None);
                continue;
            };
            let Some(extra) = (cuts.len() + 1).checked_sub(shape.segments.len()) else { continue };
            // The segments before the first glob are one piece each: it starts after the
            // `at`th `/` (a route's path starts with one, so `at` >= 1; were it not, the
            // matcher decides). A path with fewer `/`s does not fit this shape.
            let Some(before) = at.checked_sub(1) else { return Ok(Verdict::Undecided) };
            let Some(start) = cuts.get(before).map(|&c| c as usize + 1) else { continue };
            // Which shares of the extra segments its regex allows, and whether that is known.
            let (range, known) = if shape.check.as_ref().is_some_and(|c| c.params.get(slot as usize).is_some_and(Option::is_some)) {
                // One class repeated: checked with the shape, at each split.
                (0..=extra, None)
            } else {
                match segments(slot, start) {
                    // Counts of whole segments; the glob holds 1 + its share of the extra ones.
                    Some(counts) if *counts.end() >= 1 => ((*counts.start()).max(1) - 1..=(*counts.end() - 1).min(extra), Some(slot)),
                    Some(_) => continue,
                    None => return Ok(Verdict::Undecided),
                }
            };
            let (lo, hi) = (*range.start(), *range.end());
            if lo > hi {
                continue;
            }
            for step in 0..=hi - lo {
                let first_extra = if order == GlobOrder::MostFirst { hi - step } else { lo + step };
                if shape.place(path, cuts, &mut spans, first_extra).is_some() && params_match(&spans, known)? {
                    return Ok(Verdict::Match(spans));
                }
                spans.iter_mut().for_each(|s| *s = None);
            }
        }
        Ok(Verdict::NoMatch)
    }

    /// Every parameter's span in `path`, which the route is known to match; `None` when the
    /// path does not fit the plan (the matcher then decides).
    pub fn spans(&self, path: &[u8]) -> Option<Spans> {
        if let [shape] = &*self.shapes {
            if shape.is_plain() {
                return shape.place_plain(path, self.slots);
            }
        }
        self.spans_at_cuts(path)
    }

    /// [`SpanPlan::spans`] for any plan: the path's `/`s listed first, then each shape placed
    /// on them in turn.
    fn spans_at_cuts(&self, path: &[u8]) -> Option<Spans> {
        let mut cuts = Cuts::new();
        if !slash_cuts(path, &mut cuts) {
            return None;
        }
        let mut spans: Spans = vec![None; self.slots];
        for shape in self.shapes.iter() {
            if shape.first_glob.is_some() {
                // Where two globs split is for the parameters' own regexes to say: the matcher decides.
                return None;
            }
            if shape.place(path, cuts.as_slice(), &mut spans, 0).is_some() {
                return Some(spans);
            }
            spans.iter_mut().for_each(|s| *s = None);
        }
        None
    }
}

impl Shape {
    /// No parameter may hold a `/` and nothing is checked: the path's pieces between `/`s are
    /// the segments, one each (GitHub's API routes: `/repos/:owner/:repo/issues/:number`).
    fn is_plain(&self) -> bool {
        self.glob.is_none() && self.first_glob.is_none() && self.check.is_none() && self.glob_format.is_none()
    }

    /// [`Shape::place`] for a [plain](Shape::is_plain) shape, the only one of its plan, in one
    /// pass over the path: each segment placed as soon as the `/` ending it is found (eight bytes
    /// at a time, [`segment_end`]), rather than from a list of every `/` made first, and none of
    /// the glob and check steps (a `memchr` per segment cost more than a byte loop on paths
    /// this short). `None` as `place` answers it (a path with another number of pieces), and
    /// for a path holding a `\n` (the matcher decides).
    fn place_plain(&self, path: &[u8], slots: usize) -> Option<Spans> {
        let mut spans: Spans = vec![None; slots];
        let mut segments = self.segments.iter();
        let mut segment = segments.next()?;
        let mut start = 0;
        loop {
            let (len, newline) = segment_end(&path[start..], b'\n');
            if newline {
                return None;
            }
            let end = start + len;
            segment.place(path, start, end, &mut spans)?;
            match (end == path.len(), segments.next()) {
                (true, None) => return Some(spans),
                (false, Some(next)) => {
                    segment = next;
                    start = end + 1;
                }
                // More pieces than segments, or fewer.
                _ => return None,
            }
        }
    }

    /// The shape of `items` (no optional groups left; their runs' bytes in `bytes`);
    /// `check`: what [`Shape::place`] checks of the path's bytes (only then are the literals
    /// and parameter classes gathered: most routes have one, unchecked, shape).
    fn new(items: &[&Item], bytes: &[Option<u8>], slots: usize, check: Checks, dotted: FormatAt) -> Option<Shape> {
        let checked = check != Checks::None;
        // Parameters whose regex is no simple class need not be refused: the caller checks them.
        let classes = check == Checks::Classes;
        let slashes = items.iter().filter(|i| matches!(i, Item::Slash)).count();
        let mut segments = Vec::with_capacity(slashes + 1);
        segments.push(Segment::default());
        let mut literals: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut params: Vec<Option<Repeat>> = Vec::new();
        if checked {
            literals = vec![Default::default(); slashes + 1];
            params = vec![None; slots];
        }
        // A parameter's slot must be the route's; its class is kept for the check.
        let mut param = |slot: u32, repeat: Option<Repeat>| {
            if slot as usize >= slots {
                return None;
            }
            if checked {
                params[slot as usize] = repeat;
            }
            Some(())
        };
        let mut glob = None;
        let mut glob_order_of_glob = None;
        let mut first_glob = None;
        let mut glob_format = None;
        for (i, item) in items.iter().enumerate() {
            let at = segments.len() - 1;
            let seg = &mut segments[at];
            match **item {
                Item::Slash => segments.push(Segment::default()),
                Item::Bytes { start, end } => {
                    let len = (end - start) as usize;
                    let trailing = seg.param.is_some();
                    if trailing {
                        seg.trail += len;
                    } else {
                        seg.lead += len;
                    }
                    if checked {
                        let (lead, trail) = &mut literals[at];
                        let to = if trailing { trail } else { lead };
                        // Literal classes of more than one byte (case-insensitive) are not
                        // checked here.
                        for byte in &bytes[start as usize..end as usize] {
                            to.push((*byte)?);
                        }
                    }
                }
                Item::Param { slot, bytes, repeat, order, .. } => {
                    if seg.param.is_some() {
                        return None;
                    }
                    if bytes.contains(b'/') {
                        // The glob: alone between two `/` (or the ends) or before the format
                        // that ends the path, and the only one.
                        let next_ok = match items.get(i + 1) {
                            None | Some(Item::Slash) => true,
                            Some(Item::Format { .. }) => i + 2 == items.len(),
                            Some(_) => false,
                        };
                        let alone = seg.lead == 0 && (i == 0 || matches!(items[i - 1], Item::Slash)) && next_ok;
                        if !alone {
                            return None;
                        }
                        if let Some((first_at, first_slot)) = glob {
                            // A second glob: only a verifying plan tries the splits (each one's
                            // parameters checked by the caller), and only after a first glob
                            // whose order of splits is known.
                            let first_order = glob_order_of_glob.filter(|_| check == Checks::LiteralsOnly && first_glob.is_none())?;
                            first_glob = Some((first_at, first_slot, first_order));
                        }
                        glob = Some((at, slot));
                        glob_order_of_glob = order;
                    }
                    seg.param = Some(slot);
                    param(slot, repeat)?;
                    if classes && repeat.is_none() {
                        return None;
                    }
                }
                Item::Format { slot, repeat, ref value } => {
                    // Only at the very end, right after the segment's literals, after a
                    // parameter that cannot hold a `.` (so the first `.` starts the format), or
                    // after a glob that can (see [`GlobFormat`]).
                    if i + 1 != items.len() || (classes && repeat.is_none()) {
                        return None;
                    }
                    match items[..i].last().copied() {
                        Some(&Item::Param { bytes, repeat: Some(glob_repeat), lazy, .. }) if bytes.contains(b'/') && bytes.contains(b'.') => {
                            let (Some(format), None) = (value.clone(), glob_repeat.max) else { return None };
                            glob_format = Some(GlobFormat { format_slot: slot, lazy, glob: glob_repeat, format });
                        }
                        // A parameter that may hold `.`s: only in the two tries of a plan
                        // (see `SpanPlan::build`). A verifying plan's caller checks the parameter
                        // on each; in an exact plan, the first try must check the parameter's
                        // class itself, so the parameter must be one class repeated.
                        Some(&Item::Param { bytes, dotted_longest_first, repeat: param_repeat, .. }) if bytes.contains(b'.') => {
                            let tried = match dotted {
                                FormatAt::FirstDot => false,
                                _ if check == Checks::LiteralsOnly => true,
                                FormatAt::Absent => check == Checks::Classes && param_repeat.is_some(),
                                FormatAt::LastDot => true,
                            };
                            if !dotted_longest_first || !tried {
                                return None;
                            }
                            seg.format = Some(slot);
                            seg.format_at = dotted;
                        }
                        Some(Item::Param { .. }) => seg.format = Some(slot),
                        _ if seg.param.is_some() => return None,
                        _ => seg.format = Some(slot),
                    }
                    param(slot, repeat)?;
                }
                Item::Optional(_) => return None,
            }
        }
        let check = if checked {
            let mut bytes = Vec::with_capacity(literals.iter().map(|(lead, trail)| lead.len() + trail.len()).sum());
            let mut ends = Vec::with_capacity(literals.len());
            for (lead, trail) in &literals {
                bytes.extend_from_slice(lead);
                let lead_end = u16::try_from(bytes.len()).ok()?;
                bytes.extend_from_slice(trail);
                ends.push((lead_end, u16::try_from(bytes.len()).ok()?));
            }
            if params.iter().all(Option::is_none) {
                params = Vec::new();
            }
            Some(Box::new(Check { bytes: bytes.into_boxed_slice(), ends: ends.into_boxed_slice(), params: params.into_boxed_slice() }))
        } else {
            None
        };
        Some(Shape { segments: segments.into_boxed_slice(), glob, first_glob, check, glob_format })
    }

    /// Writes the spans this shape gives `path` (whose `/`s are at `cuts`); `None` if it does
    /// not fit or, for a shape with a [`Check`], if the path's literals or parameter bytes
    /// differ.
    ///
    /// With a [`Shape::first_glob`], `first_extra` of the path's extra segments go to it and
    /// the rest to the last glob.
    fn place(&self, path: &[u8], cuts: &[u32], spans: &mut Spans, first_extra: usize) -> Option<()> {
        let pieces = cuts.len() + 1;
        let extra = pieces.checked_sub(self.segments.len())?;
        if extra > 0 && self.glob.is_none() {
            return None;
        }
        let extra = extra.checked_sub(first_extra)?;
        // Where the `k`th piece between `/`s ends.
        let piece_end = |k: usize| cuts.get(k).map_or(path.len(), |&c| c as usize);
        let mut start = 0;
        let mut piece = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            let mut end = piece_end(piece);
            if let Some((_, slot, _)) = self.first_glob.filter(|g| g.0 == i) {
                piece += first_extra;
                end = piece_end(piece);
                spans[slot as usize] = Some((start, end));
                start = end + 1;
                piece += 1;
                continue;
            }
            match self.glob {
                Some((at, slot)) if at == i => {
                    piece += extra;
                    end = piece_end(piece);
                    match &self.glob_format {
                        // The glob's segment is the last: it and the format end the path.
                        Some(gf) => {
                            let (glob, format) = gf.split(path, start);
                            spans[slot as usize] = Some(glob);
                            spans[gf.format_slot as usize] = format;
                        }
                        None => spans[slot as usize] = Some((start, end)),
                    }
                }
                _ => {
                    let body_end = seg.place(path, start, end, spans)?;
                    if let Some(check) = &self.check {
                        let (lead, trail) = check.literals(i);
                        if !bytes_at(path, start, lead) || body_end < trail.len() || !bytes_at(path, body_end - trail.len(), trail) {
                            return None;
                        }
                    }
                }
            }
            start = end + 1;
            piece += 1;
        }
        if piece != pieces {
            return None;
        }
        let admitted = self.check.as_ref().is_none_or(|check| {
            check.params.iter().zip(spans.iter()).all(|(repeat, span)| match (repeat, span) {
                (Some(repeat), Some((s, e))) => repeat.admits(&path[*s..*e]),
                _ => true,
            })
        });
        admitted.then_some(())
    }
}

/// Whether `path` holds `literal` at `at`. A byte loop: the literals are a few bytes, most
/// often none, where `starts_with`'s `memcmp` call was 6% of `Classifier::matches` on GitLab CE.
#[inline]
fn bytes_at(path: &[u8], at: usize, literal: &[u8]) -> bool {
    literal.is_empty() || path.get(at..at + literal.len()).is_some_and(|held| held.iter().zip(literal).all(|(a, b)| a == b))
}

/// Whether the items end with a parameter that may hold `.`s (but no `/`) and tries its
/// longest ends first, then `(.:format)`; the items as a plan holds them (`Item`) or as a shape
/// takes them (`&Item`).
fn ends_with_dotted_format<I: std::borrow::Borrow<Item>>(items: &[I]) -> bool {
    let [.., param, format] = items else { return false };
    matches!(param.borrow(), Item::Param { dotted_longest_first: true, .. }) && matches!(format.borrow(), Item::Format { .. })
}

impl Segment {
    /// Writes this segment's parameter spans, the segment being `path[start..end]`; returns
    /// where its body ends (before the format, if any).
    fn place(&self, path: &[u8], start: usize, end: usize, spans: &mut Spans) -> Option<usize> {
        let body_start = start + self.lead;
        let mut body_end = end;
        if let Some(format) = self.format {
            let dot = match self.param {
                Some(_) if self.format_at == FormatAt::Absent => None,
                Some(_) if self.format_at == FormatAt::LastDot => Some(body_start + path.get(body_start..end)?.iter().rposition(|&b| b == b'.')?),
                // The parameter cannot hold a `.`: the first one after the lead starts the format.
                Some(_) => path.get(body_start..end)?.iter().position(|&b| b == b'.').map(|d| body_start + d),
                // Only literals before it: the format starts right after them, if present.
                None if end == body_start => None,
                None if path.get(body_start) == Some(&b'.') => Some(body_start),
                None => return None,
            };
            if let Some(d) = dot {
                spans[format as usize] = Some((d + 1, end));
                body_end = d;
            }
        }
        match self.param {
            Some(slot) => {
                let param_end = body_end.checked_sub(self.trail)?;
                if param_end < body_start {
                    return None;
                }
                spans[slot as usize] = Some((body_start, param_end));
            }
            None if body_end != body_start => return None,
            None => {}
        }
        Some(body_end)
    }
}

/// The bytes `node` can consume. Look-around bodies consume nothing and are left out: a
/// project requirement's `(?!(?:...|environments\/folders|...)/)` holds `/`s its parameter
/// never takes, and counting them made that parameter a second glob (no plan).
fn consumable(node: &Node) -> ByteSet {
    fn add(node: &Node, all: &mut ByteSet) {
        match node {
            Node::Class(set) => all.union(set),
            Node::Seq(sets) => sets.iter().for_each(|s| all.union(s)),
            Node::SeqAlt(set) => set.runs.iter().flatten().for_each(|s| all.union(s)),
            Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|n| add(n, all)),
            Node::Repeat { node, .. } | Node::Atomic(node) | Node::Capture { node, .. } => add(node, all),
            Node::Look { .. } | Node::Empty | Node::Assert(_) => {}
        }
    }
    let mut all = ByteSet::empty();
    add(node, &mut all);
    all
}

/// Whether a verifying plan checks this parameter's regex itself (its class and length bounds,
/// [`Check::params`]), so no program of the parameter's own needs to run.
pub(crate) fn checks_as_class(node: &Node) -> bool {
    simple_repeat(node).is_some()
}

/// In what order backtracking tries the number of path segments a parameter that may hold
/// `/` takes, when a `/` follows it: known for one class repeated (greedy: most first; lazy,
/// Journey's `.+?`: fewest first) and for GitLab's namespace requirement, a head that holds
/// no `/` and then a greedy `(?:/…)*` whose every repetition holds exactly one `/`, its first
/// byte (most first: the repetitions are the segments after the first, and an attempt that
/// ends inside a segment fails at once, as a `/` must follow). Anything else (alternations of
/// `/`-holding branches, atomic groups around the repetition, bounded repetitions...): `None`,
/// and a route with two such parameters has no plan.
fn glob_order(node: &Node) -> Option<GlobOrder> {
    if let Node::Repeat { node: inner, greedy, .. } = node {
        if matches!(**inner, Node::Class(_)) {
            return Some(if *greedy { GlobOrder::MostFirst } else { GlobOrder::FewestFirst });
        }
    }
    let items = concat_items(node);
    let (last, head) = items.split_last()?;
    let Node::Repeat { node: body, min: 0, max: None, greedy: true } = last else { return None };
    let body = concat_items(body);
    let (slash, rest) = body.split_first()?;
    let no_slash = |n: &&Node| !consumable(n).contains(b'/');
    (matches!(slash, Node::Class(set) if *set == ByteSet::single(b'/')) && rest.iter().all(no_slash) && head.iter().all(no_slash))
        .then_some(GlobOrder::MostFirst)
}

/// The items of `node` with nested concatenations spread out (a requirement's `(?-mix:…)`
/// groups nest them).
fn concat_items(node: &Node) -> Vec<&Node> {
    fn spread<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
        match node {
            Node::Concat(items) => items.iter().for_each(|n| spread(n, out)),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    spread(node, &mut out);
    out
}

/// A parameter's regex when it is one class repeated (`[^/.?]+`, a glob's `[^\n]+?`).
fn simple_repeat(node: &Node) -> Option<Repeat> {
    match node {
        Node::Repeat { node, min, max, .. } => match &**node {
            Node::Class(set) => Some(Repeat { set: *set, min: *min, max: *max }),
            _ => None,
        },
        _ => None,
    }
}

/// The literal runs' bytes flattened so far: counted, and kept only when asked, as only a
/// route with optional groups has shapes that check them (finding and keeping every byte:
/// 41.0M -> 27.6M instructions).
#[derive(Default)]
struct RunBytes {
    count: u32,
    /// Each the byte itself when its class holds only it.
    kept: Option<Vec<Option<u8>>>,
}

/// Appends the item of one byte of `set`: a `/`, or a byte of a literal run (`None` for a
/// class that may or may not be a `/`).
fn class(set: &ByteSet, out: &mut Vec<Item>, bytes: &mut RunBytes) -> Option<()> {
    // One bit first, as most bytes are no `/` (27.6M -> 26.0M instructions).
    if set.contains(b'/') {
        return (*set == ByteSet::single(b'/')).then(|| out.push(Item::Slash));
    }
    let at = bytes.count;
    bytes.count += 1;
    if let Some(kept) = &mut bytes.kept {
        kept.push(set.single_byte());
    }
    match out.last_mut() {
        // The byte goes on the run just pushed.
        Some(Item::Bytes { end, .. }) if *end == at => *end += 1,
        _ => out.push(Item::Bytes { start: at, end: at + 1 }),
    }
    Some(())
}

/// Appends `node`'s items (their literal runs' bytes to `bytes`), or `None` for a shape the plan
/// cannot follow. `top`: not inside an optional group (which may hold literals only).
fn flatten(node: &Node, out: &mut Vec<Item>, bytes: &mut RunBytes, top: bool) -> Option<()> {
    match node {
        Node::Empty => {}
        Node::Concat(items) => {
            for node in items {
                match node {
                    // A literal's bytes, most of the nodes: no call each.
                    Node::Class(set) => class(set, out, bytes)?,
                    _ => flatten(node, out, bytes, top)?,
                }
            }
        }
        Node::Class(set) => class(set, out, bytes)?,
        Node::Seq(sets) => sets.iter().try_for_each(|set| class(set, out, bytes))?,
        Node::Capture { slot, node } if top => {
            let bytes = consumable(node);
            out.push(Item::Param {
                slot: *slot as u32,
                bytes,
                repeat: simple_repeat(node),
                lazy: matches!(**node, Node::Repeat { greedy: false, .. }),
                dotted_longest_first: bytes.contains(b'.') && !bytes.contains(b'/') && crate::piece_check::ends_longest_first(node),
                order: if bytes.contains(b'/') { glob_order(node) } else { None },
            })
        }
        Node::Repeat { node, min: 0, max: Some(1), greedy: true } if top => match &**node {
            // `(.:format)`: an optional `.` and a parameter that holds neither `.` nor `/`.
            Node::Concat(items) if matches!(items.as_slice(), [Node::Class(dot), Node::Capture { .. }] if *dot == ByteSet::single(b'.')) => {
                let Node::Capture { slot, node } = &items[1] else { unreachable!("matched above") };
                let bytes = consumable(node);
                if bytes.contains(b'/') || bytes.contains(b'.') {
                    return None;
                }
                out.push(Item::Format { slot: *slot as u32, repeat: simple_repeat(node), value: FormatValue::of(node) });
            }
            // `(/-/jira)`: literals only.
            inner => {
                let mut group = Vec::new();
                flatten(inner, &mut group, bytes, false)?;
                if group.is_empty() {
                    return None;
                }
                out.push(Item::Optional(group));
            }
        },
        _ => return None,
    }
    Some(())
}

impl SpanPlan {
    /// Heap bytes held (for `Classifier::memory_usage`).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let shapes: usize =
            self.shapes
                .iter()
                .map(|s| {
                    let check = s.check.as_ref().map_or(0, |c| {
                        size_of::<Check>() + c.bytes.len() + c.ends.len() * size_of::<(u16, u16)>() + c.params.len() * size_of::<Option<Repeat>>()
                    });
                    s.segments.len() * size_of::<Segment>() + check + s.glob_format.as_ref().map_or(0, |g| g.format.heap_bytes())
                })
                .sum();
        self.shapes.len() * size_of::<Shape>() + shapes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::{param_names, parse_spec, route_regex, Anchoring};
    use crate::matcher::Matcher;
    use crate::ruby_regex::parse::parse;

    /// The route's regex as the classifier builds it (`requirements`: parameter → Ruby regex).
    fn regex(spec: &str, requirements: &[(&str, &str)], anchoring: Anchoring) -> (Node, usize) {
        let nodes = parse_spec(spec).unwrap();
        let slots = param_names(&nodes).len();
        let node = route_regex(&nodes, anchoring, &mut |name| requirements.iter().find(|(n, _)| *n == name).map(|(_, src)| parse(src, 0).unwrap()));
        (node, slots)
    }

    fn plan(spec: &str, requirements: &[(&str, &str)]) -> Option<SpanPlan> {
        let (node, slots) = regex(spec, requirements, Anchoring::Regex);
        SpanPlan::new(&node, slots)
    }

    /// Every path the matcher matches gets the matcher's spans from the plan.
    fn agrees(spec: &str, requirements: &[(&str, &str)], paths: &[&str]) -> usize {
        let (node, slots) = regex(spec, requirements, Anchoring::Regex);
        let plan = SpanPlan::new(&node, slots).unwrap_or_else(|| panic!("{spec}: no plan"));
        let matcher = Matcher::new(node, slots);
        let mut matched = 0;
        for path in paths {
            let Some(expected) = matcher.captures(path.as_bytes()).unwrap() else { continue };
            matched += 1;
            if let Some(spans) = plan.spans(path.as_bytes()) {
                assert_eq!(spans, expected, "{spec} on {path:?}");
            } else {
                assert!(path.contains('\n'), "{spec} on {path:?}: the plan gave up on a plain path");
            }
        }
        matched
    }

    const PROJECT: &str = r"(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]*[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?<!\.git|\.atom)";

    #[test]
    fn globs_take_the_extra_segments() {
        let spec = "/*namespace_id/:project_id/-/issues(.:format)";
        let paths = ["/a/b/-/issues", "/a/b/c/-/issues", "/a/b/c/d/-/issues.json", "/a.b/c/-/issues", "/a/b/-/issuesx"];
        assert_eq!(agrees(spec, &[], &paths), 4);
        assert_eq!(agrees(spec, &[("project_id", PROJECT)], &["/g/sub/my.project/-/issues.json", "/g/p/-/issues"]), 2);
        assert_eq!(agrees("/*path", &[], &["/a", "/a/b.c/d"]), 2);
        assert_eq!(agrees("/files/*path/raw", &[], &["/files/a/raw", "/files/a/b/raw", "/files/raw/raw/raw"]), 3);
    }

    #[test]
    fn parameters_between_literals_and_formats() {
        let spec = "/api/:version/projects/:id/issues/:issue_iid(.:format)";
        assert_eq!(agrees(spec, &[("id", "[^/]+")], &["/api/v4/projects/a.b/issues/12", "/api/v4/projects/42/issues/7.json"]), 2);
        assert_eq!(agrees("/-/profile(.:format)", &[], &["/-/profile", "/-/profile.json", "/-/profilex"]), 2);
        assert_eq!(agrees("/v:version/pkg", &[], &["/v2/pkg", "/vx.y/pkg"]), 1);
        assert_eq!(agrees("/help/:page(.:format)", &[], &["/help/a.md", "/help/a"]), 2);
    }

    #[test]
    fn optional_literal_groups_are_tried_taken_first() {
        let spec = "(/-/jira)/*namespace_id/:project_id(.:format)";
        let paths = ["/-/jira/a/b", "/-/jira/b", "/-/jira/a/b.json", "/x/-/jira", "/-/jira/a/b/c.d", "/-/jira", "/a/b"];
        assert_eq!(agrees(spec, &[], &paths), 7);
        let paths = ["/a/b/c", "/a/c", "/b/c", "/c", "/a/b", "/a", "/b", "/a/a/a", "/b/a/b.x"];
        assert_eq!(agrees("(/a)(/b)/:c(.:format)", &[], &paths), 7);
        // A group holding a parameter, or a third group: no plan.
        assert!(plan("(/o/:org)/*namespace_id/:project_id", &[]).is_none());
        assert!(plan("(/a)(/b)(/c)/:d", &[]).is_none());
        // Earlier shapes are checked byte by byte, so their parameters must be simple classes.
        assert!(plan("(/-/jira)/*namespace_id/:project_id", &[("project_id", PROJECT)]).is_none());
    }

    #[test]
    fn refuses_shapes_whose_positions_are_not_forced() {
        // A dotted parameter before the format, or a glob whose end is a choice the plan does
        // not follow (a bounded glob; a format that is no simple class): where it ends is a choice.
        assert!(plan("/*namespace_id/:project_id(.:format)", &[("project_id", PROJECT)]).is_none());
        assert!(plan("/*path(.:format)", &[("path", "[^/]{1,3}?.*?")]).is_none());
        assert!(plan("/*path(.:format)", &[("path", ".{1,9}?")]).is_none());
        assert!(plan("/*path(.:format)", &[("format", "[a-z]+x?")]).is_none());
        assert!(plan("/*path(.:format)", &[("format", "(json|[a-z]+)")]).is_none());
        assert!(plan("/*path/x(.:format)", &[]).is_some());
        // Optional segments, two globs, a glob sharing its segment.
        assert!(plan("/a(/:b)/c", &[]).is_none());
        assert!(plan("/*a/x/*b", &[]).is_none());
        assert!(plan("/x-:a/y", &[("a", ".+")]).is_none());
        assert!(plan("/:a/:b/y", &[("a", "[a-z/]+"), ("b", "[a-z/]+")]).is_none());
        assert!(plan("/users/:id-:name/x", &[]).is_none());
        // A mount ends in an alternation.
        let (node, slots) = regex("/api", &[], Anchoring::Mounted);
        assert!(SpanPlan::new(&node, slots).is_none());
        // These do get plans.
        assert!(plan("/*namespace_id/:project_id(.:format)", &[]).is_some());
        assert!(plan("/", &[]).is_some());
        let templated =
            crate::templates::Template { template: "/api/v4/users/:id/disable_two_factor".into(), example: None, accepts_format: true, dotted_example: None };
        let def = templated.to_route(0);
        assert!(plan(&def.path, &[]).is_some(), "{}", def.path);
    }

    /// Every path of up to `len` bytes over `alphabet` after a leading `/`.
    fn paths(alphabet: &[u8], len: usize) -> Vec<String> {
        let mut all = vec![String::from("/")];
        let mut last = all.clone();
        for _ in 0..len {
            last = last.iter().flat_map(|p| alphabet.iter().map(move |&b| format!("{p}{}", b as char))).collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// Asserts that a verifying plan's matcher answers every path as the route's whole regex
    /// does (match, and the spans); returns how many paths matched.
    fn plan_agrees_with_the_whole_regex(node: &Node, slots: usize, paths: &[String], label: &str) -> usize {
        let whole = Matcher::new(node.clone(), slots);
        let planned = Matcher::for_route(node, slots, &mut crate::shared_runs::RunSets::default(), false);
        let mut matched = 0;
        for path in paths {
            let expected = whole.captures(path.as_bytes()).unwrap();
            matched += expected.is_some() as usize;
            assert_eq!(planned.confirm(path.as_bytes()).unwrap(), expected, "{label} on {path:?}");
        }
        matched
    }

    /// GitLab CE's own routes with two globs, with their real requirements (the shared corpus'
    /// `gitlab-ce.routes.json`): the plan against the whole regex on 30,000 generated paths of
    /// GitLab-shaped segments (reserved names in both cases, `.git` and `.atom` projects,
    /// formats, segments at the `{0,254}` bound).
    #[test]
    fn gitlab_ces_two_glob_routes_agree_with_the_whole_regex() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/gitlab-ce.routes.json");
        let defs = crate::routes::from_json(&std::fs::read(file).expect("the shared corpus")).unwrap();
        let long = "n".repeat(255);
        let longer = "n".repeat(256);
        let segments = [
            "g",
            "sub",
            "p",
            "admin",
            "Admin",
            "-",
            "p.git",
            "p.atom",
            "blob",
            "Blob",
            "tree",
            "info",
            "lfs",
            "objects",
            "environments",
            "folders",
            "new",
            "a.b",
            "x.json",
            "1",
            "git-receive-pack",
            "refs",
            "wikis",
            "_x",
            "x-",
            ".x",
            &long,
            &longer,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let paths: Vec<String> = (0..30_000)
            .map(|_| {
                let count = 1 + next(7);
                let mut path: String = (0..count).map(|_| format!("/{}", segments[next(segments.len())])).collect();
                path.push_str(["", "", ".json", ".html", ".", "/"][next(6)]);
                path
            })
            .collect();
        let (mut routes, mut catch_alls) = (0, 0);
        for def in defs.iter().filter(|d| d.path.matches('*').count() == 2) {
            let requirements: Vec<(String, String)> = def
                .requirements
                .iter()
                .filter_map(|(name, r)| match r {
                    crate::routes::Requirement::Regex { source, options: 0 } => Some((name.clone(), source.clone())),
                    _ => None,
                })
                .collect();
            let borrowed: Vec<(&str, &str)> = requirements.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
            let (node, slots) = regex(&def.path, &borrowed, Anchoring::Regex);
            if SpanPlan::verifying(&node, slots).is_none() {
                continue;
            }
            routes += 1;
            let matched = plan_agrees_with_the_whole_regex(&node, slots, &paths, &def.path);
            if def.path.starts_with("/*namespace_id/:project_id/*") {
                // The generated paths are shaped for these: many match, many do not.
                assert!(matched > 1_000 && matched < paths.len() - 1_000, "{}: {matched} of {} matched", def.path, paths.len());
                catch_alls += 1;
            }
        }
        assert!(routes >= 4 && catch_alls >= 4, "{routes} of CE's two-glob routes have a verifying plan, {catch_alls} project catch-alls");
    }

    /// A glob that may hold `.` before the format (`/*id(.:format)`, GitLab's group page):
    /// lazy (Journey's default) or greedy, led by literals or optional groups, with narrower
    /// format classes: the plan's split is the matcher's on every short path over the bytes
    /// that matter.
    #[test]
    fn globs_before_formats_split_where_backtracking_does() {
        let all = paths(b"/a.?x", 6);
        let owned: Vec<&str> = all.iter().map(String::as_str).collect();
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("/*id(.:format)", &[]),
            ("/*id(.:format)", &[("id", ".+")]),
            ("/*id(.:format)", &[("format", "[a-x]+")]),
            ("/*id(.:format)", &[("format", "[a-z]{2}")]),
            // GitLab's group routes (#338 `groups#show` in CE's table): a few literal formats.
            ("/*id(.:format)", &[("id", ".+?"), ("format", "(ax|a|xa?)")]),
            ("/*id(.:format)", &[("format", "(?:x|[ax]a)")]),
            ("/*id(.:format)", &[("id", "[a-z./]+?")]),
            ("/a/*id(.:format)", &[]),
            ("(/x)/*id(.:format)", &[]),
            ("(/a)(/x)/*id(.:format)", &[("id", "[^?]+?")]),
        ];
        for (spec, requirements) in cases {
            let matched = agrees(spec, requirements, &owned);
            assert!(matched > 100, "{spec} {requirements:?}: only {matched} paths matched");
        }
    }

    /// A parameter that may hold `.`s before `(.:format)` (GitLab's `:id` with `[^/]+` on
    /// milestones, tags and branches), in a route the automaton decides: the exact plan's two
    /// tries, the whole segment if the parameter's class holds it, else the last `.`, give the
    /// matcher's spans on every short path, with classes that refuse some bytes, length bounds,
    /// leading literals, optional groups, a glob before, and narrower formats. A lazy parameter
    /// (shortest first) gets no plan: the matcher decides.
    #[test]
    fn dotted_parameters_before_formats_split_where_backtracking_does() {
        let all = paths(b"/ma.x-", 7);
        let owned: Vec<&str> = all.iter().map(String::as_str).collect();
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("/m/:id(.:format)", &[("id", "[^/]+")]),
            ("/m/:id(.:format)", &[("id", "[a.]+")]),
            ("/m/:id(.:format)", &[("id", "[^/]{1,3}")]),
            ("/m/:id(.:format)", &[("id", "[^/]+"), ("format", "[ax]+")]),
            ("/m/:id(.:format)", &[("id", "[a.-]+"), ("format", "[^/.?x]+")]),
            ("/x:id(.:format)", &[("id", "[^/]+")]),
            ("/:a/:id(.:format)", &[("id", "[a.x]+")]),
            ("(/m)/:id(.:format)", &[("id", "[a.x]+")]),
            ("/*g/m/:id(.:format)", &[("g", ".+?"), ("id", "[^/]+")]),
        ];
        for (spec, requirements) in cases {
            let shapes = plan(spec, requirements).map(|p| p.shapes.len());
            assert!(shapes.is_some_and(|n| n >= 2), "{spec} {requirements:?}: {shapes:?} shapes");
            let matched = agrees(spec, requirements, &owned);
            assert!(matched > 100, "{spec} {requirements:?}: only {matched} paths matched");
        }
        assert!(plan("/m/:id(.:format)", &[("id", "[^/]+?")]).is_none());
        assert!(plan("/m/:id(.:format)", &[("id", "(?:a|x\\.)+")]).is_none(), "no class to check on the first try");
    }

    /// Every path of up to `len` bytes over `alphabet`.
    fn all_paths(alphabet: &[u8], len: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..len {
            last = last.iter().flat_map(|p: &Vec<u8>| alphabet.iter().map(move |&b| [&p[..], &[b]].concat())).collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// A plan of one plain shape is placed in one pass ([`Shape::place_plain`]): on every short
    /// path (`/`, `.`, `\n`, letters, the literals' bytes), it answers as the general placement
    /// does, and where the route's regex matches, with the matcher's spans.
    #[test]
    fn plain_shapes_place_as_the_general_placement_does() {
        let specs = ["/a/:b", "/:a/:b(.:format)", "/x/:id/a", "/:a", "/a(.:format)", "/v:v/a", "/:a/x:b", "/a/:b/", "/(.:format)"];
        let paths = all_paths(b"/a.x\nv", 7);
        for spec in specs {
            let (node, slots) = regex(spec, &[], Anchoring::Regex);
            let plan = SpanPlan::new(&node, slots).unwrap_or_else(|| panic!("{spec}: no plan"));
            assert!(matches!(&*plan.shapes, [shape] if shape.is_plain()), "{spec}: not one plain shape");
            let matcher = Matcher::new(node, slots);
            let mut matched = 0;
            for path in &paths {
                let spans = plan.spans(path);
                assert_eq!(spans, plan.spans_at_cuts(path), "{spec} on {:?}", String::from_utf8_lossy(path));
                if let Some(expected) = matcher.captures(path).unwrap() {
                    matched += 1;
                    if !path.contains(&b'\n') {
                        assert_eq!(spans, Some(expected), "{spec} on {:?}", String::from_utf8_lossy(path));
                    }
                }
            }
            assert!(matched > 0, "{spec}: no path matched");
        }
    }

    #[test]
    fn gives_up_on_paths_that_do_not_fit() {
        let plan = plan("/*namespace_id/:project_id/-/issues(.:format)", &[]).unwrap();
        assert!(plan.spans(b"/a/b/-/issues\n").is_none());
        assert!(plan.spans(b"/a/-/issues").is_none());
        let exact = super::tests::plan("/a/:b", &[]).unwrap();
        assert!(exact.spans(b"/a/b/c").is_none());
        assert_eq!(exact.spans(b"/a/b"), Some(vec![Some((3, 4))]));
    }

    /// GitLab CE's namespace and project requirements, as its route table has them.
    const CE_NAMESPACE: &str = r"(?-mix:(?!((?i-mx:\-|\.well\-known|admin|api|a|groups|users|v2))\/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254}[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?-mix:(?<!\.git|\.atom))))(?:/(?!(?i-mx:\-|badges|blob|a|environments\/folders|info\/lfs\/objects)/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254}[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?-mix:(?<!\.git|\.atom))))*";
    const CE_USER: &str =
        r"(?!((?i-mx:\-|admin|api|a|groups|users))/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254}[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?-mix:(?<!\.git|\.atom)))";
    const CE_PROJECT: &str =
        r"(?!((?i-mx:\-|badges|blob|a|environments\/folders|info\/lfs\/objects))/)(?-mix:(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254})(?-mix:(?<!\.git|\.atom)))";

    /// For routes the automaton widens (look-arounds, bounded repeats, atomic groups), a
    /// verifying plan with each parameter's regex checked on its span answers as the whole
    /// regex does — match or not, and the same spans — on every short path over the bytes
    /// those regexes care about, and on GitLab-shaped paths (reserved names where the
    /// look-aheads refuse them, `.git` projects, segments past the bounds, newlines).
    #[test]
    fn verifying_plans_answer_as_the_whole_regex() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("/*namespace_id/:project_id/-/issues/:id(.:format)", &[("namespace_id", CE_NAMESPACE), ("project_id", CE_PROJECT), ("id", r"\d+")]),
            (
                "/*namespace_id/:project_id/-/jobs/:id/raw(.:format)",
                &[("namespace_id", CE_NAMESPACE), ("project_id", CE_PROJECT), ("format", "(html|json|atom)")],
            ),
            ("(/-/jira)/*namespace_id/:project_id/a/:id", &[("namespace_id", CE_NAMESPACE), ("project_id", CE_PROJECT)]),
            ("/:a/x/:b(.:format)", &[("a", r"(?!ab)[a-z]{1,3}"), ("b", r"(?>a+)b?")]),
            ("/:a/:b", &[("a", r"[a-z]+(?=/b)"), ("b", r"(?<=a/)b.{0,2}")]),
            ("/:a/:b", &[("a", r"[a-z]+(?=/[a-z]*x)"), ("b", r"(?<=\w/)[a-z]+(?!\.[a-z]*x)")]),
            ("/x/*path", &[("path", r"(?!a/)[a-z./]{1,5}")]),
            ("/:a/y.:b", &[("a", r"[a-z]{1,2}"), ("b", r"(?<!y\.)[a-z]+|(?<=\.)x[a-z]")]),
            // A parameter that may hold `.`s before `(.:format)`, trying its ends longest first:
            // the whole segment, else up to its last `.` (GitLab's group, project and user pages).
            ("/*namespace_id/:project_id(.:format)", &[("namespace_id", CE_NAMESPACE), ("project_id", CE_PROJECT)]),
            ("/*namespace_id/:id(.:format)", &[("namespace_id", CE_NAMESPACE), ("id", CE_PROJECT), ("format", "(html|json|atom)")]),
            ("/:username(.:format)", &[("username", CE_USER)]),
            ("(/x)/:a(.:format)", &[("a", r"(?:[a-z.]{2,}|b)(?<!\.a)")]),
            // Two parameters that may hold `/`: each split of the extra segments tried in the
            // first one's backtracking order (GitLab's project catch-all, POST/PUT/PATCH/DELETE).
            ("/*namespace_id/:project_id/*all(.:format)", &[("namespace_id", CE_NAMESPACE), ("project_id", CE_PROJECT)]),
            ("/*a/x/*b", &[]),
            ("/*a/x/*b(.:format)", &[]),
            ("/*a/:b/*c(.:format)", &[("a", r"[a-z]+(?:/[a-z.]+)*")]),
            ("/*a/:b/*c", &[("a", r"[a-z./]+"), ("b", r"[a-z]+")]),
            ("/*a/-/*c", &[("a", r"(?!b)[a-z-]+(?<!a)(?:/(?!x)[a-z-]+)*"), ("c", r"[a-z/.]+?")]),
        ];
        let mut short = paths(b"/ab.-x", 6);
        short.extend(
            [
                "/g/p/-/issues/1",
                "/g/sub/p.git/-/issues/1",
                "/admin/p/-/issues/12.json",
                "/Admin/p/-/issues/12",
                "/adminx/p/-/issues/12",
                "/g/blob/-/issues/1",
                "/g/blob/x/-/issues/1",
                "/g/environments/folders/-/issues/1",
                "/g/p/-/issues/1\n",
                "/g/p\n/-/issues/1",
                "/g/p/-/issues/x",
                "/-/jira/g/p/a/1",
                "/-/jira/a/p/a/1",
                "/-/jira/g/a/a/1",
                "/g/p/-/jobs/1/raw.atom",
                "/g/p/-/jobs/1/raw.xml",
                "/g/p.git/-/jobs/1/raw",
                "/.well-known/p",
                "/a/x/aab.json",
                "/a/x/aaa",
                "/ab/y.xa",
                "/ab/y.ab",
                "/g/p.json",
                "/g/p.atom",
                "/g/p.git",
                "/g/p.git.json",
                "/g/p.atom.atom",
                "/g/p.atom.json",
                "/g/p..json",
                "/g/.json",
                "/g/p.",
                "/g/p.json\n",
                "/g/sub/p.tar.gz",
                "/g/sub/p.xml",
                "/users.json",
                "/u.atom",
                "/u.git",
                "/u.b.json",
                "/x/ab.b.json",
                "/ab.b",
                "/a.a.b",
                "/g/sub/p/x/y.json",
                "/g/p/-/x",
                "/g/p/x",
                "/g/p/x.json",
                "/g/p/x/y",
                "/a/b/c/d/e/f",
                "/a/b/c/d/e/f.json",
                "/admin/p/x",
                "/g/admin/p/x",
                "/g/-/p/x",
                "/g/p.git/x",
                "/g/sub.git/p/x",
                "/g/p/info/refs",
                "/g/p/git-receive-pack",
                "/a/x/b/x/c",
                "/a/x/b/x/c.d",
                "/a/b/c.d/e.f",
                "/a-b/c/-/d/-/e",
                "/b/a/-/x",
                "/a/x/-/x/a",
            ]
            .map(String::from),
        );
        let long = format!("/g/{}/-/issues/1", "p".repeat(256));
        let longer = format!("/g/{}/-/issues/1", "p".repeat(255));
        short.extend([long, longer, format!("/{}/p", "n".repeat(256)), format!("/{}/p", "n".repeat(255))]);
        // A parameter that may hold a `.` before `(.:format)` and does not try its longest ends
        // first: where it ends is backtracking's choice, so no plan (the whole regex runs).
        for (spec, requirement) in [("/:a(.:format)", r"[a-z.]+?"), ("/:a(.:format)", r"(?:[a-z]|[a-z.]{2,5})"), ("/:a(.:format)", r"[a-z.]+(?:x[a-z.]*)?")] {
            let (node, slots) = regex(spec, &[("a", requirement)], Anchoring::Regex);
            assert!(SpanPlan::verifying(&node, slots).is_none(), "{spec} {requirement}");
        }
        // A first parameter holding `/` whose order of splits is not known (an atomic group
        // that never gives a segment back, branches that hold `/` or not, a bounded or lazy
        // repetition of segments): no plan.
        for requirement in [r"(?>[a-z]+(?:/[a-z]+)*)", r"(?:a|a/b)", r"[a-z]+(?:/[a-z]+){0,2}", r"[a-z]+(?:/[a-z]+)*?", r"[a-z]+(?:/[a-z]+|/)*"] {
            let (node, slots) = regex("/*a/:b/*c", &[("a", requirement)], Anchoring::Regex);
            assert!(SpanPlan::verifying(&node, slots).is_none(), "{requirement}");
        }
        for (spec, requirements) in cases {
            let (node, slots) = regex(spec, requirements, Anchoring::Regex);
            assert!(SpanPlan::verifying(&node, slots).is_some(), "{spec}: no verifying plan");
            let matched = plan_agrees_with_the_whole_regex(&node, slots, &short, spec);
            assert!(matched > 0, "{spec}: no path matched, the case tests nothing");
        }
    }
}
