//! Helpers for the hostile-input tests (path_agreement.rs, abuse.rs): raw byte-level HTTP
//! exchanges, the shared hostile path list, and a fake-cell learn endpoint that answers with
//! the real core (the classifier built from the shared corpus and the GitLab rules).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cells_learn::{routes, Classifier, ClassifyError, EntityKind, Learner, Rules};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::LearnReply;

/// `router/tests/data/hostile_paths.txt`, decoded: one request target per line, `\xHH` is a
/// byte, `\\` a backslash; `#` comments and blank lines skipped.
pub fn hostile_paths() -> Vec<Vec<u8>> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile_paths.txt");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| decode_line(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

pub fn decode_line(line: &str) -> Result<Vec<u8>, String> {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = line.get(i + 2..i + 4).ok_or("truncated \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x escape {hex:?}"))?);
                i += 4;
            }
            _ => return Err(format!("unknown escape at byte {i}")),
        }
    }
    Ok(out)
}

/// A byte string for messages: printable ASCII as is, the rest `\xHH`, cut after 120 bytes.
pub fn show(b: &[u8]) -> String {
    let mut s: String =
        b.iter().take(120).map(|&c| if (0x21..0x7f).contains(&c) && c != b'\\' { (c as char).to_string() } else { format!("\\x{c:02X}") }).collect();
    if b.len() > 120 {
        s.push_str(&format!("...({} bytes)", b.len()));
    }
    s
}

/// A response read off a raw connection.
#[derive(Debug, Default)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server closed the connection (EOF) before the read timeout.
    pub closed: bool,
    /// Everything read.
    pub raw: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn served_by(&self) -> Option<&str> {
        self.header("x-served-by")
    }
    pub fn trace(&self) -> &str {
        self.header("x-cells-router-trace").unwrap_or("")
    }
}

/// Splits the first response off `raw` (status line, headers, Content-Length body).
pub fn parse_response(raw: &[u8]) -> RawResponse {
    let mut r = RawResponse { raw: raw.to_vec(), ..RawResponse::default() };
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        r.head = String::from_utf8_lossy(raw).into_owned();
        return r;
    };
    r.head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = r.head.split("\r\n");
    r.status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    r.headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let rest = &raw[end + 4..];
    let len = r.header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(rest.len());
    r.body = rest[..len.min(rest.len())].to_vec();
    r
}

/// Writes `request` on a new connection and reads until the server closes it (or `wait`).
pub async fn exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A server may answer and close before it has read everything (431, 414): that is fine.
    let _ = s.write_all(request).await;
    read_all(&mut s, wait).await
}

/// Reads until EOF or `wait` has passed.
pub async fn read_all(s: &mut TcpStream, wait: Duration) -> RawResponse {
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 16 * 1024];
    let mut closed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let mut r = parse_response(&out);
    r.closed = closed;
    r
}

/// `GET <target> HTTP/1.1` with `Connection: close`, as raw bytes.
pub fn get_request(target: &[u8]) -> Vec<u8> {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: gitlab.example\r\nConnection: close\r\n\r\n");
    req
}

/// The real core, as the cells run it.
pub struct Core {
    pub learner: Learner,
}

pub fn core() -> Arc<Core> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let dir = if dir.exists() { dir } else { std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus") };
    let defs = routes::from_json(&std::fs::read(dir.join("gitlabish-routes.json")).expect("the shared corpus")).unwrap();
    Arc::new(Core { learner: Learner::new(Classifier::new(defs).unwrap(), Rules::gitlab_default()) })
}

/// Which cell owns an entity: organizations own their top-level namespace and everything
/// below it (GitLab's model), numeric ids are spread by value; one in four is unknown (the
/// resolver has no record: the default cell answers, uncached). Case-insensitive, as
/// GitLab's route lookups are.
pub fn owner(kind: EntityKind, key: &str) -> Option<String> {
    let top = match kind {
        EntityKind::ProjectId | EntityKind::NamespaceId | EntityKind::UserId => key,
        _ => key.split('/').next().unwrap_or(key),
    };
    let h = top.to_ascii_lowercase().bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    match h % 4 {
        0 => None,
        n => Some(format!("cell_{}", n - 1)),
    }
}

impl Core {
    /// The learn answer a cell gives for `path_info`, or the endpoint's error status.
    pub fn answer(&self, method: &str, path_info: &[u8]) -> Result<cells_learn::LearnResponse, u16> {
        match self.learner.learn(method, path_info, |e| owner(e.kind, &e.key)) {
            Ok(answer) => Ok(answer),
            Err(ClassifyError::PathTooLong { .. }) => Err(414),
            Err(_) => Err(400),
        }
    }

    /// A fake cell's learn endpoint backed by this core.
    pub fn learn_fn(self: &Arc<Self>) -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
        let core = self.clone();
        move |method, path| match core.answer(method, path.as_bytes()) {
            Ok(a) => LearnReply::Json(serde_json::to_string(&a).unwrap()),
            Err(s) => LearnReply::Status(s),
        }
    }
}

/// One request as a raw fake cell read it off the wire.
#[derive(Clone, Debug, Default)]
pub struct RawReq {
    /// Request line and header lines, as received (without the final empty line).
    pub head: Vec<String>,
    pub body: Vec<u8>,
    /// The body ended where its framing said it ends.
    pub complete: bool,
    /// What was wrong with the bytes, if anything (`None`: well-formed).
    pub error: Option<String>,
}

impl RawReq {
    pub fn target(&self) -> &str {
        self.head.first().and_then(|l| l.split(' ').nth(1)).unwrap_or("")
    }
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head[1..].iter().filter_map(|l| l.split_once(':')).filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).collect()
    }
    pub fn names(&self) -> Vec<String> {
        self.head[1..].iter().filter_map(|l| l.split_once(':')).map(|(k, _)| k.to_ascii_lowercase()).collect()
    }
}

/// A fake cell that speaks HTTP/1.1 by hand, so it sees exactly the bytes the router sends:
/// every head line, both framing headers if both came, a body cut short. It answers the learn
/// endpoint with `learn(path_info)` and echoes every other request's body with a 200.
pub struct RawCell {
    pub name: String,
    pub addr: SocketAddr,
    pub got: Arc<std::sync::Mutex<Vec<RawReq>>>,
    pub learns: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawCell {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawCell {
    pub async fn start(name: &str, learn: impl Fn(&str) -> String + Send + Sync + 'static) -> RawCell {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let learns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let learn: Arc<dyn Fn(&str) -> String + Send + Sync> = Arc::new(learn);
        let (g, l, n) = (got.clone(), learns.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((s, _)) = listener.accept().await else { continue };
                conns.spawn(raw_conn(s, n.clone(), g.clone(), l.clone(), learn.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        RawCell { name: name.to_string(), addr, got, learns, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RawReq> {
        self.got.lock().unwrap().clone()
    }
}

/// Reads from `s` into `buf` until `buf[from..]` holds `needle`; returns its end offset (None:
/// `s` ended first).
pub async fn read_until(s: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>, from: usize, needle: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf[from..].windows(needle.len()).position(|w| w == needle) {
            return Some(from + i + needle.len());
        }
        let mut chunk = [0u8; 8192];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads from `s` into `buf` until it holds `want` bytes; false when `s` ended first.
pub async fn read_exact_into(s: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>, want: usize) -> bool {
    while buf.len() < want {
        let mut chunk = [0u8; 8192];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

async fn raw_conn(
    mut s: TcpStream,
    name: String,
    got: Arc<std::sync::Mutex<Vec<RawReq>>>,
    learns: Arc<std::sync::atomic::AtomicUsize>,
    learn: Arc<dyn Fn(&str) -> String + Send + Sync>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(head_end) = read_until(&mut s, &mut buf, 0, b"\r\n\r\n").await else {
            if !buf.is_empty() {
                got.lock().unwrap().push(RawReq {
                    head: vec![String::from_utf8_lossy(&buf).into_owned()],
                    error: Some("connection closed inside the head".into()),
                    ..RawReq::default()
                });
            }
            return;
        };
        let head_bytes = buf[..head_end - 4].to_vec();
        buf.drain(..head_end);
        let mut req = RawReq::default();
        let text = String::from_utf8_lossy(&head_bytes).into_owned();
        req.head = text.split("\r\n").map(str::to_string).collect();
        let mut errors = Vec::new();
        if req.head.iter().any(|l| l.contains('\n') || l.contains('\r')) {
            errors.push("bare CR or LF in the head".to_string());
        }
        if req.head[1..].iter().any(|l| l.starts_with(' ') || l.starts_with('\t')) {
            errors.push("obsolete line folding".to_string());
        }
        if req.head[1..].iter().any(|l| l.split_once(':').is_none_or(|(k, _)| k.is_empty() || k.contains(' '))) {
            errors.push("a header line without a proper name".to_string());
        }
        let cl = req.headers("content-length").iter().map(|v| v.to_string()).collect::<Vec<_>>();
        let te = req.headers("transfer-encoding").iter().map(|v| v.to_string()).collect::<Vec<_>>();
        if !cl.is_empty() && !te.is_empty() {
            errors.push("both Content-Length and Transfer-Encoding".to_string());
        }
        if cl.len() > 1 || te.len() > 1 {
            errors.push(format!("repeated framing headers {cl:?} {te:?}"));
        }
        if !te.is_empty() && te != ["chunked"] {
            errors.push(format!("transfer-encoding {te:?}"));
        }
        let target = req.target().to_string();
        // The router's health reads (route tables, breaker probes) are not forwarded requests.
        if target == "/-/readiness" {
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                return;
            }
            continue;
        }
        if target.starts_with("/api/v4/cells/learn?") {
            learns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let q = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let path: String = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "path_info").map(|(_, v)| v.into_owned()).unwrap_or_default();
            let body = learn(&path);
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            if s.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        // The body, per its framing.
        let complete = if !te.is_empty() {
            let mut ok = false;
            loop {
                let Some(line_end) = read_until(&mut s, &mut buf, 0, b"\r\n").await else { break };
                let line = String::from_utf8_lossy(&buf[..line_end - 2]).into_owned();
                buf.drain(..line_end);
                let size_text = line.split(';').next().unwrap_or("");
                let Ok(size) = usize::from_str_radix(size_text, 16) else {
                    errors.push(format!("bad chunk size line {line:?}"));
                    break;
                };
                if size == 0 {
                    // Trailers, then the empty line.
                    match read_until(&mut s, &mut buf, 0, b"\r\n").await {
                        Some(2) => {
                            buf.drain(..2);
                            ok = true;
                        }
                        Some(_) => errors.push("trailers after the last chunk".to_string()),
                        None => {}
                    }
                    break;
                }
                if !read_exact_into(&mut s, &mut buf, size + 2).await {
                    req.body.extend_from_slice(&buf[..buf.len().min(size)]);
                    buf.clear();
                    break;
                }
                req.body.extend_from_slice(&buf[..size]);
                if &buf[size..size + 2] != b"\r\n" {
                    errors.push("chunk not followed by CRLF".to_string());
                    break;
                }
                buf.drain(..size + 2);
            }
            ok
        } else if let Some(v) = cl.first() {
            match v.parse::<usize>() {
                Ok(n) => {
                    let ok = read_exact_into(&mut s, &mut buf, n).await;
                    let take = buf.len().min(n);
                    req.body = buf.drain(..take).collect();
                    ok
                }
                Err(_) => {
                    errors.push(format!("bad content-length {v:?}"));
                    false
                }
            }
        } else {
            true
        };
        req.complete = complete;
        req.error = (!errors.is_empty()).then(|| errors.join("; "));
        let body = req.body.clone();
        let broken = !complete || req.error.is_some();
        got.lock().unwrap().push(req);
        if broken {
            return;
        }
        let mut resp = format!("HTTP/1.1 200 OK\r\nx-served-by: {name}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        resp.extend_from_slice(&body);
        if s.write_all(&resp).await.is_err() {
            return;
        }
    }
}
