//! `agentpolicy mcp (--policy DIR | --table TABLE) --agent NAME [--audit LOG] [--queue
//! DIR] -- UPSTREAM...`: the MCP gateway (`agentpolicy-mcp`, `docs/mcp.md`) over stdio;
//! `agentpolicy mcp init -- UPSTREAM...`: a starting policy from a server's tools;
//! `agentpolicy mcp resolve QUEUE CALL approve|reject --by NAME`: an operator's answer
//! to an escalated call waiting in a gateway's queue folder. This module reads the
//! arguments and files, builds the engine, and maps failures to exit codes; stdout
//! belongs to the MCP client, so everything else goes to stderr.
//!
//! Exit 0 when the client disconnected; 1 when the policy has errors or the upstreams'
//! tools do not fit it; 2 on usage or IO errors (an upstream that cannot start).

use std::path::PathBuf;
use std::sync::Arc;

use agentpolicy_mcp::escalation::{QueueAnswer, write_answer};
use agentpolicy_mcp::{GatewayConfig, Resolutions, parse_upstreams};
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
    /// The upstream MCP servers: `[NAME=]COMMAND ARG...`, several separated by `--`
    /// (then each named; their tools are namespaced `NAME__TOOL`).
    #[arg(last = true, value_name = "UPSTREAM")]
    pub upstream: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Write the policy here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The MCP server(s): `[NAME=]COMMAND ARG...`, several separated by `--`.
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

fn gateway(args: GatewayArgs) -> u8 {
    let upstreams = match parse_upstreams(&args.upstream) {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "error: {e}\nusage: agentpolicy mcp --policy DIR --agent NAME -- COMMAND ARG..."
            );
            return EXIT_USAGE;
        }
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
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let config = GatewayConfig {
        agent: args.agent.unwrap_or_default(),
        upstreams,
        queue: args.queue,
    };
    let code = runtime.block_on(async {
        let shared = match agentpolicy_mcp::start(Arc::clone(&engine), resolutions, config).await {
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
        match agentpolicy_mcp::serve_stdio(shared).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_USAGE
            }
        }
    });
    // Upstream child processes are killed as their transports drop with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    if let Ok(engine) = Arc::try_unwrap(engine)
        && let Err(e) = engine.shutdown()
    {
        eprintln!("error: closing the audit log: {e}");
        return EXIT_USAGE;
    }
    code
}

fn init(args: InitArgs) -> u8 {
    let specs = match parse_upstreams(&args.upstream) {
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
