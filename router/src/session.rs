//! Session cookie fallback for paths that carry no routable key.
//!
//! `/api/graphql` or `/-/cable` name no project or group, so the learn answer can only say
//! "default cell, don't cache". GitLab's own HTTP router then routes by the session cookie,
//! whose value starts with the cell that issued it (`_gitlab_session=cell-<id>-...`): a
//! logged-in user's GraphQL calls go to the cell holding their session. Only answers that
//! really have no owner use it; a routable answer always wins over a cookie a client controls.
//!
//! API clients send no cookie but a token (`PRIVATE-TOKEN`, `Authorization: Bearer`,
//! `JOB-TOKEN`); when `[api_token] pattern` is configured, a token whose value names a cell
//! (the pattern's `cell` group, compared with the cells' `session_id`) routes the same
//! requests the cookie would, and is preferred to it: it names the API caller itself. Token
//! values are never logged or counted anywhere: only the cell they name is used.

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

/// The cell a request the learn answer leaves open goes to: the API token's cell, else the
/// session cookie's, else None (the answer's own cell).
pub fn cell_for(cfg: &Config, headers: &HeaderMap) -> Option<usize> {
    cell_from_token(cfg, headers).or_else(|| cell_from_cookie(cfg, headers))
}

/// The configured cell named by the request's API token (`PRIVATE-TOKEN`, `JOB-TOKEN`,
/// `Authorization: Bearer`), if `[api_token]` is configured and a token matches.
pub fn cell_from_token(cfg: &Config, headers: &HeaderMap) -> Option<usize> {
    let pattern = cfg.api_token_pattern.as_ref()?;
    let bearer = headers.get_all(http::header::AUTHORIZATION).into_iter().filter_map(|v| {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let plain = ["private-token", "job-token"].into_iter().flat_map(|h| headers.get_all(h)).filter_map(|v| v.to_str().ok().map(str::trim));
    plain.chain(bearer).find_map(|token| {
        let id = pattern.captures(token)?.name("cell")?;
        cfg.cells.iter().position(|c| c.session_id == id.as_str())
    })
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
