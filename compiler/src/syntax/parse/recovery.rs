//! Error recovery inside an item: finds the clause that holds a syntax error so the parser
//! can leave it out and parse the rest of the item (an agent with one misspelled rule
//! keeps its other rules, and its name stays declared). Works on the item's text by lines:
//! clauses of a block start a line of their own, and a line that starts with `and`, `or`,
//! `when`, ... continues the clause above. Only finds ranges; it never decides what parses.

use std::ops::Range;

use crate::syntax::lexer::clause_keywords;

/// Item keywords whose second word is the name the item declares.
pub(super) const DECLARES_NAME: &[&str] = &[
    "isolate",
    "resource",
    "sink",
    "tool",
    "threshold",
    "escalation",
    "agent",
    "set",
];

/// Words (and characters) that, first on a line, continue the clause of the line above.
const CONTINUATIONS: &[&str] = &[
    "and", "or", "not", "when", "then", "to", "because", "over", "expires", ",", ")", "(",
];

/// The byte range (in `text`, one item) of the clause that holds the error at `error`,
/// from the start of its first line to the end of its last; `None` when the error is not
/// inside the braces of a block whose clauses can be left out.
pub(super) fn bad_clause(text: &str, error: usize) -> Option<Range<usize>> {
    let keyword = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    let clauses = clause_keywords(keyword)?;
    let open = text.find('{')?;
    // A block that is never closed is one error (the missing `}`), not one per clause.
    let close = text.rfind('}').filter(|&c| c > open)?;
    if error <= open {
        return None;
    }
    let body_start = open + 1;
    let error = error.min(close);
    let mut start = line_start(text, error).max(body_start);
    let (first_at, first) = first_word(text, start, close);
    // The error is the first word of its line and that word begins a clause (or closes
    // the block): the clause above ended too early, so it is the bad one.
    if error <= first_at && (clauses.contains(&first) || text[error..].starts_with('}')) {
        start = previous_line(text, start, body_start)?;
    }
    while start > body_start && CONTINUATIONS.contains(&first_word(text, start, close).1) {
        start = line_start(text, start - 1).max(body_start);
    }
    let mut end = line_end(text, start, close);
    while end < close {
        let next = end + 1;
        if !CONTINUATIONS.contains(&first_word(text, next, close).1) {
            break;
        }
        end = line_end(text, next, close);
    }
    (!text[start..end].trim().is_empty()).then_some(start..end)
}

/// `text` with `range` turned to spaces (line breaks kept), so offsets do not move.
pub(super) fn blank(text: &str, range: Range<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..range.start]);
    out.extend(text[range.clone()].chars().flat_map(|c| {
        let width = if c == '\n' || c == '\r' {
            0
        } else {
            c.len_utf8()
        };
        std::iter::repeat_n(' ', width).chain((width == 0).then_some(c))
    }));
    out.push_str(&text[range.end..]);
    out
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, at: usize, close: usize) -> usize {
    text[at..close].find('\n').map_or(close, |i| at + i)
}

/// The first word (or punctuation character) of the line from `at`, and where it is.
fn first_word(text: &str, at: usize, close: usize) -> (usize, &str) {
    let line = &text[at..line_end(text, at, close)];
    let trimmed = line.trim_start();
    let offset = at + (line.len() - trimmed.len());
    let word_len = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(trimmed.len());
    let word_len = if word_len == 0 {
        trimmed.chars().next().map_or(0, char::len_utf8)
    } else {
        word_len
    };
    (offset, &trimmed[..word_len])
}

/// The start of the nearest line above `start` that holds something other than blanks
/// and comments, not above the block's first line.
fn previous_line(text: &str, start: usize, body_start: usize) -> Option<usize> {
    let mut at = start;
    while at > body_start {
        at = line_start(text, at - 1).max(body_start);
        let line = text[at..].lines().next().unwrap_or("").trim();
        if !line.is_empty() && !line.starts_with("//") {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(text: &str, at: &str) -> Option<String> {
        let error = text.find(at)?;
        bad_clause(text, error).map(|r| text[r].trim().to_string())
    }

    #[test]
    fn a_misspelled_clause_keyword_is_its_own_line() {
        let agent = "agent a {\n  owner \"x\"\n  escalte pay to r\n  allow pay\n}";
        assert_eq!(
            clause(agent, "escalte").as_deref(),
            Some("escalte pay to r")
        );
    }

    #[test]
    fn an_error_at_the_next_clause_blames_the_one_above() {
        let agent = "agent a {\n  owner\n  // note\n  allow pay\n}";
        assert_eq!(clause(agent, "allow").as_deref(), Some("owner"));
        let route = "escalation r {\n  notify \"q\"\n  timeout 4 hours then deny\n}";
        assert_eq!(
            clause(route, "4 hours").as_deref(),
            Some("timeout 4 hours then deny")
        );
    }

    #[test]
    fn continuation_lines_belong_to_the_clause() {
        let agent = "agent a {\n  deny pay when amount > x\n    and ! y\n  allow pay\n}";
        assert_eq!(
            clause(agent, "!").as_deref(),
            Some("deny pay when amount > x\n    and ! y")
        );
    }

    #[test]
    fn blocks_without_recovery_and_headers_are_left_alone() {
        assert_eq!(clause("test \"t\" {\n  a calls b\n  oops\n}", "oops"), None);
        assert_eq!(clause("agent {\n  allow x\n}", "{"), None);
        assert_eq!(clause("agent a {\n  alow x\n", "alow"), None);
    }

    #[test]
    fn blanking_keeps_offsets_and_line_breaks() {
        let text = "ab\ncdé\nf";
        let out = blank(text, 3..7);
        assert_eq!(out.len(), text.len());
        assert_eq!(out, "ab\n    \nf");
    }
}
