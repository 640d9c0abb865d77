//! The oracle: Journey's routing decision, the slow way (`scanner.rb`, `parser.y`, `path/pattern.rb`,
//! `router.rb` re-read), with Oniguruma running Rails' regex strings.

use std::collections::BTreeMap;
use std::fmt;

use cells_learn::normalize::{normalize_path, unescape};
use cells_learn::{Classifier, Requirement, RouteDef};
use onig::{EncodedBytes, MatchParam, Regex, RegexOptions, Region, SearchOptions, Syntax};

/// A token of a Journey path spec (`scanner.rb`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Slash,
    LParen,
    RParen,
    Or,
    Dot,
    Symbol(String),
    Star(String),
    Literal(String),
}

pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `Journey::Scanner`: `/`, `(`, `)`, `|`, `.`, `:\w+`, `*\w+`,
/// `(?:[\w%\-~!$&'*+,;=@]|\\[:()])+` (backslashes dropped), else any one character.
pub(crate) fn scan(spec: &str) -> Vec<Tok> {
    let s = spec.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < s.len() {
        let c = s[i];
        let simple = match c {
            b'/' => Some(Tok::Slash),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'|' => Some(Tok::Or),
            b'.' => Some(Tok::Dot),
            _ => None,
        };
        if let Some(t) = simple {
            out.push(t);
            i += 1;
            continue;
        }
        if (c == b':' || c == b'*') && s.get(i + 1).is_some_and(|&n| is_word_byte(n)) {
            let start = i + 1;
            let mut j = start;
            while j < s.len() && is_word_byte(s[j]) {
                j += 1;
            }
            let name = spec[start..j].to_string();
            out.push(if c == b':' { Tok::Symbol(name) } else { Tok::Star(name) });
            i = j;
            continue;
        }
        let mut text = String::new();
        let mut j = i;
        loop {
            match s.get(j) {
                Some(&b) if is_word_byte(b) || b"%-~!$&'*+,;=@".contains(&b) => {
                    text.push(b as char);
                    j += 1;
                }
                Some(b'\\') if matches!(s.get(j + 1), Some(b':' | b'(' | b')')) => {
                    text.push(s[j + 1] as char);
                    j += 2;
                }
                _ => break,
            }
        }
        if text.is_empty() {
            let ch = spec[i..].chars().next().expect("in bounds");
            text.push(ch);
            j = i + ch.len_utf8();
        }
        out.push(Tok::Literal(text));
        i = j;
    }
    out
}

/// A node of the parsed spec (`parser.y`); a sequence is a `Vec<Spec>` (Journey's `Cat`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Spec {
    Slash,
    Dot,
    Literal(String),
    Symbol(String),
    Star(String),
    Group(Vec<Spec>),
    /// `expression OR expression` / `expression OR or`: each alternative is one expression.
    Or(Vec<Spec>),
}

pub(crate) struct SpecParser {
    pub(crate) toks: Vec<Tok>,
    pub(crate) pos: usize,
}

impl SpecParser {
    /// `expressions : expression expressions | expression | or`
    pub(crate) fn expressions(&mut self) -> Result<Vec<Spec>, String> {
        let mut seq = Vec::new();
        loop {
            let first = self.expression()?;
            if self.toks.get(self.pos) == Some(&Tok::Or) {
                seq.push(self.or(first)?);
                // Nothing may follow an alternation but the end of the enclosing group.
                return match self.toks.get(self.pos) {
                    None | Some(Tok::RParen) => Ok(seq),
                    Some(t) => Err(format!("unexpected {t:?} after an alternation")),
                };
            }
            seq.push(first);
            if matches!(self.toks.get(self.pos), None | Some(Tok::RParen)) {
                return Ok(seq);
            }
        }
    }

    /// `or : expression OR expression | expression OR or`, nested to the right as Journey does.
    pub(crate) fn or(&mut self, first: Spec) -> Result<Spec, String> {
        self.pos += 1; // OR
        let second = self.expression()?;
        if self.toks.get(self.pos) == Some(&Tok::Or) {
            let rest = self.or(second)?;
            Ok(Spec::Or(vec![first, rest]))
        } else {
            Ok(Spec::Or(vec![first, second]))
        }
    }

    /// `expression : terminal | group | star`
    pub(crate) fn expression(&mut self) -> Result<Spec, String> {
        let tok = self.toks.get(self.pos).cloned().ok_or("unexpected end of spec")?;
        self.pos += 1;
        Ok(match tok {
            Tok::Slash => Spec::Slash,
            Tok::Dot => Spec::Dot,
            Tok::Literal(t) => Spec::Literal(t),
            Tok::Symbol(n) => Spec::Symbol(n),
            Tok::Star(n) => Spec::Star(n),
            Tok::LParen => {
                let inner = self.expressions()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err("unbalanced '('".into());
                }
                self.pos += 1;
                Spec::Group(inner)
            }
            t => return Err(format!("unexpected {t:?}")),
        })
    }
}

pub(crate) fn parse_spec(spec: &str) -> Result<Vec<Spec>, String> {
    let mut p = SpecParser { toks: scan(spec), pos: 0 };
    let seq = p.expressions()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    Ok(seq)
}

/// Parameter names in Journey's order (`spec.find_all(&:symbol?)`: pre-order, left to right;
/// a glob's name is the symbol inside its `Star`).
pub(crate) fn spec_names(seq: &[Spec], out: &mut Vec<String>) {
    for n in seq {
        match n {
            Spec::Symbol(name) | Spec::Star(name) => out.push(name.clone()),
            Spec::Group(inner) | Spec::Or(inner) => spec_names(inner, out),
            _ => {}
        }
    }
}

/// Ruby's `Regexp.escape`.
pub(crate) fn ruby_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            ' ' => out.push_str("\\ "),
            '[' | ']' | '{' | '}' | '(' | ')' | '|' | '-' | '*' | '.' | '\\' | '?' | '+' | '^' | '$' | '#' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `Regexp.union(requirement).to_s`: `(?on-off:source)`, letters in Ruby's order m, i, x
/// (option bits 4, 1, 2); a literal string is escaped first.
pub(crate) fn requirement_to_s(req: &Requirement) -> String {
    match req {
        Requirement::Literal { literal } => format!("(?-mix:{})", ruby_escape(literal)),
        Requirement::Regex { source, options } => {
            let (mut on, mut off) = (String::new(), String::new());
            for (bit, letter) in [(4, 'm'), (1, 'i'), (2, 'x')] {
                if options & bit != 0 {
                    on.push(letter)
                } else {
                    off.push(letter)
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

/// `AnchoredRegexp#visit_*` for one sequence. `glob` is a glob's regex when it has no
/// requirement: the mapper's lazy `.+?` (which `route.requirements` leaves out), except for a
/// mounted app, drawn with `format: false`, which keeps Journey's own greedy `(.+)`.
pub(crate) fn visit(seq: &[Spec], reqs: &BTreeMap<String, Requirement>, glob: &str, out: &mut String) {
    for n in seq {
        match n {
            Spec::Slash => out.push('/'),
            Spec::Dot => out.push_str(&ruby_escape(".")),
            Spec::Literal(t) => out.push_str(&ruby_escape(t)),
            // visit_SYMBOL: "(#{Regexp.union(re)})", or the separator default.
            Spec::Symbol(name) => match reqs.get(name) {
                Some(r) => out.push_str(&format!("({})", requirement_to_s(r))),
                None => out.push_str("([^/.?]+)"),
            },
            // visit_STAR: "(#{re})" (a String requirement is interpolated unescaped here).
            Spec::Star(name) => match reqs.get(name) {
                Some(Requirement::Literal { literal }) => out.push_str(&format!("({literal})")),
                Some(r) => out.push_str(&format!("({})", requirement_to_s(r))),
                None => out.push_str(glob),
            },
            Spec::Group(inner) => {
                out.push_str("(?:");
                visit(inner, reqs, glob, out);
                out.push_str(")?");
            }
            Spec::Or(alts) => {
                out.push_str("(?:");
                for (i, a) in alts.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    visit(std::slice::from_ref(a), reqs, glob, out);
                }
                out.push(')');
            }
        }
    }
}

/// The whole route regex, as `Pattern#to_regexp.source` gives it.
pub(crate) fn route_regex_source(seq: &[Spec], reqs: &BTreeMap<String, Requirement>, mounted: bool) -> String {
    let mut body = String::new();
    visit(seq, reqs, if mounted { "(.+)" } else { "((?-mix:.+?))" }, &mut body);
    if !mounted {
        format!("\\A{body}\\Z")
    } else if body == "/" {
        "\\A/".to_string()
    } else {
        format!("\\A{body}(?:\\b|\\Z|/)")
    }
}

pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::with_options_and_encoding(EncodedBytes::ascii(pattern.as_bytes()), RegexOptions::REGEX_OPTION_NONE, Syntax::ruby())
        .map_err(|e| format!("onig refuses {pattern:?}: {e}"))
}

/// Parameters in spec order: name, unescaped value.
pub(crate) type Params = Vec<(String, Vec<u8>)>;

/// What a classification answered: the route and its parameters.
pub(crate) type Answer = Option<(usize, Params)>;

/// Whether Journey puts the route in its simulator partition (`Journey::Routes#partition_route`):
/// anchored, and every `Symbol` node still has the default regexp. A glob's symbol never does
/// (`GREEDY_EXP`, or the mapper's `.+?`); a requirement replaces it (`Pattern#ast`); and the
/// mapper's `alter_regex_for_custom_routes` replaces it for a symbol next to a literal in a
/// `Cat` (`/:a-:b`, `/foo:id`), though the route's regex stays the same.
pub(crate) fn is_simulator_route(def: &RouteDef, seq: &[Spec]) -> bool {
    fn plain(seq: &[Spec], reqs: &BTreeMap<String, Requirement>) -> bool {
        let next_to_literal = |i: usize| matches!(seq.get(i.wrapping_sub(1)), Some(Spec::Literal(_))) || matches!(seq.get(i + 1), Some(Spec::Literal(_)));
        seq.iter().enumerate().all(|(i, n)| match n {
            Spec::Star(_) => false,
            Spec::Symbol(name) => !reqs.contains_key(name) && !next_to_literal(i),
            Spec::Group(inner) | Spec::Or(inner) => plain(inner, reqs),
            _ => true,
        })
    }
    !def.mounted && plain(seq, &def.requirements)
}

/// The path as `GTG::Simulator#memos` reads it: `[/.?]` or `[^/.?]+` tokens.
pub(crate) fn sim_tokens(path: &[u8]) -> Vec<&[u8]> {
    let sep = |b: u8| matches!(b, b'/' | b'.' | b'?');
    let mut out = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let j = if sep(path[i]) { i + 1 } else { i + path[i..].iter().position(|&b| sep(b)).unwrap_or(path.len() - i) };
        out.push(&path[i..j]);
        i = j;
    }
    out
}

/// Journey's transition table, route by route: each terminal takes exactly one token (`/` and
/// `.` their own, a literal an equal token, a default symbol any token `[^./?]+` matches),
/// groups are optional, and the route is a candidate if some way through ends on the last token.
pub(crate) fn sim_accepts(seq: &[Spec], tokens: &[&[u8]]) -> bool {
    fn step(seq: &[Spec], tokens: &[&[u8]], mut at: Vec<usize>) -> Vec<usize> {
        for n in seq {
            at = node(n, tokens, &at);
            if at.is_empty() {
                break;
            }
        }
        at
    }
    fn node(n: &Spec, tokens: &[&[u8]], at: &[usize]) -> Vec<usize> {
        let takes = |p: &usize, ok: &dyn Fn(&[u8]) -> bool| tokens.get(*p).is_some_and(|t| ok(t));
        let mut out: Vec<usize> = match n {
            Spec::Slash => at.iter().filter(|p| takes(p, &|t| t == b"/")).map(|p| p + 1).collect(),
            Spec::Dot => at.iter().filter(|p| takes(p, &|t| t == b".")).map(|p| p + 1).collect(),
            Spec::Literal(l) => at.iter().filter(|p| takes(p, &|t| t == l.as_bytes())).map(|p| p + 1).collect(),
            Spec::Symbol(_) => at.iter().filter(|p| takes(p, &|t| t.iter().any(|b| !matches!(b, b'/' | b'.' | b'?')))).map(|p| p + 1).collect(),
            Spec::Star(_) => unreachable!("a glob route is never a simulator route"),
            Spec::Group(inner) => at.iter().copied().chain(step(inner, tokens, at.to_vec())).collect(),
            Spec::Or(alts) => alts.iter().flat_map(|a| node(a, tokens, at)).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
    step(seq, tokens, vec![0]).contains(&tokens.len())
}

pub(crate) struct OracleRoute {
    pub(crate) index: usize,
    /// `None`: any verb (`route.verb == ""`).
    pub(crate) verbs: Option<Vec<String>>,
    pub(crate) source: String,
    pub(crate) regex: Regex,
    /// Parameter names, and the capture group of each (Journey's `offsets`).
    pub(crate) params: Vec<(String, usize)>,
    /// Set for the routes Journey finds with its simulator; their parameters still come from
    /// the regex (`find_routes`: `r.path.match(path_info)`).
    pub(crate) simulated: Option<Vec<Spec>>,
}

pub(crate) struct Oracle {
    pub(crate) routes: Vec<OracleRoute>,
}

impl Oracle {
    pub(crate) fn new(defs: &[RouteDef]) -> Result<Oracle, String> {
        let mut defs: Vec<&RouteDef> = defs.iter().collect();
        if defs.iter().all(|d| d.index.is_some()) {
            defs.sort_by_key(|d| d.index);
        }
        let mut routes = Vec::new();
        for (index, def) in defs.into_iter().enumerate() {
            let seq = parse_spec(&def.path).map_err(|e| format!("route {index} {:?}: {e}", def.path))?;
            let source = route_regex_source(&seq, &def.requirements, def.mounted);
            let regex = compile(&source)?;
            let mut names = Vec::new();
            spec_names(&seq, &mut names);
            // Pattern#offsets: parameter k is capture group offsets[k] + k + 1, where offsets
            // accumulates the groups inside each earlier parameter's requirement.
            let mut params = Vec::new();
            let mut offset = 0;
            for (k, name) in names.into_iter().enumerate() {
                params.push((name.clone(), offset + k + 1));
                if let Some(req) = def.requirements.get(&name) {
                    offset += compile(&requirement_to_s(req))?.captures_len();
                }
            }
            let verbs = (!def.verb.is_empty()).then(|| def.verb.split('|').map(str::to_string).collect());
            let simulated = is_simulator_route(def, &seq).then_some(seq);
            routes.push(OracleRoute { index: def.index.unwrap_or(index), verbs, source, regex, params, simulated });
        }
        Ok(Oracle { routes })
    }

    /// Whether the route's path matches, and its parameters if it does.
    pub(crate) fn run(&self, route: &OracleRoute, path: &[u8], tokens: &[&[u8]]) -> Result<Option<Params>, String> {
        if let Some(seq) = &route.simulated {
            if !sim_accepts(seq, tokens) {
                return Ok(None);
            }
        }
        let mut region = Region::new();
        let found = route
            .regex
            .search_with_param(EncodedBytes::ascii(path), 0, path.len(), SearchOptions::SEARCH_OPTION_NONE, Some(&mut region), MatchParam::default())
            .map_err(|e| format!("onig failed on route {} {:?}: {e}", route.index, route.source))?;
        if found.is_none() {
            return match route.simulated {
                // Rails itself would raise (NoMethodError on a nil MatchData).
                Some(_) => Err(format!("route {}: the simulator accepts what {:?} does not", route.index, route.source)),
                None => Ok(None),
            };
        }
        let params =
            route.params.iter().filter_map(|(name, group)| region.pos(*group).map(|(s, e)| (name.clone(), unescape(&path[s..e]).into_owned()))).collect();
        Ok(Some(params))
    }

    /// What Rails serves: [`Oracle::recognize`], refused when the route's parameters are not UTF-8.
    pub(crate) fn serve(&self, method: &str, path_info: &[u8]) -> Result<Answer, String> {
        match self.recognize(method, path_info)? {
            Some((route, params)) => served(route, params),
            None => Ok(None),
        }
    }

    /// `Journey::Router#find_routes`, first route (dynamic constraints assumed to hold).
    pub(crate) fn recognize(&self, method: &str, path_info: &[u8]) -> Result<Answer, String> {
        let path = normalize_path(path_info);
        let tokens = sim_tokens(&path);
        let explicit = |r: &OracleRoute, m: &str| r.verbs.as_ref().is_some_and(|v| v.iter().any(|x| x == m));
        let allows = |r: &OracleRoute, m: &str| r.verbs.is_none() || explicit(r, m);
        // match_head_routes: the path-matching routes that name HEAD, if any; else all as GET.
        let method = if method == "HEAD" {
            for r in &self.routes {
                if explicit(r, "HEAD") {
                    if let Some(params) = self.run(r, &path, &tokens)? {
                        return Ok(Some((r.index, params)));
                    }
                }
            }
            "GET"
        } else {
            method
        };
        for r in &self.routes {
            if allows(r, method) {
                if let Some(params) = self.run(r, &path, &tokens)? {
                    return Ok(Some((r.index, params)));
                }
            }
        }
        Ok(None)
    }
}

/// `Journey::Router#serve` sets the first route's path parameters, and Rails refuses one that is
/// not UTF-8 once unescaped (400, `ActionController::BadRequest`) before anything else runs.
pub(crate) fn served(route: usize, params: Vec<(String, Vec<u8>)>) -> Result<Answer, String> {
    match params.iter().find(|(_, v)| std::str::from_utf8(v).is_err()) {
        Some((name, _)) => Err(format!("path parameter '{name}' of route {route} is not valid UTF-8 once unescaped (Rails answers 400 Bad Request)")),
        None => Ok(Some((route, params))),
    }
}

/// The crate's answer, in the oracle's shape.
pub(crate) fn crate_answer(classifier: &Classifier, method: &str, path: &[u8]) -> Result<Answer, String> {
    match classifier.recognize(method, path) {
        Err(e) => Err(e.to_string()),
        Ok(None) => Ok(None),
        Ok(Some(m)) => Ok(Some((m.route_index(), m.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect()))),
    }
}

pub(crate) struct ShowAnswer<'a>(pub(crate) &'a Result<Answer, String>);

impl fmt::Display for ShowAnswer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Err(e) => write!(f, "error: {e}"),
            Ok(None) => write!(f, "no route"),
            Ok(Some((i, params))) => {
                write!(f, "route {i} {{")?;
                for (k, (name, v)) in params.iter().enumerate() {
                    write!(f, "{}{name}: \"{}\"", if k > 0 { ", " } else { "" }, v.escape_ascii())?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// Compares the crate with the oracle on one request; the message names both answers.
pub(crate) fn compare(classifier: &Classifier, oracle: &Oracle, method: &str, path: &[u8]) -> Result<(), String> {
    let ours = crate_answer(classifier, method, path);
    let theirs = oracle.serve(method, path);
    let rails_400 = matches!(&theirs, Err(e) if e.contains("Rails answers 400"));
    if (theirs.is_err() && !rails_400) || ours != theirs {
        let route = |a: &Result<Answer, String>| match a {
            Ok(Some((i, _))) => oracle.routes.iter().find(|r| r.index == *i).map(|r| format!("\n  route {i}: {}", r.source)),
            _ => None,
        };
        return Err(format!(
            "{method} \"{}\"\n  crate:  {}\n  oracle: {}{}{}",
            path.escape_ascii(),
            ShowAnswer(&ours),
            ShowAnswer(&theirs),
            route(&ours).unwrap_or_default(),
            if matches!((&ours, &theirs), (Ok(Some((a, _))), Ok(Some((b, _)))) if a == b) { String::new() } else { route(&theirs).unwrap_or_default() },
        ));
    }
    Ok(())
}
