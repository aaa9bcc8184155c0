//! The operator and auditor surface, and the probes: escalations (list, get, approve,
//! reject, the agent's long-poll wait), the kill switch, breaker resets, reloading the
//! table, status, metrics, `/healthz` and `/readyz`. Who may do what is decided here,
//! before the engine is asked; every refusal is audited by [`crate::App::forbid`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use agentpolicy_runtime::engine::{CallRef, Escalation, Resolution};

use crate::auth::{Principal, Role};
use crate::handlers::{blocking, parse_session};
use crate::reply::{ApiError, json_body, path, query};
use crate::waiters::Done;
use crate::{App, OPENAPI, Shared};

/// The longest resolution reason taken, in bytes.
const MAX_REASON: usize = 2048;

const ANYONE: &[Role] = &[Role::Agent, Role::Operator, Role::Auditor];
const READERS: &[Role] = &[Role::Operator, Role::Auditor];

/// `s3:2` (session `s3`, call 2).
pub(crate) fn parse_escalation(text: &str) -> Result<CallRef, ApiError> {
    let (session, n) = text.split_once(':').ok_or_else(|| {
        ApiError::bad_request(format!("`{text}` is not an escalation id like `s3:2`"))
    })?;
    let n = n.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!("`{text}` is not an escalation id like `s3:2`"))
    })?;
    Ok(CallRef {
        session: parse_session(session)?,
        n,
    })
}

pub(crate) fn escalation_json(e: &Escalation) -> Value {
    json!({
        "id": e.id.to_string(),
        "status": "pending",
        "session": e.session,
        "agent": e.agent,
        "tool": e.tool,
        "rule": e.rule,
        "routes": e.routes,
        "notify": e.notify,
        "raised_ms": e.raised_ms,
        "deadline_ms": e.deadline_ms,
        "timeout_outcome": e.timeout_outcome.keyword(),
        "table": e.table.to_string(),
    })
}

fn done_json(id: CallRef, d: &Done) -> Value {
    json!({
        "id": id.to_string(),
        "status": "resolved",
        "agent": d.agent,
        "routes": d.routes,
        "outcome": d.outcome.keyword(),
        "resolution": d.resolution,
        "why": d.why,
    })
}

/// An escalation pending or resolved, by id.
enum Found {
    Pending(Escalation),
    Resolved(Done),
}

impl Found {
    fn agent(&self) -> &str {
        match self {
            Found::Pending(e) => &e.agent,
            Found::Resolved(d) => &d.agent,
        }
    }

    fn routes(&self) -> &[String] {
        match self {
            Found::Pending(e) => &e.routes,
            Found::Resolved(d) => &d.routes,
        }
    }

    fn json(&self, id: CallRef) -> Value {
        match self {
            Found::Pending(e) => escalation_json(e),
            Found::Resolved(d) => done_json(id, d),
        }
    }
}

impl App {
    fn find_escalation(&self, id: CallRef) -> Result<Option<Found>, ApiError> {
        if let Some(e) = self
            .engine
            .pending_escalations()?
            .into_iter()
            .find(|e| e.id == id)
        {
            return Ok(Some(Found::Pending(e)));
        }
        Ok(self.waiters.get(id).map(Found::Resolved))
    }

    /// May `who` see this escalation: an agent token for its agents, an operator for
    /// its routes, an auditor always. Unknown ids are refused like others' ids, so a
    /// token cannot probe for them.
    fn may_see(&self, who: &Principal, what: &str, found: Option<&Found>) -> Result<(), ApiError> {
        let allowed = match (who.role, found) {
            (_, None) => false,
            (Role::Auditor, Some(_)) => true,
            (Role::Agent, Some(f)) => who.agents.allows(f.agent()),
            (Role::Operator, Some(f)) => f.routes().iter().any(|r| who.routes.allows(r)),
        };
        if allowed {
            Ok(())
        } else {
            Err(self.forbid(
                who,
                what,
                "no such escalation within the token's scope (agents for agent tokens, routes for operators)",
            ))
        }
    }

    fn may_control(
        &self,
        who: &Principal,
        what: &str,
        agent: Option<&str>,
    ) -> Result<(), ApiError> {
        let ok = match agent {
            Some(a) => who.agents.allows(a),
            None => who.agents.is_all(),
        };
        if ok {
            Ok(())
        } else {
            let why = match agent {
                Some(a) => format!("agent `{a}` is not in the token's scope"),
                None => "acting on every agent needs `agents: [\"*\"]` in the token's scope".into(),
            };
            Err(self.forbid(who, what, &why))
        }
    }
}

pub async fn healthz(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.caller(&headers, "GET /healthz", ANYONE)?;
    Ok(Json(json!({ "status": "ok" })))
}

/// Ready while the audit log takes records (or the service runs without one).
pub async fn readyz(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    app.caller(&headers, "GET /readyz", ANYONE)?;
    if app.closing.load(Ordering::SeqCst) {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "why": "shutting down" })),
        )
            .into_response());
    }
    if app.engine.shares_state() {
        let engine = Arc::clone(&app.engine);
        let failure = tokio::task::spawn_blocking(move || engine.state_failure())
            .await
            .unwrap_or_else(|e| Some(format!("the probe task failed: {e}")));
        if let Some(why) = failure {
            return Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "why": why })),
            )
                .into_response());
        }
    }
    Ok(match app.engine.audit_failure() {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "why": format!("the audit log cannot be written: {why}") })),
        )
            .into_response(),
        None => Json(json!({ "status": "ready", "audit": app.audit_path.is_some() })).into_response(),
    })
}

pub async fn metrics(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    app.caller(&headers, "GET /metrics", READERS)?;
    let pending = app.engine.pending_escalations()?.len();
    let mut text = app.metrics.render(pending);
    crate::metrics::engine_state(&mut text, &app);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub async fn openapi(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    app.caller(&headers, "GET /v1/openapi.json", ANYONE)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response())
}

pub async fn status(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.caller(&headers, "GET /v1/status", READERS)?;
    let table = app.engine.table()?;
    let policy = &table.data().policy;
    let sessions = app.engine.sessions()?;
    let open = sessions.iter().filter(|s| !s.closed).count();
    let pending = app.engine.pending_escalations()?.len();
    let head = app.engine.audit_head();
    let restored = app.engine.restored();
    Ok(Json(json!({
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "source_hash": table.source_hash().to_string(),
        },
        "agents": table.data().agents.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        "sessions": { "open": open, "total": sessions.len() },
        "pending_escalations": pending,
        "audit": {
            "path": app.audit_path.as_ref().map(|p| p.display().to_string()),
            "head": head.map(|a| json!({ "seq": a.seq, "hash": a.hash.to_string() })),
            "failure": app.engine.audit_failure(),
        },
        "restored": {
            "records": restored.records,
            "sessions": restored.sessions,
            "open_sessions": restored.open_sessions,
            "pending_escalations": restored.pending,
            "kill_all": restored.kill_all,
            "killed": restored.killed,
            "tripped": restored.tripped,
            "skipped": restored.skipped,
        },
        "uptime_ms": u64::try_from(app.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFilter {
    #[serde(default)]
    route: Option<String>,
}

pub async fn list_escalations(
    State(app): State<Shared>,
    headers: HeaderMap,
    filter: Result<Query<RouteFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = app.caller(&headers, "GET /v1/escalations", READERS)?;
    let filter = query(filter)?;
    let pending = app.engine.pending_escalations()?;
    let listed: Vec<Value> = pending
        .iter()
        .filter(|e| {
            filter
                .route
                .as_ref()
                .is_none_or(|r| e.routes.iter().any(|x| x == r))
        })
        // An operator sees the escalations it may resolve.
        .filter(|e| who.role == Role::Auditor || e.routes.iter().any(|r| who.routes.allows(r)))
        .map(escalation_json)
        .collect();
    Ok(Json(json!({ "escalations": listed })))
}

pub async fn get_escalation(
    State(app): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let what = "GET /v1/escalations/{id}";
    let who = app.caller(&headers, what, ANYONE)?;
    let id = parse_escalation(&path(id)?)?;
    let found = app.find_escalation(id)?;
    app.may_see(&who, what, found.as_ref())?;
    found
        .map(|f| Json(f.json(id)))
        .ok_or_else(|| ApiError::not_found(format!("no escalation {id}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    reason: String,
}

async fn resolve(
    app: Shared,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
    resolution: Resolution,
) -> Result<Json<Value>, ApiError> {
    let what = match resolution {
        Resolution::Approve => "POST /v1/escalations/{id}/approve",
        _ => "POST /v1/escalations/{id}/reject",
    };
    // Only operators resolve: an agent token cannot approve anything, its own
    // escalations included.
    let who = app.caller(&headers, what, &[Role::Operator])?;
    let id = parse_escalation(&path(id)?)?;
    resolve_as(app, who, what, id, body, resolution)
        .await
        .map(Json)
}

/// Resolves escalation `id` as operator `who` (the API's and the console's path):
/// its route must be in the token's scope, and the body must give a reason.
pub(crate) async fn resolve_as(
    app: Shared,
    who: Principal,
    what: &'static str,
    id: CallRef,
    body: Body,
    resolution: Resolution,
) -> Result<Value, ApiError> {
    let found = app.find_escalation(id)?;
    app.may_see(&who, what, found.as_ref())?;
    if let Some(Found::Resolved(_)) = found {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_resolved",
            format!("escalation {id} is already resolved"),
        ));
    }
    let body: ResolveBody = json_body(body, app.limits.body_bytes).await?;
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::bad_request("`reason`: required, and not blank"));
    }
    if reason.len() > MAX_REASON {
        return Err(ApiError::bad_request(format!(
            "`reason`: longer than {MAX_REASON} bytes"
        )));
    }
    let app2 = Arc::clone(&app);
    blocking(&app, move || {
        let r = app2
            .engine
            .resolve_with_reason(id, resolution, &who.name, &reason)?;
        app2.waiters.detail(id, r.resolution.keyword(), &r.why);
        Ok(json!({
            "id": id.to_string(),
            "status": "resolved",
            "resolution": r.resolution.keyword(),
            "outcome": r.outcome.keyword(),
            "why": r.why,
            "by": who.name,
            "audit": r.audit.map(|a| json!({ "seq": a.seq, "hash": a.hash.to_string() })),
        }))
    })
    .await
}

pub async fn approve(
    State(app): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    resolve(app, headers, id, body, Resolution::Approve).await
}

pub async fn reject(
    State(app): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    resolve(app, headers, id, body, Resolution::Reject).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Holds the request until the escalation is resolved or `timeout_ms` (at most the
/// configured maximum) passes; then answers its state.
pub async fn wait(
    State(app): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let what = "GET /v1/escalations/{id}/wait";
    let who = app.caller(&headers, what, &[Role::Agent, Role::Operator])?;
    let q = query(q)?;
    let id = parse_escalation(&path(id)?)?;
    let found = app.find_escalation(id)?;
    app.may_see(&who, what, found.as_ref())?;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(30_000)).min(app.limits.max_wait);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = app.waiters.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(done) = app.waiters.get(id) {
            return Ok(Json(done_json(id, &done)));
        }
        let pending = app
            .engine
            .pending_escalations()?
            .into_iter()
            .find(|e| e.id == id);
        let Some(pending) = pending else {
            return Err(ApiError::not_found(format!("no escalation {id}")));
        };
        if app.closing.load(Ordering::SeqCst)
            || tokio::time::timeout_at(deadline, notified).await.is_err()
        {
            return Ok(Json(escalation_json(&pending)));
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    #[serde(default)]
    agent: Option<String>,
}

async fn switch(
    app: Shared,
    headers: HeaderMap,
    body: Body,
    kill: bool,
) -> Result<Json<Value>, ApiError> {
    let what = if kill {
        "POST /v1/kill"
    } else {
        "POST /v1/resume"
    };
    let who = app.caller(&headers, what, &[Role::Operator])?;
    switch_as(app, who, what, body, kill).await.map(Json)
}

/// The kill switch (or its release) as operator `who`, for one agent in the token's
/// scope or, with `agents: ["*"]`, every agent: the API's and the console's path.
pub(crate) async fn switch_as(
    app: Shared,
    who: Principal,
    what: &'static str,
    body: Body,
    kill: bool,
) -> Result<Value, ApiError> {
    let body: AgentBody = json_body(body, app.limits.body_bytes).await?;
    app.may_control(&who, what, body.agent.as_deref())?;
    let engine = Arc::clone(&app.engine);
    blocking(&app, move || {
        let ack = match (&body.agent, kill) {
            (Some(a), true) => engine.kill_agent(a, &who.name)?,
            (Some(a), false) => engine.resume_agent(a, &who.name)?,
            (None, true) => engine.kill_all(&who.name)?,
            (None, false) => engine.resume_all(&who.name)?,
        };
        Ok(json!({
            "agent": body.agent,
            "suspended": kill,
            "by": who.name,
            "audit": ack.map(|a| json!({ "seq": a.seq, "hash": a.hash.to_string() })),
        }))
    })
    .await
}

pub async fn kill(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    switch(app, headers, body, true).await
}

pub async fn resume(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    switch(app, headers, body, false).await
}

pub async fn reset_breaker(
    State(app): State<Shared>,
    headers: HeaderMap,
    agent: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let what = "POST /v1/breakers/{agent}/reset";
    let who = app.caller(&headers, what, &[Role::Operator])?;
    let agent = path(agent)?;
    app.may_control(&who, what, Some(&agent))?;
    let engine = Arc::clone(&app.engine);
    blocking(&app, move || {
        let ack = engine.reset_breaker(&agent, &who.name)?;
        Ok(Json(json!({
            "agent": agent,
            "reset": true,
            "by": who.name,
            "audit": ack.map(|a| json!({ "seq": a.seq, "hash": a.hash.to_string() })),
        })))
    })
    .await
}

/// Builds the table anew from its file or policy and swaps it in; an invalid one is
/// refused (422, audited) and the old table keeps serving.
pub async fn reload(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let what = "POST /v1/reload";
    let who = app.caller(&headers, what, &[Role::Operator])?;
    app.may_control(&who, what, None)?;
    let app2 = Arc::clone(&app);
    blocking(&app, move || {
        let swapped = app2.reload_table(&who.name, what, false)?;
        Ok(Json(json!({
            "old": swapped.old.to_string(),
            "new": swapped.new.to_string(),
            "swapped": swapped.swapped,
            "by": who.name,
        })))
    })
    .await
}

/// A reload: the hashes before and after, and whether the table was replaced.
#[derive(Debug, Clone, Copy)]
pub struct Swapped {
    pub old: agentpolicy_runtime::ContentHash,
    pub new: agentpolicy_runtime::ContentHash,
    /// False when the new table is the one in force and `only_if_changed` was asked.
    pub swapped: bool,
}

impl App {
    /// Builds the table anew from its source and swaps it in after it validated; an
    /// invalid one is refused (audited as a `refusal` by `by`) and the old one keeps
    /// serving. With `only_if_changed`, a table with the hash in force is left alone
    /// (a file watcher seeing a touch).
    pub(crate) fn reload_table(
        &self,
        by: &str,
        what: &str,
        only_if_changed: bool,
    ) -> Result<Swapped, ApiError> {
        let table = match (self.reload)() {
            Ok(t) => t,
            Err(why) => {
                let _ = self.engine.record_refusal(
                    by,
                    what,
                    &format!("the new table is not valid: {why}"),
                );
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_table",
                    format!("reload refused, the old table keeps serving: {why}"),
                ));
            }
        };
        let new = table.source_hash();
        let current = self.engine.table_hash();
        if only_if_changed && new == current {
            return Ok(Swapped {
                old: current,
                new,
                swapped: false,
            });
        }
        let old = self.engine.swap_table(table, by)?;
        Ok(Swapped {
            old,
            new,
            swapped: true,
        })
    }

    /// Another replica started on, or swapped to, the table `hash`: this one builds its
    /// own source again and swaps when that gives the same table. Otherwise it keeps
    /// its table, and its decisions are denied until the replicas agree
    /// (`docs/scaling.md`).
    pub(crate) fn follow_table(&self, hash: &str) {
        if self.engine.table_hash().to_string() == hash {
            return;
        }
        if let Ok(table) = (self.reload)()
            && table.source_hash().to_string() == hash
        {
            let _ = self.engine.swap_table(
                table,
                "replica sync (the table in force on the shared state)",
            );
        }
    }
}
