//! The lossless token stream of an `.agentpolicy` file.
//!
//! Every byte of the input belongs to exactly one token, trivia and comments included,
//! so concatenating the token texts gives the input back. The formatter, the item
//! splitter used for error recovery, and the language server's semantic tokens read this
//! stream. It must not interpret meaning: keywords are plain identifiers here, because
//! the grammar decides where a word is a keyword.

use logos::Logos;

/// The kind of a token. `Error` covers any byte sequence no other kind accepts, so lexing
/// never fails.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    #[regex(r"[ \t\f\u{feff}]+")]
    Whitespace,
    /// LF, CRLF, or a lone CR, which the grammar also takes as whitespace.
    #[regex(r"\r\n|\n|\r")]
    Newline,
    #[regex(r"//[^\r\n]*")]
    LineComment,
    /// `/* ... */`; an unterminated one runs to the end of the file (and `parse` then
    /// reports it).
    #[token("/*", block_comment)]
    BlockComment,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    /// `$10,000`, `$1.5M`, `$100.50`, `$10_000`.
    #[regex(r"\$[0-9][0-9_]*(,[0-9]{3})*(\.[0-9]+)?[KMB]?")]
    Money,
    /// `20%`, `0.5%`.
    #[regex(r"[0-9][0-9_]*(\.[0-9]+)?%")]
    Percent,
    /// `15m`, `5m`, `7y`, `30d`, `500ms`.
    #[regex(r"[0-9][0-9_]*(ms|s|m|h|d|w|y)", priority = 4)]
    Duration,
    #[regex(r"[0-9][0-9_]*(\.[0-9]+)?")]
    Number,
    #[regex(r#""([^"\\\r\n]|\\.)*""#)]
    String,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("?")]
    Question,
    #[token("*")]
    Star,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("=")]
    Eq,
    Error,
}

impl TokenKind {
    /// Whitespace, newlines and comments: kept for the formatter, skipped by the grammar.
    pub fn is_trivia(self) -> bool {
        matches!(
            self,
            TokenKind::Whitespace
                | TokenKind::Newline
                | TokenKind::LineComment
                | TokenKind::BlockComment
        )
    }

    pub fn is_comment(self) -> bool {
        matches!(self, TokenKind::LineComment | TokenKind::BlockComment)
    }
}

fn block_comment(lex: &mut logos::Lexer<'_, TokenKind>) {
    let rest = lex.remainder();
    let len = rest.find("*/").map_or(rest.len(), |i| i + 2);
    lex.bump(len);
}

/// One token: its kind and its byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: u32,
    pub end: u32,
}

impl Token {
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        source
            .get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

/// Splits `source` into tokens that cover it exactly, in order.
pub fn lex(source: &str) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    for Token { kind, start, end } in lex_lazily(source) {
        // Merge adjacent error bytes into one token so a run of garbage is one diagnostic.
        if kind == TokenKind::Error
            && let Some(last) = tokens.last_mut()
            && last.kind == TokenKind::Error
            && last.end == start
        {
            last.end = end;
            continue;
        }
        tokens.push(Token { kind, start, end });
    }
    tokens
}

/// The tokens of `source`, one at a time, for callers that need only the first few.
/// Unlike [`lex`], adjacent error bytes are not merged.
pub fn lex_lazily(source: &str) -> impl Iterator<Item = Token> + '_ {
    let mut lexer = TokenKind::lexer(source);
    std::iter::from_fn(move || {
        let result = lexer.next()?;
        let span = lexer.span();
        Some(Token {
            kind: result.unwrap_or(TokenKind::Error),
            start: span.start as u32,
            end: span.end as u32,
        })
    })
}

/// Words that begin a top-level item. The item splitter starts a new item at each of
/// these when it stands at brace depth zero, or at the very start of a line.
pub const ITEM_KEYWORDS: &[&str] = &[
    "policy",
    "use",
    "tiers",
    "isolate",
    "resource",
    "sink",
    "tool",
    "threshold",
    "escalation",
    "agent",
    "assert",
    "test",
    "set",
    "retain",
];

/// The words that start a clause of `agent NAME { ... }`.
pub const AGENT_CLAUSE_KEYWORDS: &[&str] = &[
    "owner",
    "purpose",
    "max",
    "allow",
    "escalate",
    "deny",
    "autonomy",
    "limit",
    "breaker",
    "mode",
    "credential",
    "stage",
    "promote",
];

/// The words that start a clause of each kind of block (`agent NAME { ... }`, `tool NAME
/// { ... }`, ...), or `None` for an item kind without clauses of its own. One list for the
/// parser's recovery and did-you-mean and for the editor's completion.
pub fn clause_keywords(item_keyword: &str) -> Option<&'static [&'static str]> {
    Some(match item_keyword {
        "agent" => AGENT_CLAUSE_KEYWORDS,
        "escalation" => &["notify", "timeout"],
        "tool" => &["effect", "reads", "writes", "untrusted"],
        "resource" => &["tier", "keyed", "untrusted", "from"],
        "sink" => &["clearance", "keyed"],
        _ => return None,
    })
}

/// Every reserved word of the language, for completion and semantic tokens.
pub const KEYWORDS: &[&str] = &[
    "policy",
    "version",
    "use",
    "tiers",
    "isolate",
    "resource",
    "sink",
    "tool",
    "threshold",
    "escalation",
    "agent",
    "assert",
    "test",
    "tier",
    "keyed",
    "clearance",
    "effect",
    "reads",
    "writes",
    "notify",
    "timeout",
    "then",
    "owner",
    "purpose",
    "max",
    "allow",
    "escalate",
    "deny",
    "to",
    "when",
    "limit",
    "per",
    "breaker",
    "over",
    "suspend",
    "mode",
    "shadow",
    "enforce",
    "credential",
    "expires",
    "autonomy",
    "because",
    "and",
    "or",
    "not",
    "never",
    "calls",
    "every",
    "escalates",
    "no",
    "flow",
    "from",
    "expect",
    "with",
    "on",
    "into",
    "true",
    "false",
    "set",
    "untrusted",
    "matches",
    "in",
    "all",
    "any",
    "stage",
    "promote",
    "retain",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_the_input_exactly() {
        let src = "agent a {\r\n  allow x when amount <= $10,000 // c\n\t}\u{0}é";
        let tokens = lex(src);
        let rebuilt: String = tokens.iter().map(|t| t.text(src)).collect();
        assert_eq!(rebuilt, src);
    }

    #[test]
    fn block_comments_lex_as_one_token() {
        for src in [
            "/* c */",
            "/**/",
            "/***/",
            "/** doc **/",
            "/* a * b / c */",
            "/* two\r\n lines */",
            "/* é ✓ */",
        ] {
            let kinds: Vec<_> = lex(src).into_iter().map(|t| t.kind).collect();
            assert_eq!(kinds, vec![TokenKind::BlockComment], "{src:?}");
        }
        let kinds: Vec<_> = lex("/* a */ b */").into_iter().map(|t| t.kind).collect();
        assert_eq!(kinds[0], TokenKind::BlockComment);
        let kinds: Vec<_> = lex("/* open\n b").into_iter().map(|t| t.kind).collect();
        assert_eq!(kinds, vec![TokenKind::BlockComment]);
    }

    #[test]
    fn every_line_ending_is_a_newline() {
        let kinds: Vec<_> = lex("a\nb\r\nc\rd").into_iter().map(|t| t.kind).collect();
        use TokenKind::{Ident, Newline};
        assert_eq!(
            kinds,
            vec![Ident, Newline, Ident, Newline, Ident, Newline, Ident]
        );
    }

    #[test]
    fn literals_lex_as_one_token() {
        let src = "/**/ $1.5M 20% 15m 0.85 50_000 \"q:x\" /* a * b */";
        let kinds: Vec<_> = lex(src)
            .into_iter()
            .filter(|t| !matches!(t.kind, TokenKind::Whitespace | TokenKind::Newline))
            .map(|t| t.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                TokenKind::BlockComment,
                TokenKind::Money,
                TokenKind::Percent,
                TokenKind::Duration,
                TokenKind::Number,
                TokenKind::Number,
                TokenKind::String,
                TokenKind::BlockComment
            ]
        );
    }
}
