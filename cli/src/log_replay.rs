//! `cells-learn verify --log FILE`: replays GitLab's structured request logs.
//!
//! `production_json.log` lines (Lograge) name what served a request as `controller`
//! (`Projects::IssuesController`) and `action`; `api_json.log` lines (grape_logging with GitLab's
//! RouteLogger) as `route`, Grape's `route.pattern.origin` (`/api/:version/projects/:id`). For each
//! such line the classifier's route for `method` and `path` (query string dropped) is named the
//! same way (`projects/issues#index`; a Grape spec without its `(.:format)` / `(.json)` suffix)
//! and compared. Lines naming neither (redirects, mounted apps, 404s) are skipped. The same rules
//! as the gem's `Gitlab::Cells::Learn::LogReplay`, so `rake cells:verify` and this agree.

use cells_learn::{Classifier, RouteDef};
use serde_json::Value;

/// One compared request.
pub struct Entry {
    pub line: usize,
    pub method: String,
    pub path: String,
    pub served: String,
    pub named: Option<String>,
}

impl Entry {
    pub fn agrees(&self) -> bool {
        self.named.as_deref() == Some(self.served.as_str())
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {} {}: served by {}, the classifier names {}",
            self.line,
            self.method,
            self.path,
            self.served,
            self.named.as_deref().unwrap_or("no route")
        )
    }
}

/// A replayed log: the compared requests and how many lines were skipped.
pub struct Report {
    pub entries: Vec<Entry>,
    pub skipped: usize,
}

/// `Projects::IssuesController` -> `projects/issues`, as route defaults spell controllers.
pub fn controller_path(class_name: &str) -> String {
    let name = class_name.strip_suffix("Controller").unwrap_or(class_name);
    name.split("::")
        .map(|part| {
            let chars: Vec<char> = part.chars().collect();
            let mut out = String::with_capacity(part.len() + 4);
            for (i, &c) in chars.iter().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    let prev = chars[i - 1];
                    let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                    if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                        out.push('_');
                    }
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A Grape route spec as `api_json.log`'s `route` spells it: without the format suffix.
pub fn grape_origin(spec: &str) -> &str {
    if let Some(open) = spec.rfind("(.") {
        let suffix = &spec[open + 2..];
        if let Some(inner) = suffix.strip_suffix(')') {
            if inner == ":format" || (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|')) {
                return &spec[..open];
            }
        }
    }
    spec
}

fn name(def: &RouteDef) -> String {
    def.endpoint().unwrap_or_else(|| grape_origin(&def.path).to_string())
}

/// Replays `text`. With `ideal`, a route that asks the host holds exactly when it is named as
/// the one that served; otherwise every such route holds.
pub fn replay(classifier: &Classifier, text: &str, ideal: bool, source: &str) -> Result<Report, String> {
    let mut report = Report { entries: Vec::new(), skipped: 0 };
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line).map_err(|e| format!("{source}:{number}: not a JSON log line ({e})"))?;
        let Value::Object(record) = record else {
            return Err(format!("{source}:{number}: expected a JSON object"));
        };
        let text_field = |k: &str| record.get(k).and_then(Value::as_str);
        let (Some(method), Some(path)) = (text_field("method"), text_field("path")) else {
            report.skipped += 1;
            continue;
        };
        let served = match (text_field("controller"), text_field("action"), text_field("route")) {
            (Some(c), Some(a), _) => format!("{}#{a}", controller_path(c)),
            (_, _, Some(r)) => r.to_string(),
            _ => {
                report.skipped += 1;
                continue;
            }
        };
        if !path.starts_with('/') {
            report.skipped += 1;
            continue;
        }
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let decided = classifier.recognize_with(method, path.as_bytes(), |m| !ideal || name(m.route().def()) == served);
        let named = decided.ok().flatten().map(|m| name(m.route().def()));
        report.entries.push(Entry { line: number, method: method.to_string(), path: path.to_string(), served, named });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_paths_as_rails_underscores_them() {
        assert_eq!(controller_path("Projects::IssuesController"), "projects/issues");
        assert_eq!(controller_path("Projects::Settings::CiCdController"), "projects/settings/ci_cd");
        assert_eq!(controller_path("OAuth::AuthorizationsController"), "o_auth/authorizations");
        assert_eq!(controller_path("HTMLExportsController"), "html_exports");
    }

    #[test]
    fn grape_origins_drop_the_format_suffix_only() {
        assert_eq!(grape_origin("/api/:version/projects/:id(.:format)"), "/api/:version/projects/:id");
        assert_eq!(grape_origin("/api/:version/projects/:id(.json)"), "/api/:version/projects/:id");
        assert_eq!(grape_origin("/api/:version/groups/:id/(-/)epics"), "/api/:version/groups/:id/(-/)epics");
    }
}
