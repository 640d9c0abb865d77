//! # cells-learn-core
//!
//! Answers, for GitLab Cells, the question a stateless router asks a cell before forwarding a
//! request: *which route of the Rails monolith is this, and which routable entity (project,
//! group, user...) does it name?* — exactly as Rails' Journey router would decide it, in one
//! automaton pass instead of Journey's route-by-route regex loop.
//!
//! ```
//! use cells_learn::{Classifier, RouteDef};
//!
//! let classifier = Classifier::new(vec![
//!     RouteDef::new("GET", "/-/profile(.:format)").to("profiles", "show"),
//!     RouteDef::new("GET", "/*namespace_id/:project_id/-/issues(.:format)").to("projects/issues", "index"),
//! ]).unwrap();
//! let m = classifier.recognize("GET", b"/gitlab-org/gitlab/-/issues").unwrap().unwrap();
//! assert_eq!(m.route_index(), 1);
//! assert_eq!(m.param("namespace_id").as_deref(), Some(&b"gitlab-org"[..]));
//! ```
//!
//! The pieces, in the order a request meets them:
//! - [`normalize`]: Rails' path normalization and parameter unescaping.
//! - [`engine`]: the multi-pattern DFA (dense, or lazy for huge glob-heavy tables).
//! - [`matcher`]: the exact Onigmo-semantics matcher that confirms widened candidates and
//!   extracts parameters.
//! - [`classifier`]: Rails' ordering, verb and HEAD rules, and the dynamic-constraint callback.
//! - [`rules`], [`learn`] and [`Learner`]: from the route Rails would pick to the router's learn
//!   answer.
//! - [`artifact`]: a compiled classifier as bytes, loaded again without recompiling.

mod around_key;
pub mod artifact;
pub mod classifier;
pub mod engine;
pub mod error;
mod heap;
mod inline_vec;
pub mod journey;
pub mod learn;
mod learner;
pub mod matcher;
pub mod normalize;
pub mod routes;
pub mod ruby_regex;
pub mod rules;
mod shared_runs;
pub mod span_plan;
pub mod templates;
pub mod vectors;

pub use classifier::{BuildOptions, Classifier, CompiledRoute, HostRegex, Match, RegexHost, DEFAULT_MAX_PATH_LEN};
pub use engine::{EngineConfig, EngineKind};
pub use error::{AutomatonError, ClassifyError, CompileError, SearchError};
pub use journey::SpecError;
pub use learn::{covers_prefix, Entity, EntityKind, LearnResponse, Learned, Source, Unrouted};
pub use learner::Learner;
pub use matcher::{BudgetExceeded, Spans};
pub use routes::{Requirement, RouteDef, Verbs};
pub use ruby_regex::parse::{Inexpressible, RegexError};
pub use ruby_regex::translate::Widening;
pub use rules::{FixedRule, RoutableRule, Rules, RulesError};

/// The parsers and the exact matcher below the classifier, for the fuzz targets
/// (`fuzz/src/core_checks.rs`, replayed by `tests/fuzz_regressions.rs`) and the peer
/// benchmark's spec expansion. Not a stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::journey::{param_names, parse_spec, SpecNode};
    pub use crate::matcher::Matcher;
    pub use crate::ruby_regex::{parse::parse, translate::translate};
}
