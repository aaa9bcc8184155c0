//! Quick fixes for diagnostics the compiler can say how to fix:
//!
//! - "did you mean `x`?" (unknown names, arguments, modules): replace the name;
//! - AP0042, an agent without an owner: add an `owner` line;
//! - AP0041, a route without a timeout outcome: add `timeout 15m then deny` (or the
//!   missing `then deny`), failing safe;
//! - AP0040, an `escalate` without a route: add `to ROUTE` for each declared route, or
//!   declare a `review` route when there is none.
//!
//! Fixes are computed from the current analysis, not from what the client sends back,
//! so they always match the text.

use std::collections::HashMap;

use agentpolicy::diagnostics::{Code, Diagnostic};
use agentpolicy::syntax::ast::{AgentMemberKind, ItemKind, TextRange};
use agentpolicy::syntax::lexer::TokenKind;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, Range, TextEdit, Uri, WorkspaceEdit,
};

use crate::convert::intersects;
use crate::diagnostics::to_lsp;
use crate::state::{Document, World};

/// `textDocument/codeAction`: quick fixes for the diagnostics touching `range`.
pub fn code_actions(
    world: &World<'_>,
    uri: &Uri,
    range: Range,
) -> Result<Vec<CodeActionOrCommand>, String> {
    let doc = world.document(uri)?;
    if doc.module.is_some() {
        return Ok(Vec::new());
    }
    let wanted = world.state.view(doc).text_range(range);
    let mut out = Vec::new();
    for d in &world.analysis.diagnostics {
        if d.primary.file != doc.id || !intersects(d.primary.range, wanted) {
            continue;
        }
        for (title, edits, preferred) in fixes(world, doc, d) {
            let mut changes = HashMap::new();
            changes.insert(uri.clone(), edits);
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![to_lsp(world.state, d, None)]),
                edit: Some(WorkspaceEdit {
                    changes: Some(changes),
                    document_changes: None,
                    change_annotations: None,
                }),
                command: None,
                is_preferred: Some(preferred),
                disabled: None,
                data: None,
            }));
        }
    }
    Ok(out)
}

type Fix = (String, Vec<TextEdit>, bool);

fn fixes(world: &World<'_>, doc: &Document, d: &Diagnostic) -> Vec<Fix> {
    let view = world.state.view(doc);
    let edit = |range: TextRange, text: String| TextEdit {
        range: view.range(range),
        new_text: text,
    };
    let mut out = Vec::new();
    if let Some(suggestion) = d.help.as_deref().and_then(did_you_mean) {
        out.push((
            format!("Replace with `{suggestion}`"),
            vec![edit(d.primary.range, suggestion.to_string())],
            true,
        ));
    }
    let parsed = world.state.parsed(doc);
    let text = view.text;
    match d.code {
        Code::AgentWithoutOwner => {
            let agent = parsed.tree.items.iter().find_map(|item| match &item.kind {
                ItemKind::Agent(a) if a.name.range == d.primary.range => Some((item, a)),
                _ => None,
            });
            if let Some((item, a)) = agent
                && let Some(brace) = token_after(
                    &parsed.tokens,
                    a.name.range.end,
                    item.range.end,
                    TokenKind::LBrace,
                )
            {
                let indent = a
                    .members
                    .first()
                    .map(|m| indentation(text, m.range.start))
                    .filter(|i| !i.is_empty())
                    .unwrap_or("  ");
                let at = TextRange {
                    start: brace.end,
                    end: brace.end,
                };
                out.push((
                    format!("Add an `owner` to agent `{}`", a.name.text),
                    vec![edit(at, format!("\n{indent}owner \"team@example.com\""))],
                    true,
                ));
            }
        }
        Code::RouteWithoutTimeout => {
            let route = parsed.tree.items.iter().find_map(|item| match &item.kind {
                ItemKind::Escalation(e) if e.name.range == d.primary.range => Some((item, e)),
                _ => None,
            });
            if let Some((item, e)) = route {
                match e.timeout.first() {
                    Some(t) if t.then.is_none() => out.push((
                        format!("Deny when `{}` times out", e.name.text),
                        vec![edit(
                            TextRange {
                                start: t.range.end,
                                end: t.range.end,
                            },
                            " then deny".to_string(),
                        )],
                        true,
                    )),
                    Some(_) => {}
                    None => {
                        if let Some(close) =
                            last_token(&parsed.tokens, item.range, TokenKind::RBrace)
                        {
                            let body = text
                                .get(item.range.start as usize..close.start as usize)
                                .unwrap_or("");
                            let (at, insert) = if body.contains('\n') {
                                let line_start = text[..close.start as usize]
                                    .rfind('\n')
                                    .map(|i| i as u32 + 1)
                                    .unwrap_or(0);
                                let indent = e
                                    .notify
                                    .first()
                                    .map(|n| indentation(text, n.range.start).to_string())
                                    .filter(|i| !i.is_empty())
                                    .unwrap_or_else(|| "  ".to_string());
                                (line_start, format!("{indent}timeout 15m then deny\n"))
                            } else {
                                let space = if text[..close.start as usize].ends_with(' ') {
                                    ""
                                } else {
                                    " "
                                };
                                (close.start, format!("{space}timeout 15m then deny "))
                            };
                            out.push((
                                format!("Add `timeout 15m then deny` to `{}`", e.name.text),
                                vec![edit(TextRange { start: at, end: at }, insert)],
                                true,
                            ));
                        }
                    }
                }
            }
        }
        Code::EscalateWithoutRoute => {
            let rule = parsed.tree.items.iter().find_map(|item| match &item.kind {
                ItemKind::Agent(a) => a.members.iter().find_map(|m| match &m.kind {
                    AgentMemberKind::Rule(r) if m.range == d.primary.range => Some((item, r)),
                    _ => None,
                }),
                _ => None,
            });
            if let Some((item, r)) = rule {
                let after_target = TextRange {
                    start: r.target.range().end,
                    end: r.target.range().end,
                };
                let routes = &world.analysis.model.routes;
                for (i, route) in routes.iter().take(5).enumerate() {
                    out.push((
                        format!("Escalate to `{}`", route.name),
                        vec![edit(after_target, format!(" to {}", route.name))],
                        i == 0,
                    ));
                }
                if routes.is_empty() {
                    let name = free_name(world, "review");
                    let at = TextRange {
                        start: item.range.start,
                        end: item.range.start,
                    };
                    out.push((
                        format!("Declare escalation route `{name}` and escalate to it"),
                        vec![
                            edit(at, format!("escalation {name} {{\n  notify \"queue:{name}\"\n  timeout 15m then deny\n}}\n\n")),
                            edit(after_target, format!(" to {name}")),
                        ],
                        true,
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// The suggestion in a "did you mean `x`?" help line.
fn did_you_mean(help: &str) -> Option<&str> {
    let rest = &help[help.find("did you mean `")? + "did you mean `".len()..];
    let end = rest.find('`')?;
    Some(&rest[..end]).filter(|s| !s.is_empty())
}

fn token_after(
    tokens: &[agentpolicy::syntax::lexer::Token],
    from: u32,
    until: u32,
    kind: TokenKind,
) -> Option<agentpolicy::syntax::lexer::Token> {
    tokens
        .iter()
        .find(|t| t.start >= from && t.end <= until && t.kind == kind)
        .copied()
}

fn last_token(
    tokens: &[agentpolicy::syntax::lexer::Token],
    within: TextRange,
    kind: TokenKind,
) -> Option<agentpolicy::syntax::lexer::Token> {
    tokens
        .iter()
        .rev()
        .find(|t| t.start >= within.start && t.end <= within.end && t.kind == kind)
        .copied()
}

/// The whitespace that starts the line holding `offset`, when only whitespace precedes it.
fn indentation(text: &str, offset: u32) -> &str {
    let offset = (offset as usize).min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let prefix = &before[line_start..];
    if prefix.chars().all(|c| c == ' ' || c == '\t') {
        prefix
    } else {
        ""
    }
}

fn free_name(world: &World<'_>, base: &str) -> String {
    let taken = |n: &str| {
        world.analysis.model.routes.iter().any(|r| r.name == n)
            || world.analysis.model.tools.iter().any(|r| r.name == n)
            || world.analysis.model.agents.iter().any(|r| r.name == n)
    };
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_is_read_from_help() {
        assert_eq!(
            did_you_mean("did you mean `search_docs`?"),
            Some("search_docs")
        );
        assert_eq!(did_you_mean("declare it with `tool NAME`"), None);
    }
}
