//! The spec translated to Rego (v1 syntax) and evaluated with `regorus`.
//!
//! Mapping (see docs/performance.md): the input is `{"agent", "tool", "amount",
//! "confidence"}` with missing values left out; the decision is the string rule
//! `data.agentpolicy.outcome`, one of `"allow"`, `"escalate"` or `"deny"`, chosen by an
//! `else` chain in the contract's order (not granted, deny, escalate, allow, default
//! deny). Each spec rule becomes one or more bodies of the boolean rule `allow`,
//! `escalate` or `deny`: one body per clause of its condition (Rego bodies are
//! conjunctions; several bodies are a disjunction). Missing values fail safe: a deny or
//! escalate rule gets one more body per value it reads, true when that value is missing;
//! an allow body requires every value its rule reads (a comparison with a missing value
//! is undefined, so the body fails).

use agentpolicy_runtime::Outcome;
use regorus::{Engine, Value};

use crate::spec::{Call, Kind, PolicySpec, RuleSpec, Target};

/// The rule the engine is asked for.
pub const OUTCOME_RULE: &str = "data.agentpolicy.outcome";

/// A translated policy loaded into an engine.
#[derive(Debug, Clone)]
pub struct RegoPolicy {
    pub engine: Engine,
}

/// The whole policy as one Rego module.
pub fn policy_text(spec: &PolicySpec) -> String {
    let mut out = String::from(
        "package agentpolicy\n\nimport rego.v1\n\n\
         default outcome := \"deny\"\n\n\
         outcome := \"deny\" if {\n\tnot granted\n} else := \"deny\" if {\n\tdeny\n} \
         else := \"escalate\" if {\n\tescalate\n} else := \"allow\" if {\n\tallow\n}\n\n\
         granted if input.tool in grants[input.agent]\n\n",
    );
    out.push_str("grants := {\n");
    for (a, agent) in spec.agents.iter().enumerate() {
        let tools: Vec<String> = spec
            .tools
            .iter()
            .enumerate()
            .filter(|(t, _)| spec.granted(a, *t))
            .map(|(_, tool)| format!("\"{tool}\""))
            .collect();
        out.push_str(&format!("\t\"{agent}\": {{{}}},\n", tools.join(", ")));
    }
    out.push_str("}\n");
    for (i, rule) in spec.rules.iter().enumerate() {
        out.push_str(&format!("\n# r{i}\n"));
        out.push_str(&rule_text(spec, rule));
    }
    out
}

fn rule_text(spec: &PolicySpec, rule: &RuleSpec) -> String {
    let name = match rule.kind {
        Kind::Allow => "allow",
        Kind::Escalate => "escalate",
        Kind::Deny => "deny",
    };
    let mut scope = vec![format!(
        "input.agent == \"{}\"",
        spec.agents.get(rule.agent).map_or("?", String::as_str)
    )];
    if let Target::Tool(t) = rule.target {
        scope.push(format!(
            "input.tool == \"{}\"",
            spec.tools.get(t).map_or("?", String::as_str)
        ));
    }
    let Some(condition) = &rule.condition else {
        return body(name, &scope);
    };
    let reads = condition.reads();
    let mut out = String::new();
    for clause in &condition.any_of {
        let mut lines = scope.clone();
        if rule.kind == Kind::Allow {
            for var in &reads {
                if !clause.iter().any(|c| c.var == *var) {
                    lines.push(format!(
                        "object.get(input, \"{}\", null) != null",
                        var.name()
                    ));
                }
            }
        }
        for c in clause {
            lines.push(format!(
                "input.{} {} {}",
                c.var.name(),
                c.op.symbol(),
                c.value
            ));
        }
        out.push_str(&body(name, &lines));
    }
    if rule.kind != Kind::Allow {
        for var in &reads {
            let mut lines = scope.clone();
            lines.push(format!(
                "object.get(input, \"{}\", null) == null",
                var.name()
            ));
            out.push_str(&body(name, &lines));
        }
    }
    out
}

fn body(name: &str, lines: &[String]) -> String {
    let mut out = format!("{name} if {{\n");
    for line in lines {
        out.push('\t');
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// Translates the spec and loads it into a fresh engine.
pub fn translate(spec: &PolicySpec) -> Result<RegoPolicy, String> {
    let mut engine = Engine::new();
    engine
        .add_policy(format!("{}.rego", spec.name), policy_text(spec))
        .map_err(|e| e.to_string())?;
    Ok(RegoPolicy { engine })
}

/// Builds the input document of a call, once (as the agentpolicy request is built once).
pub fn input(spec: &PolicySpec, call: &Call) -> Result<Value, String> {
    let agent = spec.agents.get(call.agent).ok_or("agent out of range")?;
    let tool = spec.tools.get(call.tool).ok_or("tool out of range")?;
    let mut object = Value::new_object();
    let map = object.as_object_mut().map_err(|e| e.to_string())?;
    map.insert(Value::from("agent"), Value::from(agent.as_str()));
    map.insert(Value::from("tool"), Value::from(tool.as_str()));
    if let Some(cents) = call.amount {
        map.insert(Value::from("amount"), Value::from(cents));
    }
    if let Some(millionths) = call.confidence {
        map.insert(Value::from("confidence"), Value::from(millionths));
    }
    Ok(object)
}

/// Sets the input and evaluates the outcome rule. An evaluation error or an unexpected
/// value decides Deny, as agentpolicy's runtime does with a fault.
#[inline]
pub fn outcome(policy: &mut RegoPolicy, input: &Value) -> Outcome {
    policy.engine.set_input(input.clone());
    match policy.engine.eval_rule(OUTCOME_RULE.to_string()) {
        Ok(Value::String(s)) => match &*s {
            "allow" => Outcome::Allow,
            "escalate" => Outcome::Escalate,
            _ => Outcome::Deny,
        },
        _ => Outcome::Deny,
    }
}

/// Like [`outcome`], but reports an evaluation error or a value other than the three
/// outcome strings instead of reading it as Deny; for the agreement test.
pub fn checked_outcome(policy: &mut RegoPolicy, input: &Value) -> Result<Outcome, String> {
    policy.engine.set_input(input.clone());
    match policy.engine.eval_rule(OUTCOME_RULE.to_string()) {
        Ok(Value::String(s)) => match &*s {
            "allow" => Ok(Outcome::Allow),
            "escalate" => Ok(Outcome::Escalate),
            "deny" => Ok(Outcome::Deny),
            other => Err(format!("unexpected outcome {other:?}")),
        },
        Ok(other) => Err(format!("unexpected value {other}")),
        Err(e) => Err(e.to_string()),
    }
}
