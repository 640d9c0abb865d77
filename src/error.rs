//! Error types: one for building a classifier, one for classifying a request, and the
//! automaton failures each can carry.

use crate::journey::SpecError;
use crate::matcher::BudgetExceeded;
use crate::ruby_regex::parse::RegexError;

/// A route table that cannot be compiled. Every variant about a route names its index.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A route's Journey path spec does not parse.
    #[error("route {index} ({spec:?}): path spec {source}")]
    Spec {
        /// The route's index in definition order.
        index: usize,
        /// The spec at fault (the route's path, or its mount's).
        spec: String,
        /// Where and why it does not parse.
        source: SpecError,
    },
    /// A route's requirement is not a Ruby regex this crate can run or widen.
    #[error("route {index} ({spec:?}): requirement for '{param}' {source}")]
    Requirement {
        /// The route's index in definition order.
        index: usize,
        /// The route's path spec.
        spec: String,
        /// The parameter the requirement constrains.
        param: String,
        /// Where and why the requirement's source is refused.
        source: RegexError,
    },
    /// A route's verb is not `""`, `GET` or a `GET|POST`-style list.
    #[error("route {index}: invalid verb {verb:?} (expected \"\", \"GET\" or \"GET|POST\"-style upper-case tokens)")]
    Verb {
        /// The route's index in definition order.
        index: usize,
        /// The verb as given.
        verb: String,
    },
    /// A route's `encoded_literals_after` (its mount path) does not start its path spec.
    #[error("route table: route {index}: encoded_literals_after is not the start of {spec:?}")]
    EncodedLiteralsAfter {
        /// The route's index in definition order.
        index: usize,
        /// The route's path spec.
        spec: String,
    },
    /// Two route definitions claim the same index.
    #[error("route table: two routes have index {index}")]
    DuplicateIndex {
        /// The index given twice.
        index: usize,
    },
    /// The route table is not the JSON the corpus format describes.
    #[error("route table JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The automata over the routes' patterns could not be built.
    #[error("the route automaton could not be built: {0}")]
    Automaton(#[source] AutomatonError),
}

impl CompileError {
    /// The index of the route at fault, if one is.
    pub fn route_index(&self) -> Option<usize> {
        match self {
            CompileError::Spec { index, .. } | CompileError::Requirement { index, .. } | CompileError::Verb { index, .. } => Some(*index),
            CompileError::Automaton(AutomatonError::NotPlain { route, .. }) => Some(*route),
            _ => None,
        }
    }

    /// The byte position in the path spec or requirement source, if the error has one.
    pub fn position(&self) -> Option<usize> {
        match self {
            CompileError::Spec { source, .. } => Some(source.position),
            CompileError::Requirement { source, .. } => Some(source.position),
            _ => None,
        }
    }
}

/// Why the automata over a route table could not be built (or, from an artifact, put together).
#[derive(Debug, thiserror::Error)]
pub enum AutomatonError {
    /// `regex-automata` could not build a dense DFA (over its size limit, say, with
    /// [`EngineKind::Dense`](crate::EngineKind::Dense) forced). Boxed, as the next: they are
    /// large, and every build returns this error type.
    #[error(transparent)]
    Dense(Box<regex_automata::dfa::dense::BuildError>),
    /// `regex-automata` could not build a lazy DFA.
    #[error(transparent)]
    Lazy(Box<regex_automata::hybrid::BuildError>),
    /// `regex-automata` could not build the NFA the automata are determinized from.
    #[error(transparent)]
    Nfa(Box<regex_automata::nfa::thompson::BuildError>),
    /// A pattern written as text does not parse (a bug of the translator).
    #[error(transparent)]
    Syntax(Box<regex_syntax::Error>),
    /// An artifact's widenings list a different number of routes than its route table.
    #[error("the widenings do not belong to these routes")]
    ForeignWidenings,
    /// An artifact's automata name routes its route table does not have.
    #[error("the automata do not belong to these routes")]
    ForeignAutomata,
    /// [`EngineKind::SegmentTree`](crate::EngineKind::SegmentTree) was asked for, and a route
    /// is not plain (a requirement, glob, optional group other than a final `(.:format)`, mount, or a literal with
    /// bytes other than ASCII letters, digits, `-`, `_` and `~`).
    #[error("route #{route} ({spec}) is not plain: the segment tree takes only /literal and /:param segments without requirements, and a final (.:format)")]
    NotPlain {
        /// Its position in definition order.
        route: usize,
        /// Its path spec.
        spec: String,
    },
    /// An artifact's key segment selects more than one automaton.
    #[error("the key segment {key:?} selects two automata")]
    KeyInTwoAutomata {
        /// The key segment.
        key: String,
    },
}

impl From<regex_automata::dfa::dense::BuildError> for AutomatonError {
    fn from(e: regex_automata::dfa::dense::BuildError) -> AutomatonError {
        AutomatonError::Dense(Box::new(e))
    }
}

impl From<regex_automata::hybrid::BuildError> for AutomatonError {
    fn from(e: regex_automata::hybrid::BuildError) -> AutomatonError {
        AutomatonError::Lazy(Box::new(e))
    }
}

/// Why an automaton search failed. None is expected: the automata are built never to give up
/// (no quit bytes, no cache-clear limit), so any of these is a bug worth reporting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// `regex-automata` stopped the search.
    #[error(transparent)]
    Match(#[from] regex_automata::MatchError),
    /// A lazy DFA's cache was cleared more often than allowed.
    #[error("lazy DFA cache has been cleared too many times")]
    CacheCleared,
    /// An automaton walked byte by byte (a dense DFA, or a lazy DFA over keyed routes' suffixes
    /// or a first-segment bucket) reached a quit state.
    #[error("the automaton gave up at byte {byte:#04x}")]
    GaveUp {
        /// The byte it gave up at.
        byte: u8,
    },
}

impl From<regex_automata::hybrid::CacheError> for SearchError {
    fn from(_: regex_automata::hybrid::CacheError) -> SearchError {
        SearchError::CacheCleared
    }
}

/// A request that cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// The method is not an HTTP token (the text holds at most its first 40 characters).
    #[error("invalid HTTP method {0:?}: expected an upper-case token such as GET")]
    InvalidMethod(String),
    /// The path is longer than the classifier's limit (the learn endpoint answers 414).
    #[error("path_info is {len} bytes, over the limit of {limit}")]
    PathTooLong {
        /// The path's length in bytes.
        len: usize,
        /// [`BuildOptions::max_path_len`](crate::BuildOptions::max_path_len).
        limit: usize,
    },
    /// The route Rails tries first would get a parameter that is not UTF-8 once unescaped
    /// (`/gitlab-org/%FF/-/issues`): Rails answers such a request 400
    /// (`ActionController::BadRequest`, "Invalid path parameters") before asking any constraint.
    #[error("path parameter '{param}' of route {route} is not valid UTF-8 once unescaped (Rails answers 400 Bad Request)")]
    ParamNotUtf8 {
        /// The route's index.
        route: usize,
        /// The parameter's name.
        param: String,
    },
    /// A route whose requirement only Ruby's `Regexp` can decide, classified without a host
    /// that runs it (see `BuildOptions::host_regex`).
    #[error("route {route}: requirement {construct} can only be decided by Ruby's Regexp")]
    NeedsRuby {
        /// The route's index.
        route: usize,
        /// The parameter and construct (`id: (?<!...)`), or why the host gave no answer.
        construct: String,
    },
    /// A route's exact matcher needs more backtracking steps than its budget on this path.
    #[error("route {route}: {source}")]
    TooComplex {
        /// The route's index.
        route: usize,
        /// The budget it ran past.
        source: BudgetExceeded,
    },
    /// An automaton search failed (see [`SearchError`]: not expected).
    #[error("the route automaton failed: {0}")]
    Automaton(#[source] SearchError),
    /// The automaton proposed a route its exact matcher then refused (a bug: the automaton
    /// only ever widens a route's regex).
    #[error("the route automaton failed: route {route}: the automaton and the exact matcher disagree on {path:?}")]
    MatcherDisagrees {
        /// The route's index.
        route: usize,
        /// The normalized path, lossily as text.
        path: String,
    },
    /// The host's `Regexp` callback answered spans that do not fit the path or the route.
    #[error("the route automaton failed: route {route}: the host's Regexp gave spans outside the path")]
    HostRegexSpans {
        /// The route's index.
        route: usize,
    },
    /// A route of a loaded classifier failed to compile when its exact matcher was built on
    /// first use (a bug: loading checks every route). `reason` is the [`CompileError`]'s text:
    /// a `ClassifyError` is cloned and compared, which a `CompileError` cannot be.
    #[error("the route automaton failed: route {route} no longer compiles: {reason}")]
    RouteNoLongerCompiles {
        /// The route's index.
        route: usize,
        /// The compile error, as text.
        reason: String,
    },
}
