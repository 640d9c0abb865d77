//! A route's DFA pattern as the syntax tree `regex-automata` compiles (`regex_syntax`'s
//! [`Hir`]), built straight from the parsed Ruby regex instead of from pattern text.
//!
//! Handing `regex-automata` pattern text makes it parse every pattern (an AST, then the HIR)
//! each time an automaton holds it: on GitLab's template snapshot that parsing was ~80% of
//! building the first-segment dispatch's automata, over half of the whole build. This module
//! writes the HIR [`translate`](super::translate::translate) would have `regex-syntax` parse:
//! the same `Hir` value, built with `regex-syntax`'s own smart constructors in the shape its
//! translator builds them from the text (every `(?:...)` one node, literals merged by
//! [`Hir::concat`], single bytes and classes as its class translation leaves them), so the NFA
//! and every DFA compiled from it are the ones the text gave. What the text widens is widened
//! here in the same way; the widenings themselves are reported by the text translator, which
//! stays the pattern's readable form (`cells-learn report`, the tests comparing patterns).
//! `tests::hir_is_the_parsed_pattern` and the corpus tests hold both to the same tree.

use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, Hir, HirKind, Look, Repetition};

use super::ast::{Assertion, ByteSet, Node};
use super::translate::MAX_EXACT_REPEAT_SPAN;

/// The HIR of [`translate`](super::translate::translate)`(node)`'s pattern.
pub fn to_hir(node: &Node) -> Hir {
    match node {
        Node::Concat(items) => seq_to_hir(items),
        other => group(other),
    }
}

/// The HIR of [`translate_seq`](super::translate::translate_seq)`(items)`'s pattern.
pub fn seq_to_hir(items: &[Node]) -> Hir {
    let mut out = Items::sized_for(items);
    out.seq(items);
    out.finish()
}

/// [`to_hir`] of a mounted route's regex, which the automaton matches as a prefix: the
/// pattern followed by `(?s-u:.*)\z`, any bytes to the end of the path.
pub fn mounted_to_hir(node: &Node) -> Hir {
    let mut out = match node {
        Node::Concat(items) => {
            let mut out = Items::sized_for(items);
            out.seq(items);
            out
        }
        other => {
            let mut out = Items::default();
            out.node(other);
            out
        }
    };
    let any = Hir::class(Class::Bytes(ClassBytes::new([ClassBytesRange::new(0, 0xFF)])));
    out.push(Hir::repetition(Repetition { min: 0, max: None, greedy: true, sub: Box::new(any) }));
    out.push(Hir::look(Look::End));
    out.finish()
}

/// The expressions of one concatenation, as `regex-syntax` reads them from the text.
///
/// Consecutive literal bytes are gathered here rather than each made a `Hir` for
/// [`Hir::concat`] to merge (a route's literal segments are most of its pattern), and empty
/// expressions are left out, as `Hir::concat` leaves them: its result is the same.
#[derive(Default)]
struct Items {
    hirs: Vec<Hir>,
    /// The literal run being gathered; its buffer serves every run.
    literal: Vec<u8>,
}

impl Items {
    /// Sized for a route's top-level sequence `items`, not grown item by item (GitLab's
    /// template snapshot's route HIRs: 89.0M -> 83.0M instructions): room for all its literal bytes (a literal is a
    /// class or a concatenation of classes) and for its expressions, as each other item makes
    /// at most one and ends at most one literal run (+ 4: the last run, the `\z` of a `\Z`, a
    /// mount's `.*` and `\z`).
    fn sized_for(items: &[Node]) -> Items {
        let (mut bytes, mut others) = (0, 0);
        for item in items {
            match item {
                Node::Class(_) => bytes += 1,
                Node::Concat(classes) => bytes += classes.len(),
                _ => others += 1,
            }
        }
        Items { hirs: Vec::with_capacity(2 * others + 4), literal: Vec::with_capacity(bytes) }
    }

    /// The concatenation.
    fn finish(mut self) -> Hir {
        self.flush();
        if self.hirs.len() == 1 {
            // What `Hir::concat` returns for one expression (a concatenation's own
            // expressions are already flat and merged), without rebuilding it.
            return self.hirs.pop().unwrap_or_else(Hir::empty);
        }
        Hir::concat(self.hirs)
    }

    fn push(&mut self, hir: Hir) {
        match hir.kind() {
            HirKind::Empty => {}
            HirKind::Literal(literal) => self.literal.extend_from_slice(&literal.0),
            _ => {
                self.flush();
                self.hirs.push(hir);
            }
        }
    }

    fn flush(&mut self) {
        if !self.literal.is_empty() {
            self.hirs.push(Hir::literal(&self.literal[..]));
            self.literal.clear();
        }
    }

    /// The items of a top-level sequence, a trailing `\Z` written `\n?\z` (exact there).
    fn seq(&mut self, items: &[Node]) {
        match items {
            [init @ .., Node::Assert(Assertion::EndTextOptionalNewline)] => {
                init.iter().for_each(|item| self.node(item));
                let newline = Hir::literal(*b"\n");
                self.push(Hir::repetition(Repetition { min: 0, max: Some(1), greedy: true, sub: Box::new(newline) }));
                self.push(Hir::look(Look::End));
            }
            _ => items.iter().for_each(|item| self.node(item)),
        }
    }

    /// One byte of `set`: a literal byte when it is a single byte, else a byte class.
    fn class(&mut self, set: &ByteSet) {
        match set.single_byte() {
            Some(b) => self.literal.push(b),
            None => self.push(byte_class(set)),
        }
    }

    /// Appends the expressions `node`'s text puts in the concatenation it appears in.
    fn node(&mut self, node: &Node) {
        match node {
            // `(?:)`; look-arounds, assumed true: nothing in the pattern.
            Node::Empty | Node::Look { .. } => {}
            Node::Class(set) => self.class(set),
            Node::Concat(items) => {
                for item in items {
                    match item {
                        // A literal's bytes, most of the nodes: no call each.
                        Node::Class(set) => self.class(set),
                        _ => self.node(item),
                    }
                }
            }
            Node::Seq(sets) => sets.iter().for_each(|set| self.class(set)),
            // A group's concatenation is flattened into this one by `Hir::concat`: its items
            // go here directly, the same expressions without building the group's own.
            Node::Atomic(inner) | Node::Capture { node: inner, .. } => self.node(inner),
            _ => self.push(group(node)),
        }
    }
}

/// A group `(?:...)` around `node`'s text: one expression, as `regex-syntax` translates a
/// non-capturing group (its content's concatenation). A node that is one expression is built
/// as that expression: only a concatenation needs [`Items`] (with captures' contents put in
/// the enclosing concatenation, GitLab's template snapshot's route HIRs: 99.0M -> 89.0M
/// instructions).
fn group(node: &Node) -> Hir {
    match node {
        Node::Empty | Node::Look { .. } => Hir::empty(),
        Node::Class(set) => byte_class(set),
        Node::Concat(_) => {
            let mut out = Items::default();
            out.node(node);
            out.finish()
        }
        Node::Seq(sets) => run(sets),
        Node::SeqAlt(set) => Hir::alternation(set.runs.iter().map(|r| run(r)).collect()),
        Node::Alt(alts) => Hir::alternation(alts.iter().map(group).collect()),
        Node::Repeat { node, min, max, greedy: _ } => {
            // Greediness does not change which strings match; the text writes every
            // repeat greedy.
            let max = max.filter(|max| max - min <= MAX_EXACT_REPEAT_SPAN);
            Hir::repetition(Repetition { min: *min, max, greedy: true, sub: Box::new(group(node)) })
        }
        Node::Atomic(inner) | Node::Capture { node: inner, .. } => group(inner),
        Node::Assert(a) => look(a).map_or_else(Hir::empty, Hir::look),
    }
}

/// The look-around an assertion is written as; `None` for `\Z` inside the pattern, assumed
/// true: nothing in the pattern.
fn look(a: &Assertion) -> Option<Look> {
    Some(match a {
        Assertion::StartText => Look::Start,
        Assertion::EndText => Look::End,
        // `(?m:^)`, `(?m:$)`.
        Assertion::StartLine => Look::StartLF,
        Assertion::EndLine => Look::EndLF,
        // `\b`, `\B` in `(?-u)`.
        Assertion::WordBoundary => Look::WordAscii,
        Assertion::NotWordBoundary => Look::WordAsciiNegate,
        Assertion::EndTextOptionalNewline => return None,
    })
}

/// A run of byte classes: its literal bytes and classes, concatenated.
fn run(sets: &[ByteSet]) -> Hir {
    let mut out = Items::default();
    sets.iter().for_each(|set| out.class(set));
    out.finish()
}

/// One byte of `set`, as `Hir::class` leaves it: a literal when it is a single byte, none when
/// it is empty (`Hir::fail`).
fn byte_class(set: &ByteSet) -> Hir {
    Hir::class(Class::Bytes(ClassBytes::new(set.ranges().into_iter().map(|(lo, hi)| ClassBytesRange::new(lo, hi)))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruby_regex::parse::parse;
    use crate::ruby_regex::translate::{translate, translate_seq};

    /// What `regex-automata` makes of the text.
    fn parsed(pattern: &str) -> Hir {
        regex_automata::util::syntax::parse_with(pattern, &crate::engine::syntax_config()).unwrap()
    }

    /// Regexes covering every node and assertion the translator writes, the widened ones too.
    const REGEXES: &[&str] = &[
        r"abc",
        r"a[b-d]e\.f",
        r"(?:)",
        r"a(?:)b",
        r"(?!admin/)[a-z]+(?<!\.git)",
        r"a{0,254}b{2,5}c{1}d{0}e{3,}f?g*h+?",
        r"(?>ab|c)x*+",
        r"\Aa\z",
        r"^a$",
        r"\ba\B",
        r"a\Zb\Z",
        r"x|y|z",
        r"ab|a|",
        r"json|xml|ya?ml",
        r"(a|b)(c|)",
        r"[^\x00-\xFF]",
        r"[^a]",
        r"(?i)AbC",
        r"[\x80-\xFF]\xFF",
        r"(?:(?:a))",
        r"(?=a)",
        r"(?:|(?!b)){2,3}",
        r"(?:(?!b)a|){2,70}",
        r"(\n)\n",
        r"\x00[\x00-\x01]",
    ];

    /// The HIR built from the tree is the one `regex-syntax` parses from the pattern text,
    /// as parsed and optimized (run sets and byte sequences), whole and as a sequence.
    #[test]
    fn hir_is_the_parsed_pattern() {
        for regex in REGEXES {
            let node = parse(regex, 0).unwrap();
            for node in [node.clone(), node.optimized()] {
                let text = translate(&node).pattern;
                assert_eq!(to_hir(&node), parsed(&text), "{regex}: {text}");
                let mounted = format!("{text}(?s-u:.*)\\z");
                assert_eq!(mounted_to_hir(&node), parsed(&mounted), "{regex}: {mounted}");
                let items = vec![Node::Assert(Assertion::StartText), node.clone(), Node::Assert(Assertion::EndTextOptionalNewline)];
                let text = translate_seq(&items).pattern;
                assert_eq!(seq_to_hir(&items), parsed(&text), "{regex}: {text}");
                assert_eq!(seq_to_hir(&items[..2]), parsed(&translate_seq(&items[..2]).pattern), "{regex}");
            }
        }
    }

    /// Every byte set writes the class the text's spelling parses to (single bytes, ranges
    /// ending on escaped bytes, the empty and the full set).
    #[test]
    fn every_class_is_the_parsed_class() {
        let mut sets = vec![ByteSet::default(), ByteSet::full(), ByteSet::range(b'a', b'z')];
        for b in 0..=255u8 {
            sets.push(ByteSet::single(b));
            let mut s = ByteSet::range(b, b.saturating_add(3));
            s.insert(b'/');
            s.negate();
            sets.push(s);
        }
        for set in sets {
            let node = Node::Class(set);
            assert_eq!(to_hir(&node), parsed(&translate(&node).pattern), "{set:?}");
        }
    }
}
