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
//!
//! `BARE_PROXY_ADDS=hygiene` or `hygiene,cache` (unset: nothing) adds, for measuring what parts
//! of the router cost on their own in the same harness, the router's own code for the header
//! work issue 14 and RFC 9110 §7.6.1 require of any forwarding proxy (`proxy::upstream_headers`:
//! hop-by-hop and internal headers stripped, `X-Forwarded-For/-Proto/-Host` and `X-Real-IP` set,
//! `Forwarded` removed; `proxy::sanitize_response` on the answer), then a lookup of the request's
//! path in the router's route cache holding one learned prefix. Each variant is its own
//! monomorphized copy of the forwarding path, so the plain floor runs the code it always ran.

use std::cell::RefCell;
use std::net::SocketAddr;

use std::sync::Arc;

use cells_router::cache::RouteCache;
use cells_router::proxy::{self, Peer, Private};
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

/// What a variant of the floor does besides forwarding (see the module documentation). `Conn`
/// is what it keeps per connection: nothing for the floor itself.
trait Adds: Copy + Send + Sync + 'static {
    type Conn: Clone + Send + Sync + 'static;
    fn connection(self, peer: SocketAddr) -> Self::Conn;
    fn request(self, conn: &Self::Conn, req: &mut Request<Incoming>);
    fn response(self, resp: &mut Response<Incoming>);
}

/// The floor itself: nothing.
#[derive(Clone, Copy)]
struct Nothing;

impl Adds for Nothing {
    type Conn = ();
    #[inline(always)]
    fn connection(self, _: SocketAddr) {}
    #[inline(always)]
    fn request(self, _: &(), _: &mut Request<Incoming>) {}
    #[inline(always)]
    fn response(self, _: &mut Response<Incoming>) {}
}

/// The router's header work, and with `cache` a route-cache lookup per request.
struct RouterParts {
    cfg: cells_router::Config,
    cache: Option<RouteCache>,
}

impl Adds for &'static RouterParts {
    /// The client's address as the router keeps it per connection.
    type Conn = Arc<Peer>;

    fn connection(self, peer: SocketAddr) -> Arc<Peer> {
        Arc::new(Peer::new(peer))
    }

    fn request(self, peer: &Arc<Peer>, req: &mut Request<Incoming>) {
        if let Some(cache) = &self.cache {
            std::hint::black_box(cache.lookup(req.uri().path()));
        }
        let found = proxy::scan(req.headers(), Private::Internal);
        let headers = std::mem::take(req.headers_mut());
        *req.headers_mut() = proxy::upstream_headers(&self.cfg, headers, found, peer, false);
    }

    fn response(self, resp: &mut Response<Incoming>) {
        let found = proxy::scan(resp.headers(), Private::CellAnswers);
        proxy::sanitize_response(resp.headers_mut(), found, false);
    }
}

impl RouterParts {
    /// From `BARE_PROXY_ADDS`; None when it is unset or empty.
    fn from_env(upstream: SocketAddr) -> Option<RouterParts> {
        let adds = std::env::var("BARE_PROXY_ADDS").unwrap_or_default();
        let adds: Vec<&str> = adds.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        if adds.is_empty() {
            return None;
        }
        if let Some(bad) = adds.iter().find(|a| !matches!(**a, "hygiene" | "cache")) {
            eprintln!("bare_proxy: BARE_PROXY_ADDS takes hygiene and cache, not {bad:?}");
            std::process::exit(2);
        }
        let toml = format!("default_cell = \"cell_0\"\n[[cells]]\nname = \"cell_0\"\nurl = \"http://{upstream}\"\n");
        let cfg = cells_router::Config::from_toml(&toml, &cells_router::Args::default()).unwrap_or_else(|e| {
            eprintln!("bare_proxy: {e}");
            std::process::exit(2);
        });
        let cache = adds.contains(&"cache").then(|| {
            let cache = RouteCache::new(100_000, std::time::Duration::from_secs(3600), std::time::Duration::ZERO);
            // The prefix script/bench-router's cells answer for its `/bench/x`.
            cache.insert("/bench", false, 0);
            cache
        });
        Some(RouterParts { cfg, cache })
    }
}

async fn forward<A: Adds>(
    upstream: SocketAddr,
    adds: A,
    conn: A::Conn,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    adds.request(&conn, &mut req);
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
    let mut resp = sender.send_request(req).await?;
    IDLE.with(|idle| idle.borrow_mut().push(sender));
    adds.response(&mut resp);
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
    let threads = match RouterParts::from_env(upstream) {
        Some(parts) => serve(&listener, upstream, workers, &*Box::leak(Box::new(parts))),
        None => serve(&listener, upstream, workers, Nothing),
    };
    // Exit on SIGTERM or SIGINT through `exit`, so that what a build registered to run at exit
    // (an instrumented build's profile: script/build-router-pgo) does run; the workers never end.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            for t in threads {
                let _ = t.join();
            }
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
    std::process::exit(0);
}

/// `workers` threads, each one event loop accepting from `listener`.
fn serve<A: Adds>(listener: &std::net::TcpListener, upstream: SocketAddr, workers: usize, adds: A) -> Vec<std::thread::JoinHandle<()>> {
    (0..workers)
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
                        let Ok((stream, peer)) = listener.accept().await else {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let conn = adds.connection(peer);
                        let service = service_fn(move |req| forward(upstream, adds, conn.clone(), req));
                        tokio::spawn(http.serve_connection(TokioIo::new(stream), service));
                    }
                })
            })
        })
        .collect()
}
