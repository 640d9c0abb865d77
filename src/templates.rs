//! GitLab's own route snapshot (`config/routing/gitlab_routes.json`, as exported for its HTTP
//! router): templates with example URLs, no verbs, no requirements, in alphabetical order.

use serde::Deserialize;

use crate::routes::RouteDef;

/// One template of the snapshot.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// The Journey path spec, e.g. `/*namespace_id/:project_id/-/issues`.
    pub template: String,
    /// An example URL the template matches.
    #[serde(default)]
    pub example: Option<String>,
    /// Whether the route takes `(.:format)`.
    #[serde(default)]
    pub accepts_format: bool,
    /// An example URL with a format (`.json`).
    #[serde(default)]
    pub dotted_example: Option<String>,
}

impl Template {
    /// The route Rails would have drawn: any verb, default requirements, `(.:format)` when accepted.
    pub fn to_route(&self, index: usize) -> RouteDef {
        let mut path = self.template.clone();
        // A template that already names `:format` (`/-/archive/*id.:format`) takes no second one.
        if self.accepts_format && !path.contains(":format") {
            path.push_str("(.:format)");
        }
        let mut def = RouteDef::new("", path);
        def.index = Some(index);
        def
    }
}

/// Reads a template snapshot.
pub fn from_json(bytes: &[u8]) -> Result<Vec<Template>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// True when a JSON route file is a template snapshot rather than a route table.
pub fn looks_like_templates(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    text.contains("\"template\"") && !text.contains("\"verb\"")
}
