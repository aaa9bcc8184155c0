//! Completion from the lossless tokens before the cursor and the resolved model.
//!
//! The grammar decides what may follow each word, so the context is read from the last
//! significant tokens (`allow ▮` wants a tool, `to ▮` a route, `tier ▮` a tier) and the
//! block the cursor is in (an `agent { }` wants agent clauses). Inside `when`, the rule's
//! tool decides which argument names are offered. No completion inside comments or
//! strings.

use agentpolicy::model::Model;
use agentpolicy::syntax::lexer::{
    AGENT_CLAUSE_KEYWORDS, ITEM_KEYWORDS, Token, TokenKind, clause_keywords,
};
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionResponse, Position, Uri,
};

use crate::lookup::format_value;
use crate::state::World;

/// What the cursor position wants.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Nothing,
    Keywords(&'static [&'static str]),
    Modules,
    Tools {
        star: bool,
    },
    Routes,
    Tiers,
    Keys,
    Resources,
    Sinks,
    Agents,
    Words(&'static [&'static str]),
    /// A `when` operand: the tool's arguments (if any), `confidence`, thresholds.
    Operand {
        tool: Option<String>,
    },
    /// A set name, after `in`.
    Sets,
    /// An argument name in a test call of this tool.
    CallArg {
        tool: String,
    },
    /// Several of the above (a test step line, say: an agent or `expect`).
    Any(Vec<Want>),
}

impl Want {
    /// Whether this context names something to complete, beyond keywords.
    fn is_specific(&self) -> bool {
        match self {
            Want::Nothing | Want::Keywords(_) => false,
            Want::Any(list) => list.iter().any(Want::is_specific),
            _ => true,
        }
    }
}

const EFFECTS: &[&str] = &["read", "write", "external", "financial", "irreversible"];
const TYPES: &[&str] = &[
    "text",
    "number",
    "money",
    "bool",
    "duration",
    "percent",
    "list<text>",
];
const DENY_REASONS: &[&str] = &[
    "flow",
    "limit",
    "suspended",
    "not_granted",
    "no_rule",
    "rule",
];
const COMPARE_OPS: &[TokenKind] = &[
    TokenKind::Lt,
    TokenKind::Le,
    TokenKind::Gt,
    TokenKind::Ge,
    TokenKind::EqEq,
    TokenKind::Ne,
];

/// `textDocument/completion`.
///
/// When a space triggered the request, only a specific context answers (a tool after
/// `allow`, a route after `to`, ...): a bare keyword list after every space is noise.
pub fn completion(
    world: &World<'_>,
    uri: &Uri,
    position: Position,
    triggered_by_space: bool,
) -> Result<Option<CompletionResponse>, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let offset = view.offset(position);
    let parsed = world.state.parsed(doc);
    let want = context(view.text, &parsed.tokens, offset);
    if triggered_by_space && !want.is_specific() {
        return Ok(None);
    }
    let mut items = Vec::new();
    add(&want, world, &mut items);
    items.sort_by(|a, b| a.label.cmp(&b.label));
    items.dedup_by(|a, b| a.label == b.label);
    Ok(Some(CompletionResponse::Array(items)))
}

/// A significant token with its text.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    kind: TokenKind,
    text: &'a str,
}

/// The block the cursor is in: the item keyword that opened the innermost `{`.
fn context(text: &str, tokens: &[Token], offset: u32) -> Want {
    // The token the cursor is in or right after; completing inside a comment or string
    // makes no sense, and a word being typed is the prefix, not context.
    let mut before: Vec<Tok<'_>> = Vec::new();
    let mut depth = 0usize;
    let mut block: Option<&str> = None;
    let mut item: Option<&str> = None;
    let mut paren_owner: Vec<Option<String>> = Vec::new();
    for t in tokens {
        if t.start >= offset {
            break;
        }
        let inside = match t.kind {
            TokenKind::LineComment => t.end >= offset,
            TokenKind::BlockComment | TokenKind::String => t.end > offset,
            _ => false,
        };
        if inside {
            return Want::Nothing;
        }
        if t.end >= offset && t.kind == TokenKind::Ident {
            // The word being typed.
            break;
        }
        if t.kind.is_trivia() {
            continue;
        }
        let tok = Tok {
            kind: t.kind,
            text: t.text(text),
        };
        match t.kind {
            TokenKind::LBrace => {
                depth += 1;
                if depth == 1 {
                    block = item;
                }
            }
            TokenKind::RBrace => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    block = None;
                    item = None;
                }
            }
            TokenKind::LParen => {
                // `calls TOOL (` opens a call's arguments.
                let owner = match before.as_slice() {
                    [.., a, b] if a.text == "calls" && b.kind == TokenKind::Ident => {
                        Some(b.text.to_string())
                    }
                    _ => None,
                };
                paren_owner.push(owner);
            }
            TokenKind::RParen => {
                paren_owner.pop();
            }
            TokenKind::Ident if depth == 0 && ITEM_KEYWORDS.contains(&tok.text) => {
                // A new item starts only at the start of a statement, not `tier` in
                // `max tier` (which is not an item keyword anyway) or `tool` in `assert
                // every irreversible tool escalates`.
                let in_assert_tail = before.last().is_some_and(|p| p.text == "irreversible");
                if !in_assert_tail {
                    item = Some(tok.text);
                    before.clear();
                }
            }
            _ => {}
        }
        before.push(tok);
    }
    if let Some(Some(tool)) = paren_owner.last()
        && matches!(
            before.last().map(|t| t.kind),
            Some(TokenKind::LParen | TokenKind::Comma)
        )
    {
        return Want::CallArg { tool: tool.clone() };
    }
    let last = before.last().copied();
    let last2 = before
        .len()
        .checked_sub(2)
        .and_then(|i| before.get(i))
        .copied();

    // Inside a condition: the operand positions.
    if let Some(tool) = condition_tool(&before) {
        let after_operator = last.is_some_and(|t| {
            COMPARE_OPS.contains(&t.kind)
                || t.kind == TokenKind::LParen
                || matches!(t.text, "when" | "and" | "or" | "not")
        });
        if last.is_some_and(|t| t.text == "in") {
            return Want::Sets;
        }
        if after_operator {
            return Want::Operand { tool };
        }
        if last.is_some_and(|t| {
            t.kind == TokenKind::Ident || t.kind == TokenKind::RParen || is_literal(t.kind)
        }) {
            let mut words: &'static [&'static str] = &["and", "or"];
            if block == Some("agent") && before.iter().any(|t| t.text == "autonomy") {
                words = &["and", "or", "because"];
            }
            return Want::Keywords(words);
        }
    }

    match (word(last2), word(last)) {
        (_, "use") => return Want::Modules,
        ("use", _) if last.is_some_and(|t| t.kind == TokenKind::Ident) => return Want::Nothing,
        ("expect", "deny") => return Want::Words(DENY_REASONS),
        (_, "expect") => return Want::Words(&["allow", "escalate", "deny"]),
        ("expect", "escalate") => return Want::Keywords(&["to"]),
        (_, "allow" | "escalate" | "deny") if block == Some("agent") => {
            return Want::Tools { star: true };
        }
        (_, "autonomy") => return Want::Tools { star: false },
        (_, "calls") if item == Some("assert") => return Want::Tools { star: true },
        (_, "calls") => return Want::Tools { star: false },
        (_, "to") if item == Some("assert") => return Want::Sinks,
        (_, "to") => return Want::Routes,
        (_, "tier" | "clearance" | "tiers" | "from") => return Want::Tiers,
        ("never", "reads") if item == Some("assert") => return Want::Tiers,
        (_, "max") => return Want::Keywords(&["tier"]),
        (_, "keyed") => return Want::Keys,
        (_, "reads") => return Want::Resources,
        (_, "writes") => return Want::Sinks,
        (_, "effect") => return Want::Words(EFFECTS),
        (_, "mode") => return Want::Words(&["shadow", "enforce"]),
        (_, "on") if item == Some("test") => return Want::Resources,
        (_, "into") if item == Some("test") => return Want::Sinks,
        (_, "with") if item == Some("test") => return Want::Words(&["confidence"]),
        (_, "assert") => {
            return Want::Any(vec![Want::Words(&["never", "every", "no"]), Want::Agents]);
        }
        ("assert", "never") => return Want::Agents,
        ("assert", "no") => return Want::Words(&["flow"]),
        ("no", "flow") => return Want::Words(&["from"]),
        ("assert", _) if last.is_some_and(|t| t.kind == TokenKind::Ident) => {
            return Want::Words(&["never"]);
        }
        (_, "then") if block == Some("escalation") => return Want::Words(&["allow", "deny"]),
        (_, "then") if block == Some("test") => return Want::Agents,
        (_, "then") if block == Some("agent") => return Want::Words(&["suspend"]),
        (_, "timeout") | (_, "expires") | (_, "over") => return Want::Nothing,
        _ => {}
    }
    if let Some(t) = last
        && t.kind == TokenKind::Lt
        && item == Some("tiers")
    {
        return Want::Tiers;
    }
    if let Some(t) = last
        && t.kind == TokenKind::Colon
        && item == Some("tool")
        && depth == 0
    {
        return Want::Words(TYPES);
    }
    if let Some(t) = last
        && t.kind == TokenKind::Comma
        && let Some(clause) = before.iter().rev().find(|t| {
            t.kind == TokenKind::Ident
                && !matches!(t.text, "and" | "or")
                && matches!(t.text, "keyed" | "reads" | "writes" | "effect" | "limit")
                || t.kind == TokenKind::LBrace
        })
    {
        match clause.text {
            "keyed" => return Want::Keys,
            "reads" => return Want::Resources,
            "writes" => return Want::Sinks,
            "effect" => return Want::Words(EFFECTS),
            _ => {}
        }
    }
    // A rule's target was written: `to` (escalate) or `when` may follow.
    if block == Some("agent") {
        let rule_kind = before
            .iter()
            .rev()
            .take(4)
            .find(|t| matches!(t.text, "allow" | "escalate" | "deny"));
        if let Some(kind) = rule_kind
            && last.is_some_and(|t| t.kind == TokenKind::Ident || t.kind == TokenKind::Star)
            && word(last) != kind.text
        {
            let follow: &'static [&'static str] = if kind.text == "escalate"
                && !before.iter().rev().take(3).any(|t| t.text == "to")
            {
                &["to", "when"]
            } else {
                &["when"]
            };
            return Want::Any(vec![
                Want::Keywords(follow),
                Want::Keywords(AGENT_CLAUSE_KEYWORDS),
            ]);
        }
    }
    match (depth, block) {
        (0, _) => Want::Keywords(ITEM_KEYWORDS),
        (_, Some("test")) => Want::Any(vec![Want::Agents, Want::Keywords(&["then", "expect"])]),
        (_, Some(item)) => clause_keywords(item).map_or(Want::Nothing, Want::Keywords),
        _ => Want::Nothing,
    }
}

fn word<'a>(t: Option<Tok<'a>>) -> &'a str {
    t.map(|t| t.text).unwrap_or("")
}

fn is_literal(kind: TokenKind) -> bool {
    matches!(
        kind,
        TokenKind::Money
            | TokenKind::Percent
            | TokenKind::Duration
            | TokenKind::Number
            | TokenKind::String
    )
}

/// When the statement being written has a `when`, the tool its condition reads (`None`
/// for `*` rules); `None` outside conditions is signalled by the outer `Option`.
fn condition_tool(before: &[Tok<'_>]) -> Option<Option<String>> {
    let when = before.iter().rposition(|t| t.text == "when")?;
    // The statement's start: the last rule / autonomy / assert word before `when`.
    let head = before[..when]
        .iter()
        .rposition(|t| matches!(t.text, "allow" | "escalate" | "deny" | "autonomy" | "calls"))?;
    // A later clause keyword ends the condition.
    if before[when..].iter().any(|t| {
        matches!(
            t.text,
            "allow"
                | "escalate"
                | "deny"
                | "autonomy"
                | "limit"
                | "breaker"
                | "mode"
                | "owner"
                | "purpose"
                | "max"
                | "credential"
                | "stage"
                | "promote"
                | "because"
        ) || t.kind == TokenKind::RBrace
    }) {
        return None;
    }
    let target = before.get(head + 1)?;
    Some((target.kind == TokenKind::Ident).then(|| target.text.to_string()))
}

fn add(want: &Want, world: &World<'_>, items: &mut Vec<CompletionItem>) {
    let model: &Model = &world.analysis.model;
    let item = |label: &str, kind: CompletionItemKind, detail: Option<String>| CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        ..Default::default()
    };
    match want {
        Want::Nothing => {}
        Want::Keywords(words) => {
            items.extend(
                words
                    .iter()
                    .map(|w| item(w, CompletionItemKind::KEYWORD, None)),
            );
        }
        Want::Words(words) => {
            items.extend(
                words
                    .iter()
                    .map(|w| item(w, CompletionItemKind::ENUM_MEMBER, None)),
            );
        }
        Want::Modules => {
            for m in world.state.stdlib_documents() {
                if let Some(name) = &m.module {
                    items.push(item(
                        name,
                        CompletionItemKind::MODULE,
                        Some("standard library".to_string()),
                    ));
                }
            }
        }
        Want::Tools { star } => {
            for (i, t) in model.tools.iter().enumerate() {
                let effects: Vec<&str> = t.effects.iter().map(|e| e.keyword()).collect();
                let mut it = item(
                    &t.name,
                    CompletionItemKind::FUNCTION,
                    Some(crate::hover::tool_signature(model, i)),
                );
                if !effects.is_empty() {
                    it.label_details =
                        Some(tower_lsp_server::ls_types::CompletionItemLabelDetails {
                            detail: None,
                            description: Some(effects.join(", ")),
                        });
                }
                items.push(it);
            }
            if *star {
                items.push(item(
                    "*",
                    CompletionItemKind::OPERATOR,
                    Some("every tool granted to the agent".to_string()),
                ));
            }
        }
        Want::Routes => {
            for r in &model.routes {
                items.push(item(&r.name, CompletionItemKind::EVENT, r.notify.clone()));
            }
        }
        Want::Tiers => {
            let n = model.tiers.len();
            for (i, t) in model.tiers.iter().enumerate() {
                items.push(item(
                    &t.name,
                    CompletionItemKind::ENUM_MEMBER,
                    Some(format!("tier, rank {} of {n}", i + 1)),
                ));
            }
        }
        Want::Keys => {
            for k in &model.keys {
                items.push(item(
                    &k.name,
                    CompletionItemKind::PROPERTY,
                    Some("isolation key".to_string()),
                ));
            }
        }
        Want::Resources => {
            for r in &model.resources {
                let tier = model
                    .tiers
                    .get(r.tier.index())
                    .map(|t| format!("resource, tier {}", t.name));
                items.push(item(&r.name, CompletionItemKind::STRUCT, tier));
            }
        }
        Want::Sinks => {
            for s in &model.sinks {
                let tier = model
                    .tiers
                    .get(s.clearance.index())
                    .map(|t| format!("sink, clearance {}", t.name));
                items.push(item(&s.name, CompletionItemKind::INTERFACE, tier));
            }
        }
        Want::Agents => {
            for a in &model.agents {
                items.push(item(
                    &a.name,
                    CompletionItemKind::CLASS,
                    Some("agent".to_string()),
                ));
            }
        }
        Want::Operand { tool } => {
            if let Some(t) = tool
                .as_deref()
                .and_then(|t| model.tools.iter().find(|x| x.name == t))
            {
                for p in &t.params {
                    let ty = format!("{}{}", p.ty.keyword(), if p.optional { "?" } else { "" });
                    let mut it = item(
                        &p.name,
                        CompletionItemKind::FIELD,
                        Some(format!("{ty} — argument of {}", t.name)),
                    );
                    it.sort_text = Some(format!("0{}", p.name));
                    items.push(it);
                }
            }
            items.push(item(
                "confidence",
                CompletionItemKind::VARIABLE,
                Some("number — the caller's reported confidence".to_string()),
            ));
            items.push(item(
                "tainted",
                CompletionItemKind::VARIABLE,
                Some("bool — the session has taken in untrusted content".to_string()),
            ));
            for th in &model.thresholds {
                items.push(item(
                    &th.name,
                    CompletionItemKind::CONSTANT,
                    Some(format!("threshold = {}", format_value(&th.value))),
                ));
            }
            items.push(item("not", CompletionItemKind::KEYWORD, None));
        }
        Want::Sets => {
            for set in &model.sets {
                let detail = match &set.members {
                    Some(m) => format!("set of {} texts", m.len()),
                    None => "set, bound at deploy".to_string(),
                };
                items.push(item(&set.name, CompletionItemKind::CONSTANT, Some(detail)));
            }
        }
        Want::CallArg { tool } => {
            if let Some(t) = model.tools.iter().find(|x| &x.name == tool) {
                for p in &t.params {
                    let ty = format!("{}{}", p.ty.keyword(), if p.optional { "?" } else { "" });
                    let mut it = item(&p.name, CompletionItemKind::FIELD, Some(ty));
                    it.insert_text = Some(format!("{}: ", p.name));
                    items.push(it);
                }
            }
        }
        Want::Any(list) => list.iter().for_each(|w| add(w, world, items)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentpolicy::syntax::lexer::lex;

    fn want(text_with_cursor: &str) -> Want {
        let offset = text_with_cursor.find('|').unwrap();
        let text = text_with_cursor.replace('|', "");
        context(&text, &lex(&text), offset as u32)
    }

    #[test]
    fn contexts() {
        assert_eq!(want("|"), Want::Keywords(ITEM_KEYWORDS));
        assert_eq!(want("agent a {\n  allow |\n}"), Want::Tools { star: true });
        assert_eq!(
            want("agent a {\n  allow se|\n}"),
            Want::Tools { star: true }
        );
        assert_eq!(want("agent a {\n  escalate x to |\n}"), Want::Routes);
        assert_eq!(
            want("agent a {\n  allow pay when amount <= |\n}"),
            Want::Operand {
                tool: Some("pay".to_string())
            }
        );
        assert_eq!(
            want("agent a {\n  deny * when |\n}"),
            Want::Operand { tool: None }
        );
        assert_eq!(want("resource r { tier | }"), Want::Tiers);
        assert_eq!(want("agent a {\n  allow pay when to in |\n}"), Want::Sets);
        assert_eq!(want("tool t(a: |) {}"), Want::Words(TYPES));
        assert_eq!(want("tool t { effect read, |}"), Want::Words(EFFECTS));
        assert_eq!(want("tiers a < |"), Want::Tiers);
        assert_eq!(want("// allow |"), Want::Nothing);
        assert_eq!(want("agent a { owner \"x|\" }"), Want::Nothing);
        assert_eq!(
            want("test \"t\" {\n  a calls pay(|)\n}"),
            Want::CallArg {
                tool: "pay".to_string()
            }
        );
        assert_eq!(
            want("agent a {\n  |\n}"),
            Want::Keywords(AGENT_CLAUSE_KEYWORDS)
        );
        // A resource's clauses include `from SINK` (the parser's list, not a copy of it).
        match want("resource r {\n  |\n}") {
            Want::Keywords(words) => assert!(words.contains(&"from"), "{words:?}"),
            other => panic!("expected resource clause keywords, got {other:?}"),
        }
        assert_eq!(want("use |"), Want::Modules);
        assert_eq!(want("test \"t\" {\n  a calls t into |\n}"), Want::Sinks);
    }
}
