//! The gateway's client side over streamable HTTP (`agentpolicy mcp --listen`): a
//! network surface, so every request must carry the bearer token (`Authorization:
//! Bearer TOKEN`, the token read from a file; compared as SHA-256 digests in constant
//! time, only the digest kept), and every refusal is audited. Limits: the request body
//! (rmcp enforces it while streaming; 413 past it), the request head (64 KiB, read
//! within 10 s), open connections, and live MCP sessions.
//!
//! Behind the check sits rmcp's `StreamableHttpService` with its local session
//! manager: each MCP session (`Mcp-Session-Id`) gets its own [`Gateway`] and so its own
//! policy session, closed when the MCP session ends (`DELETE`, idle timeout, or the
//! gateway stopping). rmcp also checks the `Host` header against loopback names (DNS
//! rebinding); on a non-loopback address the token alone guards the door.
//!
//! It prints nothing; [`HttpListener::local_addr`] tells the command line where it
//! listens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::gateway::{Gateway, Shared};
use crate::upstream::Secret;

/// The path the MCP endpoint answers on.
pub const MCP_PATH: &str = "/mcp";
/// The default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default number of live MCP sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 64;
/// Connections open at once; the next waits to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// The request head's size limit and the time it may take to arrive.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// An MCP session with no request for this long is closed (its policy session too).
/// Longer than any sensible escalation wait, during which the session is silent.
const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);
/// Refusals audited one by one per second; past that they are counted and the count
/// is audited with the next refusal after the second (or when the gateway stops).
const REFUSALS_PER_SECOND: u32 = 20;

/// How the HTTP side listens.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The bearer token clients must send.
    pub token: Secret,
    pub max_body_bytes: usize,
    pub max_sessions: usize,
}

/// A bound listener, not serving yet.
#[derive(Debug)]
pub struct HttpListener {
    listener: TcpListener,
    config: HttpConfig,
}

/// Binds the address. `Err` says why (in use, not permitted, a short token).
pub async fn bind(config: HttpConfig) -> Result<HttpListener, String> {
    if config.token.0.len() < 16 {
        return Err(format!(
            "the bearer token is {} characters long: use at least 16 (e.g. `openssl rand -hex 32`)",
            config.token.0.len()
        ));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    Ok(HttpListener { listener, config })
}

impl HttpListener {
    /// The address it is bound to (the port the system chose for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))
    }

    /// Serves MCP clients until `stop` completes; then closes every MCP session.
    pub async fn serve(
        self,
        shared: Arc<Shared>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        let cancel = CancellationToken::new();
        let mut server_config = StreamableHttpServerConfig::default()
            .with_cancellation_token(cancel.clone())
            .with_max_request_body_bytes(self.config.max_body_bytes);
        if !self.config.listen.ip().is_loopback() {
            // The Host check guards unauthenticated local servers against DNS
            // rebinding; a page cannot send the token, and a non-loopback listener is
            // reached under names this process cannot know.
            server_config = server_config.disable_allowed_hosts();
        }
        let mut sessions = LocalSessionManager::default();
        sessions.session_config = {
            let mut c = SessionConfig::default();
            c.keep_alive = Some(SESSION_IDLE);
            c
        };
        let live = Arc::new(AtomicUsize::new(0));
        let factory = {
            let shared = Arc::clone(&shared);
            let live = Arc::clone(&live);
            let max = self.config.max_sessions;
            move || {
                if live.load(Ordering::SeqCst) >= max {
                    return Err(std::io::Error::other(format!(
                        "the gateway has {max} MCP sessions open (--max-sessions)"
                    )));
                }
                Ok(Gateway::for_http(Arc::clone(&shared), Arc::clone(&live)))
            }
        };
        let mcp = StreamableHttpService::new(factory, Arc::new(sessions), server_config);
        let door = Arc::new(Door {
            digest: Sha256::digest(self.config.token.0.as_bytes()).into(),
            shared: Arc::clone(&shared),
            refusals: std::sync::Mutex::new(RefusalWindow::default()),
        });
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(stop);
        loop {
            let permit = tokio::select! {
                () = &mut stop => break,
                p = Arc::clone(&connections).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut stop => break,
                a = self.listener.accept() => match a {
                    Ok(a) => a,
                    // A failed accept (out of descriptors, a reset) ends that
                    // connection only.
                    Err(_) => continue,
                },
            };
            let _ = stream.set_nodelay(true);
            let mcp = mcp.clone();
            let door = Arc::clone(&door);
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let mut mcp = mcp.clone();
                    let door = Arc::clone(&door);
                    async move {
                        if let Some(refusal) = door.check(&req, peer) {
                            return Ok::<_, Infallible>(refusal);
                        }
                        mcp.call(req).await
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = &mut connection => {}
                    () = cancel.cancelled() => connection.as_mut().graceful_shutdown(),
                }
                drop(permit);
            });
        }
        cancel.cancel();
        door.flush_refusals();
        Ok(())
    }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

/// The bearer check and the refusal audit.
struct Door {
    digest: [u8; 32],
    shared: Arc<Shared>,
    refusals: std::sync::Mutex<RefusalWindow>,
}

#[derive(Default)]
struct RefusalWindow {
    second: u64,
    in_second: u32,
    unrecorded: u64,
}

impl Door {
    /// `None` lets the request through; `Some` is the refusal to send.
    fn check(&self, req: &Request<Incoming>, peer: SocketAddr) -> Option<Reply> {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let why = match presented {
            None => "no bearer token (send `Authorization: Bearer TOKEN`)",
            Some(token) => {
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                if constant_time_eq(&digest, &self.digest) {
                    if req.uri().path() == MCP_PATH {
                        return None;
                    }
                    return Some(reply(
                        StatusCode::NOT_FOUND,
                        &format!("no such path: the MCP endpoint is {MCP_PATH}"),
                        false,
                    ));
                }
                "wrong bearer token"
            }
        };
        self.audit_refusal(
            &format!("http:{}", peer.ip()),
            &format!("{} {}", req.method(), req.uri().path()),
            why,
        );
        Some(reply(StatusCode::UNAUTHORIZED, why, true))
    }

    fn audit_refusal(&self, who: &str, what: &str, why: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let summary = {
            let Ok(mut w) = self.refusals.lock() else {
                return;
            };
            let mut summary = None;
            if w.second != now {
                if w.unrecorded > 0 {
                    summary = Some(w.unrecorded);
                }
                *w = RefusalWindow {
                    second: now,
                    in_second: 0,
                    unrecorded: 0,
                };
            }
            if w.in_second >= REFUSALS_PER_SECOND {
                w.unrecorded += 1;
                return;
            }
            w.in_second += 1;
            summary
        };
        // Service mode does not serve over HTTP (the CLI refuses `--service` with
        // `--listen`): only the embedded engine records refusals.
        let Some(engine) = self.shared.engine() else {
            return;
        };
        if let Some(n) = summary {
            let _ = engine.record_refusal(
                "http:*",
                "requests to the MCP endpoint",
                &format!("{n} more refused requests (over {REFUSALS_PER_SECOND} a second, counted, not recorded one by one)"),
            );
        }
        let _ = engine.record_refusal(who, what, why);
    }

    fn flush_refusals(&self) {
        let n = self
            .refusals
            .lock()
            .map(|mut w| std::mem::take(&mut w.unrecorded))
            .unwrap_or(0);
        if n > 0
            && let Some(engine) = self.shared.engine()
        {
            let _ = engine.record_refusal(
                "http:*",
                "requests to the MCP endpoint",
                &format!("{n} more refused requests (over {REFUSALS_PER_SECOND} a second, counted, not recorded one by one)"),
            );
        }
    }
}

/// Compares two digests in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    diff == 0
}

fn reply(status: StatusCode, message: &str, challenge: bool) -> Reply {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"agentpolicy-mcp\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a: [u8; 32] = Sha256::digest(b"token-one-token-one").into();
        let b: [u8; 32] = Sha256::digest(b"token-two-token-two").into();
        assert!(constant_time_eq(&a, &a));
        assert!(!constant_time_eq(&a, &b));
    }
}
