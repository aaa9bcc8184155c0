//! The accept loop: takes TCP connections, speaks TLS on them when configured, and runs
//! hyper's HTTP/1 connection over each with the router as its service. It owns the
//! limits a connection can hold the service by: the time to send a request head (and
//! the TLS handshake), the size of that head, and how many connections are open at
//! once (at the cap it stops accepting, so further clients wait in the kernel's
//! backlog). On shutdown it stops accepting, closes idle connections, lets requests in
//! flight finish, and returns once every connection has closed.
//!
//! Must not: know routes, tokens or the engine (the router is opaque here); read files
//! (certificates arrive as PEM bytes, the caller names the files in its errors).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The largest request head (request line and headers) read, in bytes; a larger one is
/// answered 431 and the connection closed.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header fields a request may have.
pub const MAX_HEADERS: usize = 64;
/// hyper's read buffer per connection: bounds what one connection holds in memory
/// beyond the body the handlers read under their own limit.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// How the service takes connections.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Serve HTTPS with this certificate; `None` serves plain HTTP.
    pub tls: Option<Tls>,
    /// The most connections open at once; at the cap the service stops accepting until
    /// one closes.
    pub max_connections: u32,
    /// How long a client has to complete the TLS handshake, and then to send each
    /// request head (an idle keep-alive connection is closed after it too).
    pub header_timeout: Duration,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            tls: None,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// A server certificate chain and its private key, ready for rustls (ring provider,
/// TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// Why a certificate and key cannot serve TLS, by which of the two is at fault, so the
/// caller can name the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate PEM holds no certificate, or one that cannot be decoded.
    Certificate(String),
    /// The key PEM holds no private key, or one that cannot be decoded.
    Key(String),
    /// Both decode, but rustls refuses them together (a key of an unsupported type, or
    /// one that does not belong to the certificate).
    Pair(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Certificate(why) | TlsError::Key(why) | TlsError::Pair(why) => {
                f.write_str(why)
            }
        }
    }
}

impl Tls {
    /// Reads a PEM certificate chain (the server's certificate first) and a PEM private
    /// key (PKCS#8, PKCS#1 or SEC1).
    #[expect(
        deprecated,
        reason = "rustls 0.23.48 deprecates the ring provider for lacking post-quantum key \
                  exchange; ring is kept to avoid aws-lc's large native build, and the \
                  classical X25519 / P-256 / P-384 exchanges it offers are still sound"
    )]
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Tls, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Certificate(format!("not a PEM certificate chain: {e}")))?;
        if certs.is_empty() {
            return Err(TlsError::Certificate(
                "no `BEGIN CERTIFICATE` section: expected a PEM certificate chain".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::Key(
                "no `BEGIN PRIVATE KEY` (or RSA / EC PRIVATE KEY) section: expected a PEM private key"
                    .into(),
            ),
            e => TlsError::Key(format!("not a PEM private key: {e}")),
        })?;
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Pair(format!("cannot set up TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                TlsError::Pair(format!(
                    "the certificate and key cannot be used together: {e}"
                ))
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting,
/// asks every connection to close once its request in flight is answered, and returns
/// when all have closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenConfig,
    shutdown: impl Future<Output = ()>,
) {
    let ListenConfig {
        tls,
        max_connections,
        header_timeout,
    } = config;
    let max_connections = max_connections.max(1);
    let tls = tls.map(|t| TlsAcceptor::from(t.config));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    // One permit per open connection: waiting for a permit is what stops accepting at
    // the cap, and taking them all back at the end is how shutdown knows every
    // connection has closed.
    let permits = Arc::new(Semaphore::new(max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            tls.clone(),
            http.clone(),
            router.clone(),
            header_timeout,
            stopping.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let _ = permits.acquire_many(max_connections).await;
}

/// An error on `accept` is one connection's (the client gave up) or the process's (out
/// of file descriptors): the first costs nothing, the second needs a moment for
/// connections to close, rather than a loop spinning on the error.
async fn pause_after_accept_error(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One connection, from the TLS handshake to its close. The permit is held until then.
async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    http: http1::Builder,
    router: Router,
    header_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    match tls {
        None => http_connection(stream, &http, router, stopping).await,
        Some(acceptor) => {
            // A client that never finishes its handshake holds the connection as one
            // that never sends its head would: the same timeout bounds both.
            let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
            let tls_stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(s)) => s,
                    // A failed or slow handshake (a plain-HTTP client, a scanner) is
                    // the client's problem; the connection is dropped.
                    Ok(Err(_)) | Err(_) => return,
                },
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            http_connection(tls_stream, &http, router, stopping).await;
        }
    }
}

async fn http_connection<I>(
    io: I,
    http: &http1::Builder,
    router: Router,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // A connection's error (a head timeout, a reset, a malformed request) ends that
        // connection only; hyper has already answered what could be answered.
        _ = conn.as_mut() => return,
        // A closed channel means the loop is gone: shut down as on a signal.
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
