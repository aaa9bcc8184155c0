//! `agentpolicy mcp`: a Model Context Protocol gateway. It speaks MCP to its client
//! over stdio or streamable HTTP (through rmcp, the official Rust SDK), fronts one or
//! more upstream MCP servers (stdio child processes or streamable HTTP endpoints), and
//! decides every `tools/call` with the agentpolicy engine in the connection's (or MCP
//! session's) policy session before anything reaches an upstream (`docs/mcp.md`).
//!
//! Modules: `mapping` (MCP names and JSON schemas ↔ policy tools and parameters,
//! checked at start-up), `upstream` (reaching and calling upstreams), `gateway` (the
//! MCP server: list, decide, forward, report), `stdio` (the client's stdio channel,
//! with JSON-RPC parse errors), `http` (the client side over streamable HTTP: bearer
//! token, limits, one policy session per MCP session), `escalation` (elicitation, the
//! queue folder, timeouts), `service` (service mode: a client of `agentpolicy serve`'s
//! HTTP API, which then decides instead of an embedded engine), `remote` (a
//! `tools/call` decided by the service), `init` (a starting policy from a server's
//! tools). It links the runtime only: no compiler, no solver, not the server crate (a
//! tidy test checks it). It prints nothing; the command line reports errors.

pub mod escalation;
pub mod gateway;
pub mod http;
pub mod init;
pub mod mapping;
mod remote;
pub mod service;
pub mod stdio;
pub mod upstream;

use std::path::PathBuf;
use std::sync::Arc;

use agentpolicy_runtime::DecisionTable;
use rmcp::ServiceExt;
use rmcp::model::Tool;

pub use escalation::Resolutions;
pub use gateway::{Backend, Gateway, Shared};
pub use upstream::{Endpoint, Secret, Upstream, UpstreamSpec, parse_upstreams};

use mapping::OfferedTool;

/// How a gateway runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The policy agent the client acts as.
    pub agent: String,
    pub upstreams: Vec<UpstreamSpec>,
    /// Whether a decision waits for the disk (an audit log with `fsync` durability):
    /// then the engine is called off the async workers (`block_in_place`), otherwise
    /// in place, which saves a worker hand-off on every call.
    pub decide_blocks: bool,
    /// The queue folder for escalations (see [`escalation`]); `None`: escalations are
    /// answered by elicitation or by their route's timeout only. Engine mode only.
    pub queue: Option<PathBuf>,
}

/// Starts the upstreams, reads their tools and checks them against `table` (the
/// engine's in engine mode; in service mode the same policy as the service's, used to
/// map and filter only). `Err` lists every problem, one a line.
pub async fn start(
    backend: Backend,
    table: Arc<DecisionTable>,
    resolutions: Arc<Resolutions>,
    config: GatewayConfig,
) -> Result<Arc<Shared>, String> {
    if table.agent_id(&config.agent).is_none() {
        let agents: Vec<&str> = table
            .data()
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        return Err(format!(
            "the policy has no agent `{}` (its agents: {})",
            config.agent,
            agents.join(", ")
        ));
    }
    if let Some(dir) = &config.queue {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the queue folder `{}`: {e}", dir.display()))?;
    }
    let several = config.upstreams.len() > 1;
    let mut upstreams = Vec::new();
    let mut offered = Vec::new();
    let mut listed: Vec<Tool> = Vec::new();
    for (i, spec) in config.upstreams.into_iter().enumerate() {
        let namespace = if several { spec.name.clone() } else { None };
        let up = Upstream::start(spec).await.map_err(|e| e.0)?;
        for tool in up.tools().await.map_err(|e| e.0)? {
            offered.push(OfferedTool {
                upstream: i,
                namespace: namespace.clone(),
                name: tool.name.to_string(),
                input_schema: (*tool.input_schema).clone(),
            });
            listed.push(tool);
        }
        upstreams.push(Arc::new(up));
    }
    let map = mapping::build(&table, &offered).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
        format!(
            "the upstreams' tools do not fit the policy:\n{}",
            lines.join("\n")
        )
    })?;
    let tools = offered
        .iter()
        .zip(listed)
        .map(|(o, mut tool)| {
            tool.name = mapping::mapped_tool_name(o.namespace.as_deref(), &o.name).into();
            tool
        })
        .collect();
    Ok(Arc::new(Shared {
        backend,
        table,
        resolutions,
        upstreams,
        map,
        tools,
        agent: config.agent,
        queue: config.queue,
        decide_blocks: config.decide_blocks,
    }))
}

/// Serves one client over stdin/stdout until it disconnects; closes its session.
pub async fn serve_stdio(shared: Arc<Shared>) -> Result<(), String> {
    let gateway = Gateway::new(shared);
    let service = gateway
        .clone()
        .serve(stdio::ClientStdio::new())
        .await
        .map_err(|e| format!("the MCP client's handshake failed: {e}"))?;
    let ended = service.waiting().await;
    gateway.close().await;
    ended
        .map(|_| ())
        .map_err(|e| format!("the MCP connection failed: {e}"))
}

/// The tools of one server for `mcp init`, with the server's name.
pub async fn read_tools(specs: Vec<UpstreamSpec>) -> Result<(String, Vec<init::InitTool>), String> {
    let several = specs.len() > 1;
    let mut out = Vec::new();
    let mut server = String::new();
    for spec in specs {
        let namespace = if several { spec.name.clone() } else { None };
        let fallback = spec.name.clone().unwrap_or_else(|| "server".to_owned());
        let up = Upstream::start(spec).await.map_err(|e| e.0)?;
        if server.is_empty() {
            server = if several {
                "gateway".to_owned()
            } else {
                up.server_name().unwrap_or(fallback)
            };
        }
        for tool in up.tools().await.map_err(|e| e.0)? {
            let ann = tool.annotations.clone().unwrap_or_default();
            out.push(init::InitTool {
                name: mapping::mapped_tool_name(namespace.as_deref(), &tool.name),
                mcp_name: tool.name.to_string(),
                description: tool.description.as_ref().map(|d| d.to_string()),
                input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
                read_only: ann.read_only_hint,
                destructive: ann.destructive_hint,
                open_world: ann.open_world_hint,
            });
        }
    }
    Ok((server, out))
}
