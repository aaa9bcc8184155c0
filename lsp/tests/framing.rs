//! Malformed frames against the real `agentpolicy-lsp` binary: a `Content-Length` that is
//! negative, too short, too long, repeated with another value, or above the size limit.
//! After each, the server must answer the malformed request with an error (when its id
//! can be read), answer the next request and exit cleanly on `shutdown` / `exit`. Every
//! wait is bounded (`support::TIMEOUT`), so a server that goes deaf fails the test
//! instead of blocking it.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected protocol answers"
)]

mod support;

use serde_json::{Value, json};
use support::{Client, file_uri, position_of, temp_dir};

/// A request with id 1000, as the body of a malformed frame.
const BODY: &str =
    r#"{"jsonrpc":"2.0","id":1000,"method":"workspace/symbol","params":{"query":""}}"#;

fn started(name: &str) -> Client {
    let dir = temp_dir(name);
    let mut client = Client::start(&dir);
    client.initialize(None);
    client
}

/// The error response to id 1000, whose message names the problem.
fn error_for_1000(client: &mut Client, says: &str) {
    let answer = client.wait_for(|m| m.get("id") == Some(&json!(1000)));
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(says), "{answer}");
}

/// The server still analyses documents and answers requests, then shuts down and exits
/// with status 0.
fn still_serves(mut client: Client) {
    let uri = file_uri(&std::env::temp_dir().join("agentpolicy-frame-doc/p.agentpolicy"));
    let text = "policy p version \"1\"\ntool t { effect read }\nagent a {\n  owner \"o\"\n  allow nope\n}\n";
    client.open(&uri, text);
    let diagnostics = client.diagnostics(&uri, |p| p["version"] == json!(1));
    assert!(
        diagnostics.iter().any(|d| d["code"] == "AP0011"),
        "{diagnostics:?}"
    );
    let hover = client.request_raw(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": position_of(text, "allow", 0)}),
    );
    assert!(hover.get("error").is_none(), "{hover}");
    client.shutdown();
}

#[test]
fn negative_content_length() {
    let mut client = started("frame-negative");
    client.send_bytes(format!("Content-Length: -5\r\n\r\n{BODY}").as_bytes());
    let next = client.request_raw("workspace/symbol", json!({"query": ""}));
    assert!(next.get("error").is_none(), "{next}");
    error_for_1000(&mut client, "invalid Content-Length `-5`");
    still_serves(client);
}

#[test]
fn content_length_too_short() {
    let mut client = started("frame-short");
    client.send_bytes(format!("Content-Length: {}\r\n\r\n{BODY}", BODY.len() - 10).as_bytes());
    let next = client.request_raw("workspace/symbol", json!({"query": ""}));
    assert!(next.get("error").is_none(), "{next}");
    error_for_1000(&mut client, "not one JSON value");
    still_serves(client);
}

#[test]
fn content_length_too_long() {
    let mut client = started("frame-long");
    client.send_bytes(format!("Content-Length: {}\r\n\r\n{BODY}", BODY.len() + 40).as_bytes());
    // The next message is shorter than what the bad frame still waits for: the server
    // must not swallow it.
    let next = client.request_raw("shutdown", Value::Null);
    assert!(next.get("error").is_none(), "{next}");
    error_for_1000(&mut client, "the message ends after");
    client.notify("exit", Value::Null);
    client.wait_exit();
}

#[test]
fn content_length_too_long_then_long_messages() {
    let mut client = started("frame-long-2");
    client.send_bytes(format!("Content-Length: {}\r\n\r\n{BODY}", BODY.len() + 20).as_bytes());
    error_for_1000_after_request(&mut client, "the message ends after");
    still_serves(client);
}

fn error_for_1000_after_request(client: &mut Client, says: &str) {
    let next = client.request_raw(
        "workspace/symbol",
        json!({"query": "a longer query than twenty bytes"}),
    );
    assert!(next.get("error").is_none(), "{next}");
    error_for_1000(client, says);
}

#[test]
fn duplicate_content_length_headers() {
    let mut client = started("frame-duplicate");
    client.send_bytes(
        format!(
            "Content-Length: {}\r\nContent-Length: 3\r\n\r\n{BODY}",
            BODY.len()
        )
        .as_bytes(),
    );
    error_for_1000_after_request(&mut client, "two Content-Length headers disagree");
    // The same length twice is not an error.
    client.send_bytes(
        format!(
            "Content-Length: {0}\r\nContent-Length: {0}\r\n\r\n{BODY}",
            BODY.len()
        )
        .as_bytes(),
    );
    let answer = client.wait_for(|m| m.get("id") == Some(&json!(1000)));
    assert!(answer.get("error").is_none(), "{answer}");
    still_serves(client);
}

#[test]
fn content_length_above_the_limit() {
    let mut client = started("frame-huge");
    client.send_bytes(format!("Content-Length: 99999999999999999999\r\n\r\n{BODY}").as_bytes());
    error_for_1000_after_request(&mut client, "exceeds the limit of 64 MiB");
    client.send_bytes(format!("Content-Length: {}\r\n\r\n{BODY}", 64 * 1024 * 1024 + 1).as_bytes());
    error_for_1000_after_request(&mut client, "exceeds the limit of 64 MiB");
    still_serves(client);
}

#[test]
fn garbage_between_messages_and_headers_without_length() {
    let mut client = started("frame-garbage");
    client.send_bytes(b"this is no header\r\n\r\n");
    client.send_bytes(format!("Content-Type: x\r\n\r\n{BODY}").as_bytes());
    error_for_1000_after_request(&mut client, "invalid header line `this is no header`");
    still_serves(client);
}

#[test]
fn content_length_too_long_and_the_body_cut_short() {
    let mut client = started("frame-long-cut");
    // Neither a complete JSON value nor as long as announced: the next message's header
    // shows where it ends.
    let cut = &BODY[..BODY.len() - 10];
    client.send_bytes(format!("Content-Length: {}\r\n\r\n{cut}", BODY.len() + 400).as_bytes());
    let next = client.request_raw("shutdown", Value::Null);
    assert!(next.get("error").is_none(), "{next}");
    let log = client.wait_for(|m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("but the next message starts after")
    });
    assert_eq!(log["params"]["type"], 2);
    client.notify("exit", Value::Null);
    client.wait_exit();
}
