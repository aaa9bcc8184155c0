//! Glob patterns for text arguments: `*` matches any run of characters (none included),
//! `?` matches exactly one character, `\*`, `\?` and `\\` match the character itself, and
//! every other character matches itself (case-sensitive). There are no character
//! classes and no regular expressions: a glob is readable by a compliance reviewer.
//!
//! Two matchers with one meaning: [`Glob`] (`compiled.rs`), compiled once when a table is
//! loaded and linear in the text, is what the request builder runs; [`glob_match`], the
//! two-pointer matcher (`O(pattern × text)`, no compilation), is the readable reference
//! the compiler's interpreter uses and the tests hold [`Glob`] to.

mod compiled;

pub use compiled::Glob;

/// One element of a glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobToken {
    /// `*`
    Star,
    /// `?`
    One,
    /// A character matched literally.
    Char(char),
}

/// Why a glob is not well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobError {
    /// A `\` at the end of the pattern escapes nothing.
    TrailingBackslash,
    /// `\` before a character that needs no escape (only `*`, `?` and `\` do).
    NeedlessEscape(char),
}

impl std::fmt::Display for GlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GlobError::TrailingBackslash => f.write_str("the pattern ends with a lone `\\`"),
            GlobError::NeedlessEscape(c) => {
                write!(f, "`\\{c}` escapes a character that needs no escape")
            }
        }
    }
}

/// The next token of `pattern` at byte `at`, and its length in bytes.
fn token(pattern: &str, at: usize) -> Option<(GlobToken, usize)> {
    let mut chars = pattern.get(at..)?.chars();
    let c = chars.next()?;
    Some(match c {
        '*' => (GlobToken::Star, 1),
        '?' => (GlobToken::One, 1),
        '\\' => match chars.next() {
            Some(e) => (GlobToken::Char(e), 1 + e.len_utf8()),
            None => (GlobToken::Char('\\'), 1),
        },
        c => (GlobToken::Char(c), c.len_utf8()),
    })
}

/// The tokens of a well-formed glob.
///
/// ```
/// use agentpolicy_runtime::{GlobToken, glob_tokens};
/// assert_eq!(
///     glob_tokens(r"*@a\?").unwrap(),
///     vec![GlobToken::Star, GlobToken::Char('@'), GlobToken::Char('a'), GlobToken::Char('?')]
/// );
/// assert!(glob_tokens("oops\\").is_err());
/// ```
pub fn glob_tokens(pattern: &str) -> Result<Vec<GlobToken>, GlobError> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => GlobToken::Star,
            '?' => GlobToken::One,
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => GlobToken::Char(e),
                Some(e) => return Err(GlobError::NeedlessEscape(e)),
                None => return Err(GlobError::TrailingBackslash),
            },
            c => GlobToken::Char(c),
        });
    }
    Ok(out)
}

/// Whether `text` matches the glob `pattern`. Allocation-free; the classic two-pointer
/// algorithm that returns only to the most recent `*`, so a pattern with many stars
/// takes at most `O(pattern × text)` steps. The reference matcher: decisions on long
/// texts use [`Glob`], which is linear in the text.
///
/// ```
/// use agentpolicy_runtime::glob_match;
/// assert!(glob_match("*@acme.example", "ana@acme.example"));
/// assert!(!glob_match("*@acme.example", "ana@acme.example.evil"));
/// assert!(glob_match("GB??NWBK*", "GB29NWBK60161331926819"));
/// assert!(glob_match(r"what\?", "what?"));
/// assert!(!glob_match(r"what\?", "whatx"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // After a mismatch, resume at the pattern just past the last `*`, one character
    // further into the text than last time.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if let Some((tok, len)) = token(pattern, p) {
            let rest = text.get(t..).unwrap_or("");
            match tok {
                GlobToken::Star => {
                    p += len;
                    resume = Some((p, t));
                    continue;
                }
                GlobToken::One => {
                    if let Some(c) = rest.chars().next() {
                        p += len;
                        t += c.len_utf8();
                        continue;
                    }
                }
                GlobToken::Char(c) => {
                    if rest.starts_with(c) {
                        p += len;
                        t += c.len_utf8();
                        continue;
                    }
                }
            }
        } else if t >= text.len() {
            return true;
        }
        let Some((sp, st)) = resume else {
            return false;
        };
        let Some(c) = text.get(st..).and_then(|r| r.chars().next()) else {
            return false;
        };
        resume = Some((sp, st + c.len_utf8()));
        p = sp;
        t = st + c.len_utf8();
    }
}

#[cfg(test)]
mod tests;
