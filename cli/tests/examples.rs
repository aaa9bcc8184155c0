//! The examples end to end through the command line: for each example, `agentpolicy
//! build` writes a table file, and every single-call `test` block of the policy is sent
//! to `agentpolicy decide` as a request JSON; the decision must be what the test states.
//! (Multi-call tests need session state and run through `agentpolicy test`.) And every
//! example passes `agentpolicy test --require-coverage`, as docs/ci.md recommends.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentpolicy::db::Database;
use agentpolicy::model::{Expected, Model, TestCall, Value};
use agentpolicy::syntax::ast::DenyReason;
use serde_json::{Value as Json, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn agentpolicy(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args(args)
        .output()
        .expect("run agentpolicy")
}

fn load_model(dir: &Path) -> Model {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("example dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "agentpolicy"))
        .collect();
    files.sort();
    let sources = files
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(p).expect("read"),
            )
        })
        .collect();
    let mut db = Database::default();
    let loaded = db.load(sources);
    let analysis = db.analysis(loaded);
    assert!(
        !analysis.has_errors(),
        "{}: {:?}",
        dir.display(),
        analysis.diagnostics
    );
    (*analysis.model).clone()
}

/// Millionths as a decimal literal (`600000` → `0.6`).
fn decimal(millionths: i64) -> String {
    let sign = if millionths < 0 { "-" } else { "" };
    let m = millionths.unsigned_abs();
    let frac = format!("{:06}", m % 1_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", m / 1_000_000)
    } else {
        format!("{sign}{}.{frac}", m / 1_000_000)
    }
}

fn request_json(model: &Model, call: &TestCall) -> Json {
    let tool = &model.tools[call.tool.index()];
    let mut args = serde_json::Map::new();
    for (param, value) in tool.params.iter().zip(&call.args) {
        let Some(value) = value else { continue };
        let v = match value {
            Value::Money(cents) => json!(format!("${}.{:02}", cents / 100, cents % 100)),
            Value::Number(m) => json!(decimal(*m)),
            Value::Duration(ms) => json!(ms),
            Value::Bool(b) => json!(b),
            Value::Text(t) => json!(t),
            Value::TextList(items) => json!(items),
        };
        args.insert(param.name.clone(), v);
    }
    let untrusted: Vec<&str> = call
        .untrusted
        .iter()
        .map(|i| tool.params[*i].name.as_str())
        .collect();
    let mut request = json!({
        "agent": model.agents[call.agent.index()].name,
        "tool": tool.name,
        "args": args,
        "untrusted": untrusted,
    });
    if let Some(c) = call.confidence {
        request["confidence"] = json!(decimal(c).parse::<f64>().expect("decimal"));
    }
    if let Some(on) = &call.on {
        let keys: serde_json::Map<String, Json> = on
            .keys
            .iter()
            .map(|(k, v)| (model.keys[k.index()].name.clone(), json!(v)))
            .collect();
        request["read"] =
            json!({ "resource": model.resources[on.resource.index()].name, "keys": keys });
    }
    if let Some(into) = &call.into {
        let keys: serde_json::Map<String, Json> = into
            .keys
            .iter()
            .map(|(k, v)| (model.keys[k.index()].name.clone(), json!(v)))
            .collect();
        request["write"] = json!({ "sink": model.sinks[into.sink.index()].name, "keys": keys });
    }
    request
}

fn matches(model: &Model, expected: &Expected, decision: &Json) -> bool {
    let outcome = decision["outcome"].as_str().unwrap_or("");
    match expected {
        Expected::Allow => outcome == "allow",
        Expected::Escalate(routes) => {
            let got: Vec<&str> = decision["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().or_else(|| r["name"].as_str()))
                .collect();
            outcome == "escalate"
                && (routes.is_empty()
                    || (routes.len() == got.len()
                        && routes
                            .iter()
                            .all(|r| got.contains(&model.routes[r.index()].name.as_str()))))
        }
        Expected::Deny(reason) => {
            let stage = decision["stage"].as_str().unwrap_or("");
            outcome == "deny"
                && match reason {
                    None => true,
                    Some(DenyReason::Flow) => stage == "flow",
                    Some(DenyReason::Limit) => stage == "limit",
                    Some(DenyReason::Suspended) => stage == "suspended",
                    Some(DenyReason::NotGranted) => stage == "not granted",
                    Some(DenyReason::NoRule) => stage == "no rule",
                    Some(DenyReason::Rule) => stage == "rule",
                }
        }
    }
}

#[test]
fn build_then_decide_agrees_with_every_single_call_test() {
    let out_dir = std::env::temp_dir().join(format!("agentpolicy-examples-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "expected the bundled examples");
    for dir in examples {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let table = out_dir.join(format!("{name}.bin"));
        let built = agentpolicy(&[
            "build",
            &dir.display().to_string(),
            "-o",
            &table.display().to_string(),
        ]);
        assert_eq!(
            built.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let model = load_model(&dir);
        for test in model.tests.iter().filter(|t| t.steps.len() == 1) {
            let request = out_dir.join(format!("{name}-{checked}.json"));
            std::fs::write(&request, request_json(&model, &test.steps[0]).to_string())
                .expect("write");
            let decided = agentpolicy(&[
                "decide",
                &table.display().to_string(),
                &request.display().to_string(),
                "--format",
                "json",
            ]);
            let decision: Json = serde_json::from_slice(&decided.stdout).unwrap_or(Json::Null);
            if !matches(&model, &test.expect, &decision) {
                failures.push(format!(
                    "{name}: test \"{}\": expected {:?}, decide said {}{}",
                    test.name,
                    test.expect,
                    decision,
                    String::from_utf8_lossy(&decided.stderr)
                ));
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} single-call tests found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every example meets the CI guide (docs/ci.md): `agentpolicy test --require-coverage`
/// passes, so every rule decides at least one test call.
#[test]
fn every_example_has_a_test_for_every_rule() {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "expected the bundled examples");
    for dir in examples {
        let o = agentpolicy(&["test", "--require-coverage", &dir.display().to_string()]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}:\n{out}{}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains(" 0 failed"), "{out}");
    }
}
