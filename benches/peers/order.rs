//! The definition order the peer benchmark gives GitLab's template snapshot, also built by
//! `tests/memory_usage.rs` (issue 17 states the snapshot's figures in this order).

use cells_learn::templates;

/// How specific a template is, segment by segment: a literal segment (0) before a parameter (1)
/// before a glob (2), and a longer template before one that is its prefix (3 ends the key), so
/// that `/*namespace_id/:project_id` comes after `/*namespace_id/:project_id/-/issues`. Optional
/// groups are left out: a template is ranked by the most general path it matches.
fn specificity(template: &str) -> Vec<u8> {
    let mut general = String::new();
    let mut depth = 0;
    for c in template.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => general.push(c),
            _ => {}
        }
    }
    let mut key: Vec<u8> = general
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains('*') {
                2
            } else if s.contains(':') {
                1
            } else {
                0
            }
        })
        .collect();
    key.push(3);
    key
}

/// The snapshot's templates in a definition order a Rails table could have: stable-sorted by
/// [`specificity`]. Alphabetically, `(/-/jira)/*namespace_id/:project_id(.:format)` is route #0
/// and answers almost every example, which measures nothing.
pub fn specific_first(mut ts: Vec<templates::Template>) -> Vec<templates::Template> {
    ts.sort_by_cached_key(|t| specificity(&t.template));
    ts
}
