//! The upstream MCP servers the gateway fronts: how they are named on the command line,
//! started (stdio child processes, through rmcp's client), listed and called. An
//! upstream that exits is started again on the next call that needs it; the call that
//! was under way when it died gets an error, and the gateway stays up.
//!
//! It decides nothing: the gateway calls an upstream only for a call the engine let
//! through.

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::TokioChildProcess;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// One upstream as given on the command line: `[NAME=]COMMAND ARG...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// The name tools are namespaced by when there are several upstreams.
    pub name: Option<String>,
    pub command: Vec<String>,
}

/// Splits the words after the gateway's `--` into upstreams: they are separated by
/// further `--` words, each optionally named by a first word `NAME=COMMAND`. Several
/// upstreams must all be named (their tools are namespaced by the names), with
/// distinct names.
///
/// ```
/// use agentpolicy_mcp::upstream::parse_upstreams;
/// let words: Vec<String> = ["fs=npx", "server", "--", "notes=python3", "notes.py"]
///     .iter().map(|w| w.to_string()).collect();
/// let ups = parse_upstreams(&words).unwrap();
/// assert_eq!(ups[0].name.as_deref(), Some("fs"));
/// assert_eq!(ups[1].command, ["python3", "notes.py"]);
/// ```
pub fn parse_upstreams(words: &[String]) -> Result<Vec<UpstreamSpec>, String> {
    let mut out = Vec::new();
    for group in words.split(|w| w == "--") {
        let Some((first, rest)) = group.split_first() else {
            return Err("an upstream command is empty (between two `--`, or none at all)".into());
        };
        let (name, program) = match first.split_once('=') {
            Some((name, program))
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                (Some(name.to_owned()), program.to_owned())
            }
            _ => (None, first.clone()),
        };
        if program.is_empty() {
            return Err(format!("upstream `{first}` names no command"));
        }
        if program.starts_with("http://") || program.starts_with("https://") {
            return Err(format!(
                "upstream `{program}`: streamable HTTP upstreams are not supported yet; \
                 run the server over stdio (docs/mcp.md)"
            ));
        }
        let mut command = vec![program];
        command.extend(rest.iter().cloned());
        out.push(UpstreamSpec { name, command });
    }
    if out.len() > 1 {
        let mut names = Vec::new();
        for up in &out {
            let Some(name) = &up.name else {
                return Err(format!(
                    "with several upstreams each needs a name for its tools' namespace: \
                     write `NAME={}`",
                    up.command.join(" ")
                ));
            };
            if names.contains(name) {
                return Err(format!("two upstreams are named `{name}`"));
            }
            names.push(name.clone());
        }
    }
    Ok(out)
}

type Client = RunningService<RoleClient, ()>;

/// A running upstream, started again when it has exited.
#[derive(Debug)]
pub struct Upstream {
    pub spec: UpstreamSpec,
    client: Mutex<Option<Arc<Client>>>,
}

/// How a forwarded call failed (the upstream's own tool errors are results, not this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError(pub String);

impl Upstream {
    /// Starts the upstream and completes the MCP handshake.
    pub async fn start(spec: UpstreamSpec) -> Result<Upstream, UpstreamError> {
        let client = connect(&spec).await?;
        Ok(Upstream {
            spec,
            client: Mutex::new(Some(Arc::new(client))),
        })
    }

    fn label(&self) -> String {
        match &self.spec.name {
            Some(n) => format!("upstream `{n}`"),
            None => format!("upstream `{}`", self.spec.command.join(" ")),
        }
    }

    /// The name the server gave in its handshake.
    pub fn server_name(&self) -> Option<String> {
        let slot = self.client.try_lock().ok()?;
        let info = slot.as_ref()?.peer_info()?;
        info.server_info.as_ref().map(|s| s.name.clone())
    }

    /// The running client, started again if the last one exited.
    async fn client(&self) -> Result<Arc<Client>, UpstreamError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_transport_closed()
        {
            return Ok(Arc::clone(c));
        }
        let fresh = Arc::new(connect(&self.spec).await?);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// Every tool the upstream offers (all pages).
    pub async fn tools(&self) -> Result<Vec<Tool>, UpstreamError> {
        let client = self.client().await?;
        client
            .list_all_tools()
            .await
            .map_err(|e| UpstreamError(format!("{}: tools/list failed: {e}", self.label())))
    }

    /// Forwards one call. A protocol error or the upstream exiting is an
    /// [`UpstreamError`]; a tool error is a result with `isError`.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<CallToolResult, UpstreamError> {
        let client = self.client().await?;
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = arguments;
        client
            .call_tool(params)
            .await
            .map_err(|e| UpstreamError(format!("{}: {e}", self.label())))
    }
}

async fn connect(spec: &UpstreamSpec) -> Result<Client, UpstreamError> {
    let label = spec.command.join(" ");
    let Some((program, args)) = spec.command.split_first() else {
        return Err(UpstreamError("an upstream names no command".into()));
    };
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    // The child's stdout is the MCP channel; its stderr goes to the gateway's stderr,
    // never to the gateway's stdout (the client's channel).
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| UpstreamError(format!("cannot start upstream `{label}`: {e}")))?;
    ().serve(transport)
        .await
        .map_err(|e| UpstreamError(format!("upstream `{label}`: the MCP handshake failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn upstreams_are_split_and_named() {
        let one = parse_upstreams(&words("npx -y server-filesystem /tmp")).unwrap_or_default();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, None);
        assert_eq!(one[0].command[0], "npx");
        let two = parse_upstreams(&words("fs=npx a -- notes=python3 n.py")).unwrap_or_default();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].name.as_deref(), Some("notes"));
        assert!(
            parse_upstreams(&words("npx a -- python3 n.py"))
                .is_err_and(|e| e.contains("each needs a name"))
        );
        assert!(parse_upstreams(&words("a=x -- a=y")).is_err_and(|e| e.contains("two upstreams")));
        assert!(parse_upstreams(&[]).is_err());
        assert!(
            parse_upstreams(&words("https://example.invalid/mcp"))
                .is_err_and(|e| e.contains("not supported yet"))
        );
    }
}
