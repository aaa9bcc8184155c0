//! End-to-end tests of `agentpolicy replay` and `agentpolicy audit verify|query`: every
//! example's trace replays with its expected decisions, the audit log replay writes
//! verifies, and tampering with it is caught and named.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, repo_root, stdout, temp_dir};

use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("JSON output")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every example has a trace whose `expect`s all hold, line for line.
#[test]
fn every_example_trace_replays_with_its_expected_decisions() {
    let examples = std::fs::read_dir(repo_root().join("examples")).expect("examples");
    let mut replayed = 0;
    for entry in examples {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let trace = format!("examples/{name}/trace.jsonl");
        assert!(
            repo_root().join(&trace).exists(),
            "examples/{name} has no trace.jsonl"
        );
        let o = agentpolicy(&[
            "replay",
            &format!("examples/{name}"),
            &trace,
            "--format",
            "json",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let doc = json(&o);
        let calls_with_expect = std::fs::read_to_string(repo_root().join(&trace))
            .expect("trace")
            .lines()
            .filter(|l| l.contains("\"expect\""))
            .count();
        assert_eq!(
            doc["summary"]["expectations"]["checked"].as_u64(),
            Some(calls_with_expect as u64),
            "{name}"
        );
        assert_eq!(
            doc["summary"]["expectations"]["failed_lines"],
            serde_json::json!([]),
            "{name}"
        );
        for step in doc["steps"].as_array().expect("steps") {
            if let Some(expected) = step["expected"].as_str() {
                assert_eq!(step["outcome"].as_str(), Some(expected), "{name}: {step}");
            }
        }
        replayed += 1;
    }
    assert!(replayed >= 5, "only {replayed} examples replayed");
}

#[test]
fn replay_prints_each_decision_and_a_summary() {
    let o = agentpolicy(&[
        "replay",
        "examples/law_firm",
        "examples/law_firm/trace.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("replay examples/law_firm/trace.jsonl against policy `hartwell_pike` version 2026.11, sha256:"), "{out}");
    assert!(out.contains("line 3: research-1 research search_documents#3: deny (flow): the read is for another isolation key value than the session's"), "{out}");
    assert!(
        out.contains(
            "line 7: reject research-1#5: deny: rejected by paralegal@hartwellpike.example"
        ),
        "{out}"
    );
    assert!(
        out.contains("summary: 12 calls: 5 allow, 3 escalate, 4 deny (3 in shadow mode)"),
        "{out}"
    );
    assert!(
        out.contains("  research: 2 allow, 2 escalate, 3 deny"),
        "{out}"
    );
    // Billing is in shadow mode (`stage shadow`): told Allow, the would-be outcome logged.
    assert!(out.contains("line 10: billing-1 billing transfer_from_trust#3: allow (shadow; would be: deny by rule `billing/deny/transfer_from_trust#1`"), "{out}");
    assert!(
        out.contains("first denial per session:\n  intake-1: line 11: deny (not granted)"),
        "{out}"
    );
    // Intake is supervised: its allowed tools escalate to practice support.
    assert!(out.contains("line 15: intake-1 intake check_conflicts#2: escalate to human_review by rule `intake/escalate/check_conflicts#1`"), "{out}");
    assert!(out.contains("expectations: 12 checked, 0 failed"), "{out}");
}

#[test]
fn shadow_mode_shows_the_would_be_outcome() {
    let o = agentpolicy(&[
        "replay",
        "examples/support_agent",
        "examples/support_agent/trace.jsonl",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json(&o);
    let refund = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["line"] == 11)
        .expect("line 11");
    assert_eq!(refund["outcome"], "allow");
    assert_eq!(refund["decision"], "deny");
    assert_eq!(refund["shadow"], true);
    assert_eq!(doc["summary"]["shadowed"], 4);
}

#[test]
fn a_failed_expectation_fails_the_replay() {
    let dir = temp_dir("mismatch");
    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        r#"{"session":"s","agent":"intake","tool":"read_work_product","args":{"document_id":"d"},"expect":"allow"}
"#,
    )
    .expect("write");
    let o = agentpolicy(&["replay", "examples/law_firm", path(&trace)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("MISMATCH: expected allow, got deny"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("expectations: 1 checked, 1 failed (lines 1)"));
}

#[test]
fn a_bad_trace_line_is_a_usage_error_naming_the_line() {
    let dir = temp_dir("bad-trace");
    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        "{\"op\":\"kill\"}\n{\"session\":\"s\",\"agent\":\"intake\"}\n",
    )
    .expect("write");
    let o = agentpolicy(&["replay", "examples/law_firm", path(&trace)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("trace.jsonl:2: not a trace call"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn replay_reads_a_built_table_too() {
    let dir = temp_dir("built");
    let table = dir.join("table.bin");
    let o = agentpolicy(&["build", "examples/coding_agent", "-o", path(&table)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = agentpolicy(&["replay", path(&table), "examples/coding_agent/trace.jsonl"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("expectations: 16 checked, 0 failed"));
}

#[test]
fn the_kill_file_stops_agents_in_replay() {
    let dir = temp_dir("kill-file");
    let kill = dir.join("STOP");
    std::fs::write(&kill, "coding_agent\n").expect("write");
    let o = agentpolicy(&[
        "replay",
        "examples/coding_agent",
        "examples/coding_agent/trace.jsonl",
        "--kill-file",
        path(&kill),
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "coding_agent's expectations now fail"
    );
    let doc = json(&o);
    let first = &doc["steps"][0];
    assert_eq!(first["reason"], "suspended");
    let release = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["agent"] == "release_bot")
        .expect("release_bot");
    assert_eq!(
        release["outcome"], "allow",
        "only the named agent is stopped"
    );
}

#[test]
fn the_audit_log_of_a_replay_verifies_and_queries() {
    let dir = temp_dir("audit");
    let log = dir.join("audit.jsonl");
    let o = agentpolicy(&[
        "replay",
        "examples/law_firm",
        "examples/law_firm/trace.jsonl",
        "--audit",
        path(&log),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("audit: "), "{}", stdout(&o));

    let o = agentpolicy(&["audit", "verify", path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("ok: "), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("chain intact up to record 25"),
        "{}",
        stdout(&o)
    );
    assert!(
        !stdout(&o).contains("note:"),
        "the log is sealed: {}",
        stdout(&o)
    );

    let o = agentpolicy(&[
        "audit",
        "query",
        path(&log),
        "--agent",
        "research",
        "--outcome",
        "deny",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let doc = json(&o);
    assert_eq!(
        doc["count"], 4,
        "three denied calls and a rejected escalation: {doc}"
    );
    for r in doc["records"].as_array().expect("records") {
        assert_eq!(r["agent"], "research");
        assert_eq!(r["outcome"], "deny");
        assert!(r["hash"].as_str().expect("hash").starts_with("sha256:"));
    }
    let o = agentpolicy(&[
        "audit",
        "query",
        path(&log),
        "--session",
        "intake-1",
        "--tool",
        "check_conflicts",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains(
            "decision intake-1 intake check_conflicts#2: escalate to human_review by rule"
        ),
        "{out}"
    );
    assert!(out.contains("resolution intake-1 intake check_conflicts#2 allow: approved by paralegal@hartwellpike.example"), "{out}");
    assert!(out.ends_with("2 record(s)\n"), "{out}");
    let o = agentpolicy(&[
        "audit",
        "query",
        path(&log),
        "--since",
        "2026-11-25T09:00:15Z",
        "--kind",
        "decision",
    ]);
    assert!(stdout(&o).ends_with("3 record(s)\n"), "{}", stdout(&o));
    let o = agentpolicy(&["audit", "query", path(&log), "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn audit_verify_names_tampering_and_reports_a_torn_tail() {
    let dir = temp_dir("tamper");
    let log = dir.join("audit.jsonl");
    let o = agentpolicy(&[
        "replay",
        "examples/law_firm",
        "examples/law_firm/trace.jsonl",
        "--audit",
        path(&log),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let original = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = original.lines().collect();

    let edited = original.replacen("\"outcome\":\"deny\"", "\"outcome\":\"allow\"", 1);
    std::fs::write(&log, &edited).expect("write");
    let o = agentpolicy(&["audit", "verify", path(&log), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc = json(&o);
    assert_eq!(doc["intact"], false);
    assert_eq!(doc["problems"][0]["kind"], "edited");

    let mut deleted = lines.clone();
    deleted.remove(10);
    std::fs::write(&log, deleted.join("\n") + "\n").expect("write");
    let o = agentpolicy(&["audit", "verify", path(&log)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("error: line 11: record 11 was deleted"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("FAILED"), "{}", stdout(&o));

    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    std::fs::write(&log, swapped.join("\n") + "\n").expect("write");
    let o = agentpolicy(&["audit", "verify", path(&log)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("record 5 was moved: it comes after record 6"),
        "{}",
        stdout(&o)
    );

    // A crash mid-write: the last line is cut short. Not tampering: reported, exit 0.
    let torn = format!("{}{}", lines[..20].join("\n") + "\n", &lines[20][..30]);
    std::fs::write(&log, torn).expect("write");
    let o = agentpolicy(&["audit", "verify", path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("warning: line 21: torn tail of 30 bytes"),
        "{out}"
    );
    assert!(out.contains("chain intact up to record 20"), "{out}");
    assert!(out.contains("note: the log has no close record"), "{out}");

    // Cut clean at a line end: only the head kept elsewhere shows it.
    let head_line = lines[24];
    let hash = &head_line[head_line.len() - 73..head_line.len() - 2];
    std::fs::write(&log, lines[..20].join("\n") + "\n").expect("write");
    let o = agentpolicy(&[
        "audit",
        "verify",
        path(&log),
        "--head",
        &format!("25:{hash}"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(
            "the log was truncated: it ends at record 20, but the anchor names record 25"
        ),
        "{}",
        stdout(&o)
    );

    let o = agentpolicy(&["audit", "verify", "no/such/log.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
}
