//! The learn endpoint's JSON answer (`LearnResponse` via serde): round trip, stable and minimal
//! serialization, and `covers` against an independent coverage rule. See `src/core_checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cells_learn_fuzz::core_checks::learn_response(data));
