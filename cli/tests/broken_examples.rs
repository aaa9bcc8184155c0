//! Each example's `broken/` variant fails `agentpolicy check` the way its README says.
//!
//! The README's "Counterexample" section quotes the real output of `agentpolicy check
//! examples/NAME/broken`; this test runs the binary on every variant and requires exit
//! code 1 and, verbatim, the first line of every diagnostic the section quotes
//! (`[AP0103] Error: agent ... without escalation`). So the README cannot drift from
//! what the verifier says, and a variant that stops failing is noticed.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example directories that have a `broken/` variant, sorted by name.
fn examples_with_broken_variants() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("examples"))
        .expect("read examples/")
        .flatten()
        .filter(|e| e.path().join("broken").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The README's "## Counterexample" section, up to the next `## ` heading.
fn counterexample_section(readme: &str) -> Option<String> {
    let start = readme.find("\n## Counterexample")? + 1;
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    Some(rest[..end].to_string())
}

/// A line that opens a diagnostic: `[AP` four digits `] `.
fn is_code_line(line: &str) -> bool {
    let bytes = line.as_bytes();
    line.starts_with("[AP")
        && bytes.len() > 8
        && bytes[3..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b']'
        && bytes[8] == b' '
}

#[test]
fn every_broken_variant_fails_with_the_diagnostics_its_readme_quotes() {
    let examples = examples_with_broken_variants();
    assert!(
        examples.len() >= 5,
        "expected the five examples with broken variants, found {examples:?}"
    );
    let mut failures = Vec::new();
    for name in &examples {
        let readme_path = repo_root().join("examples").join(name).join("README.md");
        let readme = std::fs::read_to_string(&readme_path).expect("read example README");
        let Some(section) = counterexample_section(&readme) else {
            failures.push(format!(
                "{name}: README has no \"## Counterexample\" section"
            ));
            continue;
        };
        let command = format!("$ agentpolicy check examples/{name}/broken");
        if !section.lines().any(|l| l.trim() == command) {
            failures.push(format!("{name}: the section does not show `{command}`"));
        }
        let quoted: Vec<&str> = section
            .lines()
            .map(str::trim)
            .filter(|l| is_code_line(l))
            .collect();
        if quoted.is_empty() {
            failures.push(format!("{name}: the section quotes no diagnostic"));
        }

        let broken = format!("examples/{name}/broken");
        let output = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
            .current_dir(repo_root())
            .args(["check", &broken])
            .env("NO_COLOR", "1")
            .output()
            .expect("run agentpolicy");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.code() != Some(1) {
            failures.push(format!(
                "{name}: `agentpolicy check {broken}` exited {:?}, expected 1:\n{text}",
                output.status.code()
            ));
            continue;
        }
        let actual: Vec<&str> = text.lines().map(str::trim).collect();
        for line in quoted {
            if !actual.contains(&line) {
                failures.push(format!(
                    "{name}: the README quotes\n  {line}\nbut `agentpolicy check {broken}` printed:\n{text}"
                ));
            }
        }
        // Every diagnostic the variant produces is one the README explains.
        for line in actual.iter().filter(|l| is_code_line(l)) {
            if !section.lines().any(|l| l.trim() == *line) {
                failures.push(format!(
                    "{name}: `agentpolicy check {broken}` printed\n  {line}\nwhich the README does not quote"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_code_line_is_recognised_only_at_the_start_of_a_diagnostic() {
    assert!(is_code_line(
        "[AP0103] Error: agent `research` can call irreversible tool `file_with_court` without escalation"
    ));
    assert!(!is_code_line("see [AP0103](../docs/diagnostics/AP0103.md)"));
    assert!(!is_code_line("[AP01] Error: too short"));
    assert!(!is_code_line("[APxxxx] Error: not digits"));
}
