//! Configuration: a TOML file (the contract in the project's common context) plus command-line
//! flags that override it.
//!
//! Everything is validated once, at start, into a [`Config`] that the rest of the router can
//! trust without re-checking: a router that starts with a typo in a cell URL would only fail
//! later, per request, which is much harder to diagnose than `cells-router: <reason>` and exit 2.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use regex::Regex;
use serde::Deserialize;

/// Why the configuration was refused; printed as one line, `cells-router: <reason>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// Command-line flags. Every flag overrides the same setting of the `--config` file.
#[derive(Debug, Parser, Default)]
#[command(
    name = "cells-router",
    version,
    about = "The stateless GitLab Cells router: learns which cell owns a path from the cells, caches the answer and proxies each request exactly once."
)]
pub struct Args {
    /// TOML configuration file (see router/README.md for every key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Address of the internal listener serving /-/cells-router/health and /metrics (overrides
    /// `internal_listen`; default 127.0.0.1:9190; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub internal_listen: Option<String>,
    /// How often a down cell is probed, e.g. 250ms (overrides `breaker.probe_interval`).
    #[arg(long, value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub probe_interval: Option<Duration>,
    /// Router name shown in logs and in the trace header (overrides `name`).
    #[arg(long)]
    pub name: Option<String>,
    /// Cell that answers unknown routes (overrides `default_cell`).
    #[arg(long, value_name = "CELL")]
    pub default_cell: Option<String>,
    /// A cell, `name=http://host:port`; repeat for each cell. When given, replaces the file's `[[cells]]`.
    #[arg(long = "cell", value_name = "NAME=URL")]
    pub cells: Vec<String>,
    /// Path of the learn endpoint on every cell (overrides `learn_path`).
    #[arg(long, value_name = "PATH")]
    pub learn_path: Option<String>,
    /// File holding the shared secret sent with learn requests (overrides `learn_token_file`;
    /// without either, `CELLS_ROUTER_LEARN_TOKEN` is read).
    #[arg(long, value_name = "FILE")]
    pub learn_token_file: Option<PathBuf>,
    /// Add the X-Cells-Router-Trace header to responses (overrides `trace_header`).
    #[arg(long)]
    pub trace_header: bool,
    /// Log format: `json` (one object per line) or `compact`.
    #[arg(long, default_value = "json", value_parser = ["json", "compact"])]
    pub log_format: String,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG wins when set.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Worker threads, each an event loop with its own upstream connection pool (overrides
    /// `workers`; default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// How long an idle connection to a cell may be reused, e.g. `10s` (overrides
    /// `upstream.idle_timeout`; keep it below the cells' keep-alive timeout).
    #[arg(long, value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub upstream_idle_timeout: Option<Duration>,
    /// Redis URL of the shared second-level route cache, `redis://HOST:PORT` (overrides
    /// `cache.shared.url`).
    #[arg(long, value_name = "URL")]
    pub shared_cache: Option<String>,
    /// File holding the token that authenticates purges on the internal listener (overrides
    /// `purge_token_file`; without either, `CELLS_ROUTER_PURGE_TOKEN` is read).
    #[arg(long, value_name = "FILE")]
    pub purge_token_file: Option<PathBuf>,
}

/// The file as written; every section and key is optional except what validation requires.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: Option<String>,
    listen: Option<String>,
    internal_listen: Option<String>,
    default_cell: Option<String>,
    learn_path: Option<String>,
    learn_token_file: Option<PathBuf>,
    purge_token_file: Option<PathBuf>,
    reserved_prefixes: Option<Vec<String>>,
    trace_header: Option<bool>,
    trust_forwarded_headers: Option<bool>,
    workers: Option<usize>,
    #[serde(default)]
    cache: CacheSection,
    #[serde(default)]
    timeouts: TimeoutSection,
    #[serde(default)]
    not_found_delay: NotFoundSection,
    #[serde(default)]
    session_cookie: SessionSection,
    api_token: Option<ApiTokenSection>,
    #[serde(default)]
    limits: LimitSection,
    #[serde(default)]
    upstream: UpstreamSection,
    #[serde(default)]
    breaker: BreakerSection,
    #[serde(default)]
    cells: Vec<CellSection>,
}

/// The router's connections to the cells.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct UpstreamSection {
    /// A pooled connection idle this long is closed rather than reused. It must stay below the
    /// cells' own keep-alive timeout (Puma's `persistent_timeout`: 20 s by default), so that the
    /// router, not the cell, closes an idle connection: a cell that closes one just as the router
    /// sends on it loses that request (see `upstream.rs`).
    #[serde(with = "humantime_serde")]
    idle_timeout: Duration,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        UpstreamSection { idle_timeout: DEFAULT_UPSTREAM_IDLE_TIMEOUT }
    }
}

/// Half of Puma's default `persistent_timeout` (20 s, `Puma::Const::PERSISTENT_TIMEOUT` in
/// Puma 5 and 6); Workhorse's Go `http.Server` sets no idle timeout, so it never closes first.
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CacheSection {
    #[serde(with = "humantime_serde")]
    ttl: Duration,
    capacity: u64,
    #[serde(with = "humantime_serde")]
    stale_grace: Duration,
    shared: Option<SharedSection>,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection { ttl: Duration::from_secs(60), capacity: 100_000, stale_grace: Duration::from_secs(300), shared: None }
    }
}

/// `[cache.shared]`: the Redis second-level cache (see `shared.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedSection {
    url: Option<String>,
    #[serde(default = "default_shared_budget", with = "humantime_serde")]
    budget: Duration,
    #[serde(default = "default_shared_namespace")]
    namespace: String,
}

/// A Redis round trip on the same network is well under a millisecond; 5 ms leaves room for a
/// busy Redis without letting a slow one add more than that to a cache miss.
pub const DEFAULT_SHARED_BUDGET: Duration = Duration::from_millis(5);

fn default_shared_budget() -> Duration {
    DEFAULT_SHARED_BUDGET
}

fn default_shared_namespace() -> String {
    "cells-router:".into()
}

/// `[api_token]`: API tokens that carry their cell, like the session cookie (see `session.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiTokenSection {
    pattern: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TimeoutSection {
    #[serde(with = "humantime_serde")]
    connect: Duration,
    #[serde(with = "humantime_serde")]
    learn: Duration,
    #[serde(with = "humantime_serde")]
    request: Duration,
    #[serde(with = "humantime_serde")]
    header_read: Duration,
    #[serde(with = "humantime_serde")]
    response_idle: Duration,
    #[serde(with = "humantime_serde")]
    client_write: Duration,
    #[serde(with = "humantime_serde")]
    shutdown: Duration,
}

/// How long a cell's answer may stop mid-body before it is cut: GitLab's bundled nginx allows
/// as long between two reads from Workhorse (`nginx['proxy_read_timeout']`, 3600 s), long enough
/// for any stream that moves at all (git's sideband keep-alives come every 5 s), while a hung
/// worker no longer holds its client's connection for ever.
pub const DEFAULT_RESPONSE_IDLE: Duration = Duration::from_secs(3600);

/// How long a client may take no byte of its answer before it is disconnected: nginx's
/// `send_timeout` default (see [`crate::client_write`]).
pub const DEFAULT_CLIENT_WRITE: Duration = Duration::from_secs(60);

impl Default for TimeoutSection {
    fn default() -> Self {
        TimeoutSection {
            connect: Duration::from_secs(1),
            learn: Duration::from_secs(2),
            request: Duration::from_secs(60),
            header_read: Duration::from_secs(30),
            response_idle: DEFAULT_RESPONSE_IDLE,
            client_write: DEFAULT_CLIENT_WRITE,
            shutdown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NotFoundSection {
    #[serde(with = "humantime_serde")]
    max: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SessionSection {
    name: String,
    pattern: String,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection { name: "_gitlab_session".into(), pattern: "^cell-(?<cell>[a-z0-9_]+)-".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LimitSection {
    max_header_bytes: usize,
    max_path_bytes: usize,
}

impl Default for LimitSection {
    fn default() -> Self {
        LimitSection { max_header_bytes: 64 * 1024, max_path_bytes: 8192 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BreakerSection {
    #[serde(with = "humantime_serde")]
    probe_interval: Duration,
    #[serde(with = "humantime_serde")]
    relearn_interval: Duration,
    probe: String,
    probe_path: String,
    #[serde(with = "humantime_serde")]
    table_refresh: Duration,
}

impl Default for BreakerSection {
    fn default() -> Self {
        BreakerSection {
            probe_interval: Duration::from_millis(250),
            relearn_interval: Duration::from_secs(5),
            probe: "http".into(),
            probe_path: "/-/readiness".into(),
            table_refresh: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CellSection {
    name: String,
    url: String,
    session_id: Option<String>,
}

/// One configured cell.
#[derive(Clone, Debug)]
pub struct CellConfig {
    pub name: String,
    /// `http://host:port`, no path: the router appends the request's path and query.
    pub url: http::Uri,
    /// The `host:port` to dial.
    pub authority: String,
    /// The URL's authority as written: the `Host` of requests that carry none (the router's
    /// learn requests, HTTP/1.0 clients).
    pub uri_authority: http::uri::Authority,
    /// What the session cookie's `cell` capture must equal to name this cell (defaults to `name`).
    pub session_id: String,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub listen: SocketAddr,
    /// Where `/-/cells-router/health` and `/-/cells-router/metrics` are served (never on `listen`).
    pub internal_listen: SocketAddr,
    pub default_cell: String,
    pub learn_path: String,
    /// The shared secret the router's learn requests carry (`X-Gitlab-Cell-Learn-Token`); None
    /// when neither `learn_token_file` nor `CELLS_ROUTER_LEARN_TOKEN` gives one.
    pub learn_token: Option<LearnToken>,
    /// Paths that contain many cells' entities (`/api/v4/projects`, `/groups`, `/-`, ...),
    /// normalized: a prefix answer or cache header covering one of them needs another cell's
    /// agreement (see `trust`).
    pub reserved_prefixes: Vec<String>,
    pub trace_header: bool,
    /// When false (the default) X-Forwarded-* and X-Real-IP from clients are replaced, not extended, and Forwarded is dropped.
    pub trust_forwarded_headers: bool,
    /// Worker threads of the binary (each runs its own event loop and upstream pool).
    pub workers: usize,
    pub cache_ttl: Duration,
    pub cache_capacity: u64,
    pub stale_grace: Duration,
    pub connect_timeout: Duration,
    pub learn_timeout: Duration,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    /// The longest a cell's answer may stop mid-body before it is cut (`timeouts.response_idle`).
    pub response_idle_timeout: Duration,
    /// The longest a write to a client may stay blocked (`timeouts.client_write`).
    pub client_write_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub not_found_delay_max: Duration,
    pub session_cookie_name: String,
    pub session_cookie_pattern: Regex,
    /// `PRIVATE-TOKEN`, `Authorization: Bearer` and `JOB-TOKEN` values matching this (its `cell`
    /// group names a cell by `session_id`) route requests the learn answer leaves open; None: off.
    pub api_token_pattern: Option<Regex>,
    /// The shared second-level cache on Redis; None: each router learns alone.
    pub shared_cache: Option<crate::shared::SharedConfig>,
    /// The token `DELETE /-/cells-router/cache` must carry; None: purges are refused.
    pub purge_token: Option<PurgeToken>,
    pub max_header_bytes: usize,
    pub max_path_bytes: usize,
    /// How long a pooled connection to a cell may stay idle and still be reused.
    pub upstream_idle_timeout: Duration,
    /// How often a cell whose breaker is open is probed (see [`crate::breaker`]).
    pub probe_interval: Duration,
    /// How a down cell is probed.
    pub probe: crate::breaker::Probe,
    /// While a cell is down, each of its cached entries is relearned at most once per this.
    pub relearn_interval: Duration,
    /// How often every cell's health answer is read for its route table (at start, then every
    /// this; zero: only learn answers tell). See [`crate::tables`].
    pub table_refresh: Duration,
    pub cells: Vec<CellConfig>,
}

/// The environment variable read for the learn token when no `learn_token_file` is configured.
pub const LEARN_TOKEN_ENV: &str = "CELLS_ROUTER_LEARN_TOKEN";
/// The environment variable read for the purge token when no `purge_token_file` is configured.
pub const PURGE_TOKEN_ENV: &str = "CELLS_ROUTER_PURGE_TOKEN";

/// GitLab's top-level routes that hold many cells' entities (or route to one fixed cell for all
/// users): a prefix answer covering one of them would send every entity below it to one cell.
/// Entities sit one segment below (`/groups/gitlab-org`, `/api/v4/projects/42`, `/-/profile`).
pub const DEFAULT_RESERVED_PREFIXES: [&str; 21] = [
    "/-",
    "/admin",
    "/api",
    "/api/v4",
    "/api/v4/groups",
    "/api/v4/namespaces",
    "/api/v4/projects",
    "/api/v4/users",
    "/dashboard",
    "/explore",
    "/groups",
    "/help",
    "/import",
    "/o",
    "/oauth",
    "/projects",
    "/search",
    "/snippets",
    "/uploads",
    "/users",
    "/v2",
];

/// The learn token: a secret, so its `Debug` form is redacted and the header value is marked
/// sensitive (hyper never indexes it; the router never logs it).
#[derive(Clone)]
pub struct LearnToken(http::HeaderValue);

impl LearnToken {
    /// Validates a token as read (one trailing newline dropped, as `echo` writes files);
    /// `source` names where it came from, for errors that never include the token itself.
    pub fn parse(raw: &str, source: &str) -> Result<LearnToken, ConfigError> {
        let token = raw.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(raw);
        if token.is_empty() {
            return Err(invalid(format!("the learn token in {source} is empty")));
        }
        if token.len() > 1024 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(format!("the learn token in {source} must be 1 to 1024 visible ASCII characters (no spaces or control characters)")));
        }
        let mut v = http::HeaderValue::from_str(token).map_err(|_| invalid(format!("the learn token in {source} is not a valid header value")))?;
        v.set_sensitive(true);
        Ok(LearnToken(v))
    }

    pub fn header_value(&self) -> &http::HeaderValue {
        &self.0
    }
}

impl std::fmt::Debug for LearnToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LearnToken(<redacted>)")
    }
}

/// The purge token: compared in constant time, never logged (its `Debug` form is redacted).
#[derive(Clone)]
pub struct PurgeToken(Vec<u8>);

impl PurgeToken {
    /// Validates a token as read, like [`LearnToken::parse`] (one trailing newline dropped).
    pub fn parse(raw: &str, source: &str) -> Result<PurgeToken, ConfigError> {
        let v = LearnToken::parse(raw, source).map_err(|e| invalid(e.to_string().replace("learn token", "purge token")))?;
        Ok(PurgeToken(v.0.as_bytes().to_vec()))
    }

    /// True when `offered` is the token. The time taken depends on the lengths only, never on
    /// where the first differing byte is.
    pub fn matches(&self, offered: &[u8]) -> bool {
        let mut diff = (self.0.len() ^ offered.len()) as u8 | u8::from(self.0.len() != offered.len());
        for (i, b) in self.0.iter().enumerate() {
            diff |= b ^ offered.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

impl std::fmt::Debug for PurgeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurgeToken(<redacted>)")
    }
}

/// Reads the purge token: `--purge-token-file`, else `purge_token_file`, else the environment.
fn purge_token(flag: Option<&PathBuf>, file: Option<PathBuf>, env: Option<String>) -> Result<Option<PurgeToken>, ConfigError> {
    if let Some(path) = flag.cloned().or(file) {
        let text = std::fs::read_to_string(&path).map_err(|e| invalid(format!("cannot read purge_token_file {}: {e}", path.display())))?;
        return PurgeToken::parse(&text, &format!("purge_token_file {}", path.display())).map(Some);
    }
    env.map(|t| PurgeToken::parse(&t, PURGE_TOKEN_ENV)).transpose()
}

/// Validates `[cache.shared]` / `--shared-cache`. The URL is never repeated in an error: it
/// may hold a password.
fn shared_cache(flag: Option<&String>, section: Option<SharedSection>) -> Result<Option<crate::shared::SharedConfig>, ConfigError> {
    let (budget, namespace) = section.as_ref().map_or((DEFAULT_SHARED_BUDGET, default_shared_namespace()), |s| (s.budget, s.namespace.clone()));
    let Some(url) = flag.cloned().or(section.and_then(|s| s.url)) else {
        return Ok(None);
    };
    if !url.starts_with("redis://") {
        return Err(invalid("invalid cache.shared.url (expected redis://HOST:PORT)"));
    }
    redis::Client::open(url.as_str()).map_err(|e| invalid(format!("invalid cache.shared.url: {}", one_line(&e.to_string()))))?;
    if budget.is_zero() || budget > Duration::from_secs(1) {
        return Err(invalid("cache.shared.budget must be greater than zero and at most 1s"));
    }
    if namespace.is_empty() || namespace.len() > 64 || !namespace.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'?' | b'[' | b']' | b'\\')) {
        return Err(invalid(format!("invalid cache.shared.namespace {namespace:?} (1 to 64 visible ASCII characters, no glob characters)")));
    }
    Ok(Some(crate::shared::SharedConfig { url, budget, namespace }))
}

/// Reads the learn token: `--learn-token-file`, else `learn_token_file`, else the environment.
fn learn_token(flag: Option<&PathBuf>, file: Option<PathBuf>, env: Option<String>) -> Result<Option<LearnToken>, ConfigError> {
    if let Some(path) = flag.cloned().or(file) {
        let text = std::fs::read_to_string(&path).map_err(|e| invalid(format!("cannot read learn_token_file {}: {e}", path.display())))?;
        return LearnToken::parse(&text, &format!("learn_token_file {}", path.display())).map(Some);
    }
    env.map(|t| LearnToken::parse(&t, LEARN_TOKEN_ENV)).transpose()
}

/// Validates and normalizes the reserved prefixes (absolute paths, not `/`).
fn reserved_prefixes(list: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let list = list.unwrap_or_else(|| DEFAULT_RESERVED_PREFIXES.iter().map(|s| s.to_string()).collect());
    list.into_iter()
        .map(|p| {
            let ok =
                p.starts_with('/') && p.len() > 1 && !p.contains(['?', '#', '%']) && !p.contains("//") && !p.bytes().any(|b| b.is_ascii_control() || b == b' ');
            if ok {
                Ok(p.trim_end_matches('/').to_string())
            } else {
                Err(invalid(format!("invalid reserved_prefixes entry {p:?} (expected an absolute path other than /, without query, %-escapes or //)")))
            }
        })
        .collect()
}

/// Cell names as the cache header contract allows them.
pub fn valid_cell_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parse_cell_url(name: &str, url: &str) -> Result<(http::Uri, String, http::uri::Authority), ConfigError> {
    let bad = |why: &str| invalid(format!("cell {name}: invalid url {url:?}: {why}"));
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => return Err(bad("only http:// is supported")),
        None => return Err(bad("missing http:// scheme")),
    }
    let authority = uri.authority().ok_or_else(|| bad("missing host"))?.clone();
    if authority.as_str().contains('@') {
        return Err(bad("credentials are not allowed"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("must not have a path or query"));
    }
    let host_port = match authority.port_u16() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.as_str()),
    };
    let base: http::Uri = format!("http://{}", authority.as_str()).parse().map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    Ok((base, host_port, authority))
}

fn nonzero(what: &str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        Err(invalid(format!("{what} must be greater than zero")))
    } else {
        Ok(d)
    }
}

impl Config {
    /// Reads `args.config` (if any), applies the flags and validates the result.
    pub fn load(args: &Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => Self::read_file(path)?,
            None => FileConfig::default(),
        };
        Self::build(file, args)
    }

    /// Validates a configuration given as TOML text (and flags); used by tests and `load`.
    pub fn from_toml(text: &str, args: &Args) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse { path: "<inline>".into(), message: one_line(&e.to_string()) })?;
        Self::build(file, args)
    }

    fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: one_line(&e.to_string()) })
    }

    fn build(mut file: FileConfig, args: &Args) -> Result<Config, ConfigError> {
        if !args.cells.is_empty() {
            file.cells = Vec::new();
            for spec in &args.cells {
                let (name, url) = spec.split_once('=').ok_or_else(|| invalid(format!("--cell {spec:?}: expected NAME=URL")))?;
                file.cells.push(CellSection { name: name.trim().to_string(), url: url.trim().to_string(), session_id: None });
            }
        }
        let name = args.name.clone().or(file.name).unwrap_or_else(|| "cells-router".into());
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == ';') {
            return Err(invalid(format!("invalid router name {name:?}")));
        }
        let listen_text = args.listen.clone().or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| invalid(format!("invalid listen address {listen_text:?} (expected IP:PORT)")))?;
        let internal_text = args.internal_listen.clone().or(file.internal_listen).unwrap_or_else(|| "127.0.0.1:9190".into());
        let internal_listen: SocketAddr =
            internal_text.parse().map_err(|_| invalid(format!("invalid internal_listen address {internal_text:?} (expected IP:PORT)")))?;
        if internal_listen == listen && listen.port() != 0 {
            return Err(invalid(format!(
                "internal_listen {internal_listen} must differ from listen: the router's endpoints are never served on the public port"
            )));
        }
        let probe = match file.breaker.probe.as_str() {
            "tcp" => crate::breaker::Probe::Tcp,
            "http" => {
                let p = &file.breaker.probe_path;
                if !p.starts_with('/') || p.parse::<http::uri::PathAndQuery>().is_err() {
                    return Err(invalid(format!("invalid breaker.probe_path {p:?} (expected an absolute path)")));
                }
                crate::breaker::Probe::Http(p.clone())
            }
            other => return Err(invalid(format!("invalid breaker.probe {other:?} (expected \"http\" or \"tcp\")"))),
        };

        if file.cells.is_empty() {
            return Err(invalid("no cells configured (add [[cells]] or --cell NAME=URL)"));
        }
        let mut seen = HashSet::new();
        let mut cells = Vec::with_capacity(file.cells.len());
        for c in file.cells {
            if !valid_cell_name(&c.name) {
                return Err(invalid(format!("invalid cell name {:?} (expected [A-Za-z0-9_.-]{{1,64}})", c.name)));
            }
            if !seen.insert(c.name.clone()) {
                return Err(invalid(format!("duplicate cell name {:?}", c.name)));
            }
            let (url, authority, uri_authority) = parse_cell_url(&c.name, &c.url)?;
            let session_id = c.session_id.unwrap_or_else(|| c.name.clone());
            cells.push(CellConfig { name: c.name, url, authority, uri_authority, session_id });
        }
        let default_cell = args.default_cell.clone().or(file.default_cell).ok_or_else(|| invalid("default_cell is required"))?;
        if !cells.iter().any(|c| c.name == default_cell) {
            return Err(invalid(format!("default_cell {default_cell:?} is not a configured cell")));
        }
        let learn_path = args.learn_path.clone().or(file.learn_path).unwrap_or_else(|| "/api/v4/cells/learn".into());
        if !learn_path.starts_with('/') || learn_path.contains(['?', '#']) || learn_path.parse::<http::uri::PathAndQuery>().is_err() {
            return Err(invalid(format!("invalid learn_path {learn_path:?} (expected an absolute path without query)")));
        }
        let learn_token = learn_token(args.learn_token_file.as_ref(), file.learn_token_file, std::env::var(LEARN_TOKEN_ENV).ok())?;
        let reserved_prefixes = reserved_prefixes(file.reserved_prefixes)?;
        if file.cache.capacity == 0 {
            return Err(invalid("cache.capacity must be greater than zero"));
        }
        let pattern = Regex::new(&file.session_cookie.pattern).map_err(|e| invalid(format!("invalid session_cookie.pattern: {}", one_line(&e.to_string()))))?;
        if !pattern.capture_names().any(|n| n == Some("cell")) {
            return Err(invalid("session_cookie.pattern must have a named group (?<cell>...)"));
        }
        let api_token_pattern = match file.api_token {
            Some(t) => {
                let p = Regex::new(&t.pattern).map_err(|e| invalid(format!("invalid api_token.pattern: {}", one_line(&e.to_string()))))?;
                if !p.capture_names().any(|n| n == Some("cell")) {
                    return Err(invalid("api_token.pattern must have a named group (?<cell>...)"));
                }
                Some(p)
            }
            None => None,
        };
        let shared_cache = shared_cache(args.shared_cache.as_ref(), file.cache.shared)?;
        let purge_token = purge_token(args.purge_token_file.as_ref(), file.purge_token_file, std::env::var(PURGE_TOKEN_ENV).ok())?;
        let cookie_name = file.session_cookie.name;
        if cookie_name.is_empty() || !cookie_name.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b';' | b',')) {
            return Err(invalid(format!("invalid session_cookie.name {cookie_name:?}")));
        }
        if file.limits.max_header_bytes < 8192 {
            return Err(invalid("limits.max_header_bytes must be at least 8192"));
        }
        let workers = match args.workers.or(file.workers) {
            Some(n) if (1..=1024).contains(&n) => n,
            Some(n) => return Err(invalid(format!("workers must be between 1 and 1024, not {n}"))),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if file.limits.max_path_bytes == 0 {
            return Err(invalid("limits.max_path_bytes must be greater than zero"));
        }
        Ok(Config {
            name,
            listen,
            internal_listen,
            default_cell,
            learn_path,
            learn_token,
            reserved_prefixes,
            trace_header: args.trace_header || file.trace_header.unwrap_or(false),
            trust_forwarded_headers: file.trust_forwarded_headers.unwrap_or(false),
            workers,
            cache_ttl: nonzero("cache.ttl", file.cache.ttl)?,
            cache_capacity: file.cache.capacity,
            stale_grace: file.cache.stale_grace,
            connect_timeout: nonzero("timeouts.connect", file.timeouts.connect)?,
            learn_timeout: nonzero("timeouts.learn", file.timeouts.learn)?,
            request_timeout: nonzero("timeouts.request", file.timeouts.request)?,
            header_read_timeout: nonzero("timeouts.header_read", file.timeouts.header_read)?,
            response_idle_timeout: nonzero("timeouts.response_idle", file.timeouts.response_idle)?,
            client_write_timeout: nonzero("timeouts.client_write", file.timeouts.client_write)?,
            shutdown_timeout: file.timeouts.shutdown,
            not_found_delay_max: file.not_found_delay.max,
            session_cookie_name: cookie_name,
            session_cookie_pattern: pattern,
            api_token_pattern,
            shared_cache,
            purge_token,
            max_header_bytes: file.limits.max_header_bytes,
            max_path_bytes: file.limits.max_path_bytes,
            upstream_idle_timeout: nonzero("upstream.idle_timeout", args.upstream_idle_timeout.unwrap_or(file.upstream.idle_timeout))?,
            probe_interval: nonzero("breaker.probe_interval", args.probe_interval.unwrap_or(file.breaker.probe_interval))?,
            probe,
            relearn_interval: nonzero("breaker.relearn_interval", file.breaker.relearn_interval)?,
            table_refresh: file.breaker.table_refresh,
            cells,
        })
    }
}

/// toml's errors span several lines (source excerpt, caret); the contract is one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        name = "router_us"
        listen = "127.0.0.1:0"
        default_cell = "cell_us0"
        [[cells]]
        name = "cell_us0"
        url = "http://127.0.0.1:9001"
    "#;

    #[test]
    fn accepts_the_contract_example() {
        let text = format!(
            "{BASE}\n[cache]\nttl = \"60s\"\ncapacity = 10\nstale_grace = \"300s\"\n[timeouts]\nconnect = \"1s\"\nlearn = \"2s\"\nrequest = \"60s\"\n[not_found_delay]\nmax = \"5ms\"\n[session_cookie]\nname = \"_gitlab_session\"\npattern = \"^cell-(?<cell>[a-z0-9_]+)-\"\n"
        );
        let c = Config::from_toml(&text, &Args::default()).unwrap();
        assert_eq!(c.cache_capacity, 10);
        assert_eq!(c.not_found_delay_max, Duration::from_millis(5));
        assert_eq!(c.cells[0].authority, "127.0.0.1:9001");
    }

    #[test]
    fn refuses_bad_settings_with_a_reason() {
        let err = |t: &str| Config::from_toml(t, &Args::default()).unwrap_err().to_string();
        assert!(err(&BASE.replace("cell_us0\"\n        [[", "nope\"\n        [[")).contains("default_cell"));
        assert!(err(&format!("{BASE}\n[cache]\ncapacity = 0\n")).contains("capacity"));
        assert!(err(&format!("{BASE}\n[cache]\nttl = \"soon\"\n")).contains("invalid config"));
        assert!(err(&format!("{BASE}\nbogus = 1\n")).contains("bogus"));
        assert!(err(&format!("{BASE}\n[[cells]]\nname = \"cell_us0\"\nurl = \"http://x:1\"\n")).contains("duplicate"));
        assert!(err(&BASE.replace("http://127.0.0.1:9001", "ftp://x")).contains("invalid url"));
        assert!(!err(&format!("{BASE}\nbogus = 1\n")).contains('\n'));
        assert!(err(&format!("{BASE}\n[upstream]\nidle_timeout = \"0s\"\n")).contains("upstream.idle_timeout must be greater than zero"));
        assert!(err(&format!("{BASE}\n[upstream]\nidle = \"1s\"\n")).contains("idle"));
        assert!(err(&format!("{BASE}\n[timeouts]\nresponse_idle = \"0s\"\n")).contains("timeouts.response_idle must be greater than zero"));
        assert!(err(&format!("{BASE}\n[timeouts]\nclient_write = \"0s\"\n")).contains("timeouts.client_write must be greater than zero"));
    }

    #[test]
    fn response_idle_defaults_to_gitlabs_nginx_read_timeout() {
        let defaults = Config::from_toml(BASE, &Args::default()).unwrap();
        assert_eq!(defaults.response_idle_timeout, Duration::from_secs(3600));
        assert_eq!(defaults.client_write_timeout, Duration::from_secs(60), "nginx's send_timeout");
        let file = format!("{BASE}\n[timeouts]\nresponse_idle = \"90s\"\n");
        assert_eq!(Config::from_toml(&file, &Args::default()).unwrap().response_idle_timeout, Duration::from_secs(90));
    }

    #[test]
    fn upstream_idle_timeout_defaults_below_pumas_keep_alive_and_the_flag_wins() {
        let c = Config::from_toml(BASE, &Args::default()).unwrap();
        assert_eq!(c.upstream_idle_timeout, DEFAULT_UPSTREAM_IDLE_TIMEOUT);
        assert!(c.upstream_idle_timeout < Duration::from_secs(20), "Puma's persistent_timeout");
        let file = format!("{BASE}\n[upstream]\nidle_timeout = \"4s\"\n");
        assert_eq!(Config::from_toml(&file, &Args::default()).unwrap().upstream_idle_timeout, Duration::from_secs(4));
        let args = Args::try_parse_from(["cells-router", "--upstream-idle-timeout", "1500ms"]).unwrap();
        assert_eq!(Config::from_toml(&file, &args).unwrap().upstream_idle_timeout, Duration::from_millis(1500));
        assert!(Args::try_parse_from(["cells-router", "--upstream-idle-timeout", "soon"]).is_err());
    }

    #[test]
    fn shared_cache_purge_token_and_api_token_settings_are_checked() {
        let err = |t: &str| Config::from_toml(&format!("{BASE}\n{t}"), &Args::default()).unwrap_err().to_string();
        assert!(err("[cache.shared]\nurl = \"http://127.0.0.1:6379\"\n").contains("expected redis://HOST:PORT"));
        let secret = err("[cache.shared]\nurl = \"redis://:hunter2@127.0.0.1:notaport\"\n");
        assert!(secret.contains("invalid cache.shared.url") && !secret.contains("hunter2"), "{secret}");
        assert!(err("[cache.shared]\nurl = \"redis://127.0.0.1:6379\"\nbudget = \"0ms\"\n").contains("budget"));
        assert!(err("[cache.shared]\nurl = \"redis://127.0.0.1:6379\"\nnamespace = \"a*\"\n").contains("namespace"));
        assert!(err("[cache.shared]\nurl = \"redis://127.0.0.1:6379\"\nttl = \"1s\"\n").contains("ttl"));
        assert!(err("[api_token]\npattern = \"^glpat-\"\n").contains("(?<cell>"));
        assert!(err("[api_token]\npattern = \"(\"\n").contains("api_token.pattern"));
        let c = Config::from_toml(&format!("{BASE}\n[cache.shared]\nurl = \"redis://127.0.0.1:6379\"\n"), &Args::default()).unwrap();
        let shared = c.shared_cache.unwrap();
        assert_eq!((shared.budget, shared.namespace.as_str()), (DEFAULT_SHARED_BUDGET, "cells-router:"));
        let args = Args::try_parse_from(["cells-router", "--shared-cache", "redis://127.0.0.1:7000"]).unwrap();
        assert_eq!(Config::from_toml(BASE, &args).unwrap().shared_cache.unwrap().url, "redis://127.0.0.1:7000");
        assert!(Config::from_toml(BASE, &Args::default()).unwrap().shared_cache.is_none());
    }

    #[test]
    fn the_purge_token_matches_only_itself_and_never_prints() {
        let t = PurgeToken::parse("s3cret-token\n", "test").unwrap();
        assert!(t.matches(b"s3cret-token"));
        for wrong in [&b"s3cret-tokeN"[..], b"s3cret-token\n", b"s3cret", b"", b"s3cret-token-and-more"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{t:?}"), "PurgeToken(<redacted>)");
        let e = PurgeToken::parse("two words", "purge_token_file /x").unwrap_err().to_string();
        assert!(e.contains("purge token") && !e.contains("two words"), "{e}");
    }
}
