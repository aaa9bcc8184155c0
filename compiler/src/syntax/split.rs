//! Splits a file into top-level items using the token stream, so each item is parsed on
//! its own and a syntax error in one never hides the others (error recovery at item
//! boundaries). It also measures nesting, so no input can drive the recursive grammar
//! into a stack overflow.

use super::lexer::{ITEM_KEYWORDS, Token, TokenKind};

/// Deepest nesting of parentheses and `not`s an item may have. Real policies use a
/// handful; the bound keeps the recursive parser far from the stack limit.
pub const MAX_NESTING: usize = 64;

/// One top-level chunk of a file: the byte range of its tokens (trivia trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    /// Deepest nesting inside the chunk, and the byte offset where it was reached.
    pub max_nesting: usize,
    pub deepest_at: usize,
}

/// Cuts `tokens` into chunks. A chunk starts at an item keyword that is the first thing
/// on its line and stands at brace depth zero, or at column zero (so an unclosed `{` does
/// not swallow the rest of the file). A chunk may hold several items on one line.
pub fn split_items(source: &str, tokens: &[Token]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut depth: usize = 0;
    let mut current: Option<Chunk> = None;
    let mut last_significant_end = 0usize;
    let mut nesting: usize = 0;
    let mut nots: usize = 0;
    let mut at_line_start = true;

    for (i, token) in tokens.iter().enumerate() {
        if token.kind == TokenKind::Newline {
            at_line_start = true;
            continue;
        }
        if token.kind.is_trivia() {
            continue;
        }
        let text = token.text(source);
        let column_zero = at_line_start && (i == 0 || tokens[i - 1].kind == TokenKind::Newline);
        // Items begin on a line of their own; words such as `tool` also occur inside
        // items (`assert every irreversible tool escalates`), never first on a line.
        let first_on_line = at_line_start;
        let starts_item = token.kind == TokenKind::Ident
            && ITEM_KEYWORDS.contains(&text)
            && first_on_line
            && (depth == 0 || column_zero);
        at_line_start = false;
        if starts_item || current.is_none() {
            if let Some(mut chunk) = current.take() {
                chunk.end = last_significant_end;
                chunks.push(chunk);
            }
            depth = 0;
            nesting = 0;
            nots = 0;
            current = Some(Chunk {
                start: token.start as usize,
                end: token.end as usize,
                max_nesting: 0,
                deepest_at: token.start as usize,
            });
        }
        match token.kind {
            TokenKind::LBrace | TokenKind::LBracket => depth += 1,
            TokenKind::RBrace | TokenKind::RBracket => depth = depth.saturating_sub(1),
            TokenKind::LParen => {
                depth += 1;
                nesting += 1;
            }
            TokenKind::RParen => {
                depth = depth.saturating_sub(1);
                nesting = nesting.saturating_sub(1);
            }
            _ => {}
        }
        if token.kind == TokenKind::Ident && text == "not" {
            nots += 1;
        } else if token.kind != TokenKind::LParen {
            nots = 0;
        }
        if let Some(chunk) = current.as_mut()
            && nesting + nots > chunk.max_nesting
        {
            chunk.max_nesting = nesting + nots;
            chunk.deepest_at = token.start as usize;
        }
        last_significant_end = token.end as usize;
    }
    if let Some(mut chunk) = current.take() {
        chunk.end = last_significant_end;
        chunks.push(chunk);
    }
    chunks
}
