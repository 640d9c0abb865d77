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
//! let m = classifier.classify("GET", b"/gitlab-org/gitlab/-/issues").unwrap().unwrap();
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
//! - [`rules`] and [`learn`]: from a matched route to the router's learn answer.
//! - [`artifact`]: a compiled classifier as bytes, loaded again without recompiling.

mod around_key;
pub mod artifact;
pub mod classifier;
pub mod engine;
pub mod error;
mod first_segment;
mod heap;
mod inline_vec;
pub mod journey;
pub mod learn;
pub mod matcher;
pub mod normalize;
pub mod routes;
pub mod ruby_regex;
pub mod rules;
mod shared_runs;
pub mod span_plan;
pub mod templates;
pub mod vectors;

pub use classifier::{BuildOptions, Classifier, CompiledRoute, Match};
pub use engine::{EngineConfig, EngineKind};
pub use error::{ClassifyError, CompileError};
pub use learn::{Claim, ClaimKind, LearnResponse, Learned, Source};
pub use routes::{Requirement, RouteDef, Verbs};
pub use rules::Rules;
