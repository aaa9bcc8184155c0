//! `agentpolicy serve (--table TABLE | --policy PATH) [--listen ADDR] [--audit LOG
//! [--durability MODE]] --tokens FILE [--tls-cert PEM --tls-key PEM]`: runs the
//! HTTP/JSON decision service (`agentpolicy-server`, `docs/serve.md`). This module only
//! reads the arguments and files, prints the bound address (`listening on
//! http://ADDR`, or `https://` with TLS, one line, for scripts and tests), waits for
//! SIGTERM or ctrl-c, and maps failures to exit codes.
//!
//! Exit 0 after a clean shutdown (the audit log closed); 1 when the policy has errors;
//! 2 when a file cannot be read (the certificate and key included), the address cannot
//! be bound, or the service fails.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentpolicy_runtime::DecisionTable;
use agentpolicy_runtime::audit::{AuditLog, Durability};
use agentpolicy_runtime::engine::{StateStore, SystemClock};
use agentpolicy_server::console::matrix::SignedMatrix;
use agentpolicy_server::{
    Limits, ListenConfig, RedisSettings, RedisState, Reload, ServeConfig, Service, Tls, TlsError,
    Tokens, Webhooks,
};

use super::table_input::with_sets;
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["table", "policy"])))]
pub struct ServeArgs {
    /// A decision table from `agentpolicy build` (binary or JSON); `POST /v1/reload`
    /// reads it again.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<PathBuf>,
    /// A policy (a `.agentpolicy` file or a directory) compiled at start and again on
    /// `POST /v1/reload`.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// The address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8181")]
    pub listen: SocketAddr,
    /// The engine's audit log (an existing log's chain is continued).
    #[arg(long, value_name = "LOG")]
    pub audit: Option<PathBuf>,
    /// The tokens file: JSON or TOML, SHA-256 hashes of the bearer tokens with each
    /// token's name, role and scope (see docs/serve.md).
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// Members of the policy's `from deploy` sets, bound at start and on every reload.
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
    /// The service's config file (TOML): the webhooks that escalations, their
    /// resolutions and breaker trips are sent to (see docs/serve.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The policy's signed access-control matrix, the page `agentpolicy matrix POLICY
    /// --format html` wrote: the console links it while it signs the table in force
    /// (its source hash is checked at start).
    #[arg(long, value_name = "FILE")]
    pub matrix: Option<PathBuf>,
    /// Reload the table when its file (or a file of the policy, or the sets file)
    /// changes, checked every second. SIGHUP and `POST /v1/reload` reload too; an
    /// invalid table is refused and the old one keeps serving.
    #[arg(long)]
    pub watch: bool,
    /// The most sessions open at once; opening another is refused (429, audited) until
    /// some are closed.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_sessions: usize,
    /// The largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    #[command(flatten)]
    pub arg_limits: super::limits::ArgLimitArgs,
    /// When the audit log acknowledges a record: `fsync` (after it reached the disk,
    /// the default) or `os-buffered` (after `write`, fsynced every second: survives
    /// the process dying, not a power loss).
    #[arg(long, value_enum, value_name = "MODE", requires = "audit")]
    pub durability: Option<AuditDurability>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first);
    /// needs --tls-key.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// The most connections open at once; at the cap the service stops accepting until
    /// one closes (further clients wait in the kernel's backlog).
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// How long a client has to finish the TLS handshake and then to send each request
    /// head, in milliseconds; an idle keep-alive connection is closed after it too.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub header_timeout_ms: u64,
    /// Share sessions, limits, taint and the kill switch with other replicas through
    /// Redis (or Valkey) at this address, `redis://HOST:PORT/DB` (see docs/scaling.md);
    /// without it the state lives in this process.
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,
    /// With --state: the longest one Redis round trip may take, in milliseconds; a step
    /// that gets no answer in time is denied (fail closed).
    #[arg(long, value_name = "MS", default_value_t = 250, requires = "state",
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub state_budget_ms: u64,
    /// With --state: a session unchanged for this many seconds expires from Redis.
    #[arg(long, value_name = "SECONDS", default_value_t = 7 * 24 * 3600, requires = "state",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub state_ttl: u64,
    /// This replica's name, written into every audit record the engine appends (in the
    /// hashed line): 1 to 64 ASCII letters, digits, `.`, `_`, `-`. Required with
    /// --state, where each replica keeps its own audit log; keep it stable across
    /// restarts (a pod or host name). A log holding another replica's records is
    /// refused.
    #[arg(long, value_name = "ID")]
    pub replica_id: Option<agentpolicy_runtime::audit::ReplicaId>,
}

/// `--durability`: the audit log's acknowledgement point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditDurability {
    /// Acknowledge a record once `fdatasync` returned (group commit).
    Fsync,
    /// Acknowledge a record once written to the OS; fsync every second.
    OsBuffered,
}

impl AuditDurability {
    pub(crate) fn durability(self) -> Durability {
        match self {
            AuditDurability::Fsync => Durability::default(),
            AuditDurability::OsBuffered => Durability::OsBuffered {
                fsync_interval: Duration::from_secs(1),
            },
        }
    }
}

/// The certificate and key, read and checked; errors name the file at fault.
fn read_tls(cert: &Path, key: &Path) -> Result<Tls, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| {
            format!(
                "cannot read `{}`: {}",
                path.display(),
                load::describe_io(&e)
            )
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    Tls::from_pem(&cert_pem, &key_pem).map_err(|e| match e {
        TlsError::Certificate(why) => format!("--tls-cert `{}`: {why}", cert.display()),
        TlsError::Key(why) => format!("--tls-key `{}`: {why}", key.display()),
        TlsError::Pair(why) => format!(
            "--tls-cert `{}` with --tls-key `{}`: {why}",
            cert.display(),
            key.display()
        ),
    })
}

/// The matrix page of `--matrix`, read within its size limit; errors name the file.
fn read_matrix(path: &Path) -> Result<SignedMatrix, String> {
    let too_big = std::fs::metadata(path)
        .is_ok_and(|m| m.len() > agentpolicy_server::console::matrix::MAX_MATRIX_BYTES as u64);
    if too_big {
        return Err(format!(
            "--matrix `{}`: larger than the {} bytes accepted",
            path.display(),
            agentpolicy_server::console::matrix::MAX_MATRIX_BYTES
        ));
    }
    let html = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read --matrix `{}`: {}",
            path.display(),
            load::describe_io(&e)
        )
    })?;
    SignedMatrix::from_html(html).map_err(|e| format!("--matrix `{}`: {e}", path.display()))
}

/// Where the table comes from, to build it at start and on every reload.
#[derive(Debug, Clone)]
enum Source {
    Table(PathBuf),
    Policy(PathBuf),
}

fn build(source: &Source, sets: Option<&Path>) -> Result<DecisionTable, String> {
    let table = match source {
        Source::Table(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                format!(
                    "cannot read `{}`: {}",
                    path.display(),
                    load::describe_io(&e)
                )
            })?;
            agentpolicy_runtime::wire::load_table(&bytes)
                .map_err(|e| format!("`{}`: {e}", path.display()))?
        }
        Source::Policy(path) => {
            let policy = load::load(path).map_err(|e| e.to_string())?;
            let diagnostics = policy.diagnostics();
            if diagnostics.iter().any(|d| d.is_error()) {
                return Err(format!(
                    "{} has errors:\n{}",
                    path.display(),
                    agentpolicy::render::human(&diagnostics, &policy.sources, false)
                ));
            }
            policy.table().map_err(|diags| {
                format!(
                    "{} cannot be compiled to a decision table:\n{}",
                    path.display(),
                    agentpolicy::render::human(&diags, &policy.sources, false)
                )
            })?
        }
    };
    with_sets(table, sets)
}

pub fn run(args: ServeArgs) -> u8 {
    let source = match (&args.table, &args.policy) {
        (Some(t), None) => Source::Table(t.clone()),
        (None, Some(p)) => Source::Policy(p.clone()),
        _ => {
            eprintln!("error: give exactly one of --table and --policy");
            return EXIT_USAGE;
        }
    };
    let tls_files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => {
            eprintln!(
                "error: --tls-cert and --tls-key go together: give both to serve HTTPS, or neither for plain HTTP"
            );
            return EXIT_USAGE;
        }
    };
    let table = match build(&source, args.sets.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return match source {
                Source::Policy(_) if !e.starts_with("cannot read") => EXIT_FAILURE,
                _ => EXIT_USAGE,
            };
        }
    };
    let tokens = match std::fs::read_to_string(&args.tokens)
        .map_err(|e| {
            format!(
                "cannot read `{}`: {}",
                args.tokens.display(),
                load::describe_io(&e)
            )
        })
        .and_then(|text| {
            Tokens::parse(&text).map_err(|e| format!("`{}`: {e}", args.tokens.display()))
        }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let webhooks = match &args.config {
        None => None,
        Some(path) => match Webhooks::load(path) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let tls = match tls_files
        .map(|(cert, key)| read_tls(&cert, &key))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let matrix = match &args.matrix {
        None => None,
        Some(path) => match read_matrix(path) {
            Ok(m) => Some((path.clone(), m)),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let listen = ListenConfig {
        tls,
        max_connections: args.max_connections,
        header_timeout: Duration::from_millis(args.header_timeout_ms),
    };
    if args.state.is_some() && args.replica_id.is_none() {
        eprintln!(
            "error: --state needs --replica-id ID: each replica keeps its own audit log, its own hash chain, and the id names the replica in every record so `agentpolicy audit verify|query` can tell the logs apart; use a name unique among the replicas and stable across restarts, e.g. the pod or host name"
        );
        return EXIT_USAGE;
    }
    let state = match &args.state {
        None => None,
        Some(url) => match RedisState::open(
            url,
            RedisSettings {
                budget: Duration::from_millis(args.state_budget_ms),
                ttl: Duration::from_secs(args.state_ttl),
            },
        ) {
            Ok(s) => Some(std::sync::Arc::new(s) as std::sync::Arc<dyn StateStore>),
            Err(e) => {
                eprintln!("error: --state: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let sets = args.sets.clone();
    let reload_source = source.clone();
    let reload: Reload = Box::new(move || build(&reload_source, sets.as_deref()));
    let config = ServeConfig {
        table,
        reload,
        audit: None,
        tokens,
        limits: Limits {
            body_bytes: args.body_limit,
            max_sessions: args.max_sessions,
            args: args.arg_limits.limits(),
            ..Limits::default()
        },
        housekeeping: Duration::from_secs(1),
        webhooks,
        state,
        replica: args.replica_id.clone(),
    };
    let config = match &args.audit {
        None => config,
        Some(path) => match AuditLog::open(
            path,
            args.durability
                .map_or_else(Durability::default, AuditDurability::durability),
            &SystemClock,
        ) {
            Ok(log) => ServeConfig {
                audit: Some(log),
                ..config
            },
            Err(e) => {
                eprintln!("error: cannot open the audit log `{}`: {e}", path.display());
                return EXIT_USAGE;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_USAGE;
        }
    };
    let watched = Watched {
        source: source.clone(),
        sets: args.sets.clone(),
        watch: args.watch,
    };
    match runtime.block_on(serve(config, matrix, args.listen, listen, watched)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}

/// What reloads the table besides the API: SIGHUP always, file changes with `--watch`.
#[derive(Debug, Clone)]
struct Watched {
    source: Source,
    sets: Option<PathBuf>,
    watch: bool,
}

impl Watched {
    /// The files the table is built from, with their modification times and sizes.
    fn fingerprint(&self) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
        let mut files = match &self.source {
            Source::Table(p) => vec![p.clone()],
            Source::Policy(p) => load::policy_files(p).unwrap_or_default(),
        };
        files.extend(self.sets.clone());
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let modified = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (f, modified, len)
            })
            .collect()
    }
}

/// Reloads on a trigger, off the async workers (compiling a policy takes a while), and
/// says what happened on standard error.
async fn reload_now(reloader: &agentpolicy_server::Reloader, by: &'static str, what: &'static str) {
    let r = reloader.clone();
    let done = tokio::task::spawn_blocking(move || r.reload(by, what)).await;
    match done {
        Ok(Ok(Some(message))) => eprintln!("{what}: {message}"),
        Ok(Ok(None)) => {}
        Ok(Err(why)) => eprintln!("warning: {what}: {why}"),
        Err(e) => eprintln!("warning: {what}: the reload task failed: {e}"),
    }
}

/// SIGHUP reloads; with `--watch`, so does a change of the source files.
fn spawn_reloaders(service: &Service, watched: Watched) {
    #[cfg(unix)]
    {
        let reloader = service.reloader();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                reload_now(&reloader, "SIGHUP", "reload on SIGHUP").await;
            }
        });
    }
    if watched.watch {
        let reloader = service.reloader();
        tokio::spawn(async move {
            let mut seen = watched.fingerprint();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = watched.fingerprint();
                if now == seen {
                    continue;
                }
                // Wait for the writer to finish: the same fingerprint a tick later.
                tick.tick().await;
                let settled = watched.fingerprint();
                if settled != now {
                    continue;
                }
                seen = settled;
                reload_now(&reloader, "file-watch", "reload on a file change").await;
            }
        });
    }
}

async fn serve(
    config: ServeConfig,
    matrix: Option<(PathBuf, SignedMatrix)>,
    listen: SocketAddr,
    connections: ListenConfig,
    watched: Watched,
) -> Result<(), String> {
    let mut service = Service::start(config)?;
    if let Some((path, matrix)) = matrix {
        service = service
            .with_matrix(matrix)
            .map_err(|e| format!("--matrix `{}`: {e}", path.display()))?;
    }
    spawn_reloaders(&service, watched);
    let r = service.restored();
    if r.records > 0 {
        eprintln!(
            "restored from the audit log: {} sessions ({} open), {} pending escalations{}{}",
            r.sessions,
            r.open_sessions,
            r.pending,
            if r.kill_all { ", kill switch on" } else { "" },
            if r.killed.is_empty() {
                String::new()
            } else {
                format!(", suspended: {}", r.killed.join(", "))
            }
        );
        for why in &r.skipped {
            eprintln!("warning: not restored: {why}");
        }
    }
    let stop = stop_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut out = std::io::stdout();
    let scheme = if connections.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(out, "listening on {scheme}://{bound}");
    let _ = out.flush();
    service.serve_with(listener, connections, stop).await
}

/// Completes on ctrl-c or, on Unix, SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: `serve` calls it before it prints
/// `listening on`, so a SIGTERM sent the moment a supervisor (or a test) reads that line
/// is a clean shutdown, never the default action that kills the process.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
