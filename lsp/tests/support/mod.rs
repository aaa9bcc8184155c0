//! A minimal LSP client for the integration tests: it starts the real `agentpolicy-lsp`
//! binary and speaks JSON-RPC over its stdio with `Content-Length` framing, as an editor
//! does. Waits are bounded by generous timeouts so a loaded machine does not flake.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long to wait for any one answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Notifications and server requests seen while waiting for something else.
    pub seen: Vec<Value>,
    next_id: i64,
}

/// A fresh, empty folder under the temp directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentpolicy-lsp-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl Client {
    /// Starts the server; the standard library is written under `scratch`.
    pub fn start(scratch: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentpolicy-lsp"))
            .env("AGENTPOLICY_LSP_STDLIB_DIR", scratch.join("stdlib"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start agentpolicy-lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        length = v.trim().parse::<usize>().ok();
                    }
                }
                let Some(length) = length else { return };
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(value) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            incoming: rx,
            seen: Vec::new(),
            next_id: 1,
        }
    }

    pub fn send_raw(&mut self, body: &str) {
        self.send_bytes(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    /// Writes bytes as they are, framing and all (for malformed frames).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string());
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns the whole response (`result` or `error`).
    pub fn request_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.wait_for(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
    }

    /// Sends a request and returns its `result`, failing on an error response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.request_raw(method, params);
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    fn next(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok(message) => {
                // Answer requests from the server (registrations) as an editor would.
                if message.get("id").is_some() && message.get("method").is_some() {
                    let id = message["id"].clone();
                    self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
                }
                message
            }
            Err(RecvTimeoutError::Timeout) => panic!("timed out; messages seen: {:#?}", self.seen),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// Waits for a message matching `pred`, keeping the others in `seen`.
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let message = self.next(deadline);
            if pred(&message) {
                return message;
            }
            self.seen.push(message);
        }
    }

    /// The next `publishDiagnostics` for `uri` that satisfies `pred`; earlier ones for the
    /// same file are dropped.
    pub fn diagnostics(&mut self, uri: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let matches = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        };
        loop {
            let message = self.wait_for(matches);
            if pred(&message["params"]) {
                return message["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }

    /// `initialize` and `initialized`, with an optional root folder.
    pub fn initialize(&mut self, root: Option<&Path>) -> Value {
        let root_uri = root.map(file_uri);
        let result = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root_uri,
                "capabilities": {},
                "initializationOptions": {"debounceMs": 20}
            }),
        );
        self.notify("initialized", json!({}));
        result
    }

    pub fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "agentpolicy", "version": 1, "text": text}}),
        );
    }

    /// `shutdown` then `exit`; the server must exit with status 0.
    pub fn shutdown(mut self) {
        let result = self.request_raw("shutdown", Value::Null);
        assert!(result.get("error").is_none(), "shutdown failed: {result}");
        self.notify("exit", Value::Null);
        self.wait_exit();
    }

    /// Waits (bounded) for the server to exit with status 0.
    pub fn wait_exit(mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.child.try_wait().expect("wait") {
                Some(status) => {
                    assert!(status.success(), "server exited with {status}");
                    return;
                }
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!("server did not exit after `exit`");
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The LSP position (UTF-16) of the `n`th occurrence (0-based) of `needle` in `text`.
pub fn position_of(text: &str, needle: &str, n: usize) -> Value {
    let offset = text
        .match_indices(needle)
        .nth(n)
        .map(|(i, _)| i)
        .expect("needle in text");
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let character: usize = before[line_start..].chars().map(char::len_utf16).sum();
    json!({"line": line, "character": character})
}
