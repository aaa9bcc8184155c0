//! Byte offsets to line / column and back, in UTF-8 and UTF-16 units. The CLI prints
//! 1-based lines and columns; the language server speaks 0-based UTF-16 positions.

/// Start offsets of every line of one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIndex {
    line_starts: Vec<u32>,
    len: u32,
}

/// A 0-based line and a 0-based column in the unit the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        LineIndex {
            line_starts,
            len: text.len() as u32,
        }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The line of `offset` and its column counted in characters. Offsets past the end,
    /// or inside a character, are clamped.
    pub fn line_col(&self, text: &str, offset: u32) -> LineCol {
        let offset = offset.min(self.len);
        let line = self.line_starts.partition_point(|s| *s <= offset) - 1;
        let start = self.line_starts[line] as usize;
        let col = text
            .get(start..offset as usize)
            .map(|s| s.chars().count())
            .unwrap_or_else(|| {
                text.get(start..)
                    .unwrap_or("")
                    .char_indices()
                    .take_while(|(i, _)| start + i < offset as usize)
                    .count()
            });
        LineCol {
            line: line as u32,
            col: col as u32,
        }
    }

    /// The line of `offset` and its column in UTF-16 code units (LSP positions).
    pub fn line_col_utf16(&self, text: &str, offset: u32) -> LineCol {
        let offset = offset.min(self.len);
        let line = self.line_starts.partition_point(|s| *s <= offset) - 1;
        let start = self.line_starts[line] as usize;
        let col: usize = text
            .get(start..)
            .unwrap_or("")
            .char_indices()
            .take_while(|(i, _)| start + i < offset as usize)
            .map(|(_, c)| c.len_utf16())
            .sum();
        LineCol {
            line: line as u32,
            col: col as u32,
        }
    }

    /// The byte offset of a UTF-16 position; out-of-range positions clamp to the line end
    /// or the end of the text.
    pub fn offset_utf16(&self, text: &str, pos: LineCol) -> u32 {
        let Some(&start) = self.line_starts.get(pos.line as usize) else {
            return self.len;
        };
        let end = self
            .line_starts
            .get(pos.line as usize + 1)
            .copied()
            .unwrap_or(self.len);
        let line = text.get(start as usize..end as usize).unwrap_or("");
        let mut units = 0u32;
        for (i, c) in line.char_indices() {
            if units >= pos.col || c == '\n' || c == '\r' {
                return start + i as u32;
            }
            units += c.len_utf16() as u32;
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_columns() {
        let text = "a\né😀x\n";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap() as u32;
        assert_eq!(index.line_col(text, x), LineCol { line: 1, col: 2 });
        assert_eq!(index.line_col_utf16(text, x), LineCol { line: 1, col: 3 });
        assert_eq!(index.offset_utf16(text, LineCol { line: 1, col: 3 }), x);
        assert_eq!(
            index.offset_utf16(text, LineCol { line: 9, col: 0 }),
            text.len() as u32
        );
    }
}
