//! Glob patterns for text arguments: `*` matches any run of characters (none included),
//! `?` matches exactly one character, `\*`, `\?` and `\\` match the character itself, and
//! every other character matches itself (case-sensitive). There are no character
//! classes and no regular expressions: a glob is readable by a compliance reviewer, and
//! matching runs in `O(pattern × text)` time without backtracking blow-up.

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
/// takes at most `O(pattern × text)` steps.
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
mod tests {
    use super::*;

    /// A slow, obviously right matcher to compare against.
    fn reference(tokens: &[GlobToken], text: &[char]) -> bool {
        match tokens.split_first() {
            None => text.is_empty(),
            Some((GlobToken::Star, rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
            Some((GlobToken::One, rest)) => !text.is_empty() && reference(rest, &text[1..]),
            Some((GlobToken::Char(c), rest)) => {
                text.first() == Some(c) && reference(rest, &text[1..])
            }
        }
    }

    #[test]
    fn agrees_with_a_reference_matcher_on_every_short_case() {
        let alphabet = ['a', 'b', '*', '?', 'é'];
        let texts = ['a', 'b', 'é'];
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = patterns
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            patterns.extend(longer);
        }
        patterns.sort();
        patterns.dedup();
        let mut inputs = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = inputs
                .iter()
                .flat_map(|p| texts.iter().map(move |c| format!("{p}{c}")))
                .collect();
            inputs.extend(longer);
        }
        inputs.sort();
        inputs.dedup();
        for p in &patterns {
            let tokens = glob_tokens(p).unwrap();
            for t in &inputs {
                let chars: Vec<char> = t.chars().collect();
                assert_eq!(
                    glob_match(p, t),
                    reference(&tokens, &chars),
                    "{p:?} on {t:?}"
                );
            }
        }
    }

    #[test]
    fn many_stars_on_a_long_text_stay_fast() {
        // Exponential for a naive backtracker; here a few hundred thousand steps.
        let pattern = "*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(400);
        assert!(!glob_match(pattern, &text));
    }

    #[test]
    fn escapes() {
        assert!(glob_match(r"\*", "*"));
        assert!(!glob_match(r"\*", "x"));
        assert!(glob_match(r"a\\b", r"a\b"));
        assert_eq!(glob_tokens(r"\x"), Err(GlobError::NeedlessEscape('x')));
    }
}
