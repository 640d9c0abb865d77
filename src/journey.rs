//! Rails' Journey path specs (`/*namespace_id/:project_id/-/issues(.:format)`) and the regex
//! Journey builds from them.
//!
//! The scanner and grammar follow `action_dispatch/journey/scanner.rb` and `parser.y`
//! (actionpack 6.1); the regex follows `Path::Pattern::AnchoredRegexp`: symbols default to
//! `[^/.?]+`, globs to the lazy `.+?` that Rails' mapper adds, optional groups become
//! `(?:...)?`, and the whole is anchored `\A...\Z`. Mounted (unanchored) routes end in
//! `(?:\b|\Z|/)` and accept any suffix, as `UnanchoredRegexp` does.

use crate::ruby_regex::ast::{Assertion, ByteSet, Node};

/// One element of a parsed path spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecNode {
    Slash,
    Dot,
    Literal(String),
    /// `:name`
    Symbol(String),
    /// `*name`
    Star(String),
    /// `( ... )`
    Group(Vec<SpecNode>),
    /// `a|b` (rare in practice; Journey binds it between single expressions)
    Or(Vec<SpecNode>),
}

/// A path spec that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {position}: {reason}")]
pub struct SpecError {
    pub position: usize,
    pub reason: String,
}

/// Parses a Journey path spec.
pub fn parse_spec(spec: &str) -> Result<Vec<SpecNode>, SpecError> {
    if spec.is_empty() {
        return Err(SpecError { position: 0, reason: "empty path spec".into() });
    }
    let mut p = SpecParser { src: spec.as_bytes(), pos: 0 };
    let (nodes, closed_at) = p.sequence(0)?;
    if let Some(at) = closed_at {
        return Err(SpecError { position: at, reason: "unbalanced ')' without '('".into() });
    }
    Ok(nodes)
}

fn walk_names<'a>(nodes: &'a [SpecNode], f: &mut impl FnMut(&'a str)) {
    for n in nodes {
        match n {
            SpecNode::Symbol(name) | SpecNode::Star(name) => f(name),
            SpecNode::Group(inner) | SpecNode::Or(inner) => walk_names(inner, f),
            _ => {}
        }
    }
}

/// The parameter names of a spec, in the order Journey numbers them: one per occurrence, so
/// a name used twice (`/downloads/:id/:id.tar`, which Rails accepts) has two slots; Rails keeps
/// the last one that matched (see `Match::span`).
pub fn param_names(nodes: &[SpecNode]) -> Vec<String> {
    let mut names = Vec::new();
    walk_names(nodes, &mut |n| names.push(n.to_string()));
    names
}

struct SpecParser<'a> {
    src: &'a [u8],
    pos: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Characters of a literal run (Journey: `[\w%\-~!$&'*+,;=@]`).
fn is_literal_char(b: u8) -> bool {
    is_word(b) || b"%-~!$&'*+,;=@".contains(&b)
}

impl<'a> SpecParser<'a> {
    /// Parses until the end or a `)`; returns the nodes and the position of that `)` if any.
    fn sequence(&mut self, depth: usize) -> Result<(Vec<SpecNode>, Option<usize>), SpecError> {
        if depth > 64 {
            return Err(SpecError { position: self.pos, reason: "optional groups nested too deeply".into() });
        }
        let mut nodes: Vec<SpecNode> = Vec::new();
        while self.pos < self.src.len() {
            let start = self.pos;
            let b = self.src[self.pos];
            match b {
                b')' => {
                    self.pos += 1;
                    return Ok((nodes, Some(start)));
                }
                b'|' => {
                    self.pos += 1;
                    let Some(left) = nodes.pop() else {
                        return Err(SpecError { position: start, reason: "'|' without an expression before it".into() });
                    };
                    let right = self.single(depth)?.ok_or(SpecError { position: start, reason: "'|' without an expression after it".into() })?;
                    nodes.push(SpecNode::Or(vec![left, right]));
                }
                _ => {
                    if let Some(node) = self.single(depth)? {
                        nodes.push(node);
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    /// One expression: a terminal, a group or a star. `None` at `)`, `|` or the end.
    fn single(&mut self, depth: usize) -> Result<Option<SpecNode>, SpecError> {
        let Some(&b) = self.src.get(self.pos) else { return Ok(None) };
        let start = self.pos;
        Ok(Some(match b {
            b')' | b'|' => return Ok(None),
            b'/' => {
                self.pos += 1;
                SpecNode::Slash
            }
            b'.' => {
                self.pos += 1;
                SpecNode::Dot
            }
            b'(' => {
                self.pos += 1;
                let (inner, closed) = self.sequence(depth + 1)?;
                if closed.is_none() {
                    return Err(SpecError { position: start, reason: "unbalanced '(' without ')'".into() });
                }
                SpecNode::Group(inner)
            }
            b':' | b'*' if self.src.get(self.pos + 1).is_some_and(|&c| is_word(c)) => {
                self.pos += 1;
                let name_start = self.pos;
                while self.src.get(self.pos).is_some_and(|&c| is_word(c)) {
                    self.pos += 1;
                }
                let name = String::from_utf8_lossy(&self.src[name_start..self.pos]).into_owned();
                if b == b':' {
                    SpecNode::Symbol(name)
                } else {
                    SpecNode::Star(name)
                }
            }
            _ => {
                let mut text = Vec::new();
                loop {
                    match self.src.get(self.pos) {
                        Some(&c) if is_literal_char(c) => {
                            text.push(c);
                            self.pos += 1;
                        }
                        Some(b'\\') if matches!(self.src.get(self.pos + 1), Some(b':' | b'(' | b')')) => {
                            text.push(self.src[self.pos + 1]);
                            self.pos += 2;
                        }
                        _ => break,
                    }
                }
                if text.is_empty() {
                    // Any other single character is a literal of its own (Journey's `/./`).
                    let ch_len = std::str::from_utf8(&self.src[self.pos..]).ok().and_then(|s| s.chars().next()).map_or(1, |c| c.len_utf8());
                    text.extend_from_slice(&self.src[self.pos..self.pos + ch_len]);
                    self.pos += ch_len;
                }
                SpecNode::Literal(String::from_utf8_lossy(&text).into_owned())
            }
        }))
    }
}

/// How Journey finds a route, which decides how the end of its regex behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchoring {
    /// An anchored route found by its regex `\A body \Z`, so a final `\n` may stay unmatched.
    Regex,
    /// An anchored route found by Journey's simulator (`GTG::Simulator`), which reads the path
    /// as `[/.?]|[^/.?]+` tokens and needs each literal to equal a whole token: a final `\n`
    /// must be taken by a parameter. Its regex is therefore `\A body \z` here.
    Simulator,
    /// A mounted Rack application: `\A body (?:\b|\Z|/)`, a prefix of the path (`\A/` for `/`),
    /// with a greedy glob (mounts are drawn with `format: false`).
    Mounted,
}

/// Whether Journey's `Routes#partition_route` puts an anchored route in the simulator: no glob,
/// no requirement on any symbol, and no symbol next to a literal in the same sequence (the
/// mapper's `alter_regex_for_custom_routes` gives those a custom regexp, `/:a-:b`, `/foo:id`).
pub fn is_simulator_route(nodes: &[SpecNode], has_requirement: &dyn Fn(&str) -> bool) -> bool {
    let literal = |n: Option<&SpecNode>| matches!(n, Some(SpecNode::Literal(_)));
    nodes.iter().enumerate().all(|(i, n)| match n {
        SpecNode::Star(_) => false,
        SpecNode::Symbol(name) => !has_requirement(name) && !literal(i.checked_sub(1).and_then(|p| nodes.get(p))) && !literal(nodes.get(i + 1)),
        SpecNode::Group(inner) => is_simulator_route(inner, has_requirement),
        SpecNode::Or(alts) => alts.iter().all(|a| is_simulator_route(std::slice::from_ref(a), has_requirement)),
        _ => true,
    })
}

/// Builds the route's regex as Journey would (see [`Anchoring`]). `requirement` gives the
/// parsed requirement of a parameter, if it has one; parameters become [`Node::Capture`] in
/// `param_names` order.
pub fn route_regex(nodes: &[SpecNode], anchoring: Anchoring, requirement: &mut dyn FnMut(&str) -> Option<Node>) -> Node {
    let mut body = Vec::new();
    let greedy_glob = anchoring == Anchoring::Mounted;
    lower(nodes, &mut 0, requirement, greedy_glob, &mut body);
    let mut all = vec![Node::Assert(Assertion::StartText)];
    let is_root = nodes == [SpecNode::Slash];
    all.extend(body);
    match anchoring {
        Anchoring::Regex => all.push(Node::Assert(Assertion::EndTextOptionalNewline)),
        Anchoring::Simulator => all.push(Node::Assert(Assertion::EndText)),
        Anchoring::Mounted if is_root => {}
        Anchoring::Mounted => {
            all.push(Node::Alt(vec![Node::Assert(Assertion::WordBoundary), Node::Assert(Assertion::EndTextOptionalNewline), Node::literal(b"/")]))
        }
    }
    Node::Concat(all)
}

/// Journey's default for `:param`: `[^/.?]+`.
pub fn default_symbol_regex() -> Node {
    let mut set = ByteSet::full();
    for b in [b'/', b'.', b'?'] {
        let mut one = ByteSet::single(b);
        one.negate();
        set.intersect(&one);
    }
    Node::Repeat { node: Box::new(Node::Class(set)), min: 1, max: None, greedy: true }
}

/// Rails' default for `*glob`: `.+?` (lazy, so an optional `(.:format)` after it still matches),
/// or Journey's own greedy `.+` where the mapper adds no format (mounted applications).
pub fn default_glob_regex(greedy: bool) -> Node {
    let mut set = ByteSet::full();
    let mut nl = ByteSet::single(b'\n');
    nl.negate();
    set.intersect(&nl);
    Node::Repeat { node: Box::new(Node::Class(set)), min: 1, max: None, greedy }
}

/// `next_slot` numbers parameters by occurrence, in [`param_names`] order.
fn lower(nodes: &[SpecNode], next_slot: &mut usize, req: &mut dyn FnMut(&str) -> Option<Node>, greedy_glob: bool, out: &mut Vec<Node>) {
    for n in nodes {
        match n {
            SpecNode::Slash => out.push(Node::literal(b"/")),
            SpecNode::Dot => out.push(Node::literal(b".")),
            SpecNode::Literal(text) => out.push(Node::literal(text.as_bytes())),
            SpecNode::Symbol(name) | SpecNode::Star(name) => {
                let slot = *next_slot;
                *next_slot += 1;
                let inner = req(name).unwrap_or_else(|| if matches!(n, SpecNode::Star(_)) { default_glob_regex(greedy_glob) } else { default_symbol_regex() });
                out.push(Node::Capture { slot, node: Box::new(inner) });
            }
            SpecNode::Group(inner) => {
                let mut seq = Vec::new();
                lower(inner, next_slot, req, greedy_glob, &mut seq);
                out.push(Node::Repeat { node: Box::new(Node::Concat(seq)), min: 0, max: Some(1), greedy: true });
            }
            SpecNode::Or(alts) => {
                let alts = alts
                    .iter()
                    .map(|a| {
                        let mut seq = Vec::new();
                        lower(std::slice::from_ref(a), next_slot, req, greedy_glob, &mut seq);
                        Node::Concat(seq)
                    })
                    .collect();
                out.push(Node::Alt(alts));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gitlab_shapes() {
        let nodes = parse_spec("/*namespace_id/:project_id/-/issues(.:format)").unwrap();
        assert_eq!(
            nodes,
            vec![
                SpecNode::Slash,
                SpecNode::Star("namespace_id".into()),
                SpecNode::Slash,
                SpecNode::Symbol("project_id".into()),
                SpecNode::Slash,
                SpecNode::Literal("-".into()),
                SpecNode::Slash,
                SpecNode::Literal("issues".into()),
                SpecNode::Group(vec![SpecNode::Dot, SpecNode::Symbol("format".into())]),
            ]
        );
        assert_eq!(param_names(&nodes), ["namespace_id", "project_id", "format"]);
        let nested = parse_spec("/a(/:b(/:c))").unwrap();
        assert_eq!(param_names(&nested), ["b", "c"]);
        assert!(
            matches!(&parse_spec("/x/\\:y").unwrap()[..], [SpecNode::Slash, SpecNode::Literal(l), SpecNode::Slash, SpecNode::Literal(m)] if l == "x" && m == ":y")
        );
    }

    #[test]
    fn reports_bad_specs_with_position() {
        let e = parse_spec("/a(/:b").unwrap_err();
        assert_eq!((e.position, e.reason.as_str()), (2, "unbalanced '(' without ')'"));
        let e = parse_spec("/a/:b)").unwrap_err();
        assert_eq!((e.position, e.reason.as_str()), (5, "unbalanced ')' without '('"));
        // Rails accepts a repeated name (the last value wins): one slot per occurrence.
        assert_eq!(param_names(&parse_spec("/:id/x/:id").unwrap()), ["id", "id"]);
        assert!(parse_spec("").is_err());
    }
}
