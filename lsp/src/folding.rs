//! Folding ranges from the lossless tokens: every `{ … }` block that spans lines, runs of
//! two or more line comments, and multi-line block comments.

use agentpolicy::syntax::lexer::TokenKind;
use tower_lsp_server::ls_types::{FoldingRange, FoldingRangeKind, Uri};

use crate::state::World;

/// `textDocument/foldingRange`.
pub fn folding_ranges(world: &World<'_>, uri: &Uri) -> Result<Vec<FoldingRange>, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let parsed = world.state.parsed(doc);
    let line_of = |offset: u32| view.position(offset).line;
    let mut out = Vec::new();
    let mut open: Vec<u32> = Vec::new();
    // The current run of line comments, each on its own line: (first line, last line).
    let mut comments: Option<(u32, u32)> = None;
    let fold = |start: u32, end: u32, kind: Option<FoldingRangeKind>| FoldingRange {
        start_line: start,
        start_character: None,
        end_line: end,
        end_character: None,
        kind,
        collapsed_text: None,
    };
    for t in &parsed.tokens {
        match t.kind {
            TokenKind::LBrace => open.push(line_of(t.start)),
            TokenKind::RBrace => {
                if let Some(start) = open.pop() {
                    let end = line_of(t.start);
                    // Keep the closing brace visible: fold up to the line before it.
                    if end > start + 1 {
                        out.push(fold(start, end - 1, None));
                    } else if end > start {
                        out.push(fold(start, end, None));
                    }
                }
            }
            TokenKind::LineComment => {
                let line = line_of(t.start);
                comments = match comments {
                    Some((first, last)) if line == last + 1 => Some((first, line)),
                    Some((first, last)) => {
                        if last > first {
                            out.push(fold(first, last, Some(FoldingRangeKind::Comment)));
                        }
                        Some((line, line))
                    }
                    None => Some((line, line)),
                };
            }
            TokenKind::BlockComment => {
                let (start, end) = (line_of(t.start), line_of(t.end));
                if end > start {
                    out.push(fold(start, end, Some(FoldingRangeKind::Comment)));
                }
            }
            _ => {}
        }
    }
    if let Some((first, last)) = comments
        && last > first
    {
        out.push(fold(first, last, Some(FoldingRangeKind::Comment)));
    }
    out.sort_by_key(|f| (f.start_line, f.end_line));
    Ok(out)
}
