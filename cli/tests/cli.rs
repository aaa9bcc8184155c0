//! End-to-end tests of the `agentpolicy` binary: exit codes, usage and IO errors, and
//! the commands' output on real files.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, stdout, temp_dir};

use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn missing_file_is_a_usage_error() {
    let o = agentpolicy(&["check", "no/such/file.agentpolicy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no/such/file.agentpolicy"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("no such file or directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn directory_without_policies_is_a_usage_error() {
    let dir = temp_dir("empty-dir");
    std::fs::write(dir.join("README.txt"), "not a policy").expect("write");
    let o = agentpolicy(&["check", dir.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("contains no `.agentpolicy` files"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn no_arguments_is_a_usage_error() {
    let o = agentpolicy(&["check"]);
    assert_eq!(o.status.code(), Some(2));
    let o = agentpolicy(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn design_example_passes_the_front_end_and_fails_the_escalation_proof() {
    let path = "tests/fixtures/verify/design_example.agentpolicy";
    let o = agentpolicy(&["check", path, "--no-proofs"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 error(s)"));
    // As DESIGN.md says: `allow wire_funds when amount <= $100` breaks the proof.
    let o = agentpolicy(&["check", path]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("AP0103"), "{}", stdout(&o));
}

#[test]
fn a_directory_is_one_policy() {
    let dir = temp_dir("multi-file");
    std::fs::write(
        dir.join("a.agentpolicy"),
        "policy split version \"1\"\ntool lookup(q: text) { effect read }\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("b.agentpolicy"),
        "agent helper {\n  owner \"ops@example.com\"\n  allow lookup\n}\n",
    )
    .expect("write");
    let o = agentpolicy(&["check", dir.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    std::fs::write(
        dir.join("c.agentpolicy"),
        "agent other {\n  owner \"ops@example.com\"\n  allow lokup\n}\n",
    )
    .expect("write");
    let o = agentpolicy(&["check", dir.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("did you mean `lookup`?"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("c.agentpolicy:3:9"), "{}", stdout(&o));
}

#[test]
fn warnings_fail_only_when_denied() {
    let dir = temp_dir("warnings");
    let file = dir.join("w.agentpolicy");
    std::fs::write(
        &file,
        "policy w version \"1\"\ntiers low < high\ntool t { effect read }\nagent a {\n  owner \"o\"\n  max tier high\n  allow t\n}\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let o = agentpolicy(&["check", path]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("AP0022"));
    let o = agentpolicy(&["check", "--deny-warnings", path]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn explain_prints_the_page() {
    let o = agentpolicy(&["explain", "ap0011"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("# AP0011"), "{}", stdout(&o));
    let o = agentpolicy(&["explain", "AP9999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a diagnostic code"));
    let o = agentpolicy(&["explain", "list"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("AP0001  syntax error"));
}

#[test]
fn help_documents_exit_codes() {
    let o = agentpolicy(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Exit codes: 0 success; 1 policy errors"));
}

#[test]
fn large_file_is_checked() {
    // 10 MB of valid declarations: no crash, a clean result.
    let dir = temp_dir("large");
    let mut text = String::from("policy big version \"1\"\n");
    let mut i = 0;
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!("tool t{i}(amount: money?) {{ effect read }}\n"));
        i += 1;
    }
    let file = dir.join("big.agentpolicy");
    std::fs::write(&file, text).expect("write");
    let o = agentpolicy(&["check", file.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `--version` names the Z3 linked at run time; a build against another Z3 (the
/// `z3-solver` wheel, README) sets `AGENTPOLICY_EXPECT_Z3` so its tests prove they run
/// against that library and not the system's.
#[test]
fn version_names_the_linked_z3() {
    let out = agentpolicy(&["--version"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let z3 = text
        .trim()
        .strip_suffix(')')
        .and_then(|t| t.split_once("(Z3 "))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("no Z3 version in {text:?}"));
    assert!(z3.starts_with(char::is_numeric), "{text}");
    if let Ok(expected) = std::env::var("AGENTPOLICY_EXPECT_Z3") {
        assert_eq!(z3, expected, "the binary links another Z3 than expected");
    }
}
