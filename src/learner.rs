//! A compiled classifier with its learn rules: the one object that answers the learn question.
//!
//! Rails' vocabulary splits the question in two, and so does this crate: a classifier
//! *recognizes* the route Rails would pick ([`Classifier::recognize`]); a learner *learns* what
//! the router should cache for it ([`Learner::learn`]) by applying the [`Rules`] to that route.
//! Callers (the CLI, the gem's binding, the router's tests, the benchmarks) hold one `Learner`
//! rather than pairing a classifier with rules by hand.

use crate::classifier::{Classifier, Match, RegexHost};
use crate::error::ClassifyError;
use crate::fixed_index::FixedIndex;
use crate::learn::{Entity, LearnResponse, Learned};
use crate::rules::Rules;

/// A classifier and the rules that turn its routes into learn answers. Immutable: share one
/// across threads.
///
/// ```
/// use cells_learn::{Classifier, Learner, RouteDef, Rules, Source};
///
/// let classifier = Classifier::new(vec![
///     RouteDef::new("GET", "/-/profile(.:format)"),
///     RouteDef::new("GET", "/*namespace_id/:project_id(.:format)"),
/// ]).unwrap();
/// let learner = Learner::new(classifier, Rules::gitlab_default());
/// // The host resolves the routable entity to its cell (GitLab: `routes.cell_id`).
/// let answer = learner.learn("GET", b"/gitlab-org/gitlab", |entity| {
///     (entity.key == "gitlab-org/gitlab").then(|| "cell_us0".to_string())
/// }).unwrap();
/// assert_eq!((answer.path.as_str(), answer.cell.as_str(), answer.source), ("/gitlab-org/gitlab", "cell_us0", Source::Routable));
/// ```
#[derive(Debug)]
pub struct Learner {
    classifier: Classifier,
    rules: Rules,
    /// `rules.fixed` by first segment: a learn answer tries the few that could apply.
    fixed: FixedIndex,
}

impl Learner {
    /// Pairs a classifier with its rules.
    pub fn new(classifier: Classifier, rules: Rules) -> Learner {
        let fixed = FixedIndex::new(&rules.fixed);
        Learner { classifier, rules, fixed }
    }

    /// The classifier, for [`Classifier::recognize`] and the other route questions.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The learn endpoint's answer for a request, every dynamic constraint assumed to hold;
    /// `resolve` names the cell of a routable entity (`None`: no cell claims it, so the default
    /// cell answers and the answer is not cached, see [`LearnResponse::decide`]).
    pub fn learn(&self, method: &str, path_info: &[u8], resolve: impl FnOnce(&Entity) -> Option<String>) -> Result<LearnResponse, ClassifyError> {
        Ok(self.learned(method, path_info)?.respond(&self.rules.default_cell, resolve))
    }

    /// What the rules make of the request before a cell is chosen, every dynamic constraint
    /// assumed to hold.
    pub fn learned(&self, method: &str, path_info: &[u8]) -> Result<Learned, ClassifyError> {
        self.learned_with(method, path_info, |_| true)
    }

    /// [`Learner::learned`], with `accept` deciding dynamic constraints and mounted applications
    /// as in [`Classifier::recognize_with`].
    pub fn learned_with<'c, 'p>(&'c self, method: &str, path_info: &'p [u8], accept: impl FnMut(&Match<'c, 'p>) -> bool) -> Result<Learned, ClassifyError> {
        let found = self.classifier.recognize_with(method, path_info, accept)?;
        self.rules.learned_for(&self.fixed, found, path_info)
    }

    /// [`Learner::learned_with`], with `regex` deciding the routes only Ruby's `Regexp` can.
    pub fn learned_with_regex<'c, 'p>(
        &'c self,
        method: &str,
        path_info: &'p [u8],
        accept: impl FnMut(&Match<'c, 'p>) -> bool,
        regex: &mut RegexHost<'_>,
    ) -> Result<Learned, ClassifyError> {
        let found = self.classifier.recognize_with_regex(method, path_info, accept, regex)?;
        self.rules.learned_for(&self.fixed, found, path_info)
    }
}
