//! Journey path specs: `parse_spec` must return Ok or Err for any string, never panic,
//! overflow its stack or hang; a spec it accepts names each parameter once.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cells_learn::journey::{param_names, parse_spec};

fuzz_target!(|spec: &str| {
    if let Ok(nodes) = parse_spec(spec) {
        let names = param_names(&nodes);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "parse_spec accepted duplicate parameters: {names:?}");
    }
});
