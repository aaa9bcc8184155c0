//! End-to-end tests of `agentpolicy build` and `agentpolicy decide` on the design example.

#![cfg(test)]

mod support;

use support::{agentpolicy, stdout, temp_dir};

use std::path::Path;
use std::process::Output;

const POLICY: &str = "tests/fixtures/verify/design_example.agentpolicy";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn build_writes_a_table_and_prints_its_hash() {
    let dir = temp_dir("build");
    let out = dir.join("table.bin");
    let o = agentpolicy(&["build", POLICY, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("policy `acme_law` version 2026.11"));
    let bytes = std::fs::read(&out).unwrap();
    let table = agentpolicy_runtime::DecisionTable::from_bytes(&bytes).unwrap();
    assert!(stdout(&o).contains(&format!("source hash: {}", table.source_hash())));

    // The JSON form holds the same table.
    let o = agentpolicy(&["build", POLICY, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let from_json = agentpolicy_runtime::DecisionTable::from_json(&stdout(&o)).unwrap();
    assert_eq!(from_json, table);
}

#[test]
fn build_refuses_bad_usage_and_broken_policies() {
    let o = agentpolicy(&["build", POLICY]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs `-o FILE`"));

    let dir = temp_dir("broken");
    let broken = write(
        &dir,
        "broken.agentpolicy",
        "policy p version \"1\"\nagent a { allow nothing_here }\n",
    );
    let out = dir.join("t.bin");
    let o = agentpolicy(&["build", &broken, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no table was written"));
    assert!(!out.exists());
}

#[test]
fn decide_explains_the_decision_in_both_formats() {
    let dir = temp_dir("decide");
    let table = dir.join("table.bin");
    let table = table.to_str().unwrap();
    assert_eq!(
        agentpolicy(&["build", POLICY, "-o", table]).status.code(),
        Some(0)
    );

    let wire = write(
        &dir,
        "wire.json",
        r#"{ "agent": "intake", "tool": "wire_funds", "args": { "amount": "$500" }, "confidence": 0.9 }"#,
    );
    let o = agentpolicy(&["decide", table, &wire]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let first = stdout(&o).lines().next().unwrap_or("").to_owned();
    assert!(
        first.starts_with("escalate to ops_leads by rule `intake/escalate/wire_funds#1` at "),
        "{first}"
    );
    assert!(
        first.ends_with("design_example.agentpolicy:29:3: the rule's condition holds"),
        "{first}"
    );
    assert!(stdout(&o).contains("shadow mode"));

    let o = agentpolicy(&["decide", table, &wire, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["outcome"], "escalate");
    assert_eq!(json["rule"]["id"], "intake/escalate/wire_funds#1");
    assert_eq!(json["rule"]["line"], 29);
    assert_eq!(json["routes"][0]["name"], "ops_leads");
    assert_eq!(json["routes"][0]["timeout_outcome"], "deny");

    // Missing amount: the deny rule matches, fail safe, and says what was missing.
    let no_amount = write(
        &dir,
        "no_amount.json",
        r#"{ "agent": "intake", "tool": "wire_funds" }"#,
    );
    let o = agentpolicy(&["decide", table, &no_amount, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["outcome"], "deny");
    assert_eq!(json["missing"], "amount");

    // A second matter in the session.
    let cross = write(
        &dir,
        "cross.json",
        r#"{ "agent": "intake", "tool": "search_docs", "confidence": "95%",
             "read": { "resource": "document", "keys": { "matter": "M-2" } },
             "session": { "tier": "confidential", "bound": { "matter": "M-1" } } }"#,
    );
    let o = agentpolicy(&["decide", table, &cross]);
    assert!(
        stdout(&o).starts_with("deny (flow): the read is for another isolation key value"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn decide_reports_bad_tables_and_requests() {
    let dir = temp_dir("bad");
    let table = dir.join("table.bin");
    let table_path = table.to_str().unwrap();
    assert_eq!(
        agentpolicy(&["build", POLICY, "-o", table_path])
            .status
            .code(),
        Some(0)
    );
    let ok = write(
        &dir,
        "ok.json",
        r#"{ "agent": "intake", "tool": "search_docs" }"#,
    );

    let mut bytes = std::fs::read(&table).unwrap();
    bytes.truncate(bytes.len() - 3);
    let truncated = dir.join("truncated.bin");
    std::fs::write(&truncated, &bytes).unwrap();
    let o = agentpolicy(&["decide", truncated.to_str().unwrap(), &ok]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("decision table is truncated"),
        "{}",
        stderr(&o)
    );

    let cases = [
        (
            r#"{ "agent": "ghost", "tool": "search_docs" }"#,
            "unknown agent `ghost`",
        ),
        (
            r#"{ "agent": "intake", "tool": "wire_funds", "args": { "amount": "lots" } }"#,
            "argument `amount`: expected money",
        ),
        (
            r#"{ "agent": "intake", "tool": "wire_funds", "args": { "amout": 5 } }"#,
            "has no parameter `amout`",
        ),
        (
            r#"{ "agent": "intake", "tool": "search_docs", "colour": 1 }"#,
            "unknown field `colour`",
        ),
        (
            r#"{ "agent": "intake", "tool": "search_docs", "session": { "tier": "secret" } }"#,
            "unknown tier `secret`",
        ),
    ];
    for (i, (request, message)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("bad{i}.json"), request);
        let o = agentpolicy(&["decide", table_path, &path]);
        assert_eq!(o.status.code(), Some(2), "{request}");
        assert!(stderr(&o).contains(message), "{request}: {}", stderr(&o));
    }
}

/// The source hash names the policy's content and its files' paths relative to the
/// policy's root, never how the root was typed: the signed matrix, the deployed table and
/// the audit records must name the same policy whoever built it, from wherever.
#[test]
fn the_source_hash_does_not_depend_on_how_the_path_is_typed() {
    let hash_of = |cwd: &Path, path: &str| -> String {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
            .current_dir(cwd)
            .args(["build", path, "--json"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run agentpolicy build");
        assert!(o.status.success(), "{path}: {}", stderr(&o));
        let err = stderr(&o);
        err.lines()
            .find_map(|l| l.strip_prefix("source hash: "))
            .unwrap_or_else(|| panic!("{path}: no source hash in {err}"))
            .to_string()
    };
    let root = support::repo_root()
        .canonicalize()
        .expect("repository root");
    let example = root.join("examples/law_firm");
    let absolute = example.display().to_string();
    let spellings = [
        (root.as_path(), "examples/law_firm"),
        (root.as_path(), "./examples/law_firm"),
        (root.as_path(), "examples/law_firm/"),
        (root.as_path(), absolute.as_str()),
        (example.as_path(), "."),
        (example.as_path(), "../law_firm"),
    ];
    let hashes: Vec<String> = spellings.iter().map(|(cwd, p)| hash_of(cwd, p)).collect();
    for ((cwd, path), hash) in spellings.iter().zip(&hashes) {
        assert_eq!(
            hash,
            &hashes[0],
            "`{path}` from {} hashes differently",
            cwd.display()
        );
    }
    // And the hash does depend on the content: a one-byte change is another policy.
    let dir = temp_dir("hash-content");
    let text = std::fs::read_to_string(example.join("policy.agentpolicy")).expect("read");
    std::fs::write(dir.join("policy.agentpolicy"), format!("{text}\n")).expect("write");
    for entry in std::fs::read_dir(&example).expect("list").flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "agentpolicy")
            && p.file_name() != Some("policy.agentpolicy".as_ref())
        {
            std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    assert_ne!(hash_of(&dir, "."), hashes[0]);
}
