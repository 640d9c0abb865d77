//! Path generators: grammar-shaped paths from a table's words, instantiated specs, random bytes.

use std::fmt;

use cells_learn::RouteDef;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use crate::oracle::*;

pub(crate) const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// GitLab's reserved words and other words that route tables care about.
pub(crate) const RESERVED: &[&str] = &[
    "admin",
    "groups",
    "-",
    "api",
    "users",
    "tree",
    "blob",
    "info",
    "lfs",
    "objects",
    "wikis",
    "issues",
    "raw",
    "refs",
    "edit",
    "new",
    "help",
    "dashboard",
    "explore",
    "o",
    "s",
    "search",
    "profile",
    "snippets",
    "uploads",
    "v2",
    "v4",
    ".well-known",
    "404.html",
    "robots.txt",
    "sitemap.xml.gz",
    "gitlab-lfs",
    "environments",
    "folders",
    "badges",
    "blame",
    "commits",
    "create",
    "create_dir",
    "files",
    "find_file",
    "preview",
    "update",
    "builds",
    "favicon.ico",
    "x",
    "rss",
    "atom",
    "sha",
    "b",
    "c",
    "d",
    "f",
    "u",
    "ide",
    "assets",
];

/// Names of namespaces, projects, users, refs... that most requirements accept.
pub(crate) const NAMES: &[&str] = &[
    "gitlab-org",
    "gitlab",
    "my.project",
    "a",
    "Foo_Bar",
    "john.doe",
    "x",
    "1",
    "42",
    "123",
    "deadbeef",
    "DEADBEEF0",
    "0123456789abcdef0123456789abcdef01234567",
    "abc",
    "master",
    "p-q",
    "foobar",
    "foo_bar",
    "v4",
    "v4.x",
    "ac",
    "b",
    "xy",
    "z",
    "a.b",
    "json",
    "html",
    "edit",
    "main",
];

/// Names that many requirements refuse.
pub(crate) const ODD_NAMES: &[&str] = &[
    "0123456789abcdef0123456789abcdef012345678",
    "ABC",
    "Admin",
    "ADMIN",
    "GROUPS",
    "a.b.c",
    "_x",
    "-x",
    "x-",
    ".x",
    "x.",
    "a..b",
    "feature/x",
    "\u{17f}",
    "\u{212a}",
    "\u{e9}t\u{e9}",
    "sub~group",
    "a+b",
    "a@b",
    "%",
    "a b",
    "a\nb",
];

pub(crate) const SUFFIXES: &[&str] = &[".git", ".atom", ".json", ".html", ".xml", ".git.atom", ".GIT", ".Atom", ".", "..", ".html.git"];

pub(crate) const ESCAPES: &[&str] = &["%2F", "%2f", "%2e", "%2E", "a%2Fb", "a%2fb%2E", "%zz", "%2", "%41", "%0A", "%00", "%ff", "%FF.json"];

pub(crate) const PREFIXES: &[&str] = &["/", "/", "/", "/", "", "//"];

pub(crate) const TAILS: &[&str] =
    &["", "", "", "", "/", "//", ".json", ".html", ".git", ".atom", "?q=1", "?", "\n", "/\n", ".json\n", "#x", "/edit", "/-/tree/master"];

/// Bytes of the random segments.
pub(crate) const ALPHABET: &[u8] = b"aZz09._-~%?\n/ :+@";

pub(crate) fn segment(words: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let words: Vec<String> = words.into_iter().chain(RESERVED.iter().map(|s| s.to_string())).collect();
    prop_oneof![
        4 => select(words).prop_map(String::into_bytes),
        4 => select(NAMES).prop_map(|s| s.as_bytes().to_vec()),
        2 => select(ODD_NAMES).prop_map(|s| s.as_bytes().to_vec()),
        2 => (select(NAMES), select(SUFFIXES)).prop_map(|(n, s)| [n.as_bytes(), s.as_bytes()].concat()),
        1 => select(ESCAPES).prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(select(ALPHABET), 0..6),
        1 => Just(Vec::new()),
    ]
}

/// Paths from the GitLab-ish grammar: prefix, segments joined by `/`, a tail.
pub(crate) fn grammar_path(words: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    (select(PREFIXES), prop::collection::vec(segment(words), 0..8), select(TAILS)).prop_map(|(p, segs, t)| {
        let mut out = p.as_bytes().to_vec();
        out.extend(segs.join(&b'/'));
        out.extend_from_slice(t.as_bytes());
        out
    })
}

/// A deterministic stream of choices, for filling in a route spec.
pub(crate) struct Entropy {
    pub(crate) data: Vec<u32>,
    pub(crate) at: usize,
}

impl Entropy {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let round = (self.at / self.data.len()) as u32;
        let v = self.data[self.at % self.data.len()].wrapping_add(round.wrapping_mul(0x9e37_79b9)).rotate_left(round);
        self.at += 1;
        v as usize % n.max(1)
    }

    pub(crate) fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub(crate) fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// A parameter value for a spec's symbol.
pub(crate) fn value(name: &str, e: &mut Entropy, words: &[String]) -> Vec<u8> {
    if name == "format" && !e.chance(4) {
        return e.pick(&["json", "html", "atom", "xml", "git", "JSON", "Html", "", "j", "json\n"]).as_bytes().to_vec();
    }
    let mut v = match e.below(10) {
        0 => words[e.below(words.len())].as_bytes().to_vec(),
        1 => e.pick(RESERVED).as_bytes().to_vec(),
        2 => [e.pick(NAMES), e.pick(SUFFIXES)].concat().into_bytes(),
        3 => e.pick(ESCAPES).as_bytes().to_vec(),
        4 => e.pick(ODD_NAMES).as_bytes().to_vec(),
        _ => e.pick(NAMES).as_bytes().to_vec(),
    };
    if e.chance(10) {
        v.make_ascii_uppercase();
    }
    v
}

/// Fills in a spec: literals kept (sometimes changed), parameters from [`value`], optional
/// groups taken or not, globs of one to three segments.
pub(crate) fn instantiate(seq: &[Spec], e: &mut Entropy, words: &[String], out: &mut Vec<u8>) {
    for n in seq {
        match n {
            Spec::Slash => out.extend_from_slice(if e.chance(20) { b"//" } else { b"/" }),
            Spec::Dot => out.push(b'.'),
            Spec::Literal(t) => match e.below(24) {
                0 => out.extend(t.to_ascii_uppercase().bytes()),
                1 => out.extend(words[e.below(words.len())].bytes()),
                _ => out.extend(t.bytes()),
            },
            Spec::Symbol(name) => out.extend(value(name, e, words)),
            Spec::Star(name) => {
                for k in 0..1 + e.below(3) {
                    if k > 0 {
                        out.push(b'/');
                    }
                    out.extend(value(name, e, words));
                }
            }
            Spec::Group(inner) => {
                if e.below(3) != 0 {
                    instantiate(inner, e, words, out);
                }
            }
            Spec::Or(alts) => instantiate(std::slice::from_ref(&alts[e.below(alts.len())]), e, words, out),
        }
    }
}

/// A request: a path drawn from the grammar, or filled in from one of the table's routes (then
/// sometimes given a tail: a suffix, a trailing slash, a newline...) and usually sent with
/// that route's verb.
#[derive(Clone, Debug)]
pub(crate) enum PathGen {
    Grammar { method: &'static str, path: Vec<u8> },
    FromRoute { method: &'static str, follow_verb: bool, route: u32, entropy: Vec<u32>, tail: &'static str },
}

pub(crate) fn request_gen(words: Vec<String>) -> impl Strategy<Value = PathGen> {
    prop_oneof![
        1 => (select(METHODS), grammar_path(words)).prop_map(|(method, path)| PathGen::Grammar { method, path }),
        1 => (select(METHODS), prop::bool::weighted(0.7), any::<u32>(), prop::collection::vec(any::<u32>(), 24), select(TAILS))
            .prop_map(|(method, follow_verb, route, entropy, tail)| PathGen::FromRoute { method, follow_verb, route, entropy, tail }),
    ]
}

impl PathGen {
    pub(crate) fn request(&self, defs: &[RouteDef], specs: &[Vec<Spec>], words: &[String]) -> Req {
        match self {
            PathGen::Grammar { method, path } => Req { method, path: path.clone() },
            PathGen::FromRoute { method, follow_verb, route, entropy, tail } => {
                let route = *route as usize % specs.len();
                let mut e = Entropy { data: entropy.clone(), at: 0 };
                let mut path = Vec::new();
                instantiate(&specs[route], &mut e, words, &mut path);
                if e.chance(3) {
                    path.extend_from_slice(tail.as_bytes());
                }
                let verbs: Vec<&str> = defs[route].verb.split('|').collect();
                let method = match METHODS.iter().find(|m| verbs.contains(m)) {
                    Some(m) if *follow_verb => m,
                    None if *follow_verb => ["GET", "HEAD", "POST"][e.below(3)],
                    _ => method,
                };
                Req { method, path }
            }
        }
    }
}

/// A request as generated, shown readably when a case fails.
#[derive(Clone)]
pub(crate) struct Req {
    pub(crate) method: &'static str,
    pub(crate) path: Vec<u8>,
}

impl fmt::Debug for Req {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} \"{}\"", self.method, self.path.escape_ascii())
    }
}

pub(crate) fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(0x6a6f_7572_6e65_7921), max_shrink_iters: 2_000, ..Config::default() }
}

/// Runs a property; on failure, panics with proptest's minimal case and the comparison.
pub(crate) fn check<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), String>)
where
    S::Value: fmt::Debug,
{
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, |v| test(v).map_err(TestCaseError::fail)) {
        panic!("{name}: the crate and the oracle disagree\n{e}");
    }
}
