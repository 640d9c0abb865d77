//! Differential tests: the crate's DFA classifier against a slow, obviously-correct oracle.
//!
//! The oracle does what Rails 6.1's Journey does, the slow way: each route's path spec is
//! turned into the regex *string* `ActionDispatch::Journey::Path::Pattern::AnchoredRegexp`
//! (or `UnanchoredRegexp`, for mounted apps) builds, that string is compiled by Oniguruma
//! (Onigmo's parent) with Ruby syntax, and the routes are tried one by one in definition order,
//! with Journey's verb and HEAD rules. Nothing of the crate is used for this except
//! `normalize_path` and `unescape` (tested on their own against Rails' vectors): the spec
//! tokenizer and parser, the regex construction and the parameter numbering here are
//! independent re-readings of `scanner.rb`, `parser.y`, `path/pattern.rb` and `router.rb`.
//!
//! Paths are matched as bytes (Oniguruma's ASCII encoding), as Rails matches `PATH_INFO`, an
//! ASCII-8BIT string: `.` is any byte but `\n`, case folding is ASCII only.
//!
//! One more piece of Journey is modelled: routes whose symbols all keep the default regexp are
//! not found by their regex but by Journey's simulator (`GTG::Simulator`), which reads the path
//! as `[/.?]|[^/.?]+` tokens. It only decides differently from the regex when the path ends in
//! a newline (`\Z` accepts one; a literal token `edit\n` is not `edit`).
//!
//! The oracle is checked against Rails' own recorded decisions (the corpus vectors, always) and
//! against Rails itself (`oracle_agrees_with_rails_itself`: it needs ruby and actionpack, which
//! `script/bootstrap` installs). Every property runs a fixed number of cases from a fixed seed,
//! without a regression file, so a run is deterministic. The disagreements the properties found
//! in the crate are kept as regression tests with Rails' own answers (`rails_regressions`).

mod corpus;
mod every_match;
mod oracle;
mod oracle_checks;
mod paths;
mod properties;
mod rails_itself;
mod rails_regressions;
