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
    /// The byte offset in the spec.
    pub position: usize,
    /// What is wrong there.
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
                // Sized for the run of plain literal characters ahead (most literals are one),
                // and kept as the String when it is UTF-8: no growth, no second copy.
                let run = self.src[self.pos..].iter().take_while(|&&c| is_literal_char(c)).count();
                let mut text = Vec::with_capacity(run.max(1));
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
                SpecNode::Literal(String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
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
/// `param_names` order. (The build uses [`route_regex_with`]; the unit tests this.)
#[cfg(test)]
pub fn route_regex(nodes: &[SpecNode], anchoring: Anchoring, requirement: &mut dyn FnMut(&str) -> Option<Node>) -> Node {
    route_regex_with(nodes, anchoring, Literals::Plain, requirement)
}

/// How a route's literal characters match the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Literals {
    /// Byte for byte, as Journey matches them.
    Plain,
    /// After the first `after` spec nodes (the path of the Rails mount a Grape API is reached
    /// through, which Journey matches), each literal character but `/` also percent-encoded
    /// (`u` or `%75`, `.` or `%2E`; a space also as `+`), as Mustermann compiles Grape's
    /// literals (`AST::Compiler#encoded`). Upper-case hex only: the classifier matches paths
    /// whose escapes are upper-cased.
    Encoded { after: usize },
}

/// [`route_regex`], with literals matched as `literals` says.
pub fn route_regex_with(nodes: &[SpecNode], anchoring: Anchoring, literals: Literals, requirement: &mut dyn FnMut(&str) -> Option<Node>) -> Node {
    let mut body = Vec::with_capacity(nodes.len());
    let greedy_glob = anchoring == Anchoring::Mounted;
    let plain = match literals {
        Literals::Plain => nodes.len(),
        Literals::Encoded { after } => after.min(nodes.len()),
    };
    let mut slot = 0;
    lower(&nodes[..plain], &mut slot, requirement, greedy_glob, false, &mut body);
    lower(&nodes[plain..], &mut slot, requirement, greedy_glob, true, &mut body);
    // Exactly as long as it will be: every route's regex is held until the build's automata are
    // made, and a doubling push here was ~5.5 MB of the template snapshot's build peak.
    let mut all = Vec::with_capacity(body.len() + 2);
    all.push(Node::Assert(Assertion::StartText));
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

/// The route's regexp in Ruby syntax, as `Path::Pattern::AnchoredRegexp` (or
/// `UnanchoredRegexp` for a mount) writes it: for a host that runs it with Ruby's own `Regexp`
/// where a requirement uses what no DFA can express. `requirement` gives a parameter's
/// requirement as `Regexp.union(requirement).to_s` writes it (see [`ruby_requirement`]).
pub fn ruby_source(nodes: &[SpecNode], anchoring: Anchoring, requirement: &dyn Fn(&str) -> Option<String>) -> String {
    fn visit(nodes: &[SpecNode], mounted: bool, req: &dyn Fn(&str) -> Option<String>, out: &mut String) {
        for n in nodes {
            match n {
                SpecNode::Slash => out.push('/'),
                SpecNode::Dot => out.push_str("\\."),
                SpecNode::Literal(text) => out.push_str(&ruby_escape(text)),
                SpecNode::Symbol(name) => match req(name) {
                    Some(r) => out.push_str(&format!("({r})")),
                    None => out.push_str("([^/.?]+)"),
                },
                SpecNode::Star(name) => match req(name) {
                    Some(r) => out.push_str(&format!("({r})")),
                    // Journey's own `.+` for a mount; the mapper's lazy `/.+?/` otherwise.
                    None if mounted => out.push_str("(.+)"),
                    None => out.push_str("((?-mix:.+?))"),
                },
                SpecNode::Group(inner) => {
                    out.push_str("(?:");
                    visit(inner, mounted, req, out);
                    out.push_str(")?");
                }
                SpecNode::Or(alts) => {
                    out.push_str("(?:");
                    for (i, a) in alts.iter().enumerate() {
                        if i > 0 {
                            out.push('|');
                        }
                        visit(std::slice::from_ref(a), mounted, req, out);
                    }
                    out.push(')');
                }
            }
        }
    }
    let mounted = anchoring == Anchoring::Mounted;
    let mut body = String::new();
    visit(nodes, mounted, requirement, &mut body);
    match anchoring {
        Anchoring::Mounted if body == "/" => "\\A/".to_string(),
        Anchoring::Mounted => format!("\\A{body}(?:\\b|\\Z|/)"),
        // The simulator's own `\z` ending never applies: a route with a requirement is not a simulator route.
        Anchoring::Regex | Anchoring::Simulator => format!("\\A{body}\\Z"),
    }
}

/// A requirement as Journey interpolates it (`Regexp.union(requirement).to_s`): a Regexp as
/// `(?flags-flags:source)`, a String escaped as `Regexp.escape` does.
pub fn ruby_requirement(requirement: &crate::routes::Requirement) -> String {
    match requirement {
        crate::routes::Requirement::Literal { literal } => ruby_escape(literal),
        crate::routes::Requirement::Regex { source, options } => {
            let (mut on, mut off) = (String::new(), String::new());
            for (bit, letter) in [(4, 'm'), (1, 'i'), (2, 'x')] {
                if options & bit != 0 {
                    on.push(letter);
                } else {
                    off.push(letter);
                }
            }
            if off.is_empty() {
                format!("(?{on}:{source})")
            } else {
                format!("(?{on}-{off}:{source})")
            }
        }
    }
}

/// `Regexp.escape`: metacharacters and whitespace escaped, everything else as it is.
fn ruby_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '.' | '*' | '?' | '+' | '^' | '$' | '|' | '(' | ')' | '[' | ']' | '{' | '}' | '\\' | '-' | '#' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c => out.push(c),
        }
    }
    out
}

/// One literal byte as Mustermann matches it (see [`Literals::Encoded`]): `/` and non-ASCII
/// bytes as themselves, any other byte also as `%XX`, a space also as `+`.
fn encoded_byte(b: u8) -> Node {
    if b == b'/' || b >= 0x80 {
        return Node::literal(&[b]);
    }
    let mut alts = vec![Node::literal(&[b]), Node::literal(format!("%{b:02X}").as_bytes())];
    if b == b' ' {
        alts.push(Node::literal(b"+"));
    }
    Node::Alt(alts)
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
/// `encoded`: literals also match percent-encoded ([`Literals::Encoded`]).
fn lower(nodes: &[SpecNode], next_slot: &mut usize, req: &mut dyn FnMut(&str) -> Option<Node>, greedy_glob: bool, encoded: bool, out: &mut Vec<Node>) {
    let literal = |bytes: &[u8]| {
        if encoded {
            Node::Concat(bytes.iter().map(|&b| encoded_byte(b)).collect())
        } else {
            Node::literal(bytes)
        }
    };
    for n in nodes {
        match n {
            SpecNode::Slash => out.push(Node::literal(b"/")),
            SpecNode::Dot => out.push(literal(b".")),
            SpecNode::Literal(text) => out.push(literal(text.as_bytes())),
            SpecNode::Symbol(name) | SpecNode::Star(name) => {
                let slot = *next_slot;
                *next_slot += 1;
                let inner = req(name).unwrap_or_else(|| if matches!(n, SpecNode::Star(_)) { default_glob_regex(greedy_glob) } else { default_symbol_regex() });
                out.push(Node::Capture { slot, node: Box::new(inner) });
            }
            SpecNode::Group(inner) => {
                // Each spec node lowers to one node: sized once, no doubling slack kept.
                let mut seq = Vec::with_capacity(inner.len());
                lower(inner, next_slot, req, greedy_glob, encoded, &mut seq);
                out.push(Node::Repeat { node: Box::new(Node::Concat(seq)), min: 0, max: Some(1), greedy: true });
            }
            SpecNode::Or(alts) => {
                let alts = alts
                    .iter()
                    .map(|a| {
                        let mut seq = Vec::with_capacity(1);
                        lower(std::slice::from_ref(a), next_slot, req, greedy_glob, encoded, &mut seq);
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
