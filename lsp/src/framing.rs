//! A guard between stdin and the protocol library. tower-lsp-server stops reading its
//! input after the first undecodable message; an editor bug or a stray write to the
//! server's stdin would then silently end the session. This module re-frames the input:
//! well-formed messages pass through unchanged; a malformed one is replaced by a
//! `agentpolicy/malformedRequest` request with the same id (answered with an "invalid
//! request" error) or, when it has no usable id, by an `agentpolicy/malformedMessage`
//! notification (answered with a log line). The server never stops on bad input.
//!
//! Framing errors (a `Content-Length` that is negative, too short, too long, repeated
//! with another value, or above [`MAX_BODY`]) lose the message boundary, and LSP has no
//! resynchronisation marker. The guard resynchronises on the next `Content-Length:`
//! header it sees: everything before it is the malformed message (its id, when the
//! bytes hold one JSON request, gets the error response). A too-long length is caught
//! as soon as the next message's header follows a complete JSON value, or arrives with
//! its header section complete (no JSON body holds a raw line break), so the guard never
//! waits for bytes that belong to the next message. It must not hold more than one
//! message (bounded by [`MAX_BODY`]) in memory.

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tower_lsp_server::jsonrpc::{Request, Response};

/// The method a malformed request is turned into.
pub const MALFORMED_REQUEST: &str = "agentpolicy/malformedRequest";
/// The notification a malformed message without an id is turned into.
pub const MALFORMED_MESSAGE: &str = "agentpolicy/malformedMessage";

/// Larger bodies are refused rather than buffered.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// A header section longer than this is not one.
const MAX_HEADERS: usize = 8 * 1024;
/// How much of a skipped region is kept to find the id of the request it held.
const MAX_KEPT: usize = 1024 * 1024;
/// What resynchronisation looks for, compared without regard to case.
const MARKER: &[u8] = b"content-length:";

/// Returns a reader that yields only well-formed messages read from `input`.
pub fn guard<R: AsyncRead + Unpin + Send + 'static>(input: R) -> DuplexStream {
    let (mut to_server, from_guard) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let mut input = Input {
            reader: input,
            buf: Vec::new(),
            eof: false,
        };
        loop {
            let frame = match input.read_frame().await {
                Frame::End => break,
                Frame::Body(body) => sanitize(&body),
                Frame::Bad { reason, skipped } => Some(malformed(request_id(&skipped), &reason)),
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
    /// A malformed message: why, and (the start of) its bytes.
    Bad {
        reason: String,
        skipped: Vec<u8>,
    },
    End,
}

/// The input with the bytes read but not yet framed.
struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    eof: bool,
}

enum Headers {
    /// The body is `length` bytes from `end`.
    Complete {
        length: usize,
        end: usize,
    },
    Incomplete,
    /// Why, and where the bytes that may hold the next message start.
    Bad(String, usize),
}

impl<R: AsyncRead + Unpin> Input<R> {
    /// Reads more input; false at the end (or on an error, which ends it too).
    async fn more(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = vec![0; 64 * 1024];
        match self.reader.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn read_frame(&mut self) -> Frame {
        loop {
            // Blank lines between messages are not part of either.
            let blank = self
                .buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            self.buf.drain(..blank);
            match parse_headers(&self.buf) {
                Headers::Incomplete => {
                    if !self.more().await {
                        return Frame::End;
                    }
                }
                Headers::Bad(reason, after) => return self.resync(reason, after).await,
                Headers::Complete { length, end } => return self.body(length, end).await,
            }
        }
    }

    async fn body(&mut self, length: usize, start: usize) -> Frame {
        let mut scanned = start;
        loop {
            // A complete JSON value followed by a header: the length is too long, and
            // what it still waits for is the next message.
            let mut from = scanned.saturating_sub(MARKER.len()).max(start);
            // A header whose section is not complete yet is looked at again next time.
            let mut hold = None;
            while let Some(at) = find_marker(&self.buf, from).filter(|&at| at < start + length) {
                from = at + 1;
                let reason = match json_value_end(&self.buf[start..at]) {
                    Some(end) => format!(
                        "Content-Length announces {length} bytes, but the message ends after {end} and the next one starts"
                    ),
                    // A complete header section cannot be part of a JSON body (a JSON
                    // string holds no raw line break): the body was cut short.
                    None => match parse_headers(&self.buf[at..]) {
                        Headers::Complete { .. } => format!(
                            "Content-Length announces {length} bytes, but the next message starts after {}",
                            at - start
                        ),
                        Headers::Incomplete => {
                            hold = hold.or(Some(at));
                            continue;
                        }
                        Headers::Bad(..) => continue,
                    },
                };
                let skipped = self.buf[..at.min(MAX_KEPT)].to_vec();
                self.buf.drain(..at);
                return Frame::Bad { reason, skipped };
            }
            if self.buf.len() >= start + length {
                let body = &self.buf[start..start + length];
                if serde_json::from_slice::<Value>(body).is_ok() {
                    let body = body.to_vec();
                    self.buf.drain(..start + length);
                    return Frame::Body(body);
                }
                // Either the length is wrong or the message is not JSON: the next
                // header says where the next message starts.
                return self
                    .resync(
                        format!(
                            "the {length} bytes that Content-Length announces are not one JSON value"
                        ),
                        start,
                    )
                    .await;
            }
            scanned = hold.unwrap_or(self.buf.len());
            if !self.more().await {
                return Frame::End;
            }
        }
    }

    /// Skips to the next `Content-Length:` at or after `from` (and after the start of
    /// the buffer); the bytes skipped are the malformed message.
    async fn resync(&mut self, reason: String, from: usize) -> Frame {
        let mut skipped = Vec::new();
        let mut from = from.max(1);
        loop {
            if let Some(at) = find_marker(&self.buf, from) {
                keep(&mut skipped, &self.buf[..at]);
                self.buf.drain(..at);
                return Frame::Bad { reason, skipped };
            }
            // Keep only a tail that may be the start of the marker.
            let cut = self.buf.len().saturating_sub(MARKER.len() - 1);
            if cut >= from {
                keep(&mut skipped, &self.buf[..cut]);
                self.buf.drain(..cut);
                from = 0;
            }
            if !self.more().await {
                keep(&mut skipped, &self.buf);
                self.buf.clear();
                return Frame::Bad { reason, skipped };
            }
        }
    }
}

fn keep(kept: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_KEPT.saturating_sub(kept.len());
    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn find_marker(buf: &[u8], from: usize) -> Option<usize> {
    if buf.len() < MARKER.len() {
        return None;
    }
    (from..=buf.len() - MARKER.len())
        .find(|&i| buf[i..i + MARKER.len()].eq_ignore_ascii_case(MARKER))
}

/// Where the one JSON value `bytes` starts with ends, if the rest is whitespace.
fn json_value_end(bytes: &[u8]) -> Option<usize> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    values.next()?.ok()?;
    let end = values.byte_offset();
    bytes[end..]
        .iter()
        .all(u8::is_ascii_whitespace)
        .then_some(end)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The header section at the start of `buf` (blank lines before it are skipped).
fn parse_headers(buf: &[u8]) -> Headers {
    let mut pos = 0;
    let mut length: Option<usize> = None;
    let mut seen = false;
    loop {
        let rest = &buf[pos..];
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            // An unfinished line that can no longer become a header is bad already: do
            // not wait for a newline that a JSON body may never contain.
            let name_end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
            let name = rest[..name_end]
                .strip_suffix(b"\r")
                .unwrap_or(&rest[..name_end]);
            if !name.iter().all(|&b| is_token(b)) {
                return Headers::Bad(
                    format!(
                        "invalid header line `{}`",
                        truncate(&String::from_utf8_lossy(rest), 80)
                    ),
                    pos,
                );
            }
            if pos + rest.len() > MAX_HEADERS {
                return Headers::Bad(
                    format!("a header section longer than {MAX_HEADERS} bytes"),
                    pos,
                );
            }
            return Headers::Incomplete;
        };
        let line = &rest[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += newline + 1;
        if pos > MAX_HEADERS {
            return Headers::Bad(
                format!("a header section longer than {MAX_HEADERS} bytes"),
                pos,
            );
        }
        if line.is_empty() {
            if !seen {
                continue;
            }
            return match length {
                Some(length) => Headers::Complete { length, end: pos },
                None => Headers::Bad("a message without a Content-Length header".to_string(), pos),
            };
        }
        seen = true;
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            return Headers::Bad(
                format!("invalid header line `{}`", truncate(&text, 80)),
                pos,
            );
        };
        if name.is_empty() || !name.bytes().all(is_token) {
            return Headers::Bad(
                format!("invalid header line `{}`", truncate(&text, 80)),
                pos,
            );
        }
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Headers::Bad(
                format!(
                    "invalid Content-Length `{}`: expected a byte count",
                    truncate(value, 40)
                ),
                pos,
            );
        }
        let n = value.parse::<usize>().unwrap_or(usize::MAX);
        if n > MAX_BODY {
            return Headers::Bad(
                format!(
                    "Content-Length {} exceeds the limit of {} MiB",
                    truncate(value, 40),
                    MAX_BODY >> 20
                ),
                pos,
            );
        }
        match length {
            Some(m) if m != n => {
                return Headers::Bad(
                    format!("two Content-Length headers disagree: {m} and {n}"),
                    pos,
                );
            }
            _ => length = Some(n),
        }
    }
}

/// The id of the request a malformed message's bytes hold, if they hold one JSON request.
fn request_id(skipped: &[u8]) -> Option<Value> {
    let start = skipped.iter().position(|&b| b == b'{')?;
    let value = serde_json::Deserializer::from_slice(&skipped[start..])
        .into_iter::<Value>()
        .next()?
        .ok()?;
    value
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())
        .filter(|_| value.get("method").is_some())
        .cloned()
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
