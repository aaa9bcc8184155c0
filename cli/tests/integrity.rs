//! Issue 9 end to end: value sets (in the policy and bound at deploy time), globs,
//! `list<text>` quantifiers, argument provenance and session taint, through the
//! compiler, the decision table, the request builder and the engine's public API; and
//! the verifier's verdicts on them through the CLI.
#![expect(
    clippy::expect_used,
    reason = "test helpers: a broken fixture should fail loudly"
)]

use std::path::PathBuf;
use std::process::Command;

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_runtime::engine::{Reason, SessionOptions};
use agentpolicy_runtime::{
    ArgValue, Call, DecisionTable, Engine, EngineConfig, Outcome, RequestError, decide,
};

/// The per-query time limit of the `check` runs: generous, because a busy CI machine
/// must not turn a proof into an Unknown (these queries take well under a second alone).
const GENEROUS_MS: &str = "120000";

const POLICY: &str = r#"
policy mail_and_money version "1"
tiers public < internal
escalation approver { notify "push:owner" timeout 1h then deny }
set payees = ["GB29NWBK60161331926819", "DE89370400440532013000"]
set partners from deploy
resource mailbox { tier internal untrusted }
resource notes { tier internal }
tool read_mail(folder: text) { effect read reads mailbox }
tool read_notes() { effect read reads notes }
tool fetch(url: text) { effect read untrusted }
tool send(recipients: list<text>) { effect write, external }
tool pay(payee: text, amount: money) { effect financial, irreversible }
tool share(with: text) { effect external }
tool snooze(days: number) { effect write }
agent assistant {
  owner "owner@home.example"
  allow read_mail
  allow read_notes
  allow fetch
  allow send when all recipients matches "*@home.example"
  escalate send to approver when any recipients not matches "*@home.example"
  deny send when recipients from untrusted
  allow pay when payee in payees and amount <= $500
  allow snooze when days in 1..30
  escalate pay to approver when tainted
  deny pay when payee not in payees
  allow share when with in partners
  autonomy pay when payee in payees and amount <= $500 because "known payees, small amounts"
}
"#;

fn compile(text: &str) -> DecisionTable {
    let mut db = Database::default();
    let loaded = db.load(vec![("policy.agentpolicy".into(), text.into())]);
    let analysis = db.analysis(loaded);
    assert!(
        !analysis.has_errors(),
        "the fixture policy has errors: {:?}",
        analysis.diagnostics
    );
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    codegen::build_table(&analysis.model, &sources).expect("the fixture compiles")
}

fn engine(table: DecisionTable) -> Engine {
    Engine::new(table, EngineConfig::default()).expect("engine")
}

#[test]
fn a_session_is_tainted_by_an_untrusted_resource_or_tool_and_stays_tainted() {
    let engine = engine(compile(POLICY));
    let session = engine
        .open_session("assistant", SessionOptions::default())
        .expect("session");
    let rent = [
        ("payee", ArgValue::Text("GB29NWBK60161331926819")),
        ("amount", ArgValue::Money(45_000)),
    ];
    // A clean session pays a known payee on its own; trusted notes do not taint.
    assert_eq!(
        engine.decide(session, &Call::new("read_notes")).outcome,
        Outcome::Allow
    );
    assert!(!engine.session(session).expect("state").tainted);
    assert_eq!(
        engine
            .decide(session, &Call::new("pay").args(&rent))
            .outcome,
        Outcome::Allow
    );
    // Reading the mailbox taints the session for the rest of its life.
    let folder = [("folder", ArgValue::Text("INBOX"))];
    assert_eq!(
        engine
            .decide(session, &Call::new("read_mail").args(&folder))
            .outcome,
        Outcome::Allow
    );
    assert!(engine.session(session).expect("state").tainted);
    let after = engine.decide(session, &Call::new("pay").args(&rent));
    assert_eq!(after.outcome, Outcome::Escalate);
    assert_eq!(
        engine.decide(session, &Call::new("read_notes")).outcome,
        Outcome::Allow
    );
    assert_eq!(
        engine
            .decide(session, &Call::new("pay").args(&rent))
            .outcome,
        Outcome::Escalate,
        "taint is never cleared"
    );

    // A tool whose output is untrusted taints too; another session is not affected.
    let other = engine
        .open_session("assistant", SessionOptions::default())
        .expect("session");
    assert_eq!(
        engine.decide(other, &Call::new("pay").args(&rent)).outcome,
        Outcome::Allow
    );
    let url = [("url", ArgValue::Text("https://recipes.example"))];
    engine.decide(other, &Call::new("fetch").args(&url));
    assert!(engine.session(other).expect("state").tainted);
}

#[test]
fn a_denied_call_does_not_taint() {
    let policy = POLICY.replace(
        "  allow read_mail\n",
        "  deny read_mail\n  allow read_notes when false\n",
    );
    let engine = engine(compile(&policy));
    let session = engine
        .open_session("assistant", SessionOptions::default())
        .expect("session");
    let folder = [("folder", ArgValue::Text("INBOX"))];
    let v = engine.decide(session, &Call::new("read_mail").args(&folder));
    assert_eq!(v.outcome, Outcome::Deny);
    assert!(!engine.session(session).expect("state").tainted);
}

#[test]
fn argument_provenance_sets_globs_and_lists_decide_as_written() {
    let engine = engine(compile(POLICY));
    let session = engine
        .open_session("assistant", SessionOptions::default())
        .expect("session");
    let decide = |args: &[(&str, ArgValue<'_>)], untrusted: &[&str]| {
        engine
            .decide(session, &Call::new("send").args(args).untrusted(untrusted))
            .outcome
    };
    let home: &[&str] = &["ana@home.example", "sam@home.example"];
    let mixed: &[&str] = &["ana@home.example", "x@evil.example"];
    let empty: &[&str] = &[];
    assert_eq!(
        decide(&[("recipients", ArgValue::TextList(home))], &[]),
        Outcome::Allow
    );
    assert_eq!(
        decide(&[("recipients", ArgValue::TextList(mixed))], &[]),
        Outcome::Escalate
    );
    // `all` holds of an empty list, `any` does not.
    assert_eq!(
        decide(&[("recipients", ArgValue::TextList(empty))], &[]),
        Outcome::Allow
    );
    // A recipient the framework copied out of untrusted content is refused.
    assert_eq!(
        decide(&[("recipients", ArgValue::TextList(home))], &["recipients"]),
        Outcome::Deny
    );
    // A list where a text is expected, and the reverse, are request errors: denied.
    let wrong = engine.decide(
        session,
        &Call::new("send").args(&[("recipients", ArgValue::Text("ana@home.example"))]),
    );
    assert_eq!(wrong.outcome, Outcome::Deny);
    assert!(matches!(
        wrong.reason,
        Reason::Request(RequestError::WrongType { .. })
    ));

    // Sets and ranges: a payee outside the set is refused; a number outside the range
    // finds no allow rule.
    let pay = |payee: &'static str, cents: i64| {
        engine
            .decide(
                session,
                &Call::new("pay").args(&[
                    ("payee", ArgValue::Text(payee)),
                    ("amount", ArgValue::Money(cents)),
                ]),
            )
            .outcome
    };
    assert_eq!(pay("GB29NWBK60161331926819", 50_000), Outcome::Allow);
    assert_eq!(pay("GB29NWBK60161331926819", 50_001), Outcome::Deny);
    assert_eq!(pay("GB33BUKB20201555555555", 10_00), Outcome::Deny);
    for (days, expected) in [
        (0, Outcome::Deny),
        (1, Outcome::Allow),
        (30, Outcome::Allow),
        (31, Outcome::Deny),
    ] {
        let v = engine.decide(
            session,
            &Call::new("snooze").args(&[("days", ArgValue::Number(days * 1_000_000))]),
        );
        assert_eq!(v.outcome, expected, "snooze {days} days");
    }
}

#[test]
fn deploy_time_sets_fail_closed_until_bound_and_bind_from_json() {
    let table = compile(POLICY);
    assert_eq!(table.unbound_sets().collect::<Vec<_>>(), vec!["partners"]);
    let with = |t: &DecisionTable, who: &str| {
        let request = t
            .request("assistant", "share")
            .expect("request")
            .arg("with", ArgValue::Text(who));
        request.map(|b| decide(t, &b.build()).outcome)
    };
    // Unbound: building the request fails, so the engine denies the call.
    assert!(matches!(
        with(&table, "acme"),
        Err(RequestError::UnboundSet { .. })
    ));
    let unbound = engine(table.clone());
    let s = unbound
        .open_session("assistant", SessionOptions::default())
        .expect("session");
    let v = unbound.decide(
        s,
        &Call::new("share").args(&[("with", ArgValue::Text("acme"))]),
    );
    assert_eq!(v.outcome, Outcome::Deny);
    assert!(table.deploy_sets_summary().contains("`partners` (unbound"));

    let (bound, hashes) = table
        .bind_sets(r#"{"partners": ["globex", "acme", "acme"]}"#)
        .expect("bind");
    assert_eq!(with(&bound, "acme"), Ok(Outcome::Allow));
    assert_eq!(with(&bound, "initech"), Ok(Outcome::Deny));
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].0, "partners");
    // The hash is of the sorted, distinct members: order and repeats do not matter.
    let (_, again) = table
        .bind_sets(r#"{"partners": ["acme", "globex"]}"#)
        .expect("bind");
    assert_eq!(hashes, again);
    assert!(
        bound
            .deploy_sets_summary()
            .contains("`partners` (2 members, sha256:")
    );

    for (json, why) in [
        (r#"{"payees": ["x"]}"#, "not `from deploy`"),
        (r#"{"nobody": []}"#, "no set `nobody`"),
        (r#"{"partners": [1]}"#, "strings only"),
        (r#"["partners"]"#, "JSON object"),
        ("{", "not JSON"),
    ] {
        let err = table.bind_sets(json).expect_err(json);
        assert!(err.contains(why), "{json}: {err}");
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run agentpolicy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentpolicy-integrity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn the_verifier_proves_and_refutes_asserts_over_sets_patterns_and_taint() {
    let proved = temp(
        "proved.agentpolicy",
        &format!(
            "{POLICY}\nassert never assistant calls pay when payee not in payees\n\
             assert never assistant calls send when any recipients matches \"*@evil.example\" and recipients from untrusted\n\
             assert every irreversible tool escalates when tainted\n"
        ),
    );
    let (code, text) = run(&[
        "check",
        "--timeout-ms",
        GENEROUS_MS,
        proved.to_str().expect("path"),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("0 counterexample(s), 0 unknown"), "{text}");

    // The same asserts over a policy that lets them fail: a counterexample each, which
    // the CLI has already replayed through the runtime (a disagreement would be an
    // Unknown, failing the test below).
    let broken = POLICY
        .replace("  escalate pay to approver when tainted\n", "")
        .replace(
            "  deny pay when payee not in payees\n",
            "  escalate pay to approver when payee matches \"GB*\"\n",
        );
    let refuted = temp(
        "refuted.agentpolicy",
        &format!(
            "{broken}\nassert never assistant calls pay when payee not in payees\n\
             assert never assistant calls send when any recipients matches \"*@evil.example\"\n\
             assert every irreversible tool escalates when tainted\n"
        ),
    );
    let (code, text) = run(&[
        "check",
        "--timeout-ms",
        GENEROUS_MS,
        refuted.to_str().expect("path"),
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("3 counterexample(s), 0 unknown"), "{text}");
    assert!(text.contains("[AP0113]"), "{text}");
    assert!(text.contains("\"tainted\": true"), "{text}");
    assert!(text.contains("@evil.example"), "{text}");
}

#[test]
fn decide_and_replay_bind_deploy_time_sets_from_a_file() {
    let policy = temp("deploy.agentpolicy", POLICY);
    let table = temp("deploy.table", "");
    let (code, text) = run(&[
        "build",
        policy.to_str().expect("path"),
        "-o",
        table.to_str().expect("path"),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let request = temp(
        "share.json",
        r#"{"agent": "assistant", "tool": "share", "args": {"with": "acme"}}"#,
    );
    let sets = temp("sets.json", r#"{"partners": ["acme"]}"#);
    let t = table.to_str().expect("path");
    let r = request.to_str().expect("path");
    let (code, text) = run(&["decide", t, r, "--sets", sets.to_str().expect("path")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("allow"), "{text}");
    let (code, text) = run(&["decide", t, r]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("never bound") && text.contains("--sets"),
        "{text}"
    );

    let trace = temp(
        "trace.jsonl",
        concat!(
            r#"{"session":"s","agent":"assistant","tool":"share","args":{"with":"acme"},"expect":"allow"}"#,
            "\n",
            r#"{"session":"s","agent":"assistant","tool":"read_mail","args":{"folder":"INBOX"},"expect":"allow"}"#,
            "\n",
            r#"{"session":"s","agent":"assistant","tool":"pay","args":{"payee":"GB29NWBK60161331926819","amount":"$20"},"expect":"escalate"}"#,
            "\n",
            r#"{"session":"s","agent":"assistant","tool":"send","args":{"recipients":["ana@home.example"]},"untrusted":["recipients"],"expect":"deny","expect_reason":"rule"}"#,
            "\n",
        ),
    );
    let audit = std::env::temp_dir().join(format!(
        "agentpolicy-integrity-{}/audit.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&audit);
    let (code, text) = run(&[
        "replay",
        policy.to_str().expect("path"),
        trace.to_str().expect("path"),
        "--sets",
        sets.to_str().expect("path"),
        "--audit",
        audit.to_str().expect("path"),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("expectations: 4 checked, 0 failed"), "{text}");
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(
        log.contains("deploy-time sets: `partners` (1 members, sha256:"),
        "the log names the bound set's hash:\n{log}"
    );
    assert!(log.contains(r#""untrusted_args":["recipients"]"#), "{log}");
    assert!(log.contains(r#""tainted":true"#), "{log}");
}
