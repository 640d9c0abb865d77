//! The router's learn-answer parser and validator (`[mode] [request path tail] \n [body]`, as
//! `Learner::attempt` reads a 200 answer): `check_answer` accepts exactly the answers whose
//! cell is configured and whose path covers the request path, and an accepted answer, once
//! cached, steers nothing it does not cover. See `src/router_checks.rs`.
#![no_main]

use std::sync::OnceLock;

use cells_learn_fuzz::router_checks::{config, router_learn};
use cells_router::Config;
use libfuzzer_sys::fuzz_target;

fn cfg() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(config)
}

fuzz_target!(|data: &[u8]| router_learn(cfg(), data));
