//! The client's stdio channel: newline-delimited JSON-RPC on stdin and stdout, as an
//! rmcp [`Transport`]. It exists instead of rmcp's own line transport for one reason:
//! rmcp drops a line that is not JSON without a word (its choice, shared by the other
//! official SDKs, to avoid error storms with peers that echo errors), while JSON-RPC
//! 2.0 asks for a `-32700` parse error with `id: null`. This transport answers one,
//! and answers JSON that is not a message with `-32600` (carrying the id when it can
//! be read); the session goes on in both cases. A line over the size limit is dropped
//! whole and answered with `-32600` too.
//!
//! Reads and writes use rmcp's `stdio_pipes` (non-blocking pipes on the IO reactor
//! when stdin and stdout are pipes, as MCP clients start servers), and each outgoing
//! message is one `write_all` of the whole line under a lock, so an error reply never
//! lands in the middle of another message.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::{StdioReader, StdioWriter, Transport, stdio_pipes};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// The largest line (one JSON-RPC message) the gateway reads from its client: 16 MiB,
/// rmcp's own limit.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The client's stdio channel.
#[derive(Debug)]
pub struct ClientStdio {
    read: BufReader<StdioReader>,
    line: Vec<u8>,
    /// Set while the rest of an oversized line is being skipped.
    discarding: bool,
    write: Arc<Mutex<Option<StdioWriter>>>,
}

impl ClientStdio {
    /// The process's stdin and stdout.
    pub fn new() -> ClientStdio {
        let (read, write) = stdio_pipes();
        ClientStdio {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            write: Arc::new(Mutex::new(Some(write))),
        }
    }

    async fn reply(&self, message: Value) -> bool {
        let mut bytes = message.to_string().into_bytes();
        bytes.push(b'\n');
        write_line(&self.write, &bytes).await.is_ok()
    }
}

impl Default for ClientStdio {
    fn default() -> Self {
        ClientStdio::new()
    }
}

async fn write_line(write: &Mutex<Option<StdioWriter>>, bytes: &[u8]) -> std::io::Result<()> {
    let mut slot = write.lock().await;
    let Some(w) = slot.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the client's channel is closed",
        ));
    };
    w.write_all(bytes).await?;
    w.flush().await
}

/// What one line holds.
enum Line {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// A notification of a method this side does not know: ignored, as rmcp does.
    Ignored,
    /// The JSON-RPC error to answer.
    Error(Value),
}

fn classify(line: &[u8]) -> Line {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    // The common case parses once; only a line that is not a message is read again.
    if let Ok(m) = serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        return Line::Message(Box::new(m));
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Line::Error(error_reply(
                Value::Null,
                -32700,
                &format!("Parse error: the message is not JSON ({e})"),
            ));
        }
    };
    let id = value.get("id").cloned();
    if id.is_none() && value.get("method").and_then(Value::as_str).is_some() {
        return Line::Ignored;
    }
    let why = serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let id = id.filter(|i| i.is_string() || i.is_number());
    Line::Error(error_reply(
        id.unwrap_or(Value::Null),
        -32600,
        &format!("Invalid request: {why}"),
    ))
}

fn error_reply(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

impl Transport<RoleServer> for ClientStdio {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = Arc::clone(&self.write);
        async move {
            let mut bytes = serde_json::to_vec(&item)?;
            bytes.push(b'\n');
            write_line(&write, &bytes).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            // `receive` is polled inside a `select!`: a cancelled read leaves its bytes
            // in `self.line` and the next call goes on with the same line.
            let room = (MAX_LINE_BYTES + 1).saturating_sub(self.line.len());
            let limit = u64::try_from(room).unwrap_or(u64::MAX);
            let read = (&mut self.read)
                .take(limit)
                .read_until(b'\n', &mut self.line)
                .await;
            match read {
                Err(_) => return None,
                Ok(0) if self.line.is_empty() || !self.line.ends_with(b"\n") => {
                    if self.line.len() <= MAX_LINE_BYTES {
                        // The end of input (a trailing partial line is no message).
                        return None;
                    }
                }
                Ok(_) => {}
            }
            if !self.line.ends_with(b"\n") {
                if self.line.len() > MAX_LINE_BYTES {
                    // Over the limit: drop what was read and skip to the line's end.
                    self.line.clear();
                    self.discarding = true;
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            if std::mem::replace(&mut self.discarding, false) {
                let reply = error_reply(
                    Value::Null,
                    -32600,
                    &format!("Invalid request: the message is over {MAX_LINE_BYTES} bytes"),
                );
                if !self.reply(reply).await {
                    return None;
                }
                continue;
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if body.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match classify(body) {
                Line::Message(m) => return Some(*m),
                Line::Ignored => {}
                Line::Error(reply) => {
                    if !self.reply(reply).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let mut slot = self.write.lock().await;
        if let Some(mut w) = slot.take() {
            w.flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(line: &str) -> Option<Value> {
        match classify(line.as_bytes()) {
            Line::Error(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn lines_are_messages_parse_errors_or_invalid_requests() {
        let garbage = error_of("this is not json").unwrap_or_default();
        assert_eq!(garbage["error"]["code"], -32700);
        assert_eq!(garbage["id"], Value::Null);
        let shape = error_of(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"x"}"#)
            .unwrap_or_default();
        assert_eq!(shape["error"]["code"], -32600);
        assert_eq!(shape["id"], 7);
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Line::Message(_)
        ));
        // A notification of a method nobody knows is no error (rmcp takes it as a
        // custom notification, or it is ignored): never answered.
        assert!(!matches!(
            classify(br#"{"jsonrpc":"2.0","method":"$/custom/thing"}"#),
            Line::Error(_)
        ));
    }
}
