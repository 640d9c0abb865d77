//! Journey path specs: `parse_spec` returns Ok or Err for any string (no panic, stack overflow
//! or hang); an accepted spec names each parameter once. See `src/core_checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|spec: &str| cells_learn_fuzz::core_checks::spec_parser(spec));
