//! Turning verdicts into [`Diagnostic`]s: a stable code per kind of failure, the rule at
//! fault as the primary label, the declarations involved as secondary labels, and the
//! counterexample as JSON. Wording only; no solving here.

use super::cells::CellInfo;
use super::counterexample::{Call, Counterexample};
use super::flow::FlowProp;
use super::hygiene::Dead;
use super::{Ctx, Method, Property, PropertyResult, Subject, Verdict};
use agentpolicy::diagnostics::{Code, Diagnostic, FileId, Label};
use agentpolicy::model::{Loc, Model, RuleTarget};
use agentpolicy::syntax::ast::{RuleKind, TextRange};
use agentpolicy_runtime::Outcome;

fn label(loc: Loc, message: impl Into<String>) -> Label {
    Label::new(loc.file, loc.range, message)
}

fn policy_loc(model: &Model) -> Loc {
    model.policy.as_ref().map(|p| p.loc).unwrap_or(Loc {
        file: FileId(0),
        range: TextRange::default(),
    })
}

fn json(cex: &Counterexample) -> String {
    serde_json::to_string_pretty(&cex.to_json()).unwrap_or_default()
}

/// The model location of the table rule a call was decided by.
fn rule_loc(ctx: &Ctx<'_>, call: &Call) -> Option<Loc> {
    let id = call.rule.as_ref()?;
    let index = ctx.data.rules.iter().position(|r| &r.id == id)?;
    ctx.model.rules.get(index).map(|r| r.loc)
}

/// The first `allow` or `escalate` rule that grants the call's tool to its agent.
fn grant_loc(ctx: &Ctx<'_>, agent: &str, tool: &str) -> Option<Loc> {
    let model = ctx.model;
    let a = model.agent_by_name(agent)?;
    let t = model.tool_by_name(tool)?;
    model.agents[a.index()]
        .rules
        .iter()
        .map(|r| model.rule(*r))
        .find(|r| r.kind != RuleKind::Deny && r.target == RuleTarget::Tool(t))
        .map(|r| r.loc)
}

fn tool_loc(ctx: &Ctx<'_>, tool: &str) -> Option<Loc> {
    ctx.model
        .tool_by_name(tool)
        .map(|t| ctx.model.tools[t.index()].loc)
}

pub fn mismatch(model: &Model) -> PropertyResult {
    let reason =
        "the decision table's names and ids do not match the policy's, so it cannot be verified";
    PropertyResult {
        property: Property::Hygiene,
        subject: Subject::Table,
        verdict: Verdict::Unknown(reason.into()),
        method: Method::PerCell,
        assumptions: Vec::new(),
        diagnostic: Some(
            Diagnostic::new(
                Code::ProofUnknown,
                reason,
                label(policy_loc(model), "this policy"),
            )
            .with_help("this is a compiler bug; please report it with the policy"),
        ),
    }
}

pub fn unknown(ctx: &Ctx<'_>, property: Property, subject: &str, reason: &str) -> Diagnostic {
    Diagnostic::new(
        Code::ProofUnknown,
        format!("{} ({subject}): neither proved nor refuted: {reason}", property.name()),
        label(policy_loc(ctx.model), "not verified"),
    )
    .with_help("raise the limit with `--timeout-ms`, simplify the conditions involved, or accept the risk explicitly with `--allow-unknown`")
}

pub fn escalation(ctx: &Ctx<'_>, info: &CellInfo, cex: &Counterexample) -> Diagnostic {
    let agent = &ctx.data.agents[info.agent].name;
    let tool = &ctx.data.tools[info.tool].name;
    let at = cex
        .last()
        .and_then(|c| rule_loc(ctx, c))
        .unwrap_or(ctx.model.agents[info.agent].loc);
    let escalated = cex.last().is_some_and(|c| c.outcome == Outcome::Escalate);
    let mut d = if escalated {
        Diagnostic::new(
            Code::IrreversibleWithoutEscalation,
            format!(
                "agent `{agent}` can call irreversible tool `{tool}` without a human: its escalation times out to allow"
            ),
            label(at, "escalates it to a route whose timeout allows it without a human"),
        )
        .with_help(format!(
            "make the route's timeout deny (`timeout ... then deny`): silence is not consent; or, if running `{tool}` unanswered is deliberate, bound it with `autonomy {tool} when ... because \"...\"`"
        ))
    } else {
        Diagnostic::new(
            Code::IrreversibleWithoutEscalation,
            format!("agent `{agent}` can call irreversible tool `{tool}` without escalation"),
            label(at, "allows it without a human"),
        )
        .with_help(format!(
            "escalate `{tool}` for these requests, or, if this is deliberate, bound it with `autonomy {tool} when ... because \"...\"`"
        ))
    }
    .with_counterexample(json(cex));
    if let Some(loc) = tool_loc(ctx, tool) {
        d = d.with_secondary(label(loc, "declared irreversible here"));
    }
    if escalated {
        for route in timeout_allow_routes(ctx, cex) {
            d = d.with_secondary(label(route, "times out to allow"));
        }
    }
    d
}

/// The declarations of the routes of the last call's escalation whose timeout allows.
fn timeout_allow_routes(ctx: &Ctx<'_>, cex: &Counterexample) -> Vec<Loc> {
    let Some(call) = cex.last() else {
        return Vec::new();
    };
    let Ok(d) = super::cells::decide(ctx, &mut call.clone()) else {
        return Vec::new();
    };
    d.routes
        .as_slice()
        .iter()
        .filter_map(|id| ctx.data.routes.get(id.index()))
        .filter(|r| r.timeout_outcome == Some(agentpolicy_runtime::TimeoutOutcome::Allow))
        .filter_map(|r| ctx.model.routes.iter().find(|m| m.name == r.name))
        .map(|r| r.loc)
        .collect()
}

pub fn monotone(ctx: &Ctx<'_>, cex: &Counterexample) -> Diagnostic {
    let (Some(risky), Some(safer)) = (cex.last(), cex.safer.as_ref()) else {
        return Diagnostic::new(
            Code::NonMonotoneThreshold,
            cex.explanation.clone(),
            label(policy_loc(ctx.model), "here"),
        );
    };
    let at = rule_loc(ctx, risky)
        .or_else(|| grant_loc(ctx, &risky.agent, &risky.tool))
        .unwrap_or(policy_loc(ctx.model));
    let mut d = Diagnostic::new(
        Code::NonMonotoneThreshold,
        format!(
            "`{}` calling `{}`: {}",
            risky.agent, risky.tool, cex.explanation
        ),
        label(at, format!("decides {} for the riskier request", risky.outcome)),
    )
    .with_help(if risky.outcome == safer.outcome {
        // Both escalate: only the routes' timeouts differ.
        "send the riskier requests to routes whose timeout denies (`timeout ... then deny`), or give the safer ones the same routes"
    } else {
        "make the thresholds meet without a gap: a boundary value belongs to exactly one rule (`<=` on one side, `>` on the other)"
    })
    .with_counterexample(json(cex));
    match rule_loc(ctx, safer) {
        Some(loc) if loc != at => {
            d = d.with_secondary(label(
                loc,
                format!("decides {} for the safer request", safer.outcome),
            ));
        }
        None => {
            if let Some(loc) = tool_loc(ctx, &safer.tool) {
                d = d.with_secondary(label(
                    loc,
                    format!("the safer request gets {} (no rule matches)", safer.outcome),
                ));
            }
        }
        _ => {}
    }
    d
}

fn flow_code(property: Property, prop: FlowProp) -> Code {
    match (property, prop) {
        (Property::Assert, FlowProp::NeverReads(_)) => Code::AssertNeverReadsFailed,
        (Property::Assert, _) => Code::AssertNoFlowFailed,
        (_, FlowProp::Isolation) => Code::IsolationViolated,
        (_, FlowProp::WriteDown) => Code::WriteDown,
        _ => Code::TierCeilingBroken,
    }
}

pub fn flow(
    ctx: &Ctx<'_>,
    property: Property,
    prop: FlowProp,
    cex: &Counterexample,
    assert_loc: Option<Loc>,
) -> Diagnostic {
    let code = flow_code(property, prop);
    let Some(last) = cex.last() else {
        return Diagnostic::new(
            code,
            cex.explanation.clone(),
            label(policy_loc(ctx.model), "here"),
        );
    };
    let agent = &last.agent;
    let steps = cex.calls.len();
    let trace = if steps == 1 {
        "in one call".to_string()
    } else {
        format!("in a session of {steps} calls")
    };
    let what = match prop {
        FlowProp::Isolation => format!("agent `{agent}` can mix isolation-key values {trace}"),
        FlowProp::WriteDown => {
            format!("agent `{agent}` can write data down to a sink below its tier {trace}")
        }
        FlowProp::Ceiling(t) => format!(
            "agent `{agent}` can read above its max tier `{}` {trace}",
            ctx.model.tiers[t.index()].name
        ),
        FlowProp::NeverReads(t) => format!(
            "agent `{agent}` can read `{}` data {trace}",
            ctx.model.tiers[t.index()].name
        ),
        FlowProp::NoFlow(t, s) => format!(
            "`{}` data can reach sink `{}` through agent `{agent}` {trace}",
            ctx.model.tiers[t.index()].name,
            ctx.model.sinks[s.index()].name
        ),
        FlowProp::KeyedInto(s, _) => format!(
            "agent `{agent}` can write keyed data to the store `{}` {trace}",
            ctx.model.sinks[s.index()].name
        ),
    };
    let grant = rule_loc(ctx, last).or_else(|| grant_loc(ctx, agent, &last.tool));
    let (primary, secondary_assert) = match (assert_loc, grant) {
        (Some(a), _) => (label(a, "this assert does not hold"), grant),
        (None, Some(g)) => (label(g, format!("lets `{}` through", last.tool)), None),
        (None, None) => (label(policy_loc(ctx.model), "here"), None),
    };
    let help = match prop {
        FlowProp::Isolation
            if cex
                .explanation
                .contains("returns what is written to the store") =>
        {
            "key the store by the isolation key (`keyed` on both the sink and the resource that reads it back), or stop granting the tool that writes it to agents that hold keyed data"
        }
        FlowProp::Isolation | FlowProp::KeyedInto(..) => {
            "give each keyed resource its own tool (a request names one access, so the runtime checks one resource's keys), or do not grant the tool"
        }
        FlowProp::WriteDown | FlowProp::NoFlow(..) => {
            "split tools so each reads what its request names, raise the sink's clearance only if that is really allowed, or stop granting the tool that writes"
        }
        FlowProp::Ceiling(_) | FlowProp::NeverReads(_) => {
            "give the agent a tool that reads only what it may read, or raise `max tier` if that is really allowed"
        }
    };
    let mut d = Diagnostic::new(code, format!("{what}: {}", cex.explanation), primary)
        .with_help(help)
        .with_counterexample(json(cex));
    if let Some(g) = secondary_assert {
        d = d.with_secondary(label(g, format!("lets `{}` through", last.tool)));
    }
    let mut tools: Vec<&str> = cex.calls.iter().map(|c| c.tool.as_str()).collect();
    tools.dedup();
    for tool in tools {
        if let Some(loc) = tool_loc(ctx, tool) {
            d = d.with_secondary(label(loc, "declares what the tool reads and writes"));
        }
    }
    d
}

pub fn dead_rule(ctx: &Ctx<'_>, rule: usize, why: &Dead) -> Diagnostic {
    let def = &ctx.model.rules[rule];
    let id = &ctx.data.rules[rule].id;
    match why {
        Dead::NeverMatches => Diagnostic::new(
            Code::DeadRule,
            format!("rule `{id}` never matches a request it applies to, so it never decides anything"),
            label(def.loc, "never matches"),
        )
        .with_help("its condition contradicts itself or the tool's argument types; fix the condition or remove the rule"),
        Dead::Unusable => Diagnostic::new(
            Code::DeadRule,
            format!("rule `{id}` applies only to calls the flow check always stops, so it never decides anything"),
            label(def.loc, "never reached"),
        )
        .with_help("the tool reads or writes data this agent may never handle; remove the rule or fix the tool's grant"),
        Dead::Shadowed(by) => {
            let mut d = Diagnostic::new(
                Code::ShadowedRule,
                format!("rule `{id}` matches requests, but other rules always decide them first"),
                label(def.loc, "never decides"),
            )
            .with_help("deny beats escalate beats allow, and the first matching rule of a kind decides: remove this rule, or narrow the rules that shadow it");
            for r in by {
                if let Some(other) = ctx.model.rules.get(*r) {
                    d = d.with_secondary(label(other.loc, "decides first"));
                }
            }
            d
        }
    }
}

pub fn unusable(ctx: &Ctx<'_>, info: &CellInfo, reason: &str) -> Diagnostic {
    let agent = &ctx.data.agents[info.agent].name;
    let tool = &ctx.data.tools[info.tool].name;
    let at = grant_loc(ctx, agent, tool).unwrap_or(ctx.model.agents[info.agent].loc);
    let mut d = Diagnostic::new(
        Code::UnusableTool,
        format!("agent `{agent}` is granted `{tool}`, but every call of it is denied: {reason}"),
        label(at, "granted here"),
    )
    .with_help("remove the grant, or fix what stops every call");
    if let Some(loc) = tool_loc(ctx, tool) {
        d = d.with_secondary(label(loc, "declared here"));
    }
    d
}

pub fn assert_failed(
    ctx: &Ctx<'_>,
    code: Code,
    loc: Loc,
    subject: &str,
    cex: &Counterexample,
) -> Diagnostic {
    let mut d = Diagnostic::new(
        code,
        format!("`assert {subject}` does not hold: {}", cex.explanation),
        label(loc, "does not hold"),
    )
    .with_help("change the rules so that no such request gets through, or correct the assert")
    .with_counterexample(json(cex));
    if let Some(r) = cex.last().and_then(|c| rule_loc(ctx, c)) {
        d = d.with_secondary(label(r, "decides this request"));
    }
    if code != Code::AssertNeverCallsFailed {
        for route in timeout_allow_routes(ctx, cex) {
            d = d.with_secondary(label(route, "times out to allow"));
        }
    }
    d
}
