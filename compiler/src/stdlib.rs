//! The standard library: `.agentpolicy` modules from `stdlib/`, embedded in the binary so
//! `use std.legal` works on any machine without files beside the compiler.

/// A standard-library module: its `use` path, a display path, and its text.
#[derive(Debug, Clone, Copy)]
pub struct StdModule {
    pub name: &'static str,
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! modules {
    ($($name:literal => $file:literal),* $(,)?) => {
        /// Every module, in a fixed order (their file ids follow the user's files).
        pub const MODULES: &[StdModule] = &[$(StdModule {
            name: $name,
            path: concat!("<stdlib>/", $file),
            text: include_str!(concat!("../../stdlib/", $file)),
        }),*];
    };
}

modules! {
    "std.common" => "common.agentpolicy",
    "std.legal" => "legal.agentpolicy",
    "std.healthcare" => "healthcare.agentpolicy",
    "std.finance" => "finance.agentpolicy",
    "std.engineering" => "engineering.agentpolicy",
}
