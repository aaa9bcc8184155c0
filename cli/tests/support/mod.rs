//! Helpers every end-to-end test of the `agentpolicy` binary needs: where the repository
//! is, running the real binary from there, its standard output, a fresh temporary
//! directory. Included with `mod support;` by each such test file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (tests run the binary from there, as the docs do).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the real `agentpolicy` binary with `args` from the repository root, without
/// colour and without a kill file from the environment.
pub fn agentpolicy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AGENTPOLICY_KILL_FILE")
        .output()
        .expect("run agentpolicy")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An empty directory of its own for `name` in this test binary and process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentpolicy-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
