//! Hover: what the name under the cursor is, from the resolved model. A tier shows its
//! rank in the order, a threshold its value, a tool its signature and effects, an agent a
//! summary of its grants, a route whom it notifies and what happens on timeout.

use std::fmt::Write as _;

use agentpolicy::codegen;
use agentpolicy::model::{AgentDef, Model, RuleTarget, TierId};
use agentpolicy::syntax::ast::{Effect, Mode, TimeoutOutcome};
use tower_lsp_server::ls_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position, Uri};

use crate::index::{Symbol, SymbolKind};
use crate::lookup::{definition, format_duration, format_value};
use crate::state::World;

/// The hover for a position, or `None` when the cursor is on no name.
pub fn hover(world: &World<'_>, uri: &Uri, position: Position) -> Result<Option<Hover>, String> {
    let doc = world.document(uri)?;
    let view = world.state.view(doc);
    let offset = view.offset(position);
    let Some(occurrence) = world.index.at(doc.id, offset) else {
        return Ok(keyword_hover(world, doc, offset));
    };
    let Some(text) = describe(world, &occurrence.symbol) else {
        return Ok(None);
    };
    Ok(Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: Some(view.range(occurrence.range)),
    }))
}

/// Markdown describing a symbol.
pub fn describe(world: &World<'_>, symbol: &Symbol) -> Option<String> {
    let model = &world.analysis.model;
    let name = symbol.name.as_str();
    let mut out = String::new();
    match symbol.kind {
        SymbolKind::Tier => {
            let rank = model.tiers.iter().position(|t| t.name == name)?;
            let order = model
                .tiers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if i == rank {
                        format!("**{}**", t.name)
                    } else {
                        t.name.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" < ");
            code(&mut out, &format!("tier {name}"));
            let _ = writeln!(
                out,
                "Rank {} of {} (lowest first): {order}",
                rank + 1,
                model.tiers.len()
            );
            let resources = names(
                model
                    .resources
                    .iter()
                    .filter(|r| r.tier.index() == rank)
                    .map(|r| &r.name),
            );
            if !resources.is_empty() {
                let _ = writeln!(out, "\nResources at this tier: {resources}");
            }
        }
        SymbolKind::Key => {
            let id = model.keys.iter().position(|k| k.name == name)?;
            code(&mut out, &format!("isolate {name}"));
            out.push_str("Isolation key: a session holds one value of it; data keyed by another value never enters.\n");
            let keyed = names(
                model
                    .resources
                    .iter()
                    .filter(|r| r.keyed.iter().any(|k| k.index() == id))
                    .map(|r| &r.name),
            );
            if !keyed.is_empty() {
                let _ = writeln!(out, "\nKeyed resources: {keyed}");
            }
        }
        SymbolKind::Resource => {
            let (id, r) = model
                .resources
                .iter()
                .enumerate()
                .find(|(_, r)| r.name == name)?;
            code(&mut out, &format!("resource {name}"));
            let _ = writeln!(out, "Tier: {}", tier_with_rank(model, r.tier));
            if !r.keyed.is_empty() {
                let keys = names(
                    r.keyed
                        .iter()
                        .filter_map(|k| model.keys.get(k.index()))
                        .map(|k| &k.name),
                );
                let _ = writeln!(out, "\nKeyed by: {keys}");
            }
            let readers = names(
                model
                    .tools
                    .iter()
                    .filter(|t| t.reads.iter().any(|x| x.index() == id))
                    .map(|t| &t.name),
            );
            if !readers.is_empty() {
                let _ = writeln!(out, "\nRead by: {readers}");
            }
        }
        SymbolKind::Sink => {
            let (id, s) = model
                .sinks
                .iter()
                .enumerate()
                .find(|(_, s)| s.name == name)?;
            code(&mut out, &format!("sink {name}"));
            let _ = writeln!(
                out,
                "Clearance: {} (the highest tier that may be written here)",
                tier_with_rank(model, s.clearance)
            );
            if !s.keyed.is_empty() {
                let keys = names(
                    s.keyed
                        .iter()
                        .filter_map(|k| model.keys.get(k.index()))
                        .map(|k| &k.name),
                );
                let _ = writeln!(out, "\nKeyed by: {keys}");
            }
            let writers = names(
                model
                    .tools
                    .iter()
                    .filter(|t| t.writes.iter().any(|x| x.index() == id))
                    .map(|t| &t.name),
            );
            if !writers.is_empty() {
                let _ = writeln!(out, "\nWritten by: {writers}");
            }
        }
        SymbolKind::Tool => {
            let (id, t) = model
                .tools
                .iter()
                .enumerate()
                .find(|(_, t)| t.name == name)?;
            code(&mut out, &tool_signature(model, id));
            if t.effects.is_empty() {
                out.push_str("Effects: none declared\n");
            } else {
                let effects: Vec<&str> = t.effects.iter().map(|e| e.keyword()).collect();
                let _ = writeln!(out, "Effects: {}", effects.join(", "));
            }
            if t.has_effect(Effect::Irreversible) {
                out.push_str("\nIrreversible: every grant must escalate, unless an `autonomy` exemption bounds it.\n");
            }
            let reads = names(
                t.reads
                    .iter()
                    .filter_map(|r| model.resources.get(r.index()))
                    .map(|r| &r.name),
            );
            if !reads.is_empty() {
                let _ = writeln!(out, "\nReads: {reads}");
            }
            let writes = names(
                t.writes
                    .iter()
                    .filter_map(|s| model.sinks.get(s.index()))
                    .map(|s| &s.name),
            );
            if !writes.is_empty() {
                let _ = writeln!(out, "\nWrites: {writes}");
            }
            let granted: Vec<String> = model
                .agents
                .iter()
                .enumerate()
                .filter(|(a, _)| {
                    model.grants(
                        agentpolicy::model::AgentId(*a as u32),
                        agentpolicy::model::ToolId(id as u32),
                    )
                })
                .map(|(_, a)| format!("`{}`", a.name))
                .collect();
            if !granted.is_empty() {
                let _ = writeln!(out, "\nGranted to: {}", granted.join(", "));
            }
        }
        SymbolKind::Param => {
            let tool_name = symbol.container.as_deref()?;
            let tool = model.tools.iter().find(|t| t.name == tool_name)?;
            let p = tool.params.iter().find(|p| p.name == name)?;
            code(
                &mut out,
                &format!(
                    "{}: {}{}",
                    p.name,
                    p.ty.keyword(),
                    if p.optional { "?" } else { "" }
                ),
            );
            let _ = writeln!(out, "Parameter of tool `{tool_name}`.");
            if p.optional {
                out.push_str("\nOptional: when a request leaves it out, `deny` and `escalate` conditions on it match and `allow` conditions do not (fail safe).\n");
            }
        }
        SymbolKind::Threshold => {
            let t = model.thresholds.iter().find(|t| t.name == name)?;
            code(
                &mut out,
                &format!("threshold {name} = {}", format_value(&t.value)),
            );
            let _ = writeln!(out, "Type: {}", t.value.ty().keyword());
        }
        SymbolKind::Set => {
            let set = model.sets.iter().find(|s| s.name == name)?;
            match &set.members {
                Some(members) => {
                    code(&mut out, &format!("set {name}"));
                    let _ = writeln!(
                        out,
                        "{} distinct member{}, written in the policy.",
                        members.len(),
                        if members.len() == 1 { "" } else { "s" }
                    );
                    let shown: Vec<String> =
                        members.iter().take(5).map(|m| format!("`{m}`")).collect();
                    if !shown.is_empty() {
                        let more = members.len().saturating_sub(shown.len());
                        let _ = writeln!(
                            out,
                            "\n{}{}",
                            shown.join(", "),
                            if more > 0 {
                                format!(" and {more} more")
                            } else {
                                String::new()
                            }
                        );
                    }
                }
                None => {
                    code(&mut out, &format!("set {name} from deploy"));
                    out.push_str("Members are bound when the table is loaded (`--sets FILE`); the audit log records their hash. Until bound, calls that test the set are denied.\n");
                }
            }
        }
        SymbolKind::Route => {
            let r = model.routes.iter().find(|r| r.name == name)?;
            code(&mut out, &format!("escalation {name}"));
            match &r.notify {
                Some(n) => {
                    let _ = writeln!(out, "Notifies: `{n}`");
                }
                None => out.push_str("Notifies: nobody (no `notify`)\n"),
            }
            match (r.timeout_ms, r.timeout_outcome) {
                (Some(ms), Some(outcome)) => {
                    let then = match outcome {
                        TimeoutOutcome::Allow => "allow",
                        TimeoutOutcome::Deny => "deny",
                    };
                    let _ = writeln!(out, "\nTimeout: {}, then {then}", format_duration(ms));
                }
                (Some(ms), None) => {
                    let _ = writeln!(
                        out,
                        "\nTimeout: {}, with no outcome (`then allow` or `then deny` is missing)",
                        format_duration(ms)
                    );
                }
                (None, _) => {
                    out.push_str("\nTimeout: none: an unanswered escalation waits forever\n")
                }
            }
        }
        SymbolKind::Agent => {
            let agent = model.agents.iter().find(|a| a.name == name)?;
            code(&mut out, &format!("agent {name}"));
            agent_summary(world, agent, &mut out);
        }
        SymbolKind::Credential => {
            let agent_name = symbol.container.as_deref()?;
            let agent = model.agents.iter().find(|a| a.name == agent_name)?;
            let c = agent.credentials.iter().find(|c| c.name == name)?;
            code(&mut out, &format!("credential {name}"));
            match c.expires_ms {
                Some(ms) => {
                    let _ = writeln!(
                        out,
                        "Credential of agent `{agent_name}`, expires after {}.",
                        format_duration(ms)
                    );
                }
                None => {
                    let _ = writeln!(out, "Credential of agent `{agent_name}`, with no expiry.");
                }
            }
        }
        SymbolKind::Confidence => {
            code(&mut out, "confidence: number");
            out.push_str("The confidence the calling agent reports for this call, between 0 and 1 (`0.85` or `85%`). When a request does not report it, `deny` and `escalate` conditions on it match and `allow` conditions do not (fail safe).\n");
        }
        SymbolKind::Module => {
            let doc = world
                .state
                .stdlib_documents()
                .iter()
                .find(|d| d.module.as_deref() == Some(name))?;
            code(&mut out, &format!("use {name}"));
            let text = world.state.text(doc);
            let comment: Vec<&str> = text
                .lines()
                .take_while(|l| l.starts_with("//"))
                .map(|l| l.trim_start_matches('/').trim())
                .collect();
            let _ = writeln!(out, "Standard-library module.\n\n{}", comment.join(" "));
        }
        SymbolKind::Policy => {
            let p = model.policy.as_ref()?;
            let version = p
                .version
                .as_deref()
                .map(|v| format!(" version {v:?}"))
                .unwrap_or_default();
            code(&mut out, &format!("policy {}{version}", p.name));
            let _ = writeln!(
                out,
                "{} agents, {} tools, {} tiers, {} rules, {} tests",
                model.agents.len(),
                model.tools.len(),
                model.tiers.len(),
                model.rules.len(),
                model.tests.len()
            );
        }
    }
    if symbol.kind.is_top_level()
        && let Some(loc) = definition(world, symbol)
        && let Some(doc) = world.state.document(loc.file)
        && doc.module.is_some()
    {
        let _ = writeln!(
            out,
            "\n*From the standard library (`{}`).*",
            doc.module.as_deref().unwrap_or_default()
        );
    }
    Some(out)
}

/// What a keyword does, in a line: for authors learning the language.
const KEYWORD_DOCS: &[(&str, &str)] = &[
    (
        "policy",
        "`policy NAME version \"...\"`: the policy's name and version, recorded in every audit record. Exactly one per policy.",
    ),
    (
        "use",
        "`use std.MODULE`: brings a standard-library module's tiers, keys, resources, sinks, tools and routes into scope. Your own declaration of the same name replaces the library's.",
    ),
    (
        "tiers",
        "`tiers LOW < ... < HIGH`: data sensitivity levels, lowest first. All `tiers` statements together must form one linear order.",
    ),
    (
        "retain",
        "`retain audit PERIOD` / `retain audit for TIER PERIOD`: how long audit records must be kept at least (records of TIER or above, for a tier clause); a record is kept for the longest period that applies. `agentpolicy audit compact` applies it.",
    ),
    (
        "isolate",
        "`isolate KEY`: one value of KEY per session (one matter, one patient); data keyed by another value never enters the session.",
    ),
    (
        "resource",
        "`resource NAME { tier T keyed K }`: data a tool reads. Reading it raises the session's tier and binds its keys.",
    ),
    (
        "sink",
        "`sink NAME { clearance T }`: a place a tool writes to. A session above the clearance may not write there (no write-down).",
    ),
    (
        "tool",
        "`tool NAME(arg: type, ...) { effect ... reads R writes S }`: an action an agent may call.",
    ),
    (
        "threshold",
        "`threshold NAME = VALUE`: a named value conditions compare with (`$10,000`, `0.85`, `15m`).",
    ),
    (
        "escalation",
        "`escalation NAME { notify \"...\" timeout 15m then deny }`: a route to a human, and what happens when nobody answers.",
    ),
    (
        "agent",
        "`agent NAME { ... }`: an AI agent: its owner, ceiling, rules, limits and breakers. Everything not granted is denied.",
    ),
    (
        "allow",
        "`allow TOOL [when ...]`: grants the tool; the call is allowed when the condition holds and no `deny` or `escalate` matches. A condition on a missing value does not match.",
    ),
    (
        "escalate",
        "`escalate TOOL to ROUTE [when ...]`: grants the tool, but a matching call waits for a human on ROUTE. A condition on a missing value matches (fail safe).",
    ),
    (
        "deny",
        "`deny TOOL [when ...]`: refuses matching calls; beats `escalate` and `allow`. Never grants. A condition on a missing value matches (fail safe).",
    ),
    (
        "when",
        "`when CONDITION`: compares the tool's arguments, `confidence` or thresholds with values; `and`, `or`, `not` and parentheses combine them.",
    ),
    (
        "owner",
        "`owner \"team@example.com\"`: who answers for the agent's actions. Required.",
    ),
    (
        "purpose",
        "`purpose \"...\"`: what the agent is for, for reviewers and audit.",
    ),
    (
        "max",
        "`max tier T`: the highest tier the agent may ever read, through any tool.",
    ),
    (
        "autonomy",
        "`autonomy TOOL when ... because \"...\"`: a justified, bounded exemption from escalating an irreversible tool.",
    ),
    (
        "limit",
        "`limit N calls per task, N tokens per minute, ...`: hard resource limits; an exhausted limit denies.",
    ),
    (
        "breaker",
        "`breaker METRIC > VALUE over WINDOW then suspend`: suspends the agent (or the engine) when, say, the error rate spikes.",
    ),
    (
        "mode",
        "`mode shadow`: decide and log, but report Allow (the would-be outcome attached); `mode enforce` is the default.",
    ),
    (
        "credential",
        "`credential NAME expires 1h`: a credential the agent holds; every credential must expire.",
    ),
    (
        "stage",
        "`stage shadow` / `stage supervised to ROUTE` / `stage autonomous`: the agent's rollout stage; supervised turns every `allow` into an escalation to ROUTE.",
    ),
    (
        "promote",
        "`promote to STAGE when METRIC OP VALUE over N decisions and ...`: the evidence `agentpolicy promote-check` needs to widen the agent's authority.",
    ),
    (
        "assert",
        "`assert ...`: a property the policy must satisfy, checked by the verifier.",
    ),
    (
        "test",
        "`test \"name\" { AGENT calls TOOL(...) expect ... }`: a policy test, run by `agentpolicy test`.",
    ),
    (
        "expect",
        "`expect allow` / `expect escalate [to ROUTE]` / `expect deny [REASON]`: the outcome a test requires.",
    ),
];

/// Hover for a keyword under the cursor.
fn keyword_hover(world: &World<'_>, doc: &crate::state::Document, offset: u32) -> Option<Hover> {
    let view = world.state.view(doc);
    let parsed = world.state.parsed(doc);
    let token = parsed.tokens.iter().find(|t| {
        t.kind == agentpolicy::syntax::lexer::TokenKind::Ident
            && t.start <= offset
            && offset <= t.end
    })?;
    let word = token.text(view.text);
    let (_, docs) = KEYWORD_DOCS.iter().find(|(k, _)| *k == word)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: (*docs).to_string(),
        }),
        range: Some(view.range(agentpolicy::syntax::ast::TextRange {
            start: token.start,
            end: token.end,
        })),
    })
}

fn code(out: &mut String, text: &str) {
    let _ = writeln!(out, "```agentpolicy\n{text}\n```");
}

fn names<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tier_with_rank(model: &Model, tier: TierId) -> String {
    match model.tiers.get(tier.index()) {
        Some(t) => format!(
            "`{}` (rank {} of {})",
            t.name,
            tier.index() + 1,
            model.tiers.len()
        ),
        None => "unknown".to_string(),
    }
}

/// `tool send_email(to: text, amount: money?)`.
pub fn tool_signature(model: &Model, tool: usize) -> String {
    let Some(t) = model.tools.get(tool) else {
        return String::new();
    };
    let params: Vec<String> = t
        .params
        .iter()
        .map(|p| {
            format!(
                "{}: {}{}",
                p.name,
                p.ty.keyword(),
                if p.optional { "?" } else { "" }
            )
        })
        .collect();
    format!("tool {}({})", t.name, params.join(", "))
}

/// The `when` condition of a rule as written, on one line.
fn condition_text(world: &World<'_>, loc: agentpolicy::model::Loc) -> Option<String> {
    let doc = world.state.document(loc.file)?;
    let text = world
        .state
        .text(doc)
        .get(loc.range.start as usize..loc.range.end as usize)?;
    let tokens = agentpolicy::syntax::lexer::lex(text);
    let when = tokens.iter().find(|t| {
        t.kind == agentpolicy::syntax::lexer::TokenKind::Ident && t.text(text) == "when"
    })?;
    let condition: Vec<&str> = text.get(when.end as usize..)?.split_whitespace().collect();
    Some(condition.join(" ")).filter(|c| !c.is_empty())
}

fn agent_summary(world: &World<'_>, agent: &AgentDef, out: &mut String) {
    let model = &world.analysis.model;
    match &agent.owner {
        Some(o) => {
            let _ = writeln!(out, "Owner: {o}");
        }
        None => out.push_str("Owner: none (AP0042)\n"),
    }
    if let Some(p) = &agent.purpose {
        let _ = writeln!(out, "\nPurpose: {p}");
    }
    if let Some(t) = agent.max_tier {
        let _ = writeln!(out, "\nMax tier: {}", tier_with_rank(model, t));
    }
    if agent.mode == Mode::Shadow {
        out.push_str("\nMode: shadow (decides and logs, does not enforce)\n");
    }
    let mut allowed = Vec::new();
    let mut escalated = Vec::new();
    let mut denied = Vec::new();
    for rule in agent
        .rules
        .iter()
        .filter_map(|r| model.rules.get(r.index()))
    {
        let target = match rule.target {
            RuleTarget::Tool(t) => model
                .tools
                .get(t.index())
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            RuleTarget::All => "*".to_string(),
        };
        let conditional = if rule.condition.is_some() {
            condition_text(world, rule.loc)
                .map(|c| format!(" when `{c}`"))
                .unwrap_or_else(|| " (when …)".to_string())
        } else {
            String::new()
        };
        let entry = match rule.route.and_then(|r| model.routes.get(r.index())) {
            Some(route) => format!("`{target}` → `{}`{conditional}", route.name),
            None => format!("`{target}`{conditional}"),
        };
        match rule.kind {
            agentpolicy::syntax::ast::RuleKind::Allow => allowed.push(entry),
            agentpolicy::syntax::ast::RuleKind::Escalate => escalated.push(entry),
            agentpolicy::syntax::ast::RuleKind::Deny => denied.push(entry),
        }
    }
    out.push_str("\n**Grants**\n");
    for (label, list) in [
        ("allow", &allowed),
        ("escalate", &escalated),
        ("deny", &denied),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "- {label}: {}", list.join(", "));
        }
    }
    if allowed.is_empty() && escalated.is_empty() {
        out.push_str("- nothing: every call is denied (default deny)\n");
    }
    if !agent.limits.is_empty() {
        let limits: Vec<String> = agent
            .limits
            .iter()
            .map(|l| codegen::limit(l).to_string())
            .collect();
        let _ = writeln!(out, "\nLimits: {}", limits.join(", "));
    }
    for b in &agent.breakers {
        let _ = writeln!(out, "\nBreaker: {}", codegen::breaker(b));
    }
}
