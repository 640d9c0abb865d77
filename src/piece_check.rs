//! A parameter's regex decided piece by piece between the path's `/`s, without backtracking.
//!
//! Why: a verifying span plan ([`crate::span_plan::SpanPlan::verifying`]) places a widened
//! route's parameters and then asks each parameter's own regex whether it matches its span.
//! Run by the backtracking matcher, GitLab's namespace and project requirements cost ~650
//! instructions a parameter on a short path (the reserved-word look-ahead, the greedy class
//! repeat backed off one byte for the last class, the look-behind, the nested-namespace loop),
//! and `Classifier::matches` asks them on about one route per request.
//!
//! Their shape makes the answer a linear scan. GitLab's namespace regex is
//! `(?!(admin|api|...)/)(?:[a-zA-Z0-9_.][a-zA-Z0-9_.-]{0,254}[a-zA-Z0-9_-]|[a-zA-Z0-9_])(?<!\.git|\.atom)`
//! followed by `(?:/(?!(-|badges|...)/)(...)(?<!\.git|\.atom))*`: a *piece* that cannot consume
//! a `/`, then a loop of `/` + another such piece. When nothing but that loop's `/` can consume
//! a `/`, every match of the span puts the loop's `/`s on the span's own `/`s, so the pieces
//! are the bytes between them, each matched by its piece regex alone; and a piece regex made
//! of look-arounds at its ends around alternatives of fixed classes with at most one class
//! repeated matches a piece if and only if one alternative's classes fit the piece's bytes and
//! each look-around holds where it stands. Whether the regex matches the span is whether it
//! matches in any way (the matcher explores every way before saying no), so the order
//! backtracking would try them in does not matter here.
//!
//! Look-arounds are checked over the whole path, as they are inside the route's regex: GitLab's
//! project look-ahead `(?!(environments/folders|...)/)` reads past the parameter's own span.
//! Any other shape gets no check, and the matcher runs as before.

use std::sync::Arc;

use crate::matcher::{literal_items as items_of, look_runs, next_run, run_ends_at};
use crate::ruby_regex::ast::{ByteSet, Node, RunSet};
use crate::shared_runs::{Counted, RunSets};

/// A parameter regex `first (?:/ rest){min,max}` (or `first` alone), decided piece by piece.
#[derive(Debug)]
pub(crate) struct PieceCheck {
    first: Piece,
    /// The loop after the first piece, and how many times it may run.
    rest: Option<(Piece, u32, u32)>,
}

/// One piece's regex: look-arounds at its start, alternatives of classes, look-arounds at its end.
#[derive(Debug)]
struct Piece {
    start: Box<[Around]>,
    core: Box<[Linear]>,
    end: Box<[Around]>,
}

/// A look-around over literal runs, seen from where it stands.
#[derive(Debug)]
struct Around {
    behind: bool,
    negate: bool,
    set: Arc<RunSet>,
}

/// Fixed classes, at most one class repeated, fixed classes; none admits a `/`.
#[derive(Debug)]
struct Linear {
    head: Box<[ByteSet]>,
    repeat: Option<Repeat>,
    tail: Box<[ByteSet]>,
}

#[derive(Debug)]
struct Repeat {
    set: ByteSet,
    min: u32,
    max: u32,
    greedy: bool,
}

impl PieceCheck {
    /// The check for a parameter's (optimized) regex, or `None` when its shape is not one this
    /// module decides (the matcher then runs it).
    pub(crate) fn compile(node: &Node, runs: &mut RunSets) -> Option<PieceCheck> {
        let items = items_of(node);
        if let Some((Node::Repeat { node: body, min, max, .. }, before)) = items.split_last() {
            if let Some(piece) = after_slash(items_of(body)) {
                let rest = Piece::compile(&piece, runs)?;
                return Some(PieceCheck { first: Piece::compile(before, runs)?, rest: Some((rest, *min, max.unwrap_or(u32::MAX))) });
            }
        }
        Some(PieceCheck { first: Piece::compile(items, runs)?, rest: None })
    }

    /// Whether the regex matches exactly `hay[start..end]` (look-arounds seeing all of `hay`).
    pub(crate) fn matches(&self, hay: &[u8], start: usize, end: usize) -> bool {
        let mut from = start;
        let mut loops = 0u32;
        let mut piece = &self.first;
        loop {
            let to = hay[from..end].iter().position(|&b| b == b'/').map_or(end, |at| from + at);
            if !piece.matches(hay, from, to) {
                return false;
            }
            if to == end {
                return self.rest.as_ref().map_or(0, |(_, min, _)| *min) <= loops;
            }
            let Some((rest, _, max)) = &self.rest else { return false };
            loops += 1;
            if loops > *max {
                return false;
            }
            piece = rest;
            from = to + 1;
        }
    }

    /// How many whole segments from `start` on the regex holds, as a range: `hay[start..]`'s
    /// first `j` segments (up to the `j`th `/` after `start`, or the end of `hay`) match exactly
    /// for every `j` in it and for no other. One pass, each piece checked once: a prefix holds
    /// when its first piece and each later one do, and the loop ran `min..=max` times.
    /// Look-arounds see all of `hay`, as in [`PieceCheck::matches`], so a piece's verdict does
    /// not depend on where the prefix ends.
    pub(crate) fn segment_counts(&self, hay: &[u8], start: usize) -> std::ops::RangeInclusive<usize> {
        let end = hay.len();
        let mut from = start;
        let mut piece = &self.first;
        let mut held = 0usize;
        loop {
            let to = hay[from..end].iter().position(|&b| b == b'/').map_or(end, |at| from + at);
            let loops = held as u64; // loops before this piece, if it holds
            if let Some((_, _, max)) = &self.rest {
                if held > 0 && loops > u64::from(*max) {
                    break;
                }
            } else if held > 0 {
                break;
            }
            if !piece.matches(hay, from, to) {
                break;
            }
            held += 1;
            if to == end {
                break;
            }
            let Some((rest, _, _)) = &self.rest else { break };
            piece = rest;
            from = to + 1;
        }
        let min = self.rest.as_ref().map_or(0, |(_, min, _)| *min as usize);
        // Empty (1..=0) when the first piece fails or fewer pieces hold than the loop needs.
        (min + 1)..=held
    }

    pub(crate) fn heap_bytes(&self, counted: &mut Counted) -> usize {
        self.first.heap_bytes(counted) + self.rest.as_ref().map_or(0, |(piece, _, _)| piece.heap_bytes(counted))
    }
}

/// A loop body's items after its leading `/` (the optimizer may have merged that `/` into a
/// run of classes), or `None` when it is not led by one.
fn after_slash(body: &[Node]) -> Option<Vec<Node>> {
    let is_slash = |set: &ByteSet| set.single_byte() == Some(b'/');
    match body.split_first()? {
        (Node::Class(set), rest) if is_slash(set) => Some(rest.to_vec()),
        (Node::Seq(sets), rest) if is_slash(sets.first()?) => {
            let mut items = vec![Node::Seq(sets[1..].to_vec())];
            items.extend_from_slice(rest);
            Some(items)
        }
        _ => None,
    }
}

/// A piece's regex taken apart: see [`Piece::parts`].
type Parts<'n> = (&'n [Node], Box<[Linear]>, &'n [Node]);

impl Piece {
    fn compile(items: &[Node], runs: &mut RunSets) -> Option<Piece> {
        let (start, core, end) = Piece::parts(items)?;
        let arounds = |looks: &[Node], runs: &mut RunSets| looks.iter().map(|n| Around::compile(n, runs)).collect::<Option<Box<[Around]>>>();
        Some(Piece { start: arounds(start, runs)?, core, end: arounds(end, runs)? })
    }

    /// The look-arounds leading the piece, its alternatives, the look-arounds ending it.
    fn parts(items: &[Node]) -> Option<Parts<'_>> {
        let is_look = |n: &Node| matches!(n, Node::Look { .. });
        let leading = items.iter().take_while(|n| is_look(n)).count();
        let trailing = items[leading..].iter().rev().take_while(|n| is_look(n)).count();
        let core = match &items[leading..items.len() - trailing] {
            [Node::Alt(alts)] => alts.iter().map(|alt| Linear::of(items_of(alt))).collect::<Option<Box<[Linear]>>>()?,
            core => Box::new([Linear::of(core)?]),
        };
        Some((&items[..leading], core, &items[items.len() - trailing..]))
    }

    fn matches(&self, hay: &[u8], start: usize, end: usize) -> bool {
        self.core.iter().any(|linear| linear.matches(&hay[start..end]))
            && self.start.iter().all(|a| a.holds(hay, start))
            && self.end.iter().all(|a| a.holds(hay, end))
    }

    fn heap_bytes(&self, counted: &mut Counted) -> usize {
        use std::mem::size_of;
        let arounds = |a: &[Around], counted: &mut Counted| std::mem::size_of_val(a) + a.iter().map(|a| counted.heap_bytes(&a.set)).sum::<usize>();
        arounds(&self.start, counted)
            + arounds(&self.end, counted)
            + self.core.len() * size_of::<Linear>()
            + self.core.iter().map(|l| (l.head.len() + l.tail.len()) * size_of::<ByteSet>()).sum::<usize>()
    }
}

/// Whether a regex that cannot consume a `/` tries the ends of its matches longest first:
/// alternatives of classes around at most one greedy class repeat each, every alternative's
/// matches no shorter than the next one's (GitLab's project and user names:
/// `[a-zA-Z0-9_.][a-zA-Z0-9_.-]{0,254}` then `[a-zA-Z0-9_-]`, or one `[a-zA-Z0-9_]`).
///
/// Why: such a parameter followed by `(.:format)` at the end of the path (GitLab's
/// `/*namespace_id/:id(.:format)`) ends, in Onigmo's backtracking order, at the end of the path
/// if it can, else at the path's last `.` (the format cannot hold one), which lets a span plan
/// try those two splits in that order ([`crate::span_plan::SpanPlan::verifying`]).
pub(crate) fn ends_longest_first(node: &Node) -> bool {
    let node = node.optimized();
    let Some((_, core, _)) = Piece::parts(items_of(&node)) else { return false };
    let bounds = |l: &Linear| {
        let fixed = (l.head.len() + l.tail.len()) as u64;
        l.repeat.as_ref().map_or((fixed, fixed), |r| (fixed + u64::from(r.min), fixed + u64::from(r.max)))
    };
    core.iter().all(|l| l.repeat.as_ref().is_none_or(|r| r.greedy || r.min == r.max)) && core.windows(2).all(|w| bounds(&w[0]).0 >= bounds(&w[1]).1)
}

impl Around {
    fn compile(node: &Node, runs: &mut RunSets) -> Option<Around> {
        let Node::Look { behind, negate, node: body } = node else { return None };
        // The matcher's own run sets for the same look-around (shared through `runs`).
        let set = look_runs(body, *behind, runs)?;
        Some(Around { behind: *behind, negate: *negate, set })
    }

    /// Whether the look-around holds at `pos` of `hay`.
    fn holds(&self, hay: &[u8], pos: usize) -> bool {
        let found = if self.behind { run_ends_at(&self.set, hay, pos) } else { next_run(&self.set, hay, pos, 0).is_some() };
        found != self.negate
    }
}

impl Linear {
    fn of(items: &[Node]) -> Option<Linear> {
        let (mut head, mut tail, mut repeat) = (Vec::new(), Vec::new(), None);
        for item in items {
            let to = if repeat.is_some() { &mut tail } else { &mut head };
            match item {
                Node::Empty => {}
                Node::Class(set) => to.push(*set),
                Node::Seq(sets) => to.extend_from_slice(sets),
                Node::Repeat { node, min, max, greedy } if repeat.is_none() => {
                    let Node::Class(set) = &**node else { return None };
                    repeat = Some(Repeat { set: *set, min: *min, max: max.unwrap_or(u32::MAX), greedy: *greedy });
                }
                _ => return None,
            }
        }
        let admits_slash = head.iter().chain(&tail).chain(repeat.as_ref().map(|r| &r.set)).any(|set| set.contains(b'/'));
        (!admits_slash).then(|| Linear { head: head.into_boxed_slice(), repeat, tail: tail.into_boxed_slice() })
    }

    fn matches(&self, piece: &[u8]) -> bool {
        let fixed = self.head.len() + self.tail.len();
        let Some(middle) = piece.len().checked_sub(fixed) else { return false };
        match &self.repeat {
            None if middle != 0 => return false,
            Some(r) if middle < r.min as usize || middle > r.max as usize => return false,
            _ => {}
        }
        let (head, rest) = piece.split_at(self.head.len());
        let (middle, tail) = rest.split_at(middle);
        self.head.iter().zip(head).all(|(set, &b)| set.contains(b))
            && self.tail.iter().zip(tail).all(|(set, &b)| set.contains(b))
            && self.repeat.as_ref().is_none_or(|r| middle.iter().all(|&b| r.set.contains(b)))
    }
}

#[cfg(test)]
mod tests;
