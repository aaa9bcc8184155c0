//! End-to-end tests of the verifier's commands: `check` verdicts, exit codes and output
//! formats (JSON, SARIF), Unknown never shown as a pass, and `diff` with witnesses that
//! both runtimes replay.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, repo_root, stdout, temp_dir};

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy::model::Model;
use agentpolicy_runtime::{DecisionTable, KeyValueInterner, decide};
use agentpolicy_verify::{self as verify, Budget, Call, Config, Verdict};

fn compile(text: &str) -> (Model, DecisionTable) {
    let mut db = Database::default();
    let loaded = db.load(vec![("policy.agentpolicy".into(), text.into())]);
    let analysis = db.analysis(loaded);
    assert!(!analysis.has_errors(), "{:#?}", analysis.diagnostics);
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources).expect("table");
    ((*analysis.model).clone(), table)
}

const HARD: &str = "tests/fixtures/verify/ok/asserts_hold.agentpolicy";

#[test]
fn unknown_is_never_reported_as_a_pass() {
    // A deterministic resource limit of one unit: the solver gives up on every real query.
    let o = agentpolicy(&["check", HARD, "--rlimit", "1", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let props = doc["policies"][0]["properties"]
        .as_array()
        .expect("properties");
    let unknown: Vec<&serde_json::Value> =
        props.iter().filter(|p| p["verdict"] == "unknown").collect();
    assert!(!unknown.is_empty(), "{props:#?}");
    for p in &unknown {
        assert!(
            p["reason"].as_str().is_some_and(|r| r.contains("gave up")),
            "{p}"
        );
    }
    assert_eq!(doc["unknown"], unknown.len());
    let codes: Vec<&str> = doc["policies"][0]["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "AP0112").count(),
        unknown.len()
    );

    let o = agentpolicy(&["check", HARD, "--rlimit", "1"]);
    let out = stdout(&o);
    assert!(out.contains("FAILED"), "{out}");
    for line in out
        .lines()
        .filter(|l| l.trim_start().starts_with("unknown "))
    {
        assert!(!line.contains("proved"), "{line}");
    }
    // Accepting unknowns is explicit, and they are still shown as unknown.
    let o = agentpolicy(&["check", HARD, "--rlimit", "1", "--allow-unknown"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("unknown "), "{}", stdout(&o));
    // Without the limit the same policy is proved.
    let o = agentpolicy(&["check", HARD]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn library_unknown_is_not_all_proved() {
    let text = std::fs::read_to_string(repo_root().join(HARD)).expect("read");
    let (model, table) = compile(&text);
    let tight = Config {
        budget: Budget {
            timeout_ms: None,
            rlimit: Some(1),
        },
    };
    let report = verify::verify(&model, &table, &tight);
    assert!(
        report
            .results
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Unknown(_)))
    );
    assert!(!report.all_proved());
    let report = verify::verify(&model, &table, &Config::default());
    assert!(report.all_proved(), "{:#?}", report.results);
}

#[test]
fn sarif_has_rule_ids_and_locations() {
    let o = agentpolicy(&[
        "check",
        "tests/fixtures/verify/escalation_plain_allow.agentpolicy",
        "--format",
        "sarif",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("sarif json");
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "agentpolicy");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(rules.iter().any(|r| r["id"] == "AP0103"));
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "AP0103");
    assert_eq!(result["level"], "error");
    let loc = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "tests/fixtures/verify/escalation_plain_allow.agentpolicy"
    );
    assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l > 1));
    assert!(result["properties"]["counterexample"]["request"].is_object());
}

#[test]
fn check_reports_the_method_of_each_flow_proof() {
    let o = agentpolicy(&[
        "check",
        "tests/fixtures/verify/ok/write_down_holds.agentpolicy",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("no write-down (agent clerk) by induction"),
        "{out}"
    );
    let o = agentpolicy(&[
        "check",
        "tests/fixtures/verify/isolation_two_keyed_reads.agentpolicy",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("by bounded model checking to depth 8 (complete"),
        "{out}"
    );
}

const OLD: &str = r#"policy payments version "1"
escalation ops { notify "queue:ops" timeout 15m then deny }
tool wire_funds(amount: money, memo: text?) { effect financial }
tool lookup(id: text) { effect read }
agent clerk {
  owner "ap@example.com"
  allow lookup
  allow wire_funds when amount <= $100
  escalate wire_funds to ops when amount > $100
  deny wire_funds when amount > $10,000
}
"#;

/// The same policy: parameters, rules and declarations reordered, file renamed.
const SAME: &str = r#"policy payments version "2"
tool lookup(id: text) { effect read }
tool wire_funds(memo: text?, amount: money) { effect financial }
escalation ops { notify "queue:ops" timeout 15m then deny }
agent clerk {
  owner "ap@example.com"
  deny wire_funds when amount > $10,000
  escalate wire_funds to ops when amount > $100
  allow wire_funds when amount <= $100
  allow lookup
}
"#;

const WIDER: &str = r#"policy payments version "3"
escalation ops { notify "queue:ops" timeout 15m then deny }
tool wire_funds(amount: money, memo: text?) { effect financial }
tool lookup(id: text) { effect read }
agent clerk {
  owner "ap@example.com"
  allow lookup
  allow wire_funds when amount <= $1,000
  escalate wire_funds to ops when amount > $1,000
  deny wire_funds when amount > $10,000
}
"#;

fn replay(table: &DecisionTable, call: &Call) {
    let request = call
        .to_request(table, &mut KeyValueInterner::default())
        .expect("witness is a valid request");
    assert_eq!(
        decide(table, &request).outcome,
        call.outcome,
        "{}",
        call.to_json()
    );
}

#[test]
fn diff_finds_widening_with_witnesses_the_runtimes_replay() {
    let (om, ot) = compile(OLD);
    let (nm, nt) = compile(WIDER);
    let report = verify::diff(&om, &ot, &nm, &nt, &Config::default()).expect("diff");
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
    assert_eq!(report.widening.len(), 1, "{:#?}", report.widening);
    let w = &report.widening[0];
    assert_eq!((w.agent.as_str(), w.tool.as_str()), ("clerk", "wire_funds"));
    assert!(w.is_widening());
    replay(&ot, &w.old_call);
    replay(&nt, &w.new_call);
    // Narrowing goes the other way.
    let back = verify::diff(&nm, &nt, &om, &ot, &Config::default()).expect("diff");
    assert!(back.widening.is_empty());
    assert_eq!(back.narrowing.len(), 1);
    replay(&nt, &back.narrowing[0].old_call);
    replay(&ot, &back.narrowing[0].new_call);
}

#[test]
fn diff_is_semantic() {
    let (om, ot) = compile(OLD);
    let (nm, nt) = compile(SAME);
    let report = verify::diff(&om, &ot, &nm, &nt, &Config::default()).expect("diff");
    assert_eq!(report, verify::DiffReport::default());
}

#[test]
fn diff_command_exit_codes() {
    let dir = temp_dir("diff");
    std::fs::create_dir_all(dir.join("old")).expect("dir");
    std::fs::create_dir_all(dir.join("new")).expect("dir");
    std::fs::write(dir.join("old/policy.agentpolicy"), OLD).expect("write");
    std::fs::write(dir.join("new/renamed.agentpolicy"), SAME).expect("write");
    std::fs::write(dir.join("wider.agentpolicy"), WIDER).expect("write");
    let path = |p: &str| dir.join(p).display().to_string();
    let o = agentpolicy(&["diff", &path("old"), &path("new")]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("no widening"));
    let o = agentpolicy(&["diff", &path("old"), &path("wider.agentpolicy")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("clerk calls wire_funds: escalate -> allow"),
        "{}",
        stdout(&o)
    );
    let o = agentpolicy(&[
        "diff",
        &path("old"),
        &path("wider.agentpolicy"),
        "--accept-widening",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = agentpolicy(&[
        "diff",
        &path("wider.agentpolicy"),
        &path("old"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "narrowing alone passes");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["narrowing"][0]["old"], "allow");
    assert_eq!(doc["narrowing"][0]["new"], "escalate");
}

/// Acceptance: every example checks with all properties proved, and its broken variant
/// shows the counterexample its README describes.
#[test]
fn examples_are_proved_and_their_broken_variants_refuted() {
    let expected: &[(&str, &[&str])] = &[
        ("law_firm", &["AP0103"]),
        // The memory store is declared as one store (std.common): a patient's notes
        // remembered in one session are recalled in another (isolation, issue 22).
        ("hospital", &["AP0100", "AP0111"]),
        ("payments_desk", &["AP0103"]),
        ("support_agent", &["AP0103", "AP0104"]),
        // A "break-glass" deploy allowed without a person: the built-in property and the
        // policy's own `assert every irreversible tool escalates` fail together.
        ("coding_agent", &["AP0103", "AP0109"]),
    ];
    for (example, codes) in expected {
        let dir = format!("examples/{example}");
        if !repo_root().join(&dir).is_dir() {
            continue;
        }
        let o = agentpolicy(&["check", &dir, "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{dir}: {}", stdout(&o));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        let props = doc["policies"][0]["properties"]
            .as_array()
            .expect("properties");
        assert!(
            props.iter().all(|p| p["verdict"] == "proved"),
            "{dir}: {props:#?}"
        );
        let broken = format!("{dir}/broken");
        let o = agentpolicy(&["check", &broken, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        let mut found: Vec<String> = doc["policies"][0]["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .filter_map(|d| d["code"].as_str().map(str::to_string))
            .collect();
        found.sort();
        found.dedup();
        assert_eq!(&found, codes, "{broken}");
    }
}

/// A counterexample's requests are in the request format of `agentpolicy decide`: each
/// one, fed to `decide` with the compiled table, gets the outcome the counterexample
/// states.
#[test]
fn counterexample_requests_replay_through_the_decide_command() {
    let dir = temp_dir("decide-replay");
    let mut replayed = 0;
    let fixtures = [
        "escalation_rule_order_trick",
        "monotone_off_by_one_cent",
        "write_down_chain",
        "isolation_two_keyed_reads",
        "assert_never_calls_text",
    ];
    for name in fixtures {
        let policy = format!("tests/fixtures/verify/{name}.agentpolicy");
        let table = dir.join(format!("{name}.json"));
        let table = table.display().to_string();
        let o = agentpolicy(&["build", &policy, "--json", "-o", &table]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stdout(&o));
        let o = agentpolicy(&["check", &policy, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        for d in doc["policies"][0]["diagnostics"]
            .as_array()
            .expect("diagnostics")
        {
            let Some(cex) = d.get("counterexample") else {
                continue;
            };
            let calls: Vec<&serde_json::Value> = match cex.get("trace") {
                Some(trace) => trace.as_array().expect("trace").iter().collect(),
                None => std::iter::once(cex).chain(cex.get("safer")).collect(),
            };
            for call in calls {
                let request = dir.join(format!("{name}-{replayed}.json"));
                std::fs::write(&request, call["request"].to_string()).expect("write");
                let request = request.display().to_string();
                let o = agentpolicy(&["decide", &table, &request, "--format", "json"]);
                assert_eq!(o.status.code(), Some(0), "{name}: {}", stdout(&o));
                let decision: serde_json::Value =
                    serde_json::from_str(&stdout(&o)).expect("decision json");
                assert_eq!(decision["outcome"], call["outcome"], "{name}: {call}");
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 7, "{replayed}");
}

/// A `diff` witness with a negative amount, printed `-$…` as every counterexample
/// prints money, is a request `decide` reads (it refused `-$0.01` before).
#[test]
fn diff_witnesses_with_negative_money_replay_through_the_decide_command() {
    let dir = temp_dir("diff-negative-money");
    let policy = |rule: &str| {
        format!(
            "policy refunds version \"1\"\ntiers public < internal\n\
             tool refund(amount: money) {{ effect financial }}\n\
             agent clerk {{\n  owner \"o@x.example\"\n  {rule}\n}}\n"
        )
    };
    let path = |p: &str| dir.join(p).display().to_string();
    std::fs::write(
        path("old.agentpolicy"),
        policy("allow refund when amount >= $0"),
    )
    .expect("write");
    // Both read the amount, so a missing one is denied on both sides.
    std::fs::write(
        path("new.agentpolicy"),
        policy("allow refund when amount >= $0 or amount < $0"),
    )
    .expect("write");
    let o = agentpolicy(&[
        "diff",
        &path("old.agentpolicy"),
        &path("new.agentpolicy"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let change = &doc["widening"][0];
    let request = &change["new_decision"]["request"];
    let amount = request["args"]["amount"].as_str().expect("amount");
    assert!(amount.starts_with("-$"), "{doc:#}");
    std::fs::write(path("request.json"), request.to_string()).expect("write");
    for (side, outcome) in [("old", "deny"), ("new", "allow")] {
        let table = path(&format!("{side}.json"));
        let policy = path(&format!("{side}.agentpolicy"));
        let o = agentpolicy(&["build", &policy, "--json", "-o", &table]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        let o = agentpolicy(&["decide", &table, &path("request.json"), "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{side}: {o:?}");
        let decision: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        assert_eq!(decision["outcome"], outcome, "{side}: {decision:#}");
    }
}
