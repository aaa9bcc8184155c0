//! The agent surface: opening a session, deciding a call in it, reporting the call's
//! result, starting a new task and closing the session. Only agent tokens, and only for
//! the agents in their scope. Calls are written as the trace format writes them
//! (`docs/trace-format.md`), values read by the runtime's wire parsers; a decision is
//! answered with the runtime's decision JSON. Engine calls that write the audit log run
//! on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use agentpolicy_runtime::engine::{
    Call, CallRef, CallResult, Engine, EngineError, Internal, Labels, Reason, SessionId,
    SessionOptions, SessionState, Verdict,
};
use agentpolicy_runtime::wire::decision_json;
use agentpolicy_runtime::wire::request::{arg_or_list, number, text_lists};
use agentpolicy_runtime::{ArgValue, DecisionTable};

use crate::auth::{Principal, Role};
use crate::reply::{ApiError, json_body, path};
use crate::{App, Shared};

/// The longest name, context or key value taken, in bytes.
const MAX_TEXT: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    agent: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    bind: BTreeMap<String, String>,
    #[serde(default)]
    context: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(alias = "sink")]
    resource: String,
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

/// A call to decide: the fields of a trace call line that describe the call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    tool: String,
    #[serde(default)]
    args: BTreeMap<String, Value>,
    #[serde(default)]
    confidence: Option<Value>,
    #[serde(default)]
    untrusted: Vec<String>,
    #[serde(default)]
    read: Option<Target>,
    #[serde(default)]
    write: Option<Target>,
    #[serde(default)]
    reasoning: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultBody {
    ok: bool,
    #[serde(default)]
    tokens: u64,
    #[serde(default)]
    latency_ms: u64,
}

/// Runs an engine call. With an audit log that fsyncs, it runs off the async workers
/// (it waits for the disk); without one, or with an OS-buffered one, the engine only
/// takes short locks and a `write`, so it runs in place: a hand-off to the blocking
/// pool would cost two thread wake-ups per request, more than the decision.
pub(crate) async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if app.inline {
        return f();
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the engine task failed: {e}"),
        )
    })?
}

/// `s12` or `12`.
pub(crate) fn parse_session(text: &str) -> Result<SessionId, ApiError> {
    text.strip_prefix('s')
        .unwrap_or(text)
        .parse::<u64>()
        .map(SessionId)
        .map_err(|_| ApiError::bad_request(format!("`{text}` is not a session id like `s12`")))
}

fn too_long(field: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_TEXT {
        return Err(ApiError::bad_request(format!(
            "`{field}`: longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

impl App {
    /// An agent token acting for `agent`, or a 403 after the refusal was audited.
    fn for_agent(&self, who: &Principal, what: &str, agent: &str) -> Result<(), ApiError> {
        if who.agents.allows(agent) {
            Ok(())
        } else {
            Err(self.forbid(
                who,
                what,
                &format!("agent `{agent}` is not in the token's scope"),
            ))
        }
    }

    /// The session and its agent, for an agent token whose scope holds the session's
    /// agent. A session that does not exist is a 403 too, so a token cannot probe for
    /// others'. A shared state store that does not answer is a 503.
    pub(crate) fn own_session(
        &self,
        headers: &HeaderMap,
        what: &str,
        session: Result<Path<String>, PathRejection>,
    ) -> Result<(Principal, Owned), ApiError> {
        let who = self.caller(headers, what, &[Role::Agent])?;
        let session = path(session)?;
        let id = parse_session(&session)?;
        match self.engine.session_agent(id) {
            Ok(agent) => {
                self.for_agent(&who, what, &agent)?;
                Ok((who, Owned { id, agent }))
            }
            Err(EngineError::Internal(e @ Internal::State(_))) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "state_unavailable",
                e.to_string(),
            )),
            Err(_) => Err(self.forbid(
                &who,
                what,
                &format!("no session `{session}` of an agent in the token's scope"),
            )),
        }
    }
}

/// A session a caller may act in: its id and its agent's name.
#[derive(Debug, Clone)]
pub(crate) struct Owned {
    pub id: SessionId,
    pub agent: String,
}

pub async fn open_session(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let what = "POST /v1/sessions";
    let who = app.caller(&headers, what, &[Role::Agent])?;
    let body: OpenSession = json_body(body, app.limits.body_bytes).await?;
    app.for_agent(&who, what, &body.agent)?;
    for (field, text) in [("name", &body.name), ("context", &body.context)] {
        if let Some(t) = text {
            too_long(field, t)?;
        }
    }
    for (k, v) in &body.bind {
        too_long(&format!("bind.{k}"), v)?;
    }
    // Taken before the session exists, given back if opening fails: the cap holds
    // under concurrent opens.
    let cap = app.limits.max_sessions;
    if app
        .open_sessions
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < cap).then_some(n + 1)
        })
        .is_err()
    {
        return Err(app.refuse(
            &who,
            what,
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            &format!("{cap} sessions are open, the most this service holds; close finished sessions (POST /v1/sessions/{{session}}/close)"),
        ));
    }
    let app2 = Arc::clone(&app);
    let engine = Arc::clone(&app.engine);
    blocking(&app, move || {
        let opened = open_in(&engine, &body);
        if opened.is_err() {
            app2.open_sessions.fetch_sub(1, Ordering::SeqCst);
        }
        opened
    })
    .await
}

/// Opens the session the body asks for and answers its state.
fn open_in(engine: &Engine, body: &OpenSession) -> Result<Json<Value>, ApiError> {
    let bind: Vec<(&str, &str)> = body
        .bind
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let id = engine.open_session(
        &body.agent,
        SessionOptions {
            name: body.name.as_deref(),
            bind: &bind,
            context: body.context.as_deref(),
        },
    )?;
    let state = engine.session(id)?;
    Ok(Json(session_json(&state)))
}

pub async fn session_state(
    State(app): State<Shared>,
    headers: HeaderMap,
    session: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, owned) = app.own_session(&headers, "GET /v1/sessions/{session}", session)?;
    let engine = Arc::clone(&app.engine);
    blocking(&app, move || {
        Ok(Json(session_json(&engine.session(owned.id)?)))
    })
    .await
}

pub async fn decide(
    State(app): State<Shared>,
    headers: HeaderMap,
    session: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (_, state) = app.own_session(&headers, "POST /v1/sessions/{session}/decide", session)?;
    let body: DecideBody = json_body(body, app.limits.body_bytes).await?;
    let app2 = Arc::clone(&app);
    let agent = state.agent.clone();
    blocking(&app, move || {
        let table = app2.engine.table()?;
        let started = Instant::now();
        let verdict = decide_call(&app2, &table, state.id, &body)?;
        // Labels only from names the table knows: a caller cannot grow the metrics
        // with made-up tool names.
        let tool = if table.tool_id(&body.tool).is_some() {
            body.tool.as_str()
        } else {
            "(unknown)"
        };
        app2.metrics
            .decision(&agent, tool, verdict.outcome.keyword(), started.elapsed());
        Ok(Json(verdict_json(&table, &body.tool, &verdict)))
    })
    .await
}

/// Builds the engine call from the body (as `replay` does from a trace line) and
/// decides it. An argument the tool does not declare is passed on so the engine denies
/// the call naming it; a value of the wrong type is a 400 naming the argument.
fn decide_call(
    app: &App,
    table: &DecisionTable,
    session: SessionId,
    body: &DecideBody,
) -> Result<Verdict, ApiError> {
    let tool = table
        .tool_id(&body.tool)
        .and_then(|t| table.data().tools.get(t.index()));
    let lists = text_lists(&body.args);
    let mut args: Vec<(&str, ArgValue<'_>)> = Vec::new();
    for (name, value) in &body.args {
        let param = tool.and_then(|t| t.params.iter().find(|p| &p.name == name));
        let arg = match param {
            None => ArgValue::Text(""),
            Some(p) => arg_or_list(p.ty, value, lists.get(name.as_str())).map_err(|expected| {
                ApiError::bad_request(format!("`args.{name}`: expected {expected}, found {value}"))
            })?,
        };
        args.push((name.as_str(), arg));
    }
    let read_keys: Vec<(&str, &str)> = body
        .read
        .iter()
        .flat_map(|r| r.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let write_keys: Vec<(&str, &str)> = body
        .write
        .iter()
        .flat_map(|w| w.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let untrusted: Vec<&str> = body.untrusted.iter().map(String::as_str).collect();
    let mut call = Call::new(&body.tool).args(&args).untrusted(&untrusted);
    if let Some(conf) = &body.confidence {
        let millionths = number(conf).map_err(|expected| {
            ApiError::bad_request(format!("`confidence`: expected {expected}, found {conf}"))
        })?;
        call = call.confidence(millionths);
    }
    call.read = body.read.as_ref().map(|r| Labels {
        target: &r.resource,
        keys: &read_keys,
    });
    call.write = body.write.as_ref().map(|w| Labels {
        target: &w.resource,
        keys: &write_keys,
    });
    call.reasoning = body.reasoning.as_deref();
    Ok(app.engine.decide(session, &call))
}

/// The answer to a decide: what the caller must do (`outcome`), why, the escalation to
/// wait on, and the runtime's decision JSON (the policy's outcome, before shadow mode).
fn verdict_json(table: &DecisionTable, tool: &str, v: &Verdict) -> Value {
    let same_table = table.source_hash() == v.table;
    let rule = v
        .decision
        .rule
        .filter(|_| same_table && v.reason == Reason::Policy)
        .and_then(|r| table.rule(r))
        .map(|r| r.id.clone());
    let explanation = match &v.reason {
        Reason::Policy => v.decision.explain(table.data()).to_string(),
        Reason::Request(e) => format!("deny (request): {e}"),
        Reason::Session(e) => format!("deny (session): {e}"),
        Reason::Internal(e) => format!("deny (internal): {e}"),
    };
    json!({
        "outcome": v.outcome.keyword(),
        "reason": v.reason_code(),
        "rule": rule,
        "explanation": explanation,
        "escalation": v.escalation.map(|e| e.to_string()),
        "shadow": v.shadow,
        "call": v.call.map(|c| c.n),
        "table": v.table.to_string(),
        "audit": v.audit.map(|a| json!({ "seq": a.seq, "hash": a.hash.to_string() })),
        "decision": same_table.then(|| decision_json(table, &v.decision, tool, v.shadow)),
    })
}

pub async fn report(
    State(app): State<Shared>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let what = "POST /v1/sessions/{session}/calls/{call}/result";
    let (session, call) = match params {
        Ok(Path((session, call))) => (Ok(Path(session)), Some(call)),
        Err(e) => (Err(e), None),
    };
    let (_, state) = app.own_session(&headers, what, session)?;
    let call = call.unwrap_or_default();
    let call: u64 = call
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{call}` is not a call number like `3`")))?;
    let body: ResultBody = json_body(body, app.limits.body_bytes).await?;
    let engine = Arc::clone(&app.engine);
    blocking(&app, move || {
        let ack = engine.report(
            CallRef {
                session: state.id,
                n: call,
            },
            CallResult {
                ok: body.ok,
                tokens: body.tokens,
                latency_ms: body.latency_ms,
            },
        )?;
        Ok(Json(json!({
            "reported": true,
            "audit": ack.map(|a| json!({ "seq": a.seq, "hash": a.hash.to_string() })),
        })))
    })
    .await
}

pub async fn close(
    State(app): State<Shared>,
    headers: HeaderMap,
    session: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, state) = app.own_session(&headers, "POST /v1/sessions/{session}/close", session)?;
    let engine = Arc::clone(&app.engine);
    let app2 = Arc::clone(&app);
    blocking(&app, move || {
        engine.close_session(state.id)?;
        app2.open_sessions.fetch_sub(1, Ordering::SeqCst);
        Ok(Json(session_json(&engine.session(state.id)?)))
    })
    .await
}

pub async fn new_task(
    State(app): State<Shared>,
    headers: HeaderMap,
    session: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, state) = app.own_session(&headers, "POST /v1/sessions/{session}/tasks", session)?;
    let engine = Arc::clone(&app.engine);
    blocking(&app, move || {
        let task = engine.start_task(state.id)?;
        Ok(Json(
            json!({ "session": state.id.to_string(), "task": task }),
        ))
    })
    .await
}

pub(crate) fn session_json(s: &SessionState) -> Value {
    let bound: serde_json::Map<String, Value> = s
        .bound
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "session": s.id.to_string(),
        "name": s.name,
        "agent": s.agent,
        "task": s.task,
        "calls": s.calls,
        "tier": s.tier,
        "tainted": s.tainted,
        "bound": bound,
        "limits": s.limits.iter().map(|l| json!({ "limit": l.limit.to_string(), "used": l.used })).collect::<Vec<_>>(),
        "pending": s.pending.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "closed": s.closed,
        "broken": s.broken,
        "context": s.context,
    })
}
