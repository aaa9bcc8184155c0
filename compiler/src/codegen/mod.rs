//! Code generation: lowers a resolved [`Model`] to the runtime's [`DecisionTable`].
//!
//! Names become dense ids in model order (so a table's `RuleIndex(i)` is the model's
//! `RuleId(i)`), every rule gets a stable readable id and a span with line and column,
//! and each (agent, tool) cell gets its applicable rules pre-sorted into deny, escalate
//! and allow lists in source order. Conditions are lowered once per rule by
//! [`condition`]. What the table format cannot hold (more than 16 parameters on a tool,
//! more than 8 isolation keys, 8 limits per agent, 8 routes per decision) is reported as a
//! diagnostic here rather than failing at load time. No IO.

mod condition;
mod convert;
mod span;

use agentpolicy_runtime::{
    self as rt, AgentId, Cell, DecisionTable, Entry, FORMAT_VERSION, FileIndex, KeyId, MAX_KEYS,
    MAX_LIMITS, MAX_PARAMS, MAX_ROUTES, ResourceId, RouteId, RuleIndex, SinkId, TableData, TierId,
    ToolId,
};

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::{Loc, Model, RuleTarget};
use crate::syntax::ast::{RuleKind, TextRange};
use condition::{LowerError, Target, TextDictionary, describe, lower};
use span::LineIndex;

/// Builds the decision table of a model. `sources` are the policy's files as
/// `(path, text)`, indexed by the model's `FileId`s; their [`rt::source_hash`] becomes the
/// table's content hash.
pub fn build_table(
    model: &Model,
    sources: &[(String, String)],
) -> Result<DecisionTable, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    check_limits(model, &mut diags);

    let mut texts = TextDictionary::default();
    let conditions: Vec<Option<rt::Condition>> = model
        .rules
        .iter()
        .map(|rule| {
            let cond = rule.condition.as_ref()?;
            let tool = match rule.target {
                RuleTarget::Tool(t) => model.tools.get(t.index()).map(|d| (t, d)),
                RuleTarget::All => None,
            };
            if tool.is_none() && reads_effects(cond) {
                // Lowered per cell, for each tool's effects (`build_cells`).
                return None;
            }
            let target = Target {
                args: tool,
                effects: tool.map(|(_, d)| d),
            };
            match lower(cond, target, &mut texts) {
                Ok(c) => Some(c),
                Err(e) => {
                    diags.push(lowering_diagnostic(&e, rule.loc));
                    None
                }
            }
        })
        .collect();

    let policy = match &model.policy {
        Some(p) => rt::PolicyInfo {
            name: p.name.clone(),
            version: p.version.clone(),
        },
        None => {
            diags.push(
                Diagnostic::new(
                    Code::MissingPolicyHeader,
                    "cannot build a decision table without a `policy` header",
                    Label::new(FileId(0), TextRange::default(), "the policy starts here"),
                )
                .with_help("start the policy with `policy NAME version \"...\"`"),
            );
            rt::PolicyInfo::default()
        }
    };

    let lines: Vec<LineIndex<'_>> = sources
        .iter()
        .map(|(_, text)| LineIndex::new(text))
        .collect();
    let rules = model
        .rules
        .iter()
        .map(|rule| lower_rule(model, rule, &lines, &mut diags))
        .collect();
    let cells = build_cells(model, &conditions, &mut texts, &mut diags);

    if !diags.is_empty() {
        return Err(diags);
    }
    let data = TableData {
        format_version: FORMAT_VERSION,
        source_hash: rt::source_hash(sources),
        policy,
        files: sources.iter().map(|(path, _)| path.clone()).collect(),
        tiers: model.tiers.iter().map(|t| t.name.clone()).collect(),
        keys: model.keys.iter().map(|k| k.name.clone()).collect(),
        resources: model
            .resources
            .iter()
            .map(|r| rt::Resource {
                name: r.name.clone(),
                tier: TierId(r.tier.0),
                keyed: r.keyed.iter().map(|k| KeyId(k.0)).collect(),
            })
            .collect(),
        sinks: model
            .sinks
            .iter()
            .map(|s| rt::Sink {
                name: s.name.clone(),
                clearance: TierId(s.clearance.0),
                keyed: s.keyed.iter().map(|k| KeyId(k.0)).collect(),
            })
            .collect(),
        routes: model
            .routes
            .iter()
            .map(|r| rt::Route {
                name: r.name.clone(),
                notify: r.notify.clone(),
                timeout_ms: r.timeout_ms,
                timeout_outcome: r.timeout_outcome.map(convert::timeout_outcome),
            })
            .collect(),
        texts: texts.texts,
        sets: model
            .sets
            .iter()
            .map(|s| rt::ValueSet {
                name: s.name.clone(),
                deploy: s.members.is_none(),
                members: s.members.clone().unwrap_or_default(),
                bound: s.members.is_some(),
            })
            .collect(),
        text_tests: texts.tests,
        untrusted_resources: model
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.untrusted)
            .map(|(i, _)| ResourceId(i as u32))
            .collect(),
        untrusted_tools: model
            .tools
            .iter()
            .enumerate()
            .filter(|(_, t)| t.untrusted)
            .map(|(i, _)| ToolId(i as u32))
            .collect(),
        tools: model
            .tools
            .iter()
            .map(|t| rt::Tool {
                name: t.name.clone(),
                params: t
                    .params
                    .iter()
                    .map(|p| rt::Param {
                        name: p.name.clone(),
                        ty: convert::value_type(p.ty),
                        optional: p.optional,
                    })
                    .collect(),
                effects: t.effects.iter().copied().map(convert::effect).collect(),
                reads: t.reads.iter().map(|r| ResourceId(r.0)).collect(),
                writes: t.writes.iter().map(|s| SinkId(s.0)).collect(),
            })
            .collect(),
        agents: model
            .agents
            .iter()
            .map(|a| rt::Agent {
                name: a.name.clone(),
                owner: a.owner.clone(),
                mode: convert::mode(a.mode),
                max_tier: a.max_tier.map(|t| TierId(t.0)),
                limits: a.limits.iter().map(limit).collect(),
                breakers: a.breakers.iter().map(breaker).collect(),
            })
            .collect(),
        rules,
        cells,
        retention: retention(model),
    };
    DecisionTable::new(data).map_err(|e| {
        vec![
            Diagnostic::new(
                Code::TableLimitExceeded,
                format!("the generated decision table is inconsistent: {}", e.reason),
                Label::new(
                    FileId(0),
                    TextRange::default(),
                    "while compiling this policy",
                ),
            )
            .with_help("this is a compiler bug; please report it with the policy that triggers it"),
        ]
    })
}

fn limit_diagnostic(message: String, loc: Loc, label: &str, help: &str) -> Diagnostic {
    Diagnostic::new(
        Code::TableLimitExceeded,
        message,
        Label::new(loc.file, loc.range, label),
    )
    .with_help(help)
}

/// What the table format cannot hold, reported at the first declaration past the limit.
fn check_limits(model: &Model, diags: &mut Vec<Diagnostic>) {
    if let Some(key) = model.keys.get(MAX_KEYS) {
        diags.push(limit_diagnostic(
            format!(
                "{} isolation keys are declared; a decision table holds at most {MAX_KEYS}",
                model.keys.len()
            ),
            key.loc,
            "one key too many",
            "merge isolation keys that always travel together",
        ));
    }
    for tool in &model.tools {
        if let Some(param) = tool.params.get(MAX_PARAMS) {
            diags.push(limit_diagnostic(
                format!(
                    "tool `{}` has {} parameters; a decision table holds at most {MAX_PARAMS} per tool",
                    tool.name,
                    tool.params.len()
                ),
                param.loc,
                "parameter past the limit",
                "declare only the parameters rules look at; others need not be declared",
            ));
        }
    }
    for agent in &model.agents {
        if let Some(limit) = agent.limits.get(MAX_LIMITS) {
            diags.push(limit_diagnostic(
                format!(
                    "agent `{}` has {} limits; a decision table holds at most {MAX_LIMITS} per agent",
                    agent.name,
                    agent.limits.len()
                ),
                limit.loc,
                "limit past the limit",
                "keep the tightest limit of each unit and window",
            ));
        }
    }
}

fn lowering_diagnostic(err: &LowerError, loc: Loc) -> Diagnostic {
    let (code, help) = match err {
        LowerError::TextOrdering(_) | LowerError::NotBool(_) => (
            Code::TypeMismatch,
            "compare texts with `==` or `!=`; use `bool` values on their own",
        ),
        LowerError::NoSuchArgument(_) => (
            Code::ArgumentInStarRule,
            "a `*` rule can only test `confidence`; name the tool to test its arguments",
        ),
        LowerError::TooDeep => (
            Code::NestingTooDeep,
            "split the condition over several rules",
        ),
        LowerError::Internal(_) | LowerError::EffectWithoutTool => (
            Code::TableLimitExceeded,
            "this is a compiler bug; please report it with the policy that triggers it",
        ),
        LowerError::TooManyTextTests => (
            Code::TableLimitExceeded,
            "merge patterns into a set, or split the tool's rules",
        ),
        LowerError::TaintedComparison => (
            Code::TypeMismatch,
            "write `when tainted` or `when not tainted`",
        ),
    };
    Diagnostic::new(
        code,
        describe(err),
        Label::new(loc.file, loc.range, "in this rule"),
    )
    .with_help(help)
}

fn lower_rule(
    model: &Model,
    rule: &crate::model::RuleDef,
    lines: &[LineIndex<'_>],
    diags: &mut Vec<Diagnostic>,
) -> rt::Rule {
    let agent = model.agents.get(rule.agent.index());
    let target_name = match rule.target {
        RuleTarget::Tool(t) => model.tools.get(t.index()).map_or("?", |t| t.name.as_str()),
        RuleTarget::All => "*",
    };
    // The n-th rule of this agent with this kind and target.
    let nth = agent.map_or(1, |a| {
        a.rules
            .iter()
            .take_while(|r| **r != rule.id)
            .filter(|r| {
                model
                    .rules
                    .get(r.index())
                    .is_some_and(|o| o.kind == rule.kind && o.target == rule.target)
            })
            .count()
            + 1
    });
    let (line, column) = match lines.get(rule.loc.file.0 as usize) {
        Some(index) => index.line_column(rule.loc.range.start),
        None => {
            diags.push(
                Diagnostic::new(
                    Code::TableLimitExceeded,
                    format!(
                        "rule refers to source file #{} but only {} sources were given",
                        rule.loc.file.0,
                        lines.len()
                    ),
                    Label::new(
                        FileId(0),
                        TextRange::default(),
                        "while compiling this policy",
                    ),
                )
                .with_help(
                    "this is a compiler bug: code generation needs every source file of the model",
                ),
            );
            (0, 0)
        }
    };
    rt::Rule {
        id: format!(
            "{}/{}/{}#{nth}",
            agent.map_or("?", |a| a.name.as_str()),
            rule.kind.keyword(),
            target_name
        ),
        agent: AgentId(rule.agent.0),
        kind: convert::rule_kind(rule.kind),
        target: match rule.target {
            RuleTarget::Tool(t) => rt::Target::Tool(ToolId(t.0)),
            RuleTarget::All => rt::Target::All,
        },
        route: rule.route.map(|r| RouteId(r.0)),
        span: rt::Span {
            file: FileIndex(rule.loc.file.0),
            start: rule.loc.range.start,
            end: rule.loc.range.end,
            line,
            column,
        },
    }
}

/// Whether a condition reads the called tool's effects.
fn reads_effects(cond: &crate::model::Cond) -> bool {
    let mut found = false;
    cond.visit(&mut |c| found |= matches!(c, crate::model::Cond::HasEffect(_)));
    found
}

fn build_cells(
    model: &Model,
    conditions: &[Option<rt::Condition>],
    texts: &mut TextDictionary,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(model.agents.len() * model.tools.len());
    for (a, agent) in model.agents.iter().enumerate() {
        let agent_id = crate::model::AgentId(a as u32);
        for (t, tool) in model.tools.iter().enumerate() {
            let tool_id = crate::model::ToolId(t as u32);
            let mut cell = Cell {
                granted: model.grants(agent_id, tool_id),
                ..Cell::default()
            };
            if cell.granted {
                for rule_id in model.applicable_rules(agent_id, tool_id) {
                    let Some(rule) = model.rules.get(rule_id.index()) else {
                        continue;
                    };
                    let mut condition = conditions.get(rule_id.index()).cloned().flatten();
                    if rule.target == RuleTarget::All
                        && let Some(cond) = rule.condition.as_ref().filter(|c| reads_effects(c))
                    {
                        let target = Target {
                            args: None,
                            effects: Some(tool),
                        };
                        match lower(cond, target, texts) {
                            Ok(c) => condition = Some(c),
                            Err(e) => diags.push(lowering_diagnostic(&e, rule.loc)),
                        }
                    }
                    let entry = Entry {
                        rule: RuleIndex(rule_id.0),
                        condition,
                    };
                    match rule.kind {
                        RuleKind::Deny => cell.deny.push(entry),
                        RuleKind::Escalate => cell.escalate.push(entry),
                        RuleKind::Allow => cell.allow.push(entry),
                    }
                }
            }
            let mut routes: Vec<RouteId> = Vec::new();
            for entry in &cell.escalate {
                let route = model
                    .rules
                    .get(entry.rule.index())
                    .and_then(|r| r.route)
                    .map(|r| RouteId(r.0));
                if let Some(route) = route
                    && !routes.contains(&route)
                {
                    routes.push(route);
                }
            }
            if routes.len() > MAX_ROUTES {
                diags.push(limit_diagnostic(
                    format!(
                        "a call of `{}` by agent `{}` can escalate to {} routes at once; a decision names at most {MAX_ROUTES}",
                        tool.name,
                        agent.name,
                        routes.len()
                    ),
                    agent.loc,
                    "in this agent",
                    "route related escalations to a shared escalation route",
                ));
            }
            cells.push(cell);
        }
    }
    cells
}

/// The retention schedule: the default clause and one clause per tier.
fn retention(model: &Model) -> rt::Retention {
    let period = |r: &crate::model::RetainRule| rt::Period {
        years: r.years,
        ms: r.ms,
    };
    rt::Retention {
        default: model
            .retention
            .iter()
            .find(|r| r.tier.is_none())
            .map(period),
        tiers: model
            .retention
            .iter()
            .filter_map(|r| {
                r.tier.map(|t| rt::TierRetention {
                    tier: TierId(t.0),
                    period: period(r),
                })
            })
            .collect(),
    }
}

/// A model limit as the runtime holds it (and writes it, through its `Display`).
pub fn limit(l: &crate::model::LimitDef) -> rt::Limit {
    rt::Limit {
        count: l.count,
        unit: l.unit,
        window: l.window,
    }
}

/// A model breaker as the runtime holds it (and writes it, through its `Display`).
pub fn breaker(b: &crate::model::BreakerDef) -> rt::Breaker {
    rt::Breaker {
        metric: b.metric,
        op: convert::cmp_op(b.op),
        value: b.value,
        window_ms: b.window_ms,
        scope: b.scope,
    }
}
