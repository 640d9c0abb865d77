//! Writes a parsed Ruby regex as a `regex-automata` pattern for the multi-route DFA.
//!
//! The DFA has no look-around and should stay small, so some constructs are widened:
//! look-around becomes "always true", atomic groups become plain groups, long bounded
//! repetitions lose their upper bound. Every widening makes the pattern accept a superset of
//! what Ruby accepts, never a subset, so the DFA can only produce extra candidates; each
//! widening is recorded, and routes with any are verified by the exact matcher
//! ([`crate::matcher`]) before they are answered.

use super::ast::{Assertion, ByteSet, Node};

/// Above this many optional copies, `x{n,m}` is emitted as `x{n,}` (NFA size grows with `m`).
pub(crate) const MAX_EXACT_REPEAT_SPAN: u32 = 64;

/// One construct that the DFA pattern accepts more loosely than Ruby does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Widening {
    /// The construct, e.g. `negative look-ahead`.
    pub construct: String,
    /// What the DFA pattern does instead.
    pub action: String,
}

/// The DFA pattern text and what it widened.
pub struct Translation {
    pub pattern: String,
    pub widenings: Vec<Widening>,
}

/// Translates `node`; a trailing `\Z` of the whole pattern is written as `\n?\z`, which is exact there.
pub fn translate(node: &Node) -> Translation {
    match node {
        Node::Concat(items) => translate_seq(items),
        other => Translator::write(|t| t.emit(other)),
    }
}

/// [`translate`] of `Node::Concat(items)`, without building that node (the build splits each
/// route's regex around its key this way: copying the parts was a tenth of GitLab CE's build).
pub fn translate_seq(items: &[Node]) -> Translation {
    let (body, final_end) = split_final_end(items);
    Translator::write(|t| {
        body.iter().for_each(|item| t.emit(item));
        if final_end {
            t.out.push_str(r"\n?\z");
        }
    })
}

/// A sequence's items before a final `\Z`, and whether there is one: written `\n?\z` at the
/// end of the whole pattern, which is exact there (no widening).
fn split_final_end(items: &[Node]) -> (&[Node], bool) {
    match items {
        [init @ .., Node::Assert(Assertion::EndTextOptionalNewline)] => (init, true),
        _ => (items, false),
    }
}

/// What [`translate`] widens in `node`, without writing the pattern: for the routes whose
/// pattern text nobody reads (the first-segment dispatch builds its automata from the regex
/// itself, and writing the text was a third of the routes' lowering on GitLab's templates).
pub fn widenings(node: &Node) -> Vec<Widening> {
    let mut t = Translator { out: String::new(), widenings: Vec::new() };
    match node {
        Node::Concat(items) => split_final_end(items).0.iter().for_each(|item| t.note(item)),
        other => t.note(other),
    }
    t.finish().widenings
}

struct Translator {
    out: String,
    widenings: Vec<Widening>,
}

impl Translator {
    /// The pattern `body` writes, in byte mode, with its widenings sorted and deduplicated.
    fn write(body: impl FnOnce(&mut Translator)) -> Translation {
        let mut t = Translator { out: String::with_capacity(256), widenings: Vec::new() };
        t.out.push_str("(?-u)");
        body(&mut t);
        t.finish()
    }

    fn finish(mut self) -> Translation {
        self.widenings.sort_by(|a, b| (&a.construct, &a.action).cmp(&(&b.construct, &b.action)));
        self.widenings.dedup();
        Translation { pattern: self.out, widenings: self.widenings }
    }

    /// The widenings [`Translator::emit`] records for `node`, without its text.
    fn note(&mut self, node: &Node) {
        match node {
            Node::Concat(items) | Node::Alt(items) => items.iter().for_each(|item| self.note(item)),
            Node::Repeat { node, min, max, .. } => {
                self.note(node);
                if let Some(max) = max {
                    if max - min > MAX_EXACT_REPEAT_SPAN {
                        self.widen_repeat(*min, *max);
                    }
                }
            }
            Node::Atomic(inner) => {
                self.note(inner);
                self.widen_atomic();
            }
            Node::Look { behind, negate, .. } => self.widen_look(*behind, *negate),
            Node::Assert(Assertion::EndTextOptionalNewline) => self.widen_end_text(),
            Node::Capture { node, .. } => self.note(node),
            Node::Empty | Node::Class(_) | Node::Seq(_) | Node::SeqAlt(_) | Node::Assert(_) => {}
        }
    }

    fn widen_repeat(&mut self, min: u32, max: u32) {
        self.widen(&format!("bounded repetition {{{min},{max}}}"), "upper bound dropped in the DFA; checked exactly");
    }

    fn widen_atomic(&mut self) {
        self.widen("atomic group or possessive quantifier", "treated as a plain group in the DFA; checked exactly");
    }

    fn widen_look(&mut self, behind: bool, negate: bool) {
        let name = match (behind, negate) {
            (false, false) => "positive look-ahead",
            (false, true) => "negative look-ahead",
            (true, false) => "positive look-behind",
            (true, true) => "negative look-behind",
        };
        self.widen(name, "assumed true in the DFA; checked exactly");
    }

    fn widen_end_text(&mut self) {
        self.widen(r"\Z inside the pattern", "assumed true in the DFA; checked exactly");
    }

    fn widen(&mut self, construct: &str, action: &str) {
        self.widenings.push(Widening { construct: construct.into(), action: action.into() });
    }

    fn emit(&mut self, node: &Node) {
        match node {
            Node::Empty => self.out.push_str("(?:)"),
            Node::Class(set) => emit_class(&mut self.out, set),
            Node::Concat(items) => {
                for item in items {
                    self.emit(item);
                }
            }
            Node::Seq(sets) => {
                for set in sets {
                    emit_class(&mut self.out, set);
                }
            }
            Node::SeqAlt(set) => {
                self.out.push_str("(?:");
                for (i, run) in set.runs.iter().enumerate() {
                    if i > 0 {
                        self.out.push('|');
                    }
                    // As `Node::Empty` is written: a run set spells the alternatives it was
                    // optimized from with the same text.
                    if run.is_empty() {
                        self.out.push_str("(?:)");
                    }
                    for set in run {
                        emit_class(&mut self.out, set);
                    }
                }
                self.out.push(')');
            }
            Node::Alt(alts) => {
                self.out.push_str("(?:");
                for (i, alt) in alts.iter().enumerate() {
                    if i > 0 {
                        self.out.push('|');
                    }
                    self.emit(alt);
                }
                self.out.push(')');
            }
            Node::Repeat { node, min, max, greedy: _ } => {
                // Greediness does not change which strings match, only captures (the exact matcher's job).
                self.out.push_str("(?:");
                self.emit(node);
                self.out.push(')');
                // Written without `fmt`: every parameter is a repetition, and formatting them
                // was a tenth of the routes' translation.
                let mut digits = itoa::Buffer::new();
                self.out.push('{');
                self.out.push_str(digits.format(*min));
                self.out.push(',');
                match max {
                    Some(max) if max - min > MAX_EXACT_REPEAT_SPAN => self.widen_repeat(*min, *max),
                    Some(max) => self.out.push_str(digits.format(*max)),
                    None => {}
                }
                self.out.push('}');
            }
            Node::Atomic(inner) => {
                self.out.push_str("(?:");
                self.emit(inner);
                self.out.push(')');
                self.widen_atomic();
            }
            Node::Look { behind, negate, .. } => self.widen_look(*behind, *negate),
            Node::Assert(a) => match a {
                Assertion::StartText => self.out.push_str(r"\A"),
                Assertion::EndText => self.out.push_str(r"\z"),
                Assertion::StartLine => self.out.push_str("(?m:^)"),
                Assertion::EndLine => self.out.push_str("(?m:$)"),
                Assertion::WordBoundary => self.out.push_str(r"\b"),
                Assertion::NotWordBoundary => self.out.push_str(r"\B"),
                Assertion::EndTextOptionalNewline => self.widen_end_text(),
            },
            Node::Capture { node, .. } => {
                self.out.push_str("(?:");
                self.emit(node);
                self.out.push(')');
            }
        }
    }
}

/// A byte as the pattern spells it: ASCII letters, digits, `/` and `_` as themselves (no
/// syntax in or out of a class, and one byte each under `(?-u)`), others as `\xHH`. Parsing
/// escapes was a third of the build of GitLab's template snapshot (regex-syntax reads each
/// escape through its escape and hex parsers), and patterns are mostly route literals.
fn push_byte(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b == b'/' || b == b'_' {
        out.push(b as char);
    } else {
        push_hex(out, b);
    }
}

/// `\xHH`, written without `fmt` (formatting was a tenth of GitLab CE's build).
fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push_str(r"\x");
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xF)] as char);
}

fn emit_class(out: &mut String, set: &ByteSet) {
    if let Some(b) = set.single_byte() {
        push_byte(out, b);
        return;
    }
    let ranges = set.ranges();
    if ranges.is_empty() {
        // No byte can match: an empty class.
        out.push_str(r"[^\x00-\xFF]");
        return;
    }
    if let [(lo, hi)] = ranges[..] {
        if lo == hi {
            push_byte(out, lo);
            return;
        }
    }
    out.push('[');
    for (lo, hi) in ranges {
        push_byte(out, lo);
        if lo != hi {
            out.push('-');
            push_byte(out, hi);
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruby_regex::parse::parse;

    #[test]
    fn every_byte_is_written_as_a_pattern_that_matches_it_alone() {
        for b in 0..=255u8 {
            let mut out = String::new();
            push_hex(&mut out, b);
            assert_eq!(out, format!(r"\x{b:02X}"));
            let mut spelled = String::new();
            push_byte(&mut spelled, b);
            // Alone and as a class range end, the spelling matches exactly this byte.
            for pattern in [format!("(?-u)^{spelled}$"), format!("(?-u)^[{spelled}-{spelled}]$")] {
                let re = regex_automata::dfa::regex::Builder::new()
                    .syntax(regex_automata::util::syntax::Config::new().utf8(false))
                    .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
                    .build(&pattern)
                    .unwrap();
                for other in 0..=255u8 {
                    assert_eq!(re.is_match(&[other][..]), other == b, "{pattern} on byte {other}");
                }
            }
        }
    }

    #[test]
    fn look_around_is_widened_and_reported() {
        let t = translate(&parse(r"(?!admin/)[a-z]+(?<!\.git)", 0).unwrap());
        assert_eq!(t.pattern, r"(?-u)(?:[a-z]){1,}");
        let constructs: Vec<_> = t.widenings.iter().map(|w| w.construct.as_str()).collect();
        assert_eq!(constructs, ["negative look-ahead", "negative look-behind"]);
    }

    #[test]
    fn long_bounded_repeats_lose_their_bound() {
        let t = translate(&parse(r"a{0,254}b{2,5}", 0).unwrap());
        assert_eq!(t.pattern, r"(?-u)(?:a){0,}(?:b){2,5}");
        assert_eq!(t.widenings.len(), 1);
    }
}
