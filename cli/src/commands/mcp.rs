//! `agentpolicy mcp (--policy DIR | --table TABLE) --agent NAME [--audit LOG] [--queue
//! DIR] [--listen ADDR --token-file FILE] -- UPSTREAM...`: the MCP gateway
//! (`agentpolicy-mcp`, `docs/mcp.md`) over stdio, or streamable HTTP with `--listen`;
//! with `--service URL --service-token-file FILE` it decides through a running
//! `agentpolicy serve` instead of an embedded engine;
//! `agentpolicy mcp init -- UPSTREAM...`: a starting policy from a server's tools;
//! `agentpolicy mcp resolve QUEUE CALL approve|reject --by NAME`: an operator's answer
//! to an escalated call waiting in a gateway's queue folder. This module reads the
//! arguments and files, builds the engine, and maps failures to exit codes; stdout
//! belongs to the MCP client, so everything else goes to stderr.
//!
//! Exit 0 when the client disconnected; 1 when the policy has errors or the upstreams'
//! tools do not fit it; 2 on usage or IO errors (an upstream that cannot start).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agentpolicy_mcp::escalation::{QueueAnswer, write_answer};
use agentpolicy_mcp::http::HttpConfig;
use agentpolicy_mcp::service::{ServiceClient, ServiceConfig};
use agentpolicy_mcp::upstream::{add_header, set_bearer};
use agentpolicy_mcp::{Backend, GatewayConfig, Resolutions, Secret, UpstreamSpec, parse_upstreams};
use agentpolicy_runtime::DecisionTable;
use agentpolicy_runtime::audit::{AuditLog, Durability, read_records};
use agentpolicy_runtime::engine::{Engine, EngineConfig, Resolution, SystemClock};

use super::serve::AuditDurability;
use super::table_input::{load_table_or_policy, with_sets};
use super::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct McpArgs {
    #[command(subcommand)]
    pub action: Option<McpAction>,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum McpAction {
    /// Connect to an MCP server, read its tools and write a starting policy: every tool
    /// declared with typed parameters, effects guessed from its annotations (marked
    /// REVIEW), one agent granted the read-only tools.
    Init(InitArgs),
    /// Answer an escalated call waiting in a gateway's queue folder.
    Resolve(ResolveArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["table", "policy"])))]
pub struct GatewayArgs {
    /// A decision table from `agentpolicy build` (binary or JSON).
    #[arg(long, value_name = "TABLE")]
    pub table: Option<PathBuf>,
    /// A policy (a `.agentpolicy` file or a directory), compiled at start.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// The policy agent the MCP client acts as.
    #[arg(long, value_name = "NAME", required = true)]
    pub agent: Option<String>,
    /// The engine's audit log (an existing log's chain is continued, its state restored).
    #[arg(long, value_name = "LOG")]
    pub audit: Option<PathBuf>,
    /// When the audit log acknowledges a record: `fsync` (the default) or `os-buffered`.
    #[arg(long, value_enum, value_name = "MODE", requires = "audit")]
    pub durability: Option<AuditDurability>,
    /// Members of the policy's `from deploy` sets (JSON).
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
    /// The queue folder: each escalated call waits there as `sN-M.json` until
    /// `agentpolicy mcp resolve` answers it or its route times out.
    #[arg(long, value_name = "DIR")]
    pub queue: Option<PathBuf>,
    /// Serve the MCP client over streamable HTTP at `http://ADDR/mcp` instead of stdio
    /// (`PORT` alone means 127.0.0.1:PORT; port 0 picks a free one). Needs --token-file.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    pub listen: Option<String>,
    /// The bearer token HTTP clients must send (`Authorization: Bearer TOKEN`): the
    /// file's first line, at least 16 characters.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub token_file: Option<PathBuf>,
    /// Decide through a running `agentpolicy serve` at this URL (`http://HOST:PORT`)
    /// instead of an embedded engine: sessions, decisions, escalations (its queue, its
    /// operators), results and the audit log are the service's. The policy given with
    /// --policy/--table only maps and filters the tools. Needs --service-token-file.
    #[arg(long, value_name = "URL", requires = "service_token_file", conflicts_with_all = ["audit", "durability", "queue", "listen", "sets"])]
    pub service: Option<String>,
    /// The service's agent token (`role: agent`, scoped to --agent): the file's first
    /// line. Never on the command line.
    #[arg(long, value_name = "FILE", requires = "service")]
    pub service_token_file: Option<PathBuf>,
    /// The bound on each request to the service (a long-poll wait on an escalation
    /// gets this on top of its 25 s hold); a call the service does not decide in time
    /// is denied.
    #[arg(long, value_name = "MS", requires = "service", default_value_t = agentpolicy_mcp::service::DEFAULT_TIMEOUT_MS)]
    pub service_timeout_ms: u64,
    /// The largest HTTP request body accepted (413 past it).
    #[arg(long, value_name = "BYTES", requires = "listen", default_value_t = agentpolicy_mcp::http::DEFAULT_MAX_BODY_BYTES)]
    pub max_body: usize,
    /// The most MCP sessions open at once over HTTP.
    #[arg(long, value_name = "N", requires = "listen", default_value_t = agentpolicy_mcp::http::DEFAULT_MAX_SESSIONS)]
    pub max_sessions: usize,
    /// A header for an HTTP upstream, `[UPSTREAM=]NAME: VALUE`; `${VAR}` in the value is
    /// read from the environment (keep secrets off the command line). Repeatable.
    #[arg(long, value_name = "HEADER")]
    pub upstream_header: Vec<String>,
    /// The bearer token for an HTTP upstream, `[UPSTREAM=]FILE`: the file's first line
    /// is sent as `Authorization: Bearer TOKEN`. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub upstream_bearer_file: Vec<String>,
    /// The upstream MCP servers: `[NAME=]COMMAND ARG...` or `[NAME=]URL` (streamable
    /// HTTP), several separated by `--` (then each named; their tools are namespaced
    /// `NAME__TOOL`).
    #[arg(last = true, value_name = "UPSTREAM")]
    pub upstream: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Write the policy here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A header for an HTTP upstream, as for the gateway. Repeatable.
    #[arg(long, value_name = "HEADER")]
    pub upstream_header: Vec<String>,
    /// The bearer token for an HTTP upstream, as for the gateway. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub upstream_bearer_file: Vec<String>,
    /// The MCP server(s): `[NAME=]COMMAND ARG...` or `[NAME=]URL`, several separated by
    /// `--`.
    #[arg(last = true, required = true, value_name = "UPSTREAM")]
    pub upstream: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Answer {
    Approve,
    Reject,
}

#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The gateway's `--queue` folder.
    pub queue: PathBuf,
    /// The call, as its file in the folder is named: `s1-3` (or `s1:3`).
    pub call: String,
    pub answer: Answer,
    /// Who answers (written to the audit record).
    #[arg(long, value_name = "NAME")]
    pub by: String,
    /// Why (written to the audit record).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

pub fn run(args: McpArgs) -> u8 {
    match args.action {
        Some(McpAction::Init(a)) => init(a),
        Some(McpAction::Resolve(a)) => resolve(a),
        None => gateway(args.gateway),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_USAGE
        })
}

/// The upstreams with their headers and bearer tokens; `Err` is printed.
fn upstreams(
    words: &[String],
    headers: &[String],
    bearer_files: &[String],
) -> Result<Vec<UpstreamSpec>, String> {
    let mut specs = parse_upstreams(words)?;
    for text in headers {
        add_header(&mut specs, text, |var| std::env::var(var).ok())
            .map_err(|e| format!("--upstream-header {e}"))?;
    }
    for text in bearer_files {
        let (target, file) = match text.split_once('=') {
            Some((name, file)) if !name.contains('/') => (Some(name), file),
            _ => (None, text.as_str()),
        };
        let token = read_token(std::path::Path::new(file))
            .map_err(|e| format!("--upstream-bearer-file `{text}`: {e}"))?;
        set_bearer(&mut specs, target, Secret(token))
            .map_err(|e| format!("--upstream-bearer-file `{text}`: {e}"))?;
    }
    Ok(specs)
}

/// A token file's first line, trimmed; empty is an error.
fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(format!(
            "`{}` holds no token on its first line",
            path.display()
        ));
    }
    Ok(token)
}

/// `ADDR` or a bare `PORT` (then on 127.0.0.1).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("--listen `{text}`: expected IP:PORT (e.g. 127.0.0.1:8931) or a port"))
}

fn gateway(args: GatewayArgs) -> u8 {
    let upstreams = match upstreams(
        &args.upstream,
        &args.upstream_header,
        &args.upstream_bearer_file,
    ) {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "error: {e}\nusage: agentpolicy mcp --policy DIR --agent NAME -- COMMAND ARG..."
            );
            return EXIT_USAGE;
        }
    };
    let http = match (&args.listen, &args.token_file) {
        (Some(listen), Some(file)) => {
            match listen_address(listen).and_then(|addr| Ok((addr, read_token(file)?))) {
                Ok((listen, token)) => Some(HttpConfig {
                    listen,
                    token: Secret(token),
                    max_body_bytes: args.max_body,
                    max_sessions: args.max_sessions,
                }),
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_USAGE;
                }
            }
        }
        _ => None,
    };
    let source = match (&args.table, &args.policy) {
        (Some(t), _) => t,
        (None, Some(p)) => p,
        (None, None) => return EXIT_USAGE,
    };
    let table = match load_table_or_policy(source) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let table = match with_sets(table, args.sets.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let restore = match &args.audit {
        Some(path) if path.exists() => {
            match std::fs::File::open(path).and_then(|f| read_records(std::io::BufReader::new(f))) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!(
                        "error: cannot restore the state from the audit log `{}`: {e}",
                        path.display()
                    );
                    return EXIT_USAGE;
                }
            }
        }
        _ => Vec::new(),
    };
    let audit = match &args.audit {
        None => None,
        Some(path) => match AuditLog::open(
            path,
            args.durability
                .map_or_else(Durability::default, AuditDurability::durability),
            &SystemClock,
        ) {
            Ok(log) => Some(log),
            Err(e) => {
                eprintln!("error: cannot open the audit log `{}`: {e}", path.display());
                return EXIT_USAGE;
            }
        },
    };
    let agent = args.agent.clone().unwrap_or_default();
    if let (Some(url), Some(file)) = (&args.service, &args.service_token_file) {
        let config = read_token(file).and_then(|token| {
            ServiceClient::new(ServiceConfig {
                url: url.clone(),
                token: Secret(token),
                timeout: std::time::Duration::from_millis(args.service_timeout_ms.max(1)),
            })
            .map_err(|e| e.0)
        });
        let service = match config {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        };
        let config = GatewayConfig {
            agent,
            upstreams,
            queue: None,
            decide_blocks: false,
        };
        return run_gateway(
            Backend::Service(service),
            Arc::new(table),
            None,
            config,
            None,
        );
    }
    let resolutions = Arc::new(Resolutions::default());
    let engine = match Engine::new(
        table,
        EngineConfig {
            audit,
            notify: Some(resolutions.clone()),
            restore,
            ..EngineConfig::default()
        },
    ) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("error: cannot start the engine: {e}");
            return EXIT_USAGE;
        }
    };
    let config = GatewayConfig {
        agent,
        upstreams,
        queue: args.queue,
        decide_blocks: args.audit.is_some()
            && args.durability.is_none_or(|d| d == AuditDurability::Fsync),
    };
    let table = match engine.table() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let code = run_gateway(
        Backend::Engine(Arc::clone(&engine)),
        table,
        Some(resolutions),
        config,
        http,
    );
    if let Ok(engine) = Arc::try_unwrap(engine)
        && let Err(e) = engine.shutdown()
    {
        eprintln!("error: closing the audit log: {e}");
        return EXIT_USAGE;
    }
    code
}

/// Starts the gateway on `backend` and serves until the client leaves (or, over HTTP,
/// until SIGTERM); the exit code.
fn run_gateway(
    backend: Backend,
    table: Arc<DecisionTable>,
    resolutions: Option<Arc<Resolutions>>,
    config: GatewayConfig,
    http: Option<HttpConfig>,
) -> u8 {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let code = runtime.block_on(async {
        if let Backend::Service(service) = &backend
            && let Err(e) = service.check().await
        {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        let resolutions = resolutions.unwrap_or_default();
        let shared = match agentpolicy_mcp::start(backend, table, resolutions, config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return if e.contains("do not fit the policy") || e.contains("has no agent") {
                    EXIT_FAILURE
                } else {
                    EXIT_USAGE
                };
            }
        };
        let served = match http {
            None => agentpolicy_mcp::serve_stdio(shared).await,
            Some(config) => serve_http(shared, config).await,
        };
        match served {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_USAGE
            }
        }
    });
    // Upstream child processes are killed as their transports drop with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// Listens, says where on stderr, and serves until SIGTERM or ctrl-c.
async fn serve_http(
    shared: Arc<agentpolicy_mcp::Shared>,
    config: HttpConfig,
) -> Result<(), String> {
    let listener = agentpolicy_mcp::http::bind(config).await?;
    let addr = listener.local_addr()?;
    eprintln!(
        "agentpolicy mcp: listening on http://{addr}{}",
        agentpolicy_mcp::http::MCP_PATH
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    listener.serve(shared, stop).await
}

fn init(args: InitArgs) -> u8 {
    let specs = match upstreams(
        &args.upstream,
        &args.upstream_header,
        &args.upstream_bearer_file,
    ) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let command = args.upstream.join(" ");
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let read = runtime.block_on(agentpolicy_mcp::read_tools(specs));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    let (server, tools) = match read {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let text = agentpolicy_mcp::init::starting_policy(&server, &command, &tools);
    match &args.output {
        None => {
            print!("{text}");
            0
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                eprintln!(
                    "wrote {} ({} tools); review every REVIEW line, then `agentpolicy check {}`",
                    path.display(),
                    tools.len(),
                    path.display()
                );
                0
            }
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                EXIT_USAGE
            }
        },
    }
}

fn resolve(args: ResolveArgs) -> u8 {
    let stem = args.call.replace(':', "-");
    let pending = args.queue.join(format!("{stem}.json"));
    if !pending.exists() {
        eprintln!(
            "error: no escalation `{stem}` is waiting in `{}` (no `{}`)",
            args.queue.display(),
            pending.display()
        );
        return EXIT_FAILURE;
    }
    let answer = QueueAnswer {
        resolution: match args.answer {
            Answer::Approve => Resolution::Approve,
            Answer::Reject => Resolution::Reject,
        },
        by: args.by,
        reason: args.reason,
    };
    match write_answer(&args.queue, &stem, &answer) {
        Ok(path) => {
            println!("{}", path.display());
            0
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the answer into `{}`: {e}",
                args.queue.display()
            );
            EXIT_USAGE
        }
    }
}
