//! Learn rules: which paths are fixed to a cell, which route parameters name a routable
//! entity, and the default cell. GitLab's defaults ship as `rules/gitlab.json`
//! ([`Rules::gitlab_default`]).
//!
//! ```json
//! {
//!   "default_cell": "cell_0",
//!   "fixed": [
//!     {"path": "/", "exact": true, "cacheable": false},
//!     {"path": "/-/profile", "exact": true, "cell": "cell_0"},
//!     {"path": "/users", "cell": "cell_0"}
//!   ],
//!   "routable": [
//!     {"spec_prefix": "/*namespace_id/:project_id", "params": ["namespace_id", "project_id"], "claim": "route_path"},
//!     {"spec_prefix": "/api/:version/projects/:id", "params": ["id"], "claim": "route_path", "numeric_claim": "project_id"}
//!   ]
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::classifier::Match;
use crate::error::ClassifyError;
use crate::fixed_index::FixedIndex;
use crate::learn::{Entity, EntityKind, Learned, Unrouted};

/// A path pinned to a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedRule {
    /// A normalized path; without `exact`, it covers everything below it on `/` boundaries.
    pub path: String,
    /// Only this exact path (and the router caches only it).
    #[serde(default)]
    pub exact: bool,
    /// The cell; absent means the default cell.
    #[serde(default)]
    pub cell: Option<String>,
    /// `false` for paths the router must never cache (`/`, `/dashboard`).
    #[serde(default = "yes")]
    pub cacheable: bool,
}

fn yes() -> bool {
    true
}

/// Route parameters that name a routable entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutableRule {
    /// Applies to routes whose Journey spec starts with this; absent: to any route.
    #[serde(default)]
    pub spec_prefix: Option<String>,
    /// The parameters whose values, unescaped and joined by `/`, are the entity's key. All must
    /// have matched.
    pub params: Vec<String>,
    /// The entity's kind (the rules file's key is `claim`, the Topology Service's word).
    #[serde(rename = "claim")]
    pub entity: EntityKind,
    /// The entity's kind when the key is all digits (an API `:id` that is a numeric id); the
    /// rules file's key is `numeric_claim`.
    #[serde(default, rename = "numeric_claim")]
    pub numeric_entity: Option<EntityKind>,
}

/// A rule set that is not usable.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Not JSON, or not the rules' shape (an unknown key included).
    #[error("rules JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Well-formed, but a value is not usable: the text names the field (`fixed[2].path`) and why.
    #[error("rules: {0}")]
    Invalid(String),
}

/// The learn rules.
///
/// ```
/// use cells_learn::{Classifier, Learned, Learner, RouteDef, Rules};
///
/// let rules = Rules::from_json(br#"{
///   "default_cell": "cell_0",
///   "fixed": [{"path": "/-/profile", "exact": true}],
///   "routable": [{"spec_prefix": "/*namespace_id/:project_id", "params": ["namespace_id", "project_id"], "claim": "route_path"}]
/// }"#).unwrap();
/// let classifier = Classifier::new(vec![
///     RouteDef::new("GET", "/-/profile(.:format)"),
///     RouteDef::new("GET", "/*namespace_id/:project_id/-/issues(.:format)"),
/// ]).unwrap();
/// let learner = Learner::new(classifier, rules);
/// let Learned::Routable { path, entity, .. } = learner.learned("GET", b"/gitlab-org/gitlab/-/issues").unwrap() else { panic!() };
/// assert_eq!((path.as_str(), entity.key.as_str()), ("/gitlab-org/gitlab", "gitlab-org/gitlab"));
/// assert!(matches!(learner.learned("GET", b"/-/profile").unwrap(), Learned::Fixed { exact: true, .. }));
/// // A rule set that cannot be used is refused with the field at fault.
/// let err = Rules::from_json(br#"{"default_cell": "cell 0"}"#).unwrap_err();
/// assert_eq!(err.to_string(), r#"rules: default_cell "cell 0" is not a cell name"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The cell for unknown routes and entities: the newest cell.
    pub default_cell: String,
    /// Paths pinned to a cell, the first that covers a path winning.
    #[serde(default)]
    pub fixed: Vec<FixedRule>,
    /// Route parameters that name a routable entity, the first that applies winning.
    #[serde(default)]
    pub routable: Vec<RoutableRule>,
}

static GITLAB_DEFAULT: &str = include_str!("../rules/gitlab.json");

impl Rules {
    /// GitLab's defaults (`rules/gitlab.json`).
    pub fn gitlab_default() -> Rules {
        Rules::from_json(GITLAB_DEFAULT.as_bytes()).expect("the shipped rules are valid")
    }

    /// Reads and validates rules in the format above.
    pub fn from_json(bytes: &[u8]) -> Result<Rules, RulesError> {
        let rules: Rules = serde_json::from_slice(bytes)?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks cell names and paths (rules built in code, or read from an artifact).
    pub fn validate(&self) -> Result<(), RulesError> {
        if !is_cell_name(&self.default_cell) {
            return Err(RulesError::Invalid(format!("default_cell {:?} is not a cell name", self.default_cell)));
        }
        for (i, f) in self.fixed.iter().enumerate() {
            if !f.path.starts_with('/') || (f.path.len() > 1 && f.path.ends_with('/')) || f.path.contains("//") {
                return Err(RulesError::Invalid(format!("fixed[{i}].path {:?} is not a normalized path", f.path)));
            }
            if let Some(cell) = &f.cell {
                if !is_cell_name(cell) {
                    return Err(RulesError::Invalid(format!("fixed[{i}].cell {cell:?} is not a cell name")));
                }
            }
        }
        for (i, r) in self.routable.iter().enumerate() {
            if r.params.is_empty() {
                return Err(RulesError::Invalid(format!("routable[{i}] names no params")));
            }
        }
        Ok(())
    }

    /// What the rules make of the route Rails picked (`found`, `None`: no route) for a request
    /// to `path_info`; [`Learner`](crate::Learner) pairs this with the classifier.
    /// `fixed` files this rule list's fixed rules ([`FixedIndex`]): its first applying rule is
    /// [`Rules::fixed_for`]'s.
    pub(crate) fn learned_for(&self, fixed: &FixedIndex, found: Option<Match<'_, '_>>, path_info: &[u8]) -> Result<Learned, ClassifyError> {
        // A match already holds the normalized path.
        let normalized = match &found {
            Some(m) => std::borrow::Cow::Borrowed(m.path()),
            None => crate::normalize::normalize_path(path_info),
        };
        let Ok(path) = std::str::from_utf8(&normalized) else {
            // Not UTF-8, yet no route takes the bytes as a parameter (that would have been a
            // 400, `ClassifyError::ParamNotUtf8`): Rails answers 404 (or a mount serves it), the
            // same on every cell. Its path cannot be JSON text, so the answer names it with the
            // invalid bytes percent-encoded, exact and never cached.
            let path = encode_invalid_utf8(&normalized);
            let reason = if found.is_some() { Unrouted::NoRule } else { Unrouted::NoRoute };
            return Ok(Learned::Default { path, reason, route: found.as_ref().map(Match::route_index) });
        };
        if let Some((fixed, formatted)) = fixed.first(&self.fixed, path) {
            // A format variant (`/help.json` under `/help`) is not below the rule's path on a `/`
            // boundary, so only the exact request path may be cached for it.
            let exact = fixed.exact || formatted;
            return Ok(Learned::Fixed {
                path: if exact { path.to_owned() } else { fixed.path.clone() },
                exact,
                cell: fixed.cell.clone(),
                cacheable: fixed.cacheable,
                route: found.as_ref().map(Match::route_index),
            });
        }
        let Some(m) = &found else {
            return Ok(Learned::Default { path: path.to_owned(), reason: Unrouted::NoRoute, route: None });
        };
        match self.routable_in(m, Some(path))? {
            Some(learned) => Ok(learned),
            None => Ok(Learned::Default { path: path.to_owned(), reason: Unrouted::NoRule, route: Some(m.route_index()) }),
        }
    }

    /// The first fixed rule covering `path`, and whether it covers it only as a format variant:
    /// Rails routes `/help(.:format)` answer `/help.json` too, so a rule for `/help` (exact or
    /// not) covers `/help.json` — but not `/help.json/x` nor `/helpx`.
    pub fn fixed_for(&self, path: &str) -> Option<(&FixedRule, bool)> {
        self.fixed.iter().find_map(|f| crate::fixed_index::applies(f, path).map(|variant| (f, variant)))
    }

    /// The routable entity a matched route names, per the first rule that applies.
    ///
    /// Parameters are found lazily, and only for routes a rule's spec prefix admits; for those a
    /// regex that backtracks past its budget is an error, not a silently missing entity.
    pub fn routable_for(&self, m: &Match<'_, '_>) -> Result<Option<Learned>, ClassifyError> {
        self.routable_in(m, std::str::from_utf8(m.path()).ok())
    }

    /// [`Rules::routable_for`] with `m`'s path as text when it is UTF-8 (`learned_for` has
    /// checked it already; not UTF-8, no entity).
    fn routable_in(&self, m: &Match<'_, '_>, path: Option<&str>) -> Result<Option<Learned>, ClassifyError> {
        debug_assert!(path.is_none_or(|p| p.as_bytes() == m.path()));
        let spec = &m.route().def().path;
        let mut admitted = self.routable.iter().filter(|r| r.spec_prefix.as_deref().is_none_or(|p| spec.starts_with(p))).peekable();
        if admitted.peek().is_some() {
            m.try_spans()?;
        }
        Ok(admitted.find(|r| r.params.iter().all(|p| m.span(p).is_some())).and_then(|rule| Self::entity(rule, m, path)))
    }

    /// The answer `rule` gives for `m`, whose parameters it names are all present.
    fn entity(rule: &RoutableRule, m: &Match<'_, '_>, path: Option<&str>) -> Option<Learned> {
        let path = path?;
        let mut key = Vec::new();
        let mut end = 0;
        for (i, p) in rule.params.iter().enumerate() {
            if i > 0 {
                key.push(b'/');
            }
            key.extend_from_slice(&m.param(p)?);
            end = end.max(m.span(p)?.1);
        }
        let key = String::from_utf8(key).ok()?;
        let kind = match rule.numeric_entity {
            Some(numeric) if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) => numeric,
            _ => rule.entity,
        };
        // Cache the prefix up to the entity when it ends a segment; else only this exact path.
        let (cache_path, exact) = match path.as_bytes().get(end) {
            None | Some(b'/') => (&path[..end], false),
            Some(_) => (path, true),
        };
        Some(Learned::Routable { path: cache_path.to_string(), exact, entity: Entity { kind, key }, route: m.route_index() })
    }
}

/// Cell names as configuration and headers carry them: `cell_us0`, `cell-1`.
pub fn is_cell_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The path as text: valid UTF-8 kept, every invalid byte written `%XX` (as a client escapes it).
fn encode_invalid_utf8(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for chunk in path.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::Classifier;
    use crate::fixed_index::is_format_variant;
    use crate::learn::{LearnResponse, Source};
    use crate::learner::Learner;
    use crate::routes::RouteDef;

    fn classifier() -> Classifier {
        Classifier::new(vec![
            RouteDef::new("GET", "/"),
            RouteDef::new("GET", "/-/profile(.:format)"),
            RouteDef::new("GET", "/*namespace_id/:project_id/-/issues(.:format)"),
            RouteDef::new("GET", "/api/:version/projects/:id/issues(.:format)").regex_requirement("id", "[^/]+", 0),
            RouteDef::new("GET", "/*namespace_id/:project_id(.:format)"),
        ])
        .unwrap()
    }

    fn answer(path: &str) -> LearnResponse {
        let learner = Learner::new(classifier(), Rules::gitlab_default());
        learner
            .learn("GET", path.as_bytes(), |entity| match entity.key.as_str() {
                "gitlab-org/gitlab-test" | "gitlab-org/gitlab" => Some("cell_us0".into()),
                "42" if entity.kind == EntityKind::ProjectId => Some("cell_eu0".into()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn seed_examples() {
        let r = answer("/gitlab-org/gitlab-test/-/issues");
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"path":"/gitlab-org/gitlab-test","cell":"cell_us0","source":"routable"}"#);
        let r = answer("/-/profile");
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"path":"/-/profile","cell":"cell_0","source":"fixed","exact":true}"#);
        let r = answer("/");
        assert_eq!((r.source, r.cacheable, r.exact), (Source::Fixed, false, true));
    }

    #[test]
    fn api_ids_and_formats() {
        let r = answer("/api/v4/projects/42/issues");
        assert_eq!((r.path.as_str(), r.cell.as_str()), ("/api/v4/projects/42", "cell_eu0"));
        let r = answer("/api/v4/projects/gitlab-org%2Fgitlab/issues");
        assert_eq!((r.path.as_str(), r.cell.as_str()), ("/api/v4/projects/gitlab-org%2Fgitlab", "cell_us0"));
        // The entity ends before ".json": only the exact path may be cached.
        let r = answer("/gitlab-org/gitlab.json");
        assert_eq!((r.path.as_str(), r.exact), ("/gitlab-org/gitlab.json", true));
        // An entity no cell claims: still routable (no session cookie may steer it), the
        // default cell, not cached — the same answer the gem's Endpoint gives.
        let r = answer("/someone/else");
        assert_eq!((r.source, r.cacheable), (Source::Routable, false));
    }

    #[test]
    fn fixed_rules_cover_format_variants_exactly() {
        let c = Classifier::new(vec![RouteDef::new("GET", "/help(.:format)"), RouteDef::new("GET", "/-/profile(.:format)")]).unwrap();
        let learner = Learner::new(c, Rules::gitlab_default());
        let learned = |p: &str| learner.learn("GET", p.as_bytes(), |_| None).unwrap();
        let r = learned("/help.json");
        assert_eq!((r.source, r.path.as_str(), r.exact), (Source::Fixed, "/help.json", true));
        let r = learned("/help");
        assert_eq!((r.source, r.path.as_str(), r.exact), (Source::Fixed, "/help", false));
        let r = learned("/-/profile.json");
        assert_eq!((r.source, r.path.as_str(), r.exact), (Source::Fixed, "/-/profile.json", true));
        // Not a format: another segment, or a longer name.
        assert!(!is_format_variant("/help", "/help.json/x"));
        assert!(!is_format_variant("/help", "/helpx"));
        assert!(!is_format_variant("/help", "/help."));
    }

    /// As Rails serves them: a route whose parameter is not UTF-8 once unescaped is a 400
    /// (raw or percent-encoded, the same error); a path no route takes is no route, named with
    /// its invalid bytes percent-encoded and never cached.
    #[test]
    fn non_utf8_paths_answer_as_rails_serves_them() {
        let learner = Learner::new(classifier(), Rules::gitlab_default());
        for path in [&b"/gitlab-org/\xff/-/issues"[..], b"/gitlab-org/%FF/-/issues", b"/gitlab-org/x/-/issues/%ff"] {
            let err = learner.learned("GET", path).unwrap_err();
            assert!(matches!(&err, ClassifyError::ParamNotUtf8 { route: 2 | 4, .. }), "{err}");
        }
        assert!(classifier().recognize("GET", b"/gitlab-org/%FF/-/issues").is_err());
        let c = Learner::new(Classifier::new(vec![RouteDef::new("GET", "/a/:id")]).unwrap(), Rules::gitlab_default());
        let learned = c.learned("GET", b"/b/\xff\xc3\xa9").unwrap();
        assert_eq!(learned, Learned::Default { path: "/b/%FF\u{e9}".into(), reason: Unrouted::NoRoute, route: None });
        assert!(c.classifier().recognize("GET", b"/b/\xff").unwrap().is_none());
        // UTF-8 parameters, raw or escaped, are ordinary text.
        assert!(learner.learned("GET", "/gitlab-org/é/-/issues".as_bytes()).is_ok());
        assert!(learner.learned("GET", b"/gitlab-org/%C3%A9/-/issues").is_ok());
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(Rules::from_json(br#"{"default_cell":"a b"}"#).is_err());
        assert!(Rules::from_json(br#"{"default_cell":"c","fixed":[{"path":"x","cell":"c"}]}"#).is_err());
        assert!(Rules::from_json(br#"{"default_cell":"c","surprise":1}"#).is_err());
    }
}
