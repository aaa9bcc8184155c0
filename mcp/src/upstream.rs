//! The upstream MCP servers the gateway fronts: how they are named on the command line,
//! reached (stdio child processes, or streamable HTTP endpoints with optional headers
//! such as a bearer token; both through rmcp's clients), listed and called. An upstream
//! whose process exits or whose connection closes is connected again on the next call
//! that needs it; the call that was under way gets an error, and the gateway stays up.
//!
//! It decides nothing: the gateway calls an upstream only for a call the engine let
//! through.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// One upstream as given on the command line: `[NAME=]COMMAND ARG...` or `[NAME=]URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// The name tools are namespaced by when there are several upstreams.
    pub name: Option<String>,
    pub endpoint: Endpoint,
}

/// Where an upstream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A child process speaking MCP on its stdin and stdout: the command and its
    /// arguments.
    Command(Vec<String>),
    /// A streamable HTTP endpoint (`http://` or `https://`).
    Http(HttpEndpoint),
}

/// A streamable HTTP upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    pub url: String,
    /// Sent as `Authorization: Bearer TOKEN`.
    pub bearer: Option<Secret>,
    /// Further headers sent with every request (an API key header, say).
    pub headers: Vec<(String, Secret)>,
}

/// A value that must not be printed: its `Debug` says `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl UpstreamSpec {
    /// How errors name it: its name, else its command line or URL.
    pub fn label(&self) -> String {
        match (&self.name, &self.endpoint) {
            (Some(n), _) => n.clone(),
            (None, Endpoint::Command(c)) => c.join(" "),
            (None, Endpoint::Http(h)) => h.url.clone(),
        }
    }
}

/// Which HTTP upstream an `--upstream-header` or `--upstream-bearer-file` is for:
/// `Some(name)`, or `None` for the only HTTP upstream. Header values never go to
/// another upstream than the one named.
fn http_target<'a>(
    specs: &'a mut [UpstreamSpec],
    target: Option<&str>,
) -> Result<&'a mut HttpEndpoint, String> {
    let mut http: Vec<&'a mut UpstreamSpec> = specs
        .iter_mut()
        .filter(|s| matches!(s.endpoint, Endpoint::Http(_)))
        .collect();
    let index = match target {
        Some(name) => http
            .iter()
            .position(|s| s.name.as_deref() == Some(name))
            .ok_or_else(|| format!("no HTTP upstream is named `{name}`"))?,
        None if http.len() == 1 => 0,
        None if http.is_empty() => {
            return Err("there is no HTTP upstream (an `http://` or `https://` URL)".into());
        }
        None => {
            return Err(
                "there are several HTTP upstreams: write `UPSTREAM=` before the value to say which"
                    .into(),
            );
        }
    };
    match http.swap_remove(index) {
        UpstreamSpec {
            endpoint: Endpoint::Http(h),
            ..
        } => Ok(h),
        _ => Err("internal: not an HTTP upstream".into()),
    }
}

/// Adds `--upstream-header [UPSTREAM=]NAME: VALUE` to its HTTP upstream. `${VAR}` in the
/// value is replaced by the environment variable `VAR` (read through `env`), so a
/// secret need not be written on the command line; an unset variable is an error.
pub fn add_header(
    specs: &mut [UpstreamSpec],
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let Some((head, value)) = text.split_once(':') else {
        return Err(format!(
            "`{text}`: expected `[UPSTREAM=]NAME: VALUE`, e.g. `X-Api-Key: ${{API_KEY}}`"
        ));
    };
    let (target, name) = match head.split_once('=') {
        Some((t, n)) => (Some(t.trim()), n.trim()),
        None => (None, head.trim()),
    };
    if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("`{text}`: `{name}` is not an HTTP header name"));
    }
    if name.eq_ignore_ascii_case("authorization") {
        return Err(format!(
            "`{text}`: give a bearer token with `--upstream-bearer-file`, not as a header"
        ));
    }
    let value = expand_env(value.trim(), &env).map_err(|e| format!("`{text}`: {e}"))?;
    if http::HeaderValue::from_str(&value).is_err() {
        return Err(format!(
            "`{text}`: the value is not a valid HTTP header value"
        ));
    }
    let endpoint = http_target(specs, target).map_err(|e| format!("`{text}`: {e}"))?;
    endpoint.headers.push((name.to_owned(), Secret(value)));
    Ok(())
}

/// Sets the bearer token of an HTTP upstream (`None`: the only one).
pub fn set_bearer(
    specs: &mut [UpstreamSpec],
    target: Option<&str>,
    token: Secret,
) -> Result<(), String> {
    let endpoint = http_target(specs, target)?;
    if endpoint.bearer.is_some() {
        return Err("two bearer tokens for one upstream".into());
    }
    endpoint.bearer = Some(token);
    Ok(())
}

fn expand_env(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without its closing `}`".into());
        };
        let var = &after[..end];
        let value =
            env(var).ok_or_else(|| format!("the environment variable `{var}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
/// assert_eq!(ups[1].label(), "notes");
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
            if !rest.is_empty() {
                return Err(format!(
                    "upstream `{program}` is a URL: nothing may follow it (found `{}`); \
                     separate further upstreams with `--`",
                    rest.join(" ")
                ));
            }
            if program.parse::<http::Uri>().is_err() {
                return Err(format!("upstream `{program}` is not a valid URL"));
            }
            out.push(UpstreamSpec {
                name,
                endpoint: Endpoint::Http(HttpEndpoint {
                    url: program,
                    bearer: None,
                    headers: Vec::new(),
                }),
            });
            continue;
        }
        let mut command = vec![program];
        command.extend(rest.iter().cloned());
        out.push(UpstreamSpec {
            name,
            endpoint: Endpoint::Command(command),
        });
    }
    if out.len() > 1 {
        let mut names = Vec::new();
        for up in &out {
            let Some(name) = &up.name else {
                return Err(format!(
                    "with several upstreams each needs a name for its tools' namespace: \
                     write `NAME={}`",
                    up.label()
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
        format!("upstream `{}`", self.spec.label())
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
    match &spec.endpoint {
        Endpoint::Command(command) => connect_command(command).await,
        Endpoint::Http(endpoint) => connect_http(endpoint).await,
    }
}

async fn connect_command(command_line: &[String]) -> Result<Client, UpstreamError> {
    let label = command_line.join(" ");
    let Some((program, args)) = command_line.split_first() else {
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

async fn connect_http(endpoint: &HttpEndpoint) -> Result<Client, UpstreamError> {
    let url = &endpoint.url;
    // reqwest is built without a default TLS crypto provider: ring, the one the rest of
    // the project uses. Installing it twice is harmless (the first one stays).
    #[expect(
        deprecated,
        reason = "ring is the provider the whole project builds on (no aws-lc, no OpenSSL); it has no post-quantum key exchange"
    )]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
    let client = reqwest::Client::builder()
        // A redirect could carry the token elsewhere: none is followed.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| {
            UpstreamError(format!(
                "upstream `{url}`: cannot build the HTTP client: {e}"
            ))
        })?;
    let mut headers = HashMap::new();
    for (name, value) in &endpoint.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| UpstreamError(format!("upstream `{url}`: header `{name}`: {e}")))?;
        let value = http::HeaderValue::from_str(&value.0)
            .map_err(|e| UpstreamError(format!("upstream `{url}`: header `{name}`: {e}")))?;
        headers.insert(name, value);
    }
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers);
    if let Some(token) = &endpoint.bearer {
        config = config.auth_header(token.0.clone());
    }
    let transport = StreamableHttpClientTransport::with_client(client, config);
    ().serve(transport)
        .await
        .map_err(|e| UpstreamError(format!("upstream `{url}`: the MCP handshake failed: {e}")))
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
        assert!(matches!(&one[0].endpoint, Endpoint::Command(c) if c[0] == "npx"));
        let two = parse_upstreams(&words("fs=npx a -- notes=python3 n.py")).unwrap_or_default();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].name.as_deref(), Some("notes"));
        assert!(
            parse_upstreams(&words("npx a -- python3 n.py"))
                .is_err_and(|e| e.contains("each needs a name"))
        );
        assert!(parse_upstreams(&words("a=x -- a=y")).is_err_and(|e| e.contains("two upstreams")));
        assert!(parse_upstreams(&[]).is_err());
        let url = parse_upstreams(&words("https://example.invalid/mcp")).unwrap_or_default();
        assert!(
            matches!(&url[0].endpoint, Endpoint::Http(h) if h.url == "https://example.invalid/mcp")
        );
        assert!(
            parse_upstreams(&words("https://example.invalid/mcp extra"))
                .is_err_and(|e| e.contains("nothing may follow"))
        );
    }

    #[test]
    fn headers_go_to_the_named_http_upstream_only() {
        let env = |v: &str| (v == "KEY").then(|| "s3cret".to_owned());
        let mut specs = parse_upstreams(&words(
            "a=http://127.0.0.1:1/mcp -- b=http://127.0.0.1:2/mcp -- c=python3 x.py",
        ))
        .unwrap_or_default();
        assert!(
            add_header(&mut specs, "X-Api-Key: ${KEY}", env)
                .is_err_and(|e| e.contains("several HTTP upstreams"))
        );
        assert!(add_header(&mut specs, "b=X-Api-Key: k-${KEY}", env).is_ok());
        assert!(
            add_header(&mut specs, "c=X-Api-Key: 1", env)
                .is_err_and(|e| e.contains("no HTTP upstream is named `c`"))
        );
        assert!(
            add_header(&mut specs, "b=X-Other: ${NOPE}", env)
                .is_err_and(|e| e.contains("`NOPE` is not set"))
        );
        assert!(
            add_header(&mut specs, "b=Authorization: Bearer x", env)
                .is_err_and(|e| e.contains("--upstream-bearer-file"))
        );
        let headers = |i: usize| match &specs[i].endpoint {
            Endpoint::Http(h) => Some(h.headers.clone()),
            Endpoint::Command(_) => None,
        };
        let b = headers(1).unwrap_or_default();
        assert_eq!(b, vec![("X-Api-Key".to_owned(), Secret("k-s3cret".into()))]);
        assert_eq!(format!("{:?}", b[0].1), "<redacted>");
        assert_eq!(headers(0), Some(Vec::new()));
        assert!(set_bearer(&mut specs, Some("a"), Secret("t".into())).is_ok());
        assert!(set_bearer(&mut specs, Some("a"), Secret("t".into())).is_err());
    }
}
