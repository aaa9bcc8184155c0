//! Computing the matrix: from the verified decision table (cells, rules, tools, agents),
//! the model (purpose, credentials, autonomy exemptions, which the table does not hold),
//! the verifier's report and the policy's source text, to the plain data of
//! [`super::Matrix`]. Conditions are quoted from the rule's span, never reprinted.

use agentpolicy::model::{Model, Value};
use agentpolicy::render::Sources;
use agentpolicy::syntax::lexer::{self, TokenKind};
use agentpolicy_runtime::{
    ContentHash, DecisionTable, Entry, Mode, RuleKind, Span, TableData, TimeoutOutcome, ToolId,
};

use super::*;
use crate::{ArgVal, Counterexample, Property, Report, Verdict};

/// What the matrix is computed from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub model: &'a Model,
    pub table: &'a DecisionTable,
    pub report: &'a Report,
    pub sources: &'a Sources,
    pub date: Option<String>,
}

pub fn compute(inputs: &Inputs<'_>) -> Matrix {
    let data = inputs.table.data();
    let properties = properties(data, inputs.report, inputs.sources);
    let tools: Vec<ToolInfo> = data
        .tools
        .iter()
        .enumerate()
        .map(|(i, t)| tool_info(data, ToolId(i as u32), t))
        .collect();
    let mut agents = Vec::new();
    let mut cells = Vec::new();
    for (a, agent) in data.agents.iter().enumerate() {
        let mut granted = Vec::new();
        let mut keys: Vec<u32> = Vec::new();
        for (t, tool) in data.tools.iter().enumerate() {
            let cell = data.cells.get(a * data.tools.len() + t);
            let Some(cell) = cell else { continue };
            if cell.granted {
                granted.push(tool.name.clone());
                let read_keys = tool
                    .reads
                    .iter()
                    .filter_map(|r| data.resources.get(r.index()))
                    .flat_map(|r| r.keyed.iter());
                let write_keys = tool
                    .writes
                    .iter()
                    .filter_map(|s| data.sinks.get(s.index()))
                    .flat_map(|s| s.keyed.iter());
                keys.extend(read_keys.chain(write_keys).map(|k| k.0));
            }
            cells.push(cell_info(
                inputs,
                &agent.name,
                &tool.name,
                cell,
                &properties,
            ));
        }
        keys.sort_unstable();
        keys.dedup();
        agents.push(agent_info(
            inputs,
            a,
            granted,
            keys.iter()
                .filter_map(|k| data.keys.get(*k as usize).cloned())
                .collect(),
        ));
    }
    let count = |v: &str| properties.iter().filter(|p| p.verdict == v).count();
    let (failed, unknown) = (count("failed"), count("unknown"));
    Matrix {
        schema: SCHEMA,
        policy: Header {
            name: data.policy.name.clone(),
            version: data.policy.version.clone(),
            source_hash: inputs.table.source_hash().to_string(),
            table_sha256: ContentHash::of(&inputs.table.to_bytes()).to_string(),
            agentpolicy_version: env!("CARGO_PKG_VERSION").to_string(),
            date: inputs.date.clone(),
        },
        verification: Summary {
            status: if failed > 0 {
                "failed"
            } else if unknown > 0 {
                "unknown"
            } else {
                "proved"
            },
            proved: count("proved"),
            failed,
            unknown,
            warnings: count("warning"),
        },
        tiers: data.tiers.clone(),
        retention: RetentionInfo {
            default: data.retention.default.map(|p| p.to_string()),
            tiers: data
                .retention
                .tiers
                .iter()
                .map(|t| TierRetentionInfo {
                    tier: data
                        .tiers
                        .get(t.tier.index())
                        .cloned()
                        .unwrap_or_else(|| format!("tier #{}", t.tier.index())),
                    period: t.period.to_string(),
                })
                .collect(),
        },
        isolation_keys: data.keys.clone(),
        routes: data
            .routes
            .iter()
            .map(|r| RouteInfo {
                name: r.name.clone(),
                notify: r.notify.clone(),
                timeout: r.timeout_ms.map(|ms| match r.timeout_outcome {
                    Some(TimeoutOutcome::Allow) => format!(
                        "{} then allow (an unanswered call runs without a human)",
                        duration(ms)
                    ),
                    Some(TimeoutOutcome::Deny) => format!("{} then deny", duration(ms)),
                    None => duration(ms),
                }),
            })
            .collect(),
        thresholds: inputs
            .model
            .thresholds
            .iter()
            .map(|t| ThresholdInfo {
                name: t.name.clone(),
                value: value_text(&t.value),
            })
            .collect(),
        sets: inputs
            .model
            .sets
            .iter()
            .map(|s| SetInfo {
                name: s.name.clone(),
                members: s.members.clone(),
            })
            .collect(),
        tools,
        agents,
        cells,
        assumptions: {
            let mut seen: Vec<String> = Vec::new();
            for a in properties.iter().flat_map(|p| p.assumptions.iter()) {
                if !seen.iter().any(|s| s == a) {
                    seen.push((*a).to_string());
                }
            }
            seen
        },
        properties,
    }
}

/// A constant as the language writes it.
fn value_text(value: &Value) -> String {
    let quoted = |t: &str| serde_json::Value::String(t.to_string()).to_string();
    match value {
        Value::Money(cents) => crate::money(*cents),
        Value::Number(m) => crate::decimal(*m),
        Value::Duration(ms) => duration(*ms),
        Value::Text(t) => quoted(t),
        Value::Bool(b) => b.to_string(),
        Value::TextList(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|t| quoted(t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn tool_info(data: &TableData, id: ToolId, tool: &agentpolicy_runtime::Tool) -> ToolInfo {
    let key_names = |keys: &[agentpolicy_runtime::KeyId]| -> Vec<String> {
        keys.iter()
            .filter_map(|k| data.keys.get(k.index()).cloned())
            .collect()
    };
    let tier = |t: agentpolicy_runtime::TierId| {
        data.tiers
            .get(t.index())
            .cloned()
            .unwrap_or_else(|| format!("tier #{}", t.index()))
    };
    ToolInfo {
        name: tool.name.clone(),
        effects: tool
            .effects
            .iter()
            .map(|e| effect_keyword(*e).to_string())
            .collect(),
        irreversible: tool.is_irreversible(),
        untrusted_output: data.untrusted_tools.contains(&id),
        reads: tool
            .reads
            .iter()
            .filter_map(|r| data.resources.get(r.index()).map(|res| (r, res)))
            .map(|(id, r)| DataInfo {
                name: r.name.clone(),
                tier: tier(r.tier),
                keyed: key_names(&r.keyed),
                untrusted: data.untrusted_resources.contains(id),
            })
            .collect(),
        writes: tool
            .writes
            .iter()
            .filter_map(|s| data.sinks.get(s.index()))
            .map(|s| DataInfo {
                name: s.name.clone(),
                tier: tier(s.clearance),
                keyed: key_names(&s.keyed),
                untrusted: false,
            })
            .collect(),
    }
}

fn effect_keyword(effect: agentpolicy_runtime::Effect) -> &'static str {
    use agentpolicy_runtime::Effect;
    match effect {
        Effect::Read => "read",
        Effect::Write => "write",
        Effect::External => "external",
        Effect::Financial => "financial",
        Effect::Irreversible => "irreversible",
    }
}

fn agent_info(
    inputs: &Inputs<'_>,
    index: usize,
    granted: Vec<String>,
    isolation_keys: Vec<String>,
) -> AgentInfo {
    let data = inputs.table.data();
    // Codegen keeps model order (ARCHITECTURE.md), so table agent i is model agent i;
    // the name is checked anyway, and a mismatch leaves the model-only fields empty.
    let agent = &data.agents[index];
    let def = inputs
        .model
        .agents
        .get(index)
        .filter(|d| d.name == agent.name);
    AgentInfo {
        name: agent.name.clone(),
        owner: agent.owner.clone(),
        purpose: def.and_then(|d| d.purpose.clone()),
        mode: match agent.mode {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        },
        stage: def.and_then(|d| d.stage.as_ref()).map(|s| {
            let route = s
                .route
                .and_then(|r| inputs.model.routes.get(r.index()))
                .map(|r| format!(" to {}", r.name))
                .unwrap_or_default();
            format!("{}{route}", s.stage.keyword())
        }),
        promotions: def
            .map(|d| {
                d.promotions
                    .iter()
                    .filter_map(|p| {
                        let (_, text) = inputs.sources.get(p.loc.file)?;
                        let clause =
                            text.get(p.loc.range.start as usize..p.loc.range.end as usize)?;
                        Some(one_line(clause))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        max_tier: agent
            .max_tier
            .and_then(|t| data.tiers.get(t.index()).cloned()),
        isolation_keys,
        granted,
        limits: agent.limits.iter().map(ToString::to_string).collect(),
        breakers: agent.breakers.iter().map(ToString::to_string).collect(),
        credentials: def
            .map(|d| {
                d.credentials
                    .iter()
                    .map(|c| CredentialInfo {
                        name: c.name.clone(),
                        expires: c.expires_ms.map(duration),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        autonomy: def
            .map(|d| {
                d.autonomy
                    .iter()
                    .map(|x| {
                        let text = inputs
                            .sources
                            .get(x.loc.file)
                            .and_then(|(_, t)| {
                                t.get(x.loc.range.start as usize..x.loc.range.end as usize)
                            })
                            .unwrap_or("");
                        AutonomyInfo {
                            tool: inputs
                                .model
                                .tools
                                .get(x.tool.index())
                                .map(|t| t.name.clone())
                                .unwrap_or_default(),
                            when: condition_text(text, Some("because"))
                                .unwrap_or_else(|| "(see the source)".to_string()),
                            because: x.because.clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn cell_info(
    inputs: &Inputs<'_>,
    agent: &str,
    tool: &str,
    cell: &agentpolicy_runtime::Cell,
    properties: &[PropertyInfo],
) -> CellInfo {
    let data = inputs.table.data();
    let proofs = worst(
        properties
            .iter()
            .filter(|p| p.agent.as_deref() == Some(agent) && p.tool.as_deref() == Some(tool))
            .map(|p| p.verdict),
    );
    if !cell.granted {
        return CellInfo {
            agent: agent.to_string(),
            tool: tool.to_string(),
            granted: false,
            summary: vec!["not granted".to_string()],
            rules: Vec::new(),
            proofs,
        };
    }
    let mut rules = Vec::new();
    let mut summary = Vec::new();
    // The kinds of the rules seen so far that match every request. `decide` takes the
    // first matching deny, else every matching escalate (all their routes), else the
    // first matching allow: what such a rule hides depends on its kind.
    let (mut always_deny, mut always_escalate, mut always_allow) = (false, false, false);
    let ordered = cell
        .deny
        .iter()
        .chain(&cell.escalate)
        .chain(&cell.allow)
        .collect::<Vec<&Entry>>();
    for entry in ordered {
        let Some(rule) = data.rules.get(entry.rule.index()) else {
            continue;
        };
        let when = entry.condition.as_ref().map(|_| {
            rule_source(inputs.sources, &rule.span)
                .and_then(|text| condition_text(text, None))
                .unwrap_or_else(|| format!("(the condition at {})", location(data, &rule.span)))
        });
        let route = rule
            .route
            .and_then(|r| data.routes.get(r.index()))
            .map(|r| r.name.clone());
        let kind = match rule.kind {
            RuleKind::Allow => "allow",
            RuleKind::Escalate => "escalate",
            RuleKind::Deny => "deny",
        };
        let reachable = match rule.kind {
            RuleKind::Deny => !always_deny,
            RuleKind::Escalate => !always_deny,
            RuleKind::Allow => !(always_deny || always_escalate || always_allow),
        };
        let mut line = kind.to_string();
        if let Some(route) = &route {
            line.push_str(" to ");
            line.push_str(route);
        }
        if let Some(when) = &when {
            line.push_str(" when ");
            line.push_str(when);
        }
        if !reachable {
            line.push_str(" (never decides: a rule above always matches)");
        }
        summary.push(line);
        rules.push(CellRule {
            id: rule.id.clone(),
            kind,
            route,
            when: when.clone(),
            location: location(data, &rule.span),
            reachable,
        });
        if when.is_none() {
            match rule.kind {
                RuleKind::Deny => always_deny = true,
                RuleKind::Escalate => always_escalate = true,
                RuleKind::Allow => always_allow = true,
            }
        }
    }
    if !(always_deny || always_escalate || always_allow) {
        summary.push("otherwise deny (no rule)".to_string());
    }
    CellInfo {
        agent: agent.to_string(),
        tool: tool.to_string(),
        granted: true,
        summary,
        rules,
        proofs,
    }
}

/// The most serious verdict: failed, unknown, warning, proved; `None` for none.
fn worst(verdicts: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let rank = |v: &str| match v {
        "failed" => 3,
        "unknown" => 2,
        "warning" => 1,
        _ => 0,
    };
    verdicts.max_by_key(|v| rank(v))
}

fn properties(data: &TableData, report: &Report, sources: &Sources) -> Vec<PropertyInfo> {
    let is_agent = |name: &str| data.agents.iter().any(|a| a.name == name);
    let is_tool = |name: &str| data.tools.iter().any(|t| t.name == name);
    report
        .results
        .iter()
        .map(|r| {
            // Asserts may name any agent and stay policy-wide; a name that is not the
            // table's is not attributed.
            let (agent, tool) = if r.property == Property::Assert {
                (None, None)
            } else {
                (
                    r.subject.agent().map(str::to_string),
                    r.subject.tool().map(str::to_string),
                )
            };
            let agent = agent.filter(|a| is_agent(a));
            let tool = tool.filter(|t| agent.is_some() && is_tool(t));
            let (verdict, detail) = match &r.verdict {
                Verdict::Proved => ("proved", None),
                Verdict::Counterexample(c) => ("failed", Some(counterexample_line(c))),
                Verdict::Unknown(reason) => ("unknown", Some(reason.clone())),
                Verdict::Finding => ("warning", r.diagnostic.as_ref().map(|d| d.message.clone())),
            };
            PropertyInfo {
                property: r.property.name(),
                // An assert whole, condition and all: two asserts about one agent and
                // tool must not read the same.
                subject: r.subject.quoted(sources),
                agent,
                tool,
                verdict,
                assumptions: r.assumptions.clone(),
                method: r.method.to_string(),
                detail,
            }
        })
        .collect()
}

/// `explanation: agent calls tool(arg: value, ...) -> outcome`, one line.
fn counterexample_line(c: &Counterexample) -> String {
    let Some(call) = c.last() else {
        return c.explanation.clone();
    };
    let args: Vec<String> = call
        .args
        .iter()
        .map(|(name, value)| {
            // Texts quoted (they may hold commas); money, durations and percentages
            // as the language writes them.
            let v = match (value, value.to_json()) {
                (ArgVal::Text(_), json) => json.to_string(),
                (_, serde_json::Value::String(s)) => s,
                (_, other) => other.to_string(),
            };
            format!("{name}: {v}")
        })
        .collect();
    let earlier: Vec<String> = c.calls[..c.calls.len() - 1]
        .iter()
        .map(|e| format!("{} calls {}", e.agent, e.tool))
        .collect();
    let steps = if earlier.is_empty() {
        String::new()
    } else {
        format!(" (after {} in the same session)", earlier.join(", then "))
    };
    format!(
        "{} e.g. {} calls {}({}){steps} -> {}",
        c.explanation.trim_end_matches('.').to_string() + ";",
        call.agent,
        call.tool,
        args.join(", "),
        call.outcome.keyword()
    )
}

/// Source text on one line: comments dropped, runs of whitespace made one space.
fn one_line(source: &str) -> String {
    let mut out = String::new();
    for token in lexer::lex(source) {
        match token.kind {
            TokenKind::Whitespace | TokenKind::Newline => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            TokenKind::LineComment | TokenKind::BlockComment => {}
            _ => out.push_str(token.text(source)),
        }
    }
    out.trim_end().to_string()
}

fn rule_source<'a>(sources: &'a Sources, span: &Span) -> Option<&'a str> {
    let (_, text) = sources.get(agentpolicy::diagnostics::FileId(span.file.0))?;
    text.get(span.start as usize..span.end as usize)
}

fn location(data: &TableData, span: &Span) -> String {
    let file = data
        .files
        .get(span.file.0 as usize)
        .map(String::as_str)
        .unwrap_or("<unknown>");
    format!("{file}:{}:{}", span.line, span.column)
}

/// The source text after the first `when` of an item's text, up to `stop` (a word such
/// as `because`) or the end, on one line: comments dropped, runs of whitespace made one
/// space. Works on tokens, so it holds for any condition syntax the lexer can split.
pub fn condition_text(item: &str, stop: Option<&str>) -> Option<String> {
    let mut out = String::new();
    let mut seen_when = false;
    let mut space = false;
    for token in lexer::lex(item) {
        let text = token.text(item);
        if !seen_when {
            seen_when = token.kind == TokenKind::Ident && text == "when";
            continue;
        }
        if token.kind.is_trivia() || token.kind.is_comment() {
            space = true;
            continue;
        }
        if token.kind == TokenKind::Ident && Some(text) == stop {
            break;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push_str(text);
    }
    (seen_when && !out.is_empty()).then_some(out)
}

/// Millionths as a percentage: 250_000 is `25%`.
pub use agentpolicy_runtime::values::duration;
