//! Request size limits end to end: `decide` and `replay` refuse an over-long argument or
//! request with a message naming it and the limit (not by being slow), the limits are
//! options, and the audit log of a replay keeps a long argument bounded and verifies.

#![cfg(test)]

mod support;

#[path = "support/service.rs"]
mod service;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::json;
use service::{AGENT, Server, records};
use support::{agentpolicy, repo_root, stdout, temp_dir};

const POLICY: &str = "tests/fixtures/ok/integrity_and_sets.agentpolicy";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn browse(url_len: usize) -> String {
    format!(
        r#"{{ "agent": "assistant", "tool": "browse", "args": {{ "url": "https://{}" }} }}"#,
        "a".repeat(url_len)
    )
}

#[test]
fn decide_refuses_an_argument_or_request_over_its_limit_naming_it() {
    let dir = temp_dir("decide");
    let table = dir.join("table.bin");
    let table = table.to_str().unwrap();
    let o = agentpolicy(&["build", POLICY, "-o", table]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let long = dir.join("long.json");
    std::fs::write(&long, browse(300 * 1024)).unwrap();
    let long = long.to_str().unwrap();
    let o = agentpolicy(&["decide", table, long]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("argument `url` is 307208 bytes, over the limit of 262144 bytes"),
        "{}",
        stderr(&o)
    );

    // Raised, the same request is decided by the policy.
    let o = agentpolicy(&["decide", table, long, "--max-arg-bytes", "400000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("allow"), "{}", stdout(&o));

    // The request as a whole.
    let o = agentpolicy(&["decide", table, long, "--max-request-bytes", "1000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is over the limit of 1000 bytes; it was not read"),
        "{}",
        stderr(&o)
    );

    // On standard input, 3 MiB against the 1 MiB default: refused after reading no
    // more than the limit.
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args(["decide", table, "-"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The reader stops at the limit and exits; a broken pipe after that is expected.
        let _ = stdin.write_all(browse(3 * 1024 * 1024).as_bytes());
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the request on standard input is over the limit of 1048576 bytes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn replay_denies_an_over_long_argument_and_the_audit_log_keeps_it_bounded() {
    let dir = temp_dir("replay");
    let url = format!("https://{}", "b".repeat(300 * 1024));
    let lines = [
        format!(
            r#"{{"session":"s","agent":"assistant","tool":"browse","args":{{"url":"{url}"}},"expect":"deny","expect_reason":"request"}}"#
        ),
        r#"{"session":"s","agent":"assistant","tool":"browse","args":{"url":"https://ok.example"},"expect":"allow"}"#.to_owned(),
    ];
    let trace = dir.join("trace.jsonl");
    std::fs::write(&trace, lines.join("\n")).unwrap();
    let log = dir.join("audit.jsonl");
    let o = agentpolicy(&[
        "replay",
        POLICY,
        trace.to_str().unwrap(),
        "--audit",
        log.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.len() < 32 * 1024, "the log is {} bytes", text.len());
    assert!(text.contains("bytes cut; 307208 bytes, sha256:"), "{text}");
    let o = agentpolicy(&["audit", "verify", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // A trace line over the request limit is an error naming the line.
    let o = agentpolicy(&[
        "replay",
        POLICY,
        trace.to_str().unwrap(),
        "--max-request-bytes",
        "4096",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("trace.jsonl:1: the request is 307"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn serve_denies_an_argument_over_max_arg_bytes_with_reason_request_and_audits_it() {
    let server = Server::start(
        "serve-limits",
        &["--policy", "examples/law_firm"],
        &["--max-arg-bytes", "100"],
    );
    let r = server.post("/v1/sessions", AGENT, json!({ "agent": "research" }));
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.json()["session"].as_str().unwrap().to_owned();
    let decide = format!("/v1/sessions/{session}/decide");
    let long = server.post(
        &decide,
        AGENT,
        json!({ "tool": "search_case_law", "args": { "query": "q".repeat(101) }, "confidence": 0.95 }),
    );
    assert_eq!(long.status, 200, "{}", long.body);
    let v = long.json();
    assert_eq!(v["outcome"], "deny", "{v}");
    assert_eq!(v["reason"], "request", "{v}");
    assert!(
        v["explanation"]
            .as_str()
            .unwrap()
            .contains("argument `query` is 101 bytes, over the limit of 100 bytes"),
        "{v}"
    );
    let short = server.post(
        &decide,
        AGENT,
        json!({ "tool": "search_case_law", "args": { "query": "q".repeat(100) }, "confidence": 0.95 }),
    );
    assert_ne!(short.json()["reason"], "request", "{}", short.body);
    let log = server.stop();
    let decisions = records(&log, "decision");
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["reason"], "request");
}
