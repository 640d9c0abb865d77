//! The floor of a hyper reverse proxy, for `script/bench-router`: what any proxy built on hyper
//! and tokio costs per request before it does anything of its own.
//!
//! It forwards every request unchanged to one upstream and streams the answer back. It is built
//! the way cells-router is (one single-threaded event loop per core sharing one listener, an
//! idle-connection pool per thread, mimalloc) but has no cache, no learn requests, no header
//! rules, no timeouts, no metrics and no logs. The benchmark measures it beside the router and
//! nginx, so the router's own cost (router ÷ floor) and hyper's (floor ÷ nginx) are two separate
//! figures rather than one.
//!
//! Usage: `bare_proxy LISTEN UPSTREAM [WORKERS]`, e.g. `bare_proxy 127.0.0.1:8080 127.0.0.1:9001`.
//! Not for production: no limits of any kind.

use std::cell::RefCell;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

thread_local! {
    /// This thread's idle upstream connections.
    static IDLE: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

async fn forward(upstream: SocketAddr, req: Request<Incoming>) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let mut sender = loop {
        let Some(mut pooled) = IDLE.with(|idle| idle.borrow_mut().pop()) else {
            let stream = tokio::net::TcpStream::connect(upstream).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::Builder::new().writev(false).handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender.ready().await?;
            break sender;
        };
        // The previous exchange on a pooled connection may still be finishing its body; one the
        // upstream closed meanwhile is dropped for the next (or a new one), as any pool does —
        // without this the floor answered a few requests of a run with a closed connection.
        if pooled.ready().await.is_ok() {
            break pooled;
        }
    };
    let resp = sender.send_request(req).await?;
    IDLE.with(|idle| idle.borrow_mut().push(sender));
    Ok(resp)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: bare_proxy LISTEN UPSTREAM [WORKERS]");
        std::process::exit(2);
    };
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2)) else { usage() };
    let (Ok(listen), Ok(upstream)) = (listen.parse::<SocketAddr>(), upstream.parse::<SocketAddr>()) else { usage() };
    let workers = match args.get(3) {
        Some(n) => n.parse::<usize>().unwrap_or_else(|_| usage()),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let listener = std::net::TcpListener::bind(listen).and_then(|l| l.set_nonblocking(true).map(|()| l)).unwrap_or_else(|e| {
        eprintln!("bare_proxy: cannot listen on {listen}: {e}");
        std::process::exit(1);
    });
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let l = listener.try_clone().expect("clone the listener");
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(l).expect("register the listener");
                    // The same hyper settings as the router's (one flattened write per message).
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.writev(false);
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let conn = http.serve_connection(TokioIo::new(stream), service_fn(move |req| forward(upstream, req)));
                        tokio::spawn(conn);
                    }
                })
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
