//! `docs/cli.md` in step with the binary: every command `agentpolicy --help` lists (and
//! every sub-command of those) has a `## COMMAND` section, and every option its `--help`
//! lists is named in that section; the page calls nothing "planned" and names the table
//! format version the runtime writes. Also the commands the page documents that no test
//! elsewhere runs: `completions`, `man`, `decide TABLE -`. And the repository's
//! `Dockerfile` (which CI cannot build) in step with `serve --help`.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use support::{agentpolicy, repo_root, stdout, temp_dir};

fn cli_md() -> String {
    std::fs::read_to_string(repo_root().join("docs/cli.md")).expect("docs/cli.md")
}

/// The text of `## name` up to the next `## ` heading.
fn section<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let heading = format!("\n## {name}\n");
    let start = page.find(&heading)? + heading.len();
    let rest = &page[start..];
    Some(rest.find("\n## ").map_or(rest, |end| &rest[..end]))
}

/// The names under `Commands:` in a `--help` text (without `help`).
fn commands_in(help: &str) -> Vec<String> {
    let Some(start) = help.find("Commands:\n") else {
        return Vec::new();
    };
    help[start + "Commands:\n".len()..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The long options a `--help` text lists (lines that start with `-`), without `--help`
/// and `--version`.
fn options_in(help: &str) -> Vec<String> {
    let mut out: Vec<String> = help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split(|c: char| c.is_whitespace() || matches!(c, ',' | '=' | '<' | '['))
                .find(|w| w.starts_with("--"))
                .map(str::to_string)
        })
        .filter(|o| o != "--help" && o != "--version")
        .collect();
    out.dedup();
    out
}

fn help_of(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let out = agentpolicy(&all);
    assert_eq!(out.status.code(), Some(0), "{all:?}");
    stdout(&out)
}

#[test]
fn every_command_and_option_in_help_is_in_cli_md() {
    let page = cli_md();
    let top = help_of(&[]);
    let commands = commands_in(&top);
    assert!(commands.len() >= 14, "commands: {commands:?}");
    let mut missing = Vec::new();
    for command in &commands {
        let Some(text) = section(&page, command) else {
            missing.push(format!("no `## {command}` section"));
            continue;
        };
        let help = help_of(&[command]);
        let mut helps = vec![(command.clone(), help.clone())];
        for sub in commands_in(&help) {
            helps.push((format!("{command} {sub}"), help_of(&[command, &sub])));
        }
        for (name, help) in helps {
            if name != *command && !text.contains(name.rsplit(' ').next().unwrap_or("")) {
                missing.push(format!("`{name}` not in `## {command}`"));
            }
            for option in options_in(&help) {
                if !text.contains(&option) {
                    missing.push(format!("`{name} {option}` not in `## {command}`"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/cli.md is behind --help:\n{}",
        missing.join("\n")
    );
}

#[test]
fn option_parsing_finds_the_options() {
    let help = help_of(&["check"]);
    let options = options_in(&help);
    for o in ["--format", "--allow-unknown", "--no-proofs", "--timeout-ms"] {
        assert!(options.contains(&o.to_string()), "{options:?}");
    }
    assert!(help.contains("can neither prove nor refute"), "{help}");
}

#[test]
fn cli_md_calls_nothing_planned_and_names_the_table_format() {
    let page = cli_md();
    assert!(
        !page.to_lowercase().contains("planned"),
        "docs/cli.md calls something planned"
    );
    let version = agentpolicy_runtime::FORMAT_VERSION;
    assert!(
        page.contains(&format!("The format version is {version}")),
        "docs/cli.md should name table format {version}"
    );
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_agentpolicy()"),
        ("zsh", "#compdef agentpolicy"),
        ("fish", "complete -c agentpolicy"),
        ("elvish", "agentpolicy"),
        ("powershell", "agentpolicy"),
    ] {
        let out = agentpolicy(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("check") && script.contains("matrix"),
            "{shell}"
        );
    }
    assert_eq!(agentpolicy(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_prints_a_page_and_writes_one_per_command() {
    let out = agentpolicy(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH agentpolicy"),
        "{page}"
    );
    assert!(page.contains("check"));
    let dir = temp_dir("man");
    let out = agentpolicy(&["man", "--output", dir.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0));
    for page in [
        "agentpolicy.1",
        "agentpolicy-check.1",
        "agentpolicy-audit-verify.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn decide_reads_the_request_from_stdin() {
    let dir = temp_dir("decide-stdin");
    let table = dir.join("table.bin");
    let built = agentpolicy(&[
        "build",
        "examples/law_firm",
        "-o",
        table.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(built.status.code(), Some(0));
    let request = r#"{"agent": "intake", "tool": "email_client", "args": {"subject": "Engagement letter"}, "confidence": 0.99}"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args([
            "decide",
            table.to_str().expect("utf-8 path"),
            "-",
            "--format",
            "json",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run agentpolicy");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("wait");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decision: serde_json::Value = serde_json::from_str(&text).expect("decision JSON");
    assert!(decision["outcome"].is_string(), "{text}");
    // The same request from a file decides the same.
    let file = dir.join("request.json");
    std::fs::write(&file, request).expect("write the request");
    let from_file = agentpolicy(&[
        "decide",
        table.to_str().expect("utf-8 path"),
        file.to_str().expect("utf-8 path"),
        "--format",
        "json",
    ]);
    assert_eq!(stdout(&from_file), text);
}

/// The `Dockerfile` is not built here (no registry), so at least its entry point must be
/// a command line the binary accepts: `serve` and options `serve --help` lists, each
/// given a value.
#[test]
fn the_dockerfile_entrypoint_names_only_options_serve_has() {
    let dockerfile =
        std::fs::read_to_string(repo_root().join("Dockerfile")).expect("the Dockerfile");
    let line = dockerfile
        .lines()
        .find(|l| l.starts_with("ENTRYPOINT "))
        .expect("an ENTRYPOINT line");
    let args: Vec<String> =
        serde_json::from_str(&line["ENTRYPOINT ".len()..]).expect("ENTRYPOINT in exec form");
    assert_eq!(args[..2], ["agentpolicy", "serve"], "{line}");
    let known = options_in(&help_of(&["serve"]));
    let mut rest = args[2..].iter();
    while let Some(option) = rest.next() {
        assert!(
            known.contains(option),
            "{option} is not a `serve` option: {line}"
        );
        let value = rest.next().expect("each option has a value");
        assert!(!value.starts_with("--"), "{option} has no value: {line}");
    }
    assert!(
        dockerfile.contains("cargo build --release --locked -p agentpolicy-cli --bin agentpolicy"),
        "the build stage builds the CLI"
    );
}
