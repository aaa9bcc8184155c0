//! `agentpolicy serve`: an HTTP/JSON decision service over the real [`Engine`], for
//! agent frameworks (sessions, decisions, results, waiting on escalations) and
//! operators (resolving escalations, the kill switch, breaker resets, reloading the
//! table, status and metrics). `docs/serve.md` is its guide, `docs/openapi.json` its
//! contract, which a test holds to [`routes`].
//!
//! Every route authenticates a bearer token ([`auth`]); every refusal (401, 403) is
//! written to the engine's audit log as a `refusal` record. Bodies are read under a
//! size limit and parsed strictly; bad input is a 4xx naming the field, never a 5xx.
//! Decisions come only from the engine, which fails closed.
//!
//! Connections are taken by `listen.rs`: plain HTTP/1.1 or HTTPS (rustls on ring, from
//! a PEM certificate and key the caller reads, [`Tls`]), with a cap on open
//! connections and a timeout for the TLS handshake and each request head
//! ([`ListenConfig`]).
//!
//! Must not: link a parser, a solver or a CLI parser (it depends on the runtime only;
//! compiling a policy for a reload is the caller's [`Reload`]); link OpenSSL or aws-lc
//! (TLS is rustls with the ring provider; a tidy test checks it); read the certificate
//! and key files (they arrive as PEM bytes, so the caller names the file in its
//! errors); print (the binary prints the bound address).

pub mod auth;
pub mod console;
mod handlers;
mod listen;
mod metrics;
mod operate;
pub mod redis_state;
mod reply;
mod throttle;
mod waiters;
pub mod webhook;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{MethodRouter, get, post};

use agentpolicy_runtime::DecisionTable;
use agentpolicy_runtime::audit::{AuditLog, read_records};
use agentpolicy_runtime::engine::{Engine, EngineConfig, Notify, SharedEvent};

pub use auth::{Principal, Role, Scope, Tokens, hash_token};
pub use listen::{ListenConfig, MAX_HEAD_BYTES, MAX_HEADERS, Tls, TlsError};
use metrics::Metrics;
pub use redis_state::{RedisSettings, RedisState};
use reply::ApiError;
use waiters::Waiters;
use webhook::Notifier;
pub use webhook::Webhooks;

/// The OpenAPI 3 document of the API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Builds the table again from where it came from (the table file, or the policy
/// compiled anew), for `POST /v1/reload`. An `Err` says why it is not valid; the old
/// table keeps serving.
pub type Reload = Box<dyn Fn() -> Result<DecisionTable, String> + Send + Sync>;

/// Limits on what one request may ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body read, in bytes.
    pub body_bytes: usize,
    /// The longest an escalation wait may hold a request open.
    pub max_wait: Duration,
    /// The most sessions open at once; opening one more is refused (429) until some
    /// are closed.
    pub max_sessions: usize,
    /// A console session ends after this long without a request (the page polls, so
    /// an open page keeps it alive)...
    pub console_idle: Duration,
    /// ...and this long after its login in any case.
    pub console_lifetime: Duration,
    /// The engine's limits on each call's arguments (inside the body limit, which
    /// binds first when it is smaller).
    pub args: agentpolicy_runtime::RequestLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 64 * 1024,
            max_wait: Duration::from_secs(60),
            max_sessions: 100_000,
            console_idle: Duration::from_secs(30 * 60),
            console_lifetime: Duration::from_secs(12 * 60 * 60),
            args: agentpolicy_runtime::RequestLimits::default(),
        }
    }
}

/// How a service runs.
pub struct ServeConfig {
    pub table: DecisionTable,
    pub reload: Reload,
    /// The audit log (`AuditLog::open` continues an existing one); `None` runs without
    /// one (refusals and decisions are then not recorded; `/readyz` and `/v1/status`
    /// say so).
    pub audit: Option<AuditLog>,
    pub tokens: Tokens,
    pub limits: Limits,
    /// How often the engine's background thread times out overdue escalations by the
    /// system clock.
    pub housekeeping: Duration,
    /// Webhooks for escalations and breaker trips; they need the audit log, which is
    /// their outbox.
    pub webhooks: Option<Webhooks>,
    /// State shared with other replicas (`--state redis://…`, [`RedisState`]); `None`
    /// keeps it in this process.
    pub state: Option<Arc<dyn agentpolicy_runtime::engine::StateStore>>,
    /// This replica's id (`--replica-id`), written into every record the engine
    /// appends; a log holding another replica's records is refused.
    pub replica: Option<agentpolicy_runtime::audit::ReplicaId>,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("table", &self.table.source_hash())
            .field("audit", &self.audit.as_ref().map(|l| l.path()))
            .field("tokens", &self.tokens.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The state every handler shares.
pub(crate) struct App {
    pub engine: Arc<Engine>,
    pub tokens: Tokens,
    pub reload: Reload,
    pub metrics: Metrics,
    pub waiters: Arc<Waiters>,
    pub limits: Limits,
    pub audit_path: Option<PathBuf>,
    pub started: Instant,
    /// Set once shutdown began: waits return at once.
    pub closing: AtomicBool,
    pub notifier: std::sync::Mutex<Option<Notifier>>,
    pub refusals: throttle::Throttle,
    /// Engine calls run on the async worker (no fsync to wait for): see
    /// [`handlers::blocking`].
    pub inline: bool,
    /// Sessions open now (restored ones included), against `limits.max_sessions`.
    pub open_sessions: std::sync::atomic::AtomicUsize,
    /// The operator console's sessions and its view of the audit log.
    pub console: console::Console,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

pub(crate) type Shared = Arc<App>;

impl App {
    /// The caller, or a 401 after the refusal was audited.
    pub fn authenticate(&self, headers: &HeaderMap, what: &str) -> Result<Principal, ApiError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let why = match auth::bearer(header) {
            None => "no bearer token",
            Some(token) => match self.tokens.find(token) {
                Some(p) => return Ok(p.clone()),
                None => "unknown token",
            },
        };
        self.metrics.refusal(401);
        self.audit_refusal("anonymous", what, why);
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("{why}: send `Authorization: Bearer TOKEN` with a token from the tokens file"),
        ))
    }

    /// A 403 for `who`, after the refusal was audited.
    pub fn forbid(&self, who: &Principal, what: &str, why: &str) -> ApiError {
        self.refuse(who, what, StatusCode::FORBIDDEN, "forbidden", why)
    }

    /// A refusal of `who` with `status`, after it was audited.
    pub fn refuse(
        &self,
        who: &Principal,
        what: &str,
        status: StatusCode,
        code: &'static str,
        why: &str,
    ) -> ApiError {
        self.metrics.refusal(status.as_u16());
        self.audit_refusal(&who.name, what, why);
        ApiError::new(
            status,
            code,
            format!("token `{}` ({}): {why}", who.name, who.role.keyword()),
        )
    }

    /// Writes the refusal record and waits until it is durable, before the answer goes
    /// out. The wait may be an fsync: on a multi-threaded runtime the worker hands its
    /// other tasks over while it waits (`block_in_place`); elsewhere it simply blocks.
    fn audit_refusal(&self, who: &str, what: &str, why: &str) {
        let summary = match self.refusals.admit(Instant::now(), who, what) {
            throttle::Admit::Held => return,
            throttle::Admit::Write { summary } => summary,
        };
        let write = || {
            if let Some(s) = &summary {
                let _ = self.engine.record_refusal("throttled", "requests", s);
            }
            let _ = self.engine.record_refusal(who, what, why);
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            _ => write(),
        }
    }

    /// The caller, who must have one of `roles`.
    pub fn caller(
        &self,
        headers: &HeaderMap,
        what: &str,
        roles: &[Role],
    ) -> Result<Principal, ApiError> {
        let who = self.authenticate(headers, what)?;
        if !roles.contains(&who.role) {
            let allowed: Vec<&str> = roles.iter().map(|r| r.keyword()).collect();
            let why = format!(
                "role `{}` may not do this (allowed: {})",
                who.role.keyword(),
                allowed.join(", ")
            );
            return Err(self.forbid(&who, what, &why));
        }
        Ok(who)
    }
}

/// Every route the service serves, with its method: the router is built from this
/// list, and a test holds `docs/openapi.json` to it.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    route_table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

fn route_table() -> Vec<(&'static str, &'static str, MethodRouter<Shared>)> {
    use handlers as h;
    use operate as o;
    vec![
        ("GET", "/healthz", get(o::healthz)),
        ("GET", "/readyz", get(o::readyz)),
        ("GET", "/metrics", get(o::metrics)),
        ("GET", "/v1/openapi.json", get(o::openapi)),
        ("GET", "/v1/status", get(o::status)),
        ("POST", "/v1/sessions", post(h::open_session)),
        ("GET", "/v1/sessions/{session}", get(h::session_state)),
        ("POST", "/v1/sessions/{session}/decide", post(h::decide)),
        (
            "POST",
            "/v1/sessions/{session}/calls/{call}/result",
            post(h::report),
        ),
        ("POST", "/v1/sessions/{session}/close", post(h::close)),
        ("POST", "/v1/sessions/{session}/tasks", post(h::new_task)),
        ("GET", "/v1/escalations", get(o::list_escalations)),
        ("GET", "/v1/escalations/{id}", get(o::get_escalation)),
        ("POST", "/v1/escalations/{id}/approve", post(o::approve)),
        ("POST", "/v1/escalations/{id}/reject", post(o::reject)),
        ("GET", "/v1/escalations/{id}/wait", get(o::wait)),
        ("POST", "/v1/kill", post(o::kill)),
        ("POST", "/v1/resume", post(o::resume)),
        ("POST", "/v1/breakers/{agent}/reset", post(o::reset_breaker)),
        ("POST", "/v1/reload", post(o::reload)),
    ]
}

fn router(app: Shared) -> Router {
    let mut router = Router::new();
    for (_, path, method_router) in route_table() {
        router = router.route(path, method_router);
    }
    router
        .merge(console::router())
        .fallback(o_fallback)
        .method_not_allowed_fallback(o_method_not_allowed)
        .with_state(app)
}

/// Unknown routes authenticate too: an anonymous caller learns nothing of the API.
async fn o_fallback(
    axum::extract::State(app): axum::extract::State<Shared>,
    headers: HeaderMap,
) -> ApiError {
    match app.authenticate(&headers, "an unknown route") {
        Err(e) => e,
        Ok(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            "no such route; see /v1/openapi.json",
        ),
    }
}

async fn o_method_not_allowed(
    axum::extract::State(app): axum::extract::State<Shared>,
    headers: HeaderMap,
) -> ApiError {
    match app.authenticate(&headers, "a route with a method it does not take") {
        Err(e) => e,
        Ok(_) => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method; see /v1/openapi.json",
        ),
    }
}

/// Reloads the served table from its source, for a signal (SIGHUP) or a file watcher:
/// the same validation, refusal record and swap as `POST /v1/reload`.
#[derive(Debug, Clone)]
pub struct Reloader(Shared);

impl Reloader {
    /// Reloads as `by`; `Ok(None)` when the source builds the table in force (nothing
    /// to swap), `Ok(Some(message))` after a swap, `Err` (audited) when it is invalid.
    pub fn reload(&self, by: &str, what: &str) -> Result<Option<String>, String> {
        match self.0.reload_table(by, what, true) {
            Ok(s) if !s.swapped => Ok(None),
            Ok(s) => Ok(Some(format!(
                "table swapped: {} replaced by {}",
                s.old, s.new
            ))),
            Err(e) => Err(e.message),
        }
    }
}

/// A started engine with its audit log open, ready to serve.
#[derive(Debug)]
pub struct Service {
    app: Shared,
}

impl Service {
    /// Serves `matrix` on the console's `/console/matrix` while it signs the table in
    /// force; refused when it signs another table than the one the service starts with.
    pub fn with_matrix(self, matrix: console::matrix::SignedMatrix) -> Result<Service, String> {
        let in_force = self
            .app
            .engine
            .table()
            .map_err(|e| format!("cannot read the table in force: {e:?}"))?
            .source_hash()
            .to_string();
        if matrix.source_hash() != in_force {
            return Err(format!(
                "the matrix signs source hash {}, but the table in force has {in_force}: make the matrix of this policy (`agentpolicy matrix POLICY --format html`)",
                matrix.source_hash()
            ));
        }
        let _ = self.app.console.matrix.set(matrix);
        Ok(self)
    }

    /// Opens the audit log (continuing its chain) and starts the engine on the table.
    pub fn start(config: ServeConfig) -> Result<Service, String> {
        let ServeConfig {
            table,
            reload,
            audit,
            tokens,
            limits,
            housekeeping,
            webhooks,
            state,
            replica,
        } = config;
        if webhooks.as_ref().is_some_and(|w| !w.hooks.is_empty()) && audit.is_none() {
            return Err(
                "webhooks need an audit log (--audit): it is their outbox, so a crash loses no notification".into(),
            );
        }
        let audit_path = audit.as_ref().and_then(|l| l.path().map(PathBuf::from));
        // A shared store means a network round trip per step: never on the async workers.
        let inline = state.is_none()
            && audit.as_ref().is_none_or(|l| {
                matches!(
                    l.durability(),
                    agentpolicy_runtime::audit::Durability::OsBuffered { .. }
                )
            });
        // Restart loses nothing: the log an earlier run wrote is the state to resume.
        let restore = match &audit_path {
            None => Vec::new(),
            Some(path) => std::fs::File::open(path)
                .and_then(|f| read_records(std::io::BufReader::new(f)))
                .map_err(|e| {
                    format!(
                        "cannot restore the state from the audit log `{}`: {e}",
                        path.display()
                    )
                })?,
        };
        if let (Some(id), Some(path)) = (&replica, &audit_path)
            && let Some(other) = restore
                .iter()
                .filter_map(|r| r.replica.as_deref())
                .find(|r| *r != id.as_str())
        {
            return Err(format!(
                "the audit log `{}` holds records of replica `{other}`, but this replica is `{id}`: each replica keeps its own log, its own hash chain; give this replica a log of its own (--audit), or start it with --replica-id {other}",
                path.display()
            ));
        }
        let waiters = Arc::new(Waiters::default());
        let notify: Arc<dyn Notify> = waiters.clone();
        let shared = state.clone();
        let engine = Engine::new(
            table,
            EngineConfig {
                audit,
                notify: Some(notify),
                housekeeping: Some(housekeeping),
                restore,
                limits: limits.args,
                state,
                replica,
                ..EngineConfig::default()
            },
        )
        .map_err(|e| format!("cannot start the engine: {e}"))?;
        let open_sessions = engine.restored().open_sessions;
        let engine = Arc::new(engine);
        let notifier = match (webhooks, &audit_path) {
            (Some(w), Some(path)) if !w.hooks.is_empty() => {
                Some(Notifier::start(w, path, Arc::clone(&engine))?)
            }
            _ => None,
        };
        let console = console::Console::new(&limits, audit_path.clone());
        let service = Service {
            app: Arc::new(App {
                console,
                engine,
                tokens,
                reload,
                metrics: Metrics::default(),
                waiters,
                limits,
                audit_path,
                started: Instant::now(),
                closing: AtomicBool::new(false),
                notifier: std::sync::Mutex::new(notifier),
                refusals: throttle::Throttle::default(),
                open_sessions: std::sync::atomic::AtomicUsize::new(open_sessions),
                inline,
            }),
        };
        if let Some(store) = shared {
            let app = Arc::downgrade(&service.app);
            store
                .watch(Box::new(move |event| {
                    let Some(app) = app.upgrade() else {
                        return false;
                    };
                    match event {
                        Some(SharedEvent::Table(hash)) => app.follow_table(&hash),
                        Some(e) => {
                            for r in app.engine.on_shared_event(&e) {
                                app.waiters
                                    .detail(r.escalation.id, r.resolution.keyword(), &r.why);
                            }
                        }
                        None => {}
                    }
                    !app.closing.load(std::sync::atomic::Ordering::SeqCst)
                }))
                .map_err(|e| format!("cannot watch the shared state's events: {e}"))?;
        }
        Ok(service)
    }

    /// A handle to reload the table, for signals and file watchers.
    pub fn reloader(&self) -> Reloader {
        Reloader(Arc::clone(&self.app))
    }

    /// What the engine rebuilt from the audit log when it started.
    pub fn restored(&self) -> &agentpolicy_runtime::engine::Restored {
        self.app.engine.restored()
    }

    /// Serves plain HTTP on `listener` with the default [`ListenConfig`] until
    /// `shutdown` completes; see [`Service::serve_with`].
    pub async fn serve<F>(
        self,
        listener: tokio::net::TcpListener,
        shutdown: F,
    ) -> Result<(), String>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.serve_with(listener, ListenConfig::default(), shutdown)
            .await
    }

    /// Serves on `listener` as `listen` says (TLS, the connection cap, the head
    /// timeout) until `shutdown` completes, then stops taking connections, lets
    /// requests in flight finish (waits on escalations return at once), and closes the
    /// audit log with its `close` record.
    pub async fn serve_with<F>(
        self,
        listener: tokio::net::TcpListener,
        listen: ListenConfig,
        shutdown: F,
    ) -> Result<(), String>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.spawn_timers();
        let app = Arc::clone(&self.app);
        let closing = Arc::clone(&self.app);
        let signal = async move {
            shutdown.await;
            closing.closing.store(true, Ordering::SeqCst);
            closing.waiters.wake_all();
        };
        listen::serve(listener, router(app), listen, signal).await;
        self.close()
    }

    /// Writes the summary of throttled refusals once their second is over, even when no
    /// later refusal comes to carry it.
    fn spawn_timers(&self) {
        let app = Arc::downgrade(&self.app);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { return };
                if let Some(summary) = app.refusals.due(Instant::now()) {
                    let _ = tokio::task::spawn_blocking(move || {
                        let _ = app.engine.record_refusal("throttled", "requests", &summary);
                    })
                    .await;
                }
            }
        });
    }

    /// Closes the audit log: the engine's `close` record, fsynced.
    fn close(self) -> Result<(), String> {
        if let Some(summary) = self
            .app
            .refusals
            .due(Instant::now() + Duration::from_secs(1))
        {
            let _ = self
                .app
                .engine
                .record_refusal("throttled", "requests", &summary);
        }
        if let Ok(mut n) = self.app.notifier.lock()
            && let Some(mut n) = n.take()
        {
            n.stop();
        }
        let App { engine, .. } = match Arc::try_unwrap(self.app) {
            Ok(app) => app,
            // Something still holds the state: dropping the engine closes the log too.
            Err(_) => return Ok(()),
        };
        match Arc::try_unwrap(engine) {
            Ok(engine) => engine
                .shutdown()
                .map_err(|e| format!("closing the audit log: {e}")),
            Err(_) => Ok(()),
        }
    }
}
