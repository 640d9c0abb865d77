//! Replaying saved inputs (`fuzz/regressions/<target>/`) through a target's check function, for
//! the regression tests (`tests/fuzz_regressions.rs`, `router/tests/fuzz_regressions.rs`, which
//! include this file by path). Only `std` is used.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Every saved input of `target` under `regressions` (`fuzz/regressions`), sorted by name, as
/// (file name, bytes); at least `min` of them, since a replay over an emptied directory would
/// pass without checking anything.
pub fn inputs(regressions: &Path, target: &str, min: usize) -> Vec<(String, Vec<u8>)> {
    let dir = regressions.join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|x| x == "md"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= min, "{}: {} inputs, expected at least {min}", dir.display(), out.len());
    out
}

/// Runs `check` on every saved input of `target` and fails naming every input that panics,
/// with its first bytes in hex and the panic message.
pub fn replay(regressions: &Path, target: &str, min: usize, check: impl Fn(&[u8])) {
    let mut failures = Vec::new();
    for (name, data) in inputs(regressions, target, min) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            let hex: String = data.iter().take(128).map(|b| format!("{b:02x}")).collect();
            failures.push(format!("{target}/{name} ({hex}): {msg}"));
        }
    }
    assert!(failures.is_empty(), "{} saved input(s) fail:\n{}", failures.len(), failures.join("\n"));
}
