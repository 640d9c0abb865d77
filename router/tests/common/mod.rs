//! In-process fake cells and a router started on 127.0.0.1:0, for the integration tests.
//!
//! A fake cell is a real hyper server: it answers the learn endpoint from a closure (a small
//! table by default), records every request it gets (learn and forwarded, with headers and
//! body length), echoes bodies, and can be told to return cache headers, 421s, delays,
//! garbage, or to die.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub mod redis_server;

pub const LEARN: &str = "/api/v4/cells/learn";
/// The health path the router probes by default (GitLab's readiness check).
pub const HEALTH: &str = "/-/readiness";

/// What a fake cell's learn endpoint does.
#[derive(Clone, Debug)]
pub enum LearnReply {
    Json(String),
    Status(u16),
    Delay(Duration, Box<LearnReply>),
}

/// What a fake cell answers to a forwarded request (the body is always echoed).
#[derive(Clone, Debug, Default)]
pub struct AppReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body_len: usize,
}

type LearnFn = Arc<dyn Fn(&str, &str) -> LearnReply + Send + Sync>;
type AppFn = Arc<dyn Fn(&Recorded) -> AppReply + Send + Sync>;

pub struct CellState {
    pub name: String,
    pub learns: Mutex<Vec<(String, String)>>,
    /// The headers of each learn request, in order.
    pub learn_headers: Mutex<Vec<HeaderMap>>,
    pub requests: Mutex<Vec<Recorded>>,
    /// Health requests (`/-/readiness`: the router's probes and route table reads), kept apart
    /// from `requests` so that tests counting forwarded requests do not count them.
    pub probes: Mutex<usize>,
    /// The route table (version, digest) the health answer reports, if any.
    routes: Mutex<Option<(u64, String)>>,
    learn: Mutex<LearnFn>,
    app: Mutex<AppFn>,
}

pub struct FakeCell {
    pub name: String,
    pub addr: SocketAddr,
    pub state: Arc<CellState>,
    task: tokio::task::JoinHandle<()>,
}

/// A learn table: (path, cell, source, exact, cacheable). The first entry covering the request
/// path answers; otherwise the default cell answers, uncacheable.
pub fn table(entries: &[(&str, &str, &str, bool, bool)], default_cell: &str) -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    let entries: Vec<(String, String, String, bool, bool)> =
        entries.iter().map(|(p, c, s, e, k)| (p.to_string(), c.to_string(), s.to_string(), *e, *k)).collect();
    let default_cell = default_cell.to_string();
    move |_method, path| {
        for (p, c, s, exact, cacheable) in &entries {
            let covers = if *exact { path == p } else { path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))) };
            if covers {
                return LearnReply::Json(answer(p, c, s, *exact, *cacheable));
            }
        }
        LearnReply::Json(answer(path, &default_cell, "default", true, false))
    }
}

/// A learn table whose answers carry a route table (mixed versions): `table(entries, default)`
/// with `"routes_version"` and `"routes_digest"` added.
pub fn versioned_table(
    version: u64,
    digest: &str,
    entries: &[(&str, &str, &str, bool, bool)],
    default_cell: &str,
) -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    let (inner, digest) = (table(entries, default_cell), digest.to_string());
    move |method, path| match inner(method, path) {
        LearnReply::Json(body) => {
            let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["routes_version"] = version.into();
            v["routes_digest"] = digest.clone().into();
            LearnReply::Json(v.to_string())
        }
        other => other,
    }
}

pub fn answer(path: &str, cell: &str, source: &str, exact: bool, cacheable: bool) -> String {
    let mut v = serde_json::json!({ "path": path, "cell": cell, "source": source });
    if exact {
        v["exact"] = true.into();
    }
    if !cacheable {
        v["cacheable"] = false.into();
    }
    v.to_string()
}

impl FakeCell {
    pub async fn start(name: &str, learn: impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static) -> FakeCell {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name, learn).await
    }

    /// A cell on a given address (a killed cell restarted on its port).
    pub async fn start_on(addr: SocketAddr, name: &str, learn: impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static) -> FakeCell {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(CellState {
            name: name.to_string(),
            learns: Mutex::new(Vec::new()),
            learn_headers: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            probes: Mutex::new(0),
            routes: Mutex::new(None),
            learn: Mutex::new(Arc::new(learn)),
            app: Mutex::new(Arc::new(|_: &Recorded| AppReply { status: 200, ..AppReply::default() })),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in the set: aborting the server aborts them too (a killed cell).
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(x) => x,
                    Err(_) => continue,
                };
                let st = st.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| serve(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        FakeCell { name: name.to_string(), addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_learn(&self, f: impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static) {
        *self.state.learn.lock().unwrap() = Arc::new(f);
    }

    pub fn set_app(&self, f: impl Fn(&Recorded) -> AppReply + Send + Sync + 'static) {
        *self.state.app.lock().unwrap() = Arc::new(f);
    }

    /// The route table the health answer reports from now on.
    pub fn set_routes(&self, version: u64, digest: &str) {
        *self.state.routes.lock().unwrap() = Some((version, digest.to_string()));
    }

    pub fn probe_count(&self) -> usize {
        *self.state.probes.lock().unwrap()
    }

    pub fn learn_count(&self) -> usize {
        self.state.learns.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Stops the server and every open connection: the port refuses from now on.
    pub async fn kill(&self) {
        self.task.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for FakeCell {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Resp = Response<Full<Bytes>>;

async fn serve(st: Arc<CellState>, mut req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    if path == LEARN {
        let q: HashMap<String, String> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
        let (m, p) = (q.get("method").cloned().unwrap_or_default(), q.get("path_info").cloned().unwrap_or_default());
        st.learns.lock().unwrap().push((m.clone(), p.clone()));
        st.learn_headers.lock().unwrap().push(req.headers().clone());
        let f = st.learn.lock().unwrap().clone();
        let mut reply = f(&m, &p);
        loop {
            match reply {
                LearnReply::Delay(d, next) => {
                    tokio::time::sleep(d).await;
                    reply = *next;
                }
                LearnReply::Json(body) => {
                    return Ok(Response::builder().header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap())
                }
                LearnReply::Status(s) => return Ok(Response::builder().status(s).body(Full::new(Bytes::from_static(b"{\"error\":\"x\"}"))).unwrap()),
            }
        }
    }
    if path == HEALTH {
        *st.probes.lock().unwrap() += 1;
        let mut resp = Response::builder().header("x-served-by", st.name.as_str());
        if let Some((version, digest)) = st.routes.lock().unwrap().clone() {
            resp = resp.header("x-gitlab-cell-routes-version", version).header("x-gitlab-cell-routes-digest", digest);
        }
        return Ok(resp.body(Full::new(Bytes::from_static(b"{\"status\":\"ok\"}"))).unwrap());
    }
    let upgrade = req.headers().contains_key("upgrade");
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        body_len: body.len(),
    };
    st.requests.lock().unwrap().push(rec.clone());
    if let Some(on_upgrade) = on_upgrade {
        tokio::spawn(async move {
            if let Ok(io) = on_upgrade.await {
                let mut io = TokioIo::new(io);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("x-served-by", st.name.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    let f = st.app.lock().unwrap().clone();
    let reply = f(&rec);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut resp = Response::builder().status(reply.status).header("x-served-by", st.name.as_str());
    for (k, v) in &reply.headers {
        resp = resp.header(k.as_str(), v.as_str());
    }
    Ok(resp.body(Full::new(body)).unwrap())
}

/// A router in-process, configured from TOML with `{cells}` replaced by the cells' entries.
pub async fn router(extra: &str, default_cell: &str, cells: &[&FakeCell]) -> cells_router::Running {
    let cfg = cells_router::Config::from_toml(&router_toml(extra, default_cell, cells), &cells_router::Args::default()).unwrap();
    cells_router::start(cfg).await.unwrap()
}

pub fn router_toml(extra: &str, default_cell: &str, cells: &[&FakeCell]) -> String {
    let mut t = format!("name = \"router_test\"\nlisten = \"127.0.0.1:0\"\ninternal_listen = \"127.0.0.1:0\"\ndefault_cell = \"{default_cell}\"\ntrace_header = true\n{extra}\n");
    for c in cells {
        t.push_str(&format!("[[cells]]\nname = \"{}\"\nurl = \"{}\"\n", c.name, c.url()));
    }
    t
}

pub type Client = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn served_by(&self) -> &str {
        self.headers.get("x-served-by").map(|v| v.to_str().unwrap()).unwrap_or("")
    }
    pub fn trace(&self) -> &str {
        self.headers.get("x-cells-router-trace").map(|v| v.to_str().unwrap()).unwrap_or("")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub async fn send(c: &Client, addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Bytes) -> Got {
    let mut b = Request::builder().method(method).uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c.request(b.body(Full::new(body)).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    Got { status: parts.status.as_u16(), headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

pub async fn get(c: &Client, addr: SocketAddr, path: &str) -> Got {
    send(c, addr, "GET", path, &[], Bytes::new()).await
}

/// A raw HTTP/1.1 exchange (for request targets a client library would refuse or normalise):
/// returns the status code and the whole response text.
pub async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}
