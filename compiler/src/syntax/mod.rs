//! Syntax: the lossless lexer, the pest grammar, item splitting for error recovery, and
//! the syntax tree. Text in, tree and diagnostics out; never fails, never does IO.

pub mod ast;
pub mod lexer;
pub mod parse;
pub mod split;

pub use parse::{Parsed, parse};
