//! agentpolicy's side: the spec written as `.agentpolicy` text and compiled through the
//! real compiler (salsa database, semantic analysis, code generation), and calls turned
//! into runtime [`Request`]s the way an embedder does: names interned once, up front.

use agentpolicy::codegen::build_table;
use agentpolicy::db::Database;
use agentpolicy::render::{Sources, plain};
use agentpolicy_runtime::{ArgValue, DecisionTable, Outcome, Request, decide};

use crate::spec::{Call, Condition, Kind, PolicySpec, Target};

/// The policy as `.agentpolicy` source text.
pub fn policy_text(spec: &PolicySpec) -> String {
    let mut out = format!("policy {} version \"1\"\n\n", spec.name);
    for tool in &spec.tools {
        out.push_str(&format!(
            "tool {tool}(amount: money?) {{ effect financial }}\n"
        ));
    }
    out.push('\n');
    for route in &spec.routes {
        out.push_str(&format!(
            "escalation {route} {{ notify \"queue:{route}\"  timeout 15m then deny }}\n"
        ));
    }
    for (a, agent) in spec.agents.iter().enumerate() {
        out.push_str(&format!(
            "\nagent {agent} {{\n  owner \"ops@bench.example\"\n"
        ));
        for rule in spec.rules.iter().filter(|r| r.agent == a) {
            let kind = match rule.kind {
                Kind::Allow => "allow",
                Kind::Escalate => "escalate",
                Kind::Deny => "deny",
            };
            let target = match rule.target {
                Target::Tool(t) => spec.tools.get(t).map_or("?", String::as_str),
                Target::All => "*",
            };
            out.push_str(&format!("  {kind:<8} {target}"));
            if let Some(route) = rule.route.and_then(|r| spec.routes.get(r)) {
                out.push_str(&format!(" to {route}"));
            }
            if let Some(condition) = &rule.condition {
                out.push_str(" when ");
                out.push_str(&condition_text(condition));
            }
            out.push('\n');
        }
        out.push_str("}\n");
    }
    out
}

fn condition_text(condition: &Condition) -> String {
    let clauses: Vec<String> = condition
        .any_of
        .iter()
        .map(|clause| {
            let parts: Vec<String> = clause
                .iter()
                .map(|c| {
                    let value = match c.var {
                        crate::spec::Var::Amount => money(c.value),
                        crate::spec::Var::Confidence => number(c.value),
                    };
                    format!("{} {} {value}", c.var.name(), c.op.symbol())
                })
                .collect();
            parts.join(" and ")
        })
        .collect();
    if clauses.len() == 1 {
        clauses.concat()
    } else {
        clauses
            .iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Cents as a money literal: 150_000 is `$1500.00`.
fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Millionths as a number literal: 850_000 is `0.850000`.
fn number(millionths: i64) -> String {
    format!("{}.{:06}", millionths / 1_000_000, millionths % 1_000_000)
}

/// Compiles the spec's text through the compiler: load, analyse, generate the table.
/// Errors are the rendered diagnostics.
pub fn compile(spec: &PolicySpec) -> Result<DecisionTable, String> {
    let files = vec![(format!("{}.agentpolicy", spec.name), policy_text(spec))];
    let mut db = Database::default();
    let loaded = db.load(files.clone());
    let analysis = db.analysis(loaded);
    let sources = Sources::new(files);
    let render = |diagnostics: &[agentpolicy::diagnostics::Diagnostic]| {
        diagnostics
            .iter()
            .map(|d| plain(d, &sources))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if analysis.has_errors() {
        return Err(render(&analysis.diagnostics));
    }
    build_table(&analysis.model, sources.files()).map_err(|d| render(&d))
}

/// Builds the runtime request of a call by name, once; `decide` then sees only ids.
pub fn request(table: &DecisionTable, spec: &PolicySpec, call: &Call) -> Result<Request, String> {
    let agent = spec.agents.get(call.agent).ok_or("agent out of range")?;
    let tool = spec.tools.get(call.tool).ok_or("tool out of range")?;
    let mut builder = table.request(agent, tool).map_err(|e| e.to_string())?;
    if let Some(cents) = call.amount {
        builder = builder
            .arg("amount", ArgValue::Money(cents))
            .map_err(|e| e.to_string())?;
    }
    if let Some(millionths) = call.confidence {
        builder = builder.confidence(millionths);
    }
    Ok(builder.build())
}

/// The outcome `decide` gives.
#[inline]
pub fn outcome(table: &DecisionTable, request: &Request) -> Outcome {
    decide(table, request).outcome
}
