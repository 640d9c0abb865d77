//! The fuzz targets' properties, kept out of `fuzz_targets/` so the regression tests run the
//! same code: `tests/fuzz_regressions.rs` (core) and `router/tests/fuzz_regressions.rs`
//! include these files by path and replay `regressions/<target>/` through them.

pub mod core_checks;
pub mod replay;
pub mod router_checks;
