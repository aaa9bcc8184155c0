//! Byte offsets to 1-based lines and columns, for the spans a table carries.

/// One source text and its line index (the crate's [`crate::line_index::LineIndex`]).
#[derive(Debug, Clone)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    index: crate::line_index::LineIndex,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineIndex {
            text,
            index: crate::line_index::LineIndex::new(text),
        }
    }

    /// The 1-based line and column (in characters) of a byte offset; an offset past the
    /// end is clamped to it, and one inside a character counts as that character.
    pub(crate) fn line_column(&self, offset: u32) -> (u32, u32) {
        let at = self.index.line_col(self.text, offset);
        (at.line + 1, at.col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let index = LineIndex::new("ab\ncé d\n\nx");
        assert_eq!(index.line_column(0), (1, 1));
        assert_eq!(index.line_column(2), (1, 3));
        assert_eq!(index.line_column(3), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(index.line_column(6), (2, 3));
        assert_eq!(index.line_column(7), (2, 4));
        assert_eq!(index.line_column(9), (3, 1));
        assert_eq!(index.line_column(10), (4, 1));
        assert_eq!(index.line_column(11), (4, 2));
        assert_eq!(index.line_column(999), (4, 2));
    }

    #[test]
    fn crlf_lines() {
        let index = LineIndex::new("a\r\nb");
        assert_eq!(index.line_column(3), (2, 1));
    }
}
