//! A real WebSocket client through the router to a real WebSocket server (issue 14, item 8):
//! tokio-tungstenite on both ends, RFC 6455 handshake, text and binary messages both ways,
//! ping/pong started by either side, a close handshake.
//!
//! The cells are hyper servers that answer the learn endpoint (`/chat` lives on `ws_b`) and take
//! WebSocket upgrades for any other path the way a Rails cell's ActionCable does: `101` with the
//! `Sec-WebSocket-Accept` derived from the client's key, then frames over the upgraded stream.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// What a WebSocket cell saw: each upgrade request's target and headers, and the pong payloads
/// its own pings got back.
#[derive(Default)]
struct Seen {
    handshakes: Vec<(String, HeaderMap)>,
    pongs: Vec<Vec<u8>>,
    closed_with: Option<(u16, String)>,
}

struct WsCell {
    name: &'static str,
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl WsCell {
    async fn start(name: &'static str) -> WsCell {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| serve(name, s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
                });
            }
        });
        WsCell { name, addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(name: &'static str, seen: Arc<Mutex<Seen>>, mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == LEARN {
        let learn = table(&[("/chat", "ws_b", "routable", false, true)], "ws_a");
        let q: std::collections::HashMap<String, String> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
        let LearnReply::Json(body) = learn(&q["method"], &q["path_info"]) else { unreachable!() };
        return Ok(Response::builder().header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap());
    }
    let key = req.headers().get("sec-websocket-key").cloned();
    let is_ws = req.headers().get("upgrade").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let (Some(key), true) = (key, is_ws) else {
        return Ok(Response::builder().status(StatusCode::BAD_REQUEST).body(Full::new(Bytes::from_static(b"websocket only"))).unwrap());
    };
    let target = req.uri().path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_default();
    seen.lock().unwrap().handshakes.push((target, req.headers().clone()));
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(t) if t.as_str() == "ping me" => {
                    ws.send(Message::Ping(Bytes::from_static(b"from the cell"))).await.unwrap();
                    // The client answers with a pong (tungstenite does on its next read).
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Pong(p))) => {
                                seen.lock().unwrap().pongs.push(p.to_vec());
                                break;
                            }
                            Some(Ok(_)) => continue,
                            _ => return,
                        }
                    }
                    ws.send(Message::text(format!("{name} got its pong"))).await.unwrap();
                }
                Message::Text(t) => ws.send(Message::text(format!("{name} echoes {}", t.as_str()))).await.unwrap(),
                Message::Binary(b) => ws.send(Message::binary(b.iter().rev().copied().collect::<Vec<u8>>())).await.unwrap(),
                Message::Close(frame) => {
                    // tungstenite answers the close itself; note what the client said.
                    seen.lock().unwrap().closed_with = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                _ => {} // pings are answered by tungstenite
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .header("x-served-by", name)
        .body(Full::new(Bytes::new()))
        .unwrap())
}

async fn ws_router(cells: &[&WsCell]) -> cells_router::Running {
    let mut toml =
        "name = \"router_test\"\nlisten = \"127.0.0.1:0\"\ninternal_listen = \"127.0.0.1:0\"\ndefault_cell = \"ws_a\"\ntrace_header = true\n".to_string();
    for c in cells {
        toml.push_str(&format!("[[cells]]\nname = \"{}\"\nurl = \"{}\"\n", c.name, c.url()));
    }
    cells_router::start(cells_router::Config::from_toml(&toml, &cells_router::Args::default()).unwrap()).await.unwrap()
}

/// Reads the next data or control message the client is shown, within 5 s.
async fn next(ws: &mut WebSocketStream<TcpStream>) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a message within 5 s").expect("the stream is open").expect("a valid frame")
}

#[tokio::test]
async fn a_websocket_session_goes_through_to_the_owning_cell() {
    let (a, b) = (WsCell::start("ws_a").await, WsCell::start("ws_b").await);
    let r = ws_router(&[&a, &b]).await;

    let stream = TcpStream::connect(r.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(format!("ws://{}/chat/room-1?since=42", r.addr), stream).await.expect("handshake through the router");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers()["x-served-by"], "ws_b");
    assert!(resp.headers()["x-cells-router-trace"].to_str().unwrap().contains("cell=ws_b"));

    // Text both ways.
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("ws_b echoes hello"));
    // Binary both ways, large enough to span many reads on each side of the splice.
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(blob.clone())).await.unwrap();
    let Message::Binary(back) = next(&mut ws).await else { panic!("expected binary") };
    assert_eq!(back.len(), blob.len());
    assert!(back.iter().eq(blob.iter().rev()), "binary payload changed on the way");
    // The client's ping, the cell's pong.
    ws.send(Message::Ping(Bytes::from_static(b"from the client"))).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Pong(Bytes::from_static(b"from the client")));
    // The cell's ping, the client's pong (tungstenite answers while reading the next message).
    ws.send(Message::text("ping me")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Ping(Bytes::from_static(b"from the cell")));
    assert_eq!(next(&mut ws).await, Message::text("ws_b got its pong"));
    assert_eq!(b.seen.lock().unwrap().pongs, vec![b"from the cell".to_vec()]);
    // Close handshake: the client's close frame reaches the cell, the cell's answer comes back.
    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).await.unwrap();
    let Message::Close(Some(reply)) = next(&mut ws).await else { panic!("expected the cell's close frame") };
    assert_eq!(reply.code, CloseCode::Normal);
    assert!(tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().is_none(), "the stream ends after the close handshake");
    assert_eq!(b.seen.lock().unwrap().closed_with, Some((1000, "bye".to_string())));

    // One handshake, at the owning cell, with its target unchanged and the router's headers.
    let handshakes = b.seen.lock().unwrap().handshakes.clone();
    assert_eq!(handshakes.len(), 1);
    let (target, headers) = &handshakes[0];
    assert_eq!(target, "/chat/room-1?since=42");
    assert_eq!(headers["upgrade"], "websocket");
    assert_eq!(headers["sec-websocket-version"], "13");
    assert!(headers.contains_key("sec-websocket-key"));
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert!(a.seen.lock().unwrap().handshakes.is_empty(), "the other cell saw nothing");
    r.shutdown().await;
}

/// Several sessions at once, each on its own upstream connection, none mixed up with another.
#[tokio::test]
async fn concurrent_websocket_sessions_stay_apart() {
    let (a, b) = (WsCell::start("ws_a").await, WsCell::start("ws_b").await);
    let r = ws_router(&[&a, &b]).await;
    let addr = r.addr;
    let sessions: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let path = if i % 2 == 0 { format!("/chat/s{i}") } else { format!("/-/cable/s{i}") };
                let (mut ws, resp) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream).await.unwrap();
                let cell = resp.headers()["x-served-by"].to_str().unwrap().to_string();
                for n in 0..20 {
                    ws.send(Message::text(format!("{i}:{n}"))).await.unwrap();
                    assert_eq!(next(&mut ws).await, Message::text(format!("{cell} echoes {i}:{n}")));
                }
                ws.close(None).await.unwrap();
                cell
            })
        })
        .collect();
    for (i, s) in sessions.into_iter().enumerate() {
        assert_eq!(s.await.unwrap(), if i % 2 == 0 { "ws_b" } else { "ws_a" });
    }
    assert_eq!(b.seen.lock().unwrap().handshakes.len(), 4);
    assert_eq!(a.seen.lock().unwrap().handshakes.len(), 4);
    r.shutdown().await;
}
