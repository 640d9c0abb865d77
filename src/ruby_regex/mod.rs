//! Ruby (Onigmo) regexes as Rails route requirements use them: parsed once, then written as a
//! DFA pattern ([`translate`]) and run exactly by [`crate::matcher`].

pub mod ast;
pub mod hir;
pub mod parse;
pub mod translate;
