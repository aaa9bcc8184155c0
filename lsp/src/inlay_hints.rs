//! Inlay hints and document highlights, both read off the reference index.
//!
//! Inlay hints show a threshold's value where a condition names it
//! (`amount > large_payment` reads `amount > large_payment = $10,000`), so an author
//! sees the number a rule compares against without leaving the rule. Document highlights
//! mark every occurrence of the name under the cursor in the file, declarations as
//! writes.

use tower_lsp_server::ls_types::{
    DocumentHighlight, DocumentHighlightKind, InlayHint, InlayHintKind, InlayHintLabel, Position,
    Range, Uri,
};

use crate::index::SymbolKind;
use crate::lookup::format_value;
use crate::state::World;

/// `textDocument/inlayHint` for the requested range.
pub fn inlay_hints(world: &World<'_>, uri: &Uri, range: Range) -> Result<Vec<InlayHint>, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let wanted = view.text_range(range);
    let model = &world.analysis.model;
    let mut out = Vec::new();
    for o in world.index.in_file(doc.id) {
        if o.is_decl
            || o.symbol.kind != SymbolKind::Threshold
            || o.range.end < wanted.start
            || o.range.start > wanted.end
        {
            continue;
        }
        let Some(threshold) = model.thresholds.iter().find(|t| t.name == o.symbol.name) else {
            continue;
        };
        out.push(InlayHint {
            position: view.position(o.range.end),
            label: InlayHintLabel::String(format!("= {}", format_value(&threshold.value))),
            kind: Some(InlayHintKind::PARAMETER),
            text_edits: None,
            tooltip: None,
            padding_left: Some(true),
            padding_right: None,
            data: None,
        });
    }
    Ok(out)
}

/// `textDocument/documentHighlight`.
pub fn document_highlights(
    world: &World<'_>,
    uri: &Uri,
    position: Position,
) -> Result<Option<Vec<DocumentHighlight>>, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let Some(occurrence) = world.index.at(doc.id, view.offset(position)) else {
        return Ok(None);
    };
    let highlights = world
        .index
        .in_file(doc.id)
        .iter()
        .filter(|o| o.symbol == occurrence.symbol)
        .map(|o| DocumentHighlight {
            range: view.range(o.range),
            kind: Some(if o.is_decl {
                DocumentHighlightKind::WRITE
            } else {
                DocumentHighlightKind::READ
            }),
        })
        .collect();
    Ok(Some(highlights))
}
