//! From a classified request to the answer of `GET /api/v4/cells/learn`.
//!
//! The core decides *what* a request names — a fixed path, a routable entity, or nothing it
//! knows — and leaves *which cell* owns a routable entity to the host: in GitLab, the same
//! lookup that resolves a route path to `routes.cell_id`, or a Topology Service claim. The
//! entity is therefore typed as one of the kinds of claim the Topology Service resolves
//! ([`EntityKind`]); "claim" stays the Topology Service's word (and the rules file's key),
//! "entity" is this crate's.

use serde::{Deserialize, Serialize};

/// How the answer was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The path names an entity (project, group, user...) whose cell the host resolved.
    Routable,
    /// The path is pinned to a cell by the rules.
    Fixed,
    /// Nothing routable or fixed: the default (newest) cell answers.
    Default,
}

impl Source {
    /// Every source, in declaration order (`ALL[s as usize] == s`).
    pub const ALL: [Source; 3] = [Source::Routable, Source::Fixed, Source::Default];

    /// `routable`, `fixed` or `default`, as the answer's JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Routable => "routable",
            Source::Fixed => "fixed",
            Source::Default => "default",
        }
    }
}

/// The learn endpoint's JSON answer; the router reads the same type.
///
/// `{"path":"/gitlab-org/gitlab-test","cell":"cell_0","source":"routable"}` means "send every
/// path under this prefix to `cell_0`"; `"exact":true` limits that to the path itself;
/// `"cacheable":false` (only written when false) asks the router not to cache it at all.
///
/// During a deploy cells run different route tables, and two cells may answer the same path
/// differently. `"routes_digest"` names the table the answering cell classified with (the
/// gem's artifact digest) and `"routes_version"` orders tables (larger is newer: the deploy's
/// build time or pipeline number), so the router asks the newest table first and never lets an
/// older table's answer replace a newer one's. Both are optional: answers without them (older
/// gems, the CLI without `--routes-version`) stay valid and rank below any versioned table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnResponse {
    /// The path the answer is for: a prefix of the request path, or (with `exact`) the path itself.
    pub path: String,
    /// The cell that serves it.
    pub cell: String,
    /// How the answer was decided.
    pub source: Source,
    /// Only `path` itself, not the paths below it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exact: bool,
    /// Whether the router may cache the answer (only written when false).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub cacheable: bool,
    /// The digest of the route table that decided it, when the cell knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_digest: Option<String>,
    /// That table's version (larger is newer), when the cell knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_version: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_true(b: &bool) -> bool {
    *b
}
fn yes() -> bool {
    true
}

impl LearnResponse {
    /// The one rule from a classification to the learn answer, shared by the CLI
    /// ([`Learned::respond`]) and the gem's Endpoint (through the binding), so the two cannot
    /// disagree. `cell` is the resolver's cell for a routable entity, the rule's cell for a
    /// fixed path (`None`: the default cell), and is ignored for default answers.
    ///
    /// An entity no cell claims (`Routable` with no cell) stays `routable`, goes to the default
    /// cell and is not cached: the path names an entity, so the router must not let a session
    /// cookie (which the client controls) pick its cell, as it may for `default` answers that
    /// name nothing; and not caching it lets the entity's cell take over as soon as one claims
    /// it (a namespace created a moment later).
    ///
    /// ```
    /// use cells_learn::{LearnResponse, Source};
    /// let a = LearnResponse::decide(Source::Routable, "/new-group", false, true, None, "cell_1");
    /// assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"path":"/new-group","cell":"cell_1","source":"routable","cacheable":false}"#);
    /// ```
    pub fn decide(source: Source, path: &str, exact: bool, cacheable: bool, cell: Option<String>, default_cell: &str) -> LearnResponse {
        let (cell, exact, cacheable) = match (source, cell) {
            (Source::Routable, Some(cell)) => (cell, exact, cacheable),
            (Source::Routable, None) => (default_cell.to_string(), exact, false),
            (Source::Fixed, cell) => (cell.unwrap_or_else(|| default_cell.to_string()), exact, cacheable),
            (Source::Default, _) => (default_cell.to_string(), true, false),
        };
        LearnResponse { path: path.to_string(), cell, source, exact, cacheable, routes_digest: None, routes_version: None }
    }

    /// The answer tagged with the route table it was decided by (see the type's documentation).
    ///
    /// ```
    /// use cells_learn::{LearnResponse, Source};
    /// let a = LearnResponse::decide(Source::Fixed, "/-/ml", false, true, None, "cell_0").with_table(Some("ab12".into()), Some(7));
    /// assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"path":"/-/ml","cell":"cell_0","source":"fixed","routes_digest":"ab12","routes_version":7}"#);
    /// ```
    pub fn with_table(mut self, routes_digest: Option<String>, routes_version: Option<u64>) -> LearnResponse {
        self.routes_digest = routes_digest;
        self.routes_version = routes_version;
        self
    }

    /// True when the router may use this answer for `request_path`: the answer's path is the
    /// request path itself, or (for a prefix answer) a prefix of it that ends on a `/` boundary.
    /// Anything else would let one answer steer unrelated paths.
    pub fn covers(&self, request_path: &str) -> bool {
        if self.exact {
            return self.path == request_path;
        }
        covers_prefix(&self.path, request_path)
    }
}

/// `/my-company` covers `/my-company` and `/my-company/x`, not `/my-companyx`; `/` covers everything.
pub fn covers_prefix(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The kinds of routable entity: the kinds of claim GitLab's Topology Service resolves to a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A full route path, `gitlab-org/gitlab` (GitLab's `routes.path`).
    RoutePath,
    /// An organization's path.
    OrganizationPath,
    /// A namespace's numeric id.
    NamespaceId,
    /// A project's numeric id (an API `:id` of digits).
    ProjectId,
    /// A user's numeric id.
    UserId,
    /// A username.
    Username,
}

impl EntityKind {
    /// Every kind, in declaration order (`ALL[k as usize] == k`).
    pub const ALL: [EntityKind; 6] =
        [EntityKind::RoutePath, EntityKind::OrganizationPath, EntityKind::NamespaceId, EntityKind::ProjectId, EntityKind::UserId, EntityKind::Username];

    /// The kind's name as the rules file and the gem write it (`route_path`...).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::RoutePath => "route_path",
            EntityKind::OrganizationPath => "organization_path",
            EntityKind::NamespaceId => "namespace_id",
            EntityKind::ProjectId => "project_id",
            EntityKind::UserId => "user_id",
            EntityKind::Username => "username",
        }
    }
}

/// A routable entity: what the host resolves to a cell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entity {
    /// What kind of entity the key names.
    pub kind: EntityKind,
    /// The key, e.g. `gitlab-org/gitlab` or `42`.
    pub key: String,
}

/// Why a request is answered by the default cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unrouted {
    /// No route matches the method and path.
    NoRoute,
    /// A route matches, but no rule makes it routable or fixed.
    NoRule,
}

impl Unrouted {
    /// Every reason, in declaration order (`ALL[r as usize] == r`).
    pub const ALL: [Unrouted; 2] = [Unrouted::NoRoute, Unrouted::NoRule];

    /// `no_route` or `no_rule`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unrouted::NoRoute => "no_route",
            Unrouted::NoRule => "no_rule",
        }
    }
}

/// What the classifier learned, before the host picks a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Learned {
    /// The route names a routable entity; the host resolves its cell.
    Routable {
        /// The path to cache: the request path up to the entity's end, or the whole path.
        path: String,
        /// Only `path` itself (the entity does not end a segment).
        exact: bool,
        /// The entity.
        entity: Entity,
        /// The route's index.
        route: usize,
    },
    /// A fixed rule covers the path.
    Fixed {
        /// The rule's path, or the exact request path.
        path: String,
        /// Only `path` itself.
        exact: bool,
        /// The rule's cell (`None`: the default cell).
        cell: Option<String>,
        /// The rule's `cacheable`.
        cacheable: bool,
        /// The route's index, if a route matched.
        route: Option<usize>,
    },
    /// Neither: the default cell answers, exact and uncached.
    Default {
        /// The normalized request path (invalid UTF-8 percent-encoded).
        path: String,
        /// Why.
        reason: Unrouted,
        /// The route's index, if a route matched.
        route: Option<usize>,
    },
}

impl Learned {
    /// The path the answer is about (the prefix to cache, or the exact path).
    pub fn path(&self) -> &str {
        match self {
            Learned::Routable { path, .. } | Learned::Fixed { path, .. } | Learned::Default { path, .. } => path,
        }
    }

    /// The matched route's index, if a route matched.
    pub fn route(&self) -> Option<usize> {
        match self {
            Learned::Routable { route, .. } => Some(*route),
            Learned::Fixed { route, .. } | Learned::Default { route, .. } => *route,
        }
    }

    /// The answer, with `resolve` naming the cell of a routable entity (`None`: unknown
    /// entity, answered by the default cell and not cached).
    pub fn respond(&self, default_cell: &str, resolve: impl FnOnce(&Entity) -> Option<String>) -> LearnResponse {
        match self {
            Learned::Routable { path, exact, entity, .. } => LearnResponse::decide(Source::Routable, path, *exact, true, resolve(entity), default_cell),
            Learned::Fixed { path, exact, cell, cacheable, .. } => LearnResponse::decide(Source::Fixed, path, *exact, *cacheable, cell.clone(), default_cell),
            Learned::Default { path, .. } => LearnResponse::decide(Source::Default, path, true, false, None, default_cell),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_seed_does() {
        let r = LearnResponse::decide(Source::Routable, "/gitlab-org/gitlab-test", false, true, Some("cell_0".into()), "cell_0");
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"path":"/gitlab-org/gitlab-test","cell":"cell_0","source":"routable"}"#);
        let r = LearnResponse::decide(Source::Fixed, "/-/profile", true, true, None, "cell_0");
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"path":"/-/profile","cell":"cell_0","source":"fixed","exact":true}"#);
        let back: LearnResponse = serde_json::from_str(r#"{"path":"/","cell":"c","source":"fixed","exact":true,"cacheable":false}"#).unwrap();
        assert!(!back.cacheable);
        assert_eq!((back.routes_digest, back.routes_version), (None, None), "answers without a table stay valid");
        let back: LearnResponse = serde_json::from_str(r#"{"path":"/a","cell":"c","source":"routable","routes_digest":"ff","routes_version":3}"#).unwrap();
        assert_eq!((back.routes_digest.as_deref(), back.routes_version), (Some("ff"), Some(3)));
    }

    #[test]
    fn variant_lists_are_in_declaration_order_and_named_as_serialized() {
        for (i, k) in EntityKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
            assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{}\"", k.as_str()));
        }
        for (i, s) in Source::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        for (i, r) in Unrouted::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{}\"", r.as_str()));
        }
    }

    #[test]
    fn prefixes_cover_on_segment_boundaries_only() {
        assert!(covers_prefix("/my-company", "/my-company"));
        assert!(covers_prefix("/my-company", "/my-company/x"));
        assert!(!covers_prefix("/my-company", "/my-companyx"));
        assert!(!covers_prefix("/my-company", "/my"));
        assert!(covers_prefix("/", "/anything"));
    }
}
