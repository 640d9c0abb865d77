//! Route definitions: the JSON format of `shared/corpus/*-routes.json` and a builder API.
//!
//! A route is what Rails knows of it: verb(s), Journey path spec, per-parameter requirements
//! (Ruby regex source and options, or a literal string), and its place in definition order,
//! which decides ties exactly as Journey's `precedence` does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A parameter requirement, as `route.requirements` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Requirement {
    /// A Ruby regex: `Regexp#source` and `Regexp#options` (1 = i, 2 = x, 4 = m).
    Regex {
        /// `Regexp#source`.
        source: String,
        /// `Regexp#options`.
        #[serde(default)]
        options: u32,
    },
    /// A fixed string (`Regexp.union("v4")` matches it literally).
    Literal {
        /// The string.
        literal: String,
    },
}

impl Requirement {
    /// A Ruby regex without options.
    pub fn regex(source: impl Into<String>) -> Self {
        Requirement::Regex { source: source.into(), options: 0 }
    }

    /// A fixed string.
    pub fn literal(text: impl Into<String>) -> Self {
        Requirement::Literal { literal: text.into() }
    }
}

/// One route, in the corpus' JSON shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteDef {
    /// Position in definition order; when given for every route, the table is ordered by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// `"GET"`, `"GET|POST"`, or `""` for any verb.
    #[serde(default)]
    pub verb: String,
    /// The Journey path spec, e.g. `/*namespace_id/:project_id/-/issues(.:format)`.
    pub path: String,
    /// The route's name (`project_issues`), if it has one.
    #[serde(default)]
    pub name: Option<String>,
    /// Per parameter, the requirement its value must meet (Journey's default otherwise:
    /// `[^/.?]+`, or `.+?` for a glob).
    #[serde(default)]
    pub requirements: BTreeMap<String, Requirement>,
    /// `controller`, `action`, and any default such as `format`.
    #[serde(default)]
    pub defaults: BTreeMap<String, serde_json::Value>,
    /// Rails also asks a constraint object or lambda at request time (decided by the host).
    #[serde(default)]
    pub dynamic_constraints: bool,
    /// A mounted Rack application: the path is a prefix.
    #[serde(default)]
    pub mounted: bool,
    /// Among its dynamic constraints are request conditions (`subdomain:`, `host:`, `port:`),
    /// which Journey checks before choosing between the routes drawn for HEAD and the GET
    /// routes (`match_head_routes`); the host is asked about them alone there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_conditions: bool,
    /// Literal characters after this leading part of the path spec (the Rails mount a Grape API
    /// is reached through, `""` for none) also match percent-encoded (`/%75sers` is `/users`),
    /// as Grape's router (Mustermann) matches them; Journey's do not. Set by the gem's Grape
    /// extraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_literals_after: Option<String>,
}

impl RouteDef {
    /// A route for `verb` (`"GET"`, `"GET|POST"`, `""` for any) and a Journey path spec.
    pub fn new(verb: impl Into<String>, path: impl Into<String>) -> Self {
        RouteDef {
            index: None,
            verb: verb.into(),
            path: path.into(),
            name: None,
            requirements: BTreeMap::new(),
            defaults: BTreeMap::new(),
            dynamic_constraints: false,
            mounted: false,
            request_conditions: false,
            encoded_literals_after: None,
        }
    }

    /// With a requirement on `param`.
    pub fn requirement(mut self, param: impl Into<String>, requirement: Requirement) -> Self {
        self.requirements.insert(param.into(), requirement);
        self
    }

    /// With a Ruby regex requirement on `param`.
    pub fn regex_requirement(self, param: impl Into<String>, source: impl Into<String>, options: u32) -> Self {
        self.requirement(param, Requirement::Regex { source: source.into(), options })
    }

    /// With a route name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Served by `controller#action`.
    pub fn to(mut self, controller: &str, action: &str) -> Self {
        self.defaults.insert("controller".into(), controller.into());
        self.defaults.insert("action".into(), action.into());
        self
    }

    /// With dynamic constraints the host decides (a constraint object or lambda).
    pub fn dynamic(mut self) -> Self {
        self.dynamic_constraints = true;
        self
    }

    /// Request conditions (`subdomain:`...) the host decides; see [`RouteDef::request_conditions`].
    pub fn conditions(mut self) -> Self {
        self.request_conditions = true;
        self.dynamic_constraints = true;
        self
    }

    /// A mounted Rack application (the path is a prefix; the host decides whether it answers).
    pub fn mounted(mut self) -> Self {
        self.mounted = true;
        self
    }

    /// Whether the host decides at request time if this route answers: Rails asks its
    /// constraint objects and lambdas (`dynamic_constraints`), and a mounted Rack application
    /// may answer `X-Cascade: pass` (a Grape API mounted at `/` claims only `/api`), which no
    /// route table records. Both are offered to the host's callback in Rails' order.
    pub fn asks_host(&self) -> bool {
        self.dynamic_constraints || self.mounted || self.request_conditions
    }

    /// `controller#action`, when the defaults name them.
    pub fn endpoint(&self) -> Option<String> {
        let c = self.defaults.get("controller")?.as_str()?;
        let a = self.defaults.get("action").and_then(|a| a.as_str()).unwrap_or("");
        Some(format!("{c}#{a}"))
    }
}

/// The verbs a route answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verbs {
    /// Every verb (`""`: `match ... via: :all`, mounts).
    Any,
    /// These verbs only (the classifier still answers HEAD with GET routes when no route names
    /// HEAD, as Journey does).
    Only(Vec<Box<str>>),
}

impl Verbs {
    /// Parses Rails' `route.verb` (`""`, `"GET"`, `"GET|POST"`).
    pub fn parse(verb: &str) -> Option<Verbs> {
        if verb.is_empty() {
            return Some(Verbs::Any);
        }
        let verbs: Vec<Box<str>> = verb.split('|').map(|v| v.trim().into()).collect();
        verbs.iter().all(|v| is_method_token(v)).then_some(Verbs::Only(verbs))
    }

    /// Whether a request with this (upper-case) method may take the route.
    #[inline]
    pub fn allows(&self, method: &str) -> bool {
        match self {
            Verbs::Any => true,
            Verbs::Only(v) => v.iter().any(|x| &**x == method),
        }
    }

    /// Journey's `requires_matching_verb?`.
    pub fn is_specific(&self) -> bool {
        matches!(self, Verbs::Only(_))
    }
}

/// An HTTP method as Rails accepts it: an upper-case token.
pub fn is_method_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
}

/// Reads a route table in the corpus' JSON format.
pub fn from_json(bytes: &[u8]) -> Result<Vec<RouteDef>, serde_json::Error> {
    serde_json::from_slice(bytes)
}
