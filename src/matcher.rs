//! The exact matcher: a backtracking interpreter with Onigmo's semantics for one route's regex.
//!
//! The DFA answers "which routes could match"; this answers "does this route match, exactly
//! as Ruby decides, and what are its parameters". It implements what the DFA cannot:
//! look-ahead and look-behind that see past a parameter's own text, atomic groups, and
//! leftmost-first capture positions with greedy and lazy quantifiers, the same priority order
//! Onigmo explores. It is only run on the few candidates the DFA found, on one path.
//!
//! Two guards keep hostile paths from hurting the host: a step budget (Ruby 3.1 has no regex
//! timeout; we answer an error instead of spinning) and `stacker`, which moves deep recursion
//! (a repetition over thousands of path segments) onto the heap instead of overflowing a
//! Puma thread's small stack.

use crate::ruby_regex::ast::{seq_matches_at, Assertion, Node};

/// Steps (node visits) one match may take before it is abandoned.
pub const DEFAULT_STEP_BUDGET: u64 = 2_000_000;

/// The match was abandoned: the regex backtracks too much on this input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the route's regex needs more than {budget} backtracking steps on this path")]
pub struct BudgetExceeded {
    pub budget: u64,
}

/// Byte spans of the route's parameters, by slot; `None` where an optional part did not match.
pub type Spans = Vec<Option<(usize, usize)>>;

/// One route's full regex, ready to run.
#[derive(Clone, Debug)]
pub struct Matcher {
    node: Node,
    slots: usize,
}

struct Ctx<'h> {
    hay: &'h [u8],
    caps: Spans,
    steps: u64,
    budget: u64,
}

type Cont<'k, 'h> = &'k mut dyn FnMut(&mut Ctx<'h>, usize) -> bool;

impl Matcher {
    pub fn new(node: Node, slots: usize) -> Self {
        Matcher { node: node.optimized(), slots }
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Matches from the start of `hay`; on success returns the parameter spans.
    pub fn captures(&self, hay: &[u8]) -> Result<Option<Spans>, BudgetExceeded> {
        self.captures_with_budget(hay, DEFAULT_STEP_BUDGET)
    }

    pub fn captures_with_budget(&self, hay: &[u8], budget: u64) -> Result<Option<Spans>, BudgetExceeded> {
        let mut ctx = Ctx { hay, caps: vec![None; self.slots], steps: 0, budget };
        let matched = m(&self.node, &mut ctx, 0, &mut |_, _| true);
        if ctx.steps > ctx.budget {
            return Err(BudgetExceeded { budget });
        }
        Ok(matched.then_some(ctx.caps))
    }
}

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn assertion_holds(a: Assertion, hay: &[u8], pos: usize) -> bool {
    let len = hay.len();
    match a {
        Assertion::StartText => pos == 0,
        Assertion::EndText => pos == len,
        Assertion::EndTextOptionalNewline => pos == len || (pos + 1 == len && hay[pos] == b'\n'),
        Assertion::StartLine => pos == 0 || hay[pos - 1] == b'\n',
        Assertion::EndLine => pos == len || hay[pos] == b'\n',
        Assertion::WordBoundary | Assertion::NotWordBoundary => {
            let before = pos > 0 && is_word(hay[pos - 1]);
            let after = pos < len && is_word(hay[pos]);
            (before != after) == (a == Assertion::WordBoundary)
        }
    }
}

/// Matches `node` at `pos`, then the continuation `k` with the end position; backtracks into
/// `node` (in Onigmo's priority order) while `k` fails.
fn m<'h>(node: &Node, ctx: &mut Ctx<'h>, pos: usize, k: Cont<'_, 'h>) -> bool {
    ctx.steps += 1;
    if ctx.steps > ctx.budget {
        return false;
    }
    match node {
        Node::Empty => k(ctx, pos),
        Node::Class(set) => pos < ctx.hay.len() && set.contains(ctx.hay[pos]) && k(ctx, pos + 1),
        Node::Concat(items) => seq(items, ctx, pos, k),
        Node::Seq(sets) => seq_matches_at(sets, ctx.hay, pos) && k(ctx, pos + sets.len()),
        Node::SeqAlt(set) => {
            for run in set.candidates(ctx.hay, pos) {
                if seq_matches_at(run, ctx.hay, pos) && k(ctx, pos + run.len()) {
                    return true;
                }
                if ctx.steps > ctx.budget {
                    return false;
                }
            }
            false
        }
        Node::Alt(alts) => {
            for alt in alts {
                if m(alt, ctx, pos, k) {
                    return true;
                }
                if ctx.steps > ctx.budget {
                    return false;
                }
            }
            false
        }
        Node::Repeat { node: inner, min, max, greedy } => {
            if let Node::Class(set) = &**inner {
                // A run of one byte class: find the longest run once, then try lengths in order.
                let limit = max.map_or(usize::MAX, |m| m as usize);
                let avail = &ctx.hay[pos..];
                let run = avail.iter().take(limit).take_while(|&&b| set.contains(b)).count();
                let min = *min as usize;
                if run < min {
                    return false;
                }
                if *greedy {
                    for n in (min..=run).rev() {
                        if k(ctx, pos + n) {
                            return true;
                        }
                        if ctx.steps > ctx.budget {
                            return false;
                        }
                        ctx.steps += 1;
                    }
                } else {
                    for n in min..=run {
                        if k(ctx, pos + n) {
                            return true;
                        }
                        if ctx.steps > ctx.budget {
                            return false;
                        }
                        ctx.steps += 1;
                    }
                }
                false
            } else {
                repeat(inner, *min, *max, *greedy, 0, ctx, pos, k)
            }
        }
        // Look-around and atomic bodies come from requirements, whose groups never capture
        // (parameters are the only captures, and they sit outside any requirement), so no
        // capture state needs saving around them.
        Node::Atomic(inner) => {
            let mut end = None;
            m(inner, ctx, pos, &mut |_, e| {
                end = Some(e);
                true
            });
            matches!(end, Some(e) if k(ctx, e))
        }
        Node::Look { behind: false, negate, node: inner } => {
            let found = m(inner, ctx, pos, &mut |_, _| true);
            found != *negate && k(ctx, pos)
        }
        Node::Look { behind: true, negate, node: inner } => {
            let found = match &**inner {
                // The common shape, `(?<!\.git|\.atom)`: compare the bytes just before `pos`.
                Node::SeqAlt(set) => (pos > 0 && set.last.contains(ctx.hay[pos - 1]) || set.last == crate::ruby_regex::ast::ByteSet::full()) && set.runs.iter().any(|run| run.len() <= pos && seq_matches_at(run, ctx.hay, pos - run.len())),
                Node::Seq(run) => run.len() <= pos && seq_matches_at(run, ctx.hay, pos - run.len()),
                other => {
                    let alts: &[Node] = match other {
                        Node::Alt(alts) => alts,
                        single => std::slice::from_ref(single),
                    };
                    // The parser only accepts fixed-length look-behind alternatives.
                    alts.iter().any(|alt| {
                        alt.fixed_len().is_some_and(|len| len <= pos && m(alt, ctx, pos - len, &mut |_, e| e == pos))
                    })
                }
            };
            found != *negate && k(ctx, pos)
        }
        Node::Assert(a) => assertion_holds(*a, ctx.hay, pos) && k(ctx, pos),
        Node::Capture { slot, node: inner } => {
            let slot = *slot;
            let start = pos;
            m(inner, ctx, pos, &mut |ctx, end| {
                let previous = ctx.caps[slot];
                ctx.caps[slot] = Some((start, end));
                if k(ctx, end) {
                    true
                } else {
                    ctx.caps[slot] = previous;
                    false
                }
            })
        }
    }
}

fn seq<'h>(items: &[Node], ctx: &mut Ctx<'h>, pos: usize, k: Cont<'_, 'h>) -> bool {
    match items {
        [] => k(ctx, pos),
        [only] => m(only, ctx, pos, k),
        [first, rest @ ..] => m(first, ctx, pos, &mut |ctx, p| seq(rest, ctx, p, k)),
    }
}

/// A general repetition; `count` iterations are already matched. An iteration that matches
/// the empty string once the minimum is reached ends the loop (Onigmo's empty-loop check).
#[allow(clippy::too_many_arguments)]
fn repeat<'h>(
    inner: &Node,
    min: u32,
    max: Option<u32>,
    greedy: bool,
    count: u32,
    ctx: &mut Ctx<'h>,
    pos: usize,
    k: Cont<'_, 'h>,
) -> bool {
    // Each iteration nests deeper; every eighth one, make sure of 128 KiB of stack (growing it
    // on the heap if needed), which covers the frames of the next eight.
    if count % 8 == 0 {
        return stacker::maybe_grow(128 * 1024, 1024 * 1024, || repeat_body(inner, min, max, greedy, count, ctx, pos, k));
    }
    repeat_body(inner, min, max, greedy, count, ctx, pos, k)
}

#[allow(clippy::too_many_arguments)]
fn repeat_body<'h>(
    inner: &Node,
    min: u32,
    max: Option<u32>,
    greedy: bool,
    count: u32,
    ctx: &mut Ctx<'h>,
    pos: usize,
    k: Cont<'_, 'h>,
) -> bool {
    {
        let can_more = max.is_none_or(|m| count < m);
        let iterate = |ctx: &mut Ctx<'h>, k: Cont<'_, 'h>| {
            can_more
                && m(inner, ctx, pos, &mut |ctx, p| {
                    if p == pos && count + 1 >= min {
                        // An empty iteration: do not loop again.
                        k(ctx, p)
                    } else {
                        repeat(inner, min, max, greedy, count + 1, ctx, p, k)
                    }
                })
        };
        if greedy {
            iterate(ctx, k) || (count >= min && ctx.steps <= ctx.budget && k(ctx, pos))
        } else {
            (count >= min && k(ctx, pos)) || (ctx.steps <= ctx.budget && iterate(ctx, k))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruby_regex::parse::parse;

    fn capture_all(src: &str, hay: &str) -> Option<(usize, usize)> {
        let node = Node::Concat(vec![
            Node::Capture { slot: 0, node: Box::new(parse(src, 0).unwrap()) },
            Node::Assert(Assertion::EndText),
        ]);
        Matcher::new(node, 1).captures(hay.as_bytes()).unwrap().map(|c| c[0].unwrap())
    }

    #[test]
    fn look_around_sees_past_the_capture() {
        let ns = r"(?!(admin|api)/)[a-z]+(?:/[a-z]+)*";
        assert!(capture_all(ns, "admin/x").is_none());
        assert_eq!(capture_all(ns, "admin"), Some((0, 5)));
        assert_eq!(capture_all(ns, "admins/x"), Some((0, 8)));
        assert!(capture_all(r"[a-z.]+(?<!\.git|\.atom)", "foo.git").is_none());
        assert!(capture_all(r"[a-z.]+(?<!\.git|\.atom)", "foo.atom").is_none());
        assert!(capture_all(r"[a-z.]+(?<!\.git|\.atom)", "foo.gitx").is_some());
    }

    #[test]
    fn lazy_and_greedy_captures_follow_priority() {
        let node = parse(r"(?:(.+?)(?:\.([a-z]+))?)\z", 0).unwrap();
        // Without a Capture node the test only checks the match; captures are checked in journey tests.
        assert!(Matcher::new(node, 0).captures(b"a/b.json").unwrap().is_some());
    }

    #[test]
    fn catastrophic_backtracking_is_cut_off() {
        let node = parse(r"(?:a+)+b", 0).unwrap();
        let hay = "a".repeat(40);
        assert_eq!(Matcher::new(node, 0).captures(hay.as_bytes()), Err(BudgetExceeded { budget: DEFAULT_STEP_BUDGET }));
    }

    #[test]
    fn deep_repetition_does_not_overflow_the_stack() {
        let node = parse(r"(?:/[a-z])*\z", 0).unwrap();
        let hay = "/a".repeat(50_000);
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || Matcher::new(node, 0).captures(hay.as_bytes()).unwrap().is_some())
            .unwrap();
        assert!(handle.join().unwrap());
    }
}
