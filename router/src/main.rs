//! The `cells-router` binary: flags and config, logging, signals. Everything else is the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's malloc: hyper allocates a fresh 8 KiB read buffer per request
/// on each side and a handful of small objects; mimalloc spends the fewest instructions on
/// them of the allocators tried (glibc, mimalloc v2 and v3, jemalloc: the README's figures).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = cells_router::Args::parse();
    let cfg = match cells_router::Config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cells-router: {e}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&args.log_level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Access lines are written by a background thread: one unbuffered write(2) to stderr per
    // request on the serving thread cost more than forwarding it (callgrind; the README's
    // figures). Not lossy: when the queue is full the request waits, so
    // no line is ever dropped; the guard flushes what is queued when main returns.
    // The writer thread writes what it has queued through a buffer and flushes it whenever the
    // queue runs empty: one write(2) per batch of lines rather than per line, and no line waits
    // for more to come.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(stderr);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    if args.log_format == "json" {
        builder.event_format(cells_router::json_log::JsonLines).init();
    } else {
        builder.compact().init();
    }
    // One listening socket, shared by `workers` threads that each run a single-threaded event
    // loop (accept, serve, forward on that thread's own upstream pool), like nginx's workers:
    // a request never hops between threads, which a work-stealing runtime would make it do.
    let listener = match std::net::TcpListener::bind(cfg.listen).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cells-router: cannot listen on {}: {e}", cfg.listen);
            std::process::exit(1);
        }
    };
    let internal = match std::net::TcpListener::bind(cfg.internal_listen).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cells-router: cannot listen on {} (internal_listen): {e}", cfg.internal_listen);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let internal_addr = internal.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(router = %cfg.name, listen = %addr, internal_listen = %internal_addr, cells = cfg.cells.len(), default_cell = %cfg.default_cell, workers = cfg.workers, "cells-router listening");
    let workers = cfg.workers;
    let state = cells_router::State::new(cfg);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(workers + 1);
    // Health and metrics on a thread of their own: a scrape never waits behind client traffic.
    let (st, mut stop) = (state.clone(), stop_rx.clone());
    let spawned = std::thread::Builder::new().name("cells-router-internal".into()).spawn(move || {
        let started = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|rt| {
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(internal)?;
                cells_router::serve_internal(listener, st, async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
                Ok(())
            })
        });
        if let Err(e) = started {
            eprintln!("cells-router: internal listener failed: {e}");
            std::process::exit(1);
        }
    });
    match spawned {
        Ok(t) => threads.push(t),
        Err(e) => {
            eprintln!("cells-router: cannot start the internal listener: {e}");
            std::process::exit(1);
        }
    }
    for i in 0..workers {
        let spawned = listener.try_clone().and_then(|l| {
            let (st, mut stop) = (state.clone(), stop_rx.clone());
            std::thread::Builder::new().name(format!("cells-router-{i}")).spawn(move || {
                cells_router::upstream::set_worker(i);
                let started = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(l)?;
                        cells_router::serve(listener, st, async move {
                            let _ = stop.wait_for(|stopped| *stopped).await;
                        })
                        .await;
                        Ok(())
                    })
                });
                if let Err(e) = started {
                    // A router missing a worker would serve some connections and not others.
                    eprintln!("cells-router: worker {i} failed: {e}");
                    std::process::exit(1);
                }
            })
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("cells-router: cannot start worker {i}: {e}");
                std::process::exit(1);
            }
        }
    }
    drop(listener);
    let signals = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cells-router: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    signals.block_on(shutdown_signal());
    let _ = stop_tx.send(true);
    let mut code = 0;
    for t in threads {
        if t.join().is_err() {
            code = 1;
        }
    }
    // exit() runs no destructors: flush the queued log lines first.
    drop(log_guard);
    std::process::exit(code);
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
