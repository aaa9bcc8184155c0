//! The reference interpreter: decides one call by reading the [`Model`] directly,
//! following DESIGN.md's decision order literally. Written for clarity, not speed; the
//! differential tests hold the compiled table to its answers.
//!
//! Values missing from a call make a condition *unknown*: it matches for deny and
//! escalate rules and does not for allow rules. When several values are missing the one
//! reported is the first in parameter order, with the confidence after all arguments.
//! A presence test (`ARG given`, `ARG missing`) reads no value and guards the reads of
//! its argument beside it ([`Cond::unguarded_args`]).

use agentpolicy_runtime::{Outcome, Stage};

use crate::model::{
    AgentId, Cond, KeyId, Model, ResourceId, RouteId, RuleId, SinkId, Term, TierId, ToolId, Value,
};
use crate::syntax::ast::{CompareOp, RuleKind};

/// A tool call in the model's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub agent: AgentId,
    pub tool: ToolId,
    /// By parameter index of the tool; `None` (or a short vector) where not given.
    pub args: Vec<Option<Value>>,
    /// Millionths.
    pub confidence: Option<i64>,
    pub read: Option<DataAccess<ResourceId>>,
    pub write: Option<DataAccess<SinkId>>,
    pub session: Session,
    /// Parameter indices of arguments the caller says came from untrusted content.
    pub untrusted: Vec<usize>,
}

/// A named read or write, with the isolation-key values of the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataAccess<T> {
    pub target: T,
    pub keys: Vec<(KeyId, String)>,
}

/// The session the call runs in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub engine_suspended: bool,
    pub agent_suspended: bool,
    /// `None` while unlabelled.
    pub tier: Option<TierId>,
    pub bound: Vec<(KeyId, String)>,
    /// Usage of the agent's limits, by limit index; absent counters are 0.
    pub usage: Vec<u64>,
    /// The session has taken in untrusted content.
    pub tainted: bool,
}

/// Isolation-key values by key.
type KeyValues = [(KeyId, String)];

/// A value a condition needed that the call did not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    Arg(usize),
    Confidence,
}

/// The interpreter's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub stage: Stage,
    /// The deciding rule: the first matching rule of the deciding kind.
    pub rule: Option<RuleId>,
    /// For escalations: the routes of all matching escalate rules, in rule order, once.
    pub routes: Vec<RouteId>,
    pub missing: Option<Missing>,
}

impl Verdict {
    fn deny(stage: Stage) -> Verdict {
        Verdict {
            outcome: Outcome::Deny,
            stage,
            rule: None,
            routes: Vec::new(),
            missing: None,
        }
    }
}

/// Decides `call` against `model`.
pub fn interpret(model: &Model, call: &Call) -> Verdict {
    // 1. Suspended.
    if call.session.engine_suspended || call.session.agent_suspended {
        return Verdict::deny(Stage::Suspended);
    }
    // 2. Granted: unknown agents and tools are never granted.
    let (Some(agent), Some(tool)) = (
        model.agents.get(call.agent.index()),
        model.tools.get(call.tool.index()),
    ) else {
        return Verdict::deny(Stage::NotGranted);
    };
    if !model.grants(call.agent, call.tool) {
        return Verdict::deny(Stage::NotGranted);
    }
    // 3. Flow.
    if !flow_allows(model, agent.max_tier, tool, call) {
        return Verdict::deny(Stage::Flow);
    }
    // 4. Limits.
    for (i, limit) in agent.limits.iter().enumerate() {
        if call.session.usage.get(i).copied().unwrap_or(0) >= limit.count {
            return Verdict::deny(Stage::Limit);
        }
    }
    // 5. Rules: deny, then escalate, then allow.
    let rules = model.applicable_rules(call.agent, call.tool);
    let of_kind = |kind: RuleKind| {
        rules
            .iter()
            .copied()
            .filter(move |r| model.rule(*r).kind == kind)
    };
    for id in of_kind(RuleKind::Deny) {
        if let Some(missing) = matches_failing_safe(model, model.rule(id).condition.as_ref(), call)
        {
            return by_rule(Outcome::Deny, id, missing, Vec::new());
        }
    }
    let mut escalation: Option<(RuleId, Option<Missing>)> = None;
    let mut routes = Vec::new();
    for id in of_kind(RuleKind::Escalate) {
        if let Some(missing) = matches_failing_safe(model, model.rule(id).condition.as_ref(), call)
        {
            escalation.get_or_insert((id, missing));
            if let Some(route) = model.rule(id).route
                && !routes.contains(&route)
            {
                routes.push(route);
            }
        }
    }
    if let Some((id, missing)) = escalation {
        return by_rule(Outcome::Escalate, id, missing, routes);
    }
    for id in of_kind(RuleKind::Allow) {
        let holds = match &model.rule(id).condition {
            None => true,
            Some(cond) => missing_value(cond, call).is_none() && eval(model, cond, call),
        };
        if holds {
            return by_rule(Outcome::Allow, id, None, Vec::new());
        }
    }
    Verdict::deny(Stage::NoRule)
}

fn by_rule(
    outcome: Outcome,
    rule: RuleId,
    missing: Option<Missing>,
    routes: Vec<RouteId>,
) -> Verdict {
    Verdict {
        outcome,
        stage: Stage::Rule,
        rule: Some(rule),
        routes,
        missing,
    }
}

/// For deny and escalate rules: `Some(missing)` when the rule matches, where `missing`
/// is the value whose absence made it match.
fn matches_failing_safe(
    model: &Model,
    cond: Option<&Cond>,
    call: &Call,
) -> Option<Option<Missing>> {
    let Some(cond) = cond else {
        return Some(None);
    };
    match missing_value(cond, call) {
        Some(missing) => Some(Some(missing)),
        None => eval(model, cond, call).then_some(None),
    }
}

/// The first value the condition reads that the call lacks.
fn missing_value(cond: &Cond, call: &Call) -> Option<Missing> {
    let args = cond
        .unguarded_args()
        .into_iter()
        .filter(|i| value_of_arg(call, *i).is_none())
        .map(Missing::Arg);
    let confidence = (call.confidence.is_none()
        && cond.terms().iter().any(|t| matches!(t, Term::Confidence)))
    .then_some(Missing::Confidence);
    args.chain(confidence).min()
}

fn value_of_arg(call: &Call, i: usize) -> Option<&Value> {
    call.args.get(i).and_then(Option::as_ref)
}

/// Whether `text` is a member of the set; a set bound at deploy time has no members
/// in the model.
fn in_set(model: &Model, set: crate::model::SetId, text: &str) -> bool {
    model
        .sets
        .get(set.index())
        .and_then(|s| s.members.as_ref())
        .is_some_and(|m| m.iter().any(|x| x == text))
}

/// Evaluates a condition whose unguarded values are all present; a read of a missing
/// value (only inside a guard that settles the result) reads as false.
fn eval(model: &Model, cond: &Cond, call: &Call) -> bool {
    match cond {
        Cond::Or(parts) => parts.iter().any(|c| eval(model, c, call)),
        Cond::And(parts) => parts.iter().all(|c| eval(model, c, call)),
        Cond::Not(inner) => !eval(model, inner, call),
        Cond::InSet { arg, set } => match value_of_arg(call, *arg) {
            Some(Value::Text(t)) => in_set(model, *set, t),
            _ => false,
        },
        Cond::Matches { arg, pattern } => match value_of_arg(call, *arg) {
            Some(Value::Text(t)) => agentpolicy_runtime::glob_match(pattern, t),
            _ => false,
        },
        Cond::Quantified {
            quantifier,
            arg,
            test,
        } => {
            let Some(Value::TextList(items)) = value_of_arg(call, *arg) else {
                return false;
            };
            let passes = |t: &String| test.holds(t, |s, x| in_set(model, s, x));
            match quantifier {
                crate::syntax::ast::Quantifier::All => items.iter().all(passes),
                crate::syntax::ast::Quantifier::Any => items.iter().any(passes),
            }
        }
        Cond::FromUntrusted { arg } => {
            value_of_arg(call, *arg).is_some() && call.untrusted.contains(arg)
        }
        Cond::Present { arg } => value_of_arg(call, *arg).is_some(),
        Cond::HasEffect(effect) => model
            .tools
            .get(call.tool.index())
            .is_some_and(|t| t.has_effect(*effect)),
        Cond::Compare { left, op, right } => {
            match (term_value(left, call), term_value(right, call)) {
                (Some(l), Some(r)) => compare(&l, *op, &r),
                _ => false,
            }
        }
        Cond::Truthy(term) => matches!(term_value(term, call), Some(Value::Bool(true))),
    }
}

fn term_value(term: &Term, call: &Call) -> Option<Value> {
    match term {
        Term::Arg(i) => value_of_arg(call, *i).cloned(),
        Term::Confidence => call.confidence.map(Value::Number),
        Term::Tainted => Some(Value::Bool(call.session.tainted)),
        Term::Const { value, .. } => Some(value.clone()),
    }
}

/// Values of one type compare by their exact integer (or text, or bool).
fn compare(l: &Value, op: CompareOp, r: &Value) -> bool {
    match (l, r) {
        (Value::Money(a), Value::Money(b))
        | (Value::Number(a), Value::Number(b))
        | (Value::Duration(a), Value::Duration(b)) => op.holds(a, b),
        (Value::Bool(a), Value::Bool(b)) => op.holds(a, b),
        (Value::Text(a), Value::Text(b)) => op.holds(a, b),
        _ => op.holds(l, r),
    }
}

/// DESIGN.md's flow model for one call: reads (the named one, or all the tool declares)
/// must stay within the agent's max tier and the session's bound key values, and raise
/// the label; writes must not go below the raised label nor across its keys, and a write
/// to a keyed sink must be named with its key values.
fn flow_allows(
    model: &Model,
    max_tier: Option<TierId>,
    tool: &crate::model::ToolDef,
    call: &Call,
) -> bool {
    let mut tier = call.session.tier;
    let mut bound = call.session.bound.clone();
    let bound_value = |bound: &[(KeyId, String)], key: KeyId| {
        bound
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let given = |keys: &[(KeyId, String)], key: KeyId| {
        keys.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    };

    let reads: Vec<(ResourceId, Option<&KeyValues>)> = match &call.read {
        Some(access) => {
            if !tool.reads.contains(&access.target) {
                return false;
            }
            vec![(access.target, Some(access.keys.as_slice()))]
        }
        None => tool.reads.iter().map(|r| (*r, None)).collect(),
    };
    for (id, keys) in reads {
        let Some(resource) = model.resources.get(id.index()) else {
            return false;
        };
        if max_tier.is_some_and(|max| resource.tier > max) {
            return false;
        }
        if let Some(keys) = keys {
            for key in &resource.keyed {
                let Some(value) = given(keys, *key) else {
                    return false;
                };
                match bound_value(&bound, *key) {
                    Some(b) if b != value => return false,
                    Some(_) => {}
                    None => bound.push((*key, value)),
                }
            }
        }
        tier = Some(tier.map_or(resource.tier, |t| t.max(resource.tier)));
    }

    // A call of a tool that writes keyed data must name one of its keyed sinks.
    let keyed = |id: SinkId| {
        model
            .sinks
            .get(id.index())
            .is_some_and(|s| !s.keyed.is_empty())
    };
    if tool.writes.iter().any(|s| keyed(*s))
        && !call.write.as_ref().is_some_and(|w| keyed(w.target))
    {
        return false;
    }
    let writes: Vec<(SinkId, Option<&KeyValues>)> = match &call.write {
        Some(access) => {
            if !tool.writes.contains(&access.target) {
                return false;
            }
            vec![(access.target, Some(access.keys.as_slice()))]
        }
        None => tool.writes.iter().map(|s| (*s, None)).collect(),
    };
    for (id, keys) in writes {
        let Some(sink) = model.sinks.get(id.index()) else {
            return false;
        };
        if tier.is_some_and(|t| t > sink.clearance) {
            return false;
        }
        if let Some(keys) = keys {
            for key in &sink.keyed {
                let Some(value) = given(keys, *key) else {
                    return false;
                };
                if bound_value(&bound, *key).is_some_and(|b| b != value) {
                    return false;
                }
            }
        }
    }
    true
}
