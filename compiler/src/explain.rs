//! The docs page of each diagnostic code, embedded at build time from docs/diagnostics.

include!(concat!(env!("OUT_DIR"), "/diagnostic_pages.rs"));

/// The Markdown page for `code` (`AP0001`), if there is one.
pub fn page(code: crate::diagnostics::Code) -> Option<&'static str> {
    PAGES
        .iter()
        .find(|(c, _)| *c == code.as_str())
        .map(|(_, text)| *text)
}
