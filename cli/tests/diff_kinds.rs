//! `agentpolicy diff` sees widenings outside the rule stage: one fixture pair per kind of
//! declaration in `tests/fixtures/diff/KIND-what/{old,new}.agentpolicy`. Each must exit 1
//! with a widening of that `kind` in the JSON (0 with `--accept-widening`), the reverse
//! direction must be a narrowing of the same kind that exits 0, and every request
//! witness must be decided by the runtime as the report says.

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
use agentpolicy_verify::{self as verify, Call, Config};

fn compile(path: &std::path::Path) -> (Model, DecisionTable) {
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut db = Database::default();
    let loaded = db.load(vec![("policy.agentpolicy".into(), text)]);
    let analysis = db.analysis(loaded);
    assert!(
        !analysis.has_errors(),
        "{}: {:#?}",
        path.display(),
        analysis.diagnostics
    );
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources).expect("table");
    ((*analysis.model).clone(), table)
}

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

fn fixtures() -> Vec<(String, std::path::PathBuf)> {
    let dir = repo_root().join("tests/fixtures/diff");
    let mut out: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            (name, p)
        })
        .collect();
    out.sort();
    out
}

fn kinds(doc: &serde_json::Value, side: &str) -> Vec<String> {
    doc[side]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            c["kind"]
                .as_str()
                .expect("every change has a kind")
                .to_string()
        })
        .collect()
}

#[test]
fn every_kind_of_widening_fails_the_gate_and_its_reverse_is_a_narrowing() {
    let all = fixtures();
    let expected = [
        "route_timeout",
        "integrity",
        "limit",
        "breaker",
        "mode",
        "stage",
        "credential",
        "max_tier",
        "clearance",
        "resource_tier",
        "retention",
    ];
    for kind in expected {
        assert!(
            all.iter().any(|(n, _)| n.starts_with(&format!("{kind}-"))),
            "no fixture for `{kind}`"
        );
    }
    for (name, dir) in &all {
        let kind = name.split('-').next().expect("kind");
        let (old, new) = (dir.join("old.agentpolicy"), dir.join("new.agentpolicy"));
        let (old, new) = (old.display().to_string(), new.display().to_string());
        let o = agentpolicy(&["diff", &old, &new, "--format", "json"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        assert!(
            kinds(&doc, "widening").iter().any(|k| k == kind),
            "{name}: {doc:#}"
        );
        assert!(
            doc["unknown"].as_array().is_some_and(Vec::is_empty),
            "{name}"
        );
        let o = agentpolicy(&["diff", &old, &new, "--accept-widening"]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stdout(&o));
        assert!(stdout(&o).contains(&format!("[{kind}]")) || kind == "route_timeout");
        let o = agentpolicy(&["diff", &new, &old, "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{name} reversed: {}", stdout(&o));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        assert!(
            kinds(&doc, "narrowing").iter().any(|k| k == kind),
            "{name} reversed: {doc:#}"
        );
    }
}

#[test]
fn request_witnesses_replay_on_both_runtimes() {
    for (name, dir) in fixtures() {
        let (om, ot) = compile(&dir.join("old.agentpolicy"));
        let (nm, nt) = compile(&dir.join("new.agentpolicy"));
        for (a, at, b, bt) in [(&om, &ot, &nm, &nt), (&nm, &nt, &om, &ot)] {
            let report = verify::diff(a, at, b, bt, &Config::default()).expect("diff");
            assert!(report.unknown.is_empty(), "{name}: {:?}", report.unknown);
            for c in report.widening.iter().chain(&report.narrowing) {
                replay(at, &c.old_call);
                replay(bt, &c.new_call);
            }
            for d in &report.declarations {
                if let Some(call) = d.witness.as_ref().and_then(|w| w.request.as_ref()) {
                    replay(bt, call);
                }
            }
        }
    }
}

#[test]
fn an_unanswered_escalation_now_allowed_names_the_request_that_escalates() {
    // As directories, the way a CI gate passes two checkouts.
    let fixture = repo_root().join("tests/fixtures/diff/route_timeout-then_allow");
    let dir = temp_dir("route_timeout");
    for side in ["old", "new"] {
        std::fs::create_dir_all(dir.join(side)).expect("dir");
        std::fs::copy(
            fixture.join(format!("{side}.agentpolicy")),
            dir.join(side).join("policy.agentpolicy"),
        )
        .expect("copy");
    }
    let o = agentpolicy(&[
        "diff",
        &dir.join("old").display().to_string(),
        &dir.join("new").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("intake calls wire_funds: escalated; unanswered, it ends deny after 1h -> allow after 1h"),
        "{out}"
    );
    assert!(out.contains(r#""outcome":"escalate""#), "{out}");
}
