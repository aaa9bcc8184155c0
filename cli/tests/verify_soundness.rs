//! Issue 22, "soundness first": false proofs turned into refutations, each shown end to
//! end. The trace that broke the property runs through the real engine (`replay`) and
//! does what the property forbids; `check` now refutes the policy; and the counterexample
//! `check` prints, replayed through the engine, does it again.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, stdout, temp_dir};

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).expect("json output")
}

/// `check --format json`: exit code, sorted codes, diagnostics.
fn check(policy: &str) -> (Option<i32>, Vec<String>, Vec<serde_json::Value>) {
    let o = agentpolicy(&["check", policy, "--format", "json"]);
    let doc = json(&o);
    let diagnostics = doc["policies"][0]["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut codes: Vec<String> = diagnostics
        .iter()
        .filter_map(|d| d["code"].as_str().map(str::to_string))
        .collect();
    codes.sort();
    codes.dedup();
    (o.status.code(), codes, diagnostics)
}

/// `replay POLICY TRACE --format json`: exit code and steps.
fn replay(policy: &str, trace: &str) -> (Option<i32>, Vec<serde_json::Value>) {
    let o = agentpolicy(&["replay", policy, trace, "--format", "json"]);
    let doc = json(&o);
    let steps = doc["steps"].as_array().cloned().unwrap_or_default();
    (o.status.code(), steps)
}

fn resolutions(steps: &[serde_json::Value]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s["kind"] == "resolution")
        .map(|s| format!("{}:{}", s["resolution"], s["outcome"]).replace('"', ""))
        .collect()
}

const TIMEOUT_ALLOWS: &str = "tests/fixtures/verify/escalation_timeout_allows.agentpolicy";

/// Defect 1: an escalation whose route times out to allow is not a human. The recorded
/// trace pays an untrusted payee $4,800 after reading untrusted mail, nobody answers, and
/// the engine runs the payment at 10 minutes; `check` refuses the policy on all three
/// properties that promise a person, and says it is the route's timeout.
#[test]
fn an_escalation_that_times_out_to_allow_is_not_a_human() {
    let (code, steps) = replay(
        TIMEOUT_ALLOWS,
        "tests/fixtures/verify/escalation_timeout_allows.jsonl",
    );
    assert_eq!(code, Some(0), "{steps:#?}");
    assert_eq!(resolutions(&steps), ["timeout:allow"], "{steps:#?}");

    let (code, codes, diagnostics) = check(TIMEOUT_ALLOWS);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["AP0103", "AP0109", "AP0113"]);
    let dir = temp_dir("timeout-allows");
    for d in &diagnostics {
        let cex = &d["counterexample"];
        let explanation = cex["explanation"].as_str().expect("explanation");
        assert!(
            explanation.contains(
                "escalates to `owner_phone`, whose timeout after 10m allows without a human"
            ),
            "{explanation}"
        );
        assert_eq!(cex["outcome"], "escalate");
        // The counterexample as a trace: the session is tainted by reading the inbox
        // when the counterexample says so; then the request; then nobody answers.
        let request = &cex["request"];
        let mut lines = Vec::new();
        if request["session"]["tainted"] == true {
            lines.push(
                serde_json::json!({"at": 0, "session": "s", "agent": "assistant",
                "tool": "read_inbox", "args": {"folder": "inbox"}, "expect": "allow"}),
            );
        }
        let mut call = serde_json::json!({"at": 60_000, "session": "s",
            "agent": request["agent"], "tool": request["tool"], "expect": "escalate"});
        for field in ["args", "untrusted", "confidence"] {
            if let Some(v) = request.get(field) {
                call[field] = v.clone();
            }
        }
        lines.push(call);
        lines.push(serde_json::json!({"at": 60_000 + 600_000, "session": "s",
            "agent": "assistant", "tool": "read_inbox", "args": {"folder": "inbox"}}));
        let trace = dir.join(format!("{}.jsonl", d["code"].as_str().unwrap_or("x")));
        let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
        std::fs::write(&trace, text.join("\n")).expect("write trace");
        let (code, steps) = replay(TIMEOUT_ALLOWS, &trace.display().to_string());
        assert_eq!(code, Some(0), "{steps:#?}");
        assert_eq!(resolutions(&steps), ["timeout:allow"], "{steps:#?}");
    }
}

/// Several routes on one escalation, as the engine resolves them: the earliest timeout
/// ends the wait, and it allows only when every route with a timeout allows. With a
/// route that denies on timeout matched too, the properties hold and the engine denies.
#[test]
fn several_routes_allow_on_timeout_only_when_every_route_does() {
    let ok = "tests/fixtures/verify/ok/escalation_timeout_routes.agentpolicy";
    let (code, codes, _) = check(ok);
    assert_eq!((code, codes.len()), (Some(0), 0), "{codes:?}");
    let dir = temp_dir("timeout-routes");
    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        [
            r#"{"at":0,"session":"s","agent":"assistant","tool":"send_money","args":{"recipient":"x","amount":"$4,800"},"expect":"escalate"}"#,
            r#"{"at":660000,"session":"s","agent":"assistant","tool":"read_inbox","args":{"folder":"inbox"}}"#,
        ]
        .join("\n"),
    )
    .expect("write trace");
    let (code, steps) = replay(ok, &trace.display().to_string());
    assert_eq!(code, Some(0), "{steps:#?}");
    assert_eq!(resolutions(&steps), ["timeout:deny"], "{steps:#?}");

    let all_allow = "tests/fixtures/verify/escalation_timeout_routes_allow.agentpolicy";
    let (code, codes, diagnostics) = check(all_allow);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["AP0103", "AP0104"]);
    let risky = diagnostics
        .iter()
        .find(|d| d["code"] == "AP0103")
        .expect("AP0103");
    let request = &risky["counterexample"]["request"];
    let mut call = serde_json::json!({"at": 0, "session": "s", "agent": "assistant",
        "tool": "send_money", "expect": "escalate"});
    call["args"] = request["args"].clone();
    std::fs::write(
        &trace,
        format!(
            "{call}\n{}",
            r#"{"at":660000,"session":"t","agent":"assistant","tool":"send_money","args":{"recipient":"x","amount":"$1"}}"#
        ),
    )
    .expect("write trace");
    let (code, steps) = replay(all_allow, &trace.display().to_string());
    assert_eq!(code, Some(0), "{steps:#?}");
    assert_eq!(resolutions(&steps), ["timeout:allow"], "{steps:#?}");
}

/// Defect 6: a call of a tool that reads and writes keyed data could name only its read,
/// and the write's key was checked by nobody. The runtime fails closed: such a call is
/// denied (flow), and so is one naming only an unkeyed sink of the tool.
#[test]
fn a_keyed_write_must_be_named() {
    let policy = "tests/fixtures/policy_tests/keyed_write_named.agentpolicy";
    let (code, steps) = replay(
        policy,
        "tests/fixtures/policy_tests/keyed_write_named.jsonl",
    );
    assert_eq!(code, Some(0), "{steps:#?}");
    let outcomes: Vec<String> = steps
        .iter()
        .map(|s| format!("{}:{}", s["outcome"], s["reason"]).replace('"', ""))
        .collect();
    assert_eq!(
        outcomes,
        ["deny:flow", "allow:rule", "deny:flow"],
        "{steps:#?}"
    );
    let o = agentpolicy(&["test", policy]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let (code, codes, _) = check(policy);
    assert_eq!((code, codes.len()), (Some(0), 0), "{codes:?}");
}

/// A counterexample trace as a replay trace: one session, each call with the outcome the
/// counterexample states as its expectation.
fn as_trace(cex: &serde_json::Value) -> String {
    let calls: Vec<&serde_json::Value> = match cex.get("trace") {
        Some(t) => t.as_array().expect("trace").iter().collect(),
        None => vec![cex],
    };
    let mut lines = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let request = &call["request"];
        let mut line = serde_json::json!({"at": i * 1000, "session": "cex",
            "agent": request["agent"], "tool": request["tool"], "expect": call["outcome"]});
        for field in ["args", "untrusted", "confidence", "read"] {
            if let Some(v) = request.get(field) {
                line[field] = v.clone();
            }
        }
        if let Some(w) = request.get("write") {
            line["write"] = serde_json::json!({"sink": w["sink"], "keys": w["keys"]});
        }
        if i == 0
            && let Some(bound) = request["session"].get("bound")
        {
            line["bind"] = bound.clone();
        }
        lines.push(line.to_string());
    }
    lines.join("\n")
}

/// Defect 5: a session bound to matter M-1 `remember`s its data into an unkeyed store and
/// a session bound to M-2 `recall`s it. Every call of the recorded trace goes through;
/// with the store declared as one (`from agent_memory`), `check` refutes isolation, and
/// its counterexample session replays through the engine. Keyed on both sides, it holds.
#[test]
fn data_that_goes_out_through_a_store_and_comes_back_is_followed() {
    let policy = "tests/fixtures/verify/isolation_through_store.agentpolicy";
    let (code, steps) = replay(
        policy,
        "tests/fixtures/verify/isolation_through_store.jsonl",
    );
    assert_eq!(code, Some(0), "{steps:#?}");
    assert!(steps.iter().all(|s| s["outcome"] == "allow"), "{steps:#?}");

    let (code, codes, diagnostics) = check(policy);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["AP0100"]);
    let cex = &diagnostics[0]["counterexample"];
    let explanation = cex["explanation"].as_str().expect("explanation");
    assert!(
        explanation.contains("which returns what is written to the store `agent_memory`"),
        "{explanation}"
    );
    assert!(
        explanation.contains("(calls `read_notes`, then `remember`)"),
        "{explanation}"
    );
    let dir = temp_dir("store");
    let trace = dir.join("cex.jsonl");
    std::fs::write(&trace, as_trace(cex)).expect("write trace");
    let (code, steps) = replay(policy, &trace.display().to_string());
    assert_eq!(code, Some(0), "{steps:#?}");

    let keyed = "tests/fixtures/verify/ok/isolation_keyed_store.agentpolicy";
    let (code, codes, _) = check(keyed);
    assert_eq!((code, codes.len()), (Some(0), 0), "{codes:?}");
}
