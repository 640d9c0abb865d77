//! Ruby (Onigmo) requirement regexes: parse, translate to a DFA pattern, and run the exact
//! backtracking matcher on a short haystack with a step budget. None of it may panic or hang.
//!
//! Input layout (simple, so `script/fuzz` can seed it with the corpus' requirements):
//! `[options byte] [regex source, UTF-8] [0x00] [haystack]`; the options byte is masked to the
//! `Regexp#options` bits (i = 1, x = 2, m = 4) and the haystack cut to 64 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cells_learn::matcher::Matcher;
use cells_learn::ruby_regex::{parse::parse, translate::translate};

/// Haystacks stay short: the budget, not the haystack, bounds the matcher's work.
const MAX_HAY: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else { return };
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let Ok(source) = std::str::from_utf8(&rest[..split]) else { return };
    let hay = rest.get(split + 1..).unwrap_or(&[]);
    let hay = &hay[..hay.len().min(MAX_HAY)];

    let Ok(node) = parse(source, u32::from(options) & 7) else { return };
    let translation = translate(&node);
    assert!(translation.pattern.starts_with("(?-u)"), "pattern {:?}", translation.pattern);
    let matcher = Matcher::new(node, 0);
    // With no parameter slots a match has no spans; Err(BudgetExceeded) is an allowed answer.
    if let Ok(Some(spans)) = matcher.captures_with_budget(hay, 100_000) {
        assert!(spans.is_empty());
    }
});
