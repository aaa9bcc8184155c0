//! `agentpolicy-lsp --version` and `--help` print and exit, instead of waiting for an
//! editor on standard input.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::process::{Command, Stdio};

fn run(arg: &str) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_agentpolicy-lsp"))
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .expect("run agentpolicy-lsp");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn version_prints_the_package_version() {
    for flag in ["--version", "-V"] {
        let (out, code) = run(flag);
        assert_eq!(code, 0);
        assert_eq!(
            out.trim(),
            format!("agentpolicy-lsp {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn help_says_what_it_is() {
    let (out, code) = run("--help");
    assert_eq!(code, 0);
    assert!(out.contains("language server"), "{out}");
    assert!(out.contains("--version"), "{out}");
}
