//! A `tools/call` in service mode: the call is built from the JSON arguments as in the
//! engine mode (policy names, declared parameters only, their JSON types checked),
//! sent to `agentpolicy serve` to be decided, and forwarded to the upstream only when
//! the service lets it through: at once for allow, after the escalation's long-poll
//! wait ends in allow (an operator's approval through the API or the console, or the
//! route's timeout outcome) for escalate, never for deny. Anything else the service
//! does (unreachable, late, an error status, a malformed answer) denies the call with
//! a tool error that says so. The result is reported to the service.
//!
//! No MCP elicitation here: resolving an escalation is an operator's act, and the
//! gateway holds an agent token, which the service refuses to resolve with.

use serde_json::{Map, Value, json};

use agentpolicy_runtime::Outcome;
use agentpolicy_runtime::wire::request::{arg_or_list, number};
use rmcp::model::{CallToolRequestParams, CallToolResult};

use crate::gateway::{Gateway, META_CONFIDENCE, META_REASONING, META_UNTRUSTED, refused};
use crate::mapping::{MappedTool, param_name};
use crate::service::{RemoteVerdict, ServiceClient, ServiceError};

/// Decides `request` through the service in its session `session`, and runs it when
/// let through.
pub async fn call(
    gateway: &Gateway,
    service: &ServiceClient,
    session: &str,
    request: CallToolRequestParams,
    meta: Option<Map<String, Value>>,
) -> CallToolResult {
    let shared = gateway.shared();
    let name = request.name.to_string();
    let arguments = request.arguments.clone().unwrap_or_default();
    let mapped = shared.map.tools.get(&name);
    let body = match call_body(&name, mapped, &arguments, meta.as_ref()) {
        Ok(b) => b,
        Err(why) => return refused(&format!("refused: {why}"), None),
    };
    let verdict = match service.decide(session, body).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e, "the call was not decided"),
    };
    match verdict.outcome {
        Outcome::Allow => {}
        Outcome::Deny => return denied(&name, &verdict),
        Outcome::Escalate => {
            let id = verdict.escalation.clone().unwrap_or_default();
            match service.wait(&id).await {
                Ok(r) if r.outcome == Outcome::Allow => {}
                Ok(r) => {
                    return refused(
                        &format!(
                            "denied: the escalation of this call to a human ended in deny (rejected, or timed out with the route's timeout outcome); escalation {id}{}",
                            r.why.map(|w| format!(": {w}")).unwrap_or_default()
                        ),
                        Some(
                            json!({ "outcome": "deny", "reason": "escalation", "escalation": id }),
                        ),
                    );
                }
                Err(e) => {
                    return unavailable(
                        &e,
                        &format!("the escalation {id} could not be followed to its end"),
                    );
                }
            }
        }
    }
    let (Some(mapped), Some(call)) = (mapped, verdict.call) else {
        return refused("denied: no upstream offers this tool", None);
    };
    let (result, ok, tokens, latency_ms) = gateway.run_upstream(mapped, request.arguments).await;
    // The call ran: its result goes to the client even when the report cannot be
    // delivered (the service then counts no tokens for it).
    let _ = service.report(session, call, ok, tokens, latency_ms).await;
    result
}

/// The service failed to answer: the call is denied, saying why.
fn unavailable(e: &ServiceError, what: &str) -> CallToolResult {
    refused(
        &format!("denied: {what}, so it is refused (the gateway fails closed): {e}"),
        Some(json!({ "outcome": "deny", "reason": "service", "explanation": e.0 })),
    )
}

/// A call the service's policy refused, as an MCP tool error.
fn denied(tool: &str, v: &RemoteVerdict) -> CallToolResult {
    let text = match &v.rule {
        Some(r) => format!("denied by policy (rule {r}): {}", v.explanation),
        None => format!("denied by policy: {}", v.explanation),
    };
    refused(
        &text,
        Some(json!({
            "outcome": "deny",
            "reason": v.reason,
            "rule": v.rule,
            "explanation": v.explanation,
            "tool": tool,
            "call": v.call,
        })),
    )
}

/// The body of `POST /v1/sessions/{s}/decide`: the policy tool, the declared
/// arguments under their policy names (each value's JSON type checked against the
/// declared type here, so the error names the MCP argument), and `_meta`'s
/// provenance, confidence and reasoning.
pub fn call_body(
    name: &str,
    mapped: Option<&MappedTool>,
    arguments: &Map<String, Value>,
    meta: Option<&Map<String, Value>>,
) -> Result<Value, String> {
    let mut args = Map::new();
    if let Some(m) = mapped {
        for p in &m.params {
            let Some(value) = arguments.get(&p.arg) else {
                continue;
            };
            let texts: Option<Vec<&str>> = value
                .as_array()
                .and_then(|items| items.iter().map(Value::as_str).collect());
            arg_or_list(p.ty, value, texts.as_ref()).map_err(|expected| {
                format!("argument `{}`: expected {expected}, found {value}", p.arg)
            })?;
            args.insert(p.policy.clone(), value.clone());
        }
    }
    let mut body = Map::new();
    body.insert(
        "tool".to_owned(),
        Value::String(mapped.map_or(name, |m| m.name.as_str()).to_owned()),
    );
    body.insert("args".to_owned(), Value::Object(args));
    if let Some(v) = meta.and_then(|m| m.get(META_UNTRUSTED)) {
        let names: Vec<Value> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|n| Value::String(param_name(n)))
                    .collect()
            })
            .ok_or_else(|| {
                format!("`_meta.{META_UNTRUSTED}`: expected a list of argument names")
            })?;
        body.insert("untrusted".to_owned(), Value::Array(names));
    }
    if let Some(conf) = meta.and_then(|m| m.get(META_CONFIDENCE)) {
        number(conf).map_err(|expected| {
            format!("`_meta.{META_CONFIDENCE}`: expected {expected}, found {conf}")
        })?;
        body.insert("confidence".to_owned(), conf.clone());
    }
    if let Some(reasoning) = meta
        .and_then(|m| m.get(META_REASONING))
        .and_then(Value::as_str)
    {
        body.insert("reasoning".to_owned(), Value::String(reasoning.to_owned()));
    }
    Ok(Value::Object(body))
}
