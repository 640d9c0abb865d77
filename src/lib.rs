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
//! The pieces, in the order a request meets them (the modules are private unless linked):
//! - [`normalize`]: Rails' path normalization and parameter unescaping.
//! - the classifier's `segment_tree`: a table of plain routes (literal segments and default
//!   parameters only) searched segment by segment, with no automaton.
//! - the classifier's `static_paths`: the kept candidates of the table's literal paths, looked
//!   up before any automaton.
//! - `engine` (with `accel`, the skip of an accelerated dense state), `first_segment`,
//!   `around_key`: the multi-pattern DFAs (dense, or lazy for huge glob-heavy tables).
//! - `matcher`, `span_plan`: the exact Onigmo-semantics matcher that confirms widened candidates
//!   and extracts parameters.
//! - [`Classifier`]: Rails' ordering, verb and HEAD rules, and the dynamic-constraint callback.
//! - [`Rules`], [`LearnResponse`] and [`Learner`]: from the route Rails would pick to the
//!   router's learn answer.
//! - [`artifact`]: a compiled classifier as bytes, loaded again without recompiling.
//! - [`routes`], [`templates`], [`vectors`]: the route table, template snapshot and recorded
//!   request formats.

#![deny(missing_docs)]

mod accel;
mod around_key;
pub mod artifact;
mod classifier;
mod engine;
mod error;
mod first_segment;
mod fixed_index;
mod heap;
mod inline_vec;
// The three below are driven directly by the fuzz targets (and so by their replay in
// `tests/fuzz_regressions.rs`) and the peer benchmark, through [`internals`]; they are not
// part of the documented API.
#[allow(missing_docs)]
mod journey;
mod learn;
mod learner;
#[allow(missing_docs)]
mod matcher;
pub mod normalize;
mod piece_check;
pub mod routes;
#[allow(missing_docs)]
mod ruby_regex;
mod rules;
mod segment_scan;
mod shared_runs;
mod span_plan;
pub mod templates;
pub mod vectors;

pub use classifier::{BuildOptions, Classifier, CompiledRoute, HostRegex, Match, RegexHost, DEFAULT_MAX_PATH_LEN};
pub use engine::{EngineConfig, EngineKind, LazyCache};
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
/// (`fuzz/src/core_checks.rs`) and the peer benchmark's spec expansion. Not a stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::journey::{param_names, parse_spec, SpecNode};
    pub use crate::matcher::Matcher;
    pub use crate::ruby_regex::{parse::parse, translate::translate};
}
