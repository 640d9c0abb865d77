//! Arbitrary route tables (JSON): parse and compile (lazy DFA) return Ok or Err, and a table
//! that compiles classifies probes with valid matches. See `src/core_checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cells_learn_fuzz::core_checks::routes_table(data));
