//! Golden tests: every `.agentpolicy` fixture under `tests/fixtures/` is checked by the
//! real `agentpolicy` binary, and its human and JSON output (with the exit code) is
//! compared with an insta snapshot. A fixture whose first line is `// expect: AP0010`
//! must produce exactly those codes; fixtures under `ok/` must produce none. A line
//! `// check-args: --rlimit 1` among the first two adds arguments to `check`. The old/new
//! pairs under `diff/` are `diff` fixtures (`diff_kinds.rs`), not checked here.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fixtures under `policy_tests/` are run with `agentpolicy test`; all others with `check`.
fn run_check(relative: &str, format: &str, extra: &[String]) -> (String, i32) {
    let command = if relative.contains("/policy_tests/") {
        "test"
    } else {
        "check"
    };
    let out = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args([command, relative, "--format", format])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("run agentpolicy");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (text, out.status.code().unwrap_or(-1))
}

fn expected_codes(path: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let first = text.lines().next()?;
    let list = first.trim().strip_prefix("// expect:")?;
    let mut codes: Vec<String> = list.split(',').map(|c| c.trim().to_string()).collect();
    codes.sort();
    codes.dedup();
    Some(codes)
}

/// Extra `check` arguments from a `// check-args: ...` line among the first two.
fn extra_args(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .take(2)
        .find_map(|l| l.trim().strip_prefix("// check-args:"))
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn codes_in(json: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(json).expect("--format json prints JSON");
    let policies = value["policies"].as_array().cloned().unwrap_or_default();
    let mut codes: Vec<String> = policies
        .iter()
        .flat_map(|p| p["diagnostics"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d["code"].as_str().map(str::to_string))
        .collect();
    // `test --format json` lists failed tests, which human output reports as AP0051.
    let failed_tests = policies
        .iter()
        .flat_map(|p| p["tests"].as_array().cloned().unwrap_or_default())
        .any(|t| t["passed"] == false);
    if failed_tests {
        codes.push("AP0051".to_string());
    }
    codes.sort();
    codes.dedup();
    codes
}

#[test]
fn fixtures() {
    insta::glob!("../../tests/fixtures", "**/*.agentpolicy", |path| {
        let relative = path
            .strip_prefix(repo_root().canonicalize().expect("root"))
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        // Old/new pairs for `diff` (`diff_kinds.rs` runs them), not policies checked alone.
        if relative.contains("fixtures/diff/") {
            return;
        }
        let extra = extra_args(path);
        let (human, human_code) = run_check(&relative, "human", &extra);
        let (json, json_code) = run_check(&relative, "json", &extra);
        assert_eq!(
            human_code, json_code,
            "{relative}: exit codes differ between formats"
        );
        if let Some(expected) = expected_codes(path) {
            assert_eq!(
                codes_in(&json),
                expected,
                "{relative}: codes differ from `// expect:`"
            );
            let any_error = expected.iter().any(|c| {
                agentpolicy::diagnostics::Code::parse(c)
                    .is_some_and(|c| c.severity() == agentpolicy::diagnostics::Severity::Error)
            });
            if any_error {
                assert_ne!(human_code, 0, "{relative}: expected errors but exit 0");
            } else {
                assert_eq!(
                    human_code, 0,
                    "{relative}: only warnings expected, exit {human_code}"
                );
            }
        } else if relative.contains("/ok/") {
            assert_eq!(
                codes_in(&json),
                Vec::<String>::new(),
                "{relative}: clean fixture has diagnostics"
            );
            assert_eq!(human_code, 0, "{relative}: clean fixture failed");
        }
        insta::assert_snapshot!("human", format!("exit code: {human_code}\n\n{human}"));
        insta::assert_snapshot!("json", format!("exit code: {json_code}\n\n{json}"));
    });
}

/// Every code in the registry is exercised by at least one fixture.
#[test]
fn every_code_has_a_fixture() {
    let mut seen = std::collections::BTreeSet::new();
    for entry in walk(&repo_root().join("tests/fixtures")) {
        if let Some(codes) = expected_codes(&entry) {
            seen.extend(codes);
        }
    }
    let missing: Vec<&str> = agentpolicy::diagnostics::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p.extension().is_some_and(|x| x == "agentpolicy") {
                out.push(p);
            }
        }
    }
    out
}
