//! A parser for the Onigmo (Ruby) regex syntax that Rails route requirements are written in.
//!
//! It accepts what `Regexp#source` gives for GitLab's `Gitlab::PathRegex` and ordinary route
//! constraints: groups of every kind, inline options (`(?-mix:...)`), look-around, bounded
//! repetition, lazy and possessive quantifiers, POSIX bracket classes, `\h`, `\A`/`\z`/`\Z`.
//! What it cannot represent exactly (back-references, subexpression calls, Unicode properties,
//! non-ASCII characters inside classes) is refused with the byte position and the reason, so a
//! route is never matched by an approximation of its requirement by accident.

use super::ast::{Assertion, ByteSet, Node};

/// A requirement that could not be parsed or cannot be matched exactly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {position}: {reason}")]
pub struct RegexError {
    /// The byte offset in the regex source.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

/// Ruby's `Regexp#options` bits.
pub const OPT_IGNORECASE: u32 = 1;
pub const OPT_EXTENDED: u32 = 2;
pub const OPT_MULTILINE: u32 = 4;

#[derive(Clone, Copy)]
struct Flags {
    icase: bool,
    extended: bool,
    dotall: bool,
}

/// Parses `source` with the given `Regexp#options` bits; a construct no DFA can express (see
/// [`Inexpressible`]) is an error.
pub fn parse(source: &str, options: u32) -> Result<Node, RegexError> {
    parse_as(source, options, false).map(|(node, _)| node)
}

/// An Onigmo construct that neither the DFA nor the exact matcher can run: back-references and
/// subexpression calls, `\p{...}`, `\K`, `\R`, `\X`, `\G`, control escapes, the absence
/// operator `(?~...)`, conditionals `(?(1)...)`, non-ASCII characters in classes or escapes —
/// and named groups, which renumber Journey's parameters (with a named group in a route's
/// regexp Ruby captures only named groups, so `Path::Pattern::MatchData` reads other slots).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inexpressible {
    /// Byte position in the requirement's source.
    pub position: usize,
    /// What it is, e.g. `back-reference \1`.
    pub construct: String,
}

/// Parses `source` like [`parse`], but widens what no DFA can express instead of refusing it:
/// each such construct becomes "any bytes" (a superset wherever it stands, since look-around
/// is widened to true anyway) and is listed, so that the caller has Ruby's own `Regexp`
/// confirm every candidate of the route. Named groups are listed but parsed exactly. (The
/// build uses `parse_as_allowed`; the unit tests this.)
#[cfg(test)]
pub fn parse_widening(source: &str, options: u32) -> Result<(Node, Vec<Inexpressible>), RegexError> {
    parse_as(source, options, true)
}

/// [`parse_widening`] when `widen`, else [`parse`] (nothing listed).
pub fn parse_as_allowed(source: &str, options: u32, widen: bool) -> Result<(Node, Vec<Inexpressible>), RegexError> {
    parse_as(source, options, widen)
}

fn parse_as(source: &str, options: u32, widen: bool) -> Result<(Node, Vec<Inexpressible>), RegexError> {
    if options & !(OPT_IGNORECASE | OPT_EXTENDED | OPT_MULTILINE) != 0 {
        return Err(RegexError { position: 0, reason: format!("unknown Regexp options bits {options:#x} (only i=1, x=2, m=4 exist)") });
    }
    let flags = Flags { icase: options & OPT_IGNORECASE != 0, extended: options & OPT_EXTENDED != 0, dotall: options & OPT_MULTILINE != 0 };
    let mut p = Parser { src: source.as_bytes(), pos: 0, depth: 0, groups: 0, widen, found: Vec::new(), widened_class: false };
    let node = p.parse_alternation(flags)?;
    if p.pos < p.src.len() {
        return Err(p.err("unmatched ')'"));
    }
    Ok((node, p.found))
}

/// Any bytes, any number of them: what an inexpressible construct is widened to.
fn any_bytes() -> Node {
    Node::Repeat { node: Box::new(Node::Class(ByteSet::full())), min: 0, max: None, greedy: true }
}

/// Nesting deeper than this is refused rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 200;
/// Repetition bounds above this are refused (Onigmo's own limit is 100,000).
const MAX_REPEAT: u32 = 100_000;

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    depth: usize,
    /// Capturing groups opened so far: Onigmo reads `\NN` as a back-reference only up to
    /// this number (or up to 9), and as an octal escape beyond it.
    groups: usize,
    /// Widen inexpressible constructs (listed in `found`) instead of refusing them.
    widen: bool,
    found: Vec<Inexpressible>,
    /// Set when a widened construct stood inside the class (or escape) being parsed: the
    /// whole class then becomes [`any_bytes`].
    widened_class: bool,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: impl Into<String>) -> RegexError {
        RegexError { position: self.pos, reason: reason.into() }
    }

    /// An inexpressible construct at `position`, its syntax already consumed: listed and
    /// widened when widening, else the error `reason`.
    fn inexpressible(&mut self, position: usize, construct: impl Into<String>, reason: impl Into<String>) -> Result<Node, RegexError> {
        if !self.widen {
            return Err(RegexError { position, reason: reason.into() });
        }
        self.found.push(Inexpressible { position, construct: construct.into() });
        Ok(any_bytes())
    }

    /// A non-ASCII character (first byte `first`, at the cursor) inside a class: consumed,
    /// and the whole class widened (Onigmo matches it as one multi-byte character).
    fn non_ascii_in_class(&mut self, first: u8) -> Result<(), RegexError> {
        let at = self.pos;
        self.pos = (at + utf8_len(first)).min(self.src.len());
        self.widened_class = true;
        let text = String::from_utf8_lossy(&self.src[at..self.pos]).into_owned();
        let reason = "non-ASCII characters in a character class are not supported (paths are matched as bytes)";
        self.inexpressible(at, format!("non-ASCII character {text:?} in a class"), reason).map(drop)
    }

    /// Consumes a `{...}`, `<...>` or `'...'` argument (`\p{Alpha}`, `\k<name>`) if one follows.
    fn skip_argument(&mut self) {
        let close = match self.peek() {
            Some(b'{') => b'}',
            Some(b'<') => b'>',
            Some(b'\'') => b'\'',
            _ => return,
        };
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == close {
                return;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_extended(&mut self, flags: Flags) {
        if !flags.extended {
            return;
        }
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') => self.pos += 1,
                Some(b'#') => {
                    while let Some(b) = self.peek() {
                        self.pos += 1;
                        if b == b'\n' {
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn parse_alternation(&mut self, flags: Flags) -> Result<Node, RegexError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("regex nested too deeply"));
        }
        let mut flags = flags;
        let mut alts = vec![self.parse_concat(&mut flags)?];
        while self.eat(b'|') {
            alts.push(self.parse_concat(&mut flags)?);
        }
        self.depth -= 1;
        Ok(if alts.len() == 1 { alts.pop().unwrap() } else { Node::Alt(alts) })
    }

    /// Parses a sequence up to `|`, `)` or the end. Inline option changes such as `(?i)`
    /// update `flags` for the rest of the enclosing group, across later alternatives too.
    fn parse_concat(&mut self, flags: &mut Flags) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        loop {
            self.skip_extended(*flags);
            match self.peek() {
                None | Some(b'|') | Some(b')') => break,
                _ => {}
            }
            let start = self.pos;
            let atom = match self.parse_atom(flags)? {
                Some(a) => a,
                None => continue, // an inline option change or a comment
            };
            let atom = self.parse_quantifiers(atom, start, *flags)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap(),
            _ => Node::Concat(items),
        })
    }

    fn parse_quantifiers(&mut self, mut atom: Node, start: usize, flags: Flags) -> Result<Node, RegexError> {
        loop {
            self.skip_extended(flags);
            let (min, max, interval) = match self.peek() {
                Some(b'*') => (0, None, false),
                Some(b'+') => (1, None, false),
                Some(b'?') => (0, Some(1), false),
                Some(b'{') => match self.try_interval()? {
                    Some((min, max)) => (min, max, true),
                    None => return Ok(atom),
                },
                _ => return Ok(atom),
            };
            if !interval {
                self.pos += 1;
            }
            if matches!(atom, Node::Assert(_) | Node::Look { .. }) {
                return Err(RegexError { position: start, reason: "quantifier on a zero-width assertion".into() });
            }
            let mut greedy = true;
            let mut possessive = false;
            if self.eat(b'?') {
                greedy = false;
            } else if !interval && self.peek() == Some(b'+') {
                // Ruby syntax: `*+`, `++`, `?+` are possessive; `{n,m}+` is a nested repeat.
                self.pos += 1;
                possessive = true;
            }
            atom = Node::Repeat { node: Box::new(atom), min, max, greedy };
            if possessive {
                atom = Node::Atomic(Box::new(atom));
            }
        }
    }

    /// `{n}`, `{n,}`, `{,m}`, `{n,m}`; anything else after `{` is a literal brace, as in Ruby.
    fn try_interval(&mut self) -> Result<Option<(u32, Option<u32>)>, RegexError> {
        let save = self.pos;
        self.pos += 1;
        let lo = self.number();
        let (min, max) = if self.eat(b',') {
            let hi = self.number();
            if lo.is_none() && hi.is_none() {
                self.pos = save;
                return Ok(None);
            }
            (lo.unwrap_or(0), hi)
        } else {
            match lo {
                Some(n) => (n, Some(n)),
                None => {
                    self.pos = save;
                    return Ok(None);
                }
            }
        };
        if !self.eat(b'}') {
            self.pos = save;
            return Ok(None);
        }
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(RegexError { position: save, reason: format!("repetition bound over {MAX_REPEAT}") });
        }
        if let Some(m) = max {
            if m < min {
                return Err(RegexError { position: save, reason: "upper repetition bound below lower bound".into() });
            }
        }
        Ok(Some((min, max)))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        std::str::from_utf8(&self.src[start..self.pos]).ok()?.parse().ok().or(Some(u32::MAX))
    }

    fn literal_byte(&self, b: u8, flags: Flags) -> Node {
        let mut set = ByteSet::single(b);
        if flags.icase {
            set.fold_ascii_case();
        }
        Node::Class(set)
    }

    fn parse_atom(&mut self, flags: &mut Flags) -> Result<Option<Node>, RegexError> {
        let b = self.peek().unwrap();
        let start = self.pos;
        self.pos += 1;
        Ok(Some(match b {
            b'(' => return self.parse_group(flags, start),
            b'[' => {
                self.widened_class = false;
                let set = self.parse_class(*flags)?;
                if std::mem::take(&mut self.widened_class) {
                    any_bytes()
                } else {
                    Node::Class(set)
                }
            }
            b'.' => {
                let mut set = ByteSet::full();
                if !flags.dotall {
                    set = without(set, b'\n');
                }
                Node::Class(set)
            }
            b'^' => Node::Assert(Assertion::StartLine),
            b'$' => Node::Assert(Assertion::EndLine),
            b'\\' => self.parse_escape(*flags)?,
            b'*' | b'+' | b'?' => return Err(RegexError { position: start, reason: "target of repeat operator is not specified".into() }),
            b'{' => self.literal_byte(b, *flags),
            _ if b >= 0x80 => {
                // A multi-byte character outside a class matches its bytes in order.
                let len = utf8_len(b);
                let end = (start + len).min(self.src.len());
                self.pos = end;
                Node::literal(&self.src[start..end])
            }
            _ => self.literal_byte(b, *flags),
        }))
    }

    fn parse_group(&mut self, flags: &mut Flags, start: usize) -> Result<Option<Node>, RegexError> {
        let inner_flags = *flags;
        let node = if self.eat(b'?') {
            match self.peek() {
                Some(b':') => {
                    self.pos += 1;
                    self.parse_alternation(inner_flags)?
                }
                Some(b'=') | Some(b'!') => {
                    let negate = self.peek() == Some(b'!');
                    self.pos += 1;
                    let node = self.parse_alternation(inner_flags)?;
                    Node::Look { behind: false, negate, node: Box::new(node) }
                }
                Some(b'>') => {
                    self.pos += 1;
                    Node::Atomic(Box::new(self.parse_alternation(inner_flags)?))
                }
                Some(b'#') => {
                    while let Some(b) = self.peek() {
                        self.pos += 1;
                        if b == b')' {
                            return Ok(None);
                        }
                    }
                    return Err(RegexError { position: start, reason: "end pattern in group (unterminated comment)".into() });
                }
                Some(b'<') if matches!(self.src.get(self.pos + 1), Some(b'=') | Some(b'!')) => {
                    let negate = self.src[self.pos + 1] == b'!';
                    self.pos += 2;
                    let look_start = self.pos;
                    let node = self.parse_alternation(inner_flags)?;
                    check_lookbehind(&node, look_start)?;
                    Node::Look { behind: true, negate, node: Box::new(node) }
                }
                Some(b'<') | Some(b'\'') => {
                    // A named group: a plain group for matching purposes.
                    let close = if self.peek() == Some(b'<') { b'>' } else { b'\'' };
                    self.pos += 1;
                    let name_start = self.pos;
                    while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        self.pos += 1;
                    }
                    if self.pos == name_start || !self.eat(close) {
                        return Err(self.err("invalid group name"));
                    }
                    self.groups += 1;
                    let name = String::from_utf8_lossy(&self.src[name_start..self.pos - 1]).into_owned();
                    // Parsed exactly, but listed: a named group renumbers the route's captures.
                    self.inexpressible(
                        start,
                        format!("named group (?<{name}>...)"),
                        "named groups renumber Journey's parameters (only Ruby's Regexp reads them as Rails does)",
                    )?;
                    self.parse_alternation(inner_flags)?
                }
                Some(b'~') => {
                    self.pos += 1;
                    self.parse_alternation(inner_flags)?;
                    self.inexpressible(start, "absence operator (?~...)", "absence operator (?~...) is not supported")?
                }
                Some(b'(') => {
                    // `(?(1)yes|no)`, `(?(<name>)yes|no)`: the condition, then the branches.
                    while let Some(b) = self.peek() {
                        self.pos += 1;
                        if b == b')' {
                            break;
                        }
                    }
                    self.parse_alternation(inner_flags)?;
                    self.inexpressible(start, "conditional group (?(cond)...)", "conditional groups (?(cond)...) are not supported")?
                }
                _ => {
                    // Option letters: (?imx-imx) or (?imx-imx:...)
                    let mut on = true;
                    let mut new = *flags;
                    loop {
                        match self.peek() {
                            Some(b'i') => new.icase = on,
                            Some(b'm') => new.dotall = on,
                            Some(b'x') => new.extended = on,
                            Some(b'-') if on => on = false,
                            Some(b':') => {
                                self.pos += 1;
                                let node = self.parse_alternation(new)?;
                                if !self.eat(b')') {
                                    return Err(RegexError { position: start, reason: "end pattern with unmatched parenthesis".into() });
                                }
                                return Ok(Some(node));
                            }
                            Some(b')') => {
                                self.pos += 1;
                                *flags = new;
                                return Ok(None);
                            }
                            _ => return Err(self.err("undefined group option")),
                        }
                        self.pos += 1;
                    }
                }
            }
        } else {
            self.groups += 1;
            self.parse_alternation(inner_flags)?
        };
        if !self.eat(b')') {
            return Err(RegexError { position: start, reason: "end pattern with unmatched parenthesis".into() });
        }
        Ok(Some(node))
    }

    fn parse_escape(&mut self, flags: Flags) -> Result<Node, RegexError> {
        let start = self.pos - 1;
        let Some(c) = self.peek() else {
            return Err(RegexError { position: start, reason: "too short escape sequence".into() });
        };
        self.pos += 1;
        if let Some(set) = class_escape(c) {
            return Ok(Node::Class(set));
        }
        Ok(match c {
            b'A' => Node::Assert(Assertion::StartText),
            b'z' => Node::Assert(Assertion::EndText),
            b'Z' => Node::Assert(Assertion::EndTextOptionalNewline),
            b'b' => Node::Assert(Assertion::WordBoundary),
            b'B' => Node::Assert(Assertion::NotWordBoundary),
            b'G' => return self.inexpressible(start, "\\G", "\\G is not supported in route requirements"),
            b'1'..=b'9' => {
                // Onigmo (regparse.c): a decimal `\N` is a back-reference when N <= 9 or N
                // names a group opened before; otherwise `\8`/`\9` start a literal digit and
                // any other digit an octal escape (`\101` is "A").
                let digits = self.src[self.pos - 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                let number: usize = std::str::from_utf8(&self.src[self.pos - 1..self.pos - 1 + digits]).ok().and_then(|d| d.parse().ok()).unwrap_or(usize::MAX);
                if number <= 9 || number <= self.groups {
                    let len = if number <= 9 { 1 } else { digits };
                    self.pos += len - 1;
                    let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                    return self.inexpressible(start, format!("back-reference {text}"), "back-references are not regular and are not supported");
                }
                self.pos -= 1;
                if c >= b'8' {
                    self.pos += 1;
                    return Ok(self.literal_byte(c, flags));
                }
                let b = self.escaped_byte(start)?;
                self.literal_byte(b, flags)
            }
            b'k' | b'g' => {
                self.skip_argument();
                let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                let what = if c == b'k' { "named back-reference" } else { "subexpression call" };
                return self.inexpressible(start, format!("{what} {text}"), format!("\\{} (back-reference or subexpression call) is not supported", c as char));
            }
            b'p' | b'P' => {
                self.skip_argument();
                let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                return self.inexpressible(start, format!("Unicode property {text}"), "Unicode properties (\\p{...}) are not supported");
            }
            b'K' | b'R' | b'X' => return self.inexpressible(start, format!("\\{}", c as char), format!("\\{} is not supported", c as char)),
            b'c' | b'C' | b'M' => {
                // `\cX`, `\C-X`, `\M-X`: a control or meta character.
                if c != b'c' {
                    self.eat(b'-');
                }
                self.eat(b'\\');
                if self.peek().is_some() {
                    self.pos += 1;
                }
                let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                return self.inexpressible(start, format!("control escape {text}"), format!("\\{} is not supported", c as char));
            }
            _ => {
                self.pos -= 1;
                let b = self.escaped_byte(start)?;
                if std::mem::take(&mut self.widened_class) {
                    return Ok(any_bytes());
                }
                self.literal_byte(b, flags)
            }
        })
    }

    /// The byte denoted by a character escape (`\n`, `\x2F`, `\057`, `\/`...), cursor after the backslash.
    fn escaped_byte(&mut self, start: usize) -> Result<u8, RegexError> {
        let c = self.peek().ok_or_else(|| RegexError { position: start, reason: "too short escape sequence".into() })?;
        self.pos += 1;
        Ok(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'f' => 0x0c,
            b'v' => 0x0b,
            b'a' => 0x07,
            b'e' => 0x1b,
            b'0'..=b'7' => {
                let mut v: u32 = (c - b'0') as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                u8::try_from(v).map_err(|_| RegexError { position: start, reason: "octal escape above \\377".into() })?
            }
            b'x' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 2 {
                    match self.peek().and_then(|d| (d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            self.pos += 1;
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    return Err(RegexError { position: start, reason: "invalid hex escape".into() });
                }
                v as u8
            }
            b'u' if self.peek() == Some(b'{') => {
                self.skip_argument();
                self.widened_class = true;
                let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                self.inexpressible(start, format!("Unicode escape {text}"), "\\u{...} escapes are not supported")?;
                0
            }
            b'u' => {
                let digits = self.src.get(self.pos..self.pos + 4).ok_or_else(|| RegexError { position: start, reason: "invalid Unicode escape".into() })?;
                let v = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| u32::from_str_radix(s, 16).ok())
                    .ok_or_else(|| RegexError { position: start, reason: "invalid Unicode escape".into() })?;
                self.pos += 4;
                if v >= 0x80 {
                    self.widened_class = true;
                    let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                    self.inexpressible(start, format!("non-ASCII escape {text}"), "non-ASCII \\u escapes are not supported (paths are matched as bytes)")?;
                    return Ok(0);
                }
                v as u8
            }
            c if c >= 0x80 => {
                self.pos = (start + 1 + utf8_len(c)).min(self.src.len());
                self.widened_class = true;
                let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                self.inexpressible(start, format!("escaped non-ASCII character {text}"), "escaped non-ASCII character")?;
                0
            }
            c if c.is_ascii_alphanumeric() => return Err(RegexError { position: start, reason: format!("unknown escape \\{}", c as char) }),
            c => c,
        })
    }

    fn parse_class(&mut self, flags: Flags) -> Result<ByteSet, RegexError> {
        let open = self.pos - 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("class nested too deeply"));
        }
        let negated = self.eat(b'^');
        let mut set = ByteSet::empty();
        let mut intersections: Vec<ByteSet> = Vec::new();
        let mut first = true;
        loop {
            let Some(b) = self.peek() else {
                return Err(RegexError { position: open, reason: "premature end of char-class".into() });
            };
            if b == b']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            if b == b'&' && self.src.get(self.pos + 1) == Some(&b'&') {
                self.pos += 2;
                intersections.push(std::mem::take(&mut set));
                continue;
            }
            // A single item: a nested class, a POSIX class, an escape class, or a byte (maybe a range start).
            let lo = match b {
                b'[' if self.src.get(self.pos + 1) == Some(&b':') => {
                    set.union(&self.parse_posix()?);
                    continue;
                }
                b'[' => {
                    self.pos += 1;
                    set.union(&self.parse_class(flags)?);
                    continue;
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("premature end of char-class"))?;
                    if let Some(cls) = class_escape(c) {
                        self.pos += 1;
                        set.union(&cls);
                        continue;
                    }
                    if c == b'b' {
                        self.pos += 1;
                        0x08
                    } else {
                        self.escaped_byte(self.pos - 1)?
                    }
                }
                c if c >= 0x80 => {
                    self.non_ascii_in_class(c)?;
                    continue;
                }
                c => {
                    self.pos += 1;
                    c
                }
            };
            // A range?
            if self.peek() == Some(b'-') && self.src.get(self.pos + 1).is_some_and(|&n| n != b']') {
                let save = self.pos;
                self.pos += 1;
                let hi = match self.peek().unwrap() {
                    b'\\' => {
                        self.pos += 1;
                        let c = self.peek().ok_or_else(|| self.err("premature end of char-class"))?;
                        if class_escape(c).is_some() {
                            return Err(self.err("char-class value at end of range"));
                        }
                        self.escaped_byte(self.pos - 1)?
                    }
                    b'[' => {
                        // `a-[` : the '-' is literal, as in Onigmo.
                        self.pos = save;
                        set.insert(lo);
                        continue;
                    }
                    c if c >= 0x80 => {
                        self.non_ascii_in_class(c)?;
                        continue;
                    }
                    c => {
                        self.pos += 1;
                        c
                    }
                };
                if self.widened_class {
                    continue;
                }
                if hi < lo {
                    return Err(RegexError { position: save, reason: "empty range in char class".into() });
                }
                set.insert_range(lo, hi);
            } else {
                set.insert(lo);
            }
        }
        for other in intersections.into_iter().rev() {
            set.intersect(&other);
        }
        if flags.icase {
            set.fold_ascii_case();
        }
        if negated {
            set.negate();
        }
        self.depth -= 1;
        Ok(set)
    }

    fn parse_posix(&mut self) -> Result<ByteSet, RegexError> {
        let start = self.pos;
        self.pos += 2; // "[:"
        let negate = self.eat(b'^');
        let name_start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_lowercase()) {
            self.pos += 1;
        }
        let name = std::str::from_utf8(&self.src[name_start..self.pos]).unwrap_or("");
        if !(self.eat(b':') && self.eat(b']')) {
            return Err(RegexError { position: start, reason: "invalid POSIX bracket type".into() });
        }
        let mut set = ByteSet::empty();
        let mut add = |lo: u8, hi: u8| set.insert_range(lo, hi);
        match name {
            "alnum" => {
                add(b'0', b'9');
                add(b'a', b'z');
                add(b'A', b'Z')
            }
            "alpha" => {
                add(b'a', b'z');
                add(b'A', b'Z')
            }
            "ascii" => add(0, 0x7f),
            "blank" => {
                add(b' ', b' ');
                add(b'\t', b'\t')
            }
            "cntrl" => {
                add(0, 0x1f);
                add(0x7f, 0x7f)
            }
            "digit" => add(b'0', b'9'),
            "graph" => add(0x21, 0x7e),
            "lower" => add(b'a', b'z'),
            "print" => add(0x20, 0x7e),
            "punct" => {
                add(0x21, 0x2f);
                add(0x3a, 0x40);
                add(0x5b, 0x60);
                add(0x7b, 0x7e)
            }
            "space" => {
                add(b'\t', b'\r');
                add(b' ', b' ')
            }
            "upper" => add(b'A', b'Z'),
            "xdigit" => {
                add(b'0', b'9');
                add(b'a', b'f');
                add(b'A', b'F')
            }
            "word" => {
                add(b'0', b'9');
                add(b'a', b'z');
                add(b'A', b'Z');
                add(b'_', b'_')
            }
            _ => return Err(RegexError { position: start, reason: format!("unknown POSIX bracket [:{name}:]") }),
        }
        if negate {
            set.negate();
        }
        Ok(set)
    }
}

fn without(mut set: ByteSet, b: u8) -> ByteSet {
    let mut one = ByteSet::single(b);
    one.negate();
    set.intersect(&one);
    set
}

/// `\d \D \w \W \s \S \h \H`, ASCII as on a binary string.
fn class_escape(c: u8) -> Option<ByteSet> {
    let mut set = ByteSet::empty();
    match c.to_ascii_lowercase() {
        b'd' => set.insert_range(b'0', b'9'),
        b'w' => {
            set.insert_range(b'0', b'9');
            set.insert_range(b'a', b'z');
            set.insert_range(b'A', b'Z');
            set.insert(b'_');
        }
        b's' => {
            set.insert_range(b'\t', b'\r');
            set.insert(b' ');
        }
        b'h' => {
            set.insert_range(b'0', b'9');
            set.insert_range(b'a', b'f');
            set.insert_range(b'A', b'F');
        }
        _ => return None,
    }
    if c.is_ascii_uppercase() {
        set.negate();
    }
    Some(set)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// Onigmo allows look-behind only when each top-level alternative has a fixed length.
fn check_lookbehind(node: &Node, position: usize) -> Result<(), RegexError> {
    let ok = match node {
        Node::Alt(alts) => alts.iter().all(|a| a.fixed_len().is_some()),
        other => other.fixed_len().is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(RegexError { position, reason: "invalid pattern in look-behind (alternatives must have fixed lengths)".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gitlab_path_regex_shapes() {
        let src = r"(?!(\-|admin|api)/)(?:[a-zA-Z0-9_\.][a-zA-Z0-9_\-\.]{0,254}[a-zA-Z0-9_\-]|[a-zA-Z0-9_])(?<!\.git|\.atom)";
        let node = parse(src, 0).unwrap();
        let Node::Concat(parts) = node else { panic!("expected a sequence") };
        assert!(matches!(parts[0], Node::Look { behind: false, negate: true, .. }));
        assert!(matches!(parts[2], Node::Look { behind: true, negate: true, .. }));
    }

    #[test]
    fn reports_position_and_reason() {
        let e = parse("ab(c", 0).unwrap_err();
        assert_eq!(e.position, 2);
        assert!(e.reason.contains("unmatched parenthesis"), "{e}");
        let e = parse(r"(a)\1", 0).unwrap_err();
        assert_eq!(e.position, 3);
        assert!(e.reason.contains("back-references"));
        assert!(parse("[z-a]", 0).unwrap_err().reason.contains("empty range"));
        assert!(parse("a)", 0).unwrap_err().reason.contains("unmatched ')'"));
        assert!(parse("(?<!a+)b", 0).unwrap_err().reason.contains("look-behind"));
        assert!(parse("*a", 0).unwrap_err().reason.contains("target of repeat"));
    }

    /// Onigmo's reading of `\N`: a back-reference up to 9 or up to the groups opened so far,
    /// else an octal escape (`\101` is "A"), or a literal `8`/`9`.
    #[test]
    fn decimal_escapes_read_as_onigmo_reads_them() {
        assert_eq!(parse(r"\101", 0).unwrap(), parse("A", 0).unwrap());
        assert_eq!(parse(r"\18", 0).unwrap(), parse("\x018", 0).unwrap());
        assert_eq!(parse(r"\81", 0).unwrap(), parse("81", 0).unwrap());
        for backref in [r"\1", r"(a)\1", r"\9", r"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\10"] {
            assert!(parse(backref, 0).unwrap_err().reason.contains("back-references"), "{backref}");
        }
    }

    /// What no DFA can express is refused by `parse` and, by `parse_widening`, listed (with
    /// its position) and widened to "any bytes", the rest of the pattern parsed as usual.
    #[test]
    fn inexpressible_constructs_are_refused_or_widened_and_listed() {
        let any = Node::Repeat { node: Box::new(Node::Class(ByteSet::full())), min: 0, max: None, greedy: true };
        let cases: [(&str, &str, usize); 14] = [
            (r"(a)\1x", "back-reference \\1", 3),
            (r"(?<c>a)\k<c>", "named back-reference \\k<c>", 7),
            (r"(?<d>\d)\g<d>", "subexpression call \\g<d>", 8),
            (r"\p{Alpha}+", "Unicode property \\p{Alpha}", 0),
            (r"\P{^Digit}", "Unicode property \\P{^Digit}", 0),
            (r"ab\Kc", "\\K", 2),
            (r"x\Ry", "\\R", 1),
            (r"\X", "\\X", 0),
            (r"\Ga", "\\G", 0),
            (r"a\cAb", "control escape \\cA", 1),
            ("(?~ab)", "absence operator (?~...)", 0),
            ("(a)?(?(1)b|c)", "conditional group (?(cond)...)", 4),
            ("x[é]", "non-ASCII character \"é\" in a class", 2),
            (r"x\u00e9", "non-ASCII escape \\u00e9", 1),
        ];
        for (source, construct, position) in cases {
            assert!(parse(source, 0).is_err(), "{source} must be refused without a Ruby host");
            let (node, found) = parse_widening(source, 0).unwrap_or_else(|e| panic!("{source}: {e}"));
            // (A named group the construct refers to is listed before it.)
            assert_eq!(found.last(), Some(&Inexpressible { position, construct: construct.into() }), "{source}");
            let mut widened = false;
            node.walk(&mut |n| widened |= *n == any);
            assert!(widened, "{source}: {node:?}");
        }
        // A named group is listed (it renumbers Journey's captures) but parsed exactly.
        let (node, found) = parse_widening("(?<n>ab)+", 0).unwrap();
        assert_eq!(found[0].construct, "named group (?<n>...)");
        assert_eq!(node, parse("(ab)+", 0).unwrap());
        // Syntax errors stay errors.
        assert!(parse_widening("(?<n>ab", 0).is_err());
        assert!(parse_widening("[a", 0).is_err());
    }

    #[test]
    fn case_folding_and_posix() {
        let Node::Class(set) = parse("a", OPT_IGNORECASE).unwrap() else { panic!() };
        assert!(set.contains(b'A') && set.contains(b'a'));
        let Node::Class(set) = parse("[^[:digit:]x]", 0).unwrap() else { panic!() };
        assert!(!set.contains(b'5') && !set.contains(b'x') && set.contains(b'y'));
        let Node::Class(set) = parse(r"\h", 0).unwrap() else { panic!() };
        assert!(set.contains(b'F') && !set.contains(b'g'));
    }

    #[test]
    fn braces_that_are_not_intervals_are_literal() {
        assert!(matches!(parse("a{x}", 0).unwrap(), Node::Concat(v) if v.len() == 4));
        assert!(matches!(parse("a{,3}", 0).unwrap(), Node::Repeat { min: 0, max: Some(3), .. }));
    }
}
