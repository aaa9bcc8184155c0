//! The canonical layout of an `.agentpolicy` file: `agentpolicy fmt` and the editor's
//! "format document".
//!
//! It owns the layout rules (documented for authors in `docs/formatting.md`) and works on
//! the lossless token stream, so every comment, line or block, stays where it was
//! relative to the code. It reads the syntax tree only to learn where items and clauses
//! begin. It must not change meaning: the token sequence is emitted verbatim, only the
//! whitespace between tokens is rewritten, and before returning, the output is parsed
//! again and compared with the input's tree and comments; on any difference the
//! formatter refuses instead of returning a changed file. It refuses files with syntax
//! errors, as rustfmt does, because a layout built on a guessed structure would move
//! code the author has not finished writing. No IO here; the CLI reads and writes files.
//!
//! The layout:
//!
//! - Indentation is 2 spaces per level. Items start at column 0, each on its own line;
//!   clauses of a multi-line `{ ... }` block start on their own line one level in;
//!   other lines that continue a clause or an item are indented one level further;
//!   lines inside parentheses are one level deeper than the line holding the `(`, and a
//!   line that starts with a closing `)` or `}` lines up with the line that opened it.
//! - Between tokens on one line: exactly one space, except none before `,` `)` `]` `:`
//!   `?` `.`, none after `(` `[` `.`, none between a name and its `(` (`tool f(`,
//!   `calls f(`, `document(`), none inside the type `list<text>`, and `{}` for an
//!   empty block. A comment has exactly one
//!   space on each side where it shares a line with code.
//! - A `{ ... }` block written on one line stays on one line if that line fits in
//!   [`MAX_WIDTH`] characters; otherwise, or when the author wrote it across lines, each
//!   clause goes on its own line and `}` on its own line at the item's indentation.
//! - `{` joins the line before it; `,` `:` `?` `.`, the `(` of a call and the name after a
//!   `.` join the token before them (unless a line comment is in between).
//! - Otherwise the author's line breaks are kept. Runs of blank lines become one blank
//!   line; there are no blank lines at the start or end of a block, none at the start of
//!   the file, and the file ends with exactly one newline (an empty file stays empty).
//! - Trailing whitespace is removed, CRLF and lone CR become LF, tabs and other
//!   whitespace between tokens become the spaces above, and a byte-order mark is dropped.
//! - Comments keep their text. A line comment loses trailing whitespace; a block comment
//!   loses trailing whitespace on each of its lines and has its line endings normalised.
//!   A comment on the same line as code stays there; a comment on its own line is
//!   indented like the code that follows it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::diagnostics::{Diagnostic, FileId};
use crate::line_index::LineIndex;
use crate::syntax::ast::{ItemKind, SourceFile};
use crate::syntax::lexer::{Token, TokenKind};
use crate::syntax::parse;

/// The widest line a one-line `{ ... }` block may make before it is broken into lines.
pub const MAX_WIDTH: usize = 100;

const INDENT: &str = "  ";

/// Why a file was not formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The file has syntax errors; it is left as it is, like rustfmt does.
    Syntax(Vec<LocatedDiagnostic>),
    /// The formatted text would not parse to the same tree or would lose a comment. This
    /// is a bug in the formatter; the file is left as it is rather than changed.
    WouldChangeMeaning,
}

/// A syntax diagnostic and the 1-based line and column (in characters) where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedDiagnostic {
    pub line: usize,
    pub column: usize,
    pub diagnostic: Diagnostic,
}

impl FormatError {
    /// The syntax diagnostics that stopped formatting (none for `WouldChangeMeaning`).
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            FormatError::Syntax(located) => located.iter().map(|l| &l.diagnostic).collect(),
            FormatError::WouldChangeMeaning => Vec::new(),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Syntax(located) => {
                let count = located.len();
                let noun = if count == 1 { "error" } else { "errors" };
                write!(f, "not formatted: {count} syntax {noun}")?;
                for l in located {
                    write!(
                        f,
                        "\n  {}:{}: {}: {}",
                        l.line, l.column, l.diagnostic.code, l.diagnostic.message
                    )?;
                }
                Ok(())
            }
            FormatError::WouldChangeMeaning => f.write_str(
                "not formatted: the formatted text would change the policy's meaning \
                 (a formatter bug; please report it with the file)",
            ),
        }
    }
}

impl std::error::Error for FormatError {}

/// Formats a whole policy file. See the module documentation for the layout.
pub fn format(source: &str) -> Result<String, FormatError> {
    let parsed = parse(FileId(0), source);
    if !parsed.diagnostics.is_empty() {
        return Err(FormatError::Syntax(locate(source, parsed.diagnostics)));
    }
    let elements = elements(source, &parsed.tokens, &parsed.tree);
    let output = Printer::new(&elements).print();

    // The guarantee the formatter gives is checked, not assumed: a layout rule that
    // moved a token across an item boundary, or dropped a comment, is caught here.
    let reparsed = parse(FileId(0), &output);
    let same = reparsed.diagnostics.is_empty()
        && same_tree_ignoring_ranges(&parsed.tree, &reparsed.tree)
        && comment_texts(source, &parsed.tokens) == comment_texts(&output, &reparsed.tokens);
    if same {
        Ok(output)
    } else {
        Err(FormatError::WouldChangeMeaning)
    }
}

/// Whether two trees are equal once every byte range is erased: the same items, names,
/// literal values and conditions, wherever they were written.
pub fn same_tree_ignoring_ranges(a: &SourceFile, b: &SourceFile) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(mut a), Ok(mut b)) => {
            erase_ranges(&mut a);
            erase_ranges(&mut b);
            a == b
        }
        _ => false,
    }
}

fn erase_ranges(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|key, _| !matches!(key.as_str(), "range" | "start" | "end"));
            map.values_mut().for_each(erase_ranges);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(erase_ranges),
        _ => {}
    }
}

/// The text of every comment, in order, as the formatter writes it.
pub fn comment_texts(source: &str, tokens: &[Token]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| match t.kind {
            TokenKind::LineComment => Some(trim_spaces(t.text(source)).to_string()),
            TokenKind::BlockComment => Some(normalize_block_comment(t.text(source)).into_owned()),
            _ => None,
        })
        .collect()
}

fn locate(source: &str, diagnostics: Vec<Diagnostic>) -> Vec<LocatedDiagnostic> {
    let lines = LineIndex::new(source);
    diagnostics
        .into_iter()
        .map(|diagnostic| {
            let at = lines.line_col(source, diagnostic.primary.range.start);
            LocatedDiagnostic {
                line: at.line as usize + 1,
                column: at.col as usize + 1,
                diagnostic,
            }
        })
        .collect()
}

/// Line endings to LF and no trailing spaces or tabs on any line of the comment.
fn normalize_block_comment(text: &str) -> Cow<'_, str> {
    if !text.contains(['\r', '\n']) {
        return Cow::Borrowed(text);
    }
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.split('\n').map(trim_spaces).collect();
    Cow::Owned(lines.join("\n"))
}

/// Trailing spaces and tabs removed, and nothing else: every other character of a
/// comment is kept, Unicode whitespace (U+00A0, U+2003, U+3000, U+0085, U+000B, U+000C)
/// included, since `str::trim_end` would drop those too.
fn trim_spaces(text: &str) -> &str {
    text.trim_end_matches([' ', '\t'])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Token(TokenKind),
    LineComment,
    BlockComment,
}

/// Where a token stands in the structure, as far as layout cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// First token of a top-level item.
    ItemStart,
    /// First token of a clause inside an item's `{ ... }` block.
    MemberStart,
    Other,
}

/// A token or comment, with the layout facts the printer needs.
#[derive(Debug)]
struct Element<'s> {
    kind: Kind,
    /// The text to write: tokens verbatim, comments normalised.
    text: Cow<'s, str>,
    /// Line breaks in the source between the previous element and this one.
    newlines_before: usize,
    role: Role,
    /// A `(` that opens an argument or parameter list right after a name.
    call_paren: bool,
}

impl Element<'_> {
    fn is_token(&self) -> bool {
        matches!(self.kind, Kind::Token(_))
    }

    fn is_comment(&self) -> bool {
        !self.is_token()
    }

    fn is(&self, kind: TokenKind) -> bool {
        self.kind == Kind::Token(kind)
    }

    fn is_closer(&self) -> bool {
        matches!(
            self.kind,
            Kind::Token(TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket)
        )
    }

    /// Whether the text spans lines (a multi-line block comment).
    fn spans_lines(&self) -> bool {
        self.text.contains('\n')
    }
}

/// Turns the token stream into elements (whitespace and newlines become counts) and
/// marks where items and clauses begin.
fn elements<'s>(source: &'s str, tokens: &[Token], tree: &SourceFile) -> Vec<Element<'s>> {
    let mut out: Vec<Element<'s>> = Vec::with_capacity(tokens.len());
    let mut newlines = 0;
    for token in tokens {
        let raw = token.text(source);
        let (kind, text) = match token.kind {
            TokenKind::Newline => {
                newlines += 1;
                continue;
            }
            TokenKind::Whitespace => continue,
            TokenKind::LineComment => (Kind::LineComment, Cow::Borrowed(trim_spaces(raw))),
            TokenKind::BlockComment => (Kind::BlockComment, normalize_block_comment(raw)),
            other => (Kind::Token(other), Cow::Borrowed(raw)),
        };
        out.push(Element {
            kind,
            text,
            newlines_before: newlines,
            role: Role::Other,
            call_paren: false,
        });
        newlines = 0;
    }
    // Item and clause starts, by byte offset, need the offsets of the elements.
    let offsets: Vec<u32> = tokens
        .iter()
        .filter(|t| !matches!(t.kind, TokenKind::Newline | TokenKind::Whitespace))
        .map(|t| t.start)
        .collect();
    mark_roles(&mut out, &offsets, tree);
    mark_call_parens(&mut out);
    out
}

fn mark_roles(elements: &mut [Element<'_>], offsets: &[u32], tree: &SourceFile) {
    let items: HashMap<u32, &ItemKind> = tree
        .items
        .iter()
        .map(|item| (item.range.start, &item.kind))
        .collect();
    // Agent clauses and test steps come from the tree: inside them, words such as
    // `deny` or `mode` may also be argument names in a condition.
    let mut clause_starts: HashSet<u32> = HashSet::new();
    for item in &tree.items {
        match &item.kind {
            ItemKind::Agent(agent) => {
                clause_starts.extend(agent.members.iter().map(|m| m.range.start));
            }
            ItemKind::Test(test) => {
                clause_starts.extend(test.steps.first().map(|s| s.range.start));
                clause_starts.insert(test.expect.range.start);
            }
            _ => {}
        }
    }

    let mut current: Option<&ItemKind> = None;
    let (mut braces, mut parens) = (0usize, 0usize);
    for (element, &offset) in elements.iter_mut().zip(offsets) {
        let Kind::Token(kind) = element.kind else {
            continue;
        };
        if braces == 0 && parens == 0 {
            if let Some(item) = items.get(&offset) {
                element.role = Role::ItemStart;
                current = Some(*item);
            }
        } else if braces == 1 && parens == 0 {
            let word = if kind == TokenKind::Ident {
                element.text.as_ref()
            } else {
                ""
            };
            // Resources, sinks, tools and escalations hold no conditions, so their
            // clause keywords can be recognised from the word alone.
            let starts_clause = match current {
                Some(ItemKind::Resource(_)) => {
                    matches!(word, "tier" | "keyed" | "untrusted" | "from")
                }
                Some(ItemKind::Sink(_)) => matches!(word, "clearance" | "keyed"),
                Some(ItemKind::Tool(_)) => {
                    matches!(word, "effect" | "reads" | "writes" | "untrusted")
                }
                Some(ItemKind::Escalation(_)) => matches!(word, "notify" | "timeout"),
                Some(ItemKind::Agent(_)) => clause_starts.contains(&offset),
                Some(ItemKind::Test(_)) => word == "then" || clause_starts.contains(&offset),
                _ => false,
            };
            if starts_clause {
                element.role = Role::MemberStart;
            }
        }
        match kind {
            TokenKind::LBrace => braces += 1,
            TokenKind::RBrace => braces = braces.saturating_sub(1),
            TokenKind::LParen | TokenKind::LBracket => parens += 1,
            TokenKind::RParen | TokenKind::RBracket => parens = parens.saturating_sub(1),
            _ => {}
        }
    }
}

/// A `(` right after a name that is not `when`/`and`/`or`/`not` opens parameters or
/// arguments (`tool f(`, `calls f(`, `document(`); any other `(` groups a condition.
fn mark_call_parens(elements: &mut [Element<'_>]) {
    let mut previous_token: Option<(TokenKind, bool)> = None;
    for element in elements.iter_mut() {
        let Kind::Token(kind) = element.kind else {
            continue;
        };
        if kind == TokenKind::LParen {
            element.call_paren = matches!(previous_token, Some((TokenKind::Ident, true)));
        }
        let is_name = kind == TokenKind::Ident
            && !matches!(element.text.as_ref(), "when" | "and" | "or" | "not");
        previous_token = Some((kind, is_name));
    }
}

#[derive(Debug, Clone, Copy)]
enum FrameKind {
    Brace { broken: bool },
    Paren,
}

/// An open `{`, `(` or `[`, and the indentation level its closer lines up with.
#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: FrameKind,
    base: usize,
}

/// Writes elements out line by line. Every decision depends only on the token sequence
/// and on which tokens start lines, and the printer's own line starts are ones it would
/// keep, which is why a second run changes nothing.
struct Printer<'a, 's> {
    elements: &'a [Element<'s>],
    /// For each element, the index of the first token at or after it.
    next_token: Vec<Option<usize>>,
    /// For each `{`, the index of its `}`.
    closing: HashMap<usize, usize>,
    out: String,
    frames: Vec<Frame>,
    /// Indentation level of the line being written.
    line_level: usize,
    /// Indentation level of the line where the current item began.
    item_level: usize,
    /// The line being written holds comments only, so far.
    line_has_only_comments: bool,
    /// Just after the `{` of a multi-line block, before its first line.
    at_block_start: bool,
}

impl<'a, 's> Printer<'a, 's> {
    fn new(elements: &'a [Element<'s>]) -> Self {
        let mut next_token = vec![None; elements.len()];
        let mut next = None;
        for (i, element) in elements.iter().enumerate().rev() {
            if element.is_token() {
                next = Some(i);
            }
            next_token[i] = next;
        }
        let mut closing = HashMap::new();
        let mut open: Vec<usize> = Vec::new();
        for (i, element) in elements.iter().enumerate() {
            if element.is(TokenKind::LBrace) {
                open.push(i);
            } else if element.is(TokenKind::RBrace)
                && let Some(start) = open.pop()
            {
                closing.insert(start, i);
            }
        }
        Printer {
            elements,
            next_token,
            closing,
            out: String::new(),
            frames: Vec::new(),
            line_level: 0,
            item_level: 0,
            line_has_only_comments: true,
            at_block_start: false,
        }
    }

    fn print(mut self) -> String {
        for i in 0..self.elements.len() {
            let element = &self.elements[i];
            let breaks = self.breaks_before(i);
            if i == 0 || breaks > 0 {
                self.start_line(breaks, i);
            } else if self.space_before(i) {
                self.out.push(' ');
            }
            self.out.push_str(&element.text);
            if element.is_token() {
                self.line_has_only_comments = false;
                self.at_block_start = false;
            }
            if element.role == Role::ItemStart {
                self.item_level = self.line_level;
            }
            match element.kind {
                Kind::Token(TokenKind::LBrace) => {
                    let broken = self.block_is_broken(i);
                    self.frames.push(Frame {
                        kind: FrameKind::Brace { broken },
                        base: self.item_level,
                    });
                    self.at_block_start = broken;
                }
                Kind::Token(TokenKind::LParen | TokenKind::LBracket) => self.frames.push(Frame {
                    kind: FrameKind::Paren,
                    base: self.line_level,
                }),
                Kind::Token(TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket) => {
                    self.frames.pop();
                }
                _ => {}
            }
        }
        // Only what the layout wrote: a comment at the end of the file keeps its text.
        let trimmed = self.out.trim_end_matches([' ', '\t', '\n']).len();
        self.out.truncate(trimmed);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    fn start_line(&mut self, breaks: usize, i: usize) {
        if breaks > 0 {
            let trimmed = self.out.trim_end_matches(' ').len();
            self.out.truncate(trimmed);
            for _ in 0..breaks {
                self.out.push('\n');
            }
        }
        self.line_level = self.level_of_line_starting_at(i);
        for _ in 0..self.line_level {
            self.out.push_str(INDENT);
        }
        self.line_has_only_comments = true;
        self.at_block_start = false;
    }

    /// How many line breaks go before element `i`: 0 (same line), 1, or 2 (one blank line).
    fn breaks_before(&self, i: usize) -> usize {
        let Some(previous) = i.checked_sub(1).map(|p| &self.elements[p]) else {
            return 0;
        };
        let element = &self.elements[i];
        let written = element.newlines_before.min(2);
        let mut breaks = match (self.frames.last(), element.kind) {
            // Inside a one-line block nothing breaks; an empty block is always `{}`.
            (
                Some(Frame {
                    kind: FrameKind::Brace { broken: false },
                    ..
                }),
                _,
            ) => 0,
            (
                Some(Frame {
                    kind: FrameKind::Brace { broken: true },
                    ..
                }),
                Kind::Token(TokenKind::RBrace),
            ) => 1,
            (_, Kind::Token(kind)) if joins_previous(kind, element, previous) => 0,
            (_, Kind::Token(_)) if self.starts_own_line(element) => {
                // A block comment alone at the start of the line leads this token.
                if written == 0 && self.line_has_only_comments {
                    0
                } else {
                    written.max(1)
                }
            }
            _ => written,
        };
        if previous.kind == Kind::LineComment {
            breaks = breaks.max(1);
        }
        if breaks > 0 && self.at_block_start {
            breaks = 1;
        }
        breaks
    }

    /// Items always, and clauses of a multi-line block.
    fn starts_own_line(&self, element: &Element<'_>) -> bool {
        match element.role {
            Role::ItemStart => true,
            Role::MemberStart => matches!(
                self.frames.last(),
                Some(Frame {
                    kind: FrameKind::Brace { broken: true },
                    ..
                })
            ),
            Role::Other => false,
        }
    }

    fn space_before(&self, i: usize) -> bool {
        let element = &self.elements[i];
        let Some(previous) = i.checked_sub(1).map(|p| &self.elements[p]) else {
            return false;
        };
        // Comments stand apart from the code around them on a line.
        if element.is_comment() || previous.is_comment() {
            return true;
        }
        let Kind::Token(kind) = element.kind else {
            return true;
        };
        let tight_before = matches!(
            kind,
            TokenKind::Comma
                | TokenKind::RParen
                | TokenKind::RBracket
                | TokenKind::Colon
                | TokenKind::Question
                | TokenKind::Dot
        ) || element.call_paren
            || (kind == TokenKind::RBrace && previous.is(TokenKind::LBrace));
        let tight_after = matches!(
            previous.kind,
            Kind::Token(TokenKind::LParen | TokenKind::LBracket | TokenKind::Dot)
        );
        !(tight_before || tight_after || self.in_list_type(i))
    }

    /// Whether element `i` is inside the type `list<text>`, written without spaces.
    fn in_list_type(&self, i: usize) -> bool {
        let text = |j: Option<usize>| {
            j.and_then(|j| self.elements.get(j))
                .map(|e| e.text.as_ref())
        };
        match self.elements[i].kind {
            Kind::Token(TokenKind::Lt) => text(i.checked_sub(1)) == Some("list"),
            Kind::Token(TokenKind::Gt) => {
                text(i.checked_sub(1)) == Some("text") && text(i.checked_sub(3)) == Some("list")
            }
            _ => text(i.checked_sub(1)) == Some("<") && text(i.checked_sub(2)) == Some("list"),
        }
    }

    fn level_of_line_starting_at(&self, i: usize) -> usize {
        let element = &self.elements[i];
        if element.is_token() {
            return self.token_level(element);
        }
        // A comment on its own line is indented like the code after it; before a
        // closer, like the lines inside the block it closes.
        match self.next_token.get(i).copied().flatten() {
            Some(next) if self.elements[next].is_closer() => {
                self.frames.last().map_or(0, |f| f.base + 1)
            }
            Some(next) => self.token_level(&self.elements[next]),
            None => self.frames.last().map_or(0, |f| f.base + 1),
        }
    }

    fn token_level(&self, token: &Element<'_>) -> usize {
        if token.is_closer() {
            return self.frames.last().map_or(0, |f| f.base);
        }
        if token.is(TokenKind::LBrace) {
            return self.item_level;
        }
        match self.frames.last() {
            None if token.role == Role::ItemStart => 0,
            None => 1,
            Some(Frame {
                kind: FrameKind::Brace { .. },
                base,
            }) if token.role == Role::MemberStart => base + 1,
            Some(Frame {
                kind: FrameKind::Brace { .. },
                base,
            }) => base + 2,
            Some(Frame {
                kind: FrameKind::Paren,
                base,
            }) => base + 1,
        }
    }

    /// Called with the `{` at `open` just written: a block breaks into lines when the
    /// author wrote it across lines or when it does not fit on this one.
    fn block_is_broken(&self, open: usize) -> bool {
        let Some(&close) = self.closing.get(&open) else {
            return true;
        };
        let inside = self.elements.get(open + 1..close).unwrap_or(&[]);
        if inside.is_empty() {
            return false;
        }
        let written_across_lines = inside
            .iter()
            .any(|e| e.newlines_before > 0 || e.kind == Kind::LineComment || e.spans_lines())
            || self
                .elements
                .get(close)
                .is_some_and(|e| e.newlines_before > 0);
        if written_across_lines {
            return true;
        }
        let column = self
            .out
            .rsplit('\n')
            .next()
            .map_or(0, |line| line.chars().count());
        let rest: usize = (open + 1..=close)
            .map(|j| usize::from(self.space_before(j)) + self.elements[j].text.chars().count())
            .sum();
        column + rest > MAX_WIDTH
    }
}

/// Tokens that always join the token before them, even across a line break the author
/// wrote: `{`, `,` `:` `?` `.`, the `(` of a call, and the name after a `.`.
fn joins_previous(kind: TokenKind, element: &Element<'_>, previous: &Element<'_>) -> bool {
    matches!(
        kind,
        TokenKind::LBrace
            | TokenKind::Comma
            | TokenKind::Colon
            | TokenKind::Question
            | TokenKind::Dot
    ) || element.call_paren
        || previous.is(TokenKind::Dot)
}

#[cfg(test)]
mod tests;
