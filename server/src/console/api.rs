//! The JSON the console page reads and the actions it takes, authenticated by the
//! console's cookie session: who is logged in (with the CSRF token), the state shown
//! (pending escalations with their details, recent resolutions, agents), one session's
//! audit trail, and resolving escalations and the kill switch through the same code as
//! the API (`operate::resolve_as`, `operate::switch_as`), so scope checks, reasons and
//! audit records are the API's. The state answers with an ETag and `304 Not Modified`
//! when nothing changed, so the page can poll cheaply.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use agentpolicy_runtime::engine::{Escalation, Resolution, SessionState};

use crate::auth::{Principal, Role};
use crate::handlers::parse_session;
use crate::operate::{escalation_json, parse_escalation, resolve_as, switch_as};
use crate::reply::{ApiError, path, query};
use crate::{App, Shared};

/// Reads the audit log on the blocking pool: a first refresh or a trail reads the whole
/// file, which must not hold up the async workers serving decisions.
async fn off_the_workers<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| format!("reading the audit log failed: {e}"))?
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/console/api/me", get(me))
        .route("/console/api/state", get(state))
        .route("/console/api/sessions/{session}/audit", get(trail))
        .route("/console/api/escalations/{id}/approve", post(approve))
        .route("/console/api/escalations/{id}/reject", post(reject))
        .route("/console/api/kill", post(kill))
        .route("/console/api/resume", post(resume))
}

/// Who is logged in, the agents and routes of the table in its scope, what the page may
/// offer it, and the CSRF token.
async fn me(State(app): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let s = app.console_session(&headers, "GET /console/api/me")?;
    let p = &s.principal;
    let table = app.engine.table()?;
    let agents: Vec<String> = table
        .data()
        .agents
        .iter()
        .map(|a| a.name.clone())
        .filter(|a| p.agents.allows(a))
        .collect();
    let routes: Vec<String> = table
        .data()
        .routes
        .iter()
        .map(|r| r.name.clone())
        .filter(|r| p.role == Role::Auditor || p.routes.allows(r))
        .collect();
    Ok(Json(json!({
        "name": p.name,
        "role": p.role.keyword(),
        "agents": agents,
        "all_agents": p.agents.is_all(),
        "routes": routes,
        "all_routes": p.role == Role::Auditor || p.routes.is_all(),
        "can_act": p.role == Role::Operator,
        "csrf": s.csrf,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFilter {
    #[serde(default)]
    route: Option<String>,
}

fn sees_route(p: &Principal, routes: &[String]) -> bool {
    p.role == Role::Auditor || routes.iter().any(|r| p.routes.allows(r))
}

fn session_json(s: &SessionState) -> Value {
    let bound: serde_json::Map<String, Value> = s
        .bound
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    json!({
        "id": s.id.to_string(),
        "name": s.name,
        "task": s.task,
        "calls": s.calls,
        "tier": s.tier,
        "tainted": s.tainted,
        "bound": bound,
        "closed": s.closed,
        "context": s.context,
    })
}

fn pending_json(app: &App, e: &Escalation, sessions: &BTreeMap<u64, &SessionState>) -> Value {
    let mut v = escalation_json(e);
    v["session_id"] = json!(e.id.session.to_string());
    if let Some(raised) = app.console.audit.raised(&e.id.to_string()) {
        v["args"] = json!(raised.args);
        v["context"] = json!(raised.context);
        v["reasoning"] = json!(raised.reasoning);
        v["explanation"] = json!(raised.why);
    }
    if let Some(s) = sessions.get(&e.id.session.0) {
        v["session_state"] = session_json(s);
    }
    v
}

fn agents_json(app: &App, p: &Principal, sessions: &[SessionState]) -> Result<Value, ApiError> {
    let table = app.engine.table()?;
    let suspended = app.engine.suspensions()?;
    let pending = app.engine.pending_escalations()?;
    let mut out = Vec::new();
    for a in &table.data().agents {
        let open: Vec<&SessionState> = sessions
            .iter()
            .filter(|s| s.agent == a.name && !s.closed)
            .collect();
        let limits: Vec<Value> = a
            .limits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let used = open
                    .iter()
                    .filter_map(|s| s.limits.get(i).map(|u| u.used))
                    .max()
                    .unwrap_or(0);
                json!({ "limit": l.to_string(), "count": l.count, "most_used": used })
            })
            .collect();
        let tripped = suspended
            .tripped
            .iter()
            .find(|(agent, _)| *agent == a.name)
            .map(|(_, def)| def.clone());
        let killed = suspended.killed.contains(&a.name);
        out.push(json!({
            "name": a.name,
            "owner": a.owner,
            "mode": a.mode,
            "suspended": suspended.kill_all || killed || tripped.is_some(),
            "killed": killed,
            "breakers": a.breakers.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            "tripped": tripped,
            "trips": app.console.audit.trips(&a.name),
            "limits": limits,
            "open_sessions": open.len(),
            "pending": pending.iter().filter(|e| e.agent == a.name).count(),
            "can_control": p.role == Role::Operator && p.agents.allows(&a.name),
        }));
    }
    Ok(json!({
        "kill_all": suspended.kill_all,
        "can_control_all": p.role == Role::Operator && p.agents.is_all(),
        "list": out,
    }))
}

/// Everything the page shows, newest escalation first; `304` when it has not changed
/// since the ETag the page sent.
async fn state(
    State(app): State<Shared>,
    headers: HeaderMap,
    filter: Result<Query<RouteFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let s = app.console_session(&headers, "GET /console/api/state")?;
    let p = &s.principal;
    let filter = query(filter)?;
    let reader = Arc::clone(&app);
    off_the_workers(move || reader.console.audit.refresh())
        .await
        .map_err(|why| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "audit_unreadable", why))?;
    let table = app.engine.table()?;
    let policy = &table.data().policy;
    let sessions = app.engine.sessions()?;
    let by_id: BTreeMap<u64, &SessionState> = sessions.iter().map(|s| (s.id.0, s)).collect();
    let mut pending: Vec<Escalation> = app
        .engine
        .pending_escalations()?
        .into_iter()
        .filter(|e| sees_route(p, &e.routes))
        .filter(|e| {
            filter
                .route
                .as_ref()
                .is_none_or(|r| e.routes.iter().any(|x| x == r))
        })
        .collect();
    pending.sort_by(|a, b| b.raised_ms.cmp(&a.raised_ms).then(b.id.cmp(&a.id)));
    let escalations: Vec<Value> = pending
        .iter()
        .map(|e| pending_json(&app, e, &by_id))
        .collect();
    let resolved: Vec<Value> = app
        .console
        .audit
        .resolved()
        .into_iter()
        .filter(|r| {
            let routes: Vec<String> =
                serde_json::from_value(r["routes"].clone()).unwrap_or_default();
            sees_route(p, &routes)
                && filter
                    .route
                    .as_ref()
                    .is_none_or(|f| routes.iter().any(|x| x == f))
        })
        .collect();
    let body = json!({
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "source_hash": table.source_hash().to_string(),
            "matrix": super::matrix::current(&app),
        },
        "audit": app.console.audit.available(),
        "escalations": escalations,
        "resolved": resolved,
        "agents": agents_json(&app, p, &sessions)?,
    });
    let tag = format!(
        "\"{}\"",
        Sha256::digest(body.to_string().as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default();
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    if let Ok(v) = HeaderValue::from_str(&now) {
        h.insert("x-server-time-ms", v);
    }
    Ok(response)
}

/// One session's audit trail: its latest records in log order. Auditors see every
/// session; an operator those of its agents, or with an escalation on one of its routes.
async fn trail(
    State(app): State<Shared>,
    headers: HeaderMap,
    session: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let what = "GET /console/api/sessions/{session}/audit";
    let s = app.console_session(&headers, what)?;
    let p = &s.principal;
    let id = parse_session(&path(session)?)?;
    let state = app.engine.session(id).ok();
    let allowed = match (&state, p.role) {
        (None, _) => false,
        (Some(_), Role::Auditor) => true,
        (Some(st), _) => {
            p.agents.allows(&st.agent)
                || app
                    .engine
                    .pending_escalations()?
                    .iter()
                    .any(|e| e.id.session == id && e.routes.iter().any(|r| p.routes.allows(r)))
        }
    };
    let Some(state) = state.filter(|_| allowed) else {
        return Err(app.forbid(
            p,
            what,
            "no such session within the token's scope (its agents, or its routes' escalations)",
        ));
    };
    let reader = Arc::clone(&app);
    let (records, total) = off_the_workers(move || reader.console.audit.trail(id.0))
        .await
        .map_err(|why| ApiError::new(StatusCode::NOT_FOUND, "no_audit_log", why))?;
    Ok(Json(json!({
        "session": session_json(&state),
        "agent": state.agent,
        "records": records,
        "total": total,
    })))
}

async fn resolve(
    app: Shared,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
    resolution: Resolution,
) -> Result<Json<Value>, ApiError> {
    let what = match resolution {
        Resolution::Approve => "POST /console/api/escalations/{id}/approve",
        _ => "POST /console/api/escalations/{id}/reject",
    };
    let s = app.console_actor(&headers, what)?;
    let id = parse_escalation(&path(id)?)?;
    resolve_as(app, s.principal, what, id, body, resolution)
        .await
        .map(Json)
}

async fn approve(
    State(app): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    resolve(app, headers, id, body, Resolution::Approve).await
}

async fn reject(
    State(app): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    resolve(app, headers, id, body, Resolution::Reject).await
}

async fn kill(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let what = "POST /console/api/kill";
    let s = app.console_actor(&headers, what)?;
    switch_as(app, s.principal, what, body, true)
        .await
        .map(Json)
}

async fn resume(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let what = "POST /console/api/resume";
    let s = app.console_actor(&headers, what)?;
    switch_as(app, s.principal, what, body, false)
        .await
        .map(Json)
}
