//! Parsing: text in, a syntax tree plus diagnostics out. Never fails.
//!
//! The pest grammar (`agentpolicy.pest`) is run on one item at a time (see `split`); the
//! pairs it yields are dispatched here by item kind and lowered to the plain-data tree in
//! `ast` by `lower`, whose literal values `literals` decodes exactly (money in cents,
//! numbers in millionths, durations in ms). A pest error becomes an AP0001 diagnostic in
//! `errors`.

mod errors;
mod literals;
mod lower;
mod recovery;

use pest::Parser as _;
use pest::iterators::Pair;

use super::ast::*;
use super::lexer::{KEYWORDS, Token, TokenKind, lex};
use super::split::{Chunk, MAX_NESTING, split_items};
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use errors::syntax_error;
use lower::{Lower, LowerResult, next};

pub use agentpolicy_runtime::values::{parse_decimal, parse_duration, parse_money, parse_percent};

#[derive(pest_derive::Parser)]
#[grammar = "syntax/agentpolicy.pest"]
struct Grammar;

/// The result of parsing one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub tree: SourceFile,
    pub tokens: Vec<Token>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses `source`. Always returns a tree; syntax errors become diagnostics and the items
/// around them still parse.
pub fn parse(file: FileId, source: &str) -> Parsed {
    let tokens = lex(source);
    let mut diagnostics = Vec::new();
    let mut items = Vec::new();
    let significant_ends: Vec<u32> = tokens
        .iter()
        .filter(|t| !t.kind.is_trivia())
        .map(|t| t.end)
        .collect();
    let mut broken = Vec::new();
    for chunk in split_items(source, &tokens) {
        let parsed = parse_chunk(file, source, chunk, &significant_ends);
        items.extend(parsed.items);
        if !parsed.diagnostics.is_empty() {
            broken.push(BrokenItem {
                name: declared_name(source, chunk),
                range: TextRange::new(chunk.start, chunk.end),
                recovered: parsed.recovered,
            });
        }
        diagnostics.extend(parsed.diagnostics);
    }
    // An unterminated block comment runs to the end of the file, after the last item,
    // so the grammar never sees it; without this, whatever it swallowed would vanish
    // without a word.
    if let Some(last) = tokens.last()
        && last.kind == TokenKind::BlockComment
        && !(last.end - last.start >= 4 && last.text(source).ends_with("*/"))
    {
        let open = TextRange::new(last.start as usize, last.start as usize + 2);
        diagnostics.push(
            Diagnostic::new(
                Code::SyntaxError,
                "this block comment is never closed",
                Label::new(
                    file,
                    open,
                    "the comment opened here runs to the end of the file",
                ),
            )
            .with_help("close it with `*/`; block comments do not nest"),
        );
    }
    Parsed {
        tree: SourceFile { items, broken },
        tokens,
        diagnostics,
    }
}

/// Stack the parser and the lowering may need for [`MAX_NESTING`] levels of a condition
/// in a debug build; grown on the heap when the calling thread has less left (test and
/// language-server threads have small stacks).
const PARSE_STACK: usize = 8 * 1024 * 1024;

/// What one chunk gave: its items, its syntax errors, and whether its items parsed only
/// after the clauses with errors were left out.
struct ChunkParse {
    items: Vec<Item>,
    diagnostics: Vec<Diagnostic>,
    recovered: bool,
}

impl ChunkParse {
    fn failed(diagnostic: Diagnostic) -> Self {
        ChunkParse {
            items: Vec::new(),
            diagnostics: vec![diagnostic],
            recovered: false,
        }
    }
}

fn parse_chunk(file: FileId, source: &str, chunk: Chunk, significant_ends: &[u32]) -> ChunkParse {
    stacker::maybe_grow(PARSE_STACK / 4, PARSE_STACK, || {
        parse_chunk_here(file, source, chunk, significant_ends)
    })
}

/// How many bad clauses of one item are left out before the item is given up.
const MAX_RECOVERIES: usize = 16;

fn parse_chunk_here(
    file: FileId,
    source: &str,
    chunk: Chunk,
    significant_ends: &[u32],
) -> ChunkParse {
    let text = &source[chunk.start..chunk.end];
    if chunk.max_nesting > MAX_NESTING {
        let at = TextRange::new(chunk.deepest_at, chunk.deepest_at + 1);
        return ChunkParse::failed(
            Diagnostic::new(
                Code::NestingTooDeep,
                format!(
                    "this condition nests {} levels deep; the limit is {MAX_NESTING}",
                    chunk.max_nesting
                ),
                Label::new(file, at, "nested too deeply here"),
            )
            .with_help("split the condition into several rules, or remove redundant parentheses"),
        );
    }
    let lower = Lower {
        file,
        offset: chunk.start as u32,
        significant_ends,
    };
    let lower_all = |pairs: pest::iterators::Pairs<'_, Rule>| -> LowerResult<Vec<Item>> {
        pairs
            .filter(|p| p.as_rule() != Rule::EOI)
            .map(|p| lower.item(p))
            .collect()
    };
    let first_error = match Grammar::parse(Rule::item_alone, text) {
        Ok(pairs) => {
            return match lower_all(pairs) {
                Ok(items) => ChunkParse {
                    items,
                    diagnostics: Vec::new(),
                    recovered: false,
                },
                Err(diagnostic) => ChunkParse::failed(*diagnostic),
            };
        }
        Err(e) => e,
    };
    let mut diagnostics = vec![syntax_error(file, source, chunk.start, &first_error)];
    // Recovery inside the item: leave out the clause that holds the error (blanked to
    // spaces, so every offset stays put) and parse again, so one bad clause does not drop
    // the whole agent and every reference to it.
    let mut blanked = text.to_string();
    let mut error = first_error;
    for _ in 0..MAX_RECOVERIES {
        let Some(clause) = recovery::bad_clause(&blanked, error_offset(&error)) else {
            break;
        };
        blanked = recovery::blank(&blanked, clause.clone());
        match Grammar::parse(Rule::item_alone, &blanked) {
            Ok(pairs) => match lower_all(pairs) {
                Ok(items) => {
                    return ChunkParse {
                        items,
                        diagnostics,
                        recovered: true,
                    };
                }
                Err(diagnostic) => {
                    diagnostics.push(*diagnostic);
                    break;
                }
            },
            Err(next_error) => {
                // A second error after the left-out clause is a mistake of its own.
                if error_offset(&next_error) >= clause.end {
                    diagnostics.push(syntax_error(file, source, chunk.start, &next_error));
                }
                error = next_error;
            }
        }
    }
    ChunkParse {
        items: Vec::new(),
        diagnostics,
        recovered: false,
    }
}

fn error_offset(error: &pest::error::Error<Rule>) -> usize {
    match error.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
}

/// The name an item declares: the word after its keyword (`agent ap_clerk {`), when it is
/// one; for items that declare no name (`assert`, `test`, `use`, ...), none.
fn declared_name(source: &str, chunk: Chunk) -> Option<Name> {
    let mut words = lex(&source[chunk.start..chunk.end])
        .into_iter()
        .filter(|t| !t.kind.is_trivia());
    let keyword = words.next()?;
    let keyword = keyword.text(&source[chunk.start..chunk.end]);
    if !recovery::DECLARES_NAME.contains(&keyword) {
        return None;
    }
    let name = words.next()?;
    let text = name.text(&source[chunk.start..chunk.end]);
    let is_word = name.kind == TokenKind::Ident
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    (is_word && !KEYWORDS.contains(&text)).then(|| Name {
        text: text.to_string(),
        range: TextRange::new(
            chunk.start + name.start as usize,
            chunk.start + name.end as usize,
        ),
    })
}

impl Lower<'_> {
    fn item(&self, pair: Pair<'_, Rule>) -> LowerResult<Item> {
        let range = self.range(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::policy_decl => {
                let name = self.name(next(&mut inner)?);
                let version = inner.next().map(|p| self.string(p)).transpose()?;
                ItemKind::Policy(PolicyDecl { name, version })
            }
            Rule::use_decl => {
                let path_pair = next(&mut inner)?;
                let path_range = self.range(&path_pair);
                let path = path_pair.into_inner().map(|p| self.name(p)).collect();
                ItemKind::Use(UseDecl {
                    path,
                    range: path_range,
                })
            }
            Rule::tiers_decl => ItemKind::Tiers(TiersDecl {
                tiers: inner.map(|p| self.name(p)).collect(),
            }),
            Rule::isolate_decl => ItemKind::Isolate(self.name(next(&mut inner)?)),
            Rule::resource_decl => {
                let name = self.name(next(&mut inner)?);
                let mut decl = ResourceDecl {
                    name,
                    tier: Vec::new(),
                    keyed: Vec::new(),
                    untrusted: Vec::new(),
                    store: Vec::new(),
                };
                for member in inner {
                    match member.as_rule() {
                        Rule::tier_clause => {
                            decl.tier.extend(member.into_inner().map(|p| self.name(p)))
                        }
                        Rule::untrusted_clause => decl.untrusted.push(self.range(&member)),
                        Rule::store_clause => decl.store.extend(
                            member
                                .into_inner()
                                .filter(|p| p.as_rule() == Rule::ident)
                                .map(|p| self.name(p)),
                        ),
                        _ => decl.keyed.extend(member.into_inner().map(|p| self.name(p))),
                    }
                }
                ItemKind::Resource(decl)
            }
            Rule::sink_decl => {
                let name = self.name(next(&mut inner)?);
                let mut decl = SinkDecl {
                    name,
                    clearance: Vec::new(),
                    keyed: Vec::new(),
                };
                for member in inner {
                    match member.as_rule() {
                        Rule::clearance_clause => decl
                            .clearance
                            .extend(member.into_inner().map(|p| self.name(p))),
                        _ => decl.keyed.extend(member.into_inner().map(|p| self.name(p))),
                    }
                }
                ItemKind::Sink(decl)
            }
            Rule::tool_decl => ItemKind::Tool(self.tool(inner)?),
            Rule::threshold_decl => {
                let name = self.name(next(&mut inner)?);
                let value = self.literal(next(&mut inner)?)?;
                ItemKind::Threshold(ThresholdDecl { name, value })
            }
            Rule::escalation_decl => {
                let name = self.name(next(&mut inner)?);
                let mut decl = EscalationDecl {
                    name,
                    notify: Vec::new(),
                    timeout: Vec::new(),
                };
                for member in inner {
                    let member_range = self.range(&member);
                    let rule = member.as_rule();
                    let mut parts = member.into_inner();
                    if rule == Rule::notify_clause {
                        decl.notify.push(self.string(next(&mut parts)?)?);
                    } else {
                        let after_ms = self.duration(next(&mut parts)?)?;
                        let then = parts.nth(1).map(|p| match p.as_str() {
                            "allow" => TimeoutOutcome::Allow,
                            _ => TimeoutOutcome::Deny,
                        });
                        decl.timeout.push(TimeoutClause {
                            after_ms,
                            then,
                            range: member_range,
                        });
                    }
                }
                ItemKind::Escalation(decl)
            }
            Rule::agent_decl => {
                let name = self.name(next(&mut inner)?);
                let members = inner
                    .map(|m| self.agent_member(m))
                    .collect::<LowerResult<_>>()?;
                ItemKind::Agent(AgentDecl { name, members })
            }
            Rule::assert_decl => ItemKind::Assert(self.assertion(next(&mut inner)?)?),
            Rule::test_decl => ItemKind::Test(self.test(inner)?),
            Rule::set_decl => {
                let name = self.name(next(&mut inner)?);
                let source = next(&mut inner)?;
                let source_range = self.range(&source);
                let source = match source.as_rule() {
                    Rule::set_members => SetSource::Members(
                        source
                            .into_inner()
                            .map(|p| self.string(p))
                            .collect::<LowerResult<_>>()?,
                        source_range,
                    ),
                    _ => SetSource::Deploy(source_range),
                };
                ItemKind::Set(SetDecl { name, source })
            }
            Rule::retain_decl => ItemKind::Retain(self.retain(inner)?),
            _ => return Err(self.unexpected(range)),
        };
        Ok(Item { kind, range })
    }
}

#[cfg(test)]
mod comments {
    use crate::diagnostics::FileId;

    /// Block comments used to lex as errors, so one on its own line before an item
    /// became an item of its own and a syntax error.
    #[test]
    fn block_comments_between_items_are_trivia() {
        let src = "/* header */\npolicy p\n/* a\n   b */\ntiers a < b /* c */\r/* d */ isolate m";
        let parsed = super::parse(FileId(0), src);
        assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
        assert_eq!(parsed.tree.items.len(), 3);
    }

    /// An unterminated block comment follows every item, so the grammar never saw it and
    /// the code it swallowed vanished without a diagnostic.
    #[test]
    fn an_unterminated_block_comment_is_an_error() {
        for (src, at) in [
            ("policy p /* open\nisolate m", 9),
            ("policy p\n/*/", 9),
            ("/* open", 0),
        ] {
            let parsed = super::parse(FileId(0), src);
            assert_eq!(parsed.diagnostics.len(), 1, "{src:?}");
            let d = &parsed.diagnostics[0];
            assert_eq!(d.message, "this block comment is never closed");
            assert_eq!(d.primary.range.start, at);
        }
        let closed = super::parse(FileId(0), "policy p /**/\n/* a */");
        assert!(closed.diagnostics.is_empty());
    }
}

#[cfg(test)]
mod design_example {
    #[test]
    fn design_example_parses() {
        let src = include_str!("../../../tests/fixtures/verify/design_example.agentpolicy");
        let parsed = super::parse(crate::diagnostics::FileId(0), src);
        assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
        assert_eq!(parsed.tree.items.len(), 20);
    }
}
