//! The spec translated to Cedar and decided with `cedar-policy`'s `Authorizer`.
//!
//! Mapping (see docs/performance.md): agents are `Agent` entities, tools `Tool` entities
//! whose parents are the `Grants::"AGENT"` groups of the agents granted them, the one
//! action is `Action::"call"`, and the call's values are context attributes, left out
//! when missing. `allow` is `permit`; `deny` is `forbid`; `escalate` is a `forbid`
//! annotated `@escalate("ROUTE")`, so forbid-overrides-permit gives escalate over allow,
//! and a Deny whose determining policies all carry the annotation reads as Escalate
//! (any plain `forbid` among them makes it Deny: deny over escalate). A `*` rule scopes
//! its resource to `in Grants::"AGENT"`, since `*` covers only granted tools. Missing
//! values fail safe with `has`: an allow condition requires every value it reads, a
//! deny or escalate condition holds when any is missing.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use agentpolicy_runtime::Outcome;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, Policy, PolicyId, PolicySet,
    Request, RestrictedExpression,
};

use crate::spec::{Call, Condition, Kind, PolicySpec, Target};

/// The annotation that marks an escalate rule; its value is the route.
pub const ESCALATE_ANNOTATION: &str = "escalate";

/// A translated policy, ready to authorize.
#[derive(Debug)]
pub struct CedarPolicy {
    pub policies: PolicySet,
    /// The same policies sliced by agent (`by_agent[a]` holds agent `a`'s rules): Cedar
    /// does not index policies, so an application with many principals would pick the
    /// principal's slice before calling the authorizer.
    pub by_agent: Vec<PolicySet>,
    pub entities: Entities,
    pub authorizer: Authorizer,
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(&format!("{ty}::\"{id}\"")).map_err(|e| e.to_string())
}

/// The policy text of one rule.
pub fn rule_text(spec: &PolicySpec, rule: &crate::spec::RuleSpec) -> String {
    let agent = spec.agents.get(rule.agent).map_or("?", String::as_str);
    let resource = match rule.target {
        Target::Tool(t) => format!(
            "resource == Tool::\"{}\"",
            spec.tools.get(t).map_or("?", String::as_str)
        ),
        Target::All => format!("resource in Grants::\"{agent}\""),
    };
    let head = format!("(principal == Agent::\"{agent}\", action == Action::\"call\", {resource})");
    let (annotation, effect) = match rule.kind {
        Kind::Allow => (String::new(), "permit"),
        Kind::Deny => (String::new(), "forbid"),
        Kind::Escalate => {
            let route = rule
                .route
                .and_then(|r| spec.routes.get(r))
                .map_or("?", String::as_str);
            (format!("@{ESCALATE_ANNOTATION}(\"{route}\")\n"), "forbid")
        }
    };
    let when = match &rule.condition {
        None => String::new(),
        Some(c) => format!(" when {{ {} }}", condition_text(c, rule.kind)),
    };
    format!("{annotation}{effect} {head}{when};")
}

fn condition_text(condition: &Condition, kind: Kind) -> String {
    let clause_text = |clause: &Vec<crate::spec::Compare>| {
        clause
            .iter()
            .map(|c| format!("context.{} {} {}", c.var.name(), c.op.symbol(), c.value))
            .collect::<Vec<_>>()
            .join(" && ")
    };
    let body = condition
        .any_of
        .iter()
        .map(|clause| format!("({})", clause_text(clause)))
        .collect::<Vec<_>>()
        .join(" || ");
    let present = condition
        .reads()
        .iter()
        .map(|v| format!("context has {}", v.name()))
        .collect::<Vec<_>>()
        .join(" && ");
    if condition.any_of.is_empty() {
        return "false".into();
    }
    if present.is_empty() {
        return body;
    }
    // `&&` and `||` short-circuit, so no attribute is read that the context lacks.
    match kind {
        Kind::Allow => format!("{present} && ({body})"),
        Kind::Escalate | Kind::Deny => format!("!({present}) || ({body})"),
    }
}

/// Translates the spec and builds the entity store.
pub fn translate(spec: &PolicySpec) -> Result<CedarPolicy, String> {
    let mut policies = PolicySet::new();
    let mut by_agent: Vec<PolicySet> = spec.agents.iter().map(|_| PolicySet::new()).collect();
    for (i, rule) in spec.rules.iter().enumerate() {
        // Rule `i` of the spec is the policy with id `r{i}`.
        let id = PolicyId::new(format!("r{i}"));
        let policy =
            Policy::parse(Some(id), rule_text(spec, rule)).map_err(|e| format!("rule {i}: {e}"))?;
        let slice = by_agent
            .get_mut(rule.agent)
            .ok_or_else(|| format!("rule {i}: agent out of range"))?;
        slice
            .add(policy.clone())
            .map_err(|e| format!("rule {i}: {e}"))?;
        policies.add(policy).map_err(|e| format!("rule {i}: {e}"))?;
    }
    let mut entities = Vec::new();
    for agent in &spec.agents {
        entities.push(Entity::new_no_attrs(uid("Agent", agent)?, HashSet::new()));
        entities.push(Entity::new_no_attrs(uid("Grants", agent)?, HashSet::new()));
    }
    for (t, tool) in spec.tools.iter().enumerate() {
        let mut parents = HashSet::new();
        for (a, agent) in spec.agents.iter().enumerate() {
            if spec.granted(a, t) {
                parents.insert(uid("Grants", agent)?);
            }
        }
        entities.push(Entity::new_no_attrs(uid("Tool", tool)?, parents));
    }
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
    Ok(CedarPolicy {
        policies,
        by_agent,
        entities,
        authorizer: Authorizer::new(),
    })
}

/// The whole policy set as text, for reading.
pub fn policy_text(spec: &PolicySpec) -> String {
    spec.rules
        .iter()
        .map(|r| rule_text(spec, r))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Builds the Cedar request of a call, once (as the agentpolicy request is built once).
pub fn request(spec: &PolicySpec, call: &Call) -> Result<Request, String> {
    let agent = spec.agents.get(call.agent).ok_or("agent out of range")?;
    let tool = spec.tools.get(call.tool).ok_or("tool out of range")?;
    let mut pairs: HashMap<String, RestrictedExpression> = HashMap::new();
    if let Some(cents) = call.amount {
        pairs.insert("amount".into(), RestrictedExpression::new_long(cents));
    }
    if let Some(millionths) = call.confidence {
        pairs.insert(
            "confidence".into(),
            RestrictedExpression::new_long(millionths),
        );
    }
    let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
    Request::new(
        uid("Agent", agent)?,
        uid("Action", "call")?,
        uid("Tool", tool)?,
        context,
        None,
    )
    .map_err(|e| e.to_string())
}

/// Authorizes a request and reads the outcome off the response: Allow is Allow; a Deny
/// is Escalate when every policy that determined it is an annotated escalate rule and
/// there is at least one, else Deny.
#[inline]
pub fn outcome(policy: &CedarPolicy, request: &Request) -> Outcome {
    outcome_in(policy, &policy.policies, request)
}

/// [`outcome`] against the agent's slice of the policies only (`agent` is the spec's
/// index, as an embedder would hold an interned principal).
#[inline]
pub fn sliced_outcome(policy: &CedarPolicy, agent: usize, request: &Request) -> Outcome {
    match policy.by_agent.get(agent) {
        Some(slice) => outcome_in(policy, slice, request),
        None => Outcome::Deny,
    }
}

#[inline]
fn outcome_in(policy: &CedarPolicy, policies: &PolicySet, request: &Request) -> Outcome {
    let response = policy
        .authorizer
        .is_authorized(request, policies, &policy.entities);
    match response.decision() {
        Decision::Allow => Outcome::Allow,
        Decision::Deny => {
            let mut escalate = false;
            for id in response.diagnostics().reason() {
                if policies.annotation(id, ESCALATE_ANNOTATION).is_none() {
                    return Outcome::Deny;
                }
                escalate = true;
            }
            if escalate {
                Outcome::Escalate
            } else {
                Outcome::Deny
            }
        }
    }
}

/// The number of evaluation errors Cedar reports for a request; the translation guards
/// every attribute read with `has`, so this should be zero.
pub fn errors(policy: &CedarPolicy, request: &Request) -> usize {
    policy
        .authorizer
        .is_authorized(request, &policy.policies, &policy.entities)
        .diagnostics()
        .errors()
        .count()
}
