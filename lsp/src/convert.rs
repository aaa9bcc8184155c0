//! Conversions between the compiler's byte offsets and the protocol's positions.
//!
//! The compiler speaks byte ranges into UTF-8 text; LSP speaks 0-based lines and UTF-16
//! code-unit columns. Every conversion goes through `agentpolicy::line_index::LineIndex`
//! so multi-byte text (accents, emoji) maps correctly. Out-of-range positions clamp to the
//! line or text end: a stale position from the editor never panics.

use agentpolicy::line_index::{LineCol, LineIndex};
use agentpolicy::syntax::ast::TextRange;
use tower_lsp_server::ls_types::{Position, Range};

/// A text with its line index: what every conversion needs.
#[derive(Debug, Clone, Copy)]
pub struct TextView<'a> {
    pub text: &'a str,
    pub lines: &'a LineIndex,
}

impl<'a> TextView<'a> {
    pub fn new(text: &'a str, lines: &'a LineIndex) -> Self {
        TextView { text, lines }
    }

    /// The LSP position of a byte offset.
    pub fn position(&self, offset: u32) -> Position {
        let lc = self.lines.line_col_utf16(self.text, offset);
        Position::new(lc.line, lc.col)
    }

    /// The LSP range of a byte range.
    pub fn range(&self, range: TextRange) -> Range {
        Range::new(self.position(range.start), self.position(range.end))
    }

    /// The byte offset of an LSP position, clamped into the text and onto a character
    /// boundary.
    pub fn offset(&self, position: Position) -> u32 {
        self.lines.offset_utf16(
            self.text,
            LineCol {
                line: position.line,
                col: position.character,
            },
        )
    }

    /// The byte range of an LSP range; an inverted range becomes empty at its start.
    pub fn text_range(&self, range: Range) -> TextRange {
        let start = self.offset(range.start);
        let end = self.offset(range.end).max(start);
        TextRange { start, end }
    }
}

/// Whether `offset` lies in `range`, ends included (a cursor just after a name is on it).
pub fn touches(range: TextRange, offset: u32) -> bool {
    range.start <= offset && offset <= range.end
}

/// Whether two byte ranges overlap or touch.
pub fn intersects(a: TextRange, b: TextRange) -> bool {
    a.start <= b.end && b.start <= a.end
}

/// Applies one protocol content change to `text`: a ranged replacement, or the whole text.
pub fn apply_change(text: &mut String, range: Option<Range>, new_text: &str) {
    match range {
        None => {
            text.clear();
            text.push_str(new_text);
        }
        Some(range) => {
            let lines = LineIndex::new(text);
            let view = TextView::new(text, &lines);
            let r = view.text_range(range);
            text.replace_range(r.start as usize..r.end as usize, new_text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_columns_are_utf16_units() {
        let text = "// 😀 é\nagent x {}\n";
        let lines = LineIndex::new(text);
        let view = TextView::new(text, &lines);
        let e = text.find('é').unwrap() as u32;
        // "// " is 3 units, the emoji 2, the space 1.
        assert_eq!(view.position(e), Position::new(0, 6));
        assert_eq!(view.offset(Position::new(0, 6)), e);
        assert_eq!(
            view.offset(Position::new(0, 500)),
            text.find('\n').unwrap() as u32
        );
        assert_eq!(view.offset(Position::new(99, 0)), text.len() as u32);
    }

    #[test]
    fn ranged_changes_replace_in_place() {
        let mut text = "a😀b\nc".to_string();
        apply_change(
            &mut text,
            Some(Range::new(Position::new(0, 3), Position::new(0, 4))),
            "XY",
        );
        assert_eq!(text, "a😀XY\nc");
        // A position inside the surrogate pair clamps to a character boundary.
        apply_change(
            &mut text,
            Some(Range::new(Position::new(0, 2), Position::new(0, 2))),
            "-",
        );
        assert!(text.is_char_boundary(0));
        apply_change(&mut text, None, "new");
        assert_eq!(text, "new");
    }
}
