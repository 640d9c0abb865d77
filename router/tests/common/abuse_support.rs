//! Helpers for the hostile-input tests (path_agreement.rs, abuse.rs): raw byte-level HTTP
//! exchanges, the shared hostile path list, and a fake-cell learn endpoint that answers with
//! the real core (the classifier built from the shared corpus and the GitLab rules).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cells_learn::{routes, Classifier, ClaimKind, ClassifyError, Rules};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let mut s: String = b.iter().take(120).map(|&c| if (0x21..0x7f).contains(&c) && c != b'\\' { (c as char).to_string() } else { format!("\\x{c:02X}") }).collect();
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
    pub classifier: Classifier,
    pub rules: Rules,
}

pub fn core() -> Arc<Core> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let dir = if dir.exists() { dir } else { std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus") };
    let defs = routes::from_json(&std::fs::read(dir.join("gitlabish-routes.json")).expect("the shared corpus")).unwrap();
    Arc::new(Core { classifier: Classifier::new(defs).unwrap(), rules: Rules::gitlab_default() })
}

/// Which cell owns a claim: organizations own their top-level namespace and everything
/// below it (GitLab's model), numeric ids are spread by value; one in four is unknown (the
/// resolver has no record: the default cell answers, uncached). Case-insensitive, as
/// GitLab's route lookups are.
pub fn owner(kind: ClaimKind, key: &str) -> Option<String> {
    let top = match kind {
        ClaimKind::ProjectId | ClaimKind::NamespaceId | ClaimKind::UserId => key,
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
        match self.rules.learn(&self.classifier, method, path_info) {
            Ok(l) => Ok(l.respond(&self.rules.default_cell, |c| owner(c.kind, &c.key))),
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
