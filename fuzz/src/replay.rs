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
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
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

/// The process's resident set size in MB (Linux `/proc/self/status`), or 0 elsewhere.
pub fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())))
        .map_or(0, |kb| kb / 1024)
}

/// Runs `check` over every file in `corpus` `passes` times in this process and returns the RSS
/// (MB) after each pass. The inputs are the same on every pass, so RSS that levels off after the
/// first passes is caches and high-water marks, and RSS that keeps rising is a leak.
pub fn corpus_memory(corpus: &Path, passes: usize, check: impl Fn(&[u8])) -> Vec<u64> {
    let mut files: Vec<_> = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| panic!("reading {} (run script/fuzz first): {e}", corpus.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    (0..passes)
        .map(|_| {
            for data in &inputs {
                check(data);
            }
            rss_mb()
        })
        .collect()
}
