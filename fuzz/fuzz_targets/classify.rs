//! The shared gitlabish route table, arbitrary requests (`[method selector] path`): match
//! invariants, and `Learner::learned` agrees with `recognize` and covers the normalized path.
//! See `src/core_checks.rs`.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use cells_learn_fuzz::core_checks::{classify, ClassifyFixture};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static ClassifyFixture {
    static FIXTURE: OnceLock<ClassifyFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| ClassifyFixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/gitlabish-routes.json")))
}

fuzz_target!(|data: &[u8]| classify(fixture(), data));
