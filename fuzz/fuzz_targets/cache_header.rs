//! The router's `X-Gitlab-Cell-Cache` parser and trust check (`[header value] \n [request
//! path]`): parsed headers re-format and re-parse to themselves, accepted ones name a
//! configured cell, cover the request path, and once cached steer nothing they do not cover.
//! See `src/router_checks.rs`.
#![no_main]

use std::sync::OnceLock;

use cells_learn_fuzz::router_checks::{cache_header, config};
use cells_router::Config;
use libfuzzer_sys::fuzz_target;

fn cfg() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(config)
}

fuzz_target!(|data: &[u8]| cache_header(cfg(), data));
