//! Semantic tokens from the lossless token stream plus name resolution: keywords,
//! comments, strings, numbers and operators from the lexer; tools, agents, tiers, routes,
//! thresholds and the rest from the reference index, so a name is coloured by what it
//! resolves to, not by where it stands.

use std::collections::HashMap;

use agentpolicy::syntax::lexer::{KEYWORDS, TokenKind};
use tower_lsp_server::ls_types::{
    SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokens, SemanticTokensLegend,
    Uri,
};

use crate::index::{Symbol, SymbolKind};
use crate::lookup::definition;
use crate::state::World;

const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::COMMENT,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::CLASS,
    SemanticTokenType::ENUM_MEMBER,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::NAMESPACE,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::STRUCT,
    SemanticTokenType::INTERFACE,
    SemanticTokenType::EVENT,
    SemanticTokenType::TYPE,
];

const KEYWORD: u32 = 0;
const COMMENT: u32 = 1;
const STRING: u32 = 2;
const NUMBER: u32 = 3;
const OPERATOR: u32 = 4;
const TYPE: u32 = 15;

const MOD_DECLARATION: u32 = 1 << 0;
const MOD_READONLY: u32 = 1 << 1;
const MOD_DEFAULT_LIBRARY: u32 = 1 << 2;

/// Words the grammar treats as keywords in one place only (effects, limit units, ...).
const CONTEXTUAL_WORDS: &[&str] = &[
    "audit",
    "for",
    "read",
    "write",
    "external",
    "financial",
    "irreversible",
    "tokens",
    "task",
    "session",
    "minute",
    "hour",
    "day",
    "error_rate",
    "denials",
    "agent",
    "engine",
    "suspended",
    "not_granted",
    "no_rule",
    "rule",
    "confidence",
];
const TYPE_NAMES: &[&str] = &["text", "number", "money", "bool", "duration", "percent"];

/// The legend the server announces: token types and modifiers, in index order.
pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: vec![
            SemanticTokenModifier::DECLARATION,
            SemanticTokenModifier::READONLY,
            SemanticTokenModifier::DEFAULT_LIBRARY,
        ],
    }
}

fn symbol_type(kind: SymbolKind) -> u32 {
    match kind {
        SymbolKind::Tool => 5,
        SymbolKind::Agent => 6,
        SymbolKind::Tier => 7,
        SymbolKind::Threshold
        | SymbolKind::Confidence
        | SymbolKind::Credential
        | SymbolKind::Set => 8,
        SymbolKind::Param => 9,
        SymbolKind::Module | SymbolKind::Policy => 10,
        SymbolKind::Key => 11,
        SymbolKind::Resource => 12,
        SymbolKind::Sink => 13,
        SymbolKind::Route => 14,
    }
}

/// `textDocument/semanticTokens/full`.
pub fn full(world: &World<'_>, uri: &Uri) -> Result<SemanticTokens, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let parsed = world.state.parsed(doc);
    let occurrences = world.index.in_file(doc.id);
    let mut from_stdlib: HashMap<&Symbol, bool> = HashMap::new();
    let mut raw: Vec<(u32, u32, u32, u32)> = Vec::new(); // start, end, type, modifiers
    let mut next = 0usize;
    for t in &parsed.tokens {
        let text = t.text(view.text);
        let classified = match t.kind {
            TokenKind::LineComment | TokenKind::BlockComment => Some((COMMENT, 0)),
            TokenKind::String => Some((STRING, 0)),
            TokenKind::Money | TokenKind::Percent | TokenKind::Duration | TokenKind::Number => {
                Some((NUMBER, 0))
            }
            TokenKind::Lt
            | TokenKind::Le
            | TokenKind::Gt
            | TokenKind::Ge
            | TokenKind::EqEq
            | TokenKind::Ne
            | TokenKind::Eq
            | TokenKind::Star => Some((OPERATOR, 0)),
            TokenKind::Ident => {
                while occurrences
                    .get(next)
                    .is_some_and(|o| o.range.end <= t.start)
                {
                    next += 1;
                }
                let occurrence = occurrences
                    .get(next)
                    .filter(|o| o.range.start <= t.start && t.end <= o.range.end);
                match occurrence {
                    Some(o) => {
                        let mut modifiers = 0;
                        if o.is_decl {
                            modifiers |= MOD_DECLARATION;
                        }
                        if matches!(
                            o.symbol.kind,
                            SymbolKind::Threshold | SymbolKind::Confidence
                        ) {
                            modifiers |= MOD_READONLY;
                        }
                        let library = *from_stdlib.entry(&o.symbol).or_insert_with(|| {
                            o.symbol.kind == SymbolKind::Module
                                || definition(world, &o.symbol)
                                    .and_then(|loc| world.state.document(loc.file))
                                    .is_some_and(|d| d.module.is_some())
                        });
                        if library {
                            modifiers |= MOD_DEFAULT_LIBRARY;
                        }
                        Some((symbol_type(o.symbol.kind), modifiers))
                    }
                    None if KEYWORDS.contains(&text) || CONTEXTUAL_WORDS.contains(&text) => {
                        Some((KEYWORD, 0))
                    }
                    None if TYPE_NAMES.contains(&text) => Some((TYPE, 0)),
                    None => None,
                }
            }
            _ => None,
        };
        if let Some((ty, modifiers)) = classified {
            raw.push((t.start, t.end, ty, modifiers));
        }
    }
    Ok(SemanticTokens {
        result_id: None,
        data: encode(&view, &raw),
    })
}

/// Delta-encodes tokens, splitting any that spans lines (block comments) into one per
/// line, since not every client accepts multi-line tokens.
fn encode(view: &crate::convert::TextView<'_>, raw: &[(u32, u32, u32, u32)]) -> Vec<SemanticToken> {
    let mut out = Vec::new();
    let (mut prev_line, mut prev_col) = (0u32, 0u32);
    for &(start, end, ty, modifiers) in raw {
        let mut pieces = Vec::new();
        let mut piece_start = start;
        let text = view.text.get(start as usize..end as usize).unwrap_or("");
        for (i, c) in text.char_indices() {
            if c == '\n' {
                let piece_end = start + i as u32;
                let trimmed = if piece_end > piece_start
                    && view.text.as_bytes().get(piece_end as usize - 1) == Some(&b'\r')
                {
                    piece_end - 1
                } else {
                    piece_end
                };
                pieces.push((piece_start, trimmed));
                piece_start = piece_end + 1;
            }
        }
        pieces.push((piece_start, end));
        for (s, e) in pieces {
            if e <= s {
                continue;
            }
            let from = view.position(s);
            let to = view.position(e);
            let length = to.character.saturating_sub(from.character);
            let delta_line = from.line.saturating_sub(prev_line);
            let delta_start = if delta_line == 0 {
                from.character.saturating_sub(prev_col)
            } else {
                from.character
            };
            out.push(SemanticToken {
                delta_line,
                delta_start,
                length,
                token_type: ty,
                token_modifiers_bitset: modifiers,
            });
            prev_line = from.line;
            prev_col = from.character;
        }
    }
    out
}
