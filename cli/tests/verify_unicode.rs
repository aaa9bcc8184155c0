//! End-to-end tests of texts beyond Z3 4.8.12's last string character (U+2FFFF): a
//! policy that tests a character of plane 16 is not proved when a request with it gets
//! through (the request `check` shows is one `decide` allows), and tag characters
//! (U+E0001, U+E007F: plane 14) get verdicts from `check`, `diff` and `matrix` instead of
//! a crash.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, repo_root, stdout, temp_dir};

const PLANE_16: &str = "tests/fixtures/verify/assert_never_calls_plane16.agentpolicy";
const TAGS: &str = "tests/fixtures/verify/assert_tag_characters.agentpolicy";

/// The counterexample requests of a `check --format json` document.
fn counterexamples(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["policies"][0]["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .filter(|p| p["verdict"] == "counterexample")
        .map(|p| p["counterexample"]["request"].clone())
        .collect()
}

/// What `decide` says of `request` against the table of `policy`.
fn decide(policy: &str, request: &serde_json::Value, dir: &std::path::Path) -> String {
    let table = dir.join("table.bin");
    let table = table.to_str().expect("utf-8 path");
    let o = agentpolicy(&["build", policy, "-o", table]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let path = dir.join("request.json");
    std::fs::write(&path, request.to_string()).expect("write request");
    let o = agentpolicy(&[
        "decide",
        table,
        path.to_str().expect("utf-8 path"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    doc["outcome"].as_str().expect("outcome").to_string()
}

#[test]
fn a_plane_16_character_is_one_character_and_the_violation_replays() {
    let dir = temp_dir("plane16");
    // The request of the issue: `decide` allows it, so the assert must not be proved.
    let request = serde_json::json!({
        "agent": "a", "tool": "react", "args": { "emoji": "\u{10FFFD}" }
    });
    assert_eq!(decide(PLANE_16, &request, &dir), "allow");

    let o = agentpolicy(&["check", PLANE_16, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["policies"][0]["unknown"], 0, "{doc:#}");
    let found = counterexamples(&doc);
    assert_eq!(found.len(), 1, "{doc:#}");
    assert_eq!(found[0]["args"]["emoji"], "\u{10FFFD}", "{doc:#}");
    assert_eq!(decide(PLANE_16, &found[0], &dir), "allow");

    // The access matrix must not sign it off as proved.
    let o = agentpolicy(&["matrix", PLANE_16]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("**FAILED**"), "{}", stdout(&o));
}

#[test]
fn tag_characters_get_verdicts_not_a_crash() {
    let dir = temp_dir("tags");
    let o = agentpolicy(&["check", TAGS, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["policies"][0]["unknown"], 0, "{doc:#}");
    let found = counterexamples(&doc);
    assert_eq!(found.len(), 1, "{doc:#}");
    let body = found[0]["args"]["body"].as_str().expect("body");
    assert!(
        body.contains('\u{E007F}') && !body.contains('\u{E0001}'),
        "{body:?}"
    );
    assert_eq!(decide(TAGS, &found[0], &dir), "allow");

    // `matrix` shows the failed assert; the language server runs the same proofs.
    let o = agentpolicy(&["matrix", TAGS]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("**FAILED**"), "{}", stdout(&o));

    // `diff` against the same policy denying the cancel tag too: narrowing, with a
    // witness carrying U+E007F.
    let source = std::fs::read_to_string(repo_root().join(TAGS)).expect("fixture");
    let stricter = source.replace(
        "  deny post when body matches \"*\u{E0001}*\"",
        "  deny post when body matches \"*\u{E0001}*\"\n  deny post when body matches \"*\u{E007F}*\"",
    );
    assert_ne!(source, stricter);
    let new = dir.join("stricter.agentpolicy");
    std::fs::write(&new, stricter).expect("write policy");
    let new = new.to_str().expect("utf-8 path");
    let o = agentpolicy(&["diff", TAGS, new, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["widening"], serde_json::json!([]), "{doc:#}");
    assert_eq!(doc["unknown"], serde_json::json!([]), "{doc:#}");
    let change = &doc["narrowing"][0];
    assert_eq!(
        doc["narrowing"].as_array().map(Vec::len),
        Some(1),
        "{doc:#}"
    );
    let witness = &change["old_decision"]["request"];
    let body = witness["args"]["body"].as_str().expect("body");
    assert!(body.contains('\u{E007F}'), "{body:?}");
    assert_eq!(decide(TAGS, witness, &dir), "allow");
    assert_eq!(decide(new, witness, &dir), "deny");
    let o = agentpolicy(&["diff", new, TAGS]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("widening (1)"), "{}", stdout(&o));
}

/// A policy mentioning more characters above U+2FFFF than the alphabet can relocate
/// (2048) gets no proof from the tests that read them: an assert's `when` that cannot be
/// encoded covers every request, so the violation below is still found.
#[test]
fn too_many_high_characters_are_never_proved() {
    use agentpolicy::codegen;
    use agentpolicy::db::Database;
    use agentpolicy::diagnostics::FileId;
    use agentpolicy_verify::{self as verify, Config, Property, Verdict};

    let members: Vec<String> = std::iter::once("\"x\"".to_string())
        .chain(
            (0xF_0000..0xF_0000 + 2100)
                .map(|c| format!("\"{}\"", char::from_u32(c).expect("a scalar value"))),
        )
        .collect();
    let text = format!(
        "policy overflow version \"1\"\ntiers public < internal\n\
         set big = [{}]\n\
         tool t(s: text) {{ effect write }}\n\
         agent a {{\n  owner \"o@x.example\"\n  allow t when s == \"x\"\n}}\n\
         assert never a calls t when s in big\n",
        members.join(", ")
    );
    let mut db = Database::default();
    let loaded = db.load(vec![("overflow.agentpolicy".into(), text.clone())]);
    let analysis = db.analysis(loaded);
    assert!(!analysis.has_errors(), "{:#?}", analysis.diagnostics);
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources).expect("table");
    let report = verify::verify(&analysis.model, &table, &Config::default());
    let verdict = report
        .results
        .iter()
        .find(|r| r.property == Property::Assert)
        .map(|r| &r.verdict)
        .expect("the assert has a verdict");
    match verdict {
        Verdict::Counterexample(cex) => {
            assert_eq!(cex.calls.len(), 1, "{cex:?}");
            assert_eq!(cex.calls[0].to_json()["request"]["args"]["s"], "x");
        }
        other => panic!("expected the violation with s = \"x\", got {other:?}"),
    }
}
