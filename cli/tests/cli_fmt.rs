//! End-to-end tests of `agentpolicy fmt`: rewriting in place, directories, `--check`,
//! refusing files with errors, and exit codes.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNFORMATTED: &str = "policy p   version \"1\"\r\ntool t { effect read }\nagent a {\n      owner \"o@example.com\"\n\tallow    t   // the only rule\n}\n\n\n";
const FORMATTED: &str = "policy p version \"1\"\ntool t { effect read }\nagent a {\n  owner \"o@example.com\"\n  allow t // the only rule\n}\n";

fn agentpolicy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run agentpolicy")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentpolicy-fmt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

#[test]
fn fmt_rewrites_a_file_in_place_and_then_leaves_it_alone() {
    let dir = temp_dir("in-place");
    let file = dir.join("p.agentpolicy");
    std::fs::write(&file, UNFORMATTED).expect("write");
    let o = agentpolicy(&["fmt", path_str(&file)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(read(&file), FORMATTED);
    assert!(stdout(&o).contains("formatted 1 file"), "{}", stdout(&o));
    let o = agentpolicy(&["fmt", path_str(&file)]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert_eq!(read(&file), FORMATTED);
    // No temporary file is left behind.
    let entries = std::fs::read_dir(&dir).expect("list").count();
    assert_eq!(entries, 1);
}

#[cfg(unix)]
#[test]
fn fmt_keeps_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("permissions");
    let file = dir.join("p.agentpolicy");
    std::fs::write(&file, UNFORMATTED).expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let o = agentpolicy(&["fmt", path_str(&file)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn fmt_formats_every_policy_file_under_a_directory() {
    let dir = temp_dir("directory");
    std::fs::create_dir_all(dir.join("nested/deeper")).expect("mkdir");
    let a = dir.join("a.agentpolicy");
    let b = dir.join("nested/deeper/b.agentpolicy");
    let notes = dir.join("nested/notes.txt");
    std::fs::write(&a, UNFORMATTED).expect("write");
    std::fs::write(&b, "isolate   matter\n").expect("write");
    std::fs::write(&notes, "isolate   matter\n").expect("write");
    let o = agentpolicy(&["fmt", path_str(&dir)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(read(&a), FORMATTED);
    assert_eq!(read(&b), "isolate matter\n");
    assert_eq!(read(&notes), "isolate   matter\n");
    assert!(stdout(&o).contains("formatted 2 files"), "{}", stdout(&o));
}

#[test]
fn check_reports_unformatted_files_with_a_diff_and_changes_nothing() {
    let dir = temp_dir("check");
    let messy = dir.join("messy.agentpolicy");
    let tidy = dir.join("tidy.agentpolicy");
    std::fs::write(&messy, UNFORMATTED).expect("write");
    std::fs::write(&tidy, FORMATTED).expect("write");
    let o = agentpolicy(&["fmt", "--check", path_str(&dir)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("--- {}\n", messy.display())), "{out}");
    assert!(
        out.contains("-policy p   version \"1\"␍\n+policy p version \"1\"\n"),
        "{out}"
    );
    assert!(!out.contains("tidy.agentpolicy"), "{out}");
    assert!(out.contains("1 file would be reformatted"), "{out}");
    assert_eq!(read(&messy), UNFORMATTED);

    let o = agentpolicy(&["fmt", "--check", path_str(&tidy)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn files_with_syntax_errors_are_reported_and_left_alone() {
    let dir = temp_dir("syntax");
    let broken = dir.join("broken.agentpolicy");
    let fine = dir.join("fine.agentpolicy");
    let text = "policy p\nagent a {\n  allow\n}\n";
    std::fs::write(&broken, text).expect("write");
    std::fs::write(&fine, "isolate   m\n").expect("write");
    let o = agentpolicy(&["fmt", path_str(&broken), path_str(&fine)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("AP0001"), "{out}");
    assert!(out.contains("broken.agentpolicy:"), "{out}");
    assert!(out.contains("not formatted: "), "{out}");
    assert!(
        out.contains("1 file has errors and was left as it was"),
        "{out}"
    );
    assert_eq!(read(&broken), text);
    // The other file is still formatted.
    assert_eq!(read(&fine), "isolate m\n");
}

#[test]
fn invalid_utf8_is_reported_as_ap0004() {
    let dir = temp_dir("utf8");
    let file = dir.join("latin1.agentpolicy");
    std::fs::write(&file, b"policy caf\xe9\n").expect("write");
    let o = agentpolicy(&["fmt", path_str(&file)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("AP0004"), "{}", stdout(&o));
    assert_eq!(std::fs::read(&file).expect("read"), b"policy caf\xe9\n");
}

#[test]
fn missing_paths_are_io_errors() {
    let o = agentpolicy(&["fmt", "no/such/file.agentpolicy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no such file or directory"),
        "{}",
        stderr(&o)
    );
    let o = agentpolicy(&["fmt"]);
    assert_eq!(o.status.code(), Some(2));
}
