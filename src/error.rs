//! Error types: one for building a classifier, one for classifying a request.

use crate::journey::SpecError;
use crate::matcher::BudgetExceeded;
use crate::ruby_regex::parse::RegexError;

/// A route table that cannot be compiled. Every variant about a route names its index.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("route {index} ({spec:?}): path spec {source}")]
    Spec { index: usize, spec: String, source: SpecError },
    #[error("route {index} ({spec:?}): requirement for '{param}' {source}")]
    Requirement { index: usize, spec: String, param: String, source: RegexError },
    #[error("route {index}: invalid verb {verb:?} (expected \"\", \"GET\" or \"GET|POST\"-style upper-case tokens)")]
    Verb { index: usize, verb: String },
    #[error("route table: {0}")]
    Table(String),
    #[error("route table JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the route automaton could not be built: {0}")]
    Automaton(String),
}

impl CompileError {
    /// The index of the route at fault, if one is.
    pub fn route_index(&self) -> Option<usize> {
        match self {
            CompileError::Spec { index, .. } | CompileError::Requirement { index, .. } | CompileError::Verb { index, .. } => Some(*index),
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

/// A request that cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    #[error("invalid HTTP method {0:?}: expected an upper-case token such as GET")]
    InvalidMethod(String),
    #[error("path_info is {len} bytes, over the limit of {limit}")]
    PathTooLong { len: usize, limit: usize },
    /// The route Rails tries first would get a parameter that is not UTF-8 once unescaped
    /// (`/gitlab-org/%FF/-/issues`): Rails answers such a request 400
    /// (`ActionController::BadRequest`, "Invalid path parameters") before asking any constraint.
    #[error("path parameter '{param}' of route {route} is not valid UTF-8 once unescaped (Rails answers 400 Bad Request)")]
    ParamNotUtf8 { route: usize, param: String },
    /// A route whose requirement only Ruby's `Regexp` can decide, classified without a host
    /// that runs it (see `BuildOptions::host_regex`).
    #[error("route {route}: requirement {construct} can only be decided by Ruby's Regexp")]
    NeedsRuby { route: usize, construct: String },
    #[error("route {route}: {source}")]
    TooComplex { route: usize, source: BudgetExceeded },
    #[error("the route automaton failed: {0}")]
    Automaton(String),
}
