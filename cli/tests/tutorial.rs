//! `docs/tutorial.md` works, command by command, as a new user would follow it.
//!
//! The page is marked up for this test. A fenced block whose info string has
//! `file=NAME` (```` ```agentpolicy file=firm.agentpolicy ````) is a file the reader
//! creates; the same name again replaces it (that is how the reader fixes the policy).
//! A ```` ```console ```` block holds commands: a line `$ agentpolicy ARGS…`, then the
//! output lines the reader should see (a subset, in any order), then `[exit N]`. An
//! expected line matches an output line equal to it once both are trimmed; a line ending
//! in `…` matches any output line that starts with what comes before the `…`.
//!
//! The test writes the files into a fresh directory, in page order, and runs each command
//! there with the real binary and `NO_COLOR=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One thing the reader does, in page order.
#[derive(Debug, PartialEq)]
enum Step {
    /// Create (or replace) a file.
    Write { name: String, text: String },
    /// Run `agentpolicy ARGS`; the output must contain `expected` and the exit code be `exit`.
    Run {
        line: usize,
        args: Vec<String>,
        expected: Vec<String>,
        exit: i32,
    },
}

/// The page's steps, or what is wrong with its markup.
fn steps(markdown: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    // The open fence: its info string, the line it starts on, and the lines inside.
    let mut open: Option<(String, usize, Vec<&str>)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let number = index + 1;
        let fence = line.trim_start().starts_with("```");
        match &mut open {
            None if fence => {
                let info = line.trim_start().trim_start_matches('`').trim().to_string();
                open = Some((info, number, Vec::new()));
            }
            None => {}
            Some((info, start, body)) if fence => {
                if let Some(name) = info
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("file="))
                {
                    let mut text = body.join("\n");
                    text.push('\n');
                    steps.push(Step::Write {
                        name: name.to_string(),
                        text,
                    });
                } else if info.split_whitespace().next() == Some("console") {
                    steps.extend(commands(*start, body)?);
                }
                open = None;
            }
            Some((_, _, body)) => body.push(line),
        }
    }
    match open {
        Some((_, start, _)) => Err(format!("line {start}: a fence is never closed")),
        None => Ok(steps),
    }
}

/// The commands of one console block that starts on line `start`.
fn commands(start: usize, body: &[&str]) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    // The command being read: its line, its arguments, and the output expected so far.
    let mut current: Option<(usize, Vec<String>, Vec<String>)> = None;
    for (offset, raw) in body.iter().enumerate() {
        let number = start + offset + 1;
        let line = raw.trim();
        if let Some(command) = line.strip_prefix("$ ") {
            if current.is_some() {
                return Err(format!(
                    "line {number}: the command before has no `[exit N]`"
                ));
            }
            let mut words = command.split_whitespace().map(str::to_string);
            if words.next().as_deref() != Some("agentpolicy") {
                return Err(format!(
                    "line {number}: a command must start with `agentpolicy`"
                ));
            }
            current = Some((number, words.collect(), Vec::new()));
        } else if let Some(code) = line
            .strip_prefix("[exit ")
            .and_then(|r| r.strip_suffix(']'))
        {
            let exit = code
                .parse()
                .map_err(|_| format!("line {number}: `{line}` is not an exit code"))?;
            let (line, args, expected) = current
                .take()
                .ok_or_else(|| format!("line {number}: `[exit N]` without a command"))?;
            out.push(Step::Run {
                line,
                args,
                expected,
                exit,
            });
        } else if let Some((_, _, expected)) = &mut current {
            if !line.is_empty() {
                expected.push(line.to_string());
            }
        } else if !line.is_empty() {
            return Err(format!(
                "line {number}: output before any `$ agentpolicy` line"
            ));
        }
    }
    match current {
        Some((line, _, _)) => Err(format!("line {line}: the command has no `[exit N]`")),
        None => Ok(out),
    }
}

/// Whether an expected line (trimmed) is among the output's lines.
fn shows(output: &str, expected: &str) -> bool {
    output
        .lines()
        .map(str::trim)
        .any(|actual| match expected.strip_suffix('…') {
            Some(prefix) => actual.starts_with(prefix),
            None => actual == expected,
        })
}

#[test]
fn the_tutorial_works_command_by_command() {
    let markdown =
        std::fs::read_to_string(repo_root().join("docs/tutorial.md")).expect("read tutorial");
    let steps = match steps(&markdown) {
        Ok(steps) => steps,
        Err(problem) => panic!("docs/tutorial.md: {problem}"),
    };

    let dir = std::env::temp_dir().join(format!("agentpolicy-tutorial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a fresh directory");

    let mut subcommands = Vec::new();
    let mut failures = Vec::new();
    for step in &steps {
        match step {
            Step::Write { name, text } => {
                std::fs::write(dir.join(name), text).expect("write a tutorial file");
            }
            Step::Run {
                line,
                args,
                expected,
                exit,
            } => {
                subcommands.extend(args.first().cloned());
                let output = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
                    .current_dir(&dir)
                    .args(args)
                    .env("NO_COLOR", "1")
                    .output()
                    .expect("run agentpolicy");
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                let command = format!("line {line}: `agentpolicy {}`", args.join(" "));
                if output.status.code() != Some(*exit) {
                    failures.push(format!(
                        "{command} exited {:?}, the tutorial says {exit}:\n{text}",
                        output.status.code()
                    ));
                }
                let missing: Vec<&String> = expected.iter().filter(|e| !shows(&text, e)).collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{command} did not print\n  {}\nIt printed:\n{text}",
                        missing
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join("\n  ")
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "docs/tutorial.md:\n{}",
        failures.join("\n\n")
    );
    for needed in ["check", "test", "build", "decide", "replay"] {
        assert!(
            subcommands.iter().any(|s| s == needed),
            "the tutorial never runs `agentpolicy {needed}`"
        );
    }
}

#[test]
fn the_markup_is_read_as_documented() {
    let page = "\
text
```agentpolicy file=a.agentpolicy expect=AP0103
one
```
```console
$ agentpolicy check a.agentpolicy
[AP0103] Error: something

FAILED: a.agentpolicy …
[exit 1]
$ agentpolicy test a.agentpolicy
[exit 0]
```
```sh
not run
```
```json file=a.agentpolicy
two
```
";
    assert_eq!(
        steps(page),
        Ok(vec![
            Step::Write {
                name: "a.agentpolicy".into(),
                text: "one\n".into()
            },
            Step::Run {
                line: 6,
                args: vec!["check".into(), "a.agentpolicy".into()],
                expected: vec![
                    "[AP0103] Error: something".into(),
                    "FAILED: a.agentpolicy …".into()
                ],
                exit: 1
            },
            Step::Run {
                line: 11,
                args: vec!["test".into(), "a.agentpolicy".into()],
                expected: vec![],
                exit: 0
            },
            Step::Write {
                name: "a.agentpolicy".into(),
                text: "two\n".into()
            },
        ])
    );
    assert!(shows(
        "  FAILED: a.agentpolicy (policy `p`)\n",
        "FAILED: a.agentpolicy …"
    ));
    assert!(!shows(
        "FAILED: a.agentpolicy\n",
        "FAILED: a.agentpolicy (policy"
    ));
    assert!(steps("```console\n$ agentpolicy check\n```\n").is_err());
    assert!(steps("```console\n$ cargo run\n[exit 0]\n```\n").is_err());
    assert!(steps("```agentpolicy file=x\nnever closed\n").is_err());
}
