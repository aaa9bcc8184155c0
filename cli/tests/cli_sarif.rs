//! `check --format sarif` against the official SARIF 2.1.0 schema (vendored in
//! `tests/data`), formats checked: every example, broken or not (standard-library
//! locations included), and a path with characters a URI must escape. Each rule carries
//! help text and a `helpUri` to its docs page.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, repo_root, stdout, temp_dir};

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("cli/tests/data/sarif-schema-2.1.0.json"))
        .expect("the vendored SARIF schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn sarif(path: &str) -> serde_json::Value {
    let out = agentpolicy(&["check", "--format", "sarif", path]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{path}");
    serde_json::from_str(&stdout(&out)).expect("SARIF is JSON")
}

fn assert_valid(validator: &jsonschema::Validator, log: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: not valid SARIF 2.1.0:\n{}",
        errors.join("\n")
    );
}

#[test]
fn every_example_gives_valid_sarif() {
    let validator = validator();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).expect("examples") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        for path in [
            format!("examples/{name}"),
            format!("examples/{name}/broken"),
        ] {
            if repo_root().join(&path).is_dir() {
                assert_valid(&validator, &sarif(&path), &path);
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "checked {checked}");
}

#[test]
fn standard_library_locations_are_uri_references() {
    // The broken law firm has a finding in `std.legal` (the example).
    let log = sarif("examples/law_firm/broken");
    let text = log.to_string();
    assert!(!text.contains("<stdlib>"), "{text}");
    assert_valid(&validator(), &log, "law_firm/broken");
    let dir = temp_dir("sarif-paths");
    let file = dir.join("a policy [draft] é.agentpolicy");
    std::fs::write(
        &file,
        "policy p\n\ntool t() { effect read }\n\nagent a {\n  allow t\n}\n",
    )
    .expect("write");
    let log = sarif(file.to_str().expect("utf-8 path"));
    let uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"]
        .as_str()
        .expect("a result with a location")
        .to_string();
    assert!(
        uri.ends_with("a%20policy%20%5Bdraft%5D%20%C3%A9.agentpolicy"),
        "{uri}"
    );
    assert_valid(&validator(), &log, "escaped path");
}

#[test]
fn each_rule_has_help_and_a_help_uri_to_its_page() {
    let log = sarif("examples/law_firm/broken");
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .clone();
    assert!(!rules.is_empty());
    for rule in rules {
        let id = rule["id"].as_str().expect("id");
        let help = rule["help"]["text"].as_str().expect("help text");
        assert!(help.len() > 40 && help.contains(id), "{id}: {help}");
        let uri = rule["helpUri"].as_str().expect("helpUri");
        assert!(
            uri.ends_with(&format!("/docs/diagnostics/{id}.md")),
            "{uri}"
        );
        assert!(
            repo_root()
                .join(format!("docs/diagnostics/{id}.md"))
                .is_file()
        );
    }
}
