//! A running `agentpolicy serve` for end-to-end tests: started on `127.0.0.1:0` in a
//! directory of its own (its audit log and tokens there, so a restart continues them),
//! its port read from its first line of output, driven over HTTP/1.1 by a minimal client
//! on `std::net`, stopped with SIGTERM or killed with SIGKILL. Included by the test
//! files that need it with `#[path = "support/service.rs"] mod service;`.

#![allow(dead_code, reason = "each test file uses its own part of the harness")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const AGENT: &str = "agent-secret-1";
pub const NARROW_AGENT: &str = "agent-secret-billing-only";
pub const OPERATOR: &str = "operator-secret";
pub const PARTNER_DESK: &str = "partner-desk-secret";
pub const AUDITOR: &str = "auditor-secret";

/// The tokens file: an agent token for the law firm's three agents, one for billing
/// only, an operator for every agent and route, an operator for the partners' route
/// and billing only, an auditor.
pub fn write_tokens(dir: &Path) -> PathBuf {
    let hash = agentpolicy_server::hash_token;
    let file = json!({ "tokens": [
        { "name": "firm-agents", "sha256": hash(AGENT), "role": "agent",
          "agents": ["research", "billing", "intake"] },
        { "name": "billing-bot", "sha256": hash(NARROW_AGENT), "role": "agent",
          "agents": ["billing"] },
        { "name": "oncall", "sha256": hash(OPERATOR), "role": "operator",
          "agents": ["*"], "routes": ["*"] },
        { "name": "partner-desk", "sha256": hash(PARTNER_DESK), "role": "operator",
          "agents": ["billing"], "routes": ["supervising_partner"] },
        { "name": "auditor", "sha256": hash(AUDITOR), "role": "auditor" },
    ]});
    let path = dir.join("tokens.json");
    std::fs::write(&path, file.to_string()).expect("write tokens");
    path
}

/// A running service; killed when dropped if not stopped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub audit: PathBuf,
    /// Its standard error, read on a thread (so it never blocks on a full pipe).
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `agentpolicy serve SOURCE EXTRA` in a fresh directory for `name`.
    pub fn start(name: &str, source: &[&str], extra: &[&str]) -> Server {
        let mut args = source.to_vec();
        args.extend_from_slice(extra);
        Server::start_in(&super::support::temp_dir(name), &args)
    }

    /// Starts `agentpolicy serve ARGS` in `dir` with `dir/audit.jsonl` and
    /// `dir/tokens.json` (written if missing).
    pub fn start_in(dir: &Path, args: &[&str]) -> Server {
        let tokens = dir.join("tokens.json");
        if !tokens.exists() {
            write_tokens(dir);
        }
        let audit = dir.join("audit.jsonl");
        let mut all: Vec<String> = vec!["serve".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        all.extend([
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--audit".into(),
            audit.display().to_string(),
            "--tokens".into(),
            tokens.display().to_string(),
        ]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
            .current_dir(super::support::repo_root())
            .args(&all)
            .env("NO_COLOR", "1")
            .env_remove("AGENTPOLICY_KILL_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agentpolicy serve");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(mut e) = child.stderr.take() {
            let sink = std::sync::Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = e.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .filter(|_| line.starts_with("listening on "));
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            let err = stderr.lock().map(|s| s.clone()).unwrap_or_default();
            panic!("no `listening on` line: {line:?}; stderr: {err}");
        };
        Server {
            child,
            port,
            dir: dir.to_path_buf(),
            audit,
            stderr,
        }
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        http(self.port, method, path, token, body.map(str::as_bytes))
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), Some(&body.to_string()))
    }

    pub fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None)
    }

    /// SIGKILL: no shutdown, no `close` record.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit: the audit log is closed.
    pub fn stop(mut self) -> PathBuf {
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
        self.audit.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on its own connection; `None` when the connection fails or
/// the answer is cut short (the server was killed).
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Option<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer (413) before reading all of a large body.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    let lower = head.to_ascii_lowercase();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(rest)?
    } else {
        let len: usize = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(rest.len());
        if rest.len() < len {
            return None;
        }
        rest.to_owned()
    };
    Some(Reply { status, body })
}

/// One HTTP/1.1 request that must get an answer.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Reply {
    try_http(port, method, path, token, body)
        .unwrap_or_else(|| panic!("no answer to {method} {path}"))
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(after.get(..n)?);
        rest = after.get(n + 2..)?;
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The records of one kind, through `agentpolicy audit query`.
pub fn records(log: &Path, kind: &str) -> Vec<Value> {
    let out = super::support::agentpolicy(&[
        "audit",
        "query",
        path_str(log),
        "--kind",
        kind,
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("query JSON");
    v["records"].as_array().cloned().unwrap_or_default()
}

/// `agentpolicy audit verify` passes, and the log is sealed: the service closed it.
pub fn verify_sealed(log: &Path) {
    let report = verify_passes(log);
    assert_eq!(report["sealed"], true, "{report}");
}

/// `agentpolicy audit verify` on a log: its JSON report, after asserting it passed.
pub fn verify_passes(log: &Path) -> Value {
    let out = super::support::agentpolicy(&["audit", "verify", path_str(log), "--format", "json"]);
    assert!(
        out.status.success(),
        "audit verify failed: {}{}",
        super::support::stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("verify JSON")
}
