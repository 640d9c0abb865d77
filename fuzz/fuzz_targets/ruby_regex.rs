//! Ruby (Onigmo) requirement regexes: `[options byte] regex \0 haystack` → parse, translate,
//! budgeted exact match; none of it may panic or hang. See `src/core_checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cells_learn_fuzz::core_checks::ruby_regex(data));
