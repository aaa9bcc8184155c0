//! End-to-end tests of how `agentpolicy serve` takes connections: HTTPS with a
//! certificate made here (rcgen) and a real TLS client (rustls) that trusts only it;
//! the bad certificate and key arguments, each refused with exit 2 naming the file; the
//! head-read timeout; the connection cap; the audit log's `--durability`. Each test runs
//! the real binary on `127.0.0.1:0`, reads its `listening on` line, and stops it with
//! SIGTERM, expecting a clean exit with the audit log sealed.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use support::{agentpolicy, repo_root, stdout, temp_dir};

const AGENT: &str = "agent-secret-1";

/// A running `agentpolicy serve` of the law firm; killed when dropped if not stopped.
struct Server {
    child: Child,
    port: u16,
    audit: PathBuf,
}

/// The arguments every test's server gets, before its own: the law firm, a free port,
/// an audit log and a tokens file with one agent token for `research`.
fn base_args(dir: &Path) -> (Vec<String>, PathBuf) {
    let tokens = dir.join("tokens.json");
    let file = json!({ "tokens": [
        { "name": "research-agent", "sha256": agentpolicy_server::hash_token(AGENT),
          "role": "agent", "agents": ["research"] },
    ]});
    std::fs::write(&tokens, file.to_string()).expect("write tokens");
    let audit = dir.join("audit.jsonl");
    let args = [
        "serve",
        "--policy",
        "examples/law_firm",
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        path_str(&tokens),
        "--audit",
        path_str(&audit),
    ];
    (args.iter().map(|s| s.to_string()).collect(), audit)
}

impl Server {
    /// Starts the server with `extra` arguments; its first line must be `listening on
    /// SCHEME://127.0.0.1:PORT`.
    fn start(dir: &Path, scheme: &str, extra: &[&str]) -> Server {
        let (mut args, audit) = base_args(dir);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
            .current_dir(repo_root())
            .args(&args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agentpolicy serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        let port = line
            .trim()
            .strip_prefix(&format!("listening on {scheme}://127.0.0.1:"))
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("no `listening on {scheme}://` line: {line:?}; stderr: {err}");
        };
        Server { child, port, audit }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream
    }

    /// SIGTERM, then a clean exit within 20 s; the audit log is sealed.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "serve exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = agentpolicy(&["audit", "verify", path_str(&self.audit), "--format", "json"]);
        assert!(out.status.success(), "audit verify: {}", stdout(&out));
        let report: Value = serde_json::from_slice(&out.stdout).expect("verify JSON");
        assert_eq!(report["sealed"], true, "{report}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// An HTTP/1.1 request that closes its connection after the answer.
fn request(method: &str, path: &str, body: Option<&Value>) -> Vec<u8> {
    let body = body.map(Value::to_string).unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {AGENT}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Everything the server sent until it closed (or reset) the connection.
fn read_all(stream: &mut impl Read) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify, or a reset: the end either way.
            Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::TimedOut => {
                break;
            }
            Err(e) => panic!("no answer in time: {e}"),
        }
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// The status code and body of an answer read to its end.
fn parse(answer: &str) -> (u16, String) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head:?}"));
    (status, body.to_owned())
}

fn plain(server: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut stream = server.connect();
    stream
        .write_all(&request(method, path, body))
        .expect("send");
    parse(&read_all(&mut stream))
}

// ------------------------------------------------------------------------------- TLS

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files;
/// returns the certificate (the client's only root) and the two paths.
fn self_signed(dir: &Path, name: &str) -> (CertificateDer<'static>, PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("generate a certificate");
    let cert = dir.join(format!("{name}.crt.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    (made.cert.der().clone(), cert, key)
}

#[expect(
    deprecated,
    reason = "the server uses rustls's ring provider (see server/src/listen.rs); the client matches it"
)]
fn tls_client(root: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("a valid root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// One request over TLS to `localhost`, or the handshake's error.
fn https(
    server: &Server,
    client: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), std::io::Error> {
    let name = ServerName::try_from("localhost").expect("a server name");
    let conn = rustls::ClientConnection::new(Arc::clone(client), name).expect("a TLS client");
    let mut tls = rustls::StreamOwned::new(conn, server.connect());
    tls.write_all(&request(method, path, body))?;
    tls.flush()?;
    Ok(parse(&read_all(&mut tls)))
}

#[test]
fn https_answers_a_client_that_trusts_the_certificate_and_plain_http_gets_no_answer() {
    let dir = temp_dir("serve-tls");
    let (root, cert, key) = self_signed(&dir, "server");
    let server = Server::start(
        &dir,
        "https",
        &["--tls-cert", path_str(&cert), "--tls-key", path_str(&key)],
    );
    let client = tls_client(&root);

    let (status, body) = https(&server, &client, "GET", "/healthz", None).expect("TLS");
    assert_eq!(status, 200, "{body}");
    // A decision over TLS: the whole API is behind it, not only the probes.
    let (status, body) = https(
        &server,
        &client,
        "POST",
        "/v1/sessions",
        Some(&json!({ "agent": "research" })),
    )
    .expect("TLS");
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).expect("JSON");
    let session = session["session"].as_str().expect("a session id");
    let call =
        json!({ "tool": "search_case_law", "args": { "query": "caps" }, "confidence": 0.95 });
    let (status, body) = https(
        &server,
        &client,
        "POST",
        &format!("/v1/sessions/{session}/decide"),
        Some(&call),
    )
    .expect("TLS");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""outcome":"allow""#), "{body}");

    // Plain HTTP on the TLS port: the handshake fails and no HTTP answer comes back.
    let mut stream = server.connect();
    stream
        .write_all(&request("GET", "/healthz", None))
        .expect("send");
    let answer = read_all(&mut stream);
    assert!(
        !answer.starts_with("HTTP/"),
        "plain HTTP was answered: {answer:?}"
    );

    // A client that trusts another certificate refuses this server's.
    let (other_root, _, _) = self_signed(&dir, "other");
    let refused = https(&server, &tls_client(&other_root), "GET", "/healthz", None);
    let err = refused.expect_err("a certificate the client does not trust");
    assert!(
        err.to_string().contains("certificate"),
        "not a certificate error: {err}"
    );

    // The server is still answering after all that.
    let (status, _) = https(&server, &client, "GET", "/healthz", None).expect("TLS");
    assert_eq!(status, 200);
    server.stop();
}

/// `serve ARGS` exits 2 before listening, with an error containing each of `expected`.
fn refused(args: &[&str], expected: &[&str]) {
    let out = agentpolicy(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        !stdout(&out).contains("listening on"),
        "{args:?} listened: {}",
        stdout(&out)
    );
    for e in expected {
        assert!(err.contains(e), "{args:?}: `{e}` not in: {err}");
    }
}

#[test]
fn bad_tls_and_connection_arguments_exit_2_naming_the_file_at_fault() {
    let dir = temp_dir("serve-tls-bad");
    let (_, cert, key) = self_signed(&dir, "server");
    let (_, _, other_key) = self_signed(&dir, "other");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").expect("write");
    let truncated = dir.join("truncated.pem");
    let pem = std::fs::read_to_string(&cert).expect("read cert");
    std::fs::write(&truncated, &pem[..pem.len() / 2]).expect("write");
    let missing = dir.join("missing.pem");
    let (base, _) = base_args(&dir);
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v = base.clone();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str], expected: &[&str]| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, expected);
    };
    let (cert, key, other_key) = (path_str(&cert), path_str(&key), path_str(&other_key));
    let (garbage, truncated, missing) =
        (path_str(&garbage), path_str(&truncated), path_str(&missing));

    run(
        &["--tls-cert", cert],
        &["--tls-cert and --tls-key go together"],
    );
    run(
        &["--tls-key", key],
        &["--tls-cert and --tls-key go together"],
    );
    run(
        &["--tls-cert", missing, "--tls-key", key],
        &["cannot read", missing],
    );
    run(
        &["--tls-cert", cert, "--tls-key", missing],
        &["cannot read", missing],
    );
    run(
        &["--tls-cert", garbage, "--tls-key", key],
        &["--tls-cert", garbage, "no `BEGIN CERTIFICATE`"],
    );
    run(
        &["--tls-cert", truncated, "--tls-key", key],
        &["--tls-cert", truncated, "not a PEM certificate chain"],
    );
    // The certificate given as the key.
    run(
        &["--tls-cert", cert, "--tls-key", cert],
        &["--tls-key", cert, "no `BEGIN PRIVATE KEY`"],
    );
    run(
        &["--tls-cert", cert, "--tls-key", other_key],
        &[cert, other_key, "cannot be used together"],
    );
    run(&["--max-connections", "0"], &["--max-connections"]);
    run(&["--max-connections", "many"], &["--max-connections"]);
    run(&["--header-timeout-ms", "0"], &["--header-timeout-ms"]);
    run(&["--durability", "sometimes"], &["--durability"]);
    // A durability without an audit log to apply it to.
    refused(
        &[
            "serve",
            "--policy",
            "examples/law_firm",
            "--tokens",
            "tokens.json",
            "--durability",
            "fsync",
        ],
        &["--audit"],
    );
}

// ------------------------------------------------------------------- hardening

#[test]
fn a_client_that_sends_half_a_head_is_disconnected_after_the_header_timeout() {
    let dir = temp_dir("serve-head-timeout");
    let server = Server::start(&dir, "http", &["--header-timeout-ms", "300"]);

    let mut slow = server.connect();
    let began = Instant::now();
    slow.write_all(b"POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Le")
        .expect("send half a head");
    let answer = read_all(&mut slow);
    let held = began.elapsed();
    assert_eq!(answer, "", "a half head was answered");
    assert!(
        held >= Duration::from_millis(250) && held < Duration::from_secs(5),
        "closed after {held:?}, not about 300 ms"
    );

    // A connection that sends nothing at all is closed too.
    let mut silent = server.connect();
    let began = Instant::now();
    assert_eq!(read_all(&mut silent), "");
    assert!(began.elapsed() < Duration::from_secs(5));

    // The timeout bounds heads, not requests: a long poll of a second, on a head sent
    // at once, is answered.
    let (status, body) = plain(
        &server,
        "POST",
        "/v1/sessions",
        Some(&json!({ "agent": "research" })),
    );
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).expect("JSON");
    let session = session["session"].as_str().expect("session");
    let unsure =
        json!({ "tool": "search_case_law", "args": { "query": "caps" }, "confidence": 0.5 });
    let (status, body) = plain(
        &server,
        "POST",
        &format!("/v1/sessions/{session}/decide"),
        Some(&unsure),
    );
    assert_eq!(status, 200, "{body}");
    let escalation: Value = serde_json::from_str(&body).expect("JSON");
    let escalation = escalation["escalation"].as_str().expect("an escalation");
    let began = Instant::now();
    let (status, body) = plain(
        &server,
        "GET",
        &format!("/v1/escalations/{escalation}/wait?timeout_ms=1000"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pending"), "{body}");
    assert!(began.elapsed() >= Duration::from_millis(900));

    // A head over the limit is refused with 431.
    let mut big = server.connect();
    let padding = "x".repeat(agentpolicy_server::MAX_HEAD_BYTES + 1024);
    big.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: {padding}\r\n\r\n")
            .as_bytes(),
    )
    .expect("send a large head");
    let (status, _) = parse(&read_all(&mut big));
    assert_eq!(status, 431);

    server.stop();
}

#[test]
fn at_the_connection_cap_a_further_client_waits_until_a_connection_closes() {
    let dir = temp_dir("serve-cap");
    let server = Server::start(&dir, "http", &["--max-connections", "2"]);
    // Two idle connections take both places (the head timeout is the default 10 s).
    let first = server.connect();
    let second = server.connect();
    std::thread::sleep(Duration::from_millis(200));

    // The third connects (the kernel's backlog takes it) but is not served.
    let mut third = server.connect();
    third
        .write_all(&request("GET", "/healthz", None))
        .expect("send");
    third
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match third.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
        other => panic!("a connection over the cap was served: {other:?}"),
    }

    // One place frees up: the third is served.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let began = Instant::now();
    let (status, body) = parse(&read_all(&mut third));
    assert_eq!(status, 200, "{body}");
    assert!(began.elapsed() < Duration::from_secs(3));
    // An idle connection does not hold shutdown up (it would until the 10 s head
    // timeout if it were waited for).
    let stopping = Instant::now();
    server.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for an idle connection",
        stopping.elapsed()
    );
    drop(second);
}

#[test]
fn os_buffered_durability_serves_and_seals_its_log() {
    let dir = temp_dir("serve-os-buffered");
    let server = Server::start(&dir, "http", &["--durability", "os-buffered"]);
    let (status, body) = plain(
        &server,
        "POST",
        "/v1/sessions",
        Some(&json!({ "agent": "research" })),
    );
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).expect("JSON");
    let session = session["session"].as_str().expect("session");
    let call =
        json!({ "tool": "search_case_law", "args": { "query": "caps" }, "confidence": 0.95 });
    let (status, body) = plain(
        &server,
        "POST",
        &format!("/v1/sessions/{session}/decide"),
        Some(&call),
    );
    assert_eq!(status, 200, "{body}");
    let audit = server.audit.clone();
    server.stop();
    let log = std::fs::read_to_string(audit).expect("the log");
    assert!(log.contains(r#""kind":"decision""#), "{log}");
}
