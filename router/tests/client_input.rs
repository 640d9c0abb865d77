//! What a client sends that a cell must not believe, and client mistakes answered as such
//! (issue 14, item 7): `X-Real-IP` and `Forwarded` (RFC 7239) are replaced or stripped as
//! `X-Forwarded-*` are; a malformed chunked request body is the client's 400, not a 502.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn one_cell() -> FakeCell {
    FakeCell::start("cell_a", table(&[("/org", "cell_a", "routable", false, true)], "cell_a")).await
}

#[tokio::test]
async fn client_real_ip_and_forwarded_never_reach_a_cell_unless_trusted() {
    let a = one_cell().await;
    let r = router("", "cell_a", &[&a]).await;
    let c = client();
    let hdrs = [
        ("x-real-ip", "10.6.6.6"),
        ("forwarded", "for=10.6.6.6;proto=https;host=admin.example"),
        ("forwarded", "for=\"[2001:db8::6]\""),
        ("x_real_ip", "10.7.7.7"),
        ("host", "gitlab.example.com"),
    ];
    assert_eq!(send(&c, r.addr, "GET", "/org/proj", &hdrs, Bytes::new()).await.status, 200);
    let rec = &a.requests()[0];
    assert_eq!(rec.headers.get_all("x-real-ip").iter().collect::<Vec<_>>(), ["127.0.0.1"], "{:?}", rec.headers);
    assert!(!rec.headers.contains_key("forwarded"), "{:?}", rec.headers);
    assert!(!rec.headers.contains_key("x_real_ip"), "{:?}", rec.headers);
    assert_eq!(rec.headers["x-forwarded-for"], "127.0.0.1");
    // Without the client sending any, the cell still learns the peer.
    assert_eq!(get(&c, r.addr, "/org/proj").await.status, 200);
    assert_eq!(a.requests()[1].headers["x-real-ip"], "127.0.0.1");
    r.shutdown().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_forwarded_is_extended_and_real_ip_kept() {
    let a = one_cell().await;
    let r = router("trust_forwarded_headers = true\n", "cell_a", &[&a]).await;
    let c = client();
    let hdrs = [("x-real-ip", "203.0.113.7"), ("forwarded", "for=203.0.113.7;proto=https"), ("forwarded", "for=198.51.100.1")];
    assert_eq!(send(&c, r.addr, "GET", "/org/proj", &hdrs, Bytes::new()).await.status, 200);
    let rec = &a.requests()[0];
    assert_eq!(rec.headers["x-real-ip"], "203.0.113.7");
    assert_eq!(rec.headers.get_all("forwarded").iter().collect::<Vec<_>>(), ["for=203.0.113.7;proto=https, for=198.51.100.1, for=127.0.0.1"]);
    // No Forwarded from the proxy: none is made up (X-Forwarded-For carries the chain).
    assert_eq!(get(&c, r.addr, "/org/proj").await.status, 200);
    let rec = &a.requests()[1];
    assert!(!rec.headers.contains_key("forwarded"));
    assert_eq!(rec.headers["x-real-ip"], "127.0.0.1");
    r.shutdown().await;
}

/// Sends `head` + `body` on one connection and reads the answer until the router closes.
async fn exchange_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    (text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), text)
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_400() {
    let a = one_cell().await;
    let r = router("", "cell_a", &[&a]).await;
    let head = "POST /org/proj/-/uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    // A good chunk, then a chunk size that is not hex; then one that claims more than it sends
    // and ends the stream; then a chunk without its CRLF.
    // Also a chunk size that overflows, and a trailer that is not a header line. (Chunk
    // extensions hyper skips, whatever they hold: the router re-frames the body without them.)
    for body in [
        "5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n",
        "5\r\nhello\r\n-1\r\n",
        "5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n",
        "FFFFFFFFFFFFFFFFFF\r\nx\r\n",
        "5\r\nhello\r\n0\r\nnot a trailer\r\n\r\n",
    ] {
        let (status, text) = exchange_raw(r.addr, format!("{head}{body}").as_bytes()).await;
        assert_eq!(status, 400, "{body:?}: {text}");
        assert!(text.contains("\"error\":\"invalid_request_body\""), "{body:?}: {text}");
    }
    // The bad chunk arrives after the cell has the headers and the first chunk (the body streams).
    for (first, bad) in [("5\r\nhello\r\n", "ZZ\r\nxx\r\n"), ("", "nothex\r\n"), ("5\r\nhello\r\n", "5\r\nabcdefgh")] {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        s.write_all(format!("{head}{first}").as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(bad.as_bytes()).await.unwrap();
        if bad.ends_with("gh") {
            // Cut off: the client closes its side mid-chunk.
            s.shutdown().await.unwrap();
        }
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 400 "), "{first:?} then {bad:?}: {text}");
        assert!(text.contains("\"error\":\"invalid_request_body\""), "{text}");
    }
    // A well-formed one goes through.
    let (status, text) = exchange_raw(r.addr, format!("{head}5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").as_bytes()).await;
    assert_eq!(status, 200, "{text}");
    assert!(a.requests().iter().any(|rec| rec.body_len == 11));
    r.shutdown().await;
}
