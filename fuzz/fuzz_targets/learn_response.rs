//! The learn endpoint's JSON answer, as the router reads it: whatever parses must survive a
//! serialize → parse round trip unchanged, and serializing is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cells_learn::LearnResponse;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = serde_json::from_slice::<LearnResponse>(data) else { return };
    let bytes = serde_json::to_vec(&first).expect("a parsed LearnResponse serializes");
    let second: LearnResponse = serde_json::from_slice(&bytes).expect("a serialized LearnResponse parses");
    assert_eq!(first, second);
    assert_eq!(bytes, serde_json::to_vec(&second).unwrap());
});
