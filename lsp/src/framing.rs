//! A guard between stdin and the protocol library. tower-lsp-server stops reading its
//! input after the first undecodable message; an editor bug or a stray write to the
//! server's stdin would then silently end the session. This module re-frames the input:
//! well-formed messages pass through unchanged; a malformed one is replaced by a
//! `agentpolicy/malformedRequest` request with the same id (answered with an "invalid
//! request" error) or, when it has no usable id, by an `agentpolicy/malformedMessage`
//! notification (answered with a log line). The server never stops on bad input.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tower_lsp_server::jsonrpc::{Request, Response};

/// The method a malformed request is turned into.
pub const MALFORMED_REQUEST: &str = "agentpolicy/malformedRequest";
/// The notification a malformed message without an id is turned into.
pub const MALFORMED_MESSAGE: &str = "agentpolicy/malformedMessage";

/// Larger bodies are refused rather than buffered.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Returns a reader that yields only well-formed messages read from `input`.
pub fn guard<R: AsyncRead + Unpin + Send + 'static>(input: R) -> DuplexStream {
    let (mut to_server, from_guard) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let mut reader = BufReader::new(input);
        loop {
            let frame = match read_frame(&mut reader).await {
                Frame::End => break,
                Frame::Body(body) => sanitize(&body),
                Frame::Bad(reason) => Some(malformed(None, &reason)),
            };
            let Some(body) = frame else {
                continue;
            };
            let header = format!("Content-Length: {}\r\n\r\n", body.len());
            if to_server.write_all(header.as_bytes()).await.is_err()
                || to_server.write_all(body.as_bytes()).await.is_err()
            {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    });
    from_guard
}

enum Frame {
    Body(Vec<u8>),
    Bad(String),
    End,
}

async fn read_frame<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Frame {
    let mut length: Option<usize> = None;
    let mut bad_header = None;
    let mut saw_header = false;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return Frame::End,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if saw_header {
                break;
            }
            continue;
        }
        saw_header = true;
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => {
                        bad_header = Some(format!("invalid Content-Length `{}`", value.trim()))
                    }
                }
            }
            Some(_) => {}
            None => bad_header = Some(format!("invalid header line `{}`", truncate(text, 80))),
        }
    }
    if let Some(reason) = bad_header {
        return Frame::Bad(reason);
    }
    let Some(length) = length else {
        return Frame::Bad("message without a Content-Length header".to_string());
    };
    if length > MAX_BODY {
        let mut rest = reader.take(length as u64);
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
        return Frame::Bad(format!("message of {length} bytes is too large"));
    }
    let mut body = vec![0; length];
    match reader.read_exact(&mut body).await {
        Ok(_) => Frame::Body(body),
        Err(_) => Frame::End,
    }
}

/// The body to forward: itself when it is a valid JSON-RPC message, a stand-in otherwise.
fn sanitize(body: &[u8]) -> Option<String> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(malformed(None, &format!("the body is not JSON: {e}"))),
    };
    if serde_json::from_value::<Request>(value.clone()).is_ok()
        || serde_json::from_value::<Response>(value.clone()).is_ok()
    {
        return String::from_utf8(body.to_vec())
            .ok()
            .or_else(|| Some(malformed(None, "the body is not UTF-8")));
    }
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())
        .filter(|_| value.get("method").is_some())
        .cloned();
    Some(malformed(
        id,
        "the message is not a valid JSON-RPC 2.0 request, notification or response",
    ))
}

fn malformed(id: Option<Value>, reason: &str) -> String {
    let message = match id {
        Some(id) => {
            json!({"jsonrpc": "2.0", "id": id, "method": MALFORMED_REQUEST, "params": {"error": reason}})
        }
        None => json!({"jsonrpc": "2.0", "method": MALFORMED_MESSAGE, "params": {"error": reason}}),
    };
    message.to_string()
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_messages_pass_and_bad_ones_are_replaced() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        assert_eq!(
            sanitize(ok).as_deref(),
            Some(std::str::from_utf8(ok).unwrap())
        );
        let not_json = sanitize(b"{nope").unwrap();
        assert!(not_json.contains(MALFORMED_MESSAGE));
        let bad_request = sanitize(br#"{"id":7,"method":"x"}"#).unwrap();
        assert!(bad_request.contains(MALFORMED_REQUEST) && bad_request.contains("\"id\":7"));
    }
}
