//! Service mode (`--service URL`): the gateway embeds no engine and decides through a
//! running `agentpolicy serve` over its HTTP API (`docs/serve.md`) with an agent token.
//! Per MCP session it opens a service session (`POST /v1/sessions`); per `tools/call`
//! it asks `POST /v1/sessions/{s}/decide`; an escalated call waits on the service's
//! long poll (`GET /v1/escalations/{id}/wait`) until an operator approves or rejects
//! it through the API or the operator console, or its route times out; a forwarded
//! call's result is reported (`POST …/calls/{n}/result`, so breakers and taint work);
//! the session is closed with the MCP session.
//!
//! It fails closed: a service that cannot be reached, answers late, answers an error
//! status or something that is not the API's JSON makes the call a Deny whose tool
//! error says so, and the call never reaches the upstream. Every request has a bound
//! (connect, whole request, response size).

use std::fmt;
use std::time::Duration;

use agentpolicy_runtime::Outcome;
use serde_json::{Map, Value, json};

use crate::upstream::Secret;

/// The largest response body read from the service.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How long one long-poll request asks the service to hold an escalation's wait (the
/// service caps it at 60 s).
const WAIT_POLL_MS: u64 = 25_000;
/// The default bound on one request to the service (long polls get this on top of
/// their own hold).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// Why a request to the service did not give an answer the gateway can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError(pub String);

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the service is and how to reach it.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `http(s)://HOST:PORT` (a path prefix is kept), without a trailing `/`.
    pub url: String,
    /// The agent token (`Authorization: Bearer`), read from a file by the CLI.
    pub token: Secret,
    /// The bound on one request (connect included).
    pub timeout: Duration,
}

/// The service's verdict on one call, as the gateway needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVerdict {
    pub outcome: Outcome,
    pub reason: String,
    pub rule: Option<String>,
    pub explanation: String,
    /// The escalation id to wait on (`s3:2`).
    pub escalation: Option<String>,
    /// The call number to report a result under.
    pub call: Option<u64>,
}

/// How an escalation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub outcome: Outcome,
    /// The service's account of the resolution (who, why), when it gives one.
    pub why: Option<String>,
}

/// A client of one `agentpolicy serve`.
#[derive(Debug)]
pub struct ServiceClient {
    http: reqwest::Client,
    config: ServiceConfig,
}

impl ServiceClient {
    /// Builds the client; `Err` when the URL or the token cannot be used.
    pub fn new(mut config: ServiceConfig) -> Result<ServiceClient, ServiceError> {
        while config.url.ends_with('/') {
            config.url.pop();
        }
        let parsed = reqwest::Url::parse(&config.url).map_err(|e| {
            ServiceError(format!(
                "--service `{}`: not a URL ({e}); expected http://HOST:PORT",
                config.url
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ServiceError(format!(
                "--service `{}`: expected an http:// or https:// URL with a host",
                config.url
            )));
        }
        if http::HeaderValue::from_str(&format!("Bearer {}", config.token.0)).is_err() {
            return Err(ServiceError(
                "the service token holds characters a header cannot carry".to_owned(),
            ));
        }
        #[expect(
            deprecated,
            reason = "ring is the provider the whole project builds on (no aws-lc, no OpenSSL); it has no post-quantum key exchange"
        )]
        let provider = rustls::crypto::ring::default_provider();
        let _ = provider.install_default();
        let http = reqwest::Client::builder()
            // A redirect could carry the token elsewhere: none is followed.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| ServiceError(format!("cannot build the HTTP client: {e}")))?;
        Ok(ServiceClient { http, config })
    }

    /// The service's URL, for messages.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Checks that the service answers (`GET /healthz`), for a clear error at start.
    pub async fn check(&self) -> Result<(), ServiceError> {
        self.request(reqwest::Method::GET, "/healthz", None, self.config.timeout)
            .await
            .map(|_| ())
    }

    /// Opens a session of `agent` with `context`; its id (`s12`).
    pub async fn open_session(&self, agent: &str, context: &str) -> Result<String, ServiceError> {
        let body = json!({ "agent": agent, "context": context });
        let answer = self
            .request(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(body),
                self.config.timeout,
            )
            .await?;
        answer
            .get("session")
            .and_then(Value::as_str)
            .filter(|s| is_id(s))
            .map(str::to_owned)
            .ok_or_else(|| malformed("POST /v1/sessions", "no `session` id"))
    }

    /// Decides a call (the body of `POST /v1/sessions/{session}/decide`).
    pub async fn decide(&self, session: &str, call: Value) -> Result<RemoteVerdict, ServiceError> {
        let path = format!("/v1/sessions/{session}/decide");
        let answer = self
            .request(
                reqwest::Method::POST,
                &path,
                Some(call),
                self.config.timeout,
            )
            .await?;
        parse_verdict(&answer).ok_or_else(|| malformed(&path, "not a verdict"))
    }

    /// Waits until escalation `id` is resolved, long poll after long poll. An error
    /// ends the wait (the caller denies the call).
    pub async fn wait(&self, id: &str) -> Result<Resolved, ServiceError> {
        let path = format!("/v1/escalations/{id}/wait?timeout_ms={WAIT_POLL_MS}");
        let bound = self.config.timeout + Duration::from_millis(WAIT_POLL_MS);
        loop {
            let answer = self
                .request(reqwest::Method::GET, &path, None, bound)
                .await?;
            match answer.get("status").and_then(Value::as_str) {
                Some("pending") => {}
                Some("resolved") => {
                    let outcome = match answer.get("outcome").and_then(Value::as_str) {
                        Some("allow") => Outcome::Allow,
                        Some("deny") => Outcome::Deny,
                        _ => return Err(malformed(&path, "a resolution without its outcome")),
                    };
                    let why = answer
                        .get("why")
                        .and_then(Value::as_str)
                        .or_else(|| answer.get("resolution").and_then(Value::as_str))
                        .map(str::to_owned);
                    return Ok(Resolved { outcome, why });
                }
                _ => return Err(malformed(&path, "no `status` pending or resolved")),
            }
        }
    }

    /// Reports the result of call `call` of `session`.
    pub async fn report(
        &self,
        session: &str,
        call: u64,
        ok: bool,
        tokens: u64,
        latency_ms: u64,
    ) -> Result<(), ServiceError> {
        let path = format!("/v1/sessions/{session}/calls/{call}/result");
        let body = json!({ "ok": ok, "tokens": tokens, "latency_ms": latency_ms });
        self.request(
            reqwest::Method::POST,
            &path,
            Some(body),
            self.config.timeout,
        )
        .await
        .map(|_| ())
    }

    /// Closes `session` (its pending escalations are rejected).
    pub async fn close(&self, session: &str) -> Result<(), ServiceError> {
        let path = format!("/v1/sessions/{session}/close");
        self.request(
            reqwest::Method::POST,
            &path,
            Some(json!({})),
            self.config.timeout,
        )
        .await
        .map(|_| ())
    }

    /// One request: JSON in, JSON object out, within `bound`; any other status than
    /// 200 is an error carrying the service's own message.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        bound: Duration,
    ) -> Result<Map<String, Value>, ServiceError> {
        let what = format!("{method} {path}");
        let url = format!("{}{path}", self.config.url);
        let mut request = self.http.request(method, &url).timeout(bound).header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", self.config.token.0),
        );
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let mut response = request.send().await.map_err(|e| {
            ServiceError(if e.is_timeout() {
                format!(
                    "the decision service at {} did not answer {what} within {} ms",
                    self.config.url,
                    bound.as_millis()
                )
            } else {
                format!(
                    "the decision service at {} cannot be reached ({what}): {}",
                    self.config.url,
                    error_chain(&e)
                )
            })
        })?;
        let status = response.status();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(malformed(&what, "a response over 1 MiB"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(ServiceError(format!(
                        "the decision service at {} broke off its answer to {what}: {}",
                        self.config.url,
                        error_chain(&e)
                    )));
                }
            }
        }
        let parsed: Option<Map<String, Value>> = serde_json::from_slice(&bytes).ok();
        if status != reqwest::StatusCode::OK {
            let message = parsed
                .as_ref()
                .and_then(|m| m.get("error"))
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(ServiceError(format!(
                "the decision service at {} answered {what} with {status}: {message}",
                self.config.url
            )));
        }
        parsed.ok_or_else(|| malformed(&what, "not a JSON object"))
    }
}

fn malformed(what: &str, why: &str) -> ServiceError {
    ServiceError(format!(
        "the decision service's answer to {what} is malformed: {why}"
    ))
}

/// The error and its sources, so "connection refused" is not hidden under "error
/// sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A session or escalation id as the service writes them (`s12`, `s3:2`): only these
/// characters go into a request path.
fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_')
}

/// Reads a verdict; `None` when it lacks what the gateway needs to act on it.
pub fn parse_verdict(v: &Map<String, Value>) -> Option<RemoteVerdict> {
    let outcome = match v.get("outcome")?.as_str()? {
        "allow" => Outcome::Allow,
        "deny" => Outcome::Deny,
        "escalate" => Outcome::Escalate,
        _ => return None,
    };
    let escalation = v
        .get("escalation")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if escalation.as_deref().is_some_and(|e| !is_id(e)) {
        return None;
    }
    let call = v.get("call").and_then(Value::as_u64);
    // Acting on an allow or escalation needs the call number and the escalation id.
    if (outcome == Outcome::Allow && call.is_none())
        || (outcome == Outcome::Escalate && escalation.is_none())
    {
        return None;
    }
    Some(RemoteVerdict {
        outcome,
        reason: v
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("policy")
            .to_owned(),
        rule: v.get("rule").and_then(Value::as_str).map(str::to_owned),
        explanation: v
            .get("explanation")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        escalation,
        call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn verdicts_without_what_they_need_are_malformed() {
        assert!(parse_verdict(&obj(json!({"outcome": "allow"}))).is_none());
        assert!(parse_verdict(&obj(json!({"outcome": "escalate", "call": 1}))).is_none());
        assert!(parse_verdict(&obj(json!({"outcome": "maybe", "call": 1}))).is_none());
        assert!(
            parse_verdict(&obj(
                json!({"outcome": "escalate", "call": 1, "escalation": "s1:1/../x"})
            ))
            .is_none()
        );
        let v = parse_verdict(&obj(json!({"outcome": "deny", "reason": "rule",
            "rule": "a#1", "explanation": "no"})));
        assert_eq!(v.map(|v| v.outcome), Some(Outcome::Deny));
        let v = parse_verdict(&obj(
            json!({"outcome": "escalate", "call": 2, "escalation": "s1:2"}),
        ));
        assert_eq!(v.and_then(|v| v.escalation).as_deref(), Some("s1:2"));
    }

    #[test]
    fn bad_urls_are_refused() {
        let config = |url: &str| ServiceConfig {
            url: url.to_owned(),
            token: Secret("t".repeat(20)),
            timeout: Duration::from_secs(1),
        };
        assert!(ServiceClient::new(config("localhost:8181")).is_err());
        assert!(ServiceClient::new(config("ftp://localhost:8181")).is_err());
        let ok = ServiceClient::new(config("http://127.0.0.1:8181/"));
        assert_eq!(
            ok.map(|c| c.url().to_owned()).ok().as_deref(),
            Some("http://127.0.0.1:8181")
        );
    }
}
