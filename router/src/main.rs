//! The `cells-router` binary: flags and config, logging, signals. Everything else is the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if args.log_format == "json" {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.compact().init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cells-router: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cells-router: cannot listen on {}: {e}", cfg.listen);
                return 1;
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(router = %cfg.name, listen = %addr, cells = cfg.cells.len(), default_cell = %cfg.default_cell, "cells-router listening");
        let state = cells_router::State::new(cfg);
        cells_router::serve(listener, state, shutdown_signal()).await;
        0
    });
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
