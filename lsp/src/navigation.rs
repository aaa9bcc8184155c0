//! Go to definition, find references and rename, over the reference index.
//!
//! Definitions may lie in the standard library (served from the folder the library was
//! written to at start-up). Rename edits every user file at once and refuses what cannot
//! be renamed safely: keywords, built-ins, names the standard library declares, and new
//! names that are not identifiers or are already taken.

use std::collections::HashMap;

use agentpolicy::syntax::lexer::{KEYWORDS, TokenKind};
use tower_lsp_server::ls_types::{
    Location, Position, PrepareRenameResponse, TextEdit, Uri, WorkspaceEdit,
};

use crate::index::{Occurrence, SymbolKind};
use crate::lookup::{declared_in_stdlib, definition};
use crate::state::World;

fn occurrence_at<'w>(
    world: &'w World<'_>,
    uri: &Uri,
    position: Position,
) -> Result<Option<&'w Occurrence>, String> {
    let doc = world.document(uri)?;
    let offset = world.state.view(doc).offset(position);
    Ok(world.index.at(doc.id, offset))
}

/// `textDocument/definition`.
pub fn goto_definition(
    world: &World<'_>,
    uri: &Uri,
    position: Position,
) -> Result<Option<Location>, String> {
    let Some(occurrence) = occurrence_at(world, uri, position)? else {
        return Ok(None);
    };
    Ok(definition(world, &occurrence.symbol).and_then(|loc| world.state.location(loc)))
}

/// `textDocument/references`, across the user's files and the standard library.
pub fn references(
    world: &World<'_>,
    uri: &Uri,
    position: Position,
    include_declaration: bool,
) -> Result<Option<Vec<Location>>, String> {
    let Some(occurrence) = occurrence_at(world, uri, position)? else {
        return Ok(None);
    };
    if occurrence.symbol.kind == SymbolKind::Policy {
        return Ok(None);
    }
    let locations = world
        .index
        .references(&occurrence.symbol)
        .into_iter()
        .filter(|o| include_declaration || !o.is_decl)
        .filter_map(|o| {
            world.state.location(agentpolicy::model::Loc {
                file: o.file,
                range: o.range,
            })
        })
        .collect();
    Ok(Some(locations))
}

/// Why the name under the cursor cannot be renamed, or its occurrence.
fn renameable<'w>(
    world: &'w World<'_>,
    uri: &Uri,
    position: Position,
) -> Result<&'w Occurrence, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let offset = view.offset(position);
    let Some(occurrence) = world.index.at(doc.id, offset) else {
        let word = word_at(view.text, offset);
        return Err(if KEYWORDS.contains(&word) {
            format!("`{word}` is a keyword of the language and cannot be renamed")
        } else {
            "there is no declared name here to rename".to_string()
        });
    };
    let symbol = &occurrence.symbol;
    match symbol.kind {
        SymbolKind::Confidence => {
            return Err(
                "`confidence` is built into the language and cannot be renamed".to_string(),
            );
        }
        SymbolKind::Module => {
            return Err("standard-library modules cannot be renamed".to_string());
        }
        _ => {}
    }
    if doc.module.is_some() || declared_in_stdlib(world, symbol) {
        return Err(format!(
            "`{}` is declared by the standard library and cannot be renamed; declare your own {} under a new name instead",
            symbol.name,
            symbol.kind.noun()
        ));
    }
    Ok(occurrence)
}

/// `textDocument/prepareRename`: the range to edit, or an error saying why not.
pub fn prepare_rename(
    world: &World<'_>,
    uri: &Uri,
    position: Position,
) -> Result<PrepareRenameResponse, String> {
    let occurrence = renameable(world, uri, position)?;
    let doc = world.document(uri)?;
    Ok(PrepareRenameResponse::RangeWithPlaceholder {
        range: world.state.view(doc).range(occurrence.range),
        placeholder: occurrence.symbol.name.clone(),
    })
}

/// `textDocument/rename`: one edit per occurrence, in every user file.
pub fn rename(
    world: &World<'_>,
    uri: &Uri,
    position: Position,
    new_name: &str,
) -> Result<WorkspaceEdit, String> {
    let occurrence = renameable(world, uri, position)?;
    let symbol = &occurrence.symbol;
    check_identifier(new_name)?;
    if new_name != symbol.name {
        let model = &world.analysis.model;
        let taken = match symbol.kind {
            SymbolKind::Param => symbol
                .container
                .as_deref()
                .and_then(|t| model.tools.iter().find(|x| x.name == t))
                .is_some_and(|t| t.param(new_name).is_some()),
            SymbolKind::Credential => symbol
                .container
                .as_deref()
                .and_then(|a| model.agents.iter().find(|x| x.name == a))
                .is_some_and(|a| a.credentials.iter().any(|c| c.name == new_name)),
            _ => {
                world
                    .index
                    .references(&crate::index::Symbol {
                        kind: symbol.kind,
                        name: new_name.to_string(),
                        container: None,
                    })
                    .iter()
                    .any(|o| o.is_decl)
                    || top_level_name_taken(world, new_name)
            }
        };
        if taken {
            return Err(format!(
                "`{new_name}` is already declared; pick a name that is not in use"
            ));
        }
        if symbol.kind == SymbolKind::Param && new_name == "confidence" {
            return Err(
                "`confidence` is reserved for the confidence the caller reports".to_string(),
            );
        }
    }
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for o in world.index.references(symbol) {
        let Some(doc) = world.state.document(o.file) else {
            continue;
        };
        if doc.module.is_some() {
            continue;
        }
        let Some(uri) = doc.uri.clone() else {
            continue;
        };
        changes.entry(uri).or_default().push(TextEdit {
            range: world.state.view(doc).range(o.range),
            new_text: new_name.to_string(),
        });
    }
    Ok(WorkspaceEdit {
        changes: Some(changes),
        document_changes: None,
        change_annotations: None,
    })
}

fn top_level_name_taken(world: &World<'_>, name: &str) -> bool {
    let m = &world.analysis.model;
    m.tiers.iter().any(|x| x.name == name)
        || m.keys.iter().any(|x| x.name == name)
        || m.resources.iter().any(|x| x.name == name)
        || m.sinks.iter().any(|x| x.name == name)
        || m.tools.iter().any(|x| x.name == name)
        || m.thresholds.iter().any(|x| x.name == name)
        || m.routes.iter().any(|x| x.name == name)
        || m.agents.iter().any(|x| x.name == name)
}

/// A new name must lex as one identifier and not be a keyword.
pub fn check_identifier(name: &str) -> Result<(), String> {
    let tokens = agentpolicy::syntax::lexer::lex(name);
    let is_ident = matches!(tokens.as_slice(), [t] if t.kind == TokenKind::Ident);
    if !is_ident {
        return Err(format!(
            "`{name}` is not a valid name: use letters, digits and `_`, starting with a letter or `_`"
        ));
    }
    if KEYWORDS.contains(&name) {
        return Err(format!("`{name}` is a keyword of the language"));
    }
    Ok(())
}

/// The identifier-like word around `offset`.
fn word_at(text: &str, offset: u32) -> &str {
    let offset = (offset as usize).min(text.len());
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(offset);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map(|(i, _)| offset + i)
        .unwrap_or(text.len());
    &text[start..end]
}
