//! The MCP server the client talks to: `tools/list` answers the tools the agent is
//! granted, with the upstreams' descriptions and schemas; `tools/call` builds the
//! engine call from the JSON arguments (through the runtime's wire parsers), decides it
//! in the connection's policy session, and forwards it to the upstream only when the
//! outcome lets it through: at once for Allow, after a human's approval (or a timeout
//! to allow) for Escalate, never for Deny. Results are reported to the engine (errors
//! feed breakers, token counts when the upstream gives them).
//!
//! One gateway value serves one client connection (stdio) or one MCP session
//! (`Mcp-Session-Id`, streamable HTTP), and that is one policy session, opened on
//! `initialize` and closed when the connection or the MCP session ends (the value is
//! dropped).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agentpolicy_runtime::engine::{
    Call, CallRef, CallResult, Engine, Reason, SessionId, SessionOptions, Verdict,
};
use agentpolicy_runtime::wire::request::{arg_or_list, number};
use agentpolicy_runtime::{ArgValue, DecisionTable, Outcome};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequestParams,
    ElicitationAction, Implementation, InitializeRequestParams, InitializeResult, ListToolsResult,
    MetaObject, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, Tool,
};
use rmcp::service::{ElicitationMode, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

use crate::escalation::{self, QueueAnswer, Resolutions};
use crate::mapping::{MappedTool, ToolMap, param_name};
use crate::service::ServiceClient;
use crate::upstream::Upstream;

/// The `_meta` key of a `tools/call` request naming the arguments that came from
/// untrusted content (a list of argument names).
pub const META_UNTRUSTED: &str = "agentpolicy/untrusted";
/// The `_meta` key carrying the agent's reported confidence (0 to 1).
pub const META_CONFIDENCE: &str = "agentpolicy/confidence";
/// The `_meta` key carrying the agent's reasoning, written to the audit record.
pub const META_REASONING: &str = "agentpolicy/reasoning";
/// The `_meta` key of a tool result (from an upstream) with the tokens the call used.
pub const META_TOKENS: &str = "agentpolicy/tokens";
/// The `_meta` key of a refused call's result, with the decision.
pub const META_DECISION: &str = "agentpolicy/decision";

/// What decides the calls: the embedded engine, or a running `agentpolicy serve`
/// reached over its HTTP API ([`crate::service`]).
#[derive(Debug, Clone)]
pub enum Backend {
    Engine(Arc<Engine>),
    Service(Arc<ServiceClient>),
}

/// A connection's policy session: the engine's, or the service's id (`s12`).
#[derive(Debug, Clone)]
enum SessionKey {
    Local(SessionId),
    Remote(String),
}

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub backend: Backend,
    /// The table the mapping and the tool list were built from (in service mode the
    /// service decides with its own table; this one only maps and filters).
    pub table: Arc<DecisionTable>,
    pub resolutions: Arc<Resolutions>,
    pub upstreams: Vec<Arc<Upstream>>,
    pub map: ToolMap,
    /// The upstreams' tools under their mapped names, in the mapping's order.
    pub tools: Vec<Tool>,
    pub agent: String,
    /// The queue folder for escalations, when one is configured.
    pub queue: Option<PathBuf>,
    /// Decisions wait for `fsync` (see [`crate::GatewayConfig::decide_blocks`]).
    pub decide_blocks: bool,
}

impl Shared {
    /// The embedded engine; `None` in service mode.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        match &self.backend {
            Backend::Engine(e) => Some(e),
            Backend::Service(_) => None,
        }
    }
}

/// One client connection or MCP session.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    session: Arc<SessionSlot>,
    client: Arc<Mutex<String>>,
    /// Served over streamable HTTP: only protocol versions with an `initialize` (and so
    /// an MCP session) are offered, since a call without a session would have no
    /// policy session to be decided in.
    over_http: bool,
}

/// The policy session of one connection, closed when the last clone of its gateway is
/// dropped (rmcp drops the handler when the connection or MCP session ends).
#[derive(Debug)]
struct SessionSlot {
    backend: Backend,
    id: tokio::sync::Mutex<Option<SessionKey>>,
    /// The count of live MCP sessions over HTTP, this one included.
    live: Option<Arc<AtomicUsize>>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        match (self.id.get_mut().take(), &self.backend) {
            (Some(SessionKey::Local(id)), Backend::Engine(engine)) => {
                let _ = engine.close_session(id);
            }
            (Some(SessionKey::Remote(id)), Backend::Service(service)) => {
                // Dropped on the runtime (rmcp ends an MCP session there): close the
                // service's session in the background, best effort.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let service = Arc::clone(service);
                    runtime.spawn(async move {
                        let _ = service.close(&id).await;
                    });
                }
            }
            _ => {}
        }
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Gateway {
    /// The gateway for a stdio connection.
    pub fn new(shared: Arc<Shared>) -> Gateway {
        Gateway {
            session: Arc::new(SessionSlot {
                backend: shared.backend.clone(),
                id: tokio::sync::Mutex::new(None),
                live: None,
            }),
            shared,
            client: Arc::new(Mutex::new("mcp-client".to_owned())),
            over_http: false,
        }
    }

    /// The gateway for one MCP session over streamable HTTP, counted in `live` while
    /// it lives.
    pub fn for_http(shared: Arc<Shared>, live: Arc<AtomicUsize>) -> Gateway {
        live.fetch_add(1, Ordering::SeqCst);
        Gateway {
            session: Arc::new(SessionSlot {
                backend: shared.backend.clone(),
                id: tokio::sync::Mutex::new(None),
                live: Some(live),
            }),
            shared,
            client: Arc::new(Mutex::new("mcp-client".to_owned())),
            over_http: true,
        }
    }

    /// The connection's session, opened on first use if `initialize` did not.
    async fn session(&self) -> Result<SessionKey, String> {
        let mut slot = self.session.id.lock().await;
        if let Some(key) = &*slot {
            return Ok(key.clone());
        }
        let client = self.client_name();
        let context = format!("mcp:{client}");
        let key = match &self.shared.backend {
            Backend::Engine(engine) => SessionKey::Local(
                engine
                    .open_session(
                        &self.shared.agent,
                        SessionOptions {
                            name: None,
                            bind: &[],
                            context: Some(&context),
                        },
                    )
                    .map_err(|e| format!("cannot open the policy session: {e}"))?,
            ),
            Backend::Service(service) => SessionKey::Remote(
                service
                    .open_session(&self.shared.agent, &context)
                    .await
                    .map_err(|e| format!("cannot open the policy session: {e}"))?,
            ),
        };
        *slot = Some(key.clone());
        Ok(key)
    }

    pub(crate) fn client_name(&self) -> String {
        self.client
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| "mcp-client".to_owned())
    }

    /// Closes the connection's session (its pending escalations are rejected).
    pub async fn close(&self) {
        let key = self.session.id.lock().await.take();
        match (key, &self.shared.backend) {
            (Some(SessionKey::Local(id)), Backend::Engine(engine)) => {
                let _ = engine.close_session(id);
            }
            (Some(SessionKey::Remote(id)), Backend::Service(service)) => {
                let _ = service.close(&id).await;
            }
            _ => {}
        }
    }

    fn granted_tools(&self) -> Vec<Tool> {
        self.shared
            .tools
            .iter()
            .filter(|t| granted(&self.shared.table, &self.shared.agent, &t.name))
            .cloned()
            .collect()
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        match (self.session().await, &self.shared.backend) {
            (Ok(SessionKey::Local(id)), Backend::Engine(engine)) => {
                let engine = Arc::clone(engine);
                self.call_local(&engine, id, request, context).await
            }
            (Ok(SessionKey::Remote(id)), Backend::Service(service)) => {
                let service = Arc::clone(service);
                // rmcp hands the request's `_meta` to the handler in the context.
                let meta = request
                    .meta
                    .as_ref()
                    .map(|m| m.0.0.clone())
                    .or_else(|| Some(context.meta.0.0.clone()));
                crate::remote::call(self, &service, &id, request, meta).await
            }
            (Err(e), Backend::Service(_)) => refused(
                &format!("denied: {e}"),
                Some(json!({ "outcome": "deny", "reason": "service" })),
            ),
            (Err(e), Backend::Engine(_)) => refused(&format!("denied (internal): {e}"), None),
            _ => refused("denied (internal): a session of another decider", None),
        }
    }

    async fn call_local(
        &self,
        engine: &Arc<Engine>,
        session: SessionId,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let name = request.name.to_string();
        let arguments = request.arguments.clone().unwrap_or_default();
        // rmcp hands the request's `_meta` to the handler in the context.
        let meta = request
            .meta
            .as_ref()
            .map(|m| &m.0.0)
            .or(Some(&context.meta.0.0));
        let mapped = self.shared.map.tools.get(&name);
        let verdict = match decide(
            engine,
            session,
            &name,
            mapped,
            &arguments,
            meta,
            self.shared.decide_blocks,
        ) {
            Ok(v) => v,
            Err(why) => {
                let _ = engine.record_refusal(
                    &format!("mcp:{}", self.client_name()),
                    &format!("tools/call {name}"),
                    &why,
                );
                return refused(&format!("refused: {why}"), None);
            }
        };
        let outcome = match verdict.outcome {
            Outcome::Allow => Outcome::Allow,
            Outcome::Deny => return denied(engine, &name, &verdict),
            Outcome::Escalate => {
                let Some(id) = verdict.escalation else {
                    return denied(engine, &name, &verdict);
                };
                self.escalate(engine, id, &name, &arguments, &context).await
            }
        };
        if outcome != Outcome::Allow {
            return refused(
                &format!(
                    "denied: the escalation of this call to a human ended in deny (rejected, or timed out with the route's timeout outcome); call {}",
                    verdict
                        .escalation
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                ),
                Some(json!({ "outcome": "deny", "reason": "escalation" })),
            );
        }
        let (Some(mapped), Some(call)) = (mapped, verdict.call) else {
            return refused("denied: no upstream offers this tool", None);
        };
        let (result, ok, tokens, latency_ms) = self.run_upstream(mapped, request.arguments).await;
        let _ = engine.report(
            call,
            CallResult {
                ok,
                tokens,
                latency_ms,
            },
        );
        result
    }

    /// Asks the client's user when the client takes form elicitation, and waits in the
    /// queue at the same time (an operator's answer or the route's timeout); the first
    /// resolution wins.
    async fn escalate(
        &self,
        engine: &Arc<Engine>,
        id: CallRef,
        name: &str,
        arguments: &Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Outcome {
        let engine = Arc::clone(engine);
        let pending = engine
            .pending_escalations()
            .ok()
            .and_then(|p| p.into_iter().find(|e| e.id == id));
        if let (Some(dir), Some(e)) = (&self.shared.queue, &pending) {
            escalation::write_pending(dir, e, &Value::Object(arguments.clone()));
        }
        let queue = self.shared.queue.as_deref();
        let wait = escalation::wait(&engine, &self.shared.resolutions, id, queue);
        let elicits = context
            .peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form);
        if !elicits {
            return wait.await;
        }
        let message = match &pending {
            Some(e) => format!(
                "The policy asks a human before agent `{}` calls `{name}` with {}. Rule: {}; routes: {}. Approve this call?",
                e.agent,
                Value::Object(arguments.clone()),
                e.rule.as_deref().unwrap_or("-"),
                e.routes.join(", ")
            ),
            None => format!(
                "Approve the call of `{name}` with {}?",
                Value::Object(arguments.clone())
            ),
        };
        let ask = async {
            let params: Result<ElicitRequestParams, _> = serde_json::from_value(json!({
                "mode": "form",
                "message": message,
                "requestedSchema": {
                    "type": "object",
                    "properties": {
                        "approve": {
                            "type": "boolean",
                            "title": "Approve",
                            "description": "true runs the call; false refuses it"
                        }
                    },
                    "required": ["approve"]
                }
            }));
            let answer = match params {
                Ok(p) => context.peer.create_elicitation(p).await.ok(),
                Err(_) => None,
            };
            let by = format!("mcp-user:{}", self.client_name());
            match answer {
                Some(r) if r.action == ElicitationAction::Accept => {
                    let yes = r
                        .content
                        .as_ref()
                        .and_then(|c| c.get("approve"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let resolution = if yes {
                        agentpolicy_runtime::engine::Resolution::Approve
                    } else {
                        agentpolicy_runtime::engine::Resolution::Reject
                    };
                    escalation::resolve(
                        &engine,
                        id,
                        &QueueAnswer {
                            resolution,
                            by,
                            reason: Some("answered through MCP elicitation".into()),
                        },
                    );
                }
                Some(r) if r.action == ElicitationAction::Decline => {
                    escalation::resolve(
                        &engine,
                        id,
                        &QueueAnswer {
                            resolution: agentpolicy_runtime::engine::Resolution::Reject,
                            by,
                            reason: Some("declined through MCP elicitation".into()),
                        },
                    );
                }
                // Cancelled, or the client failed to ask: the call keeps waiting in
                // the queue until an operator answers or the route times out.
                _ => {}
            }
        };
        tokio::pin!(wait);
        tokio::select! {
            outcome = &mut wait => outcome,
            () = ask => wait.await,
        }
    }

    /// Runs the call on its upstream: the result for the client, and what to report
    /// (ok, tokens, latency in ms).
    pub(crate) async fn run_upstream(
        &self,
        mapped: &MappedTool,
        arguments: Option<Map<String, Value>>,
    ) -> (CallToolResult, bool, u64, u64) {
        let Some(upstream) = self.shared.upstreams.get(mapped.upstream) else {
            return (refused("internal: no such upstream", None), false, 0, 0);
        };
        let started = Instant::now();
        let result = upstream.call(&mapped.upstream_name, arguments).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, tokens) = match &result {
            Ok(r) => (
                r.is_error != Some(true),
                r.meta
                    .as_ref()
                    .and_then(|m| m.0.get(META_TOKENS))
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            ),
            Err(_) => (false, 0),
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                "the upstream failed during the call: {}",
                e.0
            ))]),
        };
        (result, ok, tokens, latency_ms)
    }

    /// The shared state, for the service-mode call ([`crate::remote`]).
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// Whether `tool` is granted to `agent` in `table`.
fn granted(table: &DecisionTable, agent: &str, tool: &str) -> bool {
    match (table.agent_id(agent), table.tool_id(tool)) {
        (Some(a), Some(t)) => table.data().cell(a, t).is_some_and(|c| c.granted),
        _ => false,
    }
}

/// Builds the engine call from the JSON arguments and `_meta`, and decides it.
/// Arguments the policy does not declare are not passed (no rule can read them); a
/// value of the wrong type is an `Err` naming the argument.
fn decide(
    engine: &Engine,
    session: SessionId,
    name: &str,
    mapped: Option<&MappedTool>,
    arguments: &Map<String, Value>,
    meta: Option<&Map<String, Value>>,
    blocks: bool,
) -> Result<Verdict, String> {
    let mut args: Vec<(&str, ArgValue<'_>)> = Vec::new();
    let lists: Vec<(&str, Vec<&str>)> = mapped
        .map(|m| {
            m.params
                .iter()
                .filter_map(|p| {
                    let items = arguments.get(&p.arg)?.as_array()?;
                    let texts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    Some((p.policy.as_str(), texts?))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(m) = mapped {
        for p in &m.params {
            let Some(value) = arguments.get(&p.arg) else {
                continue;
            };
            let list = lists.iter().find(|(n, _)| *n == p.policy).map(|(_, l)| l);
            let arg = arg_or_list(p.ty, value, list).map_err(|expected| {
                format!("argument `{}`: expected {expected}, found {value}", p.arg)
            })?;
            args.push((p.policy.as_str(), arg));
        }
    }
    let untrusted_names: Vec<String> = meta
        .and_then(|m| m.get(META_UNTRUSTED))
        .map(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(param_name).collect())
                .ok_or_else(|| {
                    format!("`_meta.{META_UNTRUSTED}`: expected a list of argument names")
                })
        })
        .transpose()?
        .unwrap_or_default();
    let untrusted: Vec<&str> = untrusted_names.iter().map(String::as_str).collect();
    let policy_name = mapped.map_or(name, |m| m.name.as_str());
    let mut call = Call::new(policy_name).args(&args).untrusted(&untrusted);
    if let Some(conf) = meta.and_then(|m| m.get(META_CONFIDENCE)) {
        let millionths = number(conf).map_err(|expected| {
            format!("`_meta.{META_CONFIDENCE}`: expected {expected}, found {conf}")
        })?;
        call = call.confidence(millionths);
    }
    call.reasoning = meta
        .and_then(|m| m.get(META_REASONING))
        .and_then(Value::as_str);
    Ok(if blocks {
        tokio::task::block_in_place(|| engine.decide(session, &call))
    } else {
        engine.decide(session, &call)
    })
}

/// A call the policy refused, as an MCP tool error: the explanation (rule and why) as
/// text, the decision under `_meta`.
fn denied(engine: &Engine, tool: &str, v: &Verdict) -> CallToolResult {
    let table = engine.table().ok();
    let rule = table.as_ref().and_then(|t| {
        v.decision
            .rule
            .filter(|_| v.reason == Reason::Policy && t.source_hash() == v.table)
            .and_then(|r| t.rule(r))
            .map(|r| r.id.clone())
    });
    let explanation = match (&v.reason, &table) {
        (Reason::Policy, Some(t)) => v.decision.explain(t.data()).to_string(),
        (Reason::Policy, None) => "deny".to_owned(),
        (Reason::Request(e), _) => format!("deny (request): {e}"),
        (Reason::Session(e), _) => format!("deny (session): {e}"),
        (Reason::Internal(e), _) => format!("deny (internal): {e}"),
    };
    let text = match &rule {
        Some(r) => format!("denied by policy (rule {r}): {explanation}"),
        None => format!("denied by policy: {explanation}"),
    };
    refused(
        &text,
        Some(json!({
            "outcome": "deny",
            "reason": v.reason_code(),
            "rule": rule,
            "explanation": explanation,
            "tool": tool,
            "call": v.call.map(|c| c.to_string()),
        })),
    )
}

pub(crate) fn refused(text: &str, decision: Option<Value>) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text.to_owned())]);
    if let Some(d) = decision {
        let mut meta = Map::new();
        meta.insert(META_DECISION.to_owned(), d);
        result.meta = Some(MetaObject(meta));
    }
    result
}

impl ServerHandler for Gateway {
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        if self.over_http {
            Cow::Borrowed(ProtocolVersion::known_up_to(
                &ProtocolVersion::LATEST_WITH_INITIALIZE,
            ))
        } else {
            Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
        }
    }

    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "agentpolicy-mcp",
                env!("CARGO_PKG_VERSION"),
            ))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        if let Ok(mut c) = self.client.lock() {
            *c = format!(
                "{} {}",
                request.client_info.name, request.client_info.version
            );
        }
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request)?;
        match (self.session().await, &self.shared.backend) {
            (Ok(_), _) => {}
            (Err(e), Backend::Engine(_)) => return Err(McpError::internal_error(e, None)),
            // The service may be back by the first call, which opens the session then
            // (or is denied, saying why).
            (Err(_), Backend::Service(_)) => {}
        }
        Ok(result)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        #[expect(
            clippy::field_reassign_with_default,
            reason = "ListToolsResult is non_exhaustive: no struct literal outside rmcp"
        )]
        let result = {
            let mut result = ListToolsResult::default();
            result.tools = self.granted_tools();
            result
        };
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(self.call(request, context).await.into())
    }
}
