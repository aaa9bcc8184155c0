//! End-to-end tests of `agentpolicy serve`: the real binary on `127.0.0.1:0`, its port
//! read from its first line of output, driven over HTTP/1.1 by a minimal client on
//! `std::net` (no client crate to compile), stopped with SIGTERM so it closes its audit
//! log, which is then checked with `agentpolicy audit verify` and `audit query`.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

#[path = "support/service.rs"]
mod service;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{
    AGENT, AUDITOR, NARROW_AGENT, OPERATOR, PARTNER_DESK, Reply, Server, http, path_str, records,
    verify_sealed as verify_passes,
};
use support::{agentpolicy, repo_root, stdout, temp_dir};

const LAW_FIRM: &[&str] = &["--policy", "examples/law_firm"];

/// The law firm's trace, line by line through the API, is decided as `agentpolicy
/// replay` decides it. The service's clock is the system clock, so the trace's `at`
/// times are not followed: none of this trace's outcomes depends on time (its 20
/// seconds hold no per-minute limit's worth of calls and no 2-hour escalation
/// timeout), so every call line is compared.
#[test]
fn the_law_firm_trace_through_the_api_decides_as_replay_does() {
    let trace_path = "examples/law_firm/trace.jsonl";
    let replayed = agentpolicy(&[
        "replay",
        "examples/law_firm",
        trace_path,
        "--format",
        "json",
    ]);
    assert!(replayed.status.success(), "{}", stdout(&replayed));
    let replayed: Value = serde_json::from_slice(&replayed.stdout).expect("replay JSON");
    let expected: Vec<(u64, String)> = replayed["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "call")
        .map(|s| {
            (
                s["line"].as_u64().expect("line"),
                s["outcome"].as_str().expect("outcome").to_owned(),
            )
        })
        .collect();

    let server = Server::start("serve-law-firm", LAW_FIRM, &[]);
    let trace = std::fs::read_to_string(repo_root().join(trace_path)).expect("trace");
    let mut sessions: std::collections::BTreeMap<String, String> = Default::default();
    let mut got = Vec::new();
    for (i, line) in trace.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() || line.starts_with("//") {
            continue;
        }
        let step: Value = serde_json::from_str(line).expect("trace line");
        if let Some(op) = step["op"].as_str() {
            let by_agent = json!({ "agent": step["agent"] });
            let r = match op {
                "kill" => server.post("/v1/kill", OPERATOR, by_agent),
                "resume" => server.post("/v1/resume", OPERATOR, by_agent),
                "approve" | "reject" => {
                    let id = &sessions[step["session"].as_str().expect("session")];
                    let state = server.get(&format!("/v1/sessions/{id}"), AGENT).json();
                    let oldest = state["pending"][0].as_str().expect("a pending escalation");
                    server.post(
                        &format!("/v1/escalations/{oldest}/{op}"),
                        OPERATOR,
                        json!({ "reason": "as in the trace" }),
                    )
                }
                other => unreachable!("line {line_no}: op `{other}` not driven by this test"),
            };
            assert_eq!(r.status, 200, "line {line_no}: {}", r.body);
            continue;
        }
        let name = step["session"].as_str().expect("session").to_owned();
        let id = match sessions.get(&name) {
            Some(id) => id.clone(),
            None => {
                let mut open = json!({ "agent": step["agent"], "name": name });
                if let Some(bind) = step.get("bind") {
                    open["bind"] = bind.clone();
                }
                if let Some(context) = step.get("context") {
                    open["context"] = context.clone();
                }
                let r = server.post("/v1/sessions", AGENT, open);
                assert_eq!(r.status, 200, "{}", r.body);
                let id = r.json()["session"].as_str().expect("id").to_owned();
                sessions.insert(name, id.clone());
                id
            }
        };
        let mut call = json!({ "tool": step["tool"] });
        for field in [
            "args",
            "confidence",
            "untrusted",
            "read",
            "write",
            "reasoning",
        ] {
            if let Some(v) = step.get(field) {
                call[field] = v.clone();
            }
        }
        let r = server.post(&format!("/v1/sessions/{id}/decide"), AGENT, call);
        assert_eq!(r.status, 200, "line {line_no}: {}", r.body);
        let verdict = r.json();
        let outcome = verdict["outcome"].as_str().expect("outcome").to_owned();
        if let (Some(result), "allow") = (step.get("result"), outcome.as_str()) {
            let n = verdict["call"].as_u64().expect("call number");
            let r = server.post(
                &format!("/v1/sessions/{id}/calls/{n}/result"),
                AGENT,
                result.clone(),
            );
            assert_eq!(r.status, 200, "{}", r.body);
        }
        got.push((line_no, outcome));
    }
    assert_eq!(got, expected);
    let log = server.stop();
    verify_passes(&log);
    assert_eq!(records(&log, "decision").len(), expected.len());
}

/// Opens a research session and raises an escalation (low confidence goes to
/// `human_review`); returns the session and escalation ids.
fn escalate(server: &Server) -> (String, String) {
    let r = server.post("/v1/sessions", AGENT, json!({ "agent": "research" }));
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.json()["session"].as_str().expect("session").to_owned();
    let r = server.post(
        &format!("/v1/sessions/{session}/decide"),
        AGENT,
        json!({ "tool": "search_case_law", "args": { "query": "caps" }, "confidence": 0.5 }),
    );
    let v = r.json();
    assert_eq!(v["outcome"], "escalate", "{v}");
    let id = v["escalation"].as_str().expect("escalation id").to_owned();
    (session, id)
}

#[test]
fn every_role_is_refused_what_it_must_not_do_and_each_refusal_is_audited() {
    let server = Server::start("serve-roles", LAW_FIRM, &[]);
    let (session, esc) = escalate(&server);
    let billing = server
        .post("/v1/sessions", AGENT, json!({ "agent": "billing" }))
        .json()["session"]
        .as_str()
        .expect("billing session")
        .to_owned();
    let approve = format!("/v1/escalations/{esc}/approve");
    let reject = format!("/v1/escalations/{esc}/reject");
    let decide = format!("/v1/sessions/{session}/decide");
    let reason = json!({ "reason": "looks fine" });
    let a_call = json!({ "tool": "search_case_law", "confidence": 0.99 });

    // (expected status, who it is recorded as, the request)
    let mut refused: Vec<(u16, &str, Reply)> = Vec::new();
    // No token, a bad token, a token under another scheme.
    refused.push((
        401,
        "anonymous",
        server.call("POST", &decide, None, Some("{}")),
    ));
    refused.push((401, "anonymous", server.call("GET", "/healthz", None, None)));
    refused.push((
        401,
        "anonymous",
        server.call("GET", "/v1/status", Some("not-a-token"), None),
    ));
    refused.push((
        401,
        "anonymous",
        server.post("/v1/kill", "wrong", json!({})),
    ));
    refused.push((
        401,
        "anonymous",
        server.post(
            &approve,
            &agentpolicy_server::hash_token(OPERATOR),
            reason.clone(),
        ),
    ));
    // An agent token never resolves (not even its own agent's escalation), kills,
    // resumes, resets, reloads, or reads the operators' views.
    refused.push((
        403,
        "firm-agents",
        server.post(&approve, AGENT, reason.clone()),
    ));
    refused.push((
        403,
        "firm-agents",
        server.post(&reject, AGENT, reason.clone()),
    ));
    refused.push((
        403,
        "firm-agents",
        server.post("/v1/kill", AGENT, json!({ "agent": "research" })),
    ));
    refused.push((
        403,
        "firm-agents",
        server.post("/v1/resume", AGENT, json!({})),
    ));
    refused.push((
        403,
        "firm-agents",
        server.post("/v1/breakers/research/reset", AGENT, json!({})),
    ));
    refused.push((
        403,
        "firm-agents",
        server.post("/v1/reload", AGENT, json!({})),
    ));
    refused.push((403, "firm-agents", server.get("/v1/escalations", AGENT)));
    refused.push((403, "firm-agents", server.get("/v1/status", AGENT)));
    refused.push((403, "firm-agents", server.get("/metrics", AGENT)));
    // An agent token acts only for its agents.
    refused.push((
        403,
        "billing-bot",
        server.post("/v1/sessions", NARROW_AGENT, json!({ "agent": "research" })),
    ));
    refused.push((
        403,
        "billing-bot",
        server.post(&decide, NARROW_AGENT, a_call.clone()),
    ));
    refused.push((
        403,
        "billing-bot",
        server.get(&format!("/v1/sessions/{session}"), NARROW_AGENT),
    ));
    refused.push((
        403,
        "billing-bot",
        server.post(
            &format!("/v1/sessions/{session}/close"),
            NARROW_AGENT,
            json!({}),
        ),
    ));
    refused.push((
        403,
        "billing-bot",
        server.get(
            &format!("/v1/escalations/{esc}/wait?timeout_ms=10"),
            NARROW_AGENT,
        ),
    ));
    refused.push((
        403,
        "billing-bot",
        server.post("/v1/sessions/s999/decide", NARROW_AGENT, a_call.clone()),
    ));
    // An auditor reads; it changes nothing and acts for no agent.
    refused.push((
        403,
        "auditor",
        server.post(&approve, AUDITOR, reason.clone()),
    ));
    refused.push((403, "auditor", server.post("/v1/kill", AUDITOR, json!({}))));
    refused.push((
        403,
        "auditor",
        server.post("/v1/reload", AUDITOR, json!({})),
    ));
    refused.push((
        403,
        "auditor",
        server.post("/v1/sessions", AUDITOR, json!({ "agent": "research" })),
    ));
    refused.push((
        403,
        "auditor",
        server.post(&decide, AUDITOR, a_call.clone()),
    ));
    // An operator outside the escalation's route cannot see or resolve it, nor
    // control agents outside its scope, nor act on every agent, nor reload.
    refused.push((
        403,
        "partner-desk",
        server.post(&approve, PARTNER_DESK, reason.clone()),
    ));
    refused.push((
        403,
        "partner-desk",
        server.get(&format!("/v1/escalations/{esc}"), PARTNER_DESK),
    ));
    refused.push((
        403,
        "partner-desk",
        server.post("/v1/kill", PARTNER_DESK, json!({ "agent": "research" })),
    ));
    refused.push((
        403,
        "partner-desk",
        server.post("/v1/kill", PARTNER_DESK, json!({})),
    ));
    refused.push((
        403,
        "partner-desk",
        server.post("/v1/reload", PARTNER_DESK, json!({})),
    ));
    refused.push((
        403,
        "partner-desk",
        server.post(&decide, PARTNER_DESK, a_call.clone()),
    ));

    for (status, who, reply) in &refused {
        assert_eq!(reply.status, *status, "{who}: {}", reply.body);
        let error = &reply.json()["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{who}: {}",
            reply.body
        );
    }
    // Nothing was resolved or killed by any of them.
    let e = server
        .get(&format!("/v1/escalations/{esc}"), AUDITOR)
        .json();
    assert_eq!(e["status"], "pending", "{e}");
    let v = server.post(&format!("/v1/sessions/{billing}/decide"), NARROW_AGENT,
        json!({ "tool": "send_invoice", "args": { "amount": "$100", "matter_code": "M-1" }, "confidence": 0.99 })).json();
    assert_eq!(v["outcome"], "allow", "{v}");
    // What each may do, it can.
    assert_eq!(server.get("/v1/status", AUDITOR).status, 200);
    assert_eq!(server.get("/metrics", AUDITOR).status, 200);
    let listed = server.get("/v1/escalations", AUDITOR).json();
    assert_eq!(listed["escalations"].as_array().map(Vec::len), Some(1));
    let partner_view = server.get("/v1/escalations", PARTNER_DESK).json();
    assert_eq!(
        partner_view["escalations"].as_array().map(Vec::len),
        Some(0)
    );
    let filtered = server
        .get("/v1/escalations?route=supervising_partner", OPERATOR)
        .json();
    assert_eq!(filtered["escalations"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        server
            .post("/v1/kill", PARTNER_DESK, json!({ "agent": "billing" }))
            .status,
        200
    );
    assert_eq!(
        server
            .post("/v1/resume", PARTNER_DESK, json!({ "agent": "billing" }))
            .status,
        200
    );
    let r = server.post(&approve, OPERATOR, reason);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["by"], "oncall");

    let log = server.stop();
    verify_passes(&log);
    let audited = records(&log, "refusal");
    assert_eq!(audited.len(), refused.len(), "{audited:#?}");
    for (record, (_, who, _)) in audited.iter().zip(&refused) {
        assert_eq!(record["by"], *who, "{record}");
        assert!(
            record["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("refused ")),
            "{record}"
        );
    }
    let resolutions = records(&log, "resolution");
    assert_eq!(resolutions.len(), 1);
    assert_eq!(resolutions[0]["by"], "oncall");
    assert_eq!(
        resolutions[0]["why"],
        "approved by oncall (reason: looks fine)"
    );
}

#[test]
fn bad_input_is_a_4xx_json_error_naming_the_problem() {
    let server = Server::start("serve-bad-input", LAW_FIRM, &["--body-limit", "1024"]);
    let r = server.post("/v1/sessions", AGENT, json!({ "agent": "billing" }));
    let s = r.json()["session"].as_str().expect("session").to_owned();
    let decide = format!("/v1/sessions/{s}/decide");
    let (_, esc) = escalate(&server);
    let cases: Vec<(u16, &str, Reply)> = vec![
        (
            400,
            "invalid JSON",
            server.call("POST", &decide, Some(AGENT), Some("{\"tool\": ")),
        ),
        (
            400,
            "unknown field `colour`",
            server.post(
                &decide,
                AGENT,
                json!({ "tool": "send_invoice", "colour": 1 }),
            ),
        ),
        (
            400,
            "missing field `tool`",
            server.post(&decide, AGENT, json!({})),
        ),
        (
            400,
            "`args.amount`",
            server.post(
                &decide,
                AGENT,
                json!({ "tool": "send_invoice", "args": { "amount": true } }),
            ),
        ),
        (
            400,
            "`confidence`",
            server.post(
                &decide,
                AGENT,
                json!({ "tool": "send_invoice", "confidence": "sure" }),
            ),
        ),
        (
            413,
            "larger than 1024 bytes",
            server.post(&decide, AGENT, json!({ "tool": "x".repeat(2000) })),
        ),
        (
            400,
            "unknown field `role`",
            server.post(
                "/v1/sessions",
                AGENT,
                json!({ "agent": "billing", "role": "admin" }),
            ),
        ),
        // An operator cannot open sessions: refused before the body is read.
        (
            403,
            "role `operator` may not",
            server.call("POST", "/v1/sessions", Some(OPERATOR), Some("[1,2]")),
        ),
        (
            400,
            "not an escalation id",
            server.get("/v1/escalations/nonsense", OPERATOR),
        ),
        (
            400,
            "`reason`",
            server.post(
                &format!("/v1/escalations/{esc}/approve"),
                OPERATOR,
                json!({ "reason": "  " }),
            ),
        ),
        (
            404,
            "no such route",
            server.get("/v1/nothing-here", OPERATOR),
        ),
        (
            405,
            "does not take that method",
            server.get("/v1/kill", OPERATOR),
        ),
        (
            404,
            "no call",
            server.post(
                &format!("/v1/sessions/{s}/calls/9/result"),
                AGENT,
                json!({ "ok": true }),
            ),
        ),
    ];
    for (status, says, reply) in &cases {
        assert_eq!(reply.status, *status, "{says}: {}", reply.body);
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(says), "expected `{says}` in: {message}");
    }
    // Malformed paths and query strings, unknown routes: 401 before anything else
    // without a token, a 4xx JSON error with one.
    for (method, path) in [
        ("GET", "/v1/escalations/s1:1/wait?timeout_ms=soon"),
        ("POST", "/v1/sessions/s1/calls/third/result"),
        ("GET", "/v1/nothing-here"),
        ("GET", "/v1/kill"),
    ] {
        let r = server.call(method, path, None, None);
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
    }
    let r = server.get(
        &format!("/v1/escalations/{esc}/wait?timeout_ms=soon"),
        OPERATOR,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("query string"))
    );
    let r = server.post(
        &format!("/v1/sessions/{s}/calls/third/result"),
        AGENT,
        json!({ "ok": true }),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a call number"))
    );
    // An argument the tool does not declare is the engine's to deny (fail closed), as
    // replay does.
    let v = server
        .post(
            &decide,
            AGENT,
            json!({ "tool": "send_invoice", "args": { "colour": "red" } }),
        )
        .json();
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("deny"), Some("request")),
        "{v}"
    );
    // The service still answers after all of it.
    assert_eq!(server.get("/healthz", AUDITOR).status, 200);
    assert_eq!(server.get("/readyz", AUDITOR).json()["status"], "ready");
    let log = server.stop();
    verify_passes(&log);
}

/// A client that announces a body and never sends it is answered 408 after 10 s, and
/// the service goes on serving.
#[test]
fn a_body_that_never_arrives_is_a_408() {
    let server = Server::start("serve-slow-body", LAW_FIRM, &[]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {AGENT}\r\nContent-Length: 100\r\n\r\n{{\"agent\""
    );
    stream.write_all(head.as_bytes()).expect("send");
    let started = Instant::now();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(server.get("/healthz", AUDITOR).status, 200);
    let log = server.stop();
    verify_passes(&log);
}

#[test]
fn the_long_poll_wait_returns_the_approval() {
    let server = Server::start("serve-wait", LAW_FIRM, &[]);
    let (_, esc) = escalate(&server);
    let wait = format!("/v1/escalations/{esc}/wait");
    // Nobody answers within 100 ms: still pending.
    let r = server.get(&format!("{wait}?timeout_ms=100"), AGENT);
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("pending")),
        "{}",
        r.body
    );
    let port = server.port;
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let r = http(
            port,
            "GET",
            &format!("{wait}?timeout_ms=20000"),
            Some(AGENT),
            None,
        );
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let r = server.post(
        &format!("/v1/escalations/{esc}/approve"),
        OPERATOR,
        json!({ "reason": "the question is in scope" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (r, took) = waiter.join().expect("the waiting thread");
    let v = r.json();
    assert_eq!(v["status"], "resolved", "{v}");
    assert_eq!(v["outcome"], "allow", "{v}");
    assert!(
        took < Duration::from_secs(10),
        "the wait returned after {took:?}"
    );
    // Waiting again answers at once with the same resolution.
    let again = server
        .get(
            &format!("/v1/escalations/{esc}/wait?timeout_ms=20000"),
            AGENT,
        )
        .json();
    assert_eq!(again["outcome"], "allow");
    let metrics = server.get("/metrics", OPERATOR).body;
    assert!(
        metrics.contains("agentpolicy_pending_escalations 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agentpolicy_decisions_total{agent=\"research\",tool=\"search_case_law\",outcome=\"escalate\"} 1"),
        "{metrics}"
    );
    let log = server.stop();
    verify_passes(&log);
}

#[test]
fn a_kill_through_the_api_denies_the_next_decide_and_a_bad_reload_keeps_the_old_table() {
    let dir = temp_dir("serve-kill-table");
    let table = dir.join("table.bin");
    let built = agentpolicy(&["build", "examples/law_firm", "-o", path_str(&table)]);
    assert!(built.status.success(), "{}", stdout(&built));
    let server = Server::start("serve-kill", &["--table", path_str(&table)], &[]);
    let r = server.post("/v1/sessions", AGENT, json!({ "agent": "research" }));
    let s = r.json()["session"].as_str().expect("session").to_owned();
    let decide = format!("/v1/sessions/{s}/decide");
    let call =
        json!({ "tool": "search_case_law", "args": { "query": "caps" }, "confidence": 0.99 });
    assert_eq!(
        server.post(&decide, AGENT, call.clone()).json()["outcome"],
        "allow"
    );

    let r = server.post("/v1/kill", OPERATOR, json!({ "agent": "research" }));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = server.post(&decide, AGENT, call.clone()).json();
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("deny"), Some("suspended")),
        "{v}"
    );
    assert_eq!(
        server
            .post("/v1/resume", OPERATOR, json!({ "agent": "research" }))
            .status,
        200
    );
    assert_eq!(
        server.post(&decide, AGENT, call.clone()).json()["outcome"],
        "allow"
    );
    let r = server.post("/v1/kill", OPERATOR, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        server.post(&decide, AGENT, call.clone()).json()["reason"],
        "suspended"
    );
    assert_eq!(server.post("/v1/resume", OPERATOR, json!({})).status, 200);

    // Reload: the same table is valid and swapped in; a broken file is refused and the
    // old table keeps serving.
    let r = server.post("/v1/reload", OPERATOR, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    std::fs::write(&table, b"not a table").expect("break the table");
    let r = server.post("/v1/reload", OPERATOR, json!({}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("old table keeps serving"))
    );
    assert_eq!(server.post(&decide, AGENT, call).json()["outcome"], "allow");
    let status = server.get("/v1/status", AUDITOR).json();
    assert_eq!(status["policy"]["name"], "hartwell_pike", "{status}");

    let log = server.stop();
    verify_passes(&log);
    let controls = records(&log, "control");
    let details: Vec<&str> = controls
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("agent `research` suspended")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("table swapped")),
        "{details:?}"
    );
    let refusals = records(&log, "refusal");
    assert_eq!(refusals.len(), 1, "the bad reload: {refusals:#?}");
    assert!(
        refusals[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not valid"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_a_bad_tokens_file_before_listening() {
    let dir = temp_dir("serve-bad-tokens");
    let tokens = dir.join("tokens.json");
    std::fs::write(
        &tokens,
        r#"{"tokens": [{"name": "x", "sha256": "abc", "role": "agent", "agents": ["a"]}]}"#,
    )
    .expect("write");
    let out = agentpolicy(&[
        "serve",
        "--policy",
        "examples/law_firm",
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        path_str(&tokens),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
    assert!(stdout(&out).is_empty());
    let _ = dir;
}

/// The law firm's policy with `human_review` timing out after one second, in a
/// directory of its own (so a reload can compile an edited copy).
fn quick_timeout_policy(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/law_firm/policy.agentpolicy"))
        .expect("the law firm's policy");
    assert!(text.contains("timeout 2h then deny"));
    let policy = dir.join("policy");
    std::fs::create_dir_all(&policy).expect("policy dir");
    std::fs::write(
        policy.join("policy.agentpolicy"),
        text.replace("timeout 2h then deny", "timeout 1s then deny"),
    )
    .expect("write the policy");
    policy
}

#[test]
fn escalations_time_out_by_the_server_clock_and_reload_recompiles_the_policy() {
    let dir = temp_dir("serve-timeout-policy");
    let policy = quick_timeout_policy(&dir);
    let server = Server::start("serve-timeout", &["--policy", path_str(&policy)], &[]);
    let (_, esc) = escalate(&server);
    let started = Instant::now();
    let v = server
        .get(
            &format!("/v1/escalations/{esc}/wait?timeout_ms=20000"),
            AGENT,
        )
        .json();
    assert_eq!(
        (v["status"].as_str(), v["outcome"].as_str()),
        (Some("resolved"), Some("deny")),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Reload compiles the policy again: an edit is swapped in; a policy with errors is
    // refused and the old table keeps serving.
    let file = policy.join("policy.agentpolicy");
    let text = std::fs::read_to_string(&file).expect("read");
    let before = server.get("/v1/status", AUDITOR).json()["policy"]["source_hash"].clone();
    std::fs::write(
        &file,
        text.replace(
            "threshold confidence_floor = 0.85",
            "threshold confidence_floor = 0.40",
        ),
    )
    .expect("edit");
    let r = server.post("/v1/reload", OPERATOR, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["old"], before);
    let after = server.get("/v1/status", AUDITOR).json()["policy"]["source_hash"].clone();
    assert_ne!(before, after);
    // Confidence 0.5 no longer escalates under the new floor.
    let r = server.post("/v1/sessions", AGENT, json!({ "agent": "research" }));
    let s = r.json()["session"].as_str().expect("session").to_owned();
    let v = server
        .post(
            &format!("/v1/sessions/{s}/decide"),
            AGENT,
            json!({ "tool": "search_case_law", "args": { "query": "caps" }, "confidence": 0.5 }),
        )
        .json();
    assert_eq!(v["outcome"], "allow", "{v}");
    std::fs::write(&file, "policy broken version \"1\"\nagent {").expect("break");
    let r = server.post("/v1/reload", OPERATOR, json!({}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        server.get("/v1/status", AUDITOR).json()["policy"]["source_hash"],
        after
    );

    let log = server.stop();
    verify_passes(&log);
    let resolutions = records(&log, "resolution");
    assert_eq!(resolutions.len(), 1, "{resolutions:#?}");
    assert_eq!(resolutions[0]["resolution"], "timeout");
    assert_eq!(resolutions[0]["outcome"], "deny");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One raw HTTP/1.1 exchange with extra headers; the whole answer (head and body).
fn raw_exchange(port: u16, request_line: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head =
        format!("{request_line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(head.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw
}

/// `serve --matrix`: the page `agentpolicy matrix --format html` writes is accepted and
/// linked from the console; a page that signs another source hash is refused at start
/// with both hashes named.
#[test]
fn serve_links_the_signed_matrix_of_the_policy_it_serves_and_refuses_another() {
    let dir = temp_dir("serve-matrix");
    let page = dir.join("matrix.html");
    let made = agentpolicy(&[
        "matrix",
        "examples/law_firm",
        "--format",
        "html",
        "--output",
        path_str(&page),
    ]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let html = std::fs::read_to_string(&page).expect("the matrix page");

    // The same page with another source hash: refused before listening.
    let start = html
        .find(r#"name="agentpolicy-source-hash" content=""#)
        .expect("the page names its source hash")
        + r#"name="agentpolicy-source-hash" content=""#.len();
    let hash: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let forged = dir.join("other.html");
    let other = format!("sha256:{}", "0".repeat(64));
    std::fs::write(&forged, html.replacen(&hash, &other, 1)).expect("write");
    let tokens = service::write_tokens(&dir);
    let out = agentpolicy(&[
        "serve",
        "--policy",
        "examples/law_firm",
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        path_str(&tokens),
        "--matrix",
        path_str(&forged),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&other) && err.contains(&hash), "{err}");
    assert!(stdout(&out).is_empty());

    // The real page: served to an auditor's console session.
    let server = Server::start_in(
        &dir,
        &["--policy", "examples/law_firm", "--matrix", path_str(&page)],
    );
    let origin = format!("http://127.0.0.1:{}", server.port);
    let login = raw_exchange(
        server.port,
        "POST /console/login",
        &[
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("token={AUDITOR}"),
    );
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a console cookie")
        .to_owned();
    let answer = raw_exchange(
        server.port,
        "GET /console/matrix",
        &[("Cookie", &cookie)],
        "",
    );
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(answer.ends_with(&html), "the page is served as written");
    server.stop();
}
