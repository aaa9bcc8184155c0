//! End-to-end tests of the lifecycle commands: `agentpolicy promote-check` (promote,
//! stay, not enough evidence, a tampered log refused) and `agentpolicy audit
//! shadow-report`, on the law firm example's recorded shadow log and on logs written by
//! replaying small traces; and the trace fields `context`, `reasoning` and `human`.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, repo_root, stdout, temp_dir};

use std::path::{Path, PathBuf};
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

const EXAMPLE_LOG: &str = "examples/law_firm/shadow/audit.jsonl";

/// A billing agent in shadow mode whose promotion needs 75% agreement over 4 decisions.
const POLICY: &str = r#"policy rollout version "1"

tool send_invoice(amount: money) { effect financial }

escalation partners { notify "queue:partners"  timeout 4h then deny }

agent billing {
  owner "finance@firm.example"
  allow send_invoice when amount < $5,000
  escalate send_invoice to partners when amount >= $5,000
  stage shadow
  promote to supervised when shadow_agreement >= 75% over 4 decisions and errors < 50%
}
"#;

/// A trace line of the billing agent: an invoice and what the clerk did.
fn invoice(n: u32, amount: &str, human: &str) -> String {
    format!(
        r#"{{"at":{at},"session":"b-{n}","agent":"billing","tool":"send_invoice","args":{{"amount":"{amount}"}},"result":{{"ok":true}},"human":{{"action":"{human}","by":"clerk"}}}}"#,
        at = n * 1000
    )
}

/// Writes the policy and a trace of `lines`, replays it with an audit log; returns the
/// policy's and the log's paths.
fn replayed(name: &str, lines: &[String]) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let policy = dir.join("policy.agentpolicy");
    std::fs::write(&policy, POLICY).expect("write policy");
    let trace = dir.join("trace.jsonl");
    std::fs::write(&trace, lines.join("\n") + "\n").expect("write trace");
    let log = dir.join("audit.jsonl");
    let o = agentpolicy(&["replay", path(&policy), path(&trace), "--audit", path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    (policy, log)
}

#[test]
fn promote_check_gives_the_law_firm_examples_documented_answer() {
    let o = agentpolicy(&["promote-check", "examples/law_firm", EXAMPLE_LOG]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    insta::assert_snapshot!("law_firm_promote_check", out);
    // The example's README quotes the same answer.
    let readme =
        std::fs::read_to_string(repo_root().join("examples/law_firm/README.md")).expect("README");
    assert!(
        readme.contains(&out),
        "examples/law_firm/README.md must quote promote-check's output:\n{out}"
    );

    let o = agentpolicy(&[
        "promote-check",
        "examples/law_firm",
        EXAMPLE_LOG,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let doc = json(&o);
    let agents = doc["agents"].as_array().expect("agents");
    let verdicts: Vec<(&str, &str)> = agents
        .iter()
        .map(|a| {
            (
                a["agent"].as_str().expect("name"),
                a["verdict"].as_str().expect("verdict"),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("intake", "not_enough_evidence"),
            ("research", "final_stage"),
            ("billing", "promote")
        ]
    );
    let billing = &agents[2];
    assert_eq!(billing["window"], 40);
    assert_eq!(billing["available"], 46);
    assert_eq!(billing["criteria"][0]["value"], 975_000);
    assert_eq!(billing["criteria"][0]["pass"], true);
}

#[test]
fn promote_check_says_stay_when_a_criterion_fails() {
    let (policy, log) = replayed(
        "stay",
        &[
            invoice(1, "$100", "allow"),
            invoice(2, "$200", "deny"),
            invoice(3, "$9,000", "allow"),
            invoice(4, "$9,000", "escalate"),
        ],
    );
    let o = agentpolicy(&["promote-check", path(&policy), path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("shadow_agreement >= 75%             50%  (2 of 4 decisions agreed with the human)  FAIL"),
        "{out}"
    );
    assert!(
        out.contains("errors < 50%                         0%  (0 of 4 reported results)  pass"),
        "{out}"
    );
    assert!(out.contains("verdict: stays at shadow"), "{out}");
}

#[test]
fn promote_check_passes_on_exactly_the_threshold_over_the_most_recent_window() {
    // The first decision disagrees but falls out of the window of the last four.
    let (policy, log) = replayed(
        "pass",
        &[
            invoice(1, "$100", "deny"),
            invoice(2, "$100", "allow"),
            invoice(3, "$100", "deny"),
            invoice(4, "$9,000", "escalate"),
            invoice(5, "$100", "allow"),
        ],
    );
    let o = agentpolicy(&[
        "promote-check",
        path(&policy),
        path(&log),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json(&o);
    let billing = &doc["agents"][0];
    assert_eq!(billing["available"], 5);
    assert_eq!(billing["measured"], 4);
    assert_eq!(
        billing["criteria"][0]["value"], 750_000,
        "3 of 4: exactly 75%"
    );
    assert_eq!(billing["verdict"], "promote");
}

#[test]
fn promote_check_never_passes_on_too_little_evidence() {
    let (policy, log) = replayed(
        "few",
        &[invoice(1, "$100", "allow"), invoice(2, "$100", "allow")],
    );
    let o = agentpolicy(&["promote-check", path(&policy), path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("shadow_agreement >= 75%            100%  (2 of 2 decisions agreed with the human)  pass"),
        "{out}"
    );
    assert!(
        out.contains("verdict: not enough evidence: 2 of 4 decisions"),
        "{out}"
    );
}

#[test]
fn promote_check_refuses_a_tampered_log_and_reports_usage_errors() {
    let dir = temp_dir("tampered");
    let log = dir.join("audit.jsonl");
    let original = std::fs::read_to_string(repo_root().join(EXAMPLE_LOG)).expect("example log");
    // A disagreement rewritten into an agreement: the figures would improve.
    let forged = original.replacen(
        "\"context\":\"schedule:nightly-billing\",\"human\":\"escalate\"",
        "\"context\":\"schedule:nightly-billing\",\"human\":\"allow\"",
        1,
    );
    assert!(forged != original, "the forgery changed nothing");
    std::fs::write(&log, forged).expect("write");
    let o = agentpolicy(&["promote-check", "examples/law_firm", path(&log)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "", "nothing is evaluated");
    assert!(stderr(&o).contains("was edited"), "{}", stderr(&o));
    assert!(stderr(&o).contains("fails verification"), "{}", stderr(&o));
    let o = agentpolicy(&["audit", "shadow-report", path(&log)]);
    assert_eq!(o.status.code(), Some(1));

    let missing = dir.join("missing.jsonl");
    let o = agentpolicy(&["promote-check", "examples/law_firm", path(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));

    let broken = dir.join("broken.agentpolicy");
    std::fs::write(
        &broken,
        POLICY.replace("stage shadow", "stage shadow\n  mode enforce"),
    )
    .expect("write");
    let o = agentpolicy(&["promote-check", path(&broken), EXAMPLE_LOG]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("AP0061"), "{}", stderr(&o));
}

#[test]
fn shadow_report_shows_agreement_and_disagreements() {
    let o = agentpolicy(&["audit", "shadow-report", EXAMPLE_LOG]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("law_firm_shadow_report", stdout(&o));

    let o = agentpolicy(&[
        "audit",
        "shadow-report",
        EXAMPLE_LOG,
        "--agent",
        "billing",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let doc = json(&o);
    assert_eq!(doc["compared"], 46);
    assert_eq!(doc["agreed"], 43);
    let d = doc["disagreements"].as_array().expect("disagreements");
    assert_eq!(d.len(), 3);
    assert_eq!(d[2]["tool"], "transfer_from_trust");
    assert_eq!(d[2]["policy"], "escalate");
    assert_eq!(d[2]["human"], "allow");
    assert_eq!(d[2]["shadow"], true);

    let o = agentpolicy(&["audit", "shadow-report", EXAMPLE_LOG, "--agent", "intake"]);
    assert!(stdout(&o).contains("nothing to compare"), "{}", stdout(&o));
}

#[test]
fn trace_context_reasoning_and_human_reach_the_audit_log() {
    let mut first = invoice(1, "$100", "deny");
    first = first.replacen(
        "\"result\"",
        "\"context\":\"user:alice@firm.example\",\"reasoning\":\"Monthly invoice per the engagement letter\",\"result\"",
        1,
    );
    let (_, log) = replayed("fields", &[first]);
    let o = agentpolicy(&["audit", "query", path(&log), "--format", "json"]);
    let doc = json(&o);
    let records = doc["records"].as_array().expect("records");
    let session = records
        .iter()
        .find(|r| r["kind"] == "session")
        .expect("session record");
    assert_eq!(session["context"], "user:alice@firm.example");
    let decision = records
        .iter()
        .find(|r| r["kind"] == "decision")
        .expect("decision");
    assert_eq!(decision["context"], "user:alice@firm.example");
    assert_eq!(
        decision["reasoning"],
        "Monthly invoice per the engagement letter"
    );
    let human = records
        .iter()
        .find(|r| r["kind"] == "human")
        .expect("human record");
    assert_eq!(human["human"], "deny");
    assert_eq!(human["by"], "clerk");
    assert_eq!(human["call"], 1);

    let o = agentpolicy(&["audit", "query", path(&log), "--kind", "human"]);
    let out = stdout(&o);
    assert!(
        out.contains("human b-1 billing human deny by clerk [context user:alice@firm.example]"),
        "{out}"
    );
    let o = agentpolicy(&["audit", "query", path(&log), "--kind", "decision"]);
    assert!(
        stdout(&o).contains("(reasoning: Monthly invoice per the engagement letter)"),
        "{}",
        stdout(&o)
    );

    // Replay shows the comparison on the line.
    let dir = temp_dir("fields-replay");
    let policy = dir.join("policy.agentpolicy");
    std::fs::write(&policy, POLICY).expect("write policy");
    let trace = dir.join("trace.jsonl");
    std::fs::write(&trace, invoice(1, "$100", "deny") + "\n").expect("write trace");
    let o = agentpolicy(&["replay", path(&policy), path(&trace)]);
    assert!(
        stdout(&o).contains("[human: deny, disagrees]"),
        "{}",
        stdout(&o)
    );

    // `context` on a line of a session already open is an error naming the line.
    std::fs::write(
        &trace,
        format!(
            "{}\n{}\n",
            invoice(1, "$100", "allow"),
            invoice(1, "$100", "allow").replacen(
                "\"result\"",
                "\"context\":\"late\",\"result\"",
                1
            )
        ),
    )
    .expect("write trace");
    let o = agentpolicy(&["replay", path(&policy), path(&trace)]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(":2: session `b-1` is already open"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_supervised_agents_results_count_once_its_calls_are_approved() {
    let dir = temp_dir("supervised");
    let policy = dir.join("policy.agentpolicy");
    std::fs::write(
        &policy,
        POLICY.replace(
            "stage shadow\n  promote to supervised when shadow_agreement >= 75% over 4 decisions and errors < 50%",
            "stage supervised to partners\n  promote to autonomous when approval_rate >= 50% over 3 decisions and errors < 50%",
        ),
    )
    .expect("write policy");
    // Every grant escalates; the first call's result is an error, the second call is
    // rejected (so it never ran and has no result), the third approved and fine.
    let call = |n: u32, ok: bool| {
        format!(
            r#"{{"at":{at},"session":"b-{n}","agent":"billing","tool":"send_invoice","args":{{"amount":"$100"}},"result":{{"ok":{ok}}},"expect":"escalate"}}"#,
            at = n * 1000
        )
    };
    let op = |n: u32, op: &str| {
        format!(
            r#"{{"at":{at},"op":"{op}","session":"b-{n}","by":"partner"}}"#,
            at = n * 1000 + 500
        )
    };
    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        [
            call(1, false),
            op(1, "approve"),
            call(2, true),
            op(2, "reject"),
            call(3, true),
            op(3, "approve"),
        ]
        .join("\n")
            + "\n",
    )
    .expect("write trace");
    let log = dir.join("audit.jsonl");
    let o = agentpolicy(&["replay", path(&policy), path(&trace), "--audit", path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("approve b-1#1: allow: approved by partner [result: error]"),
        "{out}"
    );
    assert!(
        out.contains("reject b-2#1: deny: rejected by partner\n"),
        "{out}"
    );
    let o = agentpolicy(&["promote-check", path(&policy), path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "approval_rate >= 50%             66.66%  (2 of 3 escalations approved)  pass"
        ),
        "{out}"
    );
    assert!(
        out.contains("errors < 50%                        50%  (1 of 2 reported results)  FAIL"),
        "{out}"
    );
    assert!(out.contains("verdict: stays at supervised"), "{out}");
}
