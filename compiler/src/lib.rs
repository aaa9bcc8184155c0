//! The agentpolicy compiler library: text in, data out.
//!
//! It owns the language (syntax, semantic analysis), the diagnostics, and the salsa
//! database the CLI and the language server share. It does no IO: no file system, no
//! printing, no clock. The CLI (`main.rs`) reads files and prints.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod codegen;
mod compile;
pub mod db;
pub mod diagnostics;
pub mod explain;
pub mod files;
pub mod format;
pub mod interpret;
pub mod lifecycle;
pub mod line_index;
pub mod model;
pub mod policy_test;
pub mod render;
pub mod sema;
pub mod stdlib;
pub mod syntax;

/// Exact values as text (money, decimals, percentages, durations): the runtime owns the
/// one parser and formatter, so policies, requests, records and hovers agree.
pub use agentpolicy_runtime::values;

pub use compile::{Compiled, compile};
