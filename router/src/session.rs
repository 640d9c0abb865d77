//! Session cookie fallback for paths that carry no routable key.
//!
//! `/api/graphql` or `/-/cable` name no project or group, so the learn answer can only say
//! "default cell, don't cache". GitLab's own HTTP router then routes by the session cookie,
//! whose value starts with the cell that issued it (`_gitlab_session=cell-<id>-...`): a
//! logged-in user's GraphQL calls go to the cell holding their session. Only answers that
//! really have no owner use it; a routable answer always wins over a cookie a client controls.

use cells_learn::{LearnResponse, Source};
use http::HeaderMap;

use crate::config::Config;

/// True when the answer leaves the choice of cell open: fixed exact-and-uncacheable rules
/// (`/api/graphql`, `/-/cable`) and uncacheable default answers.
pub fn applies(answer: &LearnResponse) -> bool {
    match answer.source {
        Source::Fixed => answer.exact && !answer.cacheable,
        Source::Default => !answer.cacheable,
        Source::Routable => false,
    }
}

/// The configured cell named by the request's session cookie, if any.
pub fn cell_from_cookie(cfg: &Config, headers: &HeaderMap) -> Option<usize> {
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((name, v)) = pair.trim().split_once('=') else { continue };
            if name.trim() != cfg.session_cookie_name {
                continue;
            }
            let v = v.trim().trim_matches('"');
            let Some(caps) = cfg.session_cookie_pattern.captures(v) else { continue };
            let Some(id) = caps.name("cell") else { continue };
            if let Some(i) = cfg.cells.iter().position(|c| c.session_id == id.as_str()) {
                return Some(i);
            }
        }
    }
    None
}
